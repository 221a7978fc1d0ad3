"""Time one OGC threshold refit: the torch path against the scikit-learn reference path.

A refit is a 2-component GMM fit to the q = 4096 queued H = -log p values plus the solve for the
largest tau with r(tau) <= 1 + lr * epsilon.  Torch path: ``fit_gmm_torch`` + ``solve_tau``
(closed form for CE, and the 1000-point grid for comparison).  Reference path: scikit-learn's
GaussianMixture + the reference's 1000-point truncated-normal grid (scipy) and a bisection in
NumPy.  Run: ``python benchmarks/bench_refit.py``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time
from typing import Callable

import numpy as np
import torch
from scipy import stats

from ogc_lab.ogc import (
    H_MAX,
    H_MIN,
    ThresholdController,
    base_loss,
    fit_gmm_sklearn,
    fit_gmm_torch,
    solve_tau,
)


def sample_queue(q: int, seed: int) -> torch.Tensor:
    """CIFAR-like H values: 60% clean near 0, 40% noisy around 2.5, clamped to [H_MIN, H_MAX]."""
    gen = torch.Generator().manual_seed(seed)
    noisy = torch.rand(q, generator=gen) < 0.4
    clean_h = 0.3 + 0.3 * torch.randn(q, generator=gen, dtype=torch.float64)
    noisy_h = 2.5 + 1.0 * torch.randn(q, generator=gen, dtype=torch.float64)
    return torch.where(noisy, noisy_h, clean_h).clamp(H_MIN, H_MAX)


def reference_tau(h: np.ndarray, target: float, seed: int, n_grid: int = 1000, iters: int = 40) -> float:
    """The reference recipe for CE: sklearn GMM, scipy truncated normals on a grid, bisection in log tau."""
    gmm = fit_gmm_sklearn(h, seed=seed)
    grid = np.linspace(H_MIN, H_MAX, n_grid)
    grad = np.exp(grid)  # |dCE/dp| at p = e^-H
    dens = []
    for mu, var in zip(gmm.means.numpy(), gmm.variances.numpy()):
        sd = math.sqrt(var)
        dens.append(stats.truncnorm.pdf(grid, (H_MIN - mu) / sd, (H_MAX - mu) / sd, mu, sd))
    clean, noisy = dens

    def ratio(tau: float) -> float:
        clipped = np.minimum(grad, tau)
        return (noisy @ clipped / noisy.sum()) / (clean @ clipped / clean.sum())

    lo, hi = math.log(grad[0]), math.log(grad[-1])
    if ratio(grad[-1]) <= target:
        return math.inf
    if ratio(grad[0]) > target:
        return float(grad[0])
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if ratio(math.exp(mid)) <= target else (lo, mid)
    return math.exp(lo)


def torch_tau(h: torch.Tensor, target: float, method: str) -> float:
    """The torch refit (the value is read back only here, for reporting)."""
    return float(solve_tau(fit_gmm_torch(h), target, base_loss("ce"), method=method))


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int, warmup: int = 3) -> dict[str, float]:
    """Median wall-clock seconds of each function, timed in rotation so all see the same machine load."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--epsilon", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    h = sample_queue(args.queue, args.seed)
    h_np = h.numpy()
    target = 1.0 + args.lr * args.epsilon
    load = os.getloadavg()[0]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads on {os.cpu_count()} cores "
        f"(1-min load {load:.1f}); q={args.queue}, target r={target:g}, median of {args.repeats}"
    )

    runs = {
        "torch exact": lambda: torch_tau(h, target, "exact"),
        "torch grid": lambda: torch_tau(h, target, "grid"),
        "reference (sklearn + grid)": lambda: reference_tau(h_np, target, args.seed),
    }
    seconds = interleaved_medians(runs, args.repeats)
    results = {name: (seconds[name], fn()) for name, fn in runs.items()}
    ref_time, ref_tau = results["reference (sklearn + grid)"]
    for name, (seconds, tau) in results.items():
        print(
            f"{name:28s} {seconds * 1e3:8.3f} ms  x{ref_time / seconds:6.1f} vs reference  "
            f"tau={tau:.6f}  rel. diff to reference {abs(tau - ref_tau) / ref_tau:.2e}"
        )
    exact_fine = float(
        solve_tau(fit_gmm_torch(h), target, base_loss("ce"), method="grid", n_grid=200_000)
    )
    print(f"torch grid with 200000 points: tau={exact_fine:.6f} (the grid's discretisation error)")

    controller = ThresholdController(base_loss("ce"), queue_size=args.queue)
    print(f"OGC state: {controller.state_nbytes()} bytes ({controller.dtype}, queue of {args.queue})")


if __name__ == "__main__":
    main()
