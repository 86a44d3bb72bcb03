"""The ``mixplan`` command line: validate | fit | predict | plan | design | laws fit | budget | filter |
cpt fit|plan | ot fit|predict|select.

Every command takes ``--json`` (one JSON document on stdout instead of the table) and ``--seed``.
Errors are one line on stderr with exit code 2 (``--debug`` shows the traceback); outputs are
written atomically and never replace an existing file without ``--force``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from ._io import check_writable, read_toml, dumps_json, write_json_atomic, write_table_atomic, write_text_atomic
from .exceptions import MixplanError, MixplanWarning, ValidationError

EXIT_ERROR = 2


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (like every other error) and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message} (see '{self.prog} --help')")


class _UsageError(Exception):
    pass


# ------------------------------------------------------------------------------------------------
# shared option groups


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the result as one JSON document on stdout")
    p.add_argument("--seed", type=int, default=0, help="random seed (same inputs + seed => identical outputs)")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")


def _runs_options(p: argparse.ArgumentParser, runs_required: bool = True) -> None:
    if runs_required:
        p.add_argument("runs", metavar="RUNS", help="proxy-run table (CSV, TSV, Parquet or JSONL)")
    p.add_argument("--pools", metavar="POOLS", help="pool manifest (TOML); weight columns must match it")
    p.add_argument("--metrics", metavar="FILE",
                   help="metrics file of a two-file layout (RegMix loss CSV, olmix metrics.csv); RUNS is then "
                        "the mixture file")
    p.add_argument("--layout", choices=["auto", "table", "regmix", "olmix"], default="auto")
    p.add_argument("--renormalize", action=argparse.BooleanOptionalAction, default=False,
                   help="divide each run's weights by their sum instead of rejecting rows that do not sum to 1")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                   help="keep only rows whose COL equals VALUE (repeatable), e.g. --where split=train")


def _fit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--target", metavar="SPEC",
                   help="metric column, or a weighted sum such as 'mean(loss_*)' or '0.5*a + 0.5*b'")
    p.add_argument("--maximize", action=argparse.BooleanOptionalAction, default=False,
                   help="larger target values are better (default: smaller)")
    p.add_argument("--model", default="auto",
                   help="regressor: auto (default: chooses and stacks the others by repeated CV), gp, gp-log, "
                        "lightgbm, regmix (LightGBM with RegMix's settings), ridge, linear, dml (Data Mixing Laws)")
    p.add_argument("--cv-folds", type=int, default=5, help="folds of the cross-validation (default 5)")
    p.add_argument("--cv-repeats", type=int, default=None,
                   help="repeats of the cross-validation (default: 3 below 128 runs, 2 below 256, else 1)")


def _progress(total: int | None, desc: str, quiet: bool = False) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, leave=False, disable=quiet or not sys.stderr.isatty(), file=sys.stderr)


def _parse_where(items: Sequence[str]) -> dict[str, str]:
    """``--where COL=VALUE`` options as a mapping (see :func:`mixplan.runs.select_rows`)."""
    where = {}
    for item in items:
        col, sep, value = item.partition("=")
        if not sep or not col:
            raise ValidationError(f"--where {item!r}: write COLUMN=VALUE, e.g. --where split=train")
        where[col] = value
    return where


def _load_runs(args: argparse.Namespace, pools: Any = None) -> Any:
    from .runs import read_runs

    return read_runs(args.runs, pools, renormalize=args.renormalize, metrics=args.metrics, layout=args.layout,
                     where=_parse_where(args.where))


def _load_pools(path: str | None) -> Any:
    from .pools import load_pools

    return load_pools(path) if path else None


def _emit(args: argparse.Namespace, doc: dict[str, Any], text: str) -> None:
    if args.json:
        sys.stdout.write(dumps_json(doc))
    else:
        print(text)


# ------------------------------------------------------------------------------------------------
# validate


def _validate_add(p: argparse.ArgumentParser) -> None:
    _runs_options(p)
    p.add_argument("--target", metavar="SPEC", help="also check that this objective can be computed")


def _validate(args: argparse.Namespace) -> int:
    import numpy as np

    pools = _load_pools(args.pools)
    runs = _load_runs(args, pools)
    from .design import coverage_table, pool_coverage

    W = runs.weights
    doc: dict[str, Any] = {
        "source": runs.source, "runs": len(runs), "pools": runs.pools, "metrics": runs.metric_columns,
        "has_params": "params" in runs.frame, "has_tokens": "tokens" in runs.frame,
        "coverage": pool_coverage(W, runs.pools),
        "nonzero_pools_per_run": {"min": int((W > 0).sum(1).min()), "mean": float((W > 0).sum(1).mean()),
                                  "max": int((W > 0).sum(1).max())},
    }
    if args.target:
        from .objective import parse_objective

        obj = parse_objective(args.target, runs)
        y = obj.values(runs)
        doc["target"] = obj.to_dict() | {"min": float(np.min(y)), "max": float(np.max(y)), "mean": float(np.mean(y))}
    lines = [f"{runs.source}: OK - {len(runs)} runs over {len(runs.pools)} pools, "
             f"{len(runs.metric_columns)} metric columns", "", *coverage_table(doc["coverage"])]
    if "target" in doc:
        t = doc["target"]
        lines += ["", f"target {t['spec']}: min {t['min']:.6g}, mean {t['mean']:.6g}, max {t['max']:.6g}"]
    _emit(args, doc, "\n".join(lines))
    return 0


# ------------------------------------------------------------------------------------------------
# fit


def _fit_add(p: argparse.ArgumentParser) -> None:
    _runs_options(p)
    _fit_options(p)
    p.add_argument("--out", required=True, metavar="MODEL_DIR", help="directory to write the model into")
    p.add_argument("--force", action="store_true", help="overwrite existing model files")


def _fit_from_args(args: argparse.Namespace, runs: Any) -> Any:
    from .model import fit_model
    from .objective import parse_objective

    if not args.target:
        raise ValidationError("no target given; pass --target COLUMN (e.g. --target loss_pile_cc)")
    objective = parse_objective(args.target, runs, maximize=args.maximize)
    with _progress(None, f"fitting {args.model}") as bar:
        return fit_model(runs, objective, args.model, seed=args.seed, cv_folds=args.cv_folds,
                         cv_repeats=args.cv_repeats, progress=bar)


def model_report(model: Any) -> list[str]:
    """Lines describing a fitted model: per column, the chosen components and every candidate's CV."""
    from .model import cv_summary

    lines = []
    for t in model.targets:
        comps = " + ".join(f"{w:.2f} {m}" for m, w in t.regressor.components.items())
        lines.append(f"{t.column}: {t.regressor.model} -> {comps}; {cv_summary(t.cv.to_dict())}")
        for row in getattr(t.regressor, "selection_", []):
            if row["status"] == "skipped":
                lines.append(f"    {row['model']:<30} skipped: {row['reason']}")
            else:
                lines.append(f"    {row['model']:<30} {row['status']:<9} Spearman {_num(row['spearman'])}  "
                             f"RMSE {row['rmse']:.4g}  MAE {row['mae']:.4g}")
    if len(model.targets) > 1:
        lines.append(f"objective {model.objective.spec}: {cv_summary(model.cv)}")
    return lines


def _num(v: float | None) -> str:
    return "  n/a " if v is None else f"{v:.4f}"


def _fit(args: argparse.Namespace) -> int:
    pools = _load_pools(args.pools)
    runs = _load_runs(args, pools)
    from .model import MixtureModel

    # Refuse before the (possibly long) fit if the outputs exist.
    out = Path(args.out)
    existing = [out / "meta.json", out / "train_runs.csv"] + (sorted(out.glob("target*")) if out.is_dir() else [])
    check_writable(existing, args.force)
    model: MixtureModel = _fit_from_args(args, runs)
    model.save(args.out, force=args.force)
    cv = {k: v for k, v in model.cv.items() if k not in ("residuals", "scores")}
    doc = {"model_dir": str(args.out), "model": args.model, "objective": model.objective.to_dict(), "cv": cv,
           "targets": model.target_summaries()}
    q = model.interval_scale(0.9)
    how = (f"90% intervals: prediction +- {q:.3g} x GP predictive sd" if model.adaptive
           else f"90% intervals: prediction +- {q:.4g}")
    _emit(args, doc, "\n".join(model_report(model) + [f"{how}; model written to {args.out}"]))
    return 0


# ------------------------------------------------------------------------------------------------
# predict


def _predict_add(p: argparse.ArgumentParser) -> None:
    p.add_argument("model_dir", metavar="MODEL_DIR")
    _runs_options(p)
    p.add_argument("--out", required=True, metavar="PRED.csv")
    p.add_argument("--level", type=float, default=0.9, help="interval level (default 0.9)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")


def _predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from .model import load_model
    from .pools import PoolSet

    model = load_model(args.model_dir)
    pools = _load_pools(args.pools) or PoolSet.from_names(model.pools)
    if sorted(pools.names) != sorted(model.pools):
        raise ValidationError(f"{args.pools}: pools {pools.names} differ from the model's {model.pools}; use the "
                              "manifest the model was fitted with")
    check_writable([args.out], args.force)
    runs = _load_runs(args, pools)
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
    _emit(args, doc, f"{len(frame)} predictions ({args.level:.0%} intervals) written to {args.out}; "
          f"{doc['outside_coverage']} outside the region the proxy runs cover")
    return 0


# ------------------------------------------------------------------------------------------------
# plan

_PLAN_KEYS = {"runs": str, "pools": str, "target": str, "tokens": float, "seed": int, "out": str, "model": str,
              "maximize": bool, "pins": dict, "candidates": int, "top_k": int, "level": float, "renormalize": bool,
              "metrics": str, "layout": str, "cv_folds": int, "cv_repeats": int,
              "where": dict, "flops": float, "params": float, "law": str, "repetition_runs": str,
              "r_star": float, "gamma": float, "repetition_caps": bool, "budget_range": str, "budget_steps": int,
              "ot": str, "ot_mode": str}
_PATH_KEYS = {"runs", "pools", "out", "metrics", "repetition_runs", "ot"}


def _plan_add(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", metavar="CONFIG.toml",
                   help="plan settings (keys as the long options, e.g. runs, pools, target, tokens); flags override")
    p.add_argument("--runs", metavar="RUNS")
    _runs_options(p, runs_required=False)
    _fit_options(p)
    p.add_argument("--tokens", type=float, metavar="D", help="the big run's token budget (enables availability caps)")
    p.add_argument("--flops", type=float, metavar="C",
                   help="the big run's compute instead of --tokens: tokens from --params, or compute-optimal by --law")
    p.add_argument("--params", type=float, metavar="N", help="with --flops: the model size")
    p.add_argument("--law", metavar="FIT.json|NAME", help="with --flops: the loss law (default epoch-replicate)")
    p.add_argument("--repetition-runs", metavar="RUNS",
                   help="runs at other budgets (a tokens column) that repeat data: fit the repetition-aware objective "
                        "(R*, gamma) on them and the proxy runs, and plan with it")
    p.add_argument("--r-star", type=float, metavar="R",
                   help="repetition-aware objective with this R* (Muennighoff et al.: 15.4) instead of fitting it")
    p.add_argument("--gamma", type=float, metavar="G",
                   help="with --r-star: the metric's change per log of effective data (default 0)")
    p.add_argument("--repetition-caps", action=argparse.BooleanOptionalAction, default=None,
                   help="also apply the manifest's max_epochs caps to the repetition-aware search")
    p.add_argument("--budget-range", metavar="LO:HI",
                   help="sweep the target budget (tokens) from LO to HI; writes budget_sweep.csv with --out")
    p.add_argument("--budget-steps", type=int, metavar="K", help="budgets in the sweep, log-spaced (default 9)")
    p.add_argument("--ot", metavar="DIR", help="an OT extrapolator study (mixplan ot fit --out DIR): add its optimum "
                   "and its predictions at the target budget")
    p.add_argument("--ot-mode", choices=["compare", "alone", "size"],
                   help="with --ot: compare (default; the regressor's optimum stays recommended), alone (recommend "
                        "the OT optimum) or size (regressor + the OT extrapolator's change from the runs' size to "
                        "the target)")
    p.add_argument("--pin", action="append", default=[], metavar="POOL=W", help="fix a pool's weight (repeatable)")
    p.add_argument("--candidates", type=int, default=20_000, help="Dirichlet candidates to score (default 20000)")
    p.add_argument("--top-k", type=int, default=128, help="best candidates averaged (default 128, as RegMix)")
    p.add_argument("--level", type=float, default=0.9, help="interval level (default 0.9)")
    p.add_argument("--out", metavar="DIR", help="write plan.json and candidates.csv here")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")


# Defaults of `plan` are applied after CONFIG.toml, so that only flags actually typed override the file.
_PLAN_DEFAULTS = {"seed": 0, "model": "auto", "cv_folds": 5, "layout": "auto", "candidates": 20_000,
                  "top_k": 128, "level": 0.9, "maximize": False, "renormalize": False}


def _merge_config(args: argparse.Namespace) -> None:
    """Fill options not given on the command line from CONFIG.toml, then from the defaults."""
    _merge_file(args)
    for key, value in _PLAN_DEFAULTS.items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def _merge_file(args: argparse.Namespace) -> None:
    if not args.config:
        return
    path = Path(args.config)
    doc = read_toml(path, "plan config")
    for key, value in doc.items():
        if key not in _PLAN_KEYS:
            raise ValidationError(f"{path}: unknown key {key!r}; allowed: {sorted(_PLAN_KEYS)}")
        typ = _PLAN_KEYS[key]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise ValidationError(f"{path}, key {key!r}: {value!r} should be of type {typ.__name__}")
        if key in _PATH_KEYS:
            value = str((path.parent / value)) if not Path(value).is_absolute() else value
        dest = "pin" if key == "pins" else key
        if key in ("pins", "where"):
            value = [f"{k}={v}" for k, v in value.items()]
        # Flags given on the command line win over the file (options not typed are None or []).
        current = getattr(args, dest)
        if current is None or current == []:
            setattr(args, dest, value)


def _parse_named_numbers(items: Sequence[str], flag: str = "--pin", form: str = "POOL=WEIGHT",
                example: str = "code=0.1") -> dict[str, float]:
    pins = {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            pins[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValidationError(f"{flag} {item!r}: write {form}, e.g. {flag} {example}")
    return pins


def _plan(args: argparse.Namespace) -> int:
    _merge_config(args)
    if not args.runs:
        raise ValidationError("no runs given; pass --runs RUNS or a CONFIG.toml with runs = '...'")
    from .plan import make_plan
    from .pools import PoolSet

    pools = _load_pools(args.pools)
    given = [f for f, v in (("--tokens", args.tokens), ("--flops", args.flops), ("--budget-range", args.budget_range))
             if v is not None]
    if pools is None and given:
        raise ValidationError(f"{given[0]} needs --pools: availability caps need each pool's token count")
    budget = _plan_budget(args)
    sweep = _budget_sweep(args)
    outs = [Path(args.out) / "plan.json", Path(args.out) / "candidates.csv"] if args.out else []
    if sweep is not None and args.out:
        outs.append(Path(args.out) / "budget_sweep.csv")
    check_writable(outs, args.force)
    runs = _load_runs(args, pools)
    pools = pools or PoolSet.from_names(runs.pools)
    from .search import build_constraints

    pins = _parse_named_numbers(args.pin)
    build_constraints(pools, args.tokens, pins)  # refuse impossible constraints before fitting
    model = _fit_from_args(args, runs)
    repetition = _repetition_model(args, model, runs, pools)
    options = {"pins": pins, "seed": args.seed, "level": args.level, "n_candidates": args.candidates,
               "top_k": args.top_k, "repetition": repetition, "combine_caps": bool(args.repetition_caps)}
    if args.ot_mode and not args.ot:
        raise ValidationError("--ot-mode goes with --ot DIR (an OT extrapolator study)")
    if args.ot:
        from .ot_study import load_ot_study

        sizes = np.unique(runs.frame["tokens"].to_numpy(dtype=float)) if "tokens" in runs.frame.columns else []
        options |= {"ot": load_ot_study(args.ot), "ot_mode": args.ot_mode or "compare",
                    "ot_base_tokens": float(sizes[0]) if len(sizes) == 1 else None}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixplanWarning)  # the plan carries its warnings; printed below
        plan = make_plan(model, pools, tokens=args.tokens, **options)
        rows = [] if sweep is None else [_sweep_row(make_plan(model, pools, tokens=t, **options), t)
                                         for t in sweep]
    doc = plan.to_dict() | ({"budget": budget} if budget else {})
    text = plan.table()
    if sweep is not None:
        import pandas as pd

        frame = pd.DataFrame(rows)
        doc["budget_sweep"] = frame.to_dict(orient="records")
        text += "\n\nrecommended mixture by target budget:\n" + frame.to_string(index=False, float_format="%.4g")
    if args.out:
        write_json_atomic(outs[0], doc, force=args.force)
        write_table_atomic(outs[1], plan.candidates_frame(), force=args.force)
        if sweep is not None:
            write_table_atomic(outs[2], frame, force=args.force)
    _emit(args, doc, text + (f"\n\nwritten: {', '.join(map(str, outs))}" if args.out else ""))
    return 0


def _plan_budget(args: argparse.Namespace) -> dict[str, Any] | None:
    """With --flops, set --tokens from the run shape the compute buys (and return that shape)."""
    if args.flops is None:
        if args.params is not None or args.law is not None:
            raise ValidationError("--params and --law go with --flops")
        return None
    if args.tokens is not None:
        raise ValidationError("give the budget as --tokens or as --flops, not both")
    from .laws.budget import run_shape

    shape = run_shape(args.flops, params=args.params, law=_law_arg(args.law or "epoch-replicate"))
    args.tokens = shape.tokens
    return shape.to_dict()


def parse_budget_range(text: str, steps: int, example: str) -> tuple[float, float]:
    """``--budget-range LO:HI`` (0 < LO < HI, finite) and ``--budget-steps`` (>= 2), checked."""
    lo, sep, hi = text.partition(":")
    try:
        a, b = float(lo), float(hi)
    except ValueError:
        sep = ""
    if not sep or not (0 < a < b < np.inf):
        raise ValidationError(f"--budget-range {text!r}: write LO:HI with 0 < LO < HI, e.g. {example}")
    if steps < 2:
        raise ValidationError(f"--budget-steps must be at least 2, got {steps}")
    return a, b


def _budget_sweep(args: argparse.Namespace) -> list[float] | None:
    if not args.budget_range:
        return None
    steps = args.budget_steps or 9
    a, b = parse_budget_range(args.budget_range, steps, "1e6:1e8")
    return [float(t) for t in np.geomspace(a, b, steps)]


def _sweep_row(plan: Any, tokens: float) -> dict[str, Any]:
    rec = plan.mixtures["recommended"]
    row = {"tokens": tokens} | {f"w_{p}": v for p, v in rec["weights"].items()}
    row["max_epochs"] = max(rec["epochs"].values())
    row["prediction"] = rec["at_budget"]["objective"] if "at_budget" in rec else rec["prediction"]
    return row


def _repetition_model(args: argparse.Namespace, model: Any, runs: Any, pools: Any) -> Any:
    """The repetition-aware objective of --repetition-runs (fitted) or --r-star (given), or None."""
    from .repetition import RepetitionModel, fit_repetition

    if args.r_star is not None and args.repetition_runs:
        raise ValidationError("give --repetition-runs (fit R*) or --r-star (set it), not both")
    if args.r_star is not None:
        if not args.r_star > 0:
            raise ValidationError(f"--r-star must be positive, got {args.r_star}")
        return RepetitionModel(r_star=args.r_star, gamma=args.gamma or 0.0, source="given (--r-star, --gamma)")
    if args.gamma is not None:
        raise ValidationError("--gamma goes with --r-star")
    if not args.repetition_runs:
        if args.repetition_caps:
            raise ValidationError("--repetition-caps needs a repetition-aware objective (--repetition-runs or --r-star)")
        return None
    if args.tokens is None:
        raise ValidationError("the repetition-aware objective needs the target budget (--tokens or --flops)")
    from .runs import read_runs

    more = read_runs(args.repetition_runs, pools, renormalize=args.renormalize)
    proxy = runs.frame["tokens"].to_numpy(dtype=float) if "tokens" in runs.frame else None
    if proxy is None or "tokens" not in more.frame:
        raise ValidationError(f"{args.repetition_runs}: the repetition model needs a tokens column in both run "
                              "tables (the budget each run was trained on)")
    if np.ptp(proxy) > 0:
        raise ValidationError(f"{runs.source}: the proxy runs have several budgets; fit the model on runs of one budget")
    objective = model.objective
    W = np.vstack([runs.weights, more.weights])
    T = np.r_[proxy, more.frame["tokens"].to_numpy(dtype=float)]
    y = np.r_[objective.values(runs), objective.values(more)]
    return fit_repetition(model.predict_mean, W, T, y, pools.tokens, float(proxy[0]), seed=args.seed, level=args.level,
                          source=f"fitted on {runs.source} and {more.source}")


# ------------------------------------------------------------------------------------------------
# design


def _design_add(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pools", required=True, metavar="POOLS", help="pool manifest (TOML)")
    p.add_argument("--n", type=int, metavar="N", help="design a random swarm of N proxy runs (RegMix-style)")
    p.add_argument("--next", type=int, metavar="K",
                   help="propose the K runs with the largest batch expected improvement under a model fitted to "
                        "--runs (needs --runs and --target; see mixplan.sequential)")
    p.add_argument("--out", required=True, metavar="DIR", help="writes DIR/mixtures.csv and DIR/runs/<run_id>.yaml")
    p.add_argument("--tokens", type=float, metavar="D", help="proxy runs' token budget (caps repetition)")
    p.add_argument("--runs", metavar="RUNS",
                   help="existing proxy runs: new mixtures keep --min-distance from them; with --next also the runs "
                        "the model is fitted on")
    p.add_argument("--min-distance", type=float, default=0.01, help="minimum total-variation distance (0.01)")
    p.add_argument("--temperature", type=float, default=0.5, help="prior temperature (0.5, as RegMix)")
    p.add_argument("--prefix", help="run id prefix (default 'run'; with --next 'next', numbered on from the "
                                    "<prefix>-<number> ids already in RUNS)")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--renormalize", action=argparse.BooleanOptionalAction, default=False,
                   help="divide each run's weights by their sum instead of rejecting rows that do not sum to 1")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                   help="keep only the rows of RUNS whose COL equals VALUE (repeatable)")
    g = p.add_argument_group("with --next")
    _fit_options(g)  # type: ignore[arg-type]  # an argument group has the same add_argument
    g.add_argument("--pin", action="append", default=[], metavar="POOL=W", help="fix a pool's weight (repeatable)")
    # None = not typed, so that --n can refuse the options only --next uses instead of ignoring them.
    p.set_defaults(model=None, maximize=None, cv_folds=None, metrics=None, layout="auto")


def _design(args: argparse.Namespace) -> int:
    import pandas as pd
    import yaml

    from .design import coverage_table, design_swarm
    from .model import cv_summary

    if (args.n is None) == (args.next is None):
        raise ValidationError("give exactly one of --n N (a random swarm of N runs) and --next K (the K runs that "
                              "most improve the plan of --runs)")
    pools = _load_pools(args.pools)
    out = Path(args.out)
    if args.n is not None:
        only_next = [f"--{k.replace('_', '-')}" for k in ("target", "model", "maximize", "cv_folds", "cv_repeats",
                                                          "pin") if getattr(args, k) not in (None, [])]
        if only_next:
            raise ValidationError(f"{', '.join(only_next)} only appl{'ies' if len(only_next) == 1 else 'y'} to "
                                  "--next K (proposals from a fitted model); drop it for a random swarm with --n")
        existing = _load_runs(args, pools).weights if args.runs else None
        d = design_swarm(pools, args.n, seed=args.seed, tokens=args.tokens, temperature=args.temperature,
                         min_distance=args.min_distance, existing=existing, prefix=args.prefix or "run")
        frame = d.frame
        doc: dict[str, Any] = {"out": str(out), "runs": args.n, "coverage": d.coverage, "settings": d.settings}
        lines = [f"{args.n} mixtures written to {out / 'mixtures.csv'} and {out / 'runs'}/", "",
                 *coverage_table(d.coverage)]
    else:
        # Every cheap refusal comes before the (possibly minutes-long) fit.
        if args.next < 1:
            raise ValidationError(f"--next must be at least 1, got {args.next}")
        if not args.runs:
            raise ValidationError("--next needs --runs RUNS: the proxy runs whose fitted model says where to look "
                                  "next")
        if not args.target:
            raise ValidationError("--next needs --target SPEC: the objective the next runs should improve (e.g. "
                                  "--target loss_pile_cc)")
        from .search import build_constraints
        from .sequential import next_run_ids, propose_next

        pins = _parse_named_numbers(args.pin)
        build_constraints(pools, args.tokens, pins)  # refuse impossible constraints before fitting
        check_writable([out / "mixtures.csv"], args.force)
        args.model, args.cv_folds = args.model or "auto", args.cv_folds or 5
        args.maximize = bool(args.maximize)
        runs = _load_runs(args, pools)
        ids = next_run_ids(args.prefix or "next", runs.file_run_ids or runs.run_ids, args.next)
        model = _fit_from_args(args, runs)
        nxt = propose_next(model, pools, args.next, tokens=args.tokens, pins=pins, seed=args.seed,
                           min_distance=args.min_distance, temperature=args.temperature)
        frame = nxt.frame(ids, args.tokens)
        proposals = nxt.to_dict()
        for rid, row in zip(ids, proposals["proposals"]):
            row["run_id"] = rid
        doc = {"out": str(out), "runs": args.next, "model": model.cv["model"], "objective": model.objective.to_dict(),
               "cv": {k: v for k, v in model.cv.items() if k not in ("residuals", "scores")}} | proposals
        table = pd.DataFrame(
            {"run_id": ids} | {p: [f"{w:.4f}" for w in nxt.weights[:, i]] for i, p in enumerate(pools.names)}
            | {"expected improvement": [f"{a:.4g}" for a in nxt.acquisition],
               "predicted": [f"{m:.4f} +- {sd:.4f}" for m, sd in zip(nxt.prediction, nxt.prediction_sd)],
               "nearest run (TV dist)": [f"{r} ({dist:.3f})" for r, dist in zip(nxt.nearest_run, nxt.nearest_distance)],
               "origin": nxt.origin})
        sense = "maximize" if model.objective.maximize else "minimize"
        lines = [f"{args.next} proposals written to {out / 'mixtures.csv'} and {out / 'runs'}/: batch expected "
                 f"improvement ({sense} {model.objective.spec})",
                 f"model {model.cv['model']}: {cv_summary(model.cv)}",
                 f"best predicted proxy run {nxt.incumbent_run}: {nxt.incumbent:.4f}; the plan's recommendation: "
                 f"{nxt.recommended_prediction:.4f}", "", table.to_string(index=False),
                 "", "predicted: the model's objective +- its calibrated sd; measure these runs, add them to RUNS "
                 "and run 'mixplan plan' (or another round of --next)"]
    files: dict[Path, str | None] = {out / "mixtures.csv": None}
    for _, row in frame.iterrows():
        cfg = {"run_id": row["run_id"], "seed": args.seed,
               "weights": {p: float(row[f"w_{p}"]) for p in pools.names}}
        if args.tokens is not None:
            cfg["tokens"] = float(args.tokens)
        files[out / "runs" / f"{row['run_id']}.yaml"] = yaml.safe_dump(cfg, sort_keys=False)
    check_writable(files, args.force)
    stale = sorted(set((out / "runs").glob("*.yaml")) - set(files))
    if stale and not args.force:
        raise ValidationError(f"{out / 'runs'} holds {len(stale)} run file(s) of another design (first: {stale[0].name}); "
                              "choose another --out or pass --force to replace that design")
    for path in stale:  # with --force the old design is replaced, not mixed with the new one
        path.unlink()
    write_table_atomic(out / "mixtures.csv", frame, force=args.force)
    for path, text in files.items():
        if text is not None:
            write_text_atomic(path, text, force=args.force)
    _emit(args, doc, "\n".join(lines))
    return 0


# ------------------------------------------------------------------------------------------------
# laws fit / budget

_LAWS = ("chinchilla", "data-constrained", "qqt")


def _laws_add(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="laws_command", metavar="fit", parser_class=_Parser)
    f = sub.add_parser("fit", help="fit a law to runs (Huber on log-loss, L-BFGS-B, bootstrap intervals)")
    f.add_argument("runs", metavar="RUNS", help="table with params, tokens (and unique_tokens) columns and the target")
    f.add_argument("--law", required=True, choices=_LAWS)
    f.add_argument("--target", required=True, metavar="COL", help="the loss (or error) column")
    f.add_argument("--where", action="append", default=[], metavar="COL=VALUE", help="keep rows with COL == VALUE")
    f.add_argument("--base", default="datablations", metavar="NAME|FIT.json|none",
                   help="data-constrained: the fixed Chinchilla constants (default datablations); 'none' fits "
                        "all seven parameters")
    f.add_argument("--qqt-objective", default="effective_utility", choices=["effective_utility", "effective_data"],
                   help="qqt: repetition decays the utility (exponent) or the sample count")
    f.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help="qqt: hold a parameter (a, b, tau, d) fixed, e.g. --fix a=0.025 --fix d=0.1 (the authors "
                        "share a and d across pools)")
    f.add_argument("--huber-delta", default="1e-3", metavar="DELTA|auto",
                   help="Huber threshold on log-loss (1e-3, the Chinchilla recipe); 'auto': 1.345 x the residuals' "
                        "robust scale (better when runs are noisier than ~0.1%%)")
    f.add_argument("--bootstrap", type=int, default=200, help="bootstrap refits for the intervals (200)")
    f.add_argument("--level", type=float, default=0.95, help="interval level (0.95)")
    f.add_argument("--out", metavar="FIT.json", help="write the fit here")
    f.add_argument("--force", action="store_true", help="overwrite an existing output")
    _common(f)


def _read_law_doc(path: str) -> dict[str, Any]:
    import json

    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValidationError(f"{path}: no such file (a FIT.json from 'mixplan laws fit', or a law name)") from None
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(doc, dict) or "law" not in doc or "params" not in doc:
        raise ValidationError(f"{path}: not a fitted law (expected the keys 'law' and 'params')")
    return doc


def _law_arg(value: str) -> Any:
    """A published law name, or the path of a FIT.json."""
    from .laws import PUBLISHED

    return value if value in PUBLISHED else _read_law_doc(value)


def read_table_where(path: str, where: Sequence[str]) -> Any:
    """A table with only the rows selected by ``--where COL=VALUE`` (as ``read_runs`` selects them)."""
    from ._io import read_table
    from .runs import select_rows

    return select_rows(read_table(path), _parse_where(where), str(path))[0]


def _laws(args: argparse.Namespace) -> int:
    if args.laws_command != "fit":
        raise ValidationError("mixplan laws: choose a subcommand: fit")
    from . import laws

    frame = read_table_where(args.runs, args.where)
    if args.target not in frame.columns:
        raise ValidationError(f"{args.runs}: no column {args.target!r} (columns: {', '.join(map(str, frame.columns))})")
    if args.out:
        check_writable([args.out], args.force)
    if args.law == "chinchilla":
        law = laws.CHINCHILLA
    elif args.law == "data-constrained":
        from .laws.budget import resolve_law

        law = laws.data_constrained_law(None if args.base == "none" else resolve_law(_law_arg(args.base))[1])
    else:
        fixed = _parse_named_numbers(args.fix, "--fix", "NAME=VALUE", "a=0.025")
        unknown = sorted(set(fixed) - {"a", "b", "tau", "d"})
        if unknown:
            raise ValidationError(f"--fix {unknown[0]}=...: the qqt law's parameters are a, b, tau, d")
        law = laws.qqt_law(args.qqt_objective, **fixed)
    if args.fix and args.law != "qqt":
        raise ValidationError("--fix applies to --law qqt only")
    data = {c: frame[c].to_numpy() for c in law.columns if c in frame.columns}
    delta = laws.parse_delta(args.huber_delta, "--huber-delta")
    fit = laws.fit_law(law, data, frame[args.target].to_numpy(), delta=delta, n_bootstrap=args.bootstrap,
                       level=args.level, seed=args.seed, where=str(args.runs), rows=(frame.index + 1).tolist())
    doc = fit.to_dict() | {"target": args.target, "source": str(args.runs)}
    if args.out:
        write_json_atomic(args.out, doc, force=args.force)
    _emit(args, {k: v for k, v in doc.items() if k != "bootstrap"} | {"out": args.out},
          fit.report() + (f"\nwritten: {args.out}" if args.out else ""))
    return 0


def _budget_add(p: argparse.ArgumentParser) -> None:
    p.add_argument("--flops", type=float, required=True, metavar="C", help="training compute in FLOPs")
    p.add_argument("--params", type=float, metavar="N", help="fix the model size (tokens follow from C)")
    p.add_argument("--tokens", type=float, metavar="D", help="fix the training tokens (model size follows from C)")
    p.add_argument("--unique-tokens", type=float, metavar="U", help="unique tokens available (data-constrained)")
    p.add_argument("--law", default="epoch-replicate", metavar="FIT.json|NAME",
                   help="a fit from 'mixplan laws fit', or hoffmann, epoch, epoch-replicate (default), datablations")
    p.add_argument("--flops-per-token-param", type=float, default=6.0,
                   help="FLOPs per parameter per token, C = k N D (default 6)")
    p.add_argument("--pools", metavar="POOLS", help="pool manifest: report each pool's epochs and discount")
    p.add_argument("--mixture", action="append", default=[], metavar="POOL=W",
                   help="the mixture's weights (repeatable); default: the manifest's priors")


def _budget(args: argparse.Namespace) -> int:
    from .laws.budget import pool_repetition, run_shape

    shape = run_shape(args.flops, params=args.params, tokens=args.tokens, unique_tokens=args.unique_tokens,
                      law=_law_arg(args.law), flops_per_token_param=args.flops_per_token_param)
    if args.mixture and not args.pools:
        raise ValidationError("--mixture needs --pools (each pool's available tokens)")
    if args.pools:
        pools = _load_pools(args.pools)
        weights = _parse_named_numbers(args.mixture, "--mixture", "POOL=WEIGHT", "web=0.7") if args.mixture else dict(zip(pools.names, map(float, pools.prior)))
        total = sum(weights.values())
        if abs(total - 1.0) > 1e-6:
            raise ValidationError(f"--mixture weights sum to {total:g}; they must sum to 1")
        r_star = shape.law_params.get("R_D_star")
        rows = pool_repetition(shape.tokens, weights, dict(zip(pools.names, map(float, pools.tokens))),
                               *(() if r_star is None else (r_star,)))
        from dataclasses import replace

        shape = replace(shape, pools=rows)
    _emit(args, shape.to_dict(), shape.table())
    return 0


# ------------------------------------------------------------------------------------------------
# ot: the optimal-transport extrapolator (Projektor)


def _ot_add(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="ot_command", metavar="fit|predict|select", parser_class=_Parser)
    f = sub.add_parser("fit", help="embed revealed pool samples and a validation set; fit stage 1 at each training "
                                   "size of the runs and stage 2 (ln-size line) between two of them")
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
    f.add_argument("--components", type=int, default=64, help="SVD dimensions of the text features (64)")
    f.add_argument("--per-pool", type=int, metavar="N", help="at most N revealed samples per pool (demo: 200)")
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
    f.add_argument("--level", type=float, default=0.9, help="interval level (0.9)")
    f.add_argument("--out", required=True, metavar="DIR", help="write the study here")
    f.add_argument("--force", action="store_true", help="overwrite an existing study")
    pr = sub.add_parser("predict", help="predict the metric at a training size for mixtures, with intervals")
    pr.add_argument("study", metavar="DIR")
    pr.add_argument("runs", metavar="MIXTURES", help="table of mixtures (w_<pool> columns)")
    pr.add_argument("--tokens", type=float, required=True, metavar="N", help="training size to predict at")
    pr.add_argument("--renormalize", action=argparse.BooleanOptionalAction, default=False,
                    help="divide each row's weights by their sum")
    pr.add_argument("--out", required=True, metavar="PRED.csv")
    pr.add_argument("--force", action="store_true", help="overwrite an existing output")
    se = sub.add_parser("select", help="the best mixture at a training size by projected gradient on OT duals")
    se.add_argument("study", metavar="DIR")
    se.add_argument("--tokens", type=float, required=True, metavar="N", help="training size to select for")
    se.add_argument("--pools", metavar="POOLS", help="manifest: floors, caps and availability at --tokens")
    se.add_argument("--pin", action="append", default=[], metavar="POOL=W", help="fix a pool's weight")
    se.add_argument("--max-iter", type=int, default=100, help="projected-gradient iterations at most (100)")
    se.add_argument("--time-limit", type=float, metavar="S", help="stop the descent after S seconds")
    se.add_argument("--out", metavar="SELECTION.json")
    se.add_argument("--force", action="store_true", help="overwrite an existing output")
    for q in (f, pr, se):
        _common(q)


def _ot_runs(paths: Sequence[str], pools: Any) -> Any:
    """Several run tables as one (each validated against the manifest), with a tokens column."""
    import pandas as pd

    from .runs import read_runs, validate_runs

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
    from .search import build_constraints

    pools = _load_pools(args.pools)
    if pools is None:
        from .pools import PoolSet

        pools = PoolSet.from_names(est.pools_)
    if pools.names != est.pools_:
        raise ValidationError(f"{args.pools}: pools {pools.names} differ from the study's {est.pools_} (same order)")
    return build_constraints(pools, args.tokens if args.pools else None, _parse_named_numbers(args.pin))


def ot_fit_report(est: Any) -> str:
    """The fit summary printed by ``mixplan ot fit``."""
    import pandas as pd

    r = est.report()
    rows = [{"tokens": f"{s['tokens']:.6g}", "runs": s["n_runs"], "ridge alpha": f"{s['alpha']:.3g}",
             "LOO R2": f"{s['loo_r2']:.4f}", "LOO MAE": f"{s['loo_mae']:.4g}", "LOO Spearman": f"{s['loo_spearman']:.4f}",
             f"{r['level']:.0%} half-width": f"{s['halfwidth']:.4g}"} for s in r["stage1"]]
    sm = r["samples"]
    lines = [f"OT extrapolator on {len(r['pools'])} pools: {sm['revealed']} revealed samples "
             f"({', '.join(f'{p} {n}' for p, n in zip(r['pools'], sm['per_pool']))}) vs {sm['validation']} "
             f"validation samples, {sm['dimension']}-d features, {r['method']} OT"
             + ("" if r["sinkhorn_relative_error"] is None else
                f" (vs exact on a 1000 x 1000 subsample: {r['sinkhorn_relative_error']:+.1%})"),
             f"OT distance of the runs: {r['ot_range'][0]:.4g} .. {r['ot_range'][1]:.4g}",
             "stage 1 (leave-one-out):", pd.DataFrame(rows).to_string(index=False)]
    if len(r["anchors"]) == 2:
        lines.append(f"stage 2: straight line in ln N through {r['anchors'][0]:.6g} and {r['anchors'][1]:.6g} "
                     f"({r['size_space']} metric); intervals from "
                     + (f"{r['paired_runs']} mixtures run at both sizes" if r["paired_runs"] else
                        "the two sizes' errors combined as independent")
                     + ("; with the line's curvature error from the check runs" if r["curvature"] else
                        "; they do NOT include the line's own (curvature) error: add --check-runs"))
    else:
        lines.append(f"one size fitted ({r['anchors'][0]:.6g}): no size extrapolation; add runs at a second size")
    if r["curvature"] is not None:
        c = r["curvature"]
        lines.append(f"curvature from {c['n_runs']} check runs at {c['tokens']:.6g}: mean residual of the line "
                     f"{c['mean_residual']:+.4g}, so predictions add {c['coef']:+.4g} s(s-1); check-run spread "
                     f"{c['halfwidth_at_check_size']:.4g} ({r['level']:.0%}) enters the intervals")
    if r["skipped_sizes"]:
        lines.append(f"sizes with too few runs for stage 1 (ignored): {r['skipped_sizes']}")
    return "\n".join(lines)


def _ot(args: argparse.Namespace) -> int:
    if args.ot_command not in ("fit", "predict", "select"):
        raise ValidationError("mixplan ot: choose a subcommand: fit, predict or select")
    return {"fit": _ot_fit, "predict": _ot_predict, "select": _ot_select}[args.ot_command](args)


def _ot_fit(args: argparse.Namespace) -> int:
    from .objective import parse_objective
    from .ot_study import fit_ot_study, read_samples, save_ot_study, study_files

    check_writable(study_files(args.out), args.force)
    pools = _load_pools(args.pools)
    runs = _ot_runs(args.runs, pools)
    objective = parse_objective(args.target, runs, maximize=args.maximize)
    anchors = None
    if args.anchors:
        try:
            anchors = tuple(float(v) for v in args.anchors.split(","))
        except ValueError:
            raise ValidationError(f"--anchors {args.anchors!r}: write two sizes, e.g. --anchors 5e5,1e6") from None
    vectors = args.features == "vectors"
    samples = read_samples(args.samples, pooled=True, per_pool=args.per_pool, seed=args.seed, vectors=vectors,
                           column=args.vector_column)
    validation = read_samples(args.validation, pooled=False, seed=args.seed, vectors=vectors,
                              column=args.vector_column)
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
    _emit(args, est.report() | {"objective": objective.to_dict(), "out": [str(p) for p in paths]},
          ot_fit_report(est) + f"\nwritten: {', '.join(map(str, paths))}")
    return 0


def _ot_predict(args: argparse.Namespace) -> int:
    import pandas as pd

    from .extrapolator import extrapolation_notes
    from .ot_study import load_ot_study
    from .pools import PoolSet
    from .runs import read_runs

    est = load_ot_study(args.study)
    check_writable([args.out], args.force)
    runs = read_runs(args.runs, PoolSet.from_names(est.pools_), renormalize=args.renormalize)
    pred = est.predict(runs.weights, args.tokens)
    notes = extrapolation_notes(pred)
    frame = pd.DataFrame({"run_id": runs.run_ids, "tokens": args.tokens, "prediction": pred.mean,
                          "lower": pred.lower, "upper": pred.upper, "ot": pred.ot, "nearest_run": pred.nearest_run,
                          "nearest_distance": pred.nearest_distance, "covered": pred.covered})
    write_table_atomic(args.out, frame, force=args.force)
    doc = {"out": str(args.out), "rows": len(frame), "level": pred.level, "tokens": args.tokens,
           "size_ratio": pred.size_ratio, "outside_coverage": int((~pred.covered).sum()), "warnings": notes}
    _emit(args, doc, f"{len(frame)} predictions at {args.tokens:.6g} tokens ({pred.level:.0%} intervals) written to "
          f"{args.out}" + "".join(f"\nwarning: {n}" for n in notes))
    return 0


def _ot_select(args: argparse.Namespace) -> int:
    from .extrapolator import extrapolation_notes
    from .ot_study import load_ot_study
    from .search import active_constraints

    est = load_ot_study(args.study)
    if args.out:
        check_writable([args.out], args.force)
    c = _ot_constraints(args, est)
    sel = est.select(args.tokens, c.lower, c.upper, max_iter=args.max_iter, time_limit=args.time_limit)
    notes = extrapolation_notes(sel.prediction)
    doc = sel.to_dict(est.pools_) | {"active_constraints": active_constraints(sel.weights, c),
                                     "constraints": c.to_dict(), "warnings": notes}
    if args.out:
        write_json_atomic(args.out, doc, force=args.force)
    p = sel.prediction.row(0)
    text = "\n".join([
        "OT-selected mixture at " + f"{args.tokens:.6g} tokens:",
        *(f"  {n:>12s} {w:.4f}" + (f"  ({doc['active_constraints'][n]})" if n in doc["active_constraints"] else "")
          for n, w in zip(est.pools_, sel.weights)),
        f"predicted {p['prediction']:.4f} [{p['lower']:.4f}, {p['upper']:.4f}] ({p['level']:.0%}), OT distance "
        f"{p['ot']:.4g}, nearest run {p['nearest_run']} (TV {p['nearest_distance']:.3f})",
        f"projected gradient from {sel.start}: {sel.iterations} iterations, {sel.ot_solves} OT solves, "
        f"{sel.seconds:.2f} s" + ("" if sel.converged else " (stopped before convergence)"),
        *(f"warning: {n}" for n in notes)]) + (f"\nwritten: {args.out}" if args.out else "")
    _emit(args, doc, text)
    return 0


def _cpt_add(p: argparse.ArgumentParser) -> None:
    from ._cli_cpt import cpt_add

    cpt_add(p)


def _cpt_run(args: argparse.Namespace) -> int:
    from ._cli_cpt import cpt_run

    return cpt_run(args)


def _filter_add(p: argparse.ArgumentParser) -> None:
    from ._cli_filter import filter_add

    filter_add(p)


def _filter_run(args: argparse.Namespace) -> int:
    from ._cli_filter import filter_run

    return filter_run(args)


# ------------------------------------------------------------------------------------------------

COMMANDS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[..., int]]] = {
    "validate": ("check a proxy-run table (and its pool manifest)", _validate_add, _validate),
    "fit": ("fit a regressor to proxy runs and report cross-validation", _fit_add, _fit),
    "predict": ("predict the objective (with intervals) for mixtures", _predict_add, _predict),
    "plan": ("recommend a mixture for the big run", _plan_add, _plan),
    "laws": ("fit scaling laws to runs (laws fit)", _laws_add, _laws),
    "budget": ("what a compute budget buys: parameters, tokens, loss, learning rate, batch size, pool epochs",
               _budget_add, _budget),
    "filter": ("quality filtering by compute: the best keep-fraction of a bucketed pool per budget (QQT), "
               "bucket fits from runs, bucket cut-offs from scores", _filter_add, _filter_run),
    "cpt": ("continual pretraining: fit the D-CPT law (cpt fit) and choose the domain:general ratio (cpt plan)",
            _cpt_add, _cpt_run),
    "ot": ("optimal-transport extrapolator: ot fit | ot predict | ot select (Projektor)", _ot_add, _ot),
    "design": ("design proxy runs: a RegMix-style swarm with floors and caps (--n), or the K runs that most "
               "improve the decision given the runs so far (--next)", _design_add, _design),
}


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="mixplan", description="Plan the data mixture of a pretraining run from proxy runs.")
    parser.add_argument("--version", action="version", version=f"mixplan {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name, (help_, add, _) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        add(p)
        if name not in ("laws", "ot", "cpt"):  # their options live on their subcommands
            _common(p)
        if name == "plan":
            p.set_defaults(**{k: None for k in _PLAN_DEFAULTS})
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        args = parser.parse_args(argv)
        if not args.command:
            parser.print_help()
            return EXIT_ERROR
        return COMMANDS[args.command][2](args)
    except BrokenPipeError:  # stdout closed early (e.g. `| head`): not an error of the command
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at interpreter exit
        return 0
    except (MixplanError, _UsageError, OSError) as exc:
        if debug:
            raise
        msg = " ".join(str(exc).split()) if not isinstance(exc, OSError) or not exc.filename else \
            f"{exc.filename}: {exc.strerror}"
        print(f"mixplan: error: {msg}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("mixplan: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
