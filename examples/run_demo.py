"""Run the demo: a miss, a hit, a harmless edit, then a re-run after a real one (and
what ``checkpointing graph`` and ``checkpointing why`` say about it).

Copies ``demo_project/`` to a temporary directory and runs ``python main.py`` there
three times, so the cache (``.checkpointing/`` in that directory) starts empty.
"""

import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent


def run(workdir: pathlib.Path, title: str) -> None:
    print(title)
    subprocess.run([sys.executable, "main.py"], cwd=workdir, check=True)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp) / "demo_project"
        shutil.copytree(HERE / "demo_project", workdir)
        run(workdir, "1. first run: nothing cached yet, fit_line runs")
        run(workdir, "2. second run, nothing changed: answered from .checkpointing/")
        features = workdir / "pipeline" / "features.py"
        text = features.read_text()
        features.write_text(
            text.replace(
                "def center(values):\n",
                'def center(values):\n    """Subtract the mean."""  # documented, reformatted:\n',
            ).replace(
                "mean = sum(values) / len(values)",
                "mean = (sum(values)\n            / len(values))",
            )
        )
        run(
            workdir,
            "3. after a docstring, a comment and a line break in center(), in "
            "pipeline/features.py: still cached",
        )
        features.write_text(
            text.replace(
                "return [v - mean for v in values]", "return [v - 0.5 * mean for v in values]"
            )
        )
        print(
            "4. after changing the logic of center() in pipeline/features.py, a helper "
            "two modules away, `checkpointing graph` and `checkpointing why` say:"
        )
        for command in (
            ["graph", "pipeline.train:fit_line"],
            ["why", "pipeline.train:fit_line", '{"seed": 42}'],
        ):
            subprocess.run(
                [sys.executable, "-m", "checkpointing", *command], cwd=workdir, check=True
            )
        run(workdir, "   and fit_line runs again:")
        print(f"\nThe cache lived in {workdir / '.checkpointing'} (now removed).")


if __name__ == "__main__":
    main()
