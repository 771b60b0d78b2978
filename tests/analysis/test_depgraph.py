"""The dependency graph of small in-process modules: which definitions are reached
(depth-first from the root), which edges and value slots they get, and which edits
change the static digest of everything reached."""

from __future__ import annotations

from harness import digest, graph

CHAIN = "X = 1\ndef a():\n    return b() + X\ndef b():\n    return a()\ndef f():\n    return a()"
HELPERS = {"helpers.py": "RATE = 2\ndef g(x):\n    return x * RATE\n"}
USES_HELPERS = {**HELPERS, "m.py": "import helpers\ndef f(x):\n    return helpers.g(x)\n"}


def test_nodes_edges_and_slots() -> None:
    assert graph(CHAIN)["nodes"] == ["m:f", "m:a", "m:b"]
    assert graph(CHAIN)["edges"] == {("m:f", "m:a"), ("m:a", "m:b"), ("m:b", "m:a")}
    assert graph(CHAIN)["slots"] == {"m:X"}
    assert graph("def f(n):\n    return f(n - 1) if n else 0")["edges"] == {("m:f", "m:f")}
    assert graph(
        "class C:\n    RATE = 2\n    def m(self):\n        return helper()\ndef helper():\n    return 1\ndef f():\n    return C().m()"
    ) == {
        "nodes": ["m:f", "m:C", "m:helper"],
        "edges": {("m:f", "m:C"), ("m:C", "m:helper")},
        "slots": {"m:C.RATE"},
        "externals": set(),
    }
    assert graph("def helper(x=3):\n    return x\ndef f(y=4):\n    return helper(y)")["slots"] == {
        "m:helper.__defaults__"
    }
    assert graph(
        "def make():\n    n = 3\n    def inner():\n        return n\n    return inner\nf = make()"
    )["slots"] == {"m:make.<locals>.inner.<closure>.n"}
    assert graph("import os\ndef f():\n    return os.sep + str(len('a'))")["externals"] == {
        "os:sep",
        "builtins:str",
        "builtins:len",
    }
    assert graph(USES_HELPERS) == {
        "nodes": ["m:f", "helpers:g"],
        "edges": {("m:f", "helpers:g")},
        "slots": {"helpers:RATE"},
        "externals": set(),
    }


def test_edits_that_keep_the_digest() -> None:
    assert digest(CHAIN) == digest(CHAIN.replace("return a()\ndef f", "return a()  # again\ndef f"))
    assert digest(CHAIN) == digest("\n\n" + CHAIN)  # moved down: line numbers do not count
    assert digest(USES_HELPERS) == digest(
        {**USES_HELPERS, "helpers.py": "RATE = 3\ndef g(x):\n    return x * RATE\n"}
    )  # a value: read per call, not in the digest
    assert digest(USES_HELPERS) == digest(
        {
            **USES_HELPERS,
            "helpers.py": "RATE = 2\ndef g(y: int) -> int:\n    '''Docs.'''\n    return y * RATE\n",
        }
    )
    assert digest(USES_HELPERS) == digest(
        {
            **USES_HELPERS,
            "helpers.py": "RATE = 2\ndef unused():\n    pass\ndef g(x):\n    return x * RATE\n",
        }
    )
    assert digest("def h():\n    return 1\ndef f():\n    return h()") == digest(
        "def k():\n    return 1\ndef f():\n    return k()"
    )  # a helper renamed: names do not count
    assert digest("def f(x=1):\n    return x") == digest(
        "def f(x=2):\n    return x"
    )  # the root's defaults reach the key as arguments


def test_edits_that_change_the_digest() -> None:
    assert digest(CHAIN) != digest(CHAIN.replace("b() + X", "b() - X"))
    assert digest(CHAIN) != digest(
        CHAIN.replace("def b():\n    return a()", "def b():\n    return a() or 1")
    )
    assert digest(USES_HELPERS) != digest(
        {**USES_HELPERS, "helpers.py": "RATE = 2\ndef g(x):\n    return RATE * x + 0\n"}
    )
    assert digest(USES_HELPERS) != digest(
        {**USES_HELPERS, "helpers.py": "RATE = 2\ndef g(x):\n    return x / RATE\n"}
    )
    assert digest(
        "def h():\n    return 1\ndef k():\n    return 2\ndef f():\n    return h()"
    ) != digest("def h():\n    return 1\ndef k():\n    return 2\ndef f():\n    return k()")
    assert digest("import math\ndef f(x):\n    return math.floor(x)") != digest(
        "import math\ndef f(x):\n    return math.ceil(x)"
    )
    assert digest(
        "class C:\n    def m(self):\n        return 1\ndef f():\n    return C().m()"
    ) != digest("class C:\n    def m(self):\n        return 2\ndef f():\n    return C().m()")
