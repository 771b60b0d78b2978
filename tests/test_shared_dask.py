"""A checkpointed function on dask.distributed with an S3 cache (issue 14, part 3).

A program starts a ``LocalCluster(processes=True)``, computes calls on the workers with
``client.map`` and ``dask.delayed``, reads them back in the client (hits: the workers'
results are in the bucket) and computes one in the client that the workers then hit.
Run again unchanged, nothing runs anywhere; after an edit of a helper, the workers and
the client compute again, with the new values.
"""

from __future__ import annotations

import re

import pytest

pytest.importorskip("dask.distributed")

HELPERS = """
FACTOR = {factor}


def scale(x):
    return x * FACTOR
"""

WORK = """
import os

from checkpointing import checkpoint

import helpers


@checkpoint(os.environ["CACHE"])
def f(x):
    os.write(1, f"RAN f {x} {os.getpid()}\\n".encode())  # one write: workers share the pipe
    return helpers.scale(x) + 1
"""

MAIN = """
import os

import dask
from dask.distributed import Client, LocalCluster

import work

if __name__ == "__main__":
    cluster = LocalCluster(
        processes=True, n_workers=2, threads_per_worker=1, dashboard_address=":0"
    )
    client = Client(cluster)
    try:
        print("PARENT", os.getpid(), flush=True)
        print("RESULT map", client.gather(client.map(work.f, [1, 2], pure=False)), flush=True)
        delayed = [dask.delayed(work.f, pure=False)(x) for x in (3,)]
        print("RESULT delayed", list(dask.compute(*delayed)), flush=True)
        print("RESULT client", [work.f(x) for x in (1, 2, 3, 4)], flush=True)
        print("RESULT map", client.gather(client.map(work.f, [4], pure=False)), flush=True)
    finally:
        client.close()
        cluster.close()
"""


def _run(project, env):
    run = project.run("main.py", env=env)
    parent = re.search(r"^PARENT (\d+)$", run.stdout, re.M).group(1)
    where = {}
    for line in run.ran:
        _, x, pid = line.split()
        where.setdefault("client" if pid == parent else "worker", []).append(int(x))
    return run.results, {k: sorted(v) for k, v in where.items()}


@pytest.mark.slow
def test_workers_and_client_share_an_s3_cache(project, s3, tmp_path) -> None:
    env = {**s3.env, "CACHE": s3.url, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    project.write("helpers.py", HELPERS.format(factor=10))
    project.write("work.py", WORK)
    project.write("main.py", MAIN)

    def expected(factor):
        values = [x * factor + 1 for x in (1, 2, 3, 4)]
        return [
            f"map {values[:2]}",
            f"delayed {values[2:3]}",
            f"client {values}",
            f"map {values[3:]}",
        ]

    results, where = _run(project, env)
    assert results == expected(10)
    assert where == {"worker": [1, 2, 3], "client": [4]}  # each computed once, where asked

    results, where = _run(project, env)  # new processes, same bucket: nothing runs
    assert results == expected(10) and where == {}

    project.write("helpers.py", HELPERS.format(factor=100))
    results, where = _run(project, env)
    assert results == expected(100)
    assert where == {"worker": [1, 2, 3], "client": [4]}
    assert len(s3.objects()) == 8  # both versions of the four calls
