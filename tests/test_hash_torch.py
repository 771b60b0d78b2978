"""The torch adapter. torch is not in the ``test`` extra (a CUDA build from the package
index is several GB): .ci/run installs the CPU build that lies on the machine
(``torch==2.13.0``) in a step of its own and runs this file; elsewhere it is skipped
when torch is missing. No GPU here: the device path is the CPU's (see the adapter's
docstring for other devices)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from checkpointing.hashing import UnhashableValue, digest_value

torch = pytest.importorskip("torch")

PINNED = {
    "float32 3x4": "42d3cb534b68ee3b76114cb3cb77aa6d",
    "int64 arange": "e9f40698b184d82102fd2b3dbd2e5c01",
    "bfloat16": "f17827ee653d37ab40e62c04d709c37a",
    "0-d": "de52914ed361b73932aa9c876a735369",
    "empty": "32a722ce043281c6564a987ac065ec5f",
    "sparse": "8d68818afcab97a3751e45a1eda436ac",
}


def values() -> dict:
    import torch

    return {
        "float32 3x4": torch.arange(12, dtype=torch.float32).reshape(3, 4),
        "int64 arange": torch.arange(1000, dtype=torch.int64),
        "bfloat16": torch.tensor([1.5, -2.0, 0.25], dtype=torch.bfloat16),
        "0-d": torch.tensor(7),
        "empty": torch.zeros(0, 3),
        "sparse": torch.tensor([[0.0, 1.0], [2.0, 0.0]]).to_sparse(),
    }


def test_content_dtype_shape_and_flags() -> None:
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    d = digest_value(t)
    assert digest_value(t.clone()) == d
    # the values in C order, whatever the layout in memory
    assert digest_value(t.T) == digest_value(t.T.contiguous())
    assert digest_value(t.T) != d
    others = [
        t + 1,
        t.to(torch.float64),
        t.reshape(4, 3),
        t.reshape(12),
        t.clone().requires_grad_(),
        torch.nn.Parameter(t.clone()),
    ]
    digests = {digest_value(o) for o in others}
    assert d not in digests and len(digests) == len(others)
    # how it was computed (the autograd graph) is not content
    leaf = torch.ones(3, requires_grad=True)
    made = leaf * 1
    assert made.grad_fn is not None
    assert digest_value(made) == digest_value(torch.ones(3).requires_grad_())


def test_lazy_views_and_sparse_layouts() -> None:
    z = torch.tensor([1 + 2j, 3 - 1j], dtype=torch.complex64)
    assert z.conj().is_conj()
    assert digest_value(z.conj()) == digest_value(z.conj().resolve_conj())
    assert digest_value(z.conj()) != digest_value(z)
    dense = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
    sparse = dense.to_sparse()
    duplicated = torch.sparse_coo_tensor(
        [[0, 0, 1], [1, 1, 0]], [0.5, 0.5, 2.0], (2, 2), check_invariants=True
    )
    assert digest_value(duplicated) == digest_value(sparse)  # coalesced
    assert digest_value(sparse) != digest_value(dense)


def test_meta_tensors_are_refused() -> None:
    with pytest.raises(UnhashableValue, match="meta tensor"):
        digest_value(torch.empty(3, device="meta"))


def test_not_copied() -> None:
    """A contiguous CPU tensor is read where it lies: digesting 80 MB allocates no
    tensor (torch's allocator is not seen by tracemalloc, so count tensors' memory)."""
    t = torch.arange(10_000_000, dtype=torch.float64)
    digest_value(t)
    from checkpointing.hashing.torch import _host_bytes

    view, owner = _host_bytes(t)
    assert owner.data_ptr() == t.data_ptr() and len(view) == t.numel() * 8
    strided = t[::2]
    _, copy = _host_bytes(strided)
    assert copy.data_ptr() != t.data_ptr()  # one copy into C order, documented


@pytest.mark.e2e
def test_pinned_in_a_fresh_process() -> None:
    code = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {os.path.dirname(os.path.abspath(__file__))!r})
        from test_hash_torch import values
        from checkpointing.hashing import hexdigest_value
        print(json.dumps({{k: hexdigest_value(v) for k, v in values().items()}}))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    import json

    assert json.loads(proc.stdout) == PINNED
