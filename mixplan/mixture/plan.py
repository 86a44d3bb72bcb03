"""From a fitted model to a recommended mixture, with its evidence and the obvious alternatives.

:func:`make_plan` runs the constrained search (:mod:`mixplan.simplex`) on the model's prediction and
returns a :class:`Plan`: the recommended mixture, its predicted objective with an interval, the
nearest proxy run and whether the mixture is inside the region the runs cover, the active
constraints, per-pool epochs at the target budget, and the same predictions for the
token-proportional mixture, the uniform mixture and the best observed proxy run, each with the
probability that the recommended mixture is better than it (:meth:`MixtureModel.prob_better`; at
the target budget when the plan decides there, and then also at the proxy scale, beside the proxy-scale
prediction). Weights under :data:`NUMERICAL_ZERO` are stored as 0.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from .._version import __version__
from .._io import library_versions
from ..exceptions import ExtrapolationWarning, InfeasibleError, ValidationError
from ..models.mixture_model import DEFAULT_LEVEL, MixtureModel, cv_summary
from ..data.objective import Objective
from ..data.pools import PoolSet
from .repetition import RepetitionModel
from .scale import SCALE_MODELS, AtScaleModel
from ..simplex import (Constraints, SearchResult, active_constraints, active_group_constraints, best_distinct,
                       build_constraints, search)

__all__ = ["Plan", "make_plan"]


#: The most weights ``candidates.csv`` holds before it keeps only the candidates re-scored exactly.
CANDIDATE_WEIGHTS = 2_000_000
#: A model whose prediction is more than this share boosted trees (:attr:`MixtureModel.tree_share`) is not
#: refined: its optimum is the search's top-k mean. Known truth (tests/benchmarks/search_refine.py, 10 worlds x 3
#: seeds x 3 strengths), mean true regret refined vs top-k mean, with 2,000 / 20,000 (the default) candidates:
#: LightGBM 0.032 vs 0.011 / 0.031 vs 0.013 (seed spread 0.008 vs 0.002); GP + LightGBM stacks at tree shares
#: 0.25, 0.5, 0.75: 0.0070 vs 0.0113, 0.0094 vs 0.0107, 0.0136 vs 0.0106 / 0.0073 vs 0.0058, 0.0086 vs 0.0060,
#: 0.0131 vs 0.0071; a GP 0.0095 vs 0.0122 / 0.0093 vs 0.0063. The rule stops where both counts agree. With the
#: default count the top-k mean was better for smooth models too, in these worlds, but not on real runs: on RegMix's
#: (tests/benchmarks/search_refine_regmix.py, 7 targets x 2 seeds, judged by models fitted on the test runs) the
#: refinement was better for ``auto`` and the top-k mean for LightGBM, so smooth models keep the refinement.
TREE_SHARE_UNREFINED = 0.5


@dataclass
class Plan:
    """A recommendation and everything needed to audit it (JSON-serialisable via :meth:`to_dict`)."""

    pools: list[str]
    objective: dict[str, Any]
    tokens: float | None
    token_unit: str
    recommended: dict[str, float]
    mixtures: dict[str, dict[str, Any]]  # name -> weights, prediction, interval, evidence, epochs
    active: dict[str, str]
    constraints: dict[str, Any]
    cv: dict[str, Any]
    search: dict[str, Any]
    seed: int
    models: list[dict[str, Any]] = field(default_factory=list)  # per objective column: model choice + CV
    repetition: dict[str, Any] | None = None  # the repetition-aware objective's model and parameters
    scale: dict[str, Any] | None = None  # the at-scale model: choice, held-out record, calibration
    ot: dict[str, Any] | None = None  # the OT extrapolator: mode, size, selection, fit report
    buckets: dict[str, Any] | None = None  # quality buckets as pools: per mixture, pool weights and keep-fractions
    rounding: dict[str, Any] | None = None  # the typed mixture (--round, --min-weight) and what it costs
    identification: dict[str, Any] | None = None  # whether the runs price the repetition the plan asks for
    derived: dict[str, Any] | None = None  # derived pools: per mixture the raw : derived split of each family
    prior: dict[str, Any] | None = None  # --prior-strength: the prior, the strength, its CV curve (auto)
    hierarchy: dict[str, Any] | None = None  # groups of pools: their bounds and each mixture's group totals
    warnings: list[str] = field(default_factory=list)
    result: SearchResult | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "mixplan_version": __version__,
            "versions": library_versions(),
            "seed": self.seed, "pools": self.pools, "objective": self.objective,
            "target_tokens": self.tokens, "token_unit": self.token_unit,
            "recommended": self.recommended, "mixtures": self.mixtures,
            "active_constraints": self.active, "constraints": self.constraints,
            "cv": self.cv, "models": self.models, "repetition": self.repetition, "scale": self.scale,
            "ot": self.ot, "buckets": self.buckets, "rounding": self.rounding,
            "repetition_identification": self.identification,
            "derived_pools": self.derived,
            **({} if self.prior is None else {"prior_regularisation": self.prior}),
            **({} if self.hierarchy is None else {"hierarchy": self.hierarchy}),
            "search": self.search,
            "warnings": self.warnings,
        }

    def candidates_frame(self, max_weights: int | None = CANDIDATE_WEIGHTS) -> pd.DataFrame:
        """Every scored candidate: origin, weights, pre-filter score and exact prediction (or empty).

        When candidates x pools exceed ``max_weights``, only the candidates re-scored exactly (those the
        top-k and the recommendation come from): at 400 pools all of them are 9 million weights, a
        134 MB table whose formatting alone took half a minute."""
        r = self.result
        if r is None:
            raise ValidationError("this plan carries no search result")
        objective = Objective.from_dict(self.objective)
        rows = np.arange(len(r.candidates))
        if max_weights is not None and r.candidates.size > max_weights:
            rows = np.flatnonzero(np.isfinite(r.exact_scores))
        frame = pd.DataFrame(r.candidates[rows], columns=[f"w_{p}" for p in self.pools])
        frame.insert(0, "origin", r.candidate_origin[rows])
        frame.insert(0, "candidate", rows)
        frame["prefilter_score"] = objective.unscore(r.prefilter_scores[rows])
        frame["prediction"] = objective.unscore(r.exact_scores[rows])
        return frame

    def _pool_tables(self) -> list[str]:
        """Per pool, every mixture's weight and (with a budget) its epochs at the budget, then the bounds the
        recommended mixture sits on: each column of a table describes the mixture it is named after."""
        def table(value: Any) -> str:
            return pd.DataFrame([{"pool": p} | {n: value(m, p) for n, m in self.mixtures.items()}
                                 for p in self.pools]).to_string(index=False)

        lines = ["weights:", table(lambda m, p: f"{m['weights'][p]:.4f}")]
        if self.tokens is not None:
            lines += [f"epochs at the target budget ({self.tokens:.6g} {self.token_unit}):",
                      table(lambda m, p: f"{m['epochs'][p]:.2f}")]
        active = ", ".join(f"{p} {self.active[p]}" for p in self.pools if p in self.active)
        return lines + [f"active constraints of the recommended mixture: {active or 'none'}"]

    def _group_tables(self) -> list[str]:
        """Groups of pools: every mixture's total of each group (the sum of its leaves), the group's bounds, and
        which of them the recommended mixture sits on."""
        if self.hierarchy is None:
            return []
        groups, totals = self.hierarchy["groups"], self.hierarchy["totals"]

        def bound(g: Mapping[str, Any]) -> str:
            if g["lower_reason"] == "pinned":
                return f"pinned {g['lower']:.4g}"
            return f"[{g['lower']:.4g}, {g['upper']:.4g}]"

        frame = pd.DataFrame([{"group": g, "leaves": len(info["members"]), "bounds": bound(info)}
                              | {n: f"{totals[n][g]:.4f}" for n in self.mixtures} for g, info in groups.items()])
        active = ", ".join(f"{g} {a}" for g, a in self.hierarchy["active"].items())
        return ["group totals (sums of their leaves):", frame.to_string(index=False),
                f"active group constraints of the recommended mixture: {active or 'none'}"]

    def report(self) -> str:
        """A human-readable summary: weights and epochs per pool, then predictions."""
        lines = [f"objective: {'maximize' if self.objective['maximize'] else 'minimize'} "
                 f"{self.objective['spec']}" + (f"   target budget: {self.tokens:.6g} {self.token_unit}"
                                                if self.tokens is not None else ""),
                 *Objective.from_dict(self.objective).matched_lines(),
                 f"model {self.cv['model']}: {cv_summary(self.cv)}",
                 *(f"  {m['column']}: " + " + ".join(f"{w:.2f} {c}" for c, w in m["components"].items())
                   for m in self.models),
                 "", *self._pool_tables(), *self._group_tables(), ""]
        pred = pd.DataFrame([{
            "mixture": n, "predicted": f"{m['prediction']:.4f}",
            f"{int(round(m['level'] * 100))}% interval": f"[{m['lower']:.4f}, {m['upper']:.4f}]",
            "measured": "" if m.get("measured") is None else f"{m['measured']:.4f}",
            "nearest run (TV dist)": f"{m['nearest_run']} ({m['nearest_distance']:.3f})",
            "covered": "yes" if m["covered"] else "NO", "feasible": "yes" if m["feasible"] else "no",
            "P(recommended better)": _p_text(m.get("p_recommended_better_proxy", m.get("p_recommended_better"))),
        } for n, m in self.mixtures.items()])
        lines.append(pred.to_string(index=False))
        if self.repetition is not None:
            r = self.repetition
            ci = r["intervals"]
            lines += ["", f"repetition-aware objective at {self.tokens:.6g} {self.token_unit}: R* = {r['r_star']:.3g}"
                      + (f" [{ci['r_star'][0]:.3g}, {ci['r_star'][1]:.3g}]" if "r_star" in ci else "")
                      + f", gamma = {r['gamma']:.3g}"
                      + (f" [{ci['gamma'][0]:.3g}, {ci['gamma'][1]:.3g}]" if "gamma" in ci else "")
                      + f" ({r['source']})"]
            at = pd.DataFrame([{
                "mixture": n, "objective@budget": f"{m['at_budget']['objective']:.4f}",
                "interval": "unknown" if m["at_budget"]["lower"] is None else
                f"[{m['at_budget']['lower']:.4f}, {m['at_budget']['upper']:.4f}]",
                "predicted run@budget": "" if m["at_budget"]["prediction"] is None else
                f"{m['at_budget']['prediction']:.4f}",
                "effective data": f"{m['at_budget']['effective_fraction']:.3f}",
                "max epochs": f"{max(m['epochs'].values()):.2f}",
                "P(recommended better)": _p_text(m.get("p_recommended_better"))} for n, m in self.mixtures.items()])
            lines.append(at.to_string(index=False))
        if self.scale is not None:
            lines += ["", _scale_table(self.scale, self.mixtures, self.tokens, self.token_unit)]
        if self.buckets is not None:
            lines += ["", _bucket_table(self.buckets)]
        if self.derived:
            from .derived import derived_table

            lines += ["", derived_table(self.derived)]
        if self.ot is not None:
            lines += ["", _ot_table(self.ot, self.mixtures)]
        if self.rounding is not None:
            lines += ["", rounding_text(self.rounding)]
        if self.prior is not None:
            lines += ["", prior_text(self.prior)]
        if self.tokens is not None and self.scale is None:
            lines.append(f"note: 'predicted' is at the scale of the proxy runs the model was fitted on; the loss at "
                         f"{self.tokens:.6g} {self.token_unit} is unknown (runs at one budget: add runs at a second "
                         "budget, --scale-runs, to predict there); the target budget sets the caps and epochs shown")
        elif self.scale is not None:
            lines.append("note: 'predicted' is at the proxy runs' scale; the at-scale table is at the target budget")
        if self.result is not None:
            lines.append(_search_text(self.result, self.search.get("tree_share")))
        if "exact" in self.search:
            lines.append(_exact_text(self.search["exact"]))
        for w in self.warnings:
            lines.append(f"warning: {w}")
        return "\n".join(lines)


#: Weights below this are numerical zero: the search's floating-point residue (e.g. the last 1e-16 of a
#: projection's sum put on an empty pool), not a share of the run.
NUMERICAL_ZERO = 1e-9


def _clean_zeros(w: np.ndarray, fixed: np.ndarray) -> np.ndarray:
    """``w`` with its non-``fixed`` weights under :data:`NUMERICAL_ZERO` set to 0 and their sum handed to
    the largest non-fixed weight, so that it still sums to 1 (pins keep their exact value)."""
    w = np.asarray(w, dtype=float)
    tiny = (np.abs(w) < NUMERICAL_ZERO) & (w != 0) & ~fixed
    if not tiny.any() or fixed.all():
        return w
    out = np.where(tiny, 0.0, w)
    out[np.argmax(np.where(fixed, -np.inf, out))] += w[tiny].sum()
    return out


def prior_text(info: Mapping[str, Any]) -> str:
    """The regularisation toward the prior: strength (and how it was chosen, with the CV curve), the prior,
    and each mixture's KL to it."""
    sel = info.get("selection")
    how = "given" if sel is None else "chosen by cross-validated regret (--prior-strength auto)"
    lines = [f"search regularised toward the prior ({info['source']}): + {info['strength']:g} x KL(w || prior), "
             f"strength {how}"]
    if sel is not None:
        lines.append(f"  rule: {sel['rule']}")
        lines.append("  strength   CV regret (mean +- se, sd over folds)   minus the chosen's (+- paired se)")
        for row in sel["curve"]:
            mark = "  <- chosen" if row["strength"] == sel["chosen"] else ""
            gap = "" if mark else f"   {row['gap_to_chosen']:+.4f} +- {row['gap_se']:.4f}"
            lines.append(f"  {row['strength']:8.4g}   {row['mean_regret']:+.4f} +- {row['se']:.4f} "
                         f"(sd {row['sd']:.4f}){gap}{mark}")
        others = [f"{g:g}" for g in sel.get("tied_with_chosen", []) if g != sel["chosen"]]
        if others:
            lines.append(f"  within one paired se of the chosen strength: {', '.join(others)} (the folds do not "
                         "separate them from it)")
    lines.append("  KL(w || prior) in nats: " + ", ".join(
        f"{n} {v:.4f}" if v is not None else f"{n} infinite (weight on a pool of prior 0)"
        for n, v in info["kl"].items()))
    return "\n".join(lines)


def _p_text(p: float | None) -> str:
    """A probability that the recommended mixture is better, as the tables print it (blank for itself)."""
    return "" if p is None else f"{p:.2f}"


#: What each origin of :attr:`SearchResult.candidate_origin` is, as the search line names it.
_ORIGINS = {"dirichlet": "sampled", "vertex_or_edge": "vertices and edge mid-points", "proxy_run": "proxy runs"}


def _candidate_origins(result: SearchResult) -> dict[str, int]:
    """How many candidates of each origin the search scored: the Dirichlet draws (``--candidates``) plus the
    feasible set's vertices and edge mid-points and the proxy runs (why the total exceeds ``--candidates``)."""
    origin, counts = np.unique(result.candidate_origin, return_counts=True)
    return {str(o): int(c) for o, c in zip(origin, counts)}


def model_search_options(tree_share: float, options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` for a :func:`~mixplan.simplex.search` of a prediction ``tree_share`` of which is boosted trees
    (:attr:`MixtureModel.tree_share`; 0 for a law), with the refinement off (``refine_rounds=0``) above
    :data:`TREE_SHARE_UNREFINED` unless ``options`` set it: trees predict a piecewise-constant surface, and a
    local refinement takes every step down it, steps that are leaf boundaries fitted to a few runs' noise."""
    if tree_share > TREE_SHARE_UNREFINED and "refine_rounds" not in options:
        return dict(options) | {"refine_rounds": 0}
    return dict(options)


def _tree_share(model: MixtureModel, scale: AtScaleModel | None = None) -> float:
    """The tree share of the objective searched: the regressor's, or with an at-scale model, none for the
    effective-data law alone and the regressor's for the models built on it."""
    return 0.0 if scale is not None and scale.chosen == SCALE_MODELS[0] else model.tree_share


def _search_text(result: SearchResult, tree_share: float | None = None) -> str:
    """The search in one line; its counts add up: the candidates by origin, the best of them re-scored
    exactly, the top-k mean, and the refinement's trial mixtures (or why there were none)."""
    origins = _candidate_origins(result)
    parts = ", ".join(f"{origins[o]} {what}" for o, what in _ORIGINS.items() if origins.get(o))
    kept = int(np.isfinite(result.exact_scores).sum())
    head = f"search: {result.n_prefilter} candidates ({parts}) pre-filtered; the best {kept} scored exactly, then "
    if not result.settings.get("refine_rounds", 1):
        why = (f"the model is {tree_share:.0%} boosted trees, whose steps a local search would chase"
               if tree_share is not None and tree_share > TREE_SHARE_UNREFINED else "refine_rounds 0")
        return head + f"their top-k mean, not refined ({why})"
    return head + (f"the top-k mean and {result.n_exact - kept - 1} refinement trials ({result.refine_steps} moves "
                   "accepted)")


def _exact_optimum(model: MixtureModel, score: Any, result: SearchResult, c: Constraints,
                   strength: float | None, prior: np.ndarray, kl_mask: np.ndarray) -> tuple[SearchResult, dict | None]:
    """The search's optimum replaced by the exact one (:mod:`mixplan.simplex.convex`) when the model's score is
    a convex log-linear form (a mixing law, a linear model, their positive sums), with what says so; the search
    alone (None) for any other model."""
    form = model.score_form()
    if form is None:
        return result, None
    if not form.convex:
        return result, {"used": False, "why": "the model is log-linear but the score it minimises is not convex (an "
                                              "exponential term enters with a negative factor, e.g. a metric "
                                              "fitted as c + k e^(t.w) with k > 0 that the objective maximises): "
                                              "the search's optimum stands"}
    from ..simplex.convex import minimise_convex

    lam = float(strength or 0.0)
    ex = minimise_convex(form.g, form.a, form.b, form.T, c, result.weights, strength=lam, prior=prior,
                         kl_mask=kl_mask)
    s = float(np.asarray(score(ex.weights[None, :], False), dtype=float)[0])
    info = {"used": True,
            "method": "SLSQP from the search's optimum (scipy), certified by a bound on its distance to the optimum",
            "score": form.const + ex.value, "gap": ex.gap, "search_score": form.const + ex.start_value,
            "search_weights": [float(v) for v in result.weights], "iterations": ex.iterations,
            "converged": ex.converged, "message": ex.message}
    return replace(result, weights=ex.weights, score=s), info


def _exact_text(info: Mapping[str, Any]) -> str:
    """The exact proposer in one line: its score (the objective signed so that smaller is better, plus the KL
    term) against the search's, and how far from the optimum it can be at most."""
    if not info["used"]:
        return f"exact proposer not used: {info['why']}"
    of = f" for {info['of']}" if "of" in info else ""
    return (f"exact proposer{of} (the score is convex and log-linear; {info['method']}): score {info['score']:.6g}, "
            f"at most {info['gap']:.2g} above the optimum; the search had reached {info['search_score']:.6g}")


def headline(entry: Mapping[str, Any]) -> dict[str, Any]:
    """The prediction a decision rests on for one mixture of a plan: at the target budget when the plan
    has an at-scale model (``at_scale``) or a repetition-aware objective (``at_budget``), else at the
    proxy scale: ``{"where", "prediction", "lower", "upper"}`` (bounds None when unknown)."""
    if "at_scale" in entry:
        a = entry["at_scale"]
        return {"where": "at the target budget", "prediction": a["prediction"], "lower": a["lower"],
                "upper": a["upper"]}
    if "at_budget" in entry:
        a = entry["at_budget"]
        return {"where": "at the target budget", "prediction": a["objective"], "lower": a["lower"],
                "upper": a["upper"]}
    return {"where": "at the proxy scale", "prediction": entry["prediction"], "lower": entry["lower"],
            "upper": entry["upper"]}


def _rounding_summary(mixtures: Mapping[str, Mapping[str, Any]], names: list[str], decimals: int | None,
                      min_weight: float) -> dict[str, Any]:
    """What typing the recommended mixture changed: dropped pools, the largest change of a weight, and
    both predictions (with intervals) and their difference."""
    typed, searched = mixtures["recommended"], mixtures["recommended_unrounded"]
    before, after = headline(searched), headline(typed)
    return {"decimals": decimals, "min_weight": min_weight,
            "dropped": [n for n in names if typed["weights"][n] == 0 < searched["weights"][n]],
            "max_weight_change": max(abs(typed["weights"][n] - searched["weights"][n]) for n in names),
            "where": after["where"], "before": before, "after": after,
            "change": after["prediction"] - before["prediction"],
            "p_typed_better": searched.get("p_recommended_better")}


def rounding_text(r: Mapping[str, Any]) -> str:
    """One paragraph: what --round / --min-weight did to a mixture and what it costs."""
    def pred(x: Mapping[str, Any]) -> str:
        return f"{x['prediction']:.4f}" + ("" if x["lower"] is None else f" [{x['lower']:.4f}, {x['upper']:.4f}]")

    how = ", ".join(x for x in ((f"{r['decimals']} decimals" if r["decimals"] is not None else ""),
                                (f"pools under {r['min_weight']:g} dropped" if r["min_weight"] else "")) if x)
    return (f"typed mixture ({how}): " + (f"dropped {', '.join(r['dropped'])}; " if r["dropped"] else "")
            + f"weights moved by at most {r['max_weight_change']:.2g}; predicted {r['where']} {pred(r['after'])} vs "
            f"{pred(r['before'])} as searched (change {r['change']:+.4g}"
            + ("" if r.get("p_typed_better") is None else f", P(typed better) {r['p_typed_better']:.2f}") + ")")


def _identify(mixtures: dict[str, dict[str, Any]], names: list[str], repetition: Any, scale: Any,
              tokens: float | None) -> dict[str, Any] | None:
    """Whether the runs behind the plan's repetition model (or its at-scale model) read the pools as often as
    the recommended mixture does at the target budget (:func:`mixplan.mixture.repetition.identification`).
    Where they do not, the mixtures that read a short pool that often get no repetition-aware interval at the
    target budget (one computed from an R* the runs never measured would be printed as if it held); an
    at-scale model's interval, chosen and calibrated on held-out budgets, stays and carries the caveat."""
    from .repetition import identification, repeats_beyond

    if tokens is None or (repetition is None and scale is None):
        return None
    rec = mixtures["recommended"]["epochs"]
    needed = np.array([rec[n] for n in names], dtype=float)
    if scale is None and repetition.reached is None:
        return None  # R* given (--r-star), not fitted: nothing to identify
    if scale is not None:
        out = identification(names, needed, scale.max_epochs)
    else:
        out = identification(names, needed, repetition.reached, repetition.rmse, repetition.rmse_blind,
                             repetition.r_star)
    if out["identified"]:
        return out
    reached = scale.max_epochs if scale is not None else repetition.reached
    for entry in mixtures.values():
        e = [entry["epochs"][n] for n in names]
        if out["no_better_than_ignoring"] or out["r_star_at_bound"]:  # R* unknown: every repeat is a guess
            beyond = [n for n, x in zip(names, e) if x > 1.0]
        else:
            beyond = repeats_beyond(names, e, reached)
        if not beyond:
            continue
        if "at_budget" in entry:  # priced by R* alone: no interval where the runs did not measure it
            entry["at_budget"] = entry["at_budget"] | {
                "lower": None, "upper": None, "prediction_interval": None,
                "interval_withheld": f"repetition not identified ({', '.join(beyond)})"}
        if "at_scale" in entry:  # the at-scale model was chosen on held-out budgets: its interval stays, flagged
            entry["at_scale"] = entry["at_scale"] | {
                "interval_caveat": f"repeats {', '.join(beyond)} beyond twice what any run read"}
    return out


def _uncapped(pools: PoolSet) -> PoolSet:
    """The pools without their epoch caps (``max_epochs``): what a repetition-aware search may use."""
    return PoolSet(tuple(replace(p, max_epochs=float("inf")) for p in pools), name=pools.name,
                   token_unit=pools.token_unit, path=pools.path, tokens_known=pools.tokens_known, groups=pools.groups)


def _repetition_optima(model: MixtureModel, pools: PoolSet, tokens: float, pins: Mapping[str, float] | None,
                       rep: RepetitionModel, capped: SearchResult | None, capped_c: Constraints, seed: int,
                       combine_caps: bool, options: dict[str, Any]) -> tuple[SearchResult, dict[str, Any]]:
    """The repetition-blind (no epoch caps), hard-cap (the manifest's max_epochs; None when those caps
    cannot be met at this budget) and repetition-aware optima; the last becomes the recommendation."""
    objective = model.objective
    c_free = build_constraints(_uncapped(pools), tokens, pins)
    blind = search(lambda W, fast: objective.score(model.predict_mean(W)), c_free, pools.prior, seed=seed,
                   extra=model.train_weights, **options)
    aware_c = capped_c if combine_caps else c_free
    aware = search(lambda W, fast: objective.score(rep.objective(model.predict_mean, W, tokens, pools.tokens,
                                                                 pools.r_star)),
                   aware_c, pools.prior, seed=seed, extra=model.train_weights, **options)
    return aware, {"optima": {"repetition_blind": blind} | ({} if capped is None else {"hard_cap": capped})}


def _at_budget(model: MixtureModel, rep: RepetitionModel, w: np.ndarray,
               tokens: float, pools: PoolSet, level: float) -> dict[str, Any]:
    """The repetition-aware prediction of one mixture at the target budget, with per-pool discounts."""
    wt, frac = rep.effective(w, tokens, pools.tokens, pools.r_star)
    objective = float(rep.objective(model.predict_mean, w[None, :], tokens, pools.tokens, pools.r_star)[0])
    drawn = w * tokens
    eff = wt[0] * frac[0] * tokens
    half = model.interval_scale(level) * float(model.predict_sd(wt)[0])
    scaled = rep.at_scale(np.array([objective, objective - half, objective + half]), tokens)
    known = scaled is not None  # a given (not fitted) model has no runs at the budget: the level there is unknown
    return {"objective": objective, "lower": objective - half if known else None,
            "upper": objective + half if known else None,
            # on the scale of runs at the budget (fitted shift and data term), when known
            "prediction": None if scaled is None else float(scaled[0]),
            "prediction_interval": None if scaled is None else [float(scaled[1]), float(scaled[2])],
            "effective_fraction": float(frac[0]),
            "tokens": dict(zip(pools.names, map(float, drawn))),
            "discount": {p: (float(e / d) if d > 0 else 1.0) for p, e, d in zip(pools.names, eff, drawn)},
            "effective_weights": dict(zip(pools.names, map(float, wt[0])))}


_OT_MODES = ("compare", "alone", "size")
#: In ``size`` mode, this many of the regressor's best distinct candidates are re-scored with the OT term.
OT_SIZE_CANDIDATES = 64


def _ot_optima(model: MixtureModel, ot: Any, mode: str, base_tokens: float | None, tokens: float | None,
               c: Constraints, result: SearchResult) -> tuple[SearchResult, dict[str, Any]]:
    """The OT extrapolator's optimum, and (modes alone / size) the recommendation it implies."""
    if mode not in _OT_MODES:
        raise ValidationError(f"unknown OT mode {mode!r}; use one of {', '.join(_OT_MODES)}")
    if list(ot.pools_) != list(model.pools):
        raise ValidationError(f"the OT extrapolator was fitted on pools {ot.pools_} but the runs have {model.pools}; "
                              "refit it on the same pools, in the same order")
    if ot.maximize != model.objective.maximize:
        raise ValidationError("the OT extrapolator and the plan disagree on the direction of the target (--maximize)")
    size = float(tokens) if tokens is not None else float(ot.anchors_[-1])
    sel = ot.select(size, c.lower, c.upper)
    info: dict[str, Any] = {"mode": mode, "tokens": size, "selection": sel.to_dict(model.pools),
                            "fit": ot.to_dict(), "optima": {"ot_selected": sel.weights}}
    if mode == "alone":
        info["optima"]["regressor_optimum"] = result.weights
        result = replace(result, weights=sel.weights,
                         score=float(model.objective.score(model.predict_mean(sel.weights[None])[0])))
    elif mode == "size":
        if base_tokens is None:
            raise ValidationError("OT mode 'size' needs the proxy runs' size (a tokens column in the runs)")
        # The regressor's best distinct candidates and the OT optimum, re-scored with the size trend.
        Wc = best_distinct(result.weights, sel.weights, result.candidates, result.exact_scores, OT_SIZE_CANDIDATES,
                           spacing=5e-4)  # total variation 5e-4: weights differing by 1e-3 in sum
        delta, q = ot.increment(Wc, size, base_tokens)
        regressor = model.predict_mean(Wc)
        total = regressor + delta
        best = model.objective.best(total)
        info |= {"base_tokens": float(base_tokens), "increment_halfwidth": q, "candidates_rescored": len(Wc),
                 "regressor_optimum_rank": int(np.argsort(np.argsort(model.objective.score(total)))[0]) + 1}
        info["optima"]["regressor_optimum"] = result.weights
        result = replace(result, weights=Wc[best], score=float(model.objective.score(regressor[best])))
    return result, info


def _ot_entries(ot: Any, info: dict[str, Any], mixtures: dict[str, dict[str, Any]], W: np.ndarray,
                pred: Any) -> None:
    """Every mixture's OT prediction at the plan's size (and in size mode the combined prediction)."""
    size = info["tokens"]
    op = ot.predict(W, size)
    if info["mode"] == "size":
        delta, q = ot.increment(W, size, info["base_tokens"])
        # beyond the larger OT size without check runs: the bracket's other end (no further gain)
        far = ot.far_increment(W, info["base_tokens"]) if op.bracketed else delta
    for k, entry in enumerate(mixtures.values()):
        entry["ot"] = op.row(k)
        if info["mode"] == "size":
            half = float(np.hypot(pred.upper[k] - pred.mean[k], q))
            value = float(pred.mean[k] + delta[k])
            ends = (float(pred.mean[k] + min(delta[k], far[k])), float(pred.mean[k] + max(delta[k], far[k])))
            entry["at_size"] = {"prediction": value, "lower": ends[0] - half, "upper": ends[1] + half,
                                "regressor": float(pred.mean[k]), "ot_increment": float(delta[k]),
                                "interval_kind": entry["ot"]["interval_kind"]}
    from ..transport.extrapolator import extrapolation_notes

    info["warnings"] = [f"OT extrapolator: {n}" for n in extrapolation_notes(op)]  # the same notes as 'ot predict'


def _ot_table(info: dict[str, Any], mixtures: dict[str, dict[str, Any]]) -> str:
    sel = info["selection"]
    scope = ("with the ln-N line's curvature from check runs" if info["fit"]["curvature"] else
             "stage-1 error only, not the ln-N line's own error (fit with --check-runs)")
    lines = [f"OT extrapolator ({info['mode']}) at {info['tokens']:.6g} tokens; intervals: {scope}"]
    rows = []
    for n, m in mixtures.items():
        o = m["ot"]
        row = {"mixture": n, "OT distance": f"{o['ot']:.4g}", "OT predicted": f"{o['prediction']:.4f}",
               "interval": f"[{o['lower']:.4f}, {o['upper']:.4f}]", "covered": "yes" if o["covered"] else "NO"}
        if "at_size" in m:
            a = m["at_size"]
            row |= {"regressor + OT size trend": f"{a['prediction']:.4f}",
                    "interval ": f"[{a['lower']:.4f}, {a['upper']:.4f}]"}
        rows.append(row)
    lines.append(pd.DataFrame(rows).to_string(index=False))
    lines.append(f"OT selection: {sel['iterations']} projected-gradient iterations, {sel['ot_solves']} OT solves")
    return "\n".join(lines + [f"warning: {w}" for w in info.get("warnings", [])])


def _scale_table(info: dict[str, Any], mixtures: dict[str, dict[str, Any]], tokens: float | None, unit: str) -> str:
    lines = [info["report"], f"at the target budget ({tokens:.6g} {unit}):"]
    rows = []
    for n, m in mixtures.items():
        a = m["at_scale"]
        ev = a["evidence"]
        note = ev["class"]
        if ev["class"] != "interpolation":
            note += f": tokens x{ev['tokens_over_largest_run']:.3g} the largest run's"
            if "params_over_largest_run" in ev:
                note += f", model size x{ev['params_over_largest_run']:.3g}"
            if ev.get("repetition_matched"):
                note += " (repetition shown by matched runs)"
            beyond = ev["repetition_beyond_runs"]
            if beyond:  # the pool repeated furthest beyond what any run showed
                p, r = max(beyond.items(), key=lambda kv: kv[1]["epochs"] / max(kv[1]["most_in_runs"], 1.0))
                note += (f"; {len(beyond)} pool{'s' if len(beyond) > 1 else ''} repeated beyond the runs (most: {p} "
                         f"{r['epochs']:.3g}x, runs <= {max(r['most_in_runs'], 1.0):.3g}x)")
        if ev.get("level_unchecked"):  # the interval spans these models' predictions too
            note += "; level unchecked (" + ", ".join(f"{k}: {v:.4f}" for k, v in ev["level_unchecked"].items()) + ")"
        if "interval_caveat" in a:
            note += "; repetition not identified"
        rows.append({"mixture": n, "predicted@budget": f"{a['prediction']:.4f}",
                     f"{int(round(a['level'] * 100))}% interval": f"[{a['lower']:.4f}, {a['upper']:.4f}]",
                     "one run": f"[{a['run_lower']:.4f}, {a['run_upper']:.4f}]",
                     "P(recommended better)": _p_text(m.get("p_recommended_better")), "evidence": note})
    lines.append(pd.DataFrame(rows).to_string(index=False))
    return "\n".join(lines)


def make_plan(model: MixtureModel, pools: PoolSet, *, tokens: float | None = None,
              pins: Mapping[str, float] | None = None, seed: int = 0, level: float = DEFAULT_LEVEL,
              repetition: RepetitionModel | None = None, combine_caps: bool = False,
              measured: Mapping[str, float] | None = None, best_run: tuple[str, np.ndarray, float] | None = None,
              ot: Any = None, ot_mode: str = "compare", ot_base_tokens: float | None = None,
              constraints: Constraints | None = None, scale: Any = None, buckets: Any = None,
              decimals: int | None = None, min_weight: float = 0.0, prior_strength: float | None = None,
              **search_options: Any) -> Plan:
    """Search the best feasible mixture for ``model`` and compare it with simple baselines.

    Parameters
    ----------
    model : MixtureModel
        Fitted on runs over exactly ``pools`` (same order).
    pools : PoolSet
    tokens : float, optional
        The big run's token budget; enables the availability caps and per-pool epochs.
    pins : mapping, optional
        Pool -> fixed weight.
    best_run : (run_id, weights, measured objective), optional
        The best observed proxy run; defaults to the best of the model's training runs.
    repetition : RepetitionModel, optional
        Score mixtures at the target budget with the repetition-aware objective
        (:mod:`mixplan.mixture.repetition`); the plan then also shows the repetition-blind optimum (no epoch
        caps) and the hard-cap optimum (the manifest's ``max_epochs``), and recommends the
        repetition-aware one (searched without epoch caps unless ``combine_caps``).
    ot : OTExtrapolator, optional
        An OT extrapolator (:mod:`mixplan.transport.extrapolator`) fitted on the same pools. Its own optimum at the
        target budget (``tokens``, else its largest fitted size) is added as ``ot_selected`` and every
        mixture gets its OT prediction at that size (``ot`` entry). ``ot_mode``: ``"compare"`` (the
        regressor's optimum stays recommended), ``"alone"`` (the OT optimum is recommended) or ``"size"``
        (regressor prediction plus the OT extrapolator's change from ``ot_base_tokens``, the proxy runs'
        size, to the target: the recommendation is the best of the regressor's top candidates and the OT
        optimum under that sum).
    scale : AtScaleModel, optional
        The loss at the target budget (:mod:`mixplan.mixture.scale`, fitted on runs at two or more
        budgets): the recommendation is the mixture best *there* (searched without epoch caps unless
        ``combine_caps``: the model prices repetition); the proxy-scale optimum (no caps) and the
        hard-cap optimum are shown beside it, and every mixture gets its at-scale prediction, interval
        and evidence class (``at_scale``).
    constraints : Constraints, optional
        The feasible set, when the caller has built it already from ``pools``, ``tokens`` and ``pins``
        (e.g. to refuse impossible constraints before a long fit); built here otherwise.
    buckets : BucketLayout, optional
        ``pools`` are the quality buckets of this layout (``buckets.bucket_pools()``,
        :mod:`mixplan.mixture.buckets`): the plan also finds the best mixture under the threshold policy
        (keep each pool's top buckets, sampled by size) and over whole pools, with the same loss (at the
        target with ``scale``, else at the proxy scale), adds them as ``threshold`` and ``whole_pools``,
        recommends the quality-weighted optimum (free bucket weights, never worse than the other two
        under that loss) and reports each mixture's pool weights and keep-fractions.
    decimals, min_weight : optional
        The mixture a person would type: the recommended weights with pools under ``min_weight`` dropped
        (the rest renormalised, pins kept) and rounded to ``decimals`` so that they sum to exactly 1
        (:func:`mixplan.simplex.rounding.round_mixture`). The searched optimum stays beside it as
        ``recommended_unrounded``, predicted the same way, so the plan states what typing it costs.
    prior_strength : float >= 0, optional
        lambda: every search of the plan (and the bucket policies) minimises the score plus
        lambda * KL(w || prior) toward ``pools.prior`` (:mod:`mixplan.mixture.prior`); the plan
        then reports the prior and each mixture's KL to it. None: no regularisation (0 gives the same mixture).
    search_options
        Passed to :func:`mixplan.simplex.search` (``n_candidates``, ``top_k``, ...).
    """
    if list(model.pools) != pools.names:
        raise ValidationError(f"the model was fitted on pools {model.pools} but the manifest lists "
                              f"{pools.names}; refit with this manifest or use the model's")
    caps_unmet = None
    try:
        c = constraints if constraints is not None else build_constraints(pools, tokens, pins)
    except InfeasibleError as exc:
        # The manifest's epoch caps cannot be met at this budget. A repetition-aware plan prices repetition
        # instead of capping it, so it goes on without them; the hard-cap alternative is reported as infeasible.
        if (repetition is None and scale is None) or combine_caps:
            raise
        caps_unmet = str(exc)
        c = build_constraints(_uncapped(pools), tokens, pins)
    objective = model.objective
    prior_info = None
    pinned = np.array([n in (pins or {}) for n in pools.names])
    if prior_strength is not None:
        from .prior import prior_penalty

        if not pools.tokens_known and all(p.prior is None for p in pools):
            raise ValidationError("--prior-strength needs a prior: a pool manifest (--pools) with each pool's tokens "
                                  "(the prior is the token share) or a per-pool 'prior'")
        # Pinned pools are left out of the KL (a constant there); one penalty for every search below.
        # KL(w || prior) is infinite wherever w > 0 on a pool of prior 0: a floor there leaves no finite mixture
        forced = [n for n, p, lo, pin in zip(pools.names, pools.prior, c.lower, pinned)
                  if p <= 0 and lo > 0 and not pin]
        if forced:
            raise ValidationError(f"--prior-strength: pool {forced[0]!r} has prior 0 but must get weight (a floor of "
                                  f"{c.lower[pools.names.index(forced[0])]:g}): the KL to the prior is infinite for "
                                  "every allowed mixture; give it a prior > 0 or drop its floor")
        search_options = dict(search_options) | {"penalty": prior_penalty(prior_strength, pools.prior, ~pinned)}
        given = sum(p.prior is not None for p in pools)
        prior_info = {"strength": float(prior_strength), "prior": dict(zip(pools.names, map(float, pools.prior))),
                      "source": ("token share" if not given else "the manifest's per-pool prior" if given == len(pools)
                                 else f"the manifest's prior for {given} of {len(pools)} pools, token share for "
                                      "the rest"),
                      "pinned_excluded": [n for n in pools.names if n in (pins or {})]}

    # The first tenth of the trees (at least 100) ranks candidates almost like the full model
    # at a fraction of the cost; the survivors are re-scored exactly (LightGBM-only models).
    n_trees = min(t.regressor.n_trees_ for t in model.targets)
    fast_trees = max(100, n_trees // 10) if n_trees > 200 else None

    def score(W: np.ndarray, fast: bool) -> np.ndarray:
        return objective.score(model.predict_mean(W, num_iteration=fast_trees if fast else None))

    given_options, search_options = search_options, model_search_options(model.tree_share, search_options)
    result = search(score, c, pools.prior, seed=seed, extra=model.train_weights, **search_options)
    result, exact_info = _exact_optimum(model, score, result, c, prior_strength, pools.prior, ~pinned)
    first = result
    repetition_info = scale_info = None
    hard_cap = {} if caps_unmet else {"hard_cap": result}  # the first search: the manifest's caps
    if repetition is not None:
        if tokens is None:
            raise ValidationError("the repetition-aware objective needs the target budget (--tokens or --flops)")
        result, repetition_info = _repetition_optima(model, pools, tokens, pins, repetition,
                                                     None if caps_unmet else result, c, seed, combine_caps,
                                                     search_options)
    if scale is not None:
        if tokens is None:
            raise ValidationError("the at-scale plan needs the target budget (--tokens or --flops)")
        # Caps unmet: c is already the uncapped set, and the first search the proxy-scale optimum.
        free = c if caps_unmet else build_constraints(_uncapped(pools), tokens, pins)
        if repetition_info is None:
            blind = result if caps_unmet else search(score, free, pools.prior, seed=seed, extra=model.train_weights,
                                                     **search_options)
            optima = {"proxy_scale": blind} | hard_cap
        else:  # the repetition-aware optimum becomes an alternative to the at-scale one
            rep_optima = repetition_info.pop("optima")
            optima = {"proxy_scale": rep_optima["repetition_blind"], **hard_cap, "repetition_aware": result}
        scale_info = {"optima": optima}
        result = search(lambda W, fast: objective.score(scale.predict_mean(W, tokens)), c if combine_caps else free,
                        pools.prior, seed=seed, extra=model.train_weights,
                        **model_search_options(_tree_share(model, scale), given_options))

    ot_info = None
    if ot is not None:
        result, ot_info = _ot_optima(model, ot, ot_mode, ot_base_tokens, tokens, c, result)
    if exact_info is not None and exact_info["used"] and result is not first:
        # a later step (repetition-aware, at-scale, OT) chose the recommendation: the exact optimum is the proxy
        # scale's (shown among the alternatives), not the recommended mixture
        exact_info["of"] = "the proxy-scale optimum under the manifest's caps, not the recommendation"
    recommended_w, policies = result.weights, None
    if buckets is not None:
        recommended_w, policies = _bucket_policies(buckets, pools, model, scale, tokens, result.weights, c, seed,
                                                   given_options)

    unrounded = None
    if decimals is not None or min_weight > 0:
        from ..simplex.rounding import round_mixture

        pinned_groups = [g for g in (pins or {}) if g in c.group_names]
        if pinned_groups:  # rounding holds pinned pools, not a group's total: the pin would silently break
            raise ValidationError(f"--round / --min-weight with the group {pinned_groups[0]!r} pinned is not "
                                  "supported (rounding keeps pinned pools exact, not a group's total): leave the "
                                  "rounding out, or pin the group's pools instead")

        unrounded = recommended_w
        recommended_w = round_mixture(unrounded, decimals, min_weight,
                                      fixed=[n in (pins or {}) for n in pools.names])
    if best_run is None:
        i = objective.best(model.train_y)
        best_run = (model.train_ids[i], model.train_weights[i], float(model.train_y[i]))
    named = {
        "recommended": recommended_w,
        **({} if unrounded is None else {"recommended_unrounded": unrounded}),
        **({} if policies is None else {"threshold": policies["threshold"].weights,
                                        "whole_pools": policies["whole pools"].weights}),
        **({} if policies is None or isinstance(policies["plan_then_filter"], str) else
           {"plan_then_filter": policies["plan_then_filter"]}),
        **({} if scale_info is None else {k: v.weights for k, v in scale_info["optima"].items()}),
        **({} if repetition_info is None else {k: v.weights for k, v in repetition_info.get("optima", {}).items()}),
        **({} if ot_info is None else ot_info.pop("optima")),
        "top_k_mean": result.topk_weights,
        "token_proportional": pools.token_share,
        "uniform": np.full(len(pools), 1.0 / len(pools)),
        "best_observed": np.asarray(best_run[1], dtype=float),
    }
    if not pools.tokens_known:  # without a manifest the token share is unknown, not uniform
        del named["token_proportional"]
    # The searched mixtures without the projection's rounding residue (a pool at 1e-16 is a pool not read); a
    # measured run's weights stay as recorded.
    pinned = np.array([n in (pins or {}) for n in pools.names])
    named = {k: w if k == "best_observed" else _clean_zeros(w, pinned) for k, w in named.items()}
    recommended_w = named["recommended"]
    W = np.vstack(list(named.values()))
    pred = model.predict(W, level=level)
    # Feasible: within the manifest's constraints (none is, when its epoch caps cannot be met at all).
    feasible = np.zeros(len(W), dtype=bool) if caps_unmet else c.check(W, tol=1e-6)
    mixtures: dict[str, dict[str, Any]] = {}
    for k, (name, w) in enumerate(named.items()):
        entry = {"weights": dict(zip(pools.names, map(float, w)))} | pred.row(k) | {"feasible": bool(feasible[k])}
        if tokens is not None:
            entry["epochs"] = dict(zip(pools.names, map(float, w * tokens / pools.tokens)))
        if repetition is not None:
            entry["at_budget"] = _at_budget(model, repetition, w, tokens, pools, level)
        entry["measured"] = None
        mixtures[name] = entry
    if prior_info is not None:
        from .prior import kl_divergence

        kl = kl_divergence(W, pools.prior, ~pinned)
        # None: weight on a pool of prior 0, outside the prior's support (JSON has no infinity)
        prior_info["kl"] = {name: float(v) if np.isfinite(v) else None for name, v in zip(named, kl)}
    if scale is not None:
        for entry, at_scale in zip(mixtures.values(), scale.predict(W, tokens, pools.tokens)):
            entry["at_scale"] = at_scale
    if ot_info is not None:
        _ot_entries(ot, ot_info, mixtures, W, pred)
    # How sure is "recommended beats X"? (GP posterior of the difference, calibrated on the CV errors.)
    # p_recommended_better is of the prediction the decision rests on (headline()); when that is at the
    # target budget, p_recommended_better_proxy is of the proxy-scale 'prediction' printed beside it: a
    # mixture the proxy scale prefers may be worse at the budget, and a probability beside a prediction
    # must be of that prediction.
    others = [n for n in named if n != "recommended"]
    p_proxy = model.prob_better(W[0], W[1:], level=level)
    p_better = p_proxy
    if scale is not None:  # at the target budget, from the at-scale model's calibrated spread
        p_better = scale.prob_better(W[0], W[1:], tokens)
    elif repetition is not None:  # compare at the target budget: effective mixtures plus the data term
        Wt, frac = repetition.effective(W, tokens, pools.tokens, pools.r_star)
        p_better = model.prob_better(Wt[0], Wt[1:], level=level, offsets=-repetition.gamma * np.log(frac))
    for n, p, q in zip(others, p_better, p_proxy):
        mixtures[n]["p_recommended_better"] = float(p)
        if p_better is not p_proxy:
            mixtures[n]["p_recommended_better_proxy"] = float(q)
    mixtures["best_observed"]["run_id"] = best_run[0]
    mixtures["best_observed"]["measured"] = best_run[2]
    for name, value in (measured or {}).items():
        mixtures[name]["measured"] = float(value)

    notes = []
    from .derived import derived_notes, derived_summary

    derived = derived_summary(buckets.pools if buckets is not None else pools, pools.names, W, list(named), tokens)
    notes += derived_notes(derived)
    if caps_unmet:
        kind = "at-scale" if scale is not None else "repetition-aware"
        notes.append(f"the manifest's epoch caps cannot be met at {tokens:.6g} tokens ({caps_unmet}); the {kind} plan "
                     "prices the repetition instead, and there is no hard-cap alternative")
    rec = mixtures["recommended"]
    identified = _identify(mixtures, pools.names, repetition, scale, tokens)
    if identified is not None and not identified["identified"]:
        notes.append(identified["message"])
    level = rec.get("at_scale", {}).get("evidence", {}).get("level_unchecked")
    if level:
        others = ", ".join(f"{k} {v:.4f}" for k, v in level.items())
        notes.append(f"the level at {tokens:.6g} {pools.token_unit} is not checked by any held-out run on the whole "
                     f"pools above the proxy budget; the {scale.chosen} predicts {rec['at_scale']['prediction']:.4f} "
                     f"for the recommended mixture, {others}: its interval spans them; train a few runs at a larger "
                     "budget (--scale-runs) to check the level (the choice between mixtures is checked by the matched "
                     "runs)")
    rounding = None
    if unrounded is not None:
        rounding = _rounding_summary(mixtures, pools.names, decimals, min_weight)
        if not rec["feasible"] and mixtures["recommended_unrounded"]["feasible"]:
            notes.append(f"the typed mixture (--round {decimals}, --min-weight {min_weight:g}) breaks a constraint the "
                         "searched one meets (a floor, pin or availability cap); use more decimals or a lower "
                         "--min-weight")
    if not rec["covered"]:
        notes.append(f"the recommended mixture is {rec['nearest_distance']:.3f} (total variation) from the nearest "
                     f"proxy run {rec['nearest_run']!r}, beyond the {model.coverage_radius:.3f} that the runs "
                     "cover; its prediction is an extrapolation: train proxy runs near it (mixplan design) to check")
    rho = model.cv["spearman"]
    if rho is None or np.isnan(rho) or rho < 0.8:
        notes.append(f"the model ranks held-out runs poorly ({cv_summary(model.cv)}); add runs or try "
                     "another --model before trusting the recommendation")
    for n in notes:
        warnings.warn(n, ExtrapolationWarning, stacklevel=2)

    search_info = dict(result.settings) | {
        "n_prefilter_scored": result.n_prefilter, "candidates_by_origin": _candidate_origins(result),
        "n_exact_scored": result.n_exact,
        "prefilter_trees": fast_trees, "refine_moves": result.refine_steps,
        # the objective that chose the recommendation: the at-scale law alone has no trees
        "tree_share": _tree_share(model, scale),
        "best_candidate_prediction": objective.unscore(result.best_candidate_score),
        "top_k_mean_prediction": objective.unscore(result.topk_score),
    } | ({} if exact_info is None else {"exact": exact_info})
    return Plan(pools=pools.names, objective=model.objective.to_dict(), tokens=tokens,
                token_unit=pools.token_unit, recommended=mixtures["recommended"]["weights"], mixtures=mixtures,
                active=active_constraints(recommended_w, c),
                constraints=c.to_dict(),
                cv=model.to_dict()["cv"],
                search=search_info, seed=seed, warnings=notes, result=result, ot=ot_info, rounding=rounding,
                buckets=None if buckets is None else _bucket_summary(
                    buckets, policies, W, list(named), tokens,
                    scale.r_star if scale is not None else None if repetition is None else repetition.r_star,
                    None if scale is None else scale.r_star_pools),
                scale=None if scale is None else scale.to_dict() | {
                    "report": scale.report(), "search_caps": "manifest max_epochs" if combine_caps else "none",
                    **({"hard_caps_unmet": caps_unmet} if caps_unmet else {})},
                models=[{k: t[k] for k in ("column", "model", "components", "selection", "cv")}
                        for t in model.target_summaries()],
                identification=identified, derived=derived, prior=prior_info,
                hierarchy=_hierarchy(c, named, recommended_w),
                repetition=None if repetition is None else repetition.to_dict() | {
                    "aware_search_caps": "manifest max_epochs" if combine_caps else "none",
                    **({"hard_caps_unmet": caps_unmet} if caps_unmet else {}),
                    "r_star_from_manifest": {p.name: p.r_star for p in pools if p.r_star is not None}})


def _hierarchy(c: Constraints, named: Mapping[str, np.ndarray], w: np.ndarray) -> dict[str, Any] | None:
    """Groups of pools in the plan: bounds, each mixture's group totals, the bounds the recommended mixture's
    totals sit on."""
    if not c.group_names:
        return None
    totals = {n: dict(zip(c.group_names, map(float, c.group_totals(v)[0]))) for n, v in named.items()}
    return {"groups": c.groups_dict(), "totals": totals, "active": active_group_constraints(w, c)}


def _bucket_policies(layout: Any, pools: PoolSet, model: MixtureModel, scale: Any, tokens: float | None,
                     searched: np.ndarray, c: Constraints, seed: int,
                     search_options: Mapping[str, Any]) -> tuple[np.ndarray, dict[str, Any]]:
    """The threshold and whole-pool optima and the quality-weighted one (:func:`plan_policies`) under
    the plan's loss, and the recommended mixture: the quality-weighted optimum when it beats the
    plan's own search and is feasible."""
    from .buckets import plan_policies

    if list(layout.names) != pools.names:
        raise ValidationError(f"the bucket layout's pools {list(layout.names)} are not the plan's {pools.names}")
    objective = model.objective

    penalty = search_options.get("penalty")  # --prior-strength: the policies minimise what the search minimises

    def loss(W: np.ndarray) -> np.ndarray:
        pred = scale.predict_mean(W, tokens) if scale is not None else model.predict_mean(W)
        return objective.score(pred) + (0.0 if penalty is None else penalty(W))

    # the refinement rule for the policies' loss (the at-scale model's when there is one), or the caller's choice
    given = {k: v for k, v in search_options.items() if k == "refine_rounds"}
    policies = plan_policies(loss, layout, seed=seed, n_candidates=int(search_options.get("n_candidates", 4000)),
                             **model_search_options(_tree_share(model, scale), given))
    policies["plan_then_filter"] = _plan_then_filter(layout, policies["whole pools"].pool_weights, tokens)
    best = policies["quality-weighted"]
    if best.loss < float(loss(searched[None, :])[0]) and c.check(best.weights[None, :], tol=1e-6)[0]:
        return best.weights, policies
    return searched, policies


def _plan_then_filter(layout: Any, pool_weights: np.ndarray, tokens: float | None) -> np.ndarray | str:
    """"Plan, then filter each pool on its own" (today's ``plan`` and ``filter`` chained): the whole-pool
    plan's weights, then each bucketed pool's keep-count chosen by :func:`mixplan.filtering.plan_filter`
    for that pool alone at its share of the budget, from the manifest's per-bucket QQT ``b``, ``tau``.
    A string says why it cannot be built (no budget, no ``b``/``tau``, buckets counted in samples)."""
    from ..filtering.planner import plan_filter

    if tokens is None:
        return "needs the target budget (--tokens or --flops)"
    keep = layout.n_buckets.copy()
    for i, pool in enumerate(layout.pools):
        spec = pool.buckets
        if spec is None or pool_weights[i] <= 0:
            continue
        if spec.unit != "tokens" or any(b.b is None or b.tau is None for b in spec.buckets):
            return (f"pool {pool.name!r}: its buckets need b and tau in the manifest (in tokens) for the per-pool "
                    "filter; fit them with mixplan filter --runs, or give published ones")
        keep[i] = int(plan_filter(spec, [pool_weights[i] * tokens]).result.best[0])
    return layout.threshold(pool_weights, keep)[0]


def _bucket_summary(layout: Any, policies: dict[str, Any], W: np.ndarray, names: list[str],
                    tokens: float | None = None, r_star: float | None = None,
                    r_star_pools: Any = None) -> dict[str, Any]:
    """Per mixture: each pool's total weight, the share of its tokens in buckets read and the last bucket
    read (its top fraction or score cut-off); with a budget, per bucket the tokens drawn, epochs and
    Muennighoff effective tokens (at the bucket's own R* where the law has one, else the plan's, else
    15.39); the policies' keep-counts."""
    from ..laws import pool_effective_tokens
    from .repetition import DEFAULT_R_STAR

    V, F = layout.pool_weights(W), layout.keep_fraction(W)
    chained = policies["plan_then_filter"]
    mixtures: dict[str, dict[str, Any]] = {}
    r = DEFAULT_R_STAR if r_star is None else float(r_star)
    own = np.array([np.nan if v is None else v for v in (r_star_pools or [None] * len(layout.names))], dtype=float)
    r_col = np.where(np.isnan(own), r, own)
    # what each column read, and what that is worth repeated (Muennighoff), as the at-scale law counts it
    eff = None if tokens is None else pool_effective_tokens(W, float(tokens), layout.sizes, r_col)
    R = layout.read(W)
    for i, n in enumerate(names):
        entry: dict[str, Any] = {"pool_weights": dict(zip(layout.pools.names, map(float, V[i]))),
                                 "keep_fraction": dict(zip(layout.pools.names, map(float, F[i]))), "last_bucket": {}}
        for j, pool in enumerate(layout.pools):
            read = np.flatnonzero((layout.parent == j) & R[i])
            if pool.buckets is not None and len(read):
                b = pool.buckets.buckets[int(layout.rank[read].max())]
                entry["last_bucket"][pool.name] = {"bucket": b.name, "top": b.top, "cutoff": b.cutoff}
        if tokens is not None:
            D = W[i] * float(tokens)
            entry["buckets"] = {c: {"tokens": float(d), "epochs": float(d / u), "effective_tokens": float(e)}
                                for c, d, u, e in zip(layout.names, D, layout.sizes, eff[i])}
        mixtures[n] = entry
    return {"pools": list(layout.pools.names),
            "bucketed": [p.name for p in layout.pools if p.buckets is not None],
            **({"plan_then_filter": f"not shown: {chained}"} if isinstance(chained, str) else {}),
            "keep": {"threshold": {n: int(k) for n, k in zip(layout.pools.names, policies["threshold"].keep)}},
            "threshold_search": policies["threshold"].search,
            **({} if tokens is None else {"r_star": r, "r_star_source": "the plan's" if r_star is not None
                                          else "Muennighoff et al. (none fitted)",
                                          **({} if r_star_pools is None else {"r_star_own": {
                                              c: v for c, v in zip(layout.names, r_star_pools) if v is not None}})}),
            "mixtures": mixtures}


def _bucket_table(info: dict[str, Any]) -> str:
    """Pool weight and keep-fraction (share of the pool's tokens in buckets read) per policy mixture."""
    rows = []
    for name in [n for n in ("recommended", "threshold", "plan_then_filter", "whole_pools") if n in info["mixtures"]]:
        m = info["mixtures"][name]
        rows.append({"mixture": name} | {p: f"{m['pool_weights'][p]:.3f} ({100 * m['keep_fraction'][p]:.0f}%)"
                                         for p in info["pools"]})
    return ("per pool: weight (share of its tokens in the buckets read); recommended = free weights per "
            "bucket, threshold = each pool's top buckets sampled by size, plan_then_filter = whole_pools' weights "
            "then each pool filtered on its own (mixplan filter), whole_pools = no filtering\n"
            + pd.DataFrame(rows).to_string(index=False)
            + (f"\nplan_then_filter {info['plan_then_filter']}" if "plan_then_filter" in info else "")
            + (f"\nthreshold keep-counts: {info['threshold_search']}"
               if "coordinate" in info["threshold_search"] else "")
            + _bucket_detail(info))


def _bucket_detail(info: dict[str, Any]) -> str:
    """The recommended mixture per bucket at the budget: tokens drawn, epochs, effective tokens."""
    per = info["mixtures"].get("recommended", {}).get("buckets")
    if not per:
        return ""
    rows = [{"bucket": c, "tokens": f"{v['tokens']:.4g}", "epochs": f"{v['epochs']:.3g}",
             "effective tokens": f"{v['effective_tokens']:.4g}"} for c, v in per.items() if v["tokens"] > 0.5]
    own = " or a pool's own" if info.get("r_star_own") else ""
    return (f"\nrecommended at the budget, per pool read (effective tokens: repeats discounted with R* = "
            f"{info['r_star']:.4g}{own}):\n"
            + pd.DataFrame(rows).to_string(index=False))
