"""The type variables of checkpointing 1.0's API, kept at their 1.0 import path.

Made at first use (the module's ``__getattr__``): ``import checkpointing`` does not
import :mod:`typing` (issue 12, target 5).
"""

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import TypeVar

    ReturnValue = TypeVar("ReturnValue")
    """The return value of a checkpointed function."""

    ContextId = TypeVar("ContextId")
    """The key of a call, as an identifier returns it and a cache takes it."""

__all__ = ["ContextId", "ReturnValue"]


def __getattr__(name: str) -> object:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from typing import TypeVar

    g = globals()
    g.setdefault("ReturnValue", TypeVar("ReturnValue"))
    g.setdefault("ContextId", TypeVar("ContextId"))
    return g[name]
