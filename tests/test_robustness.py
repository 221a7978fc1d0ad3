"""ogc_lab.robustness: chapter 5's grid, the names of its quoted values and the words chosen by its numbers."""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest

from fixtures import run_record
from ogc_lab import book
from ogc_lab.evidence import standing_sentence
from ogc_lab.losses import LOSSES
from ogc_lab.noise import check_noise_spec
from ogc_lab.robustness import (
    GAINS,
    QUOTED,
    SCALES,
    by_noise,
    counted,
    noise_key,
    noise_keys,
    ogc_rank,
    rank_sentence,
    ranking,
    table_quotes,
    verdict_quotes,
    worst_by_loss,
)
from ogc_lab.runs import RunRecord

GLUE_NAME = re.compile(r"[A-Za-z0-9_]+")  # what a {glue:text} role can name


@pytest.mark.parametrize(("spec", "key"), [
    ("symmetric:0.4", "symmetric"), ("asym-mnist:0.4", "asym_mnist"), ("instance:0.2:norm=raw", "instance"),
    ("human:worse", "human"), (" Pairflip:0.45", "pairflip"), ("none", "none"),
])
def test_noise_key_is_the_kind_as_a_glue_name(spec: str, key: str) -> None:
    assert noise_key(spec) == key


def test_noise_keys_refuse_two_noises_of_one_kind() -> None:
    assert noise_keys(["symmetric:0.4", "asym-mnist:0.4"]) == {"symmetric:0.4": "symmetric",
                                                               "asym-mnist:0.4": "asym_mnist"}
    with pytest.raises(ValueError, match=r"'symmetric:0.2' and 'symmetric:0.4' are both quoted as 'symmetric'"):
        noise_keys(["symmetric:0.2", "instance:0.4", "symmetric:0.4"])


@pytest.mark.parametrize("scale", book.SCALES)
def test_every_scale_is_a_grid_book_pick_takes_of_known_names(scale: str) -> None:
    settings = book.pick(scale, **SCALES, n_seeds=3)
    assert settings["n_seeds"] == 3 and settings["losses"][:2] == ("ce", "ce+ogc")
    assert set(settings["losses"]) <= set(LOSSES) and set(QUOTED) <= set(settings["losses"])
    assert all({loss, over} <= set(settings["losses"]) for loss, over, _ in GAINS.values())
    for noise in settings["noises"]:
        check_noise_spec(noise)
    assert all(GLUE_NAME.fullmatch(key) for key in noise_keys(settings["noises"]).values())


@pytest.mark.parametrize(("n", "noun", "words", "said"), [
    (1, "seed", False, "1 seed"), (2, "seed", False, "2 seeds"), (0, "seed", False, "0 seeds"),
    (3, "noise type", True, "three noise types"), (1, "noise type", True, "one noise type"),
    (12, "noise type", True, "12 noise types"),
])
def test_counted_says_a_count_with_its_noun(n: int, noun: str, words: bool, said: str) -> None:
    assert counted(n, noun, words) == said


def test_rank_sentence_follows_the_ranks() -> None:
    assert rank_sentence([1, 1, 1], 11) == "It is also the best of the losses under every noise type"
    assert rank_sentence([2, 3, 4], 11) == ("It is not the best of the losses, though: it ranks 2, 3 and 4 of 11 "
                                            "under the three noise types")
    assert rank_sentence([1, 5], 6).endswith("though: it ranks 1 and 5 of 6 under the two noise types")
    assert rank_sentence([2], 3).endswith("it ranks 2 of 3 under the one noise type")
    with pytest.raises(ValueError, match="no ranks"):
        rank_sentence([], 11)


def test_ranking_puts_the_best_first_and_keeps_ties_in_the_tables_order() -> None:
    column = {"ce": 0.5, "ce+ogc": 0.9, "mae": 0.5, "gce": 0.95}
    assert ranking(column) == ["gce", "ce+ogc", "ce", "mae"]
    assert ogc_rank(column) == 2


def stats_of(acc: dict[str, dict[str, list[float]]]) -> pd.DataFrame:
    """``report.mean_std``'s frame (noise, loss, mean, std, n) of per-seed accuracies, in the order given."""
    rows = [{"noise": noise, "loss": loss, "mean": sum(runs) / len(runs), "std": pd.Series(runs).std(), "n": len(runs)}
            for noise, column in acc.items() for loss, runs in column.items()]
    return pd.DataFrame(rows)


# Made-up last-10 accuracies per seed: CE+OGC best under symmetric noise, fourth under asym-mnist, where GCE+OGC
# trails GCE; MAE at its worst under asym-mnist.
ACC = {
    "symmetric:0.4": {"ce": [0.80, 0.84], "ce+ogc": [0.96, 0.98], "gce": [0.94, 0.96], "gce+ogc": [0.95, 0.97],
                      "mae": [0.93, 0.95], "nce+rce": [0.90, 0.90]},
    "asym-mnist:0.4": {"ce": [0.82, 0.86], "ce+ogc": [0.88, 0.90], "gce": [0.90, 0.92], "gce+ogc": [0.89, 0.91],
                       "mae": [0.60, 0.70], "nce+rce": [0.92, 0.94]},
}
REALISED = {"symmetric:0.4": 0.4, "asym-mnist:0.4": 0.2}


def test_table_quotes_name_each_noises_figures_by_its_kind() -> None:
    quotes = table_quotes(stats_of(ACC), REALISED)
    value = {name: v for name, (v, _) in quotes.items()}
    assert value["realised_symmetric"] == 0.4 and quotes["realised_asym_mnist"] == (0.2, ".1%")
    assert value["noise_asym_mnist"] == "asym-mnist:0.4"
    assert value["best_symmetric"] == "ce+ogc" and value["best_acc_symmetric"] == pytest.approx(0.97)
    assert value["best_asym_mnist"] == "nce+rce" and value["best_acc_asym_mnist"] == pytest.approx(0.93)
    assert (value["ogc_rank_symmetric"], value["ogc_rank_asym_mnist"]) == (1, 4)
    assert value["ce_symmetric"] == pytest.approx(0.82) and value["ogc_asym_mnist"] == pytest.approx(0.89)
    assert value["mae_asym_mnist"] == pytest.approx(0.65) and value["nce_rce_symmetric"] == pytest.approx(0.90)
    assert "phuber_symmetric" not in value  # not in the grid: not quoted
    assert quotes["ogc_gain_symmetric"] == (pytest.approx(15.0), GAINS["ogc_gain"][2])
    assert quotes["gce_ogc_gain_asym_mnist"] == (pytest.approx(-1.0), "+.1f")
    assert value["ogc_gain"] == {"symmetric:0.4": pytest.approx(15.0), "asym-mnist:0.4": pytest.approx(5.0)}
    assert value["acc"]["asym-mnist:0.4"]["mae"] == pytest.approx(0.65)
    assert value["acc_std"]["symmetric:0.4"]["nce+rce"] == 0.0
    assert all(GLUE_NAME.fullmatch(name) for name in quotes)


def test_table_quotes_word_the_standing_and_the_ranks() -> None:
    value = {name: v for name, (v, _) in table_quotes(stats_of(ACC), REALISED).items()}
    assert value["ogc_vs_ce_sentence"] == standing_sentence([15.0, 5.0])
    assert value["ogc_rank_sentence"] == rank_sentence([1, 4], 6)
    assert value["ogc_rank_sentence"].startswith("It is not the best of the losses, though: it ranks 1 and 4 of 6")


def test_worst_quotes_rank_the_losses_by_their_worst_noise() -> None:
    value = {name: v for name, (v, _) in table_quotes(stats_of(ACC), REALISED).items()}
    worst = value["worst"]
    assert list(worst) == ["ce", "ce+ogc", "gce", "gce+ogc", "mae", "nce+rce"]
    assert worst["mae"] == pytest.approx(0.65) and worst["ce"] == pytest.approx(0.82)
    assert value["worst_best_loss"] == "gce" and value["worst_best_acc"] == pytest.approx(0.91)
    assert value["worst_ogc"] == pytest.approx(0.89) and value["worst_ogc_rank"] == 4
    assert value["worst_ogc_family_min"] == pytest.approx(0.89)  # ce+ogc 0.89 and gce+ogc 0.90
    assert value["worst_mae"] == pytest.approx(0.65) and value["worst_nce_rce"] == pytest.approx(0.90)


def test_one_seed_has_no_std_and_quotes_it_as_zero() -> None:
    one = {noise: {loss: runs[:1] for loss, runs in column.items()} for noise, column in ACC.items()}
    stats = stats_of(one)
    assert stats["std"].isna().all()
    value = {name: v for name, (v, _) in table_quotes(stats, REALISED).items()}
    assert all(s == 0.0 for column in value["acc_std"].values() for s in column.values())
    assert not any(isinstance(v, float) and math.isnan(v) for v in value.values())


def test_table_quotes_need_ce_and_ce_ogc_under_every_noise() -> None:
    without = {noise: {loss: runs for loss, runs in column.items() if loss != "ce"} for noise, column in ACC.items()}
    with pytest.raises(ValueError, match="compares ce\\+ogc with ce under every noise; missing: ce$"):
        table_quotes(stats_of(without), REALISED)


def test_by_noise_and_worst_by_loss_keep_the_tables_order() -> None:
    acc = by_noise(stats_of(ACC), "mean")
    assert list(acc) == ["symmetric:0.4", "asym-mnist:0.4"] and list(acc["symmetric:0.4"])[:2] == ["ce", "ce+ogc"]
    assert worst_by_loss({}) == {}


def graded(loss: str, seed: int, noise: str, acc: float) -> RunRecord:
    """A finished run of ``loss`` whose test accuracy stays at ``acc``."""
    epochs = [{"test_acc": acc, "flipped_fit_noisy": 0.5, "flipped_fit_clean": 0.3, "unflipped_acc": 0.9}] * 10
    return run_record(epochs, {"loss": loss, "seed": seed, "noise": noise}, noise={"realised_rate": 0.4})


def test_verdict_quotes_judge_the_claim_by_the_paired_seeds() -> None:
    gains = {"symmetric:0.4": (0.10, 0.11, 0.12), "asym-mnist:0.4": (0.10, -0.05, 0.02)}
    runs = [graded(loss, seed, noise, 0.5 + (gain[seed] if loss == "ce+ogc" else 0.0))
            for noise, gain in gains.items() for seed in range(3) for loss in ("ce", "ce+ogc")]
    value = {name: v for name, (v, _) in verdict_quotes(runs, list(gains)).items()}
    assert value["acc_verdicts"] == {"symmetric:0.4": "above", "asym-mnist:0.4": "not distinguishable from"}
    assert value["claim_acc_verdict"] == "holds under symmetric:0.4; not established under asym-mnist:0.4"
