"""The expensive step, checkpointed."""

import time

from checkpointing import checkpoint

from .data import load_data
from .features import center


@checkpoint
def fit_line(seed):
    """Least-squares slope of the centred data (slow on purpose)."""
    print("  ... fitting (the body runs)")
    time.sleep(1.0)
    points = load_data(seed)
    xs = center([x for x, _ in points])
    ys = center([y for _, y in points])
    return sum(x * y for x, y in zip(xs, ys)) / sum(x * x for x in xs)
