"""One check for every file the package reads: a schema states the type of each entry down to the leaves.

A schema is a ``Leaf`` (a test and the words for what it allows; ``nullable(leaf)`` also allows null), a
dict ``{key: schema}`` (a dict holding at least those entries; ``Maybe(schema)`` for one that may be absent),
``ListOf(schema)`` (a list or tuple of such items) or ``Items(schemas)`` (a fixed sequence).  ``check`` raises one
ValueError naming the file, the entry's path (``history[0].test_acc``), what it holds and what is
allowed, so a damaged or hostile file is one line of error, never a traceback or a silent result.
``like(obj)`` is the schema of a live object (an optimizer's state dict), for state saved from one.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
from torch import Tensor


@dataclass(frozen=True)
class Leaf:
    """A value passing ``test``; ``allowed`` words it for the error ('a finite number')."""

    allowed: str
    test: Callable[[Any], bool]


@dataclass(frozen=True)
class Maybe:
    """A dict entry that may be absent (and is checked against ``schema`` when present)."""

    schema: Schema


@dataclass(frozen=True)
class ListOf:
    """A list or tuple of at least ``min_len`` items, each matching ``item``."""

    item: Schema
    min_len: int = 0


@dataclass(frozen=True)
class Items:
    """A list or tuple of exactly ``len(items)`` values, the i-th matching ``items[i]``."""

    items: tuple[Schema, ...]


Schema: TypeAlias = Leaf | Maybe | ListOf | Items | dict[str, "Schema"]


def _real(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def number(low: float = -math.inf, high: float = math.inf, finite: bool = True) -> Leaf:
    """A real number in [low, high] (not a bool, never NaN; infinite only where ``finite`` is False)."""
    words = "a finite number" if finite else "a number (inf allowed)"
    if low > -math.inf or high < math.inf:
        words += f" in [{low:g}, {high:g}]"
    return Leaf(words, lambda v: _real(v) and (math.isfinite(v) or not finite and not math.isnan(v))
                and low <= v <= high)


NUMBER = number()
ACCURACY = number(0.0, 1.0)
INTEGER = Leaf("an integer", lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool))
COUNT = Leaf("an integer >= 0", lambda v: isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 0)
TEXT = Leaf("a string", lambda v: isinstance(v, str))
FLAG = Leaf("true or false", lambda v: isinstance(v, bool))
ANY = Leaf("anything", lambda v: True)
TENSOR = Leaf("a tensor", lambda v: isinstance(v, Tensor))
DICT = Leaf("a dict", lambda v: isinstance(v, dict))


def nullable(leaf: Leaf) -> Leaf:
    """``leaf`` or null: for an entry a writer records as unknown (a run's commit where no git repository holds it)."""
    return Leaf(f"{leaf.allowed} or null", lambda v: v is None or leaf.test(v))


def tensor_like(example: Tensor) -> Leaf:
    """A tensor of ``example``'s dtype and shape."""
    return Leaf(f"a {example.dtype} tensor of shape {tuple(example.shape)}",
                lambda v: isinstance(v, Tensor) and v.dtype == example.dtype and v.shape == example.shape)


def array(dtype: type, row: int) -> Leaf:
    """A 2-D NumPy array of ``dtype`` with ``row`` values a row (N, row), as image batches are stored."""
    return Leaf(f"a {np.dtype(dtype).name} array of shape (N, {row})",
                lambda v: isinstance(v, np.ndarray) and v.dtype == dtype and v.ndim == 2 and v.shape[1] == row)


def like(example: Any) -> Schema:
    """The schema of a live object: the same entries, lengths, tensor shapes and kinds of leaf.

    None in ``example`` allows anything (an option a device may set, such as ``fused``)."""
    if isinstance(example, dict):
        return {key: like(value) for key, value in example.items()}
    if isinstance(example, (list, tuple)):
        return Items(tuple(like(value) for value in example))
    if isinstance(example, Tensor):
        return tensor_like(example)
    if isinstance(example, bool):
        return FLAG
    if _real(example):
        return NUMBER
    if isinstance(example, str):
        return TEXT
    return ANY


def describe(value: Any) -> str:
    """A value as an error message shows it: short, and by kind for containers."""
    if value is None:
        return "null"
    if isinstance(value, (str, bool)) or _real(value):
        text = repr(value)
        return text if len(text) <= 60 else text[:57] + "..."
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    if isinstance(value, np.ndarray):
        return f"a {value.dtype} array of shape {value.shape}"
    return f"a {type(value).__name__}"


def _at(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


def check(value: Any, schema: Schema, what: str, error: type[ValueError] = ValueError, path: str = "") -> None:
    """Raise ``error`` naming ``what`` and the first entry of ``value`` that does not match ``schema``."""
    where = f"entry {path!r}" if path else "it"
    if isinstance(schema, Leaf):
        if not schema.test(value):
            raise error(f"{what}: {where} is {describe(value)}, expected {schema.allowed}")
    elif isinstance(schema, dict):
        if not isinstance(value, dict):
            entries = ", ".join(map(str, schema))
            raise error(f"{what}: {where} holds {describe(value)}, expected a dict with entries {entries}")
        for key, inner in schema.items():
            optional = isinstance(inner, Maybe)
            if key not in value:
                if optional:
                    continue
                raise error(f"{what} has no {_at(path, key)!r} entry; it has {', '.join(map(repr, value)) or 'none'}")
            check(value[key], inner.schema if optional else inner, what, error, _at(path, key))
    elif isinstance(schema, (ListOf, Items)):
        size = len(schema.items) if isinstance(schema, Items) else None
        least = schema.min_len if isinstance(schema, ListOf) else size
        if not isinstance(value, (list, tuple)) or len(value) < least or size is not None and len(value) != size:
            count = f"{size}" if size is not None else f"at least {least}" if least else "any number of"
            found = f"{len(value)} items" if isinstance(value, (list, tuple)) else describe(value)
            raise error(f"{what}: {where} holds {found}, expected a list of {count} items")
        for index, item in enumerate(value):
            inner = schema.items[index] if isinstance(schema, Items) else schema.item
            check(item, inner, what, error, _at(path, index))
    else:
        raise TypeError(f"not a schema: {schema!r}")
