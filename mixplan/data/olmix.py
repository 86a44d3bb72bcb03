r"""olmix's study files as mixplan's: its domain names as pool names, its YAML config as a pool manifest.

olmix (``allenai/olmix``, Apache-2.0) names a leaf domain by its path in a source -> topic -> quality tree,
joined by ``:`` (``dclm:science_math_and_technology``, ``s2pdf:health:high``). A pool name may not hold
``:``, so :func:`pool_name` maps each ``:`` to ``_`` (mixplan's own ``PARENT_CHILD`` naming of nested
pools); two domains mapping to one name is an error, never a silent merge.

:func:`manifest_from_config` turns a config (``olmix generate``'s ``data.sources`` tree, or ``olmix fit``'s
``priors`` alone, whose ``source:topic`` keys carry the tree) into a manifest with ``parent`` groups:

* leaf ``tokens`` = ``priors.token_counts[domain]`` (required: a pool needs its size);
* the prior keeps olmix's meaning. With no ``weight`` given at a level, a node's ``prior`` is the sum of
  ``priors.relative_sizes`` (else token counts) of the leaves under it, so each leaf's prior
  :math:`\prod_{\text{path}} p_{\text{node}} / \sum_{\text{siblings}} p` is its relative size, normalised.
  Where olmix's generator takes ``weight`` of every source (or of every topic in a source, or
  ``swarm.manual_topic_prior``) as that level's distribution, that weight is the node's ``prior``;
* ``constraints.repetition_factor`` (when ``constraints.enabled``) is every pool's ``max_epochs``: olmix's
  :math:`x_i T \le r \cdot \mathrm{available}_i` is mixplan's epochs cap.

The rest (swarm sampling settings, regression and proposer choices, paths) is not a pool property; it is
listed in the returned ``ignored`` so that nothing is dropped unsaid.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from .._checks import NAME_PATTERN
from ..exceptions import ValidationError

__all__ = ["SEPARATOR", "pool_name", "pool_names", "manifest_from_config", "manifest_toml"]

#: olmix's separator of the levels in a domain name (``source:topic:quality``).
SEPARATOR = ":"


def pool_name(domain: str) -> str:
    """The pool name of an olmix domain: each ``:`` becomes ``_`` (``dclm:health`` -> ``dclm_health``)."""
    return str(domain).replace(SEPARATOR, "_")


def pool_names(domains: Iterable[str], where: str) -> dict[str, str]:
    """``{domain: pool name}`` for olmix domains; ValidationError if a name is not allowed or two collide."""
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for d in domains:
        name = pool_name(d)
        if not NAME_PATTERN.match(name):
            raise ValidationError(f"{where}: domain {d!r} gives pool name {name!r}, which is not allowed; use "
                                  "letters, digits, '_', '-', '.' and ':' between levels")
        if name in seen and seen[name] != d:
            raise ValidationError(f"{where}: domains {seen[name]!r} and {d!r} both become pool {name!r}; rename one")
        seen[name], out[d] = d, name
    return out


def _tree_from_sources(sources: Any, where: str) -> list[tuple[str, float | None, list[Any]]]:
    """``[(name, weight, children)]`` from olmix's ``data.sources`` (each with paths, topics or quality)."""
    if not isinstance(sources, list) or not sources:
        raise ValidationError(f"{where}: 'data.sources' must be a non-empty list of sources")

    def node(spec: Any, at: str) -> tuple[str, float | None, list[Any]]:
        if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
            raise ValidationError(f"{where}: {at} must be a table with a 'name'")
        kids = [k for k in ("topics", "quality") if spec.get(k) is not None]
        if len(kids) > 1:
            raise ValidationError(f"{where}: {at} ({spec['name']!r}) has both 'topics' and 'quality'; olmix allows one")
        children = spec[kids[0]] if kids else []
        if kids and not isinstance(children, list):
            raise ValidationError(f"{where}: {at} ({spec['name']!r}), field {kids[0]!r} must be a list")
        w = spec.get("weight")
        if w is not None and (isinstance(w, bool) or not isinstance(w, (int, float)) or not w >= 0):
            raise ValidationError(f"{where}: {at} ({spec['name']!r}), field 'weight' must be a number >= 0, not {w!r}")
        return spec["name"], w, [node(c, f"{at} {kids[0]}[{i}]") for i, c in enumerate(children)]

    return [node(s, f"data.sources[{i}]") for i, s in enumerate(sources)]


def _tree_from_names(domains: Iterable[str]) -> list[tuple[str, float | None, list[Any]]]:
    """The tree that olmix's ``source:topic:quality`` names spell, in first-seen order."""
    root: dict[str, Any] = {}
    for d in domains:
        level = root
        for part in str(d).split(SEPARATOR):
            level = level.setdefault(part, {})

    def build(level: dict[str, Any]) -> list[tuple[str, float | None, list[Any]]]:
        return [(k, None, build(v)) for k, v in level.items()]

    return build(root)


def _numbers(raw: Any, key: str, where: str) -> dict[str, float]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ValidationError(f"{where}: '{key}' must map domain names to numbers")
    out = {}
    for d, v in raw.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
            raise ValidationError(f"{where}: '{key}', domain {d!r}: {v!r} is not a finite number >= 0")
        out[str(d)] = float(v)
    return out


def manifest_from_config(config: Mapping[str, Any], where: str) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    """``(pools, info)``: the manifest's ``{pool: fields}`` (groups with ``parent`` links, parents first) of an
    olmix config as ``yaml.safe_load`` reads it, and ``info`` = ``{"domains": {domain: pool}, "ignored": [...]}``.
    ``where`` (the file) starts every error."""
    if not isinstance(config, Mapping):
        raise ValidationError(f"{where}: an olmix config is a YAML mapping (data, priors, swarm, ...)")
    priors = config.get("priors") or {}
    if not isinstance(priors, Mapping):
        raise ValidationError(f"{where}: 'priors' must be a mapping with relative_sizes and token_counts")
    tokens = _numbers(priors.get("token_counts"), "priors.token_counts", where)
    sizes = _numbers(priors.get("relative_sizes"), "priors.relative_sizes", where)
    swarm = config.get("swarm") or {}
    manual = _numbers(swarm.get("manual_topic_prior") if isinstance(swarm, Mapping) else None,
                      "swarm.manual_topic_prior", where)
    data = config.get("data")
    if isinstance(data, Mapping) and "sources" in data:
        tree = _tree_from_sources(data["sources"], where)
    elif tokens:
        tree = _tree_from_names(tokens)
    else:
        raise ValidationError(f"{where}: neither 'data.sources' nor 'priors.token_counts': nothing names the domains; "
                              "run `olmix priors compute` and add its priors block")
    constraints = config.get("constraints") or {}
    epochs = None
    if isinstance(constraints, Mapping) and constraints.get("enabled"):
        epochs = constraints.get("repetition_factor")
        if isinstance(epochs, bool) or not isinstance(epochs, (int, float)) or not epochs > 0:
            raise ValidationError(f"{where}: 'constraints.repetition_factor' must be a number > 0, not {epochs!r}")

    leaves: list[str] = []

    def collect(nodes: list[Any], prefix: str) -> None:
        for name, _, kids in nodes:
            full = prefix + name
            if kids:
                collect(kids, full + SEPARATOR)
            else:
                leaves.append(full)

    collect(tree, "")
    names = pool_names(leaves, where)
    missing = [d for d in leaves if d not in tokens]
    if missing:
        raise ValidationError(f"{where}: 'priors.token_counts' has no entry for domain {missing[0]!r} "
                              f"({len(missing)} missing); run `olmix priors compute` or add it")
    pools: dict[str, dict[str, Any]] = {}

    def size(full: str, kids: list[Any]) -> float:
        if not kids:
            return sizes.get(full, tokens[full] / sum(tokens[d] for d in leaves))
        return sum(size(full + SEPARATOR + n, k) for n, _, k in kids)

    def add(nodes: list[Any], prefix: str, parent: str) -> None:
        full = [prefix + n for n, _, _ in nodes]
        weights = [manual.get(f, w) for f, (_, w, _) in zip(full, nodes)]
        # olmix reads a level's weights only when every node of it has one (else the natural distribution)
        use_weights = all(w is not None for w in weights)
        for f, (name, w, kids), wt in zip(full, nodes, weights):
            key = names[f] if not kids else pool_name(f)
            spec: dict[str, Any] = {} if kids else {"tokens": tokens[f]}
            spec["prior"] = float(wt) if use_weights else size(f, kids)
            if parent:
                spec["parent"] = parent
            if epochs is not None and not kids:
                spec["max_epochs"] = float(epochs)
            spec["description"] = f"olmix {'group' if kids else 'domain'} {f}"
            if key in pools:
                raise ValidationError(f"{where}: {f!r} becomes pool {key!r}, which another node already is; rename one")
            pools[key] = spec
            if kids:
                add(kids, f + SEPARATOR, key)

    add(tree, "", "")
    known = {"name", "data", "priors", "swarm", "constraints"}
    ignored = sorted(str(k) for k in config if k not in known)
    if isinstance(swarm, Mapping):
        ignored += [f"swarm.{k}" for k in swarm if k not in {"manual_topic_prior", "ratios", "metrics"}]
    extra = sorted(set(tokens) - set(leaves))
    if extra:
        raise ValidationError(f"{where}: 'priors.token_counts' names domain {extra[0]!r}, which data.sources does not "
                              f"have ({len(extra)} such); remove it or add the source")
    return pools, {"domains": names, "ignored": ignored}


def manifest_toml(pools: Mapping[str, Mapping[str, Any]], header: str = "") -> str:
    """A pool manifest's text (``[pools.NAME]`` tables, written by ``tomli_w``) for :func:`manifest_from_config`'s
    pools, under ``header`` as comments."""
    import tomli_w

    comments = "".join(f"# {line}\n" for line in header.splitlines())
    return comments + tomli_w.dumps({"pools": {name: dict(spec) for name, spec in pools.items()}})
