"""What a config names for optimisation: the loss as trained, the optimisers, the lr schedules, and the one
training step.

One registry each, so the config check (``recipes``, through ``check_optimizer`` and ``check_schedule``), the
trainer, the toy task and the cost measurements build the same objects from the same names; ``train_step`` is
the step the trainer, the cost measurements and every benchmark take.  This module reads a config through
``RunSettings`` (what ``recipes.Config`` offers) and does not import ``recipes``, which imports it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from .hardware import autocast
from .losses import make_loss
from .registry import check_choice


class RunSettings(Protocol):
    """The fields of a run's config that this module reads (``recipes.Config`` has them all)."""

    loss: str
    optimizer: str
    lr: float
    momentum: float
    nesterov: bool
    weight_decay: float
    schedule: str
    epochs: int
    milestones: tuple[int, ...]
    gamma: float
    warmup_epochs: int

    @property
    def is_ogc(self) -> bool: ...

    def loss_kwargs(self) -> dict[str, Any]: ...


def build_loss(config: RunSettings, num_classes: int, distributed: bool = False) -> nn.Module:
    """The loss of ``config`` as the trainer runs it: OGC skips the per-step NaN sync and, when
    ``distributed``, shares its queue across ranks."""
    kwargs = config.loss_kwargs()
    if config.is_ogc:
        kwargs.setdefault("validate", False)  # the trainer checks the loss once an epoch instead
        if distributed:
            kwargs["distributed"] = True
    return make_loss(config.loss, num_classes, **kwargs)


def fused_options(optimizer: type[torch.optim.Optimizer], device: torch.device) -> dict[str, bool]:
    """``fused=True`` on CUDA where this torch's ``optimizer`` has a fused kernel (one launch a step), else nothing."""
    return {"fused": True} if device.type == "cuda" and "fused" in inspect.signature(optimizer).parameters else {}


def _sgd(params: Iterable[nn.Parameter], lr: float, momentum: float, weight_decay: float, nesterov: bool,
         device: torch.device) -> torch.optim.Optimizer:
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay, nesterov=nesterov,
                           **fused_options(torch.optim.SGD, device))


def _adam(params: Iterable[nn.Parameter], lr: float, momentum: float, weight_decay: float, nesterov: bool,
          device: torch.device) -> torch.optim.Optimizer:
    """Adam with torch's betas; ``momentum`` and ``nesterov`` are SGD's and do not apply."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


# name -> optimiser from (parameters, lr, momentum, weight_decay, nesterov, device)
OPTIMIZERS: dict[str, Callable[..., torch.optim.Optimizer]] = {"sgd": _sgd, "adam": _adam}


def check_optimizer(name: str) -> None:
    """Raise ``registry.unknown``'s ValueError unless ``name`` is one of ``OPTIMIZERS``."""
    check_choice("optimizer", name, OPTIMIZERS)


def make_optimizer(params: Iterable[nn.Parameter], config: RunSettings, device: torch.device) -> torch.optim.Optimizer:
    """The optimiser ``config.optimizer`` over ``params`` with the config's lr, momentum and weight decay."""
    return OPTIMIZERS[config.optimizer](params, config.lr, config.momentum, config.weight_decay, config.nesterov,
                                        device)


def linear_factor(epoch: int, epochs: int, warmup: int) -> float:
    """The lr multiplier of ``epoch`` (0-based) under the "linear" schedule: up in ``warmup`` equal steps to 1
    at epoch ``warmup``, then down in equal steps to ``1 / (epochs - warmup)`` in the last epoch."""
    if epoch < warmup:
        return (epoch + 1) / (warmup + 1)
    return max(epochs - epoch, 1) / (epochs - warmup)


def _linear(opt: torch.optim.Optimizer, c: RunSettings) -> torch.optim.lr_scheduler.LRScheduler:
    """Piecewise-linear warm-up and decay (the fast-CIFAR schedule), one value an epoch."""
    return torch.optim.lr_scheduler.LambdaLR(opt, lambda e: linear_factor(e, c.epochs, c.warmup_epochs))


SCHEDULERS: dict[str, Callable[[torch.optim.Optimizer, RunSettings], torch.optim.lr_scheduler.LRScheduler]] = {
    "multistep": lambda opt, c: torch.optim.lr_scheduler.MultiStepLR(opt, list(c.milestones), c.gamma),
    "cosine": lambda opt, c: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=c.epochs),
    "constant": lambda opt, c: torch.optim.lr_scheduler.MultiStepLR(opt, [], 1.0),
    "linear": _linear,
}


def check_schedule(name: str) -> None:
    """Raise ``registry.unknown``'s ValueError unless ``name`` is one of ``SCHEDULERS``."""
    check_choice("schedule", name, SCHEDULERS)


def l1_norm(net: nn.Module) -> Tensor:
    """sum |w| over every parameter of ``net``: the weight penalty that ``Config.l1_penalty`` scales (ANL)."""
    return torch.stack([p.abs().sum() for p in net.parameters()]).sum()


def train_step(model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, inputs: Tensor,
               targets: Tensor, lr: float, amp: bool, grad_clip: float | None,
               l1_penalty: float = 0.0) -> tuple[Tensor, Tensor]:
    """One training step, written once for the trainer, ``cost`` and the benchmarks; returns (loss, logits).

    Forward under bf16 autocast when ``amp``, the loss (called with ``lr``) on float logits, backward of the
    loss plus ``l1_penalty * l1_norm(model)``, the global gradient-norm clip at ``grad_clip`` (None: none),
    then the optimiser.
    """
    with autocast(inputs.device, amp):
        logits = model(inputs)
    loss = loss_fn(logits.float(), targets, lr=lr)
    optimizer.zero_grad(set_to_none=True)
    objective = loss + l1_penalty * l1_norm(model) if l1_penalty else loss
    objective.backward()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return loss, logits
