"""mixplan design: a first swarm of proxy runs (--n) or the next runs (--next)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


from .._io import check_writable
from ..exceptions import ValidationError
from .common import (add_fit_options, add_report_option, add_rounding_options, bucket_space, emit, fit_from_args,
                     load_pools, load_runs, parse_named_numbers, read_other_runs, report_path)
from .common import Number, POSITIVE

HELP = ("design proxy runs: a RegMix-style swarm with floors and caps (--n), or the K runs that most "
        "improve the decision given the runs so far (--next)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--pools", required=True, metavar="POOLS", help="pool manifest (TOML)")
    # At most 10,000: every run is a file to write and, at 20,000, design takes ~20 s (proxy swarms are hundreds)
    p.add_argument("--n", type=Number(int, 1, 10_000), metavar="N",
                   help="design a random swarm of N proxy runs (RegMix-style)")
    p.add_argument("--next", type=Number(int, 1, 10_000), metavar="K",
                   help="propose the K runs with the largest batch expected improvement under a model fitted to "
                        "--runs (needs --runs and --target; see mixplan.mixture.sequential); pools no run in --runs "
                        "used (e.g. added since, see mixplan runs reuse) get weight in the first half of them")
    p.add_argument("--out", required=True, metavar="DIR", help="writes DIR/mixtures.csv and DIR/runs/<run_id>.yaml")
    p.add_argument("--tokens", type=POSITIVE, metavar="D", help="proxy runs' token budget (caps repetition)")
    p.add_argument("--runs", metavar="RUNS",
                   help="existing proxy runs: new mixtures keep --min-distance from them; with --next also the runs "
                        "the model is fitted on")
    p.add_argument("--min-distance", type=Number(float, 0, 1), default=0.01,
                   help="minimum total-variation distance (0.01)")
    p.add_argument("--buckets", action="store_true",
                   help="with --n: the manifest's quality buckets as pools (columns w_<pool>_<bucket>), half of the "
                        "mixtures threshold-shaped (each pool's top buckets, by size), so that plan can compare the "
                        "filtering policies")
    p.add_argument("--match-budget", type=POSITIVE, metavar="T",
                   help="with --n and --tokens D: repetition-matched runs for a big run of T tokens - each pool "
                        "subsampled to D/T of its unique tokens, so a run reads every pool as often as the big run "
                        "would (run files carry the subsample sizes and the seeded rule choosing the documents)")
    # 0 is a temperature in its own right (the draws centre on the uniform mixture, whatever the token shares),
    # so the range is closed at 0
    p.add_argument("--temperature", type=Number(float, 0), default=None,
                   help="the draws centre on the prior raised to this power: default 0.5 (RegMix's), 0 with "
                        "--match-budget; 0 centres them on the uniform mixture")
    p.add_argument("--strengths", type=_strength_range, metavar="LO:HI",
                   help="Dirichlet strengths of the draws, 15 log-spaced from LO to HI (default 0.1:5, RegMix's); "
                        "with groups of pools, of the leaves inside their groups")
    p.add_argument("--group-strengths", type=_strength_range, metavar="LO:HI",
                   help="with groups of pools (parent keys in the manifest): strengths of the draws of the groups' "
                        "shares (default: --strengths)")
    p.add_argument("--require", action="append", default=[], metavar="POOL",
                   help="a pool or group every designed run reads (repeatable)")
    p.add_argument("--prefix", help="run id prefix (default 'run'; with --next 'next', numbered on from the "
                                    "<prefix>-<number> ids already in RUNS)")
    add_rounding_options(p)
    add_report_option(p)
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--renormalize", action=argparse.BooleanOptionalAction, default=False,
                   help="divide each run's weights by their sum instead of rejecting rows that do not sum to 1")
    p.add_argument("--where", action="append", default=[], metavar="COL=VALUE",
                   help="keep only the rows of RUNS whose COL equals VALUE (repeatable)")
    g = p.add_argument_group("with --next")
    add_fit_options(g)  # type: ignore[arg-type]  # an argument group has the same add_argument
    g.add_argument("--pin", action="append", default=[], metavar="POOL=W", help="fix a pool's weight (repeatable)")
    g.add_argument("--repetition-runs", metavar="RUNS",
                   help="with --match-budget: runs that repeat the pools (earlier repetition-matched runs, or runs at "
                        "a larger budget); the repetition model fitted on --runs and these (R*, gamma) prices "
                        "repetition at T (default: Muennighoff et al.'s R* = 15.39, no log-data term)")
    # None = not typed, so that --n can refuse the options only --next uses instead of ignoring them.
    p.set_defaults(model=None, maximize=None, cv_folds=None, metrics=None, layout="auto")


def _strength_range(text: str) -> tuple[float, ...]:
    """``LO:HI`` -> 15 strengths log-spaced from LO to HI (RegMix's grid is 0.1:5)."""
    import numpy as np

    try:
        lo, hi = (float(x) for x in text.split(":"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not LO:HI (e.g. 0.1:5)") from None
    if not (0 < lo <= hi < float("inf")):
        raise argparse.ArgumentTypeError(f"{text!r}: strengths must satisfy 0 < LO <= HI (e.g. 0.1:5)")
    return tuple(float(v) for v in np.geomspace(lo, hi, 15))


def run(args: argparse.Namespace) -> int:

    from ..mixture.design import design_swarm, write_design
    from ..models.mixture_model import cv_summary

    if (args.n is None) == (args.next is None):
        raise ValidationError("give exactly one of --n N (a random swarm of N runs) and --next K (the K runs that "
                              "most improve the plan of --runs)")
    pools = load_pools(args.pools)
    out = Path(args.out)
    if args.n is not None:
        only_next = [f"--{k.replace('_', '-')}" for k in ("target", "model", "maximize", "cv_folds", "cv_repeats",
                                                          "pin", "repetition_runs")
                     if getattr(args, k) not in (None, [])]
        if only_next:
            raise ValidationError(f"{', '.join(only_next)} only appl{'ies' if len(only_next) == 1 else 'y'} to "
                                  "--next K (proposals from a fitted model); drop it for a random swarm with --n")
        layout = None
        if args.buckets:
            from ..mixture.buckets import BucketLayout

            if not pools.bucketed:
                raise ValidationError(f"--buckets: no pool of {args.pools} is cut into quality buckets (add buckets = "
                                      "[0.1, 0.3, ...] and score = ... to a pool)")
            layout = BucketLayout.from_pools(pools)
            pools = layout.bucket_pools()
        existing = load_runs(args, pools).weights if args.runs else None
        d = design_swarm(pools, args.n, seed=args.seed, tokens=args.tokens, temperature=args.temperature,
                         min_distance=args.min_distance, existing=existing, prefix=args.prefix or "run",
                         buckets=layout, match_budget=args.match_budget,
                         **({} if args.strengths is None else {"strengths": args.strengths}),
                         group_strengths=args.group_strengths, required=args.require)
        frame = d.frame
        doc: dict[str, Any] = {"out": str(out)} | d.to_dict()
        lines = [f"{args.n} mixtures written to {out / 'mixtures.csv'} and {out / 'runs'}/", "", d.report()]
    else:
        # Every cheap refusal comes before the (possibly minutes-long) fit.
        only_n = [f for f, v in (("--strengths", args.strengths), ("--group-strengths", args.group_strengths),
                                 ("--require", args.require)) if v]
        if only_n:
            raise ValidationError(f"{', '.join(only_n)}: options of a random swarm (--n N); --next K proposes runs "
                                  "from a fitted model")
        if not args.runs:
            raise ValidationError("--next needs --runs RUNS: the proxy runs whose fitted model says where to look "
                                  "next")
        if not args.target:
            raise ValidationError("--next needs --target SPEC: the objective the next runs should improve (e.g. "
                                  "--target loss_pile_cc)")
        if args.buckets:
            raise ValidationError("--buckets applies to --n (a first swarm); with --next the runs' own columns say "
                                  "whether the buckets are pools")
        pools, _ = bucket_space(args, pools)
        from ..simplex import build_constraints
        from ..mixture.sequential import next_run_ids, propose_next

        pins = parse_named_numbers(args.pin)
        if args.repetition_runs and args.match_budget is None:
            raise ValidationError("--repetition-runs prices repetition at the big run's budget: it goes with "
                                  "--match-budget T")
        if args.match_budget is not None:
            from ..mixture.design import check_match_budget

            check_match_budget(args.tokens, args.match_budget)
        # refuse impossible constraints before fitting (matched runs have no epoch caps)
        build_constraints(pools, args.tokens if args.match_budget is None else None, pins)
        check_writable([out / "mixtures.csv"], args.force)
        runs = load_runs(args, pools)
        from ..mixture.repetition import check_whole_pools

        check_whole_pools(runs)
        ids = next_run_ids(args.prefix or "next", runs.file_run_ids or runs.run_ids, args.next)
        fit_args = argparse.Namespace(**vars(args) | {"model": args.model or "auto", "cv_folds": args.cv_folds or 5,
                                                      "maximize": bool(args.maximize)})
        model = fit_from_args(fit_args, runs)
        repetition = None
        if args.repetition_runs:
            from ..mixture.repetition import fit_repetition_runs

            more = read_other_runs(args, args.repetition_runs, pools)
            repetition = fit_repetition_runs(model, runs, more, pools.tokens, seed=args.seed)
        nxt = propose_next(model, pools, args.next, tokens=args.tokens, pins=pins, seed=args.seed,
                           min_distance=args.min_distance,
                           temperature=0.5 if args.temperature is None else args.temperature,
                           match_budget=args.match_budget, repetition=repetition)
        frame = nxt.frame(ids, args.tokens)
        if args.match_budget is not None:
            from ..mixture.design import matched_columns

            frame = matched_columns(frame, pools, args.tokens, args.match_budget)
        proposals = nxt.to_dict()
        for rid, row in zip(ids, proposals["proposals"]):
            row["run_id"] = rid
        doc = {"out": str(out), "runs": args.next, "model": model.cv["model"], "objective": model.objective.to_dict(),
               "cv": model.to_dict()["cv"]} | proposals
        sense = "maximize" if model.objective.maximize else "minimize"
        lines = [f"{args.next} proposals written to {out / 'mixtures.csv'} and {out / 'runs'}/: batch expected "
                 f"improvement ({sense} {model.objective.spec})",
                 f"model {model.cv['model']}: {cv_summary(model.cv)}", nxt.report(ids)]
        if repetition is not None:
            doc["repetition"] = repetition.to_dict()
            lines.insert(2, repetition.report())
    if args.round is not None or args.min_weight:
        frame, note = _typed(frame, pools.names, args.round, args.min_weight or 0.0)
        doc["rounding"] = note
        lines.append(note["text"])
    report = report_path(args, args.out)
    if report:
        check_writable([report], args.force)
    write_design(out, frame, pools.names, seed=args.seed, tokens=args.tokens, force=args.force)
    if report:
        from ..report.results import design_report
        from ..simplex import build_constraints

        caps = build_constraints(pools, args.tokens).upper
        design_report(report, frame, pools.names, dict(zip(pools.names, map(float, caps))), force=args.force)
        doc["report"] = str(report)
        lines.append(f"written: {report}")
    emit(args, doc, "\n".join(lines))
    return 0


def _typed(frame: Any, names: list[str], decimals: int | None, min_weight: float) -> tuple[Any, dict[str, Any]]:
    """The design's mixtures as a person would type them (--round, --min-weight), and what that changed:
    the largest change of a weight, and runs that became the same mixture (a swarm wants them apart)."""
    import numpy as np

    from ..simplex.rounding import round_mixture

    cols = [f"w_{n}" for n in names]
    W = frame[cols].to_numpy(dtype=float)
    typed = np.vstack([round_mixture(w, decimals, min_weight) for w in W])
    frame = frame.copy()
    frame[cols] = typed
    _, counts = np.unique(typed, axis=0, return_counts=True)
    same = int((counts - 1).sum())
    note = {"decimals": decimals, "min_weight": min_weight, "max_weight_change": float(np.abs(typed - W).max()),
            "runs_now_identical": same}
    note["text"] = (f"typed mixtures ({'' if decimals is None else f'{decimals} decimals'}"
                    f"{', ' if decimals is not None and min_weight else ''}"
                    f"{f'pools under {min_weight:g} dropped' if min_weight else ''}): weights moved by at most "
                    f"{note['max_weight_change']:.2g}" + (f"; warning: {same} runs now repeat another run's mixture "
                                                         "(use more decimals)" if same else ""))
    return frame, note
