r"""From a compute budget to a run shape: parameters, tokens, predicted loss, learning rate, batch
size and, for a mixture over pools, each pool's epochs and effective-data discount.

Allocation. With :math:`C = k N D` (``k`` FLOPs per parameter per token, 6 for a dense
transformer) the caller fixes :math:`N` or :math:`D`, or neither: then the Chinchilla
compute-optimal point (:func:`mixplan.laws.compute_optimal`), or, with ``unique_tokens`` given, the
data-constrained optimum (:func:`mixplan.laws.optimal_allocation`, which repeats data when that
beats a smaller model).

Loss. Chinchilla's :math:`L(N, D)`, or the data-constrained :math:`L(N, D, U_D)` when unique tokens
are given; its interval comes from the bootstrap refits stored with a fitted law (the loss
evaluated at each refit, percentiles at the fit's level). Published constants carry no refits and
so no interval.

Pools. Pool :math:`i` with weight :math:`w_i` and :math:`U_i` available tokens is read
:math:`e_i = w_i D / U_i` times; its effective tokens are Muennighoff's
:math:`D'_i = U_i + U_i R^*_D (1 - e^{-(e_i - 1)^+ / R^*_D})` (capped at :math:`w_i D`), and the
discount :math:`D'_i / (w_i D)` is what its repeated tokens are worth relative to fresh ones.

Extrapolation. A law fitted by ``mixplan laws fit`` stores its runs' range (``fitted_range``: N, D,
U and N D); a run shape outside it carries one warning per input saying how far outside it lies
(:func:`extrapolation`), and a FIT.json without the range a warning that it is unknown.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._checks import check_numbers
from .._io import saved_artefact
from ..exceptions import ExtrapolationWarning, MixplanWarning, ValidationError
from .chinchilla import PUBLISHED, chinchilla_loss, compute_optimal
from .data_constrained import DATABLATIONS, data_constrained_loss, effective_data, optimal_allocation
from .fitting import read_law_fit
from .hyperparameters import step_law

__all__ = ["RunShape", "run_shape", "pool_repetition", "resolve_law", "extrapolation"]


@dataclass(frozen=True)
class RunShape:
    flops: float
    params: float
    tokens: float
    unique_tokens: float | None
    loss: float
    loss_interval: tuple[float, float] | None
    level: float
    learning_rate: float
    batch_size_tokens: float
    law: str
    law_params: dict[str, float]
    allocation: str
    pools: list[dict[str, Any]] = field(default_factory=list)
    #: Where the numbers rest on the law beyond the runs it was fitted to (and how far), or why that is unknown.
    warnings: list[str] = field(default_factory=list)
    #: The fitted law's runs: [min, max] of params, tokens, ... (FIT.json's ``fitted_range``), if known.
    fitted_range: dict[str, list[float]] | None = None

    def to_dict(self) -> dict[str, Any]:
        lo, hi = self.loss_interval if self.loss_interval else (None, None)
        return {"flops": self.flops, "params": self.params, "tokens": self.tokens,
                "unique_tokens": self.unique_tokens,
                "loss": self.loss, "loss_interval": {"lower": lo, "upper": hi, "level": self.level},
                "learning_rate": self.learning_rate,
                "batch_size": self.batch_size_tokens, "batch_size_unit": "tokens",
                "batch_size_sequences_of_2048": self.batch_size_tokens / 2048,
                "law": self.law, "law_params": self.law_params, "allocation": self.allocation,
                "pools": self.pools, "fitted_range": self.fitted_range, "warnings": self.warnings}

    def report(self) -> str:
        interval = (f" [{self.loss_interval[0]:.4f}, {self.loss_interval[1]:.4f}] ({self.level:.0%})"
                    if self.loss_interval else " (no interval: published constants carry no bootstrap refits)")
        lines = [f"compute {self.flops:.4g} FLOPs, law {self.law} ({self.allocation})",
                 f"parameters {self.params:.4g}, tokens {self.tokens:.4g} ({self.tokens / self.params:.1f} per parameter)"
                 + (f", unique tokens {self.unique_tokens:.4g}" if self.unique_tokens else ""),
                 f"predicted loss {self.loss:.4f}" + interval,
                 f"learning rate {self.learning_rate:.3g}, batch size {self.batch_size_tokens:.3g} tokens "
                 f"({self.batch_size_tokens / 2048:.0f} sequences of 2048) - Step Law"]
        if self.pools:
            lines.append(f"{'pool':>16} {'weight':>7} {'tokens':>10} {'epochs':>7} {'discount':>8}")
            for p in self.pools:
                lines.append(f"{p['pool']:>16} {p['weight']:>7.4f} {p['tokens']:>10.4g} {p['epochs']:>7.2f} "
                             f"{p['discount']:>8.3f}")
        lines += [f"warning: {w}" for w in self.warnings]
        return "\n".join(lines)


def resolve_law(law: str | Mapping[str, Any]) -> tuple[str, dict[str, float], np.ndarray | None, float]:
    """A published name, a fitted law's file (FIT.json, :func:`~mixplan.laws.fitting.read_law_fit`) or its
    document -> (name, parameters, bootstrap refits as an (n, P) array in the order of ``parameters`` or
    None, interval level)."""
    law = _law_document(law)
    if isinstance(law, str):
        params = dict(PUBLISHED[law])
        if law == "datablations":
            params |= {k: DATABLATIONS[k] for k in ("R_D_star", "R_N_star")}
        return law, params, None, 0.95
    if law.get("law") not in ("chinchilla", "data-constrained"):
        raise ValidationError(f"a budget needs a chinchilla or data-constrained law, not {law.get('law')!r}")
    params = {k: float(v) for k, v in law["params"].items()}
    boot = law.get("bootstrap")
    return str(law["law"]), params, None if not boot else np.asarray(boot, dtype=float), float(law.get("level", 0.95))


def _law_document(law: str | os.PathLike[str] | Mapping[str, Any]) -> str | Mapping[str, Any]:
    """A published law's name as it is, a FIT.json read into its document."""
    if isinstance(law, (str, os.PathLike)) and str(law) not in PUBLISHED:
        if not Path(law).exists():
            raise ValidationError(f"{law}: no such file, and no published law of that name; use a FIT.json from "
                                  f"'mixplan laws fit' or one of {', '.join(sorted(PUBLISHED))}")
        doc = read_law_fit(law)
        if all(k in doc["params"] for k in ("A", "B", "alpha", "beta")):
            # Parameters that decode (an alpha of 0, a B of 1e-320) may still make the compute-optimal split
            # divide by zero or overflow: tried once here, so that the file is named, not a traceback later.
            with saved_artefact(law, "fitted law", "refit it with 'mixplan laws fit'"), np.errstate(all="ignore"):
                N, D = compute_optimal(1e21, doc["params"])
                if not (np.isfinite(N) and np.isfinite(D) and N > 0 and D > 0):
                    raise ValueError("its compute-optimal split of parameters and tokens is not a finite number")
        return doc
    return str(law) if isinstance(law, os.PathLike) else law


def extrapolation(law: str | Mapping[str, Any], *, params: float, tokens: float, unique_tokens: float | None = None,
                  flops: float | None = None, flops_per_token_param: float = 6.0, where: str = "the fit") -> list[str]:
    """How far a run shape lies beyond the runs a fitted law's document says it was fitted to: one
    sentence per input (N, D, U, and the compute C against the runs' k N D) outside its range, or one
    saying the range is unknown (a FIT.json from before it was stored). A published law's name gives
    none: its range is its paper's. ``where`` (the FIT.json) names a damaged range in the error."""
    if isinstance(law, str):
        return []
    fitted = law.get("fitted_range")
    if fitted is not None and not isinstance(fitted, Mapping):
        raise ValidationError(f"{where}: fitted_range is {fitted!r}, not a mapping of [min, max] per input; refit "
                              "with 'mixplan laws fit --out'")
    notes = []
    if not fitted:
        notes.append("the fit's range of runs is unknown (its FIT.json predates mixplan storing it), so these "
                     "numbers may extrapolate far beyond the runs; refit with 'mixplan laws fit --out' to record it")
        fitted = {}
    k = flops_per_token_param
    # the runs' N D (params_x_tokens): their compute is k N D at this budget's k
    for symbol, what, value, span, scale in (
            ("N", "N", params, fitted.get("params"), 1.0), ("D", "D", tokens, fitted.get("tokens"), 1.0),
            ("U", "U", unique_tokens, fitted.get("unique_tokens"), 1.0),
            ("C", f"run's compute {k:g} N D", flops, fitted.get("params_x_tokens"), k)):
        if value is None or not span:
            continue
        try:
            lo, hi = (scale * float(x) for x in span)
        except (TypeError, ValueError):  # a hand-edited FIT.json: a one-line error, not a traceback
            lo = hi = float("nan")
        if not 0 < lo <= hi < float("inf"):
            raise ValidationError(f"{where}: fitted_range for {symbol} is {span!r}, not [min, max] with "
                                  "0 < min <= max; refit with 'mixplan laws fit --out'")
        if value > hi * (1 + 1e-9):
            how = f"{value / hi:.3g}x the largest fitted {what} ({hi:.3g})"
        elif value < lo * (1 - 1e-9):  # a compute or size that underflowed to 0 has no ratio to give
            how = (f"{lo / value:.3g}x below the smallest fitted {what} ({lo:.3g})" if value > 0 else
                   f"not positive, below the smallest fitted {what} ({lo:.3g})")
        else:
            continue
        notes.append(f"extrapolation: {symbol} = {value:.3g} is {how}")
    if law.get("identified") is False:
        notes.append("the fit does not identify its parameters (see its warnings): its predictions are one of "
                     "many that fit the runs equally well")
    return notes


def run_shape(flops: float, *, params: float | None = None, tokens: float | None = None,
              unique_tokens: float | None = None, law: str | Mapping[str, Any] = "epoch-replicate",
              flops_per_token_param: float = 6.0) -> RunShape:
    """The run a compute budget buys (see the module docstring)."""
    for name, v in (("--flops", flops), ("--params", params), ("--tokens", tokens),
                    ("--unique-tokens", unique_tokens), ("FLOPs per parameter per token", flops_per_token_param)):
        if v is not None:
            check_numbers(v, name, lo=0.0, lo_open=True)
    if params is not None and tokens is not None:
        raise ValidationError("give --params or --tokens, not both: the budget fixes the other")
    doc = _law_document(law)
    name, p, boot, level = resolve_law(doc)
    k = flops_per_token_param
    if params is not None:
        N, D, how = params, flops / (k * params), "parameters given"
    elif tokens is not None:
        N, D, how = flops / (k * tokens), tokens, "tokens given"
    elif unique_tokens is not None:
        N, D, _ = optimal_allocation(flops, unique_tokens, _with_r_star(p), k)
        how = "data-constrained optimum (Muennighoff et al.)"
    else:
        n, d = compute_optimal(flops, p, k)
        N, D, how = float(n), float(d), "compute-optimal (Chinchilla)"

    def loss_of(q: Mapping[str, float]) -> float:
        if unique_tokens is not None:
            return float(data_constrained_loss(N, D, unique_tokens, _with_r_star(q)))
        return float(chinchilla_loss(N, D, q["A"], q["B"], q["E"], q["alpha"], q["beta"]))

    interval = None
    if boot is not None and len(boot) > 1:
        losses = [loss_of(dict(zip(p, row))) for row in boot]
        interval = tuple(float(x) for x in np.quantile(losses, [(1 - level) / 2, (1 + level) / 2]))
    lr, bs = step_law(N, D)
    notes = extrapolation(doc, params=N, tokens=D, unique_tokens=unique_tokens, flops=flops, flops_per_token_param=k,
                          where=str(law) if isinstance(law, (str, os.PathLike)) else "the fit")
    for note in notes:
        warnings.warn(note, ExtrapolationWarning if note.startswith("extrapolation") else MixplanWarning,
                      stacklevel=2)
    return RunShape(flops=float(flops), params=float(N), tokens=float(D), unique_tokens=unique_tokens,
                    loss=loss_of(p), loss_interval=interval, level=level, learning_rate=float(lr),
                    batch_size_tokens=float(bs), law=name, law_params=p, allocation=how, warnings=notes,
                    fitted_range=None if isinstance(doc, str) else doc.get("fitted_range"))


def _with_r_star(p: Mapping[str, float]) -> dict[str, float]:
    """Chinchilla constants plus R_D*, R_N* (Muennighoff's when the law has none)."""
    return {"R_D_star": DATABLATIONS["R_D_star"], "R_N_star": DATABLATIONS["R_N_star"]} | dict(p)


def pool_repetition(tokens: float, weights: Mapping[str, float], available: Mapping[str, float],
                    R_D_star: float = DATABLATIONS["R_D_star"]) -> list[dict[str, Any]]:
    """Per pool: tokens drawn, epochs, effective tokens and discount at a total of ``tokens``."""
    rows = []
    for pool, w in weights.items():
        if pool not in available:
            raise ValidationError(f"pool {pool!r} of the mixture is not in the manifest ({', '.join(available)})")
        drawn = w * tokens
        eff = float(effective_data(drawn, available[pool], R_D_star)) if drawn > 0 else 0.0
        eff = min(eff, drawn)  # below one epoch every token is fresh
        rows.append({"pool": pool, "weight": float(w), "tokens": float(drawn), "epochs": float(drawn / available[pool]),
                     "effective_tokens": eff, "discount": eff / drawn if drawn > 0 else 1.0})
    return rows
