"""Tests of ogc_lab.ogc: transformed losses, the 2-GMM, r(tau), the tau solve, the controller, OGCLoss."""

from __future__ import annotations

import io
import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ogc_lab.ogc import (
    GMM1D,
    H_MAX,
    H_MIN,
    OGC_DEFAULTS,
    P_MAX,
    P_MIN,
    OGCLoss,
    OGCSettings,
    ThresholdController,
    base_loss,
    clipped_loss_of_p,
    fit_gmm_sklearn,
    fit_gmm_torch,
    label_prob,
    ratio_exact,
    ratio_grid,
    reference_tau,
    solve_tau,
    transformed_loss,
)

F64 = torch.float64
SETTINGS = settings(max_examples=40, deadline=None)
BASES = {"ce": {}, "fl": {"gamma": 0.5}, "gce": {"q": 0.7}}


def mixture_sample(n: int, means, sds, weights, seed: int) -> torch.Tensor:
    """n draws of a 2-component normal mixture, clamped to [H_MIN, H_MAX] (the range of H)."""
    gen = torch.Generator().manual_seed(seed)
    second = torch.rand(n, generator=gen) >= weights[0]
    z = torch.randn(n, generator=gen, dtype=F64)
    return torch.where(second, means[1] + sds[1] * z, means[0] + sds[0] * z).clamp(H_MIN, H_MAX)


def realistic_queue(n: int = OGC_DEFAULTS.queue_size, seed: int = 0) -> torch.Tensor:
    return mixture_sample(n, (0.3, 2.5), (0.3, 1.0), (0.6, 0.4), seed)


def gmm(means, variances, weights=(0.5, 0.5)) -> GMM1D:
    return GMM1D(*(torch.tensor(v, dtype=F64) for v in (means, variances, weights)))


# ------------------------------------------------------------------------------------------------
# transformed loss
# ------------------------------------------------------------------------------------------------


@SETTINGS
@given(
    name=st.sampled_from(sorted(BASES)),
    ps=st.lists(st.floats(1e-6, 1 - 1e-6), min_size=1, max_size=16),
    thr=st.floats(1e-6, 1 - 1e-6),
)
def test_transformed_loss_gradient_in_p_is_clipped_gradient(name, ps, thr):
    base = base_loss(name, **BASES[name])
    tau = base.grad(torch.tensor(thr, dtype=F64))  # every tau in the loss's range
    p = torch.tensor(ps, dtype=F64, requires_grad=True)
    loss, _ = clipped_loss_of_p(p, tau, base)
    (grad,) = torch.autograd.grad(loss.sum(), p)
    expected = -torch.minimum(base.grad(p.detach()), tau)
    torch.testing.assert_close(grad, expected, rtol=1e-6, atol=1e-9)


@SETTINGS
@given(name=st.sampled_from(sorted(BASES)), thr=st.floats(1e-5, 0.99))
def test_transformed_loss_is_continuous_at_threshold(name, thr):
    base = base_loss(name, **BASES[name])
    tau = base.grad(torch.tensor(thr, dtype=F64))
    p_thr = base.threshold_prob(tau)
    below, clipped_below = clipped_loss_of_p(p_thr * (1 - 1e-9), tau, base)
    above, clipped_above = clipped_loss_of_p(p_thr * (1 + 1e-9), tau, base)
    assert bool(clipped_below) and not bool(clipped_above)
    assert abs(float(below - above)) <= 1e-7 * (1.0 + abs(float(above)))


@SETTINGS
@given(
    logits=st.lists(st.floats(-5, 5), min_size=2, max_size=8),
    label=st.integers(0, 7),
    log_tau=st.floats(0.0, 10.0),
)
def test_logit_gradient_of_clipped_sample_is_scaled_ce_gradient(logits, label, log_tau):
    z = torch.tensor([logits], dtype=F64, requires_grad=True)
    y = torch.tensor([label % len(logits)])
    tau = math.exp(log_tau)
    (grad,) = torch.autograd.grad(transformed_loss(z, y, tau, "ce", reduction="sum"), z)
    p = label_prob(z.detach(), y)
    ce_grad = torch.softmax(z.detach(), 1) - torch.nn.functional.one_hot(y, len(logits)).to(F64)
    scale = tau * p if float(p) < 1.0 / tau else torch.ones_like(p)
    torch.testing.assert_close(grad, scale[:, None] * ce_grad, rtol=1e-7, atol=1e-10)


@SETTINGS
@given(
    k=st.integers(2, 10),
    rows=st.integers(1, 6),
    seed=st.integers(0, 10_000),
    scale=st.floats(0.1, 20.0),
    log_tau=st.floats(0.0, math.log(1e3)),
)
def test_proposition_1_bounds_for_ce(k, rows, seed, scale, log_tau):
    """0 <= lbar <= 1 + log tau per sample; K lbar(1/K) <= sum over classes <= (K-1)(1 + log tau).

    Lower bound: Jensen (lbar is convex).  Upper: a convex function on the simplex peaks at a vertex.
    Clamping p to [P_MIN, P_MAX] moves each p by <= 1e-7 at slope <= tau: the stated slack.
    """
    tau = math.exp(log_tau)
    ce = base_loss("ce")
    z = scale * torch.randn(rows, k, generator=torch.Generator().manual_seed(seed), dtype=F64)
    p = torch.softmax(z, 1).clamp(P_MIN, P_MAX)
    loss, _ = clipped_loss_of_p(p, tau, ce)
    slack = 2e-7 * k * tau + 1e-12
    assert float(loss.min()) >= -1e-12
    assert float(loss.max()) <= 1.0 + log_tau + 1e-12
    at_uniform, _ = clipped_loss_of_p(torch.tensor(1.0 / k, dtype=F64), tau, ce)
    sums = loss.sum(1)
    assert float(sums.min()) >= k * float(at_uniform) - slack
    assert float(sums.max()) <= (k - 1) * (1.0 + log_tau) + slack


def test_unknown_base_parameter_is_rejected():
    with pytest.raises(ValueError, match="gamma"):
        base_loss("gce", gamma=0.5)
    with pytest.raises(ValueError, match="unknown base loss"):
        base_loss("mae")


# ------------------------------------------------------------------------------------------------
# GMM
# ------------------------------------------------------------------------------------------------

TRUE = {"means": (2.0, 5.0), "variances": (0.25, 1.0), "weights": (0.6, 0.4)}  # inside [H_MIN, H_MAX]


@pytest.mark.parametrize("fit", [fit_gmm_torch, fit_gmm_sklearn])
def test_gmm_recovers_known_mixture(fit):
    # 20000 draws: standard errors about 0.01 (means), 0.016 (relative variance), 0.004 (weights).
    x = mixture_sample(20_000, TRUE["means"], (0.5, 1.0), TRUE["weights"], seed=1)
    model = fit(x, max_iter=200, tol=1e-9)
    torch.testing.assert_close(model.means, torch.tensor(TRUE["means"], dtype=F64), atol=0.05, rtol=0)
    torch.testing.assert_close(model.variances, torch.tensor(TRUE["variances"], dtype=F64), rtol=0.08, atol=0)
    torch.testing.assert_close(model.weights, torch.tensor(TRUE["weights"], dtype=F64), atol=0.02, rtol=0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_torch_and_sklearn_gmm_agree(seed):
    # Same EM from a k-means partition.  scikit-learn's Lloyd iterations stop early (tol 1e-4), so
    # its partition can differ by a few points from the exact 2-means split, and 10 EM steps (still
    # moving by ~0.01 a step here) carry that over: hence 2e-3, not 1e-12.
    x = realistic_queue(seed=seed)
    a, b = fit_gmm_torch(x), fit_gmm_sklearn(x)
    for name in ("means", "variances", "weights"):
        torch.testing.assert_close(getattr(a, name), getattr(b, name), atol=2e-3, rtol=0)


def test_freezing_equals_stopping_where_sklearn_stops():
    from sklearn.mixture import GaussianMixture

    x = realistic_queue(seed=1)
    ref = GaussianMixture(2, max_iter=10, reg_covar=1e-3, tol=1e-3, random_state=0).fit(x.numpy()[:, None])
    assert ref.converged_ and ref.n_iter_ < 10
    frozen = fit_gmm_torch(x, max_iter=10, tol=1e-3)
    stopped = fit_gmm_torch(x, max_iter=ref.n_iter_, tol=0.0)
    one_more = fit_gmm_torch(x, max_iter=ref.n_iter_ + 1, tol=0.0)
    assert torch.equal(frozen.means, stopped.means) and torch.equal(frozen.variances, stopped.variances)
    assert not torch.equal(frozen.means, one_more.means)


def test_gmm_is_deterministic_sorted_and_float64_on_cpu():
    x = realistic_queue(seed=3).float()
    a, b = fit_gmm_torch(x), fit_gmm_torch(x)
    assert all(torch.equal(getattr(a, n), getattr(b, n)) for n in ("means", "variances", "weights"))
    assert a.means.dtype == F64 and float(a.means[0]) < float(a.means[1])
    for dtype in (torch.bfloat16, torch.float16, torch.int64):  # any CPU dtype fits in float64
        low = fit_gmm_torch((x * 100).to(dtype))
        assert low.means.dtype == F64 and float(low.means[0]) < float(low.means[1])


def test_random_init_is_reproducible_from_generator():
    x = realistic_queue(seed=4)
    fits = [
        fit_gmm_torch(x, max_iter=100, tol=1e-9, init="random", generator=torch.Generator().manual_seed(s))
        for s in (7, 7, 8)
    ]
    assert torch.equal(fits[0].means, fits[1].means)
    reference = fit_gmm_torch(x, max_iter=100, tol=1e-9)
    torch.testing.assert_close(fits[2].means, reference.means, atol=1e-3, rtol=0)
    with pytest.raises(ValueError, match="Generator"):
        fit_gmm_torch(x, init="random")
    with pytest.raises(ValueError, match="init"):
        fit_gmm_torch(x, init="kmeans++")


def test_gmm_posterior_is_the_noisy_components_responsibility():
    from scipy.stats import norm

    mixture = gmm(TRUE["means"], TRUE["variances"], TRUE["weights"])
    h = torch.linspace(0.0, 8.0, 41, dtype=F64)
    clean, noisy = (w * norm.pdf(h.numpy(), m, math.sqrt(v)) for m, v, w in zip(*TRUE.values()))
    torch.testing.assert_close(mixture.posterior(h), torch.from_numpy(noisy / (clean + noisy)), rtol=1e-12, atol=1e-15)
    swapped = GMM1D(*(getattr(mixture, name).flip(0) for name in ("means", "variances", "weights")))
    torch.testing.assert_close(swapped.posterior(h), mixture.posterior(h))  # the upper component, whatever the order
    assert mixture.posterior(torch.tensor([1e3], dtype=F64)).item() == 1.0  # both densities underflow there



def test_gmm_densities_are_the_weighted_normal_densities_clean_first():
    from scipy.stats import norm

    mixture = gmm(TRUE["means"], TRUE["variances"], TRUE["weights"])
    h = torch.linspace(0.0, 8.0, 41, dtype=F64)
    expected = [torch.from_numpy(w * norm.pdf(h.numpy(), m, math.sqrt(v))) for m, v, w in zip(*TRUE.values())]
    torch.testing.assert_close(mixture.densities(h), torch.stack(expected, dim=-1), rtol=1e-12, atol=1e-300)
    swapped = GMM1D(*(getattr(mixture, name).flip(0) for name in ("means", "variances", "weights")))
    torch.testing.assert_close(swapped.densities(h), mixture.densities(h))  # clean first, whatever the order
    assert mixture.densities(torch.tensor([1e3], dtype=F64)).tolist() == [[0.0, 0.0]]  # underflow, not NaN

# ------------------------------------------------------------------------------------------------
# r(tau) and the tau solve
# ------------------------------------------------------------------------------------------------

MIXTURES = [
    ((0.5, 3.0), (0.25, 1.0)),
    ((1.0, 4.0), (0.5, 2.0)),
    ((2.0, 6.0), (1.0, 4.0)),
    ((0.3, 2.5), (0.06, 1.0)),
    ((0.1, 1.0), (0.01, 0.3)),
]
TAUS = torch.logspace(0.05, 7.0, 40, dtype=F64)


@pytest.mark.parametrize("means,variances", MIXTURES)
def test_grid_ratio_converges_to_exact_ratio(means, variances):
    # The reference's equal-weight grid has a first-order (endpoint) error: <= 3e-3 relative with
    # 1000 points on these mixtures, and 8x smaller with 8x the points.
    model = gmm(means, variances)
    exact = ratio_exact(TAUS, model, 1.0)
    err_1000 = float((ratio_grid(TAUS, model, base_loss("ce")) / exact - 1).abs().max())
    err_8000 = float((ratio_grid(TAUS, model, base_loss("ce"), n_grid=8000) / exact - 1).abs().max())
    assert err_1000 <= 3e-3 and err_8000 <= 4e-4 and err_8000 <= err_1000 / 5
    gce_grid = ratio_grid(TAUS, model, base_loss("gce", q=0.7))
    gce_err = (gce_grid / ratio_exact(TAUS, model, 0.3) - 1).abs().max()
    assert float(gce_err) <= 1e-3


def test_exact_ratio_limits_and_no_overflow():
    model = gmm((0.5, 8.0), (0.25, 60.0))  # k s^2 / 2 = 30: would overflow without log space in float32
    r = ratio_exact(torch.tensor([0.5, 1.0, math.exp(H_MAX), math.inf], dtype=F64), model, 1.0)
    assert torch.isfinite(r).all()
    torch.testing.assert_close(r[:2], torch.ones(2, dtype=F64))  # tau <= g(h_lo): everything clipped
    assert float(r[2]) == pytest.approx(float(r[3]), rel=1e-12)  # tau >= g(h_hi): nothing clipped


@SETTINGS
@given(
    means=st.tuples(st.floats(0.0, 10.0), st.floats(0.0, 10.0)),
    variances=st.tuples(st.floats(1e-3, 30.0), st.floats(1e-3, 30.0)),
    target=st.floats(1.0, 5.0),
)
def test_solve_is_finite_or_inf_never_nan_for_valid_mixtures(means, variances, target):
    # Regression: at tau = g(h_lo) the two standardised limits of one Phi difference coincide up to
    # rounding, which once gave log of a negative number (NaN).
    model = gmm(sorted(means), variances)
    ends = ratio_exact(torch.tensor([1.0, math.exp(H_MAX)], dtype=F64), model, 1.0)
    assert torch.isfinite(ends).all()
    tau = solve_tau(model, target, base_loss("ce"))
    assert not math.isnan(float(tau)) and float(tau) >= 1.0


@pytest.mark.parametrize("target", [1.5, 1.2, 1.02])  # r(no clipping) is 2.0 for GCE
@pytest.mark.parametrize("name,k", [("ce", 1.0), ("gce", 0.3)])
def test_exact_solve_meets_target(target, name, k):
    model = gmm((0.3, 2.5), (0.06, 1.0), (0.6, 0.4))
    tau = solve_tau(model, target, base_loss(name, **BASES[name]), method="exact")
    assert tau.ndim == 0 and math.isfinite(float(tau))
    assert float(ratio_exact(tau, model, k)) == pytest.approx(target, rel=1e-6)
    assert float(ratio_exact(tau * (1 + 1e-5), model, k)) > target  # r increasing: tau is the largest


@SETTINGS
@given(
    clean_mean=st.floats(0.0, 1.0),
    noisy_mean=st.floats(0.0, 6.0),
    variances=st.tuples(st.floats(1e-3, 10.0), st.floats(1e-3, 10.0)),
    noisy_weight=st.floats(0.05, 0.95),
    target=st.sampled_from([1.02, 1.2, 3.0]),
)
def test_exact_solve_meets_target_on_narrow_mixtures(clean_mean, noisy_mean, variances, noisy_weight, target):
    # Regression: two search rounds left r(tau) up to 1e-6 off the target on narrow mixtures
    # (variances near the 1e-3 floor of reg_covar); three rounds with the curvature step: ~4e-12.
    model = gmm((clean_mean, max(clean_mean, noisy_mean)), variances, (1.0 - noisy_weight, noisy_weight))
    tau = float(solve_tau(model, target, base_loss("ce")))
    assume(math.isfinite(tau) and tau > 1.0 + 1e-6)  # inf: no clipping needed; g(h_lo): clip everything
    assert float(ratio_exact(torch.tensor(tau, dtype=F64), model, 1.0)) == pytest.approx(target, rel=1e-9)


@pytest.mark.parametrize("name", ["ce", "fl"])
def test_grid_solve_meets_target_of_grid_ratio(name):
    base = base_loss(name, **BASES[name])
    model = gmm((0.3, 2.5), (0.06, 1.0), (0.6, 0.4))
    tau = solve_tau(model, 1.2, base, method="grid")
    assert float(ratio_grid(tau, model, base)) == pytest.approx(1.2, rel=1e-6)
    assert float(ratio_grid(tau * 1.001, model, base)) > 1.2


def test_solve_edge_cases():
    ce = base_loss("ce")
    same = gmm((1.0, 1.0), (0.5, 0.5))  # r == 1 for every tau
    assert math.isinf(float(solve_tau(same, 1.2, ce)))  # no clipping already meets the target
    smallest = solve_tau(same, 0.5, ce)  # nothing meets it: clip everything
    assert float(smallest) == pytest.approx(float(ce.grad_of_h(torch.tensor(H_MIN, dtype=F64))), rel=1e-12)
    broken = gmm((math.nan, 1.0), (0.5, 0.5))
    assert math.isnan(float(solve_tau(broken, 1.2, ce)))
    with pytest.raises(ValueError, match="exact"):
        solve_tau(same, 1.2, base_loss("fl"), method="exact")


# ------------------------------------------------------------------------------------------------
# The reference code's tau search
# ------------------------------------------------------------------------------------------------


def note_grad(name: str, p: torch.Tensor) -> torch.Tensor:
    """|dl/dp| of CE, FL (gamma 0.5) and GCE (q 0.7), written out from their formulas."""
    if name == "ce":
        return 1.0 / p
    if name == "gce":
        return p ** (0.7 - 1.0)
    return (1.0 - p) ** 0.5 / p - 0.5 * torch.log(p) * (1.0 - p) ** (0.5 - 1.0)


def note_reference_search(mixture: GMM1D, target: float, name: str) -> tuple[float, float]:
    """The reference's search after method.md section 3, written independently of ogc_lab.ogc.

    r(tau) = E_noisy[min(g, tau)] / E_clean[min(g, tau)] over normals truncated to [H_MIN, H_MAX],
    on 1000 equally spaced H (the truncation constants cancel, so plain Gaussian weights do);
    10 bisection steps on p = the threshold probability in [P_MIN, P_MAX], keeping r <= target on
    the upper end, which is returned (a midpoint within 1e-7 of the target ends the search);
    tau = |l'(p)| in float32.
    """
    h = torch.linspace(H_MIN, H_MAX, 1000, dtype=F64)
    g = note_grad(name, torch.exp(-h))
    components = zip(mixture.means.tolist(), mixture.variances.tolist())
    weights = [torch.exp(-((h - m) ** 2) / (2.0 * v)) for m, v in components]

    def tau_at(p: float) -> float:
        return note_grad(name, torch.tensor(p, dtype=torch.float32)).item()

    def r(p: float) -> float:
        clipped = torch.minimum(g, torch.tensor(tau_at(p), dtype=F64))
        clean, noisy = ((w * clipped).sum() / w.sum() for w in weights)
        return float(noisy / clean)

    lo, hi = P_MIN, P_MAX
    if r(hi) > target:
        return hi, tau_at(hi)
    if r(lo) < target:
        return lo, tau_at(lo)
    for _ in range(10):
        mid = (lo + hi) / 2.0
        if abs(target - r(mid)) < 1e-7:
            return mid, tau_at(mid)
        lo, hi = (lo, mid) if r(mid) < target else (mid, hi)
    return hi, tau_at(hi)


def random_mixtures(n: int, seed: int) -> list[GMM1D]:
    """Mixtures like those of training runs: a clean component near 0, a noisy one above it."""
    rng = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 4, generator=rng, dtype=F64)
    clean, gap = 3.0 * u[:, 0], 0.2 + 7.8 * u[:, 1]
    clean_var, noisy_var = 0.005 + 2.0 * u[:, 2], 0.05 + 6.0 * u[:, 3]
    rows = zip(*(t.tolist() for t in (clean, gap, clean_var, noisy_var)))
    return [gmm((c, c + d), (vc, vn)) for c, d, vc, vn in rows]


@pytest.mark.parametrize("name", sorted(BASES))
def test_reference_search_matches_its_description_bit_for_bit(name):
    base = base_loss(name, **BASES[name])
    for model in random_mixtures(30, seed=len(name)):
        for target in (3.0, 1.2, 1.02):
            assert reference_tau(model, target, base) == note_reference_search(model, target, name)


def test_reference_search_is_capped_and_quantised_in_p():
    ce, gce = base_loss("ce"), base_loss("gce", q=0.7)
    wide = gmm((0.277, 0.631), (6.142, 8.037))  # the closed-form solve clips only above tau = 56,268
    assert float(solve_tau(wide, 3.0, ce)) > 5e4
    assert reference_tau(wide, 3.0, ce)[1] == pytest.approx(1023.9, abs=0.01)  # p = P_MIN + (P_MAX - P_MIN) / 1024
    steps, gce_taus = [], []
    for model in random_mixtures(60, seed=7):
        p, _ = reference_tau(model, 1.2, ce)
        steps.append((p - P_MIN) / (P_MAX - P_MIN) * 1024)
        p, tau = reference_tau(model, 1.2, gce)
        gce_taus.append(tau if p > P_MIN else 0.0)  # P_MIN: no clipping
    steps = torch.tensor(steps, dtype=F64)
    assert torch.allclose(steps, steps.round(), rtol=0, atol=1e-6)  # multiples of (P_MAX - P_MIN) / 1024
    late = gmm((5.9, 6.3), (3.7, 8.0))  # GCE's closed-form solve: tau = 17.6
    assert max(gce_taus) <= 8.0 < 17.5 < float(solve_tau(late, 1.2, gce))
    assert reference_tau(late, 1.2, gce)[1] == pytest.approx(8.0, abs=1e-3)  # 1023.9 ** 0.3


def test_controller_reference_search_follows_the_fitted_mixture():
    ce = base_loss("ce")
    reference = ThresholdController(ce, interval=4, queue_size=128, tau_search="reference")
    solve = ThresholdController(ce, interval=4, queue_size=128)
    for h in batches(4, 32):
        tau = reference.update(h, lr=0.1)
        solve.update(h, lr=0.1)
    assert reference.refits == 1 and tau.dtype == F64 and torch.equal(reference.means, solve.means)
    expected = reference_tau(reference.last_gmm, 3.0, ce)
    assert float(tau) == expected[1] and expected == note_reference_search(solve.last_gmm, 3.0, "ce")
    assert float(tau) != pytest.approx(float(solve.tau), rel=1e-4)  # quantised in p: not the exact crossing


def test_tau_search_rejects_unknown_names_and_a_method_it_does_not_use():
    with pytest.raises(ValueError, match="unknown tau_search 'bisect'; allowed: solve, reference"):
        ThresholdController(base_loss("ce"), tau_search="bisect")
    with pytest.raises(ValueError, match="method='exact' applies to tau_search='solve' only"):
        ThresholdController(base_loss("ce"), method="exact", tau_search="reference")


# ------------------------------------------------------------------------------------------------
# ThresholdController
# ------------------------------------------------------------------------------------------------


def batches(n_steps: int, batch: int, seed: int = 0) -> list[torch.Tensor]:
    x = realistic_queue(n_steps * batch, seed=seed)
    return list(x.view(n_steps, batch))


@pytest.mark.parametrize(
    "queue,batch,interval,steps,expected", [(64, 16, 4, 30, 7), (100, 16, 4, 20, 4), (64, 128, 3, 10, 3)]
)
def test_refit_cadence_is_exact(queue, batch, interval, steps, expected):
    """Refit at steps that are multiples of ``interval`` once the queue is full, never before."""
    ctrl = ThresholdController(base_loss("ce"), interval=interval, queue_size=queue)
    full_at = math.ceil(queue / batch)
    for t, h in enumerate(batches(steps, batch), start=1):
        tau = ctrl.update(h, lr=0.01)
        if t < max(full_at, interval):
            assert math.isinf(float(tau)) and ctrl.refits == 0
    assert ctrl.refits == expected and ctrl.step == steps and math.isfinite(float(ctrl.tau))


def test_queue_ring_buffer_partial_wrap_and_oversized_batches():
    ctrl = ThresholdController(base_loss("ce"), queue_size=10)
    first = torch.arange(6, dtype=F64)
    ctrl.push(first)
    assert ctrl.fill == 6 and torch.equal(ctrl.queue[:6], first) and ctrl.queue[6:].isnan().all()
    ctrl.push(torch.arange(6, 13, dtype=F64))  # wraps: 6..9 at the end, 10..12 at the start
    assert torch.equal(ctrl.queue, torch.tensor([10, 11, 12, 3, 4, 5, 6, 7, 8, 9], dtype=F64))
    big = torch.arange(100, 125, dtype=F64)  # larger than the queue: only the last 10 stay
    ctrl.push(big)
    assert ctrl.pushed == 38 and ctrl.fill == 10
    assert torch.equal(ctrl.queue.sort().values, big[-10:])
    assert torch.equal(ctrl.queue[(38 - 1) % 10], big[-1])  # the newest value sits before the write position


@pytest.mark.parametrize("paths", ["cpu", "accelerator"])  # host branch vs torch.where
def test_degenerate_queue_keeps_previous_tau(paths, request):
    if paths == "accelerator":
        request.getfixturevalue("accelerator_paths")
    ctrl = ThresholdController(base_loss("ce"), interval=2, queue_size=64)
    for _ in range(4):
        ctrl.update(torch.full((32,), 0.7, dtype=F64), lr=0.1)
    assert ctrl.refits == 2 and math.isinf(float(ctrl.tau))  # constant H: nothing to fit
    for h in batches(4, 32):
        ctrl.update(h, lr=0.1)
    good_tau, good_means = ctrl.tau.clone(), ctrl.means.clone()
    assert math.isfinite(float(good_tau))
    for _ in range(4):
        ctrl.update(torch.full((32,), 0.7, dtype=F64), lr=0.1)
    assert ctrl.refits == 6 and torch.equal(ctrl.tau, good_tau) and torch.equal(ctrl.means, good_means)


def test_refit_uses_target_from_lr_and_epsilon():
    ctrl = ThresholdController(base_loss("ce"), epsilon=10.0, interval=4, queue_size=128)
    for h in batches(4, 32):
        tau = ctrl.update(h, lr=0.05)
    expected = solve_tau(fit_gmm_torch(ctrl.queue), 1.5, base_loss("ce"))
    assert torch.equal(tau, expected) and ctrl.target == 1.5
    diag = ctrl.diagnostics()
    assert diag["target"] == 1.5 and diag["tau"] == float(expected) and diag["refits"] == 1.0
    assert diag["means_clean"] < diag["means_noisy"] and all(isinstance(v, float) for v in diag.values())


def test_state_dict_round_trip_continues_identically():
    def make() -> ThresholdController:
        return ThresholdController(base_loss("ce"), interval=3, queue_size=96, init="random", seed=5)

    steps = batches(40, 32, seed=2)
    a = make()
    for h in steps[:20]:
        a.update(h, lr=0.1)
    buffer = io.BytesIO()
    torch.save(a.state_dict(), buffer)
    buffer.seek(0)
    b = make()
    b.load_state_dict(torch.load(buffer, weights_only=True))
    for h in steps[20:]:
        assert torch.equal(a.update(h, lr=0.01), b.update(h, lr=0.01))
    assert torch.equal(a.queue, b.queue) and (a.step, a.pushed, a.refits) == (b.step, b.pushed, b.refits)
    assert torch.equal(a.generator.get_state(), b.generator.get_state())


def test_controller_state_stays_on_its_device_and_is_small():
    ctrl = ThresholdController(base_loss("ce"), interval=2, queue_size=64, device="cpu")
    for h in batches(4, 32):
        ctrl.update(h.float(), lr=0.1)
    tensors = {k: v for k, v in vars(ctrl).items() if isinstance(v, torch.Tensor)}
    assert set(tensors) == {"queue", "tau", "means", "variances", "weights"}
    assert all(v.device == torch.device("cpu") for v in tensors.values())
    assert ctrl.generator.device == torch.device("cpu")
    assert ctrl.state_nbytes() < 64 * 8 + 10_000


def test_sklearn_controller_matches_torch_controller():
    taus = []
    for backend in ("torch", "sklearn"):
        ctrl = ThresholdController(base_loss("ce"), interval=4, queue_size=OGC_DEFAULTS.queue_size, gmm=backend)
        for h in batches(32, 128, seed=6):
            ctrl.update(h, lr=0.1)
        taus.append(float(ctrl.tau))
    assert taus[0] == pytest.approx(taus[1], rel=1e-3)


def test_distributed_gather_single_process(tmp_path):
    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("torch.distributed not available")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        ctrl = ThresholdController(base_loss("ce"), queue_size=8, distributed=True)
        h = torch.arange(4, dtype=F64)
        ctrl.update(h, lr=0.1)
        assert torch.equal(ctrl.queue[:4], h) and ctrl.pushed == 4
    finally:
        dist.destroy_process_group()


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_controller_state_keeps_its_dtype_across_refits(dtype):
    # The CPU fit works in float64; the state it leaves stays in the controller's dtype.
    ctrl = ThresholdController(base_loss("ce"), interval=2, queue_size=128, dtype=dtype)
    reference = ThresholdController(base_loss("ce"), interval=2, queue_size=128)
    for h in batches(4, 64):
        ctrl.update(h, lr=0.1)
        reference.update(h, lr=0.1)
    assert ctrl.refits == 2 and {t.dtype for t in (ctrl.tau, ctrl.means, ctrl.variances, ctrl.weights)} == {dtype}
    assert float(ctrl.tau) == pytest.approx(float(reference.tau), rel=0.02)  # the queue's rounding apart


def test_controller_rejects_bad_arguments():
    with pytest.raises(ValueError, match="exact"):
        ThresholdController(base_loss("fl"), method="exact")
    with pytest.raises(ValueError, match="gmm"):
        ThresholdController(base_loss("ce"), gmm="em")
    with pytest.raises(ValueError, match="queue_size"):
        ThresholdController(base_loss("ce"), queue_size=0)
    with pytest.raises(ValueError, match="lr"):
        ThresholdController(base_loss("ce")).update(torch.zeros(3), lr=-1.0)
    assert ThresholdController(base_loss("fl")).method == "grid"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_update_does_not_sync():
    ctrl = ThresholdController(base_loss("ce"), interval=2, queue_size=256, device="cuda")
    hs = [h.cuda() for h in batches(8, 64)]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for h in hs:
            ctrl.update(h, lr=0.1)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert ctrl.tau.device.type == "cuda" and ctrl.refits == 3 and math.isfinite(float(ctrl.tau))  # steps 4, 6, 8


# ------------------------------------------------------------------------------------------------
# OGCLoss
# ------------------------------------------------------------------------------------------------


def toy_problem(n: int = 256, classes: int = 3, noise: float = 0.3, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[2.0, 0.0], [-1.0, 1.7], [-1.0, -1.7]])
    y = torch.randint(0, classes, (n,), generator=gen)
    x = centres[y] + 0.6 * torch.randn(n, 2, generator=gen)
    flip = torch.rand(n, generator=gen) < noise
    noisy = torch.where(flip, (y + torch.randint(1, classes, (n,), generator=gen)) % classes, y)
    return x, noisy


def test_ogc_loss_rejects_bad_input():
    loss = OGCLoss("ce", queue_size=8)
    logits, y = torch.zeros(4, 3), torch.zeros(4, dtype=torch.long)
    with pytest.raises(ValueError, match="learning rate"):
        loss(logits, y)
    with pytest.raises(ValueError, match="NaN"):
        loss(torch.full((4, 3), math.nan), y, lr=0.1)
    with pytest.raises(ValueError, match=r"^unknown reduction 'avg'; allowed: mean, sum, none$"):
        OGCLoss("ce", reduction="avg")
    with pytest.raises(ValueError, match=r"^unknown ce base loss parameter 'gamma'; allowed: \(none\)$"):
        OGCLoss("ce", gamma=0.5)


def test_the_defaults_are_the_papers_and_the_target_is_one_plus_lr_epsilon():
    assert OGC_DEFAULTS == OGCSettings(epsilon=20.0, interval=32, queue_size=4096)
    assert OGC_DEFAULTS.target(0.1) == pytest.approx(3.0)
    assert OGCSettings(epsilon=5.0).target(0.02) == pytest.approx(1.1)
    ctrl = OGCLoss("ce").controller
    assert ctrl.settings == OGC_DEFAULTS
    assert (ctrl.epsilon, ctrl.interval, ctrl.queue_size) == (20.0, 32, 4096)


def test_ogc_loss_uses_tau_after_this_steps_update():
    loss = OGCLoss("ce", queue_size=64, interval=1, reduction="none")
    assert math.isnan(loss.target)  # nothing solved for yet
    x, y = toy_problem(64)
    logits = x @ torch.tensor([[1.0, -0.5, -0.5], [0.0, 0.8, -0.8]])
    out = loss(logits, y, lr=0.1)
    assert loss.target == OGC_DEFAULTS.target(0.1)  # 1 + lr * epsilon, what this step's tau solved for
    assert loss.controller.refits == 1 and math.isfinite(float(loss.tau))
    torch.testing.assert_close(out, transformed_loss(logits, y, loss.tau, "ce", reduction="none"))
    assert float(loss.last_clipped_fraction) > 0.0


@pytest.mark.parametrize("name", sorted(BASES))
def test_ogc_loss_trains_a_tiny_model_end_to_end(name):
    torch.manual_seed(0)
    x, y = toy_problem()
    model = torch.nn.Linear(2, 3)
    before = model.weight.detach().clone()
    loss_fn = OGCLoss(name, interval=2, queue_size=128, **BASES[name])
    opt = torch.optim.SGD(model.parameters(), lr=0.01)  # target 1.2: some clipping for every base
    for step in range(24):
        idx = slice((step % 8) * 32, (step % 8) * 32 + 32)
        loss = loss_fn(model(x[idx]), y[idx], lr=opt.param_groups[0]["lr"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        assert torch.isfinite(loss)
    diag = loss_fn.diagnostics()
    assert loss_fn.controller.refits == 11 and math.isfinite(diag["tau"])
    assert 0.0 <= diag["clipped_fraction"] <= 1.0
    assert not torch.equal(model.weight, before)


def test_ogc_loss_state_dict_round_trips_the_controller():
    x, y = toy_problem()
    weights = torch.tensor([[1.0, -0.5, -0.5], [0.0, 0.8, -0.8]])
    a = OGCLoss("gce", q=0.7, interval=2, queue_size=128)
    for i in range(6):
        a(x[i * 32 : (i + 1) * 32] @ weights, y[i * 32 : (i + 1) * 32], lr=0.1)
    b = OGCLoss("gce", q=0.7, interval=2, queue_size=128)
    b.load_state_dict(a.state_dict())
    assert torch.equal(a.tau, b.tau) and b.controller.step == 6
    for i in range(6, 8):
        batch, labels = x[i * 32 : (i + 1) * 32] @ weights, y[i * 32 : (i + 1) * 32]
        assert torch.equal(a(batch, labels, lr=0.01), b(batch, labels, lr=0.01))
    assert torch.equal(a.tau, b.tau) and a.controller.refits == b.controller.refits == 3


def test_controller_state_reads_a_saved_ogc_loss_and_nothing_else():
    x, y = toy_problem()
    loss = OGCLoss("ce", interval=2, queue_size=64)
    for i in range(4):
        loss(x[i * 32 : (i + 1) * 32], y[i * 32 : (i + 1) * 32] % 2, lr=0.1)
    buffer = io.BytesIO()
    torch.save(loss.state_dict(), buffer)
    buffer.seek(0)
    state = OGCLoss.controller_state(torch.load(buffer, weights_only=True))
    expected = loss.controller.state_dict()
    assert state is not None and set(state) == set(expected) and state["step"] == 4
    for name in ("queue", "tau", "means", "variances", "weights"):
        assert torch.equal(state[name], expected[name]), name
    assert OGCLoss.controller_state(torch.nn.CrossEntropyLoss().state_dict()) is None
    assert OGCLoss.controller_state({"_extra_state": {"step": 3}}) is None  # extra state, but not a controller's


def test_moving_the_loss_module_moves_its_controller_and_keeps_its_dtype() -> None:
    loss = OGCLoss(queue_size=64, interval=4)
    moved_to: list[torch.device] = []
    move = loss.controller.to
    loss.controller.to = lambda device: (moved_to.append(torch.device(device)), move(device))[1]
    queue_dtype = loss.controller.queue.dtype
    loss.to(torch.device("cpu"))
    loss.half()
    assert moved_to == [torch.device("cpu"), torch.device("cpu")]
    assert loss.controller.queue.dtype == queue_dtype


def test_the_cached_threshold_follows_every_refit() -> None:
    """The per-refit threshold cache gives the same loss as the transformed loss at the live tau."""
    generator = torch.Generator().manual_seed(5)
    loss_fn = OGCLoss(queue_size=64, interval=4, reduction="none")
    taus = set()
    for _ in range(40):
        logits = 3.0 * torch.randn(32, 5, generator=generator)
        targets = torch.randint(0, 5, (32,), generator=generator)
        got = loss_fn(logits, targets, lr=0.1)
        expected = transformed_loss(logits, targets, loss_fn.tau, "ce", reduction="none")
        torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-6)
        taus.add(float(loss_fn.tau))
    assert len(taus) >= 3, "the test must see several refits with different taus"


# ------------------------------------------------------------------------------------------------
# The accelerator code paths, run on the CPU
# ------------------------------------------------------------------------------------------------


@pytest.fixture
def accelerator_paths(monkeypatch):
    """Make CPU tensors take the accelerator paths: EM state in 0-d tensors with torch.where freezing
    (no early stop) and the k-means init, r(tau) and the solve in torch instead of NumPy."""
    from ogc_lab.ogc import arrays, ratio

    monkeypatch.setattr(arrays, "backend", lambda like: arrays.TORCH)
    ratio._grid_of_h.cache_clear()  # its arrays are cached per device, in the backend of that device
    yield
    ratio._grid_of_h.cache_clear()


@pytest.mark.parametrize("seed", [0, 1])
def test_accelerator_paths_match_the_cpu_shortcuts(seed, request):
    # Same arithmetic in float64; only math.log vs torch.log and NumPy vs torch kernels may differ
    # in the last bits, so 1e-9 relative.
    x = realistic_queue(seed=seed)
    ce, fl = base_loss("ce"), base_loss("fl", gamma=0.5)
    cpu_fit = fit_gmm_torch(x)
    cpu = [solve_tau(cpu_fit, t, ce) for t in (3.0, 1.2, 1.02)] + [solve_tau(cpu_fit, 1.2, fl, method="grid")]
    cpu_ratio = ratio_exact(TAUS, cpu_fit, 1.0)
    request.getfixturevalue("accelerator_paths")
    fit = fit_gmm_torch(x)
    for name in ("means", "variances", "weights"):
        torch.testing.assert_close(getattr(fit, name), getattr(cpu_fit, name), rtol=1e-9, atol=0)
    taus = [solve_tau(cpu_fit, t, ce) for t in (3.0, 1.2, 1.02)] + [solve_tau(cpu_fit, 1.2, fl, method="grid")]
    torch.testing.assert_close(torch.stack(taus), torch.stack(cpu), rtol=1e-9, atol=0)
    torch.testing.assert_close(ratio_exact(TAUS, cpu_fit, 1.0), cpu_ratio, rtol=1e-9, atol=0)


@pytest.mark.parametrize("name", ["ce", "fl"])  # closed-form and grid solve
def test_accelerator_paths_build_no_tensor_from_host_values(name, accelerator_paths, request):
    """The controller's torch path builds no device tensor from host values (each would be a
    synchronising copy on CUDA): device scalars come from torch.full, a fill kernel."""
    ctrl = ThresholdController(base_loss(name, **BASES[name]), interval=2, queue_size=256)
    built = request.getfixturevalue("host_value_tensors")
    for h in batches(8, 64):
        ctrl.update(h, lr=0.1)
    assert ctrl.refits == 3 and math.isfinite(float(ctrl.tau)) and built == []  # steps 4, 6, 8


def test_accelerator_paths_ogc_loss_steps_build_no_tensor_from_host_values(accelerator_paths, request):
    # Forward and backward of OGCLoss over refits, as in a training step (validate=False: the
    # trainer checks the loss once an epoch, since the NaN check reads a device value).
    loss_fn = OGCLoss("ce", queue_size=128, interval=2, validate=False)
    x, y = toy_problem(64 * 6)
    weights = torch.zeros(2, 3, requires_grad=True)
    built = request.getfixturevalue("host_value_tensors")
    for xb, yb in zip(x.split(64), y.split(64)):
        loss_fn(xb @ weights, yb, lr=0.1).backward()
    assert loss_fn.controller.refits == 3 and weights.grad is not None and built == []  # steps 2, 4, 6


def test_accelerator_paths_freeze_where_the_cpu_stops(accelerator_paths):
    """Without the early stop the frozen parameters equal those of stopping at convergence."""
    x = realistic_queue(seed=1)
    frozen = fit_gmm_torch(x, max_iter=10, tol=1e-3)
    stopped = fit_gmm_torch(x, max_iter=6, tol=0.0)  # scikit-learn converges after 6 iterations here
    assert torch.equal(frozen.means, stopped.means) and torch.equal(frozen.variances, stopped.variances)


def test_refit_results_are_deterministic_tensors_on_the_cpu():
    x = realistic_queue(seed=5)
    taus = [solve_tau(fit_gmm_torch(x), 1.2, base_loss("ce")) for _ in range(2)]
    assert torch.equal(taus[0], taus[1]) and taus[0].dtype == F64 and taus[0].device.type == "cpu"
