"""checkpointing 1.0's ``checkpointing.identifier.func_call.context`` (re-exports; see
:mod:`checkpointing.identify`)."""

from ..._typing import ReturnValue
from ...identify import FuncCallContext

__all__ = ["FuncCallContext", "ReturnValue"]
