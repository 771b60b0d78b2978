"""Many processes and threads calling one checkpointed function on shared keys, with
random ``rerun()`` (which overwrites entries others are reading): no call may fail,
warn that the cache broke, or return anything but the right value."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from .conftest import figure

PROGRAM = textwrap.dedent("""
    import random, sys, threading, warnings
    from checkpointing import checkpoint
    from checkpointing.errors import CheckpointWarning, ExpensiveOverheadWarning

    counts = {"calls": 0, "errors": 0, "wrong": 0, "warnings": 0}
    lock = threading.Lock()

    def record(message, category, *args, **kwargs):
        if issubclass(category, CheckpointWarning) \\
                and not issubclass(category, ExpensiveOverheadWarning):
            with lock:
                counts["warnings"] += 1
                print("WARNING", category.__name__, message, file=sys.stderr)

    warnings.simplefilter("always")
    warnings.showwarning = record

    def expected(x):
        return {"x": x, "square": x * x, "blob": bytes([x]) * (1000 * (x % 7 + 1))}

    @checkpoint()
    def compute(x):
        return {"x": x, "square": x * x, "blob": bytes([x]) * (1000 * (x % 7 + 1))}

    def worker(seed, calls):
        rng = random.Random(seed)
        for _ in range(calls):
            x = rng.randrange(12)
            try:
                value = compute.rerun(x) if rng.random() < 0.2 else compute(x)
                bad = value != expected(x)
                failed = False
            except Exception as exc:
                print("ERROR", type(exc).__name__, exc, file=sys.stderr)
                failed, bad = True, False
            with lock:
                counts["calls"] += 1
                counts["errors"] += failed
                counts["wrong"] += bad

    seed, threads, calls = map(int, sys.argv[1:4])
    workers = [threading.Thread(target=worker, args=(seed * 100 + i, calls))
               for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print("COUNTS", counts["calls"], counts["errors"], counts["wrong"], counts["warnings"])
""")


def totals(outputs) -> list:
    sums = [0, 0, 0, 0]
    for out in outputs:
        line = next(line for line in out.splitlines() if line.startswith("COUNTS"))
        sums = [a + int(b) for a, b in zip(sums, line.split()[1:])]
    return sums


def launch(root: Path, seed: int, threads: int, calls: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "main.py", str(seed), str(threads), str(calls)],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
def test_processes_and_threads_on_shared_keys(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text(PROGRAM)
    procs = [launch(tmp_path, seed, 1, 200) for seed in range(8)]
    results = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in results]
    calls, errors, wrong, warned = totals(out for out, _ in results)
    figure(
        "8 processes x 200 calls, shared keys, 20% rerun()",
        f"{calls} calls: {errors} errors, {wrong} wrong values, {warned} cache warnings",
    )
    assert (calls, errors, wrong, warned) == (1600, 0, 0, 0), [e[-2000:] for _, e in results]

    proc = launch(tmp_path, 99, 16, 200)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-2000:]
    calls, errors, wrong, warned = totals([out])
    figure(
        "16 threads x 200 calls, shared keys, 20% rerun()",
        f"{calls} calls: {errors} errors, {wrong} wrong values, {warned} cache warnings",
    )
    assert (calls, errors, wrong, warned) == (3200, 0, 0, 0), err[-2000:]
