"""What a function does while it runs: input files, side effects, code the analysis missed.

Static analysis sees code, not the world. During a miss (only then: hits are never
traced), a :class:`Recorder` notes

* the regular files the function opens for reading (an audit hook on ``open``), so
  that a later hit is served only while they are unchanged; SQLite databases it
  connects to (``sqlite3.connect``, opened in C);
* the directories it lists (``os.listdir``, ``os.scandir``, hence ``glob``,
  ``pathlib``'s ``glob``/``rglob``/``iterdir``, ``os.walk``): their names and the size
  and mtime of each entry, so an added, removed or rewritten file re-runs;
* the environment variables the project's own code reads (``os.environ[...]``,
  ``.get``, ``os.getenv``, ``in``): their value or absence, as a digest;
* the ``str``/``PathLike`` arguments of the call that name existing files (content)
  or folders (every file's size and mtime, recursively): the files a C reader
  (pyarrow, h5py) opens without Python seeing it;
* the files matching the patterns declared with ``checkpoint(inputs=[...])``, whose
  globs are evaluated again before every hit;
* the files it opens for writing and the directories it creates, which a hit would
  not recreate (a warning says so);
* on Python 3.12+, the functions of the project that actually ran
  (``sys.monitoring``, each code object reported once), so that code reached through
  names built at run time joins the entry's dependencies; before 3.12, the same with
  a profile hook, opt-in (``defaults["runtime.profile_safety_net"]``) as it slows
  every call made during a miss.

What is recorded is saved with the entry as its "checks", and :func:`verify` runs
them before a hit is served: size and mtime first, content digests only when those
differ, so an untouched input costs one ``stat``. The layout of the checks (JSON)::

    "inputs":   [[path, size, mtime_ns, content digest]]   size -1: must not exist
    "listings": [[folder, names digest, digest of each file's size and mtime_ns,
                  paths left out (the cache directory)]]
    "trees":    [[folder, digest of (relative path, size, mtime_ns) of every file,
                  paths left out]]
    "env":      [[name, value digest or None when unset]]
    "cwd":      [[the current folder]], when a relative path was read
    "declared": [[pattern as given, digest of its sorted absolute matches]]
    "code":     [[qualname, file, first line, last line, source digest]]

Our own work (computing or verifying checks, reading entries) is never recorded: a
thread-local flag turns the hooks off while it runs.

:func:`verify` and the digests it compares live in :mod:`checkpointing.checks`, which
a hit imports without this module (its hooks and recorder are a miss's).
"""

from __future__ import annotations

import _collections_abc
import _thread  # threading's locks, without threading (issue 12, target 5)
import os
import stat as _stat
import sys

import xxhash

from .checks import (  # what a hit needs, in a module of its own (see there)
    _LOCAL,
    MAX_FOLDER_FILES,
    _busy,
    _entries_digest,
    _file_digest,
    _matches,
    _names_digest,
    _normalized_digest,
    _segment_digest,
    _tree_digest,
    _visible,
    active,
    propagate,
    verify,
)
from .config import defaults
from .source import INDEX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

__all__ = ["Recorder", "active", "declared_checks", "merge", "propagate", "start", "stop", "verify"]

_HOOK_INSTALLED = False
_HOOK_LOCK = _thread.allocate_lock()
_MODULE_SUFFIXES = (".py", ".pyc", ".pyo", ".so", ".pyd", ".pth", ".dll", ".dylib")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class Recorder:
    """What one miss of one function did; see the module docs."""

    def __init__(
        self,
        name: str,
        ignore_dirs: Tuple[str, ...],
        track_files: bool,
        known: Optional[List[Tuple[str, int, int]]],
        track_env: bool = False,
    ) -> None:
        self.name = name
        self.ignore_dirs = ignore_dirs
        self.track_files = track_files
        self.track_env = track_env
        self.reads: Dict[str, None] = {}
        self.writes: Dict[str, None] = {}
        self.listings: Dict[str, None] = {}
        # paths named by the call's arguments -> the current folder if given relative
        self.arguments: Dict[str, Optional[str]] = {}
        self.env: Dict[str, Optional[str]] = {}  # name -> value digest at the first read
        self.env_set: Set[str] = set()  # set by the function before it read them
        self.sqlite: Dict[str, None] = {}  # databases: their -wal file is checked too
        self.cwd: Optional[str] = None  # the current folder, if a relative path was read
        self.known = known  # (file, first line, last line) of the static graph's nodes
        self.executed: Dict[Any, None] = {}
        self.inherited: List[Dict[str, Any]] = []  # checks of nested hits

    def note_arguments(self, args: Sequence[Any], kwargs: Dict[str, Any]) -> None:
        """Remember the arguments that may name files or folders (read in C, unseen)."""
        if not self.track_files:
            return
        for value in _path_candidates(list(args) + list(kwargs.values())):
            path = os.path.abspath(value)
            if not path.startswith(self.ignore_dirs):
                self.arguments[path] = None if os.path.isabs(value) else os.getcwd()

    def note_relative(self) -> None:
        """A path relative to the current folder was read: the folder is an input."""
        if self.cwd is None:
            self.cwd = os.getcwd()

    def checks(self) -> Dict[str, Any]:
        """The checks to save with the entry (empty when there is nothing to check)."""
        with _busy():
            return self._checks()

    def _checks(self) -> Dict[str, Any]:
        if not (
            self.reads
            or self.sqlite
            or self.listings
            or self.arguments
            or self.env
            or self.cwd is not None
            or (self.executed and self.known is not None)
            or self.inherited
        ):
            return {}  # it read nothing to check (most misses)
        out: Dict[str, Any] = {}
        inputs = [_file_state(path) for path in self.reads if path not in self.writes]
        inputs.extend(_absent_state(path + "-wal") for path in self.sqlite)
        inputs = [state for state in inputs if state is not None]
        cache = (self.ignore_dirs[0].rstrip(os.sep),)
        listings = [
            state
            for state in (_listing_state(p, cache) for p in self.listings)
            if state is not None
        ]
        trees: List[List[Any]] = []
        for path, cwd in self.arguments.items():
            if _add_path_state(path, inputs, trees, self.name, cache) and cwd is not None:
                self.cwd = self.cwd or cwd  # only a string naming a path ties it
        env = [[name, digest] for name, digest in self.env.items()]
        if self.cwd is not None:
            out["cwd"] = [[self.cwd]]
        code = [
            state for state in (_code_state(c) for c in self._extra_code()) if state is not None
        ]
        for name, items in (
            ("inputs", inputs),
            ("listings", listings),
            ("trees", trees),
            ("env", env),
            ("code", code),
        ):
            if items:
                out[name] = items
        for nested in self.inherited:
            out = merge(out, nested)
        return merge(out, {})

    def _extra_code(self) -> List[Any]:
        if not self.executed or self.known is None:
            return []
        extra = []
        for code in self.executed:
            filename, line = code.co_filename, code.co_firstlineno
            if not any(f == filename and first <= line <= last for f, first, last in self.known):
                extra.append(code)
        return extra


_KINDS = ("cwd", "inputs", "listings", "trees", "env", "declared", "code")


def merge(checks: Dict[str, Any], more: Dict[str, Any]) -> Dict[str, Any]:
    """The checks of both (each item once)."""
    if not more and not checks:
        return {}
    out = {}
    for kind in _KINDS:
        items = list(checks.get(kind, ())) + list(more.get(kind, ()))
        if items:
            out[kind] = _unique(items)
    return out


def _unique(items: List[List[Any]]) -> List[List[Any]]:
    seen, out = set(), []
    for item in items:
        key = tuple(item[:2])
        if key not in seen:
            seen.add(key)
            out.append(item)
    return out


def _file_state(path: str) -> Optional[List[Any]]:
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not _is_regular(st):
        return None
    digest = _file_digest(path)
    return None if digest is None else [path, st.st_size, st.st_mtime_ns, digest]


def _is_regular(st: os.stat_result) -> bool:
    import stat

    return stat.S_ISREG(st.st_mode)


def _absent_state(path: str) -> Optional[List[Any]]:
    """The state of a file that must keep not existing (a SQLite write-ahead log)."""
    try:
        os.stat(path)
    except FileNotFoundError:
        return [path, -1, -1, None]
    except OSError:
        return None
    return _file_state(path)


_NOT_PATHS = frozenset({int, float, bool, complex, bytes, type(None)})


def _path_candidates(values: Iterable[Any]) -> List[str]:
    """The str/PathLike values, and those inside list/tuple values, that could be paths."""
    out = []
    for value in values:
        items = value if type(value) in (list, tuple) else (value,)
        for item in items:
            if item.__class__ in _NOT_PATHS:
                continue
            if isinstance(item, os.PathLike):
                try:
                    item = os.fspath(item)
                except TypeError:
                    continue
            if (
                isinstance(item, str)
                and 0 < len(item) < 4096
                and "\0" not in item
                and "\n" not in item
            ):
                out.append(item)
    return out


def _add_path_state(
    path: str, inputs: List[List[Any]], trees: List[List[Any]], name: str, cache: Tuple[str, ...]
) -> bool:
    """Add the state of ``path`` (an argument or a declared match) as a file or a
    tree; False if it names neither."""
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return False
    state = None
    if _stat.S_ISREG(st.st_mode):
        state = _file_state(path)
        if state is not None:
            inputs.append(state)
    elif _stat.S_ISDIR(st.st_mode):
        state = _tree_state(path, name, [c for c in cache if c.startswith(path + os.sep)])
        if state is not None:
            trees.append(state)
    return state is not None


def _listing_state(folder: str, cache: Tuple[str, ...]) -> Optional[List[Any]]:
    excluded = [c for c in cache if os.path.dirname(c) == folder]
    try:
        names = _visible(folder, os.listdir(folder), excluded)
    except OSError:
        return None  # listed, then removed (a temporary directory): nothing to check
    return [folder, _names_digest(names), _entries_digest(folder, names), excluded]


def _tree_state(root: str, name: str, excluded: List[str]) -> Optional[List[Any]]:
    digest = _tree_digest(root, MAX_FOLDER_FILES, excluded)
    if digest is None:
        from .errors import BlindSpotWarning
        from .report import warn
        from .source import display_path

        warn(
            f"{name} was given the folder {display_path(root)}, which holds more than "
            f"{MAX_FOLDER_FILES} files: too many to check before each hit, so changes "
            f"inside it do not re-run {name}. Pass the files it reads, or declare "
            f"them with checkpoint(inputs=['folder/*.parquet'])",
            BlindSpotWarning,
            once=("large-folder", name, root),
        )
        return None
    return [root, digest, excluded]


def declared_checks(patterns: Sequence[str], name: str, cache_dir: Optional[str]) -> Dict[str, Any]:
    """The checks of the patterns of ``checkpoint(inputs=[...])``: each pattern's
    matches (evaluated again before every hit), the content of each matched file, the
    tree of each matched folder (leaving out ``cache_dir``, the store's folder if it
    has one)."""
    left_out = (os.path.abspath(cache_dir),) if cache_dir else ()
    with _busy():
        inputs: List[List[Any]] = []
        trees: List[List[Any]] = []
        declared = []
        for pattern in patterns:
            matches = _matches(pattern)
            declared.append([pattern, _names_digest(matches)])
            for path in matches:
                _add_path_state(path, inputs, trees, name, left_out)
        out: Dict[str, Any] = {"declared": declared}
        if inputs:
            out["inputs"] = inputs
        if trees:
            out["trees"] = trees
        return out


def _code_lines(code: Any) -> Tuple[int, int]:
    """First and last source line of a code object.

    A function's nested code (lambdas, inner functions, comprehensions) is part of its
    definition and counts; the functions defined by a module or class body do not
    (they are recorded on their own if they run).
    """
    import dis

    last = code.co_firstlineno
    stack = [code]
    while stack:
        current = stack.pop()
        last = max([last] + [line for _, line in dis.findlinestarts(current) if line])
        if current.co_flags & _CO_NEWLOCALS:  # a function, not a module or class body
            stack.extend(c for c in current.co_consts if hasattr(c, "co_code"))
    return code.co_firstlineno, last


_CO_NEWLOCALS = 0x2


def _code_state(code: Any) -> Optional[List[Any]]:
    first, last = _code_lines(code)
    digest = _segment_digest(code.co_filename, first, last)
    if digest is None:
        return None
    module = None
    for name, mod in list(sys.modules.items()):
        if getattr(mod, "__file__", None) == code.co_filename:
            module = name
            break
    qualname = (
        f"{module or '?'}:{code.co_qualname if hasattr(code, 'co_qualname') else code.co_name}"
    )
    return [
        qualname,
        code.co_filename,
        first,
        last,
        digest,
        _normalized_digest(code.co_filename, first, last),
    ]


# -- the hooks --------------------------------------------------------------------------


_LISTING_EVENTS = ("os.listdir", "os.scandir")
_EVENTS = frozenset({"open", "os.mkdir", "sqlite3.connect", *_LISTING_EVENTS})


# This package's own folder: what checkpointing opens or lists while a miss runs (the
# safety net finding a definition's source, the source index looking for installed
# distributions) is not an input of the user's function.
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _audit(event: str, args: Tuple[Any, ...]) -> None:
    stack = getattr(_LOCAL, "stack", None)
    if not stack or getattr(_LOCAL, "busy", 0):
        return
    if event not in _EVENTS:
        return
    if sys._getframe(1).f_code.co_filename.startswith(_PACKAGE_DIR):
        return
    if event == "open":
        path, mode, flags = args
        writing = (
            ("w" in mode or "a" in mode or "x" in mode or "+" in mode)
            if isinstance(mode, str)
            else bool(flags & _WRITE_FLAGS)
        )
    elif event == "os.mkdir":
        path, writing = args[0], True
    elif event in _LISTING_EVENTS:
        _audit_listing(stack, args[0])
        return
    elif event == "sqlite3.connect":
        _audit_sqlite(stack, args[0])
        return
    else:
        return
    if isinstance(path, int) or path is None:
        return
    try:
        given = os.fsdecode(path)
        path = os.path.abspath(given)
    except (TypeError, ValueError):
        return
    if path.endswith(_MODULE_SUFFIXES) or "__pycache__" in path:
        return  # the interpreter importing a module
    inside = path + os.sep  # the cache folder itself is ignored, not only what it holds
    for recorder in stack:
        if inside.startswith(recorder.ignore_dirs):
            continue
        if writing:
            recorder.writes[path] = None
        elif recorder.track_files:
            recorder.reads[path] = None
            if not os.path.isabs(given):
                recorder.note_relative()


def _audit_listing(stack: List[Recorder], path: Any) -> None:
    """A directory listed during a miss, unless the import system lists it (its code is
    frozen: ``<frozen importlib._bootstrap_external>``)."""
    if isinstance(path, int):
        return  # listed through a file descriptor: no name to check again
    caller = sys._getframe(2)
    if caller.f_code.co_filename.startswith("<frozen"):
        return
    try:
        given = os.fsdecode(path) if path is not None else "."
        folder = os.path.abspath(given)
    except (TypeError, ValueError):
        return
    if "__pycache__" in folder:
        return
    probe = folder.rstrip(os.sep) + os.sep
    for recorder in stack:
        if recorder.track_files and not probe.startswith(recorder.ignore_dirs):
            recorder.listings[folder] = None
            if not os.path.isabs(given):
                recorder.note_relative()


def _audit_sqlite(stack: List[Recorder], database: Any) -> None:
    """A SQLite database opened during a miss: SQLite reads it in C, so ``open`` never
    fires. Its write-ahead log (``-wal``) holds committed data too."""
    try:
        name = os.fsdecode(database)
    except (TypeError, ValueError):
        return
    if name.startswith("file:"):  # a URI (uri=True): file:path?mode=ro
        name = name[5:].split("?", 1)[0]
        if name.startswith("//"):
            name = name[2:]
    if not name or name == ":memory:" or "mode=memory" in str(database):
        return
    path = os.path.abspath(name)
    for recorder in stack:
        if recorder.track_files and not path.startswith(recorder.ignore_dirs):
            recorder.reads[path] = None
            recorder.sqlite[path] = None
            if not os.path.isabs(name):
                recorder.note_relative()


# -- environment variables --------------------------------------------------------------
# os.environ is a Python mapping without audit events: while a miss runs, its class is
# swapped for a subclass that notes reads (every read, `in`, .get and os.getenv go
# through __getitem__). Only reads made by the project's own code count: the standard
# library and installed packages read variables on their own behalf (TMPDIR, TERM...).
_ENV_LOCK = _thread.allocate_lock()
_ENV_USERS = [0]
_ENV_CLASS = type(os.environ)


def _plumbing_files() -> Set[str]:
    return {
        os.getenv.__code__.co_filename,
        _collections_abc.Mapping.get.__code__.co_filename,
        __file__,
    }


_PLUMBING: Set[str] = set()
_ENV_CALLERS: Dict[str, bool] = {}  # file of the reading code -> is it the project's?


def _note_env(key: Any, value: Optional[str]) -> None:
    stack = getattr(_LOCAL, "stack", None)
    if (
        not stack or getattr(_LOCAL, "busy", 0) or not isinstance(key, str) or key in stack[-1].env
    ):  # read before: the first value is what counts
        return
    frame = sys._getframe(2)
    while frame is not None and frame.f_code.co_filename in _PLUMBING:
        frame = frame.f_back
    if frame is None:
        return
    filename = frame.f_code.co_filename
    ours = _ENV_CALLERS.get(filename)
    if ours is None:
        with _busy():  # deciding may import (sysconfig), which reads the environment
            ours = not filename.startswith("<frozen") and INDEX.is_project_path(filename)
        _ENV_CALLERS[filename] = ours
    if not ours:
        return
    digest = (
        None
        if value is None
        else xxhash.xxh3_128_hexdigest(value.encode("utf-8", "surrogateescape"))
    )
    for recorder in stack:
        if recorder.track_env and key not in recorder.env and key not in recorder.env_set:
            recorder.env[key] = digest


def _note_env_write(key: Any) -> None:
    stack = getattr(_LOCAL, "stack", None)
    if stack and not getattr(_LOCAL, "busy", 0):
        for recorder in stack:
            if key not in recorder.env:
                recorder.env_set.add(key)


class _RecordingEnviron(_ENV_CLASS):  # type: ignore[valid-type, misc]
    """``os.environ`` while a miss records (see above)."""

    def __getitem__(self, key: Any) -> Any:
        try:
            value = super().__getitem__(key)
        except KeyError:
            _note_env(key, None)
            raise
        _note_env(key, value)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        _note_env_write(key)
        super().__setitem__(key, value)

    def __delitem__(self, key: Any) -> None:
        _note_env_write(key)
        super().__delitem__(key)


def _watch_env() -> None:
    with _ENV_LOCK:
        _ENV_USERS[0] += 1
        if _ENV_USERS[0] == 1 and type(os.environ) is _ENV_CLASS:
            if not _PLUMBING:
                _PLUMBING.update(_plumbing_files())
            os.environ.__class__ = _RecordingEnviron


def _unwatch_env() -> None:
    with _ENV_LOCK:
        _ENV_USERS[0] -= 1
        if _ENV_USERS[0] == 0 and type(os.environ) is _RecordingEnviron:
            os.environ.__class__ = _ENV_CLASS


def _install_audit_hook() -> None:
    global _HOOK_INSTALLED
    if _HOOK_INSTALLED:  # each miss asks: no lock once it is in
        return
    with _HOOK_LOCK:
        if not _HOOK_INSTALLED:
            sys.addaudithook(_audit)  # cannot be removed: it returns at once when idle
            _HOOK_INSTALLED = True


def _environment_dirs() -> Tuple[str, ...]:
    """The interpreter's and installed packages' folders (never inputs), recomputed
    only when ``sys.path`` or the prefixes change (each miss asks)."""
    state = (sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path)
    if _ENV_DIRS and _ENV_DIRS[0] == state:
        return _ENV_DIRS[1]
    dirs = {os.path.join(p, "lib") for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    dirs.update(p for p in sys.path if "site-packages" in p or "dist-packages" in p)
    out = tuple(d.rstrip(os.sep) + os.sep for d in dirs if d)
    _ENV_DIRS[:] = [state, out]
    return out


_ENV_DIRS: List[Any] = []  # [the state it was computed for, the folders]


# sys.monitoring (3.12+): which project code runs during a miss.
_TOOL: Optional[int] = None


def _monitoring() -> Any:
    return _SYS_MONITORING


# Looked up once: on Python < 3.12 each getattr(sys, "monitoring", None) raises and
# catches an AttributeError inside (a microsecond, twice per miss).
_SYS_MONITORING = getattr(sys, "monitoring", None)


def _on_start(code: Any, offset: int) -> Any:
    stack = getattr(_LOCAL, "stack", None)
    if (
        stack
        and not code.co_filename.startswith("<frozen")
        and INDEX.is_project_path(code.co_filename)
    ):
        for recorder in stack:
            if recorder.known is not None:
                recorder.executed[code] = None
    monitoring = _monitoring()
    return monitoring.DISABLE if monitoring is not None else None


def _profile(frame: Any, event: str, arg: Any) -> None:
    """The safety net before Python 3.12: a profile hook (slower; opt-in)."""
    if event != "call":
        return
    code = frame.f_code
    if code in _PROFILED:
        return
    _PROFILED[code] = None
    _on_start(code, 0)


_PROFILED: Dict[Any, None] = {}
_PREVIOUS_PROFILE: List[Any] = []


def _start_profile() -> bool:
    """Install the profile hook, unless another tool (cProfile, a debugger) profiles
    this thread: it is never displaced (the net is then off for this miss)."""
    if not _PREVIOUS_PROFILE:
        if sys.getprofile() is not None:
            return False
        _PROFILED.clear()
        _PREVIOUS_PROFILE.append(None)
        sys.setprofile(_profile)
    return True


def _stop_profile() -> None:
    if _PREVIOUS_PROFILE:
        _PREVIOUS_PROFILE.pop()
        if sys.getprofile() is _profile:
            sys.setprofile(None)


def _start_monitoring(force_profile: bool = False) -> bool:
    global _TOOL
    monitoring = _monitoring()
    if monitoring is None:
        return (defaults["runtime.profile_safety_net"] or force_profile) and _start_profile()
    if _TOOL is None:
        for tool in (4, 3, 5):  # ids 0-2 and 5 are conventionally debuggers/coverage...
            try:
                monitoring.use_tool_id(tool, "checkpointing")
            except ValueError:
                continue
            _TOOL = tool
            monitoring.register_callback(tool, monitoring.events.PY_START, _on_start)
            break
        else:
            return False
    monitoring.set_events(_TOOL, monitoring.events.PY_START)
    monitoring.restart_events()
    return True


def _stop_monitoring() -> None:
    _stop_profile()
    monitoring = _monitoring()
    if monitoring is not None and _TOOL is not None:
        monitoring.set_events(_TOOL, 0)


def start(
    name: str,
    cache_dir: Optional[str],
    track_files: bool,
    known: Optional[List[Tuple[str, int, int]]],
    track_env: bool = False,
    blind: bool = False,
) -> Recorder:
    """Begin recording a miss of ``name`` (``known``: the static graph's definitions,
    or None not to watch which code runs; ``track_env``: note the environment variables
    the project's code reads; ``blind``: the analysis of ``name`` has blind spots, so
    before Python 3.12 the profile hook watches this miss even if it is not on for all;
    ``cache_dir``: the store's folder, if it has one, never an input)."""
    _install_audit_hook()
    ignore = _environment_dirs()
    if cache_dir:
        last = _IGNORED
        if last and last[0] == cache_dir and last[1] is ignore:
            ignore = last[2]
        else:
            folder = os.path.abspath(cache_dir).rstrip(os.sep) + os.sep
            if os.path.isabs(cache_dir):  # (a relative one follows the current folder)
                _IGNORED[:] = [cache_dir, ignore, (folder, *ignore)]
            ignore = (folder, *ignore)
    if known is not None and not _start_monitoring(blind):
        known = None
    recorder = Recorder(name, ignore, track_files, known, track_env)
    if track_env:
        if not active():
            _ENV_CALLERS.clear()  # the project's roots may have changed since
        _watch_env()
    active().append(recorder)
    return recorder


_IGNORED: List[Any] = []  # [cache folder, environment folders, what start() ignores]


def stop(recorder: Recorder) -> None:
    """End the recording (also when the function raised)."""
    stack = active()
    if recorder in stack:
        stack.remove(recorder)
        if recorder.track_env:
            _unwatch_env()
    # Only a recorder with ``known`` started the monitoring (see start()).
    if recorder.known is not None and not any(r.known is not None for r in stack):
        _stop_monitoring()


def monitoring_available(blind: bool = False) -> bool:
    """Can the run-time safety net watch which code runs: Python 3.12+, or the
    (slower) profile hook when ``defaults["runtime.profile_safety_net"]`` is on, or
    for a function whose analysis has blind spots (``blind``)?"""
    if _monitoring() is not None:
        return True
    return bool(defaults["runtime.profile_safety_net"]) or blind
