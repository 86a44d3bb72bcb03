r"""Regularisation of the plan's search toward a prior mixture, and the choice of its strength by CV.

The plan minimises, over the feasible set :math:`\mathcal{W}` (:mod:`mixplan.simplex.constraints`),

.. math::

    J_\lambda(w) = s(w) + \lambda\,\mathrm{KL}(w \,\|\, p), \qquad
    \mathrm{KL}(w \,\|\, p) = \sum_{i \in F} w_i \log\frac{w_i}{p_i}, \quad 0 \log 0 = 0,

where :math:`s` is the model's score (its prediction signed so that smaller is better), :math:`p` the
prior (the manifest's per-pool ``prior``, else each pool's share of the tokens, as Olmix and RegMix
centre their mixtures) and :math:`F` the pools that are not pinned: a pinned pool's term is the same for
every feasible mixture, so leaving it out changes no optimum and keeps a pin on a pool with
:math:`p_i = 0` from making every mixture infinitely penalised. A free pool with :math:`p_i = 0` and
:math:`w_i > 0` costs :math:`+\infty` (for :math:`\lambda > 0`): the search never recommends it.

:math:`\lambda = 0` is the unregularised plan; :math:`\lambda \to \infty` gives the I-projection of the
prior on :math:`\mathcal{W}` (the prior itself when it is feasible).

**Choosing** :math:`\lambda` (:func:`choose_strength`): for each of :math:`K` folds of the runs
(:data:`CV_FOLDS` folds, :data:`CV_REPEATS` times over: with two folds the judge below is fitted on as
many runs as the refit, so neither is starved; the repeats average out the luck of one split),
the model is refitted without the fold, the plan's optimum :math:`w_{\lambda,k}` found for every
:math:`\lambda` of a grid, and scored on the fold's runs by a *judge*: mixplan's own choice of model by CV
(:data:`JUDGE_MODEL`, the stack of GP, ridge, mixing law and LightGBM) fitted on the fold's runs alone, so
independent of the refit. Not the plan's own kind of model: a judge of the same form shares the refit's
extrapolation (a mixing law fitted on either half of the runs points the same way out of them) and so
scores every move back toward the prior as a loss; on RegMix's runs the mixing law judged by itself chose
:math:`\lambda = 0`. The fold's regret of :math:`\lambda` is

.. math::

    r_k(\lambda) = \hat s_k(w_{\lambda,k}) - \min_{j \in \text{fold } k} s(y_j),

the judged score of the optimum minus the best measured run of the fold (a per-fold constant, so it
moves no choice; it makes the regrets comparable across folds). The chosen :math:`\lambda` has the
smallest mean regret over folds (the smallest :math:`\lambda` among equals); the curve reports every
:math:`\lambda`'s mean, standard deviation and standard error over the folds.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import check_number
from ..exceptions import ValidationError

__all__ = ["CV_FOLDS", "CV_REPEATS", "DEFAULT_GRID", "JUDGE_MODEL", "StrengthCurve", "choose_strength",
           "kl_divergence", "parse_strength", "prior_penalty"]

#: The strengths ``--prior-strength auto`` compares: 0 (no regularisation) and a log-spaced ladder over
#: the values users set by hand (0.005 to 0.1 in one Olmix study), in units of the objective per nat.
DEFAULT_GRID = (0.0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5)
#: Folds and repeats of the choice (module docstring): half the runs refit the model, the other half judge.
CV_FOLDS, CV_REPEATS = 2, 3
#: The judge of a fold's optima (module docstring): the model mixplan picks by CV, whatever the plan's model.
JUDGE_MODEL = "auto"


def kl_divergence(W: np.ndarray, prior: np.ndarray, free: np.ndarray | None = None) -> np.ndarray:
    r""":math:`\sum_{i \in F} w_i \log(w_i / p_i)` for each row of ``W`` (0 where :math:`w_i = 0`;
    :math:`+\infty` where :math:`w_i > 0 = p_i`); ``free`` is the mask :math:`F` (all pools by default)."""
    W = np.atleast_2d(np.asarray(W, dtype=float))
    p = np.asarray(prior, dtype=float)
    if p.shape != W.shape[1:]:
        raise ValidationError(f"the prior has {p.size} weights but the mixtures have {W.shape[1]} pools")
    if np.any(p < 0) or not np.all(np.isfinite(p)):
        raise ValidationError(f"the prior must be finite and non-negative, got {p.tolist()}")
    mask = np.ones(p.shape, bool) if free is None else np.asarray(free, bool)
    pos = W > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(pos, W * (np.log(np.where(pos, W, 1.0)) - np.log(p)), 0.0)
    return np.where(mask, terms, 0.0).sum(axis=1)


def prior_penalty(strength: float, prior: np.ndarray, free: np.ndarray | None = None
                  ) -> Callable[[np.ndarray], np.ndarray]:
    r"""The search's additive term :math:`W \mapsto \lambda\,\mathrm{KL}(w \| p)` per row (see
    :func:`kl_divergence`); ``strength`` :math:`\lambda \ge 0`."""
    lam = _checked(strength, "the prior strength")
    p, mask = np.asarray(prior, dtype=float).copy(), None if free is None else np.asarray(free, bool).copy()

    def penalty(W: np.ndarray) -> np.ndarray:
        if lam == 0:  # 0 * inf would be NaN for a pool outside the prior's support
            return np.zeros(len(np.atleast_2d(W)))
        return lam * kl_divergence(W, p, mask)

    return penalty


def _checked(value: float, what: str) -> float:
    return check_number(value, what, lo=0, fix="e.g. 0.01, or 'auto'")


def parse_strength(text: Any, where: str = "--prior-strength") -> float | str:
    """``'auto'`` or a finite number >= 0 (from a flag or a config file), else a one-line error."""
    if isinstance(text, str) and text.strip().lower() == "auto":
        return "auto"
    bad = ValidationError(f"{where}: {text!r} is not a strength; give 'auto' or a number >= 0 (e.g. 0.01)")
    if isinstance(text, bool):
        raise bad
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise bad from None
    if not np.isfinite(value) or value < 0:
        raise ValidationError(f"{where}: {text!r} must be 'auto' or a finite number >= 0 (e.g. 0.01)")
    return value


@dataclass(frozen=True)
class StrengthCurve:
    """The cross-validated regret of each strength: ``regret[k, j]`` of fold ``k`` and ``grid[j]``."""

    grid: np.ndarray
    regret: np.ndarray
    chosen: float
    rule: str

    @property
    def mean(self) -> np.ndarray:
        return self.regret.mean(axis=0)

    @property
    def sd(self) -> np.ndarray:
        return self.regret.std(axis=0, ddof=1) if len(self.regret) > 1 else np.zeros(len(self.grid))

    @property
    def se(self) -> np.ndarray:
        return self.sd / np.sqrt(len(self.regret))

    @property
    def gap(self) -> np.ndarray:
        """Each strength's mean regret minus the chosen one's (>= 0: the chosen has the smallest)."""
        return self.mean - self.mean[self._chosen_index]

    @property
    def gap_se(self) -> np.ndarray:
        """The standard error of :attr:`gap` from the folds' paired differences: every strength is judged on
        the same held-out runs of a fold, so the fold's luck (the spread :attr:`se` carries) cancels. Approximate,
        as any CV standard error: the repeats' folds share runs."""
        d = self.regret - self.regret[:, [self._chosen_index]]
        return d.std(axis=0, ddof=1) / np.sqrt(len(d)) if len(d) > 1 else np.zeros(len(self.grid))

    @property
    def tied(self) -> np.ndarray:
        """The strengths within one paired standard error of the chosen one (it included): the folds do not
        separate them from it."""
        return self.grid[self.gap <= self.gap_se]

    @property
    def _chosen_index(self) -> int:
        return int(np.flatnonzero(self.grid == self.chosen)[0])

    def to_dict(self) -> dict[str, Any]:
        return {"chosen": self.chosen, "rule": self.rule, "n_folds": int(len(self.regret)),
                "tied_with_chosen": [float(g) for g in self.tied],
                "curve": [{"strength": float(g), "mean_regret": float(m), "sd": float(s), "se": float(e),
                           "gap_to_chosen": float(d), "gap_se": float(de), "fold_regret": [float(r) for r in col]}
                          for g, m, s, e, d, de, col in zip(self.grid, self.mean, self.sd, self.se, self.gap,
                                                            self.gap_se, self.regret.T)]}


def choose_strength(folds: Sequence[tuple[np.ndarray, np.ndarray]], run_scores: np.ndarray,
                    optimise: Callable[[np.ndarray, np.ndarray], np.ndarray],
                    judge: Callable[[np.ndarray, np.ndarray], np.ndarray],
                    grid: Sequence[float] = DEFAULT_GRID, judge_name: str = "a model") -> StrengthCurve:
    r"""The strength with the smallest cross-validated regret (module docstring), and its curve.

    Parameters
    ----------
    folds : sequence of (train, test) index arrays over the runs
    run_scores : ndarray (n,)
        Each run's measured objective as a score (smaller is better).
    optimise : callable ``(train, grid) -> W``
        The plan's optimum for each strength of ``grid`` (rows of ``W``, in order) from the model refitted
        on the runs ``train``.
    judge : callable ``(test, W) -> scores``
        The scores (smaller is better) of the mixtures ``W`` predicted from the runs ``test`` alone.
    grid : strengths to compare (each >= 0)
    judge_name : what the judge is, for the rule's description
    """
    g = np.array([_checked(v, "a strength of the grid") for v in grid])
    if len(g) < 2:
        raise ValidationError(f"choosing the prior strength needs at least 2 strengths to compare, got {list(g)}")
    if len(folds) < 2:
        raise ValidationError(f"choosing the prior strength needs at least 2 folds, got {len(folds)}")
    y = np.asarray(run_scores, dtype=float)
    regret = np.empty((len(folds), len(g)))
    for k, (train, test) in enumerate(folds):
        W = np.atleast_2d(np.asarray(optimise(np.asarray(train), g), dtype=float))
        if W.shape[0] != len(g):
            raise ValidationError(f"fold {k + 1}: {W.shape[0]} optima for {len(g)} strengths")
        regret[k] = np.asarray(judge(np.asarray(test), W), dtype=float) - y[np.asarray(test)].min()
    mean = regret.mean(axis=0)
    chosen = float(g[int(np.argmin(mean))])  # argmin takes the first: the smallest strength among equals
    rule = (f"CV over {len(folds)} splits: per split, refit without the fold, optimise under each strength, judge the "
            f"optimum with {judge_name} fitted on the held-out runs alone; regret = judged score - the best held-out "
            "run; smallest mean regret")
    return StrengthCurve(grid=g, regret=regret, chosen=chosen, rule=rule)
