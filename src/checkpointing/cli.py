"""The ``checkpointing`` command (also ``python -m checkpointing``).

This module owns the command line: listing, inspecting, explaining, pruning and
verifying a cache directory, over the same public functions a program uses. Exit
codes: 0 ok, 1 problems found (or a deletion declined), 2 usage errors.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import re
import stat
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, NoReturn, Optional, Sequence, Tuple

from .config import defaults
from .errors import ConfigurationError
from .store import EntryInfo, PickleFileCache

__all__ = ["main"]

OK, PROBLEMS, USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad command line: reported on stderr with exit code 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line (the cause and where to look)."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        self.exit(USAGE, f"{self.prog}: {_shown(message)} (see {self.prog} --help)\n")


# -- helpers -------------------------------------------------------------------------


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


_MAX_SIZE = 1 << 60  # 1 EiB: anything larger is a typo


def _parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*", text, re.I)
    if not match:
        raise UsageError(f"--max-size {_shown(text)} is not a size; write e.g. 500MB or 5GB")
    number, unit = float(match.group(1)), match.group(2).lower().rstrip("ib")
    size = number * 1024 ** "bkmgt".index(unit or "b")
    if size > _MAX_SIZE:
        raise UsageError(f"--max-size {_shown(text)} is larger than 1 EB; write e.g. 500MB or 5GB")
    return int(size)


_MAX_AGE = 1000 * 365 * 86400.0


def _parse_age(text: str) -> float:
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text, re.I)
    if not match:
        raise UsageError(f"--older-than {_shown(text)} is not an age; write e.g. 12h, 30d or 2w")
    seconds = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    return min(float(match.group(1)) * seconds[match.group(2).lower()], _MAX_AGE)


def _non_negative(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{_shown(text)} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative; give 0 or more")
    return value


_UNPRINTABLE = re.compile(r"[^\x20-\x7e]")


def _shown(text: Any) -> str:
    """``text`` safe to print on a terminal: printable characters as they are; control
    characters (escape sequences) as Python escapes; bytes that were not UTF-8 (the
    surrogates ``os.fsdecode`` makes) as ``\\xNN``; so no name from a cache or a
    command line can drive the terminal or break the output's encoding."""
    text = str(text)
    if not _UNPRINTABLE.search(text):
        return text
    out = []
    for char in text:
        code = ord(char)
        if 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif 0xD800 <= code <= 0xDFFF:
            out.append(f"\\u{code:04x}")
        elif char.isprintable():
            out.append(char)
        else:
            out.append(char.encode("unicode_escape").decode("ascii"))
    return "".join(out)


def _when(timestamp: Optional[float]) -> str:
    if not timestamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(timestamp))


def _last_used(entry: EntryInfo) -> float:
    try:
        stat = os.stat(entry.path)
    except OSError:
        return 0.0
    return max(stat.st_atime, stat.st_mtime)


class _Progress:
    """A counter on stderr while walking a big cache, only on a terminal."""

    def __init__(self, what: str) -> None:
        self.what = what
        self.count = 0
        self.enabled = sys.stderr.isatty()
        self.last = time.monotonic()

    def step(self) -> None:
        self.count += 1
        if self.enabled and time.monotonic() - self.last > 0.2:
            self.last = time.monotonic()
            sys.stderr.write(f"\r{self.what}: {self.count}")
            sys.stderr.flush()

    def done(self) -> None:
        if self.enabled and self.count:
            sys.stderr.write("\r" + " " * (len(self.what) + 12) + "\r")
            sys.stderr.flush()


def _entries(cache: PickleFileCache) -> List[EntryInfo]:
    progress = _Progress("reading entries")
    out = []
    for entry in cache.iter_entries():
        out.append(entry)
        progress.step()
    progress.done()
    return out


def _function_of(entry: EntryInfo) -> str:
    return str(entry.metadata.get("function") or "?")


def _shown_function(entry: EntryInfo) -> str:
    return _shown(_function_of(entry))


def _matches(function: str, pattern: str) -> bool:
    """``pkg.mod:func``, or just ``func`` / ``Class.method``."""
    return function == pattern or function.partition(":")[2] == pattern


def _confirm(args: argparse.Namespace, victims: Sequence[EntryInfo], verb: str) -> bool:
    if not victims:
        return False
    for entry in victims:
        print(f"  {verb} {_shown(entry.context_id)}  {_shown_function(entry)}  {_size(entry.size)}")
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print(
            f"not deleting: pass --yes to {verb} {len(victims)} entries without asking",
            file=sys.stderr,
        )
        return False
    answer = input(f"{verb} {len(victims)} entries ({_size(sum(e.size for e in victims))})? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


def _delete(args: argparse.Namespace, cache: PickleFileCache, victims: Sequence[EntryInfo]) -> int:
    """List ``victims``, ask (unless --yes), delete them; the exit code."""
    if not _confirm(args, victims, "delete"):
        return PROBLEMS
    deleted = sum(cache.delete(e.context_id) for e in victims)
    cache.remove_stale_temporaries()
    print(f"deleted {deleted} entries ({_size(sum(e.size for e in victims))})")
    return OK


def _load_function(spec: str) -> Callable[..., Any]:
    """``pkg.mod:func`` or ``pkg.mod:Class.method`` (imported from the current directory)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"{_shown(spec)} is not MODULE:FUNCTION; write e.g. pipeline.train:fit")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise UsageError(
            f"cannot import {module_name!r}: {_shown(exc)}; run the "
            f"command from your project's directory"
        ) from None
    except SyntaxError as exc:
        raise UsageError(
            f"cannot import {module_name!r}: {_shown(exc.filename)}:"
            f"{exc.lineno}: syntax error: {_shown(exc.msg)}"
        ) from None
    except BaseException as exc:  # the module's own code raised (or exited) at import
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise UsageError(
            f"cannot import {module_name!r}: importing it raised "
            f"{type(exc).__name__}: {_shown(exc)}"
        ) from None
    for part in attribute.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise UsageError(f"{module_name!r} has no {attribute!r}") from None
    if not callable(obj):
        raise UsageError(f"{_shown(spec)} is not a function")
    return obj


def _emit(args: argparse.Namespace, data: Any, text: Callable[[], str]) -> None:
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text())


# -- commands ------------------------------------------------------------------------


def cmd_ls(args: argparse.Namespace, cache: PickleFileCache) -> int:
    groups: Dict[str, List[EntryInfo]] = {}
    for entry in _entries(cache):
        groups.setdefault(_function_of(entry), []).append(entry)
    rows = [
        {
            "function": _shown(name),
            "entries": len(entries),
            "size": sum(e.size for e in entries),
            "last_used": max(_last_used(e) for e in entries),
        }
        for name, entries in sorted(groups.items())
    ]

    def text() -> str:
        if not rows:
            return f"no entries in {_shown(cache.directory)}"
        width = max(len(r["function"]) for r in rows)
        lines = [f"{'function':<{width}}  entries      size  last used"]
        for r in rows:
            lines.append(
                f"{r['function']:<{width}}  {r['entries']:>7}  {_size(r['size']):>8}"
                f"  {_when(r['last_used'])}"
            )
        total = sum(r["size"] for r in rows)
        lines.append(
            f"{len(rows)} functions, {sum(r['entries'] for r in rows)} entries, "
            f"{_size(total)} in {cache.directory}"
        )
        return "\n".join(lines)

    _emit(args, rows, text)
    legacy = cache.legacy_files()
    if legacy:  # after the table; on stderr under --json, which keeps its shape
        print(_legacy_note(cache, legacy), file=sys.stderr if args.json else sys.stdout)
    return OK


def cmd_show(args: argparse.Namespace, cache: PickleFileCache) -> int:
    entries = [e for e in _entries(cache) if _matches(_function_of(e), args.function)]
    data = [
        {
            "key": _shown(e.context_id),
            "function": _shown_function(e),
            "size": e.size,
            "created": e.metadata.get("created"),
            "run_seconds": e.metadata.get("run_seconds"),
            "last_used": _last_used(e),
            "path": e.path,
            "arguments": (e.metadata.get("fingerprint") or {}).get("arguments"),
        }
        for e in sorted(entries, key=lambda e: e.metadata.get("created") or 0)
    ]

    def text() -> str:
        if not data:
            return f"no entries of {_shown(args.function)} in {_shown(cache.directory)}"
        lines = [f"{len(data)} entries of {data[0]['function']}:"]
        for d in data:
            run = d["run_seconds"]
            lines.append(
                f"  {d['key']}  created {_when(d['created'])}  ran {run:.2f}s  {_size(d['size'])}"
                if isinstance(run, (int, float))
                else f"  {d['key']}  created {_when(d['created'])}  {_size(d['size'])}"
            )
        return "\n".join(lines)

    _emit(args, data, text)
    return OK if data else PROBLEMS


def cmd_graph(args: argparse.Namespace, cache: PickleFileCache) -> int:
    from .render import graph

    g = graph(_load_function(args.function))
    fmt = args.format
    if args.output:
        if fmt == "text" and os.path.splitext(args.output)[1] == "":
            raise UsageError("give -o a suffix (.txt, .dot, .mmd, .svg, .png)")
        try:
            g.save(args.output)
        except (ValueError, RuntimeError) as exc:
            raise UsageError(str(exc)) from None
        print(f"wrote {args.output}", file=sys.stderr)
        return OK
    if args.json:
        import networkx as nx

        print(json.dumps(nx.node_link_data(g.nx), indent=2, default=str))
        return OK
    renderers = {"text": lambda: str(g), "dot": g.to_dot, "mermaid": g.to_mermaid, "svg": g.to_svg}
    try:
        print(renderers[fmt]().rstrip("\n"))
    except RuntimeError as exc:
        raise UsageError(str(exc)) from None
    return OK


def cmd_why(args: argparse.Namespace, cache: PickleFileCache) -> int:
    from .explain import explain

    func = _load_function(args.function)
    call_args, call_kwargs = _parse_call(args.arguments)
    try:
        result = explain(func, *call_args, **call_kwargs)
    except TypeError as exc:
        raise UsageError(str(exc)) from None
    _emit(args, result.to_dict(), lambda: str(result))
    return OK


def _parse_call(text: Optional[str]) -> Tuple[List[Any], Dict[str, Any]]:
    if not text:
        return [], {}
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise UsageError(
            f"ARGS must be JSON ({exc}); e.g. '[1, 2]', '{{\"lr\": 0.1}}' or "
            f'\'{{"args": [1], "kwargs": {{"lr": 0.1}}}}\''
        ) from None
    if isinstance(value, list):
        return value, {}
    if isinstance(value, dict) and set(value) <= {"args", "kwargs"} and value:
        return list(value.get("args", [])), dict(value.get("kwargs", {}))
    if isinstance(value, dict):
        return [], value
    return [value], {}


def cmd_clear(args: argparse.Namespace, cache: PickleFileCache) -> int:
    entries = _entries(cache)
    victims = [
        e for e in entries if args.function is None or _matches(_function_of(e), args.function)
    ]
    legacy = cache.legacy_files() if args.function is None else []
    if not victims and not legacy:
        removed = cache.remove_stale_temporaries()
        print(
            "nothing to delete"
            + (f" (removed {removed} leftover temporary files)" if removed else "")
        )
        return OK
    code = _delete(args, cache, victims) if victims else OK
    if legacy:
        code = max(code, _delete_legacy(args, cache, legacy))
    return code


def _legacy_note(cache: PickleFileCache, legacy: Sequence[str]) -> str:
    """The line that ls and verify print about the files of checkpointing 1.0."""
    return (
        f"{len(legacy)} files of checkpointing 1.0 ({_size(_total_size(legacy))}) are in "
        f"{_shown(cache.directory)}; this version does not use them: "
        f"'checkpointing clear' removes them"
    )


def _total_size(paths: Sequence[str]) -> int:
    total = 0
    for path in paths:
        try:
            total += os.lstat(path).st_size
        except OSError:
            pass
    return total


def _delete_legacy(args: argparse.Namespace, cache: PickleFileCache, legacy: Sequence[str]) -> int:
    """Ask (unless --yes), then remove the result files of checkpointing 1.0."""
    what = f"{len(legacy)} files of checkpointing 1.0 ({_size(_total_size(legacy))})"
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"not deleting: pass --yes to delete {what}", file=sys.stderr)
            return PROBLEMS
        if input(f"delete {what}? [y/N] ").strip().lower() not in ("y", "yes"):
            return PROBLEMS
    removed = cache.remove_legacy_files()
    print(f"deleted {removed} files of checkpointing 1.0")
    return OK


def cmd_prune(args: argparse.Namespace, cache: PickleFileCache) -> int:
    if args.older_than is None and args.max_size is None and args.keep_latest is None:
        raise UsageError("prune needs --older-than, --max-size or --keep-latest")
    age = None if args.older_than is None else _parse_age(args.older_than)
    limit = None if args.max_size is None else _parse_size(args.max_size)
    entries = sorted(_entries(cache), key=_last_used, reverse=True)  # most recent first
    doomed: Dict[str, EntryInfo] = {}
    if age is not None:
        cutoff = time.time() - age
        doomed.update((e.path, e) for e in entries if _last_used(e) < cutoff)
    if args.keep_latest is not None:
        seen: Dict[str, int] = {}
        for e in entries:
            seen[_function_of(e)] = seen.get(_function_of(e), 0) + 1
            if seen[_function_of(e)] > args.keep_latest:
                doomed[e.path] = e
    if limit is not None:
        total = 0
        for e in entries:
            if e.path in doomed:
                continue
            total += e.size
            if total > limit:
                doomed[e.path] = e
    victims = list(doomed.values())
    if not victims:
        removed = 0 if args.dry_run else cache.remove_stale_temporaries()
        print(
            "nothing to prune"
            + (f" (removed {removed} leftover temporary files)" if removed else "")
        )
        return OK
    if args.dry_run:
        for e in victims:
            print(f"  would delete {_shown(e.context_id)}  {_shown_function(e)}  {_size(e.size)}")
        print(f"would delete {len(victims)} entries ({_size(sum(e.size for e in victims))})")
        return OK
    return _delete(args, cache, victims)


def _problem(path: str, kind: str, reason: str) -> Dict[str, str]:
    return {"path": path, "kind": kind, "reason": reason}


def _check_temporaries(cache: PickleFileCache) -> List[Dict[str, str]]:
    from .store import _locked

    out = []
    now = time.time()
    for path in cache.temporaries():
        try:
            status = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISREG(status.st_mode):
            out.append(
                _problem(path, "temporary", "not a regular file (left alone; remove it by hand)")
            )
        elif not _locked(path):
            out.append(
                _problem(
                    path,
                    "temporary",
                    f"left by a writer that did not finish "
                    f"({_size(status.st_size)}, {now - status.st_mtime:.0f}s "
                    f"old)",
                )
            )
    return out


def _check_markers(cache: PickleFileCache) -> List[Dict[str, str]]:
    from .store import CACHEDIR_TAG, _Corrupt, _read_regular

    out = []
    for name, text in (("CACHEDIR.TAG", CACHEDIR_TAG), (".gitignore", "*\n")):
        path = os.path.join(cache.directory, name)
        if not os.path.lexists(path):
            continue
        try:
            data = _read_regular(path, 1 << 16)
        except (OSError, _Corrupt) as exc:
            out.append(_problem(path, "marker", str(exc)))
            continue
        if data != text.encode():
            out.append(_problem(path, "marker", "its content is not the one checkpointing writes"))
    return out


def _check_json_files(cache: PickleFileCache) -> List[Dict[str, str]]:
    """Stored analysis plans and histories: each must be readable and what it claims."""
    from .keyplan import NOT_STORED_SUFFIX, read_plan_file
    from .store import _Corrupt, read_history_file

    out = []
    for folder, kind in (("analysis", "analysis"), ("functions", "history")):
        directory = os.path.join(cache.directory, folder)
        try:
            names = sorted(os.listdir(directory))
        except OSError:
            continue
        for name in names:
            path = os.path.join(directory, name)
            if name.startswith(".") or (kind == "analysis" and name.endswith(NOT_STORED_SUFFIX)):
                continue  # notes of analyses not stored: reported on their own
            try:
                if kind == "analysis":
                    read_plan_file(path)
                    continue
                data = read_history_file(path)
                function = data.get("function") if isinstance(data, dict) else None
                if (
                    not isinstance(function, str)
                    or os.path.basename(cache._history_path(function)) != name
                ):
                    out.append(_problem(path, kind, "misplaced or not a history file"))
            except (OSError, ValueError, _Corrupt) as exc:
                out.append(_problem(path, kind, str(exc)))
    return out


_DEEP_CHILD = """
import json, os, sys
results = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)  # what unpickling prints must not mix with the results
sys.path.insert(0, os.getcwd())
from checkpointing.store.remote import open_store
cache = open_store(sys.argv[1])  # a folder, or the URL of a shared store
for path in json.loads(sys.stdin.read()):
    results.write(json.dumps(["start", path]) + "\\n"); results.flush()
    try:
        cache.load_file(path)
        reason = None
    except BaseException as exc:
        reason = f"{type(exc).__name__}: {exc}"
    results.write(json.dumps(["done", path, reason]) + "\\n"); results.flush()
"""


def _deep_check(cache: PickleFileCache, paths: List[str]) -> List[Dict[str, str]]:
    """Unpickle each entry in a child process (with the same trust and signature rules
    as a read), so that an entry that crashes, exits or cannot be loaded is reported
    and never harms this process."""
    import subprocess

    out = []
    remaining = list(paths)
    while remaining:
        child = subprocess.run(
            [sys.executable, "-c", _DEEP_CHILD, getattr(cache, "url", cache.directory)],
            input=json.dumps(remaining).encode(),
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
        done, started = set(), None
        for line in child.stdout.decode("utf-8", "replace").splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if record[0] == "start":
                started = record[1]
            elif record[0] == "done":
                done.add(record[1])
                started = None
                if record[2] is not None:
                    out.append(_problem(record[1], "entry", f"cannot be loaded: {record[2]}"))
        if started is None:
            break  # every entry was tried
        out.append(
            _problem(
                started, "entry", f"loading it ended the process (exit code {child.returncode})"
            )
        )
        remaining = remaining[remaining.index(started) + 1 :]
    return out


def cmd_verify(args: argparse.Namespace, cache: PickleFileCache) -> int:
    progress = _Progress("verifying")
    problems = []
    files = cache.entry_files()
    for path in files:
        reason = cache.check_file(path)
        if reason is not None:
            problems.append(_problem(path, "entry", reason))
        progress.step()
    progress.done()
    if args.deep:
        bad = {p["path"] for p in problems}
        problems += _deep_check(cache, [p for p in files if p not in bad])
    corrupt = len(problems)
    problems += _check_temporaries(cache) + _check_markers(cache) + _check_json_files(cache)
    removed = 0
    if problems and args.remove:
        from .store import _unlink_in

        for problem in problems:
            if problem["kind"] == "temporary" and problem["reason"].startswith("not a"):
                continue  # a folder named like a temporary: not ours to delete
            try:
                _unlink_in(*os.path.split(problem["path"]))
                removed += 1
            except OSError:
                pass

    from .keyplan import analyses_not_stored

    not_stored = analyses_not_stored(os.path.join(cache.directory, "analysis"))
    legacy = cache.legacy_files()

    def text() -> str:
        lines = [f"  {p['kind']}: {_shown(p['path'])}: {_shown(p['reason'])}" for p in problems]
        others = len(problems) - corrupt
        lines.append(
            f"{len(files)} entries checked{' (unpickled)' if args.deep else ''}, "
            f"{corrupt} corrupt"
            + (f", {others} other problems" if others else "")
            + (
                f", {removed} removed"
                if args.remove
                else ("; run with --remove to delete them" if problems else "")
            )
        )
        lines += [
            f"  analysis not stored: {_shown(n['function'])}: {_shown(n['reason'])}"
            for n in not_stored
        ]
        if not_stored:
            lines.append(
                f"{len(not_stored)} functions are analysed again by each new process "
                "(their first call costs an analysis)"
            )
        if legacy:
            lines.append(_legacy_note(cache, legacy))
        return "\n".join(lines)

    _emit(
        args,
        {
            "checked": len(files),
            "corrupt": problems[:corrupt],
            "other": problems[corrupt:],
            "removed": removed,
            "analysis_not_stored": not_stored,
            "legacy_1_0_files": len(legacy),
        },
        text,
    )
    return PROBLEMS if problems and (not args.remove or removed < len(problems)) else OK


# -- the parser ------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--dir",
        default=None,
        help="the cache directory (default: defaults['cache.filesystem."
        "directory'], ./.checkpointing)",
    )
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = _Parser(
        prog="checkpointing",
        parents=[common],
        description="Inspect and maintain a checkpointing cache directory.",
        epilog="Example: checkpointing ls --dir .checkpointing",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    def command(name: str, helptext: str, example: str) -> argparse.ArgumentParser:
        return sub.add_parser(
            name,
            parents=[common],
            help=helptext,
            description=helptext,
            epilog=f"Example: {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    command(
        "ls", "list the functions with entries: count, total size, last used", "checkpointing ls"
    )
    p = command(
        "show",
        "list the entries of one function with their metadata",
        "checkpointing show pipeline.train:fit_line",
    )
    p.add_argument("function", help="pkg.mod:func (or just func)")
    p = command(
        "graph",
        "draw what a function's key depends on",
        "checkpointing graph pipeline.train:fit_line --format mermaid",
    )
    p.add_argument("function", help="MODULE:FUNC, imported from the current directory")
    p.add_argument("--format", choices=["text", "dot", "mermaid", "svg"], default="text")
    p.add_argument(
        "-o",
        "--output",
        help="write to a file; the suffix picks the format (.txt .dot .mmd .svg .png)",
    )
    p = command(
        "why",
        "say whether a call would be answered from the cache, and why not",
        "checkpointing why pipeline.train:fit_line '{\"seed\": 42}'",
    )
    p.add_argument("function", help="MODULE:FUNC, imported from the current directory")
    p.add_argument(
        "arguments",
        nargs="?",
        help="the call's arguments as JSON: a list "
        '(positional), an object (keywords) or {"args": [...], "kwargs": {...}}',
    )
    p = command(
        "clear",
        "delete all entries, or those of one function",
        "checkpointing clear pipeline.train:fit_line --yes",
    )
    p.add_argument("function", nargs="?", help="pkg.mod:func (or just func); all if omitted")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p = command(
        "prune",
        "delete old or excess entries",
        "checkpointing prune --older-than 30d --max-size 5GB --keep-latest 3 --dry-run",
    )
    p.add_argument("--older-than", help="unused for this long: 12h, 30d, 2w")
    p.add_argument(
        "--max-size", help="keep the most recently used entries within this total size: 500MB, 5GB"
    )
    p.add_argument(
        "--keep-latest", type=_non_negative, help="keep this many entries per function (0 or more)"
    )
    p.add_argument("--dry-run", action="store_true", help="list, delete nothing")
    p.add_argument("--yes", action="store_true", help="do not ask")
    p = command(
        "verify",
        "read every entry and report corrupt, misplaced or untrusted "
        "ones, leftover temporary files and damaged plans or histories",
        "checkpointing verify --remove",
    )
    p.add_argument(
        "--remove", action="store_true", help="delete the corrupt entries and leftover files"
    )
    p.add_argument(
        "--deep",
        action="store_true",
        help="also unpickle each entry (in a child process, with the same "
        "safety rules) and report those that cannot be loaded",
    )
    return parser


COMMANDS: Dict[str, Callable[[argparse.Namespace, PickleFileCache], int]] = {
    "ls": cmd_ls,
    "show": cmd_show,
    "graph": cmd_graph,
    "why": cmd_why,
    "clear": cmd_clear,
    "prune": cmd_prune,
    "verify": cmd_verify,
}


def main(argv: Optional[Iterable[str]] = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    try:
        args = parser.parse_args(None if argv is None else list(argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    directory = args.dir or defaults["cache.filesystem.directory"]
    try:
        cache = _open_cache(directory)
        return COMMANDS[args.command](args, cache)
    except UsageError as exc:
        print(f"checkpointing {args.command}: {exc}", file=sys.stderr)
        return USAGE
    except KeyboardInterrupt:
        return 130
    except (OSError, ConfigurationError, UnicodeError) as exc:
        print(f"checkpointing {args.command}: {_shown(_describe(exc))}", file=sys.stderr)
        return USAGE
    except Exception as exc:
        if os.environ.get("CHECKPOINTING_DEBUG"):
            raise
        print(
            f"checkpointing {args.command}: internal error ({type(exc).__name__}: "
            f"{_shown(exc)}); please report it (CHECKPOINTING_DEBUG=1 shows the "
            f"traceback)",
            file=sys.stderr,
        )
        return USAGE


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return f"{type(exc).__name__}: {exc}"


def _open_cache(directory: Any) -> PickleFileCache:
    """The cache at ``directory``, once it is known to be a readable folder (or absent:
    an empty cache). A URL (``s3://bucket/prefix``) opens the shared store there."""
    if isinstance(directory, str) and "://" in directory:
        from .store.remote import open_store

        return open_store(directory)  # type: ignore[return-value]
    cache = PickleFileCache(directory)
    path = cache.directory
    if os.path.lexists(path) and not os.path.isdir(path):
        raise UsageError(
            f"--dir {_shown(path)} is a file, not a cache folder; give the "
            f"folder that holds entries/ (e.g. .checkpointing)"
        )
    if os.path.isdir(path) and not os.access(path, os.R_OK | os.X_OK):
        raise UsageError(
            f"cannot read the cache folder {_shown(path)}: permission "
            f"denied; run as its owner or give another --dir"
        )
    return cache


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
