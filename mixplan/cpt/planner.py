r"""Choosing the domain:general ratio of a continual pre-training run with the D-CPT law (Que et al.,
"D-CPT Law", NeurIPS 2024, arXiv 2406.01375).

Two fits, one per loss (:func:`mixplan.laws.fit_dcpt`), from a runs table whose ``ratio`` column is
the *domain* share :math:`r_d`; the general loss is modelled in :math:`r_g = 1 - r_d`.

**Usage 1** (a general-ability budget :math:`T`): the largest :math:`r_d \in [0, 1]` with

.. math::

    L_g(N, D, 1 - r_d) - L_{g0} \le T \quad\text{(absolute)}, \qquad
    \frac{L_g(N, D, 1 - r_d) - L_{g0}}{L_{g0}} \le T \quad\text{(relative, the paper's form)},

:math:`L_{g0}` the base model's general loss before continual pre-training, given, or (without it)
predicted by the law at :math:`r_g = 1` (continuing on general data only, same :math:`N, D`).

**Usage 2** (limited domain data :math:`D_d`): :math:`\arg\min_{r_d} L_d(N, D_d / r_d, r_d)`, every
domain token read once; a total-token budget :math:`D` restricts it to :math:`r_d \ge D_d / D`.

*Cross-domain* (the paper's cross-domain extension, :mod:`mixplan.laws.dcpt`): runs from several
domains, each with its base model's initial domain loss :math:`k_1` and early decline :math:`k_2`, fit
:math:`+F/K^\mu`, :math:`K = 1/k_1 + \omega k_2`, in both losses; a plan then needs the target
domain's :math:`(k_1, k_2)` (measured on about 1% of a run) and is flagged when its :math:`K` lies
outside the fitted domains'.

Evidence: the fit keeps its runs, and a plan shows the run nearest the choice (measured against
the law) and, for Usage 1 when runs exist at the planned size and budget, the rule applied to
those runs themselves; a runs' crossing outside the law's interval by more than their noise is a
warning (:func:`plan_evidence`).

Intervals: the same rule applied to each bootstrap refit of the fit (runs resampled), percentile
interval widened about the estimate by :math:`\sqrt{n/(n-P)}` as the fitter widens its parameter
intervals. Pure functions over parameter dicts, plus :class:`CPTFit` (both fits, JSON round trip).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.optimize import brentq, minimize_scalar

from .._io import read_json, saved_artefact, write_json_atomic
from ..exceptions import ValidationError
from ..laws.dcpt import DCPT_RATIOS, dcpt_loss, fit_dcpt, own_ratio, validate_cpt_design
from ..laws.fitting import LawFit, robust_scale

__all__ = ["LossFit", "CPTFit", "fit_cpt", "predict_losses", "usage1_ratio", "usage2_ratio", "CPTPlan", "plan_cpt",
           "plan_evidence", "measured_crossing"]

_REFIT = "refit with 'mixplan cpt fit'"
_GRID = 2001  # ratio grid for both usages; the crossing / minimum is then refined (brentq / bounded Brent)


@dataclass(frozen=True)
class LossFit:
    """One loss's fit as the planner needs it: parameters, bootstrap refits (rows, named columns),
    and the widening :math:`\\sqrt{n/(n-P)}` for intervals of derived quantities."""

    loss: str  # "general" or "domain"
    column: str
    params: dict[str, float]
    boot_names: tuple[str, ...]
    bootstrap: np.ndarray  # (R, len(boot_names))
    n_points: int
    n_params: int
    level: float
    report: str = ""
    warnings: tuple[str, ...] = ()
    intervals: dict[str, tuple[float, float]] = field(default_factory=dict)
    #: The law's held-out-budget check (:func:`holdout_budget_check`): its error at the largest budget
    #: when fitted below it, against the bootstrap spread there; ``factor`` >= 1 widens every interval.
    holdout: dict[str, Any] = field(default_factory=dict)

    @property
    def widen(self) -> float:
        dof = float(np.sqrt(self.n_points / max(self.n_points - self.n_params, 1)))
        return dof * float(self.holdout.get("factor", 1.0))

    def refits(self) -> list[dict[str, float]]:
        return [dict(zip(self.boot_names, map(float, row))) for row in self.bootstrap]

    @classmethod
    def from_lawfit(cls, fit: LawFit, loss: str, column: str) -> LossFit:
        boot = fit.bootstrap if fit.bootstrap is not None else np.zeros((0, len(fit.params)))
        return cls(loss=loss, column=column, params=dict(fit.params), boot_names=tuple(fit.params),
                   bootstrap=np.asarray(boot, dtype=float), n_points=fit.n_points,
                   n_params=len(fit.params) - len(fit.fixed), level=fit.level, report=fit.report(),
                   warnings=tuple(fit.warnings), intervals=dict(fit.intervals))

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "params": self.params, "bootstrap_names": list(self.boot_names),
                "bootstrap": self.bootstrap.tolist(), "n_points": self.n_points, "n_params": self.n_params,
                "level": self.level, "intervals": {k: list(v) for k, v in self.intervals.items()},
                "warnings": list(self.warnings), "report": self.report, "holdout": self.holdout}

    @classmethod
    def from_dict(cls, loss: str, doc: Mapping[str, Any], where: str) -> LossFit:
        with saved_artefact(where, f"D-CPT fit of the {loss} loss", _REFIT):
            names = tuple(doc["bootstrap_names"])
            boot = np.asarray(doc["bootstrap"], dtype=float).reshape(-1, len(names))
            params = {k: float(v) for k, v in doc["params"].items()}
            # the refits are of every parameter (from_lawfit): a parameter lost from one is lost from the law
            lost = sorted(set(names) ^ set(params))
            if lost:
                raise KeyError(f"{'params' if lost[0] in names else 'bootstrap_names'}.{lost[0]}")
            return cls(loss=loss, column=str(doc["column"]), params=params,
                       boot_names=names, bootstrap=boot, n_points=int(doc["n_points"]), n_params=int(doc["n_params"]),
                       level=float(doc["level"]), report=str(doc.get("report", "")),
                       warnings=tuple(doc.get("warnings", ())),
                       intervals={k: tuple(v) for k, v in doc.get("intervals", {}).items()},
                       holdout=dict(doc.get("holdout") or {}))


@dataclass(frozen=True)
class CPTFit:
    """The D-CPT fits of both losses and the range of the runs they came from."""

    general: LossFit
    domain: LossFit
    form: str  # "full" (E + A/N^alpha fitted) or "reduced" (one model size, E_N)
    model_params: tuple[float, ...]  # distinct model sizes of the runs (empty if the table had none)
    tokens_range: tuple[float, float]
    ratios: tuple[float, ...]  # distinct domain shares of the runs
    target_params: float | None = None
    source: str = ""
    #: The runs fitted (columns row, tokens, ratio, general, domain, and params / k1 / k2 when given):
    #: the plan's evidence (nearest run, the runs at the planned budget). None in fits written before.
    runs: dict[str, list[float]] | None = None

    @property
    def domains(self) -> tuple[tuple[float, float], ...]:
        """The distinct (k1, k2) of the runs: non-empty when the fit has the cross-domain term."""
        if self.runs is None or "k1" not in self.runs:
            return ()
        return tuple(sorted(set(zip(self.runs["k1"], self.runs["k2"]))))

    @property
    def cross_domain(self) -> bool:
        return bool(self.domains)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "dcpt", "version": 1, "form": self.form, "ratio": "domain share r_d (general loss fitted in "
                "r_g = 1 - r_d)", "model_params": list(self.model_params), "tokens_range": list(self.tokens_range),
                "ratios": list(self.ratios), "target_params": self.target_params, "source": self.source,
                "runs": self.runs,
                "general": self.general.to_dict(), "domain": self.domain.to_dict()}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any], where: str = "FIT.json") -> CPTFit:
        if not isinstance(doc, Mapping) or doc.get("kind") != "dcpt":
            raise ValidationError(f"{where}: not a D-CPT fit (expected \"kind\": \"dcpt\"; write one with "
                                  "'mixplan cpt fit')")
        with saved_artefact(where, "D-CPT fit", _REFIT):
            fit = cls(general=LossFit.from_dict("general", doc["general"], where),
                      domain=LossFit.from_dict("domain", doc["domain"], where), form=str(doc["form"]),
                      model_params=tuple(float(v) for v in doc["model_params"]),
                      tokens_range=(float(doc["tokens_range"][0]), float(doc["tokens_range"][1])),
                      ratios=tuple(float(v) for v in doc["ratios"]),
                      target_params=None if doc.get("target_params") is None else float(doc["target_params"]),
                      source=str(doc.get("source", "")),
                      runs=_runs_from_doc(doc.get("runs")))
            _check_usable(fit)
            return fit

    def save(self, path: str | Path, *, force: bool = False, **extra: Any) -> Path:
        """Write the fit as JSON (``extra`` keys after the fit's own, e.g. ``seed``); read by :meth:`load`."""
        write_json_atomic(path, self.to_dict() | extra, force=force)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> CPTFit:
        """A fit written by :meth:`save` (``mixplan cpt fit --out FIT.json``)."""
        doc = read_json(path, "a FIT.json from 'mixplan cpt fit'", "not a D-CPT fit")
        return cls.from_dict(doc, str(path))

    def report(self) -> str:
        sizes = ", ".join(f"{v:.4g}" for v in self.model_params) or "not given"
        head = (f"D-CPT fits ({self.form} form; model sizes {sizes}; tokens {self.tokens_range[0]:.4g}.."
                f"{self.tokens_range[1]:.4g}; {len(self.ratios)} domain ratios "
                f"{min(self.ratios):g}..{max(self.ratios):g}"
                + (f"; cross-domain term over {len(self.domains)} domains (k1, k2)" if self.domains else "") + ")")
        return "\n\n".join([head, f"general loss ({self.general.column}), r = r_g = 1 - ratio:\n" + self.general.report,
                            f"domain loss ({self.domain.column}), r = r_d = ratio:\n" + self.domain.report])

    @property
    def warnings(self) -> list[str]:
        return list(self.general.warnings) + list(self.domain.warnings)


def _check_usable(fit: CPTFit) -> None:
    """Raise ValueError unless both laws give finite losses over the fitted tokens and ratios: parameters
    that decode (a 0, a 1e308) may still make every plan divide by zero, deep inside and much later."""
    if fit.cross_domain:  # the cross-domain term needs a target domain's (k1, k2): checked when planning
        return
    N = fit.model_params[0] if fit.model_params else None
    D, r = np.asarray(fit.tokens_range, dtype=float)[:, None], np.asarray(fit.ratios, dtype=float)[None, :]
    with np.errstate(all="ignore"):
        losses = predict_losses(fit.general.params, fit.domain.params, N, D, r)
    for loss, values in zip(("general", "domain"), losses):
        if not np.all(np.isfinite(values)):
            raise ValueError(f"its {loss} law is not finite over the fitted tokens and ratios")


def _runs_from_doc(runs: Any) -> dict[str, list[float]] | None:
    if runs is None:
        return None
    if not isinstance(runs, Mapping):
        raise ValueError("runs: a mapping of columns expected")
    cols = {k: [float(v) for v in vals] for k, vals in runs.items()}
    if len({len(v) for v in cols.values()}) != 1 or not {"row", "tokens", "ratio", "general", "domain"} <= set(cols) \
            or not cols["row"]:
        raise ValueError("runs: columns row, tokens, ratio, general, domain of equal, non-zero length expected")
    bad = next((k for k, v in cols.items() if not np.all(np.isfinite(v))), None)
    if bad is not None:  # the nearest run is found by distances (on log sizes): a NaN matches nothing
        raise ValueError(f"runs: column {bad!r} holds a value that is not a finite number")
    bad = next((k for k in ("params", "tokens") if k in cols and min(cols[k]) <= 0), None)
    if bad is not None or not all(0 <= r <= 1 for r in cols["ratio"]):
        raise ValueError(f"runs: column {bad or 'ratio'!r} holds a value out of range (sizes > 0, ratios in [0, 1])")
    return cols


def fit_cpt(tokens: np.ndarray, domain_ratio: np.ndarray, general_loss: np.ndarray, domain_loss: np.ndarray,
            params: np.ndarray | None = None, *, general_column: str = "general", domain_column: str = "domain",
            target_params: float | None = None, n_bootstrap: int = 200, level: float = 0.95, seed: int = 0,
            delta: float | str = "auto", k1: np.ndarray | None = None, k2: np.ndarray | None = None,
            where: str = "runs", rows: list[int] | None = None) -> CPTFit:
    """Fit the D-CPT law to both losses of the same runs (one size or none: the reduced form);
    ``delta`` is the Huber threshold (:func:`mixplan.laws.fit_dcpt`); ``k1``, ``k2`` (per run: its
    domain's base loss and early decline) add the cross-domain term to both losses."""
    validate_cpt_design(tokens, domain_ratio, params, where, rows)
    sizes = () if params is None else tuple(float(v) for v in np.unique(np.asarray(params, dtype=float)))
    reduced = len(sizes) <= 1
    if target_params is not None:
        if not (np.isfinite(target_params) and target_params > 0):
            raise ValidationError(f"--target-params must be a positive number, got {target_params!r}")
        if reduced and sizes and abs(target_params / sizes[0] - 1) > 1e-6:
            raise ValidationError(f"{where}: every run has model size {sizes[0]:.6g}, so the law is fitted at that "
                                  f"size only and cannot predict {target_params:.6g}; drop --target-params or add "
                                  "runs at 3 or more sizes")
    fits = {}
    for loss, values, col in (("general", general_loss, general_column), ("domain", domain_loss, domain_column)):
        fit = fit_dcpt(tokens, domain_ratio, values, loss, None if reduced else params, n_bootstrap=n_bootstrap,
                       level=level, seed=seed, delta=delta, k1=k1, k2=k2, where=f"{where} ({col})", rows=rows)
        check = holdout_budget_check(fit, tokens, domain_ratio, values, loss, None if reduced else params, k1, k2,
                                     delta=delta, seed=seed, where=f"{where} ({col})")
        fits[loss] = replace(LossFit.from_lawfit(fit, loss, col), holdout=check)
    tokens = np.asarray(tokens, dtype=float)
    runs = {"row": list(rows) if rows is not None else list(range(1, len(tokens) + 1)), "tokens": tokens,
            "ratio": domain_ratio, "general": general_loss, "domain": domain_loss}
    runs |= ({} if params is None else {"params": params}) | ({} if k1 is None else {"k1": k1, "k2": k2})
    return CPTFit(general=fits["general"], domain=fits["domain"], form="reduced" if reduced else "full",
                  model_params=sizes, tokens_range=(float(tokens.min()), float(tokens.max())),
                  ratios=tuple(float(v) for v in np.unique(np.asarray(domain_ratio, dtype=float))),
                  target_params=target_params if target_params is not None else (sizes[0] if reduced and sizes else None),
                  runs={k: [float(x) for x in np.asarray(v, dtype=float)] for k, v in runs.items()})


def holdout_budget_check(fit: LawFit, tokens: np.ndarray, domain_ratio: np.ndarray, values: np.ndarray, loss: str,
                         params: np.ndarray | None, k1: np.ndarray | None, k2: np.ndarray | None, *,
                         delta: float | str, seed: int, where: str) -> dict[str, Any]:
    r"""Does the law's bootstrap spread cover its error out of scale? (issue 16; mixplan's construction.)

    With runs at three budgets or more, the law is refitted on the runs below the largest budget and
    predicts the runs at it; :math:`e_j` its errors, :math:`s_j` the full fit's bootstrap spread at those
    runs, :math:`\sigma` the runs' noise (the full fit's robust residual scale). The error beyond noise,
    :math:`\sqrt{\max(\overline{e^2} - \sigma^2, 0)}`, over the spread :math:`\sqrt{\overline{s^2}}` is the
    factor by which the bootstrap understates the law's error where plans land; intervals are widened
    by it when it exceeds 1. Empty with fewer than three budgets (nothing to hold out and still fit)."""
    tokens = np.asarray(tokens, dtype=float)
    budgets = np.unique(tokens)
    if len(budgets) < 3 or fit.bootstrap is None or len(fit.bootstrap) < 2:
        return {}
    below, top = tokens < budgets[-1], tokens == budgets[-1]
    sub = lambda a: None if a is None else np.asarray(a, dtype=float)[below]  # noqa: E731
    try:
        part = fit_dcpt(tokens[below], np.asarray(domain_ratio, dtype=float)[below],
                        np.asarray(values, dtype=float)[below], loss, sub(params), n_bootstrap=0, level=fit.level,
                        seed=seed, delta=delta, k1=sub(k1), k2=sub(k2), where=f"{where}, below {budgets[-1]:.4g} tokens")
    except ValidationError as exc:  # the runs below the largest budget cannot carry the law on their own
        return {"skipped": str(exc)}
    at = lambda a: None if a is None else np.asarray(a, dtype=float)[top]  # noqa: E731
    r = own_ratio(np.asarray(domain_ratio, dtype=float)[top], loss)
    args = (at(params), at(k1), at(k2))
    y = np.asarray(values, dtype=float)
    err = dcpt_loss(tokens[top], r, part.params, *args) - y[top]
    refits = [dict(zip(fit.params, row)) for row in fit.bootstrap]
    spread = np.array([dcpt_loss(tokens[top], r, p, *args) for p in refits]).std(axis=0, ddof=1)
    full = dcpt_loss(tokens, own_ratio(np.asarray(domain_ratio, dtype=float), loss), fit.params, params, k1, k2)
    noise = robust_scale(y - full)
    beyond = float(np.sqrt(max(np.mean(err ** 2) - noise ** 2, 0.0)))
    s = float(np.sqrt(np.mean(spread ** 2)))
    return {"fitted_below": float(budgets[-1]), "n": int(top.sum()), "rmse": float(np.sqrt(np.mean(err ** 2))),
            "mean_error": float(np.mean(err)), "noise": noise, "bootstrap_spread": s,
            "factor": max(1.0, beyond / s) if s > 0 else 1.0}


# -- pure rules ------------------------------------------------------------------------------------

Domain = tuple[float, float] | None  # the target domain's (k1, k2), for a fit with the cross-domain term


def _loss(params: Mapping[str, float], D: np.ndarray | float, r_d: np.ndarray | float, which: str, N: float | None,
          domain: Domain) -> np.ndarray:
    """One loss at domain share ``r_d`` (converted to the loss's own ratio)."""
    k1, k2 = domain if domain is not None else (None, None)
    return dcpt_loss(D, own_ratio(r_d, which), params, N, k1, k2)


def predict_losses(general: Mapping[str, float], domain: Mapping[str, float], N: float | None, D: np.ndarray,
                   domain_ratio: np.ndarray, k: Domain = None) -> tuple[np.ndarray, np.ndarray]:
    """(general loss, domain loss) at domain share ``domain_ratio`` and total tokens ``D``; ``k`` the
    target domain's (k1, k2) when the fit has the cross-domain term."""
    return _loss(general, D, domain_ratio, "general", N, k), _loss(domain, D, domain_ratio, "domain", N, k)


def _tolerance(general: Mapping[str, float], N: float | None, D: float, T: float, relative: bool,
               base_loss: float | None, k: Domain = None) -> tuple[float, float]:
    base = float(_loss(general, D, 0.0, "general", N, k)) if base_loss is None else float(base_loss)
    return base, (T * base if relative else T)


def usage1_ratio(general: Mapping[str, float], N: float | None, D: float, T: float, relative: bool = False,
                 base_loss: float | None = None, k: Domain = None) -> float | None:
    """Largest domain share whose predicted general-loss rise over ``base_loss`` (default: the
    law at :math:`r_g = 1`) is at most ``T`` (absolute, or a fraction of the base loss). None if
    even :math:`r_d = 0` exceeds it. If the rise is not monotone in :math:`r_d` (the design
    requirement fails), the largest feasible ratio is still the answer, as the rule is stated."""
    base, tol = _tolerance(general, N, D, T, relative, base_loss, k)
    r = np.linspace(0.0, 1.0, _GRID)

    def g(x: np.ndarray | float) -> np.ndarray:
        return _loss(general, D, x, "general", N, k) - base - tol

    ok = np.flatnonzero(g(r) <= 0)
    if len(ok) == 0:
        return None
    i = ok[-1]
    if i == len(r) - 1:
        return 1.0
    return float(brentq(lambda x: float(g(x)), r[i], r[i + 1], xtol=1e-10))


def usage2_ratio(domain: Mapping[str, float], N: float | None, domain_tokens: float,
                 max_tokens: float | None = None, k: Domain = None) -> float:
    """:math:`\\arg\\min_{r_d} L_d(N, D_d/r_d, r_d)` over :math:`r_d \\in [\\max(D_d/D, 10^{-3}), 1]`."""
    lo = max(1e-3, domain_tokens / max_tokens if max_tokens else 0.0)
    r = np.linspace(lo, 1.0, _GRID)

    def f(x: np.ndarray | float) -> np.ndarray:
        return _loss(domain, domain_tokens / np.asarray(x), x, "domain", N, k)

    i = int(np.argmin(f(r)))
    a, b = r[max(i - 1, 0)], r[min(i + 1, len(r) - 1)]
    if a == b:
        return float(r[i])
    res = minimize_scalar(lambda x: float(f(x)), bounds=(a, b), method="bounded", options={"xatol": 1e-9})
    return float(res.x) if res.fun <= f(r[i]) else float(r[i])


def _interval(value: float | None, samples: Sequence[float | None], level: float, widen: float,
              lo: float = -np.inf, hi: float = np.inf) -> tuple[float | None, float | None]:
    s = np.array([v for v in samples if v is not None], dtype=float)
    if value is None or len(s) < 2:
        return None, None
    a, b = np.quantile(s, [(1 - level) / 2, (1 + level) / 2])
    return float(np.clip(value - widen * (value - a), lo, hi)), float(np.clip(value + widen * (b - value), lo, hi))


# -- the plan --------------------------------------------------------------------------------------

@dataclass(frozen=True)
class CPTPlan:
    """The chosen domain share with its interval and the ratio table for the budget."""

    usage: int
    params: float | None
    tokens: float | None
    domain_ratio: float | None
    interval: tuple[float | None, float | None]
    level: float
    settings: dict[str, Any]
    table: list[dict[str, Any]]
    warnings: list[str]
    failed_refits: int = 0  # refits for which no ratio satisfies the rule (Usage 1)
    #: Usage 1: the law's point crossing; the chosen share is the interval's lower end (the largest share
    #: whose upper bound of the rise stays within T), this when there are no refits.
    point: float | None = None
    #: what the runs themselves say near the choice: the nearest run (measured vs the law) and, for
    #: Usage 1, the measured crossing of the runs at the planned size and budget (see :func:`plan_evidence`)
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"usage": self.usage, "params": self.params, "tokens": self.tokens, "domain_ratio": self.domain_ratio,
                "general_ratio": None if self.domain_ratio is None else 1.0 - self.domain_ratio,
                "interval": {"lower": self.interval[0], "upper": self.interval[1], "level": self.level},
                "settings": self.settings, "table": self.table, "warnings": self.warnings,
                "refits_without_a_ratio": self.failed_refits, "evidence": self.evidence,
                **({} if self.usage != 1 else {"point_ratio": self.point})}

    def report(self) -> str:
        s = self.settings
        if self.usage == 1:
            kind = f"{s['T']:.4g}{' of the base loss' if s['relative'] else ' (absolute)'}"
            head = (f"Usage 1: largest domain share with general-loss rise <= {kind} over L_g0 = "
                    f"{s['base_general_loss']:.5g} ({s['base_source']}), at D = {self.tokens:.4g} tokens")
        else:
            head = (f"Usage 2: domain share minimising the domain loss with D_d = {s['domain_tokens']:.4g} domain "
                    f"tokens (total D = D_d / r_d" + (f" <= {self.tokens:.4g}" if self.tokens else "") + ")")
        head += "" if self.params is None else f", N = {self.params:.4g}"
        head += f", target domain k1 = {s['k1']:.4g}, k2 = {s['k2']:.4g}" if "k1" in s else ""
        lvl = int(round(self.level * 100))
        if self.domain_ratio is None:
            chosen = "no domain share satisfies the rule (even r_d = 0 exceeds the tolerance)"
        else:
            lo, hi = self.interval
            iv = f"[{lo:.4f}, {hi:.4f}]" if lo is not None else "(no interval: no bootstrap refits)"
            chosen = f"chosen domain share r_d = {self.domain_ratio:.4f} (general {1 - self.domain_ratio:.4f}), {lvl}% {iv}"
            if self.usage == 1 and self.point is not None and lo is not None:
                chosen = (f"chosen domain share r_d = {self.domain_ratio:.4f} (general {1 - self.domain_ratio:.4f}): the "
                          f"largest share whose {lvl}% upper bound of the rise stays within T; the law's own crossing "
                          f"{self.point:.4f}, {lvl}% {iv}")
        lines = [head, chosen, "",
                 f"{'r_d':>7} {'tokens':>10} {'L_general':>10} {f'{lvl}% interval':>20} {'rise':>8} "
                 f"{'L_domain':>10} {f'{lvl}% interval':>20}"]
        for row in self.table:
            gi = f"[{row['general_lower']:.4f}, {row['general_upper']:.4f}]" if row["general_lower"] is not None else ""
            di = f"[{row['domain_lower']:.4f}, {row['domain_upper']:.4f}]" if row["domain_lower"] is not None else ""
            mark = " <- chosen" if row["chosen"] else ""
            rise = f"{row['general_rise']:+.4f}" if row["general_rise"] is not None else ""
            lines.append(f"{row['domain_ratio']:>7.4f} {row['tokens']:>10.4g} {row['general_loss']:>10.4f} {gi:>20} "
                         f"{rise:>8} {row['domain_loss']:>10.4f} {di:>20}{mark}")
        lines += _evidence_lines(self.evidence)
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def _resolve_params(fit: CPTFit, params: float | None) -> float | None:
    if fit.form == "reduced":
        own = fit.model_params[0] if fit.model_params else None
        if params is not None and own is not None and abs(params / own - 1) > 1e-6:
            raise ValidationError(f"--params {params:.6g}: the fit used one model size ({own:.6g}) and cannot predict "
                                  "another; plan at that size or refit with runs at 3 or more sizes")
        return own
    N = params if params is not None else fit.target_params
    if N is None:
        raise ValidationError("the fit covers several model sizes: give --params N (or fit with --target-params)")
    if not (np.isfinite(N) and N > 0):
        raise ValidationError(f"--params must be a positive number, got {N!r}")
    return float(N)


def plan_cpt(fit: CPTFit, *, tokens: float | None = None, params: float | None = None,
             max_general_rise: float | None = None, relative: bool = False, base_general_loss: float | None = None,
             domain_tokens: float | None = None, ratios: Sequence[float] | None = None,
             k1: float | None = None, k2: float | None = None) -> CPTPlan:
    """Usage 1 (``max_general_rise`` with ``tokens``) or Usage 2 (``domain_tokens``, ``tokens`` an
    optional cap on the total), with bootstrap intervals and the table of ``ratios`` (default: the
    paper's 9 and every 0.05, plus the chosen share). ``k1``, ``k2``: the target domain's, required
    by (and only by) a fit with the cross-domain term."""
    if (max_general_rise is None) == (domain_tokens is None):
        raise ValidationError("choose one rule: --max-general-rise T (Usage 1) or --domain-tokens D_d (Usage 2)")
    for name, v in (("--tokens", tokens), ("--domain-tokens", domain_tokens), ("--base-general-loss", base_general_loss)):
        if v is not None and not (np.isfinite(v) and v > 0):
            raise ValidationError(f"{name} must be a positive number, got {v!r}")
    N = _resolve_params(fit, params)
    g, d = fit.general, fit.domain
    warnings = []
    k = _target_domain(fit, k1, k2, warnings)
    lo_D, hi_D = fit.tokens_range
    if fit.form == "full" and N is not None and not (min(fit.model_params) <= N <= max(fit.model_params)):
        warnings.append(f"N = {N:.4g} is outside the runs' model sizes ({min(fit.model_params):.4g}.."
                        f"{max(fit.model_params):.4g}): the law extrapolates in N")
    if max_general_rise is not None:
        usage = 1
        if tokens is None:
            raise ValidationError("--max-general-rise needs --tokens D (the continual pre-training budget)")
        if not (np.isfinite(max_general_rise) and max_general_rise >= 0):
            raise ValidationError(f"--max-general-rise must be a number >= 0, got {max_general_rise!r}")
        if relative and max_general_rise >= 1:
            warnings.append(f"--relative with T = {max_general_rise:g} allows a rise of {max_general_rise:.0%} of the "
                            "base loss; did you mean a fraction such as 0.03?")
        choose = (lambda p: usage1_ratio(p, N, tokens, max_general_rise, relative, base_general_loss, k))
        point = choose(g.params)
        samples = [choose(p) for p in g.refits()]
        interval = _interval(point, samples, g.level, g.widen, 0.0, 1.0)
        # The share whose rise stays within T at the interval's level, not only at the point estimate:
        # the user's T is a limit. Refits that admit no share at all count below every share.
        r_star = point if interval[0] is None else interval[0]
        none = sum(v is None for v in samples)
        if samples and point is not None and none > (1 - g.level) / 2 * len(samples):
            warnings.append(f"{none} of {len(samples)} bootstrap refits admit no domain share within T: at the "
                            f"{g.level:.0%} level no share is safe; loosen T or add runs")
            r_star = None
        base, _ = _tolerance(g.params, N, tokens, max_general_rise, relative, base_general_loss, k)
        settings = {"T": max_general_rise, "relative": relative, "base_general_loss": base,
                    "base_source": "given" if base_general_loss is not None else
                    "predicted at r_g = 1: continuing on general data only"}
        level = g.level
        D_of = (lambda r: np.full_like(np.asarray(r, dtype=float), tokens))
        check_D = [tokens]
    else:
        usage = 2
        if tokens is not None and domain_tokens > tokens:
            raise ValidationError(f"--domain-tokens {domain_tokens:.4g} exceeds --tokens {tokens:.4g}: every ratio would "
                                  "train on more than the budget; with more domain data than the budget, data is not "
                                  "the limit (use --max-general-rise)")
        choose = (lambda p: usage2_ratio(p, N, domain_tokens, tokens, k))
        r_star = choose(d.params)
        samples = [choose(p) for p in d.refits()]
        interval = _interval(r_star, samples, d.level, d.widen, 0.0, 1.0)
        settings = {"domain_tokens": domain_tokens, "max_tokens": tokens}
        point = r_star
        level = d.level
        D_of = (lambda r: domain_tokens / np.asarray(r, dtype=float))
        check_D = [domain_tokens / r_star, domain_tokens]
        base = None
    for D in check_D:
        if not (lo_D <= D <= hi_D):
            warnings.append(f"D = {D:.4g} tokens is outside the runs' budgets ({lo_D:.4g}..{hi_D:.4g}): the law "
                            "extrapolates in D")
    rs = sorted(set(np.round(list(DCPT_RATIOS if ratios is None else ratios)
                             + ([] if ratios is not None else list(np.arange(0.05, 1.0, 0.05))), 10))
                | ({round(r_star, 10)} if r_star is not None else set()))
    if usage == 2:
        lo = max(1e-3, domain_tokens / tokens if tokens else 0.0)
        rs = [r for r in rs if r >= lo - 1e-12 and r > 0]
    rs = np.array(rs, dtype=float)
    D = D_of(rs)
    Lg, Ld = predict_losses(g.params, d.params, N, D, rs, k)
    boot_g = np.array([_loss(p, D, rs, "general", N, k) for p in g.refits()]).reshape(-1, len(rs))
    boot_d = np.array([_loss(p, D, rs, "domain", N, k) for p in d.refits()]).reshape(-1, len(rs))
    table = []
    for j, r in enumerate(rs):
        gi = _interval(float(Lg[j]), list(boot_g[:, j]), g.level, g.widen)
        di = _interval(float(Ld[j]), list(boot_d[:, j]), d.level, d.widen)
        table.append({"domain_ratio": float(r), "general_ratio": float(1 - r), "tokens": float(D[j]),
                      "general_loss": float(Lg[j]), "general_lower": gi[0], "general_upper": gi[1],
                      "general_rise": None if base is None else float(Lg[j] - base),
                      "domain_loss": float(Ld[j]), "domain_lower": di[0], "domain_upper": di[1],
                      "chosen": bool(r_star is not None and abs(r - r_star) < 1e-9)})
    evidence = plan_evidence(fit, N, k, r_star, float(D_of(r_star)) if r_star is not None else None, usage,
                             None if usage == 2 else (max_general_rise, relative, base_general_loss))
    warnings += _disagreement(evidence.get("runs_at_budget"), point, interval)
    failed = sum(s is None for s in samples)
    if failed:
        warnings.append(f"{failed} of {len(samples)} bootstrap refits admit no ratio under the rule; the interval uses "
                        "the others (loosen T or add runs)")
    warnings += [f"fit: {w}" for w in fit.warnings]
    if k is not None:
        settings |= {"k1": k[0], "k2": k[1]}
    for loss_fit in (g, d):
        h = loss_fit.holdout
        if h.get("factor", 1.0) > 1.0:
            warnings.append(f"the {loss_fit.loss} law's error at {h['fitted_below']:.4g} tokens when fitted below it "
                            f"(RMSE {h['rmse']:.3g}, noise {h['noise']:.3g}) is {h['factor']:.3g}x its bootstrap spread "
                            "there: its intervals are widened by that factor")
    return CPTPlan(usage=usage, params=N, tokens=tokens, domain_ratio=r_star, interval=interval, level=level,
                   settings=settings, table=table, warnings=warnings, failed_refits=failed, evidence=evidence,
                   point=point if usage == 1 else None)


def _disagreement(at: Mapping[str, Any] | None, r_star: float | None,
                  interval: tuple[float | None, float | None]) -> list[str]:
    """A warning when the runs at the planned budget cross the tolerance outside the law's interval
    (its estimate when there is none) by more than 2 standard errors, after the shift that reading
    the law between the same ratios makes; or when the runs exceed it at every ratio."""
    if not at or r_star is None:
        return []
    cross, se, law_lin = at["crossing"], at["crossing_se"] or 0.0, at["law_crossing_same_ratios"]
    if cross is None:
        return [f"the {at['n_runs']} runs at this size and budget rise above the tolerance at every ratio (base from "
                f"{at['base_from']}), while the law allows r_d = {r_star:.4f}: the law misfits here; confirm with runs"]
    lo, hi = (r_star, r_star) if interval[0] is None else interval
    shift = 0.0 if law_lin is None else law_lin - r_star  # what reading between the runs' ratios alone moves
    # A floor of 1e-9 on the margin: with noise-free runs se is 0 and the two readings agree only to rounding.
    margin = 2 * se + 1e-9
    if lo + shift - margin <= cross <= hi + shift + margin:
        return []
    return [f"the {at['n_runs']} runs at this size and budget cross the tolerance at r_d = {cross:.4f} +- {se:.4f} "
            f"(base from {at['base_from']}), outside the law's {'interval' if interval[0] is not None else 'choice'} "
            f"[{lo:.4f}, {hi:.4f}] by more than their noise explains: the law misfits here; confirm with runs near "
            "both ratios"]


def measured_crossing(ratios: np.ndarray, rise: np.ndarray, tol: float) -> tuple[float | None, float | None]:
    """Usage 1's rule on measured points: the largest ratio where the rise, linear between the
    (sorted) ratios, is at most ``tol`` (None if it exceeds ``tol`` at every ratio), and the slope
    of the rise there (None at the last ratio)."""
    ok = np.flatnonzero(rise <= tol)
    if len(ok) == 0:
        return None, None
    j = ok[-1]
    if j == len(ratios) - 1:
        return float(ratios[j]), None
    slope = (rise[j + 1] - rise[j]) / (ratios[j + 1] - ratios[j])
    return float(ratios[j] + (tol - rise[j]) / slope), float(slope)


def plan_evidence(fit: CPTFit, N: float | None, k: Domain, r_star: float | None, D_star: float | None, usage: int,
                  rule: tuple[float, bool, float | None] | None = None) -> dict[str, Any]:
    """What the fitted runs say near the choice (empty for fits that do not store their runs).

    ``nearest_run``: among the runs of the model size nearest ``N`` (and, cross-domain, the fitted
    domain nearest the target's K), the one nearest ``(D_star, r_star)`` (distance in log D over
    the runs' log-D span, and in r_d), with both losses measured and as the law gives them there.

    ``runs_at_budget`` (Usage 1, ``rule = (T, relative, given base loss or None)``; only when runs
    exist at the plan's own size, domain and budget ``D_star`` (within 1%)): their measured general
    loss per ratio (mean over repeats), its rise over the base (the given one, else the runs' own
    mean at r_d = 0, else the law's) and the crossing of the tolerance - the rule applied to the
    runs instead of the law - next to the law read the same way (its own base; linear between the
    same ratios, which shifts a crossing by itself), with a rough standard error: one run's noise
    (:func:`_noise_scale`: from repeated runs if any, else the law's residual scale, which is
    generous as it holds misfit too) times the loss, over the measured slope of the rise at the
    crossing. Disagreement beyond two of them is what :func:`plan_cpt` warns about."""
    runs = fit.runs
    if runs is None or r_star is None or D_star is None:
        return {}
    cols = {c: np.asarray(v, dtype=float) for c, v in runs.items()}
    keep = np.ones(len(cols["tokens"]), dtype=bool)
    exact = True  # the kept runs are at the plan's own size and domain
    if "params" in cols and N is not None:
        gap = np.abs(np.log(cols["params"] / N))
        keep &= gap <= gap.min() + 1e-9
        exact &= bool(gap.min() <= 1e-6)
    if "k1" in cols and k is not None:
        omega = fit.domain.params["omega"]
        gap = np.abs((1 / cols["k1"] + omega * cols["k2"]) - (1 / k[0] + omega * k[1]))
        keep &= gap <= gap[keep].min() + 1e-12
        i0 = np.flatnonzero(keep)[0]
        exact &= bool(np.isclose(cols["k1"][i0], k[0]) and np.isclose(cols["k2"][i0], k[1]))
    idx = np.flatnonzero(keep)
    logD = np.log(cols["tokens"])
    span = max(float(logD.max() - logD.min()), 1e-12)
    dist = np.hypot((logD[idx] - np.log(D_star)) / span, cols["ratio"][idx] - r_star)
    i = idx[int(np.argmin(dist))]
    run_N = float(cols["params"][i]) if "params" in cols else N
    run_k = (float(cols["k1"][i]), float(cols["k2"][i])) if "k1" in cols else None
    law_g, law_d = predict_losses(fit.general.params, fit.domain.params, run_N, cols["tokens"][i], cols["ratio"][i],
                                  run_k)
    out: dict[str, Any] = {"nearest_run": {
        "row": int(cols["row"][i]), "params": run_N, "tokens": float(cols["tokens"][i]),
        "ratio": float(cols["ratio"][i]),
        "general": float(cols["general"][i]), "general_law": float(law_g), "domain": float(cols["domain"][i]),
        "domain_law": float(law_d)} | ({"k1": run_k[0], "k2": run_k[1]} if run_k else {})}
    at = idx[np.abs(cols["tokens"][idx] / D_star - 1) <= 0.01]
    ratios = np.unique(cols["ratio"][at])
    if usage != 1 or rule is None or not exact or len(ratios) < 2:
        return out
    T, relative, given = rule
    loss = np.array([cols["general"][at][cols["ratio"][at] == r].mean() for r in ratios])
    base = given if given is not None else float(loss[0]) if ratios[0] == 0 else None
    base_from = "given" if given is not None else "the runs at r_d = 0" if base is not None else "the law at r_d = 0"
    law_base, law_tol = _tolerance(fit.general.params, N, D_star, T, relative, given, k)
    base = law_base if base is None else base
    tol = T * base if relative else T
    cross, slope = measured_crossing(ratios, loss - base, tol)
    sd, source = None, None
    if slope is not None and slope > 0:
        scale, source = _noise_scale(fit, cols, idx)
        repeats = min(int(np.sum(cols["ratio"][at] == r)) for r in ratios)
        sd = float(scale * (base + tol) / slope / np.sqrt(repeats))
    law_rise = _loss(fit.general.params, D_star, ratios, "general", N, k) - law_base
    out["runs_at_budget"] = {"n_runs": int(len(at)), "tokens": D_star, "ratios": ratios.tolist(),
                             "general": loss.tolist(), "base": base, "base_from": base_from,
                             "rise": (loss - base).tolist(), "crossing": cross, "crossing_se": sd,
                             "noise_from": source,
                             "law_crossing_same_ratios": measured_crossing(ratios, law_rise, law_tol)[0]}
    return out


def _noise_scale(fit: CPTFit, cols: Mapping[str, np.ndarray], idx: np.ndarray) -> tuple[float, str]:
    """Relative noise of one run's general loss: the pooled sd of log loss over repeated runs
    (same size, budget, ratio and domain) when the runs have repeats; else the law's robust
    residual scale on ``idx`` (1.4826 MAD of log residuals), which holds misfit as well as noise."""
    keys = [c for c in ("params", "tokens", "ratio", "k1", "k2") if c in cols]
    cells: dict[tuple, list[float]] = {}
    for j in idx:
        cells.setdefault(tuple(cols[c][j] for c in keys), []).append(float(np.log(cols["general"][j])))
    reps = [np.asarray(v) for v in cells.values() if len(v) > 1]
    dof = sum(len(v) - 1 for v in reps)
    if dof >= 4:
        return float(np.sqrt(sum(((v - v.mean()) ** 2).sum() for v in reps) / dof)), f"{len(reps)} repeated cells"
    sizes = cols["params"][idx] if "params" in cols else None
    ks = {"k1": cols["k1"][idx], "k2": cols["k2"][idx]} if "k1" in cols else {}
    resid = np.log(cols["general"][idx]
                   / dcpt_loss(cols["tokens"][idx], own_ratio(cols["ratio"][idx], "general"), fit.general.params,
                               sizes, **ks))
    return robust_scale(resid), "the law's residual scale"


def _evidence_lines(ev: Mapping[str, Any]) -> list[str]:
    lines = []
    if "nearest_run" in ev:
        r = ev["nearest_run"]
        size = "" if r["params"] is None else f"N {r['params']:.4g}, "
        lines.append(f"nearest run (row {r['row']}: {size}D {r['tokens']:.4g}, r_d {r['ratio']:.4g}): general "
                     f"{r['general']:.4f} measured vs {r['general_law']:.4f} law "
                     f"(law - run {r['general_law'] - r['general']:+.4f}), "
                     f"domain {r['domain']:.4f} vs {r['domain_law']:.4f} ({r['domain_law'] - r['domain']:+.4f})")
    if "runs_at_budget" in ev:
        a = ev["runs_at_budget"]
        cross = "above the tolerance at every ratio" if a["crossing"] is None else f"r_d = {a['crossing']:.4f}"
        se = (f" +- {a['crossing_se']:.4f} (noise from {a['noise_from']}, over the slope)"
              if a.get("crossing_se") is not None else "")
        law = a.get("law_crossing_same_ratios")
        lines.append(f"the {a['n_runs']} runs at this size and budget ({len(a['ratios'])} ratios) cross the tolerance "
                     f"at {cross}{se} (measured rise over the base from {a['base_from']}, linear between ratios; the "
                     "law read the same way: " + ("never)" if law is None else f"{law:.4f})"))
    return lines


def _target_domain(fit: CPTFit, k1: float | None, k2: float | None, warnings: list[str]) -> Domain:
    """The target domain's (k1, k2) for a cross-domain fit (None otherwise); a warning when its
    K = 1/k1 + omega k2 lies outside the fitted domains' K under either loss's omega."""
    given = k1 is not None or k2 is not None
    if not fit.cross_domain:
        if given:
            raise ValidationError("--k1/--k2 apply to a fit with the cross-domain term (fit with --k1 COL --k2 COL "
                                  "over runs from 3 or more domains); this fit has none")
        return None
    if k1 is None or k2 is None:
        raise ValidationError("this fit has the cross-domain term: give the target domain's --k1 (the base model's "
                              "initial loss on it) and --k2 (its early decline)")
    for name, v in (("--k1", k1), ("--k2", k2)):
        if not (np.isfinite(v) and v > 0):
            raise ValidationError(f"{name} must be a positive number, got {v!r}")
    outside = []
    for lf in (fit.general, fit.domain):
        omega = lf.params["omega"]
        Ks = [1.0 / a + omega * b for a, b in fit.domains]
        K = 1.0 / k1 + omega * k2
        if not (min(Ks) <= K <= max(Ks)):
            outside.append(f"{K:.4g} vs {min(Ks):.4g}..{max(Ks):.4g} ({lf.loss} loss, omega {omega:.4g})")
    if outside:
        warnings.append(f"the target domain's K = 1/k1 + omega k2 is outside the fitted domains' range: "
                        f"{'; '.join(outside)}: the law extrapolates across domains")
    return float(k1), float(k2)
