"""Summaries of a folder of runs: mean +- std over seeds, and the standard plots.

Every run is found by its ``result.json`` (anywhere under the folder); runs are grouped by
(dataset, noise, loss), so the folder layout does not matter.  Output goes to ``DIR/report/``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .io import atomic_write_text, read_json

GROUP = ["dataset", "noise", "loss"]
REPORT_DIR = "report"


def load_runs(root: Path) -> list[dict[str, Any]]:
    """Every finished run under ``root`` (its result plus the path of its folder)."""
    runs = []
    for path in sorted(Path(root).rglob("result.json")):
        if REPORT_DIR in path.relative_to(root).parts[:-1]:
            continue
        result = read_json(path)
        result["dir"] = path.parent
        runs.append(result)
    if not runs:
        raise ValueError(f"no finished runs (result.json) under {str(root)!r}")
    return runs


def _steps(run: dict[str, Any]) -> pd.DataFrame:
    """The run's steps.csv (empty frame if it logged none)."""
    path = run["dir"] / "steps.csv"
    return pd.read_csv(path) if path.exists() and path.stat().st_size else pd.DataFrame()


def run_row(run: dict[str, Any]) -> dict[str, Any]:
    """One run's summary: accuracies and the gradient-ratio diagnostics of its last epoch."""
    cfg = run["config"]
    row = {k: cfg[k] for k in GROUP} | {"seed": cfg["seed"], "model": cfg["model"], "epochs": cfg["epochs"]}
    row |= {
        "last10_test_acc": run["last10_test_acc"],
        "best_test_acc": run["best_test_acc"],
        "final_test_acc": run["final_test_acc"],
        "wall_time_s": run["wall_time_s"],
    }
    steps = _steps(run)
    last = steps[steps["epoch"] == steps["epoch"].max()] if len(steps) else steps
    for column in ("ratio_before", "ratio_after", "target", "auc_h"):
        row[f"{column}_last_epoch"] = float(last[column].median()) if column in last else math.nan
    return row


def summarise(runs: list[dict[str, Any]]) -> pd.DataFrame:
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


def _pm(mean: float, std: float, scale: float = 100.0, digits: int = 2) -> str:
    """'mean ± std' (std left out for a single seed)."""
    if math.isnan(std):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def to_markdown(summary: pd.DataFrame) -> str:
    """A markdown table: accuracies in percent as mean ± std over seeds, plus the diagnostics."""
    head = ["dataset", "noise", "loss", "seeds", "last-10 test acc (%)", "best test acc (%)",
            "ratio after clip (last ep.)", "target", "AUC of H", "time/run (s)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in summary.itertuples(index=False):
        cells = [
            r.dataset, r.noise, r.loss, r.seed,
            _pm(r.last10_test_acc_mean, r.last10_test_acc_std),
            _pm(r.best_test_acc_mean, r.best_test_acc_std),
            f"{r.ratio_after_last_epoch:.3g}", f"{r.target_last_epoch:.3g}", f"{r.auc_h_last_epoch:.3f}",
            f"{r.wall_time_s_mean:.1f}",
        ]
        lines.append("| " + " | ".join(str(c) for c in cells) + " |")
    return "\n".join(lines)


def _curves(runs: list[dict[str, Any]], noise: str) -> dict[str, np.ndarray]:
    """Test-accuracy curves (seeds x epochs) per loss for one noise spec."""
    by_loss: dict[str, list[list[float]]] = {}
    for run in runs:
        if run["config"]["noise"] == noise:
            by_loss.setdefault(run["config"]["loss"], []).append([e["test_acc"] for e in run["epochs"]])
    return {loss: np.array(c) for loss, c in sorted(by_loss.items()) if len({len(x) for x in c}) == 1}


def _slug(text: str) -> str:
    return "".join(c if c.isalnum() or c in "+-." else "_" for c in text)


def plot_test_accuracy(runs: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """One figure per noise spec: mean test accuracy over seeds per loss, with a ±1 std band."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for noise in sorted({r["config"]["noise"] for r in runs}):
        fig, ax = plt.subplots(figsize=(6, 4))
        for loss, curves in _curves(runs, noise).items():
            epochs = np.arange(1, curves.shape[1] + 1)
            mean, std = curves.mean(0), curves.std(0)
            ax.plot(epochs, 100 * mean, label=f"{loss} (n={len(curves)})")
            ax.fill_between(epochs, 100 * (mean - std), 100 * (mean + std), alpha=0.2)
        ax.set(xlabel="epoch", ylabel="test accuracy (%)", title=f"test accuracy, noise {noise}")
        ax.grid(alpha=0.3)
        ax.legend()
        paths.append(out_dir / f"test_acc_{_slug(noise)}.png")
        fig.tight_layout()
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


def plot_clipping(runs: list[dict[str, Any]], out_dir: Path) -> list[Path]:
    """Per noise spec: tau over steps (OGC runs) and the noisy/clean gradient ratio after clipping vs target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = []
    for noise in sorted({r["config"]["noise"] for r in runs}):
        fig, (ax_tau, ax_ratio) = plt.subplots(1, 2, figsize=(11, 4))
        colours = {loss: f"C{i}" for i, loss in enumerate(sorted({r["config"]["loss"] for r in runs}))}
        target_drawn = False
        for run in (r for r in runs if r["config"]["noise"] == noise):
            steps, loss = _steps(run), run["config"]["loss"]
            if not len(steps) or "ratio_after" not in steps:
                continue
            label = f"{loss} seed {run['config']['seed']}"
            finite_tau = steps["tau"].replace([np.inf], np.nan)
            if finite_tau.notna().any():
                ax_tau.plot(steps["step"], finite_tau, color=colours[loss], alpha=0.7, label=label)
            ax_ratio.plot(steps["step"], steps["ratio_after"], color=colours[loss], alpha=0.7, label=label)
            if not target_drawn:
                ax_ratio.plot(steps["step"], steps["target"], "k--", label="target 1 + lr·ε")
                target_drawn = True
        ax_tau.set(xlabel="step", ylabel="tau (|dl/dp| threshold)", yscale="log", title=f"tau, noise {noise}")
        ax_ratio.set(xlabel="step", ylabel="E|g| noisy / E|g| clean after clipping", yscale="log",
                     title="gradient ratio after clipping")
        for ax in (ax_tau, ax_ratio):
            ax.grid(alpha=0.3)
            if ax.get_legend_handles_labels()[0]:
                ax.legend(fontsize=7)
        paths.append(out_dir / f"clipping_{_slug(noise)}.png")
        fig.tight_layout()
        fig.savefig(paths[-1], dpi=120)
        plt.close(fig)
    return paths


def write_report(root: Path) -> str:
    """Write summary.csv, summary.md and the plots to ``root/report/``; return the markdown table."""
    root = Path(root)
    runs = load_runs(root)
    out_dir = root / REPORT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    summary = summarise(runs)
    markdown = to_markdown(summary)
    atomic_write_text(out_dir / "summary.csv", summary.to_csv(index=False))
    atomic_write_text(out_dir / "summary.md", markdown + "\n")
    plot_test_accuracy(runs, out_dir)
    plot_clipping(runs, out_dir)
    return markdown
