"""Largest-remainder rounding: exact sums, bounded changes, drops renormalised, pins kept."""

import math
from decimal import Decimal

import numpy as np
import pytest

from mixplan.exceptions import ValidationError
from mixplan.simplex.rounding import round_mixture, weight_text


def test_a_thousand_random_mixtures_over_17_pools_sum_to_one_at_every_precision():
    rng = np.random.default_rng(0)
    W = np.vstack([rng.dirichlet(np.full(17, a)) for a in rng.choice([0.05, 0.3, 1.0, 5.0], size=1000)])
    W[::7, 3] = 0.0  # exact zeros
    W = W / W.sum(axis=1, keepdims=True)
    worst = {}
    for d in range(0, 7):
        for w in W:
            r = round_mixture(w, d)
            text = [weight_text(x, d) for x in r]
            assert sum(Decimal(t) for t in text) == 1  # digit by digit, as written
            assert abs(math.fsum(r) - 1.0) <= 2.3e-16  # binary floats of decimal weights: within an ulp
            assert np.all(np.abs(r - w) < 10.0 ** -d + 1e-12)
            assert np.all(r >= 0)
            worst[d] = max(worst.get(d, 0.0), float(np.abs(r - w).max()))
    assert worst[6] < 1e-6 and worst[2] < 1e-2


def test_known_cases():
    assert round_mixture([1 / 3] * 3, 2).tolist() == [0.34, 0.33, 0.33]  # ties to the earlier pool
    assert round_mixture([0.29, 0.71], 2).tolist() == [0.29, 0.71]  # 0.29 * 100 = 28.999999999999996
    assert round_mixture([0.2, 0.45, 0.35], 1).tolist() == [0.2, 0.5, 0.3]  # 0.2 keeps its whole units
    assert weight_text(0.1, 3) == "0.100" and weight_text(0.3, None) == "0.3"


def test_drops_below_min_weight_and_renormalises_the_rest():
    w = np.array([0.5, 0.3, 0.15, 0.04, 0.01])
    r = round_mixture(w, None, min_weight=0.05)
    assert r[3] == r[4] == 0 and r[:3] == pytest.approx(w[:3] / 0.95)
    pinned = round_mixture(w, None, min_weight=0.05, fixed=[False, True, False, False, False])
    assert pinned[1] == 0.3 and pinned[[0, 2]] == pytest.approx(w[[0, 2]] * 0.7 / 0.65)
    assert sum(Decimal(weight_text(x, 2)) for x in round_mixture(w, 2, min_weight=0.05)) == 1
    with pytest.raises(ValidationError, match="drops every pool that is not pinned"):
        round_mixture(w, 2, min_weight=0.6)


@pytest.mark.parametrize("w, d, msg", [([0.5, np.nan], 2, "finite"), ([0, 0], 2, "every weight is 0"),
                                       ([0.5, 0.5], -1, "--round"), ([0.5, 0.5], 1.5, "--round")])
def test_bad_input(w, d, msg):
    with pytest.raises(ValidationError, match=msg):
        round_mixture(w, d)
