"""The run-time checks of an entry, verified before a hit is served.

:mod:`checkpointing.runtime` records, while a miss runs, what the function read (input
files, listings, folders, environment variables, code found at run time); this module
holds what a hit needs of that: :func:`verify`, the digests it compares, and the flag
that keeps our own reads out of the recording. A hit of an entry with checks imports
this module, not the recorder and its hooks (0.4 ms of a new process's first hit).
The layout of the checks is described in :mod:`checkpointing.runtime`.
"""

from __future__ import annotations

import _thread  # threading's locks, without threading (issue 12, target 5)
import os
import stat as _stat
import sys

import xxhash

from .source import INDEX

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple


# Per thread: ``stack``, the recorders of the misses running (see runtime), and
# ``busy``, set while our own code computes or verifies checks.
_LOCAL = _thread._local()
# Beyond this many files, a folder argument is not checked at each hit (warned once).
MAX_FOLDER_FILES = 10_000


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


def _names_digest(names: List[str]) -> str:
    return xxhash.xxh3_128_hexdigest("\0".join(sorted(names)).encode("utf-8", "surrogateescape"))


def _entries_digest(folder: str, names: List[str]) -> str:
    """Size and mtime of each regular file of a listing (a file read by C code changes
    this, not the listing); other entries by name and kind."""
    hasher = xxhash.xxh3_128()
    for name in sorted(names):
        try:
            st = os.stat(os.path.join(folder, name))
        except OSError:
            hasher.update(f"{name}\0?\0".encode("utf-8", "surrogateescape"))
            continue
        if _stat.S_ISREG(st.st_mode):
            hasher.update(
                f"{name}\0{st.st_size}\0{st.st_mtime_ns}\0".encode("utf-8", "surrogateescape")
            )
        else:
            hasher.update(
                f"{name}\0{_stat.S_IFMT(st.st_mode)}\0".encode("utf-8", "surrogateescape")
            )
    return hasher.hexdigest()


def _visible(folder: str, names: List[str], excluded: List[str]) -> List[str]:
    """The names of a listing that count: not ``__pycache__`` (Python writes it while
    importing), not the cache directory (we write it while saving)."""
    return [
        n
        for n in names
        if n != "__pycache__" and (not excluded or os.path.join(folder, n) not in excluded)
    ]


def _tree_digest(root: str, limit: int, excluded: List[str]) -> Optional[str]:
    """Digest of (relative path, size, mtime) of every file under ``root``; None when
    there are more than ``limit`` files. Symbolic links to folders are not followed."""
    hasher = xxhash.xxh3_128()
    count = 0
    skip = len(os.path.join(root, ""))  # entry.path[skip:]: the path relative to root
    pending = [root]
    found: List[Tuple[str, int, int]] = []
    while pending:
        folder = pending.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        if entry.name != "__pycache__" and entry.path not in excluded:
                            pending.append(entry.path)
                        continue
                    try:
                        st = entry.stat()
                    except OSError:
                        continue
                    count += 1
                    if count > limit:
                        return None
                    found.append((entry.path[skip:], st.st_size, st.st_mtime_ns))
        except OSError:
            continue
    for rel, size, mtime_ns in sorted(found):
        hasher.update(f"{rel}\0{size}\0{mtime_ns}\0".encode("utf-8", "surrogateescape"))
    return hasher.hexdigest()


def _matches(pattern: str) -> List[str]:
    """The absolute paths ``pattern`` matches now (relative to the current folder)."""
    import glob  # here, not at import: glob and fnmatch compile patterns as they load

    return sorted(os.path.abspath(p) for p in glob.glob(pattern, recursive=True))


def _segment_digest(
    filename: str, first: int, last: int, module: Optional[str] = None
) -> Optional[str]:
    """The digest of lines ``first`` to ``last`` of ``filename`` as recorded.

    ``module``: the name its code was imported under when the check was made, for a
    file this process has not imported (read from the disk): naming it so saves a
    search of ``sys.modules`` per file (a millisecond for Markdown's extensions).
    """
    record = INDEX.by_filename(filename, _name=module)
    if record is None:
        return None
    # A record's text never changes (a reload records a new one): each hit of a
    # function whose run-time checks name code (Markdown's 29 segments of extensions
    # loaded by name) digests each segment once per process, not once per hit.
    known = _SEGMENTS.get((filename, first, last))
    if known is not None and known[0] is record:
        return known[1]
    digest = xxhash.xxh3_128_hexdigest(
        "".join(record.lines[first - 1 : last]).encode("utf-8", "surrogatepass")
    )
    if len(_SEGMENTS) >= _SEGMENTS_LIMIT:
        _SEGMENTS.clear()
    _SEGMENTS[(filename, first, last)] = (record, digest)
    return digest


_SEGMENTS: Dict[Tuple[str, int, int], Tuple[Any, str]] = {}


_SEGMENTS_LIMIT = 10_000


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
            spans = sorted(
                (node.lineno, node.end_lineno or node.lineno)
                for node in ast.walk(record.tree)
                if isinstance(node, ast.stmt)
            )
        except SyntaxError:
            spans = []
        _STATEMENTS[key[3]] = spans
    # ``last`` is the last line that starts code: take its statements to their end.
    start = bisect.bisect_left(spans, (first, 0))
    stop = bisect.bisect_right(spans, (last, sys.maxsize))
    last = max([last] + [end for _, end in spans[start:stop]])
    text = "".join(record.lines[first - 1 : last])
    try:
        tree = ast.parse("if 1:\n" + text if text[:1] in (" ", "\t") else text)
    except SyntaxError:
        digest = None
    else:
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if (
                type(node).__name__ in _CODE_TYPES
                and body
                and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)
            ):
                body[0] = ast.Pass()  # the docstring
        digest = xxhash.xxh3_128_hexdigest(ast.dump(tree).encode("utf-8", "surrogatepass"))
    _NORMALIZED[key] = digest
    return digest


def active() -> List[Any]:
    """The recorders of the misses running in this thread, outermost first."""
    stack = getattr(_LOCAL, "stack", None)
    if stack is None:
        stack = _LOCAL.stack = []
    return stack


class _Busy:
    """While our own code computes or verifies checks, the hooks record nothing."""

    def __enter__(self) -> None:
        _LOCAL.busy = getattr(_LOCAL, "busy", 0) + 1

    def __exit__(self, *exc: Any) -> None:
        _LOCAL.busy -= 1


_BUSY = _Busy()


def _busy() -> _Busy:
    return _BUSY


def propagate(checks: Optional[Dict[str, Any]]) -> None:
    """A nested checkpointed call was a hit: what its entry depends on, the running
    misses around it depend on too."""
    if checks:
        for recorder in active():
            recorder.inherited.append(checks)


def verify(checks: Dict[str, Any]) -> Optional[str]:
    """None if every check holds, else why not (``input file data.csv changed``).

    Cheapest first: environment variables (a dict lookup each), files (a ``stat`` each;
    their content is hashed only when size or mtime differ), listings (a listing of
    the folder and a ``stat`` of each entry), declared patterns (one ``glob`` each),
    folder trees (a ``stat`` of every file), code.
    """
    with _busy():
        return _verify(checks)


def _verify(checks: Dict[str, Any]) -> Optional[str]:
    from .source import display_path

    for (folder,) in checks.get("cwd", ()):
        if os.getcwd() != folder:
            return (
                f"it read paths relative to the current folder, which was "
                f"{display_path(folder)} and is now {display_path(os.getcwd())}"
            )
    for name, digest in checks.get("env", ()):
        value = os.environ.get(name)
        if value is None:
            if digest is not None:
                return f"environment variable {name} is now unset"
        elif digest is None:
            return f"environment variable {name} is now set"
        elif xxhash.xxh3_128_hexdigest(value.encode("utf-8", "surrogateescape")) != digest:
            return f"environment variable {name} changed"
    for path, size, mtime_ns, digest in checks.get("inputs", ()):
        try:
            st = os.stat(path)
        except OSError:
            if size < 0:
                continue  # it did not exist, and still does not
            return f"input file {display_path(path)} is gone"
        if size < 0:
            return f"input file {display_path(path)} appeared"
        if st.st_size == size and st.st_mtime_ns == mtime_ns:
            continue
        if st.st_size != size or _file_digest(path) != digest:
            return f"input file {display_path(path)} changed"
    for folder, names_digest, entries_digest, excluded in checks.get("listings", ()):
        try:
            names = _visible(folder, os.listdir(folder), excluded)
        except OSError:
            return f"folder {display_path(folder)} is gone"
        if _names_digest(names) != names_digest:
            return f"folder {display_path(folder)} changed: a file was added or removed"
        if _entries_digest(folder, names) != entries_digest:
            return f"a file in folder {display_path(folder)} changed"
    for pattern, digest in checks.get("declared", ()):
        if _names_digest(_matches(pattern)) != digest:
            return f"inputs= pattern {pattern!r} matches other files"
    for root, digest, excluded in checks.get("trees", ()):
        if _tree_digest(root, MAX_FOLDER_FILES, excluded) != digest:
            return f"a file in folder {display_path(root)} changed"
    for qualname, filename, first, last, digest, *normalized in checks.get("code", ()):
        module = qualname.partition(":")[0]
        if _segment_digest(filename, first, last, module if module != "?" else None) == digest:
            continue
        if not (
            normalized
            and normalized[0] is not None
            and _normalized_digest(filename, first, last) == normalized[0]
        ):
            return f"{qualname} changed ({display_path(filename)}:{first}; found at run time)"
    return None
