"""The optimal-transport extrapolator (Projektor): features of revealed samples, OT distances, the
two-stage extrapolator and its study files.

Public names are imported on first use."""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "OTConvergenceWarning": ".distance", "OTResult": ".distance", "cost_matrix": ".distance",
    "mixture_measure": ".distance", "ot_distance": ".distance", "ot_gradient": ".distance",
    "pool_directions": ".distance", "FORMAT_VERSION": ".features", "MissingDependencyError": ".features",
    "SentenceEmbedder": ".features", "TextFeaturizer": ".features", "load_featurizer": ".features",
    "load_vectors": ".features", "make_featurizer": ".features", "OTExtrapolator": ".extrapolator",
    "OTPrediction": ".extrapolator", "Selection": ".extrapolator", "stage1_features": ".extrapolator",
    "size_weight": ".extrapolator", "interpolate_sizes": ".extrapolator", "load_extrapolator": ".extrapolator",
    "extrapolation_notes": ".extrapolator", "Samples": ".study", "check_per_pool": ".study",
    "read_samples": ".study", "fit_ot_study": ".study", "load_ot_study": ".study", "study_files": ".study",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
