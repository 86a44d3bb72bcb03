"""An OT study: revealed pool samples and a validation set, embedded once, and the fitted extrapolator.

The pieces the ``mixplan ot`` commands and ``mixplan plan --ot`` share: read samples (text or vectors),
embed them with one featurizer fitted on both sides (so that distances from different runs of the study
are comparable), fit :class:`mixplan.transport.extrapolator.OTExtrapolator` on proxy runs at one or more sizes,
and keep everything in one directory (JSON + ``.npz``, no pickle)::

    DIR/ot_model.json   settings, stage-1 coefficients, runs, report
    DIR/ot_space.npz    the embedded revealed samples, their pools, the embedded validation set
    DIR/featurizer.*    the fitted featurizer (text studies), to embed further samples the same way

Sample specifications (``samples`` / ``validation``):

* a table file (CSV, TSV, Parquet, JSON lines) with a ``text`` column (and ``pool`` for the revealed
  samples), or with vectors (``vectors=True``; see :func:`mixplan.transport.features.load_vectors`);
* ``.npy`` / ``.npz`` vector files.

The demo study's samples (``demo``, ``demo:NAME``) are :func:`mixplan.demo.samples.read_demo_samples`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import check_number
from .._io import check_writable, read_table
from ..exceptions import ValidationError
from .extrapolator import MODEL_FILE, SPACE_FILE, OTExtrapolator, load_extrapolator

__all__ = ["Samples", "check_per_pool", "read_samples", "fit_ot_study", "load_ot_study", "study_files"]

FEATURIZER = "featurizer"


@dataclass(frozen=True)
class Samples:
    """Texts or vectors, with the pool of each (``None`` for a validation set)."""

    source: str
    pool: np.ndarray | None
    texts: list[str] | None = None
    vectors: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.texts) if self.texts is not None else int(self.vectors.shape[0])


def _subsample(s: Samples, per_pool: int | None, seed: int) -> Samples:
    """At most ``per_pool`` rows of each pool (file order kept), chosen with ``seed``."""
    if per_pool is None or s.pool is None:
        return s
    rng = np.random.default_rng(seed)
    keep = []
    for p in dict.fromkeys(s.pool.tolist()):
        rows = np.flatnonzero(s.pool == p)
        keep.append(np.sort(rng.choice(rows, per_pool, replace=False)) if len(rows) > per_pool else rows)
    idx = np.sort(np.concatenate(keep))
    return Samples(s.source, s.pool[idx], None if s.texts is None else [s.texts[i] for i in idx],
                   None if s.vectors is None else s.vectors[idx])


def check_per_pool(per_pool: int | None) -> None:
    if per_pool is not None:
        check_number(per_pool, "per_pool", lo=1, integer=True, why="revealed samples per pool")


def read_samples(spec: str, *, pooled: bool, per_pool: int | None = None, seed: int = 0, vectors: bool = False,
                 column: str | None = None) -> Samples:
    """Read revealed samples (``pooled=True``: a ``pool`` per row is required) or a validation set."""
    what = "revealed samples" if pooled else "validation set"
    check_per_pool(per_pool)
    path = Path(spec)
    if vectors or path.suffix.lower() in (".npy", ".npz"):
        from .features import load_vectors

        X, pools = load_vectors(path, column=column, pool_column="pool")
        if pooled and pools is None:
            raise ValidationError(f"{path}: the revealed samples need a pool per vector (a 'pool' column, or a "
                                  "'pool' array in the .npz)")
        return _subsample(Samples(str(path), pools if pooled else None, vectors=X), per_pool, seed)
    frame = read_table(path)
    need = ["pool", "text"] if pooled else ["text"]
    missing = [c for c in need if c not in frame.columns]
    if missing:
        raise ValidationError(f"{path}: {what} need column(s) {missing} (found {list(frame.columns)}); or pass "
                              "vectors (--features vectors)")
    bad = frame["text"].map(lambda t: not isinstance(t, str) or not t.strip())
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValidationError(f"{path}, row {row + 2}, column 'text': empty or not text; drop the row")
    pools = frame["pool"].astype(str).to_numpy() if pooled else None
    return _subsample(Samples(str(path), pools, frame["text"].tolist()), per_pool, seed)


def _embed(samples: Samples, validation: Samples, features: str, components: int, seed: int):
    """Embed both sides with one featurizer fitted on their union (None for user vectors)."""
    if (samples.vectors is None) != (validation.vectors is None):
        raise ValidationError("give both the revealed samples and the validation set as text, or both as vectors")
    if samples.vectors is not None:
        if samples.vectors.shape[1] != validation.vectors.shape[1]:
            raise ValidationError(f"the revealed samples have {samples.vectors.shape[1]}-dimensional vectors but "
                                  f"the validation set {validation.vectors.shape[1]}; embed both the same way")
        return None, samples.vectors, validation.vectors
    from .features import make_featurizer

    feat = make_featurizer(features, **({"n_components": components, "seed": seed} if features == "text" else {}))
    Z = feat.fit_transform(samples.texts + validation.texts)
    return feat, Z[:len(samples)], Z[len(samples):]


def fit_ot_study(W: np.ndarray, tokens: np.ndarray, y: np.ndarray, pools: Sequence[str], samples: Samples,
                 validation: Samples, *, run_ids: Sequence[str] | None = None, features: str = "text",
                 components: int = 64, seed: int = 0, **params: Any) -> tuple[Any, OTExtrapolator]:
    """Embed the samples and fit the extrapolator on runs ``(W, tokens, y)`` over ``pools``.

    ``params`` go to :class:`~mixplan.transport.extrapolator.OTExtrapolator` (``anchors`` to its ``fit``).
    Returns ``(featurizer or None, extrapolator)``.
    """
    names = list(pools)
    have = set(samples.pool.tolist())
    unknown = sorted(have - set(names))
    missing = [p for p in names if p not in have]
    if missing:
        raise ValidationError(f"{samples.source}: no revealed samples for pool(s) {missing}; every pool of the runs "
                              f"({names}) needs some")
    if unknown:
        raise ValidationError(f"{samples.source}: samples of pool(s) {unknown} that the runs do not have; the runs' "
                              f"pools are {names}")
    feat, X, Y = _embed(samples, validation, features, components, seed)
    index = np.array([names.index(p) for p in samples.pool.tolist()])
    anchors = params.pop("anchors", None)
    est = OTExtrapolator(**params).fit(X, index, Y, W, tokens, y, pools=names, run_ids=run_ids, anchors=anchors,
                                       source="runs")
    return feat, est


def study_files(directory: str | Path) -> list[Path]:
    """Every file a saved study may consist of, whether present or not (the featurizer files exist only for
    text studies); what :func:`save_ot_study` checks before writing, so that it never overwrites any of them."""
    d = Path(directory)
    return [d / MODEL_FILE, d / SPACE_FILE, d / f"{FEATURIZER}.json", d / f"{FEATURIZER}.npz"]


def save_ot_study(directory: str | Path, featurizer: Any, est: OTExtrapolator, force: bool = False) -> list[Path]:
    """Write the extrapolator and the featurizer to ``directory`` (atomic; refuses to overwrite without force)."""
    d = Path(directory)
    check_writable(study_files(d), force)
    paths = est.save(d, force=force)
    if featurizer is not None:
        paths += list(featurizer.save(d / FEATURIZER, force=force))
    return paths


def load_ot_study(directory: str | Path) -> OTExtrapolator:
    """The extrapolator of a study saved by :func:`save_ot_study` (``mixplan ot fit --out DIR``)."""
    return load_extrapolator(directory)
