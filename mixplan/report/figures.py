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
    """The objective as an axis label: its spec, its unit when the name says it, and which way is better."""
    obj = plan["objective"]
    unit = "bits per byte, " if "bpb" in obj["spec"].lower() else ""
    return f"{obj['spec']} ({unit}{'higher' if obj['maximize'] else 'lower'} is better)"


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
    first = {"ot_selected": "OT-selected"}.get(str(rec["mixture"]), str(rec["mixture"]).replace("_", " "))
    title = (f"{first[:1].upper() + first[1:]}: {plan['objective']['spec']} {rec['prediction']:.4g}{interval} "
             f"{rec['where']}"
             + ("" if weakest is None else f"; closest alternative {weakest['mixture']} "
                f"(P(recommended better) {weakest['p_recommended_better']:.2f})"))
    top = ", ".join(f"{p} {rec['w_' + p]:.2f}" for p in sorted(pools, key=lambda p: -rec[f"w_{p}"])[:3])
    alt = (f"Left: each mixture's weights per pool as stacked bars ({len(data)} mixtures: {', '.join(data['mixture'])}). "
           f"The {first} mixture puts most weight on {top}. "
           f"Right: each mixture's predicted {plan['objective']['spec']} with its "
           f"{next(iter(plan['mixtures'].values()))['level']:.0%} interval.")
    return Figure("mixtures", "mixtures", title, alt, data,
                  {"pools": pools, "metric": _metric_label(plan), "maximize": plan["objective"]["maximize"]})


def cv_figure(model: Any, level: float) -> Figure:
    """Out-of-fold predictions against the measured objective of every proxy run, with the band that
    holds ``level`` of them (the conformal half-width of the residuals)."""
    y = np.asarray(model.train_y, dtype=float)
    oof = np.asarray(sum(c * t.cv.oof for c, t in zip(model.coefficients, model.targets)), dtype=float)
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
    # (the short name on the small panels' axes; the unit and direction are in the alt text)
    alt += f" {_metric_label(plan)}."
    return Figure("response", "response", title, alt, data, {"metric": plan["objective"]["spec"], "pools": pools})


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
                 predict: Predictor | None = None, where: str = "at the proxy scale", ot: Any = None) -> list[Figure]:
    """Every figure a plan's report shows, in order; those that need the model are left out without it.
    ``predict``/``where``: the plan's prediction at the target budget for the response figure (else the
    model's at the proxy scale); ``ot``: the plan's OT extrapolator (predictions against size)."""
    level = float(plan["mixtures"]["recommended"].get("level", 0.9))
    figs: list[Figure | None] = [mixtures_figure(plan)]
    if model is not None:
        figs += [cv_figure(model, level), response_figure(model, plan, level, predict=predict, where=where)]
    figs += [optima_figure(plan), sweep_figure(plan, sweep), None if ot is None else ot_figure(plan, ot)]
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


def _long(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Rows for the ``lines`` renderer, with every column it reads."""
    frame = pd.DataFrame(rows)
    for col, default in (("lower", np.nan), ("upper", np.nan), ("point", False)):
        if col not in frame.columns:
            frame[col] = default
    frame["point"] = frame["point"].fillna(False).astype(bool)
    return frame[["panel", "series", "x", "y", "lower", "upper", "point"]]


def filter_figures(plan: Mapping[str, Any], curve: pd.DataFrame) -> list[Figure]:
    """A filter plan (:meth:`mixplan.filtering.planner.FilterPlan.to_dict` and its ``curve_table``): the
    predicted metric of every keep choice over the budget, with intervals, the crossovers marked."""
    rows = [{"panel": "metric", "series": c, "x": b, "y": p, "lower": lo, "upper": hi}
            for c, b, p, lo, hi in zip(curve["choice"], curve["budget"], curve["predicted"], curve["lower"],
                                       curve["upper"])]
    cross = plan.get("crossovers", [])
    unit = plan.get("unit", "tokens")
    best = plan["budgets"]
    title = (f"Pool {plan['pool']}: keep {best[0]['best']} at {best[0]['budget']:.3g} {unit}, "
             f"{best[-1]['best']} at {best[-1]['budget']:.3g}"
             + (f"; the choice changes {len(cross)} time{'s' if len(cross) > 1 else ''}, first at about "
                f"{cross[0]['refined']:.3g}" if cross else "; the same choice at every budget"))
    alt = (f"Predicted {plan['objective']} (lower is better) against the budget ({unit}, log scale) for each keep choice "
           f"({', '.join(plan['choices'])}), with {plan['level']:.0%} intervals where fitted; dashed lines mark where "
           "the best choice changes.")
    spec = {"xlabel": f"budget ({unit}, log scale)", "ylabels": {"metric": f"predicted {plan['objective']}"},
            "logx": True, "vlines": [{"x": c["refined"], "label": f"{c['from']} -> {c['to']}"} for c in cross]}
    return [Figure("filter", "lines", title, alt, _long(rows), spec)]


def filter_decision(plan: Mapping[str, Any]) -> tuple[str, list[str]]:
    unit = plan.get("unit", "tokens")
    first, last = plan["budgets"][0], plan["budgets"][-1]
    head = (f"Pool {plan['pool']} (bucketed by {plan['score']}): keep {first['best']} at {first['budget']:.4g} {unit} "
            f"and {last['best']} at {last['budget']:.4g} {unit}.")
    facts = [f"parameters: {plan['params_source']}"] + [
        f"{c['from']} -> {c['to']} at about {c['refined']:.4g} {unit}" for c in plan.get("crossovers", [])]
    return head, facts + [f"note: {n}" for n in plan.get("notes", [])]


def cpt_figures(plan: Mapping[str, Any]) -> list[Figure]:
    """A continual-pretraining plan (:meth:`mixplan.cpt.planner.CPTPlan.to_dict`): general and domain loss
    against the domain share at the planned budget, with intervals, the limit, the chosen share and its
    interval, and the nearest run."""
    t = pd.DataFrame(plan["table"])
    rows = []
    for panel in ("general", "domain"):
        rows += [{"panel": panel, "series": f"{panel} loss (law)", "x": r, "y": y, "lower": lo, "upper": hi}
                 for r, y, lo, hi in zip(t["domain_ratio"], t[f"{panel}_loss"], t[f"{panel}_lower"],
                                         t[f"{panel}_upper"])]
    near = plan.get("evidence", {}).get("nearest_run")
    if near:
        rows += [{"panel": p, "series": f"nearest run ({near['tokens']:.3g} tokens)", "x": near["ratio"], "y": near[p],
                  "point": True} for p in ("general", "domain")]
    s = plan["settings"]
    hlines = []
    if plan["usage"] == 1:
        limit = s["base_general_loss"] * (1 + s["T"]) if s.get("relative") else s["base_general_loss"] + s["T"]
        hlines = [{"panel": "general", "y": limit, "label": f"limit: L_g0 + {'T x L_g0' if s.get('relative') else 'T'}"}]
    r, iv = plan["domain_ratio"], plan["interval"]
    spans = ([] if iv["lower"] is None or iv["upper"] is None else
             [{"lo": iv["lower"], "hi": iv["upper"], "label": f"{iv['level']:.0%} interval of the share"}])
    budget = "" if plan.get("tokens") is None else f" at {plan['tokens']:.3g} tokens"
    title = ("No domain share meets the rule" if r is None else
             f"Domain share {r:.3g}{budget} (interval {iv['lower']:.3g} to {iv['upper']:.3g})"
             if iv["lower"] is not None else f"Domain share {r:.3g}{budget}")
    alt = (f"Left: the general loss, right: the domain loss, as the law predicts them{budget} for domain shares from 0 "
           "to 1, with bands; the dotted line is the limit on the general loss, the shaded span the chosen share's "
           "interval, the dashed line the chosen share; dots are the nearest proxy run.")
    spec = {"xlabel": "domain share of the tokens", "ylabels": {"general": "general loss", "domain": "domain loss"},
            "hlines": hlines, "spans": spans, "vlines": [] if r is None else [{"x": r, "label": f"chosen {r:.3g}"}]}
    return [Figure("cpt", "lines", title, alt, _long(rows), spec)]


def cpt_decision(plan: Mapping[str, Any]) -> tuple[str, list[str]]:
    r, iv = plan["domain_ratio"], plan["interval"]
    head = ("No domain share meets the rule." if r is None else
            f"Continue pretraining with a domain share of {r:.3g} (general {1 - r:.3g})"
            + ("" if iv["lower"] is None else f"; {iv['level']:.0%} interval {iv['lower']:.3g} to {iv['upper']:.3g}")
            + ".")
    return head, [f"warning: {w}" for w in dict.fromkeys(plan.get("warnings", []))]  # both losses' fits may repeat one


def law_figures(fit: Mapping[str, Any], measured: np.ndarray, predicted: np.ndarray, data: Mapping[str, Any],
                target: str) -> list[Figure]:
    """A fitted law (:meth:`mixplan.laws.fitting.LawFit.to_dict`) against its data: measured against the
    law's value at every point, with the band that holds ``level`` of the errors, and the relative
    residuals against the data's first numeric column (tokens or budget), one series per model size."""
    y, p = np.asarray(measured, dtype=float), np.asarray(predicted, dtype=float)
    level = float(fit.get("level", 0.95))
    half = float(np.quantile(np.abs(y - p), level))
    rel = (y - p) / p
    scatter = pd.DataFrame({"measured": y, "law": p, "relative_residual": rel})
    rmse = float(np.sqrt(np.mean(rel ** 2)))
    figs = [Figure("law_fit", "scatter_band",
                   f"The {fit['law']} law meets its {len(y)} points within {100 * rmse:.2g}% (RMSE of relative "
                   f"residuals); {level:.0%} of them within ±{half:.3g}",
                   f"Scatter of the {len(y)} runs: measured {target} against the fitted {fit['law']} law's value at the "
                   f"same point; the diagonal is a perfect fit, the band ±{half:.3g} around it.",
                   scatter, {"x": "measured", "y": "law", "half": half, "label": target, "points": "run",
                             "ylabel": f"{target} by the fitted law"})]
    xcol = next((c for c in ("tokens", "budget", "samples", "params") if c in data), None)
    if xcol is not None:
        sizes = np.asarray(data["params"], dtype=float) if "params" in data and xcol != "params" else None
        order = np.argsort(sizes, kind="stable") if sizes is not None else np.arange(len(rel))  # legend: small first
        labels = _size_labels(sizes, len(rel))
        xs = np.asarray(data[xcol], dtype=float)
        rows = [{"panel": "residual", "series": labels[i], "x": float(xs[i]), "y": float(rel[i]), "point": True}
                for i in order]
        worst = int(np.argmax(np.abs(rel)))
        figs.append(Figure("residuals", "residuals",
                           f"Relative residuals against {xcol}: the largest is {100 * rel[worst]:+.2g}% "
                           f"(at {xcol} {float(np.asarray(data[xcol])[worst]):.3g})",
                           f"Each run's (measured - law) / law in percent against its {xcol} on a log axis"
                           + ("" if sizes is None else ", one colour per model size (range)") + "; zero is a perfect fit.",
                           _long(rows), {"xlabel": f"{xcol} (log scale)", "logx": True}))
    return figs


def _size_labels(sizes: np.ndarray | None, n: int, most: int = 6) -> list[str]:
    """A label per run for its model size: the size itself for a few sizes, else one of ``most``
    log-spaced ranges (a legend of 30 sizes reads as noise)."""
    if sizes is None:
        return ["run"] * n
    distinct = np.unique(sizes)
    if len(distinct) <= most:
        return [f"N = {s:.3g}" for s in sizes]
    edges = np.geomspace(distinct[0], distinct[-1], most + 1)
    k = np.clip(np.searchsorted(edges, sizes, side="right") - 1, 0, most - 1)
    return [f"N {edges[i]:.2g} to {edges[i + 1]:.2g}" for i in k]


def law_decision(fit: Mapping[str, Any], target: str) -> tuple[str, list[str], list[tuple[str, pd.DataFrame]]]:
    """The opening of a law fit's report, and its parameter table (value, interval, fixed or at a bound)."""
    status = ("NOT converged" if not fit["converged"] else
              "converged, but the runs do not identify its parameters" if fit.get("identified") is False else
              "converged")
    head = f"The {fit['law']} law fitted to {fit['n_points']} points of {target}: {status}."
    at_bound = set(fit.get("at_bound", []))
    table = pd.DataFrame([{"parameter": k, "value": f"{v:.6g}",
                           f"{fit['level']:.0%} interval": "fixed" if k in fit["fixed"] else
                           ("[{:.4g}, {:.4g}]".format(*fit["intervals"][k]) if k in fit["intervals"] else ""),
                           "note": "at a bound" if k in at_bound else ""} for k, v in fit["params"].items()])
    return head, [f"warning: {w}" for w in fit.get("warnings", [])], [("Parameters", table)]


def fit_figures(model: Any) -> list[Figure]:
    """A fitted model (:class:`~mixplan.models.mixture_model.MixtureModel`): every candidate model's
    held-out predictions against the measured runs (for ``auto``), the stacking weights, and the
    objective's out-of-fold errors against each run's distance to its nearest other run."""
    figs = []
    for t in model.targets:
        sel = [r for r in (getattr(t.regressor, "selection_", None) or []) if "oof_mean" in r]
        if not sel:
            continue
        y = np.asarray(t.cv.y, dtype=float)
        rows = [{"model": r["model"], "status": r["status"], "measured": float(v), "predicted_out_of_fold": float(p)}
                for r in sel for v, p in zip(y, r["oof_mean"])]
        best = min(sel, key=lambda r: r["rmse"])
        figs.append(Figure(f"candidates_{len(figs)}", "scatter_panels",
                           f"{t.column}: the lowest held-out error is {best['model']}'s (RMSE {best['rmse']:.3g}, "
                           f"Spearman {best['spearman']:.3f}); used: "
                           + _components(t.regressor.components),
                           f"One panel per candidate model: each proxy run's measured {t.column} against the "
                           "candidate's prediction for it when the run was held out (mean over the repeats); the "
                           "diagonal is a perfect prediction.", pd.DataFrame(rows), {"label": t.column}))
        weights = pd.DataFrame([{"model": r["model"], "weight": float(r["weight"] or 0.0),
                                 "rmse": r["rmse"], "status": r["status"]} for r in sel if r["weight"] is not None])
        figs.append(Figure(f"weights_{len(figs)}", "bars",
                           f"{t.column}: the stack gives "
                           + ", ".join(f"{m} {w:.2f}" for m, w in zip(weights["model"], weights["weight"]) if w > 0),
                           f"Bars: the weight each candidate model gets in {t.column}'s prediction (cross-fitted "
                           "stacking; 0 = not used), with its held-out RMSE written beside it.", weights,
                           {"x": "weight", "y": "model", "note": "rmse"}))
    y = np.asarray(model.train_y, dtype=float)
    oof = np.atleast_2d(np.asarray(sum(c * t.cv.oof for c, t in zip(model.coefficients, model.targets)),
                                   dtype=float)).mean(axis=0)
    W = np.asarray(model.train_weights, dtype=float)
    tv = 0.5 * np.abs(W[:, None, :] - W[None, :, :]).sum(axis=2)
    np.fill_diagonal(tv, np.inf)
    nearest = tv.min(axis=1)
    err = np.abs(y - oof)
    far = nearest > np.median(nearest)
    rows = [{"panel": "error", "series": "run", "x": float(d), "y": float(e), "point": True} for d, e in zip(nearest, err)]
    figs.append(Figure("isolation", "residuals",
                       f"Runs far from the others (nearest run beyond {np.median(nearest):.3f}) miss by "
                       f"{err[far].mean():.3g} on average, the others by {err[~far].mean():.3g}",
                       f"Each proxy run's absolute held-out error on {model.objective.spec} against the total-variation "
                       "distance to its nearest other run: how much the error grows where runs are sparse.",
                       _long(rows), {"xlabel": "distance to the nearest other run (total variation)",
                                     "ylabel": f"|held-out error| of {model.objective.spec}", "percent": False}))
    return figs


def fit_decision(model: Any) -> tuple[str, list[str]]:
    cv = model.cv
    head = (f"Model {cv['model']} for {model.objective.spec}: Spearman {cv['spearman']:.3f}, MAE {cv['mae']:.3g}, "
            f"RMSE {cv['rmse']:.3g} on {cv['n_runs']} proxy runs ({cv['n_splits']}-fold CV x {cv.get('n_repeats', 1)}).")
    return head, [f"{t.column}: " + _components(t.regressor.components) for t in model.targets]


def _components(components: Mapping[str, float]) -> str:
    """A stack's components, largest weight first (a loaded model's order is its file's, not the fit's)."""
    return ", ".join(f"{m} {w:.2f}" for m, w in sorted(components.items(), key=lambda kv: (-kv[1], kv[0])))


def design_figures(frame: pd.DataFrame, pools: list[str], upper: Mapping[str, float] | None = None) -> list[Figure]:
    """A design's swarm (``mixtures.csv``: run_id, w_<pool>): how each pool's weight range is covered, and
    the pools' caps (``upper``) when known."""
    rows = [{"run_id": r, "pool": p, "weight": float(w)} for p in pools for r, w in zip(frame["run_id"], frame[f"w_{p}"])]
    data = pd.DataFrame(rows)
    share_zero = {p: float((frame[f"w_{p}"] <= 1e-9).mean()) for p in pools}
    quartiles = {p: frame[f"w_{p}"].quantile([0.25, 0.75]).to_numpy(dtype=float) for p in pools}
    narrow = min(quartiles, key=lambda p: quartiles[p][1] - quartiles[p][0])
    left_out = max(share_zero, key=share_zero.get)
    title = (f"{len(frame)} runs: the middle half of them gives {narrow} only {quartiles[narrow][0]:.2f} to "
             f"{quartiles[narrow][1]:.2f} (the narrowest)"
             + (f"; {share_zero[left_out]:.0%} leave out {left_out}" if share_zero[left_out] > 0 else ""))
    alt = (f"One row per pool: the weight each of the {len(frame)} runs gives it (dots) with the quartiles (box)"
           + ("; the caps at the design's budget as marks" if upper else "") + ".")
    return [Figure("coverage", "coverage", title, alt, data, {"pools": pools, "upper": dict(upper or {})})]


def ot_figure(plan: Mapping[str, Any], ot: Any, steps: int = 25) -> Figure | None:
    """With ``--ot``: the OT extrapolator's prediction for the plan's main mixtures from its smallest
    fitted size to the target, with its intervals; the fitted sizes and the target marked."""
    anchors = [float(a) for a in getattr(ot, "anchors_", [])]
    if len(anchors) < 2 or plan.get("ot") is None:
        return None
    target = float(plan["ot"].get("tokens") or plan.get("target_tokens") or anchors[-1])
    names = [n for n in ("recommended", "ot_selected", "token_proportional", "uniform") if n in plan["mixtures"]]
    W = np.array([[plan["mixtures"][n]["weights"][p] for p in plan["pools"]] for n in names], dtype=float)
    sizes = np.geomspace(anchors[0], max(target, anchors[-1]), steps)
    rows = []
    for t in sizes:
        pr = ot.predict(W, float(t))
        rows += [{"panel": "ot", "series": n, "x": float(t), "y": float(m), "lower": float(lo), "upper": float(hi)}
                 for n, m, lo, hi in zip(names, pr.mean, pr.lower, pr.upper)]
    data = _long(rows)
    end = data[data["x"] == data["x"].max()].set_index("series")["y"]
    best = end.idxmax() if plan["objective"]["maximize"] else end.idxmin()
    unit = plan.get("token_unit", "tokens")
    title = (f"The OT extrapolator, fitted at {', '.join(f'{a:.3g}' for a in anchors)} {unit}, ranks {best} first at "
             f"{target:.3g} {unit} ({end[best]:.4g})")
    alt = (f"Lines: the OT extrapolator's predicted {plan['objective']['spec']} for {', '.join(names)} from "
           f"{anchors[0]:.3g} to {sizes[-1]:.3g} {unit} (log axis), with its intervals as bands; dashed lines mark the "
           "sizes it was fitted at and the target.")
    spec = {"xlabel": f"training size ({unit}, log scale)", "ylabels": {"ot": f"predicted {plan['objective']['spec']}"},
            "logx": True, "bold": ["recommended"],
            "vlines": [{"x": a, "label": f"fitted {a:.3g}"} for a in anchors] + [{"x": target, "label": "target"}]}
    return Figure("ot", "lines", title, alt, data, spec)


def ot_fit_figures(ot: Any, metric: str = "metric") -> list[Figure]:
    """A fitted OT extrapolator: at each training size, stage 1's leave-one-out predictions against the
    measured runs, and the measured ``metric`` (the objective's name) against each run's OT distance
    (the relation it rests on)."""
    rows, dist = [], []
    for tokens, f in ot.stage1_.items():
        y = np.asarray(f["y"], dtype=float)
        pred = y - np.asarray(f["loo_residuals"], dtype=float)
        label = f"{tokens:.3g} (LOO R² {f['loo_r2']:.3f})"
        rows += [{"model": label, "measured": float(a), "predicted_out_of_fold": float(b)} for a, b in zip(y, pred)]
        dist += [{"panel": "ot", "series": f"{tokens:.3g}", "x": float(d), "y": float(v), "point": True}
                 for d, v in zip(np.asarray(f["ot"], dtype=float), y)]
    worst = min(ot.stage1_.values(), key=lambda f: f["loo_r2"])
    figs = [Figure("stage1", "scatter_panels",
                   f"Stage 1 (metric from the OT distance) at {len(ot.stage1_)} sizes: leave-one-out R² at least "
                   f"{worst['loo_r2']:.3f}",
                   f"One panel per training size: each proxy run's measured {metric} against stage 1's prediction for "
                   "it with the run left out; the diagonal is a perfect prediction.", pd.DataFrame(rows),
                   {"label": metric})]
    d = _long(dist)
    rho = float(pd.Series(d["x"]).corr(pd.Series(d["y"]), method="spearman"))
    figs.append(Figure("ot_distance", "residuals",
                       f"The measured {metric} against the OT distance of each run's mixture to the validation set: "
                       f"Spearman {rho:.2f} over all sizes",
                       f"Each proxy run's measured {metric} against the optimal-transport distance between its "
                       "re-weighted revealed samples and the validation set, one colour per training size.", d,
                       {"xlabel": "OT distance to the validation set", "ylabel": f"measured {metric}",
                        "percent": False}))
    return figs


def ot_fit_decision(ot: Any) -> tuple[str, list[str]]:
    doc = ot.to_dict()
    head = (f"OT extrapolator over {len(doc['pools'])} pools, fitted at {', '.join(f'{a:.3g}' for a in doc['anchors'])}; "
            f"{doc['samples']['revealed']} revealed samples, {doc['samples']['validation']} validation samples.")
    facts = [f"stage 1 at {s['tokens']:.3g}: {s['n_runs']} runs, LOO R² {s['loo_r2']:.3f}, MAE {s['loo_mae']:.3g}"
             for s in doc["stage1"]]
    if doc.get("curvature"):
        c = doc["curvature"]
        facts.append(f"curvature from {c['n_runs']} check runs at {c['tokens']:.3g}: mean residual of the line "
                     f"{c['mean_residual']:+.4g}")
    return head, facts


def ot_select_figures(ot: Any, selection: Any, target: str, maximize: bool,
                      token_share: Mapping[str, float] | None = None) -> list[Figure]:
    """An OT selection (:meth:`mixplan.transport.extrapolator.OTExtrapolator.select`): the selected mixture
    beside the uniform (and token-share) mixture under the extrapolator at the same size, and the search's
    objective per accepted step."""
    pools = list(ot.pools_)
    tokens = float(selection.prediction.tokens)
    named = {"ot_selected": np.asarray(selection.weights, dtype=float), "uniform": np.full(len(pools), 1 / len(pools))}
    if token_share:
        named["token_proportional"] = np.array([token_share[p] for p in pools], dtype=float)
    pred = ot.predict(np.vstack(list(named.values())), tokens)
    # (as a plan's at-scale entries: the extrapolator predicts at the selection's size, not the proxies')
    mixtures = {n: {"weights": dict(zip(pools, map(float, w))), "level": float(pred.level),
                    "at_scale": {"prediction": float(m), "lower": float(lo), "upper": float(hi)}}
                for n, w, m, lo, hi in zip(named, named.values(), pred.mean, pred.lower, pred.upper)}
    doc = {"pools": pools, "mixtures": mixtures, "objective": {"spec": target, "maximize": maximize}}
    figs = [mixtures_figure(doc)]
    history = list(getattr(selection, "history", []) or [])
    if history:
        rows = [{"panel": "search", "series": "predicted objective", "x": float(i), "y": float(v)}
                for i, v in enumerate(history)]
        best = int(np.argmax(history) if maximize else np.argmin(history))
        rows.append({"panel": "search", "series": "kept (the best step)", "x": float(best), "y": float(history[best]),
                     "point": True})
        figs.append(Figure("search", "lines",
                           f"Projected gradient from {selection.start}: {selection.iterations} iterations, "
                           f"{selection.ot_solves} OT solves, {'converged' if selection.converged else 'stopped early'}; "
                           f"the best step ({best}) is kept",
                           f"The predicted {target} at {tokens:.3g} after each accepted step of the search, from its "
                           "starting point; the search is non-monotone, so the best point it visited (the dot) is the "
                           "selection.", _long(rows),
                           {"xlabel": "accepted step", "ylabels": {"search": f"predicted {target}"}}))
    return figs
