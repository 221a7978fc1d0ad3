"""ogc_lab.hardware: the amp decision per machine, and OGC's numbers under bf16 autocast."""

from __future__ import annotations

import pytest
import torch

from ogc_lab import hardware
from ogc_lab.losses import make_loss
from ogc_lab.models import make_model
from ogc_lab.ogc import transformed_loss
from ogc_lab.recipes import Config

CPU = torch.device("cpu")


CIFAR, DIGITS, VECTORS = (3, 32, 32), (1, 8, 8), (2,)


@pytest.mark.parametrize("native", [True, False])
def test_auto_amp_follows_the_cpus_native_bf16(monkeypatch: pytest.MonkeyPatch, native: bool) -> None:
    monkeypatch.setattr(hardware, "cpu_has_native_bf16", lambda: native)
    on, why = hardware.resolve_amp("auto", CPU, CIFAR)
    assert on is native and why.startswith("bf16 (auto)" if native else "off (auto)")
    assert hardware.resolve_amp("auto", CPU, VECTORS)[0] is False  # MLPs on vectors gain nothing
    assert hardware.resolve_amp("auto", CPU, DIGITS)[0] is False  # 8x8 images: overhead-bound, no gain
    assert hardware.resolve_amp("bf16", CPU, VECTORS)[0] is True  # asked for: forced
    assert hardware.resolve_amp("off", CPU, CIFAR) == (False, "off: float32 as asked")
    assert hardware.resolve_amp("bf16", torch.device("mps"), CIFAR)[0] is False


def test_amp_modes_are_checked_and_old_booleans_still_read() -> None:
    with pytest.raises(ValueError, match="unknown amp mode 'fp16'; allowed: auto, bf16, off"):
        hardware.resolve_amp("fp16", CPU, CIFAR)
    with pytest.raises(ValueError, match="unknown amp 'fp16'; allowed: auto, bf16, off"):
        Config(amp="fp16")
    # result.json files written before amp became a mode hold true/false
    assert Config(amp=True).amp == "auto" and Config(amp=False).amp == "off" and Config(amp="BF16").amp == "bf16"


def test_device_name_names_the_processor() -> None:
    assert hardware.device_name(CPU) == f"cpu ({hardware.cpu_name()})" and hardware.cpu_name()


def test_the_step_under_bf16_autocast_keeps_the_loss_and_the_queue_float32() -> None:
    """The trainer casts the logits before the loss: OGC's H queue, tau and loss stay float32 (or wider)."""
    torch.manual_seed(0)
    model = make_model("cnn8", 10, (3, 32, 32)).to(memory_format=torch.channels_last)
    loss_fn = make_loss("ce+ogc", 10, interval=1, queue_size=16)
    x = torch.randn(16, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    with hardware.autocast(CPU, True):
        logits = model(x)
    assert logits.dtype == torch.bfloat16
    loss = loss_fn(logits.float(), torch.arange(16) % 10, lr=0.1)
    loss.backward()
    state = loss_fn.controller.state_dict()
    assert loss.dtype == torch.float32 and state["queue"].dtype in (torch.float32, torch.float64)  # never bf16
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())


def _cifar_like_logits(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits whose labels are 60% right (margin about 4) and 40% wrong (H about 4-6), as late in training."""
    gen = torch.Generator().manual_seed(seed)
    truth = torch.randint(0, 10, (n,), generator=gen)
    logits = torch.randn(n, 10, generator=gen)
    logits[torch.arange(n), truth] += 4.0 + torch.randn(n, generator=gen)
    flip = torch.rand(n, generator=gen) < 0.4
    labels = torch.where(flip, (truth + torch.randint(1, 10, (n,), generator=gen)) % 10, truth)
    return logits, labels


def _tau_after_a_full_queue(logits: torch.Tensor, labels: torch.Tensor) -> float:
    loss_fn = make_loss("ce+ogc", 10, seed=0)  # the default interval and queue size (OGC_DEFAULTS)
    for chunk in torch.arange(len(labels)).split(128):
        loss_fn(logits[chunk], labels[chunk], lr=0.1)
    return float(loss_fn.tau)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_transformed_loss_and_tau_from_bf16_logits_match_float32(seed: int) -> None:
    """bf16 keeps 8 significant bits, so logits of size ~6 move by up to ~0.03 (2^-8 relative).

    Stated tolerances: the transformed CE moves by at most 0.03 a sample (measured: 0.018; it moves
    by at most the largest logit change times 2), and the solved tau (a fit of 4096 H values) by at
    most 0.1 % (measured: 6e-5 relative on these three seeds).
    """
    logits, labels = _cifar_like_logits(4096, seed)
    rounded = logits.bfloat16().float()
    for tau in (1.5, 4.0, 50.0):
        exact = transformed_loss(logits, labels, tau, "ce", reduction="none")
        bf16 = transformed_loss(rounded, labels, tau, "ce", reduction="none")
        assert float((exact - bf16).abs().max()) <= 0.03
    tau_exact, tau_bf16 = _tau_after_a_full_queue(logits, labels), _tau_after_a_full_queue(rounded, labels)
    assert 1.0 < tau_exact < 1e4  # the mixture separates: a real clipping threshold, not a boundary case
    assert tau_bf16 == pytest.approx(tau_exact, rel=1e-3)


@pytest.mark.parametrize("device, bf16, shape, expected", [
    ("cpu", False, (3, 32, 32), True),    # CIFAR-sized float32 on a CPU: measured faster channels_last
    ("cpu", False, (1, 8, 8), False),     # the digits stay contiguous
    ("cpu", False, (2,), False),          # not an image
    ("cpu", True, (1, 8, 8), True),       # bf16 autocast: oneDNN's matrix units want channels_last
    ("meta", False, (3, 32, 32), False),  # neither CUDA nor a CPU
])
def test_channels_last_rule(device: str, bf16: bool, shape: tuple[int, ...], expected: bool) -> None:
    from ogc_lab.hardware import wants_channels_last

    assert wants_channels_last(torch.device(device), bf16, shape) is expected
