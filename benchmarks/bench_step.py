"""Training-step time of CE+OGC against plain CE, measured in the same run (target ratio <= 1.03).

A step is what the trainer does: forward, loss on float logits, backward, global grad-norm clip at
5.0, SGD (momentum 0.9, weight decay 5e-4).  The two arms have identical models and batches; their
steps alternate one by one (A B A B ...), which cancels drift of a shared machine.  OGC's cost per
step = median non-refit step + refit / interval, where the refit is timed in situ (median refit step
minus median non-refit step) when the timed steps hold refits (digits CNN, and any model on CUDA:
the queue is filled first, then whole refit intervals are timed).  ResNet-18 on a CPU takes seconds
a step, so only a few steps are timed, before the queue is full; there the refit is timed
separately on a full queue and added amortised.  A second table times the loss-side pieces
(label_prob + push, refit, transformed loss vs cross-entropy): where any overhead goes, and a
low-noise estimate of the ratio.
Run: ``python benchmarks/bench_step.py [--quick] [--json out.json]``.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from ogc_lab.losses import make_loss  # noqa: E402
from ogc_lab.models import make_model  # noqa: E402
from ogc_lab.ogc import OGCLoss, label_prob, transformed_loss  # noqa: E402

NUM_CLASSES = 10
LR = 0.1  # the recipe's first learning rate: target ratio 1 + 0.1 * 20 = 3
TARGET = 1.03
IN_SHAPES = {"cnn-small": (1, 8, 8), "resnet18": (3, 32, 32)}
DISTINCT_BATCHES = 4  # the arms cycle through this many fixed random batches
FIXED_TAU = 4.0  # threshold of the fixed-tau transformed-loss piece (both branches in use)


@dataclass
class Arm:
    """One side of the comparison: a model, its loss and optimiser, fixed batches, a step counter."""

    loss: nn.Module
    step: Callable[[Tensor, Tensor], Tensor]
    batches: list[tuple[Tensor, Tensor]]
    done: int = 0

    def run(self, steps: int) -> None:
        """Take ``steps`` training steps, cycling through the fixed batches."""
        for _ in range(steps):
            inputs, targets = self.batches[self.done % len(self.batches)]
            self.step(inputs, targets)
            self.done += 1


@dataclass(frozen=True)
class Plan:
    """How one model is timed: untimed warm-up steps, then ``steps`` timed steps per arm, alternating."""

    warmup_steps: int
    steps: int


def make_loss_fn(name: str, interval: int, queue_size: int) -> nn.Module:
    """CE as the trainer builds it, or CE+OGC with the trainer's settings (validate=False: no NaN sync)."""
    if name == "ce":
        return make_loss("ce", NUM_CLASSES)
    return make_loss("ce+ogc", NUM_CLASSES, interval=interval, queue_size=queue_size, validate=False)


def make_batches(in_shape: tuple[int, ...], batch: int, device: torch.device, seed: int,
                 channels_last: bool) -> list[tuple[Tensor, Tensor]]:
    """Fixed random (inputs, labels) batches, the same for every arm (seeded)."""
    gen = torch.Generator().manual_seed(seed)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    out = []
    for _ in range(DISTINCT_BATCHES):
        x = torch.randn(batch, *in_shape, generator=gen).to(device).contiguous(memory_format=fmt)
        out.append((x, torch.randint(0, NUM_CLASSES, (batch,), generator=gen).to(device)))
    return out


def build_arm(model_name: str, loss_name: str, batch: int, device: torch.device, seed: int,
              interval: int, queue_size: int) -> Arm:
    """An arm as the trainer would run it (bf16 autocast + channels_last on CUDA)."""
    on_cuda = device.type == "cuda"
    torch.manual_seed(seed)  # identical initial weights in both arms
    model = make_model(model_name, NUM_CLASSES, IN_SHAPES[model_name]).to(device)
    if on_cuda:
        model = model.to(memory_format=torch.channels_last)
    loss = make_loss_fn(loss_name, interval, queue_size).to(device)
    step = C.train_step(model, loss, C.sgd(model, LR), LR, amp=on_cuda)
    return Arm(loss, step, make_batches(IN_SHAPES[model_name], batch, device, seed, on_cuda))


def make_plan(model_name: str, device: torch.device, batch: int, interval: int, queue_size: int, blocks: int,
              cpu_resnet_steps: int) -> Plan:
    """``blocks`` refit intervals after the queue is full, except ResNet-18 on a CPU (a few steps, no refit)."""
    if model_name == "resnet18" and device.type == "cpu":
        return Plan(warmup_steps=1, steps=cpu_resnet_steps)
    return Plan(warmup_steps=C.steps_to_fill(queue_size, batch, interval), steps=blocks * interval)


def time_model(model_name: str, batch: int, plan: Plan, device: torch.device, seed: int,
               interval: int, queue_size: int) -> dict[str, Any]:
    """Per-step seconds of both arms, one step each in turn (A B A B ...), OGC steps split by refit."""
    arms = {name: build_arm(model_name, name, batch, device, seed, interval, queue_size) for name in ("ce", "ce+ogc")}
    for arm in arms.values():
        arm.run(plan.warmup_steps)
    ogc_step, refitted = flag_refits(lambda: arms["ce+ogc"].run(1), arms["ce+ogc"].loss)
    times = C.interleaved({"ce": lambda: arms["ce"].run(1), "ce+ogc": ogc_step}, plan.steps, device, warmup=0)
    plain, refit = split_by(times["ce+ogc"], refitted)
    return {
        "model": model_name, "batch": batch, "warmup_steps": plan.warmup_steps, "steps_per_arm": plan.steps,
        "ce_step_s": C.median(times["ce"]), "ogc_plain_step_s": C.median(plain), "ogc_refit_steps": refit,
        "ce_mean_step_s": sum(times["ce"]) / plan.steps, "ogc_mean_step_s": sum(times["ce+ogc"]) / plan.steps,
        "step_times_s": times,
    }


def flag_refits(call: Callable[[], object], loss: OGCLoss) -> tuple[Callable[[], None], list[bool]]:
    """``call`` wrapped to record, call by call, whether ``loss``'s controller refitted during it."""
    flags: list[bool] = []

    def wrapped() -> None:
        before = loss.controller.refits
        call()
        flags.append(loss.controller.refits > before)

    return wrapped, flags


def split_by(times: list[float], flags: list[bool]) -> tuple[list[float], list[float]]:
    """(times of unflagged calls, times of flagged calls)."""
    return [t for t, f in zip(times, flags) if not f], [t for t, f in zip(times, flags) if f]


def timed_calls(call: Callable[[], object], loss: OGCLoss, calls: int, device: torch.device) -> tuple[list[float], list[float]]:
    """Per-call seconds of ``call``, split into calls without and with a refit of ``loss``'s controller."""
    wrapped, flags = flag_refits(call, loss)
    return split_by([C.timed(wrapped, device) for _ in range(calls)], flags)


def fill_queue(loss: OGCLoss, logits: Tensor, targets: Tensor, interval: int, queue_size: int) -> None:
    """Call ``loss`` until its queue is full and its step count is a multiple of ``interval``."""
    with torch.no_grad():
        for _ in range(C.steps_to_fill(queue_size, len(targets), interval)):
            loss(logits, targets, lr=LR)


def time_pieces(batch: int, device: torch.device, seed: int, interval: int, queue_size: int,
                repeats: int, intervals: int) -> dict[str, float]:
    """Median seconds of each loss-side piece on (batch, 10) logits, on the benchmark device."""
    gen = torch.Generator().manual_seed(seed)
    logits = (3.0 * torch.randn(batch, NUM_CLASSES, generator=gen)).to(device).requires_grad_()
    targets = torch.randint(0, NUM_CLASSES, (batch,), generator=gen).to(device)
    tau = torch.tensor(FIXED_TAU, device=device)
    ce = make_loss_fn("ce", interval, queue_size)

    def fwd_bwd(fn: Callable[[], Tensor]) -> Callable[[], None]:
        def call() -> None:
            logits.grad = None
            fn().backward()
        return call

    stateless = {
        "F.cross_entropy fwd+bwd": fwd_bwd(lambda: F.cross_entropy(logits, targets)),
        "CE loss module fwd+bwd (the CE arm)": fwd_bwd(lambda: ce(logits, targets)),
        "label_prob fwd": lambda: label_prob(logits.detach(), targets),
        "transformed loss fwd+bwd (fixed tau)": fwd_bwd(lambda: transformed_loss(logits, targets, tau, "ce")),
    }
    out = {name: C.median(t) for name, t in C.interleaved(stateless, repeats, device, warmup=3).items()}

    ogc = make_loss_fn("ce+ogc", interval, queue_size).to(device)
    fill_queue(ogc, logits, targets, interval, queue_size)
    h = -torch.log(label_prob(logits.detach(), targets))
    calls = intervals * interval
    push, refit = timed_calls(lambda: ogc.controller.update(h, LR), ogc, calls, device)
    out["controller.update: push only"] = C.median(push)
    out["controller.update: push + refit"] = C.median(refit)
    out["refit (update with refit - push only)"] = out["controller.update: push + refit"] - out["controller.update: push only"]
    plain, with_refit = timed_calls(fwd_bwd(lambda: ogc(logits, targets, lr=LR)), ogc, calls, device)
    out["OGCLoss fwd+bwd, no refit"] = C.median(plain)
    out["OGCLoss fwd+bwd, with refit"] = C.median(with_refit)
    return out


def summarise(row: dict[str, Any], pieces: dict[str, float], interval: int) -> dict[str, Any]:
    """OGC per step = median non-refit step + refit / interval; the refit timed in situ when steps held one.

    Also: the plain ratio of mean step times (refits included, but outliers too) and the low-noise
    estimate from the loss-side pieces (CE step + OGC-vs-CE loss cost + isolated refit / interval).
    """
    refit_steps = row["ogc_refit_steps"]
    if refit_steps:
        refit_s, refit_source = C.median(refit_steps) - row["ogc_plain_step_s"], "in situ"
    else:
        refit_s, refit_source = pieces["refit (update with refit - push only)"], "separately"
    ogc_step = row["ogc_plain_step_s"] + refit_s / interval
    loss_overhead = pieces["OGCLoss fwd+bwd, no refit"] - pieces["CE loss module fwd+bwd (the CE arm)"]
    ce = row["ce_step_s"]
    return {
        **row,
        "refits_timed": len(refit_steps),
        "refit_s": refit_s,
        "refit_timed": refit_source,
        "ogc_step_s": ogc_step,
        "ratio": ogc_step / ce,
        "ratio_of_means": row["ogc_mean_step_s"] / row["ce_mean_step_s"],
        "ratio_from_pieces": (ce + loss_overhead + pieces["refit (update with refit - push only)"] / interval) / ce,
    }


def sync_check(model_name: str, batch: int, device: torch.device, seed: int, interval: int, queue_size: int) -> str:
    """On CUDA: run one refit interval of OGC steps with sync debug mode 'error'; 'pass' or the error."""
    if device.type != "cuda":
        return "skipped (no CUDA device)"
    arm = build_arm(model_name, "ce+ogc", batch, device, seed, interval, queue_size)
    arm.run(C.steps_to_fill(queue_size, batch, interval))  # warm-up: lazy init, cuDNN, queue full
    C.synchronize(device)
    refits = arm.loss.controller.refits
    try:
        with C.sync_debug_error(device):
            arm.run(interval)
    except RuntimeError as err:
        return f"FAIL: {str(err).splitlines()[0]}"
    C.synchronize(device)
    return "pass" if arm.loss.controller.refits > refits else "FAIL: no refit happened inside the checked steps"


def state_bytes(interval: int, queue_size: int, device: torch.device) -> dict[str, Any]:
    """Bytes of the OGC loss's state (queue, tau, mixture, generator): O(q), independent of data set size."""
    loss = make_loss_fn("ce+ogc", interval, queue_size).to(device)
    loss(torch.zeros(2, NUM_CLASSES, device=device), torch.zeros(2, dtype=torch.long, device=device), lr=LR)
    ctrl = loss.controller
    return {"total_bytes": ctrl.state_nbytes(), "queue_bytes": ctrl.queue.nbytes, "queue_size": queue_size,
            "dtype": str(ctrl.dtype)}


def print_report(rows: list[dict[str, Any]], pieces: dict[str, float], state: dict[str, Any], sync: dict[str, str],
                 info: dict[str, Any], interval: int) -> None:
    C.print_machine(info)
    headers = ["model", "batch", "steps/arm", "CE ms", "OGC no-refit ms", "refit ms", "refit timed",
               "OGC ms/step", "ratio", "ratio of means", "ratio (pieces)"]
    table = [[r["model"], r["batch"], r["steps_per_arm"], f"{r['ce_step_s'] * 1e3:.2f}",
              f"{r['ogc_plain_step_s'] * 1e3:.2f}", f"{r['refit_s'] * 1e3:.2f}",
              f"{r['refit_timed']} ({r['refits_timed']})", f"{r['ogc_step_s'] * 1e3:.2f}", f"{r['ratio']:.3f}",
              f"{r['ratio_of_means']:.3f}", f"{r['ratio_from_pieces']:.3f}"] for r in rows]
    print("\nTraining step, CE+OGC vs CE (steps alternate A B A B; medians)")
    print(C.format_table(headers, table))
    print(f"OGC ms/step = median non-refit OGC step + refit/{interval}; refit = median refit step - median "
          f"non-refit step (in situ), or timed separately on a full queue when no timed step refitted; "
          f"ratio = OGC ms/step / median CE step.\nratio of means: all timed steps (refits and outliers "
          f"included); ratio (pieces) = (CE step + OGC-vs-CE loss fwd+bwd + isolated refit/{interval}) / CE step")
    print("\nLoss-side pieces (batch of logits (B, 10); medians)")
    print(C.format_table(["piece", "us"], [[k, f"{v * 1e6:.1f}"] for k, v in pieces.items()]))
    print(f"\nOGC state: {state['total_bytes']} bytes (queue {state['queue_size']} x {state['dtype']} = "
          f"{state['queue_bytes']} B, plus tau, mixture, generator): O(q), independent of data set size")
    for model, result in sync.items():
        print(f"CUDA sync check ({model}, sync_debug_mode='error'): {result}")
    for r in rows:
        print(C.ratio_line(f"ce+ogc/ce step {r['model']} [{info['device']}]", r["ratio"], f"<= {TARGET}"))


def main(argv: list[str] | None = None) -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--models", default="cnn-small,resnet18", help="comma-separated: cnn-small, resnet18")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--interval", type=int, default=32)
    parser.add_argument("--queue-size", type=int, default=4096)
    parser.add_argument("--blocks", type=int, default=10, help="refit intervals of timed steps per arm")
    parser.add_argument("--cpu-resnet-steps", type=int, default=3, help="timed single steps per arm, ResNet-18 on CPU")
    parser.add_argument("--piece-repeats", type=int, default=300)
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in IN_SHAPES]
    if unknown or not models:
        raise ValueError(f"unknown model(s) {unknown or args.models!r}; allowed: {', '.join(IN_SHAPES)}")
    if args.quick:
        args.blocks, args.cpu_resnet_steps, args.piece_repeats = 1, 1, 20
    device = C.setup(args)
    info = C.machine_info(device)
    batch_of = {m: (8 if args.quick and m == "resnet18" and device.type == "cpu" else args.batch) for m in models}

    pieces = time_pieces(args.batch, device, args.seed, args.interval, args.queue_size, args.piece_repeats,
                         intervals=1 if args.quick else 4)
    rows = []
    for model in models:
        plan = make_plan(model, device, batch_of[model], args.interval, args.queue_size, args.blocks,
                         args.cpu_resnet_steps)
        row = time_model(model, batch_of[model], plan, device, args.seed, args.interval, args.queue_size)
        rows.append(summarise(row, pieces, args.interval))
    sync = {m: sync_check(m, batch_of[m], device, args.seed, args.interval, args.queue_size) for m in models}
    state = state_bytes(args.interval, args.queue_size, device)
    print_report(rows, pieces, state, sync, info, args.interval)
    C.write_json(args.json, {"benchmark": "step", "machine": info, "args": vars(args), "results": rows,
                             "pieces_s": pieces, "ogc_state": state, "cuda_sync_check": sync, "target": TARGET})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
