"""A 2-D toy task for watching per-sample gradients move during training (the paper's Figure 1).

Two interleaved half-moons with symmetric label noise, a small MLP trained full-batch, and snapshots
of the per-sample gradient |dl/dp| of clean and of noisy samples (before any clipping) together with
the decision boundary.  The point the book makes with it: the two gradient distributions move as the
network first learns the clean pattern and then memorises the noisy labels, so a clipping threshold
that is right at one epoch is wrong at another.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from scipy.stats import gaussian_kde
from torch import Tensor, nn

from ogc_lab.hardware import torch_threads
from ogc_lab.models import mlp
from ogc_lab.noise import make_noise
from ogc_lab.ogc import base_loss, label_prob
from ogc_lab.optim import OPTIMIZERS
from ogc_lab.plotting import CLASS_COLORS, FULL_WIDTH, GRAD, GROUP_COLORS, REFERENCE, TAU, class_map, size
from ogc_lab.registry import choose

GRID_SIZE = 150  # points per axis of the decision-function grid
GRID_MARGIN = 0.5  # how far the grid reaches beyond the data, in input units
KDE_POINTS = 400  # points of the default log10 |dl/dp| grid


# --------------------------------------------------------------------------------------------
# Data


@dataclass(frozen=True, eq=False)
class ToyData:
    """The toy task: float32 inputs (N, 2), int64 labels, and the mask of flipped training labels."""

    x_train: Tensor
    y_train_noisy: Tensor
    y_train_clean: Tensor
    x_test: Tensor
    y_test: Tensor
    flipped: Tensor
    noise_rate: float


def two_moons(n: int, std: float, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``n`` points on two interleaved half-circles (classes alternate, so counts differ by <= 1)."""
    y = torch.arange(n) % 2
    t = torch.rand(n, generator=generator, dtype=torch.float64) * math.pi
    upper = torch.stack([torch.cos(t), torch.sin(t)], dim=1)
    lower = torch.stack([1.0 - torch.cos(t), 0.5 - torch.sin(t)], dim=1)
    x = torch.where(y[:, None] == 1, lower, upper)
    x = x + std * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return x.float(), y


def make_toy(
    n_train: int = 400, n_test: int = 2000, noise_rate: float = 0.3, seed: int = 0, std: float = 0.2
) -> ToyData:
    """Two-moons train and test sets; the training labels get exact-count symmetric noise.

    Exactly round(noise_rate * n_c) labels of each class c are flipped (``ogc_lab.noise``,
    ``symmetric``); with two classes a rate of 0.5 or more would erase the signal, so it must be < 0.5.
    """
    if n_train < 2 or n_test < 2:
        raise ValueError(f"need at least 2 train and 2 test samples, got n_train={n_train}, n_test={n_test}")
    if not 0.0 <= noise_rate < 0.5:
        raise ValueError(f"noise_rate must be in [0, 0.5) for two classes, got {noise_rate}")
    if std < 0.0:
        raise ValueError(f"std must be >= 0, got {std}")
    generator = torch.Generator().manual_seed(seed)
    x_train, y_clean = two_moons(n_train, std, generator)
    x_test, y_test = two_moons(n_test, std, generator)
    noisy = make_noise(f"symmetric:{noise_rate}", y_clean, 2, seed)
    return ToyData(x_train, noisy.labels, y_clean, x_test, y_test, noisy.flipped, noise_rate)


# --------------------------------------------------------------------------------------------
# Training with snapshots


@dataclass(frozen=True, eq=False)
class Snapshot:
    """The state of a toy run after ``epoch`` full-batch steps.

    ``grad`` is the per-sample |dl/dp| of the base loss at the training (noisy) label, before any
    clipping; ``tau`` the threshold in force (inf = none); ``decision`` is P(class 1) on the grid
    ``grid_x`` x ``grid_y`` (rows follow y).  Accuracies are fractions: ``train_acc`` against the
    observed labels, ``train_clean_acc`` against the true ones; ``memorised`` is the fraction of
    flipped training samples predicted as their wrong label (nan without any).
    """

    epoch: int
    grad: np.ndarray
    noisy: np.ndarray
    tau: float
    grid_x: np.ndarray
    grid_y: np.ndarray
    decision: np.ndarray
    train_acc: float
    train_clean_acc: float
    test_acc: float
    memorised: float

    def group(self, name: str) -> np.ndarray:
        """|dl/dp| of the 'clean', 'noisy' or 'all' training samples."""
        masks = {"clean": ~self.noisy, "noisy": self.noisy, "all": np.ones_like(self.noisy)}
        return self.grad[choose("group", name, masks)]

    def fraction_above(self, tau: float, group: str = "noisy") -> float:
        """Fraction of ``group`` whose gradient exceeds ``tau`` (would be clipped); nan if empty."""
        values = self.group(group)
        return float((values > tau).mean()) if values.size else math.nan


@dataclass(frozen=True, eq=False)
class ToyRun:
    """Snapshots at the requested epochs, the tau in force and the loss after every epoch, the model."""

    snapshots: tuple[Snapshot, ...]
    tau_trace: np.ndarray
    loss_trace: np.ndarray
    model: nn.Module

    def at(self, epoch: int) -> Snapshot:
        """The snapshot taken at ``epoch``."""
        for snapshot in self.snapshots:
            if snapshot.epoch == epoch:
                return snapshot
        raise ValueError(f"no snapshot at epoch {epoch}; taken at {[s.epoch for s in self.snapshots]}")


def _loss_call(loss: nn.Module) -> Callable[[Tensor, Tensor, float], Tensor]:
    """Call ``loss`` with lr when its forward takes one (OGC needs it), without it otherwise."""
    params = inspect.signature(loss.forward).parameters
    takes_lr = "lr" in params or any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    if takes_lr:
        return lambda logits, y, lr: loss(logits, y, lr=lr)
    return lambda logits, y, lr: loss(logits, y)


def _tau_in_force(loss: nn.Module) -> float:
    """The loss's |dl/dp| threshold ``tau`` (PHuber-CE, OGC) as a float; inf when it has none."""
    tau = getattr(loss, "tau", None)
    return math.inf if tau is None else float(tau)


def decision_grid(data: ToyData, size: int = GRID_SIZE) -> tuple[np.ndarray, np.ndarray]:
    """Grid axes covering the train and test inputs plus a margin."""
    x = torch.cat([data.x_train, data.x_test]).numpy()
    lo, hi = x.min(0) - GRID_MARGIN, x.max(0) + GRID_MARGIN
    return np.linspace(lo[0], hi[0], size), np.linspace(lo[1], hi[1], size)


def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Fraction of ``x`` whose predicted class is ``y``."""
    return float((model(x).argmax(1) == y).double().mean())


@torch.no_grad()
def take_snapshot(
    model: nn.Module,
    data: ToyData,
    epoch: int,
    tau: float,
    grid: tuple[np.ndarray, np.ndarray],
    base: str = "ce",
) -> Snapshot:
    """Per-sample |dl/dp| of the training set, the decision function on ``grid``, and accuracies."""
    logits = model(data.x_train)
    p = label_prob(logits, data.y_train_noisy)
    fits_label = (logits.argmax(1) == data.y_train_noisy).numpy()
    flipped = data.flipped.numpy().copy()
    grad = base_loss(base).grad(p.double()).numpy()
    gx, gy = grid
    points = torch.from_numpy(np.stack(np.meshgrid(gx, gy), axis=-1).reshape(-1, 2)).float()
    decision = torch.softmax(model(points), dim=1)[:, 1].reshape(len(gy), len(gx)).double().numpy()
    return Snapshot(
        epoch=epoch,
        grad=grad,
        noisy=flipped,
        tau=tau,
        grid_x=gx,
        grid_y=gy,
        decision=decision,
        train_acc=float(fits_label.mean()),
        train_clean_acc=_accuracy(model, data.x_train, data.y_train_clean),
        test_acc=_accuracy(model, data.x_test, data.y_test),
        memorised=float(fits_label[flipped].mean()) if flipped.any() else math.nan,
    )


def _check_snapshot_epochs(snapshot_epochs: tuple[int, ...], epochs: int) -> tuple[int, ...]:
    """The distinct snapshot epochs, sorted; raises unless they are non-empty and within [0, epochs]."""
    epochs_sorted = tuple(sorted(set(int(e) for e in snapshot_epochs)))
    if not epochs_sorted or epochs_sorted[0] < 0 or epochs_sorted[-1] > epochs:
        raise ValueError(f"snapshot_epochs must be non-empty and within [0, {epochs}], got {snapshot_epochs}")
    return epochs_sorted


def train_toy(
    data: ToyData,
    loss: nn.Module,
    epochs: int,
    lr: float,
    snapshot_epochs: tuple[int, ...] | list[int],
    seed: int = 0,
    hidden: int = 64,
    optimizer: str = "adam",
    base: str = "ce",
) -> ToyRun:
    """Train ``models.mlp(hidden)`` full-batch on the noisy labels for ``epochs`` steps of ``optimizer``.

    ``lr`` goes to the optimizer and to the loss (OGC's target 1 + lr * epsilon uses it); a snapshot
    (epoch 0 = before training) is taken at each of ``snapshot_epochs``, with |dl/dp| of ``base``.
    A ``tau`` attribute of the loss is read as its |dl/dp| threshold (PHuber-CE, OGC).  The weights
    are drawn from ``seed`` without touching the global RNG; pass a fresh ``loss``, as OGC keeps state.
    """
    if epochs < 0 or not lr > 0.0:
        raise ValueError(f"need epochs >= 0 and lr > 0, got epochs={epochs}, lr={lr}")
    make_optimizer = choose("optimizer", optimizer, OPTIMIZERS)
    wanted = _check_snapshot_epochs(tuple(snapshot_epochs), epochs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = mlp(2, (2,), hidden)
    opt = make_optimizer(model.parameters(), lr, momentum=0.9, weight_decay=0.0, nesterov=False,
                         device=torch.device("cpu"))
    call = _loss_call(loss)
    grid = decision_grid(data)
    snapshots, taus, losses = [], np.empty(epochs), np.empty(epochs)
    with torch_threads(1):  # tensors this small only lose time to thread hand-offs
        for epoch in range(epochs + 1):
            if epoch in wanted:
                snapshots.append(take_snapshot(model, data, epoch, _tau_in_force(loss), grid, base))
            if epoch == epochs:
                break
            opt.zero_grad(set_to_none=True)
            value = call(model(data.x_train), data.y_train_noisy, lr)
            value.backward()
            opt.step()
            losses[epoch], taus[epoch] = float(value.detach()), _tau_in_force(loss)
    return ToyRun(tuple(snapshots), taus, losses, model)


def _statistic(reduce: Callable[[np.ndarray], Any], values: np.ndarray) -> float:
    """``reduce(values)`` as a float; nan for an empty array (without numpy's warning)."""
    return float(reduce(values)) if values.size else math.nan


def snapshot_summary(snapshot: Snapshot, tau: float | None = None) -> dict[str, float | None]:
    """The numbers of one snapshot quoted in the text; ``tau`` defaults to the one in force.

    An infinite threshold is reported as None (JSON null) and clips nothing; statistics of an empty
    group are nan.
    """
    threshold = snapshot.tau if tau is None else tau
    clean, noisy = snapshot.group("clean"), snapshot.group("noisy")
    return {
        "epoch": snapshot.epoch,
        "tau": threshold if math.isfinite(threshold) else None,
        "noisy_above": snapshot.fraction_above(threshold, "noisy"),
        "clean_above": snapshot.fraction_above(threshold, "clean"),
        "mean_grad_clean": _statistic(np.mean, clean),
        "mean_grad_noisy": _statistic(np.mean, noisy),
        "median_grad_clean": _statistic(np.median, clean),
        "median_grad_noisy": _statistic(np.median, noisy),
        "test_acc": snapshot.test_acc,
        "train_clean_acc": snapshot.train_clean_acc,
        "memorised": snapshot.memorised,
    }


def summarise(run: ToyRun, tau: float | None = None) -> dict[str, list[float | None]]:
    """``snapshot_summary`` of every snapshot, as one list per quantity (ready for metrics.json)."""
    rows = [snapshot_summary(s, tau) for s in run.snapshots]
    return {key: [row[key] for row in rows] for key in rows[0]}


# --------------------------------------------------------------------------------------------
# Gradient densities


def gradient_kde(values: np.ndarray | Tensor, grid: np.ndarray) -> np.ndarray:
    """Gaussian KDE (Scott's rule) of log10(values) evaluated at ``grid``, which is in log10 units.

    1/p spans many decades, so the density is estimated on its logarithm.  Fewer than 2 values, or
    values that are all equal (no spread to estimate a bandwidth from), give zeros.
    """
    v = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(v)) or np.any(v <= 0.0):
        raise ValueError("gradient values must be finite and > 0")
    grid = np.asarray(grid, dtype=np.float64)
    u = np.log10(v)
    if u.size < 2 or np.ptp(u) == 0.0:
        return np.zeros_like(grid)
    return gaussian_kde(u)(grid.ravel()).reshape(grid.shape)


def kde_grid(*values: np.ndarray, points: int = KDE_POINTS) -> np.ndarray:
    """A log10 grid from just below 0 (|dl/dp| >= 1 for CE) to half a decade beyond the largest value."""
    tops = [float(np.log10(np.max(v))) for v in values if np.size(v)]
    return np.linspace(-0.3, max([1.0, *tops]) + 0.5, points)


# --------------------------------------------------------------------------------------------
# Plots


def plot_gradient_kdes(
    ax: Axes, snapshot: Snapshot, tau: float | None = None, grid: np.ndarray | None = None
) -> dict[str, Any]:
    """Densities of |dl/dp| of clean and noisy samples on a log axis, and a vertical line at tau.

    ``tau`` defaults to the snapshot's threshold in force; no line is drawn when it is infinite.
    Each group's density integrates to 1 in log10 units.  Returns the drawn lines by name.
    """
    grid = kde_grid(snapshot.grad) if grid is None else grid
    x = 10.0**grid
    artists: dict[str, Any] = {}
    for name, colour in GROUP_COLORS.items():
        values = snapshot.group(name)
        density = gradient_kde(values, grid)
        (artists[name],) = ax.plot(x, density, color=colour, label=f"{name} ({values.size})")
        ax.fill_between(x, density, color=colour, alpha=0.25)
    tau = snapshot.tau if tau is None else tau
    finite = math.isfinite(tau)
    artists["tau"] = ax.axvline(tau, color=REFERENCE, ls="--", lw=1, label=f"{TAU} = {tau:.3g}") if finite else None
    ax.set(xscale="log", xlim=(x[0], x[-1]), xlabel=f"{GRAD} before clipping",
           ylabel=f"density of $\\log_{{10}}${GRAD}")
    return artists


def plot_data(ax: Axes, data: ToyData, labels: str = "noisy") -> dict[str, Any]:
    """Training points coloured by their 'noisy' (observed) or 'clean' label; flipped ones as crosses."""
    label_sets = {"noisy": data.y_train_noisy, "clean": data.y_train_clean}
    x = data.x_train.numpy()
    colours = np.array(CLASS_COLORS)[choose("labels", labels, label_sets).numpy()]
    flipped = data.flipped.numpy()
    artists = {
        "kept": ax.scatter(*x[~flipped].T, c=colours[~flipped], s=5, marker="o", lw=0, label="label kept"),
        "flipped": ax.scatter(*x[flipped].T, c=colours[flipped], s=14, marker="x", lw=0.8, label="label flipped"),
    }
    ax.set(xticks=[], yticks=[], aspect="equal")
    ax.grid(False)
    return artists


def plot_decision_boundary(ax: Axes, snapshot: Snapshot, data: ToyData) -> dict[str, Any]:
    """P(class 1) as filled contours, the boundary P = 0.5 as a line, and the training points."""
    grid = (snapshot.grid_x, snapshot.grid_y, snapshot.decision)
    filled = ax.contourf(*grid, levels=np.linspace(0, 1, 11), cmap=class_map(), alpha=0.3)
    boundary = ax.contour(*grid, levels=[0.5], colors=REFERENCE, linewidths=1)
    return {"filled": filled, "boundary": boundary, **plot_data(ax, data)}


def plot_run(data: ToyData, run: ToyRun, title: str | None = None) -> Figure:
    """The Figure-1 layout at the book's full width: a data column, then per snapshot the gradient
    densities over the decision boundary."""
    import matplotlib.pyplot as plt

    columns = 1 + len(run.snapshots)
    fig, axes = plt.subplots(2, columns, figsize=size(2, FULL_WIDTH, 2.6), squeeze=False)
    grid = kde_grid(*(s.grad for s in run.snapshots))
    plot_data(axes[0, 0], data, "noisy")
    axes[0, 0].set_title(f"observed labels ({float(data.flipped.double().mean()):.0%} flipped)")
    plot_data(axes[1, 0], data, "clean")
    axes[1, 0].set_title("true labels")
    for column, snapshot in enumerate(run.snapshots, start=1):
        plot_gradient_kdes(axes[0, column], snapshot, grid=grid)
        axes[0, column].set_title(f"epoch {snapshot.epoch}")
        axes[0, column].legend(loc="upper right", fontsize=7)
        if column > 1:
            axes[0, column].set_ylabel("")
        plot_decision_boundary(axes[1, column], snapshot, data)
        axes[1, column].set_title(f"test accuracy {snapshot.test_acc:.1%}")
    if title:
        fig.suptitle(title)
    return fig


APART = 0.01  # test accuracies within a point of each other are not told apart (one seed, 2,000 test points)


def paper_setting_sentences(target: float, paper_clipped_epochs: int, epochs: int, paper_acc: float,
                            ogc_acc: float, fixed_acc: float) -> dict[str, str]:
    """What OGC's result on the toy owes to its target, in words chosen by the numbers.

    The chapter's OGC trains with Adam at a small learning rate, so its target ratio ``target`` = 1 + lr * epsilon
    is strict; ``paper_*`` is the same run at the paper's setting (SGD at lr 0.1: a target of 3), clipping in
    ``paper_clipped_epochs`` of ``epochs`` and ending at ``paper_acc``.  ``sentence`` says how that compares with
    the fixed threshold's ``fixed_acc`` and the strict OGC's ``ogc_acc``; ``short`` is the same for a table.
    """
    clipped = ("never clipped" if paper_clipped_epochs == 0
               else f"clipped in {paper_clipped_epochs} of the {epochs} epochs")
    sentence = (f"with the paper's setting (SGD at η = 0.1, a target of 3) OGC {clipped} and ended at a test accuracy "
                f"of {paper_acc:.1%}, against {fixed_acc:.1%} with the fixed threshold")
    if paper_acc >= fixed_acc + APART:
        sentence += ", so OGC is ahead of the fixed threshold on this toy at the paper's setting too"
        short = f"also at the paper's target ({paper_acc:.1%})"
    elif ogc_acc >= fixed_acc + APART:
        sentence += (f": OGC's lead on this toy needs the strict target of {target:g}, not the paper's setting "
                     f"({ogc_acc:.1%} at the target {target:g})")
        short = f"only at the target {target:g}; at the paper's target 3 OGC {clipped} ({paper_acc:.1%})"
    else:
        sentence += f"; OGC is not ahead of the fixed threshold at either target ({ogc_acc:.1%} at {target:g})"
        short = f"at neither target ({ogc_acc:.1%} at {target:g}, {paper_acc:.1%} at 3)"
    return {"sentence": sentence, "short": short}
