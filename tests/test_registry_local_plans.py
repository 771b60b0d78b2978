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
    assert list(analysis.glob("*.bundle")), "the local plans are stored together"
    again = project.run("-m", "proj.main")  # from the stored analysis
    assert again.ran == [] and again.results == first.results
    for bundle in analysis.glob("*.bundle"):
        bundle.unlink()  # the local plans one by one, from their own files
    third = project.run("-m", "proj.main")
    assert third.ran == [] and third.results == first.results


def test_an_edit_of_a_helper_only_a_registry_function_calls_reruns(project, tmp_path):
    _write(project)
    first = project.run("-m", "proj.main")
    project.write("proj/helpers.py", HELPERS.format(factor=5))
    edited = project.run("-m", "proj.main")
    assert edited.ran == ["run"]
    assert edited.results == _fresh(project, tmp_path, "fresh").results != first.results
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
