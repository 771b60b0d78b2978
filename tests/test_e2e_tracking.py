"""Transitive tracking across a multi-module project, run twice with edits in between.

Each case is a package ``proj/`` run as ``python -m proj.main`` (some also as
``python main.py``). The first run must run the named bodies; after the edit, the
second run must run exactly the expected ones; and its printed values must equal
those of a fresh run of the edited project with an empty cache (no stale result).
"""

from __future__ import annotations

import shutil
import textwrap
from typing import Any, Dict, List, NamedTuple, Tuple

import pytest


class Case(NamedTuple):
    id: str
    files: Dict[str, str]
    edits: Dict[str, Any]  # file -> (old, new) or a list of them
    rerun: bool
    script: bool = False  # also run as `python main.py`


def case(
    id: str, files: Dict[str, str], edits: Dict[str, Any], rerun: bool, script: bool = False
) -> Case:
    return Case(
        id, {k: textwrap.dedent(v).lstrip("\n") for k, v in files.items()}, edits, rerun, script
    )


MAIN_CALLS_HELPER = """
from checkpointing import checkpoint
from proj.helpers import helper

@checkpoint
def f(x):
    print("RAN f")
    return helper(x)

print("RESULT", f(3))
"""

HELPERS = """
def helper(x):
    return x * 2

def unrelated(x):
    return x - 1

UNUSED = 1
"""

CASES: List[Case] = [
    # -- helpers reached through every kind of import --------------------------------
    case(
        "from-import-helper-logic",
        {"proj/main.py": MAIN_CALLS_HELPER, "proj/helpers.py": HELPERS},
        {"proj/helpers.py": ("return x * 2", "return x * 3")},
        True,
        script=True,
    ),
    case(
        "from-import-helper-cosmetic",
        {"proj/main.py": MAIN_CALLS_HELPER, "proj/helpers.py": HELPERS},
        {
            "proj/helpers.py": (
                "def helper(x):\n    return x * 2",
                'def helper(value: int) -> int:\n    """Doubles."""\n'
                "    # twice\n    return (value\n            * 2)",
            )
        },
        False,
        script=True,
    ),
    case(
        "unreached-function-in-same-module",
        {"proj/main.py": MAIN_CALLS_HELPER, "proj/helpers.py": HELPERS},
        {"proj/helpers.py": ("return x - 1", "return x - 100")},
        False,
        script=True,
    ),
    case(
        "unreached-global-in-same-module",
        {"proj/main.py": MAIN_CALLS_HELPER, "proj/helpers.py": HELPERS},
        {"proj/helpers.py": ("UNUSED = 1", "UNUSED = 2")},
        False,
    ),
    case(
        "from-import-as",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.helpers import helper as h

            @checkpoint
            def f(x):
                print("RAN f")
                return h(x)

            print("RESULT", f(3))
            """,
            "proj/helpers.py": HELPERS,
        },
        {"proj/helpers.py": ("return x * 2", "return x * 3")},
        True,
    ),
    case(
        "import-dotted-module",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            import proj.sub.tools

            @checkpoint
            def f(x):
                print("RAN f")
                return proj.sub.tools.tool(x)

            print("RESULT", f(3))
            """,
            "proj/sub/__init__.py": "",
            "proj/sub/tools.py": "def tool(x):\n    return x + 1\n",
        },
        {"proj/sub/tools.py": ("x + 1", "x + 2")},
        True,
        script=True,
    ),
    case(
        "import-module-as",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            import proj.sub.tools as t

            @checkpoint
            def f(x):
                print("RAN f")
                return t.tool(x)

            print("RESULT", f(3))
            """,
            "proj/sub/__init__.py": "",
            "proj/sub/tools.py": "def tool(x):\n    return x + 1\n",
        },
        {"proj/sub/tools.py": ("x + 1", "x + 2")},
        True,
    ),
    case(
        "reexport-from-package-init",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.sub import tool

            @checkpoint
            def f(x):
                print("RAN f")
                return tool(x)

            print("RESULT", f(3))
            """,
            "proj/sub/__init__.py": "from .tools import tool\n",
            "proj/sub/tools.py": "def tool(x):\n    return x + 1\n",
        },
        {"proj/sub/tools.py": ("x + 1", "x + 2")},
        True,
    ),
    case(
        "relative-import",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from .helpers import helper

            @checkpoint
            def f(x):
                print("RAN f")
                return helper(x)

            print("RESULT", f(3))
            """,
            "proj/helpers.py": HELPERS,
        },
        {"proj/helpers.py": ("return x * 2", "return x * 3")},
        True,
    ),
    case(
        "import-inside-function",
        {
            "proj/main.py": """
            from checkpointing import checkpoint

            @checkpoint
            def f(x):
                from proj.helpers import helper
                print("RAN f")
                return helper(x)

            print("RESULT", f(3))
            """,
            "proj/helpers.py": HELPERS,
        },
        {"proj/helpers.py": ("return x * 2", "return x * 3")},
        True,
    ),
    case(
        "value-imported-inside-function",
        {
            "proj/main.py": """
            from checkpointing import checkpoint

            @checkpoint
            def f(x):
                from proj.settings import RATE
                print("RAN f")
                return x * RATE

            print("RESULT", f(3))
            """,
            "proj/settings.py": "RATE = 2\nOTHER = 1\n",
        },
        {"proj/settings.py": ("RATE = 2", "RATE = 5")},
        True,
    ),
    case(
        "value-imported-inside-function-other-global",
        {
            "proj/main.py": """
            from checkpointing import checkpoint

            @checkpoint
            def f(x):
                from proj.settings import RATE
                print("RAN f")
                return x * RATE

            print("RESULT", f(3))
            """,
            "proj/settings.py": "RATE = 2\nOTHER = 1\n",
        },
        {"proj/settings.py": ("OTHER = 1", "OTHER = 7")},
        False,
    ),
    # -- depth and shape ----------------------------------------------------------------
    case(
        "four-modules-deep",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.a import a

            @checkpoint
            def f(x):
                print("RAN f")
                return a(x)

            print("RESULT", f(3))
            """,
            "proj/a.py": "from proj.b import b\n\ndef a(x):\n    return b(x) + 1\n",
            "proj/b.py": "from proj import c\n\ndef b(x):\n    return c.c(x) + 1\n",
            "proj/c.py": "import proj.d as d\n\ndef c(x):\n    return d.d(x) + 1\n",
            "proj/d.py": "def d(x):\n    return x * 10\n",
        },
        {"proj/d.py": ("x * 10", "x * 11")},
        True,
        script=True,
    ),
    case(
        "mutual-recursion",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.parity import is_even

            @checkpoint
            def f(x):
                print("RAN f")
                return is_even(x)

            print("RESULT", f(7))
            """,
            "proj/parity.py": """
            def is_even(n):
                return True if n == 0 else is_odd(n - 1)

            def is_odd(n):
                return False if n == 0 else is_even(n - 1)
            """,
        },
        {"proj/parity.py": ("return False if n == 0", "return True if n == 0")},
        True,
    ),
    case(
        "recursion-renamed-with-call-sites",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.fib import fib

            @checkpoint
            def f(x):
                print("RAN f")
                return fib(x)

            print("RESULT", f(10))
            """,
            "proj/fib.py": "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n",
        },
        {
            "proj/fib.py": (
                "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)",
                "def fibonacci(k):\n    return k if k < 2 else "
                "fibonacci(k - 1) + fibonacci(k - 2)\n\nfib = fibonacci",
            )
        },
        False,
    ),
    case(
        "helper-renamed-with-call-sites",
        {"proj/main.py": MAIN_CALLS_HELPER, "proj/helpers.py": HELPERS},
        {
            "proj/main.py": [("import helper", "import double"), ("helper(x)", "double(x)")],
            "proj/helpers.py": ("def helper", "def double"),
        },
        False,
        script=True,
    ),
    case(
        "decorated-calls-decorated",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.steps import step

            @checkpoint
            def f(x):
                print("RAN f")
                return step(x) + 1

            print("RESULT", f(3))
            """,
            "proj/steps.py": """
            from checkpointing import checkpoint

            @checkpoint
            def step(x):
                print("RAN step")
                return x * 2
            """,
        },
        {"proj/steps.py": ("x * 2", "x * 4")},
        True,
    ),
    # -- indirect references ---------------------------------------------------------------
    case(
        "through-lambda",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.helpers import helper

            @checkpoint
            def f(x):
                print("RAN f")
                g = lambda v: helper(v) + 1
                return g(x)

            print("RESULT", f(3))
            """,
            "proj/helpers.py": HELPERS,
        },
        {"proj/helpers.py": ("return x * 2", "return x * 3")},
        True,
    ),
    case(
        "through-comprehension",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.helpers import helper

            @checkpoint
            def f(x):
                print("RAN f")
                return [helper(i) for i in range(x)]

            print("RESULT", f(3))
            """,
            "proj/helpers.py": HELPERS,
        },
        {"proj/helpers.py": ("return x * 2", "return x * 3")},
        True,
    ),
    case(
        "through-default-argument-of-decorated-function",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.helpers import helper

            @checkpoint
            def f(x, fn=helper):
                print("RAN f")
                return fn(x)

            print("RESULT", f(3))
            """,
            "proj/helpers.py": HELPERS,
        },
        {"proj/helpers.py": ("return x * 2", "return x * 3")},
        True,
    ),
    case(
        "through-default-argument-of-helper",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.helpers import helper

            def apply(x, fn=helper):
                return fn(x)

            @checkpoint
            def f(x):
                print("RAN f")
                return apply(x)

            print("RESULT", f(3))
            """,
            "proj/helpers.py": HELPERS,
        },
        {"proj/helpers.py": ("return x * 2", "return x * 3")},
        True,
    ),
    case(
        "default-value-of-helper",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.helpers import scale

            @checkpoint
            def f(x):
                print("RAN f")
                return scale(x)

            print("RESULT", f(3))
            """,
            "proj/helpers.py": "def scale(x, k=2):\n    return x * k\n",
        },
        {"proj/helpers.py": ("k=2", "k=5")},
        True,
    ),
    case(
        "through-global-partial",
        {
            "proj/main.py": """
            import functools
            from checkpointing import checkpoint
            from proj.helpers import scale

            triple = functools.partial(scale, factor=3)

            @checkpoint
            def f(x):
                print("RAN f")
                return triple(x)

            print("RESULT", f(3))
            """,
            "proj/helpers.py": "def scale(x, factor):\n    return x * factor\n",
        },
        {"proj/helpers.py": ("x * factor", "x * factor + 1")},
        True,
    ),
    case(
        "through-global-lambda",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.helpers import helper

            transform = lambda v: helper(v) - 1

            @checkpoint
            def f(x):
                print("RAN f")
                return transform(x)

            print("RESULT", f(3))
            """,
            "proj/helpers.py": HELPERS,
        },
        {"proj/helpers.py": ("return x * 2", "return x * 3")},
        True,
    ),
    case(
        "through-nested-function",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.helpers import helper

            @checkpoint
            def f(x):
                print("RAN f")
                def inner(v):
                    return helper(v)
                return inner(x)

            print("RESULT", f(3))
            """,
            "proj/helpers.py": HELPERS,
        },
        {"proj/helpers.py": ("return x * 2", "return x * 3")},
        True,
    ),
    case(
        "function-passed-as-argument",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.helpers import helper

            @checkpoint
            def f(fn, x):
                print("RAN f")
                return fn(x)

            print("RESULT", f(helper, 3))
            """,
            "proj/helpers.py": HELPERS,
        },
        {"proj/helpers.py": ("return x * 2", "return x * 3")},
        True,
    ),
    case(
        "decorator-around-helper",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.helpers import helper

            @checkpoint
            def f(x):
                print("RAN f")
                return helper(x)

            print("RESULT", f(3))
            """,
            "proj/helpers.py": """
            import functools

            def logged(fn):
                @functools.wraps(fn)
                def wrapper(*args):
                    return fn(*args)
                return wrapper

            @logged
            def helper(x):
                return x * 2
            """,
        },
        {"proj/helpers.py": ("x * 2", "x * 3")},
        True,
    ),
    # -- classes --------------------------------------------------------------------------
    case(
        "class-instantiated-method-changed",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.model import Model

            @checkpoint
            def f(x):
                print("RAN f")
                return Model(x).predict()

            print("RESULT", f(3))
            """,
            "proj/model.py": """
            class Base:
                def scale(self):
                    return 2

            class Model(Base):
                def __init__(self, x):
                    self.x = x

                def predict(self):
                    return self.x * self.scale()

                @property
                def doubled(self):
                    return self.x * 2
            """,
        },
        {"proj/model.py": ("return self.x * self.scale()", "return self.x + self.scale()")},
        True,
        script=True,
    ),
    case(
        "inherited-base-class-method-changed",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.model import Model

            @checkpoint
            def f(x):
                print("RAN f")
                return Model(x).predict()

            print("RESULT", f(3))
            """,
            "proj/model.py": """
            from proj.base import Base

            class Model(Base):
                def __init__(self, x):
                    self.x = x

                def predict(self):
                    return self.x * self.scale()
            """,
            "proj/base.py": "class Base:\n    def scale(self):\n        return 2\n",
        },
        {"proj/base.py": ("return 2", "return 5")},
        True,
    ),
    case(
        "property-changed",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.model import Model

            @checkpoint
            def f(x):
                print("RAN f")
                return Model(x).doubled

            print("RESULT", f(3))
            """,
            "proj/model.py": """
            class Model:
                def __init__(self, x):
                    self.x = x

                @property
                def doubled(self):
                    return self.x * 2
            """,
        },
        {"proj/model.py": ("self.x * 2", "self.x * 2 + 1")},
        True,
    ),
    case(
        "class-attribute-changed",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.model import Model

            @checkpoint
            def f(x):
                print("RAN f")
                return x * Model.RATE

            print("RESULT", f(3))
            """,
            "proj/model.py": "class Model:\n    RATE = 2\n",
        },
        {"proj/model.py": ("RATE = 2", "RATE = 3")},
        True,
    ),
    case(
        "operator-overload-changed",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.vec import Vec

            @checkpoint
            def f(x):
                print("RAN f")
                return (Vec(x) + Vec(1)).v

            print("RESULT", f(3))
            """,
            "proj/vec.py": """
            class Vec:
                def __init__(self, v):
                    self.v = v

                def __add__(self, other):
                    return Vec(self.v + other.v)
            """,
        },
        {"proj/vec.py": ("self.v + other.v", "self.v - other.v")},
        True,
    ),
    case(
        "class-of-argument-changed",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.shapes import Square

            @checkpoint
            def f(shape):
                print("RAN f")
                return shape.area()

            print("RESULT", f(Square(3)))
            """,
            "proj/shapes.py": """
            from proj.base import Shape

            class Square(Shape):
                def __init__(self, side):
                    self.side = side

                def area(self):
                    return self.side ** 2 * self.unit()
            """,
            "proj/base.py": "class Shape:\n    def unit(self):\n        return 1\n",
        },
        {"proj/base.py": ("return 1", "return 10")},
        True,
    ),
    case(
        "dataclass-argument-field-default-changed",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.config import Config

            @checkpoint
            def f(cfg):
                print("RAN f")
                return cfg.total()

            print("RESULT", f(Config(3)))
            """,
            "proj/config.py": """
            from dataclasses import dataclass

            @dataclass
            class Config:
                a: int
                b: int = 1

                def total(self):
                    return self.a + self.b
            """,
        },
        {"proj/config.py": ("b: int = 1", "b: int = 2")},
        True,
    ),
    case(
        "method-on-self-changed",
        {
            "proj/main.py": """
            from checkpointing import checkpoint

            class Pipeline:
                def __init__(self, k):
                    self.k = k

                def prepare(self, x):
                    return x + self.k

                @checkpoint
                def run(self, x):
                    print("RAN f")
                    return self.prepare(x) * 2

            print("RESULT", Pipeline(1).run(3))
            """
        },
        {"proj/main.py": ("return x + self.k", "return x - self.k")},
        True,
    ),
    # -- values -------------------------------------------------------------------------
    case(
        "global-read-as-module-attribute",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            import proj.settings as settings

            @checkpoint
            def f(x):
                print("RAN f")
                return x * settings.K

            print("RESULT", f(3))
            """,
            "proj/settings.py": "K = 2\nOTHER = 1\n",
        },
        {"proj/settings.py": ("K = 2", "K = 3")},
        True,
    ),
    case(
        "global-of-other-module-unread",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            import proj.settings as settings

            @checkpoint
            def f(x):
                print("RAN f")
                return x * settings.K

            print("RESULT", f(3))
            """,
            "proj/settings.py": "K = 2\nOTHER = 1\n",
        },
        {"proj/settings.py": ("OTHER = 1", "OTHER = 5")},
        False,
    ),
    case(
        "global-from-import",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.settings import K

            @checkpoint
            def f(x):
                print("RAN f")
                return x * K

            print("RESULT", f(3))
            """,
            "proj/settings.py": "K = 2\n",
        },
        {"proj/settings.py": ("K = 2", "K = 3")},
        True,
        script=True,
    ),
    case(
        "global-read-by-deep-helper",
        {
            "proj/main.py": MAIN_CALLS_HELPER,
            "proj/helpers.py": "from proj.settings import scaled\n\ndef helper(x):\n    return scaled(x)\n",
            "proj/settings.py": "FACTOR = 2\n\ndef scaled(x):\n    return x * FACTOR\n",
        },
        {"proj/settings.py": ("FACTOR = 2", "FACTOR = 7")},
        True,
    ),
    case(
        "numpy-global-array",
        {
            "proj/main.py": """
            import numpy as np
            from checkpointing import checkpoint
            from proj.data import WEIGHTS

            @checkpoint
            def f(x):
                print("RAN f")
                return float(np.dot(WEIGHTS, [x, x, x]))

            print("RESULT", f(3))
            """,
            "proj/data.py": "import numpy as np\n\nWEIGHTS = np.array([1.0, 2.0, 3.0])\n",
        },
        {"proj/data.py": ("3.0]", "4.0]")},
        True,
    ),
    case(
        "third-party-and-stdlib-calls",
        {
            "proj/main.py": """
            import math
            import numpy as np
            from checkpointing import checkpoint

            @checkpoint
            def f(x):
                print("RAN f")
                return round(math.sqrt(x) + float(np.sum(np.arange(x))), 3)

            UNRELATED = 1
            print("RESULT", f(3))
            """
        },
        {"proj/main.py": ("UNRELATED = 1", "UNRELATED = 2")},
        False,
    ),
    case(
        "closure-variable",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.settings import OFFSET

            def make(offset):
                @checkpoint
                def f(x):
                    print("RAN f")
                    return x + offset
                return f

            print("RESULT", make(OFFSET)(3))
            """,
            "proj/settings.py": "OFFSET = 10\n",
        },
        {"proj/settings.py": ("OFFSET = 10", "OFFSET = 20")},
        True,
    ),
]


def apply_edits(project, files: Dict[str, str], edits: Dict[str, Any]) -> None:
    for name, replacements in edits.items():
        text = files[name]
        if isinstance(replacements, tuple):
            replacements = [replacements]
        for old, new in replacements:
            assert old in text, f"edit {old!r} not found in {name}"
            text = text.replace(old, new)
        project.write(name, text)


def run_case(project, c: Case, argv: Tuple[str, ...]) -> None:
    for name, text in c.files.items():
        project.write(name, text)
    if "proj/__init__.py" not in c.files:
        project.write("proj/__init__.py", "")
    if argv == ("main.py",):
        project.write("main.py", "import proj.main\n")
    first = project.run(*argv)
    assert "f" in first.ran, first
    apply_edits(project, c.files, c.edits)
    second = project.run(*argv)
    assert ("f" in second.ran) == c.rerun, second
    shutil.rmtree(project.root / ".checkpointing")
    fresh = project.run(*argv)
    assert fresh.results == second.results, (second, fresh)


@pytest.mark.parametrize("c", [pytest.param(c, id=c.id) for c in CASES])
def test_run_as_module(project, c: Case) -> None:
    run_case(project, c, ("-m", "proj.main"))


@pytest.mark.parametrize("c", [pytest.param(c, id=c.id) for c in CASES if c.script])
def test_run_as_script(project, c: Case) -> None:
    run_case(project, c, ("main.py",))


def test_mutable_global_mutated_between_calls_in_one_process(project) -> None:
    project.write("proj/__init__.py", "")
    project.write(
        "proj/main.py",
        """
        from checkpointing import checkpoint
        from proj import state

        @checkpoint
        def f(x):
            print("RAN f")
            return x + sum(state.ITEMS)

        print("RESULT", f(1))
        state.ITEMS.append(10)
        print("RESULT", f(1))
        state.ITEMS.pop()
        print("RESULT", f(1))
        """,
    )
    project.write("proj/state.py", "ITEMS = [1, 2]\n")
    run = project.run("-m", "proj.main")
    assert run.ran == ["f", "f"] and run.results == ["4", "14", "4"], run


def test_editing_a_file_after_import_does_not_change_the_running_key(project) -> None:
    """The key describes the code running, not the file on disk now."""
    project.write("proj/__init__.py", "")
    project.write("proj/helpers.py", HELPERS)
    project.write(
        "proj/main.py",
        """
        import pathlib
        import sys
        from checkpointing import checkpoint
        from proj.helpers import helper

        @checkpoint
        def f(x):
            print("RAN f")
            return helper(x)

        path = pathlib.Path(__file__).with_name("helpers.py")
        original = path.read_text()
        # Edit the helper on disk while this process runs the old code.
        if sys.argv[1:] == ["edit"]:
            path.write_text(original.replace("return x * 2", "return x * 1000"))
        print("RESULT", f(3))
        path.write_text(original)
        """,
    )
    first = project.run("-m", "proj.main", "edit")
    assert first.ran == ["f"] and first.results == ["6"], first
    # The entry was stored under the code that ran (x * 2): the next run, whose code is
    # x * 2 again, reuses it.
    second = project.run("-m", "proj.main")
    assert second.ran == [] and second.results == ["6"], second


def test_equal_but_different_global_values_change_the_key_in_one_process(project) -> None:
    """1 == 1.0 == True and 0.0 == -0.0, but each is another value to a function."""
    project.write("proj/__init__.py", "")
    project.write(
        "proj/main.py",
        """
        import math
        from checkpointing import checkpoint
        from proj import state

        @checkpoint
        def f():
            print("RAN f")
            return repr(state.V), math.copysign(1, state.V)

        for value in (1, 1, 1.0, True, 0.0, -0.0, -0.0):
            state.V = value
            print("RESULT", f())
        """,
    )
    project.write("proj/state.py", "V = 0\n")
    run = project.run("-m", "proj.main")
    assert run.ran == ["f"] * 5, run
    assert run.results == [
        "('1', 1.0)",
        "('1', 1.0)",
        "('1.0', 1.0)",
        "('True', 1.0)",
        "('0.0', 1.0)",
        "('-0.0', -1.0)",
        "('-0.0', -1.0)",
    ], run
