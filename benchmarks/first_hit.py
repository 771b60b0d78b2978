"""The first hit of a fresh process and ``import checkpointing`` (issue 12, target 5),
this code against another, alternately in the same minutes (the machine's speed drifts).

Usage: python benchmarks/first_hit.py [--runs 30] [--against SRC] [--helper]

``SRC`` is the ``src`` folder of other code of the package (e.g. ``git archive main src |
tar -x -C /tmp/main``, then ``--against /tmp/main/src``); it is put first on
``PYTHONPATH``. Without it, this code alone is measured. For each code: the first call
``f(1, 2)`` of a fresh process, answered from the stored analysis and entry (median and
min over ``--runs`` processes, timed inside the process); the Python calls of that call
(cProfile) and its system calls (strace, if installed), which do not drift; and
``python -X importtime -c 'import checkpointing'`` (min and median of 15) beside the
bare interpreter's ``site``. With ``--helper``, ``f`` calls a helper, as the program of
``benchmarks/suite.py``'s table 3 does (a plan of two definitions and a global guard).
Byte code is compiled first: the environment may set ``PYTHONDONTWRITEBYTECODE``, and an
import would then measure compilation.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent

PROGRAM = r"""
import json, os, sys, time
from checkpointing import checkpoint

sys.bench_runs = 0  # counted on sys: a global would be a value f reads (in its key)

def body_ran():
    sys.bench_runs += 1

@checkpoint(directory=sys.argv[1])
def f(a, b):
    BODY
    return a + b

mode = sys.argv[2]
if mode == "profile":
    import cProfile, pstats
    profile = cProfile.Profile()
    profile.enable(); f(1, 2); profile.disable()
    print(json.dumps({"calls": pstats.Stats(profile).total_calls}))
elif mode == "strace":
    fd = os.open(os.devnull, os.O_WRONLY)
    os.write(fd, b"MARK-START"); f(1, 2); os.write(fd, b"MARK-END")
else:
    t = time.perf_counter(); f(1, 2); first = time.perf_counter() - t
    assert mode == "fill" or not sys.bench_runs, "the first call was not a hit"
    print(json.dumps({"first_ms": first * 1000}))
"""


def _env(src: Optional[str]) -> Dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    if src is not None:
        env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _run(src: Optional[str], folder: str, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, os.path.join(folder, "main.py"), os.path.join(folder, "cache"), *args],
        cwd=folder,
        env=_env(src),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if proc.returncode:
        raise SystemExit(proc.stderr)
    return proc.stdout


def _system_calls(src: Optional[str], folder: str) -> Optional[int]:
    if shutil.which("strace") is None:
        return None
    log = os.path.join(folder, "strace.log")
    subprocess.run(
        ["strace", "-f", "-o", log, sys.executable, os.path.join(folder, "main.py")]
        + [os.path.join(folder, "cache"), "strace"],
        cwd=folder,
        env=_env(src),
        capture_output=True,
        timeout=300,
    )
    lines = Path(log).read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if "MARK-START" in line)
    end = next(i for i, line in enumerate(lines) if "MARK-END" in line)
    return end - start - 1


def _import_ms(src: Optional[str], folder: str, code: str, module: str) -> float:
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", code],
        capture_output=True,
        text=True,
        env=_env(src),
        cwd=folder,
    )
    if module:
        last = [line for line in proc.stderr.splitlines() if line.rstrip().endswith(f"| {module}")]
        return int(last[-1].split("|")[1]) / 1000
    top = [line.split("|") for line in proc.stderr.splitlines()[1:]]
    return sum(int(t[1]) for t in top if re.match(r" \S", t[2])) / 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--against", help="the src folder of the code to compare with")
    parser.add_argument(
        "--helper",
        action="store_true",
        help="f counts its runs through a helper function, as the suite's program does "
        "(table 3): its plan has two definitions and a global guard",
    )
    args = parser.parse_args()
    program = PROGRAM.replace("BODY", "body_ran()" if args.helper else "sys.bench_runs += 1")
    codes: Dict[str, Optional[str]] = {"this code": str(ROOT / "src")}
    if args.against:
        codes["against"] = os.path.abspath(args.against)
    folders: Dict[str, str] = {}
    for name, src in codes.items():
        compileall.compile_dir(str(src), quiet=1)
        folders[name] = tempfile.mkdtemp(prefix="ckpt-first-hit-")
        Path(folders[name], "main.py").write_text(program)
        _run(src, folders[name], "fill")
    first: Dict[str, List[float]] = {name: [] for name in codes}
    imports: Dict[str, List[float]] = {name: [] for name in codes}
    bare: List[float] = []
    order = list(codes)
    try:
        for i in range(args.runs):
            for name in order if i % 2 == 0 else order[::-1]:
                out = _run(codes[name], folders[name], "check")
                first[name].append(json.loads(out)["first_ms"])
        for _ in range(15):
            for name in order:
                imports[name].append(
                    _import_ms(codes[name], folders[name], "import checkpointing", "checkpointing")
                )
            bare.append(_import_ms(None, folders[order[0]], "pass", ""))
        print(f"{'':10} first hit ms (median, min)  calls  system calls  import ms (min, median)")
        for name in order:
            calls = json.loads(_run(codes[name], folders[name], "profile"))["calls"]
            system = _system_calls(codes[name], folders[name])
            print(
                f"{name:10} {statistics.median(first[name]):8.3f} {min(first[name]):8.3f}"
                f"  {calls:12d}  {'-' if system is None else system:>12}"
                f"  {min(imports[name]):8.2f} {statistics.median(imports[name]):8.2f}"
            )
        print(f"bare interpreter, site: {min(bare):.2f} ms (min of 15)")
    finally:
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
