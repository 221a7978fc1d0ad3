"""ogc_lab.regime: a training setting in words, the regime search, and whether CE had begun to memorise."""

from __future__ import annotations

import pytest

from fixtures import fake_run, run_record
from ogc_lab import regime
from ogc_lab.evidence import runs_frame
from ogc_lab.regime import search_table, still_learning_sentence
from ogc_lab.runs import RunRecord


def test_search_table_lays_out_each_runs_setting_minutes_and_memorisation() -> None:
    setting = dict(model="cnn8", epochs=3, milestones=[1, 2], crop_padding=0, flip=False, rotation=0.0)
    run = fake_run("ce", 0, [0.2, 0.4, 0.3], noisy_fit=0.55, num_train=5000, wall_time_s=600.0, config=setting)
    row = search_table([run]).iloc[0]
    assert (row["augmentation"], row["minutes"], row["peak epoch"], row["lr steps at"]) == ("none", 10.0, 2, "1, 2")
    assert row["drop (points)"] == pytest.approx(10.0)
    augmented = fake_run("ce", 0, [0.2, 0.4, 0.3], config=setting | dict(crop_padding=4, flip=True, rotation=15.0))
    assert search_table([augmented]).iloc[0]["augmentation"] == "crop (pad 4) + flip + rotation 15°"


def test_still_learning_sentence_tells_a_rising_run_from_a_memorising_one() -> None:
    rising = runs_frame([fake_run("ce", s, [0.50 + 0.01 * e for e in range(12)], noise="symmetric:0.4")
                         for s in range(2)])
    assert still_learning_sentence(rising, "symmetric:0.4", 12) == (
        "Under symmetric:0.4, ce's test accuracy peaked in epoch 12 of 12 on average and ended 0.0 points below that "
        "peak: ce had not begun to memorise, so there was nothing for a method against memorisation to prevent, and a "
        "comparison there says little about it.")
    falling = runs_frame([fake_run("ce", 0, [0.3, 0.4, 0.2])])
    assert still_learning_sentence(falling, "symmetric:0.6", 3) == (
        "Under symmetric:0.6, ce's test accuracy peaked in epoch 2 of 3 on average and ended 20.0 points below that "
        "peak.")
    assert "no finished run" in still_learning_sentence(falling, "human:worse", 3)


def _schedule_run(seed, epochs, batch, milestones, steps_per_epoch, accs, fit, labels="abc", num_train=1437, **config):
    curve = [{"epoch": e + 1, "step": (e + 1) * steps_per_epoch, "test_acc": acc, "flipped_fit_noisy": fit,
              "lr": 0.1 if e < milestones[0] else 0.01} for e, acc in enumerate(accs)]
    config = {"seed": seed, "epochs": epochs, "batch_size": batch, "milestones": list(milestones), "loss": "ce",
              "ogc_interval": 32, "weight_decay": 5e-4, **config}
    return run_record(curve, config, noise={"labels_sha256": labels}, num_train=num_train)


def test_apart_sentence_explains_a_lower_score_by_the_schedule_only_where_the_numbers_show_it() -> None:
    here = _schedule_run(0, 20, 128, (7, 13), 12, [0.95] * 20, 0.01)  # short high-rate phase, few wrong labels fitted
    there = _schedule_run(0, 40, 64, (20, 30), 23, [0.87] + [0.86] * 39, 0.15, ogc_interval=8)  # long, more fitted
    said = regime.apart_sentence(here, there, "Chapter 5")
    assert said == (
        "Chapter 5's CE on the same training images with the same noisy labels (the same label hash) scores 86.0% "
        "over its last ten epochs against 95.0% here (seed 0 in both). The difference is the schedule: Chapter 5's "
        "trains 460 steps at lr 0.1 (40 epochs of batches of 64, lr steps after epochs 20 and 30), this run 84 steps "
        "at lr 0.1 (20 epochs of batches of 128, lr steps after epochs 7 and 13); at the end Chapter 5's predicts the "
        "wrong label for 15% of the flipped training images, this run for 1%. The longer schedule has CE fit more of "
        "the wrong labels. Their configurations differ otherwise only in OGC's settings, which CE does not use.")
    # a fall from the peak is said where it is 2 points or more; another setting is named
    there = _schedule_run(0, 40, 64, (20,), 23, [0.94] * 10 + [0.86] * 30, 0.15, weight_decay=0.0)
    said = regime.apart_sentence(here, there, "Chapter 5")
    assert "lr steps after epoch 20)" in said
    assert said.endswith("The longer schedule has CE fit more of the wrong labels, and Chapter 5's test accuracy, "
                         "94.0% at its best (epoch 1), is lower by the end. Their configurations also differ in "
                         "weight_decay.")
    # the same fit on both sides: no cause is named
    said = regime.apart_sentence(here, _schedule_run(0, 40, 64, (20, 30), 23, [0.86] * 40, 0.03, labels="x"),
                                   "Chapter 5")
    assert "with another draw of the noise" in said
    assert said.endswith("the numbers do not show which difference lowers it. Nothing else in their configurations "
                         "differs.")
    # within a point: nothing to explain
    close = _schedule_run(1, 40, 64, (20, 30), 23, [0.945] * 40, 0.6, labels="y", num_train=500)
    assert regime.apart_sentence(here, close, "Chapter 5") == (
        "Chapter 5's CE on 500 training images (here 1,437) scores 94.5% over its last ten epochs against 95.0% "
        "here (seeds 0 and 1), within a point of each other.")


def test_shown_search_table_writes_per_cents_and_short_headers() -> None:
    setting = dict(model="cnn8", epochs=3, milestones=[1, 2], crop_padding=0, flip=False, rotation=0.0)
    run = fake_run("ce", 0, [0.2, 0.4, 0.3], noisy_fit=float("nan"), num_train=5000, wall_time_s=600.0,
                   config=setting)  # a run from before the fit counts
    shown = regime.shown_search_table(search_table([run]))
    assert shown.columns.tolist() == ["noise", "images", "epochs", "lr steps", "aug.", "peak", "final", "fit"]
    assert shown.iloc[0][["peak", "final", "fit"]].tolist() == ["40.0%", "30.0%", "–"]


def _twin(loss: str, seed: int, accuracy: float, dataset: str = "digits") -> RunRecord:
    """A run with what ``apart_sentence`` reads (schedule, data, curves), of one data set, loss, noise and seed."""
    return _schedule_run(seed, 20, 128, (7, 13), 12, [accuracy] * 20, 0.1, loss=loss, dataset=dataset,
                         noise="symmetric:0.4")


def test_twin_sentence_finds_the_same_experiment_elsewhere_or_says_nothing() -> None:
    here = [_twin("ce+ogc", 0, 0.5), _twin("ce", 0, 0.50)]
    there = [_twin("ce", 1, 0.505), _twin("ce", 0, 0.505, dataset="cifar10"), _twin("ce", 0, 0.505)]
    assert regime.twin_sentence(here, there, "Chapter 5") == regime.apart_sentence(here[1], there[2], "Chapter 5")
    assert regime.twin_sentence(here, there[:2], "Chapter 5") == ""  # no run of the same data, noise and seed
    assert regime.twin_sentence(here[:1], there, "Chapter 5") == ""  # no CE run here


def test_earlier_sentences_compare_and_say_whether_ce_had_begun_to_memorise() -> None:
    runs = [fake_run(loss, seed, [0.5, 0.55 + 0.01 * seed], noise="symmetric:0.4") for seed in (0, 1)
            for loss in ("ce", "ce+ogc")]  # two epochs, as their configs say
    comparison, regime_said = regime.earlier_sentences(runs)
    assert comparison.startswith("Under symmetric:0.4, ce+ogc's last-10 test accuracy is not distinguishable from "
                                 "ce's: +0.0 points")
    assert regime_said == still_learning_sentence(runs_frame(runs), "symmetric:0.4", 2)
    assert "had not begun to memorise" in regime_said
    assert regime.earlier_sentences([]) == ("No earlier run is committed.", "")
