"""What chapter 6 runs, declared once: the paper's grid, the same code path cut down to a CPU, and the plans of the
two committed CIFAR-10 campaigns.

``PAPER_GRID`` holds the paper's five experiments (a recipe with overrides, its noises, losses and seeds);
``experiment_runs`` builds one through ``sweep.grid``, so every config is validated before anything runs.  The
code-path check trains the CIFAR-10 recipe at a size a 2-core CPU affords (``CODE_PATH``, ``code_path_settings``,
``code_path_runs``): a subset, a few epochs with the learning-rate steps scaled, the 8-layer CNN, and the digits
where the CIFAR file is absent; ``code_path_record`` says in words what ran.  ``QUICK_TIER`` (the 5,000-image tier,
``results/06_evidence``) and ``FULL_TIER`` (all of CIFAR-10, ``results/19_cifar10_full``, one plan per folder) are
the committed campaigns' plans (``Tier``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .book import REPO_ROOT, pick, without_paths
from .cost import steps_to_fill
from .data import CIFAR_LAYOUTS, NPZ_ENV, find_cifar_npz
from .evidence import accuracy_phrase, claim_verdict, listing, ordered, runs_frame
from .recipes import PUBLISHED_SETTINGS, get_recipe, scaled_milestones
from .registry import check_names, choose
from .runs import RunRecord, slug
from .sweep import SweepRun, default_jobs, grid

# ---- the paper's grid ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Experiment:
    """One experiment of the paper's grid: a recipe with overrides, and the noises, losses and seeds it runs."""

    recipe: str
    overrides: dict[str, Any]
    noises: tuple[str, ...]
    losses: tuple[str, ...]
    seeds: tuple[int, ...]


# the synthetic noises of a CIFAR data set, at the rates customary in the literature ('asym': the data set's own)
SYNTHETIC_RATES = {"symmetric": (0.2, 0.4, 0.6, 0.8), "asym": (0.2, 0.4), "instance": (0.2, 0.4)}
CIFAR_LOSSES = ("ce", "ce+ogc", "fl+ogc", "gce", "gce+ogc", "phuber-ce", "sce", "nce+rce", "anl-ce")
PAPER_SEEDS = (0, 1, 2)


def synthetic_noises(asym: str) -> tuple[str, ...]:
    """The noise specs of one CIFAR data set at ``SYNTHETIC_RATES``, ``asym`` naming its class-pair generator."""
    return tuple(f"{asym if kind == 'asym' else kind}:{rate}" for kind, rates in SYNTHETIC_RATES.items()
                 for rate in rates)


PAPER_GRID = {
    "CIFAR-10": Experiment("official-cifar10", {}, synthetic_noises("asym-cifar10"), CIFAR_LOSSES, PAPER_SEEDS),
    "CIFAR-10N": Experiment("official-cifar10", {"dataset": "cifar10n"},
                            ("human:worse", "human:aggregate", "human:random1"), CIFAR_LOSSES, PAPER_SEEDS),
    "CIFAR-100": Experiment("official-cifar100", {}, synthetic_noises("asym-cifar100"), CIFAR_LOSSES, PAPER_SEEDS),
    "CIFAR-100N": Experiment("official-cifar100", {"dataset": "cifar100n"}, ("human:noisy",), CIFAR_LOSSES,
                             PAPER_SEEDS),
    "WebVision-mini": Experiment("webvision-mini", {}, ("none",), ("ce", "ce+ogc", "gce", "gce+ogc"), (0,)),
}


def experiment_runs(name: str, root: Path | str, overrides: dict[str, Any] | None = None,
                    epochs: int | None = None) -> list[SweepRun]:
    """The sweep runs of experiment ``name`` under ``root``/<experiment>, with ``overrides`` on its recipe and, given
    ``epochs``, that many epochs with the recipe's learning-rate steps scaled to them."""
    experiment = choose("experiment", name, PAPER_GRID)
    settings = {**experiment.overrides, **(overrides or {})}
    if epochs is not None:
        recipe = get_recipe(experiment.recipe, **settings)
        settings |= {"epochs": epochs, "milestones": scaled_milestones(recipe, epochs)}
    return grid(experiment.recipe, experiment.losses, experiment.noises, experiment.seeds, Path(root) / slug(name),
                settings)


def paper_runs(names: Sequence[str] | None, root: Path, overrides: dict[str, Any],
               epochs: int | None = None) -> list[SweepRun]:
    """The runs of the experiments ``names`` (None: every one) under ``root``, each with ``overrides``."""
    chosen = list(PAPER_GRID) if names is None else list(names)
    check_names("experiment", chosen, PAPER_GRID)
    return [run for name in chosen for run in experiment_runs(name, root, overrides, epochs)]


def paper_grid_table(planned: dict[str, list[SweepRun]]) -> pd.DataFrame:
    """One row per experiment of ``planned`` (name -> its runs): recipe, data, model, schedule, what it varies."""
    rows = []
    for name, runs in planned.items():
        config, experiment = runs[0].config, PAPER_GRID[name]
        rows.append({
            "experiment": name, "recipe": experiment.recipe, "dataset": config.dataset, "model": config.model,
            "epochs (lr steps)": f"{config.epochs} ({', '.join(map(str, config.milestones))})",
            "batch": config.batch_size, "noises": ", ".join(experiment.noises),
            "losses": ", ".join(experiment.losses), "seeds": ", ".join(map(str, experiment.seeds)), "runs": len(runs),
        })
    return pd.DataFrame(rows)


def published_settings(planned: dict[str, list[SweepRun]]) -> list[list[Any]]:
    """[loss, dataset, {weight_decay, l1_penalty}] for every (loss, data set) of ``planned`` trained with its
    published settings (``recipes.PUBLISHED_SETTINGS``), as the built configs hold them."""
    found = {(r.config.loss, r.config.dataset): {k: getattr(r.config, k) for k in ("weight_decay", "l1_penalty")}
             for runs in planned.values() for r in runs if r.config.loss in PUBLISHED_SETTINGS}
    return [[loss, dataset, values] for (loss, dataset), values in found.items()]


def published_text(published: list[list[Any]]) -> str:
    """``published_settings`` in words ('none' without any)."""
    return "; ".join(f"{loss} on {dataset} with weight decay {v['weight_decay']:g} and an L1 penalty of "
                     f"{v['l1_penalty']:g}" for loss, dataset, v in published) or "none"


def gpu_status(gpu_runs: Sequence[RunRecord], folder: str) -> str:
    """Whether the committed ``folder`` holds runs trained on a GPU, and on which devices: no paper-scale number is
    shown without one."""
    if not gpu_runs:
        return (f"No GPU result exists yet: {folder} holds no run trained on a CUDA device, so this chapter shows no "
                "paper-scale number.")
    devices = ", ".join(sorted({r.device for r in gpu_runs}))
    return f"{len(gpu_runs)} GPU runs are committed under {folder} (devices: {devices}); the table shows them."


# ---- the code path on a CPU ----------------------------------------------------------------------

CODE_PATH_RECIPE = "official-cifar10"
# per scale: the data, the training subset, epochs, runs at once (None: one per core or GPU), losses and noises
CODE_PATH = {
    "smoke": dict(data="digits", subset=500, epochs=2, jobs=1, losses=["ce", "ce+ogc"], noises=["symmetric:0.4"]),
    "cpu": dict(data="cifar10-npz", subset=2000, epochs=4, jobs=2, losses=["ce", "ce+ogc"],
                noises=["symmetric:0.4"]),
    "gpu": dict(data="paper", subset=None, epochs=None, jobs=None, losses=None, noises=None),
}
DIGITS = dict(dataset="digits", model="cnn-small", crop_padding=1, flip=False, rotation=0.0)  # 8x8 images
DIGITS_EPOCHS = 20  # the digits in place of a missing CIFAR file: the whole set (1437 images), this many epochs
DATA_ROOT = REPO_ROOT / "data"  # the JPEG copy, or the official archive that `make data` fetches
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"  # where the project's JPEG CIFAR-10 is looked for last


def code_path_settings(scale: str, cifar_npz: str | None = None, **overrides: Any) -> dict[str, Any]:
    """``CODE_PATH`` at ``scale`` with the overrides that are not None, and ``npz``, the CIFAR file found: where it
    is absent, CIFAR-10's official archive in ``DATA_ROOT`` (``make data``) stands in (the data then named
    'cifar10'), and without that the whole digits set (named 'digits')."""
    settings = pick(scale, **CODE_PATH, **overrides)
    settings["jobs"] = settings["jobs"] or default_jobs()
    settings["npz"] = None
    if settings["data"] == "cifar10-npz":
        settings["npz"] = find_cifar_npz(cifar_npz, folders=[DATA_ROOT, SHARED_DATA])
        if settings["npz"] is None and (DATA_ROOT / CIFAR_LAYOUTS["cifar10"].folder).is_dir():
            settings["data"] = "cifar10"
        elif settings["npz"] is None:
            settings |= {"data": "digits", "subset": None, "epochs": overrides.get("epochs") or DIGITS_EPOCHS}
    return settings


def code_path_runs(settings: dict[str, Any], seed: int, root: Path, amp: str | None = None) -> list[SweepRun]:
    """The runs of the code-path check: ``CODE_PATH_RECIPE`` on ``settings``' data, subset and epochs (its
    learning-rate steps scaled), the 8-layer CNN on CIFAR, one torch thread per run on the CPU."""
    data = {"cifar10-npz": dict(dataset="cifar10-npz", data_root=str(settings["npz"]), model="cnn8"),
            "cifar10": dict(dataset="cifar10", data_root=str(DATA_ROOT), model="cnn8"),
            "digits": DIGITS}[settings["data"]]
    schedule = {"epochs": settings["epochs"],
                "milestones": scaled_milestones(get_recipe(CODE_PATH_RECIPE), settings["epochs"])}
    precision = {} if amp is None else {"amp": amp}
    base = get_recipe(CODE_PATH_RECIPE, **data, subset=settings["subset"], **schedule, threads=1, device="cpu",
                      **precision)
    return grid(base, settings["losses"], settings["noises"], [seed], root)


def data_note(scale: str, data: str, npz: Path | None, download: bool | None = None) -> str:
    """Why the code-path check used the data it used (the CIFAR file found, the digits in its place, the
    paper's data sets at gpu scale)."""
    if scale == "gpu":
        return f"The data are read from the data_root folder (download {'off' if download is False else 'on'})."
    if scale == "smoke":
        return "At smoke scale the chapter always uses the digits, so that the tests need no CIFAR file."
    if data == "digits":
        return (f"Neither CIFAR-10 file was found (looked for: the cifar_npz parameter, ${NPZ_ENV}, data/ in the "
                "repository and shared/data/ beside it for the JPEG copy; data/ for the official archive that "
                "`make data` downloads), so this run used the digits instead: the same recipe and code path, a "
                "different and much smaller data set.")
    if data == "cifar10":
        return ("The project's JPEG copy of CIFAR-10 was not found, so this run read CIFAR-10's official archive "
                "(downloaded by `make data`, md5-checked): the same images, stored losslessly.")
    return f"The CIFAR-10 file ({npz.name if npz else ''}) was found."


def data_description(data: str, npz: Path | None) -> str:
    """The code-path check's data in words."""
    return {"cifar10-npz": f"the project's JPEG copy of CIFAR-10 ({npz.name if npz else ''}), a stratified subset",
            "cifar10": "CIFAR-10 from its official archive, a stratified subset",
            "digits": "scikit-learn's 8×8 digits", "paper": "the full data sets of the grid"}[data]


def caveat(data: str, scale: str, noise: str) -> str:
    """What the code-path check's accuracies under ``noise`` cannot say, on its data."""
    if data == "digits":
        return ("The digits are a far easier task than CIFAR (8×8 pixels, 10 classes, at most 1437 training images), "
                "so these numbers say nothing about CIFAR" + (
                    ", and two epochs of smoke test say nothing at all." if scale == "smoke" else "."))
    recipe = get_recipe(CODE_PATH_RECIPE)
    first = steps_to_fill(recipe.ogc_queue_size, recipe.batch_size, recipe.ogc_interval)
    return (f"That is what a few epochs on a small subset of CIFAR-10 under {noise} give: far below the paper's "
            f"regime, and OGC has had only a few refits (the first comes after {first} steps, once its queue of "
            f"{recipe.ogc_queue_size} values is full).")


def joined(values: Sequence[Any], fmt: str = "{}") -> str:
    """The distinct ``values``, sorted, in ``fmt``, comma-separated ('none' without any)."""
    return ", ".join(dict.fromkeys(fmt.format(v) for v in sorted(set(values)))) or "none"


def code_path_record(results: Sequence[RunRecord], ran: pd.DataFrame, settings: dict[str, Any], scale: str,
                     planned: int, failures: dict[str, str], apart: str = "",
                     download: bool | None = None) -> dict[str, Any]:
    """What the code-path check ran and what its numbers can say, by name for the chapter's text: the runs
    (``ran``: ``report.run_records``) against the ``planned`` count and the ``failures``, the data and why, the
    models, epochs, images, devices and dates, how the configs differ from ``CODE_PATH_RECIPE``, and a summary that
    states the accuracies with their caveat (and ``apart``, why a twin run elsewhere scores differently)."""
    recipe = get_recipe(CODE_PATH_RECIPE).to_dict()
    varied = {"loss", "noise", "seed"}  # what a sweep varies on purpose
    differences = sorted({k for r in results for k, v in r.config.items() if k not in varied and v != recipe[k]})
    sources = sorted({without_paths(r.data_source) for r in results})  # no folder of this machine
    record = {
        "scale": scale, "jobs": settings["jobs"], "failures": failures, "ran": ran.to_dict("records"),
        "runs_done": len(ran), "runs_planned": planned, "chapter5_apart": apart,
        "data_kind": settings["data"], "npz_found": settings["npz"] is not None,
        "data_description": data_description(settings["data"], settings["npz"]),
        "data_note": data_note(scale, settings["data"], settings["npz"], download),
        "data_sources": sources, "data_source": "; ".join(sources) or "none (no run finished)",
        "dates": sorted({r.date[:10] for r in results}),
        "config_differences_from_recipe": differences, "ran_differences": ", ".join(differences) or "none",
        "ran_epochs": int(ran["epochs"].iloc[0]) if len(ran) else 0,
    }
    for name, column, fmt in (("ran_epochs_text", "epochs", "{}"), ("ran_train_images", "train images", "{:,}"),
                              ("ran_test_images", "test images", "{:,}"), ("ran_model", "model", "{}"),
                              ("ran_device", "device", "{}")):
        record[name] = joined(ran[column] if len(ran) else [], fmt)
    record["ran_date"] = joined([d[:10] for d in ran["date"]] if len(ran) else [])
    if scale == "gpu":
        return record | {"ran_summary": "At gpu scale the runs' results are in the tables of the next section."}
    acc = dict(zip(ran["loss"], ran["final test acc"]))
    tau = dict(zip(ran["loss"], ran["final tau"]))
    summary = (f"The final test accuracies are {acc['ce']:.1%} for CE and {acc['ce+ogc']:.1%} for CE+OGC (CE+OGC's "
               f"threshold at the end: {tau['ce+ogc']}). {caveat(settings['data'], scale, settings['noises'][0])} "
               "They show that the recipe, the noise, the loss, the trainer and the result files work end to end on "
               "this data; they are not a reproduction, and the difference between the two losses at this size means "
               "nothing.")
    return record | {"ran_summary": summary + (f" {apart}" if apart else "")}


# ---- the committed campaigns' plans --------------------------------------------------------------


@dataclass(frozen=True)
class Tier:
    """A committed campaign's plan: its losses and noises in the tables' order (each noise with its key in glued
    names and its words in the text), its seeds, the extra seeds some (noise, loss) pairs got later, and how the
    text names the setting."""

    losses: tuple[str, ...]
    noises: dict[str, tuple[str, str]]  # noise -> (key, words)
    seeds: tuple[int, ...]
    words: str
    extra_seeds: dict[tuple[str, str], tuple[int, ...]] = field(default_factory=dict)

    def frame(self, runs: Sequence[RunRecord]) -> pd.DataFrame:
        """``evidence.runs_frame`` of ``runs`` in the plan's order (an empty frame without runs)."""
        return ordered(runs_frame(runs), self.order) if runs else pd.DataFrame()

    @property
    def order(self) -> list[str]:
        """Noises then losses: the order of the tables (``evidence.ordered``)."""
        return [*self.noises, *self.losses]

    def planned(self) -> int:
        """How many runs the plan holds, extra seeds included."""
        return len(self.losses) * len(self.noises) * len(self.seeds) + sum(map(len, self.extra_seeds.values()))

    def noise_words(self, frame: pd.DataFrame) -> dict[str, str]:
        """Each planned noise in words, with the share of labels its runs in ``frame`` made wrong where any ran."""
        wrong = frame.groupby("noise")["realised_rate"].mean() if len(frame) else {}
        return {noise: f"{words} ({wrong[noise]:.1%} of the labels wrong)" if noise in wrong else words
                for noise, (_, words) in self.noises.items()}

    def status(self, frame: pd.DataFrame, folder: str) -> str:
        """How far the plan got, from the finished runs in ``frame`` (those committed under ``folder``)."""
        if not len(frame):
            return f"No run of this grid is committed yet under {folder}."
        seeds = ", ".join(map(str, sorted(set(frame["seed"]))))
        return f"{len(frame)} of the {self.planned()} planned runs are finished (seeds {seeds})."

    def extra_seeds_text(self) -> str:
        """Which extra seeds ran where, and what choosing them after seeing the data means ('' without any)."""
        if not self.extra_seeds:
            return ""
        seeds = listing([str(s) for s in sorted({s for extra in self.extra_seeds.values() for s in extra})])
        losses = listing([loss.upper() for loss in dict.fromkeys(loss for _, loss in self.extra_seeds)])
        noises = listing([n for n in self.noises if any(n == noise for noise, _ in self.extra_seeds)])
        return (f"Seeds {seeds} of {losses} ran only under {noises}, after {len(self.seeds)} seeds had left that "
                "comparison open there: a choice made after seeing the data, which the intervals and p-values do not "
                "correct for.")

    def answer_values(self, answers: dict[str, dict[str, Any]]) -> dict[str, Any]:
        """``evidence.answer`` per noise as the text quotes it: answer_<key>_<what> (the fits of baseline and method,
        the paired accuracy difference in points and its phrase), the verdicts of the two claims over the noises
        (fewer flipped labels fitted; a higher accuracy) and how many noises still saw most flipped labels fitted."""
        values: dict[str, Any] = {}
        for noise, a in answers.items():
            key = self.noises[noise][0] if noise in self.noises else slug(noise)
            values |= {f"answer_{key}_baseline_fit": f"{a['baseline_fit']:.1%}", f"answer_{key}_fit": f"{a['fit']:.1%}",
                       f"answer_{key}_acc_points": f"{100 * a['acc_diff']:+.1f}",
                       f"answer_{key}_acc_phrase": accuracy_phrase(a)}
        named = {self.noises.get(noise, (noise, noise))[1]: a for noise, a in answers.items()}
        for claim, (measure, wanted) in CLAIMS.items():
            values[claim] = claim_verdict({words: a[f"{measure}_verdict"] for words, a in named.items()}, wanted)
        return values | {"still_fits_most": sum(a["fit"] > MOST for a in answers.values())}


# the book's two claims on real images: the verdict measure each rests on, and the verdict that bears it out
CLAIMS = {"claim_fit_verdict": ("fit", "below"), "claim_acc_verdict": ("acc", "above")}
MOST = 0.5  # 'still fits most of the flipped labels': a share above this


QUICK_TIER = Tier(
    losses=("ce", "ce+ogc", "phuber-ce", "gce", "gce+ogc"),
    noises={"symmetric:0.6": ("sym", "60 % symmetric noise"), "asym-cifar10:0.4": ("asym", "40 % class-pair noise"),
            "human:worse": ("human", "CIFAR-10N's human labels")},
    seeds=(0, 1, 2), words="5,000 images without augmentation",
    # where three seeds left CE+OGC against CE open, two more seeds of both
    extra_seeds={(noise, loss): (3, 4) for noise in ("symmetric:0.6", "human:worse") for loss in ("ce", "ce+ogc")},
)
FULL_NOISES = {"symmetric:0.6": ("sym", "60 % symmetric noise"), "human:worse": ("human", "CIFAR-10N's worse labels")}
# results/19_cifar10_full: one plan per folder, in the order the chapter shows them (campaign.sh runs them)
FULL_TIER = {
    "memorise": Tier(("ce", "ce+ogc", "gce", "phuber-ce"), FULL_NOISES, (0, 1, 2),
                     "without augmentation (where CE memorised in the regime search)"),
    "grid": Tier(("ce", "ce+ogc"), {"symmetric:0.6": FULL_NOISES["symmetric:0.6"]}, (0,),
                 "with crop + flip (where CE did not memorise)"),
    "early": Tier(("ce",), FULL_NOISES, (0, 1, 2), "CE stopped early by its accuracy on held-out noisy labels"),
}
