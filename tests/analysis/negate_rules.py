"""Check that every one-line rule of tests/analysis can fail (not collected by pytest).

Run from the repository root: ``python tests/analysis/negate_rules.py``. Each ``assert``
of the rule files is negated alone and its test function run in this process: it must
fail. Then the analyzer is broken in memory in a few ways (docstrings kept, locals not
renamed, class bodies visible to methods, everything external) and the test functions
that catch each break are listed. Exits non-zero when a rule cannot fail or a break
goes unnoticed.
"""

from __future__ import annotations

import ast
import copy
import os
import sys
from typing import Any, Callable, Dict, List, Optional

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from checkpointing.analysis import canon as C  # noqa: E402
from checkpointing.analysis import resolve as R  # noqa: E402

FILES = [
    os.path.join(HERE, name) for name in ("test_canon.py", "test_resolve.py", "test_depgraph.py")
]


def _module(tree: ast.Module, path: str) -> Dict[str, Any]:
    namespace: Dict[str, Any] = {"__name__": "negated", "__file__": path}
    exec(compile(tree, path, "exec"), namespace)
    return namespace


def _is_xfail(fn: ast.FunctionDef) -> bool:
    return any("xfail" in ast.unparse(d) for d in fn.decorator_list)


def negate_each() -> List[str]:
    """Locations of rules that still pass when negated."""
    bad, total = [], 0
    for path in FILES:
        tree = ast.parse(open(path, encoding="utf-8").read())
        for fn in tree.body:
            if (
                not isinstance(fn, ast.FunctionDef)
                or not fn.name.startswith("test_")
                or _is_xfail(fn)
            ):
                continue
            for i, stmt in enumerate(fn.body):
                if not isinstance(stmt, ast.Assert):
                    continue
                total += 1
                mutated = copy.deepcopy(tree)
                target = next(
                    n for n in mutated.body if isinstance(n, ast.FunctionDef) and n.name == fn.name
                )
                target.decorator_list = []  # a version skip must not hide the rule
                target.body[i].test = ast.UnaryOp(ast.Not(), target.body[i].test)
                ast.fix_missing_locations(mutated)
                try:
                    _module(mutated, path)[fn.name]()
                except AssertionError:
                    continue
                except SyntaxError:
                    continue  # a match statement on 3.9: the rule does not apply
                bad.append(f"{os.path.basename(path)}:{stmt.lineno}")
    print(f"{total} rules negated one by one; {total - len(bad)} failed as they must")
    return bad


def failing_tests() -> Dict[str, str]:
    out = {}
    for path in FILES:
        namespace = _module(ast.parse(open(path, encoding="utf-8").read()), path)
        for name, obj in list(namespace.items()):
            if name.startswith("test_") and callable(obj):
                try:
                    obj()
                except Exception as exc:  # noqa: BLE001 -- any failure counts
                    out[f"{os.path.basename(path)}::{name}"] = type(exc).__name__
    return out


def _leaky_binding_scope(self: Any, name: str, scope: Optional[Any]) -> Optional[Any]:
    while scope is not None:
        if name in scope.declared_global:
            return None
        if name in scope.bound:
            return scope
        scope = scope.parent
    return None


BREAKS: Dict[str, Any] = {
    "docstrings kept": (
        C._Canonicaliser,
        "_body",
        lambda self, body: [self.visit(s) for s in body] or [ast.Pass()],
    ),
    "locals not renamed": (C._Canonicaliser, "_local_name", lambda self, scope, name: name),
    "class bodies visible to methods": (C._Canonicaliser, "_binding_scope", _leaky_binding_scope),
    "everything external": (
        R,
        "classify",
        lambda value, qualname, rest=(), *a, **k: R.Target(R.EXTERNAL, qualname, value, rest),
    ),
}


def break_analyzer() -> List[str]:
    baseline = failing_tests()
    unnoticed = []
    for label, (owner, attr, replacement) in BREAKS.items():
        saved: Callable[..., Any] = getattr(owner, attr)
        setattr(owner, attr, replacement)
        try:
            caught = sorted(k for k in failing_tests() if k not in baseline)
        finally:
            setattr(owner, attr, saved)
        print(f"{label}: caught by {len(caught)} test functions {caught}")
        if not caught:
            unnoticed.append(label)
    return unnoticed


if __name__ == "__main__":
    not_failing = negate_each()
    for where in not_failing:
        print("rule cannot fail:", where)
    unnoticed = break_analyzer()
    sys.exit(1 if not_failing or unnoticed else 0)
