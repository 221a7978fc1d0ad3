"""Summaries of runs: mean +- std over seeds and the standard plots.

``write_report`` finds every run of a folder by its ``result.json`` (anywhere under the folder) and
groups them by (dataset, noise, loss), so the folder layout does not matter; output goes to
``DIR/report/``.  The smaller pieces (``lr_phases``, ``results_frame``, ``mean_std``, ``pm_table``,
``markdown_table``, ``provenance_table``) are shared by the command line and the book's chapters, which
read runs through ``runs`` and draw through ``plotting``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .files import staged_folder
from .plotting import TAU, loss_color, plot_accuracy_curves, plot_ratio, plot_tau
from .registry import choose
from .runs import LAST_EPOCHS, REPORT_DIR, RunRecord, load_runs, load_steps, slug
from .tables import format_pm, markdown, percent

GROUP = ["dataset", "noise", "loss"]


def lr_phases(steps: pd.DataFrame) -> pd.DataFrame:
    """One row per learning-rate phase of a run's steps.csv: lr, target, its epochs, and where it ended.

    ``tau``, ``ratio_before`` and ``ratio_after`` are medians over the logged rows of the phase's last
    epoch (what the controller settled on before the next lr step); a phase is a run of equal lr.
    """
    if not len(steps):
        raise ValueError("steps is empty: the run logged no diagnostics (log_interval > its steps?)")
    phase = steps["lr"].ne(steps["lr"].shift()).cumsum()
    rows = []
    for _, part in steps.groupby(phase, sort=True):
        last = part[part["epoch"] == part["epoch"].max()]
        rows.append({
            "lr": float(part["lr"].iloc[0]), "target": float(part["target"].iloc[0]),
            "first_epoch": int(part["epoch"].min()), "last_epoch": int(part["epoch"].max()),
            **{c: float(last[c].median()) for c in ("tau", "ratio_before", "ratio_after")},
        })
    return pd.DataFrame(rows)


SUMMARY_METRICS = ("last10_test_acc", "best_test_acc", "final_test_acc", "wall_time_s")


def results_frame(results: Sequence[RunRecord], fields: Sequence[str] = ("loss", "noise", "seed")) -> pd.DataFrame:
    """One row per run: the config ``fields`` and the summary accuracies."""
    rows = [{f: _config_value(r.config, f) for f in fields} | {m: getattr(r, m) for m in SUMMARY_METRICS}
            for r in results]
    return pd.DataFrame(rows, columns=[*fields, *SUMMARY_METRICS])


def _config_value(config: dict[str, Any], name: str) -> Any:
    return choose("config field", name, config)


def mean_std(frame: pd.DataFrame, by: Sequence[str], value: str) -> pd.DataFrame:
    """Mean, sample std (ddof 1; NaN for one run) and count of ``value`` per group of ``by``, in first-seen order."""
    for column in [*by, value]:
        if column not in frame:
            raise ValueError(f"no column {column!r}; have: {', '.join(map(str, frame.columns))}")
    grouped = frame.groupby(list(by), sort=False)[value]
    return grouped.agg(mean="mean", std="std", n="count").reset_index()


def pm_table(frame: pd.DataFrame, index: str, columns: str, value: str, scale: float = 100.0,
             digits: int = 1) -> pd.DataFrame:
    """A table of 'mean ± std' strings of ``value`` (times ``scale``): rows ``index``, columns ``columns``."""
    stats = mean_std(frame, [index, columns], value)
    stats["cell"] = [format_pm(m, s, scale, digits) for m, s in zip(stats["mean"], stats["std"])]
    table = stats.pivot(index=index, columns=columns, values="cell")
    return table.reindex(index=_first_seen(frame[index]), columns=_first_seen(frame[columns])).fillna("")


def _first_seen(values: pd.Series) -> list[Any]:
    """The distinct values in the order they first appear (tables follow the order the runs were listed)."""
    return list(dict.fromkeys(values))


def markdown_table(frame: pd.DataFrame, index: bool = True) -> str:
    """``frame`` as a GitHub/MyST markdown table (the index as the first column when ``index``), cells as ``str``."""
    data = frame.reset_index() if index else frame
    return markdown(data.columns, data.itertuples(index=False))


def run_row(run: RunRecord) -> dict[str, Any]:
    """One run's summary: accuracies and the gradient-ratio diagnostics of its last epoch."""
    row = {k: getattr(run, k) for k in GROUP} | {"seed": run.seed, "model": run.model, "epochs": run.config["epochs"]}
    row |= {
        "last10_test_acc": run.last10_test_acc,
        "best_test_acc": run.best_test_acc,
        "final_test_acc": run.final_test_acc,
        "wall_time_s": run.wall_time_s,
    }
    steps = load_steps(run.dir)
    last = steps[steps["epoch"] == steps["epoch"].max()] if len(steps) else steps
    for column in ("ratio_before", "ratio_after", "target", "auc_h"):
        row[f"{column}_last_epoch"] = float(last[column].median()) if column in last else math.nan
    return row


def summarise(runs: list[RunRecord]) -> pd.DataFrame:
    """Mean and sample std over seeds of each (dataset, noise, loss) group."""
    rows = pd.DataFrame([run_row(r) for r in runs])
    metrics = ["last10_test_acc", "best_test_acc", "final_test_acc", "wall_time_s"]
    diag = ["ratio_before_last_epoch", "ratio_after_last_epoch", "target_last_epoch", "auc_h_last_epoch"]
    grouped = rows.groupby(GROUP, sort=True)
    out = grouped[metrics].agg(["mean", "std"])
    out.columns = [f"{m}_{s}" for m, s in out.columns]
    out = out.join(grouped[diag].mean()).join(grouped["seed"].agg(lambda s: ",".join(map(str, sorted(s)))))
    out.insert(0, "runs", grouped.size())
    return out.reset_index()


def provenance_table(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """Committed runs per (dataset, noise, loss), in first-seen order: seeds, last-10 test accuracy as
    'mean ± std' (%), and the devices, dates and data files that produced them, so a table of results
    never loses where they came from."""
    columns = [*GROUP, "seeds", "last-10 test acc (%)", "device", "dates", "data"]
    frame = pd.DataFrame([{
        **{k: getattr(r, k) for k in GROUP}, "seed": r.seed, "acc": r.last10_test_acc,
        "device": r.device, "dates": r.date[:10], "data": r.data_source.split(" ")[0],
    } for r in runs])
    if frame.empty:
        return pd.DataFrame(columns=columns)
    rows = [{
        **dict(zip(GROUP, key)), "seeds": ",".join(map(str, sorted(group["seed"]))),
        "last-10 test acc (%)": format_pm(group["acc"].mean(), group["acc"].std()),
        **{name: ", ".join(sorted(set(group[name]))) for name in ("device", "dates", "data")},
    } for key, group in frame.groupby(GROUP, sort=False)]
    return pd.DataFrame(rows, columns=columns)


RUN_RECORD = ["dataset", "model", "loss", "noise", "seed", "epochs", "train images", "test images", "realised noise",
              "final test acc", "best test acc", "last-10 test acc", "final tau", "wall s", "device", "date"]


def run_records(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per finished run (columns ``RUN_RECORD``): what ran (data, model, loss, noise, seed, epochs, images),
    how it did (realised noise, final, best and last-10 test accuracy, its last threshold in words), where and when."""
    rows = []
    for run in runs:
        tau = run.result["final_tau"]  # no field of the record: only the trainer's result.json holds it
        threshold = "∞ (no clipping)" if tau is None or not math.isfinite(tau) else f"{tau:.3g}"
        rows.append([run.dataset, run.model, run.loss, run.noise, run.seed, run.config["epochs"], run.num_train,
                     run.num_test, run.noise_report["realised_rate"], run.final_test_acc, run.best_test_acc,
                     run.last10_test_acc, threshold, run.wall_time_s, run.device, run.date])
    return pd.DataFrame(rows, columns=RUN_RECORD)


def outcome_table(records: pd.DataFrame) -> pd.DataFrame:
    """``run_records``' rows as a page shows what the runs gave: loss, noise, realised noise, final and last-10 test
    accuracy in per cent, and the last threshold (what every run shares is for the text)."""
    shown = records[["loss", "noise", "realised noise", "final test acc", "last-10 test acc", "final tau"]]
    percents = {c: percent(shown[c]) for c in ("realised noise", "final test acc", "last-10 test acc")}
    return shown.assign(**percents).rename(columns={"last-10 test acc": f"last ≤ {LAST_EPOCHS} epochs"})


def to_markdown(summary: pd.DataFrame) -> str:
    """A markdown table: accuracies in percent as mean ± std over seeds, plus the diagnostics."""
    head = ["dataset", "noise", "loss", "seeds", "last-10 test acc (%)", "best test acc (%)",
            "ratio after clip (last ep.)", "target", "AUC of H", "time/run (s)"]
    rows = [[
        r.dataset, r.noise, r.loss, r.seed,
        format_pm(r.last10_test_acc_mean, r.last10_test_acc_std),
        format_pm(r.best_test_acc_mean, r.best_test_acc_std),
        f"{r.ratio_after_last_epoch:.3g}", f"{r.target_last_epoch:.3g}", f"{r.auc_h_last_epoch:.3f}",
        f"{r.wall_time_s_mean:.1f}",
    ] for r in summary.itertuples(index=False)]
    return markdown(head, rows)


def _figure_per_noise(runs: list[RunRecord], out_dir: Path, prefix: str, draw: Any, size: tuple[float, float],
                      panels: int = 1) -> list[Path]:
    """One PNG per noise spec, ``draw(axes, runs_of_that_noise, noise)`` filling its panels.

    Figures are made without pyplot, so writing a report never changes the caller's matplotlib backend.
    """
    from matplotlib.figure import Figure

    paths = []
    for noise in sorted({r.noise for r in runs}):
        fig = Figure(figsize=size, layout="tight")  # whatever layout the caller's rcParams ask for
        axes = fig.subplots(1, panels, squeeze=False)
        draw(axes[0], [r for r in runs if r.noise == noise], noise)
        for ax in axes[0]:
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        paths.append(out_dir / f"{prefix}_{slug(noise)}.png")
        fig.savefig(paths[-1], dpi=120)
    return paths


def plot_test_accuracy(runs: list[RunRecord], out_dir: Path) -> list[Path]:
    """One figure per noise spec: mean test accuracy over seeds per loss, with a ±1 std band."""

    def draw(axes: Any, of_noise: list[RunRecord], noise: str) -> None:
        plot_accuracy_curves(axes[0], of_noise, noise)
        axes[0].set_title(f"test accuracy, noise {noise}")

    return _figure_per_noise(runs, out_dir, "test_acc", draw, (6, 4))


def plot_clipping(runs: list[RunRecord], out_dir: Path) -> list[Path]:
    """Per noise spec: tau over steps (OGC runs) and the noisy/clean gradient ratio after clipping vs target."""

    def draw(axes: Any, of_noise: list[RunRecord], noise: str) -> None:
        ax_tau, ax_ratio = axes
        target_drawn = False
        for run in of_noise:
            steps, loss = load_steps(run.dir), run.loss
            if not len(steps) or "ratio_after" not in steps:
                continue
            style = dict(color=loss_color(loss), alpha=0.7, label=f"{loss} seed {run.seed}")
            if np.isfinite(steps["tau"]).any():
                plot_tau(ax_tau, steps, **style)
            plot_ratio(ax_ratio, steps, target=not target_drawn, **style)
            target_drawn = True
        ax_tau.set_title(f"{TAU}, noise {noise}")
        ax_ratio.set_title("gradient ratio after clipping")

    return _figure_per_noise(runs, out_dir, "clipping", draw, (11, 4), panels=2)


def write_report(root: Path, out: Path | None = None) -> str:
    """Write summary.csv, summary.md and the plots of the runs under ``root`` to ``out/report/`` (``out``
    defaults to ``root``), all of them or (on any error) none, so a failed report leaves the previous one
    whole; return the markdown table."""
    root = Path(root)
    runs = load_runs(root)
    summary = summarise(runs)
    markdown = to_markdown(summary)
    with staged_folder(Path(out if out is not None else root) / REPORT_DIR) as staging:
        (staging / "summary.csv").write_text(summary.to_csv(index=False), encoding="utf-8")
        (staging / "summary.md").write_text(markdown + "\n", encoding="utf-8")
        plot_test_accuracy(runs, staging)
        plot_clipping(runs, staging)
    return markdown
