"""The ogc-lab command line: train, sweep (resumable), report, noise, and one-line errors with exit code 2.

The sweep engine itself (grids, worker pools, failures) is tested in test_sweep.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import ogc_lab.train as train_module
from ogc_lab.cli import main

TOY = ["--recipe", "toy", "--epochs", "1", "--no-progress"]


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    """The captured stderr, which must be exactly one 'ogc-lab: error:' line."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ogc-lab: error: "), err
    assert "Traceback" not in err
    return lines[0]


# ------------------------------------------------------------------ train


def test_train_applies_field_options_and_set(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    code = main(["train", *TOY, "--loss", "ce+ogc", "--noise", "symmetric:0.2", "--seed", "3",
                 "--batch-size", "32", "--set", "ogc_queue_size=64", "--set", "milestones=1", "--out", str(out)])
    assert code == 0
    config = json.loads((out / "result.json").read_text())["config"]
    assert (config["loss"], config["noise"], config["seed"], config["batch_size"]) == ("ce+ogc", "symmetric:0.2", 3, 32)
    assert (config["ogc_queue_size"], config["milestones"], config["epochs"]) == (64, [1], 1)
    assert "last-10 mean test accuracy" in capsys.readouterr().out


def test_train_from_a_result_json_reproduces_the_config(tmp_path: Path) -> None:
    assert main(["train", *TOY, "--out", str(tmp_path / "a")]) == 0
    assert main(["train", "--config", str(tmp_path / "a" / "result.json"), "--no-progress",
                 "--out", str(tmp_path / "b")]) == 0
    a, b = (json.loads((tmp_path / d / "result.json").read_text()) for d in "ab")
    assert a["config"] == b["config"] and a["epochs"][0]["test_acc"] == b["epochs"][0]["test_acc"]


@pytest.mark.parametrize(
    "argv, names",
    [
        (["train", "--recipe", "cifar", "--out", "{out}"], ["'cifar'", "official-cifar10", "digits-cpu"]),
        (["train", *TOY, "--loss", "cee", "--out", "{out}"], ["'cee'", "ce+ogc"]),
        (["train", *TOY, "--dataset", "mnist", "--out", "{out}"], ["'mnist'", "digits", "toy2d"]),
        (["train", *TOY, "--noise", "bogus:0.4", "--out", "{out}"], ["'bogus'", "symmetric"]),
        (["train", *TOY, "--noise", "symmetric:1.5", "--out", "{out}"], ["rate", "1.5"]),
        (["train", *TOY, "--noise", "symmetric:0.6", "--out", "{out}"], ["rate < 0.5", "0.6"]),  # K = 2
        (["train", *TOY, "--epochs", "ten", "--out", "{out}"], ["epochs='ten'", "int"]),
        (["train", *TOY, "--set", "epoch=3", "--out", "{out}"], ["epoch", "allowed:", "epochs"]),
        (["train", *TOY, "--set", "nonsense", "--out", "{out}"], ["KEY=VALUE", "nonsense"]),
        (["train", "--recipe", "toy"], ["--out"]),
        (["train", *TOY, "--dataset", "cifar10", "--model", "cnn-small", "--data-root", "{out}/nowhere",
          "--out", "{out}"], ["cifar10", "nowhere"]),
        (["noise", "--dataset", "digits", "--noise", "asym-cifar100:0.4"], ["num_classes == 100", "10"]),
        (["sweep", "--recipe", "toy", "--losses", "ce,nope", "--noises", "none", "--out", "{out}"], ["'nope'"]),
        (["sweep", "--recipe", "toy", "--losses", "ce", "--noises", "none", "--seeds", "0,x", "--out", "{out}"],
         ["--seeds", "'0,x'"]),
        (["sweep", "--recipe", "toy", "--losses", "ce", "--noises", "none", "--jobs", "0", "--out", "{out}"],
         ["--jobs", ">= 1", "0"]),
        (["bogus-command"], ["bogus-command"]),
    ],
)
def test_bad_input_is_one_error_line_with_exit_code_2(
    argv: list[str], names: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main([a.replace("{out}", str(out)) for a in argv])
    line = _error_line(capsys)
    assert code == 2
    for name in names:
        assert name in line, (name, line)
    assert not out.exists()  # nothing was created


def test_a_finished_run_is_not_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", *TOY, "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    capsys.readouterr()
    assert main(["train", *TOY, "--out", str(out)]) == 2
    assert "already holds a finished run" in _error_line(capsys)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_an_unreadable_checkpoint_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"\x00garbage")
    assert main(["train", *TOY, "--out", str(out), "--resume"]) == 2
    line = _error_line(capsys)
    assert "cannot read checkpoint" in line and str(out / "checkpoint.pt") in line
    assert (out / "checkpoint.pt").read_bytes() == b"\x00garbage"


def test_module_entry_point_runs_and_reports_errors_without_traceback(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "ogc_lab", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "sweep" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "ogc_lab", "train", "--recipe", "nope", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "ogc-lab: error: unknown recipe 'nope'; allowed: official-cifar10, official-cifar100, webvision-mini, "
        "digits-cpu, toy"
    )


# ------------------------------------------------------------------ sweep and report


SWEEP = ["sweep", "--recipe", "toy", "--epochs", "2", "--losses", "ce,ce+ogc", "--noises", "symmetric:0.3",
         "--seeds", "0,1", "--set", "ogc_queue_size=64", "--set", "ogc_interval=2", "--jobs", "1"]  # in-process


class _Killed(Exception):
    pass


def test_sweep_resumes_skips_finished_runs_and_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "grid"
    real_save = train_module._save_checkpoint
    saves = []

    def die_on_third_save(path: Path, state: dict) -> None:  # run 1 finishes, run 2 dies after epoch 1
        if len(saves) == 3:
            raise _Killed
        saves.append(path)
        real_save(path, state)

    monkeypatch.setattr(train_module, "_save_checkpoint", die_on_third_save)
    with pytest.raises(_Killed):
        main([*SWEEP, "--out", str(root)])
    monkeypatch.setattr(train_module, "_save_checkpoint", real_save)
    assert len(list(root.rglob("result.json"))) == 1
    unfinished = saves[2].parent
    assert not (unfinished / "result.json").exists() and (unfinished / "checkpoint.pt").exists()

    capsys.readouterr()
    assert main([*SWEEP, "--out", str(root)]) == 0
    assert "4 runs, 1 already finished, 3 to run" in capsys.readouterr().out
    runs = sorted(p.parent.relative_to(root).as_posix() for p in root.rglob("result.json"))
    assert runs == sorted(f"{loss}/symmetric_0.3/seed{s}" for loss in ("ce", "ce+ogc") for s in (0, 1))
    assert [int(r) for r in pd.read_csv(unfinished / "epochs.csv")["epoch"]] == [1, 2]  # resumed, no duplicate

    stamps = {p: p.stat().st_mtime_ns for p in root.rglob("result.json")}
    assert main([*SWEEP, "--out", str(root)]) == 0
    assert "4 already finished, 0 to run" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in root.rglob("result.json")} == stamps

    changed = [a if a != "2" else "3" for a in SWEEP]  # --epochs 3 into the same grid
    assert main([*changed, "--out", str(root)]) == 2
    assert "finished run of another config (epochs: saved 2 vs now 3)" in _error_line(capsys)

    assert main(["report", str(root)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("| toy2d | symmetric:0.3 |") == 2
    summary = pd.read_csv(root / "report" / "summary.csv")
    assert list(summary["loss"]) == ["ce", "ce+ogc"] and list(summary["runs"]) == [2, 2]
    results = [json.loads(p.read_text()) for p in sorted((root / "ce").rglob("result.json"))]
    accs = [r["last10_test_acc"] for r in results]
    assert summary.loc[0, "last10_test_acc_mean"] == pytest.approx(sum(accs) / 2)
    assert summary.loc[0, "last10_test_acc_std"] == pytest.approx(abs(accs[0] - accs[1]) / 2**0.5)
    assert (root / "report" / "summary.md").read_text().strip() == printed.strip()
    assert (root / "report" / "test_acc_symmetric_0.3.png").stat().st_size > 0
    assert (root / "report" / "clipping_symmetric_0.3.png").stat().st_size > 0


def test_report_of_an_empty_folder_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "no finished runs" in _error_line(capsys)


# ------------------------------------------------------------------ noise


def test_noise_prints_the_realised_matrix(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["noise", "--dataset", "digits", "--noise", "asym-mnist:0.4", "--seed", "0", "--json"]) == 0
    out = capsys.readouterr().out
    assert "asym-mnist noise" in out and "true\\noisy" in out
    report = json.loads(out.strip().splitlines()[-1])
    matrix = report["transition"]
    for source, target in {7: 1, 2: 7, 5: 6, 6: 5, 3: 8}.items():
        assert matrix[source][target] == pytest.approx(0.4, abs=0.01)  # exact counts up to rounding
    assert matrix[0][0] == 1.0
