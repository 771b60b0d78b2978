"""checkpointing 1.0's ``checkpointing.identifier``: the identifiers, re-exported from
:mod:`checkpointing.identify`, which implements them. Its subpackage ``func_call``
(with ``base``, ``context`` and ``auto``) holds the 1.0 import paths of the same classes.
"""

from ..identify import AutoFuncCallIdentifier, FuncCallContext, FuncCallIdentifierBase

__all__ = ["AutoFuncCallIdentifier", "FuncCallContext", "FuncCallIdentifierBase"]
