"""Every example of docs/behaviour.md and docs/tracking.md, run twice with the edit in
between.

The pages are the specification users read; this test keeps them true.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
DOC = DOCS / "behaviour.md"


def _load_parser():
    """The page parser lives with the script that runs the pages under checkpointing 1.0."""
    path = DOCS.parent / "examples" / "compare_with_1_0.py"
    spec = importlib.util.spec_from_file_location("compare_with_1_0", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.parse_examples


examples = _load_parser()
EXAMPLES = examples(DOC)
CAVEATS = examples(DOCS / "tracking.md", level="### ")


def test_the_table_lists_every_section() -> None:
    text = DOC.read_text(encoding="utf-8")
    for title, _, _, rerun in EXAMPLES:
        row = f"| [{title[0].lower() + title[1:]}]"
        assert row in text, f"no table row for {title!r}"
        line = next(line for line in text.splitlines() if line.startswith(row))
        assert line.rstrip().endswith("| yes |" if rerun else "| no |"), line


def test_the_caveats_of_1_0_are_all_shown() -> None:
    assert [c[0] for c in CAVEATS] == [
        "A helper's logic changes",
        "A helper is renamed, logic unchanged",
        "A method of an argument's class changes",
    ]


@pytest.mark.parametrize(
    "title, before, after, rerun", [pytest.param(*e, id=e[0]) for e in EXAMPLES + CAVEATS]
)
def test_example(project, title, before, after, rerun) -> None:
    for name, text in before.items():
        project.write(name, text)
    first = project.run()
    assert first.ran == ["f"], first
    for name, text in after.items():
        project.write(name, text)
    second = project.run()
    assert second.ran == (["f"] if rerun else []), second
    assert len(second.results) == 1
    # And the cached answer is the one a fresh run of the edited program gives.
    shutil.rmtree(project.root / ".checkpointing")
    fresh = project.run()
    assert fresh.ran == ["f"] and fresh.results == second.results, (second, fresh)
