"""The machine a run trains on: which device, which processor, and whether bf16 autocast pays there.

One owner for these decisions, so that the trainer, the cost measurements and the benchmarks agree.
bf16 autocast is a clear win on CUDA and on CPUs with native bf16 matrix units (AVX512-BF16, AMX:
about 3-4x a CIFAR training step); on other CPUs torch emulates bf16 and it is slower than float32.
"""

from __future__ import annotations

import platform
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from functools import cache
from pathlib import Path
from typing import Any

import torch

from .registry import check_choice, unknown

AMP_MODES = ("auto", "bf16", "off")  # bf16 autocast: where it pays, always, never
DEVICES = ("auto", "cpu", "mps", "cuda", "cuda:N")  # what a config's device may name
_DEVICE_RE = re.compile(r"^(auto|cpu|mps|cuda(:\d+)?)$")


def check_amp_mode(mode: str, what: str = "amp mode") -> None:
    """Raise ``registry.unknown``'s ValueError, naming the value ``what``, unless ``mode`` is one of ``AMP_MODES``."""
    check_choice(what, mode, AMP_MODES)


def check_device(name: str) -> None:
    """Raise ``registry.unknown``'s ValueError unless ``name`` is one of ``DEVICES`` (N a GPU index)."""
    if not isinstance(name, str) or not _DEVICE_RE.match(name):
        raise unknown("device", name, DEVICES)


def select_device(name: str | torch.device, local_rank: int = 0) -> torch.device:
    """``auto`` picks cuda (this process's local GPU), then mps, then cpu; else the named device, if available."""
    name = str(name)
    check_device(name)
    if name != "auto":
        device = torch.device(name)
        available = {"cuda": torch.cuda.is_available, "mps": torch.backends.mps.is_available}
        if device.type in available and not available[device.type]():
            raise ValueError(f"device {name!r} is not available here; use 'auto' or 'cpu'")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda", local_rank % torch.cuda.device_count())
    if torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


@contextmanager
def torch_threads(threads: int) -> Iterator[int]:
    """Run the block with ``threads`` torch intra-op threads (0 keeps the current count); yields the count."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 0:
        raise ValueError(f"threads must be an integer >= 0 (0 keeps torch's setting), got {threads!r}")
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


@cache
def cpu_name() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux), else what ``platform`` reports."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown CPU"


def cpu_has_native_bf16() -> bool:
    """True where the CPU computes bf16 matrix products in hardware (AVX512-BF16 or AMX tiles)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def device_name(device: torch.device) -> str:
    """``device`` with its hardware, as results record it: ``cuda:0 (NVIDIA H200)``, ``cpu (Intel Xeon ...)``."""
    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({cpu_name()})"
    return str(device)


MIN_CPU_BF16_SIDE = 32  # auto uses bf16 on a CPU for images at least this wide (CIFAR-sized and up)


def resolve_amp(mode: str, device: torch.device, input_shape: tuple[int, ...]) -> tuple[bool, str]:
    """Whether a run with inputs of ``input_shape`` trains under bf16 autocast, and why (recorded in the result).

    ``auto`` turns it on for images on CUDA with bf16 support, and on CPUs with native bf16 for images
    of at least 32 x 32: there the matrix units make a step 3-4x faster, while on 8 x 8 digits the step
    is overhead-bound (measured: no faster) and bf16 moved digits-cpu's CE+OGC accuracy by a point.
    ``bf16`` forces it (on a CPU without native bf16 it is emulated and slow); ``off`` is float32.
    """
    check_amp_mode(mode)
    if mode == "off":
        return False, "off: float32 as asked"
    if device.type not in ("cuda", "cpu"):
        return False, f"off: no bf16 autocast on {device.type}"
    if mode == "bf16":
        return True, f"bf16 as asked on {device_name(device)}"
    if len(input_shape) != 3:
        return False, "off (auto): not an image model, nothing to gain"
    if device.type == "cuda":
        if torch.cuda.is_bf16_supported():
            return True, "bf16 (auto): CUDA with bf16 support"
        return False, "off (auto): this GPU has no bf16"
    if not cpu_has_native_bf16():
        return False, "off (auto): the CPU has no native bf16, emulation would be slower than float32"
    if min(input_shape[1:]) < MIN_CPU_BF16_SIDE:
        return False, f"off (auto): {input_shape[1]}x{input_shape[2]} images are too small to gain from bf16 on a CPU"
    return True, "bf16 (auto): the CPU has native bf16 (AVX512-BF16/AMX)"


def wants_channels_last(device: torch.device, bf16: bool, input_shape: tuple[int, ...]) -> bool:
    """Whether image batches and models go channels_last: on CUDA; on a CPU under bf16 (oneDNN's matrix units)
    and, in float32, for images of 32 x 32 and up, where it measured 1.2-1.35x a contiguous step on an AMD EPYC
    (cnn8, ResNet-9, ResNet-18, batch 128: ``benchmarks/bench_model.py``, results/bench_cpu/bench_model.txt)."""
    if device.type == "cuda" or bf16:
        return True
    return device.type == "cpu" and len(input_shape) == 3 and min(input_shape[1:]) >= MIN_CPU_BF16_SIDE


def autocast(device: torch.device, enabled: bool) -> AbstractContextManager[Any]:
    """bf16 autocast on ``device`` (CUDA or CPU) when ``enabled``, else nothing."""
    return torch.autocast(device.type, dtype=torch.bfloat16) if enabled else nullcontext()
