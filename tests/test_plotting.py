"""ogc_lab.plotting's figures of several panels: one row per noise, curves of runs, single runs and a message."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd
import pytest

from fixtures import fake_run
from ogc_lab import plotting


@pytest.fixture(autouse=True)
def _warnings_fail_and_figures_close():
    """A warning (an empty legend, say) would be printed into a chapter: fail on it; close what a test drew."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield
    plt.close("all")


def texts(fig) -> list[str]:
    return [t.get_text() for ax in fig.axes for t in ax.texts]


def test_per_noise_figure_draws_one_titled_row_per_noise() -> None:
    drawn = []
    fig = plotting.per_noise_figure(["symmetric:0.6", "human:worse"], lambda ax, n: drawn.append(n) or ax.plot(
        [1, 2], [3, 4], label=n), "test accuracy (%)")
    assert drawn == ["symmetric:0.6", "human:worse"]
    assert [ax.get_title() for ax in fig.axes] == drawn and {ax.get_ylabel() for ax in fig.axes} == {
        "test accuracy (%)"}
    assert fig.axes[0].get_legend() is not None


def test_per_noise_figure_without_noises_or_labels_says_so_quietly() -> None:
    assert texts(plotting.per_noise_figure([], lambda ax, n: None, "y")) == ["no committed run yet"]
    fig = plotting.per_noise_figure(["symmetric:0.6"], lambda ax, n: None, "y")  # nothing labelled: no legend
    assert fig.axes[0].get_legend() is None
    assert texts(plotting.message_figure("nothing here")) == ["nothing here"]


def test_curves_figure_draws_each_losses_mean_and_names_the_noises() -> None:
    runs = [fake_run(loss, seed, [0.3, 0.4 + 0.1 * seed]) for loss in ("ce", "ce+ogc") for seed in (0, 1)]
    fig = plotting.curves_figure(runs, "digits, seed 0", "no runs")
    ax = fig.axes[0]
    assert ax.get_title() == "digits, seed 0, noise symmetric:0.6"
    assert [line.get_label() for line in ax.get_lines()] == ["ce (n=2)", "ce+ogc (n=2)"]
    assert ax.get_lines()[0].get_ydata().tolist() == pytest.approx([30.0, 45.0])  # mean of the seeds, in %
    assert texts(plotting.curves_figure([], "t", "paper-scale runs: see the tables")) == [
        "paper-scale runs: see the tables"]


def test_single_runs_figure_draws_accuracy_over_fit_for_each_run() -> None:
    epochs = pd.DataFrame({"epoch": [1, 2], "test_acc": [0.3, 0.5], "flipped_fit_noisy": [0.1, 0.4]})
    fig = plotting.single_runs_figure({("ce", 0): epochs, ("ce+ogc", 1): epochs})
    top, bottom = fig.axes
    assert [line.get_label() for line in top.get_lines()] == ["ce, seed 0", "ce+ogc, seed 1"]
    assert bottom.get_lines()[0].get_ydata().tolist() == [10.0, 40.0]
    assert texts(plotting.single_runs_figure({})) == ["no run has begun yet"]


def test_plot_clipping_ratios_draws_both_ratios_the_target_and_the_seed() -> None:
    steps = pd.DataFrame({"step": [1, 2], "ratio_before": [4.0, 5.0], "ratio_after": [3.0, 3.0],
                          "target": [3.0, 2.0]})
    fig, ax = plt.subplots()
    plotting.plot_clipping_ratios(ax, steps, seed=2)
    assert [line.get_label() for line in ax.get_lines()] == ["before clipping", "after clipping (OGC)",
                                                             f"target {plotting.TARGET}"]
    assert ax.get_lines()[2].get_ydata().tolist() == [3.0, 2.0] and texts(fig) == ["seed 2"]
