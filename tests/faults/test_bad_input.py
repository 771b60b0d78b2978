"""Bad input to the command line and to ``defaults``: one clear line, never a traceback.

Also the cache's own hygiene that users meet from the command line: private
permissions, the group mode on purpose, leftover temporary files listed by ``verify``
and removed by ``clear`` and ``prune``, names that could drive a terminal escaped.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import List

import pytest

from checkpointing import checkpoint, defaults, store
from checkpointing.errors import CheckpointFailedError, ConfigurationError
from checkpointing.store import PickleFileCache

from .conftest import figure


def cli(cwd: Path, *argv: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "checkpointing", *argv], cwd=cwd, capture_output=True, timeout=120
    )


def one_line_usage_error(done: subprocess.CompletedProcess) -> bool:
    err = done.stderr.decode("utf-8", "replace")
    return done.returncode == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    (tmp_path / "main.py").write_text(
        "from checkpointing import checkpoint\n@checkpoint()\ndef f(x):\n    return x\nf(1)\n"
    )
    subprocess.run([sys.executable, "main.py"], cwd=tmp_path, check=True)
    (tmp_path / "broken.py").write_text("def f(:\n")
    (tmp_path / "raising.py").write_text("raise RuntimeError('at import')\n")
    (tmp_path / "exiting.py").write_text("import sys\nsys.exit(3)\n")
    (tmp_path / "a_file").write_text("")
    return tmp_path


def test_each_bad_command_line_is_one_line_and_exit_code_2(proj: Path) -> None:
    bad_name = os.fsdecode(b"mod:\xff\xfe")
    cases: List[List[str]] = [
        ["ls", "--dir", "a_file"],
        ["verify", "--dir", "a_file"],
        ["prune", "--max-size", "lots"],
        ["prune", "--max-size", "1.2.3GB"],
        ["prune", "--max-size", "1e400GB"],
        ["prune", "--max-size", "9" * 30 + "TB"],
        ["prune", "--older-than", "forever"],
        ["prune", "--keep-latest", "-1"],
        ["prune", "--keep-latest", "many"],
        ["prune"],
        ["graph", "broken:f"],
        ["graph", "raising:f"],
        ["why", "raising:f"],
        ["graph", "exiting:f"],
        ["graph", bad_name],
        ["why", bad_name],
        ["graph", "main"],
        ["graph", "nosuchmodule:f"],
        ["why", "main:f", "{not json"],
        ["frobnicate"],
    ]
    failures = [argv for argv in cases if not one_line_usage_error(cli(proj, *argv))]
    # A temporary that is a folder, a FIFO entry: no traceback, no hang.
    entries = proj / ".checkpointing" / "entries"
    (entries / ".tmp-folder").mkdir()
    os.mkfifo(entries / "fifo.ckpt")
    for argv in (
        ["ls"],
        ["verify"],
        ["verify", "--deep"],
        ["clear", "--yes"],
        ["prune", "--older-than", "0s", "--yes"],
    ):
        done = cli(proj, *argv)
        if b"Traceback" in done.stderr or done.returncode not in (0, 1):
            failures.append(argv)
    figure(
        "bad command lines",
        f"{len(cases)} bad inputs: {len(cases) - len(failures)} "
        f"one-line errors with exit code 2, 0 tracebacks; temporary folder and FIFO: "
        f"no traceback, no hang",
    )
    assert failures == []


def test_an_unreadable_cache_folder_is_a_usage_error(proj: Path, monkeypatch) -> None:
    from checkpointing import cli as cli_module

    real_access = os.access
    monkeypatch.setattr(
        os,
        "access",
        lambda path, mode: (
            False if str(path).endswith(".checkpointing") else real_access(path, mode)
        ),
    )
    with pytest.raises(cli_module.UsageError, match="permission denied"):
        cli_module._open_cache(str(proj / ".checkpointing"))


def test_names_that_could_drive_the_terminal_are_escaped(proj: Path) -> None:
    cache = PickleFileCache(proj / ".checkpointing")
    cache.save("k-escape", 1)
    evil = "pkg:\x1b]0;owned\x07\x1b[2J" + os.fsdecode(b"\xff")
    cache.save_entry("k-evil", 2, {"function": evil})
    for argv in (["ls"], ["clear", "--yes"]):
        out = cli(proj, *argv).stdout
        assert b"\x1b" not in out and b"\x07" not in out, out
        assert b"\\x1b" in out
    assert cli(proj, "ls").stdout.count(b"\\x1b") == 0  # cleared


WRONG = {
    "cache.filesystem.directory": [5, None, b"bytes", ["a"], {"a": 1}, ""],
    "cache.pickle_protocol": ["5", 5.0, True, 99, -1, None],
    "cache.permissions": [0o777, 0o666, 0o700, 0o400, "0600", True, None, 6.0],
    "cache.secret": ["", b"", 5, ["s"], {"k": "v"}],
    "checkpoint.on_error": ["loud", 1, None, ["warn"], {"warn": 1}],
    "analysis.project_roots": [5, {"src": 1}, [5], b"src", 2.5],
    "analysis.warn_blind_spots": [1, "yes", None, [True]],
    "analysis.track_versions": [1, "yes", None],
    "runtime.track_files": [0, "no", None],
    "runtime.safety_net": [0, "no", None],
    "runtime.profile_safety_net": [0, "no", None],
    "runtime.track_env": [0, "no", None],
    "cache.variants": [0, -1, 2.5, "4", True, None, [4]],
    "cache.durability": ["sometimes", True, None, 1, ["always"]],
    "cache.memory_bytes": [-1, 2.5, "32", True, None],
    "cache.local_tier": [None, 1, "", b"tier", "s3://bucket/tier", ["t"]],
    "cache.lease_seconds": [0, -1, "60", True, None, [60]],
    "checkpoint.compute_once": [1, "yes", None],
    "checkpoint.wait_timeout": [0, -5.0, "10", False, None],
    "cache.max_size": ["lots", -1, 2.5, "1.2.3GB", "1e400GB", True, [1], b"1GB"],
    "cache.compress_threshold": ["big", -1, None, True, 1.5],
    "checkpoint.enabled": [0, "no", None, "False"],
}


def test_defaults_reject_wrong_types_for_every_key() -> None:
    keys = {k for k in dict(defaults) if not k.startswith("hash.")}  # 1.0 no-op keys
    assert keys == set(WRONG), "a key of defaults has no wrong values listed here"
    wrongly = []
    for key, values in WRONG.items():
        for value in values:
            try:
                defaults[key] = value
                wrongly.append(f"{key}={value!r} accepted")
            except ConfigurationError as exc:
                assert (
                    key.split(".")[-1] in str(exc)
                    or key in str(exc)
                    or "directory" in str(exc)
                    or "on_error" in str(exc)
                ), str(exc)
            except Exception as exc:
                wrongly.append(f"{key}={value!r} raised {type(exc).__name__}")
    assert wrongly == []


def test_private_permissions_and_a_group_on_purpose(tmp_path: Path) -> None:
    old = os.umask(0o002)  # a permissive umask must not leak results
    try:
        cache = PickleFileCache(tmp_path / "private")
        cache.save("k", 1)
        cache.record_history("pkg:f", {"key": "k"})
        modes = {
            p.name: stat.S_IMODE(p.stat().st_mode)
            for p in [tmp_path / "private", *(tmp_path / "private").rglob("*")]
        }
        assert set(modes.values()) <= {0o700, 0o600}, modes
        shared = PickleFileCache(tmp_path / "shared", permissions=0o660)
        shared.save("k", 1)
        assert stat.S_IMODE(os.stat(shared.path_of("k")).st_mode) == 0o660
        assert stat.S_IMODE(os.stat(shared.entries_directory).st_mode) == 0o770
    finally:
        os.umask(old)


def test_leftover_temporaries_listed_by_verify_and_removed(proj: Path) -> None:
    cache = PickleFileCache(proj / ".checkpointing")
    old = time.time() - store.STALE_TEMP_SECONDS - 5
    leftovers = []
    for i in range(3):
        path = Path(cache.entries_directory) / f".tmp-leftover{i}.ckpt"
        path.write_bytes(b"x" * 1000)
        os.utime(path, (old, old))
        leftovers.append(path)
    fresh = Path(cache.entries_directory) / ".tmp-fresh.ckpt"
    fresh.write_bytes(b"y")  # younger than a minute: maybe a live writer's
    report = cli(proj, "verify")
    assert report.returncode == 1
    assert all(p.name.encode() in report.stdout for p in leftovers)
    assert fresh.name.encode() not in report.stdout  # the sweep's rule: not a leftover yet
    assert cli(proj, "prune", "--older-than", "100w", "--yes").returncode == 0
    assert not any(p.exists() for p in leftovers) and fresh.exists()
    for path in leftovers:
        path.write_bytes(b"x")
        os.utime(path, (old, old))
    assert cli(proj, "clear", "--yes").returncode == 0
    assert not any(p.exists() for p in leftovers)
    for path in leftovers:
        path.write_bytes(b"x")
        os.utime(path, (old, old))
    PickleFileCache(proj / ".checkpointing").save("another", 1)  # the next save
    assert not any(p.exists() for p in leftovers) and fresh.exists()


def test_a_live_writers_temporary_is_never_removed(proj: Path) -> None:
    """Neither the saves' sweep nor ``verify --remove`` takes a writer's work in
    progress: an old temporary a writer holds locked (a large entry being written) or a
    fresh unlocked one (a small entry's, renamed microseconds after its one write)."""
    cache = PickleFileCache(proj / ".checkpointing")
    cache.save("k", 1)
    fd, held = store._create_temporary(cache.entries_directory)  # locked, as in a save
    fresh = Path(cache.entries_directory) / ".tmp-0000000000000001.ckpt"
    try:
        old = time.time() - 3600
        os.utime(held, (old, old))
        fresh.write_bytes(b"partial")
        assert cache.remove_stale_temporaries() == 0
        report = cli(proj, "verify", "--remove")
        assert report.returncode == 0, report.stdout
        assert os.path.exists(held) and fresh.exists()
    finally:
        os.close(fd)
    report = cli(proj, "verify")  # the writer is gone: its old file is a leftover now
    assert report.returncode == 1 and os.path.basename(held).encode() in report.stdout
    assert fresh.name.encode() not in report.stdout
    assert cache.remove_stale_temporaries() == 1 and not os.path.exists(held)


def test_on_error_raise_with_an_unreadable_cache_does_not_claim_the_function_ran(
    tmp_path: Path, monkeypatch
) -> None:
    ran = []

    @checkpoint(directory=tmp_path / "c", on_error="raise")
    def f(x):
        ran.append(x)
        return x

    f(1)
    real_open = os.open

    def denied(path, flags, *args, **kwargs):
        if str(path).endswith(".ckpt"):
            raise PermissionError(13, "Permission denied", path)
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", denied)
    with pytest.raises(CheckpointFailedError) as info:
        f(1)
    assert "runs without the cache" not in str(info.value)
    assert "was not run" in str(info.value) and ran == [1]


def test_a_cache_root_that_is_a_link_the_user_made_is_trusted(tmp_path: Path) -> None:
    """``~/.cache -> /data/cache`` is the user's choice; entries/ as a link is not."""
    (tmp_path / "real").mkdir(mode=0o700)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    cache = PickleFileCache(tmp_path / "link")
    cache.save("k", 1)
    assert PickleFileCache(tmp_path / "link").retrieve("k") == 1
