"""What the key ignores and what it does not, for the decorated function's own code.

Each case runs a real program twice in subprocesses and edits its file in between
(DESIGN.md, "The promise"). The program prints ``RAN f`` when the body runs.
"""

from __future__ import annotations

import pytest

BASE = """
from checkpointing import checkpoint

SCALE = 2
OTHER = 1


@checkpoint
def f(a, b):
    print("RAN f")
    total = a + b
    return total * SCALE


print("RESULT", f(1, 2))
"""

# (id, edited program, should the second run re-run f?)
CASES = [
    (
        "comment",
        BASE.replace("    total = a + b\n", "    # add them up\n    total = a + b  # the sum\n"),
        False,
    ),
    ("blank-lines", BASE.replace("    total = a + b\n", "\n\n    total = a + b\n\n"), False),
    (
        "reformat",
        BASE.replace("    total = a + b\n", "    total = (a +\n             b)\n").replace(
            "def f(a, b):", "def f(\n    a,\n    b,\n):"
        ),
        False,
    ),
    (
        "docstring",
        BASE.replace('    print("RAN f")', '    """Add and scale."""\n    print("RAN f")'),
        False,
    ),
    (
        "annotations",
        BASE.replace("def f(a, b):", "def f(a: int, b: int) -> int:").replace(
            "    total = a + b", "    total: int = a + b"
        ),
        False,
    ),
    (
        "rename-params",
        BASE.replace("def f(a, b):", "def f(x, y):").replace("total = a + b", "total = x + y"),
        False,
    ),
    (
        "rename-params-reordering-alphabetically",
        BASE.replace("def f(a, b):", "def f(b, a):").replace("total = a + b", "total = b + a"),
        False,
    ),
    ("rename-locals", BASE.replace("total", "acc"), False),
    (
        "rename-function",
        BASE.replace("def f(", "def add_scaled(").replace("f(1, 2)", "add_scaled(1, 2)"),
        False,
    ),
    ("default-changed-but-bound-value-same", BASE.replace("def f(a, b):", "def f(a, b=5):"), False),
    ("unread-global-changed", BASE.replace("OTHER = 1", "OTHER = 100"), False),
    ("keyword-call-same-binding", BASE.replace("f(1, 2))", "f(1, b=2))"), False),
    ("argument-value", BASE.replace("f(1, 2))", "f(1, 3))"), True),
    ("logic", BASE.replace("total = a + b", "total = a - b"), True),
    ("constant", BASE.replace("return total * SCALE", "return total * SCALE + 0"), True),
    ("operand-order", BASE.replace("total = a + b", "total = b + a"), True),
    ("read-global-changed", BASE.replace("SCALE = 2", "SCALE = 3"), True),
    ("read-global-type-changed", BASE.replace("SCALE = 2", "SCALE = 2.0"), True),
]


@pytest.mark.parametrize("edited, rerun", [pytest.param(e, r, id=i) for i, e, r in CASES])
def test_second_run_after_edit(project, edited: str, rerun: bool) -> None:
    project.write("main.py", BASE)
    first = project.run()
    assert first.ran == ["f"], first
    project.write("main.py", edited)
    second = project.run()
    assert second.ran == (["f"] if rerun else []), second
    # Whatever happened, the answer is the one the edited program computes.
    namespace: dict = {}
    exec(
        compile(
            edited.replace("from checkpointing import checkpoint", "checkpoint = lambda f: f")
            .replace('print("RAN f")', "pass")
            .replace('print("RESULT", ', "RESULT = ("),
            "<edited>",
            "exec",
        ),
        namespace,
    )
    assert second.results == [str(namespace["RESULT"])], second


def test_unchanged_program_hits_in_the_same_and_a_later_process(project) -> None:
    project.write("main.py", BASE + 'print("RESULT", f(1, 2))\n')
    first = project.run()
    assert first.ran == ["f"] and first.results == ["6", "6"], first
    second = project.run()
    assert second.ran == [] and second.results == ["6", "6"], second
    assert (project.root / ".checkpointing" / "CACHEDIR.TAG").is_file()


def test_module_run_with_dash_m_and_as_script_both_cache(project) -> None:
    project.write("pkg/__init__.py", "")
    project.write("pkg/main.py", BASE)
    assert project.run("-m", "pkg.main").ran == ["f"]
    assert project.run("-m", "pkg.main").ran == []
    project.write("pkg/main.py", BASE.replace("a + b", "a * b"))
    second = project.run("-m", "pkg.main")
    assert second.ran == ["f"] and second.results == ["4"], second
