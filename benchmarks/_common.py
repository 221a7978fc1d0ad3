"""Shared helpers of the benchmarks: command line, machine record, timing, tables, JSON.

Every benchmark compares arms measured in the same run: arms are interleaved (A B A B ...) so slow
drift of a shared machine hits all of them alike, and each figure is a median of repeats.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from torch import Tensor, nn

GRAD_CLIP = 5.0  # the trainer's global gradient-norm clip (all methods of the reference recipe)
NPZ_NAME = "cifar10_jpeg.npz"
NPZ_ENV = "OGC_CIFAR_NPZ"  # explicit path to the project's JPEG CIFAR-10, if set
RATIO_PREFIX = "RATIO"  # every benchmark prints lines "RATIO <name>: <value>" (grep-able)


def base_parser(description: str) -> argparse.ArgumentParser:
    """Flags every benchmark takes: --quick, --json, --threads, --device, --seed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run of a few seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write the results to this JSON file")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op CPU threads (default 1: on a shared 2-core machine more threads "
                             "mostly add OpenMP contention); 0 keeps torch's default")
    parser.add_argument("--device", default="auto", help="auto (cuda if available, else cpu), cpu or cuda[:N]")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def setup(args: argparse.Namespace) -> torch.device:
    """Apply --threads and --seed and resolve --device; returns the device to benchmark on."""
    if args.threads < 0:
        raise ValueError(f"--threads must be >= 0, got {args.threads}")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    return resolve_device(args.device)


def resolve_device(name: str) -> torch.device:
    """``auto`` is cuda when available, else cpu; a named cuda device must be available."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unknown device {name!r}; allowed: auto, cpu, cuda[:N]")
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} is not available here; use auto or cpu")
    return device


def machine_info(device: torch.device) -> dict[str, Any]:
    """What the figures were measured on: device name, torch version, threads, CPU, date."""
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
    return {
        "device": str(device),
        "device_name": name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu": _cpu_name(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one, else platform.processor()."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def find_cifar_npz() -> Path | None:
    """The project's JPEG CIFAR-10 if it is at hand ($OGC_CIFAR_NPZ, ./data, ./shared/data, ../shared/data)."""
    explicit = os.environ.get(NPZ_ENV)
    candidates = [Path(explicit)] if explicit else []
    root = Path(__file__).resolve().parent.parent
    candidates += [root / "data" / NPZ_NAME, root / "shared" / "data" / NPZ_NAME,
                   root.parent / "shared" / "data" / NPZ_NAME]
    return next((p for p in candidates if p.is_file()), None)


def synchronize(device: torch.device) -> None:
    """Wait for queued device work (CUDA), so wall-clock times cover it; no-op on the CPU."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    """Wall-clock seconds of one call of ``fn``, device work included."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def interleaved(arms: dict[str, Callable[[], object]], repeats: int, device: torch.device,
                warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each arm's call, ``repeats`` rounds of A B A B ... after ``warmup`` untimed rounds."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    for _ in range(warmup):
        for fn in arms.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(repeats):
        for name, fn in arms.items():
            times[name].append(timed(fn, device))
    return times


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    if not values:
        raise ValueError("median of no values")
    return statistics.median(values)


def train_step(model: nn.Module, loss_fn: nn.Module, optimizer: torch.optim.Optimizer, lr: float,
               amp: bool = False) -> Callable[[Tensor, Tensor], Tensor]:
    """The trainer's step: forward (bf16 autocast if ``amp``), loss on float logits, backward, clip 5.0, SGD."""
    def step(inputs: Tensor, targets: Tensor) -> Tensor:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            logits = model(inputs)
        loss = loss_fn(logits.float(), targets, lr=lr)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
        optimizer.step()
        return loss

    return step


def steps_to_fill(queue_size: int, batch: int, interval: int) -> int:
    """Fewest steps that fill an OGC queue of ``queue_size`` at ``batch`` values a step and end on a refit step."""
    return math.ceil(math.ceil(queue_size / batch) / interval) * interval


def sgd(model: nn.Module, lr: float = 0.1) -> torch.optim.Optimizer:
    """The reference optimiser: SGD, momentum 0.9, weight decay 5e-4."""
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)


@contextmanager
def sync_debug_error(device: torch.device) -> Iterator[None]:
    """Inside the block, any CUDA host synchronisation raises (no-op off CUDA)."""
    if device.type != "cuda":
        yield
        return
    previous = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        yield
    finally:
        torch.cuda.set_sync_debug_mode(previous)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A plain-text table with right-aligned columns (floats printed as given by the caller)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def print_machine(info: dict[str, Any]) -> None:
    """One line naming the machine the figures come from."""
    print(f"machine: {info['device']} ({info['device_name']}), torch {info['torch']}, "
          f"threads {info['threads']} of {info['cpu_count']} CPUs, {info['date']}")


def ratio_line(name: str, value: float, target: str = "") -> str:
    """The grep-able summary line ``RATIO name: value [target]`` every benchmark prints."""
    return f"{RATIO_PREFIX} {name}: {value:.3f}" + (f"  (target {target})" if target else "")


def write_json(path: Path | None, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON when a path was given (--json)."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {path}")
