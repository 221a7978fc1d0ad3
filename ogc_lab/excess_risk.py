"""Chapter 3's measurement: the excess clean risk of a model trained on noisy labels, against theory's bounds.

The task is ``NUM_CLASSES`` unit-variance Gaussian classes in the plane; the model a linear softmax layer
started from zero weights and trained full-batch with Adam on the transformed CE loss at a fixed tau.  For
each tau a model trained on clean labels is set against models trained on noisy ones, and the gap of their
clean risks is compared with Theorem 1 (symmetric noise) or Theorem 2 (a transition matrix):

* exact noise (``exact_gaps``): the noisy model minimises the expected noisy risk on the training points and
  both risks are measured there, the theorems' own setting;
* sampled noise (``sampled_gaps``): labels are corrupted once by ``noise.make_noise`` and the risks are
  measured on fresh test points, so the gap also carries finite-sample error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import matplotlib.ticker
import numpy as np
import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import Tensor, nn

from .book import Quotes
from .noise import NoiseReport, make_noise, transition_matrix
from .ogc import base_loss, transformed_loss
from .plotting import color, size
from .registry import choose
from .theory import class_losses, gap_sentence, symmetric_excess_bound, transition_excess_bound

NUM_CLASSES = 4  # classes of the task
RADIUS = 2.5  # the class means sit evenly on a circle of this radius
ADAM_LR = 0.1
CE = base_loss("ce")


@dataclass(frozen=True, eq=False)
class BlobsTask:
    """Training and test points (float32, (n, 2)) with their clean labels."""

    x_train: Tensor
    y_train: Tensor
    x_test: Tensor
    y_test: Tensor


def gaussian_blobs(n: int, generator: torch.Generator, radius: float = RADIUS) -> tuple[Tensor, Tensor]:
    """``n`` points of ``NUM_CLASSES`` unit-variance Gaussian classes whose means sit evenly on a circle."""
    y = torch.randint(0, NUM_CLASSES, (n,), generator=generator)
    angle = 2 * math.pi * y / NUM_CLASSES
    means = radius * torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
    return means + torch.randn(n, 2, generator=generator), y


def make_task(n_train: int, n_test: int, seed: int) -> BlobsTask:
    """The training points, then the test points, drawn from one generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return BlobsTask(*gaussian_blobs(n_train, generator), *gaussian_blobs(n_test, generator))


def one_hot(labels: Tensor) -> Tensor:
    """Labels as float32 weights over the classes: what a model trained on those labels is fitted to."""
    return nn.functional.one_hot(labels, NUM_CLASSES).float()


def fit_linear(x: Tensor, label_weights: Tensor, tau: float, steps: int) -> nn.Linear:
    """A linear softmax model from zero weights, ``steps`` full-batch Adam steps on mean_i sum_k w_ik lbar(p_ik).

    ``label_weights`` (n, K) is one-hot for hard labels, or a transition matrix's row T[y_i] for the expected
    noisy risk.
    """
    model = nn.Linear(x.shape[1], NUM_CLASSES)
    nn.init.zeros_(model.weight)
    nn.init.zeros_(model.bias)
    optimizer = torch.optim.Adam(model.parameters(), lr=ADAM_LR)
    for _ in range(steps):
        optimizer.zero_grad()
        (label_weights * class_losses(model(x), tau)).sum(dim=1).mean().backward()
        optimizer.step()
    return model


def clean_risk(model: nn.Module, x: Tensor, y: Tensor, tau: float) -> float:
    """The mean transformed CE loss of ``model`` on points ``x`` with their clean labels ``y``."""
    with torch.no_grad():
        return transformed_loss(model(x), y, tau, CE).item()


def clean_models(task: BlobsTask, taus: Sequence[float], steps: int) -> dict[float, nn.Linear]:
    """One model per tau trained on the clean training labels: the f every gap is measured from."""
    return {tau: fit_linear(task.x_train, one_hot(task.y_train), tau, steps) for tau in taus}


def exact_gaps(task: BlobsTask, clean: dict[float, nn.Linear], rates: Sequence[float], steps: int) -> list[dict]:
    """Per tau and symmetric rate: the clean model's risk, the gap of the model fitted to the expected noisy risk,
    both on the training points, and Theorem 1's bound."""
    rows = []
    for tau, clean_model in clean.items():
        risk = clean_risk(clean_model, task.x_train, task.y_train, tau)
        for rate in rates:
            matrix = transition_matrix("symmetric", rate, NUM_CLASSES).float()
            noisy_model = fit_linear(task.x_train, matrix[task.y_train], tau, steps)
            gap = clean_risk(noisy_model, task.x_train, task.y_train, tau) - risk
            rows.append(dict(tau=tau, rate=rate, clean_risk=risk, gap=gap,
                             bound=symmetric_excess_bound(rate, tau, NUM_CLASSES)))
    return rows


Bound = Callable[[NoiseReport, float, Tensor], float]
# The theorem that bounds each sampled noise kind, on what the generator realised; instance noise has none (its
# per-sample flip rates are not exposed, and its truncated-normal rates reach 1, where a <= 0).
BOUNDS: dict[str, Bound | None] = {
    "symmetric": lambda report, tau, priors: symmetric_excess_bound(report.realised_rate, tau, NUM_CLASSES),
    "pairflip": lambda report, tau, priors: transition_excess_bound(report.transition, tau, priors),
    "instance": None,
}


def sampled_gaps(task: BlobsTask, clean: dict[float, nn.Linear], rates: Sequence[float], steps: int,
                 seed: int, kinds: Sequence[str] = tuple(BOUNDS)) -> list[dict]:
    """Per rate, noise kind and tau: labels corrupted once (``seed``), the gap of the model trained on them on the
    test points, and the bound of that kind (None where ``BOUNDS`` has none)."""
    priors = torch.bincount(task.y_train, minlength=NUM_CLASSES).double() / len(task.y_train)
    rows = []
    for rate in rates:
        for kind in kinds:
            bound = choose("noise kind", kind, BOUNDS)
            features = task.x_train if kind == "instance" else None
            noisy = make_noise(f"{kind}:{rate}", task.y_train, NUM_CLASSES, seed=seed, features=features)
            for tau, clean_model in clean.items():
                noisy_model = fit_linear(task.x_train, one_hot(noisy.labels), tau, steps)
                gap = (clean_risk(noisy_model, task.x_test, task.y_test, tau)
                       - clean_risk(clean_model, task.x_test, task.y_test, tau))
                rows.append(dict(kind=kind, rate=rate, realised_rate=noisy.report.realised_rate, tau=tau, gap=gap,
                                 bound=None if bound is None else bound(noisy.report, tau, priors)))
    return rows


# ---- how the chapter shows the two versions -----------------------------------------------------------


@dataclass(frozen=True)
class Version:
    """How one version of the measurement is shown: the rounded columns and their headings, the format of its
    excesses over a bound, the case of ``gap_sentence`` at tau = 1 that it explains and the explanation."""

    rounded: tuple[str, ...]
    headings: dict[str, str]
    excess_format: str
    tau1_case: str
    tau1_reason: str


GAP = "gap R(f_η) − R(f)"
VERSIONS = {
    "exact": Version(
        ("clean_risk", "gap", "bound"),
        {"tau": "τ", "rate": "noise rate", "clean_risk": "clean risk", "gap": GAP},
        ".1e",  # excesses of float32 rounding size
        "zero to rounding",
        "the clean and the noisy objective differ only by a factor and a constant, so the two models coincide"),
    "sampled": Version(
        ("gap", "bound"),
        {"kind": "noise", "rate": "nominal rate", "realised_rate": "realised rate", "tau": "τ", "gap": GAP},
        ".3f",
        "the bound is zero, and",
        "the finite-sample difference between a model trained on one draw of noisy labels and one trained on the "
        "clean labels, which the theorems, being about population minimisers, do not cover"),
}


def table(rows: list[dict], version: str) -> pd.DataFrame:
    """The rows as the chapter's table shows them: four decimals, so that a bound of zero up to float64 rounding
    (5e-16) reads 0, and the version's headings."""
    shown = choose("version", version, VERSIONS)
    frame = pd.DataFrame(rows)
    for column in shown.rounded:
        frame[column] = frame[column].astype(float).round(4) + 0.0  # + 0.0: no '-0'
    return frame.rename(columns=shown.headings)


def gap_quotes(rows: list[dict], version: str) -> Quotes:
    """What the text quotes of one version: its rows, the largest excess over a bound (all tau, and tau > 1),
    the largest gap at tau = 1 (None where no tau qualifies), and ``gap_sentence`` at tau = 1 and above, the
    former with why where the version explains it."""
    shown = choose("version", version, VERSIONS)
    bounded = [row for row in rows if row["bound"] is not None]
    at_one = gap_sentence([row for row in rows if row["tau"] == 1.0])
    return {
        f"{version}_rows": (rows, None),
        f"{version}_max_excess": (max((row["gap"] - row["bound"] for row in bounded), default=None),
                                  shown.excess_format),
        f"{version}_max_excess_tau_above_1": (
            max((row["gap"] - row["bound"] for row in bounded if row["tau"] > 1.0), default=None), shown.excess_format),
        f"{version}_gap_at_tau1": (max((abs(row["gap"]) for row in rows if row["tau"] == 1.0), default=None), ".1e"),
        f"{version}_tau1_sentence": (at_one, None),
        f"{version}_tau1_text": (at_one + (f": {shown.tau1_reason}" if shown.tau1_case in at_one else ""), None),
        f"{version}_above_sentence": (gap_sentence([row for row in rows if row["tau"] > 1.0]), None),
    }


# ---- figures ------------------------------------------------------------------------------------------


def plot_symmetric_bounds(etas: Sequence[float] = (0.1, 0.2, 0.4, 0.6),
                          taus: Sequence[float] = (1.5, 4.0, 32.0, 1e3)) -> Figure:
    """Theorem 1's bound for ``NUM_CLASSES`` classes: against tau for each of ``etas`` (left), against the noise
    rate for each of ``taus`` (right), where it diverges at (K-1)/K."""
    import matplotlib.pyplot as plt

    k = NUM_CLASSES
    fig, axes = plt.subplots(1, 2, figsize=size(1, row_height=3.0))
    tau_grid = np.geomspace(1.0, 1e3, 200)
    for i, eta in enumerate(etas):
        axes[0].plot(tau_grid, [symmetric_excess_bound(eta, t, k) for t in tau_grid], color=color(i),
                     label=f"$\\eta = {eta:g}$")
    axes[0].set(xscale="log", xlabel=r"$\tau$", ylabel=r"bound on $R(f^*_\eta) - R(f^*)$",
                title=f"Theorem 1, $K = {k}$")
    axes[0].legend()
    eta_grid = np.linspace(0.0, 0.7, 200)
    for i, tau in enumerate(taus):
        axes[1].plot(eta_grid, [symmetric_excess_bound(e, tau, k) for e in eta_grid], color=color(i),
                     label=f"$\\tau = {tau:g}$")
    axes[1].axvline((k - 1) / k, color="grey", ls=":")
    axes[1].set(yscale="log", ylim=(1e-3, 1e3), xlabel=r"symmetric noise rate $\eta$",
                title=r"diverges at $\eta = (K-1)/K$")
    axes[1].legend()
    return fig


def plot_gaps(exact: list[dict], sampled: list[dict]) -> Figure:
    """One panel per noise rate: the measured gaps against tau (exact noise in black, each sampled kind in its
    colour) and the bounds of the sampled kinds that have one (wide pale lines), on a symlog axis."""
    import matplotlib.pyplot as plt

    exact_frame, sampled_frame = pd.DataFrame(exact), pd.DataFrame(sampled)
    rates = list(dict.fromkeys(exact_frame["rate"]))
    kinds = list(dict.fromkeys(sampled_frame["kind"]))
    fig, axes = plt.subplots(1, len(rates), figsize=size(1, row_height=3.4), sharey=True, squeeze=False)
    kind_colors = {kind: color(i + 1) for i, kind in enumerate(kinds)}
    for ax, rate in zip(axes[0], rates):
        ex = exact_frame[exact_frame.rate == rate]
        ax.plot(ex.tau, ex.gap, "o-", color="black", label="symmetric, exact noise")
        for kind in kinds:
            rows = sampled_frame[(sampled_frame.rate == rate) & (sampled_frame.kind == kind)]
            ax.plot(rows.tau, rows.gap, "s--", ms=4, color=kind_colors[kind], label=f"{kind}, sampled")
            if rows.bound.notna().all():
                ax.plot(rows.tau, rows.bound.astype(float), "-", color=kind_colors[kind], alpha=0.35, lw=4,
                        label=f"{kind} bound")
        # linear within +-0.01, logarithmic beyond; ticks only at decades so no two labels collide
        ax.set_yscale("symlog", linthresh=0.01, linscale=0.5)
        ax.set(xscale="log", xlabel=r"$\tau$", title=f"noise rate {rate:g}")
        ax.yaxis.set_major_locator(matplotlib.ticker.FixedLocator([-0.1, -0.01, 0, 0.01, 0.1, 1, 10, 100]))
        ax.yaxis.set_major_formatter(matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_locator(matplotlib.ticker.NullLocator())
    axes[0, 0].set_ylabel(r"gap in clean risk $R(f_\eta) - R(f)$")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=3, fontsize=7)
    return fig
