"""Atomic writes: a reader sees the old file or the new one, and a failed write loses nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from ogc_lab import io


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "metrics.json"
    path.write_text("old")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(io.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        io.atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_json_writes_strict_json_with_non_finite_numbers_as_null(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "result.json"
    io.atomic_write_json(path, {"tau": float("inf"), "acc": 0.5, "nan": float("nan")})
    assert json.loads(path.read_text()) == {"tau": None, "acc": 0.5, "nan": None}


def test_read_json_names_a_malformed_file(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="result.json"):
        io.read_json(path)
