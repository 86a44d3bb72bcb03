"""Shared fixtures. Pins threads and forbids downloads for the whole test run."""

from __future__ import annotations

import os

# Before any library that reads them is imported: one thread (a busy 2-core machine makes threaded
# LightGBM ~10x slower) and no network access.
for _key, _value in {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                     "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                     "MPLBACKEND": "Agg"}.items():
    os.environ[_key] = _value

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
ANCHORS = REPO.parent / "shared" / "anchors"


@pytest.fixture(autouse=True)
def _offline(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    # The commands' --jobs default (every core) is one worker in tests: the suite's timing stays that
    # of one core per test; tests that pass --jobs get what they ask for.
    import mixplan._parallel

    monkeypatch.setattr(mixplan._parallel, "default_jobs", lambda: 1)


@pytest.fixture
def repo() -> Path:
    return REPO


@pytest.fixture
def anchors() -> Path:
    if not ANCHORS.is_dir():
        pytest.skip(f"anchor data not found at {ANCHORS} (a user's clone without ../shared); CI has it")
    return ANCHORS


@pytest.fixture
def synthetic(tmp_path):
    """A 5-pool synthetic study: (study, runs CSV path, manifest path)."""
    from mixplan.demo.synthetic import make_study

    study = make_study(5, seed=1)
    runs = study.runs(120, seed=2, noise=0.005)
    path = tmp_path / "runs.csv"
    runs.to_csv(path, index=False)
    manifest = tmp_path / "pools.toml"
    manifest.write_text("".join(f"[pools.{n}]\ntokens = {1e6 * (i + 1)}\n" for i, n in enumerate(study.names)))
    return study, path, manifest
