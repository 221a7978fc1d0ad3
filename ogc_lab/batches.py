"""Mini-batches of a split: augmentation and normalisation on the tensors' device, or a torchvision DataLoader.

Holding a data set whole lets :class:`DeviceBatches` shuffle, augment and normalise mini-batches on the
accelerator itself, so the GPU is never starved by Python workers; :func:`dataloader_batches` is the
classic ``DataLoader`` path, kept for data that does not fit and as the benchmark baseline.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision import transforms as T
from torchvision.transforms.functional import to_pil_image

# ----------------------------------------------------------------------------------------------
# On-device augmentation and batching
# ----------------------------------------------------------------------------------------------


INTERPOLATIONS = ("nearest", "bilinear")


@dataclass(frozen=True)
class Augment:
    """Training augmentation: random crop with zero padding, horizontal flip, random rotation.

    ``interpolation`` is the rotation's resampling; "nearest" is torchvision's RandomRotation default
    and what the official recipe uses.
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
