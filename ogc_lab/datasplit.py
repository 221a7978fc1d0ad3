"""The ``DataSplit`` every loader returns, and the tensor helpers loaders build it with.

A split holds a data set whole (images uint8 (N, C, H, W), vectors float32 (N, D), labels int64);
``subsample`` cuts a stratified subset, ``label_array`` checks labels read from a file.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from .noise import NoisyLabels, corrupt_labels

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

    def __post_init__(self) -> None:
        """Refuse parts that disagree (inputs without their labels, labels out of range, inputs of another
        shape), whichever loader built the split: nothing trains or is scored on a mismatched file."""
        if len(self.classes) != self.num_classes:
            raise DataIntegrityError(f"data set {self.name!r} names {len(self.classes)} classes for "
                                     f"{self.num_classes} labels")
        parts = {"train": (self.train_x, self.train_y), "test": (self.test_x, self.test_y),
                 **{f"{name} test": xy for name, xy in self.extra_test_sets.items()},
                 **{f"{name} label set": (self.train_x, y) for name, y in self.noisy_sets.items()}}
        for part, (x, y) in parts.items():
            label_array(y, f"data set {self.name!r}: the {part} labels", self.num_classes, len(x))
            if x.shape[1:] != self.train_x.shape[1:]:
                raise DataIntegrityError(f"data set {self.name!r}: the {part} inputs have shape "
                                         f"{tuple(x.shape[1:])}, the training inputs {tuple(self.train_x.shape[1:])}")

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
    for name, n, total in (("subset", subset, len(split.train_y)), ("test_subset", test_subset, len(split.test_y))):
        if n is not None and n < split.num_classes:  # an accuracy of a class never seen, or of one sample
            raise ValueError(f"{name}={n} keeps fewer samples than the {split.num_classes} classes of "
                             f"{split.name!r}; allowed: {split.num_classes} to {total}")
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


def labels_tensor(values: Sequence[int] | np.ndarray) -> Tensor:
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
    return labels_tensor(array)


def image_split(name: str, classes: list[str], train: tuple[Tensor, Tensor], test: tuple[Tensor, Tensor],
                 source: str, **extra) -> DataSplit:
    """Build an image DataSplit, with normalisation statistics taken from the training images.

    A split without training or test images is refused: no model is trained, or scored, on nothing."""
    for part, (_, labels) in (("train", train), ("test", test)):
        if not len(labels):
            raise DataNotFoundError(f"data set {name!r} has no {part} images")
    mean, std = channel_stats(train[0])
    return DataSplit(name, len(classes), classes, train[0], train[1], test[0], test[1],
                     mean=mean, std=std, source=source, **extra)


def open_rgb(source: Path | io.BytesIO, where: str) -> Image.Image:
    """An image file or blob decoded to RGB; an unreadable, truncated or oversized one (a header claiming
    more pixels than Pillow's decompression-bomb limit) raises DataIntegrityError naming ``where``."""
    try:
        with Image.open(source) as img:
            return img.convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
        raise DataIntegrityError(f"cannot read image {where}: {err}") from None


def decode_rgb(blob: bytes | np.ndarray, where: str = "from a blob") -> np.ndarray:
    """The (H, W, 3) RGB pixels of an encoded image held in memory."""
    return np.asarray(open_rgb(io.BytesIO(blob), where))


def load_images(paths: Sequence[Path], image_size: int) -> Tensor:
    """Read image files into uint8 (N, 3, S, S): shorter side resized to S (bilinear), then centre-cropped."""
    if image_size < 1:
        raise ValueError(f"image_size must be a positive integer, got {image_size}")
    out = np.empty((len(paths), image_size, image_size, 3), dtype=np.uint8)
    for i, path in enumerate(paths):
        out[i] = np.asarray(_resize_center_crop(open_rgb(path, repr(str(path))), image_size))
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()


def _resize_center_crop(img: Image.Image, size: int) -> Image.Image:
    width, height = img.size
    scale = size / min(width, height)
    new_w, new_h = max(size, round(width * scale)), max(size, round(height * scale))
    if (new_w, new_h) != (width, height):
        img = img.resize((new_w, new_h), Image.BILINEAR)
    left, top = (new_w - size) // 2, (new_h - size) // 2
    return img.crop((left, top, left + size, top + size))


