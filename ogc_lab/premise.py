"""OGC's premise, measured on a run: do truly noisy samples have larger H = -log p than clean ones, and does
the two-component mixture find them?

OGC's threshold rests on two modes of H, the lower clean and the upper noisy.  A run's ``steps.csv``
holds, per diagnostics window, the AUC of H between truly noisy and clean samples (``auc_h``), the
true noisy share of the window (``noisy_frac``) and the mixture fitted last (``weights_noisy``, the
weight of the upper component).  With one row per refit (``log_interval`` = ``ogc_interval``), a
window is the queue the mixture was fitted to.  ``mixture_agreement`` refits a queue snapshot with
the library's EM and with scikit-learn's, to tell the regime from the code.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from .ogc import fit_gmm_sklearn, fit_gmm_torch

HIGH_LR_SHARE = 0.5  # "the first learning rate": windows at lr >= this share of the run's peak lr
SEPARATED_AUC = 0.9  # the AUC of H at which clean and noisy samples count as separated (issue 19's target)


def refit_windows(steps: pd.DataFrame) -> pd.DataFrame:
    """The diagnostics windows with a fitted mixture (queue full), with phase, AUC, true and fitted noisy share."""
    fitted = steps[steps["refits"] > 0] if "refits" in steps else steps.iloc[0:0]
    out = pd.DataFrame({
        "step": fitted["step"].astype(int),
        "epoch": fitted["epoch"].astype(int),
        "lr": fitted["lr"].astype(float),
        "auc_h": fitted["auc_h"].astype(float),
        "noisy_share": fitted["noisy_frac"].astype(float),
        "mixture_noisy_weight": fitted["weights_noisy"].astype(float),
    })
    out["high_lr"] = out["lr"] >= HIGH_LR_SHARE * steps["lr"].max()
    return out.reset_index(drop=True)


def premise_summary(steps: pd.DataFrame) -> dict[str, Any]:
    """The premise in the high-lr phase: how well H separates the noisy samples and how the mixture's noisy
    weight compares with their true share; NaNs when the run has no refit there yet."""
    windows = refit_windows(steps)
    high = windows[windows["high_lr"]]
    gap = high["mixture_noisy_weight"] - high["noisy_share"]
    return {
        "windows": len(high),
        "auc_median": float(high["auc_h"].median()),
        "auc_min": float(high["auc_h"].min()),
        "separated_share": float((high["auc_h"] >= SEPARATED_AUC).mean()) if len(high) else float("nan"),
        "noisy_share_mean": float(high["noisy_share"].mean()),
        "mixture_noisy_weight_mean": float(high["mixture_noisy_weight"].mean()),
        "weight_gap_mean_abs": float(gap.abs().mean()),
    }


def epoch_table(steps: pd.DataFrame) -> pd.DataFrame:
    """The premise per epoch, one row each: median AUC of H, true noisy share of the queue, the mixture's noisy
    weight, OGC's tau (inf: no threshold), the true noisy/clean gradient ratio before clipping and the target."""
    windows = refit_windows(steps)
    extra = steps.loc[steps["refits"] > 0, ["tau", "ratio_before", "target"]].astype(float).reset_index(drop=True)
    per_window = pd.concat([windows, extra], axis=1)
    return per_window.groupby("epoch").agg(
        lr=("lr", "last"), auc_h=("auc_h", "median"), noisy_share=("noisy_share", "mean"),
        mixture_noisy_weight=("mixture_noisy_weight", "median"), tau=("tau", "median"),
        true_ratio=("ratio_before", "median"), target=("target", "median")).reset_index()


def mixture_agreement(h: np.ndarray, seed: int = 0) -> dict[str, Any]:
    """The library's EM and scikit-learn's GaussianMixture (k-means start, 10 iterations, reg_covar 1e-3) on
    one queue of H values: both fits (clean component first) and the largest difference of any parameter."""
    values = np.asarray(h, dtype=np.float64)
    ours = fit_gmm_torch(torch.from_numpy(values), generator=torch.Generator().manual_seed(seed)).sorted()
    theirs = fit_gmm_sklearn(values, seed=seed).sorted()
    fits = {name: {k: getattr(gmm, k).double().tolist() for k in ("means", "variances", "weights")}
            for name, gmm in (("ogc_lab", ours), ("sklearn", theirs))}
    largest = max(abs(a - b) for k in ("means", "variances", "weights")
                  for a, b in zip(fits["ogc_lab"][k], fits["sklearn"][k]))
    return {**fits, "max_abs_difference": largest, "queue_size": len(values)}
