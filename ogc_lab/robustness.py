"""Chapter 5's robustness benchmark: CE+OGC against CE and the robust losses, one column per kind of noise.

What the grid runs at each book scale (``SCALES``, for ``book.pick``), the name a noise's quoted values carry
(``noise_key``: its kind, as in ``ogc_gain_symmetric``), and what the text quotes from the table of accuracies,
chosen by the numbers: each quoted loss's accuracy and OGC's gains per noise, the best loss and CE+OGC's rank with
the sentence that words it, each loss at its worst noise (what a user who does not know the noise can count on),
and the paired verdict on "CE+OGC scores higher than CE".  Each comes as ``book.Quotes``
for ``book.Metrics.record_all``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

from .book import Quotes
from .evidence import answer, claim_verdict, listing, runs_frame, standing_sentence
from .losses import is_ogc_loss
from .runs import RunRecord

Table = dict[str, dict[str, float]]  # noise -> loss -> figure, the columns of the chapter's table

NOISES = ("symmetric:0.4", "asym-mnist:0.4", "instance:0.4")
# Ordered as the table shows them: CE and OGC, then the robust losses of the literature.
LOSSES = ("ce", "ce+ogc", "gce", "gce+ogc", "fl+ogc", "mae", "sce", "nce+rce", "anl-ce", "phuber-ce", "taylor-ce")
SCALES = {  # the grid at each book scale, as book.pick takes it
    "smoke": dict(losses=LOSSES, noises=NOISES, n_seeds=1, epochs=1),  # every table cell and quoted number exists
    "cpu": dict(losses=LOSSES, noises=NOISES, n_seeds=2, epochs=40),
    "gpu": dict(losses=(*LOSSES, "fl", "js", "logitclip-ce"), noises=NOISES, n_seeds=5, epochs=40),
}
METHOD, BASELINE = "ce+ogc", "ce"  # what the benchmark asks about, and against what
# the losses whose accuracy the text quotes under each noise and at their worst: loss -> the name in its quotes
QUOTED = {"ce": "ce", "ce+ogc": "ogc", "phuber-ce": "phuber", "mae": "mae", "nce+rce": "nce_rce"}
# the gains the text quotes, in points: name -> (loss, the loss it is measured over, format)
GAINS = {"ogc_gain": (METHOD, BASELINE, ".1f"), "gce_ogc_gain": ("gce+ogc", "gce", "+.1f")}
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")


def noise_key(spec: str) -> str:
    """The name a noise's quoted values carry: its kind as a glue name ('asym-mnist:0.4' -> 'asym_mnist')."""
    kind = spec.split(":", 1)[0].strip().lower()
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in kind)


def noise_keys(noises: Iterable[str]) -> dict[str, str]:
    """``noise_key`` of each noise; two noises of one kind would share their quotes, so they raise."""
    keys: dict[str, str] = {}
    for noise in noises:
        twins = [other for other, key in keys.items() if key == noise_key(noise)]
        if twins:
            raise ValueError(f"noises {twins[0]!r} and {noise!r} are both quoted as {noise_key(noise)!r}; "
                             "allowed: one noise of each kind")
        keys[noise] = noise_key(noise)
    return keys


def counted(n: int, noun: str, words: bool = False) -> str:
    """'1 seed', '2 seeds', or with ``words`` 'two seeds' (up to ten): a count with its noun, as prose says it."""
    number = NUMBER_WORDS[n] if words and 0 <= n < len(NUMBER_WORDS) else str(n)
    return f"{number} {noun}{'' if n == 1 else 's'}"


def by_noise(stats: pd.DataFrame, column: str) -> Table:
    """A column of ``report.mean_std``'s frame (by noise and loss) as noise -> loss -> value, in the frame's order."""
    table: Table = {}
    for noise, loss, value in zip(stats["noise"], stats["loss"], stats[column]):
        table.setdefault(noise, {})[loss] = float(value)
    return table


def ranking(column: Mapping[str, float]) -> list[str]:
    """The losses of one column, best first (ties in the table's order)."""
    return sorted(column, key=column.__getitem__, reverse=True)


def ogc_rank(column: Mapping[str, float]) -> int:
    """CE+OGC's place in one column (1: the best)."""
    return ranking(column).index(METHOD) + 1


def gain(column: Mapping[str, float], loss: str, over: str) -> float:
    """``loss``'s accuracy over ``over``'s in one column, in points."""
    return 100 * (column[loss] - column[over])


def worst_by_loss(acc: Table) -> dict[str, float]:
    """Each loss's accuracy under its worst noise, in the table's order of losses."""
    first = next(iter(acc.values()), {})
    return {loss: min(column[loss] for column in acc.values()) for loss in first}


def rank_sentence(ranks: Sequence[int], n_losses: int) -> str:
    """Where CE+OGC ranks among ``n_losses`` losses under each noise type, said after how it stands against CE."""
    if not ranks:
        raise ValueError("no ranks to state")
    if set(ranks) == {1}:
        return "It is also the best of the losses under every noise type"
    return (f"It is not the best of the losses, though: it ranks {listing([str(r) for r in ranks])} of {n_losses} "
            f"under the {counted(len(ranks), 'noise type', words=True)}")


def noise_quotes(acc: Table, realised: Mapping[str, float]) -> Quotes:
    """Per noise, named by ``noise_key``: its spec and realised rate, the best loss, CE+OGC's rank, the ``QUOTED``
    losses' accuracies and the ``GAINS`` whose losses both ran."""
    quotes: Quotes = {}
    for noise, key in noise_keys(acc).items():
        column, ranked = acc[noise], ranking(acc[noise])
        quotes |= {f"noise_{key}": (noise, None), f"realised_{key}": (realised[noise], ".1%"),
                   f"best_{key}": (ranked[0], None), f"best_acc_{key}": (column[ranked[0]], ".1%"),
                   f"ogc_rank_{key}": (ogc_rank(column), None)}
        quotes |= {f"{name}_{key}": (column[loss], ".1%") for loss, name in QUOTED.items() if loss in column}
        quotes |= {f"{name}_{key}": (gain(column, loss, over), fmt) for name, (loss, over, fmt) in GAINS.items()
                   if loss in column and over in column}
    return quotes


def worst_quotes(acc: Table) -> Quotes:
    """The worst noise of each loss: all of them (``worst``), the best of them, CE+OGC's rank there, the lowest of
    the OGC losses and each ``QUOTED`` loss's."""
    worst = worst_by_loss(acc)
    ranked = ranking(worst)
    return {"worst": (worst, None), "worst_best_loss": (ranked[0], None), "worst_best_acc": (worst[ranked[0]], ".1%"),
            "worst_ogc_rank": (ogc_rank(worst), None),
            "worst_ogc_family_min": (min(value for loss, value in worst.items() if is_ogc_loss(loss)), ".1%"),
            **{f"worst_{name}": (worst[loss], ".1%") for loss, name in QUOTED.items() if loss in worst}}


def table_quotes(stats: pd.DataFrame, realised: Mapping[str, float]) -> Quotes:
    """Everything the text quotes from the table of last-10 accuracies (``report.mean_std`` by noise and loss) and
    the noises' ``realised`` rates: the table itself (``acc``, ``acc_std``), ``noise_quotes``, ``worst_quotes``,
    CE+OGC's gains over CE and the two sentences chosen by them and by its ranks."""
    acc = by_noise(stats, "mean")
    missing = [loss for loss in (METHOD, BASELINE) if any(loss not in column for column in acc.values())]
    if not acc or missing:
        raise ValueError(f"the benchmark compares {METHOD} with {BASELINE} under every noise; missing: "
                         f"{', '.join(missing) or 'every noise'}")
    gains = {noise: gain(column, METHOD, BASELINE) for noise, column in acc.items()}
    ranks = [ogc_rank(column) for column in acc.values()]
    std = by_noise(stats.fillna({"std": 0.0}), "std")  # one seed has no std: 0, as the table's error bars draw it
    return {"acc": (acc, None), "acc_std": (std, None), **noise_quotes(acc, realised),
            **worst_quotes(acc), "ogc_gain": (gains, None),
            "ogc_vs_ce_sentence": (standing_sentence(list(gains.values())), None),
            "ogc_rank_sentence": (rank_sentence(ranks, len(next(iter(acc.values())))), None)}


def verdict_quotes(results: Sequence[RunRecord], noises: Sequence[str]) -> Quotes:
    """The claim "CE+OGC scores higher than CE" by chapter 6's rule, the 95 % interval of the paired per-seed
    differences: the verdict under each noise (``acc_verdicts``) and over them all (``claim_acc_verdict``)."""
    frame = runs_frame(results)
    verdicts = {noise: answer(frame, noise, METHOD, BASELINE)["acc_verdict"] for noise in noises}
    return {"acc_verdicts": (verdicts, None), "claim_acc_verdict": (claim_verdict(verdicts, "above"), None)}
