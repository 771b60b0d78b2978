"""Canonical form of a function or class definition: which edits do not matter.

This module owns that decision. Two definitions have the same canonical data when
they differ only in comments, formatting, docstrings, type annotations of functions,
the function's own name, or the names of parameters and locals (renamed by order of
first appearance, so renaming ``b`` to ``a`` keeps the form even though it changes
alphabetical order). Everything else (constants, operators, attribute names,
keyword names at call sites, class names, method names) is kept.

Names that are free in the definition (globals, builtins, closure variables) are
not resolved here: each distinct dotted chain (``np.linalg.norm``, ``helper``) is
replaced by a placeholder ``@i`` and listed in :attr:`Canonical.refs`, so that the
caller can fold in what the name denotes instead of how it is spelled. This module
knows only :mod:`ast`.

Why one module of about 750 lines: the canonicaliser is one ``ast.NodeTransformer``
whose rules (scopes, renaming, what is kept) are read together.
"""

from __future__ import annotations

import ast
import copy
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Set, Tuple, Union

__all__ = [
    "BlindSpot",
    "Canonical",
    "ImportOrigin",
    "Ref",
    "canonical_class",
    "canonical_function",
    "render",
]


@dataclass(frozen=True)
class ImportOrigin:
    """Where a name bound by an import statement *inside* a definition comes from.

    ``import a.b as x`` -> ``ImportOrigin("a.b", 0, None)``; ``import a.b`` binds
    ``a``: ``ImportOrigin("a", 0, None)``; ``from ..m import f as g`` ->
    ``ImportOrigin("m", 2, "f")``; ``from . import m`` -> ``ImportOrigin("", 1, "m")``.
    """

    module: str
    level: int
    attr: Optional[str]


@dataclass(frozen=True)
class Ref:
    """A free name, or a dotted chain starting at one, that a definition reads.

    ``chain`` is the longest ``Name.attr.attr`` chain as written, e.g. ``("helper",)``
    or ``("np", "linalg", "norm")``. ``scope`` says how the first name is bound:
    ``"global"`` (free in the definition: a module global, a builtin or, for a
    function defined inside another, a closure variable; the resolver tells which
    from the live function) or ``"import"`` (bound by an import statement inside the
    definition; ``origin`` says from where).
    """

    chain: Tuple[str, ...]
    scope: str
    lineno: int
    origin: Optional[ImportOrigin] = None


@dataclass(frozen=True)
class BlindSpot:
    """A construct whose reach the analyzer cannot know (``eval``, computed getattr...).

    ``callee`` is the free name called (e.g. ``"getattr"``); the resolver confirms it
    really is the builtin before warning. ``args`` describes the arguments that pick
    what is reached, for the dependency graph to resolve where it can: ``("const",
    "pkg.mod")``, ``("ref", chain)`` (a free name: a global), ``("prefix", "pkg.")``
    (a constant followed by something computed) or ``("local", None)``. Plugins named
    by constants (``import_module("pkg.mod")``, ``getattr(mod, "name")``) are noted
    too, with ``what`` empty: nothing is blind there, but the graph follows them.
    """

    lineno: int
    callee: str
    what: str
    args: Tuple[Tuple[str, Any], ...] = ()


@dataclass(frozen=True)
class Canonical:
    """The canonical serialization of one definition.

    ``data`` omits what must not matter (see the module docs). Each distinct
    :class:`Ref` appears in ``data`` as the placeholder ``@i``, ``i`` indexing
    ``refs`` in order of first appearance.
    """

    data: bytes
    refs: Tuple[Ref, ...]
    blind_spots: Tuple[BlindSpot, ...]
    text: str = field(default="", compare=False, repr=False)


FunctionNode = Union[ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda]

_FUNCTION_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
_COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)

# Builtins whose reach depends on run-time strings or frames.
_BLIND_CALLS = {
    "eval": "eval() runs code the analyzer cannot see",
    "exec": "exec() runs code the analyzer cannot see",
    "compile": "compile() builds code the analyzer cannot see",
    "globals": "globals() reads module globals by run-time name",
    "locals": "locals() reads names by run-time name",
    "vars": "vars() reads attributes by run-time name",
    "__import__": "__import__() imports a module chosen at run time",
}
_IMPORT_MODULE = "importlib.import_module() imports a module chosen at run time"


def all_nodes(root: ast.AST) -> List[ast.AST]:
    """``list(ast.walk(root))``, in the same order, without ``ast.walk``'s generators
    (two per node): walking trees is a large part of an analysis (issue 12, target 6)."""
    nodes = [root]
    append = nodes.append
    i = 0
    while i < len(nodes):
        node = nodes[i]
        i += 1
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, ast.AST):
                append(value)
            elif isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        append(item)
    return nodes


def child_nodes(node: ast.AST) -> List[ast.AST]:
    """``list(ast.iter_child_nodes(node))``, without its generators."""
    children = []
    for name in node._fields:
        value = getattr(node, name, None)
        if isinstance(value, ast.AST):
            children.append(value)
        elif isinstance(value, list):
            children.extend(item for item in value if isinstance(item, ast.AST))
    return children


# ast.NodeVisitor's visit_Constant, which calls visit_Num, visit_Str... if a visitor has
# them (deprecated names): these visitors have none.
_DEPRECATED_CONSTANTS = getattr(ast.NodeVisitor, "visit_Constant", None)


class _FastVisitor(ast.NodeVisitor):
    """:class:`ast.NodeVisitor`, the same traversal made cheaper: the ``visit_<Class>``
    method looked up once per node class, not formatted and looked up per node, and a
    node's fields read without ``ast.iter_fields``' generator."""

    _methods: Dict[type, Any] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls._methods = {}

    def visit(self, node: ast.AST) -> Any:
        method = self._methods.get(node.__class__)
        if method is None:
            cls = type(self)
            method = getattr(cls, "visit_" + node.__class__.__name__, cls.generic_visit)
            if method is _DEPRECATED_CONSTANTS:  # asks for visit_Num... per node: none here
                method = cls.generic_visit
            self._methods[node.__class__] = method
        return method(self, node)

    def generic_visit(self, node: ast.AST) -> Any:
        visit = self.visit
        for name in node._fields:
            value = getattr(node, name, None)
            if isinstance(value, list):
                for item in value:
                    if isinstance(item, ast.AST):
                        visit(item)
            elif isinstance(value, ast.AST):
                visit(value)


class _FastTransformer(_FastVisitor):
    """:class:`ast.NodeTransformer` on :class:`_FastVisitor`: a visit returns the node
    to put in place (None removes it, a list splices it in)."""

    def generic_visit(self, node: ast.AST) -> Any:
        visit = self.visit
        for name in node._fields:
            old_value = getattr(node, name, None)
            if isinstance(old_value, list):
                new_values = []
                for value in old_value:
                    if isinstance(value, ast.AST):
                        value = visit(value)
                        if value is None:
                            continue
                        if not isinstance(value, ast.AST):
                            new_values.extend(value)
                            continue
                    new_values.append(value)
                old_value[:] = new_values
            elif isinstance(old_value, ast.AST):
                new_node = visit(old_value)
                if new_node is None:
                    delattr(node, name)
                else:
                    setattr(node, name, new_node)
        return node


def _loop_sources(root: ast.AST, scopes: Dict[int, "_Scope"]) -> Dict[str, Tuple[str, ...]]:
    """Locals bound only as the target of a loop over a free name chain
    (``for name in PLUGINS``, ``[... for n in cfg.NAMES]``): local -> chain."""
    bound_anywhere = set()
    for scope in scopes.values():
        bound_anywhere.update(scope.bound)
    stores: Dict[str, int] = {}
    loops: Dict[str, Tuple[str, ...]] = {}
    for node in all_nodes(root):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            stores[node.id] = stores.get(node.id, 0) + 1
        if isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)) and isinstance(
            node.target, ast.Name
        ):
            parts: List[str] = []
            iterated = node.iter
            while isinstance(iterated, ast.Attribute):
                parts.append(iterated.attr)
                iterated = iterated.value
            if isinstance(iterated, ast.Name) and iterated.id not in bound_anywhere:
                loops[node.target.id] = (iterated.id, *reversed(parts))
    return {name: chain for name, chain in loops.items() if stores.get(name) == 1}


def _constant_text(node: ast.AST) -> Optional[str]:
    """The string an expression of constants evaluates to (``"a." + "b"``), or None."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else None
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _constant_text(node.left), _constant_text(node.right)
        return left + right if left is not None and right is not None else None
    if isinstance(node, ast.JoinedStr):
        parts = [_constant_text(v) for v in node.values]
        return "".join(parts) if all(p is not None for p in parts) else None  # type: ignore
    return None


class _Scope:
    """Names bound in one function, lambda, comprehension or class body."""

    __slots__ = (
        "node",
        "kind",
        "parent",
        "bound",
        "declared_global",
        "declared_nonlocal",
        "imports",
        "assigned_other",
    )

    def __init__(self, node: ast.AST, kind: str, parent: Optional["_Scope"]) -> None:
        self.node = node
        self.kind = kind  # "function" | "class" | "comprehension"
        self.parent = parent
        self.bound: Set[str] = set()
        self.declared_global: Set[str] = set()
        self.declared_nonlocal: Set[str] = set()
        # name -> origin, for names bound only by import statements in this scope.
        self.imports: Dict[str, ImportOrigin] = {}
        self.assigned_other: Set[str] = set()

    def bind(self, name: str, origin: Optional[ImportOrigin] = None) -> None:
        self.bound.add(name)
        if origin is None:
            self.assigned_other.add(name)
            self.imports.pop(name, None)
        elif name not in self.assigned_other:
            if name in self.imports and self.imports[name] != origin:
                self.assigned_other.add(name)
                del self.imports[name]
            else:
                self.imports[name] = origin


class _ScopeBuilder(_FastVisitor):
    """First pass: which names each scope binds (Python's rules, without symtable)."""

    def __init__(self) -> None:
        self.scopes: Dict[int, _Scope] = {}
        self.current: Optional[_Scope] = None

    def build(self, root: ast.AST) -> Dict[int, _Scope]:
        if isinstance(root, ast.ClassDef):
            self._class_body(root, None)
        else:
            self._function(root, None)
        return self.scopes

    # Scopes -------------------------------------------------------------------
    def _new(self, node: ast.AST, kind: str, parent: Optional[_Scope]) -> _Scope:
        scope = _Scope(node, kind, parent)
        self.scopes[id(node)] = scope
        return scope

    def _function(self, node: ast.AST, parent: Optional[_Scope]) -> None:
        scope = self._new(node, "function", parent)
        args = node.args  # type: ignore[attr-defined]
        for arg in (*getattr(args, "posonlyargs", ()), *args.args, *args.kwonlyargs):
            scope.bind(arg.arg)
        for arg in (args.vararg, args.kwarg):
            if arg is not None:
                scope.bind(arg.arg)
        saved, self.current = self.current, scope
        body = node.body  # type: ignore[attr-defined]
        for stmt in body if isinstance(body, list) else [body]:
            self.visit(stmt)
        self.current = saved

    def _class_body(self, node: ast.ClassDef, parent: Optional[_Scope]) -> None:
        scope = self._new(node, "class", parent)
        saved, self.current = self.current, scope
        for stmt in node.body:
            self.visit(stmt)
        self.current = saved

    def _outer_parts(
        self, node: Union[ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef]
    ) -> None:
        """Decorators, defaults, bases and annotations run in the enclosing scope."""
        for expr in getattr(node, "decorator_list", ()):
            self.visit(expr)
        if isinstance(node, ast.ClassDef):
            for expr in (*node.bases, *node.keywords):
                self.visit(expr)
            return
        args = node.args
        for expr in (*args.defaults, *(d for d in args.kw_defaults if d is not None)):
            self.visit(expr)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._outer_parts(node)
        assert self.current is not None
        self.current.bind(node.name)
        self._function(node, self.current)

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._outer_parts(node)
        self._function(node, self.current)

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self._outer_parts(node)
        assert self.current is not None
        self.current.bind(node.name)
        self._class_body(node, self.current)

    def _comprehension(self, node: ast.AST) -> None:
        generators = node.generators  # type: ignore[attr-defined]
        # The first iterable is evaluated in the enclosing scope.
        self.visit(generators[0].iter)
        scope = self._new(node, "comprehension", self.current)
        saved, self.current = self.current, scope
        for i, gen in enumerate(generators):
            self._bind_target(gen.target)
            if i:
                self.visit(gen.iter)
            for cond in gen.ifs:
                self.visit(cond)
        for name in ("elt", "key", "value"):
            child = getattr(node, name, None)
            if child is not None:
                self.visit(child)
        self.current = saved

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    # Bindings -----------------------------------------------------------------
    def _bind_target(self, target: ast.AST) -> None:
        for node in all_nodes(target):
            if isinstance(node, ast.Name):
                self.current.bind(node.id)  # type: ignore[union-attr]
            elif not isinstance(
                node, (ast.Tuple, ast.List, ast.Starred, ast.Load, ast.Store, ast.Del)
            ):
                self.visit(node)  # subscripts/attributes: their parts are reads

    def visit_Name(self, node: ast.Name) -> None:
        if not isinstance(node.ctx, ast.Load):
            self.current.bind(node.id)  # type: ignore[union-attr]

    def visit_NamedExpr(self, node: ast.NamedExpr) -> None:
        scope = self.current
        while scope is not None and scope.kind == "comprehension":
            scope = scope.parent
        (scope or self.current).bind(node.target.id)  # type: ignore[union-attr]
        self.visit(node.value)

    def visit_Global(self, node: ast.Global) -> None:
        self.current.declared_global.update(node.names)  # type: ignore[union-attr]

    def visit_Nonlocal(self, node: ast.Nonlocal) -> None:
        self.current.declared_nonlocal.update(node.names)  # type: ignore[union-attr]

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.asname:
                self.current.bind(alias.asname, ImportOrigin(alias.name, 0, None))
            else:
                top = alias.name.split(".")[0]
                self.current.bind(top, ImportOrigin(top, 0, None))

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            if alias.name == "*":
                continue
            self.current.bind(
                alias.asname or alias.name,  # type: ignore[union-attr]
                ImportOrigin(node.module or "", node.level or 0, alias.name),
            )

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.current.bind(node.name)  # type: ignore[union-attr]
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.AST) -> None:  # and MatchStar (3.10+)
        if getattr(node, "name", None):
            self.current.bind(node.name)  # type: ignore[union-attr,attr-defined]
        self.generic_visit(node)

    visit_MatchStar = visit_MatchAs

    def visit_MatchMapping(self, node: ast.AST) -> None:
        if getattr(node, "rest", None):
            self.current.bind(node.rest)  # type: ignore[union-attr,attr-defined]
        self.generic_visit(node)


class _Canonicaliser(_FastTransformer):
    """Second pass: rename locals, replace free chains by placeholders, drop noise."""

    def __init__(
        self,
        scopes: Dict[int, _Scope],
        root: ast.AST,
        drop_root_defaults: bool,
        root_decorators: Optional[int] = None,
    ):
        self.scopes = scopes
        self.root = root
        self.drop_root_defaults = drop_root_defaults
        self.root_decorators = root_decorators
        self.current: Optional[_Scope] = None
        self.names: Dict[Tuple[int, str], str] = {}
        self.refs: Dict[Ref, int] = {}
        self.ref_list: List[Ref] = []
        self.blind: List[BlindSpot] = []
        self.loops = _loop_sources(root, scopes)

    # Name resolution ------------------------------------------------------------
    def _binding_scope(self, name: str, scope: Optional[_Scope]) -> Optional[_Scope]:
        """The scope inside the definition that binds ``name``; None if it is free."""
        first = True
        while scope is not None:
            if name in scope.declared_global:
                return None
            if name in scope.declared_nonlocal:
                scope, first = scope.parent, False
                continue
            # Class bodies are visible only to themselves, not to nested functions.
            if name in scope.bound and (first or scope.kind != "class"):
                return scope
            scope, first = scope.parent, False
        return None

    def _local_name(self, scope: _Scope, name: str) -> str:
        if scope.kind == "class":
            return name  # class attributes are part of the interface
        key = (id(scope.node), name)
        new = self.names.get(key)
        if new is None:
            new = self.names[key] = f"_{len(self.names)}"
        return new

    def _placeholder(
        self, chain: Tuple[str, ...], lineno: int, origin: Optional[ImportOrigin]
    ) -> str:
        scope = "import" if origin is not None else "global"
        probe = Ref(chain, scope, 0, origin)
        index = self.refs.get(probe)
        if index is None:
            index = self.refs[probe] = len(self.ref_list)
            self.ref_list.append(Ref(chain, scope, lineno, origin))
        return f"@{index}"

    def _chain(self, node: ast.AST) -> Optional[Tuple[ast.Name, Tuple[str, ...]]]:
        parts: List[str] = []
        while isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        if isinstance(node, ast.Name):
            parts.append(node.id)
            return node, tuple(reversed(parts))
        return None

    def _free_or_import(self, name_node: ast.Name) -> Tuple[bool, Optional[ImportOrigin]]:
        """(is a reference to record, import origin) for a loaded name."""
        scope = self._binding_scope(name_node.id, self.current)
        if scope is None:
            return True, None
        origin = scope.imports.get(name_node.id)
        if origin is not None and name_node.id not in scope.assigned_other:
            return True, origin
        return False, None

    # Visitors -------------------------------------------------------------------
    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        if isinstance(node.ctx, ast.Load):
            found = self._chain(node)
            if found is not None:
                name_node, chain = found
                is_ref, origin = self._free_or_import(name_node)
                if is_ref:
                    return ast.copy_location(
                        ast.Name(id=self._placeholder(chain, node.lineno, origin), ctx=ast.Load()),
                        node,
                    )
        self.generic_visit(node)
        return node

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if isinstance(node.ctx, ast.Load):
            is_ref, origin = self._free_or_import(node)
            if is_ref:
                node.id = self._placeholder((node.id,), node.lineno, origin)
                return node
        scope = self._binding_scope(node.id, self.current)
        if scope is not None:
            node.id = self._local_name(scope, node.id)
        return node

    def visit_Call(self, node: ast.Call) -> ast.AST:
        func = node.func
        lineno = getattr(node, "lineno", 0)
        if isinstance(func, ast.Name) and self._binding_scope(func.id, self.current) is None:
            what = _BLIND_CALLS.get(func.id)
            args: Tuple[Tuple[str, Any], ...] = ()
            if func.id in ("import_module", "__import__") and node.args:
                args = self._import_arguments(node)
                if what is None and args[0][0] != "const":
                    what = _IMPORT_MODULE
                elif args[0][0] == "const":
                    what = ""
            if what is None and func.id in ("getattr", "setattr", "hasattr", "delattr"):
                if len(node.args) >= 2:
                    args = (self._argument(node.args[0]), self._argument(node.args[1]))
                    constant = args[1][0] == "const"
                    if not constant:
                        what = f"{func.id}() with a computed attribute name"
                    elif func.id in ("getattr", "hasattr"):
                        what = ""
            if what is not None:
                self.blind.append(BlindSpot(lineno, func.id, what, args))
        else:
            found = self._chain(func)
            if (
                found is not None
                and found[1][-1] == "import_module"
                and node.args
                and self._binding_scope(found[1][0], self.current) is None
            ):
                args = self._import_arguments(node)
                self.blind.append(
                    BlindSpot(
                        lineno,
                        ".".join(found[1]),
                        "" if args[0][0] == "const" else _IMPORT_MODULE,
                        args,
                    )
                )
        self.generic_visit(node)
        return node

    def _import_arguments(self, node: ast.Call) -> Tuple[Tuple[str, Any], ...]:
        """The module name, and the ``package`` of ``import_module`` if given."""
        package = (
            node.args[1]
            if len(node.args) > 1
            else next((k.value for k in node.keywords if k.arg == "package"), None)
        )
        name = self._argument(node.args[0])
        return (name,) if package is None else (name, self._argument(package))

    def _argument(self, node: ast.AST) -> Tuple[str, Any]:
        """What an argument that names a module or attribute is (see BlindSpot.args)."""
        constant = _constant_text(node)
        if constant is not None:
            return ("const", constant)
        prefix = None
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            prefix = _constant_text(node.left)
        elif isinstance(node, ast.JoinedStr) and node.values:
            prefix = _constant_text(node.values[0])
        if prefix:
            return ("prefix", prefix)
        found = self._chain(node)
        if found is not None and self._binding_scope(found[0].id, self.current) is None:
            return ("ref", found[1])
        if isinstance(node, ast.Name) and node.id in self.loops:
            return ("ref", self.loops[node.id])  # ``for name in PLUGINS: ...(name)``
        return ("local", None)

    def _body(self, body: List[ast.stmt]) -> List[ast.stmt]:
        if (
            body
            and isinstance(body[0], ast.Expr)
            and isinstance(body[0].value, ast.Constant)
            and isinstance(body[0].value.value, str)
        ):
            body = body[1:]
        out: List[ast.stmt] = []
        for stmt in body:
            new = self.visit(stmt)
            if new is None:
                continue
            out.extend(new if isinstance(new, list) else [new])
        return out or [ast.Pass()]

    def _arguments(self, args: ast.arguments, scope: _Scope) -> None:
        for arg in (
            *getattr(args, "posonlyargs", ()),
            *args.args,
            args.vararg,
            *args.kwonlyargs,
            args.kwarg,
        ):
            if arg is not None:
                arg.annotation = None
                arg.type_comment = None
                arg.arg = self._local_name(scope, arg.arg)

    def _outer(self, node: ast.AST) -> None:
        """Visit decorators and defaults, which belong to the enclosing scope."""
        if node is self.root:
            # Decorators applied before the cache's own wrap what runs: the innermost
            # ``root_decorators`` of them are kept (all when None), the rest dropped.
            kept = self.root_decorators
            decorators = getattr(node, "decorator_list", None)
            if decorators and kept is not None:
                below = decorators[len(decorators) - kept :] if kept else []
                node.decorator_list = below  # type: ignore[attr-defined]
            if self.drop_root_defaults:
                if decorators:
                    node.decorator_list = [self.visit(d) for d in node.decorator_list]  # type: ignore
                node.args.defaults = []  # type: ignore[attr-defined]
                node.args.kw_defaults = [None] * len(node.args.kw_defaults)  # type: ignore
                return
        if hasattr(node, "decorator_list"):
            node.decorator_list = [self.visit(d) for d in node.decorator_list]  # type: ignore
        args = node.args  # type: ignore[attr-defined]
        args.defaults = [self.visit(d) for d in args.defaults]
        args.kw_defaults = [None if d is None else self.visit(d) for d in args.kw_defaults]

    def _function(self, node: FunctionNode) -> ast.AST:
        self._outer(node)
        if node is not self.root and not isinstance(node, ast.Lambda):
            scope = self._binding_scope(node.name, self.current)
            if scope is not None:
                node.name = self._local_name(scope, node.name)
        elif node is self.root and not isinstance(node, ast.Lambda):
            node.name = "_"
        own = self.scopes[id(node)]
        saved, self.current = self.current, own
        self._arguments(node.args, own)
        if isinstance(node, ast.Lambda):
            node.body = self.visit(node.body)
        else:
            node.returns = None
            node.type_comment = None
            if hasattr(node, "type_params"):
                node.type_params = []  # type: ignore[attr-defined]
            node.body = self._body(node.body)
        self.current = saved
        return node

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _function

    def visit_ClassDef(self, node: ast.ClassDef) -> ast.AST:
        node.decorator_list = [self.visit(d) for d in node.decorator_list]
        node.bases = [self.visit(b) for b in node.bases]
        node.keywords = [self.visit(k) for k in node.keywords]
        if node is not self.root:
            scope = self._binding_scope(node.name, self.current)
            if scope is not None:
                node.name = self._local_name(scope, node.name)
        own = self.scopes[id(node)]
        saved, self.current = self.current, own
        node.body = self._body(node.body)
        self.current = saved
        return node

    def _comprehension(self, node: ast.AST) -> ast.AST:
        generators = node.generators  # type: ignore[attr-defined]
        generators[0].iter = self.visit(generators[0].iter)
        own = self.scopes[id(node)]
        saved, self.current = self.current, own
        for i, gen in enumerate(generators):
            gen.target = self.visit(gen.target)
            if i:
                gen.iter = self.visit(gen.iter)
            gen.ifs = [self.visit(c) for c in gen.ifs]
        for name in ("elt", "key", "value"):
            child = getattr(node, name, None)
            if child is not None:
                setattr(node, name, self.visit(child))
        self.current = saved
        return node

    visit_ListComp = visit_SetComp = visit_DictComp = visit_GeneratorExp = _comprehension

    def visit_AnnAssign(self, node: ast.AnnAssign) -> Optional[ast.AST]:
        if self.current is not None and self.current.kind == "class":
            self.generic_visit(node)  # dataclass fields: annotations are behaviour
            return node
        if node.value is None:
            return None
        new = ast.Assign(targets=[node.target], value=node.value)
        ast.copy_location(new, node)
        return self.visit(new)

    def visit_Global(self, node: ast.Global) -> ast.AST:
        return node

    def visit_Nonlocal(self, node: ast.Nonlocal) -> ast.AST:
        names = []
        for name in node.names:
            scope = self._binding_scope(name, self.current)
            names.append(name if scope is None else self._local_name(scope, name))
        node.names = names
        return node

    def _alias_import(self, node: Union[ast.Import, ast.ImportFrom]) -> ast.AST:
        for alias in node.names:
            bound = alias.asname or (
                alias.name.split(".")[0] if isinstance(node, ast.Import) else alias.name
            )
            if bound == "*":
                continue
            scope = self._binding_scope(bound, self.current)
            if scope is not None and scope.kind != "class":
                alias.asname = self._local_name(scope, bound)
        return node

    visit_Import = visit_ImportFrom = _alias_import

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        if node.name:
            scope = self._binding_scope(node.name, self.current)
            if scope is not None:
                node.name = self._local_name(scope, node.name)
        self.generic_visit(node)
        return node

    def visit_MatchAs(self, node: ast.AST) -> ast.AST:  # and MatchStar (3.10+)
        if getattr(node, "name", None):
            scope = self._binding_scope(node.name, self.current)  # type: ignore[attr-defined]
            if scope is not None:
                node.name = self._local_name(scope, node.name)  # type: ignore[attr-defined]
        return self.generic_visit(node)

    visit_MatchStar = visit_MatchAs

    def visit_MatchMapping(self, node: ast.AST) -> ast.AST:
        if getattr(node, "rest", None):
            scope = self._binding_scope(node.rest, self.current)  # type: ignore[attr-defined]
            if scope is not None:
                node.rest = self._local_name(scope, node.rest)  # type: ignore[attr-defined]
        return self.generic_visit(node)


def _canonical(
    node: ast.AST,
    drop_root_defaults: bool,
    owned: bool = False,
    root_decorators: Optional[int] = None,
) -> Canonical:
    if not owned:
        node = copy.deepcopy(node)
    scopes = _ScopeBuilder().build(node)
    canon = _Canonicaliser(scopes, node, drop_root_defaults, root_decorators)
    if isinstance(node, ast.ClassDef):
        canon.current = None
        canon.visit_ClassDef(node)
    else:
        canon._function(node)  # type: ignore[arg-type]
    text = ast.unparse(node)  # needs no line numbers: the nodes put in have none
    if os.environ.get("CHECKPOINTING_STRICT_AST") == "1":
        ast.parse(text.replace("@", "_AT_"))
    return Canonical(
        text.encode("utf-8", "surrogatepass"), tuple(canon.ref_list), tuple(canon.blind), text
    )


def canonical_function(
    node: FunctionNode,
    *,
    include_defaults: bool = True,
    decorators: Optional[int] = None,
    owned: bool = False,
) -> Canonical:
    """The canonical form of a function (or lambda) definition.

    ``include_defaults=False`` leaves out default values: for the decorated function
    itself, whose defaults reach the key through the bound arguments. Decorators are
    part of what runs (a wrapper's logic, a factory's arguments): ``decorators`` keeps
    only the innermost so many (for the checkpointed function, those below the cache's
    own decorator); None keeps them all. ``owned=True``
    lets it rewrite ``node`` in place (the caller parsed it for this); otherwise it
    works on a copy.
    """
    if not isinstance(node, _FUNCTION_NODES):
        raise TypeError(f"expected a function or lambda node, got {type(node).__name__}")
    return _canonical(
        node, drop_root_defaults=not include_defaults, owned=owned, root_decorators=decorators
    )


def canonical_class(node: ast.ClassDef, *, owned: bool = False) -> Canonical:
    """The canonical form of a class: its bases, decorators and whole body.

    Methods are canonicalised like functions (their docstrings, annotations and local
    names do not matter); names bound in the class body, method names and class-level
    annotations (dataclass fields) do.
    """
    if not isinstance(node, ast.ClassDef):
        raise TypeError(f"expected a class node, got {type(node).__name__}")
    return _canonical(node, drop_root_defaults=False, owned=owned)


def render(canonical: Canonical) -> str:
    """Readable canonical code: placeholders replaced by the names they stand for."""
    text = canonical.text
    for i in reversed(range(len(canonical.refs))):
        text = text.replace(f"@{i}", ".".join(canonical.refs[i].chain))
    return text


if sys.version_info < (3, 9):  # pragma: no cover
    raise ImportError("checkpointing needs Python 3.9 or later (ast.unparse)")
