"""Base losses l(p) of the labelled class's probability p, with |dl/dp| and the clipping point in p.

OGC clips one of these; CE and GCE also give r(tau) its closed form (``exp_rate``).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from ..registry import check_names, unknown

P_MIN = 1e-7
P_MAX = 1.0 - 1e-7
H_MIN = -math.log(P_MAX)  # smallest H = -log p after clamping (about 1e-7)
H_MAX = -math.log(P_MIN)  # largest H = -log p after clamping (about 16.118)

TauLike = float | Tensor


@dataclass(frozen=True)
class BaseLoss:
    """A loss l(p) of the predicted probability of the labelled class, with |dl/dp| decreasing in p.

    ``exp_rate`` is k when |dl/dp| = exp(k * H) with H = -log p (CE: 1, GCE: 1 - q): the ratio of
    clipped gradients then has a closed form.  ``None`` means only the grid estimate applies.
    ``value_of_log_p`` is l written in log p, exact for every log p <= 0 with no floor on p (CE:
    -log p): the unclipped losses use it so that a sample with a tiny p keeps its full gradient.
    """

    name: str
    value: Callable[[Tensor], Tensor]
    grad: Callable[[Tensor], Tensor]
    threshold_prob: Callable[[Tensor], Tensor]
    exp_rate: float | None
    value_of_log_p: Callable[[Tensor], Tensor] | None = None

    def grad_of_h(self, h: Tensor) -> Tensor:
        """|dl/dp| as a function of H = -log p."""
        return self.grad(torch.exp(-h))


def _ce() -> BaseLoss:
    return BaseLoss(
        name="ce",
        value=lambda p: -torch.log(p),
        grad=lambda p: 1.0 / p,
        threshold_prob=lambda tau: 1.0 / tau,
        exp_rate=1.0,
        value_of_log_p=torch.neg,
    )


def _gce(q: float = 0.7) -> BaseLoss:
    if not 0.0 < q < 1.0:
        raise ValueError(f"GCE needs 0 < q < 1, got q={q}")
    return BaseLoss(
        name=f"gce(q={q})",
        value=lambda p: (1.0 - p**q) / q,
        grad=lambda p: p ** (q - 1.0),
        threshold_prob=lambda tau: tau ** (1.0 / (q - 1.0)),
        exp_rate=1.0 - q,
    )


def _fl(gamma: float = 0.5) -> BaseLoss:
    if gamma < 0.0:
        raise ValueError(f"focal loss needs gamma >= 0, got gamma={gamma}")

    def grad(p: Tensor) -> Tensor:
        # products in the reference code's order, so float32 |l'| rounds as there (tau_search="reference")
        return (1.0 - p) ** gamma / p - gamma * torch.log(p) * (1.0 - p) ** (gamma - 1.0)

    def threshold_prob(tau: Tensor) -> Tensor:
        # grad is decreasing in p: bisect in log p, a fixed number of steps (no host sync).
        lo = torch.full_like(tau, math.log(P_MIN))
        hi = torch.full_like(tau, math.log(P_MAX))
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            above = grad(torch.exp(mid)) > tau
            lo = torch.where(above, mid, lo)
            hi = torch.where(above, hi, mid)
        return torch.exp(0.5 * (lo + hi))

    def value_of_log_p(log_p: Tensor) -> Tensor:
        # 1 - p from expm1 (exact near p = 1), floored so that d/dp (1 - p)^gamma stays finite at p = 1
        return -((-torch.expm1(log_p)).clamp_min(1.0 - P_MAX) ** gamma) * log_p

    return BaseLoss(
        name=f"fl(gamma={gamma})",
        value=lambda p: -((1.0 - p) ** gamma) * torch.log(p),
        grad=grad,
        threshold_prob=threshold_prob,
        exp_rate=None,
        value_of_log_p=value_of_log_p,
    )


BASE_LOSSES: dict[str, Callable[..., BaseLoss]] = {"ce": _ce, "fl": _fl, "gce": _gce}


def base_loss(name: str, **params: float) -> BaseLoss:
    """The base loss ``name`` (one of ``BASE_LOSSES``) with its parameters (FL: gamma, GCE: q)."""
    factory = BASE_LOSSES.get(name.lower())
    if factory is None:
        raise unknown("base loss", name, BASE_LOSSES)
    check_names(f"{name} base loss parameter", params, inspect.signature(factory).parameters or ["(none)"])
    return factory(**params)
