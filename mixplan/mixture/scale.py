r"""The mixture at the big run's budget: how each mixture's loss changes from the proxy runs' scale to the
target's, chosen and calibrated on held-out scales (issue 16).

A plan at the proxy budget needs one regressor; a plan at 10-1000x that budget needs to know how each
pool's value changes with the amount of data, since a small valuable pool is exhausted (repeated) at
a large budget while pools that keep scaling take its place. With runs at two or more budgets
(the proxy runs plus a few at a larger budget), three models of that change are fitted:

- ``effective-data law``: the per-pool effective-data mixture law
  (:func:`mixplan.laws.mixture_effective_law`), alone;
- ``regressor + law change``: the proxy-scale regressor :math:`f` for the mixture's shape, plus the
  law's change from the proxy budget :math:`T_0` to :math:`T`:
  :math:`f(w) + L(w, T) - L(w, T_0)`;
- ``repetition-aware regressor``: :math:`f` on the effective mixture plus a log-effective-data term
  (:mod:`mixplan.mixture.repetition`; fitting it needs two budgets, so checking it out of scale
  needs three).

**Choice by leave-one-scale-out** (as ``auto`` chooses a regressor by CV): each model is fitted on the
runs below the largest budget and predicts the runs at it; the smallest root-mean-square error
*between mixtures* wins -- the errors' standard deviation, their mean removed, since which mixture is
lowest at the target depends on the differences and not on the level every mixture shares (the
level's error is not lost: it enters the intervals' calibration). With budgets
:math:`T_1 < \dots < T_m` every fold :math:`k \ge 2` (fit below :math:`T_k`, predict :math:`T_k`) is used
for the intervals. **Repetition-matched runs** (proxy-budget runs on pools subsampled so that they read
each pool as often as the big run: :func:`mixplan.design_swarm` with ``match_budget``) stand in for the
budget they match; when they make up the largest held-out scale they are *cross-validated* instead
(``MATCHED_FOLDS`` folds, the other runs and folds in the fit): they are the runs at the big run's
repetition, and the question is how well a model that has seen them predicts other mixtures there --
holding all of them out would choose among models that never saw that repetition (on the trained demo
that chose a mixture 0.029 bits per byte worse at 16M bytes).

**A level nothing checked.** Matched runs check the differences between mixtures and the price of
repetition, not how the loss falls with more fresh data: when no held-out run on the whole pools lies
above the proxy budget, every model extrapolates the level by its own form (on the demo, 16x beyond
the largest real run, the chosen model said 2.65 and the law 3.00 where 2.82 was measured). The
intervals then span the predictions of every model whose held-out error between mixtures is within
``LEVEL_WINDOW`` of the chosen one's (an Occam's window: the runs do not tell them apart), and the report
and each prediction's evidence say so.

**Intervals that hold out of scale** (mixplan's construction). A bootstrap over the runs gives each
prediction's spread :math:`s(w, T)` from the parameters; it grows with the distance extrapolated. On
the held-out folds the standardised errors :math:`z_j = (y_j - \hat y_j)/\sqrt{s_j^2 + \sigma^2}`
(:math:`\sigma`: the runs' noise, the law's robust residual scale) say whether that spread is honest;
their split-conformal quantile :math:`q` at ``level`` (1.645 at 90% when it is; never less: held-out
errors widen the spread, they do not narrow it) multiplies it: the
expected loss of a mixture at :math:`T` lies in :math:`\hat y \pm q\, s(w, T)`, one trained run in
:math:`\hat y \pm q \sqrt{s^2 + \sigma^2}`. With runs at one budget there is no such model and no
interval at the target: :func:`fit_at_scale` refuses, and the plan says the level there is unknown.

Details that matter for the decision: the law's predictions are the mean over the fit and its
bootstrap refits (the search then does not chase one refit's optimism); when the runs do not
identify :math:`R^*` it is set to Muennighoff's value and a factor ``R_STAR_FACTOR`` either way enters
the spread (see :func:`_fit_law`); when the proxy runs are the largest budget no fold can check the
regressor, and ``regressor + law change`` (exactly the regressor at the proxy budget) is used with
the law's folds calibrating its change.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .._stats import conformal_quantile, normal_cdf, normal_ppf, spearman
from ..exceptions import ValidationError
from ..laws.fitting import LawFit, fit_law, robust_scale
from ..laws.mixture import mixture_effective_law, mixture_effective_theta
from .repetition import DEFAULT_R_STAR, epochs_read, equivalent_tokens, fit_repetition

__all__ = ["AtScaleModel", "fit_at_scale", "SCALE_MODELS"]

SCALE_MODELS = ("effective-data law", "regressor + law change", "repetition-aware regressor")

#: (W, T, N, spread, U) -> (mean, sd); N the model size, None when the runs do not vary it; U each row's
#: unique tokens of each pool (runs on subsampled pools), None for the whole pools
Predictor = Callable[[np.ndarray, float, float | None, bool, np.ndarray | None], tuple[np.ndarray, np.ndarray]]


@dataclass
class _Fitted:
    """One model of the change with scale, fitted on some runs: mean and parameter spread at (W, T)."""

    name: str
    predict: Predictor
    noise: float
    details: dict[str, Any] = field(default_factory=dict)


def _law_thetas(fit: LawFit) -> np.ndarray:
    """The fit's and its bootstrap refits' parameter vectors in the law's own (log) space."""
    rows = [list(fit.params.values())] + ([] if fit.bootstrap is None else fit.bootstrap.tolist())
    return mixture_effective_theta(list(fit.params), np.array(rows, dtype=float))


#: R*'s bootstrap interval spanning more than this factor: the runs do not identify it (see _fit_law).
R_STAR_SPAN = 10.0
#: Then R* is taken as Muennighoff's value within this factor either way at the interval's level (an
#: assumption, stated in the report: their R_D* was measured on C4, other data may repeat better or worse).
R_STAR_FACTOR = 3.0


def _fit_law(W: np.ndarray, T: np.ndarray, N: np.ndarray | None, y: np.ndarray, pools: list[str], unique: np.ndarray,
             reference: float, r_star: float | None, n_bootstrap: int, seed: int,
             shape: Mapping[str, Any] | None = None,
             available: np.ndarray | None = None) -> tuple[Any, LawFit, np.ndarray, float, list[Any]]:
    """The law with R* fitted; when the runs do not identify it (its interval spans more than
    ``R_STAR_SPAN``x, or the fit ends at a bound: runs that read pools a few times cannot tell a
    half-life of 20 repetitions from one of 2,000), refitted with R* fixed at Muennighoff et al.'s
    R_D* = 15.39 -- the optimizer would otherwise buy the most repetition where the fit is most
    optimistic -- and the same law at R* / ``R_STAR_FACTOR`` and R* x ``R_STAR_FACTOR`` is returned, so
    that predictions can carry R*'s uncertainty. ``shape``: the law's ``groups`` and ``r_star_pools``
    (:func:`mixplan.laws.mixture_effective_law`); pools with their own R* keep it throughout. ``available``:
    each run's unique tokens of each pool when some runs trained on subsampled pools."""
    data = ({"tokens": T, "weights": W} | ({} if N is None else {"params": N})
            | ({} if available is None else {"unique": available}))
    sized = N is not None  # runs at several model sizes: the law's A / N^alpha term

    def law_at(r: float | None) -> Any:
        return mixture_effective_law(pools, unique, r_star=r, reference=reference, params=sized,
                                     per_run_unique=available is not None, **(shape or {}))

    law = law_at(r_star)
    fit = fit_law(law, data, y, n_bootstrap=n_bootstrap, n_starts=3, seed=seed, delta="auto",
                  where="runs at several budgets")
    alt: list[Any] = []
    if r_star is None and "log_r_star" in law.theta_names:  # not when every pool has its own R*
        lo, hi = fit.intervals.get("R_star", (0.0, np.inf))
        if "R_star" in fit.at_bound or not (lo > 0 and hi / lo <= R_STAR_SPAN):
            law = law_at(DEFAULT_R_STAR)
            fit = fit_law(law, data, y, n_bootstrap=n_bootstrap, n_starts=3, seed=seed, delta="auto",
                          where="runs at several budgets")
            alt = [law_at(DEFAULT_R_STAR * f) for f in (1 / R_STAR_FACTOR, R_STAR_FACTOR)]
            note = (f"R* not identified by these runs (bootstrap interval [{lo:.3g}, {hi:.3g}]); set to Muennighoff "
                    f"et al.'s {DEFAULT_R_STAR:.4g}, within a factor {R_STAR_FACTOR:g} either way in the intervals (an "
                    "assumption: add runs that repeat the small pools more to measure it)")
            fit = replace(fit, warnings=[note, *fit.warnings])
    thetas = _law_thetas(fit)
    noise = robust_scale(y - np.exp(law.log_predict(thetas[0], data)))
    return law, fit, thetas, noise, alt


def _law_values(law: Any, thetas: np.ndarray, W: np.ndarray, T: float, N: float | None = None,
                U: np.ndarray | None = None) -> np.ndarray:
    data = ({"tokens": np.full(len(W), float(T)), "weights": W} | ({} if N is None else {"params": np.full(len(W), N)})
            | ({} if U is None else {"unique": U}))
    return np.array([np.exp(law.log_predict(t, data)) for t in thetas])  # (1 + B, n)


def _fit_candidates(model: Any, W: np.ndarray, T: np.ndarray, N: np.ndarray | None, y: np.ndarray, pools: list[str],
                    unique: np.ndarray, T0: float, N0: float | None, r_star: float | None, n_bootstrap: int,
                    seed: int, level: float, regressor: bool = True, shape: Mapping[str, Any] | None = None,
                    available: np.ndarray | None = None,
                    synthetic: np.ndarray | None = None) -> tuple[dict[str, _Fitted], dict[str, str]]:
    """Every model of the change that these runs can fit (without the regressor's when it was fitted
    on the runs to be predicted); the others with the reason. ``N``: the runs' model sizes when they
    vary (``N0`` the proxy runs'), else None. ``available``: each run's unique tokens of each pool when
    some trained on subsampled pools (repetition-matched runs), else None."""
    skipped: dict[str, str] = {}
    law, fit, thetas, noise, alt = _fit_law(W, T, N, y, pools, unique, T0, r_star, n_bootstrap, seed, shape,
                                            available)
    z = normal_ppf((1 + level) / 2)

    def r_star_sd(Wq: np.ndarray, Tq: float, Nq: float | None, base: bool, Uq: np.ndarray | None) -> np.ndarray:
        """The spread from R*'s assumed range (0 when the runs measured R*), of L(T) or of L(T) - L(T0)."""
        if not alt:
            return np.zeros(len(Wq))
        ends = [_law_values(a, thetas[:1], Wq, Tq, Nq, Uq)[0]
                - (_law_values(a, thetas[:1], Wq, T0, N0)[0] if base else 0.0) for a in alt]
        return np.abs(ends[1] - ends[0]) / (2 * z)

    def law_alone(Wq: np.ndarray, Tq: float, Nq: float | None, spread: bool,
                  Uq: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        v = _law_values(law, thetas, Wq, Tq, Nq, Uq)
        if not spread or len(v) <= 2:
            return v.mean(axis=0), np.zeros(len(Wq))
        return v.mean(axis=0), np.hypot(v[1:].std(axis=0, ddof=1), r_star_sd(Wq, Tq, Nq, False, Uq))

    def regressor_sd(Wq: np.ndarray) -> np.ndarray:
        return model.interval_scale(level) * model.predict_sd(Wq) / z

    def with_change(Wq: np.ndarray, Tq: float, Nq: float | None, spread: bool,
                    Uq: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        # from the proxy runs (the whole pools at T0, what the regressor was fitted on) to (T, N, U)
        change = _law_values(law, thetas, Wq, Tq, Nq, Uq) - _law_values(law, thetas, Wq, T0, N0)
        mean = model.predict_mean(Wq) + change.mean(axis=0)
        if not spread or len(change) <= 2:
            return mean, np.zeros(len(Wq))
        return mean, np.sqrt(regressor_sd(Wq) ** 2 + change[1:].var(axis=0, ddof=1)
                             + r_star_sd(Wq, Tq, Nq, True, Uq) ** 2)

    # the R* the law's predictions use: fitted, Muennighoff's fallback, or given
    r_law = fit.params.get("R_star", DEFAULT_R_STAR if alt else r_star)  # None: every pool has its own
    out = {"effective-data law": _Fitted("effective-data law", law_alone, noise, {"fit": fit, "r_star": r_law})}
    if not regressor:
        skipped |= {n: "the regressor was fitted on the runs held out" for n in SCALE_MODELS[1:]}
        return out, skipped
    out["regressor + law change"] = _Fitted("regressor + law change", with_change, noise, {"fit": fit, "r_star": r_law})
    A = np.broadcast_to(unique, W.shape) if available is None else available
    if N is not None:
        skipped["repetition-aware regressor"] = "does not model the model size (the runs span several)"
    elif (len(np.unique(equivalent_tokens(T, A, unique))) >= 2
          and (epochs_read(W, T, A) > 1).any()):
        rep = fit_repetition(model.predict_mean, W, T, y, A, T0, n_bootstrap=0, seed=seed, level=level, unique=unique,
                             synthetic=synthetic)

        def repetition(Wq: np.ndarray, Tq: float, Nq: float | None, spread: bool,
                       Uq: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
            Uq = unique if Uq is None else Uq
            obj = rep.at_scale(rep.objective(model.predict_mean, Wq, Tq, Uq), Tq)
            if not spread:
                return obj, np.zeros(len(Wq))
            return obj, regressor_sd(rep.effective(Wq, Tq, Uq)[0])

        out["repetition-aware regressor"] = _Fitted("repetition-aware regressor", repetition, noise,
                                                    {"model": rep, "r_star": float(rep.r_star)})
    else:
        skipped["repetition-aware regressor"] = "needs runs at two budgets, one of them repeating a pool"
    return out, skipped


@dataclass
class AtScaleModel:
    """The chosen model of how each mixture's loss changes with the budget, and its held-out record."""

    chosen: str
    level: float
    quantile: float  # q: the held-out standardised errors' conformal quantile
    noise: float
    budgets: tuple[float, ...]
    proxy_tokens: float
    max_epochs: np.ndarray  # the most each pool was read in any run (repetition observed)
    pools: list[str]
    holdout: dict[str, dict[str, Any]]
    skipped: dict[str, str]
    _predict: Predictor
    fit: LawFit | None = None
    sizes: tuple[float, ...] = ()  # the runs' model sizes when they vary (then the law has an N term)
    proxy_params: float | None = None
    #: the big run's model size, which every prediction is at (set by :meth:`at_params`)
    target_params: float | None = None
    #: Muennighoff's R* the chosen model discounts repeated tokens with (fitted, the fallback, or given;
    #: None when every pool has its own)
    r_star: float | None = None
    #: per pool its own R* (given) or None (``r_star`` applies); used by the law models, not by the
    #: repetition-aware regressor (one R*)
    r_star_pools: tuple[float | None, ...] | None = None
    #: the budgets repetition-matched runs (on subsampled pools) stand in for (their held-out scale)
    matched: tuple[float, ...] = ()
    #: when no held-out run on the whole pools above the proxy budget checked the level at larger budgets:
    #: the other models that predicted the held-out runs about as well (see ``LEVEL_WINDOW``); the intervals
    #: span their predictions as well as the chosen model's
    level_models: dict[str, Predictor] = field(default_factory=dict)
    #: the pools valued by their own rectified law (synthetic pools), by the repetition-aware regressor only
    pool_laws: tuple[str, ...] = ()

    def at_params(self, params: float | None) -> "AtScaleModel":
        """The same model, predicting for a big run of ``params`` parameters (needed when the runs span
        several model sizes; refused otherwise, since the fit then says nothing about size)."""
        if params is None:
            return replace(self, target_params=None)
        if not self.sizes:
            raise ValidationError(f"a model size ({params:g}) for the big run, but every run has the same size (or "
                                  "no params column): the at-scale model cannot tell how the loss changes with size")
        if not (np.isfinite(params) and params > 0):
            raise ValidationError(f"the big run's model size must be a positive number, not {params!r}")
        return replace(self, target_params=float(params))

    def _at(self, W: np.ndarray, tokens: float, spread: bool) -> tuple[np.ndarray, np.ndarray]:
        if self.sizes and self.target_params is None:
            raise ValidationError(f"the runs span model sizes {', '.join(f'{s:.4g}' for s in self.sizes)}: give the "
                                  "big run's size (--params, or --flops with --params)")
        return self._predict(np.atleast_2d(W), tokens, self.target_params, spread, None)

    def predict_mean(self, W: np.ndarray, tokens: float) -> np.ndarray:
        """The expected loss of every row of ``W`` at ``tokens`` (the search's objective)."""
        return self._at(W, tokens, False)[0]

    def predict(self, W: np.ndarray, tokens: float, unique: np.ndarray) -> list[dict[str, Any]]:
        """Per mixture: prediction, interval for its expected loss and for one trained run, and the
        evidence class (interpolation, or extrapolation in tokens / repetition, and by how much)."""
        W = np.atleast_2d(np.asarray(W, dtype=float))
        mean, sd = self._at(W, tokens, True)
        half = self.quantile * sd
        run_half = self.quantile * np.sqrt(sd ** 2 + self.noise ** 2)
        # The level unchecked (see level_models): each plausible model's interval, joined.
        others = {n: p(W, tokens, self.target_params, False, None)[0] for n, p in self.level_models.items()}
        low = np.min([mean, *others.values()], axis=0)
        high = np.max([mean, *others.values()], axis=0)
        out = []
        for k, w in enumerate(W):
            epochs = w * tokens / unique
            evidence = self.evidence(epochs, tokens)
            if others:
                evidence["level_unchecked"] = {n: float(v[k]) for n, v in others.items()}
            out.append({"prediction": float(mean[k]), "lower": float(low[k] - half[k]),
                        "upper": float(high[k] + half[k]), "run_lower": float(low[k] - run_half[k]),
                        "run_upper": float(high[k] + run_half[k]), "level": self.level, "model": self.chosen,
                        "evidence": evidence})
        return out

    def prob_better(self, w: np.ndarray, others: np.ndarray, tokens: float) -> np.ndarray:
        """P(``w``'s expected loss at ``tokens`` is below each of ``others``'), from the calibrated spreads
        taken as independent (the mixtures share the fit, so their errors are positively correlated and
        the true probabilities are further from 1/2: conservative)."""
        mean, sd = self._at(np.vstack([w, np.atleast_2d(others)]), tokens, True)
        scale = self.quantile / normal_ppf((1 + self.level) / 2) * np.hypot(sd[0], sd[1:])
        gap = mean[1:] - mean[0]
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(scale > 0, normal_cdf(gap / scale), (gap > 0).astype(float))

    def evidence(self, epochs: np.ndarray, tokens: float) -> dict[str, Any]:
        lo, hi = min(self.budgets), max(self.budgets)
        beyond = {p: {"epochs": float(e), "most_in_runs": float(m)}
                  for p, e, m in zip(self.pools, epochs, self.max_epochs) if e > max(m, 1.0) * 1.01}
        bigger = bool(self.sizes) and self.target_params > max(self.sizes) * 1.001  # type: ignore[operator]
        kind = ("interpolation" if lo <= tokens <= hi and not beyond and not bigger else
                "extrapolation in tokens" if tokens > hi else
                "extrapolation in model size" if bigger else
                "extrapolation below the runs' budgets" if tokens < lo else "extrapolation in repetition")
        out = {"class": kind, "tokens_over_largest_run": float(tokens / hi), "repetition_beyond_runs": beyond}
        if self.matched:  # runs on subsampled pools read the pools as often as a run at these budgets
            out["repetition_matched"] = bool(not beyond and tokens <= max(self.matched) * 1.01)
        if self.sizes:
            out["params_over_largest_run"] = float(self.target_params / max(self.sizes))  # type: ignore[operator]
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.chosen, "candidates": list(SCALE_MODELS), "level": self.level,
                "calibration_quantile": self.quantile, "noise_sd": self.noise, "budgets": list(self.budgets),
                "proxy_tokens": self.proxy_tokens, "sizes": list(self.sizes), "proxy_params": self.proxy_params,
                "target_params": self.target_params, "r_star": self.r_star,
                "r_star_pools": None if self.r_star_pools is None else list(self.r_star_pools),
                "matched_budgets": list(self.matched), "level_unchecked_models": list(self.level_models),
                "pool_laws": list(self.pool_laws),
                "holdout": self.holdout,
                "skipped": self.skipped,
                "law": None if self.fit is None else self.fit.to_dict() | {"bootstrap": None}}

    def report(self) -> str:
        how = (("chosen by cross-validation over the repetition-matched runs"
                if any(h.get("folds") for h in self.holdout.values()) else "chosen by leave-one-scale-out error")
               if self.chosen in self.holdout else
               f"the default: no held-out {'model size' if self.sizes else 'budget'} above the proxy runs'")
        sizes = f"; model sizes {', '.join(f'{s:.4g}' for s in self.sizes)}" if self.sizes else ""
        budgets = (', '.join(f'{b:.4g}' for b in self.budgets) if len(self.budgets) <= 6 else
                   f"{len(self.budgets)} from {self.budgets[0]:.4g} to {self.budgets[-1]:.4g}")
        matched = (f"; repetition-matched runs standing in for {', '.join(f'{b:.4g}' for b in self.matched)}"
                   if self.matched else "")
        lines = [f"at-scale model: {self.chosen} ({how}; budgets {budgets}{sizes}{matched})"]
        for name, h in self.holdout.items():
            how_fit = (f"{h['folds']}-fold over the repetition-matched runs, the others fitted on" if h.get("folds")
                       else "fitted below it")
            lines.append(f"  {name}: held-out error at {h['predicted']:.4g} ({how_fit}): RMSE {h['rmse']:.4g}, "
                         f"between mixtures {h['centred_rmse']:.4g} (mean {h['mean_error']:+.3g}), "
                         f"Spearman {'n/a' if h['spearman'] is None else format(h['spearman'], '.3f')}; "
                         f"{h['coverage']:.0%} of held-out runs in the uncalibrated {self.level:.0%} run interval")
        for name, why in self.skipped.items():
            lines.append(f"  {name}: {'used' if name == self.chosen else 'not used'} ({why})")
        if self.fit is not None and self.chosen in SCALE_MODELS[:2]:
            lines += [f"  law: {w}" for w in self.fit.warnings]
        if self.r_star_pools is not None:
            own = [f"{p} {r:.3g}" for p, r in zip(self.pools, self.r_star_pools) if r is not None]
            lines.append(f"  R* given for {len(own)} pool{'s' if len(own) > 1 else ''} ({', '.join(own)}): "
                         + ("the law uses them, the others share one" if self.chosen in SCALE_MODELS[:2] else
                            f"not used by the {self.chosen} (one R* for every pool)"))
        if self.pool_laws:
            used = self.chosen == "repetition-aware regressor"
            lines.append(f"  own data law (rectified, synthetic) of {', '.join(self.pool_laws)}: "
                         + ("its tokens are valued by it" if used else
                            f"not used by the {self.chosen}, which prices every pool by repetition alone; at a "
                            "budget past its plateau that pool's weight is over-valued"))
        if self.level_models:
            lines.append(f"  level above {self.proxy_tokens:.4g}: no held-out run on the whole pools above the proxy "
                         f"budget checks it (the matched runs check the differences between mixtures at their "
                         f"repetition, not the loss's fall with more fresh data); the intervals span the levels of "
                         f"{', '.join(self.level_models)} as well (held-out error within {LEVEL_WINDOW:g}x of the "
                         "chosen model's): add runs at a larger budget to check it")
        lines.append(f"  intervals: bootstrap spread x {self.quantile:.3g} (held-out calibration; "
                     f"{normal_ppf((1 + self.level) / 2):.3g} if the spread were exact), run noise sd {self.noise:.3g}")
        return "\n".join(lines)


#: repetition-matched runs whose stand-in budgets lie within this factor of each other are one held-out scale
MATCHED_SPAN = 1.25
#: folds of the cross-validation over the repetition-matched runs at the largest held-out scale
MATCHED_FOLDS = 5
#: With the level at larger budgets unchecked, the models whose held-out error between mixtures is within this
#: factor of the chosen model's are as plausible (an Occam's window): the intervals span their levels.
LEVEL_WINDOW = 2.0


def _stand_in_scales(T: np.ndarray, T_eq: np.ndarray) -> np.ndarray:
    """Each run's held-out budget: its own, or for a repetition-matched run the budget it stands in for, those
    within ``MATCHED_SPAN`` of each other as one (at their geometric mean): measured subsamples differ by
    a few percent from run to run, and a held-out scale of one run could be neither checked nor
    cross-validated."""
    axis = T_eq.astype(float)
    matched = T_eq != T
    group: list[float] = []
    for v in [*np.unique(T_eq[matched]), np.inf]:
        if group and v > group[0] * MATCHED_SPAN:
            at = matched & (T_eq >= group[0]) & (T_eq <= group[-1])
            axis[at] = np.round(np.exp(np.mean(np.log(group))), 6)
            group = []
        group.append(float(v))
    return axis


def _matched_folds(rows: np.ndarray, seed: int) -> list[np.ndarray]:
    """``rows`` (a mask) cut into up to ``MATCHED_FOLDS`` folds of at least two runs, at random (``seed``);
    none when there are too few runs for two."""
    idx = np.random.default_rng(seed).permutation(np.flatnonzero(rows))
    k = min(MATCHED_FOLDS, len(idx) // 2)
    if k < 2:
        return []
    out = []
    for part in np.array_split(idx, k):
        mask = np.zeros(len(rows), bool)
        mask[part] = True
        out.append(mask)
    return out


def fit_at_scale(model: Any, W: np.ndarray, tokens: np.ndarray, y: np.ndarray, unique: np.ndarray, *,
                 params: np.ndarray | None = None, proxy_tokens: float | None = None,
                 proxy_params: float | None = None, r_star: float | None = None, level: float = 0.9,
                 n_bootstrap: int = 60, seed: int = 0, groups: list[str] | None = None,
                 r_star_pools: Sequence[float | None] | None = None,
                 available: np.ndarray | None = None, synthetic: np.ndarray | None = None) -> AtScaleModel:
    """Fit, choose and calibrate the at-scale model on runs ``W`` at budgets ``tokens`` with measured
    losses ``y``: the proxy runs the regressor ``model`` was fitted on (at ``proxy_tokens``, default
    the smallest budget) and runs at other budgets; ``unique``: each pool's unique tokens;
    ``r_star``: a fixed R* for the law (None: fitted). ``params``: each run's model size, when the
    runs span several (the proxy runs' is ``proxy_params``, default the smallest): the law gets an
    :math:`A/N^\\alpha` term, the held-out scales are the model sizes (fit on the smaller ones, predict
    the next) and predictions are at :meth:`AtScaleModel.at_params`. ``groups``: per pool, the pool it
    is a quality bucket of (:mod:`mixplan.mixture.buckets`): the law's buckets of one pool share a term
    in their quality-weighted effective tokens (``mixture_effective_law(groups=...)``). ``r_star_pools``:
    per pool its own fixed R* or None (e.g. the manifest's ``r_star`` of a pool or a bucket); the others
    share ``r_star`` or the fitted one. The regressor's models are checked only on folds whose held-out
    scale is above the proxy runs' (below it they would predict their own training runs).

    ``available``: each run's unique tokens of each pool (n, P) when some runs trained on subsampled pools
    (repetition-matched runs, :func:`mixplan.design_swarm` with ``match_budget``): they read the pools as often
    as a run at a larger budget would, and the held-out scale of a run is the budget it stands in for
    (:func:`mixplan.mixture.repetition.equivalent_tokens`), so matched runs at the proxy budget are predicted
    from the runs on the whole pools before they are fitted on.

    ``synthetic``: per pool its rectified law ``(D_l, beta)``, NaN rows for the others
    (:attr:`mixplan.data.pools.PoolSet.synthetic`): the repetition-aware regressor values such a pool's tokens
    by its own law (:func:`mixplan.mixture.repetition.effective_mixture`); the law models price every pool by
    repetition alone (the report says so)."""
    W = np.atleast_2d(np.asarray(W, dtype=float))
    T = np.asarray(tokens, dtype=float)
    y = np.asarray(y, dtype=float)
    unique = np.asarray(unique, dtype=float)
    shape = {"groups": groups} | ({} if r_star_pools is None or all(r is None for r in r_star_pools)
                                 else {"r_star_pools": list(r_star_pools)})
    A = None
    if available is not None:
        A = np.asarray(available, dtype=float)
        if A.shape != W.shape or not np.all(np.isfinite(A) & (A > 0)) or np.any(A > unique * (1 + 1e-9)):
            raise ValidationError("each run's unique tokens (available) must be positive, at most the pool's, one per "
                                  "run and pool")
        if np.allclose(A, unique):
            A = None  # every run read the whole pools
    N = None if params is None else np.asarray(params, dtype=float)
    if N is not None and (N.shape != T.shape or not np.all(np.isfinite(N) & (N > 0))):
        raise ValidationError("the runs' model sizes (params) must be positive numbers, one per run")
    if N is not None and np.ptp(N) == 0:
        N = None  # one size: nothing to learn about size
    budgets = tuple(float(b) for b in np.unique(T))
    sizes = () if N is None else tuple(float(v) for v in np.unique(N))
    # the budget each run stands in for: its own, or for a repetition-matched run the one it matches
    T_eq = T if A is None else equivalent_tokens(T, A, unique)
    if len(np.unique(T_eq)) < 2 and not sizes:
        raise ValidationError(f"every run has {budgets[0]:g} tokens of the same pools: the change of a mixture's loss "
                              "with the budget needs runs at two budgets or more (add a few runs at a larger budget, "
                              "or repetition-matched runs: mixplan design --match-budget)")
    if model.objective.maximize or not np.all(y > 0):
        raise ValidationError("the at-scale model fits a loss law: it needs a positive objective to minimise "
                              "(a loss or bits per byte), not a score to maximise")
    pools = list(model.pools)
    N0 = None if N is None else (sizes[0] if proxy_params is None else float(proxy_params))
    at_n0 = np.ones(len(T), bool) if N is None else N == N0
    if not at_n0.any():
        raise ValidationError(f"no run at the proxy model size {N0:g}; the runs have "
                              f"{', '.join(f'{v:g}' for v in sizes)}")
    T0 = float(T[at_n0].min()) if proxy_tokens is None else float(proxy_tokens)
    if not (at_n0 & (T == T0) & (T_eq == T)).any():
        raise ValidationError(f"no run at the proxy budget {T0:g} on the whole pools; the runs have "
                              f"{', '.join(f'{b:g}' for b in budgets)}")
    # The held-out scales: model sizes when the runs span several, else budgets (those the runs stand in for).
    stand_in = _stand_in_scales(T, T_eq)
    axis, s0, what = (stand_in, T0, "budget") if N is None else (N, N0, "model size")
    scales = np.unique(axis)

    def predict_rows(f: _Fitted, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mean, sd = np.empty(rows.sum()), np.empty(rows.sum())
        Tr, Nr = T[rows], None if N is None else N[rows]
        for t in np.unique(Tr):
            for n in [None] if Nr is None else np.unique(Nr[Tr == t]):
                at = (Tr == t) if n is None else (Tr == t) & (Nr == n)
                mean[at], sd[at] = f.predict(W[rows][at], float(t), n, True, None if A is None else A[rows][at])
        return mean, sd

    holdout: dict[str, dict[str, Any]] = {}
    z_all: dict[str, list[np.ndarray]] = {}
    skipped: dict[str, str] = {}
    unchecked = []
    level_checked: set[str] = set()  # models whose held-out runs included whole-pool runs above the proxy budget
    for k in range(1, len(scales)):
        train, test = axis < scales[k], axis == scales[k]
        if N is not None and len(np.unique(N[train])) < 2:
            unchecked.append(f"below {scales[k]:g}: one model size cannot tell how the loss changes with size")
            continue
        last = k == len(scales) - 1
        # Repetition-matched runs at the largest scale stand in for the big run itself: what is to be checked
        # is how well a model that has seen runs at that repetition predicts other mixtures there, so they are
        # cross-validated (the other folds in the fit), not all held out (which would test models that never
        # saw the repetition they are chosen for).
        folds = _matched_folds(test, seed) if last and N is None and (T_eq[test] != T[test]).all() else []
        splits = [(train | (test & ~g), g) for g in folds] or [(train, test)]
        # out-of-fold mean, spread and noise of every model, per held-out run
        oof: dict[str, np.ndarray] = {}
        try:
            for tr, te in splits:
                fitted, why = _fit_candidates(model, W[tr], T[tr], None if N is None else N[tr], y[tr], pools, unique,
                                              T0, N0, r_star, n_bootstrap, seed, level, regressor=scales[k] > s0,
                                              shape=shape, available=None if A is None else A[tr],
                                              synthetic=synthetic)
                for name, f in fitted.items():
                    rec = oof.setdefault(name, np.full((3, len(T)), np.nan))
                    rec[0, te], rec[1, te] = predict_rows(f, te)
                    rec[2, te] = f.noise
        except ValidationError as exc:  # too few runs below this scale to fit the law on their own
            unchecked.append(f"below {scales[k]:g}: {exc}")
            continue
        # held-out runs on the whole pools above the proxy budget check how the level changes with more data
        checks_level = N is not None or bool((test & (T_eq == T) & (T > T0)).any())
        for name, (mean, sd, noise) in oof.items():
            mean, sd, noise = mean[test], sd[test], noise[test]
            if np.isnan(mean).any():  # not fitted in every fold
                continue
            err = y[test] - mean
            z = err / np.sqrt(sd ** 2 + noise ** 2)
            z_all.setdefault(name, []).append(z)
            if checks_level:
                level_checked.add(name)
            if last:  # the largest scale: the choice
                holdout[name] = {"fitted_below": float(scales[k]), "predicted": float(scales[k]), "scale": what,
                                 "n": int(test.sum()), "folds": len(folds) or None,
                                 "rmse": float(np.sqrt(np.mean(err ** 2))),
                                 "mean_error": float(np.mean(err)), "centred_rmse": float(np.std(err)),
                                 "spearman": (spearman(mean, y[test])
                                              if test.sum() > 2 and np.ptp(mean) > 0 else None),
                                 "coverage": float(np.mean(np.abs(z) <= normal_ppf((1 + level) / 2)))}
        if last:
            skipped = {n: r + f" below the largest {what}" for n, r in why.items()}
    law, with_change = SCALE_MODELS[:2]
    if not holdout:
        raise ValidationError(f"the change with the {what} cannot be checked on a held-out {what} ("
                              + "; ".join(unchecked) + f"): add runs below the largest {what}")
    if with_change in holdout:
        # The decision is which mixture is lowest at T: it depends on the differences between mixtures,
        # not on the level all of them share. So the choice is by the held-out error with its mean
        # removed; the level's error (the mean) enters the intervals through q.
        chosen = min(holdout, key=lambda n: holdout[n]["centred_rmse"])
        q = conformal_quantile(np.concatenate(z_all[chosen]), level)
    else:
        # The proxy runs are at the largest scale, so no held-out scale can check the regressor. At the
        # proxy budget "regressor + law change" *is* the CV-chosen regressor, and the law alone has not been
        # shown better than it anywhere: it is the default, its spread calibrated by the law's folds.
        chosen = with_change
        q = conformal_quantile(np.concatenate(z_all[law]), level)
        skipped[with_change] = (f"no held-out check: the proxy runs are at the largest {what}; the law's held-out "
                                "errors calibrate its change")
    # Held-out errors widen the spread, never narrow it below the bootstrap's own: a fold's model may be less
    # sure than the final one (e.g. R* not identified below the largest scale, so its spread holds R*'s
    # assumed range, which the final fit on repetition-matched runs has measured), and its small standardised
    # errors say nothing of the final model's.
    q = max(q, float(normal_ppf((1 + level) / 2)))
    final, _ = _fit_candidates(model, W, T, N, y, pools, unique, T0, N0, r_star, n_bootstrap, seed, level,
                               shape=shape, available=A, synthetic=synthetic)
    if chosen not in final:  # pragma: no cover - every model fitted below the largest scale fits on all runs
        raise ValidationError(f"the at-scale model {chosen!r} cannot be fitted on every run")
    # No held-out run on the whole pools above the proxy budget (e.g. only repetition-matched runs there): the
    # choice and q checked the differences between mixtures and the price of repetition, but nothing checked
    # how the level falls with more fresh data, which each model extrapolates by its own form.
    level_models = {} if chosen in level_checked or chosen not in holdout else {
        n: final[n].predict for n, h in holdout.items()
        if n != chosen and n in final and h["centred_rmse"] <= LEVEL_WINDOW * holdout[chosen]["centred_rmse"]}
    return AtScaleModel(chosen=chosen, level=level, quantile=float(q), noise=final[chosen].noise, budgets=budgets,
                        proxy_tokens=T0, max_epochs=epochs_read(W, T, unique if A is None else A).max(axis=0),
                        pools=pools,
                        holdout=holdout, skipped=skipped, _predict=final[chosen].predict,
                        fit=final[chosen].details.get("fit"), sizes=sizes, proxy_params=N0,
                        r_star=final[chosen].details["r_star"],
                        r_star_pools=tuple(shape["r_star_pools"]) if "r_star_pools" in shape else None,
                        matched=() if A is None else tuple(float(b) for b in np.unique(stand_in[T_eq != T])),
                        level_models=level_models,
                        pool_laws=() if synthetic is None else tuple(
                            p for p, d in zip(pools, np.asarray(synthetic, dtype=float)[:, 0]) if not np.isnan(d)))
