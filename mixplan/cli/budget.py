"""mixplan budget: what a compute budget buys."""

from __future__ import annotations

import argparse


from ..exceptions import MixplanWarning, ValidationError
from .common import emit, load_pools, parse_named_numbers
from .common import POSITIVE

HELP = "what a compute budget buys: parameters, tokens, loss, learning rate, batch size, pool epochs"
SEEDED = False  # nothing random: no --seed


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--flops", type=POSITIVE, required=True, metavar="C", help="training compute in FLOPs")
    p.add_argument("--params", type=POSITIVE, metavar="N", help="fix the model size (tokens follow from C)")
    p.add_argument("--tokens", type=POSITIVE, metavar="D", help="fix the training tokens (model size follows from C)")
    p.add_argument("--unique-tokens", type=POSITIVE, metavar="U", help="unique tokens available (data-constrained)")
    p.add_argument("--law", default="epoch-replicate", metavar="FIT.json|NAME",
                   help="a fit from 'mixplan laws fit', or hoffmann, epoch, epoch-replicate (default), datablations")
    p.add_argument("--flops-per-token-param", type=POSITIVE, default=6.0,
                   help="FLOPs per parameter per token, C = k N D (default 6)")
    p.add_argument("--pools", metavar="POOLS", help="pool manifest: report each pool's epochs and discount")
    p.add_argument("--mixture", action="append", default=[], metavar="POOL=W",
                   help="the mixture's weights (repeatable); default: the manifest's priors")
    p.add_argument("--units-per-token", type=POSITIVE, metavar="K",
                   help="with --pools counted in bytes, words or samples ([study] token_unit): that unit per model "
                        "token, e.g. 4.2 bytes per token; the pools' epochs use the budget's tokens times K")


def run(args: argparse.Namespace) -> int:
    import warnings
    from dataclasses import replace

    from ..data.tokens import in_manifest_unit
    from ..laws.budget import pool_repetition, run_shape

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixplanWarning)  # the shape carries its warnings; its report prints them
        shape = run_shape(args.flops, params=args.params, tokens=args.tokens, unique_tokens=args.unique_tokens,
                          law=args.law, flops_per_token_param=args.flops_per_token_param)
    if args.mixture and not args.pools:
        raise ValidationError("--mixture needs --pools (each pool's available tokens)")
    if args.units_per_token is not None and not args.pools:
        raise ValidationError("--units-per-token goes with --pools (it converts the budget into the manifest's unit)")
    extra: dict[str, object] = {}
    if args.pools:
        pools = load_pools(args.pools)
        budget = in_manifest_unit(shape.tokens, pools.token_unit, args.units_per_token)
        weights = (_mixture(args.mixture) if args.mixture else dict(zip(pools.names, map(float, pools.prior))))
        total = sum(weights.values())
        if abs(total - 1.0) > 1e-6:
            raise ValidationError(f"--mixture weights sum to {total:g}; they must sum to 1")
        r_star = shape.law_params.get("R_D_star")
        rows = pool_repetition(budget, weights, dict(zip(pools.names, map(float, pools.tokens))),
                               *(() if r_star is None else (r_star,)))
        shape = replace(shape, pools=rows)
        if args.units_per_token is not None:  # the pools' table is in the manifest's unit: say so
            extra = {"pool_unit": pools.token_unit, "units_per_token": args.units_per_token, "pool_budget": budget}
    text = shape.report()
    if extra:
        text += (f"\n(pools in {extra['pool_unit']}: {shape.tokens:.4g} tokens x {args.units_per_token:g} "
                 f"{extra['pool_unit']} per token = {budget:.4g} {extra['pool_unit']})")
    emit(args, shape.to_dict() | extra, text)
    return 0


def _mixture(items: list[str]) -> dict[str, float]:
    """``--mixture POOL=W`` options: each weight finite and >= 0, not all 0 (the sum to 1 is checked by the
    caller, for the manifest's priors too). A negative or NaN weight would otherwise print negative or
    NaN tokens per pool."""
    from .._checks import check_number

    weights = parse_named_numbers(items, "--mixture", "POOL=WEIGHT", "web=0.7")
    for pool, w in weights.items():
        check_number(w, f"--mixture {pool}", lo=0.0, why="a pool's share of the tokens",
                     fix="give each pool a weight >= 0, the weights summing to 1, e.g. --mixture web=0.7")
    if not any(weights.values()):
        raise ValidationError(f"--mixture gives every pool weight 0 ({', '.join(weights)}); give at least one pool a "
                              "positive weight, the weights summing to 1")
    return weights
