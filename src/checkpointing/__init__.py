"""checkpointing: a persistent cache for Python functions that knows when its results are stale.

``@checkpoint`` stores a function's results under ``./.checkpointing/`` and answers a
later call from there only when nothing that could change the result has changed:
the arguments, the function's code, the code of every function and class of your
project it reaches (followed across modules), and the globals they read.

Importing the package installs an import hook that records the source of your
project's modules as they load, so that keys describe the code that is running.
"""

from ._typing import ContextId, ReturnValue
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
from .explain import Explanation, explain
from .hashing import register_class_digester, register_digester, register_lazy
from .identify import AutoFuncCallIdentifier, FuncCallContext, FuncCallIdentifierBase
from .render import DependencyGraph, graph
from .source import install_import_hook as _install_import_hook
from .store import CacheBase, InMemoryLRUCache, PickleFileCache
from .store.evict import prune
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

# The public classes are documented and pickled under the package name.
for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) or callable(_obj):
        try:
            _obj.__module__ = __name__
        except (AttributeError, TypeError):
            pass
del _name, _obj
__all__ += ["ContextId", "ReturnValue"]  # 1.0's type variables
# Value digests (docs/extending.md); kept under their own module's name.
__all__ += ["register_class_digester", "register_digester", "register_lazy"]

_install_import_hook()
