"""Defects first found by the real-world suite (benchmarks/realworld/), each pinned by a
small program run twice in subprocesses, as in tests/test_e2e_tracking.py."""

from __future__ import annotations

import functools
import shutil

import pytest

from checkpointing import keyplan
from checkpointing.hashing import digest_value

# -- Values a class derives and caches are not the object's state ----------------------


class Derived:
    def __init__(self, items):
        self.items = list(items)

    @functools.cached_property
    def total(self):
        return sum(self.items)


class DerivedWithState(Derived):
    def __getstate__(self):
        return dict(vars(self))  # the class says its state includes the cache

    def __setstate__(self, state):
        vars(self).update(state)


def test_cached_property_value_is_not_in_the_digest() -> None:
    obj = Derived([1, 2])
    before = digest_value(obj)
    assert obj.total == 3 and "total" in vars(obj)
    assert digest_value(obj) == before
    assert digest_value(obj) != digest_value(Derived([1, 3]))  # the real state counts
    obj.items.append(4)
    assert digest_value(obj) != before


# Where the class is digested by its code (once keyplan's digesters are registered,
# which depends on the tests an xdist worker ran before), its ``vars()`` is a blind spot,
# rightly warned about, and on 3.12+ only at a later call (in another test): not what
# these tests are about.
keyplan.acknowledge_blind_spots(DerivedWithState)


def test_a_class_with_getstate_declares_its_state_itself() -> None:
    obj = DerivedWithState([1, 2])
    before = digest_value(obj)
    obj.total
    assert digest_value(obj) != before


CACHED_PROPERTY_PROGRAM = """
import functools

import pytest
from checkpointing import checkpoint

class Graph:
    def __init__(self, edges):
        self.edges_list = list(edges)

    @functools.cached_property
    def degree(self):
        out = {}
        for a, b in self.edges_list:
            out[a] = out.get(a, 0) + 1
            out[b] = out.get(b, 0) + 1
        return out

@checkpoint
def max_degree(g):
    print("RAN max_degree")
    return max(g.degree.values())

g = Graph(EDGES)
print("RESULT", max_degree(g))
print("RESULT", max_degree(g))  # g.degree is now in vars(g): still the same argument
"""


def test_cached_property_read_by_the_call_does_not_rerun(project) -> None:
    project.write("main.py", CACHED_PROPERTY_PROGRAM.replace("EDGES", "[(1, 2), (2, 3)]"))
    first = project.run()
    assert first.ran == ["max_degree"] and first.results == ["2", "2"]
    second = project.run()
    assert second.ran == [] and second.results == ["2", "2"]
    project.write("main.py", CACHED_PROPERTY_PROGRAM.replace("EDGES", "[(1, 2), (2, 3), (2, 4)]"))
    third = project.run()
    assert third.ran == ["max_degree"] and third.results == ["3", "3"]


# -- The class statement analysed is the one that ran ----------------------------------

CLASS_MAIN = """
from checkpointing import checkpoint
from model import Model

@checkpoint
def f(x):
    print("RAN f")
    return Model().value(x)

print("RESULT", f(2))
"""

HELPER = """
import os

def helper(x):
    return x * 2
"""

# The class that runs is first; a second definition below it never executes.
CLASS_THEN_UNEXECUTED = (
    HELPER
    + """
class Model:
    def value(self, x):
        return helper(x)

if os.environ.get("MODEL_ALTERNATIVE"):
    class Model:
        def value(self, x):
            return -x
"""
)

# The class that runs is under the `if`; the one under `else` (last in the file) does not.
IF_ELSE = (
    HELPER
    + """
if not os.environ.get("MODEL_ALTERNATIVE"):
    class Model:
        @staticmethod
        def value(x):
            return helper(x)
else:
    class Model:
        @staticmethod
        def value(x):
            return -x
"""
)


@pytest.mark.parametrize("model", [CLASS_THEN_UNEXECUTED, IF_ELSE], ids=["after", "if-else"])
def test_class_defined_twice_is_analysed_as_it_ran(project, model: str) -> None:
    project.write("main.py", CLASS_MAIN)
    project.write("model.py", model)
    first = project.run()
    assert first.ran == ["f"] and first.results == ["4"]
    assert "not available" not in first.stderr, first.stderr
    assert project.run().ran == []
    project.write("model.py", model.replace("return x * 2", "return x * 3"))
    second = project.run()
    assert second.ran == ["f"] and second.results == ["6"]
    # Editing the definition that never runs changes nothing.
    project.write(
        "model.py",
        model.replace("return x * 2", "return x * 3").replace("return -x", "return -2 * x"),
    )
    assert project.run().ran == []


# -- The analysis is stored, or the reason it is not is visible ----------------------------

CLOSURE_HELPER = """
import logging, sys
from checkpointing import checkpoint

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)

def make_scaler():
    k = 3
    def scale(x):
        return x * k
    return scale

scale = make_scaler()  # a helper made by a factory: its closure holds k

@checkpoint
def f(x):
    print("RAN f")
    return scale(x) + 1

print("RESULT", f(2))
"""


def _verify(project) -> str:
    run = project.run("-m", "checkpointing", "verify")
    return run.stdout


def test_closure_of_a_reached_helper_does_not_stop_the_analysis_being_stored(project) -> None:
    project.write("main.py", CLOSURE_HELPER)
    first = project.run()
    assert first.ran == ["f"] and first.results == ["7"]
    assert "is not stored" not in first.stderr, first.stderr
    assert "analysis not stored" not in _verify(project)
    second = project.run()
    assert second.ran == [] and second.results == ["7"]
    assert "stored analysis" not in second.stderr  # read back, not stale
    assert "analysis of __main__:f" not in second.stderr
    project.write("main.py", CLOSURE_HELPER.replace("k = 3", "k = 4"))
    third = project.run()
    assert third.ran == ["f"] and third.results == ["9"]


EXEC_HELPER = """
import logging, sys
from checkpointing import checkpoint

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr)

# Generated code that claims this file: its source is not there, so it is analysed
# from its bytecode (and such an analysis cannot be checked in another process).
exec(compile("def made(x):\\n    return x + 1", __file__, "exec"))

@checkpoint
def f(x):
    print("RAN f")
    return made(x)

print("RESULT", f(2))
"""


def test_analysis_not_stored_is_logged_and_reported_by_verify(project) -> None:
    project.write("main.py", EXEC_HELPER)
    first = project.run()
    assert first.ran == ["f"] and first.results == ["3"]
    assert "the analysis of __main__:f is not stored" in first.stderr
    assert "source of __main__:made is not available" in first.stderr
    report = _verify(project)
    assert (
        "analysis not stored: __main__:f: the source of __main__:made is not available" in report
    ), report
    # Once the cause is gone, the analysis is stored and verify says nothing more.
    project.write(
        "main.py",
        EXEC_HELPER.replace(
            'exec(compile("def made(x):\\n    return x + 1", __file__, "exec"))',
            "def made(x):\n    return x + 1",
        ),
    )
    second = project.run()
    assert second.results == ["3"] and "is not stored" not in second.stderr
    assert "analysis not stored" not in _verify(project)


# -- Code found at run time: comments and docstrings do not count ----------------------------

PLUGIN_MAIN = """
import importlib
from checkpointing import checkpoint, defaults

defaults["runtime.profile_safety_net"] = True  # before 3.12; 3.12+ uses sys.monitoring

@checkpoint
def render(name, text):
    print("RAN render")
    module = importlib.import_module("plugins." + name)  # chosen at run time
    return module.render(text)

print("RESULT", render("upper", "abc"))
"""

PLUGIN = '''
"""A plugin, loaded by name."""

def render(text):
    """Render the text."""
    return text.upper() + "!"  # shout
'''


def test_code_found_at_run_time_ignores_comments_and_docstrings(project) -> None:
    project.write("main.py", PLUGIN_MAIN)
    project.write("plugins/__init__.py", "")
    project.write("plugins/upper.py", PLUGIN)
    first = project.run()
    assert first.ran == ["render"] and first.results == ["ABC!"]
    assert project.run().ran == []
    cosmetic = (
        PLUGIN.replace("# shout", "# louder")
        .replace("Render the text.", "Render.")
        .replace('"""A plugin, loaded by name."""', '"""A plugin."""')
    )
    project.write("plugins/upper.py", cosmetic)
    second = project.run()
    assert second.ran == [] and second.results == ["ABC!"]
    project.write("plugins/upper.py", cosmetic.replace('"!"', '"?"'))
    third = project.run()
    assert third.ran == ["render"] and third.results == ["ABC?"]


CLASS_COPY_LIB = """
import os

class Settings:
    RATE = 1
    UNIT = 1

    def scaled(self, x):
        return x * type(self).RATE * Settings.UNIT  # names the class its module binds

def make():
    # A new class under the same name, with slots, as dataclass(slots=True) makes one
    # (networkx's Config makes several so; Python 3.10+); its attribute is set at run time.
    body = {k: v for k, v in vars(Settings).items() if k not in ("__dict__", "__weakref__")}
    cls = type("Settings", Settings.__bases__, {**body, "__slots__": ()})
    cls.RATE = int(os.environ.get("RATE", "1"))
    cls.COPIED = True  # one more attribute than the original's
    return cls()

SETTINGS = make()
PLAIN = Settings()
"""

CLASS_COPY_MAIN = """
import logging, sys
from checkpointing import checkpoint
import cfg

logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(message)s")

@checkpoint
def f(x):
    print("RAN f")
    return cfg.SETTINGS.scaled(x) + cfg.PLAIN.scaled(x)

print("RESULT", f(5))
"""


def test_a_copy_of_a_class_has_its_own_stored_analysis_and_its_own_attributes(project) -> None:
    """A class and a copy of it describe alike. Stored at one path, each analysis
    replaced the other in every process (networkx re-analysed its configuration classes
    on every run); read back, the copy's attribute slots read the original's namespace,
    so a change of the copy's attribute would not re-run."""
    project.write("cfg.py", CLASS_COPY_LIB)
    project.write("main.py", CLASS_COPY_MAIN)
    first = project.run(env={"RATE": "2"})
    assert first.ran == ["f"] and first.results == ["15"], first  # 5 * 2 + 5 * 1
    second = project.run(env={"RATE": "2"})
    assert second.ran == [] and second.results == ["15"], second
    assert "stored analysis" not in second.stderr, second.stderr  # read back, not stale
    third = project.run(env={"RATE": "3"})  # only the copy's attribute changed
    assert third.ran == ["f"] and third.results == ["20"], third
    fourth = project.run(env={"RATE": "3"})
    assert fourth.ran == [] and fourth.results == ["20"], fourth


LOCAL_IMPORT_MAIN = """
import os, sys
from checkpointing import checkpoint

if os.environ.get("LOAD") == "1":
    import wave  # loaded before the analysis in this run only

@checkpoint
def f(x):
    print("RAN f")
    if x < 0:  # never taken: the import runs only on this path
        import wave
        return wave.open
    return x + 1

print("RESULT", f(1))
print("RESULT", "wave" in sys.modules)
"""


def test_an_external_import_inside_a_function_is_not_imported_and_keys_alike(project) -> None:
    """The analysis names what a function imports from outside the project without
    importing it (networkx as project code: sympy, pandas, scipy, pytest, seconds), and
    the key is the same whether the library was loaded when the analysis was made."""
    project.write("main.py", LOCAL_IMPORT_MAIN)
    first = project.run(env={"LOAD": "0"})
    assert first.ran == ["f"] and first.results == ["2", "False"], first
    shutil.rmtree(project.root / ".checkpointing" / "analysis")
    second = project.run(env={"LOAD": "1"})  # analysed again, with wave loaded
    assert second.ran == [] and second.results == ["2", "True"], second
    shutil.rmtree(project.root / ".checkpointing" / "analysis")
    third = project.run(env={"LOAD": "0"})
    assert third.ran == [] and third.results == ["2", "False"], third
