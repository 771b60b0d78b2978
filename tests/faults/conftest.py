"""Shared tools of the fault-injection suite (docs/reliability.md lists its figures).

Each test reports its figure with :func:`figure`; the figures are printed at the end
of the run (``pytest_terminal_summary``), so CI's log holds the table's numbers.
"""

from __future__ import annotations

from typing import List

FIGURES: List[str] = []


def figure(name: str, text: str) -> None:
    """Record (and print) the measured outcome of a fault-injection test."""
    line = f"{name}: {text}"
    FIGURES.append(line)
    print(f"FIGURE {line}")


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: D103
    if FIGURES:
        terminalreporter.section("fault-injection figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
