"""Issue acceptance item on real data: fitted through mixplan's API, the effective-data (data-constrained)
law predicts held-out repeated-data runs of Muennighoff et al. better than ignoring repetition.

Fast version of ``tests/benchmarks/datablations_heldout.py`` (which also runs an epochs-extrapolation
split, a third run-set variant, an R_D*-only ablation and a pair of laws whose base constants are refit
too; see its docstring for the numbers and caveats). Here: R_D*, R_N* fitted as the authors did (base
constants fixed at their C4 refit) on the training part; "ignoring repetition" is the same base law with
every token fresh (U = D). Only held-out runs with epochs > 1 are scored.
"""

import numpy as np
import pandas as pd
import pytest

from mixplan.laws import DATABLATIONS, chinchilla_loss, data_constrained_law, data_constrained_loss, fit_law

BASE = {k: DATABLATIONS[k] for k in ("A", "B", "E", "alpha", "beta")}


def _runs(anchors, variant):
    runs = pd.read_csv(anchors / "datablations" / "datablations_c4_runs.csv")
    runs = runs[runs["status"] == "used_in_notebook_fit"].reset_index(drop=True)
    assert len(runs) == 296
    if variant == "loss<5":  # laws.md 2.5: 100M-unique-token runs with losses 5-11 overfit; the law cannot follow
        runs = runs[runs["final_val_loss"] < 5].reset_index(drop=True)
    return runs


def _cols(d):
    return {"params": d["params_N"].to_numpy(float), "tokens": d["tokens_D"].to_numpy(float),
            "unique_tokens": d["unique_tokens_U"].to_numpy(float)}


def _grouped_folds(d, k=5, seed=0):
    """k folds over configurations (N, D, U), so seed replicates never straddle train and test."""
    config = d.groupby(["params_N", "tokens_D", "unique_tokens_U"]).ngroup().to_numpy()
    order = np.random.default_rng(seed).permutation(config.max() + 1)
    fold_of_config = np.empty_like(order)
    fold_of_config[order] = np.arange(len(order)) % k
    fold = fold_of_config[config]
    repeated = d["epochs"].to_numpy() > 1
    return [(fold != f, (fold == f) & repeated) for f in range(k)]


def _heldout_errors(d, splits):
    """Pooled held-out (fitted, ignoring repetition) absolute errors and the fits' R* values."""
    loss = d["final_val_loss"].to_numpy(float)
    fitted, fresh, truth, r_star = [], [], [], []
    for train, test in splits:
        fit = fit_law(data_constrained_law(DATABLATIONS), _cols(d[train]), loss[train], n_bootstrap=0)
        r_star.append((fit.params["R_D_star"], fit.params["R_N_star"]))
        t = _cols(d[test])
        fitted.append(data_constrained_loss(t["params"], t["tokens"], t["unique_tokens"], fit.params))
        fresh.append(chinchilla_loss(t["params"], t["tokens"], **BASE))
        truth.append(loss[test])
    fitted, fresh, truth = (np.concatenate(x) for x in (fitted, fresh, truth))
    return np.abs(fitted - truth), np.abs(fresh - truth), r_star


def _mae_rmse(err):
    return err.mean(), np.sqrt(np.mean(err ** 2))


@pytest.mark.parametrize("variant", ["all", "loss<5"])
def test_fitted_effective_data_beats_ignoring_repetition_in_grouped_cv(anchors, variant):
    d = _runs(anchors, variant)
    fitted, fresh, r_star = _heldout_errors(d, _grouped_folds(d))
    assert len(fitted) == {"all": 255, "loss<5": 230}[variant]
    # Measured (seed 0): all     fitted MAE 0.442, RMSE 0.953 vs ignoring repetition 0.822, 1.416;
    #                    loss<5  fitted MAE 0.264, RMSE 0.371 vs ignoring repetition 0.549, 0.651.
    # Caveat (see the benchmark): in every fold R_D* sits at its upper bound (1000: repeated tokens count
    # as fresh) and the gain comes from R_N* -> ~0 (excess parameters beyond N_opt(U) worthless), which
    # also corrects the fixed base law's bias (it under-predicts even the single-epoch runs, by 15% on
    # average). fit_law warns about the bound; the warning is expected here.
    assert all(rd > 100 for rd, _ in r_star)
    (mae_fit, rmse_fit), (mae_fresh, rmse_fresh) = _mae_rmse(fitted), _mae_rmse(fresh)
    assert mae_fit < 0.7 * mae_fresh, (mae_fit, mae_fresh)
    assert rmse_fit < rmse_fresh, (rmse_fit, rmse_fresh)


def test_fitted_effective_data_beats_ignoring_repetition_on_larger_models(anchors):
    # Extrapolation in model size: fit on the 138 runs below 1B parameters, predict the 133 repeated runs
    # of 1.1B-8.7B models. Measured: fitted MAE 0.622, RMSE 1.356 (R_D* 7.9, R_N* 10.3) vs ignoring
    # repetition 0.844, 1.734.
    # Not asserted, and reported by the benchmark: fitted on runs with <= 4 epochs, the same law
    # extrapolates *worse* than ignoring repetition to runs with more epochs on the MAE of the loss
    # (all runs 1.039 vs 0.931; loss < 5: 0.979 vs 0.624), because R_D* -> 0.66 there (repeats
    # nearly worthless) over-predicts the long runs; the published R* does well on that split (0.502).
    d = _runs(anchors, "all")
    small = d["params_N"].to_numpy() < 1e9
    fitted, fresh, r_star = _heldout_errors(d, [(small, ~small & (d["epochs"].to_numpy() > 1))])
    assert len(fitted) == 133
    (mae_fit, rmse_fit), (mae_fresh, rmse_fresh) = _mae_rmse(fitted), _mae_rmse(fresh)
    assert mae_fit < mae_fresh and rmse_fit < rmse_fresh, (mae_fit, mae_fresh, rmse_fit, rmse_fresh)
