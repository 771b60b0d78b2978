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

Why one module of about 1,300 lines: the builder's steps (finding a definition's
source as it ran, folding resolved names, guards, slots, plugins followed by name,
blind spots) all update one :class:`_Builder`'s state; finding definitions in the
source (``_function_node``, ``_class_node``) could move to the analysis package.
"""

from __future__ import annotations

import ast
import logging
import os
import sys
import types
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import hashing
from .analysis.canon import (
    BlindSpot,
    Canonical,
    Ref,
    all_nodes,
    canonical_class,
    canonical_function,
    child_nodes,
)
from .analysis.resolve import (
    CLASS,
    CLOSURE,
    EXTERNAL,
    FUNCTION,
    GLOBAL,
    MODULE,
    UNBOUND,
    Target,
    is_pickled_copy,
    is_project_object,
    qualname_of,
    resolve_ref,
    unwrap,
    unwrap_chain,
    value_attributes,
    wrapper_attributes,
)
from .keyplan import (
    ANALYSIS_FORMAT,
    KeyPlan,
    NamesSnapshot,
    Slot,
    announce,
    cell_value,
    describe,
    hidden_layers,
    is_acknowledged,
    plan_for,
    probe_digest,
)
from .source import INDEX, display_path

__all__ = ["Node", "build_plan", "dependency_graph", "source_of"]

logger = logging.getLogger("checkpointing")


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
    # A definition the root refers to, not analysed in this plan (a local plan's child).
    stub: bool = False
    # How another process finds it (see keyplan._find_definition); None: it cannot.
    find: Any = None
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


_LINE_INDEX: Dict[Tuple[int, bool], Tuple[Any, Dict[int, List[ast.AST]]]] = {}
# The nodes that can hold statements: a ``def`` or ``class`` is never inside an
# expression, so the index of a module's definitions skips expressions (most of its
# nodes); lambdas, which are expressions, have an index of their own, made on demand.
_BLOCKS = (ast.stmt, ast.excepthandler, *((ast.match_case,) if hasattr(ast, "match_case") else ()))


def _definitions_by_line(record: Any, lambdas: bool = False) -> Dict[int, List[ast.AST]]:
    """The ``def`` and ``class`` statements of a module by first line (decorators
    included), or its lambdas by line."""
    cached = _LINE_INDEX.get((id(record), lambdas))
    if cached is not None and cached[0] is record:
        return cached[1]
    table: Dict[int, List[ast.AST]] = {}
    if lambdas:
        for node in all_nodes(record.tree):
            if isinstance(node, ast.Lambda):
                table.setdefault(node.lineno, []).append(node)
    else:
        todo: List[ast.AST] = [record.tree]
        while todo:
            for node in child_nodes(todo.pop()):
                if isinstance(node, _BLOCKS):
                    todo.append(node)
                    if isinstance(node, (*_FN, ast.ClassDef)):
                        table.setdefault(_first_line(node), []).append(node)
    _LINE_INDEX[(id(record), lambdas)] = (record, table)
    return table


def _function_node(func: types.FunctionType) -> Tuple[Any, List[ast.AST]]:
    code = func.__code__
    record = _record_for_code(code)
    if record is None:
        return None, []
    try:
        lambdas = code.co_name == "<lambda>"
        candidates = _definitions_by_line(record, lambdas).get(code.co_firstlineno, [])
    except SyntaxError:
        return None, []
    if code.co_name == "<lambda>":
        found = [n for n in candidates if isinstance(n, ast.Lambda)]
    else:
        found = [n for n in candidates if isinstance(n, _FN) and n.name == code.co_name]
    return record, found


def _class_node(cls: type) -> Tuple[Any, Optional[ast.ClassDef]]:
    """The ``class`` statement that defined ``cls``, among those of its qualified name.

    A module can define a class twice (under ``if``/``else``, ``try``/``except``, or
    once more further down): the statement that ran is the one whose line is
    ``__firstlineno__`` (3.13+), else the one whose ``def`` lines are those of the
    methods' code objects, else the last one in the file.
    """
    record = _record_for_class(cls)
    if record is None:
        return None, None
    try:
        body: List[ast.stmt] = record.tree.body
    except SyntaxError:
        return record, None
    scopes: List[Any] = [body]
    candidates: List[Any] = []
    parts = [p for p in cls.__qualname__.split(".") if p != "<locals>"]
    for part in parts:
        candidates = [
            n
            for scope in scopes
            for n in _statements(scope)
            if isinstance(n, (*_FN, ast.ClassDef)) and n.name == part
        ]
        scopes = [n.body for n in candidates]
    candidates = [n for n in candidates if isinstance(n, ast.ClassDef)]
    if len(candidates) > 1:
        firstlineno = getattr(cls, "__firstlineno__", None)
        if firstlineno is not None:
            exact = [n for n in candidates if _first_line(n) == firstlineno]
        else:
            lines = _method_lines(cls, record.filename)
            exact = [n for n in candidates if lines and lines <= _def_lines(n)]
        candidates = exact or candidates
    return record, candidates[-1] if candidates else None


def _method_lines(cls: type, filename: str) -> set:
    """First lines of the functions defined in ``cls``'s own body (their code objects)."""
    lines = set()
    prefix = cls.__qualname__ + "."
    for member in vars(cls).values():
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        funcs = (
            [member.fget, member.fset, member.fdel] if isinstance(member, property) else [member]
        )
        for func in funcs:
            code = getattr(func, "__code__", None)
            if (
                isinstance(code, types.CodeType)
                and code.co_filename == filename
                and getattr(func, "__qualname__", "").startswith(prefix)
            ):
                lines.add(code.co_firstlineno)
    return lines


def _def_lines(node: ast.ClassDef) -> set:
    return {_first_line(n) for n in _statements(node.body) if isinstance(n, _FN)}


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
                out.extend(
                    _statements(
                        [s for s in inner if isinstance(s, ast.stmt)]
                        + [s for h in inner if isinstance(h, ast.excepthandler) for s in h.body]
                    )
                )
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
    text = "".join(record.lines[first - 1 : node.end_lineno])  # type: ignore[attr-defined]
    indented = text[:1] in (" ", "\t")
    # Blank lines in front put the copy at its own line numbers (moving a tree's line
    # numbers afterwards walks it in Python: a third of the time of an analysis).
    padding = "\n" * max(first - 2 if indented else first - 1, 0)
    try:
        tree = ast.parse(padding + "if 1:\n" + text if indented else padding + text)
    except SyntaxError:
        return None
    fresh = tree.body[0].body[0] if indented else tree.body[0]  # type: ignore[attr-defined]
    if type(fresh) is not type(node):
        return None
    if _first_line(fresh) != first:
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
    return "".join(lines[_first_line(node) - 1 : node.end_lineno])  # type: ignore[attr-defined]


def _decorators_below_cache(func: Any, node: ast.AST) -> Optional[int]:
    """How many of the checkpointed function's decorators sit below the cache's own.

    ``@checkpoint`` over ``@logged`` caches what ``logged``'s wrapper returns: the
    decorators below it are part of the function, those above it wrap the cache and
    are not. The cache's decorator is recognised by what its name denotes (an object of
    the ``checkpointing`` package), so ``cp = checkpoint(...)`` then ``@cp`` counts too.
    None (keep them all) when none of them is the cache's: ``checkpoint(f)`` was
    applied to the fully decorated function.
    """
    decorators = getattr(node, "decorator_list", None) or []
    for position in range(len(decorators) - 1, -1, -1):
        expr = decorators[position]
        while isinstance(expr, ast.Call):
            expr = expr.func
        chain: List[str] = []
        while isinstance(expr, ast.Attribute):
            chain.append(expr.attr)
            expr = expr.value
        if not isinstance(expr, ast.Name):
            continue
        chain.append(expr.id)
        try:
            target = resolve_ref(Ref(tuple(reversed(chain)), "global", 0), func)
        except Exception:
            continue
        value = target.obj
        owner = value if isinstance(value, (type, types.FunctionType)) else type(value)
        if (getattr(owner, "__module__", None) or "").split(".")[0] == "checkpointing":
            return len(decorators) - 1 - position
    return None


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


def _freevar(func: Any, cell: Any) -> Optional[str]:
    """The name of ``cell`` among ``func``'s closure cells (None if it is not one)."""
    closure = getattr(func, "__closure__", None) or ()
    code = getattr(func, "__code__", None)
    for name, candidate in zip(code.co_freevars if closure else (), closure):
        if candidate is cell:
            return name
    return None


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


def _dotted(qualname: str, rest: Tuple[str, ...]) -> str:
    """``module:attr`` and the attributes after it as one dotted path."""
    return ".".join((qualname.replace(":", "."),) + tuple(rest))


def build_plan(func: Any, warn: bool = True, local: bool = False) -> KeyPlan:
    """Analyse ``func`` (a function or class) and everything it reaches (``warn``:
    announce its blind spots; False where the analysis is only displayed).

    ``local``: analyse ``func`` alone. The definitions it refers to become the plan's
    ``children`` (in the order its code names them) instead of being followed; the
    walk over definitions found in values (:mod:`checkpointing.keyplan`) digests them
    as nodes of its own graph, so a registry of 800 functions that reach one another
    costs 800 local analyses, not 800 transitive ones.
    """
    builder = _Builder(func, local)
    builder.quiet = not warn
    return builder.build()


class _Builder:
    def __init__(self, root: Any, local: bool = False) -> None:
        # A local plan may be of a wrapper layer (its own code, see hidden_layers).
        self.root = root if local else unwrap(root)
        self.local = local
        self.children: List[Any] = []
        # How another process finds each child (None: it cannot).
        self.child_specs: List[Any] = []
        self.nodes: List[Node] = []
        self.by_id: Dict[int, int] = {}
        self.slots: List[Slot] = []
        self.slot_index: Dict[Tuple[Any, ...], int] = {}
        # id(owner) -> (owner, its description, its qualified name), for attribute slots.
        self.owner_names: Dict[int, Tuple[Any, Any, str]] = {}
        self.guards: List[Tuple[Any, Any, Any]] = []
        self.guard_specs: List[Any] = []
        self.guard_keys: set = set()
        self.records: List[List[Any]] = []
        self.files: Dict[str, str] = {}
        self.persistable = True
        self.not_stored: List[str] = []  # why the analysis cannot be stored, if it cannot
        self.quiet = False
        self.warnings: List[Any] = []
        # What the analysis could not see: (where, file, line, what, fix).
        self.blind: List[Tuple[str, Optional[str], Optional[int], str, Optional[str]]] = []
        # [describe(cls), names] of each class whose value attributes became slots: a
        # stored plan is reused only while each class still has the same names.
        self.attribute_sets: List[Any] = []

    def build(self) -> KeyPlan:
        self._visit(self.root, is_root=True)
        self._guard_code()
        self._announce()
        hasher = hashing.Hasher()
        hasher.feed_bytes(b"checkpointing.depgraph/1")
        for record in self.records:
            hasher.feed(tuple(record))
        static = hasher.digest()
        summary = [
            {
                "qualname": n.qualname,
                "kind": n.kind,
                "file": n.filename,
                "line": n.lineno,
                "end": n.end_lineno,
                "digest": n.digest.hex(),
            }
            for n in self.nodes
            if not n.stub
        ]
        externals = sorted(
            {name.partition(":")[0].split(".")[0] for n in self.nodes for name in n.externals}
        )
        spec = None
        self.not_stored.extend(
            f"the value {s.qualname} cannot be found again in another process"
            for s in self.slots
            if s.spec is None
        )
        if self.persistable and not self.not_stored:
            spec = {
                "format": ANALYSIS_FORMAT,
                "root": describe(self.root),
                "static_digest": static.hex(),
                "files": self.files,
                "guards": self.guard_specs,
                "slots": [[s.qualname, s.spec] for s in self.slots],
                "nodes": summary,
                "externals": externals,
                "warnings": self.warnings,
                "attributes": self.attribute_sets,
                "blind_spots": [
                    [filename, lineno, what, where]
                    for where, filename, lineno, what, _ in self.blind
                ],
            }
            if self.local:
                spec["children"] = self.child_specs
                if any(d is None for d in spec["children"]):
                    spec = None
                    self.not_stored.append("a definition it refers to cannot be named")
        plan = KeyPlan(
            self.root,
            self.nodes,
            self.slots,
            self.guards,
            static,
            files=self.files,
            summary=summary,
            spec=spec,
            external_modules=externals,
            children=self.children,
        )
        plan.not_stored = "; ".join(dict.fromkeys(self.not_stored)) or None
        return plan

    def _visit(self, obj: Any, is_root: bool = False, spec: Any = None) -> int:
        """Number ``obj`` and analyse it (in a local plan: only the root; ``spec`` then
        says how another process finds a child that its own description cannot name,
        a wrapper layer)."""
        known = self.by_id.get(id(obj))
        if known is not None:
            return known
        index = len(self.nodes)
        self.by_id[id(obj)] = index
        is_class = isinstance(obj, type)
        node = Node(index, CLASS if is_class else FUNCTION, qualname_of(obj), obj)
        # A wrapper layer describes as the function it wraps: it is found by ``spec``.
        node.find = spec if spec is not None else describe(obj) if unwrap(obj) is obj else None
        self.nodes.append(node)
        record_entry: List[Any] = []
        self.records.append(record_entry)
        if self.local and not is_root:
            # Its content is the child's own digest, joined by the walk (by position).
            node.stub = True
            record_entry.extend(["child", node.kind, len(self.children)])
            self.children.append(obj)
            self.child_specs.append(node.find)
            return index

        self._end = None
        # The root of a local plan is a definition found in a value, not a checkpointed
        # function: its decorators and default values are part of it.
        canonical, filename, lineno = self._canonical(obj, is_root and not self.local)
        node.filename, node.lineno, node.end_lineno = filename, lineno, self._end
        if canonical is None and is_class and issubclass(obj, tuple) and hasattr(obj, "_fields"):
            # A namedtuple: generated code, fully described by its fields and defaults.
            node.digest = hashing.digest_value(
                ("namedtuple", obj.__name__, obj._fields, getattr(obj, "_field_defaults", {}))
            )
            record_entry.extend([node.kind, node.digest])
            return index
        if canonical is None:
            node.from_source = False
            self.persistable = False
            self.not_stored.append(f"the source of {node.qualname} is not available")
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
                self._warn(
                    obj,
                    filename,
                    lineno,
                    (
                        "it was copied into this worker process without its source (a "
                        "definition of __main__ or a notebook cell), so results computed here "
                        "are not shared with other processes; define it in a module of your "
                        "project, or pass the function that uses it from __main__ too"
                    ),
                )
                return index
            record_entry.extend([node.kind, node.digest])
            self._warn(
                obj,
                filename,
                lineno,
                "its source is not available (analysed from "
                "bytecode: helpers it calls are not followed)",
            )
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
                target = Target(
                    EXTERNAL, f"<unresolved {'.'.join(ref.chain)}: {type(exc).__name__}>"
                )
            resolved.append((ref, target))
        self._blind_spots(obj, canonical.blind_spots, resolved, filename)
        for ref, target in resolved:
            entry = self._fold(node, ref, target, own)
            record_entry.append(entry)
            record_entry.extend(self._bound_parts(node, target, own))
        if is_class:
            record_entry.extend(self._class_attributes(node, obj, own))
        if (not is_root or self.local) and not is_class:
            # Default values were evaluated when the helper was defined: read them as values.
            if obj.__defaults__ or obj.__kwdefaults__:
                slot = self._slot(
                    ("defaults", id(obj)),
                    Slot(
                        f"{node.qualname}.__defaults__",
                        defaults_of=obj,
                        spec=None if node.find is None else ["defaults", node.find],
                    ),
                )
                node.slots.append(slot)
                record_entry.append(("defaults", slot))
        node.digest = own.digest()
        return index

    def _fold(self, node: Node, ref: Any, target: Target, own: hashing.Hasher) -> Any:
        kind = target.kind
        if kind in (FUNCTION, CLASS):
            self._guard(target, node.obj)
            child = self._visit(target.obj)
            node.edges.append(child)
            own.feed(("code", self.nodes[child].qualname, target.rest))
            return ("code", child, target.rest)
        if kind in (GLOBAL, CLOSURE):
            if target.cell is not None:
                owner, freevar = self._cell_owner(target.cell, node.obj)
                slot = self._slot(
                    ("cell", id(target.cell)),
                    Slot(
                        target.qualname,
                        cell=target.cell,
                        spec=None
                        if freevar is None
                        else ["cell", freevar]
                        if owner is None
                        else ["cell", freevar, owner],
                    ),
                )
            else:
                module = self._module_name(target.namespace)
                slot = self._slot(
                    ("global", id(target.namespace), target.name),
                    Slot(
                        _origin_name(module, target.name) or target.qualname,
                        target.namespace,
                        target.name,
                        spec=None if module is None else ["global", module, target.name],
                    ),
                )
            node.slots.append(slot)
            own.feed(("value", target.qualname))
            return ("value", slot, target.rest)
        # External or a module: identified by name; reached through a module, by the
        # path written from it (``Target.path``), whatever the library has loaded yet.
        name = target.qualname
        node.externals.append(name + "".join(f".{a}" for a in target.rest))
        path = target.path or _dotted(name, target.rest)
        own.feed(("external", path))
        if kind == EXTERNAL and target.namespace is not None:
            self._guard(target, node.obj)
        for namespace, attr in target.via:
            module = self._module_name(namespace)
            self._guard(Target(GLOBAL, f"{module}:{attr}", None, (), namespace, attr), node.obj)
        return ("external", path)

    def _bound_parts(self, node: Node, target: Target, own: hashing.Hasher) -> List[Any]:
        """What a reached function is besides its own code: the attributes read on it
        (``helper.scale``), and the wrappers around it that its source does not show.

        ``functools.wraps`` makes a wrapper look like the function it wraps; the
        analysis follows ``__wrapped__`` to the source, so what the wrapper adds is
        folded here: the attributes it carries (a ``singledispatch`` registry) and, for
        a wrapper applied by a call (``helper = logged(_helper)``) rather than by a
        decorator line (whose code is in the source), the wrapper's own code.
        """
        if target.kind != FUNCTION:
            return []
        if target.cell is not None:
            bound = cell_value(target.cell)
        elif target.namespace is not None and target.name is not None:
            bound = target.namespace.get(target.name, UNBOUND)
        else:
            return []
        entries: List[Any] = []
        if target.rest and not target.rest[0].startswith("__"):
            entries.append(self._attribute_slot(node, bound, 0, target.rest[0], own))
        chain = unwrap_chain(bound)
        for hops, layer in enumerate(chain[:-1]):
            for name in wrapper_attributes(layer):
                entries.append(self._attribute_slot(node, layer, hops, name, own))
        hidden = {id(layer) for layer in hidden_layers(bound)}
        for hops, layer in enumerate(chain[:-1]):
            if id(layer) in hidden:
                identity = describe(bound)
                child = self._visit(layer, spec=identity and ["wrapper", identity, hops])
                node.edges.append(child)
                own.feed(("wrapper", self.nodes[child].qualname))
                entries.append(("wrapper", child))
        return [e for e in entries if e is not None]

    def _class_attributes(self, node: Node, cls: type, own: hashing.Hasher) -> List[Any]:
        """Slots for a class's value attributes (:func:`value_attributes`), wherever
        they were assigned: ``Cls.RATE = 4`` in any module, a registry filled by
        ``__init_subclass__``, a method replaced from outside the class body."""
        names = value_attributes(cls)
        identity = describe(cls)
        if identity is not None:
            self.attribute_sets.append([identity, names])
        entries = []
        for name in names:
            try:
                probe_digest(vars(cls)[name])
            except Exception as exc:
                # Machinery of a library's base class (a validator, a lock): a value
                # that cannot be hashed would make every call warn.
                logger.debug("%s.%s not tracked: %s", node.qualname, name, exc)
                continue
            entries.append(self._attribute_slot(node, cls, -1, name, own))
        return entries

    def _attribute_slot(
        self, node: Node, owner: Any, hops: int, name: str, own: hashing.Hasher
    ) -> Any:
        """Read ``owner.name`` at every call (from the owner's own namespace)."""
        namespace = vars(owner) if isinstance(owner, type) else getattr(owner, "__dict__", None)
        if namespace is None:
            return None
        named = self.owner_names.get(id(owner))
        if named is None or named[0] is not owner:  # a wrapper carries a dozen
            named = self.owner_names[id(owner)] = (owner, describe(owner), qualname_of(owner))
        identity = named[1]
        slot = self._slot(
            ("attribute", id(owner), name),
            Slot(
                f"{named[2]}.{name}",
                namespace,
                name,
                spec=None if identity is None else ["attribute", identity, hops, name],
                owner=owner,
            ),
        )
        node.slots.append(slot)
        own.feed(("attribute", hops, name))
        return ("attribute", slot, hops, name)

    def _slot(self, key: Tuple[Any, ...], slot: Slot) -> int:
        index = self.slot_index.get(key)
        if index is None:
            index = self.slot_index[key] = len(self.slots)
            self.slots.append(slot)
        return index

    def _guard(self, target: Target, user: Any) -> None:
        if target.cell is not None:
            key = ("cell", id(target.cell))
            guard = (None, target.cell, cell_value(target.cell))
            owner, freevar = self._cell_owner(target.cell, user)
            spec = None if freevar is None else ["cell", owner, freevar, describe(guard[2])]
        elif target.namespace is not None and target.name is not None:
            key = (id(target.namespace), target.name)
            guard = (target.namespace, target.name, target.namespace.get(target.name, UNBOUND))
            module = self._module_name(target.namespace)
            spec = None if module is None else ["global", module, target.name, describe(guard[2])]
        else:
            return
        if key not in self.guard_keys:
            self.guard_keys.add(key)
            self.guards.append(guard)
            if spec is None or spec[3] is None:
                self.persistable = False
                self.not_stored.append(
                    f"{target.qualname} is a name another process cannot check ("
                    + (
                        "not a module global or a closure variable of the function"
                        if spec is None
                        else f"it is bound to a {type(guard[2]).__name__}, not a function, "
                        "class or module"
                    )
                    + ")"
                )
            self.guard_specs.append(spec)

    def _cell_owner(self, cell: Any, user: Any) -> Tuple[Optional[List[Any]], Optional[str]]:
        """How another process finds ``cell``, read by definition ``user``: (None, its
        name) for a closure variable of the root; (the description of ``user``, its name)
        for one of a reached function that a guard finds again; else (None, None)."""
        name = _freevar(self.root, cell)
        if name is not None:
            return None, name
        name = _freevar(user, cell)
        if name is not None and any(unwrap(value) is user for _, _, value in self.guards):
            return describe(user), name
        return None, None

    def _guard_code(self) -> None:
        """Guard the code object of every function analysed (methods of classes too).

        ``%autoreload`` and in-place patches (``f.__code__ = g.__code__``) keep the
        function object and swap what runs: a plan whose functions now run other code
        is stale, and the new code is analysed from its own source. A method whose
        code is not the one written in its class body (patched before the analysis)
        is analysed as a definition of its own.
        """
        i = 0
        while i < len(self.nodes):  # grows as patched methods are followed
            node = self.nodes[i]
            i += 1
            if node.stub:
                continue  # guarded by its own (local) plan
            obj = node.obj
            if isinstance(obj, types.FunctionType):
                self._add_code_guard(obj, node.find)
            elif isinstance(obj, type):
                for name, member in sorted(vars(obj).items()):
                    func = unwrap(member)
                    if not isinstance(func, types.FunctionType):
                        continue
                    self._add_code_guard(func, describe(func))
                    if (
                        node.from_source
                        and not _written_in(func.__code__, node)
                        and is_project_object(func)
                    ):
                        child = self._visit(func)
                        node.edges.append(child)
                        self.records[node.index].append(("method", name, child))

    def _add_code_guard(self, func: types.FunctionType, find: Any) -> None:
        key = ("code", id(func))
        if key in self.guard_keys:
            return
        self.guard_keys.add(key)
        self.guards.append((func, "__code__", func.__code__))
        if find is None:
            self.persistable = False
            self.not_stored.append(f"the wrapper {qualname_of(func)} cannot be found by name")
        self.guard_specs.append(["code", None, None, find])

    @staticmethod
    def _module_name(namespace: Any) -> Optional[str]:
        """The name under which ``namespace`` is a module's dict in sys.modules."""
        name = namespace.get("__name__") if isinstance(namespace, dict) else None
        module = sys.modules.get(name) if isinstance(name, str) else None
        return name if module is not None and vars(module) is namespace else None

    def _canonical(self, obj: Any, is_root: bool) -> Tuple[Optional[Canonical], Any, Any]:
        """The canonical code of a definition, memoised per process: the definitions
        found in a registry are analysed as roots of their own, and each reaches
        much the same helpers (in networkx, the 1,500-line ``_dispatchable``)."""
        key = (id(obj), is_root)
        code = getattr(obj, "__code__", None)
        record = _record_for_class(obj) if isinstance(obj, type) else _record_for_code(code)
        cached = _CANONICAL.get(key)
        if cached is not None and cached[0] is obj and cached[1] is record and cached[2] is code:
            _, _, _, result, end, files = cached
        else:
            saved, self.files = self.files, {}
            self._end = None
            try:
                result = self._canonical_uncached(obj, is_root)
            finally:
                files, self.files = self.files, saved
            end = self._end
            _CANONICAL[key] = (obj, record, code, result, end, files)
        self._end = end
        self.files.update(files)
        return result

    def _canonical_uncached(self, obj: Any, is_root: bool) -> Tuple[Optional[Canonical], Any, Any]:
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
            return (
                (
                    canonical_class(fresh, owned=True)
                    if fresh is not None
                    else canonical_class(node)
                ),
                record.filename,
                node.lineno,
            )
        record, nodes = _function_node(obj)
        code = obj.__code__
        if not nodes:
            return None, code.co_filename, code.co_firstlineno
        self.files[record.filename] = record.digest.hex()
        self._end = max(getattr(n, "end_lineno", 0) or 0 for n in nodes) or None
        parts = []
        for n in nodes:
            fresh = _fresh_copy(record, n)
            keep = _decorators_below_cache(obj, n) if is_root else None
            parts.append(
                canonical_function(fresh, include_defaults=not is_root, decorators=keep, owned=True)
                if fresh is not None
                else canonical_function(n, include_defaults=not is_root, decorators=keep)
            )
        if len(parts) == 1:
            return parts[0], record.filename, code.co_firstlineno
        # Several lambdas on one line: fold them all (a change in any re-runs).
        data = b"\n".join(p.data for p in parts)
        merged = Canonical(
            data,
            tuple(r for p in parts for r in p.refs),
            tuple(b for p in parts for b in p.blind_spots),
            "\n".join(p.text for p in parts),
        )
        return merged, record.filename, code.co_firstlineno

    def _blind_spots(
        self, obj: Any, spots: Sequence[BlindSpot], resolved: List[Any], filename: Optional[str]
    ) -> None:
        if not spots:
            return
        # Warn only where the name really is the builtin (or importlib's function):
        # a user function that happens to be called ``eval`` is followed like any other.
        denotes = {".".join(ref.chain): target.qualname for ref, target in resolved}
        targets = {ref.chain: target for ref, target in resolved}
        for spot in spots:
            importing = spot.callee.endswith("import_module") or spot.callee == "__import__"
            expected = (
                "importlib:import_module"
                if spot.callee.endswith("import_module")
                else f"builtins:{spot.callee}"
            )
            if denotes.get(spot.callee) != expected:
                continue
            fix = None
            if importing and spot.args:
                what, fix = self._follow_import(obj, spot, targets)
            elif spot.callee in ("getattr", "hasattr") and len(spot.args) == 2:
                what = self._follow_getattr(obj, spot, targets)
            else:
                what = spot.what
            if what:
                self._warn(obj, filename, spot.lineno, what, fix)

    # -- plugins: modules and attributes named by strings -----------------------------
    def _follow_import(
        self, obj: Any, spot: BlindSpot, targets: Dict[Tuple[str, ...], Target]
    ) -> Tuple[str, Optional[str]]:
        """Follow ``import_module(name)`` where ``name`` is a constant or a project
        global (a string, or a list/tuple/set/dict of them); else say what to name.
        Returns (what is blind, the fix) with an empty ``what`` when resolved."""
        kind, value = spot.args[0]
        home = _home_module(obj)
        if len(spot.args) > 1 and spot.callee != "__import__":
            package_kind, package = spot.args[1]
            if package_kind != "const":
                return spot.what, None
            home = package + ".__init__"  # names relative to ``package`` itself
        names: Optional[List[str]] = None
        if kind == "const":
            names = [value]
        elif kind == "ref":
            target = targets.get(tuple(value))
            if target is not None and target.kind in (GLOBAL, CLOSURE) and not target.rest:
                names = _module_names(target.obj)
                if names is not None:
                    self._guard_names(target)
        if names is not None:
            for name in names:
                module = _plugin_module(name, home)
                if module is not None:
                    self._follow_module(obj, module)
            return "", None
        candidates = _candidate_modules(kind, value, home, targets)
        if candidates:
            shown = ", ".join(candidates[:10]) + (", ..." if len(candidates) > 10 else "")
            fix = f"checkpoint(depends_on=[{shown}]) (the modules it can import, as module objects)"
        else:
            fix = "checkpoint(depends_on=[...]) listing the modules it imports (as module objects)"
        return spot.what, fix

    def _follow_getattr(
        self, obj: Any, spot: BlindSpot, targets: Dict[Tuple[str, ...], Target]
    ) -> str:
        """``getattr(module, name)``: the attribute (a constant name) or every
        definition of the module (a computed one). Other objects: a project class is
        followed already, a global's value is in the key, external code is not
        tracked; only an object the analysis cannot know (a local) is blind."""
        (object_kind, chain), (name_kind, name) = spot.args
        target = targets.get(tuple(chain)) if object_kind == "ref" else None
        if target is None:
            return spot.what  # "" for a constant name: an attribute of a local value
        if target.kind == MODULE and not target.rest:
            module = target.obj
            if name_kind == "const":
                self._follow_attribute(obj, module, name)
            else:
                self._follow_module(obj, module)
            return ""
        if target.kind == MODULE:
            return spot.what
        return ""

    def _guard_names(self, target: Target) -> None:
        """A global naming plugins: rebinding or editing it (another plugin) makes the
        plan be built again, to follow the new one."""
        if target.namespace is None or target.name is None:
            return
        key = ("names", id(target.namespace), target.name)
        if key in self.guard_keys:
            return
        self.guard_keys.add(key)
        snapshot = NamesSnapshot(target.obj)
        self.guards.append((target.namespace, target.name, snapshot))
        module = self._module_name(target.namespace)
        if module is None:
            self.persistable = False
        self.guard_specs.append(["names", module, target.name, snapshot.data])

    def _follow_module(self, obj: Any, module: types.ModuleType) -> None:
        """Every function and class defined in ``module``, and its plain values."""
        key = ("plugin", id(obj), module.__name__)
        if key in self.guard_keys:
            return
        self.guard_keys.add(key)
        record = INDEX.by_module(module.__name__)
        if record is not None:
            self.files[record.filename] = record.digest.hex()
        for name in sorted(vars(module)):
            self._follow_attribute(obj, module, name, defined_here=True)

    def _follow_attribute(
        self, obj: Any, module: types.ModuleType, name: str, defined_here: bool = False
    ) -> None:
        namespace = vars(module)
        value = namespace.get(name, UNBOUND)
        node = self.nodes[self.by_id[id(obj)]]
        record_entry = self.records[node.index]
        original = unwrap(value) if callable(value) else value
        if isinstance(original, (types.FunctionType, type)):
            if defined_here and getattr(original, "__module__", None) != module.__name__:
                return  # imported there: reached through its own module if at all
            if not is_project_object(original):
                return
            self._guard(
                Target(
                    CLASS if isinstance(original, type) else FUNCTION,
                    qualname_of(original),
                    original,
                    (),
                    namespace,
                    name,
                ),
                obj,
            )
            child = self._visit(original)
            node.edges.append(child)
            record_entry.append(("plugin", module.__name__, name, child))
            return
        if defined_here and (name.startswith("_") or type(value) not in _PLAIN_VALUES):
            return
        if isinstance(value, types.ModuleType):
            return
        slot = self._slot(
            ("global", id(namespace), name),
            Slot(
                f"{module.__name__}:{name}", namespace, name, spec=["global", module.__name__, name]
            ),
        )
        node.slots.append(slot)
        record_entry.append(("plugin-value", module.__name__, name, slot))

    def _warn(
        self,
        obj: Any,
        filename: Optional[str],
        lineno: Optional[int],
        what: str,
        fix: Optional[str] = None,
    ) -> None:
        index = self.by_id.get(id(obj))
        if index is not None:
            self.nodes[index].blind_spots.append((lineno, what))
        where = qualname_of(obj)
        if is_acknowledged(self.root):
            return  # depends_on covers it: recorded for graph(), not warned
        self.blind.append((where, filename, lineno, what, fix))

    def _announce(self) -> None:
        """One warning for the whole analysis, naming each root cause (at the line of
        the first), stored with the plan for ``graph`` and ``why``."""
        if not self.blind:
            return
        root = qualname_of(self.root)
        causes = []
        fixes = []
        for where, filename, lineno, what, fix in self.blind:
            at = f"{_display(filename)}:{lineno}" if filename else where
            via = "" if where == root else f" (in {where})"
            causes.append(f"{at} {what}{via}")
            if fix and fix not in fixes:
                fixes.append(fix)
        if not fixes:
            fixes.append("checkpoint(depends_on=[...]) (functions, classes, modules or values)")
        message = (
            f"checkpointing cannot see everything {root} depends on: "
            f"{'; '.join(causes)}. A change to what it reaches this way will not re-run "
            f"{root}. Name what it uses with {' or '.join(fixes)}, leave arguments out "
            f"of the key with checkpoint(ignore=[...]), or silence this with "
            f"defaults['analysis.warn_blind_spots'] = False"
        )
        _, filename, lineno, _, _ = self.blind[0]
        self.warnings.append([[root], message, filename, lineno])
        if not self.quiet:
            announce(root, message, filename, lineno)


# -- Plugins named by strings -----------------------------------------------------

# Module globals of a plugin that are read at each call (the rest: definitions, modules).
_PLAIN_VALUES = frozenset(
    {int, float, complex, str, bytes, bool, type(None), tuple, list, dict, set, frozenset}
)


def _home_module(obj: Any) -> str:
    name = (
        obj.__module__
        if isinstance(obj, type)
        else obj.__globals__.get("__name__") or getattr(obj, "__module__", "") or ""
    )
    if name == "__main__":  # run with ``python -m pkg.main``: relative to ``pkg``
        spec = getattr(sys.modules.get("__main__"), "__spec__", None)
        name = getattr(spec, "name", None) or name
    return name


def _module_names(value: Any) -> Optional[List[str]]:
    """The module names a global holds: a string, or strings in a list, tuple, set or
    dict (keys and values); None if it holds anything else."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        items = [*value.keys(), *value.values()]
    elif isinstance(value, (list, tuple, set, frozenset)):
        items = list(value)
    else:
        return None
    if not items or not all(isinstance(item, str) for item in items):
        return None
    return sorted(set(items))


def _absolute(name: str, home: str) -> Optional[str]:
    if not name.startswith("."):
        return name
    import importlib.util

    module = sys.modules.get(home)
    package = (
        home if module is not None and hasattr(module, "__path__") else home.rpartition(".")[0]
    )
    try:
        return importlib.util.resolve_name(name, package)
    except (ImportError, ValueError):
        return None


def _plugin_module(name: str, home: str) -> Optional[types.ModuleType]:
    """The project module called ``name``, imported if it is not yet (the function
    imports it when it runs); None for external or missing modules."""
    import importlib
    import importlib.util

    absolute = _absolute(name, home)
    if absolute is None:
        return None
    module = sys.modules.get(absolute)
    if module is None:
        try:
            spec = importlib.util.find_spec(absolute)
        except (ImportError, ValueError):
            return None
        origin = getattr(spec, "origin", None)
        if spec is None or not origin or not INDEX.is_project_path(origin):
            return None
        try:
            module = importlib.import_module(absolute)
        except Exception:  # it fails when the function imports it too: nothing to follow
            return None
    return module if is_project_object(module) else None


def _candidate_modules(
    kind: str, value: Any, home: str, targets: Dict[Tuple[str, ...], Target]
) -> List[str]:
    """Project modules an import by a computed name could mean, where knowable: those
    under a constant prefix (``"pkg.plugins." + name``), or named by the values of
    the globals the definition reads."""
    import pkgutil

    found: List[str] = []
    if kind == "prefix":
        prefix = _absolute(value, home) or value
        package_name = prefix[:-1] if prefix.endswith(".") else prefix.rpartition(".")[0]
        package = _plugin_module(package_name, home) if package_name else None
        if package is not None and hasattr(package, "__path__"):
            for info in pkgutil.iter_modules(package.__path__):
                full = f"{package_name}.{info.name}"
                if full.startswith(prefix):
                    found.append(full)
        return found
    for target in targets.values():
        if target.kind in (GLOBAL, CLOSURE):
            for name in _module_names(target.obj) or ():
                if _plugin_module(name, home) is not None and name not in found:
                    found.append(name)
    return found


def _display(filename: Optional[str]) -> str:
    return display_path(filename) if filename else "?"


def _written_in(code: types.CodeType, node: Node) -> bool:
    """Is ``code`` the code of a definition inside ``node``'s source lines?"""
    if node.filename is None or node.lineno is None or node.end_lineno is None:
        return True
    record = INDEX.by_filename(code.co_filename)
    return (
        record is not None
        and record.filename == node.filename
        and node.lineno <= code.co_firstlineno <= node.end_lineno
    )


# (id(definition), is_root) -> (definition, its source record, its code, canonical
# result, last line, files read): checked by identity, so a reload analyses again.
_CANONICAL: Dict[Tuple[int, bool], Tuple[Any, ...]] = {}
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
        plan = build_plan(unwrap(func), warn=False)
    graph = nx.DiGraph()
    for node in plan.nodes:
        graph.add_node(
            node.qualname,
            kind=node.kind,
            file=node.filename,
            line=node.lineno,
            digest=node.digest.hex(),
            from_source=node.from_source,
        )
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
        canonical = canonical_function(
            fresh if fresh is not None else stmt, include_defaults=True, owned=fresh is not None
        )
        out[f"{owner}.{stmt.name}"] = [
            hashing.Hasher().feed_bytes(canonical.data).hexdigest(),
            record.filename,
            _first_line(stmt),
        ]
    return out
