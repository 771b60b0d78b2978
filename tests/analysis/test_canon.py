"""The canonicaliser's rules, one line each: which edits keep a definition's canonical
bytes (and refs), which change them, and which names are free in it."""

from __future__ import annotations

import sys

import pytest
from harness import blind, canon, differ, free, same

py310 = pytest.mark.skipif(sys.version_info < (3, 10), reason="match statements: 3.10+")


def test_noise_keeps_the_bytes() -> None:
    assert same("def f(x):\n    return x + 1", "def f(x):  # comment\n    # more\n    return x + 1")
    assert same("def f(x):\n    return x + 1", "def f( x ):\n\n    return (x\n            + 1)")
    assert same("def f(x):\n    return x+1", "def f(x):\n    '''Docs.'''\n    return x+1")
    assert same("def f(x):\n    return x", "def f(x: int) -> int:\n    return x")
    assert same("def f(*a, **k):\n    return a", "def f(*a: int, **k: str) -> tuple:\n    return a")
    assert same("def f(x):\n    y = x\n    return y", "def f(x):\n    y: int = x\n    return y")
    assert same("def f(x):\n    return x", "def f(x):\n    y: int\n    return x")
    assert same("def f(x):\n    return 'a'", 'def f(x):\n    return "a"')
    assert same("def f(x):\n    return 10", "def f(x):\n    return 0xA")
    assert same("def f():\n    pass", "def f():\n    '''Only a docstring.'''")


def test_own_name_parameters_and_locals_are_renamed() -> None:
    assert same("def f(x):\n    return x", "def g(x):\n    return x")
    assert same("def f(x):\n    return x", "def f(y):\n    return y")
    assert same("def f(a, b):\n    return a - b", "def f(b, a):\n    return b - a")
    assert same("def f(x):\n    t = x * 2\n    return t", "def f(x):\n    u = x * 2\n    return u")
    assert same("def f(*args):\n    return args", "def f(*rest):\n    return rest")
    assert same("def f(**kw):\n    return kw", "def f(**options):\n    return options")
    assert same(
        "def f(x):\n    for i in x:\n        pass", "def f(x):\n    for j in x:\n        pass"
    )
    assert same(
        "def f(x):\n    with x as a:\n        return a",
        "def f(x):\n    with x as b:\n        return b",
    )
    assert same(
        "def f():\n    import os as a\n    return a", "def f():\n    import os as b\n    return b"
    )
    assert same("lambda x: x + 1", "lambda y: y + 1")


def test_logic_changes_the_bytes() -> None:
    assert differ("def f(x):\n    return x + 1", "def f(x):\n    return x + 2")
    assert differ("def f(x):\n    return x + 1", "def f(x):\n    return x - 1")
    assert differ("def f(a, b):\n    return a - b", "def f(a, b):\n    return b - a")
    assert differ("def f(x):\n    return 'a'", "def f(x):\n    return 'b'")
    assert differ("def f(x):\n    return 1", "def f(x):\n    return 1.0")
    assert differ("def f(x):\n    return x < 1", "def f(x):\n    return x <= 1")
    assert differ("def f(x):\n    return x.real", "def f(x):\n    return x.imag")
    assert differ("def f(x):\n    return g(x, a=1)", "def f(x):\n    return g(x, b=1)")
    assert differ("def f(x):\n    return x", "def f(x):\n    return -x")
    assert differ(
        "def f(x):\n    if x:\n        return 1\n    return 2",
        "def f(x):\n    if not x:\n        return 1\n    return 2",
    )
    assert differ("def f(x):\n    return [x]", "def f(x):\n    return (x,)")
    assert differ("def f(x):\n    return x", "async def f(x):\n    return x")
    assert differ("def f(x):\n    pass", "def f(x):\n    '''Docs.'''\n    return 1")
    assert differ("def f(x):\n    return x", "def f(x):\n    y: int = 2\n    return x")


def test_signature_shape_changes_the_bytes() -> None:
    assert differ("def f(a, b):\n    return a", "def f(a, *, b):\n    return a")
    assert differ("def f(a, b):\n    return a", "def f(a, b, c):\n    return a")
    assert differ("def f(*a):\n    return a", "def f(**a):\n    return a")


def test_default_values() -> None:
    assert differ("def f(x=1):\n    return x", "def f(x=2):\n    return x")
    assert differ("def f(*, k=1):\n    return k", "def f(*, k=2):\n    return k")
    assert same("def f(x=1):\n    return x", "def f(x=2):\n    return x", defaults=False)
    assert same("def f(*, k=1):\n    return k", "def f(*, k=2):\n    return k", defaults=False)
    assert free("def f(x=LIMIT):\n    return x") == {"LIMIT"}
    assert free("def f(x=LIMIT):\n    return x", defaults=False) == set()


def test_decorators() -> None:
    assert differ("@a\ndef f():\n    pass", "@b\ndef f():\n    pass")
    assert differ("@a(1)\ndef f():\n    pass", "@a(2)\ndef f():\n    pass")
    assert same(
        "@outer\n@inner\ndef f():\n    pass", "@other\n@inner\ndef f():\n    pass", decorators=1
    )
    assert differ(
        "@outer\n@inner\ndef f():\n    pass", "@outer\n@other\ndef f():\n    pass", decorators=1
    )
    assert free("@outer\n@inner\ndef f():\n    pass", decorators=0) == set()


def test_free_names_are_placeholders() -> None:
    assert free("def f(x):\n    return helper(x)") == {"helper"}
    assert free("def f(x):\n    return np.linalg.norm(x)") == {"np.linalg.norm"}
    assert free("def f(x):\n    return np.linalg.norm(x).T") == {"np.linalg.norm"}
    assert free("def f(x):\n    return len(x)") == {"len"}
    assert free("def f(x):\n    return x.y.z") == set()
    assert free("def f():\n    return cfg.a + cfg.b") == {"cfg.a", "cfg.b"}
    assert same("def f(x):\n    return g(x)", "def f(x):\n    return h(x)").holds is False
    assert canon("def f(x):\n    return g(x) + g(1)").data.count(b"@0") == 2
    assert canon("def f(x):\n    return g(h(x))").text == "def _(_0):\n    return @0(@1(_0))"
    assert differ("def f():\n    return a.b", "def f():\n    return a.c")


def test_comprehensions() -> None:
    assert free("def f():\n    return [x for x in y]") == {"y"}
    assert free("def f():\n    return [x for x in x]") == {"x"}
    assert free("def f():\n    return {k: v for k, v in d}") == {"d"}
    assert free("def f():\n    return (a for a in b if a > c)") == {"b", "c"}
    assert free("def f():\n    return [a for a in b for c in a]") == {"b"}
    assert free("def f(x):\n    return [x for _ in y]") == {"y"}
    assert free("def f():\n    return [j for i in y for j in i]") == {"y"}
    assert same("def f(y):\n    return [x for x in y]", "def f(y):\n    return [z for z in y]")
    assert differ("def f(y):\n    return [x for x in y]", "def f(y):\n    return {x for x in y}")


def test_nested_functions_and_closures() -> None:
    assert free("def f():\n    def g():\n        return h()\n    return g()") == {"h"}
    assert free("def f(x):\n    def g():\n        return x\n    return g") == set()
    assert free("def f():\n    def g():\n        return y\n    y = 1\n    return g") == set()
    assert same(
        "def f():\n    def g():\n        return 1\n    return g",
        "def f():\n    def k():\n        return 1\n    return k",
    )
    assert differ(
        "def f():\n    def g():\n        return 1\n    return g",
        "def f():\n    def g():\n        return 2\n    return g",
    )
    assert free("def f():\n    g = lambda: z\n    return g") == {"z"}
    assert free("def f(x):\n    return lambda y: x + y + w") == {"w"}
    assert free("def f():\n    def g(a=b):\n        return a\n    return g") == {"b"}
    assert free("def f():\n    @deco\n    def g():\n        pass\n    return g") == {"deco"}


def test_class_scopes() -> None:
    assert free(
        "def f():\n    class A:\n        x = 1\n        def m(self):\n            return x\n    return A"
    ) == {"x"}
    assert free("def f():\n    class A:\n        x = 1\n        y = x\n    return A") == set()
    assert free("def f():\n    class A(Base):\n        pass\n    return A") == {"Base"}
    assert free("class C:\n    RATE = 2\n    def m(self):\n        return RATE") == {"RATE"}
    assert free("class C:\n    def m(self):\n        return helper(self)") == {"helper"}
    assert differ("class C:\n    RATE = 2", "class C:\n    SPEED = 2")
    assert differ(
        "class C:\n    def m(self):\n        pass", "class C:\n    def n(self):\n        pass"
    )
    assert differ("class C:\n    a: int", "class C:\n    a: str")
    assert differ("class C(A):\n    pass", "class C(B):\n    pass")
    assert same(
        "class C:\n    def m(self, x: int) -> int:\n        '''Docs.'''\n        return x",
        "class C:\n    def m(self, y):\n        return y",
    )
    assert differ("class C:\n    pass", "class D:\n    pass")  # a class's name is behaviour


def test_global_and_nonlocal() -> None:
    assert free("def f():\n    global n\n    n = 1\n    return n") == {"n"}
    assert free("def f():\n    n = 1\n    return n") == set()
    assert (
        free(
            "def f():\n    n = 0\n    def g():\n        nonlocal n\n        n += 1\n        return n\n    return g"
        )
        == set()
    )
    assert free(
        "def f():\n    n = 0\n    def g():\n        global n\n        return n\n    return g"
    ) == {"n"}
    assert differ("def f():\n    global n\n    n = 1", "def f():\n    global m\n    m = 1")


def test_walrus() -> None:
    assert free("def f(x):\n    if (y := x):\n        return y") == set()
    assert free("def f(x):\n    [(y := i) for i in x]\n    return y") == set()
    assert same(
        "def f(x):\n    if (y := x):\n        return y",
        "def f(x):\n    if (z := x):\n        return z",
    )


@py310
def test_match_statements() -> None:
    assert (
        free("def f(x):\n    match x:\n        case [a, *rest]:\n            return a, rest")
        == set()
    )
    assert (
        free(
            "def f(x):\n    match x:\n        case {'k': v, **others}:\n            return v, others"
        )
        == set()
    )
    assert free(
        "def f(x):\n    match x:\n        case Point(x=px) as p:\n            return px, p"
    ) == {"Point"}
    assert free("def f(x):\n    match x:\n        case Color.RED:\n            return 1") == {
        "Color.RED"
    }
    assert same(
        "def f(x):\n    match x:\n        case [a]:\n            return a",
        "def f(x):\n    match x:\n        case [b]:\n            return b",
    )
    assert differ(
        "def f(x):\n    match x:\n        case [a]:\n            return a",
        "def f(x):\n    match x:\n        case (a, b):\n            return a",
    )


def test_try_except_names() -> None:
    assert free(
        "def f():\n    try:\n        pass\n    except ValueError as e:\n        return e"
    ) == {"ValueError"}
    assert same(
        "def f():\n    try:\n        pass\n    except E as e:\n        return e",
        "def f():\n    try:\n        pass\n    except E as err:\n        return err",
    )
    assert differ(
        "def f():\n    try:\n        pass\n    except ValueError:\n        pass",
        "def f():\n    try:\n        pass\n    except TypeError:\n        pass",
    )


def test_lambdas() -> None:
    assert free("lambda x: x + y") == {"y"}
    assert free("lambda x, k=d: x + k") == {"d"}
    assert differ("lambda x: x + 1", "lambda x: x * 1")


def test_imports_inside_definitions() -> None:
    assert free("def f():\n    import numpy as np\n    return np.pi") == {"np.pi<-numpy"}
    assert free("def f():\n    import os.path\n    return os.path.sep") == {"os.path.sep<-os"}
    assert free("def f():\n    from ..m import g as h\n    return h()") == {"h<-..m:g"}
    assert free("def f():\n    from . import m\n    return m.x") == {"m.x<-.:m"}
    assert free("def f():\n    from os import *\n    return sep") == {"sep"}
    assert free("def f():\n    import os\n    os = 1\n    return os") == set()
    assert differ(
        "def f():\n    import json as j\n    return j",
        "def f():\n    import pickle as j\n    return j",
    )


def test_blind_spots() -> None:
    assert blind("def f(s):\n    return eval(s)") == {"eval"}
    assert blind("def f(s):\n    return exec(s)") == {"exec"}
    assert blind("def f(o, n):\n    return getattr(o, n)") == {"getattr"}
    assert blind("def f(o):\n    return getattr(o, 'x')") == set()
    assert blind("def f():\n    return globals()") == {"globals"}
    assert blind("def f(n):\n    return importlib.import_module(n)") == {"importlib.import_module"}
    assert blind("def f():\n    return importlib.import_module('json')") == set()
    assert blind("def f(eval):\n    return eval('1')") == set()


def test_other_bindings() -> None:
    assert free("def f():\n    x += 1\n    return x") == set()
    assert free("def f():\n    del x") == set()
    assert free("def f():\n    a, *b = c\n    return b") == {"c"}
    assert free("def f():\n    with open(p) as fh:\n        return fh.read()") == {"open", "p"}
    assert free("async def f():\n    async for i in it:\n        await g(i)") == {"it", "g"}
    assert free("def f():\n    class A(metaclass=M):\n        pass\n    return A") == {"M"}
    assert free("def f(x):\n    return f'{x}{y}'") == {"y"}
    assert differ("def f(x):\n    return f'{x}'", "def f(x):\n    return f'{x!r}'")
