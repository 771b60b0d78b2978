"""One warning where one is due (issue 9, section 4), counted exactly.

At most one BlindSpotWarning per checkpointed function per process, naming each root
cause at its file and line; the definitions the run-time safety net (3.12+) finds are
listed in that same warning; runs that reuse the stored analysis say nothing again.
"""

from __future__ import annotations

import sys

import pytest

HELPERS = """
def helper(x, name):
    return eval(name)(x)
"""

MAIN = """
from checkpointing import checkpoint, defaults
from proj.helpers import helper
defaults["runtime.safety_net"] = False

@checkpoint
def f(x, name):
    print("RAN f")
    return helper(x, name) + globals()["OFFSET"]

OFFSET = 1
for i in range(3):
    print("RESULT", f(i, "abs"))
"""


def count(run) -> int:
    return run.stderr.count("BlindSpotWarning")


def test_several_blind_spots_make_one_warning_naming_each_cause(project) -> None:
    project.write("proj/__init__.py", "")
    project.write("proj/helpers.py", HELPERS)
    project.write("proj/main.py", MAIN)
    first = project.run("-m", "proj.main")
    assert first.ran == ["f"] * 3 and count(first) == 1, first.stderr
    text = first.stderr.replace("\\", "/")
    assert "proj/main.py:8 globals() reads module globals by run-time name" in text, text
    assert (
        "proj/helpers.py:2 eval() runs code the analyzer cannot see (in "
        "proj.helpers:helper)" in text
    ), text
    # Later processes reuse the stored analysis: nothing new to say.
    second = project.run("-m", "proj.main")
    assert second.ran == [] and count(second) == 0, second.stderr
    # A new analysis (the helper changed) says it once more.
    project.write("proj/helpers.py", HELPERS.replace("(x)", "(x) * 1"))
    third = project.run("-m", "proj.main")
    assert third.ran == ["f"] * 3 and count(third) == 1, third.stderr


CORE = """
import importlib

def load(names):
    return [importlib.import_module("proj.ext." + name).make() for name in names]
"""

EXTENSION = """
class {name}Processor:
    def run(self, text):
        return text.{method}()

    def helper(self):
        return 1


class {name}Pattern:
    def match(self, text):
        return text


def make():
    return {name}Processor()
"""

MARKDOWN_LIKE = """
from checkpointing import checkpoint
from proj.core import load

@checkpoint
def render(text, names):
    print("RAN render")
    for processor in load(names):
        text = processor.run(text)
    return text

print("RESULT", render("Abc", ["upper", "swap"]))
print("RESULT", render("Xyz", ["upper", "swap"]))
print("RESULT", render("Xyz", ["swap"]))
"""


def _markdown_like(project) -> None:
    project.write("proj/__init__.py", "")
    project.write("proj/core.py", CORE)
    project.write("proj/ext/__init__.py", "")
    project.write("proj/ext/upper.py", EXTENSION.format(name="Upper", method="upper"))
    project.write("proj/ext/swap.py", EXTENSION.format(name="Swap", method="swapcase"))
    project.write("proj/main.py", MARKDOWN_LIKE)


@pytest.mark.skipif(
    sys.version_info < (3, 12),
    reason="the safety net's findings need "
    "sys.monitoring (3.12+); .ci/run runs this on Python 3.13",
)
def test_plugins_found_at_run_time_join_the_one_warning(project) -> None:
    _markdown_like(project)
    first = project.run("-m", "proj.main")
    assert first.ran == ["render"] * 3 and count(first) == 1, first.stderr
    text = first.stderr.replace("\\", "/")
    assert (
        "proj/core.py:4 importlib.import_module() imports a module chosen at run "
        "time (in proj.core:load)" in text
    ), text
    assert "checkpoint(depends_on=[proj.ext.swap, proj.ext.upper])" in text, text
    # Module bodies, classes, functions and methods that ran: all listed, once.
    assert "ran 10 definitions that the static analysis did not see" in text, text
    for name in (
        "proj.ext.upper:make",
        "proj.ext.upper:UpperProcessor.run",
        "proj.ext.swap:SwapProcessor.run",
        "proj.ext.swap:SwapPattern",
    ):
        assert name in text, text
    # The entries depend on what ran: editing a plugin re-runs the calls that used it.
    project.write("proj/ext/upper.py", EXTENSION.format(name="Upper", method="lower"))
    second = project.run("-m", "proj.main")
    assert second.ran == ["render"] * 2 and second.results == ["ABC", "XYZ", "xYZ"], second
    # The stored analysis is reused (no static warning again); the misses' safety net
    # says once what it found, naming the root cause the analysis recorded.
    assert count(second) == 1, second.stderr
    assert (
        "(the root cause: proj/core.py:4 importlib.import_module() imports a module "
        "chosen at run time)" in second.stderr.replace("\\", "/")
    ), second.stderr
    third = project.run("-m", "proj.main")
    assert third.ran == [] and count(third) == 0, third.stderr


def test_without_the_safety_net_the_one_static_warning_names_the_fix(project) -> None:
    _markdown_like(project)
    text = (project.root / "proj/main.py").read_text()
    project.write(
        "proj/main.py",
        "from checkpointing import defaults\ndefaults['runtime.safety_net'] = False\n" + text,
    )
    first = project.run("-m", "proj.main")
    assert count(first) == 1, first.stderr
    assert "checkpoint(depends_on=[proj.ext.swap, proj.ext.upper])" in first.stderr
    assert count(project.run("-m", "proj.main")) == 0


def test_why_and_graph_show_blind_spots_of_a_stored_analysis(project) -> None:
    project.write("proj/__init__.py", "")
    project.write("proj/helpers.py", HELPERS)
    project.write("proj/main.py", MAIN)
    project.write("run.py", "import proj.main\n")
    assert count(project.run("run.py")) == 1
    project.write(
        "show.py",
        """
import warnings
warnings.simplefilter("error")  # no warning may be issued here
import checkpointing
from proj.main import f
print(checkpointing.explain(f, 0, "abs"))
print(checkpointing.graph(f))
""",
    )
    shown = project.run("show.py")
    text = shown.stdout.replace("\\", "/")
    assert "not tracked (blind spots): proj/main.py:8 globals() reads module globals" in text, text
    assert "proj/helpers.py:2 eval() runs code" in text, text
    assert "! blind spot, line 2: eval() runs code" in text, text
