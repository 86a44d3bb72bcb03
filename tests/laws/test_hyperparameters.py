"""Step Law and DeepSeek learning-rate / batch-size formulas against reference predictions."""

import numpy as np
import pandas as pd
import pytest

from mixplan.laws.hyperparameters import deepseek, step_law


def test_step_law_reference_predictions(anchors):
    ref = pd.read_csv(anchors / "steplaw" / "steplaw_reference_predictions.csv")
    for coef, lr_col, bs_col in (("bootstrap", "lr_opt_bootstrap_mean", "bs_opt_tokens_bootstrap_mean"),
                                 ("rounded", "lr_opt_rounded_formula", "bs_opt_tokens_rounded_formula")):
        lr, bs = step_law(ref["N_nonembed"], ref["D_tokens"], coef)
        assert np.allclose(lr, ref[lr_col], rtol=1e-10) and np.allclose(bs, ref[bs_col], rtol=1e-10)
    lr, bs = deepseek(1e22)  # laws.md 5.2 [re-computed]: 5.54e-4, 4.59e6 tokens
    assert float(lr) == pytest.approx(5.54e-4, rel=2e-3) and float(bs) == pytest.approx(4.59e6, rel=2e-3)
