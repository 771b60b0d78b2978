"""Which values in real modules' globals the witness of a hit cannot vouch for cheaply.

Usage: python benchmarks/witness_survey.py [module ...]

A hit of a function whose key reads large values (a registry) checks a witness instead
of digesting the values again (see docs/performance.md). Each value goes into it one of
three ways: by identity and shape (cheap), "digested again at every check" (a value of a
type it has no cheaper proof for), or not at all: the snapshot fails, the whole witness
is lost and every hit digests every value the function reads. This imports the given
modules (by default 16 libraries installed with the test extra, those present) and takes
the snapshot of each of their module globals, as if a project's function read it, and
counts by type (the innermost value that fails) what falls in the two costly ways.
"""

from __future__ import annotations

import collections
import importlib
import sys
import types
import warnings
from typing import Any, Dict, List

DEFAULT = (
    "jinja2 pygments yaml sympy dateutil click rich markdown_it networkx pandas requests "
    "packaging pyparsing lark sortedcontainers toolz"
).split()


def _children(value: Any) -> List[Any]:
    if isinstance(value, dict):
        return list(value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return list(value)
    if isinstance(getattr(value, "__dict__", None), dict):
        return list(vars(value).values())
    return []


def main() -> None:
    warnings.simplefilter("ignore")
    from checkpointing import keyplan

    wanted = sys.argv[1:] or DEFAULT
    present = []
    for name in wanted:
        try:
            importlib.import_module(name)
            present.append(name)
        except Exception as exc:  # a library missing here is left out, and said so
            print(f"skipped {name}: {type(exc).__name__}: {exc}")
    modules = [
        n for n in list(sys.modules) if any(n == p or n.startswith(p + ".") for p in present)
    ]
    lost: Dict[str, int] = collections.Counter()
    again: Dict[str, int] = collections.Counter()
    example: Dict[str, str] = {}
    count = 0
    for module_name in modules:
        module = sys.modules.get(module_name)
        if module is None:
            continue
        for name, value in list(vars(module).items()):
            if name.startswith("__") or isinstance(
                value, (types.ModuleType, types.FunctionType, type)
            ):
                continue  # definitions: digested by the walk, not by the snapshot
            count += 1
            containers: List[Any] = []
            if not keyplan._snapshot(value, containers, set()):
                culprit, seen = value, set()
                while id(culprit) not in seen:
                    seen.add(id(culprit))
                    failing = [c for c in _children(culprit) if not keyplan._snapshot(c, [], set())]
                    if not failing:
                        break
                    culprit = failing[0]
                kind = f"{type(culprit).__module__}.{type(culprit).__qualname__}"
                lost[kind] += 1
                example.setdefault(kind, f"{module_name}.{name}")
            for entry in containers:
                if entry[0] == 5:
                    kind = f"{type(entry[1]).__module__}.{type(entry[1]).__qualname__}"
                    again[kind] += 1
                    example.setdefault(kind, f"{module_name}.{name}")
    print(f"{count} module globals of {len(modules)} modules ({', '.join(present)})")
    for title, counter in (
        ("witness lost (every value digested at every hit)", lost),
        ("digested again at every check", again),
    ):
        print(f"\n{title}: {sum(counter.values())}")
        for kind, n in counter.most_common(15):
            print(f"  {n:5d}  {kind}  (e.g. {example[kind]})")


if __name__ == "__main__":
    main()
