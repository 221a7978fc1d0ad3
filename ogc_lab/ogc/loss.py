"""``OGCLoss``, the nn.Module: the base loss clipped at the tau a ``ThresholdController`` re-chooses
on the fly, with the controller saved in the module's state_dict.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from ..registry import check_choice
from .base import P_MAX, P_MIN, base_loss
from .controller import ThresholdController
from .settings import OGC_DEFAULTS
from .transformed import REDUCTIONS, Threshold, check_batch, label_log_prob, reduce_loss

_CONTROLLER_PARAMS = frozenset(inspect.signature(ThresholdController).parameters) - {"base"}
EXTRA_STATE_KEY = "_extra_state"  # where nn.Module.state_dict() puts get_extra_state() of the module itself


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
        epsilon: float = OGC_DEFAULTS.epsilon,
        interval: int = OGC_DEFAULTS.interval,
        queue_size: int = OGC_DEFAULTS.queue_size,
        reduction: str = "mean",
        validate: bool = True,
        num_classes: int | None = None,
        **params: Any,
    ) -> None:
        super().__init__()
        check_choice("reduction", reduction, REDUCTIONS)
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
    def target(self) -> float:
        """The noisy/clean gradient ratio the current tau was solved for, 1 + lr * epsilon (NaN before any step)."""
        return self.controller.target

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

    @staticmethod
    def controller_state(loss_state: Mapping[str, Any]) -> dict[str, Any] | None:
        """The ``ThresholdController.state_dict()`` inside a saved ``OGCLoss.state_dict()``; None for other losses.

        Reads a checkpoint's OGC state (queue, tau, target, step, mixture) without building the loss.
        """
        state = loss_state.get(EXTRA_STATE_KEY)
        return state if isinstance(state, dict) and "queue" in state else None
