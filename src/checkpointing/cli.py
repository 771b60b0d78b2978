"""The ``checkpointing`` command (also ``python -m checkpointing``).

This module owns the command line: listing, inspecting, explaining, pruning and
verifying a cache directory, over the same public functions a program uses. Exit
codes: 0 ok, 1 problems found (a deletion declined, no such function or cache folder),
2 usage errors. ``--dir`` and ``--json`` work before or after the command; with
``--json`` every outcome prints JSON on stdout (an error as ``{"error": ...}``).

``graph`` and ``why`` answer from the stored records where they suffice, without
importing the user's module: ``why pkg.mod:f`` without arguments from the function's
history and its stored analysis (whose files are compared with the disk), ``graph``
from the stored analysis when importing the module would run code (or with
``--stored``), if the files it covers are unchanged. Otherwise they, and ``accept``,
import the module: they say so on stderr first, and refuse a module that does work at
import (a call, a loop, a ``with`` at its top level) without an
``if __name__ == "__main__":`` guard unless ``--import`` is given: importing such a
script would run it.

Why one module of about 1,400 lines: each command is a small function over the same
parsing, output (text or JSON) and exit-code conventions; splitting it into a
``cli/`` package of one module per command group is the next step, left for a
session in which no one else adds commands.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import importlib.util
import json
import os
import re
import stat
import sys
import time
from typing import Any, Callable, Dict, Iterable, List, NoReturn, Optional, Sequence, Tuple

from .config import defaults, parse_age, parse_size
from .errors import ConfigurationError
from .source import display_path
from .store import EntryInfo, PickleFileCache
from .store.evict import Usage, last_used, remove_entries, select, usage_log_for

__all__ = ["main"]

OK, PROBLEMS, USAGE = 0, 1, 2


class UsageError(Exception):
    """A bad command line: reported on stderr with exit code 2."""


class NotFound(Exception):
    """No such cache folder or function: reported on stderr with exit code 1."""


class _Parser(argparse.ArgumentParser):
    """argparse, with a bad argument reported in one line (the cause and where to look)."""

    def error(self, message: str) -> "NoReturn":  # type: ignore[override]
        raise _BadCommandLine(f"{self.prog}: {_shown(message)} (see {self.prog} --help)")


class _BadCommandLine(Exception):
    """argparse refused the command line (reported by :func:`main`, exit code 2)."""


# -- helpers -------------------------------------------------------------------------


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"  # pragma: no cover


def _parse_size(text: str) -> int:
    try:
        return parse_size(text, "--max-size")
    except ConfigurationError:
        raise UsageError(
            f"--max-size {_shown(text)} is not a size; write e.g. 500MB or 5GB"
        ) from None


def _parse_age(text: str) -> float:
    try:
        return parse_age(text, "--older-than")
    except ConfigurationError:
        raise UsageError(
            f"--older-than {_shown(text)} is not an age; write e.g. 12h, 30d or 2w"
        ) from None


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


def _usage(cache: PickleFileCache) -> Dict[str, Usage]:
    """The library's own records of use (never the files' atime)."""
    return usage_log_for(cache).read()


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
    if not args.json:
        for entry in victims:
            shown = f"{_shown(entry.key)}  {_shown_function(entry)}  {_size(entry.size)}"
            print(f"  {verb} {shown}")
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


def _entry_row(entry: EntryInfo, usage: Dict[str, Usage]) -> Dict[str, Any]:
    return {
        "key": _shown(entry.key),
        "function": _shown_function(entry),
        "size": entry.size,
        "last_used": last_used(entry, usage),
    }


def _delete(
    args: argparse.Namespace, cache: PickleFileCache, victims: Sequence[EntryInfo]
) -> Tuple[int, List[EntryInfo]]:
    """List ``victims``, ask (unless --yes), delete them: (exit code, deleted)."""
    if not _confirm(args, victims, "delete"):
        return PROBLEMS, []
    deleted = [e for e in victims if cache.delete(e.key)]
    cache.remove_stale_temporaries()
    if not args.json:
        print(f"deleted {len(deleted)} entries ({_size(sum(e.size for e in deleted))})")
    return OK, deleted


def _deletion_report(deleted: Sequence[Any], declined: bool, **extra: Any) -> Dict[str, Any]:
    rows = [d if isinstance(d, dict) else _entry_row(d, {}) for d in deleted]
    return {
        "deleted": rows,
        "count": len(rows),
        "bytes": sum(r["size"] for r in rows),
        "declined": declined,
        **extra,
    }


def _main_guard(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":`` (either way round)."""
    if not isinstance(node, ast.If) or not isinstance(node.test, ast.Compare):
        return False
    test = node.test
    if len(test.ops) != 1 or not isinstance(test.ops[0], ast.Eq):
        return False
    sides = [test.left, test.comparators[0]]
    names = [n for n in sides if isinstance(n, ast.Name) and n.id == "__name__"]
    mains = [n for n in sides if isinstance(n, ast.Constant) and n.value == "__main__"]
    return len(names) == 1 and len(mains) == 1


_DEFINITIONS = (
    ast.Import,
    ast.ImportFrom,
    ast.FunctionDef,
    ast.AsyncFunctionDef,
    ast.ClassDef,
    ast.Assign,
    ast.AnnAssign,
    ast.AugAssign,
    ast.Pass,
    ast.Global,
)


def top_level_work(source: str) -> Tuple[bool, Optional[Tuple[int, str]]]:
    """(has a main guard, the first statement that does work at import), where work
    is a call or expression, a loop or a ``with`` at module level (also inside a
    top-level ``if``/``try``), not under the main guard. Definitions, imports and
    assignments are not work: a module of constants and functions imports quietly."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return False, None  # importing reports the error, at its line
    guarded = False

    def first_work(body: List[ast.stmt], top: bool) -> Optional[Tuple[int, str]]:
        nonlocal guarded
        for index, node in enumerate(body):
            if _main_guard(node):
                guarded = True
                continue
            if isinstance(node, _DEFINITIONS):
                continue
            if (
                isinstance(node, ast.Expr)
                and isinstance(node.value, ast.Constant)
                and (index == 0 or not top)
            ):
                continue  # a docstring (or a bare constant)
            if isinstance(node, ast.If):
                found = first_work(node.body, False) or first_work(node.orelse, False)
            elif isinstance(node, ast.Try):
                parts = node.body + [n for h in node.handlers for n in h.body]
                parts += node.orelse + node.finalbody
                found = first_work(parts, False)
            else:
                text = ast.get_source_segment(source, node) or type(node).__name__
                return node.lineno, text.splitlines()[0][:80]
            if found:
                return found
        return None

    work = first_work(tree.body, True)
    return guarded or any(_main_guard(node) for node in tree.body), work


def _check_import(module_name: str, allow: bool) -> None:
    """Say that ``module_name`` is imported (on stderr), or refuse a guard-less script."""
    if module_name in sys.modules:
        return
    try:
        spec = importlib.util.find_spec(module_name)
    except (ImportError, ValueError):
        return  # the import below reports it
    origin = getattr(spec, "origin", None)
    if not origin or not origin.endswith(".py"):
        return
    try:
        with open(origin, encoding="utf-8") as handle:
            source = handle.read()
    except (OSError, UnicodeDecodeError):
        return
    try:
        ast.parse(source)
    except (SyntaxError, ValueError):
        return  # the import reports it, at its line
    guarded, work = top_level_work(source)
    where = os.path.relpath(origin) if not os.path.isabs(module_name) else origin
    if work is not None and not guarded and not allow:
        line, text = work
        raise UsageError(
            f"{_shown(where)}:{line} runs {_shown(text)!s} at import, and the module has no "
            f"'if __name__ == \"__main__\":' guard: importing it would run your script. Put "
            f"that code under the guard, or pass --import to import it anyway"
        )
    print(
        f"checkpointing: importing {_shown(module_name)} ({_shown(where)}) to answer"
        + ("; its top-level code runs" if work is not None else ""),
        file=sys.stderr,
    )


def _load_function(spec: str, allow_import: bool = False) -> Callable[..., Any]:
    """``pkg.mod:func`` or ``pkg.mod:Class.method`` (imported from the current directory)."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise UsageError(f"{_shown(spec)} is not MODULE:FUNCTION; write e.g. pipeline.train:fit")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    _check_import(module_name, allow_import)
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
    """Print ``data`` as JSON under --json, else ``text()``."""
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print(text())


# -- commands ------------------------------------------------------------------------


def cmd_ls(args: argparse.Namespace, cache: PickleFileCache) -> int:
    groups: Dict[str, List[EntryInfo]] = {}
    for entry in _entries(cache):
        groups.setdefault(_function_of(entry), []).append(entry)
    usage = _usage(cache)
    rows = [
        {
            "function": _shown(name),
            "entries": len(entries),
            "size": sum(e.size for e in entries),
            "hits": sum(usage[e.key].hits for e in entries if e.key in usage),
            "last_used": max(last_used(e, usage) for e in entries),
        }
        for name, entries in sorted(groups.items())
    ]

    def text() -> str:
        if not rows:
            return f"no entries in {_shown(cache.directory)}"
        width = max(len(r["function"]) for r in rows)
        lines = [f"{'function':<{width}}  entries      size     hits  last used"]
        for r in rows:
            lines.append(
                f"{r['function']:<{width}}  {r['entries']:>7}  {_size(r['size']):>8}"
                f"  {r['hits']:>7}  {_when(r['last_used'])}"
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
    usage = _usage(cache)
    data = [
        {
            "key": _shown(e.key),
            "function": _shown_function(e),
            "call": _shown(e.metadata.get("arguments") or "?"),
            "size": e.size,
            "created": e.metadata.get("created"),
            "run_seconds": e.metadata.get("run_seconds"),
            "last_used": last_used(e, usage),
            "hits": usage[e.key].hits if e.key in usage else 0,
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
            ran = f"  ran {run:.2f}s" if isinstance(run, (int, float)) else ""
            lines.append(f"  {d['call']}")
            lines.append(
                f"    key {d['key']}  {_size(d['size'])}  created {_when(d['created'])}{ran}"
                f"  last used {_when(d['last_used'])}  hits {d['hits']}"
            )
        return "\n".join(lines)

    if not data and not args.json:
        print(text(), file=sys.stderr)
        return PROBLEMS
    _emit(args, data, text)
    return OK if data else PROBLEMS


def _module_source(module_name: str) -> Optional[str]:
    """The file of ``module_name`` under the current directory or ``sys.path``, found
    without importing anything (``find_spec`` would import its parent packages)."""
    parts = module_name.split(".")
    if not all(p.isidentifier() for p in parts):
        return None
    for folder in [os.getcwd()] + [p for p in sys.path if isinstance(p, str)]:
        base = os.path.join(folder or os.curdir, *parts)
        for path in (base + ".py", os.path.join(base, "__init__.py")):
            if os.path.isfile(path):
                return path
    return None


def _runs_at_import(module_name: str) -> bool:
    """Would importing ``module_name`` run code (work at its top level, outside the
    main guard)? False when that cannot be told without importing it."""
    path = _module_source(module_name)
    if path is None:
        return False
    try:
        with open(path, "rb") as handle:
            source = importlib.util.decode_source(handle.read())
    except (OSError, SyntaxError, UnicodeDecodeError, LookupError):
        return False
    return top_level_work(source)[1] is not None


def _as_script(spec: str) -> Optional[str]:
    """The name ``module:func`` was recorded under when ``module.py`` ran as a script
    (``python module.py``): ``__main__:func`` (None for a module of a package)."""
    module, _, attribute = spec.partition(":")
    if "." in module or module == "__main__":
        return None
    return f"__main__:{attribute}"


def _stored_history(cache: PickleFileCache, spec: str) -> List[Dict[str, Any]]:
    """The recorded entries of ``spec``, oldest first, with those recorded when its
    module ran as a script (renamed), as ``why`` reads them after an import."""
    from .decorator.manage import _renamed

    records = list(cache.history(spec))
    script = _as_script(spec)
    source = _module_source(spec.partition(":")[0]) if script is not None else None
    if script is not None and source is not None:
        module = spec.partition(":")[0]
        records += [
            _renamed(r, "__main__:", f"{module}:")
            for r in cache.history(script)
            # The script's own: another script's ``f`` is also ``__main__:f``.
            if _same_file(((r.get("nodes") or {}).get(script) or [None, None])[1], source)
        ]
    return sorted(records, key=lambda r: r.get("created") or 0)


def _stored_analysis(cache: PickleFileCache, spec: str) -> Optional[Dict[str, Any]]:
    """The stored analysis of ``spec`` (see :func:`keyplan.stored_analysis`); for a
    module run as a script, the one stored under ``__main__`` for the same file."""
    from .keyplan import stored_analysis

    directory = os.path.join(cache.directory, "analysis")
    source = _module_source(spec.partition(":")[0])
    found = stored_analysis(directory, spec, source)
    script = _as_script(spec)
    if found is None and script is not None and source is not None:
        found = stored_analysis(directory, script, source)
        if found is not None:
            found["data"] = _renamed_analysis(found["data"], f"{spec.partition(':')[0]}:")
    return found


def _renamed_analysis(data: Dict[str, Any], prefix: str) -> Dict[str, Any]:
    """A stored analysis made when the module ran as a script, with the names of its
    definitions and values given as its module's (``__main__:f`` -> ``mod:f``)."""

    def named(name: Any) -> Any:
        if isinstance(name, str) and name.startswith("__main__:"):
            return prefix + name[len("__main__:") :]
        return name

    out = dict(data)
    out["nodes"] = [
        {**n, "qualname": named(n.get("qualname"))}
        for n in data.get("nodes", ())
        if isinstance(n, dict)
    ]
    out["slots"] = [[named(s[0]), *s[1:]] for s in data.get("slots", ()) if s]
    out["blind_spots"] = [
        [*b[:3], named(b[3])] if isinstance(b, list) and len(b) >= 4 else b
        for b in data.get("blind_spots", ())
    ]
    return out


def _same_file(a: Any, b: str) -> bool:
    try:
        return isinstance(a, str) and os.path.samefile(a, b)
    except OSError:
        return False


def _stored_graph(cache: PickleFileCache, spec: str) -> Any:
    """The graph of ``spec`` from its stored analysis, if the files it covers are
    unchanged on disk (else the files that changed, or None without one). The analysis
    keeps what the key reaches, not who reaches what: everything hangs from the
    function."""
    import networkx as nx

    from .render import CLOSURE, EXTERNAL, FUNCTION, GLOBAL, METHOD, DependencyGraph

    found = _stored_analysis(cache, spec)
    if found is None or found["changed"]:
        return found and found["changed"]
    data = found["data"]
    named = str
    history = _stored_history(cache, spec)
    before = (history[-1].get("nodes") or {}) if history else {}
    g = nx.DiGraph(source="stored analysis", analysis=found["path"])
    for node in data.get("nodes", ()):
        name = named(node.get("qualname"))
        path = name.partition(":")[2].split(".")
        kind = node.get("kind")
        if kind == FUNCTION and len(path) > 1 and path[-2] != "<locals>":
            kind = METHOD
        earlier = before.get(name)
        g.add_node(
            name,
            kind=kind,
            qualname=name,
            file=node.get("file"),
            line=node.get("line"),
            digest=node.get("digest"),
            changed=bool(earlier) and earlier[0] != node.get("digest"),
            blind_spots=[],
        )
    if spec not in g:
        g.add_node(spec, kind=FUNCTION, qualname=spec, file=None, line=None, blind_spots=[])
    for qualname, slot in data.get("slots", ()):
        name = named(qualname)
        if name not in g:
            kind = CLOSURE if slot and slot[0] == "cell" else GLOBAL
            g.add_node(name, kind=kind, qualname=name, file=None, line=None, blind_spots=[])
    for name in data.get("externals", ()):
        if name not in g:
            g.add_node(name, kind=EXTERNAL, qualname=name, file=None, line=None, blind_spots=[])
    g.add_edges_from((spec, name) for name in list(g) if name != spec)
    for item in data.get("blind_spots", ()):
        if isinstance(item, list) and len(item) >= 4:
            where = named(item[3])
            g.nodes[where if where in g else spec]["blind_spots"].append((item[1], item[2]))
    return DependencyGraph(spec, g)


def _stored_note(spec: str, path: str) -> str:
    module = spec.partition(":")[0]
    return (
        f"(from the stored analysis of the last run, {_shown(display_path(path))}; "
        f"{_shown(module)} was not imported. It keeps what the key reaches, not who "
        f"reaches what; --import draws the full graph by importing it)"
    )


def cmd_graph(args: argparse.Namespace, cache: PickleFileCache) -> int:
    from .render import graph

    g, stale = None, None
    module = args.function.partition(":")[0]
    if not args.allow_import and (args.stored or _runs_at_import(module)):
        g = _stored_graph(cache, args.function)
        if isinstance(g, list):
            g, stale = None, [display_path(f) for f in g]
        why_not = (
            f"the stored analysis of {_shown(args.function)} is out of date: "
            f"{_shown(', '.join(stale))} changed on disk since the last run"
            if stale
            else f"no analysis of {_shown(args.function)} is stored in {_shown(cache.directory)}"
        )
        if g is None and args.stored:
            raise NotFound(
                f"{why_not}; run the program once, or drop --stored to import {_shown(module)}"
            )
    if g is None:
        try:
            g = graph(_load_function(args.function, args.allow_import))
        except UsageError as exc:
            if stale is None and not args.stored and not _runs_at_import(module):
                raise
            raise UsageError(f"{exc}; {why_not}") from None
    elif args.format == "text" and not args.output and not args.json:
        print(str(g).rstrip("\n"))
        print(_stored_note(args.function, g.nx.graph["analysis"]))
        return OK
    else:  # said on stderr: stdout keeps the format asked for
        print(_stored_note(args.function, g.nx.graph["analysis"]), file=sys.stderr)
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
    from .explanation import explain

    call_args, call_kwargs = _parse_call(args.arguments)
    if not args.arguments and not args.allow_import and ":" in args.function:
        history = _stored_history(cache, args.function)
        if history:  # answered from the records: the module is not imported
            from .explanation import explain_stored

            stored = explain_stored(
                args.function,
                args.function.partition(":")[0],
                history,
                _stored_analysis(cache, args.function),
            )
            key = stored.latest_key
            stored.latest_stored = isinstance(key, str) and cache.exists(key)
            _emit(args, stored.to_dict(), lambda: str(stored))
            return OK
    func = _load_function(args.function, args.allow_import)
    try:
        result = explain(func, *call_args, **call_kwargs)
    except TypeError as exc:
        raise UsageError(str(exc)) from None
    _emit(args, result.to_dict(), lambda: str(result))
    return OK


def cmd_accept(args: argparse.Namespace, cache: PickleFileCache) -> int:
    func = _load_function(args.function, args.allow_import)
    accept = getattr(func, "accept", None)
    if accept is None:
        raise UsageError(f"{_shown(args.function)} is not decorated with @checkpoint")
    try:
        done = accept()
    except ConfigurationError as exc:
        raise NotFound(str(exc)) from None

    def text() -> str:
        if not done["accepted"]:
            return (
                f"{done['function']}: nothing to accept: its latest entry was computed "
                f"with the current code"
            )
        return (
            f"{done['function']}: the current code is accepted as equivalent to that of "
            f"its stored entries; they are served again ('checkpointing why' says so)"
        )

    _emit(args, done, text)
    return OK


_CALL_HELP = (
    "ARGS are the call's arguments: Python literals as in the call (1, 'a', lr=0.1), or "
    "JSON: a list (positional), an object (keywords) or "
    '{"args": [...], "kwargs": {...}}'
)


def _parse_call(text: Optional[str]) -> Tuple[List[Any], Dict[str, Any]]:
    """The arguments of ``why``: JSON (as before), a Python literal of the same shapes,
    or the inside of a call with Python literals: ``1, [2, 3], lr=0.1``."""
    if not text:
        return [], {}
    try:
        value = json.loads(text)
    except ValueError:
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return _parse_call_syntax(text)
        if isinstance(value, tuple):
            return list(value), {}
    if isinstance(value, list):
        return value, {}
    if isinstance(value, dict) and set(value) <= {"args", "kwargs"} and value:
        return list(value.get("args", [])), dict(value.get("kwargs", {}))
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return [], value
    return [value], {}


def _parse_call_syntax(text: str) -> Tuple[List[Any], Dict[str, Any]]:
    try:
        call = ast.parse(f"f({text})", mode="eval").body
        if not isinstance(call, ast.Call):
            raise ValueError("not a call")
        args = [ast.literal_eval(a) for a in call.args]
        if any(k.arg is None for k in call.keywords):
            raise ValueError("** is not supported")
        kwargs = {str(k.arg): ast.literal_eval(k.value) for k in call.keywords}
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        raise UsageError(
            f"ARGS {_shown(text)} is neither JSON nor Python literals. {_CALL_HELP}; e.g. "
            f"'[1.5, 2.5], lr=0.1' or '{{\"lr\": 0.1}}'"
        ) from None
    return args, kwargs


def cmd_clear(args: argparse.Namespace, cache: PickleFileCache) -> int:
    entries = _entries(cache)
    victims = [
        e for e in entries if args.function is None or _matches(_function_of(e), args.function)
    ]
    legacy = cache.legacy_files() if args.function is None else []
    if args.function is not None and not victims:
        raise NotFound(f"no entries of {_shown(args.function)} in {_shown(cache.directory)}")
    if not victims and not legacy:
        removed = cache.remove_stale_temporaries()
        if args.json:
            _emit(args, _deletion_report([], False, temporaries_removed=removed), str)
        else:
            print(
                "nothing to delete"
                + (f" (removed {removed} leftover temporary files)" if removed else "")
            )
        return OK
    code, deleted = _delete(args, cache, victims) if victims else (OK, [])
    legacy_removed = 0
    if legacy:
        legacy_code, legacy_removed = _delete_legacy(args, cache, legacy)
        code = max(code, legacy_code)
    if args.json:
        report = _deletion_report(deleted, code != OK, legacy_1_0_files_removed=legacy_removed)
        _emit(args, report, str)
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


def _delete_legacy(
    args: argparse.Namespace, cache: PickleFileCache, legacy: Sequence[str]
) -> Tuple[int, int]:
    """Ask (unless --yes), then remove the result files of checkpointing 1.0:
    (exit code, how many removed)."""
    what = f"{len(legacy)} files of checkpointing 1.0 ({_size(_total_size(legacy))})"
    if not args.yes:
        if not sys.stdin.isatty():
            print(f"not deleting: pass --yes to delete {what}", file=sys.stderr)
            return PROBLEMS, 0
        if input(f"delete {what}? [y/N] ").strip().lower() not in ("y", "yes"):
            return PROBLEMS, 0
    removed = cache.remove_legacy_files()
    if not args.json:
        print(f"deleted {removed} files of checkpointing 1.0")
    return OK, removed


def cmd_prune(args: argparse.Namespace, cache: PickleFileCache) -> int:
    if args.older_than is None and args.max_size is None and args.keep_latest is None:
        raise UsageError("prune needs --older-than, --max-size or --keep-latest")
    age = None if args.older_than is None else _parse_age(args.older_than)
    limit = None if args.max_size is None else _parse_size(args.max_size)
    usage = _usage(cache)
    entries = _entries(cache)
    victims = select(entries, usage, limit, age, args.keep_latest)
    rows = [_entry_row(e, usage) for e in victims]
    if not victims:
        removed = 0 if args.dry_run else cache.remove_stale_temporaries()
        if args.json:
            report = _deletion_report([], False, dry_run=args.dry_run)
            report["temporaries_removed"] = removed
            _emit(args, report, str)
            return OK
        print(
            "nothing to prune"
            + (f" (removed {removed} leftover temporary files)" if removed else "")
        )
        return OK
    if args.dry_run:
        if args.json:
            _emit(args, {**_deletion_report(rows, False, dry_run=True), "deleted": []}, str)
            return OK
        for e in victims:
            print(f"  would delete {_shown(e.key)}  {_shown_function(e)}  {_size(e.size)}")
        print(f"would delete {len(victims)} entries ({_size(sum(e.size for e in victims))})")
        return OK
    if not _confirm(args, victims, "delete"):
        if args.json:
            _emit(args, _deletion_report([], True, dry_run=False), str)
        return PROBLEMS
    deleted = remove_entries(cache, victims, entries, usage)
    if args.json:
        _emit(args, _deletion_report(deleted, False, dry_run=False), str)
    else:
        size = sum(d["size"] for d in deleted)
        print(f"deleted {len(deleted)} entries ({_size(size)})")
    return OK


def cmd_stats(args: argparse.Namespace, cache: PickleFileCache) -> int:
    entries = _entries(cache)
    log = usage_log_for(cache)
    totals = log.functions()
    rows: Dict[str, Dict[str, Any]] = {}
    for e in entries:
        row = rows.setdefault(_function_of(e), {"entries": 0, "bytes": 0, "hits": 0, "misses": 0})
        row["entries"] += 1
        row["bytes"] += e.size
    for name, (hits, misses) in totals.items():
        row = rows.setdefault(name, {"entries": 0, "bytes": 0, "hits": 0, "misses": 0})
        row["hits"], row["misses"] = hits, misses
    data = [{"function": _shown(name), **row} for name, row in sorted(rows.items())]

    def text() -> str:
        if not data:
            return f"no entries and no recorded use in {_shown(cache.directory)}"
        width = max(8, max(len(d["function"]) for d in data))
        lines = [f"{'function':<{width}}  entries      size     hits   misses  hit rate"]
        for d in data:
            calls = d["hits"] + d["misses"]
            rate = f"{100 * d['hits'] / calls:.0f}%" if calls else "-"
            lines.append(
                f"{d['function']:<{width}}  {d['entries']:>7}  {_size(d['bytes']):>8}"
                f"  {d['hits']:>7}  {d['misses']:>7}  {rate:>8}"
            )
        lines.append(
            f"{sum(d['entries'] for d in data)} entries, "
            f"{_size(sum(d['bytes'] for d in data))}, {sum(d['hits'] for d in data)} hits, "
            f"{sum(d['misses'] for d in data)} misses in {cache.directory} (hits are "
            f"recorded at most once an hour per entry and process until it exits)"
        )
        return "\n".join(lines)

    _emit(args, data, text)
    return OK


def _problem(path: str, kind: str, reason: str) -> Dict[str, str]:
    return {"path": path, "kind": kind, "reason": reason}


def _check_temporaries(cache: PickleFileCache) -> List[Dict[str, str]]:
    """Temporary files a killed writer left: by the rule the saves' own sweep follows
    (older than ``STALE_TEMP_SECONDS`` and not locked), so that ``verify`` run beside
    live writers neither reports nor, with ``--remove``, deletes their work in progress
    (a small entry's temporary file is not locked for the microseconds it exists)."""
    from .store import STALE_TEMP_SECONDS, _locked

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
        elif now - status.st_mtime >= STALE_TEMP_SECONDS and not _locked(path):
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


def _check_plan_and_history_files(cache: PickleFileCache) -> List[Dict[str, str]]:
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
    problems += (
        _check_temporaries(cache) + _check_markers(cache) + _check_plan_and_history_files(cache)
    )
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


def _global_options(default: Any) -> argparse.ArgumentParser:
    """--dir and --json. Before the command they set the defaults; after it, the
    subcommand's copies default to SUPPRESS so they never overwrite what was given
    before it with their own default (argparse's parents would)."""
    options = _Parser(add_help=False)
    options.add_argument(
        "--dir",
        default=None if default is None else default,
        help="the cache directory (default: defaults['cache.filesystem."
        "directory'], ./.checkpointing)",
    )
    options.add_argument(
        "--json",
        action="store_true",
        default=False if default is None else default,
        help="machine-readable output (JSON on stdout, always)",
    )
    return options


def _parser() -> argparse.ArgumentParser:
    common = _global_options(None)
    after = _global_options(argparse.SUPPRESS)
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
            parents=[after],
            help=helptext,
            description=helptext,
            epilog=f"Example: {example}",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    def importing(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--import",
            dest="allow_import",
            action="store_true",
            help="import the module even if it runs code at import without an "
            "'if __name__ == \"__main__\":' guard (that code then runs)",
        )

    command(
        "ls",
        "list the functions with entries: count, total size, hits, last used",
        "checkpointing ls",
    )
    command(
        "stats",
        "entries, bytes, hits and misses per function, from the library's own records",
        "checkpointing stats --json",
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
        "--stored",
        action="store_true",
        help="answer from the stored analysis only (never import); by default it is used "
        "when importing the module would run code",
    )
    p.add_argument(
        "-o",
        "--output",
        help="write to a file; the suffix picks the format (.txt .dot .mmd .svg .png)",
    )
    importing(p)
    p = command(
        "why",
        "say whether a call would be answered from the cache, and why not; without "
        "ARGS, from the stored records (what changed between the last two entries, which "
        "files changed on disk since), without importing the module",
        "checkpointing why pipeline.train:fit_line 'seed=42'",
    )
    p.add_argument("function", help="MODULE:FUNC, imported from the current directory")
    p.add_argument("arguments", nargs="?", help=_CALL_HELP)
    importing(p)
    p = command(
        "accept",
        "mark a function's current code as equivalent to the code its stored entries "
        "were computed with, so they are served again",
        "checkpointing accept pipeline.train:fit_line",
    )
    p.add_argument("function", help="MODULE:FUNC, imported from the current directory")
    importing(p)
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
    "accept": cmd_accept,
    "stats": cmd_stats,
    "clear": cmd_clear,
    "prune": cmd_prune,
    "verify": cmd_verify,
}


def main(argv: Optional[Iterable[str]] = None) -> int:
    """Run the command line; returns the exit code."""
    parser = _parser()
    words = sys.argv[1:] if argv is None else list(argv)
    try:
        args = parser.parse_args(words)
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    except _BadCommandLine as exc:
        print(exc, file=sys.stderr)
        if "--json" in words:  # JSON was asked for: the error is JSON too
            print(json.dumps({"error": str(exc), "exit_code": USAGE}, indent=2))
        return USAGE
    directory = args.dir or defaults["cache.filesystem.directory"]
    try:
        cache = _open_cache(directory, given=args.dir is not None, command=args.command)
        return COMMANDS[args.command](args, cache)
    except NotFound as exc:
        return _error(args, str(exc), PROBLEMS)
    except UsageError as exc:
        return _error(args, str(exc), USAGE)
    except KeyboardInterrupt:
        return 130
    except (OSError, ConfigurationError, UnicodeError) as exc:
        return _error(args, _shown(_describe(exc)), USAGE)
    except Exception as exc:
        if os.environ.get("CHECKPOINTING_DEBUG"):
            raise
        return _error(
            args,
            f"internal error ({type(exc).__name__}: {_shown(exc)}); please report it "
            f"(CHECKPOINTING_DEBUG=1 shows the traceback)",
            USAGE,
        )


def _error(args: argparse.Namespace, message: str, code: int) -> int:
    """Report a failure on stderr (and as JSON on stdout under --json); the exit code."""
    print(f"checkpointing {args.command}: {message}", file=sys.stderr)
    if getattr(args, "json", False):
        print(json.dumps({"error": message, "exit_code": code}, indent=2))
    return code


def _describe(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        where = f"{exc.filename}: " if exc.filename else ""
        return f"{where}{exc.strerror}"
    return f"{type(exc).__name__}: {exc}"


# Commands that read the cache folder itself (not a function's decorator).
_READS_FOLDER = ("ls", "show", "clear", "prune", "verify", "stats")


def _open_cache(directory: Any, given: bool = False, command: str = "") -> PickleFileCache:
    """The cache at ``directory``, once it is known to be a readable folder (or absent:
    an empty cache, unless the folder was given with --dir: a typo must not look like
    an empty cache). A URL (``s3://bucket/prefix``) opens the shared store there."""
    if isinstance(directory, str) and "://" in directory:
        from .store.remote import open_store

        return open_store(directory)  # type: ignore[return-value]
    cache = PickleFileCache(directory)
    path = cache.directory
    if given and command in _READS_FOLDER and not os.path.lexists(path):
        raise NotFound(
            f"--dir {_shown(path)} does not exist; give the folder that holds entries/ "
            f"(by default ./.checkpointing, where your program ran)"
        )
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
