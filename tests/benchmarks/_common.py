"""Helpers shared by the benchmark scripts (run as ``python tests/benchmarks/NAME.py``, which puts
this folder on ``sys.path``)."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mixplan.cli import main as mixplan_main

REPO = Path(__file__).resolve().parents[2]
REGMIX_ANCHORS = REPO.parent / "shared" / "anchors" / "regmix"
#: The size of ``sail/regmix-data`` (regmix.md section 2): a RegMix pool's tokens are its Pile token share of it.
SAIL_REGMIX_TOKENS = 250e9
#: The judges of RegMix's benchmarks, fitted on the 256 ``test`` runs: the ``regmix`` preset (LightGBM, the
#: judge issue 25 names), a GP, and ``auto`` (mixplan's CV choice).
TEST_JUDGES = ("regmix", "gp", "auto")
#: RegMix's selection recipe (regmix.md section 6): this many draws from Dirichlet(prior), the mean of the best TOP_K.
N_DRAWS, TOP_K = 100_000, 128


class Refused(RuntimeError):
    """``mixplan`` exited with an error; the message is its last stderr line."""


def run_cli(*argv: object) -> str:
    """Run ``mixplan ARGV`` in-process; return its stdout, raise :class:`Refused` on a non-zero exit."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = mixplan_main([str(a) for a in argv])
    if rc != 0:
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        raise Refused(lines[-1] if lines else f"exit code {rc}")
    return out.getvalue()


def cli(*argv: object) -> str:
    """:func:`run_cli`, stopping the script with mixplan's message when it fails."""
    try:
        return run_cli(*argv)
    except Refused as exc:
        sys.exit(f"mixplan {' '.join(map(str, argv))} failed: {exc}")


def regmix_anchor_dir() -> Path:
    if not (REGMIX_ANCHORS / "regmix_proxy_runs.csv").is_file():
        sys.exit(f"RegMix anchor data not found in {REGMIX_ANCHORS} (expected ../shared/anchors/regmix beside the "
                 "repo)")
    return REGMIX_ANCHORS


def regmix_study(target: str):
    """RegMix's study read in place: its pools (tokens = the token share x :data:`SAIL_REGMIX_TOKENS`, so the prior is
    RegMix's), the 512 ``train`` and 256 ``test`` runs (renormalised) and ``target``'s objective."""
    import pandas as pd

    from mixplan import Pool, PoolSet, parse_objective, read_runs

    anchors = regmix_anchor_dir()
    domains = pd.read_csv(anchors / "regmix_domains.csv")
    pools = PoolSet(tuple(Pool(d.domain, tokens=float(d.prior_token_share * SAIL_REGMIX_TOKENS))
                          for d in domains.itertuples()))
    train, test = (read_runs(anchors / "regmix_proxy_runs.csv", pools, renormalize=True, where={"split": split})
                   for split in ("train", "test"))
    return pools, train, test, parse_objective(target, train)


def fit_test_judges(test, objective, kinds=TEST_JUDGES) -> dict:
    """One model of each kind fitted on the test runs (seed 0, one thread): ``{kind: model}``."""
    from mixplan import fit_model

    return {kind: fit_model(test, objective, kind, seed=0, jobs=1) for kind in kinds}


def judge_scores(judges: dict, objective, w) -> dict:
    """Each judge's score of the mixture ``w`` (in the objective's score units, smaller is better):
    ``{name: score}``."""
    import numpy as np

    return {name: float(objective.score(judge.predict_mean(np.atleast_2d(w)))[0]) for name, judge in judges.items()}


def judge_accuracy(judges: dict, runs, objective, target: str) -> list[dict]:
    """How well each judge predicts ``runs`` it never saw (the train runs): everywhere, and on their best tenth
    (where plans aim; a judge that regresses them toward the mean cannot credit a mixture better than the runs it
    saw), with its lowest prediction over them against the lowest measured. In the objective's score units
    (smaller is better)."""
    import numpy as np
    import pandas as pd

    y = np.asarray(objective.score(objective.values(runs)), dtype=float)
    best = y <= np.quantile(y, 0.1)
    rows = []
    for name, judge in judges.items():
        pred = np.asarray(objective.score(judge.predict_mean(runs.weights)), dtype=float)
        rows.append({"target": target, "judge": name, "rmse": float(np.sqrt(np.mean((pred - y) ** 2))),
                     "spearman": float(pd.Series(pred).corr(pd.Series(y), method="spearman")),
                     "best_tenth_bias": float(np.mean(pred[best] - y[best])),
                     "best_tenth_spearman": float(pd.Series(pred[best]).corr(pd.Series(y[best]), method="spearman")),
                     "lowest_prediction": float(pred.min()), "lowest_measured": float(y.min())})
    return rows


def regmix_recipe(predict, prior, seed: int):
    """RegMix's recipe: :data:`N_DRAWS` draws from Dirichlet(``prior``) with ``np.random.RandomState(seed)``, all
    predicted by ``predict`` (smaller is better), the mean of the :data:`TOP_K` best."""
    import numpy as np

    W = np.random.RandomState(seed).dirichlet(prior, N_DRAWS)
    return W[np.argsort(np.asarray(predict(W)), kind="stable")[:TOP_K]].mean(axis=0)


def write_results(args, doc: dict, t0: float) -> None:
    """Print the runtime since ``t0`` and write ``doc`` (with the settings ``args`` and ``runtime_s``) as JSON to
    ``args.out``."""
    import json

    runtime = time.perf_counter() - t0
    print(f"runtime {runtime:.1f} s")
    doc = {"settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}} | doc
    args.out.write_text(json.dumps(doc | {"runtime_s": runtime}, indent=2) + "\n", encoding="utf-8")
    print(f"results written to {args.out}")


def timed_fresh(argv: list[str]) -> float:
    """Wall seconds of ``mixplan ARGV`` in a fresh process (what a user waits for), from the repository
    folder, one thread, output discarded."""
    cmd = [sys.executable, "-c", "import sys; from mixplan.cli import main; sys.exit(main(sys.argv[1:]))", *argv]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=REPO, env=dict(os.environ, OMP_NUM_THREADS="1"), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t0


def comma_list(text: str) -> list[str]:
    """``'a, b,c'`` -> ``['a', 'b', 'c']``: a list-valued command-line option."""
    return [t.strip() for t in text.split(",") if t.strip()]


def known_truth_options(ap, runs: int, out: str, candidates: int = 2000) -> None:
    """The options of :func:`known_truth_worlds`' studies: --worlds, --runs (default ``runs``), --pools, --noise,
    the plans' --candidates, and --out (default ``out`` in the temporary folder)."""
    ap.add_argument("--worlds", type=int, default=10)
    ap.add_argument("--runs", type=int, default=runs, help="runs per study")
    ap.add_argument("--pools", type=int, default=8)
    ap.add_argument("--noise", type=float, default=0.02)
    ap.add_argument("--candidates", type=int, default=candidates)
    ap.add_argument("--out", type=Path, default=Path(tempfile.gettempdir()) / out)


def known_truth_worlds(args, prior_mix: float):
    """Each of the ``args.worlds`` studies of :func:`known_truth_world` (options of :func:`known_truth_options`),
    their runs in a temporary folder: yields ``(world, study, pools, runs, objective, truth)``."""
    with tempfile.TemporaryDirectory(prefix="mixplan_known_truth_") as tmp:
        for world in range(args.worlds):
            yield (world, *known_truth_world(world, args.pools, args.runs, args.noise, prior_mix, Path(tmp)))


def known_truth_world(world: int, n_pools: int, n_runs: int, noise: float, prior_mix: float, folder: Path):
    """A known-truth study of the prior and search benchmarks: ``mixplan.demo.synthetic.make_study`` (seed
    ``world``), a prior that is ``prior_mix`` x its true optimum + the rest a random mixture (each pool 1e9
    tokens), ``n_runs`` noisy runs written under ``folder`` and read back, the objective ``loss``, and the true
    optimum's value (the search on the true objective, 20,000 candidates and refinement).

    Returns ``(study, pools, runs, objective, truth)``."""
    import numpy as np

    from mixplan import Pool, PoolSet, parse_objective, read_runs
    from mixplan.demo.synthetic import make_study
    from mixplan.simplex import build_constraints, search

    study = make_study(n_pools, seed=world)
    rng = np.random.default_rng(1000 + world)
    prior = prior_mix * study.w_star + (1 - prior_mix) * rng.dirichlet(np.ones(n_pools))
    pools = PoolSet(tuple(Pool(n, tokens=1e9, prior=float(p)) for n, p in zip(study.names, prior)))
    path = Path(folder) / f"runs_{world}.csv"
    study.runs(n_runs, seed=2000 + world, noise=noise).to_csv(path, index=False)
    runs = read_runs(path, pools)
    truth = float(search(lambda W, fast: study.true_objective(W), build_constraints(pools), pools.prior, seed=0,
                         n_candidates=20_000).score)
    return study, pools, runs, parse_objective("loss", runs), truth
