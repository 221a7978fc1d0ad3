"""ogc_lab.plotting: its colours (one per meaning, and every figure the package draws gives a loss the same one),
and its figures of several panels (one row per noise, curves of runs, single runs and a message)."""

from __future__ import annotations

import warnings

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from fixtures import fake_run, run_record
from ogc_lab import plotting
from ogc_lab.losses import LOSSES
from ogc_lab.report import mean_std
from ogc_lab.runs import RunRecord

NOISE = "symmetric:0.4"


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



def _runs(losses: list[str]) -> list[RunRecord]:
    """Two seeds of three epochs per loss, in the order given (the records `plot_epoch_curves` reads)."""
    return [
        run_record([{"test_acc": 0.5 + 0.1 * i + 0.01 * seed} for i in range(3)],
                   {"loss": loss, "noise": NOISE, "seed": seed})
        for loss in losses for seed in (0, 1)
    ]


def _line_colours(ax) -> dict[str, str]:
    """The colour of each labelled line, keyed by the loss that starts its label."""
    return {line.get_label().split(" ")[0].rstrip(","): to_hex(line.get_color()) for line in ax.get_lines()}


def _bar_colours(ax, losses: list[str]) -> dict[str, str]:
    """The colour of each bar of `plot_loss_bars`, keyed by the loss on its tick."""
    return {loss: to_hex(patch.get_facecolor()) for loss, patch in zip(losses, ax.patches, strict=True)}


def _stats(losses: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame([{"noise": NOISE, "loss": loss, "acc": 0.6 + 0.01 * i + 0.001 * seed}
                          for i, loss in enumerate(losses) for seed in (0, 1)])
    return mean_std(frame, ["noise", "loss"], "acc")


def _curves(losses: list[str]) -> dict[tuple[str, int], pd.DataFrame]:
    return {(loss, 0): pd.DataFrame({"epoch": [1, 2], "test_acc": [0.5, 0.6]}) for loss in losses}


def _epoch_curves(ax, losses: list[str]) -> dict[str, str]:
    plotting.plot_accuracy_curves(ax, _runs(losses), NOISE)
    return _line_colours(ax)


def _single_runs(ax, losses: list[str]) -> dict[str, str]:
    plotting.plot_single_runs(ax, _curves(losses))
    return _line_colours(ax)


def _loss_bars(ax, losses: list[str]) -> dict[str, str]:
    plotting.plot_loss_bars([ax], _stats(losses), losses, [NOISE])
    return _bar_colours(ax, losses)


def _curves_figure(ax, losses: list[str]) -> dict[str, str]:
    """Chapter 6's curves figure (a figure of its own: ``ax`` is not drawn on)."""
    fig = plotting.curves_figure(_runs(losses), "digits", "no runs")
    return _line_colours(fig.axes[0])


def _single_runs_figure(ax, losses: list[str]) -> dict[str, str]:
    """Chapter 6's figure of single runs, its accuracy panel (a figure of its own: ``ax`` is not drawn on)."""
    fig = plotting.single_runs_figure({(loss, 0): pd.DataFrame(
        {"epoch": [1, 2], "test_acc": [0.5, 0.6], "flipped_fit_noisy": [0.1, 0.2]}) for loss in losses})
    return _line_colours(fig.axes[0])


# each figure the package draws per loss, as the colour it gives each loss
FIGURES = {"epoch curves": _epoch_curves, "single runs": _single_runs, "loss bars": _loss_bars,
           "curves figure": _curves_figure, "single runs figure": _single_runs_figure}


def _draw(kind: str, losses: list[str]) -> dict[str, str]:
    """The colour each loss gets in a figure of ``kind`` drawn with ``losses`` in that order."""
    fig, ax = plt.subplots()
    colours = FIGURES[kind](ax, losses)
    plt.close("all")
    return colours


@pytest.mark.parametrize("kind", list(FIGURES))
def test_a_loss_keeps_its_colour_whatever_the_other_losses_and_their_order(kind: str) -> None:
    plotting.use_book_style()
    few = _draw(kind, ["taylor-ce", "ce+ogc"])
    many = _draw(kind, ["phuber-ce", "ce", "anl-ce", "ce+ogc", "nce+rce", "taylor-ce"])
    assert set(few) == {"taylor-ce", "ce+ogc"} and len(many) == 6
    for loss, colour in few.items():
        assert many[loss] == colour, loss
    for loss, colour in many.items():
        assert colour == plotting.loss_color(loss).lower(), loss


def test_every_figure_kind_gives_a_loss_the_same_colour() -> None:
    losses = ["gce", "ce", "ce+ogc", "gce+ogc"]
    drawn = [_draw(kind, losses) for kind in FIGURES]
    assert all(colours == drawn[0] for colours in drawn), drawn


def test_every_loss_has_its_own_colour_and_no_other_meaning_shares_one() -> None:
    assert set(plotting.LOSS_COLORS) == set(LOSSES)
    hues = [c.lower() for c in plotting.LOSS_COLORS.values()]
    assert len(set(hues)) == len(hues)
    others = {c.lower() for c in [*plotting.GROUP_COLORS.values(), *plotting.SHADES, plotting.REFERENCE, plotting.GREY]}
    assert not others & set(hues)
    with pytest.raises(ValueError, match=r"unknown loss 'ce\+foo'; allowed: ce, "):
        plotting.loss_color("ce+foo")


def test_settings_and_uncoloured_lines_take_shades_of_grey_never_a_loss_colour() -> None:
    plotting.use_book_style()
    fig, ax = plt.subplots()
    uncoloured = [to_hex(ax.plot([0, 1])[0].get_color()) for _ in range(6)]
    plt.close(fig)
    shades = [plotting.color(i) for i in range(6)]
    for colour in uncoloured + shades:
        red, green, blue = matplotlib.colors.to_rgb(colour)
        assert red == green == blue, colour
    assert [c.lower() for c in uncoloured] == [c.lower() for c in shades]


def test_the_toy_maps_run_from_one_class_colour_to_the_other() -> None:
    cmap = plotting.class_map()
    assert to_hex(cmap(0.0)) == plotting.CLASS_COLORS[0].lower()
    assert to_hex(cmap(1.0)) == plotting.CLASS_COLORS[1].lower()
    assert np.allclose(cmap(0.5)[:3], 1.0, atol=0.01)  # undecided points are white
