"""checkpointing 1.0's ``checkpointing.identifier.func_call`` (re-exports; see
:mod:`checkpointing.identify`)."""

from ...identify import AutoFuncCallIdentifier, FuncCallContext, FuncCallIdentifierBase

__all__ = ["AutoFuncCallIdentifier", "FuncCallContext", "FuncCallIdentifierBase"]
