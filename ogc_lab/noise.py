"""Synthetic label noise with exact per-class counts, and a report of the noise actually realised.

Every kind except ``instance`` is a K x K transition matrix T (row = true class, column = noisy
class) applied once, with exact counts: a true class c with n_c samples sends exactly
round(T[c, j] * n_c) of them to class j, the rounding done by largest remainder so each row sums to
n_c (ties broken by a seeded draw).  Which samples go where is a seeded random order within each
class.  Applying one matrix at once avoids the trap of sequential flips, where cats that became
dogs can flip back to cats (realised cat rate about 0.24 at a nominal 0.4).

"Symmetric noise" is counted three ways in the literature; this module names two of them:

* ``symmetric``: exactly a fraction r of each class goes to the other K - 1 classes, evenly.
* ``symmetric-uniform``: a fraction r of each class is redrawn uniformly from all K classes, so some
  keep their class; the realised flip rate is r (K - 1) / K.
* (per-sample Bernoulli draws, whose realised rate only approaches r, are not offered.)

``instance`` (Xia et al., NeurIPS 2020, "part-dependent" noise) needs ``features`` (N, ...): sample
i keeps its label with probability 1 - q_i, q_i ~ N(r, std^2) truncated to [0, 1] (std 0.1), and
otherwise takes class j != y_i with probability softmax(x_i W[y_i])_j, W ~ N(0, 1) of shape
(K, d, K).  By default (``norm=raw``) the flattened features are projected as given, as the OGC
reference code does with raw 0..255 pixels: its softmax is then practically one-hot, so most of a
class's flips go to few classes.  ``instance:r:norm=l2`` scales each x_i to unit L2 norm first, so
the scores are N(0, 1) whatever the pixel scale and the flips spread more evenly (same rate, other
structure).

``flipped`` is always ``noisy != clean``: a symmetric-uniform redraw that lands on the true class
does not count as flipped.  Empty label arrays are accepted (the report then holds zeros).
Random numbers are drawn on the CPU from one ``torch.Generator`` seeded with ``seed``, so the
same seed gives the same draws on every device.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .registry import choose

# Official CIFAR-100 coarse (superclass) label of each fine label 0..99, in fine-label order
# (the "coarse_labels" of the CIFAR-100 python release; e.g. fine 0 "apple" is coarse 4
# "fruit_and_vegetables", fine 4 "beaver" is coarse 0 "aquatic_mammals").  Each coarse class has 5.
CIFAR100_COARSE_OF_FINE: tuple[int, ...] = (
    4, 1, 14, 8, 0, 6, 7, 7, 18, 3,
    3, 14, 9, 18, 7, 11, 3, 9, 7, 11,
    6, 11, 5, 10, 7, 6, 13, 15, 3, 15,
    0, 11, 1, 10, 12, 14, 16, 9, 11, 5,
    5, 19, 8, 8, 15, 13, 14, 17, 18, 10,
    16, 4, 17, 4, 2, 0, 17, 4, 18, 17,
    10, 3, 2, 12, 12, 16, 12, 1, 9, 19,
    2, 10, 0, 1, 16, 12, 9, 13, 15, 13,
    16, 19, 2, 4, 6, 19, 5, 5, 8, 19,
    18, 1, 2, 15, 6, 0, 17, 8, 14, 13,
)  # fmt: skip

# CIFAR-10: truck -> automobile, bird -> airplane, deer -> horse, cat <-> dog.
CIFAR10_ASYM_TARGETS: Mapping[int, int] = {9: 1, 2: 0, 4: 7, 3: 5, 5: 3}
# MNIST: 7 -> 1, 2 -> 7, 5 <-> 6, 3 -> 8.
MNIST_ASYM_TARGETS: Mapping[int, int] = {7: 1, 2: 7, 5: 6, 6: 5, 3: 8}


@dataclass(frozen=True)
class ClassMapData:
    """The data sets a class-mapped noise is defined on: known by name, or by their class names in index order."""

    what: str
    names: tuple[str, ...]
    classes: tuple[str, ...]


CIFAR10_DATA = ClassMapData("CIFAR-10", ("cifar10", "cifar10-npz", "cifar10n", "cifar10n-npz"), (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"))
CIFAR100_DATA = ClassMapData("CIFAR-100", ("cifar100", "cifar100n"), (
    "apple", "aquarium_fish", "baby", "bear", "beaver", "bed", "bee", "beetle", "bicycle", "bottle",
    "bowl", "boy", "bridge", "bus", "butterfly", "camel", "can", "castle", "caterpillar", "cattle",
    "chair", "chimpanzee", "clock", "cloud", "cockroach", "couch", "crab", "crocodile", "cup", "dinosaur",
    "dolphin", "elephant", "flatfish", "forest", "fox", "girl", "hamster", "house", "kangaroo", "keyboard",
    "lamp", "lawn_mower", "leopard", "lion", "lizard", "lobster", "man", "maple_tree", "motorcycle", "mountain",
    "mouse", "mushroom", "oak_tree", "orange", "orchid", "otter", "palm_tree", "pear", "pickup_truck", "pine_tree",
    "plain", "plate", "poppy", "porcupine", "possum", "rabbit", "raccoon", "ray", "road", "rocket",
    "rose", "sea", "seal", "shark", "shrew", "skunk", "skyscraper", "snail", "snake", "spider",
    "squirrel", "streetcar", "sunflower", "sweet_pepper", "table", "tank", "telephone", "television", "tiger",
    "tractor", "train", "trout", "tulip", "turtle", "wardrobe", "whale", "willow_tree", "wolf", "woman", "worm"))
MNIST_DATA = ClassMapData("MNIST-style digit", ("digits",), tuple(str(d) for d in range(10)))

_CHUNK_ROWS = 8192  # samples projected at once by the instance generator (bounds memory)


# --------------------------------------------------------------------------------------------
# Reports


@dataclass(frozen=True, eq=False)
class NoiseReport:
    """What a generator did: the realised K x K transition (counts and row-normalised) and a hash.

    ``transition`` rows of classes with no samples are all zero.
    """

    kind: str
    nominal_rate: float
    realised_rate: float
    transition_counts: np.ndarray
    transition: np.ndarray
    labels_sha256: str
    seed: int
    num_classes: int
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable copy (matrices as nested lists)."""
        return {
            "kind": self.kind,
            "nominal_rate": float(self.nominal_rate),
            "realised_rate": float(self.realised_rate),
            "transition_counts": self.transition_counts.astype(int).tolist(),
            "transition": self.transition.astype(float).tolist(),
            "labels_sha256": self.labels_sha256,
            "seed": int(self.seed),
            "num_classes": int(self.num_classes),
            "params": dict(self.params),
        }

    def format_matrix(self, max_classes: int = 20, digits: int = 3) -> str:
        """The realised matrix as text: a grid up to ``max_classes`` classes, else non-zeros."""
        if self.num_classes <= max_classes:
            return _format_grid(self.transition, digits)
        return _format_sparse(self.transition, digits)

    def __str__(self) -> str:
        head = (
            f"{self.kind} noise: nominal rate {self.nominal_rate:g}, "
            f"realised {self.realised_rate:.4f}, K={self.num_classes}, seed {self.seed}, "
            f"sha256 {self.labels_sha256[:12]}"
        )
        return head + "\n" + self.format_matrix()


def _format_grid(matrix: np.ndarray, digits: int) -> str:
    """Rows = true class, columns = noisy class; zeros shown as '.' so the structure stands out."""
    width = digits + 2
    header = "true\\noisy " + " ".join(f"{j:>{width}d}" for j in range(matrix.shape[1]))
    lines = [header]
    for c, row in enumerate(matrix):
        cells = " ".join(f"{v:{width}.{digits}f}" if v > 0 else f"{'.':>{width}}" for v in row)
        lines.append(f"{c:>10d} {cells}")
    return "\n".join(lines)


def _format_sparse(matrix: np.ndarray, digits: int) -> str:
    """One line per true class: 'c: j p, ...' for the noisy classes it reaches."""
    lines = []
    for c, row in enumerate(matrix):
        entries = ", ".join(f"{j} {row[j]:.{digits}f}" for j in np.flatnonzero(row))
        lines.append(f"{c:>4d}: {entries or '(no samples)'}")
    return "\n".join(lines)


@dataclass(frozen=True, eq=False)
class NoisyLabels:
    """Noisy labels (int64, on the input labels' device), mask ``noisy != clean``, report."""

    labels: Tensor
    flipped: Tensor
    report: NoiseReport


def labels_sha256(labels: Tensor) -> str:
    """sha256 hex digest of the labels as little-endian int64 bytes (device/dtype independent)."""
    return hashlib.sha256(labels.detach().cpu().numpy().astype("<i8").tobytes()).hexdigest()


def build_report(
    kind: str, rate: float, clean: Tensor, noisy: Tensor, num_classes: int, seed: int, params: dict
) -> NoiseReport:
    """Report the realised (true, noisy) pairs of the actual labels: synthetic or real-world noise alike."""
    k = num_classes
    pairs = (clean.cpu() * k + noisy.cpu()).long()
    counts = torch.bincount(pairs, minlength=k * k).reshape(k, k).numpy().astype(np.int64)
    rows = counts.sum(axis=1, keepdims=True)
    transition = np.divide(counts, rows, out=np.zeros((k, k)), where=rows > 0)
    n = int(clean.numel())
    realised = float(n - np.trace(counts)) / n if n else 0.0
    return NoiseReport(
        kind=kind,
        nominal_rate=float(rate),
        realised_rate=realised,
        transition_counts=counts,
        transition=transition,
        labels_sha256=labels_sha256(noisy),
        seed=seed,
        num_classes=k,
        params=dict(params),
    )


# --------------------------------------------------------------------------------------------
# Transition matrices


def _mapping_matrix(rate: float, num_classes: int, targets: Mapping[int, int]) -> Tensor:
    """Identity, except each class c in ``targets`` sends a fraction ``rate`` to ``targets[c]``."""
    t = torch.eye(num_classes, dtype=torch.float64)
    for c, j in targets.items():
        t[c, c] = 1.0 - rate
        t[c, j] = rate
    return t


def _next_in_group(groups: Sequence[int]) -> dict[int, int]:
    """Map each index to the next index (in sorted order) of the same group, cyclically."""
    members: dict[int, list[int]] = {}
    for i, g in enumerate(groups):
        members.setdefault(g, []).append(i)
    return {m[i]: m[(i + 1) % len(m)] for m in members.values() for i in range(len(m))}


def _identity_matrix(rate: float, num_classes: int) -> Tensor:
    return torch.eye(num_classes, dtype=torch.float64)


def _symmetric_matrix(rate: float, num_classes: int) -> Tensor:
    t = torch.full((num_classes, num_classes), rate / (num_classes - 1), dtype=torch.float64)
    return t.fill_diagonal_(1.0 - rate)


def _symmetric_uniform_matrix(rate: float, num_classes: int) -> Tensor:
    t = torch.full((num_classes, num_classes), rate / num_classes, dtype=torch.float64)
    return t + (1.0 - rate) * torch.eye(num_classes, dtype=torch.float64)


def _pairflip_matrix(rate: float, num_classes: int) -> Tensor:
    return _mapping_matrix(
        rate, num_classes, {c: (c + 1) % num_classes for c in range(num_classes)}
    )


def _fixed_mapping(targets: Mapping[int, int]) -> Callable[[float, int], Tensor]:
    return partial(_mapping_matrix, targets=targets)


# Legacy CIFAR-100 "asymmetric" noise: blocks of 5 consecutive fine indices.  The fine classes are
# numbered alphabetically, so these blocks are NOT the CIFAR-100 superclasses.
_CIFAR100_BLOCK_TARGETS = _next_in_group([c // 5 for c in range(100)])
_CIFAR100_SUPER_TARGETS = _next_in_group(CIFAR100_COARSE_OF_FINE)


def exact_counts(
    transition: Tensor, class_counts: Tensor, generator: torch.Generator | None = None
) -> Tensor:
    """Split each class count n_c over noisy classes: T[c, j] * n_c rounded by largest remainder.

    Each row sums to n_c exactly and every entry is within 1 of T[c, j] * n_c.  Equal remainders are
    ordered by a draw from ``generator`` (by class index without one), so no class is favoured.
    """
    t = torch.as_tensor(transition, dtype=torch.float64).cpu()
    n = torch.as_tensor(class_counts).cpu().long()
    k = t.shape[0]
    if t.shape != (k, k) or n.shape != (k,):
        raise ValueError(
            f"need a (K, K) matrix and K counts, got {tuple(t.shape)} and {tuple(n.shape)}"
        )
    if (t < 0).any() or not torch.allclose(t.sum(1), torch.ones(k, dtype=torch.float64), atol=1e-9):
        raise ValueError("transition rows must be non-negative and sum to 1")
    if (n < 0).any():
        raise ValueError(f"class counts must be non-negative, got {n.tolist()}")
    # Rounding at 1e-9 first makes 599.9999999 count as 600 and equal remainders compare equal.
    raw = torch.round(t * n[:, None].double(), decimals=9)
    base = torch.floor(raw)
    remainder = raw - base
    deficit = n - base.sum(1).round().long()
    tie_key = (
        torch.rand(k, k, generator=generator, dtype=torch.float64)
        if generator is not None
        else torch.arange(k, dtype=torch.float64).expand(k, k)
    )
    by_tie = torch.argsort(tie_key, dim=1)
    by_remainder = torch.argsort(-remainder.gather(1, by_tie), dim=1, stable=True)
    columns = by_tie.gather(1, by_remainder)  # per row: columns by remainder desc, ties by key
    rank = torch.empty_like(columns).scatter_(1, columns, torch.arange(k).expand(k, k).contiguous())
    return base.long() + (rank < deficit[:, None]).long()


def _apply_transition(
    build: Callable[[float, int], Tensor],
    labels: Tensor,
    num_classes: int,
    rate: float,
    params: Mapping[str, Any],
    seed: int,
    features: Tensor | None,
) -> Tensor:
    """Relabel with exact counts: each class's samples in seeded random order, cut by the counts."""
    clean = labels.cpu()
    generator = torch.Generator().manual_seed(seed)
    class_counts = torch.bincount(clean, minlength=num_classes)
    counts = exact_counts(build(rate, num_classes), class_counts, generator)
    shuffle = torch.randperm(clean.numel(), generator=generator)
    order = shuffle[torch.argsort(clean[shuffle], stable=True)]  # grouped by class, random within
    targets = torch.arange(num_classes).repeat(num_classes).repeat_interleave(counts.flatten())
    noisy = torch.empty_like(clean)
    noisy[order] = targets
    return noisy.to(labels.device)


# --------------------------------------------------------------------------------------------
# Instance-dependent noise (Xia et al., NeurIPS 2020, "part-dependent" generator)


def _unit_l2(x: Tensor) -> Tensor:
    """Scale each row to unit L2 norm (zero rows stay zero): the projection ignores image scale."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(torch.finfo(x.dtype).tiny)


def _raw(x: Tensor) -> Tensor:
    """Leave features as given (the OGC reference code projects raw 0..255 pixel values)."""
    return x


FEATURE_SCALINGS: dict[str, Callable[[Tensor], Tensor]] = {"l2": _unit_l2, "raw": _raw}


def _truncated_normal(
    mean: float,
    std: float,
    size: int,
    generator: torch.Generator,
    low: float = 0.0,
    high: float = 1.0,
) -> Tensor:
    """Draw from N(mean, std^2) truncated to [low, high] by inverting the CDF (float64, CPU)."""
    lo = torch.special.ndtr(torch.tensor((low - mean) / std, dtype=torch.float64))
    hi = torch.special.ndtr(torch.tensor((high - mean) / std, dtype=torch.float64))
    u = torch.rand(size, generator=generator, dtype=torch.float64)
    return (mean + std * torch.special.ndtri(lo + u * (hi - lo))).clamp(low, high)


def _class_projection(
    x: Tensor, y: Tensor, weights: Tensor, scale: Callable[[Tensor], Tensor]
) -> Tensor:
    """scores[i] = scale(x[i]) @ weights[y[i]], batched per class in chunks (no per-sample W)."""
    k = weights.shape[0]
    scores = torch.empty(x.shape[0], k, dtype=weights.dtype, device=x.device)
    order = torch.argsort(y, stable=True)
    ends = torch.cumsum(torch.bincount(y, minlength=k), 0).tolist()
    for c, (start, end) in enumerate(zip([0, *ends[:-1]], ends, strict=True)):
        for s in range(start, end, _CHUNK_ROWS):
            rows = order[s : min(s + _CHUNK_ROWS, end)]
            scores[rows] = scale(x[rows].to(weights.dtype)) @ weights[c]
    return scores


def _instance_noise(
    labels: Tensor,
    num_classes: int,
    rate: float,
    params: Mapping[str, Any],
    seed: int,
    features: Tensor | None,
) -> Tensor:
    """Flip rate q_i ~ N(rate, std^2) on [0, 1]; target drawn from softmax(x_i W[y_i]), y_i masked.

    Draw order from the seeded CPU generator: q (N), W (K, d, K) ~ N(0, 1), then one uniform per
    sample for the label draw.  The arithmetic runs on the features' device.
    """
    assert features is not None  # make_noise checks this before dispatching here
    device = features.device
    x = features.flatten(1)
    n, d = x.shape
    generator = torch.Generator().manual_seed(seed)
    q = _truncated_normal(rate, params["std"], n, generator).to(device)
    weights = torch.randn(num_classes, d, num_classes, generator=generator).to(device)
    u = torch.rand(n, generator=generator, dtype=torch.float64).to(device)
    y = labels.to(device)
    scores = _class_projection(x, y, weights, FEATURE_SCALINGS[params["norm"]]).double()
    scores.scatter_(1, y[:, None], -math.inf)
    probs = q[:, None] * torch.softmax(scores, dim=1)
    probs.scatter_(1, y[:, None], (1.0 - q)[:, None])
    cdf = probs.cumsum(1)
    # Class k is drawn when cdf[k-1] <= u * total < cdf[k]: a class of probability 0 never is.
    noisy = torch.searchsorted(cdf[:, :-1].contiguous(), (u * cdf[:, -1])[:, None], right=True)
    return noisy.squeeze(1).to(labels.device)


# --------------------------------------------------------------------------------------------
# Registry


@dataclass(frozen=True)
class NoiseParam:
    """An optional ``key=value`` of a spec: default value and a parser that validates the text."""

    default: Any
    parse: Callable[[str], Any]


@dataclass(frozen=True)
class NoiseKind:
    """A registered noise kind: generator, transition matrix (None: instance-dependent), limits.

    ``max_rate(K)`` is an exclusive bound on the rate, explained by ``max_rate_reason``;
    ``num_classes`` fixes K for the dataset-specific mappings, and ``data`` names the data sets
    whose classes they map (checked by ``check_noise_data``).
    """

    description: str
    generate: Callable[..., Tensor]
    matrix: Callable[[float, int], Tensor] | None
    max_rate: Callable[[int], float]
    max_rate_reason: str
    num_classes: int | None = None
    min_classes: int = 2
    takes_rate: bool = True
    params: Mapping[str, NoiseParam] = field(default_factory=dict)
    data: ClassMapData | None = None


_BELOW_ONE = "rate 1 would leave no sample with its clean label"
_BELOW_HALF = "at 0.5 or above a class is relabelled to its target at least as often as it is kept"
_BELOW_MAJORITY = "at (K-1)/K or above the clean label is no longer the majority label of its class"


def _matrix_kind(
    build: Callable[[float, int], Tensor],
    description: str,
    max_rate: Callable[[int], float] = lambda k: 0.5,
    max_rate_reason: str = _BELOW_HALF,
    **kwargs: Any,
) -> NoiseKind:
    """A kind defined by a transition matrix, applied with exact counts."""
    return NoiseKind(
        description=description,
        generate=partial(_apply_transition, build),
        matrix=build,
        max_rate=max_rate,
        max_rate_reason=max_rate_reason,
        **kwargs,
    )


def _parse_std(text: str) -> float:
    value = float(text)
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"instance noise std must be a finite number > 0, got {text!r}")
    return value


def _parse_norm(text: str) -> str:
    if text not in FEATURE_SCALINGS:
        raise ValueError(
            f"instance noise norm must be one of {sorted(FEATURE_SCALINGS)}, got {text!r}"
        )
    return text


NOISE_KINDS: dict[str, NoiseKind] = {
    "none": _matrix_kind(
        _identity_matrix, "clean labels", lambda k: 1.0, _BELOW_ONE, min_classes=1, takes_rate=False
    ),
    "symmetric": _matrix_kind(
        _symmetric_matrix,
        "exactly a fraction r of each class, spread evenly over the other K-1 classes",
        lambda k: (k - 1) / k,
        _BELOW_MAJORITY,
    ),
    "symmetric-uniform": _matrix_kind(
        _symmetric_uniform_matrix,
        "a fraction r of each class redrawn uniformly from all K classes (realised rate r(K-1)/K)",
        lambda k: 1.0,
        _BELOW_ONE,
    ),
    "pairflip": _matrix_kind(_pairflip_matrix, "class c -> (c+1) mod K with rate r"),
    "asym-cifar10": _matrix_kind(
        _fixed_mapping(CIFAR10_ASYM_TARGETS),
        "truck->automobile, bird->airplane, deer->horse, cat<->dog with rate r",
        num_classes=10,
        data=CIFAR10_DATA,
    ),
    "asym-cifar100": _matrix_kind(
        _fixed_mapping(_CIFAR100_BLOCK_TARGETS),
        "legacy: next class inside blocks of 5 consecutive (alphabetical, not superclass) indices",
        num_classes=100,
        data=CIFAR100_DATA,
    ),
    "asym-cifar100-super": _matrix_kind(
        _fixed_mapping(_CIFAR100_SUPER_TARGETS),
        "next fine class (by index) inside each of the 20 real CIFAR-100 superclasses, cyclically",
        num_classes=100,
        data=CIFAR100_DATA,
    ),
    "asym-mnist": _matrix_kind(
        _fixed_mapping(MNIST_ASYM_TARGETS), "7->1, 2->7, 5<->6, 3->8 with rate r", num_classes=10,
        data=MNIST_DATA,
    ),
    "instance": NoiseKind(
        description="part-dependent instance noise (Xia et al. 2020); needs features",
        generate=_instance_noise,
        matrix=None,
        max_rate=lambda k: 1.0,
        max_rate_reason=_BELOW_ONE,
        params={"std": NoiseParam(0.1, _parse_std), "norm": NoiseParam("raw", _parse_norm)},
    ),
}


# --------------------------------------------------------------------------------------------
# Parsing and validation


def _lookup(kind: str) -> NoiseKind:
    return choose("noise kind", kind, NOISE_KINDS)


def _parse_rate(text: str, kind: str) -> float:
    try:
        rate = float(text)
    except ValueError:
        raise ValueError(
            f"noise rate must be a number in [0, 1), got {text!r} in {kind!r}"
        ) from None
    return _check_rate(rate, kind)


def _check_rate(rate: float, kind: str) -> float:
    if not 0.0 <= rate < 1.0:  # also rejects nan
        raise ValueError(f"noise rate must be in [0, 1), got {rate!r} for {kind!r}")
    return rate


def _parse_params(text: str, kind_name: str, kind: NoiseKind) -> dict[str, Any]:
    """Parse 'key=value,key=value' against the kind's declared parameters, filling in defaults."""
    params = {name: p.default for name, p in kind.params.items()}
    for item in filter(None, (s.strip() for s in text.split(","))):
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or key not in kind.params:
            allowed = ", ".join(kind.params) or "none"
            raise ValueError(f"bad parameter {item!r} for {kind_name!r}; allowed keys: {allowed}")
        params[key] = kind.params[key].parse(value.strip())
    return params


def parse_noise_spec(spec: str) -> tuple[str, float, dict[str, Any]]:
    """Split ``"kind[:rate[:key=value,...]]"`` (e.g. ``symmetric:0.4``, ``instance:0.2:std=0.1``).

    Returns (kind, rate, params with defaults filled in).  ``none`` takes no rate (0).
    """
    if not isinstance(spec, str):
        raise ValueError(f"noise spec must be a string like 'symmetric:0.4', got {spec!r}")
    parts = spec.strip().split(":")
    name = parts[0].strip().lower()
    kind = _lookup(name)
    if len(parts) > 3:
        raise ValueError(f"noise spec must be 'kind[:rate[:key=value,...]]', got {spec!r}")
    if not kind.takes_rate:
        if len(parts) > 1:
            raise ValueError(f"noise kind {name!r} takes no rate, got {spec!r}")
        return name, 0.0, {}
    if len(parts) < 2 or not parts[1].strip():
        raise ValueError(f"noise kind {name!r} needs a rate, e.g. '{name}:0.4', got {spec!r}")
    rate = _parse_rate(parts[1].strip(), name)
    params = _parse_params(parts[2] if len(parts) == 3 else "", name, kind)
    return name, rate, params


def check_noise_data(spec: str, dataset: str, classes: Sequence[str]) -> None:
    """Refuse a class-mapped noise (asym-cifar10, asym-cifar100, asym-mnist, ...) on a data set whose
    classes it does not map: the data set must be one it is defined on by name, or have its class names."""
    name, _, _ = parse_noise_spec(spec)
    data = NOISE_KINDS[name].data
    if data is None or dataset.partition(":")[0] in data.names or tuple(classes) == data.classes:
        return
    shown = ", ".join(classes[:10]) + (", ..." if len(classes) > 10 else "")
    raise ValueError(
        f"{name} noise maps {data.what} classes, but data set {dataset!r} has classes {shown}; allowed: "
        f"{', '.join(data.names)}, or an imagefolder whose class folders are {data.what}'s "
        f"({', '.join(data.classes[:3])}, ...)"
    )


def _check_kind(name: str, kind: NoiseKind, rate: float, num_classes: int) -> None:
    """Check num_classes and the kind's rate bound."""
    if (
        isinstance(num_classes, bool)
        or not isinstance(num_classes, int)
        or num_classes < kind.min_classes
    ):
        raise ValueError(
            f"{name} noise needs an int num_classes >= {kind.min_classes}, got {num_classes!r}"
        )
    if kind.num_classes is not None and num_classes != kind.num_classes:
        raise ValueError(f"{name} noise needs num_classes == {kind.num_classes}, got {num_classes}")
    bound = kind.max_rate(num_classes)
    if not rate < bound:
        raise ValueError(
            f"{name} noise needs rate < {bound:.6g} for num_classes={num_classes} "
            f"({kind.max_rate_reason}), got {rate!r}"
        )


def transition_matrix(kind: str, rate: float, num_classes: int) -> Tensor:
    """The nominal K x K transition matrix (float64) of a matrix kind, checked as in make_noise."""
    noise_kind = _lookup(kind)
    if noise_kind.matrix is None:
        raise ValueError(
            f"noise kind {kind!r} has no fixed transition matrix (it depends on features)"
        )
    if not noise_kind.takes_rate and rate != 0.0:
        raise ValueError(f"noise kind {kind!r} takes no rate, got {rate!r}")
    _check_rate(float(rate), kind)
    _check_kind(kind, noise_kind, rate, num_classes)
    return noise_kind.matrix(rate, num_classes)


def _as_labels(labels: Tensor | np.ndarray, num_classes: int) -> Tensor:
    """Validate labels: 1-D, integer, in [0, num_classes); return them as int64 on their device."""
    if isinstance(labels, np.ndarray):
        if labels.dtype.kind not in "iu":
            raise ValueError(f"labels must have an integer dtype, got {labels.dtype}")
        labels = torch.from_numpy(labels.astype(np.int64))
    elif isinstance(labels, Tensor):
        if labels.dtype.is_floating_point or labels.dtype.is_complex or labels.dtype == torch.bool:
            raise ValueError(f"labels must have an integer dtype, got {labels.dtype}")
    else:
        raise ValueError(
            f"labels must be a torch tensor or numpy array, got {type(labels).__name__}"
        )
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {tuple(labels.shape)}")
    labels = labels.long()
    bad = labels[(labels < 0) | (labels >= num_classes)]
    if bad.numel():
        shown = torch.unique(bad)[:10].tolist()
        raise ValueError(
            f"labels must lie in [0, {num_classes}) for num_classes={num_classes}; "
            f"found {bad.numel()} out of range, values {shown}"
        )
    return labels


def _as_features(features: Tensor | np.ndarray | None, n: int, name: str) -> Tensor:
    """Validate instance-noise features: real numbers, shape (N, ...) with N = len(labels)."""
    if features is None:
        raise ValueError(f"{name} noise needs features (a tensor of shape (N, ...)), got None")
    if isinstance(features, np.ndarray):
        features = torch.from_numpy(features)
    if not isinstance(features, Tensor):
        raise ValueError(
            f"features must be a torch tensor or numpy array, got {type(features).__name__}"
        )
    if features.dtype.is_complex or features.dtype == torch.bool:
        raise ValueError(f"features must be real numbers, got dtype {features.dtype}")
    if features.ndim < 2 or features.shape[0] != n:
        raise ValueError(
            f"features must have shape (N, ...) with N = len(labels) = {n}, "
            f"got {tuple(features.shape)}"
        )
    return features


def make_noise(
    spec: str,
    labels: Tensor | np.ndarray,
    num_classes: int,
    seed: int = 0,
    features: Tensor | np.ndarray | None = None,
) -> NoisyLabels:
    """Corrupt ``labels`` as ``spec`` says, reproducibly from ``seed``; report what was realised.

    ``features`` is needed (and only used) by ``instance``; the result lives on the labels' device.
    """
    name, rate, params = parse_noise_spec(spec)
    kind = NOISE_KINDS[name]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    _check_kind(name, kind, rate, num_classes)
    clean = _as_labels(labels, num_classes)
    if kind.matrix is None:
        features = _as_features(features, clean.numel(), name)
    noisy = kind.generate(clean, num_classes, rate, params, seed, features)
    report = build_report(name, rate, clean, noisy, num_classes, seed, params)
    return NoisyLabels(labels=noisy, flipped=noisy != clean, report=report)
