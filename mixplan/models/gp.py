r"""Gaussian-process regression on mixture features: pure math plus a small fitted-state object.

Model. For features :math:`f = \phi(w)` of a mixture :math:`w` and standardised targets
:math:`\tilde y = (y - \bar y) / s_y`,

.. math::

    \tilde y \sim \mathcal{GP}(0, k) , \qquad
    k(f, f') = \sigma_f^2 \left(1 + \sqrt5 r + \tfrac53 r^2\right) e^{-\sqrt5 r} + \sigma_n^2 \delta_{ff'},
    \qquad r^2 = \sum_d \frac{(f_d - f'_d)^2}{\ell_d^2}

(Matern 5/2 with one length scale per pool, "ARD", one shared length scale, or one per *group* of
pools: feature :math:`d` takes the length scale :math:`\ell_{g(d)}` of its group, which keeps the
number of hyper-parameters small when there are hundreds of pools). Hyper-parameters
:math:`\theta = (\log\sigma_f^2, \log\ell_1..\log\ell_G, \log\sigma_n^2)` maximise the log marginal
likelihood plus, optionally, a Gaussian prior :math:`\log\ell_g \sim N(\mu, \tau^2)` on every
log length scale (MAP). The prior keeps ARD from over-fitting a few dozen runs: a pool's length scale
leaves the prior's centre only when the runs say so.

Gradient of the negative log marginal likelihood, with :math:`A = \alpha\alpha^\top - K^{-1}`,
:math:`\alpha = K^{-1}\tilde y`, :math:`Q = \tfrac53\sigma_f^2(1+\sqrt5 r)e^{-\sqrt5 r}` and
:math:`M = A \circ Q`:

.. math::

    -\frac{\partial \log p}{\partial \log \ell_d}
        = -\ell_d^{-2}\Big(\sum_i f_{id}^2 (M\mathbf 1)_i - f_{\cdot d}^\top M f_{\cdot d}\Big)

(summed over a group's features for a grouped length scale), which costs :math:`O(n^2 P)` without
forming the :math:`n \times n \times P` tensor of pairwise differences (scikit-learn's GP does form
it; this is why 512 runs fit in seconds here, not minutes). :math:`K^{-1}` comes from the Cholesky
factor by LAPACK's ``potri`` (half the work of solving against the identity).

Beyond a thousand runs the hyper-parameters are optimised on a seeded subset of the runs (``subset``:
"subset of data" for the hyper-parameters only, Rasmussen & Williams 2006, section 8.3.3); the
posterior then conditions on every run exactly with them.

Leave-one-out predictions are closed-form at fixed hyper-parameters (Rasmussen & Williams 2006,
eq. 5.12): :math:`\mu_{-i} = y_i - \alpha_i / [K^{-1}]_{ii}`, :math:`\sigma^2_{-i} = 1/[K^{-1}]_{ii}`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_solve, solve_triangular
from scipy.linalg.lapack import dpotri
from scipy.optimize import minimize

__all__ = ["GaussianProcess", "fit_gp", "neg_log_marginal_likelihood", "matern52", "length_groups"]

_SQRT5 = np.sqrt(5.0)
#: Bounds of log sigma_f^2, log length scale and log sigma_n^2 (standardised targets).
LOG_AMPLITUDE_BOUNDS = (np.log(1e-3), np.log(1e3))
LOG_LENGTH_BOUNDS = (np.log(1e-2), np.log(1e3))
LOG_NOISE_BOUNDS = (np.log(1e-8), 0.0)
_JITTER = 1e-9
#: Elements of a cross-covariance block in prediction (16 MB).
PREDICT_BLOCK = 2_000_000


def scaled_sqdist(A: np.ndarray, B: np.ndarray, inv_l2: np.ndarray) -> np.ndarray:
    """Squared distances :math:`r^2` between the rows of ``A`` and ``B`` scaled by ``1/l^2``."""
    s = np.sqrt(inv_l2)
    As, Bs = A * s, B * s
    d = (As ** 2).sum(1)[:, None] + (Bs ** 2).sum(1)[None, :] - 2.0 * As @ Bs.T
    return np.maximum(d, 0.0)


def matern52(r2: np.ndarray, amplitude: float) -> tuple[np.ndarray, np.ndarray]:
    r"""Matern 5/2 kernel values and :math:`Q = -2\,\partial k / \partial (r^2)` for squared distances."""
    r = np.sqrt(r2)
    e = np.exp(-_SQRT5 * r)
    return amplitude * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r2) * e, (5.0 / 3.0) * amplitude * (1.0 + _SQRT5 * r) * e


def length_groups(n_features: int, ard: bool = True, groups: np.ndarray | None = None) -> np.ndarray:
    """The length-scale group of every feature: its own (ARD), one shared, or the given ``groups``
    (integers ``0..G-1``, every group used)."""
    if groups is None:
        return np.arange(n_features) if ard else np.zeros(n_features, dtype=int)
    g = np.asarray(groups, dtype=int)
    if g.shape != (n_features,) or g.min() < 0 or set(np.unique(g)) != set(range(int(g.max()) + 1)):
        raise ValueError(f"length-scale groups must number the {n_features} features 0..G-1, every group used")
    return g


def _unpack(theta: np.ndarray, groups: np.ndarray) -> tuple[float, np.ndarray, float]:
    return float(np.exp(theta[0])), np.exp(-2.0 * theta[1:-1][groups]), float(np.exp(theta[-1]))


def inverse_from_cholesky(L: np.ndarray) -> np.ndarray:
    """:math:`K^{-1}` from the lower Cholesky factor of :math:`K` (LAPACK ``potri``; ``L``'s upper
    triangle must be zero, as numpy's ``cholesky`` returns it)."""
    inv, info = dpotri(L, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError(f"potri failed (info {info})")
    full = inv + inv.T  # potri fills the lower triangle; the upper one is L's zeros
    full[np.diag_indices_from(full)] *= 0.5
    return full


def neg_log_marginal_likelihood(theta: np.ndarray, F: np.ndarray, y: np.ndarray, ard: bool = True,
                                prior: tuple[float, float] | None = None,
                                groups: np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """Negative log marginal likelihood (plus the length-scale prior's negative log density, up to a
    constant) and its gradient in ``theta`` (see the module docstring)."""
    g = length_groups(F.shape[1], ard, groups)
    amp, inv_l2, noise = _unpack(theta, g)
    n = len(y)
    Kf, Q = matern52(scaled_sqdist(F, F, inv_l2), amp)
    try:
        L = np.linalg.cholesky(Kf + (noise + _JITTER) * np.eye(n))
        K_inv = inverse_from_cholesky(L)
    except np.linalg.LinAlgError:
        return 1e25, np.zeros_like(theta)  # L-BFGS-B backs off from a non-positive-definite step
    alpha = cho_solve((L, True), y)
    value = 0.5 * y @ alpha + np.log(np.diag(L)).sum() + 0.5 * n * np.log(2.0 * np.pi)
    A = np.outer(alpha, alpha) - K_inv
    M = A * Q
    g_len = (((F ** 2) * M.sum(1)[:, None]).sum(0) - (F * (M @ F)).sum(0)) * inv_l2
    grad = np.empty_like(theta)
    grad[0] = -0.5 * (A * Kf).sum()
    grad[-1] = -0.5 * noise * np.trace(A)
    grad[1:-1] = -np.bincount(g, weights=g_len, minlength=len(theta) - 2)
    if prior is not None:
        mu, tau = prior
        z = theta[1:-1]
        value += 0.5 * float(((z - mu) ** 2).sum()) / tau ** 2
        grad[1:-1] += (z - mu) / tau ** 2
    return float(value), grad


@dataclass(frozen=True)
class GaussianProcess:
    """A fitted GP: hyper-parameters and the factorised training covariance.

    Attributes
    ----------
    theta : log hyper-parameters (see the module docstring)
    F : training features (n, P)
    y : training targets, original scale
    groups : the length-scale group of every feature (see :func:`length_groups`)
    """

    theta: np.ndarray
    F: np.ndarray
    y: np.ndarray
    groups: np.ndarray
    y_mean: float
    y_scale: float
    chol: np.ndarray
    alpha: np.ndarray
    log_marginal_likelihood: float = float("nan")
    converged: bool = True

    @property
    def amplitude(self) -> float:
        return float(np.exp(self.theta[0]))

    @property
    def noise(self) -> float:
        """Noise variance on the original target scale."""
        return float(np.exp(self.theta[-1])) * self.y_scale ** 2

    @property
    def ard(self) -> bool:
        """One length scale per feature."""
        return len(self.theta) - 2 == self.F.shape[1]

    @property
    def length_scales(self) -> np.ndarray:
        """Every feature's length scale (its group's)."""
        return np.exp(self.theta[1:-1][self.groups])

    def _cross(self, Fs: np.ndarray) -> np.ndarray:
        amp, inv_l2, _ = _unpack(self.theta, self.groups)
        r2 = scaled_sqdist(Fs, self.F, inv_l2)
        r = np.sqrt(r2)
        return amp * (1.0 + _SQRT5 * r + (5.0 / 3.0) * r2) * np.exp(-_SQRT5 * r)

    def _blocks(self, Fs: np.ndarray) -> list[np.ndarray]:
        # Rows of Fs in blocks whose cross-covariance with the runs holds about PREDICT_BLOCK elements:
        # memory does not grow with the number of candidates scored at once.
        step = max(1, PREDICT_BLOCK // max(1, len(self.y)))
        return [Fs[s:s + step] for s in range(0, len(Fs), step)]

    def predict(self, Fs: np.ndarray) -> np.ndarray:
        """Posterior mean at features ``Fs``."""
        Fs = np.atleast_2d(Fs)
        out = [self._cross(B) @ self.alpha for B in self._blocks(Fs)]
        return self.y_mean + self.y_scale * (np.concatenate(out) if out else np.empty(0))

    def predict_std(self, Fs: np.ndarray, noise: bool = True) -> np.ndarray:
        """Posterior standard deviation of the latent function (``noise=False``) or of a new
        observation (``noise=True``), original scale."""
        Fs = np.atleast_2d(Fs)
        out = [(solve_triangular(self.chol, self._cross(B).T, lower=True) ** 2).sum(axis=0) for B in self._blocks(Fs)]
        var = np.maximum(self.amplitude - (np.concatenate(out) if out else np.empty(0)), 0.0)
        if noise:
            var = var + np.exp(self.theta[-1])
        return self.y_scale * np.sqrt(var)

    def predict_cov(self, Fs: np.ndarray) -> np.ndarray:
        """Posterior covariance of the latent function at the rows of ``Fs`` (original scale)."""
        amp, inv_l2, _ = _unpack(self.theta, self.groups)
        v = solve_triangular(self.chol, self._cross(Fs).T, lower=True)
        prior = matern52(scaled_sqdist(Fs, Fs, inv_l2), amp)[0]
        return self.y_scale ** 2 * (prior - v.T @ v)

    def loo(self) -> tuple[np.ndarray, np.ndarray]:
        """Closed-form leave-one-out predictive means and standard deviations (fixed hyper-parameters)."""
        K_inv_diag = np.diag(inverse_from_cholesky(self.chol))
        return self.y - self.y_scale * self.alpha / K_inv_diag, self.y_scale / np.sqrt(K_inv_diag)

    def condition(self, Fs: np.ndarray, ys: np.ndarray) -> "GaussianProcess":
        """The same GP (same hyper-parameters, same standardisation) with extra observations: what a
        batch design uses to imagine runs it has not trained yet."""
        return _factorise(self.theta, np.vstack([self.F, Fs]), np.r_[self.y, ys], self.groups,
                          self.y_mean, self.y_scale, self.log_marginal_likelihood, self.converged)


def _factorise(theta: np.ndarray, F: np.ndarray, y: np.ndarray, groups: np.ndarray, y_mean: float,
               y_scale: float, lml: float, converged: bool) -> GaussianProcess:
    amp, inv_l2, noise = _unpack(theta, groups)
    K = matern52(scaled_sqdist(F, F, inv_l2), amp)[0] + (noise + _JITTER) * np.eye(len(y))
    chol = np.linalg.cholesky(K)
    alpha = cho_solve((chol, True), (y - y_mean) / y_scale)
    return GaussianProcess(theta=np.asarray(theta, dtype=float), F=F, y=np.asarray(y, dtype=float),
                           groups=groups,
                           y_mean=y_mean, y_scale=y_scale, chol=chol, alpha=alpha,
                           log_marginal_likelihood=lml, converged=converged)


def fit_gp(F: np.ndarray, y: np.ndarray, *, ard: bool = True, prior: tuple[float, float] | None = None,
           starts: tuple[float, ...] = (0.0,), maxiter: int = 200, theta: np.ndarray | None = None,
           theta0: np.ndarray | None = None, groups: np.ndarray | None = None,
           subset: np.ndarray | None = None) -> GaussianProcess:
    """Fit a GP to features ``F`` (n, P) and targets ``y`` (n,).

    Hyper-parameters maximise the (MAP) marginal likelihood by L-BFGS-B from deterministic starting
    points: every length scale at ``exp(s) * sqrt(P) * mean feature std`` for each ``s`` in
    ``starts`` (and ``theta0``, e.g. the hyper-parameters of a fit on more runs, when given), on the
    runs ``subset`` (indices; default all) with the targets standardised over all runs.
    With ``theta`` the hyper-parameters are taken as given (reloading a saved model exactly).
    ``groups`` (see :func:`length_groups`) shares length scales between features; ``ard=False`` is
    one group.
    """
    F = np.asarray(F, dtype=float)
    y = np.asarray(y, dtype=float)
    g = length_groups(F.shape[1], ard, groups)
    y_mean = float(y.mean())
    y_scale = float(y.std()) or 1.0
    yn = (y - y_mean) / y_scale
    n_len = int(g.max()) + 1
    converged = True
    lml = float("nan")
    if theta is None:
        Fo, yo = (F, yn) if subset is None else (F[subset], yn[subset])
        bounds = [LOG_AMPLITUDE_BOUNDS] + [LOG_LENGTH_BOUNDS] * n_len + [LOG_NOISE_BOUNDS]
        spread = float(np.log(max(F.std(axis=0).mean(), 1e-6) * np.sqrt(F.shape[1])))
        inits = [np.r_[0.0, np.full(n_len, spread + s), np.log(1e-2)] for s in starts]
        if theta0 is not None:
            inits.insert(0, np.asarray(theta0, dtype=float))
        best = None
        for t0 in inits:
            t0 = np.clip(t0, [b[0] for b in bounds], [b[1] for b in bounds])
            res = minimize(neg_log_marginal_likelihood, t0, args=(Fo, yo, ard, prior, g), jac=True,
                           method="L-BFGS-B", bounds=bounds, options={"maxiter": maxiter})
            if best is None or res.fun < best.fun:
                best = res
        theta = best.x
        converged = bool(best.success)
        lml = -float(best.fun)
    return _factorise(np.asarray(theta, dtype=float), F, y, g, y_mean, y_scale, lml, converged)
