"""Global defaults and validation of options.

This module owns the ``defaults`` dict (the 1.0 API) and the checks that turn a bad
option into a :class:`ConfigurationError` at decoration time. It knows nothing of
hashing, stores or analysis.
"""

from __future__ import annotations

import os
import sys

from .errors import ConfigurationError
from .report import warn

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, Optional

__all__ = [
    "DURABILITY_CHOICES",
    "ON_ERROR_CHOICES",
    "defaults",
    "folder_mode",
    "parse_age",
    "parse_size",
    "validate_directory",
    "validate_durability",
    "validate_inputs",
    "validate_memory_bytes",
    "validate_local_tier",
    "validate_on_error",
    "validate_permissions",
    "validate_pickle_protocol",
    "validate_secret",
    "validate_variants",
]

ON_ERROR_CHOICES = ("warn", "raise", "ignore")
DURABILITY_CHOICES = ("auto", "always", "never")

# Keys of checkpointing 1.0 that no longer have an effect: accepted, with a warning.
_LEGACY_KEYS = {
    "hash.algorithm": "values are always hashed with xxh3-128",
    "hash.pickle_protocol": "the hashing fallback pins its own pickle protocol",
}


def validate_on_error(value: Any) -> str:
    """Return ``value`` if it is an accepted ``on_error`` policy, else raise."""
    if value not in ON_ERROR_CHOICES:
        msg = (
            f"on_error={value!r} is not accepted; use one of "
            f"{', '.join(repr(c) for c in ON_ERROR_CHOICES)}"
        )
        raise ConfigurationError(msg)
    return value


def validate_durability(value: Any) -> str:
    """Return ``value`` if it is an accepted ``cache.durability`` policy, else raise."""
    if value not in DURABILITY_CHOICES:
        msg = (
            f"cache.durability={value!r} is not accepted; use 'auto' (fsync the entries "
            f"of calls that ran 1 s or more), 'always' or 'never'"
        )
        raise ConfigurationError(msg)
    return value


def validate_memory_bytes(value: Any) -> int:
    """Return ``value`` if it is an accepted size of the memory tier, else raise."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = (
            f"cache.memory_bytes={value!r} is not accepted; use an int >= 0: the bytes "
            f"of recently used entries kept in memory (0 turns the memory tier off)"
        )
        raise ConfigurationError(msg)
    return value


def validate_pickle_protocol(value: Any) -> int:
    """Return ``value`` if this interpreter's pickle supports it, else raise."""
    if type(value) is int and 0 <= value <= 5:  # every pickle since Python 3.8 has 0-5
        return value
    import pickle  # here: pickle.py imports re (issue 12, target 5)

    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not 0 <= value <= pickle.HIGHEST_PROTOCOL
    ):
        msg = (
            f"cache_pickle_protocol={value!r} is not accepted; use an int from 0 to "
            f"{pickle.HIGHEST_PROTOCOL} (5 is recommended: it stores large arrays "
            f"without copies)"
        )
        raise ConfigurationError(msg)
    return value


def validate_directory(value: Any) -> "os.PathLike[str] | str":
    """Return ``value`` if it can name a directory, else raise."""
    if (
        isinstance(value, bytes)
        or not isinstance(value, (str, os.PathLike))
        or not os.fspath(value)
    ):
        msg = (
            f"directory={value!r} is not a path; pass a str or pathlib.Path naming the "
            f"cache directory, e.g. directory='.checkpointing'"
        )
        raise ConfigurationError(msg)
    return value


def validate_variants(value: Any) -> int:
    """Return ``value`` if it is an accepted number of entries kept per key, else raise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 64:
        msg = (
            f"cache.variants={value!r} is not accepted; use an int from 1 to 64: how "
            f"many entries of one key, differing in their run-time inputs, are kept "
            f"(1 keeps only the latest)"
        )
        raise ConfigurationError(msg)
    return value


def validate_inputs(value: Any) -> tuple:
    """Return the patterns of ``checkpoint(inputs=...)`` as a tuple of str, else raise."""
    if isinstance(value, (str, os.PathLike)):
        value = [value]
    if isinstance(value, (bytes, dict)) or not isinstance(value, (list, tuple)):
        msg = (
            f"inputs={value!r} is not accepted; pass a list of paths or glob patterns, "
            f"e.g. inputs=['data/*.parquet', 'db.sqlite']"
        )
        raise ConfigurationError(msg)
    patterns = []
    for item in value:
        if isinstance(item, os.PathLike):
            item = os.fspath(item)
        if not isinstance(item, str) or not item or "\0" in item:
            msg = (
                f"inputs= holds {item!r}, which is not a path or glob pattern; use "
                f"non-empty str or pathlib.Path items, e.g. inputs=['data/*.csv']"
            )
            raise ConfigurationError(msg)
        patterns.append(item)
    return tuple(patterns)


def _validate_roots(value: Any) -> Optional[tuple]:
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        value = [value]
    if not isinstance(value, (list, tuple)):
        msg = (
            f"analysis.project_roots={value!r} is not accepted; use None, a path, or a "
            f"list of paths, e.g. ['src', 'scripts']"
        )
        raise ConfigurationError(msg)
    return tuple(validate_directory(v) for v in value)


# Modes a cache may be given: private (the default), or readable/writable by a group
# on purpose. Never writable by everyone, never executable.
_PERMISSIONS = (0o600, 0o640, 0o660, 0o644, 0o664)


def validate_permissions(value: Any) -> int:
    """Return ``value`` if it is an accepted file mode of a cache, else raise."""
    if isinstance(value, bool) or not isinstance(value, int) or value not in _PERMISSIONS:
        shown = (
            oct(value) if isinstance(value, int) and not isinstance(value, bool) else repr(value)
        )
        msg = (
            f"cache.permissions={shown} is not accepted; use one of "
            f"{', '.join(oct(m) for m in _PERMISSIONS)} (0o600: only you; 0o660: your "
            f"group too, which also needs a secret, see docs/security.md)"
        )
        raise ConfigurationError(msg)
    return value


def folder_mode(file_mode: int) -> int:
    """The mode of a cache folder for files of ``file_mode``: search (x) where read."""
    return file_mode | ((file_mode & 0o444) >> 2)


def validate_secret(value: Any) -> Optional[bytes]:
    """The secret that signs entries, as bytes (None: no secret), or raise."""
    if value is None:
        return None
    if isinstance(value, str) and value:
        return value.encode("utf-8", "surrogatepass")
    if isinstance(value, (bytes, bytearray)) and value:
        return bytes(value)
    msg = (
        f"cache.secret must be a non-empty str or bytes (or None), not "
        f"{type(value).__name__}; e.g. defaults['cache.secret'] = "
        f"os.environ['TEAM_CACHE_SECRET']"
    )
    raise ConfigurationError(msg)


def validate_local_tier(value: Any) -> Any:
    """Return ``value`` if it is an accepted ``cache.local_tier``, else raise."""
    if isinstance(value, bool):
        return value
    if isinstance(value, (str, os.PathLike)) and os.fspath(value) and "://" not in str(value):
        return value
    msg = (
        f"cache.local_tier={value!r} is not accepted; use True (a folder under "
        f"~/.cache/checkpointing), False (no local copies) or a local folder path"
    )
    raise ConfigurationError(msg)


def _validate_seconds(name: str) -> Callable[[Any], float]:
    def check(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise ConfigurationError(
                f"{name}={value!r} is not accepted; use a number of seconds > 0"
            )
        return float(value)

    return check


def _validate_secret_setting(value: Any) -> Any:
    validate_secret(value)
    return value


_MAX_SIZE = 1 << 60  # 1 EiB: anything larger is a typo
_SIZE_UNITS = "bkmgt"


def parse_size(value: Any, name: str = "max_size") -> int:
    """Bytes from ``value``: an int >= 0, or a str such as ``"500MB"``, ``"10GB"``,
    ``"1.5 GiB"`` (units of 1024); raise ConfigurationError naming ``name``."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= _MAX_SIZE:
        return value
    import re  # here, not at import (issue 12, target 5)

    match = (
        re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*", value, re.I)
        if isinstance(value, str)
        else None
    )
    size = None
    if match:
        unit = match.group(2).lower().rstrip("ib") or "b"
        size = float(match.group(1)) * 1024 ** _SIZE_UNITS.index(unit)
    if size is None or size > _MAX_SIZE:
        msg = (
            f"{name}={value!r} is not a size; give bytes as an int, or a str such as "
            f"'500MB' or '10GB' (at most 1 EB)"
        )
        raise ConfigurationError(msg)
    return int(size)


_MAX_AGE = 1000 * 365 * 86400.0
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(value: Any, name: str = "older_than") -> float:
    """Seconds from ``value``: a ``timedelta``, a number of seconds >= 0, or a str such
    as ``"12h"``, ``"30d"``, ``"2w"``; raise ConfigurationError naming ``name``."""
    # A timedelta comes from a caller that imported datetime: not imported to check.
    datetime = sys.modules.get("datetime")
    if datetime is not None and isinstance(value, datetime.timedelta):
        seconds: Optional[float] = value.total_seconds()
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        import re  # here, not at import (issue 12, target 5)

        match = (
            re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", value, re.I)
            if isinstance(value, str)
            else None
        )
        seconds = float(match.group(1)) * _AGE_UNITS[match.group(2).lower()] if match else None
    if seconds is None or not seconds >= 0:  # also NaN
        msg = (
            f"{name}={value!r} is not a duration; give a datetime.timedelta, seconds as a "
            f"number >= 0, or a str such as '12h', '30d' or '2w'"
        )
        raise ConfigurationError(msg)
    return min(seconds, _MAX_AGE)


def _validate_max_size(value: Any) -> Optional[int]:
    return None if value is None else parse_size(value, "cache.max_size")


def _validate_threshold(value: Any) -> int:
    return parse_size(value, "cache.compress_threshold")


def _validate_bool(name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ConfigurationError(f"{name}={value!r} is not accepted; use True or False")
        return value

    return check


_VALIDATORS: Dict[str, Callable[[Any], Any]] = {
    "cache.filesystem.directory": validate_directory,
    "cache.pickle_protocol": validate_pickle_protocol,
    "cache.permissions": validate_permissions,
    "cache.secret": _validate_secret_setting,
    "checkpoint.on_error": validate_on_error,
    "analysis.project_roots": _validate_roots,
    "analysis.warn_blind_spots": _validate_bool("analysis.warn_blind_spots"),
    "analysis.track_versions": _validate_bool("analysis.track_versions"),
    "runtime.track_files": _validate_bool("runtime.track_files"),
    "runtime.safety_net": _validate_bool("runtime.safety_net"),
    "runtime.profile_safety_net": _validate_bool("runtime.profile_safety_net"),
    "runtime.track_env": _validate_bool("runtime.track_env"),
    "cache.variants": validate_variants,
    "cache.durability": validate_durability,
    "cache.memory_bytes": validate_memory_bytes,
    "cache.local_tier": validate_local_tier,
    "cache.lease_seconds": _validate_seconds("cache.lease_seconds"),
    "checkpoint.compute_once": _validate_bool("checkpoint.compute_once"),
    "checkpoint.wait_timeout": _validate_seconds("checkpoint.wait_timeout"),
    "cache.max_size": _validate_max_size,
    "cache.compress_threshold": _validate_threshold,
    "checkpoint.enabled": _validate_bool("checkpoint.enabled"),
}


if TYPE_CHECKING:
    _DictBase = Dict[str, Any]
else:
    _DictBase = dict  # typing is not imported at run time (issue 12, target 5)


class Defaults(_DictBase):
    """The global configuration: a dict that checks keys and values when set.

    Set a key at the top of your program, before the decorated functions run::

        from checkpointing import defaults
        defaults["checkpoint.on_error"] = "raise"

    Keys:
        ``cache.filesystem.directory``: where entries are stored (``.checkpointing``).
        ``cache.pickle_protocol``: pickle protocol of stored results (5).
        ``cache.permissions``: mode of the cache's files (0o600; folders 0o700);
        0o660 shares them with your group (then set a secret too).
        ``cache.secret``: a str or bytes that signs every entry (HMAC-SHA256); unsigned
        or tampered entries are then never loaded. ``None`` (the default) reads the
        environment variable ``CHECKPOINTING_SECRET``. See docs/security.md.
        ``checkpoint.on_error``: ``"warn"``, ``"raise"`` or ``"ignore"`` (``"warn"``).
        ``analysis.project_roots``: directories whose modules count as your project,
        so their code is tracked; ``None`` means every file that is not the standard
        library or an installed distribution (editable installs count).
        ``analysis.warn_blind_spots``: warn where the analyzer cannot see (True).
        ``analysis.track_versions``: fold the versions of the third-party
        distributions a function reaches into its key (False).
        ``runtime.track_files``: during a miss, record the files the function reads
        and serve later hits only while they are unchanged (True).
        ``runtime.safety_net``: during a miss, on Python 3.12+, record which project
        functions ran that the static analysis did not see (True).
        ``runtime.profile_safety_net``: the same before Python 3.12, with a profile
        hook that slows every call made during a miss (False).
        ``runtime.track_env``: during a miss, record the environment variables the
        project's code reads, and serve later hits only while they are unchanged (True).
        ``cache.variants``: how many entries of one key are kept when they differ only
        in their run-time inputs, so that reverting an input hits again (4).
        ``cache.durability``: when a save waits for the entry to reach the disk
        (``fsync``): ``"auto"`` (the default) for calls that ran 1 s or more (and for
        ``save()`` without a run time), ``"always"``, or ``"never"``. Every read
        verifies the checksum, so an entry lost or torn by a power cut is a re-run,
        never a wrong value: fsync only protects work worth more than its cost.
        ``cache.memory_bytes``: bytes of recently read or written entries kept in
        memory, each served again after one ``stat`` shows its file unchanged, as a
        fresh copy (32 MiB; 0 turns it off).
        ``cache.local_tier``: for a cache at a URL (``s3://...``), where hits are kept
        on this machine: True (``~/.cache/checkpointing/tiers/...``), False (nowhere:
        every hit downloads) or a folder (True).
        ``cache.lease_seconds``: how long a compute-once lease on an object store lives
        without renewal; a holder renews it every third of it (60).
        ``checkpoint.compute_once``: when several threads, processes or machines miss
        the same key together, one computes and the others wait for its entry (True).
        ``checkpoint.wait_timeout``: seconds a caller waits for another's computation
        before computing by itself, with a warning (3600).
        ``cache.max_size``: the most bytes of entries a cache directory keeps
        (``"10GB"`` or an int); after each save, the least recently used entries are
        evicted to fit, never the one just saved. ``None``: no limit (the default).
        ``cache.compress_threshold``: ``checkpoint(compress=...)`` compresses results
        whose pickle is at least this large (``"1MB"``).
        ``checkpoint.enabled``: False runs every checkpointed function plainly, without
        reading or writing the cache (True; the environment variable
        ``CHECKPOINTING_DISABLE=1`` makes it False at import). See docs/managing.md.
    """

    def __setitem__(self, key: str, value: Any) -> None:
        if key in _LEGACY_KEYS:
            warn(
                f"defaults[{key!r}] has no effect since checkpointing 2.0: {_LEGACY_KEYS[key]}",
                DeprecationWarning,
            )
            super().__setitem__(key, value)
            return
        try:
            validator = _VALIDATORS[key]
        except KeyError:
            msg = f"defaults has no key {key!r}; known keys are {', '.join(sorted(_VALIDATORS))}"
            raise ConfigurationError(msg) from None
        super().__setitem__(key, validator(value))

    def update(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def setdefault(self, key: str, value: Any = None) -> Any:  # type: ignore[override]
        if key not in self:
            self[key] = value
        return self[key]


def _initial() -> Iterable[tuple]:
    return (
        ("cache.filesystem.directory", ".checkpointing"),
        ("cache.pickle_protocol", 5),
        ("cache.permissions", 0o600),
        ("cache.secret", None),
        ("checkpoint.on_error", "warn"),
        ("analysis.project_roots", None),
        ("analysis.warn_blind_spots", True),
        ("analysis.track_versions", False),
        ("runtime.track_files", True),
        ("runtime.safety_net", True),
        ("runtime.profile_safety_net", False),
        ("runtime.track_env", True),
        ("cache.variants", 4),
        ("cache.durability", "auto"),
        ("cache.memory_bytes", 32 << 20),
        ("cache.local_tier", True),
        ("cache.lease_seconds", 60.0),
        ("checkpoint.compute_once", True),
        ("checkpoint.wait_timeout", 3600.0),
        ("cache.max_size", None),
        ("cache.compress_threshold", 1 << 20),
        ("checkpoint.enabled", not _disabled_by_environment()),
    )


def _disabled_by_environment() -> bool:
    """``CHECKPOINTING_DISABLE`` set to anything but empty, ``0``, ``false`` or ``no``."""
    value = os.environ.get("CHECKPOINTING_DISABLE", "").strip().lower()
    return value not in ("", "0", "false", "no", "off")


defaults: Defaults = Defaults(_initial())
"""The process-wide defaults, read when a decorator leaves an option out."""
