"""``mixplan filter``: the best keep-fraction of a quality-bucketed pool per budget; fits; bucketing.

Four uses of one command (thin layer over :mod:`mixplan.filtering` and :mod:`mixplan.data.buckets`)::

    # plan from the manifest's (b, tau) or a fit: best keep-fraction per budget, crossovers, curve
    mixplan filter --pools pools.toml --budget-range 2e7:1e10 --budget-steps 400 --out filter/
    mixplan filter --pools pools.toml --fit filter/FIT.json --budget 1e8,1e9 --objective effective_utility

    # fit each bucket's (b, tau) from runs (bucket, samples, epochs or pool_size, metric) -> FIT.json
    mixplan filter --pools pools.toml --runs bucket_runs.csv --target error --out fit/ [--budget ...]

    # bucket real scores: cut-offs and sizes (documents, tokens) for top fractions + a manifest snippet
    mixplan filter --bucket-scores docs.parquet --score fasttext_hq --fractions 0.1,0.2,0.3 \\
        --text-column text --pool-name web --out buckets/
    mixplan filter --bucket-scores docs.parquet --score '0.7*dclm + 0.3*fasttext_hq' --fractions 0.1,0.2

    # which rating to filter by: runs (score, keep, [tokens], metric) -> ratings.json, ratings.csv
    mixplan filter --runs rating_runs.csv --target error [--documents docs.parquet] --out ratings/

``add_arguments`` declares the options (``--json``, ``--seed``, ``--debug`` come from ``mixplan.cli``'s
``add_common``, which ``build_parser`` adds to every command); ``run`` runs it and returns 0.
Errors are :class:`mixplan.MixplanError` (one line on stderr, exit 2, via ``mixplan.cli.main``).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np

from .._io import check_writable, table_columns, write_json_atomic, write_table_atomic, write_text_atomic
from ..exceptions import ValidationError
from .common import add_report_option, emit, parse_budget_range, report_path
from .common import BOOTSTRAP, LEVEL, Number

__all__ = ["HELP", "add_arguments", "run"]

HELP = ("quality filtering by compute: the best keep-fraction of a bucketed pool per budget (QQT), "
        "bucket fits from runs, bucket cut-offs from scores")


def add_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("plan (best keep-fraction per budget)")
    g.add_argument("--pools", metavar="POOLS", help="pool manifest (TOML) with a bucketed pool (score, buckets)")
    g.add_argument("--pool", metavar="NAME", help="which bucketed pool, if the manifest has several")
    g.add_argument("--fit", metavar="FIT.json", help="bucket parameters fitted by 'mixplan filter --runs' "
                   "(default: b and tau from the manifest, without intervals)")
    g.add_argument("--budget", metavar="N1,N2,...", help="budgets (samples or tokens seen, the law's unit), e.g. "
                   "1e8,1e9")
    g.add_argument("--budget-range", metavar="LO:HI", help="a log-spaced grid of budgets from LO to HI")
    g.add_argument("--budget-steps", type=Number(int, 2, 10_000), default=50, metavar="K",
                   help="points of --budget-range (default 50)")
    g.add_argument("--objective", choices=["effective_utility", "effective_data"],
                   help="QQT law: repetition decays the utility (exponent) or the sample count (default: the "
                        "fit's, else the manifest's law.objective)")
    g.add_argument("--tau-scaling", action=argparse.BooleanOptionalAction, default=True,
                   help="multiply each bucket's half-life by the number of buckets in the union, as the authors' "
                        "driver does (default on; Goyal et al. 2024)")
    g.add_argument("--level", type=LEVEL, default=0.95, help="interval level (0.95)")
    f = p.add_argument_group("fit (each bucket's b and tau from runs)")
    f.add_argument("--runs", metavar="RUNS", help="runs table: bucket (name or union such as top_20), samples (or "
                   "tokens) seen, epochs or pool_size (default: the manifest's bucket sizes), and --target; or, to "
                   "choose the rating to filter by (no --pools), score (the spec a run filtered by), keep (the "
                   "fraction kept), optional tokens, and --target")
    f.add_argument("--documents", metavar="FILE", help="with ratings runs (score, keep): the pool's documents with "
                   "every score column (CSV, TSV, Parquet, JSONL, datasets .arrow); models the target from the kept "
                   "sets' scores and learns a weighted composite")
    f.add_argument("--target", metavar="SPEC", help="the metric (an error or loss: lower is better): a column, or a "
                   "weighted sum such as 'mean(err_*)'")
    f.add_argument("--free", metavar="a,d", help="also choose the shared a and/or d by a grid scan "
                   "(default: fixed, from the manifest's law table or the authors' values)")
    f.add_argument("--bootstrap", type=BOOTSTRAP, default=200,
                   help="bootstrap refits per bucket for the intervals (200)")
    s = p.add_argument_group("bucket real scores")
    s.add_argument("--bucket-scores", metavar="FILE", help="table of documents (CSV, TSV, Parquet, JSONL, or a "
                   "datasets .arrow file) with a score column")
    s.add_argument("--score", metavar="SPEC", help="the score column to bucket by (one of several is fine), or a "
                   "weighted composite such as '0.7*dclm + 0.3*fasttext' (of the columns' rank-based normal scores)")
    s.add_argument("--fractions", metavar="F1,F2,...", help="cumulative top fractions, e.g. 0.1,0.2,0.3,0.4")
    s.add_argument("--tokens-column", metavar="COL", help="token count per document")
    s.add_argument("--text-column", metavar="COL", help="count tokens from this text column instead (see --count)")
    s.add_argument("--count", choices=["bytes", "words"], default="bytes",
                   help="how --text-column is counted: UTF-8 bytes (default) or whitespace words")
    s.add_argument("--lower-is-better", action="store_true", help="lower scores are better (e.g. perplexity)")
    s.add_argument("--pool-name", default="POOL", metavar="NAME", help="pool name in the manifest snippet")
    add_report_option(p)
    p.add_argument("--out", metavar="DIR", help="write the outputs here (filter.json, best.csv, curve.csv; FIT.json "
                   "when fitting; buckets.csv and pool_snippet.toml when bucketing; ratings.json and ratings.csv "
                   "when choosing a rating)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")


def _floats(text: str, flag: str, example: str) -> list[float]:
    try:
        values = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        values = []
    if not values:
        raise ValidationError(f"{flag} {text!r}: write numbers separated by commas, e.g. {flag} {example}")
    return values


def _budgets(args: argparse.Namespace) -> list[float] | None:
    if args.budget and args.budget_range:
        raise ValidationError("give the budgets as --budget N1,N2,... or as --budget-range LO:HI, not both")
    if args.budget:
        values = _floats(args.budget, "--budget", "1e8,1e9")
        bad = [v for v in values if not (math.isfinite(v) and v > 0)]
        if bad:
            raise ValidationError(f"--budget: {bad[0]:g} is not a positive budget; budgets are samples or tokens "
                                  "seen, > 0 (e.g. --budget 1e8,1e9)")
        return values
    if args.budget_range:

        a, b = parse_budget_range(args.budget_range, "2e7:1e10")
        # logspace, as the grid of the published fits' best-union switch points (reproduced in
        # tests/laws/test_qqt.py and tests/filtering/test_planner.py): geomspace differs in the last
        # bits of some points.
        return [float(x) for x in np.logspace(np.log10(a), np.log10(b), args.budget_steps)]
    return None


def _spec(args: argparse.Namespace) -> Any:
    from ..data.pools import load_pools

    pools = load_pools(args.pools)
    bucketed = pools.bucketed
    if args.pool:
        pool = pools.by_name(args.pool)
        if pool.buckets is None:
            raise ValidationError(f"{args.pools}: pool {args.pool!r} has no buckets; bucketed pools: "
                                  f"{[p.name for p in bucketed] or 'none'}")
        return pool.buckets
    if not bucketed:
        raise ValidationError(f"{args.pools}: no pool declares buckets; add score = \"...\" and buckets = [0.1, 0.2, "
                              "...] to the pool to filter (see mixplan/data/buckets.py)")
    if len(bucketed) > 1:
        raise ValidationError(f"{args.pools}: several bucketed pools {[p.name for p in bucketed]}; choose one with "
                              "--pool NAME")
    return bucketed[0].buckets


def _bucket_scores(args: argparse.Namespace) -> int:
    from ..filtering.scores import bucket_scores, manifest_snippet, read_scores

    if not args.score or not args.fractions:
        raise ValidationError("--bucket-scores needs --score COL (the score to bucket by) and --fractions, e.g. "
                              "--fractions 0.1,0.2,0.3")
    other = [f for f, v in (("--pools", args.pools), ("--runs", args.runs), ("--fit", args.fit),
                            ("--budget", args.budget), ("--budget-range", args.budget_range),
                            ("--documents", args.documents)) if v]
    if other:
        raise ValidationError(f"{other[0]} does not go with --bucket-scores: bucket the scores first, put the "
                              "snippet in the manifest, then plan with --pools")
    if args.tokens_column and args.text_column:
        raise ValidationError("give --tokens-column or --text-column, not both")
    fractions = _floats(args.fractions, "--fractions", "0.1,0.2,0.3")
    files = []
    if args.out:
        out = Path(args.out)
        files = [out / "buckets.csv", out / "pool_snippet.toml"]
        check_writable(files, args.force)
    scores, tokens = read_scores(args.bucket_scores, args.score, tokens_column=args.tokens_column,
                                 text_column=args.text_column, count=args.count)
    table = bucket_scores(scores, fractions, tokens=tokens, higher_is_better=not args.lower_is_better)
    from ..filtering.ratings import parse_composite

    try:
        spec = parse_composite(args.score)
    except ValidationError:  # a column whose name is no spec (read_scores found it)
        spec = None
    composite = spec is not None and not spec.single and args.score not in (table_columns(args.bucket_scores) or ())
    score = spec.spec if composite else args.score  # canonical: the manifest's score label and the JSON's
    note = ("a composite: the weighted sum of each column's rank-based normal scores over these "
            f"{len(scores)} documents (mixplan.filtering.ratings.composite_scores)") if composite else None
    snippet = manifest_snippet(table, pool=args.pool_name, score=score, score_note=note,
                               total_tokens=None if tokens is None else float(tokens.sum()),
                               total_documents=len(scores), higher_is_better=not args.lower_is_better)
    if files:
        write_table_atomic(files[0], table, force=args.force)
        write_text_atomic(files[1], snippet, force=args.force)
    doc = {"source": str(args.bucket_scores), "score": score, "documents": int(len(scores)),
           "tokens": None if tokens is None else float(tokens.sum()), "buckets": table.to_dict(orient="records"),
           "snippet": snippet, "outputs": [str(f) for f in files]}
    from .._io import table_csv

    text = (f"{args.bucket_scores}: {len(scores)} documents bucketed by {score!r}\n" + table_csv(table)
            + "\n" + snippet + "".join(f"written: {f}\n" for f in files)).rstrip("\n")

    emit(args, doc, text)
    return 0


def _is_ratings_runs(path: str) -> bool:
    """RUNS is a ratings table (score and keep columns, no bucket): read from its header when possible."""
    from ..filtering.ratings import is_ratings_table

    columns = table_columns(path)
    if columns is None:
        from .._io import read_table

        columns = [str(c) for c in read_table(path).columns]
    return is_ratings_table(columns)


def _ratings(args: argparse.Namespace) -> int:
    """Which rating (score spec) to filter by, from runs filtered by different ones (mixplan.filtering.ratings)."""
    from .._io import read_table
    from ..filtering.ratings import fit_ratings
    from ..filtering.scores import read_documents

    if args.pools:
        raise ValidationError(f"{args.runs} has 'score' and 'keep' columns: a ratings fit (which score to filter by), "
                              "which needs no --pools; drop --pools, or give a bucket fit's runs a 'bucket' column")
    other = [f for f, v in (("--pool", args.pool), ("--fit", args.fit), ("--budget", args.budget),
                            ("--budget-range", args.budget_range), ("--objective", args.objective),
                            ("--free", args.free), ("--fractions", args.fractions), ("--score", args.score),
                            ("--tokens-column", args.tokens_column), ("--text-column", args.text_column),
                            ("--lower-is-better", args.lower_is_better), ("--report", args.report is not None)) if v]
    if other:
        raise ValidationError(f"{other[0]} does not go with a ratings fit (runs with score and keep columns); it "
                              "takes --target, --documents, --bootstrap, --seed and --out")
    files = []
    if args.out:
        files = [Path(args.out) / "ratings.json", Path(args.out) / "ratings.csv"]
        check_writable(files, args.force)  # before any work: nothing is half-written
    documents = read_documents(args.documents) if args.documents else None
    fit = fit_ratings(read_table(args.runs), args.target, documents, seed=args.seed, n_bootstrap=args.bootstrap,
                      where=str(args.runs), documents_where=str(args.documents) if args.documents else "documents")
    doc = fit.to_dict()
    if files:
        write_json_atomic(files[0], doc, force=args.force)
        write_table_atomic(files[1], fit.candidates_table(), force=args.force)
    doc["outputs"] = [str(f) for f in files]
    emit(args, doc, fit.report() + "".join(f"\nwritten: {f}" for f in files))
    return 0


def run(args: argparse.Namespace) -> int:
    """Run ``mixplan filter`` (see the module docstring); returns the exit code 0 or raises MixplanError."""
    if args.bucket_scores:
        return _bucket_scores(args)
    if args.runs and not args.target:
        raise ValidationError("--runs needs --target COL: the metric column (an error or loss, lower is better)")
    if args.runs and _is_ratings_runs(args.runs):
        return _ratings(args)
    if args.documents:
        raise ValidationError("--documents goes with ratings runs (--runs RUNS with score and keep columns): the "
                              "pool's documents, to model the target from the kept sets' scores")
    from .._io import read_table
    from ..filtering.planner import FilterFit, fit_buckets, plan_filter

    if not args.pools:
        raise ValidationError("mixplan filter needs --pools POOLS (a manifest with a bucketed pool), or "
                              "--bucket-scores FILE to compute buckets from scores")
    budgets = _budgets(args)
    if args.runs and args.fit:
        raise ValidationError("give --runs (fit the buckets now) or --fit FIT.json (a saved fit), not both")
    if not args.runs and (args.target or args.free):
        raise ValidationError("--target and --free go with --runs RUNS (fitting the buckets)")
    if budgets is None and not args.runs:
        raise ValidationError("no budgets: pass --budget N1,N2,... or --budget-range LO:HI (samples or tokens seen)")
    spec = _spec(args)
    out = Path(args.out) if args.out else None
    files: dict[str, Path] = {}
    if out is not None:
        if args.runs:
            files["fit"] = out / "FIT.json"
        if budgets is not None:
            files |= {"plan": out / "filter.json", "best": out / "best.csv", "curve": out / "curve.csv"}
    report = report_path(args, args.out)
    if report is not None:
        if budgets is None:
            raise ValidationError("--report draws a filter plan: give --budget or --budget-range")
        files["report"] = report
    if files:
        check_writable(files.values(), args.force)  # before any work: nothing is half-written
    doc: dict[str, Any] = {}
    texts = []
    fit = None
    if args.runs:
        free = [x.strip() for x in (args.free or "").split(",") if x.strip()]
        fit = fit_buckets(spec, read_table(args.runs), args.target, objective=args.objective, free=free,
                          n_bootstrap=args.bootstrap, level=args.level, seed=args.seed, where=str(args.runs))
        doc["fit"] = {k: v for k, v in fit.to_dict().items() if k != "buckets"} | {
            "buckets": [{k: v for k, v in b.to_dict().items() if k != "bootstrap"} for b in fit.buckets]}
        texts.append(fit.report())
    elif args.fit:
        fit = FilterFit.load(args.fit)
    if budgets is not None:
        plan = plan_filter(spec, budgets, fit=fit, objective=args.objective, tau_scaling=args.tau_scaling,
                           level=args.level)
        doc["plan"] = plan.to_dict()
        texts.append(plan.report())
    if "fit" in files:
        fit.save(files["fit"], force=args.force)
    if "plan" in files:
        write_json_atomic(files["plan"], doc["plan"], force=args.force)
        write_table_atomic(files["best"], plan.best_table(), force=args.force)
        write_table_atomic(files["curve"], plan.curve_table(), force=args.force)
    if "report" in files:
        from ..report.results import filter_report

        filter_report(files["report"], doc["plan"], plan.curve_table(), force=args.force)
    doc["outputs"] = {k: str(v) for k, v in files.items()}
    texts += [f"written: {v}" for v in files.values()]

    emit(args, doc, "\n".join(texts))
    return 0
