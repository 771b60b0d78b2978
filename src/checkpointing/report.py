"""How the package speaks to its user: warnings at the user's line, once, and logs.

Every warning of the package goes through :func:`warn`, so that

* it is reported at the first frame outside the package (typeguard's approach): the
  line of the user's code that called the checkpointed function, ``f.rerun``, a
  cache method or ``defaults[...] = ...``, however deep inside the package the
  cause was found, so that an editor, a ``-W error::...:module`` filter and
  ``pytest -W`` all point there. (A hard-coded ``stacklevel`` is right on one path
  only: the hit, a miss, ``f.rerun`` and the async wrapper are at different depths.)
  A warning about a place in the user's code that is not a caller (a blind spot of
  the analysis: ``vars()`` on line 12) is issued with ``warnings.warn_explicit`` at
  that place instead;
* a warning that would repeat at every call (a side effect of each run, a folder too
  large to check) is issued once per process and cause: :func:`warn` with ``once=``
  a key, in the one registry here.

Log records: every module logs to ``logging.getLogger(__name__)``, a child of the
``checkpointing`` logger (1.0's ``checkpointing.logging.logger``), at DEBUG for what a
developer traces (hit, miss, save) and INFO for why a function re-ran. The library
adds no handler and sets no level.
"""

from __future__ import annotations

import _thread  # threading's locks, without threading (issue 12, target 5)
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Hashable, Optional, Set, Type

__all__ = ["user_stacklevel", "warn"]

# The folder of the package, spelled as its code objects spell it (an absolute path,
# or relative if it was imported through a relative sys.path entry).
_PACKAGE = os.path.dirname(sys._getframe().f_code.co_filename) + os.sep

_ONCE: Set[Hashable] = set()
_ONCE_LOCK = _thread.allocate_lock()


def user_stacklevel(skip: int = 1) -> int:
    """The ``stacklevel`` that makes ``warnings.warn`` report the first frame outside
    the package, for a call of ``warnings.warn`` made ``skip`` frames above this
    function's caller (1: by the caller itself)."""
    frame: Any = sys._getframe(skip)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level


def warn(message: str, category: Type[Warning], once: Optional[Hashable] = None) -> None:
    """Issue ``message`` as ``category`` at the user's line (see the module docstring);
    with ``once``, only the first time this process issues a warning with that key."""
    if once is not None:
        with _ONCE_LOCK:
            if once in _ONCE:
                return
            _ONCE.add(once)
    import warnings  # here: a warning is rare, and warnings.py not loaded at start-up

    warnings.warn(message, category, stacklevel=user_stacklevel())
