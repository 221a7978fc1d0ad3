"""Writers of tiny data files in the real on-disk formats, for the loader tests, and of finished runs, for the
readers' tests.

The data writers write into a directory they are given and return what a correct loader must read back.  A run is
made one way: ``run_record`` builds the record ``runs.load_runs`` returns from the few result.json entries a test
sets; ``fake_run`` fills it from a loss, a seed and a test-accuracy curve, ``readable_run`` gives it a recipe's whole
config (as ``runs.read_result`` reads it back), and ``write_run`` lays one out as a grid's run folder.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from PIL import Image

from ogc_lab.recipes import Config, get_recipe
from ogc_lab.runs import EPOCHS_CSV, RESULT, RESULT_SCHEMA, RunRecord, last_epochs_mean, run_dir
from ogc_lab.schema import check

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@dataclass
class CifarFixture:
    """A written CIFAR archive and the arrays it holds (images uint8 (N, 3, 32, 32))."""

    archive: Path
    md5: str
    classes: list[str]
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray


def md5_of(path: Path) -> str:
    """Hex md5 of a file, as the download registry records it."""
    return hashlib.md5(path.read_bytes()).hexdigest()


def _random_images(rng: np.random.Generator, n: int) -> np.ndarray:
    return rng.integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)


def _add_pickle(tar: tarfile.TarFile, name: str, obj: dict) -> None:
    payload = pickle.dumps(obj, protocol=2)
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def _cifar_batch(x: np.ndarray, labels: dict[str, list[int]], batch_label: str) -> dict:
    return {"batch_label": batch_label, "data": x.reshape(len(x), -1), **labels,
            "filenames": [f"img_{i:05d}.png" for i in range(len(x))]}


def write_cifar10_archive(dest: Path, per_batch: int = 4, n_test: int = 6, seed: int = 0) -> CifarFixture:
    """cifar-10-python.tar.gz with cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}."""
    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True, exist_ok=True)
    train_x, test_x = _random_images(rng, 5 * per_batch), _random_images(rng, n_test)
    train_y = np.arange(5 * per_batch) % 10
    test_y = rng.integers(0, 10, n_test)
    archive = dest / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for b in range(5):
            rows = slice(b * per_batch, (b + 1) * per_batch)
            _add_pickle(tar, f"cifar-10-batches-py/data_batch_{b + 1}",
                        _cifar_batch(train_x[rows], {"labels": train_y[rows].tolist()}, f"training batch {b + 1} of 5"))
        _add_pickle(tar, "cifar-10-batches-py/test_batch",
                    _cifar_batch(test_x, {"labels": test_y.tolist()}, "testing batch 1 of 1"))
        _add_pickle(tar, "cifar-10-batches-py/batches.meta",
                    {"label_names": CIFAR10_CLASSES, "num_cases_per_batch": per_batch, "num_vis": 3072})
    return CifarFixture(archive, md5_of(archive), CIFAR10_CLASSES, train_x, train_y, test_x, test_y)


def write_cifar100_archive(dest: Path, n_train: int = 30, n_test: int = 10, seed: int = 1) -> CifarFixture:
    """cifar-100-python.tar.gz with cifar-100-python/{train, test, meta} (fine and coarse labels)."""
    rng = np.random.default_rng(seed)
    dest.mkdir(parents=True, exist_ok=True)
    classes = [f"fine_{k:02d}" for k in range(100)]
    train_x, test_x = _random_images(rng, n_train), _random_images(rng, n_test)
    train_y, test_y = rng.integers(0, 100, n_train), rng.integers(0, 100, n_test)
    archive = dest / "cifar-100-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, x, y in (("train", train_x, train_y), ("test", test_x, test_y)):
            labels = {"fine_labels": y.tolist(), "coarse_labels": (y // 5).tolist()}
            _add_pickle(tar, f"cifar-100-python/{name}", _cifar_batch(x, labels, name))
        _add_pickle(tar, "cifar-100-python/meta",
                    {"fine_label_names": classes, "coarse_label_names": [f"coarse_{k:02d}" for k in range(20)]})
    return CifarFixture(archive, md5_of(archive), classes, train_x, train_y, test_x, test_y)


def write_corrupted_copy(archive: Path, dest: Path) -> Path:
    """The same archive with one byte changed, under the same file name in ``dest``."""
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / archive.name
    out.write_bytes(bytes(data))
    return out


def write_cifar_n_labels(path: Path, clean: np.ndarray, num_classes: int, seed: int = 0,
                         misalign: bool = False) -> dict[str, np.ndarray]:
    """A CIFAR-N label file (torch.save of a dict of numpy arrays, as published) aligned with ``clean``.

    10 classes: keys clean_label, worse_label, aggre_label, random_label1..3 (CIFAR-10_human.pt);
    otherwise clean_label, noisy_label and coarse versions (CIFAR-100_human.pt).  ``misalign`` rolls
    the clean labels by one place, as a file for another image order would look.
    """
    rng = np.random.default_rng(seed)
    clean = np.asarray(clean, dtype=np.int64)

    def noisy() -> np.ndarray:
        flip = rng.random(len(clean)) < 0.4
        return np.where(flip, rng.integers(0, num_classes, len(clean)), clean).astype(np.int64)

    keys = (["worse_label", "aggre_label", "random_label1", "random_label2", "random_label3"]
            if num_classes == 10 else ["noisy_label"])
    table = {"clean_label": np.roll(clean, 1) if misalign else clean.copy(), **{k: noisy() for k in keys}}
    if num_classes != 10:
        table["clean_coarse_label"] = clean // 5
        table["noisy_coarse_label"] = table["noisy_label"] // 5
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(table, path)
    return table


def smooth_images(rng: np.random.Generator, n: int, size: int = 32) -> np.ndarray:
    """Images (N, size, size, 3) made of a random colour plus a gentle gradient: JPEG keeps them close."""
    base = rng.integers(40, 200, size=(n, 1, 1, 3))
    ramp = np.linspace(0, 40, size)[None, None, :, None]
    return np.broadcast_to(base + ramp, (n, size, size, 3)).round().astype(np.uint8)


def _jpeg_bytes(image: np.ndarray, quality: int = 95) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def write_cifar_npz(path: Path, n_train: int = 12, n_test: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """The project's JPEG npz format; returns the source images (N, 3, 32, 32) and labels per split."""
    rng = np.random.default_rng(seed)
    arrays: dict[str, np.ndarray] = {"classes": np.array(CIFAR10_CLASSES)}
    expected: dict[str, np.ndarray] = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = smooth_images(rng, n)
        blobs = [_jpeg_bytes(img) for img in images]
        arrays[f"{split}_jpeg"] = np.frombuffer(b"".join(blobs), dtype=np.uint8)
        arrays[f"{split}_offsets"] = np.concatenate([[0], np.cumsum([len(b) for b in blobs])]).astype(np.int64)
        arrays[f"{split}_labels"] = np.sort(rng.integers(0, 10, n)).astype(np.int64)
        expected[f"{split}_x"] = images.transpose(0, 3, 1, 2)
        expected[f"{split}_y"] = arrays[f"{split}_labels"]
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, **arrays)
    return expected


def solid_image(colour: tuple[int, int, int], width: int, height: int) -> Image.Image:
    """A one-colour RGB image: resizing and cropping leave its pixels unchanged."""
    return Image.new("RGB", (width, height), colour)


CLASS_COLOURS = {"cat": (200, 30, 30), "dog": (30, 200, 30), "emu": (30, 30, 200)}


def write_imagefolder(root: Path, per_class: dict[str, tuple[int, int]]) -> None:
    """root/{train,test}/<class>/*.png of solid class colours (CLASS_COLOURS), odd sizes, plus a stray text file.

    ``per_class`` maps class name to (n_train, n_test).
    """
    for cls, counts in per_class.items():
        for split, n in zip(("train", "test"), counts):
            folder = root / split / cls
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                solid_image(CLASS_COLOURS[cls], 40 + 3 * i, 48).save(folder / f"{i:03d}.png")
    (root / "train" / "README.txt").write_text("not an image")


@dataclass
class WebVisionFixture:
    """A tiny WebVision 1.0 tree: train/val labels kept (class < num_classes) and ImageNet val labels."""

    root: Path
    train_y: list[int]
    val_y: list[int]
    imagenet_y: list[int]


def write_webvision(root: Path, labels: tuple[int, ...] = (0, 1, 49, 50, 51, 0), num_classes: int = 50,
                    with_imagenet: bool = True) -> WebVisionFixture:
    """root/info/{train_filelist_google,val_filelist,synsets}.txt, google/qNNNN/*.jpg, val_images_256/*.jpg,
    and optionally imagenet_val/<class index>/*.JPEG; images for classes >= num_classes are listed only."""
    (root / "info").mkdir(parents=True, exist_ok=True)
    (root / "info" / "synsets.txt").write_text("".join(f"n{k:08d} class {k}\n" for k in range(1000)))
    train_lines, val_lines = [], []
    for i, label in enumerate(labels):
        rel = f"google/q{label + 1:04d}/{i:08d}.jpg"
        val = f"val{i + 1:06d}.jpg"
        train_lines.append(f"{rel} {label}")
        val_lines.append(f"{val} {label}")
        if label < num_classes:
            for path, size in ((root / rel, (60, 45)), (root / "val_images_256" / val, (256, 256))):
                path.parent.mkdir(parents=True, exist_ok=True)
                solid_image((label * 5, 100, 150), *size).save(path, format="JPEG", quality=95)
    (root / "info" / "train_filelist_google.txt").write_text("\n".join(train_lines) + "\n")
    (root / "info" / "val_filelist.txt").write_text("\n".join(val_lines) + "\n")
    imagenet_y = []
    if with_imagenet:
        for label in (0, 49):
            folder = root / "imagenet_val" / str(label)
            folder.mkdir(parents=True, exist_ok=True)
            solid_image((label * 5, 100, 150), 80, 64).save(folder / "ILSVRC2012_val_00000001.JPEG", format="JPEG")
            imagenet_y.append(label)
    kept = [label for label in labels if label < num_classes]
    return WebVisionFixture(root, kept, kept, imagenet_y)


# ---- runs: result.json records as train writes them, reduced to what the readers use ----


def run_record(epochs: list[dict[str, Any]], config: dict[str, Any] | None = None, **entries: Any) -> RunRecord:
    """The record of a finished run whose result.json holds ``epochs``, ``config`` over a placeholder one and
    ``entries`` over the rest (accuracies from ``epochs``, placeholders elsewhere), checked as ``runs`` checks it."""
    test = [e["test_acc"] for e in epochs]
    result = {
        "config": {"dataset": "digits", "loss": "ce", "noise": "symmetric:0.6", "seed": 0, "model": "cnn-small",
                   "epochs": len(epochs), **(config or {})},
        "epochs": epochs, "final_test_acc": test[-1], "best_test_acc": max(test),
        "last10_test_acc": last_epochs_mean(test),
        "wall_time_s": 0.0, "device": "cpu", "date": "2026-12-03T10:00:00+00:00", "data_source": "fixture",
        "num_train": 0, "num_test": 0, "noise": {}, **entries,
    }
    check(result, RESULT_SCHEMA, "fixture")
    return RunRecord.from_result(Path("run"), result)


def fake_run(loss: str, seed: int, test: list[float], noise: str = "symmetric:0.6", noisy_fit: float = 0.5,
             realised: float = 0.6, columns: dict[str, list] | None = None, config: dict | None = None,
             **entries: Any) -> RunRecord:
    """A finished run, its result.json reduced to what evidence reads; ``columns`` sets further per-epoch values,
    ``config`` further config fields, ``entries`` further result.json entries."""
    epochs = [{"test_acc": t, "flipped_fit_noisy": noisy_fit, "flipped_fit_clean": 0.2, "unflipped_acc": 0.9}
              for t in test]
    for name, values in (columns or {}).items():
        for epoch, value in zip(epochs, values, strict=True):
            epoch[name] = value
    return run_record(epochs, {"loss": loss, "seed": seed, "noise": noise, **(config or {})},
                      noise={"realised_rate": realised}, **entries)


def dated(day: str, minutes: float) -> dict[str, Any]:
    """The date and wall time a run's result.json records."""
    return {"date": f"{day}T10:00:00+00:00", "wall_time_s": 60 * minutes}


def readable_run(loss: str, seed: int, test: list[float], noise: str = "symmetric:0.6", noisy_fit: float = 0.5,
                 recipe: str = "digits-cpu", config: dict[str, Any] | None = None, **entries: Any) -> RunRecord:
    """``fake_run`` as ``runs.read_result`` reads it back: ``recipe``'s whole config for this loss, noise, seed and
    epoch count (``config`` over it), numbered epochs, a date and wall time; ``entries`` added or replaced."""
    fields = {"loss": loss, "seed": seed, "noise": noise, "epochs": len(test), "milestones": ()} | (config or {})
    whole = get_recipe(recipe, **fields).to_dict()
    return fake_run(loss, seed, test, noise, noisy_fit, columns={"epoch": list(range(1, len(test) + 1))},
                    config=whole, **(dated("2026-12-04", 60.0) | entries))


def write_run(root: Path, run: RunRecord, finished: bool = True) -> Path:
    """``run`` as a grid's run folder under ``root`` (ROOT/<loss>/<noise>/seed<k>): its epochs.csv, and its
    result.json once ``finished`` (a run still under way has only its logs)."""
    folder = run_dir(root, Config.from_dict(run.config))
    folder.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(list(run.epochs)).to_csv(folder / EPOCHS_CSV, index=False)
    if finished:
        (folder / RESULT).write_text(json.dumps(run.result))
    return folder
