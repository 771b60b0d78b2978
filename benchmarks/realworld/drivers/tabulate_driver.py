"""tabulate 0.9.0 (one module of 2,700 lines): tables in three formats."""

from rw_harness import cache, main, ran
from tabulate import tabulate

ROWS = [["apple", 3, 1.25], ["banana", 12, 0.5], ["cherry", 140, 12.0625]]


@cache
def pipe_table(rows):
    ran("pipe_table")
    return tabulate(rows, headers=["fruit", "count", "price"], tablefmt="pipe")


@cache
def grid_table(rows, floatfmt):
    ran("grid_table")
    return tabulate(rows, headers="firstrow", tablefmt="grid", floatfmt=floatfmt)


@cache
def latex_table(n):
    ran("latex_table")
    rows = [[f"r{i}", i * i, i / 7] for i in range(n)]
    return tabulate(rows, tablefmt="latex")


if __name__ == "__main__":
    main(
        [
            ("pipe_table", pipe_table, (ROWS,)),
            ("grid_table", grid_table, ([["name", "n", "x"]] + ROWS, ".2f")),
            ("latex_table", latex_table, (6,)),
        ]
    )
