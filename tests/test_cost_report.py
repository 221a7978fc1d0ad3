"""Chapter 8's tables, quoted values and figures, on made-up timings shaped as ``cost``'s functions return them."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402
from torch import nn  # noqa: E402

from ogc_lab import cost_report  # noqa: E402
from ogc_lab.cost import SKLEARN_METHOD, precision_sentences  # noqa: E402

REFIT = {"target": 3.0, "repeats": 5, "methods": {
    "torch exact": {"seconds": 0.002, "speedup": 12.0, "tau": 2.0},
    "torch grid": {"seconds": 0.004, "speedup": 6.0, "tau": 2.02},
    SKLEARN_METHOD: {"seconds": 0.024, "speedup": 1.0, "tau": 2.0202},
}}


def step_timing(model: str = "cnn-small", warmup: int = 32, interval: int = 32) -> dict:
    """Two arms of 64 steps: CE at 1 ms, OGC at 1.1 ms with 3 ms on its refit steps (every ``interval``-th)."""
    ogc_times = [0.0011 + (0.003 if (warmup + i) % interval == 0 else 0.0) for i in range(1, 65)]
    ce_times = [0.001 + 0.0001 * (i % 2) for i in range(64)]
    return {"model": model, "batch": 128, "warmup_steps": warmup, "steps_per_arm": 64, "interval": interval, "arms": {
        "ce": {"median_step_s": 0.00105, "mean_step_s": 0.00105, "step_times_s": ce_times},
        "ce+ogc": {"plain_step_s": 0.0011, "refit_s": 0.003, "refit_timed": "in situ", "refits_timed": 2,
                   "step_s": 0.0011 + 0.003 / interval, "ratio": 1.1, "mean_step_s": sum(ogc_times) / 64,
                   "median_step_s": 0.0011, "step_times_s": ogc_times}}}


def test_the_refit_table_compares_every_method_with_sklearn_and_the_fine_grid() -> None:
    table = cost_report.refit_table(REFIT, fine_tau=2.0)
    assert table["method"].tolist() == list(REFIT["methods"])
    assert table["rel. diff to reference"].tolist() == ["1.0e-02", "9.9e-05", "0.0e+00"]  # 0.0002 / 2.0202
    assert table["rel. diff to 200k grid"].tolist()[0] == "0.0e+00" and table["ms"].tolist()[0] == "2.000"


def test_refit_quotes_name_each_method_by_its_key() -> None:
    quotes = cost_report.refit_quotes(REFIT, fine_tau=2.0, interval=32)
    assert quotes["refit_ms_reference"] == (24.0, ".2f") and quotes["tau_grid"] == (2.02, ".6f")
    assert quotes["speedup_exact"] == (12.0, ".1f") and "speedup_reference" not in quotes
    assert quotes["tau_rel_diff_grid"][0] == pytest.approx(0.0002 / 2.0202)
    assert quotes["tau_rel_diff_exact_fine"][0] == 0.0
    assert quotes["refit_per_step_ms_exact"][0] == pytest.approx(2.0 / 32)


def test_a_step_row_reads_both_arms() -> None:
    row = cost_report.step_row(step_timing())
    assert row["ce_ms"] == pytest.approx(1.05) and row["ogc_ms"] == pytest.approx(1.1 + 3.0 / 32)
    assert row["ratio"] == 1.1 and row["ce_spread_ms"] == pytest.approx(0.1)
    table = cost_report.step_table([row])
    assert list(table.columns) == ["model", "batch", "CE ms", "CE+OGC ms", "refit ms", "refit timed", "ratio"]


def test_step_quotes_call_the_digits_cnn_digits_and_other_models_by_name() -> None:
    rows = [cost_report.step_row(step_timing()), cost_report.step_row(step_timing("resnet18"))]
    quotes = cost_report.step_quotes(rows)
    assert quotes["ratio_digits"] == (1.1, ".3f") and quotes["batch_resnet18"] == (128, None)
    assert quotes["overhead_ms_digits"][0] == pytest.approx(rows[0]["ogc_ms"] - rows[0]["ce_ms"])
    assert "ratio_cnn-small" not in quotes and quotes["step_rows"][0] == rows


def test_the_step_figure_circles_the_refit_steps() -> None:
    fig = cost_report.plot_steps(step_timing(warmup=30, interval=16))
    circled = fig.axes[0].lines[2]
    assert circled.get_xdata().tolist() == [2, 18, 34, 50]  # steps 32, 48, 64, 80 of the loss: 30 + i
    assert circled.get_ydata().tolist() == pytest.approx([4.1] * 4)
    plt.close(fig)


def test_the_refit_figure_has_a_bar_per_method() -> None:
    fig = cost_report.plot_refit(REFIT)
    assert len(fig.axes[0].patches) == 3 and fig.axes[0].texts[2].get_text().startswith("  24.00 ms")
    plt.close(fig)


def test_precision_quotes_carry_the_machines_words() -> None:
    precision = [{"model": m, "float32_step_s": 0.02, "bf16_step_s": 0.01, "speedup": 2.0, "native_bf16": False}
                 for m in ("cnn8", "resnet18")]
    quotes = cost_report.precision_quotes(precision, 128)
    assert quotes["native_bf16_text"] == ("no", None) and quotes["precision_speedup_cnn8"] == (2.0, ".1f")
    assert quotes["precision_verdict"][0] == precision_sentences(precision)["verdict"]
    assert cost_report.precision_table(precision)["bf16 ms"].tolist() == [10.0, 10.0]


def test_state_quotes_split_the_state_into_the_queue_and_a_fixed_part() -> None:
    sizes = [1024, 4096]
    states = [{"total_bytes": 8 * q + 100, "queue_bytes": 8 * q, "dtype": "torch.float64"} for q in sizes]
    model = nn.Linear(10, 10)  # 110 float32 parameters: 440 bytes
    quotes = cost_report.state_quotes(sizes, states, 4096, model)
    assert quotes["state_bytes_4096"] == (8 * 4096 + 100, ",") and quotes["state_fixed_bytes"][0] == 100
    assert quotes["bytes_per_value"] == (8, None) and quotes["resnet18_param_bytes"][0] == 440
    assert cost_report.state_table(sizes, states)["queue bytes"].tolist() == ["8,192", "32,768"]
    with pytest.raises(ValueError, match="unknown queue size 512; allowed: 1024, 4096"):
        cost_report.state_quotes(sizes, states, 512, model)
