"""The dependency graph of a checkpointed function, folded into its key plan.

This module owns what "everything a function reaches" means. From a root function
(or class) it finds each definition's source as loaded (:mod:`checkpointing.source`),
canonicalises it (:mod:`checkpointing.analysis.canon`), resolves every free name
(:mod:`checkpointing.analysis.resolve`) and follows user functions and classes
transitively, across modules. The result is a :class:`~checkpointing.keyplan.KeyPlan`
whose ``static_digest`` folds the canonical code of every reached definition and the
external names they use. Nodes are numbered in depth-first order from the root and
edges refer to those numbers, so the digest does not depend on any definition's
name, and recursion (a cycle) is just an edge to a smaller number.

It runs once per function per process at most (and not at all when a stored plan
is still valid); :func:`dependency_graph` turns a fresh analysis into a
:class:`networkx.DiGraph` for display.
"""

from __future__ import annotations

import ast
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import hashing
from .analysis.canon import BlindSpot, Canonical, canonical_class, canonical_function
from .analysis.resolve import (CLASS, CLOSURE, EXTERNAL, FUNCTION, GLOBAL, UNBOUND, Target,
                               is_pickled_copy, qualname_of, resolve_ref, unwrap)
from .keyplan import (ANALYSIS_FORMAT, KeyPlan, Slot, cell_value, describe, is_acknowledged,
                      plan_for, warn_once)
from .source import INDEX

__all__ = ["Node", "build_plan", "dependency_graph", "source_of"]


@dataclass
class Node:
    """One reached definition (function, class) or external name."""

    index: int
    kind: str
    qualname: str
    obj: Any
    filename: Optional[str] = None
    lineno: Optional[int] = None
    end_lineno: Optional[int] = None
    canonical: Optional[Canonical] = None
    # Own digest: canonical code plus what its refs resolve to (not the rest of the graph).
    digest: bytes = b""
    edges: List[int] = field(default_factory=list)
    slots: List[int] = field(default_factory=list)
    externals: List[str] = field(default_factory=list)
    from_source: bool = True
    # What the analyzer could not see in this definition: (line, what).
    blind_spots: List[Tuple[Optional[int], str]] = field(default_factory=list)


# -- Finding definitions in the source as loaded ----------------------------------

def _record_for_code(code: types.CodeType) -> Any:
    return INDEX.by_filename(code.co_filename)


def _record_for_class(cls: type) -> Any:
    module_name = cls.__module__
    if module_name == "__main__":
        # Notebook cells all share __main__: the file of a method's code says which
        # cell defines the class.
        for member in list(vars(cls).values()):
            code = getattr(member, "__code__", None)
            if isinstance(member, types.FunctionType) and code is not None:
                record = INDEX.by_filename(code.co_filename)
                if record is not None:
                    return record
                break
    record = INDEX.by_module(module_name)
    if record is not None:
        return record
    module = sys.modules.get(module_name)
    filename = getattr(module, "__file__", None)
    return INDEX.by_filename(filename) if filename else None


_FN = (ast.FunctionDef, ast.AsyncFunctionDef)


def _first_line(node: ast.AST) -> int:
    decorators = getattr(node, "decorator_list", None)
    return decorators[0].lineno if decorators else node.lineno  # type: ignore[attr-defined]


_LINE_INDEX: Dict[int, Tuple[Any, Dict[int, List[ast.AST]]]] = {}


def _definitions_by_line(record: Any) -> Dict[int, List[ast.AST]]:
    cached = _LINE_INDEX.get(id(record))
    if cached is not None and cached[0] is record:
        return cached[1]
    table: Dict[int, List[ast.AST]] = {}
    for node in ast.walk(record.tree):
        if isinstance(node, (*_FN, ast.Lambda, ast.ClassDef)):
            table.setdefault(_first_line(node), []).append(node)
    _LINE_INDEX[id(record)] = (record, table)
    return table


def _function_node(func: types.FunctionType) -> Tuple[Any, List[ast.AST]]:
    code = func.__code__
    record = _record_for_code(code)
    if record is None:
        return None, []
    try:
        candidates = _definitions_by_line(record).get(code.co_firstlineno, [])
    except SyntaxError:
        return None, []
    if code.co_name == "<lambda>":
        found = [n for n in candidates if isinstance(n, ast.Lambda)]
    else:
        found = [n for n in candidates if isinstance(n, _FN) and n.name == code.co_name]
    return record, found


def _class_node(cls: type) -> Tuple[Any, Optional[ast.ClassDef]]:
    record = _record_for_class(cls)
    if record is None:
        return None, None
    try:
        body: List[ast.stmt] = record.tree.body
    except SyntaxError:
        return record, None
    firstlineno = getattr(cls, "__firstlineno__", None)
    parts = cls.__qualname__.split(".")
    node: Any = None
    for i, part in enumerate(parts):
        if part == "<locals>":
            continue
        matches = [n for n in _statements(body) if isinstance(n, (*_FN, ast.ClassDef))
                   and n.name == part]
        if not matches:
            return record, None
        last = i == len(parts) - 1
        if last and firstlineno is not None:
            exact = [n for n in matches if _first_line(n) == firstlineno]
            matches = exact or matches
        # The definition executed last is the one bound to the name.
        node = matches[-1]
        body = node.body
    return record, node if isinstance(node, ast.ClassDef) else None


def _statements(body: List[ast.stmt]) -> List[ast.stmt]:
    """Statements of a block, looking into if/try/with/for but not into definitions."""
    out: List[ast.stmt] = []
    for stmt in body:
        out.append(stmt)
        if isinstance(stmt, (*_FN, ast.ClassDef)):
            continue
        for name in ("body", "orelse", "finalbody", "handlers"):
            inner = getattr(stmt, name, None)
            if isinstance(inner, list):
                out.extend(_statements([s for s in inner if isinstance(s, ast.stmt)]
                                       + [s for h in inner if isinstance(h, ast.excepthandler)
                                          for s in h.body]))
    return out


def _fresh_copy(record: Any, node: ast.AST) -> Any:
    """A private copy of a definition's tree, parsed again from its lines.

    Parsing (C) is many times faster than ``copy.deepcopy`` of the tree (Python), and
    the canonicaliser rewrites the tree it is given. None for lambdas (an expression
    within a line) or where the lines do not parse alone.
    """
    if not isinstance(node, (*_FN, ast.ClassDef)):
        return None
    first = _first_line(node)
    text = "".join(record.lines[first - 1:node.end_lineno])  # type: ignore[attr-defined]
    indented = text[:1] in (" ", "\t")
    try:
        tree = ast.parse("if 1:\n" + text if indented else text)
    except SyntaxError:
        return None
    fresh = tree.body[0].body[0] if indented else tree.body[0]  # type: ignore[attr-defined]
    if type(fresh) is not type(node):
        return None
    ast.increment_lineno(fresh, first - _first_line(fresh))
    return fresh


def source_of(obj: Any) -> str:
    """The source text of a function or class as it was loaded ("" if unknown)."""
    obj = unwrap(obj)
    if isinstance(obj, type):
        record, node = _class_node(obj)
        nodes = [node] if node is not None else []
    else:
        record, nodes = _function_node(obj)
    if record is None or not nodes:
        return ""
    lines = record.source.splitlines(keepends=True)
    node = nodes[0]
    return "".join(lines[_first_line(node) - 1:node.end_lineno])  # type: ignore[attr-defined]


# -- Bytecode fallback ------------------------------------------------------------

def _code_digest(code: types.CodeType, hasher: hashing.Hasher) -> None:
    """Digest of a code object without line numbers or file names."""
    hasher.feed_bytes(code.co_code)
    hasher.feed((code.co_argcount, code.co_kwonlyargcount, code.co_flags, code.co_names))
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _code_digest(const, hasher)
        else:
            hasher.feed(const)


_PROCESS_NONCE = os.urandom(16)


def bytecode_digest(obj: Any) -> str:
    """Hex digest of the bytecode of a function, or of the functions defined in a class
    body: the same for a copy made by cloudpickle or dill in another process."""
    hasher = hashing.Hasher()
    if isinstance(obj, type):
        for name, member in sorted(vars(obj).items()):
            member = unwrap(member) if callable(member) else member
            if isinstance(member, types.FunctionType):
                hasher.feed_str(name)
                _code_digest(member.__code__, hasher)
    else:
        _code_digest(unwrap(obj).__code__, hasher)
    return hasher.hexdigest()


# -- Building ---------------------------------------------------------------------

def build_plan(func: Any) -> KeyPlan:
    """Analyse ``func`` (a function or class) and everything it reaches."""
    return _Builder(func).build()


class _Builder:
    def __init__(self, root: Any) -> None:
        self.root = unwrap(root)
        self.nodes: List[Node] = []
        self.by_id: Dict[int, int] = {}
        self.slots: List[Slot] = []
        self.slot_index: Dict[Tuple[Any, ...], int] = {}
        self.guards: List[Tuple[Any, Any, Any]] = []
        self.guard_specs: List[Any] = []
        self.guard_keys: set = set()
        self.records: List[List[Any]] = []
        self.files: Dict[str, str] = {}
        self.persistable = True
        self.warnings: List[Any] = []

    def build(self) -> KeyPlan:
        self._visit(self.root, is_root=True)
        hasher = hashing.Hasher()
        hasher.feed_bytes(b"checkpointing.depgraph/1")
        for record in self.records:
            hasher.feed(tuple(record))
        static = hasher.digest()
        summary = [{"qualname": n.qualname, "kind": n.kind, "file": n.filename,
                    "line": n.lineno, "end": n.end_lineno, "digest": n.digest.hex()}
                   for n in self.nodes]
        externals = sorted({name.partition(":")[0].split(".")[0]
                            for n in self.nodes for name in n.externals})
        spec = None
        if self.persistable and all(s.spec is not None for s in self.slots):
            spec = {"format": ANALYSIS_FORMAT, "root": describe(self.root),
                    "static_digest": static.hex(), "files": self.files,
                    "guards": self.guard_specs,
                    "slots": [[s.qualname, s.spec] for s in self.slots], "nodes": summary,
                    "externals": externals,
                    "warnings": self.warnings}
        return KeyPlan(self.root, self.nodes, self.slots, self.guards, static,
                       files=self.files, summary=summary, spec=spec,
                       external_modules=externals)

    def _visit(self, obj: Any, is_root: bool = False) -> int:
        known = self.by_id.get(id(obj))
        if known is not None:
            return known
        index = len(self.nodes)
        self.by_id[id(obj)] = index
        is_class = isinstance(obj, type)
        node = Node(index, CLASS if is_class else FUNCTION, qualname_of(obj), obj)
        self.nodes.append(node)
        record_entry: List[Any] = []
        self.records.append(record_entry)

        self._end = None
        canonical, filename, lineno = self._canonical(obj, is_root)
        node.filename, node.lineno, node.end_lineno = filename, lineno, self._end
        if canonical is None and is_class and issubclass(obj, tuple) \
                and hasattr(obj, "_fields"):
            # A namedtuple: generated code, fully described by its fields and defaults.
            node.digest = hashing.digest_value(
                ("namedtuple", obj.__name__, obj._fields, getattr(obj, "_field_defaults", {})))
            record_entry.extend([node.kind, node.digest])
            return index
        if canonical is None:
            node.from_source = False
            self.persistable = False
            hasher = hashing.Hasher()
            if is_class:
                hasher.feed_str(node.qualname)
                for name, member in sorted(vars(obj).items()):
                    if isinstance(member, types.FunctionType):
                        hasher.feed_str(name)
                        _code_digest(member.__code__, hasher)
            else:
                _code_digest(obj.__code__, hasher)
            node.digest = hasher.digest()
            if is_pickled_copy(obj):
                # Copied by value into this process (cloudpickle) without the parent's
                # analysis: what it reaches cannot be followed, and keying it by its
                # bytecode could serve results made with other helpers. A key of this
                # process only: a re-run, never a stale value.
                hasher.feed_bytes(_PROCESS_NONCE)
                node.digest = hasher.digest()
                record_entry.extend([node.kind, node.digest])
                self._warn(obj, filename, lineno, (
                    "it was copied into this worker process without its source (a "
                    "definition of __main__ or a notebook cell), so results computed here "
                    "are not shared with other processes; define it in a module of your "
                    "project, or pass the function that uses it from __main__ too"))
                return index
            record_entry.extend([node.kind, node.digest])
            self._warn(obj, filename, lineno, "its source is not available (analysed from "
                                              "bytecode: helpers it calls are not followed)")
            return index

        node.canonical = canonical
        record_entry.extend([node.kind, canonical.data])
        own = hashing.Hasher()
        own.feed_bytes(canonical.data)
        resolved: List[Any] = []
        for ref in canonical.refs:
            try:
                target = resolve_ref(ref, obj)
            except Exception as exc:  # an import inside the function that fails now
                target = Target(EXTERNAL, f"<unresolved {'.'.join(ref.chain)}: "
                                          f"{type(exc).__name__}>")
            resolved.append((ref, target))
        self._blind_spots(obj, canonical.blind_spots, resolved, filename)
        for ref, target in resolved:
            entry = self._fold(node, ref, target, own)
            record_entry.append(entry)
        if not is_root and not is_class:
            # Default values were evaluated when the helper was defined: read them as values.
            if obj.__defaults__ or obj.__kwdefaults__:
                slot = self._slot(("defaults", id(obj)),
                                  Slot(f"{node.qualname}.__defaults__", defaults_of=obj,
                                       spec=["defaults", describe(obj)]))
                node.slots.append(slot)
                record_entry.append(("defaults", slot))
        node.digest = own.digest()
        return index

    def _fold(self, node: Node, ref: Any, target: Target, own: hashing.Hasher) -> Any:
        kind = target.kind
        if kind in (FUNCTION, CLASS):
            self._guard(target)
            child = self._visit(target.obj)
            node.edges.append(child)
            own.feed(("code", self.nodes[child].qualname, target.rest))
            return ("code", child, target.rest)
        if kind in (GLOBAL, CLOSURE):
            if target.cell is not None:
                freevar = self._root_freevar(target.cell)
                slot = self._slot(("cell", id(target.cell)), Slot(
                    target.qualname, cell=target.cell,
                    spec=None if freevar is None else ["cell", freevar]))
            else:
                module = self._module_name(target.namespace)
                slot = self._slot(("global", id(target.namespace), target.name), Slot(
                    _origin_name(module, target.name) or target.qualname, target.namespace,
                    target.name,
                    spec=None if module is None else ["global", module, target.name]))
            node.slots.append(slot)
            own.feed(("value", target.qualname))
            return ("value", slot, target.rest)
        # External or a module: identified by name.
        name = target.qualname
        node.externals.append(name + "".join(f".{a}" for a in target.rest))
        own.feed(("external", name, target.rest))
        if kind == EXTERNAL and target.namespace is not None:
            self._guard(target)
        return ("external", name, target.rest)

    def _slot(self, key: Tuple[Any, ...], slot: Slot) -> int:
        index = self.slot_index.get(key)
        if index is None:
            index = self.slot_index[key] = len(self.slots)
            self.slots.append(slot)
        return index

    def _guard(self, target: Target) -> None:
        if target.cell is not None:
            key = ("cell", id(target.cell))
            guard = (None, target.cell, cell_value(target.cell))
            freevar = self._root_freevar(target.cell)
            spec = None if freevar is None else ["cell", None, freevar, describe(guard[2])]
        elif target.namespace is not None and target.name is not None:
            key = (id(target.namespace), target.name)
            guard = (target.namespace, target.name, target.namespace.get(target.name, UNBOUND))
            module = self._module_name(target.namespace)
            spec = None if module is None else ["global", module, target.name,
                                                describe(guard[2])]
        else:
            return
        if key not in self.guard_keys:
            self.guard_keys.add(key)
            self.guards.append(guard)
            if spec is None or spec[3] is None:
                self.persistable = False
            self.guard_specs.append(spec)

    def _root_freevar(self, cell: Any) -> Optional[str]:
        """The name of ``cell`` among the root's closure cells (others are not kept)."""
        closure = getattr(self.root, "__closure__", None) or ()
        for name, candidate in zip(getattr(self.root, "__code__", None).co_freevars
                                   if closure else (), closure):
            if candidate is cell:
                return name
        return None

    @staticmethod
    def _module_name(namespace: Any) -> Optional[str]:
        """The name under which ``namespace`` is a module's dict in sys.modules."""
        name = namespace.get("__name__") if isinstance(namespace, dict) else None
        module = sys.modules.get(name) if isinstance(name, str) else None
        return name if module is not None and vars(module) is namespace else None

    def _canonical(self, obj: Any, is_root: bool) -> Tuple[Optional[Canonical], Any, Any]:
        if is_pickled_copy(obj):
            # A copy of a parent's __main__ definition without the parent's analysis:
            # the file on disk (if any) may not be what it was made from, and its names
            # live in a namespace of its own. Keyed by bytecode, for this process only.
            code = getattr(obj, "__code__", None)
            return None, getattr(code, "co_filename", None), getattr(code, "co_firstlineno", None)
        if isinstance(obj, type):
            record, node = _class_node(obj)
            if node is None:
                return None, getattr(record, "filename", None), None
            self.files[record.filename] = record.digest.hex()
            self._end = node.end_lineno
            fresh = _fresh_copy(record, node)
            return (canonical_class(fresh, owned=True) if fresh is not None
                    else canonical_class(node)), record.filename, node.lineno
        record, nodes = _function_node(obj)
        code = obj.__code__
        if not nodes:
            return None, code.co_filename, code.co_firstlineno
        self.files[record.filename] = record.digest.hex()
        self._end = max(getattr(n, "end_lineno", 0) or 0 for n in nodes) or None
        parts = []
        for n in nodes:
            fresh = _fresh_copy(record, n)
            parts.append(canonical_function(fresh, include_defaults=not is_root, owned=True)
                         if fresh is not None
                         else canonical_function(n, include_defaults=not is_root))
        if len(parts) == 1:
            return parts[0], record.filename, code.co_firstlineno
        # Several lambdas on one line: fold them all (a change in any re-runs).
        data = b"\n".join(p.data for p in parts)
        merged = Canonical(data, tuple(r for p in parts for r in p.refs),
                           tuple(b for p in parts for b in p.blind_spots),
                           "\n".join(p.text for p in parts))
        return merged, record.filename, code.co_firstlineno

    def _blind_spots(self, obj: Any, spots: Sequence[BlindSpot], resolved: List[Any],
                     filename: Optional[str]) -> None:
        if not spots:
            return
        # Warn only where the name really is the builtin (or importlib's function):
        # a user function that happens to be called ``eval`` is followed like any other.
        denotes = {".".join(ref.chain): target.qualname for ref, target in resolved}
        for spot in spots:
            expected = ("importlib:import_module" if spot.callee.endswith("import_module")
                        else f"builtins:{spot.callee}")
            if denotes.get(spot.callee) != expected:
                continue
            self._warn(obj, filename, spot.lineno, spot.what)

    def _warn(self, obj: Any, filename: Optional[str], lineno: Optional[int],
              what: str) -> None:
        index = self.by_id.get(id(obj))
        if index is not None:
            self.nodes[index].blind_spots.append((lineno, what))
        root = qualname_of(self.root)
        where = qualname_of(obj)
        via = "" if obj is self.root else f", reached from {root}"
        if is_acknowledged(self.root):
            return  # depends_on covers it: recorded for graph(), not warned
        message = (
            f"checkpointing cannot see what {where}{via} depends on here: {what}. "
            f"A change to what it reaches this way will not re-run {root}. Name what it "
            f"uses with checkpoint(depends_on=[...]) (functions, classes, modules or "
            f"values), leave arguments out of the key with checkpoint(ignore=[...]), or "
            f"silence this with defaults['analysis.warn_blind_spots'] = False")
        self.warnings.append([[root, where, lineno, what], message, filename, lineno])
        warn_once((root, where, lineno, what), message, filename, lineno)


_ORIGINS: Dict[int, Tuple[Any, Dict[str, str]]] = {}


def _origin_name(module: Optional[str], name: str) -> Optional[str]:
    """``pkg.settings:RATE`` for a global that ``module`` imported with ``from
    pkg.settings import RATE``: the name a user knows it by (display only)."""
    record = INDEX.by_module(module) if module else None
    if record is None:
        return None
    cached = _ORIGINS.get(id(record))
    if cached is None or cached[0] is not record:
        origins: Dict[str, str] = {}
        is_package = os.path.basename(record.filename).startswith("__init__.")
        try:
            body = record.tree.body
        except SyntaxError:
            body = []
        for stmt in _statements(body):
            if not isinstance(stmt, ast.ImportFrom):
                continue
            source = stmt.module or ""
            if stmt.level:
                package = module if is_package else module.rpartition(".")[0]  # type: ignore
                for _ in range(stmt.level - 1):
                    package = package.rpartition(".")[0]
                source = f"{package}.{source}" if source else package
            for alias in stmt.names:
                origins[alias.asname or alias.name] = f"{source}:{alias.name}"
        cached = _ORIGINS[id(record)] = (record, origins)
    return cached[1].get(name)


def dependency_graph(func: Any) -> Any:
    """A :class:`networkx.DiGraph` of what ``func`` reaches.

    Nodes are qualified names (``pkg.mod:helper``) with attributes ``kind``
    (function, class, global, closure, external), ``file``, ``line`` and ``digest``
    (hex of the node's own canonical code); edges point from user to used.
    """
    import networkx as nx

    plan = plan_for(unwrap(func))
    if plan.from_disk:  # read back without its definitions: analyse for display
        plan = build_plan(unwrap(func))
    graph = nx.DiGraph()
    for node in plan.nodes:
        graph.add_node(node.qualname, kind=node.kind, file=node.filename, line=node.lineno,
                       digest=node.digest.hex(), from_source=node.from_source)
    for node in plan.nodes:
        for child in node.edges:
            graph.add_edge(node.qualname, plan.nodes[child].qualname)
        for slot_index in node.slots:
            slot = plan.slots[slot_index]
            kind = CLOSURE if slot.cell is not None else GLOBAL
            graph.add_node(slot.qualname, kind=kind)
            graph.add_edge(node.qualname, slot.qualname)
        for name in node.externals:
            graph.add_node(name, kind=EXTERNAL)
            graph.add_edge(node.qualname, name)
    return graph



def member_digests(cls: type) -> Dict[str, List[Any]]:
    """Digest, file and line of each method defined in the body of the class ``cls``,
    by qualified name (``pkg.mod:Vec.norm``): to say *which* method of a class changed
    (the class's own node digest covers its whole body). Empty without source."""
    record, node = _class_node(cls)
    if node is None:
        return {}
    owner = qualname_of(cls)
    out: Dict[str, List[Any]] = {}
    for stmt in node.body:
        if not isinstance(stmt, _FN):
            continue
        fresh = _fresh_copy(record, stmt)
        canonical = canonical_function(fresh if fresh is not None else stmt,
                                       include_defaults=True, owned=fresh is not None)
        out[f"{owner}.{stmt.name}"] = [hashing.Hasher().feed_bytes(canonical.data).hexdigest(),
                                       record.filename, _first_line(stmt)]
    return out
