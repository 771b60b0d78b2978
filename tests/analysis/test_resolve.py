"""The resolver's rules, one line each: what each name a definition reads denotes, in
a real module imported in this process (see :mod:`harness`)."""

from __future__ import annotations

import sys

from harness import deps

HELPERS = {"helpers.py": "RATE = 2\ndef g():\n    return RATE\nclass K:\n    pass\n"}
PKG = {"pkg/__init__.py": "", "pkg/b.py": "V = 1\ndef g():\n    return V\n"}


def test_module_globals_builtins_and_shadowing() -> None:
    assert deps("X = 1\ndef f():\n    return X") == {"X": "global m:X"}
    assert deps("def f(x):\n    return len(x)") == {"len": "external builtins:len"}
    assert deps("def len(x):\n    return 0\ndef f(x):\n    return len(x)") == {
        "len": "function m:len"
    }
    assert deps("def f():\n    return missing") == {"missing": "global m:missing"}
    assert deps("def f():\n    return after\nafter = 2") == {"after": "global m:after"}
    assert deps("import json\njson = 3\ndef f():\n    return json") == {"json": "global m:json"}
    assert deps("def f():\n    global N\n    N = 1\n    return N\nN = 0") == {"N": "global m:N"}
    assert deps("class C:\n    pass\nobj = C()\ndef f():\n    return obj") == {
        "obj": "global m:obj"
    }
    assert deps("import types\ncfg = types.SimpleNamespace(lr=1)\ndef f():\n    return cfg.lr") == {
        "cfg.lr": "global m:cfg/lr"
    }


def test_project_functions_and_classes_are_followed() -> None:
    assert deps("def helper():\n    return 1\ndef f():\n    return helper()") == {
        "helper": "function m:helper"
    }
    assert deps("def helper():\n    return 1\nh = helper\ndef f():\n    return h()") == {
        "h": "function m:helper"
    }
    assert deps("g = lambda x: x\ndef f():\n    return g(1)") == {"g": "function m:<lambda>"}
    assert deps("class C:\n    def m(self):\n        return 1\ndef f():\n    return C().m()") == {
        "C": "class m:C"
    }
    assert deps(
        "class C:\n    @staticmethod\n    def s():\n        return 1\ndef f():\n    return C.s()"
    ) == {"C.s": "class m:C/s"}
    assert deps("class cfg:\n    lr = 1\ndef f():\n    return cfg.lr") == {
        "cfg.lr": "class m:cfg/lr"
    }


def test_wrapped_helpers_are_unwrapped() -> None:
    wraps = "import functools\ndef deco(fn):\n    @functools.wraps(fn)\n    def w(*a):\n        return fn(*a)\n    return w\n"
    assert deps(wraps + "@deco\ndef helper():\n    return 1\ndef f():\n    return helper()") == {
        "helper": "function m:helper"
    }
    assert deps(
        "import functools\n@functools.lru_cache()\ndef helper():\n    return 1\ndef f():\n    return helper()"
    ) == {"helper": "function m:helper"}


def test_external_names_are_identified_by_qualified_name() -> None:
    assert deps("import os\ndef f():\n    return os.sep") == {"os.sep": "external os:sep"}
    assert deps("import os\ndef f():\n    return os.path.join('a')") == {
        "os.path.join": "external posixpath:join"
    }
    assert deps("import os.path\ndef f():\n    return os.path.sep") == {
        "os.path.sep": "external posixpath:sep"
    }
    assert deps("from math import sqrt\ndef f():\n    return sqrt(2)") == {
        "sqrt": "external math:sqrt"
    }
    assert deps("import math\nsq = math.sqrt\ndef f():\n    return sq(2)") == {
        "sq": "external math:sqrt"
    }
    assert deps("import collections\ndef f():\n    return collections.OrderedDict") == {
        "collections.OrderedDict": "external collections:OrderedDict"
    }
    assert deps("import numpy as np\ndef f():\n    return np.pi") == {"np.pi": "external numpy:pi"}
    assert deps("def f(s):\n    return eval(s)") == {"eval": "external builtins:eval"}


def test_chains_through_project_modules() -> None:
    assert deps({**HELPERS, "m.py": "import helpers\ndef f():\n    return helpers.g()"}) == {
        "helpers.g": "function helpers:g"
    }
    assert deps({**HELPERS, "m.py": "import helpers\ndef f():\n    return helpers.RATE"}) == {
        "helpers.RATE": "global helpers:RATE"
    }
    assert deps({**HELPERS, "m.py": "import helpers\ndef f():\n    return helpers"}) == {
        "helpers": "module helpers"
    }
    assert deps({**HELPERS, "m.py": "from helpers import g, K\ndef f():\n    return g(), K"}) == {
        "g": "function helpers:g",
        "K": "class helpers:K",
    }
    assert deps({**HELPERS, "m.py": "from helpers import *\ndef f():\n    return g()"}) == {
        "g": "function helpers:g"
    }
    assert deps({**HELPERS, "m.py": "from helpers import RATE\ndef f():\n    return RATE"}) == {
        "RATE": "global m:RATE"
    }


def test_imports_inside_the_function() -> None:
    assert deps({**HELPERS, "m.py": "def f():\n    import helpers\n    return helpers.g()"}) == {
        "helpers.g": "function helpers:g"
    }
    # An external module imported inside a function: named as written, not imported.
    assert deps("def f():\n    import json\n    return json.dumps") == {
        "json.dumps": "external json/dumps"
    }
    assert deps(
        {**PKG, "pkg/a.py": "def f():\n    from . import b\n    return b.g()"}, main="pkg.a"
    ) == {"b.g": "function pkg.b:g"}
    assert deps(
        {**PKG, "pkg/a.py": "def f():\n    from .b import g as h\n    return h()"}, main="pkg.a"
    ) == {"h": "function pkg.b:g"}


def test_an_external_import_inside_a_function_is_named_not_imported() -> None:
    """A first analysis must not import what a reached function imports on some path:
    networkx as project code made it import sympy, pandas, scipy and pytest (1,186
    modules, seconds). The name is the one written, loaded or not."""
    for name in ("wave", "mailbox"):
        assert name not in sys.modules, f"{name} was imported before the test"
    found = deps(
        "def f():\n    import wave\n    from mailbox import mbox as box\n"
        "    return wave.open, box.add"
    )
    assert found == {"wave.open": "external wave/open", "box.add": "external mailbox:mbox/add"}
    assert "wave" not in sys.modules and "mailbox" not in sys.modules
    import wave  # noqa: F401  (now loaded: the same names)

    assert deps("def f():\n    import wave\n    return wave.open") == {
        "wave.open": "external wave/open"
    }


def test_a_value_imported_inside_the_function_is_read_where_it_lives() -> None:
    assert deps({**HELPERS, "m.py": "def f():\n    from helpers import RATE\n    return RATE"}) == {
        "RATE": "global helpers:RATE"
    }


def test_relative_imports_in_packages() -> None:
    assert deps(
        {**PKG, "pkg/a.py": "from . import b\ndef f():\n    return b.g()"}, main="pkg.a"
    ) == {"b.g": "function pkg.b:g"}
    assert deps({**PKG, "pkg/a.py": "from . import b\ndef f():\n    return b.V"}, main="pkg.a") == {
        "b.V": "global pkg.b:V"
    }
    assert deps(
        {**PKG, "pkg/a.py": "from .b import g\ndef f():\n    return g()"}, main="pkg.a"
    ) == {"g": "function pkg.b:g"}


def test_closures() -> None:
    assert deps(
        "def make():\n    n = 3\n    def inner():\n        return n\n    return inner", of="make()"
    ) == {"n": "closure m:make.<locals>.inner.<closure>.n"}
    assert deps(
        "def make():\n    def inner():\n        return late\n    late = 1\n    return inner",
        of="make()",
    ) == {"late": "closure m:make.<locals>.inner.<closure>.late"}
    assert deps(
        "def h():\n    return 1\ndef make():\n    k = h\n    def inner():\n        return k()\n    return inner",
        of="make()",
    ) == {"k": "function m:h"}
    assert deps(
        "def make():\n    def inner():\n        return later\n    return inner\nf = make()"
    ) == {"later": "global m:later"}


def test_classes_and_methods() -> None:
    assert deps(
        "def helper():\n    return 1\nclass C:\n    def m(self):\n        return helper()", of="C"
    ) == {"helper": "function m:helper"}
    assert deps(
        "def helper():\n    return 1\nclass C:\n    def m(self):\n        return helper()", of="C.m"
    ) == {"helper": "function m:helper"}
    assert deps("class Base:\n    pass\nclass C(Base):\n    pass", of="C") == {
        "Base": "class m:Base"
    }
    assert deps(
        "RATE = 1\nclass C:\n    RATE = 2\n    def m(self):\n        return RATE", of="C.m"
    ) == {"RATE": "global m:RATE"}


def test_default_values_of_a_helper() -> None:
    assert deps("LIMIT = 3\ndef helper(x=LIMIT):\n    return x", of="helper") == {
        "LIMIT": "global m:LIMIT"
    }
