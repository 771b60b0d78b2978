"""The analysis of a function is kept on disk and reused only while its sources match."""

from __future__ import annotations

from checkpointing.keyplan import ANALYSIS_FORMAT, read_plan_file

MAIN = """
import sys
from checkpointing import checkpoint
from proj.helpers import helper

@checkpoint
def f(x):
    print("RAN f")
    return helper(x)

print("RESULT", f(3))
print("ANALYSED", "checkpointing.depgraph" in sys.modules, "checkpointing.analysis.canon" in sys.modules,
      "networkx" in sys.modules)
"""
HELPERS = "SCALE = 2\n\ndef helper(x):\n    return x * SCALE\n"


def setup(project) -> None:
    project.write("proj/__init__.py", "")
    project.write("proj/main.py", MAIN)
    project.write("proj/helpers.py", HELPERS)


def analysed(run) -> str:
    return next(line for line in run.stdout.splitlines() if line.startswith("ANALYSED"))


def test_a_fresh_process_with_unchanged_code_does_not_analyse(project) -> None:
    setup(project)
    first = project.run("-m", "proj.main")
    assert first.ran == ["f"] and analysed(first) == "ANALYSED True True False"
    stored = list((project.root / ".checkpointing" / "analysis").glob("*.plan"))
    assert len(stored) == 1
    second = project.run("-m", "proj.main")
    assert second.ran == [] and second.results == ["6"]
    # Neither the analyzer (depgraph, canon: no parsing) nor networkx was imported.
    assert analysed(second) == "ANALYSED False False False", second


def test_a_changed_source_invalidates_the_stored_analysis(project) -> None:
    setup(project)
    project.run("-m", "proj.main")
    project.write("proj/helpers.py", HELPERS.replace("x * SCALE", "x * SCALE + 1"))
    second = project.run("-m", "proj.main")
    assert second.ran == ["f"] and second.results == ["7"]
    assert analysed(second) == "ANALYSED True True False"
    third = project.run("-m", "proj.main")
    assert third.ran == [] and analysed(third) == "ANALYSED False False False"


def test_global_values_are_still_read_from_a_stored_analysis(project) -> None:
    setup(project)
    project.run("-m", "proj.main")
    project.write("proj/helpers.py", HELPERS.replace("SCALE = 2", "SCALE = 5"))
    second = project.run("-m", "proj.main")
    assert second.ran == ["f"] and second.results == ["15"]


def test_a_damaged_stored_analysis_is_ignored_and_replaced(project) -> None:
    setup(project)
    project.run("-m", "proj.main")
    (stored,) = (project.root / ".checkpointing" / "analysis").glob("*.plan")
    stored.write_text('{"format": 1, "root": ')
    second = project.run("-m", "proj.main")
    assert second.ran == [] and second.results == ["6"] and second.stderr == ""
    assert analysed(second) == "ANALYSED True True False"
    assert project.run("-m", "proj.main").ran == []
    assert read_plan_file(str(stored))["format"] == ANALYSIS_FORMAT


def test_a_rebinding_at_run_time_is_seen_with_a_stored_analysis(project) -> None:
    setup(project)
    project.run("-m", "proj.main")
    project.write(
        "proj/main.py",
        MAIN.replace(
            'print("RESULT", f(3))',
            'print("RESULT", f(3))\nhelper = lambda x: x * 100\nprint("RESULT", f(3))',
        ),
    )
    run = project.run("-m", "proj.main")
    assert run.results == ["6", "300"], run
