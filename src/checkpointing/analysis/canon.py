"""Canonical form of a function or class definition (CONTRACT STUB: to be implemented).

This module owns the decision of which edits to a definition do not matter. It knows
only ``ast`` (and ``analysis.scopes``).
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from typing import Optional, Tuple, Union


@dataclass(frozen=True)
class ImportOrigin:
    """Where a name bound by an import statement *inside* a definition comes from.

    ``import a.b as x`` -> ImportOrigin("a.b", 0, None); ``import a.b`` binds ``a``:
    ImportOrigin("a", 0, None); ``from ..m import f as g`` -> ImportOrigin("m", 2, "f");
    ``from . import m`` -> ImportOrigin("", 1, "m").
    """
    module: str
    level: int
    attr: Optional[str]


@dataclass(frozen=True)
class Ref:
    """A free name, or a dotted chain starting at one, that a definition reads.

    ``chain`` is the longest ``Name.attr.attr`` chain as written, e.g. ``("helper",)``,
    ``("np", "linalg", "norm")``, ``("pkg", "m", "f")``. ``scope`` says how the first
    name is bound: ``"global"`` (module global or builtin: resolved in the function's
    ``__globals__`` then ``builtins``), ``"closure"`` (a free variable of an enclosing
    function: resolved through ``__closure__``) or ``"import"`` (bound by an import
    statement inside the definition; ``origin`` says from where).
    """
    chain: Tuple[str, ...]
    scope: str
    lineno: int
    origin: Optional[ImportOrigin] = None


@dataclass(frozen=True)
class BlindSpot:
    """A construct whose reach the analyzer cannot know (``eval``, computed getattr...).

    ``callee`` is the free name called (e.g. ``"getattr"``); the resolver confirms it
    really is the builtin before warning.
    """
    lineno: int
    callee: str
    what: str


@dataclass(frozen=True)
class Canonical:
    """The canonical serialization of one definition.

    ``data`` omits what must not matter (see module docs). Each distinct ``Ref``
    appears in ``data`` as the placeholder ``@i`` where ``i`` indexes ``refs`` in order
    of first appearance.
    """
    data: bytes
    refs: Tuple[Ref, ...]
    blind_spots: Tuple[BlindSpot, ...]


FunctionNode = Union[ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda]


def canonical_function(node: FunctionNode, *, include_defaults: bool = True) -> Canonical:
    raise NotImplementedError


def canonical_class(node: ast.ClassDef) -> Canonical:
    raise NotImplementedError
