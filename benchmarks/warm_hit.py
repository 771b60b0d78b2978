"""Warm cache hit of ``f(1, 2)``: the median cost of one call answered from the cache.

Usage: python benchmarks/warm_hit.py [--calls 2000]

Prints the median and 90th percentile in microseconds, next to the cost of calling
the undecorated function and of computing the key alone, all in the same run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time


def measure(fn, calls: int) -> list:
    samples = []
    clock = time.perf_counter_ns
    for _ in range(calls):
        start = clock()
        fn(1, 2)
        samples.append((clock() - start) / 1000)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    os.chdir(tempfile.mkdtemp(prefix="ckpt-bench-"))
    from checkpointing import checkpoint

    def plain(a, b):
        return a + b

    cached = checkpoint(plain)
    cached(1, 2)  # the miss that fills the entry
    key_only = cached.key
    for name, fn in (("plain call", plain), ("key only", key_only), ("warm hit", cached)):
        samples = measure(fn, args.calls)
        q = statistics.quantiles(samples, n=10)
        print(f"{name:>10}: median {statistics.median(samples):8.2f} us   "
              f"p90 {q[-1]:8.2f} us   ({args.calls} calls, Python "
              f"{sys.version.split()[0]})")


if __name__ == "__main__":
    main()
