"""Chapter 4's reading of OGC's controller in one run, against the truth the trainer logs beside it.

Given a CE+OGC run and the same run with plain CE (``steps.csv``, ``result.json``, checkpoints): where the
threshold settles in each learning-rate phase, whether the solve meets its target under the mixture it
logged, how far the true noisy/clean gradient ratio after clipping stays from the target, how the mixture at
chosen epochs labels the training samples, how well H separates the two groups, and what CE and CE+OGC fit
in the end; each as the values the text quotes (``book.Quotes``) and as the chapter's figure.  The mixture at
an epoch e comes from a *prefix run* (``prefix_runs``), the first e epochs trained as a run of e epochs,
whose last checkpoint holds OGC's queue.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure

from . import plotting
from .book import Quotes, finite_records, threshold_quote
from .cost import steps_to_fill
from .ogc import GMM1D, H_MAX, OGC_DEFAULTS, base_loss, ratio_exact
from .recipes import Config
from .report import lr_phases
from .runs import LAST_EPOCHS, RunRecord, load_steps, setting_folder
from .sweep import SweepRun, grid

LOSSES = ("ce", "ce+ogc")  # the two runs set side by side
KEYS = {"ce": "ce", "ce+ogc": "ogc"}  # how the text's names call each of them
ORDINALS = ("first", "second", "third", "fourth", "fifth")  # learning-rate phases, as the text's names count them
MIXTURE_FIELDS = ("means", "variances", "weights")
H_BINS = np.linspace(0.0, H_MAX, 65)  # the histograms of H
CE_RATE = base_loss("ce").exp_rate  # CE's |dl/dp| = e^H: r(tau) in closed form with k = 1
Runs = dict[tuple[str, int], RunRecord]  # records by (loss, seed)
Snapshot = tuple[dict[str, Any], pd.DataFrame]  # premise.queue_snapshot and premise.training_h of one checkpoint


# ---- the runs ------------------------------------------------------------------------------------------


def prefix_runs(config: Config, seed: int, epochs: Sequence[int], root: Path) -> dict[int, SweepRun]:
    """Per epoch e of ``epochs`` before the end: CE+OGC of ``config`` trained for e epochs (``seed``).

    The first e epochs of a run are a run of e epochs (the same seed, and the lr steps do not depend on the
    length), so its last checkpoint holds the model and OGC's queue at epoch e.
    """
    if max(epochs) > config.epochs:
        raise ValueError(f"snapshot_epochs {list(epochs)} must not exceed epochs={config.epochs}")
    return {e: grid(config, ["ce+ogc"], [config.noise], [seed], setting_folder(root, {"epochs": e}), {"epochs": e})[0]
            for e in epochs if e < config.epochs}


def snapshot_folders(epochs: Sequence[int], prefixes: dict[int, SweepRun], full_run: Path) -> dict[int, Path]:
    """The run folder whose last checkpoint holds each epoch: its prefix run, or the full run for the last."""
    return {e: prefixes[e].out if e in prefixes else Path(full_run) for e in epochs}


def steps_with_epochs(run_dir: Path, steps_per_epoch: int) -> pd.DataFrame:
    """A run's steps.csv with ``epoch_x``, the step in fractional epochs (the figures' x axis)."""
    steps = load_steps(run_dir)
    steps["epoch_x"] = steps["step"] / steps_per_epoch
    return steps


def clipping_steps(steps: pd.DataFrame) -> pd.DataFrame:
    """The logged steps at which OGC clipped (a finite tau)."""
    return steps[np.isfinite(steps["tau"])]


def setup_quotes(config: Config, ogc: RunRecord, seeds: Sequence[int], snapshot_epochs: Sequence[int]) -> Quotes:
    """The set-up as the text states it: data, noise, schedule, OGC's settings against the paper's."""
    settings = config.ogc_settings
    return {
        "num_train": (ogc.num_train, None), "num_test": (ogc.num_test, None),
        "noise_rate": (ogc.noise_report["realised_rate"], ".0%"), "epochs": (config.epochs, None),
        "batch_size": (config.batch_size, None), "steps_per_epoch": (ogc.epochs[0]["step"], None),
        "milestones": (" and ".join(map(str, config.milestones)), None), "lr": (config.lr, "g"),
        "epsilon": (settings.epsilon, "g"), "queue_size": (settings.queue_size, None),
        "interval": (settings.interval, None), "paper_queue_size": (OGC_DEFAULTS.queue_size, None),
        "paper_interval": (OGC_DEFAULTS.interval, None), "log_interval": (config.log_interval, None),
        "seeds": (list(seeds), None), "snapshot_epochs": (list(snapshot_epochs), None),
    }


def prefix_quotes(prefixes: Sequence[RunRecord], full: RunRecord) -> Quotes:
    """How closely the prefix runs repeat the full run: the largest test-accuracy difference at any epoch."""
    difference = max((abs(a["test_acc"] - b["test_acc"]) for prefix in prefixes
                      for a, b in zip(prefix.epochs, full.epochs)), default=0.0)
    return {"prefix_max_acc_diff": (difference, ".2g"),
            "prefix_text": ("exactly" if difference == 0 else f"to within {difference:.2g}", None)}


# ---- the threshold -------------------------------------------------------------------------------------


def threshold_quotes(steps: pd.DataFrame, config: Config) -> Quotes:
    """When OGC first refits and first clips, where tau ends each learning-rate phase (``report.lr_phases``,
    named by ``ORDINALS``) against its target, and the median clipped share of a batch."""
    clipping = clipping_steps(steps)
    settings = config.ogc_settings
    phases = finite_records(lr_phases(steps))
    if len(phases) > len(ORDINALS):
        raise ValueError(f"{len(phases)} learning-rate phases; allowed: at most {len(ORDINALS)}")
    quotes: Quotes = {
        "first_tau_step": (int(clipping["step"].iloc[0]), None),
        # the queue is full after this many steps, and refits come on multiples of s
        "first_refit_step": (steps_to_fill(settings.queue_size, config.batch_size, settings.interval), None),
        "phases": (phases, None),
        "tau_first": (float(clipping["tau"].iloc[0]), ".3g"),
        "clipped_fraction_median": (float(clipping["clipped_fraction"].median()), ".0%"),
    }
    for ordinal, phase in zip(ORDINALS, phases):
        quotes[f"tau_{ordinal}_lr"] = threshold_quote(phase["tau"], "∞ (no clipping yet)")
        quotes[f"target_{ordinal}_lr"] = (phase["target"], ".3g")
        quotes[f"{ordinal}_lr"] = (phase["lr"], "g")
    return quotes


def plot_threshold(steps: pd.DataFrame) -> Figure:
    """Left: tau at each logged step, the target and the learning rate; right: the clipped and the truly noisy
    share of each logged batch."""
    import matplotlib.pyplot as plt

    clipping = clipping_steps(steps)
    colour = plotting.loss_color("ce+ogc")
    fig, (ax_tau, ax_clip) = plt.subplots(1, 2, figsize=plotting.size(1, row_height=3.0))
    ax_tau.plot(steps["epoch_x"], steps["tau"].where(np.isfinite(steps["tau"])), color=colour, label=plotting.TAU_T)
    ax_tau.plot(steps["epoch_x"], steps["target"], "k--", lw=1, label=f"target {plotting.TARGET}")
    ax_tau.set(xlabel="epoch", ylabel=f"{plotting.TAU_T} (threshold on $1/p$)", yscale="log")
    ax_lr = ax_tau.twinx()
    ax_lr.step(steps["epoch_x"], steps["lr"], where="post", color=plotting.GREY,
               label=f"learning rate {plotting.ETA_T}")
    ax_lr.set(ylabel=f"learning rate {plotting.ETA_T}", yscale="log")
    ax_lr.grid(False)
    ax_lr.spines["right"].set_visible(True)
    ax_tau.legend(handles=ax_tau.get_legend_handles_labels()[0] + ax_lr.get_legend_handles_labels()[0],
                  loc="upper right")
    ax_clip.plot(clipping["epoch_x"], clipping["clipped_fraction"], ".", ms=3, color=colour,
                 label="clipped share of a batch")
    ax_clip.plot(clipping["epoch_x"], clipping["noisy_frac"], ".", ms=3, color="black", alpha=0.5,
                 label="truly noisy share")
    ax_clip.set(xlabel="epoch", ylabel="share of samples", ylim=(0, 1))
    ax_clip.legend(loc="lower right")
    return fig


# ---- the mixture at chosen epochs ----------------------------------------------------------------------


def _mixture(means: Any, variances: Any, weights: Any) -> GMM1D:
    """A float64 ``GMM1D`` from the clean and the noisy component's parameters."""
    return GMM1D(*(torch.tensor(values, dtype=torch.float64) for values in (means, variances, weights)))


def snapshot_row(epoch: int, snapshot: Snapshot) -> dict[str, Any]:
    """OGC's mixture at ``epoch`` against the truth: tau, both means, the noisy weight, how the mixture labels
    each training sample (its more likely component) against whether its label was flipped, and the median H
    of each group; the mixture's fields None before its first fit."""
    snap, train_h = snapshot
    noisy = train_h["noisy"].to_numpy()
    row: dict[str, Any] = dict(
        epoch=epoch, tau=snap["tau"] if np.isfinite(snap["tau"]) else None, mean_clean=None, mean_noisy=None,
        weight_noisy=None, agreement=None, clean_called_noisy=None, noisy_called_clean=None,
        noisy_h_median=float(train_h["h"][train_h["noisy"]].median()),
        clean_h_median=float(train_h["h"][~train_h["noisy"]].median()))
    if np.isfinite(snap["means"]).all():
        mixture = _mixture(*(snap[name] for name in MIXTURE_FIELDS))
        called_noisy = mixture.posterior(torch.tensor(train_h["h"].to_numpy(), dtype=torch.float64)).numpy() > 0.5
        row.update(mean_clean=float(snap["means"][0]), mean_noisy=float(snap["means"][1]),
                   weight_noisy=float(snap["weights"][1]), agreement=float((called_noisy == noisy).mean()),
                   clean_called_noisy=float(called_noisy[~noisy].mean()),
                   noisy_called_clean=float((~called_noisy[noisy]).mean()))
    return row


def snapshot_quotes(rows: Sequence[dict[str, Any]]) -> Quotes:
    """The snapshots (their measured fields), the mixture's labelling at the first and the last fitted
    snapshot and at its worst, and where its components end."""
    fitted = [row for row in rows if row["agreement"] is not None]
    if not fitted:
        raise ValueError(f"no mixture was fitted by epochs {[row['epoch'] for row in rows]}; allowed: snapshot "
                         "epochs after OGC's first refit")
    worst, last = min(fitted, key=lambda row: row["agreement"]), fitted[-1]
    return {
        "snapshots": ([{key: value for key, value in row.items() if value is not None} for row in rows], None),
        "agreement_first": (fitted[0]["agreement"], ".1%"), "agreement_last": (last["agreement"], ".1%"),
        "agreement_worst": (worst["agreement"], ".1%"), "agreement_worst_epoch": (worst["epoch"], None),
        "worst_clean_called_noisy": (worst["clean_called_noisy"], ".1%"),
        "worst_noisy_called_clean": (worst["noisy_called_clean"], ".1%"),
        "weight_noisy_last": (last["weight_noisy"], ".2f"), "mean_clean_last": (last["mean_clean"], ".2g"),
        "mean_noisy_last": (last["mean_noisy"], ".3g"),
        "first_snapshot": (rows[0]["epoch"], None), "last_snapshot": (rows[-1]["epoch"], None),
    }


def _draw_snapshot(ax: Any, epoch: int, snapshot: Snapshot, grid_h: np.ndarray) -> None:
    """One epoch's panel: the queue's histogram, each group's share of the training set's density, the
    mixture's two weighted components and log tau."""
    snap, train_h = snapshot
    ax.hist(snap["h"], H_BINS, density=True, color="0.8", label=f"queue (q = {len(snap['h'])})")
    n, width = len(train_h), H_BINS[1] - H_BINS[0]
    for is_noisy, name in ((False, "clean"), (True, "noisy")):
        values = train_h["h"][train_h["noisy"] == is_noisy]
        ax.hist(values, H_BINS, weights=np.full(len(values), 1.0 / (n * width)), histtype="step",
                color=plotting.GROUP_COLORS[name], lw=1, label=f"training set, truly {name}")
    if np.isfinite(snap["means"]).all():
        densities = _mixture(*(snap[name] for name in MIXTURE_FIELDS)).densities(torch.from_numpy(grid_h)).numpy()
        for density, name in zip(densities.T, ("clean", "noisy")):
            ax.plot(grid_h, density, color=plotting.GROUP_COLORS[name], lw=2, alpha=0.8,
                    label=f"mixture: {name} component")
    if np.isfinite(snap["tau"]):
        ax.axvline(np.log(snap["tau"]), color="k", ls="--", lw=1, label=r"$\log\tau_t$: clipped to the right")
    ax.set(title=f"epoch {epoch}", yscale="log", ylim=(1e-3, 1e2))


def plot_snapshots(snapshots: dict[int, Snapshot], n_cols: int = 3) -> Figure:
    """One panel per epoch (``_draw_snapshot``) in rows of ``n_cols``, readable in the text column; the next
    panel holds the legend."""
    import matplotlib.pyplot as plt

    epochs = list(snapshots)
    n_rows = -(-(len(epochs) + 1) // n_cols)
    fig, grid_axes = plt.subplots(n_rows, n_cols, figsize=plotting.size(n_rows, row_height=2.4), sharey=True,
                                  squeeze=False)
    axes = grid_axes.reshape(-1)
    grid_h = np.linspace(0.0, H_MAX, 800)
    for ax, epoch in zip(axes, epochs):
        _draw_snapshot(ax, epoch, snapshots[epoch], grid_h)
    for ax in grid_axes[:, 0]:
        ax.set_ylabel("density")
    for ax in axes[:len(epochs)]:
        ax.set_xlabel(plotting.H)
    axes[len(epochs)].legend(*axes[len(epochs) - 1].get_legend_handles_labels(), loc="center", fontsize=7)
    for ax in axes[len(epochs):]:
        ax.set_axis_off()
    return fig


# ---- the gradient ratio --------------------------------------------------------------------------------


def logged_ratio(row: pd.Series) -> float:
    """r(tau) of OGC's own model at a logged step: the mixture logged with it, in closed form."""
    mixture = _mixture(*([row[f"{name}_clean"], row[f"{name}_noisy"]] for name in MIXTURE_FIELDS))
    return float(ratio_exact(torch.tensor(row["tau"], dtype=torch.float64), mixture, k=CE_RATE))


def ratio_table(steps: pd.DataFrame) -> pd.DataFrame:
    """The clipping steps with ``model_ratio`` (``logged_ratio``) and ``same_target``: whether tau was solved for
    the row's own target (the previous logged row had the same learning rate)."""
    clipping = clipping_steps(steps)
    return clipping.assign(model_ratio=[logged_ratio(row) for _, row in clipping.iterrows()],
                           same_target=clipping["target"].eq(clipping["target"].shift()).to_numpy())


def ratio_quotes(table: pd.DataFrame, ce_steps: pd.DataFrame, warmup_epochs: int) -> Quotes:
    """How exactly the solve meets its target under the mixture, and how the true ratio after clipping stands
    against the target after the warm-up and during it; the true ratio before clipping, and under plain CE."""
    same = table["same_target"].to_numpy()
    model_error = np.abs(table["model_ratio"].to_numpy()[same] / table["target"].to_numpy()[same] - 1)
    settled = table[same & (table["epoch"] > warmup_epochs).to_numpy()]
    excess = settled["ratio_after"] / settled["target"]
    early = table[table["epoch"] <= warmup_epochs]
    last_ce = ce_steps[ce_steps["epoch"] == ce_steps["epoch"].max()]
    columns = ("step", "epoch", "target", "tau", "ratio_before", "ratio_after", "model_ratio", "same_target")
    return {
        "model_ratio_max_rel_err": (float(np.max(model_error)), ".1e"),
        "warmup_epochs": (warmup_epochs, None),
        "ratio_after_over_target_max": (float(excess.max()), ".3f"),
        "ratio_after_over_target_median": (float(excess.median()), ".3f"),
        "ratio_after_early_max": (float(early["ratio_after"].max()) if len(early) else 0.0, ".3g"),
        "ratio_before_median": (float(settled["ratio_before"].median()) if len(settled) else 0.0, ",.0f"),
        "ratio_rows": ({column: table[column].tolist() for column in columns}, None),
        "ce_ratio_before_last": (float(last_ce["ratio_before"].median()), ".3g"),
        "ce_ratio_before_max": (float(ce_steps["ratio_before"].max()), ".3g"),
    }


def plot_ratio(steps: dict[str, pd.DataFrame], table: pd.DataFrame, warmup_epochs: int) -> Figure:
    """Left: the true noisy/clean gradient ratio of CE, and of CE+OGC before and after clipping, with the target;
    right, after the warm-up: CE+OGC after clipping, r(tau) under its mixture and the target."""
    import matplotlib.pyplot as plt

    ce, ogc, colour = steps["ce"], steps["ce+ogc"], plotting.loss_color("ce+ogc")
    fig, (ax_all, ax_zoom) = plt.subplots(1, 2, figsize=plotting.size(1, row_height=3.2))
    ax_all.plot(ce["epoch_x"], ce["ratio_before"], color=plotting.loss_color("ce"), lw=1, label="CE (no clipping)")
    ax_all.plot(ogc["epoch_x"], ogc["ratio_before"], color=colour, lw=1, ls=":", label="CE+OGC, before clipping")
    ax_all.plot(ogc["epoch_x"], ogc["ratio_after"], color=colour, lw=1.5, label="CE+OGC, after clipping")
    ax_all.plot(ogc["epoch_x"], ogc["target"], "k--", lw=1, label=f"target {plotting.TARGET}")
    ax_all.set(yscale="log", ylabel=f"{plotting.RATIO} (truth)")
    # the zoom shows the settled part (after the warm-up), so no point of it falls outside the axis
    late = table[(table["epoch"] > warmup_epochs).to_numpy()]
    ax_zoom.plot(late["epoch_x"], late["target"], "k--", lw=1, zorder=1, label=f"target {plotting.TARGET}")
    ax_zoom.plot(late["epoch_x"], late["ratio_after"], color=colour, lw=1.5, zorder=2, label="after clipping (truth)")
    ax_zoom.plot(late["epoch_x"], late["model_ratio"], "o", mfc="none", mec="black", ms=3, mew=0.7, zorder=3,
                 label=f"r({plotting.TAU_T}) under the fitted mixture")
    shown = np.concatenate([late["ratio_after"], late["target"], late["model_ratio"]])
    ax_zoom.set(ylabel="ratio", title=f"after epoch {warmup_epochs}",
                ylim=(0.9 * shown.min(), 1.1 * shown.max()) if shown.size else None)
    for ax in (ax_all, ax_zoom):
        ax.set(xlabel="epoch")
        ax.legend(fontsize=7)
    return fig


# ---- how well H separates the groups -------------------------------------------------------------------


def separation_quotes(steps: dict[str, pd.DataFrame], epochs: int, warmup_epochs: int) -> Quotes:
    """The median AUC of H (noisy vs clean) over the last ``LAST_EPOCHS`` epochs of each run, CE's best after
    the warm-up, and the median weight of the mixture's noisy component."""
    quotes: Quotes = {
        f"auc_last_{KEYS[loss]}": (float(steps[loss][steps[loss]["epoch"] > epochs - LAST_EPOCHS]["auc_h"].median()),
                                   ".3f")
        for loss in LOSSES}
    ce_auc = steps["ce"][steps["ce"]["epoch"] > warmup_epochs]["auc_h"]
    quotes["auc_max_ce"] = (float(ce_auc.max()) if len(ce_auc) else 0.0, ".3f")
    quotes["weight_noisy_median"] = (float(clipping_steps(steps["ce+ogc"])["weights_noisy"].median()), ".2f")
    return quotes


def plot_separation(steps: dict[str, pd.DataFrame], noise_rate: float) -> Figure:
    """Left: the AUC of H per logged window under each run; right: the mixture's noisy weight against the
    true noise rate."""
    import matplotlib.pyplot as plt

    clipping = clipping_steps(steps["ce+ogc"])
    fig, (ax_auc, ax_w) = plt.subplots(1, 2, figsize=plotting.size(1, row_height=3.0))
    for loss in LOSSES:
        ax_auc.plot(steps[loss]["epoch_x"], steps[loss]["auc_h"], color=plotting.loss_color(loss), lw=1,
                    label=loss.upper())
    ax_auc.set(xlabel="epoch", ylabel="AUC of $H$: noisy vs clean", ylim=(0.4, 1.01))
    ax_w.plot(clipping["epoch_x"], clipping["weights_noisy"], color=plotting.loss_color("ce+ogc"), lw=1,
              label="mixture weight of the noisy component")
    ax_w.axhline(noise_rate, color="k", ls="--", lw=1, label="true noise rate")
    ax_w.set(xlabel="epoch", ylabel="share", ylim=(0, 1))
    for ax in (ax_auc, ax_w):
        ax.legend(fontsize=7, loc="lower right")
    return fig


# ---- CE and CE+OGC in the end --------------------------------------------------------------------------


def seeds_text(n_seeds: int) -> str:
    """Over how many seeds the accuracies are, as the text says it."""
    return "one seed" if n_seeds == 1 else f"{n_seeds} seeds (mean)"


def comparison_quotes(results: Runs, ends: dict[str, pd.DataFrame], seeds: Sequence[int],
                      warmup_epochs: int, first_milestone: int) -> Quotes:
    """CE against CE+OGC: the flipped labels each predicts at the end (p > 1/2 on the flipped label), H of the
    noisy samples, the accuracy over the last epochs and the best (mean over ``seeds``), CE's test accuracy
    swinging at the first learning rate after the warm-up, and the agreement with the noisy labels at the end
    (the first seed)."""
    quotes: Quotes = {"n_seeds": (len(seeds), None), "seeds_text": (seeds_text(len(seeds)), None)}
    for loss in LOSSES:
        key, noisy_h = KEYS[loss], ends[loss]["h"][ends[loss]["noisy"]]
        quotes[f"{key}_memorised"] = (float((noisy_h < np.log(2)).mean()), ".0%")
        quotes[f"{key}_noisy_h_median"] = (float(noisy_h.median()), ".3g")
        quotes[f"{key}_noisy_p_median"] = (float(np.exp(-noisy_h.median())), ".2g")
        accs = [results[loss, s].last10_test_acc for s in seeds]
        quotes[f"{key}_last10"] = (float(np.mean(accs)), ".1%")
        quotes[f"{key}_last10_runs"] = (accs, None)
        quotes[f"{key}_best"] = (float(np.mean([results[loss, s].best_test_acc for s in seeds])), ".1%")
        quotes[f"{key}_agree_noisy_last"] = (results[loss, seeds[0]].epochs[-1]["train_acc_noisy"], ".0%")
    ce = results["ce", seeds[0]].epochs
    first_lr = [e["test_acc"] for e in ce[warmup_epochs:first_milestone]] or [ce[-1]["test_acc"]]
    quotes["ce_first_lr_min"] = (min(first_lr), ".0%")
    quotes["ce_first_lr_max"] = (max(first_lr), ".0%")
    return quotes


def _mean_curve(results: Runs, loss: str, seeds: Sequence[int], key: str) -> np.ndarray:
    """An epochs.csv column of ``loss``'s runs, averaged over ``seeds``."""
    return np.array([[e[key] for e in results[loss, s].epochs] for s in seeds]).mean(0)


def plot_comparison(results: Runs, ends: dict[str, pd.DataFrame],
                    seeds: Sequence[int]) -> Figure:
    """CE and CE+OGC side by side: test accuracy per epoch, training accuracy on the noisy and on the true
    labels, and H of every training sample at the end (noisy outlined, clean filled)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=plotting.size(1, plotting.FULL_WIDTH, 3.0))
    for loss in LOSSES:
        colour, name = plotting.loss_color(loss), loss.upper()
        test = _mean_curve(results, loss, seeds, "test_acc")
        x = np.arange(1, len(test) + 1)
        axes[0].plot(x, 100 * test, color=colour, label=name)
        axes[1].plot(x, 100 * _mean_curve(results, loss, seeds, "train_acc_noisy"), color=colour,
                     label=f"{name}: noisy labels")
        axes[1].plot(x, 100 * _mean_curve(results, loss, seeds, "train_acc_clean"), color=colour, ls="--",
                     label=f"{name}: true labels")
    axes[0].set(xlabel="epoch", ylabel="test accuracy (%)", ylim=(40, 100))
    axes[1].set(xlabel="epoch", ylabel="training accuracy (%)", ylim=(0, 100))
    for loss in LOSSES:
        h, colour = ends[loss], plotting.loss_color(loss)
        axes[2].hist(h["h"][h["noisy"]], H_BINS, histtype="step", color=colour, lw=1.5,
                     label=f"{loss.upper()}: truly noisy")
        axes[2].hist(h["h"][~h["noisy"]], H_BINS, histtype="stepfilled", color=colour, alpha=0.25,
                     label=f"{loss.upper()}: truly clean")
    axes[2].set(xlabel=f"{plotting.H} at the end", ylabel="training samples", yscale="log")
    for ax in axes:
        ax.legend(fontsize=7)
    return fig
