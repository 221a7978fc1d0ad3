"""Shared helpers of the benchmarks: command line, tables, JSON; the measuring itself is ``ogc_lab.cost``.

Every benchmark compares arms measured in the same run: arms are interleaved (A B A B ...) so slow
drift of a shared machine hits all of them alike, and each figure is a median of repeats.  The
timing, machine record and training-step helpers are ``ogc_lab.cost``'s, and the scripts call them there
(the book's cost chapter measures with the same code).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ogc_lab import cost, data
from ogc_lab.hardware import select_device

NPZ_NAME, NPZ_ENV = data.NPZ_FILENAME, data.NPZ_ENV
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
    return select_device(args.device)


def find_cifar_npz() -> Path | None:
    """The project's JPEG CIFAR-10 if it is at hand ($OGC_CIFAR_NPZ, ./data, ./shared/data, ../shared/data)."""
    root = Path(__file__).resolve().parent.parent
    return data.find_cifar_npz(folders=[root / "data", root / "shared" / "data", root.parent / "shared" / "data"])


def interleaved(arms: dict[str, Callable[[], object]], repeats: int, device: torch.device,
                warmup: int = 1) -> dict[str, list[float]]:
    """Seconds of each arm's call, ``repeats`` rounds of A B A B ... after ``warmup`` untimed rounds.

    ``ogc_lab.cost.interleaved`` under the benchmarks' argument names (``device`` is synchronised).
    """
    return cost.interleaved(arms, repeats, warmup=warmup, sync=device)


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
