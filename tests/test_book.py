"""Unit tests of ogc_lab.book: scale presets, metrics.json, atomic writes, notebook execution, build."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import nbformat
import numpy as np
import pytest
import torch
from nbformat.v4 import new_code_cell, new_notebook

from ogc_lab import book

PRESETS = dict(smoke=dict(steps=1, width=2), cpu=dict(steps=10, width=2), gpu=dict(steps=100, width=8))


# ---- pick ----


@pytest.mark.parametrize("scale", book.SCALES)
def test_pick_returns_the_scale_settings_as_a_copy(scale: str) -> None:
    chosen = book.pick(scale, **PRESETS)
    assert chosen == PRESETS[scale]
    chosen["steps"] = -1
    assert PRESETS[scale]["steps"] != -1


def test_pick_applies_overrides_that_are_not_none() -> None:
    assert book.pick("cpu", **PRESETS, steps=3, width=None) == dict(steps=3, width=2)


def test_pick_rejects_an_unknown_scale_naming_the_allowed_ones() -> None:
    with pytest.raises(ValueError, match="'laptop'.*smoke, cpu, gpu"):
        book.pick("laptop", **PRESETS)


def test_pick_rejects_an_override_the_scale_does_not_have() -> None:
    with pytest.raises(ValueError, match="stepz"):
        book.pick("smoke", **PRESETS, stepz=None)


# ---- Metrics ----


def test_metrics_round_trip_through_metrics_json(tmp_path: Path) -> None:
    metrics = book.Metrics(tmp_path / "sub" / "metrics.json")
    metrics.record("count", 3)
    metrics.record("numpy", np.float32(0.5))
    metrics.record("tensor", torch.tensor(2.25))
    metrics.record("rows", [dict(tau=1.0, gap=np.float64(-0.5), bound=None)])
    metrics.record("name", "symmetric")
    path = metrics.save()
    assert path == tmp_path / "sub" / "metrics.json"
    assert json.loads(path.read_text()) == dict(
        count=3, numpy=0.5, tensor=2.25, rows=[dict(tau=1.0, gap=-0.5, bound=None)], name="symmetric"
    )


@pytest.mark.parametrize("value", [float("nan"), float("inf"), [1.0, -np.inf], torch.tensor([0.0, float("nan")])])
def test_metrics_refuse_non_finite_numbers(tmp_path: Path, value) -> None:
    with pytest.raises(ValueError, match="'bad'.*non-finite"):
        book.Metrics(tmp_path / "m.json").record("bad", value)


def test_metrics_refuse_values_json_cannot_hold(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'obj'.*object"):
        book.Metrics(tmp_path / "m.json").record("obj", object())


def test_record_glues_the_formatted_text_and_stores_the_value(tmp_path: Path, monkeypatch) -> None:
    glued: dict = {}
    monkeypatch.setattr(book, "_glue", lambda name, value: glued.__setitem__(name, value))
    metrics = book.Metrics(tmp_path / "m.json")
    metrics.record("rate", 0.123456, ".1%")
    metrics.record("plain", 7)
    metrics.record("rows", [1, 2])
    assert glued["rate"].text == "12.3%" and glued["plain"].text == "7"
    assert glued["rows"] == [1, 2]
    assert metrics.values == dict(rate=0.123456, plain=7, rows=[1, 2])


def test_record_all_records_each_value_with_its_format(tmp_path: Path, monkeypatch) -> None:
    glued: dict = {}
    monkeypatch.setattr(book, "_glue", lambda name, value: glued.__setitem__(name, value))
    metrics = book.Metrics(tmp_path / "m.json")
    metrics.record_all({"rate": (0.123456, ".1%"), "plain": (7, None), "tau": book.threshold_quote(float("inf"))})
    assert glued["rate"].text == "12.3%" and glued["plain"].text == "7" and glued["tau"].text == "∞ (no clipping)"
    assert metrics.values == dict(rate=0.123456, plain=7, tau="∞ (no clipping)")
    with pytest.raises(ValueError, match="'bad'.*non-finite"):
        metrics.record_all({"bad": (float("nan"), None)})


@pytest.mark.parametrize(("tau", "quote"), [
    (2.3456, (2.3456, ".3g")), (None, ("∞ (no clipping yet)", None)), (float("inf"), ("∞ (no clipping yet)", None))])
def test_a_threshold_is_quoted_as_a_number_or_as_no_clipping(tau, quote) -> None:
    assert book.threshold_quote(tau, "∞ (no clipping yet)") == quote


def test_markdown_glues_a_markdown_block_and_stores_the_text(tmp_path: Path, monkeypatch) -> None:
    glued: dict = {}
    monkeypatch.setattr(book, "_glue", lambda name, value: glued.__setitem__(name, value))
    metrics = book.Metrics(tmp_path / "m.json")
    assert metrics.markdown("answer", "* one\n* two") == "* one\n* two"
    assert glued["answer"]._repr_markdown_() == "* one\n* two"  # what {glue:md} reads (text/markdown)
    assert metrics.values == {"answer": "* one\n* two"}


@pytest.mark.parametrize(("value", "fmt", "shown"), [
    (37880, ",", "37,880"), (37880, None, "37,880"), (1437, None, "1437"), (44695848, None, "44,695,848"),
    (0.5, ".0%", "50%"), (1e7, ".3g", "1e+07"), (None, None, "none"), (float("inf"), None, "∞"), ("CE", None, "CE"),
])
def test_glued_text_reads_back_as_exactly_the_text(value, fmt, shown) -> None:
    """myst-nb's {glue:text} literal_evals the text/plain: '37,880' must not come back as (37, 880)."""
    from myst_nb.core.variables import format_plain_text

    assert book.text(value, fmt) == shown
    assert format_plain_text(repr(book._Text(shown)), "") == shown


def test_table_markdown_has_no_index_and_no_nan() -> None:
    import pandas as pd

    frame = pd.DataFrame({"tau": [1.0, 32.0], "bound": [0.25, float("nan")], "kind": ["a|b", None]}, index=[7, 8])
    assert book.table_markdown(frame) == "| tau | bound | kind |\n|---|---|---|\n| 1 | 0.25 | a\\|b |\n| 32 | – | – |"


def test_portable_parameters_drop_absolute_paths_only() -> None:
    kept = book.portable_parameters(dict(scale="cpu", metrics_path="/tmp/x/m.json", figure_dir="figs", seed=3))
    assert kept == dict(scale="cpu", figure_dir="figs", seed=3)


def test_rerun_note_names_every_scale_and_the_time() -> None:
    note = book.rerun_markdown("04", "cpu", 125.0)
    assert all(f"--scale {scale} --only 04" in note for scale in book.SCALES)
    assert "at scale `cpu` in 2 min 5 s" in note


def test_figure_glues_and_closes_the_figure(tmp_path: Path, monkeypatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    glued: dict = {}
    monkeypatch.setattr(book, "_glue", lambda name, value: glued.__setitem__(name, value))
    fig = plt.figure()
    book.Metrics(tmp_path / "m.json").figure("fig_x", fig)
    assert glued["fig_x"] is fig
    assert not plt.fignum_exists(fig.number)


# ---- atomic write ----


def test_save_replaces_the_file_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "metrics.json"
    path.write_text("old")
    metrics = book.Metrics(path)
    metrics.record("x", 1)
    metrics.save()
    assert json.loads(path.read_text()) == {"x": 1}
    assert os.listdir(tmp_path) == ["metrics.json"]


# ---- chapters ----


def test_chapters_filters_by_prefix_and_rejects_unmatched(tmp_path: Path) -> None:
    for name in ("01_a.ipynb", "02_b.ipynb", "notes.ipynb"):
        (tmp_path / name).write_text("{}")
    assert [p.name for p in book.chapters(tmp_path)] == ["01_a.ipynb", "02_b.ipynb"]
    assert [p.name for p in book.chapters(tmp_path, only=["02"])] == ["02_b.ipynb"]
    with pytest.raises(ValueError, match="'09'"):
        book.chapters(tmp_path, only=["09"])


def test_cli_reports_an_unknown_chapter_with_exit_status_1(capsys) -> None:
    assert book.main(["execute", "--scale", "smoke", "--only", "99_no_such_chapter"]) == 1
    assert "99_no_such_chapter" in capsys.readouterr().err


# ---- execute ----


def _notebook(path: Path, body: str) -> Path:
    nb = new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = new_code_cell('scale = "cpu"\nmetrics_path = "metrics.json"\nseed = 0')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, new_code_cell(body)]
    nbformat.write(nb, path)
    return path


RECORDING = """
import os
from ogc_lab.book import Metrics
m = Metrics(metrics_path)
m.record("scale", scale)
m.record("cwd", os.getcwd())
m.save()
"""


@pytest.mark.slow
def test_execute_writes_the_executed_copy_and_the_metrics(tmp_path: Path) -> None:
    source = _notebook(tmp_path / "07_tiny.ipynb", RECORDING)
    out = tmp_path / "build"
    executed = book.execute(source, out, "smoke")
    assert executed == (out / "chapters" / "07-tiny.ipynb").resolve()  # the page's clean name
    assert json.loads((out / "metrics" / "07_tiny.json").read_text()) == dict(
        scale="smoke", cwd=str((out / "notebooks").resolve())  # where the chapters keep their runs
    )
    nb = nbformat.read(executed, as_version=4)
    injected = [c for c in nb.cells if book.INJECTED_TAG in c.metadata.get("tags", [])]
    assert len(injected) == 1 and book.HIDDEN_TAG in injected[0].metadata.tags
    # the copy is what a reader downloads: it keeps the scale and names no folder of this machine
    assert injected[0].source == "# Parameters\nscale = 'smoke'"
    assert str(tmp_path) not in json.dumps(nb.metadata)
    assert not nbformat.read(source, as_version=4).cells[1].outputs  # the source stays clean


@pytest.mark.slow
def test_a_failing_notebook_raises_with_its_name_and_the_error(tmp_path: Path) -> None:
    source = _notebook(tmp_path / "08_broken.ipynb", 'raise ValueError("boom at step 3")')
    with pytest.raises(book.NotebookError, match=r"08_broken\.ipynb.*ValueError: boom at step 3"):
        book.execute(source, tmp_path / "build", "smoke")


@pytest.mark.slow
def test_execute_all_goes_on_past_a_failure_and_saves_the_minutes_of_each(tmp_path: Path) -> None:
    good = _notebook(tmp_path / "07_tiny.ipynb", RECORDING)
    bad = _notebook(tmp_path / "08_broken.ipynb", 'raise ValueError("boom")')
    out = tmp_path / "build"
    failures = book.execute_all([bad, good], out, "smoke")
    assert list(failures) == ["08_broken"] and (out / "metrics" / "07_tiny.json").exists()
    timings = json.loads((out / book.TIMINGS).read_text())
    assert timings["scale"] == "smoke" and list(timings["minutes"]) == ["08_broken", "07_tiny"]
    assert all(0 < minutes < 10 for minutes in timings["minutes"].values())


def test_execute_rejects_a_bad_scale_and_a_missing_notebook(tmp_path: Path) -> None:
    source = _notebook(tmp_path / "01_x.ipynb", "pass")
    with pytest.raises(ValueError, match="'huge'"):
        book.execute(source, tmp_path / "build", "huge")
    with pytest.raises(ValueError, match="does not exist"):
        book.execute(tmp_path / "nope.ipynb", tmp_path / "build", "smoke")


# ---- build ----


@pytest.mark.slow
def test_build_fails_loudly_when_a_listed_chapter_is_missing(tmp_path: Path) -> None:
    (tmp_path / "_config.yml").write_text('title: t\nexecute:\n  execute_notebooks: "off"\n')
    (tmp_path / "intro.md").write_text("# Intro\n")
    toc = "format: jb-book\nroot: intro\nchapters:\n  - file: build/chapters/01-missing\n"
    (tmp_path / "_toc.yml").write_text(toc)
    with pytest.raises(RuntimeError, match="01-missing"):
        book.build(tmp_path)


@pytest.mark.slow
def test_what_tools_leave_in_the_tree_does_not_break_the_build(tmp_path: Path) -> None:
    """`make test` then `make book`: pytest's .pytest_cache/README.md must not reach jupyter-book (-W)."""
    shutil.copy(book.REPO_ROOT / "_config.yml", tmp_path)
    shutil.copytree(book.REPO_ROOT / "book", tmp_path / "book")
    shutil.copytree(book.REPO_ROOT / "_static", tmp_path / "_static")
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")  # the real one links the chapters, not built here
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/references\n")
    for leftover in (".pytest_cache", ".hypothesis", ".ruff_cache"):
        (tmp_path / leftover).mkdir()
        (tmp_path / leftover / "README.md").write_text("# a cache folder's readme\n")
    assert (book.build(tmp_path) / "index.html").exists()


def test_finite_records_turn_non_finite_numbers_into_none_and_pass_metrics_checks(tmp_path: Path) -> None:
    import pandas as pd

    frame = pd.DataFrame({"epoch": [1, 2], "tau": [12.5, float("inf")], "auc": [float("nan"), 0.9],
                          "finished": [np.bool_(True), np.bool_(False)]})
    records = book.finite_records(frame)
    assert records == [{"epoch": 1, "tau": 12.5, "auc": None, "finished": True},
                       {"epoch": 2, "tau": None, "auc": 0.9, "finished": False}]
    assert type(records[0]["finished"]) is bool  # plain JSON, not numpy
    assert book.Metrics(tmp_path / "m.json").record("table", records) == records  # Metrics refuses inf and NaN


@pytest.mark.parametrize(("text", "shown"), [
    ("/tmp/shared/data/cifar10_jpeg.npz sha256 f9ca", "cifar10_jpeg.npz sha256 f9ca"),
    ("a; /x/y.npz; ~/d/e.pt and C:\\u\\f.npz", "a; y.npz; e.pt and f.npz"),
    ("sklearn.datasets.load_digits (1797 images)", "sklearn.datasets.load_digits (1797 images)"),
    ("CIFAR-10/100, |dl/dp|, 1 / p and runs/05/cpu", "CIFAR-10/100, |dl/dp|, 1 / p and runs/05/cpu"),  # not absolute
    ("/w/data/cifar-10-batches-py (from https://www.cs.toronto.edu/~kriz/c.tar.gz, md5 c5)",
     "cifar-10-batches-py (from https://www.cs.toronto.edu/~kriz/c.tar.gz, md5 c5)"),  # a URL names no machine
])
def test_without_paths_cuts_absolute_paths_to_their_last_part(text: str, shown: str) -> None:
    assert book.without_paths(text) == shown
