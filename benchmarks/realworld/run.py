"""The real-world suite: real libraries used as project code, edited, run, checked.

Usage: python benchmarks/realworld/run.py [--python PY] [--only NAME ...] [--timeout S]
       [--no-write]

For each pinned library (``projects.py``) the sdist is fetched once with
``pip download --no-deps --no-binary :all:`` into ``benchmarks/.work/realworld/``
(checked against its sha256) and unpacked into a new temporary folder with the
driver and ``rw_harness.py`` beside it, so the library is project code. Then:

1. a traced undecorated run records which lines each call executes (logic edits must
   hit one, unreached edits none) and gives the values to compare with;
2. a cached run (first calls) and a new process (hits) give the timings and warnings;
   each call is also repeated in the same process, where it must be a hit; the new
   processes also measure the floor of their first call (``rw_harness._floor``);
3. each edit is applied, the program run cached and undecorated, and the edit reverted
   and run again. A call is **stale** when its cached value differs from the
   undecorated run's, **missed** when a logic edit changed a line the call executes
   and the call did not re-run (even if the value happens to be equal), **needless**
   when a cosmetic or unreached edit re-ran it (or a repeat in the same process did).

``--python`` runs the programs with another interpreter: a virtual environment with
this checkout installed is made for it under ``benchmarks/.work/realworld/``.
Writes ``benchmarks/realworld/RESULTS.md`` (one section per interpreter).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
WORK = ROOT / "benchmarks" / ".work" / "realworld"
RESULTS = HERE / "RESULTS.md"
# New processes whose first calls (hits) are timed; the best is kept, as timeit does: on a
# shared machine the slower ones measure the other processes.
HIT_PROCESSES = 5
sys.path.insert(0, str(HERE))
from projects import PROJECTS  # noqa: E402


def interpreter(python: Optional[str]) -> str:
    """An interpreter that imports this checkout's checkpointing: ``python`` itself if
    it does, else a virtual environment made for it under ``benchmarks/.work``."""
    if python is None:
        return sys.executable
    python = os.path.abspath(python)  # not resolved: a venv's python is a symlink
    probe = subprocess.run(
        [
            python,
            "-c",
            "import sys; print('%d.%d' % sys.version_info[:2]);"
            "import checkpointing; print(checkpointing.__file__)",
        ],
        capture_output=True,
        text=True,
    )
    lines = probe.stdout.split()
    if probe.returncode == 0 and Path(lines[1]).resolve().is_relative_to(ROOT / "src"):
        return python
    env_dir = WORK / f"venv-{lines[0]}"
    exe = env_dir / "bin" / "python"
    if not exe.exists():
        subprocess.run([python, "-m", "venv", str(env_dir)], check=True)
        subprocess.run([str(exe), "-m", "pip", "install", "-q", "-e", str(ROOT)], check=True)
    return str(exe)


def fetch(project: Dict[str, Any], python: str = sys.executable) -> Path:
    """The project's sdist, downloaded once (with ``python``'s pip) and checked against
    its pinned sha256."""
    archive = WORK / "sdists" / project["archive"]
    if not archive.exists():
        archive.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                python,
                "-m",
                "pip",
                "download",
                "-q",
                "--no-deps",
                "--no-binary",
                ":all:",
                "-d",
                str(archive.parent),
                project["requirement"],
            ],
            check=True,
        )
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    if digest != project["sha256"]:
        raise SystemExit(
            f"{archive}: sha256 {digest} is not the pinned "
            f"{project['sha256']}; delete the file to download it again"
        )
    return archive


def unpack(project: Dict[str, Any], archive: Path, dest: Path) -> None:
    """The library's package folder, the driver and the harness, in ``dest``."""
    prefix = archive.name[: -len(".tar.gz")] + "/"
    with tarfile.open(archive) as tar:
        members = [
            m for m in tar.getmembers() if m.name.startswith(prefix + project["package"] + "/")
        ]
        for m in members:
            m.name = m.name[len(prefix) :]
        tar.extractall(dest, members=members)
    shutil.copy(HERE / "drivers" / project["driver"], dest / "driver.py")
    shutil.copy(HERE / "rw_harness.py", dest / "rw_harness.py")


class Runner:
    def __init__(self, python: str, folder: Path, timeout: float) -> None:
        self.python, self.folder, self.timeout = python, folder, timeout
        self.crashes: List[str] = []
        self.timeouts: List[str] = []

    def run(self, mode: str, label: str) -> Optional[Dict[str, Any]]:
        env = dict(os.environ, RW_MODE=mode, PYTHONDONTWRITEBYTECODE="1")
        env.pop("PYTHONHASHSEED", None)
        try:
            proc = subprocess.run(
                [self.python, "driver.py"],
                cwd=self.folder,
                env=env,
                capture_output=True,
                text=True,
                timeout=self.timeout,
            )
        except subprocess.TimeoutExpired:
            self.timeouts.append(f"{label} ({mode})")
            return None
        line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("RW-RESULT ")), None)
        if proc.returncode != 0 or line is None:
            self.crashes.append(f"{label} ({mode}): {proc.stderr.strip()[-400:]}")
            return None
        out = json.loads(line[len("RW-RESULT ") :])
        for name, call in out["calls"].items():
            if call.get("error1"):
                self.crashes.append(f"{label} ({mode}) {name}: {call['error1']}")
        return out


def apply(folder: Path, edit: Dict[str, str], reverse: bool = False) -> int:
    """Apply (or revert) ``edit``; the line number of its first changed line."""
    path = folder / edit["file"]
    text = path.read_text(encoding="utf-8")
    old, new = (edit["new"], edit["old"]) if reverse else (edit["old"], edit["new"])
    if text.count(old) != 1:
        raise SystemExit(
            f"edit {edit['note']!r}: {edit['file']} contains the old text "
            f"{text.count(old)} times, not once"
        )
    start = text.index(old)
    prefix = os.path.commonprefix([old, new])
    line = text.count("\n", 0, start + len(prefix)) + 1
    path.write_text(text.replace(old, new), encoding="utf-8")
    stamp = time.time() + (4 if not reverse else 8)  # newer than any .pyc or stat cache
    os.utime(path, (stamp, stamp))
    return line


def check_project(name: str, python: str, timeout: float) -> Dict[str, Any]:
    project = PROJECTS[name]
    archive = fetch(project, python)
    folder = Path(tempfile.mkdtemp(prefix=f"rw-{name}-"))
    try:
        unpack(project, archive, folder)
        modules = sum(
            1 for p in (folder / project["package"]).rglob("*.py") if "tests" not in p.parts
        )
        return _check(name, project, Runner(python, folder, timeout), folder, modules)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _check(
    name: str, project: Dict[str, Any], runner: Runner, folder: Path, modules: int
) -> Dict[str, Any]:
    report: Dict[str, Any] = {
        "project": name,
        "modules": modules,
        "stale": [],
        "missed": [],
        "needless": [],
        "invalid": [],
        "notes": [],
    }
    traced = runner.run("trace", "baseline")
    cold = runner.run("cached", "first run")
    warms = [runner.run("cached", "new process") for _ in range(HIT_PROCESSES)]
    warm = warms[0] if all(w is not None for w in warms) else None
    if traced is None or cold is None or warm is None:
        report.update(crashes=runner.crashes, timeouts=runner.timeouts)
        return report
    executed = {n: {tuple(x) for x in c.get("lines", [])} for n, c in traced["calls"].items()}
    baseline = {n: c["value1"] for n, c in traced["calls"].items()}
    report["first_ms"] = [c["ms1"] for c in cold["calls"].values()]
    report["hit_ms"] = [min(w["calls"][n]["ms1"] for w in warms) for n in warm["calls"]]
    report["warm_us"] = [
        min(w["calls"][n].get("warm_us", float("nan")) for w in warms) for n in warm["calls"]
    ]
    report["plain_us"] = min(w.get("plain_us", float("nan")) for w in warms)
    report["floor_ms"] = min(w.get("floor_ms", float("nan")) for w in warms)
    report["warnings"] = cold["warnings"] + warm["warnings"]
    for label, out in [("first run", cold)] + [("new process", w) for w in warms]:
        _compare(report, label, out, baseline, None, set(), "cosmetic")
    for w in warms:
        for n, c in w["calls"].items():
            if c["ran1"]:
                report["needless"].append(f"new process, no edit: {n} re-ran")
    for edit in project["edits"]:
        line = apply(folder, edit)
        reached = {n for n, lines in executed.items() if (edit["file"], line) in lines}
        label = f"{edit['kind']} edit {edit['file']}:{line} ({edit['note']})"
        if edit["kind"] == "logic" and not reached:
            report["invalid"].append(f"{label}: line not executed by any call")
        if edit["kind"] == "unreached" and reached:
            report["invalid"].append(f"{label}: line executed by {sorted(reached)}")
        cached = runner.run("cached", label)
        plain = runner.run("plain", label)
        if cached is not None and plain is not None:
            expected = {n: c["value1"] for n, c in plain["calls"].items()}
            changed = sorted(n for n in expected if expected[n] != baseline[n])
            if edit["kind"] == "logic" and not changed:
                report["notes"].append(f"{label}: no result changed")
            _compare(report, label, cached, expected, edit, reached, edit["kind"])
        apply(folder, edit, reverse=True)
        after = runner.run("cached", f"{label}, reverted")
        if after is not None:
            _compare(report, f"{label}, reverted", after, baseline, None, set(), "revert")
            again = [n for n, c in after["calls"].items() if c["ran1"]]
            if again:
                report["notes"].append(f"{label}, reverted: re-ran {again}")
    report.update(crashes=runner.crashes, timeouts=runner.timeouts)
    return report


def _compare(
    report: Dict[str, Any],
    label: str,
    out: Dict[str, Any],
    expected: Dict[str, str],
    edit: Optional[Dict[str, str]],
    reached: set,
    kind: str,
) -> None:
    for n, c in out["calls"].items():
        if c.get("error1"):
            continue
        wrong = [str(a) for a in (1, 2) if c[f"value{a}"] != expected.get(n)]
        if wrong:
            report["stale"].append(
                f"{label}: {n} (call {' and '.join(wrong)} in the process) "
                "returned a value different from the undecorated run's"
            )
        if c["ran2"] or c.get("ran_warm"):
            report["needless"].append(f"{label}: {n} re-ran in the same process")
        if kind in ("cosmetic", "unreached") and edit is not None and c["ran1"]:
            report["needless"].append(f"{label}: {n} re-ran")
        if kind == "logic" and n in reached and not c["ran1"]:
            report["missed"].append(f"{label}: {n} executes the edited line, did not re-run")


def _ms(values: List[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values):.1f} (max {max(values):.1f})"


def _us(values: List[float], plain: Optional[float]) -> str:
    if not values:
        return "-"
    ratio = f", {max(values) / plain:.0f}x a plain hit" if plain and plain == plain else ""
    return f"{statistics.median(values):.0f} (max {max(values):.0f}{ratio})"


def table(reports: List[Dict[str, Any]]) -> str:
    rows = [
        "| project | modules | edits | stale | missed | needless | crashes | timeouts "
        "| first call, ms | new-process hit, ms | floor, ms | warm hit, us | warnings |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- | ---: | --- | ---: |",
    ]
    for r in reports:
        rows.append(
            f"| {r['project']} | {r['modules']} | {len(PROJECTS[r['project']]['edits'])} "
            f"| {len(set(r['stale']))} | {len(set(r['missed']))} "
            f"| {len(set(r['needless']))} "
            f"| {len(set(r['crashes']))} | {len(set(r['timeouts']))} "
            f"| {_ms(r.get('first_ms', []))} | {_ms(r.get('hit_ms', []))} "
            f"| {r.get('floor_ms', float('nan')):.1f} "
            f"| {_us(r.get('warm_us', []), r.get('plain_us'))} "
            f"| {len(set(r.get('warnings', [])))} |"
        )
    return "\n".join(rows)


def details(reports: List[Dict[str, Any]]) -> str:
    out = []
    for r in reports:
        for key in (
            "invalid",
            "stale",
            "missed",
            "needless",
            "crashes",
            "timeouts",
            "warnings",
            "notes",
        ):
            items = sorted(set(r.get(key, [])))
            if items:
                out.append(f"- {r['project']}, {key}:")
                out.extend(f"  - {item}" for item in items[:12])
                if len(items) > 12:
                    out.append(f"  - ... {len(items) - 12} more")
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", help="interpreter to run the programs with")
    parser.add_argument("--only", nargs="*", choices=sorted(PROJECTS))
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per run")
    parser.add_argument("--no-write", action="store_true", help="do not write RESULTS.md")
    args = parser.parse_args()
    python = interpreter(args.python)
    # This checkout byte-compiled for that interpreter, as pip compiles what it installs:
    # the programs run with PYTHONDONTWRITEBYTECODE (no .pyc in the project folder), and
    # a module of ours imported by a first call would otherwise be compiled in it.
    subprocess.run([python, "-m", "compileall", "-q", str(ROOT / "src")], check=True)
    version = subprocess.run(
        [python, "-c", "import sys; print(sys.version.split()[0])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    reports = []
    started = time.time()
    for name in args.only or list(PROJECTS):
        print(f"{name} ...", flush=True)
        reports.append(check_project(name, python, args.timeout))
    section = (
        f"## Python {version}\n\n`python benchmarks/realworld/run.py"
        f"{' --python ' + args.python if args.python else ''}` on "
        f"{platform.platform()}, {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}"
        f" ({time.time() - started:.0f} s). First call: each call's time in the first "
        f"process (cold cache); new-process hit: each call's time in a new process "
        f"that makes the driver's calls in order (the max is the first of them, which "
        f"reads the stored analysis back), best of {HIT_PROCESSES} processes; both "
        f"given as median (max) over the driver's calls. Floor: reading every place the "
        f"plans read and digesting every distinct object read once, in one pass, in "
        f"those processes (a lower bound for any sound check of a new process's "
        f"first call, which also digests the source files and checks each name).\n\n"
        f"{table(reports)}\n\n"
        f"{details(reports)}\n"
    )
    print(section)
    if not args.no_write and not args.only:
        _write(version, section)


def _write(version: str, section: str) -> None:
    head = (
        "# Real-world suite: results\n\nWritten by `benchmarks/realworld/run.py`; "
        "one section per interpreter (the latest run of each).\n\n"
    )
    sections: Dict[str, str] = {}
    if RESULTS.exists():
        for part in RESULTS.read_text().split("\n## Python ")[1:]:
            sections[part.split("\n", 1)[0].strip()] = "## Python " + part.rstrip() + "\n"
    sections[version] = section
    RESULTS.write_text(head + "\n".join(sections[v] for v in sorted(sections)))


if __name__ == "__main__":
    main()
