"""Shared tools of the fault-injection suite (docs/reliability.md lists its figures).

Each test reports its figure with :func:`figure`; the figures are printed at the end
of the run (``pytest_terminal_summary``), so CI's log holds the table's numbers. Under
``pytest -n`` the figures are measured in the xdist workers: each worker hands its own
to the controller when it finishes, and ``tests/conftest.py`` prints them there.
"""

from __future__ import annotations

from typing import List

FIGURES: List[str] = []


def figure(name: str, text: str) -> None:
    """Record (and print) the measured outcome of a fault-injection test."""
    line = f"{name}: {text}"
    FIGURES.append(line)
    print(f"FIGURE {line}")


def pytest_sessionfinish(session) -> None:  # noqa: D103
    workeroutput = getattr(session.config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller prints them
        workeroutput["fault_figures"] = list(FIGURES)


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: D103
    if FIGURES:
        terminalreporter.section("fault-injection figures")
        for line in sorted(FIGURES):
            terminalreporter.write_line(line)
