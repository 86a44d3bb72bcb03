r"""Hierarchical pools: groups of pools (sources -> topics -> quality levels) in a manifest.

The mixture's columns stay the *leaves* (pools with text of their own, one ``w_<pool>`` column each in a
runs table); a group is the sum of its leaves, :math:`w_g = \sum_{i \in g} w_i`, and its ``min_weight``,
``max_weight`` (and a plan's ``--pin g=v``) bound that sum. Two manifest forms, the same meaning::

    [pools.web]                     # a group: a pool that other pools name as their parent
    max_weight = 0.7                # bounds the sum of its leaves
    prior = 0.5                     # its share of the prior among its siblings (default: token share)
    [pools.web_science]
    tokens = 4e9
    parent = "web"                  # primary form: a `parent` key

    [pools.web.topics.science]      # nested form: a sub-table named as in LEVEL_KEYS is a level of children,
    tokens = 4e9                    # named PARENT_CHILD (here web_science) as bucket columns are

A group may give ``tokens``: it must then be its leaves' sum (within :data:`GROUP_TOKENS_TOLERANCE`).
Groups nest to any depth. The prior of a leaf is the product, down its path, of each node's share among
its siblings (a node's ``prior`` if given, else its tokens), so that without groups it is the flat prior.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._checks import check_number
from ..exceptions import ValidationError

__all__ = ["PoolGroup", "GROUP_KEYS", "LEVEL_KEYS", "GROUP_TOKENS_TOLERANCE", "flatten_nested", "resolve_parents",
           "make_groups", "check_groups", "hierarchical_prior"]

#: The names a sub-table of a pool may take to hold a level of children (``[pools.web.topics.science]``): only
#: these, so that a mistyped field holding tables (``[pools.web.sorce.files]``) is named as the unknown field it
#: is instead of becoming a pool.
LEVEL_KEYS = ("children", "topics", "sources", "levels", "quality", "qualities", "pools")
#: Fields a group table may have: the rest (source, buckets, laws, ...) belong to its leaves.
GROUP_KEYS = {"tokens", "description", "min_weight", "max_weight", "prior", "parent", "group"}
#: Relative mismatch allowed between a group's declared ``tokens`` and its leaves' sum (counting noise).
GROUP_TOKENS_TOLERANCE = 0.02


@dataclass(frozen=True)
class PoolGroup:
    """A group of pools: ``members`` are its leaves (columns) at any depth, ``children`` its direct children
    (leaves or groups), ``parent`` the enclosing group ("" at the top)."""

    name: str
    members: tuple[str, ...]
    children: tuple[str, ...]
    parent: str = ""
    min_weight: float = 0.0
    max_weight: float = 1.0
    prior: float | None = None
    tokens: float = 0.0
    description: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "parent": self.parent, "children": list(self.children),
                "members": list(self.members), "min_weight": self.min_weight, "max_weight": self.max_weight,
                "prior": self.prior, "tokens": self.tokens, "description": self.description}


def flatten_nested(raw: Mapping[str, Any], where: str, pool_keys: set[str]) -> dict[str, dict[str, Any]]:
    """The manifest's pool tables with nested children (``[pools.web.topics.science]``) made flat
    (``web_science`` with ``parent = "web"``), parents before their children, in manifest order. A sub-table
    is a level of children when it is named as in :data:`LEVEL_KEYS` and every value in it is a table."""
    out: dict[str, dict[str, Any]] = {}

    def add(name: str, spec: Any, parent: str | None) -> None:
        if not isinstance(spec, dict):
            out[name] = spec  # load_pools names the error
            return
        levels = {k: v for k, v in spec.items() if k in LEVEL_KEYS and k not in pool_keys and isinstance(v, dict)
                  and v and all(isinstance(c, dict) for c in v.values())}
        own = {k: v for k, v in spec.items() if k not in levels}
        if parent is not None:
            if "parent" in own and own["parent"] != parent:
                raise ValidationError(f"{where}: pool {name!r}, field 'parent': {own['parent']!r}, but it is nested "
                                      f"under {parent!r}; drop the key or move the table")
            own["parent"] = parent
        if name in out:
            raise ValidationError(f"{where}: pool {name!r} is defined twice (a nested child is named PARENT_CHILD); "
                                  "rename one of them")
        out[name] = own
        for children in levels.values():
            for child, cspec in children.items():
                add(f"{name}_{child}", cspec, name)

    for name, spec in raw.items():
        add(name, spec, None)
    return out


def resolve_parents(specs: Mapping[str, Mapping[str, Any]], where: str) -> dict[str, str]:
    """Each pool's parent (only pools that have one), checked: a string naming a table of the manifest, and
    no cycle."""
    parents: dict[str, str] = {}
    for name, spec in specs.items():
        if "parent" not in spec:
            continue
        p = spec["parent"]
        if not isinstance(p, str) or not p:
            raise ValidationError(f"{where}: pool {name!r}, field 'parent': must be the name of another pool table, "
                                  f"got {p!r}")
        if p not in specs:
            raise ValidationError(f"{where}: pool {name!r}, field 'parent': {p!r} is not a pool of this manifest; "
                                  f"add a [pools.{p}] table or name one of {sorted(specs)[:8]}")
        parents[name] = p
    for name in parents:
        path, node = [name], name
        while node in parents:
            node = parents[node]
            if node in path:
                cycle = " -> ".join(path[path.index(node):] + [node])
                raise ValidationError(f"{where}: pool {name!r}, field 'parent': the parents form a cycle ({cycle}); "
                                      "a group cannot contain itself")
            path.append(node)
    return parents


def make_groups(specs: Mapping[str, Mapping[str, Any]], parents: Mapping[str, str], leaf_tokens: Mapping[str, float],
                where: str, measured: bool = True) -> tuple[PoolGroup, ...]:
    """The groups (pools named as a parent) from their tables, checked: group fields only, numbers in range,
    floor <= cap, declared tokens equal to the leaves' sum. ``leaf_tokens``: every leaf's tokens."""
    names = [n for n in specs if n in set(parents.values())]
    children = {g: tuple(n for n in specs if parents.get(n) == g) for g in names}

    def members(g: str) -> tuple[str, ...]:
        return tuple(m for c in children[g] for m in (members(c) if c in children else (c,)))

    out = []
    for g in names:
        spec, at = specs[g], f"{where}: pool {g!r}"
        extra = set(spec) - GROUP_KEYS
        if extra:
            raise ValidationError(f"{at} is a group (pools {list(children[g])[:4]} name it as parent): field(s) "
                                  f"{sorted(extra)} belong to its leaves; a group has {sorted(GROUP_KEYS)}")
        lo, hi = spec.get("min_weight", 0.0), spec.get("max_weight", 1.0)
        check_number(lo, f"{at}, field 'min_weight'", lo=0.0, hi=1.0)
        check_number(hi, f"{at}, field 'max_weight'", lo=0.0, hi=1.0)
        if lo > hi:
            raise ValidationError(f"{at}, field 'min_weight': the group's floor {lo:g} is above its cap max_weight "
                                  f"{hi:g}; lower the floor or raise the cap")
        if spec.get("prior") is not None:
            check_number(spec["prior"], f"{at}, field 'prior'", lo=0.0)
        if "description" in spec and not isinstance(spec["description"], str):
            raise ValidationError(f"{at}, field 'description': must be a string")
        leaves = members(g)
        total = float(sum(leaf_tokens[m] for m in leaves))
        if "tokens" in spec and measured:
            check_number(spec["tokens"], f"{at}, field 'tokens'", lo=0.0, lo_open=True)
            if abs(spec["tokens"] - total) > GROUP_TOKENS_TOLERANCE * total:
                raise ValidationError(f"{at}, field 'tokens': {spec['tokens']:.6g} disagrees with the sum of its "
                                      f"{len(leaves)} leaves' tokens {total:.6g} (tolerance "
                                      f"{100 * GROUP_TOKENS_TOLERANCE:g}%); fix the count or leave it out (a group's "
                                      "tokens are its leaves' sum)")
        out.append(PoolGroup(g, leaves, children[g], parents.get(g, ""), float(lo), float(hi),
                             None if spec.get("prior") is None else float(spec["prior"]), total,
                             str(spec.get("description", ""))))
    return tuple(out)


def check_groups(groups: Sequence[PoolGroup], names: Sequence[str], min_weight: np.ndarray, max_weight: np.ndarray,
                 where: str) -> None:
    """A pool set's groups against its leaves: members are pools, group names are not, and each group's bounds
    can be met by its leaves' bounds."""
    index = {n: i for i, n in enumerate(names)}
    gnames = {g.name for g in groups}
    for g in groups:
        if g.name in index:
            raise ValidationError(f"{where}: {g.name!r} is both a group and a pool (a column); a group has no text "
                                  "of its own: move its tokens and source into a child pool")
        bad = [m for m in g.members if m not in index]
        if bad or not g.members:
            raise ValidationError(f"{where}: group {g.name!r} has member(s) {bad} that are not pools of the set; "
                                  f"pools are {list(names)[:8]}")
        if g.parent and g.parent not in gnames:
            raise ValidationError(f"{where}: group {g.name!r}, field 'parent': {g.parent!r} is not a group")
        idx = [index[m] for m in g.members]
        lo, hi = float(min_weight[idx].sum()), float(max_weight[idx].sum())
        if g.min_weight > hi + 1e-12:
            raise ValidationError(f"{where}: group {g.name!r}, field 'min_weight': the floor {g.min_weight:g} is above "
                                  f"the sum of its leaves' caps {hi:.6g}; lower the floor or raise the leaves' "
                                  "max_weight")
        if g.max_weight < lo - 1e-12:
            raise ValidationError(f"{where}: group {g.name!r}, field 'max_weight': the cap {g.max_weight:g} is below "
                                  f"the sum of its leaves' floors {lo:.6g}; raise the cap or lower the leaves' "
                                  "min_weight")


def hierarchical_prior(names: Sequence[str], tokens: np.ndarray, priors: Sequence[float | None],
                       parents: Sequence[str], groups: Sequence[PoolGroup], where: str) -> np.ndarray:
    r"""Each leaf's prior: the product down its path of each node's share among its siblings, a node's raw
    share being its ``prior`` if given; else a leaf's tokens over all tokens, and a group's the sum of its
    members' raw shares (its token share when no member has a prior: wrapping pools in a group does not
    change their priors). Normalised among the siblings. Without groups: the manifest's prior, else the token
    share, normalised (the flat prior)."""
    total = float(tokens.sum())
    node_raw = {n: (t / total if p is None else p) for n, t, p in zip(names, tokens, priors)}
    node_parent = dict(zip(names, parents)) | {g.name: g.parent for g in groups}
    given = {g.name: g.prior for g in groups}

    def raw(node: str) -> float:
        if node not in node_raw:
            node_raw[node] = (given[node] if given[node] is not None else
                              sum(raw(m) for m, p in node_parent.items() if p == node))
        return node_raw[node]

    for g in groups:
        raw(g.name)
    share: dict[str, float] = {}
    for parent in {""} | {g.name for g in groups}:
        sib = [n for n, p in node_parent.items() if p == parent]
        if not sib:
            continue
        s = sum(node_raw[n] for n in sib)
        if s <= 0:
            inside = "the top level" if not parent else f"group {parent!r}"
            raise ValidationError(f"{where}: all priors in {inside} are 0; give at least one pool a positive prior")
        share |= {n: node_raw[n] / s for n in sib}
    out = np.empty(len(names))
    for i, n in enumerate(names):
        v, node = 1.0, n
        while node:
            v *= share[node]
            node = node_parent[node]
        out[i] = v
    return out / out.sum()
