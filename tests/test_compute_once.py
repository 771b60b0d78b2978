"""Compute once (issue 14, part 2): callers that miss one key together compute it once.

Real processes, each with real threads, released together on one key, against the local
store and against the moto S3 server; a holder SIGKILLed while it computes is taken over
(at once locally, where the OS drops its lock; within the lease time on S3, where its
lease stops being renewed); a waiter whose wait times out computes by itself, with a
warning. Each computation appends a line to ``runs.log``; the tests count the lines.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List, Optional

import pytest

from checkpointing import checkpoint, defaults
from checkpointing.store.locks import (
    ACQUIRED,
    RANGE_LOCKS,
    READY,
    TIMED_OUT,
    FileKeyLock,
    LeaseLock,
    RangeKeyLock,
    thread_gate,
)
from checkpointing.store.remote import RemoteStore, key_lock

HERD = """
import os
import sys
import threading
import time

from checkpointing import checkpoint, defaults

defaults["checkpoint.wait_timeout"] = float(os.environ.get("WAIT", "120"))
defaults["cache.lease_seconds"] = float(os.environ.get("LEASE", "60"))
defaults["checkpoint.compute_once"] = os.environ.get("ONCE", "1") == "1"


@checkpoint(os.environ["CACHE"], allow_side_effects=True)
def expensive(x):
    with open("runs.log", "a") as log:
        log.write(f"{os.getpid()}\\n")
    time.sleep(float(os.environ.get("HOLD", "0.5")))
    return x * 1000 + 7


if __name__ == "__main__":
    threads, go = int(sys.argv[1]), sys.argv[2]
    barrier = threading.Barrier(threads)
    results = []

    def call():
        barrier.wait()
        results.append(expensive(3))

    workers = [threading.Thread(target=call) for _ in range(threads)]
    print("WAITING", flush=True)
    while not os.path.exists(go):
        time.sleep(0.002)
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print("RESULT", sorted(set(results)), len(results), flush=True)
"""


def _env(cache: str, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONHASHSEED", None)
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env["CACHE"] = cache
    env.update(extra or {})
    return env


def _start(root: Path, env: Dict[str, str], *argv: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "herd.py", *argv],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _runs(root: Path) -> List[str]:
    log = root / "runs.log"
    return log.read_text().split() if log.exists() else []


def _herd(root: Path, env: Dict[str, str], processes: int = 8, threads: int = 16) -> None:
    """Start ``processes`` programs of ``threads`` threads each, release them together
    on one key, and check that it was computed once and every caller got its value."""
    (root / "herd.py").write_text(HERD)
    go = root / "go"
    procs = [_start(root, env, str(threads), str(go)) for _ in range(processes)]
    for proc in procs:  # every program is waiting for the gun
        assert proc.stdout.readline().strip() == "WAITING", proc.stderr.read()
    go.write_text("")
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, err
        assert f"RESULT [3007] {threads}" in out, (out, err)
        assert "waited" not in err, err  # nobody gave up waiting
    assert len(_runs(root)) == 1, _runs(root)


@pytest.mark.slow
def test_eight_processes_of_sixteen_threads_compute_once_locally(tmp_path) -> None:
    _herd(tmp_path, _env(str(tmp_path / "cache")))


@pytest.mark.slow
def test_eight_processes_of_sixteen_threads_compute_once_on_s3(tmp_path, s3) -> None:
    _herd(tmp_path, _env(s3.url, {**s3.env, "XDG_CACHE_HOME": str(tmp_path / "xdg")}))
    assert not s3.fs.find(f"{s3.name}/cache/leases")  # released


def _killed_holder_is_taken_over(root: Path, env: Dict[str, str]) -> None:
    (root / "herd.py").write_text(HERD)
    go = root / "go"
    go.write_text("")
    holder = _start(root, {**env, "HOLD": "600"}, "1", str(go))
    deadline = time.monotonic() + 60
    while not _runs(root):  # the holder is computing
        assert holder.poll() is None and time.monotonic() < deadline, holder.stderr.read()
        time.sleep(0.02)
    waiter = _start(root, {**env, "HOLD": "0"}, "4", str(go))
    assert waiter.stdout.readline().strip() == "WAITING"
    time.sleep(0.5)  # the waiter's threads are waiting for the holder
    assert len(_runs(root)) == 1
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    out, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    assert "RESULT [3007] 4" in out and "waited" not in err, (out, err)
    runs = _runs(root)
    assert len(runs) == 2 and runs[0] == str(holder.pid) and runs[1] == str(waiter.pid)
    again = _start(root, {**env, "HOLD": "0"}, "2", str(go))  # now a plain hit
    out, err = again.communicate(timeout=120)
    assert "RESULT [3007] 2" in out and len(_runs(root)) == 2, (out, err)


@pytest.mark.slow
def test_a_killed_holder_frees_the_key_at_once_locally(tmp_path) -> None:
    _killed_holder_is_taken_over(tmp_path, _env(str(tmp_path / "cache"), {"WAIT": "600"}))


@pytest.mark.slow
def test_a_killed_holder_is_taken_over_within_the_lease_on_s3(tmp_path, s3) -> None:
    # The waiter waits at most 600 s: finishing proves the lease (2 s) was taken over.
    env = _env(s3.url, {**s3.env, "XDG_CACHE_HOME": str(tmp_path / "x"), "LEASE": "2"})
    _killed_holder_is_taken_over(tmp_path, {**env, "WAIT": "600"})


def test_a_wait_that_times_out_computes_with_a_warning(tmp_path) -> None:
    cache = tmp_path / "cache"
    runs = []

    def body(x):
        runs.append(x)
        return x + 1

    defaults["checkpoint.wait_timeout"] = 0.2
    f = checkpoint(str(cache))(body)
    from checkpointing.store.remote import key_lock

    # Another caller computes, forever: a thread of this process took the key (a
    # process with one thread locks through a file it keeps open, and locks of one
    # open file do not exclude each other: the caller must be another thread).
    holder = key_lock(f.checkpoint.cache, f.key(1))
    taken = []
    thread = threading.Thread(target=lambda: taken.append(holder.acquire(1)))
    thread.start()
    thread.join()
    assert taken == [ACQUIRED]
    try:
        with pytest.warns(UserWarning, match=r"waited 0.2s for another caller computing"):
            assert f(1) == 2
    finally:
        holder.release()
    assert runs == [1]


def test_file_lock_excludes_threads_and_says_when_the_entry_appears(tmp_path) -> None:
    entry = tmp_path / "entry"
    first = FileKeyLock(str(tmp_path / "locks" / "k.lock"), str(entry))
    second = FileKeyLock(str(tmp_path / "locks" / "k.lock"), str(entry))
    assert first.acquire(1) == ACQUIRED
    assert second.acquire(0.05) == TIMED_OUT
    threading.Timer(0.5, entry.write_text, ("done",)).start()
    assert second.acquire(5) == READY
    first.release()
    assert not (tmp_path / "locks" / "k.lock").exists()
    assert second.acquire(0.05) == ACQUIRED
    second.release()


@pytest.mark.skipif(not RANGE_LOCKS, reason="open file description locks: 64-bit Linux only")
def test_range_lock_excludes_threads_on_one_byte_and_creates_no_file_per_key(tmp_path) -> None:
    entry = tmp_path / "entry"
    path = str(tmp_path / "locks" / "keys")
    first = RangeKeyLock(path, 2**61 + 12345, str(entry))
    second = RangeKeyLock(path, 2**61 + 12345, str(entry))
    elsewhere = RangeKeyLock(path, 7, str(tmp_path / "other"))
    assert first.acquire(1) == ACQUIRED
    assert elsewhere.acquire(0.05) == ACQUIRED  # another key: not excluded
    assert second.acquire(0.05) == TIMED_OUT
    threading.Timer(0.5, entry.write_text, ("done",)).start()
    assert second.acquire(5) == READY
    first.release()
    assert second.acquire(0.05) == ACQUIRED
    second.release()
    elsewhere.release()
    assert os.listdir(tmp_path / "locks") == ["keys"] and os.path.getsize(path) == 0


@pytest.mark.skipif(not RANGE_LOCKS, reason="open file description locks: 64-bit Linux only")
def test_a_local_store_locks_a_byte_per_key_and_another_process_waits(tmp_path) -> None:
    """The lock of a key in a local store is a byte of ``locks/keys``, held against
    another process (which sees the entry appear), and free once released."""
    f = checkpoint(str(tmp_path / "cache"))(lambda x: x)
    lock = key_lock(f.checkpoint.cache, "k1")
    assert isinstance(lock, RangeKeyLock)
    assert key_lock(f.checkpoint.cache, "k2").offset != lock.offset
    assert lock.acquire(1) == ACQUIRED
    probe = (
        "import sys; from checkpointing.store.locks import RangeKeyLock as L; "
        "print(L(sys.argv[1], int(sys.argv[2]), sys.argv[3]).acquire(float(sys.argv[4])))"
    )
    args = [sys.executable, "-c", probe, lock.lock_path, str(lock.offset), lock.entry_path]
    out = subprocess.run([*args, "0.3"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == TIMED_OUT
    lock.release()
    out = subprocess.run([*args, "5"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ACQUIRED


KEPT_LOCK_FILE = """
import os, sys, threading
from checkpointing.store.locks import RangeKeyLock, _KEPT_LOCK_FILES

path, entry = sys.argv[1], sys.argv[2]


def lock(offset=99):
    return RangeKeyLock(path, offset, entry, keep_open=True)


def in_a_thread():
    seen = []

    def run():
        other = lock()
        seen.append(other.acquire(0.2))
        other.release()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return seen[0]


held = lock()
print("main:", held.acquire(1), "through the kept file:", held._kept)
elsewhere = lock(100)
print("another key:", elsewhere.acquire(0.05))
elsewhere.release()
print("a thread:", in_a_thread())
pid = os.fork()
if pid == 0:
    child = lock()
    os._exit(0 if child.acquire(0.2) == "timed out" and not child._kept else 1)
print("a forked child timed out:", os.waitpid(pid, 0)[1] == 0)
held.release()
print("a thread after the release:", in_a_thread())
print("kept files:", len(_KEPT_LOCK_FILES))
"""


@pytest.mark.e2e
@pytest.mark.skipif(not RANGE_LOCKS, reason="open file description locks: 64-bit Linux only")
def test_a_lock_file_kept_open_by_one_thread_still_excludes_threads_and_children(
    tmp_path,
) -> None:
    """The decorator's range locks go through a descriptor the process keeps open while
    it has one thread (no open and close per miss); a thread started later, and a
    forked child, wait for the byte it holds as another process does. (In a process
    of its own: the test runner's may have threads.)"""
    script = tmp_path / "kept.py"
    script.write_text(KEPT_LOCK_FILE)
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "locks" / "keys"), str(tmp_path / "e")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "main: acquired through the kept file: True",
        "another key: acquired",
        "a thread: timed out",
        "a forked child timed out: True",
        "a thread after the release: acquired",
        "kept files: 1",
    ]


def test_thread_gate_lets_one_thread_in_at_a_time() -> None:
    inside, most, order = [0], [0], []

    def enter() -> None:
        with thread_gate("key", 10) as waited:
            order.append(waited)
            inside[0] += 1
            most[0] = max(most[0], inside[0])
            time.sleep(0.01)
            inside[0] -= 1

    threads = [threading.Thread(target=enter) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert most[0] == 1 and order.count(None) >= 1 and set(order) <= {None, True}


def test_a_lease_is_create_only_renewed_and_taken_over_when_not_renewed(s3, tmp_path) -> None:
    store = RemoteStore(s3.url, local_tier=str(tmp_path / "t"))
    path = f"{s3.name}/cache/leases/k"
    holder = LeaseLock(store, path, lambda: None, 1.5)
    other = LeaseLock(store, path, lambda: None, 1.5)
    assert holder.acquire(1) == ACQUIRED
    first = store.etag(path)
    time.sleep(1.0)  # renewed every 0.5 s
    assert store.etag(path) != first
    assert other.acquire(2.5) == TIMED_OUT  # never unchanged for a whole lease
    holder._stop.set()  # the holder stops renewing, as a killed one would
    holder._heartbeat.join()
    assert other.acquire(10) == ACQUIRED
    assert store.create(path, b"x") is None  # held: create-only fails
    other.release()
    assert store.etag(path) is None
    holder.release()  # its lease was taken over: nothing of the other's is removed


@pytest.mark.skipif(not RANGE_LOCKS, reason="open file description locks: 64-bit Linux only")
def test_a_file_system_that_refuses_range_locks_gets_lock_files(tmp_path, monkeypatch) -> None:
    """A folder whose file system refuses range locks (some network file systems: the
    refusal is simulated, ENOLCK) computes its miss without the lock, then locks keys
    with one file each."""
    import errno

    from checkpointing.store import locks

    sys.ckpt_refused_runs = []  # on sys: a list the body read would be in its key

    def body(x):
        sys.ckpt_refused_runs.append(x)
        return x + 1

    f = checkpoint(str(tmp_path / "cache"))(body)

    def refuse(fd, cmd, arg=0):
        raise OSError(errno.ENOLCK, "no locks here")

    monkeypatch.setattr(locks.fcntl, "fcntl", refuse)
    try:
        assert f(1) == 2 and sys.ckpt_refused_runs == [1]
        lock = key_lock(f.checkpoint.cache, f.key(2))
        assert isinstance(lock, FileKeyLock)
        assert f(2) == 3 and f(1) == 2 and sys.ckpt_refused_runs == [1, 2]
    finally:
        locks.REFUSED.discard(str(tmp_path / "cache" / "locks"))
        del sys.ckpt_refused_runs


ONE_THREAD = """
import _thread, sys, threading, time
from checkpointing import checkpoint
from checkpointing.store.locks import thread_gate

# Kept on sys: a global list would be a value f reads, so part of its key.
sys.runs, sys.seen, sys.late = [], [], []

@checkpoint(directory=sys.argv[1])
def f(x):
    sys.runs.append(x)
    if len(sys.runs) == 1:  # the first run starts a thread that misses the same key
        late = threading.Thread(target=lambda: sys.seen.append(f(x)))
        late.start()
        time.sleep(0.3)  # it now waits for this run's lock
        sys.late.append(late)
    return x * 10

print("threads before:", _thread._count())
with thread_gate("k", 1) as waited:
    print("gate:", waited)
print("value:", f(4))
sys.late[0].join()
print("runs:", sys.runs, "seen:", sys.seen)
"""


@pytest.mark.e2e
def test_a_process_with_one_thread_skips_the_gate_and_a_later_thread_still_waits(
    tmp_path,
) -> None:
    """With no other thread there is nobody to queue behind in the process: the miss
    goes straight to the key's shared lock. A thread its body starts and that misses
    the same key meanwhile waits on that lock (which excludes threads as it does
    processes) and then reads the entry: the body runs once."""
    script = tmp_path / "one_thread.py"
    script.write_text(ONE_THREAD)
    out = subprocess.run(
        [sys.executable, str(script), str(tmp_path / "cache")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines() == [
        "threads before: 0",
        "gate: None",
        "value: 40",
        "runs: [4] seen: [40]",
    ]
