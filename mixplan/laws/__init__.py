"""Scaling, data-constrained and quality-quantity laws: pure functions, a fitter, fitted results.

Formulas, constants and their sources: each module's docstring, which cites the paper (authors,
year, arXiv id) and, for what comes from the authors' code, the public repository and file.
"""

from .chinchilla import CHINCHILLA, PUBLISHED, chinchilla_loss, compute_optimal
from .data_constrained import (DATABLATIONS, data_constrained_law, data_constrained_loss, effective_data,
                               effective_params, optimal_allocation)
from .dcpt import DCPT_RATIOS, dcpt_derivatives, dcpt_law, dcpt_loss, design_violations, fit_dcpt
from .fitting import Law, LawFit, fit_law, parse_delta, read_law_fit
from .hyperparameters import deepseek, step_law
from .mixture import (mixture_additive_law, mixture_additive_loss, mixture_effective_law, mixture_effective_loss,
                      mixture_joint_law, mixture_joint_loss, pool_effective_tokens)
from .synthetic import SYNTHETIC, doubling_gain, plateau_tokens, rectified_loss
from .transfer import ScaleTransfer, choose_across_scales, fit_across_scales
from .qqt import (QQT_NORMALIZER, QQT_OBJECTIVES, QQT_PUBLISHED, QQT_SOURCE, QQTBestUnion, qqt_best_union,
                  qqt_decayed_utility, qqt_effective_data_error, qqt_effective_samples, qqt_error, qqt_law,
                  qqt_union_error)

__all__ = ["Law", "LawFit", "fit_law", "parse_delta", "read_law_fit", "CHINCHILLA", "PUBLISHED", "chinchilla_loss", "compute_optimal",
           "DATABLATIONS", "data_constrained_law", "data_constrained_loss", "effective_data", "effective_params",
           "optimal_allocation", "step_law", "deepseek",
           "QQT_NORMALIZER", "QQT_OBJECTIVES", "QQT_PUBLISHED", "QQT_SOURCE", "QQTBestUnion", "qqt_best_union",
           "qqt_decayed_utility", "qqt_effective_data_error", "qqt_effective_samples", "qqt_error", "qqt_law",
           "qqt_union_error",
           "mixture_additive_law", "mixture_additive_loss", "mixture_joint_law", "mixture_joint_loss",
           "mixture_effective_law", "mixture_effective_loss",
           "pool_effective_tokens", "ScaleTransfer", "fit_across_scales", "choose_across_scales",
           "DCPT_RATIOS", "dcpt_loss", "dcpt_derivatives", "dcpt_law", "fit_dcpt", "design_violations",
           "SYNTHETIC", "rectified_loss", "doubling_gain", "plateau_tokens"]
