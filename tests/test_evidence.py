"""ogc_lab.evidence: memorisation figures, paired comparisons and the words chosen by the numbers."""

from __future__ import annotations

import math
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from fixtures import dated, fake_run, readable_run, run_record, write_run
from ogc_lab import evidence
from ogc_lab.evidence import (
    accuracy_phrase,
    answer,
    claim_verdict,
    clipping_table,
    comparison,
    display_table,
    early_stop_sentence,
    exact_rank_p,
    fit_gains,
    gap_sentence,
    grid_summary,
    holm,
    interval,
    listing,
    main,
    memorisation,
    memorisation_sentence,
    ordered,
    paired,
    paired_p,
    replace_section,
    runs_frame,
    sentence,
    sign_test_floor,
    significance_sentence,
    spans,
    standing_sentence,
    tables_by_noise,
    unclipped_epochs,
    unclipped_ratio_sentence,
    verdict,
)
from ogc_lab.runs import RunRecord


def test_memorisation_reads_peak_drop_and_fit_exactly() -> None:
    test = [0.1, 0.3, 0.5, 0.4] + [0.2] * 10  # peak 0.5 in epoch 3, then down to 0.2
    m = memorisation(fake_run("ce", 0, test, noisy_fit=0.7))
    assert (m["peak_epoch"], m["peak_test_acc"], m["final_test_acc"]) == (3, 0.5, 0.2)
    assert m["drop"] == pytest.approx(0.3) and m["last10_test_acc"] == pytest.approx(0.2)
    assert (m["noisy_fit"], m["clean_fit"], m["unflipped_acc"]) == (0.7, 0.2, 0.9)
    old = run_record([{"test_acc": 0.5}])  # runs from before the fit columns existed
    assert math.isnan(memorisation(old)["noisy_fit"])


def _grid() -> pd.DataFrame:
    runs = []
    for seed, (ce, ogc) in enumerate([(0.30, 0.36), (0.32, 0.35), (0.31, 0.37)]):
        runs += [fake_run("ce", seed, [ce] * 12), fake_run("ce+ogc", seed, [ogc] * 12)]
        runs.append(fake_run("gce", seed, [ce + (0.01 if seed else -0.01)] * 12))
    return runs_frame(runs)


def test_paired_differences_match_seed_by_seed() -> None:
    diffs = paired(_grid(), "ce")
    ogc = diffs[diffs["loss"] == "ce+ogc"].sort_values("seed")["diff"].tolist()
    assert ogc == pytest.approx([0.06, 0.03, 0.06])
    assert (diffs[diffs["loss"] == "ce"]["diff"] == 0).all()
    with pytest.raises(ValueError, match="baseline 'mae' has no runs; losses: ce, ce\\+ogc, gce"):
        paired(_grid(), "mae")


def test_comparison_table_counts_means_and_wins() -> None:
    table = comparison(_grid()).set_index("loss")
    assert table.loc["ce+ogc", "n"] == 3 and table.loc["ce+ogc", "wins"] == 3
    assert table.loc["ce+ogc", "diff"] == pytest.approx(0.05)
    assert table.loc["ce+ogc", "last10"] == pytest.approx((0.36 + 0.35 + 0.37) / 3)
    bounds = (table.loc["ce+ogc", "diff_low"], table.loc["ce+ogc", "diff_high"])
    assert bounds == pytest.approx(interval([0.06, 0.03, 0.06]))
    assert table.loc["gce", "wins"] == 2


def test_interval_is_students_t_of_the_mean() -> None:
    low, high = interval([0.06, 0.03, 0.06])  # mean 0.05, std 0.01732, t(0.975, 2) = 4.3027
    half = 4.302653 * 0.0173205 / math.sqrt(3)
    assert (low, high) == (pytest.approx(0.05 - half, abs=1e-6), pytest.approx(0.05 + half, abs=1e-6))
    assert interval([0.02, 0.02]) == (pytest.approx(0.02), pytest.approx(0.02))  # no spread, no width
    with pytest.raises(ValueError, match="at least 2 paired differences, got 1"):
        interval([0.05])


@pytest.mark.parametrize("diffs, words", [
    ([0.06, 0.03, 0.06], "above"),  # interval [+0.007, +0.093]
    ([-0.02, -0.03, -0.025], "below"),
    ([-0.01, 0.01, 0.01], "not distinguishable from"),  # mixed signs
    ([0.082, 0.066, 0.012], "not distinguishable from"),  # all above, mean 1.5 std: interval reaches below 0
    ([0.04, 0.05], "not distinguishable from"),  # two seeds: t(0.975, 1) = 12.7 std errors
    ([0.05], "not yet comparable with (one seed)"),
])
def test_verdict_words_follow_the_interval(diffs, words) -> None:
    assert verdict(diffs) == words


def test_sentence_is_built_from_the_runs() -> None:
    text = sentence(_grid(), "symmetric:0.6", "ce+ogc", "ce")
    assert text == ("Under symmetric:0.6, ce+ogc's last-10 test accuracy is above ce's: +5.0 points "
                    "(95% interval +0.7 to +9.3; paired over 3 seeds, higher in 3).")
    fit = sentence(_grid(), "symmetric:0.6", "ce+ogc", "ce", value="noisy_fit")
    assert fit.startswith("Under symmetric:0.6, ce+ogc's fit of the flipped labels is not distinguishable from ce's: "
                          "+0.0 points")  # fake_run fits half the flips in every run
    assert "share no finished seed" in sentence(_grid(), "human:worse", "ce+ogc", "ce")
    one = runs_frame([fake_run("ce", 0, [0.30] * 12), fake_run("ce+ogc", 0, [0.36] * 12)])
    assert sentence(one, "symmetric:0.6", "ce+ogc", "ce") == (
        "Under symmetric:0.6, with one seed so far, ce+ogc's last-10 test accuracy is +6.0 points from ce's; "
        "one seed is no verdict.")
    with pytest.raises(ValueError, match="unknown measure 'acc'; allowed: last10_test_acc, noisy_fit"):
        sentence(_grid(), "symmetric:0.6", "ce+ogc", "ce", value="acc")


def test_memorisation_sentence_averages_each_seeds_own_figures() -> None:
    run = fake_run("ce", 0, [0.2, 0.4, 0.3], noisy_fit=0.55)
    text = memorisation_sentence(runs_frame([run]), "symmetric:0.6")
    assert text == ("Under symmetric:0.6, ce's test accuracy peaks at 40.0% and ends at 30.0%, 10.0 points lower "
                    "(each seed's own peak, in epoch 2 on average, and its drop, averaged over 1 seed); in its last "
                    "epoch it predicts the given wrong label for 55.0% of the flipped training images (chance: 10%).")


def test_display_table_formats_points_and_wins() -> None:
    shown = display_table(comparison(_grid())).set_index("loss")
    assert shown.loc["ce+ogc", "vs ce (points, paired; 95% interval)"] == "+5.0 [+0.7, +9.3]"
    assert shown.loc["ce+ogc", "seeds above ce"] == "3 of 3" and shown.loc["ce", "seeds above ce"] == "—"
    assert shown.loc["ce+ogc", "last-10 test acc (%)"] == "36.0 ± 1.0"


def test_display_table_prints_fit_and_realised_noise_to_a_tenth() -> None:
    """A fit of 95.39 % shows as 95.4, not a whole percent printed as 95.0; the realised noise beside the nominal."""
    runs = [fake_run("ce", seed, [0.3] * 12, noisy_fit=fit, realised=0.2) for seed, fit in enumerate([0.9539, 0.9539])]
    row = display_table(comparison(runs_frame(runs))).iloc[0]
    assert row["flipped fit (%)"] == 95.4 and row["wrong labels (%)"] == 20.0


def _ogc_run(seed: int, taus: list[float], fit: float, **columns: list) -> RunRecord:
    return fake_run("ce+ogc", seed, [0.3] * len(taus), noisy_fit=fit, columns={"tau": taus, **columns})


def test_unclipped_epochs_and_spans() -> None:
    inf = math.inf
    run = _ogc_run(0, [5.0, inf, None, inf, 3.0, inf], 0.4)  # None: inf as result.json stores it
    assert unclipped_epochs(run) == [2, 3, 4, 6]
    assert spans([6, 2, 3, 4]) == "2-4, 6" and spans([]) == "none" and spans([1]) == "1"


def test_fit_gains_split_the_fit_after_epoch_one_by_whether_the_epoch_clipped() -> None:
    inf = math.inf
    # the fit gains +0.20 in unclipped epochs, +0.05 and +0.40 in clipped ones
    run = _ogc_run(0, [inf, inf, 2.0, 2.0], 0.0, flipped_fit_noisy=[0.10, 0.30, 0.35, 0.75])
    unclipped, clipped = fit_gains(run)
    assert (unclipped, clipped) == (pytest.approx(0.20), pytest.approx(0.45))


def test_clipping_table_and_gap_sentence_follow_the_numbers() -> None:
    inf = math.inf
    runs = [_ogc_run(0, [inf, 2.0, 2.0], 0.36), _ogc_run(1, [inf, inf, 2.0], 0.65), _ogc_run(2, [inf] * 3, 0.91),
            fake_run("ce", 0, [0.3] * 3)]
    table = clipping_table(runs)
    assert table["loss"].tolist() == ["ce+ogc"] * 3  # only the clipping runs
    assert table["epochs unclipped"].tolist() == [1, 2, 3] and table["which"].tolist() == ["1", "1-2", "1-3"]
    assert table["gained unclipped"].tolist() == [0.0] * 3  # the fit is flat in these runs
    # strictly ordered over 3 runs: rho 1, yet exact p 1/3, so the words only suggest
    assert gap_sentence(table, "symmetric:0.6", "ce+ogc") == (
        "Under symmetric:0.6, the ce+ogc runs that went longer without clipping fitted more flipped labels (rank "
        "correlation 1.00 over 3 runs, exact two-sided p 0.333), which suggests the unclipped stretches added to the "
        "fit but does not show it: 1, 2, 3 epochs without clipping, 36.0%, 65.0%, 91.0% of the flipped labels fitted "
        "at the end (seeds 0, 1, 2); of the fit gained after the first epoch, +0.0, +0.0, +0.0 points were gained "
        "in epochs that ended without a threshold and +0.0, +0.0, +0.0 in epochs that ended with one.")
    table.loc[table["seed"] == 2, "flipped fit"] = 0.5  # the longest gap no longer fits most: rho 0.5
    assert "does not follow how long it went unclipped (rank correlation 0.50 over 3 runs" in gap_sentence(
        table, "symmetric:0.6", "ce+ogc")
    table.loc[table["seed"] == 2, ["epochs unclipped", "flipped fit"]] = [2, 0.91]  # tied gaps: rho 0.87
    assert "fitted more flipped labels (rank correlation 0.87 over 3 runs, exact two-sided p 0.667), which " \
           "suggests" in gap_sentence(table, "symmetric:0.6", "ce+ogc")
    assert "fewer than two runs" in gap_sentence(table, "human:worse", "ce+ogc")
    table["epochs unclipped"] = 1
    assert gap_sentence(table, "symmetric:0.6", "ce+ogc").startswith(
        "Under symmetric:0.6, every ce+ogc run went 1 epoch without clipping: 1, 1, 1 epochs")
    table["epochs unclipped"] = 0
    assert gap_sentence(table, "symmetric:0.6", "ce+ogc") == (
        "Under symmetric:0.6, every ce+ogc run ended every epoch with a clipping threshold, and fitted 36.0%, 65.0%, "
        "91.0% of the flipped labels all the same (seeds 0, 1, 2).")


def test_exact_rank_p_counts_every_pairing() -> None:
    assert exact_rank_p([1, 3, 4, 5, 8], [0.12, 0.36, 0.26, 0.64, 0.91]) == pytest.approx(10 / 120)  # rho >= 0.9: 5+5
    assert exact_rank_p([1, 2, 3], [0.1, 0.2, 0.3]) == pytest.approx(2 / 6)
    assert exact_rank_p([5, 5, 6], [0.674, 0.675, 0.696]) == pytest.approx(4 / 6)  # tied ranks: rho 0.87
    assert math.isnan(exact_rank_p([1, 2, 3], [0.1, 0.1, 0.1]))
    with pytest.raises(ValueError, match="2 to 8 pairs"):
        exact_rank_p(list(range(9)), list(range(9)))


def _steps(taus: list[float], ratios: list[float], fill: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"tau": taus, "ratio_before": ratios, "target": 3.0, "queue_fill": fill})


def test_unclipped_ratio_sentence_reads_only_full_queue_windows_without_clipping() -> None:
    inf = math.inf
    runs = [_steps([inf, 5.0, inf, inf], [9.0, 4.0, 2.0, 2.5], [100, 4096, 4096, 4096]),  # the first: queue filling
            _steps([inf, 2.0], [3.5, 6.0], [4096, 4096])]
    text = unclipped_ratio_sentence(runs, "symmetric:0.6", "ce+ogc")
    assert text == ("Under symmetric:0.6, in the 3 logged windows where ce+ogc did not clip (of 6 over 2 runs), the "
                    "true ratio of noisy to clean gradient weight before clipping had a median of 2.50 against a "
                    "target of 3, and 67% of them were at or below it: OGC clips only to bring that ratio down to its "
                    "target, so by its own rule it had nothing to clip.")
    above = [_steps([inf, inf], [3.5, 4.0], [4096, 4096])]
    assert unclipped_ratio_sentence(above, "symmetric:0.6", "ce+ogc").endswith("missed the truth.")
    clipped = [_steps([2.0, 2.5], [3.5, 4.0], [4096, 4096])]
    assert unclipped_ratio_sentence(clipped, "human:worse", "ce+ogc") == (
        "Under human:worse, ce+ogc clipped in every logged window once its queue was full.")


def test_answer_gathers_the_fits_and_both_paired_verdicts() -> None:
    runs = []
    for seed, (ce_fit, ogc_fit) in enumerate([(0.95, 0.40), (0.97, 0.60), (0.99, 0.90)]):
        runs += [fake_run("ce", seed, [0.30] * 12, noisy_fit=ce_fit),
                 fake_run("ce+ogc", seed, [0.36 - 0.01 * seed] * 12, noisy_fit=ogc_fit)]
    got = answer(runs_frame(runs), "symmetric:0.6")
    assert got["baseline_fit"] == pytest.approx(0.97) and got["fit"] == pytest.approx(19 / 30)
    assert (got["fit_min"], got["fit_max"], got["seeds"]) == (0.40, 0.90, 3)
    assert got["fit_diff"] == pytest.approx((-0.55 - 0.37 - 0.09) / 3) and got["fit_wins"] == 0
    assert got["fit_verdict"] == verdict([-0.55, -0.37, -0.09]) == "not distinguishable from"
    assert got["acc_diff"] == pytest.approx(0.05) and got["acc_verdict"] == "above" and got["acc_wins"] == 3
    with pytest.raises(ValueError, match="no runs of both 'ce\\+ogc' and 'ce' under 'human:worse'"):
        answer(runs_frame(runs), "human:worse")


def test_ordered_follows_the_given_order_then_first_seen_then_seed() -> None:
    frame = runs_frame([fake_run("gce", 1, [0.3] * 12), fake_run("ce", 1, [0.3] * 12), fake_run("ce", 0, [0.3] * 12),
                        fake_run("ce", 0, [0.3] * 12, noise="asym-cifar10:0.4")])
    out = ordered(frame, ["asym-cifar10:0.4", "ce"])
    assert list(zip(out["noise"], out["loss"], out["seed"])) == [
        ("asym-cifar10:0.4", "ce", 0), ("symmetric:0.6", "ce", 0), ("symmetric:0.6", "ce", 1),
        ("symmetric:0.6", "gce", 1)]


def test_grid_summary_counts_runs_and_states_only_comparisons_both_sides_ran() -> None:
    runs = [fake_run(loss, seed, [acc] * 12, noisy_fit=fit, **dated(day, minutes))
            for seed, day, minutes in ((0, "2026-11-28", 9.2), (1, "2026-11-29", 30.0))
            for loss, acc, fit in (("ce", 0.30, 0.9), ("ce+ogc", 0.36 + 0.01 * seed, 0.4))]
    text = grid_summary(runs)
    assert text.startswith("Finished: 4 runs (2026-11-28 to 2026-11-29); wall time per run 9-30 min")
    one_day = grid_summary(runs[:2])  # seed 0 alone: one date, one wall time, and no sentence that needs two seeds
    assert one_day.startswith("Finished: 2 runs (2026-11-28); wall time per run 9 min")
    assert "early stopping" not in one_day and "fewer than two" not in one_day
    assert text.count("\n| symmetric:0.6 |") == 2  # one table row per loss
    assert "ce+ogc's last-10 test accuracy is" in text and "ce+ogc's fit of the flipped labels is" in text
    assert "phuber-ce" not in text and "gce" not in text  # never run, so never compared
    with pytest.raises(ValueError, match="no finished runs"):
        grid_summary([])
    bare = grid_summary(runs, with_table=False)
    assert "| symmetric:0.6 |" not in bare and all(line in text.splitlines() for line in bare.splitlines())


def test_tables_by_noise_split_the_display_table_and_leave_out_what_captions_carry() -> None:
    runs = [fake_run(loss, seed, [acc] * 12, noise=noise) for seed in (0, 1)
            for loss, acc in (("ce", 0.3), ("ce+ogc", 0.4)) for noise in ("symmetric:0.6", "human:worse")]
    tables = tables_by_noise(runs_frame(runs))
    assert list(tables) == ["symmetric:0.6", "human:worse"]
    full = display_table(comparison(runs_frame(runs)))
    for noise, table in tables.items():
        assert table["loss"].tolist() == ["ce", "ce+ogc"]
        assert {"noise", "wrong labels (%)", "final (%)"}.isdisjoint(table.columns)
        assert table.to_dict("records") == full[full["noise"] == noise].drop(
            columns=["noise", "wrong labels (%)", "final (%)"]).to_dict("records")


def test_replace_section_keeps_what_surrounds_the_markers() -> None:
    text = "intro\n<!-- grid -->\nold\n<!-- /grid -->\nafter"
    assert replace_section(text, "new") == "intro\n<!-- grid -->\nnew\n<!-- /grid -->\nafter"
    for bad in ("no markers", "<!-- /grid --> <!-- grid -->", "<!-- grid --><!-- grid --><!-- /grid -->"):
        with pytest.raises(ValueError, match="exactly one"):
            replace_section(bad, "new")


def test_main_rewrites_the_readme_section_from_the_runs_on_disk(tmp_path, capsys) -> None:
    for loss, acc in (("ce", 0.30), ("ce+ogc", 0.36)):
        write_run(tmp_path / "grid", readable_run(loss, 0, [acc] * 12))
    (tmp_path / "README.md").write_text("# runs\n<!-- grid -->\n<!-- /grid -->\n")
    assert main([str(tmp_path), "--order", "ce+ogc,ce"]) == 0
    text = (tmp_path / "README.md").read_text()
    assert text.startswith("# runs\n<!-- grid -->\nFinished: 2 runs") and text.endswith("<!-- /grid -->\n")
    assert text.index("| ce+ogc |") < text.index("| ce |")
    write_run(tmp_path / "memorise", readable_run("ce", 0, [0.5] * 12))  # another grid, in its own section
    (tmp_path / "README.md").write_text(text + "<!-- memorise -->\n<!-- /memorise -->\n")
    assert main([str(tmp_path), "--grid", "memorise"]) == 0
    both = (tmp_path / "README.md").read_text()
    assert both.startswith(text) and both.count("Finished: ") == 2 and "Finished: 1 run (" in both


NOT_SETTLED = "not distinguishable from"
TAIL = "by a 95% Student-t interval of its {} paired differences that excludes zero (it assumes the differences are " \
       "normally distributed)"


@pytest.mark.parametrize(("verdict_word", "wins", "seeds", "phrase"), [
    ("above", 5, 5, "scored higher than CE, " + TAIL.format(5)),
    ("below", 1, 3, "scored lower than CE, " + TAIL.format(3)),
    (NOT_SETTLED, 3, 3, "scored higher than CE in every seed, by an amount its 3 seeds do not establish"),
    (NOT_SETTLED, 0, 3, "scored lower than CE in every seed, by an amount its 3 seeds do not establish"),
    (NOT_SETTLED, 1, 3, "was not established as different from CE (higher in 1 of 3 seeds; no equivalence margin "
                        "was set, so not 'level' either)"),
    (NOT_SETTLED, 1, 1, "was not established as different from CE (higher in 1 of 1 seed; no equivalence margin "
                        "was set, so not 'level' either)"),
])
def test_accuracy_phrase_is_chosen_by_the_verdict_then_the_seeds(verdict_word, wins, seeds, phrase) -> None:
    assert accuracy_phrase({"acc_verdict": verdict_word, "acc_wins": wins, "seeds": seeds}) == phrase
    assert not {"level with", "matches", "equal"} & set(phrase.replace(";", " ").split(" "))


def test_claim_verdict_names_where_a_claim_holds_is_open_and_is_reversed() -> None:
    words = {"a": "above", "b": NOT_SETTLED, "c": "below", "d": "above"}
    assert claim_verdict(words, "above") == "holds under a and d; not established under b; the opposite under c"
    assert claim_verdict({"a": "not yet comparable with (one seed)"}, "below") == "not established under a"
    assert claim_verdict({}, "above") == "not measured"


@pytest.mark.parametrize(("gains", "ending"), [
    ([11.6, 5.1, 5.6], "is ahead under every noise type here"),
    ([-0.2, -3.0, -0.06], "is behind under every noise type here"),
    ([0.0, 0.04, -0.04], "is no different as shown under every noise type here"),  # as shown, to one decimal
    ([2.0, -1.0, 3.0], "is ahead under 2 and behind under 1 of the 3 noise types here"),
    ([2.0, -1.0, 0.0], "is ahead under 1, behind under 1 and no different as shown under 1 of the 3 noise types here"),
])
def test_standing_sentence_counts_ahead_behind_and_even_as_shown(gains, ending) -> None:
    assert standing_sentence(gains) == "Against plain CE, CE+OGC's mean " + ending
    with pytest.raises(ValueError, match="no gains"):
        standing_sentence([])


def test_listing_joins_as_prose() -> None:
    assert [listing(x) for x in ([], ["a"], ["a", "b"], ["a", "b", "c"])] == ["", "a", "a and b", "a, b and c"]


def test_holm_adjusts_step_down_in_the_given_order() -> None:
    """The three accuracy p-values of chapter 6 (0.0118, 0.567, 0.0026) adjust to 0.024, 0.567 and 0.008."""
    assert holm([0.0118, 0.567, 0.0026]) == pytest.approx([0.0236, 0.567, 0.0078])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1, never below an earlier step
    assert sign_test_floor(5) == 0.0625 and sign_test_floor(3) == 0.25 and sign_test_floor(1) == 1.0


def test_significance_and_early_stop_sentences_read_the_paired_seeds() -> None:
    frame = _grid()
    d = [0.06, 0.03, 0.06]
    assert paired_p(d) == pytest.approx(0.0377, abs=1e-4)  # t = 5.0 on 2 degrees of freedom
    text = significance_sentence(frame, ["symmetric:0.6"])
    assert text.startswith("The paired t-tests behind the ce+ogc against ce accuracy intervals give p = 0.038 under "
                           "symmetric:0.6, or 0.038 Holm-adjusted for the 1 comparisons")
    assert text.endswith("cannot go below p = 0.250 over 3 pairs, even with every seed on one side.")
    assert "do not yet share two seeds" in significance_sentence(frame, ["human:worse"])
    peaked = runs_frame([fake_run("ce", s, [0.40] + [0.30] * 11) for s in range(3)]
                        + [fake_run("ce+ogc", s, [0.36 + 0.01 * s] * 12) for s in range(3)])
    assert early_stop_sentence(peaked, "symmetric:0.6") == (
        "Under symmetric:0.6, ce+ogc's last-10 test accuracy is below ce's own peak: -3.0 points (95% interval -5.5 "
        "to -0.5; paired over 3 seeds, higher in 0), the most stopping ce at its best epoch could have kept.")


def test_points_cell_and_seeds_above_count_only_shared_seeds() -> None:
    assert evidence.points_cell(0.05, 0.007, 0.093) == "+5.0 [+0.7, +9.3]" and evidence.points_cell(-0.016) == "-1.6"
    assert evidence.points_cell(math.nan) == "–"
    runs = [fake_run("ce", 0, [0.30] * 12), fake_run("ce+ogc", 0, [0.36] * 12), fake_run("ce+ogc", 1, [0.40] * 12),
            fake_run("ce+ogc", 0, [0.36] * 12, noise="human:worse"), fake_run("ce", 1, [0.3] * 12, noise="human:worse")]
    table = comparison(runs_frame(runs)).set_index(["noise", "loss"])
    assert table.loc[("symmetric:0.6", "ce+ogc"), ["n", "pairs", "wins"]].tolist() == [2, 1, 1]
    shown = display_table(comparison(runs_frame(runs))).set_index(["noise", "loss"])
    assert shown.loc[("symmetric:0.6", "ce+ogc"), "seeds above ce"] == "1 of 1"  # seed 1 has no CE beside it
    assert shown.loc[("human:worse", "ce+ogc")].iloc[-2:].tolist() == ["–", "0 of 0"]  # no seed shared: no +nan


def test_compared_noises_and_noise_sentences_keep_to_what_ran_under_each_noise() -> None:
    frame = runs_frame([fake_run("ce", 0, [0.3] * 12), fake_run("ce+ogc", 0, [0.36] * 12),
                        fake_run("gce", 0, [0.3] * 12, noise="human:worse"),
                        fake_run("ce", 0, [0.3] * 12, noise="human:worse")])
    assert evidence.compared_noises(frame) == ["symmetric:0.6"] and evidence.compared_noises(frame.iloc[0:0]) == []
    said = evidence.noise_sentences(frame, "symmetric:0.6")
    assert said["memorisation"] == memorisation_sentence(frame, "symmetric:0.6")
    assert [pair[:3] for pair in said["pairs"]] == [["ce+ogc", "ce", "last10_test_acc"], ["ce+ogc", "ce", "noisy_fit"]]
    assert said["pairs"][0][3] == sentence(frame, "symmetric:0.6", "ce+ogc", "ce")
    assert evidence.noise_sentences(frame, "human:worse")["pairs"] == []  # gce ran, but not beside ce+ogc there


def test_reviewer_sentences_need_gce_and_fixed_clipping_beside_ogc() -> None:
    runs = [fake_run(loss, seed, [acc] * 12) for seed in range(2)
            for loss, acc in (("ce", 0.3), ("ce+ogc", 0.36), ("gce", 0.35), ("phuber-ce", 0.33))]
    frame = runs_frame(runs)
    said = evidence.reviewer_sentences(frame, ["symmetric:0.6"])
    assert said == {"symmetric:0.6": [sentence(frame, "symmetric:0.6", "gce", "ce+ogc"),
                                      sentence(frame, "symmetric:0.6", "ce+ogc", "phuber-ce"),
                                      early_stop_sentence(frame, "symmetric:0.6")]}
    assert evidence.reviewer_sentences(runs_frame(runs[:2]), ["symmetric:0.6"]) == {}


def test_answer_sentence_settles_only_what_the_interval_settles() -> None:
    result = {"baseline_fit": 0.954, "fit": 0.459, "fit_min": 0.116, "fit_max": 0.912, "seeds": 5,
              "fit_diff": -0.495, "fit_verdict": "below", "acc_diff": 0.004, "acc_verdict": "not distinguishable from"}
    assert evidence.answer_sentence(result, "60 % symmetric noise") == (
        "Under 60 % symmetric noise, CE fitted 95.4% of the flipped labels and CE+OGC 45.9% (11.6% to 91.2% over its "
        "5 paired seeds): -49.5 points, below CE's (95% interval). CE+OGC's last-10 test accuracy was +0.4 points "
        "from CE's, not established over 5 seeds.")


def test_clipping_table_shown_longest_unclipped_run_and_gap_sentences() -> None:
    inf = math.inf
    runs = [_ogc_run(0, [inf, 2.0, 2.0], 0.36), _ogc_run(1, [inf, inf, 2.0], 0.65), _ogc_run(2, [inf, inf, 3.0], 0.7),
            fake_run("ce", 0, [0.3] * 3)]
    runs = [replace(run, dir=Path(f"run{run.seed}")) for run in runs]
    shown = evidence.shown_clipping_table(clipping_table(runs))
    assert "epochs unclipped" not in shown and shown["epochs without a threshold"].tolist() == ["1", "1-2", "1-2"]
    assert shown["flipped fit"].tolist() == ["36.0%", "65.0%", "70.0%"]
    assert evidence.longest_unclipped(runs, "symmetric:0.6").seed == 1  # the lower of the tied seeds
    assert evidence.longest_unclipped(runs, "human:worse") is None
    read = []

    def steps_of(folder: Path) -> pd.DataFrame:
        read.append(folder)
        return pd.DataFrame({"tau": [inf, 2.0], "ratio_before": [2.0, 4.0], "target": [3.0, 3.0],
                             "queue_fill": [4096, 4096]})

    said = evidence.gap_sentences(runs, ["symmetric:0.6", "human:worse"], steps_of)
    assert [row[:2] for row in said] == [["symmetric:0.6", "ce+ogc"]]
    assert read == [Path("run0"), Path("run1"), Path("run2")]
    assert said[0][2] == gap_sentence(clipping_table(runs), "symmetric:0.6", "ce+ogc")
    assert said[0][3].startswith("Under symmetric:0.6, in the 3 logged windows where ce+ogc did not clip")
    clipped = [_ogc_run(0, [2.0, 2.0], 0.3)]
    assert evidence.gap_sentences(clipped, ["symmetric:0.6"], steps_of)[0][3] == ""  # always clipped: no ratio said


def test_difference_words_give_a_verdict_from_two_seeds_on() -> None:
    assert evidence.difference_words([0.016], "x's accuracy", "it") == (
        "with one seed so far, x's accuracy is +1.6 points from it; one seed is no verdict")
    assert evidence.difference_words([0.06, 0.03, 0.06], "x's accuracy", "ce's") == (
        "x's accuracy is above ce's: +5.0 points (95% interval +0.7 to +9.3; paired over 3 seeds, higher in 3)")
