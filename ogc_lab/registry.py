"""Named choices: one lookup and one wording of the error for a name that is not among them.

Every registry of the package (losses, models, data sets, noises, schedules, ...) is a plain mapping
or sequence of names; ``choose`` and ``unknown`` give every bad choice the same message,
``unknown <what> '<name>'; allowed: a, b, c``, so users and tests meet one form.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TypeVar

T = TypeVar("T")


def unknown(what: str, name: object, allowed: Iterable[object], hint: str = "") -> ValueError:
    """The error for ``name`` not among ``allowed``, naming both (``hint`` appended in parentheses)."""
    listed = ", ".join(str(a) for a in allowed)
    return ValueError(f"unknown {what} {name!r}; allowed: {listed}" + (f" ({hint})" if hint else ""))


def choose(what: str, name: str, registry: Mapping[str, T], hint: str = "") -> T:
    """``registry[name]``, or ``unknown``'s ValueError listing the registry's names."""
    try:
        return registry[name]
    except (KeyError, TypeError):
        raise unknown(what, name, registry, hint) from None


def check_choice(what: str, name: object, allowed: Iterable[object], hint: str = "") -> None:
    """Raise ``unknown``'s ValueError unless ``name`` is one of ``allowed``."""
    allowed = list(allowed)
    if name not in allowed:
        raise unknown(what, name, allowed, hint)


def check_names(what: str, names: Iterable[str], allowed: Iterable[str]) -> None:
    """Raise ``unknown``'s ValueError for the first (sorted) of ``names`` not in ``allowed``, the rest in its hint."""
    allowed = list(allowed)
    bad = sorted(set(names) - set(allowed))
    if bad:
        raise unknown(what, bad[0], allowed, f"also unknown: {', '.join(bad[1:])}" if bad[1:] else "")
