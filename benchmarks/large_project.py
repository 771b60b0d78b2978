"""Cost of dependency tracking when a large real codebase is project code.

Usage: python benchmarks/large_project.py [--version 3.6.1] [--repeat 3] [--calls 2000] [--json]

networkx (about 300 modules of pure Python, a registry of some 780 dispatchable
algorithms that read the registry themselves) is fetched once as an sdist from PyPI
(``pip download --no-deps --no-binary :all:``, kept in ``benchmarks/.work/``) and
unpacked into a temporary project folder, so that checkpointing treats all of it as
the user's own code and follows everything. Two checkpointed functions are measured,
each in fresh processes:

* ``shortest``: builds a graph with real networkx APIs and returns a shortest path;
* ``density``: takes a ``networkx.Graph`` argument;

and for each: the first call with no stored analysis, the first call with the stored
analysis, the median warm hit next to the median hit of a function with no
dependencies in the same process, and the peak memory (``ru_maxrss``) of the process.

Targets (issue #9): first call without analysis <= 3 s, with stored analysis <= 20 ms,
warm hit <= 2x the hit of a function with no dependencies.
With ``--json`` the samples of every process end the output as one JSON line, which
``suite.py`` reads for target 6 of issue 12.

It also reports the floor of any check of that reach in pure Python, in the same
processes: how many places (a name in a namespace, a function's defaults, a cell) the key
reads and how many distinct objects they hold; the time of one pass that reads every
place once and of one digest of every distinct object read (in a single pass, the
definitions inside as placeholders), which a new process cannot avoid (its values are
made by its own imports); and the time of one identity comparison per name a warm hit
checks, done by C-level ``map`` (the cheapest way Python has to tell that no name was
rebound).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import textwrap

HERE = os.path.dirname(os.path.abspath(__file__))

PROBE = textwrap.dedent("""
    import json, resource, statistics, sys, time, warnings
    warnings.simplefilter("ignore")  # the blind spots of networkx are not measured here
    from checkpointing import checkpoint
    import networkx as nx

    @checkpoint
    def shortest(n):
        G = nx.path_graph(n)
        nx.add_path(G, [0, n // 2, n - 1])
        return nx.shortest_path(G, 0, n - 1)

    @checkpoint
    def density(G):
        return nx.density(G)

    @checkpoint
    def alone(x):
        return x + 1

    which = sys.argv[1]
    if which == "shortest":
        target, args = shortest, (30,)
    else:
        target, args = density, (nx.petersen_graph(),)
    started = time.perf_counter()
    target(*args)
    first = time.perf_counter() - started
    alone(1)

    calls = int(sys.argv[2])
    clock = time.perf_counter_ns
    target_ns, alone_ns = [], []
    for _ in range(calls):  # interleaved, so that drifts hit both alike
        t = clock()
        target(*args)
        t2 = clock()
        alone(1)
        t3 = clock()
        target_ns.append(t2 - t)
        alone_ns.append(t3 - t2)
    out = {"first_ms": first * 1000,
           "hit_us": statistics.median(target_ns) / 1000,
           "alone_us": statistics.median(alone_ns) / 1000,
           "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}

    # The floor: what any check of this reach must read, and the cheapest pure-Python
    # passes over it (C-level map over the places, one identity comparison each).
    import itertools, operator
    from checkpointing import keyplan

    def median_us(fn, n=30):
        samples = []
        for _ in range(n):
            t = clock(); fn(); samples.append(clock() - t)
        return statistics.median(samples) / 1000

    plan = keyplan.cached(target.__wrapped__)
    witnesses = {}  # those of the plan, and those of the walks whose digests hits reuse
    found = [plan._last[2]] if plan._last and plan._last[2] else []
    found += [r.witness for r in keyplan._REUSABLE.values()]
    found += [r.witness for r in keyplan._REUSABLE_VALUES.values()]
    for w in found:
        for part in w.vouched():
            witnesses[id(part)] = part
    witnesses = list(witnesses.values())
    places = [g for p in keyplan._LOCAL_PLANS.values() for g in p._getters] + list(plan._getters)
    names = [(ns, name, bound) for w in witnesses
             for ns, name, bound in zip(w._namespaces, w._names, w._bound)]
    namespaces = [ns for ns, _, _ in names]
    keys = [name for _, name, _ in names]
    bound = [value for _, _, value in names]
    unbound = keyplan.UNBOUND
    # Every distinct object read, digested once in a single pass, the definitions inside
    # as placeholders (their own reads are among the places): what a new process must
    # digest at the least, whatever it does with the plans.
    distinct = list({id(v): v for v in (get() for get in places)}.values())
    out["floor"] = {
        "places": len(places),
        "distinct objects": len({id(get()) for get in places}),
        "names checked by a hit": len(names),
        "namespaces": len({id(ns) for ns in namespaces}),
        "read every place once, us": median_us(lambda: [get() for get in places], 10),
        "digest every distinct object once, us": median_us(
            lambda: keyplan._probe(distinct), 3),
        "check the names a hit checks, us": median_us(lambda: all(map(
            operator.is_, map(dict.get, namespaces, keys, itertools.repeat(unbound)), bound))),
    }
    print(json.dumps(out))
""")


def fetch(version: str) -> str:
    """The networkx sdist, downloaded once into benchmarks/.work/."""
    cache = os.path.join(HERE, ".work", "sdist")
    os.makedirs(cache, exist_ok=True)
    found = glob.glob(os.path.join(cache, f"networkx-{version}.tar.gz"))
    if not found:
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--no-deps",
                "--no-binary",
                ":all:",
                f"networkx=={version}",
                "-d",
                cache,
            ],
            check=True,
            capture_output=True,
        )
        found = glob.glob(os.path.join(cache, f"networkx-{version}.tar.gz"))
    return found[0]


def make_project(root: str, sdist: str) -> None:
    with tarfile.open(sdist) as archive:
        members = [m for m in archive.getmembers() if m.name.split("/")[1:2] == ["networkx"]]
        archive.extractall(root, members)  # trusted: PyPI's sdist of a pinned version
    top = os.path.join(root, os.path.basename(sdist)[: -len(".tar.gz")])
    os.rename(os.path.join(top, "networkx"), os.path.join(root, "networkx"))
    shutil.rmtree(top)
    with open(os.path.join(root, "probe.py"), "w") as handle:
        handle.write(PROBE)


def run(root: str, which: str, calls: int) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    proc = subprocess.run(
        [sys.executable, "probe.py", which, str(calls)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"probe failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--version", default="3.6.1")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument(
        "--json", action="store_true", help="print every sample as one JSON line at the end"
    )
    args = parser.parse_args()

    sdist = fetch(args.version)
    root = tempfile.mkdtemp(prefix="ckpt-large-")
    try:
        make_project(root, sdist)
        analysis = os.path.join(root, ".checkpointing", "analysis")
        print(
            f"networkx {args.version} as project code, Python {sys.version.split()[0]}, "
            f"median of {args.repeat} fresh processes each:"
        )
        samples = {}
        for which in ("shortest", "density"):
            run(root, which, 10)  # fills the cache entry and the .pyc files
            without, with_disk, hit, alone, rss, floors = [], [], [], [], [], []
            for _ in range(args.repeat):
                shutil.rmtree(analysis, ignore_errors=True)
                result = run(root, which, 10)
                without.append(result["first_ms"])
                rss.append(result["maxrss_mb"])
                result = run(root, which, args.calls)
                with_disk.append(result["first_ms"])
                hit.append(result["hit_us"])
                alone.append(result["alone_us"])
                floors.append(result["floor"])
            samples[which] = {
                "first_ms_no_analysis": without,
                "first_ms_stored_analysis": with_disk,
                "hit_us": hit,
                "alone_us": alone,
                "maxrss_mb": rss,
                "floor_digest_ms": [
                    f["digest every distinct object once, us"] / 1000 for f in floors
                ],
            }
            h, a = statistics.median(hit), statistics.median(alone)
            print(f"  {which}:")
            print(
                f"    first call, analysis not on disk : {statistics.median(without):9.1f} ms"
                f"   (target <= 3000 ms)"
            )
            print(
                f"    first call, analysis on disk     : {statistics.median(with_disk):9.1f} ms"
                f"   (target <= 20 ms)"
            )
            print(
                f"    warm hit {h:8.1f} us; hit without dependencies {a:6.1f} us: "
                f"ratio {h / a:6.1f}   (target <= 2)"
            )
            print(f"    peak memory (first call, no analysis): {statistics.median(rss):7.1f} MB")
            floor = {k: statistics.median(f[k] for f in floors) for k in floors[0]}
            print(
                f"    floor: the key reads {floor['places']:.0f} places "
                f"({floor['distinct objects']:.0f} distinct objects); a warm hit checks "
                f"{floor['names checked by a hit']:.0f} names in "
                f"{floor['namespaces']:.0f} namespaces"
            )
            print(
                f"      reading every place once (the least a new process must do): "
                f"{floor['read every place once, us'] / 1000:7.1f} ms"
            )
            print(
                f"      digesting each distinct object read once, in one pass:   "
                f"{floor['digest every distinct object once, us'] / 1000:7.1f} ms"
            )
            print(
                f"      one identity pass over the names a hit checks: "
                f"{floor['check the names a hit checks, us']:7.1f} us = "
                f"{floor['check the names a hit checks, us'] / a:5.0f}x a hit without dependencies"
            )
        if args.json:
            print(json.dumps(samples))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
