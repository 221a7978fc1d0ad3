"""r(tau): the expected clipped gradient of the noisy component over the clean one's, for a fitted
mixture, in closed form (|l'| = exp(k H)) or on a grid of H (any base loss, the reference's way).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import torch
from torch import Tensor

from . import arrays
from .base import H_MAX, H_MIN, BaseLoss, TauLike
from .mixture import GMM1D


def _log_ndtr_diff(lo: Any, hi: Any, xp: SimpleNamespace) -> Any:
    """log(Phi(hi) - Phi(lo)) for lo <= hi, from the lower tail or the mirrored upper tail.

    ``hi`` a rounding error below ``lo`` counts as an empty interval (-inf), not NaN.
    """
    upper = lo > 0
    log_hi = xp.log_ndtr(xp.where(upper, -lo, hi))
    log_lo = xp.log_ndtr(xp.where(upper, -hi, lo))
    return log_hi + xp.log(-xp.expm1(xp.clip(log_lo - log_hi, None, 0.0)))


LogRatio = Callable[[Any], Any]  # r as a function of log tau, vectorised, in the gmm's array backend


def _exact_ratio_of_log_tau(gmm: GMM1D, k: float, h_lo: float, h_hi: float) -> LogRatio:
    """Closed-form r(log tau) for g(H) = exp(k H); the tau-independent terms are computed once.

    E[min(e^{kH}, tau)] over N(mu, s^2) truncated to [a, c], with h_t = log(tau)/k clamped to [a, c],
    is U(tau) / M, M the truncation mass and U(tau) =
    exp(k mu + k^2 s^2/2) [Phi((h_t-mu)/s - ks) - Phi((a-mu-ks^2)/s)] + tau [Phi((c-mu)/s) - Phi((h_t-mu)/s)].
    U(g(a)) = g(a) M, so r(tau) = [U_n(tau) / U_c(tau)] / [U_n(g(a)) / U_c(g(a))]: each call also
    evaluates U at g(a) instead of computing the masses apart.  Sums in log space (no overflow).
    """
    xp = arrays.backend(gmm.means)
    mu, var = xp.array(gmm.means), xp.array(gmm.variances)
    a, c = xp.asarray(h_lo, gmm.means), xp.asarray(h_hi, gmm.means)
    s = xp.sqrt(var)
    inv_s = 1.0 / s
    shift = -mu * inv_s  # z = shift + h * inv_s standardises h
    alpha = (a - mu - k * var) * inv_s
    beta = (c - mu) * inv_s
    ks = k * s
    log_scale = k * mu + 0.5 * k * k * var
    left, right = (k * a).reshape(1), k * c  # log g(a) and log g(c)
    # Terms are laid out (2, points, components): row 0 the e^{kH} part, row 1 the tau part.
    first_row = (xp.arange(2, mu) == 0).reshape(2, 1, 1)

    def ratio(log_tau: Any) -> Any:
        y = xp.minimum(xp.concat([left, log_tau.reshape(-1)]), right)[:, None]  # beyond g(c): no clipping
        z = shift + xp.clip(y / k, a, c) * inv_s  # (1 + points, 2)
        lo = xp.where(first_row, alpha, z)
        hi = xp.where(first_row, z - ks, beta)
        parts = _log_ndtr_diff(lo, hi, xp) + xp.where(first_row, log_scale, y)
        log_u = xp.logaddexp(parts[0], parts[1])
        log_r = log_u[:, 1] - log_u[:, 0]  # log U_noisy - log U_clean
        return xp.exp(log_r[1:] - log_r[0]).reshape(log_tau.shape)

    return ratio


@functools.lru_cache(maxsize=64)
def _grid_of_h(
    base: BaseLoss, h_lo: float, h_hi: float, n_grid: int, dtype: torch.dtype, device: torch.device
) -> tuple[Any, Any]:
    """``n_grid`` equally spaced H in [h_lo, h_hi] and |l'| there, in the device's array backend.

    The same for every refit, so built once per loss, range, size, dtype and device.
    """
    h = h_lo + (h_hi - h_lo) * torch.linspace(0.0, 1.0, n_grid, dtype=dtype, device=device)
    xp = arrays.backend(h)
    return xp.array(h), xp.array(base.grad_of_h(h))


def _grid_ratio_of_log_tau(gmm: GMM1D, base: BaseLoss, h_lo: float, h_hi: float, n_grid: int) -> LogRatio:
    """r(log tau) on ``n_grid`` equally spaced H values, densities computed once (the reference's way)."""
    xp = arrays.backend(gmm.means)
    h, g = _grid_of_h(base, h_lo, h_hi, n_grid, gmm.means.dtype, gmm.means.device)
    mu, var = xp.array(gmm.means), xp.array(gmm.variances)
    density = xp.softmax0(-0.5 * (h[:, None] - mu) ** 2 / var)  # truncated, grid-normalised

    def ratio(log_tau: Any) -> Any:
        means = xp.minimum(g, xp.exp(log_tau)[..., None]) @ density
        return means[..., 1] / means[..., 0]

    return ratio


def _ratio_at(build: Callable[[], LogRatio], tau: TauLike, gmm: GMM1D) -> Tensor:
    """r(tau) as a tensor like the mixture's, from a ratio builder run in the mixture's backend."""
    xp = arrays.backend(gmm.means)
    with xp.quiet():
        r = build()(xp.log(xp.asarray(tau, gmm.means)))
    return xp.tensor(r, gmm.means)


def ratio_exact(tau: TauLike, gmm: GMM1D, k: float, h_lo: float = H_MIN, h_hi: float = H_MAX) -> Tensor:
    """r(tau) in closed form for g(H) = exp(k H) (CE: k = 1, GCE: k = 1 - q), any shape of ``tau``."""
    return _ratio_at(lambda: _exact_ratio_of_log_tau(gmm, k, h_lo, h_hi), tau, gmm)


def ratio_grid(
    tau: TauLike,
    gmm: GMM1D,
    base: BaseLoss,
    h_lo: float = H_MIN,
    h_hi: float = H_MAX,
    n_grid: int = 1000,
) -> Tensor:
    """r(tau) as the reference computes it: truncated normal densities on an n_grid-point H grid."""
    return _ratio_at(lambda: _grid_ratio_of_log_tau(gmm, base, h_lo, h_hi, n_grid), tau, gmm)


def _exact_method(gmm: GMM1D, base: BaseLoss, h_lo: float, h_hi: float, n_grid: int) -> LogRatio:
    del n_grid  # the closed form needs no grid
    if base.exp_rate is None:
        raise ValueError(f"method='exact' needs |l'| = exp(kH); base loss {base.name} has none: use 'grid'")
    return _exact_ratio_of_log_tau(gmm, base.exp_rate, h_lo, h_hi)


RATIO_METHODS: dict[str, Callable[[GMM1D, BaseLoss, float, float, int], LogRatio]] = {
    "exact": _exact_method,
    "grid": _grid_ratio_of_log_tau,
}
