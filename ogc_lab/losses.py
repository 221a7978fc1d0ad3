"""Every training loss by name: the robust-loss baselines of the OGC paper and the OGC losses.

Each loss is an ``nn.Module`` called as ``loss(logits, targets, lr=None)``; ``lr`` is used only by
the OGC losses (their clipping target depends on it) and accepted by the rest, so a trainer calls
every loss the same way.  ``reduction`` is 'mean', 'sum' or 'none'.  Defaults are those the
robust-loss literature and its reference code use on CIFAR-10.  CE, FL, GCE are the very base losses
that ``ogc`` clips.  CE and FL (and SCE's CE term) are computed from the unclamped log-probability, as
their reference code trains them: a floor on p would silently clip exactly the samples that
memorisation is about.  Only the OGC losses clamp p to [1e-7, 1 - 1e-7] (the method's H range).
"""

from __future__ import annotations

import inspect
import math
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import torch
from torch import Tensor, nn

from ogc_lab import ogc
from ogc_lab.ogc import (
    REDUCTIONS,
    base_loss,
    check_batch,
    label_log_prob,
    label_prob,
    reduce_loss,
    transformed_loss,
)
from ogc_lab.registry import check_choice, check_names, unknown
from ogc_lab.schema import FLAG, INTEGER, TEXT, Leaf, number

RCE_LOG_ZERO = math.log(1e-4)  # A: the value RCE gives log 0 (one-hot label clamped at 1e-4)


# ---------------------------------------------------------------------------------------------
# shared helpers
# ---------------------------------------------------------------------------------------------


def log_probs(logits: Tensor) -> Tensor:
    """log softmax over classes in float32 (the precision ``ogc.label_prob`` works in)."""
    if logits.ndim != 2:
        raise ValueError(f"logits must be (batch, classes), got shape {tuple(logits.shape)}")
    return torch.log_softmax(logits.float(), dim=1)


def at_label(values: Tensor, targets: Tensor) -> Tensor:
    """Row-wise entry of ``values`` (batch, classes) at each sample's label."""
    return values.gather(1, targets.long().view(-1, 1)).squeeze(1)


def reverse_ce_of_p(p: Tensor) -> Tensor:
    """Reverse CE -sum_k p_k log e_y[k] with log 0 := A = log(1e-4): equals -A (1 - p_y)."""
    return -RCE_LOG_ZERO * (1.0 - p)


def normalized_ce(logits: Tensor, targets: Tensor) -> Tensor:
    """NCE = log p_y / sum_k log p_k (Ma et al., ICML 2020): in [0, 1], sums to 1 over labels."""
    logp = log_probs(logits)
    return at_label(logp, targets) / logp.sum(dim=1)


def normalized_negative_ce(logits: Tensor, targets: Tensor, min_prob: float) -> Tensor:
    """NNCE = 1 - (A + log p_y) / sum_k (A + log p_k), p clamped at min_prob, A = -log min_prob."""
    log_min = math.log(min_prob)
    shifted = log_probs(logits).clamp_min(log_min) - log_min
    return 1.0 - at_label(shifted, targets) / shifted.sum(dim=1)


def clip_logit_norm(logits: Tensor, max_norm: float, norm_ord: float = 2.0) -> Tensor:
    """Shrink each row of ``logits`` whose L_``norm_ord`` norm exceeds ``max_norm`` onto it."""
    norms = torch.linalg.vector_norm(logits, ord=norm_ord, dim=1, keepdim=True)
    return logits * (max_norm / norms.clamp_min(max_norm))


def _check(ok: bool, loss: str, param: str, value: object, allowed: str) -> None:
    """Raise ValueError naming the bad hyperparameter value and the allowed range."""
    if not ok:
        raise ValueError(f"{loss}: {param}={value!r} is not allowed; allowed: {allowed}")


def _check_num_classes(num_classes: int) -> None:
    """Raise ValueError unless ``num_classes`` is an integer >= 2."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")


def _keyword_types(fn: Callable[..., object], exclude: tuple[str, ...]) -> dict[str, Any]:
    """The keywords ``fn`` accepts (no *args/**kwargs), minus ``exclude``, each with its type hint."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    hints = typing.get_type_hints(fn.__init__ if isinstance(fn, type) else fn)
    params = inspect.signature(fn).parameters.values()
    return {p.name: hints.get(p.name, Any) for p in params if p.kind in kinds and p.name not in exclude}


# the values a hyperparameter of each hinted type takes (a hint not listed here is not checked)
_PARAM_VALUES: dict[Any, Leaf] = {float: number(finite=False), int: INTEGER, bool: FLAG, str: TEXT,
                                  type(None): Leaf("null", lambda v: v is None)}


def _check_param_types(loss: str, params: dict[str, object], hints: dict[str, Any]) -> None:
    """Raise ValueError naming the first of ``params`` whose value is not of its hinted type (``q='abc'``);
    the ranges are each loss's own checks."""
    for name, value in params.items():
        hint = hints[name]
        leaves = [_PARAM_VALUES.get(t) for t in (typing.get_args(hint) if isinstance(hint, types.UnionType)
                                                  else (hint,))]
        if all(leaves):
            _check(any(leaf.test(value) for leaf in leaves), loss, name, value,
                   " or ".join(leaf.allowed for leaf in leaves))


# ---------------------------------------------------------------------------------------------
# base classes
# ---------------------------------------------------------------------------------------------


class RobustLoss(nn.Module):
    """Base of the losses here: checks shapes, computes per-sample values, applies ``reduction``.

    Hyperparameters are the constructor's keyword-only arguments, stored under the same names.
    """

    def __init__(self, num_classes: int, reduction: str = "mean") -> None:
        super().__init__()
        _check_num_classes(num_classes)
        check_choice("reduction", reduction, REDUCTIONS)
        self.num_classes = num_classes
        self.reduction = reduction

    @classmethod
    def param_types(cls) -> dict[str, Any]:
        """The hyperparameters ``make_loss`` may pass to this loss, with their type hints."""
        return _keyword_types(cls, exclude=("num_classes", "reduction"))

    @classmethod
    def param_names(cls) -> tuple[str, ...]:
        """The hyperparameters ``make_loss`` may pass to this loss."""
        return tuple(cls.param_types())

    def per_sample(self, logits: Tensor, targets: Tensor) -> Tensor:
        """Loss of each sample, shape (batch,)."""
        raise NotImplementedError

    def forward(self, logits: Tensor, targets: Tensor, lr: float | None = None) -> Tensor:
        """The reduced loss; ``lr`` is ignored (only the OGC losses use it)."""
        check_batch(logits, targets, self.num_classes)
        return reduce_loss(self.per_sample(logits, targets), self.reduction)

    def extra_repr(self) -> str:
        names = ("num_classes", "reduction", *self.param_names())
        return ", ".join(f"{n}={getattr(self, n)!r}" for n in names)


class LabelProbLoss(RobustLoss):
    """A loss that sees the logits only through p = softmax(z)[y].

    ``of_log_p`` gets the unclamped log p; by default it hands ``of_p`` the clamped p
    (``ogc.label_prob``), which losses exact at any p override.
    """

    def per_sample(self, logits: Tensor, targets: Tensor) -> Tensor:
        return self.of_log_p(label_log_prob(logits, targets))

    def of_log_p(self, log_p: Tensor) -> Tensor:
        """Per-sample loss from the unclamped log-probability of the label."""
        return self.of_p(log_p.exp().clamp(ogc.P_MIN, ogc.P_MAX))

    def of_p(self, p: Tensor) -> Tensor:
        """Per-sample loss as a function of the label's probability."""
        raise NotImplementedError


class _OGCBaseLossModule(LabelProbLoss):
    """An ``ogc`` base loss l(p) used unclipped: the one definition that OGC also clips."""

    def __init__(self, num_classes: int, reduction: str, base: ogc.BaseLoss) -> None:
        super().__init__(num_classes, reduction)
        self.base = base

    def of_p(self, p: Tensor) -> Tensor:
        return self.base.value(p)

    def of_log_p(self, log_p: Tensor) -> Tensor:
        if self.base.value_of_log_p is None:  # GCE: bounded gradient, the clamp changes nothing that trains
            return super().of_log_p(log_p)
        return self.base.value_of_log_p(log_p)


# ---------------------------------------------------------------------------------------------
# the losses
# ---------------------------------------------------------------------------------------------


class CrossEntropy(_OGCBaseLossModule):
    """Cross entropy, l = -log p_y.

    Built from ``ogc.base_loss('ce')`` and computed as -log_softmax(z)[y] with no floor on p, so its
    gradient in the logits is softmax(z) - e_y at any p_y (as ``nn.CrossEntropyLoss``).
    """

    def __init__(self, num_classes: int, reduction: str = "mean") -> None:
        super().__init__(num_classes, reduction, base_loss("ce"))


class FocalLoss(_OGCBaseLossModule):
    """Focal loss (Lin et al., ICCV 2017), l = -(1 - p_y)^gamma log p_y; gamma = 0 is CE.

    Default gamma = 0.5, as in the OGC and APL (Ma et al. 2020) CIFAR-10 settings.
    """

    def __init__(self, num_classes: int, reduction: str = "mean", *, gamma: float = 0.5) -> None:
        super().__init__(num_classes, reduction, base_loss("fl", gamma=gamma))
        self.gamma = gamma


class GeneralizedCE(_OGCBaseLossModule):
    """Generalized CE (Zhang & Sabuncu, NeurIPS 2018), l = (1 - p_y^q) / q, 0 < q < 1.

    Tends to CE as q -> 0 and to 1 - p_y (= MAE / 2) as q -> 1.  Default q = 0.7 (the paper's).
    """

    def __init__(self, num_classes: int, reduction: str = "mean", *, q: float = 0.7) -> None:
        super().__init__(num_classes, reduction, base_loss("gce", q=q))
        self.q = q


class MeanAbsoluteError(LabelProbLoss):
    """MAE (Ghosh et al., AAAI 2017): scale * ||e_y - softmax(z)||_1 = scale * 2 (1 - p_y).

    Symmetric: the sum over all K labels is the constant scale * 2 (K - 1).  Default scale = 0.5,
    i.e. 1 - p_y: the form the OGC and APL reference code train with (at the recipe's learning
    rate).  scale = 1 is the paper's L1 distance, twice that loss and its gradient.
    """

    def __init__(self, num_classes: int, reduction: str = "mean", *, scale: float = 0.5) -> None:
        super().__init__(num_classes, reduction)
        _check(scale > 0, "mae", "scale", scale, "> 0")
        self.scale = scale

    def of_p(self, p: Tensor) -> Tensor:
        return 2.0 * self.scale * (1.0 - p)


class SymmetricCE(LabelProbLoss):
    """Symmetric CE (Wang et al., ICCV 2019): alpha * CE + beta * RCE, RCE = -A (1 - p_y).

    RCE is CE with prediction and label swapped, log 0 := A.  A = log(1e-4) (about -9.21), the value
    the reference code gets by clamping the one-hot label at 1e-4 (the paper's text uses A = -4).
    Defaults alpha = 0.1, beta = 1.0 (the paper's CIFAR-10 setting).
    """

    def __init__(
        self, num_classes: int, reduction: str = "mean", *, alpha: float = 0.1, beta: float = 1.0
    ) -> None:
        super().__init__(num_classes, reduction)
        _check(alpha >= 0, "sce", "alpha", alpha, ">= 0")
        _check(beta >= 0, "sce", "beta", beta, ">= 0")
        self.alpha, self.beta = alpha, beta

    def of_log_p(self, log_p: Tensor) -> Tensor:
        """CE from the unclamped log p (as the reference trains it), RCE from p clamped at 1e-7."""
        p = log_p.exp().clamp(ogc.P_MIN, ogc.P_MAX)
        return -self.alpha * log_p + self.beta * reverse_ce_of_p(p)


class NCEandRCE(RobustLoss):
    """Active-passive loss NCE+RCE (Ma et al., ICML 2020): alpha * NCE + beta * RCE.

    NCE = log p_y / sum_k log p_k lies in [0, 1]; RCE = -A (1 - p_y) with A = log(1e-4).  Both are
    symmetric (their sums over all K labels are 1 and -A (K - 1)).  Defaults alpha = beta = 1
    (the paper's CIFAR-10 setting).
    """

    def __init__(
        self, num_classes: int, reduction: str = "mean", *, alpha: float = 1.0, beta: float = 1.0
    ) -> None:
        super().__init__(num_classes, reduction)
        _check(alpha >= 0, "nce+rce", "alpha", alpha, ">= 0")
        _check(beta >= 0, "nce+rce", "beta", beta, ">= 0")
        self.alpha, self.beta = alpha, beta

    def per_sample(self, logits: Tensor, targets: Tensor) -> Tensor:
        rce = reverse_ce_of_p(label_prob(logits, targets))
        return self.alpha * normalized_ce(logits, targets) + self.beta * rce


class ANLCE(RobustLoss):
    """Active Negative Loss ANL-CE (Ye et al., NeurIPS 2023): alpha * NCE + beta * NNCE.

    NNCE = 1 - (A + log p_y) / sum_k (A + log p_k) with p clamped at ``min_prob`` and
    A = -log min_prob.  Defaults alpha = beta = 5, min_prob = 1e-7 (the authors' CIFAR-10 config).
    The method also adds an L1 penalty delta * ||w||_1 on the weights (delta = 5e-5 there, with no
    L2 weight decay); that is the trainer's job and is not part of this loss.
    """

    def __init__(
        self,
        num_classes: int,
        reduction: str = "mean",
        *,
        alpha: float = 5.0,
        beta: float = 5.0,
        min_prob: float = 1e-7,
    ) -> None:
        super().__init__(num_classes, reduction)
        _check(alpha >= 0, "anl-ce", "alpha", alpha, ">= 0")
        _check(beta >= 0, "anl-ce", "beta", beta, ">= 0")
        _check(0 < min_prob < 1 / num_classes, "anl-ce", "min_prob", min_prob, "0 < min_prob < 1/K")
        self.alpha, self.beta, self.min_prob = alpha, beta, min_prob

    def per_sample(self, logits: Tensor, targets: Tensor) -> Tensor:
        nnce = normalized_negative_ce(logits, targets, self.min_prob)
        return self.alpha * normalized_ce(logits, targets) + self.beta * nnce


class PHuberCE(RobustLoss):
    """Partially Huberised CE (Menon et al., ICLR 2020) at a fixed tau >= 1.

    l = -log p_y for p_y > 1/tau, else -tau p_y + log tau + 1: CE with |dl/dp| clipped at tau.
    It is ``ogc.transformed_loss`` with base CE at this tau.  Default tau = 10 (the paper's CIFAR
    setting).
    """

    def __init__(self, num_classes: int, reduction: str = "mean", *, tau: float = 10.0) -> None:
        super().__init__(num_classes, reduction)
        _check(tau >= 1, "phuber-ce", "tau", tau, ">= 1")
        self.tau = tau

    def per_sample(self, logits: Tensor, targets: Tensor) -> Tensor:
        return transformed_loss(logits, targets, self.tau, "ce", reduction="none")


class TaylorCE(LabelProbLoss):
    """Taylor CE (Feng et al., IJCAI 2020): l = sum_{k=1..order} (1 - p_y)^k / k.

    The order-t Taylor series of -log p_y around p_y = 1: CE as order -> infinity, MAE / 2 at
    order 1.  Default order = 2 (the paper's CIFAR-10 setting).
    """

    def __init__(self, num_classes: int, reduction: str = "mean", *, order: int = 2) -> None:
        super().__init__(num_classes, reduction)
        ok = isinstance(order, int) and not isinstance(order, bool) and order >= 1
        _check(ok, "taylor-ce", "order", order, "an integer >= 1")
        self.order = order

    def of_p(self, p: Tensor) -> Tensor:
        u = 1.0 - p
        return sum(u**k / k for k in range(1, self.order + 1))


class JensenShannonLoss(LabelProbLoss):
    """Jensen-Shannon loss (Englesson & Azizpour, NeurIPS 2021): D_JS,pi(e_y, p) / Z.

    D = pi1 KL(e_y || m) + (1 - pi1) KL(p || m), m = pi1 e_y + (1 - pi1) p,
    Z = -(1 - pi1) log(1 - pi1).  D depends on p_y alone:
    D = -pi1 log m_y + (1 - pi1) [p_y log(p_y / m_y) - (1 - p_y) log(1 - pi1)],
    m_y = pi1 + (1 - pi1) p_y.
    Tends to CE as pi1 -> 0 and to 1 - p_y (MAE / 2) as pi1 -> 1.  With the paper's Z it lies in
    [0, H(pi1) / Z] (H: binary entropy), i.e. [0, 2] at pi1 = 0.5; only in the limit pi1 -> 1 is
    that [0, 1].  Default pi1 = 0.5.
    """

    def __init__(self, num_classes: int, reduction: str = "mean", *, pi1: float = 0.5) -> None:
        super().__init__(num_classes, reduction)
        _check(0 < pi1 < 1, "js", "pi1", pi1, "0 < pi1 < 1")
        self.pi1 = pi1
        self._z = -(1.0 - pi1) * math.log(1.0 - pi1)

    def of_p(self, p: Tensor) -> Tensor:
        w = self.pi1
        m = w + (1.0 - w) * p
        d = -w * torch.log(m) + (1.0 - w) * (p * torch.log(p / m) - (1.0 - p) * math.log(1.0 - w))
        return d / self._z


class LogitClipCE(RobustLoss):
    """LogitClip CE (Wei et al., ICML 2023): CE of the logits with their L_lp norm clamped to delta.

    z' = z * min(1, delta / ||z||_lp), so CE <= log K + 2 delta.  The paper writes the bound
    as 1/tau; it is called delta here (as in the authors' code) so that ``tau`` keeps meaning a
    |dl/dp| threshold across the library.  This is the paper's continuous clamp; the authors' code
    instead rescales to delta = 1/tau only rows whose norm exceeds tau.  Default delta = 1, lp = 2
    (their code's defaults; at tau = 1 the two conventions agree).
    """

    def __init__(
        self, num_classes: int, reduction: str = "mean", *, delta: float = 1.0, lp: float = 2.0
    ) -> None:
        super().__init__(num_classes, reduction)
        _check(delta > 0, "logitclip-ce", "delta", delta, "> 0")
        _check(lp >= 1, "logitclip-ce", "lp", lp, ">= 1 (math.inf allowed)")
        self.delta, self.lp = delta, lp
        self._ce = base_loss("ce")

    def per_sample(self, logits: Tensor, targets: Tensor) -> Tensor:
        clipped = clip_logit_norm(logits.float(), self.delta, self.lp)
        return self._ce.value(label_prob(clipped, targets))


# ---------------------------------------------------------------------------------------------
# OGC losses and the registry
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _OGCFactory:
    """Builds ``ogc.OGCLoss`` around base loss ``base``; ``OGCLoss`` is looked up at call time."""

    base: str

    def param_types(self) -> dict[str, Any]:
        """Keywords of OGCLoss, its threshold controller and the base loss (FL: gamma, GCE: q), with type hints."""
        skip = ("base", "reduction", "num_classes")
        return {
            **_keyword_types(ogc.OGCLoss, exclude=skip),
            **_keyword_types(ogc.ThresholdController, exclude=skip),
            **_keyword_types(ogc.BASE_LOSSES[self.base], exclude=()),
        }

    def param_names(self) -> tuple[str, ...]:
        """The hyperparameters ``make_loss`` may pass to this loss."""
        return tuple(self.param_types())

    def __call__(self, num_classes: int, reduction: str = "mean", **params: object) -> nn.Module:
        _check_num_classes(num_classes)
        return ogc.OGCLoss(base=self.base, reduction=reduction, num_classes=num_classes, **params)


class LossFactory(Protocol):
    """What a registry entry is: callable like a loss constructor, and lists its hyperparameters."""

    def __call__(
        self, num_classes: int, reduction: str = "mean", **params: object
    ) -> nn.Module: ...

    def param_types(self) -> dict[str, Any]: ...

    def param_names(self) -> tuple[str, ...]: ...


LOSSES: dict[str, LossFactory] = {
    "ce": CrossEntropy,
    "fl": FocalLoss,
    "mae": MeanAbsoluteError,
    "gce": GeneralizedCE,
    "sce": SymmetricCE,
    "nce+rce": NCEandRCE,
    "phuber-ce": PHuberCE,
    "taylor-ce": TaylorCE,
    "js": JensenShannonLoss,
    "logitclip-ce": LogitClipCE,
    "anl-ce": ANLCE,
    "ce+ogc": _OGCFactory("ce"),
    "fl+ogc": _OGCFactory("fl"),
    "gce+ogc": _OGCFactory("gce"),
}


def is_ogc_loss(name: str) -> bool:
    """Whether the loss named ``name`` is an OGC loss (built by ``_OGCFactory``), the one test of that everywhere."""
    return isinstance(LOSSES.get(name.strip().lower()), _OGCFactory)


def check_loss(name: str) -> None:
    """Raise ``registry.unknown``'s ValueError unless ``name`` is one of ``LOSSES``."""
    check_choice("loss", name, LOSSES)


def make_loss(name: str, num_classes: int, reduction: str = "mean", **params: object) -> nn.Module:
    """The loss ``name`` (case-insensitive key of ``LOSSES``) with hyperparameters ``params``."""
    key = name.strip().lower()
    if key not in LOSSES:
        raise unknown("loss", name, LOSSES)
    factory = LOSSES[key]
    check_names(f"{key} parameter", params, factory.param_names() or ["(none)"])
    _check_param_types(key, params, factory.param_types())
    return factory(num_classes, reduction, **params)
