"""Chapter 7's reading of the one-at-a-time grid: curves, quoted values, words and figures, on made-up results."""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from fixtures import run_record  # noqa: E402
from ogc_lab import sensitivity  # noqa: E402
from ogc_lab.recipes import get_recipe  # noqa: E402
from ogc_lab.runs import STEPS_CSV  # noqa: E402
from ogc_lab.sweep import grid, one_at_a_time  # noqa: E402

CONFIG = get_recipe("digits-cpu", noise="symmetric:0.4", epochs=4)
AXES = {"ogc_epsilon": [0, 20, 80], "ogc_queue_size": [512, CONFIG.ogc_queue_size], "ogc_interval": [1, 32]}
ACC = {("ogc_epsilon", 0): 0.9, ("ogc_epsilon", 20): 0.92, ("ogc_epsilon", 80): 0.8, ("ogc_queue_size", 512): 0.91,
       ("ogc_interval", 1): 0.9, ("ogc_interval", 32): 0.93}  # the recipe's own point is the epsilon = 20 one


def planned(root: Path, seeds: tuple[int, ...] = (0, 1)):
    """The chapter's grid and CE baseline under ``root``, and made-up results: accuracy by setting (seed 1 two
    points higher), 100 s a run at s = 1 and ``seconds_s32`` at s = 32."""
    settings = one_at_a_time(CONFIG, AXES, ["ce+ogc"], [CONFIG.noise], list(seeds), root)
    baseline = grid(CONFIG, ["ce"], [CONFIG.noise], list(seeds), root)
    results = {}
    for (field, value), runs in settings.items():
        for run in runs:
            acc = ACC.get((field, value), ACC["ogc_epsilon", 20]) + 0.02 * run.config.seed
            seconds = {1: 100.0, 32: 90.0}.get(run.config.ogc_interval, 95.0)
            results[run.out] = run_record([{"step": 12, "test_acc": acc}], wall_time_s=seconds)
    for run in baseline:
        results[run.out] = run_record([{"step": 12, "test_acc": 0.8 + 0.02 * run.config.seed}], wall_time_s=80.0)
    return settings, baseline, results


def test_the_set_up_counts_each_folder_once(tmp_path: Path) -> None:
    settings, baseline, results = planned(tmp_path)
    quotes = sensitivity.setup_quotes(CONFIG, [0, 1], results, baseline)
    assert quotes["runs"] == (len(results), None) and len(results) == 2 * (3 + 1 + 2 + 1)  # q's recipe value is shared
    assert quotes["steps_per_epoch"] == (12, None) and quotes["default_s"] == (CONFIG.ogc_interval, None)


def test_curves_average_the_seeds_of_each_value(tmp_path: Path) -> None:
    settings, baseline, results = planned(tmp_path)
    rows = sensitivity.run_rows(settings, results)
    curves = sensitivity.curves(rows, AXES)
    assert curves["ogc_epsilon"]["values"] == [0, 20, 80]
    assert curves["ogc_epsilon"]["mean"] == pytest.approx([0.91, 0.93, 0.81])
    assert curves["ogc_interval"]["std"] == pytest.approx([0.02 / math.sqrt(2)] * 2)
    one, _, one_results = planned(tmp_path / "one", (0,))
    one_seed = sensitivity.curves(sensitivity.run_rows(one, one_results), AXES)
    assert one_seed["ogc_queue_size"]["std"] == [0.0, 0.0]  # no spread from one seed
    assert sensitivity.baseline_accuracy(baseline, results) == pytest.approx((0.81, 0.02 / math.sqrt(2)))
    assert sensitivity.baseline_accuracy(baseline[:1], results) == (0.8, 0.0)


def test_accuracy_quotes_name_the_best_and_worst_value_of_each_setting(tmp_path: Path) -> None:
    settings, baseline, results = planned(tmp_path)
    curves = sensitivity.curves(sensitivity.run_rows(settings, results), AXES)
    quotes = sensitivity.accuracy_quotes(curves, (0.81, 0.01), CONFIG.ogc_epsilon)
    assert (quotes["eps_best"][0], quotes["eps_worst"][0], quotes["s_best"][0]) == (20, 80, 32)
    assert quotes["eps_range"][0] == pytest.approx(12.0) and quotes["q_range"][0] == pytest.approx(1.0)
    assert quotes["eps_margin_over_ce"][0] == pytest.approx(0.0)  # the worst setting (epsilon 80) is CE's level
    assert (quotes["eps_low_min"][0], quotes["eps_low_max"][0]) == pytest.approx((0.91, 0.93))
    assert quotes["eps_high_text"] == ("81.0% at ε = 80", None)
    below = sensitivity.accuracy_quotes(curves, (0.81, 0.01), 100.0)
    assert below["eps_high_text"] == ("no larger value was run", None)


@pytest.mark.parametrize(("last", "starts"), [
    (90.0, "Refitting less often was cheaper here"), (97.5, "Refitting less often made no measurable"),
    (103.0, "Refitting less often made no measurable"), (104.0, "Refitting less often did not make")])
def test_the_interval_cost_is_worded_by_the_two_times(last: float, starts: str) -> None:
    said = sensitivity.interval_cost_sentence(1, 100.0, 32, last)
    assert said.startswith(starts) and f"{last:.1f} s with s = 32" in said


def test_interval_cost_quotes_read_the_interval_axis(tmp_path: Path) -> None:
    settings, _, results = planned(tmp_path)
    quotes = sensitivity.interval_cost_quotes(sensitivity.run_rows(settings, results), [1, 32])
    assert quotes["seconds_per_interval"][0] == {"1": 100.0, "32": 90.0}
    assert quotes["interval_cost_sentence"][0].startswith("Refitting less often was cheaper")


def write_steps(run_dir: Path, taus: list[float], epsilon: float) -> None:
    """A steps.csv of one logged row per epoch, one epoch per lr phase (0.1, 0.01) with the given taus."""
    run_dir.mkdir(parents=True, exist_ok=True)
    lrs = [0.1, 0.01][:len(taus)]
    pd.DataFrame(dict(step=range(1, len(taus) + 1), epoch=range(1, len(taus) + 1), lr=lrs, tau=taus,
                      target=[1 + lr * epsilon for lr in lrs], ratio_before=1.0, ratio_after=1.0)).to_csv(
        run_dir / STEPS_CSV, index=False)


def test_phase_thresholds_are_quoted_per_epsilon_with_no_clipping_in_words(tmp_path: Path) -> None:
    settings, _, _ = planned(tmp_path)
    for (field, value), runs in settings.items():
        if field == "ogc_epsilon":
            write_steps(runs[0].out, [math.inf, 1.0] if value == 80 else [1.0 + value / 10, 1.0], value)
    phases = sensitivity.phase_thresholds(settings, "ogc_epsilon")
    assert list(phases) == [0, 20, 80]
    quotes = sensitivity.threshold_quotes(phases)
    assert quotes["phase_tau"][0] == {"0": [1.0, 1.0], "20": [3.0, 1.0], "80": [None, 1.0]}
    assert quotes["phase_target"][0]["80"] == pytest.approx([9.0, 1.8])
    assert quotes["eps_small_tau"] == (1.0, ".3g") and quotes["eps_large_tau"] == ("∞ (no clipping)", None)
    assert quotes["eps_large_target"] == (9.0, ".3g")
    fig = sensitivity.plot_thresholds(phases)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 2 * 2  # tau and target per phase
    plt.close(fig)


def test_the_accuracy_figure_has_a_panel_per_setting(tmp_path: Path) -> None:
    settings, _, results = planned(tmp_path)
    curves = sensitivity.curves(sensitivity.run_rows(settings, results), AXES)
    fig = sensitivity.plot_accuracy(curves, (0.8, 0.01), CONFIG)
    assert [ax.get_xlabel() for ax in fig.axes] == [s.label for s in sensitivity.SETTINGS.values()]
    plt.close(fig)
