"""The reports of the other results: a fitted model, a filter plan, a continual-pretraining plan, a law
fit and a design. Each is the result's opening sentence and facts, then its figures
(:mod:`mixplan.report.figures`), written by :func:`mixplan.report.page.write_report`."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from . import figures as F
from .page import write_report

__all__ = ["cpt_report", "design_report", "filter_report", "fit_report", "law_report", "ot_fit_report",
           "ot_select_report"]


def fit_report(path: str | os.PathLike[str], model: Any, force: bool = False) -> list[Path]:
    """A fitted :class:`~mixplan.models.mixture_model.MixtureModel`: candidates held out, stack, isolation."""
    head, facts = F.fit_decision(model)
    return write_report(path, f"Model fit: {model.objective.spec}", head, facts, F.fit_figures(model), force=force)


def filter_report(path: str | os.PathLike[str], plan: Mapping[str, Any], curve: pd.DataFrame,
                  force: bool = False) -> list[Path]:
    """A filter plan's document and its curve table (``filter.json``, ``curve.csv``)."""
    head, facts = F.filter_decision(plan)
    return write_report(path, f"Quality filtering: pool {plan['pool']}", head, facts, F.filter_figures(plan, curve),
                        force=force)


def cpt_report(path: str | os.PathLike[str], plan: Mapping[str, Any], force: bool = False) -> list[Path]:
    """A continual-pretraining plan's document (``cpt plan --out PLAN.json``)."""
    head, facts = F.cpt_decision(plan)
    return write_report(path, "Continual pretraining: the domain share", head, facts, F.cpt_figures(plan),
                        force=force)


def law_report(path: str | os.PathLike[str], fit: Mapping[str, Any], measured: np.ndarray, predicted: np.ndarray,
               data: Mapping[str, Any], target: str, force: bool = False) -> list[Path]:
    """A law fit's document, its points (measured and by the law) and their columns."""
    head, facts, tables = F.law_decision(fit, target)
    return write_report(path, f"Law fit: {fit['law']}", head, facts,
                        F.law_figures(fit, measured, predicted, data, target), force=force, tables=tables)


def design_report(path: str | os.PathLike[str], frame: pd.DataFrame, pools: Sequence[str],
                  upper: Mapping[str, float] | None = None, force: bool = False) -> list[Path]:
    """A design's mixtures (``mixtures.csv``), with the pools' caps at its budget when known."""
    figs = F.design_figures(frame, list(pools), upper)
    return write_report(path, f"Proxy-run design: {len(frame)} runs", figs[0].title, [f"pools: {', '.join(pools)}"],
                        figs, force=force)


def ot_fit_report(path: str | os.PathLike[str], ot: Any, target: str = "metric", force: bool = False) -> list[Path]:
    """A fitted :class:`~mixplan.transport.extrapolator.OTExtrapolator` of the objective ``target``: stage 1
    per size, the metric against the OT distance."""
    head, facts = F.ot_fit_decision(ot)
    return write_report(path, f"OT extrapolator: {target}", head, facts, F.ot_fit_figures(ot, target), force=force)


def ot_select_report(path: str | os.PathLike[str], ot: Any, selection: Any, target: str = "metric",
                     maximize: bool = False, token_share: Mapping[str, float] | None = None,
                     force: bool = False) -> list[Path]:
    """An OT selection: the chosen mixture against simple ones under the extrapolator, and the search."""
    p = selection.prediction.row(0)
    weights = ", ".join(f"{n} {w:.3g}" for n, w in sorted(zip(ot.pools_, selection.weights), key=lambda x: -x[1])
                        if w >= 5e-4)
    head = (f"Train on {weights}. The OT extrapolator predicts {target} {p['prediction']:.4g} "
            f"({p['level']:.0%} interval {p['lower']:.4g} to {p['upper']:.4g}) at {selection.prediction.tokens:.3g}.")
    facts = [f"nearest proxy run {p['nearest_run']} at total-variation distance {p['nearest_distance']:.3f}",
             f"OT distance {p['ot']:.4g}"]
    return write_report(path, f"OT selection: {target}", head, facts,
                        F.ot_select_figures(ot, selection, target, maximize, token_share), force=force)
