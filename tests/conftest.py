"""Shared pytest fixtures.  Each section belongs to one part of the project; keep them separate."""

from __future__ import annotations

# ---- book: the chapters executed once per session (used by test_notebooks and test_browser) ----
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from ogc_lab import book

# `make regress` sets this to "cpu"; the tests default to the seconds-long smoke scale.
BOOK_SCALE_ENV = "OGC_BOOK_SCALE"


@dataclass(frozen=True)
class ExecutedBook:
    """Every chapter executed at ``scale`` into ``out_dir`` (book.execute's layout), and the failures."""

    out_dir: Path
    scale: str
    failures: dict[str, book.NotebookError]

    def notebook(self, stem: str) -> Path:
        return book.executed_path(self.out_dir, Path(f"{stem}.ipynb"))

    def metrics(self, stem: str) -> Path:
        return book.metrics_path(self.out_dir, Path(f"{stem}.ipynb"))


def chapters_needed(items: list[pytest.Item]) -> list[Path]:
    """The chapters the selected tests need executed: those of the per-chapter tests (``-k 05`` runs one
    chapter), or every chapter when a selected test needs the whole book (the browser test)."""
    needed: set[str] = set()
    for item in items:
        if "executed_book" not in getattr(item, "fixturenames", ()):
            continue
        notebook = getattr(item, "callspec", None) and item.callspec.params.get("notebook")
        if notebook is None:
            return book.chapters()
        needed.add(Path(notebook).stem)
    return [nb for nb in book.chapters() if nb.stem in needed]


@pytest.fixture(scope="session")
def executed_book(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> ExecutedBook:
    """Run the chapters the selected tests need once (at $OGC_BOOK_SCALE, default smoke); failures are collected."""
    scale = book.check_scale(os.environ.get(BOOK_SCALE_ENV, "smoke"))
    out_dir = tmp_path_factory.mktemp("book")
    failures = book.execute_all(chapters_needed(request.session.items), out_dir, scale)
    EXECUTED.append(ExecutedBook(out_dir=out_dir, scale=scale, failures=failures))
    return EXECUTED[-1]


EXECUTED: list[ExecutedBook] = []  # the session's executed book, for the terminal summary


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """After a session that executed the chapters, the minutes each took (the README's timing table quotes
    `make regress` on CI, which executes them at cpu scale)."""
    for executed in EXECUTED:
        timings = json.loads((executed.out_dir / book.TIMINGS).read_text())
        total = sum(timings["minutes"].values())
        terminalreporter.write_line(f"chapters executed at {timings['scale']} scale in {total:.1f} min: " + ", ".join(
            f"{stem} {minutes:.1f}" for stem, minutes in timings["minutes"].items()))


# ---- end of book section ----


# ---- device paths: what would synchronise on CUDA, observed on the CPU ----


@pytest.fixture
def host_value_tensors(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, object]]:
    """Every tensor built on a named device from host values (``torch.tensor``/``as_tensor`` with
    ``device=``) while the test runs: on CUDA each is a host-to-device copy, which synchronises."""
    import torch

    built: list[tuple[str, object]] = []
    for factory in ("tensor", "as_tensor"):
        real = getattr(torch, factory)

        def spy(data, *args, _real=real, _factory=factory, **kwargs):
            if not isinstance(data, torch.Tensor) and kwargs.get("device") is not None:
                built.append((_factory, data))
            return _real(data, *args, **kwargs)

        monkeypatch.setattr(torch, factory, spy)
    return built
