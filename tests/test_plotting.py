"""ogc_lab.plotting's colours: one per meaning, and every figure the package draws gives a loss the same one."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.colors import to_hex

from fixtures import run_record
from ogc_lab import plotting
from ogc_lab.losses import LOSSES
from ogc_lab.report import mean_std
from ogc_lab.runs import RunRecord

NOISE = "symmetric:0.4"


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


# each figure the package draws per loss, as the colour it gives each loss
FIGURES = {"epoch curves": _epoch_curves, "single runs": _single_runs, "loss bars": _loss_bars}


def _draw(kind: str, losses: list[str]) -> dict[str, str]:
    """The colour each loss gets in a figure of ``kind`` drawn with ``losses`` in that order."""
    fig, ax = plt.subplots()
    colours = FIGURES[kind](ax, losses)
    plt.close(fig)
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
