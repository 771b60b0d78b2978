"""torch: tensors (and parameters), registered once torch is imported.

A tensor is its dtype, shape, device, ``requires_grad`` and its values in C order:

- a contiguous CPU tensor is hashed where it lies (zero copy, through its data pointer;
  numpy is not needed); any other layout (a transposed or strided view) is copied once
  into contiguous order, and lazily conjugated or negated views are resolved first;
- a tensor on another device (CUDA, MPS) is copied to the host once: torch offers no
  way to hash memory on the device, and a digest must be the same for the same values
  whatever the device's kernel; the device stays in the digest (a cached result comes
  back on the device it was made on, so another device is another key);
- a sparse COO tensor is coalesced and digested by its indices and values; other layouts
  and meta tensors (no data) raise :class:`UnhashableValue`.

``requires_grad`` is in the digest (a function may return a graph or not by it); the
autograd graph that made the tensor (``grad_fn``) and its ``.grad`` are not: they are how
the values were made, not the values. A ``Parameter`` and a tensor with the same values
and flags differ by their class.
"""

from __future__ import annotations

import ctypes
from typing import Any

from .core import Hasher, UnhashableValue, _type_name, register_digester


def _host_bytes(t: Any) -> Any:
    """(a flat byte view of ``t``'s values in C order on the host, the tensor that owns
    that memory): zero copy when ``t`` is already a contiguous CPU tensor."""
    if t.is_conj():
        t = t.resolve_conj()
    if t.is_neg():
        t = t.resolve_neg()
    if t.device.type != "cpu":
        t = t.cpu()
    t = t.contiguous()
    n = t.numel() * t.element_size()
    if n == 0:
        return memoryview(b""), t
    return memoryview((ctypes.c_char * n).from_address(t.data_ptr())).cast("B"), t


def digest_tensor(t: Any, h: Hasher) -> None:
    import torch

    if type(t) is not torch.Tensor:
        h.feed_str(_type_name(type(t)))
    h.feed_str(str(t.dtype))
    h.feed(tuple(t.shape))
    h.feed_str(str(t.device))
    h.feed(bool(t.requires_grad))
    t = t.detach()
    layout = t.layout
    if t.is_meta:
        raise UnhashableValue(_type_name(type(t)), "", "a meta tensor has no values")
    if layout == torch.sparse_coo:
        t = t.coalesce()
        h.feed_str("sparse_coo")
        digest_tensor(t.indices(), h)
        digest_tensor(t.values(), h)
        return
    if layout != torch.strided:
        raise UnhashableValue(
            _type_name(type(t)),
            "",
            f"tensors of layout {layout} are not digested: "
            "convert it (t.to_dense()) or register a digester",
        )
    if t.is_quantized:
        t = t.int_repr()  # the stored integers; scale and zero point follow
        h.feed((t.q_scale(), t.q_zero_point()) if t.qscheme() == torch.per_tensor_affine else None)
    view, owner = _host_bytes(t)
    h.feed_bytes(view)  # ``owner`` keeps the memory alive until this returns
    del view, owner


def register() -> None:
    """Register the digester of tensors (run once torch is imported)."""
    import torch

    register_digester(torch.Tensor, digest_tensor, feeds=True, name="torch.Tensor")
