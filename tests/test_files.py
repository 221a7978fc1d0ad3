"""Atomic writes: a reader sees the old file or the new one, a failed write loses nothing; one writer per folder."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from ogc_lab import files


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "metrics.json"
    path.write_text("old")

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(files.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        files.atomic_write_text(path, "new")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["metrics.json"]


def test_json_writes_strict_json_with_non_finite_numbers_as_null(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "result.json"
    files.atomic_write_json(path, {"tau": float("inf"), "acc": 0.5, "nan": float("nan")})
    assert json.loads(path.read_text()) == {"tau": None, "acc": 0.5, "nan": None}


def test_read_json_names_a_malformed_file(tmp_path: Path) -> None:
    path = tmp_path / "result.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="result.json"):
        files.read_json(path)


needs_flock = pytest.mark.skipif(files.fcntl is None, reason="no advisory file locks on this platform")


@needs_flock
def test_a_locked_folder_refuses_a_second_writer_naming_the_holder(tmp_path: Path) -> None:
    with files.folder_lock(tmp_path):
        busy = rf"{tmp_path.name}.*in use by another process \(pid {os.getpid()}\)"
        with pytest.raises(files.FolderBusyError, match=busy):
            with files.folder_lock(tmp_path):
                pass
    with files.folder_lock(tmp_path):  # released: the next writer gets it
        assert (tmp_path / files.LOCK_FILE).read_text() == str(os.getpid())


@needs_flock
def test_a_lock_file_removed_by_its_holder_is_not_taken(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A writer that opened the lock file just before its holder removed it must lock the new file instead,
    or two writers would hold 'the' lock at once."""
    real_flock, raced = files.fcntl.flock, []

    def holder_releases_meanwhile(handle, flags):
        if not raced:  # the holder removes the file between this writer's open and its flock
            raced.append(handle.name)
            os.unlink(handle.name)
        return real_flock(handle, flags)

    monkeypatch.setattr(files.fcntl, "flock", holder_releases_meanwhile)
    with files.folder_lock(tmp_path):
        assert (tmp_path / files.LOCK_FILE).read_text() == str(os.getpid())  # the file there now is the one held
    assert raced and os.listdir(tmp_path) == []


@needs_flock
def test_the_lock_dies_with_its_holder(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from ogc_lab import files\n"
         "with files.folder_lock(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)", str(tmp_path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(files.FolderBusyError, match=f"pid {holder.pid}"):
            with files.folder_lock(tmp_path):
                pass
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with files.folder_lock(tmp_path):  # killed mid-run: nothing stale blocks the resume
        pass


def test_a_folder_made_for_a_run_that_wrote_nothing_is_removed(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError):
        with files.folder_lock(tmp_path / "a" / "b"):
            raise RuntimeError("bad config")
    assert os.listdir(tmp_path) == []  # both folders it made are gone
    with files.folder_lock(tmp_path / "kept"):
        (tmp_path / "kept" / "result.json").write_text("{}")
    assert os.listdir(tmp_path / "kept") == ["result.json"]  # the lock file goes with the lock
    with files.folder_lock(tmp_path):  # a folder that was already there stays
        pass
    assert tmp_path.is_dir()


def test_a_failed_checkpoint_write_is_one_oserror_and_keeps_the_previous_file(tmp_path, monkeypatch) -> None:
    """torch.save on a full disk raises RuntimeError; the caller gets OSError naming the folder and its space."""
    path = tmp_path / "checkpoint.pt"
    files.atomic_torch_save(path, {"epoch": 1})

    def full_disk(obj, f):
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0\nmore")

    monkeypatch.setattr(files.torch, "save", full_disk)
    with pytest.raises(OSError, match=r"cannot write .*checkpoint\.pt.*unexpected pos 64 vs 0\).* MiB free in "):
        files.atomic_torch_save(path, {"epoch": 2})
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt"]  # no temporary file left


def test_atomic_files_get_the_same_mode_as_the_csv_files(tmp_path) -> None:
    """result.json and checkpoint.pt were 0600 (mkstemp) beside 0644 CSVs; now all follow the umask."""
    old = os.umask(0o022)
    try:
        files.atomic_write_json(tmp_path / "result.json", {"a": 1})
        files.atomic_torch_save(tmp_path / "checkpoint.pt", {"a": 1})
        (tmp_path / "steps.csv").write_text("step\n")
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"result.json": 0o644, "checkpoint.pt": 0o644, "steps.csv": 0o644}


def test_empty_folder_removes_what_was_there_and_makes_what_was_not(tmp_path: Path) -> None:
    old = tmp_path / "runs" / "smoke"
    (old / "ce").mkdir(parents=True)
    (old / "ce" / "result.json").write_text("{}")
    assert files.empty_folder(old) == old and list(old.iterdir()) == []
    new = tmp_path / "fresh" / "cpu"
    assert files.empty_folder(new).is_dir() and list(new.iterdir()) == []


def _git(folder: Path, *args: str) -> str:
    """Run git in ``folder`` as a user with a name (commits need one), returning its output."""
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=folder, check=True,
                          capture_output=True, text=True).stdout.strip()


def test_source_revision_names_the_commit_and_whether_the_folder_differs_from_it(tmp_path: Path) -> None:
    repo, package = tmp_path / "repo", tmp_path / "repo" / "pkg"
    package.mkdir(parents=True)
    (package / "code.py").write_text("x = 1\n")
    (repo / "notes.txt").write_text("notes\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-q", "-m", "first")
    head = _git(repo, "rev-parse", "HEAD")
    revision = files.source_revision.__wrapped__  # uncached: the folder changes between the calls
    assert revision(package) == {"commit": head, "dirty": False}
    (repo / "notes.txt").write_text("edited\n")  # outside the code's folder: not the code that ran
    assert revision(package) == {"commit": head, "dirty": False}
    (package / "code.py").write_text("x = 2\n")
    assert revision(package) == {"commit": head, "dirty": True}
    _git(repo, "checkout", "-q", "--", "pkg")
    (package / "new.py").write_text("y = 1\n")  # an untracked module is code too
    assert revision(package) == {"commit": head, "dirty": True}
    assert files.source_revision(package) == files.source_revision(package)  # asked once: the cached answer


def test_source_revision_is_unknown_without_a_repository_or_git(tmp_path: Path, monkeypatch) -> None:
    unknown = {"commit": None, "dirty": None}
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))  # no repository above tmp_path is searched
    folder = tmp_path / "site-packages" / "pkg"
    folder.mkdir(parents=True)
    assert files.source_revision.__wrapped__(folder) == unknown
    _git(tmp_path, "init", "-q")  # a repository that does not track the folder (an ignored virtual environment)
    (tmp_path / ".gitignore").write_text("site-packages/\n")
    (tmp_path / "README").write_text("readme\n")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-q", "-m", "first")
    assert files.source_revision.__wrapped__(folder) == unknown
    assert files.source_revision.__wrapped__(tmp_path / "absent") == unknown
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no git at all
    assert files.source_revision.__wrapped__(tmp_path) == unknown
