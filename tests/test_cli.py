"""The ogc-lab command line: train, sweep (resumable), report, noise, and one-line errors with exit code 2.

The sweep engine itself (grids, worker pools, failures) is tested in test_sweep.py.
"""

from __future__ import annotations

import io
import json
import math
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import ogc_lab.train as train_module
from fixtures import write_cifar10_archive, write_cifar_n_labels, write_corrupted_copy, write_imagefolder
from ogc_lab.cli import main
from ogc_lab.download import REMOTE_FILES, RemoteFile

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


def test_train_and_sweep_give_a_loss_its_published_settings_unless_the_command_sets_them(tmp_path: Path) -> None:
    assert main(["train", *TOY, "--loss", "anl-ce", "--out", str(tmp_path / "a")]) == 0
    assert main(["train", *TOY, "--loss", "anl-ce", "--weight-decay", "1e-4", "--out", str(tmp_path / "b")]) == 0
    assert main(["sweep", *TOY[:-1], "--losses", "anl-ce", "--noises", "none", "--seeds", "0", "--set", "l1_penalty=0",
                 "--jobs", "1", "--out", str(tmp_path / "c")]) == 0
    a, b, c = (json.loads(next((tmp_path / d).rglob("result.json")).read_text())["config"] for d in "abc")
    assert (a["weight_decay"], a["l1_penalty"]) == (0.0, 5e-5)  # result.json records the values used
    assert (b["weight_decay"], b["l1_penalty"]) == (1e-4, 5e-5)
    assert (c["weight_decay"], c["l1_penalty"]) == (0.0, 0.0)


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
        (["noise", "--dataset", "digits", "--noise", "asym-cifar100:0.4"], ["asym-cifar100", "'digits'", "cifar100n"]),
        (["noise", "--dataset", "digits", "--noise", "asym-cifar10:0.4"],
         ["asym-cifar10 noise", "'digits'", "allowed: cifar10, cifar10-npz, cifar10n, cifar10n-npz", "imagefolder"]),
        (["train", *TOY, "--noise", "asym-cifar10:0.2", "--out", "{out}"], ["asym-cifar10", "'toy2d'", "allowed:"]),
        (["train", *TOY, "--set", "epochs=abc", "--epochs", "2", "--out", "{out}"], ["epochs='abc'", "int"]),
        (["train", *TOY, "--set", "lr=-1", "--lr", "0.1", "--out", "{out}"], ["lr=-1.0", "> 0"]),
        (["sweep", "--recipe", "toy", "--losses", "ce", "--noises", "none", "--set", "seed=x", "--seed", "1",
          "--out", "{out}"], ["seed='x'"]),
        (["sweep", "--recipe", "toy", "--losses", "ce,nope", "--noises", "none", "--out", "{out}"], ["'nope'"]),
        (["sweep", "--recipe", "toy", "--losses", "ce", "--noises", "none", "--seeds", "0,x", "--out", "{out}"],
         ["--seeds", "'0,x'"]),
        (["sweep", "--recipe", "toy", "--losses", "ce", "--noises", "none", "--jobs", "0", "--out", "{out}"],
         ["--jobs", ">= 1", "0"]),
        (["bogus-command"], ["bogus-command"]),
        (["train", *TOY, "--loss", "gce", "--loss-params", '{"q": "abc"}', "--out", "{out}"],
         ["gce: q='abc' is not allowed; allowed: a number"]),
        (["train", *TOY, "--loss", "ce+ogc", "--loss-params", '{"max_iter": 2.5}', "--out", "{out}"],
         ["ce+ogc: max_iter=2.5 is not allowed; allowed: an integer"]),
        (["train", *TOY, "--loss", "ce+ogc", "--loss-params", '{"epsilon": 10}', "--out", "{out}"],
         ["loss_params sets 'epsilon'", "allowed: set ogc_epsilon instead"]),
        (["train", *TOY, "--ogc-epsilon", "inf", "--out", "{out}"],
         ["config field ogc_epsilon=inf is not allowed; allowed: a finite number"]),
        (["train", *TOY, "--momentum", "nan", "--out", "{out}"], ["momentum=nan", "allowed: a finite number"]),
        (["train", *TOY, "--loss", "ce+ogc", "--ogc-queue-size", "1", "--out", "{out}"],
         ["ogc_queue_size=1 must be >= 2"]),
        (["train", *TOY, "--loss-params", "[" * 5000 + "]" * 5000, "--out", "{out}"], ["loss_params="]),
        (["train", *TOY, "--subset", "1", "--out", "{out}"],
         ["subset=1 keeps fewer samples than the 2 classes of 'toy2d'; allowed: 2 to 400"]),
        (["noise", "--dataset", "digits", "--noise", "none", "--subset", "9"], ["subset=9", "allowed: 10 to 1437"]),
        (["train", *TOY, "--test-subset", "1", "--out", "{out}"], ["test_subset=1", "allowed: 2 to 2000"]),
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


@pytest.mark.parametrize("command", [
    ["train", *TOY], ["sweep", "--recipe", "toy", "--losses", "ce", "--noises", "none"],
])
@pytest.mark.parametrize("out", ["", ".", "./", "{cwd}"])
def test_out_must_not_be_the_current_folder(
    command: list[str], out: str, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main([*command, "--out", out.replace("{cwd}", str(tmp_path))]) == 2
    line = _error_line(capsys)
    assert "--out" in line and "current folder" in line and "allowed: any other folder" in line
    assert list(tmp_path.iterdir()) == []  # nothing was written into the current folder


@pytest.mark.parametrize("resume", [[], ["--resume"]])
def test_out_must_not_hold_other_things_than_a_run(
    resume: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "work").mkdir()
    (tmp_path / "notes.txt").write_text("mine")
    monkeypatch.chdir(tmp_path / "work")
    assert main(["train", *TOY, *resume, "--out", ".."]) == 2
    line = _error_line(capsys)
    assert "out dir '..' holds other things than a run (notes.txt, work); allowed: a new or empty folder" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt", "work"]  # nothing written, no lock left


def test_a_config_file_that_is_not_a_config_is_one_error_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for name, text in [("list.json", "[1, 2]"), ("result.json", '{"config": "toy"}'), ("bad.json", '{"epochs": -1}')]:
        (tmp_path / name).write_text(text)
        assert main(["train", "--config", str(tmp_path / name), "--out", str(tmp_path / "out")]) == 2
        line = _error_line(capsys)
        assert f"config file {str(tmp_path / name)!r}" in line, line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", [["train", "--config", "{file}", "--out", "{out}"], ["report", "{dir}"]])
def test_deeply_nested_json_is_one_error_naming_the_file(
    command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "run" / "result.json"
    path.parent.mkdir()
    path.write_text('{"config": ' + "[" * 100_000 + "]" * 100_000 + "}")
    values = {"{file}": str(path), "{out}": str(tmp_path / "out"), "{dir}": str(tmp_path)}
    assert main([values.get(a, a) for a in command]) == 2
    line = _error_line(capsys)
    assert f"cannot read JSON file {str(path)!r}: it nests lists or objects more than 64 levels deep" in line
    assert not (tmp_path / "out").exists()


def test_a_finished_run_is_not_overwritten(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    assert main(["train", *TOY, "--out", str(out)]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert ".lock" not in before  # the lock file went with the lock
    capsys.readouterr()
    assert main(["train", *TOY, "--out", str(out)]) == 2
    assert "already holds a finished run" in _error_line(capsys)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert main(["train", *TOY, "--out", str(out), "--resume"]) == 0  # reads the finished run, writes nothing
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_an_unreadable_checkpoint_is_an_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"\x00garbage")
    assert main(["train", *TOY, "--out", str(out), "--resume"]) == 2
    line = _error_line(capsys)
    assert "cannot read checkpoint" in line and str(out / "checkpoint.pt") in line
    assert (out / "checkpoint.pt").read_bytes() == b"\x00garbage"


@pytest.fixture(scope="module")
def finished_toy_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One finished 1-epoch toy run (result.json, checkpoint.pt, CSVs): tests damage copies of its files."""
    out = tmp_path_factory.mktemp("toy") / "run"
    assert main(["train", *TOY, "--out", str(out)]) == 0
    return out


class Planted:
    """An object of a class no checkpoint holds (torch's weights-only loader refuses it)."""


def _a_bias_one_longer(state: dict[str, Any]) -> dict[str, Any]:
    name = [k for k in state["model"] if k.endswith("bias")][-1]
    state["model"][name] = torch.zeros(len(state["model"][name]) + 1)
    return state


def _epochs_ahead(state: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint of epoch 5 of its 1-epoch run, its history continued consistently."""
    history = [{**state["history"][0], "epoch": e} for e in range(1, 6)]
    return {**state, "epoch": 5, "history": history}


CHECKPOINT_DAMAGE: dict[str, tuple[Callable[[dict[str, Any]], Any], list[str]]] = {
    "only its format": (lambda s: {"format": 1}, ["has no 'config' entry", "it has 'format'"]),
    "no model": (lambda s: {k: v for k, v in s.items() if k != "model"}, ["has no 'model' entry"]),
    "tensors of other shapes": (_a_bias_one_longer, ["model tensor", "bias", "has shape (3,)", "this run's has (2,)"]),
    "history of another epoch": (lambda s: {**s, "history": []}, ["inconsistent", "0 epochs of history at epoch 1"]),
    "an object torch refuses": (lambda s: {**s, "extra": Planted()}, ["test_cli.Planted", "refusing to unpickle"]),
    "history an int": (lambda s: {**s, "history": 3}, ["entry 'history' holds 3, expected a list"]),
    "history without test_acc": (lambda s: {**s, "history": [{k: v for k, v in s["history"][0].items()
                                                               if k != "test_acc"}]},
                                 ["has no 'history[0].test_acc' entry"]),
    "an accuracy that is text": (lambda s: {**s, "history": [{**s["history"][0], "test_acc": "high"}]},
                                 ["entry 'history[0].test_acc' is 'high', expected a finite number in [0, 1]"]),
    "rng an empty dict": (lambda s: {**s, "rng": {}}, ["entry 'rng' holds a dict, expected a list of at least 1"]),
    "rng an int": (lambda s: {**s, "rng": 7}, ["entry 'rng' holds 7, expected a list"]),
    "rng of empty states": (lambda s: {**s, "rng": [{}]}, ["has no 'rng[0].torch' entry"]),
    "a torch random state cut short": (lambda s: {**s, "rng": [{**s["rng"][0], "torch": s["rng"][0]["torch"][:9]}]},
                                       ["entry 'rng[0].torch' is a torch.uint8 tensor of shape (9,)"]),
    "optimizer without param_groups": (lambda s: {**s, "optimizer": {"state": {}}},
                                       ["has no 'optimizer.param_groups' entry"]),
    "optimizer with a text lr": (lambda s: {**s, "optimizer": {**s["optimizer"], "param_groups": [
        {**s["optimizer"]["param_groups"][0], "lr": "0.1"}]}},
        ["entry 'optimizer.param_groups[0].lr' is '0.1', expected a finite number"]),
    "scheduler with a text gamma": (lambda s: {**s, "scheduler": {**s["scheduler"], "gamma": "x"}},
                                    ["entry 'scheduler.gamma' is 'x', expected a finite number"]),
    "an epoch past the run's": (_epochs_ahead, ["is at epoch 5, past the 1 epochs of its config"]),
    "a negative step": (lambda s: {**s, "step": -1}, ["entry 'step' is -1, expected an integer >= 0"]),
    "a NaN elapsed time": (lambda s: {**s, "elapsed_s": math.nan},
                           ["entry 'elapsed_s' is nan, expected a finite number in [0, inf]"]),
    "a step its history does not end at": (lambda s: {**s, "step": s["step"] + 1}, ["inconsistent", "history ends"]),
}


@pytest.mark.parametrize("damage", list(CHECKPOINT_DAMAGE))
def test_resume_from_a_damaged_checkpoint_is_one_error_naming_it(
    damage: str, finished_toy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change, names = CHECKPOINT_DAMAGE[damage]
    out = tmp_path / "run"
    out.mkdir()
    torch.save(change(torch.load(finished_toy_run / "checkpoint.pt", weights_only=True)), out / "checkpoint.pt")
    before = (out / "checkpoint.pt").read_bytes()
    assert main(["train", *TOY, "--out", str(out), "--resume"]) == 2
    line = _error_line(capsys)
    for name in [repr(str(out / "checkpoint.pt")), *names]:
        assert name in line, (name, line)
    assert "weights_only" not in line  # torch's advice to load unsafely is never relayed
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt"]  # no result, no CSV, no lock file
    assert (out / "checkpoint.pt").read_bytes() == before


@pytest.mark.parametrize("counts, empty_test_tree, names", [
    ({"cat": (0, 1), "dog": (0, 1)}, False, ["no train images for class 'cat', 'dog'"]),
    ({"cat": (2, 1), "emu": (1, 0)}, False, ["no test images for class 'emu'"]),
    ({"cat": (2, 1), "dog": (1, 1)}, True, ["no test images for class 'cat', 'dog'"]),
])
def test_an_image_tree_without_images_of_a_class_is_refused_before_training(
    counts: dict[str, tuple[int, int]], empty_test_tree: bool, names: list[str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    tree, out = tmp_path / "tree", tmp_path / "out"
    write_imagefolder(tree, counts)
    if empty_test_tree:
        shutil.rmtree(tree / "test")
        (tree / "test").mkdir()
    assert main(["train", *TOY, "--dataset", f"imagefolder:{tree}", "--model", "cnn-small", "--out", str(out)]) == 2
    line = _error_line(capsys)
    for name in [str(tree), *names]:
        assert name in line, (name, line)
    assert not out.exists()  # no result with an accuracy computed on nothing


def _extracted_cifar10(root: Path) -> Path:
    """The tiny CIFAR-10 fixture (4 images a batch) extracted under ``root``: its cifar-10-batches-py folder."""
    with tarfile.open(write_cifar10_archive(root / "archive").archive) as tar:
        tar.extractall(root, filter="data")
    return root / "cifar-10-batches-py"


def _batch(images: int, labels: list[int], row: int = 3072) -> bytes:
    return pickle.dumps({"data": np.zeros((images, row), np.uint8), "labels": labels}, protocol=2)


# file of cifar-10-batches-py -> (its new content, or a change of its bytes), what the error names
CIFAR_DAMAGE: dict[str, tuple[str, Callable[[bytes], bytes], list[str]]] = {
    "a batch without data": ("data_batch_1", lambda b: pickle.dumps({"labels": [1]}), ["has no 'data' entry"]),
    "a batch that is a list": ("data_batch_2", lambda b: pickle.dumps([1, 2]),
                               ["it holds a list, expected a dict with entries data, labels"]),
    "meta without label_names": ("batches.meta", lambda b: pickle.dumps({"num_vis": 3072}),
                                 ["has no 'label_names' entry"]),
    "a truncated batch": ("data_batch_3", lambda b: b[: len(b) // 2], ["cannot read CIFAR batch", "clean copy"]),
    "an empty batch file": ("test_batch", lambda b: b"", ["cannot read CIFAR batch", "EOFError"]),
    "a file of garbage": ("data_batch_4", lambda b: b"\x80\x02garbage" * 9, ["cannot read CIFAR batch"]),
    "20 images and 3 labels": ("data_batch_5", lambda b: _batch(20, [0, 1, 2]),
                               ["entry 'labels' holds int64 values of shape (3,), expected 20 integer labels"]),
    "a label out of range": ("test_batch", lambda b: _batch(2, [0, 10]), ["labels from 0 to 10, allowed: 0 to 9"]),
    "a label that is text": ("data_batch_1", lambda b: _batch(2, [0, "cat"]),
                             ["entry 'labels[1]' is 'cat', expected an integer >= 0"]),
    "images of another size": ("data_batch_1", lambda b: _batch(2, [0, 1], row=1024),
                               ["entry 'data' is a uint8 array of shape (2, 1024), expected a uint8 array of shape "
                                "(N, 3072)"]),
}


@pytest.mark.parametrize("damage", list(CIFAR_DAMAGE))
def test_a_damaged_cifar_batch_is_one_error_naming_it_and_never_trains(
    damage: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    name, change, names = CIFAR_DAMAGE[damage]
    path = _extracted_cifar10(tmp_path / "data") / name
    path.write_bytes(change(path.read_bytes()))
    out = tmp_path / "out"
    assert main(["train", *TOY, "--dataset", "cifar10", "--model", "cnn-small", "--data-root",
                 str(tmp_path / "data"), "--out", str(out)]) == 2
    line = _error_line(capsys)
    for expected in [str(path), *names]:
        assert expected in line, (expected, line)
    assert not out.exists()


def _png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header (IHDR, its CRC fixed up) claims ``width`` x ``height`` pixels."""
    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.mark.parametrize("content, names", [
    (lambda b: _png_claiming(30_000, 30_000), ["exceeds limit", "decompression bomb"]),
    (lambda b: b[: len(b) // 2], []),
    (lambda b: b"", []),
])
def test_an_image_that_cannot_be_read_is_one_error_naming_it(
    content: Callable[[bytes], bytes], names: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree, out = tmp_path / "tree", tmp_path / "out"
    write_imagefolder(tree, {"cat": (2, 1), "dog": (2, 1)})
    path = tree / "train" / "dog" / "001.png"
    path.write_bytes(content(path.read_bytes()))
    assert main(["train", *TOY, "--dataset", f"imagefolder:{tree}", "--model", "cnn-small", "--out", str(out)]) == 2
    line = _error_line(capsys)
    for expected in [f"cannot read image {str(path)!r}", *names]:
        assert expected in line, (expected, line)
    assert not out.exists()


def _no_test_samples(result: dict[str, Any]) -> dict[str, Any]:
    """The result a run evaluated on 0 test samples wrote: accuracies 0/0, saved as null."""
    accuracies = dict.fromkeys(["final_test_acc", "best_test_acc", "last10_test_acc"])
    return {**result, **accuracies, "num_test": 0, "epochs": [{**e, "test_acc": None} for e in result["epochs"]]}


RESULT_DAMAGE: dict[str, tuple[Callable[[dict[str, Any]], Any], list[str]]] = {
    "no config": (lambda r: {k: v for k, v in r.items() if k != "config"}, ["has no 'config' entry"]),
    "a JSON list": (lambda r: [r], ["holds a list, expected a dict"]),
    "0 test samples": (_no_test_samples, ["entry 'epochs[0].test_acc' is null, expected a finite number in [0, 1]"]),
    "an accuracy above 1": (lambda r: {**r, "best_test_acc": 97.5},
                            ["entry 'best_test_acc' is 97.5, expected a finite number in [0, 1]"]),
    "an invalid config": (lambda r: {**r, "config": {**r["config"], "lr": "fast"}}, ["config", "lr='fast'"]),
    "an empty config": (lambda r: {**r, "config": {}}, ["has no 'config.dataset' entry; it has none"]),
    "a config without loss": (lambda r: {**r, "config": {k: v for k, v in r["config"].items() if k != "loss"}},
                              ["has no 'config.loss' entry"]),
    "accuracies as text": (lambda r: {**r, "epochs": [{**e, "test_acc": "0.5"} for e in r["epochs"]]},
                           ["entry 'epochs[0].test_acc' is '0.5', expected a finite number in [0, 1]"]),
    "a NaN wall time": (lambda r: {**r, "wall_time_s": math.nan},
                        ["entry 'wall_time_s' is nan, expected a finite number in [0, inf]"]),
    "an infinite accuracy": (lambda r: {**r, "last10_test_acc": math.inf},
                             ["entry 'last10_test_acc' is inf, expected a finite number in [0, 1]"]),
    "a short commit": (lambda r: {**r, "source": {"commit": "038bb3c", "dirty": False}},
                       ["entry 'source.commit' is '038bb3c', expected a git commit (40 or 64 hex digits) or null"]),
    "a dirty flag as text": (lambda r: {**r, "source": {"commit": None, "dirty": "yes"}},
                             ["entry 'source.dirty' is 'yes', expected true or false or null"]),
}


@pytest.mark.parametrize("damage", list(RESULT_DAMAGE))
def test_report_on_a_damaged_result_is_one_error_naming_it(
    damage: str, finished_toy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    change, names = RESULT_DAMAGE[damage]
    root = tmp_path / "grid"
    shutil.copytree(finished_toy_run, root / "run")
    path = root / "run" / "result.json"
    path.write_text(json.dumps(change(json.loads(path.read_text()))))
    assert main(["report", str(root)]) == 2
    line = _error_line(capsys)
    for name in [f"result file {str(path)!r}", *names]:
        assert name in line, (name, line)
    assert not (root / "report").exists()


def test_a_report_that_fails_part_way_leaves_the_previous_one_whole(
    finished_toy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "grid"
    shutil.copytree(finished_toy_run, root / "run")
    assert main(["report", str(root)]) == 0
    before = {p.name: p.read_bytes() for p in (root / "report").iterdir()}
    path = root / "run" / "result.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "wall_time_s": 12345.0}))  # another summary

    def disk_full(*args: Any) -> None:
        raise OSError("No space left on device")

    monkeypatch.setattr("ogc_lab.report.plot_clipping", disk_full)  # the last file of the report
    assert main(["report", str(root)]) == 2
    assert "No space left on device" in _error_line(capsys)
    assert {p.name: p.read_bytes() for p in (root / "report").iterdir()} == before
    assert sorted(p.name for p in root.iterdir()) == ["report", "run"]  # no staging folder left


def test_report_on_a_damaged_steps_csv_is_one_error_naming_it(
    finished_toy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = tmp_path / "grid"
    shutil.copytree(finished_toy_run, root / "run")
    steps = root / "run" / "steps.csv"
    frame = pd.read_csv(steps).astype(object)
    frame.loc[0, "ratio_after"] = "abc"
    frame.to_csv(steps, index=False)
    assert main(["report", str(root)]) == 2
    expected = f"steps file {str(steps)!r}: column 'ratio_after' of row 1 is 'abc', expected a number"
    assert expected in _error_line(capsys)
    frame.drop(columns=["tau"]).to_csv(steps, index=False)
    assert main(["report", str(root)]) == 2
    assert "lacks columns tau" in _error_line(capsys)
    pd.read_csv(finished_toy_run / "steps.csv").to_csv(steps, index=False)
    with open(steps, "a", encoding="utf-8") as handle:
        handle.write("99,1,0.1\n")  # the row a crash cut short
    assert main(["report", str(root)]) == 2
    assert f"steps file {str(steps)!r}: row 2 has 3 fields, its header" in _error_line(capsys)


def test_resume_with_a_steps_csv_of_another_format_is_one_error_naming_it(
    finished_toy_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(finished_toy_run / "checkpoint.pt", out / "checkpoint.pt")
    (out / "steps.csv").write_text("step,epoch\nfive,1\n")
    assert main(["train", *TOY, "--out", str(out), "--resume"]) == 2
    line = _error_line(capsys)
    assert f"cannot resume from {str(out / 'steps.csv')!r}: line 2" in line and "'five'" in line
    assert not (out / "result.json").exists()


def test_module_entry_point_runs_and_reports_errors_without_traceback(tmp_path: Path) -> None:
    ok = subprocess.run([sys.executable, "-m", "ogc_lab", "--help"], capture_output=True, text=True)
    assert ok.returncode == 0 and "sweep" in ok.stdout
    bad = subprocess.run([sys.executable, "-m", "ogc_lab", "train", "--recipe", "nope", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        "ogc-lab: error: unknown recipe 'nope'; allowed: official-cifar10, official-cifar100, webvision-mini, "
        "cifar10-cpu, digits-cpu, toy"
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
    real_save = train_module.save_checkpoint
    saves = []

    def die_on_third_save(path: Path, state: dict) -> None:  # run 1 finishes, run 2 dies after epoch 1
        if len(saves) == 3:
            raise _Killed
        saves.append(path)
        real_save(path, state)

    monkeypatch.setattr(train_module, "save_checkpoint", die_on_third_save)
    with pytest.raises(_Killed):
        main([*SWEEP, "--out", str(root)])
    monkeypatch.setattr(train_module, "save_checkpoint", real_save)
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


# ------------------------------------------------------------------ fetch


def _serve_cifar10n(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, corrupt: bool = False) -> np.ndarray:
    """CIFAR-10's archive and CIFAR-10N's label file behind file:// URLs (the archive with one byte changed
    if ``corrupt``); returns the clean training labels."""
    fix = write_cifar10_archive(tmp_path / "server")
    archive = write_corrupted_copy(fix.archive, tmp_path / "server" / "bad") if corrupt else fix.archive
    labels = tmp_path / "server" / REMOTE_FILES["cifar10n"].filename
    write_cifar_n_labels(labels, fix.train_y, 10)
    monkeypatch.setitem(REMOTE_FILES, "cifar10", RemoteFile(archive.as_uri(), fix.md5, archive.name))
    monkeypatch.setitem(REMOTE_FILES, "cifar10n", RemoteFile(labels.as_uri(), None, labels.name))
    return fix.train_y


def test_fetch_downloads_checks_and_extracts_cifar10_and_its_human_labels(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    train_y = _serve_cifar10n(tmp_path, monkeypatch)
    root = tmp_path / "data"
    assert main(["fetch", "cifar10", "cifar10n", "--data-root", str(root)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == ["cifar10", "cifar10n"]
    assert f"{len(train_y)} training" in out[0] and "checked" in out[1]
    assert (root / "cifar-10-batches-py" / "data_batch_1").exists() and (root / "CIFAR-10_human.pt").exists()


def test_fetch_refuses_a_corrupted_archive_and_an_unknown_data_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    _serve_cifar10n(tmp_path, monkeypatch, corrupt=True)
    root = tmp_path / "data"
    assert main(["fetch", "cifar10", "--data-root", str(root)]) == 2
    assert "is corrupted: md5" in _error_line(capsys)
    assert not (root / "cifar-10-batches-py").exists()
    assert main(["fetch", "digits", "--data-root", str(root)]) == 2
    assert "unknown data set to fetch 'digits'; allowed: cifar10, cifar100, cifar10n, cifar100n" in _error_line(capsys)


def test_train_help_says_what_every_config_field_does(capsys) -> None:
    from ogc_lab.recipes import FIELD_HELP, FIELDS

    assert sorted(FIELD_HELP) == sorted(FIELDS), "one description per Config field, no stale ones"
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    for name in FIELDS:
        assert f"--{name.replace('_', '-')} VALUE {' '.join(FIELD_HELP[name].split())} (default:" in shown, name


def test_collect_copies_records_not_checkpoints_and_only_what_changed(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = tmp_path / "runs", tmp_path / "results"
    done, going = src / "ce" / "symmetric_0.6" / "seed0", src / "ce+ogc" / "symmetric_0.6" / "seed0"
    for run in (done, going):
        run.mkdir(parents=True)
        (run / "epochs.csv").write_text("epoch,test_acc\n1,0.5\n")
        (run / "steps.csv").write_text("step\n32\n")
        (run / "checkpoint.pt").write_bytes(b"\0" * 64)
    (done / "result.json").write_text("{}\n")
    assert main(["collect", str(src), str(dst)]) == 0
    copied = sorted(str(p.relative_to(dst)) for p in dst.rglob("*") if p.is_file())
    expected = [f"ce/symmetric_0.6/seed0/{name}" for name in ("epochs.csv", "result.json", "steps.csv")]
    expected += [f"ce+ogc/symmetric_0.6/seed0/{name}" for name in ("epochs.csv", "steps.csv")]  # not finished
    assert copied == sorted(expected)
    assert "5 record files written" in capsys.readouterr().out
    (going / "epochs.csv").write_text("epoch,test_acc\n1,0.5\n2,0.6\n")  # one more epoch
    assert main(["collect", str(src), str(dst)]) == 0
    assert "1 record files written" in capsys.readouterr().out
    assert (dst / going.relative_to(src) / "epochs.csv").read_text().endswith("2,0.6\n")


def test_collect_from_a_missing_folder_is_one_error_naming_it(tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["collect", str(tmp_path / "nope"), str(tmp_path / "out")]) == 2
    assert "nope" in capsys.readouterr().err and not (tmp_path / "out").exists()


def test_a_report_can_go_elsewhere_and_leaves_the_runs_folder_untouched(finished_toy_run: Path, tmp_path: Path) -> None:
    from ogc_lab.report import write_report

    root, out = tmp_path / "committed", tmp_path / "out"
    shutil.copytree(finished_toy_run, root / "run")
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    assert write_report(root, out) == (out / "report" / "summary.md").read_text().rstrip("\n")
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before  # e.g. committed runs stay as they are
