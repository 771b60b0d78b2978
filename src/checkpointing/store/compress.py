"""Optional compression of large results (``checkpoint(compress="zstd"|"lz4")``).

This module owns the codecs and the :class:`Compressed` record. It is deliberately
outside the entry format: a compressed result is stored as an ordinary entry whose
value is a :class:`Compressed` (the codec, the compressed pickle of the result and its
size), so every promise of the file store (atomic writes, checksum, key check, trust
and signature before unpickling) holds unchanged, and an entry stays readable when
``compress=`` is later removed (the decorator recognises the record on every hit).
Only results whose pickle reaches ``defaults["cache.compress_threshold"]`` are
compressed: for small ones the codec's cost buys nothing.

The codecs are optional extras: ``pip install 'checkpointing[zstd]'`` (zstandard) or
``'checkpointing[lz4]'`` (lz4).
"""

from __future__ import annotations

try:  # pickle.py's dumps and loads, without pickle.py (which imports re): issue 12
    import _pickle as pickle
except ImportError:  # an interpreter without the C pickle
    import pickle  # type: ignore[no-redef]

from ..errors import COMPRESSED_LOADED, ConfigurationError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

__all__ = ["CODECS", "Compressed", "compress_pickle", "validate_codec"]

CODECS = {"zstd": "zstandard", "lz4": "lz4"}
"""Codec name -> the package that provides it (the extra of the same name)."""

_ZSTD_LEVEL = 3  # zstandard's default: ~300 MB/s to compress, ~1 GB/s to decompress


def validate_codec(value: Any) -> str:
    """``value`` if it names a codec whose package is installed, else raise
    ConfigurationError naming the extra to install."""
    if value not in CODECS:
        raise ConfigurationError(
            f"compress={value!r} is not accepted; use 'zstd' or 'lz4' (or None for no compression)"
        )
    try:
        _module(value)
    except ImportError:
        raise ConfigurationError(
            f"compress={value!r} needs the {CODECS[value]} package: "
            f"pip install 'checkpointing[{value}]'"
        ) from None
    return value


def _module(codec: str) -> Any:
    if codec == "zstd":
        import zstandard

        return zstandard
    import lz4.frame

    return lz4.frame


class Compressed:
    """A result stored compressed: ``codec``, ``data`` (the compressed pickle) and
    ``size`` (the pickle's length before compression)."""

    __slots__ = ("codec", "data", "size")

    def __init__(self, codec: str, data: bytes, size: int) -> None:
        self.codec = codec
        self.data = data
        self.size = size

    def __reduce__(self) -> Any:
        return (Compressed, (self.codec, self.data, self.size))

    def __repr__(self) -> str:
        return f"<Compressed {self.codec} {len(self.data)} of {self.size} bytes>"

    def load(self) -> Any:
        """The result: decompressed and unpickled (raises ConfigurationError if the
        codec's package is missing, ValueError if the data is damaged)."""
        codec = validate_codec(self.codec)
        if codec == "zstd":
            data = (
                _module(codec).ZstdDecompressor().decompress(self.data, max_output_size=self.size)
            )
        else:
            data = _module(codec).decompress(self.data)
        if len(data) != self.size:
            raise ValueError(f"{codec} data decompressed to {len(data)} bytes, not {self.size}")
        return pickle.loads(data)


def compress_pickle(result: Any, codec: str, protocol: int, threshold: int) -> Any:
    """A :class:`Compressed` of ``result`` if its pickle (protocol ``protocol``, all
    buffers in band) is at least ``threshold`` bytes, else ``result`` itself."""
    data = pickle.dumps(result, protocol=protocol)
    if len(data) < threshold:
        return result
    if codec == "zstd":
        packed = _module(codec).ZstdCompressor(level=_ZSTD_LEVEL).compress(data)
    else:
        packed = _module(codec).compress(data)
    return Compressed(codec, packed, len(data))


for _callback in COMPRESSED_LOADED:  # the decorator's: see errors.COMPRESSED_LOADED
    _callback(Compressed)
