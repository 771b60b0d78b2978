"""The cache on any fsspec file system: object stores (S3, GCS, Azure), ``memory://``.

:class:`RemoteStore` keeps entries in the format of :class:`PickleFileCache` (same
checksum, key digest and HMAC signature) under a URL, and serves hits through a local
read-through tier, itself a :class:`PickleFileCache` on this machine:

* **Layout**: ``<url>/entries/<2 hex>/<name>.ckpt`` (a lookup is one HEAD, never a
  listing), ``<url>/functions/<h>.json`` (the history that explains misses, as in the
  local store), ``<url>/leases/<name>`` (compute-once leases, see
  :mod:`checkpointing.store.locks`). Analysis plans stay on this machine (they describe the
  local code).
* **Atomic publish**: an entry is written whole into the local tier first (so its
  checksum and signature are known), then uploaded under its final name in one PUT (a
  multipart upload for large ones), which object stores make visible only when
  complete: a reader never sees a partial entry, a writer killed mid-upload leaves
  nothing visible, and of concurrent writers of one key the last complete upload stays,
  a valid entry either way. On file systems that are not object stores the upload goes
  to a temporary name and is moved over the final one.
* **Local tier**: a remote hit is downloaded once into the tier (default
  ``~/.cache/checkpointing/tiers/<digest of the URL>``, see
  ``defaults["cache.local_tier"]``) and its ETag remembered beside it. The first hit of
  a key in a process compares that ETag with the remote object's (one HEAD); later hits
  of the key in the process are served from the tier with no request at all.
* **Trust**: anyone who can write the bucket could plant a pickle, so entries are
  signed with a team secret (``CHECKPOINTING_SECRET`` or ``defaults["cache.secret"]``)
  and checked before unpickling; a remote store without a secret is refused (except
  ``memory://``, which lives in this process).
* **Failures**: a missing bucket, bad credentials or an unreachable endpoint raise an
  ``OSError`` naming the URL, the cause and the fix; the decorator then runs the function
  without the cache under ``on_error="warn"``.

fsspec is imported only when a store with a URL is made (``pip install
checkpointing[s3]`` brings s3fs). Storage options come from fsspec's own configuration
(``~/.config/fsspec/*.json`` or ``FSSPEC_S3_ENDPOINT_URL``-style environment
variables), or from ``storage_options=``.

Why one module of about 720 lines: publishing, the local tier and the leases all
follow one object store's rules (ETags, conditional puts, multipart uploads), read
together when a backend is added.
"""

from __future__ import annotations

import os
import pickle
import warnings
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

import xxhash

from ..config import defaults, validate_pickle_protocol, validate_secret
from ..errors import (
    CheckpointNotExist,
    ConfigurationError,
    CorruptEntryWarning,
    UntrustedEntryWarning,
)
from .base import CacheBase
from .entryinfo import EntryInfo
from .fileio import _atomic_write, _make_private_folder, secret_in_effect
from .files import PickleFileCache
from .format import (
    _PREFIX,
    _SUFFIX,
    _Corrupt,
    _file_stem,
    _key_digest,
    _read_entry,
    _serialize,
    _Untrusted,
)
from .history import HISTORY_LENGTH
from .locks import RANGE_LOCKS, REFUSED, FileKeyLock, KeyLock, LeaseBackend, LeaseLock, RangeKeyLock

__all__ = ["RemoteStore", "is_url", "key_lock", "open_store"]

# Protocols whose single PUT (or completed multipart upload) is atomic and visible whole.
_OBJECT_STORES = frozenset(
    ["s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory", "oss", "r2"]
)
_S3 = frozenset(["s3", "s3a"])
_SINGLE_PUT = 16 << 20  # smaller entries go up in one PutObject, which returns the ETag


def is_url(directory: Any) -> bool:
    """Does ``directory`` name an fsspec URL (``s3://bucket/prefix``) rather than a path?"""
    return isinstance(directory, str) and "://" in directory


def open_store(
    directory: Union[str, "os.PathLike[str]", None] = None,
    pickle_protocol: Optional[int] = None,
) -> CacheBase:
    """The store for ``directory`` (default ``defaults["cache.filesystem.directory"]``):
    a :class:`RemoteStore` for a URL, a :class:`PickleFileCache` for a path or a
    ``file://`` URL. A path never imports fsspec."""
    if directory is None:
        directory = defaults["cache.filesystem.directory"]
    if is_url(directory):
        if directory.startswith("file://"):
            return PickleFileCache(directory[len("file://") :], pickle_protocol)
        return RemoteStore(directory, pickle_protocol)
    return PickleFileCache(directory, pickle_protocol)


_LOCK_PATHS: Dict[str, Tuple[str, str]] = {}  # store folder -> (locks folder, range lock file)


def key_lock(cache: Any, key: str) -> Optional[KeyLock]:
    """The compute-once lock of ``key`` in ``cache``, or None if the cache has
    none (a custom :class:`CacheBase`, the in-memory cache)."""
    if isinstance(cache, RemoteStore):
        return cache.lock(key)
    if isinstance(cache, PickleFileCache):
        paths = _LOCK_PATHS.get(cache.directory)
        if paths is None:
            locks = os.path.join(cache.directory, "locks")
            paths = _LOCK_PATHS[cache.directory] = (locks, os.path.join(locks, "keys"))
        locks = paths[0]
        if RANGE_LOCKS and locks not in REFUSED:
            offset = xxhash.xxh3_64_intdigest(key.encode("utf-8", "surrogatepass")) >> 2
            return RangeKeyLock(
                paths[1],
                offset,
                cache.path_of(key),
                cache.file_mode,
                cache.folder_mode,
                keep_open=True,
            )
        name = _file_stem(key)
        return FileKeyLock(
            os.path.join(locks, name + ".lock"),
            cache.path_of(key),
            cache.file_mode,
            cache.folder_mode,
        )
    return None


def _default_tier(url: str) -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = xxhash.xxh3_64_hexdigest(url.encode("utf-8", "surrogatepass"))
    return os.path.join(base, "checkpointing", "tiers", digest)


class RemoteStore(CacheBase[str, Any], LeaseBackend):
    """Entries on an fsspec file system, served through a local tier (see the module).

    Args:
        url: ``protocol://location/prefix``, e.g. ``"s3://team-bucket/cache"``.
        pickle_protocol: as for :class:`PickleFileCache`.
        secret: the team secret that signs entries; ``None`` reads
            ``defaults["cache.secret"]``, then ``CHECKPOINTING_SECRET``. Required,
            except for ``memory://``.
        local_tier: a folder for the local copies; True: the default one under
            ``~/.cache/checkpointing/tiers``; False: none (every hit downloads, into a
            private temporary folder); None reads ``defaults["cache.local_tier"]``.
        storage_options: passed to the fsspec file system (credentials, endpoint);
            None uses fsspec's configuration.

    Raises:
        ConfigurationError: no secret, fsspec (or the protocol's package) missing, or
            an invalid option.
    """

    str_keys_only = True
    stores_checks = True

    def __init__(
        self,
        url: str,
        pickle_protocol: Optional[int] = None,
        *,
        secret: Union[str, bytes, None] = None,
        local_tier: Union[bool, str, "os.PathLike[str]", None] = None,
        storage_options: Optional[Dict[str, Any]] = None,
    ) -> None:
        if not is_url(url):
            raise ConfigurationError(
                f"RemoteStore({url!r}): not a URL; pass e.g. 's3://bucket/prefix'"
            )
        if pickle_protocol is None:
            pickle_protocol = defaults["cache.pickle_protocol"]
        secret = secret_in_effect(secret)
        if local_tier is None:
            local_tier = defaults["cache.local_tier"]
        self.url = url.rstrip("/")
        self.protocol = self.url.split("://", 1)[0].lower()
        self.pickle_protocol = validate_pickle_protocol(pickle_protocol)
        self._secret = validate_secret(secret)
        if self._secret is None and self.protocol != "memory":
            raise ConfigurationError(
                f"the cache at {self.url} is shared: anyone who can write there could "
                f"plant a pickle that runs code when loaded, so its entries must be "
                f"signed; set a team secret, e.g. export CHECKPOINTING_SECRET=... or "
                f"defaults['cache.secret'] = os.environ['TEAM_CACHE_SECRET'] "
                f"(see docs/shared.md)"
            )
        self.storage_options = dict(storage_options or {})
        self.fs, self.root = _filesystem(self.url, self.storage_options)
        self._memo = local_tier is not False
        if local_tier is True:
            tier = _default_tier(self.url)
        elif local_tier is False:
            import tempfile

            tier = tempfile.mkdtemp(prefix="checkpointing-")
        else:
            tier = os.fspath(local_tier)
        self._tier_setting = local_tier
        self.tier = PickleFileCache(tier, self.pickle_protocol, secret=self._secret)
        self.directory: str = self.tier.directory
        """The local folder of this store (the tier): analysis plans, locks."""
        self._checked: Dict[str, str] = {}  # key -> ETag checked in this process

    def __repr__(self) -> str:
        return f"RemoteStore({self.url!r}, tier={self.directory!r})"

    def __getstate__(self) -> Dict[str, Any]:
        """Pickled (to dask workers) by its settings; the worker opens its own."""
        tier = self._tier_setting
        return {
            "url": self.url,
            "pickle_protocol": self.pickle_protocol,
            "secret": self._secret,
            "local_tier": tier if tier is True or tier is False else self.directory,
            "storage_options": self.storage_options,
        }

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["url"],
            state["pickle_protocol"],
            secret=state["secret"],
            local_tier=state["local_tier"],
            storage_options=state["storage_options"],
        )

    @property
    def signed(self) -> bool:
        return self._secret is not None

    # -- paths ------------------------------------------------------------------------
    def path_of(self, key: str) -> str:
        """The object that holds (or would hold) the entry of ``key``."""
        name = _file_stem(key)
        shard = xxhash.xxh3_64_hexdigest(name.encode())[:2]
        return f"{self.root}/entries/{shard}/{name}{_SUFFIX}"

    def url_of(self, path: str) -> str:
        """``path`` (of this file system) as a URL, for messages."""
        return f"{self.protocol}://{path.lstrip('/')}" if self.protocol != "memory" else path

    def _sidecar(self, key: str) -> str:
        return os.path.join(self.directory, "remote", _file_stem(key) + ".etag")

    # -- errors -------------------------------------------------------------------------
    def _unavailable(self, exc: BaseException, doing: str) -> OSError:
        """An OSError naming the store, what failed, and what to do."""
        text = f"{type(exc).__name__}: {exc}"
        lowered = text.lower()
        bucket = self.root.strip("/").split("/", 1)[0]
        if "bucket" in lowered and ("not exist" in lowered or "nosuchbucket" in lowered):
            fix = (
                f"the bucket {bucket!r} does not exist; create it (e.g. `aws s3 mb "
                f"{self.protocol}://{bucket}`) or fix the cache directory"
            )
        elif isinstance(exc, PermissionError) or any(
            word in lowered
            for word in ("accessdenied", "access denied", "invalidaccesskeyid", "signature", "403")
        ):
            fix = (
                "access was denied: check the credentials (AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or storage options) and the "
                "bucket's policy"
            )
        else:
            fix = "check the URL, the endpoint and the network"
        error = OSError(f"{doing} {self.url} failed ({text}): {fix}")
        error.__cause__ = exc
        return error

    # -- conditional writes (LeaseBackend) ------------------------------------------------
    def create(self, path: str, data: bytes) -> Optional[str]:
        try:
            if self.protocol in _S3:
                bucket, key = self._split(path)
                return self.fs.call_s3(
                    "put_object", Bucket=bucket, Key=key, Body=data, IfNoneMatch="*"
                )["ETag"]
            self.fs.pipe_file(path, data, mode="create")
        except FileExistsError:
            return None
        except OSError as exc:
            if _precondition_failed(exc):
                return None
            raise
        return self.etag(path)

    def replace(self, path: str, data: bytes, etag: str) -> Optional[str]:
        if self.protocol in _S3:
            bucket, key = self._split(path)
            try:
                return self.fs.call_s3(
                    "put_object", Bucket=bucket, Key=key, Body=data, IfMatch=etag
                )["ETag"]
            except OSError as exc:
                if _precondition_failed(exc) or isinstance(exc, FileNotFoundError):
                    return None
                raise
        # Other file systems: compare, then write (not atomic; two takers may both win,
        # which costs a duplicate computation, never a wrong entry).
        if self.etag(path) != etag:
            return None
        self.fs.pipe_file(path, data)
        return self.etag(path)

    def etag(self, path: str) -> Optional[str]:
        try:
            info = self.fs.info(path, refresh=True) if self.protocol in _S3 else self.fs.info(path)
        except FileNotFoundError:
            return None
        for name in ("ETag", "etag", "generation", "version_id", "VersionId"):
            if info.get(name):
                return str(info[name])
        return self.fs.ukey(path)

    def remove(self, path: str) -> None:
        try:
            self.fs.rm_file(path)
        except FileNotFoundError:
            pass

    def _split(self, path: str) -> Tuple[str, str]:
        bucket, _, key = path.lstrip("/").partition("/")
        return bucket, key

    def lock(self, key: str) -> LeaseLock:
        """The compute-once lease of ``key``."""
        path = self.path_of(key)
        lease = f"{self.root}/leases/{_file_stem(key)}"
        return LeaseLock(self, lease, lambda: self.etag(path), defaults["cache.lease_seconds"])

    # -- writing ------------------------------------------------------------------------
    def save(self, context_id: str, result: Any) -> None:
        self.save_entry(context_id, result, {})

    def save_entry(self, key: str, result: Any, metadata: Dict[str, Any]) -> None:
        """Write the entry into the local tier, then publish it (see the module).

        Raises:
            Exception: whatever pickling raises, before anything is written.
            OSError: the upload failed (naming the cause); nothing partial is visible.
        """
        chunks = _serialize(key, result, metadata, self.pickle_protocol, self._secret)
        tier = self.tier
        local = tier.path_of(key)
        tier._prepare()
        _atomic_write(tier.entries_directory, local, chunks, tier.file_mode)
        remote = self.path_of(key)
        size = sum(memoryview(chunk).nbytes for chunk in chunks)
        try:
            if self.protocol in _S3 and size < _SINGLE_PUT:
                bucket, name = self._split(remote)
                body = b"".join(chunks)
                etag = self.fs.call_s3("put_object", Bucket=bucket, Key=name, Body=body)["ETag"]
                self._remember(key, etag, chunks[0])
                return
            if self.protocol in _OBJECT_STORES:
                self.fs.put_file(local, remote)
            else:
                temporary = f"{remote}.tmp-{os.urandom(8).hex()}"
                self.fs.put_file(local, temporary)
                self.fs.mv(temporary, remote)
            etag = self.etag(remote)
        except Exception as exc:
            self._forget(key)
            raise self._unavailable(exc, "storing an entry in") from exc
        finally:
            if not self._memo:  # no tier: the local copy was only the upload's source
                self._forget(key)
        if etag is not None:
            self._remember(key, etag, chunks[0])

    def _remember(self, key: str, etag: str, prefix: Any) -> None:
        """Note that the tier's copy of ``key`` (whose first bytes are
        ``prefix``) is the remote object with ``etag``."""
        import json  # not at import (issue 12: a light import)

        if not self._memo:
            return
        self._checked[key] = etag
        checksum = bytes(memoryview(prefix)[: _PREFIX.size]).hex()
        path = self._sidecar(key)
        try:
            _make_private_folder(os.path.dirname(path), self.tier.folder_mode)
            _atomic_write(
                os.path.dirname(path),
                path,
                [json.dumps({"etag": etag, "prefix": checksum}).encode()],
                self.tier.file_mode,
            )
        except OSError:
            pass  # the next process downloads it again

    def _forget(self, key: str) -> None:
        self._checked.pop(key, None)
        for path in (self._sidecar(key), self.tier.path_of(key)):
            try:
                os.remove(path)
            except OSError:
                pass

    def _tier_etag(self, key: str) -> Optional[str]:
        """The ETag of the remote object the tier's copy of ``key`` was made
        from, or None if the tier has no copy (or one that its note does not describe)."""
        import json  # not at import (issue 12: a light import)

        try:
            with open(self._sidecar(key), "rb") as handle:
                known = json.loads(handle.read())
            with open(self.tier.path_of(key), "rb") as handle:
                prefix = handle.read(_PREFIX.size)
        except (OSError, ValueError):
            return None
        if isinstance(known, dict) and known.get("prefix") == prefix.hex():
            etag = known.get("etag")
            return etag if isinstance(etag, str) else None
        return None

    # -- reading ------------------------------------------------------------------------
    def retrieve(self, context_id: str) -> Any:
        return self.read_entry(context_id)[0]

    def exists(self, key: str) -> bool:
        """Is there a remote entry under ``key``? (One HEAD; nothing downloaded.)"""
        try:
            return self.etag(self.path_of(key)) is not None
        except Exception as exc:
            raise self._unavailable(exc, "reading") from exc

    def entries(self) -> Iterator[str]:
        """The keys of every remote entry (a listing, then a ranged read of each)."""
        for entry in self.iter_entries():
            yield entry.key

    def read_entry(self, key: str) -> Tuple[Any, Any]:
        """(result, checks) of ``key``; see the module for the tier.

        Raises:
            CheckpointNotExist: no entry, or a corrupt or untrusted one (warned).
            OSError: the store cannot be reached (naming the cause and the fix).
        """
        if key in self._checked:
            try:
                return self.tier.read_entry(key)
            except CheckpointNotExist:
                del self._checked[key]
        remote = self.path_of(key)
        known = self._tier_etag(key) if self._memo else None
        try:
            etag, prefix = self._fetch(key, remote, known)
        except CheckpointNotExist:
            self._forget(key)
            raise
        if prefix is None:  # the tier's copy is the remote entry
            try:
                found = self.tier.read_entry(key)
            except CheckpointNotExist:
                self._forget(key)
                etag, prefix = self._fetch(key, remote, None)
            else:
                self._checked[key] = etag
                return found
        try:
            found = self._read_tier(key)
        except (_Corrupt, _Untrusted) as exc:
            self._forget(key)
            unusable = "unreadable" if isinstance(exc, _Corrupt) else "not trusted"
            warnings.warn(
                f"checkpointing entry {self.url_of(remote)} is {unusable} ({exc}); it was "
                f"not loaded and is treated as a miss: the result will be recomputed and "
                f"the entry replaced",
                CorruptEntryWarning if isinstance(exc, _Corrupt) else UntrustedEntryWarning,
                stacklevel=4,
            )
            raise CheckpointNotExist(key) from None
        if self._memo:
            self._remember(key, etag, prefix)
        else:
            self._forget(key)
        return found

    def _read_tier(self, key: str) -> Tuple[Any, Any]:
        """(result, checks) of the tier's fresh copy; raises _Corrupt or _Untrusted."""
        data, buffers, checks, _ = self.tier._load(self.tier.path_of(key), _key_digest(key))
        try:
            return pickle.loads(data, buffers=buffers), checks
        except Exception as exc:
            raise _Corrupt(f"unpickling failed: {type(exc).__name__}: {exc}") from None

    def _fetch(self, key: str, remote: str, known: Optional[str]) -> Tuple[str, Optional[bytes]]:
        """(ETag, first bytes) of the remote entry, copied into the tier (atomically);
        the first bytes are None if its ETag is ``known`` (the tier's copy is it).

        On S3 this is one request, a GET with ``If-None-Match: <known>``; elsewhere a
        HEAD, then a download if the ETag differs. Raises CheckpointNotExist, or an
        OSError naming the cause."""
        tier = self.tier
        tier._prepare()
        temporary = os.path.join(tier.entries_directory, f".tmp-{os.urandom(8).hex()}{_SUFFIX}")
        try:
            try:
                if self.protocol in _S3:
                    etag = self._s3_get(remote, temporary, known)
                else:
                    etag = self.etag(remote)
                    if etag is None:
                        raise FileNotFoundError(remote)
                    if etag != known:
                        self.fs.get_file(remote, temporary)
            except FileNotFoundError:
                raise CheckpointNotExist(key) from None
            except Exception as exc:
                raise self._unavailable(exc, "reading") from exc
            if etag == known:
                return etag, None
            os.chmod(temporary, tier.file_mode)
            with open(temporary, "rb") as handle:
                prefix = handle.read(_PREFIX.size)
            os.replace(temporary, tier.path_of(key))
        except BaseException:
            try:
                os.remove(temporary)
            except OSError:
                pass
            raise
        return etag, prefix

    def _s3_get(self, remote: str, target: str, known: Optional[str]) -> str:
        """GET ``remote`` into the file ``target`` unless its ETag is ``known``; its ETag."""
        from fsspec.asyn import sync

        bucket, key = self._split(remote)
        fs = self.fs

        async def get() -> str:
            extra = {"IfNoneMatch": known} if known else {}
            try:
                response = await fs._call_s3("get_object", Bucket=bucket, Key=key, **extra)
            except OSError as exc:
                if known and ("304" in str(exc) or "Not Modified" in str(exc)):
                    return known
                raise
            body = response["Body"]
            try:
                with open(target, "wb") as out:
                    while True:
                        chunk = await body.read(1 << 20)
                        if not chunk:
                            break
                        out.write(chunk)
            finally:
                body.close()
            return response["ETag"]

        return sync(fs.loop, get)

    def read_metadata(self, key: str) -> Dict[str, Any]:
        """The header of the remote entry (one ranged read; the checksum is not
        verified). Raises CheckpointNotExist."""
        try:
            return self._header(self.path_of(key))
        except (FileNotFoundError, _Corrupt):
            raise CheckpointNotExist(key) from None
        except OSError as exc:
            raise self._unavailable(exc, "reading") from exc

    def _header(self, path: str) -> Dict[str, Any]:
        with self.fs.open(path, "rb", block_size=1 << 16) as handle:
            header, _, _ = _read_entry(handle, payload=False)
        return header

    # -- history ------------------------------------------------------------------------
    def _history_path(self, function: str) -> str:
        name = xxhash.xxh3_64_hexdigest(function.encode("utf-8", "surrogatepass"))
        return f"{self.root}/functions/{name}.json"

    def record_history(self, function: str, entry: Dict[str, Any]) -> None:
        """Add ``entry`` to the function's history (read, then rewrite: concurrent
        writers may drop each other's line, which only makes an explanation vaguer)."""
        import json  # not at import (issue 12: a light import)

        entries = [e for e in self.history(function) if e.get("key") != entry.get("key")]
        entries.append(entry)
        data = json.dumps(
            {"function": function, "entries": entries[-HISTORY_LENGTH:]},
            separators=(",", ":"),
            default=str,
        ).encode()
        self.fs.pipe_file(
            self._history_path(function), xxhash.xxh3_64_hexdigest(data).encode() + b"\n" + data
        )

    def history(self, function: str) -> List[Dict[str, Any]]:
        import json  # not at import (issue 12: a light import)

        try:
            raw = self.fs.cat_file(self._history_path(function))
        except Exception:
            return []
        digest, _, body = raw.partition(b"\n")
        if xxhash.xxh3_64_hexdigest(body).encode() != digest:
            return []
        try:
            data = json.loads(body)
        except ValueError:
            return []
        if not isinstance(data, dict) or data.get("function") != function:
            return []
        return [e for e in data.get("entries", []) if isinstance(e, dict)]

    # -- maintenance (the command line) ------------------------------------------------
    def entry_files(self) -> List[str]:
        """Paths (of the file system) of every remote entry."""
        try:
            found = self.fs.find(f"{self.root}/entries")
        except FileNotFoundError:
            return []
        return sorted(
            p for p in found if p.endswith(_SUFFIX) and not os.path.basename(p).startswith(".")
        )

    def iter_entries(self) -> Iterator[EntryInfo]:
        """Every remote entry whose header is readable (one listing, one ranged read
        per entry)."""
        for path in self.entry_files():
            try:
                header = self._header(path)
                size = self.fs.size(path)
            except (OSError, _Corrupt):
                continue
            key = header.get("context_id")
            if not isinstance(key, str):
                key = os.path.basename(path)[: -len(_SUFFIX)]
            yield EntryInfo(key, path, size, header)

    def check_file(self, path: str) -> Optional[str]:
        """None if the remote entry at ``path`` is intact, else why not (downloaded
        into a private temporary folder and checked as a local entry)."""
        import shutil
        import tempfile

        folder = tempfile.mkdtemp(prefix="checkpointing-verify-")
        try:
            local = PickleFileCache(folder, self.pickle_protocol, secret=self._secret)
            try:
                header = self._header(path)
            except (OSError, _Corrupt) as exc:
                return str(exc)
            key = header.get("context_id")
            if not isinstance(key, str) or self.path_of(key) != path:
                return f"misplaced: it holds the entry of key {key!r}"
            local._prepare()
            self.fs.get_file(path, local.path_of(key))
            return local.check_file(local.path_of(key))
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def load_file(self, path: str) -> Any:
        """Unpickle the remote entry at ``path`` after every check."""
        problem = self.check_file(path)
        if problem is not None:
            raise ValueError(problem)
        return self.retrieve(self._header(path)["context_id"])

    def delete(self, key: str) -> bool:
        """Remove the entry of ``key`` here and remotely; False if there was none."""
        self._forget(key)
        path = self.path_of(key)
        if self.etag(path) is None:  # S3 deletes a missing object without complaint
            return False
        self.remove(path)
        return True

    def clear(self) -> int:
        """Remove every remote entry (and the local copies); return how many."""
        removed = 0
        for path in self.entry_files():
            try:
                self.fs.rm_file(path)
            except FileNotFoundError:
                continue
            removed += 1
        self._checked.clear()
        self.tier.clear()
        import shutil

        shutil.rmtree(os.path.join(self.directory, "remote"), ignore_errors=True)
        return removed

    def temporaries(self) -> List[str]:
        return self.tier.temporaries()

    def remove_stale_temporaries(self, max_age: float = 60) -> int:
        return self.tier.remove_stale_temporaries(max_age)

    def legacy_files(self) -> List[str]:
        return []

    def remove_legacy_files(self) -> int:
        return 0


def _filesystem(url: str, options: Dict[str, Any]) -> Tuple[Any, str]:
    try:
        import fsspec.core
    except ImportError:
        raise ConfigurationError(
            f"the cache at {url} needs fsspec: pip install 'checkpointing[s3]' (or "
            f"fsspec and the package of its protocol: gcsfs, adlfs)"
        ) from None
    options = dict(options)
    protocol = url.split("://", 1)[0].lower()
    if protocol in _S3:
        options.setdefault("use_listings_cache", False)  # an entry appears at any time
    try:
        fs, root = fsspec.core.url_to_fs(url, **options)
    except ImportError as exc:
        raise ConfigurationError(
            f"the cache at {url} needs the fsspec package of {protocol!r} ({exc}); "
            f"for S3: pip install 'checkpointing[s3]'"
        ) from None
    except ValueError as exc:
        raise ConfigurationError(f"the cache URL {url} is not usable: {exc}") from None
    return fs, root.rstrip("/")


def _precondition_failed(exc: BaseException) -> bool:
    text = str(exc)
    return "412" in text or "PreconditionFailed" in text or "pre-conditions" in text
