"""Run-time tracking: input files, side effects, the safety net, library versions.

Real programs run twice in subprocesses, with a data file or a helper edited between.
"""

from __future__ import annotations

import os
import sys
import textwrap

import pytest

READER = """
import sys
from checkpointing import checkpoint
from proj.loader import load

@checkpoint
def f(path):
    print("RAN f")
    return load(path).upper()

print("RESULT", f("data/input.txt"))
"""
LOADER = "def load(path):\n    with open(path) as handle:\n        return handle.read().strip()\n"


def setup_reader(project, main: str = READER) -> None:
    project.write("proj/__init__.py", "")
    project.write("proj/main.py", main)
    project.write("proj/loader.py", LOADER)
    project.write("data/input.txt", "hello\n")


def test_an_edited_input_file_re_runs_and_is_named(project) -> None:
    setup_reader(project)
    assert project.run("-m", "proj.main").results == ["HELLO"]
    assert project.run("-m", "proj.main").ran == []
    project.write("data/input.txt", "world\n")
    run = project.run("-m", "proj.main", env={"CKPT_LOG": "1"})
    assert run.ran == ["f"] and run.results == ["WORLD"], run
    assert project.run("-m", "proj.main").ran == []


def test_the_why_line_names_the_file(project) -> None:
    main = (
        "import logging, sys\nlogging.basicConfig(level=logging.INFO, stream=sys.stdout, "
        "format='LOG %(message)s')\n" + READER
    )
    setup_reader(project, main)
    project.run("-m", "proj.main")
    project.write("data/input.txt", "world\n")
    run = project.run("-m", "proj.main")
    logs = [line for line in run.stdout.splitlines() if line.startswith("LOG")]
    assert logs == [
        f"LOG proj.main:f re-runs: input file {os.path.join('data', 'input.txt')} changed"
    ], run.stdout


def test_same_content_written_again_is_still_a_hit(project) -> None:
    setup_reader(project)
    project.run("-m", "proj.main")
    path = project.root / "data" / "input.txt"
    path.write_text("hello\n")
    os.utime(path, (path.stat().st_atime + 100, path.stat().st_mtime + 100))
    assert project.run("-m", "proj.main").ran == []


def test_a_deleted_input_file_re_runs(project) -> None:
    main = READER.replace(
        "return load(path).upper()",
        'import os\n    return load(path).upper() if os.path.exists(path) else "GONE"',
    )
    setup_reader(project, main)
    project.run("-m", "proj.main")
    (project.root / "data" / "input.txt").unlink()
    run = project.run("-m", "proj.main")
    assert run.ran == ["f"] and run.results == ["GONE"]


def test_files_read_by_numpy_and_pandas_loaders(project) -> None:
    project.write("proj/__init__.py", "")
    project.write(
        "proj/main.py",
        """
        import numpy as np
        import pandas as pd
        from checkpointing import checkpoint

        @checkpoint
        def f():
            print("RAN f")
            return float(pd.read_csv("data/t.csv")["x"].sum() + np.load("data/a.npy").sum())

        print("RESULT", f())
        """,
    )
    import numpy as np

    project.write("data/t.csv", "x\n1\n2\n")
    (project.root / "data").mkdir(exist_ok=True)
    np.save(project.root / "data" / "a.npy", np.arange(3))
    assert project.run("-m", "proj.main").results == ["6.0"]
    assert project.run("-m", "proj.main").ran == []
    project.write("data/t.csv", "x\n1\n5\n")
    assert project.run("-m", "proj.main").results == ["9.0"]
    np.save(project.root / "data" / "a.npy", np.arange(4))
    assert project.run("-m", "proj.main").results == ["12.0"]


def test_nested_functions_each_depend_on_their_files(project) -> None:
    project.write("proj/__init__.py", "")
    project.write(
        "proj/main.py",
        """
        from checkpointing import checkpoint

        @checkpoint
        def inner():
            print("RAN inner")
            with open("data/inner.txt") as handle:
                return handle.read().strip()

        @checkpoint
        def outer():
            print("RAN outer")
            with open("data/outer.txt") as handle:
                return handle.read().strip() + inner()

        print("RESULT", outer())
        """,
    )
    project.write("data/inner.txt", "a\n")
    project.write("data/outer.txt", "b\n")
    assert project.run("-m", "proj.main").ran == ["outer", "inner"]
    assert project.run("-m", "proj.main").ran == []
    project.write("data/inner.txt", "c\n")
    run = project.run("-m", "proj.main")
    # outer's result contains inner's: both re-run, though outer read no inner.txt itself.
    assert run.ran == ["outer", "inner"] and run.results == ["bc"], run
    project.write("data/outer.txt", "d\n")
    run = project.run("-m", "proj.main")
    assert run.ran == ["outer"] and run.results == ["dc"], run


def test_track_files_can_be_turned_off(project) -> None:
    setup_reader(project, READER.replace("@checkpoint", "@checkpoint(track_files=False)"))
    project.run("-m", "proj.main")
    project.write("data/input.txt", "world\n")
    run = project.run("-m", "proj.main")
    assert run.ran == [] and run.results == ["HELLO"]  # as asked: not tracked
    setup_reader(
        project,
        "from checkpointing import defaults\ndefaults['runtime.track_files'] = False\n" + READER,
    )
    project.run("-m", "proj.main")
    project.write("data/input.txt", "again\n")
    assert project.run("-m", "proj.main").ran == []


def test_writing_files_warns_once_unless_allowed(project) -> None:
    project.write("proj/__init__.py", "")
    main = """
        import os
        from checkpointing import checkpoint

        @checkpoint
        def f(x):
            print("RAN f")
            os.makedirs("out", exist_ok=True)
            with open("out/report.txt", "w") as handle:
                handle.write(str(x))
            return x

        print("RESULT", f(1))
        print("RESULT", f(2))
        """
    project.write("proj/main.py", main)
    run = project.run("-m", "proj.main")
    warnings = [line for line in run.stderr.splitlines() if "SideEffectWarning" in line]
    assert len(warnings) == 1, run.stderr
    assert os.path.join("out", "report.txt") in warnings[0]
    assert "allow_side_effects=True" in warnings[0] and "Return the data" in warnings[0]
    project.write(
        "proj/main.py", main.replace("@checkpoint", "@checkpoint(allow_side_effects=True)")
    )
    project.write(
        "proj/main.py",
        main.replace("@checkpoint", "@checkpoint(allow_side_effects=True)")
        .replace("f(1)", "f(3)")
        .replace("f(2)", "f(4)"),
    )
    assert "SideEffectWarning" not in project.run("-m", "proj.main").stderr


def test_a_file_the_function_writes_and_reads_back_is_not_an_input(project) -> None:
    project.write("proj/__init__.py", "")
    project.write(
        "proj/main.py",
        """
        from checkpointing import checkpoint

        @checkpoint(allow_side_effects=True)
        def f():
            print("RAN f")
            with open("scratch.txt", "w") as handle:
                handle.write("x")
            with open("scratch.txt") as handle:
                return handle.read()

        print("RESULT", f())
        """,
    )
    project.run("-m", "proj.main")
    assert project.run("-m", "proj.main").ran == []


needs_monitoring = pytest.mark.skipif(
    sys.version_info < (3, 12),
    reason="the run-time safety net uses sys.monitoring (Python 3.12+); .ci/run runs "
    "these tests on Python 3.13",
)

DYNAMIC_CASES = {
    "getattr": (
        "proj/ops.py",
        """
        from checkpointing import checkpoint
        from proj import ops

        @checkpoint
        def f(x, name):
            print("RAN f")
            # An object the static analysis cannot know (getattr on the module named
            # directly is followed statically: test_plugins.py).
            return getattr([ops][0], name)(x)

        print("RESULT", f(3, "double"))
        """,
    ),
    "dispatch-dict": (
        "proj/ops.py",
        """
        from checkpointing import checkpoint
        from proj import ops

        TABLE = {}
        for _name in ("double", "square"):
            TABLE[_name] = ops.__dict__[_name]

        @checkpoint(allow_side_effects=True)
        def f(x, name):
            print("RAN f")
            return TABLE[name](x)

        print("RESULT", f(3, "double"))
        """,
    ),
    "plugin-registry": (
        "proj/ops.py",
        """
        from checkpointing import checkpoint
        from proj import plugins

        @checkpoint
        def f(x, name):
            print("RAN f")
            return plugins.run(name, x)

        print("RESULT", f(3, "double"))
        """,
    ),
}
OPS = "def double(x):\n    return x * 2\n\n\ndef square(x):\n    return x * x\n"
PLUGINS = """
REGISTRY = {}


def register(fn):
    REGISTRY[fn.__name__] = fn
    return fn


def run(name, x):
    __import__(".".join(["proj", "ops"]))  # a name built at run time
    return REGISTRY[name](x)
"""
OPS_REGISTERED = "from proj.plugins import register\n\n\n@register\n" + OPS.replace(
    "\n\n\ndef square", "\n\n\n@register\ndef square"
)


PROFILE_ON = "from checkpointing import defaults\ndefaults['runtime.profile_safety_net'] = True\n"


@pytest.mark.parametrize(
    "mode",
    [
        pytest.param("monitoring", marks=needs_monitoring),
        pytest.param(
            "profile",
            marks=pytest.mark.skipif(
                sys.version_info >= (3, 12),
                reason="3.12+ uses sys.monitoring (tested above); .ci/run runs this on Python 3.9",
            ),
        ),
    ],
)
@pytest.mark.parametrize("case", sorted(DYNAMIC_CASES))
def test_the_safety_net_catches_code_reached_at_run_time(project, case, mode) -> None:
    edited, main = DYNAMIC_CASES[case]
    project.write("proj/__init__.py", "")
    project.write(
        "proj/main.py", (PROFILE_ON if mode == "profile" else "") + textwrap.dedent(main).lstrip()
    )
    project.write("proj/plugins.py", PLUGINS)
    ops = OPS_REGISTERED if case == "plugin-registry" else OPS
    project.write("proj/ops.py", ops)
    first = project.run("-m", "proj.main")
    assert first.results == ["6"]
    assert "proj.ops:double" in first.stderr and "static analysis did not see" in first.stderr
    assert project.run("-m", "proj.main").ran == []
    project.write("proj/ops.py", ops.replace("x * 2", "x * 20"))
    run = project.run("-m", "proj.main")
    assert run.ran == ["f"] and run.results == ["60"], run
    # An edit to code that did not run (square) does not re-run... except through the
    # dispatch dict, a global whose value (both functions) the key already holds.
    project.write("proj/ops.py", ops.replace("x * 2", "x * 20").replace("x * x", "x ** 2"))
    assert project.run("-m", "proj.main").ran == (["f"] if case == "dispatch-dict" else [])


def test_track_versions_folds_versions_and_names_the_change(project) -> None:
    project.write("proj/__init__.py", "")
    project.write("fakelib/__init__.py", "def twice(x):\n    return 2 * x\n")
    project.write(
        "fakelib-1.0.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakelib\nVersion: 1.0\n"
    )
    project.write("fakelib-1.0.dist-info/top_level.txt", "fakelib\n")
    main = """
        import logging, sys
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="LOG %(message)s")
        from checkpointing import checkpoint, defaults
        defaults["analysis.project_roots"] = [sys.path[0] + "/proj"]
        import fakelib

        @checkpoint(track_versions=True)
        def f(x):
            print("RAN f")
            return fakelib.twice(x)

        print("RESULT", f(3))
        """
    project.write("proj/main.py", main)
    assert project.run("-m", "proj.main").ran == ["f"]
    assert project.run("-m", "proj.main").ran == []
    os.rename(project.root / "fakelib-1.0.dist-info", project.root / "fakelib-1.1.dist-info")
    project.write(
        "fakelib-1.1.dist-info/METADATA", "Metadata-Version: 2.1\nName: fakelib\nVersion: 1.1\n"
    )
    run = project.run("-m", "proj.main")
    assert run.ran == ["f"], run
    assert "LOG proj.main:f re-runs: fakelib 1.0 -> 1.1" in run.stdout, run.stdout
