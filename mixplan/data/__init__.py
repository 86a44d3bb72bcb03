"""Inputs: pool manifests, proxy-run tables, objectives over their metrics, quality buckets, and the scan
of a pool's text (sources, token counts, scorers).

Public names are imported on first use."""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {
    "Pool": ".pools", "PoolSet": ".pools", "load_pools": ".pools", "DEFAULT_MAX_EPOCHS": ".pools",
    "RunTable": ".runs", "read_runs": ".runs", "select_rows": ".runs", "pool_coverage": ".runs",
    "coverage_table": ".runs", "read_regmix_layout": ".runs", "read_olmix_layout": ".runs",
    "WEIGHT_PREFIX": ".runs", "SUM_TOLERANCE": ".runs", "Objective": ".objective", "parse_objective": ".objective",
    "Bucket": ".buckets", "BucketSpec": ".buckets", "SIZE_TOLERANCE": ".buckets", "LAW_DEFAULTS": ".buckets",
    "parse_buckets": ".buckets", "percent_label": ".buckets", "bucket_scores": ".buckets",
    "scan_pools": ".scan", "ScanResult": ".scan", "list_shards": ".sources", "read_shard": ".sources",
    "token_counter": ".tokens", "prose_score": ".scorers",
}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
