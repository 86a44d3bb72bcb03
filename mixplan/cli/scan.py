"""mixplan scan: read every pool's source and write a manifest with measured sizes (issue 18)."""

from __future__ import annotations

import argparse
import io
import os
from pathlib import Path
from typing import Any

from .common import WORKERS, Number, emit

HELP = "read every pool's source: documents, tokens, duplicates, scores, buckets -> a new manifest"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("pools", metavar="POOLS", help="pool manifest (TOML) whose pools have source tables")
    p.add_argument("--out", required=True, metavar="SCANNED.toml",
                   help="the new manifest (the input is never modified)")
    p.add_argument("--report", metavar="scan.json",
                   help="every count, the tokenizer, the files with sizes and hashes (default: --out with the suffix "
                        ".scan.json, e.g. scanned.scan.json)")
    p.add_argument("--tokenizer", default="bytes", metavar="bytes|words|tokenizer.json",
                   help="what a token is: UTF-8 bytes (default), whitespace words, or a Hugging Face tokenizer.json "
                        "(counted with the tokenizers library, no special tokens)")
    p.add_argument("--dedup", action="store_true",
                   help="write each pool's unique tokens (exact duplicates removed) as its tokens: for pools that "
                        "are deduplicated before training (default: every document counts)")
    p.add_argument("--samples", type=Number(int, 0, 1_000_000), default=0, metavar="K",
                   help="also write a seeded sample of K documents per pool (pool, doc, where, text) to "
                        "SCANNED.samples.parquet, for mixplan ot fit --samples (--seed chooses it)")
    p.add_argument("--per-document", action="store_true",
                   help="also write every document's location, tokens, bytes, duplicate flag and scores to "
                        "SCANNED.documents.parquet (for mixplan filter --bucket-scores)")
    p.add_argument("--only", action="append", default=[], metavar="POOL", help="scan only this pool (repeatable)")
    p.add_argument("--workers", type=WORKERS, default=None,
                   help="local processes, one shard (file) each at a time (default: all cores)")
    p.add_argument("--engine", choices=["local", "ray"], default="local",
                   help="local processes (default), or Ray tasks (pip install 'mixplan[ray]'): the same steps, the "
                        "same result")
    p.add_argument("--ray-address", metavar="ADDR",
                   help="with --engine ray: an existing cluster (auto, ray://host:10001); default a local instance "
                        "of --workers CPUs")
    p.add_argument("--force", action="store_true", help="overwrite existing outputs")


def _relocate(spec: dict[str, Any], src: Path, dst: Path) -> None:
    """Source paths are relative to their manifest: re-anchor them to the new manifest's folder."""
    source = spec.get("source")
    if not isinstance(source, dict):
        return

    import glob

    prefix = os.path.relpath(src, dst)

    def move(p: str, pattern: bool = True) -> str:
        # a glob keeps its wildcards; the folder prefix is escaped (a folder named "run[1]" is no pattern)
        return p if os.path.isabs(p) else os.path.normpath(os.path.join(glob.escape(prefix) if pattern else prefix, p))

    for key in ("paths", "data_files"):
        if key in source:
            v = source[key]
            source[key] = move(v) if isinstance(v, str) else [move(x) for x in v]
    if source.get("type") == "datasets" and "path" in source:
        source["path"] = move(source["path"], pattern=False)


def run(args: argparse.Namespace) -> int:
    import tomli_w

    from .._io import check_writable, dumps_json, read_toml, write_bytes_atomic, write_text_atomic
    from ..data.pools import load_pools
    from ..data.scan import manifest_with, scan_pools
    from ..exceptions import ValidationError

    src = Path(args.pools)
    out = Path(args.out)
    if not out.name or out.is_dir():  # its report and samples are named after it: --out is the new file
        raise ValidationError(f"--out {args.out} is a folder; name the new manifest, e.g. --out {out / 'scanned.toml'}")
    report = Path(args.report) if args.report else out.with_suffix(".scan.json")
    if out.resolve() == src.resolve():
        raise ValidationError(f"--out {out} is the input manifest; scan never modifies its input: write a new file")
    extra = {"samples": out.with_suffix(".samples.parquet")} if args.samples else {}
    if args.per_document:
        extra["documents"] = out.with_suffix(".documents.parquet")
    if args.samples < 0:
        raise ValidationError(f"--samples must be >= 0, got {args.samples}")
    outputs = [out, report, *extra.values()]
    check_writable(outputs, args.force)
    for path in outputs:  # a parent that is a file would fail only after other outputs were written
        parent = next((q for q in Path(os.path.abspath(path)).parents if q.exists()), None)
        if parent is not None and not parent.is_dir():
            raise ValidationError(f"{path}: {parent} is a file, not a folder; choose another output path")
    workers = args.workers if args.workers is not None else (os.cpu_count() or 1)
    pools = load_pools(src, measured=False)  # sizes may be left out: the scan measures them
    raw = read_toml(src, "pool manifest")
    unknown = sorted(set(args.only) - set(pools.names))
    if unknown:
        raise ValidationError(f"--only {unknown[0]}: not a pool of {src}; pools are {', '.join(pools.names)}")
    result = scan_pools(pools, raw, src.parent, tokenizer=args.tokenizer, workers=workers, only=args.only or None,
                        samples=args.samples, seed=args.seed, per_document=args.per_document, dedup=args.dedup,
                        engine=args.engine, address=args.ray_address)
    tables = manifest_with(raw, result, source=str(src), dedup=args.dedup)
    for spec in tables.get("pools", {}).values():
        # abspath, not resolve: the sources were read relative to the folder the manifest path names (a
        # symlinked manifest's own folder, not its target's)
        _relocate(spec, Path(os.path.abspath(src.parent)), Path(os.path.abspath(out.parent)))
    # A composite score is no field of the documents (the pool's scores are): its units need saying.
    composites = [(n, pools.by_name(n).buckets.score) for n, p in result.pools.items()
                  if p.buckets is not None and pools.by_name(n).buckets.score not in p.scores]
    text = (f"# Written by mixplan scan from {src} (tokens: {result.token_unit}"
            f"{', exact duplicates removed' if args.dedup else ''}); the counts are measured, see {report.name}.\n"
            + "".join(f"# pool {n}: buckets cut by the composite {s!r} (weighted sum of its scores' rank-based "
                      f"normal scores over the pool's {'unique ' if args.dedup else ''}documents); its cut-offs are in "
                      "composite units\n" for n, s in composites)
            + tomli_w.dumps(tables))
    # The new manifest must load before anything is written (nothing half-written).
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        check = Path(tmp) / out.name
        check.write_text(text, encoding="utf-8")
        load_pools(check)
    doc = {"manifest": str(out), "input": str(src), "dedup": args.dedup} | result.to_dict()
    import pandas as pd

    tables = {}
    if "samples" in extra:
        tables["samples"] = pd.DataFrame([{"pool": n, "doc": i, "where": w, "text": t}
                                          for n, pool in result.pools.items() for i, (w, t) in enumerate(pool.sample)])
    if "documents" in extra:
        tables["documents"] = pd.concat([pool.documents_table.assign(pool=n)[["pool", *pool.documents_table.columns]]
                                         for n, pool in result.pools.items()], ignore_index=True)
    # Every output is built first (a value JSON cannot hold fails here), then written: nothing half-written.
    payloads: dict[Path, bytes] = {}
    for key, frame in tables.items():
        buf = io.BytesIO()
        frame.to_parquet(buf, index=False)
        payloads[extra[key]] = buf.getvalue()
    try:
        payloads[report] = dumps_json(doc | {k: str(v) for k, v in extra.items()}).encode("utf-8")
    except ValueError as exc:
        raise ValidationError(f"the scan report holds a value JSON cannot store ({exc}); a score out of range?") from None
    for path, data in payloads.items():
        write_bytes_atomic(path, data, force=args.force)
    write_text_atomic(out, text, force=args.force)
    emit(args, doc, result.report() + f"\nwritten: {', '.join(map(str, [out, report, *extra.values()]))}")
    return 0
