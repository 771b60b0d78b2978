"""The speed suite: checkpointing against its peers and the machine's limits, in one run.

Usage: python benchmarks/suite.py [--runs 5] [--quick] [--only SCENARIO ...]

Builds two virtual environments under ``benchmarks/.work/`` on first use: one with
this package, joblib, cachier, diskcache, numpy and pandas; one with checkpointing
1.0.1 (same import name, so it needs its own). Every measurement runs in a fresh
subprocess with its cache in a new temporary directory, checks that each hit was
a hit (the body counts its runs), and is repeated ``--runs`` times; the tables give
median (min-max). Writes ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import textwrap
import time
import venv
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

ROOT = Path(__file__).resolve().parent.parent
WORK = ROOT / "benchmarks" / ".work"
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
LIBRARIES = ["checkpointing", "joblib", "cachier", "diskcache", "checkpointing 1.0.1"]

# How each library decorates ``f`` with its cache in directory ``DIR``.
DECORATE = {
    "checkpointing": "from checkpointing import checkpoint\ncache = checkpoint(directory=DIR)\n",
    "checkpointing 1.0.1": "from checkpointing import checkpoint\n"
    "cache = checkpoint(directory=DIR)\n",
    "joblib": "import joblib\ncache = joblib.Memory(DIR, verbose=0).cache\n",
    "cachier": "from cachier import cachier\ncache = cachier(cache_dir=DIR, separate_files=True)\n",
    "diskcache": "import diskcache\ncache = diskcache.Cache(DIR).memoize()\n",
}

PRELUDE = """
import json, os, resource, statistics, sys, time
DIR = sys.argv[1]
# Bodies count their runs on the sys module: a global list would be a value the
# functions read, and checkpointing (rightly) puts those in the key.
sys.bench_runs = 0
def body_ran():
    sys.bench_runs += 1
def rss_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
"""

SCENARIOS: Dict[str, str] = {}

SCENARIOS["warm_hit"] = """
import pickle
@cache
def f(a, b):
    body_ran()
    return a + b

# The machine's limit, same process: open + pickle.load + close of a small file,
# measured in rounds alternating with the hits (2,000 of each).
path = os.path.join(os.path.dirname(DIR), "small.pickle")
with open(path, "wb") as fh:
    pickle.dump(3, fh)

def read_small():
    with open(path, "rb") as fh:
        pickle.load(fh)

f(1, 2)
hits, reads = [], []
clock = time.perf_counter_ns
for _ in range(10):
    for _ in range(200):
        t = clock(); f(1, 2); hits.append(clock() - t)
    for _ in range(200):
        t = clock(); read_small(); reads.append(clock() - t)
assert sys.bench_runs == 1, f"{sys.bench_runs} runs: the hits were not hits"
print(json.dumps({"us": statistics.median(hits) / 1000,
                  "file_us": statistics.median(reads) / 1000}))
"""

SCENARIOS["many_entries"] = """
@cache
def f(a, b):
    body_ran()
    return a + b

if sys.argv[2] == "fill":
    # Driven by the suite through stdin, in rounds interleaved with the other libraries'
    # processes: "round START N" makes N misses with new arguments and prints their mean
    # wall and CPU time per call; "end" checks they were all misses and measures the
    # file system's part.
    f(-1, -1)  # the first call of a process (analysis, folders) is not a typical miss
    print(json.dumps({"ready": True}), flush=True)
    misses = 0
    for line in sys.stdin:
        command = line.split()
        if command[0] == "round":
            start, n = int(command[1]), int(command[2])
            c, t = time.process_time(), time.perf_counter()
            for i in range(start, start + n):
                f(i, i)
            wall, cpu = time.perf_counter() - t, time.process_time() - c
            misses += n
            print(json.dumps({"us": wall / n * 1e6, "cpu_us": cpu / n * 1e6}), flush=True)
            continue
        assert sys.bench_runs == misses + 1, "some calls were not misses"
        # The file system's part, same process: create, write and rename a small file
        # (what a store of one file per entry cannot avoid), 2,000 times beside it.
        folder = os.path.join(os.path.dirname(DIR), "files")
        os.makedirs(folder)
        samples = []
        clock = time.perf_counter_ns
        for i in range(2000):
            t = clock()
            temporary, final = os.path.join(folder, f".t{i}"), os.path.join(folder, f"e{i}")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            os.write(fd, bytes(300))
            os.close(fd)
            os.replace(temporary, final)
            samples.append(clock() - t)
        print(json.dumps({"create_us": statistics.mean(samples) / 1000}), flush=True)
        break
else:
    f(1, 1)  # stored by the filling process
    samples = []
    clock = time.perf_counter_ns
    for _ in range(2000):
        t = clock(); f(1, 1); samples.append(clock() - t)
    assert not sys.bench_runs, "the hit was not a hit"
    print(json.dumps({"us": statistics.median(samples) / 1000}))
"""

SCENARIOS["fresh_process"] = """
@cache
def f(a, b):
    body_ran()
    return a + b

t = time.perf_counter(); f(1, 2); first = time.perf_counter() - t
if sys.argv[2] == "check":
    assert not sys.bench_runs, "the first call in a fresh process was not a hit"
print(json.dumps({"first_ms": first * 1000, "total_ms": (time.perf_counter() - START) * 1000}))
"""

SCENARIOS["array_argument"] = """
import numpy as np
kind = sys.argv[2]
if kind == "array":
    arg = np.random.default_rng(0).random(512 * 1024 * 1024 // 8)
else:
    import pandas as pd
    rng = np.random.default_rng(0)
    arg = pd.DataFrame({c: rng.random(10_000_000) for c in "abcd"})
nbytes = arg.nbytes if kind == "array" else int(arg.memory_usage(index=False).sum())

@cache
def f(x):
    body_ran()
    return 1

f(arg)
base = rss_mib()
samples = []
for _ in range(3):
    t = time.perf_counter(); f(arg); samples.append(time.perf_counter() - t)
assert sys.bench_runs == 1, "the hits were not hits"
best = min(samples)
print(json.dumps({"s": best, "gbps": nbytes / best / 1e9, "extra_mib": rss_mib() - base}))
"""

SCENARIOS["array_result"] = """
import numpy as np
N = 512 * 1024 * 1024 // 8
HERE = os.path.dirname(DIR)
# Each figure is the best of 3 in this process, alternating with the limit it is
# compared with: on a shared machine, other work only ever slows a measurement down.

def files_under(folder):
    return [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names]

def raw_write(nbytes, fsync):
    # The machine's limit: the same number of bytes written from memory to a new file
    # beside the cache (+ fsync when asked).
    data = np.ones(nbytes // 8)
    path = os.path.join(HERE, "raw.bin")
    t = time.perf_counter()
    with open(path, "wb", buffering=0) as fh:
        fh.write(memoryview(data).cast("B"))
        if fsync:
            os.fsync(fh.fileno())
    s = time.perf_counter() - t
    os.remove(path)
    return nbytes / s / 1e9

def read_hot():
    # The machine's limit: the library's own file(s), page cache hot, read into fresh
    # memory of their size (what a load must fill).
    paths = [p for p in files_under(DIR) if os.path.getsize(p) > 2**20]
    total = sum(os.path.getsize(p) for p in paths)
    t = time.perf_counter()
    for p in paths:
        target = np.empty(os.path.getsize(p), dtype=np.uint8)
        with open(p, "rb", buffering=0) as fh:
            fh.readinto(memoryview(target))
        del target
    return total / (time.perf_counter() - t) / 1e9

def drop_cache():
    for path in files_under(DIR):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)

@cache
def f(n):
    body_ran()
    t = time.perf_counter()
    out = np.ones(N)
    sys.bench_compute = time.perf_counter() - t
    return out

def timed(n):
    t = time.perf_counter(); r = f(n); s = time.perf_counter() - t
    return r, s

out = {}
if sys.argv[2] == "save":
    raw, raw_fsync, save = [], [], []
    for i in range(3):
        raw.append(raw_write(N * 8, False))
        r, s = timed(N + i)  # a miss: computed, then saved
        assert sys.bench_runs == i + 1
        save.append(r.nbytes / (s - sys.bench_compute) / 1e9)
        del r
        raw_fsync.append(raw_write(N * 8, True))
    out.update(gbps=max(save), raw_gbps=max(raw), raw_fsync_gbps=max(raw_fsync))
else:
    loads, reads = [], []
    for i in range(3):
        if sys.argv[2] == "cold":
            drop_cache()
        base = rss_mib()
        r, s = timed(N + 2)  # the last saved (diskcache's default size limit is 1 GB)
        assert not sys.bench_runs and r.shape == (N,) and r[-1] == 1.0, "not a hit"
        if i == 0:
            out["peak_ratio"] = (rss_mib() - base) / (r.nbytes / 2**20)
        loads.append(r.nbytes / s / 1e9)
        del r
        if sys.argv[2] == "load":
            reads.append(read_hot())
    out["gbps"] = max(loads)
    if reads:
        out["read_hot_gbps"] = max(reads)
print(json.dumps(out))
"""

LIMITS = """
import json, os, pickle, sys, time, statistics
import numpy as np, xxhash
DIR = sys.argv[1]
out = {}
def plain(a, b):
    return a + b
clock = time.perf_counter_ns
samples = []
for _ in range(2000):
    t = clock(); plain(1, 2); samples.append(clock() - t)
out["plain_call_us"] = statistics.median(samples) / 1000
path = os.path.join(DIR, "small.pickle")
with open(path, "wb") as fh:
    pickle.dump(3, fh)
samples = []
for _ in range(2000):
    t = clock()
    with open(path, "rb", buffering=0) as fh:
        pickle.loads(fh.read())
    samples.append(clock() - t)
out["small_file_read_us"] = statistics.median(samples) / 1000
a = np.ones(512 * 1024 * 1024 // 8)
t = time.perf_counter(); xxhash.xxh3_128(memoryview(a).cast("B")).digest()
out["xxh3_gbps"] = a.nbytes / (time.perf_counter() - t) / 1e9
big = os.path.join(DIR, "big.bin")
t = time.perf_counter()
with open(big, "wb", buffering=0) as fh:
    fh.write(memoryview(a).cast("B")); os.fsync(fh.fileno())
out["write_fsync_gbps"] = a.nbytes / (time.perf_counter() - t) / 1e9
t = time.perf_counter()
with open(big, "rb", buffering=0) as fh:
    fh.read()
out["read_bytes_gbps"] = a.nbytes / (time.perf_counter() - t) / 1e9
t = time.perf_counter()
b = np.empty(a.shape)
with open(big, "rb", buffering=0) as fh:
    fh.readinto(memoryview(b).cast("B"))
out["read_into_numpy_gbps"] = a.nbytes / (time.perf_counter() - t) / 1e9
print(json.dumps(out))
"""


def python_of(library: str) -> str:
    name = "venv-checkpointing-1.0.1" if library == "checkpointing 1.0.1" else "venv-bench"
    env_dir = WORK / name
    python = env_dir / "bin" / "python"
    packages = (
        ["checkpointing==1.0.1", "numpy", "pandas"]
        if library == "checkpointing 1.0.1"
        else ["-e", str(ROOT), "joblib", "cachier", "diskcache", "numpy", "pandas"]
    )
    if not python.exists():
        venv.create(env_dir, with_pip=True)
    ready = (
        subprocess.run(
            [str(python), "-c", "import numpy, pandas, checkpointing"], capture_output=True
        ).returncode
        == 0
    )
    if not ready:
        subprocess.run([str(python), "-m", "pip", "install", "-q", *packages], check=True)
    return str(python)


def run_script(
    python: str, code: str, directory: str, *args: str, timeout: float = 900
) -> Dict[str, Any]:
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    script = os.path.join(directory, "bench_script.py")
    with open(script, "w") as handle:
        handle.write(code)
    proc = subprocess.run(
        [python, script, os.path.join(directory, "cache"), *args],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr else "failed")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def program(library: str, scenario: str) -> str:
    start = "import time\nSTART = time.perf_counter()\n"
    return (
        start + textwrap.dedent(PRELUDE) + DECORATE[library] + textwrap.dedent(SCENARIOS[scenario])
    )


class Table:
    """Samples per (row, column), rendered as median (min-max)."""

    def __init__(self, title: str, unit: str, note: str = "") -> None:
        self.title, self.unit, self.note = title, unit, note
        self.cells: Dict[str, Dict[str, List[float]]] = {}
        self.errors: Dict[str, Dict[str, str]] = {}

    def add(self, row: str, column: str, value: float) -> None:
        self.cells.setdefault(row, {}).setdefault(column, []).append(value)

    def fail(self, row: str, column: str, reason: str) -> None:
        self.errors.setdefault(row, {})[column] = reason

    def median(self, row: str, column: str) -> Optional[float]:
        values = self.cells.get(row, {}).get(column)
        return statistics.median(values) if values else None

    def markdown(self) -> str:
        columns: List[str] = []
        for row in list(self.cells) + list(self.errors):
            for column in list(self.cells.get(row, {})) + list(self.errors.get(row, {})):
                if column not in columns:
                    columns.append(column)
        lines = [
            f"### {self.title}",
            "",
            self.note,
            "" if self.note else "",
            "| library | "
            + " | ".join(
                f"{c} ({self.unit})" if self.unit and not c.startswith("/ ") else c for c in columns
            )
            + " |",
            "| --- |" + " --- |" * len(columns),
        ]
        for row in LIBRARIES + sorted(set(self.cells) - set(LIBRARIES)):
            if row not in self.cells and row not in self.errors:
                continue
            cells = []
            for column in columns:
                values = self.cells.get(row, {}).get(column)
                if values:
                    cells.append(
                        _fmt(statistics.median(values))
                        + (f" ({_fmt(min(values))}-{_fmt(max(values))})" if len(values) > 1 else "")
                    )
                else:
                    cells.append(self.errors.get(row, {}).get(column, "-"))
            lines.append(f"| {row} | " + " | ".join(cells) + " |")
        return "\n".join(line for line in lines if line is not None) + "\n"


def _fmt(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def repeat(
    runs: int, fn: Callable[[], Dict[str, Any]], table: Table, row: str, columns: Dict[str, str]
) -> None:
    for _ in range(runs):
        try:
            result = fn()
        except subprocess.TimeoutExpired:
            for column in columns.values():
                table.fail(row, column, "timeout")
            return
        except Exception as exc:  # report, do not stop the suite
            for column in columns.values():
                table.fail(row, column, f"failed: {str(exc)[:60]}")
            return
        for key, column in columns.items():
            if key in result:
                table.add(row, column, result[key])


def tmpdir() -> str:
    return tempfile.mkdtemp(prefix="ckpt-suite-", dir=os.environ.get("BENCH_TMP"))


WARM_PAIRED = "/ the file read, same process"


def scenario_warm_hit(runs: int, libraries: List[str]) -> Table:
    table = Table(
        "1. Warm hit of f(1, 2)",
        "µs",
        "Medians of 2,000 hits and of 2,000 open+pickle.load+close of a small file, in "
        "one process, in alternating rounds of 200, and their ratio in each process; "
        "miss + save: 20,000 calls with new arguments in one process (mean; in rounds "
        "interleaved with the other libraries', see table 3), then 2,000 "
        "create+write+rename of a small file beside the cache (mean).",
    )
    for library in libraries:

        def once() -> Dict[str, Any]:
            d = tmpdir()
            try:
                result = run_script(python_of(library), program(library, "warm_hit"), d)
            finally:
                shutil.rmtree(d, ignore_errors=True)
            # Paired in the process: its hits and its reads alternate, so both see the
            # same state of the machine (whose speed here changes by 1.5x from minute to
            # minute); the best hit and the best read of the run may not.
            result["ratio"] = result["us"] / result["file_us"]
            return result

        repeat(
            runs,
            once,
            table,
            library,
            {
                "us": "hit",
                "file_us": "open+pickle.load+close of a small file, same process",
                "ratio": WARM_PAIRED,
            },
        )
    return table


# The fill of scenario_many_entries: ROUNDS rounds of ROUND_MISSES misses per library.
ROUNDS, ROUND_MISSES = 10, 2000


class _Filler:
    """One library's filling process, driven a round at a time through its stdin."""

    def __init__(self, library: str, directory: str) -> None:
        script = os.path.join(directory, "bench_script.py")
        with open(script, "w") as handle:
            handle.write(program(library, "many_entries"))
        env = dict(os.environ)
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        self._stderr = open(os.path.join(directory, "stderr.txt"), "w+")
        self.proc = subprocess.Popen(
            [python_of(library), script, os.path.join(directory, "cache"), "fill"],
            cwd=directory,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        self.ask(None)  # its first call made

    def ask(self, command: Optional[str]) -> Dict[str, Any]:
        """Send ``command`` (if any) and return the line of JSON it answers."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self._stderr.seek(0)
            lines = self._stderr.read().strip().splitlines()
            raise RuntimeError(lines[-1] if lines else f"exit status {self.proc.returncode}")
        return json.loads(line)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self._stderr.close()


def scenario_many_entries(runs: int, libraries: List[str], table: Table) -> Table:
    """Fill a cache per library with ROUNDS x ROUND_MISSES misses, the libraries' rounds
    interleaved (each process does one round of new arguments while the others wait,
    the order reversed every other round), so that a swing of the machine's load
    weighs on every library alike; then measure hits among those entries."""
    rounds = Table(
        "3. Miss + save of a small result, in interleaved rounds",
        "",
        f"Each library fills its cache with {ROUNDS} rounds of {ROUND_MISSES:,} calls with "
        "new arguments, one long-lived process per library, the libraries' rounds "
        "interleaved (the order reversed every other round). Per call: the median over "
        "rounds of each round's mean; the ratio to diskcache: the median of the ratios "
        "of the rounds of the same pass (this package's and diskcache's run back to "
        "back), in wall and CPU time.",
    )
    folders = {library: tmpdir() for library in libraries}
    fillers: Dict[str, _Filler] = {}
    samples: Dict[str, List[Dict[str, Any]]] = {library: [] for library in libraries}
    try:
        for library in libraries:
            try:
                fillers[library] = _Filler(library, folders[library])
            except Exception as exc:
                table.fail(library, "hit, 20,000 entries", f"failed: {str(exc)[:60]}")
        for number in range(ROUNDS):
            # This package's rounds and diskcache's (target 3) are run back to back.
            pair = ("checkpointing", "diskcache")
            order = [name for name in pair if name in fillers]
            order += [name for name in fillers if name not in pair]
            order = order if number % 2 == 0 else order[::-1]
            for library in order:
                try:
                    # Arguments new in each round; all rounds: (0, 0) to (19999, 19999).
                    sample = fillers[library].ask(f"round {number * ROUND_MISSES} {ROUND_MISSES}")
                except Exception as exc:
                    table.fail(library, "hit, 20,000 entries", f"failed: {str(exc)[:60]}")
                    fillers.pop(library).close()
                    samples.pop(library)
                    continue
                samples[library].append(sample)
        for library in list(fillers):
            try:
                created = fillers[library].ask("end")
            except Exception as exc:
                table.fail(library, "hit, 20,000 entries", f"failed: {str(exc)[:60]}")
                fillers.pop(library).close()
                samples.pop(library)
                continue
            wall = [sample["us"] for sample in samples[library]]
            table.add(library, "miss + save, per call of 20,000", statistics.mean(wall))
            table.add(
                library,
                "create+write+rename of a small file, mean, same process",
                created["create_us"],
            )
            rounds.add(library, "miss + save, median of rounds (µs)", statistics.median(wall))
            rounds.add(
                library,
                "CPU time, median of rounds (µs)",
                statistics.median(sample["cpu_us"] for sample in samples[library]),
            )
            if "diskcache" in samples and library != "diskcache":
                for kind, column in (("us", "wall"), ("cpu_us", "CPU")):
                    ratios = [
                        ours[kind] / theirs[kind]
                        for ours, theirs in zip(samples[library], samples["diskcache"])
                    ]
                    rounds.add(
                        library,
                        f"/ diskcache's, median of paired rounds ({column})",
                        statistics.median(ratios),
                    )
        for filler in fillers.values():
            filler.close()
        for library in fillers:
            code = program(library, "many_entries")
            d = folders[library]
            repeat(
                runs,
                lambda code=code, d=d, library=library: run_script(  # type: ignore[misc]
                    python_of(library), code, d, "hit"
                ),
                table,
                library,
                {"us": "hit, 20,000 entries"},
            )
    finally:
        for filler in fillers.values():
            filler.close()
        for folder in folders.values():
            shutil.rmtree(folder, ignore_errors=True)
    return rounds


def scenario_fresh(runs: int, libraries: List[str]) -> Table:
    table = Table(
        "3. A fresh process",
        "ms",
        "First call (a hit) timed inside the process; total = interpreter start "
        "to end of that call, as seen by the process; import = "
        "`python -X importtime -c 'import <library>'` cumulative.",
    )
    for library in libraries:
        python = python_of(library)
        d = tmpdir()
        try:
            code = program(library, "fresh_process")
            run_script(python, code, d, "fill")
            repeat(
                runs,
                lambda: run_script(python, code, d, "check"),
                table,
                library,
                {"first_ms": "first call", "total_ms": "total"},
            )
            module = {"checkpointing 1.0.1": "checkpointing"}.get(library, library)
            for _ in range(runs):
                env = dict(os.environ)
                env.pop("PYTHONDONTWRITEBYTECODE", None)
                proc = subprocess.run(
                    [python, "-X", "importtime", "-c", f"import {module}"],
                    capture_output=True,
                    text=True,
                    env=env,
                    cwd=d,
                )
                last = [
                    line
                    for line in proc.stderr.splitlines()
                    if f"| {module}" in line and line.rstrip().endswith(f"| {module}")
                ]
                if last:
                    table.add(library, "import", int(last[-1].split("|")[1]) / 1000)
        finally:
            shutil.rmtree(d, ignore_errors=True)
    bare = []
    for _ in range(runs):
        proc = subprocess.run(
            [python_of("checkpointing"), "-X", "importtime", "-c", "pass"],
            capture_output=True,
            text=True,
        )
        bare.append(
            sum(
                int(line.split("|")[1])
                for line in proc.stderr.splitlines()[1:]
                if line.split("|")[2].startswith(" ") and not line.split("|")[2].startswith("  ")
            )
            / 1000
        )
    for value in bare:
        table.add("bare interpreter (site)", "import", value)
    return table


def scenario_arrays(
    runs: int, libraries: List[str], arguments: bool = True, results: bool = True
) -> List[Table]:
    arg = Table(
        "4. A hit whose argument is big",
        "",
        "512 MiB float64 array, and a DataFrame of 10 million rows x 4 float64 "
        "columns (305 MiB): best of 3 hits; GB/s of argument hashed (and looked "
        "up); extra peak RSS during the hits in MiB.",
    )
    result = Table(
        "5. A 512 MiB numpy result",
        "",
        "Misses (pickle, write, fsync where the library does; the time to compute "
        "the array is subtracted) and hits (load) in separate processes; GB/s of "
        "result, best of 3 in each process, alternating with the limit it is "
        "compared with: raw write (+fsync) of as many bytes from memory to a new "
        "file beside the cache; the library's own file(s) read, page cache hot, into "
        "fresh memory of their size. Cold: the cache's files evicted from the page "
        "cache (fsync, then POSIX_FADV_DONTNEED) before each load. Load peak: RSS "
        "growth during the first warm load over the result's size.",
    )
    slow = {"checkpointing 1.0.1": 600, "cachier": 600}
    for library in libraries:
        python = python_of(library)
        for kind in ("array", "frame") if arguments else ():

            def hit(kind: str = kind) -> Dict[str, Any]:
                d = tmpdir()
                try:
                    return run_script(
                        python,
                        program(library, "array_argument"),
                        d,
                        kind,
                        timeout=slow.get(library, 300),
                    )
                finally:
                    shutil.rmtree(d, ignore_errors=True)

            label = "array" if kind == "array" else "DataFrame"
            repeat(
                runs,
                hit,
                arg,
                library,
                {"gbps": f"{label} GB/s", "extra_mib": f"{label} extra MiB"},
            )

        def save_load() -> Dict[str, Any]:
            d = tmpdir()
            try:
                code = program(library, "array_result")
                limit = slow.get(library, 300)
                saved = run_script(python, code, d, "save", timeout=limit)
                loaded = run_script(python, code, d, "load", timeout=limit)
                cold = run_script(python, code, d, "cold", timeout=limit)
                return {
                    "save": saved["gbps"],
                    "raw": saved["raw_gbps"],
                    "raw_fsync": saved["raw_fsync_gbps"],
                    "load": loaded["gbps"],
                    "read_hot": loaded["read_hot_gbps"],
                    "cold": cold["gbps"],
                    "peak": loaded["peak_ratio"],
                }
            finally:
                shutil.rmtree(d, ignore_errors=True)

        if not results:
            continue
        repeat(
            runs,
            save_load,
            result,
            library,
            {
                "save": "save GB/s",
                "raw": "raw write GB/s",
                "raw_fsync": "raw write+fsync GB/s",
                "load": "load, warm GB/s",
                "read_hot": "read its file, hot GB/s",
                "cold": "load, cold GB/s",
                "peak": "load peak / size",
            },
        )
    return ([arg] if arguments else []) + ([result] if results else [])


def scenario_chain(runs: int) -> Table:
    table = Table(
        "6. A 50-module dependency chain (checkpointing only)",
        "",
        "The peers do not follow dependencies. From `benchmarks/chain.py`.",
    )
    for _ in range(runs):
        proc = subprocess.run(
            [python_of("checkpointing"), str(ROOT / "benchmarks/chain.py"), "--repeat", "1"],
            capture_output=True,
            text=True,
            check=True,
        )
        for line in proc.stdout.splitlines():
            if "not on disk" in line:
                table.add(
                    "checkpointing",
                    "first call, no stored analysis (ms)",
                    float(line.split(":")[1].split()[0]),
                )
            elif "on disk" in line:
                table.add(
                    "checkpointing",
                    "first call, stored analysis (ms)",
                    float(line.split(":")[1].split()[0]),
                )
            elif "costs" in line:
                table.add(
                    "checkpointing",
                    "later call, extra over a lone hit (µs)",
                    float(line.split("costs")[1].split()[0]),
                )
    return table


def scenario_large(runs: int) -> Table:
    """Target 6: networkx 3.6.1 (about 300 modules) as project code, from
    ``benchmarks/large_project.py`` (its own fresh processes, ``runs`` of each kind)."""
    table = Table(
        "8. A large real codebase as project code (checkpointing only)",
        "",
        "networkx 3.6.1 unpacked into the project folder, so all of it is followed. From "
        "`benchmarks/large_project.py`: `shortest` builds a graph, `density` takes one. "
        "The floor: digesting once, in one pass, every distinct object the key reads, "
        "in the same processes (the least any sound check of a new process does).",
    )
    proc = subprocess.run(
        [
            python_of("checkpointing"),
            str(ROOT / "benchmarks" / "large_project.py"),
            "--repeat",
            str(runs),
            "--calls",
            "500",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=3600,
    )
    if proc.returncode != 0:
        table.fail("checkpointing", "first call, no stored analysis (ms)", "failed")
        return table
    samples = json.loads(proc.stdout.strip().splitlines()[-1])
    columns = {
        "first_ms_no_analysis": "first call, no stored analysis (ms)",
        "first_ms_stored_analysis": "first call, stored analysis (ms)",
        "floor_digest_ms": "floor: digest what it reads (ms)",
        "hit_us": "warm hit (µs)",
        "maxrss_mb": "peak memory (MB)",
    }
    for which, figures in samples.items():
        for key, column in columns.items():
            for value in figures[key]:
                table.add(f"checkpointing: {which}", column, value)
    return table


def scenario_limits(runs: int) -> Table:
    table = Table("7. Limits of this machine, same run", "", "")
    columns = {
        "plain_call_us": "plain call (µs)",
        "small_file_read_us": "open+read+unpickle+close of a small file (µs)",
        "xxh3_gbps": "xxh3-128 of 512 MiB (GB/s)",
        "write_fsync_gbps": "write+fsync 512 MiB (GB/s)",
        "read_bytes_gbps": "read 512 MiB into bytes (GB/s)",
        "read_into_numpy_gbps": "read into fresh numpy memory (GB/s)",
    }

    def once() -> Dict[str, Any]:
        d = tmpdir()
        try:
            os.makedirs(os.path.join(d, "cache"))
            return run_script(python_of("checkpointing"), LIMITS, d)
        finally:
            shutil.rmtree(d, ignore_errors=True)

    repeat(runs, once, table, "machine", columns)
    return table


DOCS = ROOT / "docs" / "performance.md"
DOCS_BEGIN = "<!-- generated by benchmarks/suite.py --docs: begin -->"
DOCS_END = "<!-- generated by benchmarks/suite.py --docs: end -->"


def _value(tables: List[Table], row: str, column: str) -> Optional[float]:
    """The best run of ``column`` for ``row`` (the highest GB/s or ratio, the lowest
    time), in whichever table holds that column: on a shared machine other work only
    ever slows a measurement down, so each side of a target's ratio is taken at its
    best."""
    for table in tables:
        values = table.cells.get(row, {}).get(column)
        if values:
            return max(values) if "GB/s" in column else min(values)
    return None


# Targets of issue 12, as (target, measured value, what it is compared with, goal):
# each a ratio of two figures of the same run (and mostly of the same process).
TARGETS = [
    (
        "1. warm load of a 512 MiB result / its file read hot into fresh memory",
        ("checkpointing", "load, warm GB/s"),
        ("checkpointing", "read its file, hot GB/s"),
        ">=",
        0.8,
    ),
    (
        "1. warm load / joblib's warm load",
        ("checkpointing", "load, warm GB/s"),
        ("joblib", "load, warm GB/s"),
        ">=",
        1.0,
    ),
    (
        "1. cold load / joblib's cold load",
        ("checkpointing", "load, cold GB/s"),
        ("joblib", "load, cold GB/s"),
        ">=",
        1.0,
    ),
    (
        "1. load peak memory / result size",
        ("checkpointing", "load peak / size"),
        None,
        "<=",
        1.05,
    ),
    (
        "2. save of a 512 MiB result (computed in < 1 s: no fsync) / raw write",
        ("checkpointing", "save GB/s"),
        ("checkpointing", "raw write GB/s"),
        ">=",
        0.9,
    ),
    (
        "3. miss + save of a small result / diskcache's (median of paired interleaved rounds)",
        ("checkpointing", "/ diskcache's, median of paired rounds (wall)"),
        None,
        "<=",
        1.5,
    ),
    (
        "4. warm hit / open+pickle.load+close of a small file (paired in each process)",
        ("checkpointing", WARM_PAIRED),
        None,
        "<=",
        0.7,
    ),
    (
        "4. warm hit / diskcache's warm hit",
        ("checkpointing", "hit"),
        ("diskcache", "hit"),
        "<=",
        0.5,
    ),
    (
        "5. import checkpointing, ms above `python -c pass`",
        ("checkpointing", "import"),
        None,
        "<=",
        12,
    ),
    (
        "5. first call (a hit) in a fresh process, ms",
        ("checkpointing", "first call"),
        None,
        "<=",
        0.3,
    ),
    (
        "6. large project (networkx, `density`): first call, no stored analysis, ms",
        ("checkpointing: density", "first call, no stored analysis (ms)"),
        None,
        "<=",
        3000,
    ),
    (
        "6. large project: first call with its analysis stored, ms",
        ("checkpointing: density", "first call, stored analysis (ms)"),
        None,
        "<=",
        20,
    ),
    (
        "6. the same: the floor, digesting once what the key reads, ms (a limit, not a target)",
        ("checkpointing: density", "floor: digest what it reads (ms)"),
        None,
        "<=",
        20,
    ),
]


def targets(tables: List[Table]) -> str:
    """The issue's targets, each computed from the tables of this run."""
    lines = [
        "### Targets (issue 12), from the tables below",
        "",
        "Each side of a ratio is its best run in the tables below (the highest GB/s, the "
        "lowest time): on a shared machine other work only ever slows a measurement down.",
        "",
        "| target | measured | goal | met |",
        "| --- | --- | --- | --- |",
    ]
    for label, measured, against, op, goal in TARGETS:
        value = _value(tables, *measured)
        if value is not None and against is not None:
            other = _value(tables, *against)
            value = value / other if other else None
        if value is None:
            lines.append(f"| {label} | not measured | {op} {goal} | - |")
            continue
        met = value >= goal if op == ">=" else value <= goal
        ratio = against is not None or measured[1].startswith("/ ")
        shown = f"{value:.2f}x" if ratio else _fmt(value)
        lines.append(f"| {label} | {shown} | {op} {goal} | {'yes' if met else '**no**'} |")
    return "\n".join(lines) + "\n"


def write_docs(generated: str) -> None:
    """Replace the generated part of docs/performance.md (between its markers)."""
    text = DOCS.read_text(encoding="utf-8")
    try:
        before, rest = text.split(DOCS_BEGIN, 1)
        _, after = rest.split(DOCS_END, 1)
    except ValueError:
        raise SystemExit(
            f"{DOCS}: the markers {DOCS_BEGIN!r} and {DOCS_END!r} are missing"
        ) from None
    DOCS.write_text(f"{before}{DOCS_BEGIN}\n{generated}\n{DOCS_END}{after}", encoding="utf-8")


def machine() -> str:
    cpu = "?"
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(
                line.split(":", 1)[1].strip() for line in handle if line.startswith("model name")
            )
    except (OSError, StopIteration):
        pass
    memory = "?"
    try:
        with open("/proc/meminfo") as handle:
            memory = f"{int(handle.readline().split()[1]) / 2**20:.0f} GiB"
    except OSError:
        pass
    return (
        f"{platform.system()} {platform.release()}, {cpu}, {os.cpu_count()} cores, "
        f"{memory} RAM; Python {platform.python_version()}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="warm many fresh arguments results (arrays: both) chain large limits",
    )
    parser.add_argument(
        "--docs",
        action="store_true",
        help="also rewrite the generated tables of docs/performance.md",
    )
    parser.add_argument("--libraries", nargs="*", default=LIBRARIES)
    args = parser.parse_args()
    only = set(args.only or ["warm", "many", "fresh", "arrays", "chain", "large", "limits"])
    if "arrays" in only:
        only |= {"arguments", "results"}
    started = time.time()
    tables: List[Table] = []
    if "warm" in only or "many" in only:
        warm = (
            scenario_warm_hit(args.runs, args.libraries)
            if "warm" in only
            else Table("1. Warm hit of f(1, 2)", "µs")
        )
        if "many" in only:
            rounds = scenario_many_entries(args.runs, args.libraries, warm)
            warm.title = "1-2. Warm hit of f(1, 2), alone and among 20,000 entries"
        tables.append(warm)
        if "many" in only:
            tables.append(rounds)
    if "fresh" in only:
        tables.append(scenario_fresh(args.runs, args.libraries))
    if "arguments" in only or "results" in only:
        tables.extend(
            scenario_arrays(
                max(1, args.runs // 2),
                args.libraries,
                "arguments" in only,
                "results" in only,
            )
        )
    if "chain" in only:
        tables.append(scenario_chain(args.runs))
    if "limits" in only:
        tables.append(scenario_limits(args.runs))
    if "large" in only:
        tables.append(scenario_large(max(1, args.runs // 2)))
    text = [
        "# Benchmark results",
        "",
        f"Measured by `python benchmarks/suite.py --runs {args.runs}` on "
        f"{time.strftime('%Y-%m-%d', time.localtime(started))}, in "
        f"{(time.time() - started) / 60:.0f} minutes. Machine: {machine()}.",
        "Each cell: median (min-max) over fresh processes, caches in fresh temporary "
        "directories. Versions: see `benchmarks/.work/*/bin/pip freeze`.",
        "",
    ]
    generated = [targets(tables)] + [t.markdown() for t in tables]
    text += generated
    RESULTS.write_text("\n".join(text), encoding="utf-8")
    print("\n".join(text))
    if args.docs:
        header = text[2] + "\n" + text[3] + "\n"
        write_docs(header + "\n" + "\n".join(generated))


if __name__ == "__main__":
    main()
