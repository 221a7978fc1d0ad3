"""The synthetic noise generators: transition matrices applied with exact per-class counts, and instance noise.

Every kind except ``instance`` is a K x K transition matrix T (row = true class, column = noisy
class) applied once, with exact counts: a true class c with n_c samples sends exactly
round(T[c, j] * n_c) of them to class j, the rounding done by largest remainder so each row sums to
n_c (ties broken by a seeded draw).  Which samples go where is a seeded random order within each
class.  Applying one matrix at once avoids the trap of sequential flips, where cats that became
dogs can flip back to cats (realised cat rate about 0.24 at a nominal 0.4).

``instance`` (Xia et al., NeurIPS 2020, "part-dependent" noise) needs ``features`` (N, ...): sample
i keeps its label with probability 1 - q_i, q_i ~ N(r, std^2) truncated to [0, 1] (std 0.1), and
otherwise takes class j != y_i with probability softmax(x_i W[y_i])_j, W ~ N(0, 1) of shape
(K, d, K).  By default (``norm=raw``) the flattened features are projected as given, as the OGC
reference code does with raw 0..255 pixels: its softmax is then practically one-hot, so most of a
class's flips go to few classes.  ``instance:r:norm=l2`` scales each x_i to unit L2 norm first, so
the scores are N(0, 1) whatever the pixel scale and the flips spread more evenly (same rate, other
structure).  Random numbers are drawn on the CPU from one ``torch.Generator`` seeded with ``seed``,
so the same seed gives the same draws on every device.  ``ogc_lab.noise`` names the kinds and checks specs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import torch
from torch import Tensor

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


_CHUNK_ROWS = 8192  # samples projected at once by the instance generator (bounds memory)


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


def identity_matrix(rate: float, num_classes: int) -> Tensor:
    return torch.eye(num_classes, dtype=torch.float64)


def symmetric_matrix(rate: float, num_classes: int) -> Tensor:
    t = torch.full((num_classes, num_classes), rate / (num_classes - 1), dtype=torch.float64)
    return t.fill_diagonal_(1.0 - rate)


def symmetric_uniform_matrix(rate: float, num_classes: int) -> Tensor:
    t = torch.full((num_classes, num_classes), rate / num_classes, dtype=torch.float64)
    return t + (1.0 - rate) * torch.eye(num_classes, dtype=torch.float64)


def pairflip_matrix(rate: float, num_classes: int) -> Tensor:
    return _mapping_matrix(
        rate, num_classes, {c: (c + 1) % num_classes for c in range(num_classes)}
    )


def fixed_mapping(targets: Mapping[int, int]) -> Callable[[float, int], Tensor]:
    return partial(_mapping_matrix, targets=targets)


# Legacy CIFAR-100 "asymmetric" noise: blocks of 5 consecutive fine indices.  The fine classes are
# numbered alphabetically, so these blocks are NOT the CIFAR-100 superclasses.
CIFAR100_BLOCK_TARGETS = _next_in_group([c // 5 for c in range(100)])


CIFAR100_SUPER_TARGETS = _next_in_group(CIFAR100_COARSE_OF_FINE)


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


def apply_transition(
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


def instance_noise(
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
