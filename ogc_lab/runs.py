"""A run folder, its one owner: the file names, result.json, the checkpoint format, the CSV logs, and the
folder layout of a grid of runs (``run_dir``: ROOT/<loss>/<noise>/seed<k>).

``train`` writes a run through these functions and ``report``, ``sweep`` and the chapters read runs
through them, so a file's name, keys and checks live in one place.  A run folder holds ``result.json``
once finished, ``checkpoint.pt`` after every epoch, and ``epochs.csv``/``steps.csv`` as it goes.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import Tensor, nn

from .files import (
    GIT_HASH,
    LOCK_FILE,
    TEMP_SUFFIX,
    atomic_torch_save,
    atomic_write_json,
    atomic_write_text,
    read_json,
    torch_load,
)
from .recipes import Config
from .schema import ACCURACY, COUNT, DICT, FLAG, TEXT, Leaf, ListOf, Maybe, Schema, check, like, nullable, number

RESULT = "result.json"  # the finished run's record: config, versions, device, noise report, curves
CHECKPOINT = "checkpoint.pt"  # the state after the last finished epoch (atomic), to resume from
STEPS_CSV = "steps.csv"  # per-step diagnostics, one row every log_interval steps
EPOCHS_CSV = "epochs.csv"  # per-epoch metrics
RUN_FILES = (RESULT, CHECKPOINT, STEPS_CSV, EPOCHS_CSV)
CHECKPOINT_FORMAT = 1
REPORT_DIR = "report"  # where write_report puts a sweep's summary: not a run, skipped by load_runs
LAST_EPOCHS = 10  # result.json's last10_test_acc averages the test accuracy of this many last epochs (the paper's)
# Fields that may differ between a checkpoint and the config resuming it (they change no number).
RESUME_FREE_FIELDS = frozenset({"device", "data_root", "download", "num_workers"})


def last_epochs_mean(test_acc: Sequence[float]) -> float:
    """``last10_test_acc``: the mean test accuracy of the last ``LAST_EPOCHS`` epochs (of all, if fewer)."""
    return float(np.mean(test_acc[-LAST_EPOCHS:]))


class RunExistsError(ValueError):
    """The output folder already holds a run that this call would overwrite."""


class CheckpointError(ValueError):
    """A checkpoint cannot be read or does not belong to the run resuming it."""


class CsvLog:
    """Append-only CSV whose header is fixed by the first row; flushed on every write."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fields: list[str] | None = None

    def append(self, row: dict[str, Any]) -> None:
        if self.fields is None and self.path.exists() and self.path.stat().st_size:
            with open(self.path, newline="", encoding="utf-8") as handle:
                self.fields = next(csv.reader(handle))
        new = self.fields is None
        self.fields = self.fields or list(row)
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=self.fields, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow(row)

    def truncate(self, keep: Callable[[dict[str, str]], bool]) -> None:
        """Drop rows written after the checkpoint being resumed from, and any row or header cut short by a crash."""
        if not self.path.exists():
            return
        with open(self.path, newline="", encoding="utf-8") as handle:
            torn_header = not handle.readline().endswith("\n")  # cut short by a crash: no row follows it
            handle.seek(0)
            reader = csv.DictReader(handle)
            try:
                fields, rows = reader.fieldnames, [r for r in reader if _complete(r) and keep(r)]
            except ValueError as err:  # a step or epoch that is not a number: not a file train wrote
                raise ValueError(f"cannot resume from {str(self.path)!r}: line {reader.line_num}: {err}") from None
        if torn_header:  # the next row writes the whole header afresh
            fields = None
        with open(self.path, "w", newline="", encoding="utf-8") as handle:
            if fields:
                writer = csv.DictWriter(handle, fieldnames=fields)
                writer.writeheader()
                writer.writerows(rows)


def _complete(row: dict[str | None, Any]) -> bool:
    """A CSV row with every field of the header and no extra ones (a torn row misses some)."""
    return None not in row and all(value is not None for value in row.values())


# what train writes into a checkpoint and a result.json, down to the leaves that resume and the readers use
EPOCH_RECORD: Schema = {"epoch": COUNT, "step": COUNT, "test_acc": ACCURACY, "tau": number(0.0, finite=False)}
CHECKPOINT_SCHEMA: Schema = {
    "config": DICT, "world_size": COUNT, "epoch": COUNT, "step": COUNT, "elapsed_s": number(0.0),
    "history": ListOf(EPOCH_RECORD), "model": DICT, "optimizer": {"state": DICT, "param_groups": ListOf(DICT, 1)},
    "scheduler": DICT, "loss": DICT, "rng": ListOf(DICT, 1),
}
COMMIT = Leaf("a git commit (40 or 64 hex digits)", lambda v: isinstance(v, str) and bool(re.fullmatch(GIT_HASH, v)))
RESULT_SCHEMA: Schema = {
    "config": {"dataset": TEXT, "noise": TEXT, "loss": TEXT, "model": TEXT, "seed": COUNT, "epochs": COUNT},
    "epochs": ListOf({"test_acc": ACCURACY}, 1), "final_test_acc": ACCURACY, "best_test_acc": ACCURACY,
    "last10_test_acc": ACCURACY, "wall_time_s": number(0.0), "device": TEXT, "date": TEXT, "data_source": TEXT,
    "num_train": COUNT, "num_test": COUNT, "noise": DICT, "amp_reason": Maybe(TEXT),
    "source": Maybe({"commit": nullable(COMMIT), "dirty": nullable(FLAG)}),  # absent before 2026-12-03
}
# result.json keys renamed since: old name -> new (results written before 2026-12-03 hold "amp", the reason)
RENAMED_RESULT_KEYS = {"amp": "amp_reason"}


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Read a checkpoint written by ``train``; anything unreadable, incomplete or inconsistent raises
    CheckpointError naming the file and the entry."""
    state = torch_load(path, "checkpoint", CheckpointError)
    what = f"checkpoint {str(path)!r}"
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(f"{str(path)!r} is not an ogc-lab checkpoint (format {CHECKPOINT_FORMAT})")
    check(state, CHECKPOINT_SCHEMA, what, CheckpointError)
    try:
        epochs = Config.from_dict(state["config"]).epochs
    except ValueError as err:
        raise CheckpointError(f"{what}: its config is not valid: {err}") from None
    history, epoch = state["history"], state["epoch"]
    if [h["epoch"] for h in history] != list(range(1, epoch + 1)) or len(state["rng"]) != state["world_size"]:
        raise CheckpointError(f"{what} is inconsistent: {len(history)} epochs of history at epoch {epoch}, "
                              f"{len(state['rng'])} random states for {state['world_size']} process(es)")
    if epoch > epochs:
        raise CheckpointError(f"{what} is at epoch {epoch}, past the {epochs} epochs of its config")
    if history and history[-1]["step"] != state["step"]:
        raise CheckpointError(f"{what} is inconsistent: step {state['step']}, its history ends at step "
                              f"{history[-1]['step']}")
    return state


def read_result(path: Path) -> dict[str, Any]:
    """Read a result.json written by ``train``, its keys as ``train`` writes them now (an old key of
    ``RENAMED_RESULT_KEYS`` renamed where it stood); a malformed one raises ValueError naming the file and the entry."""
    result = read_json(path)
    what = f"result file {str(path)!r}"
    if isinstance(result, dict):
        result = {RENAMED_RESULT_KEYS.get(key, key): value for key, value in result.items()}
    check(result, RESULT_SCHEMA, what)
    try:
        Config.from_dict(result["config"])
    except ValueError as err:
        raise ValueError(f"{what}: its config is not valid: {err}") from None
    return result


def check_state_dict(saved: dict[str, Any], module: nn.Module, what: str, path: Path) -> None:
    """Raise CheckpointError unless ``saved`` has exactly ``module``'s entries, its tensors of the same shapes."""
    expected = module.state_dict()
    missing, extra = sorted(set(expected) - set(saved)), sorted(set(saved) - set(expected))
    if missing or extra:
        raise CheckpointError(f"checkpoint {str(path)!r}: the {what} entries differ from this run's "
                              f"(missing {missing or 'none'}, unexpected {extra or 'none'})")
    for name, tensor in expected.items():
        if isinstance(tensor, Tensor) and (not isinstance(saved[name], Tensor) or saved[name].shape != tensor.shape):
            found = tuple(saved[name].shape) if isinstance(saved[name], Tensor) else type(saved[name]).__name__
            raise CheckpointError(f"checkpoint {str(path)!r}: {what} tensor {name!r} has shape {found}, "
                                  f"this run's has {tuple(tensor.shape)}")


def check_optimizer_state(saved: dict[str, Any], net: nn.Module, path: Path) -> None:
    """Raise CheckpointError unless every per-parameter buffer of a saved optimizer (momentum, ...) has
    the shape of its parameter in ``net``."""
    params = list(net.parameters())
    for index, slots in saved.get("state", {}).items():
        if not isinstance(index, int) or not 0 <= index < len(params) or not isinstance(slots, dict):
            raise CheckpointError(f"checkpoint {str(path)!r}: optimizer state for parameter {index!r} does not fit: "
                                  f"this run's model has {len(params)} parameters")
        for name, value in slots.items():
            if isinstance(value, Tensor) and value.dim() and value.shape != params[index].shape:
                raise CheckpointError(f"checkpoint {str(path)!r}: optimizer {name} of parameter {index} has shape "
                                      f"{tuple(value.shape)}, the parameter has {tuple(params[index].shape)}")


def check_like(saved: Any, live: Any, entry: str, path: Path) -> None:
    """Raise CheckpointError unless a saved ``entry`` has the entries, lengths, tensor shapes and kinds of
    leaf of the run's live one (what ``load_state_dict`` would otherwise trip on, or take silently)."""
    check(saved, like(live), f"checkpoint {str(path)!r}", CheckpointError, entry)


def config_differences(saved: dict[str, Any], config: Config) -> str:
    """The numbers-deciding fields where a saved config and ``config`` differ, as text ('' if none)."""
    saved = Config.from_dict(saved).to_dict()
    now = config.to_dict()
    differ = [k for k in now if k not in RESUME_FREE_FIELDS and saved[k] != now[k]]
    return ", ".join(f"{k}: saved {saved[k]!r} vs now {now[k]!r}" for k in differ)


def check_resumable(state: dict[str, Any], config: Config, world: int, path: Path) -> None:
    """A checkpoint may only be resumed by the same run: same numbers-deciding config and world size."""
    differ = config_differences(state["config"], config)  # load_checkpoint checked the saved config
    if differ:
        raise CheckpointError(f"checkpoint {str(path)!r} belongs to another config ({differ})")
    if state["world_size"] != world:
        raise CheckpointError(
            f"checkpoint {str(path)!r} was written by {state['world_size']} process(es), resuming with {world}"
        )


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write a checkpoint atomically: a crash leaves the previous one whole."""
    atomic_torch_save(path, state)


def write_result(out_dir: Path, result: dict[str, Any]) -> None:
    """Write a finished run's result.json atomically (its presence marks the run finished)."""
    atomic_write_json(Path(out_dir) / RESULT, result)


def finished_result(out_dir: Path, config: Config) -> dict[str, Any] | None:
    """The result of the finished run of ``config`` in ``out_dir``; None if unfinished; error if another config's."""
    path = Path(out_dir) / RESULT
    if not path.exists():
        return None
    result = read_result(path)
    differ = config_differences(result["config"], config)
    if differ:
        raise RunExistsError(f"out dir {str(out_dir)!r} holds a finished run of another config ({differ})")
    return result


def _not_of_a_run(out_dir: Path) -> list[str]:
    """What ``out_dir`` holds besides a run's files, its lock, a report and the temporaries of atomic writes."""
    ours = {*RUN_FILES, LOCK_FILE, REPORT_DIR}
    return sorted(p.name for p in out_dir.iterdir()
                  if p.name not in ours and not (p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX)))


def prepare_out_dir(out_dir: Path, config: Config, resume: bool) -> dict[str, Any] | None:
    """Refuse to overwrite a run, or to write one among other files (``--out ..``); return the finished
    result when resuming one that is done."""
    foreign = _not_of_a_run(out_dir) if out_dir.is_dir() else []
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise RunExistsError(f"out dir {str(out_dir)!r} holds other things than a run ({shown}); "
                             "allowed: a new or empty folder, or a run's own folder")
    if (out_dir / RESULT).exists() and not resume:
        raise RunExistsError(
            f"out dir {str(out_dir)!r} already holds a finished run ({RESULT}); "
            "choose another out dir (or resume to just read it)"
        )
    present = [f for f in RUN_FILES if (out_dir / f).exists()]
    if present and not resume:
        raise RunExistsError(
            f"out dir {str(out_dir)!r} holds an unfinished run ({', '.join(present)}); "
            "resume it or choose another out dir"
        )
    return finished_result(out_dir, config)


# ---------------------------------------------------------------- reading runs


@dataclass(frozen=True)
class RunRecord:
    """A finished run as read back from its folder: what it trained, its figures and per-epoch records, typed, so
    readers write ``run.noise`` instead of digging in result.json; ``config`` and ``result`` keep the whole record
    (provenance, and the fields these leave out)."""

    dir: Path
    dataset: str
    loss: str
    noise: str  # the noise spec trained with (``noise_report``: the labels it realised)
    seed: int
    model: str
    final_test_acc: float
    best_test_acc: float
    last10_test_acc: float  # ``last_epochs_mean`` of the test accuracies
    wall_time_s: float
    device: str
    date: str  # ISO 8601, UTC
    data_source: str
    num_train: int
    num_test: int
    noise_report: dict[str, Any]  # ``noise.NoiseReport.to_dict``: realised rate, transition counts, labels' hash
    epochs: tuple[dict[str, Any], ...]  # one record per epoch, as epochs.csv holds them
    config: dict[str, Any]  # ``Config.to_dict`` as the run wrote it
    result: dict[str, Any]  # the whole result.json, as ``read_result`` returns it

    @classmethod
    def from_result(cls, folder: Path, result: dict[str, Any]) -> RunRecord:
        """The record of a run in ``folder`` from its result (as ``read_result`` returns it: checked)."""
        config = result["config"]
        return cls(
            dir=Path(folder), dataset=config["dataset"], loss=config["loss"], noise=config["noise"],
            seed=config["seed"], model=config["model"], final_test_acc=result["final_test_acc"],
            best_test_acc=result["best_test_acc"], last10_test_acc=result["last10_test_acc"],
            wall_time_s=result["wall_time_s"], device=result["device"], date=result["date"],
            data_source=result["data_source"], num_train=result["num_train"], num_test=result["num_test"],
            noise_report=result["noise"], epochs=tuple(result["epochs"]), config=config, result=result,
        )


def load_runs(root: Path, allow_empty: bool = False) -> list[RunRecord]:
    """Every finished run under ``root``, as a ``RunRecord``.

    No run is an error (a mistyped folder, most likely) unless ``allow_empty``: then an empty list,
    for readers of optional folders such as the book's committed results.
    """
    runs = []
    for path in sorted(Path(root).rglob(RESULT)):
        if REPORT_DIR in path.relative_to(root).parts[:-1]:
            continue
        runs.append(RunRecord.from_result(path.parent, read_result(path)))
    if not runs and not allow_empty:
        raise ValueError(f"no finished runs (result.json) under {str(root)!r}")
    return runs


# ---------------------------------------------------------------- the grid's folder layout: ROOT/<loss>/<noise>/seed<k>

SEED_PREFIX = "seed"  # a grid run's folder is named seed<k>


def slug(text: str) -> str:
    """A folder name for a loss or noise spec (':' and '/' are awkward in paths)."""
    return "".join(c if c.isalnum() or c in "+-._" else "_" for c in text)


def grid_folder(root: Path, loss_folder: str, noise_folder: str, seed: int) -> Path:
    """The folder of one run of a grid: ROOT/<loss>/<noise>/seed<k>, the loss and noise already ``slug``-ged."""
    return Path(root) / loss_folder / noise_folder / f"{SEED_PREFIX}{seed}"


def run_dir(root: Path, config: Config) -> Path:
    """The folder of ``config``'s run in a grid under ``root`` (``grid_folder`` of its loss, noise and seed)."""
    return grid_folder(root, slug(config.loss), slug(config.noise), config.seed)


def setting_folder(root: Path, fields: dict[str, Any]) -> Path:
    """The root of a grid whose runs set ``fields`` of the recipe: ROOT/<field><value>_... (``epochs4``,
    ``ogc_epsilon20_ogc_interval8``), so that the settings a chapter trains side by side keep apart."""
    if not fields:
        raise ValueError("a setting folder names at least one field; allowed: config fields with their values")
    return Path(root) / "_".join(slug(f"{name}{value:g}" if isinstance(value, (int, float)) else f"{name}{value}")
                                 for name, value in fields.items())


def grid_key(root: Path, folder: Path) -> tuple[str, str, int] | None:
    """(loss folder, noise folder, seed) of a run ``folder`` laid out as ``grid_folder`` under ``root``; None for a
    folder of another layout, or in a report."""
    parts = Path(folder).relative_to(root).parts
    if len(parts) == 3 and parts[2].startswith(SEED_PREFIX) and REPORT_DIR not in parts:
        return parts[0], parts[1], int(parts[2].removeprefix(SEED_PREFIX))
    return None


def begun_runs(root: Path) -> dict[tuple[str, str, int], pd.DataFrame]:
    """The epochs.csv of every run folder of a grid (``grid_folder``) that has begun, finished or not, keyed by
    (loss, noise folder, seed): a campaign committed run by run shows its runs in progress too."""
    begun = {}
    for path in sorted(Path(root).rglob(EPOCHS_CSV)):
        key = grid_key(root, path.parent)
        if key is not None:
            begun[key] = pd.read_csv(path)
    return begun


def progress(root: Path) -> pd.DataFrame:
    """One row per begun run of a grid: its epochs done, whether it finished and its last test accuracy."""
    rows = [{"loss": loss, "noise": noise, "seed": seed, "epochs": len(epochs),
             "finished": (grid_folder(root, loss, noise, seed) / RESULT).exists(),
             "last_test_acc": float(epochs["test_acc"].iloc[-1]) if len(epochs) else float("nan")}
            for (loss, noise, seed), epochs in begun_runs(root).items()]
    return pd.DataFrame(rows, columns=["loss", "noise", "seed", "epochs", "finished", "last_test_acc"])


RECORDS = (RESULT, EPOCHS_CSV, STEPS_CSV)  # what a run leaves to commit: text, small; never the checkpoint


def copy_records(src: Path, dst: Path) -> list[Path]:
    """Copy the records (``RECORDS``) of every run under ``src``, finished or not, to the same place under
    ``dst`` (atomically, only files that changed); return the files written.  For committing a campaign's
    runs as they go while their checkpoints stay behind."""
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise ValueError(f"no run folder {str(src)!r} to copy records from")
    written = []
    for path in sorted(p for name in RECORDS for p in src.rglob(name)):
        target = dst / path.relative_to(src)
        text = path.read_text(encoding="utf-8")
        if not target.exists() or target.read_text(encoding="utf-8") != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(target, text)
            written.append(target)
    return sorted(written)


# the columns of steps.csv that the report reads (train writes these and more, all numbers)
STEPS_COLUMNS = ("step", "epoch", "lr", "target", "tau", "ratio_before", "ratio_after")


def load_steps(run_dir: Path) -> pd.DataFrame:
    """A run's per-step diagnostics (steps.csv) as a frame; empty if it logged none.

    A file without the columns of ``STEPS_COLUMNS`` or with a value that is not a number raises
    ValueError naming the file, the column and the row.
    """
    path = Path(run_dir) / STEPS_CSV
    if not path.exists() or not path.stat().st_size:
        return pd.DataFrame()
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            widths = [len(row) for row in csv.reader(handle)]
        steps = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, csv.Error) as err:
        raise ValueError(f"cannot read steps file {str(path)!r}: {err}") from None
    torn = next((number for number, width in enumerate(widths[1:], 1) if width != widths[0]), None)
    if torn is not None:  # pandas would fill a torn row's missing fields with NaN
        raise ValueError(f"steps file {str(path)!r}: row {torn} has {widths[torn]} fields, its header "
                         f"{widths[0]} (a row cut short)")
    missing = [c for c in STEPS_COLUMNS if c not in steps]
    if missing:
        raise ValueError(f"steps file {str(path)!r} lacks columns {', '.join(missing)}; "
                         f"it has {', '.join(map(str, steps.columns))}")
    for column in steps:
        numbers = pd.to_numeric(steps[column], errors="coerce")
        bad = numbers.isna() & steps[column].notna()
        if bad.any():
            row = int(bad.to_numpy().argmax())
            raise ValueError(f"steps file {str(path)!r}: column {column!r} of row {row + 1} is "
                             f"{steps[column].iloc[row]!r}, expected a number")
        steps[column] = numbers
    return steps

