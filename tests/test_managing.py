"""The controls of docs/managing.md, each with real programs run in subprocesses.

Every test runs a program (or the ``checkpointing`` command) in a fresh directory,
usually twice with an edit or a command in between, and checks what re-ran and that
a served value is the one a fresh run of the same program gives.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List

import pytest

HEADER = """
import logging, sys
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="LOG %(message)s")
from checkpointing import checkpoint, defaults
"""


def cli(project, *args: str, env: Dict[str, str] = None) -> subprocess.CompletedProcess:
    full = dict(os.environ)
    full.pop("PYTHONHASHSEED", None)
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "checkpointing", *args],
        cwd=project.root,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def entry_files(root: Path) -> List[Path]:
    return sorted((root / ".checkpointing" / "entries").glob("*.ckpt"))


# -- from Python: clear, delete, cached, entries -----------------------------------------


def test_clear_delete_cached_entries(project) -> None:
    project.write(
        "main.py",
        HEADER
        + """
@checkpoint
def f(x, scale=1):
    print("RAN f", x)
    return x * scale

@checkpoint
def g(x):
    print("RAN g", x)
    return -x

action = sys.argv[1]
if action == "fill":
    print("RESULT", f(1), f(2), f(3, scale=10), g(1))
elif action == "inspect":
    print("CACHED", f.cached(1), f.cached(4), f.cached(3, 10), f.cached(x=3, scale=10))
    for e in f.entries():
        print("ENTRY", e["arguments"], e["hits"], e["size"] > 0, e["created"] <= e["last_used"])
elif action == "delete":
    print("DELETED", f.delete(2), f.delete(2))
elif action == "clear":
    print("CLEARED", f.clear())
print("RESULT", f(1), f(2), f(3, scale=10), g(1))
""",
    )
    first = project.run("main.py", "fill")
    assert first.ran == ["f 1", "f 2", "f 3", "g 1"]
    assert first.results == ["1 2 30 -1", "1 2 30 -1"]
    inspect = project.run("main.py", "inspect")
    assert "CACHED True False True True" in inspect.stdout
    rows = [line for line in inspect.stdout.splitlines() if line.startswith("ENTRY")]
    # Hits so far: the second half of "fill" (1 each); the call summary names the call.
    assert rows == [
        "ENTRY f(x=1, scale=1) 1 True True",
        "ENTRY f(x=2, scale=1) 1 True True",
        "ENTRY f(x=3, scale=10) 1 True True",
    ]
    deleted = project.run("main.py", "delete")
    assert "DELETED True False" in deleted.stdout and deleted.ran == ["f 2"]
    cleared = project.run("main.py", "clear")
    assert "CLEARED 3" in cleared.stdout
    assert cleared.ran == ["f 1", "f 2", "f 3"]  # g's entry was left alone
    assert cleared.results == ["1 2 30 -1"]


# -- the size limit ------------------------------------------------------------------------


SIZED = (
    HEADER
    + """
import os
defaults["cache.max_size"] = os.environ.get("LIMIT", "100KB")

@checkpoint
def blob(i, n=30_000):
    print("RAN blob", i)
    return bytes([i % 256]) * n

for i in map(int, sys.argv[1:]):
    print("RESULT", i, blob(i)[:1].hex(), len(blob(i)))
"""
)


def test_size_limit_evicts_least_recently_used_never_the_new_entry(project) -> None:
    project.write("main.py", SIZED)
    project.run("main.py", "1", "2", "3")  # ~90 KB: within 100 KB
    assert len(entry_files(project.root)) == 3
    touched = project.run("main.py", "1")  # 1 is now the most recently used
    assert touched.ran == []
    added = project.run("main.py", "4")  # over the limit: 2 (least recently used) goes
    assert added.ran == ["blob 4"]
    assert "evicted entry" in added.stderr and "__main__:blob" in added.stderr
    assert len(entry_files(project.root)) == 3
    again = project.run("main.py", "1", "3", "4", "2")
    assert again.ran == ["blob 2"], again  # 1, 3, 4 were kept; 2 re-runs
    total = sum(p.stat().st_size for p in entry_files(project.root))
    assert total <= 100 * 1024
    # A limit smaller than one entry keeps the entry just written.
    tiny = project.run("main.py", "9", env={"LIMIT": "1KB"})
    assert tiny.ran == ["blob 9"] and len(entry_files(project.root)) == 1
    assert tiny.results == ["9 09 30000"]


def test_size_limit_holds_under_concurrent_writers(project) -> None:
    project.write("main.py", SIZED)
    env = dict(os.environ, LIMIT="200KB", PYTHONDONTWRITEBYTECODE="1")
    env.pop("PYTHONHASHSEED", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "main.py", *[str(w * 100 + i) for i in range(12)]],
            cwd=project.root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(4)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    for w, (stdout, _) in enumerate(outs):
        # Every call returned its own value, cached or not.
        values = [line.split()[1:] for line in stdout.splitlines() if line.startswith("RESULT")]
        assert values == [
            [str(w * 100 + i), f"{(w * 100 + i) % 256:02x}", "30000"] for i in range(12)
        ]
    files = entry_files(project.root)
    total = sum(p.stat().st_size for p in files)
    assert total <= 200 * 1024, (total, len(files))
    assert len(files) >= 5  # evicted down to the limit, not emptied
    saves = sum(stdout.count("RAN blob") for stdout, _ in outs)
    evictions = sum(err.count("evicted entry") for _, err in outs)
    assert saves >= 48 and evictions == saves - len(files)
    # What is left is intact, and what was evicted is a miss, never a wrong value.
    verify = cli(project, "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    again = project.run("main.py", "0", "100", "311", env={"LIMIT": "10GB"})
    assert again.results == ["0 00 30000", "100 64 30000", "311 37 30000"]


# -- last used is the library's own record -------------------------------------------------


def test_prune_keeps_the_most_recently_used_not_the_newest(project) -> None:
    project.write(
        "main.py",
        HEADER
        + """
@checkpoint
def f(x):
    print("RAN f", x)
    return x

for x in map(int, sys.argv[1:]):
    print("RESULT", f(x))
""",
    )
    project.run("main.py", "1")
    time.sleep(0.05)
    project.run("main.py", "2")
    assert project.run("main.py", "1").ran == []  # 1: used after 2 was created
    # Diagnostic reads are not use: they must not make 2 look recent.
    for args in (["ls"], ["show", "f"], ["verify"], ["stats"]):
        assert cli(project, *args).returncode == 0
    pruned = cli(project, "prune", "--keep-latest", "1", "--yes", "--json")
    report = json.loads(pruned.stdout)
    assert [d["key"] for d in report["deleted"]] and report["count"] == 1
    after = project.run("main.py", "1", "2")
    assert after.ran == ["f 2"], after


def test_prune_from_python_returns_what_it_removed(project) -> None:
    project.write(
        "main.py",
        HEADER
        + """
import checkpointing

@checkpoint
def f(x):
    print("RAN f", x)
    return bytes(5000)

if sys.argv[1] == "fill":
    for x in range(4):
        f(x)
else:
    removed = checkpointing.prune(max_size="12KB", directory=".checkpointing")
    print("REMOVED", len(removed), sorted(r["function"] for r in removed))
    print("AGAIN", checkpointing.prune(keep_latest=5))
""",
    )
    project.run("main.py", "fill")
    out = project.run("main.py", "prune")
    assert "REMOVED 2 ['__main__:f', '__main__:f']" in out.stdout
    assert "AGAIN []" in out.stdout
    assert len(entry_files(project.root)) == 2


# -- expiry and validation ---------------------------------------------------------------


def test_expires_after_and_valid(project) -> None:
    project.write(
        "main.py",
        HEADER
        + """
import os
from datetime import timedelta

@checkpoint(expires_after=timedelta(seconds=float(os.environ.get("TTL", "3600"))))
def fresh(x):
    print("RAN fresh")
    return x

@checkpoint(valid=lambda entry: entry["run_seconds"] < 100 and entry["arguments"] != "judged(x=2)")
def judged(x):
    print("RAN judged", x)
    return x

print("RESULT", fresh(1), judged(1), judged(2))
""",
    )
    assert project.run().ran == ["fresh", "judged 1", "judged 2"]
    second = project.run()
    assert second.ran == ["judged 2"], second  # refused by valid=: re-runs every time
    assert "valid(entry) returned False" in second.stderr
    time.sleep(1.2)
    expired = project.run(env={"TTL": "1"})
    assert expired.ran == ["fresh", "judged 2"] and "its entry expired" in expired.stderr
    assert expired.results == ["1 1 2"]


def test_bad_options_fail_at_decoration(project) -> None:
    project.write(
        "main.py",
        """
from checkpointing import checkpoint, ConfigurationError
for options in (
    {"expires_after": "soon"}, {"valid": 3}, {"mmap_mode": "w+"},
    {"compress": "gzip"}, {"max_size": "lots"}, {"version": 2},
    {"mmap_mode": "r", "compress": "zstd"},
):
    try:
        checkpoint(**options)
    except ConfigurationError as exc:
        print("REFUSED", list(options), str(exc).split(";")[0][:60])
""",
    )
    out = project.run()
    assert out.stdout.count("REFUSED") == 7, out.stdout


# -- switching it off --------------------------------------------------------------------


def test_disabled_by_defaults_or_environment(project) -> None:
    project.write(
        "main.py",
        HEADER
        + """
if "off" in sys.argv:
    defaults["checkpoint.enabled"] = False

@checkpoint
def f(x):
    print("RAN f")
    return x + 1

print("RESULT", f(1), f.rerun(1))
""",
    )
    assert project.run("main.py").ran == ["f", "f"]
    assert project.run("main.py").ran == ["f"]  # only rerun() runs
    assert project.run("main.py", "off").ran == ["f", "f"]
    disabled = project.run("main.py", env={"CHECKPOINTING_DISABLE": "1"})
    assert disabled.ran == ["f", "f"] and disabled.results == ["2 2"]
    # Disabled runs neither read nor wrote: one entry, from the first runs.
    assert len(entry_files(project.root)) == 1
    assert project.run("main.py", env={"CHECKPOINTING_DISABLE": "0"}).ran == ["f"]


# -- keeping the cache across an edit on purpose -------------------------------------------


def test_version_replaces_code_tracking(project) -> None:
    body = """
{header}
@checkpoint(version="{version}")
def f(x):
    print("RAN f")
    return x * {factor}

print("RESULT", f(2))
"""
    project.write("main.py", body.format(header=HEADER, version="1", factor=2))
    assert project.run().results == ["4"]
    project.write("main.py", body.format(header=HEADER, version="1", factor=3))
    kept = project.run()
    assert kept.ran == [] and kept.results == ["4"]  # the edit is ignored on purpose
    project.write("main.py", body.format(header=HEADER, version="2", factor=3))
    bumped = project.run()
    assert bumped.ran == ["f"] and bumped.results == ["6"]
    refused = cli(project, "why", "main:f", "2")  # main.py is a script without a guard
    assert refused.returncode == 2 and "--import" in refused.stderr and refused.stdout == ""
    why = cli(project, "why", "main:f", "2", "--import")
    assert why.returncode == 0, why.stderr
    assert "version='2'" in why.stdout and "answered from the cache" in why.stdout


def test_accept_serves_the_entries_of_the_previous_code(project) -> None:
    program = """
from checkpointing import checkpoint
import helpers

@checkpoint
def f(x):
    print("RAN f", x)
    return helpers.double(x)

if __name__ == "__main__":
    import sys
    for x in map(int, sys.argv[1:]):
        print("RESULT", f(x))
"""
    project.write("main.py", program)
    project.write("helpers.py", "def double(x):\n    return x * 2\n")
    assert project.run("main.py", "1", "2").ran == ["f 1", "f 2"]
    # A refactoring that does not change results: the cache would be lost.
    project.write("helpers.py", "def double(x):\n    y = x + x\n    return y\n")
    accepted = cli(project, "accept", "main:f")
    assert accepted.returncode == 0, accepted.stderr
    assert "importing main" in accepted.stderr
    why = cli(project, "why", "main:f", "1", "--json")
    answer = json.loads(why.stdout)
    assert answer["hit"] is True and "accepted as equivalent" in " ".join(answer["notes"])
    served = project.run("main.py", "1", "2", "3")
    assert served.ran == ["f 3"] and served.results == ["2", "4", "6"]
    # A later real change re-runs as usual, and says what changed.
    project.write("helpers.py", "def double(x):\n    return x * 2 + 0.5\n")
    changed = project.run("main.py", "1")
    assert changed.ran == ["f 1"] and changed.results == ["2.5"]
    # Nothing to accept when the latest entry has the current code.
    again = cli(project, "accept", "main:f", "--json")
    assert again.returncode == 0 and json.loads(again.stdout)["accepted"] is False


# -- large results: mmap and compression ---------------------------------------------------


def test_mmap_mode_maps_arrays_from_the_entry(project) -> None:
    pytest.importorskip("numpy")
    project.write(
        "main.py",
        HEADER
        + """
import mmap
import numpy as np

@checkpoint(mmap_mode=sys.argv[1])
def arrays(n):
    print("RAN arrays")
    return {"a": np.arange(n, dtype="float64"), "b": np.ones((n, 3)), "label": "x"}

def mapped(array):
    base = array
    while isinstance(base, np.ndarray):
        base = base.base
    while isinstance(base, memoryview):
        base = base.obj
    return isinstance(base, mmap.mmap)

r = arrays(100_000)
print("RESULT", r["a"].sum(), r["b"].shape, r["label"])
print("MAPPED", mapped(r["a"]), mapped(r["b"]), r["a"].flags.writeable)
if sys.argv[1] == "c":
    r["a"][0] = 5.0  # copy-on-write: this process only
    print("CHANGED", r["a"][0])
""",
    )
    first = project.run("main.py", "r")
    assert first.ran == ["arrays"] and "MAPPED False False True" in first.stdout
    hit = project.run("main.py", "r")
    assert hit.ran == [] and hit.results == first.results
    assert "MAPPED True True False" in hit.stdout
    cow = project.run("main.py", "c")
    assert cow.ran == [] and "MAPPED True True True" in cow.stdout and "CHANGED 5.0" in cow.stdout
    assert project.run("main.py", "r").results == first.results  # the entry is unchanged


def test_mmap_mode_on_a_damaged_entry_is_a_warned_miss(project) -> None:
    pytest.importorskip("numpy")
    project.write(
        "main.py",
        """
import numpy as np
from checkpointing import checkpoint

@checkpoint(mmap_mode="r")
def arrays(n):
    print("RAN arrays")
    return np.arange(n, dtype="float64")

print("RESULT", arrays(50_000).sum())
""",
    )
    first = project.run()
    (path,) = entry_files(project.root)
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF  # a flipped bit in the array's bytes
    path.write_bytes(bytes(data))
    damaged = project.run()
    assert damaged.ran == ["arrays"] and damaged.results == first.results
    assert "CorruptEntryWarning" in damaged.stderr and "checksum mismatch" in damaged.stderr
    healed = project.run()
    assert healed.ran == [] and healed.results == first.results


@pytest.mark.parametrize("codec", ["zstd", "lz4"])
def test_compress_large_results(project, codec) -> None:
    pytest.importorskip({"zstd": "zstandard", "lz4": "lz4"}[codec])
    project.write(
        "main.py",
        HEADER
        + f"""
defaults["cache.compress_threshold"] = "64KB"

@checkpoint(compress="{codec}")
def f(n):
    print("RAN f", n)
    return list(range(10)) * n

r1, r2 = f(100_000), f(10)
print("RESULT", sum(r1), len(r1), sum(r2))
""",
    )
    first = project.run()
    assert first.ran == ["f 100000", "f 10"]
    second = project.run()
    assert second.ran == [] and second.results == first.results
    sizes = sorted(p.stat().st_size for p in entry_files(project.root))
    assert sizes[1] < 200_000  # the large one, compressed (its pickle is ~2 MB)
    shown = json.loads(cli(project, "show", "f", "--json").stdout)
    assert len(shown) == 2
    # Removing compress= keeps the compressed entry readable.
    project.write(
        "main.py", (project.root / "main.py").read_text().replace(f'compress="{codec}"', "")
    )
    assert project.run().results == first.results


# -- HashFailedWarning -------------------------------------------------------------------


def test_hash_failed_warning_points_at_the_call_and_advises_once(project) -> None:
    project.write(
        "main.py",
        """
import threading
from checkpointing import checkpoint

@checkpoint
def f(x, lock):
    return x

for i in range(3):
    f(i, threading.Lock())
""",
    )
    out = project.run()
    lines = [line for line in out.stderr.splitlines() if "HashFailedWarning" in line]
    assert len(lines) == 1, out.stderr
    where, _, message = lines[0].partition(" HashFailedWarning: ")
    assert where.endswith("main.py:9:"), lines[0]  # the user's call, not sys:1
    assert message.startswith("cannot hash argument 'lock' of __main__:f")
    assert message.count("ignore=") == 1


# -- the command line ----------------------------------------------------------------------

PROGRAM = (
    HEADER
    + """
@checkpoint
def fit(data, epochs=10):
    print("RAN fit")
    return sum(data) * epochs

if __name__ == "__main__":
    print("RESULT", fit([1, 2, 3]), fit([1, 2, 3], epochs=2))
"""
)


def test_global_options_in_either_position(project) -> None:
    project.write("main.py", PROGRAM)
    project.run("main.py")
    (project.root / "other").mkdir()
    # Before the command: --dir is the folder cleared, never ./.checkpointing.
    cleared = cli(project, "--dir", "other", "clear", "--yes")
    assert cleared.returncode == 0 and "nothing to delete" in cleared.stdout
    assert len(entry_files(project.root)) == 2
    for argv in (["--json", "ls"], ["ls", "--json"], ["--dir", ".checkpointing", "--json", "ls"]):
        rows = json.loads(cli(project, *argv).stdout)
        assert rows[0]["function"] == "__main__:fit" and rows[0]["entries"] == 2, argv
    # After the command, as before.
    moved = cli(project, "clear", "--dir", "other", "--yes", "--json")
    assert json.loads(moved.stdout)["count"] == 0
    assert len(entry_files(project.root)) == 2


def test_json_always_and_exit_codes(project) -> None:
    project.write("main.py", PROGRAM)
    # Nothing matches: still JSON, still success.
    empty = cli(project, "clear", "--json")
    assert empty.returncode == 0 and json.loads(empty.stdout)["count"] == 0
    nothing = cli(project, "prune", "--older-than", "1d", "--json")
    assert nothing.returncode == 0 and json.loads(nothing.stdout)["deleted"] == []
    # A --dir that does not exist, a function without entries: exit 1 with a message.
    missing_dir = cli(project, "ls", "--dir", "no-such-folder")
    assert missing_dir.returncode == 1 and "does not exist" in missing_dir.stderr
    missing_json = cli(project, "--json", "ls", "--dir", "no-such-folder")
    assert (
        missing_json.returncode == 1
        and "does not exist" in json.loads(missing_json.stdout)["error"]
    )
    project.run("main.py")
    no_function = cli(project, "clear", "nope", "--yes")
    assert no_function.returncode == 1 and "no entries of nope" in no_function.stderr
    assert len(entry_files(project.root)) == 2
    shown = cli(project, "show", "nope", "--json")
    assert shown.returncode == 1 and json.loads(shown.stdout) == []
    bad = cli(project, "--json", "frobnicate")
    assert bad.returncode == 2 and "invalid choice" in json.loads(bad.stdout)["error"]
    # Deleting: JSON says what went.
    done = json.loads(cli(project, "clear", "fit", "--yes", "--json").stdout)
    assert done["count"] == 2 and {d["function"] for d in done["deleted"]} == {"__main__:fit"}


def test_ls_show_stats_from_the_library_records(project) -> None:
    project.write("main.py", PROGRAM)
    project.run("main.py")
    project.run("main.py")
    project.run("main.py")
    shown = json.loads(cli(project, "show", "fit", "--json").stdout)
    assert [d["call"] for d in shown] == [
        "fit(data=[1, 2, 3], epochs=10)",
        "fit(data=[1, 2, 3], epochs=2)",
    ]
    assert [d["hits"] for d in shown] == [2, 2]
    assert all(d["created"] <= d["last_used"] and d["size"] > 0 for d in shown)
    text = cli(project, "show", "fit").stdout
    assert "fit(data=[1, 2, 3], epochs=2)" in text and "hits 2" in text
    ls = json.loads(cli(project, "ls", "--json").stdout)
    assert ls[0]["hits"] == 4
    stats = json.loads(cli(project, "stats", "--json").stdout)
    assert stats == [
        {
            "function": "__main__:fit",
            "entries": 2,
            "bytes": stats[0]["bytes"],
            "hits": 4,
            "misses": 2,
        }
    ]
    assert stats[0]["bytes"] == sum(p.stat().st_size for p in entry_files(project.root))
    table = cli(project, "stats").stdout
    assert "__main__:fit" in table and "67%" in table


def test_why_takes_python_literals(project) -> None:
    project.write("pipeline.py", PROGRAM)
    project.run("-m", "pipeline")
    for arguments in (
        "[[1, 2, 3]]",  # JSON: a list of the positional arguments
        '{"data": [1, 2, 3]}',  # JSON: keywords
        "[1, 2, 3], epochs=10",  # Python, as in the call
        "[1, 2, 3], 10",
        "data=[1, 2, 3]",
        "([1, 2, 3],)",  # a Python tuple: the positional arguments
        "{'data': [1, 2, 3], 'epochs': 10}",  # a Python dict: keywords
    ):
        why = cli(project, "why", "pipeline:fit", arguments)
        assert why.returncode == 0, (arguments, why.stderr)
        assert "answered from the cache" in why.stdout, (arguments, why.stdout)
    changed = cli(project, "why", "pipeline:fit", "[1, 2, 3], epochs=3")
    assert "re-runs" in changed.stdout and "new argument values (epochs)" in changed.stdout
    bad = cli(project, "why", "pipeline:fit", "[1, 2")
    assert bad.returncode == 2 and "neither JSON nor Python literals" in bad.stderr


def test_why_refuses_to_import_a_script_without_a_guard(project) -> None:
    project.write(
        "script.py",
        """
from checkpointing import checkpoint

@checkpoint
def f(x):
    print("RAN f")
    return x

print("RESULT", f(1))
open("side-effect.txt", "w").write("the script ran")
""",
    )
    project.run("script.py")
    (project.root / "side-effect.txt").unlink()
    refused = cli(project, "why", "script:f", "1")
    assert refused.returncode == 2
    assert "script.py:8 runs print(" in refused.stderr and "--import" in refused.stderr
    assert not (project.root / "side-effect.txt").exists()  # nothing of it ran
    graph = cli(project, "graph", "script:f")  # answered from the stored analysis
    assert graph.returncode == 0 and "from the stored analysis" in graph.stdout
    assert not (project.root / "side-effect.txt").exists()
    shutil.rmtree(project.root / ".checkpointing" / "analysis")  # nothing stored: import
    graph = cli(project, "graph", "script:f")
    assert graph.returncode == 2 and "no analysis of script:f is stored" in graph.stderr
    assert not (project.root / "side-effect.txt").exists()
    forced = cli(project, "why", "script:f", "1", "--import")
    assert forced.returncode == 0 and "importing script" in forced.stderr
    assert (project.root / "side-effect.txt").exists()


def test_top_level_work_detection() -> None:
    from checkpointing.cli import top_level_work

    quiet = '"""doc"""\nimport os\nX = os.environ.get("A")\ndef f(): pass\nclass C: pass\n'
    assert top_level_work(quiet) == (False, None)
    guarded = quiet + 'if __name__ == "__main__":\n    f()\n'
    assert top_level_work(guarded) == (True, None)
    script = quiet + "for i in range(3):\n    f()\n"
    assert top_level_work(script) == (False, (6, "for i in range(3):"))
    nested = "try:\n    import numpy\nexcept ImportError:\n    print('no numpy')\n"
    assert top_level_work(nested) == (False, (4, "print('no numpy')"))


def test_why_of_a_versioned_function(project) -> None:
    body = """
from checkpointing import checkpoint

@checkpoint(version="{version}")
def f(x):
    print("RAN f")
    return x

if __name__ == "__main__":
    print("RESULT", f(1))
"""
    project.write("main.py", body.format(version="1"))
    project.run("main.py")
    args = cli(project, "why", "main:f", "2")
    assert "re-runs: new argument values (x)" in args.stdout, args.stdout + args.stderr
    project.write("main.py", body.format(version="2"))
    bumped = cli(project, "why", "main:f", "1")
    assert "re-runs: version '1' -> '2'" in bumped.stdout, bumped.stdout + bumped.stderr


def test_usage_log_compaction_keeps_the_counts(in_tmp) -> None:
    from checkpointing import PickleFileCache
    from checkpointing.store.evict import UsageLog, evict_lock

    cache = PickleFileCache(".cache")
    log = UsageLog(cache)
    for key in ("a", "b", "c"):
        cache.save_entry(key, key, {"function": "m:f"})
        log.saved(key, "m:f")
    for _ in range(5):
        log.hit("a", "m:f")
    log.hit("b", "m:f")
    before = log.read()
    assert before["a"].hits == 5 and before["a"].misses == 1 and before["b"].hits == 1
    cache.delete("c")
    with evict_lock(cache):
        log.compact()
    after = log.read()
    assert set(after) == {"a", "b"}
    assert after["a"] == before["a"] and after["b"] == before["b"]
    # The counts of the deleted entry stay with its function (for stats).
    assert log.functions() == {"m:f": (6, 3)}
    assert len(Path(log.path).read_text().splitlines()) == 3


def test_a_log_of_many_live_entries_is_not_compacted_at_every_save(in_tmp, monkeypatch) -> None:
    """Compaction keeps one line per live entry: with enough entries the compacted log
    is still over the bound, and a fixed bound compacted it again at each save (every
    entry file checked and the log rewritten per miss: 300 ms a miss at 20,000 entries).
    A log whose lines name live entries once each is not rewritten at all (nothing to
    drop: a cheap count of its keys and entry files says so), and the next look waits
    until the log doubles; once entries are deleted, it is compacted, and the counts
    stay whole."""
    from checkpointing import PickleFileCache
    from checkpointing.store import evict

    monkeypatch.setattr(evict, "_COMPACT_BYTES", 2000)  # ~30 lines instead of ~12,000
    monkeypatch.setattr(evict, "_SAVE_BATCH", 1)  # each save's line written at once
    compactions, looks = [], []
    real_compact, real_look = evict.UsageLog.compact, evict.UsageLog._worth_compacting

    def counted(self, existing=None):
        compactions.append(len(Path(self.path).read_bytes()))
        real_compact(self, existing)

    def looked(self):
        looks.append(len(Path(self.path).read_bytes()))
        return real_look(self)

    monkeypatch.setattr(evict.UsageLog, "compact", counted)
    monkeypatch.setattr(evict.UsageLog, "_worth_compacting", looked)
    cache = PickleFileCache(".cache")
    log = evict.UsageLog(cache)
    for i in range(400):
        key = f"{i:032x}"
        cache.save_entry(key, i, {"function": "m:f"})
        log.saved(key, "m:f")
    # Each look at least doubles the next bound: a handful, not hundreds; no rewrite.
    assert 1 <= len(looks) <= 6 and not compactions, (looks, compactions)
    assert len(Path(log.path).read_text().splitlines()) == 400
    usage = log.read()
    assert len(usage) == 400 and all(u.misses == 1 for u in usage.values())
    for i in range(300):  # deleted behind the log's back (e.g. by hand)
        os.remove(cache.path_of(f"{i:032x}"))
    for i in range(400, 1200):
        key = f"{i:032x}"
        cache.save_entry(key, i, {"function": "m:f"})
        log.saved(key, "m:f")
    assert 1 <= len(compactions) <= 3, compactions
    usage = log.read()
    assert not any(f"{i:032x}" in usage for i in range(300))
    assert all(usage[f"{i:032x}"].misses == 1 for i in range(300, 1200))
    assert log.functions() == {"m:f": (0, 1200)}  # the deleted entries' misses kept


def test_a_usage_log_kept_open_follows_a_compaction_or_removal_elsewhere(in_tmp) -> None:
    """A process keeps its usage log open between lines; when another process compacts
    the log (a new file renamed over it) or it is removed, the next line goes to the log
    that is there now, not to the file it had open."""
    from checkpointing import PickleFileCache
    from checkpointing.store.evict import UsageLog, evict_lock

    cache = PickleFileCache(".cache")
    mine, other = UsageLog(cache), UsageLog(cache)  # as two processes would have
    for key in ("a", "b"):
        cache.save_entry(key, key, {"function": "m:f"})
        mine.saved(key, "m:f")
    mine.flush()  # the lines of saves wait in memory until then (or a second)
    with evict_lock(cache):
        other.compact()  # renamed over the file ``mine`` holds open
    mine.saved("a", "m:f")
    mine.flush()
    assert other.read()["a"].misses == 2 and other.read()["b"].misses == 1
    os.remove(mine.path)
    mine.saved("b", "m:f")
    mine.flush()
    assert set(other.read()) == {"b"}


SAVER = """
import sys, time
from checkpointing import checkpoint

@checkpoint(directory=sys.argv[1])
def f(x):
    return x

start, count, pause = int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
for i in range(start, start + count):
    f(i)
    time.sleep(pause)
print("saved", flush=True)
if len(sys.argv) > 5:
    sys.stdin.readline()  # the parent looks at the cache meanwhile
"""


@pytest.mark.e2e
def test_processes_saving_at_once_lose_no_miss_in_the_usage_log(tmp_path) -> None:
    """The lines of saves wait in memory and go out in batches (and at exit): three
    processes saving at once, in batches of one second or 1,000 lines, leave every
    save counted, one line each."""
    from checkpointing import PickleFileCache
    from checkpointing.store.evict import UsageLog

    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    cache_dir = str(tmp_path / "cache")
    subprocess.run([sys.executable, str(script), cache_dir, "-1", "1", "0"], check=True)
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), cache_dir, str(n * 10000), "1500", "0.0005"],
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(3)
    ]
    assert [p.communicate(timeout=300)[0].strip() for p in procs] == ["saved"] * 3
    lines = Path(cache_dir, "usage.log").read_text().splitlines()
    assert len(lines) == 4501  # one line per save
    usage = UsageLog(PickleFileCache(cache_dir)).read()
    assert len(usage) == 4501 and all(u.misses == 1 for u in usage.values())
    assert {u.function for u in usage.values()} == {"__main__:f"}


@pytest.mark.e2e
def test_eviction_sees_the_entries_whose_save_lines_wait_in_another_process(tmp_path) -> None:
    """A process's last saves are not in the usage log yet (their lines wait, up to a
    second): another process pruning to a size limit still sees those entries, dated
    by when they were written, and removes the oldest first; the waiting lines come
    when the saving process exits. (Killed instead, it loses them: only the miss
    counts of ``stats`` would lack those saves.)"""
    from checkpointing import PickleFileCache
    from checkpointing.store.evict import UsageLog, prune_cache

    script = tmp_path / "saver.py"
    script.write_text(SAVER)
    cache_dir = str(tmp_path / "cache")
    saver = subprocess.Popen(
        [sys.executable, str(script), cache_dir, "0", "4", "0.05", "wait"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert saver.stdout.readline().strip() == "saved"
        cache = PickleFileCache(cache_dir)
        assert not os.path.exists(os.path.join(cache_dir, "usage.log"))  # all waiting
        entries = sorted(cache.iter_entries(), key=lambda e: e.metadata["created"])
        assert len(entries) == 4
        newest = entries[-2:]
        removed = prune_cache(cache, max_size=sum(e.size for e in newest))
        assert {r["key"] for r in removed} == {e.key for e in entries[:2]}
        assert {e.key for e in cache.iter_entries()} == {e.key for e in newest}
    finally:
        saver.communicate("go\n", timeout=60)
    assert saver.returncode == 0
    usage = UsageLog(PickleFileCache(cache_dir)).read()
    assert sorted(usage) == sorted(e.key for e in entries)  # written at its exit
    assert all(u.misses == 1 for u in usage.values())
