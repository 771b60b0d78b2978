"""checkpointing 1.0's ``checkpointing.identifier.func_call.auto`` (re-exports; see
:mod:`checkpointing.identify`). 1.0 raised GlobalStatementError and
NonlocalStatementError for functions with ``global``/``nonlocal``; this version
tracks such functions and never raises them."""

from ..._typing import ContextId
from ...config import defaults
from ...errors import GlobalStatementError, NonlocalStatementError
from ...hash import hash_anything
from ...identify import AutoFuncCallIdentifier, FuncCallContext, FuncCallIdentifierBase

__all__ = [
    "AutoFuncCallIdentifier",
    "ContextId",
    "FuncCallContext",
    "FuncCallIdentifierBase",
    "GlobalStatementError",
    "NonlocalStatementError",
    "defaults",
    "hash_anything",
]
