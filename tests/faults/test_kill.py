"""SIGKILL at random points of saves: an entry is whole or absent, never torn or wrong,
and the leftovers of killed writers are gone after the next save.

A forked child process saves versions of a result in a loop (1 KB to 200 MB; large ones as
bytearrays, which pickle protocol 5 writes out of band); the parent kills it with
SIGKILL after a random delay, then reads the key as a later program would. The
temporary files the killed writer left are then made older than the stale threshold
(``store.STALE_TEMP_SECONDS``, a minute: younger ones may belong to a live writer)
and a save in a new cache object must remove them.
"""

from __future__ import annotations

import os
import random
import signal
import time
import warnings
from pathlib import Path

import pytest

from checkpointing import store
from checkpointing.errors import CheckpointNotExist, CorruptEntryWarning
from checkpointing.store import PickleFileCache

from .conftest import figure

KB, MB = 1 << 10, 1 << 20


def save_forever(directory: Path, key: str, size: int, ready: int) -> None:
    """The child: save versions of one result until killed."""
    cache = PickleFileCache(directory)
    os.write(ready, b"r")
    version = 0
    while True:
        data = expected(key, size, version)
        cache.save(key, bytearray(data) if size >= MB else data)
        version += 1


def expected(key: str, size: int, version: int) -> bytes:
    stamp = f"{key}:{size}:{version}:".encode()
    return stamp + bytes([version % 251]) * (size - len(stamp))


def sizes(trials: int, rng: random.Random) -> list:
    """Mostly small and medium results, a few large ones (each costs seconds)."""
    big = [200 * MB] * 3 + [50 * MB] * 7 + [10 * MB] * 20
    small = [
        rng.choice([1 * KB, 10 * KB, 60 * KB, 100 * KB, 1 * MB, 3 * MB])
        for _ in range(trials - len(big))
    ]
    out = big + small
    rng.shuffle(out)
    return out


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork and SIGKILL (POSIX)")
def test_sigkill_during_saves_never_tears_an_entry(tmp_path: Path) -> None:
    rng = random.Random(20261201)
    directory = tmp_path / "cache"
    trials = 200
    torn = wrong = whole = absent = leftovers = leftover_bytes = after_next_save = 0
    for trial, size in enumerate(sizes(trials, rng)):
        # A third of the trials replace an entry saved by an earlier trial.
        key = f"k{rng.randrange(trial)}" if trial and rng.random() < 0.33 else f"k{trial}"
        # A forked child: a real process to kill, without an interpreter's start-up.
        ready, told = os.pipe()
        with warnings.catch_warnings():
            # 3.12+ warns that this process has threads (pytest-xdist's, under -n): the
            # child uses none of their locks (it only saves, until it is killed).
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # pragma: no cover (the child never returns)
            try:
                os.close(ready)
                save_forever(directory, key, size, told)
            finally:
                os._exit(1)
        os.close(told)
        assert os.read(ready, 1) == b"r"
        os.close(ready)
        # Long enough to land anywhere in the first few saves (pickling, writing,
        # fsync, rename) or between them.
        time.sleep(rng.uniform(0, 0.03 + 3 * size / (400 * MB)))
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)

        cache = PickleFileCache(directory)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                value = cache.retrieve(key)
            except CheckpointNotExist:
                value = None
        if any(issubclass(w.category, CorruptEntryWarning) for w in caught):
            torn += 1
        if value is None:
            absent += 1
        else:
            stamp = bytes(value[:64]).split(b":")
            if (
                stamp[0].decode() != key
                or int(stamp[1]) != len(value)
                or bytes(value) != expected(key, int(stamp[1]), int(stamp[2]))
            ):
                wrong += 1
            else:
                whole += 1
        del value
        temporaries = cache.temporaries()
        leftovers += len(temporaries)
        for path in temporaries:
            leftover_bytes += os.path.getsize(path)
            old = time.time() - store.STALE_TEMP_SECONDS - 5
            os.utime(path, (old, old))
        PickleFileCache(directory).save("next", trial)  # the next save of a program
        after_next_save += len(cache.temporaries())
        if size >= 10 * MB:  # keep the disk small: big entries go once checked
            cache.delete(key)
    figure(
        "SIGKILL during saves",
        f"{trials} trials (1 KB-200 MB): {torn} torn, {wrong} wrong, {whole} whole, "
        f"{absent} absent; {leftovers} leftover temporary files "
        f"({leftover_bytes / MB:.0f} MB) before the next save, {after_next_save} after",
    )
    assert (torn, wrong, after_next_save) == (0, 0, 0)
    assert whole > 0 and leftovers > 0  # the kills did land both between and in saves
