"""The data behind each figure of a report: plain tables built from a result (a plan's document, its
model), one function per figure, no drawing (as optuna splits its plots). A :class:`Figure` names what
it shows, states its finding in its title, carries alt text for a screen reader, and holds the table
that :mod:`mixplan.report.render` draws and the report writes beside itself as CSV.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

__all__ = ["Figure", "plan_figures"]


@dataclass(frozen=True)
class Figure:
    """One figure: ``kind`` (the renderer that draws it), ``data`` (its table), labels and text."""

    id: str
    kind: str
    title: str  # the finding, in a sentence
    alt: str  # what the figure shows, for a screen reader (and for anyone, below it)
    data: pd.DataFrame
    spec: Mapping[str, Any] = field(default_factory=dict)  # axis labels, reference lines, ...


def _metric_label(plan: Mapping[str, Any]) -> str:
    obj = plan["objective"]
    return f"{obj['spec']} ({'higher' if obj['maximize'] else 'lower'} is better)"


def _headline(entry: Mapping[str, Any]) -> tuple[float, float | None, float | None, str]:
    """The prediction a decision rests on (as :func:`mixplan.mixture.plan.headline`, from a document)."""
    for key, value in (("at_scale", "prediction"), ("at_budget", "objective")):
        if key in entry:
            a = entry[key]
            return a[value], a.get("lower"), a.get("upper"), "at the target budget"
    return entry["prediction"], entry["lower"], entry["upper"], "at the proxy scale"


def mixtures_figure(plan: Mapping[str, Any]) -> Figure:
    """The recommended mixture beside the alternatives: weights per pool, the prediction each rests on
    with its interval, and P(recommended better)."""
    pools = list(plan["pools"])
    rows = []
    for name, m in plan["mixtures"].items():
        pred, lo, hi, where = _headline(m)
        rows.append({"mixture": name, **{f"w_{p}": m["weights"][p] for p in pools}, "prediction": pred,
                     "lower": lo, "upper": hi, "where": where, "p_recommended_better": m.get("p_recommended_better")})
    data = pd.DataFrame(rows)
    rec = data.iloc[0]
    others = data.iloc[1:]
    sure = others.dropna(subset=["p_recommended_better"])
    weakest = sure.loc[sure["p_recommended_better"].idxmin()] if len(sure) else None
    interval = "" if rec["lower"] is None or pd.isna(rec["lower"]) else f" [{rec['lower']:.4g}, {rec['upper']:.4g}]"
    title = (f"Recommended: {plan['objective']['spec']} {rec['prediction']:.4g}{interval} {rec['where']}"
             + ("" if weakest is None else f"; closest alternative {weakest['mixture']} "
                f"(P(recommended better) {weakest['p_recommended_better']:.2f})"))
    top = ", ".join(f"{p} {rec['w_' + p]:.2f}" for p in sorted(pools, key=lambda p: -rec[f"w_{p}"])[:3])
    alt = (f"Left: each mixture's weights per pool as stacked bars ({len(data)} mixtures: {', '.join(data['mixture'])}). "
           f"The recommended mixture puts most weight on {top}. "
           f"Right: each mixture's predicted {plan['objective']['spec']} with its {plan['mixtures']['recommended']['level']:.0%} "
           "interval.")
    return Figure("mixtures", "mixtures", title, alt, data,
                  {"pools": pools, "metric": _metric_label(plan), "maximize": plan["objective"]["maximize"]})


def cv_figure(model: Any, level: float) -> Figure:
    """Out-of-fold predictions against the measured objective of every proxy run, with the band that
    holds ``level`` of them (the conformal half-width of the residuals)."""
    y = np.asarray(model.train_y, dtype=float)
    oof = np.asarray(sum(c * t.cv.oof for c, t in zip(model.objective.coefficients, model.targets)), dtype=float)
    pred = oof.mean(axis=0) if oof.ndim == 2 else oof
    half = float(np.quantile(np.abs(y[None, :] - np.atleast_2d(oof)).ravel(), level))
    inside = float(np.mean(np.abs(y - pred) <= half))
    rho = model.cv.get("spearman")
    data = pd.DataFrame({"run_id": model.train_ids, "measured": y, "predicted_out_of_fold": pred})
    title = (f"Held-out runs: Spearman {rho:.3f}; {inside:.0%} of the runs lie within the ±{half:.3g} band "
             f"({level:.0%} of the out-of-fold errors)")
    alt = (f"Scatter of {len(y)} proxy runs: measured {model.objective.spec} against the model's prediction for it "
           f"when the run was held out; the diagonal is a perfect prediction, the band ±{half:.3g} around it.")
    return Figure("cv", "scatter_band", title, alt, data,
                  {"x": "measured", "y": "predicted_out_of_fold", "half": half, "label": model.objective.spec})


Predictor = Callable[[np.ndarray], "tuple[np.ndarray, np.ndarray, np.ndarray]"]


def proxy_predictor(model: Any, level: float) -> Predictor:
    """The model's prediction and interval at the proxy runs' scale, as (mean, lower, upper)."""
    def predict(W: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        p = model.predict(W, level=level)
        return p.mean, p.lower, p.upper

    return predict


def response_figure(model: Any, plan: Mapping[str, Any], level: float, steps: int = 21,
                    predict: Predictor | None = None, where: str = "at the proxy scale") -> Figure:
    """Around the recommended mixture, one pool's weight moved from 0 to its cap (the others scaled to
    keep the sum): the predicted objective with its interval, per pool (partial dependence). ``predict``
    (W -> mean, lower, upper) is the plan's own prediction ``where`` it decides (default: the model's
    at the proxy scale)."""
    predict = predict or proxy_predictor(model, level)
    pools = list(plan["pools"])
    rec = np.array([plan["mixtures"]["recommended"]["weights"][p] for p in pools], dtype=float)
    rows = []
    for i, p in enumerate(pools):
        cap = float(plan["constraints"][p]["upper"]) if p in plan.get("constraints", {}) else 1.0
        grid = np.unique(np.concatenate([np.linspace(0.0, max(cap, 1e-9), steps), [rec[i]]]))
        rest = 1.0 - rec[i]
        W = np.tile(rec, (len(grid), 1))
        for k, t in enumerate(grid):
            W[k] = rec * ((1 - t) / rest) if rest > 1e-12 else (1 - t) / (len(pools) - 1)
            W[k, i] = t
        mean, lower, upper = predict(W)
        rows += [{"pool": p, "weight": float(t), "prediction": float(m), "lower": float(lo), "upper": float(hi),
                  "recommended": bool(np.isclose(t, rec[i]))}
                 for t, m, lo, hi in zip(grid, mean, lower, upper)]
    data = pd.DataFrame(rows)
    spread = data.groupby("pool")["prediction"].agg(lambda s: s.max() - s.min()).sort_values(ascending=False)
    title = (f"Around the recommended mixture, {spread.index[0]} moves the predicted {model.objective.spec} most "
             f"(by {spread.iloc[0]:.3g} from 0 to its cap, {where})")
    alt = (f"One panel per pool: the predicted {model.objective.spec} {where} (line) and its {level:.0%} interval (band) as "
           "that "
           "pool's weight goes from 0 to its cap with the other pools scaled in proportion; the dot marks the "
           "recommended weight.")
    return Figure("response", "response", title, alt, data, {"metric": _metric_label(plan), "pools": pools})


def optima_figure(plan: Mapping[str, Any]) -> Figure | None:
    """With a target budget: the optima the plan weighs (recommended, blind to repetition, within hard
    epoch caps, ...) and the epochs each reads every pool."""
    if plan.get("target_tokens") is None:
        return None
    names = [n for n in ("recommended", "repetition_blind", "proxy_scale", "hard_cap", "repetition_aware")
             if n in plan["mixtures"] and "epochs" in plan["mixtures"][n]]
    rows = [{"mixture": n, "pool": p, "weight": plan["mixtures"][n]["weights"][p],
             "epochs": plan["mixtures"][n]["epochs"][p]} for n in names for p in plan["pools"]]
    data = pd.DataFrame(rows)
    rec = data[data["mixture"] == "recommended"].set_index("pool")["epochs"]
    most = rec.idxmax()
    unit = plan.get("token_unit", "tokens")
    title = (f"At {plan['target_tokens']:.3g} {unit}, the recommended mixture reads {most} {rec[most]:.2f} times"
             + (f"; {len(names) - 1} other optima shown" if len(names) > 1 else ""))
    alt = (f"Top: the weight of each pool in {', '.join(names)}. Bottom: how many times each of those mixtures reads each "
           f"pool at the target budget of {plan['target_tokens']:.3g} {unit} (epochs; 1 = every token once).")
    return Figure("optima", "optima", title, alt, data, {"mixtures": names, "pools": list(plan["pools"])})


def sweep_figure(plan: Mapping[str, Any], sweep: pd.DataFrame | None) -> Figure | None:
    """With --budget-range: the recommended mixture as a stacked area over the target budget."""
    if sweep is None or not len(sweep):
        return None
    pools = list(plan["pools"])
    data = sweep[["tokens", *[f"w_{p}" for p in pools], "prediction"]].copy()
    first, last = data.iloc[0], data.iloc[-1]
    moved = max(pools, key=lambda p: abs(last[f"w_{p}"] - first[f"w_{p}"]))
    unit = plan.get("token_unit", "tokens")
    title = (f"As the budget grows from {first['tokens']:.3g} to {last['tokens']:.3g} {unit}, {moved} goes from "
             f"{first[f'w_{moved}']:.2f} to {last[f'w_{moved}']:.2f} of the mixture")
    alt = (f"Stacked areas: the recommended weight of each of the {len(pools)} pools (summing to 1) at {len(data)} target "
           f"budgets from {first['tokens']:.3g} to {last['tokens']:.3g} {unit}, on a log axis.")
    return Figure("budget_sweep", "stacked_area", title, alt, data, {"pools": pools, "unit": unit})


def plan_figures(plan: Mapping[str, Any], model: Any = None, sweep: pd.DataFrame | None = None,
                 predict: Predictor | None = None, where: str = "at the proxy scale") -> list[Figure]:
    """Every figure a plan's report shows, in order; those that need the model are left out without it.
    ``predict``/``where``: the plan's prediction at the target budget for the response figure (else the
    model's at the proxy scale)."""
    level = float(plan["mixtures"]["recommended"].get("level", 0.9))
    figs: list[Figure | None] = [mixtures_figure(plan)]
    if model is not None:
        figs += [cv_figure(model, level), response_figure(model, plan, level, predict=predict, where=where)]
    figs += [optima_figure(plan), sweep_figure(plan, sweep)]
    return [f for f in figs if f is not None]


def decision_text(plan: Mapping[str, Any]) -> tuple[str, list[str]]:
    """The report's opening: the decision in a sentence, and the facts a reader checks first."""
    rec = plan["mixtures"]["recommended"]
    pred, lo, hi, where = _headline(rec)
    weights = ", ".join(f"{p} {w:.3g}" for p, w in sorted(rec["weights"].items(), key=lambda kv: -kv[1]) if w >= 5e-4)
    interval = "" if lo is None else f" ({rec['level']:.0%} interval {lo:.4g} to {hi:.4g})"
    head = f"Train on {weights}. Predicted {plan['objective']['spec']} {pred:.4g}{interval} {where}."
    facts = [f"model: {plan['cv']['model']}, cross-validated on {plan['cv']['n_runs']} proxy runs "
             f"(Spearman {plan['cv']['spearman']:.3f}, MAE {plan['cv']['mae']:.3g})",
             f"nearest proxy run {rec['nearest_run']} at total-variation distance {rec['nearest_distance']:.3f}"
             + ("" if rec["covered"] else " - outside the region the runs cover: an extrapolation")]
    if plan.get("target_tokens") is not None:
        facts.append(f"target budget {plan['target_tokens']:.4g} {plan.get('token_unit', 'tokens')}")
    facts += [f"warning: {w}" for w in plan.get("warnings", [])]
    return head, facts
