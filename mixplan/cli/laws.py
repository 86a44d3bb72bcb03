"""mixplan laws fit: fit a scaling law (Chinchilla, data-constrained, QQT, a mixture law) to runs."""

from __future__ import annotations

import argparse

from .._io import check_writable
from ..exceptions import ValidationError
from .common import Parser, add_common, emit, parse_named_numbers, read_table_where
from .common import BOOTSTRAP, LEVEL, POSITIVE

HELP = "fit scaling laws to runs (laws fit)"

#: Its options live on its subcommands.
COMMON_OPTIONS = False


_LAWS = ("chinchilla", "data-constrained", "qqt", "mixture-additive", "mixture-joint", "mixture-effective",
         "synthetic")


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="laws_command", metavar="fit", parser_class=Parser)
    f = sub.add_parser("fit", help="fit a law to runs (Huber on log-loss, L-BFGS-B, bootstrap intervals)",
                       description="Fit a scaling law to proxy runs: minimise the Huber loss of log-loss by L-BFGS-B "
                                   "from the law's grid of starts, polish to a stationary point, and give bootstrap "
                                   "intervals. The report flags parameters the runs do not identify; --out writes a "
                                   "FIT.json (with the runs' range) for 'mixplan budget --law'.")
    f.add_argument("runs", metavar="RUNS", help="table with params, tokens (and unique_tokens) columns and the target; "
                   "the mixture laws also read the weight columns w_<pool>")
    f.add_argument("--law", required=True, choices=_LAWS, metavar="LAW",
                   help="the law: chinchilla (E + A/N^alpha + B/D^beta; columns params, tokens), data-constrained "
                        "(Muennighoff et al.: adds unique_tokens), qqt (quality-quantity trade-off: tokens, "
                        "unique_tokens), mixture-additive, mixture-joint or mixture-effective (also the w_<pool> "
                        "weights), synthetic (SynthLLM's rectified E + B/(D_l + D)^beta of a synthetic pool: tokens)")
    f.add_argument("--target", required=True, metavar="SPEC",
                   help="the loss (or error): a column, or a weighted sum such as 'mean(loss_*)' or '0.5*a + 0.5*b'")
    f.add_argument("--where", action="append", default=[], metavar="COL=VALUE", help="keep rows with COL == VALUE")
    f.add_argument("--base", default="datablations", metavar="NAME|FIT.json|none",
                   help="data-constrained: the fixed Chinchilla constants (default datablations); 'none' fits "
                        "all seven parameters")
    f.add_argument("--qqt-objective", default="effective_utility", choices=["effective_utility", "effective_data"],
                   help="qqt: repetition decays the utility (exponent) or the sample count")
    f.add_argument("--fix", action="append", default=[], metavar="NAME=VALUE",
                   help="qqt: hold a parameter (a, b, tau, d) fixed, e.g. --fix a=0.025 --fix d=0.1 (the authors "
                        "share a and d across pools)")
    f.add_argument("--pools", metavar="POOLS.toml",
                   help="mixture-effective: the manifest whose pools' tokens are their unique tokens")
    f.add_argument("--r-star", type=POSITIVE, metavar="R",
                   help="mixture-effective: hold R* fixed (default: fitted; Muennighoff et al.'s R_D* is 15.4)")
    f.add_argument("--generic", action="store_true",
                   help="mixture-effective: add the generic data term B / (D'/D0)^beta on the total effective tokens "
                        "(needs runs at several budgets or sizes)")
    f.add_argument("--reference", type=POSITIVE, metavar="D0",
                   help="mixture-effective: the tokens the C_i are quoted at (default: the runs' smallest budget)")
    f.add_argument("--huber-delta", default="1e-3", metavar="DELTA|auto",
                   help="Huber threshold on log-loss (1e-3, the Chinchilla recipe); 'auto': 1.345 x the residuals' "
                        "robust scale (better when runs are noisier than ~0.1%%)")
    f.add_argument("--bootstrap", type=BOOTSTRAP, default=200, help="bootstrap refits for the intervals (200)")
    f.add_argument("--level", type=LEVEL, default=0.95, help="interval level (0.95)")
    f.add_argument("--out", metavar="FIT.json", help="write the fit here")
    f.add_argument("--report", metavar="FILE", help="also write an offline HTML report: the law against its data, "
                   "the residuals, the parameters with their intervals")
    f.add_argument("--force", action="store_true", help="overwrite an existing output")
    add_common(f)


def run(args: argparse.Namespace) -> int:
    if args.laws_command != "fit":
        raise ValidationError("mixplan laws: choose a subcommand: fit")
    from .. import laws

    from ..data.objective import with_objective_column

    frame = with_objective_column(read_table_where(args.runs, args.where), args.target, str(args.runs))
    check_writable([p for p in (args.out, args.report) if p], args.force)
    if args.law == "chinchilla":
        law = laws.CHINCHILLA
    elif args.law == "synthetic":
        law = laws.SYNTHETIC
    elif args.law == "data-constrained":
        from ..laws.budget import resolve_law

        law = laws.data_constrained_law(None if args.base == "none" else resolve_law(args.base)[1])
    elif args.law.startswith("mixture-"):
        from ..data.runs import WEIGHT_PREFIX

        weight_columns = [c for c in frame.columns if str(c).startswith(WEIGHT_PREFIX)]
        if len(weight_columns) < 2:
            raise ValidationError(f"{args.runs}: the mixture law needs the runs' weights, one column per pool named "
                                  f"{WEIGHT_PREFIX}<pool> (found {len(weight_columns)})")
        names = [c[len(WEIGHT_PREFIX):] for c in weight_columns]
        law = (laws.mixture_additive_law(names) if args.law == "mixture-additive" else
               laws.mixture_joint_law(names) if args.law == "mixture-joint" else _effective_law(args, frame, names))
    else:
        fixed = parse_named_numbers(args.fix, "--fix", "NAME=VALUE", "a=0.025")
        unknown = sorted(set(fixed) - {"a", "b", "tau", "d"})
        if unknown:
            raise ValidationError(f"--fix {unknown[0]}=...: the qqt law's parameters are a, b, tau, d")
        law = laws.qqt_law(args.qqt_objective, **fixed)
    if args.law != "mixture-effective" and (args.pools or args.r_star is not None or args.reference is not None
                                            or args.generic):
        raise ValidationError("--pools, --r-star, --reference and --generic apply to --law mixture-effective only")
    if args.fix and args.law != "qqt":
        raise ValidationError("--fix applies to --law qqt only")
    data = {c: frame[c].to_numpy() for c in law.columns if c in frame.columns}
    if law.weights:  # one (n, K) matrix from the w_<pool> columns
        data[law.weights] = frame[weight_columns].to_numpy()  # text in a cell: fit_law names its row
    delta = laws.parse_delta(args.huber_delta, "--huber-delta")
    fit = laws.fit_law(law, data, frame[args.target].to_numpy(), delta=delta, n_bootstrap=args.bootstrap,
                       level=args.level, seed=args.seed, where=str(args.runs), rows=(frame.index + 1).tolist(),
                       target=args.target)
    doc = fit.to_dict() | {"target": args.target, "source": str(args.runs)}
    if args.out:
        fit.save(args.out, force=args.force, target=args.target, source=str(args.runs))
    if args.report:
        import numpy as np

        from ..report.results import law_report

        law_report(args.report, doc, frame[args.target].to_numpy(dtype=float),
                   np.exp(law.log_predict(fit.theta, data)), data, args.target, force=args.force)
    written = [p for p in (args.out, args.report) if p]
    emit(args, {k: v for k, v in doc.items() if k != "bootstrap"} | {"out": args.out, "report": args.report},
          fit.report() + (f"\nwritten: {', '.join(written)}" if written else ""))
    return 0


def _effective_law(args: argparse.Namespace, frame: object, names: list[str]) -> object:
    """The per-pool effective-data law for the runs' pools, with their unique tokens from --pools."""
    from .. import laws
    from .._checks import check_number
    from .common import load_pools

    if not args.pools:
        raise ValidationError("--law mixture-effective needs --pools POOLS.toml: each pool's unique tokens")
    pools = load_pools(args.pools)
    missing = [n for n in names if n not in pools.names]
    if missing:
        raise ValidationError(f"{args.runs}: pool {missing[0]!r} has weights in the runs but no entry in {args.pools}")
    if "tokens" not in frame.columns:  # type: ignore[attr-defined]
        raise ValidationError(f"{args.runs}: --law mixture-effective needs a tokens column (each run's budget)")
    unique = [pools.by_name(n).tokens for n in names]
    if args.r_star is not None:
        check_number(args.r_star, "--r-star", lo=0.0, lo_open=True, fix="Muennighoff et al.'s R_D* is 15.4")
    reference = args.reference
    if reference is None:
        reference = float(frame["tokens"].min())  # type: ignore[index]
    check_number(reference, "--reference", lo=0.0, lo_open=True, fix="e.g. the proxy runs' tokens")
    params = "params" in frame.columns and frame["params"].nunique() > 1  # type: ignore[index, attr-defined]
    return laws.mixture_effective_law(names, unique, r_star=args.r_star, reference=reference, params=params,
                                      generic=args.generic)
