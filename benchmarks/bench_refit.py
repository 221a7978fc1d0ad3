"""Time one OGC threshold refit: the library's path against the scikit-learn reference path.

A refit is a 2-component GMM fit to the q queued H = -log p values plus the solve for the
largest tau with r(tau) <= 1 + lr * epsilon.  Library path: ``fit_gmm_torch`` + ``solve_tau``
(closed form for CE, and the 1000-point grid for comparison), on --device.  Reference path:
scikit-learn's GaussianMixture + the reference's 1000-point truncated-normal grid (scipy) and a
bisection in NumPy, on the host.  The arms run in rotation; a speed-up is the median over rounds of
the reference's time over the arm's time in the same round (``ogc_lab.cost.time_refit``, shared
with the book's cost chapter).  Run: ``python benchmarks/bench_refit.py``.
"""

from __future__ import annotations

from _common import base_parser, format_table, print_machine, ratio_line, setup, write_json

from ogc_lab import cost
from ogc_lab.ogc import OGC_DEFAULTS, ThresholdController, base_loss

FINE_GRID = 200_000  # grid points of the near-exact grid solve that shows the 1000-point grid's error


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--queue", type=int, default=OGC_DEFAULTS.queue_size,
                        help=f"queue size q (default {OGC_DEFAULTS.queue_size}, the reference's)")
    parser.add_argument("--repeats", type=int, default=100, help="timed rounds (default 100; --quick: 3)")
    parser.add_argument("--lr", type=float, default=cost.LR)
    parser.add_argument("--epsilon", type=float, default=OGC_DEFAULTS.epsilon)
    args = parser.parse_args()
    device = setup(args)
    repeats = 3 if args.quick else args.repeats

    info = cost.machine_info(device)
    print_machine(info)
    timing = cost.time_refit(args.queue, args.seed, repeats=repeats, lr=args.lr, epsilon=args.epsilon,
                             threads=args.threads, device=device)
    results = timing["methods"]
    reference = results[cost.SKLEARN_METHOD]
    fine = cost.torch_tau(cost.sample_queue(args.queue, args.seed), timing["target"], "grid", n_grid=FINE_GRID)
    rows = [
        (name, f"{r['seconds'] * 1e3:.3f}", f"{r['speedup']:.1f}", f"{r['tau']:.6f}",
         f"{abs(r['tau'] - reference['tau']) / reference['tau']:.2e}", f"{abs(r['tau'] - fine) / fine:.2e}")
        for name, r in results.items()
    ]
    print(f"q={args.queue}, target r={timing['target']:g}, {repeats} rounds in rotation (medians)")
    print(format_table(["method", "ms", "speed-up", "tau", "vs reference", f"vs {FINE_GRID} grid"], rows))

    controller = ThresholdController(base_loss("ce"), queue_size=args.queue, device=device)
    state = controller.state_nbytes()
    print(f"OGC state: {state} bytes ({controller.dtype}, queue of {args.queue}: O(q))")
    print(ratio_line("refit speed-up, torch exact vs reference", results["torch exact"]["speedup"], ">= 10"))
    write_json(args.json, {"machine": info, "refit": timing, "fine_grid_tau": fine, "state_bytes": state})


if __name__ == "__main__":
    main()
