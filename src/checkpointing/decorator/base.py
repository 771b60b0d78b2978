"""checkpointing 1.0's ``checkpointing.decorator.base`` (re-exports; see
:mod:`checkpointing.decorator`)."""

from .._typing import ContextId, ReturnValue
from ..config import defaults
from ..errors import (
    CheckpointFailedError,
    CheckpointFailedWarning,
    CheckpointNotExist,
    ExpensiveOverheadWarning,
)
from ..identify import FuncCallContext, FuncCallIdentifierBase
from ..logging import logger
from ..store import CacheBase
from . import DecoratorCheckpoint

__all__ = [
    "CacheBase",
    "CheckpointFailedError",
    "CheckpointFailedWarning",
    "CheckpointNotExist",
    "ContextId",
    "DecoratorCheckpoint",
    "ExpensiveOverheadWarning",
    "FuncCallContext",
    "FuncCallIdentifierBase",
    "ReturnValue",
    "defaults",
    "logger",
]
