"""Training throughput of the CPU CIFAR recipe's ResNet-9 against this machine's own matrix-multiply peak.

Per model: images/s of the trainer's step (CE, batch 128) in float32 with contiguous and with
channels_last tensors, and under bf16 autocast + channels_last; the step's FLOPs (torch's FLOP
counter, convolutions and matrix products, forward and backward) times steps/s is the achieved
FLOP/s, reported as a share of the best n x n matrix product of the same precision timed in the
same run.  The arms alternate step by step, so drift of a shared machine hits them alike.  On a
CPU without native bf16 (emulated: about a tenth of float32's speed) the bf16 arm is left out
unless ``--bf16`` asks for it.
Run: ``python benchmarks/bench_model.py [--quick] [--json out.json] [--models resnet9-w16,resnet9-w24]``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from ogc_lab import cost  # noqa: E402

TARGET = ">= 0.40 of the matrix-multiply peak"
# arm name -> (amp, channels_last)
ARMS = {"float32": ("off", False), "float32 channels_last": ("off", True), "bf16 channels_last": ("bf16", True)}
PEAK_DTYPE = {"off": torch.float32, "bf16": torch.bfloat16}


def time_model(model: str, batch: int, steps: int, device: torch.device, seed: int,
               arm_names: list[str]) -> dict[str, dict[str, float]]:
    """Median step seconds, images/s, FLOP/s of each arm of ``model`` (alternating single steps)."""
    arms = {name: cost.build_arm(model, "ce", batch, device, seed, amp=ARMS[name][0], channels_last=ARMS[name][1])
            for name in arm_names}
    medians = cost.interleaved_medians({n: (lambda a=a: a.run(1)) for n, a in arms.items()}, steps, warmup=1,
                                       sync=device)
    flops = cost.step_flops(model, batch)
    return {name: {"step_s": s, "images_per_s": batch / s, "flop_per_s": flops / s, "step_flops": flops}
            for name, s in medians.items()}


def main(argv: list[str] | None = None) -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--models", default="resnet9-w16,resnet9-w24", help="comma-separated model names")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per arm")
    parser.add_argument("--bf16", action="store_true", help="time bf16 even where the CPU emulates it")
    args = parser.parse_args(argv)
    if args.quick:
        args.models, args.batch, args.steps = "resnet9-w16", 8, 2
    device = C.setup(args)
    info = cost.machine_info(device)
    with_bf16 = args.bf16 or device.type == "cuda" or info["cpu_native_bf16"]
    arm_names = [name for name, (amp, _) in ARMS.items() if with_bf16 or amp != "bf16"]
    n = 256 if args.quick else 2048
    peaks = {amp: cost.matmul_peak(PEAK_DTYPE[amp], n=n, device=device) for amp in {ARMS[a][0] for a in arm_names}}
    results = {model: time_model(model, args.batch, args.steps, device, args.seed, arm_names)
               for model in args.models.split(",")}
    C.print_machine(info)
    print(f"matrix-multiply peak ({n} x {n}, best of 5): "
          + ", ".join(f"{PEAK_DTYPE[amp]} {peak / 1e9:.1f} GFLOP/s" for amp, peak in peaks.items())
          + f" (native bf16: {info['cpu_native_bf16']}{'' if with_bf16 else ': bf16 not timed'})")
    rows, shares = [], {}
    for model, arms in results.items():
        base = arms["float32"]["images_per_s"]
        for name, r in arms.items():
            share = r["flop_per_s"] / peaks[ARMS[name][0]]
            shares[f"{model} {name}"] = r["share_of_peak"] = share
            rows.append([model, name, f"{r['step_s'] * 1e3:.0f}", f"{r['images_per_s']:.0f}",
                         f"{r['images_per_s'] / base:.2f}x", f"{r['flop_per_s'] / 1e9:.1f}", f"{share:.2f}"])
    print(f"\nTraining step (CE, batch {args.batch}, {args.steps} steps per arm, alternating)")
    print(C.format_table(["model", "arm", "ms/step", "images/s", "vs float32", "GFLOP/s", "share of peak"], rows))
    for model, arms in results.items():
        best = max(("float32", "float32 channels_last"), key=lambda a: arms[a]["images_per_s"])
        print(C.ratio_line(f"{model} float32 channels_last / contiguous images/s",
                           arms["float32 channels_last"]["images_per_s"] / arms["float32"]["images_per_s"]))
        print(C.ratio_line(f"{model} {best} share of the float32 peak", shares[f"{model} {best}"], TARGET))
    C.write_json(args.json, {"benchmark": "model", "machine": info, "args": vars(args),
                             "peak_flop_per_s": peaks, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
