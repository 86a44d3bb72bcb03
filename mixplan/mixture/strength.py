"""The plan's prior strength chosen by cross-validated regret (``--prior-strength auto``): the folds, refits,
optima and judges of :func:`mixplan.mixture.prior.choose_strength`, for :func:`mixplan.mixture.plan.make_plan`."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..models.regressor import fold_tasks
from .plan import make_plan
from .prior import CV_FOLDS, CV_REPEATS, DEFAULT_GRID, JUDGE_MODEL, StrengthCurve, choose_strength

__all__ = ["choose_plan_strength"]


def choose_plan_strength(runs: Any, model: Any, pools: Any, fit: Callable[[Any, str | None], Any], *,
                         judge_model: str = JUDGE_MODEL, grid: Sequence[float] = DEFAULT_GRID,
                         **plan_options: Any) -> StrengthCurve:
    """:func:`~mixplan.mixture.prior.choose_strength` for a plan (as that module's docstring says): folds of
    ``runs`` (``CV_FOLDS`` x ``CV_REPEATS``, drawn with the plan's ``seed``), the optimum of
    :func:`~mixplan.mixture.plan.make_plan` (with ``plan_options``) for each strength from ``fit(fold_runs, None)``
    (the plan's model refitted), judged by ``fit(held_out_runs, judge_model)``. ``model`` is the plan's model on
    every run (its objective and training values)."""
    objective = model.objective

    def subset(idx: np.ndarray) -> Any:
        mask = np.zeros(len(runs), dtype=bool)
        mask[idx] = True
        return runs.subset(mask)

    def optimise(train: np.ndarray, g: np.ndarray) -> np.ndarray:
        refit = fit(subset(train), None)
        plans = (make_plan(refit, pools, prior_strength=float(v), **plan_options) for v in g)
        return np.array([[p.recommended[n] for n in pools.names] for p in plans])

    def judge(test: np.ndarray, W: np.ndarray) -> np.ndarray:
        return objective.score(fit(subset(test), judge_model).predict_mean(W))

    seed = int(plan_options.get("seed", 0))
    folds = [(train, test) for _, train, test in fold_tasks(len(runs), CV_FOLDS, CV_REPEATS, seed)]
    return choose_strength(folds, objective.score(model.train_y), optimise, judge, grid=grid,
                           judge_name=f"the {judge_model!r} model")
