"""What a stored walk would cost: a new process's first key checked from one flat list.

Usage: python benchmarks/flat_check.py [--project networkx|large] [--repeat 5]

A new process's first call of a function whose analysis is stored rebuilds every plan
its key reaches (the function's and each definition met in a value), then walks and
digests what they read. This benchmark measures the alternative we did not build (it
would be a second definition of what a key covers, beside the plans): every file, name
and place those plans name, deduplicated into one flat list in a first process, then,
in fresh processes, checked from that list alone:

* files: each source file's digest as the source index records it;
* names: each module global a plan finds code through, described and compared, and each
  function a code guard names, found by its qualified name;
* places: each global, attribute and default value the plans read, read once;
* values: every value read, digested once in a single pass with the definitions inside
  as placeholders (their own reads are among the places).

``--project networkx`` is the real-world suite's networkx 3.2.1 driver
(``path_lengths``); ``--project large`` is ``large_project.py``'s networkx 3.6.1 with
``shortest``. Both must already be fetched by those benchmarks (or are fetched here).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent

# Run in the project folder, first process: call the function with its analysis stored
# (a second run), recording every stored plan the key computation rebuilt.
CAPTURE = textwrap.dedent("""
    import marshal, os, sys, warnings
    warnings.simplefilter("ignore")
    os.environ["RW_MODE"] = "cached"
    sys.path.insert(0, os.getcwd())
    from checkpointing import keyplan
    plans = []
    rebuild = keyplan._rebuild
    def recording(func, data, *args, **kwargs):
        plans.append(data)
        return rebuild(func, data, *args, **kwargs)
    keyplan._rebuild = recording
    import {module} as target
    target.{call}
    with open(sys.argv[1], "wb") as handle:
        handle.write(marshal.dumps([[p["guards"], p["slots"], p["files"]] for p in plans]))
    print(len(plans))
""")

# Fresh process: the flat check, each part timed.
CHECK = textwrap.dedent("""
    import json, marshal, os, sys, time, warnings
    warnings.simplefilter("ignore")
    os.environ["RW_MODE"] = "cached"
    sys.path.insert(0, os.getcwd())
    import {module} as target  # the program's imports, not timed
    from checkpointing import keyplan
    from checkpointing.analysis.resolve import unwrap
    from checkpointing.source import INDEX

    clock = time.perf_counter
    here = keyplan._HERE
    t0 = clock()
    with open(sys.argv[1], "rb") as handle:
        plans = marshal.loads(handle.read())
    files, guards, places = {{}}, {{}}, {{}}
    for plan_guards, plan_slots, plan_files in plans:
        files.update(plan_files)
        for spec in plan_guards:
            guards.setdefault(repr(spec), spec)
        for _, spec in plan_slots:
            places.setdefault(repr(spec), spec)
    t1 = clock()
    ok = True
    for filename, digest in files.items():
        record = INDEX.by_filename(filename)
        ok = ok and record is not None and record.digest.hex() == digest
    t2 = clock()
    named = {{}}

    def by_name(description):
        key = tuple(description)
        if key not in named:
            if description[0] == "function":
                named[key] = keyplan._function_by_name(description, here)
            else:  # a class, found by its qualified name as a stored plan finds it
                named[key] = keyplan._find_definition(None, {{}}, description, here, None)
        return named[key]

    unfound = 0
    for kind, where, name, expected in guards.values():
        if kind == "global":
            namespace = here.namespace(where, name)
            current = namespace.get(name) if namespace is not None else None
            unfound += not here.same(current, expected)
        elif kind == "code" and expected[0] == "function":
            unfound += by_name(expected) is None
    t3 = clock()
    values = []
    for spec in places.values():
        kind = spec[0]
        if kind == "global":
            namespace = here.namespace(spec[1], spec[2])
            values.append(namespace.get(spec[2]) if namespace is not None else None)
        elif kind in ("attribute", "attributes") and spec[1][0] in ("class", "function"):
            owner = by_name(spec[1])
            owner = vars(unwrap(owner)) if owner is not None else {{}}
            for name in [spec[3]] if kind == "attribute" else spec[3]:
                values.append(owner.get(name))
        elif kind == "defaults" and spec[1][0] == "function":
            function = by_name(spec[1])
            if function is not None:
                values.append((function.__defaults__, function.__kwdefaults__))
    t4 = clock()
    keyplan._probe(values)
    t5 = clock()
    print(json.dumps({{
        "plans": len(plans), "files": len(files), "names": len(guards),
        "places": len(places), "values": len(values), "not found by name": unfound,
        "files ok": ok,
        "read the list, ms": (t1 - t0) * 1e3, "files, ms": (t2 - t1) * 1e3,
        "names, ms": (t3 - t2) * 1e3, "places, ms": (t4 - t3) * 1e3,
        "values, ms": (t5 - t4) * 1e3, "total, ms": (t5 - t0) * 1e3,
    }}))
""")


def _networkx_project(root: Path) -> tuple:
    sys.path.insert(0, str(HERE / "realworld"))
    import run as realworld  # noqa: E402  (benchmarks/realworld/run.py)
    from projects import PROJECTS  # noqa: E402

    project = PROJECTS["networkx"]
    realworld.unpack(project, realworld.fetch(project), root)
    return "driver", "path_lengths(60, 150, 1)"


def _large_project(root: Path) -> tuple:
    sys.path.insert(0, str(HERE))
    import large_project  # noqa: E402

    large_project.make_project(str(root), large_project.fetch("3.6.1"))
    (root / "flat_target.py").write_text(
        "from checkpointing import checkpoint\n"
        "import networkx as nx\n\n"
        "@checkpoint\n"
        "def shortest(n):\n"
        "    G = nx.path_graph(n)\n"
        "    nx.add_path(G, [0, n // 2, n - 1])\n"
        "    return nx.shortest_path(G, 0, n - 1)\n"
    )
    return "flat_target", "shortest(30)"


def _python(root: Path, code: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args], cwd=root, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return proc.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--project", choices=["networkx", "large"], default="networkx")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="ckpt-flat-"))
    try:
        module, call = (_networkx_project if args.project == "networkx" else _large_project)(root)
        capture = CAPTURE.format(module=module, call=call)
        _python(root, capture, str(root / "first.marshal"))  # the analysis, stored
        plans = _python(root, capture, str(root / "plans.marshal"))  # read back
        runs = [
            json.loads(_python(root, CHECK.format(module=module), str(root / "plans.marshal")))
            for _ in range(args.repeat)
        ]
    finally:
        shutil.rmtree(root, ignore_errors=True)
    first = runs[0]
    print(
        f"{args.project}: {plans} plans rebuilt by a new process's first call; the flat "
        f"list: {first['files']} files, {first['names']} names, {first['places']} places, "
        f"{first['values']} values ({first['not found by name']} names not found by name; "
        f"files as stored: {first['files ok']})"
    )
    for part in ("read the list", "files", "names", "places", "values", "total"):
        times = [r[f"{part}, ms"] for r in runs]
        print(
            f"  {part:14s} median {statistics.median(times):7.2f} ms "
            f"(min {min(times):.2f}, max {max(times):.2f}, {len(times)} fresh processes)"
        )


if __name__ == "__main__":
    main()
