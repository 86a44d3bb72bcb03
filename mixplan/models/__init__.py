"""Models of a metric over mixtures: the regressor families (GP, LightGBM/RegMix, ridge, Data Mixing
Laws), cross-validation and stacking, conformal intervals, and the multi-target model.

Public names are imported on first use."""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "GaussianProcess": ".gp", "fit_gp": ".gp", "neg_log_marginal_likelihood": ".gp", "matern52": ".gp",
    "MixingLaw": ".mixing_law", "fit_mixing_law": ".mixing_law",
    "MixtureRegressor": ".regressor", "PRESETS": ".regressor", "CVReport": ".regressor",
    "cross_validate": ".regressor", "stack_weights": ".regressor", "cv_report": ".regressor",
    "DEFAULT_LEVEL": ".intervals", "COVERAGE_QUANTILE": ".intervals", "conformal_quantile": ".intervals",
    "nearest_run": ".intervals", "coverage_radius_of": ".intervals", "MixtureModel": ".mixture_model",
    "Prediction": ".mixture_model", "fit_model": ".mixture_model", "load_model": ".mixture_model",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
