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
