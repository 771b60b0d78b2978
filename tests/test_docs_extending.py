"""The examples of docs/extending.md, run in order in a fresh process (registrations are
process-wide), so that the page stays true."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "extending.md"


def test_the_page_names_every_adapter() -> None:
    text = DOC.read_text(encoding="utf-8")
    adapters = ["numpy", "pandas", "pyarrow", "polars", "torch", "xarray", "scipy.sparse"]
    adapters += ["pydantic", "attrs"]
    for name in adapters:
        assert f"\n| {name} " in text, name


@pytest.mark.e2e
def test_the_examples_run(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) == 3
    script = tmp_path / "extending_examples.py"
    script.write_text("\n".join(blocks) + "\nprint('ok')\n", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"
