"""mixplan plan: the recommended mixture for the big run (flags or a TOML config)."""

from __future__ import annotations

import argparse
import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_number
from .._io import check_writable, read_toml, write_json_atomic, write_table_atomic
from ..exceptions import InfeasibleError, MixplanWarning, ValidationError
from .common import (add_fit_options, add_report_option, add_rounding_options, add_runs_options, bucket_space, emit,
                     fit_from_args, fit_objective, load_pools, load_runs, parse_budget_range, parse_named_numbers,
                     read_other_runs, report_path, working)
from .common import FINITE, LEVEL, SEED, Number, POSITIVE, check_weights_size

HELP = "recommend a mixture for the big run"


_PLAN_KEYS = {"runs": str, "pools": str, "target": str, "tokens": float, "seed": int, "out": str, "model": str,
              "maximize": bool, "pins": dict, "candidates": int, "top_k": int, "level": float, "renormalize": bool,
              "metrics": str, "layout": str, "cv_folds": int, "cv_repeats": int, "jobs": int,
              "where": dict, "flops": float, "params": float, "law": str, "repetition_runs": str, "scale_runs": list,
              "r_star": float, "gamma": float, "repetition_caps": bool, "budget_range": str, "budget_steps": int,
              "ot": str, "ot_mode": str, "units_per_token": float,
              "round": int, "min_weight": float, "report": str, "prior_strength": object, "refine": str}
_PATH_KEYS = {"runs", "pools", "out", "metrics", "repetition_runs", "scale_runs", "ot", "report"}


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?", metavar="CONFIG.toml",
                   help="plan settings (keys as the long options, e.g. runs, pools, target, tokens); flags override")
    p.add_argument("--runs", metavar="RUNS",
                   help="the proxy runs: a table (CSV, TSV, Parquet or JSONL) of w_<pool> weights and metric columns "
                        "(or a two-file layout's mixture file, see --metrics); required here or in CONFIG.toml")
    add_runs_options(p, runs_required=False)
    add_fit_options(p)
    p.add_argument("--tokens", type=POSITIVE, metavar="D", help="the big run's token budget (enables availability caps)")
    p.add_argument("--flops", type=POSITIVE, metavar="C",
                   help="the big run's compute instead of --tokens: tokens from --params, or compute-optimal by --law")
    p.add_argument("--params", type=POSITIVE, metavar="N",
                   help="the big run's model size: with --flops, what sets its tokens; with runs at several model "
                        "sizes (a params column), the size the at-scale plan predicts for")
    p.add_argument("--law", metavar="FIT.json|NAME", help="with --flops: the loss law (default epoch-replicate)")
    p.add_argument("--units-per-token", type=POSITIVE, metavar="K",
                   help="with --flops and a manifest counted in bytes, words or samples ([study] token_unit): that "
                        "unit per model token (e.g. 4.2 bytes per token); the plan's budget is the run's tokens times K")
    p.add_argument("--repetition-runs", metavar="RUNS",
                   help="runs at other budgets (a tokens column) that repeat data: fit the repetition-aware objective "
                        "(R*, gamma) on them and the proxy runs, and plan with it")
    p.add_argument("--scale-runs", action="append", default=[], metavar="RUNS",
                   help="runs at other budgets (a tokens column; repeatable): predict every mixture at the target budget "
                        "with the model of the change with scale that held-out budgets choose, and recommend the best "
                        "there (--repetition-runs are used the same way)")
    p.add_argument("--r-star", type=POSITIVE, metavar="R",
                   help="repetition-aware objective with this R* (Muennighoff et al.: 15.4) instead of fitting it")
    p.add_argument("--gamma", type=FINITE, metavar="G",
                   help="with --r-star: the metric's change per log of effective data (default 0)")
    p.add_argument("--repetition-caps", action=argparse.BooleanOptionalAction, default=None,
                   help="also apply the manifest's max_epochs caps to the repetition-aware search")
    p.add_argument("--budget-range", metavar="LO:HI",
                   help="sweep the target budget (tokens) from LO to HI; writes budget_sweep.csv with --out")
    p.add_argument("--budget-steps", type=Number(int, 2, 10_000), metavar="K",
                   help="budgets in the sweep, log-spaced (default 9)")
    add_rounding_options(p)
    add_report_option(p)
    p.add_argument("--ot", metavar="DIR", help="an OT extrapolator study (mixplan ot fit --out DIR): add its optimum "
                   "and its predictions at the target budget")
    p.add_argument("--ot-mode", choices=["compare", "alone", "size"],
                   help="with --ot: compare (default; the regressor's optimum stays recommended), alone (recommend "
                        "the OT optimum) or size (regressor + the OT extrapolator's change from the runs' size to "
                        "the target)")
    p.add_argument("--pin", action="append", default=[], metavar="POOL=W",
                   help="fix a pool's weight, or a group's total (the sum of its leaves, searched freely inside; "
                        "repeatable)")
    p.add_argument("--prior-strength", type=_strength, metavar="LAMBDA|auto",
                   help="regularise the search toward the prior (the manifest's per-pool prior, else the token "
                        "share): minimise the prediction + LAMBDA x KL(w || prior); 'auto' chooses LAMBDA by "
                        "cross-validated regret (2 folds x 3 repeats) and reports the curve")
    p.add_argument("--candidates", type=Number(int, 1, 2_000_000), default=20_000,
                   help="Dirichlet candidates to score (default 20000)")
    p.add_argument("--top-k", type=Number(int, 1, 2_000_000), default=128,
                   help="best candidates averaged (default 128, as RegMix)")
    p.add_argument("--refine", choices=REFINE_CHOICES,
                   help="refine the top-k mean by a local search: 'auto' (default) unless the model is mostly "
                        "boosted trees, whose steps it would chase; 'on' or 'off' always")
    p.add_argument("--level", type=LEVEL, default=0.9, help="interval level (default 0.9)")
    p.add_argument("--out", metavar="DIR", help="write plan.json and candidates.csv here")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    # A config file's numbers are checked by the same ranges as the flags.
    _NUMBERS.update({a.dest: a.type for a in p._actions if isinstance(a.type, Number)} | {"seed": SEED})


_NUMBERS: dict[str, Number] = {}


def _strength(text: str) -> float | str:
    """--prior-strength: 'auto' or a number >= 0 (a bad value is argparse's one-line usage error)."""
    from ..mixture.prior import parse_strength

    try:
        return parse_strength(text, "")
    except ValidationError:
        raise argparse.ArgumentTypeError(f"{text!r} is not 'auto' or a number >= 0 (e.g. 0.01)") from None


# Defaults of `plan` are applied after CONFIG.toml, so that only flags actually typed override the file.
_PLAN_DEFAULTS = {"seed": 0, "model": "auto", "cv_folds": 5, "layout": "auto", "candidates": 20_000,
                  "top_k": 128, "level": 0.9, "maximize": False, "renormalize": False, "refine": "auto"}
REFINE_CHOICES = ("auto", "on", "off")


def _settings(args: argparse.Namespace) -> argparse.Namespace:
    """The plan's settings: the flags given, then CONFIG.toml, then the defaults (a new namespace; the
    parsed arguments are left as they were)."""
    merged = dict(vars(args))
    _merge_file(merged, args.config)
    for key, value in _PLAN_DEFAULTS.items():
        if merged[key] is None:
            merged[key] = value
    return argparse.Namespace(**merged)


def _merge_file(settings: dict[str, Any], config: str | None) -> None:
    if not config:
        return
    path = Path(config)
    doc = read_toml(path, "plan config")
    for key, value in doc.items():
        if key not in _PLAN_KEYS:
            raise ValidationError(f"{path}: unknown key {key!r}; allowed: {sorted(_PLAN_KEYS)}")
        typ = _PLAN_KEYS[key]
        if typ is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if not isinstance(value, typ) or (typ is int and isinstance(value, bool)):
            raise ValidationError(f"{path}, key {key!r}: {value!r} should be of type {typ.__name__}")
        if key in _NUMBERS:
            value = _NUMBERS[key].check(value, f"{path}, key {key!r}")
        if key == "prior_strength":
            from ..mixture.prior import parse_strength

            value = parse_strength(value, f"{path}, key 'prior_strength'")
        if key == "refine" and value not in REFINE_CHOICES:
            raise ValidationError(f"{path}, key 'refine': {value!r} should be one of {', '.join(REFINE_CHOICES)}")
        if key == "scale_runs" and not all(isinstance(v, str) for v in value):
            raise ValidationError(f"{path}, key 'scale_runs': {value!r} should be a list of run tables (paths)")
        if key in _PATH_KEYS and not all(str(v).strip() for v in (value if isinstance(value, list) else [value])):
            raise ValidationError(f"{path}, key {key!r}: an empty path; name a file or folder (or leave the key out)")
        if key in _PATH_KEYS:
            value = ([_relative(path, v) for v in value] if isinstance(value, list) else _relative(path, value))
        dest = "pin" if key == "pins" else key
        if key in ("pins", "where"):
            value = [f"{k}={v}" for k, v in value.items()]
        # Flags given on the command line win over the file (options not typed are None or []).
        current = settings[dest]
        if current is None or current == []:
            settings[dest] = value


def _relative(config: Path, value: str) -> str:
    """A path in a config file is relative to that file."""
    return value if Path(value).is_absolute() else str(config.parent / value)


def run(args: argparse.Namespace) -> int:
    args = _settings(args)
    if not args.runs:
        raise ValidationError("no runs given; pass --runs RUNS or a CONFIG.toml with runs = '...'")
    from ..mixture.plan import CANDIDATE_WEIGHTS, make_plan
    from ..data.pools import PoolSet

    pools = load_pools(args.pools)
    given = [f for f, v in (("--tokens", args.tokens), ("--flops", args.flops), ("--budget-range", args.budget_range))
             if v is not None]
    if pools is None and given:
        raise ValidationError(f"{given[0]} needs --pools: availability caps need each pool's token count")
    tokens, budget = _plan_budget(args, pools)
    sweep = _budget_sweep(args)
    outs = [Path(args.out) / "plan.json", Path(args.out) / "candidates.csv"] if args.out else []
    if sweep is not None and args.out:
        outs.append(Path(args.out) / "budget_sweep.csv")
    report = report_path(args, args.out)
    check_writable(outs + ([report] if report else []), args.force)
    pools, layout = bucket_space(args, pools)
    runs, other_budgets = _split_budgets(load_runs(args, pools))
    pools = pools or PoolSet.from_names(runs.pools)
    check_weights_size(args.candidates, len(pools), "--candidates")
    from ..simplex import build_constraints

    pins = parse_named_numbers(args.pin)
    try:  # refuse impossible constraints before fitting
        constraints = build_constraints(pools, tokens, pins)
    except InfeasibleError:
        # Epoch caps that cannot be met do not stop a repetition-aware plan (make_plan reports them).
        if not (args.repetition_runs or args.scale_runs or args.r_star is not None) or args.repetition_caps:
            raise
        constraints = None
    model = fit_from_args(args, runs)
    from functools import cache

    # --repetition-runs feed both models below: each table is read once.
    read = cache(lambda path: read_other_runs(args, path, pools))
    repetition = _repetition_model(args, tokens, model, runs, pools, read)
    size = args.params if args.params is not None else (budget or {}).get("params")
    groups = None if layout is None else layout.groups
    scale = _scale_model(args, tokens, size, model, runs, pools, read, other_budgets, groups)
    options = {"decimals": args.round, "min_weight": args.min_weight or 0.0,
               "pins": pins, "seed": args.seed, "level": args.level, "n_candidates": args.candidates,
               "top_k": args.top_k, "repetition": repetition, "combine_caps": bool(args.repetition_caps),
               "scale": scale, "buckets": layout}
    if args.refine != "auto":  # 'auto': make_plan's rule (mixplan.mixture.plan.model_search_options)
        from ..simplex.optimizer import REFINE_ROUNDS

        options["refine_rounds"] = REFINE_ROUNDS if args.refine == "on" else 0
    if args.ot_mode and not args.ot:
        raise ValidationError("--ot-mode goes with --ot DIR (an OT extrapolator study)")
    if args.ot:
        from ..transport.study import load_ot_study

        if pools is not None and pools.groups:  # its selection bounds each pool, not sums of pools
            raise ValidationError(f"{args.pools}: --ot with a manifest that groups pools is not supported (the OT "
                                  "extrapolator's selection bounds each pool only); leave --ot out or the groups")

        sizes = np.unique(runs.frame["tokens"].to_numpy(dtype=float)) if "tokens" in runs.frame.columns else []
        options |= {"ot": load_ot_study(args.ot), "ot_mode": args.ot_mode or "compare",
                    "ot_base_tokens": float(sizes[0]) if len(sizes) == 1 else None}
    selection = None
    if args.prior_strength is not None and args.ot and options["ot_mode"] in ("alone", "size"):
        raise ValidationError(f"--prior-strength regularises the regressor's search; --ot-mode {options['ot_mode']} "
                              "replaces or re-ranks its optimum by the OT extrapolator without the prior: use "
                              "--ot-mode compare, or leave --prior-strength out")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixplanWarning)  # the plan carries its warnings; printed below
        if args.prior_strength == "auto":
            selection = _choose_prior_strength(args, runs, model, pools, tokens, options)
            options["prior_strength"] = selection.chosen
        elif args.prior_strength is not None:
            options["prior_strength"] = args.prior_strength
        plan = make_plan(model, pools, tokens=tokens, constraints=constraints, **options)
        if selection is not None:
            plan.prior["selection"] = selection.to_dict()
        rows = [] if sweep is None else [_sweep_row(make_plan(model, pools, tokens=t, **options), t)
                                         for t in sweep]
    # The manifest (its sources: mixplan export's paths) and the model (export's cost of rounding) go with it.
    doc = plan.to_dict() | ({"budget": budget} if budget else {}) | ({"manifest": _beside(args.pools, args.out)}
                                                                     if args.pools else {})
    if args.ot:  # the OT study, so that mixplan report can draw its predictions again
        doc["ot_study"] = _beside(args.ot, args.out)
    text = plan.report()
    if budget:  # the run shape the compute buys, with its learning rate and batch size (mixplan budget)
        text = (f"run shape for {budget['flops']:.4g} FLOPs ({budget['law']}): {budget['params']:.4g} parameters, "
                f"{budget['tokens']:.4g} tokens, learning rate {budget['learning_rate']:.3g}, batch "
                f"{budget['batch_size']:.4g} tokens" + (
                    f"\n  = {budget['budget_in_unit']:.4g} {budget['unit']} at {budget['units_per_token']:g} "
                    f"{budget['unit']} per token (--units-per-token)" if "unit" in budget else "") + "\n\n" + text)
    if sweep is not None:
        import pandas as pd

        frame = pd.DataFrame(rows)
        doc["budget_sweep"] = frame.to_dict(orient="records")
        text += "\n\nrecommended mixture by target budget:\n" + frame.to_string(index=False, float_format="%.4g")
    if args.out:
        model.save(Path(args.out) / "model", force=args.force)
        write_json_atomic(outs[0], doc, force=args.force)
        cands = plan.candidates_frame()
        write_table_atomic(outs[1], cands, force=args.force)
        if len(cands) < len(plan.result.candidates):
            text += (f"\n\ncandidates.csv: the {len(cands)} candidates re-scored exactly, of {len(plan.result.candidates)} "
                     f"scored (all of them are written up to {CANDIDATE_WEIGHTS:,} weights)")
        if sweep is not None:
            write_table_atomic(outs[2], frame, force=args.force)
    if report:
        from ..report.plan import plan_report

        plan_report(report, doc, model, frame if sweep is not None else None, scale=scale, unique_tokens=pools.tokens,
                    ot=options.get("ot"), force=args.force)
        outs.append(report)
    emit(args, doc, text + (f"\n\nwritten: {', '.join(map(str, outs))}" if outs else ""))
    return 0


def _choose_prior_strength(args: argparse.Namespace, runs: Any, model: Any, pools: Any, tokens: float | None,
                           options: dict[str, Any]) -> Any:
    """--prior-strength auto (:func:`mixplan.mixture.strength.choose_plan_strength`), its models fitted as the
    options ask (the judge's kind aside), and refused where the folds would not be held out."""
    from ..mixture.strength import choose_plan_strength

    if options.get("scale") is not None or options.get("repetition") is not None:
        # those models were fitted on every run: a fold's optimum would not be the refit's without the fold
        raise ValidationError("--prior-strength auto refits the proxy-scale model per fold; an at-scale or "
                              "repetition-aware model (--scale-runs, runs at several budgets, --repetition-runs, "
                              "--r-star) is fitted on every run, so its folds would not be held out: give a fixed "
                              "--prior-strength")
    # The OT extrapolator's optimum does not depend on the strength: the folds compare the regressor's.
    fold_options = {k: v for k, v in options.items() if not k.startswith("ot")}

    def fit(fold_runs: Any, kind: str | None) -> Any:
        what = "the model without a fold" if kind is None else "the judge of a fold, fitted on its runs"
        try:
            return fit_objective(args if kind is None else argparse.Namespace(**vars(args) | {"model": kind}),
                                 fold_runs, model.objective)
        except ValidationError as exc:
            raise ValidationError(f"--prior-strength auto: {what} ({len(fold_runs)} runs) cannot be fitted: {exc}; "
                                  "add runs, use another --model, or give a fixed --prior-strength") from None

    with working("choosing --prior-strength by cross-validated regret"):
        return choose_plan_strength(runs, model, pools, fit, tokens=tokens, **fold_options)


def _beside(path: str, out: str | None) -> str:
    """``path`` as plan.json records it: relative to the plan's folder (so that the two move together),
    as given when the plan is only printed."""
    return os.path.relpath(Path(path).resolve(), Path(out).resolve()) if out else path


def _plan_budget(args: argparse.Namespace, pools: Any) -> tuple[float | None, dict[str, Any] | None]:
    """The target budget in the manifest's unit: --tokens, or the run shape that --flops buys (returned as
    well), its tokens converted when the manifest counts bytes or words (--units-per-token)."""
    if args.flops is None:
        if args.law is not None:
            raise ValidationError("--law goes with --flops")
        if args.units_per_token is not None:
            raise ValidationError("--units-per-token goes with --flops (--tokens is already in the manifest's unit)")
        if args.params is not None and args.tokens is None:
            raise ValidationError("--params goes with --flops or --tokens (the big run's size and budget)")
        return args.tokens, None
    if args.tokens is not None:
        raise ValidationError("give the budget as --tokens or as --flops, not both")
    from ..laws.budget import run_shape

    from ..data.tokens import in_manifest_unit

    shape = run_shape(args.flops, params=args.params, law=args.law or "epoch-replicate")
    tokens = in_manifest_unit(shape.tokens, pools.token_unit, args.units_per_token)
    extra = {} if args.units_per_token is None else {"units_per_token": args.units_per_token, "unit": pools.token_unit,
                                                       "budget_in_unit": tokens}
    return tokens, shape.to_dict() | extra


def _budget_sweep(args: argparse.Namespace) -> list[float] | None:
    if not args.budget_range:
        return None
    steps = args.budget_steps or 9
    a, b = parse_budget_range(args.budget_range, "1e6:1e8")
    return [float(t) for t in np.geomspace(a, b, steps)]


def _sweep_row(plan: Any, tokens: float) -> dict[str, Any]:
    rec = plan.mixtures["recommended"]
    row = {"tokens": tokens} | {f"w_{p}": v for p, v in rec["weights"].items()}
    row["max_epochs"] = max(rec["epochs"].values())
    if plan.buckets is not None:  # the keep-fraction of each bucketed pool moves with the budget too
        keep = plan.buckets["mixtures"]["recommended"]["keep_fraction"]
        row |= {f"keep_{p}": keep[p] for p in plan.buckets["bucketed"]}
    from ..mixture.plan import headline

    row["prediction"] = headline(rec)["prediction"]
    return row


def _split_budgets(runs: Any) -> tuple[Any, list[Any]]:
    """A runs table that spans several budgets (or model sizes, a params column): the regressor is fitted
    on the proxy runs (the budget and size with the most runs; on a tie the smallest), and the other runs
    feed the at-scale model as --scale-runs do."""
    columns = [c for c in ("params", "tokens") if c in runs.frame.columns]
    if not columns:
        return runs, []
    keys = runs.frame[columns].to_numpy(dtype=float)
    scales, which, counts = np.unique(keys, axis=0, return_inverse=True, return_counts=True)
    if len(scales) < 2:
        return runs, []
    proxy = which.ravel() == np.argmax(counts)  # argmax takes the first, i.e. the smallest, of tied scales
    return runs.subset(proxy), [runs.subset(~proxy)]


def _scale_model(args: argparse.Namespace, tokens: float | None, size: float | None, model: Any, runs: Any,
                 pools: Any, read: Any, other_budgets: list[Any], groups: list[str] | None = None) -> Any:
    """The at-scale model fitted on the proxy runs and the runs at other budgets or sizes (those of the
    runs table, --scale-runs and --repetition-runs, read by ``read``), at the big run's ``size`` when
    the runs span model sizes; None without such runs."""
    paths = list(args.scale_runs) + ([args.repetition_runs] if args.repetition_runs else [])
    sizeless = ValidationError("--params with --tokens is the big run's size for runs at several model sizes (a params "
                               "column in every runs table); these runs have one size or none")
    if not paths and not other_budgets:
        if args.params is not None and args.flops is None:
            raise sizeless
        return None
    if tokens is None:
        where = f"{runs.source} has runs at several budgets" if other_budgets else "runs at other budgets"
        raise ValidationError(f"{where} (--scale-runs, --repetition-runs, or the runs table's tokens column): the plan "
                              "at the big run's budget needs that budget (--tokens or --flops)")
    from ..mixture.scale import fit_at_scale

    tables = [runs] + other_budgets + [read(p) for p in paths]
    for t in tables:
        if "tokens" not in t.frame.columns:
            raise ValidationError(f"{t.source}: no tokens column; the at-scale plan needs each run's budget")
    objective = model.objective
    W = np.vstack([t.weights for t in tables])
    T = np.concatenate([t.frame["tokens"].to_numpy(dtype=float) for t in tables])
    y = np.concatenate([objective.values(t) for t in tables])
    proxy = tables[0].frame["tokens"].to_numpy(dtype=float)
    from ..mixture.repetition import check_whole_pools

    check_whole_pools(runs)
    # each run's unique tokens of each pool: the whole pools, or a repetition-matched run's subsamples
    available = np.vstack([t.unique_tokens(pools.tokens) for t in tables])
    if np.ptp(proxy) > 0:
        raise ValidationError(f"{runs.source}: the at-scale plan fits the regressor on the proxy runs, which must "
                              "share one budget (give the runs at other budgets with --scale-runs)")
    N = None
    if all("params" in t.frame.columns for t in tables):
        N = np.concatenate([t.frame["params"].to_numpy(dtype=float) for t in tables])
        if np.ptp(N) == 0:
            N = None
    if N is None and args.params is not None and args.flops is None:
        raise sizeless
    if N is not None and size is None:
        raise ValidationError(f"the runs span model sizes {', '.join(f'{v:.4g}' for v in np.unique(N))}: give the big "
                              "run's size (--params, or --flops with --params)")
    scale = fit_at_scale(model, W, T, y, pools.tokens, params=N, proxy_tokens=float(proxy[0]),
                         proxy_params=None if N is None else float(tables[0].frame["params"].iloc[0]),
                         level=args.level, seed=args.seed, groups=groups,
                         r_star_pools=[p.r_star for p in pools],  # the manifest's own R* of a pool or bucket
                         available=available, synthetic=pools.synthetic)
    return scale.at_params(size if N is not None else None)


def _repetition_model(args: argparse.Namespace, tokens: float | None, model: Any, runs: Any, pools: Any,
                      read: Any) -> Any:
    """The repetition-aware objective of --repetition-runs (fitted; the table read by ``read``) or
    --r-star (given), or None."""
    from ..mixture.repetition import RepetitionModel, fit_repetition_runs

    if args.r_star is not None and args.repetition_runs:
        raise ValidationError("give --repetition-runs (fit R*) or --r-star (set it), not both")
    if args.r_star is not None:
        check_number(args.r_star, "--r-star", lo=0.0, lo_open=True, fix="Muennighoff et al.'s R_D* is 15.4")
        budgets = runs.frame["tokens"].to_numpy(dtype=float) if "tokens" in runs.frame else np.empty(0)
        return RepetitionModel(r_star=args.r_star, gamma=args.gamma or 0.0, source="given (--r-star, --gamma)",
                               synthetic=pools.synthetic,
                               law_reference=float(np.median(budgets)) if len(budgets) else None)
    if args.gamma is not None:
        raise ValidationError("--gamma goes with --r-star")
    if not args.repetition_runs:
        if args.repetition_caps:
            raise ValidationError("--repetition-caps needs a repetition-aware objective (--repetition-runs or --r-star)")
        return None
    if tokens is None:
        raise ValidationError("the repetition-aware objective needs the target budget (--tokens or --flops)")
    return fit_repetition_runs(model, runs, read(args.repetition_runs), pools.tokens, seed=args.seed,
                               level=args.level, synthetic=pools.synthetic)


#: Unset options are None, so that a config file can fill them (see _settings).
PARSER_DEFAULTS = {k: None for k in _PLAN_DEFAULTS}
