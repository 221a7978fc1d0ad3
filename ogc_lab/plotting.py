"""The book's one source of plot style: one colour per meaning, figure sizes and mathtext labels.

Every chapter and the command line's report draw with these, so CE is the same blue and CE+OGC the same
vermillion everywhere, and no other series takes a loss's colour.  The hues are Okabe and Ito's and Paul
Tol's, which stay distinguishable with the common colour-vision deficiencies; clean and noisy samples are
sky blue and orange (never red and green).

Sizes are in inches at the book's 100 dpi: ``COLUMN`` fills the ~690 px text column, ``FULL`` is for a
figure whose caption carries ``:figclass: full-width`` (the page's width including its margin, see
_static/book.css).  ``use_book_style()`` sets matplotlib's defaults once per chapter.

The shared per-axes plots of runs (``plot_epoch_curves``, ``plot_accuracy_curves``, ``plot_tau``,
``plot_ratio``, ``plot_clipping_ratios``) live here, and the chapters' figures of several panels built from them
(``per_noise_figure``, ``curves_figure``, ``single_runs_figure``, ``message_figure``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .registry import choose

if TYPE_CHECKING:  # for the annotations only: drawing needs neither torch nor the run folder's code
    from .runs import RunRecord

# ---- colours -------------------------------------------------------------------------------------
# One meaning per colour in every figure of the book and of `ogc-lab report`: a hue names a loss, a group of
# samples (clean or noisy) or, in the toy task's maps, a class; black marks a reference (a target, a threshold,
# a boundary); shades of grey tell apart settings that are none of these (values of tau or eta, noise kinds,
# methods), dark to light in the order given, so no setting ever borrows a loss's colour.

OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky blue": "#56B4E9", "bluish green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "reddish purple": "#CC79A7",
}
# Paul Tol's 'muted' scheme, also safe with the common colour-vision deficiencies: the losses beyond Okabe-Ito's.
TOL_MUTED = {
    "rose": "#CC6677", "indigo": "#332288", "sand": "#DDCC77", "green": "#117733", "wine": "#882255",
    "teal": "#44AA99", "olive": "#999933", "purple": "#AA4499",
}
REFERENCE = OKABE_ITO["black"]
GREY = "#999999"  # a band or a background quantity (the learning rate, a bound's range)
# The settings' shades, dark to light; `color(i)` wraps around them.
SHADES = ("#1A1A1A", "#4D4D4D", "#808080", "#A6A6A6")

# Every loss of `ogc_lab.losses` (the tests check that the two agree) and its one colour.
LOSS_COLORS = {
    "ce": OKABE_ITO["blue"], "ce+ogc": OKABE_ITO["vermillion"], "phuber-ce": OKABE_ITO["bluish green"],
    "gce": OKABE_ITO["reddish purple"], "gce+ogc": TOL_MUTED["wine"], "fl": TOL_MUTED["indigo"],
    "fl+ogc": TOL_MUTED["olive"], "mae": TOL_MUTED["sand"], "sce": TOL_MUTED["green"], "nce+rce": TOL_MUTED["rose"],
    "taylor-ce": TOL_MUTED["purple"], "anl-ce": TOL_MUTED["teal"], "js": OKABE_ITO["yellow"],
    "logitclip-ce": "#8C510A",  # brown: the two palettes have no hue left that is not taken
}
# Truly clean and truly noisy samples (and a mixture's clean and noisy components): no loss has these hues.
GROUP_COLORS = {"clean": OKABE_ITO["sky blue"], "noisy": OKABE_ITO["orange"]}
# The two classes of the binary toy task (chapter 1's maps, where no loss is drawn).
CLASS_COLORS = (OKABE_ITO["blue"], OKABE_ITO["vermillion"])


def loss_color(loss: str) -> str:
    """The one colour of ``loss`` in every figure; an unknown name raises, so no figure falls back to a cycle."""
    return choose("loss", loss, LOSS_COLORS)


def color(i: int) -> str:
    """The ``i``-th shade of grey (wrapping), for settings that are not a loss or a group of samples."""
    return SHADES[i % len(SHADES)]


def class_map() -> Any:
    """A colormap from class 0's colour through white to class 1's, for a probability of class 1."""
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("classes", [CLASS_COLORS[0], "#FFFFFF", CLASS_COLORS[1]])


# ---- sizes ---------------------------------------------------------------------------------------

DPI = 100
COLUMN_WIDTH = 6.9  # inches: the ~690 px text column at DPI
FULL_WIDTH = 9.4  # inches: a full-width figure (text column and margin)
COLUMN = (COLUMN_WIDTH, 3.6)  # one panel, or two side by side
FULL = (FULL_WIDTH, 4.2)


def size(rows: int = 1, width: float = COLUMN_WIDTH, row_height: float = 3.0) -> tuple[float, float]:
    """A figure size ``width`` wide with ``rows`` rows of panels of ``row_height`` inches."""
    return (width, rows * row_height)


# ---- labels (mathtext) ---------------------------------------------------------------------------

TAU = r"$\tau$"
TAU_T = r"$\tau_t$"
TARGET = r"$1 + \eta_t \epsilon$"
ETA_T = r"$\eta_t$"
EPSILON = r"$\epsilon$"
GRAD = r"$|\partial\ell/\partial p|$"
H = r"$H = -\log p$"
RATIO = r"$\mathrm{E}|g|_{\mathrm{noisy}}\,/\,\mathrm{E}|g|_{\mathrm{clean}}$"

# ---- matplotlib defaults -------------------------------------------------------------------------

BOOK_RC = {
    "figure.dpi": DPI,
    "savefig.dpi": 2 * DPI,  # sharp on high-density screens; the page scales it to the column
    "figure.figsize": COLUMN,
    "figure.constrained_layout.use": True,
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "legend.frameon": False,
    "lines.linewidth": 1.5,
}


def use_book_style() -> None:
    """Set matplotlib's defaults to the book's (sizes, fonts, grid; the settings' shades as the colour cycle, so a
    line drawn without a colour never takes a loss's)."""
    import matplotlib as mpl
    from cycler import cycler

    mpl.rcParams.update(BOOK_RC)
    mpl.rcParams["axes.prop_cycle"] = cycler(color=SHADES)


def percent_axis(ax: Any, low: float, high: float = 100.0, pad: float = 2.0) -> None:
    """A percentage y axis from just below ``low`` to just above ``high`` (no point cut off at the edge)."""
    ax.set_ylim(max(0.0, low - pad), min(100.0 + pad, high + pad))


# ---- per-axes plots of runs ---------------------------------------------------------------------


def _curves(runs: Sequence[RunRecord], noise: str, key: str = "test_acc") -> dict[str, np.ndarray]:
    """Per-epoch curves of ``key`` (seeds x epochs) per loss for one noise spec (runs lacking ``key`` left out)."""
    by_loss: dict[str, list[list[float]]] = {}
    for run in runs:
        if run.noise == noise and all(key in e for e in run.epochs):
            by_loss.setdefault(run.loss, []).append([e[key] for e in run.epochs])
    return {loss: np.array(c) for loss, c in sorted(by_loss.items()) if len({len(x) for x in c}) == 1}


def plot_epoch_curves(ax: Any, results: Sequence[RunRecord], noise: str, key: str = "test_acc",
                      ylabel: str = "test accuracy", percent: bool = True) -> None:
    """On ``ax``: the mean over seeds of an epochs.csv column per loss under ``noise``, with a ±1 std band."""
    scale = 100.0 if percent else 1.0
    for loss, curves in _curves(list(results), noise, key).items():
        epochs = np.arange(1, curves.shape[1] + 1)
        mean, std = curves.mean(0), curves.std(0)
        (line,) = ax.plot(epochs, scale * mean, color=loss_color(loss), label=f"{loss} (n={len(curves)})")
        ax.fill_between(epochs, scale * (mean - std), scale * (mean + std), color=line.get_color(), alpha=0.2)
    ax.set(xlabel="epoch", ylabel=ylabel + (" (%)" if percent else ""))
    ax.grid(alpha=0.3)


def plot_accuracy_curves(ax: Any, results: Sequence[RunRecord], noise: str, percent: bool = True) -> None:
    """On ``ax``: mean test accuracy per epoch over seeds for each loss under ``noise``, with a ±1 std band."""
    plot_epoch_curves(ax, results, noise, "test_acc", "test accuracy", percent)


def plot_single_runs(ax: Any, curves: dict[tuple[str, int], Any], key: str = "test_acc",
                     ylabel: str = "test accuracy", percent: bool = True) -> None:
    """On ``ax``: an epochs.csv column of single runs keyed by (loss, seed), coloured by loss, one line style per
    seed; for runs still in progress, whose lengths differ and so cannot be averaged."""
    scale = 100.0 if percent else 1.0
    styles = ["-", "--", ":", "-."]
    for (loss, seed), epochs in sorted(curves.items()):
        ax.plot(epochs["epoch"], scale * epochs[key], color=loss_color(loss), ls=styles[seed % len(styles)],
                label=f"{loss}, seed {seed}")
    ax.set(xlabel="epoch", ylabel=ylabel + (" (%)" if percent else ""))
    ax.grid(alpha=0.3)


def plot_tau(ax: Any, steps: Any, **style: Any) -> None:
    """On ``ax`` (log scale): the clipping threshold tau at each logged step; steps without clipping are left out."""
    finite = steps["tau"].where(np.isfinite(steps["tau"]))
    ax.plot(steps["step"], finite, **style)
    ax.set(xlabel="step", ylabel=f"{TAU} (threshold on {GRAD})", yscale="log")
    ax.grid(alpha=0.3)


def plot_ratio(ax: Any, steps: Any, column: str = "ratio_after", target: bool = True, **style: Any) -> None:
    """On ``ax`` (log scale): a noisy/clean gradient ratio of steps.csv, and the target 1 + lr·ε dashed."""
    if column not in steps:
        raise ValueError(f"steps has no column {column!r}; have: {', '.join(steps.columns)}")
    ax.plot(steps["step"], steps[column], **style)
    if target:
        ax.plot(steps["step"], steps["target"], color=REFERENCE, ls="--", lw=1, label=f"target {TARGET}")
    ax.set(xlabel="step", ylabel=RATIO, yscale="log")
    ax.grid(alpha=0.3)


def plot_clipping_ratios(ax: Any, steps: Any, seed: int) -> None:
    """On ``ax``: an OGC run's noisy/clean gradient ratio before clipping (what plain CE would weigh) and after it,
    OGC's target dashed, and the run's seed in the corner."""
    plot_ratio(ax, steps, "ratio_before", target=False, color=loss_color("ce"), label="before clipping")
    plot_ratio(ax, steps, "ratio_after", target=True, color=loss_color("ce+ogc"), label="after clipping (OGC)")
    ax.text(0.99, 0.95, f"seed {seed}", ha="right", va="top", transform=ax.transAxes, fontsize=8)


# ---- figures of several panels, for the chapters (pyplot) ----------------------------------------


def message_figure(message: str) -> Any:
    """A figure holding only ``message`` ('no committed run yet'), where a chapter's figure has nothing to draw."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=size(1, row_height=1.5))
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.axis("off")
    return fig


def legend_if_labelled(ax: Any, **style: Any) -> None:
    """A legend on ``ax`` where something drawn there has a label (matplotlib warns on an empty one)."""
    if ax.get_legend_handles_labels()[0]:
        ax.legend(**style)


def per_noise_figure(noises: Sequence[str], draw: Callable[[Any, str], None], ylabel: str,
                     empty: str = "no committed run yet") -> Any:
    """One full-width row per noise, each panel drawn by ``draw(ax, noise)`` and titled by its noise (so no panel is
    squeezed); ``message_figure(empty)`` without noises."""
    if not noises:
        return message_figure(empty)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(noises), 1, figsize=size(len(noises), row_height=2.6), sharex=True, squeeze=False)
    for ax, noise in zip(axes[:, 0], noises):
        draw(ax, noise)
        ax.set(title=noise, ylabel=ylabel)
    legend_if_labelled(axes[0, 0], fontsize=8, ncol=3)
    return fig


def curves_figure(runs: Sequence[RunRecord], title: str, empty: str) -> Any:
    """Mean test accuracy per epoch of ``runs`` per loss, every noise on one panel titled ``title`` and the noises;
    ``empty`` written in the panel without runs."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=COLUMN)
    noises = sorted({r.noise for r in runs})
    for noise in noises:
        plot_accuracy_curves(ax, runs, noise)
    if runs:
        ax.set_title(f"{title}, noise {', '.join(noises)}")
        legend_if_labelled(ax, fontsize=8)
    else:
        ax.text(0.5, 0.5, empty, ha="center", va="center", transform=ax.transAxes)
    return fig


def single_runs_figure(curves: dict[tuple[str, int], Any], empty: str = "no run has begun yet") -> Any:
    """Test accuracy (top) and the share of flipped labels fitted (bottom) per epoch of single runs keyed by (loss,
    seed), finished or not (``plot_single_runs``); ``message_figure(empty)`` without runs."""
    if not curves:
        return message_figure(empty)
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=size(2, row_height=2.6), sharex=True)
    plot_single_runs(axes[0], curves)
    plot_single_runs(axes[1], curves, "flipped_fit_noisy", "flipped labels fitted")
    legend_if_labelled(axes[0], fontsize=8, ncol=2)
    return fig


def plot_loss_bars(axes: Sequence[Any], stats: Any, losses: Sequence[str], noises: Sequence[str],
                   xlabel: str = "test accuracy (%)") -> None:
    """One axes per noise spec: a horizontal bar per loss (mean ± std over seeds, in %), each in its loss's
    colour, so a loss is told by the same colour as in the book's curves; ``stats`` has columns noise, loss,
    mean and std (``report.mean_std``)."""
    rows = np.arange(len(losses))
    for ax, noise in zip(axes, noises, strict=True):
        part = stats[stats["noise"] == noise].set_index("loss").reindex(list(losses))
        ax.barh(rows, 100 * part["mean"], xerr=100 * part["std"].fillna(0.0), capsize=2,
                color=[loss_color(loss) for loss in losses], error_kw=dict(lw=0.8))
        ax.set(title=noise, xlabel=xlabel, xlim=(0, 100), yticks=rows, yticklabels=list(losses))
        ax.set_ylim(len(losses) - 0.5, -0.5)  # the first loss on top, as in the table
        ax.grid(axis="y", visible=False)
