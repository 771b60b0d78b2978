"""checkpointing 1.0's ``checkpointing.exceptions``: the same classes as
:mod:`checkpointing.errors`, which owns them (this module only re-exports)."""

from .errors import (
    CheckpointFailedError,
    CheckpointFailedWarning,
    CheckpointNotExist,
    ExpensiveOverheadWarning,
    GlobalStatementError,
    HashFailedError,
    HashFailedWarning,
    NonlocalStatementError,
    RefactorFailedError,
)

__all__ = [
    "CheckpointFailedError",
    "CheckpointFailedWarning",
    "CheckpointNotExist",
    "ExpensiveOverheadWarning",
    "GlobalStatementError",
    "HashFailedError",
    "HashFailedWarning",
    "NonlocalStatementError",
    "RefactorFailedError",
]
