"""What run-time recording costs on a miss, and that it costs nothing on a hit.

Usage: python benchmarks/runtime_overhead.py

For a pure-Python, call-heavy function and a numpy-heavy one: the median time of a
miss (forced with ``rerun``) with recording (input files and, on Python 3.12+, the
sys.monitoring safety net) and without (``track_files=False`` and
``defaults["runtime.safety_net"] = False``); then the median hit of each.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time

os.chdir(tempfile.mkdtemp(prefix="ckpt-runtime-"))
with open("bench_funcs.py", "w") as handle:
    handle.write('''
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
''')
sys.path.insert(0, os.getcwd())

from checkpointing import checkpoint, defaults  # noqa: E402
import bench_funcs  # noqa: E402


def median_ms(fn, runs=7):
    samples = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples) * 1000


def main() -> None:
    print(f"Python {sys.version.split()[0]}; safety net "
          f"{'available' if hasattr(sys, 'monitoring') else 'not available (< 3.12)'}")
    for name, fn, arg in (("pure Python, 300k calls", bench_funcs.calls, 300_000),
                          ("numpy, 400x400 matmul", bench_funcs.numeric, 400)):
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
        print(f"{name}: bare {bare:.1f} ms; miss with recording {with_recording:.1f} ms, "
              f"without {without:.1f} ms ({(with_recording / without - 1) * 100:+.1f}%); "
              f"hit {hit_on:.1f} us with, {hit_off:.1f} us without")
        if not hasattr(sys, "monitoring"):
            defaults["runtime.safety_net"] = True
            defaults["runtime.profile_safety_net"] = True
            profiled = median_ms(lambda: on.rerun(arg))
            defaults["runtime.profile_safety_net"] = False
            print(f"   with the opt-in profile-hook safety net: miss {profiled:.1f} ms "
                  f"({(profiled / without - 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
