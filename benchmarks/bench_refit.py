"""Time one OGC threshold refit: the torch path against the scikit-learn reference path.

A refit is a 2-component GMM fit to the q = 4096 queued H = -log p values plus the solve for the
largest tau with r(tau) <= 1 + lr * epsilon.  Torch path: ``fit_gmm_torch`` + ``solve_tau``
(closed form for CE, and the 1000-point grid for comparison).  Reference path: scikit-learn's
GaussianMixture + the reference's 1000-point truncated-normal grid (scipy) and a bisection in
NumPy.  The measuring is ``ogc_lab.cost.time_refit`` (shared with the book's cost chapter).
Run: ``python benchmarks/bench_refit.py``.
"""

from __future__ import annotations

import argparse
import os

import torch

from ogc_lab import cost
from ogc_lab.ogc import ThresholdController, base_loss

FINE_GRID = 200_000  # grid points of the near-exact grid solve that shows the 1000-point grid's error


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--epsilon", type=float, default=20.0)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    target = 1.0 + args.lr * args.epsilon
    load = os.getloadavg()[0]
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads on {os.cpu_count()} cores "
        f"(1-min load {load:.1f}); q={args.queue}, target r={target:g}, median of {args.repeats}"
    )
    timing = cost.time_refit(args.queue, args.seed, repeats=args.repeats, lr=args.lr, epsilon=args.epsilon)
    results = timing["methods"]
    reference = results[cost.REFERENCE_METHOD]
    for name, result in results.items():
        seconds, tau = result["seconds"], result["tau"]
        print(
            f"{name:28s} {seconds * 1e3:8.3f} ms  x{result['speedup']:6.1f} vs reference  "
            f"tau={tau:.6f}  rel. diff to reference {abs(tau - reference['tau']) / reference['tau']:.2e}"
        )
    fine = cost.torch_tau(cost.sample_queue(args.queue, args.seed), target, "grid", n_grid=FINE_GRID)
    print(f"torch grid with {FINE_GRID} points: tau={fine:.6f} (the grid's discretisation error)")

    controller = ThresholdController(base_loss("ce"), queue_size=args.queue)
    print(f"OGC state: {controller.state_nbytes()} bytes ({controller.dtype}, queue of {args.queue})")


if __name__ == "__main__":
    main()
