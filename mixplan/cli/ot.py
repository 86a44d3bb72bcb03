"""mixplan ot fit | predict | select: the optimal-transport extrapolator (Projektor)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


from .._io import check_table_writable, check_writable, write_json_atomic, write_table_atomic
from ..exceptions import ValidationError
from .common import Parser, add_common, add_report_option, emit, load_pools, parse_named_numbers, report_path
from .common import LEVEL, Number, POSITIVE

HELP = "optimal-transport extrapolator: ot fit | ot predict | ot select (Projektor)"

#: Its options live on its subcommands.
COMMON_OPTIONS = False


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="ot_command", metavar="fit|predict|select", parser_class=Parser)
    f = sub.add_parser("fit", help="embed revealed pool samples and a validation set; fit stage 1 at each training "
                                   "size of the runs and stage 2 (ln-size line) between two of them",
                       description="Fit the optimal-transport extrapolator (Projektor): embed the pools' revealed "
                                   "samples and a validation set, fit stage 1 (the metric against each mixture's OT "
                                   "distance to the validation set) at each training size of the runs and stage 2 (a "
                                   "line in ln size) between two of them; write the study to --out DIR.")
    f.add_argument("--runs", action="append", required=True, metavar="RUNS",
                   help="proxy-run table with a tokens column (repeatable: e.g. runs at two sizes)")
    f.add_argument("--pools", metavar="POOLS", help="pool manifest (weight columns must match it)")
    f.add_argument("--target", required=True, metavar="SPEC", help="metric column or weighted sum, as in fit")
    f.add_argument("--maximize", action="store_true", help="larger target values are better")
    f.add_argument("--samples", required=True, metavar="FILE|demo",
                   help="revealed samples: a table with pool and text columns (or vectors), or 'demo'")
    f.add_argument("--validation", required=True, metavar="FILE|demo:NAME",
                   help="validation set: a table with a text column (or vectors), or demo:NAME (e.g. demo:reviews)")
    f.add_argument("--features", default="text", choices=["text", "minilm", "vectors"],
                   help="text: hashing + TF-IDF + SVD (default); minilm: sentence embeddings (extra 'embeddings'); "
                        "vectors: the files hold vectors already")
    f.add_argument("--vector-column", metavar="COL", help="with --features vectors: the vector column (or 'v*')")
    f.add_argument("--components", type=Number(int, 1, 4096), default=64,
                   help="SVD dimensions of the text features (64)")
    f.add_argument("--per-pool", type=Number(int, 1, 10_000_000), metavar="N",
                   help="at most N revealed samples per pool (demo: 200)")
    f.add_argument("--check-runs", metavar="RUNS",
                   help="runs at one size above the fitted ones: calibrate stage 2 for curvature (shift + wider "
                        "intervals growing as s(s-1))")
    f.add_argument("--anchors", metavar="N0,N1", help="the two training sizes for stage 2 (default: the two largest)")
    f.add_argument("--size-space", default="linear", choices=["linear", "log"],
                   help="stage 2 on the metric (the paper) or on its logarithm")
    f.add_argument("--offset-squares", action="store_true", help="add the c2 w_i^2 terms to stage 1")
    f.add_argument("--method", default="auto", choices=["auto", "exact", "sinkhorn"],
                   help="OT solver: auto (default: exact up to 4000 x 4000 sample pairs, else Sinkhorn with its "
                        "error on a subsample reported), exact, sinkhorn")
    f.add_argument("--level", type=LEVEL, default=0.9, help="interval level (0.9)")
    f.add_argument("--out", required=True, metavar="DIR", help="write the study here")
    add_report_option(f)
    f.add_argument("--force", action="store_true", help="overwrite an existing study")
    pr = sub.add_parser("predict", help="predict the metric at a training size for mixtures, with intervals",
                        description="Predict the metric of each mixture of a table at a training size (--tokens) "
                                    "from a study written by 'mixplan ot fit', with intervals, its OT distance and "
                                    "whether the proxy runs cover it.")
    pr.add_argument("study", metavar="DIR", help="a study written by 'mixplan ot fit --out DIR'")
    pr.add_argument("runs", metavar="MIXTURES", help="table of mixtures (w_<pool> columns)")
    pr.add_argument("--tokens", type=POSITIVE, required=True, metavar="N", help="training size to predict at")
    pr.add_argument("--renormalize", action=argparse.BooleanOptionalAction, default=False,
                    help="divide each row's weights by their sum")
    pr.add_argument("--out", required=True, metavar="PRED.csv",
                    help="the predictions table; its suffix chooses the format (.csv, .tsv, .parquet, .json, .jsonl)")
    pr.add_argument("--force", action="store_true", help="overwrite an existing output")
    se = sub.add_parser("select", help="the best mixture at a training size by projected gradient on OT duals",
                        description="Select the best mixture at a training size (--tokens) from a study written by "
                                    "'mixplan ot fit': projected gradient descent on the OT duals, within the "
                                    "manifest's floors and caps and the pinned weights.")
    se.add_argument("study", metavar="DIR", help="a study written by 'mixplan ot fit --out DIR'")
    se.add_argument("--tokens", type=POSITIVE, required=True, metavar="N", help="training size to select for")
    se.add_argument("--pools", metavar="POOLS", help="manifest: floors, caps and availability at --tokens")
    se.add_argument("--pin", action="append", default=[], metavar="POOL=W", help="fix a pool's weight")
    se.add_argument("--max-iter", type=Number(int, 1, 1_000_000), default=100,
                    help="projected-gradient iterations at most (100)")
    se.add_argument("--time-limit", type=POSITIVE, metavar="S", help="stop the descent after S seconds")
    se.add_argument("--out", metavar="SELECTION.json")
    se.add_argument("--report", metavar="FILE", help="also write an offline HTML report: the selected mixture against "
                    "simple ones, and the search")
    se.add_argument("--force", action="store_true", help="overwrite an existing output")
    add_common(f)
    for q in (pr, se):  # predicting and the descent are deterministic
        add_common(q, seeded=False)


def _ot_runs(paths: Sequence[str], pools: Any) -> Any:
    """Several run tables as one (each validated against the manifest), with a tokens column."""
    import pandas as pd

    from ..data.runs import read_runs, validate_runs

    tables = [read_runs(path, pools) for path in paths]
    for t in tables:
        if "tokens" not in t.frame.columns:
            raise ValidationError(f"{t.source}: no tokens column; the OT extrapolator needs each run's training "
                                  "size")
        if [*t.pools] != [*tables[0].pools]:
            raise ValidationError(f"{t.source}: pools {t.pools} differ from {tables[0].source}'s {tables[0].pools}")
    if len(tables) == 1:
        return tables[0]
    return validate_runs(pd.concat([t.frame for t in tables], ignore_index=True), pools,
                         source=" + ".join(t.source for t in tables))


def _ot_constraints(args: argparse.Namespace, est: Any) -> Any:
    from ..simplex import build_constraints

    pools = load_pools(args.pools)
    if pools is None:
        from ..data.pools import PoolSet

        pools = PoolSet.from_names(est.pools_)
    if pools.names != est.pools_:
        raise ValidationError(f"{args.pools}: pools {pools.names} differ from the study's {est.pools_} (same order)")
    c = build_constraints(pools, args.tokens if args.pools else None, parse_named_numbers(args.pin))
    if c.group_names:  # the OT selection bounds each pool, not sums of pools
        raise ValidationError(f"{args.pools}: the manifest groups pools ({', '.join(c.group_names)}); the OT "
                              "extrapolator's selection bounds each pool only: use a manifest without groups")
    return c


def run(args: argparse.Namespace) -> int:
    if args.ot_command not in ("fit", "predict", "select"):
        raise ValidationError("mixplan ot: choose a subcommand: fit, predict or select")
    return {"fit": _ot_fit, "predict": _ot_predict, "select": _ot_select}[args.ot_command](args)


def _samples(spec: str, *, pooled: bool, per_pool: int | None = None, seed: int = 0, vectors: bool = False,
             column: str | None = None) -> Any:
    """Samples from a file, or the demo study's (``demo``, ``demo:NAME``: the library never imports the demo)."""
    from ..demo.samples import is_demo_spec, read_demo_samples
    from ..transport.study import read_samples

    if is_demo_spec(spec):
        return read_demo_samples(spec, pooled=pooled, per_pool=per_pool, seed=seed)
    return read_samples(spec, pooled=pooled, per_pool=per_pool, seed=seed, vectors=vectors, column=column)


def _ot_fit(args: argparse.Namespace) -> int:
    from ..data.objective import parse_objective
    from ..transport.study import fit_ot_study, save_ot_study, study_files

    report = report_path(args, args.out)
    check_writable(study_files(args.out) + ([report] if report else []), args.force)
    pools = load_pools(args.pools)
    runs = _ot_runs(args.runs, pools)
    objective = parse_objective(args.target, runs, maximize=args.maximize)
    anchors = None
    if args.anchors:
        try:
            anchors = tuple(float(v) for v in args.anchors.split(","))
        except ValueError:
            raise ValidationError(f"--anchors {args.anchors!r}: write two sizes, e.g. --anchors 5e5,1e6") from None
    vectors = args.features == "vectors"
    samples = _samples(args.samples, pooled=True, per_pool=args.per_pool, seed=args.seed, vectors=vectors,
                       column=args.vector_column)
    validation = _samples(args.validation, pooled=False, seed=args.seed, vectors=vectors, column=args.vector_column)
    feat, est = fit_ot_study(runs.weights, runs.frame["tokens"].to_numpy(dtype=float), objective.values(runs),
                             runs.pools, samples, validation, run_ids=runs.run_ids,
                             features="text" if vectors else args.features, components=args.components,
                             seed=args.seed, anchors=anchors, size_space=args.size_space,
                             offset_squares=args.offset_squares, method=args.method, level=args.level,
                             maximize=objective.maximize)
    if args.check_runs:
        check = _ot_runs([args.check_runs], pools)
        est.calibrate(check.weights, check.frame["tokens"].to_numpy(dtype=float), objective.values(check),
                      run_ids=check.run_ids, source=check.source)
    paths = save_ot_study(args.out, feat, est, force=args.force)
    if report:
        from ..report.results import ot_fit_report

        ot_fit_report(report, est, objective.spec, force=args.force)
        paths = [*paths, report]
    emit(args, est.to_dict() | {"objective": objective.to_dict(), "out": [str(p) for p in paths]},
          est.report() + f"\nwritten: {', '.join(map(str, paths))}")
    return 0


def _ot_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..transport.extrapolator import extrapolation_notes
    from ..transport.study import load_ot_study
    from ..data.pools import PoolSet
    from ..data.runs import read_runs

    est = load_ot_study(args.study)
    check_table_writable(args.out, args.force)
    runs = read_runs(args.runs, PoolSet.from_names(est.pools_), renormalize=args.renormalize)
    pred = est.predict(runs.weights, args.tokens)
    notes = extrapolation_notes(pred)
    frame = pd.DataFrame({"run_id": runs.run_ids, "tokens": args.tokens, "prediction": pred.mean,
                          "lower": pred.lower, "upper": pred.upper, "ot": pred.ot, "nearest_run": pred.nearest_run,
                          "nearest_distance": pred.nearest_distance, "covered": pred.covered})
    write_table_atomic(args.out, frame, force=args.force)
    doc = {"out": str(args.out), "rows": len(frame), "level": pred.level, "tokens": args.tokens,
           "size_ratio": pred.size_ratio, "outside_coverage": int((~pred.covered).sum()), "warnings": notes}
    emit(args, doc, f"{len(frame)} predictions at {args.tokens:.6g} tokens ({pred.level:.0%} intervals) written to "
          f"{args.out}" + "".join(f"\nwarning: {n}" for n in notes))
    return 0


def _ot_select(args: argparse.Namespace) -> int:
    from ..transport.extrapolator import extrapolation_notes
    from ..transport.study import load_ot_study
    from ..simplex import active_constraints

    est = load_ot_study(args.study)
    check_writable([p for p in (args.out, args.report) if p], args.force)
    c = _ot_constraints(args, est)
    sel = est.select(args.tokens, c.lower, c.upper, max_iter=args.max_iter, time_limit=args.time_limit)
    notes = extrapolation_notes(sel.prediction)
    doc = sel.to_dict(est.pools_) | {"active_constraints": active_constraints(sel.weights, c),
                                     "constraints": c.to_dict(), "warnings": notes}
    if args.out:
        write_json_atomic(args.out, doc, force=args.force)
    if args.report:
        from ..report.results import ot_select_report

        pools = load_pools(args.pools)
        ot_select_report(args.report, est, sel, "the objective", maximize=bool(est.maximize),
                         token_share=None if pools is None else dict(zip(pools.names, map(float, pools.token_share))),
                         force=args.force)
    written = [p for p in (args.out, args.report) if p]
    text = "\n".join([sel.report(est.pools_, doc["active_constraints"]), *(f"warning: {n}" for n in notes)]) + (
        f"\nwritten: {', '.join(written)}" if written else "")
    emit(args, doc, text)
    return 0
