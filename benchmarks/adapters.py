"""Throughput of the value adapters: GB/s of digesting a large value of each library,
next to raw xxh3-128 over the very same bytes (the buffers the value holds), in the
same run.

Usage: python benchmarks/adapters.py [--mib 128] [--repeat 9]

Each row: the value, its size, GB/s of ``checkpointing.hashing.digest_value`` and GB/s of
``xxhash.xxh3_128`` updated with the value's buffers (each the best of ``--repeat``, the
two run alternately so that the machine's load hits both), and their ratio (1.0: as fast
as hashing the bytes alone). Libraries that are not installed are listed as missing.
pydantic and attrs values hold no buffers: their rows give microseconds per instance.
"""

from __future__ import annotations

import argparse
import sys
import time
from functools import partial
from typing import Any, Callable, List, Optional, Tuple

import xxhash

from checkpointing.hashing import digest_value


def best(fn: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def best_of_pair(a: Callable[[], Any], b: Callable[[], Any], repeat: int) -> Tuple[float, float]:
    """Best times of ``a`` and ``b`` run alternately (the machine's load hits both)."""
    ta, tb = [], []
    for _ in range(repeat):
        ta.append(best(a, 1))
        tb.append(best(b, 1))
    return min(ta), min(tb)


def raw_xxh3(buffers: List[Any]) -> Callable[[], bytes]:
    def run() -> bytes:
        h = xxhash.xxh3_128()
        for b in buffers:
            h.update(b)
        return h.digest()

    return run


def cases(mib: int) -> List[Tuple[str, Callable[[], Optional[Tuple[Any, List[Any]]]]]]:
    n = mib * (1 << 20) // 8  # float64 values

    def numpy_case():
        import numpy as np

        a = np.random.default_rng(0).random(n)
        return a, [a]

    def pandas_case():
        import numpy as np
        import pandas as pd

        cols = {f"c{i}": np.random.default_rng(i).random(n // 4) for i in range(4)}
        df = pd.DataFrame(cols)
        return df, [df.index.to_numpy()] + [df[c].to_numpy() for c in df.columns]

    def pyarrow_case():
        import numpy as np
        import pyarrow as pa

        cols = {f"c{i}": np.random.default_rng(i).random(n // 4) for i in range(4)}
        table = pa.table(cols)
        return table, [c.chunk(0).buffers()[1] for c in table.columns]

    def pyarrow_strings_case():
        import pyarrow as pa

        words = pa.array([f"value-{i % 100_003}" for i in range(n // 16)])
        return pa.table({"s": words}), [words.buffers()[1], words.buffers()[2]]

    def polars_case():
        import numpy as np
        import polars as pl

        cols = {f"c{i}": np.random.default_rng(i).random(n // 4) for i in range(4)}
        df = pl.DataFrame(cols)
        return df, [df[c].to_numpy() for c in df.columns]

    def torch_case():
        import torch

        t = torch.rand(n, dtype=torch.float64)
        return t, [t.numpy()]

    def xarray_case():
        import numpy as np
        import xarray as xr

        a = np.random.default_rng(0).random(n)
        return xr.DataArray(a, dims=("t",), name="x"), [a]

    def scipy_case():
        import numpy as np
        import scipy.sparse as sp

        nnz = n // 2  # 8 bytes of data + 4 of index per value
        rows = 100_000
        indptr = np.linspace(0, nnz, rows + 1).astype(np.int32)
        indices = np.random.default_rng(0).integers(0, rows, nnz).astype(np.int32)
        m = sp.csr_matrix((np.random.default_rng(1).random(nnz), indices, indptr), (rows, rows))
        m.sum_duplicates()
        return m, [m.indptr, m.indices, m.data]

    return [
        ("numpy float64", numpy_case),
        ("pandas 4 x float64", pandas_case),
        ("pyarrow 4 x float64", pyarrow_case),
        ("pyarrow strings", pyarrow_strings_case),
        ("polars 4 x float64", polars_case),
        ("torch float64 (CPU)", torch_case),
        ("xarray float64", xarray_case),
        ("scipy.sparse CSR", scipy_case),
    ]


def objects(repeat: int) -> List[Tuple[str, Callable[[], Any]]]:
    def pydantic_case():
        import pydantic

        class Model(pydantic.BaseModel):
            a: int
            b: str
            c: list

        return [Model(a=i, b="x" * 10, c=[1.5, 2.5]) for i in range(10_000)]

    def attrs_case():
        import attrs

        @attrs.define
        class Point:
            a: int
            b: str
            c: list

        return [Point(i, "x" * 10, [1.5, 2.5]) for i in range(10_000)]

    return [("pydantic models", pydantic_case), ("attrs instances", attrs_case)]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mib", type=int, default=128, help="size of each value")
    parser.add_argument("--repeat", type=int, default=9)
    args = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, xxhash {xxhash.VERSION}; best of {args.repeat}")
    print(f"{'value':<22}{'MiB':>8}{'digest GB/s':>13}{'xxh3 GB/s':>11}{'ratio':>7}")
    for name, make in cases(args.mib):
        try:
            value, buffers = make()
        except ImportError as exc:
            print(f"{name:<22}  missing ({exc.name})")
            continue
        size = sum(memoryview(b).nbytes for b in buffers)
        digest_value(value)  # registration, first-use caches
        ours, raw = best_of_pair(partial(digest_value, value), raw_xxh3(buffers), args.repeat)
        print(
            f"{name:<22}{size / 2**20:>8.1f}{size / ours / 1e9:>13.2f}"
            f"{size / raw / 1e9:>11.2f}{raw / ours:>7.2f}"
        )
        del value, buffers
    for name, make in objects(args.repeat):
        try:
            values = make()
        except ImportError as exc:
            print(f"{name:<22}  missing ({exc.name})")
            continue
        digest_value(values[:1])
        t = best(partial(digest_value, values), args.repeat)
        print(f"{name:<22}{'':>8}{t / len(values) * 1e6:>10.2f} us per instance")


if __name__ == "__main__":
    main()
