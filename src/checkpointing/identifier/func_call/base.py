"""checkpointing 1.0's ``checkpointing.identifier.func_call.base`` (re-exports; see
:mod:`checkpointing.identify`)."""

from ..._typing import ContextId
from ...identify import FuncCallContext, FuncCallIdentifierBase

__all__ = ["ContextId", "FuncCallContext", "FuncCallIdentifierBase"]
