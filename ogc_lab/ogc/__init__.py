"""Optimized Gradient Clipping (OGC): base losses, the transformed loss, the 2-GMM, r(tau), the tau solve,
the controller, the loss module and its settings, one concept a module (docs/architecture.md maps them);
the public names.
"""

from __future__ import annotations

from .base import BASE_LOSSES, H_MAX, H_MIN, P_MAX, P_MIN, BaseLoss, TauLike, base_loss
from .controller import GMM_FITTERS, MIN_QUEUE_SIZE, TAU_SEARCHES, ThresholdController
from .loss import OGCLoss
from .mixture import GMM1D, GMM_INITS, fit_gmm_sklearn, fit_gmm_torch
from .ratio import RATIO_METHODS, ratio_exact, ratio_grid
from .reference import reference_tau
from .settings import OGC_DEFAULTS, OGCSettings
from .solve import solve_tau
from .transformed import (
    REDUCTIONS,
    Threshold,
    check_batch,
    clipped_loss_of_p,
    label_log_prob,
    label_prob,
    reduce_loss,
    transformed_loss,
)

__all__ = [
    "BASE_LOSSES",
    "GMM1D",
    "GMM_FITTERS",
    "GMM_INITS",
    "H_MAX",
    "H_MIN",
    "MIN_QUEUE_SIZE",
    "OGC_DEFAULTS",
    "P_MAX",
    "P_MIN",
    "RATIO_METHODS",
    "REDUCTIONS",
    "TAU_SEARCHES",
    "BaseLoss",
    "OGCLoss",
    "OGCSettings",
    "TauLike",
    "Threshold",
    "ThresholdController",
    "base_loss",
    "check_batch",
    "clipped_loss_of_p",
    "fit_gmm_sklearn",
    "fit_gmm_torch",
    "label_log_prob",
    "label_prob",
    "ratio_exact",
    "ratio_grid",
    "reduce_loss",
    "reference_tau",
    "solve_tau",
    "transformed_loss",
]
