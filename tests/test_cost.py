"""ogc_lab.cost: call counts and order of the interleaved timing, result shapes, state size; no timing claims."""

from __future__ import annotations

import itertools
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ogc_lab import cost
from ogc_lab.losses import make_loss
from ogc_lab.ogc import H_MAX, H_MIN
from ogc_lab.optim import train_step


class FakeClock:
    """A perf_counter stand-in that only moves when an arm says so (exact, machine-independent times)."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


# ---- interleaving and medians --------------------------------------------------------------------


@settings(max_examples=25, deadline=None)
@given(arms=st.integers(1, 4), repeats=st.integers(1, 5), warmup=st.integers(0, 3))
def test_interleaved_calls_every_arm_in_rotation(arms: int, repeats: int, warmup: int) -> None:
    order: list[str] = []
    names = [f"arm{i}" for i in range(arms)]
    times = cost.interleaved({n: (lambda n=n: order.append(n)) for n in names}, repeats, warmup)
    assert order == names * (warmup + repeats)
    assert {n: len(t) for n, t in times.items()} == {n: repeats for n in names}
    assert list(times) == names


def test_interleaved_medians_are_the_medians_of_the_timed_calls(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr(cost.time, "perf_counter", clock)
    durations = {"a": iter([9.0, 1.0, 3.0, 2.0]), "b": iter([9.0, 5.0, 4.0, 6.0])}  # first call: warm-up
    arms = {name: (lambda it=it: clock.advance(next(it))) for name, it in durations.items()}
    assert cost.interleaved_medians(arms, repeats=3, warmup=1) == {"a": 2.0, "b": 5.0}


@pytest.mark.parametrize("kwargs", [dict(repeats=0), dict(repeats=2, warmup=-1), dict(repeats=True)])
def test_interleaved_rejects_bad_counts(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="repeats|warmup"):
        cost.interleaved({"a": lambda: None}, **kwargs)


def test_interleaved_needs_an_arm_and_median_needs_values() -> None:
    with pytest.raises(ValueError, match="at least one arm"):
        cost.interleaved({}, 1)
    with pytest.raises(ValueError, match="no values"):
        cost.median([])


def test_torch_threads_sets_and_restores_the_thread_count() -> None:
    before = torch.get_num_threads()
    with cost.torch_threads(1) as used:
        assert used == torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with cost.torch_threads(0) as used:
        assert used == before
    with pytest.raises(ValueError, match="threads"):
        with cost.torch_threads(-1):
            pass


def test_select_device_and_machine_info() -> None:
    assert cost.select_device("cpu") == torch.device("cpu")
    assert cost.select_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="unknown device 'tpu'; allowed: auto, cpu"):
        cost.select_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="not available"):
            cost.select_device("cuda")
    info = cost.machine_info("cpu")
    assert {"device", "device_name", "torch", "threads", "cpu_count", "date"} <= set(info)
    assert info["device"] == "cpu" and info["threads"] == torch.get_num_threads()


def test_steps_to_fill_ends_on_a_refit_step() -> None:
    assert cost.steps_to_fill(4096, 128, 32) == 32
    assert cost.steps_to_fill(4096, 100, 32) == 64  # 41 steps fill it, the next refit step is 64
    assert cost.steps_to_fill(64, 16, 4) == 4


def test_split_by_and_flag_refits_count_exactly() -> None:
    assert cost.split_by([1.0, 2.0, 3.0], [False, True, False]) == ([1.0, 3.0], [2.0])
    with pytest.raises(ValueError, match="flags"):
        cost.split_by([1.0], [])
    loss = make_loss("ce+ogc", 10, interval=2, queue_size=8)
    logits, targets = torch.randn(4, 10), torch.zeros(4, dtype=torch.long)
    call, flags = cost.flag_refits(lambda: loss(logits, targets, lr=0.1), loss)
    for _ in range(6):
        call()
    # the queue of 8 is full after 2 steps of 4; refits at steps 2, 4, 6
    assert flags == [False, True, False, True, False, True]


# ---- the refit -----------------------------------------------------------------------------------


def test_sample_queue_is_seeded_and_inside_the_h_range() -> None:
    h = cost.sample_queue(4096, seed=3)
    assert h.shape == (4096,) and h.dtype == torch.float64
    assert float(h.min()) >= H_MIN and float(h.max()) <= H_MAX
    assert torch.equal(h, cost.sample_queue(4096, seed=3)) and not torch.equal(h, cost.sample_queue(4096, seed=4))
    with pytest.raises(ValueError, match="queue_size"):
        cost.sample_queue(1, 0)


def test_time_refit_calls_each_method_warmup_plus_repeats_plus_once(monkeypatch: pytest.MonkeyPatch) -> None:
    order: list[str] = []
    fakes = {name: (lambda h, target, seed, name=name: order.append(name) or 2.0) for name in cost.REFIT_METHODS}
    monkeypatch.setattr(cost, "REFIT_METHODS", fakes)
    names = list(fakes)
    result = cost.time_refit(queue_size=64, seed=0, methods=names, repeats=4, warmup=2)
    # warm-up and timed rounds in rotation, then one more call each for the tau it reports
    assert order == names * (2 + 4) + names
    assert set(result["methods"]) == set(names)
    assert all(r["tau"] == 2.0 for r in result["methods"].values())


def test_time_refit_speedup_is_the_median_of_paired_round_ratios(monkeypatch: pytest.MonkeyPatch) -> None:
    # Round 2 is slow for both arms (drift): pairing cancels it, a ratio of medians would not.
    times = {"torch exact": [1.0, 4.0, 1.0, 1.2], cost.SKLEARN_METHOD: [10.0, 40.0, 12.0, 9.0]}
    monkeypatch.setattr(cost, "interleaved", lambda arms, repeats, warmup, sync: {n: times[n] for n in arms})
    monkeypatch.setattr(cost, "REFIT_METHODS", {name: (lambda h, target, seed: 2.0) for name in cost.REFIT_METHODS})
    result = cost.time_refit(queue_size=64, methods=list(times), repeats=4)["methods"]
    assert result["torch exact"]["speedup"] == pytest.approx(10.0)  # median of 10, 10, 12, 7.5
    assert result["torch exact"]["seconds"] == pytest.approx(1.1)
    assert result[cost.SKLEARN_METHOD]["speedup"] == 1.0
    alone = cost.time_refit(queue_size=64, methods=["torch exact"], repeats=4)["methods"]["torch exact"]
    assert math.isnan(alone["speedup"])


def test_time_refit_agrees_with_the_reference_path() -> None:
    result = cost.time_refit(seed=0, repeats=2, warmup=1, threads=1)  # the default queue (OGC_DEFAULTS)
    assert result["target"] == pytest.approx(3.0) and result["threads"] == 1
    methods = result["methods"]
    assert list(methods) == list(cost.REFIT_METHODS)
    assert all(math.isfinite(m["seconds"]) and m["seconds"] > 0 and math.isfinite(m["tau"]) for m in methods.values())
    reference = methods[cost.SKLEARN_METHOD]["tau"]
    # same 1000-point grid, different EM implementations: the fits agree closely
    assert methods["torch grid"]["tau"] == pytest.approx(reference, rel=1e-4)
    # the closed form differs from any 1000-point grid by the grid's discretisation error only
    fine = cost.torch_tau(cost.sample_queue(result["queue_size"], 0), result["target"], "grid", n_grid=200_000)
    assert methods["torch exact"]["tau"] == pytest.approx(fine, rel=1e-4)
    assert methods["torch exact"]["tau"] == pytest.approx(reference, rel=1e-2)


def test_time_refit_rejects_unknown_methods() -> None:
    with pytest.raises(ValueError, match="unknown refit method 'torch magic'; allowed: torch exact"):
        cost.time_refit(methods=["torch magic"])
    with pytest.raises(ValueError, match="refit method"):
        cost.time_refit(methods=[])


# ---- training steps ------------------------------------------------------------------------------


def _record_arms(monkeypatch: pytest.MonkeyPatch) -> list[cost.Arm]:
    built: list[cost.Arm] = []
    original = cost.build_arm

    def build(*args, **kwargs):
        built.append(original(*args, **kwargs))
        return built[-1]

    monkeypatch.setattr(cost, "build_arm", build)
    return built


def test_time_training_steps_times_whole_refit_intervals_in_situ(monkeypatch: pytest.MonkeyPatch) -> None:
    arms = _record_arms(monkeypatch)
    threads = torch.get_num_threads()
    result = cost.time_training_steps("cnn-small", ("ce", "ce+ogc"), batch=16, steps=8, interval=4, queue_size=64,
                                      threads=1)
    assert torch.get_num_threads() == threads  # restored
    assert result["threads"] == 1 and result["warmup_steps"] == 4 and result["baseline"] == "ce"
    # every arm took the warm-up plus exactly the timed steps
    assert [arm.done for arm in arms] == [12, 12]
    assert arms[1].loss.controller.step == 12 and arms[1].loss.controller.refits == 3  # steps 4, 8, 12
    ce, ogc = result["arms"]["ce"], result["arms"]["ce+ogc"]
    assert len(ce["step_times_s"]) == len(ogc["step_times_s"]) == 8
    assert ogc["refits_timed"] == 2 and ogc["refit_timed"] == "in situ"  # steps 8 and 12 are timed
    assert ogc["step_s"] == pytest.approx(ogc["plain_step_s"] + ogc["refit_s"] / 4)
    assert ce["ratio"] == 1.0 and ogc["ratio"] == pytest.approx(ogc["step_s"] / ce["median_step_s"])
    assert all(math.isfinite(v) and v > 0 for v in (ce["step_s"], ogc["plain_step_s"], ogc["ratio"]))


def test_time_training_steps_times_the_refit_separately_before_the_queue_is_full(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    arms = _record_arms(monkeypatch)
    result = cost.time_training_steps("cnn-small", ("ce", "ce+ogc"), batch=8, steps=2, warmup_steps=1, interval=4,
                                      queue_size=64, threads=1)
    assert [arm.done for arm in arms] == [3, 3] and arms[1].loss.controller.refits == 0
    ogc = result["arms"]["ce+ogc"]
    assert ogc["refits_timed"] == 0 and ogc["refit_timed"] == "separately"
    assert math.isfinite(ogc["refit_s"]) and math.isfinite(ogc["ratio"]) and ogc["ratio"] > 0


def test_time_training_steps_rejects_bad_names() -> None:
    with pytest.raises(ValueError, match="unknown loss 'nope'; allowed: ce"):
        cost.time_training_steps("cnn-small", ("ce", "nope"), steps=1)
    with pytest.raises(ValueError, match="unknown model"):
        cost.time_training_steps("vgg", ("ce",), steps=1)


def test_recipe_step_is_the_trainers_step_with_the_recipes_optimiser_lr_and_clip() -> None:
    step = cost.recipe_step(torch.nn.Linear(3, 2), make_loss("ce", 2))
    recipe, optimizer = cost.OFFICIAL_RECIPE, step.args[2]
    assert step.func is train_step and isinstance(optimizer, torch.optim.SGD)
    hyper = ("lr", "momentum", "weight_decay", "nesterov")
    assert [optimizer.defaults[k] for k in hyper] == [getattr(recipe, k) for k in hyper]
    assert (step.keywords["lr"], step.keywords["grad_clip"]) == (recipe.lr, recipe.grad_clip)


def test_time_controller_update_splits_push_and_refit() -> None:
    out = cost.time_controller_update(batch=16, seed=0, interval=4, queue_size=64, intervals=2)
    assert set(out) == {"push_s", "push_refit_s", "refit_s"}
    assert out["refit_s"] == pytest.approx(out["push_refit_s"] - out["push_s"])
    with pytest.raises(ValueError, match="intervals"):
        cost.time_controller_update(batch=16, interval=4, queue_size=64, intervals=0)


# ---- memory --------------------------------------------------------------------------------------


@pytest.mark.parametrize("q1,q2", list(itertools.combinations([256, 1024, 4096], 2)))
def test_ogc_state_grows_linearly_in_the_queue(q1: int, q2: int) -> None:
    small, large = (cost.ogc_state_bytes(make_loss("ce+ogc", 10, queue_size=q)) for q in (q1, q2))
    assert small["queue_bytes"] == 8 * q1 and small["dtype"] == "torch.float64"  # float64 on the CPU
    assert large["total_bytes"] - small["total_bytes"] == 8 * (q2 - q1)  # everything else is fixed
    assert small["queue_bytes"] < small["total_bytes"]


def test_ogc_state_bytes_needs_an_ogc_loss() -> None:
    with pytest.raises(ValueError, match="no OGC state"):
        cost.ogc_state_bytes(make_loss("ce", 10))


@pytest.mark.parametrize(("speedups", "native", "verdict", "summary"), [
    ((4.5, 2.7), True, "makes CIFAR runs on a CPU affordable",
     "bf16 autocast on this machine's bf16 hardware: 4.5× for the 8-layer CNN and 2.7× for ResNet-18, "
     "against float32."),
    ((0.10, 0.2), False, "no native bf16: torch emulates it, so the bf16 arm is slower (down to 0.10×, a step 10 times",
     "bf16 on this CPU is emulated, without native bf16 hardware: 0.10× for the 8-layer CNN and 0.20× for ResNet-18 "
     "against float32, slower, so the runs here train in float32."),
    ((0.9, 1.2), True, "yet bf16 was not faster than float32",
     "bf16 autocast on this machine: 0.90× for the 8-layer CNN and 1.2× for ResNet-18, against float32; not faster, "
     "though native."),
])
def test_precision_sentences_speak_for_the_machine_that_ran(speedups, native, verdict, summary) -> None:
    rows = [{"model": m, "speedup": s, "native_bf16": native} for m, s in zip(("cnn8", "resnet18"), speedups)]
    words = cost.precision_sentences(rows)
    assert verdict in words["verdict"] and words["summary"] == summary
    assert ("affordable" in words["verdict"]) == (native and min(speedups) > 1)
    assert ("float32; the runs this build made trained in float32" in words["verdict"]) == (not native)
