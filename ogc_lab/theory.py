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


# ---- the book's words for these checks, chosen by the numbers (chapters 2 and 3) ----------------------

FLOAT64_TOLERANCE = 1e-12  # float64 sums of order 10 over a few operations: any difference below is rounding
FLOAT32_TOLERANCE = 1e-6  # risks of order 0.1 computed in float32 (machine epsilon 1.2e-7): the same for float32
TIGHT = 0.01  # an extreme within 1 % of the band's width of an edge shows that edge's bound to be tight


def _power(value: float) -> str:
    """A tolerance as written in the text: 1e-06 -> '1e-6'."""
    mantissa, exponent = f"{value:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def _share(value: float) -> str:
    """A share of a width as a percentage, to two significant figures: 0.0034 -> '0.34 %'."""
    return f"{100 * value:.2g} %"


def bound_sentence(max_violation: float, tolerance: float = FLOAT64_TOLERANCE) -> str:
    """Whether sampled losses stayed inside Proposition 1's bounds, given the largest excess over a bound.

    ``max_violation`` is the largest (value - upper bound) or (lower bound - value) over all checks: negative
    inside, positive outside; a positive excess up to ``tolerance`` is float64 rounding, not a violation.
    """
    if max_violation <= 0:
        closest = ("sat on one to machine precision" if -max_violation <= tolerance
                   else f"stayed {-max_violation:.2g} inside one")
        return f"no sample and no class sum left its bounds; the closest {closest}"
    if max_violation <= tolerance:
        return (f"every sample and every class sum stayed inside its bounds to machine precision (no excess above "
                f"{_power(tolerance)}, what float64 rounding leaves on sums of order 10)")
    return f"a bound was exceeded by {max_violation:.2g}, more than float64 rounding ({_power(tolerance)}) can explain"


def _edge(name: str, slack: float, tolerance: float) -> str:
    if abs(slack) <= tolerance:
        return f"reach the {name} edge to machine precision"
    if slack > 0:
        return f"reach the {name} edge to within {_share(slack)} of the band's width"
    return f"pass the {name} edge by {_share(-slack)} of the band's width"


def tightness_sentence(lower_slack: float, upper_slack: float, tolerance: float = FLOAT64_TOLERANCE) -> str:
    """Whether the extreme class sums reach the band's edges, so that both bounds are tight.

    The slacks are the closest distances of the sampled class sums to the lower and the upper edge, as a
    share of the band's width: positive inside the band, negative outside; within ``tolerance`` they are
    zero to machine precision.
    """
    if abs(lower_slack) <= tolerance and abs(upper_slack) <= tolerance:
        return (f"The extreme class sums reach both edges of the band to machine precision (their distance to "
                f"each edge is below {_power(tolerance)} of the band's width), so both bounds are tight.")
    sentence = (f"The extreme class sums {_edge('lower', lower_slack, tolerance)} and "
                f"{_edge('upper', upper_slack, tolerance)}")
    loose = [name for name, slack in (("lower", lower_slack), ("upper", upper_slack)) if slack > TIGHT]
    if not loose:
        return sentence + ", so both bounds are tight."
    which = "either bound" if len(loose) == 2 else f"the {loose[0]} bound"
    return sentence + f": these draws do not show {which} to be tight."


def gap_sentence(rows: list[dict], tolerance: float = FLOAT32_TOLERANCE) -> str:
    """How measured gaps in clean risk stand against their bounds (rows with ``gap`` and ``bound``).

    Differences within ``tolerance`` are rounding of the float32 training.  A bound of zero (tau = 1) is
    reported as such; elsewhere the largest gap as a share of its bound, or the excesses.
    """
    rows = [row for row in rows if row.get("bound") is not None]
    if not rows:
        return "no gap has a bound to compare with"
    largest_gap = max(row["gap"] for row in rows)
    if all(abs(row["bound"]) <= tolerance for row in rows):
        if all(abs(row["gap"]) <= tolerance for row in rows):
            both = "the gap and its bound are both" if len(rows) == 1 else "the gaps and their bounds are all"
            return f"{both} zero to rounding (below {_power(tolerance)} in absolute value)"
        return f"the bound is zero, and the gaps reach {largest_gap:.2g}"
    over = [row["gap"] - row["bound"] for row in rows if row["gap"] - row["bound"] > tolerance]
    if not over:
        share = max(max(row["gap"], 0.0) / row["bound"] for row in rows if row["bound"] > tolerance)
        return f"every gap stays inside its bound, the largest at {100 * share:.0f} % of it"
    return f"{len(over)} of {len(rows)} gaps exceed their bound, by up to {max(over):.2g}"


def agreement_text(difference: float, tolerance: float = FLOAT64_TOLERANCE) -> str:
    """'to machine precision (...)' for a difference below ``tolerance``, else the difference to two figures."""
    if abs(difference) <= tolerance:
        return f"to machine precision (they differ by less than {_power(tolerance)})"
    return f"to within {abs(difference):.2g}"
