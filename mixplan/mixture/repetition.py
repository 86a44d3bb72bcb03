r"""Repetition-aware prediction: from the proxy-scale model to the target budget, where small pools repeat.

Proxy runs are short and rarely repeat data; the big run often does. At a target budget of
:math:`T` tokens, mixture :math:`w` draws :math:`t_i = w_i T` tokens from pool :math:`i`, which holds
:math:`U_i`, so the pool is read :math:`e_i = t_i / U_i` times. Repeated tokens are worth less than
fresh ones; Muennighoff et al. (2023) measure it as *effective* tokens

.. math::

    t'_i = \min\left(t_i,\; U_i + U_i R^* \left(1 - e^{-(e_i - 1)^+ / R^*}\right)\right)

(:func:`mixplan.laws.effective_data`; a repeated token's value decays with "half-life"
:math:`R^* \ln 2` repetitions). mixplan's model (its own construction, documented here): a run on
:math:`w` at budget :math:`T` behaves like a run on *fresh* data with the effective composition and
the effective amount

.. math::

    \tilde w_i = \frac{t'_i}{\sum_j t'_j}, \qquad D_{eff} = \sum_j t'_j,

so, with :math:`f` the proxy-scale regressor,

.. math::

    \hat y_T(w) = f(\tilde w) - \gamma \log\frac{D_{eff}(w)}{T} \;+\; s(T),

where :math:`\gamma` is the metric's sensitivity to the log amount of data (for a loss, how much it
falls when the data doubles, divided by :math:`\ln 2`) and :math:`s(T)` a shift that is the same for
every mixture (proxy scale to target scale). The *objective* searched is
:math:`f(\tilde w) - \gamma \log(D_{eff}/T)`: without repetition (:math:`t_i \le U_i` for all
:math:`i`) it is exactly the proxy-scale prediction :math:`f(w)`, and since :math:`t'_i` never grows
faster than :math:`t_i`, more epochs on a pool never increase its effective data.

A pool's ``r_star`` in the manifest overrides the model's :math:`R^*` for that pool when planning
(e.g. a value measured for that kind of data); fitting estimates one :math:`R^*` for all pools.

Fitting. :math:`R^*`, :math:`\gamma` and a shift are fitted by least squares on runs at two or more
budgets, at least one of which repeats data (the demo's proxy runs plus its 4x runs, or any runs
with a ``tokens`` column), predicting :math:`f(\tilde w) - \gamma \log(D_{eff}/T_p) + s` with
:math:`T_p` the proxy budget :math:`f` was fitted at: the change of budget pins :math:`\gamma`, the
mixtures that repeat more or less at the same budget pin :math:`R^*`. Intervals come from a
bootstrap over the runs. The fit report also gives the error of the same fit ignoring repetition
(:math:`R^* \to \infty`, a log-budget slope only). Without such
runs, :math:`R^*` defaults to Muennighoff's 15.39 and :math:`\gamma` to 0 (the total-data term is then
not priced, which the report says).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

from ..exceptions import ValidationError
from ..laws.data_constrained import DATABLATIONS
from ..laws.mixture import pool_effective_tokens
from ..laws.synthetic import value_ratio

__all__ = ["fit_repetition_runs", "RepetitionModel", "effective_mixture", "fit_repetition", "identification",
           "repeats_beyond", "equivalent_tokens", "epochs_read", "check_whole_pools"]

#: A pool's repetition is not identified when the plan reads it more than this many times the most any run
#: read it (and more than :data:`IDENTIFY_FLOOR` times): the price of those repeats is extrapolated.
IDENTIFY_FACTOR = 2.0
IDENTIFY_FLOOR = 2.0
#: The range R* is fitted in; a fit at either end has not found it.
R_STAR_BOUNDS = (0.05, 1e4)
#: Grid of R* values (log-spaced over R_STAR_BOUNDS, 0.1 apart in log R*) on which the bootstrap refits
#: profile the objective: the regressor is evaluated once per grid point for every run, and each refit
#: is then closed-form least squares (100 refits took 7 s of L-BFGS calls into the regressor; now the
#: regressor is called once).
PROFILE_GRID = 123

#: Muennighoff et al.'s R_D* (C4; NeurIPS 2023, arXiv 2305.16264, ``huggingface/datablations``), the default
#: without repeated proxy runs.
DEFAULT_R_STAR = DATABLATIONS["R_D_star"]


def effective_mixture(W: np.ndarray, tokens: float | np.ndarray, available: np.ndarray,
                      r_star: float | np.ndarray, synthetic: np.ndarray | None = None,
                      reference: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Effective composition :math:`\\tilde w` (n, P) and effective fraction :math:`D_{eff}/T` (n,).
    ``tokens``: one budget or one per row; ``available``: each pool's unique tokens (P,), or per row (n, P)
    for runs on subsampled pools. ``synthetic``: each pool's rectified law ``(D_l, beta)`` (P, 2), NaN rows for
    pools without one (:attr:`mixplan.data.pools.PoolSet.synthetic`): such a pool's effective tokens are further
    discounted by :func:`mixplan.laws.synthetic.value_ratio` relative to what a run at ``reference`` tokens
    (the proxy budget) read of it -- at the proxy budget nothing changes, at a larger one its tokens are worth
    what its own law says they add."""
    W = np.atleast_2d(np.asarray(W, dtype=float))
    T = np.broadcast_to(np.asarray(tokens, dtype=float).reshape(-1), (len(W),))
    U = np.broadcast_to(np.asarray(available, dtype=float), W.shape)
    drawn = W * T[:, None]
    Wt, frac = W.copy(), np.ones(len(W))
    # Rows that read no pool more than once (and no pool with a law of its own) are returned as they are:
    # exactly the proxy-scale input.
    rep = (drawn > U).any(axis=1)
    laws = np.empty((0, 2)) if synthetic is None else np.asarray(synthetic, dtype=float)
    lawful = np.flatnonzero(~np.isnan(laws[:, 0]))
    if lawful.size:
        rep |= (W[:, lawful] > 0).any(axis=1)
    if rep.any():
        eff = pool_effective_tokens(W[rep], T[rep], U[rep], r_star)
        if lawful.size:
            D_l, beta = laws[lawful].T
            # against what a proxy run's mixture made of it, repetition included: at the proxy budget exactly 1
            ref = None if reference is None else pool_effective_tokens(W[rep], reference, U[rep], r_star)[:, lawful]
            eff[:, lawful] *= value_ratio(eff[:, lawful], D_l, beta, ref)
        total = eff.sum(axis=1)
        Wt[rep], frac[rep] = eff / total[:, None], total / T[rep]
    return Wt, frac


def equivalent_tokens(tokens: np.ndarray, available: np.ndarray, unique: np.ndarray) -> np.ndarray:
    """The budget each run stands in for: its tokens over the fraction of the pools it could read (the
    geometric mean over pools of ``available / unique``). A run at :math:`D` on every pool subsampled to
    :math:`D/T` reads each pool as often as a run at :math:`T` on the whole pools: it stands in for
    :math:`T`. Runs on the whole pools stand in for their own budget. Rounded to 1e-6 tokens, so that runs
    standing in for one budget compare equal (they are grouped by it)."""
    T = np.asarray(tokens, dtype=float)
    ratio = np.asarray(available, dtype=float) / np.asarray(unique, dtype=float)
    return np.round(T * np.exp(-np.log(np.broadcast_to(ratio, (len(T), ratio.shape[-1]))).mean(axis=1)), 6)


def epochs_read(W: np.ndarray, tokens: np.ndarray, available: np.ndarray) -> np.ndarray:
    """How many times each run read each pool (n, P): ``w * tokens / available``."""
    return np.atleast_2d(W) * np.asarray(tokens, dtype=float).reshape(-1, 1) / available


@dataclass(frozen=True)
class RepetitionModel:
    """Parameters of the repetition-aware objective (see the module docstring)."""

    r_star: float
    gamma: float
    shift: float = 0.0
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    n_runs: int = 0
    source: str = "default (Muennighoff et al. R_D* = 15.39; gamma = 0: no runs at a second budget)"
    rmse: float | None = None
    rmse_blind: float | None = None
    proxy_tokens: float | None = None  # the budget of the proxy-scale model (known when fitted)
    reached: tuple[float, ...] | None = None  # per pool, the most epochs any run it was fitted on read
    #: per pool its rectified law (D_l, beta), NaN rows for the others, or None (see :func:`effective_mixture`)
    synthetic: np.ndarray | None = field(default=None, compare=False)
    #: the proxy budget the pool laws value tokens against, for a model given rather than fitted (a fitted one's
    #: is ``proxy_tokens``; this one does not make the shift known)
    law_reference: float | None = None

    def at_scale(self, objective: np.ndarray, tokens: float) -> np.ndarray | None:
        r"""The objective on the scale of runs at ``tokens``: :math:`+ s - \gamma \log(T / T_p)`
        (None when the model was given rather than fitted: the shift is then unknown)."""
        if self.proxy_tokens is None:
            return None
        return objective + self.shift - self.gamma * np.log(tokens / self.proxy_tokens)

    def per_pool(self, manifest: np.ndarray | None) -> float | np.ndarray:
        """R* of every pool: the manifest's ``r_star`` where set (NaN elsewhere), else the model's."""
        if manifest is None or np.all(np.isnan(manifest)):
            return self.r_star
        return np.where(np.isnan(manifest), self.r_star, manifest)

    def objective(self, f: Callable[[np.ndarray], np.ndarray], W: np.ndarray, tokens: float | np.ndarray,
                  available: np.ndarray, manifest_r_star: np.ndarray | None = None,
                  reference_tokens: float | None = None) -> np.ndarray:
        r""":math:`f(\tilde w) - \gamma \log(D_{eff}/T)` for every row of ``W`` (``manifest_r_star``:
        per-pool overrides of R*, NaN where the model's applies). With ``reference_tokens`` :math:`T_p`
        the data term is :math:`\gamma \log(D_{eff}/T_p)` instead: runs at different budgets on one scale.
        ``tokens`` and ``available`` may be per row (runs at several budgets, on subsampled pools)."""
        Wt, frac = self.effective(W, tokens, available, manifest_r_star, reference_tokens)
        if reference_tokens is not None:
            frac = frac * tokens / reference_tokens
        return f(Wt) - self.gamma * np.log(frac)

    def effective(self, W: np.ndarray, tokens: float | np.ndarray, available: np.ndarray,
                  manifest_r_star: np.ndarray | None = None,
                  reference_tokens: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """:func:`effective_mixture` with this model's R* (per pool: ``manifest_r_star`` where set) and pool laws,
        synthetic tokens valued relative to the proxy budget (``reference_tokens``, else the fitted one's)."""
        ref = next((t for t in (reference_tokens, self.proxy_tokens, self.law_reference) if t is not None), None)
        if ref is None and self.synthetic is not None and not np.isnan(self.synthetic[:, 0]).all():
            raise ValidationError("a pool's own data law values its tokens relative to the proxy runs' budget, which "
                                  "is not known here: give the runs a tokens column (the budget each was trained on)")
        return effective_mixture(W, tokens, available, self.per_pool(manifest_r_star), self.synthetic, ref)

    def report(self) -> str:
        iv = {k: f" [{lo:.4g}, {hi:.4g}]" for k, (lo, hi) in self.intervals.items()}
        fit = "" if self.rmse is None else (f"; RMSE {self.rmse:.4g} on {self.n_runs} runs (ignoring repetition "
                                            f"{self.rmse_blind:.4g})")
        return (f"repetition-aware objective: R* = {self.r_star:.4g}{iv.get('r_star', '')} (half-life "
                f"{self.r_star * np.log(2):.3g} repetitions), gamma = {self.gamma:.4g}{iv.get('gamma', '')}, "
                f"shift {self.shift:+.4g}{fit}; {self.source}" + (
                    "" if self.synthetic is None else
                    f"; {int((~np.isnan(self.synthetic[:, 0])).sum())} pool(s) valued by their own rectified law"))

    def to_dict(self) -> dict[str, Any]:
        return {"model": "effective mixture + log effective data (mixplan.mixture.repetition)",
                "r_star": self.r_star, "half_life_repetitions": self.r_star * float(np.log(2)),
                "gamma": self.gamma, "shift": self.shift,
                "intervals": {k: list(v) for k, v in self.intervals.items()}, "n_runs": self.n_runs,
                "source": self.source, "rmse": self.rmse, "rmse_ignoring_repetition": self.rmse_blind,
                "proxy_tokens": self.proxy_tokens,
                "epochs_reached_in_runs": None if self.reached is None else list(self.reached),
                "pool_laws": None if self.synthetic is None else [
                    None if np.isnan(d) else {"D_l": float(d), "beta": float(b)} for d, b in self.synthetic]}


def _predict(f: Callable[[np.ndarray], np.ndarray], W: np.ndarray, tokens: np.ndarray, available: np.ndarray,
             r_star: float, gamma: float, proxy_tokens: float, synthetic: np.ndarray | None = None) -> np.ndarray:
    r""":math:`f(\tilde w) - \gamma \log(D_{eff} / T_p)` for runs at budgets ``tokens`` (without the shift)."""
    return RepetitionModel(r_star=r_star, gamma=gamma, synthetic=synthetic).objective(
        f, W, tokens, available, reference_tokens=proxy_tokens)


def _fit_once(f: Callable[[np.ndarray], np.ndarray], W: np.ndarray, tokens: np.ndarray, y: np.ndarray,
              available: np.ndarray, proxy_tokens: float, x0: np.ndarray,
              synthetic: np.ndarray | None = None) -> np.ndarray:
    def sse(x: np.ndarray) -> float:
        res = y - _predict(f, W, tokens, available, float(np.exp(x[0])), float(x[1]), proxy_tokens, synthetic)
        return float(((res - res.mean()) ** 2).sum())  # the shift s absorbs the mean

    best = None
    for start in (x0, np.array([np.log(2.0), x0[1]]), np.array([np.log(100.0), x0[1]])):
        r = minimize(sse, start, method="L-BFGS-B", bounds=[tuple(np.log(R_STAR_BOUNDS)), (None, None)])
        if best is None or r.fun < best.fun:
            best = r
    return best.x


def _profile_grid(f: Callable[[np.ndarray], np.ndarray], W: np.ndarray, tokens: np.ndarray, available: np.ndarray,
                  proxy_tokens: float,
                  synthetic: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The regressor at every run's effective mixture for ``PROFILE_GRID`` values of R* (log-spaced over
    ``R_STAR_BOUNDS``), in one call of ``f``; and every run's log effective data over the proxy budget."""
    log_r = np.linspace(*np.log(R_STAR_BOUNDS), PROFILE_GRID)
    mixes, x = [], []
    for r in np.exp(log_r):
        Wt, frac = effective_mixture(W, tokens, available, float(r), synthetic, proxy_tokens)
        mixes.append(Wt)
        x.append(np.log(frac * tokens / proxy_tokens))
    F = np.asarray(f(np.vstack(mixes)), dtype=float).reshape(len(log_r), len(W))
    return log_r, F, np.asarray(x)


def _profile_fit(log_r: np.ndarray, F: np.ndarray, x: np.ndarray, y: np.ndarray,
                 idx: np.ndarray) -> tuple[float, float]:
    r"""(R*, gamma) minimising the objective of :func:`_fit_once` on the runs ``idx``: for every R* of the
    grid, gamma and the shift are a least-squares line in closed form (:math:`y - f = -\gamma x + s`); the
    best grid point is refined by the parabola through it and its neighbours."""
    Y = y[idx][None, :] - F[:, idx]
    X = -x[:, idx]
    Xc = X - X.mean(axis=1, keepdims=True)
    Yc = Y - Y.mean(axis=1, keepdims=True)
    sxx, sxy = (Xc ** 2).sum(axis=1), (Xc * Yc).sum(axis=1)
    g = np.divide(sxy, sxx, out=np.zeros_like(sxy), where=sxx > 0)
    sse = (Yc ** 2).sum(axis=1) - g * sxy
    k = int(np.argmin(sse))
    off = 0.0
    if 0 < k < len(sse) - 1:
        curve = sse[k - 1] - 2 * sse[k] + sse[k + 1]
        off = float(np.clip(0.5 * (sse[k - 1] - sse[k + 1]) / curve, -0.5, 0.5)) if curve > 0 else 0.0
    j = k + (1 if off > 0 else -1) if off else k
    gamma = float(g[k] + abs(off) * (g[j] - g[k]))
    return float(np.exp(log_r[k] + off * (log_r[1] - log_r[0]))), gamma


def fit_repetition(f: Callable[[np.ndarray], np.ndarray], W: np.ndarray, tokens: np.ndarray, y: np.ndarray,
                   available: np.ndarray, proxy_tokens: float, *, n_bootstrap: int = 100, level: float = 0.9,
                   seed: int = 0, source: str = "runs", unique: np.ndarray | None = None,
                   synthetic: np.ndarray | None = None) -> RepetitionModel:
    r"""Fit :math:`R^*`, :math:`\gamma` and the shift on runs ``W`` trained on ``tokens`` (each run's
    budget) with measured ``y``, given the proxy-scale regressor ``f`` (fitted at ``proxy_tokens``).
    ``available``: each pool's unique tokens (P,), or each run's (n, P) when runs trained on subsamples
    of the pools (repetition-matched runs; ``unique`` is then the whole pools'). The runs must stand in
    for two budgets or more (:func:`equivalent_tokens`: the proxy budget and a larger one, or
    repetition-matched runs at the proxy budget) and some must repeat a pool. ``synthetic``: the pools'
    rectified laws (see :func:`effective_mixture`), priced in the fit and kept by the model."""
    W = np.atleast_2d(np.asarray(W, dtype=float))
    tokens = np.broadcast_to(np.asarray(tokens, dtype=float), (len(W),)).copy()
    y = np.asarray(y, dtype=float)
    available = np.asarray(available, dtype=float)
    whole = available if unique is None else np.asarray(unique, dtype=float)
    scales = equivalent_tokens(tokens, available, whole)
    if len(W) < 6:
        raise ValidationError(f"{source}: {len(W)} runs are too few to fit the repetition model (R*, gamma, shift); "
                              "give at least 6 runs that repeat data")
    if len(np.unique(scales)) < 2:
        raise ValidationError(f"{source}: every run has {tokens[0]:g} tokens of the same pools; the repetition model "
                              "needs runs at two budgets (e.g. the proxy runs and some of their mixtures at a larger "
                              "budget) or repetition-matched runs (mixplan design --match-budget)")
    epochs = epochs_read(W, tokens, available)
    if (epochs.max(axis=1) <= 1).all():
        raise ValidationError(f"{source}: no run repeats any pool (every pool read at most once), so the cost of "
                              "repetition cannot be measured; use runs at a budget where small pools repeat")
    x = _fit_once(f, W, tokens, y, available, proxy_tokens, np.array([np.log(DEFAULT_R_STAR), 0.0]), synthetic)
    r_star, gamma = float(np.exp(x[0])), float(x[1])
    pred = _predict(f, W, tokens, available, r_star, gamma, proxy_tokens, synthetic)
    shift = float(np.mean(y - pred))
    # Ignoring repetition: the same fit with every token fresh (R* -> infinity) and a slope in the
    # budget each run stands in for.
    blind = _predict(f, W, tokens, available, 1e12, 0.0, proxy_tokens)
    gb = np.polyfit(-np.log(scales / proxy_tokens), y - blind, 1)
    rng = np.random.default_rng(seed)
    boot = []
    profile = _profile_grid(f, W, tokens, available, proxy_tokens, synthetic) if n_bootstrap > 0 else None
    for _ in range(n_bootstrap):
        idx = rng.integers(0, len(W), len(W))
        if len(np.unique(scales[idx])) < 2:
            continue
        boot.append(_profile_fit(*profile, y, idx))  # type: ignore[misc]
    intervals = {}
    if boot:
        B = np.array(boot)
        q = [(1 - level) / 2, (1 + level) / 2]
        intervals = {"r_star": tuple(map(float, np.quantile(B[:, 0], q))),
                     "gamma": tuple(map(float, np.quantile(B[:, 1], q)))}
    res_blind = y - blind - np.polyval(gb, -np.log(scales / proxy_tokens))
    return RepetitionModel(r_star=r_star, gamma=gamma, shift=shift, intervals=intervals, n_runs=len(W),
                           source=source, proxy_tokens=float(proxy_tokens),
                           rmse=float(np.sqrt(np.mean((y - pred - shift) ** 2))),
                           rmse_blind=float(np.sqrt(np.mean(res_blind ** 2))),
                           reached=tuple(map(float, epochs.max(axis=0))), synthetic=synthetic)


def fit_repetition_runs(model: Any, runs: Any, more: Any, available: np.ndarray, *, seed: int = 0,
                        level: float = 0.9, synthetic: np.ndarray | None = None) -> RepetitionModel:
    """:func:`fit_repetition` from run tables: the proxy ``runs`` the model was fitted on (one budget, in a
    ``tokens`` column) and ``more`` runs at other budgets that repeat data, or repetition-matched runs on
    subsampled pools (``unique_tokens_<pool>`` / ``subsample_fraction`` columns), both scored by the model's
    objective; ``available`` is each pool's unique tokens."""
    proxy = runs.frame["tokens"].to_numpy(dtype=float) if "tokens" in runs.frame else None
    if proxy is None or "tokens" not in more.frame:
        raise ValidationError(f"{more.source}: the repetition model needs a tokens column in both run "
                              "tables (the budget each run was trained on)")
    if np.ptp(proxy) > 0:
        raise ValidationError(f"{runs.source}: the proxy runs have several budgets; fit the model on runs of one budget")
    check_whole_pools(runs)
    objective = model.objective
    W = np.vstack([runs.weights, more.weights])
    T = np.r_[proxy, more.frame["tokens"].to_numpy(dtype=float)]
    y = np.r_[objective.values(runs), objective.values(more)]
    U = np.vstack([runs.unique_tokens(available), more.unique_tokens(available)])
    return fit_repetition(model.predict_mean, W, T, y, U, float(proxy[0]), seed=seed, level=level,
                          source=f"fitted on {runs.source} and {more.source}", unique=available, synthetic=synthetic)


def check_whole_pools(runs: Any) -> None:
    """The proxy runs a regressor is fitted on must read the whole pools (its input is the mixture alone)."""
    if runs.subsampled:
        raise ValidationError(f"{runs.source}: these runs trained on subsamples of the pools (unique_tokens_<pool> "
                              "or subsample_fraction columns); the regressor is fitted on runs on the whole pools: "
                              "give repetition-matched runs with --repetition-runs or --scale-runs")


def repeats_beyond(names: Sequence[str], epochs: np.ndarray | Sequence[float],
                   reached: np.ndarray | Sequence[float]) -> list[str]:
    """The pools a mixture reads more than :data:`IDENTIFY_FLOOR` times and more than
    :data:`IDENTIFY_FACTOR` times the most epochs any run read them (``reached``)."""
    return [n for n, e, r in zip(names, np.asarray(epochs, dtype=float), np.asarray(reached, dtype=float))
            if e > IDENTIFY_FLOOR and e > IDENTIFY_FACTOR * max(float(r), 1.0)]


def identification(names: Sequence[str], needed: np.ndarray, reached: np.ndarray | Sequence[float] | None,
                   rmse: float | None = None, rmse_blind: float | None = None,
                   r_star: float | None = None) -> dict[str, Any]:
    """Whether the runs can price the repetition a plan asks for.

    ``needed``: the epochs the plan reads each pool at the target budget; ``reached``: the most epochs any run
    read it. A pool is *short* when the plan reads it more than :data:`IDENTIFY_FLOOR` times and more than
    :data:`IDENTIFY_FACTOR` times what any run showed: there the cost of a repeat is the model's extrapolation.
    With the fit's RMSE and the RMSE of the same fit ignoring repetition, a fit that is no better (within 2%)
    has not identified the repetition parameters either, nor one whose ``r_star`` sits at an end of
    :data:`R_STAR_BOUNDS`. Returns ``{"identified", "short_pools" (pool -> needed, reached),
    "no_better_than_ignoring", "r_star_at_bound", "message"}``.
    """
    short: dict[str, dict[str, float]] = {}
    if reached is not None:
        for n in repeats_beyond(names, needed, reached):
            i = list(names).index(n)
            short[n] = {"needed": float(needed[i]), "reached": float(reached[i])}
    no_better = rmse is not None and rmse_blind is not None and rmse >= 0.98 * rmse_blind
    at_bound = r_star is not None and not R_STAR_BOUNDS[0] * 1.01 < r_star < R_STAR_BOUNDS[1] * 0.99
    parts = []
    if short:
        worst = max(short, key=lambda n: short[n]["needed"] / max(short[n]["reached"], 1.0))
        reads = ", ".join(f"{n} {v['needed']:.3g}x" for n, v in short.items())
        most = ", ".join(f"{v['reached']:.3g}x" for v in short.values())
        parts.append(f"the plan reads {reads} but no run read {'them' if len(short) > 1 else 'it'} more than {most} "
                     f"(furthest beyond: {worst})")
    if no_better:
        parts.append(f"the fit with repetition explains the runs no better than ignoring it (RMSE {rmse:.4g} vs "
                     f"{rmse_blind:.4g})")
    if at_bound:
        parts.append(f"R* = {r_star:.4g} sits at the end of its range {R_STAR_BOUNDS}: the runs do not pin it down")
    message = ("" if not parts else "repetition is not identified: " + "; ".join(parts) + ": the price of those repeats "
               "is extrapolated and the intervals at the target budget do not hold there; train repetition-matched "
               "proxy runs that read those pools as often (mixplan design --match-budget TARGET --tokens PROXY), or "
               "lower the pools' max_epochs")
    return {"identified": not parts, "short_pools": short, "no_better_than_ignoring": bool(no_better),
            "r_star_at_bound": bool(at_bound), "message": message}
