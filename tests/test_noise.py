"""Tests of the label-noise generators: exact counts, mappings, reports, determinism and errors."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from ogc_lab.noise import (
    CIFAR100_DATA,
    NOISE_KINDS,
    check_noise_data,
    corrupt_labels,
    make_noise,
    parse_noise_spec,
    transition_matrix,
)
from ogc_lab.noise_synthetic import CIFAR10_ASYM_TARGETS, CIFAR100_COARSE_OF_FINE, MNIST_ASYM_TARGETS, exact_counts

MATRIX_SPECS = [
    ("none", 10),
    ("symmetric:0.4", 10),
    ("symmetric-uniform:0.4", 10),
    ("pairflip:0.45", 10),
    ("asym-cifar10:0.4", 10),
    ("asym-cifar100:0.4", 100),
    ("asym-cifar100-super:0.4", 100),
    ("asym-mnist:0.4", 10),
]


def balanced(num_classes: int, per_class: int, seed: int = 0) -> torch.Tensor:
    """per_class samples of each class, in a shuffled order."""
    y = torch.arange(num_classes).repeat_interleave(per_class)
    return y[torch.randperm(y.numel(), generator=torch.Generator().manual_seed(seed))]


def off_diagonal_targets(num_classes: int, targets: dict[int, int]) -> np.ndarray:
    """Expected support of a single-target mapping: identity plus c -> targets[c]."""
    support = np.eye(num_classes, dtype=bool)
    for c, j in targets.items():
        support[c, j] = True
    return support


# ---------------------------------------------------------------------------------- constants


def test_cifar100_coarse_mapping_has_five_fine_classes_per_superclass():
    assert len(CIFAR100_COARSE_OF_FINE) == 100
    assert Counter(CIFAR100_COARSE_OF_FINE) == {c: 5 for c in range(20)}
    # spot checks against the CIFAR-100 class names: apple -> fruit_and_vegetables (4),
    # beaver -> aquatic_mammals (0), worm -> non-insect_invertebrates (13)
    assert (
        CIFAR100_COARSE_OF_FINE[0],
        CIFAR100_COARSE_OF_FINE[4],
        CIFAR100_COARSE_OF_FINE[99],
    ) == (4, 0, 13)


def test_superclass_noise_cycles_inside_each_superclass():
    t = transition_matrix("asym-cifar100-super", 0.4, 100).numpy()
    coarse = np.array(CIFAR100_COARSE_OF_FINE)
    target = {c: int(j) for c in range(100) for j in np.flatnonzero(t[c]) if j != c}
    assert len(target) == 100
    for g in range(20):
        members = sorted(np.flatnonzero(coarse == g).tolist())
        # each fine class goes to the next fine index of its superclass, the last back to the first
        assert [target[m] for m in members] == members[1:] + members[:1]
    assert target[0] == 51  # apple -> mushroom (both fruit_and_vegetables)


def test_legacy_cifar100_blocks_are_consecutive_indices():
    t = transition_matrix("asym-cifar100", 0.3, 100).numpy()
    for c in range(100):
        j = 5 * (c // 5) + (c + 1) % 5
        assert t[c, c] == pytest.approx(0.7) and t[c, j] == pytest.approx(0.3)
        assert np.count_nonzero(t[c]) == 2
    assert t[4, 0] == pytest.approx(0.3)  # the block wraps: 4 -> 0, not 4 -> 5


# ---------------------------------------------------------------------------------- exact counts


def test_symmetric_flips_exactly_rate_of_each_class_to_other_classes():
    clean = balanced(10, 1000)
    out = make_noise("symmetric:0.4", clean, 10, seed=3)
    counts = out.report.transition_counts
    assert (np.diag(counts) == 600).all()
    assert (counts.sum(axis=1) == 1000).all()
    off = counts[~np.eye(10, dtype=bool)]
    assert set(off.tolist()) <= {44, 45}  # 400 / 9 = 44.4, rounded by largest remainder
    for c in range(10):
        assert int(out.flipped[clean == c].sum()) == 400
    assert (out.labels[out.flipped] != clean[out.flipped]).all()
    assert out.report.realised_rate == 0.4


def test_symmetric_rounding_ties_are_not_given_to_low_class_indices():
    counts = make_noise("symmetric:0.4", balanced(10, 1000), 10, seed=0).report.transition_counts
    received = counts.sum(axis=0) - np.diag(counts)
    # index-ordered ties would give class 0 a 45 from all 9 rows (405) and class 9 none (396)
    assert received.max() - received.min() < 9


@pytest.mark.parametrize("spec,num_classes", MATRIX_SPECS)
def test_realised_matrix_matches_nominal_within_count_rounding(spec, num_classes):
    per_class = 333
    clean = balanced(num_classes, per_class)
    kind, rate, _ = parse_noise_spec(spec)
    out = make_noise(spec, clean, num_classes, seed=1)
    expected = transition_matrix(kind, rate, num_classes).numpy() * per_class
    counts = out.report.transition_counts
    assert (counts.sum(axis=1) == per_class).all()
    assert np.abs(counts - expected).max() < 1.0
    assert np.allclose(out.report.transition, counts / per_class)
    # the report is computed from the labels themselves
    pairs = Counter(zip(clean.tolist(), out.labels.tolist(), strict=True))
    assert all(counts[a, b] == n for (a, b), n in pairs.items())
    assert torch.equal(out.flipped, out.labels != clean)
    assert out.report.realised_rate == pytest.approx(out.flipped.float().mean().item())


def test_flipped_samples_are_a_random_subset_of_each_class():
    clean = torch.arange(10).repeat_interleave(100)  # sorted: class c occupies [100c, 100c + 100)
    a = make_noise("symmetric:0.3", clean, 10, seed=0)
    b = make_noise("symmetric:0.3", clean, 10, seed=1)
    first_positions = torch.zeros(1000, dtype=torch.bool)
    first_positions[:30] = True
    assert not torch.equal(a.flipped[:100], first_positions[:100])
    assert not torch.equal(a.flipped, b.flipped)
    assert np.array_equal(
        a.report.transition_counts.diagonal(), b.report.transition_counts.diagonal()
    )


def test_symmetric_uniform_keeps_self_draws_and_realises_r_times_k_minus_1_over_k():
    clean = balanced(10, 1000)
    out = make_noise("symmetric-uniform:0.4", clean, 10, seed=2)
    counts = out.report.transition_counts
    assert (np.diag(counts) == 640).all()  # 600 untouched + 40 redrawn onto their own class
    assert (counts[~np.eye(10, dtype=bool)] == 40).all()
    assert out.report.realised_rate == pytest.approx(0.4 * 9 / 10, abs=1e-12)
    assert int(out.flipped.sum()) == 3600  # self-draws are not counted as flipped


def test_pairflip_sends_flips_to_the_next_class():
    clean = balanced(7, 200)
    out = make_noise("pairflip:0.45", clean, 7, seed=0)
    assert torch.equal(out.labels[out.flipped], (clean[out.flipped] + 1) % 7)
    assert (out.report.transition_counts.diagonal() == 110).all()
    assert [int(out.flipped[clean == c].sum()) for c in range(7)] == [90] * 7


@pytest.mark.parametrize(
    "spec,targets",
    [("asym-cifar10:0.4", CIFAR10_ASYM_TARGETS), ("asym-mnist:0.4", MNIST_ASYM_TARGETS)],
)
def test_fixed_mappings_flip_only_their_classes_to_their_targets(spec, targets):
    clean = balanced(10, 500)
    out = make_noise(spec, clean, 10, seed=4)
    counts = out.report.transition_counts
    assert (counts[~off_diagonal_targets(10, dict(targets))] == 0).all()
    for c in range(10):
        expected_kept = 300 if c in targets else 500
        assert counts[c, c] == expected_kept
    for c, j in targets.items():
        assert counts[c, j] == 200


def test_cat_dog_swap_realises_nominal_rate_without_flipping_back():
    # Sequential flips (cat -> dog, then dog -> cat on the updated labels) would send 160 of the
    # 400 cats-turned-dogs back, a realised cat -> dog rate of 0.24.  One matrix keeps it at 0.4.
    clean = balanced(10, 1000)
    out = make_noise("asym-cifar10:0.4", clean, 10, seed=0)
    cat, dog = 3, 5
    cats = clean == cat
    assert int((out.labels[cats] == dog).sum()) == 400
    assert int((out.labels[cats] == cat).sum()) == 600
    assert out.report.transition[cat, dog] == 0.4
    assert out.report.transition[dog, cat] == 0.4


def test_uneven_class_counts_round_per_class():
    sizes = [1003, 997, 5, 0, 250, 1, 10, 7, 333, 2]
    clean = torch.arange(10).repeat_interleave(torch.tensor(sizes))
    out = make_noise("asym-cifar10:0.4", clean, 10, seed=0)
    counts = out.report.transition_counts
    assert counts.sum(axis=1).tolist() == sizes
    assert counts[2, 0] == 2 and counts[4, 7] == 100  # bird 0.4 * 5 = 2, deer 0.4 * 250 = 100
    assert counts[9, 1] == 1 and counts[5, 3] == 0  # truck 0.8 -> 1 (kept 1.2 -> 1), dog 0.4 -> 0
    assert (out.report.transition[3] == 0).all()  # class 3 has no samples: an all-zero row


# ---------------------------------------------------------------------------------- properties


@settings(max_examples=40, deadline=None)
@given(
    sizes=st.lists(st.integers(0, 300), min_size=2, max_size=12),
    kind=st.sampled_from(["symmetric", "symmetric-uniform", "pairflip"]),
    fraction=st.floats(0.0, 0.999),
    seed=st.integers(0, 2**31),
)
def test_rows_sum_to_class_counts_for_any_class_sizes(sizes, kind, fraction, seed):
    k = len(sizes)
    rate = fraction * NOISE_KINDS[kind].max_rate(k)
    clean = torch.arange(k).repeat_interleave(torch.tensor(sizes))
    out = make_noise(f"{kind}:{rate!r}", clean, k, seed=seed)
    counts = out.report.transition_counts
    assert counts.sum(axis=1).tolist() == sizes
    expected = transition_matrix(kind, rate, k).numpy() * np.array(sizes)[:, None]
    assert np.abs(counts - expected).max() < 1.0
    assert torch.equal(out.flipped, out.labels != clean)


@settings(max_examples=40, deadline=None)
@given(
    weights=st.lists(st.lists(st.floats(0.0, 1.0), min_size=4, max_size=4), min_size=4, max_size=4),
    sizes=st.lists(st.integers(0, 10_000), min_size=4, max_size=4),
)
def test_exact_counts_of_any_stochastic_matrix(weights, sizes):
    w = torch.tensor(weights, dtype=torch.float64) + 1e-3
    t = w / w.sum(1, keepdim=True)
    n = torch.tensor(sizes)
    counts = exact_counts(t, n, torch.Generator().manual_seed(0))
    assert counts.sum(1).tolist() == sizes
    assert (counts >= 0).all()
    assert (counts.double() - t * n[:, None]).abs().max() < 1.0


@settings(max_examples=30, deadline=None)
@given(
    kind=st.sampled_from(
        ["symmetric", "pairflip", "asym-cifar10", "asym-mnist", "symmetric-uniform"]
    ),
    fraction=st.floats(0.0, 0.999),
)
def test_clean_label_stays_the_most_likely_below_the_rate_bound(kind, fraction):
    rate = fraction * NOISE_KINDS[kind].max_rate(10)
    t = transition_matrix(kind, rate, 10)
    off = t.masked_fill(torch.eye(10, dtype=torch.bool), -1.0)
    assert (t.diagonal() > off.max(1).values).all()
    assert torch.allclose(t.sum(1), torch.ones(10, dtype=torch.float64))


# ---------------------------------------------------------------------------------- reports


@pytest.mark.parametrize("spec,num_classes", MATRIX_SPECS + [("instance:0.3", 10)])
def test_same_seed_same_labels_different_seed_different_labels(spec, num_classes):
    clean = balanced(num_classes, 40)
    features = torch.randn(clean.numel(), 2, 3, 3, generator=torch.Generator().manual_seed(9))
    a = make_noise(spec, clean, num_classes, seed=7, features=features)
    b = make_noise(spec, clean, num_classes, seed=7, features=features)
    c = make_noise(spec, clean, num_classes, seed=8, features=features)
    assert torch.equal(a.labels, b.labels)
    assert a.report.labels_sha256 == b.report.labels_sha256
    if spec != "none":
        assert a.report.labels_sha256 != c.report.labels_sha256


def test_hash_is_sha256_of_little_endian_int64_labels():
    out = make_noise("symmetric:0.2", balanced(10, 50), 10, seed=0)
    expected = hashlib.sha256(out.labels.numpy().astype("<i8").tobytes()).hexdigest()
    assert out.report.labels_sha256 == expected
    assert out.labels.dtype == torch.int64 and out.flipped.dtype == torch.bool


def test_numpy_labels_give_the_same_noise_as_a_tensor():
    clean = balanced(10, 30)
    from_tensor = make_noise("pairflip:0.3", clean, 10, seed=5)
    from_numpy = make_noise("pairflip:0.3", clean.numpy().astype(np.int32), 10, seed=5)
    assert isinstance(from_numpy.labels, torch.Tensor)
    assert torch.equal(from_tensor.labels, from_numpy.labels)


def test_report_to_dict_is_json_and_matrix_prints():
    out = make_noise("asym-cifar10:0.4", balanced(10, 100), 10, seed=0)
    d = json.loads(json.dumps(out.report.to_dict()))
    assert d["kind"] == "asym-cifar10" and d["nominal_rate"] == 0.4 and d["seed"] == 0
    assert d["realised_rate"] == pytest.approx(0.2)
    assert d["transition_counts"][3][5] == 40 and d["transition"][3][5] == pytest.approx(0.4)
    assert d["labels_sha256"] == out.report.labels_sha256
    text = str(out.report)
    assert "asym-cifar10" in text and "realised 0.2000" in text
    assert len(out.report.format_matrix().splitlines()) == 11  # header + 10 rows
    wide = make_noise("asym-cifar100-super:0.4", balanced(100, 10), 100, seed=0).report
    assert wide.format_matrix().splitlines()[0] == "   0: 0 0.600, 51 0.400"


def test_empty_labels_are_accepted():
    out = make_noise("symmetric:0.4", torch.empty(0, dtype=torch.int64), 10, seed=0)
    assert out.labels.numel() == 0 and out.flipped.numel() == 0
    assert out.report.realised_rate == 0.0
    assert (out.report.transition_counts == 0).all() and (out.report.transition == 0).all()
    assert out.report.labels_sha256 == hashlib.sha256(b"").hexdigest()


# ---------------------------------------------------------------------------------- instance


def image_batch(n: int, num_classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, num_classes, (n,), generator=g)


def test_instance_noise_realises_nominal_rate_on_nchw_features():
    features, clean = image_batch(5000, 10)
    out = make_noise("instance:0.4", clean, 10, seed=0, features=features)
    # E[q] = 0.4 (truncation at 4 sd is negligible); sd of the realised rate ~0.007 at n=5000
    assert abs(out.report.realised_rate - 0.4) < 0.03
    assert out.labels.min() >= 0 and out.labels.max() < 10
    assert torch.equal(out.flipped, out.labels != clean)
    assert (out.labels[out.flipped] != clean[out.flipped]).all()
    assert out.report.params == {"std": 0.1, "norm": "raw"}


def test_instance_noise_defaults_to_raw_features_as_the_reference():
    features, clean = image_batch(2000, 10, seed=3)
    default, raw, l2 = (
        make_noise(f"instance:0.4{norm}", clean, 10, seed=0, features=features)
        for norm in ("", ":norm=raw", ":norm=l2")
    )
    assert default.report.params["norm"] == "raw"
    assert default.report.labels_sha256 == raw.report.labels_sha256 != l2.report.labels_sha256


def test_instance_noise_masks_the_true_class_in_the_flip_distribution():
    # With q fixed at 0.5 a sample keeps its label with probability exactly 0.5 because the true
    # class gets no softmax mass; without the mask it would keep it with 0.5 + 0.5 * softmax_y
    # (about 0.55 for K = 10).  sd of the realised rate at n = 20000 is 0.0035: tolerance 0.015.
    features, clean = image_batch(20000, 10, seed=1)
    out = make_noise("instance:0.5:std=1e-6", clean, 10, seed=0, features=features)
    assert abs(out.report.realised_rate - 0.5) < 0.015


def test_instance_noise_target_depends_on_the_features():
    # Raw features of a large scale make the softmax one-hot: identical images with the same
    # label all flip to the same class (the argmax of their projection).
    g = torch.Generator().manual_seed(0)
    prototypes = 1000.0 * torch.randn(40, 3, 4, 4, generator=g)
    features = prototypes.repeat_interleave(50, dim=0)
    clean = (torch.arange(40) % 10).repeat_interleave(50)
    raw = make_noise("instance:0.5:norm=raw", clean, 10, seed=0, features=features)
    groups = torch.arange(40).repeat_interleave(50)
    for p in range(40):
        in_group = (groups == p) & raw.flipped
        assert in_group.any() and raw.labels[in_group].unique().numel() == 1
    # unit-norm features give a soft distribution: some group spreads over several classes
    soft = make_noise("instance:0.5:norm=l2", clean, 10, seed=0, features=features)
    spreads = [soft.labels[(groups == p) & soft.flipped].unique().numel() for p in range(40)]
    assert max(spreads) > 1


def test_instance_noise_l2_mode_ignores_the_scale_of_each_sample():
    features, clean = image_batch(2000, 10, seed=2)
    scale = 2.0 ** torch.randint(-3, 4, (2000, 1, 1, 1), generator=torch.Generator().manual_seed(0))
    a = make_noise("instance:0.3:norm=l2", clean, 10, seed=0, features=features)
    b = make_noise("instance:0.3:norm=l2", clean, 10, seed=0, features=features * scale)
    assert a.report.labels_sha256 == b.report.labels_sha256


def test_instance_noise_accepts_numpy_uint8_images():
    g = torch.Generator().manual_seed(0)
    features = torch.randint(0, 256, (300, 3, 4, 4), dtype=torch.uint8, generator=g).numpy()
    clean = torch.randint(0, 10, (300,), generator=g).numpy()
    out = make_noise("instance:0.2", clean, 10, seed=0, features=features)
    assert out.labels.shape == (300,) and 0 <= int(out.labels.min()) and int(out.labels.max()) < 10


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_instance_noise_on_gpu_matches_cpu():
    features, clean = image_batch(5000, 10)
    cpu = make_noise("instance:0.4", clean, 10, seed=0, features=features)
    gpu = make_noise("instance:0.4", clean.cuda(), 10, seed=0, features=features.cuda())
    assert gpu.labels.device.type == "cuda"
    # same random draws on both; float rounding may move a draw across a boundary only rarely
    assert (gpu.labels.cpu() == cpu.labels).float().mean() > 0.999


# ---------------------------------------------------------------------------------- errors


def labels10() -> torch.Tensor:
    return balanced(10, 10)


@pytest.mark.parametrize(
    "spec,match",
    [
        (
            "gaussian:0.4",
            r"unknown noise kind 'gaussian'; allowed: none, symmetric, symmetric-uniform",
        ),
        ("symmetric:1.0", r"noise rate must be in \[0, 1\), got 1.0"),
        ("symmetric:-0.1", r"noise rate must be in \[0, 1\), got -0.1"),
        ("symmetric:nan", r"noise rate must be in \[0, 1\), got nan"),
        ("symmetric:abc", r"noise rate must be a number in \[0, 1\), got 'abc'"),
        ("symmetric", r"noise kind 'symmetric' needs a rate"),
        ("none:0.2", r"noise kind 'none' takes no rate"),
        ("symmetric:0.4:a:b", r"must be 'kind\[:rate\[:key=value,...\]\]'"),
        ("symmetric:0.4:std=0.1", r"bad parameter 'std=0.1' for 'symmetric'; allowed keys: none"),
        ("instance:0.4:foo=1", r"bad parameter 'foo=1' for 'instance'; allowed keys: std, norm"),
        ("instance:0.4:std=0", r"std must be a finite number > 0, got '0'"),
        ("instance:0.4:norm=l1", r"norm must be one of \['l2', 'raw'\], got 'l1'"),
    ],
)
def test_bad_specs_are_rejected_by_name(spec, match):
    with pytest.raises(ValueError, match=match):
        make_noise(spec, labels10(), 10, features=torch.zeros(100, 4))


def test_spec_must_be_a_string():
    with pytest.raises(ValueError, match=r"noise spec must be a string"):
        parse_noise_spec(0.4)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "spec,num_classes,match",
    [
        (
            "symmetric:0.9",
            10,
            r"symmetric noise needs rate < 0.9 for num_classes=10 \(.*no longer the majority",
        ),
        ("symmetric:0.5", 2, r"needs rate < 0.5 for num_classes=2"),
        ("pairflip:0.5", 10, r"pairflip noise needs rate < 0.5 .*got 0.5"),
        ("asym-cifar10:0.6", 10, r"asym-cifar10 noise needs rate < 0.5"),
        ("asym-cifar10:0.4", 7, r"asym-cifar10 noise needs num_classes == 10, got 7"),
        ("asym-mnist:0.4", 100, r"asym-mnist noise needs num_classes == 10, got 100"),
        ("asym-cifar100:0.4", 10, r"asym-cifar100 noise needs num_classes == 100, got 10"),
        (
            "asym-cifar100-super:0.4",
            10,
            r"asym-cifar100-super noise needs num_classes == 100, got 10",
        ),
        ("symmetric:0.1", 1, r"symmetric noise needs an int num_classes >= 2, got 1"),
        ("none", 2.0, r"needs an int num_classes >= 1, got 2.0"),
    ],
)
def test_rate_and_class_count_limits(spec, num_classes, match):
    with pytest.raises(ValueError, match=match):
        make_noise(spec, torch.zeros(5, dtype=torch.int64), num_classes)


@pytest.mark.parametrize(
    "labels,match",
    [
        (
            torch.tensor([0, 1, 10, -1, 10]),
            r"labels must lie in \[0, 10\) .*found 3 out of range, values \[-1, 10\]",
        ),
        (torch.tensor([0.0, 1.0]), r"labels must have an integer dtype, got torch.float32"),
        (np.array([0.5, 1.0]), r"labels must have an integer dtype, got float64"),
        (torch.tensor([True, False]), r"labels must have an integer dtype, got torch.bool"),
        (torch.zeros(2, 3, dtype=torch.int64), r"labels must be 1-D, got shape \(2, 3\)"),
        ([0, 1, 2], r"labels must be a torch tensor or numpy array, got list"),
    ],
)
def test_bad_labels_are_rejected_by_value(labels, match):
    with pytest.raises(ValueError, match=match):
        make_noise("symmetric:0.2", labels, 10)


@pytest.mark.parametrize(
    "features,match",
    [
        (None, r"instance noise needs features"),
        (
            torch.zeros(99, 4),
            r"features must have shape \(N, \.\.\.\) with N = len\(labels\) = 100, got \(99, 4\)",
        ),
        (torch.zeros(100), r"with N = len\(labels\) = 100, got \(100,\)"),
        (
            torch.zeros(100, 4, dtype=torch.bool),
            r"features must be real numbers, got dtype torch.bool",
        ),
        ("pixels", r"features must be a torch tensor or numpy array, got str"),
    ],
)
def test_bad_instance_features_are_rejected(features, match):
    with pytest.raises(ValueError, match=match):
        make_noise("instance:0.2", labels10(), 10, features=features)


@pytest.mark.parametrize("seed", [-1, 1.5, True])
def test_bad_seed_is_rejected(seed):
    with pytest.raises(ValueError, match=r"seed must be a non-negative int, got"):
        make_noise("symmetric:0.2", labels10(), 10, seed=seed)


def test_transition_matrix_and_exact_counts_reject_bad_input():
    with pytest.raises(ValueError, match=r"noise kind 'instance' has no fixed transition matrix"):
        transition_matrix("instance", 0.2, 10)
    with pytest.raises(ValueError, match=r"noise kind 'none' takes no rate, got 0.3"):
        transition_matrix("none", 0.3, 10)
    with pytest.raises(ValueError, match=r"transition rows must be non-negative and sum to 1"):
        exact_counts(torch.full((3, 3), 0.5), torch.tensor([1, 2, 3]))
    with pytest.raises(
        ValueError, match=r"need a \(K, K\) matrix and K counts, got \(3, 3\) and \(2,\)"
    ):
        exact_counts(torch.eye(3), torch.tensor([1, 2]))


# ---------------------------------------------------------------------------------- data of the class maps

CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
DIGIT_NAMES = [str(d) for d in range(10)]


@pytest.mark.parametrize(
    "spec, dataset, classes",
    [
        ("asym-cifar10:0.4", name, CIFAR10_NAMES) for name in ("cifar10", "cifar10-npz", "cifar10n", "cifar10n-npz")
    ] + [
        ("asym-cifar10:0.4", "imagefolder:/data/my-cifar", CIFAR10_NAMES),  # by its class names
        ("asym-cifar100:0.4", "cifar100n", [f"fine_{k}" for k in range(100)]),  # by its name
        ("asym-cifar100-super:0.2", "imagefolder:/data/c100", list(CIFAR100_DATA.classes)),
        ("asym-mnist:0.4", "digits", DIGIT_NAMES),
        ("asym-mnist:0.4", "imagefolder:/data/mnist", DIGIT_NAMES),
        ("symmetric:0.4", "digits", DIGIT_NAMES),  # no class map: any data set
        ("pairflip:0.2", "imagefolder:/pets", ["cat", "dog"]),
    ],
)
def test_class_mapped_noise_is_accepted_on_the_data_it_maps(spec, dataset, classes):
    check_noise_data(spec, dataset, classes)


@pytest.mark.parametrize(
    "spec, dataset, classes, names",
    [
        ("asym-cifar10:0.4", "digits", DIGIT_NAMES,
         ["asym-cifar10 noise maps CIFAR-10 classes", "'digits'", "0, 1, 2", "allowed: cifar10, cifar10-npz"]),
        ("asym-cifar10:0.4", "imagefolder:/pets", ["cat", "dog", "emu"], ["'imagefolder:/pets'", "cat, dog, emu"]),
        ("asym-cifar10:0.4", "imagefolder:/shuffled", CIFAR10_NAMES[::-1], ["truck, ship"]),  # other class order
        ("asym-cifar100:0.4", "cifar10", CIFAR10_NAMES, ["asym-cifar100", "'cifar10'", "allowed: cifar100, cifar100n"]),
        ("asym-mnist:0.2", "cifar10-npz", CIFAR10_NAMES, ["asym-mnist", "'cifar10-npz'", "allowed: digits"]),
    ],
)
def test_class_mapped_noise_is_refused_on_other_data(spec, dataset, classes, names):
    with pytest.raises(ValueError) as err:
        check_noise_data(spec, dataset, classes)
    for name in names:
        assert name in str(err.value), (name, str(err.value))


def test_cifar100_class_names_are_the_hundred_fine_labels_in_index_order():
    names = CIFAR100_DATA.classes
    assert len(set(names)) == 100 and list(names) == sorted(names)
    assert (names[0], names[4], names[99]) == ("apple", "beaver", "worm")  # fine 0 apple, fine 4 beaver (see above)


def test_human_noise_takes_the_data_sets_real_label_set() -> None:
    clean = torch.arange(400) % 2
    worse = clean.clone()
    worse[:50] = 1 - worse[:50]
    where = {"dataset": "toy2d", "classes": ["0", "1"]}
    noisy = corrupt_labels("human:worse", clean, 2, seed=0, label_sets={"worse": worse}, **where)
    assert torch.equal(noisy.labels, worse) and int(noisy.flipped.sum()) == 50
    report = noisy.report.to_dict()
    assert report["kind"] == "human:worse" and report["realised_rate"] == 50 / 400
    assert sum(map(sum, report["transition_counts"])) == 400
    with pytest.raises(ValueError, match="unknown real-world label set 'aggregate'; allowed: worse"):
        corrupt_labels("human:aggregate", clean, 2, seed=0, label_sets={"worse": worse}, **where)
    with pytest.raises(ValueError, match=r"allowed:  \(data set 'toy2d' has none\)"):
        corrupt_labels("human:worse", clean, 2, seed=0, label_sets={}, **where)
    synthetic = corrupt_labels("symmetric:0.2", clean, 2, seed=0, label_sets={}, **where)
    assert torch.equal(synthetic.labels, make_noise("symmetric:0.2", clean, 2, seed=0).labels)
