"""The full tier of chapter 6 (issue 19): all of CIFAR-10 on ResNet-9, read back from its committed folders.

``results/19_cifar10_full`` holds one grid per setting (``campaigns.FULL_TIER``): ``memorise/`` without
augmentation, where CE memorises, ``grid/`` with crop + flip, where it did not, and ``early/``, CE holding out a
share of its noisy training labels to stop by; ``clean/`` holds CE on clean labels.  ``read_tier`` reads every
folder's finished runs and the progress of its begun ones (nothing where a folder is absent or empty).
``lead_sentence`` and ``status_sentence`` say which setting the section leads with and how far each got; where no
run of a setting has finished they say so and state no result.  ``setting_summary`` writes a setting up in markdown,
``early_frame``/``early_table``/``early_sentence`` set CE stopped early beside the leading setting's runs, and
``PUBLISHED_CE`` holds the levels the field reports for plain CE, which ``published_sentence`` sets this tier's CE
beside.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .campaigns import FULL_TIER
from .evidence import difference_words, grid_summary, interval, listing, points_cell, sentence, tables_by_noise
from .regime import still_learning_sentence
from .registry import choose
from .runs import RunRecord, begun_runs, load_runs, progress, slug
from .tables import format_pm, percent

LEADS = ("memorise", "grid")  # the section leads with the first of these that has a finished run
CLEAN = "clean"  # CE on clean labels: does the network learn CIFAR-10?
CLEAN_TARGET = 0.9  # the test accuracy the tier's network is to reach on clean labels (issue 19)
PREMISE = ("grid", "ce+ogc", "seed0")  # the runs whose refits chapter 6 follows epoch by epoch (folder, loss, seed)
BASELINE = "ce"
EARLY_BESIDE = "memorise"  # early/ trains that setting's recipe (no augmentation): its runs are paired with it


@dataclass(frozen=True)
class FullTier:
    """The full tier as committed: each setting's finished runs and its ``runs.progress`` (begun runs, finished
    or not), and the clean runs."""

    root: Path
    finished: dict[str, list[RunRecord]]
    progress: dict[str, pd.DataFrame]
    clean: list[RunRecord]

    def frame(self, setting: str) -> pd.DataFrame:
        """``campaigns.Tier.frame`` of a setting's finished runs: in its plan's order, empty without any."""
        return choose("setting", setting, FULL_TIER).frame(self.finished[setting])

    def lead(self) -> str:
        """The setting the section leads with: the first of ``LEADS`` with a finished run (the first without any)."""
        return next((s for s in LEADS if self.finished[s]), LEADS[0])

    def premise_dirs(self) -> list[Path]:
        """The run folders of ``PREMISE``, one per noise."""
        setting, loss, seed = PREMISE
        return sorted((self.root / setting / loss).glob(f"*/{seed}"))


def read_tier(root: Path) -> FullTier:
    """The full tier under ``root``: every setting of ``campaigns.FULL_TIER`` and the clean runs, an absent folder
    read as one without runs."""
    root = Path(root)
    return FullTier(root, {s: load_runs(root / s, allow_empty=True) for s in FULL_TIER},
                    {s: progress(root / s) for s in FULL_TIER}, load_runs(root / CLEAN, allow_empty=True))


def progress_table(tier: FullTier) -> pd.DataFrame:
    """Every begun run of the tier, setting by setting: its epochs done, whether it finished, its last accuracy."""
    frames = [table.assign(setting=setting) for setting, table in tier.progress.items() if len(table)]
    columns = ["setting", "loss", "noise", "seed", "epochs", "finished", "last_test_acc"]
    return pd.concat(frames)[columns].reset_index(drop=True) if frames else pd.DataFrame(columns=columns)


def shown_progress(table: pd.DataFrame) -> pd.DataFrame:
    """``progress_table`` as a page shows it: the last test accuracy in per cent, headers in words."""
    return table.assign(last_test_acc=percent(table["last_test_acc"])).rename(
        columns={"epochs": "epochs done", "last_test_acc": "test acc. at the last epoch"})


def begun_curves(tier: FullTier, setting: str, noise: str) -> dict[tuple[str, int], pd.DataFrame]:
    """The epochs.csv of every begun run of ``setting`` under ``noise``, finished or not, keyed by (loss, seed)."""
    return {(loss, seed): epochs for (loss, folder, seed), epochs in begun_runs(tier.root / setting).items()
            if folder == slug(noise)}


def status_sentence(tier: FullTier, setting: str) -> str:
    """How far a setting's plan got: runs finished of those planned, runs under way and their furthest epoch; where
    none finished, that no result of it is stated."""
    plan, table = FULL_TIER[setting], tier.progress[setting]
    done, going = int(table["finished"].sum()), table[~table["finished"].astype(bool)]
    head = f"Runs {plan.words}: "
    under_way = (f"{len(going)} {'is' if len(going) == 1 else 'are'} under way (the furthest at epoch "
                 f"{int(going['epochs'].max())})") if len(going) else ""
    if not len(table):
        return head + f"none of the {plan.planned()} planned has begun yet, so no result of them is stated."
    if not done:
        return head + f"none of the {plan.planned()} planned has finished yet; {under_way}, so no result is stated."
    finished = f"{done} of the {plan.planned()} planned {'has' if done == 1 else 'have'} finished"
    return head + finished + (f"; {under_way}." if under_way else ".")


def lead_sentence(tier: FullTier) -> str:
    """Which setting the section leads with, and why: the memorising one once a run of it has finished; no result
    where no setting has one."""
    memorise, grid = (FULL_TIER[s] for s in LEADS)
    if tier.finished[LEADS[0]]:
        return (f"The comparison leads with the runs {memorise.words}, the regime OGC is meant for; the runs "
                f"{grid.words} follow.")
    if tier.finished[LEADS[1]]:
        return (f"The runs {memorise.words} have not finished yet, so this section states no result of them; the "
                f"finished runs below are those {grid.words}.")
    return "No run of this tier has finished yet, so this section states no result."


def clean_sentence(runs: Sequence[RunRecord], target: float = CLEAN_TARGET) -> str:
    """What CE reaches on clean labels, run by run, in one sentence, and whether any run reached the ``target``
    the tier aims at."""
    if not runs:
        return "No run on clean labels is committed yet."
    reached = listing([f"{run.final_test_acc:.1%} after {run.config['epochs']} epochs ({run.model})" for run in runs])
    hits = sum(run.final_test_acc >= target for run in runs)
    verdict = f"not yet the {target:.0%} this tier aims at" if not hits else \
        f"{hits} of {len(runs)} at or above the {target:.0%} this tier aims at"
    return f"On clean labels CE's test accuracy reaches {reached}: {verdict}."


def setting_tables(tier: FullTier, setting: str) -> dict[str, pd.DataFrame]:
    """A setting's ``evidence.tables_by_noise`` (mean ± std over seeds, the paired difference to CE); none until CE
    has a finished run there to compare with."""
    frame = tier.frame(setting)
    return tables_by_noise(frame, BASELINE) if len(frame) and BASELINE in set(frame["loss"]) else {}


def setting_summary(tier: FullTier, setting: str) -> str:
    """A setting in markdown: how far it got and, from its finished runs, per noise whether CE memorised (its peak,
    its drop) and where it stands against the published level, then ``evidence.grid_summary``'s sentences."""
    lines = [f"**{status_sentence(tier, setting)}**"]
    runs, frame = tier.finished[setting], tier.frame(setting)
    if not runs:
        return lines[0]
    epochs = int(runs[0].config["epochs"])
    noises = list(dict.fromkeys(frame["noise"]))
    said = [text for noise in noises for text in (still_learning_sentence(frame, noise, epochs),
                                                   published_sentence(frame, noise)) if text]
    return "\n".join([*lines, "", *(f"- {text}" for text in said), "",
                      grid_summary(runs, FULL_TIER[setting].order, with_table=False)])


def finding(tier: FullTier, noise: str = "symmetric:0.6", loss: str = "ce+ogc", setting: str = LEADS[0]) -> str:
    """The tier's answer for the book's findings table: ``loss`` against CE under ``noise`` where CE memorises
    (``setting``), at the last epoch and, paired over the seeds, on the last-10 mean; 'not measured yet' without
    a finished run of both."""
    frame = tier.frame(setting)
    here = frame[(frame["noise"] == noise) & frame["loss"].isin([loss, BASELINE])] if len(frame) else frame
    if not len(here) or set(here["loss"]) != {loss, BASELINE}:
        return f"not measured yet: no run of both {BASELINE} and {loss} under {noise} has finished in {setting}/"
    final = here.groupby("loss")["final_test_acc"].mean()
    seeds = here[here["loss"] == loss]["seed"].nunique()
    return (f"{loss} ends at {final[loss]:.1%} against {BASELINE}'s {final[BASELINE]:.1%} (mean over {seeds} "
            f"seed{'s' if seeds != 1 else ''}). {sentence(frame, noise, loss, BASELINE)}")


# ---- CE stopped early on held-out noisy labels -----------------------------------------------------


def early_frame(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """One row per early-stopping run: noise, seed, the share held out, the epoch its held-out noisy labels picked
    and its test accuracy there (``result['early_stopping']``, written by runs with a validation split)."""
    rows = []
    for run in runs:
        kept = run.result.get("early_stopping")  # no field of the record: only runs with a validation split have it
        if kept is None:
            raise ValueError(f"run {str(run.dir)!r} has no early_stopping record; allowed: runs trained with "
                             "val_fraction > 0")
        rows.append({"noise": run.noise, "seed": run.seed, "held_out": run.config["val_fraction"],
                     "epoch": kept["epoch"], "val_acc_noisy": kept["val_acc_noisy"], "test_acc": kept["test_acc"]})
    return pd.DataFrame(rows, columns=["noise", "seed", "held_out", "epoch", "val_acc_noisy", "test_acc"])


def early_differences(early: pd.DataFrame, frame: pd.DataFrame, noise: str, loss: str) -> np.ndarray:
    """Per seed shared by both: ``loss``'s last-10 test accuracy in ``frame`` minus early-stopped CE's test accuracy
    at its kept epoch, under ``noise``."""
    stopped = early[early["noise"] == noise].set_index("seed")["test_acc"]
    if not len(frame):
        return np.array([])
    ours = frame[(frame["noise"] == noise) & (frame["loss"] == loss)].set_index("seed")["last10_test_acc"]
    return (ours - stopped).dropna().to_numpy()


def early_table(early: pd.DataFrame, frame: pd.DataFrame, loss: str = "ce+ogc") -> pd.DataFrame:
    """Early-stopped CE, one row per noise: its seeds, the epoch kept, its test accuracy there (mean ± std over
    seeds), and ``loss``'s last-10 test accuracy in ``frame`` against it, paired by seed."""
    rows = []
    for noise, group in early.groupby("noise", sort=False):
        d = early_differences(early, frame, noise, loss)
        bounds = interval(d) if d.size > 1 else (math.nan, math.nan)
        rows.append({"noise": noise, "seeds": len(group), "epoch kept (mean)": round(float(group["epoch"].mean()), 1),
                     "test acc there (%)": format_pm(group["test_acc"].mean(), group["test_acc"].std(), digits=1),
                     f"{loss} last-10 vs it (points, paired)": points_cell(d.mean() if d.size else math.nan, *bounds)})
    return pd.DataFrame(rows)


def early_sentence(early: pd.DataFrame, frame: pd.DataFrame, noise: str, loss: str = "ce+ogc") -> str:
    """CE stopped early under ``noise`` in words, and ``loss``'s last-10 test accuracy against it seed by seed (a
    verdict only from two seeds on); that the runs have not finished where none has."""
    rows = early[early["noise"] == noise]
    if not len(rows):
        return f"Under {noise}, no run of CE stopped early has finished yet."
    n = len(rows)
    head = (f"Under {noise}, CE stopped at the epoch with the best accuracy on a held-out "
            f"{rows['held_out'].mean():.0%} of its noisy training labels (epoch {rows['epoch'].mean():.0f} on average, "
            f"over {n} seed{'s' if n > 1 else ''}) reaches {rows['test_acc'].mean():.1%} test accuracy there")
    d = early_differences(early, frame, noise, loss)
    if not d.size:
        return f"{head}; {loss} has no finished seed beside it yet."
    subject = f"{loss}'s last-10 test accuracy"
    return f"{head}; {difference_words(d, subject, 'it')}."


# ---- the levels the field reports for plain CE -----------------------------------------------------


@dataclass(frozen=True)
class PublishedLevel:
    """A test accuracy the field reports for plain CE under one noise: at which epoch ('last' or 'best'), with its
    spread over seeds where given (NaN otherwise), on what protocol."""

    accuracy: float
    std: float
    epoch: str
    protocol: str


PUBLISHED_CE = {
    "symmetric:0.6": PublishedLevel(0.392, 0.005, "last", "an 8-layer CNN trained 120 epochs on all 50,000 images "
                                    "(the APL/ANL protocol, as later papers that follow it report)"),
    "human:worse": PublishedLevel(0.777, math.nan, "best", "ResNet-34, about fifty times larger than this network "
                                  "(CIFAR-10N's benchmark; about 67-68 % at its last epoch)"),
}
AT_EPOCH = {"last": "final_test_acc", "best": "peak_test_acc"}  # the figure of a run a level is compared with


def published_sentence(frame: pd.DataFrame, noise: str, loss: str = BASELINE) -> str:
    """The published level of plain CE under ``noise`` and, from its finished runs in ``frame``, where this tier's
    CE stands against it at the same epoch ('' for a noise without a published level)."""
    level = PUBLISHED_CE.get(noise)
    if level is None:
        return ""
    shown = format_pm(level.accuracy, level.std, digits=1) + " %"
    head = f"For scale, plain CE under {noise} is reported at {shown} at its {level.epoch} epoch on {level.protocol}"
    rows = frame[(frame["noise"] == noise) & (frame["loss"] == loss)] if len(frame) else frame
    if not len(rows):
        return head + f"; no run of {loss} here has finished to set beside it."
    here = float(rows[AT_EPOCH[level.epoch]].mean())
    seeds = f"{len(rows)} seed{'s' if len(rows) > 1 else ''}"
    return (f"{head}; here {loss} stands at {here:.1%} at its {level.epoch} epoch "
            f"({100 * (here - level.accuracy):+.1f} points, mean of {seeds}), on another protocol.")
