"""Checkpointed functions called from parallel workers: joblib (loky), dask.distributed,
multiprocessing (fork and spawn), and pickling by value (cloudpickle, dill) or by
reference (pickle).

A worker must compute the very key the parent computes for the same call, whether the
function reached it by reference (a module the worker imports) or by value (a
``__main__`` function or an IPython cell, copied by cloudpickle with neither its source
nor the parent's ``__main__``). Each program below computes some calls in workers,
answers them in the parent, computes another in the parent and answers it in a worker;
it is run again unchanged (nothing runs), then after an edit of a helper in another
module and of a helper beside the function (the workers run again, with new values).
"""

from __future__ import annotations

import re
from typing import Dict, List, Sequence

import pytest

pytest.importorskip("joblib")
pytest.importorskip("cloudpickle")

HELPERS = """
FACTOR = {factor}


def scale(x):
    return x * FACTOR
"""

# The function in an importable module: workers import it (pickled by reference).
WORK = """
import os

from checkpointing import checkpoint

import helpers

SHIFT = {shift}


def shift(x):
    return x + SHIFT


@checkpoint
def f_mod(x):
    os.write(1, f"RAN f_mod {{x}} {{os.getpid()}}\\n".encode())  # one write: workers share the pipe
    return shift(helpers.scale(x))
"""

ENGINES = """
import os


def start(name):
    '''(map function, close function) of an engine with two worker processes.'''
    if name == "joblib":
        from joblib import Parallel, delayed

        parallel = Parallel(n_jobs=2)
        return (lambda f, xs: parallel(delayed(f)(x) for x in xs)), (lambda: None)
    if name == "dask":
        from dask.distributed import Client, LocalCluster

        cluster = LocalCluster(processes=True, n_workers=2, threads_per_worker=1,
                               dashboard_address=":0")
        client = Client(cluster)

        def close():
            client.close()
            cluster.close()
        # pure=False: dask must not answer a call from its own memory.
        return (lambda f, xs: client.gather(client.map(f, xs, pure=False))), close
    import multiprocessing

    pool = multiprocessing.get_context(name).Pool(2)

    def close():
        pool.close()
        pool.join()
    return pool.map, close


def exercise(run, f, make=lambda x: x):
    print("PARENT", os.getpid(), flush=True)
    name = f.__name__
    print("RESULT", name, run(f, [make(1), make(2)]), flush=True)  # computed in the workers
    print("RESULT", name, [f(make(1)), f(make(2)), f(make(3))], flush=True)  # 1, 2 hit
    print("RESULT", name, run(f, [make(3)]), flush=True)   # computed in the parent: a hit
"""

# The function in the script: cloudpickle copies it by value into loky and dask
# workers; multiprocessing pickles it by reference.
MAIN = """
import os
import sys

from checkpointing import checkpoint

import engines
import helpers
import work

OFFSET = {offset}


def local(x):
    return x + OFFSET


@checkpoint
def f_main(x):
    os.write(1, f"RAN f_main {{x}} {{os.getpid()}}\\n".encode())
    return local(helpers.scale(x))


class Box:  # an argument of a class of __main__: copied by value too
    def __init__(self, x):
        self.x = x

    def value(self):
        return local(helpers.scale(self.x))


@checkpoint
def f_box(box):
    os.write(1, f"RAN f_box {{box.x}} {{os.getpid()}}\\n".encode())
    return box.value()


if __name__ == "__main__" and sys.argv[1] == "dump":
    import dumping

    dumping.dump(f_main)
elif __name__ == "__main__":
    run, close = engines.start(sys.argv[1])
    try:
        engines.exercise(run, f_main)
        engines.exercise(run, f_box, Box)
        engines.exercise(run, work.f_mod)
    finally:
        close()
"""

# The function in an IPython cell (copied by value, like a notebook's).
NOTEBOOK = """
import sys

import engines

if __name__ == "__main__":
    run, close = engines.start(sys.argv[1])
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()

    def cell(code):
        result = shell.run_cell(code)
        if not result.success:
            raise SystemExit(f"cell failed: {result.error_in_exec or result.error_before_exec}")

    shell.user_ns["run"] = run
    cell("import os\\nfrom checkpointing import checkpoint\\nimport engines, helpers")
    cell("OFFSET = " + sys.argv[2])
    cell("def local(x):\\n    return x + OFFSET")
    cell("@checkpoint\\ndef f_cell(x):\\n    os.write(1, f'RAN f_cell {x} {os.getpid()}\\\\n'.encode())\\n"
         "    return local(helpers.scale(x))")
    cell("class Box:\\n    def __init__(self, x):\\n        self.x = x\\n"
         "    def value(self):\\n        return local(helpers.scale(self.x))")
    cell("@checkpoint\\ndef f_box(box):\\n    os.write(1, f'RAN f_box {box.x} {os.getpid()}\\\\n'.encode())\\n"
         "    return box.value()")
    cell("engines.exercise(run, f_cell)")
    cell("engines.exercise(run, f_box, Box)")
    close()
"""


def _write(project, factor: int = 3, offset: int = 1, shift: int = 10) -> None:
    project.write("helpers.py", HELPERS.format(factor=factor))
    project.write("work.py", WORK.format(shift=shift))
    project.write("engines.py", ENGINES)
    project.write("main.py", MAIN.format(offset=offset))
    project.write("notebook.py", NOTEBOOK)


def _expected(functions: Sequence[str], factor: int, offset: int, shift: int) -> List[str]:
    out = []
    for name in functions:
        add = shift if name == "f_mod" else offset
        value = {x: x * factor + add for x in (1, 2, 3)}
        out += [
            f"{name} [{value[1]}, {value[2]}]",
            f"{name} [{value[1]}, {value[2]}, {value[3]}]",
            f"{name} [{value[3]}]",
        ]
    return out


def _check(
    run, functions: Sequence[str], computed: bool, factor: int, offset: int, shift: int
) -> None:
    """What ran where, the values, and no blind-spot warning (from parent or worker)."""
    assert "BlindSpotWarning" not in run.stderr, run.stderr
    assert run.results == _expected(functions, factor, offset, shift), run
    if not computed:
        assert run.ran == [], run
        return
    parents = set(re.findall(r"^PARENT (\d+)$", run.stdout, re.M))
    where: Dict[str, str] = {}
    for line in run.ran:
        name, x, pid = line.split()
        key = f"{name} {x}"
        assert key not in where, f"{key} ran twice: {run}"
        where[key] = "parent" if pid in parents else "worker"
    # Each call ran once: 1 and 2 in a worker (then hits in the parent), 3 in the
    # parent (then a hit in a worker).
    assert where == {
        f"{name} {x}": "parent" if x == 3 else "worker" for name in functions for x in (1, 2, 3)
    }, run


def _two_runs_and_edits(project, argv, functions: Sequence[str], offset_in_argv=False) -> None:
    def args(offset: int) -> List[str]:
        return [*argv, str(offset)] if offset_in_argv else list(argv)

    _write(project)
    _check(project.run(*args(1)), functions, True, 3, 1, 10)
    _check(project.run(*args(1)), functions, False, 3, 1, 10)
    # A helper in another module, read by the worker's copy of the code.
    project.write("helpers.py", HELPERS.format(factor=5))
    _check(project.run(*args(1)), functions, True, 5, 1, 10)
    # A global read by the helper beside the function (script, module or cell).
    project.write("main.py", MAIN.format(offset=2))
    project.write("work.py", WORK.format(shift=20))
    _check(project.run(*args(2)), functions, True, 5, 2, 20)


@pytest.mark.parametrize("engine", ["joblib", "fork", "spawn"])
def test_script_and_module_functions_in_workers(project, engine) -> None:
    _two_runs_and_edits(project, ["main.py", engine], ["f_main", "f_box", "f_mod"])


def test_notebook_cell_function_in_joblib_workers(project) -> None:
    pytest.importorskip("IPython")
    _two_runs_and_edits(
        project, ["notebook.py", "joblib"], ["f_cell", "f_box"], offset_in_argv=True
    )


@pytest.fixture
def dask_available() -> None:
    pytest.importorskip("dask.distributed")


def test_script_and_module_functions_in_dask_workers(project, dask_available) -> None:
    _two_runs_and_edits(project, ["main.py", "dask"], ["f_main", "f_box", "f_mod"])


def test_notebook_cell_function_in_dask_workers(project, dask_available) -> None:
    pytest.importorskip("IPython")
    _two_runs_and_edits(project, ["notebook.py", "dask"], ["f_cell", "f_box"], offset_in_argv=True)


# -- Pickled by value and by reference, loaded in another program ------------------------

DUMP = """
import pickle

import cloudpickle
import dill

import work


def dump(f_main):
    print("RESULT", f_main(1), work.f_mod(1), flush=True)
    with open("by-value.cloudpickle", "wb") as out:
        cloudpickle.dump(f_main, out)
    with open("by-value.dill", "wb") as out:
        dill.dump(f_main, out, recurse=True)
    with open("by-reference.pickle", "wb") as out:
        pickle.dump(work.f_mod, out)
    with open("by-reference.cloudpickle", "wb") as out:
        cloudpickle.dump(work.f_mod, out)
"""

LOAD = """
import sys

import dill  # loads all three formats

with open(sys.argv[1], "rb") as handle:
    f = dill.load(handle)
print("RESULT", f(1), f(4), flush=True)
"""


@pytest.mark.parametrize(
    "dump",
    ["by-value.cloudpickle", "by-value.dill", "by-reference.pickle", "by-reference.cloudpickle"],
)
def test_pickled_wrapper_keys_like_the_parent(project, dump) -> None:
    """A wrapper loaded in another program (whose __main__ is not the parent's) gives
    the parent's values and keys: the parent's entry is a hit there, and the entry it
    makes is a hit in the parent."""
    pytest.importorskip("dill")
    _write(project)
    project.write("dumping.py", DUMP)
    project.write("load.py", LOAD)
    first = project.run("main.py", "dump")
    assert sorted(first.ran)[0].startswith("f_main 1") and len(first.ran) == 2, first
    name = "f_main" if dump.startswith("by-value") else "f_mod"
    value = {"f_main": lambda x: 3 * x + 1, "f_mod": lambda x: 3 * x + 10}[name]
    loaded = project.run("load.py", dump)
    assert "BlindSpotWarning" not in loaded.stderr, loaded.stderr
    assert loaded.results == [f"{value(1)} {value(4)}"]
    assert [line.split()[:2] for line in loaded.ran] == [[name, "4"]], loaded
    again = project.run("main.py", "dump")
    assert again.ran == [], again


EDGE = """
import sys

from joblib import Parallel, delayed

import helpers
from anywhere import f_any

OFFSET = {offset}


def local(x):
    return x + OFFSET


class Box:
    def __init__(self, x):
        self.x = x

    def value(self):
        return local(helpers.scale(self.x))


if __name__ == "__main__":
    print("RESULT", Parallel(n_jobs=2)(delayed(f_any)(Box(x)) for x in (1, 2)), flush=True)
"""
ANYWHERE = """
from checkpointing import checkpoint


@checkpoint
def f_any(obj):
    return obj.value()
"""


def test_main_class_sent_to_a_module_function_is_never_stale(project) -> None:
    """A __main__ class reaching a worker by value with a function of a module (which
    ships no analysis): the worker cannot follow its code, so its key is its own
    process's (a re-run), never a stale value; a warning says why."""
    _write(project)
    project.write("anywhere.py", ANYWHERE)
    project.write("edge.py", EDGE.format(offset=1))
    first = project.run("edge.py")
    assert first.results == ["[4, 7]"]
    project.write("edge.py", EDGE.format(offset=2))
    second = project.run("edge.py")
    assert second.results == ["[5, 8]"], second
    assert "copied into this worker process without its source" in second.stderr
