"""The training engine: results, labels, diagnostics, checkpoints and exact resume, refusals, DDP on gloo."""

from __future__ import annotations

import csv
import json
import os
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from sklearn.metrics import roc_auc_score

import ogc_lab.train as train_module
from ogc_lab import files
from ogc_lab.data import load_dataset
from ogc_lab.hardware import cpu_name, select_device
from ogc_lab.losses import make_loss
from ogc_lab.noise import make_noise
from ogc_lab.ogc import base_loss
from ogc_lab.optim import build_loss, fused_options, make_optimizer, train_step
from ogc_lab.recipes import Config, get_recipe
from ogc_lab.runs import LAST_EPOCHS, CheckpointError, CsvLog, RunExistsError, load_checkpoint
from ogc_lab.train import (
    TRAIN_COUNTS,
    DistInfo,
    GradStats,
    auc,
    batch_counts,
    train,
)

TOY = get_recipe("toy", epochs=2, loss="ce+ogc", noise="symmetric:0.4",
                 ogc_interval=2, ogc_queue_size=64, log_interval=3)
# digits images exercise augmentation (crop) and a CNN with BatchNorm; 300 samples = 5 steps an epoch
DIGITS = get_recipe("digits-cpu", subset=300, epochs=3, milestones=(2,), loss="ce+ogc", noise="symmetric:0.4",
                    ogc_interval=2, ogc_queue_size=128, log_interval=2, deterministic=True)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


# ------------------------------------------------------------------ results and labels


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("toy") / "run"
    return out, train(TOY, out, progress=False)


def test_result_records_config_versions_noise_and_curves(toy_run) -> None:
    out, result = toy_run
    saved = json.loads((out / "result.json").read_text())
    assert saved["config"] == TOY.to_dict() and Config.from_dict(saved["config"]) == TOY
    assert set(saved["versions"]) == {"python", "ogc_lab", "torch", "torchvision", "numpy", "sklearn"}
    assert saved["source"] == files.source_revision() and set(saved["source"]) == {"commit", "dirty"}
    assert saved["device"] == f"cpu ({cpu_name()})" and saved["world_size"] == 1
    assert saved["threads"] == TOY.threads == 1  # the thread count the run trained with, not the config's 0 default
    assert saved["amp_reason"].startswith("off (auto)")  # toy2d is not an image set: float32 whatever the CPU
    assert len(saved["epochs"]) == TOY.epochs
    test = [e["test_acc"] for e in saved["epochs"]]
    assert saved["final_test_acc"] == test[-1] and saved["best_test_acc"] == max(test)
    assert saved["last10_test_acc"] == pytest.approx(np.mean(test[-LAST_EPOCHS:]))
    assert saved["noise"] == result["noise"]
    split = load_dataset("toy2d", seed=TOY.seed)
    expected = make_noise(TOY.noise, split.train_y, 2, seed=TOY.seed).report.to_dict()
    assert saved["noise"]["labels_sha256"] == expected["labels_sha256"]
    assert saved["noise"]["transition_counts"] == expected["transition_counts"]
    assert saved["noise"]["realised_rate"] == pytest.approx(0.4, abs=1e-12)  # exact counts: 80 of 200 each


def test_epochs_and_steps_csv_have_one_row_per_epoch_and_per_log_interval(toy_run) -> None:
    out, result = toy_run
    epochs = _rows(out / "epochs.csv")
    assert [int(r["epoch"]) for r in epochs] == [1, 2]
    steps_per_epoch = int(epochs[0]["step"])
    assert steps_per_epoch == -(-400 // TOY.batch_size)  # 400 toy samples, last batch partial
    steps = _rows(out / "steps.csv")
    assert [int(r["step"]) for r in steps] == list(range(3, 2 * steps_per_epoch + 1, 3))
    assert {"tau", "target", "ratio_before", "ratio_after", "auc_h", "g_clean", "g_noisy",
            "g_clean_clipped", "g_noisy_clipped", "clipped_fraction", "means_clean", "means_noisy"} <= set(steps[0])
    for r in steps:  # clipping can only lower gradients; the target is 1 + lr * epsilon
        assert float(r["g_clean_clipped"]) <= float(r["g_clean"]) + 1e-12
        assert float(r["g_noisy_clipped"]) <= float(r["g_noisy"]) + 1e-12
        assert float(r["target"]) == pytest.approx(1 + float(r["lr"]) * TOY.ogc_epsilon)
    for key in ("train_loss", "train_acc_noisy", "train_acc_clean", "test_acc", "lr", "epoch_time_s"):
        assert key in result["epochs"][0]


def test_noise_touches_training_labels_only() -> None:
    run = train_module._build(DIGITS, DistInfo(), torch.device("cpu"))
    split = load_dataset("digits", seed=DIGITS.seed, subset=DIGITS.subset)
    assert torch.equal(run.split.test_y, split.test_y)
    assert torch.equal(run.train_clean, split.train_y)
    expected = make_noise(DIGITS.noise, split.train_y, 10, seed=DIGITS.seed, features=split.train_x).labels
    assert torch.equal(run.train_noisy, expected)
    counts = torch.bincount(split.train_y, minlength=10)
    flipped = torch.bincount(split.train_y[run.train_noisy != run.train_clean], minlength=10)
    assert ((flipped - 0.4 * counts).abs() < 1).all()  # exact counts up to rounding, per class


def test_test_subset_sets_the_evaluated_test_images() -> None:
    assert train_module._build(DIGITS, DistInfo(), torch.device("cpu")).split.test_y.numel() == DIGITS.subset // 5
    whole = train_module._build(DIGITS.replace(test_subset=360), DistInfo(), torch.device("cpu"))
    assert whole.split.test_y.numel() == 360  # all of the digits' test images, whatever the train subset


def test_lr_follows_the_schedule(tmp_path: Path) -> None:
    multistep = train(TOY.replace(epochs=3, milestones=(1, 2), gamma=0.5), tmp_path / "m", progress=False)
    assert [e["lr"] for e in multistep["epochs"]] == pytest.approx([0.1, 0.05, 0.025])
    cosine = train(TOY.replace(epochs=2, schedule="cosine"), tmp_path / "c", progress=False)
    assert [e["lr"] for e in cosine["epochs"]] == pytest.approx([0.1, 0.05])
    linear = train(TOY.replace(epochs=4, schedule="linear", warmup_epochs=1), tmp_path / "l", progress=False)
    assert [e["lr"] for e in linear["epochs"]] == pytest.approx([0.05, 0.1, 0.1 * 2 / 3, 0.1 / 3])


def test_non_ogc_loss_logs_unclipped_diagnostics(tmp_path: Path) -> None:
    train(TOY.replace(loss="ce", epochs=1), tmp_path / "ce", progress=False)
    steps = _rows(tmp_path / "ce" / "steps.csv")
    assert steps and all(r["tau"] == "inf" for r in steps)
    assert all(r["ratio_after"] == r["ratio_before"] for r in steps)


def test_dataloader_pipeline_trains(tmp_path: Path) -> None:
    config = DIGITS.replace(pipeline="dataloader", num_workers=0, epochs=1, loss="ce")
    result = train(config, tmp_path / "dl", progress=False)
    assert len(result["epochs"]) == 1 and 0.0 <= result["final_test_acc"] <= 1.0


# ------------------------------------------------------------------ published settings of the baselines


def test_build_loss_gives_js_its_published_pi1_and_ogc_the_tau_search_of_loss_params() -> None:
    js = build_loss(TOY.replace(loss="js", noise="symmetric:0.4"), 2)
    assert js.pi1 == 0.7  # the JS authors' CIFAR-10 setting at 40 % symmetric noise, not the loss's 0.5
    ogc = build_loss(TOY.replace(loss_params={"tau_search": "reference"}), 2)
    assert ogc.controller.tau_search == "reference"


def test_l1_penalty_adds_lr_delta_sign_w_to_the_step() -> None:
    # One plain-SGD step (64 samples, batch 64) from the same start: the penalised weights differ from
    # the unpenalised ones by lr * delta * sign(w0), the step of delta * sum |w|.
    plain = TOY.replace(loss="ce", subset=64, momentum=0.0, weight_decay=0.0, grad_clip=None, log_interval=1000)
    delta = 0.01
    runs = [train_module._build(plain.replace(l1_penalty=d), DistInfo(), torch.device("cpu")) for d in (0.0, delta)]
    start = [p.detach().clone() for p in runs[0].net.parameters()]
    for run in runs:
        assert train_module._train_epoch(run, 0, 0, None, progress=False)[1] == 1
    for w0, free, penalised in zip(start, runs[0].net.parameters(), runs[1].net.parameters()):
        step = plain.lr * delta * torch.sign(w0)
        torch.testing.assert_close(free.detach() - penalised.detach(), step, rtol=0, atol=1e-6)


# ------------------------------------------------------------------ diagnostics


def test_grad_stats_match_hand_computed_means() -> None:
    probs = torch.tensor([0.5, 0.25, 0.1, 0.05])  # g = 1/p = 2, 4, 10, 20
    logits = torch.stack([probs, 1 - probs], 1).log()
    targets = torch.zeros(4, dtype=torch.long)
    clean = torch.tensor([0, 0, 1, 1])  # the last two are noisy
    stats = GradStats(base_loss("ce"), torch.device("cpu"))
    stats.update(logits, targets, clean, torch.tensor(5.0))
    out = stats.read(DistInfo())
    assert out["g_clean"] == pytest.approx(3.0) and out["g_noisy"] == pytest.approx(15.0)
    assert out["g_clean_clipped"] == pytest.approx(3.0) and out["g_noisy_clipped"] == pytest.approx(5.0)
    assert out["ratio_before"] == pytest.approx(5.0) and out["ratio_after"] == pytest.approx(5.0 / 3.0)
    assert out["auc_h"] == 1.0 and out["noisy_frac"] == 0.5
    assert stats.read(DistInfo())["g_clean"] != stats.read(DistInfo())["g_clean"]  # reset: nan


def test_auc_matches_sklearn_with_ties() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, 200).astype(float)  # many ties
    positive = rng.random(200) < 0.3
    assert auc(scores, positive) == pytest.approx(roc_auc_score(positive, scores), abs=1e-12)
    assert np.isnan(auc(scores, np.zeros(200, bool)))


def testbatch_counts_count_memorisation_exactly() -> None:
    """Flipped samples predicted as their given (noisy) label vs their true one, counted by hand."""
    clean = torch.tensor([0, 1, 2, 3, 4, 5])
    noisy = torch.tensor([0, 1, 9, 9, 9, 5])  # samples 2, 3, 4 flipped
    pred = torch.tensor([0, 7, 9, 3, 8, 5])  # 2 fits its noisy label, 3 its clean one, 4 neither
    totals = dict(zip(TRAIN_COUNTS, batch_counts(torch.tensor(0.5), pred, noisy, clean).tolist()))
    assert totals == {"loss": 3.0, "n": 6, "pred_noisy": 3, "pred_clean": 3, "flipped": 3,
                      "flipped_pred_noisy": 1, "flipped_pred_clean": 1}


def test_select_device() -> None:
    assert select_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert select_device("auto").type in {"cpu", "mps"}
        with pytest.raises(ValueError, match="device 'cuda' is not available"):
            select_device("cuda")


# ------------------------------------------------------------------ checkpoints, resume, refusals


class _Killed(Exception):
    """Stands in for the process being killed."""


# float32; bf16 autocast + channels_last (emulated if not native); the linear schedule's LambdaLR state
@pytest.mark.parametrize("amp, schedule", [("off", "multistep"), ("bf16", "multistep"), ("off", "linear")])
def test_resume_after_a_kill_is_bit_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, amp: str,
                                              schedule: str) -> None:
    config = DIGITS.replace(amp=amp, schedule=schedule)
    straight = tmp_path / "straight"
    train(config, straight, progress=False)

    killed = tmp_path / "killed"
    real_save = train_module.save_checkpoint
    saves = []

    def save_then_die_in_epoch_3(path: Path, state: dict) -> None:
        if len(saves) == 2:  # epoch 3 trained and logged, killed before its checkpoint lands
            raise _Killed
        saves.append(state["epoch"])
        real_save(path, state)

    monkeypatch.setattr(train_module, "save_checkpoint", save_then_die_in_epoch_3)
    with pytest.raises(_Killed):
        train(config, killed, progress=False)
    assert load_checkpoint(killed / "checkpoint.pt")["epoch"] == 2
    assert len(_rows(killed / "epochs.csv")) == 3  # the stray epoch-3 row the resume must drop
    monkeypatch.setattr(train_module, "save_checkpoint", real_save)
    resumed = train(config, killed, resume=True, progress=False)

    a, b = load_checkpoint(straight / "checkpoint.pt"), load_checkpoint(killed / "checkpoint.pt")
    assert a["epoch"] == b["epoch"] == 3 and a["step"] == b["step"]
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for key in ("tau", "queue", "means"):
        assert torch.equal(a["loss"]["_extra_state"][key], b["loss"]["_extra_state"][key]), key
    if schedule == "multistep":  # lr 0.01 in epoch 3: OGC clips at the end (the linear run ends unclipped)
        assert torch.isfinite(a["loss"]["_extra_state"]["tau"])
    assert (straight / "steps.csv").read_text() == (killed / "steps.csv").read_text()
    timeless = lambda rows: [{k: v for k, v in r.items() if not k.endswith("_s")} for r in rows]  # noqa: E731
    assert timeless(_rows(straight / "epochs.csv")) == timeless(_rows(killed / "epochs.csv"))
    assert [e["test_acc"] for e in resumed["epochs"]] == [e["test_acc"] for e in json.loads(
        (straight / "result.json").read_text())["epochs"]]
    assert resumed["amp_reason"].startswith(amp)  # the decision is recorded: "off: ..." or "bf16 as asked ..."


def test_resume_drops_a_torn_csv_row(tmp_path: Path) -> None:
    """A write cut mid-row (a file-size limit, a full disk) leaves a fragment that resume must not keep."""
    log = CsvLog(tmp_path / "steps.csv")
    for step in (5, 10):
        log.append({"step": step, "tau": 2.0, "ratio": 1.5})
    whole = (tmp_path / "steps.csv").read_text()
    with open(tmp_path / "steps.csv", "a") as handle:
        handle.write("15,2.")  # cut short: two of three fields, no newline
    log.truncate(lambda r: int(r["step"]) <= 15)
    assert (tmp_path / "steps.csv").read_text() == whole


@pytest.mark.parametrize("pipeline", ["device", "dataloader"])
def test_a_last_batch_of_one_sample_is_dropped(tmp_path: Path, pipeline: str) -> None:
    """65 images in batches of 64: BatchNorm failed on the last batch of one ('Expected more than 1 value')."""
    config = DIGITS.replace(subset=65, epochs=1, milestones=(1,), batch_size=64, model="cnn8", pipeline=pipeline,
                            num_workers=0, log_interval=1)
    result = train(config, tmp_path / "run", progress=False)
    assert result["epochs"][0]["step"] == 1


def test_resume_rewrites_a_torn_csv_header(tmp_path: Path, toy_run) -> None:
    """A crash while the header was written ('step,epo') left a log that kept only the step column."""
    out = tmp_path / "run"
    out.mkdir()
    state = torch.load(toy_run[0] / "checkpoint.pt", weights_only=True)
    history = state["history"][:1]
    torch.save({**state, "epoch": 1, "step": history[0]["step"], "history": history}, out / "checkpoint.pt")
    (out / "steps.csv").write_text("step,epo")
    train(TOY, out, resume=True, progress=False)
    header = _rows(out / "steps.csv")[0].keys()
    assert list(header) == list(_rows(toy_run[0] / "steps.csv")[0].keys())
    assert len(_rows(out / "steps.csv")) == len([r for r in _rows(toy_run[0] / "steps.csv") if r["epoch"] == "2"])


def test_a_finished_run_is_never_overwritten(toy_run) -> None:
    out, result = toy_run
    before = (out / "result.json").read_bytes()
    with pytest.raises(RunExistsError, match="already holds a finished run"):
        train(TOY, out, progress=False)
    assert train(TOY, out, resume=True, progress=False) == json.loads(before)
    with pytest.raises(RunExistsError, match="finished run of another config .*epochs: saved 2 vs now 3"):
        train(TOY.replace(epochs=3), out, resume=True, progress=False)
    assert (out / "result.json").read_bytes() == before


def test_an_unfinished_run_needs_resume(tmp_path: Path) -> None:
    out = tmp_path / "run"
    out.mkdir()
    (out / "steps.csv").write_text("step\n1\n")
    with pytest.raises(RunExistsError, match="holds an unfinished run"):
        train(TOY, out, progress=False)
    assert (out / "steps.csv").read_text() == "step\n1\n"


def test_unreadable_or_foreign_checkpoints_are_refused(tmp_path: Path, toy_run) -> None:
    out = tmp_path / "bad"
    out.mkdir()
    (out / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="cannot read checkpoint"):
        train(TOY, out, resume=True, progress=False)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "checkpoint.pt").write_bytes((toy_run[0] / "checkpoint.pt").read_bytes())
    with pytest.raises(CheckpointError, match="another config .*lr: saved 0.1 vs now 0.2"):
        train(TOY.replace(lr=0.2), foreign, resume=True, progress=False)


def _other_momentum(state: dict) -> dict:
    state["optimizer"]["state"][0]["momentum_buffer"] = torch.zeros(7)
    return state


def _no_loss_queue(state: dict) -> dict:
    state["loss"] = {}
    return state


@pytest.mark.parametrize("change, match", [
    (_other_momentum, r"optimizer momentum_buffer of parameter 0 has shape \(7,\), the parameter has \(\d+, 2\)"),
    (_no_loss_queue, r"the loss entries differ from this run's \(missing \['_extra_state'\], unexpected none\)"),
    (lambda s: {**s, "epoch": "1"}, r"entry 'epoch' is '1', expected an integer >= 0"),
    (lambda s: {**s, "config": {**s["config"], "lr": "fast"}}, r"its config is not valid: config field lr='fast'"),
])
def test_a_checkpoint_whose_entries_do_not_fit_the_run_is_refused_before_loading(
    tmp_path: Path, toy_run, change, match
) -> None:
    out = tmp_path / "run"
    out.mkdir()
    torch.save(change(torch.load(toy_run[0] / "checkpoint.pt", weights_only=True)), out / "checkpoint.pt")
    with pytest.raises(CheckpointError, match=match) as err:
        train(TOY, out, resume=True, progress=False)
    assert repr(str(out / "checkpoint.pt")) in str(err.value)
    assert sorted(p.name for p in out.iterdir()) == ["checkpoint.pt"]  # no lock file left behind either


def test_resume_without_a_checkpoint_starts_afresh(tmp_path: Path) -> None:
    result = train(TOY.replace(epochs=1), tmp_path / "new", resume=True, progress=False)
    assert len(result["epochs"]) == 1


@pytest.mark.skipif(files.fcntl is None, reason="no advisory file locks on this platform")
def test_a_run_folder_being_written_refuses_a_second_trainer(tmp_path: Path) -> None:
    out = tmp_path / "run"
    with files.folder_lock(out):  # as a trainer in another process would hold it
        with pytest.raises(files.FolderBusyError, match="in use by another process"):
            train(TOY.replace(epochs=1), out, resume=True, progress=False)
    assert train(TOY.replace(epochs=1), out, resume=True, progress=False)["epochs"]


# ------------------------------------------------------------------ DistributedDataParallel on gloo


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: str, config: dict, record: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world), LOCAL_RANK=str(rank))
    result = train(Config.from_dict(config), Path(out), progress=False)
    taus = [e["tau"] for e in result["epochs"]]
    Path(record, f"rank{rank}.json").write_text(json.dumps({"taus": taus, "acc": result["final_test_acc"]}))


def test_two_process_gloo_run_shares_tau_and_rank0_writes(tmp_path: Path) -> None:
    config = DIGITS.replace(epochs=2, ogc_epsilon=2.0)  # target 1.2: tau goes finite within 2 epochs
    out = tmp_path / "ddp"
    mp.spawn(_ddp_worker, args=(2, _free_port(), str(out), config.to_dict(), str(tmp_path)), nprocs=2)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert r0["taus"] == r1["taus"] and np.isfinite(r0["taus"][-1])  # one shared queue, one tau
    assert r0["acc"] == r1["acc"]  # test counts summed over ranks
    result = json.loads((out / "result.json").read_text())
    assert result["world_size"] == 2 and result["num_train"] == 300
    assert len(load_checkpoint(out / "checkpoint.pt")["rng"]) == 2
    steps_per_epoch = int(_rows(out / "epochs.csv")[0]["step"])
    assert steps_per_epoch == -(-150 // (config.batch_size // 2))  # each rank: half the data, half the batch


def test_progress_bars_can_be_forced_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    train(TOY.replace(epochs=1), tmp_path / "bars", progress=True)
    assert "epochs" in capsys.readouterr().err


def test_extra_test_sets_are_evaluated_at_the_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_load = train_module.load_dataset

    def with_extra(*args, **kwargs):
        split = real_load(*args, **kwargs)
        split.extra_test_sets = {"copy": (split.test_x, split.test_y)}
        return split

    monkeypatch.setattr(train_module, "load_dataset", with_extra)
    result = train(TOY.replace(epochs=1), tmp_path / "extra", progress=False)
    assert result["extra_test_acc"] == {"copy": result["final_test_acc"]}


def test_train_step_clips_the_global_gradient_norm_and_returns_the_loss_and_the_logits_it_stepped_on() -> None:
    # plain SGD at lr 1 moves the weights by the clipped gradient, whose global norm is then grad_clip
    torch.manual_seed(0)
    net = torch.nn.Linear(4, 3)
    start = [p.detach().clone() for p in net.parameters()]
    x, y = 10.0 * torch.randn(16, 4), torch.randint(0, 3, (16,))
    loss, logits = train_step(net, make_loss("ce", 3), torch.optim.SGD(net.parameters(), lr=1.0), x, y, lr=1.0,
                              amp=False, grad_clip=0.01)
    moved = torch.cat([(p0 - p.detach()).flatten() for p0, p in zip(start, net.parameters())])
    assert float(moved.norm()) == pytest.approx(0.01, rel=1e-4)
    torch.testing.assert_close(logits.detach(), x @ start[0].T + start[1])
    assert float(loss) == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)))


def test_sgd_is_fused_on_cuda_only_and_takes_the_same_step() -> None:
    # The CUDA choice is built on CPU parameters here (this torch has fused SGD on the CPU too), so
    # the wiring and the fused kernel's arithmetic are checked without a GPU.
    config = get_recipe("official-cifar10")
    steps = {}
    for device in ("cpu", "cuda"):
        torch.manual_seed(0)
        net = torch.nn.Linear(5, 3)
        optimizer = make_optimizer(net.parameters(), config, torch.device(device))
        assert bool(optimizer.defaults.get("fused")) == (device == "cuda")
        for _ in range(3):
            optimizer.zero_grad()
            net(torch.randn(8, 5, generator=torch.Generator().manual_seed(1))).square().sum().backward()
            optimizer.step()
        steps[device] = net.weight.detach().clone()
    torch.testing.assert_close(steps["cuda"], steps["cpu"], rtol=1e-6, atol=1e-7)
    assert fused_options(torch.optim.SGD, torch.device("cpu")) == {}


@pytest.mark.parametrize("loss", ["ce", "ce+ogc"])
def test_training_steps_build_no_tensor_from_host_values(loss: str, host_value_tensors: list) -> None:
    # Between logging steps a training step copies nothing from the host to the device (on CUDA
    # each copy would synchronise the step): the digits run exercises augmentation and OGC refits.
    config = DIGITS.replace(loss=loss, epochs=1, log_interval=1000)
    run = train_module._build(config, train_module.DistInfo(), torch.device("cpu"))
    host_value_tensors.clear()  # building the run may copy; the steps may not
    _, steps = train_module._train_epoch(run, 0, 0, None, progress=False)
    assert steps == 5 and host_value_tensors == []


def test_ratio_target_is_the_ogc_losses_own_and_the_configs_for_other_losses() -> None:
    config = TOY.replace(ogc_epsilon=10.0)
    ogc = build_loss(config, 2)
    ogc(torch.zeros(4, 2), torch.tensor([0, 1, 0, 1]), lr=0.05)
    assert train_module.ratio_target(ogc, 0.05, config) == ogc.controller.target == 1.0 + 0.05 * 10.0
    ce = build_loss(config.replace(loss="ce"), 2)
    assert train_module.ratio_target(ce, 0.05, config) == 1.0 + 0.05 * 10.0


# ------------------------------------------------------------------ early stopping on held-out noisy labels


@pytest.mark.parametrize("n, fraction, seed", [(10, 0.3, 0), (1000, 0.1, 4), (7, 0.0, 1)])
def test_holdout_splits_every_index_once_with_the_asked_count(n: int, fraction: float, seed: int) -> None:
    kept, held = train_module.holdout(n, fraction, seed)
    assert len(held) == round(n * fraction) and len(kept) == n - len(held)
    assert torch.equal(torch.cat([kept, held]).sort().values, torch.arange(n))
    again_kept, again_held = train_module.holdout(n, fraction, seed)
    assert torch.equal(kept, again_kept) and torch.equal(held, again_held)


def test_holdout_depends_on_the_seed_and_refuses_an_empty_side() -> None:
    assert not torch.equal(train_module.holdout(1000, 0.1, 0)[1], train_module.holdout(1000, 0.1, 1)[1])
    with pytest.raises(ValueError, match=r"val_fraction=0.01 of 10 training samples holds out 0; allowed: .* 1 and 9"):
        train_module.holdout(10, 0.01, 0)


def test_early_stopping_keeps_the_first_best_noisy_validation_epoch() -> None:
    history = [{"epoch": e, "val_acc_noisy": v, "test_acc": t}
               for e, v, t in [(1, 0.2, 0.3), (2, 0.5, 0.6), (3, 0.5, 0.9), (4, 0.4, 0.95)]]
    assert train_module.early_stopping(history) == {"epoch": 2, "val_acc_noisy": 0.5, "test_acc": 0.6}
    assert train_module.early_stopping([{"epoch": 1, "test_acc": 0.5}]) is None


def test_a_validation_split_is_held_out_of_training_and_picks_the_epoch(tmp_path: Path) -> None:
    config = TOY.replace(epochs=3, val_fraction=0.25)
    run = train_module._build(config, DistInfo(), torch.device("cpu"))
    whole = train_module._build(TOY, DistInfo(), torch.device("cpu"))
    kept, held = train_module.holdout(len(whole.train_noisy), 0.25, config.seed)
    assert torch.equal(run.train_x, whole.train_x[kept]) and torch.equal(run.val_x, whole.train_x[held])
    assert torch.equal(run.val_noisy, whole.train_noisy[held])  # the noisy labels: no clean label is used
    result = train(config, tmp_path / "val", progress=False)
    assert result["num_val"] == len(held) and result["num_train"] == len(kept)
    chosen = result["early_stopping"]
    best = max(e["val_acc_noisy"] for e in result["epochs"])
    assert chosen["val_acc_noisy"] == best
    assert chosen["test_acc"] == result["epochs"][chosen["epoch"] - 1]["test_acc"]
    assert "val_acc_noisy" in _rows(tmp_path / "val" / "epochs.csv")[0]
    assert train(TOY, tmp_path / "none", progress=False)["early_stopping"] is None
