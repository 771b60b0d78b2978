"""What the static analysis alone must see: decorators, attributes set outside a class
body or on functions, and registries filled at import time.

Python 3.9-3.11 run without the run-time safety net by default, so every case here
turns it off (``defaults["runtime.safety_net"] = False``, as tests/test_blind_spots.py
does) and must still re-run exactly when the result can change. Each case is a package
``proj/`` run as ``python -m proj.main``, twice with an edit in between; the second
run's values must equal those of a fresh run of the edited project (no stale result).
"""

from __future__ import annotations

import shutil
import textwrap
from typing import Any, Dict, List, NamedTuple

import pytest

STATIC_ONLY = (
    'from checkpointing import defaults as _defaults\n_defaults["runtime.safety_net"] = False\n'
)


class Case(NamedTuple):
    id: str
    files: Dict[str, str]
    edits: Dict[str, Any]  # file -> (old, new) or a list of them
    rerun: bool


def case(id: str, files: Dict[str, str], edits: Dict[str, Any], rerun: bool) -> Case:
    return Case(id, {k: textwrap.dedent(v).lstrip("\n") for k, v in files.items()}, edits, rerun)


# -- 1. Decorators are part of the helper they decorate ----------------------------------

DECORATORS = """
import functools

def logged(fn):
    @functools.wraps(fn)
    def wrapper(*args):
        result = fn(*args)
        return result + 1
    return wrapper

def repeat(n):
    def decorate(fn):
        @functools.wraps(fn)
        def wrapper(*args):
            return sum(fn(*args) for _ in range(n))
        return wrapper
    return decorate

def unused(fn):
    return fn
"""

CALLS_HELPER = """
from checkpointing import checkpoint
from proj.helpers import helper

@checkpoint
def f(x):
    print("RAN f")
    return helper(x)

print("RESULT", f(3))
"""


def helpers(decorator: str) -> str:
    return DECORATORS + f"\n{decorator}\ndef helper(x):\n    return x * 2\n"


def root_decorated(decorator: str) -> str:
    return f"""
from checkpointing import checkpoint
from proj.decorators import logged, repeat

@checkpoint
{decorator}
def f(x):
    print("RAN f")
    return x * 2

print("RESULT", f(3))
"""


DECORATOR_CASES: List[Case] = [
    case(
        "decorator-wrapper-logic",
        {"proj/main.py": CALLS_HELPER, "proj/helpers.py": helpers("@logged")},
        {"proj/helpers.py": ("return result + 1", "return result + 2")},
        True,
    ),
    case(
        "decorator-factory-argument",
        {"proj/main.py": CALLS_HELPER, "proj/helpers.py": helpers("@repeat(3)")},
        {"proj/helpers.py": ("@repeat(3)", "@repeat(2)")},
        True,
    ),
    case(
        "decorator-factory-wrapper-logic",
        {"proj/main.py": CALLS_HELPER, "proj/helpers.py": helpers("@repeat(3)")},
        {"proj/helpers.py": ("sum(fn(*args)", "max(fn(*args)")},
        True,
    ),
    case(
        "decorator-applied-by-call",
        {
            "proj/main.py": CALLS_HELPER,
            "proj/helpers.py": DECORATORS + "\ndef _helper(x):\n    return x * 2\n\n"
            "helper = logged(_helper)\n",
        },
        {"proj/helpers.py": ("return result + 1", "return result + 2")},
        True,
    ),
    case(
        "decorator-under-checkpoint-logic",
        {"proj/main.py": root_decorated("@logged"), "proj/decorators.py": DECORATORS},
        {"proj/decorators.py": ("return result + 1", "return result + 2")},
        True,
    ),
    case(
        "decorator-under-checkpoint-factory-argument",
        {"proj/main.py": root_decorated("@repeat(3)"), "proj/decorators.py": DECORATORS},
        {"proj/main.py": ("@repeat(3)", "@repeat(2)")},
        True,
    ),
    case(
        "decorator-stdlib-around-helper-logic",
        {
            "proj/main.py": CALLS_HELPER,
            "proj/helpers.py": helpers("@functools.lru_cache(maxsize=None)"),
        },
        {"proj/helpers.py": ("x * 2", "x * 5")},
        True,
    ),
    case(
        "checkpointed-helper-logic",
        {
            "proj/main.py": CALLS_HELPER,
            "proj/helpers.py": "from checkpointing import checkpoint\n\n@checkpoint\n"
            "def helper(x):\n    return x * 2\n\nhelper.scale = 1\n",
        },
        {"proj/helpers.py": ("x * 2", "x * 5")},
        True,
    ),
    # Negative cases: what does not change the result does not re-run.
    case(
        "decorator-wrapper-cosmetic",
        {"proj/main.py": CALLS_HELPER, "proj/helpers.py": helpers("@logged")},
        {
            "proj/helpers.py": (
                "result = fn(*args)\n        return result + 1",
                "# the wrapped value\n        value = fn(*args)\n"
                "        return (value\n                + 1)",
            )
        },
        False,
    ),
    case(
        "decorator-under-checkpoint-cosmetic",
        {"proj/main.py": root_decorated("@logged"), "proj/decorators.py": DECORATORS},
        {
            "proj/decorators.py": (
                "result = fn(*args)\n        return result + 1",
                "out = fn(*args)  # renamed\n        return out + 1",
            )
        },
        False,
    ),
    case(
        "decorator-unused-edited",
        {"proj/main.py": CALLS_HELPER, "proj/helpers.py": helpers("@logged")},
        {
            "proj/helpers.py": (
                "def unused(fn):\n    return fn",
                "def unused(fn):\n    fn.seen = True\n    return fn",
            )
        },
        False,
    ),
    case(
        "decorator-above-checkpoint-edited",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            from proj.decorators import unused

            @unused
            @checkpoint
            def f(x):
                print("RAN f")
                return x * 2

            print("RESULT", f(3))
            """,
            "proj/decorators.py": DECORATORS,
        },
        {
            "proj/decorators.py": (
                "def unused(fn):\n    return fn",
                "def unused(fn):\n    fn.seen = True\n    return fn",
            )
        },
        False,
    ),
]


# -- 2. Attributes assigned outside the class body, and on functions ---------------------

MODEL = """
class Model:
    RATE = 2

    def __init__(self, x):
        self.x = x

    def scaled(self):
        return self.x * self.RATE


class Other:
    RATE = 1
"""

ATTRIBUTE_CASES: List[Case] = [
    case(
        "class-attribute-set-at-module-level",
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
            "proj/model.py": MODEL + "\nModel.RATE = 4\n",
        },
        {"proj/model.py": ("Model.RATE = 4", "Model.RATE = 5")},
        True,
    ),
    case(
        "class-attribute-set-in-another-module-read-through-self",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            import proj.settings
            from proj.model import Model

            @checkpoint
            def f(x):
                print("RAN f")
                return Model(x).scaled()

            print("RESULT", f(3))
            """,
            "proj/model.py": MODEL,
            "proj/settings.py": "from proj.model import Model\n\nModel.RATE = 4\n",
        },
        {"proj/settings.py": ("Model.RATE = 4", "Model.RATE = 5")},
        True,
    ),
    case(
        "function-attribute-read-by-the-helper",
        {
            "proj/main.py": CALLS_HELPER,
            "proj/helpers.py": "def helper(x):\n    return x * helper.scale\n\nhelper.scale = 3\n",
        },
        {"proj/helpers.py": ("helper.scale = 3", "helper.scale = 4")},
        True,
    ),
    case(
        "function-attribute-set-in-another-module",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            import proj.settings
            from proj.helpers import helper

            @checkpoint
            def f(x):
                print("RAN f")
                return x * helper.scale

            print("RESULT", f(3))
            """,
            "proj/helpers.py": "def helper(x):\n    return x\n",
            "proj/settings.py": "from proj.helpers import helper\n\nhelper.scale = 3\n",
        },
        {"proj/settings.py": ("helper.scale = 3", "helper.scale = 4")},
        True,
    ),
    case(
        "class-attribute-added-on-a-subclass-in-another-module",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            import proj.settings
            from proj.model import Model

            class Sub(Model):
                pass

            proj.settings.configure(Sub)

            @checkpoint
            def f(x):
                print("RAN f")
                return Sub(x).scaled()

            print("RESULT", f(3))
            """,
            "proj/model.py": MODEL,
            "proj/settings.py": "def configure(cls):\n    pass\n",
        },
        {"proj/settings.py": ("    pass", "    cls.RATE = 10")},
        True,
    ),
    # Negative cases.
    case(
        "class-attribute-of-an-unreached-class",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            import proj.settings
            from proj.model import Model

            @checkpoint
            def f(x):
                print("RAN f")
                return Model(x).scaled()

            print("RESULT", f(3))
            """,
            "proj/model.py": MODEL,
            "proj/settings.py": "from proj.model import Model, Other\n\nModel.RATE = 4\n"
            "Other.RATE = 7\n",
        },
        {"proj/settings.py": ("Other.RATE = 7", "Other.RATE = 8")},
        False,
    ),
    case(
        "class-attribute-assignment-reformatted",
        {
            "proj/main.py": """
            from checkpointing import checkpoint
            import proj.settings
            from proj.model import Model

            @checkpoint
            def f(x):
                print("RAN f")
                return Model(x).scaled()

            print("RESULT", f(3))
            """,
            "proj/model.py": MODEL,
            "proj/settings.py": "from proj.model import Model\n\nModel.RATE = 4\n",
        },
        {"proj/settings.py": ("Model.RATE = 4", "# tuned\nModel.RATE = (\n    4\n)")},
        False,
    ),
]


# -- 3. Registries filled at import time ----------------------------------------------


def registry_main(expression: str, imports: str) -> str:
    return f"""
from checkpointing import checkpoint
{imports}

@checkpoint
def f(x):
    print("RAN f")
    return {expression}

print("RESULT", f(3))
"""


INIT_SUBCLASS = {
    "proj/base.py": """
        class Plugin:
            registry = {}

            def __init_subclass__(cls, **kwargs):
                super().__init_subclass__(**kwargs)
                Plugin.registry[cls.__name__.lower()] = cls
        """,
    "proj/plugins.py": """
        from proj.base import Plugin

        class Double(Plugin):
            def run(self, x):
                return x * 2

        class Half(Plugin):
            def run(self, x):
                return x / 2
        """,
    "proj/main.py": registry_main(
        'Plugin.registry["double"]().run(x)', "import proj.plugins\nfrom proj.base import Plugin"
    ),
}

METACLASS = {
    "proj/base.py": """
        REGISTRY = {}

        class Registered(type):
            def __init__(cls, name, bases, namespace):
                super().__init__(name, bases, namespace)
                REGISTRY[name] = cls
        """,
    "proj/plugins.py": """
        from proj.base import Registered

        class Triple(metaclass=Registered):
            def run(self, x):
                return x * 3
        """,
    "proj/main.py": registry_main(
        'REGISTRY["Triple"]().run(x)', "import proj.plugins\nfrom proj.base import REGISTRY"
    ),
}

CLASS_DECORATOR = {
    "proj/base.py": """
        HANDLERS = {}

        def handler(cls):
            HANDLERS[cls.__name__] = cls
            return cls
        """,
    "proj/plugins.py": """
        from proj.base import handler

        @handler
        class Square:
            def run(self, x):
                return x * x
        """,
    "proj/main.py": registry_main(
        'HANDLERS["Square"]().run(x)', "import proj.plugins\nfrom proj.base import HANDLERS"
    ),
}

SINGLEDISPATCH = {
    "proj/base.py": """
        import functools

        @functools.singledispatch
        def process(x):
            return 0

        OTHER = {}
        """,
    "proj/ext.py": """
        from proj.base import process

        @process.register(int)
        def _(x):
            return x * 2
        """,
    "proj/main.py": registry_main("process(x)", "import proj.ext\nfrom proj.base import process"),
}

DISPATCH_TABLE = {
    "proj/base.py": textwrap.dedent(SINGLEDISPATCH["proj/base.py"]) + "\nTABLE = {'p': process}\n",
    "proj/ext.py": SINGLEDISPATCH["proj/ext.py"],
    "proj/main.py": registry_main('TABLE["p"](x)', "import proj.ext\nfrom proj.base import TABLE"),
}

PARTIALS = {
    "proj/ops.py": """
        import functools

        def scale(x, k):
            return x * k

        def shift(x, by):
            return x + by

        PIPELINE = [functools.partial(scale, k=2), (shift, 1)]
        """,
    "proj/main.py": registry_main(
        "PIPELINE[1][0](PIPELINE[0](x), PIPELINE[1][1])", "from proj.ops import PIPELINE"
    ),
}

REGISTRY_CASES: List[Case] = [
    case(
        "init-subclass-registry",
        INIT_SUBCLASS,
        {"proj/plugins.py": ("return x * 2", "return x * 20")},
        True,
    ),
    case(
        "metaclass-registry",
        METACLASS,
        {"proj/plugins.py": ("return x * 3", "return x * 30")},
        True,
    ),
    case(
        "class-decorator-registry",
        CLASS_DECORATOR,
        {"proj/plugins.py": ("return x * x", "return x * x * x")},
        True,
    ),
    case(
        "singledispatch-registered-in-another-module",
        SINGLEDISPATCH,
        {"proj/ext.py": ("return x * 2", "return x * 20")},
        True,
    ),
    case(
        "singledispatch-new-registration",
        SINGLEDISPATCH,
        {
            "proj/ext.py": (
                "return x * 2",
                "return x * 2\n\n@process.register(bool)\ndef _(x):\n    return -1",
            )
        },
        True,
    ),
    case(
        "dispatcher-inside-a-global-dict",
        DISPATCH_TABLE,
        {"proj/ext.py": ("return x * 2", "return x * 20")},
        True,
    ),
    case(
        "functions-inside-partials-and-tuples",
        PARTIALS,
        {"proj/ops.py": ("return x * k", "return x * k * 10")},
        True,
    ),
    case(
        "functions-inside-tuples",
        PARTIALS,
        {"proj/ops.py": ("return x + by", "return x - by")},
        True,
    ),
    # Negative cases.
    case(
        "registered-class-reformatted",
        INIT_SUBCLASS,
        {
            "proj/plugins.py": (
                "def run(self, x):\n        return x * 2",
                "def run(self, value):\n        # doubled\n        return value * 2",
            )
        },
        False,
    ),
    case(
        "registered-function-renamed-local",
        SINGLEDISPATCH,
        {
            "proj/ext.py": (
                "def _(x):\n    return x * 2",
                "def _(value):\n    '''Doubled.'''\n    return value * 2",
            )
        },
        False,
    ),
    case(
        "unread-registry-edited",
        SINGLEDISPATCH,
        {"proj/base.py": ("OTHER = {}", "OTHER = {'a': 1}")},
        False,
    ),
]

CASES = DECORATOR_CASES + ATTRIBUTE_CASES + REGISTRY_CASES


def write_project(project, files: Dict[str, str]) -> None:
    for name, text in files.items():
        if name == "proj/main.py":
            text = STATIC_ONLY + text
        project.write(name, text)
    if "proj/__init__.py" not in files:
        project.write("proj/__init__.py", "")


@pytest.mark.parametrize("c", [pytest.param(c, id=c.id) for c in CASES])
def test_static_analysis_sees_it(project, c: Case) -> None:
    write_project(project, c.files)
    first = project.run("-m", "proj.main")
    assert "f" in first.ran and "Warning" not in first.stderr, first
    assert project.run("-m", "proj.main").ran == [], "a repeated run must hit"
    edited = dict(c.files)
    for name, replacements in c.edits.items():
        for old, new in [replacements] if isinstance(replacements, tuple) else replacements:
            assert old in edited[name], f"edit {old!r} not found in {name}"
            edited[name] = edited[name].replace(old, new)
    write_project(project, edited)
    second = project.run("-m", "proj.main")
    assert ("f" in second.ran) == c.rerun, second
    shutil.rmtree(project.root / ".checkpointing")
    fresh = project.run("-m", "proj.main")
    assert fresh.results == second.results, (second, fresh)
    if not c.rerun:
        assert second.results == first.results
