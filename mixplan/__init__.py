"""mixplan: plan the data of a language-model pretraining run from proxy-run results."""

from __future__ import annotations

__version__ = "0.1.0"

from .exceptions import (  # noqa: E402
    ExtrapolationWarning,
    InfeasibleError,
    MixplanError,
    MixplanWarning,
    NotFittedError,
    OutputExistsError,
    ValidationError,
)
from .pools import Pool, PoolSet, load_pools  # noqa: E402
from .runs import RunTable, read_olmix_layout, read_regmix_layout, read_runs  # noqa: E402
from .objective import Objective, parse_objective  # noqa: E402
from .regressor import MixtureRegressor, cross_validate  # noqa: E402
from .model import MixtureModel, fit_model, load_model  # noqa: E402

__all__ = [
    "__version__",
    "MixplanError", "ValidationError", "InfeasibleError", "NotFittedError", "OutputExistsError",
    "MixplanWarning", "ExtrapolationWarning",
    "Pool", "PoolSet", "load_pools",
    "RunTable", "read_runs", "read_regmix_layout", "read_olmix_layout",
    "Objective", "parse_objective",
    "MixtureRegressor", "cross_validate",
    "MixtureModel", "fit_model", "load_model",
]

from .search import Constraints, build_constraints, search  # noqa: E402
from .plan import Plan, make_plan  # noqa: E402
from .design import Design, design_swarm  # noqa: E402
from .sequential import NextRuns, propose_next  # noqa: E402

__all__ += ["Constraints", "build_constraints", "search", "Plan", "make_plan", "Design", "design_swarm",
            "NextRuns", "propose_next"]
# Imported on first use: POT and the featurizer would add ~0.2 s to every command that does not need them.
_LAZY = {"OTExtrapolator": "extrapolator", "load_extrapolator": "extrapolator", "TextFeaturizer": "features",
         "load_featurizer": "features", "load_vectors": "features"}
__all__ += list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
