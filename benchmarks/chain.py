"""Cost of dependency tracking on a 50-module chain.

Usage: python benchmarks/chain.py [--modules 50] [--repeat 5] [--calls 2000]

Generates a project ``proj/`` whose decorated function calls ``m0.f0``, which calls
``m1.f1`` ... down to ``m49.f49`` (each module also holds a global the chain reads),
then measures, each in fresh processes:

* first call, nothing on disk about the analysis: the analysis of all 50 modules,
  plus a cache hit;
* first call, analysis on disk (the normal case for a program run again): the stored
  plan is checked against the sources and reused, plus a cache hit;
* later calls: the median hit of the chained function, against the median hit of a
  function with no dependencies in the same process (the extra cost of tracking).

Targets (issue #3): <= 2 ms for the first call with the analysis on disk, <= 0.02 ms
extra per later call.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap

PROBE = textwrap.dedent("""
    import json, statistics, sys, time
    from checkpointing import checkpoint
    from proj.m0 import f0

    @checkpoint
    def chained(x):
        return f0(x)

    @checkpoint
    def alone(x):
        return x + 1

    started = time.perf_counter()
    chained(1)
    first = time.perf_counter() - started
    alone(1)

    # Interleaved, so that drifts of the machine's speed hit both alike.
    calls = int(sys.argv[1])
    clock = time.perf_counter_ns
    chained_ns, alone_ns = [], []
    for _ in range(calls):
        t = clock()
        chained(1)
        t2 = clock()
        alone(1)
        t3 = clock()
        chained_ns.append(t2 - t)
        alone_ns.append(t3 - t2)
    print(json.dumps({"first_ms": first * 1000,
                      "chained_us": statistics.median(chained_ns) / 1000,
                      "alone_us": statistics.median(alone_ns) / 1000}))
""")


def make_project(root: str, modules: int) -> None:
    package = os.path.join(root, "proj")
    os.makedirs(package)
    open(os.path.join(package, "__init__.py"), "w").close()
    for i in range(modules):
        last = i == modules - 1
        body = (
            f"K{i} = {i}\n\n\ndef f{i}(x):\n    return x + K{i}\n"
            if last
            else f"from proj.m{i + 1} import f{i + 1}\n\nK{i} = {i}\n\n\n"
            f"def f{i}(x):\n    return f{i + 1}(x) + K{i}\n"
        )
        with open(os.path.join(package, f"m{i}.py"), "w") as handle:
            handle.write(body)
    with open(os.path.join(root, "probe.py"), "w") as handle:
        handle.write(PROBE)


def run(root: str, calls: int) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    out = subprocess.run(
        [sys.executable, "probe.py", str(calls)],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--modules", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args()

    root = tempfile.mkdtemp(prefix="ckpt-chain-")
    try:
        make_project(root, args.modules)
        run(root, 10)  # fills the cache entries, the stored analysis and the .pyc files
        analysis = os.path.join(root, ".checkpointing", "analysis")
        without, with_disk, extra, alone = [], [], [], []
        for _ in range(args.repeat):
            shutil.rmtree(analysis, ignore_errors=True)
            without.append(run(root, 10)["first_ms"])
            result = run(root, args.calls)
            with_disk.append(result["first_ms"])
            extra.append(result["chained_us"] - result["alone_us"])
            alone.append(result["alone_us"])
        print(
            f"{args.modules}-module chain, Python {sys.version.split()[0]}, "
            f"median of {args.repeat} fresh processes:"
        )
        print(f"  first call, analysis not on disk : {statistics.median(without):8.2f} ms")
        print(
            f"  first call, analysis on disk     : {statistics.median(with_disk):8.2f} ms"
            f"   (target <= 2 ms)"
        )
        print(
            f"  later calls: hit of a function without dependencies "
            f"{statistics.median(alone):6.2f} us; the chained function costs "
            f"{statistics.median(extra):6.2f} us more   (target <= 20 us)"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
