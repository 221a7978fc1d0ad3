"""The book's machinery: scale presets, metrics quoted in the text, notebook execution and the build.

Chapters are ``notebooks/NN_slug.ipynb`` without outputs.  ``execute`` runs one with papermill into
``build/notebooks`` (its metrics go to ``build/metrics``), and ``build`` turns the executed copies
into HTML with jupyter-book 1.x, warnings as errors, so a number quoted in the text always comes from
the run that drew the figures.

Command line::

    python -m ogc_lab.book execute --scale cpu [--only 02 03]
    python -m ogc_lab.book build
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .io import atomic_write_text

SCALES = ("smoke", "cpu", "gpu")
REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
BUILD_DIR = REPO_ROOT / "build"
KERNEL_NAME = "python3"
# Papermill tags the cell it adds; the executed copy hides it (it holds machine-specific paths).
INJECTED_TAG = "injected-parameters"
HIDDEN_TAG = "remove-cell"


class NotebookError(RuntimeError):
    """A chapter failed to execute; the message names the notebook and the failing cell's error."""


def check_scale(scale: str) -> str:
    """Return ``scale`` if it is one of ``SCALES``, else raise ValueError naming the allowed ones."""
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; allowed: {', '.join(SCALES)}")
    return scale


def pick(scale: str, *, smoke: dict, cpu: dict, gpu: dict, **overrides: Any) -> dict:
    """The settings of ``scale``, with every override that is not None replacing its entry.

    An override naming a setting that the scale does not have raises (it would be a silent typo).
    """
    chosen = dict({"smoke": smoke, "cpu": cpu, "gpu": gpu}[check_scale(scale)])
    unknown = sorted(set(overrides) - set(chosen))
    if unknown:
        raise ValueError(f"unknown override(s) {unknown}; settings of scale {scale!r}: {sorted(chosen)}")
    chosen.update({key: value for key, value in overrides.items() if value is not None})
    return chosen


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data (numpy and torch scalars and arrays become numbers and lists)."""
    if hasattr(value, "tolist"):
        value = value.tolist()
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    return value


def numbers_in(value: Any) -> list[float]:
    """Every number inside a plain JSON value (bools excluded)."""
    if isinstance(value, dict):
        return [n for item in value.values() for n in numbers_in(item)]
    if isinstance(value, list):
        return [n for item in value for n in numbers_in(item)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value)]
    return []


class _Text:
    """A glued value shown as exactly this text (a glued str would show its quotes)."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


class Metrics:
    """The numbers a chapter measured: written to metrics.json and glued for the text.

    In markdown, quote a recorded number with {glue:text}`name` (or `name:.3f`), a figure with the
    ``{glue:figure}`` directive and a caption.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.values: dict[str, Any] = {}

    def record(self, name: str, value: Any, fmt: str | None = None) -> Any:
        """Store ``value`` (finite numbers, strings, lists/dicts of them) and glue it as ``name``.

        ``fmt`` (a format spec such as ".3f") sets how the text shows it; metrics.json keeps the value.
        """
        plain = _plain(value)
        try:
            json.dumps(plain, allow_nan=False)
        except (TypeError, ValueError):
            bad = [n for n in numbers_in(plain) if not math.isfinite(n)]
            reason = f"non-finite numbers {bad}" if bad else f"a {type(value).__name__}"
            raise ValueError(
                f"metric {name!r} holds {reason}; allowed: finite numbers, strings, lists and dicts of them"
            ) from None
        self.values[name] = plain
        _glue(name, plain if fmt is None else _Text(format(plain, fmt)))
        return plain

    def figure(self, name: str, fig: Any) -> None:
        """Glue a matplotlib figure as ``name`` for a captioned {glue:figure}, and close it."""
        import matplotlib.pyplot as plt

        _glue(name, fig)
        plt.close(fig)

    def save(self) -> Path:
        """Write metrics.json atomically (a reader never sees half a file) and return its path."""
        atomic_write_text(self.path, json.dumps(self.values, indent=2, sort_keys=True, allow_nan=False) + "\n")
        return self.path


def _glue(name: str, value: Any) -> None:
    """Glue ``value`` under ``name`` without displaying it (myst-nb reads it at build time)."""
    from myst_nb import glue

    glue(name, value, display=False)


def executed_path(out_dir: Path, notebook: Path) -> Path:
    """Where ``execute`` writes the executed copy of ``notebook`` under ``out_dir``."""
    return Path(out_dir) / "notebooks" / Path(notebook).name


def metrics_path(out_dir: Path, notebook: Path) -> Path:
    """Where the executed ``notebook`` writes its metrics under ``out_dir``."""
    return Path(out_dir) / "metrics" / f"{Path(notebook).stem}.json"


def execute(
    notebook: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = BUILD_DIR,
    scale: str = "cpu",
    parameters: dict[str, Any] | None = None,
) -> Path:
    """Run ``notebook`` at ``scale`` with papermill (kernel python3); return the executed copy.

    The copy goes to ``out_dir/notebooks``, the metrics to ``out_dir/metrics``; the kernel's working
    folder is ``out_dir/notebooks``.  A failing cell raises NotebookError naming the notebook.
    """
    import papermill

    notebook, out_dir = Path(notebook), Path(out_dir).resolve()
    if not notebook.is_file():
        raise ValueError(f"notebook {str(notebook)!r} does not exist")
    output, metrics = executed_path(out_dir, notebook), metrics_path(out_dir, notebook)
    output.parent.mkdir(parents=True, exist_ok=True)
    metrics.parent.mkdir(parents=True, exist_ok=True)
    params = {"scale": check_scale(scale), "metrics_path": str(metrics), **(parameters or {})}
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=params,
            kernel_name=KERNEL_NAME,
            cwd=str(output.parent),
            progress_bar=False,
        )
    except papermill.PapermillExecutionError as err:
        raise NotebookError(
            f"{notebook.name} failed in cell {err.exec_count} (scale {scale}): {err.ename}: {err.evalue}"
        ) from err
    _hide_injected_cell(output)
    return output


def _hide_injected_cell(path: Path) -> None:
    """Tag papermill's injected-parameters cell so the book does not show it."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if INJECTED_TAG in tags and HIDDEN_TAG not in tags:
            tags.append(HIDDEN_TAG)
    atomic_write_text(path, nbformat.writes(nb))


def chapters(notebooks_dir: Path = NOTEBOOKS_DIR, only: Sequence[str] = ()) -> list[Path]:
    """The chapter notebooks in ``notebooks_dir``, sorted; ``only`` keeps those whose name starts so.

    A prefix in ``only`` that matches no notebook raises ValueError.
    """
    found = sorted(Path(notebooks_dir).glob("[0-9][0-9]_*.ipynb"))
    if not only:
        return found
    unmatched = [prefix for prefix in only if not any(nb.stem.startswith(prefix) for nb in found)]
    if unmatched:
        raise ValueError(f"--only {unmatched} match no notebook; have: {[nb.stem for nb in found]}")
    return [nb for nb in found if any(nb.stem.startswith(prefix) for prefix in only)]


def execute_all(notebooks: Sequence[Path], out_dir: Path, scale: str) -> dict[str, NotebookError]:
    """Execute every notebook (one failure does not stop the rest); return the failures by name."""
    failures: dict[str, NotebookError] = {}
    for notebook in notebooks:
        print(f"executing {notebook.name} at scale {scale}", flush=True)
        try:
            execute(notebook, out_dir, scale)
        except NotebookError as err:
            failures[notebook.stem] = err
            print(f"FAILED: {err}", file=sys.stderr, flush=True)
    return failures


def build(root: str | os.PathLike[str] = REPO_ROOT, toc: str | os.PathLike[str] | None = None) -> Path:
    """Build the book in ``root`` with jupyter-book (warnings are errors); return the HTML folder.

    Raises RuntimeError with the build log's tail when jupyter-book fails.
    """
    root = Path(root).resolve()
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(root)]
    command += ["--builder", "html", "--all", "-W", "-n", "--keep-going"]
    if toc is not None:
        command += ["--toc", str(Path(toc).resolve())]
    result = subprocess.run(command, cwd=root, capture_output=True, text=True)
    if result.returncode != 0:
        log = (result.stdout + result.stderr)[-6000:]
        raise RuntimeError(f"jupyter-book build of {root} failed (exit {result.returncode}):\n{log}")
    return root / "_build" / "html"


def main(argv: Sequence[str] | None = None) -> int:
    """The ``python -m ogc_lab.book`` command line; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m ogc_lab.book", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("execute", help="execute the chapters into build/")
    run.add_argument("--scale", choices=SCALES, default="cpu")
    run.add_argument("--only", nargs="+", default=(), metavar="NN", help="chapter name prefixes, e.g. 02 03")
    run.add_argument("--out", type=Path, default=BUILD_DIR, help="build folder (default: build/)")
    html = commands.add_parser("build", help="build the HTML book from the executed chapters")
    html.add_argument("--root", type=Path, default=REPO_ROOT)
    html.add_argument("--toc", type=Path, default=None, help="another _toc.yml (default: ROOT/_toc.yml)")
    args = parser.parse_args(argv)
    try:
        if args.command == "execute":
            failures = execute_all(chapters(only=args.only), args.out, args.scale)
            for err in failures.values():
                print(f"error: {err}", file=sys.stderr)
            return 1 if failures else 0
        print(f"book written to {build(args.root, args.toc)}")
        return 0
    except (ValueError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
