"""OGC's tau schedule (Algorithm 1): a queue of recent H = -log p, and every few steps a mixture fit
and a tau solve, with all state on the device and no host syncs.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

from ..registry import check_choice
from . import arrays
from .base import BaseLoss
from .mixture import GMM1D, GMM_INITS, fit_gmm_sklearn, fit_gmm_torch
from .ratio import RATIO_METHODS
from .reference import reference_tau
from .settings import OGC_DEFAULTS, OGCSettings
from .solve import solve_tau

MIN_QUEUE_VAR = 1e-10  # a queue with a smaller variance of H is degenerate (no information)
MIN_QUEUE_SIZE = 2  # the smallest queue a two-component mixture can be fitted to


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
        epsilon: float = OGC_DEFAULTS.epsilon,
        interval: int = OGC_DEFAULTS.interval,
        queue_size: int = OGC_DEFAULTS.queue_size,
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
            check_choice(name, value, allowed)
        if method == "exact" and base.exp_rate is None:
            raise ValueError(f"method='exact' is not available for base loss {base.name}; use 'grid'")
        for name, value, least in [("interval", interval, 1), ("queue_size", queue_size, MIN_QUEUE_SIZE),
                                   ("max_iter", max_iter, 1)]:
            if int(value) != value or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        if not epsilon >= 0.0:
            raise ValueError(f"epsilon must be >= 0, got {epsilon}")
        self.base, self.settings = base, OGCSettings(float(epsilon), interval, queue_size)
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
    def epsilon(self) -> float:
        """The target's slope in lr (``settings.epsilon``)."""
        return self.settings.epsilon

    @property
    def interval(self) -> int:
        """Steps between refits (``settings.interval``)."""
        return self.settings.interval

    @property
    def queue_size(self) -> int:
        """Values of H the mixture is fitted to (``settings.queue_size``)."""
        return self.settings.queue_size

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
        self.target = self.settings.target(lr)
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
        xp = arrays.backend(self.queue)
        params = xp.concat([xp.array(t) for t in (fit.means, fit.variances, fit.weights)])
        usable = (
            xp.isfinite(params).all()
            & (params[4:].min() * self.queue_size >= 1.0)  # each component holds >= 1 sample of weight
            & (xp.array(self.queue).var() > MIN_QUEUE_VAR)
            & ~xp.isnan(xp.array(tau))
        )
        keep = not usable if xp is arrays.NUMPY else ~usable  # a host bool on the CPU: a branch, no torch.where
        old = (self.tau, self.means, self.variances, self.weights)
        new = (tau, fit.means, fit.variances, fit.weights)
        if tau.dtype != self.dtype:  # the state keeps the controller's dtype (the CPU fit is float64)
            new = tuple(t.to(self.dtype) for t in new)
        ((self.tau, self.means, self.variances, self.weights),) = arrays.keep_if(keep, [old], [new])

    def _search(self, fit: GMM1D) -> Tensor:
        """tau for the fitted mixture at the current target, by ``tau_search``, as a tensor like the fit's."""
        if self.tau_search == "solve":
            return solve_tau(fit, self.target, self.base, self.method)
        _, tau = reference_tau(fit, self.target, self.base)
        return arrays.bound(tau, fit.means)

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
