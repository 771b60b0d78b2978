"""The usage log's lines of hits wait in memory like those of saves (issue 12, target 5:
a first hit makes no system call for its line), and are never lost at a normal exit,
seen by every reader of the same process, written at once by a forked child, and
written by a busy process a second after they began to wait.

See :mod:`checkpointing.store.evict` ("The lines wait in memory").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from checkpointing import PickleFileCache, checkpoint, prune
from checkpointing.store import evict
from checkpointing.store.evict import UsageLog, prune_cache, usage_log_for

# A program: saves f(0..n-1) with "fill", else hits the keys given, each reported as
# "HIT i"; "wait" waits for a line on stdin before exiting (the parent looks at the log
# meanwhile); "sleep" waits for a line, then hits each key a second time after a
# pause of 1.2 s.
HITTER = """
import os, sys, time
from checkpointing import checkpoint

@checkpoint(directory=sys.argv[1])
def f(i):
    print("RAN", i, flush=True)
    return bytes(1000 + i)

if sys.argv[2] == "fill":
    for i in range(int(sys.argv[3])):
        f(i)
        time.sleep(0.02)  # distinct creation times
    sys.exit()
for i in map(int, sys.argv[2].split(",")):
    assert len(f(i)) == 1000 + i
    print("HIT", i, flush=True)
if "sleep" in sys.argv:
    sys.stdin.readline()  # the parent has looked at the log
    time.sleep(1.2)
    for i in map(int, sys.argv[2].split(",")):
        f(i)
    print("AGAIN", flush=True)
if "wait" in sys.argv:
    sys.stdin.readline()
"""


def _run(tmp_path: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    script = tmp_path / "hitter.py"
    script.write_text(HITTER)
    return subprocess.run(
        [sys.executable, str(script), str(tmp_path / "cache"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
        **kwargs,
    )


def _start(tmp_path: Path, *args: str) -> subprocess.Popen:
    script = tmp_path / "hitter.py"
    script.write_text(HITTER)
    return subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "cache"), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _log_lines(cache_dir: Path) -> list:
    path = cache_dir / "usage.log"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines()]


def _keys(cache: PickleFileCache) -> dict:
    """Entry key -> the i of f(i) (results are ``bytes(1000 + i)``)."""
    return {e.key: cache.read_entry(e.key)[0].__len__() - 1000 for e in cache.iter_entries()}


@pytest.mark.e2e
def test_a_process_that_hit_and_exited_keeps_its_entry_from_lru_eviction(tmp_path) -> None:
    """One process hits the oldest entry and exits (its line waited until then); another
    prunes to two entries' size by last use: the entry hit is kept, the least recently
    used (the oldest never hit) goes."""
    _run(tmp_path, "fill", "3")
    cache = PickleFileCache(tmp_path / "cache")
    by_key = _keys(cache)
    hit = _run(tmp_path, "0")
    assert hit.stdout.split() == ["HIT", "0"]  # a hit: the body did not run
    assert [(r["k"], r.get("h")) for r in _log_lines(tmp_path / "cache") if "t" in r][-1] == (
        next(k for k, i in by_key.items() if i == 0),
        1,
    )
    sizes = sorted(e.size for e in cache.iter_entries())
    removed = prune_cache(PickleFileCache(tmp_path / "cache"), max_size=sizes[-1] + sizes[-2])
    assert [by_key[r["key"]] for r in removed] == [1]
    assert sorted(_keys(cache).values()) == [0, 2]
    # ... and the values kept are those a fresh run computes.
    again = _run(tmp_path, "0,2,1")
    assert again.stdout.split() == ["HIT", "0", "HIT", "2", "RAN", "1", "HIT", "1"]


@pytest.mark.e2e
def test_a_first_hit_writes_no_line_until_exit_or_a_second_later(tmp_path) -> None:
    """The line of a first hit waits: not in the log while the process lives on without
    another call of the cache; written by its hit a second or more later (the process
    is still alive), and its later hits counted at exit, once."""
    _run(tmp_path, "fill", "2")
    cache_dir = tmp_path / "cache"
    saves = len(_log_lines(cache_dir))
    proc = _start(tmp_path, "0,1", "sleep", "wait")
    try:
        assert proc.stdout.readline().split() == ["HIT", "0"]
        assert proc.stdout.readline().split() == ["HIT", "1"]
        assert len(_log_lines(cache_dir)) == saves  # both lines wait
        proc.stdin.write("next\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "AGAIN"
        written = _log_lines(cache_dir)[saves:]
        assert len(written) == 2 and all(r["h"] == 1 and "t" in r for r in written)
    finally:
        out, err = proc.communicate("go\n", timeout=60)
    assert proc.returncode == 0, err
    counted = _log_lines(cache_dir)[saves + 2 :]
    assert sorted((r["h"], "t" in r) for r in counted) == [(1, False), (1, False)]
    usage = UsageLog(PickleFileCache(cache_dir)).read()
    assert sorted(u.hits for u in usage.values()) == [2, 2]


def _save_then_hit(f) -> None:
    """Save f(0), f(1), f(2) (created, and their lines, at 1000, 1001, 1002), then hit
    f(0) at 2000, in a new process's state of the usage log (its line then waits)."""
    now = [1000.0]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(time, "time", lambda: now[0])
        for i in range(3):
            now[0] = 1000.0 + i
            f(i)
        usage_log_for(f.checkpoint.cache).state.clear()  # as a new process: a first hit
        now[0] = 2000.0
        assert f(0) == bytes(1000)


def test_a_hit_then_a_read_in_the_same_process_sees_the_hit(in_tmp) -> None:
    """Every reader of the log in the process that hit writes the waiting lines first:
    the usage read and ``prune`` (by last use), also when they name the cache folder by
    another path (a symlink)."""
    os.mkdir("real")
    os.symlink("real", "link")

    @checkpoint(directory="link/cache")
    def f(i):
        return bytes(1000 + i)

    _save_then_hit(f)
    assert not os.path.exists("real/cache/usage.log")
    usage = usage_log_for(PickleFileCache("real/cache")).read()
    assert usage[f.key(0)].hits == 1 and usage[f.key(0)].last_used == 2000.0
    assert os.path.exists("real/cache/usage.log")
    cache = PickleFileCache("real/cache")
    size = {e.key: e.size for e in cache.iter_entries()}
    removed = prune(max_size=size[f.key(0)] + size[f.key(2)], directory="real/cache")
    assert [r["key"] for r in removed] == [f.key(1)]
    assert sorted(os.listdir("real/cache/entries")) == sorted(
        os.path.basename(cache.path_of(f.key(i))) for i in (0, 2)
    )


def test_prune_in_the_process_that_hit_sees_the_hit(in_tmp) -> None:
    """The same through a folder named alike: the hit's waiting line is written by the
    read of ``prune``."""

    @checkpoint(directory="cache")
    def f(i):
        return bytes(1000 + i)

    _save_then_hit(f)
    size = {e.key: e.size for e in PickleFileCache("cache").iter_entries()}
    removed = prune(max_size=size[f.key(0)] + size[f.key(2)], directory="cache")
    assert [r["key"] for r in removed] == [f.key(1)]


def test_the_cli_stats_in_the_process_that_hit_counts_the_hit(in_tmp, capsys) -> None:
    from checkpointing import cli

    @checkpoint(directory="cache")
    def f(i):
        return i

    f(1)
    f(1)
    assert not _log_lines(Path("cache"))  # the save's and the hit's lines wait
    assert cli.main(["--dir", "cache", "--json", "stats"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert (row["hits"], row["misses"]) == (1, 1)


def test_a_waiting_hit_line_is_written_at_the_next_hit_a_second_later(in_tmp) -> None:
    """The bound a busy process keeps: its hit line is written at its next hit of that
    key (or any line) a second or more after it began to wait, dated by the first hit;
    later hits are counted in memory for an hour again."""
    os.mkdir("cache")
    cache = PickleFileCache("cache")
    log = UsageLog(cache)
    clock = [5000.0]
    log._monotonic = lambda: clock[0]
    log.hit("a", "m:f")
    assert not os.path.exists(log.path)
    clock[0] += 0.5
    log.hit("a", "m:f")  # what the decorator inlines: counted in memory
    assert not os.path.exists(log.path)
    clock[0] += 0.6
    log.hit("a", "m:f")  # a second after the first: the waiting line goes
    (line,) = _log_lines(Path("cache"))
    assert line["k"] == "a" and line["h"] == 1 and line["f"] == "m:f"
    clock[0] += 1800
    log.hit("a", "m:f")  # half an hour later: counted in memory
    assert len(_log_lines(Path("cache"))) == 1
    assert log.state["a"][1] == 3
    clock[0] += 1800
    log.hit("a", "m:f")  # an hour after the line: a new one (waiting)
    assert len(_log_lines(Path("cache"))) == 1
    log.flush()
    lines = _log_lines(Path("cache"))
    assert [(r["h"], "t" in r) for r in lines] == [(1, True), (4, True)]
    assert log.read()["a"].hits == 5


def test_usage_lines_are_what_json_dumps_writes() -> None:
    """The lines are built without an encoder (a first hit does not need one): the same
    text as ``json.dumps`` of the record, escapes included."""
    for key, name, when, hits, misses in [
        ("ab" * 16, "m:f", 1700000000.25, 1, 0),
        ("k", "pkg.mod:C.f", 1.0, 0, 1),
        ("k", 'we"ird\\name\n', None, 7, 0),
        ("k", "naïve:f", 3.5, 2, 1),
    ]:
        record = {"k": key, "f": name}
        if when is not None:
            record["t"] = when
        if misses:
            record["m"] = misses
        if hits:
            record["h"] = hits
        expected = json.dumps(record, separators=(",", ":")) + "\n"
        assert evict._usage_line(key, name, when, hits, misses) == expected


FORKER = """
import os, sys, json
from checkpointing import checkpoint

@checkpoint(directory=sys.argv[1])
def f(i):
    return i

if sys.argv[2] == "fill":
    f(1), f(2)
    sys.exit()
f(1)  # the parent's hit: its line waits
pid = os.fork()
if pid == 0:
    f(2)  # the child's hit: written at once (os._exit skips exit handlers)
    f(1)
    os._exit(0)
os.waitpid(pid, 0)
with open(os.path.join(sys.argv[1], "usage.log")) as fh:
    print(json.dumps([json.loads(line) for line in fh][2:]))
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork: POSIX only")
@pytest.mark.e2e
def test_a_forked_child_writes_its_hit_lines_at_once_and_not_its_parents(tmp_path) -> None:
    script = tmp_path / "forker.py"
    script.write_text(FORKER)
    cache_dir = tmp_path / "cache"
    subprocess.run([sys.executable, str(script), str(cache_dir), "fill"], check=True)
    saves = _log_lines(cache_dir)
    assert len(saves) == 2
    key = {r["k"]: n for n, r in enumerate(saves, 1)}
    out = subprocess.run(
        [sys.executable, str(script), str(cache_dir), "x"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    ).stdout
    # Seen by the parent while it lives: the child's two hits, not the parent's.
    child = json.loads(out)
    assert sorted((key[r["k"]], r["h"]) for r in child) == [(1, 1), (2, 1)]
    # After the parent's exit: its own hit, once (no count of it written by the child).
    usage = UsageLog(PickleFileCache(cache_dir)).read()
    assert {key[k]: u.hits for k, u in usage.items()} == {1: 2, 2: 1}
