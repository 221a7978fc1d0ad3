"""Data files from the network: where each comes from, its checksum, and a download that leaves no partial file."""

from __future__ import annotations

import hashlib
import os
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from torchvision.datasets.utils import calculate_md5, check_integrity

from .datasplit import DataIntegrityError, DataNotFoundError

# ----------------------------------------------------------------------------------------------
# Files: download, checksums, archives
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RemoteFile:
    """A file the loaders may download: where from, its md5 (None where none is published), its name."""

    url: str
    md5: str | None
    filename: str


REMOTE_FILES: dict[str, RemoteFile] = {
    "cifar10": RemoteFile(
        "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
        "c58f30108f718f92721af3b95e74349a",
        "cifar-10-python.tar.gz",
    ),
    "cifar100": RemoteFile(
        "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
        "eb9058c3a382ffc7106e4002c42a8d85",
        "cifar-100-python.tar.gz",
    ),
    # CIFAR-N publishes no checksum: these files are verified by label alignment instead.
    "cifar10n": RemoteFile(
        "https://github.com/UCSC-REAL/cifar-10-100n/raw/main/data/CIFAR-10_human.pt",
        None,
        "CIFAR-10_human.pt",
    ),
    "cifar100n": RemoteFile(
        "https://github.com/UCSC-REAL/cifar-10-100n/raw/main/data/CIFAR-100_human.pt",
        None,
        "CIFAR-100_human.pt",
    ),
}


def sha256_of(path: Path) -> str:
    """Hex sha256 of a file, recorded in ``DataSplit.source`` so results name their exact inputs."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _download(url: str, dest: Path) -> None:
    """Copy ``url`` (http(s) or file://) to ``dest`` through a temporary file, so no partial file remains."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=dest.name + ".")
    try:
        with os.fdopen(handle, "wb") as out, urllib.request.urlopen(url) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
        os.replace(tmp_name, dest)
    finally:
        if os.path.exists(tmp_name):
            os.remove(tmp_name)


def verify_md5(path: Path, md5: str | None) -> None:
    """Raise DataIntegrityError when ``path`` does not have the expected md5 (None: nothing to check)."""
    if md5 is not None and not check_integrity(str(path), md5):
        raise DataIntegrityError(
            f"{path} is corrupted: md5 {calculate_md5(str(path))}, expected {md5}. "
            "Delete it and download again."
        )


def fetch(remote: RemoteFile, root: Path) -> Path:
    """Download ``remote`` into ``root`` unless it is already there, then verify its md5."""
    path = root / remote.filename
    if not path.exists():
        _download(remote.url, path)
    verify_md5(path, remote.md5)
    return path


def extract_tar(archive: Path, dest: Path) -> None:
    """Unpack a tar archive, refusing members that would land outside ``dest``."""
    with tarfile.open(archive) as tar:
        tar.extractall(dest, filter="data")


def not_found(what: str, path: Path, how: str) -> DataNotFoundError:
    return DataNotFoundError(f"{what} not found at {path}. {how}")


