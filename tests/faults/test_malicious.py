"""A planted entry whose pickle runs code when loaded is never loaded.

The attacker writes a well-formed entry (right magic, format, checksum and key: the
format is public) at the path of a key the victim will ask for; its pickle would
create a marker file. Whatever the layer that stops it (owner, permissions of the file
or of a folder, a missing or wrong signature), the marker must not exist afterwards,
the victim must get the right value, and ``verify --deep`` must not load it either.
"""

from __future__ import annotations

import os
import pwd
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import xxhash

from checkpointing import checkpoint, defaults
from checkpointing.errors import UntrustedEntryWarning
from checkpointing.store import PickleFileCache, _serialize

from .conftest import figure


class Payload:
    """Unpickling this runs ``open(marker, "w")``: the stand-in for any command."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (exec, (f"open({self.marker!r}, 'w').close()",))


def plant(path: str, key: str, marker: Path, secret: bytes = None) -> None:
    chunks = _serialize(key, Payload(marker), {"function": "victim"}, 5, secret)
    with open(path, "wb") as handle:
        for chunk in chunks:
            handle.write(chunk)


def nobody() -> pwd.struct_passwd:
    return pwd.getpwnam("nobody")


def tamper_signed(path: str, key: str, marker: Path) -> None:
    """Take a valid signature made with the team's secret (of another entry) and put it
    on the attacker's payload, with a checksum recomputed to match (anyone can)."""
    team = b"".join(bytes(c) for c in _serialize(key, "harmless", {}, 5, b"team secret"))
    data = bytearray(
        b"".join(
            bytes(c)
            for c in _serialize(key, Payload(marker), {"function": "victim"}, 5, b"attacker")
        )
    )
    data[17:49] = team[17:49]
    struct.pack_into("<Q", data, 9, xxhash.xxh3_64_intdigest(bytes(data[17:])))
    with open(path, "wb") as handle:
        handle.write(data)


def chown_nobody(path: str, cache: Path) -> None:
    os.chown(path, nobody().pw_uid, nobody().pw_gid)


CASES = {
    # name: (secret set?, how the entry is planted, what else the attacker changes)
    "file owned by another user": (None, None, chown_nobody),
    "entries/ writable by others": (None, None, lambda p, c: os.chmod(os.path.dirname(p), 0o777)),
    "cache root writable by group": (None, None, lambda p, c: os.chmod(c, 0o770)),
    "file writable by others": (None, None, lambda p, c: os.chmod(p, 0o666)),
    "secret set, entry unsigned": (b"team secret", None, None),
    "secret set, signed with another secret": (b"team secret", b"attacker", None),
    "secret set, signature copied onto another payload": (b"team secret", "tamper", chown_nobody),
}


def need_root() -> None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.fail("this test gives files to the user 'nobody', which needs root; CI runs as root")


def test_a_planted_entry_is_never_executed(tmp_path: Path) -> None:
    need_root()
    executed = served_wrong = 0
    for number, (name, (secret, signer, attack)) in enumerate(CASES.items()):
        defaults["cache.secret"] = secret
        cache_dir = tmp_path / f"cache{number}"
        marker = tmp_path / f"EXECUTED{number}"

        @checkpoint(directory=cache_dir)
        def victim(x):
            return x * 2

        assert victim(21) == 42  # the cache exists, with the victim's own entry
        key = victim.key(21)
        path = PickleFileCache(cache_dir).path_of(key)
        if signer == "tamper":
            tamper_signed(path, key, marker)
        else:
            plant(path, key, marker, signer)
        if attack is not None:
            attack(path, cache_dir)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            value = victim(21)
        assert any(issubclass(w.category, UntrustedEntryWarning) for w in caught), name
        served_wrong += value != 42
        deep = subprocess.run(
            [sys.executable, "-m", "checkpointing", "verify", "--deep", "--dir", str(cache_dir)],
            capture_output=True,
            text=True,
            env={**os.environ, "CHECKPOINTING_SECRET": (secret or b"").decode()},
        )
        executed += marker.exists()
        assert not marker.exists(), name
        assert "Traceback" not in deep.stderr, deep.stderr

    # The control: the same planted bytes, in the victim's own private cache (what
    # the checks let through), do run: the marker above would have told.
    defaults["cache.secret"] = None
    marker = tmp_path / "EXECUTED-control"
    control = tmp_path / "control.ckpt"
    plant(str(control), "k", marker)
    os.chmod(control, 0o644)
    cache = PickleFileCache(tmp_path / "control-cache")
    os.makedirs(cache.entries_directory, mode=0o700)
    os.replace(control, cache.path_of("k"))
    cache.retrieve("k")
    assert marker.exists()
    figure(
        "planted malicious entries",
        f"{len(CASES)} attacks (owner, permissions of "
        f"file, folder and root, signing on and off): {executed} executed, "
        f"{served_wrong} wrong values; the same bytes without the checks: executed",
    )


def test_a_shared_signed_entry_from_a_teammate_is_served(tmp_path: Path) -> None:
    """Signing is what makes sharing possible: a teammate's signed entry in a group
    folder is loaded, an unsigned one beside it is not."""
    need_root()
    shared = PickleFileCache(tmp_path / "shared", secret=b"team", permissions=0o660)
    shared.save("signed", {"from": "teammate"})
    shared.save("unsigned", "x")
    unsigned = PickleFileCache(tmp_path / "shared", secret=None, permissions=0o660)
    unsigned.save("unsigned", "x")
    for key in ("signed", "unsigned"):
        chown_nobody(shared.path_of(key), tmp_path)
    assert oct(os.stat(shared.entries_directory).st_mode & 0o777) == "0o770"
    assert shared.retrieve("signed") == {"from": "teammate"}
    with pytest.warns(UntrustedEntryWarning, match="not signed"):
        with pytest.raises(LookupError):
            shared.retrieve("unsigned")
