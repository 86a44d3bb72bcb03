"""mixplan budget: what a compute budget buys."""

from __future__ import annotations

import argparse


from ..exceptions import ValidationError
from .common import emit, load_pools, parse_named_numbers
from .common import POSITIVE

HELP = "what a compute budget buys: parameters, tokens, loss, learning rate, batch size, pool epochs"


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
    from dataclasses import replace

    from ..data.tokens import in_manifest_unit
    from ..laws.budget import pool_repetition, run_shape

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
        weights = (parse_named_numbers(args.mixture, "--mixture", "POOL=WEIGHT", "web=0.7") if args.mixture
                   else dict(zip(pools.names, map(float, pools.prior))))
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
