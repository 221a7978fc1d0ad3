"""Proposition 1's bounds hold on random probability vectors and are attained; the excess-risk bounds agree."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ogc_lab import theory
from ogc_lab.noise import transition_matrix
from ogc_lab.ogc import base_loss, clipped_loss_of_p

CE = base_loss("ce")


@settings(max_examples=60, deadline=None)
@given(
    tau=st.floats(1.0, 1e4),
    k=st.integers(2, 50),
    spread=st.floats(0.01, 30.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_class_sums_lie_within_proposition_1(tau: float, k: int, spread: float, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    logits = spread * torch.randn(64, k, generator=generator, dtype=torch.float64)
    losses = clipped_loss_of_p(torch.softmax(logits, dim=1), tau, CE)[0]
    low, high = theory.sample_bounds(tau)
    assert losses.min().item() >= low - 1e-12
    assert losses.max().item() <= high + 1e-9
    lower, upper = theory.class_sum_bounds(tau, k)
    sums = losses.sum(dim=1)
    assert sums.min().item() >= lower - 1e-9
    assert sums.max().item() <= upper + 1e-9


@pytest.mark.parametrize("tau", [1.0, 3.0, 100.0])
def test_class_sum_bounds_are_attained_at_the_centre_and_a_vertex(tau: float) -> None:
    k = 10
    lower, upper = theory.class_sum_bounds(tau, k)
    centre = clipped_loss_of_p(torch.full((k,), 1.0 / k, dtype=torch.float64), tau, CE)[0].sum().item()
    vertex = torch.zeros(k, dtype=torch.float64)
    vertex[0] = 1.0
    corner = clipped_loss_of_p(vertex, tau, CE)[0].sum().item()
    assert centre == pytest.approx(lower, rel=1e-12)
    assert corner == pytest.approx(upper, rel=1e-12)
    # (K-1)(1 + log tau), up to the library's floor on tau of 1/(1 - 1e-7).
    assert upper == pytest.approx((k - 1) * (1.0 + math.log(tau)), rel=1e-6)


def test_at_tau_one_the_class_sum_is_constant_so_the_bounds_vanish() -> None:
    lower, upper = theory.class_sum_bounds(1.0, 7)
    assert upper - lower == pytest.approx(0.0, abs=1e-12)
    assert theory.symmetric_excess_bound(0.5, 1.0, 7) == pytest.approx(0.0, abs=1e-12)


@pytest.mark.parametrize("rate", [0.1, 0.4, 0.7])
@pytest.mark.parametrize("tau", [1.5, 3.0, 50.0])
def test_theorem_2_on_the_symmetric_matrix_is_theorem_1(rate: float, tau: float) -> None:
    k = 10
    general = theory.transition_excess_bound(transition_matrix("symmetric", rate, k), tau)
    assert general == pytest.approx(theory.symmetric_excess_bound(rate, tau, k), rel=1e-12)


def test_bounds_grow_with_tau_and_with_the_rate() -> None:
    values = [theory.symmetric_excess_bound(0.4, tau, 10) for tau in (1.5, 3.0, 10.0, 100.0)]
    assert values == sorted(values) and values[0] < values[-1]
    rates = [theory.symmetric_excess_bound(rate, 10.0, 10) for rate in (0.1, 0.3, 0.6, 0.8)]
    assert rates == sorted(rates)


def test_a_matrix_without_a_margin_has_no_finite_bound() -> None:
    flip_half = torch.tensor([[0.5, 0.5], [0.5, 0.5]])
    assert theory.transition_excess_bound(flip_half, 3.0) == math.inf


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda: theory.class_sum_bounds(0.5, 10), "tau >= 1"),
        (lambda: theory.class_sum_bounds(2.0, 1), "at least 2"),
        (lambda: theory.symmetric_excess_bound(0.95, 2.0, 10), r"\[0, \(K-1\)/K\)"),
        (lambda: theory.transition_excess_bound(torch.ones(2, 3), 2.0), "square"),
    ],
)
def test_bad_input_is_named(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_class_losses_match_the_per_label_transformed_loss() -> None:
    from ogc_lab.ogc import transformed_loss

    generator = torch.Generator().manual_seed(3)
    logits = 4.0 * torch.randn(32, 5, generator=generator)
    every = theory.class_losses(logits, 3.0)
    for label in range(5):
        targets = torch.full((32,), label)
        expected = transformed_loss(logits, targets, 3.0, "ce", reduction="none")
        torch.testing.assert_close(every[:, label], expected)


# ---- the book's words, chosen by the numbers: one case per branch ----


@pytest.mark.parametrize(("violation", "start"), [
    (-0.3, "no sample and no class sum left its bounds; the closest stayed 0.3 inside one"),
    (-1e-15, "no sample and no class sum left its bounds; the closest sat on one to machine precision"),
    (7.1e-15, "every sample and every class sum stayed inside its bounds to machine precision"),
    (0.01, "a bound was exceeded by 0.01, more than float64 rounding (1e-12) can explain"),
])
def test_bound_sentence_calls_rounding_machine_precision_and_only_a_real_excess_a_violation(
        violation: float, start: str) -> None:
    said = theory.bound_sentence(violation)
    assert said.startswith(start)
    assert "e-15" not in said  # never a rounding residue printed as if it were a measurement


@pytest.mark.parametrize(("lower", "upper", "said"), [
    (3.8e-14, -1.9e-14, "The extreme class sums reach both edges of the band to machine precision (their distance "
                        "to each edge is below 1e-12 of the band's width), so both bounds are tight."),
    (0.0034, 1e-15, "The extreme class sums reach the lower edge to within 0.34 % of the band's width and reach the "
                    "upper edge to machine precision, so both bounds are tight."),
    (0.2, 0.5, "The extreme class sums reach the lower edge to within 20 % of the band's width and reach the upper "
               "edge to within 50 % of the band's width: these draws do not show either bound to be tight."),
    (-0.002, 0.3, "The extreme class sums pass the lower edge by 0.2 % of the band's width and reach the upper edge "
                  "to within 30 % of the band's width: these draws do not show the upper bound to be tight."),
])
def test_tightness_sentence_by_the_slacks(lower: float, upper: float, said: str) -> None:
    assert theory.tightness_sentence(lower, upper) == said


@pytest.mark.parametrize(("rows", "said"), [
    ([dict(gap=-7.5e-9, bound=4.8e-16)],
     "the gap and its bound are both zero to rounding (below 1e-6 in absolute value)"),
    ([dict(gap=-7.5e-9, bound=4.8e-16), dict(gap=7e-9, bound=1.5e-15)],
     "the gaps and their bounds are all zero to rounding (below 1e-6 in absolute value)"),
    ([dict(gap=0.016, bound=1e-14), dict(gap=-0.0006, bound=5e-16), dict(gap=0.001, bound=None)],
     "the bound is zero, and the gaps reach 0.016"),
    ([dict(gap=0.40, bound=1.055), dict(gap=-0.0003, bound=0.028)],
     "every gap stays inside its bound, the largest at 38 % of it"),
    ([dict(gap=0.5, bound=0.1), dict(gap=0.01, bound=0.2)], "1 of 2 gaps exceed their bound, by up to 0.4"),
    ([dict(gap=0.5, bound=None)], "no gap has a bound to compare with"),
])
def test_gap_sentence_never_calls_a_gap_inside_its_bound_an_error(rows: list[dict], said: str) -> None:
    assert theory.gap_sentence(rows) == said


@pytest.mark.parametrize(("difference", "said"), [
    (4.4e-16, "to machine precision (they differ by less than 1e-12)"), (3e-5, "to within 3e-05")])
def test_agreement_text(difference: float, said: str) -> None:
    assert theory.agreement_text(difference) == said
