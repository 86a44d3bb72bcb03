"""D-CPT parameter recovery (issue 8 acceptance): data sampled from the law for both losses (1% log-normal
noise, the paper's 9 ratios, 3 sizes, 10 budgets), fitted by ``mixplan.cpt.fit_cpt``; how often each
parameter's 95% interval holds the truth over 50 seeded trials, and how far the chosen ratios (Usage 1:
T = 3% relative at N = 1.8e9, D = 1e10; Usage 2: D_d = 2e9) are from the true law's.

Run: ``OMP_NUM_THREADS=1 python tests/benchmarks/dcpt_recovery.py [TRIALS] [BOOTSTRAP]`` (defaults 50, 100;
about 12 s per trial on one core). Writes ``mixplan_dcpt_recovery.json`` in the system temp directory.
"""

from __future__ import annotations

import json
import tempfile
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from test_dcpt import TRUTH_DOMAIN, TRUTH_GENERAL, U1, U2, sample_runs  # noqa: E402

from mixplan.cpt import fit_cpt, plan_cpt, usage1_ratio, usage2_ratio  # noqa: E402


def main(trials: int = 50, n_bootstrap: int = 100) -> dict:
    truth = {"general": TRUTH_GENERAL, "domain": TRUTH_DOMAIN}
    r1 = usage1_ratio(TRUTH_GENERAL, U1["params"], U1["tokens"], U1["T"], relative=True)
    r2 = usage2_ratio(TRUTH_DOMAIN, U2["params"], U2["domain_tokens"])
    hits = {f"{loss}.{k}": 0 for loss, t in truth.items() for k in t}
    all_in = {"general": 0, "domain": 0}
    err1, err2, cover1, cover2, seconds = [], [], 0, 0, []
    for seed in range(trials):
        t0 = time.perf_counter()
        N, D, R, Lg, Ld = sample_runs(seed)
        fit = fit_cpt(D, R, Lg, Ld, N, n_bootstrap=n_bootstrap, seed=seed, target_params=U1["params"])
        for loss, lf in (("general", fit.general), ("domain", fit.domain)):
            ok = [lf.intervals[k][0] <= v <= lf.intervals[k][1] for k, v in truth[loss].items()]
            for k, o in zip(truth[loss], ok):
                hits[f"{loss}.{k}"] += o
            all_in[loss] += all(ok)
        p1 = plan_cpt(fit, tokens=U1["tokens"], max_general_rise=U1["T"], relative=True)
        p2 = plan_cpt(fit, domain_tokens=U2["domain_tokens"])
        err1.append(abs(p1.domain_ratio - r1))
        err2.append(abs(p2.domain_ratio - r2))
        cover1 += p1.interval[0] <= r1 <= p1.interval[1]
        cover2 += p2.interval[0] <= r2 <= p2.interval[1]
        seconds.append(time.perf_counter() - t0)
        print(f"trial {seed}: {seconds[-1]:.1f} s, r1 {p1.domain_ratio:.4f} (true {r1:.4f}), "
              f"r2 {p2.domain_ratio:.4f} (true {r2:.4f})", flush=True)
    out = {"trials": trials, "n_bootstrap": n_bootstrap, "hits": hits, "all_parameters_inside": all_in,
           "usage1": {"true": r1, "max_abs_error": max(err1), "within_0.05": sum(e <= 0.05 for e in err1),
                      "interval_coverage": cover1},
           "usage2": {"true": r2, "max_abs_error": max(err2), "within_0.05": sum(e <= 0.05 for e in err2),
                      "interval_coverage": cover2},
           "seconds_per_trial": sum(seconds) / len(seconds)}
    print(f"\n95% intervals holding the truth, of {trials} trials ({n_bootstrap} bootstrap refits):")
    for k, v in hits.items():
        print(f"  {k:>18} {v:>3}  {'ok' if v >= 0.9 * trials else 'BELOW 90%'}")
    print(f"  all parameters of a loss at once: general {all_in['general']}, domain {all_in['domain']}")
    for u in ("usage1", "usage2"):
        d = out[u]
        print(f"{u}: true r_d {d['true']:.4f}; |chosen - true| <= 0.05 in {d['within_0.05']}/{trials} "
              f"(max {d['max_abs_error']:.4f}); interval holds the true r_d in {d['interval_coverage']}/{trials}")
    print(f"{out['seconds_per_trial']:.1f} s per trial")
    (Path(tempfile.gettempdir()) / "mixplan_dcpt_recovery.json").write_text(json.dumps(out, indent=2, sort_keys=True) + "\n")
    return out


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
