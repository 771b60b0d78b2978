"""The entry format: bytes in, bytes out (header, checksum, signature, layout).

Nothing here touches the disk: :func:`encode` makes the bytes of an entry and
:func:`decode` checks and reads them back, so the format is testable in memory and any
store (a local directory, a remote one) writes the same entries. The local store
(:mod:`checkpointing.store.files`) uses the pieces directly (:func:`_entry_parts` gives
the pieces of an entry as they lie in memory, which
:func:`~checkpointing.store.fileio._write_entry` streams to disk without a copy;
:func:`_read_small` and :func:`_read_entry` read from an open file, large buffers
straight into fresh memory of their own, checksummed slice by slice as they arrive: by
a helper thread beside the reads for entries of 16 MiB and more, as saves are).

A read checks a magic number, the format version and an xxh3-64 checksum, so a
truncated, corrupted, foreign or empty entry is rejected (``_Corrupt``, naming why),
never a wrong value; it checks that the entry belongs to the key asked for (a digest of
the key is in the checksummed header); with a secret, the HMAC-SHA256 signature is
checked before any byte is unpickled (``_Untrusted``). Large buffers (numpy arrays)
travel out of band with pickle protocol 5, each at a 64-byte-aligned offset.

Entry layout (all integers little-endian)::

    offset 0   b"CKPT"                     magic
    offset 4   u8   format version         FORMAT_VERSION
    offset 5   u32  header length H
    offset 9   u64  checksum               xxh3-64 of every byte from offset 17 to the end
    offset 17  32 bytes signature          HMAC-SHA256 of every byte from offset 49 to
                                           the end (zeros when unsigned)
    offset 49  H bytes of header:
               u64  pickle length P
               u32  number of out-of-band buffers N
               u32  flags                  1: the JSON holds "checks"; 2: signed
               16 bytes                    xxh3-128 of the key (UTF-8)
               N x u64  buffer lengths
               JSON (UTF-8): the caller's metadata plus "pickle_protocol", "size"
               (payload bytes), "pickle_size", "buffers" (lengths), "context_id"
    then, each starting at the next multiple of 64 (zero padding between):
               the pickle stream, then every out-of-band buffer in order.

The prefix comes first and has a fixed size so that one small read yields the header;
the offsets of the payload follow from its binary part alone, so a hit never parses
the JSON (which only ``read_metadata`` and the command line need).

File names (the layout of a store): a key made of lowercase letters, digits, ``.``,
``_`` and ``-`` (no leading dot, at most 200 characters, not a Windows device name) is
its own file stem; any other non-empty str is mapped by :func:`_file_stem`.
"""

from __future__ import annotations

import _struct as struct  # what struct.py re-exports, without loading it (issue 12)
import io
import os

import xxhash

try:  # pickle.py's dumps and loads, without pickle.py (which imports re): issue 12
    import _pickle as pickle
except ImportError:  # an interpreter without the C pickle
    import pickle  # type: ignore[no-redef]

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = ["FORMAT_VERSION", "MAGIC", "EncodedJSON", "decode", "decode_header", "encode"]

MAGIC = b"CKPT"
FORMAT_VERSION = 3
"""Version of the entry layout; a file of another version is a (warned) miss."""

_PREFIX = struct.Struct("<4sBIQ32s")  # magic, version, header length, checksum, signature
_LAYOUT = struct.Struct("<QII16s")  # pickle length, number of buffers, flags, key digest
_HAS_CHECKS = 1  # flag: the JSON holds "checks" to verify before serving a hit
_SIGNED = 2  # flag: the signature field holds an HMAC-SHA256
_NO_SIGNATURE = bytes(32)
_SIGNATURE_AT = 17  # the checksum covers every byte from here (signature included)
_LENGTH = struct.Struct("<Q")
_SMALL = struct.Struct("<4sBIQ32sQII16s")  # the prefix and the layout, read at once
_SMALL_MIN = _SMALL.size
_ALIGN = 64
_FIRST_READ = 1 << 16  # one read serves any entry up to this size
_SLICE = 1 << 22  # large buffers are hashed and moved in slices that stay in the CPU cache
_MMAP_AT = 1 << 20  # buffers read back at least this large get fresh pages (see _new_buffer)
_MAX_HEADER = 1 << 26  # a longer header is garbage, not metadata
_SUFFIX = ".ckpt"
# A key used as it is for its file name: 1 to 200 of these, not starting with a dot
# (what the regular expression [a-z0-9_-][a-z0-9._-]{0,199} matches; str methods, so
# that the hit path needs no re: issue 12, target 5).
_SAFE_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789._-"
_READABLE = frozenset(_SAFE_CHARS + "ABCDEFGHIJKLMNOPQRSTUVWXYZ")
_WINDOWS_RESERVED = frozenset(
    ["con", "prn", "aux", "nul"] + [f"com{i}" for i in range(10)] + [f"lpt{i}" for i in range(10)]
)


def __getattr__(name: str) -> Any:
    if name == "_SAFE_ID":  # the former pattern, for code that imported it
        import re

        globals()[name] = re.compile(r"[a-z0-9_-][a-z0-9._-]{0,199}")
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _Corrupt(Exception):
    """An entry file is not a readable entry; the message says why."""


class _Untrusted(Exception):
    """An entry file may have been written by someone else; the message says why."""


def encode(
    key: str,
    result: Any,
    metadata: Optional[Dict[str, Any]] = None,
    protocol: int = 5,
    secret: Optional[bytes] = None,
) -> bytes:
    """The bytes of the entry of ``result`` under ``key``, as a store writes them
    (signed with ``secret`` if given); pickling errors propagate as they are."""
    return b"".join(_serialize(key, result, dict(metadata or {}), protocol, secret))


def decode(
    data: bytes, key: Optional[str] = None, secret: Optional[bytes] = None
) -> Tuple[Any, Any]:
    """(result, checks) of the entry ``data``, after every check of a read: magic,
    version, checksum, the key (if ``key`` is given) and, with ``secret``, the
    signature. ``checks`` is the run-time checks saved with it (None if none).

    Raises:
        ValueError: the bytes are not an intact entry (of that key, signed with that
            secret); the message says what is wrong. Unpickling errors propagate.
    """
    key_digest = None if key is None else _key_digest(key)
    mac = None if secret is None else _new_mac(secret)
    try:
        header, pickled, buffers = _read_entry(
            io.BytesIO(data), payload=True, key_digest=key_digest, mac=mac
        )
        if mac is not None:
            _check_signature(header["flags"], header["signature"], mac.digest())
    except (_Corrupt, _Untrusted) as exc:
        raise ValueError(str(exc)) from None
    return pickle.loads(pickled, buffers=buffers), header.get("checks")


def decode_header(data: bytes) -> Dict[str, Any]:
    """The header of the entry whose first bytes are ``data``: the caller's metadata and
    the store's keys, plus ``key_digest`` (hex) and ``signed``. The checksum is not
    verified (the payload need not be there). Raises ValueError naming what is wrong."""
    try:
        header, _, _ = _read_entry(io.BytesIO(data), payload=False)
    except _Corrupt as exc:
        raise ValueError(str(exc)) from None
    return header


def _compact_json(value: Any) -> str:
    """``json.dumps(value, default=str, separators=(",", ":"))``, with one encoder per
    process (``dumps`` with arguments builds one per call: a microsecond a save)."""
    encode = _ENCODER
    if not encode:
        import json  # not at import: ~1 ms, for misses and checks only

        encode.append(json.JSONEncoder(default=str, separators=(",", ":")).encode)
    return encode[0](value)


_ENCODER: List[Any] = []


def _json_str(text: str) -> str:
    """``text`` as a JSON string: as it is between quotes if nothing in it needs
    escaping (keys, most names), else by the encoder."""
    if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
        return f'"{text}"'
    return _compact_json(text)


class EncodedJSON(dict):  # type: ignore[type-arg]
    """A dict that carries its compact JSON (``json``): a miss writes the fingerprint
    in the entry's header and in the function's history, and encodes it once. Only
    for values not changed after: the text is not kept in step with the dict."""

    __slots__ = ("json",)

    def __init__(self, value: Dict[str, Any], text: Optional[str] = None) -> None:
        super().__init__(value)
        self.json = _compact_json(value) if text is None else text

    def history_entry(self, key: str, created: float) -> "EncodedJSON":
        """``{"key": key, "created": created, **self}`` (a line of a function's
        history), encoded from this one's text."""
        text = f'{{"key":{_json_str(key)},"created":{created!r}'
        text += "}" if self.json == "{}" else "," + self.json[1:]
        entry = EncodedJSON.__new__(EncodedJSON)  # filled in place: one copy, not two
        dict.__init__(entry, key=key, created=created)
        entry.update(self)
        entry.json = text
        return entry


def _key_digest(key: str) -> bytes:
    return xxhash.xxh3_128_digest(key.encode("utf-8", "surrogatepass"))


_HMAC: Any = None  # the hmac module, imported at the first signed entry (import time)


def _hmac() -> Any:
    global _HMAC
    if _HMAC is None:
        import hashlib  # noqa: F401 (hmac's digestmod)
        import hmac

        _HMAC = hmac
    return _HMAC


def _new_mac(secret: bytes) -> Any:
    return _hmac().new(secret, None, "sha256")


def _check_signature(flags: int, signature: bytes, digest: bytes) -> None:
    if not flags & _SIGNED:
        raise _Untrusted("the entry is not signed, and a secret is set")
    if not _hmac().compare_digest(digest, signature):
        raise _Untrusted(
            "its signature does not match: tampered with, or signed with another secret"
        )


# -- file names ----------------------------------------------------------------------
def _file_stem(key: str) -> str:
    """The file name (without suffix) of a key; see :class:`PickleFileCache`."""
    if not isinstance(key, str) or not key:
        raise ValueError(
            f"key {key!r} is not a non-empty str; an "
            f"identifier's identify() must return a non-empty str"
        )
    if (
        len(key) <= 200
        and key[0] != "."
        and not key.strip(_SAFE_CHARS)
        and key.split(".", 1)[0] not in _WINDOWS_RESERVED
    ):
        return key
    readable = "".join(c if c in _READABLE else "_" for c in key[:80]).lstrip(".") or "id"
    digest = xxhash.xxh3_64_hexdigest(key.encode("utf-8", "surrogatepass"))
    return f"{readable}-{digest}"


# -- the entry format ----------------------------------------------------------------------
def _aligned(position: int) -> int:
    return position + (-position) % _ALIGN


def _entry_parts(
    key: str, result: Any, metadata: Dict[str, Any], protocol: int, signed: bool
) -> Tuple[int, List[Any], bytes, List[memoryview]]:
    """(header length, parts, pickle, buffers): the bytes of an entry after its prefix,
    as the pieces they are in memory (the header, zero padding, the pickle stream, each
    out-of-band buffer, never copied); pickling errors propagate as they are."""
    raws: List[memoryview] = []
    if protocol >= 5:
        buffers: List[pickle.PickleBuffer] = []
        data = pickle.dumps(result, protocol=protocol, buffer_callback=buffers.append)
        raws = [buffer.raw() for buffer in buffers]
    else:
        data = pickle.dumps(result, protocol=protocol)
    sizes = [raw.nbytes for raw in raws]
    header = {
        **metadata,
        "context_id": key,
        "pickle_protocol": protocol,
        "size": len(data) + sum(sizes),
        "pickle_size": len(data),
        "buffers": sizes,
    }
    flags = (_HAS_CHECKS if metadata.get("checks") else 0) | (_SIGNED if signed else 0)
    fingerprint = header.get("fingerprint")
    if fingerprint.__class__ is EncodedJSON:  # encoded already: spliced in, not again
        del header["fingerprint"]
        text = _compact_json(header)[:-1] + ',"fingerprint":' + fingerprint.json + "}"
    else:
        text = _compact_json(header)
    header_bytes = _LAYOUT.pack(len(data), len(raws), flags, _key_digest(key))
    if raws:
        header_bytes += b"".join(map(_LENGTH.pack, sizes))
    header_bytes += text.encode()
    position = _PREFIX.size + len(header_bytes)
    padding = -position % _ALIGN
    parts: List[Any] = [header_bytes, bytes(padding), data] if padding else [header_bytes, data]
    position += padding + len(data)
    for raw in raws:
        padding = -position % _ALIGN
        if padding:
            parts.append(bytes(padding))
        parts.append(raw)
        position += padding + raw.nbytes
    return len(header_bytes), parts, data, raws


def _serialize(
    key: str,
    result: Any,
    metadata: Dict[str, Any],
    protocol: int,
    secret: Optional[bytes] = None,
) -> List[Any]:
    """The chunks of an entry file, in order (the prefix first); pickling errors
    propagate as they are. Saves stream them instead (:func:`_write_entry`)."""
    header_length, parts, _, _ = _entry_parts(key, result, metadata, protocol, bool(secret))
    signature = _NO_SIGNATURE
    if secret:
        mac = _new_mac(secret)
        for part in parts:
            mac.update(part)
        signature = mac.digest()
    checksum = xxhash.xxh3_64(signature)  # so that no byte after the checksum goes unchecked
    for part in parts:
        checksum.update(part)
    prefix = _PREFIX.pack(MAGIC, FORMAT_VERSION, header_length, checksum.intdigest(), signature)
    return [prefix, *parts]


def _read_small(
    first: bytes, key_digest: Optional[bytes]
) -> Optional[Tuple[memoryview, Any, int, bytes]]:
    """(pickle, checks, flags, signature) of an intact entry of the key with
    ``key_digest``, without out-of-band buffers, that ``first`` (the first read of its
    file) holds whole; None to take the general path, which also reports what is wrong
    with a broken or misplaced file."""
    if len(first) >= _FIRST_READ or len(first) < _SMALL_MIN:
        return None
    magic, version, header_length, checksum, signature, pickle_size, count, flags, digest = (
        _SMALL.unpack_from(first)
    )
    if magic != MAGIC or version != FORMAT_VERSION or count or digest != key_digest:
        return None
    header_end = _PREFIX.size + header_length
    start = _aligned(header_end)
    if start + pickle_size != len(first):
        return None
    view = memoryview(first)
    if xxhash.xxh3_64_intdigest(view[_SIGNATURE_AT:]) != checksum:
        return None
    checks = None
    if flags & _HAS_CHECKS:
        import json  # here: the hit path of most entries needs no JSON

        try:
            checks = json.loads(bytes(view[_SMALL_MIN:header_end]))["checks"]
        except (ValueError, KeyError, TypeError):
            return None
    return view[start:], checks, flags, signature


def _read_entry(
    handle: Any,
    payload: bool,
    first: Optional[bytes] = None,
    key_digest: Optional[bytes] = None,
    mac: Any = None,
) -> Tuple[Dict[str, Any], Any, List[bytearray]]:
    """Read an entry from an unbuffered binary file: (header, pickle, buffers).

    With ``payload`` False only the header is read and checked. With ``key_digest``,
    an entry of another key is rejected; ``mac`` is fed the bytes the signature covers.
    Raises ``_Corrupt``.
    """
    import json  # not at import: ~1 ms, for misses and checks only

    if first is None:
        first = handle.read(_FIRST_READ)
    if not first:
        raise _Corrupt("the file is empty")
    if len(first) < _PREFIX.size:
        raise _Corrupt(f"truncated to {len(first)} bytes")
    magic, version, header_length, checksum, signature = _PREFIX.unpack_from(first)
    if magic != MAGIC:
        raise _Corrupt("not a checkpointing entry (wrong magic number)")
    if version != FORMAT_VERSION:
        raise _Corrupt(
            f"entry format {version}, this version of checkpointing reads format {FORMAT_VERSION}"
        )
    header_end = _PREFIX.size + header_length
    if header_end > len(first):
        if len(first) < _FIRST_READ or header_length > _MAX_HEADER:
            raise _Corrupt("truncated header")
        first += _read_exactly(handle, header_end - len(first))
    layout_end = _PREFIX.size + _LAYOUT.size
    if header_end < layout_end:
        raise _Corrupt("unreadable header: too short")
    pickle_size, count, flags, digest = _LAYOUT.unpack_from(first, _PREFIX.size)
    if key_digest is not None and digest != key_digest:
        raise _Corrupt(
            "misplaced: the file holds the entry of another key (copied or "
            "moved from another key's file)"
        )
    json_start = layout_end + count * _LENGTH.size
    if json_start > header_end:
        raise _Corrupt("unreadable header: sizes missing")
    buffers = [_LENGTH.unpack_from(first, layout_end + i * _LENGTH.size)[0] for i in range(count)]
    if payload:
        # The hit path: the JSON metadata is covered by the checksum, not parsed,
        # unless it holds checks to make before serving the entry.
        header: Dict[str, Any] = {
            "pickle_size": pickle_size,
            "buffers": buffers,
            "flags": flags,
            "signature": signature,
        }
        if flags & _HAS_CHECKS:
            try:
                header["checks"] = json.loads(first[json_start:header_end].decode())["checks"]
            except (ValueError, KeyError, TypeError) as exc:
                raise _Corrupt(f"unreadable checks in the header: {exc}") from None
    else:
        try:
            header = json.loads(first[json_start:header_end].decode("utf-8"))
        except ValueError as exc:  # includes UnicodeDecodeError
            raise _Corrupt(f"unreadable header: {exc}") from None
        if (
            not isinstance(header, dict)
            or header.get("pickle_size") != pickle_size
            or header.get("buffers") != buffers
        ):
            raise _Corrupt("unreadable header: its binary and JSON parts disagree")
        header["key_digest"] = digest.hex()
        header["signed"] = bool(flags & _SIGNED)
        return header, None, []

    segments = []  # (start, length) of the pickle and each buffer
    position = header_end
    for length in [header["pickle_size"], *header["buffers"]]:
        position = _aligned(position)
        segments.append((position, length))
        position += length
    end = position
    view = memoryview(first)
    digest_ = xxhash.xxh3_64(signature)
    update = digest_.update if mac is None else _both(digest_, mac)
    if end <= len(first):  # the common case: the first read got all of it
        if end < len(first) or (len(first) >= _FIRST_READ and handle.read(1)):
            raise _Corrupt("unexpected bytes after the end of the entry")
        update(view[_PREFIX.size : end])
        if digest_.intdigest() != checksum:
            raise _Corrupt("checksum mismatch (corrupted)")
        (start, length), *rest = segments
        return header, view[start : start + length], [bytearray(view[s : s + n]) for s, n in rest]

    size = _size_of(handle)
    if size != end:
        raise _Corrupt(
            f"the file has {size} bytes, its header describes {end}"
            f"{' (truncated)' if size < end else ''}"
        )
    behind = None
    if mac is None and end >= _HASH_BEHIND_AT:  # hashed beside the reads, as saves are
        update = behind = _HashBehind(update)
    try:
        update(view[_PREFIX.size : header_end])
        position = header_end
        parts: List[Any] = []
        for start, length in segments:
            if start > position:  # the padding: checksummed like the rest
                padding = bytearray(start - position)
                _fill(handle, view, position, memoryview(padding), update)
            target = _new_buffer(length)  # one writable buffer each, read in place
            _fill(handle, view, start, memoryview(target), update)
            parts.append(target)
            position = start + length
    finally:
        if behind is not None:
            behind.finish()
    if digest_.intdigest() != checksum:
        raise _Corrupt("checksum mismatch (corrupted)")
    return header, parts[0], parts[1:]


_HASH_BEHIND_AT = 1 << 24  # entries this large are hashed by a helper thread (16 MiB)


class _HashBehind:
    """``update`` applied to the pieces given, in order, by a helper thread, so that
    hashing a slice overlaps with writing or reading the next (xxh3, ``write`` and
    ``readinto`` release the GIL): on two free cores a save runs at the speed of the
    write alone, a load at the speed of the read. A piece must not change until
    :meth:`finish` returns."""

    def __init__(self, update: Callable[[Any], None]) -> None:
        import queue
        import threading

        self._queue: Any = queue.SimpleQueue()
        self._error: Optional[BaseException] = None
        self._thread = threading.Thread(target=self._run, args=(update,), daemon=True)
        self._thread.start()

    def _run(self, update: Callable[[Any], None]) -> None:
        while True:
            piece = self._queue.get()
            if piece is None:
                return
            if self._error is None:
                try:
                    update(piece)
                except BaseException as exc:  # handed to the caller by finish()
                    self._error = exc

    def __call__(self, piece: Any) -> None:
        self._queue.put(piece)

    def finish(self) -> None:
        """Wait until every piece is hashed; raise what hashing raised."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


def _new_buffer(length: int) -> Any:
    """A writable buffer of ``length`` bytes for a payload read from a file.

    A large one is fresh anonymous memory (private, transparent huge pages asked
    for), whose pages the read itself fills: ``bytearray(n)`` would zero every byte
    first (a pass over the memory), and 4 KiB pages cost a fault each (numpy's own
    large allocations ask for huge pages too).
    """
    if length >= _MMAP_AT and os.name == "posix":
        import mmap

        anonymous = getattr(mmap, "MAP_ANONYMOUS", getattr(mmap, "MAP_ANON", None))
        if anonymous is not None:
            try:
                memory = mmap.mmap(-1, length, flags=mmap.MAP_PRIVATE | anonymous)
            except (OSError, ValueError):
                return bytearray(length)
            huge = getattr(mmap, "MADV_HUGEPAGE", None)
            if huge is not None and hasattr(memory, "madvise"):
                try:
                    memory.madvise(huge)
                except OSError:
                    pass
            return memory
    return bytearray(length)


def _both(first: Any, second: Any) -> Callable[[Any], None]:
    def update(data: Any) -> None:
        first.update(data)
        second.update(data)

    return update


def _fill(
    handle: Any,
    first: memoryview,
    position: int,
    target: memoryview,
    update: Optional[Callable[[Any], None]] = None,
) -> None:
    """Fill ``target`` with the file's bytes from ``position`` (taking those already in
    ``first``, reading the rest; the file is positioned at ``len(first)``), feeding
    them to ``update`` (the checksum) slice by slice as they arrive, while they are
    still in the CPU cache."""
    done = 0
    if position < len(first):
        done = min(len(first) - position, len(target))
        target[:done] = first[position : position + done]
        if update is not None:
            update(target[:done])
    while done < len(target):
        got = handle.readinto(target[done : done + _SLICE])
        if not got:
            raise _Corrupt("truncated while reading")
        if update is not None:
            update(target[done : done + got])
        done += got


def _read_exactly(handle: Any, count: int) -> bytes:
    target = bytearray(count)
    _fill(handle, memoryview(b""), 0, memoryview(target))
    return bytes(target)


def _size_of(handle: Any) -> int:
    """The size of the file behind ``handle`` (an in-memory one in tests)."""
    try:
        return os.fstat(handle.fileno()).st_size
    except io.UnsupportedOperation:
        return len(handle.getbuffer())
