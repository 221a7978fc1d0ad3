"""The two-component 1-D Gaussian mixture of H = -log p ("clean" = smaller mean, "noisy" = larger)
and its EM fit, written after scikit-learn's (kept here as the reference fit).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from types import SimpleNamespace
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ..registry import choose
from . import arrays


@dataclass(frozen=True)
class GMM1D:
    """A 2-component 1-D Gaussian mixture; index 0 has the smaller mean ("clean"), 1 is "noisy"."""

    means: Tensor
    variances: Tensor
    weights: Tensor

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> GMM1D:
        """The same mixture with its tensors moved / cast."""
        return GMM1D(*(getattr(self, f.name).to(device=device, dtype=dtype) for f in fields(self)))

    def sorted(self) -> GMM1D:
        """Components reordered so the smaller mean comes first (no host sync)."""
        order = torch.argsort(self.means)
        return GMM1D(*(getattr(self, f.name)[order] for f in fields(self)))

    def posterior(self, h: Tensor) -> Tensor:
        """P(noisy | h): the responsibility of the upper (larger-mean, "noisy") component at each value of ``h``.

        Computed from the log joint densities, so it stays defined where both densities underflow.
        """
        return torch.softmax(self._log_joint(h), dim=-1)[..., 1]

    def densities(self, h: Tensor) -> Tensor:
        """weight x normal density of each component at each value of ``h``, shape (..., 2), clean first: the two
        curves that add up to the mixture's density (for drawing it over a histogram of H)."""
        return torch.exp(self._log_joint(h))

    def _log_joint(self, h: Tensor) -> Tensor:
        """log(weight_k N(h; mean_k, variance_k)) of the sorted components at each value of ``h``, shape (..., 2)."""
        mixture = self.sorted()
        h = torch.as_tensor(h, dtype=mixture.means.dtype, device=mixture.means.device).unsqueeze(-1)
        return (torch.log(mixture.weights) - 0.5 * (LOG_2PI + torch.log(mixture.variances))
                - (h - mixture.means) ** 2 / (2.0 * mixture.variances))


def _work_dtype(x: Tensor) -> torch.dtype:
    """float64 on the CPU (cheap there, and matches scikit-learn); float32 is allowed on accelerators."""
    if x.device.type == "cpu" or x.dtype == torch.float64:
        return torch.float64
    return torch.float32


@dataclass(frozen=True)
class _Work:
    """Where a fit runs: the array backend, and the dtype and device of the tensors it returns."""

    xp: SimpleNamespace
    dtype: torch.dtype
    device: torch.device


def _as_samples(x: Tensor) -> tuple[Any, _Work]:
    """``x`` flattened to the 1-D sample vector the GMM fits, in the working dtype and backend.

    CPU tensors become NumPy arrays without a torch operation on the way: between training steps
    a torch call's first run costs tens of microseconds.
    """
    x = x.detach() if isinstance(x, Tensor) else torch.as_tensor(x)
    if x.numel() < 2:
        raise ValueError(f"a 2-component GMM needs at least 2 values, got {x.numel()}")
    work = _Work(arrays.backend(x), _work_dtype(x), x.device)
    if work.xp is arrays.NUMPY:
        return arrays.numpy_array(x).reshape(-1).astype(np.float64, copy=False), work
    return x.reshape(-1).to(work.dtype), work


Scalar = float | Tensor  # one number of the EM state: a host float on the CPU, a 0-d tensor elsewhere
Component = tuple[Scalar, Scalar, Scalar]  # (weight, mean, variance) of one mixture component
LOG_2PI = math.log(2.0 * math.pi)
LOG_2 = math.log(2.0)


def _log(v: Scalar) -> Scalar:
    """Natural log with IEEE results for host floats too (math.log raises at 0 and below)."""
    if isinstance(v, Tensor):
        return torch.log(v)
    return math.log(v) if v > 0.0 else (-math.inf if v == 0.0 else math.nan)


def _reciprocal(v: Scalar) -> Scalar:
    """1 / v with IEEE results for host floats too (Python raises on division by zero)."""
    if isinstance(v, Tensor):
        return torch.reciprocal(v)
    return 1.0 / v if v != 0.0 else math.copysign(math.inf, v)


def _kmeans_upper(x: Any, work: _Work, generator: torch.Generator | None) -> Any:
    """Hard responsibility of the upper cluster of the best 1-D 2-means split of centred ``x``.

    In 1-D the k-means clusters are contiguous in sorted order, so every split is scored at once
    with cumulative sums; this is the global optimum that Lloyd's algorithm reaches on ordinary
    bimodal data (scikit-learn's k-means init), deterministic and without restarts or iterations.
    """
    del generator  # the k-means init is deterministic
    xp = work.xp
    n = x.shape[0]
    ordered = xp.sort(x)
    left_sum = xp.cumsum(ordered)[:-1]
    left_count = xp.arange(n, x)[1:]
    # x is centred, so the right sum is -left_sum: maximise S^2 (1/n_l + 1/n_r) = n S^2 / (n_l n_r).
    between = left_sum * left_sum / (left_count * (n - left_count))
    split = ordered[xp.argmax(between).reshape(1)]  # a 1-element index array: no host sync
    return xp.cast(x > split, x)


def _random_upper(x: Any, work: _Work, generator: torch.Generator | None) -> Any:
    """Uniform random responsibilities normalised per sample (scikit-learn's ``init_params='random'``)."""
    if generator is None:
        raise ValueError("init='random' needs a torch.Generator (generator=None given)")
    resp = torch.rand(x.shape[0], 2, generator=generator, dtype=work.dtype, device=work.device)
    return work.xp.array(resp[:, 1] / resp.sum(1))


# init name -> responsibilities of the second component, from the centred samples (in the array
# backend of ``work``), where the fit runs and a generator
GMM_INITS: dict[str, Callable[[Any, _Work, torch.Generator | None], Any]] = {
    "kmeans": _kmeans_upper,
    "random": _random_upper,
}


def _m_step(moments: Any, reg_covar: float, floor: float) -> list[Component]:
    """Each component's (weight, mean, variance + reg_covar) from its moments: scikit-learn's M-step.

    ``moments`` holds (sum r, sum r x, sum r x^2) per component; ``floor`` (10 machine epsilons)
    keeps an empty component's count positive, as scikit-learn does.
    """
    counts = [count + floor for count, _, _ in moments]
    total = counts[0] + counts[1]
    components = []
    for count, (_, first, second) in zip(counts, moments):
        mean = first / count
        components.append((count / total, mean, second / count - mean * mean + reg_covar))
    return components


def _log_joint(component: Component) -> tuple[Scalar, Scalar, Scalar]:
    """(c0, c1, c2) with log w + log N(x; mean, variance) = c0 + c1 x + c2 x^2."""
    weight, mean, variance = component
    precision = _reciprocal(variance)
    constant = _log(weight) - 0.5 * (LOG_2PI + _log(variance) + mean * mean * precision)
    return constant, mean * precision, -0.5 * precision


def _em_step(
    x: Any, powers: Any, totals: Any, components: list[Component], reg_covar: float, floor: float,
    xp: SimpleNamespace,
) -> tuple[Scalar, list[Component]]:
    """One EM iteration: the mean log-likelihood under ``components`` (EM's lower bound) and the update.

    With two components everything follows from half the log-odds, u = [log(w_1 N_1) - log(w_0 N_0)]
    / 2, a quadratic in x (Horner, elementwise: a BLAS product of this shape can stall when SciPy's
    BLAS is loaded).  The responsibilities are (1 -/+ tanh u) / 2, so one product with the powers
    (1, x, x^2) gives both components' moments; log(w_0 N_0 + w_1 N_1) is the mean of the two
    log-joints (linear in the data's moments ``totals``) plus log(2 cosh u) = |u| + log 2 -
    log1p(|tanh u|), which reuses tanh u and cannot overflow.
    """
    clean, noisy = (_log_joint(component) for component in components)
    c0, c1, c2 = (0.5 * (b - a) for a, b in zip(clean, noisy))
    half = x * c2
    half += c1
    half *= x
    half += c0
    tanh_half = xp.tanh(half)
    log_cosh = xp.abs(half).sum() - xp.log1p(xp.abs(tanh_half)).sum()
    midpoint = sum(0.5 * (a + b) * total for a, b, total in zip(clean, noisy, totals))
    log_likelihood = midpoint + x.shape[0] * LOG_2 + xp.values(log_cosh)
    signed = xp.values(powers @ tanh_half)  # sum of (r_1 - r_0) x^k, k = 0, 1, 2
    moments = [[0.5 * (total + sign * s) for total, s in zip(totals, signed)] for sign in (-1.0, 1.0)]
    return log_likelihood / x.shape[0], _m_step(moments, reg_covar, floor)



def _as_gmm(components: list[Component], centre: Scalar, work: _Work) -> GMM1D:
    """The fitted components (of centred data) as a sorted ``GMM1D`` in ``work``'s dtype and device."""
    weights, means, variances = zip(*components)
    rows = (weights, tuple(mean + centre for mean in means), variances)
    if isinstance(weights[0], Tensor):
        params = torch.stack([torch.stack(row) for row in rows])
        params = params[:, torch.argsort(params[1])]
        weights, means, variances = params  # smaller mean first
    else:  # host floats (float64 CPU work): sort on the host, a NaN mean keeps the fitted order
        order = [1, 0] if rows[1][1] < rows[1][0] else [0, 1]
        weights, means, variances = (torch.from_numpy(np.array([row[i] for i in order])) for row in rows)
    return GMM1D(means, variances, weights)


def fit_gmm_torch(
    x: Tensor,
    max_iter: int = 10,
    reg_covar: float = 1e-3,
    tol: float = 1e-3,
    init: str = "kmeans",
    generator: torch.Generator | None = None,
) -> GMM1D:
    """EM for a 2-component 1-D GMM on x's device, following scikit-learn's algorithm.

    The data pass is a dozen array operations per iteration, in NumPy for CPU tensors and in torch
    on x's device otherwise (see ``arrays.backend``).  Once the lower-bound change falls below ``tol`` the
    loop stops on the CPU; on an accelerator it runs all ``max_iter`` iterations and freezes the
    parameters with ``torch.where``, which equals stopping but needs no host sync.  The data are
    centred first (the likelihood is shift-invariant) to keep float32 accurate.
    """
    upper_of = choose("GMM init", init, GMM_INITS)
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    x, work = _as_samples(x)
    xp = work.xp
    centre = xp.values(x.mean())
    x = x - centre
    powers = xp.stack([xp.ones_like(x), x, x * x])
    totals = xp.values(powers.sum(1))
    floor = 10.0 * torch.finfo(work.dtype).eps
    upper = xp.values(powers @ upper_of(x, work, generator))
    moments = [[total - u for total, u in zip(totals, upper)], upper]
    components = _m_step(moments, reg_covar, floor)
    previous: Scalar = -math.inf
    frozen: bool | Tensor = False
    with xp.quiet():
        for _ in range(max_iter):
            lower_bound, new_components = _em_step(x, powers, totals, components, reg_covar, floor, xp)
            components = arrays.keep_if(frozen, components, new_components)
            frozen = frozen | (abs(lower_bound - previous) < tol)
            previous = lower_bound
            if frozen is True:  # a host flag (CPU): stop where scikit-learn stops
                break
    return _as_gmm(components, centre, work)


def fit_gmm_sklearn(
    x: Tensor | np.ndarray,
    max_iter: int = 10,
    reg_covar: float = 1e-3,
    tol: float = 1e-3,
    seed: int = 0,
) -> GMM1D:
    """The reference fit: scikit-learn GaussianMixture(2, k-means init); float64 CPU tensors back."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.mixture import GaussianMixture

    values = x.detach().cpu().numpy() if isinstance(x, Tensor) else np.asarray(x)
    values = values.reshape(-1, 1).astype(np.float64)
    if values.shape[0] < 2:
        raise ValueError(f"a 2-component GMM needs at least 2 values, got {values.shape[0]}")
    model = GaussianMixture(
        2, max_iter=max_iter, reg_covar=reg_covar, tol=tol, init_params="kmeans", random_state=seed
    )
    with warnings.catch_warnings():  # max_iter=10 often stops before tol: expected, as in the reference
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(values)
    return GMM1D(
        torch.from_numpy(model.means_.reshape(-1).copy()),
        torch.from_numpy(model.covariances_.reshape(-1).copy()),
        torch.from_numpy(model.weights_.reshape(-1).copy()),
    ).sorted()
