"""The entry format in memory: bytes in, bytes out, no disk (``checkpointing.store.format``).

The local store's own tests (tests/test_store.py, tests/faults/) check the same promises
through files; these check that the format keeps them by itself, so that any store that
writes ``encode``'s bytes (a remote one) gets them too.
"""

from __future__ import annotations

import numpy as np
import pytest

from checkpointing.store import PickleFileCache
from checkpointing.store.format import (
    _FIRST_READ,
    FORMAT_VERSION,
    MAGIC,
    _key_digest,
    _read_small,
    decode,
    decode_header,
    encode,
)

VALUES = [
    None,
    42,
    "text",
    {"a": [1, 2.5, (3, "x")]},
    np.arange(10),  # in band: the whole entry fits in the first read
    np.arange(100_000, dtype=np.float64),  # out of band, larger than the first read
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_encode_then_decode_gives_the_value_back(value) -> None:
    data = encode("k", value, {"function": "m.f"})
    assert data[:4] == MAGIC and data[4] == FORMAT_VERSION
    result, checks = decode(data, "k")
    assert checks is None
    if isinstance(value, np.ndarray):
        assert isinstance(result, np.ndarray) and np.array_equal(result, value)
        assert result.flags.writeable
    else:
        assert result == value


def test_large_buffers_start_at_64_byte_offsets() -> None:
    value = np.arange(100_000, dtype=np.float64)
    data = encode("k", value)
    header = decode_header(data)
    assert header["buffers"] == [value.nbytes]
    start = data.find(value.tobytes())
    assert start > 0 and start % 64 == 0
    assert len(data) > _FIRST_READ  # decode read it in pieces, as from a file


def test_the_header_holds_the_metadata_and_the_store_keys() -> None:
    header = decode_header(encode("key-1", [1, 2], {"function": "m.f", "checks": {"x": 1}}))
    assert header["function"] == "m.f" and header["checks"] == {"x": 1}
    assert header["context_id"] == "key-1"
    assert header["key_digest"] == _key_digest("key-1").hex()
    assert header["signed"] is False


def test_checks_come_back_with_the_value() -> None:
    result, checks = decode(encode("k", 7, {"checks": {"files": ["a.csv"]}}), "k")
    assert (result, checks) == (7, {"files": ["a.csv"]})


def test_every_flipped_byte_is_an_error_never_a_wrong_value() -> None:
    data = encode("k", {"value": list(range(50))}, {"function": "m.f"})
    for position in range(len(data)):
        damaged = bytearray(data)
        damaged[position] ^= 0x40
        try:
            result = decode(bytes(damaged), "k")
        except ValueError:
            continue
        raise AssertionError(f"byte {position} flipped, still decoded as {result!r}")


def test_a_truncated_or_empty_entry_is_an_error_naming_why() -> None:
    data = encode("k", np.arange(100_000))
    with pytest.raises(ValueError, match="empty"):
        decode(b"", "k")
    with pytest.raises(ValueError, match="truncated"):
        decode(data[:10], "k")
    with pytest.raises(ValueError, match="truncated"):
        decode(data[: len(data) - 100], "k")
    with pytest.raises(ValueError, match="magic"):
        decode(b"PK" + data[2:], "k")


def test_an_entry_of_another_key_is_refused() -> None:
    data = encode("k1", 1)
    with pytest.raises(ValueError, match="misplaced"):
        decode(data, "k2")
    assert decode(data)[0] == 1  # no key given: not checked


def test_signed_entries_need_the_same_secret() -> None:
    signed = encode("k", 1, secret=b"s1")
    assert decode(signed, "k", secret=b"s1")[0] == 1
    assert decode_header(signed)["signed"] is True
    with pytest.raises(ValueError, match="signature does not match"):
        decode(signed, "k", secret=b"s2")
    with pytest.raises(ValueError, match="not signed"):
        decode(encode("k", 1), "k", secret=b"s1")


def test_the_small_entry_fast_path_agrees_with_the_general_one() -> None:
    data = encode("k", {"a": 1}, {"checks": {"env": "X"}})
    pickled, checks, _flags, _signature = _read_small(data, _key_digest("k"))
    assert checks == {"env": "X"}
    assert decode(data, "k") == ({"a": 1}, {"env": "X"})
    assert bytes(pickled) in data
    assert _read_small(data, _key_digest("other")) is None  # left to the general path


def test_the_local_store_writes_the_encoded_bytes(tmp_path) -> None:
    cache = PickleFileCache(tmp_path / "cache")
    cache.save_entry("k", [1, 2, 3], {"function": "m.f"})
    with open(cache.path_of("k"), "rb") as handle:
        on_disk = handle.read()
    assert on_disk == encode("k", [1, 2, 3], {"function": "m.f"}, cache.pickle_protocol)
