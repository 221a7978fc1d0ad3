"""The book's machinery: scale presets, metrics quoted in the text, notebook execution and the build.

Chapters are ``notebooks/NN_slug.ipynb`` without outputs.  ``execute`` runs one with papermill into
``build/chapters/NN-slug.ipynb`` (the page's URL; its metrics go to ``build/metrics``, and the kernel
works in ``build/notebooks``, where the chapters keep their runs), and ``build`` turns the executed
copies into HTML with jupyter-book 1.x, warnings as errors, so a number quoted in the text always comes
from the run that drew the figures.

The chapters' shared helpers live here too: ``text`` (how a number reads in the prose), ``show_table``
(a table without an index or NaN cells), ``save_figure`` and ``rerun_note``.

Command line::

    python -m ogc_lab.book execute --scale cpu [--only 02 03]
    python -m ogc_lab.book build
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .files import atomic_write_text
from .tables import markdown

SCALES = ("smoke", "cpu", "gpu")
REPO_ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
BUILD_DIR = REPO_ROOT / "build"
# Under the build folder: the executed copies (the pages), the metrics, and the kernel's working folder
# (named before the pages moved out of it; chapters keep their run folders there, so it stays).
CHAPTERS_SUBDIR, METRICS_SUBDIR, KERNEL_SUBDIR = "chapters", "metrics", "notebooks"
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


def finite_records(frame: Any) -> list[dict[str, Any]]:
    """A frame's rows as plain dicts for ``Metrics.record``, every non-finite number (inf: no threshold, NaN: not
    measured) as None, which JSON can hold."""
    return [{str(key): None if isinstance(item, float) and not math.isfinite(item) else item
             for key, item in row.items()} for row in _plain(frame.to_dict("records"))]


def numbers_in(value: Any) -> list[float]:
    """Every number inside a plain JSON value (bools excluded)."""
    if isinstance(value, dict):
        return [n for item in value.values() for n in numbers_in(item)]
    if isinstance(value, list):
        return [n for item in value for n in numbers_in(item)]
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [float(value)]
    return []


def text(value: Any, fmt: str | None = None) -> str:
    """How the book's prose shows ``value``: the one place numbers in the text are formatted.

    ``fmt`` is a format spec (".3g", ".1%", "," ...).  Without one an integer of five digits or more gets
    thousands separators ("37,880") and other values their ``str``.  None and non-finite floats read as
    words ("none", "∞"), never as "nan".
    """
    if value is None:
        return "none"
    if isinstance(value, float) and not math.isfinite(value):
        return "∞" if value > 0 else ("−∞" if value < 0 else "not a number")
    if fmt is not None:
        return format(value, fmt)
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 10_000:
        return f"{value:,}"
    return str(value)


# What a package function hands a chapter to quote: a value and its format (None: ``text``'s default), by glue name.
Quote = tuple[Any, str | None]
Quotes = dict[str, Quote]


def threshold_quote(tau: float | None, unclipped: str = "∞ (no clipping)") -> Quote:
    """A clipping threshold as the prose quotes it: the number to three figures, or ``unclipped`` for none
    (None or inf, which metrics.json cannot hold)."""
    return (unclipped, None) if tau is None or not math.isfinite(tau) else (tau, ".3g")


class _Text:
    """A glued value shown as exactly this text.

    myst-nb's {glue:text} passes the glued text/plain through ``ast.literal_eval`` first, which turns
    "37,880" into the tuple (37, 880); the text/plain is therefore the quoted string, which evaluates
    back to exactly this text.
    """

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return repr(self.text)


class Metrics:
    """The numbers a chapter measured: written to metrics.json and glued for the text.

    In markdown, quote a recorded number with {glue:text}`name` (or `name:.3f`), a block of text
    (``markdown``) with the ``{glue:md}`` directive, a figure with the ``{glue:figure}`` directive and a
    caption.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.values: dict[str, Any] = {}
        self.started = time.monotonic()

    def elapsed(self) -> float:
        """Seconds since this chapter's Metrics was made (about the chapter's run time so far)."""
        return time.monotonic() - self.started

    def record(self, name: str, value: Any, fmt: str | None = None) -> Any:
        """Store ``value`` (finite numbers, strings, lists/dicts of them) and glue it as ``name``.

        ``fmt`` (a format spec such as ".3f") sets how the text shows it (``text``); metrics.json keeps
        the value.  Numbers and strings are glued as plain text; lists and dicts as they are.
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
        _glue(name, plain if isinstance(plain, (list, dict)) else _Text(text(plain, fmt)))
        return plain

    def record_all(self, quotes: Mapping[str, Quote]) -> None:
        """``record`` each name's (value, format): the values a package function words for the text at once."""
        for name, (value, fmt) in quotes.items():
            self.record(name, value, fmt)

    def markdown(self, name: str, text: str) -> str:
        """Store ``text`` and glue it as markdown, for what {glue:text} would run into one line (a list,
        several paragraphs): quote it with a ``{glue:md} name`` directive and ``:format: myst``."""
        from IPython.display import Markdown

        self.values[name] = str(text)
        _glue(name, Markdown(self.values[name]))
        return self.values[name]

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


# ---- helpers the chapters share (one definition here, never a copy per notebook) ----


def _cell(value: Any, floatfmt: str, missing: str) -> str:
    """One table cell as text: floats by ``floatfmt``, None and NaN as ``missing``, '|' escaped."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return missing
    if isinstance(value, float):
        return text(value, floatfmt)
    return str(value).replace("|", "\\|")


def table_markdown(frame: Any, floatfmt: str = ".3g", missing: str = "–") -> str:
    """A pandas DataFrame as a MyST markdown table: its columns only (no index), no 'nan' cells."""
    head = [_cell(column, floatfmt, missing) for column in frame.columns]
    rows = [[_cell(value, floatfmt, missing) for value in row] for row in frame.itertuples(index=False)]
    return markdown(head, rows)


def show_table(frame: Any, caption: str | None = None, name: str | None = None, floatfmt: str = ".3g",
               missing: str = "–") -> None:
    """Display ``frame`` as a table in the book: no index, floats by ``floatfmt``, missing cells as ``missing``.

    With a ``caption`` it is a numbered MyST ``{table}`` (referable as ``name``).  The output is markdown,
    which the book renders as MyST (``nb_render_markdown_format: myst`` in _config.yml).  Returns None, so a
    call as a cell's last line prints nothing else.
    """
    from IPython.display import Markdown, display

    body = table_markdown(frame, floatfmt, missing)
    if caption is not None:
        options = f":name: {name}\n" if name else ""
        body = f"```{{table}} {caption}\n{options}\n{body}\n```"
    display(Markdown(body))


def save_figure(fig: Any, name: str, folder: str | os.PathLike[str] | None) -> Path | None:
    """Save ``fig`` as ``folder/name.png`` when a chapter's ``figure_dir`` parameter is set (else nothing)."""
    if folder is None:
        return None
    path = Path(folder) / f"{name}.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=150, bbox_inches="tight")
    return path


SCALE_MEANING = {
    "smoke": "seconds to a minute: every code path, figure and quoted number, on tiny settings (the tests)",
    "cpu": "the book as published, sized for a two-core CPU",
    "gpu": "the chapter's full size for a machine with a GPU: paper scale where the chapter reproduces a "
           "paper experiment, otherwise more seeds, samples or steps on the same task",
}


def _duration(seconds: float) -> str:
    """A duration as a reader says it: '42 s', '3 min 5 s', '1 h 12 min'."""
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def rerun_markdown(chapter: str, scale: str, seconds: float | None = None) -> str:
    """The 'rerun this chapter' note (MyST) for the chapter whose file name starts with ``chapter``."""
    lines = ["```{admonition} Rerun this chapter", ":class: tip", ""]
    lines += [f"* `{name}` ({SCALE_MEANING[name]}): "
              f"`python -m ogc_lab.book execute --scale {name} --only {chapter}`" for name in SCALES]
    lines += ["", "then `python -m ogc_lab.book build` for the HTML."]
    if seconds is not None:
        lines += [f"This page was executed at scale `{check_scale(scale)}` in {_duration(seconds)}"
                  " (finished runs that were already on disk are read back, not retrained)."]
    return "\n".join([*lines, "```"])


def rerun_note(chapter: str, scale: str, seconds: float | None = None) -> None:
    """Display ``rerun_markdown`` (a chapter's last cell, tagged remove-input)."""
    from IPython.display import Markdown, display

    display(Markdown(rerun_markdown(chapter, scale, seconds)))


# ---- where things go ----


def page_name(notebook: str | os.PathLike[str]) -> str:
    """The page name of a chapter: ``notebooks/01_fixed_threshold.ipynb`` -> ``01-fixed-threshold``."""
    return Path(notebook).stem.replace("_", "-")


def executed_path(out_dir: Path, notebook: Path) -> Path:
    """Where ``execute`` writes the executed copy of ``notebook`` under ``out_dir`` (the book's page)."""
    return Path(out_dir) / CHAPTERS_SUBDIR / f"{page_name(notebook)}.ipynb"


def metrics_path(out_dir: Path, notebook: Path) -> Path:
    """Where the executed ``notebook`` writes its metrics under ``out_dir``."""
    return Path(out_dir) / METRICS_SUBDIR / f"{Path(notebook).stem}.json"


def kernel_dir(out_dir: Path) -> Path:
    """The kernel's working folder under ``out_dir`` (relative run folders of the chapters live there)."""
    return Path(out_dir) / KERNEL_SUBDIR


def execute(
    notebook: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = BUILD_DIR,
    scale: str = "cpu",
    parameters: dict[str, Any] | None = None,
) -> Path:
    """Run ``notebook`` at ``scale`` with papermill (kernel python3); return the executed copy.

    The copy goes to ``out_dir/chapters/NN-slug.ipynb``, the metrics to ``out_dir/metrics``; the kernel's
    working folder is ``out_dir/notebooks``.  A failing cell raises NotebookError naming the notebook.
    """
    import papermill

    notebook, out_dir = Path(notebook), Path(out_dir).resolve()
    if not notebook.is_file():
        raise ValueError(f"notebook {str(notebook)!r} does not exist")
    output, metrics, cwd = executed_path(out_dir, notebook), metrics_path(out_dir, notebook), kernel_dir(out_dir)
    for folder in (output.parent, metrics.parent, cwd):
        folder.mkdir(parents=True, exist_ok=True)
    params = {"scale": check_scale(scale), "metrics_path": str(metrics), **(parameters or {})}
    sockets = Path(tempfile.mkdtemp(prefix="ogc-kernel-"))
    try:
        papermill.execute_notebook(
            str(notebook),
            str(output),
            parameters=params,
            kernel_name=KERNEL_NAME,
            cwd=str(cwd),
            progress_bar=False,
            kernel_manager_class=_ipc_kernel_manager(sockets),
        )
    except papermill.PapermillExecutionError as err:
        raise NotebookError(
            f"{notebook.name} failed in cell {err.exec_count} (scale {scale}): {err.ename}: {err.evalue}"
        ) from err
    finally:
        shutil.rmtree(sockets, ignore_errors=True)
    _portable_copy(output, notebook, params)
    return output


def portable_parameters(parameters: dict[str, Any]) -> dict[str, Any]:
    """``parameters`` without absolute paths: what the executed copy, which a reader downloads from the
    book, may show (a parameter left out takes the notebook's own default when the reader runs it)."""
    return {name: value for name, value in parameters.items()
            if not (isinstance(value, (str, os.PathLike)) and Path(value).is_absolute())}


ABSOLUTE_PATH = re.compile(r"(?<![\w.~:/])(?:~|[A-Za-z]:)?[/\\](?:[^\s/\\;,()'\"]+[/\\])*([^\s/\\;,()'\"]+)")


def without_paths(text: str) -> str:
    """``text`` with every absolute path cut to its last part (``/home/a/data/x.npz sha256 ..`` -> ``x.npz
    sha256 ..``): what a published page may quote of a run's records, which name the machine's folders.  A URL is
    kept whole: it names no machine."""
    return ABSOLUTE_PATH.sub(lambda match: match.group(1), text)


def _portable_copy(path: Path, notebook: Path, parameters: dict[str, Any]) -> None:
    """Make the executed copy fit to publish: papermill's injected-parameters cell hidden in the book and
    holding no path of this machine, and papermill's metadata naming the notebook by its place in the
    repository."""
    import nbformat

    kept = portable_parameters(parameters)
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        tags = cell.metadata.setdefault("tags", [])
        if INJECTED_TAG in tags:
            cell.source = "\n".join(["# Parameters", *(f"{name} = {value!r}" for name, value in kept.items())])
            if HIDDEN_TAG not in tags:
                tags.append(HIDDEN_TAG)
    run = nb.metadata.get("papermill", {})
    run.update(parameters=kept, input_path=f"{NOTEBOOKS_DIR.name}/{notebook.name}", output_path=path.name)
    atomic_write_text(path, nbformat.writes(nb))


def _ipc_kernel_manager(folder: Path) -> type:
    """A kernel manager whose kernel talks over IPC sockets in ``folder`` instead of TCP on the loopback.

    Nothing leaves the machine either way; over TCP ipykernel warns on every start that the channel is
    unencrypted ("Kernel is running over TCP without encryption"), over IPC it has no reason to.  The
    socket path is absolute (kernel and client work in different folders) and short (a socket's path
    has at most 107 bytes).
    """
    from jupyter_client.manager import AsyncKernelManager

    class IpcKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = str(folder / "kernel")

    return IpcKernelManager


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


TIMINGS = "timings.json"  # execute_all's minutes per chapter, in its out_dir: what the README's table quotes


def execute_all(notebooks: Sequence[Path], out_dir: Path, scale: str) -> dict[str, NotebookError]:
    """Execute every notebook (one failure does not stop the rest), print and save (``TIMINGS``) the minutes
    each took; return the failures by name."""
    failures: dict[str, NotebookError] = {}
    minutes: dict[str, float] = {}
    for notebook in notebooks:
        print(f"executing {notebook.name} at scale {scale}", flush=True)
        started = time.monotonic()
        try:
            execute(notebook, out_dir, scale)
        except NotebookError as err:
            failures[notebook.stem] = err
            print(f"FAILED: {err}", file=sys.stderr, flush=True)
        minutes[notebook.stem] = (time.monotonic() - started) / 60
        print(f"{notebook.name}: {minutes[notebook.stem]:.1f} min", flush=True)
    atomic_write_text(Path(out_dir) / TIMINGS, json.dumps({"scale": scale, "minutes": minutes}, indent=2) + "\n")
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
