"""ogc_lab.report's shared pieces: tables of mean ± std, steps.csv, the plot helpers and reading runs back."""

from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

from fixtures import run_record
from ogc_lab import plotting, report, runs
from ogc_lab.runs import LAST_EPOCHS, RunRecord, last_epochs_mean
from ogc_lab.tables import format_pm


def _frame() -> pd.DataFrame:
    return pd.DataFrame({
        "loss": ["gce", "gce", "ce", "ce", "ce"],
        "noise": ["sym", "sym", "sym", "sym", "asym"],
        "acc": [0.5, 0.6, 0.8, 0.9, 0.7],
    })


def test_mean_std_counts_exactly_and_uses_the_sample_std_in_first_seen_order() -> None:
    stats = report.mean_std(_frame(), ["loss", "noise"], "acc")
    assert list(zip(stats["loss"], stats["noise"])) == [("gce", "sym"), ("ce", "sym"), ("ce", "asym")]
    assert list(stats["n"]) == [2, 2, 1]
    assert stats["mean"].tolist() == pytest.approx([0.55, 0.85, 0.7])
    assert stats["std"].iloc[0] == pytest.approx(np.std([0.5, 0.6], ddof=1))
    assert math.isnan(stats["std"].iloc[2])  # one run: no spread to report
    with pytest.raises(ValueError, match="no column 'seed'"):
        report.mean_std(_frame(), ["seed"], "acc")


def test_pm_table_and_markdown_table() -> None:
    table = report.pm_table(_frame(), "loss", "noise", "acc")
    assert list(table.index) == ["gce", "ce"] and list(table.columns) == ["sym", "asym"]
    assert table.loc["gce", "sym"] == f"55.0 ± {100 * np.std([0.5, 0.6], ddof=1):.1f}"
    assert table.loc["ce", "asym"] == "70.0"
    assert table.loc["gce", "asym"] == ""  # never run
    assert report.markdown_table(table).splitlines() == [
        "| loss | sym | asym |",
        "|---|---|---|",
        "| gce | 55.0 ± 7.1 |  |",
        "| ce | 85.0 ± 7.1 | 70.0 |",
    ]
    assert format_pm(0.12345, 0.01, digits=2) == "12.35 ± 1.00"


def test_results_frame_takes_config_fields_and_summary_metrics() -> None:
    results = [
        run_record([{"test_acc": 0.4}], {"loss": "ce", "seed": s, "ogc_epsilon": 20.0}, last10_test_acc=0.1 * s,
                   best_test_acc=0.5, wall_time_s=2.0)
        for s in (1, 2)
    ]
    frame = report.results_frame(results, ["loss", "seed", "ogc_epsilon"])
    assert list(frame.columns) == ["loss", "seed", "ogc_epsilon", *report.SUMMARY_METRICS]
    assert frame["last10_test_acc"].tolist() == pytest.approx([0.1, 0.2])
    with pytest.raises(ValueError, match="unknown config field 'q'"):
        report.results_frame(results, ["q"])


def _committed(loss: str, seed: int, acc: float, device: str, date: str) -> RunRecord:
    config = {"dataset": "cifar10", "noise": "symmetric:0.4", "loss": loss, "seed": seed}
    return run_record([{"test_acc": acc}], config, device=device, date=f"{date}T10:00:00+00:00",
                      data_source="data/c.npz sha256 abc")


def test_provenance_table_groups_seeds_and_keeps_every_device_date_and_file() -> None:
    runs = [
        _committed("ce+ogc", 1, 0.70, "cuda:0 (H100)", "2026-11-26"),
        _committed("ce", 0, 0.50, "cpu", "2026-11-25"),
        _committed("ce+ogc", 0, 0.80, "cpu", "2026-11-25"),
    ]
    table = report.provenance_table(runs)
    assert table["loss"].tolist() == ["ce+ogc", "ce"]  # first-seen order
    ogc = table.iloc[0]
    assert ogc["seeds"] == "0,1"
    assert ogc["last-10 test acc (%)"] == f"75.00 ± {100 * np.std([0.7, 0.8], ddof=1):.2f}"
    assert ogc["device"] == "cpu, cuda:0 (H100)" and ogc["dates"] == "2026-11-25, 2026-11-26"
    assert ogc["data"] == "data/c.npz"
    assert table.iloc[1]["last-10 test acc (%)"] == "50.00"  # one seed: no spread
    assert report.provenance_table([]).columns.tolist() == table.columns.tolist()


def test_plot_helpers_draw_the_columns_they_name(tmp_path: Path) -> None:
    steps = pd.DataFrame({"step": [10, 20, 30], "tau": [math.inf, 4.0, 2.0], "ratio_after": [1.0, 2.5, 1.1],
                          "target": [3.0, 3.0, 1.2]})
    fig, ax = plt.subplots()
    plotting.plot_tau(ax, steps, label="tau")
    y = ax.lines[0].get_ydata()
    assert math.isnan(y[0]) and list(y[1:]) == [4.0, 2.0]  # no clipping yet: nothing drawn
    plotting.plot_ratio(ax, steps, label="after")
    assert list(ax.lines[1].get_ydata()) == [1.0, 2.5, 1.1] and list(ax.lines[2].get_ydata()) == [3.0, 3.0, 1.2]
    with pytest.raises(ValueError, match="no column 'ratio_before'"):
        plotting.plot_ratio(ax, steps, column="ratio_before")
    plt.close(fig)
    assert runs.load_steps(tmp_path).empty


def test_lr_phases_split_at_every_lr_change_and_take_the_last_epoch() -> None:
    steps = pd.DataFrame({
        "step": [10, 20, 30, 40, 50, 60], "epoch": [1, 1, 2, 3, 3, 4], "lr": [0.1, 0.1, 0.1, 0.01, 0.01, 0.01],
        "target": [3.0, 3.0, 3.0, 1.2, 1.2, 1.2], "tau": [math.inf, 5.0, 4.0, 2.0, 1.5, 1.3],
        "ratio_before": [1.0] * 6, "ratio_after": [1.0, 2.0, 2.5, 1.1, 1.2, 1.3],
    })
    phases = report.lr_phases(steps)
    columns = ["lr", "target", "first_epoch", "last_epoch"]
    assert phases[columns].values.tolist() == [[0.1, 3.0, 1, 2], [0.01, 1.2, 3, 4]]
    assert phases["tau"].tolist() == [4.0, 1.3] and phases["ratio_after"].tolist() == [2.5, 1.3]
    with pytest.raises(ValueError, match="empty"):
        report.lr_phases(steps.iloc[:0])


def test_load_runs_refuses_an_empty_folder_unless_told_it_may_be_empty(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no finished runs"):
        runs.load_runs(tmp_path)
    assert runs.load_runs(tmp_path, allow_empty=True) == []
    assert runs.load_runs(tmp_path / "absent", allow_empty=True) == []


def test_load_runs_reads_every_committed_run_as_a_typed_record(tmp_path: Path) -> None:
    committed = Path(__file__).resolve().parents[1] / "results"
    paths = sorted(p for p in committed.rglob("result.json") if runs.REPORT_DIR not in p.parts)
    records = runs.load_runs(committed)
    assert [r.dir for r in records] == [p.parent for p in paths]
    for record, path in zip(records, paths):
        raw = json.loads(path.read_text(encoding="utf-8"))
        assert (record.dataset, record.loss, record.noise, record.seed, record.model) == tuple(
            raw["config"][k] for k in ("dataset", "loss", "noise", "seed", "model"))
        assert (record.last10_test_acc, record.num_train, record.device) == (
            raw["last10_test_acc"], raw["num_train"], raw["device"])
        assert record.noise_report == raw["noise"] and record.epochs == tuple(raw["epochs"])
        assert record.config == raw["config"] and record.result == runs.read_result(path)
    damaged = tmp_path / "ce" / "seed0" / "result.json"
    damaged.parent.mkdir(parents=True)
    damaged.write_text(json.dumps({k: v for k, v in json.loads(paths[0].read_text()).items() if k != "num_train"}))
    with pytest.raises(ValueError, match=f"result file {str(damaged)!r} has no 'num_train' entry"):
        runs.load_runs(tmp_path)


def test_progress_lists_begun_runs_with_their_epochs_and_skips_what_is_not_a_run(tmp_path: Path) -> None:
    def epochs(folder: Path, accuracies: list[float], finished: bool = False) -> None:
        folder.mkdir(parents=True)
        pd.DataFrame({"epoch": range(1, len(accuracies) + 1), "test_acc": accuracies}).to_csv(folder / "epochs.csv")
        if finished:
            (folder / "result.json").write_text("{}")

    epochs(tmp_path / "ce" / "symmetric_0.6" / "seed0", [0.3, 0.5, 0.6], finished=True)
    epochs(tmp_path / "ce+ogc" / "symmetric_0.6" / "seed1", [0.4])
    epochs(tmp_path / "ce+ogc" / "human_worse" / "seed2", [])
    epochs(tmp_path / "report" / "x" / "seed0", [0.9])  # a sweep's report folder, not a run
    epochs(tmp_path / "stray", [0.9])  # not at the grid's depth
    table = runs.progress(tmp_path)
    assert table[["loss", "noise", "seed", "epochs", "finished"]].values.tolist() == [
        ["ce", "symmetric_0.6", 0, 3, True], ["ce+ogc", "human_worse", 2, 0, False],
        ["ce+ogc", "symmetric_0.6", 1, 1, False]]
    assert table["last_test_acc"].iloc[0] == 0.6 and math.isnan(table["last_test_acc"].iloc[1])
    assert runs.progress(tmp_path / "ce" / "symmetric_0.6").empty  # a run folder is not a grid
    begun = runs.begun_runs(tmp_path)
    assert list(begun) == [("ce", "symmetric_0.6", 0), ("ce+ogc", "human_worse", 2), ("ce+ogc", "symmetric_0.6", 1)]
    fig, ax = plt.subplots()
    symmetric = {(loss, seed): e for (loss, noise, seed), e in begun.items() if noise == "symmetric_0.6"}
    plotting.plot_single_runs(ax, symmetric)
    assert [line.get_label() for line in ax.get_lines()] == ["ce, seed 0", "ce+ogc, seed 1"]
    assert ax.get_lines()[0].get_ydata().tolist() == [30.0, 50.0, 60.0]  # percent
    assert ax.get_lines()[1].get_linestyle() == "--"  # seed 1
    plt.close(fig)


def test_last_epochs_mean_averages_the_papers_last_ten_epochs_or_all_of_fewer() -> None:
    assert LAST_EPOCHS == 10
    assert last_epochs_mean([0.0] * 5 + [1.0] * 10) == 1.0
    assert last_epochs_mean([0.2, 0.4]) == pytest.approx(0.3)


def test_read_result_gives_old_results_the_key_train_writes_now() -> None:
    """result.json files written before the rename hold the amp decision's reason as "amp"; read as "amp_reason"."""
    path = next(Path(__file__).resolve().parents[1].glob("results/**/result.json"))
    raw = json.loads(path.read_text(encoding="utf-8"))
    result = runs.read_result(path)
    if "amp" in raw:
        assert result["amp_reason"] == raw["amp"] and "amp" not in result
    assert list(result) == [runs.RENAMED_RESULT_KEYS.get(key, key) for key in raw]  # the order kept
    assert "source" not in raw  # written before results recorded their source revision


@pytest.mark.parametrize("source", [{"commit": "0" * 40, "dirty": True}, {"commit": None, "dirty": None}])
def test_read_result_reads_the_source_revision_known_or_not(source: dict, tmp_path: Path) -> None:
    committed = next(Path(__file__).resolve().parents[1].glob("results/**/result.json"))
    path = tmp_path / "result.json"
    path.write_text(json.dumps({**json.loads(committed.read_text(encoding="utf-8")), "source": source}))
    assert runs.read_result(path)["source"] == source


def test_run_records_say_what_ran_and_the_last_threshold_in_words() -> None:
    def run(loss: str, tau: float | None) -> RunRecord:
        return run_record([{"test_acc": 0.95}, {"test_acc": 0.9}],
                          {"loss": loss, "noise": "symmetric:0.4", "epochs": 2}, final_tau=tau, num_train=500,
                          num_test=100, noise={"realised_rate": 0.394}, last10_test_acc=0.875, wall_time_s=6.0,
                          date="2026-12-04T10:00:00+00:00")

    records = report.run_records([run("ce", None), run("ce+ogc", math.inf), run("ce+ogc", 2.34567)])
    assert records.columns.tolist() == report.RUN_RECORD
    assert records["final tau"].tolist() == ["∞ (no clipping)", "∞ (no clipping)", "2.35"]
    shown = report.outcome_table(records)
    assert shown.columns.tolist() == ["loss", "noise", "realised noise", "final test acc", "last ≤ 10 epochs",
                                      "final tau"]
    assert shown.iloc[0][["realised noise", "final test acc", "last ≤ 10 epochs"]].tolist() == [
        "39.4%", "90.0%", "87.5%"]
    assert report.run_records([]).columns.tolist() == report.RUN_RECORD
