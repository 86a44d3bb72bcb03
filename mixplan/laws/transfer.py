r"""A law fitted across scales, with intervals that are calibrated where the decision lands: beyond the
largest scale fitted.

A bootstrap over the runs says how well the parameters are pinned down *inside* the fitted range; it
says nothing about how far the law's form bends away from the truth outside it, which is the error
that matters at the big run's size. So the intervals here come from *leave-one-scale-out* errors
(mixplan's construction): with scales :math:`s_1 < \dots < s_m` (model sizes, or token budgets), the
law is fitted on :math:`s_1..s_{k-1}` and predicts :math:`s_k`, for :math:`k = 3..m` (a fit on one
scale cannot tell the scale exponent, so its errors would say nothing about the law); the pooled
log-errors :math:`r = \log \hat L - \log L` give a split-conformal half-width :math:`q` at ``level``,
and a prediction from the fit on every scale is reported as :math:`\hat L \cdot e^{\pm q}`.

Those are one-step-ahead errors. A target several steps beyond the largest scale may be missed by
more; the result says how far it extrapolates (``extrapolation``) so that the report can say so. With
fewer than three scales there is nothing to calibrate on: no interval is given (``halfwidth`` None),
never a proxy-scale one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._stats import conformal_quantile
from ..exceptions import ValidationError
from .fitting import Data, Law, LawFit, fit_law

__all__ = ["ScaleTransfer", "fit_across_scales", "choose_across_scales"]


@dataclass(frozen=True)
class ScaleTransfer:
    """A law fitted on every scale, and its leave-one-scale-out errors (see the module docstring)."""

    law: Law
    fit: LawFit
    scale: str  # the data column that defines the scales (e.g. "params")
    scales: tuple[float, ...]
    level: float
    halfwidth: float | None  # on log-loss; None with fewer than 3 scales
    holdout: list[dict[str, Any]] = field(default_factory=list)

    def predict(self, data: Data) -> dict[str, np.ndarray | None]:
        """Loss, lower and upper (None without calibration) and how far each point extrapolates
        (its scale over the largest fitted scale)."""
        mean = np.exp(self.law.log_predict(self.fit.theta, data))
        lower = upper = None
        if self.halfwidth is not None:
            lower, upper = mean * np.exp(-self.halfwidth), mean * np.exp(self.halfwidth)
        return {"loss": mean, "lower": lower, "upper": upper,
                "extrapolation": np.asarray(data[self.scale], dtype=float) / max(self.scales)}

    def to_dict(self) -> dict[str, Any]:
        return {"law": self.fit.law, "scale": self.scale, "scales": list(self.scales), "level": self.level,
                "halfwidth_log": self.halfwidth, "holdout": self.holdout, "fit": self.fit.to_dict()}

    def report(self) -> str:
        lines = [f"{self.fit.law} law across {len(self.scales)} {self.scale} scales "
                 f"({', '.join(f'{s:.4g}' for s in self.scales)})"]
        for h in self.holdout:
            lines.append(f"  fitted on <= {h['fitted_up_to']:.4g}, predicting {h['predicted']:.4g}: mean relative "
                         f"error {h['mre']:.4f} on {h['n']} runs")
        lines.append(f"  {self.level:.0%} intervals: prediction x exp(+-{self.halfwidth:.4g}) (leave-one-scale-out)"
                     if self.halfwidth is not None else
                     "  no interval beyond the fitted scales: fewer than 3 scales, nothing to calibrate it on")
        return "\n".join(lines)


def fit_across_scales(law: Law, data: Mapping[str, np.ndarray], loss: np.ndarray, *, scale: str = "params",
                      level: float = 0.9, n_starts: int = 5, n_bootstrap: int = 0, seed: int = 0,
                      where: str = "runs", **fit_options: Any) -> ScaleTransfer:
    """Fit ``law`` on every run and on every prefix of the scales (the ``scale`` column), and calibrate
    intervals on the prefixes' errors at the next scale (see the module docstring)."""
    if scale not in data:
        raise ValidationError(f"{where}: no {scale!r} column to tell the scales apart")
    s = np.asarray(data[scale], dtype=float)
    loss = np.asarray(loss, dtype=float)
    scales = tuple(float(v) for v in np.unique(s))
    options = {"n_starts": n_starts, "seed": seed, "where": where} | fit_options
    # Rows of one mixture (its token checkpoints, its sizes) miss together: the standard error of a
    # held-out error counts mixtures, not rows.
    w = data.get(law.weights) if law.weights else None
    groups = (np.unique(np.asarray(w, dtype=float), axis=0, return_inverse=True)[1].ravel() if w is not None
              else np.arange(len(loss)))
    holdout, errors = [], []
    for k in range(2, len(scales)):
        train, test = s < scales[k], s == scales[k]
        part = fit_law(law, {c: v[train] for c, v in data.items()}, loss[train], n_bootstrap=0, **options)
        pred = law.log_predict(part.theta, {c: v[test] for c, v in data.items()})
        err = pred - np.log(loss[test])
        errors.append(err)
        rel = np.abs(np.expm1(err))
        per_group = [rel[g == groups[test]].mean() for g in np.unique(groups[test])]
        se = float(np.std(per_group, ddof=1) / np.sqrt(len(per_group))) if len(per_group) > 1 else float("nan")
        holdout.append({"fitted_up_to": scales[k - 1], "predicted": scales[k], "n": int(test.sum()),
                        "mre": float(np.mean(rel)), "mre_se": se, "groups": len(per_group),
                        "mean_log_error": float(np.mean(err))})
    halfwidth = conformal_quantile(np.concatenate(errors), level) if errors else None
    full = fit_law(law, data, loss, n_bootstrap=n_bootstrap, **options)
    return ScaleTransfer(law=law, fit=full, scale=scale, scales=scales, level=level, halfwidth=halfwidth,
                         holdout=holdout)


def choose_across_scales(transfers: Mapping[str, ScaleTransfer]) -> tuple[str, str]:
    """Which of several laws fitted across the same scales to trust beyond them, and why: among the laws
    whose error on the largest held-out scale is within one standard error of the smallest (the
    one-standard-error rule of Breiman et al.'s CART, as glmnet's ``lambda.1se``), the one with the fewest
    fitted parameters (then the smaller error). One held-out scale cannot separate laws that differ by
    less than its noise, and a law with more parameters has more ways to bend beyond it."""
    scored = {n: t.holdout[-1] for n, t in transfers.items() if t.holdout}
    if not scored:
        raise ValidationError("no law has a held-out scale to be chosen on: fit them on three scales or more")
    best = min(scored, key=lambda n: scored[n]["mre"])
    se = scored[best].get("mre_se", float("nan"))
    bar = scored[best]["mre"] + (se if np.isfinite(se) else 0.0)
    near = [n for n in scored if scored[n]["mre"] <= bar]
    pick = min(near, key=lambda n: (len(transfers[n].law.theta_names), scored[n]["mre"]))
    at = f"{scored[best]['predicted']:.4g}"
    if pick == best:
        return pick, f"smallest held-out error at {at} (mean relative error {scored[pick]['mre']:.4g})"
    return pick, (f"fewest parameters ({len(transfers[pick].law.theta_names)}) among the laws within one standard "
                  f"error of the smallest held-out error at {at} ({best}: {scored[best]['mre']:.4g} +- {se:.2g}; "
                  f"{pick}: {scored[pick]['mre']:.4g})")
