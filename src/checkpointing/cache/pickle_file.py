"""checkpointing 1.0's ``checkpointing.cache.pickle_file`` (re-exports; see
:mod:`checkpointing.store`). Entries now live under ``<directory>/entries/``; the
``<hash>.pickle`` files 1.0 wrote are not read (see docs/migrating.md)."""

from .._typing import ReturnValue
from ..config import defaults
from ..errors import CheckpointNotExist
from ..store import CacheBase, PickleFileCache

__all__ = ["CacheBase", "CheckpointNotExist", "PickleFileCache", "ReturnValue", "defaults"]
