"""Where the analyzer cannot see, it says so once, and the escape hatches work."""

from __future__ import annotations

import re

import pytest

OPS = """
def double(x):
    return x * 2

def square(x):
    return x * x
"""

# Constructs the analysis cannot resolve. (``getattr(ops, name)`` on a project module
# and ``import_module`` of a constant or a project global are followed: test_plugins.py.)
DYNAMIC = {
    "getattr": ("getattr([ops][0], name)(x)", "getattr() with a computed attribute name"),
    "eval": ("eval('ops.' + name)(x)", "eval() runs code"),
    "globals": ("globals()['ops'].double(x)", "globals() reads module globals"),
    "import_module": (
        "importlib.import_module(name.replace('double', 'proj.ops')).double(x)",
        "importlib.import_module() imports a module chosen at run time",
    ),
}


def write(project, body: str, decorator: str = "@checkpoint") -> None:
    # The static analysis alone: the run-time safety net, which catches these on
    # Python 3.12+, is tested in test_runtime.py.
    project.write("proj/__init__.py", "")
    project.write("proj/ops.py", OPS)
    project.write(
        "proj/main.py",
        f"""
import importlib
from checkpointing import checkpoint, defaults
from proj import ops
defaults["runtime.safety_net"] = False

{decorator}
def f(x, name):
    print("RAN f")
    return {body}

print("RESULT", f(3, "double"))
print("RESULT", f(4, "double"))
""",
    )


@pytest.mark.parametrize("construct", sorted(DYNAMIC))
def test_dynamic_reach_warns_once_with_file_line_and_remedy(project, construct) -> None:
    body, what = DYNAMIC[construct]
    write(project, body)
    run = project.run("-m", "proj.main")
    warnings = [line for line in run.stderr.splitlines() if "BlindSpotWarning" in line]
    assert len(warnings) == 1, run.stderr
    line = warnings[0]
    assert re.search(r"proj[/\\]main\.py:9: BlindSpotWarning: ", line), line
    assert what in line and "proj.main:f" in line, line
    assert "depends_on=[...]" in line and "ignore=[...]" in line, line


def test_without_depends_on_a_dynamic_helper_edit_is_missed_and_warned(project) -> None:
    write(project, DYNAMIC["getattr"][0])
    first = project.run("-m", "proj.main")
    assert first.stderr.count("BlindSpotWarning") == 1, first.stderr
    project.write("proj/ops.py", OPS.replace("x * 2", "x * 20"))
    second = project.run("-m", "proj.main")
    # The blind spot is real (this is why it is announced): the stale value is served.
    assert second.ran == [] and second.results == ["6", "8"]
    # Said when the analysis was made, not again by a run reusing the stored analysis;
    # graph() still shows it.
    assert "BlindSpotWarning" not in second.stderr, second.stderr
    project.write(
        "show.py",
        """
import warnings
warnings.simplefilter("ignore")
import checkpointing
from proj.main import f
print(checkpointing.graph(f))
""",
    )
    shown = project.run("show.py")
    assert "! blind spot, line 9: getattr() with a computed attribute name" in shown.stdout, (
        shown.stdout
    )


def test_depends_on_a_module_covers_the_blind_spot(project) -> None:
    write(project, DYNAMIC["getattr"][0], decorator="@checkpoint(depends_on=[ops])")
    first = project.run("-m", "proj.main")
    assert first.ran == ["f", "f"] and "BlindSpotWarning" not in first.stderr, first
    assert project.run("-m", "proj.main").ran == []
    project.write("proj/ops.py", OPS.replace("x * 2", "x * 20"))
    third = project.run("-m", "proj.main")
    assert third.ran == ["f", "f"] and third.results == ["60", "80"], third


def test_depends_on_functions_and_values(project) -> None:
    project.write("proj/__init__.py", "")
    project.write("proj/ops.py", OPS + "\nTABLE = {'double': double}\nLIMIT = 3\n")
    project.write(
        "proj/main.py",
        """
import sys
from checkpointing import checkpoint
from proj import ops

@checkpoint(depends_on=[ops.double, ops.LIMIT])
def f(x):
    print("RAN f")
    return sys.modules["proj.ops"].TABLE["double"](x)

print("RESULT", f(3))
""",
    )
    assert project.run("-m", "proj.main").ran == ["f"]
    assert project.run("-m", "proj.main").ran == []
    project.write(
        "proj/ops.py", OPS.replace("x * 2", "x * 5") + "\nTABLE = {'double': double}\nLIMIT = 3\n"
    )
    assert project.run("-m", "proj.main").results == ["15"]
    project.write(
        "proj/ops.py", OPS.replace("x * 2", "x * 5") + "\nTABLE = {'double': double}\nLIMIT = 4\n"
    )
    assert project.run("-m", "proj.main").ran == ["f"]


def test_a_user_function_named_eval_is_followed_not_warned(project) -> None:
    project.write("proj/__init__.py", "")
    project.write(
        "proj/main.py",
        """
from checkpointing import checkpoint

def eval(x):
    return x + 1

@checkpoint
def f(x):
    print("RAN f")
    return eval(x)

print("RESULT", f(3))
""",
    )
    run = project.run("-m", "proj.main")
    assert "BlindSpotWarning" not in run.stderr and run.results == ["4"], run
    project.write(
        "proj/main.py", (project.root / "proj/main.py").read_text().replace("x + 1", "x + 2")
    )
    assert project.run("-m", "proj.main").ran == ["f"]


def test_warnings_can_be_silenced(project) -> None:
    write(project, DYNAMIC["eval"][0])
    text = (project.root / "proj/main.py").read_text()
    project.write(
        "proj/main.py",
        text.replace(
            "from proj import ops",
            "from proj import ops\ndefaults['analysis.warn_blind_spots'] = False",
        ),
    )
    run = project.run("-m", "proj.main")
    assert "BlindSpotWarning" not in run.stderr, run.stderr
