"""Smoke tests of the benchmarks: each script runs end to end with --quick and reports its ratio line.

No timing assertions (the figures depend on the machine); what is checked is that every script
finishes, prints a parseable ``RATIO name: value`` line, writes JSON with the machine record, and
counts what it says it counts (refits inside timed blocks, steps, images, identical DDP queues).
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest

from fixtures import write_cifar_npz
from ogc_lab.ogc import OGC_DEFAULTS

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "benchmarks"
RATIO = re.compile(r"^RATIO (.+): (\S+)", re.MULTILINE)


def _common() -> Any:
    spec = importlib.util.spec_from_file_location("bench_common", BENCH / "_common.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_quick(script: str, tmp_path: Path) -> tuple[dict[str, Any], dict[str, float]]:
    """Run ``script --quick --json``; return its JSON and its RATIO lines (name -> value)."""
    out = tmp_path / f"{script}.json"
    proc = subprocess.run([sys.executable, str(BENCH / script), "--quick", "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    ratios = {name: float(value) for name, value in RATIO.findall(proc.stdout)}
    assert ratios, f"no RATIO line in the output of {script}:\n{proc.stdout}"
    assert all(math.isfinite(v) and v > 0 for v in ratios.values()), ratios
    payload = json.loads(out.read_text())
    assert {"device", "device_name", "torch", "threads", "date"} <= set(payload["machine"])
    assert payload["machine"]["threads"] == 1  # the benchmarks' default --threads
    return payload, ratios


def test_bench_refit_reports_paired_speedups_and_agreeing_taus(tmp_path: Path) -> None:
    payload, ratios = run_quick("bench_refit.py", tmp_path)
    methods = payload["refit"]["methods"]
    assert payload["refit"]["repeats"] == 3 and methods["reference (sklearn + grid)"]["speedup"] == 1.0
    assert list(ratios.values()) == [pytest.approx(methods["torch exact"]["speedup"], abs=5e-4)]
    reference = methods["reference (sklearn + grid)"]["tau"]
    assert methods["torch grid"]["tau"] == pytest.approx(reference, rel=1e-4)  # the same grid problem
    assert methods["torch exact"]["tau"] == pytest.approx(payload["fine_grid_tau"], rel=1e-4)
    assert payload["state_bytes"] > 4096 * 4


def test_bench_step_times_refits_in_situ_and_amortises_resnet_on_cpu(tmp_path: Path) -> None:
    payload, ratios = run_quick("bench_step.py", tmp_path)
    rows = {r["model"]: r for r in payload["results"]}
    assert set(rows) == {"cnn-small", "resnet18"}
    precision = {r["model"]: r for r in payload["precision"]}
    assert set(precision) == {"cnn8", "resnet18"}
    device = payload["machine"]["device"]
    assert set(ratios) == {f"ce+ogc/ce step {m} [{device}]" for m in rows} | {
        f"float32/bf16 step {m} [{device}]" for m in precision}
    for r in precision.values():  # each RATIO line is the ratio of the two medians it reports
        assert r["speedup"] == pytest.approx(r["float32_step_s"] / r["bf16_step_s"])
        assert ratios[f"float32/bf16 step {r['model']} [{device}]"] == pytest.approx(r["speedup"], abs=5e-4)
    digits = rows["cnn-small"]
    assert digits["steps_per_arm"] == 32 and digits["refits_timed"] == 1 and digits["refit_timed"] == "in situ"
    for arm in ("ce", "ce+ogc"):
        assert len(digits["step_times_s"][arm]) == 32
    if payload["machine"]["device"] == "cpu":
        assert rows["resnet18"]["refits_timed"] == 0 and rows["resnet18"]["refit_timed"] == "separately"
    for r in rows.values():
        assert r["ogc_step_s"] == pytest.approx(r["ogc_plain_step_s"] + r["refit_s"] / OGC_DEFAULTS.interval)
    assert payload["pieces_s"]["refit (update with refit - push only)"] > 0
    state = payload["ogc_state"]
    assert state["queue_bytes"] == OGC_DEFAULTS.queue_size * (8 if state["dtype"] == "torch.float64" else 4)
    assert state["queue_bytes"] < state["total_bytes"] < 2 * state["queue_bytes"]


def test_bench_pipeline_reports_data_and_training_throughput(tmp_path: Path) -> None:
    payload, ratios = run_quick("bench_pipeline.py", tmp_path)
    assert len(ratios) == 3
    precision = payload["precision"]
    assert precision["amp_auto"] in ("bf16", "float32") and precision["reason"]
    assert precision["speedup"] == pytest.approx(
        payload["training"]["device_img_per_s"] / payload["training_float32"]["device_img_per_s"])
    name = f"pipeline training amp/float32 [{payload['model']}]"
    assert ratios[name] == pytest.approx(precision["speedup"], abs=5e-4)
    assert payload["data_source"] == "random uint8 images"  # --quick never needs the CIFAR file
    assert payload["data_only"]["images"] == 256 and payload["training"]["images"] == 64
    for part in ("data_only", "training"):
        assert payload[part]["speedup"] == pytest.approx(
            payload[part]["device_img_per_s"] / payload[part]["dataloader_img_per_s"])


def test_bench_epoch_times_both_pipelines_through_the_trainer(tmp_path: Path) -> None:
    payload, ratios = run_quick("bench_epoch.py", tmp_path)
    assert list(ratios) == ["epoch dataloader/device", "epoch float32/amp"]
    assert list(payload["runs"]) == ["device", "dataloader", "device, float32"]
    assert payload["runs"]["device, float32"][0]["amp_reason"].startswith("off")
    for runs in payload["runs"].values():
        (run,) = runs
        assert run["num_train"] == 256 and run["steps_per_epoch"] == 4  # digits-cpu: batch 64
        assert len(run["epoch_times_s"]) == 2 and run["epochs_timed"] == 1
    seconds = payload["seconds_per_epoch"]
    assert payload["speedup"] == pytest.approx(seconds["dataloader"] / seconds["device"])
    assert payload["precision_speedup"] == pytest.approx(seconds["device, float32"] / seconds["device"])


def test_bench_ddp_keeps_the_ogc_queues_identical_across_ranks(tmp_path: Path) -> None:
    payload, ratios = run_quick("bench_ddp.py", tmp_path)
    assert list(ratios) == ["ddp 2-process/1-process step"]
    (two,) = payload["runs"]["2"]
    assert two["queues_identical"] is True
    assert two["gather_bytes_sent_per_rank"] == 128 * 8  # 128 H values in float64 on the CPU
    assert two["gather_bytes_received_per_rank"] == 2 * 128 * 8
    # warm-up (32 steps) + one timed block (32 steps): a refit at steps 32 and 64 in both runs
    assert two["refits"] == payload["runs"]["1"][0]["refits"] == 2


def test_bench_model_reports_flop_shares_of_the_measured_peak(tmp_path: Path) -> None:
    payload, ratios = run_quick("bench_model.py", tmp_path)
    arms = payload["results"]["resnet9-w16"]
    timed_bf16 = payload["machine"]["cpu_native_bf16"]  # bf16 is left out where the CPU emulates it
    assert set(arms) == {"float32", "float32 channels_last"} | ({"bf16 channels_last"} if timed_bf16 else set())
    for name, arm in arms.items():
        peak = payload["peak_flop_per_s"]["bf16" if name.startswith("bf16") else "off"]
        assert arm["flop_per_s"] == pytest.approx(arm["step_flops"] / arm["step_s"])
        assert arm["share_of_peak"] == pytest.approx(arm["flop_per_s"] / peak)
        assert arm["images_per_s"] == pytest.approx(8 / arm["step_s"])
    assert len(ratios) == 2


def test_step_flops_counts_forward_and_backward_convolutions() -> None:
    from ogc_lab import cost

    # resnet9-w16's convolutions, by hand: 2 * MACs forward, twice that backward (input and weight gradients)
    w = (16, 32, 64, 128)
    macs = 9 * (3 * w[0] * 32 * 32 + w[0] * w[1] * 32 * 32 + 2 * w[1] * w[1] * 16 * 16 + w[1] * w[2] * 16 * 16
                + w[2] * w[3] * 8 * 8 + 2 * w[3] * w[3] * 4 * 4) + w[3] * 10
    first_conv_input_grad = 2 * 9 * 3 * w[0] * 32 * 32  # not needed for the image, so not computed
    assert cost.step_flops("resnet9-w16", batch=2) == 2 * (3 * 2 * macs - first_conv_input_grad)


def test_common_helpers_interleave_and_count_exactly() -> None:
    from ogc_lab import cost
    from ogc_lab.hardware import select_device

    common = _common()
    order: list[str] = []
    times = common.interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")},
                               repeats=3, device=select_device("cpu"), warmup=1)
    assert order == ["a", "b"] * 4 and {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    assert cost.steps_to_fill(4096, 128, 32) == 32
    assert cost.steps_to_fill(4096, 100, 32) == 64  # 41 steps fill it, the next refit step is 64
    lines = common.format_table(["x", "long name"], [[1, 2.5]]).splitlines()
    assert len(lines) == 3 and len({len(line) for line in lines}) == 1
    with pytest.raises(ValueError, match="--threads"):
        common.setup(type("Args", (), {"threads": -1, "seed": 0, "device": "cpu"})())


def test_device_checks_script_rehearses_the_pair_on_the_cpu(tmp_path: Path) -> None:
    # OGC_DEVICE_QUICK=1 runs the GPU script's code path on the CPU; what it leaves under $OUT is
    # what the device tool would bring back: at most 8 files, every name plain (no '+').
    npz = tmp_path / "cifar10_jpeg.npz"
    write_cifar_npz(npz, n_train=80, n_test=20)
    out = tmp_path / "out"
    env = {**os.environ, "OGC_DEVICE_QUICK": "1", "PYTHON": sys.executable, "OUT": str(out),
           "OGC_CIFAR_NPZ": str(npz), "OGC_DEVICE_RUNS": str(tmp_path / "runs")}
    script = str(BENCH / "device_checks.sh")
    proc = subprocess.run(["bash", script, "pair"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    kept = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert kept == ["device.log", "runs.tar.gz"]
    with tarfile.open(out / "runs.tar.gz") as tar:
        packed = sorted(tar.getnames())
    runs = [f"official-cifar10_{tag}_symmetric-0.4_seed0" for tag in ("ce", "ce-ogc")]
    assert packed == sorted(f"{r}/{f}" for r in runs for f in ("epochs.csv", "result.json", "steps.csv"))
    assert all(re.fullmatch(r"[A-Za-z0-9._/-]+", name) for name in packed)
    results = _packed_results(out / "runs.tar.gz")
    config = json.loads(results[runs[1]])["config"]
    assert (config["loss"], config["noise"], config["dataset"], config["epochs"]) == ("ce+ogc", "symmetric:0.4",
                                                                                    "cifar10-npz", 2)
    # a second call resumes from build/device-runs: both runs are finished, so their results stay as they were
    again = subprocess.run(["bash", script, "pair"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    assert again.returncode == 0 and _packed_results(out / "runs.tar.gz") == results
    bad = subprocess.run(["bash", script, "bogus"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "allowed: all, checks, pair" in bad.stderr


def _packed_results(path: Path) -> dict[str, bytes]:
    """Run name -> bytes of its result.json inside the tarball the device script brings back."""
    with tarfile.open(path) as tar:
        return {name.split("/")[0]: tar.extractfile(name).read() for name in tar.getnames()
                if name.endswith("/result.json")}
