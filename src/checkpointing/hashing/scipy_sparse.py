"""scipy.sparse: sparse arrays and matrices, registered once scipy.sparse is imported.

A sparse value is its kind (``sparray`` or ``spmatrix``: their operators differ), its
format (``csr``, ``csc``, ``coo``...), dtype and shape, then its canonical structure,
so that equal matrices built differently (unsorted indices, duplicate entries to sum)
digest alike:

- CSR, CSC (and BSR) in canonical form (sorted indices, no duplicates): ``indptr``,
  ``indices`` and ``data`` as numpy arrays, hashed where they lie; otherwise a
  canonical copy is digested;
- COO: canonical (sorted by row then column, summed duplicates) coordinates and data;
- other formats (LIL, DOK, DIA): converted to CSR (a copy), the format kept in the digest.

Explicitly stored zeros are content (they are in ``nnz`` and ``data``).
"""

from __future__ import annotations

from typing import Any

from .core import Hasher, register_digester


def digest_sparse(m: Any, h: Hasher) -> None:
    import scipy.sparse as sp

    sparray = getattr(sp, "sparray", None)
    h.feed_str("sparray" if sparray is not None and isinstance(m, sparray) else "spmatrix")
    h.feed_str(m.format)
    h.feed(m.dtype)
    h.feed(tuple(int(n) for n in m.shape))
    if m.format in ("csr", "csc", "bsr"):
        if not m.has_canonical_format:
            m = m.copy()
            m.sum_duplicates()  # sorts the indices too
        h.feed(m.indptr)
        h.feed(m.indices)
        h.feed(m.data)
    elif m.format == "coo":
        m = m.tocsr().tocoo()  # canonical: sorted, duplicates summed
        h.feed(tuple(m.coords) if hasattr(m, "coords") else (m.row, m.col))
        h.feed(m.data)
    else:
        digest_sparse(m.tocsr(), h)


def register() -> None:
    """Register the digester of sparse arrays and matrices (once scipy.sparse is imported)."""
    import scipy.sparse as sp

    register_digester(sp.spmatrix, digest_sparse, feeds=True, name="scipy.sparse")
    if getattr(sp, "sparray", None) is not None:
        register_digester(sp.sparray, digest_sparse, feeds=True, name="scipy.sparse")
