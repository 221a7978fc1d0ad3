"""The training engine: one ``Config`` in, one ``result.json`` (and per-epoch checkpoints) out.

Noise is applied to the training labels only; the clean labels are kept beside them solely for
diagnostics (how well the clipping separates truly noisy from truly clean samples).  A run killed
at any point resumes from its last epoch checkpoint and, on CPU in deterministic mode, ends
bit-identical to an uninterrupted run.  Under ``torchrun`` it trains with DistributedDataParallel.
"""

from __future__ import annotations

import math
import os
import random
import sys
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm import tqdm  # plain bars: shown on a TTY only, and no widget warning inside notebooks

from .batches import Augment, DeviceBatches, channel_tensors, dataloader_batches, normalise
from .data import load_dataset
from .datasplit import DataSplit
from .files import folder_lock, source_revision, versions
from .hardware import autocast, device_name, resolve_amp, select_device, torch_threads, wants_channels_last
from .models import make_model
from .ogc import BaseLoss, base_loss, label_prob
from .optim import SCHEDULERS, build_loss, make_optimizer, train_step
from .recipes import Config
from .runs import (
    CHECKPOINT,
    CHECKPOINT_FORMAT,
    EPOCHS_CSV,
    STEPS_CSV,
    CsvLog,
    check_like,
    check_optimizer_state,
    check_resumable,
    check_state_dict,
    last_epochs_mean,
    load_checkpoint,
    prepare_out_dir,
    save_checkpoint,
    write_result,
)

# ---------------------------------------------------------------- environment


@dataclass(frozen=True)
class DistInfo:
    """This process's place in a (possibly single-process) data-parallel job."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def dist_info() -> DistInfo:
    """Read RANK / WORLD_SIZE / LOCAL_RANK as set by torchrun (single process when unset)."""
    env = os.environ
    return DistInfo(int(env.get("RANK", 0)), int(env.get("WORLD_SIZE", 1)), int(env.get("LOCAL_RANK", 0)))


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (model init, dropout)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _configure_determinism(config: Config, device: torch.device) -> None:
    """Deterministic kernels when asked (bit-exact reruns); otherwise let cuDNN pick fast ones."""
    if config.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.use_deterministic_algorithms(config.deterministic)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = not config.deterministic
        torch.backends.cuda.matmul.allow_tf32 = not config.deterministic
        torch.backends.cudnn.allow_tf32 = not config.deterministic


def _init_process_group(info: DistInfo, device: torch.device) -> bool:
    """Join the torchrun job (nccl on CUDA, gloo otherwise); True if this call created the group."""
    if info.world == 1 or dist.is_initialized():
        return False
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return True


# ---------------------------------------------------------------- data and labels


@dataclass
class Labels:
    """Training labels the model sees (noisy) and the truth beside them (diagnostics only)."""

    noisy: Tensor
    clean: Tensor
    report: dict[str, Any]


def _shard(n: int, info: DistInfo) -> Tensor:
    """Indices of this rank's equal-sized share of n training samples (every rank takes as many steps)."""
    per_rank = n // info.world
    return torch.arange(n)[info.rank :: info.world][:per_rank]


def holdout(n: int, fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Sorted indices (kept, held out) of a seeded random split of n samples that holds out round(n * fraction).

    Its own generator, so the split depends on (n, fraction, seed) alone and draws nothing from the run's RNGs.
    """
    count = round(n * fraction)
    if fraction > 0 and not 0 < count < n:
        raise ValueError(f"val_fraction={fraction} of {n} training samples holds out {count}; "
                         f"allowed: a share that holds out between 1 and {n - 1}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return order[count:].sort().values, order[:count].sort().values


def _batches(run: Run, epoch: int) -> Iterable[tuple[Tensor, Tensor, Tensor]]:
    """One epoch of shuffled, augmented, normalised training batches (a last batch of one sample dropped).

    The device pipeline draws order and augmentation from the run's generator (checkpointed); the
    DataLoader pipeline seeds each epoch's loader from (seed, rank, epoch), so both resume exactly.
    """
    c, split = run.config, run.split
    batch_size = c.batch_size // run.info.world  # batch_size is the global batch, as in the recipes
    augment = augmentation(c) if split.is_image else None
    single = len(run.train_x) % batch_size == 1  # a last batch of one sample: BatchNorm cannot train on it
    if c.pipeline == "device":
        fmt = torch.channels_last if run.channels_last else torch.contiguous_format
        return DeviceBatches(run.train_x, run.train_noisy, batch_size, shuffle=True, augment=augment,
                             mean=split.mean, std=split.std, generator=run.generator, memory_format=fmt,
                             drop_last=single)
    seed = int(np.random.SeedSequence([c.seed, run.info.rank, epoch]).generate_state(1)[0])
    return dataloader_batches(run.train_x, run.train_noisy, batch_size, shuffle=True, augment=augment,
                              mean=split.mean, std=split.std, seed=seed, num_workers=c.num_workers,
                              pin_memory=run.device.type == "cuda", drop_last=single)


# ---------------------------------------------------------------- diagnostics


class GradStats:
    """Per-sample |dl/dp| of truly clean vs truly noisy samples, before and after clipping at tau.

    Summed on the device every step (no host sync) and read out every ``log_interval`` steps, so a
    row of steps.csv describes the window of steps since the previous row.
    """

    def __init__(self, base: BaseLoss, device: torch.device) -> None:
        self.base = base
        self.device = device
        self.reset()

    def reset(self) -> None:
        # g clean, g noisy, min(g, tau) clean, min(g, tau) noisy, count clean, count noisy
        self.sums = torch.zeros(6, dtype=torch.float64, device=self.device)
        self.h: list[Tensor] = []
        self.is_noisy: list[Tensor] = []

    @torch.no_grad()
    def update(self, logits: Tensor, targets: Tensor, clean: Tensor, tau: Tensor) -> None:
        p = label_prob(logits, targets)
        g = self.base.grad(p)
        g_clip = torch.minimum(g, tau.to(g))
        noisy = targets != clean
        masks = torch.stack([~noisy, noisy]).to(g.dtype)  # masked sums, not boolean indexing: no host sync
        self.sums += torch.cat([masks @ g, masks @ g_clip, masks.sum(1)]).double()
        self.h.append(-torch.log(p))
        self.is_noisy.append(noisy)

    def read(self, info: DistInfo) -> dict[str, float]:
        """Window means and ratios (summed over ranks) and the AUC of H for noisy vs clean (this rank)."""
        sums = self.sums.clone()
        if info.world > 1:
            dist.all_reduce(sums)
        gc, gn, cc, cn, nc, nn_ = sums.tolist()  # clean/noisy: g, min(g, tau), counts
        h = torch.cat(self.h).float().cpu().numpy() if self.h else np.zeros(0)
        y = torch.cat(self.is_noisy).cpu().numpy() if self.is_noisy else np.zeros(0, bool)
        out = {
            "noisy_frac": nn_ / max(nc + nn_, 1.0),
            "g_clean": _div(gc, nc),
            "g_noisy": _div(gn, nn_),
            "g_clean_clipped": _div(cc, nc),
            "g_noisy_clipped": _div(cn, nn_),
            "auc_h": auc(h, y),
        }
        out["ratio_before"] = _div(out["g_noisy"], out["g_clean"])
        out["ratio_after"] = _div(out["g_noisy_clipped"], out["g_clean_clipped"])
        self.reset()
        return out


def _div(a: float, b: float) -> float:
    return a / b if b > 0 and math.isfinite(a) else float("nan")


def auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for ``positive`` (Mann-Whitney, tied ranks averaged); nan if one class."""
    scores, positive = np.asarray(scores, dtype=np.float64), np.asarray(positive, dtype=bool)
    n_pos = int(positive.sum())
    n_neg = positive.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    mid_rank = np.cumsum(counts) - (counts - 1) / 2.0  # 1-based rank of each distinct value, ties averaged
    rank_sum = mid_rank[inverse][positive].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def diagnostic_base(loss_fn: nn.Module) -> BaseLoss:
    """The base loss whose |dl/dp| is diagnosed: the OGC loss's own, else CE's 1/p (what CE would see)."""
    base = getattr(loss_fn, "base", None)
    return base if isinstance(base, BaseLoss) else base_loss("ce")


def augmentation(config: Config) -> Augment:
    """The training augmentation a config asks for (applied to image data only)."""
    return Augment(config.crop_padding, config.flip, config.rotation)


def loss_tau(loss_fn: nn.Module, device: torch.device) -> Tensor:
    """The clipping threshold in force (a 0-d tensor; inf for losses without one)."""
    tau = getattr(loss_fn, "tau", None)
    return tau if isinstance(tau, Tensor) else torch.full((), math.inf, device=device)  # fill kernel: no copy


def ratio_target(loss_fn: nn.Module, lr: float, config: Config) -> float:
    """The noisy/clean gradient ratio the loss aims for now: an OGC loss's own ``target`` (1 + lr * eps);
    for other losses the one OGC would aim for under ``config``, logged as their reference line."""
    target = getattr(loss_fn, "target", None)
    return target if target is not None else config.ogc_settings.target(lr)


# ---------------------------------------------------------------- checkpoints


def _rng_state(generator: torch.Generator) -> dict[str, Any]:
    """Every random state the run draws from, in tensors and plain values (loadable weights_only)."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": (name, torch.from_numpy(keys.astype(np.int64)), pos, has_gauss, cached),
        "random": random.getstate(),
        "batches": generator.get_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict[str, Any], generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
    random.setstate(state["random"])
    generator.set_state(state["batches"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _gather(obj: Any, info: DistInfo) -> list[Any]:
    if info.world == 1:
        return [obj]
    out: list[Any] = [None] * info.world
    dist.all_gather_object(out, obj)
    return out


# ---------------------------------------------------------------- the loop


@dataclass
class Run:
    """Everything one training run holds while it trains."""

    config: Config
    info: DistInfo
    device: torch.device
    split: DataSplit
    labels: Labels
    net: nn.Module  # the bare model (state dicts, evaluation)
    model: nn.Module  # what the step calls: net, maybe wrapped in DDP and compiled
    loss_fn: nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator  # shuffling and augmentation (device pipeline)
    train_x: Tensor  # this rank's shard
    train_noisy: Tensor
    train_clean: Tensor
    val_x: Tensor  # held-out training samples with their noisy labels (empty without val_fraction)
    val_noisy: Tensor
    channels_last: bool
    amp: bool
    amp_reason: str  # why amp is on or off here (recorded in the result)

    def autocast(self) -> AbstractContextManager[Any]:
        """bf16 autocast on the run's device when amp is on, else nothing."""
        return autocast(self.device, self.amp)


def _build(config: Config, info: DistInfo, device: torch.device) -> Run:
    """Load data, corrupt labels, build model, loss and optimiser, in a fixed order (so RNG use is fixed)."""
    seed_everything(config.seed)
    split = load_dataset(config.dataset, root=config.data_root, download=config.download, seed=config.seed,
                         subset=config.subset, test_subset=config.test_subset)
    noisy = split.noisy_labels(config.noise, config.seed)
    labels = Labels(noisy.labels.to(split.train_y.device), split.train_y.clone(), noisy.report.to_dict())
    kept, held = holdout(len(labels.noisy), config.val_fraction, config.seed)
    shard = kept[_shard(len(kept), info)]
    on = device if config.pipeline == "device" else torch.device("cpu")
    train_x, train_noisy, train_clean = (t[shard].to(on) for t in (split.train_x, labels.noisy, labels.clean))
    val_x, val_noisy = split.train_x[held], labels.noisy[held]

    net = make_model(config.model, split.num_classes, split.input_shape).to(device)
    amp, amp_reason = resolve_amp(config.amp, device, split.input_shape)
    channels_last = split.is_image and config.channels_last and wants_channels_last(device, amp, split.input_shape)
    if channels_last:
        net = net.to(memory_format=torch.channels_last)
    model: nn.Module = net
    if info.world > 1:
        model = nn.parallel.DistributedDataParallel(net, device_ids=[device.index] if device.type == "cuda" else None)
    if config.compile:
        model = torch.compile(model)

    loss_fn = build_loss(config, split.num_classes, distributed=info.world > 1).to(device)
    optimizer = make_optimizer(net.parameters(), config, device)
    scheduler = SCHEDULERS[config.schedule](optimizer, config)
    generator = torch.Generator(device=on if on.type != "mps" else "cpu").manual_seed(config.seed + info.rank)
    return Run(
        config, info, device, split, labels, net, model, loss_fn, optimizer, scheduler, generator,
        train_x, train_noisy, train_clean, val_x, val_noisy, channels_last, amp, amp_reason,
    )


def _train_epoch(
    run: Run, epoch: int, step: int, steps_log: CsvLog | None, progress: bool
) -> tuple[dict[str, float], int]:
    """One pass over this rank's training shard; returns the epoch's training metrics and the step count."""
    c, dev = run.config, run.device
    run.model.train()
    lr = run.optimizer.param_groups[0]["lr"]
    totals = torch.zeros(len(TRAIN_COUNTS), dtype=torch.float64, device=dev)
    stats = GradStats(diagnostic_base(run.loss_fn), dev)
    batches = _batches(run, epoch)
    for inputs, targets, idx in tqdm(batches, desc=f"epoch {epoch + 1}", leave=False, disable=not progress):
        inputs, targets = inputs.to(dev, non_blocking=True), targets.to(dev, non_blocking=True)
        clean = run.train_clean[idx.to(run.train_clean.device)].to(dev, non_blocking=True)
        loss, logits = train_step(run.model, run.loss_fn, run.optimizer, inputs, targets, lr, run.amp, c.grad_clip,
                                  c.l1_penalty)
        step += 1

        logits = logits.detach().float()
        totals += batch_counts(loss.detach(), logits.argmax(1), targets, clean)
        stats.update(logits, targets, clean, loss_tau(run.loss_fn, dev))
        if step % c.log_interval == 0:
            row = {"step": step, "epoch": epoch + 1, "lr": lr, "target": ratio_target(run.loss_fn, lr, c),
                   **stats.read(run.info)}
            for key, value in _loss_diagnostics(run.loss_fn, dev).items():
                row.setdefault(key, value)
            if steps_log is not None:
                steps_log.append(row)
    if run.info.world > 1:
        dist.all_reduce(totals)
    t = dict(zip(TRAIN_COUNTS, totals.tolist()))
    if not math.isfinite(t["loss"]):
        raise ValueError(f"training diverged: the loss is {t['loss']} in epoch {epoch + 1}; lower lr={c.lr}")
    n, flipped = t["n"], t["flipped"]
    metrics = {
        "train_loss": t["loss"] / n,
        "train_acc_noisy": t["pred_noisy"] / n,
        "train_acc_clean": t["pred_clean"] / n,
        # memorisation: how the flipped samples are predicted (their given label vs their true one)
        "flipped_fit_noisy": _div(t["flipped_pred_noisy"], flipped),
        "flipped_fit_clean": _div(t["flipped_pred_clean"], flipped),
        "unflipped_acc": _div(t["pred_clean"] - t["flipped_pred_clean"], n - flipped),
    }
    return metrics, step


# per-epoch training counts, summed on the device (one host read an epoch)
TRAIN_COUNTS = ("loss", "n", "pred_noisy", "pred_clean", "flipped", "flipped_pred_noisy", "flipped_pred_clean")


def batch_counts(loss: Tensor, pred: Tensor, targets: Tensor, clean: Tensor) -> Tensor:
    """One batch's contribution to ``TRAIN_COUNTS`` (float64, no host sync)."""
    n = targets.new_full((), len(targets))  # a fill kernel: no host-to-device copy
    flipped = targets != clean
    hit_noisy, hit_clean = pred == targets, pred == clean
    return torch.stack([
        loss * n, n, hit_noisy.sum(), hit_clean.sum(),
        flipped.sum(), (hit_noisy & flipped).sum(), (hit_clean & flipped).sum(),
    ]).double()


def _loss_diagnostics(loss_fn: nn.Module, device: torch.device) -> dict[str, float]:
    """The loss's own diagnostics (OGC: tau, mixture, refits, clipped fraction), else just tau = inf."""
    if hasattr(loss_fn, "diagnostics"):
        return dict(loss_fn.diagnostics())
    return {"tau": float(loss_tau(loss_fn, device))}


@torch.no_grad()
def accuracy(run: Run, x: Tensor, y: Tensor) -> float:
    """Accuracy of the bare model on (x, y) (samples sharded over ranks, counts summed)."""
    c, split, dev, info = run.config, run.split, run.device, run.info
    run.net.eval()
    idx = _shard(len(y), info)
    if info.is_main:  # the remainder left by equal shards goes to rank 0
        idx = torch.cat([idx, torch.arange(len(idx) * info.world, len(y))])
    counts = torch.zeros(2, dtype=torch.float64, device=dev)
    mean, std = channel_tensors(split.mean, split.std, dev)
    for chunk in idx.split(c.eval_batch_size):
        inputs = normalise(x[chunk].to(dev), mean, std)
        if run.channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with run.autocast():
            pred = run.net(inputs).argmax(1)
        counts += torch.stack([(pred == y[chunk].to(dev)).sum(), pred.new_full((), len(chunk))]).double()
    if info.world > 1:
        dist.all_reduce(counts)
    return float(counts[0] / counts[1])


def _checkpoint_state(run: Run, epoch: int, step: int, history: list[dict[str, Any]], elapsed: float) -> dict[str, Any]:
    return {
        "format": CHECKPOINT_FORMAT,
        "config": run.config.to_dict(),
        "world_size": run.info.world,
        "epoch": epoch,
        "step": step,
        "elapsed_s": elapsed,
        "history": history,
        "model": run.net.state_dict(),
        "optimizer": run.optimizer.state_dict(),
        "scheduler": run.scheduler.state_dict(),
        "loss": run.loss_fn.state_dict(),
        "rng": _gather(_rng_state(run.generator), run.info),
    }


def _restore(run: Run, state: dict[str, Any], path: Path) -> None:
    """Load a checkpoint (checked by ``load_checkpoint``) into the run, once its tensors fit the run's."""
    check_state_dict(state["model"], run.net, "model", path)
    check_state_dict(state["loss"], run.loss_fn, "loss", path)
    check_optimizer_state(state["optimizer"], run.net, path)
    live_rng = {k: v for k, v in _rng_state(run.generator).items() if k != "cuda"}  # a CPU run's has no cuda
    for entry, saved, live in [("loss", state["loss"], run.loss_fn.state_dict()),
                               ("optimizer.param_groups", state["optimizer"]["param_groups"],
                                run.optimizer.state_dict()["param_groups"]),
                               ("scheduler", state["scheduler"], run.scheduler.state_dict()),
                               (f"rng[{run.info.rank}]", state["rng"][run.info.rank], live_rng)]:
        check_like(saved, live, entry, path)
    run.net.load_state_dict(state["model"])
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.loss_fn.load_state_dict(state["loss"])
    _set_rng_state(state["rng"][run.info.rank], run.generator)


def _result(run: Run, history: list[dict[str, Any]], elapsed: float) -> dict[str, Any]:
    """The run's record: config, versions, source revision, device, noise report, curves and summary accuracies."""
    test = [h["test_acc"] for h in history]
    return {
        "config": run.config.to_dict(),
        "versions": versions(),
        "source": source_revision(),  # the git commit of the package that ran, and whether its files differed
        "device": device_name(run.device),
        "amp_reason": run.amp_reason,  # why bf16 autocast is on or off (config["amp"] is the mode asked for)
        "channels_last": run.channels_last,
        "world_size": run.info.world,
        "threads": torch.get_num_threads(),  # torch's intra-op threads as trained (config threads 0 keeps the default)
        "num_train": len(run.labels.noisy) - len(run.val_noisy),
        "num_val": len(run.val_noisy),
        "num_test": len(run.split.test_y),
        "num_params": sum(p.numel() for p in run.net.parameters()),
        "data_source": run.split.source,
        "noise": run.labels.report,
        "epochs": history,
        "final_test_acc": test[-1],
        "best_test_acc": max(test),
        "last10_test_acc": last_epochs_mean(test),
        "final_tau": history[-1]["tau"],
        "early_stopping": early_stopping(history),
        "wall_time_s": elapsed,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def early_stopping(history: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The epoch kept by early stopping without clean labels: the first with the best accuracy on the held-out
    noisy labels, with its test accuracy; None for a run without a validation split."""
    if not history or "val_acc_noisy" not in history[0]:
        return None
    best = max(history, key=lambda h: h["val_acc_noisy"])  # max keeps the first of equal values
    return {"epoch": best["epoch"], "val_acc_noisy": best["val_acc_noisy"], "test_acc": best["test_acc"]}


def train(config: Config, out_dir: Path, resume: bool = False, progress: bool | None = None) -> dict[str, Any]:
    """Train ``config`` into ``out_dir`` (checkpoint every epoch, result.json at the end); return the result.

    ``resume=True`` continues from ``out_dir/checkpoint.pt`` (or starts afresh if there is none) and
    returns an already finished result unchanged.  ``progress`` None shows tqdm bars only on a TTY.
    """
    out_dir = Path(out_dir)
    info = dist_info()
    if config.batch_size % info.world:
        raise ValueError(f"batch_size={config.batch_size} must be divisible by the {info.world} processes")
    with folder_lock(out_dir) if info.is_main else nullcontext():  # the main process alone writes out_dir
        return _train_locked(config, out_dir, info, resume, progress)


def _train_locked(config: Config, out_dir: Path, info: DistInfo, resume: bool, progress: bool | None) -> dict[str, Any]:
    """``train`` once this process may write ``out_dir``: check what is there, resume or start, and train."""
    finished = prepare_out_dir(out_dir, config, resume)
    if finished is not None:
        return finished
    state = load_checkpoint(out_dir / CHECKPOINT) if resume and (out_dir / CHECKPOINT).exists() else None
    if state is not None:
        check_resumable(state, config, info.world, out_dir / CHECKPOINT)
    device = select_device(config.device, info.local_rank)
    created_group = _init_process_group(info, device)
    deterministic = torch.are_deterministic_algorithms_enabled()
    try:
        with torch_threads(config.threads):
            return _train(config, out_dir, info, device, state, progress)
    finally:  # leave the process's global torch settings as they were
        torch.use_deterministic_algorithms(deterministic)
        if created_group:
            dist.destroy_process_group()


def _train(
    config: Config, out_dir: Path, info: DistInfo, device: torch.device, state: dict[str, Any] | None,
    progress: bool | None,
) -> dict[str, Any]:
    _configure_determinism(config, device)
    run = _build(config, info, device)
    start_epoch, step, history, elapsed = 0, 0, [], 0.0
    if state is not None:
        _restore(run, state, out_dir / CHECKPOINT)
        start_epoch, step, history, elapsed = state["epoch"], state["step"], state["history"], state["elapsed_s"]
    main = info.is_main
    steps_log = epochs_log = None
    if main:
        out_dir.mkdir(parents=True, exist_ok=True)
        steps_log, epochs_log = CsvLog(out_dir / STEPS_CSV), CsvLog(out_dir / EPOCHS_CSV)
        steps_log.truncate(lambda r: int(r["step"]) <= step)
        epochs_log.truncate(lambda r: int(r["epoch"]) <= start_epoch)
    show = main and (sys.stderr.isatty() if progress is None else progress)

    for epoch in tqdm(range(start_epoch, config.epochs), desc="epochs", disable=not show,
                      initial=start_epoch, total=config.epochs):
        began = time.perf_counter()
        lr = run.optimizer.param_groups[0]["lr"]
        metrics, step = _train_epoch(run, epoch, step, steps_log, show)
        run.scheduler.step()
        test_acc = accuracy(run, run.split.test_x, run.split.test_y)
        row = {"epoch": epoch + 1, "step": step, "lr": lr, **metrics, "test_acc": test_acc,
               "tau": float(loss_tau(run.loss_fn, device))}
        if len(run.val_noisy):
            row["val_acc_noisy"] = accuracy(run, run.val_x, run.val_noisy)
        seconds = time.perf_counter() - began
        elapsed += seconds
        row.update(epoch_time_s=seconds, elapsed_s=elapsed)
        history.append(row)
        ckpt = _checkpoint_state(run, epoch + 1, step, history, elapsed)
        if main:
            epochs_log.append(row)
            save_checkpoint(out_dir / CHECKPOINT, ckpt)
        if info.world > 1:
            dist.barrier()

    result = _result(run, history, elapsed)
    # further evaluation sets of the data (WebVision: ImageNet validation images), final model only
    result["extra_test_acc"] = {name: accuracy(run, x, y) for name, (x, y) in run.split.extra_test_sets.items()}
    if main:
        write_result(out_dir, result)
    return result
