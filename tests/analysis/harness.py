"""An in-process harness for the analyzer: one line per scoping or resolution rule.

In the style of ``pyflakes/test/harness.py``: a rule is a source snippet and the answer
the analyzer must give for it, checked by the real :mod:`checkpointing.analysis` code in
this process (no subprocess, no stub).

- :func:`canon` / :func:`same` / :func:`differ` ask the canonicaliser whether two
  spellings of a definition are the same code. The definition is the first top-level
  ``def``/``class`` of the snippet (or a lambda expression statement).
- :func:`free` lists the dotted chains a definition reads from outside itself (its
  :attr:`Canonical.refs`), :func:`blind` the callees of its blind spots.
- :func:`deps` imports the snippet as a real module ``m`` from a fresh directory that
  counts as project code (the import hook records its source, as it would for a user),
  and resolves each ref of a function with :func:`resolve_ref`:
  ``{"helper": "function m:helper", "cfg.lr": "global m:cfg/lr", "len": "external
  builtins:len"}`` (``/`` separates the attributes left after the resolved object).
- :func:`graph` builds the key plan of such a function (:func:`build_plan`) and
  describes its nodes, edges and value slots.
"""

from __future__ import annotations

import ast
import atexit
import importlib
import itertools
import os
import shutil
import sys
import tempfile
import textwrap
from typing import Any, Dict, Mapping, Optional, Set, Tuple, Union

from checkpointing.analysis.canon import Canonical, canonical_class, canonical_function
from checkpointing.analysis.resolve import resolve_ref
from checkpointing.depgraph import build_plan
from checkpointing.source import INDEX

__all__ = ["blind", "canon", "deps", "differ", "free", "graph", "load", "same"]


# -- the canonicaliser ------------------------------------------------------------------


def _definition(source: str) -> ast.AST:
    tree = ast.parse(textwrap.dedent(source))
    for stmt in tree.body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            return stmt
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Lambda):
            return stmt.value
    raise ValueError(f"no def, class or lambda at the top level of:\n{source}")


def canon(source: str, *, defaults: bool = True, decorators: Optional[int] = None) -> Canonical:
    """The canonical form of the snippet's first definition.

    ``defaults=False`` is how the checkpointed function itself is canonicalised (its
    default values reach the key through the bound arguments).
    """
    node = _definition(source)
    if isinstance(node, ast.ClassDef):
        return canonical_class(node, owned=True)
    return canonical_function(
        node,
        include_defaults=defaults,  # type: ignore[arg-type]
        decorators=decorators,
        owned=True,
    )


def _identity(c: Canonical) -> Tuple[bytes, Tuple[Any, ...]]:
    # What the key folds: the bytes, and what each placeholder stands for: a free
    # chain as spelled (the resolver reads it), or for a name bound by an import inside
    # the definition its origin and the attributes after it (the local alias is not
    # read). Line numbers are where a ref was seen, not what it is.
    return c.data, tuple(
        (r.chain[1:], r.origin) if r.origin is not None else (r.chain,) for r in c.refs
    )


class Verdict:
    """A comparison's answer; falsy when it does not hold, and shows both forms."""

    def __init__(self, holds: bool, a: Canonical, b: Canonical) -> None:
        self.holds, self.a, self.b = holds, a, b

    def __bool__(self) -> bool:
        return self.holds

    def __repr__(self) -> str:
        def show(c: Canonical) -> str:
            return f"{c.text!r} refs={[('.'.join(r.chain), r.scope) for r in c.refs]}"

        return f"<{self.holds}: {show(self.a)} vs {show(self.b)}>"


def same(a: str, b: str, **options: Any) -> Verdict:
    """Do the two spellings have the same canonical bytes and refs?"""
    ca, cb = canon(a, **options), canon(b, **options)
    return Verdict(_identity(ca) == _identity(cb), ca, cb)


def differ(a: str, b: str, **options: Any) -> Verdict:
    """Do the two spellings have different canonical bytes or refs?"""
    ca, cb = canon(a, **options), canon(b, **options)
    return Verdict(_identity(ca) != _identity(cb), ca, cb)


def free(source: str, **options: Any) -> Set[str]:
    """The dotted chains the definition reads from outside itself.

    A chain bound by an import inside the definition is written ``name<-origin``:
    ``np<-numpy``, ``f<-..m:f``.
    """
    out = set()
    for ref in canon(source, **options).refs:
        name = ".".join(ref.chain)
        if ref.origin is not None:
            o = ref.origin
            where = "." * o.level + o.module + (f":{o.attr}" if o.attr else "")
            name = f"{name}<-{where}"
        out.add(name)
    return out


def blind(source: str) -> Set[str]:
    """The callees of the blind spots the canonicaliser reports (a spot with no
    ``what`` is a plugin named by a constant: noted for the graph, not blind)."""
    return {spot.callee for spot in canon(source).blind_spots if spot.what}


# -- real modules, for the resolver and the graph ---------------------------------------

_BASE: Optional[str] = None
_COUNTER = itertools.count()


def _base() -> str:
    global _BASE
    if _BASE is None:
        _BASE = os.path.realpath(tempfile.mkdtemp(prefix="ckpt-harness-"))
        atexit.register(shutil.rmtree, _BASE, True)
        INDEX.add_project_path(_BASE)
    return _BASE


class load:
    """Import ``files`` (``{"m.py": source, "pkg/x.py": ...}``, or one source as
    ``m.py``) from a fresh project directory and return the module ``main``; the
    modules leave :data:`sys.modules` and the directory leaves :data:`sys.path` on
    exit."""

    def __init__(self, files: Union[str, Mapping[str, str]], main: str = "m") -> None:
        self.files = {"m.py": files} if isinstance(files, str) else dict(files)
        self.main = main
        self.root = os.path.join(_base(), f"case{next(_COUNTER)}")

    def __enter__(self) -> Any:
        for rel, text in self.files.items():
            path = os.path.join(self.root, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(textwrap.dedent(text).lstrip("\n"))
        self.before = set(sys.modules)
        sys.path.insert(0, self.root)
        importlib.invalidate_caches()
        return importlib.import_module(self.main)

    def __exit__(self, *exc: Any) -> None:
        sys.path.remove(self.root)
        for name in set(sys.modules) - self.before:
            if (getattr(sys.modules[name], "__file__", None) or "").startswith(self.root):
                del sys.modules[name]


def _target(module: Any, of: str) -> Any:
    return eval(of, vars(module))  # noqa: S307 -- the test's own expression


def _describe(kind: str, qualname: str, rest: Tuple[str, ...]) -> str:
    return f"{kind} {qualname}" + ("/" + "/".join(rest) if rest else "")


def deps(files: Union[str, Mapping[str, str]], of: str = "f", main: str = "m") -> Dict[str, str]:
    """What each ref of ``of`` (an expression in module ``m``: ``"f"``, ``"make()"``,
    ``"C"``) resolves to: ``{chain: "kind qualname[/rest]"}``."""
    with load(files, main) as module:
        obj = _target(module, of)
        canonical = (canonical_class if isinstance(obj, type) else canonical_function)(
            _node_of(obj)
        )
        out = {}
        for ref in canonical.refs:
            target = resolve_ref(ref, obj)
            out[".".join(ref.chain)] = _describe(target.kind, target.qualname, target.rest)
        return out


def _node_of(obj: Any) -> Any:
    from checkpointing.depgraph import _class_node, _function_node

    if isinstance(obj, type):
        return _class_node(obj)[1]
    return _function_node(obj)[1][0]


def graph(files: Union[str, Mapping[str, str]], of: str = "f", main: str = "m") -> Dict[str, Any]:
    """The key plan of ``of``: ``{"nodes": [qualname...] (depth-first from the root),
    "edges": {(from, to)...}, "slots": {slot qualname...}, "externals": {name...}}``."""
    with load(files, main) as module:
        plan = build_plan(_target(module, of))
    nodes = [n.qualname for n in plan.nodes]
    return {
        "nodes": nodes,
        "edges": {(n.qualname, nodes[c]) for n in plan.nodes for c in n.edges},
        "slots": {plan.slots[s].qualname for n in plan.nodes for s in n.slots},
        "externals": {e for n in plan.nodes for e in n.externals},
    }


def digest(files: Union[str, Mapping[str, str]], of: str = "f", main: str = "m") -> bytes:
    """The static digest of ``of``'s key plan (everything its code reaches)."""
    with load(files, main) as module:
        return build_plan(_target(module, of)).static_digest
