r"""Sequential design: the next K proxy mixtures that most improve the decision.

A random swarm (:mod:`mixplan.mixture.design`) spends its runs evenly over the simplex; once a model exists,
the runs that matter are those that could change - or confirm - the recommended mixture.
:func:`propose_next` proposes K mixtures by batch Expected Improvement under every constraint.

Objective, signed so that smaller is better (:math:`s` = ``model.objective.sense``, :math:`a_t` the
objective's coefficients over its columns :math:`t`):

.. math::

    f(w) = s \sum_t a_t \, \mu_t(w), \qquad
    \sigma^2(w) = \kappa^2 \sum_t a_t^2 \, \sigma_t^2(w), \qquad
    \kappa = \frac{q_{\text{level}}}{z_{\text{level}}}

:math:`\mu_t` is column :math:`t`'s fitted (possibly stacked) prediction, :math:`\sigma_t` the
*latent* posterior standard deviation of that column's GP uncertainty model (the run-to-run noise is
left out: a new run improves the decision through the mean it reveals, not through its noise), and
:math:`\kappa` the ratio of the conformal quantile to the Gaussian one at ``level``, the calibration
of :meth:`mixplan.MixtureModel.prob_better`: it stretches the GP's spread to the size of the
cross-validated errors. Columns are treated as independent, as in the model's intervals.

Expected Improvement over the incumbent :math:`f^\star` (Jones, Schonlau & Welch 1998):

.. math::

    \mathrm{EI}(w) = \mathbb E\big[\max(f^\star - F(w), 0)\big]
                   = (f^\star - f(w))\,\Phi(u) + \sigma(w)\,\varphi(u), \qquad
    u = \frac{f^\star - f(w)}{\sigma(w)},

with :math:`F(w) \sim N(f(w), \sigma^2(w))`; it is in the objective's units and non-negative for
both senses. The incumbent is the best *predicted* objective among the proxy runs,
:math:`f^\star = \min_i f(w_i)`, not the best measured value: with noisy runs the best measurement is
biased low (the winner's curse) and would understate every mixture's chance to improve on it.

Batch (greedy "kriging believer", Ginsbourger, Le Riche & Carraro 2010). After picking
:math:`w_j`, every column's GP is conditioned on the pseudo-observation
:math:`(\phi_t(w_j), \mu^{GP}_t(w_j))` - its own posterior mean, with the same hyper-parameters
(:meth:`mixplan.models.gp.GaussianProcess.condition`). That leaves every posterior mean unchanged and
shrinks :math:`\sigma` near :math:`w_j`, and the incumbent becomes :math:`\min(f^\star, f(w_j))`
(the believed run is treated as observed), so the next pick is a different bet, not a neighbour of
the last one. The conditioning needs no new fit and keeps the batch deterministic.

Candidates (the maximiser of EI is searched over a finite set):

* *global*: Dirichlet draws from the constrained region (:func:`mixplan.simplex.sample_mixtures`,
  floors reserved, caps redistributed, RegMix's concentrations), for exploration;
* *local* (a quarter of them by default): perturbations around the current plan's best predicted
  mixtures - the recommended mixture, the top-k mean and the best distinct candidates of
  :func:`mixplan.mixture.plan.make_plan`'s search - the "promising region" that CLIMB (Diao et al. 2025)
  samples its next round from: pair transfers and zero-sum Gaussian moves of expected
  total-variation size ``radii``, projected onto the constraints (as :mod:`mixplan.simplex`
  refines). Local candidates resolve the predicted optimum finely and EI then spends more of the
  batch there, on the model's own optimum - errors included. Known-truth study (8 pools, 24 random
  runs + rounds of 8, 16 seeds): median regret of the plan after 48 runs 0.021 with half of the
  candidates local, 0.015 with a quarter, 0.011 with none; after 56 runs 0.009-0.012 for all
  three. Hence a minority of local candidates by default.

Every candidate is sparsified and rounded as :func:`mixplan.design_swarm` rounds (weights below
``min_nonzero`` go to the floor, ``decimals`` decimals, constraints kept), so the mixture scored is
exactly the one written out. A candidate must lie at least ``min_distance`` (total variation) from
every existing run and every mixture already picked: EI alone would accept near-copies whose
difference is below the run-to-run noise.

Pools no existing run used (a pool added since the runs were made, e.g. by ``mixplan runs reuse``) are
*uncovered*: the model has no evidence about them, and EI need not send a run there. The first
:math:`m = \min(K, \max(|U|, \lceil K/2 \rceil))` picks are therefore restricted, round-robin over the
uncovered pools :math:`U`, to candidates giving that pool at least :math:`\max(l_u, \tfrac12 \min(\pi_u, c_u))`
(floor :math:`l_u`, prior :math:`\pi_u`, cap :math:`c_u`); within that set EI chooses as usual, and the
remaining picks are free. ``cover=False`` turns this off.

EI rather than a confidence bound: it has no exploration weight to tune and is invariant to the
objective's units once :math:`\sigma` is calibrated; its "improvement over the best predicted run"
is the decision the plan makes.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm

from .design import check_match_budget, check_prefix, sparsify_round
from ..exceptions import ValidationError
from ..models.mixture_model import DEFAULT_LEVEL, MixtureModel, nearest_run
from .plan import make_plan, model_search_options
from ..data.pools import PoolSet
from ..models.regressor import MIN_RUNS
from ..simplex import Constraints, best_distinct, build_constraints, sample_mixtures

__all__ = ["NextRuns", "propose_next", "expected_improvement", "next_run_ids"]

#: Expected total-variation sizes of the local moves around the promising mixtures.
DEFAULT_RADII = (0.02, 0.05, 0.1, 0.2)


@dataclass(frozen=True)
class NextRuns:
    """K proposed proxy mixtures, in the order they were picked, with the evidence for each.

    Attributes
    ----------
    pools : pool names (columns of ``weights``)
    weights : (k, P) proposed mixtures, feasible and rounded
    acquisition : (k,) Expected Improvement of each pick when it was picked (after believing the
        earlier picks), in the objective's units
    prediction : (k,) the model's predicted objective (its own sign: a loss or a score)
    prediction_sd : (k,) calibrated latent sd of that prediction (:math:`\\sigma` of the module
        docstring, given the real runs only)
    nearest_run, nearest_distance : the closest existing run and its total-variation distance
    origin : "global" (Dirichlet draw) or "local" (around the plan's best predicted mixtures)
    incumbent : best predicted objective among the existing runs (its own sign)
    incumbent_run : the run it belongs to
    recommended : (P,) the current plan's recommended mixture, centre of the local candidates
    recommended_prediction : its predicted objective
    settings : everything that determines the result (seed, candidate counts, distances, kappa)
    uncovered : pools no existing run used -> the weight each covering proposal gave it at least
        (empty when every pool has runs, or with ``cover=False``)
    """

    pools: list[str]
    weights: np.ndarray
    acquisition: np.ndarray
    prediction: np.ndarray
    prediction_sd: np.ndarray
    nearest_run: list[str]
    nearest_distance: np.ndarray
    origin: list[str]
    incumbent: float
    incumbent_run: str
    recommended: np.ndarray
    recommended_prediction: float
    settings: dict[str, Any] = field(default_factory=dict)
    uncovered: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.weights)

    def frame(self, run_ids: Sequence[str], tokens: float | None = None) -> pd.DataFrame:
        """The proposals as a design table: ``run_id``, ``w_<pool>``, ``tokens`` (when given), then
        ``expected_improvement``, ``prediction`` and ``prediction_sd``."""
        if len(run_ids) != len(self):
            raise ValidationError(f"{len(run_ids)} run ids for {len(self)} proposals")
        frame = pd.DataFrame(self.weights, columns=[f"w_{p}" for p in self.pools])
        frame.insert(0, "run_id", list(run_ids))
        if tokens is not None:
            frame["tokens"] = tokens
        frame["expected_improvement"] = self.acquisition
        frame["prediction"] = self.prediction
        frame["prediction_sd"] = self.prediction_sd
        return frame

    def report(self, run_ids: Sequence[str] | None = None) -> str:
        """The proposals as text: the incumbent and the plan's prediction, then one row per proposal
        (``run_ids`` name them; default 1..k)."""
        ids = list(run_ids) if run_ids is not None else [str(i + 1) for i in range(len(self))]
        table = pd.DataFrame(
            {"run_id": ids} | {p: [f"{w:.4f}" for w in self.weights[:, i]] for i, p in enumerate(self.pools)}
            | {"expected improvement": [f"{a:.4g}" for a in self.acquisition],
               "predicted": [f"{m:.4f} +- {sd:.4f}" for m, sd in zip(self.prediction, self.prediction_sd)],
               "nearest run (TV dist)": [f"{r} ({dist:.3f})" for r, dist in zip(self.nearest_run, self.nearest_distance)],
               "origin": self.origin})
        cover = [] if not self.uncovered else [
            "pools no existing run used: " + ", ".join(f"{p} (proposals covering it give it >= {w:.4g})"
                                                       for p, w in self.uncovered.items())]
        return "\n".join([f"best predicted proxy run {self.incumbent_run}: {self.incumbent:.4f}; the plan's "
                          f"recommendation: {self.recommended_prediction:.4f}", *cover, "",
                          table.to_string(index=False), "",
                          "predicted: the model's objective +- its calibrated sd; measure these runs, add them to RUNS "
                          "and run 'mixplan plan' (or another round of --next)"])

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description of the proposals (weights by pool name)."""
        rows = [{"weights": dict(zip(self.pools, map(float, w))), "expected_improvement": float(a),
                 "prediction": float(m), "prediction_sd": float(s), "nearest_run": r,
                 "nearest_distance": float(d), "origin": o}
                for w, a, m, s, r, d, o in zip(self.weights, self.acquisition, self.prediction, self.prediction_sd,
                                               self.nearest_run, self.nearest_distance, self.origin)]
        return {"pools": self.pools, "proposals": rows, "incumbent": self.incumbent,
                "incumbent_run": self.incumbent_run,
                "recommended": dict(zip(self.pools, map(float, self.recommended))),
                "recommended_prediction": self.recommended_prediction, "settings": self.settings} | (
                    {"uncovered": self.uncovered} if self.uncovered else {})


def expected_improvement(gain: np.ndarray, sd: np.ndarray) -> np.ndarray:
    r"""EI for predicted gains :math:`f^\star - f(w)` and standard deviations (see the module docstring).

    Where ``sd`` is 0 the improvement is certain: :math:`\max(\text{gain}, 0)`.
    """
    gain = np.asarray(gain, dtype=float)
    sd = np.asarray(sd, dtype=float)
    safe = np.where(sd > 0, sd, 1.0)
    u = gain / safe
    ei = safe * (u * norm.cdf(u) + norm.pdf(u))
    return np.where(sd > 0, np.maximum(ei, 0.0), np.maximum(gain, 0.0))


def propose_next(model: MixtureModel, pools: PoolSet, k: int, *, tokens: float | None = None,
                 pins: Mapping[str, float] | None = None, seed: int = 0, n_candidates: int = 8192,
                 local_fraction: float = 0.25, radii: tuple[float, ...] = DEFAULT_RADII, n_centres: int = 8,
                 min_distance: float = 0.01, level: float = DEFAULT_LEVEL, temperature: float = 0.5,
                 min_nonzero: float = 2e-4, decimals: int = 4, match_budget: float | None = None,
                 repetition: Any = None, cover: bool = True) -> NextRuns:
    """Propose the ``k`` proxy mixtures with the largest batch Expected Improvement.

    Parameters
    ----------
    model : MixtureModel
        Fitted on the existing proxy runs; every objective column needs a GP uncertainty model
        (``model="auto"`` or ``"gp"``/``"gp-log"``).
    pools : PoolSet
        The pools the model was fitted on, in the same order.
    k : int
        Number of mixtures to propose (>= 1).
    tokens : float, optional
        The proxy runs' token budget: availability caps at that budget (as ``design --tokens``).
    pins : mapping, optional
        Pool -> fixed weight, for pools the big run will pin too.
    seed : int
        Seeds the candidates and the plan's search; same inputs and seed give the same proposals.
    n_candidates, local_fraction
        Candidates scored, and the share of them drawn around the plan's best mixtures.
    radii, n_centres
        Expected total-variation sizes of the local moves, and how many promising mixtures they
        are drawn around.
    min_distance : float
        Minimum total-variation distance of a proposal to every existing run and to every other
        proposal.
    level : float
        Interval level whose conformal quantile calibrates the GP's sd (:math:`\\kappa`).
    temperature, min_nonzero, decimals
        As :func:`mixplan.design_swarm`: prior temperature of the Dirichlet draws, smallest non-zero
        weight above a floor, and rounding of the proposed weights.
    match_budget : float, optional
        Propose repetition-matched runs for a big run of this many tokens (``design --next K
        --match-budget T``): the acquisition is the expected improvement of the repetition-aware
        objective at ``T`` (:class:`mixplan.mixture.repetition.RepetitionModel`: the regressor on the
        mixture's *effective* composition at ``T``, where the small pools repeat), its uncertainty the GP's
        at that effective composition, the promising region that objective's optima, and no epoch caps
        (the runs must show the repetition the big run prices). The proposals are trained on pools
        subsampled to ``tokens / T`` (:func:`mixplan.design_swarm` with ``match_budget``).
    repetition : RepetitionModel, optional
        With ``match_budget``: the repetition model (fitted on earlier repetition runs); default
        Muennighoff et al.'s R* with no log-data term.
    cover : bool
        Make the first picks use the pools no existing run used (module docstring); default True.

    Raises
    ------
    ValidationError
        Bad settings, a model without a GP uncertainty model, pools that differ from the model's,
        or fewer than ``k`` candidates ``min_distance`` apart.
    InfeasibleError
        The constraints admit no mixture.
    """
    _check_settings(k, n_candidates, local_fraction, radii, n_centres, min_distance, decimals)
    if list(model.pools) != pools.names:
        raise ValidationError(f"the model was fitted on pools {model.pools} but the manifest lists {pools.names}; "
                              "use the manifest the runs were made with (same pools, same order)")
    uncertainty = []
    for t in model.targets:
        um = t.regressor.uncertainty_model()
        if um is None or not model.adaptive:
            why = (f"auto fits its GP only from {MIN_RUNS} runs per CV fold on: add runs" if t.regressor.model == "auto"
                   else "it has no GP to say where the model is unsure")
            raise ValidationError(f"--next needs a model with an uncertainty model (--model auto or gp); column "
                                  f"{t.column!r} is fitted with {t.regressor.model!r} and {why}")
        uncertainty.append(um)
    rng = np.random.default_rng(seed)
    objective = model.objective
    coef = np.asarray(model.coefficients, dtype=float)  # per target (a shared family model is one target)
    kappa = model.interval_scale(level) / float(norm.ppf(0.5 + level / 2))
    if match_budget is None:
        c = build_constraints(pools, tokens, pins)
        view, value = (lambda X: X), model.predict_mean
        # The plan says where the promising region is; its warnings (extrapolation) are not ours to print.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = make_plan(model, pools, tokens=tokens, pins=pins, seed=seed, level=level).result
        assert result is not None
    else:
        c, view, value, result, repetition = _matched_acquisition(model, pools, match_budget, tokens, repetition,
                                                                  pins, seed)
    centres = best_distinct(result.weights, result.topk_weights, result.candidates, result.exact_scores, n_centres)
    n_local = int(round(local_fraction * n_candidates)) if len(np.flatnonzero(c.free)) >= 2 else 0
    C = np.vstack([sample_mixtures(n_candidates - n_local, pools.prior, c, rng, temperature),
                   _perturb(centres, c, rng, n_local, radii)])
    origin = np.array(["global"] * (n_candidates - n_local) + ["local"] * n_local)
    C, origin = _round_unique(C, origin, c, min_nonzero, decimals)

    existing = model.train_weights
    idx_near, dist = nearest_run(C, existing)
    alive = dist >= min_distance
    f = objective.score(value(C))
    f_train = objective.score(value(existing))
    i_inc = int(np.argmin(f_train))
    f_star = float(f_train[i_inc])
    feats = [fm(view(C)) for _, fm in uncertainty]
    gps = [gp for gp, _ in uncertainty]
    sd0 = kappa * np.sqrt(sum(a ** 2 * gp.predict_std(F, noise=False) ** 2 for a, gp, F in zip(coef, gps, feats)))
    sd = sd0.copy()

    uncovered = _uncovered(existing, pools, c) if cover else {}
    U = list(uncovered)
    n_cover = min(k, max(len(U), -(-k // 2))) if U else 0
    picks: list[int] = []
    ei_at_pick: list[float] = []
    for j in range(k):
        live = np.flatnonzero(alive)
        if len(live) == 0:
            raise ValidationError(
                f"only {j} of {k} candidate mixtures are at least {min_distance:g} (total variation) from the "
                f"{len(existing)} existing runs and from each other; lower --min-distance or ask for fewer")
        if j < n_cover:
            u = U[j % len(U)]
            live = live[C[live, u] >= uncovered[u] - 1e-12]
            if len(live) == 0:
                raise ValidationError(
                    f"pool {pools.names[u]!r} is used by none of the {len(existing)} runs, and no candidate mixture "
                    f"{min_distance:g} apart from the runs and the picks so far gives it {uncovered[u]:.4g}: lower "
                    "--min-distance, or raise the pool's max_weight or prior")
        ei = expected_improvement(f_star - f[live], sd[live])
        b = int(live[int(np.argmax(ei))])  # first maximum: ties broken by candidate order (deterministic)
        picks.append(b)
        ei_at_pick.append(float(ei.max()))
        f_star = min(f_star, float(f[b]))
        alive &= 0.5 * np.abs(C - C[b]).sum(axis=1) >= min_distance
        alive[b] = False
        if j + 1 < k:
            try:
                gps = [gp.condition(F[b:b + 1], gp.predict(F[b:b + 1])) for gp, F in zip(gps, feats)]
            except np.linalg.LinAlgError as exc:  # a pick (nearly) on top of a run of a noise-free GP
                raise ValidationError(f"proposal {j + 1} is too close to an existing run for the GP to condition "
                                      "on it; raise --min-distance (e.g. 0.01)") from exc
            live = np.flatnonzero(alive)
            var = sum(a ** 2 * gp.predict_std(F[live], noise=False) ** 2 for a, gp, F in zip(coef, gps, feats))
            sd[live] = kappa * np.sqrt(var)

    P = np.asarray(picks, dtype=int)
    rec_pred = float(value(result.weights[None, :])[0])
    settings = {"k": k, "seed": seed, "tokens": tokens, "pins": dict(pins or {}), "n_candidates": n_candidates,
                "n_scored": int(len(C)), "local_fraction": local_fraction, "radii": list(radii),
                "n_centres": int(len(centres)), "min_distance": min_distance, "level": level, "kappa": kappa,
                "temperature": temperature, "min_nonzero": min_nonzero, "decimals": decimals,
                "acquisition": "expected improvement, greedy kriging believer",
                "incumbent": "best predicted objective among the existing runs"}
    if n_cover:  # (absent otherwise: a design whose runs cover every pool is described as before)
        settings["covering_picks"] = n_cover
    if match_budget is not None:
        settings |= {"match_budget": match_budget, "objective": f"repetition-aware at {match_budget:g} tokens",
                     "r_star": repetition.r_star, "gamma": repetition.gamma, "repetition_source": repetition.source}
    return NextRuns(pools=pools.names, weights=C[P], acquisition=np.asarray(ei_at_pick),
                    prediction=objective.unscore(f[P]), prediction_sd=sd0[P],
                    nearest_run=[model.train_ids[i] for i in idx_near[P]], nearest_distance=dist[P],
                    origin=origin[P].tolist(), incumbent=objective.unscore(float(f_train[i_inc])),
                    incumbent_run=model.train_ids[i_inc], recommended=np.asarray(result.weights, dtype=float),
                    recommended_prediction=rec_pred, settings=settings,
                    uncovered={pools.names[u]: float(w) for u, w in uncovered.items()})


def _matched_acquisition(model: MixtureModel, pools: PoolSet, match_budget: float, tokens: float | None,
                         repetition: Any, pins: Mapping[str, float] | None, seed: int) -> tuple[Any, ...]:
    """For repetition-matched proposals: the constraints (no epoch caps), the effective composition at
    the big run's budget (where the GP's uncertainty is read), the repetition-aware objective there and
    its optimum (the promising region), and the repetition model used."""
    from ..simplex import search
    from .repetition import DEFAULT_R_STAR, RepetitionModel

    check_match_budget(tokens, match_budget)
    rep = repetition or RepetitionModel(r_star=DEFAULT_R_STAR, gamma=0.0, synthetic=pools.synthetic,
                                        law_reference=tokens)
    c = build_constraints(pools, None, pins)

    def view(X: np.ndarray) -> np.ndarray:
        return rep.effective(X, match_budget, pools.tokens, pools.r_star)[0]

    def value(X: np.ndarray) -> np.ndarray:
        return rep.objective(model.predict_mean, X, match_budget, pools.tokens, pools.r_star)

    result = search(lambda W, fast: model.objective.score(value(W)), c, pools.prior, seed=seed,
                    extra=model.train_weights, **model_search_options(model.tree_share, {}))
    return c, view, value, result, rep


def next_run_ids(prefix: str, existing: Sequence[str], k: int) -> list[str]:
    """``k`` run ids ``<prefix>-<number>`` numbered after the largest ``<prefix>-<number>`` among
    ``existing``, so that rounds of proposals continue one sequence and never reuse an id."""
    check_prefix(prefix)
    pattern = re.compile(re.escape(prefix) + r"-(\d+)")
    numbers = [int(m.group(1)) for rid in existing if (m := pattern.fullmatch(str(rid)))]
    start = max(numbers, default=0) + 1
    width = max(3, len(str(start + k - 1)))
    ids = [f"{prefix}-{i:0{width}d}" for i in range(start, start + k)]
    clash = sorted(set(ids) & set(map(str, existing)))
    if clash:  # cannot happen with the numbering above; kept as a guard for hand-made ids
        raise ValidationError(f"run id {clash[0]!r} exists in the runs already; choose another --prefix")
    return ids


# ------------------------------------------------------------------------------------------------


def _uncovered(existing: np.ndarray, pools: PoolSet, c: Constraints) -> dict[int, float]:
    """Free pools with weight 0 in every existing run -> the weight a covering proposal gives at least:
    half of min(prior, cap), and at least the floor (module docstring); a pool of prior 0 is given half of
    min(1/P, cap) instead, so that covering it still means weight on it."""
    prior = pools.prior
    share = np.where(prior > 0, prior, 1.0 / len(pools))
    return {j: float(max(c.lower[j], 0.5 * min(share[j], c.upper[j])))
            for j in range(len(pools)) if c.free[j] and c.upper[j] > 0 and not (existing[:, j] > 0).any()}


def _check_settings(k: int, n_candidates: int, local_fraction: float, radii: tuple[float, ...], n_centres: int,
                    min_distance: float, decimals: int) -> None:
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise ValidationError(f"the number of proposals (--next) must be at least 1, got {k}")
    if n_candidates < k:
        raise ValidationError(f"n_candidates ({n_candidates}) must be at least the number of proposals ({k})")
    if not 0 <= local_fraction <= 1:
        raise ValidationError(f"local_fraction must be between 0 and 1, got {local_fraction}")
    if not radii or any(not 0 < r <= 1 for r in radii):
        raise ValidationError(f"radii must be total-variation sizes in (0, 1], got {list(radii)}")
    if n_centres < 1:
        raise ValidationError(f"n_centres must be at least 1, got {n_centres}")
    if not 0 <= min_distance < 1:
        raise ValidationError(f"--min-distance must be in [0, 1) (total variation), got {min_distance}")
    if decimals < 1:
        raise ValidationError(f"decimals must be at least 1, got {decimals}")


def _perturb(centres: np.ndarray, c: Constraints, rng: np.random.Generator, n: int,
             radii: tuple[float, ...]) -> np.ndarray:
    """``n`` feasible moves around ``centres``: half pair transfers (mass from one free pool to
    another), half zero-sum Gaussian moves, of expected total-variation size ``radii``."""
    P = centres.shape[1]
    free = np.flatnonzero(c.free)
    if n <= 0:
        return np.empty((0, P))
    rows = np.arange(n)
    V = centres[rows % len(centres)].copy()
    r = np.asarray(radii, dtype=float)[(rows // len(centres)) % len(radii)]
    pair = rows % 2 == 0
    m = int(pair.sum())
    i = rng.choice(free, size=m)
    j = rng.choice(free, size=m)
    amt = rng.random(m) * 2 * r[pair]  # uniform on [0, 2r]: mean r
    V[np.flatnonzero(pair), i] -= amt
    V[np.flatnonzero(pair), j] += amt
    g = ~pair
    # sd chosen so that E[TV] = E[sum |noise|] / 2 = r for len(free) independent coordinates
    noise = rng.normal(size=(int(g.sum()), len(free))) * (2 * r[g] / (len(free) * np.sqrt(2 / np.pi)))[:, None]
    noise -= noise.mean(axis=1, keepdims=True)
    V[np.ix_(np.flatnonzero(g), free)] += noise
    return c.project(V)


def _round_unique(C: np.ndarray, origin: np.ndarray, c: Constraints, min_nonzero: float,
                  decimals: int) -> tuple[np.ndarray, np.ndarray]:
    """Sparsify and round as design_swarm does (keeping a row unrounded if rounding would break a
    constraint, e.g. a pin with more decimals), then drop duplicates, keeping first occurrences."""
    R = sparsify_round(C, c.lower, c.upper, min_nonzero, decimals)
    ok = c.check(R, tol=1e-9)
    R = np.where(ok[:, None], R, C)
    _, first = np.unique(R, axis=0, return_index=True)
    keep = np.sort(first)
    return R[keep], origin[keep]
