"""``checkpointing why`` (without arguments) and ``graph`` answered from the stored
records, without importing the user's module (issue 13): a script that does work at
import and has no main guard must not run, and the answer must be right."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Dict

import pytest

pytestmark = pytest.mark.e2e

HELPERS = """
def scale(x):
    return x * 2
"""

SCRIPT = """
from checkpointing import checkpoint
from helpers import scale

RATE = 3

@checkpoint
def f(x):
    print("RAN f")
    return scale(x) + RATE

print("SIDE EFFECT")
print("RESULT", f(1))
"""


def cli(project, *args: str, env: Dict[str, str] = None) -> subprocess.CompletedProcess:
    full = dict(os.environ)
    full.pop("PYTHONHASHSEED", None)
    full["PYTHONDONTWRITEBYTECODE"] = "1"
    return subprocess.run(
        [sys.executable, "-m", "checkpointing", *args],
        cwd=project.root,
        env=full,
        capture_output=True,
        text=True,
        timeout=120,
    )


def quiet(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    """The command ran nothing of the user's script and did not import it."""
    assert "SIDE EFFECT" not in result.stdout  # what the script prints when it runs
    assert "RAN f" not in result.stdout
    assert "checkpointing: importing" not in result.stderr
    return result


def test_why_and_graph_answer_a_guardless_script_from_the_records(project) -> None:
    project.write("helpers.py", HELPERS)
    project.write("pipeline.py", SCRIPT)
    first = project.run("pipeline.py")
    assert "RESULT 5" in first.stdout and "RAN f" in first.stdout
    project.write("helpers.py", HELPERS.replace("x * 2", "x * 4"))
    second = project.run("pipeline.py")
    assert "RESULT 7" in second.stdout and "RAN f" in second.stdout  # 1 * 4 + 3, re-ran

    # Nothing changed since the last run: the code on disk is the code of the last entry.
    why = quiet(cli(project, "why", "pipeline:f"))
    assert why.returncode == 0, why.stderr
    assert "from the stored records" in why.stdout and "without importing pipeline" in why.stdout
    assert "2 recorded" in why.stdout
    assert "since the entry before it" in why.stdout and "helpers:scale changed" in why.stdout
    assert "unchanged on disk since the last run (2 files checked)" in why.stdout
    assert "pipeline:RATE" in why.stdout  # the value it reads, named as the module's
    assert "would re-run" not in why.stdout
    data = json.loads(quiet(cli(project, "why", "pipeline:f", "--json")).stdout)
    assert data["imported"] is False and data["would_rerun"] is False
    assert data["changed_files"] == [] and data["entries"] == 2
    assert [c["name"] for c in data["last_changes"]] == ["helpers:scale"]

    graph = quiet(cli(project, "graph", "pipeline:f"))
    assert graph.returncode == 0, graph.stderr
    lines = graph.stdout.splitlines()
    assert lines[0].startswith("function pipeline:f  (pipeline.py:6)")
    assert any("function helpers:scale  (helpers.py:1)" in line for line in lines)
    assert any("global pipeline:RATE" in line for line in lines)
    assert "from the stored analysis of the last run" in graph.stdout
    assert "pipeline was not imported" in graph.stdout
    # Other formats keep stdout to the format and say where it came from on stderr.
    mermaid = quiet(cli(project, "graph", "pipeline:f", "--format", "mermaid"))
    assert mermaid.stdout.startswith("flowchart") and "stored analysis" in mermaid.stderr
    as_json = json.loads(quiet(cli(project, "graph", "pipeline:f", "--json")).stdout)
    assert as_json["graph"]["source"] == "stored analysis"
    names = {node["id"] for node in as_json["nodes"]}
    assert {"pipeline:f", "helpers:scale", "pipeline:RATE"} <= names

    # An edit of a file the analysis covers: why names it, still without importing.
    project.write("helpers.py", HELPERS.replace("x * 2", "x * 5"))
    why = quiet(cli(project, "why", "pipeline:f"))
    assert why.returncode == 0, why.stderr
    assert "would re-run: helpers.py changed on disk since the last run" in why.stdout
    data = json.loads(quiet(cli(project, "why", "pipeline:f", "--json")).stdout)
    assert data["would_rerun"] is True and data["changed_files"] == ["helpers.py"]
    # The stored graph no longer describes the code: graph would have to import the
    # script, which it refuses without --import, saying why the records do not do.
    graph = quiet(cli(project, "graph", "pipeline:f"))
    assert graph.returncode == 2
    assert "--import" in graph.stderr and "helpers.py changed on disk" in graph.stderr
    stored_only = quiet(cli(project, "graph", "pipeline:f", "--stored"))
    assert stored_only.returncode == 1 and "out of date" in stored_only.stderr

    # And it was right: the next run re-runs f, with a fresh run's value.
    third = project.run("pipeline.py")
    assert "RAN f" in third.stdout and "RESULT 8" in third.stdout
    why = quiet(cli(project, "why", "pipeline:f"))
    assert "unchanged on disk since the last run" in why.stdout and "3 recorded" in why.stdout
    assert "deleted since" not in why.stdout
    assert cli(project, "clear", "__main__:f", "--yes").returncode == 0  # run as a script
    why = quiet(cli(project, "why", "pipeline:f"))
    assert "3 recorded; it was deleted since" in why.stdout


def test_why_with_arguments_or_import_still_imports(project) -> None:
    project.write("helpers.py", HELPERS)
    project.write("pipeline.py", SCRIPT)
    project.run("pipeline.py")
    with_args = cli(project, "why", "pipeline:f", "1")  # argument digests need the module
    assert with_args.returncode == 2 and "--import" in with_args.stderr
    assert "SIDE EFFECT" not in with_args.stdout
    forced = cli(project, "why", "pipeline:f", "--import")
    assert "importing pipeline" in forced.stderr and "SIDE EFFECT" in forced.stdout


def test_a_guarded_module_in_a_package(project) -> None:
    """A function of a package module: why answers from the records without importing
    the package (whose __init__ does work); graph imports a quiet module as before."""
    project.write("proj/__init__.py", 'print("SIDE EFFECT")\n')
    project.write("proj/helpers.py", HELPERS)
    project.write(
        "proj/main.py",
        """
        from checkpointing import checkpoint
        from proj.helpers import scale

        @checkpoint
        def train(x):
            return scale(x)
        """,
    )
    project.write(
        "run.py",
        """
        from proj.main import train
        print("RESULT", train(2))
        """,
    )
    assert "RESULT 4" in project.run("run.py").stdout
    why = quiet(cli(project, "why", "proj.main:train"))
    assert why.returncode == 0, why.stderr
    assert "1 recorded" in why.stdout and "unchanged on disk" in why.stdout
    assert "since the entry before it" not in why.stdout  # one entry: nothing to compare
    project.write("proj/helpers.py", HELPERS.replace("x * 2", "x * 3"))
    why = quiet(cli(project, "why", "proj.main:train"))
    assert "would re-run: proj/helpers.py changed on disk" in why.stdout
    # A module that imports quietly is imported: the full graph, from the code now.
    graph = cli(project, "graph", "proj.main:train")
    assert graph.returncode == 0, graph.stderr
    assert "importing proj.main" in graph.stderr and "stored analysis" not in graph.stdout
    stored = quiet(cli(project, "graph", "proj.main:train", "--stored"))
    assert stored.returncode == 1 and "proj/helpers.py changed" in stored.stderr
    assert "RESULT 6" in project.run("run.py").stdout
    stored = quiet(cli(project, "graph", "proj.main:train", "--stored"))
    assert stored.returncode == 0 and "function proj.helpers:scale" in stored.stdout


def test_why_without_records_imports(project) -> None:
    """No history in the cache folder: nothing to answer from, so it imports (and
    refuses a guard-less script, as before)."""
    project.write("helpers.py", HELPERS)
    project.write("pipeline.py", SCRIPT)
    refused = cli(project, "why", "pipeline:f")
    assert refused.returncode == 2 and "--import" in refused.stderr
    assert "SIDE EFFECT" not in refused.stdout


def test_another_scripts_records_are_not_taken_for_its_own(project) -> None:
    """Every script names its functions ``__main__:f``: why answers for ``other:f``
    only from the records of other.py, never from pipeline.py's."""
    project.write("helpers.py", HELPERS)
    project.write("pipeline.py", SCRIPT)
    project.run("pipeline.py")
    project.write("helpers.py", HELPERS.replace("x * 2", "x * 4"))
    project.run("pipeline.py")
    project.write(
        "other.py",
        """
        from checkpointing import checkpoint

        @checkpoint
        def f(x):
            return x

        print("SIDE EFFECT", f(1))
        """,
    )
    project.run("other.py")
    why = quiet(cli(project, "why", "other:f"))
    assert why.returncode == 0, why.stderr
    assert "1 recorded" in why.stdout and "(1 files checked)" in why.stdout
    graph = quiet(cli(project, "graph", "other:f"))
    assert graph.stdout.startswith("function other:f  (other.py:3)")
    assert "helpers" not in graph.stdout
    why = quiet(cli(project, "why", "pipeline:f"))
    assert "2 recorded" in why.stdout and "helpers:scale changed" in why.stdout


def test_stored_answers_show_the_blind_spots(project) -> None:
    project.write(
        "job.py",
        """
        import importlib
        from checkpointing import checkpoint

        @checkpoint
        def f(name):
            return importlib.import_module(name).__name__

        print("SIDE EFFECT", f("json"))
        """,
    )
    project.run("job.py")
    why = quiet(cli(project, "why", "job:f"))
    assert "not tracked (blind spots): job.py:6 importlib.import_module()" in why.stdout
    graph = quiet(cli(project, "graph", "job:f"))
    assert "! blind spot, line 6: importlib.import_module()" in graph.stdout
    assert "from the stored analysis" in graph.stdout
