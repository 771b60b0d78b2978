"""checkpointing 1.0's ``checkpointing.logging``: ``logger`` is the parent logger of
every module of the package (``logging.getLogger("checkpointing")``).

Unlike 1.0, importing it does not set the level to CRITICAL: the library logs at
DEBUG/INFO and, as any library, leaves the levels and handlers to the application.
"""

import logging as _logging

__all__ = ["logger"]

logger = _logging.getLogger("checkpointing")
