"""Large results: what ``compress=`` and ``mmap_mode=`` cost and save.

Usage: python benchmarks/compress.py [--mb 200] [--runs 3]

For each kind of result (a numpy array of measurements rounded to 3 decimals, which
compresses somewhat; a pandas DataFrame with a repetitive text column; a list of
small records) and each setting (plain, ``compress="lz4"``, ``compress="zstd"``,
``mmap_mode="r"`` for arrays), in a fresh process each: the miss (building the
result excluded: the call and the save), the hit, the size on disk and the private
(anonymous) memory the hit's result holds (Linux: ``RssAnon``; mapped file pages are
shared and reclaimable). Prints a markdown table; medians over ``--runs`` processes,
all in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap

CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    import numpy as np
    from checkpointing import checkpoint
    kind, option, mb = sys.argv[1], sys.argv[2], int(sys.argv[3])
    options = {} if option == "plain" else (
        {"mmap_mode": "r"} if option == "mmap" else {"compress": option})

    def make():
        n = mb * (1 << 20) // 8
        rng = np.random.default_rng(0)
        if kind == "array":
            return np.round(rng.normal(size=n), 3)
        if kind == "frame":
            import pandas as pd
            rows = n // 2
            return pd.DataFrame({"x": np.round(rng.normal(size=rows), 2),
                                 "city": np.array(["Paris", "Lyon", "Nice", "Lille"])[
                                     rng.integers(0, 4, size=rows)]})
        return [{"id": i, "ok": i % 3 == 0, "tag": "abc"} for i in range(n // 16)]

    started = time.perf_counter(); value = make(); make_s = time.perf_counter() - started

    @checkpoint(**options)
    def result():
        return value

    started = time.perf_counter(); result(); miss_s = time.perf_counter() - started
    del value
    import gc; gc.collect()

    def anon():  # private memory (kB): what a copy costs; mapped file pages are not
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("RssAnon:"))

    rss0 = anon()
    started = time.perf_counter(); got = result(); hit_s = time.perf_counter() - started
    rss1 = anon()
    folder = os.path.join(".checkpointing", "entries")
    size = sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder))
    print(json.dumps({"save": miss_s, "hit": hit_s, "size": size,
                      "rss": (rss1 - rss0) / 1024}))
    """
)


def measure(kind: str, option: str, mb: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        out = subprocess.run(
            [sys.executable, "-c", CHILD, kind, option, str(mb)],
            cwd=folder,
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mb", type=int, default=200, help="size of each result in MiB")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"results of ~{args.mb} MiB; median of {args.runs} fresh processes each\n")
    print(
        "| result | setting | save (s) | hit (s) | on disk (MiB) "
        "| hit: private memory added (MiB) |"
    )
    print("| --- | --- | --- | --- | --- | --- |")
    for kind, options in (
        ("array", ["plain", "mmap", "lz4", "zstd"]),
        ("frame", ["plain", "lz4", "zstd"]),
        ("records", ["plain", "lz4", "zstd"]),
    ):
        for option in options:
            runs = [measure(kind, option, args.mb) for _ in range(args.runs)]
            med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
            print(
                f"| {kind} | {option} | {med['save']:.2f} | {med['hit']:.3f} | "
                f"{med['size'] / (1 << 20):.0f} | {med['rss']:.0f} |"
            )
            sys.stdout.flush()
    print(f"\nPython {sys.version.split()[0]}, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
