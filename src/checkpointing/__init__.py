"""checkpointing: a persistent cache for Python functions that knows when its results are stale.

``@checkpoint`` stores a function's results under ``./.checkpointing/`` and answers a
later call from there only when nothing that could change the result has changed:
the arguments, the function's code, the code of every function and class of your
project it reaches (followed across modules), and the globals they read.

Importing the package installs an import hook that records the source of your
project's modules as they load, so that keys describe the code that is running.
"""

from __future__ import annotations

from .config import defaults
from .decorator import DecoratorCheckpoint, checkpoint
from .errors import (
    BlindSpotWarning,
    CheckpointError,
    CheckpointFailedError,
    CheckpointFailedWarning,
    CheckpointNotExist,
    CheckpointWarning,
    ConfigurationError,
    CorruptEntryWarning,
    ExpensiveOverheadWarning,
    HashFailedError,
    HashFailedWarning,
    UntrustedEntryWarning,
)
from .hashing import register_class_digester, register_digester, register_lazy
from .identify import AutoFuncCallIdentifier, FuncCallContext, FuncCallIdentifierBase
from .source import install_import_hook as _install_import_hook
from .store import CacheBase, PickleFileCache

TYPE_CHECKING = False
if TYPE_CHECKING:  # imported at first use (__getattr__ below): not needed by a hit
    from typing import Any

    from ._typing import ContextId, ReturnValue
    from .explanation import Explanation, explain
    from .render import DependencyGraph, graph
    from .store.evict import prune
    from .store.memory import InMemoryLRUCache
    from .store.remote import RemoteStore

__version__ = "2.0.0.dev0"

__all__ = [
    "AutoFuncCallIdentifier",
    "BlindSpotWarning",
    "CacheBase",
    "CheckpointError",
    "CheckpointFailedError",
    "CheckpointFailedWarning",
    "CheckpointNotExist",
    "CheckpointWarning",
    "ConfigurationError",
    "CorruptEntryWarning",
    "DecoratorCheckpoint",
    "DependencyGraph",
    "ExpensiveOverheadWarning",
    "Explanation",
    "explain",
    "graph",
    "FuncCallContext",
    "FuncCallIdentifierBase",
    "HashFailedError",
    "HashFailedWarning",
    "InMemoryLRUCache",
    "PickleFileCache",
    "RemoteStore",
    "UntrustedEntryWarning",
    "checkpoint",
    "defaults",
    "prune",
]

# Public names whose modules load at first use: drawing a graph, explaining a call,
# the remote store (fsspec), the memory cache, pruning and 1.0's type variables
# (typing) are not needed to hit (issue 12, target 5).
_LAZY = {
    "DependencyGraph": ".render",
    "graph": ".render",
    "Explanation": ".explanation",
    "explain": ".explanation",
    "InMemoryLRUCache": ".store.memory",
    "RemoteStore": ".store.remote",
    "ContextId": "._typing",
    "prune": ".store.evict",
    "ReturnValue": "._typing",
}


def _public(obj: Any) -> Any:
    """The public classes are documented and pickled under the package name."""
    if isinstance(obj, type) or callable(obj):
        try:
            obj.__module__ = __name__
        except (AttributeError, TypeError):
            pass
    return obj


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    if module != "._typing":  # the type variables keep their 1.0 module
        value = _public(value)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


for _name in __all__:
    if _name not in _LAZY:
        _public(globals()[_name])
del _name
__all__ += ["ContextId", "ReturnValue"]  # 1.0's type variables
# Value digests (docs/extending.md); kept under their own module's name.
__all__ += ["register_class_digester", "register_digester", "register_lazy"]

_install_import_hook()
