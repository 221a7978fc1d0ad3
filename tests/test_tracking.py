"""Chapter 4's reading of the controller: the runs it plans, and each quoted value and figure, on made-up logs."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from fixtures import run_record  # noqa: E402
from ogc_lab import tracking  # noqa: E402
from ogc_lab.cost import steps_to_fill  # noqa: E402
from ogc_lab.ogc import GMM1D, base_loss, solve_tau  # noqa: E402
from ogc_lab.recipes import get_recipe  # noqa: E402
from ogc_lab.runs import STEPS_CSV, RunRecord, setting_folder  # noqa: E402

STEPS_PER_EPOCH = 4
MIXTURE = {"means": (0.2, 4.0), "variances": (0.05, 1.0), "weights": (0.6, 0.4)}
LRS = {1: 0.1, 2: 0.1, 3: 0.01, 4: 0.01, 5: 0.001, 6: 0.001}  # epoch -> lr: three phases of two epochs


def gmm() -> GMM1D:
    return GMM1D(*(torch.tensor(values, dtype=torch.float64) for values in MIXTURE.values()))


def made_up_steps(clipping_from: int = 3) -> pd.DataFrame:
    """Logged rows every 2 steps over six epochs: no clipping before step ``clipping_from``, then the tau that
    solves r(tau) = 1 + 20 lr under ``MIXTURE``."""
    rows = []
    for step in range(1, 6 * STEPS_PER_EPOCH + 1, 2):
        epoch = (step - 1) // STEPS_PER_EPOCH + 1
        target = 1 + 20 * LRS[epoch]
        tau = float(solve_tau(gmm(), target, base_loss("ce"))) if step >= clipping_from else math.inf
        rows.append(dict(step=step, epoch=epoch, lr=LRS[epoch], target=target, tau=tau, ratio_before=100.0 + step,
                         ratio_after=target * (1.5 if epoch <= 2 else 1.01), clipped_fraction=0.4, noisy_frac=0.4,
                         auc_h=0.7 + 0.01 * step,
                         **{f"{name}_{group}": MIXTURE[name][i] for name in MIXTURE
                            for i, group in enumerate(("clean", "noisy"))}))
    steps = pd.DataFrame(rows)
    steps["epoch_x"] = steps["step"] / STEPS_PER_EPOCH
    return steps


@pytest.fixture
def config():
    return get_recipe("digits-cpu", noise="symmetric:0.4", epochs=6, milestones=(2, 4))


def test_prefix_runs_train_the_first_epochs_as_runs_of_their_own(config, tmp_path: Path) -> None:
    prefixes = tracking.prefix_runs(config, 3, [1, 2, 6], tmp_path)
    assert sorted(prefixes) == [1, 2]  # the last epoch is the full run's
    for epochs, run in prefixes.items():
        assert (run.config.epochs, run.config.loss, run.config.seed, run.config.milestones) == (epochs, "ce+ogc", 3,
                                                                                                (2, 4))
        assert run.out.is_relative_to(setting_folder(tmp_path, {"epochs": epochs}))
    assert tracking.snapshot_folders([1, 6], prefixes, tmp_path / "full") == {1: prefixes[1].out, 6: tmp_path / "full"}
    with pytest.raises(ValueError, match=r"snapshot_epochs \[2, 7\] must not exceed epochs=6"):
        tracking.prefix_runs(config, 0, [2, 7], tmp_path)


def test_steps_are_read_with_fractional_epochs(tmp_path: Path) -> None:
    made_up_steps().drop(columns="epoch_x").to_csv(tmp_path / STEPS_CSV, index=False)
    steps = tracking.steps_with_epochs(tmp_path, STEPS_PER_EPOCH)
    assert steps["epoch_x"].tolist() == [s / STEPS_PER_EPOCH for s in steps["step"]]


def test_the_threshold_is_quoted_per_learning_rate_phase(config) -> None:
    quotes = tracking.threshold_quotes(made_up_steps(clipping_from=9), config)
    assert quotes["first_tau_step"] == (9, None)
    settings = config.ogc_settings
    assert quotes["first_refit_step"][0] == steps_to_fill(settings.queue_size, config.batch_size, settings.interval)
    # the first phase ended before any clipping: tau reads 'not yet' (and metrics.json, which holds no inf, None)
    assert quotes["tau_first_lr"] == ("∞ (no clipping yet)", None) and quotes["phases"][0][0]["tau"] is None
    assert quotes["tau_second_lr"][1] == ".3g" and quotes["tau_second_lr"][0] > quotes["tau_third_lr"][0]
    assert [quotes[f"{o}_lr"][0] for o in ("first", "second", "third")] == [0.1, 0.01, 0.001]
    assert [quotes[f"target_{o}_lr"][0] for o in ("first", "second", "third")] == pytest.approx([3.0, 1.2, 1.02])
    assert quotes["clipped_fraction_median"] == (0.4, ".0%")


def test_more_phases_than_the_text_can_name_are_refused(config) -> None:
    steps = made_up_steps()
    steps["lr"] = steps["epoch"] / 10  # six phases
    with pytest.raises(ValueError, match="6 learning-rate phases; allowed: at most 5"):
        tracking.threshold_quotes(steps, config)


def snapshot(means: tuple[float, float] = MIXTURE["means"]) -> tracking.Snapshot:
    """A queue snapshot with ``MIXTURE`` (or unfitted means) and a training set: 60 clean at small H, 40 noisy
    at large H, and one clean sample out among the noisy."""
    snap = {"h": np.linspace(0, 5, 50), "tau": 3.0, "means": np.array(means),
            "variances": np.array(MIXTURE["variances"]), "weights": np.array(MIXTURE["weights"])}
    h = np.concatenate([np.full(59, 0.1), [5.0], np.full(40, 5.0)])
    return snap, pd.DataFrame({"h": h, "noisy": np.arange(100) >= 60})


def test_a_snapshot_row_sets_the_mixtures_labelling_against_the_truth() -> None:
    row = tracking.snapshot_row(5, snapshot())
    assert row["agreement"] == pytest.approx(0.99) and row["clean_called_noisy"] == pytest.approx(1 / 60)
    assert row["noisy_called_clean"] == 0.0 and (row["mean_clean"], row["weight_noisy"]) == (0.2, 0.4)
    assert (row["noisy_h_median"], row["clean_h_median"], row["tau"]) == (5.0, 0.1, 3.0)
    unfitted = tracking.snapshot_row(1, snapshot((math.nan, math.nan)))
    assert unfitted["agreement"] is None and unfitted["mean_noisy"] is None and unfitted["noisy_h_median"] == 5.0


def test_snapshot_quotes_find_the_worst_labelling_and_leave_unfitted_fields_out() -> None:
    rows = [tracking.snapshot_row(1, snapshot((math.nan, math.nan))), tracking.snapshot_row(2, snapshot()),
            dict(tracking.snapshot_row(3, snapshot()), agreement=0.9)]
    quotes = tracking.snapshot_quotes(rows)
    assert quotes["agreement_first"][0] == pytest.approx(0.99) and quotes["agreement_last"][0] == 0.9
    assert quotes["agreement_worst_epoch"] == (3, None) and quotes["agreement_worst"] == (0.9, ".1%")
    assert (quotes["first_snapshot"][0], quotes["last_snapshot"][0]) == (1, 3)
    assert "agreement" not in quotes["snapshots"][0][0] and quotes["snapshots"][0][2]["agreement"] == 0.9
    with pytest.raises(ValueError, match=r"no mixture was fitted by epochs \[1\]"):
        tracking.snapshot_quotes(rows[:1])


def test_the_logged_mixture_meets_the_target_its_tau_was_solved_for() -> None:
    table = tracking.ratio_table(made_up_steps())
    assert not table["same_target"].iloc[0] and table["same_target"].sum() == len(table) - 3  # one per lr change
    assert table["model_ratio"].to_numpy() == pytest.approx(table["target"].to_numpy(), rel=1e-6)
    row = table.iloc[0].copy()
    row["tau"] *= 2
    assert tracking.logged_ratio(row) > row["target"]  # a larger tau lets more noisy gradient through


def test_ratio_quotes_part_the_warm_up_from_the_settled_steps() -> None:
    steps = made_up_steps()
    quotes = tracking.ratio_quotes(tracking.ratio_table(steps), steps, warmup_epochs=2)
    assert quotes["model_ratio_max_rel_err"][0] <= 1e-6
    assert quotes["ratio_after_over_target_max"][0] == pytest.approx(1.01)  # after epoch 2
    assert quotes["ratio_after_early_max"][0] == pytest.approx(1.5 * 3.0)  # the warm-up overshoots
    assert quotes["ce_ratio_before_last"][0] == pytest.approx(100 + 22)  # median of steps 21 and 23
    assert set(quotes["ratio_rows"][0]) >= {"step", "model_ratio", "same_target"}


def test_separation_is_read_over_the_last_epochs() -> None:
    steps = {"ce": made_up_steps(), "ce+ogc": made_up_steps()}
    quotes = tracking.separation_quotes(steps, epochs=10, warmup_epochs=5)  # all six epochs are among the last 10
    assert quotes["auc_last_ogc"][0] == pytest.approx(steps["ce"]["auc_h"].median())
    assert quotes["auc_max_ce"][0] == pytest.approx(0.7 + 0.01 * 23)  # epoch 6 only
    assert quotes["weight_noisy_median"] == (0.4, ".2f")  # the logged mixture's
    later = tracking.separation_quotes(steps, epochs=12, warmup_epochs=5)  # epochs 3 to 6 are the last 10 of 12
    assert later["auc_last_ce"][0] == pytest.approx(0.7 + 0.01 * 16)  # the median of steps 9 to 23


def result(test_acc: list[float], noisy_fit: float) -> RunRecord:
    """A finished run's record with these test accuracies (the last one standing for the last epochs')."""
    epochs = [dict(test_acc=a, train_acc_noisy=noisy_fit, train_acc_clean=0.9) for a in test_acc]
    return run_record(epochs, last10_test_acc=test_acc[-1])


def test_comparison_quotes_memorisation_accuracy_and_the_swing_at_the_first_lr() -> None:
    results = {("ce", 0): result([0.5, 0.9, 0.6, 0.8], 0.7), ("ce+ogc", 0): result([0.6, 0.9, 0.95, 0.96], 0.6),
               ("ce", 1): result([0.5, 0.9, 0.6, 0.7], 0.7), ("ce+ogc", 1): result([0.6, 0.9, 0.95, 0.94], 0.6)}
    _, ends = snapshot()
    ce_end = ends.assign(h=np.where(ends["noisy"], 0.5, 0.1))  # CE fits every flipped label: p > 1/2 on it
    quotes = tracking.comparison_quotes(results, {"ce": ce_end, "ce+ogc": ends}, [0, 1], 1, 3)
    assert (quotes["ce_memorised"][0], quotes["ogc_memorised"][0]) == (1.0, 0.0)
    assert quotes["ogc_noisy_p_median"][0] == pytest.approx(math.exp(-5.0))
    assert quotes["ce_last10"][0] == pytest.approx(0.75) and quotes["ogc_last10_runs"] == ([0.96, 0.94], None)
    assert (quotes["ce_first_lr_min"][0], quotes["ce_first_lr_max"][0]) == (0.6, 0.9)  # epochs 2 and 3
    assert quotes["seeds_text"] == ("2 seeds (mean)", None) and tracking.seeds_text(1) == "one seed"
    assert quotes["ce_agree_noisy_last"] == (0.7, ".0%")
    late = tracking.comparison_quotes(results, {"ce": ce_end, "ce+ogc": ends}, [0], 5, 3)  # warm-up past the lr
    assert late["ce_first_lr_min"][0] == late["ce_first_lr_max"][0] == 0.8  # the last epoch stands in


def test_prefix_runs_are_quoted_as_exact_or_within_their_difference() -> None:
    full = result([0.5, 0.6, 0.7], 0.5)
    assert tracking.prefix_quotes([result([0.5, 0.6], 0.5)], full)["prefix_text"] == ("exactly", None)
    assert tracking.prefix_quotes([result([0.5, 0.61], 0.5)], full)["prefix_text"][0] == "to within 0.01"


def test_the_figures_have_their_panels() -> None:
    steps = {"ce": made_up_steps(), "ce+ogc": made_up_steps()}
    ends = {loss: snapshot()[1] for loss in tracking.LOSSES}
    results = {(loss, 0): result([0.5, 0.6], 0.5) for loss in tracking.LOSSES}
    figures = {
        "threshold": (tracking.plot_threshold(steps["ce+ogc"]), 3),  # tau, its lr twin, the clipped share
        "snapshots": (tracking.plot_snapshots({1: snapshot((math.nan, math.nan)), 2: snapshot()}), 3),
        "ratio": (tracking.plot_ratio(steps, tracking.ratio_table(steps["ce+ogc"]), 2), 2),
        "separation": (tracking.plot_separation(steps, 0.4), 2),
        "comparison": (tracking.plot_comparison(results, ends, [0]), 3),
    }
    for name, (fig, panels) in figures.items():
        assert len(fig.axes) == panels, name
        plt.close(fig)
