"""A logger that imports :mod:`logging` only when a record could be emitted.

``import logging`` costs about 4 ms (traceback, string, weakref...), a third of the
import budget of the package (issue 12), for messages that are at DEBUG and INFO and
that nobody sees unless the application configured logging. Until some code imports
:mod:`logging`, nothing can have configured it: the root logger is at its default
level, WARNING, so a DEBUG or INFO record would be dropped. :class:`LazyLogger` relies
on that: below WARNING it returns at once while ``logging`` is not in ``sys.modules``;
otherwise (logging imported by anyone, or a WARNING and above) it hands the call to
``logging.getLogger(name)``, so levels, handlers and filters behave exactly as with a
plain logger.
"""

from __future__ import annotations

import sys

__all__ = ["DEBUG", "INFO", "WARNING", "LazyLogger"]

DEBUG = 10
INFO = 20
WARNING = 30


class LazyLogger:
    """The subset of :class:`logging.Logger` the package uses, imported on demand.

    Once the real logger is made, its methods replace these on the instance: from
    then on a call costs what a plain logger's does, and records name the caller.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._logger = None
        # The real logger's memo of isEnabledFor by level (``logging.Logger._cache``,
        # emptied in place whenever a level changes): a level it holds as False is off,
        # which a hot path can see without a call. Empty until then (or without it).
        self.levels: dict = {}

    def _real(self):  # noqa: ANN202 (a logging.Logger; logging is not imported here)
        logger = self._logger
        if logger is None:
            import logging

            logger = self._logger = logging.getLogger(self.name)
            for method in ("isEnabledFor", "log", "debug", "info", "warning"):
                setattr(self, method, getattr(logger, method))
            levels = getattr(logger, "_cache", None)
            if type(levels) is dict:
                self.levels = levels
        return logger

    def isEnabledFor(self, level: int) -> bool:  # noqa: N802 (logging's spelling)
        """As :meth:`logging.Logger.isEnabledFor`; False below WARNING while logging is
        not imported (then nothing configured it and the root's level is WARNING)."""
        if self._logger is None and "logging" not in sys.modules:
            return level >= WARNING
        return self._real().isEnabledFor(level)

    def log(self, level: int, msg: str, *args: object, **kwargs: object) -> None:
        if self.isEnabledFor(level):
            kwargs.setdefault("stacklevel", 2)
            self._real().log(level, msg, *args, **kwargs)

    def debug(self, msg: str, *args: object, **kwargs: object) -> None:
        if self.isEnabledFor(DEBUG):
            kwargs.setdefault("stacklevel", 2)
            self._real().debug(msg, *args, **kwargs)

    def info(self, msg: str, *args: object, **kwargs: object) -> None:
        if self.isEnabledFor(INFO):
            kwargs.setdefault("stacklevel", 2)
            self._real().info(msg, *args, **kwargs)

    def warning(self, msg: str, *args: object, **kwargs: object) -> None:
        kwargs.setdefault("stacklevel", 2)
        self._real().warning(msg, *args, **kwargs)
