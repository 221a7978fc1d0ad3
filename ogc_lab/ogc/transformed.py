"""From logits to the clamped label probability p, and the transformed (clipped) loss of p at a tau.

Clipping |dl/dp| at tau equals following l above p_thr and its tangent line below: ``Threshold``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ..registry import unknown
from .base import P_MAX, P_MIN, BaseLoss, TauLike, base_loss

REDUCTIONS = ("mean", "sum", "none")  # what ``reduce_loss`` does with per-sample losses


def check_batch(logits: Tensor, targets: Tensor, num_classes: int | None) -> None:
    """Every loss's input check: logits (batch, K) with K = ``num_classes`` when known, targets (batch,) of
    integer class indices."""
    if logits.ndim != 2 or (num_classes is not None and logits.shape[1] != num_classes):
        wanted = f"(batch, {num_classes})" if num_classes is not None else "(batch, classes)"
        raise ValueError(f"logits must be {wanted}, got shape {tuple(logits.shape)}")
    if targets.shape != logits.shape[:1]:
        raise ValueError(f"targets must have shape ({logits.shape[0]},), got {tuple(targets.shape)}")
    if targets.dtype.is_floating_point or targets.dtype.is_complex or targets.dtype == torch.bool:
        raise ValueError(f"targets must be integer class indices, got {targets.dtype} (a float would be truncated)")
    # the range is read on the CPU only, where reading a value costs no device synchronisation; the
    # loaders check every label once (DataSplit), so accelerated steps stay free of host reads
    if num_classes is not None and targets.device.type == "cpu" and targets.numel():
        low, high = int(targets.min()), int(targets.max())
        if low < 0 or high >= num_classes:
            raise ValueError(f"targets must be class indices in [0, {num_classes - 1}], got {low} to {high}")


def label_log_prob(logits: Tensor, targets: Tensor) -> Tensor:
    """log softmax(logits)[y] in at least float32 (float64 logits stay float64), unclamped."""
    if logits.ndim != 2:
        raise ValueError(f"logits must be (batch, classes), got shape {tuple(logits.shape)}")
    work = logits.to(torch.promote_types(logits.dtype, torch.float32))
    return torch.log_softmax(work, dim=1).gather(1, targets.long().view(-1, 1)).squeeze(1)


def label_prob(logits: Tensor, targets: Tensor) -> Tensor:
    """softmax(logits)[y], clamped to [P_MIN, P_MAX] as in the method (so H lies in [H_MIN, H_MAX])."""
    return label_log_prob(logits, targets).exp().clamp(P_MIN, P_MAX)


@dataclass(frozen=True)
class Threshold:
    """The clipping point of a base loss at one tau: tau (clamped to the gradients that occur),
    p_thr with |l'(p_thr)| = tau, and l(p_thr).  Depends on tau only, so OGC computes it per refit."""

    tau: Tensor
    p_thr: Tensor
    value: Tensor

    @classmethod
    def of(cls, tau: TauLike, base: BaseLoss, like: Tensor) -> Threshold:
        """The threshold of ``base`` at ``tau`` in ``like``'s dtype and device."""
        tau_t = torch.as_tensor(tau, device=like.device).to(like.dtype)
        g_max = base.grad(torch.full((), P_MIN, dtype=like.dtype, device=like.device))
        g_min = base.grad(torch.full((), P_MAX, dtype=like.dtype, device=like.device))
        tau_t = torch.minimum(torch.maximum(tau_t, g_min), g_max).detach()
        p_thr = base.threshold_prob(tau_t).clamp(P_MIN, P_MAX).detach()
        return cls(tau_t, p_thr, base.value(p_thr).detach())

    def apply(self, p: Tensor, base_value: Tensor) -> tuple[Tensor, Tensor]:
        """lbar(p) given the base loss ``base_value`` = l(p), and the mask of clipped samples."""
        clipped = p < self.p_thr
        return torch.where(clipped, self.value - self.tau * (p - self.p_thr), base_value), clipped


def clipped_loss_of_p(p: Tensor, tau: TauLike, base: BaseLoss) -> tuple[Tensor, Tensor]:
    """Per-sample transformed loss lbar(p; tau) and the mask of clipped samples (p < p_thr).

    Its derivative in p is -min(|l'(p)|, tau).  A tau at or beyond |l'(P_MIN)| (e.g. ``inf``) means
    no clipping.  Both branches meet with equal value and slope at p_thr, so the strict ``<`` only
    decides which samples are reported as clipped.
    """
    return Threshold.of(tau, base, p).apply(p, base.value(p))


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
    raise unknown("reduction", reduction, REDUCTIONS)
