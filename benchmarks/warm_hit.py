"""Warm cache hit of ``f(1, 2)``: the median cost of one call answered from the cache.

Usage: python benchmarks/warm_hit.py [--calls 2000] [--secret]

With ``--secret`` entries are signed and every hit checks the HMAC-SHA256 (see
docs/security.md); both runs print in the same format so they can be compared.

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
    parser.add_argument("--secret", action="store_true", help="sign and check entries")
    args = parser.parse_args()

    os.chdir(tempfile.mkdtemp(prefix="ckpt-bench-"))
    from checkpointing import checkpoint, defaults

    if args.secret:
        defaults["cache.secret"] = "benchmark secret"

    def plain(a, b):
        return a + b

    cached = checkpoint(plain)
    cached(1, 2)  # the miss that fills the entry
    key_only = cached.key
    for name, fn in (("plain call", plain), ("key only", key_only), ("warm hit", cached)):
        samples = measure(fn, args.calls)
        q = statistics.quantiles(samples, n=10)
        name += " (signed)" if args.secret and name == "warm hit" else ""
        print(
            f"{name:>10}: median {statistics.median(samples):8.2f} us   "
            f"p90 {q[-1]:8.2f} us   ({args.calls} calls, Python "
            f"{sys.version.split()[0]})"
        )


if __name__ == "__main__":
    main()
