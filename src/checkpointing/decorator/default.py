"""checkpointing 1.0's ``checkpointing.decorator.default`` (re-exports; see
:mod:`checkpointing.decorator`)."""

from ..identify import AutoFuncCallIdentifier
from ..store import PickleFileCache
from . import DecoratorCheckpoint, checkpoint

__all__ = ["AutoFuncCallIdentifier", "DecoratorCheckpoint", "PickleFileCache", "checkpoint"]
