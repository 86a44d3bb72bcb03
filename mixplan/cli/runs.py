"""``mixplan runs import``: the proxy runs' evaluations as one canonical runs table.

::

    mixplan runs import --lm-eval RESULTS_DIR --mixtures DESIGN_DIR --out runs.csv
    mixplan runs import --wandb wandb_export.csv [--weight-prefix mixture.] --out runs.csv
    mixplan runs import --olmix ratios.csv --metrics metrics.csv [--olmix-config CONFIG.yaml --pools-out POOLS.toml] \
        --out runs.csv
    mixplan runs import --regmix train_mixture.csv --metrics train_loss.csv --out runs.csv
    mixplan runs reuse OLD_RUNS.csv --pools NEW.toml [--map old=new1+new2] [--removed drop|keep|keep-below=T] \
        --out runs.csv

Every import reports what it matched and what it could not (results with no mixture, runs with no
results, per metric the runs without it) and checks the table as ``fit`` reads it (``--pools``: against
the manifest too). Thin layer over :mod:`mixplan.data.evaluations`.

``reuse`` maps an earlier study's runs onto a new pool manifest (pools removed, added, renamed or split;
:mod:`mixplan.data.reuse`) and reports every decision.
"""

from __future__ import annotations

import argparse
from typing import Any

from ..exceptions import ValidationError
from .common import Parser, add_common, emit

__all__ = ["HELP", "add_arguments", "run"]

COMMON_OPTIONS = False

HELP = ("bring evaluations in (lm-evaluation-harness results, a W&B runs export, olmix or RegMix files -> a runs "
        "table), or reuse an earlier study's runs on a new pool set")
IMPORT_HELP = ("bring evaluations in: lm-evaluation-harness results, a W&B runs export, olmix or RegMix files -> a "
               "runs table")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="runs_command", metavar="{import,reuse}", parser_class=Parser)
    i = sub.add_parser("import", help=IMPORT_HELP, description=IMPORT_HELP)
    src = i.add_mutually_exclusive_group(required=True)
    src.add_argument("--lm-eval", metavar="DIR", help="a folder of lm_eval results JSONs (searched recursively)")
    src.add_argument("--wandb", metavar="CSV", help="a W&B runs table exported as CSV")
    src.add_argument("--olmix", metavar="RATIOS", help="olmix ratios.csv (with --metrics metrics.csv)")
    src.add_argument("--regmix", metavar="MIXTURES", help="RegMix mixture CSV (with --metrics the loss CSV)")
    i.add_argument("--metrics", metavar="CSV", help="with --olmix or --regmix: the metrics file")
    i.add_argument("--olmix-config", metavar="CONFIG.yaml",
                   help="with --olmix: its fit or generate config; its source:topic tree, priors and token counts "
                        "become the pool manifest --pools-out (groups by 'parent'), and the runs are checked "
                        "against it")
    i.add_argument("--pools-out", metavar="POOLS.toml", help="with --olmix-config: the pool manifest to write")
    i.add_argument("--mixtures", metavar="PATH",
                   help="each run's mixture: a design folder or its mixtures.csv (run_id, w_<pool>), or a folder of "
                        "run configs <run_id>.yaml with weights (needed with --lm-eval; with --wandb instead of config "
                        "columns)")
    i.add_argument("--weight-prefix", metavar="PREFIX",
                   help="with --wandb: the config columns holding the mixture, e.g. 'mixture.' (default: detected)")
    i.add_argument("--run-column", default="Name", metavar="COL", help="with --wandb: the run name column (Name)")
    i.add_argument("--include-unfinished", action="store_true",
                   help="with --wandb: keep runs whose State is not 'finished' (their metrics may be partial)")
    i.add_argument("--pools", metavar="POOLS.toml", help="check the weight columns against this manifest")
    i.add_argument("--renormalize", action="store_true", help="divide each run's weights by their sum")
    i.add_argument("--out", required=True, metavar="RUNS.csv", help="the runs table to write; its suffix chooses "
                   "the format (.csv, .tsv, .parquet, .json, .jsonl)")
    i.add_argument("--force", action="store_true", help="replace an existing output")
    add_common(i, seeded=False)
    r = sub.add_parser("reuse", help=REUSE_HELP, description=REUSE_HELP)
    r.add_argument("runs", metavar="OLD_RUNS", help="the old study's runs table (w_<pool> columns of its pools)")
    r.add_argument("--pools", required=True, metavar="NEW.toml", help="the new study's pool manifest")
    r.add_argument("--map", action="append", default=[], metavar="OLD=NEW1+NEW2",
                   help="an old pool renamed (OLD=NEW) or split (OLD=NEW1+NEW2: its weight shared by the new pools' "
                        "token shares); repeatable. Old pools of the same name carry over; other old pools are removed")
    r.add_argument("--removed", default="drop", metavar="POLICY",
                   help="runs with weight on removed pools: drop (default), keep-below=T (keep a run with at most T of "
                        "its weight there, renormalising the rest, flagged in column 'reuse'), or keep")
    r.add_argument("--renormalize", action="store_true", help="divide each old run's weights by their sum first")
    r.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                   help="keep only the old rows whose COL equals VALUE (repeatable)")
    r.add_argument("--out", required=True, metavar="RUNS.csv", help="the new runs table (.csv, .tsv, .parquet, "
                   ".json, .jsonl)")
    r.add_argument("--force", action="store_true", help="replace an existing output")
    add_common(r, seeded=False)


REUSE_HELP = ("map an earlier study's runs onto a new pool manifest (pools removed, added, renamed or split), "
              "counting every decision")


def run(args: argparse.Namespace) -> int:
    from .._io import check_table_writable, write_table_atomic
    from ..data.evaluations import ImportReport, read_lm_eval, read_mixtures, read_wandb_csv
    from ..data.runs import read_runs, validate_runs
    from .common import load_pools

    if args.runs_command == "reuse":
        return _reuse(args)
    if args.runs_command != "import":
        raise ValidationError("use: mixplan runs import (--lm-eval DIR | --wandb CSV | --olmix RATIOS | --regmix MIX) "
                              "--out RUNS.csv, or mixplan runs reuse OLD_RUNS --pools NEW.toml --out RUNS.csv")
    check_table_writable(args.out, args.force)
    if (args.olmix or args.regmix) and not args.metrics:
        raise ValidationError(f"--{'olmix' if args.olmix else 'regmix'} needs --metrics (the file of each run's metrics)")
    if args.metrics and not (args.olmix or args.regmix):
        raise ValidationError("--metrics goes with --olmix or --regmix")
    wandb_only = [f for f, v in (("--weight-prefix", args.weight_prefix), ("--include-unfinished",
                                                                              args.include_unfinished)) if v]
    if wandb_only and not args.wandb:
        raise ValidationError(f"{wandb_only[0]} goes with --wandb")
    if bool(args.olmix_config) != bool(args.pools_out) or (args.olmix_config and not args.olmix):
        raise ValidationError("--olmix-config and --pools-out go together, with --olmix")
    if args.olmix_config and args.pools:
        raise ValidationError("give --pools or --olmix-config, not both: the config makes the manifest")
    pools = _olmix_pools(args) if args.olmix_config else load_pools(args.pools)
    report: Any
    if args.lm_eval:
        if not args.mixtures:
            raise ValidationError("--lm-eval needs --mixtures (a design folder, its mixtures.csv or run configs): "
                                  "results files do not say what a run was trained on")
        frame, report = read_lm_eval(args.lm_eval, read_mixtures(args.mixtures))
    elif args.wandb:
        if args.mixtures and args.weight_prefix:
            raise ValidationError("give the mixture by --mixtures or by --weight-prefix, not both")
        frame, report = read_wandb_csv(args.wandb, args.weight_prefix, args.run_column, args.include_unfinished,
                                       read_mixtures(args.mixtures) if args.mixtures else None)
    else:
        layout = "olmix" if args.olmix else "regmix"
        table = read_runs(args.olmix or args.regmix, pools, renormalize=args.renormalize, metrics=args.metrics,
                          layout=layout)
        frame, report = table.frame, ImportReport(source=table.source, matched={r: [] for r in table.run_ids})
    table = validate_runs(frame, pools, renormalize=args.renormalize, source=report.source)
    write_table_atomic(args.out, table.frame, force=args.force)
    doc = report.to_dict() | {"out": str(args.out), "pools": table.pools, "metrics": table.metric_columns}
    emit(args, doc, report.text() + f"\n{len(table)} runs x {len(table.pools)} pools, {len(table.metric_columns)} "
         f"metric columns written to {args.out}")
    return 0


def _olmix_pools(args: argparse.Namespace) -> Any:
    """The manifest of an olmix config, written to ``--pools-out`` and loaded as ``--pools`` would be."""
    import yaml

    from .._io import check_writable, write_text_atomic
    from ..data.olmix import manifest_from_config, manifest_toml
    from .common import load_pools

    check_writable([args.pools_out], args.force)
    try:
        with open(args.olmix_config, encoding="utf-8") as fh:
            config = yaml.safe_load(fh)
    except OSError as exc:
        raise ValidationError(f"{args.olmix_config}: cannot read the olmix config ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"{args.olmix_config}: not valid YAML ({' '.join(str(exc).split())})") from None
    pools, info = manifest_from_config(config, str(args.olmix_config))
    header = (f"pools of olmix config {args.olmix_config} (mixplan runs import --olmix-config); olmix domain "
              "source:topic is pool source_topic")
    if info["ignored"]:
        header += "\nnot pool properties, not carried over: " + ", ".join(info["ignored"])
    write_text_atomic(args.pools_out, manifest_toml(pools, header), force=args.force)
    return load_pools(args.pools_out)


def _reuse(args: argparse.Namespace) -> int:
    from .._io import check_table_writable, write_table_atomic
    from ..data.reuse import map_runs, parse_mapping, parse_removed_policy
    from ..data.runs import read_runs, validate_runs
    from ..mixture.buckets import BucketLayout
    from .common import load_pools, parse_where

    check_table_writable(args.out, args.force)
    parse_removed_policy(args.removed)  # a typo is refused before any file is read
    mapping = parse_mapping(args.map)
    pools = load_pools(args.pools)
    old = read_runs(args.runs, None, renormalize=args.renormalize, where=parse_where(args.where))
    layout = BucketLayout.from_pools(pools) if pools.bucketed else None
    if layout is not None and set(old.pools) & (set(layout.names) - set(pools.names)):
        pools = layout.bucket_pools()  # old runs of a bucketed study: its buckets are pools
    frame, report = map_runs(old, pools, mapping, args.removed)
    table = validate_runs(frame, pools, source=f"{old.source} (reused)")
    write_table_atomic(args.out, table.frame, force=args.force)
    doc = report.to_dict() | {"out": str(args.out), "pools": table.pools, "runs": len(table)}
    emit(args, doc, report.text() + f"\n{len(table)} runs x {len(table.pools)} pools written to {args.out}")
    return 0
