"""Optimized Gradient Clipping (OGC): transformed losses, the 2-GMM, the tau solve and the controller.

Clipping the per-sample gradient |dl/dp| at tau is the same as training on a loss that follows the
base loss l(p) for p above the threshold probability p_thr (where |l'(p_thr)| = tau) and continues
along its tangent line below it.  OGC re-chooses tau every few steps: it fits a two-component
Gaussian mixture to recent values of H = -log p ("clean" = smaller mean, "noisy" = larger mean) and
takes the largest tau for which the expected clipped gradient of the noisy component is at most
1 + lr * epsilon times that of the clean one.  Everything on the training path runs on the
tensors' device with no host synchronisation (fixed iteration counts, ``torch.where`` instead of
branches on tensor values); scikit-learn is kept only as the reference GMM.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass, fields
from types import SimpleNamespace
from typing import Any

import numpy as np
import scipy.special
import torch
import torch.distributed as dist
from torch import Tensor, nn

P_MIN = 1e-7
P_MAX = 1.0 - 1e-7
H_MIN = -math.log(P_MAX)  # smallest H = -log p after clamping (about 1e-7)
H_MAX = -math.log(P_MIN)  # largest H = -log p after clamping (about 16.118)

SOLVE_POINTS = 62  # interior points per round of the tau search (a round's cost is mostly per call)
# Rounds of the tau search: the last bracket is (log g range) / 63**3, 6.4e-5 in log tau for CE.  With
# the curvature-corrected interpolation r(tau) meets the target to ~4e-12 relative (closed form, 2000
# random mixtures with variances down to 1e-3); two rounds left up to 1e-6 on narrow mixtures.
SOLVE_ROUNDS = 3
MIN_QUEUE_VAR = 1e-10  # a queue with a smaller variance of H is degenerate (no information)

TauLike = float | Tensor


# ----------------------------------------------------------------------------------------------
# Base losses in p and the transformed loss
# ----------------------------------------------------------------------------------------------


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
    try:
        factory = BASE_LOSSES[name.lower()]
    except KeyError:
        raise ValueError(f"unknown base loss {name!r}; known: {', '.join(BASE_LOSSES)}") from None
    allowed = set(inspect.signature(factory).parameters)
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(
            f"unknown parameter(s) {sorted(unknown)} for base loss {name!r}; "
            f"allowed: {sorted(allowed) or 'none'}"
        )
    return factory(**params)


def check_batch(logits: Tensor, targets: Tensor, num_classes: int | None) -> None:
    """Every loss's input check: logits (batch, K) with K = ``num_classes`` when known, targets (batch,)."""
    if logits.ndim != 2 or (num_classes is not None and logits.shape[1] != num_classes):
        wanted = f"(batch, {num_classes})" if num_classes is not None else "(batch, classes)"
        raise ValueError(f"logits must be {wanted}, got shape {tuple(logits.shape)}")
    if targets.shape != logits.shape[:1]:
        raise ValueError(f"targets must have shape ({logits.shape[0]},), got {tuple(targets.shape)}")


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
    raise ValueError(f"unknown reduction {reduction!r}; allowed: 'mean', 'sum', 'none'")


# ----------------------------------------------------------------------------------------------
# Array backend of the GMM fit, r(tau), the tau solve and the refit checks
# ----------------------------------------------------------------------------------------------

# These are written once against a small array namespace: NumPy/SciPy for CPU tensors, where a call
# on up to a few thousand values costs ~0.5-1 us against ~1.5-3 us for torch (tens of us for a
# torch call between training steps, when the caches are cold; NumPy's sort is ~10x faster), and
# torch elsewhere, which keeps everything on the device.  The per-component EM arithmetic runs on
# host floats with NumPy and on 0-d tensors with torch (``values``).


def _np_clip(v: Any, lo: Any, hi: Any) -> Any:
    """np.clip without its wrapper (~2 us a call); a ``None`` bound is no bound."""
    if lo is not None:
        v = np.maximum(v, lo)
    return v if hi is None else np.minimum(v, hi)


def _np_array(t: Tensor) -> Any:
    """A CPU tensor's values as a NumPy array: a view, but bfloat16 (which NumPy lacks) widened."""
    t = t.detach()
    return (t.double() if t.dtype == torch.bfloat16 else t).numpy()


def _np_asarray(value: Any, like: Tensor) -> Any:
    """``value`` (a number, array or CPU tensor) as a NumPy array of CPU tensor ``like``'s dtype, no torch op."""
    return np.asarray(_np_array(value) if isinstance(value, Tensor) else value, dtype=_np_array(like).dtype)


_NUMPY = SimpleNamespace(
    array=_np_array,
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
_TORCH = SimpleNamespace(
    array=lambda t: t,
    tensor=lambda value, like: value,
    asarray=lambda value, like: _bound(value, like),
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


def _backend(like: Tensor) -> SimpleNamespace:
    """The array backend for tensors like ``like``: NumPy on the CPU (no device there), else torch."""
    return _NUMPY if like.device.type == "cpu" else _TORCH


# ----------------------------------------------------------------------------------------------
# Two-component 1-D Gaussian mixture
# ----------------------------------------------------------------------------------------------


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
    work = _Work(_backend(x), _work_dtype(x), x.device)
    if work.xp is _NUMPY:
        return _np_array(x).reshape(-1).astype(np.float64, copy=False), work
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


def _keep_if(frozen: bool | Tensor, old: list[tuple[Any, ...]], new: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """``old`` where ``frozen`` else ``new``: a host branch for a host flag, ``torch.where`` for a tensor."""
    if isinstance(frozen, bool):
        return old if frozen else new
    return [tuple(torch.where(frozen, a, b) for a, b in zip(*pair)) for pair in zip(old, new)]


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
    on x's device otherwise (see ``_backend``).  Once the lower-bound change falls below ``tol`` the
    loop stops on the CPU; on an accelerator it runs all ``max_iter`` iterations and freezes the
    parameters with ``torch.where``, which equals stopping but needs no host sync.  The data are
    centred first (the likelihood is shift-invariant) to keep float32 accurate.
    """
    if init not in GMM_INITS:
        raise ValueError(f"unknown GMM init {init!r}; allowed: {', '.join(GMM_INITS)}")
    if max_iter < 1:
        raise ValueError(f"max_iter must be >= 1, got {max_iter}")
    x, work = _as_samples(x)
    xp = work.xp
    centre = xp.values(x.mean())
    x = x - centre
    powers = xp.stack([xp.ones_like(x), x, x * x])
    totals = xp.values(powers.sum(1))
    floor = 10.0 * torch.finfo(work.dtype).eps
    upper = xp.values(powers @ GMM_INITS[init](x, work, generator))
    moments = [[total - u for total, u in zip(totals, upper)], upper]
    components = _m_step(moments, reg_covar, floor)
    previous: Scalar = -math.inf
    frozen: bool | Tensor = False
    with xp.quiet():
        for _ in range(max_iter):
            lower_bound, new_components = _em_step(x, powers, totals, components, reg_covar, floor, xp)
            components = _keep_if(frozen, components, new_components)
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


# ----------------------------------------------------------------------------------------------
# r(tau): ratio of expected clipped gradients, noisy over clean
# ----------------------------------------------------------------------------------------------


def _log_ndtr_diff(lo: Any, hi: Any, xp: SimpleNamespace) -> Any:
    """log(Phi(hi) - Phi(lo)) for lo <= hi, from the lower tail or the mirrored upper tail.

    ``hi`` a rounding error below ``lo`` counts as an empty interval (-inf), not NaN.
    """
    upper = lo > 0
    log_hi = xp.log_ndtr(xp.where(upper, -lo, hi))
    log_lo = xp.log_ndtr(xp.where(upper, -hi, lo))
    return log_hi + xp.log(-xp.expm1(xp.clip(log_lo - log_hi, None, 0.0)))


def _bound(value: TauLike, like: Tensor) -> Tensor:
    """A float or tensor as a tensor with ``like``'s dtype and device.

    A float becomes ``torch.full`` on the device (a fill kernel): building a tensor from a host value
    (``torch.tensor``/``as_tensor``) is a host-to-device copy, which synchronises on CUDA.
    """
    if isinstance(value, Tensor):
        return value.to(device=like.device, dtype=like.dtype)
    return torch.full((), value, dtype=like.dtype, device=like.device)


LogRatio = Callable[[Any], Any]  # r as a function of log tau, vectorised, in the gmm's array backend


def _exact_ratio_of_log_tau(gmm: GMM1D, k: float, h_lo: float, h_hi: float) -> LogRatio:
    """Closed-form r(log tau) for g(H) = exp(k H); the tau-independent terms are computed once.

    E[min(e^{kH}, tau)] over N(mu, s^2) truncated to [a, c], with h_t = log(tau)/k clamped to [a, c],
    is U(tau) / M, M the truncation mass and U(tau) =
    exp(k mu + k^2 s^2/2) [Phi((h_t-mu)/s - ks) - Phi((a-mu-ks^2)/s)] + tau [Phi((c-mu)/s) - Phi((h_t-mu)/s)].
    U(g(a)) = g(a) M, so r(tau) = [U_n(tau) / U_c(tau)] / [U_n(g(a)) / U_c(g(a))]: each call also
    evaluates U at g(a) instead of computing the masses apart.  Sums in log space (no overflow).
    """
    xp = _backend(gmm.means)
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
    xp = _backend(h)
    return xp.array(h), xp.array(base.grad_of_h(h))


def _grid_ratio_of_log_tau(gmm: GMM1D, base: BaseLoss, h_lo: float, h_hi: float, n_grid: int) -> LogRatio:
    """r(log tau) on ``n_grid`` equally spaced H values, densities computed once (the reference's way)."""
    xp = _backend(gmm.means)
    h, g = _grid_of_h(base, h_lo, h_hi, n_grid, gmm.means.dtype, gmm.means.device)
    mu, var = xp.array(gmm.means), xp.array(gmm.variances)
    density = xp.softmax0(-0.5 * (h[:, None] - mu) ** 2 / var)  # truncated, grid-normalised

    def ratio(log_tau: Any) -> Any:
        means = xp.minimum(g, xp.exp(log_tau)[..., None]) @ density
        return means[..., 1] / means[..., 0]

    return ratio


def _ratio_at(build: Callable[[], LogRatio], tau: TauLike, gmm: GMM1D) -> Tensor:
    """r(tau) as a tensor like the mixture's, from a ratio builder run in the mixture's backend."""
    xp = _backend(gmm.means)
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
    tensors (see ``_backend``).
    """
    if method not in RATIO_METHODS:
        raise ValueError(f"unknown ratio method {method!r}; allowed: {', '.join(RATIO_METHODS)}")
    xp = _backend(gmm.means)
    log_lo, log_hi = _log_grad_range(base, h_lo, h_hi)
    target_t = xp.asarray(target, gmm.means)
    with xp.quiet():
        ratio = RATIO_METHODS[method](gmm, base, h_lo, h_hi, n_grid)
        log_tau, ends = _crossing(ratio, log_lo, log_hi, target_t, xp)
        tau = xp.exp(xp.where(ends[0] > target_t, log_lo, log_tau))
        tau = xp.where(ends[1] <= target_t, math.inf, tau)
        tau = xp.where(xp.isnan(ends).any(), math.nan, tau)
    return xp.tensor(tau, gmm.means)


# ----------------------------------------------------------------------------------------------
# The reference code's tau search (tau_search="reference")
# ----------------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------------
# The threshold controller (Algorithm 1) and the OGC loss module
# ----------------------------------------------------------------------------------------------


def _fit_with_torch(x: Tensor, ctrl: ThresholdController) -> GMM1D:
    return fit_gmm_torch(x, ctrl.max_iter, ctrl.reg_covar, ctrl.tol, ctrl.init, ctrl.generator)


def _fit_with_sklearn(x: Tensor, ctrl: ThresholdController) -> GMM1D:
    return fit_gmm_sklearn(x, ctrl.max_iter, ctrl.reg_covar, ctrl.tol, ctrl.seed).to(x.device, x.dtype)


GMM_FITTERS: dict[str, Callable[[Tensor, ThresholdController], GMM1D]] = {
    "torch": _fit_with_torch,
    "sklearn": _fit_with_sklearn,
}

_STATE_TENSORS = ("queue", "tau", "means", "variances", "weights")
# "solve": the largest tau with r(tau) <= target to machine precision (``solve_tau``, r by ``method``);
# "reference": the reference code's capped, quantised bisection (``reference_tau``)
TAU_SEARCHES = ("solve", "reference")


class ThresholdController:
    """OGC's tau schedule: a FIFO queue of H = -log p and a refit every ``interval`` steps.

    Step t (counted from 1) pushes the batch's H; if t is a multiple of ``interval`` and the queue is
    full it fits the 2-GMM and solves for the largest tau with r(tau) <= 1 + lr * epsilon; the loss
    of step t then uses the tau after that update (as the reference does: push, maybe refit, loss).
    Degenerate queues (variance ~0, a component with less than one sample of weight, non-finite
    fit) keep the previous tau and mixture.  Start: tau = inf (no clipping).  All tensor state lives
    on ``device``; step and fill counters live on the host, so ``update`` never syncs (with
    ``gmm='torch'``; the scikit-learn reference path copies the queue to the host).
    ``tau_search='reference'`` replaces the exact solve by the reference code's bisection
    (``reference_tau``: capped, quantised in p, and a host copy of the mixture per refit), so the
    two can be compared on the same training run.
    """

    def __init__(
        self,
        base: BaseLoss,
        epsilon: float = 20.0,
        interval: int = 32,
        queue_size: int = 4096,
        method: str | None = None,
        tau_search: str = "solve",
        gmm: str = "torch",
        max_iter: int = 10,
        reg_covar: float = 1e-3,
        tol: float = 1e-3,
        init: str = "kmeans",
        seed: int = 0,
        device: torch.device | str | None = None,
        dtype: torch.dtype | None = None,
        distributed: bool = False,
    ) -> None:
        if tau_search == "reference" and method is not None:
            raise ValueError(f"method={method!r} applies to tau_search='solve' only; 'reference' has its own r")
        method = method or ("exact" if base.exp_rate is not None else "grid")
        checks = {
            "method": (method, RATIO_METHODS),
            "tau_search": (tau_search, TAU_SEARCHES),
            "gmm": (gmm, GMM_FITTERS),
            "init": (init, GMM_INITS),
        }
        for name, (value, allowed) in checks.items():
            if value not in allowed:
                raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")
        if method == "exact" and base.exp_rate is None:
            raise ValueError(f"method='exact' is not available for base loss {base.name}; use 'grid'")
        for name, value in {"interval": interval, "queue_size": queue_size, "max_iter": max_iter}.items():
            if int(value) != value or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not epsilon >= 0.0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        self.base, self.epsilon, self.interval, self.queue_size = base, float(epsilon), interval, queue_size
        self.method, self.tau_search, self.gmm, self.init, self.seed = method, tau_search, gmm, init, seed
        self.max_iter, self.reg_covar, self.tol = max_iter, reg_covar, tol
        self.distributed = distributed
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype or (torch.float64 if self.device.type == "cpu" else torch.float32)
        self.step = 0  # updates so far
        self.pushed = 0  # H values pushed so far (the write position is pushed % queue_size)
        self.refits = 0  # refit attempts (degenerate ones included)
        self.target = math.nan  # last 1 + lr * epsilon
        self._init_tensors()

    def _init_tensors(self) -> None:
        """Fresh device state: empty queue, tau = inf, an unknown (NaN) mixture, a seeded generator."""
        options = {"dtype": self.dtype, "device": self.device}
        self.queue = torch.full((self.queue_size,), math.nan, **options)
        self.tau = torch.full((), math.inf, **options)
        self.means, self.variances, self.weights = (torch.full((2,), math.nan, **options) for _ in range(3))
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)

    @property
    def fill(self) -> int:
        """How many queue slots hold values."""
        return min(self.pushed, self.queue_size)

    @property
    def last_gmm(self) -> GMM1D:
        """The mixture behind the current tau (NaN before the first accepted fit)."""
        return GMM1D(self.means, self.variances, self.weights)

    def to(self, device: torch.device | str) -> ThresholdController:
        """Move the state to ``device``; a generator on another device type is re-seeded with ``seed``."""
        device = torch.device(device)
        if device == self.device:
            return self
        for name in _STATE_TENSORS:
            setattr(self, name, getattr(self, name).to(device))
        old_state = self.generator.get_state()
        self.generator = torch.Generator(device=device).manual_seed(self.seed)
        if device.type == self.device.type:
            self.generator.set_state(old_state)
        self.device = device
        return self

    def _gather(self, h: Tensor) -> Tensor:
        """All ranks' H (equal batch sizes assumed) when distributed, so every queue is identical."""
        if not (self.distributed and dist.is_available() and dist.is_initialized()):
            return h
        parts = [torch.empty_like(h) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, h.contiguous())
        return torch.cat(parts)

    def push(self, h: Tensor) -> None:
        """Append H values to the ring buffer (only the last ``queue_size`` of a large batch fit)."""
        h = h.detach().reshape(-1).to(device=self.device, dtype=self.dtype)
        n, size = h.numel(), self.queue_size
        kept = h[n - min(n, size) :]
        start = (self.pushed + n - kept.numel()) % size
        first = min(kept.numel(), size - start)
        self.queue[start : start + first] = kept[:first]
        self.queue[: kept.numel() - first] = kept[first:]
        self.pushed += n

    def update(self, h: Tensor, lr: float) -> Tensor:
        """Push this step's H and refit if due; returns the tau the loss of this step should use."""
        if not (math.isfinite(lr) and lr >= 0.0):
            raise ValueError(f"lr must be a finite number >= 0, got {lr!r}")
        self.push(self._gather(h))
        self.step += 1
        self.target = 1.0 + lr * self.epsilon
        if self.step % self.interval == 0 and self.pushed >= self.queue_size:
            self._refit()
        return self.tau

    def _refit(self) -> None:
        """Fit the mixture and solve for tau; keep the previous values where the fit is degenerate.

        The checks run in the queue's array backend (on the CPU a host bool: reading it is no sync).
        """
        self.refits += 1
        fit = GMM_FITTERS[self.gmm](self.queue, self)
        tau = self._search(fit)
        xp = _backend(self.queue)
        params = xp.concat([xp.array(t) for t in (fit.means, fit.variances, fit.weights)])
        usable = (
            xp.isfinite(params).all()
            & (params[4:].min() * self.queue_size >= 1.0)  # each component holds >= 1 sample of weight
            & (xp.array(self.queue).var() > MIN_QUEUE_VAR)
            & ~xp.isnan(xp.array(tau))
        )
        keep = not usable if xp is _NUMPY else ~usable  # a host bool on the CPU: a branch, no torch.where
        old = (self.tau, self.means, self.variances, self.weights)
        new = (tau, fit.means, fit.variances, fit.weights)
        if tau.dtype != self.dtype:  # the state keeps the controller's dtype (the CPU fit is float64)
            new = tuple(t.to(self.dtype) for t in new)
        ((self.tau, self.means, self.variances, self.weights),) = _keep_if(keep, [old], [new])

    def _search(self, fit: GMM1D) -> Tensor:
        """tau for the fitted mixture at the current target, by ``tau_search``, as a tensor like the fit's."""
        if self.tau_search == "solve":
            return solve_tau(fit, self.target, self.base, self.method)
        _, tau = reference_tau(fit, self.target, self.base)
        return _bound(tau, fit.means)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit-identically: queue, counters, tau, mixture, generator."""
        state: dict[str, Any] = {name: getattr(self, name).clone() for name in _STATE_TENSORS}
        state.update(
            step=self.step,
            pushed=self.pushed,
            refits=self.refits,
            target=self.target,
            generator_state=self.generator.get_state(),
            generator_device=self.device.type,
        )
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict()`` output onto this controller's device."""
        if state["queue"].numel() != self.queue_size:
            raise ValueError(
                f"state has a queue of {state['queue'].numel()} values, this controller {self.queue_size}"
            )
        for name in _STATE_TENSORS:
            setattr(self, name, state[name].to(device=self.device, dtype=self.dtype).clone())
        self.step, self.pushed, self.refits = int(state["step"]), int(state["pushed"]), int(state["refits"])
        self.target = float(state["target"])
        self.generator = torch.Generator(device=self.device).manual_seed(self.seed)
        if state["generator_device"] == self.device.type:
            self.generator.set_state(state["generator_state"])

    def state_nbytes(self) -> int:
        """Bytes of device state (O(queue_size))."""
        return sum(getattr(self, name).nbytes for name in _STATE_TENSORS) + self.generator.get_state().nbytes

    def diagnostics(self) -> dict[str, float]:
        """Host copies of tau, target, mixture and counters; syncs, so call it only when logging."""
        gmm = self.last_gmm.to("cpu", torch.float64)
        out = {"tau": float(self.tau), "target": self.target, "refits": float(self.refits)}
        out.update(step=float(self.step), queue_fill=float(self.fill))
        for name in ("means", "variances", "weights"):
            values = getattr(gmm, name).tolist()
            out[f"{name}_clean"], out[f"{name}_noisy"] = values
        return out


_CONTROLLER_PARAMS = frozenset(inspect.signature(ThresholdController).parameters) - {"base"}


class OGCLoss(nn.Module):
    """The OGC loss: base loss clipped at a tau that a ``ThresholdController`` re-chooses on the fly.

    ``forward(logits, targets, lr)`` pushes the batch's H = -log p (detached), updates tau and returns
    the transformed loss at that tau.  ``state_dict()`` carries the controller (extra state).  The
    controller follows the logits' device.  ``validate=True`` checks logits for NaN/inf, which syncs:
    set it False on the fast accelerator path.
    """

    def __init__(
        self,
        base: str = "ce",
        epsilon: float = 20.0,
        interval: int = 32,
        queue_size: int = 4096,
        reduction: str = "mean",
        validate: bool = True,
        num_classes: int | None = None,
        **params: Any,
    ) -> None:
        super().__init__()
        reduce_loss(torch.zeros(1), reduction)  # validates the name early
        controller_params = {k: v for k, v in params.items() if k in _CONTROLLER_PARAMS}
        base_params = {k: v for k, v in params.items() if k not in _CONTROLLER_PARAMS}
        self.base = base_loss(base, **base_params)
        self.controller = ThresholdController(
            self.base, epsilon=epsilon, interval=interval, queue_size=queue_size, **controller_params
        )
        self.reduction, self.validate, self.num_classes = reduction, validate, num_classes
        self._threshold: tuple[Tensor, Threshold] | None = None  # (tau it was built for, threshold)
        self._last_clipped: Tensor | None = None

    @property
    def tau(self) -> Tensor:
        """The current threshold (0-d tensor; ``inf`` means no clipping)."""
        return self.controller.tau

    @property
    def last_clipped_fraction(self) -> Tensor:
        """Fraction of the last batch that was clipped (0-d tensor; 0 before the first step)."""
        if self._last_clipped is None:
            return torch.zeros((), device=self.controller.device)
        return self._last_clipped.float().mean()

    def forward(self, logits: Tensor, targets: Tensor, lr: float | None = None) -> Tensor:
        """Push H, update tau (step t uses the tau after its own update), return the clipped loss."""
        if lr is None:
            raise ValueError("OGCLoss needs the current learning rate: call loss(logits, targets, lr=...)")
        check_batch(logits, targets, self.num_classes)
        if self.validate and not bool(torch.isfinite(logits).all()):
            raise ValueError("OGCLoss got NaN or inf logits")
        self.controller.to(logits.device)
        logp = label_log_prob(logits, targets).clamp(math.log(P_MIN), math.log(P_MAX))
        tau = self.controller.update(-logp.detach(), lr)
        p = logp.exp()
        loss, self._last_clipped = self._threshold_at(tau, p).apply(p, self._base_value(p, logp))
        return reduce_loss(loss, self.reduction)

    def _threshold_at(self, tau: Tensor, like: Tensor) -> Threshold:
        """The clipping point for ``tau``, rebuilt only when the controller's tau tensor changes (refits)."""
        cached = self._threshold
        if cached is None or cached[0] is not tau or cached[1].tau.dtype != like.dtype:
            self._threshold = cached = (tau, Threshold.of(tau, self.base, like))
        return cached[1]

    def _base_value(self, p: Tensor, logp: Tensor) -> Tensor:
        """l(p), from the log-probability where the base loss allows it (CE: one op fewer, exact)."""
        return self.base.value(p) if self.base.value_of_log_p is None else self.base.value_of_log_p(logp)

    def diagnostics(self) -> dict[str, float]:
        """Controller diagnostics plus the clipped fraction of the last batch (host values)."""
        return {**self.controller.diagnostics(), "clipped_fraction": float(self.last_clipped_fraction)}

    def _apply(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> OGCLoss:
        """``module.to(device)`` / ``.cuda()`` also move the controller (its dtype stays its own)."""
        super()._apply(fn, *args, **kwargs)
        self.controller.to(fn(torch.zeros(())).device)
        self._last_clipped = None
        return self

    def get_extra_state(self) -> dict[str, Any]:
        return self.controller.state_dict()

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.controller.load_state_dict(state)
