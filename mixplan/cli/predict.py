"""mixplan predict: the objective, with intervals, for new mixtures."""

from __future__ import annotations

import argparse


from .._io import check_table_writable, write_table_atomic
from ..exceptions import ValidationError
from .common import add_runs_options, emit, load_pools, load_runs
from .common import LEVEL

HELP = "predict the objective (with intervals) for mixtures"
SEEDED = False  # nothing random: no --seed


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir", metavar="MODEL_DIR",
                   help="a fitted model: the folder of 'mixplan fit --out' (or 'mixplan plan --out' DIR/model)")
    add_runs_options(p)
    # RUNS here are the mixtures to predict: the shared option's text speaks of proxy runs.
    next(a for a in p._actions if a.dest == "runs").help = (
        "the mixtures to predict: a table (CSV, TSV, Parquet or JSONL) with run_id and w_<pool> columns; metric "
        "columns are not needed")
    p.add_argument("--out", required=True, metavar="PRED.csv",
                   help="write the predictions here (.csv, .tsv, .parquet, .jsonl or .json by its suffix): run_id, "
                        "prediction, lower, upper (the --level interval), nearest_run, nearest_distance (total "
                        "variation), covered, and pred_<column> per column when the objective sums several")
    p.add_argument("--level", type=LEVEL, default=0.9, help="interval level (default 0.9)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from ..models.mixture_model import MixtureModel
    from ..data.pools import PoolSet

    model = MixtureModel.load(args.model_dir)
    pools = load_pools(args.pools) or PoolSet.from_names(model.pools)
    if sorted(pools.names) != sorted(model.pools):
        raise ValidationError(f"{args.pools}: pools {pools.names} differ from the model's {model.pools}; use the "
                              "manifest the model was fitted with")
    check_table_writable(args.out, args.force)
    runs = load_runs(args, pools)
    # Weights in the model's pool order, whatever order the manifest lists them in.
    pred = model.predict(runs.frame[[f"w_{p}" for p in model.pools]].to_numpy(dtype=float), level=args.level)
    frame = pd.DataFrame({"run_id": runs.run_ids, "prediction": pred.mean, "lower": pred.lower, "upper": pred.upper,
                          "nearest_run": pred.nearest_run, "nearest_distance": pred.nearest_distance,
                          "covered": pred.covered})
    if len(pred.columns) > 1:  # each objective column's own prediction
        for col, values in pred.columns.items():
            frame[f"pred_{col}"] = values
    write_table_atomic(args.out, frame, force=args.force)
    doc = {"out": str(args.out), "rows": len(frame), "level": args.level,
           "outside_coverage": int((~pred.covered).sum())}
    emit(args, doc, f"{len(frame)} predictions ({args.level:.0%} intervals) written to {args.out}; "
          f"{doc['outside_coverage']} outside the region the proxy runs cover")
    return 0
