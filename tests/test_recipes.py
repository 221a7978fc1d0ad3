"""Config and the named recipes: the published values, overrides, coercion and validation."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ogc_lab.ogc import OGC_DEFAULTS
from ogc_lab.recipes import FIELDS, OGC_LOSS_FIELDS, RECIPES, Config, as_published, get_recipe, scaled_milestones


def test_official_cifar10_is_the_papers_recipe() -> None:
    c = get_recipe("official-cifar10")
    assert (c.dataset, c.model, c.epochs, c.batch_size) == ("cifar10", "resnet18", 150, 128)
    assert (c.optimizer, c.lr, c.momentum, c.weight_decay) == ("sgd", 0.1, 0.9, 5e-4)
    assert (c.schedule, c.milestones, c.gamma) == ("multistep", (50, 100), 0.1)
    assert (c.crop_padding, c.flip, c.rotation, c.grad_clip) == (4, True, 15.0, 5.0)
    assert c.ogc_settings == OGC_DEFAULTS


def test_official_cifar100_differs_only_in_data_and_model() -> None:
    ten, hundred = get_recipe("official-cifar10").to_dict(), get_recipe("official-cifar100").to_dict()
    differ = {k for k in FIELDS if ten[k] != hundred[k]}
    assert differ == {"dataset", "model"}
    assert (hundred["dataset"], hundred["model"]) == ("cifar100", "resnet34")


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_builds_and_round_trips_through_json(name: str) -> None:
    config = get_recipe(name)
    again = Config.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


def test_overrides_are_coerced_from_strings() -> None:
    c = get_recipe(
        "toy", epochs="7", lr="0.05", flip="true", milestones="2,4", subset="100", grad_clip="none",
        loss_params='{"gamma": 0.5}', loss="fl",
    )
    assert (c.epochs, c.lr, c.flip, c.milestones, c.subset, c.grad_clip) == (7, 0.05, True, (2, 4), 100, None)
    assert c.loss_params == {"gamma": 0.5}
    assert isinstance(c.epochs, int) and isinstance(c.lr, float)


def test_config_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        get_recipe("toy").epochs = 3  # type: ignore[misc]


def test_unknown_recipe_names_it_and_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match="unknown recipe 'cifar'; allowed: official-cifar10.*digits-cpu"):
        get_recipe("cifar")


def test_unknown_field_names_it_and_lists_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown config field 'epoch'; allowed: dataset, .*epochs"):
        get_recipe("toy", epoch=3)
    with pytest.raises(ValueError, match="bogus"):
        Config.from_dict({**get_recipe("toy").to_dict(), "bogus": 1})


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"epochs": "ten"}, "epochs='ten' is not a valid int"),
        ({"epochs": 2.5}, "epochs=2.5 is not a valid int"),
        ({"flip": "maybe"}, "flip='maybe' is not a valid bool"),
        ({"lr": True}, "lr=True is not a valid float"),
        ({"subset": "x"}, "subset='x' is not a valid int or None"),
        ({"test_subset": 0}, "test_subset=0 must be > 0 or None"),
        ({"loss_params": "{bad json"}, "loss_params="),
        ({"epochs": 0}, "epochs=0 must be > 0"),
        ({"lr": -0.1}, "lr=-0.1 must be > 0"),
        ({"weight_decay": -1}, "weight_decay=-1.0 must be >= 0"),
        ({"l1_penalty": -5e-5}, "l1_penalty=-5e-05 must be >= 0"),
        ({"gamma": 2.0}, r"gamma=2.0 must be in \(0, 1\]"),
        ({"milestones": "5,3"}, "milestones=.* must be increasing"),
        ({"optimizer": "rmsprop"}, "unknown optimizer 'rmsprop'; allowed: sgd, adam"),
        ({"schedule": "step"}, "unknown schedule 'step'; allowed: multistep, cosine, constant, linear"),
        ({"schedule": "linear", "epochs": 5, "warmup_epochs": 5}, "warmup_epochs=5 must be < epochs=5"),
        ({"warmup_epochs": -1}, "warmup_epochs=-1 must be >= 0"),
        ({"val_fraction": 1.0}, r"val_fraction=1.0 must be in \[0, 1\)"),
        ({"pipeline": "ray"}, "unknown pipeline 'ray'; allowed: device, dataloader"),
        ({"device": "tpu"}, "unknown device 'tpu'"),
        ({"loss": "cee"}, "unknown loss 'cee'; allowed: ce, "),
        ({"model": "vgg"}, "unknown model 'vgg'; allowed: "),
        ({"dataset": "mnist"}, "unknown dataset 'mnist'; allowed: .*imagefolder:PATH"),
        ({"dataset": "imagefolder"}, "unknown dataset 'imagefolder'"),
        ({"noise": "sym:0.4"}, "unknown noise kind 'sym'"),
        ({"noise": "symmetric:1.5"}, "noise rate must be in"),
        ({"noise": "human"}, "must name the label set"),
    ],
)
def test_bad_values_raise_naming_the_value(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        get_recipe("toy", **overrides)


def test_human_noise_spec_is_accepted_by_the_config() -> None:
    assert get_recipe("toy", noise="human:worse").noise == "human:worse"


def test_loss_kwargs_give_ogc_settings_to_ogc_losses_only() -> None:
    c = get_recipe("digits-cpu", loss="ce+ogc", seed=3)
    assert c.is_ogc
    assert c.loss_kwargs() == {"epsilon": OGC_DEFAULTS.epsilon, "interval": c.ogc_interval,
                               "queue_size": c.ogc_queue_size, "seed": 3}
    assert get_recipe("digits-cpu", loss="ce").loss_kwargs() == {}
    tuned = get_recipe("digits-cpu", loss="fl+ogc", ogc_queue_size=64, loss_params={"gamma": 0.5})
    assert tuned.loss_kwargs()["queue_size"] == 64 and tuned.loss_kwargs()["gamma"] == 0.5


@pytest.mark.parametrize("key", sorted(OGC_LOSS_FIELDS))
def test_loss_params_may_not_set_what_a_config_field_sets(key: str) -> None:
    field = OGC_LOSS_FIELDS[key]
    with pytest.raises(ValueError, match=rf"^config field loss_params sets '{key}', which config field {field} sets; "
                                         rf"allowed: set {field} instead$"):
        Config.from_dict({**get_recipe("toy", loss="ce+ogc").to_dict(), "loss_params": {key: 1}})


@pytest.mark.parametrize(
    "dataset, noise, pi1",
    [  # the JS authors' configs; rates between published ones take the nearest (a tie the higher)
        ("cifar10", "none", 0.1),
        ("cifar10", "symmetric:0.2", 0.7),
        ("cifar10", "symmetric:0.4", 0.7),
        ("cifar10", "symmetric:0.5", 0.9),
        ("cifar10", "symmetric:0.6", 0.9),
        ("cifar10", "symmetric-uniform:0.8", 0.9),
        ("cifar10", "asym-cifar10:0.4", 0.3),
        ("digits", "asym-mnist:0.2", 0.3),
        ("cifar100", "symmetric:0.4", 0.3),
        ("cifar100", "symmetric:0.6", 0.5),
        ("cifar100n", "asym-cifar100:0.4", 0.5),
    ],
)
def test_js_takes_its_published_pi1_for_the_data_and_noise(dataset: str, noise: str, pi1: float) -> None:
    config = get_recipe("official-cifar10", dataset=dataset, loss="js", noise=noise)
    assert config.loss_kwargs() == {"pi1": pi1}


def test_js_pi1_set_by_the_user_wins_and_unpublished_noise_keeps_the_loss_default() -> None:
    given = get_recipe("official-cifar10", loss="js", noise="symmetric:0.4", loss_params={"pi1": 0.5})
    assert given.loss_kwargs() == {"pi1": 0.5}
    for noise in ("instance:0.4", "human:worse"):
        assert get_recipe("official-cifar10", loss="js", noise=noise).loss_kwargs() == {}
    assert get_recipe("official-cifar10", loss="gce", noise="symmetric:0.4").loss_kwargs() == {}


def test_as_published_gives_anl_ce_its_weight_penalty_and_no_weight_decay() -> None:
    ten = as_published(get_recipe("official-cifar10", loss="anl-ce"))
    assert (ten.l1_penalty, ten.weight_decay, ten.loss_params) == (5e-5, 0.0, {})
    hundred = as_published(get_recipe("official-cifar100", loss="anl-ce", loss_params={"beta": 2.0}))
    assert (hundred.l1_penalty, hundred.weight_decay) == (5e-7, 0.0)
    assert hundred.loss_params == {"alpha": 10.0, "beta": 2.0}  # the user's beta wins
    ce = get_recipe("official-cifar10", loss="ce")
    assert as_published(ce) == ce and ce.l1_penalty == 0.0


def test_get_recipe_applies_the_published_settings_except_where_the_user_sets_them() -> None:
    ten = get_recipe("official-cifar10", loss="anl-ce")
    assert (ten.l1_penalty, ten.weight_decay) == (5e-5, 0.0) and ten == as_published(ten)
    mine = get_recipe("official-cifar10", loss="anl-ce", weight_decay=1e-4)  # the user's value stays
    assert (mine.l1_penalty, mine.weight_decay) == (5e-5, 1e-4)
    assert get_recipe("official-cifar10", loss="anl-ce", l1_penalty=0.0).l1_penalty == 0
    plain = get_recipe("official-cifar10").replace(loss="anl-ce")
    assert as_published(plain, keep={"weight_decay"}).weight_decay == 5e-4
    assert get_recipe("official-cifar10").weight_decay == 5e-4  # CE: the recipe's own


@settings(max_examples=30, deadline=None)
@given(
    epochs=st.integers(1, 500),
    lr=st.floats(1e-5, 1.0),
    seed=st.integers(0, 2**31 - 1),
    milestones=st.lists(st.integers(1, 400), max_size=4, unique=True).map(sorted),
    flip=st.booleans(),
    subset=st.none() | st.integers(1, 10_000),
)
def test_any_valid_config_survives_a_json_round_trip(epochs, lr, seed, milestones, flip, subset) -> None:
    config = get_recipe("toy", epochs=epochs, lr=lr, seed=seed, milestones=milestones, flip=flip, subset=subset)
    assert Config.from_dict(json.loads(json.dumps(config.to_dict()))) == config
    assert config.replace(**{k: str(v) for k, v in {"epochs": epochs, "seed": seed}.items()}) == config


@pytest.mark.parametrize("epochs, warmup", [(1, 0), (5, 0), (12, 2), (24, 5)])
def test_linear_schedule_rises_to_one_then_falls_in_equal_steps(epochs: int, warmup: int) -> None:
    from ogc_lab.optim import linear_factor

    factors = [linear_factor(e, epochs, warmup) for e in range(epochs)]
    assert factors[warmup] == 1.0 and max(factors) == 1.0
    assert factors[-1] == pytest.approx(1 / (epochs - warmup))
    rises, falls = np.diff(factors[: warmup + 1]), np.diff(factors[warmup:])
    assert np.allclose(rises, 1 / (warmup + 1)) and np.allclose(falls, -1 / (epochs - warmup))


def test_the_noise_spec_is_recorded_in_its_canonical_form() -> None:
    """A full-width digit reads as its ASCII digit, and the config (so result.json) records the ASCII spec."""
    config = get_recipe("toy", noise=" symmetric:0.\uff14 ")
    assert config.noise == "symmetric:0.4"
    assert config.to_dict()["noise"] == "symmetric:0.4"


def test_the_registries_do_not_import_recipes() -> None:
    """Config checks names through each registry's own check; no registry imports recipes back (no circle)."""
    import subprocess
    import sys

    code = ("import sys; import ogc_lab.optim, ogc_lab.data, ogc_lab.models, ogc_lab.losses, ogc_lab.hardware, "
            "ogc_lab.noise; assert 'ogc_lab.recipes' not in sys.modules, 'a registry imports recipes'")
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(("epochs", "steps"), [
    (150, (50, 100)), (30, (10, 20)), (4, (1, 3)), (2, (1,)),  # at 2 epochs both steps round to epoch 1
    (1, (1,)),  # no step fits before the end: the last epoch
])
def test_scaled_milestones_keep_the_steps_at_their_share_of_the_run(epochs: int, steps: tuple[int, ...]) -> None:
    assert scaled_milestones(get_recipe("official-cifar10"), epochs) == steps


def test_scaled_milestones_of_a_schedule_without_steps_and_of_no_epochs() -> None:
    assert scaled_milestones(get_recipe("official-cifar10", milestones=()), 10) == ()
    with pytest.raises(ValueError, match="epochs=0 must be at least 1"):
        scaled_milestones(get_recipe("official-cifar10"), 0)
