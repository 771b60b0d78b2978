"""Instructions per warm hit, counted by callgrind: figures that do not move with the
machine's load, unlike times (issue 12, target 4).

Usage: python benchmarks/hit_instructions.py [--calls 10000]

Needs ``valgrind``. For each workload, runs a fresh process under
``valgrind --tool=callgrind`` twice, making the workload's call 0 and then ``--calls``
times after the same setup, and prints the difference divided by ``--calls``: the
user-space instructions of one call (the kernel's part of a system call is not
counted). Workloads: a hit of ``plain(1, 2)`` (no dependencies), a hit of
``deps(1, 2)`` (reads one global helper), and the open + ``pickle.load`` + close of a
small file that target 4 compares the hit with. Compare two versions of the code by
running this with each (e.g. ``PYTHONPATH=<other checkout>/src``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

WORKLOAD = """
import os, pickle, sys
mode, n = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, os.getcwd())
with open("main_mod.py", "w") as fh:
    fh.write('''
import sys
from checkpointing import checkpoint
def body_ran():
    pass
@checkpoint
def plain(a, b):
    return a + b
@checkpoint
def deps(a, b):
    body_ran()
    return a + b
''')
import main_mod
with open("small.pickle", "wb") as fh:
    pickle.dump(3, fh)
def read_small():
    with open("small.pickle", "rb") as fh:
        pickle.load(fh)
f = {"hit": main_mod.plain, "hit with a helper": main_mod.deps, "small file": read_small}[mode]
args = () if mode == "small file" else (1, 2)
for _ in range(3):  # the miss, the first hit (a file read), a hit from memory
    f(*args)
for _ in range(n):
    f(*args)
"""


def instructions(mode: str, calls: int) -> int:
    """Instructions of a fresh process making the call ``calls`` times."""
    with tempfile.TemporaryDirectory(prefix="ckpt-instr-") as directory:
        script = os.path.join(directory, "workload.py")
        with open(script, "w") as fh:
            fh.write(WORKLOAD)
        env = dict(os.environ, PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1")
        proc = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                script,
                mode,
                str(calls),
            ],
            cwd=directory,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    found = re.search(r"Collected : (\d+)", proc.stderr)
    if found is None:
        raise SystemExit(f"no instruction count in valgrind's output:\n{proc.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=10000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install valgrind")
    for mode in ("hit", "hit with a helper", "small file"):
        per_call = (instructions(mode, args.calls) - instructions(mode, 0)) / args.calls
        print(
            f"{mode:>18}: {per_call:8,.0f} instructions a call ({args.calls} calls, "
            f"Python {sys.version.split()[0]})"
        )


if __name__ == "__main__":
    main()
