"""A hostile environment: a full disk, a read-only cache seen by an unprivileged user,
results that cannot be pickled, pickling that fails half-way. In each, the caller gets
its result, and the cache holds no broken entry and no temporary file afterwards."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import textwrap
import threading
import warnings
from pathlib import Path

import numpy as np
import pytest

from checkpointing import checkpoint
from checkpointing.errors import CheckpointFailedWarning
from checkpointing.store import PickleFileCache

from .conftest import figure


def snapshot(directory: Path) -> dict:
    out = {}
    for path in sorted(directory.rglob("*")):
        out[str(path.relative_to(directory))] = path.read_bytes() if path.is_file() else None
    return out


def temporaries(directory: Path) -> list:
    return [p for p in directory.rglob(".tmp-*")] + [p for p in directory.rglob("*.tmp")]


def verify_ok(directory: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "checkpointing", "verify", "--dir", str(directory)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


# -- a full disk ------------------------------------------------------------------------
FULL_DISK = textwrap.dedent("""
    import sys, warnings
    from checkpointing import checkpoint
    warnings.simplefilter("always")

    @checkpoint(directory=sys.argv[1])
    def block(i):
        return bytearray([i]) * 150_000 + bytearray(i)

    for i in range(12):
        print("RESULT", "ok" if block(i) == bytearray([i]) * 150_000 + bytearray(i)
              else "WRONG")
""")


@pytest.mark.slow
def test_a_full_disk_loses_no_result_and_leaves_nothing_broken(tmp_path: Path) -> None:
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.fail(
            f"this test mounts a 1 MB tmpfs to fill it, which needs root (or "
            f"CAP_SYS_ADMIN); CI runs as root. mount said: {mounted.stderr.strip()}"
        )
    try:
        (tmp_path / "main.py").write_text(FULL_DISK)
        runs = []
        for _ in range(2):  # the second run hits what fit and meets the full disk again
            runs.append(
                subprocess.run(
                    [sys.executable, "main.py", str(mount_point / "c")],
                    cwd=tmp_path,
                    capture_output=True,
                    text=True,
                    timeout=120,
                )
            )
        for done in runs:
            assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
            assert done.stdout.count("RESULT ok") == 12, done.stdout
        failed_saves = runs[0].stderr.count("No space left on device")
        assert failed_saves > 0  # the disk did fill up
        assert temporaries(mount_point) == []
        verify_ok(mount_point / "c")
        stored = len(PickleFileCache(mount_point / "c").entry_files())
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)
    figure(
        "disk full (1 MB tmpfs)",
        f"24 calls: 24 right results, {failed_saves} saves "
        f"refused with ENOSPC (warned), {stored} entries intact, 0 temporary files, "
        f"verify clean",
    )


# -- a read-only cache, as an unprivileged user --------------------------------------------
AS_NOBODY = textwrap.dedent("""
    import os, sys, warnings
    from checkpointing import checkpoint
    warnings.simplefilter("always")
    cache, uid, gid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])

    def want(x):
        return {"x": x, "cube": x ** 3}

    @checkpoint(directory=sys.argv[4])
    def warm_up(x):  # loads, once, every module a miss and a hit need
        return {"x": x, "cube": x ** 3}

    warm_up(1), warm_up(1)
    # The interpreter lives under /root (0700): privileges are dropped once it runs.
    os.setgid(gid)
    os.setuid(uid)

    @checkpoint(directory=cache)
    def f(x):
        print("RAN", x)
        return {"x": x, "cube": x ** 3}

    for x in (1, 2, 3):
        print("RESULT", "ok" if f(x) == want(x) else "WRONG")
""")


def as_nobody(workdir: Path, cache: Path) -> subprocess.CompletedProcess:
    nobody = pwd.getpwnam("nobody")
    scratch = tempfile.mkdtemp(prefix="warm-")
    try:
        return subprocess.run(
            [
                sys.executable,
                "main.py",
                str(cache),
                str(nobody.pw_uid),
                str(nobody.pw_gid),
                scratch,
            ],
            cwd=workdir,
            capture_output=True,
            text=True,
            timeout=120,
        )
    finally:
        shutil.rmtree(scratch)


@pytest.mark.slow
def test_a_read_only_cache_as_an_unprivileged_user() -> None:
    if os.geteuid() != 0:
        pytest.fail("this test becomes the user 'nobody', which needs root; CI runs as root")
    nobody = pwd.getpwnam("nobody")
    workdir = Path(tempfile.mkdtemp(prefix="ckpt-nobody-", dir="/tmp"))
    try:
        os.chmod(workdir, 0o755)
        (workdir / "main.py").write_text(AS_NOBODY)
        os.chmod(workdir / "main.py", 0o644)
        results = {}
        # 1) nobody's own cache, made read-only: hits served, misses computed, not saved.
        own = workdir / "own"
        own.mkdir()
        os.chown(own, nobody.pw_uid, nobody.pw_gid)
        first = as_nobody(workdir, own)
        assert first.stdout.count("RESULT ok") == 3, first.stderr
        (own / "entries" / PickleFileCache(own).entry_files()[0].split("/")[-1]).unlink()
        for path in [own, *own.rglob("*")]:
            os.chmod(path, 0o500 if path.is_dir() else 0o400)
        before = snapshot(own)
        results["own, read-only"] = as_nobody(workdir, own)
        assert snapshot(own) == before
        assert results["own, read-only"].stdout.count("RAN") == 1  # the deleted entry
        # 2) root's private cache: nobody cannot read it at all.
        # 3) root's cache readable by all: entries of another user are not loaded.
        for name, mode in (("root's, private", 0o700), ("root's, readable", 0o755)):
            cache = workdir / name.replace("'", "").replace(", ", "-")
            cache.mkdir()
            PickleFileCache(cache).save("x", 1)
            for path in [cache, *cache.rglob("*")]:
                os.chmod(path, mode if path.is_dir() else mode & 0o644)
            before = snapshot(cache)
            results[name] = as_nobody(workdir, cache)
            assert snapshot(cache) == before
        for name, done in results.items():
            assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
            assert done.stdout.count("RESULT ok") == 3, (name, done.stdout)
            assert "CheckpointFailedWarning" in done.stderr, done.stderr
        assert "UntrustedEntryWarning" not in results["own, read-only"].stderr
        assert temporaries(workdir) == []
    finally:
        shutil.rmtree(workdir)
    figure(
        "read-only cache as user nobody",
        "3 caches (own read-only, root's private, "
        "root's readable) x 3 calls: 9 right results, 0 crashes, 0 bytes changed",
    )


# -- results that cannot be pickled ----------------------------------------------------------
class FailsHalfWay:
    """Pickling reaches this after the large parts before it were already pickled."""

    def __reduce__(self):
        raise RuntimeError("cannot pickle this half")


UNPICKLABLE = {
    "lambda": lambda: lambda: 1,
    "lock": threading.Lock,
    "generator": lambda: (i for i in range(3)),
    "half-way, in-band": lambda: [b"x" * 5_000_000, FailsHalfWay()],
    "half-way, out-of-band": lambda: [np.zeros(1_000_000), np.ones(10), FailsHalfWay()],
}


def test_unpicklable_results_are_returned_and_leave_nothing(in_tmp: Path) -> None:
    cases = 0
    for name, make in UNPICKLABLE.items():
        made = []

        @checkpoint(directory=in_tmp / "c")
        def produce(label):
            made.append(make())
            return made[-1]

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = produce(name)
        assert result is made[-1], name
        assert any(issubclass(w.category, CheckpointFailedWarning) for w in caught), name
        cases += 1
    cache = PickleFileCache(in_tmp / "c")
    assert cache.entry_files() == [] and temporaries(in_tmp) == []
    # A key that already has an entry keeps it when a new result fails half-way.
    cache.save("k", "old")
    with pytest.raises(RuntimeError):
        cache.save("k", [np.zeros(1_000_000), FailsHalfWay()])
    assert cache.retrieve("k") == "old" and temporaries(in_tmp) == []
    verify_ok(in_tmp / "c")
    figure(
        "unpicklable results, pickling failing half-way",
        f"{cases} kinds: {cases} results returned, 0 entries written, 0 temporary "
        f"files, an existing entry kept",
    )
