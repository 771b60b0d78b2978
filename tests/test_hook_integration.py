"""The import hook in real programs: loaded before us, pytest, syntax errors, notebooks."""

from __future__ import annotations

HELPERS = "def helper(x):\n    return x * 2\n"


def test_modules_imported_before_checkpointing_are_recorded_at_its_import(project) -> None:
    project.write("proj/__init__.py", "")
    project.write("proj/helpers.py", HELPERS)
    project.write(
        "proj/main.py",
        """
        import pathlib
        import sys
        from proj.helpers import helper       # imported before checkpointing
        from checkpointing import checkpoint  # reads proj/helpers.py now, once

        path = pathlib.Path(__file__).with_name("helpers.py")
        original = path.read_text()
        if sys.argv[1:] == ["edit"]:
            path.write_text(original.replace("x * 2", "x * 1000"))

        @checkpoint
        def f(x):
            print("RAN f")
            return helper(x)

        print("RESULT", f(3))
        path.write_text(original)
        """,
    )
    first = project.run("-m", "proj.main", "edit")
    assert first.ran == ["f"] and first.results == ["6"], first
    second = project.run("-m", "proj.main")
    assert second.ran == [] and second.results == ["6"], second


def test_a_syntax_error_points_at_the_users_file_and_line(project) -> None:
    project.write("proj/__init__.py", "")
    project.write("proj/broken.py", "x = 1\ndef f(:\n    pass\n")
    project.write("proj/main.py", "import checkpointing\nimport proj.broken\n")
    run = project.run("-m", "proj.main", expect_ok=False)
    assert run.returncode == 1
    assert 'broken.py", line 2' in run.stderr and "SyntaxError" in run.stderr, run.stderr


def test_coexists_with_pytest_assertion_rewriting(project) -> None:
    project.write("helpers.py", HELPERS)
    project.write(
        "test_user.py",
        """
        from checkpointing import checkpoint
        from helpers import helper

        @checkpoint
        def f(x):
            print("RAN f")
            return helper(x)

        def test_value():
            assert f(3) == helper(3)

        def test_rewriting_still_explains_failures():
            values = [1, 2]
            try:
                assert values == [1, 3]
            except AssertionError as exc:
                assert "[1, 2] == [1, 3]" in str(exc)
        """,
    )
    args = ("-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "test_user.py")
    first = project.run(*args)
    assert first.ran == ["f"] and "2 passed" in first.stdout, first.stdout
    second = project.run(*args)
    assert second.ran == [] and "2 passed" in second.stdout, second.stdout
    project.write("helpers.py", HELPERS.replace("x * 2", "x * 3"))
    third = project.run(*args)
    assert third.ran == ["f"] and "2 passed" in third.stdout, third.stdout


NOTEBOOK = """
import sys
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()


def cell(code):
    result = shell.run_cell(code)
    if not result.success:
        raise SystemExit(f"cell failed: {result.error_in_exec or result.error_before_exec}")


cell("from checkpointing import checkpoint")
cell("def helper(x):\\n    return x * " + sys.argv[1])
cell("@checkpoint\\ndef f(x):\\n    print('RAN f')\\n    return helper(x)")
cell("print('RESULT', f(3))")
# Re-running an edited helper cell makes the dependent function re-run.
cell("def helper(x):\\n    return x * 100")
cell("print('RESULT', f(3))")
cell("print('RESULT', f(3))")
"""


def test_notebook_cells(project) -> None:
    project.write("notebook.py", NOTEBOOK)
    first = project.run("notebook.py", "2")
    assert first.ran == ["f", "f"] and first.results == ["6", "300", "300"], first
    # A new kernel with the same cells: answered from the cache.
    second = project.run("notebook.py", "2")
    assert second.ran == [] and second.results == ["6", "300", "300"], second
    third = project.run("notebook.py", "3")
    assert third.ran == ["f"] and third.results == ["9", "300", "300"], third
