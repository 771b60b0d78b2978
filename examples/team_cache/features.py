"""A helper of the pipeline: editing it makes every machine compute train() again."""

SCALE = 1000.0


def normalise(x: int) -> float:
    return x / SCALE
