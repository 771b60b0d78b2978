"""Feature engineering: the helper the demo edits."""


def center(values):
    mean = sum(values) / len(values)
    return [v - mean for v in values]
