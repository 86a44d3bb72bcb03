"""Tests of mixplan.transport.features: text featurizer (vs sklearn), persistence, load_vectors, optional MiniLM.

Real text, offline: the Python standard library's own source files, split into ~500-character pieces —
code (docstrings and comments removed) and English prose (the docstrings).
"""

from __future__ import annotations

import hashlib
import importlib.util
import re
import sysconfig
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixplan.exceptions import MixplanError, MixplanWarning, NotFittedError, OutputExistsError, ValidationError
from mixplan.transport.features import (
    MissingDependencyError,
    SentenceEmbedder,
    TextFeaturizer,
    load_featurizer,
    load_vectors,
    make_featurizer,
)

_TRIPLE = re.compile(r'("""|\'\'\')(.*?)\1', re.S)
_COMMENT = re.compile(r"#[^\n]*")


def _pieces(texts, size=500):
    return [t[i:i + size] for t in texts for i in range(0, len(t), size) if len(t[i:i + size].strip()) > 50]


@pytest.fixture(scope="module")
def corpus() -> dict[str, list[str]]:
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))[:200]
    code, prose = [], []
    for f in files:
        src = f.read_text(encoding="utf-8", errors="replace")
        prose.append("\n".join(m.group(2) for m in _TRIPLE.finditer(src)))
        code.append(_COMMENT.sub("", _TRIPLE.sub("", src)))
    code, prose = _pieces(code), _pieces(prose)
    assert len(code) > 1000 and len(prose) > 600, (len(code), len(prose))
    return {"code": code[:1000], "prose": prose[:600], "fit": code[:700] + prose[:400],
            "held_out": code[900:1000] + prose[500:600]}


@pytest.fixture(scope="module")
def fitted(corpus) -> TextFeaturizer:
    return TextFeaturizer(seed=0).fit(corpus["fit"])


# ------------------------------------------------------------------------------------------ featurizer
def test_shape_dtype_unit_norm(fitted, corpus):
    z = fitted.transform(corpus["held_out"])
    assert z.shape == (len(corpus["held_out"]), 64) and z.dtype == np.float64 and z.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-12)
    # Only the used hash columns are stored.
    assert fitted.components_.shape == (64, fitted.columns_.size) and fitted.columns_.size < 2**18 // 10


@pytest.mark.filterwarnings("ignore:1 of 1100 texts share no token:mixplan.exceptions.MixplanWarning")
def test_matches_sklearn_pipeline(corpus):
    """Same numbers as HashingVectorizer → TfidfTransformer(sublinear) → TruncatedSVD → Normalizer.

    Tolerance 1e-6 (max abs difference; float32-rounded components give ~2e-8). Smaller hash space and k
    than the defaults only to keep sklearn's dense power iterations fast (12 s at 2**18 x 64).
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import Normalizer

    nf, k = 2**16, 32
    fit = corpus["fit"]
    pipe = make_pipeline(HashingVectorizer(n_features=nf, alternate_sign=False, norm=None),
                         TfidfTransformer(sublinear_tf=True), TruncatedSVD(k, random_state=3), Normalizer())
    expected = pipe.fit_transform(fit)
    ours = TextFeaturizer(n_components=k, n_features=nf, seed=3)
    got = ours.fit_transform(fit)
    assert np.abs(got - expected).max() < 1e-6
    np.testing.assert_array_equal(ours.idf_, pipe[1].idf_[ours.columns_])
    # Held-out texts too (rows with a token seen at fit time, i.e. all of these).
    assert np.abs(ours.transform(corpus["held_out"]) - pipe.transform(corpus["held_out"])).max() < 1e-6


def test_bytes_and_str_agree(fitted, corpus):
    texts = corpus["held_out"][:20]
    np.testing.assert_array_equal(fitted.transform([t.encode("utf-8") for t in texts]), fitted.transform(texts))
    # Invalid UTF-8 is replaced, not an error.
    assert fitted.transform([b"def f(x):\xff return x"]).shape == (1, 64)


def test_unseen_only_text_is_zero_with_warning(fitted):
    with pytest.warns(MixplanWarning, match="1 of 2 texts share no token"):
        z = fitted.transform(["zqxjv wqpfk xxyyzzq", "def return self import"])
    assert np.all(z[0] == 0) and abs(np.linalg.norm(z[1]) - 1) < 1e-12


@pytest.mark.parametrize("texts, match", [
    ([], "empty"),
    ("one string", "single str"),
    (["fine", 3], r"texts\[1\] is a int"),
    (["fine", None], r"texts\[1\] is a NoneType"),
    (None, "sequence of strings"),
])
def test_bad_texts(texts, match):
    with pytest.raises(ValidationError, match=match):
        TextFeaturizer().fit(texts)


def test_too_few_documents_says_how_many(corpus):
    with pytest.raises(ValidationError, match=r"at least n_components \+ 1 = 65 documents.*got 10.*at most 9"):
        TextFeaturizer().fit(corpus["code"][:10])
    assert TextFeaturizer(n_components=9).fit(corpus["code"][:10]).transform(corpus["code"][:2]).shape == (2, 9)


@pytest.mark.parametrize("params, match", [({"n_components": 0}, "n_components"), ({"seed": -1}, "seed"),
                                           ({"n_components": 2.5}, "integer"), ({"n_features": 8}, "smaller")])
def test_bad_params(params, match, corpus):
    with pytest.raises(ValidationError, match=match):
        TextFeaturizer(**params).fit(corpus["code"][:100])


def test_not_fitted():
    with pytest.raises(NotFittedError, match="fit"):
        TextFeaturizer().transform(["text"])
    with pytest.raises(NotFittedError):
        TextFeaturizer().save("/nonexistent/never")


def test_separation_code_vs_prose(fitted, corpus):
    """Held-out code pieces are closer to code, prose to prose (mean cosine)."""
    code = fitted.transform(corpus["code"][900:1000])
    prose = fitted.transform(corpus["prose"][500:600])

    def mean_cos(a, b, same):
        s = a @ b.T
        return (s.sum() - np.trace(s)) / (s.size - len(s)) if same else s.mean()

    within = min(mean_cos(code, code, True), mean_cos(prose, prose, True))
    across = mean_cos(code, prose, False)
    assert within > across + 0.1, (within, across)


# ----------------------------------------------------------------------------------------- persistence
def test_save_load_round_trip(fitted, corpus, tmp_path):
    json_path, npz_path = fitted.save(tmp_path / "feat")
    assert (json_path.name, npz_path.name) == ("feat.json", "feat.npz")
    before = fitted.transform(corpus["held_out"])
    for where in (tmp_path / "feat", json_path, npz_path):
        loaded = TextFeaturizer.load(where)
        np.testing.assert_array_equal(loaded.transform(corpus["held_out"]), before)
    assert isinstance(load_featurizer(tmp_path / "feat"), TextFeaturizer)
    # A directory gives DIR/featurizer.*
    fitted.save(tmp_path / "model")  # not a directory yet: a prefix
    (tmp_path / "dir").mkdir()
    j, _ = fitted.save(tmp_path / "dir")
    assert j == tmp_path / "dir" / "featurizer.json"
    np.testing.assert_array_equal(load_featurizer(tmp_path / "dir").transform(corpus["held_out"]), before)
    # Small: only the used columns (~1 MB for this corpus, not 64 x 2**18 floats).
    assert npz_path.stat().st_size < 5_000_000


def test_same_seed_gives_byte_identical_files(corpus, tmp_path):
    fit = corpus["fit"]
    paths = []
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        paths.append(TextFeaturizer(seed=7).fit(fit).save(tmp_path / sub))
    for x, y in zip(*paths):
        assert x.read_bytes() == y.read_bytes(), x.name
    (tmp_path / "c").mkdir()
    _, other = TextFeaturizer(seed=8).fit(fit).save(tmp_path / "c")
    assert other.read_bytes() != paths[0][1].read_bytes()


def test_refuses_overwrite_without_force(fitted, tmp_path):
    json_path, npz_path = fitted.save(tmp_path / "f")
    stamp = (json_path.read_bytes(), npz_path.read_bytes())
    with pytest.raises(OutputExistsError, match="force"):
        fitted.save(tmp_path / "f")
    # Only the .npz exists: still refused, and the .json is not written either.
    json_path.unlink()
    with pytest.raises(OutputExistsError):
        fitted.save(tmp_path / "f")
    assert not json_path.exists()
    fitted.save(tmp_path / "f", force=True)
    assert (json_path.read_bytes(), npz_path.read_bytes()) == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_corrupted_or_mismatched_arrays_are_rejected(fitted, corpus, tmp_path):
    json_path, npz_path = fitted.save(tmp_path / "f")
    good = npz_path.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0xFF
    npz_path.write_bytes(bytes(bad))
    with pytest.raises(ValidationError, match=r"f\.npz: SHA-256 .* does not match .* recorded in .*f\.json"):
        TextFeaturizer.load(tmp_path / "f")
    # The arrays of another fit next to this JSON.
    _, other = TextFeaturizer(n_components=8).fit(corpus["code"][:50]).save(tmp_path / "g")
    npz_path.write_bytes(other.read_bytes())
    with pytest.raises(ValidationError, match="SHA-256"):
        TextFeaturizer.load(json_path)
    npz_path.unlink()
    with pytest.raises(ValidationError, match="missing"):
        TextFeaturizer.load(json_path)
    with pytest.raises(ValidationError, match="no saved featurizer"):
        load_featurizer(tmp_path / "nothing")
    json_path.write_text("{not json")
    with pytest.raises(ValidationError, match="not valid JSON"):
        load_featurizer(json_path)
    json_path.write_text('{"format": "mixplan-featurizer", "format_version": 99, "kind": "text"}')
    with pytest.raises(ValidationError, match="format_version 99"):
        load_featurizer(json_path)
    assert hashlib.sha256(good).hexdigest()  # the original bytes were a valid save (round trip tested above)


# ----------------------------------------------------------------------------------------- load_vectors
def test_load_vectors_npy_and_npz(tmp_path):
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    np.save(tmp_path / "v.npy", x)
    got, pools = load_vectors(tmp_path / "v.npy")
    assert got.dtype == np.float64 and pools is None
    np.testing.assert_array_equal(got, x)
    np.savez(tmp_path / "v.npz", X=x, pool=np.array(["a", "a", "b", "c"]))
    got, pools = load_vectors(tmp_path / "v.npz", dim=3)
    np.testing.assert_array_equal(got, x)
    assert pools.tolist() == ["a", "a", "b", "c"]
    np.savez(tmp_path / "nopool.npz", X=x)
    assert load_vectors(tmp_path / "nopool.npz")[1] is None


def test_load_vectors_csv_prefix_columns(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 12))
    frame = pd.DataFrame({"pool": list("aabbc"), "id": range(5)})
    for j in range(12):
        frame[f"v{j}"] = x[:, j]
    # Columns written out of order: v10 must come after v9, not after v1.
    frame = frame[["pool", "id"] + [f"v{j}" for j in (10, 0, 1, 11, 2, 3, 4, 5, 6, 7, 8, 9)]]
    frame.to_csv(tmp_path / "v.csv", index=False)
    got, pools = load_vectors(tmp_path / "v.csv", column="v*")
    np.testing.assert_allclose(got, x, rtol=1e-15)
    assert pools.tolist() == list("aabbc")


def test_load_vectors_parquet_list_column(tmp_path):
    pytest.importorskip("pyarrow", reason="Parquet needs pyarrow (the test extra)")
    x = np.random.default_rng(1).normal(size=(4, 5))
    pd.DataFrame({"emb": list(x), "pool": ["p", "q", "p", "q"]}).to_parquet(tmp_path / "v.parquet")
    for column in ("emb", None):
        got, pools = load_vectors(tmp_path / "v.parquet", column=column)
        np.testing.assert_array_equal(got, x)
        assert pools.tolist() == ["p", "q", "p", "q"]
    ragged = pd.DataFrame({"emb": [[1.0, 2.0], [1.0, 2.0, 3.0]]})
    ragged.to_parquet(tmp_path / "r.parquet")
    with pytest.raises(ValidationError, match=r"r\.parquet: row 2, column 'emb': vector has 3 entries but row 1 has 2"):
        load_vectors(tmp_path / "r.parquet", column="emb")
    pd.DataFrame({"emb": [[1.0, 2.0], [float("nan"), 2.0]]}).to_parquet(tmp_path / "n.parquet")
    with pytest.raises(ValidationError, match=r"row 2, column 'emb': entry 0 is nan"):
        load_vectors(tmp_path / "n.parquet", column="emb")
    pd.DataFrame({"emb": [[1.0, 2.0], None]}).to_parquet(tmp_path / "m.parquet")
    with pytest.raises(ValidationError, match=r"row 2, column 'emb': missing vector"):
        load_vectors(tmp_path / "m.parquet", column="emb")


def test_load_vectors_csv_json_list_column(tmp_path):
    (tmp_path / "v.csv").write_text('emb,pool\n"[1, 2]",a\n"[3, 4.5]",b\n')
    got, pools = load_vectors(tmp_path / "v.csv", column="emb")
    np.testing.assert_array_equal(got, [[1, 2], [3, 4.5]])
    assert pools.tolist() == ["a", "b"]


def test_load_vectors_errors(tmp_path):
    bad = np.ones((3, 2))
    bad[2, 1] = np.inf
    np.save(tmp_path / "inf.npy", bad)
    with pytest.raises(ValidationError, match=r"inf\.npy: X\[2, 1\] \(row 3, dimension 1\) is inf"):
        load_vectors(tmp_path / "inf.npy")
    np.save(tmp_path / "flat.npy", np.ones(3))
    with pytest.raises(ValidationError, match="2-D"):
        load_vectors(tmp_path / "flat.npy")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValidationError, match="without pickle"):
        load_vectors(tmp_path / "obj.npy")
    np.save(tmp_path / "ok.npy", np.ones((3, 4)))
    with pytest.raises(ValidationError, match="4 dimensions, expected 64"):
        load_vectors(tmp_path / "ok.npy", dim=64)
    np.savez(tmp_path / "w.npz", vectors=np.ones((3, 4)))
    with pytest.raises(ValidationError, match=r"no array 'X'.*\['vectors'\]"):
        load_vectors(tmp_path / "w.npz")
    np.savez(tmp_path / "p.npz", X=np.ones((3, 4)), pool=np.array(["a", "b"]))
    with pytest.raises(ValidationError, match=r"pool labels have shape \(2,\), expected \(3,\)"):
        load_vectors(tmp_path / "p.npz")
    (tmp_path / "v.csv").write_text("pool,v0,v1\na,1,2\nb,3,\nc,x,1\n")
    with pytest.raises(ValidationError, match=r"v\.csv: row 3, column 'v0': 'x' is not a finite number"):
        load_vectors(tmp_path / "v.csv", column="v*")
    (tmp_path / "w.csv").write_text("pool,v0,v1\na,1,2\nb,3,\n")
    with pytest.raises(ValidationError, match=r"row 2, column 'v1'"):
        load_vectors(tmp_path / "w.csv", column="v*")
    with pytest.raises(ValidationError, match=r"no column matches 'e\*'; columns are \['pool', 'v0', 'v1'\]"):
        load_vectors(tmp_path / "w.csv", column="e*")
    with pytest.raises(ValidationError, match="no column 'emb'"):
        load_vectors(tmp_path / "w.csv", column="emb")
    with pytest.raises(ValidationError, match=r"holds single values.*column='v\*'"):
        load_vectors(tmp_path / "w.csv", column="v0")
    with pytest.raises(ValidationError, match="say which column"):
        load_vectors(tmp_path / "w.csv")
    with pytest.raises(ValidationError, match="no such file"):
        load_vectors(tmp_path / "missing.npy")
    (tmp_path / "v.txt").write_text("1 2\n")
    with pytest.raises(ValidationError, match="unknown vector file type"):
        load_vectors(tmp_path / "v.txt")


# ------------------------------------------------------------------------------------ optional MiniLM
def test_factory():
    assert isinstance(make_featurizer(), TextFeaturizer)
    assert make_featurizer("text", n_components=8).n_components == 8
    with pytest.raises(ValidationError, match="unknown featurizer kind 'bert'"):
        make_featurizer("bert")


def test_sentence_embedder_missing_dependency_is_clear(tmp_path):
    if importlib.util.find_spec("sentence_transformers") is not None:
        pytest.skip("sentence-transformers is installed; the missing-extra error cannot occur")
    for call in (lambda: make_featurizer("minilm"), lambda: SentenceEmbedder().transform(["a sentence"]),
                 lambda: SentenceEmbedder().fit(["a sentence"])):
        with pytest.raises(MissingDependencyError, match=r"pip install 'mixplan\[embeddings\]'.*CPU-only torch"):
            call()
    assert issubclass(MissingDependencyError, MixplanError) and issubclass(MissingDependencyError, ImportError)
    # Saving and loading need only the model name, not the dependency.
    SentenceEmbedder(batch_size=16).save(tmp_path / "m")
    loaded = load_featurizer(tmp_path / "m.json")
    assert isinstance(loaded, SentenceEmbedder) and loaded.batch_size == 16
    assert not (tmp_path / "m.npz").exists()


def test_no_stray_warnings_on_normal_use(fitted, corpus):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fitted.transform(corpus["held_out"][:10])
