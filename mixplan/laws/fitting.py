r"""A small fitter for scaling laws: Huber loss on log-loss, L-BFGS-B from a grid and a polish, bootstrap intervals.

The recipe of Hoffmann et al. (2022, arXiv 2203.15556) as Epoch AI replicated it (Besiroglu et al. 2024,
arXiv 2404.10102; repository ``epoch-research/analyzing-chinchilla``): minimise

.. math::

    \sum_i \mathrm{Huber}_\delta\big(\log \hat L(x_i; \theta) - \log L_i\big), \qquad \delta = 10^{-3}

(the *sum*, not the mean: with a mean scipy's default tolerances stop early, which is Epoch's
diagnosis of Hoffmann's published fit) by L-BFGS-B with bounds. The objective is evaluated on every
point of the law's initialisation grid at once, and L-BFGS-B starts from the best ``n_starts`` grid
points: the same optimum as starting from all 4,500 points of Chinchilla's grid, at 1% of the cost.

Where L-BFGS-B stops is a property of its implementation (it stops on a small relative change of the
objective, and scipy 1.15 rewrote it): on ill-conditioned laws it stopped far from the minimum, at
points that moved between scipy releases. So each start's end is polished by trust-region reflective
least squares on the *same* objective (Huber's loss at ``f_scale = delta``) with the law's Jacobian,
and a point counts as a minimum only when it is stationary: the largest cosine between the Huber
influence vector :math:`\psi` and a column of the Jacobian (projected on the bounds; MINPACK's
``gtol`` test, free of scale) is at most :math:`10^{-6}`, or the fit is exact. The best end is the
fit; other ends that fit as well (objective within :math:`f^*/(n-P)`, one average point's share) at
parameters more than 1% away are reported: the runs do not identify the law.

``delta="auto"`` (mixplan's option; the default of :func:`mixplan.laws.fit_dcpt`) is Huber's
proposal with an estimated scale: fit at :math:`\delta = 10^{-3}`, take the residuals' robust scale
:math:`s = 1.4826\,\mathrm{MAD}\sqrt{n/(n-P)}`, refit from there at :math:`\delta = 1.345\,s`.
Why: :math:`10^{-3}` was chosen for losses measured to about 0.1%; with runs noisier than that the
objective is nearly :math:`L_1` (a median fit), whose variance under Gaussian noise is
:math:`\pi/2` times least squares'. At :math:`1.345\,s` the fit keeps 95% of least squares'
efficiency and still caps each point's pull (a diverged run). The resolved value is stored and
used for every bootstrap refit.

Uncertainty: ``n_bootstrap`` refits on runs resampled with replacement (each warm-started at the
fit, polished the same way), percentile intervals at ``level`` widened about the estimate by
:math:`\sqrt{n/(n-P)}` (the degrees-of-freedom correction: a bootstrap of few points under-states the
spread). The report flags, each with the knob to turn, parameters at a bound, parameters that more
than the interval's tail share of refits push to a bound (the runs do not bound them: the interval
stops at the search range), other optima that fit as well, a fit that is not a minimum, bootstrap
refits that are not, and too few points per parameter.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_number
from .._io import read_json, saved_artefact, write_json_atomic
from ..exceptions import ValidationError

__all__ = ["Law", "LawFit", "bootstrap_refits", "fit_law", "read_law_fit", "refit_intervals", "with_refits", "huber",
           "grid_points", "parse_delta", "robust_delta", "robust_scale"]

Data = Mapping[str, np.ndarray]


def huber(r: np.ndarray, delta: float) -> np.ndarray:
    """:math:`\\tfrac12 r^2` for :math:`|r| \\le \\delta`, :math:`\\delta(|r| - \\tfrac12\\delta)` beyond."""
    a = np.abs(r)
    return np.where(a <= delta, 0.5 * r ** 2, delta * (a - 0.5 * delta))


@dataclass(frozen=True)
class Law:
    """What the fitter needs to know about a law.

    ``log_predict(theta, data)`` returns log-loss for the fit-space parameter vector ``theta``
    (shape (P,) or, for grid evaluation, (P, G) broadcasting against the data as (n, 1));
    ``named(theta)`` maps it to the published parameter names (e.g. ``A = e^a``).
    """

    name: str
    theta_names: tuple[str, ...]
    log_predict: Callable[[np.ndarray, Data], np.ndarray]
    named: Callable[[np.ndarray], dict[str, float]]
    bounds: tuple[tuple[float, float], ...]
    grid: tuple[tuple[float, ...], ...]
    columns: tuple[str, ...]
    #: ``log_predict`` accepts a (P, G) block of parameter vectors; otherwise grid points are looped over.
    vectorized: bool = True
    #: Optional (n, P) Jacobian of ``log_predict`` in ``theta``; without it L-BFGS-B uses finite differences.
    jacobian: Callable[[np.ndarray, Data], np.ndarray] | None = None
    #: Names (as in ``named``) that the fit holds fixed: reported as such, no interval.
    fixed: tuple[str, ...] = ()
    #: The column (of ``columns``) holding an (n, K) matrix of mixture weights: each row >= 0, summing to 1.
    weights: str | None = None


@dataclass(frozen=True)
class LawFit:
    """A fitted law: parameters by name, their bootstrap intervals, the objective and the warnings."""

    law: str
    params: dict[str, float]
    fixed: tuple[str, ...]
    theta: np.ndarray
    objective: float
    converged: bool
    n_points: int
    intervals: dict[str, tuple[float, float]]
    level: float
    delta: float
    warnings: list[str] = field(default_factory=list)
    bootstrap: np.ndarray | None = None  # (n_bootstrap, P) named parameters of the refits
    delta_rule: str = "fixed"  # or "auto": 1.345 x the residuals' robust scale (see the module docstring)
    #: False when the runs leave a parameter free (collinear design, other equally good optima, unbounded
    #: intervals): the minimum is then one of many, and the report does not call the fit converged.
    identified: bool = True
    #: Each scalar input column's [min, max] over the runs (and ``params_x_tokens``, N D): what a
    #: prediction from the fit compares itself with to say how far it extrapolates.
    fitted_range: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: Parameters (by their names in ``params``) at a bound of the search range: flagged in ``warnings``.
    at_bound: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.law, "params": self.params, "fixed": list(self.fixed),
                "intervals": {k: list(v) for k, v in self.intervals.items()}, "level": self.level,
                "objective": self.objective, "converged": self.converged, "identified": self.identified,
                "n_points": self.n_points, "fitted_range": {k: list(v) for k, v in self.fitted_range.items()},
                "at_bound": list(self.at_bound),
                "huber_delta": self.delta, "huber_delta_rule": self.delta_rule, "warnings": self.warnings,
                # refits in the order of "params": what intervals of derived quantities are computed from
                "bootstrap": None if self.bootstrap is None else self.bootstrap.tolist()}

    def save(self, path: str | os.PathLike[str], *, force: bool = False, **extra: Any) -> Path:
        """Write the fit as JSON (``extra`` keys after the fit's own, e.g. the target column); what
        :func:`read_law_fit` and ``mixplan budget --law FIT.json`` read."""
        write_json_atomic(path, self.to_dict() | extra, force=force)
        return Path(path)

    def report(self) -> str:
        rule = ", auto: 1.345 x robust residual scale" if self.delta_rule == "auto" else ""
        w = max([10, *map(len, self.params)])  # names of mixture laws' per-pool parameters run longer
        status = ("NOT converged" if not self.converged else "converged" if self.identified else
                  "a minimum, but the runs do NOT identify the parameters (see the warnings)")
        lines = [f"{self.law} law fitted to {self.n_points} points: Huber(delta={self.delta:.3g}{rule}) objective "
                 f"{self.objective:.6g}, {status}",
                 f"{'parameter':>{w}} {'value':>14}  {int(round(self.level * 100))}% bootstrap interval"]
        for k, v in self.params.items():
            if k in self.fixed:
                lines.append(f"{k:>{w}} {v:>14.6g}  (fixed)")
            elif k not in self.intervals:
                lines.append(f"{k:>{w}} {v:>14.6g}  (none: no bootstrap refits)")
            else:
                lo, hi = self.intervals[k]
                lines.append(f"{k:>{w}} {v:>14.6g}  [{lo:.6g}, {hi:.6g}]")
        if self.fitted_range:
            lines.append("runs span " + ", ".join(f"{k} [{lo:.3g}, {hi:.3g}]"
                                                  for k, (lo, hi) in self.fitted_range.items()
                                                  if k != "params_x_tokens"))
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def read_law_fit(path: str | os.PathLike[str]) -> dict[str, Any]:
    """A fitted law written by :meth:`LawFit.save`, as its JSON document (``law``, ``params``, ``bootstrap``,
    ``level``, ...)."""
    doc = read_json(path, "a FIT.json from 'mixplan laws fit', or a law name", "not a fitted law")
    if not isinstance(doc, dict) or "law" not in doc or "params" not in doc:
        raise ValidationError(f"{path}: not a fitted law (expected the keys 'law' and 'params')")
    # Checked here, whole, so that a damaged file is named now and not a KeyError deep in a budget later.
    with saved_artefact(path, "fitted law", "refit it with 'mixplan laws fit'"):
        if not isinstance(doc["params"], dict):
            raise TypeError("'params' is not an object of named numbers")
        params = {str(k): float(v) for k, v in doc["params"].items()}
        bad = [k for k, v in params.items() if not np.isfinite(v)]
        if bad:
            raise ValueError(f"params.{bad[0]} is {params[bad[0]]}")
        for k in _LAW_PARAMS.get(str(doc["law"]), ()):
            if k not in params:
                raise KeyError(f"params.{k}")
        shape = [params[k] for k in ("A", "B", "alpha", "beta")] if str(doc["law"]) in _LAW_PARAMS else []
        if shape and min(shape) <= 0:  # the budget's compute-optimal split is tried on them (laws.budget)
            raise ValueError(f"A, B, alpha and beta must be > 0, not {shape}")
        if doc.get("bootstrap"):
            boot = np.asarray(doc["bootstrap"], dtype=float)
            if boot.ndim != 2 or boot.shape[1] != len(params):
                raise ValueError(f"'bootstrap' is not one row of {len(params)} parameters per refit")
        level = float(doc.get("level", 0.95))
        if not 0 < level < 1:
            raise ValueError(f"level {level} is not in (0, 1)")
    return doc


#: The parameters of the laws that ``mixplan budget --law`` and ``laws fit --base`` read from a FIT.json.
_LAW_PARAMS = {"chinchilla": ("A", "B", "E", "alpha", "beta"),
               "data-constrained": ("A", "B", "E", "alpha", "beta", "R_D_star", "R_N_star")}


def _check_weights(W: np.ndarray, col: str, where: str, row: Callable[[int], int]) -> np.ndarray:
    if W.ndim != 2 or W.shape[1] < 2:
        raise ValidationError(f"{where}: {col!r} must be a table of mixture weights, one column per pool (got shape "
                              f"{W.shape})")
    bad = np.flatnonzero(~np.isfinite(W).all(axis=1) | (W < 0).any(axis=1) | (np.abs(W.sum(axis=1) - 1) > 1e-6))
    if len(bad):
        raise ValidationError(f"{where}: row {row(bad[0])}: the mixture weights {W[bad[0]].tolist()} must be finite, "
                              ">= 0 and sum to 1")
    return W


def _floats(values: Any, what: str, where: str, row: Callable[[int], int]) -> np.ndarray:
    """``values`` (a column, or an (n, K) block) as floats; a cell that is not a number (text in a CSV
    column) is an error naming ``what`` and the first such row, not numpy's bare ValueError."""
    try:
        return np.asarray(values, dtype=float)
    except (TypeError, ValueError):
        cells = np.asarray(values, dtype=object)
    for i, cell in enumerate(cells.reshape(len(cells), -1)):
        try:
            np.asarray(cell, dtype=float)
        except (TypeError, ValueError):
            shown = repr(cell[0]) if len(cell) == 1 else f"{cell.tolist()!r} holds a cell that"
            raise ValidationError(f"{where}: {what}, row {row(i)}: {shown} is not a number; fix that cell or "
                                  "leave the row out") from None
    raise ValidationError(f"{where}: {what} is not a column of numbers")  # e.g. ragged lists


def _check_data(law: Law, data: Data, loss: np.ndarray, where: str, rows: list[int] | None,
                target: str | None = None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    row = (lambda i: rows[i]) if rows is not None else (lambda i: i + 1)
    loss = _floats(loss, f"column {target!r}" if target else "the loss", where, row)
    if not len(loss):
        raise ValidationError(f"{where}: no runs to fit (the table has no rows)")
    out = {}
    for col in law.columns:
        if col not in data:
            raise ValidationError(f"{where}: the {law.name} law needs a {col!r} column")
        v = _floats(data[col], f"column {col!r}", where, row)
        if col == law.weights:
            out[col] = _check_weights(v, col, where, row)
            continue
        bad = np.flatnonzero(~(np.isfinite(v) & (v > 0)).reshape(len(v), -1).all(axis=1))
        if len(bad):
            shown = v[bad[0]].tolist() if v.ndim > 1 else float(v[bad[0]])
            raise ValidationError(f"{where}: column {col!r}, row {row(bad[0])}: {shown!r} is not a positive finite "
                                  "number" + (" in every pool" if v.ndim > 1 else ""))
        out[col] = v
    bad = np.flatnonzero(~np.isfinite(loss) | (loss <= 0))
    if len(bad):
        raise ValidationError(f"{where}: the loss in row {row(bad[0])} is {float(loss[bad[0]])!r}; losses must be "
                              "positive and finite (they are fitted on the log scale)")
    n_theta = len(law.theta_names)
    if len(loss) < 2 * n_theta:
        raise ValidationError(f"{where}: {len(loss)} points are too few to fit the {law.name} law's {n_theta} "
                              f"parameters (at least {2 * n_theta}); add runs")
    # Copies of one run add rows, not information: a P-parameter law through fewer than P distinct
    # points has a continuum of exact fits, whatever the optimizer reports (refused, not warned: no
    # setting of the fit can make such runs identify the law).
    distinct = len(np.unique(np.column_stack([v.reshape(len(loss), -1) for v in out.values()]), axis=0))
    if distinct < n_theta:
        names = ", ".join(out)
        raise ValidationError(f"{where}: the {len(loss)} runs hold {distinct} distinct ({names}) "
                              f"point{'s' if distinct != 1 else ''}; the {law.name} law's {n_theta} parameters need "
                              f"at least {n_theta} distinct points: add runs at other values of {names}")
    return out, loss


def _objective(theta: np.ndarray, law: Law, data: Data, log_loss: np.ndarray, delta: float) -> float:
    return float(huber(law.log_predict(theta, data) - log_loss, delta).sum())


def _objective_and_grad(theta: np.ndarray, law: Law, data: Data, log_loss: np.ndarray,
                        delta: float) -> tuple[float, np.ndarray]:
    r = law.log_predict(theta, data) - log_loss
    psi = np.clip(r, -delta, delta)  # derivative of the Huber loss
    return float(huber(r, delta).sum()), law.jacobian(theta, data).T @ psi  # type: ignore[misc]


def grid_points(law: Law) -> np.ndarray:
    """Every point of the law's initialisation grid, as columns of a (P, G) array (in the order a
    C-ordered meshgrid gives; built row by row since numpy's meshgrid stops at 32 parameters, which the
    mixture laws of many pools exceed)."""
    axes = [np.asarray(g, dtype=float).ravel() for g in law.grid]
    sizes = [len(a) for a in axes]
    # parameter j repeats each of its values prod(sizes[j+1:]) times and cycles prod(sizes[:j]) times
    return np.stack([np.tile(np.repeat(a, int(np.prod(sizes[j + 1:]))), int(np.prod(sizes[:j])))
                     for j, a in enumerate(axes)])  # (P, G)


def _bounds(law: Law) -> tuple[np.ndarray, np.ndarray]:
    return np.array([b[0] for b in law.bounds], dtype=float), np.array([b[1] for b in law.bounds], dtype=float)


def _jacobian(theta: np.ndarray, law: Law, data: Data) -> np.ndarray:
    """(n, P) Jacobian of ``log_predict``: the law's own, else central differences (one-sided at a bound)."""
    if law.jacobian is not None:
        return law.jacobian(theta, data)
    lo, hi = _bounds(law)
    J = np.empty((len(next(iter(data.values()))), len(theta)))
    for j in range(len(theta)):
        h = 1e-6 * max(1.0, abs(theta[j]))
        up, down = theta.copy(), theta.copy()
        up[j], down[j] = min(theta[j] + h, hi[j]), max(theta[j] - h, lo[j])
        J[:, j] = (law.log_predict(up, data) - law.log_predict(down, data)) / (up[j] - down[j])
    return J


def _at_bound(theta: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which parameters sit (within 1e-6 of their range) at the lower and at the upper bound."""
    span = hi - lo
    tol = np.where(np.isfinite(span), 1e-6 * span, 0.0)
    return theta - lo <= tol, hi - theta <= tol


#: Stationarity test, MINPACK's ``gtol`` (More et al. 1980): the largest cosine between the Huber
#: influence vector and a Jacobian column. Free of the parameters' and the residuals' scales.
_STATIONARY_COSINE = 1e-6
#: Residuals below this are an exact fit (noise-free data): the cosine is then rounding noise.
_EXACT_RESIDUAL = 1e-12


def _stationarity(theta: np.ndarray, law: Law, data: Data, log_loss: np.ndarray, delta: float) -> float:
    r"""The largest :math:`|g_j| / (\lVert J_j \rVert \lVert \psi \rVert)` over the parameters, with
    :math:`\psi = \mathrm{clip}(r, -\delta, \delta)` and :math:`g = J^\top \psi` projected on the bounds
    (a parameter at a bound whose gradient points outwards counts as stationary); 0 for an exact fit."""
    r = law.log_predict(theta, data) - log_loss
    if np.max(np.abs(r)) <= _EXACT_RESIDUAL:
        return 0.0
    psi = np.clip(r, -delta, delta)
    J = _jacobian(theta, law, data)
    g = J.T @ psi
    at_lo, at_hi = _at_bound(theta, *_bounds(law))
    g = np.where(at_lo, np.minimum(g, 0.0), np.where(at_hi, np.maximum(g, 0.0), g))
    norms = np.linalg.norm(J, axis=0) * np.linalg.norm(psi)
    return float(np.max(np.where(norms > 0, np.abs(g) / np.where(norms > 0, norms, 1.0), 0.0)))


@dataclass(frozen=True)
class _Optimum:
    theta: np.ndarray
    objective: float
    cosine: float

    @property
    def converged(self) -> bool:
        return bool(np.isfinite(self.objective) and self.cosine <= _STATIONARY_COSINE)


def _optimum(theta0: np.ndarray, law: Law, data: Data, log_loss: np.ndarray, delta: float, maxiter: int,
             descend: bool = True) -> _Optimum:
    """A local minimum from ``theta0``: L-BFGS-B (the recipe's descent; skipped for a warm start), then the
    trust-region polish of the module docstring, never accepted if worse; judged by :func:`_stationarity`,
    not by an optimizer's exit status."""
    from scipy.optimize import least_squares, minimize  # ~0.3 s: only when something is fitted

    lo, hi = _bounds(law)
    theta = np.clip(np.asarray(theta0, dtype=float), lo, hi)
    if descend:
        fun, jac = (_objective_and_grad, True) if law.jacobian is not None else (_objective, None)
        res = minimize(fun, theta, args=(law, data, log_loss, delta), jac=jac, method="L-BFGS-B",
                       bounds=law.bounds, options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-10})
        theta = np.clip(res.x, lo, hi)
    start = _objective(theta, law, data, log_loss, delta)
    if not np.isfinite(start):  # the law cannot be evaluated here (a start far outside the data's range)
        return _Optimum(theta, float("inf"), float("inf"))
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        pol = least_squares(lambda t: law.log_predict(t, data) - log_loss, theta,
                            jac=lambda t: _jacobian(t, law, data), bounds=(lo, hi), method="trf", loss="huber",
                            f_scale=delta, x_scale="jac", ftol=1e-15, xtol=1e-15, gtol=1e-15, max_nfev=maxiter)
    polished = np.clip(pol.x, lo, hi)
    value = _objective(polished, law, data, log_loss, delta)
    if not (value <= start):  # never worse than the descent (nan-safe)
        polished, value = theta, start
    return _Optimum(polished, value, _stationarity(polished, law, data, log_loss, delta))


def _similar_objective(best: _Optimum, n: int, n_params: int) -> float:
    return max(best.objective / max(n - n_params, 1), n * _EXACT_RESIDUAL ** 2)


def _differing(ref: Mapping[str, float], other: Mapping[str, float]) -> list[str]:
    """Names of the parameters that differ by more than 1% (of the larger magnitude, floored at 1e-6)."""
    return [k for k in ref if abs(other[k] - ref[k]) > 0.01 * max(abs(other[k]), abs(ref[k]), 1e-6)]


def _distinct_optima(optima: list[_Optimum], best: _Optimum, law: Law, n: int) -> list[_Optimum]:
    """Optima from other starts that fit as well as ``best`` (objective within one average point's share,
    :math:`f^*/(n-P)`, or rounding) at parameters more than 1% away from it."""
    tol = _similar_objective(best, n, len(law.theta_names))
    ref = law.named(best.theta)
    return [o for o in optima if o.objective - best.objective <= tol and _differing(ref, law.named(o.theta))]


#: Huber's tuning constant: 95% of least squares' efficiency under Gaussian noise.
_HUBER_K = 1.345
_DELTA_START = 1e-3  # the Chinchilla recipe's delta; also the first pass of delta="auto"


#: The largest Huber threshold :func:`parse_delta` accepts (losses' residuals are far below it).
MAX_DELTA = 1e6
#: The smallest: a float64 log-loss residual is resolved to ~1e-16, so any threshold below this is already the
#: absolute error; far smaller ones overflow the solver's scaled residuals (1e-200 did, a traceback).
MIN_DELTA = 1e-12


def parse_delta(value: float | str, name: str = "huber delta") -> float | str:
    """A positive number or ``"auto"``; anything else is a :class:`ValidationError`."""
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return "auto"
        try:
            value = float(value)
        except ValueError:
            raise ValidationError(f"{name} {value!r}: give a positive number (e.g. 1e-3) or 'auto'") from None
    if not (np.isfinite(value) and value > 0):
        raise ValidationError(f"{name} must be a positive number or 'auto', got {value!r}")
    if value > MAX_DELTA:  # the Huber loss squares delta: past ~1e154 it overflows, and long before that it is L2
        raise ValidationError(f"{name} {value!r} is above {MAX_DELTA:g}: with residuals of losses any threshold that "
                              "large is plain least squares; give a smaller one or 'auto'")
    if value < MIN_DELTA:
        raise ValidationError(f"{name} {value!r} is below {MIN_DELTA:g}: any threshold that small is the absolute "
                              "error already; give a larger one (e.g. 1e-3) or 'auto'")
    return float(value)


def robust_scale(residuals: np.ndarray) -> float:
    r""":math:`1.4826\,\mathrm{MAD}`: the standard deviation of Gaussian residuals, unmoved by a few outliers."""
    r = np.asarray(residuals, dtype=float)
    return 1.4826 * float(np.median(np.abs(r - np.median(r))))


def robust_delta(residuals: np.ndarray, n_params: int) -> float:
    r""":math:`1.345 \cdot 1.4826\,\mathrm{MAD}(r)\sqrt{n/(n-P)}`, floored at 1e-6 (an exact fit)."""
    n = len(residuals)
    return float(max(_HUBER_K * robust_scale(residuals) * np.sqrt(n / max(n - n_params, 1)), 1e-6))


def fit_law(law: Law, data: Data, loss: np.ndarray, *, delta: float | str = 1e-3, n_starts: int = 20,
            n_bootstrap: int = 200, level: float = 0.95, seed: int = 0, maxiter: int = 2000,
            where: str = "runs", rows: list[int] | None = None, target: str | None = None) -> LawFit:
    """Fit ``law`` to ``loss`` at the points ``data`` (columns named by ``law.columns``); errors name
    ``where``, the row (``rows[i]`` for point ``i``, default ``i + 1``) and, for the loss, its column
    ``target`` when given. ``delta``: the Huber threshold on log-loss, or ``"auto"`` (see the module
    docstring)."""
    data, loss = _check_data(law, data, loss, where, rows, target)
    check_number(level, "interval level", lo=0.0, hi=1.0, lo_open=True, hi_open=True, fix="e.g. 0.95")
    check_number(n_bootstrap, "bootstrap refits", lo=0, integer=True)
    delta = parse_delta(delta)
    rule = "auto" if delta == "auto" else "fixed"
    if rule == "auto":
        delta = _DELTA_START
    log_loss = np.log(loss)
    lo, hi = _bounds(law)
    grid = np.clip(grid_points(law), lo[:, None], hi[:, None])
    # Objective at every grid point at once: parameters (P, G) against data (n, 1).
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if law.vectorized:
            cols = {k: v[:, None] for k, v in data.items()}
            values = huber(law.log_predict(grid, cols) - log_loss[:, None], delta).sum(axis=0)
        else:
            values = np.array([_objective(grid[:, g], law, data, log_loss, delta) for g in range(grid.shape[1])])
    values = np.where(np.isfinite(values), values, np.inf)
    optima = [_optimum(grid[:, g], law, data, log_loss, delta, maxiter)
              for g in np.argsort(values, kind="stable")[:n_starts]]
    best = min(optima, key=lambda o: o.objective)  # the first of equals: deterministic
    if not np.isfinite(best.objective):
        raise ValidationError(f"{where}: the {law.name} law gives no finite loss at any of its {len(optima)} starting "
                              "points for these runs; check the data's units (tokens, parameters) or give a grid that "
                              "covers them")
    if rule == "auto":
        delta = robust_delta(law.log_predict(best.theta, data) - log_loss, len(law.theta_names))
        # Every start's end polished at the new threshold, so that the check for other optima below
        # is made on the objective that is reported.
        optima = [_optimum(o.theta, law, data, log_loss, delta, maxiter, descend=False) for o in optima]
        best = min(optima, key=lambda o: o.objective)
    theta = best.theta
    n = len(loss)
    warnings = []
    if not best.converged:
        warnings.append(f"the fit did not reach a minimum (largest gradient cosine {best.cosine:.2g}, "
                        f"needs <= {_STATIONARY_COSINE:g}); raise maxiter or check the data")
    at_lo, at_hi = _at_bound(theta, lo, hi)
    for i in range(len(theta)):
        if at_lo[i] or at_hi[i]:
            warnings.append(f"parameter {_shown(law, theta, i)} is at its {'lower' if at_lo[i] else 'upper'} bound; "
                            "the data do not pin it down: add runs over a wider range, or fix it (pass a published "
                            "value)")
    free = _free_directions(theta, law, data)
    if free:
        same = [f"{c} = {v[0]:.4g}" for c, v in data.items() if c != law.weights and np.all(v == v[0])]
        why = f"every run has {' and '.join(same)}" if same else "their inputs vary together"
        warnings.append(f"not identifiable from these runs: they leave {', '.join(free)} free ({why}, so the "
                        "law's derivatives in these are collinear over the runs); add runs that vary each input, or "
                        "fix a parameter")
    others = _distinct_optima(optima, best, law, n)
    if others:
        ref, alt = law.named(theta), law.named(others[0].theta)
        differ = ", ".join(f"{k} {ref[k]:.4g} vs {alt[k]:.4g}" for k in _differing(ref, alt))
        warnings.append(f"not identifiable from these runs: {len(others)} of {len(optima)} starts ended at "
                        f"other parameters that fit as well (objective within {_similar_objective(best, n, len(theta)):.2g}: "
                        f"{differ}); add runs that separate them, or fix a parameter")
    ranges = {c: (float(v.min()), float(v.max())) for c, v in data.items() if c != law.weights and v.ndim == 1}
    if "params" in ranges and "tokens" in ranges:  # the runs' compute is k N D: its range is not the ranges' product
        nd = data["params"] * data["tokens"]
        ranges["params_x_tokens"] = (float(nd.min()), float(nd.max()))
    at_bound = tuple(_reported(law, theta, i)[0] for i in np.flatnonzero(at_lo | at_hi))  # flagged above
    fit = LawFit(law=law.name, params=law.named(theta), fixed=law.fixed, theta=theta, objective=best.objective,
                 converged=best.converged, n_points=n, intervals={}, level=level, delta=delta, warnings=warnings,
                 bootstrap=None, delta_rule=rule, identified=not (free or others), fitted_range=ranges,
                 at_bound=at_bound)
    return with_refits(fit, law, data, loss, n_bootstrap=n_bootstrap, seed=seed, maxiter=maxiter)


def with_refits(fit: LawFit, law: Law, data: Data, loss: np.ndarray, *, n_bootstrap: int, seed: int = 0,
                maxiter: int = 2000, **noise: Any) -> LawFit:
    """``fit`` (of ``law`` to ``loss`` at ``data``, checked) with ``n_bootstrap`` refits
    (:func:`bootstrap_refits`; ``noise``: its ``runs``, ``run_sd``, ``noise_seed``), the parameters'
    intervals from them (:func:`refit_intervals`) and what the refits say of the fit: refits that did not
    converge, parameters the refits push to a bound of the search range, intervals that are not finite (then
    the fit is not ``identified``) or have zero width."""
    theta, level, n = fit.theta, fit.level, fit.n_points
    lo, hi = _bounds(law)
    at_lo, at_hi = _at_bound(theta, lo, hi)
    boot, failed, bound_hits = bootstrap_refits(law, theta, data, np.log(loss), delta=fit.delta,
                                                n_bootstrap=n_bootstrap, seed=seed, maxiter=maxiter, **noise)
    warnings = list(fit.warnings)
    if failed > 0.1 * max(n_bootstrap, 1):
        warnings.append(f"{failed} of {n_bootstrap} bootstrap refits did not reach a minimum; intervals may be "
                        "too narrow (raise maxiter)")
    # A parameter that ends at a bound in more than the interval's tail share of refits is bounded by
    # the search range, not by the runs: its interval is open on that side.
    open_side = (bound_hits > (1 - level) / 2 * len(boot)) & ~np.array([at_lo, at_hi])
    for i in np.flatnonzero(open_side.any(axis=0)):
        sides = " and ".join(f"its {side} bound in {bound_hits[k, i]}" for k, side in enumerate(("lower", "upper"))
                             if open_side[k, i])
        warnings.append(f"parameter {_shown(law, theta, i, value=False)} ends at {sides} of {len(boot)} bootstrap "
                        "refits: the runs do not bound it there (its interval stops at the search range); add runs "
                        "that constrain it, or fix it")
    B = np.array(boot) if boot else None
    intervals = refit_intervals(fit.params, B, level, n, len(law.theta_names), law.fixed)
    unbounded = [k for k, (a, b) in intervals.items() if not (np.isfinite(a) and np.isfinite(b))]
    if unbounded:
        warnings.append(f"the intervals of {', '.join(unbounded)} are not finite (refits where the law breaks down): "
                        "the runs do not bound them; add runs that constrain them, or fix them")
    # Equal refits are what noise-free runs give, and then right; with measured losses they mean the
    # resamples all held the same few points. Either way the interval says nothing about the uncertainty.
    flat = [k for k, (a, b) in intervals.items()
            if k not in unbounded and k not in fit.at_bound and b - a <= 1e-12 * max(abs(a), abs(b))]
    if flat:
        warnings.append(f"the {level:.0%} intervals of {', '.join(flat)} have zero width: every bootstrap refit gave "
                        "the same value (runs without noise, or copies of too few points); they do not measure the "
                        "uncertainty: add independent runs")
    return replace(fit, intervals=intervals, warnings=warnings, bootstrap=B,
                   identified=fit.identified and not unbounded)


def bootstrap_refits(law: Law, theta: np.ndarray, data: Data, log_loss: np.ndarray, *, delta: float,
                     n_bootstrap: int, seed: int = 0, maxiter: int = 2000, runs: np.ndarray | None = None,
                     run_sd: float = 0.0, noise_seed: Any = None) -> tuple[list[list[float]], int, np.ndarray]:
    r"""Bootstrap refits of ``law`` warm-started at ``theta``: each on the points resampled with replacement;
    with ``runs`` (a label per point) and ``run_sd`` > 0 every run's points also move together by one
    offset :math:`u_r \sim N(0, \text{run\_sd}^2)` in log-loss -- a parametric bootstrap of run-level noise,
    which points resampled one by one do not carry when they share their run's noise (checkpoints of one
    run). The resampling draws from ``seed``, the offsets from ``noise_seed`` (default: the resampling's own
    stream, its draws interleaved): fits of other runs on the same design can share the resampling (common random
    numbers) while their runs' noise stays independent. Returns the refits' named parameters (those with a
    finite objective), the number that did not converge, and per parameter how many ended at its lower / upper
    bound (2, P)."""
    lo, hi = _bounds(law)
    n = len(log_loss)
    boot, failed, bound_hits = [], 0, np.zeros((2, len(theta)), dtype=int)
    rng = np.random.default_rng(seed)
    shared = runs is not None and run_sd > 0
    if shared:
        _, run_of = np.unique(np.asarray(runs).astype(str), return_inverse=True)
        noise = np.random.default_rng(noise_seed) if noise_seed is not None else rng
    for _ in range(n_bootstrap):
        idx = rng.integers(0, n, n)
        y = log_loss[idx]
        if shared:
            y = y + noise.normal(0.0, run_sd, run_of.max() + 1)[run_of[idx]]
        res = _optimum(theta, law, {k: v[idx] for k, v in data.items()}, y, delta, maxiter, descend=False)
        if np.isfinite(res.objective):
            boot.append(list(law.named(res.theta).values()))
            bound_hits += np.array(_at_bound(res.theta, lo, hi))
        if not res.converged:
            failed += 1
    return boot, failed, bound_hits


def refit_intervals(params: Mapping[str, float], B: np.ndarray | None, level: float, n: int, n_theta: int,
                    fixed: Sequence[str] = ()) -> dict[str, tuple[float, float]]:
    r"""Each parameter's ``level`` percentile interval over the refits ``B`` (rows in the order of ``params``),
    widened about the fit's value by :math:`\sqrt{n/(n-P)}`; none for ``fixed`` ones or fewer than 2 refits."""
    intervals: dict[str, tuple[float, float]] = {}
    if B is None or len(B) < 2:
        return intervals
    q = [(1 - level) / 2, (1 + level) / 2]
    # A bootstrap of n points under-states the spread of a P-parameter fit by about
    # sqrt((n - P) / n), as the residual variance does: widen the percentile interval about the fit.
    widen = np.sqrt(n / max(n - n_theta, 1))
    for j, (name, value) in enumerate(params.items()):
        if name not in fixed:
            a, b = np.quantile(B[:, j], q)
            lo_end, hi_end = value - widen * (value - a), value + widen * (b - value)
            if lo_end <= 0 < a and value > 0:
                # a positive quantity (every refit > 0) is widened on the log scale, where it was fitted:
                # the linear widening would cross zero (e.g. a half-life of 1000 with refits down to 200)
                lo_end = value * (a / value) ** widen
            intervals[name] = (float(lo_end), float(hi_end))
    return intervals


def _reported(law: Law, theta: np.ndarray, i: int) -> tuple[str, str | None]:
    """The report's name of fitted parameter ``i`` and, when it is fitted in another form, that form
    (``("E", "e = log E")``; ``("alpha", None)``)."""
    name, t = law.theta_names[i], float(theta[i])
    named = law.named(theta)
    if named.get(name) == t:
        return name, None
    # The reported parameter is the one that moves with theta[i] (the same letter first: D-CPT's A moves
    # with its a and its alpha).
    step = np.array(theta, dtype=float)
    step[i] += 1e-6 * max(1.0, abs(t))
    moved = law.named(step)
    changed = [k for k in named if moved[k] != named[k]]
    key = next((k for k in changed if k.lower() == name.lower()), changed[0] if changed else None)
    if key is None:
        return name, None
    return key, f"{name} = log {key}" if np.isclose(named[key], np.exp(t), rtol=1e-9, atol=0) else f"fitted as {name}"


def _shown(law: Law, theta: np.ndarray, i: int, value: bool = True) -> str:
    """Fitted parameter ``i`` as the report's table names it: ``alpha = 0.3``, or, for one fitted in another
    form, ``E = 0.00673795 (e = log E = -5)``, so that a warning and the table speak of the same number."""
    key, form = _reported(law, theta, i)
    if not value:
        return key if form is None else f"{key} ({form})"
    shown = f"{key} = {law.named(theta)[key]:.6g}"
    return shown if form is None else f"{shown} ({form} = {float(theta[i]):.6g})"


#: Singular-value ratio below which the (column-scaled) Jacobian is rank-deficient: exact collinearity
#: from the design shows up at ~1e-15, real but ill-conditioned designs stay far above.
_COLLINEAR = 1e-8


def _free_directions(theta: np.ndarray, law: Law, data: Data) -> list[str]:
    """Parameters (as :func:`_shown` names them) that the runs leave free at ``theta``: no effect on any
    run's loss, or a combination of them along which every run's loss is unchanged to first order
    (e.g. E, B and beta when every run has the same tokens). Empty when the design identifies the law."""
    with np.errstate(all="ignore"):
        J = _jacobian(theta, law, data)
    if not np.all(np.isfinite(J)):
        return []
    norms = np.linalg.norm(J, axis=0)
    involved = set(np.flatnonzero(norms == 0))
    live = np.flatnonzero(norms > 0)
    if len(live) > 1:
        s, v = np.linalg.svd(J[:, live] / norms[live], full_matrices=False)[1:]
        null = v[s < _COLLINEAR * s[0]]  # the directions the runs do not see (one D: e, b and beta)
        involved |= set(live[np.linalg.norm(null, axis=0) > 0.1])
    return [_shown(law, theta, i, value=False) for i in sorted(involved)]
