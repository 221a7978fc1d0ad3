"""Chapter 7's reading of OGC's sensitivity to its own settings, each varied with the other two at the recipe's.

The runs are ``sweep.one_at_a_time`` over ``SETTINGS`` (epsilon, the queue size q, the refit interval s) with
plain CE on the same seeds beside them.  From their results: the accuracy curve of each setting against CE,
where tau ends each learning-rate phase as epsilon varies, and what refitting less often saved in run time;
each as the values the text quotes (``book.Quotes``) and as the chapter's figures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from . import plotting
from .book import Quotes, threshold_quote
from .recipes import Config
from .report import lr_phases, mean_std
from .runs import LAST_EPOCHS, RunRecord, load_steps
from .sweep import SweepRun

Grid = dict[tuple[str, Any], list[SweepRun]]  # (config field, value) -> its runs, as sweep.one_at_a_time plans them


@dataclass(frozen=True)
class Setting:
    """One of OGC's settings as the chapter shows it: the short name of its quoted values and its axis label."""

    key: str
    label: str


SETTINGS = {
    "ogc_epsilon": Setting("eps", plotting.EPSILON),
    "ogc_queue_size": Setting("q", "queue size $q$"),
    "ogc_interval": Setting("s", "refit interval $s$ (steps)"),
}
SAME_TIME = 0.03  # run times within 3 % of each other are 'about the same' (whole runs on a shared machine)


def setup_quotes(config: Config, seeds: Sequence[int], results: dict[Path, RunRecord],
                 baseline: list[SweepRun]) -> Quotes:
    """The set-up as the text states it: seeds, how many runs (each folder once) and their training time, the
    schedule and the recipe's own settings."""
    return {
        "seeds": (list(seeds), None), "n_seeds": (len(seeds), None), "runs": (len(results), None),
        "train_seconds": (sum(r.wall_time_s for r in results.values()), ".0f"), "epochs": (config.epochs, None),
        "default_epsilon": (config.ogc_epsilon, "g"), "default_q": (config.ogc_queue_size, None),
        "default_s": (config.ogc_interval, None), "batch_size": (config.batch_size, None),
        "steps_per_epoch": (results[baseline[0].out].epochs[0]["step"], None),
    }


def run_rows(grid: Grid, results: dict[Path, RunRecord]) -> pd.DataFrame:
    """One row per run of the grid: the varied field, its value, the seed, the accuracy over the last epochs and
    the run's wall time."""
    return pd.DataFrame([
        dict(field=field, value=value, seed=run.config.seed, acc=results[run.out].last10_test_acc,
             seconds=results[run.out].wall_time_s)
        for (field, value), runs in grid.items()
        for run in runs
    ])


def curves(rows: pd.DataFrame, axes: dict[str, Sequence[Any]]) -> dict[str, dict[str, list]]:
    """Per field of ``axes``: its values and the mean and std (0 for one seed) of the accuracy at each."""
    stats = mean_std(rows, ["field", "value"], "acc")
    out = {}
    for field, values in axes.items():
        part = stats[stats["field"] == field].set_index("value").reindex(values)
        out[field] = dict(values=list(values), mean=part["mean"].tolist(), std=part["std"].fillna(0.0).tolist())
    return out


def baseline_accuracy(baseline: list[SweepRun], results: dict[Path, RunRecord]) -> tuple[float, float]:
    """Plain CE's accuracy over the last epochs: mean and std over its seeds (0 for one seed)."""
    accs = [results[run.out].last10_test_acc for run in baseline]
    return float(np.mean(accs)), float(np.std(accs, ddof=1)) if len(accs) > 1 else 0.0


def accuracy_quotes(settings_curves: dict[str, dict[str, list]], ce: tuple[float, float], epsilon: float) -> Quotes:
    """The curves; per setting its best and worst value, their accuracies and the range between; CE's accuracy and
    the worst setting's margin over it; epsilon's curve up to the recipe's ``epsilon`` and, in words, above it."""
    quotes: Quotes = {"curves": (settings_curves, None), "ce_acc": (ce[0], ".1%")}
    worst_mean = min(m for curve in settings_curves.values() for m in curve["mean"])
    quotes["eps_margin_over_ce"] = (100 * (worst_mean - ce[0]), ".1f")
    for field, curve in settings_curves.items():
        key, means, values = SETTINGS[field].key, curve["mean"], curve["values"]
        best = int(np.argmax(means))
        quotes[f"{key}_best"] = (values[best], "g")
        quotes[f"{key}_best_acc"] = (means[best], ".1%")
        quotes[f"{key}_min_acc"] = (min(means), ".1%")
        quotes[f"{key}_max_acc"] = (max(means), ".1%")
        quotes[f"{key}_range"] = (100 * (max(means) - min(means)), ".1f")
        quotes[f"{key}_worst"] = (values[int(np.argmin(means))], "g")
    eps = settings_curves["ogc_epsilon"]
    low = [m for v, m in zip(eps["values"], eps["mean"]) if v <= epsilon]
    high = [(v, m) for v, m in zip(eps["values"], eps["mean"]) if v > epsilon]
    quotes["eps_low_min"] = (min(low) if low else 0.0, ".1%")
    quotes["eps_low_max"] = (max(low) if low else 0.0, ".1%")
    quotes["eps_high_text"] = (", ".join(f"{100 * m:.1f}% at ε = {v:g}" for v, m in high)
                               or "no larger value was run", None)
    return quotes


def plot_accuracy(settings_curves: dict[str, dict[str, list]], ce: tuple[float, float], config: Config) -> Figure:
    """One panel per setting: CE+OGC's accuracy (mean ± std) at each value, the recipe's value dotted, plain CE
    dashed with a ±1 std band."""
    import matplotlib.pyplot as plt

    ce_mean, ce_std = ce
    fig, axes = plt.subplots(1, len(settings_curves), figsize=plotting.size(1, plotting.FULL_WIDTH, 3.0),
                             sharey=True)
    for ax, (field, curve) in zip(axes, settings_curves.items()):
        x, values = np.arange(len(curve["values"])), curve["values"]
        ax.axhspan(100 * (ce_mean - ce_std), 100 * (ce_mean + ce_std), color=plotting.loss_color("ce"), alpha=0.15,
                   lw=0)
        ax.axhline(100 * ce_mean, color=plotting.loss_color("ce"), ls="--", label="CE")
        ax.errorbar(x, 100 * np.array(curve["mean"]), yerr=100 * np.array(curve["std"]), marker="o", capsize=3,
                    color=plotting.loss_color("ce+ogc"), label="CE+OGC")
        if getattr(config, field) in values:
            ax.axvline(values.index(getattr(config, field)), color="0.5", ls=":", label="recipe")
        ax.set_xticks(x, [f"{v:g}" for v in values])
        ax.set(xlabel=SETTINGS[field].label)
    axes[0].set_ylabel(f"test accuracy, last {LAST_EPOCHS} epochs (%)")
    axes[0].legend(loc="lower right")
    return fig


def phase_thresholds(grid: Grid, field: str = "ogc_epsilon") -> dict[Any, pd.DataFrame]:
    """Per value of ``field``: ``report.lr_phases`` of its first seed's run (where tau ends each lr phase)."""
    return {value: lr_phases(load_steps(runs[0].out)) for (varied, value), runs in grid.items() if varied == field}


def threshold_quotes(phases: dict[Any, pd.DataFrame]) -> Quotes:
    """tau and the target at the end of each lr phase per epsilon (None: no clipping), and the first phase's tau
    at the first (smallest) and the last (largest) epsilon run."""
    n_phases = min(len(p) for p in phases.values())
    small, large = list(phases)[0], list(phases)[-1]
    return {
        "phase_tau": ({f"{eps:g}": [float(t) if np.isfinite(t) else None for t in p["tau"][:n_phases]]
                       for eps, p in phases.items()}, None),
        "phase_target": ({f"{eps:g}": p["target"].tolist()[:n_phases] for eps, p in phases.items()}, None),
        "eps_small": (small, "g"), "eps_small_tau": threshold_quote(float(phases[small]["tau"].iloc[0])),
        "eps_large": (large, "g"), "eps_large_tau": threshold_quote(float(phases[large]["tau"].iloc[0])),
        "eps_large_target": (float(phases[large]["target"].iloc[0]), ".3g"),
    }


def plot_thresholds(phases: dict[Any, pd.DataFrame]) -> Figure:
    """tau at the end of each lr phase against epsilon (a missing point: no clipping), with each phase's target
    dashed."""
    import matplotlib.pyplot as plt

    values = list(phases)
    fig, ax = plt.subplots(figsize=plotting.COLUMN)
    x = np.arange(len(values))
    for k in range(min(len(p) for p in phases.values())):
        lr = phases[values[0]]["lr"].iloc[k]
        taus = [phases[v]["tau"].iloc[k] for v in values]
        ax.plot(x, np.where(np.isfinite(taus), taus, np.nan), marker="o", color=plotting.color(k),
                label=f"$\\tau$, $\\eta = {lr:g}$")
        ax.plot(x, [phases[v]["target"].iloc[k] for v in values], ls="--", color=plotting.color(k), lw=1,
                label=f"target $1 + {lr:g}\\,\\epsilon$")
    ax.set_xticks(x, [f"{v:g}" for v in values])
    ax.set(xlabel=plotting.EPSILON, ylabel=f"{plotting.TAU} at the end of the phase", yscale="log")
    ax.legend(fontsize=7, ncol=2)
    return fig


def interval_cost_sentence(first_s: int, first_seconds: float, last_s: int, last_seconds: float) -> str:
    """Whether refitting less often (``last_s`` against ``first_s``) made a run cheaper, in words its times choose:
    within ``SAME_TIME`` of each other the difference is not measurable."""
    times = (f"a run took {first_seconds:.1f} s with s = {first_s} and {last_seconds:.1f} s with s = {last_s} on "
             "this machine")
    if last_seconds < (1 - SAME_TIME) * first_seconds:
        return f"Refitting less often was cheaper here: {times}, so s can be set by cost"
    if last_seconds > (1 + SAME_TIME) * first_seconds:
        return (f"Refitting less often did not make the runs cheaper here: {times}; the refits are too small a share "
                "of a run to show")
    return f"Refitting less often made no measurable difference to a run's time here: {times}"


def interval_cost_quotes(rows: pd.DataFrame, intervals: Sequence[int]) -> Quotes:
    """The mean run time at each refit interval, at the first and the last of ``intervals``, and in words."""
    seconds = rows[rows["field"] == "ogc_interval"].groupby("value")["seconds"].mean()
    first, last = intervals[0], intervals[-1]
    return {
        "seconds_per_interval": ({f"{k:g}": float(v) for k, v in seconds.items()}, None),
        "s_first": (first, None), "s_last": (last, None),
        "seconds_s_first": (float(seconds[first]), ".1f"), "seconds_s_last": (float(seconds[last]), ".1f"),
        "interval_cost_sentence": (interval_cost_sentence(first, float(seconds[first]), last, float(seconds[last])),
                                   None),
    }
