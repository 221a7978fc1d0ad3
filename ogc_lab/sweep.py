"""Grids of training runs, run resumably: the engine behind ``ogc-lab sweep`` and the book's chapters.

A sweep is a list of ``SweepRun`` (a config and its folder).  ``run_sweep`` skips finished runs,
resumes unfinished ones from their checkpoint and trains the rest: one at a time in this process, or
with ``jobs > 1`` in a pool of worker processes, each owning one GPU when there are GPUs, else an
equal share of the CPU cores.  Workers live for the whole sweep, so torch is imported once per
worker, not once per run, and end with it even when it is killed.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .recipes import FIELDS, Config, as_published, get_recipe
from .registry import check_names
from .runs import RunRecord, finished_result, run_dir, setting_folder


@dataclass(frozen=True)
class SweepRun:
    """One run of a sweep: what to train and where its files go."""

    config: Config
    out: Path


class SweepError(RuntimeError):
    """Some runs failed (the others still ran); ``failures`` maps each failed run's folder to its error."""

    def __init__(self, failures: dict[Path, str]) -> None:
        self.failures = failures
        listed = "; ".join(f"{out}: {message}" for out, message in failures.items())
        super().__init__(f"{len(failures)} run(s) failed: {listed}")


def _non_empty(name: str, values: Sequence[Any]) -> list[Any]:
    values = list(values)
    if not values:
        raise ValueError(f"{name} must list at least one value, got {values!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"{name} lists a value twice: {values!r}")
    return values


def grid(
    recipe: str | Config,
    losses: Sequence[str],
    noises: Sequence[str],
    seeds: Sequence[int],
    out: Path,
    overrides: dict[str, Any] | None = None,
    keep: Collection[str] = (),
) -> list[SweepRun]:
    """Every (loss, noise, seed) of ``recipe`` (a name or a Config) with ``overrides``, under ``out``.

    Each run's folder is ``runs.run_dir`` (ROOT/<loss>/<noise>/seed<k>).  Each run's loss gets its published
    settings (``recipes.as_published``) except in the fields of ``overrides`` and ``keep`` (those the user set).
    All configs are built, hence validated, before anything runs: a bad name fails the whole grid.
    """
    base = get_recipe(recipe, **(overrides or {})) if isinstance(recipe, str) else recipe.replace(**(overrides or {}))
    seeds = _non_empty("seeds", seeds)
    if not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in seeds):
        raise ValueError(f"seeds must be integers >= 0, got {seeds!r}")
    runs = []
    # seed-major: a sweep stopped part-way leaves whole seeds of the grid, each a complete comparison
    for seed, noise, loss in itertools.product(seeds, _non_empty("noises", noises), _non_empty("losses", losses)):
        config = as_published(base.replace(loss=loss, noise=noise, seed=seed), keep={*keep, *(overrides or {})})
        runs.append(SweepRun(config, run_dir(out, config)))
    return runs


def one_at_a_time(
    recipe: Config,
    axes: dict[str, Sequence[Any]],
    losses: Sequence[str],
    noises: Sequence[str],
    seeds: Sequence[int],
    root: Path,
) -> dict[tuple[str, Any], list[SweepRun]]:
    """Per (field, value) of ``axes``: the ``grid`` with that field of ``recipe`` set to the value and the other
    fields of ``axes`` at the recipe's, under ``runs.setting_folder``, for varying one setting at a time.

    Where a value is the recipe's own, the settings of different axes coincide and share a folder, so that run
    trains once (``run_sweep`` trains a folder once).
    """
    check_names("config field", axes, FIELDS)
    own = {field: getattr(recipe, field) for field in axes}
    settings = {(field, value): {**own, field: value} for field, values in axes.items() for value in values}
    return {key: grid(recipe, losses, noises, seeds, setting_folder(root, setting), setting)
            for key, setting in settings.items()}


def pending(runs: Sequence[SweepRun]) -> list[SweepRun]:
    """The runs without a finished result; a folder shared by two runs or holding another config's result raises."""
    seen: dict[Path, Config] = {}
    for run in runs:
        if run.out in seen and seen[run.out] != run.config:
            raise ValueError(f"two runs of different configs share the folder {str(run.out)!r}")
        seen[run.out] = run.config
    unique = list({run.out: run for run in runs}.values())
    return [run for run in unique if finished_result(run.out, run.config) is None]


def default_jobs(threads_per_run: int = 1) -> int:
    """Runs at once: one per GPU when there are GPUs; on CPU one per ``threads_per_run`` cores (0: one run).

    The CPU default of one single-threaded run per core is measured (benchmarks/bench_threads.py): on a
    2-core Xeon, two cnn8 runs at a thread each trained 1.26x the images of one run at two threads.
    """
    import torch

    if torch.cuda.is_available():
        return torch.cuda.device_count()
    if threads_per_run < 0:
        raise ValueError(f"threads_per_run must be >= 0, got {threads_per_run}")
    return max(1, (os.cpu_count() or 1) // threads_per_run) if threads_per_run else 1


# ---------------------------------------------------------------- running


def _train_one(run: SweepRun) -> tuple[str, float]:
    """Train (or resume) one run in this process; ('', seconds) or (error message, seconds).

    A ValueError (bad input, divergence, a foreign checkpoint) fails this run only; anything else
    is a bug or an interruption and propagates.
    """
    from .train import train

    began = time.perf_counter()
    try:
        train(run.config, run.out, resume=True, progress=False)
    except ValueError as err:
        return " ".join(str(err).split()) or type(err).__name__, time.perf_counter() - began
    return "", time.perf_counter() - began


def exit_with_parent(parent: int, every_s: float = 1.0) -> None:
    """End this process soon after process ``parent`` is gone (checked every ``every_s`` seconds).

    A sweep killed by a signal it cannot catch would otherwise leave its workers training on, writing
    run folders that the next sweep wants to resume.  Checkpoints are written atomically, so the exit
    loses at most the epoch in progress.
    """
    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def _init_worker(slots: Any, gpus: int, jobs: int, parent: int) -> None:
    """Give a pool worker its slot: its own GPU, or its share of the CPU cores (before CUDA starts)."""
    exit_with_parent(parent)
    slot = slots.get()
    if gpus:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(slot % gpus)
        return
    threads = max(1, (os.cpu_count() or 1) // jobs)
    os.environ["OMP_NUM_THREADS"] = str(threads)
    import torch

    torch.set_num_threads(threads)


Report = Callable[[SweepRun, str, float], None]


def _run_sequential(todo: Sequence[SweepRun], report: Report) -> None:
    for run in todo:
        report(run, *_train_one(run))


def _run_pool(todo: Sequence[SweepRun], jobs: int, report: Report) -> None:
    """Train ``todo`` on ``jobs`` worker processes (spawned: safe with torch threads and CUDA)."""
    import multiprocessing

    import torch

    context = multiprocessing.get_context("spawn")
    slots = context.Queue()
    for slot in range(jobs):
        slots.put(slot)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    pool = ProcessPoolExecutor(jobs, mp_context=context, initializer=_init_worker,
                               initargs=(slots, gpus, jobs, os.getpid()))
    try:
        futures: dict[Future[tuple[str, float]], SweepRun] = {pool.submit(_train_one, run): run for run in todo}
        for future in as_completed(futures):
            report(futures[future], *future.result())
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def run_sweep(runs: Sequence[SweepRun], jobs: int = 1, progress: bool = False) -> list[RunRecord]:
    """Train every unfinished run of ``runs`` and return the records of all of them, in the order of ``runs``.

    Finished runs are skipped, unfinished ones resumed from their checkpoint.  ``jobs`` > 1 trains
    that many at once in worker processes.  ``progress`` prints one line per run.  Runs that fail
    with a ValueError do not stop the others; a SweepError naming them is raised at the end.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    todo = pending(runs)
    say = print if progress else (lambda *args, **kwargs: None)
    say(f"sweep: {len(runs)} runs, {len(runs) - len(todo)} already finished, {len(todo)} to run", flush=True)
    failures: dict[Path, str] = {}
    done = 0

    def report(run: SweepRun, error: str, seconds: float) -> None:
        nonlocal done
        done += 1
        say(f"[{done}/{len(todo)}] {run.out}: {f'FAILED ({error})' if error else 'ok'}, {seconds:.1f} s", flush=True)
        if error:
            failures[run.out] = error

    began = time.perf_counter()
    if jobs == 1 or len(todo) <= 1:
        _run_sequential(todo, report)
    else:
        _run_pool(todo, min(jobs, len(todo)), report)
    say(f"sweep: done in {time.perf_counter() - began:.1f} s; {len(failures)} failed", flush=True)
    if failures:
        raise SweepError(failures)
    return [_finished(run) for run in runs]


def _finished(run: SweepRun) -> RunRecord:
    """The record of a run that ``run_sweep`` has just trained or skipped."""
    result = finished_result(run.out, run.config)
    if result is None:
        raise RuntimeError(f"run {str(run.out)!r} ended without a result.json")
    return RunRecord.from_result(run.out, result)
