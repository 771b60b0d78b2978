"""Why a call re-ran: a log line on each miss and checkpointing.explain()."""

from __future__ import annotations

import re

MAIN = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="LOG %(message)s", stream=sys.stdout)
import checkpointing
from checkpointing import checkpoint
from proj.features import scale
from proj import settings

@checkpoint
def train(data, lr=0.1):
    print("RAN train")
    return [scale(x) * lr * settings.RATE for x in data]

print("EXPLAIN", checkpointing.explain(train, [1, 2], lr=LR))
print("RESULT", train([1, 2], lr=LR))
print("EXPLAIN", checkpointing.explain(train, [1, 2], lr=LR))
"""
FEATURES = "def scale(x):\n    return x * 2\n"


def setup(project, lr: str = "0.1") -> None:
    project.write("proj/__init__.py", "")
    project.write("proj/main.py", MAIN.replace("LR", lr))
    project.write("proj/features.py", FEATURES)
    project.write("proj/settings.py", "RATE = 1\n")


def lines(run, prefix: str) -> list:
    return [line[len(prefix) + 1:] for line in run.stdout.splitlines()
            if line.startswith(prefix + " ")]


def test_first_call_then_hit(project) -> None:
    setup(project)
    first = project.run("-m", "proj.main")
    assert lines(first, "EXPLAIN")[0] == "proj.main:train runs: first call"
    assert re.fullmatch(r"proj\.main:train: answered from the cache \(entry [0-9a-f]{32}\)",
                        lines(first, "EXPLAIN")[1])
    assert lines(first, "LOG") == []  # a first call is not news
    second = project.run("-m", "proj.main")
    assert second.ran == [] and lines(second, "LOG") == []


def test_edited_helper_is_named_with_file_and_line(project) -> None:
    setup(project)
    project.run("-m", "proj.main")
    project.write("proj/features.py", "# features\n\n" + FEATURES.replace("x * 2", "x * 3"))
    run = project.run("-m", "proj.main")
    assert run.ran == ["train"]
    expected = re.compile(r"proj\.main:train re-runs: proj\.features:scale changed "
                          r"\(proj[/\\]features\.py:3\)")
    assert expected.fullmatch(lines(run, "EXPLAIN")[0]), run.stdout
    assert [line for line in lines(run, "LOG") if expected.fullmatch(line)], run.stdout


def test_changed_global_and_changed_argument(project) -> None:
    setup(project)
    project.run("-m", "proj.main")
    project.write("proj/settings.py", "RATE = 2\n")
    run = project.run("-m", "proj.main")
    assert lines(run, "LOG") == ["proj.main:train re-runs: global proj.settings:RATE changed"]
    setup(project, lr="0.5")
    project.write("proj/settings.py", "RATE = 2\n")
    run = project.run("-m", "proj.main")
    assert lines(run, "LOG") == ["proj.main:train re-runs: new argument values (lr)"]


def test_nearest_entry_is_the_one_with_fewest_differences(project) -> None:
    setup(project, lr="0.1")
    project.run("-m", "proj.main")
    setup(project, lr="0.5")
    project.run("-m", "proj.main")
    # Back to lr=0.1 with an edited helper: the nearest entry is the lr=0.1 one.
    setup(project, lr="0.1")
    project.write("proj/features.py", FEATURES.replace("x * 2", "x + x + 0"))
    run = project.run("-m", "proj.main")
    (log,) = lines(run, "LOG")
    assert log.startswith("proj.main:train re-runs: proj.features:scale changed"), log
    assert "argument" not in log


def test_explain_returns_structured_data(in_tmp) -> None:
    import checkpointing
    from checkpointing import checkpoint

    @checkpoint
    def add(a, b):
        return a + b

    first = checkpointing.explain(add, 1, 2)
    assert first.first_call and not first.hit and first.changes == []
    add(1, 2)
    hit = checkpointing.explain(add, 1, 2)
    assert hit.hit and hit.key == add.key(1, 2)
    other = checkpointing.explain(add, 1, 3)
    assert not other.hit and [c.kind for c in other.changes] == ["argument"]
    assert other.changes[0].name == "b" and other.nearest_key == add.key(1, 2)
    data = other.to_dict()
    assert data["changes"] == [{"kind": "argument", "name": "b", "where": None}]
    assert "new argument values (b)" in data["summary"]


def test_explain_rejects_undecorated_functions() -> None:
    import pytest

    import checkpointing

    with pytest.raises(TypeError, match="decorated with @checkpoint"):
        checkpointing.explain(len, [])
