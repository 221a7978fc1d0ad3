"""Did a method keep the network from fitting wrong labels?  Memorisation and paired comparisons of runs.

A run *memorises* when its training predictions on the flipped samples follow their given (wrong)
labels and its test accuracy falls from its peak.  ``memorisation`` reads both from a run's epochs;
``comparison`` puts methods side by side over seeds, with the per-seed paired difference to a
baseline and its confidence interval; ``verdict`` turns the paired differences into words chosen by
that interval (the book and the regression checks use the same words, so a sentence cannot drift
from its table); ``clipping_table`` and the ``*_sentence`` functions say where an OGC run stopped
clipping and why.  ``grid_summary`` writes a whole grid up in markdown, and
``python -m ogc_lab.evidence FOLDER`` refreshes that write-up in ``FOLDER/README.md``.  Whether CE memorised
at all in a setting, and a setting in words, are ``regime``'s.
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .files import atomic_write_text
from .losses import is_ogc_loss
from .report import markdown_table
from .runs import RunRecord, last_epochs_mean, load_runs, load_steps
from .tables import format_pm, percent

# What a grid's write-up compares, wherever both sides ran: (method, baseline, measure).
SUMMARY_COMPARISONS = (("ce+ogc", "ce", "last10_test_acc"), ("ce+ogc", "ce", "noisy_fit"),
                       ("ce+ogc", "phuber-ce", "last10_test_acc"), ("gce", "ce+ogc", "last10_test_acc"),
                       ("gce+ogc", "gce", "last10_test_acc"), ("gce+ogc", "gce", "noisy_fit"))
# What the comparison table's columns mean where their names are short.
TABLE_NOTE = ("Wrong labels: the realised share of training labels that differ from the true ones (the rate in a "
              "noise's name is nominal: class-pair noise flips 40 % of five classes). Peak and drop: each seed's "
              "highest test accuracy and its fall from there to the last epoch, averaged over seeds, so the peak is "
              "above the peak of the mean curve. Flipped fit: the share of flipped training images predicted as their "
              "given, wrong label in the last epoch (chance: 10 %).")
def section(grid: str = "grid") -> tuple[str, str]:
    """The markers of the generated part of a results README that writes up the grid folder ``grid``."""
    return f"<!-- {grid} -->", f"<!-- /{grid} -->"
OGC_LOSSES = ("ce+ogc", "gce+ogc")  # the clipping losses whose unclipped epochs a write-up follows


def memorisation(run: RunRecord) -> dict[str, float]:
    """Peak and final test accuracy, the drop between them, and the flipped samples' fit at the end.

    ``noisy_fit`` is the share of flipped training samples predicted as their given (wrong) label in
    the last epoch; chance is about 1/K.  ``clean_fit`` is the share predicted as their true label.
    """
    epochs = run.epochs
    test = np.array([e["test_acc"] for e in epochs], dtype=float)
    last = epochs[-1]
    peak = int(np.argmax(test))
    return {
        "peak_test_acc": float(test[peak]),
        "peak_epoch": peak + 1,
        "final_test_acc": float(test[-1]),
        "last10_test_acc": last_epochs_mean(test),
        "drop": float(test[peak] - test[-1]),
        "noisy_fit": float(last.get("flipped_fit_noisy", np.nan)),
        "clean_fit": float(last.get("flipped_fit_clean", np.nan)),
        "unflipped_acc": float(last.get("unflipped_acc", np.nan)),
    }


def runs_frame(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per run: its noise, loss and seed, the realised share of wrong labels, and its ``memorisation``
    figures."""
    rows = [{"noise": r.noise, "loss": r.loss, "seed": r.seed,
             "realised_rate": float(r.noise_report.get("realised_rate", np.nan)), **memorisation(r)} for r in runs]
    return pd.DataFrame(rows)


MEASURES = {  # the per-run figures a comparison can be about, and how a sentence names them
    "last10_test_acc": "last-10 test accuracy",
    "noisy_fit": "fit of the flipped labels",
}
CONFIDENCE = 0.95  # level of the paired intervals behind every verdict
MOSTLY_ORDERED = 0.7  # Spearman's rho from which a gap sentence says the fit 'mostly' follows the gap


def paired(frame: pd.DataFrame, baseline: str, value: str = "last10_test_acc") -> pd.DataFrame:
    """Per noise, loss and seed: ``value`` minus the baseline's at the same noise and seed (others dropped)."""
    if baseline not in set(frame["loss"]):
        raise ValueError(f"baseline {baseline!r} has no runs; losses: {', '.join(sorted(set(frame['loss'])))}")
    if value not in MEASURES:
        raise ValueError(f"unknown measure {value!r}; allowed: {', '.join(MEASURES)}")
    base = frame[frame["loss"] == baseline].set_index(["noise", "seed"])[value]
    keys = pd.MultiIndex.from_frame(frame[["noise", "seed"]])
    out = frame[["noise", "loss", "seed"]].copy()
    out["diff"] = frame[value].to_numpy() - base.reindex(keys).to_numpy()
    return out.dropna(subset=["diff"])


def interval(diffs: Sequence[float], level: float = CONFIDENCE) -> tuple[float, float]:
    """Student-t confidence interval of the mean paired difference (needs two seeds or more).

    The seeds are few, so the t quantile (4.30 for three seeds at 95 %) rather than the normal one.
    """
    d = np.asarray(diffs, dtype=float)
    if d.size < 2:
        raise ValueError(f"an interval needs at least 2 paired differences, got {d.size}")
    half = float(stats.t.ppf((1 + level) / 2, d.size - 1)) * float(d.std(ddof=1)) / np.sqrt(d.size)
    return float(d.mean()) - half, float(d.mean()) + half


def comparison(frame: pd.DataFrame, baseline: str = "ce") -> pd.DataFrame:
    """Per noise and loss: means and stds over seeds, and the paired difference to ``baseline``.

    Columns: n, wrong (realised noise), last10 (mean, std), peak, final, drop, noisy_fit (means over seeds of
    each seed's figure), diff (mean of the per-seed
    difference in last-10 accuracy to the baseline), diff_low/diff_high (its ``interval``; NaN with
    one seed), pairs (seeds shared with the baseline) and wins (of those, the seeds where it is above).
    """
    diffs = paired(frame, baseline)
    grouped = frame.groupby(["noise", "loss"], sort=False)
    table = grouped.agg(
        n=("seed", "count"), wrong=("realised_rate", "mean"), last10=("last10_test_acc", "mean"),
        last10_std=("last10_test_acc", "std"),
        peak=("peak_test_acc", "mean"), final=("final_test_acc", "mean"), drop=("drop", "mean"),
        noisy_fit=("noisy_fit", "mean"),
    )
    by = diffs.groupby(["noise", "loss"], sort=False)["diff"]
    table["diff"] = by.mean()
    bounds = by.apply(lambda d: interval(d) if len(d) > 1 else (np.nan, np.nan))
    table["diff_low"] = bounds.map(lambda b: b[0])
    table["diff_high"] = bounds.map(lambda b: b[1])
    table["wins"] = by.apply(lambda d: int((d > 0).sum()))
    table["pairs"] = by.size()
    return table.reset_index().fillna({"wins": 0, "pairs": 0}).astype({"wins": int, "pairs": int})


def verdict(diffs: Sequence[float]) -> str:
    """Words for per-seed paired differences: above, below, or not told apart.

    'above'/'below' only when the ``interval`` of the mean difference lies wholly on that side of
    zero; anything else is 'not distinguishable from'.  One seed alone is never a verdict.
    """
    if len(diffs) < 2:
        return "not yet comparable with (one seed)"
    low, high = interval(diffs)
    if low > 0:
        return "above"
    if high < 0:
        return "below"
    return "not distinguishable from"


def stated(diffs: Sequence[float], against: str) -> str:
    """Paired differences (fractions, two or more) in words: the ``verdict`` against ``against`` ("ce's"), the
    mean in points, its interval and the seeds."""
    d = np.asarray(diffs, dtype=float)
    low, high = interval(d)
    return (f"{verdict(d)} {against}: {100 * d.mean():+.1f} points ({CONFIDENCE:.0%} interval {100 * low:+.1f} "
            f"to {100 * high:+.1f}; paired over {d.size} seeds, higher in {int((d > 0).sum())})")


def sentence(frame: pd.DataFrame, noise: str, loss: str, baseline: str, value: str = "last10_test_acc") -> str:
    """One sentence comparing ``loss`` with ``baseline`` under ``noise`` on ``value``, every number from the runs."""
    diffs = paired(frame[frame["loss"].isin([loss, baseline])], baseline, value)
    d = diffs[(diffs["noise"] == noise) & (diffs["loss"] == loss)]["diff"].to_numpy()
    if not d.size:
        return f"Under {noise}, {loss} and {baseline} share no finished seed yet."
    subject, against = f"{loss}'s {MEASURES.get(value, value)}", f"{baseline}'s"
    return f"Under {noise}, {difference_words(d, subject, against)}."


def difference_words(diffs: Sequence[float], subject: str, against: str) -> str:
    """Per-seed paired differences (one or more) in words, '``subject`` is ... ``against``': with two seeds or more
    the ``stated`` verdict, with one the difference alone, which is no verdict."""
    d = np.asarray(diffs, dtype=float)
    if d.size == 1:
        return f"with one seed so far, {subject} is {100 * d[0]:+.1f} points from {against}; one seed is no verdict"
    return f"{subject} is {stated(d, against)}"


def early_stop_sentence(frame: pd.DataFrame, noise: str, loss: str = "ce+ogc", baseline: str = "ce") -> str:
    """``loss``'s last-10 test accuracy against ``baseline``'s own peak, seed by seed: what stopping the baseline
    at its best epoch (picked on the test set, so the most early stopping could keep) would have given."""
    here = frame[frame["noise"] == noise]
    ours = here[here["loss"] == loss].set_index("seed")["last10_test_acc"]
    peak = here[here["loss"] == baseline].set_index("seed")["peak_test_acc"]
    d = (ours - peak).dropna().to_numpy()
    if d.size < 2:
        return f"Under {noise}, {loss} and {baseline} share fewer than two seeds to set against early stopping."
    against = f"{baseline}'s own peak"
    return (f"Under {noise}, {loss}'s last-10 test accuracy is {stated(d, against)}, the most stopping {baseline} "
            "at its best epoch could have kept.")


def paired_p(diffs: Sequence[float]) -> float:
    """Two-sided p of the paired t-test of mean difference zero: the test behind ``interval`` (normal differences)."""
    return float(stats.ttest_1samp(np.asarray(diffs, dtype=float), 0.0).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of ``pvalues`` for testing them together (in their given order)."""
    p = np.asarray(pvalues, dtype=float)
    order = np.argsort(p)
    adjusted = np.maximum.accumulate((p.size - np.arange(p.size)) * p[order]).clip(max=1.0)
    out = np.empty_like(p)
    out[order] = adjusted
    return out.tolist()


def sign_test_floor(n: int) -> float:
    """The smallest two-sided p an exact sign test over ``n`` pairs can give (every pair on one side)."""
    return min(1.0, 2 * 0.5 ** n)


def significance_sentence(frame: pd.DataFrame, noises: Sequence[str], loss: str = "ce+ogc",
                          baseline: str = "ce") -> str:
    """The paired t-tests of ``loss`` against ``baseline`` in last-10 accuracy under ``noises``, Holm-adjusted
    across them, with the assumption they rest on and how far an assumption-free sign test could go."""
    diffs = paired(frame[frame["loss"].isin([loss, baseline])], baseline)
    groups = [diffs[(diffs["noise"] == n) & (diffs["loss"] == loss)]["diff"].to_numpy() for n in noises]
    if not noises or min(g.size for g in groups) < 2:
        return f"{loss} and {baseline} do not yet share two seeds under every noise, so no test is stated."
    raw = [paired_p(g) for g in groups]
    floors = listing([f"{sign_test_floor(n):.3f} over {n} pairs" for n in sorted({g.size for g in groups})])
    return (f"The paired t-tests behind the {loss} against {baseline} accuracy intervals give p = "
            f"{listing([f'{p:.3f}' for p in raw])} under {listing(list(noises))}, or "
            f"{listing([f'{p:.3f}' for p in holm(raw)])} Holm-adjusted for the {len(raw)} comparisons; the "
            f"intervals and these p assume normally distributed per-seed differences. Without that assumption an "
            f"exact sign test cannot go below p = {floors}, even with every seed on one side.")


def memorisation_sentence(frame: pd.DataFrame, noise: str, loss: str = "ce", num_classes: int = 10) -> str:
    """How far ``loss`` memorised under ``noise``, as means over its seeds of each seed's figure (its own peak, not
    the mean curve's), every number from the runs."""
    rows = frame[(frame["noise"] == noise) & (frame["loss"] == loss)]
    if not len(rows):
        return f"Under {noise}, {loss} has no finished run yet."
    mean = rows[["peak_test_acc", "final_test_acc", "drop", "noisy_fit", "peak_epoch"]].mean()
    seeds = f"{len(rows)} seed{'s' if len(rows) > 1 else ''}"
    return (f"Under {noise}, {loss}'s test accuracy peaks at {mean['peak_test_acc']:.1%} and ends at "
            f"{mean['final_test_acc']:.1%}, {100 * mean['drop']:.1f} points lower (each seed's own peak, in epoch "
            f"{mean['peak_epoch']:.0f} on average, and its drop, averaged over {seeds}); in its last epoch it predicts "
            f"the given wrong label for {mean['noisy_fit']:.1%} of the flipped training images (chance: "
            f"{1 / num_classes:.0%}).")


def display_table(table: pd.DataFrame, baseline: str = "ce") -> pd.DataFrame:
    """``comparison`` as the book shows it: percentages to 0.1 (what the runs hold at that precision), 'mean ± std',
    the paired difference in points with its interval; ``TABLE_NOTE`` says what the columns mean."""
    return pd.DataFrame({
        "noise": table["noise"], "wrong labels (%)": (100 * table["wrong"]).round(1), "loss": table["loss"],
        "seeds": table["n"],
        "last-10 test acc (%)": [format_pm(m, s, digits=1) for m, s in zip(table["last10"], table["last10_std"])],
        "peak (%)": (100 * table["peak"]).round(1), "final (%)": (100 * table["final"]).round(1),
        "drop (points)": (100 * table["drop"]).round(1), "flipped fit (%)": (100 * table["noisy_fit"]).round(1),
        f"vs {baseline} (points, paired; {CONFIDENCE:.0%} interval)": [
            "—" if loss == baseline else points_cell(d, lo, hi)
            for loss, d, lo, hi in zip(table["loss"], table["diff"], table["diff_low"], table["diff_high"])],
        f"seeds above {baseline}": ["—" if loss == baseline else f"{w} of {n}"
                                    for loss, w, n in zip(table["loss"], table["wins"], table["pairs"])],
    })


def points_cell(diff: float, low: float = float("nan"), high: float = float("nan")) -> str:
    """A paired difference (a fraction) in points, with its interval where there is one: '+5.0 [+0.7, +9.3]';
    '–' where no seed is shared."""
    if not np.isfinite(diff):
        return "–"
    return f"{100 * diff:+.1f}" + (f" [{100 * low:+.1f}, {100 * high:+.1f}]" if np.isfinite(low) else "")


def tables_by_noise(frame: pd.DataFrame, baseline: str = "ce") -> dict[str, pd.DataFrame]:
    """``display_table`` split by noise, for a page: without the columns a caption carries (the noise, its wrong
    labels) or that follow from others (final = peak - drop), so that each fits the text column."""
    shown = display_table(comparison(frame, baseline), baseline)
    return {noise: shown[shown["noise"] == noise].drop(columns=["noise", "wrong labels (%)", "final (%)"])
            for noise in dict.fromkeys(shown["noise"])}


def shown_clipping_table(table: pd.DataFrame) -> pd.DataFrame:
    """``clipping_table`` as a page shows it: fits in per cent, the unclipped epochs as spans only (their count is
    the length of the spans, left out to keep the table within the page)."""
    fits = {c: percent(table[c]) for c in ("flipped fit", "gained unclipped", "gained clipped")}
    shown = table.assign(**fits).drop(columns=["epochs unclipped"])
    return shown.rename(columns={"which": "epochs without a threshold"})


def longest_unclipped(runs: Sequence[RunRecord], noise: str, loss: str = "ce+ogc") -> RunRecord | None:
    """Of ``loss``'s runs under ``noise``, the one with the most epochs ended without a threshold (the lowest seed
    among equals); None without a run."""
    ran = [r for r in runs if (r.noise, r.loss) == (noise, loss)]
    return max(ran, key=lambda r: (len(unclipped_epochs(r)), -r.seed), default=None)


def gap_sentences(runs: Sequence[RunRecord], noises: Sequence[str],
                  steps_of: Callable[[Path], pd.DataFrame] = load_steps) -> list[list[str]]:
    """[noise, loss, ``gap_sentence``, ``unclipped_ratio_sentence``] per OGC loss that ran under each noise; the
    ratio sentence only where a run ended an epoch unclipped ('' elsewhere).  ``steps_of`` reads a run folder's
    steps.csv (a cached reader spares reading it twice)."""
    gaps, said = clipping_table(runs), []
    for noise in noises:
        for loss in OGC_LOSSES:
            ran = [r for r in runs if (r.noise, r.loss) == (noise, loss)]
            if ran:
                ratio = unclipped_ratio_sentence([steps_of(r.dir) for r in ran], noise, loss) \
                    if any(unclipped_epochs(r) for r in ran) else ""
                said.append([noise, loss, gap_sentence(gaps, noise, loss), ratio])
    return said


def unclipped_epochs(run: RunRecord) -> list[int]:
    """The epochs a clipping loss ended with no threshold (tau = inf, which result.json writes as null)."""
    taus = [e.get("tau") for e in run.epochs]
    return [i + 1 for i, tau in enumerate(taus) if tau is None or not np.isfinite(float(tau))]


def spans(numbers: Sequence[int]) -> str:
    """Sorted integers as compact ranges: [1, 2, 3, 7] -> '1-3, 7'; none -> 'none'."""
    parts: list[list[int]] = []
    for n in sorted(numbers):
        if parts and n == parts[-1][1] + 1:
            parts[-1][1] = n
        else:
            parts.append([n, n])
    return ", ".join(f"{a}-{b}" if b > a else f"{a}" for a, b in parts) or "none"


def fit_gains(run: RunRecord) -> tuple[float, float]:
    """The flipped-label fit a clipping run gained (from its first epoch's level, epoch over epoch) in epochs that
    ended without a threshold, and in epochs that ended with one: which part of its fit each stretch carries."""
    fit = np.array([e["flipped_fit_noisy"] for e in run.epochs], dtype=float)
    gains = np.diff(fit)
    unclipped = np.isin(np.arange(2, fit.size + 1), unclipped_epochs(run))
    return float(gains[unclipped].sum()), float(gains[~unclipped].sum())


def clipping_table(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """Per OGC run: the epochs it ended without clipping, how far it fitted the flipped labels by the end, and the
    fit gained in unclipped and in clipped epochs (``fit_gains``)."""
    columns = ["noise", "loss", "seed", "epochs unclipped", "which", "flipped fit", "gained unclipped",
               "gained clipped"]
    rows = []
    for run in runs:
        if not is_ogc_loss(run.loss):
            continue
        gaps = unclipped_epochs(run)
        rows.append(dict(zip(columns, [run.noise, run.loss, run.seed, len(gaps), spans(gaps),
                                       memorisation(run)["noisy_fit"], *fit_gains(run)])))
    return pd.DataFrame(rows, columns=columns)


EXACT_MAX_RUNS = 8  # exact_rank_p enumerates every pairing: 8! = 40,320 at most


def exact_rank_p(x: Sequence[float], y: Sequence[float]) -> float:
    """Two-sided p of Spearman's rank correlation over every pairing of ``x`` with ``y``: exact, which a few runs
    need (the normal approximation is far off at five)."""
    if len(x) != len(y) or not 2 <= len(x) <= EXACT_MAX_RUNS:
        raise ValueError(f"exact_rank_p needs 2 to {EXACT_MAX_RUNS} pairs of equal length, got {len(x)} and {len(y)}")
    if len(set(x)) < 2 or len(set(y)) < 2:
        return float("nan")  # no ranks to correlate
    rx, ry = (stats.rankdata(v) - (len(v) + 1) / 2 for v in (x, y))  # centred ranks; every pairing keeps the mean
    scale = np.linalg.norm(rx) * np.linalg.norm(ry)
    rhos = np.array(list(itertools.permutations(ry))) @ rx / scale
    return float(np.mean(np.abs(rhos) >= abs(float(rx @ ry) / scale) - 1e-12))


def gap_sentence(table: pd.DataFrame, noise: str, loss: str) -> str:
    """Whether ``loss``'s runs under ``noise`` fitted more flipped labels the longer they went unclipped.

    A correlation over a few runs only suggests: 'suggests' when Spearman's rho is at least ``MOSTLY_ORDERED``,
    stated with its exact p and with both parts of each run's fit (gained in unclipped and in clipped epochs);
    runs that always clipped say so; otherwise the fit does not follow.
    """
    rows = table[(table["noise"] == noise) & (table["loss"] == loss)].sort_values(["epochs unclipped", "seed"])
    if len(rows) < 2:
        return f"Under {noise}, {loss} has fewer than two runs to compare."
    gaps, fits = rows["epochs unclipped"].tolist(), rows["flipped fit"].tolist()
    seeds = f"seeds {', '.join(map(str, rows['seed']))}"
    if not any(gaps):
        return (f"Under {noise}, every {loss} run ended every epoch with a clipping threshold, and fitted "
                f"{', '.join(f'{f:.1%}' for f in fits)} of the flipped labels all the same ({seeds}).")
    listed = (f"{', '.join(map(str, gaps))} epochs without clipping, {', '.join(f'{f:.1%}' for f in fits)} of the "
              f"flipped labels fitted at the end ({seeds}); of the fit gained after the first epoch, "
              f"{', '.join(f'{100 * g:+.1f}' for g in rows['gained unclipped'])} points were gained in epochs that "
              f"ended without a threshold and {', '.join(f'{100 * g:+.1f}' for g in rows['gained clipped'])} in "
              "epochs that ended with one")
    if len(set(gaps)) < 2:
        return (f"Under {noise}, every {loss} run went {gaps[0]} epoch{'s' if gaps[0] > 1 else ''} without "
                f"clipping: {listed}.")
    rho, p = float(stats.spearmanr(gaps, fits).statistic), exact_rank_p(gaps, fits)
    said = f"rank correlation {rho:.2f} over {len(rows)} runs, exact two-sided p {p:.3f}"
    if rho >= MOSTLY_ORDERED:
        return (f"Under {noise}, the {loss} runs that went longer without clipping fitted more flipped labels "
                f"({said}), which suggests the unclipped stretches added to the fit but does not show it: {listed}.")
    return (f"Under {noise}, how far {loss} fitted the flipped labels does not follow how long it went unclipped "
            f"({said}): {listed}.")


def unclipped_ratio_sentence(steps: Sequence[pd.DataFrame], noise: str, loss: str) -> str:
    """What the true gradient ratio was where ``loss`` (an OGC loss) did not clip, over its runs' logged windows.

    Windows count once OGC's queue is full (before that it cannot clip).  Mostly at or below the target:
    OGC had nothing to clip there by its own rule; mostly above: its mixture's estimate missed the truth.
    """
    frames = [s[~np.isfinite(s["tau"]) & (s["queue_fill"] >= s["queue_fill"].max())] for s in steps]
    windows = pd.concat(frames) if frames else pd.DataFrame(columns=["ratio_before", "target"])
    if not len(windows):
        return f"Under {noise}, {loss} clipped in every logged window once its queue was full."
    ratio, target = windows["ratio_before"], windows["target"]
    below = float((ratio <= target).mean())
    targets = ", ".join(f"{t:g}" for t in sorted(set(target)))
    said = (f"Under {noise}, in the {len(windows)} logged windows where {loss} did not clip (of {sum(map(len, steps))} "
            f"over {len(steps)} runs), the true ratio of noisy to clean gradient weight before clipping had a median "
            f"of {ratio.median():.2f} against a target of {targets}, and {below:.0%} of them were at or below it")
    if below >= 0.5:
        return said + (": OGC clips only to bring that ratio down to its target, so by its own rule it had nothing "
                       "to clip.")
    return said + ": mostly above the target, so there OGC's estimate of the ratio (its mixture fit) missed the truth."


def answer(frame: pd.DataFrame, noise: str, loss: str = "ce+ogc", baseline: str = "ce") -> dict[str, Any]:
    """The book's question under ``noise`` in figures: how far each side fitted the flipped labels, and the
    paired differences in fit and last-10 test accuracy with their verdicts (``verdict``'s words)."""
    here = frame[(frame["noise"] == noise) & frame["loss"].isin([loss, baseline])]
    if {loss, baseline} - set(here["loss"]):
        raise ValueError(f"no runs of both {loss!r} and {baseline!r} under {noise!r}")
    fit = here[here["loss"] == loss]["noisy_fit"]
    out: dict[str, Any] = {
        "baseline_fit": float(here[here["loss"] == baseline]["noisy_fit"].mean()),
        "fit": float(fit.mean()), "fit_min": float(fit.min()), "fit_max": float(fit.max()),
    }
    for value, key in (("noisy_fit", "fit"), ("last10_test_acc", "acc")):
        d = paired(here, baseline, value)
        d = d[d["loss"] == loss]["diff"].to_numpy()
        out[f"{key}_diff"], out[f"{key}_verdict"], out["seeds"] = float(d.mean()), verdict(d), int(d.size)
        out[f"{key}_wins"] = int((d > 0).sum())
    return out


def answer_sentence(result: dict[str, Any], noise_words: str, method: str = "CE+OGC", baseline: str = "CE") -> str:
    """``answer``'s figures under one noise (``noise_words``) as a sentence: each side's fit of the flipped labels,
    the paired differences in fit and in last-10 test accuracy, each settled or not as its ``verdict`` says."""
    n = result["seeds"]

    def settled(word: str) -> str:
        return f"{word} {baseline}'s ({CONFIDENCE:.0%} interval)" if word in ("above", "below") else \
            f"not established over {n} seed{'s' if n > 1 else ''}"

    return (f"Under {noise_words}, {baseline} fitted {result['baseline_fit']:.1%} of the flipped labels and {method} "
            f"{result['fit']:.1%} ({result['fit_min']:.1%} to {result['fit_max']:.1%} over its {n} paired seeds): "
            f"{100 * result['fit_diff']:+.1f} points, {settled(result['fit_verdict'])}. {method}'s last-10 test "
            f"accuracy was {100 * result['acc_diff']:+.1f} points from {baseline}'s, {settled(result['acc_verdict'])}.")


def accuracy_phrase(result: dict[str, Any], baseline: str = "CE") -> str:
    """``answer``'s paired last-10 accuracy as a verb phrase: settled where the interval settles it (with the
    assumption it rests on), else not established, with what the seeds show."""
    n, wins, word = result["seeds"], result["acc_wins"], result["acc_verdict"]
    if word in ("above", "below"):
        side = "higher" if word == "above" else "lower"
        return (f"scored {side} than {baseline}, by a {CONFIDENCE:.0%} Student-t interval of its {n} paired "
                "differences that excludes zero (it assumes the differences are normally distributed)")
    if n > 1 and wins in (0, n):
        side = "higher" if wins == n else "lower"
        return f"scored {side} than {baseline} in every seed, by an amount its {n} seeds do not establish"
    return (f"was not established as different from {baseline} (higher in {wins} of {n} "
            f"seed{'s' if n > 1 else ''}; no equivalence margin was set, so not 'level' either)")


def claim_verdict(verdicts: dict[str, str], wanted: str) -> str:
    """A claim's verdict over named settings from their ``verdict`` words: where the paired difference is
    ``wanted`` ('above' or 'below'), where it is not established, and where it is the opposite."""
    holds = [n for n, w in verdicts.items() if w == wanted]
    opposite = [n for n, w in verdicts.items() if w in ("above", "below") and w != wanted]
    open_ = [n for n in verdicts if n not in holds + opposite]
    parts = ([f"holds under {listing(holds)}"] if holds else []) + (
        [f"not established under {listing(open_)}"] if open_ else []) + (
        [f"the opposite under {listing(opposite)}"] if opposite else [])
    return "; ".join(parts) or "not measured"


def standing_sentence(gains: Sequence[float], method: str = "CE+OGC", baseline: str = "plain CE",
                      places: int = 1) -> str:
    """Where ``method``'s means stand against ``baseline``'s over the noise types, from its gains in points as shown
    (rounded to ``places`` decimals): ahead, behind or no different as shown, else how many of each.  Signs of
    means only: ``claim_verdict`` says which of them the seeds establish."""
    signs = [int(np.sign(round(float(g), places))) for g in gains]
    if not signs:
        raise ValueError("no gains to state")
    words = {1: "ahead", -1: "behind", 0: "no different as shown"}
    if len(set(signs)) == 1:
        return f"Against {baseline}, {method}'s mean is {words[signs[0]]} under every noise type here"
    parts = [f"{words[s]} under {signs.count(s)}" for s in (1, -1, 0) if s in signs]
    return f"Against {baseline}, {method}'s mean is {listing(parts)} of the {len(signs)} noise types here"


def span(low: str, high: str, joint: str) -> str:
    """'low to high' (with ``joint``), or one value where both ends are the same."""
    return low if low == high else f"{low}{joint}{high}"


def listing(items: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c': items as prose lists them."""
    items = list(items)
    return " and ".join(items) if len(items) < 3 else f"{', '.join(items[:-1])} and {items[-1]}"


def ordered(frame: pd.DataFrame, order: Sequence[str] = ()) -> pd.DataFrame:
    """``frame`` sorted by noise and loss in the order of ``order`` (names not in it last, as first seen), then seed."""
    names = list(dict.fromkeys([*order, *frame["noise"], *frame["loss"]]))
    rank = {name: i for i, name in enumerate(names)}
    return frame.sort_values(["noise", "loss", "seed"], key=lambda col: col if col.name == "seed" else col.map(rank),
                             kind="stable").reset_index(drop=True)


def grid_summary(runs: Sequence[RunRecord], order: Sequence[str] = (), with_table: bool = True) -> str:
    """A grid of finished runs written up in markdown: how many and when, the comparison table with CE
    as the baseline (unless not ``with_table``: a page shows ``tables_by_noise`` instead), and per noise the
    sentences its runs allow (``SUMMARY_COMPARISONS``, ``gap_sentence``)."""
    if not runs:
        raise ValueError("no finished runs to summarise")
    frame = ordered(runs_frame(runs), order)
    dates = sorted(run.date[:10] for run in runs)
    minutes = [run.wall_time_s / 60 for run in runs]
    plural = "s" if len(runs) != 1 else ""
    lines = [f"Finished: {len(runs)} run{plural} ({span(dates[0], dates[-1], ' to ')}); wall time per run "
             f"{span(f'{min(minutes):.0f}', f'{max(minutes):.0f}', '-')} min, with several runs (and other work) "
             "sharing the machine's cores, so the minutes say little about a run's cost alone.", ""]
    if with_table:
        lines += [markdown_table(display_table(comparison(frame)), index=False), "", TABLE_NOTE, ""]
    gaps = clipping_table(runs)
    for noise in dict.fromkeys(frame["noise"]):
        losses = set(frame[frame["noise"] == noise]["loss"])
        said = noise_sentences(frame, noise)
        lines += ["- " + text for text in (said["memorisation"], *(text for *_, text in said["pairs"]))]
        seeds = frame[frame["noise"] == noise].groupby("loss")["seed"].nunique()
        if {"ce", "ce+ogc"} <= losses and seeds["ce+ogc"] > 1:  # with one seed there is nothing to set against
            lines.append("- " + early_stop_sentence(frame, noise))
        lines += ["- " + gap_sentence(gaps, noise, loss) for loss in OGC_LOSSES if loss in losses and seeds[loss] > 1]
    compared = compared_noises(frame)
    if compared:
        lines += ["", significance_sentence(frame, compared)]
    return "\n".join(lines)


def compared_noises(frame: pd.DataFrame, loss: str = "ce+ogc", baseline: str = "ce") -> list[str]:
    """The noises of ``frame`` (in its order) under which both ``loss`` and ``baseline`` have finished runs."""
    if not len(frame):
        return []
    return [n for n in dict.fromkeys(frame["noise"]) if {loss, baseline} <= set(frame[frame["noise"] == n]["loss"])]


def noise_sentences(frame: pd.DataFrame, noise: str) -> dict[str, Any]:
    """What the runs under ``noise`` say: how far CE memorised, and each of ``SUMMARY_COMPARISONS`` whose two
    sides both ran there, as [loss, baseline, measure, sentence]."""
    losses = set(frame[frame["noise"] == noise]["loss"])
    return {"memorisation": memorisation_sentence(frame, noise),
            "pairs": [[a, b, value, sentence(frame, noise, a, b, value)]
                      for a, b, value in SUMMARY_COMPARISONS if {a, b} <= losses]}


def reviewer_sentences(frame: pd.DataFrame, noises: Sequence[str]) -> dict[str, list[str]]:
    """What a reviewer asks first, per noise where GCE and PHuber-CE ran: GCE against CE+OGC, CE+OGC against fixed
    clipping, and CE+OGC against CE stopped at its best epoch."""
    return {noise: [sentence(frame, noise, "gce", "ce+ogc"), sentence(frame, noise, "ce+ogc", "phuber-ce"),
                    early_stop_sentence(frame, noise)]
            for noise in noises if {"gce", "phuber-ce"} <= set(frame[frame["noise"] == noise]["loss"])}


def replace_section(text: str, body: str, markers: tuple[str, str] = section()) -> str:
    """``text`` with what lies between its one pair of ``markers`` replaced by ``body``."""
    start, end = markers
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"expected exactly one {start} ... {end} section")
    return text[:text.index(start) + len(start)] + "\n" + body + "\n" + text[text.index(end):]


def main(argv: Sequence[str] | None = None) -> int:
    """Refresh the generated section of FOLDER/README.md from the finished runs under FOLDER/GRID."""
    parser = argparse.ArgumentParser(prog="python -m ogc_lab.evidence", description=main.__doc__)
    parser.add_argument("folder", type=Path, help="holds README.md (with the section markers) and the grid folder")
    parser.add_argument("--grid", default="grid", help="the grid's folder under FOLDER, also the section's name "
                                                        "(<!-- GRID --> ... <!-- /GRID -->); default: grid")
    parser.add_argument("--order", default="", help="comma-separated noises and losses in the table's order")
    args = parser.parse_args(argv)
    readme = args.folder / "README.md"
    body = grid_summary(load_runs(args.folder / args.grid), [n for n in args.order.split(",") if n])
    atomic_write_text(readme, replace_section(readme.read_text(), body, section(args.grid)))
    print(f"updated {readme}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
