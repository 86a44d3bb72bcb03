r"""Learning rate and batch size for a run shape (Step Law, arXiv 2503.04715; DeepSeek LLM, arXiv 2401.02954).

Step Law (Li et al. 2025, "Predictable Scale: Part I", arXiv 2503.04715, ``step-law/steplaw``), for
non-embedding parameters :math:`N` and training tokens :math:`D`:

.. math::

    \eta_{opt}(N, D) = e^{c_0} N^{c_N} D^{c_D}, \qquad B_{opt}(D) = e^{d_0} D^{d_D} \ \text{(tokens)}

with the column means of the authors' 1,000 bootstrap fits (what ``code/fit_tool.py
pred-opt-lr-bs`` uses; ``coefficients="bootstrap"``) or the rounded published form
:math:`1.79 N^{-0.713} D^{0.307}`, :math:`0.58 D^{0.571}` (``coefficients="rounded"``).

DeepSeek LLM (arXiv 2401.02954) for comparison, in compute :math:`C = M D` where :math:`M` is the
non-embedding FLOPs per token *including attention* (not 6N):
:math:`\eta_{opt} = 0.3118\,C^{-0.1250}`, :math:`B_{opt} = 0.2920\,C^{0.3271}` tokens.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_numbers
from ..exceptions import ValidationError

__all__ = ["step_law", "deepseek", "STEP_LAW"]

#: Step Law coefficients: (log lr intercept, N exponent, D exponent, log batch intercept, D exponent).
STEP_LAW: dict[str, tuple[float, float, float, float, float]] = {
    # column means of step-law/steplaw@32a8f4c data/1004_fitted_lr_bs_scaling_model_parameters.csv
    "bootstrap": (0.5863077907399268, -0.7129222911869904, 0.30749095041206964,
                  -0.5435421736103339, 0.5709443646895045),
    # the rounded form printed in the paper: 1.79 N^-0.713 D^0.307, 0.58 D^0.571
    "rounded": (float(np.log(1.79)), -0.713, 0.307, float(np.log(0.58)), 0.571),
}


def step_law(N: float | np.ndarray, D: float | np.ndarray,
             coefficients: str = "bootstrap") -> tuple[np.ndarray, np.ndarray]:
    """Peak learning rate and batch size in tokens for ``N`` non-embedding parameters and ``D`` tokens."""
    if coefficients not in STEP_LAW:
        raise ValidationError(f"unknown Step Law coefficients {coefficients!r}; use {' or '.join(STEP_LAW)}")
    c0, cN, cD, d0, dD = STEP_LAW[coefficients]
    N = check_numbers(N, "parameters", lo=0.0, lo_open=True)
    D = check_numbers(D, "tokens", lo=0.0, lo_open=True)
    return np.exp(c0) * N ** cN * D ** cD, np.exp(d0) * D ** dD


def deepseek(C: float | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeepSeek LLM's learning rate and batch size (tokens) for compute ``C = M D``."""
    C = check_numbers(C, "compute", lo=0.0, lo_open=True)
    return 0.3118 * C ** -0.1250, 0.2920 * C ** 0.3271
