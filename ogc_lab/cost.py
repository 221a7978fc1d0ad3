"""What OGC costs: interleaved timing, the threshold refit, training steps and the size of its state.

Shared by the benchmarks (``benchmarks/``) and the book's cost chapter, so both measure the same way.
Arms that are compared are timed in the same run and in rotation (A B A B ...): slow drift of a
shared machine then hits every arm alike, and each figure is a median of repeats.  On CUDA every
timed call is bracketed by ``torch.cuda.synchronize`` so the wall-clock time covers the device work.
"""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .hardware import (
    cpu_has_native_bf16,
    cpu_name,
    resolve_amp,
    select_device,
    torch_threads,
    wants_channels_last,
)
from .losses import LOSSES, is_ogc_loss
from .models import make_model
from .ogc import (
    H_MAX,
    H_MIN,
    OGC_DEFAULTS,
    OGCLoss,
    OGCSettings,
    base_loss,
    fit_gmm_sklearn,
    fit_gmm_torch,
    label_prob,
    solve_tau,
)
from .optim import build_loss, make_optimizer, train_step
from .recipes import get_recipe
from .registry import check_choice, check_names

Sync = torch.device | str | None  # the device whose queued work a timed call waits for (None: none)

# ---------------------------------------------------------------- the machine


def machine_info(device: str | torch.device = "cpu") -> dict[str, Any]:
    """What figures are measured on: device and its name, torch version, threads now, CPU, date."""
    device = select_device(device)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()
    return {
        "device": str(device),
        "device_name": name,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_name(),
        "cpu_native_bf16": cpu_has_native_bf16(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


# ---------------------------------------------------------------- timing


def synchronize(device: Sync) -> None:
    """Wait for queued work of a CUDA ``device``; no-op for None and the CPU."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], sync: Sync = None) -> float:
    """Wall-clock seconds of one call of ``fn``, the queued work of device ``sync`` included."""
    synchronize(sync)
    start = time.perf_counter()
    fn()
    synchronize(sync)
    return time.perf_counter() - start


def interleaved(
    arms: dict[str, Callable[[], object]], repeats: int, warmup: int = 1, sync: Sync = None
) -> dict[str, list[float]]:
    """Seconds of every call of each arm: ``warmup`` untimed rounds, then ``repeats`` timed rounds of A B A B ..."""
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(f"repeats must be an integer >= 1, got {repeats!r}")
    if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
        raise ValueError(f"warmup must be an integer >= 0, got {warmup!r}")
    if not arms:
        raise ValueError("interleaved needs at least one arm")
    for _ in range(warmup):
        for fn in arms.values():
            fn()
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(repeats):
        for name, fn in arms.items():
            times[name].append(timed(fn, sync))
    return times


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    if not len(values):
        raise ValueError("median of no values")
    return statistics.median(values)


def interleaved_medians(
    arms: dict[str, Callable[[], object]], repeats: int, warmup: int = 1, sync: Sync = None
) -> dict[str, float]:
    """Median seconds of each arm, the arms timed in rotation (see ``interleaved``)."""
    return {name: median(values) for name, values in interleaved(arms, repeats, warmup, sync).items()}


# ---------------------------------------------------------------- the threshold refit


def sample_queue(queue_size: int, seed: int) -> Tensor:
    """A CIFAR-like queue of H = -log p (float64): 60% clean around 0.3, 40% noisy around 2.5, clamped."""
    if queue_size < 2:
        raise ValueError(f"queue_size must be >= 2 (a 2-component mixture), got {queue_size}")
    gen = torch.Generator().manual_seed(seed)
    noisy = torch.rand(queue_size, generator=gen) < 0.4
    clean_h = 0.3 + 0.3 * torch.randn(queue_size, generator=gen, dtype=torch.float64)
    noisy_h = 2.5 + 1.0 * torch.randn(queue_size, generator=gen, dtype=torch.float64)
    return torch.where(noisy, noisy_h, clean_h).clamp(H_MIN, H_MAX)


def sklearn_tau(h: Tensor | np.ndarray, target: float, seed: int, n_grid: int = 1000, iters: int = 40) -> float:
    """The scikit-learn refit for CE, the baseline of ``time_refit``: scikit-learn's GMM, scipy truncated normals on
    a 1000-point grid of H, bisection in log tau (not ``ogc.reference_tau``, the authors' search in p)."""
    from scipy import stats

    gmm = fit_gmm_sklearn(h, seed=seed)
    grid = np.linspace(H_MIN, H_MAX, n_grid)
    grad = np.exp(grid)  # |dCE/dp| at p = e^-H
    clean, noisy = (
        stats.truncnorm.pdf(grid, (H_MIN - mu) / sd, (H_MAX - mu) / sd, mu, sd)
        for mu, sd in zip(gmm.means.numpy(), np.sqrt(gmm.variances.numpy()))
    )

    def ratio(tau: float) -> float:
        clipped = np.minimum(grad, tau)
        return (noisy @ clipped / noisy.sum()) / (clean @ clipped / clean.sum())

    if ratio(grad[-1]) <= target:
        return math.inf
    if ratio(grad[0]) > target:
        return float(grad[0])
    lo, hi = math.log(grad[0]), math.log(grad[-1])
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ratio(math.exp(mid)) <= target else (lo, mid)
    return math.exp(lo)


CE = base_loss("ce")  # built once, as the controller builds its base loss once


def torch_tau(h: Tensor, target: float, method: str, n_grid: int = 1000) -> float:
    """The library's refit for CE (``fit_gmm_torch`` + ``solve_tau``); the value is read back to the host."""
    return float(solve_tau(fit_gmm_torch(h), target, CE, method=method, n_grid=n_grid))


REFIT_METHODS: dict[str, Callable[[Tensor, float, int], float]] = {
    "torch exact": lambda h, target, seed: torch_tau(h, target, "exact"),
    "torch grid": lambda h, target, seed: torch_tau(h, target, "grid"),
    "reference (sklearn + grid)": lambda h, target, seed: sklearn_tau(h.cpu().numpy(), target, seed),
}
SKLEARN_METHOD = "reference (sklearn + grid)"  # sklearn_tau: the baseline every speed-up is measured against


def _check_names(what: str, names: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """``names`` as a list: each one of ``allowed`` (registry wording), at least one, none twice."""
    names = list(names)
    check_names(what, names, allowed)
    if not names or len(set(names)) != len(names):
        raise ValueError(f"give one or more distinct {what} names, got {names!r}")
    return names


def time_refit(
    queue_size: int = OGC_DEFAULTS.queue_size,
    seed: int = 0,
    methods: Sequence[str] = tuple(REFIT_METHODS),
    repeats: int = 20,
    warmup: int = 3,
    lr: float = 0.1,
    epsilon: float = OGC_DEFAULTS.epsilon,
    threads: int = 0,
    device: str | torch.device = "cpu",
) -> dict[str, Any]:
    """Median seconds, speed-up over the scikit-learn refit (``sklearn_tau``) and tau of one CE refit by each of
    ``methods``.

    All methods refit the same ``sample_queue`` towards the target ratio 1 + lr * epsilon, timed in
    rotation with ``threads`` torch threads (0: torch's setting); the torch paths run on ``device``
    in the controller's dtype there (float64 on the CPU, float32 on CUDA), the scikit-learn path always
    on the host.  A method's ``speedup`` is the median over rounds of the scikit-learn time over its
    time in the same round (NaN when ``SKLEARN_METHOD`` is not among ``methods``): pairing the two calls
    of a round cancels drift of a shared machine.
    """
    methods = _check_names("refit method", methods, tuple(REFIT_METHODS))
    device = select_device(device)
    h = sample_queue(queue_size, seed).to(device, torch.float64 if device.type == "cpu" else torch.float32)
    target = OGCSettings(epsilon=epsilon).target(lr)
    arms = {name: (lambda fn=REFIT_METHODS[name]: fn(h, target, seed)) for name in methods}
    with torch_threads(threads) as used:
        times = interleaved(arms, repeats, warmup, sync=device)
        taus = {name: fn() for name, fn in arms.items()}
    baseline = times.get(SKLEARN_METHOD)

    def speedup(name: str) -> float:
        return math.nan if baseline is None else median([b / t for b, t in zip(baseline, times[name])])

    return {
        "queue_size": queue_size, "seed": seed, "target": target, "repeats": repeats, "threads": used,
        "device": str(device),
        "methods": {
            name: {"seconds": median(times[name]), "speedup": speedup(name), "tau": taus[name]} for name in methods
        },
    }


# ---------------------------------------------------------------- training steps

OFFICIAL_RECIPE = get_recipe("official-cifar10")  # the recipe the step timings follow
LR = OFFICIAL_RECIPE.lr  # the recipe's first learning rate (0.1): OGC's target ratio OGC_DEFAULTS.target(LR) = 3
NUM_CLASSES = 10
IN_SHAPES: dict[str, tuple[int, ...]] = {
    "cnn-small": (1, 8, 8),  # digits
    "cnn8": (3, 32, 32),
    "resnet9-w16": (3, 32, 32),  # the CPU CIFAR recipe's model
    "resnet9-w24": (3, 32, 32),
    "resnet18": (3, 32, 32),  # CIFAR-sized
    "resnet34": (3, 32, 32),
}
DISTINCT_BATCHES = 4  # each arm cycles through this many fixed random batches


def recipe_step(model: nn.Module, loss_fn: nn.Module, amp: bool = False) -> Callable[[Tensor, Tensor], object]:
    """``step(inputs, targets)``: the trainer's ``train_step`` with the official recipe's optimiser (``make_optimizer``
    on the model's device), first learning rate, gradient clip and L1 penalty; bf16 autocast if ``amp``."""
    optimizer = make_optimizer(model.parameters(), OFFICIAL_RECIPE, next(model.parameters()).device)
    return partial(train_step, model, loss_fn, optimizer, lr=LR, amp=amp, grad_clip=OFFICIAL_RECIPE.grad_clip,
                   l1_penalty=OFFICIAL_RECIPE.l1_penalty)


def recipe_model(model_name: str, in_shape: tuple[int, ...], device: torch.device, seed: int,
                 channels_last: bool) -> nn.Module:
    """``model_name`` for 10 classes with weights drawn from ``seed``, on ``device``, in channels_last if asked."""
    torch.manual_seed(seed)  # identical initial weights in every arm
    model = make_model(model_name, NUM_CLASSES, in_shape).to(device)
    return model.to(memory_format=torch.channels_last) if channels_last else model


def steps_to_fill(queue_size: int, batch: int, interval: int) -> int:
    """Fewest steps that fill an OGC queue of ``queue_size`` at ``batch`` values a step and end on a refit step."""
    return math.ceil(math.ceil(queue_size / batch) / interval) * interval


def make_loss_fn(name: str, interval: int = OGC_DEFAULTS.interval, queue_size: int = OGC_DEFAULTS.queue_size,
                 num_classes: int = NUM_CLASSES) -> nn.Module:
    """The loss ``name`` as the trainer builds it for the official recipe, OGC with ``interval``/``queue_size``."""
    return build_loss(OFFICIAL_RECIPE.replace(loss=name, ogc_interval=interval, ogc_queue_size=queue_size), num_classes)


def random_batches(in_shape: tuple[int, ...], batch: int, device: torch.device, seed: int,
                   channels_last: bool = False, count: int = DISTINCT_BATCHES) -> list[tuple[Tensor, Tensor]]:
    """``count`` fixed random (inputs, labels) batches, the same for every arm with the same seed."""
    gen = torch.Generator().manual_seed(seed)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out = []
    for _ in range(count):
        x = torch.randn(batch, *in_shape, generator=gen).to(device).contiguous(memory_format=fmt)
        out.append((x, torch.randint(0, NUM_CLASSES, (batch,), generator=gen).to(device)))
    return out


@dataclass
class Arm:
    """One side of a step comparison: its loss, its step function, fixed batches and a step counter."""

    loss: nn.Module
    step: Callable[[Tensor, Tensor], object]
    batches: list[tuple[Tensor, Tensor]]
    done: int = 0

    def run(self, steps: int) -> None:
        """Take ``steps`` training steps, cycling through the fixed batches."""
        for _ in range(steps):
            inputs, targets = self.batches[self.done % len(self.batches)]
            self.step(inputs, targets)
            self.done += 1


def build_arm(model_name: str, loss_name: str, batch: int, device: torch.device, seed: int,
              interval: int = OGC_DEFAULTS.interval, queue_size: int = OGC_DEFAULTS.queue_size, amp: str = "auto",
              channels_last: bool | None = None) -> Arm:
    """An arm as the trainer would run it (bf16 autocast + channels_last where ``amp`` resolves on), seeded weights;
    ``channels_last`` True or False overrides the trainer's choice of memory format."""
    check_choice("model", model_name, IN_SHAPES, hint="for step timing")
    bf16, _ = resolve_amp(amp, device, IN_SHAPES[model_name])
    if channels_last is None:
        channels_last = wants_channels_last(device, bf16, IN_SHAPES[model_name])  # as the trainer
    model = recipe_model(model_name, IN_SHAPES[model_name], device, seed, channels_last)
    loss = make_loss_fn(loss_name, interval, queue_size).to(device)
    batches = random_batches(IN_SHAPES[model_name], batch, device, seed, channels_last)
    return Arm(loss, recipe_step(model, loss, amp=bf16), batches)


def refit_count(loss: nn.Module) -> int:
    """Refits so far of an OGC loss's controller; 0 for any other loss."""
    return loss.controller.refits if isinstance(loss, OGCLoss) else 0


def flag_refits(call: Callable[[], object], loss: nn.Module) -> tuple[Callable[[], None], list[bool]]:
    """``call`` wrapped to record, call by call, whether ``loss``'s controller refitted during it."""
    flags: list[bool] = []

    def wrapped() -> None:
        before = refit_count(loss)
        call()
        flags.append(refit_count(loss) > before)

    return wrapped, flags


def split_by(times: Sequence[float], flags: Sequence[bool]) -> tuple[list[float], list[float]]:
    """(times of unflagged calls, times of flagged calls)."""
    if len(times) != len(flags):
        raise ValueError(f"{len(times)} times but {len(flags)} flags")
    return [t for t, f in zip(times, flags) if not f], [t for t, f in zip(times, flags) if f]


def timed_calls(call: Callable[[], object], loss: nn.Module, calls: int,
                sync: Sync = None) -> tuple[list[float], list[float]]:
    """Seconds of ``calls`` calls of ``call``, split into calls without and with a refit of ``loss``."""
    wrapped, flags = flag_refits(call, loss)
    return split_by([timed(wrapped, sync) for _ in range(calls)], flags)


def fill_queue(loss: OGCLoss, logits: Tensor, targets: Tensor, lr: float = LR) -> None:
    """Call ``loss`` until its queue is full and its step count sits on a refit step."""
    ctrl = loss.controller
    with torch.no_grad():
        for _ in range(steps_to_fill(ctrl.queue_size, len(targets), ctrl.interval)):
            loss(logits, targets, lr=lr)


def time_controller_update(batch: int = 128, device: str | torch.device = "cpu", seed: int = 0,
                           interval: int = OGC_DEFAULTS.interval, queue_size: int = OGC_DEFAULTS.queue_size,
                           intervals: int = 4) -> dict[str, float]:
    """Median seconds of ``controller.update`` on a full queue: push only, push + refit, and their difference.

    The H values come from random (batch, 10) logits; ``intervals`` refit intervals are timed.
    """
    device = select_device(device)
    gen = torch.Generator().manual_seed(seed)
    logits = (3.0 * torch.randn(batch, NUM_CLASSES, generator=gen)).to(device)
    targets = torch.randint(0, NUM_CLASSES, (batch,), generator=gen).to(device)
    ogc = make_loss_fn("ce+ogc", interval, queue_size).to(device)
    fill_queue(ogc, logits, targets)
    h = -torch.log(label_prob(logits, targets))
    push, refit = timed_calls(lambda: ogc.controller.update(h, LR), ogc, intervals * interval, device)
    if not refit:
        raise ValueError(f"no refit in {intervals * interval} updates: intervals={intervals} must be >= 1")
    out = {"push_s": median(push), "push_refit_s": median(refit)}
    out["refit_s"] = out["push_refit_s"] - out["push_s"]
    return out


def _arm_summary(times: list[float], flags: list[bool], is_ogc: bool) -> dict[str, Any]:
    """Per-step figures of one arm: median step and, for OGC, its non-refit steps and refit steps apart."""
    row: dict[str, Any] = {"step_times_s": times, "median_step_s": median(times),
                           "mean_step_s": sum(times) / len(times)}
    if is_ogc:
        plain, refit = split_by(times, flags)
        if not plain:
            raise ValueError(f"all {len(times)} timed OGC steps refitted; time more steps")
        row.update(plain_step_s=median(plain), refit_step_times_s=refit, refits_timed=len(refit))
    return row


def time_training_steps(
    model_name: str,
    losses: Sequence[str] = ("ce", "ce+ogc"),
    batch: int = 128,
    steps: int = 64,
    device: str | torch.device = "cpu",
    threads: int = 1,
    warmup_steps: int | None = None,
    interval: int = OGC_DEFAULTS.interval,
    queue_size: int = OGC_DEFAULTS.queue_size,
    seed: int = 0,
) -> dict[str, Any]:
    """Per-step seconds of the trainer's step with each of ``losses`` (the first is the baseline), in rotation.

    Every arm has the same initial weights and batches; single steps alternate A B A B ...  After
    ``warmup_steps`` untimed steps per arm (None: enough to fill the OGC queue, so the timed steps
    hold whole refit intervals) each arm takes ``steps`` timed steps.  An OGC arm's cost per step is
    its median non-refit step + refit / interval, the refit timed in situ (median refit step minus
    median non-refit step) or, when no timed step refitted, separately on a full queue.  ``ratio``
    is that cost over the baseline's median step.
    """
    losses = _check_names("loss", losses, tuple(LOSSES))
    if steps < 1 or batch < 1:
        raise ValueError(f"steps and batch must be >= 1, got steps={steps}, batch={batch}")
    device = select_device(device)
    warmup = steps_to_fill(queue_size, batch, interval) if warmup_steps is None else warmup_steps
    if warmup < 0:
        raise ValueError(f"warmup_steps must be >= 0 or None, got {warmup_steps}")
    with torch_threads(threads) as used:
        arms = {name: build_arm(model_name, name, batch, device, seed, interval, queue_size) for name in losses}
        for arm in arms.values():
            arm.run(warmup)
        calls, flags = {}, {}
        for name, arm in arms.items():
            calls[name], flags[name] = flag_refits(lambda arm=arm: arm.run(1), arm.loss)
        times = interleaved(calls, steps, warmup=0, sync=device)
        rows = {name: _arm_summary(times[name], flags[name], is_ogc_loss(name)) for name in losses}
        baseline = rows[losses[0]]["median_step_s"]
        for row in rows.values():
            if "plain_step_s" not in row:
                row.update(step_s=row["median_step_s"], ratio=row["median_step_s"] / baseline)
                continue
            if row["refit_step_times_s"]:
                row.update(refit_s=median(row["refit_step_times_s"]) - row["plain_step_s"], refit_timed="in situ")
            else:
                isolated = time_controller_update(batch, device, seed, interval, queue_size, intervals=2)
                row.update(refit_s=isolated["refit_s"], refit_timed="separately")
            row["step_s"] = row["plain_step_s"] + row["refit_s"] / interval
            row["ratio"] = row["step_s"] / baseline
    return {
        "model": model_name, "batch": batch, "device": str(device), "threads": used, "baseline": losses[0],
        "warmup_steps": warmup, "steps_per_arm": steps, "interval": interval, "queue_size": queue_size,
        "arms": rows,
    }


PRECISIONS = ("off", "bf16")  # float32, then bf16 autocast + channels_last: the two arms of a precision timing


def time_precision_steps(model_name: str, loss: str = "ce", batch: int = 128, steps: int = 8,
                         device: str | torch.device = "cpu", threads: int = 1, warmup_steps: int = 2,
                         seed: int = 0) -> dict[str, Any]:
    """Per-step seconds of the trainer's step in float32 and under bf16 autocast, single steps alternating.

    Both arms have the same initial weights and batches; ``speedup`` is float32's median step over
    bf16's.  On a CPU without native bf16 the bf16 arm is emulated (and the speed-up below 1).
    """
    device = select_device(device)
    with torch_threads(threads) as used:
        arms = {amp: build_arm(model_name, loss, batch, device, seed, amp=amp) for amp in PRECISIONS}
        calls = {amp: (lambda arm=arm: arm.run(1)) for amp, arm in arms.items()}
        medians = interleaved_medians(calls, steps, warmup=warmup_steps, sync=device)
    return {
        "model": model_name, "loss": loss, "batch": batch, "device": str(device), "threads": used,
        "steps_per_arm": steps, "float32_step_s": medians["off"], "bf16_step_s": medians["bf16"],
        "speedup": medians["off"] / medians["bf16"], "native_bf16": device.type == "cuda" or cpu_has_native_bf16(),
    }



def _times(speedup: float) -> str:
    """A speed-up as the text writes it: 4.5 -> '4.5×', 0.1 -> '0.10×'."""
    return f"{speedup:.1f}×" if speedup >= 1 else f"{speedup:.2f}×"


def precision_sentences(precision: Sequence[dict[str, Any]]) -> dict[str, str]:
    """What the bf16 timings (``time_precision_steps`` of the 8-layer CNN and of ResNet-18) mean on the machine
    that ran them, in words chosen by its hardware and the numbers: ``verdict`` for the text, ``summary`` for the
    chapter's summary.

    With native bf16 (a GPU, or a CPU with AVX512-BF16/AMX) ``amp=auto`` trains 32×32 images in bf16, so a
    speed-up is what CPU-sized CIFAR runs gain.  Without it torch emulates bf16, the bf16 arm is slower, and
    ``amp=auto`` keeps the runs of that machine in float32 (``hardware.resolve_amp``): the speed-up is not a cost
    any run paid.
    """
    rows = {p["model"]: p for p in precision}
    native = all(p["native_bf16"] for p in precision)
    names = {"cnn8": "the 8-layer CNN", "resnet18": "ResNet-18"}
    speedups = " and ".join(f"{_times(p['speedup'])} for {names.get(name, name)}" for name, p in rows.items())
    faster = all(p["speedup"] > 1 for p in precision)
    if native and faster:
        verdict = ("This machine computes bf16 in hardware, so amp=auto trains 32×32 images in bf16 here, and "
                   "the speed-up is what makes CIFAR runs on a CPU affordable.")
        summary = f"bf16 autocast on this machine's bf16 hardware: {speedups}, against float32."
    elif native:
        verdict = ("This machine has native bf16, yet bf16 was not faster than float32 in these timings, so they "
                   "give no reason to train in bf16 here.")
        summary = f"bf16 autocast on this machine: {speedups}, against float32; not faster, though native."
    else:
        slowest = min(p["speedup"] for p in precision)
        verdict = (f"This processor has no native bf16: torch emulates it, so the bf16 arm is slower (down to "
                   f"{_times(slowest)}, a step {1 / slowest:.0f} times as long as in float32), and amp=auto keeps "
                   "every run on this machine in float32; the runs this build made trained in float32.")
        summary = (f"bf16 on this CPU is emulated, without native bf16 hardware: {speedups} against float32, "
                   "slower, so the runs here train in float32.")
    return {"verdict": verdict, "summary": summary}


# ---------------------------------------------------------------- throughput against the machine's peak


def matmul_peak(dtype: torch.dtype = torch.float32, n: int = 2048, repeats: int = 5,
                device: str | torch.device = "cpu") -> float:
    """FLOP/s of the best of ``repeats`` n x n matrix products: the machine's practical matrix-multiply peak."""
    device = select_device(device)
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.randn(n, n, generator=gen).to(device, dtype) for _ in range(2))
    torch.mm(a, b)  # warm-up: thread pool, kernel choice
    best = min(timed(lambda: torch.mm(a, b), sync=device) for _ in range(repeats))
    return 2 * n**3 / best


def step_flops(model_name: str, batch: int = 128) -> int:
    """FLOPs of one training step (forward and backward) of ``model_name`` on a batch, by torch's FLOP counter.

    Counts the matrix products and convolutions, which is what a matrix-multiply peak can be compared with.
    """
    from torch.utils.flop_counter import FlopCounterMode

    check_choice("model", model_name, IN_SHAPES, hint="for step timing")
    model = make_model(model_name, NUM_CLASSES, IN_SHAPES[model_name])
    inputs = torch.randn(batch, *IN_SHAPES[model_name])
    targets = torch.randint(0, NUM_CLASSES, (batch,))
    with FlopCounterMode(display=False) as counter:
        nn.functional.cross_entropy(model(inputs), targets).backward()
    return int(counter.get_total_flops())


# ---------------------------------------------------------------- memory


def ogc_state_bytes(loss: nn.Module) -> dict[str, Any]:
    """Bytes of an OGC loss's state (queue, tau, mixture, generator): O(queue size), not O(data set size)."""
    if not isinstance(loss, OGCLoss):
        raise ValueError(f"{type(loss).__name__} holds no OGC state; pass an OGC loss (e.g. make_loss('ce+ogc', K))")
    controller = loss.controller
    return {
        "total_bytes": controller.state_nbytes(),
        "queue_bytes": controller.queue.nbytes,
        "queue_size": controller.queue_size,
        "dtype": str(controller.dtype),
    }
