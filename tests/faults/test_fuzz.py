"""Fuzzing the two functions every key rests on: the value hasher and the canonicaliser.

Value hasher: two values get one digest exactly when they are the same value, type
included: ``1``, ``1.0``, ``True``, ``-0.0`` and ``0.0`` differ, every NaN is one value
(a cached call with NaN must hit again), lists, tuples, sets, frozensets and dicts
differ from each other at any depth; and a digest does not depend on the process's
string-hash seed (which orders sets). Canonicaliser: on function bodies generated from
Python's grammar (hypothesmith) and on real functions (this package's and the standard
library's), reformatting and renaming parameters keep the canonical form, and nothing
crashes.
"""

from __future__ import annotations

import ast
import math
import pickle
import struct
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, List

import hypothesmith
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

import checkpointing
from checkpointing.analysis.canon import canonical_function
from checkpointing.hashing import digest_value

from .conftest import figure

FUZZ = settings(
    derandomize=True, deadline=None, database=None, suppress_health_check=list(HealthCheck)
)

# -- the value hasher --------------------------------------------------------------------
TRICKY = st.sampled_from(
    [
        0,
        1,
        -1,
        1.0,
        0.0,
        -0.0,
        True,
        False,
        None,
        math.nan,
        -math.nan,
        struct.unpack("<d", b"\x01\x00\x00\x00\x00\x00\xf8\x7f")[0],
        math.inf,
        -math.inf,
        "",
        "1",
        b"1",
        2**64,
        1e-300,
    ]
)
scalars = TRICKY | st.integers() | st.floats() | st.text(max_size=4) | st.binary(max_size=4)
hashables = TRICKY | st.integers() | st.text(max_size=4)
values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.tuples(inner, inner)
        | st.dictionaries(hashables, inner, max_size=3)
        | st.frozensets(hashables, max_size=3)
        | st.sets(hashables, max_size=3)
    ),
    max_leaves=12,
)


def strict(value: Any) -> Any:
    """What makes two values the same for a cache: type at every depth, the bits of a
    float (so -0.0 is not 0.0) except that all NaNs are one, dict order, set contents."""
    kind = type(value)
    if kind is float:
        return ("float", "nan" if value != value else struct.pack("<d", value))
    if kind in (list, tuple):
        return (kind.__name__, tuple(strict(v) for v in value))
    if kind is dict:
        return ("dict", tuple((strict(k), strict(v)) for k, v in value.items()))
    if kind in (set, frozenset):
        return (kind.__name__, frozenset(strict(v) for v in value))
    return (kind.__name__, value)


COUNTS = {"pairs": 0, "equal": 0, "values": 0, "functions": 0, "real": 0}


@settings(FUZZ, max_examples=1500)
@given(values, values)
def test_digests_are_equal_exactly_for_the_same_value(a: Any, b: Any) -> None:
    same = strict(a) == strict(b)
    COUNTS["pairs"] += 1
    COUNTS["equal"] += same
    assert (digest_value(a) == digest_value(b)) == same, (a, b)
    assert digest_value(pickle.loads(pickle.dumps(a))) == digest_value(a)


def test_the_tricky_scalars_are_pairwise_distinct() -> None:
    tricky = [
        0,
        1,
        1.0,
        True,
        0.0,
        -0.0,
        False,
        None,
        math.nan,
        "1",
        b"1",
        [1],
        (1,),
        {1},
        frozenset([1]),
        {1: None},
        [[1]],
        [(1,)],
        ((1,),),
        [1.0],
        [True],
    ]
    digests = {digest_value(v) for v in tricky}
    assert len(digests) == len(tricky)
    assert digest_value(math.nan) == digest_value(-math.nan) == digest_value(float("nan"))


HASH_IN_CHILD = textwrap.dedent("""
    import pickle, sys
    from checkpointing.hashing import hexdigest_value
    for value in pickle.loads(sys.stdin.buffer.read()):
        print(hexdigest_value(value))
""")


@settings(FUZZ, max_examples=4)
@given(st.lists(values, min_size=150, max_size=150))
def test_digests_do_not_depend_on_the_hash_seed(batch: List[Any]) -> None:
    here = [digest_value(v).hex() for v in batch]
    COUNTS["values"] += len(batch)
    for seed in ("0", "12345"):
        child = subprocess.run(
            [sys.executable, "-c", HASH_IN_CHILD],
            input=pickle.dumps(batch),
            capture_output=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
            timeout=60,
        )
        assert child.returncode == 0, child.stderr.decode()
        assert child.stdout.decode().split() == here


# -- the canonicaliser ------------------------------------------------------------------------
def function_of(source: str) -> ast.FunctionDef:
    node = ast.parse(source).body[0]
    assert isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
    return node


def reformatted(source: str) -> str:
    """The same code laid out differently: unparsed, with comments and blank lines."""
    lines = ast.unparse(ast.parse(source)).splitlines()
    return "\n".join(f"{line}  # note\n" if i % 2 else line for i, line in enumerate(lines))


class Rename(ast.NodeTransformer):
    """Rename one parameter everywhere it is used (a consistent alpha-renaming)."""

    def __init__(self, old: str, new: str) -> None:
        self.old, self.new = old, new

    def visit_Name(self, node: ast.Name) -> ast.AST:
        if node.id == self.old:
            node.id = self.new
        return node

    def visit_arg(self, node: ast.arg) -> ast.AST:
        if node.arg == self.old:
            node.arg = self.new
        return node

    def _rename_definition(self, node: Any) -> ast.AST:
        if node.name == self.old:  # ``def predicate`` rebinding the parameter
            node.name = self.new
        return self.generic_visit(node)

    visit_FunctionDef = visit_AsyncFunctionDef = visit_ClassDef = _rename_definition

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> ast.AST:
        if node.name == self.old:
            node.name = self.new
        return self.generic_visit(node)

    def visit_alias(self, node: ast.alias) -> ast.AST:
        if (node.asname or node.name) == self.old and "." not in node.name:
            node.asname = self.new
        return node


def renamable(node: ast.FunctionDef) -> List[str]:
    """Parameters that a plain renaming keeps meaning the same."""
    names = {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}
    declared = {
        name
        for n in ast.walk(node)
        if isinstance(n, (ast.Global, ast.Nonlocal))
        for name in n.names
    }
    strings = {
        n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
    }
    blind = any(
        isinstance(n, ast.Call)
        and isinstance(n.func, ast.Name)
        and n.func.id in ("locals", "vars", "eval", "exec")
        for n in ast.walk(node)
    )
    params = [a.arg for a in node.args.posonlyargs + node.args.args + node.args.kwonlyargs]
    params += [a.arg for a in (node.args.vararg, node.args.kwarg) if a is not None]
    return (
        []
        if blind
        else [
            p
            for p in params
            if p not in declared and p not in strings and p in names and p not in ("self", "cls")
        ]
    )


def renamed(source: str, old: str) -> str:
    tree = ast.parse(source)
    return ast.unparse(Rename(old, f"{old}_renamed_zz").visit(tree))


def canonical(source: str) -> Any:
    result = canonical_function(function_of(source))
    # What the digest is made of (a reference's line number only serves messages).
    return result.data, [(ref.chain, ref.scope, ref.origin) for ref in result.refs]


@settings(FUZZ, max_examples=60)  # generating from the grammar is slow: ~0.5 s each
@given(hypothesmith.from_grammar(auto_target=False))
@pytest.mark.filterwarnings("ignore::SyntaxWarning")
@pytest.mark.slow
def test_generated_function_bodies(body: str) -> None:
    source = "def generated(a, b=1, *args, c, **kwargs):\n" + textwrap.indent(body, "    ")
    if not body.strip():
        source += "    pass\n"
    try:
        compile(source, "<generated>", "exec")
    except (SyntaxError, ValueError):
        assume(False)
    COUNTS["functions"] += 1
    original = canonical(source)  # never crashes
    assert canonical(reformatted(source)) == original
    for name in renamable(function_of(source)):
        assert canonical(renamed(source, name)) == original, name


def real_functions() -> List[str]:
    """Every top-level function and method of this package and a few stdlib modules."""
    import argparse
    import json.decoder
    import textwrap as textwrap_module

    files = sorted(Path(checkpointing.__file__).parent.rglob("*.py"))
    files += [Path(m.__file__) for m in (json.decoder, textwrap_module, argparse)]
    out = []
    for path in files:
        text = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                out.append(textwrap.dedent(ast.get_source_segment(text, node) or ""))
    return [source for source in out if source.startswith(("def ", "async def "))]


REAL = real_functions()


@settings(FUZZ, max_examples=400)
@given(st.sampled_from(REAL), st.integers(min_value=0, max_value=5))
def test_mutated_real_functions(source: str, pick: int) -> None:
    COUNTS["real"] += 1
    original = canonical(source)
    assert canonical(reformatted(source)) == original
    names = renamable(function_of(source))
    if names:
        assert canonical(renamed(source, names[pick % len(names)])) == original


def test_report_fuzzing_figures() -> None:
    figure(
        "value hasher fuzzing",
        f"{COUNTS['pairs']} pairs ({COUNTS['equal']} equal) "
        f"and {COUNTS['values']} values under 2 hash seeds: 0 collisions, 0 splits",
    )
    figure(
        "canonicaliser fuzzing",
        f"{COUNTS['functions']} hypothesmith function bodies "
        f"and {COUNTS['real']} mutated real functions (of {len(REAL)}): reformatting "
        f"and renames kept every digest, 0 crashes",
    )
