"""Every input a result depends on, besides the files Python's ``open`` reads:
directory listings, files opened by C code (pyarrow, h5py, sqlite3), environment
variables, ``checkpoint(inputs=[...])``, and an input reverted to content seen before.

Each test runs a real program in subprocesses, changes the input between runs, and
checks what re-ran and that the value equals a fresh run's (the cache removed).

The programs read Parquet with ``use_threads=False``: pyarrow's thread pool can abort a
process at exit just after a read ("terminate called without an active exception",
apache/arrow#34314, #39862), seen here with pyarrow 21 on Python 3.9 in 2 of 100 runs of
a plain program without checkpointing, and it failed these tests now and then.
"""

from __future__ import annotations

import shutil
import sqlite3
import sys

import pytest

from checkpointing import (
    AutoFuncCallIdentifier,
    CacheBase,
    CheckpointNotExist,
    ConfigurationError,
    DecoratorCheckpoint,
    checkpoint,
)


def fresh(project, env=None):
    """The value a run without any cache gives now."""
    shutil.rmtree(project.root / ".checkpointing", ignore_errors=True)
    run = project.run(env=env)
    assert run.ran, run
    return run.results


def check(project, rerun, env=None):
    """Run again: did it re-run as expected, and is its value a fresh run's? The
    cache is then rebuilt by the fresh run, so the next step starts from a hit."""
    run = project.run(env=env)
    assert run.ran == (["f"] if rerun else []), run
    assert run.results == fresh(project, env), run
    return run.results


# -- directory listings ------------------------------------------------------------------

LISTERS = {
    "glob.glob": "[os.path.basename(p) for p in glob.glob('data/*.txt')]",
    "Path.glob": "[p.name for p in Path('data').glob('*.txt')]",
    "Path.rglob": "[p.name for p in Path('data').rglob('*.txt')]",
    "Path.iterdir": "[p.name for p in Path('data').iterdir() if p.suffix == '.txt']",
    "os.listdir": "[n for n in os.listdir('data') if n.endswith('.txt')]",
    "os.scandir": "[e.name for e in os.scandir('data') if e.name.endswith('.txt')]",
}


@pytest.mark.parametrize("lister", list(LISTERS))
def test_a_file_added_to_or_removed_from_a_listed_folder_re_runs(project, lister) -> None:
    project.write(
        "main.py",
        f"""
        import glob, os
        from pathlib import Path
        from checkpointing import checkpoint

        @checkpoint
        def f():
            print("RAN f")
            return sorted({LISTERS[lister]})

        print("RESULT", f())
        """,
    )
    project.write("data/a.txt", "1")
    assert project.run().results == ["['a.txt']"]
    check(project, rerun=False)
    project.write("data/b.txt", "2")
    assert check(project, rerun=True) == ["['a.txt', 'b.txt']"]
    (project.root / "data" / "a.txt").unlink()
    assert check(project, rerun=True) == ["['b.txt']"]


def test_the_import_system_listing_folders_during_a_miss_is_not_an_input(project) -> None:
    project.write(
        "main.py",
        """
        from checkpointing import checkpoint

        @checkpoint
        def f():
            print("RAN f")
            import helper_mod  # imported during the miss: the finder lists this folder
            return helper_mod.VALUE

        print("RESULT", f())
        """,
    )
    project.write("helper_mod.py", "VALUE = 3\n")
    project.run()
    project.write("unrelated.txt", "a new file beside main.py")
    check(project, rerun=False)


def test_the_project_folder_as_an_argument_ignores_the_cache_it_holds(project) -> None:
    """ "." is listed and walked (a folder argument): the entries the cache writes
    there, and __pycache__, are not inputs."""
    project.write(
        "main.py",
        """
        import os
        from checkpointing import checkpoint

        @checkpoint
        def f(folder):
            print("RAN f")
            return sorted(n for n in os.listdir(folder) if n.endswith(".txt"))

        print("RESULT", f("."))
        """,
    )
    project.run()
    check(project, rerun=False)
    (project.root / "__pycache__").mkdir()
    check(project, rerun=False)
    project.write("a.txt", "1")
    assert check(project, rerun=True) == ["['a.txt']"]
    project.write("sub/b.csv", "1")  # deeper in the folder argument: a re-run
    check(project, rerun=True)


def test_relative_paths_read_from_another_folder_re_run(project) -> None:
    """The key holds "data.txt", the check its absolute path: run from another folder,
    the same relative path names another file."""
    project.write(
        "main.py",
        """
        import os
        from checkpointing import checkpoint

        @checkpoint
        def f(path):
            print("RAN f")
            with open(path) as handle:
                return handle.read()

        os.chdir(os.environ.get("CKPT_TEST_CWD", "."))  # the cache stays where it was
        print("RESULT", f("data.txt"))
        """,
    )
    project.write("data.txt", "top")
    project.write("sub/data.txt", "sub")
    assert project.run().results == ["top"]
    assert project.run().ran == []
    run = project.run(env={"CKPT_TEST_CWD": "sub"})
    assert run.ran == ["f"] and run.results == ["sub"], run


def test_a_string_argument_that_names_no_file_does_not_tie_the_entry_to_the_folder(project) -> None:
    project.write(
        "main.py",
        """
        import os
        from checkpointing import checkpoint

        @checkpoint
        def f(word):
            print("RAN f")
            return word.upper()

        os.chdir(os.environ.get("CKPT_TEST_CWD", "."))
        print("RESULT", f("hello"))
        """,
    )
    (project.root / "sub").mkdir()
    project.run()
    run = project.run(env={"CKPT_TEST_CWD": "sub"})
    assert run.ran == [] and run.results == ["HELLO"], run


# -- files opened by C code --------------------------------------------------------------


def test_a_rewritten_parquet_file_named_by_an_argument_re_runs(project) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    project.write(
        "main.py",
        """
        import pandas as pd
        from checkpointing import checkpoint

        @checkpoint
        def f(path):
            print("RAN f")
            return int(pd.read_parquet(path, use_threads=False)["x"].sum())

        print("RESULT", f("data/t.parquet"))
        """,
    )
    (project.root / "data").mkdir()
    pd.DataFrame({"x": [1, 2]}).to_parquet(project.root / "data" / "t.parquet")
    assert project.run().results == ["3"]
    check(project, rerun=False)
    pd.DataFrame({"x": [1, 5]}).to_parquet(project.root / "data" / "t.parquet")
    assert check(project, rerun=True) == ["6"]


def test_a_rewritten_parquet_file_of_a_globbed_folder_re_runs(project) -> None:
    """pyarrow reads in C (no ``open`` event): the listing's size+mtime of each entry
    sees the rewrite."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    project.write(
        "main.py",
        """
        import glob
        import pyarrow.parquet as pq
        from checkpointing import checkpoint

        @checkpoint
        def f():
            print("RAN f")
            return sum(pq.read_table(p, use_threads=False).column("x").to_pylist()[0]
                       for p in sorted(glob.glob("data/*.parquet")))

        print("RESULT", f())
        """,
    )
    (project.root / "data").mkdir()
    pd.DataFrame({"x": [1]}).to_parquet(project.root / "data" / "a.parquet")
    pd.DataFrame({"x": [2]}).to_parquet(project.root / "data" / "b.parquet")
    assert project.run().results == ["3"]
    check(project, rerun=False)
    pd.DataFrame({"x": [20, 1]}).to_parquet(project.root / "data" / "b.parquet")
    assert check(project, rerun=True) == ["21"]


def test_a_parquet_dataset_folder_named_by_an_argument_re_runs(project) -> None:
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    project.write(
        "main.py",
        """
        import pandas as pd
        from checkpointing import checkpoint

        @checkpoint
        def f(folder):
            print("RAN f")
            return int(pd.read_parquet(folder, use_threads=False)["x"].sum())

        print("RESULT", f("data/ds"))
        """,
    )
    part = project.root / "data" / "ds" / "part=1"
    part.mkdir(parents=True)
    pd.DataFrame({"x": [1, 2]}).to_parquet(part / "0.parquet")
    assert project.run().results == ["3"]
    check(project, rerun=False)
    pd.DataFrame({"x": [1, 2, 3]}).to_parquet(part / "0.parquet")
    assert check(project, rerun=True) == ["6"]
    pd.DataFrame({"x": [10]}).to_parquet(part / "1.parquet")
    assert check(project, rerun=True) == ["16"]


def test_a_changed_hdf5_file_re_runs(project) -> None:
    h5py = pytest.importorskip("h5py")
    project.write(
        "main.py",
        """
        import h5py
        from checkpointing import checkpoint

        @checkpoint
        def f(path):
            print("RAN f")
            with h5py.File(path, "r") as handle:
                return int(handle["x"][()].sum())

        print("RESULT", f("data.h5"))
        """,
    )

    def write(values):
        with h5py.File(project.root / "data.h5", "w") as handle:
            handle["x"] = values

    write([1, 2, 3])
    assert project.run().results == ["6"]
    check(project, rerun=False)
    write([1, 2, 4])
    assert check(project, rerun=True) == ["7"]


@pytest.mark.skipif(
    sys.version_info < (3, 10),
    reason="sqlite3.connect has no audit event "
    "before Python 3.10 (documented; inputs= covers it: next test)",
)
def test_a_changed_sqlite_database_re_runs(project) -> None:
    project.write(
        "main.py",
        """
        import sqlite3
        from checkpointing import checkpoint

        @checkpoint
        def f():
            print("RAN f")
            with sqlite3.connect("db.sqlite") as db:
                return db.execute("select sum(x) from t").fetchone()[0]

        print("RESULT", f())
        """,
    )
    db = sqlite3.connect(project.root / "db.sqlite")
    db.execute("create table t (x integer)")
    db.execute("insert into t values (1), (2)")
    db.commit()
    assert project.run().results == ["3"]
    check(project, rerun=False)
    db.execute("insert into t values (10)")
    db.commit()
    db.close()
    assert check(project, rerun=True) == ["13"]


def test_a_sqlite_database_declared_in_inputs_re_runs_on_every_python(project) -> None:
    project.write(
        "main.py",
        """
        import sqlite3
        from checkpointing import checkpoint

        @checkpoint(inputs=["db.sqlite"])
        def f():
            print("RAN f")
            db = sqlite3.connect("db.sqlite")
            try:
                return db.execute("select count(*) from t").fetchone()[0]
            finally:
                db.close()

        print("RESULT", f())
        """,
    )
    db = sqlite3.connect(project.root / "db.sqlite")
    db.execute("create table t (x integer)")
    db.commit()
    assert project.run().results == ["0"]
    check(project, rerun=False)
    db.execute("insert into t values (1)")
    db.commit()
    db.close()
    assert check(project, rerun=True) == ["1"]


# -- environment variables ---------------------------------------------------------------


@pytest.mark.parametrize(
    "read",
    [
        "os.environ['CKPT_SCALE']",
        "os.environ.get('CKPT_SCALE', '1')",
        "os.getenv('CKPT_SCALE', '1')",
        "('2' if 'CKPT_SCALE' in os.environ else '1')",
    ],
)
def test_a_changed_or_unset_environment_variable_re_runs(project, read) -> None:
    project.write(
        "main.py",
        f"""
        import os
        from checkpointing import checkpoint

        @checkpoint
        def f(x):
            print("RAN f")
            try:
                return x * int({read})
            except KeyError:
                return -x

        print("RESULT", f(5))
        """,
    )
    assert project.run(env={"CKPT_SCALE": "2"}).results == ["10"]
    check(project, rerun=False, env={"CKPT_SCALE": "2"})
    if "in os.environ" not in read:  # `in` sees presence, not the value
        assert check(project, rerun=True, env={"CKPT_SCALE": "3"}) == ["15"]
    unset = project.run()  # the variable is not in this environment
    assert unset.ran == ["f"], unset
    assert unset.results == fresh(project)
    check(project, rerun=False)
    assert project.run(env={"CKPT_SCALE": "2"}).ran == ["f"]


def test_environment_variables_read_outside_the_project_are_not_inputs(project) -> None:
    """The standard library reads TMPDIR for tempfile on its own behalf; only reads by
    the project's code count."""
    project.write(
        "main.py",
        """
        import os, tempfile
        from checkpointing import checkpoint

        @checkpoint
        def f():
            print("RAN f")
            tempfile._candidate_tempdir_list()  # reads TMPDIR, TEMP, TMP
            return os.environ.get("CKPT_MODE", "default")

        print("RESULT", f())
        """,
    )
    project.run(env={"TMPDIR": str(project.root)})
    check(project, rerun=False, env={"TMPDIR": "/"})
    assert check(project, rerun=True, env={"CKPT_MODE": "fast"}) == ["fast"]


def test_a_variable_the_function_sets_itself_is_not_an_input(project) -> None:
    project.write(
        "main.py",
        """
        import os
        from checkpointing import checkpoint

        @checkpoint
        def f():
            print("RAN f")
            os.environ["CKPT_INNER"] = "on"
            return os.environ["CKPT_INNER"]

        print("RESULT", f())
        """,
    )
    project.run()
    check(project, rerun=False)


# -- declared inputs ------------------------------------------------------------------------

DECLARED = """
    import os
    import pyarrow.parquet as pq
    from checkpointing import checkpoint

    @checkpoint(inputs=["data/*.parquet"])
    def f():
        print("RAN f")
        return sum(sum(pq.read_table(os.path.join("data", n), use_threads=False).column("x").to_pylist())
                   for n in NAMES if os.path.exists(os.path.join("data", n)))

    NAMES = ["a.parquet", "b.parquet", "c.parquet"]
    print("RESULT", f())
    """


def test_declared_inputs_globs_are_evaluated_before_each_hit(project) -> None:
    """The function reads paths it builds itself, in C: nothing is recorded at run
    time (``os.path.exists`` has no audit event); ``inputs=`` declares them."""
    pd = pytest.importorskip("pandas")
    pytest.importorskip("pyarrow")
    project.write("main.py", DECLARED)
    data = project.root / "data"
    data.mkdir()
    pd.DataFrame({"x": [1]}).to_parquet(data / "a.parquet")
    assert project.run().results == ["1"]
    check(project, rerun=False)
    pd.DataFrame({"x": [2]}).to_parquet(data / "b.parquet")  # a new match
    assert check(project, rerun=True) == ["3"]
    pd.DataFrame({"x": [5]}).to_parquet(data / "b.parquet")  # a changed match
    assert check(project, rerun=True) == ["6"]
    (data / "a.parquet").unlink()  # a removed match
    assert check(project, rerun=True) == ["5"]
    (data / "notes.txt").write_text("not matched")
    check(project, rerun=False)


def test_a_declared_input_that_does_not_exist_yet_re_runs_when_it_appears(project) -> None:
    project.write(
        "main.py",
        """
        import os
        from checkpointing import checkpoint

        @checkpoint(inputs="settings.ini")
        def f():
            print("RAN f")
            return os.path.exists("settings.ini")

        print("RESULT", f())
        """,
    )
    assert project.run().results == ["False"]
    check(project, rerun=False)
    (project.root / "settings.ini").write_text("[x]\n")
    assert check(project, rerun=True) == ["True"]


def test_adding_inputs_to_a_decorator_does_not_serve_an_entry_stored_without(project) -> None:
    main = """
        import os
        from checkpointing import checkpoint

        @checkpoint({inputs})
        def f():
            print("RAN f")
            return 1

        print("RESULT", f())
        """
    project.write("main.py", main.format(inputs=""))
    project.run()
    project.write("main.py", main.format(inputs="inputs=['*.csv']"))
    assert project.run().ran == ["f"]
    assert project.run().ran == []


@pytest.mark.parametrize(
    "bad, says",
    [
        (5, "pass a list of paths or glob patterns"),
        (b"data/*.csv", "pass a list of paths or glob patterns"),
        ([1], "holds 1, which is not a path"),
        ([""], "holds '', which is not a path"),
        ({"a": 1}, "pass a list of paths"),
    ],
)
def test_invalid_inputs_fail_at_decoration_naming_the_fix(bad, says) -> None:
    with pytest.raises(ConfigurationError, match=says):
        checkpoint(inputs=bad)


@pytest.mark.parametrize(
    "key, bad",
    [
        ("cache.variants", 0),
        ("cache.variants", True),
        ("cache.variants", "4"),
        ("runtime.track_env", 1),
    ],
)
def test_new_defaults_are_validated(key, bad) -> None:
    from checkpointing import defaults

    with pytest.raises(ConfigurationError, match=key.replace(".", r"\.")):
        defaults[key] = bad


def test_inputs_need_a_store_that_keeps_checks() -> None:
    class Memory(CacheBase):
        def save(self, context_id, result):
            pass

        def retrieve(self, context_id):
            raise CheckpointNotExist(context_id)

    with pytest.raises(ConfigurationError, match="needs a cache that stores run-time"):
        DecoratorCheckpoint(AutoFuncCallIdentifier(), Memory(), inputs=["x.csv"])


# -- reverting an input hits again -----------------------------------------------------------

REVERT = """
    import os
    from checkpointing import checkpoint, defaults
    defaults["cache.variants"] = {variants}

    @checkpoint
    def f():
        print("RAN f")
        with open("data.txt") as handle:
            return handle.read().strip() + os.environ.get("CKPT_SUFFIX", "")

    print("RESULT", f())
    """


def test_a_reverted_input_file_hits_the_entry_it_had(project) -> None:
    project.write("main.py", REVERT.format(variants=4))
    project.write("data.txt", "one")
    assert project.run().results == ["one"]
    project.write("data.txt", "two")
    assert project.run().results == ["two"]
    project.write("data.txt", "one")  # rewritten: same content, new mtime
    run = project.run()
    assert run.ran == [] and run.results == ["one"], run
    project.write("data.txt", "two")
    run = project.run()
    assert run.ran == [] and run.results == ["two"], run
    project.write("data.txt", "three")
    assert project.run().results == ["three"]
    assert project.run().ran == []
    assert fresh(project) == ["three"]


def test_a_reverted_environment_variable_hits_again(project) -> None:
    project.write("main.py", REVERT.format(variants=4))
    project.write("data.txt", "v")
    project.run(env={"CKPT_SUFFIX": "-a"})
    project.run(env={"CKPT_SUFFIX": "-b"})
    run = project.run(env={"CKPT_SUFFIX": "-a"})
    assert run.ran == [] and run.results == ["v-a"], run
    run = project.run()
    assert run.ran == ["f"] and run.results == ["v"], run
    run = project.run(env={"CKPT_SUFFIX": "-b"})
    assert run.ran == [] and run.results == ["v-b"], run


def test_variants_are_bounded(project) -> None:
    """With cache.variants = 2, the entry and one earlier variant are kept: the input
    seen three changes ago re-runs."""
    project.write("main.py", REVERT.format(variants=2))
    for text in ("one", "two", "three"):
        project.write("data.txt", text)
        assert project.run().ran == ["f"]
    project.write("data.txt", "two")
    assert project.run().ran == []
    project.write("data.txt", "one")
    run = project.run()
    assert run.ran == ["f"] and run.results == ["one"], run
    folders = list((project.root / ".checkpointing" / "variants").iterdir())
    assert len(folders) == 1 and len(list(folders[0].iterdir())) == 1


def test_one_variant_keeps_only_the_latest(project) -> None:
    project.write("main.py", REVERT.format(variants=1))
    project.write("data.txt", "one")
    project.run()
    project.write("data.txt", "two")
    project.run()
    project.write("data.txt", "one")
    assert project.run().ran == ["f"]
