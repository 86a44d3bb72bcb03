"""Continual pretraining: the domain:general ratio from the D-CPT law (Usage 1 and Usage 2).

Public names are imported on first use."""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "LossFit": ".planner", "CPTFit": ".planner", "fit_cpt": ".planner", "predict_losses": ".planner",
    "usage1_ratio": ".planner", "usage2_ratio": ".planner", "CPTPlan": ".planner", "plan_cpt": ".planner",
    "plan_evidence": ".planner", "measured_crossing": ".planner",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
