"""Proposition 1's bounds on the transformed CE loss and the noise-tolerance bounds built on them.

The classical results (Ghosh et al. 2017; Ma et al. 2020) bound the excess clean risk of the
noisy-risk minimiser through the range [C_L, C_U] of the loss summed over all K classes.  For the
transformed CE loss that range follows from convexity (Proposition 1), so the bounds shrink with tau.
Chapter 3 of the book derives them and checks them against trained models.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .ogc import P_MAX, P_MIN, base_loss, clipped_loss_of_p


def _lbar_ce(p: float, tau: float) -> float:
    """lbar_CE(p; tau) in float64 at one probability (unclamped p, so the vertices 0 and 1 count)."""
    return clipped_loss_of_p(torch.tensor(p, dtype=torch.float64), tau, base_loss("ce"))[0].item()


def sample_bounds(tau: float) -> tuple[float, float]:
    """Per-sample range of lbar_CE: 0 <= lbar <= lbar(0) = 1 + log tau (tau >= 1).

    The upper end is evaluated through the library, which raises tau to |l'(P_MAX)| = 1/(1 - 1e-7)
    at least, so at tau = 1 it exceeds 1 by about 1e-7.
    """
    _check_tau(tau)
    return 0.0, _lbar_ce(0.0, tau)


def class_sum_bounds(tau: float, num_classes: int) -> tuple[float, float]:
    """[C_L, C_U] for the sum of lbar_CE over all K classes: K lbar(1/K) by Jensen, the vertex value above."""
    _check_tau(tau)
    if num_classes < 2:
        raise ValueError(f"num_classes must be at least 2, got {num_classes}")
    k = num_classes
    return k * _lbar_ce(1.0 / k, tau), _lbar_ce(1.0, tau) + (k - 1) * _lbar_ce(0.0, tau)


def symmetric_excess_bound(rate: float, tau: float, num_classes: int) -> float:
    """Theorem 1: excess clean risk <= rate (C_U - C_L) / (K - 1 - rate K) under symmetric noise."""
    k = num_classes
    if not 0.0 <= rate < (k - 1) / k:
        raise ValueError(f"symmetric noise rate must lie in [0, (K-1)/K) = [0, {(k - 1) / k:.3f}), got {rate}")
    lower, upper = class_sum_bounds(tau, k)
    return rate * (upper - lower) / (k - 1 - rate * k)


def transition_excess_bound(matrix: Tensor, tau: float, class_weights: Tensor | None = None) -> float:
    """Theorem 2: E_y[m_y] (C_U - C_L) / a for a class-conditional transition matrix (inf when a <= 0).

    m_y is the largest off-diagonal entry of row y and a = min_y (T_yy - m_y): the margin by which
    each class keeps its own label.  ``class_weights`` are the class priors (uniform by default).
    Holds only when the clean-risk minimiser has zero clean risk, R(f*) = 0, as in the
    class-conditional results it follows (Ghosh et al. 2017, Thm 2; Ma et al. 2020); it does not
    apply to a task whose clean labels no model can fit perfectly.
    """
    t = torch.as_tensor(matrix, dtype=torch.float64)
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        raise ValueError(f"transition matrix must be square, got shape {tuple(t.shape)}")
    k = t.shape[0]
    off_diagonal = t - torch.diag(torch.diag(t))
    m = off_diagonal.max(dim=1).values
    margin = (torch.diag(t) - m).min().item()
    weights = torch.full((k,), 1.0 / k, dtype=torch.float64) if class_weights is None else class_weights.double()
    lower, upper = class_sum_bounds(tau, k)
    return (weights @ m).item() * (upper - lower) / margin if margin > 0 else math.inf


def _check_tau(tau: float) -> None:
    if not tau >= 1.0:
        raise ValueError(f"Proposition 1 needs tau >= 1, got tau={tau}")


def class_losses(logits: Tensor, tau: float, base: str = "ce") -> Tensor:
    """lbar of every class's (clamped) probability, shape (n, K): the terms Proposition 1 sums."""
    probs = torch.softmax(logits, dim=1).clamp(P_MIN, P_MAX)
    return clipped_loss_of_p(probs, tau, base_loss(base))[0]
