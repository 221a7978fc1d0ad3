"""ogc_lab.sweep: grids of configs, resumable runs, failures that do not stop the rest, worker pools."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from ogc_lab.recipes import get_recipe
from ogc_lab.runs import grid_key, run_dir, setting_folder, slug
from ogc_lab.sweep import SweepError, SweepRun, default_jobs, grid, one_at_a_time, pending, run_sweep

FAST = {"epochs": 1, "ogc_queue_size": 64, "ogc_interval": 2}


def test_grid_is_the_product_in_order_with_overrides_and_the_folder_layout(tmp_path: Path) -> None:
    runs = grid("toy", ["ce", "ce+ogc"], ["none", "symmetric:0.2"], [0, 3], tmp_path, {"epochs": 2, "lr": 0.05})
    assert len(runs) == 8
    keys = [(r.config.loss, r.config.noise, r.config.seed) for r in runs]
    # seed-major, then noise, then loss: a sweep stopped part-way leaves whole seeds
    assert keys == [(loss, n, s) for s in (0, 3) for n in ("none", "symmetric:0.2") for loss in ("ce", "ce+ogc")]
    assert all(r.config.epochs == 2 and r.config.lr == 0.05 and r.config.dataset == "toy2d" for r in runs)
    assert runs[7].out == tmp_path / "ce+ogc" / "symmetric_0.2" / "seed3"
    # a Config works as the base as well as a recipe name
    base = get_recipe("toy", epochs=2, lr=0.05)
    assert [r.config for r in grid(base, ["ce", "ce+ogc"], ["none", "symmetric:0.2"], [0, 3], tmp_path)] == [
        r.config for r in runs
    ]


def test_grid_gives_each_loss_its_published_settings_unless_overridden(tmp_path: Path) -> None:
    runs = grid("official-cifar10", ["ce", "anl-ce"], ["none"], [0], tmp_path)
    assert [(r.config.weight_decay, r.config.l1_penalty) for r in runs] == [(5e-4, 0.0), (0.0, 5e-5)]
    mine = grid("official-cifar10", ["anl-ce"], ["none"], [0], tmp_path, {"weight_decay": 1e-4})
    assert (mine[0].config.weight_decay, mine[0].config.l1_penalty) == (1e-4, 5e-5)
    base = get_recipe("official-cifar10", l1_penalty=0.0)  # a Config base: only ``keep`` says what the user set
    kept = grid(base, ["anl-ce"], ["none"], [0], tmp_path, keep={"l1_penalty"})
    assert (kept[0].config.weight_decay, kept[0].config.l1_penalty) == (0.0, 0.0)


@pytest.mark.parametrize(
    "losses, noises, seeds, overrides, names",
    [
        (["ce", "nope"], ["none"], [0], None, ["'nope'", "ce+ogc"]),
        (["ce"], ["bogus:0.4"], [0], None, ["'bogus'"]),
        (["ce"], ["none"], [], None, ["seeds", "at least one"]),
        ([], ["none"], [0], None, ["losses", "at least one"]),
        (["ce"], ["none"], [0, 0], None, ["seeds", "twice"]),
        (["ce"], ["none"], [-1], None, ["seeds", ">= 0"]),
        (["ce"], ["none"], ["1"], None, ["seeds", "integers"]),
        (["ce"], ["none"], [0], {"epoch": 3}, ["epoch", "allowed:"]),
    ],
)
def test_grid_rejects_bad_input_before_anything_runs(
    losses: list, noises: list, seeds: list, overrides: dict | None, names: list[str], tmp_path: Path
) -> None:
    with pytest.raises(ValueError) as err:
        grid("toy", losses, noises, seeds, tmp_path / "grid", overrides)
    for name in names:
        assert name in str(err.value)
    assert not (tmp_path / "grid").exists()


def test_pending_dedupes_repeated_runs_and_refuses_a_shared_folder(tmp_path: Path) -> None:
    runs = grid("toy", ["ce"], ["none"], [0, 1], tmp_path, FAST)
    assert pending([*runs, runs[0]]) == runs
    clash = SweepRun(runs[0].config.replace(lr=0.5), runs[0].out)
    with pytest.raises(ValueError, match="share the folder"):
        pending([*runs, clash])


def test_run_sweep_returns_results_in_order_and_skips_finished_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = grid("toy", ["ce+ogc", "ce"], ["symmetric:0.3"], [1, 0], tmp_path, FAST)
    results = run_sweep(runs[:2])
    assert capsys.readouterr().out == ""  # progress=False is silent
    results = run_sweep(runs, progress=True)
    assert "4 runs, 2 already finished, 2 to run" in capsys.readouterr().out
    assert [(r.loss, r.seed) for r in results] == [
        ("ce+ogc", 1), ("ce", 1), ("ce+ogc", 0), ("ce", 0)  # the grid's order: seed-major
    ]
    assert all(len(r.epochs) == 1 for r in results)
    assert [r.dir for r in results] == [r.out for r in runs]
    stamps = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("result.json")}
    assert len(stamps) == 4
    assert run_sweep(runs) == results  # nothing retrained, the same results read back
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("result.json")} == stamps


def test_a_failing_run_does_not_stop_the_others(tmp_path: Path) -> None:
    runs = grid("toy", ["ce"], ["none"], [0, 1, 2], tmp_path, FAST)
    runs[1].out.mkdir(parents=True)
    (runs[1].out / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(SweepError) as err:
        run_sweep(runs)
    assert list(err.value.failures) == [runs[1].out]
    assert "cannot read checkpoint" in err.value.failures[runs[1].out]
    assert [(r.out / "result.json").exists() for r in runs] == [True, False, True]


def test_run_sweep_rejects_a_bad_jobs_value(tmp_path: Path) -> None:
    runs = grid("toy", ["ce"], ["none"], [0], tmp_path, FAST)
    for jobs in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="jobs must be an integer >= 1"):
            run_sweep(runs, jobs=jobs)  # type: ignore[arg-type]


def test_a_worker_pool_gives_the_same_numbers_as_this_process(tmp_path: Path) -> None:
    """Spawned workers (two at once) train bit-for-bit the runs this process trains (toy: one thread)."""
    pooled = run_sweep(grid("toy", ["ce", "ce+ogc"], ["symmetric:0.3"], [0], tmp_path / "pool", FAST), jobs=2)
    here = run_sweep(grid("toy", ["ce", "ce+ogc"], ["symmetric:0.3"], [0], tmp_path / "here", FAST), jobs=1)
    for a, b in zip(pooled, here):
        assert a.config == b.config
        assert [e["test_acc"] for e in a.epochs] == [e["test_acc"] for e in b.epochs]
        assert [e["train_loss"] for e in a.epochs] == [e["train_loss"] for e in b.epochs]


def test_default_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(os, "cpu_count", lambda: 8)
    assert (default_jobs(), default_jobs(0), default_jobs(2), default_jobs(16)) == (8, 1, 4, 1)  # a run per core
    with pytest.raises(ValueError, match="threads_per_run"):
        default_jobs(-1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 3)
    assert default_jobs() == default_jobs(1) == 3


def test_slug_keeps_folder_names_readable() -> None:
    assert slug("asym-cifar10:0.4") == "asym-cifar10_0.4"
    assert slug("nce+rce") == "nce+rce"
    assert slug("imagefolder:/data/x") == "imagefolder__data_x"


def _alive(pid: int) -> bool:
    """Running, and not a zombie waiting for a reaper (containers may have none)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return "\nState:\tZ" not in status


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads process states from /proc")
def test_a_worker_ends_soon_after_its_sweep_is_killed() -> None:
    # The sweep stand-in starts a worker that watches it, then is killed by SIGKILL (nothing can clean up).
    child = ("import os, time; from ogc_lab.sweep import exit_with_parent; exit_with_parent(os.getppid(), 0.05); "
             "print(os.getpid(), flush=True); time.sleep(600)")
    parent = subprocess.Popen(
        [sys.executable, "-c", "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', sys.argv[1]]); "
         "time.sleep(600)", child], stdout=subprocess.PIPE, text=True)
    worker = int(parent.stdout.readline())
    try:
        time.sleep(0.3)
        assert _alive(worker)  # the watcher leaves a worker alone while its sweep lives
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 10
        while _alive(worker) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not _alive(worker)
    finally:  # never leave a sleeper behind, whatever failed
        parent.kill()
        if _alive(worker):
            os.kill(worker, signal.SIGKILL)


def test_run_dir_is_the_grid_layout_that_grid_key_reads_back(tmp_path: Path) -> None:
    config = get_recipe("toy", loss="ce+ogc", noise="asym-cifar10:0.4", seed=3)
    folder = run_dir(tmp_path, config)
    assert folder == tmp_path / "ce+ogc" / "asym-cifar10_0.4" / "seed3"
    assert grid_key(tmp_path, folder) == ("ce+ogc", "asym-cifar10_0.4", 3)
    assert grid_key(tmp_path, tmp_path / "report" / "x" / "seed0") is None  # a report is not a run
    assert grid_key(tmp_path, folder.parent) is None


def test_a_setting_folder_is_named_by_its_fields(tmp_path: Path) -> None:
    assert setting_folder(tmp_path, {"epochs": 4}) == tmp_path / "epochs4"
    fields = {"ogc_epsilon": 20.0, "ogc_interval": 8}
    assert setting_folder(tmp_path, fields) == tmp_path / "ogc_epsilon20_ogc_interval8"
    assert setting_folder(tmp_path, {"noise": "pairflip:0.45"}) == tmp_path / "noisepairflip_0.45"
    with pytest.raises(ValueError, match="at least one field"):
        setting_folder(tmp_path, {})


def test_one_at_a_time_varies_each_field_around_the_recipe(tmp_path: Path) -> None:
    recipe = get_recipe("toy", epochs=2)
    axes = {"ogc_epsilon": [5.0, recipe.ogc_epsilon], "ogc_interval": [1, recipe.ogc_interval]}
    settings = one_at_a_time(recipe, axes, ["ce+ogc"], ["symmetric:0.2"], [0, 1], tmp_path)
    assert list(settings) == [("ogc_epsilon", 5.0), ("ogc_epsilon", recipe.ogc_epsilon), ("ogc_interval", 1),
                              ("ogc_interval", recipe.ogc_interval)]
    run = settings["ogc_interval", 1][0]
    assert (run.config.ogc_interval, run.config.ogc_epsilon) == (1, recipe.ogc_epsilon)  # the other at the recipe's
    assert run.out == run_dir(setting_folder(tmp_path, {"ogc_epsilon": recipe.ogc_epsilon, "ogc_interval": 1}),
                              run.config)
    # the recipe's own setting is one folder in both axes, so it trains once
    own = [[run.out for run in settings[field, getattr(recipe, field)]] for field in axes]
    assert own[0] == own[1] and len(pending([r for runs in settings.values() for r in runs])) == 3 * 2
    with pytest.raises(ValueError, match="unknown config field 'ogc_eps'"):
        one_at_a_time(recipe, {"ogc_eps": [1.0]}, ["ce+ogc"], ["none"], [0], tmp_path)
