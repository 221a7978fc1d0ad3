"""The array namespace the GMM fit, r(tau), the tau solve and the refit checks are written against once:
NumPy/SciPy for CPU tensors, torch elsewhere, so that each runs where it is cheapest and never syncs.
"""

from __future__ import annotations

import contextlib
from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.special
import torch
from torch import Tensor

from .base import TauLike

# On the CPU a NumPy call on up to a few thousand values costs ~0.5-1 us against ~1.5-3 us for torch
# (tens of us for a torch call between training steps, when the caches are cold; NumPy's sort is
# ~10x faster); on an accelerator torch keeps everything on the device.  The per-component EM
# arithmetic runs on host floats with NumPy and on 0-d tensors with torch (``values``).


def _np_clip(v: Any, lo: Any, hi: Any) -> Any:
    """np.clip without its wrapper (~2 us a call); a ``None`` bound is no bound."""
    if lo is not None:
        v = np.maximum(v, lo)
    return v if hi is None else np.minimum(v, hi)


def numpy_array(t: Tensor) -> Any:
    """A CPU tensor's values as a NumPy array: a view, but bfloat16 (which NumPy lacks) widened."""
    t = t.detach()
    return (t.double() if t.dtype == torch.bfloat16 else t).numpy()


def _np_asarray(value: Any, like: Tensor) -> Any:
    """``value`` (a number, array or CPU tensor) as a NumPy array of CPU tensor ``like``'s dtype, no torch op."""
    return np.asarray(numpy_array(value) if isinstance(value, Tensor) else value, dtype=numpy_array(like).dtype)


NUMPY = SimpleNamespace(
    array=numpy_array,
    tensor=lambda value, like: torch.from_numpy(_np_asarray(value, like)),
    asarray=_np_asarray,
    arange=lambda n, like: np.arange(n, dtype=like.dtype),
    index=lambda v: np.asarray(v).astype(np.intp),
    cast=lambda v, like: v.astype(like.dtype),
    values=lambda v: v.tolist(),  # host floats: arithmetic on them costs ~0.05 us against ~1.5 us
    quiet=lambda: np.errstate(all="ignore"),  # inf and NaN are meaningful results here, not errors
    stack=np.stack,
    ones_like=np.ones_like,
    sort=np.sort,
    cumsum=np.cumsum,
    argmax=np.argmax,
    concat=np.concatenate,
    where=np.where,
    minimum=np.minimum,
    clip=_np_clip,
    logaddexp=np.logaddexp,
    log=np.log,
    exp=np.exp,
    log1p=np.log1p,
    tanh=np.tanh,
    abs=np.abs,
    expm1=np.expm1,
    sqrt=np.sqrt,
    isnan=np.isnan,
    isfinite=np.isfinite,
    log_ndtr=scipy.special.log_ndtr,
    softmax0=lambda v: scipy.special.softmax(v, axis=0),
)
TORCH = SimpleNamespace(
    array=lambda t: t,
    tensor=lambda value, like: value,
    asarray=lambda value, like: bound(value, like),
    arange=lambda n, like: torch.arange(n, dtype=like.dtype, device=like.device),
    index=lambda v: v.long(),
    cast=lambda v, like: v.to(like.dtype),
    values=lambda v: v,  # 0-d tensors stay on the device: no sync
    quiet=contextlib.nullcontext,
    stack=torch.stack,
    ones_like=torch.ones_like,
    sort=lambda v: torch.sort(v).values,
    cumsum=lambda v: torch.cumsum(v, 0),
    argmax=torch.argmax,
    concat=torch.cat,
    where=torch.where,
    minimum=torch.minimum,
    clip=torch.clamp,
    logaddexp=torch.logaddexp,
    log=torch.log,
    exp=torch.exp,
    log1p=torch.log1p,
    tanh=torch.tanh,
    abs=torch.abs,
    expm1=torch.expm1,
    sqrt=torch.sqrt,
    isnan=torch.isnan,
    isfinite=torch.isfinite,
    log_ndtr=torch.special.log_ndtr,
    softmax0=lambda v: torch.softmax(v, dim=0),
)


def backend(like: Tensor) -> SimpleNamespace:
    """The array backend for tensors like ``like``: NumPy on the CPU (no device there), else torch."""
    return NUMPY if like.device.type == "cpu" else TORCH


def bound(value: TauLike, like: Tensor) -> Tensor:
    """A float or tensor as a tensor with ``like``'s dtype and device.

    A float becomes ``torch.full`` on the device (a fill kernel): building a tensor from a host value
    (``torch.tensor``/``as_tensor``) is a host-to-device copy, which synchronises on CUDA.
    """
    if isinstance(value, Tensor):
        return value.to(device=like.device, dtype=like.dtype)
    return torch.full((), value, dtype=like.dtype, device=like.device)


def keep_if(frozen: bool | Tensor, old: list[tuple[Any, ...]], new: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``old`` where ``frozen`` else ``new``: a host branch for a host flag, ``torch.where`` for a tensor."""
    if isinstance(frozen, bool):
        return old if frozen else new
    return [tuple(torch.where(frozen, a, b) for a, b in zip(*pair)) for pair in zip(old, new)]
