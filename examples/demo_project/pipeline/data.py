"""Loading the raw data (here: made up, deterministic)."""

N_SAMPLES = 200_000


def load_data(seed):
    """A list of (x, y) pairs on a noisy line."""
    import random

    rng = random.Random(seed)
    return [
        (x, 3.0 * x + 1.0 + rng.gauss(0, 0.5))
        for x in (rng.uniform(0, 10) for _ in range(N_SAMPLES))
    ]
