"""checkpointing: a persistent cache for Python functions that knows when its results are stale."""

from .config import defaults
from .errors import (BlindSpotWarning, CheckpointError, CheckpointFailedError,
                     CheckpointFailedWarning, CheckpointNotExist, CheckpointWarning,
                     ConfigurationError, CorruptEntryWarning, ExpensiveOverheadWarning,
                     HashFailedError, HashFailedWarning)

__version__ = "2.0.0.dev0"
