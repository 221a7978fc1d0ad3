"""ogc_lab.campaigns: the paper's grid, its code path cut to a CPU, and the committed campaigns' plans."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from fixtures import fake_run, write_cifar_npz
from ogc_lab import campaigns
from ogc_lab.campaigns import FULL_TIER, PAPER_GRID, QUICK_TIER, Tier
from ogc_lab.data import NPZ_ENV
from ogc_lab.recipes import get_recipe


def test_every_experiment_builds_its_grid_of_validated_runs(tmp_path: Path) -> None:
    planned = {name: campaigns.experiment_runs(name, tmp_path) for name in PAPER_GRID}
    for name, runs in planned.items():
        e = PAPER_GRID[name]
        assert len(runs) == len(e.noises) * len(e.losses) * len(e.seeds)
        assert all(r.out.is_relative_to(tmp_path / name) for r in runs)
    assert campaigns.synthetic_noises("asym-cifar10")[-4:] == (
        "asym-cifar10:0.2", "asym-cifar10:0.4", "instance:0.2", "instance:0.4")
    assert {r.config.dataset for r in planned["CIFAR-10N"]} == {"cifar10n"}  # the experiment's own override
    table = campaigns.paper_grid_table(planned)
    assert table["experiment"].tolist() == list(PAPER_GRID) and table["runs"].sum() == 544
    assert table.set_index("experiment").loc["CIFAR-100", "epochs (lr steps)"] == "150 (50, 100)"
    assert table.set_index("experiment").loc["WebVision-mini", "model"] == "resnet50"


def test_a_shorter_experiment_keeps_its_recipes_schedule_shape(tmp_path: Path) -> None:
    runs = campaigns.experiment_runs("WebVision-mini", tmp_path, {"data_root": "/d"}, epochs=10)
    assert {(r.config.epochs, r.config.milestones, r.config.data_root) for r in runs} == {(10, (4, 8), "/d")}
    assert len(campaigns.paper_runs(None, tmp_path, {}, epochs=3)) == 544
    assert len(campaigns.paper_runs(["CIFAR-100N"], tmp_path, {})) == 27
    with pytest.raises(ValueError, match="unknown experiment 'CIFAR-11'; allowed: CIFAR-10, CIFAR-10N"):
        campaigns.paper_runs(["CIFAR-11"], tmp_path, {})
    with pytest.raises(ValueError, match="unknown experiment 'ImageNet'"):
        campaigns.experiment_runs("ImageNet", tmp_path)


def test_published_settings_are_read_from_the_built_configs(tmp_path: Path) -> None:
    planned = {name: campaigns.experiment_runs(name, tmp_path) for name in ("CIFAR-10", "CIFAR-100")}
    published = campaigns.published_settings(planned)
    assert published == [["anl-ce", "cifar10", {"weight_decay": 0.0, "l1_penalty": 5e-5}],
                         ["anl-ce", "cifar100", {"weight_decay": 0.0, "l1_penalty": 5e-7}]]
    assert campaigns.published_text(published[:1]) == "anl-ce on cifar10 with weight decay 0 and an L1 penalty of 5e-05"
    assert campaigns.published_text([]) == "none"


def test_gpu_status_shows_no_number_without_a_gpu_run() -> None:
    assert campaigns.gpu_status([], "06_cifar").startswith("No GPU result exists yet: 06_cifar holds no run")
    runs = [fake_run("ce", seed, [0.5], device="cuda:0 (NVIDIA H200)") for seed in (0, 1)]
    assert campaigns.gpu_status(runs, "06_cifar") == (
        "2 GPU runs are committed under 06_cifar (devices: cuda:0 (NVIDIA H200)); the table shows them.")


@pytest.fixture
def no_shared_npz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No CIFAR file at hand: neither $OGC_CIFAR_NPZ nor the repository's or the shared data folder (empty ones)."""
    monkeypatch.delenv(NPZ_ENV, raising=False)
    monkeypatch.setattr(campaigns, "SHARED_DATA", tmp_path / "shared")
    monkeypatch.setattr(campaigns, "DATA_ROOT", tmp_path / "data")
    return tmp_path


def test_code_path_settings_fall_back_to_the_digits_without_the_cifar_file(no_shared_npz: Path) -> None:
    smoke = campaigns.code_path_settings("smoke")
    assert (smoke["data"], smoke["subset"], smoke["epochs"], smoke["npz"]) == ("digits", 500, 2, None)
    cpu = campaigns.code_path_settings("cpu", jobs=1)
    assert (cpu["data"], cpu["subset"], cpu["epochs"], cpu["jobs"]) == ("digits", None, campaigns.DIGITS_EPOCHS, 1)
    assert campaigns.code_path_settings("cpu", epochs=3)["epochs"] == 3
    npz = no_shared_npz / "cifar10_jpeg.npz"
    write_cifar_npz(npz)
    found = campaigns.code_path_settings("cpu", str(npz), subset=10)
    assert (found["data"], found["subset"], found["npz"]) == ("cifar10-npz", 10, npz.resolve())
    assert campaigns.code_path_settings("gpu")["jobs"] >= 1
    with pytest.raises(ValueError, match="unknown override"):
        campaigns.code_path_settings("cpu", batch=3)


def test_code_path_settings_take_the_official_archive_where_make_data_put_it(no_shared_npz: Path) -> None:
    (no_shared_npz / "data" / "cifar-10-batches-py").mkdir(parents=True)
    cpu = campaigns.code_path_settings("cpu", jobs=1)
    assert (cpu["data"], cpu["subset"], cpu["epochs"], cpu["npz"]) == ("cifar10", 2000, 4, None)
    c = campaigns.code_path_runs(cpu, 0, no_shared_npz / "runs")[0].config
    assert (c.dataset, c.model, c.data_root, c.subset) == ("cifar10", "cnn8", str(no_shared_npz / "data"), 2000)
    assert campaigns.code_path_settings("smoke")["data"] == "digits"  # the tests never need CIFAR
    npz = no_shared_npz / "data" / "cifar10_jpeg.npz"  # the JPEG copy, where present, comes first
    write_cifar_npz(npz)
    assert campaigns.code_path_settings("cpu")["npz"] == npz.resolve()


def test_code_path_runs_are_the_recipe_cut_to_the_cpu(no_shared_npz: Path) -> None:
    settings = campaigns.code_path_settings("smoke")
    runs = campaigns.code_path_runs(settings, 0, no_shared_npz / "runs", amp="off")
    assert [r.config.loss for r in runs] == ["ce", "ce+ogc"]
    c = runs[0].config
    assert (c.dataset, c.model, c.subset, c.epochs, c.milestones) == ("digits", "cnn-small", 500, 2, (1,))
    assert (c.threads, c.device, c.amp, c.noise, c.seed) == (1, "cpu", "off", "symmetric:0.4", 0)
    npz = settings | {"data": "cifar10-npz", "npz": Path("/data/cifar10_jpeg.npz"), "subset": 20, "epochs": 4}
    c = campaigns.code_path_runs(npz, 1, no_shared_npz / "runs")[0].config
    assert (c.dataset, c.model, c.data_root, c.milestones, c.amp) == (
        "cifar10-npz", "cnn8", "/data/cifar10_jpeg.npz", (1, 3), get_recipe("official-cifar10").amp)


def test_the_data_words_follow_the_scale_and_the_file_found() -> None:
    npz = Path("/x/cifar10_jpeg.npz")
    assert campaigns.data_note("gpu", "paper", None, download=False).endswith("(download off).")
    assert campaigns.data_note("gpu", "paper", None).endswith("(download on).")
    assert campaigns.data_note("smoke", "digits", None).startswith("At smoke scale the chapter always uses the digits")
    assert campaigns.data_note("cpu", "digits", None).startswith("Neither CIFAR-10 file was found")
    assert "official archive (downloaded by `make data`" in campaigns.data_note("cpu", "cifar10", None)
    assert campaigns.data_description("cifar10", None) == "CIFAR-10 from its official archive, a stratified subset"
    assert campaigns.data_note("cpu", "cifar10-npz", npz) == "The CIFAR-10 file (cifar10_jpeg.npz) was found."
    assert campaigns.data_description("cifar10-npz", npz).endswith("(cifar10_jpeg.npz), a stratified subset")
    assert campaigns.caveat("digits", "smoke", "symmetric:0.4").endswith("say nothing at all.")
    assert campaigns.caveat("digits", "cpu", "symmetric:0.4").endswith("say nothing about CIFAR.")
    assert campaigns.caveat("cifar10-npz", "cpu", "symmetric:0.4").endswith(
        "(the first comes after 32 steps, once its queue of 4096 values is full).")


def test_code_path_record_states_what_ran_and_its_caveat(no_shared_npz: Path) -> None:
    settings = campaigns.code_path_settings("smoke")
    results = []
    for loss in ("ce", "ce+ogc"):
        config = get_recipe("official-cifar10", **campaigns.DIGITS, loss=loss, subset=500, epochs=2).to_dict()
        results.append(fake_run(loss, 0, [0.5, 0.8], config=config, data_source=f"{no_shared_npz}/digits (sha256 1)",
                                device="cpu", date="2026-12-04T10:00:00+00:00"))
    ran = pd.DataFrame({"loss": ["ce", "ce+ogc"], "final test acc": [0.81, 0.84], "final tau": ["∞", "2.5"],
                        "epochs": [2, 2], "train images": [500, 500], "test images": [100, 100],
                        "model": ["cnn-small"] * 2, "device": ["cpu"] * 2, "date": ["2026-12-04T10:00:00"] * 2})
    record = campaigns.code_path_record(results, ran, settings, "smoke", 2, {}, apart="Chapter 5's CE ...")
    assert record["ran_summary"].startswith(
        "The final test accuracies are 81.0% for CE and 84.0% for CE+OGC (CE+OGC's threshold at the end: 2.5).")
    assert record["ran_summary"].endswith("means nothing. Chapter 5's CE ...")
    assert str(no_shared_npz) not in record["data_source"]  # no folder of this machine on the page
    assert (record["ran_train_images"], record["ran_epochs"], record["ran_date"]) == ("500", 2, "2026-12-04")
    assert record["config_differences_from_recipe"] == ["crop_padding", "dataset", "epochs", "flip", "model",
                                                        "rotation", "subset"]
    assert (record["runs_done"], record["runs_planned"], record["failures"]) == (2, 2, {})
    gpu = campaigns.code_path_record([], ran.iloc[0:0], settings, "gpu", 9, {"a": "b"})
    assert gpu["ran_summary"].startswith("At gpu scale") and gpu["ran_model"] == "none"
    assert gpu["data_source"] == "none (no run finished)"


PLAN = Tier(("ce", "ce+ogc"), {"symmetric:0.6": ("sym", "60 % symmetric noise"), "human:worse": ("human", "human")},
            (0, 1, 2), "for the test", extra_seeds={("human:worse", "ce"): (3, 4), ("human:worse", "ce+ogc"): (3,)})


def test_a_tier_counts_its_plan_and_names_its_noises() -> None:
    assert PLAN.planned() == 2 * 2 * 3 + 3 and PLAN.order == ["symmetric:0.6", "human:worse", "ce", "ce+ogc"]
    assert QUICK_TIER.planned() == 53 and FULL_TIER["memorise"].planned() == 24 and FULL_TIER["grid"].planned() == 2
    frame = PLAN.frame([fake_run("ce+ogc", 1, [0.3], "human:worse", realised=0.403), fake_run("ce", 0, [0.3])])
    assert list(zip(frame["noise"], frame["loss"])) == [("symmetric:0.6", "ce"), ("human:worse", "ce+ogc")]
    assert PLAN.noise_words(frame) == {"symmetric:0.6": "60 % symmetric noise (60.0% of the labels wrong)",
                                       "human:worse": "human (40.3% of the labels wrong)"}
    assert PLAN.frame([]).empty and PLAN.noise_words(PLAN.frame([]))["human:worse"] == "human"
    assert PLAN.status(frame, "x/grid") == "2 of the 15 planned runs are finished (seeds 0, 1)."
    assert PLAN.status(PLAN.frame([]), "x/grid") == "No run of this grid is committed yet under x/grid."


def test_extra_seeds_are_said_with_the_choice_they_were() -> None:
    assert PLAN.extra_seeds_text() == (
        "Seeds 3 and 4 of CE and CE+OGC ran only under human:worse, after 3 seeds had left that comparison open "
        "there: a choice made after seeing the data, which the intervals and p-values do not correct for.")
    assert FULL_TIER["memorise"].extra_seeds_text() == ""


def test_answer_values_quote_each_noise_and_the_claims_over_them() -> None:
    def answer(fit: float, fit_verdict: str, acc_verdict: str) -> dict:
        return {"baseline_fit": 0.954, "fit": fit, "acc_diff": 0.07, "acc_verdict": acc_verdict, "acc_wins": 3,
                "seeds": 3, "fit_verdict": fit_verdict}

    values = PLAN.answer_values({"symmetric:0.6": answer(0.459, "below", "above"),
                                 "human:worse": answer(0.786, "below", "not distinguishable from")})
    assert (values["answer_sym_baseline_fit"], values["answer_sym_fit"], values["answer_human_acc_points"]) == (
        "95.4%", "45.9%", "+7.0")
    assert values["answer_sym_acc_phrase"].startswith("scored higher than CE, by a 95% Student-t interval")
    assert values["claim_fit_verdict"] == "holds under 60 % symmetric noise and human"
    assert values["claim_acc_verdict"] == "holds under 60 % symmetric noise; not established under human"
    assert values["still_fits_most"] == 1
    assert PLAN.answer_values({}) == {"claim_fit_verdict": "not measured", "claim_acc_verdict": "not measured",
                                      "still_fits_most": 0}
