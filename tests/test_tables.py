"""ogc_lab.tables: the text of table cells."""

from __future__ import annotations

import math

from ogc_lab.tables import format_pm, markdown, percent


def test_percent_writes_fractions_to_the_asked_digits_and_marks_what_is_missing() -> None:
    assert percent([0.3631, 1.0, 0.0]) == ["36.3%", "100.0%", "0.0%"]
    assert percent([0.3631], digits=0) == ["36%"]
    assert percent([math.nan, 0.5], missing="n/a") == ["n/a", "50.0%"] and percent([math.nan]) == ["–"]


def test_markdown_and_format_pm_write_one_way() -> None:
    assert markdown(["a", "b"], [[1, "x"]]) == "| a | b |\n|---|---|\n| 1 | x |"
    assert format_pm(0.5, 0.01, digits=1) == "50.0 ± 1.0" and format_pm(0.5, math.nan, digits=1) == "50.0"
