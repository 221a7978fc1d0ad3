"""The tau solve: the largest tau with r(tau) <= 1 + lr * epsilon, by a fixed number of vectorised
rounds of evaluations of r, without host syncs.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor

from ..registry import choose
from . import arrays
from .base import H_MAX, H_MIN, BaseLoss, TauLike
from .mixture import GMM1D
from .ratio import RATIO_METHODS, LogRatio

SOLVE_POINTS = 62  # interior points per round of the tau search (a round's cost is mostly per call)
# Rounds of the tau search: the last bracket is (log g range) / 63**3, 6.4e-5 in log tau for CE.  With
# the curvature-corrected interpolation r(tau) meets the target to ~4e-12 relative (closed form, 2000
# random mixtures with variances down to 1e-3); two rounds left up to 1e-6 on narrow mixtures.
SOLVE_ROUNDS = 3


@functools.lru_cache(maxsize=64)
def _log_grad_range(base: BaseLoss, h_lo: float, h_hi: float) -> tuple[float, float]:
    """log |l'| at H = h_lo and H = h_hi, the ends of the tau search (host floats, once per loss and range)."""
    ends = base.grad_of_h(torch.tensor([h_lo, h_hi], dtype=torch.float64))
    low, high = torch.log(ends).tolist()
    return low, high


def _crossing(ratio: LogRatio, lo: Any, hi: Any, target: Any, xp: SimpleNamespace) -> tuple[Any, Any]:
    """log tau* with r crossing ``target`` inside [lo, hi], and r at lo and hi.

    ``SOLVE_ROUNDS`` rounds each evaluate r at ``SOLVE_POINTS`` + 2 equally spaced points at once
    (bisection is the 1-point case) and keep the step right of the LARGEST point with r <= target,
    so r(left end) <= target < r(right end) throughout.  In the last bracket, the linear
    interpolation t is corrected once by the curvature of the parabola through three neighbouring
    points, which makes the error third order in the step.  No host syncs, no data-dependent
    control flow.
    """
    steps = xp.arange(SOLVE_POINTS + 2, target)
    left_steps, pair, triple = steps[:-1], xp.index(steps[:2]), xp.index(steps[:3])
    width = (hi - lo) / (SOLVE_POINTS + 1)
    for round_ in range(SOLVE_ROUNDS):
        if round_:
            width = width / (SOLVE_POINTS + 1)
        r = ratio(lo + steps * width)
        if round_ == 0:
            ends = r[pair * (SOLVE_POINTS + 1)]  # r at g(h_lo) and g(h_hi)
        last = ((r[:-1] <= target) * left_steps).max()  # an index kept as an array: no host sync
        lo = lo + width * last
    r_lo, r_hi = r[xp.index(last) + pair]
    r_a, r_b, r_c = r[xp.index(xp.clip(last - 1.0, 0.0, SOLVE_POINTS - 1.0)) + triple]
    rise = r_hi - r_lo  # > 0 inside a bracket
    t = xp.clip((target - r_lo) / rise, 0.0, 1.0)
    # The parabola through the bracket's ends with second difference r_a - 2 r_b + r_c is
    # r_lo + rise t + (r_a - 2 r_b + r_c) t (t - 1) / 2; one fixed-point step solves it for target.
    t = xp.clip(t - 0.5 * (r_a - 2.0 * r_b + r_c) * t * (t - 1.0) / rise, 0.0, 1.0)
    return lo + width * t, ends


def solve_tau(
    gmm: GMM1D,
    target: TauLike,
    base: BaseLoss,
    method: str = "exact",
    h_lo: float = H_MIN,
    h_hi: float = H_MAX,
    n_grid: int = 1000,
) -> Tensor:
    """The largest tau with r(tau) <= target (0-d tensor), without host syncs.

    tau ranges over [g(h_lo), g(h_hi)], the gradients that occur.  Returns ``inf`` (no clipping)
    when r(g(h_hi)) <= target, g(h_lo) (clip everything) when even r(g(h_lo)) > target, NaN for an
    unusable mixture, and otherwise a crossing tau* with r(tau*) = target up to interpolation error
    and r > target just above it.  When r is not monotone, tau* lies in the rightmost crossing
    resolved by the first round's points (spacing range / 63 in log tau).  Runs in NumPy for CPU
    tensors (see ``arrays.backend``).
    """
    build_ratio = choose("ratio method", method, RATIO_METHODS)
    xp = arrays.backend(gmm.means)
    log_lo, log_hi = _log_grad_range(base, h_lo, h_hi)
    target_t = xp.asarray(target, gmm.means)
    with xp.quiet():
        ratio = build_ratio(gmm, base, h_lo, h_hi, n_grid)
        log_tau, ends = _crossing(ratio, log_lo, log_hi, target_t, xp)
        tau = xp.exp(xp.where(ends[0] > target_t, log_lo, log_tau))
        tau = xp.where(ends[1] <= target_t, math.inf, tau)
        tau = xp.where(xp.isnan(ends).any(), math.nan, tau)
    return xp.tensor(tau, gmm.means)
