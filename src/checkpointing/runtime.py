"""What a function does while it runs: input files, side effects, code the analysis missed.

Static analysis sees code, not the world. During a miss (only then: hits are never
traced), a :class:`Recorder` notes

* the regular files the function opens for reading (an audit hook on ``open``), so
  that a later hit is served only while they are unchanged;
* the files it opens for writing and the directories it creates, which a hit would
  not recreate (a warning says so);
* on Python 3.12+, the functions of the project that actually ran
  (``sys.monitoring``, each code object reported once), so that code reached through
  names built at run time joins the entry's dependencies; before 3.12, the same with
  a profile hook, opt-in (``defaults["runtime.profile_safety_net"]``) as it slows
  every call made during a miss.

What is recorded is saved with the entry as its "checks", and :func:`verify` runs
them before a hit is served: size and mtime first, content digests only when those
differ, so an untouched input costs one ``stat``.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any, Dict, List, Optional, Set, Tuple

import xxhash

from .source import INDEX

__all__ = ["Recorder", "active", "propagate", "start", "stop", "verify"]

_LOCAL = threading.local()
_HOOK_INSTALLED = False
_HOOK_LOCK = threading.Lock()
_MODULE_SUFFIXES = (".py", ".pyc", ".pyo", ".so", ".pyd", ".pth", ".dll", ".dylib")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


class Recorder:
    """What one miss of one function did; see the module docs."""

    def __init__(self, name: str, ignore_dirs: Tuple[str, ...], track_files: bool,
                 known: Optional[List[Tuple[str, int, int]]]) -> None:
        self.name = name
        self.ignore_dirs = ignore_dirs
        self.track_files = track_files
        self.reads: Dict[str, None] = {}
        self.writes: Dict[str, None] = {}
        self.known = known  # (file, first line, last line) of the static graph's nodes
        self.executed: Dict[Any, None] = {}
        self.inherited: List[Dict[str, Any]] = []  # checks of nested hits

    def checks(self) -> Dict[str, Any]:
        """The checks to save with the entry (empty when there is nothing to check)."""
        out: Dict[str, Any] = {}
        inputs = [_file_state(path) for path in self.reads if path not in self.writes]
        inputs = [state for state in inputs if state is not None]
        code = [state for state in (_code_state(c) for c in self._extra_code())
                if state is not None]
        for nested in self.inherited:
            inputs.extend(nested.get("inputs", ()))
            code.extend(nested.get("code", ()))
        if inputs:
            out["inputs"] = _unique(inputs)
        if code:
            out["code"] = _unique(code)
        return out

    def _extra_code(self) -> List[Any]:
        if not self.executed or self.known is None:
            return []
        extra = []
        for code in self.executed:
            filename, line = code.co_filename, code.co_firstlineno
            if not any(f == filename and first <= line <= last
                       for f, first, last in self.known):
                extra.append(code)
        return extra


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


def _file_digest(path: str) -> Optional[str]:
    hasher = xxhash.xxh3_128()
    try:
        with open(path, "rb", buffering=0) as handle:
            while True:
                chunk = handle.read(1 << 20)
                if not chunk:
                    break
                hasher.update(chunk)
    except OSError:
        return None
    return hasher.hexdigest()


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


def _segment_digest(filename: str, first: int, last: int) -> Optional[str]:
    record = INDEX.by_filename(filename)
    if record is None:
        return None
    return xxhash.xxh3_128_hexdigest("".join(record.lines[first - 1:last]).encode(
        "utf-8", "surrogatepass"))


_CODE_TYPES = ("FunctionDef", "AsyncFunctionDef", "ClassDef", "Module")
_NORMALIZED: Dict[Tuple[str, int, int, str], Optional[str]] = {}
_STATEMENTS: Dict[str, List[Tuple[int, int]]] = {}  # file digest -> statement line spans


def _normalized_digest(filename: str, first: int, last: int) -> Optional[str]:
    """Digest of the code in lines ``first``-``last`` without comments, layout and
    docstrings (its syntax tree), or None where the lines do not parse alone.

    A hit compares the text first; only a segment whose text changed is parsed (once
    per process), so that a comment or a docstring edit does not re-run the function.
    """
    import ast
    import bisect

    record = INDEX.by_filename(filename)
    if record is None:
        return None
    key = (filename, first, last, record.digest.hex())
    if key in _NORMALIZED:
        return _NORMALIZED[key]
    spans = _STATEMENTS.get(key[3])
    if spans is None:
        try:
            spans = sorted((node.lineno, node.end_lineno or node.lineno)
                           for node in ast.walk(record.tree) if isinstance(node, ast.stmt))
        except SyntaxError:
            spans = []
        _STATEMENTS[key[3]] = spans
    # ``last`` is the last line that starts code: take its statements to their end.
    start = bisect.bisect_left(spans, (first, 0))
    stop = bisect.bisect_right(spans, (last, sys.maxsize))
    last = max([last] + [end for _, end in spans[start:stop]])
    text = "".join(record.lines[first - 1:last])
    try:
        tree = ast.parse("if 1:\n" + text if text[:1] in (" ", "\t") else text)
    except SyntaxError:
        digest = None
    else:
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (type(node).__name__ in _CODE_TYPES and body and isinstance(body[0], ast.Expr)
                    and isinstance(body[0].value, ast.Constant)
                    and isinstance(body[0].value.value, str)):
                body[0] = ast.Pass()  # the docstring
        digest = xxhash.xxh3_128_hexdigest(ast.dump(tree).encode("utf-8", "surrogatepass"))
    _NORMALIZED[key] = digest
    return digest


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
    qualname = f"{module or '?'}:{code.co_qualname if hasattr(code, 'co_qualname') else code.co_name}"
    return [qualname, code.co_filename, first, last, digest,
            _normalized_digest(code.co_filename, first, last)]


# -- the hooks --------------------------------------------------------------------------

def active() -> List[Recorder]:
    """The recorders of the misses running in this thread, outermost first."""
    stack = getattr(_LOCAL, "stack", None)
    if stack is None:
        stack = _LOCAL.stack = []
    return stack


def _audit(event: str, args: Tuple[Any, ...]) -> None:
    stack = getattr(_LOCAL, "stack", None)
    if not stack:
        return
    if event == "open":
        path, mode, flags = args
        writing = ("w" in mode or "a" in mode or "x" in mode or "+" in mode) \
            if isinstance(mode, str) else bool(flags & _WRITE_FLAGS)
    elif event == "os.mkdir":
        path, writing = args[0], True
    else:
        return
    if isinstance(path, int) or path is None:
        return
    try:
        path = os.path.abspath(os.fsdecode(path))
    except (TypeError, ValueError):
        return
    if path.endswith(_MODULE_SUFFIXES) or "__pycache__" in path:
        return  # the interpreter importing a module
    for recorder in stack:
        if path.startswith(recorder.ignore_dirs):
            continue
        if writing:
            recorder.writes[path] = None
        elif recorder.track_files:
            recorder.reads[path] = None


def _install_audit_hook() -> None:
    global _HOOK_INSTALLED
    with _HOOK_LOCK:
        if not _HOOK_INSTALLED:
            sys.addaudithook(_audit)  # cannot be removed: it returns at once when idle
            _HOOK_INSTALLED = True


def _environment_dirs() -> Tuple[str, ...]:
    dirs = {os.path.join(p, "lib") for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    dirs.update(p for p in sys.path if "site-packages" in p or "dist-packages" in p)
    return tuple(d.rstrip(os.sep) + os.sep for d in dirs if d)


# sys.monitoring (3.12+): which project code runs during a miss.
_TOOL: Optional[int] = None


def _monitoring() -> Any:
    return getattr(sys, "monitoring", None)


def _on_start(code: Any, offset: int) -> Any:
    stack = getattr(_LOCAL, "stack", None)
    if stack and not code.co_filename.startswith("<frozen") \
            and INDEX.is_project_path(code.co_filename):
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
    if not _PREVIOUS_PROFILE:
        _PROFILED.clear()
        _PREVIOUS_PROFILE.append(sys.getprofile())
        sys.setprofile(_profile)
    return True


def _stop_profile() -> None:
    if _PREVIOUS_PROFILE:
        sys.setprofile(_PREVIOUS_PROFILE.pop())


def _start_monitoring() -> bool:
    global _TOOL
    monitoring = _monitoring()
    if monitoring is None:
        from .config import defaults

        return defaults["runtime.profile_safety_net"] and _start_profile()
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


def start(name: str, cache_dir: str, track_files: bool,
          known: Optional[List[Tuple[str, int, int]]]) -> Recorder:
    """Begin recording a miss of ``name`` (``known``: the static graph's definitions,
    or None not to watch which code runs)."""
    _install_audit_hook()
    ignore = (os.path.abspath(cache_dir).rstrip(os.sep) + os.sep,) + _environment_dirs()
    if known is not None and not _start_monitoring():
        known = None
    recorder = Recorder(name, ignore, track_files, known)
    active().append(recorder)
    return recorder


def stop(recorder: Recorder) -> None:
    """End the recording (also when the function raised)."""
    stack = active()
    if recorder in stack:
        stack.remove(recorder)
    if not any(r.known is not None for r in stack):
        _stop_monitoring()


def propagate(checks: Optional[Dict[str, Any]]) -> None:
    """A nested checkpointed call was a hit: what its entry depends on, the running
    misses around it depend on too."""
    if checks:
        for recorder in active():
            recorder.inherited.append(checks)


def verify(checks: Dict[str, Any]) -> Optional[str]:
    """None if every check holds, else why not (``input file data.csv changed``)."""
    from .explain import display_path

    for path, size, mtime_ns, digest in checks.get("inputs", ()):
        try:
            st = os.stat(path)
        except OSError:
            return f"input file {display_path(path)} is gone"
        if st.st_size == size and st.st_mtime_ns == mtime_ns:
            continue
        if st.st_size != size or _file_digest(path) != digest:
            return f"input file {display_path(path)} changed"
    for qualname, filename, first, last, digest, *normalized in checks.get("code", ()):
        if _segment_digest(filename, first, last) == digest:
            continue
        if not (normalized and normalized[0] is not None
                and _normalized_digest(filename, first, last) == normalized[0]):
            return (f"{qualname} changed ({display_path(filename)}:{first}; found at run "
                    f"time)")
    return None


def monitoring_available() -> bool:
    """Can the run-time safety net watch which code runs: Python 3.12+, or the
    (slower) profile hook when ``defaults["runtime.profile_safety_net"]`` is on?"""
    if _monitoring() is not None:
        return True
    from .config import defaults

    return bool(defaults["runtime.profile_safety_net"])
