"""mixplan: plan the data of a language-model pretraining run from proxy-run results.

The package is layered, each layer importing only those below it (checked by the import-linter
contract in ``pyproject.toml``):

==========================================  ==========================================================
``cli``                                     command line: parse, one library call, render
``demo``                                    the shipped demo study: real-text pools, a CPU proxy LM
``mixture``                                 plan, design, sequential design, repetition at the budget
``transport`` / ``filtering`` / ``cpt``     OT extrapolator; filtering thresholds; CPT ratios
``models`` / ``simplex``                    regressors and the multi-target model; the mixture simplex
``data``                                    pools, runs, objectives, quality buckets
``laws``                                    scaling laws: pure functions, the fitter, budgets
``_checks``, ``_io``, ``_lazy``, ...       number checks; atomic files; lazy names; the version
``exceptions``                              errors and warnings
==========================================  ==========================================================

Public names below are imported on first use.
"""

from __future__ import annotations

from ._lazy import lazy_exports
from ._version import __version__
from .exceptions import (
    ExtrapolationWarning,
    InfeasibleError,
    MixplanError,
    MixplanWarning,
    NotFittedError,
    OutputExistsError,
    ValidationError,
)

_EXPORTS = {
    "Pool": ".data.pools", "PoolSet": ".data.pools", "load_pools": ".data.pools",
    "RunTable": ".data.runs", "read_runs": ".data.runs", "read_regmix_layout": ".data.runs",
    "read_olmix_layout": ".data.runs",
    "Objective": ".data.objective", "parse_objective": ".data.objective",
    "MixtureRegressor": ".models.regressor", "cross_validate": ".models.regressor",
    "MixtureModel": ".models.mixture_model", "fit_model": ".models.mixture_model",
    "load_model": ".models.mixture_model",
    "Constraints": ".simplex", "build_constraints": ".simplex", "search": ".simplex",
    "Plan": ".mixture.plan", "make_plan": ".mixture.plan",
    "Design": ".mixture.design", "design_swarm": ".mixture.design",
    "NextRuns": ".mixture.sequential", "propose_next": ".mixture.sequential",
    "OTExtrapolator": ".transport.extrapolator", "load_extrapolator": ".transport.extrapolator",
    "TextFeaturizer": ".transport.features", "load_featurizer": ".transport.features",
    "load_vectors": ".transport.features",
}

__all__ = ["__version__", "MixplanError", "ValidationError", "InfeasibleError", "NotFittedError",
           "OutputExistsError", "MixplanWarning", "ExtrapolationWarning", *_EXPORTS]

_SUBPACKAGES = ("cli", "cpt", "data", "demo", "filtering", "laws", "mixture", "models", "simplex", "transport")

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, _SUBPACKAGES)
