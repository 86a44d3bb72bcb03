"""BiMix and AutoScale in the model zoo: the laws recover their own parameters, the gradients are right,
the fits are deterministic, the models save and load, and ``mixplan fit --model bimix`` works."""

import json

import numpy as np
import pandas as pd
import pytest

from mixplan import MixtureRegressor, ValidationError, fit_model, load_model, parse_objective, read_runs
from mixplan.cli import main
from mixplan.models.regressor import PRESETS
from mixplan.models import power_laws as pl

P = 4
F_TRUE, ALPHA_TRUE = np.array([0.5, 1.0, 0.3, 0.8]), np.array([0.3, 0.6, 0.2, 0.5])
A_TRUE, GAMMA_TRUE, L_TRUE, N = np.array([0.05, 0.1, 0.02, 0.2]), np.array([0.3, 0.5, 0.2, 0.4]), 1.0, 1e3


def mixtures(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).dirichlet(np.ones(P), n)


def bimix_data(n: int = 300, noise: float = 1e-3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    W = mixtures(n, seed)
    y = pl.bimix_law(W, 0.0, F_TRUE, ALPHA_TRUE)
    return W, y + noise * np.random.default_rng(seed + 1).standard_normal(n)


def autoscale_data(n: int = 300, noise: float = 1e-4, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    W = mixtures(n, seed)
    y = pl.autoscale_law(W, L_TRUE, A_TRUE, GAMMA_TRUE, N)
    return W, y + noise * np.random.default_rng(seed + 1).standard_normal(n)


def test_bimix_recovers_its_parameters():
    W, y = bimix_data()
    law = pl.fit_bimix(W, y, constant=False)  # olmix's form, the data's
    assert law.converged and law.c == 0.0
    assert np.allclose(law.F, F_TRUE, rtol=0.05), law.F  # amplitudes within 5%
    assert np.allclose(law.alpha, ALPHA_TRUE, atol=0.03), law.alpha  # exponents within 0.03
    # With a constant, c trades off against the flattest term (x^-0.2 is nearly constant on most of the
    # simplex), so only the predictions are checked: held-out mixtures within 0.5% of the law's value.
    with_c = pl.fit_bimix(W, y, constant=True)
    W2 = mixtures(100, seed=7)
    truth = pl.bimix_law(W2, 0.0, F_TRUE, ALPHA_TRUE)
    assert np.allclose(with_c.predict(W2), truth, rtol=5e-3) and np.allclose(law.predict(W2), truth, rtol=1e-3)


def test_autoscale_recovers_its_parameters_with_the_budget_fixed():
    W, y = autoscale_data()
    law = pl.fit_autoscale(W, y, N)
    assert law.converged and law.tokens == N
    assert np.allclose(law.gamma, GAMMA_TRUE, atol=0.02), law.gamma  # exponents within 0.02
    assert np.allclose(law.a, A_TRUE, rtol=0.1, atol=0.005), law.a  # offsets N0/N within 10% (or 0.005)
    assert np.allclose(law.N0, A_TRUE * N, rtol=0.1, atol=5.0)
    assert law.L == pytest.approx(L_TRUE, abs=0.01)
    W2 = mixtures(100, seed=5)
    assert np.allclose(law.predict(W2), pl.autoscale_law(W2, L_TRUE, A_TRUE, GAMMA_TRUE, N), atol=1e-3)


def central_difference(f, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    return np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(len(x))])


@pytest.mark.parametrize("delta", [0.1, 10.0])  # the Huber loss's linear and quadratic parts
def test_analytic_gradients_match_finite_differences(delta):
    W, y = bimix_data(60, seed=3)
    W[0, 1] = 0.0  # a floored weight
    logZ = np.log(np.maximum(W, pl.EPS))
    x = np.r_[0.2, F_TRUE * 0.7, ALPHA_TRUE * 1.3]
    sd = float(y.std())
    _, grad = pl._bimix_objective(x, logZ, y, sd, delta)
    num = central_difference(lambda p: pl._bimix_objective(p, logZ, y, sd, delta)[0], x)
    assert np.allclose(grad, num, rtol=1e-5, atol=1e-8)

    W, y = autoscale_data(60, seed=3)
    x = np.r_[0.9, A_TRUE * 1.5, GAMMA_TRUE * 0.8]
    sd = float(y.std())
    args = (W, y, sd, delta, float(np.log(N)), pl.AUTOSCALE_EPS)
    _, grad = pl._autoscale_objective(x, *args)
    num = central_difference(lambda p: pl._autoscale_objective(p, *args)[0], x)
    assert np.allclose(grad, num, rtol=1e-5, atol=1e-8)


def test_fits_are_deterministic_and_cross_validation_starts_from_the_full_fit():
    W, y = bimix_data(120, noise=0.01)
    a, b = pl.fit_bimix(W, y), pl.fit_bimix(W, y)
    assert np.array_equal(a.F, b.F) and np.array_equal(a.alpha, b.alpha)
    W, y = autoscale_data(120, noise=0.001)
    a, b = pl.fit_autoscale(W, y, N), pl.fit_autoscale(W, y, N)
    assert np.array_equal(a.a, b.a) and np.array_equal(a.gamma, b.gamma) and a.L == b.L
    warm = pl.fit_autoscale(W[:100], y[:100], N, start=a)  # one start: the full fit's law
    assert np.allclose(warm.gamma, a.gamma, atol=0.05)


def test_regressor_presets_save_and_load_without_pickle():
    W, y = bimix_data(120, noise=0.01)
    W2 = mixtures(30, seed=9)
    for model, params, data in (("bimix", None, (W, y)), ("autoscale", {"tokens": N}, autoscale_data(120))):
        reg = MixtureRegressor(model, params=params).fit(*data)
        files = reg.to_files()
        assert list(files) == [f"{model}.json"] and json.loads(files[f"{model}.json"])["law"] == model
        again = MixtureRegressor.from_files(files, model, params, 0, P)
        assert np.array_equal(reg.predict(W2), again.predict(W2))


def test_autoscale_needs_one_budget():
    W, y = autoscale_data(120)
    with pytest.raises(ValidationError, match="'autoscale' model needs the tokens N every run trained on"):
        MixtureRegressor("autoscale").fit(W, y)
    with pytest.raises(ValidationError, match="too few to fit the 'bimix' model on 4 pools"):
        MixtureRegressor("bimix").fit(W[:12], y[:12])


def runs_table(tmp_path, tokens) -> str:
    W, y = autoscale_data(100, noise=0.001)
    frame = pd.DataFrame(W, columns=[f"w_p{i}" for i in range(P)])
    frame.insert(0, "run_id", [f"r{i}" for i in range(len(y))])
    frame["tokens"] = tokens
    frame["loss"] = y
    path = tmp_path / "runs.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_fit_model_takes_the_budget_from_the_runs_and_round_trips(tmp_path):
    runs = read_runs(runs_table(tmp_path, N))
    model = fit_model(runs, parse_objective("loss", runs), "autoscale", cv_repeats=1)
    assert model.regressor.law_.tokens == N and model.cv["spearman"] > 0.95
    model.save(tmp_path / "m")
    again = load_model(tmp_path / "m")
    W2 = mixtures(20, seed=4)
    a, b = model.predict(W2), again.predict(W2)
    assert np.array_equal(a.mean, b.mean) and np.all(a.upper > a.mean)
    assert np.allclose(a.upper, b.upper, rtol=0, atol=1e-9)  # the CV's targets come back through a CSV
    mixed = read_runs(runs_table(tmp_path, np.where(np.arange(100) < 50, N, 2 * N)))
    with pytest.raises(ValidationError, match="2 different token budgets"):
        fit_model(mixed, parse_objective("loss", mixed), "autoscale")


def test_cli_fit_bimix(tmp_path, capsys):
    path = runs_table(tmp_path, N)
    out = tmp_path / "model"
    assert main(["fit", path, "--target", "loss", "--model", "bimix", "--cv-repeats", "1", "--out",
                 str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["model"] == "bimix" and doc["cv"]["spearman"] > 0.9 and doc["cv"]["n_runs"] == 100
    assert sorted(p.name for p in (out / "target0").iterdir()) == ["bimix.json"]
    assert load_model(out).regressor.law_.F.shape == (P,)


def test_auto_wide_weighs_the_power_laws_on_the_evidence(tmp_path):
    runs = read_runs(runs_table(tmp_path, N))  # drawn from the AutoScale law
    reg = fit_model(runs, parse_objective("loss", runs), "auto-wide", cv_repeats=1).regressor
    rows = {r["model"]: r for r in reg.selection_}
    assert {"bimix", "autoscale"} <= set(rows) and rows["autoscale"]["status"] == "used"
    assert reg.weights_["autoscale"] > 0.5 and reg.candidates_["autoscale"].law_.tokens == N
    assert not {"bimix", "autoscale"} & set(PRESETS["auto"]["candidates"])  # not in the default auto
