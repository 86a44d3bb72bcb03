"""A plan's report: the decision, then the mixtures, the held-out runs, the response around the
recommendation, the optima at the budget and the mixture over budgets."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .figures import decision_text, plan_figures
from .page import write_report

__all__ = ["plan_report"]


def plan_report(path: str | os.PathLike[str], plan: Mapping[str, Any], model: Any = None,
                sweep: pd.DataFrame | None = None, scale: Any = None, unique_tokens: Any = None,
                ot: Any = None, force: bool = False) -> list[Path]:
    """Write the report of ``plan`` (its document, :meth:`mixplan.mixture.plan.Plan.to_dict`) to ``path``;
    ``model`` (the fitted :class:`~mixplan.models.mixture_model.MixtureModel`) adds the held-out runs and
    the response figures, ``sweep`` (the budget sweep's table) the mixture over budgets, ``scale`` (the
    plan's :class:`~mixplan.mixture.scale.AtScaleModel`, with the pools' ``unique_tokens``) the response
    at the target budget, where the plan decides; ``ot`` (the plan's OT extrapolator) its predictions
    against size."""
    predict, where = None, "at the proxy scale"
    if scale is not None and plan.get("target_tokens") is not None:
        tokens = float(plan["target_tokens"])

        def at_target(W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
            rows = scale.predict(W, tokens, unique_tokens)
            return tuple(np.array([r[k] for r in rows]) for k in ("prediction", "lower", "upper"))  # type: ignore

        predict, where = at_target, "at the target budget"
    decision, facts = decision_text(plan)
    title = f"Mixture plan: {plan['objective']['spec']}"
    return write_report(path, title, decision, facts, plan_figures(plan, model, sweep, predict, where, ot),
                        force=force)
