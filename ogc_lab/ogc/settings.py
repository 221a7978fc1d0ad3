"""OGC's own three settings and the target ratio they give: one owner for the paper's defaults.

The controller, the loss module, the run config, the cost measurements and the benchmarks take their
defaults from ``OGC_DEFAULTS`` and compute the target with ``OGCSettings.target``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class OGCSettings:
    """epsilon (the target's slope in lr), s (steps between refits) and q (queue size); defaults: the paper's."""

    epsilon: float = 20.0  # the noisy/clean gradient ratio aimed for is 1 + lr * epsilon
    interval: int = 32  # s: training steps between mixture refits
    queue_size: int = 4096  # q: recent values of H = -log p the mixture is fitted to

    def target(self, lr: float) -> float:
        """The noisy/clean gradient ratio OGC aims for at learning rate ``lr``: 1 + lr * epsilon."""
        return 1.0 + lr * self.epsilon


OGC_DEFAULTS = OGCSettings()
