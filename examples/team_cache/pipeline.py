"""A teammate's pipeline: one decorated function, its cache in a team bucket.

The cache location and the team secret come from the environment, so the same code runs
on every machine of the team (see docs/shared.md):

    TEAM_CACHE=s3://team-bucket/checkpointing    where entries are shared
    CHECKPOINTING_SECRET=...                      signs and checks every entry
    AWS_* / FSSPEC_S3_ENDPOINT_URL                how s3fs reaches the bucket
"""

import os
import time

from features import normalise

from checkpointing import checkpoint, defaults

defaults["cache.filesystem.directory"] = os.environ["TEAM_CACHE"]


@checkpoint
def train(rows: int) -> float:
    """Stands for an expensive step: the first teammate pays for it, the others hit."""
    print(f"  training on {rows} rows (expensive) ...", flush=True)
    time.sleep(1.0)
    return sum(normalise(x) for x in range(rows))


if __name__ == "__main__":
    started = time.perf_counter()
    score = train(1000)
    print(f"  score {score:.3f} in {time.perf_counter() - started:.2f}s")
