"""CPU throughput of training runs by thread layout: one run at 1 thread, one at N threads, N runs at 1.

The question a CPU sweep asks: given N cores, is it faster to give one run all of them or to run N
runs side by side with a thread each?  Each layout trains the trainer's step (CE, cnn8, batch 128,
amp=auto) for a fixed wall time in fresh worker processes; the figure is training images per second
summed over the runs.  The layouts are measured back to back in one invocation.
Run: ``python benchmarks/bench_threads.py [--quick] [--json out.json]``.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from ogc_lab import cost  # noqa: E402


def _worker(model: str, batch: int, threads: int, seconds: float, start: Any, out: Any) -> None:
    """Warm up, wait for the common start, then count training steps for ``seconds``."""
    import torch

    torch.set_num_threads(threads)
    arm = cost.build_arm(model, "ce", batch, torch.device("cpu"), seed=0)
    arm.run(2)
    start.wait()
    began = time.perf_counter()
    steps = 0
    while time.perf_counter() - began < seconds:
        arm.run(1)
        steps += 1
    out.put(steps * batch / (time.perf_counter() - began))


def layout_throughput(runs: int, threads: int, model: str, batch: int, seconds: float) -> float:
    """Images per second summed over ``runs`` concurrent processes of ``threads`` threads each."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Barrier(runs), ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(model, batch, threads, seconds, start, out)) for _ in range(runs)]
    for p in procs:
        p.start()
    rates = [out.get() for _ in procs]
    for p in procs:
        p.join()
    return sum(rates)


def main(argv: list[str] | None = None) -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn8")
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--seconds", type=float, default=20.0, help="timed wall time per layout")
    parser.add_argument("--cores", type=int, default=os.cpu_count() or 1, help="N: cores to lay out")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.batch = 1.0, 16
    info = cost.machine_info("cpu")
    layouts = {"1 run x 1 thread": (1, 1), f"1 run x {args.cores} threads": (1, args.cores),
               f"{args.cores} runs x 1 thread": (args.cores, 1)}
    rates = {name: layout_throughput(runs, threads, args.model, args.batch, args.seconds)
             for name, (runs, threads) in layouts.items()}
    C.print_machine(info)
    base = rates["1 run x 1 thread"]
    print(f"\nTraining throughput by thread layout ({args.model}, batch {args.batch}, CE, amp=auto, "
          f"{args.seconds:g} s a layout)")
    print(C.format_table(["layout", "images/s (all runs)", "vs 1 run x 1 thread"],
                         [[n, f"{r:.0f}", f"{r / base:.2f}x"] for n, r in rates.items()]))
    many, wide = rates[f"{args.cores} runs x 1 thread"], rates[f"1 run x {args.cores} threads"]
    print(C.ratio_line(f"{args.cores} runs x 1 thread / 1 run x {args.cores} threads", many / wide, "> 1: sweep "
                       "one run per core"))
    C.write_json(args.json, {"benchmark": "threads", "machine": info, "args": vars(args), "images_per_s": rates})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
