"""mixplan export: a plan's (or a design's) mixture in the format a training stack reads."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from .common import add_rounding_options, emit

HELP = ("write a plan's mixture (or every run of a design) for a trainer: Megatron-LM, GPT-NeoX, NeMo, OLMo-core, "
        "Hugging Face datasets, JSON, CSV")


def add_arguments(p: argparse.ArgumentParser) -> None:
    from ..mixture.export import EXPORT_FORMATS

    p.add_argument("plan", metavar="PLAN",
                   help="a plan (its --out folder or plan.json) or a design (its --out folder or mixtures.csv)")
    p.add_argument("--format", required=True, choices=list(EXPORT_FORMATS), metavar="FMT",
                   help="; ".join(f"{k}: {v[2]}" for k, v in EXPORT_FORMATS.items()))
    p.add_argument("--out", required=True, metavar="FILE",
                   help="the file to write (a design: a folder, one file per run)")
    p.add_argument("--mixture", default="recommended", metavar="NAME",
                   help="which of the plan's mixtures (default recommended; e.g. top_k_mean, hard_cap)")
    p.add_argument("--pools", metavar="POOLS.toml",
                   help="the manifest whose sources give the paths (default: the one the plan was made with)")
    p.add_argument("--path", action="append", default=[], metavar="POOL=PATH",
                   help="the path a trainer reads for POOL (repeatable; e.g. a Megatron prefix on the cluster)")
    add_rounding_options(p)
    p.add_argument("--force", action="store_true", help="replace an existing output")


def _read_plan(path: Path) -> tuple[str, dict[str, Any] | None, Path]:
    """("plan", plan.json, its folder) or ("design", None, mixtures.csv)."""
    if path.is_dir():
        if (path / "plan.json").is_file():
            path = path / "plan.json"
        elif (path / "mixtures.csv").is_file():
            return "design", None, path / "mixtures.csv"
        else:
            raise ValidationError(f"{path}: neither a plan folder (plan.json) nor a design folder (mixtures.csv)")
    if not path.is_file():
        raise ValidationError(f"{path}: no such file; give a plan folder or plan.json (mixplan plan --out), or a "
                              "design folder or mixtures.csv (mixplan design --out)")
    if path.suffix == ".csv":
        return "design", None, path
    return "plan", read_plan_json(path), path


def read_plan_json(path: Path) -> dict[str, Any]:
    """A plan.json written by ``mixplan plan --out``, checked to hold what ``export`` and ``report`` read first:
    the objective, the pools, each mixture's weight of every pool, the manifest and the constraints."""
    from .._io import read_json, saved_artefact

    doc = read_json(path, "a plan.json from mixplan plan --out", "not a plan")
    with saved_artefact(path, "plan", "write it again with 'mixplan plan --out'"):
        if not isinstance(doc, dict):
            raise TypeError("a JSON object is expected")
        if not isinstance(doc["objective"]["spec"], str):
            raise TypeError("'objective.spec' is not a text")
        pools, mixtures = doc["pools"], doc["mixtures"]
        if not (isinstance(pools, list) and all(isinstance(p, str) for p in pools)):
            raise TypeError("'pools' is not a list of pool names")
        if not (isinstance(mixtures, dict) and mixtures):
            raise TypeError("'mixtures' is not an object of mixtures")
        for name, mixture in mixtures.items():
            weights = mixture["weights"]
            if not isinstance(weights, dict):
                raise TypeError(f"mixtures.{name}.weights is not an object of pool weights")
            for pool in pools:
                if pool not in weights:
                    raise KeyError(f"mixtures.{name}.weights.{pool}")
                float(weights[pool])
        for key in ("manifest", "ot_study"):  # paths relative to the plan's folder
            if not isinstance(doc.get(key) or "", str):
                raise TypeError(f"'{key}' is not a path")
        for pool, c in (doc.get("constraints") or {}).items():
            if not isinstance(c, dict):
                raise TypeError(f"constraints.{pool} is not an object")
    return doc


def _cost(folder: Path, names: list[str], before: np.ndarray, after: np.ndarray, level: float) -> dict[str, Any]:
    """Both mixtures under the plan's model (saved beside plan.json), at the proxy runs' scale."""
    from ..models.mixture_model import load_model

    if not (folder / "model" / "meta.json").is_file():
        return {"known": False, "why": f"{folder} holds no model (plan --out saves it in model/); the cost of "
                                       "rounding and dropping is not predicted"}
    model = load_model(folder / "model")
    if list(model.pools) != names:
        return {"known": False, "why": f"the model in {folder / 'model'} is over other pools"}
    pred = model.predict(np.vstack([before, after]), level=level)
    rows = [pred.row(0), pred.row(1)]
    p = float(model.prob_better(after, before[None, :], level=level)[0])
    return {"known": True, "where": "at the proxy scale (the plan's model)", "objective": model.objective.spec,
            "before": {k: rows[0][k] for k in ("prediction", "lower", "upper")},
            "after": {k: rows[1][k] for k in ("prediction", "lower", "upper")},
            "change": rows[1]["prediction"] - rows[0]["prediction"], "p_typed_better": p, "level": level}


def run(args: argparse.Namespace) -> int:
    from .._io import check_writable, read_table, write_text_atomic
    from ..mixture.export import EXPORT_FORMATS, document_probabilities, export_text, pool_targets
    from ..simplex.rounding import round_mixture
    from .common import load_pools

    kind, doc, path = _read_plan(Path(args.plan))
    manifest = args.pools
    if manifest is None and doc is not None and doc.get("manifest"):
        manifest = str(path.parent / doc["manifest"])  # recorded relative to the plan's folder
    if manifest and not Path(manifest).is_file():
        raise ValidationError(f"the plan's manifest {manifest} is gone; give --pools POOLS.toml")
    pools = load_pools(manifest) if manifest else None
    overrides: dict[str, list[str]] = {}
    for item in args.path:
        name, sep, value = item.partition("=")
        if not sep or not name or not value:
            raise ValidationError(f"--path {item!r}: write POOL=PATH, e.g. --path web=/data/web_text_document")
        overrides.setdefault(name.strip(), []).append(value.strip())
    root = Path(manifest).parent if manifest else Path.cwd()
    suffix = EXPORT_FORMATS[args.format][1]
    decimals, min_weight = args.round, args.min_weight or 0.0

    if kind == "plan":
        assert doc is not None
        if args.mixture not in doc["mixtures"]:
            raise ValidationError(f"{path}: no mixture {args.mixture!r}; the plan has {', '.join(doc['mixtures'])}")
        names = list(doc["pools"])
        before = np.array([doc["mixtures"][args.mixture]["weights"][n] for n in names], dtype=float)
        pins = {n for n, c in (doc.get("constraints") or {}).items() if "pin" in str(c.get("lower_reason", ""))}
        after = round_mixture(before, decimals, min_weight, fixed=[n in pins for n in names])
        runs = [("", after)]
        cost = (_cost(path.parent, names, before, after, float(doc["mixtures"][args.mixture].get("level", 0.9)))
                if decimals is not None or min_weight else None)
    else:
        frame = read_table(path)
        names = [c[2:] for c in frame.columns if c.startswith("w_")]
        if "run_id" not in frame.columns or not names:
            raise ValidationError(f"{path}: not a design's mixtures.csv (run_id and w_<pool> columns)")
        W = frame[[f"w_{n}" for n in names]].to_numpy(dtype=float)
        runs = [(str(r), round_mixture(w, decimals, min_weight)) for r, w in zip(frame["run_id"], W)]
        before, cost = W, None
    out = Path(args.out)
    files = {out if kind == "plan" else out / f"{rid}{suffix}": w for rid, w in runs}
    check_writable(list(files), args.force)
    texts, notes = {}, []
    for target, w in files.items():
        targets = pool_targets(names, w, pools, root, overrides, tokens=(doc or {}).get("target_tokens"))
        _, note = document_probabilities(names, w, pools)
        if note and args.format.startswith("datasets") and note not in notes:
            notes.append(note)
        texts[target] = export_text(args.format, targets, decimals, args.seed, note)
    for target, text in texts.items():  # every text built before the first is written
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, text, force=args.force)

    typed = runs[0][1]
    dropped = [n for i, n in enumerate(names) if typed[i] == 0 < np.atleast_2d(before)[0][i]] if kind == "plan" else []
    result = {"format": args.format, "input": str(path), "kind": kind, "files": [str(f) for f in files],
              "decimals": decimals, "min_weight": min_weight, "notes": notes}
    if kind == "plan":
        result |= {"mixture": args.mixture, "weights": dict(zip(names, map(float, typed))), "dropped": dropped,
                   "cost": cost}
    lines = [f"{args.format}: {len(files)} file{'s' if len(files) > 1 else ''} written"
             + (f" ({out})" if kind == "plan" else f" in {out}/")]
    if kind == "plan":
        lines.append("weights: " + ", ".join(f"{n} {v:g}" for n, v in zip(names, typed) if v > 0)
                     + (f"; dropped: {', '.join(dropped)}" if dropped else ""))
        if cost is not None:
            if cost["known"]:
                b, a = cost["before"], cost["after"]
                lines.append(f"cost {cost['where']}: {cost['objective']} {a['prediction']:.4f} [{a['lower']:.4f}, "
                             f"{a['upper']:.4f}] vs {b['prediction']:.4f} [{b['lower']:.4f}, {b['upper']:.4f}] as "
                             f"planned (change {cost['change']:+.4g}, P(exported better) {cost['p_typed_better']:.2f})")
            else:
                lines.append(f"cost: unknown ({cost['why']})")
    lines += [f"note: {n}" for n in notes]
    emit(args, result, "\n".join(lines))
    return 0
