"""Optimized Gradient Clipping (OGC): the transformed (clipped) losses.

Clipping the per-sample gradient |dl/dp| at tau is the same as training on a loss that follows the
base loss l(p) for p above the threshold probability p_thr (where |l'(p_thr)| = tau) and continues
along its tangent line below it.  This module holds the base losses written in p, and that
transformation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch
from torch import Tensor

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
    """

    name: str
    value: Callable[[Tensor], Tensor]
    grad: Callable[[Tensor], Tensor]
    threshold_prob: Callable[[Tensor], Tensor]
    exp_rate: float | None

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
        return (1.0 - p) ** gamma / p - gamma * (1.0 - p) ** (gamma - 1.0) * torch.log(p)

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

    return BaseLoss(
        name=f"fl(gamma={gamma})",
        value=lambda p: -((1.0 - p) ** gamma) * torch.log(p),
        grad=grad,
        threshold_prob=threshold_prob,
        exp_rate=None,
    )


BASE_LOSSES: dict[str, Callable[..., BaseLoss]] = {"ce": _ce, "fl": _fl, "gce": _gce}


def base_loss(name: str, **params: float) -> BaseLoss:
    """The base loss ``name`` (one of ``BASE_LOSSES``) with its parameters (FL: gamma, GCE: q)."""
    try:
        factory = BASE_LOSSES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown base loss {name!r}; known: {', '.join(BASE_LOSSES)}") from None
    return factory(**params)


def label_prob(logits: Tensor, targets: Tensor) -> Tensor:
    """softmax(logits)[y], clamped to [P_MIN, P_MAX] as in the method (so H lies in [H_MIN, H_MAX])."""
    if logits.ndim != 2:
        raise ValueError(f"logits must be (batch, classes), got shape {tuple(logits.shape)}")
    logp = torch.log_softmax(logits.float(), dim=1).gather(1, targets.long().view(-1, 1)).squeeze(1)
    return logp.exp().clamp(P_MIN, P_MAX)


def clipped_loss_of_p(p: Tensor, tau: TauLike, base: BaseLoss) -> tuple[Tensor, Tensor]:
    """Per-sample transformed loss lbar(p; tau) and the mask of clipped samples (p <= p_thr).

    Its derivative in p is -min(|l'(p)|, tau).  A tau at or beyond |l'(P_MIN)| means no clipping.
    """
    tau_t = torch.as_tensor(tau, dtype=p.dtype, device=p.device)
    g_max = base.grad(torch.tensor(P_MIN, dtype=p.dtype, device=p.device))
    g_min = base.grad(torch.tensor(P_MAX, dtype=p.dtype, device=p.device))
    tau_t = torch.minimum(torch.maximum(tau_t, g_min), g_max)
    p_thr = base.threshold_prob(tau_t).clamp(P_MIN, P_MAX).detach()
    clipped = p <= p_thr
    tangent = base.value(p_thr) - tau_t * (p - p_thr)
    return torch.where(clipped, tangent, base.value(p)), clipped


def transformed_loss(
    logits: Tensor,
    targets: Tensor,
    tau: TauLike,
    base: BaseLoss | str = "ce",
    reduction: str = "mean",
) -> Tensor:
    """The OGC transformed loss lbar of ``base`` at threshold ``tau``, per sample or averaged."""
    if isinstance(base, str):
        base = base_loss(base)
    loss, _ = clipped_loss_of_p(label_prob(logits, targets), tau, base)
    return reduce_loss(loss, reduction)


def reduce_loss(per_sample: Tensor, reduction: str) -> Tensor:
    """Apply ``reduction`` ('mean', 'sum' or 'none') to per-sample losses."""
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "none":
        return per_sample
    raise ValueError(f"unknown reduction {reduction!r}; allowed: 'mean', 'sum', 'none'")
