"""mixplan budget: what a compute budget buys."""

from __future__ import annotations

import argparse


from ..exceptions import ValidationError
from .common import emit, load_pools, parse_named_numbers

HELP = "what a compute budget buys: parameters, tokens, loss, learning rate, batch size, pool epochs"


def add_arguments(p: argparse.ArgumentParser) -> None:
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


def run(args: argparse.Namespace) -> int:
    from ..laws.budget import pool_repetition, run_shape

    shape = run_shape(args.flops, params=args.params, tokens=args.tokens, unique_tokens=args.unique_tokens,
                      law=args.law, flops_per_token_param=args.flops_per_token_param)
    if args.mixture and not args.pools:
        raise ValidationError("--mixture needs --pools (each pool's available tokens)")
    if args.pools:
        pools = load_pools(args.pools)
        weights = parse_named_numbers(args.mixture, "--mixture", "POOL=WEIGHT", "web=0.7") if args.mixture else dict(zip(pools.names, map(float, pools.prior)))
        total = sum(weights.values())
        if abs(total - 1.0) > 1e-6:
            raise ValidationError(f"--mixture weights sum to {total:g}; they must sum to 1")
        r_star = shape.law_params.get("R_D_star")
        rows = pool_repetition(shape.tokens, weights, dict(zip(pools.names, map(float, pools.tokens))),
                               *(() if r_star is None else (r_star,)))
        from dataclasses import replace

        shape = replace(shape, pools=rows)
    emit(args, shape.to_dict(), shape.report())
    return 0
