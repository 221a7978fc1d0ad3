"""ogc_lab.full_tier: the full tier read from synthetic run folders, finished or not, with 0, 1 or 3 seeds."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from fixtures import readable_run, write_run
from ogc_lab import full_tier
from ogc_lab.campaigns import FULL_TIER
from ogc_lab.full_tier import (
    PUBLISHED_CE,
    begun_curves,
    clean_sentence,
    early_frame,
    early_sentence,
    early_table,
    finding,
    lead_sentence,
    progress_table,
    published_sentence,
    read_tier,
    setting_summary,
    setting_tables,
    shown_progress,
    status_sentence,
)

MEMORISING = [0.40, 0.55, 0.60, 0.50, 0.45]  # CE peaks at epoch 3 and falls 15 points
HELD = [0.42, 0.56, 0.61, 0.60, 0.59]  # CE+OGC holds on


def memorise(root: Path, seeds: range, ogc_gain: float = 0.0, noise: str = "symmetric:0.6") -> None:
    """CE and CE+OGC under ``noise`` in ``root``/memorise, one finished run per seed (CE+OGC ``ogc_gain`` higher
    per seed index, so three seeds give an interval)."""
    for seed in seeds:
        write_run(root / "memorise", readable_run("ce", seed, MEMORISING, noise, noisy_fit=0.6))
        write_run(root / "memorise", readable_run("ce+ogc", seed, [a + ogc_gain * (1 + seed) for a in HELD], noise,
                                                  noisy_fit=0.3))


def early(root: Path, seeds: range, test_acc: float = 0.55, noise: str = "symmetric:0.6") -> None:
    """CE with a held-out tenth of its noisy labels in ``root``/early, one finished run per seed."""
    for seed in seeds:
        write_run(root / "early", readable_run(
            "ce", seed, MEMORISING, noise, config={"val_fraction": 0.1},
            early_stopping={"epoch": 3, "val_acc_noisy": 0.3, "test_acc": test_acc + 0.01 * seed}))


def test_an_absent_tier_states_no_result_anywhere(tmp_path: Path) -> None:
    tier = read_tier(tmp_path / "absent")
    assert all(not runs for runs in tier.finished.values()) and tier.clean == []
    assert lead_sentence(tier) == "No run of this tier has finished yet, so this section states no result."
    for setting in FULL_TIER:
        said = status_sentence(tier, setting)
        assert said.endswith(f"none of the {FULL_TIER[setting].planned()} planned has begun yet, so no result of "
                             "them is stated.")
        assert setting_summary(tier, setting) == f"**{said}**"
        assert setting_tables(tier, setting) == {}
    assert progress_table(tier).empty and list(shown_progress(progress_table(tier))) == [
        "setting", "loss", "noise", "seed", "epochs done", "finished", "test acc. at the last epoch"]
    none = early_frame(tier.finished["early"])
    assert early_sentence(none, tier.frame("memorise"), "human:worse") == (
        "Under human:worse, no run of CE stopped early has finished yet.")
    assert clean_sentence(tier.clean) == "No run on clean labels is committed yet."
    assert begun_curves(tier, "memorise", "symmetric:0.6") == {}


def test_runs_under_way_are_progress_never_a_result(tmp_path: Path) -> None:
    write_run(tmp_path / "memorise", readable_run("ce", 0, MEMORISING[:3]), finished=False)
    write_run(tmp_path / "memorise", readable_run("ce+ogc", 0, HELD[:2]), finished=False)
    write_run(tmp_path / "grid", readable_run("ce", 0, HELD))  # crop + flip: finished
    tier = read_tier(tmp_path)
    assert status_sentence(tier, "memorise") == (
        "Runs without augmentation (where CE memorised in the regime search): none of the 24 planned has finished "
        "yet; 2 are under way (the furthest at epoch 3), so no result is stated.")
    assert lead_sentence(tier).startswith("The runs without augmentation (where CE memorised in the regime search) "
                                          "have not finished yet, so this section states no result of them")
    assert tier.lead() == "grid" and setting_summary(tier, "memorise").count("\n") == 0
    table = progress_table(tier)
    assert table[["setting", "loss", "epochs", "finished"]].values.tolist() == [
        ["memorise", "ce", 3, False], ["memorise", "ce+ogc", 2, False], ["grid", "ce", 5, True]]
    assert shown_progress(table)["test acc. at the last epoch"].tolist() == ["60.0%", "56.0%", "59.0%"]
    curves = begun_curves(tier, "memorise", "symmetric:0.6")
    assert sorted(curves) == [("ce", 0), ("ce+ogc", 0)] and curves[("ce", 0)]["epoch"].tolist() == [1, 2, 3]


def test_one_seed_leads_the_section_with_a_table_but_no_verdict(tmp_path: Path) -> None:
    memorise(tmp_path, range(1))
    write_run(tmp_path / "memorise", readable_run("ce+ogc", 1, HELD[:2]), finished=False)
    tier = read_tier(tmp_path)
    assert tier.lead() == "memorise" and lead_sentence(tier).startswith("The comparison leads with the runs without")
    assert status_sentence(tier, "memorise").endswith(
        "2 of the 24 planned have finished; 1 is under way (the furthest at epoch 2).")
    (noise, table), = setting_tables(tier, "memorise").items()
    row = table.set_index("loss").loc["ce+ogc"]
    assert noise == "symmetric:0.6" and row["seeds"] == 1 and row["seeds above ce"] == "1 of 1"
    assert row["vs ce (points, paired; 95% interval)"] == "+5.6"  # last-10 (all 5 epochs): 55.6 against 50.0 %
    said = setting_summary(tier, "memorise")
    assert "with one seed so far, ce+ogc's last-10 test accuracy is +5.6 points from ce's; one seed is no verdict" \
           in said
    assert "peaked in epoch 3 of 5 on average and ended 15.0 points below that peak." in said
    assert "above" not in said and "below ce's" not in said and "no test is stated" in said


def test_three_seeds_give_intervals_verdicts_and_a_test(tmp_path: Path) -> None:
    memorise(tmp_path, range(3), ogc_gain=0.01)
    tier = read_tier(tmp_path)
    row = setting_tables(tier, "memorise")["symmetric:0.6"].set_index("loss").loc["ce+ogc"]
    assert row["seeds"] == 3 and row["seeds above ce"] == "3 of 3"
    assert row["last-10 test acc (%)"] == "57.6 ± 1.0"  # 55.6 + 1, 2, 3 points
    assert row["vs ce (points, paired; 95% interval)"].startswith("+7.6 [")
    said = setting_summary(tier, "memorise")
    assert "ce+ogc's last-10 test accuracy is above ce's: +7.6 points (95% interval" in said
    assert "The paired t-tests behind the ce+ogc against ce accuracy intervals give p =" in said
    assert status_sentence(tier, "memorise").endswith("6 of the 24 planned have finished.")


def test_a_setting_without_a_finished_ce_shows_no_comparison(tmp_path: Path) -> None:
    write_run(tmp_path / "memorise", readable_run("ce+ogc", 0, HELD))
    tier = read_tier(tmp_path)
    assert setting_tables(tier, "memorise") == {}
    assert "ce has no finished run yet" in setting_summary(tier, "memorise")


def test_early_stopping_is_its_own_row_paired_with_the_memorising_runs(tmp_path: Path) -> None:
    memorise(tmp_path, range(3), ogc_gain=0.01)
    early(tmp_path, range(3))
    tier = read_tier(tmp_path)
    stopped, beside = early_frame(tier.finished["early"]), tier.frame(full_tier.EARLY_BESIDE)
    assert stopped["test_acc"].tolist() == pytest.approx([0.55, 0.56, 0.57])
    row = early_table(stopped, beside).iloc[0]
    assert (row["noise"], row["seeds"], row["epoch kept (mean)"]) == ("symmetric:0.6", 3, 3.0)
    assert row["test acc there (%)"] == "56.0 ± 1.0"
    assert row["ce+ogc last-10 vs it (points, paired)"] == "+1.6 [+1.6, +1.6]"  # 57.6 - 56.0, the same every seed
    assert early_sentence(stopped, beside, "symmetric:0.6") == (
        "Under symmetric:0.6, CE stopped at the epoch with the best accuracy on a held-out 10% of its noisy training "
        "labels (epoch 3 on average, over 3 seeds) reaches 56.0% test accuracy there; ce+ogc's last-10 test accuracy "
        "is above it: +1.6 points (95% interval +1.6 to +1.6; paired over 3 seeds, higher in 3).")
    one = stopped[stopped["seed"] == 0]
    assert early_sentence(one, beside, "symmetric:0.6").endswith(
        "; with one seed so far, ce+ogc's last-10 test accuracy is +1.6 points from it; one seed is no verdict.")
    assert early_table(one, beside).iloc[0]["ce+ogc last-10 vs it (points, paired)"] == "+1.6"
    assert early_sentence(stopped, read_tier(tmp_path / "absent").frame("memorise"), "symmetric:0.6").endswith(
        "; ce+ogc has no finished seed beside it yet.")
    with pytest.raises(ValueError, match="has no early_stopping record; allowed: runs trained with val_fraction > 0"):
        early_frame(tier.finished["memorise"])


def test_published_levels_are_set_beside_the_same_epochs_figure(tmp_path: Path) -> None:
    memorise(tmp_path, range(1))
    memorise(tmp_path, range(1), noise="human:worse")
    frame = read_tier(tmp_path).frame("memorise")
    assert published_sentence(frame, "symmetric:0.6") == (
        "For scale, plain CE under symmetric:0.6 is reported at 39.2 ± 0.5 % at its last epoch on an 8-layer CNN "
        "trained 120 epochs on all 50,000 images (the APL/ANL protocol, as later papers that follow it report); here "
        "ce stands at 45.0% at its last epoch (+5.8 points, mean of 1 seed), on another protocol.")
    assert math.isnan(PUBLISHED_CE["human:worse"].std)
    assert published_sentence(frame, "human:worse").startswith(
        "For scale, plain CE under human:worse is reported at 77.7 % at its best epoch")  # set beside CE's peak
    assert "here ce stands at 60.0% at its best epoch (-17.7 points" in published_sentence(frame, "human:worse")
    assert published_sentence(frame, "asym-cifar10:0.4") == ""
    assert published_sentence(frame.iloc[0:0], "symmetric:0.6").endswith(
        "; no run of ce here has finished to set beside it.")


def test_clean_runs_are_said_against_the_tiers_target() -> None:
    runs = [readable_run("ce", 0, [0.5, 0.876], noise="none"), readable_run("ce", 0, [0.5, 0.93], noise="none")]
    assert clean_sentence(runs) == (
        "On clean labels CE's test accuracy reaches 87.6% after 2 epochs (cnn-small) and 93.0% after 2 epochs "
        "(cnn-small): 1 of 2 at or above the 90% this tier aims at.")
    assert clean_sentence(runs[:1]).endswith("(cnn-small): not yet the 90% this tier aims at.")


def test_the_premise_runs_are_the_crop_and_flip_ogc_runs_of_seed_zero(tmp_path: Path) -> None:
    for seed in (0, 1):
        write_run(tmp_path / "grid", readable_run("ce+ogc", seed, HELD))
    write_run(tmp_path / "memorise", readable_run("ce+ogc", 0, HELD))
    assert read_tier(tmp_path).premise_dirs() == [tmp_path / "grid" / "ce+ogc" / "symmetric_0.6" / "seed0"]
    with pytest.raises(ValueError, match="unknown setting 'clean'; allowed: memorise, grid, early"):
        read_tier(tmp_path).frame("clean")


def test_the_finding_states_the_pair_where_ce_memorises_and_no_verdict_from_one_seed(tmp_path: Path) -> None:
    assert finding(read_tier(tmp_path)) == (
        "not measured yet: no run of both ce and ce+ogc under symmetric:0.6 has finished in memorise/")
    memorise(tmp_path, range(1))
    one = finding(read_tier(tmp_path))
    assert one.startswith("ce+ogc ends at 59.0% against ce's 45.0% (mean over 1 seed). Under symmetric:0.6, with one "
                          "seed so far, ce+ogc's last-10 test accuracy is")
    assert one.endswith("one seed is no verdict.")
    memorise(tmp_path, range(1, 3), ogc_gain=0.01)
    three = finding(read_tier(tmp_path))
    assert "(mean over 3 seeds)" in three and "paired over 3 seeds, higher in 3" in three
    assert finding(read_tier(tmp_path), noise="human:worse").startswith("not measured yet")
