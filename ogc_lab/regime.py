"""The training setting, and whether CE memorises in it: a setting in words, the regime search's table, and why
one loss scores apart in two runs.

A comparison against memorisation means something only where plain CE memorises.  ``search_table`` lays out the
runs of a search for such a setting, ``still_learning_sentence`` says whether CE had begun to memorise at all, and
``apart_sentence`` explains from two runs' records why one loss scores differently in them (their schedules, their
data, what else their configs change).  The figures come from ``evidence.memorisation``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd

from .evidence import listing, memorisation, runs_frame, sentence
from .runs import RunRecord
from .tables import percent


def augmentation_text(config: dict[str, Any]) -> str:
    """The training augmentation of a config in words ('none' when every part is off)."""
    parts = [f"crop (pad {config['crop_padding']})" if config["crop_padding"] else "",
             "flip" if config["flip"] else "", f"rotation {config['rotation']:g}°" if config["rotation"] else ""]
    return " + ".join(p for p in parts if p) or "none"


def first_rate_steps(run: RunRecord) -> int:
    """Optimiser steps a run took at its first (largest) learning rate, from its per-epoch curves."""
    epochs = run.epochs
    return max(e["step"] for e in epochs if e["lr"] == epochs[0]["lr"])


def schedule_text(run: RunRecord) -> str:
    """A run's schedule in words: '460 steps at lr 0.1 (40 epochs of batches of 64, lr steps after epochs 20 and
    30)'."""
    c = run.config
    after = f"epoch{'s' if len(c['milestones']) > 1 else ''} {listing([str(m) for m in c['milestones']])}"
    return (f"{first_rate_steps(run)} steps at lr {run.epochs[0]['lr']:g} ({c['epochs']} epochs of batches of "
            f"{c['batch_size']}, lr steps after {after})")


SCHEDULE_FIELDS = ("epochs", "batch_size", "milestones")  # what ``schedule_text`` states
BOOKKEEPING_FIELDS = ("device", "threads", "data_root", "eval_batch_size", "log_interval")  # no effect on training


def apart_sentence(here: RunRecord, there: RunRecord, there_name: str, loss: str = "CE") -> str:
    """Why one loss scores differently in two runs on the same data and noise (``here``: this chapter's run,
    ``there``: another chapter's), from their records: the same noisy labels or not, each run's last-10 test
    accuracy, its schedule, how many of the flipped labels it fits at the end, and what else their configs change.

    The lower run's longer schedule is said to go with fitting more wrong labels only where the numbers show it
    (more steps at the first rate and 5 points more of the flipped labels fitted), and its fall from its peak only
    where it fell by 2 points or more.
    """
    a, b = memorisation(here), memorisation(there)
    labels_here = here.noise_report.get("labels_sha256")
    if labels_here is not None and labels_here == there.noise_report.get("labels_sha256"):
        data = "on the same training images with the same noisy labels (the same label hash)"
    elif here.num_train == there.num_train:
        data = f"on the same {here.num_train:,} training images with another draw of the noise"
    else:
        data = f"on {there.num_train:,} training images (here {here.num_train:,})"
    seed_a, seed_b = here.seed, there.seed
    seeds = f"seed {seed_a} in both" if seed_a == seed_b else f"seeds {seed_a} and {seed_b}"
    head = (f"{there_name}'s {loss} {data} scores {b['last10_test_acc']:.1%} over its last ten epochs against "
            f"{a['last10_test_acc']:.1%} here ({seeds})")
    gap = a["last10_test_acc"] - b["last10_test_acc"]
    if abs(gap) < 0.01:
        return head + ", within a point of each other."
    low, high = (there, here) if gap > 0 else (here, there)
    low_m, high_m = memorisation(low), memorisation(high)
    name = {id(here): "this run", id(there): f"{there_name}'s"}
    schedules = (f"{name[id(low)]} trains {schedule_text(low)}, {name[id(high)]} {schedule_text(high)}; at the end "
                 f"{name[id(low)]} predicts the wrong label for {low_m['noisy_fit']:.0%} of the flipped training "
                 f"images, {name[id(high)]} for {high_m['noisy_fit']:.0%}")
    stated = (*SCHEDULE_FIELDS, *BOOKKEEPING_FIELDS, "loss", "noise", "seed")
    other = sorted(k for k in here.config if k not in stated and here.config[k] != there.config.get(k))
    if not other:
        rest = "Nothing else in their configurations differs."
    elif loss == "CE" and all(k.startswith("ogc_") for k in other):
        rest = "Their configurations differ otherwise only in OGC's settings, which CE does not use."
    else:
        rest = f"Their configurations also differ in {listing(other)}."
    if first_rate_steps(low) > first_rate_steps(high) and low_m["noisy_fit"] >= high_m["noisy_fit"] + 0.05:
        fell = low_m["peak_test_acc"] - low_m["last10_test_acc"]
        why = f"The longer schedule has {loss} fit more of the wrong labels"
        if fell >= 0.02:
            whose = "this run's" if low is here else f"{there_name}'s"
            why += (f", and {whose} test accuracy, {low_m['peak_test_acc']:.1%} at its best (epoch "
                    f"{low_m['peak_epoch']}), is lower by the end")
        return f"{head}. The difference is the schedule: {schedules}. {why}. {rest}"
    return (f"{head}. The two differ in schedule: {schedules}; the numbers do not show which difference lowers it. "
            f"{rest}")


def search_table(runs: Sequence[RunRecord]) -> pd.DataFrame:
    """The regime search: one row per run, its setting, its minutes, and how far it memorised."""
    rows = []
    for run in runs:
        c, m = run.config, memorisation(run)
        rows.append({
            "noise": run.noise, "seed": run.seed, "model": run.model, "train images": run.num_train,
            "epochs": c["epochs"],
            "lr steps at": ", ".join(map(str, c["milestones"])), "augmentation": augmentation_text(c),
            "minutes": run.wall_time_s / 60, "peak test acc": m["peak_test_acc"], "peak epoch": m["peak_epoch"],
            "final test acc": m["final_test_acc"], "drop (points)": 100 * m["drop"], "flipped fit": m["noisy_fit"],
        })
    return pd.DataFrame(rows)


STILL_LEARNING = 1.0  # points: a drop from the peak below this, with the peak in the last epochs, is no memorising


def still_learning_sentence(frame: pd.DataFrame, noise: str, epochs: int, loss: str = "ce") -> str:
    """Whether ``loss`` had begun to memorise under ``noise`` in runs of ``epochs`` epochs: where its test accuracy
    still peaked in the last epochs (within ``STILL_LEARNING`` points of the end), a method against memorisation
    had nothing to prevent, and a comparison there says little about it."""
    rows = frame[(frame["noise"] == noise) & (frame["loss"] == loss)]
    if not len(rows):
        return f"Under {noise}, {loss} has no finished run yet."
    peak_epoch, drop = float(rows["peak_epoch"].mean()), 100 * float(rows["drop"].mean())
    said = (f"Under {noise}, {loss}'s test accuracy peaked in epoch {peak_epoch:.0f} of {epochs} on average and ended "
            f"{drop:.1f} points below that peak")
    if drop < STILL_LEARNING and peak_epoch >= epochs - 2:
        return said + (f": {loss} had not begun to memorise, so there was nothing for a method against memorisation "
                       "to prevent, and a comparison there says little about it.")
    return said + "."


def shown_search_table(search: pd.DataFrame) -> pd.DataFrame:
    """``search_table`` as a page shows it: the setting and how far CE memorised, accuracies and fit in per cent
    ('–' for a run from before the fit counts existed), short headers; model, minutes, seed and the drop (peak
    less final) are left to the text, so that the table fits a page's width."""
    columns = ["noise", "train images", "epochs", "lr steps at", "augmentation", "peak test acc", "final test acc",
               "flipped fit"]
    percents = {c: percent(search[c]) for c in ("peak test acc", "final test acc", "flipped fit")}
    return search[columns].assign(**percents).rename(columns={
        "train images": "images", "lr steps at": "lr steps", "augmentation": "aug.", "peak test acc": "peak",
        "final test acc": "final", "flipped fit": "fit"})


TWIN_FIELDS = ("dataset", "loss", "noise", "seed")  # what makes two runs the same experiment


def twin_sentence(runs: Sequence[RunRecord], others: Sequence[RunRecord], others_name: str,
                  loss: str = "ce") -> str:
    """``apart_sentence`` for ``loss``'s run among ``runs`` and its twin among ``others`` (the same ``TWIN_FIELDS``);
    '' where either is missing."""
    here = next((r for r in runs if r.loss == loss), None)
    if here is None:
        return ""
    key = [getattr(here, k) for k in TWIN_FIELDS]
    there = next((r for r in others if [getattr(r, k) for k in TWIN_FIELDS] == key), None)
    return apart_sentence(here, there, others_name, loss.upper()) if there is not None else ""


def earlier_sentences(runs: Sequence[RunRecord], loss: str = "ce+ogc", baseline: str = "ce") -> tuple[str, str]:
    """For the first runs of a comparison (one noise): ``loss`` against ``baseline`` (``evidence.sentence``) and
    whether the baseline had begun to memorise there (``still_learning_sentence``); what to say without runs."""
    if not runs:
        return "No earlier run is committed.", ""
    frame = runs_frame(runs)
    noise = frame["noise"].iloc[0]
    return (sentence(frame, noise, loss, baseline),
            still_learning_sentence(frame, noise, int(runs[0].config["epochs"]), baseline))
