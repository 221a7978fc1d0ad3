"""Chapter 3's measurement: the task, the fits, the two versions of the gap, their table and words."""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from ogc_lab import excess_risk  # noqa: E402
from ogc_lab.theory import gap_sentence, symmetric_excess_bound  # noqa: E402

STEPS = 20


@pytest.fixture(scope="module")
def task() -> excess_risk.BlobsTask:
    return excess_risk.make_task(120, 200, seed=3)


@pytest.fixture(scope="module")
def clean(task: excess_risk.BlobsTask) -> dict:
    return excess_risk.clean_models(task, [1.0, 8.0], STEPS)


def test_the_task_is_drawn_from_its_seed(task: excess_risk.BlobsTask) -> None:
    again = excess_risk.make_task(120, 200, seed=3)
    assert torch.equal(task.x_train, again.x_train) and torch.equal(task.y_test, again.y_test)
    assert task.x_train.shape == (120, 2) and task.x_test.shape == (200, 2)
    assert set(task.y_train.tolist()) <= set(range(excess_risk.NUM_CLASSES))
    assert not torch.equal(task.x_train, excess_risk.make_task(120, 200, seed=4).x_train)


def test_blobs_sit_around_means_on_the_circle() -> None:
    x, y = excess_risk.gaussian_blobs(4000, torch.Generator().manual_seed(0))
    for k in range(excess_risk.NUM_CLASSES):
        angle = 2 * math.pi * k / excess_risk.NUM_CLASSES
        mean = x[y == k].mean(0)
        assert mean.tolist() == pytest.approx([excess_risk.RADIUS * math.cos(angle),
                                               excess_risk.RADIUS * math.sin(angle)], abs=0.15)


def test_an_untrained_model_predicts_uniformly(task: excess_risk.BlobsTask) -> None:
    # zero weights: p = 1/K for every label, and below tau's threshold lbar is CE's -log p
    model = excess_risk.fit_linear(task.x_train, excess_risk.one_hot(task.y_train), 8.0, steps=0)
    assert excess_risk.clean_risk(model, task.x_test, task.y_test, 8.0) == pytest.approx(math.log(4), rel=1e-6)


def test_training_lowers_the_clean_risk(task: excess_risk.BlobsTask, clean: dict) -> None:
    assert excess_risk.clean_risk(clean[8.0], task.x_train, task.y_train, 8.0) < math.log(4) - 0.2


def test_exact_gaps_vanish_at_tau_one_and_carry_theorem_1(task: excess_risk.BlobsTask, clean: dict) -> None:
    rows = excess_risk.exact_gaps(task, clean, [0.2, 0.4], STEPS)
    assert [(r["tau"], r["rate"]) for r in rows] == [(1.0, 0.2), (1.0, 0.4), (8.0, 0.2), (8.0, 0.4)]
    assert all(r["bound"] == symmetric_excess_bound(r["rate"], r["tau"], 4) for r in rows)
    # at tau = 1 the noisy objective is an affine function of the clean one, which Adam follows alike (up to its
    # eps): a gap of rounding size, against a real one at tau = 8
    assert all(abs(r["gap"]) <= 1e-3 for r in rows if r["tau"] == 1.0)
    assert all(r["gap"] > 1e-2 for r in rows if r["tau"] == 8.0)


def test_sampled_gaps_bound_each_kind_by_its_theorem(task: excess_risk.BlobsTask, clean: dict) -> None:
    rows = excess_risk.sampled_gaps(task, clean, [0.4], STEPS, seed=0)
    assert [r["kind"] for r in rows] == ["symmetric"] * 2 + ["pairflip"] * 2 + ["instance"] * 2
    symmetric = [r for r in rows if r["kind"] == "symmetric"]
    assert all(r["bound"] == symmetric_excess_bound(r["realised_rate"], r["tau"], 4) for r in symmetric)
    assert all(r["bound"] is None for r in rows if r["kind"] == "instance")
    assert all(r["bound"] is not None and r["bound"] > 0 for r in rows if r["kind"] == "pairflip" and r["tau"] > 1)


def test_an_unknown_noise_kind_is_named(task: excess_risk.BlobsTask, clean: dict) -> None:
    with pytest.raises(ValueError, match="unknown noise kind 'asym'; allowed: symmetric, pairflip, instance"):
        excess_risk.sampled_gaps(task, clean, [0.4], STEPS, seed=0, kinds=["asym"])


def test_the_table_rounds_to_four_decimals_without_a_negative_zero() -> None:
    rows = [dict(tau=1.0, rate=0.4, clean_risk=0.123456, gap=-1e-9, bound=5e-16)]
    frame = excess_risk.table(rows, "exact")
    assert list(frame.columns) == ["τ", "noise rate", "clean risk", "gap R(f_η) − R(f)", "bound"]
    assert frame.iloc[0].tolist() == [1.0, 0.4, 0.1235, 0.0, 0.0]
    assert str(frame.iloc[0]["gap R(f_η) − R(f)"]) == "0.0"  # not '-0.0'
    sampled = excess_risk.table([dict(kind="instance", rate=0.4, realised_rate=0.4, tau=1.0, gap=0.01, bound=None)],
                                "sampled")
    assert math.isnan(sampled.iloc[0]["bound"]) and "realised rate" in sampled.columns
    with pytest.raises(ValueError, match="unknown version 'both'; allowed: exact, sampled"):
        excess_risk.table(rows, "both")


def rows_at(gap_at_one: float) -> list[dict]:
    """A tau = 1 row (bound zero) with the given gap, and a tau = 4 row inside its bound."""
    return [dict(tau=1.0, gap=gap_at_one, bound=0.0), dict(tau=4.0, gap=0.05, bound=0.5)]


@pytest.mark.parametrize(("version", "gap", "explained"), [
    ("exact", 1e-8, True), ("exact", 0.01, False), ("sampled", 0.01, True), ("sampled", 1e-8, False)])
def test_the_tau_one_words_say_why_only_in_the_case_their_version_explains(version: str, gap: float,
                                                                           explained: bool) -> None:
    quotes = {name: value for name, (value, _) in excess_risk.gap_quotes(rows_at(gap), version).items()}
    sentence = gap_sentence(rows_at(gap)[:1])
    assert quotes[f"{version}_tau1_sentence"] == sentence
    assert quotes[f"{version}_tau1_text"].startswith(sentence)
    assert (quotes[f"{version}_tau1_text"] != sentence) == explained
    assert quotes[f"{version}_above_sentence"] == gap_sentence(rows_at(gap)[1:])
    assert quotes[f"{version}_max_excess_tau_above_1"] == pytest.approx(-0.45)
    assert quotes[f"{version}_gap_at_tau1"] == gap


def test_quotes_leave_out_rows_without_a_bound_and_say_none_without_a_tau() -> None:
    rows = [dict(tau=4.0, gap=0.3, bound=None), dict(tau=4.0, gap=0.1, bound=0.2)]
    quotes = excess_risk.gap_quotes(rows, "sampled")
    assert quotes["sampled_max_excess"][0] == pytest.approx(-0.1)
    assert quotes["sampled_gap_at_tau1"][0] is None


def test_the_figures_have_their_panels(task: excess_risk.BlobsTask, clean: dict) -> None:
    exact = excess_risk.exact_gaps(task, clean, [0.2, 0.4], 2)
    sampled = excess_risk.sampled_gaps(task, clean, [0.2, 0.4], 2, seed=0)
    for fig, panels in ((excess_risk.plot_symmetric_bounds(), 2), (excess_risk.plot_gaps(exact, sampled), 2)):
        assert len(fig.axes) == panels
        plt.close(fig)
