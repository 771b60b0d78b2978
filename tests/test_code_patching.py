"""The key follows the code object that will run: in-place patches and %autoreload.

``f.__code__ = g.__code__`` keeps the function object and changes what runs; IPython's
autoreload does the same to live functions after a module file is edited. A changed
``__code__`` is a changed definition (issue 9, section 3).
"""

from __future__ import annotations

import pytest

PATCH = """
import sys
from checkpointing import checkpoint, defaults
defaults["runtime.safety_net"] = False

def helper(x):
    return x + 1

def replacement(y):
    return y + 100

def root_replacement(x):
    print("RAN f")
    return -x

@checkpoint
def f(x):
    print("RAN f")
    return helper(x)

print("RESULT", f(1))
if "helper" in sys.argv:
    helper.__code__ = replacement.__code__
if "root" in sys.argv:
    f.__wrapped__.__code__ = root_replacement.__code__
print("RESULT", f(1))
"""


def test_patching_a_helpers_code_reruns(project) -> None:
    project.write("main.py", PATCH)
    first = project.run("main.py")
    assert first.ran == ["f"] and first.results == ["2", "2"], first
    # A new process (stored analysis): the patch after the first call is seen.
    second = project.run("main.py", "helper")
    assert second.ran == ["f"] and second.results == ["2", "101"], second
    third = project.run("main.py", "helper")
    assert third.ran == [] and third.results == ["2", "101"], third


def test_patching_the_checkpointed_functions_code_reruns(project) -> None:
    project.write("main.py", PATCH)
    project.run("main.py")
    second = project.run("main.py", "root")
    assert second.ran == ["f"] and second.results == ["2", "-1"], second
    assert project.run("main.py", "root").ran == []


METHOD = """
import sys
from checkpointing import checkpoint

class Scaler:
    def apply(self, x):
        return x * 2

def tripled(self, x):
    return x * 3

@checkpoint
def f(x):
    print("RAN f")
    return Scaler().apply(x)

print("RESULT", f(5))
if "patch" in sys.argv:
    Scaler.apply.__code__ = tripled.__code__
print("RESULT", f(5))
"""


def test_patching_a_methods_code_reruns(project) -> None:
    project.write("main.py", METHOD)
    assert project.run("main.py").results == ["10", "10"]
    second = project.run("main.py", "patch")
    assert second.ran == ["f"] and second.results == ["10", "15"], second


HELPERS = """
def scale(x):
    return x * 2
"""

# An IPython session: the module is edited between two cells, autoreload swaps the
# code of the live function, and the checkpointed function defined in a cell re-runs.
SESSION = """
import sys, time, os
from IPython.testing.globalipapp import start_ipython
shell = start_ipython()
shell.run_line_magic("load_ext", "autoreload")
shell.run_line_magic("autoreload", "2")

def cell(code):
    result = shell.run_cell(code)
    if not result.success:
        raise SystemExit(f"cell failed: {result.error_in_exec or result.error_before_exec}")

cell('''
from checkpointing import checkpoint, defaults
defaults["runtime.safety_net"] = False
from helpers import scale
import helpers

@checkpoint
def f(x):
    print("RAN f")
    return scale(x) + 1
''')
cell('print("RESULT", f(3))')
if "edit" in sys.argv:
    path = os.path.join(os.getcwd(), "helpers.py")
    with open(path, "w") as handle:
        handle.write("def scale(x):\\n    return x * 10\\n")
    stamp = os.stat(path).st_mtime + 10
    os.utime(path, (stamp, stamp))
    cell('print("CODE", scale.__code__.co_consts)')  # autoreload runs before this cell
cell('print("RESULT", f(3))')
"""


def test_autoreload_swapping_a_helpers_code_reruns(project) -> None:
    pytest.importorskip("IPython")
    project.write("helpers.py", HELPERS)
    project.write("session.py", SESSION)
    first = project.run("session.py")
    assert first.ran == ["f"] and first.results == ["7", "7"], first
    second = project.run("session.py", "edit")
    assert "10" in second.stdout.split("CODE", 1)[1].splitlines()[0], second.stdout
    # Same session: the call after the edit re-runs with the new code.
    assert second.ran == ["f"] and second.results == ["7", "31"], second
    third = project.run("session.py")
    assert third.ran == [] and third.results == ["31", "31"], third
