"""What run-time recording costs on a miss, and that it costs nothing on a hit.

Usage: python benchmarks/runtime_overhead.py

For a pure-Python, call-heavy function and a numpy-heavy one: the median time of a
miss (forced with ``rerun``) with recording (input files and, on Python 3.12+, the
sys.monitoring safety net) and without (``track_files=False`` and
``defaults["runtime.safety_net"] = False``); then the median hit of each.

Then the inputs beyond ``open``: what recording adds to a miss whose body lists a
folder of 100 files (glob) or reads 1,000 environment variables (the body alone, then
the body recorded plus computing the checks stored with the entry); and
the median hit of entries with recorded inputs (1 and 100 files, a listing of 100
files, 10 environment variables, a folder argument of 100 files, an ``inputs=``
pattern matching 100 files) next to a hit with nothing recorded, in the same run.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

os.chdir(tempfile.mkdtemp(prefix="ckpt-runtime-"))
with open("bench_funcs.py", "w") as handle:
    handle.write("""
import numpy as np

def leaf(i):
    return i % 7

def calls(n):
    total = 0
    for i in range(n):
        total += leaf(i)
    return total

def numeric(n):
    a = np.random.default_rng(0).random((n, n))
    return float((a @ a).sum())

import glob, os

def listing(pattern):
    return len(glob.glob(pattern))

def env_reads(n):
    total = 0
    for i in range(n):
        total += len(os.environ.get(f"CKPT_BENCH_{i}", ""))
    return total

def nothing(x):
    return x

def read_files(paths):
    total = 0
    for path in paths:
        with open(path, "rb") as handle:
            total += len(handle.read())
    return total

def read_env(names):
    return [os.environ.get(name) for name in names]

def take_folder(folder):
    return folder

def declared():
    return 1
""")
sys.path.insert(0, os.getcwd())

import bench_funcs  # noqa: E402

from checkpointing import checkpoint, defaults  # noqa: E402


def median_ms(fn, runs=7):
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def main() -> None:
    print(
        f"Python {sys.version.split()[0]}; safety net "
        f"{'available' if hasattr(sys, 'monitoring') else 'not available (< 3.12)'}"
    )
    for name, fn, arg in (
        ("pure Python, 300k calls", bench_funcs.calls, 300_000),
        ("numpy, 400x400 matmul", bench_funcs.numeric, 400),
    ):
        defaults["runtime.safety_net"] = True
        on = checkpoint(directory="on")(fn)
        defaults["runtime.safety_net"] = False
        off = checkpoint(directory="off", track_files=False)(fn)
        bare = median_ms(lambda: fn(arg))
        defaults["runtime.safety_net"] = True
        with_recording = median_ms(lambda: on.rerun(arg))
        defaults["runtime.safety_net"] = False
        without = median_ms(lambda: off.rerun(arg))
        on(arg)
        off(arg)
        hit_on = median_ms(lambda: on(arg), runs=2001) * 1000
        hit_off = median_ms(lambda: off(arg), runs=2001) * 1000
        print(
            f"{name}: bare {bare:.1f} ms; miss with recording {with_recording:.1f} ms, "
            f"without {without:.1f} ms ({(with_recording / without - 1) * 100:+.1f}%); "
            f"hit {hit_on:.1f} us with, {hit_off:.1f} us without"
        )
        if not hasattr(sys, "monitoring"):
            defaults["runtime.safety_net"] = True
            defaults["runtime.profile_safety_net"] = True
            profiled = median_ms(lambda: on.rerun(arg))
            defaults["runtime.profile_safety_net"] = False
            print(
                f"   with the opt-in profile-hook safety net: miss {profiled:.1f} ms "
                f"({(profiled / without - 1) * 100:+.1f}%)"
            )


def inputs() -> None:
    defaults["runtime.safety_net"] = False  # measured above; here, the inputs alone
    os.makedirs("data", exist_ok=True)
    for i in range(100):
        with open(f"data/{i:03}.csv", "w") as handle:
            handle.write(f"{i}\n" * 100)
    from checkpointing import runtime

    def recorded(fn, arg):
        recorder = runtime.start("bench", "cache", True, None, True)
        try:
            fn(arg)
        finally:
            runtime.stop(recorder)
        recorder.checks()

    for name, fn, arg in (
        ("list a folder of 100 files (glob)", bench_funcs.listing, "data/*.csv"),
        ("read 1,000 environment variables", bench_funcs.env_reads, 1000),
    ):
        bare = median_ms(lambda: fn(arg), runs=201)
        with_recording = median_ms(lambda: recorded(fn, arg), runs=201)
        print(
            f"miss, {name}: the body {bare:.3f} ms; recording it and computing its "
            f"checks {with_recording:.3f} ms (+{with_recording - bare:.3f} ms)"
        )

    files = [os.path.abspath(f"data/{i:03}.csv") for i in range(100)]
    os.environ.update({f"CKPT_BENCH_{i}": str(i) for i in range(10)})
    cases = (
        ("nothing recorded", checkpoint(directory="h0")(bench_funcs.nothing), (1,)),
        ("1 input file", checkpoint(directory="h1")(bench_funcs.read_files), (files[:1],)),
        ("100 input files", checkpoint(directory="h2")(bench_funcs.read_files), (files,)),
        ("listing of 100 files", checkpoint(directory="h3")(bench_funcs.listing), ("data/*.csv",)),
        (
            "10 environment variables",
            checkpoint(directory="h4")(bench_funcs.read_env),
            ([f"CKPT_BENCH_{i}" for i in range(10)],),
        ),
        (
            "folder argument of 100 files",
            checkpoint(directory="h5")(bench_funcs.take_folder),
            ("data",),
        ),
        (
            "inputs=['data/*.csv'] (100 files)",
            checkpoint(directory="h6", inputs=["data/*.csv"])(bench_funcs.declared),
            (),
        ),
    )
    base = None
    for name, fn, args in cases:
        fn(*args)
        hit = median_ms(lambda: fn(*args), runs=2001) * 1000
        base = base or hit
        print(f"hit, {name}: {hit:.1f} us ({hit / base:.1f}x a hit with nothing recorded)")


if __name__ == "__main__":
    main()
    inputs()
