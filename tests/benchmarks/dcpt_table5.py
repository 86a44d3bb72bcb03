"""D-CPT Usage 1 against the transcribed Table 5 (chemistry, Qwen1.5-1.8B, D = 10B, T = 3%; laws.md 4.3).

The anchor (``../shared/anchors/dcpt/dcpt_usage1_table5_transcribed.csv``, a third-party transcription,
unverified) lists the law's predicted general and domain loss at 7 domain shares near the published
choice r_d = 0.924. The paper's runs and constants are not public, so the full law cannot be fitted;
what can be checked:

1. the rule on the rows as transcribed: the largest listed r_d with L_g <= 1.03 L_g0, and the linear
   crossing between the last row inside and the first outside;
2. the fitted-law rule: the D-CPT law at fixed N and D is, in r_g, ``K + B' r_g^eta + C/(r_g + eps)^gamma``;
   a 4-parameter smooth version, ``K + C/(r_g + eps)^gamma``, is fitted (least squares on log-loss) to
   the 7 transcribed general losses and ``mixplan.cpt.usage1_ratio`` applied to it;
3. self-consistency: the limit column, the within-limit flags, monotonicity, and smoothness (a law of
   this family is smooth in r; the slope between neighbouring rows should change gradually) with
   leave-one-out residuals of the smooth fit, which single out rows that no smooth curve goes through.

Run: ``python tests/benchmarks/dcpt_table5.py``. Prints a table and writes ``mixplan_dcpt_table5.json`` in the system temp directory.
"""

from __future__ import annotations

import json
import tempfile
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from mixplan.cpt import measured_crossing, usage1_ratio

ANCHOR = Path(__file__).resolve().parents[2].parent / "shared" / "anchors" / "dcpt" / "dcpt_usage1_table5_transcribed.csv"


def smooth_fit(rg: np.ndarray, L: np.ndarray) -> dict[str, float]:
    """K + C/(r_g + eps)^gamma by least squares on log L (theta: log K, log C, gamma, log eps)."""
    def resid(t):
        return np.log(np.exp(t[0]) + np.exp(t[1]) / (rg + np.exp(t[3])) ** t[2]) - np.log(L)

    best = None
    for g0 in (0.3, 1.0, 2.0):
        for e0 in (1e-3, 1e-2, 0.1):
            res = least_squares(resid, [np.log(L.min() * 0.9), np.log(0.05), g0, np.log(e0)],
                                bounds=([-5, -15, 0.0, np.log(1e-6)], [3, 5, 10, np.log(10)]))
            if best is None or res.cost < best.cost:
                best = res
    t = best.x
    return {"E_N": float(np.exp(t[0])), "C": float(np.exp(t[1])), "gamma": float(t[2]), "epsilon": float(np.exp(t[3])),
            "B": 0.0, "beta": 0.0, "eta": 1.0}


def law(p: dict[str, float], rg: np.ndarray) -> np.ndarray:
    return p["E_N"] + p["C"] / (rg + p["epsilon"]) ** p["gamma"]


def main() -> dict:
    if not ANCHOR.is_file():
        sys.exit(f"anchor not found: {ANCHOR}")
    t = pd.read_csv(ANCHOR).sort_values("r_d").reset_index(drop=True)
    rd, Lg, Ld = t["r_d"].to_numpy(), t["L_g"].to_numpy(), t["L_d"].to_numpy()
    L0, T, D = float(t["L_g0"][0]), float(t["T"][0]), float(t["D_tokens"][0])
    limit = (1 + T) * L0
    checks = {"limit_column_is_(1+T)*L_g0": bool(np.allclose(t["L_g_limit"], limit, rtol=0, atol=5e-7)),
              "within_limit_flags_match": bool(((Lg <= limit) == t["within_limit"].to_numpy()).all()),
              "L_g_increasing_in_r_d": bool((np.diff(Lg) > 0).all()),
              "L_d_decreasing_in_r_d": bool((np.diff(Ld) < 0).all())}
    inside = np.flatnonzero(Lg <= limit)
    k = int(inside[-1])
    r_listed = float(rd[k])
    r_linear = measured_crossing(rd, Lg - L0, limit - L0)[0]  # the plan's evidence rule, linear between rows
    rg = np.round(1 - rd, 12)
    p = smooth_fit(rg, Lg)
    r_law = usage1_ratio(p, None, D, T, relative=True, base_loss=L0)
    loo = []
    for i in range(len(rd)):
        keep = np.arange(len(rd)) != i
        pi = smooth_fit(rg[keep], Lg[keep])
        loo.append(float(Lg[i] - law(pi, rg[i])))
    slope_g, slope_d = np.diff(Lg) / np.diff(rd), np.diff(Ld) / np.diff(rd)
    print(f"Table 5 (transcribed): chemistry, Qwen1.5-1.8B, D = {D:.3g}, T = {T:.0%}, L_g0 = {L0}, limit {limit:.6f}\n")
    print(f"{'r_d':>6} {'L_g':>8} {'smooth fit':>10} {'resid':>8} {'LOO resid':>9} {'slope L_g':>9} "
          f"{'L_d':>8} {'slope L_d':>9} {'inside':>6}")
    for i in range(len(rd)):
        sg = f"{slope_g[i - 1]:9.3f}" if i else " " * 9
        sd = f"{slope_d[i - 1]:9.3f}" if i else " " * 9
        print(f"{rd[i]:6.3f} {Lg[i]:8.4f} {law(p, rg[i]):10.4f} {Lg[i] - law(p, rg[i]):+8.4f} {loo[i]:+9.4f} {sg} "
              f"{Ld[i]:8.4f} {sd} {str(bool(Lg[i] <= limit)):>6}")
    print("\n(slopes are to the row from the one above)")
    print("\nUsage 1 rule                               r_d")
    print(f"  published (transcribed)                  {float(t['published_optimal_r_d'][0]):.4f}")
    print(f"  largest listed row within the limit      {r_listed:.4f}")
    print(f"  linear crossing between rows             {r_linear:.4f}")
    print(f"  fitted smooth law + mixplan usage1_ratio {r_law:.4f}   (fit: {', '.join(f'{k} {v:.4g}' for k, v in p.items() if k in ('E_N', 'C', 'gamma', 'epsilon'))})")
    print("\nconsistency checks: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in checks.items()))
    out = {"limit": limit, "checks": checks, "r_published": float(t["published_optimal_r_d"][0]), "r_listed": r_listed,
           "r_linear": r_linear, "r_fitted_law": r_law, "smooth_fit": p, "loo_residuals": dict(zip(map(str, rd), loo)),
           "slope_L_g": slope_g.tolist(), "slope_L_d": slope_d.tolist()}
    (Path(tempfile.gettempdir()) / "mixplan_dcpt_table5.json").write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    return out


if __name__ == "__main__":
    main()
