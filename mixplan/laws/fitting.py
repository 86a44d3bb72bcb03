r"""A small fitter for scaling laws: Huber loss on log-loss, L-BFGS-B from a grid, bootstrap intervals.

The recipe of Hoffmann et al. (2022) as Epoch AI replicated it (laws.md section 3.2): minimise

.. math::

    \sum_i \mathrm{Huber}_\delta\big(\log \hat L(x_i; \theta) - \log L_i\big), \qquad \delta = 10^{-3}

(the *sum*, not the mean: with a mean scipy's default tolerances stop early, which is Epoch's
diagnosis of Hoffmann's published fit) by L-BFGS-B with bounds. The objective is evaluated on every
point of the law's initialisation grid at once, and L-BFGS-B starts from the best ``n_starts`` grid
points: the same optimum as starting from all 4,500 points of Chinchilla's grid, at 1% of the cost.

``delta="auto"`` (mixplan's option; the default of :func:`mixplan.laws.fit_dcpt`) is Huber's
proposal with an estimated scale: fit at :math:`\delta = 10^{-3}`, take the residuals' robust scale
:math:`s = 1.4826\,\mathrm{MAD}\sqrt{n/(n-P)}`, refit from there at :math:`\delta = 1.345\,s`.
Why: :math:`10^{-3}` was chosen for losses measured to about 0.1%; with runs noisier than that the
objective is nearly :math:`L_1` (a median fit), whose variance under Gaussian noise is
:math:`\pi/2` times least squares'. At :math:`1.345\,s` the fit keeps 95% of least squares'
efficiency and still caps each point's pull (a diverged run). The resolved value is stored and
used for every bootstrap refit.

Uncertainty: ``n_bootstrap`` refits on runs resampled with replacement (each warm-started at the
fit), percentile intervals at ``level`` widened about the estimate by :math:`\sqrt{n/(n-P)}` (the
degrees-of-freedom correction: a bootstrap of few points under-states the spread). The report flags, each with the knob to turn, parameters
at a bound, a fit that did not converge, bootstrap refits that failed, and too few points per
parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import minimize

from ..exceptions import ValidationError

__all__ = ["Law", "LawFit", "fit_law", "huber", "grid_points", "parse_delta", "robust_delta", "robust_scale"]

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

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.law, "params": self.params, "fixed": list(self.fixed),
                "intervals": {k: list(v) for k, v in self.intervals.items()}, "level": self.level,
                "objective": self.objective, "converged": self.converged, "n_points": self.n_points,
                "huber_delta": self.delta, "huber_delta_rule": self.delta_rule, "warnings": self.warnings,
                # refits in the order of "params": what intervals of derived quantities are computed from
                "bootstrap": None if self.bootstrap is None else self.bootstrap.tolist()}

    def report(self) -> str:
        rule = ", auto: 1.345 x robust residual scale" if self.delta_rule == "auto" else ""
        lines = [f"{self.law} law fitted to {self.n_points} points: Huber(delta={self.delta:.3g}{rule}) objective "
                 f"{self.objective:.6g}, {'converged' if self.converged else 'NOT converged'}",
                 f"{'parameter':>10} {'value':>14}  {int(round(self.level * 100))}% bootstrap interval"]
        for k, v in self.params.items():
            if k in self.fixed:
                lines.append(f"{k:>10} {v:>14.6g}  (fixed)")
                continue
            lo, hi = self.intervals.get(k, (float("nan"), float("nan")))
            lines.append(f"{k:>10} {v:>14.6g}  [{lo:.6g}, {hi:.6g}]")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _check_data(law: Law, data: Data, loss: np.ndarray, where: str,
                rows: list[int] | None) -> tuple[dict[str, np.ndarray], np.ndarray]:
    loss = np.asarray(loss, dtype=float)
    row = (lambda i: rows[i]) if rows is not None else (lambda i: i + 1)
    out = {}
    for col in law.columns:
        if col not in data:
            raise ValidationError(f"{where}: the {law.name} law needs a {col!r} column")
        v = np.asarray(data[col], dtype=float)
        bad = np.flatnonzero(~np.isfinite(v) | (v <= 0))
        if len(bad):
            raise ValidationError(f"{where}: column {col!r}, row {row(bad[0])}: {float(v[bad[0]])!r} is not a positive "
                                  "finite number")
        out[col] = v
    bad = np.flatnonzero(~np.isfinite(loss) | (loss <= 0))
    if len(bad):
        raise ValidationError(f"{where}: the loss in row {row(bad[0])} is {float(loss[bad[0]])!r}; losses must be positive "
                              "and finite (they are fitted on the log scale)")
    n_theta = len(law.theta_names)
    if len(loss) < 2 * n_theta:
        raise ValidationError(f"{where}: {len(loss)} points are too few to fit the {law.name} law's {n_theta} "
                              f"parameters (at least {2 * n_theta}); add runs")
    return out, loss


def _objective(theta: np.ndarray, law: Law, data: Data, log_loss: np.ndarray, delta: float) -> float:
    return float(huber(law.log_predict(theta, data) - log_loss, delta).sum())


def _objective_and_grad(theta: np.ndarray, law: Law, data: Data, log_loss: np.ndarray,
                        delta: float) -> tuple[float, np.ndarray]:
    r = law.log_predict(theta, data) - log_loss
    psi = np.clip(r, -delta, delta)  # derivative of the Huber loss
    return float(huber(r, delta).sum()), law.jacobian(theta, data).T @ psi  # type: ignore[misc]


def grid_points(law: Law) -> np.ndarray:
    """Every point of the law's initialisation grid, as columns of a (P, G) array."""
    mesh = np.meshgrid(*[np.asarray(g, dtype=float) for g in law.grid], indexing="ij")
    return np.stack([m.ravel() for m in mesh])  # (P, G)


def _minimise(theta0: np.ndarray, law: Law, data: Data, log_loss: np.ndarray, delta: float,
              maxiter: int) -> Any:
    fun, jac = (_objective_and_grad, True) if law.jacobian is not None else (_objective, None)
    return minimize(fun, theta0, args=(law, data, log_loss, delta), jac=jac, method="L-BFGS-B",
                    bounds=law.bounds, options={"maxiter": maxiter, "ftol": 1e-15, "gtol": 1e-10})


#: Huber's tuning constant: 95% of least squares' efficiency under Gaussian noise.
_HUBER_K = 1.345
_DELTA_START = 1e-3  # the Chinchilla recipe's delta; also the first pass of delta="auto"


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
            where: str = "runs", rows: list[int] | None = None) -> LawFit:
    """Fit ``law`` to ``loss`` at the points ``data`` (columns named by ``law.columns``); errors name
    ``where`` and the row (``rows[i]`` for point ``i``, default ``i + 1``). ``delta``: the Huber
    threshold on log-loss, or ``"auto"`` (see the module docstring)."""
    data, loss = _check_data(law, data, loss, where, rows)
    delta = parse_delta(delta)
    rule = "auto" if delta == "auto" else "fixed"
    if rule == "auto":
        delta = _DELTA_START
    log_loss = np.log(loss)
    grid = grid_points(law)
    lo = np.array([b[0] for b in law.bounds])
    hi = np.array([b[1] for b in law.bounds])
    grid = np.clip(grid, lo[:, None], hi[:, None])
    # Objective at every grid point at once: parameters (P, G) against data (n, 1).
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if law.vectorized:
            cols = {k: v[:, None] for k, v in data.items()}
            values = huber(law.log_predict(grid, cols) - log_loss[:, None], delta).sum(axis=0)
        else:
            values = np.array([_objective(grid[:, g], law, data, log_loss, delta) for g in range(grid.shape[1])])
    values = np.where(np.isfinite(values), values, np.inf)
    best = None
    for g in np.argsort(values, kind="stable")[:n_starts]:
        res = _minimise(grid[:, g], law, data, log_loss, delta, maxiter)
        if best is None or res.fun < best.fun:
            best = res
    if rule == "auto":
        delta = robust_delta(law.log_predict(best.x, data) - log_loss, len(law.theta_names))
        best = _minimise(best.x, law, data, log_loss, delta, maxiter)
    theta = best.x
    warnings = []
    if not best.success:
        warnings.append(f"L-BFGS-B did not converge ({best.message}); raise maxiter or check the data")
    span = hi - lo
    for i, name in enumerate(law.theta_names):
        if np.isfinite(span[i]) and (theta[i] - lo[i] < 1e-6 * span[i] or hi[i] - theta[i] < 1e-6 * span[i]):
            side = "lower" if theta[i] - lo[i] < 1e-6 * span[i] else "upper"
            warnings.append(f"parameter {name} = {theta[i]:.6g} is at its {side} bound; the data do not pin it "
                            "down: add runs over a wider range, or fix it (pass a published value)")
    boot, failed = [], 0
    rng = np.random.default_rng(seed)
    n = len(loss)
    for _ in range(n_bootstrap):
        idx = rng.integers(0, n, n)
        res = _minimise(theta, law, {k: v[idx] for k, v in data.items()}, log_loss[idx], delta, maxiter)
        if res.success or np.isfinite(res.fun):
            boot.append(list(law.named(res.x).values()))
        if not res.success:
            failed += 1
    if failed > 0.1 * max(n_bootstrap, 1):
        warnings.append(f"{failed} of {n_bootstrap} bootstrap refits did not converge; intervals may be too narrow "
                        "(raise maxiter)")
    params = law.named(theta)
    intervals = {}
    B = np.array(boot) if boot else None
    if B is not None and len(B) > 1:
        q = [(1 - level) / 2, (1 + level) / 2]
        # A bootstrap of n points under-states the spread of a P-parameter fit by about
        # sqrt((n - P) / n), as the residual variance does: widen the percentile interval about the fit.
        widen = np.sqrt(n / max(n - len(law.theta_names), 1))
        for j, (name, value) in enumerate(params.items()):
            if name not in law.fixed:
                a, b = np.quantile(B[:, j], q)
                intervals[name] = (float(value - widen * (value - a)), float(value + widen * (b - value)))
    return LawFit(law=law.name, params=params, fixed=law.fixed, theta=theta, objective=float(best.fun), converged=bool(best.success),
                  n_points=n, intervals=intervals, level=level, delta=delta, warnings=warnings, bootstrap=B,
                  delta_rule=rule)
