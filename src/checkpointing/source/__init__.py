"""Source of the user's modules as loaded (import hook and index), and what is "project"."""

from .hook import ImportHookHandle, install_import_hook, should_record
from .index import INDEX, ModuleRecord, SourceIndex, display_path

__all__ = [
    "INDEX",
    "ImportHookHandle",
    "ModuleRecord",
    "SourceIndex",
    "display_path",
    "install_import_hook",
    "should_record",
]
