"""Tests for ogc_lab.premise: the refit windows and their summary counted exactly, the two mixture fits, and a
run's saved internals (the queue of its last checkpoint, H of every training sample under its last model)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from ogc_lab import premise
from ogc_lab.batches import normalise
from ogc_lab.data import load_dataset
from ogc_lab.models import make_model
from ogc_lab.ogc import H_MAX, H_MIN, OGC_DEFAULTS
from ogc_lab.premise import (
    SEPARATED_AUC,
    TRACKS,
    epoch_table,
    mixture_agreement,
    premise_sentence,
    premise_summary,
    premise_verdict,
    refit_windows,
)
from ogc_lab.recipes import get_recipe
from ogc_lab.runs import CHECKPOINT, load_checkpoint
from ogc_lab.train import train


def _steps() -> pd.DataFrame:
    """Six windows: the first before the queue is full, three at the peak lr 0.1, two after it decayed."""
    return pd.DataFrame({
        "step": [32, 64, 96, 128, 160, 192],
        "epoch": [1, 1, 2, 2, 3, 3],
        "lr": [0.02, 0.06, 0.1, 0.08, 0.04, 0.01],
        "refits": [0, 1, 2, 3, 4, 5],
        "auc_h": [0.5, 0.85, 0.95, 0.92, 0.97, 0.99],
        "noisy_frac": [0.6, 0.58, 0.61, 0.6, 0.62, 0.6],
        "weights_noisy": [float("nan"), 0.3, 0.55, 0.5, 0.6, 0.61],
        "tau": [float("inf"), 12.0, float("inf"), float("inf"), 8.0, 6.0],
        "ratio_before": [9.0, 4.0, 1.5, 2.5, 5.0, 7.0],
        "target": [1.4, 2.2, 3.0, 2.6, 1.8, 1.2],
    })


def test_refit_windows_keep_fitted_windows_and_mark_the_high_lr_phase() -> None:
    windows = refit_windows(_steps())
    assert windows["step"].tolist() == [64, 96, 128, 160, 192]  # the first window had no mixture yet
    assert windows["high_lr"].tolist() == [True, True, True, False, False]  # lr >= 0.05, half the peak


def test_epoch_table_aggregates_the_fitted_windows_of_each_epoch() -> None:
    table = epoch_table(_steps())
    assert table["epoch"].tolist() == [1, 2, 3]
    assert table["lr"].tolist() == [0.06, 0.08, 0.01]  # the epoch's last window
    assert table["auc_h"].tolist() == pytest.approx([0.85, 0.935, 0.98])  # medians; epoch 1's unfitted window left out
    assert table["mixture_noisy_weight"].tolist() == pytest.approx([0.3, 0.525, 0.605])
    assert table["tau"].tolist() == [12.0, float("inf"), 7.0]  # inf: no threshold in that epoch
    assert table["true_ratio"].tolist() == pytest.approx([4.0, 2.0, 6.0])
    assert table["target"].tolist() == pytest.approx([2.2, 2.8, 1.5])


def test_premise_summary_counts_the_high_lr_windows_exactly() -> None:
    summary = premise_summary(_steps())
    assert summary["windows"] == 3
    assert summary["auc_median"] == 0.92 and summary["auc_min"] == 0.85
    assert summary["separated_share"] == pytest.approx(2 / 3)  # 0.95 and 0.92 reach SEPARATED_AUC
    assert SEPARATED_AUC == 0.9
    assert summary["noisy_share_mean"] == pytest.approx((0.58 + 0.61 + 0.6) / 3)
    assert summary["mixture_noisy_weight_mean"] == pytest.approx((0.3 + 0.55 + 0.5) / 3)
    assert summary["weight_gap_mean_abs"] == pytest.approx((0.28 + 0.06 + 0.1) / 3)
    assert summary["unclipped_share"] == pytest.approx(2 / 3)  # tau inf at steps 96 and 128


def test_premise_sentence_words_follow_the_numbers() -> None:
    said = premise_sentence(premise_summary(_steps()))
    assert "median AUC of H between truly noisy and clean samples is 0.92 (lowest 0.85; 67% of the refits" in said
    assert "reaching the 0.9" in said and "does not track it (mean absolute gap 0.15)" in said
    assert "no threshold in 67% of these refits" in said
    below = premise_sentence(premise_summary(_steps().assign(auc_h=0.8, weights_noisy=0.62)))
    assert "0.80 (lowest 0.80; 0% of the refits" in below and "below the 0.9" in below
    assert "it tracks it" in below and TRACKS == 0.1  # gaps 0.04, 0.01, 0.02
    always = premise_sentence(premise_summary(_steps().assign(tau=5.0)))
    assert always.endswith("a threshold at every one of these refits.")
    assert premise_sentence(premise_summary(_steps().assign(refits=0))).startswith("No mixture was fitted")


def test_premise_verdict_holds_only_where_both_parts_hold() -> None:
    assert premise_verdict(premise_summary(_steps().assign(weights_noisy=0.62))) == "holds at the high learning rate"
    neither = premise_verdict(premise_summary(_steps().assign(auc_h=0.8)))
    assert neither == ("not at the high learning rate: the median AUC of H is 0.80, below 0.9; the mixture's noisy "
                       "weight averages 0.45 against a true 0.60")
    assert premise_verdict(premise_summary(_steps().assign(refits=0))) == "not measured yet"


def test_premise_summary_of_a_run_without_refits_is_nan() -> None:
    summary = premise_summary(_steps().assign(refits=0))
    assert summary["windows"] == 0 and np.isnan(summary["auc_median"]) and np.isnan(summary["separated_share"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_library_fit_agrees_with_scikit_learn_on_a_two_mode_queue(seed: int) -> None:
    rng = np.random.default_rng(seed)
    h = np.concatenate([rng.gamma(2.0, 0.1, 2458), rng.normal(4.0, 1.0, 1638).clip(1e-7, 16.118)])
    agreement = mixture_agreement(h, seed=seed)
    assert agreement["queue_size"] == 4096
    assert agreement["max_abs_difference"] < 1e-3
    assert agreement["ogc_lab"]["weights"][1] == pytest.approx(0.4, abs=0.03)  # the upper mode's share
    assert agreement["ogc_lab"]["means"][0] < agreement["ogc_lab"]["means"][1]


@pytest.fixture(scope="module")
def toy_runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A CE+OGC and a CE run of the toy recipe (2 epochs, a small queue refitted every 2 steps)."""
    root = tmp_path_factory.mktemp("runs")
    for loss in ("ce+ogc", "ce"):
        config = get_recipe("toy", loss=loss, noise="symmetric:0.3", epochs=2, ogc_queue_size=64, ogc_interval=2)
        train(config, root / loss, progress=False)
    return {loss: root / loss for loss in ("ce+ogc", "ce")}


def test_queue_snapshot_is_the_controller_of_the_last_checkpoint(toy_runs: dict[str, Path]) -> None:
    snap = premise.queue_snapshot(toy_runs["ce+ogc"])
    result = pd.read_csv(toy_runs["ce+ogc"] / "epochs.csv").iloc[-1]
    assert snap["h"].shape == (64,)  # a full queue
    assert ((snap["h"] >= H_MIN - 1e-12) & (snap["h"] <= H_MAX + 1e-9)).all()
    assert snap["tau"] == pytest.approx(result["tau"], rel=1e-12)
    assert snap["step"] == result["step"]
    assert snap["target"] == pytest.approx(OGC_DEFAULTS.target(0.1))
    assert snap["means"][0] < snap["means"][1] and snap["weights"].sum() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="'ce'.*no OGC controller|no OGC controller.*'ce'"):
        premise.queue_snapshot(toy_runs["ce"])


def test_training_h_is_minus_log_p_of_the_noisy_label_under_the_saved_model(toy_runs: dict[str, Path]) -> None:
    frame = premise.training_h(toy_runs["ce+ogc"])
    state = load_checkpoint(toy_runs["ce+ogc"] / CHECKPOINT)
    split = load_dataset("toy2d", seed=0)
    assert len(frame) == len(split.train_y)
    assert int(frame["noisy"].sum()) == round(0.3 * len(split.train_y))  # exact counts per class
    # independently: cross-entropy of the saved model at the noisy labels (samples the model is sure of
    # have p clamped to 1 - 1e-7, hence H >= 1e-7)
    net = make_model("mlp", split.num_classes, split.input_shape)
    net.load_state_dict(state["model"])
    net.eval()
    noisy_y = torch.where(torch.tensor(frame["noisy"].to_numpy()), 1 - split.train_y, split.train_y)  # K = 2
    with torch.no_grad():
        ce = torch.nn.functional.cross_entropy(net(normalise(split.train_x, split.mean, split.std)), noisy_y,
                                               reduction="none").double().numpy()
    assert np.allclose(frame["h"], np.clip(ce, H_MIN, H_MAX), atol=1e-5)


def test_epoch_headers_name_columns_of_the_epoch_table() -> None:
    table = premise.epoch_table(_steps())
    assert set(premise.EPOCH_HEADERS) < set(table.columns)
    assert table.rename(columns=premise.EPOCH_HEADERS).columns.tolist() == [
        "epoch", "lr", "AUC of H", "noisy share", "mixture's noisy weight", "τ", "true ratio", "target"]


@given(st.floats(0.0, 1.0), st.sampled_from([0.5, 0.9, 0.95]))
def test_a_value_beside_its_threshold_is_written_on_its_own_side(value: float, threshold: float) -> None:
    text = premise.beside(value, threshold)
    if abs(value - threshold) >= 1e-6:  # six decimals tell every value this far from the line
        assert (float(text) >= threshold) == (value >= threshold), (value, text)
    assert len(text.split(".")[1]) >= 2


def test_the_premise_never_reads_its_auc_as_the_threshold_it_falls_below() -> None:
    assert premise.beside(0.8996, 0.9) == "0.8996" and premise.beside(0.91, 0.9) == "0.91"
    summary = {"windows": 10, "auc_median": 0.8996, "auc_min": 0.7, "separated_share": 0.5, "weight_gap_mean_abs": 0.2,
               "mixture_noisy_weight_mean": 0.4, "noisy_share_mean": 0.6, "unclipped_share": 0.0}
    assert "is 0.8996 (lowest 0.70" in premise.premise_sentence(summary)
    assert premise.premise_verdict(summary).startswith("not at the high learning rate: the median AUC of H is 0.8996")
