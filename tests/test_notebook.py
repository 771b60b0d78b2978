"""examples/notebook.ipynb, executed by a real Jupyter kernel (nbclient), several times.

Each execution is a fresh kernel, like a user running the notebook again tomorrow:
the second one hits, an edit of the helper module beside the notebook re-runs, and
so does an edit of the helper defined in a cell. Every answer equals a fresh run's.
The graph cell displays a drawing without Graphviz (the kernel's PATH has no `dot`).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

pytestmark = pytest.mark.e2e  # starts kernels

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
NOTEBOOK = EXAMPLES / "notebook.ipynb"


def execute(workdir: Path) -> Tuple[List[str], List[str], Dict[str, str]]:
    """Run the notebook in ``workdir`` in a new kernel: (functions that ran, RESULT
    values, the display data of the graph cell)."""
    nb = nbformat.read(workdir / "notebook.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=180,
        kernel_name="python3",
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()
    stdout = "".join(
        output.get("text", "")
        for cell in nb.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "stream" and output.name == "stdout"
    )
    lines = stdout.splitlines()
    graph_cell = next(c for c in nb.cells if "checkpointing.graph(" in c.source)
    (display,) = [o for o in graph_cell.outputs if o.output_type == "execute_result"]
    return (
        [line[4:] for line in lines if line.startswith("RAN ")],
        [line[7:] for line in lines if line.startswith("RESULT ")],
        dict(display["data"]),
    )


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text, (path, old)
    path.write_text(text.replace(old, new), encoding="utf-8")
    stamp = path.stat().st_mtime + 10  # newer than any .pyc of the previous text
    os.utime(path, (stamp, stamp))


def edit_cell(path: Path, old: str, new: str) -> None:
    nb = nbformat.read(path, as_version=4)
    (cell,) = [c for c in nb.cells if old in c.source]
    cell.source = cell.source.replace(old, new)
    nbformat.write(nb, path)


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    shutil.copy(NOTEBOOK, tmp_path / "notebook.ipynb")
    shutil.copy(EXAMPLES / "nb_helpers.py", tmp_path / "nb_helpers.py")
    # The kernel inherits this environment: only the interpreter's folder on PATH, so
    # no Graphviz, and the kernel is the interpreter running the tests.
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable))
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    return tmp_path


def fresh(workdir: Path) -> List[str]:
    shutil.rmtree(workdir / ".checkpointing")
    ran, results, _ = execute(workdir)
    assert ran == ["score"]
    return results


def test_the_notebook_hits_on_its_second_run_and_reruns_after_an_edit(workdir: Path) -> None:
    ran, results, display = execute(workdir)
    assert ran == ["score"] and results == ["5.0"], (ran, results)
    svg = display["text/html"]
    assert "<svg" in svg and "__main__:score" in svg and "__main__:weight" in svg
    assert "nb_helpers:normalise" in svg
    assert display["image/svg+xml"].startswith("<svg")

    ran, results, _ = execute(workdir)
    assert ran == [] and results == ["5.0"], (ran, results)

    # The helper module beside the notebook.
    edit(
        workdir / "nb_helpers.py", "return [v / top for v in values]", "return [v for v in values]"
    )
    ran, results, _ = execute(workdir)
    assert ran == ["score"] and results == ["20"], (ran, results)
    assert fresh(workdir) == results

    ran, results, _ = execute(workdir)
    assert ran == [] and results == ["20"]

    # The helper defined in a cell.
    edit_cell(workdir / "notebook.ipynb", "return 2 * x", "return 3 * x")
    ran, results, _ = execute(workdir)
    assert ran == ["score"] and results == ["30"], (ran, results)
    assert fresh(workdir) == results


def test_autoreload_reruns_after_an_edit_of_the_module_in_the_same_kernel(
    workdir: Path,
) -> None:
    """docs/notebooks.md: with %autoreload 2 (the notebook's first cell), an edit of
    the module beside the notebook is seen by the next call in the same session."""
    nb = nbformat.read(workdir / "notebook.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    )
    call = next(i for i, c in enumerate(nb.cells) if c.source.startswith("result = score"))

    def stdout(index: int) -> str:
        return "".join(
            o.get("text", "") for o in nb.cells[index].outputs if o.get("name") == "stdout"
        )

    with client.setup_kernel():
        for index, cell in enumerate(nb.cells[: call + 1]):
            client.execute_cell(cell, index)
        assert stdout(call) == "RAN score\nRESULT 5.0\n"
        client.execute_cell(nb.cells[call], call)
        assert stdout(call) == "RESULT 5.0\n"  # a hit
        edit(workdir / "nb_helpers.py", "return [v / top for v in values]", "return values")
        client.execute_cell(nb.cells[call], call)
        assert stdout(call) == "RAN score\nRESULT 20\n"


def test_a_comment_in_a_cell_changes_nothing(workdir: Path) -> None:
    execute(workdir)
    edit_cell(workdir / "notebook.ipynb", "def weight(x):", "# doubles\ndef weight(x):")
    ran, results, _ = execute(workdir)
    assert ran == [] and results == ["5.0"], (ran, results)


def test_the_notebook_in_the_repository_has_no_outputs() -> None:
    """Outputs are made by running it; stored ones would go stale."""
    nb = nbformat.read(NOTEBOOK, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, cell.source
    assert re.search(r"@checkpoint\s*\ndef score", "".join(c.source for c in nb.cells))
