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
low-noise estimate of the ratio.  The measuring is ``ogc_lab.cost`` (shared with the book's cost chapter).
Run: ``python benchmarks/bench_step.py [--quick] [--json out.json]``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from ogc_lab import cost  # noqa: E402
from ogc_lab.ogc import OGC_DEFAULTS, label_prob, transformed_loss  # noqa: E402

NUM_CLASSES = cost.NUM_CLASSES
LR = cost.LR  # the recipe's first learning rate: target ratio OGC_DEFAULTS.target(LR) = 3
TARGET = 1.03
IN_SHAPES = {name: cost.IN_SHAPES[name] for name in ("cnn-small", "resnet18")}
PRECISION_TARGET = ">= 3 where the hardware has native bf16"
FIXED_TAU = 4.0  # threshold of the fixed-tau transformed-loss piece (both branches in use)


@dataclass(frozen=True)
class Plan:
    """How one model is timed: untimed warm-up steps, then ``steps`` timed steps per arm, alternating."""

    warmup_steps: int
    steps: int


def make_plan(model_name: str, device: torch.device, batch: int, interval: int, queue_size: int, blocks: int,
              cpu_resnet_steps: int) -> Plan:
    """``blocks`` refit intervals after the queue is full, except ResNet-18 on a CPU (a few steps, no refit)."""
    if model_name == "resnet18" and device.type == "cpu":
        return Plan(warmup_steps=1, steps=cpu_resnet_steps)
    return Plan(warmup_steps=cost.steps_to_fill(queue_size, batch, interval), steps=blocks * interval)


def time_model(model_name: str, batch: int, plan: Plan, device: torch.device, seed: int,
               interval: int, queue_size: int) -> dict[str, Any]:
    """Per-step seconds of CE and CE+OGC, one step each in turn (``cost.time_training_steps``), as a report row."""
    timing = cost.time_training_steps(model_name, ("ce", "ce+ogc"), batch, plan.steps, device, threads=0,
                                      warmup_steps=plan.warmup_steps, interval=interval, queue_size=queue_size,
                                      seed=seed)
    ce, ogc = timing["arms"]["ce"], timing["arms"]["ce+ogc"]
    return {
        "model": model_name, "batch": batch, "warmup_steps": plan.warmup_steps, "steps_per_arm": plan.steps,
        "ce_step_s": ce["median_step_s"], "ogc_plain_step_s": ogc["plain_step_s"],
        "ogc_refit_steps": ogc["refit_step_times_s"], "ce_mean_step_s": ce["mean_step_s"],
        "ogc_mean_step_s": ogc["mean_step_s"], "refits_timed": ogc["refits_timed"], "refit_s": ogc["refit_s"],
        "refit_timed": ogc["refit_timed"], "ogc_step_s": ogc["step_s"], "ratio": ogc["ratio"],
        "step_times_s": {"ce": ce["step_times_s"], "ce+ogc": ogc["step_times_s"]},
    }


def time_pieces(batch: int, device: torch.device, seed: int, interval: int, queue_size: int,
                repeats: int, intervals: int) -> dict[str, float]:
    """Median seconds of each loss-side piece on (batch, 10) logits, on the benchmark device."""
    gen = torch.Generator().manual_seed(seed)
    logits = (3.0 * torch.randn(batch, NUM_CLASSES, generator=gen)).to(device).requires_grad_()
    targets = torch.randint(0, NUM_CLASSES, (batch,), generator=gen).to(device)
    tau = torch.tensor(FIXED_TAU, device=device)
    ce = cost.make_loss_fn("ce")

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
    out = {name: cost.median(t) for name, t in C.interleaved(stateless, repeats, device, warmup=3).items()}

    update = cost.time_controller_update(batch, device, seed, interval, queue_size, intervals)
    out["controller.update: push only"] = update["push_s"]
    out["controller.update: push + refit"] = update["push_refit_s"]
    out["refit (update with refit - push only)"] = update["refit_s"]
    ogc = cost.make_loss_fn("ce+ogc", interval, queue_size).to(device)
    cost.fill_queue(ogc, logits.detach(), targets)
    plain, with_refit = cost.timed_calls(fwd_bwd(lambda: ogc(logits, targets, lr=LR)), ogc, intervals * interval,
                                         device)
    out["OGCLoss fwd+bwd, no refit"] = cost.median(plain)
    out["OGCLoss fwd+bwd, with refit"] = cost.median(with_refit)
    return out


def summarise(row: dict[str, Any], pieces: dict[str, float], interval: int) -> dict[str, Any]:
    """Add two cross-checks of the ratio: the ratio of mean step times (refits included, but outliers too)
    and the low-noise estimate from the loss-side pieces (CE step + OGC-vs-CE loss cost + isolated refit / interval).
    """
    loss_overhead = pieces["OGCLoss fwd+bwd, no refit"] - pieces["CE loss module fwd+bwd (the CE arm)"]
    ce = row["ce_step_s"]
    return {
        **row,
        "ratio_of_means": row["ogc_mean_step_s"] / row["ce_mean_step_s"],
        "ratio_from_pieces": (ce + loss_overhead + pieces["refit (update with refit - push only)"] / interval) / ce,
    }


def sync_check(model_name: str, batch: int, device: torch.device, seed: int, interval: int, queue_size: int) -> str:
    """On CUDA: run one refit interval of OGC steps with sync debug mode 'error'; 'pass' or the error."""
    if device.type != "cuda":
        return "skipped (no CUDA device)"
    arm = cost.build_arm(model_name, "ce+ogc", batch, device, seed, interval, queue_size)
    arm.run(cost.steps_to_fill(queue_size, batch, interval))  # warm-up: lazy init, cuDNN, queue full
    cost.synchronize(device)
    refits = arm.loss.controller.refits
    try:
        with C.sync_debug_error(device):
            arm.run(interval)
    except RuntimeError as err:
        return f"FAIL: {str(err).splitlines()[0]}"
    cost.synchronize(device)
    return "pass" if arm.loss.controller.refits > refits else "FAIL: no refit happened inside the checked steps"


def state_bytes(interval: int, queue_size: int, device: torch.device) -> dict[str, Any]:
    """Bytes of the OGC loss's state (queue, tau, mixture, generator): O(q), independent of data set size."""
    return cost.ogc_state_bytes(cost.make_loss_fn("ce+ogc", interval, queue_size).to(device))


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


def time_precision(model: str, batch: int, args: Any, device: torch.device) -> dict[str, Any]:
    """The CE training step of ``model`` in float32 and under bf16 autocast + channels_last, in rotation."""
    return cost.time_precision_steps(model.strip(), "ce", batch, args.precision_steps, device, threads=0,
                                     warmup_steps=1 if args.quick else 2, seed=args.seed)


def print_precision(rows: list[dict[str, Any]], info: dict[str, Any]) -> None:
    """Table and RATIO lines of the precision timings (float32 median step / bf16 median step)."""
    if not rows:
        return
    print(f"\nTraining step, float32 vs bf16 autocast + channels_last (CE; steps alternate; medians; "
          f"native bf16: {rows[0]['native_bf16']})")
    table = [[r["model"], r["batch"], r["steps_per_arm"], f"{r['float32_step_s'] * 1e3:.1f}",
              f"{r['bf16_step_s'] * 1e3:.1f}", f"{r['speedup']:.2f}x"] for r in rows]
    print(C.format_table(["model", "batch", "steps/arm", "float32 ms", "bf16 ms", "speed-up"], table))
    for r in rows:
        print(C.ratio_line(f"float32/bf16 step {r['model']} [{info['device']}]", r["speedup"], PRECISION_TARGET))


def main(argv: list[str] | None = None) -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--models", default="cnn-small,resnet18", help="comma-separated: cnn-small, resnet18")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--interval", type=int, default=OGC_DEFAULTS.interval)
    parser.add_argument("--queue-size", type=int, default=OGC_DEFAULTS.queue_size)
    parser.add_argument("--blocks", type=int, default=10, help="refit intervals of timed steps per arm")
    parser.add_argument("--cpu-resnet-steps", type=int, default=3, help="timed single steps per arm, ResNet-18 on CPU")
    parser.add_argument("--piece-repeats", type=int, default=300)
    parser.add_argument("--precision-models", default="cnn8,resnet18",
                        help="models timed in float32 vs bf16 autocast (CE step); empty to skip")
    parser.add_argument("--precision-steps", type=int, default=6, help="timed steps per precision arm")
    args = parser.parse_args(argv)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in IN_SHAPES]
    if unknown or not models:
        raise ValueError(f"unknown model(s) {unknown or args.models!r}; allowed: {', '.join(IN_SHAPES)}")
    if args.quick:
        args.blocks, args.cpu_resnet_steps, args.piece_repeats, args.precision_steps = 1, 1, 20, 1
    device = C.setup(args)
    info = cost.machine_info(device)
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
    precision = [time_precision(m, batch_of.get(m, args.batch) if not args.quick else 8, args, device)
                 for m in args.precision_models.split(",") if m.strip()]
    print_precision(precision, info)
    C.write_json(args.json, {"benchmark": "step", "machine": info, "args": vars(args), "results": rows,
                             "pieces_s": pieces, "ogc_state": state, "cuda_sync_check": sync, "target": TARGET,
                             "precision": precision, "precision_target": PRECISION_TARGET})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
