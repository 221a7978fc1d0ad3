"""Throughput (images/s) of the on-device batch pipeline against a torchvision DataLoader pipeline.

Both pipelines shuffle CIFAR-sized uint8 images and apply the official recipe's augmentation (random crop
with padding 4, horizontal flip, rotation up to 15 degrees, normalise): ``DeviceBatches`` does it
batched on the device, ``dataloader_batches`` per image with PIL in worker processes (persistent
workers, the baseline's best case).  Measured twice, arms interleaved (A B A B ...), medians:
pure data throughput (iterate an epoch, move to the device) and training throughput (the same model,
loss CE+OGC and step feeding on each pipeline), the training once more in float32 against amp=auto
(bf16 where the trainer would use it).  Data: the project's JPEG CIFAR-10 when at hand,
else random uint8 images of the same shape (the output says which).
Run: ``python benchmarks/bench_pipeline.py [--quick] [--model cnn8] [--json out.json]``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from ogc_lab import cost  # noqa: E402
from ogc_lab.batches import DeviceBatches, dataloader_batches  # noqa: E402
from ogc_lab.data import load_dataset  # noqa: E402
from ogc_lab.datasplit import channel_stats  # noqa: E402
from ogc_lab.hardware import resolve_amp, wants_channels_last  # noqa: E402
from ogc_lab.models import MODELS  # noqa: E402
from ogc_lab.train import augmentation  # noqa: E402

NUM_CLASSES = 10
IMAGE_SHAPE = (3, 32, 32)
AUGMENT = augmentation(cost.OFFICIAL_RECIPE)  # the official recipe's: crop 4, flip, rotation 15
DATA_SOURCES = ("auto", "npz", "random")


@dataclass(frozen=True)
class Images:
    """uint8 images (N, 3, 32, 32) with labels, normalisation statistics and where they came from."""

    x: Tensor
    y: Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: str

    def head(self, n: int) -> Images:
        """The first ``n`` images (same statistics)."""
        return Images(self.x[:n], self.y[:n], self.mean, self.std, self.source)


def random_images(n: int, seed: int) -> Images:
    """Uniform random uint8 images and labels (the stand-in when the CIFAR npz is not at hand)."""
    gen = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, *IMAGE_SHAPE), generator=gen, dtype=torch.uint8)
    mean, std = channel_stats(x)
    return Images(x, torch.randint(0, NUM_CLASSES, (n,), generator=gen), mean, std, "random uint8 images")


def cifar_images(path: Path, n: int, seed: int) -> Images:
    """A stratified subset of ``n`` CIFAR-10 training images from the project's JPEG npz."""
    split = load_dataset("cifar10-npz", root=path, subset=n, seed=seed)
    return Images(split.train_x, split.train_y, split.mean, split.std, f"CIFAR-10 JPEG npz ({path}), subset {n}")


def load_images(source: str, n: int, seed: int) -> Images:
    """``source``: npz (must be present), random, or auto (npz if present, else random)."""
    if source not in DATA_SOURCES:
        raise ValueError(f"unknown data source {source!r}; allowed: {', '.join(DATA_SOURCES)}")
    path = C.find_cifar_npz() if source != "random" else None
    if source == "npz" and path is None:
        raise ValueError(f"--data npz: {C.NPZ_NAME} not found (set ${C.NPZ_ENV} to its path)")
    return cifar_images(path, n, seed) if path is not None else random_images(n, seed)


def make_pipelines(images: Images, batch: int, device: torch.device, seed: int, workers: int,
                   fmt: torch.memory_format) -> dict[str, Iterable[tuple[Tensor, Tensor, Tensor]]]:
    """The two pipelines over the same images, batches in ``fmt``: on-device, and DataLoader with ``workers``."""
    gen = torch.Generator(device=device).manual_seed(seed)
    on_device = DeviceBatches(images.x.to(device), images.y.to(device), batch, shuffle=True, augment=AUGMENT,
                              mean=images.mean, std=images.std, generator=gen, memory_format=fmt)
    loader = dataloader_batches(images.x, images.y, batch, shuffle=True, augment=AUGMENT, mean=images.mean,
                                std=images.std, seed=seed, num_workers=workers, pin_memory=device.type == "cuda")
    return {"device": on_device, "dataloader": loader}


def consume(batches: Iterable[tuple[Tensor, Tensor, Tensor]], device: torch.device,
            use: Callable[[Tensor, Tensor], object], fmt: torch.memory_format) -> None:
    """One epoch: move each batch to ``device`` in ``fmt`` and hand it to ``use``."""
    for inputs, targets, _ in batches:
        inputs = inputs.to(device, non_blocking=True).contiguous(memory_format=fmt)
        use(inputs, targets.to(device, non_blocking=True))


def make_step(model_name: str, device: torch.device, seed: int, bf16: bool) -> Callable[[Tensor, Tensor], object]:
    """A fresh model with CE+OGC and the trainer's step, under bf16 autocast if ``bf16`` (channels_last where
    the trainer would use it)."""
    model = cost.recipe_model(model_name, IMAGE_SHAPE, device, seed, wants_channels_last(device, bf16, IMAGE_SHAPE))
    return cost.recipe_step(model, cost.make_loss_fn("ce+ogc").to(device), amp=bf16)


def throughput(images: Images, batch: int, device: torch.device, seed: int, workers: int, repeats: int,
               model: str | None, amp: str = "off") -> dict[str, Any]:
    """Images/s of both pipelines over ``images`` (median of interleaved epochs), training ``model`` in the
    precision ``amp`` resolves to, or with no step at all (``model`` None)."""
    bf16, reason = resolve_amp(amp, device, IMAGE_SHAPE)
    fmt = torch.channels_last if wants_channels_last(device, bf16, IMAGE_SHAPE) else torch.contiguous_format
    step = make_step(model, device, seed, bf16) if model is not None else None
    use = step if step is not None else (lambda inputs, targets: None)
    pipes = make_pipelines(images, batch, device, seed, workers, fmt)
    times = C.interleaved({name: (lambda p=p: consume(p, device, use, fmt)) for name, p in pipes.items()},
                          repeats=repeats, device=device, warmup=1)
    n = len(images.x)
    rate = {name: n / cost.median(t) for name, t in times.items()}
    return {"images": n, "bf16": bf16, "amp_reason": reason, "epoch_times_s": times, "device_img_per_s": rate["device"],
            "dataloader_img_per_s": rate["dataloader"], "speedup": rate["device"] / rate["dataloader"]}


def main(argv: list[str] | None = None) -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", default=None,
                        help="model fed by the pipelines (default: cnn8 on CPU, resnet18 on CUDA)")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    parser.add_argument("--data", default="auto", help=f"one of {', '.join(DATA_SOURCES)}")
    parser.add_argument("--images", type=int, default=4096, help="images in the pure data-throughput epoch")
    parser.add_argument("--train-batches", type=int, default=5, help="batches in one timed training epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs per arm")
    args = parser.parse_args(argv)
    device = C.setup(args)
    model = args.model or ("resnet18" if device.type == "cuda" else "cnn8")
    if model not in MODELS:
        raise ValueError(f"unknown model {model!r}; allowed: {', '.join(MODELS)}")
    if args.quick:
        args.images, args.batch, args.train_batches, args.repeats = 256, 32, 2, 1
        model = args.model or "cnn-small"
        args.data = "random" if args.data == "auto" else args.data
    info = cost.machine_info(device)
    images = load_images(args.data, args.images, args.seed)
    train_images = images.head(args.train_batches * args.batch)

    data = throughput(images, args.batch, device, args.seed, args.workers, args.repeats, model=None)
    training = throughput(train_images, args.batch, device, args.seed, args.workers, args.repeats, model, "auto")
    float32 = throughput(train_images, args.batch, device, args.seed, args.workers, args.repeats, model, "off")
    amp_reason = training["amp_reason"]
    precision = {"amp_auto": "bf16" if training["bf16"] else "float32", "reason": amp_reason,
                 "speedup": training["device_img_per_s"] / float32["device_img_per_s"]}

    C.print_machine(info)
    print(f"data: {images.source}; batch {args.batch}; augmentation crop 4 + flip + rotation 15; "
          f"DataLoader workers {args.workers}; model {model} with CE+OGC")
    rows = [[name, r["images"], f"{r['device_img_per_s']:.0f}", f"{r['dataloader_img_per_s']:.0f}",
             f"{r['speedup']:.2f}"] for name, r in (("data only", data), (f"training ({model})", training))]
    print(C.format_table(["measure", "images/epoch", "device img/s", "DataLoader img/s", "device/DataLoader"], rows))
    print(C.ratio_line("pipeline data-only device/dataloader", data["speedup"]))
    print(C.ratio_line(f"pipeline training device/dataloader [{model}]", training["speedup"]))
    print(f"training precision: amp=auto is {precision['amp_auto']} here ({amp_reason}); "
          f"{training['device_img_per_s']:.0f} img/s against {float32['device_img_per_s']:.0f} in float32")
    print(C.ratio_line(f"pipeline training amp/float32 [{model}]", precision["speedup"]))
    C.write_json(args.json, {"benchmark": "pipeline", "machine": info, "args": vars(args), "model": model,
                             "data_source": images.source, "data_only": data, "training": training,
                             "training_float32": float32, "precision": precision})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
