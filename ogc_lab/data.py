"""Data sets by name: one loader each, the registry ``DATASETS`` and ``load_dataset``.

Every loader returns a :class:`~ogc_lab.datasplit.DataSplit` of whole tensors: images as uint8 (N, C, H, W),
vectors as float32 (N, D), labels as int64.  Downloads live in ``download``, the split and its helpers
in ``datasplit``, the batch pipelines in ``batches``; each name is imported from the module that defines it.

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
import os
import pickle
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .datasplit import (
    IMAGE_EXTENSIONS,
    DataIntegrityError,
    DataNotFoundError,
    DataSplit,
    decode_rgb,
    image_split,
    label_array,
    labels_tensor,
    load_images,
    subsample,
)
from .download import REMOTE_FILES, extract_tar, fetch, not_found, sha256_of
from .files import torch_load
from .registry import unknown
from .schema import COUNT, TEXT, ListOf, Schema, array, check

# ----------------------------------------------------------------------------------------------
# Loaders
# ----------------------------------------------------------------------------------------------


def load_toy2d(root: Path, download: bool, seed: int, n_train: int = 400, n_test: int = 2000,
               noise: float = 0.25) -> DataSplit:
    """Two interleaved half-moons with Gaussian jitter (overlapping classes): the binary 2-D toy task."""
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=n_train + n_test, noise=noise, random_state=seed)
    x = torch.as_tensor(x, dtype=torch.float32)
    y = labels_tensor(y)
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
    return image_split("digits", classes, (torch.from_numpy(x_tr), labels_tensor(y_tr)),
                        (torch.from_numpy(x_te), labels_tensor(y_te)),
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


def _unpickle(path: Path, schema: Schema) -> dict:
    """One CIFAR python batch, read with the restricted unpickler and checked against ``schema`` to the
    leaf (the extracted files carry no checksum); anything else raises DataIntegrityError naming it."""
    try:
        with open(path, "rb") as handle:
            batch = _CifarUnpickler(handle, path).load()
    except DataIntegrityError:
        raise
    except Exception as err:  # a truncated, empty or foreign file fails in many ways inside pickle
        raise DataIntegrityError(f"cannot read CIFAR batch {str(path)!r} ({type(err).__name__}: {err}); "
                                 f"delete {str(path.parent)!r} to extract a clean copy") from None
    check(batch, schema, f"CIFAR batch {str(path)!r}", DataIntegrityError)
    return batch


def _cifar_folder(layout: CifarLayout, root: Path, download: bool) -> Path:
    """The extracted CIFAR folder, extracting (after an md5 check) or downloading the archive as needed."""
    folder = root / layout.folder
    if folder.is_dir():
        return folder
    remote = REMOTE_FILES[layout.key]
    if not download and not (root / remote.filename).exists():
        raise not_found(f"{layout.key} ({layout.folder})", folder,
                         f"Pass download=True to fetch {remote.url} (md5 {remote.md5}) into {root}.")
    extract_tar(fetch(remote, root), root)
    return folder


def _read_cifar_batches(folder: Path, files: tuple[str, ...], label_key: str,
                        num_classes: int) -> tuple[Tensor, Tensor]:
    """The images (N, 3, 32, 32) and labels of ``files``, each batch's labels matching its images in number."""
    images, labels = [], []
    for name in files:
        batch = _unpickle(folder / name, {"data": array(np.uint8, 3 * 32 * 32), label_key: ListOf(COUNT)})
        images.append(batch["data"])
        labels.append(label_array(batch[label_key], f"CIFAR batch {str(folder / name)!r} entry {label_key!r}",
                                  num_classes, len(batch["data"])))
    data = np.concatenate(images).reshape(-1, 3, 32, 32)
    return torch.from_numpy(np.ascontiguousarray(data, dtype=np.uint8)), torch.cat(labels)


def load_cifar(layout: CifarLayout, root: Path, download: bool, seed: int) -> DataSplit:
    """Official CIFAR-10/100 python batches as uint8 (N, 3, 32, 32)."""
    folder = _cifar_folder(layout, root, download)
    classes = list(_unpickle(folder / layout.meta_file, {layout.names_key: ListOf(TEXT, 2)})[layout.names_key])
    train, test = (_read_cifar_batches(folder, files, layout.label_key, len(classes))
                   for files in (layout.train_files, layout.test_files))
    remote = REMOTE_FILES[layout.key]
    return image_split(layout.key, classes, train, test, f"{folder} (from {remote.url}, md5 {remote.md5})")


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


def decode_jpeg_blob(blob: np.ndarray, offsets: np.ndarray, where: str = "the blob") -> Tensor:
    """Decode images stored as concatenated JPEG files (image i = blob[offsets[i]:offsets[i+1]]) to uint8 NCHW.

    One Pillow decode per image straight into a preallocated array; the layout change is one copy.
    An image that cannot be decoded raises DataIntegrityError naming its index in ``where``.
    """
    bounds = offsets.tolist()
    first = decode_rgb(blob[bounds[0]:bounds[1]], f"0 of {where}")
    out = np.empty((len(bounds) - 1, *first.shape), dtype=np.uint8)
    for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:])):
        out[i] = decode_rgb(blob[a:b], f"{i} of {where}")
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


NPZ_KEYS = ("classes", "train_jpeg", "train_offsets", "train_labels", "test_jpeg", "test_offsets", "test_labels")


def _npz_images(npz: Any, part: str, num_classes: int, path: Path) -> tuple[Tensor, Tensor]:
    """The images and labels of one part (train or test) of the JPEG npz, labels checked against the images."""
    images = decode_jpeg_blob(npz[f"{part}_jpeg"], npz[f"{part}_offsets"], f"{path} {part}_jpeg")
    return images, label_array(npz[f"{part}_labels"], f"{path} {part}_labels", num_classes, len(images))


def load_cifar10_npz(root: Path, download: bool, seed: int) -> DataSplit:
    """CIFAR-10 from the project's JPEG npz (keys classes, {train,test}_{jpeg,offsets,labels})."""
    path = root if root.suffix == ".npz" else root / NPZ_FILENAME
    if not path.exists():
        raise not_found("cifar10_jpeg.npz", root,
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
    return image_split("cifar10-npz", classes, train, test, f"{path} sha256 {sha256_of(path)}")


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
        raise not_found(f"{spec.key} labels", path, f"Pass download=True to fetch {remote.url}.")
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
        raise not_found("cifar10n labels", path,
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
    return paths, labels_tensor(labels)


def load_imagefolder(root: Path, download: bool, seed: int, image_size: int = 32) -> DataSplit:
    """A user's image tree ``root/{train,test}/<class>/*``; labels are the sorted class folder names.

    Images are resized (shorter side to ``image_size``, default 32 to match CIFAR-scale models) and
    centre-cropped to a square.
    """
    train_dir, test_dir = root / "train", root / "test"
    for folder in (train_dir, test_dir):
        if not folder.is_dir():
            raise not_found("image folder", folder, "Expected PATH/train/<class>/* and PATH/test/<class>/*.")
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
    return image_split(f"imagefolder:{root}", classes, (load_images(train_paths, image_size), train_y),
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
        raise not_found("WebVision 1.0 (info/train_filelist_google.txt)", root, WEBVISION_HOWTO)
    info = base / "info"
    classes = _webvision_classes(info, num_classes)
    train_names, train_y = _read_filelist(info / "train_filelist_google.txt", num_classes)
    val_names, val_y = _read_filelist(info / "val_filelist.txt", num_classes)
    train = (load_images([base / n for n in train_names], image_size), labels_tensor(train_y))
    test = (load_images([base / "val_images_256" / n for n in val_names], image_size), labels_tensor(val_y))
    extra = {}
    imagenet = base / "imagenet_val"
    if imagenet.is_dir():
        paths, labels = _scan_class_tree(imagenet, [str(c) for c in range(num_classes)])
        if not paths:
            raise DataNotFoundError(f"{imagenet} holds no images; fill imagenet_val/<class index>/ or remove it")
        extra["imagenet-val"] = (load_images(paths, image_size), labels)
    return image_split("webvision-mini", classes, train, test,
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


def check_dataset(name: str) -> None:
    """Raise ``registry.unknown``'s ValueError unless ``name`` is one of ``DATASET_NAMES`` (imagefolder with its
    folder, no other with one): the check a config makes before any work."""
    key, _, path = name.partition(":")
    if key not in DATASETS or (key == "imagefolder") != bool(path):
        raise unknown("dataset", name, DATASET_NAMES)


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


