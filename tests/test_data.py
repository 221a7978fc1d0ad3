"""Tests for ogc_lab.data: every loader on fixtures in the real formats, subsets, augmentation, batching."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from fixtures import (
    CLASS_COLOURS,
    write_cifar10_archive,
    write_cifar100_archive,
    write_cifar_n_labels,
    write_cifar_npz,
    write_corrupted_copy,
    write_imagefolder,
    write_webvision,
)
from ogc_lab import data as D
from ogc_lab.batches import Augment, DeviceBatches, augment_batch, dataloader_batches, normalise
from ogc_lab.data import load_dataset
from ogc_lab.datasplit import DataIntegrityError, DataNotFoundError, channel_stats, stratified_indices
from ogc_lab.download import REMOTE_FILES, RemoteFile, sha256_of

# ------------------------------------------------------------------ names and options


def test_unknown_name_lists_known_names():
    with pytest.raises(ValueError, match="toy2d") as err:
        load_dataset("mnist")
    assert "cifar10n" in str(err.value) and "webvision-mini" in str(err.value)


def test_path_suffix_only_for_imagefolder():
    with pytest.raises(ValueError, match="unknown dataset 'digits:somewhere'; allowed: toy2d"):
        load_dataset("digits:somewhere")


def test_unknown_option_is_rejected():
    with pytest.raises(ValueError, match="image_size"):
        load_dataset("digits", image_size=32)


# ------------------------------------------------------------------ toy2d and digits


def test_toy2d_shapes_and_determinism():
    a, b, c = load_dataset("toy2d", seed=3), load_dataset("toy2d", seed=3), load_dataset("toy2d", seed=4)
    assert a.train_x.shape == (400, 2) and a.train_x.dtype == torch.float32
    assert a.test_x.shape == (2000, 2) and a.train_y.dtype == torch.int64
    assert not a.is_image and a.num_classes == 2 and a.mean is None
    assert set(a.train_y.tolist()) == {0, 1}
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, c.train_x)


def test_digits_split_fixed_and_scaled():
    a, b = load_dataset("digits", seed=0), load_dataset("digits", seed=7)
    assert a.train_x.shape == (1437, 1, 8, 8) and a.test_x.shape == (360, 1, 8, 8)
    assert a.train_x.dtype == torch.uint8 and a.is_image and a.input_shape == (1, 8, 8)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)  # split ignores seed
    assert int(a.train_x.max()) == 255 and set(a.train_x.unique().tolist()) <= {min(16 * v, 255) for v in range(17)}
    assert torch.bincount(a.test_y).tolist() == [36, 36, 35, 37, 36, 37, 36, 36, 35, 36]  # stratified
    expect = a.train_x.double() / 255
    assert a.mean[0] == pytest.approx(expect.mean().item(), abs=1e-12)
    assert a.std[0] == pytest.approx(expect.std(unbiased=False).item(), abs=1e-12)


def test_channel_stats_match_float_computation():
    x = torch.randint(0, 256, (7, 3, 5, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    mean, std = channel_stats(x)
    xf = x.double() / 255
    assert mean == pytest.approx(xf.mean(dim=(0, 2, 3)).tolist(), abs=1e-12)
    assert std == pytest.approx(xf.std(dim=(0, 2, 3), unbiased=False).tolist(), abs=1e-12)


# ------------------------------------------------------------------ stratified subsets


def test_subset_counts_exact_per_class_and_default_test_fifth():
    split = load_dataset("digits", subset=500, seed=1)
    counts = torch.bincount(load_dataset("digits").train_y)
    got = torch.bincount(split.train_y)
    assert got.sum() == 500 and split.test_y.numel() == 100
    share = counts.double() * 500 / counts.sum()
    assert torch.all((got == share.floor()) | (got == share.ceil()))
    assert torch.equal(load_dataset("digits", subset=500, seed=1).train_x, split.train_x)
    assert not torch.equal(load_dataset("digits", subset=500, seed=2).train_x, split.train_x)
    assert load_dataset("digits", subset=500, test_subset=360).test_y.numel() == 360


def test_subset_balanced_classes_exact():
    labels = torch.arange(1000) % 10
    idx = stratified_indices(labels, 300, seed=0)
    assert torch.bincount(labels[idx]).tolist() == [30] * 10
    assert torch.equal(idx, idx.sort().values) and idx.unique().numel() == 300


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(1, 30), min_size=1, max_size=8), frac=st.floats(0.01, 1.0), seed=st.integers(0, 99))
def test_stratified_indices_properties(counts, frac, seed):
    labels = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
    n = max(1, round(frac * len(labels)))
    idx = stratified_indices(labels, n, seed)
    got = torch.bincount(labels[idx], minlength=len(counts)).double()
    share = torch.tensor(counts, dtype=torch.float64) * n / len(labels)
    assert idx.numel() == n == idx.unique().numel()
    assert torch.all((got - share).abs() < 1)
    assert torch.equal(idx, stratified_indices(labels, n, seed))


def test_subset_size_out_of_range():
    with pytest.raises(ValueError, match="subset size"):
        load_dataset("digits", subset=5000)


# ------------------------------------------------------------------ official CIFAR archives


def _serve(monkeypatch, key: str, archive: Path, md5: str) -> None:
    """Point the registry entry ``key`` at a local fixture via a file:// URL."""
    monkeypatch.setitem(REMOTE_FILES, key, RemoteFile(archive.as_uri(), md5, REMOTE_FILES[key].filename))


@pytest.mark.parametrize("key, writer", [("cifar10", write_cifar10_archive), ("cifar100", write_cifar100_archive)])
def test_cifar_download_and_read(tmp_path, monkeypatch, key, writer):
    fix = writer(tmp_path / "server")
    _serve(monkeypatch, key, fix.archive, fix.md5)
    root = tmp_path / "data"
    split = load_dataset(key, root=root, download=True)
    assert torch.equal(split.train_x, torch.from_numpy(fix.train_x))
    assert torch.equal(split.train_y, torch.from_numpy(fix.train_y).long())
    assert torch.equal(split.test_x, torch.from_numpy(fix.test_x))
    assert torch.equal(split.test_y, torch.from_numpy(fix.test_y).long())
    assert split.classes == fix.classes and split.num_classes == len(fix.classes)
    assert split.mean == pytest.approx(channel_stats(split.train_x)[0])
    assert (root / fix.archive.name).exists() and fix.md5 in split.source
    again = load_dataset(key, root=root)  # extracted copy, no download
    assert torch.equal(again.train_x, split.train_x)


def test_cifar_missing_without_download(tmp_path):
    with pytest.raises(DataNotFoundError, match="download=True") as err:
        load_dataset("cifar10", root=tmp_path)
    assert str(tmp_path) in str(err.value)


def test_cifar_corrupted_download_fails_checksum(tmp_path, monkeypatch):
    fix = write_cifar10_archive(tmp_path / "good")
    bad = write_corrupted_copy(fix.archive, tmp_path / "server")
    _serve(monkeypatch, "cifar10", bad, fix.md5)
    root = tmp_path / "data"
    with pytest.raises(DataIntegrityError, match=fix.md5):
        load_dataset("cifar10", root=root, download=True)
    assert not (root / "cifar-10-batches-py").exists()


def test_cifar_corrupted_local_archive_fails_checksum(tmp_path, monkeypatch):
    fix = write_cifar10_archive(tmp_path / "good")
    _serve(monkeypatch, "cifar10", fix.archive, fix.md5)
    write_corrupted_copy(fix.archive, tmp_path / "data")
    with pytest.raises(DataIntegrityError, match="corrupted"):
        load_dataset("cifar10", root=tmp_path / "data")


class _Payload:
    """Unpickling this runs os.system: what a planted CIFAR batch would do."""

    def __reduce__(self):
        import os
        return (os.system, ("echo pwned > planted.txt",))


def test_cifar_batches_are_read_by_a_restricted_unpickler(tmp_path, monkeypatch):
    fix, root = _cifar_root(tmp_path, monkeypatch, "cifar10")
    load_dataset("cifar10", root=root, download=True)  # extracts the archive
    import pickle

    meta = root / "cifar-10-batches-py" / "batches.meta"
    meta.write_bytes(pickle.dumps({"label_names": _Payload()}, protocol=2))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(DataIntegrityError, match=r"asks to unpickle posix\.system|asks to unpickle os\.system"):
        load_dataset("cifar10", root=root)
    assert not (tmp_path / "planted.txt").exists()


# ------------------------------------------------------------------ project JPEG npz


def test_cifar10_npz_reads_both_root_forms(tmp_path):
    expected = write_cifar_npz(tmp_path / "cifar10_jpeg.npz")
    by_folder = load_dataset("cifar10-npz", root=tmp_path)
    by_file = load_dataset("cifar10-npz", root=tmp_path / "cifar10_jpeg.npz")
    assert torch.equal(by_folder.train_x, by_file.train_x)
    assert by_folder.train_x.shape == (12, 3, 32, 32) and by_folder.train_x.dtype == torch.uint8
    assert by_folder.test_x.shape == (5, 3, 32, 32)
    assert torch.equal(by_folder.train_y, torch.from_numpy(expected["train_y"]))
    # JPEG at quality 95 on smooth images: every pixel within a few levels of the source
    diff = (by_folder.train_x.int() - torch.from_numpy(expected["train_x"]).int()).abs()
    assert diff.max() <= 6
    assert by_folder.classes[0] == "airplane" and by_folder.num_classes == 10
    assert "sha256" in by_folder.source


def test_cifar10_npz_missing(tmp_path):
    with pytest.raises(DataNotFoundError, match="cifar10_jpeg.npz"):
        load_dataset("cifar10-npz", root=tmp_path)


# ------------------------------------------------------------------ CIFAR-N


def _cifar_root(tmp_path, monkeypatch, key: str):
    writer = write_cifar10_archive if key == "cifar10" else write_cifar100_archive
    fix = writer(tmp_path / "server")
    _serve(monkeypatch, key, fix.archive, fix.md5)
    return fix, tmp_path / "data"


@pytest.mark.parametrize("key, base, k, sets", [
    ("cifar10n", "cifar10", 10, {"aggregate": "aggre_label", "random1": "random_label1", "random2": "random_label2",
                                 "random3": "random_label3", "worse": "worse_label"}),
    ("cifar100n", "cifar100", 100, {"noisy": "noisy_label"}),
])
def test_cifar_n_aligned_file_loads(tmp_path, monkeypatch, key, base, k, sets):
    fix, root = _cifar_root(tmp_path, monkeypatch, base)
    table = write_cifar_n_labels(tmp_path / "server" / REMOTE_FILES[key].filename, fix.train_y, k)
    _serve(monkeypatch, key, tmp_path / "server" / REMOTE_FILES[key].filename, None)
    split = load_dataset(key, root=root, download=True)
    assert split.name == key and set(split.noisy_sets) == set(sets)
    for ours, theirs in sets.items():
        assert torch.equal(split.noisy_sets[ours], torch.from_numpy(table[theirs]))
    assert torch.equal(split.train_y, torch.from_numpy(fix.train_y).long())
    assert sha256_of(root / REMOTE_FILES[key].filename) in split.source


def test_cifar_n_subset_keeps_noisy_sets_aligned(tmp_path, monkeypatch):
    fix, root = _cifar_root(tmp_path, monkeypatch, "cifar10")
    table = write_cifar_n_labels(root / "CIFAR-10_human.pt", fix.train_y, 10)
    split = load_dataset("cifar10n", root=root, download=True, subset=10, seed=3)
    idx = stratified_indices(torch.from_numpy(fix.train_y), 10, 3)
    assert torch.equal(split.noisy_sets["worse"], torch.from_numpy(table["worse_label"])[idx])
    assert torch.equal(split.train_x, torch.from_numpy(fix.train_x)[idx])


def test_cifar_n_misaligned_file_fails(tmp_path, monkeypatch):
    fix, root = _cifar_root(tmp_path, monkeypatch, "cifar10")
    write_cifar_n_labels(root / "CIFAR-10_human.pt", fix.train_y, 10, misalign=True)
    with pytest.raises(DataIntegrityError, match="not aligned"):
        load_dataset("cifar10n", root=root, download=True)


def test_cifar_n_missing_key_and_missing_file(tmp_path, monkeypatch):
    fix, root = _cifar_root(tmp_path, monkeypatch, "cifar10")
    load_dataset("cifar10", root=root, download=True)
    with pytest.raises(DataNotFoundError, match="CIFAR-10_human.pt"):
        load_dataset("cifar10n", root=root)
    torch.save({"clean_label": fix.train_y}, root / "CIFAR-10_human.pt")
    with pytest.raises(DataIntegrityError, match="worse_label"):
        load_dataset("cifar10n", root=root)


class _Planted:
    """An object of a class that no label file holds (torch's weights-only loader refuses it)."""


@pytest.mark.parametrize("change, match", [
    (lambda t: {**t, "worse_label": t["worse_label"].astype(np.float32)}, r"holds numpy.dtypes.Float32DType"),
    (lambda t: {**t, "worse_label": t["worse_label"][:-1]}, r"'worse_label' holds int64 values of shape \(19,\)"),
    (lambda t: {**t, "worse_label": t["worse_label"] + 10}, r"'worse_label' has labels from 1\d to 19, allowed: 0 to"),
    (lambda t: {**t, "clean_label": "cats and dogs"}, r"'clean_label' holds <U13 values of shape \(\)"),
    (lambda t: [t["clean_label"]], r"holds a list, expected a dict of label arrays"),
    (lambda t: {**t, "note": _Planted()}, r"cannot read CIFAR-N label file .*test_data._Planted.*refusing to unpickle"),
])
def test_cifar_n_label_file_is_checked_against_its_schema(tmp_path, monkeypatch, change, match):
    fix, root = _cifar_root(tmp_path, monkeypatch, "cifar10")
    table = write_cifar_n_labels(root / "CIFAR-10_human.pt", fix.train_y, 10)
    torch.save(change(table), root / "CIFAR-10_human.pt")
    with pytest.raises(DataIntegrityError, match=match) as err:
        load_dataset("cifar10n", root=root, download=True)
    assert str(root / "CIFAR-10_human.pt") in str(err.value) and "weights_only" not in str(err.value)


def test_cifar10_npz_is_checked_against_its_schema(tmp_path):
    path = tmp_path / "cifar10_jpeg.npz"
    write_cifar_npz(path)
    arrays = dict(np.load(path))
    np.savez(path, **{k: v for k, v in arrays.items() if k != "test_labels"})
    with pytest.raises(DataIntegrityError, match=r"cifar10_jpeg.npz lacks arrays \['test_labels'\]"):
        load_dataset("cifar10-npz", root=path)
    np.savez(path, **{**arrays, "test_labels": arrays["test_labels"][:-1]})  # 4 labels for 5 images
    with pytest.raises(DataIntegrityError, match=r"test_labels holds int64 values of shape \(4,\), expected 5"):
        load_dataset("cifar10-npz", root=path)
    path.write_bytes(b"not a zip")
    with pytest.raises(DataIntegrityError, match="is not a readable cifar10_jpeg.npz"):
        load_dataset("cifar10-npz", root=path)


def _official_order(sorted_labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """Clean labels in an 'official' order: a shuffle of the class-sorted copy's labels."""
    return np.random.default_rng(seed).permutation(sorted_labels)


def test_cifar10n_npz_puts_the_jpeg_copy_in_the_official_order(tmp_path):
    expected = write_cifar_npz(tmp_path / "cifar10_jpeg.npz", n_train=30)
    official = _official_order(expected["train_y"])
    table = write_cifar_n_labels(tmp_path / "CIFAR-10_human.pt", official, 10)
    split = load_dataset("cifar10n-npz", root=tmp_path)
    plain = load_dataset("cifar10-npz", root=tmp_path)
    assert torch.equal(split.train_y, torch.from_numpy(official))  # the CIFAR-N check: clean labels equal, in order
    assert torch.equal(split.noisy_sets["worse"], torch.from_numpy(table["worse_label"]))
    # official image i is the k-th image of its class in the sorted copy, k its rank within the class
    mapping = D.official_order_from_class_sorted(plain.train_y, split.train_y)
    for i in range(len(official)):
        c = official[i]
        k = int((official[:i] == c).sum())
        assert int(mapping[i]) == int(np.flatnonzero(expected["train_y"] == c)[k])
    assert torch.equal(split.train_x, plain.train_x[mapping]) and "map sha256" in split.source
    assert split.name == "cifar10n-npz" and torch.equal(split.test_x, plain.test_x)


def test_cifar10n_npz_refuses_a_label_file_that_does_not_fit(tmp_path):
    expected = write_cifar_npz(tmp_path / "cifar10_jpeg.npz", n_train=30)
    with pytest.raises(DataNotFoundError, match="CIFAR-10_human.pt"):
        load_dataset("cifar10n-npz", root=tmp_path)
    other = expected["train_y"].copy()
    other[0] = (other[0] + 1) % 10  # one image's class differs: the class counts cannot match
    write_cifar_n_labels(tmp_path / "CIFAR-10_human.pt", _official_order(other), 10)
    with pytest.raises(DataIntegrityError, match="class counts differ"):
        load_dataset("cifar10n-npz", root=tmp_path)


# ------------------------------------------------------------------ image folders


def test_imagefolder_reads_tree(tmp_path):
    write_imagefolder(tmp_path / "pets", {"dog": (3, 1), "cat": (2, 2), "emu": (1, 1)})
    split = load_dataset(f"imagefolder:{tmp_path / 'pets'}", image_size=16)
    assert split.classes == ["cat", "dog", "emu"]
    assert split.train_y.tolist() == [0, 0, 1, 1, 1, 2] and split.test_y.tolist() == [0, 0, 1, 2]
    assert split.train_x.shape == (6, 3, 16, 16) and split.train_x.dtype == torch.uint8
    for x, y in zip(split.train_x, split.train_y):
        colour = torch.tensor(CLASS_COLOURS[split.classes[y]], dtype=torch.uint8)
        assert torch.equal(x, colour[:, None, None].expand(3, 16, 16))
    assert load_dataset(f"imagefolder:{tmp_path / 'pets'}").train_x.shape[-1] == 32  # default image_size


def test_imagefolder_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="train"):
        load_dataset(f"imagefolder:{tmp_path / 'none'}")
    write_imagefolder(tmp_path / "a", {"cat": (1, 1)})
    (tmp_path / "a" / "test" / "owl").mkdir()
    with pytest.raises(ValueError, match="owl"):
        load_dataset(f"imagefolder:{tmp_path / 'a'}")


@pytest.mark.parametrize("counts, split, names", [
    ({"cat": (0, 1), "dog": (0, 2)}, "train", "'cat', 'dog'"),  # class folders without images
    ({"cat": (2, 1), "emu": (1, 0)}, "test", "'emu'"),  # a class never tested would score 0 on nothing
    ({"cat": (2, 0), "dog": (1, 0)}, "test", "'cat', 'dog'"),  # an empty test tree: accuracy 0/0
])
def test_imagefolder_refuses_a_class_without_images_in_a_split(tmp_path, counts, split, names):
    write_imagefolder(tmp_path / "tree", counts)
    with pytest.raises(DataNotFoundError, match=f"no {split} images for class {names}"):
        load_dataset(f"imagefolder:{tmp_path / 'tree'}")


# ------------------------------------------------------------------ WebVision


def test_webvision_mini_layout(tmp_path):
    fix = write_webvision(tmp_path / "webvision")
    split = load_dataset("webvision-mini", root=tmp_path, image_size=32)  # root/webvision also accepted
    assert split.num_classes == 50 and split.classes[1] == "n00000001"
    assert split.train_y.tolist() == fix.train_y and split.test_y.tolist() == fix.val_y
    assert split.train_x.shape == (len(fix.train_y), 3, 32, 32)
    x, y = split.extra_test_sets["imagenet-val"]
    assert y.tolist() == fix.imagenet_y and x.shape == (2, 3, 32, 32)
    # solid colour (label * 5, 100, 150) survives JPEG and resizing within a few levels
    assert (split.train_x[2, 0].int() - 49 * 5).abs().max() <= 4


def test_webvision_refuses_a_malformed_file_list_and_an_empty_imagenet_folder(tmp_path):
    fix = write_webvision(tmp_path / "wv")
    (fix.root / "imagenet_val" / "0" / "ILSVRC2012_val_00000001.JPEG").unlink()
    (fix.root / "imagenet_val" / "49" / "ILSVRC2012_val_00000001.JPEG").unlink()
    with pytest.raises(DataNotFoundError, match="imagenet_val holds no images"):
        load_dataset("webvision-mini", root=fix.root, image_size=8)
    filelist = fix.root / "info" / "val_filelist.txt"
    filelist.write_text(filelist.read_text() + "val_broken.jpg seven\n")
    with pytest.raises(DataIntegrityError, match=r"val_filelist.txt line 7: expected 'relative/path.jpg label'"):
        load_dataset("webvision-mini", root=fix.root, image_size=8)


def test_webvision_without_imagenet_and_missing(tmp_path):
    write_webvision(tmp_path / "wv", with_imagenet=False)
    assert load_dataset("webvision-mini", root=tmp_path / "wv", image_size=8).extra_test_sets == {}
    with pytest.raises(DataNotFoundError, match="train_filelist_google"):
        load_dataset("webvision-mini", root=tmp_path / "nothing")


# ------------------------------------------------------------------ augmentation


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _pattern(b: int = 32, c: int = 3, h: int = 8, w: int = 8) -> torch.Tensor:
    """Distinct pixel values (1..255, never the zero padding value) so any shift or mirror is visible."""
    return (torch.arange(b * c * h * w) % 255 + 1).to(torch.uint8).view(b, c, h, w)


def test_augment_identity_and_shapes():
    x = _pattern()
    assert torch.equal(augment_batch(x, Augment(), _gen()), x)
    out = augment_batch(x, Augment(crop_padding=2, flip=True, rotation=10.0), _gen())
    assert out.shape == x.shape and out.dtype == torch.uint8


def test_flip_only_is_exact_mirror():
    x = _pattern(64)
    out = augment_batch(x, Augment(flip=True), _gen(1))
    same = (out == x).flatten(1).all(1)
    mirrored = (out == x.flip(-1)).flatten(1).all(1)
    assert torch.all(same ^ mirrored)
    assert 10 < mirrored.sum() < 54  # about half, for a 64-sample batch


def test_crop_shifts_content_by_window_offsets():
    p = 2
    x = _pattern(40)
    out = augment_batch(x, Augment(crop_padding=p), _gen(2))
    padded = torch.nn.functional.pad(x, (p, p, p, p))
    shifts = []
    for b in range(len(x)):
        hits = [(dy, dx) for dy in range(2 * p + 1) for dx in range(2 * p + 1)
                if torch.equal(out[b], padded[b, :, dy:dy + 8, dx:dx + 8])]
        assert len(hits) == 1
        shifts.append(hits[0])
    assert len(set(shifts)) > 5 and any(s != (p, p) for s in shifts)


def test_rotation_keeps_centre_and_fills_corners():
    x = torch.full((16, 1, 15, 15), 200, dtype=torch.uint8)
    out = augment_batch(x, Augment(rotation=30.0, interpolation="bilinear"), _gen(3))
    assert torch.all(out[:, :, 5:10, 5:10] == 200)  # a constant image stays constant near the centre
    assert (out[:, 0, 0, 0] < 200).float().mean() > 0.5  # corners rotate out of the image (zero fill)


def test_augment_reproducible_with_generator():
    x = _pattern()
    aug = Augment(crop_padding=4, flip=True, rotation=15.0)
    a, b = augment_batch(x, aug, _gen(5)), augment_batch(x, aug, _gen(5))
    assert torch.equal(a, b)
    assert not torch.equal(a, augment_batch(x, aug, _gen(6)))


def test_augment_rejects_bad_settings():
    with pytest.raises(ValueError, match="crop_padding"):
        Augment(crop_padding=-1)
    with pytest.raises(ValueError, match="interpolation"):
        Augment(interpolation="cubic")


def test_normalise_values_and_memory_format():
    x = _pattern(4, 3, 5, 5)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.25, 2.0)
    out = normalise(x, mean, std)
    expect = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    torch.testing.assert_close(out, expect, rtol=1e-6, atol=1e-6)
    cl = normalise(x.contiguous(memory_format=torch.channels_last), mean, std)
    assert cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(normalise(x, None, None), x.float() / 255)


# ------------------------------------------------------------------ batching


def _images(n: int = 50) -> tuple[torch.Tensor, torch.Tensor]:
    return _pattern(n, 3, 8, 8), torch.arange(n) % 7


@pytest.mark.parametrize("drop_last, batches", [(False, 4), (True, 3)])
def test_device_batches_cover_each_sample_once(drop_last, batches):
    x, y = _images(50)
    it = DeviceBatches(x, y, 16, True, Augment(crop_padding=1, flip=True), (0.5,) * 3, (0.2,) * 3, _gen(),
                       drop_last=drop_last)
    assert len(it) == batches
    for _ in range(2):  # two epochs
        seen = [idx for _, _, idx in it]
        assert len(seen) == batches
        allidx = torch.cat(seen)
        assert allidx.numel() == allidx.unique().numel() == (48 if drop_last else 50)
    for xb, yb, idx in it:
        assert xb.dtype == torch.float32 and xb.shape[1:] == (3, 8, 8)
        assert torch.equal(yb, y[idx])


def test_device_batches_order_reproducible_and_changes_per_epoch():
    x, y = _images(40)

    def orders(seed):
        it = DeviceBatches(x, y, 8, True, None, (0.5,) * 3, (0.2,) * 3, _gen(seed))
        return [torch.cat([i for _, _, i in it]) for _ in range(2)]

    first, second = orders(0), orders(0)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert not torch.equal(first[0], first[1])
    assert not torch.equal(first[0], orders(1)[0])


def test_device_batches_no_augment_matches_normalise_and_vectors_pass_through():
    x, y = _images(20)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.3, 0.4)
    for xb, _, idx in DeviceBatches(x, y, 6, False, None, mean, std, _gen()):
        torch.testing.assert_close(xb, normalise(x[idx], mean, std))
    v = torch.randn(10, 2)
    out = DeviceBatches(v, torch.zeros(10, dtype=torch.long), 4, False, None, None, None, _gen())
    assert torch.equal(torch.cat([xb for xb, _, _ in out]), v)


def test_device_batches_build_no_tensor_from_host_values_per_batch(host_value_tensors):
    # mean/std become device tensors once, at construction; an epoch then copies nothing from the
    # host (on CUDA each such copy would synchronise the step).
    x, y = _images(40)
    it = DeviceBatches(x, y, 8, True, Augment(crop_padding=2, flip=True, rotation=10.0), (0.5,) * 3, (0.2,) * 3,
                       _gen())
    host_value_tensors.clear()
    assert sum(len(idx) for _, _, idx in it) == 40 and host_value_tensors == []


def test_device_batches_channels_last_and_extra():
    x, y = _images(12)
    clean = torch.arange(12) * 10
    it = DeviceBatches(x, y, 5, True, Augment(flip=True), (0.5,) * 3, (0.2,) * 3, _gen(), extra={"clean": clean},
                       memory_format=torch.channels_last)
    for xb, _, idx in it:
        assert xb.is_contiguous(memory_format=torch.channels_last)
        assert torch.equal(it.gather_extra(idx)["clean"], clean[idx])
    with pytest.raises(ValueError, match="same length"):
        DeviceBatches(x, y[:5], 4, True, None, None, None, _gen())


def test_dataloader_batches_same_triples_as_device_path():
    x, y = _images(20)
    mean, std = (0.4, 0.5, 0.6), (0.2, 0.3, 0.4)
    loader = dataloader_batches(x, y, 6, False, None, mean, std, seed=0, num_workers=0)
    device = DeviceBatches(x, y, 6, False, None, mean, std, _gen())
    assert len(loader) == len(device) == 4
    for (xa, ya, ia), (xb, yb, ib) in zip(loader, device):
        torch.testing.assert_close(xa, xb, rtol=1e-5, atol=1e-5)
        assert torch.equal(ya, yb) and torch.equal(ia, ib)


def test_dataloader_batches_augmented_with_workers():
    x, y = _images(24)
    aug = Augment(crop_padding=2, flip=True, rotation=10.0)
    loader = dataloader_batches(x, y, 8, True, aug, (0.5,) * 3, (0.2,) * 3, seed=0, num_workers=2)
    batches = list(loader)
    assert [b[0].shape for b in batches] == [(8, 3, 8, 8)] * 3
    assert torch.cat([b[2] for b in batches]).sort().values.tolist() == list(range(24))
    assert all(torch.equal(b[1], y[b[2]]) for b in batches)
    vectors = dataloader_batches(torch.randn(9, 2), torch.zeros(9, dtype=torch.long), 4, False, None, None, None,
                                 seed=0, num_workers=0)
    assert [tuple(b[0].shape) for b in vectors] == [(4, 2), (4, 2), (1, 2)]


def test_find_cifar_npz_takes_the_given_path_then_the_environment_then_the_folders(tmp_path: Path, monkeypatch) -> None:
    from ogc_lab.data import NPZ_ENV, NPZ_FILENAME, find_cifar_npz

    monkeypatch.delenv(NPZ_ENV, raising=False)
    folder, other = tmp_path / "shared", tmp_path / "other"
    folder.mkdir(), other.mkdir()
    assert find_cifar_npz(folders=[folder]) is None
    (folder / NPZ_FILENAME).write_bytes(b"x")
    assert find_cifar_npz(folders=[other, folder]) == folder / NPZ_FILENAME
    explicit = other / "mine.npz"
    explicit.write_bytes(b"x")
    monkeypatch.setenv(NPZ_ENV, str(folder / NPZ_FILENAME))
    assert find_cifar_npz(explicit, folders=[folder]) == explicit.resolve()
    assert find_cifar_npz(folders=[]) == (folder / NPZ_FILENAME).resolve()
    monkeypatch.setenv(NPZ_ENV, str(tmp_path / "typo.npz"))
    with pytest.raises(DataNotFoundError, match="typo.npz"):
        find_cifar_npz(folders=[folder])
