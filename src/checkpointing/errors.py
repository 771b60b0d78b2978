"""Exceptions and warnings of checkpointing.

This module owns the whole hierarchy; everything else imports from here. Each class
also inherits the builtin a caller would naturally catch, so ``except TypeError``
still catches a value that cannot be hashed::

    CheckpointError(Exception)
     ├── CheckpointNotExist(CheckpointError, LookupError)   a cache has no entry (a miss)
     ├── CheckpointFailedError(CheckpointError, RuntimeError) caching failed, on_error="raise"
     ├── HashFailedError(CheckpointError, TypeError)         a value has no stable digest
     └── ConfigurationError(CheckpointError, ValueError)     a bad option, at decoration time

    CheckpointWarning(UserWarning)
     ├── CheckpointFailedWarning(CheckpointWarning, RuntimeWarning)
     │                                      caching failed, on_error="warn"
     ├── HashFailedWarning(CheckpointWarning)       ... because a value has no digest
     ├── CorruptEntryWarning(CheckpointWarning)     an unreadable entry was treated as a miss
     ├── UntrustedEntryWarning(CheckpointWarning)   an entry others could write was not loaded
     ├── BlindSpotWarning(CheckpointWarning)        the analyzer cannot see what code reaches
     ├── SideEffectWarning(CheckpointWarning)       files written that a hit will not rewrite
     └── ExpensiveOverheadWarning(CheckpointWarning) caching costs more than the call

The names ``CheckpointNotExist``, ``CheckpointFailedError``, ``HashFailedError``,
``CheckpointFailedWarning``, ``HashFailedWarning`` and ``ExpensiveOverheadWarning``
are those of checkpointing 1.0. 1.0's ``RefactorFailedError``, ``GlobalStatementError``
and ``NonlocalStatementError`` are kept so that code catching them still imports; this
version never raises them (it tracks functions with ``global``/``nonlocal``).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Optional, Tuple

__all__ = [
    "BlindSpotWarning",
    "GlobalStatementError",
    "NonlocalStatementError",
    "RefactorFailedError",
    "CheckpointError",
    "CheckpointFailedError",
    "CheckpointFailedWarning",
    "CheckpointNotExist",
    "CheckpointWarning",
    "ConfigurationError",
    "CorruptEntryWarning",
    "ExpensiveOverheadWarning",
    "HashFailedError",
    "HashFailedWarning",
    "SideEffectWarning",
    "UntrustedEntryWarning",
]


class CheckpointError(Exception):
    """Base class of every exception raised by checkpointing."""


class CheckpointNotExist(CheckpointError, LookupError):
    """A cache holds no entry for the requested key.

    Raised by :meth:`CacheBase.retrieve`; the decorator turns it into a miss.
    """


class CheckpointFailedError(CheckpointError, RuntimeError):
    """The cache machinery failed and ``on_error="raise"`` asked to stop.

    ``result`` holds the function's return value when the failure came after the
    function had run (a failed save), so the computation is never lost.
    """

    def __init__(self, message: str, result: Any = None, has_result: bool = False) -> None:
        super().__init__(message)
        self.result = result
        self.has_result = has_result

    def __reduce__(self) -> Any:
        return (type(self), (self.args[0], self.result, self.has_result))


class HashFailedError(CheckpointError, TypeError):
    """A value (an argument, a global) cannot be turned into a stable digest."""


class ConfigurationError(CheckpointError, ValueError):
    """An option of :func:`checkpoint` or a key of ``defaults`` is invalid."""


class RefactorFailedError(CheckpointError, RuntimeError):
    """1.0: its code normalizer failed. Kept for imports; never raised."""


class GlobalStatementError(CheckpointError, RuntimeError):
    """1.0: a checkpointed function had a ``global`` statement. Kept for imports; never
    raised (such functions are tracked, see docs/migrating.md)."""


class NonlocalStatementError(CheckpointError, RuntimeError):
    """1.0: a checkpointed function had a ``nonlocal`` statement. Kept for imports; never
    raised."""


class CheckpointWarning(UserWarning):
    """Base class of every warning issued by checkpointing."""


class CheckpointFailedWarning(CheckpointWarning, RuntimeWarning):
    """Caching failed; the function ran (or its result was returned) without the cache."""


class HashFailedWarning(CheckpointWarning):
    """A value has no stable digest, so the call was not cached."""


class CorruptEntryWarning(CheckpointWarning):
    """A stored entry could not be read; it was treated as a miss and will be replaced."""


class UntrustedEntryWarning(CheckpointWarning):
    """An entry was not loaded because someone else could have written it (another
    owner, a folder others can write) or its signature is missing or wrong; it was
    treated as a miss. Loading a pickle can run code."""


class BlindSpotWarning(CheckpointWarning):
    """The analyzer cannot see what a piece of code reaches; results may be stale."""


class SideEffectWarning(CheckpointWarning):
    """A checkpointed function wrote files, which a cache hit will not write again."""


class ExpensiveOverheadWarning(CheckpointWarning):
    """Reading or writing the cache took longer than running the function."""


# Static blind-spot warnings held back until the call that built the plan ends, so that
# the run-time safety net's findings join them in one warning (root name -> message,
# file, line). Filled by keyplan.announce, emptied by keyplan.flush_warnings; here, at
# the bottom layer, so that the call path can test it without importing the analysis.
PENDING_WARNINGS: Dict[str, Tuple[str, Optional[str], Optional[int]]] = {}

# Called with store.compress.Compressed when that module loads (compress=, or the first
# compressed entry unpickled), so that the call path unpacks such a result on a hit
# without loading the codecs at import (issue 12, target 5); here, at the bottom layer,
# as the decorator registers and the store calls.
COMPRESSED_LOADED: List[Callable[[type], None]] = []
