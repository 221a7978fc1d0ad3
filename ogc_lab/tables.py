"""The text of tables, written one way: markdown tables (``markdown``), 'mean ± std' cells (``format_pm``) and
per-cent cells (``percent``).

``report`` (the command line's summary and the chapters' tables), ``evidence`` (the committed READMEs) and
``book`` (tables shown in the chapters) format their cells their own way and write every table through these.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence


def markdown(header: Sequence[object], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub/MyST markdown table of ``header`` and ``rows``, every cell as ``str`` gives it (no trailing newline)."""
    lines = ["| " + " | ".join(str(c) for c in header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def format_pm(mean: float, std: float, scale: float = 100.0, digits: int = 2) -> str:
    """'mean ± std' of values times ``scale`` (std left out when NaN, e.g. for a single seed)."""
    if math.isnan(std):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def percent(values: Iterable[float], digits: int = 1, missing: str = "–") -> list[str]:
    """Fractions as per-cent cells ('36.3%'), ``missing`` for NaN (a figure a run did not record)."""
    return [missing if math.isnan(v) else f"{v:.{digits}%}" for v in values]
