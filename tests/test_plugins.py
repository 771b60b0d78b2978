"""Plugins loaded by name are followed where the name is knowable (issue 9, section 3).

``importlib.import_module(name)``, ``__import__(name)`` and ``getattr(module, name)``:
with a constant name, or one read from a project global (a string, or a list / dict
of names, also iterated), the module or function it names is part of the key: editing
the plugin re-runs, and so does pointing the global at another plugin (whose later
edits re-run too). Elsewhere the one warning names the ``depends_on=`` that fixes it.
Each program runs with the run-time safety net off: this is the static analysis.
"""

from __future__ import annotations

import shutil

import pytest

FAST = """
def run(x):
    return x * 2
"""

SLOW = """
def run(x):
    return helper(x) + 1

def helper(x):
    return x * 3
"""

HEADER = """
import importlib
from checkpointing import checkpoint, defaults
from proj import settings
defaults["runtime.safety_net"] = False
"""


def setup(project, body: str, settings: str = "PLUGIN = 'proj.plugins.fast'\n") -> None:
    project.write("proj/__init__.py", "")
    project.write("proj/plugins/__init__.py", "")
    project.write("proj/plugins/fast.py", FAST)
    project.write("proj/plugins/slow.py", SLOW)
    project.write("proj/settings.py", settings)
    project.write(
        "proj/main.py",
        HEADER
        + f"""
@checkpoint
def f(x):
    print("RAN f")
{body}

print("RESULT", f(5))
""",
    )


def check(project, expect_ran: bool, result: str) -> None:
    run = project.run("-m", "proj.main")
    assert run.ran == (["f"] if expect_ran else []), run
    assert run.results == [result], run
    assert "BlindSpotWarning" not in run.stderr, run.stderr


@pytest.mark.parametrize(
    "call",
    [
        "importlib.import_module('proj.plugins.fast')",
        "importlib.import_module('proj.plugins.' + 'fast')",
        "importlib.import_module('.plugins.fast', 'proj')",
    ],
)
def test_a_constant_module_name_is_followed(project, call: str) -> None:
    setup(project, f"    return {call}.run(x)")
    check(project, True, "10")
    check(project, False, "10")
    project.write("proj/plugins/fast.py", FAST.replace("x * 2", "x * 4"))
    check(project, True, "20")


def test_a_module_named_by_a_project_global_is_followed(project) -> None:
    setup(project, "    return importlib.import_module(settings.PLUGIN).run(x)")
    check(project, True, "10")
    project.write("proj/plugins/fast.py", FAST.replace("x * 2", "x * 4"))
    check(project, True, "20")
    # The global names another plugin: re-run, and that plugin is now followed.
    project.write("proj/settings.py", "PLUGIN = 'proj.plugins.slow'\n")
    check(project, True, "16")
    check(project, False, "16")
    project.write("proj/plugins/slow.py", SLOW.replace("x * 3", "x * 5"))
    check(project, True, "26")
    # Its helpers are followed like any other code: unchanged fast plugin, no re-run.
    project.write("proj/plugins/fast.py", FAST.replace("x * 2", "x * 7"))
    check(project, False, "26")


def test_a_list_of_plugin_names_iterated_is_followed(project) -> None:
    setup(
        project,
        """    total = 0
    for name in settings.PLUGINS:
        total += importlib.import_module(name).run(x)
    return total""",
        settings="PLUGINS = ['proj.plugins.fast']\n",
    )
    check(project, True, "10")
    project.write("proj/settings.py", "PLUGINS = ['proj.plugins.fast', 'proj.plugins.slow']\n")
    check(project, True, "26")
    project.write("proj/plugins/slow.py", SLOW.replace("x * 3", "x * 5"))
    check(project, True, "36")
    check(project, False, "36")


def test_a_global_list_of_names_changed_in_place_at_run_time(project) -> None:
    setup(
        project,
        """    return sum(importlib.import_module(n).run(x) for n in settings.PLUGINS)""",
        settings="PLUGINS = ['proj.plugins.fast']\n",
    )
    text = (project.root / "proj/main.py").read_text()
    project.write(
        "proj/main.py",
        text
        + """
settings.PLUGINS.append('proj.plugins.slow')
print("RESULT", f(5))
""",
    )
    first = project.run("-m", "proj.main")
    assert first.ran == ["f", "f"] and first.results == ["10", "26"], first
    project.write("proj/plugins/slow.py", SLOW.replace("x * 3", "x * 5"))
    second = project.run("-m", "proj.main")
    assert second.ran == ["f"] and second.results == ["10", "36"], second


@pytest.mark.parametrize(
    "call", ["getattr(fast, 'run')(x)", "getattr(fast, NAME)(x)", "getattr(fast, x_name)(x)"]
)
def test_getattr_on_a_project_module_is_followed(project, call: str) -> None:
    project.write("proj/__init__.py", "")
    project.write("proj/plugins/__init__.py", "")
    project.write("proj/plugins/fast.py", FAST + "\ndef other(x):\n    return 0\n")
    project.write(
        "proj/main.py",
        f"""
from checkpointing import checkpoint, defaults
from proj.plugins import fast
defaults["runtime.safety_net"] = False
NAME = "run"

@checkpoint
def f(x, x_name="run"):
    print("RAN f")
    return {call}

print("RESULT", f(5))
""",
    )
    check(project, True, "10")
    project.write(
        "proj/plugins/fast.py", FAST.replace("x * 2", "x * 4") + "\ndef other(x):\n    return 0\n"
    )
    check(project, True, "20")
    check(project, False, "20")


def test_getattr_on_a_standard_library_module_does_not_warn(project) -> None:
    project.write(
        "main.py",
        """
import operator
from checkpointing import checkpoint, defaults
defaults["runtime.safety_net"] = False

@checkpoint
def f(x, op):
    print("RAN f")
    return getattr(operator, op)(x, 2)

print("RESULT", f(5, "mul"))
""",
    )
    run = project.run("main.py")
    assert run.ran == ["f"] and run.results == ["10"] and run.stderr == "", run


def test_an_unknowable_plugin_name_warns_once_naming_the_fix(project) -> None:
    setup(project, "    return importlib.import_module('proj.plugins.' + x_name).run(x)")
    text = (project.root / "proj/main.py").read_text()
    project.write(
        "proj/main.py",
        text.replace("def f(x):", "def f(x, x_name='fast'):") + 'print("RESULT", f(6))\n',
    )
    run = project.run("-m", "proj.main")
    warnings = [line for line in run.stderr.splitlines() if "BlindSpotWarning" in line]
    assert len(warnings) == 1, run.stderr
    assert (
        "proj/main.py:9 importlib.import_module() imports a module chosen at run time"
        in warnings[0].replace("\\", "/")
    ), warnings[0]
    assert "checkpoint(depends_on=[proj.plugins.fast, proj.plugins.slow])" in warnings[0]
    # A later run reusing the stored analysis does not say it again.
    assert "BlindSpotWarning" not in project.run("-m", "proj.main").stderr


# -- A name only known at run time: the safety net watches, on every Python ------------------

# A checkpointed function that imports the plugin its argument names.
RENDER_BY_NAME = """
@checkpoint
def render(name, text):
    print("RAN render")
    return importlib.import_module("plugins." + name).render(text)
"""

CHOSEN_BY_ARGUMENT = (
    """
import importlib
from checkpointing import checkpoint
"""
    + RENDER_BY_NAME
    + """
print("RESULT", render("upper", "abc"))
"""
)

PLUGIN_UPPER = """
def render(text):
    return text.upper() + "!"
"""


def test_a_plugin_chosen_by_an_argument_is_watched_without_opting_in(project) -> None:
    """The analysis cannot know the module; it warns, and the misses of this function
    are watched at run time (before 3.12 by the profile hook, turned on for functions
    with blind spots only): editing the plugin that ran re-runs, on every Python."""
    project.write("main.py", CHOSEN_BY_ARGUMENT)
    project.write("plugins/__init__.py", "")
    project.write("plugins/upper.py", PLUGIN_UPPER)
    first = project.run()
    assert first.ran == ["render"] and first.results == ["ABC!"], first
    assert first.stderr.count("BlindSpotWarning") == 1, first.stderr
    assert project.run().ran == []
    project.write("plugins/upper.py", PLUGIN_UPPER.replace('"!"', '"?"'))
    second = project.run()
    assert second.ran == ["render"] and second.results == ["ABC?"], second
    shutil.rmtree(project.root / ".checkpointing")
    assert project.run().results == second.results  # the value of a fresh run


NAMED_AT_A_HIT = (
    """
import importlib, os, sys
from checkpointing import checkpoint
from checkpointing.source import INDEX
"""
    + RENDER_BY_NAME
    + """
print("RESULT", render("upper", "abc"))
record = INDEX.by_filename(os.path.abspath("plugins/upper.py"))
print("IMPORTED", "plugins.upper" in sys.modules, "RECORDED AS", record.name, record.from_hook)
"""
)


def test_a_plugin_checked_at_a_hit_before_its_import_is_recorded_under_its_name(
    project,
) -> None:
    """A hit in a new process checks the code of a plugin the process has not imported
    (read from the disk), recorded under the module name it had when the check was made
    (not a guess from the file name)."""
    project.write("main.py", NAMED_AT_A_HIT)
    project.write("plugins/__init__.py", "")
    project.write("plugins/upper.py", PLUGIN_UPPER)
    first = project.run()
    assert first.ran == ["render"] and "RECORDED AS plugins.upper True" in first.stdout, first
    hit = project.run()
    assert hit.ran == [] and hit.results == ["ABC!"], hit
    assert "IMPORTED False RECORDED AS plugins.upper False" in hit.stdout, hit.stdout


IMPORTED_AFTER_A_HIT = (
    """
import importlib, pathlib, sys
from checkpointing import checkpoint
from checkpointing.source import INDEX
"""
    + RENDER_BY_NAME
    + """
print("RESULT", render("upper", "abc"))
generation = INDEX.generation
if sys.argv[1:] == ["edit"]:
    path = pathlib.Path("plugins/upper.py")
    path.write_text(path.read_text().replace('"!"', '"?"'))
import plugins.upper
print("SAME GENERATION", INDEX.generation == generation)
print("RESULT", render("upper", "abc"))
"""
)


def test_a_plugin_imported_after_a_hit_read_it_keeps_every_plan(project) -> None:
    """A hit reads a plugin the process has not imported from the disk; the program's
    own import of it later, with the same text, is not a reload (every plan and witness
    would be built again: 180 ms for Markdown); with another text it is, and re-runs."""
    project.write("main.py", IMPORTED_AFTER_A_HIT)
    project.write("plugins/__init__.py", "")
    project.write("plugins/upper.py", PLUGIN_UPPER)
    first = project.run()
    assert first.ran == ["render"] and first.results == ["ABC!", "ABC!"], first
    hit = project.run()
    assert hit.ran == [] and hit.results == ["ABC!", "ABC!"], hit
    assert "SAME GENERATION True" in hit.stdout, hit.stdout
    edited = project.run("main.py", "edit")
    assert edited.results == ["ABC!", "ABC?"] and edited.ran == ["render"], edited
    assert "SAME GENERATION False" in edited.stdout, edited.stdout


RELOADED_IN_PROCESS = (
    """
import importlib, pathlib
from checkpointing import checkpoint
"""
    + RENDER_BY_NAME
    + """
print("RESULT", render("upper", "abc"), render("upper", "abc"))
path = pathlib.Path("plugins/upper.py")
path.write_text(path.read_text().replace('"!"', '"?"'))
importlib.reload(importlib.import_module("plugins.upper"))
print("RESULT", render("upper", "abc"), render("upper", "abc"))
"""
)


def test_a_plugin_reloaded_in_the_process_is_checked_by_its_new_code(project) -> None:
    """The run-time check of the code that ran digests each segment once per recorded
    text (not at every hit): a reload records the new text, and the next call re-runs."""
    project.write("main.py", RELOADED_IN_PROCESS)
    project.write("plugins/__init__.py", "")
    project.write("plugins/upper.py", PLUGIN_UPPER)
    run = project.run()
    assert run.results == ["ABC! ABC!", "ABC? ABC?"], run
    assert run.ran == ["render", "render"], run


UNDER_CPROFILE = """
import cProfile, importlib
from checkpointing import checkpoint

@checkpoint
def render(name, text):
    print("RAN render")
    return importlib.import_module("plugins." + name).render(text)

profiler = cProfile.Profile()
profiler.enable()
value = render("upper", "abc")
profiler.disable()
print("RESULT", value, sum(1 for _ in profiler.getstats()) > 0)
"""


def test_the_safety_net_never_displaces_another_profiler(project) -> None:
    """Under cProfile (or a debugger) the profile hook is not installed: the user's
    profiler keeps working and nothing fails (the net is off for that miss)."""
    project.write("main.py", UNDER_CPROFILE)
    project.write("plugins/__init__.py", "")
    project.write("plugins/upper.py", PLUGIN_UPPER)
    run = project.run()
    assert run.ran == ["render"] and run.results == ["ABC! True"], run
    assert "Traceback" not in run.stderr, run.stderr
