"""Definitions found in values are digested by local plans (issue #9 §2).

A registry's functions are each analysed alone; the helpers they call and the wrapper
layers around them are nodes of the walk that digests the registry. These two-run
programs check what that must keep: a key made with the analysis built in this process
equals the key made from the stored analysis (a needless re-run otherwise), and an
edit of a helper that only a registry function calls re-runs, and so does a change to
what a wrapper layer applied by a call carries (its defaults, its code) when the wrapper
is reached only as a value in the registry.
"""

from __future__ import annotations

import shutil

from checkpointing.keyplan import read_plan_file

HELPERS = """
def deep(x):
    return x * {factor}
"""

WRAPPERS = """
import functools


def logged(func, tag="{tag}"):
    @functools.wraps(func)
    def wrapper(x, _tag=tag):
        return func(x) + {weight} * len(_tag)
    return wrapper
"""

REGISTRY = """
from proj import helpers
from proj.wrappers import logged

REGISTRY = {{}}


def register(func):
    REGISTRY[func.__name__] = func
    return func


def _square(x):
    return helpers.deep(x) ** 2


square = register(logged(_square))


@register
def cube(x):
    return helpers.deep(x) ** 3 + len(REGISTRY)


@register
def chain(x):
    return REGISTRY["_square"](x) + REGISTRY["cube"](x)
"""

MAIN = """
from checkpointing import checkpoint
from proj import registry


@checkpoint
def run(name, x):
    print("RAN run")
    return registry.REGISTRY[name](x)


print("RESULT", run("chain", 2))
"""


def _write(project, factor: int = 3, tag: str = "ab") -> None:
    project.write("proj/__init__.py", "")
    project.write("proj/helpers.py", HELPERS.format(factor=factor))
    project.write("proj/wrappers.py", WRAPPERS.format(tag=tag, weight=1))
    project.write("proj/registry.py", REGISTRY.format())
    project.write("proj/main.py", MAIN)


def _fresh(project, tmp_path, name):
    root = tmp_path / name
    shutil.copytree(project.root, root, ignore=shutil.ignore_patterns(".checkpointing"))
    return type(project)(root).run("-m", "proj.main")


def test_stored_local_plans_give_the_key_a_fresh_analysis_gives(project):
    _write(project)
    first = project.run("-m", "proj.main")
    assert first.ran == ["run"]
    analysis = project.root / ".checkpointing" / "analysis"
    stored = _stored_by_module(analysis)
    # One file per module (the wrapper layers describe as what they wrap: not stored).
    assert sorted(stored) == ["proj.helpers", "proj.registry"]
    assert {"_square", "chain", "cube"} <= set(stored["proj.registry"][1])
    again = project.run("-m", "proj.main")  # from the stored analysis
    assert again.ran == [] and again.results == first.results
    stored["proj.helpers"][0].unlink()  # its plans are analysed again, the others read
    third = project.run("-m", "proj.main")
    assert third.ran == [] and third.results == first.results
    assert _stored_by_module(analysis) == stored


def _stored_by_module(analysis):
    """Module name -> (its file, the names of the definitions whose plans it holds)."""
    out = {}
    for path in analysis.glob("*.module"):
        plans = read_plan_file(str(path))["plans"]
        modules = {data["root"][1].partition(":")[0] for data in plans.values()}
        assert len(modules) == 1, modules
        names = sorted(data["root"][1].partition(":")[2] for data in plans.values())
        out[modules.pop()] = (path, names)
    return out


def test_an_edit_of_a_helper_only_a_registry_function_calls_reruns(project, tmp_path):
    _write(project)
    first = project.run("-m", "proj.main")
    analysis = project.root / ".checkpointing" / "analysis"
    before = {
        m: (path.stat().st_ino, path.read_bytes())
        for m, (path, _) in _stored_by_module(analysis).items()
    }
    project.write("proj/helpers.py", HELPERS.format(factor=5))
    edited = project.run("-m", "proj.main")
    assert edited.ran == ["run"]
    assert edited.results == _fresh(project, tmp_path, "fresh").results != first.results
    # Only the edited module's definitions were analysed again (and their file written).
    after = {
        m: (path.stat().st_ino, path.read_bytes())
        for m, (path, _) in _stored_by_module(analysis).items()
    }
    assert after["proj.registry"] == before["proj.registry"]
    assert after["proj.helpers"][1] != before["proj.helpers"][1]
    project.write("proj/helpers.py", HELPERS.format(factor=3))
    back = project.run("-m", "proj.main")
    assert back.ran == [] and back.results == first.results


def test_the_defaults_of_a_wrapper_layer_are_in_the_key(project, tmp_path):
    _write(project)
    first = project.run("-m", "proj.main")
    project.write("proj/wrappers.py", WRAPPERS.format(tag="abcdef", weight=1))
    edited = project.run("-m", "proj.main")
    assert edited.ran == ["run"]
    assert edited.results == _fresh(project, tmp_path, "fresh").results != first.results
    again = project.run("-m", "proj.main")
    assert again.ran == [] and again.results == edited.results


def test_the_code_of_a_wrapper_layer_is_in_the_key(project, tmp_path):
    _write(project)
    first = project.run("-m", "proj.main")
    project.write("proj/wrappers.py", WRAPPERS.format(tag="ab", weight=2))
    edited = project.run("-m", "proj.main")
    assert edited.ran == ["run"]
    assert edited.results == _fresh(project, tmp_path, "fresh").results != first.results


TAGGING = """
import functools
import os


def tagged(offset):
    def deco(func):
        @functools.wraps(func)
        def wrapper(x):
            return func(x) * wrapper.scale + wrapper.offset + len(wrapper.label)
        wrapper.scale = int(os.environ.get("SCALE", "2"))  # not in any source
        wrapper.offset = offset
        wrapper.label = "t"
        return wrapper
    return deco
"""

OPS = """
from proj.tagging import tagged

OPS = {}


@tagged(1)
def helper(x):
    return x + 1


def double(x):
    return helper(x) * 2 + len(OPS)


OPS["double"] = double
"""

OPS_MAIN = """
from checkpointing import checkpoint
from proj import ops


@checkpoint
def run(x):
    print("RAN run")
    return ops.OPS["double"](x)


print("RESULT", run(3))
"""


def test_attributes_of_a_wrapper_read_back_from_a_module_file_are_read_at_each_call(project):
    """The attributes a wrapper carries (``helper``'s, read by a registry's function)
    are stored as one run per owner in the module's file; read back from there, each
    is still a value of the key: a value that no
    source shows (an environment variable) re-runs the function, and coming back to
    the first value hits the first entry."""
    project.write("proj/__init__.py", "")
    project.write("proj/tagging.py", TAGGING)
    project.write("proj/ops.py", OPS)
    project.write("proj/main.py", OPS_MAIN)
    first = project.run("-m", "proj.main", env={"SCALE": "2"})
    assert first.ran == ["run"] and first.results == [str(((3 + 1) * 2 + 1 + 1) * 2 + 1)]
    runs = [
        spec
        for path in (project.root / ".checkpointing" / "analysis").glob("*.module")
        for data in read_plan_file(str(path))["plans"].values()
        for _qualname, spec in data["slots"]
        if spec[0] == "attributes"
    ]
    assert any({"scale", "offset", "label"} <= set(spec[3]) for spec in runs), runs
    again = project.run("-m", "proj.main", env={"SCALE": "2"})  # from the module's file
    assert again.ran == [] and again.results == first.results
    other = project.run("-m", "proj.main", env={"SCALE": "5"})
    assert other.ran == ["run"] and other.results == [str(((3 + 1) * 5 + 1 + 1) * 2 + 1)]
    back = project.run("-m", "proj.main", env={"SCALE": "2"})
    assert back.ran == [] and back.results == first.results


def test_a_module_file_of_another_format_or_damaged_is_analysed_again(project):
    """A module's file written by another analysis format (or torn) is not read: its
    plans are analysed again, so the key is the one a fresh analysis gives (a hit; the
    plans planted here, without the values they read, would give another key), and
    the file is written anew in the current format."""
    from checkpointing.keyplan import ANALYSIS_FORMAT, _write_plan_file

    _write(project)
    first = project.run("-m", "proj.main")
    analysis = project.root / ".checkpointing" / "analysis"
    stored = _stored_by_module(analysis)
    helpers, registry = stored["proj.helpers"][0], stored["proj.registry"][0]
    plans = read_plan_file(str(registry))["plans"]
    assert any(plan["slots"] for plan in plans.values())
    # An older layout under the same name: plans that would be misread if trusted.
    bogus = {name: dict(plan, slots=[]) for name, plan in plans.items()}
    _write_plan_file(str(registry), {"format": ANALYSIS_FORMAT - 1, "plans": bogus})
    helpers.write_bytes(helpers.read_bytes()[:-40])  # torn
    again = project.run("-m", "proj.main")
    assert again.ran == [] and again.results == first.results
    assert read_plan_file(str(registry))["format"] == ANALYSIS_FORMAT
    assert _stored_by_module(analysis) == stored
