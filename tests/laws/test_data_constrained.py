"""The data-constrained law (Muennighoff et al.) against the authors' reference predictions."""

import numpy as np
import pandas as pd
import pytest

from mixplan.laws import (DATABLATIONS, data_constrained_loss, effective_data, optimal_allocation)


def test_datablations_reference_predictions(anchors):
    ref = pd.read_csv(anchors / "datablations" / "datablations_reference_predictions.csv")
    L = data_constrained_loss(ref["N"], ref["D"], ref["U"], DATABLATIONS)
    assert np.allclose(L, ref["L_pred"], rtol=1e-12, atol=0)
    readme = ref[ref["L_published"].astype(str).str.match(r"^\d")]
    assert np.allclose(data_constrained_loss(readme["N"][:2], readme["D"][:2], readme["U"][:2], DATABLATIONS),
                       [2.2256440889984477, 2.2269634075087867], rtol=1e-14)
    for row in ref[ref["case"].str.contains("optimal_allocation")].itertuples():
        N, D, loss = optimal_allocation(row.C, row.U)
        assert (N, D, loss) == pytest.approx((row.N, row.D, row.L_pred), rel=1e-10)
    N, D, _ = optimal_allocation(1e22, 25e9)  # README: 7.02e9 parameters, 2.37e11 tokens
    assert N == pytest.approx(7022364735.879969, rel=1e-10) and D == pytest.approx(237336955477.55075, rel=1e-10)


def test_value_of_repeated_data_table():
    # laws.md 2.1 [re-computed]: D'/D at 2, 4, 8, 16, 40, 100 epochs
    epochs = np.array([2, 4, 8, 16, 40, 100.0])
    ratio = effective_data(epochs, 1.0, DATABLATIONS["R_D_star"]) / epochs
    assert np.round(ratio, 3).tolist() == [0.984, 0.931, 0.828, 0.661, 0.379, 0.164]


def test_effective_data_with_a_huge_r_star_is_the_data_itself():
    """R* -> infinity: repeated tokens lose nothing, D' = D; R* = 1e308 once overflowed to nan (the fuzz
    corpus found it through a plan config's r_star)."""
    import numpy as np

    from mixplan.laws.data_constrained import effective_data

    D, U = np.array([1e6, 4e6, 1e9]), np.full(3, 1e6)
    with np.errstate(all="raise"):
        huge = effective_data(D, U, 1e308)
    assert np.allclose(huge, D, rtol=1e-12)
    assert np.allclose(effective_data(D, U, 1e12), D, rtol=1e-5)  # continuous in R*
