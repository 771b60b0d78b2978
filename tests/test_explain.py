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
    return [
        line[len(prefix) + 1 :] for line in run.stdout.splitlines() if line.startswith(prefix + " ")
    ]


def test_first_call_then_hit(project) -> None:
    setup(project)
    first = project.run("-m", "proj.main")
    assert lines(first, "EXPLAIN")[0] == "proj.main:train runs: first call"
    assert re.fullmatch(
        r"proj\.main:train: answered from the cache \(entry [0-9a-f]{32}\)",
        lines(first, "EXPLAIN")[1],
    )
    assert lines(first, "LOG") == []  # a first call is not news
    second = project.run("-m", "proj.main")
    assert second.ran == [] and lines(second, "LOG") == []


def test_edited_helper_is_named_with_file_and_line(project) -> None:
    setup(project)
    project.run("-m", "proj.main")
    project.write("proj/features.py", "# features\n\n" + FEATURES.replace("x * 2", "x * 3"))
    run = project.run("-m", "proj.main")
    assert run.ran == ["train"]
    expected = re.compile(
        r"proj\.main:train re-runs: proj\.features:scale changed "
        r"\(proj[/\\]features\.py:3\)"
    )
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


# -- A method of an argument's class changed ----------------------------------------------

VEC = """
import math

from proj.util import square


class Vec:
    def __init__(self, x, y):
        self.x, self.y = x, y

    def norm(self):
        return math.sqrt(square(self.x) + square(self.y))

    def scaled(self, k):
        return Vec(self.x * k, self.y * k)
"""
UTIL = "def square(v):\n    return v * v\n"
LENGTH = """
import logging, sys
logging.basicConfig(level=logging.INFO, format="LOG %(message)s", stream=sys.stdout)
import checkpointing
from checkpointing import checkpoint
from proj.vec import Vec


@checkpoint
def length(v):
    print("RAN length")
    return v.norm()


v = Vec(3, Y_COORD)
print("EXPLAIN", checkpointing.explain(length, v))
print("RESULT", length(v))
"""


def setup_vec(project, x: str = "4") -> None:
    project.write("proj/__init__.py", "")
    project.write("proj/vec.py", VEC)
    project.write("proj/util.py", UTIL)
    project.write("proj/length.py", LENGTH.replace("Y_COORD", x))


def test_changed_method_of_an_argument_class_is_named(project) -> None:
    """The class of an argument is in the key by its code; a miss names the method
    (or the helper it reaches) that changed, not "new argument values"."""
    setup_vec(project)
    assert project.run("-m", "proj.length").results == ["5.0"]
    project.write("proj/vec.py", VEC.replace("square(self.y))", "square(self.y)) * 2"))
    run = project.run("-m", "proj.length")
    assert run.ran == ["length"] and run.results == ["10.0"]
    expected = re.compile(
        r"proj\.length:length re-runs: proj\.vec:Vec\.norm changed "
        r"\(proj[/\\]vec\.py:10\)"
    )
    assert expected.fullmatch(lines(run, "EXPLAIN")[0]), run.stdout
    assert [line for line in lines(run, "LOG") if expected.fullmatch(line)], run.stdout
    # A helper of the method, in another module.
    project.write("proj/util.py", UTIL.replace("v * v", "v ** 2"))
    run = project.run("-m", "proj.length")
    assert run.ran == ["length"] and run.results == ["10.0"]
    expected = re.compile(
        r"proj\.length:length re-runs: proj\.util:square changed "
        r"\(proj[/\\]util\.py:1\)"
    )
    assert expected.fullmatch(lines(run, "EXPLAIN")[0]), run.stdout


def test_new_argument_value_with_the_same_class_code(project) -> None:
    setup_vec(project)
    project.run("-m", "proj.length")
    project.write("proj/length.py", LENGTH.replace("Y_COORD", "5"))
    run = project.run("-m", "proj.length")
    assert run.ran == ["length"]
    assert lines(run, "EXPLAIN")[0] == "proj.length:length re-runs: new argument values (v)"


def test_changed_method_and_new_value_say_both(project) -> None:
    setup_vec(project)
    project.run("-m", "proj.length")
    project.write("proj/vec.py", VEC.replace("return Vec(self.x * k", "return Vec(self.x * k * 1"))
    project.write("proj/length.py", LENGTH.replace("Y_COORD", "5"))
    run = project.run("-m", "proj.length")
    assert run.ran == ["length"]
    assert lines(run, "EXPLAIN")[0] == (
        "proj.length:length re-runs: proj.vec:Vec.scaled "
        "changed (proj/vec.py:13); new argument values (v)"
    )


GRAPH = """
import checkpointing
from checkpointing import checkpoint
from proj.vec import Vec


@checkpoint
def length(v):
    return v.norm()


v = Vec(3, 4)
print(checkpointing.graph(length, v=v))  # marks what changed since the last entry
length(v)
print("MERMAID", "class of argument v" in checkpointing.graph(length, v).to_mermaid())
print("PLAIN", "Vec" in str(checkpointing.graph(length)))
"""


def test_graph_shows_the_classes_of_the_arguments_of_a_call(project) -> None:
    """graph(f, *args) adds each project class among the arguments, its methods and
    what they reach; after an edit, the changed method is marked."""
    setup_vec(project)
    project.write("proj/graph.py", GRAPH)
    first = project.run("-m", "proj.graph").stdout
    assert "class proj.vec:Vec  (proj/vec.py:6)  [class of argument v]" in first, first
    assert "method proj.vec:Vec.norm  (proj/vec.py:10)\n" in first, first
    assert "function proj.util:square  (proj/util.py:1)" in first, first
    assert "MERMAID True" in first and "PLAIN False" in first, first
    assert "changed" not in first.replace("* changed since", "")
    project.write("proj/vec.py", VEC.replace("square(self.y))", "square(self.y)) * 2"))
    second = project.run("-m", "proj.graph").stdout
    assert "method proj.vec:Vec.norm  (proj/vec.py:10)  * changed" in second, second
    assert "method proj.vec:Vec.scaled  (proj/vec.py:13)\n" in second, second


def test_graph_rejects_arguments_that_do_not_fit(in_tmp) -> None:
    import pytest

    import checkpointing

    def f(x):
        return x

    with pytest.raises(TypeError, match=r"the arguments do not fit its signature"):
        checkpointing.graph(f, 1, 2)
