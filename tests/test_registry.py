"""ogc_lab.registry: one lookup, one wording for a bad choice."""

from __future__ import annotations

import pytest

from ogc_lab.registry import check_choice, check_names, choose, unknown


def test_unknown_names_the_value_and_every_allowed_one() -> None:
    err = unknown("loss", "ce2", ["ce", "gce"], hint="see ogc-lab losses")
    assert str(err) == "unknown loss 'ce2'; allowed: ce, gce (see ogc-lab losses)"


def test_choose_returns_the_entry_or_raises_listing_the_registry() -> None:
    registry = {"sgd": 1, "adam": 2}
    assert choose("optimizer", "adam", registry) == 2
    with pytest.raises(ValueError, match=r"^unknown optimizer 'rmsprop'; allowed: sgd, adam$"):
        choose("optimizer", "rmsprop", registry)
    with pytest.raises(ValueError, match=r"unknown optimizer \['sgd'\]"):  # unhashable: the same error
        choose("optimizer", ["sgd"], registry)


def test_check_choice_accepts_members_only() -> None:
    check_choice("reduction", "mean", ("mean", "sum", "none"))
    with pytest.raises(ValueError, match=r"^unknown reduction 'avg'; allowed: mean, sum, none$"):
        check_choice("reduction", "avg", ("mean", "sum", "none"))


def test_check_names_names_the_first_unknown_one_and_the_rest() -> None:
    check_names("config field", ["seed", "lr"], ("seed", "lr", "epochs"))
    with pytest.raises(ValueError, match=r"^unknown config field 'epoch'; allowed: seed, lr$"):
        check_names("config field", ["epoch", "lr"], ("seed", "lr"))
    with pytest.raises(ValueError, match=r"^unknown config field 'a'; allowed: seed \(also unknown: b\)$"):
        check_names("config field", ["b", "a"], ("seed",))
