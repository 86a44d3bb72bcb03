r"""A fair comparison of two or more datasets (or recipes) across scale: one scaling law per group,
compared where the decision lands, not at one reference scale.

Following "Scaling Laws for Robust Comparison" (issue 24): a dataset that wins at the proxies' size
can lose at the target's, so each group's runs (several model sizes and token counts) are fitted
with the laws engine (:func:`mixplan.laws.fit_law`: Huber on log-loss, bootstrap refits), and the
groups are compared by their laws' predictions.

* **Target scale.** Given parameters :math:`N` and tokens :math:`D`, every group is predicted there;
  given compute :math:`C = k N D` instead, every group at its own compute-optimal split (Chinchilla's
  :func:`~mixplan.laws.compute_optimal`; with unique tokens the data-constrained optimum), so that
  each dataset is judged as it would be trained. The interval is the ``level`` percentile range of
  the prediction over the bootstrap refits (each refit at its own optimum under ``C``).
* **Degrees of freedom.** As the engine does for its parameter intervals, a bootstrap of :math:`n`
  points under-states the spread of a :math:`P`-parameter fit, so each refit's log-prediction is
  spread about the fit's by :math:`\sqrt{n/(n-P)}` before any interval or probability is taken.
* **P(a better than b)** is the fraction of refit indices :math:`i` at which refit :math:`i` of
  ``a`` predicts a lower loss than refit :math:`i` of ``b`` (ties count one half). Every group is
  refitted with the same seed, so refit :math:`i` of every group resamples the same row positions:
  groups run on the same design (same :math:`(N, D)` in the same order) then resample the same
  design points (common random numbers: the design's share of the variance cancels in the
  difference), and groups on different designs are paired independent draws, which is what the
  difference of two independent bootstrap distributions needs. The runs' offsets (below) are drawn
  independently per group: other runs, other noise. A refit the engine drops (no finite
  loss) shortens the pairing to the shorter group's refits.
* **Runs' noise.** Checkpoints of one run (a group's rows of one size, or ``runs``) share that run's
  noise, which a bootstrap over rows treats as independent: its refits then agree with each other more
  than the laws fitted to other runs would, and P(better) is over-confident exactly where a decision is
  close. So the refits are a bootstrap over rows *and* of run-level noise: every refit moves each run's
  points together by one offset :math:`u_r \sim N(0, \sigma^2)` in log-loss
  (:func:`~mixplan.laws.fitting.bootstrap_refits`), which passes one run's noise through the law's fit
  -- its exponents too -- into the prediction at the target. :math:`\sigma` is given (``run_sd``: from
  seed replicates) or measured one size out: each group's law is refitted on its runs below its
  largest size (the whole law where those sizes identify it, else with its exponents held at the full
  fit's -- only the scales refitted, which two sizes identify) and predicts its largest size at that
  size's largest token count; :math:`e_g`, the log-error there, is that run's noise plus the law's
  error one size out, and :math:`\sigma` is the standard deviation of :math:`e_g` across groups (an
  error every group shares cancels in a gap, so it is taken about their mean). The law's error one size
  out adds to it, the shape's having seen that size takes from it; on 6 groups with one law and runs
  off it by sd 0.01 it measures 0.0093 (``tests/laws/test_compare.py``). From two groups it has one
  degree of freedom, and a warning says so. Groups with fewer than two sizes below their largest are
  left out; with fewer than two groups left :math:`\sigma` is not measured and the refits are the row
  bootstrap alone (the report says so).
* **P(a's run better)**: P(better) compares the groups' *expected* losses; one run of each at the
  target (the run a team will train, or the one that checks the prediction) also carries that run's
  own noise. Over paired refits :math:`i`,

  .. math::

      P_\text{run}(a \text{ better than } b) = \frac{1}{B} \sum_i
      \Phi\Big(\frac{\log \hat L_{b,i} - \log \hat L_{a,i}}{\sqrt{2}\,\sigma}\Big)

  (:math:`\sigma = 0` gives P(better)).
* **Crossings.** Along a path of fixed tokens per parameter :math:`D = r N` (``r = 20`` by default,
  or the runs' own geometric-mean ratio), :math:`N` is scanned on a log grid from the smallest
  measured size to ``beyond`` (100) times the target size; a crossing is a sign change of
  :math:`\log L_a - \log L_b` (interpolated linearly in :math:`\log N`). Its interval: each refit's
  crossing nearest (in :math:`\log N`) to the fitted one, percentiles over the refits that cross;
  the fraction of refits that cross anywhere on the path is reported beside it.
* **Rankings.** At the largest scale every group was measured at (the smallest over groups of each
  group's largest size, at the fewest of their largest token counts there) and at the smallest such
  scale, from the runs' mean loss when every group has runs exactly there, else from the fits. A
  ranking at the largest measured scale that differs from the target's is warned about: a decision
  taken there would be the wrong one.
* **Extrapolation.** Every prediction beyond a group's fitted range says how far beyond it lies
  (:func:`mixplan.laws.budget.extrapolation` on the fit's ``fitted_range``).
"""

from __future__ import annotations

import itertools
import warnings
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from .._checks import check_number
from .._stats import normal_cdf
from ..exceptions import ExtrapolationWarning, MixplanWarning, ValidationError
from .budget import extrapolation
from .chinchilla import CHINCHILLA, chinchilla_loss, compute_optimal
from .data_constrained import data_constrained_law, data_constrained_loss, optimal_allocation
from .fitting import Data, Law, LawFit, fit_law, with_refits

__all__ = ["COMPARE_LAWS", "Comparison", "compare_groups", "crossings", "p_better", "p_better_run", "refit_predictions",
           "run_noise"]


@dataclass(frozen=True)
class _Comparable:
    """A law the comparison can use: the engine's law, its loss from named parameters, and its
    compute-optimal split ``(C, params, unique tokens or None, k) -> (N, D)``."""

    law: Callable[[], Law]
    loss: Callable[[Mapping[str, float], Data], np.ndarray]
    optimal: Callable[[float, Mapping[str, float], float | None, float], tuple[float, float]]


def _chinchilla_optimal(C: float, p: Mapping[str, float], U: float | None, k: float) -> tuple[float, float]:
    n, d = compute_optimal(C, p, k)
    return float(n), float(d)


def _constrained_optimal(C: float, p: Mapping[str, float], U: float | None, k: float) -> tuple[float, float]:
    n, d, _ = optimal_allocation(C, U, p, k)
    return n, d


#: Laws the comparison fits (``--law``): their columns must be in the runs table.
COMPARE_LAWS: dict[str, _Comparable] = {
    "chinchilla": _Comparable(
        lambda: CHINCHILLA,
        lambda p, d: chinchilla_loss(d["params"], d["tokens"], p["A"], p["B"], p["E"], p["alpha"], p["beta"]),
        _chinchilla_optimal),
    # every parameter fitted per group: a fixed base would give every dataset the same A, B, E
    "data-constrained": _Comparable(
        lambda: data_constrained_law(None),
        lambda p, d: data_constrained_loss(d["params"], d["tokens"], d["unique_tokens"], p),
        _constrained_optimal),
}


@dataclass(frozen=True)
class Comparison:
    """Groups fitted and compared (see the module docstring); ``groups`` and ``pairs`` are JSON-ready."""

    by: str
    target: str
    law: str
    level: float
    n_bootstrap: int
    scale: dict[str, Any]  # the target: params, tokens (None per group under flops), flops, allocation
    measured: dict[str, dict[str, Any]]  # "largest" / "smallest": params, tokens, source
    path: dict[str, Any]  # tokens_per_param, params grid [lo, hi], points
    groups: list[dict[str, Any]]
    pairs: list[dict[str, Any]]
    fits: dict[str, LawFit] = field(repr=False, default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    #: one run's noise at the target (see the module docstring): sd_log, the groups it was read from, where
    run_noise: dict[str, Any] = field(default_factory=dict)

    @property
    def ranking(self) -> list[str]:
        """Groups from best (lowest predicted loss at the target) to worst."""
        return [g["group"] for g in sorted(self.groups, key=lambda g: g["rank"])]

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, "target": self.target, "law": self.law, "level": self.level,
                "bootstrap": self.n_bootstrap, "scale": self.scale, "measured": self.measured, "path": self.path,
                "ranking": self.ranking, "groups": self.groups, "pairs": self.pairs,
                "fits": {g: {k: v for k, v in f.to_dict().items() if k != "bootstrap"} for g, f in self.fits.items()},
                "run_noise": self.run_noise, "warnings": self.warnings}

    def report(self) -> str:
        pct = f"{self.level:.0%}"
        s = self.scale
        at = (f"compute {s['flops']:.4g} FLOPs, each {self.by} at its compute-optimal split" if s["flops"] else
              f"params {s['params']:.4g}, tokens {s['tokens']:.4g}")
        big, small = self.measured["largest"], self.measured["smallest"]
        lines = [f"{len(self.groups)} groups by {self.by!r}: {self.law} law on {self.target}, "
                 f"{self.n_bootstrap} bootstrap refits, {pct} intervals",
                 f"target: {at}",
                 f"largest measured scale: params {big['params']:.4g}, tokens {big['tokens']:.4g} ({big['source']}); "
                 f"smallest: params {small['params']:.4g}, tokens {small['tokens']:.4g} ({small['source']})"]
        noise = self.run_noise
        if noise.get("sd_log") is not None:
            how = ("given" if noise["given"] else f"measured one size out (each law refitted below its largest size "
                   f"predicts it) across {noise['groups']} {self.by}s")
            lines.append(f"one run's noise: sd {noise['sd_log']:.4g} in log-loss, {how}; every refit carries it "
                         "per run, and P(run) is the chance one run of the better beats one of the other at the "
                         "target")
        elif noise:
            lines.append("one run's noise: not measured one size out (" + "; ".join(_grouped_notes(
                {g: [r] for g, r in noise["left_out"].items()}, self.by)) + "): the refits resample rows alone, "
                "P(better) may be over-confident; give --run-noise SD from seed replicates")
        w = max(8, *(len(g["group"]) for g in self.groups))
        lines.append(f"{'group':>{w}} {'points':>6}  {'loss at target':>14} {pct + ' interval':>20} {'rank':>4} "
                     f"{'@largest':>8} {'@smallest':>9}  beyond the fitted range")
        for g in sorted(self.groups, key=lambda g: g["rank"]):
            p = g["prediction"]
            lo, hi = p["interval"] or (float("nan"), float("nan"))
            lines.append(f"{g['group']:>{w}} {g['points']:>6}  {p['loss']:>14.4f} {f'[{lo:.4f}, {hi:.4f}]':>20} "
                         f"{g['rank']:>4} {g['rank_largest']:>8} {g['rank_smallest']:>9}  "
                         + ("; ".join(n.removeprefix("extrapolation: ") for n in p["extrapolation"]) or "-"))
        lines.append(f"pairs at the target (better first; P from paired refits; crossings along D = "
                     f"{self.path['tokens_per_param']:.4g} N, N in [{self.path['params'][0]:.3g}, "
                     f"{self.path['params'][1]:.3g}]):")
        lines.append(f"{'better':>{w}} {'other':>{w}} {'P(better)':>9} {'P(run)':>6} {'loss gap':>9} "
                     f"{'@largest':>{w}} {'@smallest':>{w}}  crossing N [{pct}] (refits crossing)")
        for q in self.pairs:
            cross = "; ".join(f"{c['params']:.3g}" + (f" [{c['interval'][0]:.3g}, {c['interval'][1]:.3g}]"
                                                       if c["interval"] else "") + f" then {c['better_after']}"
                              for c in q["crossings"]) or "none"
            p = "n/a" if q["p_better"] is None else f"{q['p_better']:.3f}"  # no refits (--bootstrap 0)
            pr = "n/a" if q["p_run"] is None else f"{q['p_run']:.3f}"
            lines.append(f"{q['better']:>{w}} {q['other']:>{w}} {p:>9} {pr:>6} {q['loss_gap']:>9.4f} "
                         f"{q['better_largest']:>{w}} {q['better_smallest']:>{w}}  {cross} "
                         + ("(no refits)" if q["refits_crossing"] is None else f"({q['refits_crossing']:.0%})")
                         + _flip_mark(q))
        lines.append(f"{sum(q['flips_smallest'] for q in self.pairs)} of {len(self.pairs)} pairs rank otherwise at "
                     f"the smallest measured scale than predicted at the target, "
                     f"{sum(q['flips_largest'] for q in self.pairs)} at the largest (marked)")
        lines += [f"warning: {m}" for m in self.warnings]
        return "\n".join(lines)


def _flip_mark(pair: Mapping[str, Any]) -> str:
    """The report's mark of a pair ranked otherwise at the measured scales than at the target."""
    where = [w for w in ("largest", "smallest") if pair[f"flips_{w}"]]
    return f"  <- ranking flips vs {' and '.join(where)}" if where else ""


def refit_predictions(comparable: _Comparable, fit: LawFit, data: Data, n_params: int) -> tuple[np.ndarray, np.ndarray]:
    """Log-loss of the fit and of its bootstrap refits at the points ``data``: shapes (m,) and (B, m), the
    refits spread about the fit by :math:`\\sqrt{n/(n-P)}` (the engine's degrees-of-freedom widening)."""
    log_hat = np.log(comparable.loss(fit.params, data))
    if fit.bootstrap is None or len(fit.bootstrap) == 0:
        return log_hat, np.empty((0, len(log_hat)))
    names = list(fit.params)
    with np.errstate(all="ignore"):
        boot = np.array([np.log(comparable.loss(dict(zip(names, row)), data)) for row in fit.bootstrap])
    return log_hat, _widened(fit, n_params, log_hat, boot)


def _widened(fit: LawFit, n_params: int, log_hat: np.ndarray | float, boot: np.ndarray) -> np.ndarray:
    r"""Refits' log-predictions ``boot`` spread about the fit's ``log_hat`` by :math:`\sqrt{n/(n-P)}`."""
    return log_hat + np.sqrt(fit.n_points / max(fit.n_points - n_params, 1)) * (boot - log_hat)


def p_better(log_a: np.ndarray, log_b: np.ndarray) -> np.ndarray:
    """P(a's loss < b's) from paired refits (B, ...) each: the fraction of refit indices where it holds, ties
    one half; refits beyond the shorter group's are left out. NaN without refits."""
    m = min(len(log_a), len(log_b))
    if m == 0:
        return np.full(np.shape(log_a)[1:], np.nan)
    a, b = log_a[:m], log_b[:m]
    return np.mean((a < b) + 0.5 * (a == b), axis=0)


def p_better_run(log_a: np.ndarray, log_b: np.ndarray, sigma: float) -> np.ndarray:
    r"""P(one run of a has a lower loss than one run of b) from paired refits (B, ...) each, every run's
    log-loss off its law's by an independent :math:`N(0, \sigma^2)`: the mean over refit indices of
    :math:`\Phi((b_i - a_i) / (\sqrt 2 \sigma))`. ``sigma = 0`` is :func:`p_better`."""
    if sigma <= 0:
        return p_better(log_a, log_b)
    m = min(len(log_a), len(log_b))
    if m == 0:
        return np.full(np.shape(log_a)[1:], np.nan)
    with np.errstate(invalid="ignore"):
        z = (log_b[:m] - log_a[:m]) / (np.sqrt(2.0) * sigma)
    return np.mean(np.where(np.isnan(z), 0.0, normal_cdf(z)), axis=0)  # a lost refit: not better (as p_better)


def run_noise(errors: Mapping[str, float]) -> float | None:
    r""":math:`\sigma` of the module docstring from each group's log-error one size out: their standard
    deviation across groups (about their mean: an error all groups share cancels in a gap). None for fewer
    than two finite errors."""
    e = np.array([v for v in errors.values() if np.isfinite(v)])
    return float(np.std(e, ddof=1)) if len(e) >= 2 else None


#: The fit-space parameters held at the full fit's in the one-size-out refit (the law's shape).
SHAPE = ("alpha", "beta", "R_D_star", "R_N_star")


def _holding(law: Law, theta: np.ndarray, held: Sequence[str]) -> Law:
    """``law`` with the fit-space parameters ``held`` fixed at their values in ``theta``."""
    free = [i for i, n in enumerate(law.theta_names) if n not in held]

    def full(t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=float)  # (P_free,) or a (P_free, G) block
        base = np.reshape(np.asarray(theta, dtype=float), (-1,) + (1,) * (t.ndim - 1))
        out = np.broadcast_to(base, (len(base),) + t.shape[1:]).copy()
        out[free] = t
        return out

    return replace(law, theta_names=tuple(law.theta_names[i] for i in free),
                   log_predict=lambda t, d: law.log_predict(full(t), d), named=lambda t: law.named(full(t)),
                   bounds=tuple(law.bounds[i] for i in free), grid=tuple(law.grid[i] for i in free),
                   jacobian=None if law.jacobian is None else lambda t, d: law.jacobian(full(t), d)[:, free])


def size_out_error(comparable: _Comparable, engine: Law, fit: LawFit, data: Mapping[str, np.ndarray],
                   loss: np.ndarray, **fit_options: Any) -> float | str:
    """One group's log-error one size out (module docstring): the law refitted on the runs below the largest
    size with its shape held at ``fit``'s, at the largest size's largest token count; or why not."""
    N, D = data["params"], data["tokens"]
    keep = N < N.max()
    if len(np.unique(N[keep])) < 2:
        return f"fewer than two sizes below its largest ({len(np.unique(N[keep]))})"
    below: LawFit | None = None
    why = ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for law in (engine, _holding(engine, fit.theta, SHAPE)):  # the whole law where the sizes below identify it
            try:
                got = fit_law(law, {c: v[keep] for c, v in data.items()}, loss[keep],
                              **(fit_options | {"n_bootstrap": 0}))
            except ValidationError as e:
                why = str(e)
                continue
            if below is None or got.identified:  # an identified fit, else the first that fitted at all
                below = got
            if got.identified:
                break
    if below is None:
        return why
    at = (N == N.max()) & (D == D[N == N.max()].max())
    point = {c: v[at][:1] for c, v in data.items()}
    with np.errstate(all="ignore"):
        e = float(np.log(loss[at].mean()) - np.log(comparable.loss(below.params, point))[0])
    return e if np.isfinite(e) else "its law refitted below its largest size gives no finite loss there"


def crossings(x: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Where ``gap`` (..., G) along the increasing grid ``x`` (G,) changes sign, interpolated linearly in
    ``log x``: an array (..., G - 1), NaN where a grid step holds no crossing."""
    lx = np.log(x)
    g0, g1 = gap[..., :-1], gap[..., 1:]
    change = (np.sign(g0) * np.sign(g1) < 0) | ((g1 == 0) & (g0 != 0))
    with np.errstate(all="ignore"):
        t = np.where(change, g0 / (g0 - g1), np.nan)
    return np.exp(lx[:-1] + t * (lx[1:] - lx[:-1]))


def _interval(values: np.ndarray, level: float) -> list[float] | None:
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return None
    return [float(v) for v in np.quantile(values, [(1 - level) / 2, (1 + level) / 2])]


def _measured_scales(groups: Mapping[str, Data]) -> dict[str, dict[str, float]]:
    """The largest and smallest scales every group was measured at (see the module docstring)."""
    tops, bottoms = [], []
    for d in groups.values():
        N, D = d["params"], d["tokens"]
        tops.append((N.max(), D[N == N.max()].max()))
        bottoms.append((N.min(), D[N == N.min()].max()))
    return {"largest": {"params": float(min(t[0] for t in tops)), "tokens": float(min(t[1] for t in tops))},
            "smallest": {"params": float(max(b[0] for b in bottoms)), "tokens": float(min(b[1] for b in bottoms))}}


def _losses_at(point: Mapping[str, float], groups: Mapping[str, Data], losses: Mapping[str, np.ndarray],
               predicted: Mapping[str, float]) -> tuple[dict[str, float], str]:
    """Each group's loss at ``point``: the mean of its runs there when every group has some, else the fit's."""
    measured = {}
    for g, d in groups.items():
        at = (d["params"] == point["params"]) & (d["tokens"] == point["tokens"])
        if not at.any():
            return dict(predicted), "fitted"
        measured[g] = float(losses[g][at].mean())
    return measured, "measured"


def _span(fit: LawFit) -> str:
    return ", ".join(f"{c} {lo:.3g}..{hi:.3g}" for c, (lo, hi) in fit.fitted_range.items() if c != "params_x_tokens")


def _ranks(loss: Mapping[str, float]) -> dict[str, int]:
    order = sorted(loss, key=lambda g: (loss[g], g))
    return {g: i + 1 for i, g in enumerate(order)}


def _grouped_notes(notes: Mapping[str, list[str]], by: str) -> list[str]:
    """Identical notes of several groups said once, naming the groups (40 groups, one extrapolation)."""
    seen: dict[str, list[str]] = {}
    for g, ns in notes.items():
        for n in ns:
            seen.setdefault(n, []).append(g)
    out = []
    for n, gs in seen.items():
        who = (f"{by} {gs[0]}" if len(gs) == 1 else f"every {by}" if len(gs) == len(notes) else
               f"{by} {', '.join(gs[:4])}" + (f" and {len(gs) - 4} more" if len(gs) > 4 else ""))
        out.append(f"{who}: {n}")
    return out


def compare_groups(data: Mapping[str, np.ndarray], loss: np.ndarray, groups: Sequence[Any], *,
                   law: str = "chinchilla", params: float | None = None, tokens: float | None = None,
                   flops: float | None = None, unique_tokens: float | None = None,
                   tokens_per_param: float | str = 20.0, n_bootstrap: int = 200, level: float = 0.95, seed: int = 0,
                   delta: float | str = 1e-3, beyond: float = 100.0, grid: int = 240,
                   flops_per_token_param: float = 6.0, where: str = "runs", by: str = "group",
                   target: str = "loss", rows: Sequence[int] | None = None, runs: Sequence[Any] | None = None,
                   run_sd: float | None = None) -> Comparison:
    """Fit ``law`` (a :data:`COMPARE_LAWS` name) to each group's runs and compare the groups at the target
    scale: ``params`` and ``tokens``, ``params`` alone (tokens at ``tokens_per_param``), or ``flops`` (each
    group at its compute-optimal split). ``data`` holds the law's columns for every run, ``groups`` each
    run's group, ``rows`` each run's row number for errors (default 1, 2, ...), ``runs`` each row's run (rows
    of one run share its noise: checkpoints; default: a group's rows of one size are one run); ``run_sd``
    one run's noise in log-loss when known (seed replicates), else it is measured one size out. See the
    module docstring."""
    if law not in COMPARE_LAWS:
        raise ValidationError(f"law {law!r}: choose one of {', '.join(COMPARE_LAWS)}")
    comparable = COMPARE_LAWS[law]
    engine = comparable.law()
    labels = np.array([str(g) for g in groups], dtype=object)
    loss = np.asarray(loss)
    rows = list(range(1, len(loss) + 1)) if rows is None else list(rows)
    check_number(n_bootstrap, "bootstrap refits", lo=0, integer=True)
    if run_sd is not None:
        check_number(run_sd, "one run's noise (--run-noise)", lo=0, why="sd in log-loss")
    names = list(dict.fromkeys(labels))  # first-seen order
    if len(names) < 2:
        raise ValidationError(f"{where}: column {by!r} names {len(names)} group{'s' if len(names) != 1 else ''} "
                              f"({', '.join(names) or 'none'}); a comparison needs two or more: add runs of another "
                              "dataset or choose another --by column")
    missing = [c for c in engine.columns if c not in data]
    if missing:
        raise ValidationError(f"{where}: the {law} law needs the column{'s' if len(missing) > 1 else ''} "
                              f"{', '.join(missing)}; add {'them' if len(missing) > 1 else 'it'} or choose another "
                              f"--law ({', '.join(COMPARE_LAWS)})")
    if flops is not None and (params is not None or tokens is not None):
        raise ValidationError("give the target as --params N (and --tokens D) or as --flops C, not both")
    if flops is None and params is None:
        raise ValidationError("no target scale: give --params N (and --tokens D), or --flops C")
    if tokens is not None and params is None:
        raise ValidationError("--tokens needs --params: the target is a model size and its tokens")
    if "unique_tokens" in engine.columns and unique_tokens is None:
        raise ValidationError(f"the {law} law predicts at a number of unique tokens: give --unique-tokens U")
    for name, v in (("--params", params), ("--tokens", tokens), ("--flops", flops), ("--unique-tokens", unique_tokens)):
        if v is not None and not (np.isfinite(v) and v > 0):
            raise ValidationError(f"{name} must be a positive finite number, got {v!r}")

    # One fit per group, every one with the same seed (the pairing of refits: see the module docstring).
    fits: dict[str, LawFit] = {}
    group_data: dict[str, dict[str, np.ndarray]] = {}
    group_loss: dict[str, np.ndarray] = {}
    if runs is not None and len(runs) != len(loss):
        raise ValidationError(f"{where}: {len(runs)} run labels for {len(loss)} rows; give one per row")
    run_labels = np.asarray(runs if runs is not None else np.asarray(data["params"]), dtype=object)
    rows_of = {g: np.flatnonzero(labels == g) for g in names}
    for g in names:
        idx = rows_of[g]
        # the refits come below, once the runs' noise is known
        fit = fit_law(engine, {c: np.asarray(data[c])[idx] for c in engine.columns}, loss[idx], delta=delta,
                      n_bootstrap=0, level=level, seed=seed, where=f"{where} ({by} = {g})",
                      rows=[rows[i] for i in idx], target=target)
        fits[g] = fit
        # this group's rows only: fit_law checked them (a text cell in a later group's rows is its fit's error)
        group_data[g] = {c: np.asarray(np.asarray(data[c])[idx], dtype=float) for c in engine.columns}
        group_loss[g] = np.asarray(loss[idx], dtype=float)
        with np.errstate(over="ignore"):
            huge = ~np.isfinite(flops_per_token_param * group_data[g]["params"] * group_data[g]["tokens"])
        if huge.any():  # each number is finite (fit_law checked), their compute is not: no range to compare with
            i = idx[huge.argmax()]
            raise ValidationError(f"{where} ({by} = {g}): row {rows[i]}: params x tokens overflows a float; check the "
                                  "units of that row")
    P = len(engine.theta_names) - len(engine.fixed)
    k = flops_per_token_param

    # One run's noise, given or measured one size out, then every group's refits with it.
    size_out = {} if run_sd is not None else {
        g: size_out_error(comparable, engine, fits[g], group_data[g], group_loss[g], delta=delta, seed=seed)
        for g in names}
    errors = {g: e for g, e in size_out.items() if not isinstance(e, str)}
    sigma = run_noise(errors) if run_sd is None else float(run_sd)
    for g in names:
        idx = rows_of[g]
        # the same resampling for every group (paired refits); each group's runs their own noise, seeded by the
        # group's name so that the order of the table's rows does not change it
        fits[g] = with_refits(fits[g], engine, group_data[g], group_loss[g], n_bootstrap=n_bootstrap, seed=seed,
                              runs=run_labels[idx], run_sd=sigma or 0.0,
                              noise_seed=[seed, zlib.crc32(str(g).encode())])

    if tokens_per_param == "runs":
        allN = np.concatenate([d["params"] for d in group_data.values()])
        allD = np.concatenate([d["tokens"] for d in group_data.values()])
        ratio = float(np.exp(np.mean(np.log(allD / allN))))
    else:
        ratio = float(tokens_per_param)
        if not (np.isfinite(ratio) and ratio > 0):
            raise ValidationError(f"tokens per parameter must be a positive number or 'runs', got {tokens_per_param!r}")
    allocation = ("compute-optimal per group" if flops is not None else "given" if tokens is not None else
                  f"tokens = {ratio:.4g} x params")
    if params is not None and tokens is None:
        tokens = ratio * params

    # Each group's prediction at the target (per refit too: under --flops each refit at its own optimum).
    preds: dict[str, tuple[float, np.ndarray]] = {}
    group_rows: dict[str, dict[str, Any]] = {}
    notes: dict[str, list[str]] = {}
    for g, fit in fits.items():
        def at(p: Mapping[str, float]) -> dict[str, np.ndarray]:
            N, D = (params, tokens) if flops is None else comparable.optimal(flops, p, unique_tokens, k)
            point = {"params": np.array([N], dtype=float), "tokens": np.array([D], dtype=float)}
            if unique_tokens is not None:
                point["unique_tokens"] = np.array([unique_tokens], dtype=float)
            return point

        point = at(fit.params)
        with np.errstate(all="ignore"):
            log_hat = float(np.log(comparable.loss(fit.params, point))[0])
        N, D = float(point["params"][0]), float(point["tokens"][0])
        if not (np.isfinite(log_hat) and 0 < N * D * k < np.inf):  # e.g. a target of 1e-320 parameters
            raise ValidationError(f"{where} ({by} = {g}): the fitted {law} law gives no finite loss (or compute) at "
                                  f"params {N:.4g}, tokens {D:.4g}; give a target nearer the runs' ({_span(fit)})")
        boot = np.empty(0)
        if fit.bootstrap is not None and len(fit.bootstrap):
            with np.errstate(all="ignore"):
                raw = np.array([np.log(comparable.loss(q, at(q)))[0]
                                for q in (dict(zip(fit.params, row)) for row in fit.bootstrap)])
            boot = _widened(fit, P, log_hat, raw)
        preds[g] = (log_hat, boot)
        notes[g] = extrapolation({"fitted_range": fit.fitted_range, "identified": fit.identified}, params=N,
                                 tokens=D, unique_tokens=unique_tokens, flops=k * N * D, flops_per_token_param=k,
                                 where=f"{where} ({by} = {g})")
        interval = _interval(np.exp(boot), level)
        group_rows[g] = {"group": g, "points": fit.n_points, "params": N, "tokens": D,
                         "fitted_range": {c: list(v) for c, v in fit.fitted_range.items()},
                         "prediction": {"loss": float(np.exp(log_hat)), "interval": interval,
                                        "extrapolation": [n for n in notes[g] if n.startswith("extrapolation")]},
                         "law_params": fit.params, "fit_warnings": list(fit.warnings)}

    # Rankings at the target and at the measured scales.
    target_loss = {g: float(np.exp(preds[g][0])) for g in names}
    ranks = _ranks(target_loss)
    measured: dict[str, dict[str, Any]] = {}
    measured_loss: dict[str, dict[str, float]] = {}
    for which, point in _measured_scales(group_data).items():
        pt = {"params": np.array([point["params"]]), "tokens": np.array([point["tokens"]])}
        if unique_tokens is not None:
            pt["unique_tokens"] = np.array([unique_tokens], dtype=float)
        fitted = {g: float(comparable.loss(fits[g].params, pt)[0]) for g in names}
        values, source = _losses_at(point, group_data, group_loss, fitted)
        measured[which] = point | {"source": source}
        measured_loss[which] = values
        for g, r in _ranks(values).items():
            group_rows[g][f"rank_{which}"] = r
            group_rows[g][f"loss_{which}"] = values[g]

    # The path of fixed tokens per parameter, every group's fit and refits along it.
    n_lo = min(float(d["params"].min()) for d in group_data.values())
    n_hi = beyond * max(r["params"] for r in group_rows.values())
    if not np.isfinite(n_hi * ratio):
        raise ValidationError(f"the path searched for crossings ({beyond:g} x the target's {n_hi / beyond:.4g} "
                              f"parameters, {ratio:.4g} tokens each) passes the float limits; give a smaller target")
    x = np.geomspace(min(n_lo, n_hi / beyond), n_hi, grid)
    path_data = {"params": x, "tokens": ratio * x}
    if unique_tokens is not None:
        path_data["unique_tokens"] = np.full_like(x, unique_tokens)
    curves = {g: refit_predictions(comparable, fits[g], path_data, P) for g in names}
    max_fitted = {g: fits[g].fitted_range.get("params", (np.nan, np.nan))[1] for g in names}

    pairs = []
    for a, b in itertools.combinations(names, 2):
        if target_loss[b] < target_loss[a]:
            a, b = b, a  # the better one first
        p = float(p_better(preds[a][1][:, None], preds[b][1][:, None])[0]) if len(preds[a][1]) else None
        # without refits the fit alone, with one run's noise when known
        ra, rb = (preds[a][1], preds[b][1]) if p is not None else (np.array([preds[a][0]]), np.array([preds[b][0]]))
        p_run = (None if sigma is None or (p is None and not sigma) else
                 float(p_better_run(ra[:, None], rb[:, None], sigma)[0]))
        gap_hat = curves[a][0] - curves[b][0]
        m = min(len(curves[a][1]), len(curves[b][1]))
        gap_boot = curves[a][1][:m] - curves[b][1][:m]
        cross_hat = crossings(x, gap_hat)
        cross_boot = crossings(x, gap_boot)  # (m, G - 1)
        found = []
        for j in np.flatnonzero(np.isfinite(cross_hat)):
            c = float(cross_hat[j])
            nearest = np.full(m, np.nan)
            if m:
                dist = np.where(np.isfinite(cross_boot), np.abs(np.log(cross_boot) - np.log(c)), np.inf)
                pick = np.argmin(dist, axis=1)
                has = np.isfinite(dist[np.arange(m), pick])
                nearest[has] = cross_boot[np.flatnonzero(has), pick[has]]
            after = a if gap_hat[min(j + 1, len(gap_hat) - 1)] < 0 else b
            top = max(max_fitted[a], max_fitted[b])
            found.append({"params": c, "tokens": ratio * c, "interval": _interval(nearest, level),
                          "better_after": after, "beyond_fitted": float(c / top) if np.isfinite(top) else None})
        better = {w: a if measured_loss[w][a] < measured_loss[w][b] else b if measured_loss[w][b] < measured_loss[w][a]
                  else "tie" for w in ("largest", "smallest")}
        pairs.append({"better": a, "other": b, "p_better": p, "p_run": p_run,
                      "loss_gap": target_loss[b] - target_loss[a],
                      "better_largest": better["largest"], "better_smallest": better["smallest"],
                      "flips_largest": better["largest"] != a, "flips_smallest": better["smallest"] != a,
                      "crossings": found,
                      "refits_crossing": float(np.mean(np.isfinite(cross_boot).any(axis=1))) if m else None})
    pairs.sort(key=lambda q: (ranks[q["better"]], ranks[q["other"]]))

    messages = _grouped_notes({g: [f"fit: {w}" for w in fits[g].warnings] for g in names}, by)
    if run_sd is None and len(errors) == 2:
        messages.append("one run's noise is measured from two groups' errors one size out (one degree of freedom): "
                        "P(better) and P(run) lean on it; give --run-noise SD from seed replicates if you have them")
    extrap = _grouped_notes(notes, by)
    flipped = [q for q in pairs if q["flips_largest"]]
    if flipped:
        big = measured["largest"]
        shown = ", ".join(f"{q['better_largest']} ahead there, {q['better']} at the target"
                          + (f" (P {q['p_better']:.2f})" if q["p_better"] is not None else "") for q in flipped[:3])
        messages.append(f"the ranking at the largest measured scale (params {big['params']:.4g}, tokens "
                        f"{big['tokens']:.4g}, {big['source']}) differs from the target's in {len(flipped)} of "
                        f"{len(pairs)} pairs: {shown}" + (f" and {len(flipped) - 3} more" if len(flipped) > 3 else "")
                        + "; a decision taken at the measured scale would pick the other")
    for msg in extrap:
        warnings.warn(msg, ExtrapolationWarning if "extrapolation" in msg else MixplanWarning, stacklevel=2)
    for msg in messages:
        warnings.warn(msg, MixplanWarning, stacklevel=2)
    for g in names:
        group_rows[g]["rank"] = ranks[g]
    scale = {"params": params, "tokens": tokens, "flops": flops, "unique_tokens": unique_tokens,
             "allocation": allocation}
    return Comparison(by=by, target=target, law=engine.name, level=level, n_bootstrap=n_bootstrap, scale=scale,
                      measured=measured, path={"tokens_per_param": ratio, "params": [float(x[0]), float(x[-1])],
                                               "points": grid},
                      groups=[group_rows[g] for g in names], pairs=pairs, fits=fits, warnings=extrap + messages,
                      run_noise={"sd_log": sigma, "given": run_sd is not None, "groups": len(errors),
                                 "errors": errors,
                                 "left_out": {g: e for g, e in size_out.items() if isinstance(e, str)}})
