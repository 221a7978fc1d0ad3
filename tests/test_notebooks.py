"""Every chapter notebook: clean sources, and a run at smoke scale (or $OGC_BOOK_SCALE) checked.

CHECKS holds each chapter's own assertions on its metrics.json; add an entry for a new chapter.
"""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path
from typing import Any, Callable

import nbformat
import pytest
import yaml

from ogc_lab import book

NOTEBOOKS = book.chapters()


def _numbers(value: Any) -> list[float]:
    if isinstance(value, dict):
        return [n for item in value.values() for n in _numbers(item)]
    if isinstance(value, list):
        return [n for item in value for n in _numbers(item)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value)]
    return []


# ---- per-chapter checks: metrics dict and scale -> assertions ------------------------------------


def check_01(metrics: dict[str, Any], scale: str) -> None:
    epochs = metrics["epochs"]
    for run in ("fixed", "ogc", "ce"):
        assert metrics[f"{run}_epoch"] == epochs
        for key in ("noisy_above", "clean_above", "test_acc", "memorised", "median_grad_clean", "median_grad_noisy"):
            assert len(metrics[f"{run}_{key}"]) == len(epochs), (run, key)
        assert all(0.0 <= acc <= 1.0 for acc in metrics[f"{run}_test_acc"])
        # CE's |dl/dp| = 1/p >= 1, and noisy samples sit above clean ones at every drawn epoch.
        assert min(metrics[f"{run}_median_grad_clean"]) >= 1.0
        assert all(n > c for n, c in zip(metrics[f"{run}_median_grad_noisy"], metrics[f"{run}_median_grad_clean"]))
    # Figure 1's claim: the noisy gradients move across the fixed tau while few clean ones are clipped.
    assert metrics["fixed_tau"] == [metrics["fixed_threshold"]] * len(epochs)
    assert metrics["fixed_noisy_above_range"] >= (0.5 if scale == "smoke" else 0.15)
    assert max(metrics["fixed_clean_above"]) <= 0.05
    # OGC: no clipping before its first refit (step 32, queue full), a finite tau from then on.
    assert metrics["ogc_first_clip_epoch"] == 32
    assert all(tau is None for tau, e in zip(metrics["ogc_tau"], epochs) if e < 32)
    assert all(tau is not None and 1.0 <= tau < 10.0 for tau, e in zip(metrics["ogc_tau"], epochs) if e >= 32)
    assert metrics["ogc_target"] == pytest.approx(1.0 + 20.0 * metrics["lr"])
    if scale != "smoke":
        # Trained to the end, OGC memorises fewer flipped labels and generalises better.
        assert metrics["ogc_memorised_last"] <= metrics["fixed_memorised_last"] - 0.2
        assert metrics["ogc_test_acc_last"] >= max(metrics["fixed_test_acc_last"], metrics["ce_test_acc_last"]) + 0.05


def check_02(metrics: dict[str, Any], scale: str) -> None:
    # Proposition 1 holds on every random logit vector (float64 rounding only).
    assert metrics["max_bound_violation"] <= 1e-6
    assert metrics["max_sample_violation"] <= 1e-6
    # The autograd slope in p is -min(1/p, tau) (the library raises tau to >= 1/(1 - 1e-7)).
    assert metrics["grad_p_max_rel_err"] <= 1e-6
    # Clipping dCE/dp at tau and training on lbar give the same logit gradient (float32 path).
    assert metrics["grad_logits_max_abs_err"] <= 1e-6
    assert metrics["closed_form_max_err"] <= 1e-6


def check_03(metrics: dict[str, Any], scale: str) -> None:
    # Exact noise is the theorems' own setting: each gap within its bound up to float32 rounding.
    for row in metrics["exact_rows"]:
        assert row["gap"] <= row["bound"] + 1e-5, row
    # At tau = 1 the clean and the noisy objectives differ by a factor and a constant.
    assert metrics["exact_gap_at_tau1"] <= 1e-5
    # Theorem 2 on the symmetric matrix is Theorem 1.
    assert metrics["theorem2_reduces_to_theorem1_err"] <= 1e-12
    # Sampled labels, tau > 1: the measured gaps stay inside the (loose) bounds.
    assert metrics["sampled_max_excess_tau_above_1"] <= 0.0
    # The gap grows with tau: symmetric noise hurts more without clipping than at tau = 1.
    taus = sorted({row["tau"] for row in metrics["exact_rows"]})
    for rate in {row["rate"] for row in metrics["exact_rows"]}:
        gap = {row["tau"]: row["gap"] for row in metrics["exact_rows"] if row["rate"] == rate}
        assert gap[taus[-1]] > gap[taus[0]] + 0.01


CHECKS: dict[str, Callable[[dict[str, Any], str], None]] = {
    "01_fixed_threshold": check_01,
    "02_transformed_loss": check_02,
    "03_noise_tolerance": check_03,
}


# ---- sources -----------------------------------------------------------------------------------


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_source_has_no_outputs_and_one_parameters_cell(notebook: Path) -> None:
    nb = nbformat.read(notebook, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(not cell.outputs and cell.execution_count is None for cell in code), "clear the outputs"
    tagged = [cell for cell in nb.cells if "parameters" in cell.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert tagged[0] is code[0], "the parameters cell is the first code cell"
    assigned = {
        target.id: node.value
        for node in ast.parse(tagged[0].source).body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    assert {"scale", "metrics_path", "seed"} <= set(assigned)
    assert ast.literal_eval(assigned["scale"]) == "cpu"


def test_toc_lists_every_notebook() -> None:
    toc = yaml.safe_load((book.REPO_ROOT / "_toc.yml").read_text())
    listed = {entry["file"] for entry in toc["chapters"]}
    missing = [nb.stem for nb in NOTEBOOKS if f"build/notebooks/{nb.stem}" not in listed]
    assert not missing, f"add {missing} to _toc.yml"


# ---- executed ----------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_notebook_runs_and_shows_its_claims(notebook: Path, executed_book) -> None:
    stem = notebook.stem
    assert stem not in executed_book.failures, str(executed_book.failures.get(stem))
    executed = nbformat.read(executed_book.notebook(stem), as_version=4)
    errors = [out for cell in executed.cells for out in cell.get("outputs", []) if out.output_type == "error"]
    assert not errors
    metrics = json.loads(executed_book.metrics(stem).read_text())
    assert metrics, "the chapter recorded no metrics"
    assert all(math.isfinite(n) for n in _numbers(metrics))
    if stem in CHECKS:
        CHECKS[stem](metrics, executed_book.scale)
