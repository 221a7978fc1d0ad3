"""Data sets by name, and the batch pipelines that feed them to a model.

Every loader returns a :class:`DataSplit` of whole tensors: images as uint8 (N, C, H, W), vectors as
float32 (N, D), labels as int64.  Holding a data set whole lets :class:`DeviceBatches` shuffle,
augment and normalise mini-batches on the accelerator itself, so the GPU is never starved by Python
workers; :func:`dataloader_batches` is the classic torchvision ``DataLoader`` path, kept for data that
does not fit and as the benchmark baseline.

Where each data set is looked for (``root`` is the ``load_dataset`` argument, default ``data``):

- ``toy2d``, ``digits``: generated / bundled with scikit-learn, ``root`` is ignored.
- ``cifar10``, ``cifar100``: ``root/cifar-10-batches-py`` or ``root/cifar-100-python`` (the official
  python pickle batches); ``download=True`` fetches the official archive and checks its md5.
- ``cifar10-npz``: the project's JPEG npz; ``root`` is the ``.npz`` file or a folder holding
  ``cifar10_jpeg.npz``.
- ``cifar10n``, ``cifar100n``: the CIFAR folder above plus ``root/CIFAR-10_human.pt`` or
  ``root/CIFAR-100_human.pt`` (CIFAR-N, Wei et al., ICLR 2022).
- ``imagefolder:PATH``: ``PATH/train/<class>/*`` and ``PATH/test/<class>/*``.
- ``webvision-mini``: a WebVision 1.0 folder (``root`` or ``root/webvision``), see
  :func:`load_webvision_mini`.
"""

from __future__ import annotations

import hashlib
import inspect
import io
import math
import os
import pickle
import tarfile
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from torchvision import transforms as T
from torchvision.datasets.utils import calculate_md5, check_integrity
from torchvision.transforms.functional import to_pil_image

from .io import torch_load
from .noise import NoisyLabels, corrupt_labels
from .registry import unknown

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class DataNotFoundError(ValueError):
    """A data set's files are not where they were looked for (and were not downloaded)."""


class DataIntegrityError(ValueError):
    """A data file failed its checksum or consistency check."""


@dataclass
class DataSplit:
    """A data set held whole: train and test tensors, class names, normalisation and provenance.

    ``train_y`` are the clean (as published) labels; ``noisy_sets`` holds real-world noisy label sets
    aligned with ``train_x``; ``extra_test_sets`` holds further evaluation sets (WebVision: the
    ImageNet validation images of the same classes) as ``name -> (x, y)``.
    """

    name: str
    num_classes: int
    classes: list[str]
    train_x: Tensor
    train_y: Tensor
    test_x: Tensor
    test_y: Tensor
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None
    noisy_sets: dict[str, Tensor] = field(default_factory=dict)
    source: str = ""
    extra_test_sets: dict[str, tuple[Tensor, Tensor]] = field(default_factory=dict)

    @property
    def is_image(self) -> bool:
        """True for (N, C, H, W) image tensors, False for (N, D) vectors."""
        return self.train_x.dim() == 4

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one input, as ``make_model`` expects it."""
        return tuple(self.train_x.shape[1:])

    def noisy_labels(self, spec: str, seed: int) -> NoisyLabels:
        """Noise ``spec`` applied to the training labels (``human:SET`` takes a real-world set), by ``noise``."""
        return corrupt_labels(spec, self.train_y, self.num_classes, seed, dataset=self.name, classes=self.classes,
                              label_sets=self.noisy_sets, features=self.train_x)


# ----------------------------------------------------------------------------------------------
# Files: download, checksums, archives
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteFile:
    """A file the loaders may download: where from, its md5 (None where none is published), its name."""

    url: str
    md5: str | None
    filename: str


REMOTE_FILES: dict[str, RemoteFile] = {
    "cifar10": RemoteFile(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        "cifar-10-python.tar.gz",
    ),
    "cifar100": RemoteFile(
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        "cifar-100-python.tar.gz",
    ),
    # CIFAR-N publishes no checksum: these files are verified by label alignment instead.
    "cifar10n": RemoteFile(
        "https://github.com/UCSC-REAL/cifar-10-100n/raw/main/data/CIFAR-10_human.pt",
        None,
        "CIFAR-10_human.pt",
    ),
    "cifar100n": RemoteFile(
        "https://github.com/UCSC-REAL/cifar-10-100n/raw/main/data/CIFAR-100_human.pt",
        None,
        "CIFAR-100_human.pt",
    ),
}


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, recorded in ``DataSplit.source`` so results name their exact inputs."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, dest: Path) -> None:
    """Copy ``url`` (http(s) or file://) to ``dest`` through a temporary file, so no partial file remains."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
        os.replace(tmp_name, dest)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)


def verify_md5(path: Path, md5: str | None) -> None:
    """Raise DataIntegrityError when ``path`` does not have the expected md5 (None: nothing to check)."""
    if md5 is not None and not check_integrity(str(path), md5):
        raise DataIntegrityError(
            f"{path} is corrupted: md5 {calculate_md5(str(path))}, expected {md5}. "
            "Delete it and download again."
        )


def fetch(remote: RemoteFile, root: Path) -> Path:
    """Download ``remote`` into ``root`` unless it is already there, then verify its md5."""
    path = root / remote.filename
    if not path.exists():
        _download(remote.url, path)
    verify_md5(path, remote.md5)
    return path


def _extract_tar(archive: Path, dest: Path) -> None:
    """Unpack a tar archive, refusing members that would land outside ``dest``."""
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")


def _not_found(what: str, path: Path, how: str) -> DataNotFoundError:
    return DataNotFoundError(f"{what} not found at {path}. {how}")


# ----------------------------------------------------------------------------------------------
# Shared tensor helpers
# ----------------------------------------------------------------------------------------------


def channel_stats(x: Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Exact per-channel mean and std (0..1 scale) of uint8 images, via value histograms (no float copy)."""
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise ValueError(f"channel_stats needs uint8 (N, C, H, W) images, got {x.dtype} {tuple(x.shape)}")
    values = torch.arange(256, dtype=torch.float64) / 255.0
    means, stds = [], []
    for c in range(x.shape[1]):
        counts = torch.bincount(x[:, c].reshape(-1), minlength=256).to(torch.float64).cpu()
        total = counts.sum()
        mean = (counts * values).sum() / total
        var = (counts * (values - mean) ** 2).sum() / total
        means.append(float(mean))
        stds.append(float(var.sqrt()))
    return tuple(means), tuple(stds)


def stratified_indices(labels: Tensor, n: int, seed: int) -> Tensor:
    """Sorted indices of ``n`` samples drawn at random within each class, in proportion to class sizes.

    Quotas are floor(n * share) plus one for the classes with the largest remainders, so the counts
    are exact and sum to ``n``; which samples are kept depends only on ``seed``.
    """
    total = labels.numel()
    if not 1 <= n <= total:
        raise ValueError(f"subset size must be in [1, {total}], got {n}")
    labels = labels.cpu()
    counts = torch.bincount(labels)
    exact = counts.to(torch.float64) * n / total
    quota = exact.floor().long()
    shortfall = n - int(quota.sum())
    by_remainder = torch.argsort(exact - quota, descending=True, stable=True)
    quota[by_remainder[:shortfall]] += 1
    gen = torch.Generator().manual_seed(seed)
    perm = torch.randperm(total, generator=gen)
    order = perm[torch.argsort(labels[perm], stable=True)]  # grouped by class, random within class
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(total) - starts[labels[order]]
    keep = order[rank < quota[labels[order]]]
    return keep.sort().values


def subsample(split: DataSplit, subset: int | None, test_subset: int | None, seed: int) -> DataSplit:
    """Keep a stratified ``subset`` of training samples and ``test_subset`` of test samples.

    ``test_subset=None`` means ``subset // 5`` when a train subset is asked for (capped at the test
    size), so CPU-scale runs also evaluate cheaply; otherwise all test samples are kept.  Noisy label
    sets follow the train selection; ``extra_test_sets`` are kept whole.
    """
    if subset is not None:
        idx = stratified_indices(split.train_y, subset, seed)
        split = replace(
            split,
            train_x=split.train_x[idx],
            train_y=split.train_y[idx],
            noisy_sets={k: v[idx] for k, v in split.noisy_sets.items()},
        )
        if test_subset is None:
            test_subset = min(max(subset // 5, 1), split.test_y.numel())
    if test_subset is not None and test_subset != split.test_y.numel():
        idx = stratified_indices(split.test_y, test_subset, seed + 1)
        split = replace(split, test_x=split.test_x[idx], test_y=split.test_y[idx])
    return split


def _labels(values: Sequence[int] | np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.int64))


def label_array(values: Any, where: str, num_classes: int, length: int | None = None) -> Tensor:
    """Labels read from a file as int64, or DataIntegrityError naming ``where`` unless they are a 1-D
    integer array (of ``length`` entries when given) with every label in [0, num_classes)."""
    array = np.asarray(values)
    if array.ndim != 1 or array.dtype.kind not in "iu" or (length is not None and len(array) != length):
        wanted = f"{length} " if length is not None else ""
        raise DataIntegrityError(f"{where} holds {array.dtype} values of shape {array.shape}, expected "
                                 f"{wanted}integer labels in one dimension")
    if array.size and not 0 <= array.min() <= array.max() < num_classes:
        raise DataIntegrityError(f"{where} has labels from {array.min()} to {array.max()}, "
                                 f"allowed: 0 to {num_classes - 1}")
    return _labels(array)


def _image_split(name: str, classes: list[str], train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor],
                 source: str, **extra) -> DataSplit:
    """Build an image DataSplit, with normalisation statistics taken from the training images.

    A split without training or test images is refused: no model is trained, or scored, on nothing."""
    for part, (_, labels) in (("train", train), ("test", test)):
        if not len(labels):
            raise DataNotFoundError(f"data set {name!r} has no {part} images")
    mean, std = channel_stats(train[0])
    return DataSplit(name, len(classes), classes, train[0], train[1], test[0], test[1],
                     mean=mean, std=std, source=source, **extra)


def _decode_rgb(blob: bytes | np.ndarray) -> np.ndarray:
    with Image.open(io.BytesIO(blob)) as img:
        return np.asarray(img if img.mode == "RGB" else img.convert("RGB"))


def load_images(paths: Sequence[Path], image_size: int) -> Tensor:
    """Read image files into uint8 (N, 3, S, S): shorter side resized to S (bilinear), then centre-cropped."""
    if image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size}")
    out = np.empty((len(paths), image_size, image_size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        with Image.open(path) as img:
            out[i] = np.asarray(_resize_center_crop(img.convert("RGB"), image_size))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _resize_center_crop(img: Image.Image, size: int) -> Image.Image:
    width, height = img.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_w, new_h) != (width, height):
        img = img.resize((new_w, new_h), Image.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return img.crop((left, top, left + size, top + size))


# ----------------------------------------------------------------------------------------------
# Loaders
# ----------------------------------------------------------------------------------------------


def load_toy2d(root: Path, download: bool, seed: int, n_train: int = 400, n_test: int = 2000,
               noise: float = 0.25) -> DataSplit:
    """Two interleaved half-moons with Gaussian jitter (overlapping classes): the binary 2-D toy task."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n_train + n_test, noise=noise, random_state=seed)
    x = torch.as_tensor(x, dtype=torch.float32)
    y = _labels(y)
    return DataSplit("toy2d", 2, ["moon0", "moon1"], x[:n_train], y[:n_train], x[n_train:], y[n_train:],
                     source=f"sklearn.datasets.make_moons(noise={noise}, random_state={seed})")


def load_digits(root: Path, download: bool, seed: int) -> DataSplit:
    """scikit-learn's 8x8 digits as uint8 (N, 1, 8, 8) images, fixed stratified 1437/360 split."""
    from sklearn.datasets import load_digits as sk_digits
    from sklearn.model_selection import train_test_split

    bunch = sk_digits()
    images = np.clip(bunch.images * 16, 0, 255).astype(np.uint8)[:, None]
    x_tr, x_te, y_tr, y_te = train_test_split(images, bunch.target, test_size=360, random_state=0,
                                              stratify=bunch.target)
    classes = [str(c) for c in range(10)]
    return _image_split("digits", classes, (torch.from_numpy(x_tr), _labels(y_tr)),
                        (torch.from_numpy(x_te), _labels(y_te)),
                        "sklearn.datasets.load_digits, train_test_split(test_size=360, random_state=0)")


@dataclass(frozen=True)
class CifarLayout:
    """Where the official python CIFAR archive keeps things."""

    key: str
    folder: str
    train_files: tuple[str, ...]
    test_files: tuple[str, ...]
    meta_file: str
    label_key: str
    names_key: str


CIFAR_LAYOUTS: dict[str, CifarLayout] = {
    "cifar10": CifarLayout("cifar10", "cifar-10-batches-py", tuple(f"data_batch_{i}" for i in range(1, 6)),
                           ("test_batch",), "batches.meta", "labels", "label_names"),
    "cifar100": CifarLayout("cifar100", "cifar-100-python", ("train",), ("test",), "meta",
                            "fine_labels", "fine_label_names"),
}


# What the CIFAR python batches need to unpickle: numpy arrays and, in protocol-2 pickles written by
# Python 3, bytes rebuilt through codecs.  Anything else (os.system, eval, ...) is refused.
_CIFAR_PICKLE_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode"),
})


class _CifarUnpickler(pickle.Unpickler):
    """An unpickler that builds only the objects a CIFAR batch holds: a planted payload cannot run."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _CIFAR_PICKLE_GLOBALS:
            raise DataIntegrityError(
                f"{self.path} asks to unpickle {module}.{name}, which a CIFAR batch never holds; "
                "refusing to load it (delete the extracted folder to fetch a clean copy)")
        return super().find_class(module, name)

    def __init__(self, handle: Any, path: Path) -> None:
        super().__init__(handle, encoding="latin1")
        self.path = path


def _unpickle(path: Path) -> dict:
    """Read one CIFAR python batch with the restricted unpickler (the extracted files carry no checksum)."""
    with open(path, "rb") as handle:
        return _CifarUnpickler(handle, path).load()


def _cifar_folder(layout: CifarLayout, root: Path, download: bool) -> Path:
    """The extracted CIFAR folder, extracting (after an md5 check) or downloading the archive as needed."""
    folder = root / layout.folder
    if folder.is_dir():
        return folder
    remote = REMOTE_FILES[layout.key]
    if not download and not (root / remote.filename).exists():
        raise _not_found(f"{layout.key} ({layout.folder})", folder,
                         f"Pass download=True to fetch {remote.url} (md5 {remote.md5}) into {root}.")
    _extract_tar(fetch(remote, root), root)
    return folder


def _read_cifar_batches(folder: Path, files: tuple[str, ...], label_key: str) -> tuple[Tensor, Tensor]:
    batches = [_unpickle(folder / name) for name in files]
    data = np.concatenate([b["data"] for b in batches]).reshape(-1, 3, 32, 32)
    labels = np.concatenate([np.asarray(b[label_key]) for b in batches])
    return torch.from_numpy(np.ascontiguousarray(data, dtype=np.uint8)), _labels(labels)


def load_cifar(layout: CifarLayout, root: Path, download: bool, seed: int) -> DataSplit:
    """Official CIFAR-10/100 python batches as uint8 (N, 3, 32, 32)."""
    folder = _cifar_folder(layout, root, download)
    classes = list(_unpickle(folder / layout.meta_file)[layout.names_key])
    train = _read_cifar_batches(folder, layout.train_files, layout.label_key)
    test = _read_cifar_batches(folder, layout.test_files, layout.label_key)
    remote = REMOTE_FILES[layout.key]
    return _image_split(layout.key, classes, train, test, f"{folder} (from {remote.url}, md5 {remote.md5})")


NPZ_FILENAME = "cifar10_jpeg.npz"
NPZ_ENV = "OGC_CIFAR_NPZ"  # environment variable naming the project's JPEG CIFAR-10, when set


def find_cifar_npz(explicit: str | os.PathLike[str] | None = None, folders: Sequence[Path] = ()) -> Path | None:
    """The project's JPEG CIFAR-10 if it is at hand: ``explicit``, then $OGC_CIFAR_NPZ, then ``folders``.

    A path given explicitly or by the environment must exist (a typo should not silently fall back to
    other data); the folders are only searched.  None when nothing is found.
    """
    for where, value in (("the given path", explicit), (f"${NPZ_ENV}", os.environ.get(NPZ_ENV))):
        if value:
            path = Path(value).expanduser()
            if not path.is_file():
                raise DataNotFoundError(
                    f"{where} {str(path)!r} is not a file; expected the {NPZ_FILENAME} copy of CIFAR-10")
            return path.resolve()
    return next((Path(f) / NPZ_FILENAME for f in folders if (Path(f) / NPZ_FILENAME).is_file()), None)


def decode_jpeg_blob(blob: np.ndarray, offsets: np.ndarray) -> Tensor:
    """Decode images stored as concatenated JPEG files (image i = blob[offsets[i]:offsets[i+1]]) to uint8 NCHW.

    One Pillow decode per image straight into a preallocated array; the layout change is one copy.
    """
    bounds = offsets.tolist()
    first = _decode_rgb(blob[bounds[0]:bounds[1]])
    out = np.empty((len(bounds) - 1, *first.shape), dtype=np.uint8)
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        out[i] = _decode_rgb(blob[a:b])
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


NPZ_KEYS = ("classes", "train_jpeg", "train_offsets", "train_labels", "test_jpeg", "test_offsets", "test_labels")


def _npz_images(npz: Any, part: str, num_classes: int, path: Path) -> tuple[Tensor, Tensor]:
    """The images and labels of one part (train or test) of the JPEG npz, labels checked against the images."""
    images = decode_jpeg_blob(npz[f"{part}_jpeg"], npz[f"{part}_offsets"])
    return images, label_array(npz[f"{part}_labels"], f"{path} {part}_labels", num_classes, len(images))


def load_cifar10_npz(root: Path, download: bool, seed: int) -> DataSplit:
    """CIFAR-10 from the project's JPEG npz (keys classes, {train,test}_{jpeg,offsets,labels})."""
    path = root if root.suffix == ".npz" else root / NPZ_FILENAME
    if not path.exists():
        raise _not_found("cifar10_jpeg.npz", root,
                         "It is the project's JPEG copy of CIFAR-10 (see shared/data/README.md); pass its path "
                         "or folder as root, or use the official 'cifar10' with download=True.")
    try:
        with np.load(path) as npz:
            missing = [k for k in NPZ_KEYS if k not in npz.files]
            if missing:
                raise DataIntegrityError(f"{path} lacks arrays {missing}; it has {sorted(npz.files)}")
            classes = [str(c) for c in npz["classes"]]
            train, test = (_npz_images(npz, part, len(classes), path) for part in ("train", "test"))
    except DataIntegrityError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile) as err:  # not a zip, pickled objects, undecodable JPEG
        raise DataIntegrityError(f"{path} is not a readable {NPZ_FILENAME}: {err}") from None
    return _image_split("cifar10-npz", classes, train, test, f"{path} sha256 {sha256_of(path)}")


@dataclass(frozen=True)
class CifarNSpec:
    """A CIFAR-N label file: the CIFAR set it relabels and its label sets (our name -> file key)."""

    key: str
    base: str
    sets: dict[str, str]


CIFAR_N_SPECS: dict[str, CifarNSpec] = {
    "cifar10n": CifarNSpec("cifar10n", "cifar10", {
        "aggregate": "aggre_label", "random1": "random_label1", "random2": "random_label2",
        "random3": "random_label3", "worse": "worse_label"}),
    "cifar100n": CifarNSpec("cifar100n", "cifar100", {"noisy": "noisy_label"}),
}


def _load_label_table(path: Path) -> dict:
    """Load a CIFAR-N .pt file without executing arbitrary pickled code (numpy arrays allow-listed)."""
    reconstruct = (np._core if hasattr(np, "_core") else np.core).multiarray._reconstruct
    names = ("numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct")
    int_dtypes = [type(np.dtype(t)) for t in (np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16,
                                               np.uint32, np.uint64)]
    allowed = [*((reconstruct, name) for name in names), np.ndarray, np.dtype, *int_dtypes]
    table = torch_load(path, "CIFAR-N label file", DataIntegrityError, allowed)
    if not isinstance(table, dict):
        raise DataIntegrityError(f"{path} holds a {type(table).__name__}, expected a dict of label arrays")
    return table


def check_cifar_n(table: dict, spec: CifarNSpec, clean: Tensor, num_classes: int, path: Path) -> dict[str, Tensor]:
    """Check a CIFAR-N table against the official train labels (same clean labels, in order); return its sets.

    Agreement of all 50,000 clean labels in order is what ties each human label to its image.
    """
    missing = sorted({"clean_label", *spec.sets.values()} - set(table))
    if missing:
        raise DataIntegrityError(f"{path} lacks keys {missing}; it has {sorted(table)}")
    file_clean = label_array(table["clean_label"], f"{path} entry 'clean_label'", num_classes)
    if file_clean.shape != clean.shape or not torch.equal(file_clean, clean):
        wrong = (file_clean != clean).sum().item() if file_clean.shape == clean.shape else "all"
        raise DataIntegrityError(
            f"{path} is not aligned with the official {spec.base} train labels "
            f"({len(file_clean)} labels vs {len(clean)}, {wrong} differ)")
    return {name: label_array(table[key], f"{path} entry {key!r}", num_classes, len(clean))
            for name, key in spec.sets.items()}


def load_cifar_n(spec: CifarNSpec, root: Path, download: bool, seed: int) -> DataSplit:
    """CIFAR-10N / CIFAR-100N: the official CIFAR split plus the human label sets in ``noisy_sets``."""
    split = load_cifar(CIFAR_LAYOUTS[spec.base], root, download, seed)
    remote = REMOTE_FILES[spec.key]
    path = root / remote.filename
    if not path.exists() and not download:
        raise _not_found(f"{spec.key} labels", path, f"Pass download=True to fetch {remote.url}.")
    path = fetch(remote, root)
    sets = check_cifar_n(_load_label_table(path), spec, split.train_y, split.num_classes, path)
    source = f"{split.source}; labels {path} (from {remote.url}, sha256 {sha256_of(path)}, aligned)"
    return replace(split, name=spec.key, noisy_sets=sets, source=source)


def official_order_from_class_sorted(sorted_labels: Tensor, official_labels: Tensor) -> Tensor:
    """Index map from the official training order into a copy sorted by class (stable within a class).

    Entry i is the position, in the class-sorted copy, of the official sample i: its class's first
    position plus its rank among that class's samples in official order.  Raises DataIntegrityError
    when the copy is not sorted by class or the class counts differ.
    """
    k = int(max(sorted_labels.max(), official_labels.max())) + 1
    if bool((sorted_labels[1:] < sorted_labels[:-1]).any()):
        raise DataIntegrityError("the class-sorted copy's training labels are not sorted by class")
    counts_sorted = torch.bincount(sorted_labels, minlength=k)
    counts_official = torch.bincount(official_labels, minlength=k)
    if not torch.equal(counts_sorted, counts_official):
        raise DataIntegrityError(
            f"class counts differ: {counts_sorted.tolist()} in the class-sorted copy vs {counts_official.tolist()} "
            "in the label file's clean labels")
    order = torch.argsort(official_labels, stable=True)  # official indices grouped by class, official order within
    mapping = torch.empty_like(official_labels)
    mapping[order] = torch.arange(len(official_labels))
    return mapping


def load_cifar10n_npz(root: Path, download: bool, seed: int) -> DataSplit:
    """CIFAR-10N's human labels on the project's JPEG CIFAR-10: the npz reordered to the official order.

    ``root`` is a folder holding cifar10_jpeg.npz and CIFAR-10_human.pt, or the npz's path with the
    label file beside it.  The npz stores each class's images in official order, so the label file's
    clean labels fix the map (see ``official_order_from_class_sorted``); the CIFAR-N checks then run on
    the reordered split as for ``cifar10n``.
    """
    split = load_cifar10_npz(root, download, seed)
    folder = root.parent if root.suffix == ".npz" else root
    spec, remote = CIFAR_N_SPECS["cifar10n"], REMOTE_FILES["cifar10n"]
    path = folder / remote.filename
    if not path.exists() and not download:
        raise _not_found("cifar10n labels", path,
                         f"Put {remote.filename} beside {NPZ_FILENAME}, or pass download=True.")
    path = fetch(remote, folder)
    table = _load_label_table(path)
    if "clean_label" not in table:
        raise DataIntegrityError(f"{path} lacks key 'clean_label'; it has {sorted(table)}")
    clean = label_array(table["clean_label"], f"{path} entry 'clean_label'", split.num_classes)
    mapping = official_order_from_class_sorted(split.train_y, clean)
    official = replace(split, train_x=split.train_x[mapping], train_y=split.train_y[mapping])
    sets = check_cifar_n(table, spec, official.train_y, official.num_classes, path)
    as_npy = io.BytesIO()
    np.save(as_npy, mapping.numpy().astype("<i8"))  # hashed as an int64 .npy file, as shared/data/README.md does
    map_hash = hashlib.sha256(as_npy.getvalue()).hexdigest()
    source = (f"{split.source}; labels {path} (sha256 {sha256_of(path)}), "
              f"official order by class rank (map sha256 {map_hash})")
    return replace(official, name="cifar10n-npz", noisy_sets=sets, source=source)


def _scan_class_tree(folder: Path, classes: list[str]) -> tuple[list[Path], Tensor]:
    """Image files under ``folder/<class>/`` in sorted order, with the class index as label."""
    unknown = sorted(d.name for d in folder.iterdir() if d.is_dir() and d.name not in classes)
    if unknown:
        raise ValueError(f"{folder} has class folders {unknown} that are not among the training classes {classes}")
    paths, labels = [], []
    for index, name in enumerate(classes):
        files = sorted(p for p in (folder / name).glob("*") if p.suffix.lower() in IMAGE_EXTENSIONS) \
            if (folder / name).is_dir() else []
        paths += files
        labels += [index] * len(files)
    return paths, _labels(labels)


def load_imagefolder(root: Path, download: bool, seed: int, image_size: int = 32) -> DataSplit:
    """A user's image tree ``root/{train,test}/<class>/*``; labels are the sorted class folder names.

    Images are resized (shorter side to ``image_size``, default 32 to match CIFAR-scale models) and
    centre-cropped to a square.
    """
    train_dir, test_dir = root / "train", root / "test"
    for folder in (train_dir, test_dir):
        if not folder.is_dir():
            raise _not_found("image folder", folder, "Expected PATH/train/<class>/* and PATH/test/<class>/*.")
    classes = sorted(d.name for d in train_dir.iterdir() if d.is_dir())
    if not classes:
        raise DataNotFoundError(f"{train_dir} has no class folders")
    train_paths, train_y = _scan_class_tree(train_dir, classes)
    test_paths, test_y = _scan_class_tree(test_dir, classes)
    for folder, labels in ((train_dir, train_y), (test_dir, test_y)):
        empty = [c for i, c in enumerate(classes) if not (labels == i).any()]
        if empty:
            raise DataNotFoundError(
                f"{root}: no {folder.name} images for class {', '.join(map(repr, empty))} (looked in "
                f"{folder}/<class>/ for {', '.join(IMAGE_EXTENSIONS)}); every class needs train and test images")
    return _image_split(f"imagefolder:{root}", classes, (load_images(train_paths, image_size), train_y),
                        (load_images(test_paths, image_size), test_y), f"{root} (image_size {image_size})")


WEBVISION_HOWTO = (
    "WebVision 1.0 is not downloaded automatically (over 100 GB). Get the resized images and the info "
    "files from https://data.vision.ee.ethz.ch/cvl/webvision/download.html and point root at the folder "
    "holding info/train_filelist_google.txt, info/val_filelist.txt, google/ and val_images_256/."
)


def _read_filelist(path: Path, num_classes: int) -> tuple[list[str], list[int]]:
    """Entries ``relative/path.jpg label`` of a WebVision file list whose label is below ``num_classes``."""
    names, labels = [], []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            fields = line.split()
            if len(fields) != 2 or not fields[1].isdigit():
                raise DataIntegrityError(f"{path} line {number}: expected 'relative/path.jpg label' with a "
                                         f"label from 0, got {line!r}")
            if int(fields[1]) < num_classes:
                names.append(fields[0])
                labels.append(int(fields[1]))
    return names, labels


def _webvision_classes(info: Path, num_classes: int) -> list[str]:
    synsets = info / "synsets.txt"
    if not synsets.exists():
        return [str(c) for c in range(num_classes)]
    return [line.split()[0] for line in synsets.read_text().splitlines()[:num_classes]]


def load_webvision_mini(root: Path, download: bool, seed: int, image_size: int = 224,
                        num_classes: int = 50) -> DataSplit:
    """WebVision 1.0, first ``num_classes`` classes, Google images only (the "mini" set of the literature).

    Expected layout (the official resized release)::

        root/info/train_filelist_google.txt   lines "google/q0001/xxx.jpg 0"
        root/info/val_filelist.txt            lines "val000001.jpg 0"   (images in root/val_images_256/)
        root/info/synsets.txt                 optional: class i's WordNet id on line i (class names)
        root/imagenet_val/<class index>/*     optional: ImageNet val images of the same classes, one folder
                                              per WebVision class index 0..num_classes-1

    The test set is the WebVision validation set; ImageNet val, where present, goes to
    ``extra_test_sets["imagenet-val"]``.  ``download=True`` is refused (see WEBVISION_HOWTO).
    """
    base = next((p for p in (root, root / "webvision") if (p / "info" / "train_filelist_google.txt").exists()), None)
    if base is None:
        raise _not_found("WebVision 1.0 (info/train_filelist_google.txt)", root, WEBVISION_HOWTO)
    info = base / "info"
    classes = _webvision_classes(info, num_classes)
    train_names, train_y = _read_filelist(info / "train_filelist_google.txt", num_classes)
    val_names, val_y = _read_filelist(info / "val_filelist.txt", num_classes)
    train = (load_images([base / n for n in train_names], image_size), _labels(train_y))
    test = (load_images([base / "val_images_256" / n for n in val_names], image_size), _labels(val_y))
    extra = {}
    imagenet = base / "imagenet_val"
    if imagenet.is_dir():
        paths, labels = _scan_class_tree(imagenet, [str(c) for c in range(num_classes)])
        if not paths:
            raise DataNotFoundError(f"{imagenet} holds no images; fill imagenet_val/<class index>/ or remove it")
        extra["imagenet-val"] = (load_images(paths, image_size), labels)
    return _image_split("webvision-mini", classes, train, test,
                        f"{base} (WebVision 1.0 google, {num_classes} classes, image_size {image_size})",
                        extra_test_sets=extra)


DATASETS: dict[str, Callable[..., DataSplit]] = {
    "toy2d": load_toy2d,
    "digits": load_digits,
    **{key: partial(load_cifar, layout) for key, layout in CIFAR_LAYOUTS.items()},
    "cifar10-npz": load_cifar10_npz,
    "cifar10n-npz": load_cifar10n_npz,
    **{key: partial(load_cifar_n, spec) for key, spec in CIFAR_N_SPECS.items()},
    "imagefolder": load_imagefolder,
    "webvision-mini": load_webvision_mini,
}
# the names as a user writes them (imagefolder takes its folder), for errors and help
DATASET_NAMES = tuple("imagefolder:PATH" if key == "imagefolder" else key for key in DATASETS)


def _loader_options(loader: Callable[..., DataSplit]) -> set[str]:
    fixed = {"root", "download", "seed"}
    return {p for p in inspect.signature(loader).parameters if p not in fixed}


def load_dataset(name: str, root: str | Path = "data", download: bool = False, seed: int = 0,
                 subset: int | None = None, test_subset: int | None = None, **options) -> DataSplit:
    """Load a data set by name (``imagefolder:PATH`` names its folder), optionally a stratified subset.

    ``subset`` keeps that many training samples (exact per-class quotas, chosen by ``seed``); the
    test set is cut to ``test_subset`` (default ``subset // 5``, see :func:`subsample`).  Extra
    ``options`` go to the loader (e.g. ``image_size`` for imagefolder and webvision-mini).
    """
    key, _, path = name.partition(":")
    if key not in DATASETS or (path and key != "imagefolder"):
        raise unknown("dataset", name, DATASET_NAMES)
    loader = DATASETS[key]
    allowed = _loader_options(loader)
    if set(options) - allowed:
        extra = sorted(set(options) - allowed)
        raise ValueError(f"data set {key!r} takes no options {extra}; allowed: {sorted(allowed)}")
    split = loader(Path(path or root).expanduser(), download=download, seed=seed, **options)
    return subsample(split, subset, test_subset, seed)


# ----------------------------------------------------------------------------------------------
# On-device augmentation and batching
# ----------------------------------------------------------------------------------------------


INTERPOLATIONS = ("nearest", "bilinear")


@dataclass(frozen=True)
class Augment:
    """Training augmentation: random crop with zero padding, horizontal flip, random rotation.

    ``interpolation`` is the rotation's resampling; "nearest" is torchvision's RandomRotation default
    and what the reference recipe uses.
    """

    crop_padding: int = 0
    flip: bool = False
    rotation: float = 0.0
    interpolation: str = "nearest"

    def __post_init__(self) -> None:
        if self.crop_padding < 0:
            raise ValueError(f"crop_padding must be >= 0, got {self.crop_padding}")
        if not 0.0 <= self.rotation <= 180.0:
            raise ValueError(f"rotation must be in [0, 180] degrees, got {self.rotation}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")


def _uniform(n: int, generator: torch.Generator, device: torch.device) -> Tensor:
    """n uniform draws from ``generator`` on its own device, moved to ``device`` (same stream on CPU or GPU)."""
    return torch.rand(n, generator=generator, device=generator.device).to(device)


def random_crop(x: Tensor, padding: int, generator: torch.Generator) -> Tensor:
    """Per-sample random crop of the zero-padded batch back to (H, W), by one batched gather."""
    b, _, h, w = x.shape
    span = 2 * padding + 1
    offsets = torch.randint(0, span, (2, b), generator=generator, device=generator.device).to(x.device)
    padded = F.pad(x, (padding, padding, padding, padding))
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)
    batch = torch.arange(b, device=x.device)[:, None, None]
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)  # (B, H, W, C) -> NCHW


def random_flip(x: Tensor, generator: torch.Generator) -> Tensor:
    """Mirror each sample left-right with probability 1/2."""
    flip = _uniform(x.shape[0], generator, x.device) < 0.5
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


def random_rotation(x: Tensor, degrees: float, interpolation: str, generator: torch.Generator) -> Tensor:
    """Rotate each sample about its centre by a uniform angle in [-degrees, degrees], zero fill."""
    b, _, h, w = x.shape
    angle = (_uniform(b, generator, x.device) * 2 - 1) * math.radians(degrees)
    cos, sin = torch.cos(angle), torch.sin(angle)
    zero = torch.zeros_like(cos)
    # rotation in pixel units, expressed in affine_grid's [-1, 1] coordinates (aspect-corrected)
    theta = torch.stack([torch.stack([cos, -sin * h / w, zero], 1), torch.stack([sin * w / h, cos, zero], 1)], 1)
    grid = F.affine_grid(theta, [b, x.shape[1], h, w], align_corners=False)
    out = F.grid_sample(x.float(), grid, mode=interpolation, padding_mode="zeros", align_corners=False)
    return out.round_().to(x.dtype) if not x.dtype.is_floating_point else out.to(x.dtype)


def augment_batch(x_uint8: Tensor, aug: Augment, generator: torch.Generator) -> Tensor:
    """Apply ``aug`` to a batch (N, C, H, W) on its own device, vectorised; returns the input dtype.

    Random numbers are drawn from ``generator`` (on the generator's device) in a fixed order:
    crop offsets, flips, angles; the same generator state gives the same batch.
    """
    x = x_uint8
    if aug.crop_padding > 0:
        x = random_crop(x, aug.crop_padding, generator)
    if aug.flip:
        x = random_flip(x, generator)
    if aug.rotation > 0:
        x = random_rotation(x, aug.rotation, aug.interpolation, generator)
    return x


PerChannel = Sequence[float] | Tensor | None  # per-channel mean or std: host values or a device tensor


def channel_tensors(mean: PerChannel, std: PerChannel, device: torch.device) -> tuple[Tensor | None, Tensor | None]:
    """Per-channel mean and std as float32 tensors on ``device``, to build once rather than per batch:
    a tensor built from host values is a host-to-device copy, which synchronises on CUDA."""
    return tuple(None if v is None else torch.as_tensor(v, dtype=torch.float32).to(device) for v in (mean, std))


def normalise(x_uint8: Tensor, mean: PerChannel, std: PerChannel) -> Tensor:
    """uint8 images to float32 in 0..1, then (x - mean) / std per channel; keeps the memory format.

    ``mean``/``std`` from ``channel_tensors`` (tensors on x's device) cost no copy per call."""
    if (mean is None) != (std is None):
        raise ValueError("normalise needs both mean and std, or neither")
    x = x_uint8.to(torch.float32)
    scale = 1.0 / 255.0 if x_uint8.dtype == torch.uint8 else 1.0
    if mean is None:
        return x.mul_(scale)
    shape = (1, -1) + (1,) * (x.dim() - 2)
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(shape)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(shape)
    return x.mul_(scale / s).sub_(m / s)


class DeviceBatches:
    """Iterates shuffled mini-batches of a data set held whole on one device, augmenting there.

    Yields ``(inputs float32, labels, sample indices)``; indices refer to rows of ``x`` so the trainer
    can look up clean labels or ``extra`` per-sample tensors.  Vector data (float x) passes through
    unchanged when ``augment`` and ``mean``/``std`` are None.  Each epoch draws its order and
    augmentation from ``generator``, so a seeded generator gives a repeatable run.
    """

    def __init__(self, x: Tensor, y: Tensor, batch_size: int, shuffle: bool, augment: Augment | None,
                 mean: PerChannel, std: PerChannel, generator: torch.Generator,
                 drop_last: bool = False, extra: dict[str, Tensor] | None = None,
                 memory_format: torch.memory_format = torch.contiguous_format) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if len(x) != len(y) or any(len(v) != len(x) for v in (extra or {}).values()):
            raise ValueError(f"x, y and extra must have the same length, got {len(x)}, {len(y)}, "
                             f"{ {k: len(v) for k, v in (extra or {}).items()} }")
        if augment is not None and x.dim() != 4:
            raise ValueError(f"augmentation needs (N, C, H, W) images, got shape {tuple(x.shape)}")
        self.x, self.y = x, y.to(x.device)
        self.extra = {k: v.to(x.device) for k, v in (extra or {}).items()}
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.augment = augment
        self.mean, self.std = channel_tensors(mean, std, x.device)
        self.generator = generator
        self.memory_format = memory_format if x.dim() == 4 else torch.contiguous_format

    def __len__(self) -> int:
        n = len(self.x)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def _order(self) -> Tensor:
        n = len(self.x)
        if not self.shuffle:
            return torch.arange(n, device=self.x.device)
        return torch.randperm(n, generator=self.generator, device=self.generator.device).to(self.x.device)

    def _inputs(self, idx: Tensor) -> Tensor:
        xb = self.x[idx]
        if self.augment is not None:
            xb = augment_batch(xb, self.augment, self.generator)
        if xb.dtype == torch.uint8 or self.mean is not None:
            xb = normalise(xb, self.mean, self.std)
        return xb.contiguous(memory_format=self.memory_format)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
        order = self._order()
        for b in range(len(self)):
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            yield self._inputs(idx), self.y[idx], idx

    def gather_extra(self, idx: Tensor) -> dict[str, Tensor]:
        """The ``extra`` per-sample tensors for the samples ``idx`` of a batch."""
        return {k: v[idx] for k, v in self.extra.items()}


class _TensorImages(torch.utils.data.Dataset):
    """Map-style dataset over whole tensors, applying a torchvision transform per (PIL) image."""

    def __init__(self, x: Tensor, y: Tensor, transform: Callable | None) -> None:
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor, int]:
        item = self.x[i]
        if self.transform is not None:
            item = self.transform(to_pil_image(item))
        return item, self.y[i], i


def _collate_triples(batch: list[tuple[Tensor, Tensor, int]]) -> tuple[Tensor, Tensor, Tensor]:
    xs, ys, idx = zip(*batch)
    return torch.stack(xs), torch.stack(ys), torch.as_tensor(idx)


def torchvision_transform(shape: tuple[int, int], augment: Augment | None, mean, std) -> Callable:
    """The PIL torchvision pipeline equivalent to ``augment`` + ``normalise``."""
    steps: list[Callable] = []
    if augment is not None and augment.crop_padding > 0:
        steps.append(T.RandomCrop(shape, padding=augment.crop_padding))
    if augment is not None and augment.flip:
        steps.append(T.RandomHorizontalFlip())
    if augment is not None and augment.rotation > 0:
        steps.append(T.RandomRotation(augment.rotation, interpolation=T.InterpolationMode(augment.interpolation)))
    steps.append(T.ToTensor())
    if mean is not None:
        steps.append(T.Normalize(mean, std))
    return T.Compose(steps)


def dataloader_batches(x: Tensor, y: Tensor, batch_size: int, shuffle: bool, augment: Augment | None,
                       mean: Sequence[float] | None, std: Sequence[float] | None, seed: int,
                       num_workers: int = 2, drop_last: bool = False,
                       pin_memory: bool = False) -> torch.utils.data.DataLoader:
    """The classic CPU path: a torchvision DataLoader yielding the same (inputs, labels, indices) triples.

    Worker random streams derive from ``seed``; with ``num_workers=0`` the transforms draw from the
    main process's global torch RNG (torchvision offers no generator argument).
    """
    transform = torchvision_transform(tuple(x.shape[-2:]), augment, mean, std) if x.dim() == 4 else None
    return torch.utils.data.DataLoader(
        _TensorImages(x.cpu(), y.cpu(), transform), batch_size=batch_size, shuffle=shuffle,
        num_workers=num_workers, drop_last=drop_last, pin_memory=pin_memory, collate_fn=_collate_triples,
        generator=torch.Generator().manual_seed(seed), persistent_workers=num_workers > 0)
