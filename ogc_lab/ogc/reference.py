"""The OGC reference code's tau search (``tau_search="reference"``): a capped, quantised bisection
on the threshold probability, reproduced operation for operation so the exact solve can be compared.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch

from .base import H_MAX, H_MIN, P_MAX, P_MIN, BaseLoss
from .mixture import GMM1D

REFERENCE_GRID = 1000  # H values the reference computes r on
REFERENCE_STEPS = 10  # its bisection steps on the threshold probability
REFERENCE_TOL = 1e-7  # it stops early at a midpoint where |target - r| < this


@functools.lru_cache(maxsize=16)
def _reference_grid(base: BaseLoss) -> tuple[np.ndarray, np.ndarray]:
    """The reference's H grid (np.linspace over [H_MIN, H_MAX]) and |l'| there, float64, built once per loss."""
    h = np.linspace(H_MIN, H_MAX, REFERENCE_GRID)
    return h, base.grad_of_h(torch.from_numpy(h)).numpy()


def _float32_grad(base: BaseLoss, p: float) -> float:
    """|l'(p)| computed in float32, as the reference turns a threshold probability into tau."""
    return base.grad(torch.tensor(p, dtype=torch.float32)).item()


def _reference_ratio(gmm: GMM1D, base: BaseLoss) -> Callable[[float], float]:
    """r at a threshold probability p as the reference computes it, in the same order of operations.

    Densities: scipy's truncated normals on the grid; tau = |l'(p)| in float32; r = [mean of
    d_noisy min(g, tau) / mean of d_clean min(g, tau)] * mean d_clean / mean d_noisy.
    """
    from scipy.stats import truncnorm

    h, g = _reference_grid(base)
    means, variances = (t.detach().cpu().double().numpy() for t in (gmm.means, gmm.variances))
    with np.errstate(all="ignore"):  # a degenerate mixture gives NaN, which the controller rejects
        scales = np.sqrt(variances)
        clean, noisy = (
            truncnorm.pdf(h, (H_MIN - mu) / sd, (H_MAX - mu) / sd, mu, sd) for mu, sd in zip(means, scales)
        )
    clean_mass, noisy_mass = clean.mean(), noisy.mean()

    def ratio(p: float) -> float:
        tau = _float32_grad(base, p)
        clipped = g > tau
        with np.errstate(all="ignore"):
            noisy_mean = np.where(clipped, noisy * tau, noisy * g).mean()
            clean_mean = np.where(clipped, clean * tau, clean * g).mean()
            return float(noisy_mean / clean_mean * clean_mass / noisy_mass)

    return ratio


def _reference_bisection(ratio: Callable[[float], float], target: float) -> float:
    """The threshold probability the reference's bisection on [P_MIN, P_MAX] returns for ``target``."""

    def cost(p: float) -> float:
        return target - ratio(p)

    lo, hi = P_MIN, P_MAX
    if cost(hi) < 0.0:  # even clipping every sample misses the target: tau = |l'(P_MAX)|
        return hi
    if cost(lo) > 0.0:  # no clipping meets it already: tau = |l'(P_MIN)|
        return lo
    for _ in range(REFERENCE_STEPS):
        mid = (lo + hi) / 2.0
        gap = cost(mid)
        if abs(gap) < REFERENCE_TOL:
            return mid
        if gap > 0.0:  # target met: try a smaller p, a larger tau
            hi = mid
        else:
            lo = mid
    return hi


def reference_tau(gmm: GMM1D, target: float, base: BaseLoss) -> tuple[float, float]:
    """(p_thr, tau) exactly as the OGC reference code searches them, for comparison with ``solve_tau``.

    Ten bisection steps on the threshold probability p in [P_MIN, P_MAX], r from ``REFERENCE_GRID``
    grid points; the upper end is returned (or a midpoint with |target - r| < 1e-7), so p moves in
    steps of about 1/1024 and tau = |l'(p)| (float32) is at most about 1024 for CE and FL and 8.0 for
    GCE (q = 0.7) unless it is |l'(P_MIN)| (no clipping).  Host NumPy/SciPy: the mixture is copied
    to the host (a sync on an accelerator, as in the reference).
    """
    p_thr = _reference_bisection(_reference_ratio(gmm, base), float(target))
    return p_thr, _float32_grad(base, p_thr)
