"""Crash-safe file writes, and the software versions and source revision recorded beside every result.

A run that is killed half way must never leave a truncated ``result.json`` or checkpoint, so
every write goes to a temporary file in the same folder and is moved into place with
``os.replace`` (atomic on POSIX and Windows).  ``folder_lock`` keeps two processes from writing one
run folder at once (a second sweep started on the same folder, say).
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; folder_lock then guards nothing
    fcntl = None  # type: ignore[assignment]

LOCK_FILE = ".lock"
TEMP_SUFFIX = ".tmp"  # atomic writes go to '.<name>.<random>.tmp' beside their file first


class FolderBusyError(ValueError):
    """Another process holds the folder's lock (it is writing there now)."""


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` for the block, or raise FolderBusyError at once if another
    process holds it.  The OS drops the lock when its holder dies, so a killed run never blocks a resume;
    the lock file goes when the block ends, so a folder is left as it was found plus what the block wrote."""
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # innermost first
    folder.mkdir(parents=True, exist_ok=True)
    try:
        with _locked(folder / LOCK_FILE):
            yield
    finally:  # a run that failed before writing anything leaves no folder behind
        if created and not any(folder.iterdir()):
            for made in created:
                made.rmdir()


@contextmanager
def _locked(path: Path) -> Iterator[None]:
    """flock ``path`` (created if missing) without waiting, record this process's pid in it, and remove
    it on release while still holding it; a file its holder removed as we opened it is not taken."""
    while True:
        handle = open(path, "a+", encoding="utf-8")
        if fcntl is not None:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                handle.close()
                raise FolderBusyError(
                    f"folder {str(path.parent)!r} is in use by another process (pid {holder}); "
                    "wait for it to finish or stop it, then resume"
                ) from None
        if path.exists() and os.path.samestat(os.fstat(handle.fileno()), os.stat(path)):
            break
        handle.close()  # the previous holder removed this file after we opened it: lock the one there now
    with handle:
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            path.unlink(missing_ok=True)


def _umask() -> int:
    """The process's file-creation mask (read by setting it and putting it back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def _atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success move it over ``path``, else delete it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; every file of a run gets the same, usual mode
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextmanager
def staged_folder(folder: Path) -> Iterator[Path]:
    """Yield an empty hidden folder beside ``folder`` to write a set of files into; once the block ends
    without error they replace their namesakes in ``folder`` (each atomically), else none of them does."""
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=TEMP_SUFFIX, dir=folder.parent))
    try:
        yield staging
        folder.mkdir(exist_ok=True)
        for path in sorted(staging.iterdir()):
            os.replace(path, folder / path.name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def empty_folder(folder: Path) -> Path:
    """``folder``, emptied of whatever it held (or made), for runs that are measured anew at every execution."""
    folder = Path(folder)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see either the old or the new file, never half."""
    with _atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def atomic_write_json(path: Path, obj: Any) -> None:
    """Atomically write ``obj`` as indented JSON (non-finite floats become null: strict JSON)."""
    atomic_write_text(path, json.dumps(_json_safe(obj), indent=2, allow_nan=False) + "\n")


def atomic_torch_save(path: Path, obj: Any) -> None:
    """Atomically ``torch.save`` ``obj`` to ``path`` (checkpoints survive a kill mid-write).

    torch reports a failed write (a full disk, a file-size limit) as RuntimeError; it is raised here as
    OSError naming the folder and its free space, and the previous file at ``path`` is left as it was.
    """
    try:
        with _atomic_path(path) as tmp:
            torch.save(obj, tmp)
    except RuntimeError as err:
        free = shutil.disk_usage(Path(path).parent).free
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise OSError(f"cannot write {str(path)!r} ({first}); {free / 2**20:.1f} MiB free in "
                      f"{str(Path(path).parent)!r}; the previous file is kept") from None


def torch_load(path: Path, what: str, error: type[ValueError] = ValueError, allowed: Sequence[Any] = ()) -> Any:
    """``torch.load`` of ``path`` with ``weights_only=True`` (tensors, plain values and the ``allowed``
    globals only); any failure raises ``error`` naming the file as ``what``.

    torch's own message for a refused object advises loading with ``weights_only=False``, which would
    run whatever code the file holds; that advice is never relayed, only what the file holds.
    """
    try:
        with torch.serialization.safe_globals(list(allowed)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for a corrupt or foreign file
        text = str(err)
        if "weights_only" in text:
            refused = re.search(r"GLOBAL (\S+) was not|but got <class '([^']+)'>", text)
            reason = (f"it holds {next(filter(None, refused.groups())) if refused else 'an object'}, which is not a "
                      "tensor or plain value; refusing to unpickle it")
        else:
            lines = text.strip().splitlines()
            reason = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
        raise error(f"cannot read {what} {str(path)!r}: {reason}") from None


MAX_JSON_DEPTH = 64  # nesting no file or option of the package comes near; deeper would exhaust Python's stack


def parse_json(text: str, what: str) -> Any:
    """JSON ``text`` as values; malformed or nested over MAX_JSON_DEPTH deep raises ValueError naming ``what``."""
    too_deep = f"cannot read {what}: it nests lists or objects more than {MAX_JSON_DEPTH} levels deep"
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise ValueError(f"cannot read {what}: {err}") from None
    except RecursionError:
        raise ValueError(too_deep) from None
    if _depth(value) > MAX_JSON_DEPTH:
        raise ValueError(too_deep)
    return value


def _depth(value: Any) -> int:
    """How many lists and objects deep ``value`` nests (counted without recursion)."""
    stack, deepest = [(value, 1)], 0
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend((inner, depth + 1) for inner in (item.values() if isinstance(item, dict) else item))
    return deepest


def read_json(path: Path) -> Any:
    """Read a JSON file; a missing, malformed or too deeply nested file raises ValueError naming it."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise ValueError(f"cannot read JSON file {str(path)!r}: {err}") from None
    return parse_json(text, f"JSON file {str(path)!r}")


def _json_safe(obj: Any) -> Any:
    """Recursively turn tuples, paths, tensors and non-finite floats into strict-JSON values."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, torch.Tensor):
        return _json_safe(obj.tolist())
    if isinstance(obj, float):
        return obj if obj == obj and abs(obj) != float("inf") else None
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item):  # numpy scalars
        return _json_safe(obj.item())
    return obj


def versions() -> dict[str, str]:
    """Versions of Python and the packages that decide a result (recorded in every result.json)."""
    found = {"python": platform.python_version()}
    for dist, key in [
        ("ogc-lab", "ogc_lab"),
        ("torch", "torch"),
        ("torchvision", "torchvision"),
        ("numpy", "numpy"),
        ("scikit-learn", "sklearn"),
    ]:
        try:
            found[key] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[key] = "not installed"
    return found


PACKAGE_DIR = Path(__file__).resolve().parent  # the code a run executes: its revision is the one recorded
GIT_HASH = r"[0-9a-f]{40}|[0-9a-f]{64}"  # a commit as git names it (SHA-1, or SHA-256 in repositories of that format)


@cache
def source_revision(folder: Path = PACKAGE_DIR) -> dict[str, str | bool | None]:
    """The git commit holding the code in ``folder`` and whether its files there differ from it (``dirty``), so a
    result names the code that made it; both None where git or a repository tracking ``folder`` is absent (a wheel
    install).  Asked once per process and folder: a sweep's runs record the code they imported."""
    def git(*args: str) -> str:
        return subprocess.run(["git", "--no-optional-locks", *args], cwd=folder, capture_output=True, text=True,
                              check=True, timeout=30).stdout

    try:
        git("ls-files", "--error-unmatch", "--", ".")  # fails where no tracked file is here (a venv, a wheel)
        commit = git("rev-parse", "HEAD").strip()
        dirty = bool(git("status", "--porcelain", "--", ".").strip())
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": dirty}
