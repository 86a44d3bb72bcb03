"""A mixture in the form a training stack reads: Megatron-LM, GPT-NeoX, NeMo, OLMo-core, Hugging Face
``datasets``, or plain JSON / CSV.

Every writer takes the same :class:`PoolTarget` list (a pool's weight, its per-document sampling
probability and the paths a trainer reads, from the manifest's ``source``) and returns text; the
command ``mixplan export`` chooses the mixture, rounds it and writes the file.

Weights are *token* shares, which is what samplers of fixed-length packed sequences (Megatron's and
NeoX's ``BlendedDataset``, NeMo's blend, OLMo-core's source mixture) realise. A document stream
(``datasets.interleave_datasets``) draws *documents*: there the probability of a pool is its weight
divided by its mean document length, ``p_i ∝ w_i · samples_i / tokens_i``, so that the stream's token
shares are the weights (without the manifest's ``samples``, from ``mixplan scan``, the weights stand in
and the export says so).
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..exceptions import ValidationError

if TYPE_CHECKING:  # the command line lists the formats before any pool is read: keep this module light
    from ..data.pools import PoolSet

__all__ = ["EXPORT_FORMATS", "PoolTarget", "export_text", "pool_targets", "document_probabilities"]

#: What a files source's format is read with by ``datasets`` (builder, extra keyword arguments).
_BUILDER_OF = {"jsonl": ("json", {}), "jsonl.gz": ("json", {}), "jsonl.zst": ("json", {}),
               "parquet": ("parquet", {}), "arrow": ("arrow", {}), "txt": ("text", {"sample_by": "document"}),
               "lines": ("text", {})}


@dataclass(frozen=True)
class PoolTarget:
    """One pool of an exported mixture."""

    name: str
    weight: float  # token share
    probability: float  # per-document sampling probability (document streams)
    paths: tuple[str, ...] = ()  # what the trainer reads: files, prefixes or a folder
    shares: tuple[float, ...] = ()  # each path's share of the pool (bytes), summing to 1
    source: Mapping[str, Any] = field(default_factory=dict)  # the manifest's source table (paths resolved)
    epochs: float | None = None  # passes over the pool at the plan's budget, when known


def document_probabilities(names: Sequence[str], weights: np.ndarray, pools: PoolSet | None
                           ) -> tuple[np.ndarray, str | None]:
    """Per-document sampling probabilities that realise the token shares ``weights`` of pools ``names``
    (see the module docstring), and a note when a pool's document count is unknown (then the weights)."""
    w = np.asarray(weights, dtype=float)
    known = {} if pools is None else {p.name: p for p in pools if p.samples is not None}
    missing = [n for n, x in zip(names, w) if n not in known and x > 0]
    if missing:
        return w, (f"documents per pool unknown ({', '.join(missing)}): the stream's document probabilities are the "
                   "token weights, so its token shares follow the pools' mean document lengths; scan the pools "
                   "(mixplan scan) to export probabilities that realise the weights")
    p = np.array([x * known[n].samples / known[n].tokens if x > 0 else 0.0 for n, x in zip(names, w)])
    return p / p.sum(), None


def _split_files(paths: Sequence[str]) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """Files as trainer paths with their share of the pool by size; a Megatron ``.bin``/``.idx`` pair is
    one prefix (the data file's size)."""
    out: dict[str, float] = {}
    for p in paths:
        stem, ext = os.path.splitext(p)
        if ext in (".bin", ".idx"):
            size = os.path.getsize(stem + ".bin") if os.path.exists(stem + ".bin") else 0.0
            out[stem] = max(out.get(stem, 0.0), float(size))
        else:
            out[p] = float(os.path.getsize(p)) if os.path.exists(p) else 0.0
    total = sum(out.values())
    shares = [v / total if total > 0 else 1.0 / len(out) for v in out.values()]
    return tuple(out), tuple(shares)


def pool_targets(names: Sequence[str], weights: np.ndarray, pools: PoolSet | None, root: str | os.PathLike[str],
                 overrides: Mapping[str, Sequence[str]] | None = None, drop_zero: bool = True,
                 tokens: float | None = None) -> list[PoolTarget]:
    """The pools of a mixture with their trainer paths: ``overrides`` (pool -> paths, e.g. Megatron
    prefixes on the training cluster) first, else the manifest's source (globs expanded relative to
    ``root``, the manifest's folder); pools of weight 0 are left out when ``drop_zero``. With the run's
    ``tokens`` (in the manifest's unit), each pool's epochs ``w * tokens / pool tokens``."""
    from ..data.sources import expand_paths

    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ValidationError(f"--path {unknown[0]}=...: not a pool of the mixture; pools are {', '.join(names)}")
    probs, _ = document_probabilities(names, weights, pools)
    root = Path(root)
    out = []
    for i, name in enumerate(names):
        if drop_zero and weights[i] == 0:
            continue
        source: dict[str, Any] = {}
        paths: tuple[str, ...] = ()
        shares: tuple[float, ...] = ()
        if name in overrides:
            paths, shares = _split_files([str(p) for p in overrides[name]])
            source = {"type": "files", "paths": list(paths)}
        elif pools is not None and name in pools.names:  # (a bucket of a bucketed plan is no manifest pool)
            source = dict(pools.by_name(name).source)
            kind = source.get("type")
            where = f"pool {name!r}, source"
            if kind == "files":
                source["paths"] = expand_paths(source["paths"], root, where)
                paths, shares = _split_files(source["paths"])
            elif kind == "datasets" and "path" in source:
                folder = Path(source["path"])
                source["path"] = str(folder if folder.is_absolute() else root / folder)
                paths, shares = (source["path"],), (1.0,)
            elif kind == "datasets":
                source["data_files"] = expand_paths(source["data_files"], root, where, "data_files")
                paths, shares = _split_files(source["data_files"])
        epochs = None
        if tokens is not None and pools is not None and name in pools.names:
            epochs = float(weights[i]) * tokens / pools.by_name(name).tokens
        out.append(PoolTarget(name, float(weights[i]), float(probs[i]), paths, shares, source, epochs))
    return out


def _need_paths(targets: Sequence[PoolTarget], fmt: str) -> None:
    for t in targets:
        if not t.paths:
            raise ValidationError(f"--format {fmt}: pool {t.name!r} has no files a trainer could read (its source is "
                                  f"{t.source.get('type', 'missing')!r}); give --path {t.name}=PATH (repeatable: a "
                                  "file or Megatron prefix on the training machine)")


def _file_weights(targets: Sequence[PoolTarget], decimals: int | None) -> list[tuple[str, str]]:
    """(weight text, path) per file: a pool's weight split by its files' sizes, rounded together so that
    the listed weights still sum to exactly 1."""
    from ..simplex.rounding import round_mixture, weight_text

    pairs = [(t.weight * s, p) for t in targets for p, s in zip(t.paths, t.shares)]
    w = round_mixture(np.array([x for x, _ in pairs]), decimals) if decimals is not None else \
        np.array([x for x, _ in pairs])
    return [(weight_text(x, decimals), p) for x, (_, p) in zip(w, pairs) if x > 0]


def _megatron(targets: Sequence[PoolTarget], decimals: int | None, seed: int) -> str:
    _need_paths(targets, "megatron")
    pairs = _file_weights(targets, decimals)
    # No comment lines: Megatron reads this file as it is (--data-args-path FILE splits it on whitespace).
    return " ".join(f"{w} {p}" for w, p in pairs) + "\n"


def _neox(targets: Sequence[PoolTarget], decimals: int | None, seed: int) -> str:
    import yaml

    _need_paths(targets, "neox")
    pairs = _file_weights(targets, decimals)
    doc = {"train-data-paths": [p for _, p in pairs], "train-data-weights": [float(w) for w, _ in pairs]}
    return "# GPT-NeoX: the data mixture keys of a config (merge into yours)\n" + yaml.safe_dump(doc, sort_keys=False)


def _nemo(targets: Sequence[PoolTarget], decimals: int | None, seed: int) -> str:
    import yaml

    _need_paths(targets, "nemo")
    pairs = _file_weights(targets, decimals)
    doc = {"model": {"data": {"data_prefix": [x for w, p in pairs for x in (float(w), p)]}}}
    return ("# NeMo (Megatron GPT): model.data.data_prefix = [weight, prefix, ...] (merge into your config; NeMo 2:\n"
            "# PreTrainingDataModule(paths=<the same list>))\n" + yaml.safe_dump(doc, sort_keys=False))


def _repetition(t: PoolTarget) -> dict[str, float]:
    """The passes a trainer must allow over a pool (OLMo-core's max_repetition_ratio, olmix's
    repetition_factor, both >= 1): the plan's epochs rounded up to 0.01, when the plan knows them."""
    if t.epochs is None or t.epochs <= 1:
        return {}
    return {"value": float(np.ceil(t.epochs * 100 - 1e-9) / 100)}


def _olmo(targets: Sequence[PoolTarget], decimals: int | None, seed: int) -> str:
    import yaml

    from ..simplex.rounding import weight_text

    _need_paths(targets, "olmo")
    sources = [{"source_name": t.name, "target_ratio": float(weight_text(t.weight, decimals)), "paths": list(t.paths)}
               | ({"max_repetition_ratio": _repetition(t)["value"]} if _repetition(t) else {}) for t in targets]
    return ("# OLMo-core SourceMixtureList (SourceMixtureList.from_yaml; the source_list of a\n"
            "# SourceMixtureDatasetConfig): target_ratio = the pool's token share, max_repetition_ratio = the\n"
            "# passes the plan makes over it\n" + yaml.safe_dump({"sources": sources}, sort_keys=False))


def _olmix(targets: Sequence[PoolTarget], decimals: int | None, seed: int) -> str:
    import yaml

    from ..simplex.rounding import weight_text

    mix = {t.name: {"weight": float(weight_text(t.weight, decimals))}
           | ({"repetition_factor": _repetition(t)["value"]} if _repetition(t) else {}) for t in targets}
    return ("# olmix: the mix block of a launch config (weight = token share, repetition_factor = passes)\n"
            + yaml.safe_dump({"mix": mix}, sort_keys=False))


def _plain_json(targets: Sequence[PoolTarget], decimals: int | None, seed: int) -> str:
    from ..simplex.rounding import weight_text

    doc = {"weights": {t.name: float(weight_text(t.weight, decimals)) for t in targets},
           "document_probabilities": {t.name: t.probability for t in targets},
           "paths": {t.name: list(t.paths) for t in targets}}
    return json.dumps(doc, indent=2) + "\n"


def _csv(targets: Sequence[PoolTarget], decimals: int | None, seed: int) -> str:
    from ..simplex.rounding import weight_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["pool", "weight", "document_probability", "paths"])
    for t in targets:
        w.writerow([t.name, weight_text(t.weight, decimals), repr(t.probability), " ".join(t.paths)])
    return buf.getvalue()


def _datasets_spec(t: PoolTarget) -> dict[str, Any]:
    """How ``datasets`` opens one pool (the JSON form of the ``datasets`` export)."""
    from ..data.sources import FILE_FORMATS, LOCAL_BUILDERS

    s = t.source
    field_ = str(s.get("text_field", "text"))
    kind = s.get("type")
    if kind == "files":
        fmts = {p: (s.get("format") or next(FILE_FORMATS[x] for x in sorted(FILE_FORMATS, key=len, reverse=True)
                                              if p.lower().endswith(x))) for p in s["paths"]}
        builders: dict[str, dict[str, Any]] = {}
        for p, f in fmts.items():
            b, kw = _BUILDER_OF[f]
            key = json.dumps([b, kw], sort_keys=True)
            builders.setdefault(key, {"builder": b, "kwargs": kw, "data_files": []})["data_files"].append(p)
        return {"load": "files", "parts": list(builders.values()), "text_field": field_}
    if kind == "datasets" and "path" in s:
        return {"load": "disk", "path": s["path"], "text_field": field_}
    if kind == "datasets":
        if s.get("builder") not in LOCAL_BUILDERS:
            raise ValidationError(f"pool {t.name!r}: datasets builder {s.get('builder')!r} is not a local builder")
        return {"load": "files", "text_field": field_,
                "parts": [{"builder": s["builder"], "kwargs": {}, "data_files": list(s["data_files"])}]}
    if kind == "package" and s.get("reader"):
        return {"load": "reader", "reader": s["reader"], "text_field": field_}
    raise ValidationError(f"--format datasets: pool {t.name!r} has no source datasets can open (a files, datasets or "
                          "package-reader source table)")


def _datasets_json(targets: Sequence[PoolTarget], decimals: int | None, seed: int) -> str:
    from ..simplex.rounding import weight_text

    # Pools repeat (a plan reads small pools for several epochs); the trainer takes the tokens it needs.
    doc = {"interleave_datasets": {"probabilities": [t.probability for t in targets], "seed": seed,
                                   "stopping_strategy": "all_exhausted"}, "repeat_pools": True,
           "pools": [{"name": t.name, "weight": float(weight_text(t.weight, decimals)), "probability": t.probability}
                     | _datasets_spec(t) for t in targets]}
    return json.dumps(doc, indent=2) + "\n"


_SNIPPET = '''\
"""The mixture as a Hugging Face datasets stream (written by mixplan export; runs without mixplan).

    from mixture import mixture
    stream = mixture()            # an IterableDataset of {{"text": ...}}, pools drawn by PROBABILITIES

WEIGHTS are the token shares; PROBABILITIES the per-document draw that realises them (see NOTE).
"""

import importlib
import json

from datasets import IterableDataset, concatenate_datasets, interleave_datasets, load_dataset, load_from_disk

SPEC = json.loads({spec!r})
WEIGHTS = {{p["name"]: p["weight"] for p in SPEC["pools"]}}
PROBABILITIES = SPEC["interleave_datasets"]["probabilities"]
NOTE = {note!r}


def _reader(ref, field):
    """The documents of a reader function: text, UTF-8 bytes, or records holding the text field."""
    module, _, name = ref.partition(":")
    for value in getattr(importlib.import_module(module), name)():
        if isinstance(value, dict):
            value = value[field]
        yield {{"text": value.decode("utf-8") if isinstance(value, (bytes, bytearray)) else value}}


def pool(spec):
    """One pool as an IterableDataset with a single "text" column."""
    field = spec["text_field"]
    if spec["load"] == "reader":
        return IterableDataset.from_generator(_reader, gen_kwargs={{"ref": spec["reader"], "field": field}})
    if spec["load"] == "disk":
        ds = load_from_disk(spec["path"]).to_iterable_dataset()
    else:
        parts = [load_dataset(p["builder"], data_files={{"train": p["data_files"]}}, split="train", streaming=True,
                              **p["kwargs"]) for p in spec["parts"]]
        ds = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    ds = ds.select_columns([field])
    return ds if field == "text" else ds.rename_column(field, "text")


def mixture(seed=SPEC["interleave_datasets"]["seed"], endless=SPEC["repeat_pools"],
            stopping_strategy=SPEC["interleave_datasets"]["stopping_strategy"]):
    """The interleaved stream. endless: every pool repeats, as the plan's epochs ask (take what the budget
    needs, e.g. mixture().take(n)); else the stream ends by stopping_strategy."""
    pools = [pool(p) for p in SPEC["pools"]]
    if endless:
        if not hasattr(pools[0], "repeat"):
            raise RuntimeError("an endless stream needs IterableDataset.repeat (a newer datasets); or call "
                               "mixture(endless=False)")
        pools = [p.repeat(None) for p in pools]
    return interleave_datasets(pools, probabilities=PROBABILITIES, seed=seed, stopping_strategy=stopping_strategy)
'''


def _datasets_python(targets: Sequence[PoolTarget], decimals: int | None, seed: int, note: str | None = None) -> str:
    spec = _datasets_json(targets, decimals, seed)
    return _SNIPPET.format(spec=json.dumps(json.loads(spec), separators=(",", ":")), note=note or "")


Writer = Callable[[Sequence[PoolTarget], "int | None", int], str]

#: format -> (writer, file suffix, what it is)
EXPORT_FORMATS: dict[str, tuple[Writer, str, str]] = {
    "megatron": (_megatron, ".txt", "Megatron-LM weight/prefix pairs (--data-args-path FILE, or --data-path $(cat FILE))"),
    "neox": (_neox, ".yml", "GPT-NeoX train-data-paths / train-data-weights"),
    "nemo": (_nemo, ".yaml", "NeMo model.data.data_prefix blend"),
    "olmo": (_olmo, ".yaml", "OLMo-core SourceMixtureList (source_name, target_ratio, paths, max_repetition_ratio)"),
    "olmix": (_olmix, ".yaml", "olmix mix block (weight, repetition_factor)"),
    "datasets": (_datasets_python, ".py", "a runnable Hugging Face datasets interleave_datasets snippet"),
    "datasets-json": (_datasets_json, ".json", "the datasets stream's parameters as JSON"),
    "json": (_plain_json, ".json", "weights, document probabilities and paths as JSON"),
    "csv": (_csv, ".csv", "one row per pool: weight, document probability, paths"),
}


def export_text(fmt: str, targets: Sequence[PoolTarget], decimals: int | None = None, seed: int = 0,
                note: str | None = None) -> str:
    """The text of ``targets`` in format ``fmt`` (one of :data:`EXPORT_FORMATS`)."""
    if fmt not in EXPORT_FORMATS:
        raise ValidationError(f"--format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
    if not targets:
        raise ValidationError("the mixture has no pool with a positive weight")
    writer = EXPORT_FORMATS[fmt][0]
    if fmt == "datasets":
        return _datasets_python(targets, decimals, seed, note)
    return writer(targets, decimals, seed)
