"""Seconds per epoch of the official-cifar10 recipe with CE+OGC: device pipeline vs DataLoader, bf16 vs float32.

Every arm is a full ``ogc_lab.train.train`` run of the recipe (ResNet-18, CE+OGC, batch 128, SGD,
grad clip 5.0; ``amp=auto``: bf16 autocast + channels_last on CUDA and on CPUs with native bf16),
differing only in ``pipeline``, ``device`` (data set held on the device, batched augmentation there)
or ``dataloader`` (torchvision DataLoader with the same augmentation), or, for the third
arm, in ``amp=off`` (float32, device pipeline).  The figure is the trainer's own ``epoch_time_s`` (training
pass + test evaluation; data loading and checkpoint writing excluded), median over the epochs after
the first (warm-up); runs alternate device / DataLoader.  On a CPU the recipe runs on a small
``--subset``; on an H100 the issue's targets are <= 4 s per epoch on full CIFAR-10 and >= 4x faster
than the DataLoader path.
Run: ``python benchmarks/bench_epoch.py [--quick] [--subset N] [--json out.json]``.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from ogc_lab import cost  # noqa: E402
from ogc_lab.recipes import Config, get_recipe  # noqa: E402
from ogc_lab.train import train  # noqa: E402

# arm -> its config overrides; the first two compare pipelines, the first and the last precisions
ARMS: dict[str, dict[str, str]] = {
    "device": {"pipeline": "device"},
    "dataloader": {"pipeline": "dataloader"},
    "device, float32": {"pipeline": "device", "amp": "off"},
}
GPU_TARGET_S = 4.0
GPU_TARGET_SPEEDUP = 4.0


def data_location() -> tuple[str, str]:
    """(dataset, root): the project's JPEG CIFAR-10 when at hand, else the official CIFAR-10 under ./data."""
    path = C.find_cifar_npz()
    return ("cifar10-npz", str(path)) if path is not None else ("cifar10", "data")


def make_config(arm: str, args: Any, device: str) -> Config:
    """The official-cifar10 recipe with CE+OGC and the arm's overrides (``--quick``: digits-cpu, a smoke run)."""
    common = dict(loss="ce+ogc", epochs=args.epochs, device=device, threads=args.threads,
                  num_workers=args.workers, seed=args.seed, **ARMS[arm])
    if args.quick:
        return get_recipe("digits-cpu", subset=args.subset, **common)
    dataset, root = data_location()
    return get_recipe("official-cifar10", dataset=dataset, data_root=root, subset=args.subset, **common)


def run_arm(config: Config) -> dict[str, Any]:
    """Train ``config`` into a throw-away folder; the per-epoch times and the run's shape."""
    with tempfile.TemporaryDirectory(prefix="bench_epoch_") as out:
        result = train(config, Path(out), progress=False)
    times = [row["epoch_time_s"] for row in result["epochs"]]
    timed = times[1:] or times  # the first epoch carries warm-up (lazy init, cuDNN autotune)
    return {"epoch_times_s": times, "seconds_per_epoch": cost.median(timed), "epochs_timed": len(timed),
            "num_train": result["num_train"], "steps_per_epoch": math.ceil(result["num_train"] / config.batch_size),
            "device": result["device"], "data_source": result["data_source"], "amp_reason": result["amp_reason"]}


def main(argv: list[str] | None = None) -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--subset", type=int, default=None,
                        help="training samples (default 512 on CPU, all on CUDA; 0 = all)")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per run (the first is not timed when > 1)")
    parser.add_argument("--repeats", type=int, default=1, help="runs per pipeline, alternating")
    parser.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="DataLoader workers")
    args = parser.parse_args(argv)
    device = C.setup(args)
    if args.quick:
        args.subset, args.epochs = 256, 2
    elif args.subset is None:
        args.subset = None if device.type == "cuda" else 512
    args.subset = args.subset or None  # 0 means the whole training set
    info = cost.machine_info(device)

    runs: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    for _ in range(args.repeats):
        for arm in ARMS:
            runs[arm].append(run_arm(make_config(arm, args, str(device))))
    seconds = {arm: cost.median([r["seconds_per_epoch"] for r in rs]) for arm, rs in runs.items()}
    speedup = seconds["dataloader"] / seconds["device"]
    precision = seconds["device, float32"] / seconds["device"]

    C.print_machine(info)
    first = runs["device"][0]
    recipe = "digits-cpu (quick smoke run)" if args.quick else "official-cifar10"
    print(f"recipe {recipe}, loss ce+ogc, data: {first['data_source']}; {first['num_train']} training images, "
          f"{first['steps_per_epoch']} steps/epoch; timed by ogc_lab.train.train (epoch_time_s: train pass + eval); "
          f"DataLoader workers {args.workers}")
    rows = [[arm, runs[arm][0]["amp_reason"].split(":")[0], f"{seconds[arm]:.2f}",
             sum(r["epochs_timed"] for r in runs[arm]),
             f"{first['num_train'] / seconds[arm]:.0f}",
             " ".join(f"{t:.2f}" for r in runs[arm] for t in r["epoch_times_s"])] for arm in ARMS]
    head = ["arm", "amp", "s/epoch", "epochs timed", "train img/s (incl. eval)", "all epoch times s"]
    print(C.format_table(head, rows))
    target = f">= {GPU_TARGET_SPEEDUP:g} on an H100, full CIFAR-10, with device <= {GPU_TARGET_S:g} s/epoch"
    print(C.ratio_line("epoch dataloader/device", speedup, target))
    print(C.ratio_line("epoch float32/amp", precision, ">= 3 on a CPU with native bf16 (1 where amp resolves off)"))
    C.write_json(args.json, {"benchmark": "epoch", "machine": info, "args": vars(args), "recipe": recipe,
                             "runs": runs, "seconds_per_epoch": seconds, "speedup": speedup,
                             "precision_speedup": precision})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
