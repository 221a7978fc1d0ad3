"""Per-step time of 2-process gloo DDP on the CPU (OGC queue all-gathered) against 1 process.

Each process trains the same model on its own batch of the same size (the per-rank batch) with
CE+OGC and the trainer's step.  With 2 processes the model is wrapped in DistributedDataParallel
(gradients all-reduced) and every step all-gathers the ranks' H = -log p values so each rank's
OGC queue holds the same values (checked at the end).  Timed in blocks of one refit interval after
a warm-up that fills the queue, median per step; runs alternate 1 process / 2 processes.  Also
reported: bytes of the per-step all-gather and the time of that all-gather alone.
Run: ``python benchmarks/bench_ddp.py [--quick] [--json out.json]``.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as C  # noqa: E402

from ogc_lab import cost  # noqa: E402
from ogc_lab.losses import make_loss  # noqa: E402
from ogc_lab.models import MODELS  # noqa: E402
from ogc_lab.ogc import OGC_DEFAULTS, label_prob  # noqa: E402

NUM_CLASSES = 10
WORLDS = (1, 2)
GATHER_REPEATS = 50


def in_shape(model: str) -> tuple[int, int, int]:
    """Digits 1x8x8 for cnn-small, CIFAR 3x32x32 for the others."""
    return (1, 8, 8) if model == "cnn-small" else (3, 32, 32)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_gather(h: torch.Tensor, world: int) -> float:
    """Median seconds of one all-gather of ``h`` (what the OGC controller does each step)."""
    parts = [torch.empty_like(h) for _ in range(world)]
    times = [cost.timed(lambda: dist.all_gather(parts, h), h.device) for _ in range(GATHER_REPEATS)]
    return cost.median(times)


def queues_identical(queue: torch.Tensor, world: int) -> bool:
    """True when every rank's OGC queue equals rank 0's (NaN slots compared as equal)."""
    parts = [torch.empty_like(queue) for _ in range(world)]
    dist.all_gather(parts, queue)
    return all(torch.equal(p.nan_to_num(-1.0), queue.nan_to_num(-1.0)) for p in parts)


def worker(rank: int, world: int, port: int, cfg: dict[str, Any], out: str) -> None:
    """One process: build, warm up, time blocks of ``interval`` steps; rank 0 writes the results."""
    torch.set_num_threads(cfg["threads"])
    distributed = world > 1
    if distributed:
        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
        dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        net = cost.recipe_model(cfg["model"], in_shape(cfg["model"]), torch.device("cpu"), cfg["seed"], False)
        model: nn.Module = nn.parallel.DistributedDataParallel(net) if distributed else net
        loss = make_loss("ce+ogc", NUM_CLASSES, validate=False, distributed=distributed,
                         interval=cfg["interval"], queue_size=cfg["queue_size"])
        step = cost.recipe_step(model, loss)
        gen = torch.Generator().manual_seed(cfg["seed"] + rank)
        x = torch.randn(cfg["batch"], *in_shape(cfg["model"]), generator=gen)
        y = torch.randint(0, NUM_CLASSES, (cfg["batch"],), generator=gen)
        run = lambda steps: [step(x, y) for _ in range(steps)]  # noqa: E731
        run(cfg["warmup_steps"])
        blocks = [cost.timed(lambda: run(cfg["interval"]), x.device) / cfg["interval"] for _ in range(cfg["blocks"])]
        h = -torch.log(label_prob(net(x).detach(), y)).to(loss.controller.dtype)
        result = {
            "world": world, "step_s": cost.median(blocks), "block_step_s": blocks, "refits": loss.controller.refits,
            "gather_bytes_sent_per_rank": h.nbytes, "gather_bytes_received_per_rank": h.nbytes * world,
            "grad_allreduce_bytes": sum(p.numel() * p.element_size() for p in net.parameters()),
        }
        if distributed:
            result["gather_alone_s"] = time_gather(h, world)
            result["queues_identical"] = queues_identical(loss.controller.queue, world)
        if rank == 0:
            Path(out).write_text(json.dumps(result))
    finally:
        if distributed:
            dist.destroy_process_group()


def launch(world: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """Spawn ``world`` processes (a free port each time) and return rank 0's results."""
    with tempfile.TemporaryDirectory(prefix="bench_ddp_") as tmp:
        out = Path(tmp) / "result.json"
        mp.spawn(worker, args=(world, free_port(), cfg, str(out)), nprocs=world, join=True)
        return json.loads(out.read_text())


def main(argv: list[str] | None = None) -> int:
    parser = C.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--model", default="cnn-small", help=f"one of {', '.join(MODELS)}")
    parser.add_argument("--batch", type=int, default=128, help="per-rank batch")
    parser.add_argument("--interval", type=int, default=OGC_DEFAULTS.interval)
    parser.add_argument("--queue-size", type=int, default=OGC_DEFAULTS.queue_size)
    parser.add_argument("--blocks", type=int, default=4, help="timed blocks of one interval per run")
    parser.add_argument("--repeats", type=int, default=2, help="runs per process count, alternating")
    args = parser.parse_args(argv)
    if args.model not in MODELS:
        raise ValueError(f"unknown model {args.model!r}; allowed: {', '.join(MODELS)}")
    if args.device not in ("auto", "cpu"):
        raise ValueError(f"bench_ddp runs gloo on the CPU only; got --device {args.device!r}, allowed: auto, cpu")
    if args.quick:
        args.blocks, args.repeats = 1, 1
    C.setup(args)
    info = cost.machine_info(torch.device("cpu"))
    warmup = cost.steps_to_fill(args.queue_size, args.batch, args.interval)
    cfg = dict(model=args.model, batch=args.batch, interval=args.interval, queue_size=args.queue_size,
               blocks=args.blocks, warmup_steps=warmup, threads=torch.get_num_threads(), seed=args.seed)
    runs: dict[int, list[dict[str, Any]]] = {w: [] for w in WORLDS}
    for _ in range(args.repeats):
        for world in WORLDS:
            runs[world].append(launch(world, cfg))
    step_s = {w: cost.median([r["step_s"] for r in rs]) for w, rs in runs.items()}
    ratio = step_s[2] / step_s[1]
    two = runs[2][0]

    C.print_machine(info)
    print(f"model {args.model}, CE+OGC, per-rank batch {args.batch}, gloo on 127.0.0.1, {cfg['threads']} thread(s) "
          f"per process; {args.blocks} blocks of {args.interval} steps per run after {warmup} warm-up steps")
    rows = [[w, f"{step_s[w] * 1e3:.2f}", len(rs), " ".join(f"{r['step_s'] * 1e3:.2f}" for r in rs)]
            for w, rs in runs.items()]
    print(C.format_table(["processes", "ms/step (median)", "runs", "per-run ms/step"], rows))
    print(f"per-step OGC all-gather: {two['gather_bytes_sent_per_rank']} B sent, "
          f"{two['gather_bytes_received_per_rank']} B received per rank ({args.batch} H values x "
          f"{two['gather_bytes_sent_per_rank'] // args.batch} B); alone it takes {two['gather_alone_s'] * 1e6:.0f} us; "
          f"DDP gradient all-reduce: {two['grad_allreduce_bytes']} B per step")
    print(f"OGC queues identical across ranks: {all(r['queues_identical'] for r in runs[2])}")
    print(C.ratio_line("ddp 2-process/1-process step", ratio))
    C.write_json(args.json, {"benchmark": "ddp", "machine": info, "args": vars(args), "config": cfg,
                             "runs": {str(w): rs for w, rs in runs.items()}, "step_s": step_s, "ratio": ratio})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
