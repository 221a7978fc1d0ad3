"""Tests for ogc_lab.losses: values against independent float64 numpy formulas, reductions,
gradients against finite differences, the properties the papers claim, and the registry."""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ogc_lab import ogc
from ogc_lab.losses import LOSSES, clip_logit_norm, is_ogc_loss, make_loss

OGC_NAMES = [n for n in LOSSES if is_ogc_loss(n)]
PLAIN_NAMES = [n for n in LOSSES if n not in OGC_NAMES]
PROPERTY = settings(max_examples=30, deadline=None)

# A tiny example: a confident clean sample, an uncertain one, and a "noisy" one (p_y ~ 1e-3).
# Row norms 2.5, 0.37, 5 (LogitClip at delta=1 clips rows 1 and 3); no p_y near 1/tau = 0.1.
LOGITS = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-3.0, 4.0, 0.0]])
TARGETS = np.array([0, 2, 0])
A = math.log(1e-4)


# ------------------------------------------------------------------ independent numpy references


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def onehot(y: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[y]


def p_label(z: np.ndarray, y: np.ndarray) -> np.ndarray:
    return softmax(z)[np.arange(len(y)), y]


def kl(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise KL(a || b) with 0 log 0 = 0."""
    safe = np.where(a > 0, a, 1.0)
    return np.where(a > 0, a * np.log(safe / b), 0.0).sum(axis=1)


def ref_ce(z, y):
    return -np.log(p_label(z, y))


def ref_nce(z, y):
    logp = np.log(softmax(z))
    return logp[np.arange(len(y)), y] / logp.sum(axis=1)


def ref_rce(z, y):
    q = np.clip(onehot(y, z.shape[1]), 1e-4, 1.0)
    return -(softmax(z) * np.log(q)).sum(axis=1)


def ref_nnce(z, y, min_prob=1e-7):
    s = -np.log(min_prob) + np.log(np.clip(softmax(z), min_prob, 1.0))
    return 1.0 - s[np.arange(len(y)), y] / s.sum(axis=1)


def ref_js(z, y, pi1=0.5):
    e, p = onehot(y, z.shape[1]), softmax(z)
    m = pi1 * e + (1 - pi1) * p
    return (pi1 * kl(e, m) + (1 - pi1) * kl(p, m)) / (-(1 - pi1) * math.log(1 - pi1))


def ref_phuber(z, y, tau=10.0):
    p = p_label(z, y)
    return np.where(p <= 1 / tau, -tau * p + math.log(tau) + 1, -np.log(p))


def ref_logitclip(z, y, delta=1.0):
    norm = np.linalg.norm(z, axis=1, keepdims=True)
    return ref_ce(z * np.minimum(1.0, delta / norm), y)


REFERENCES = {  # name -> per-sample loss at the registry's defaults, written from the papers
    "ce": ref_ce,
    "fl": lambda z, y: -np.sqrt(1 - p_label(z, y)) * np.log(p_label(z, y)),
    "mae": lambda z, y: 0.5 * np.abs(onehot(y, z.shape[1]) - softmax(z)).sum(axis=1),  # 1 - p_y
    "gce": lambda z, y: (1 - p_label(z, y) ** 0.7) / 0.7,
    "sce": lambda z, y: 0.1 * ref_ce(z, y) + ref_rce(z, y),
    "nce+rce": lambda z, y: ref_nce(z, y) + ref_rce(z, y),
    "phuber-ce": ref_phuber,
    "taylor-ce": lambda z, y: (1 - p_label(z, y)) + (1 - p_label(z, y)) ** 2 / 2,
    "js": ref_js,
    "logitclip-ce": ref_logitclip,
    "anl-ce": lambda z, y: 5 * ref_nce(z, y) + 5 * ref_nnce(z, y),
}


def torch_loss(name: str, z: np.ndarray, y: np.ndarray, reduction: str = "none", **params):
    loss = make_loss(name, z.shape[1], reduction=reduction, **params)
    return loss(torch.tensor(z, dtype=torch.float32), torch.tensor(y), lr=0.1)


def random_logits(seed: int, scale: float, batch: int = 16, k: int = 10) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return scale * torch.randn(batch, k, generator=gen)


# ------------------------------------------------------------------ values


def test_every_plain_loss_has_a_reference():
    assert sorted(REFERENCES) == sorted(PLAIN_NAMES)


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_value_matches_numpy_reference(name):
    got = torch_loss(name, LOGITS, TARGETS).double().numpy()
    np.testing.assert_allclose(got, REFERENCES[name](LOGITS, TARGETS), rtol=2e-5, atol=1e-6)


def test_phuber_example_covers_both_branches():
    p = p_label(LOGITS, TARGETS)
    assert (p <= 0.1).sum() == 1 and (p > 0.1).sum() == 2


U = 0.75  # 1 - p_y for uniform logits over K = 4 classes
UNIFORM_VALUES = {  # closed forms at p_y = 1/4, worked out by hand
    "ce": math.log(4),
    "fl": math.sqrt(U) * math.log(4),
    "mae": U,
    "gce": (1 - 0.25**0.7) / 0.7,
    "sce": 0.1 * math.log(4) - A * U,
    "nce+rce": 0.25 - A * U,
    "phuber-ce": math.log(4),
    "taylor-ce": U + U**2 / 2,
    # m = (0.625, 0.125, 0.125, 0.125); D = 0.5 KL(e_y || m) + 0.5 KL(p || m); Z = 0.5 log 2
    "js": (0.5 * math.log(1 / 0.625) + 0.5 * (0.25 * math.log(0.25 / 0.625) + U * math.log(2)))
    / (0.5 * math.log(2)),
    "logitclip-ce": math.log(4),  # zero logits are inside every norm ball
    "anl-ce": 5 * 0.25 + 5 * U,
}


@pytest.mark.parametrize("name", sorted(UNIFORM_VALUES))
def test_value_at_uniform_prediction(name):
    got = torch_loss(name, np.zeros((2, 4)), np.array([0, 3]))
    np.testing.assert_allclose(got.numpy(), UNIFORM_VALUES[name], rtol=1e-5)


def test_phuber_linear_branch_by_hand():
    # p_y = 1/21 < 1/tau: loss = -10/21 + log 10 + 1
    z = np.array([[0.0, math.log(20.0)]])
    got = torch_loss("phuber-ce", z, np.array([0])).item()
    assert got == pytest.approx(-10 / 21 + math.log(10) + 1, rel=1e-5)


# ------------------------------------------------------------------ reductions


@pytest.mark.parametrize("name", list(LOSSES))
def test_reductions(name):
    z = random_logits(0, 3.0)
    y = torch.arange(16) % 10
    per = make_loss(name, 10, reduction="none")(z, y, lr=0.1)
    assert per.shape == (16,)
    total = make_loss(name, 10, reduction="sum")(z, y, lr=0.1)
    mean = make_loss(name, 10, reduction="mean")(z, y, lr=0.1)
    assert total.item() == pytest.approx(per.sum().item(), rel=1e-5)
    assert mean.item() == pytest.approx(per.mean().item(), rel=1e-5)


# ------------------------------------------------------------------ gradients


def numeric_grad(f, z: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """Central finite differences of sum(f(z)) in float64."""
    g = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        zp, zm = z.copy(), z.copy()
        zp[idx] += h
        zm[idx] -= h
        g[idx] = (f(zp).sum() - f(zm).sum()) / (2 * h)
    return g


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_gradient_matches_finite_differences(name):
    z = torch.tensor(LOGITS, dtype=torch.float32, requires_grad=True)
    make_loss(name, 3, reduction="sum")(z, torch.tensor(TARGETS)).backward()
    expected = numeric_grad(lambda a: REFERENCES[name](a, TARGETS), LOGITS)
    np.testing.assert_allclose(z.grad.double().numpy(), expected, rtol=1e-3, atol=2e-5)


# ------------------------------------------------------------------ properties from the papers


def loss_for_every_label(name: str, z: torch.Tensor, **params) -> torch.Tensor:
    """(K, batch): the per-sample loss of each row of z if its label were k."""
    loss = make_loss(name, z.shape[1], reduction="none", **params)
    return torch.stack([loss(z, torch.full((z.shape[0],), k)) for k in range(z.shape[1])])


SYMMETRIC = [  # (name, params, sum over the K = 10 labels)
    ("mae", {}, 9.0),
    ("nce+rce", {"alpha": 1.0, "beta": 0.0}, 1.0),  # NCE alone
    ("nce+rce", {"alpha": 0.0, "beta": 1.0}, -A * 9),  # RCE alone
    ("anl-ce", {"alpha": 0.0, "beta": 1.0}, 9.0),  # NNCE alone
]


@pytest.mark.parametrize("name,params,constant", SYMMETRIC)
@PROPERTY
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 8.0))
def test_symmetric_losses_sum_to_a_constant(name, params, constant, seed, scale):
    sums = loss_for_every_label(name, random_logits(seed, scale), **params).sum(dim=0)
    np.testing.assert_allclose(sums.numpy(), constant, rtol=1e-5, atol=1e-5)


def test_ce_is_not_symmetric():
    sums = loss_for_every_label("ce", random_logits(1, 3.0)).sum(dim=0)
    assert sums.max() - sums.min() > 1.0


@PROPERTY
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 30.0))
def test_nce_lies_in_unit_interval(seed, scale):
    nce = loss_for_every_label("nce+rce", random_logits(seed, scale), alpha=1.0, beta=0.0)
    assert nce.min() >= 0.0 and nce.max() <= 1.0 + 1e-6


def js_bound(pi1: float) -> float:
    """max of the normalised JS loss (at p_y = 0): binary entropy H(pi1) / Z."""
    h = -pi1 * math.log(pi1) - (1 - pi1) * math.log(1 - pi1)
    return h / (-(1 - pi1) * math.log(1 - pi1))


@PROPERTY
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 30.0), pi1=st.floats(0.05, 0.95))
def test_js_lies_in_its_range(seed, scale, pi1):
    js = loss_for_every_label("js", random_logits(seed, scale), pi1=pi1)
    assert js.min() >= -1e-6 and js.max() <= js_bound(pi1) * (1 + 1e-5)


def test_js_range_ends_are_attained():
    z = torch.tensor([[0.0, 40.0], [40.0, 0.0]])  # p_y ~ 0 and p_y ~ 1 for label 0
    js = make_loss("js", 2, reduction="none")(z, torch.tensor([0, 0]))
    assert js[0].item() == pytest.approx(js_bound(0.5), rel=1e-5)  # = 2 at pi1 = 0.5
    assert js[1].item() == pytest.approx(0.0, abs=1e-5)


def test_js_interpolates_ce_and_half_mae():
    z = random_logits(2, 1.5).numpy().astype(np.float64)
    y = np.arange(16) % 10
    p = p_label(z, y)
    near_ce = torch_loss("js", z, y, pi1=1e-3).double().numpy()
    np.testing.assert_allclose(near_ce, ref_ce(z, y), rtol=2e-2)
    # towards pi1 -> 1 it approaches 1 - p_y only logarithmically:
    # JS = (1 - p) + [(1 - p) + p log p] / (-log(1 - pi1)) + o(1 / log(1 - pi1)).
    gaps = []
    for eps in (1e-1, 1e-2, 1e-3, 1e-4):
        js = torch_loss("js", z, y, pi1=1 - eps).double().numpy()
        np.testing.assert_allclose(js, ref_js(z, y, pi1=1 - eps), rtol=1e-4)
        gaps.append(np.abs(js - (1 - p)).max())
        leading = ((1 - p) + p * np.log(p)) / -math.log(eps)
        np.testing.assert_allclose(js - (1 - p), leading, rtol=0.35)
    assert all(a > b for a, b in zip(gaps, gaps[1:]))


def test_gce_tends_to_ce_and_half_mae():
    z = random_logits(3, 1.5)
    y = torch.arange(16) % 10
    ce = make_loss("ce", 10, reduction="none")(z, y)
    # (1 - p^q) / q = L - q L^2 / 2 + ... with L = -log p: the gap shrinks like q
    for q in (0.1, 0.01, 0.001):
        gap = ce - make_loss("gce", 10, "none", q=q)(z, y)
        assert (gap >= -1e-4).all() and (gap <= q * ce**2 / 2 + 1e-4).all()
    half_mae = make_loss("mae", 10, reduction="none", scale=0.5)(z, y)
    near_one = make_loss("gce", 10, reduction="none", q=0.9999)(z, y)
    torch.testing.assert_close(near_one, half_mae, rtol=0, atol=1e-3)


def test_taylor_tends_to_ce_as_order_grows():
    z = random_logits(4, 1.0)
    y = torch.arange(16) % 10
    ce = make_loss("ce", 10, reduction="none")(z, y)
    u = 1 - torch.softmax(z, dim=1)[torch.arange(16), y]
    gaps = []
    for t in (1, 2, 5, 20, 200):
        gap = ce - make_loss("taylor-ce", 10, "none", order=t)(z, y)
        # the dropped tail sum_{k > t} u^k / k is at most u^(t+1) / ((t + 1) p)
        assert (gap >= -1e-5).all() and (gap <= u ** (t + 1) / ((t + 1) * (1 - u)) + 1e-5).all()
        gaps.append(gap.max().item())
    assert all(a > b for a, b in zip(gaps, gaps[1:]))
    torch.testing.assert_close(  # order 1 is MAE / 2
        make_loss("taylor-ce", 10, "none", order=1)(z, y),
        make_loss("mae", 10, "none", scale=0.5)(z, y),
    )


def test_mae_default_is_the_trained_one_minus_p_and_scale_one_the_l1_distance():
    # The reference code trains MAE as 1 - p_y; the paper's L1 distance ||e_y - p||_1 is twice that.
    z, y = random_logits(3, 4.0), torch.arange(16) % 10
    p_y = torch.softmax(z, dim=1)[torch.arange(16), y]
    torch.testing.assert_close(make_loss("mae", 10, "none")(z, y), 1.0 - p_y)
    l1 = (torch.nn.functional.one_hot(y, 10) - torch.softmax(z, dim=1)).abs().sum(dim=1)
    torch.testing.assert_close(make_loss("mae", 10, "none", scale=1.0)(z, y), l1)


def test_fl_with_gamma_zero_is_ce():
    z1 = random_logits(5, 4.0).requires_grad_()
    z2 = z1.detach().clone().requires_grad_()
    y = torch.arange(16) % 10
    fl = make_loss("fl", 10, gamma=0.0)(z1, y)
    ce = make_loss("ce", 10)(z2, y)
    fl.backward()
    ce.backward()
    torch.testing.assert_close(fl, ce)
    torch.testing.assert_close(z1.grad, z2.grad)


def test_ce_matches_torch_cross_entropy():
    z, y = random_logits(6, 3.0), torch.arange(16) % 10
    torch.testing.assert_close(make_loss("ce", 10)(z, y), torch.nn.functional.cross_entropy(z, y))


def far_wrong_logits(log_p_label: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Float64 logits of 3 samples over 10 classes whose label has log-probability about ``log_p_label``."""
    z = torch.zeros(3, 10, dtype=torch.float64)
    z[:, 1] = -log_p_label  # label 0 at logit 0, class 1 far above it
    return z, torch.zeros(3, dtype=torch.long)


@pytest.mark.parametrize("name", ["ce", "fl", "sce"])
def test_unclipped_ce_terms_have_no_floor_on_p(name):
    """A far-wrong sample (p_y = 1e-12, far below the 1e-7 clamp) keeps its full CE value and gradient."""
    z, y = far_wrong_logits(math.log(1e-12))
    z.requires_grad_()
    loss = make_loss(name, 10, reduction="sum")(z, y)
    loss.backward()
    log_p = torch.log_softmax(z.detach(), 1)[:, 0]
    assert float(-log_p[0]) > 27.0  # above the clamped ceiling -log(1e-7) = 16.1
    softmax_minus_onehot = torch.softmax(z.detach(), 1) - torch.nn.functional.one_hot(y, 10)
    if name == "ce":
        torch.testing.assert_close(loss, -log_p.sum())
        torch.testing.assert_close(z.grad, softmax_minus_onehot)
    elif name == "fl":  # (1 - p)^0.5 = 1 to 1e-12: FL is CE here
        torch.testing.assert_close(z.grad, softmax_minus_onehot, rtol=1e-6, atol=1e-9)
    else:  # SCE = 0.1 CE + RCE; RCE's gradient at p_y = 1e-12 is about 9.2 p_y, i.e. nil
        torch.testing.assert_close(z.grad, 0.1 * softmax_minus_onehot, rtol=1e-6, atol=1e-9)


def test_fl_gradient_is_finite_at_p_one():
    """(1 - p)^gamma has an infinite slope at p = 1; FL from log p floors 1 - p, so a certain sample trains."""
    z, y = far_wrong_logits(math.log(1e-12))
    z = (-z).requires_grad_()  # now the label holds all the mass: p_y rounds to 1
    make_loss("fl", 10)(z.float(), y).backward()
    assert torch.isfinite(z.grad).all()


@PROPERTY
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.1, 6.0), tau=st.floats(1.0, 50.0))
def test_phuber_gradient_in_p_is_clipped_at_tau(seed, scale, tau):
    # loss depends on z only through p = p_y, and dp/dz_y = p (1 - p): recover |dl/dp| from dl/dz_y.
    z = random_logits(seed, scale).requires_grad_()
    y = torch.arange(16) % 10
    make_loss("phuber-ce", 10, reduction="sum", tau=tau)(z, y).backward()
    p = torch.softmax(z.detach().double(), dim=1)[torch.arange(16), y]
    grad_p = z.grad.double()[torch.arange(16), y].abs() / (p * (1 - p))
    keep = (p > 1e-4) & (p < 0.99) & ((p * tau - 1).abs() > 1e-3)  # away from the kink and the ends
    assert (grad_p <= tau * (1 + 1e-3)).all()
    expected = torch.clamp(1 / p, max=tau)
    torch.testing.assert_close(grad_p[keep], expected[keep], rtol=2e-3, atol=0)


def test_phuber_is_transformed_ce():
    z, y = random_logits(7, 5.0), torch.arange(16) % 10
    got = make_loss("phuber-ce", 10, reduction="none", tau=3.0)(z, y)
    torch.testing.assert_close(got, ogc.transformed_loss(z, y, 3.0, "ce", reduction="none"))


@pytest.mark.parametrize("norm_ord", [1.0, 2.0, math.inf])
@PROPERTY
@given(seed=st.integers(0, 2**31 - 1), scale=st.floats(0.01, 100.0), max_norm=st.floats(0.1, 5.0))
def test_logit_clip_bounds_the_norm(norm_ord, seed, scale, max_norm):
    z = random_logits(seed, scale)
    clipped = clip_logit_norm(z, max_norm, norm_ord)
    before = torch.linalg.vector_norm(z, ord=norm_ord, dim=1)
    after = torch.linalg.vector_norm(clipped, ord=norm_ord, dim=1)
    assert (after <= max_norm * (1 + 1e-5)).all()
    inside = before <= max_norm
    torch.testing.assert_close(clipped[inside], z[inside])
    on_sphere = torch.full_like(after[~inside], max_norm)
    torch.testing.assert_close(after[~inside], on_sphere, rtol=1e-5, atol=0)


def test_logitclip_loss_is_bounded():
    # ||z'||_inf <= ||z'||_2 <= delta, so CE(z') <= log K + 2 delta however large the logits.
    z, y = random_logits(8, 1000.0), torch.arange(16) % 10
    for delta in (0.5, 1.0, 2.0):
        loss = make_loss("logitclip-ce", 10, reduction="none", delta=delta)(z, y)
        assert loss.max().item() <= math.log(10) + 2 * delta


def test_logitclip_zero_logits_have_finite_gradient():
    z = torch.zeros(2, 5, requires_grad=True)
    make_loss("logitclip-ce", 5)(z, torch.tensor([0, 4])).backward()
    assert torch.isfinite(z.grad).all()


# ------------------------------------------------------------------ registry and validation


def test_registry_names():
    expected = {"ce", "fl", "mae", "gce", "sce", "nce+rce", "phuber-ce", "taylor-ce", "js",
                "logitclip-ce", "anl-ce", "ce+ogc", "fl+ogc", "gce+ogc"}  # fmt: skip
    assert set(LOSSES) == expected and len(LOSSES) == 14


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="'hinge'") as err:
        make_loss("hinge", 10)
    assert all(name in str(err.value) for name in LOSSES)


def test_unknown_param_names_it_and_the_allowed_ones():
    with pytest.raises(ValueError, match="gamma") as err:
        make_loss("gce", 10, gamma=1.0)
    assert "allowed: q" in str(err.value)
    with pytest.raises(ValueError, match=r"unknown ce parameter 'beta'; allowed: \(none\)"):
        make_loss("ce", 10, beta=1.0)


DEFAULTS = {
    "fl": {"gamma": 0.5},
    "gce": {"q": 0.7},
    "mae": {"scale": 0.5},
    "sce": {"alpha": 0.1, "beta": 1.0},
    "nce+rce": {"alpha": 1.0, "beta": 1.0},
    "phuber-ce": {"tau": 10.0},
    "taylor-ce": {"order": 2},
    "js": {"pi1": 0.5},
    "logitclip-ce": {"delta": 1.0, "lp": 2.0},
    "anl-ce": {"alpha": 5.0, "beta": 5.0, "min_prob": 1e-7},
}


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_defaults_and_param_names(name):
    loss = make_loss(name, 10)
    expected = DEFAULTS.get(name, {})
    assert LOSSES[name].param_names() == tuple(expected)
    assert {k: getattr(loss, k) for k in expected} == expected


def test_names_are_case_insensitive():
    assert type(make_loss("PHuber-CE", 10)) is type(make_loss("phuber-ce", 10))
    assert type(make_loss(" NCE+RCE ", 10)) is type(make_loss("nce+rce", 10))


@pytest.mark.parametrize(
    "name,params,bad",
    [
        ("gce", {"q": 1.5}, "q=1.5"),
        ("fl", {"gamma": -1.0}, "gamma=-1.0"),
        ("js", {"pi1": 1.0}, "pi1=1.0"),
        ("taylor-ce", {"order": 0}, "order=0"),
        ("taylor-ce", {"order": 2.5}, "order=2.5"),
        ("phuber-ce", {"tau": 0.5}, "tau=0.5"),
        ("logitclip-ce", {"delta": 0.0}, "delta=0.0"),
        ("anl-ce", {"min_prob": 0.2}, "min_prob=0.2"),
        ("sce", {"alpha": -0.1}, "alpha=-0.1"),
        ("mae", {"scale": 0.0}, "scale=0.0"),
    ],
)
def test_bad_hyperparameter_values(name, params, bad):
    with pytest.raises(ValueError, match=bad):
        make_loss(name, 10, **params)


def test_bad_reduction_num_classes_and_shapes():
    with pytest.raises(ValueError, match="'avg'.*mean, sum, none"):
        make_loss("ce", 10, reduction="avg")
    with pytest.raises(ValueError, match="num_classes"):
        make_loss("mae", 1)
    loss = make_loss("sce", 10)
    with pytest.raises(ValueError, match=r"\(batch, 10\)"):
        loss(torch.zeros(4, 7), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="targets"):
        loss(torch.zeros(4, 10), torch.zeros(3, dtype=torch.long))


@pytest.mark.parametrize("name", list(LOSSES))
@pytest.mark.parametrize("logits_shape, targets_shape, match", [
    ((64, 10), (10,), r"targets must have shape \(64,\)"),  # once summed the first 10 rows (OGC losses)
    ((4, 5), (4,), r"logits must be \(batch, 10\)"),
    ((4, 10), (4, 1), "targets must have shape"),
])
def test_every_loss_checks_shapes_the_same_way(name, logits_shape, targets_shape, match):
    loss = make_loss(name, 10)
    with pytest.raises(ValueError, match=match):
        loss(torch.zeros(logits_shape), torch.zeros(targets_shape, dtype=torch.long), lr=0.1)


@pytest.mark.parametrize("name", list(LOSSES))
def test_every_loss_runs_forward_and_backward(name):
    loss = make_loss(name, 10)
    y = torch.arange(32) % 10
    for step, scale in enumerate((0.1, 5.0, 50.0)):  # small, typical and saturated logits
        z = random_logits(100 + step, scale, batch=32).requires_grad_()
        value = loss(z, y, lr=0.1)
        value.backward()
        assert value.ndim == 0 and torch.isfinite(value)
        assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_ogc_entries_take_ogc_controller_and_base_params():
    assert {"epsilon", "interval", "queue_size", "seed"} <= set(LOSSES["ce+ogc"].param_names())
    assert "gamma" in LOSSES["fl+ogc"].param_names()
    assert "gamma" not in LOSSES["ce+ogc"].param_names()
    assert "q" in LOSSES["gce+ogc"].param_names()
    loss = make_loss("GCE+OGC", 10, epsilon=10.0, q=0.5, seed=3)
    assert isinstance(loss, ogc.OGCLoss) and loss.base.name == "gce(q=0.5)"
    with pytest.raises(ValueError, match="bogus.*allowed: epsilon.*gamma"):
        make_loss("fl+ogc", 10, bogus=1.0)


@pytest.mark.parametrize("name,params", [("ce", {}), ("fl", {"gamma": 0.3}), ("gce", {"q": 0.5})])
def test_ogc_before_any_clipping_equals_its_base_loss(name, params):
    # the queue (4096) is far from full after one batch of 16, so tau is still infinite
    z, y = random_logits(9, 3.0), torch.arange(16) % 10
    clipped = make_loss(f"{name}+ogc", 10, reduction="none", **params)
    value = clipped(z, y, lr=0.1)
    assert torch.isinf(clipped.tau)
    torch.testing.assert_close(value, make_loss(name, 10, reduction="none", **params)(z, y))


@pytest.mark.parametrize("name", list(LOSSES))
def test_targets_that_are_not_class_indices_in_range_are_refused(name: str) -> None:
    """Float targets were truncated (2.7 trained as class 2) and returned a loss."""
    loss, logits = make_loss(name, 3), torch.zeros(4, 3)
    with pytest.raises(ValueError, match="targets must be integer class indices, got torch.float32"):
        loss(logits, torch.tensor([0, 1, 2, 1]).float() + 0.7, lr=0.1)
    with pytest.raises(ValueError, match=r"targets must be class indices in \[0, 2\], got -1 to 3"):
        loss(logits, torch.tensor([0, -1, 3, 1]), lr=0.1)


# Every baseline's default hyperparameters and the paper setting each one is (the docstrings cite the same).
PAPER_DEFAULTS = {
    "gce": ({"q": 0.7}, "Zhang & Sabuncu, NeurIPS 2018"),
    "sce": ({"alpha": 0.1, "beta": 1.0}, "Wang et al., ICCV 2019, CIFAR-10"),
    "nce+rce": ({"alpha": 1.0, "beta": 1.0}, "Ma et al., ICML 2020, CIFAR-10"),
    "anl-ce": ({"alpha": 5.0, "beta": 5.0, "min_prob": 1e-7}, "Ye et al., NeurIPS 2023, CIFAR-10 config"),
    "phuber-ce": ({"tau": 10.0}, "Menon et al., ICLR 2020, CIFAR"),
    "taylor-ce": ({"order": 2}, "Feng et al., IJCAI 2020, CIFAR-10"),
    "fl": ({"gamma": 0.5}, "the OGC and APL CIFAR-10 settings"),
}


@pytest.mark.parametrize("name", sorted(PAPER_DEFAULTS))
def test_each_baseline_defaults_to_its_papers_setting(name: str) -> None:
    values, source = PAPER_DEFAULTS[name]
    signature = inspect.signature(LOSSES[name])
    assert {k: signature.parameters[k].default for k in values} == values, source


def test_the_ogc_losses_are_the_three_clipped_bases_and_build_an_ogc_loss() -> None:
    assert OGC_NAMES == ["ce+ogc", "fl+ogc", "gce+ogc"]
    assert is_ogc_loss(" CE+OGC ") and not is_ogc_loss("phuber-ce") and not is_ogc_loss("mae+ogc")
    assert all(isinstance(make_loss(name, 10), ogc.OGCLoss) == is_ogc_loss(name) for name in LOSSES)
