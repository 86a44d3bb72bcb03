r"""Reuse across studies: an old study's proxy runs mapped onto a new pool set.

Each old pool goes to zero, one or several new pools (:func:`parse_mapping`, ``--map old=new1+new2``):

* **same name** (no mapping given): carried over unchanged;
* **renamed / split** ``old = n_1 + ... + n_m``: the old weight is shared by the new pools' token
  shares, :math:`w'_{n_j} = w_{old}\, t_{n_j} / \sum_k t_{n_k}` (manifest ``tokens``). That is exact when
  the new pools partition the old one's documents and the old run read it uniformly, as a sampler does;
  several old pools naming the same new pool add up (a merge);
* **removed** (in neither the new manifest nor a mapping): its weight :math:`r = \sum_{removed} w`
  went to text the new study does not have. A run with :math:`r = 0` is an exact run of the new
  study. Otherwise the policy decides (:func:`parse_removed_policy`): ``drop`` drops it (counted);
  ``keep-below=T`` keeps it when :math:`r \le T` and renormalises the rest, :math:`w' = w / (1 - r)`,
  flagging it (column ``reuse = "renormalised"``, ``reuse_removed_weight = r``), and drops it when
  :math:`r > T`; ``keep`` is ``keep-below=1``. A run with :math:`r = 1` trained on removed text only
  and is always dropped. Renormalising treats the measured metric as that of the renormalised
  mixture: its error grows with :math:`r`, hence the threshold;
* **added** (a new pool no old pool maps to): weight 0 in every old run, which is a valid run of the new
  study that did not use the pool. Such a pool has no coverage: ``mixplan design --next`` asks runs
  that use it.

A table reused twice compounds the flag: :math:`r_{total} = r_{old} + (1 - r_{old})\,r`. Every decision
is counted in a :class:`ReuseReport`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .._checks import NAME_PATTERN
from ..exceptions import ValidationError
from .pools import PoolSet
from .runs import SUM_TOLERANCE, UNIQUE_PREFIX, WEIGHT_PREFIX, RunTable

__all__ = ["ReuseReport", "map_runs", "parse_mapping", "parse_removed_policy", "FLAG_COLUMN", "REMOVED_COLUMN"]

#: Text column: "exact" (no removed weight) or "renormalised".
FLAG_COLUMN = "reuse"
#: The share of the run's original weight that went to removed pools.
REMOVED_COLUMN = "reuse_removed_weight"
_POLICY = re.compile(r"^keep-below=(.+)$")


def parse_removed_policy(text: str) -> float:
    """``drop`` | ``keep`` | ``keep-below=T`` -> the largest removed weight a kept run may have (0, 1, T)."""
    text = text.strip()
    if text == "drop":
        return 0.0
    if text == "keep":
        return 1.0
    m = _POLICY.match(text)
    if m:
        try:
            t = float(m.group(1))
        except ValueError:
            t = float("nan")
        if 0.0 <= t <= 1.0:
            return t
    raise ValidationError(f"--removed {text!r}: write drop, keep, or keep-below=T with T in [0, 1] "
                          "(e.g. keep-below=0.05: keep a run if at most 5% of its weight was on removed pools)")


def parse_mapping(items: Sequence[str]) -> dict[str, tuple[str, ...]]:
    """``["old=new1+new2", "a=b"]`` -> ``{"old": ("new1", "new2"), "a": ("b",)}``; names checked for form only
    (:func:`map_runs` checks them against the pools)."""
    out: dict[str, tuple[str, ...]] = {}
    for item in items:
        old, sep, rhs = item.partition("=")
        old, news = old.strip(), tuple(n.strip() for n in rhs.split("+"))
        if not sep or not old or not all(news):
            raise ValidationError(f"--map {item!r}: write OLD=NEW or OLD=NEW1+NEW2 (old pool = the new pools it "
                                  "became), e.g. --map web=web_en+web_fr")
        bad = [n for n in (old, *news) if not NAME_PATTERN.match(n)]
        if bad:
            raise ValidationError(f"--map {item!r}: {bad[0]!r} is not a pool name (letters, digits, '_', '-', '.')")
        if old in out:
            raise ValidationError(f"--map {item!r}: pool {old!r} is mapped twice; give one OLD=NEW1+NEW2 per old pool")
        if len(set(news)) != len(news):
            raise ValidationError(f"--map {item!r}: a new pool appears twice")
        out[old] = news
    return out


@dataclass
class ReuseReport:
    """What :func:`map_runs` did with every old pool and every old run."""

    source: str
    policy: str
    threshold: float
    runs_in: int
    kept_exact: int = 0
    kept_renormalised: int = 0
    dropped_over_threshold: int = 0
    dropped_all_removed: int = 0
    carried: list[str] = field(default_factory=list)
    removed: dict[str, int] = field(default_factory=dict)  # removed pool -> old runs that used it
    added: list[str] = field(default_factory=list)
    split: dict[str, dict[str, float]] = field(default_factory=dict)  # old -> new -> share (renames: one share 1)
    merged: dict[str, list[str]] = field(default_factory=dict)  # new -> the old pools summed into it
    max_removed_kept: float = 0.0
    dropped_ids: list[str] = field(default_factory=list)
    outside_bounds: dict[str, int] = field(default_factory=dict)  # new pool -> kept runs below its floor / above cap

    @property
    def kept(self) -> int:
        return self.kept_exact + self.kept_renormalised

    @property
    def dropped(self) -> int:
        return self.dropped_over_threshold + self.dropped_all_removed

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "policy": self.policy, "threshold": self.threshold, "runs_in": self.runs_in,
                "kept": self.kept, "kept_exact": self.kept_exact, "kept_renormalised": self.kept_renormalised,
                "dropped": self.dropped, "dropped_over_threshold": self.dropped_over_threshold,
                "dropped_all_removed": self.dropped_all_removed, "carried": self.carried, "removed": self.removed,
                "added": self.added, "split": self.split, "merged": self.merged,
                "max_removed_weight_kept": self.max_removed_kept, "dropped_run_ids": self.dropped_ids,
                "runs_outside_bounds": self.outside_bounds}

    def text(self) -> str:
        lines = [f"{self.source}: {self.runs_in} old runs -> {self.kept} kept ({self.kept_exact} exact, "
                 f"{self.kept_renormalised} renormalised, largest removed weight {self.max_removed_kept:.4g}), "
                 f"{self.dropped} dropped ({self.dropped_over_threshold} with removed weight above "
                 f"{self.threshold:g}, {self.dropped_all_removed} with all weight on removed pools); "
                 f"policy {self.policy}"]
        if self.carried:
            lines.append(f"  carried over: {len(self.carried)} pools")
        for p, n in self.removed.items():
            lines.append(f"  removed {p}: used by {n} old runs")
        for old, shares in self.split.items():
            how = " + ".join(f"{n} ({s:.4g})" for n, s in shares.items())
            lines.append(f"  {'renamed' if len(shares) == 1 else 'split'} {old} -> {how}")
        for new, olds in self.merged.items():
            lines.append(f"  merged {' + '.join(olds)} -> {new}")
        for p in self.added:
            lines.append(f"  added {p}: weight 0 in every old run (no coverage: design --next proposes runs using it)")
        for p, n in self.outside_bounds.items():
            lines.append(f"  note: {n} kept runs lie outside {p}'s min_weight/max_weight (kept: they are measured "
                         "runs; the plan still keeps the bounds)")
        return "\n".join(lines)


def map_runs(old: RunTable, pools: PoolSet, mapping: Mapping[str, Sequence[str]] | None = None,
             removed: str = "drop") -> tuple[pd.DataFrame, ReuseReport]:
    """Map the runs of ``old`` onto ``pools`` (see the module docstring); return the new runs frame
    (``run_id``, ``w_<pool>`` in ``pools`` order, the old non-weight columns, ``reuse`` and
    ``reuse_removed_weight``) and the report. ``removed``: ``drop``, ``keep`` or ``keep-below=T``.

    Raises ValidationError, naming the file, row and pool: a mapping naming a pool that is not in the old
    table or not in the new manifest, a ``unique_tokens_``
    column of a pool that does not carry over unchanged, a kept run whose weights do not sum to 1 after
    mapping.
    """
    threshold = parse_removed_policy(removed)
    mapping = {k: tuple(v) for k, v in (mapping or {}).items()}
    new_names, src = pools.names, old.source
    where = f"{src} -> {pools.path or 'the new pool manifest'}"
    for o, news in mapping.items():
        if o not in old.pools:
            raise ValidationError(f"{where}: --map {o}=...: {o!r} is not a pool of the old runs (their w_ columns: "
                                  f"{old.pools}); map an old pool")
        unknown = [n for n in news if n not in new_names]
        if unknown:
            raise ValidationError(f"{where}: --map {o}={'+'.join(news)}: {unknown[0]!r} is not a pool of the new "
                                  f"manifest (pools: {new_names}); add it or fix the name")
    # old pool -> [(new index, share)]
    route: dict[str, list[tuple[int, float]]] = {}
    carried, removed_pools = [], []
    for o in old.pools:
        if o in mapping:
            t = np.array([pools.by_name(n).tokens for n in mapping[o]], dtype=float)
            route[o] = [(new_names.index(n), float(s)) for n, s in zip(mapping[o], t / t.sum())]
        elif o in new_names:
            route[o] = [(new_names.index(o), 1.0)]
            carried.append(o)
        else:
            removed_pools.append(o)
    sources: dict[int, list[str]] = {}
    for o, r in route.items():
        for j, _ in r:
            sources.setdefault(j, []).append(o)
    # a pool that also receives other old pools' weight (--map b=a) is not the old pool unchanged
    carried = [o for o in carried if len(sources[new_names.index(o)]) == 1]
    for o in old.pools:
        col = UNIQUE_PREFIX + o
        if col in old.frame.columns and o not in carried:
            raise ValidationError(f"{src}: column {col!r}: the runs trained on a subsample of {o!r}, which does not "
                                  "carry over unchanged (removed, renamed, split or merged with another); reuse of "
                                  "such runs is not "
                                  "supported: drop the column (and the repetition model) or keep the pool")

    W = old.weights
    P = np.zeros((len(old), len(new_names)))
    for i, o in enumerate(old.pools):
        for j, share in route.get(o, []):
            P[:, j] += W[:, i] * share
    rem_idx = [old.pools.index(o) for o in removed_pools]
    r = W[:, rem_idx].sum(axis=1) if rem_idx else np.zeros(len(old))
    r = np.clip(r, 0.0, 1.0)
    total = P.sum(axis=1)
    empty = total <= SUM_TOLERANCE
    keep = ~empty & (r <= threshold + 1e-12)
    over = ~empty & ~keep
    renorm = keep & (r > 0)
    # Mapping keeps each row's sum: mapped + removed weight must be 1 (a table built without read_runs' checks
    # may break that), so the renormalised weights below sum to 1 because the old ones did.
    off = np.flatnonzero(keep & (np.abs(total + r - 1.0) > SUM_TOLERANCE))
    if off.size:
        i = int(off[0])
        raise ValidationError(f"{src}: {old.describe_row(i)}: weights sum to {total[i] + r[i]:.9g} after mapping "
                              f"({total[i]:.9g} on new pools, {r[i]:.9g} on removed ones), not 1; fix the old row or "
                              "read it with --renormalize")
    P[keep] = P[keep] / total[keep, None]

    prior_r = np.zeros(len(old))
    if REMOVED_COLUMN in old.frame.columns:
        prior_r = pd.to_numeric(old.frame[REMOVED_COLUMN], errors="coerce").fillna(0.0).to_numpy(dtype=float)
    r_total = prior_r + (1.0 - prior_r) * r
    rest = [c for c in old.frame.columns if c != "run_id" and c not in old.weight_columns
            and c not in (FLAG_COLUMN, REMOVED_COLUMN)
            and not (c.startswith(UNIQUE_PREFIX) and c[len(UNIQUE_PREFIX):] in removed_pools)]
    frame = pd.DataFrame(P[keep], columns=[WEIGHT_PREFIX + n for n in new_names])
    frame.insert(0, "run_id", old.frame["run_id"].astype(str).to_numpy()[keep])
    for c in rest:
        frame[c] = old.frame[c].to_numpy()[keep]
    frame[FLAG_COLUMN] = np.where(r_total[keep] > 0, "renormalised", "exact")
    frame[REMOVED_COLUMN] = r_total[keep]

    lo, hi = pools.min_weight, pools.max_weight
    Pk = P[keep]
    bounds = {n: int(((Pk[:, j] < lo[j] - 1e-9) | (Pk[:, j] > hi[j] + 1e-9)).sum()) for j, n in enumerate(new_names)}
    split = {o: {new_names[j]: s for j, s in route[o]} for o in mapping}
    report = ReuseReport(
        source=src, policy=removed.strip(), threshold=threshold, runs_in=len(old),
        kept_exact=int((keep & ~renorm).sum()), kept_renormalised=int(renorm.sum()),
        dropped_over_threshold=int(over.sum()), dropped_all_removed=int(empty.sum()), carried=carried,
        removed={o: int((W[:, old.pools.index(o)] > 0).sum()) for o in removed_pools},
        added=[n for j, n in enumerate(new_names) if j not in sources], split=split,
        merged={new_names[j]: olds for j, olds in sources.items() if len(olds) > 1},
        max_removed_kept=float(r[keep].max()) if keep.any() else 0.0,
        dropped_ids=old.frame["run_id"].astype(str).to_numpy()[~keep][:20].tolist(),
        outside_bounds={n: k for n, k in bounds.items() if k})
    if not keep.any():
        raise ValidationError(f"{where}: no old run is left: {report.dropped_over_threshold} have more than "
                              f"{threshold:g} of their weight on removed pools {removed_pools}, "
                              f"{report.dropped_all_removed} only those; raise --removed keep-below=T or map the "
                              "removed pools (--map OLD=NEW)")
    return frame, report
