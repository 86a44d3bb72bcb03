"""Fixtures of the mixture tests: a known-truth synthetic study with a fitted model."""

from __future__ import annotations

import pytest

from mixplan import Pool, PoolSet, fit_model, parse_objective, read_runs


@pytest.fixture(scope="session")
def synthetic_study():
    """The function :func:`_synthetic_study`, for module fixtures that build their study from it."""
    return _synthetic_study


def _synthetic_study(folder, n_runs: int, model: str):
    """A 5-pool synthetic study (mixplan.demo.synthetic, seed 1), ``n_runs`` runs of it (seed 2, noise 0.005) written
    under ``folder`` and read back, pools of 1e6 ... 5e6 tokens, and ``model`` fitted on the runs' loss."""
    from mixplan.demo.synthetic import make_study

    study = make_study(5, seed=1)
    path = folder / "runs.csv"
    study.runs(n_runs, seed=2, noise=0.005).to_csv(path, index=False)
    pools = PoolSet(tuple(Pool(n, tokens=1e6 * (i + 1)) for i, n in enumerate(study.names)))
    runs = read_runs(path, pools)
    return study, pools, fit_model(runs, parse_objective("loss", runs), model, seed=0)
