"""Derived pools in the manifest (issue 24): a rewritten or synthetic pool names its parent and the part of it
the text came from; every mistake is one line naming the file, the pool and the field."""

import pytest

from mixplan.cli import main
from mixplan.data.pools import load_pools
from mixplan.exceptions import ValidationError

# The shipped bucket demo's wiki pool (four buckets, 5,164,145 tokens), and pools derived from it.
BUCKETS = "pools/demo_buckets.toml"


def _manifest(repo, tmp_path, extra: str):
    path = tmp_path / "pools.toml"
    path.write_text((repo / BUCKETS).read_text() + "\n" + extra)
    return path


def test_a_rewritten_pool_names_its_parent_and_part(repo, tmp_path):
    path = _manifest(repo, tmp_path, '[pools.wiki_rw]\ntokens = 3000000\nkind = "rewritten"\nderived_from = "wiki"\n'
                                     'from_buckets = ["top30_60", "top60_100"]\nfrom_tokens = 3500000\n'
                                     '[pools.synth]\ntokens = 1e6\nkind = "synthetic"\n')
    pools = load_pools(path)
    rw = pools.by_name("wiki_rw")
    assert rw.derivation.kind == "rewritten" and rw.derivation.parent == "wiki"
    assert rw.derivation.buckets == ("top30_60", "top60_100") and rw.derivation.tokens == 3.5e6
    assert rw.to_dict()["derivation"]["from_buckets"] == ["top30_60", "top60_100"]
    from mixplan.data.derived import source_part

    assert source_part(rw, {p.name: p for p in pools}) == 1547107 + 2068316  # the two buckets' tokens
    assert pools.by_name("synth").derivation.parent is None
    assert pools.by_name("wiki").derivation is None and pools.by_name("wiki").tokens == 5164145  # parent unchanged


@pytest.mark.parametrize("extra, message", [
    ('[pools.rw]\ntokens = 1e6\nkind = "rewritten"\nderived_from = "web"\n',
     "pool 'rw', field 'derived_from': no pool 'web' in the manifest"),
    ('[pools.rw]\ntokens = 1e6\nderived_from = "rw"\n',
     "pool 'rw', field 'derived_from': the derivations form a cycle (rw -> rw)"),
    ('[pools.a]\ntokens = 1e6\nderived_from = "b"\n[pools.b]\ntokens = 1e6\nkind = "synthetic"\nderived_from = "a"\n',
     "pool 'a', field 'derived_from': the derivations form a cycle (a -> b -> a)"),
    ('[pools.rw]\ntokens = 1e6\nderived_from = "wiki"\nfrom_buckets = ["top10", "bottom"]\n',
     "pool 'rw', field 'from_buckets': 'bottom' is not a bucket of pool 'wiki' (its buckets: top10, top10_30"),
    ('[pools.rw]\ntokens = 1e6\nderived_from = "news"\nfrom_buckets = ["top10"]\n',
     "pool 'rw', field 'from_buckets': pool 'news' is not cut into quality buckets"),
    ('[pools.rw]\ntokens = 1e6\nderived_from = "wiki"\nfrom_buckets = ["top10"]\nfrom_tokens = 6e5\n',
     "pool 'rw', field 'from_tokens': 600000 tokens is more than the part of 'wiki' it names (buckets top10: "
     "515101 tokens); a derived part cannot be larger than its source"),
    ('[pools.rw]\ntokens = 1e6\nderived_from = "news"\nfrom_tokens = 4e5\n',
     "field 'from_tokens': 400000 tokens is more than the part of 'news' it names (all of it: 351332 tokens)"),
    ('[pools.rw]\ntokens = 1e6\nderived_from = "news"\nfrom_fraction = 1.5\n',
     "pool 'rw', field 'from_fraction': 1.5 must be in (0, 1]"),
    ('[pools.rw]\ntokens = 1e6\nderived_from = "wiki"\nfrom_fraction = 0.5\nfrom_buckets = ["top10"]\n',
     "field 'from_fraction': give the parent's part once"),
    ('[pools.rw]\ntokens = 1e6\nkind = "rewritten"\n', "field 'derived_from': a rewritten pool names the pool"),
    ('[pools.rw]\ntokens = 1e6\nkind = "paraphrase"\nderived_from = "wiki"\n',
     "pool 'rw', field 'kind': 'paraphrase' is not one of raw, rewritten, synthetic"),
    ('[pools.rw]\ntokens = 1e6\nkind = "raw"\nderived_from = "wiki"\n', "field 'kind': a raw pool is not derived"),
    ('[pools.rw]\ntokens = 1e6\nfrom_fraction = 0.5\n', "field 'from_fraction': says which part of the parent"),
    ('[pools.rw]\ntokens = 1e6\nderived_from = "wiki"\nfrom_buckets = "top10"\n',
     "field 'from_buckets': 'top10' should be a list of distinct bucket names"),
    ('[pools.syn]\ntokens = 1e6\nkind = "synthetic"\n[pools.syn.law]\nform = "rectified"\nD_l = 1e5\nbeta = 0.5\n',
     "pool 'syn', field 'law.form': 'rectified' is not one of synthetic"),
    ('[pools.syn]\ntokens = 1e6\nkind = "synthetic"\n[pools.syn.law]\nform = "synthetic"\nbeta = 0.5\n',
     "pool 'syn', field 'law.D_l': required for the rectified law"),
    ('[pools.syn]\ntokens = 1e6\n[pools.syn.law]\nform = "synthetic"\nD_l = 1e5\nbeta = -1\n',
     "pool 'syn', field 'law.beta': -1 must be > 0"),
    ('[pools.syn]\ntokens = 1e6\n[pools.syn.law]\nform = "synthetic"\nD_l = 1e5\nbeta = 1\nalpha = 2\n',
     "pool 'syn', field 'law': unknown key(s) ['alpha']"),
    ('[pools.syn]\ntokens = 1e6\nlaw = "missing.json"\n', "pool 'syn', field 'law': "),
])
def test_derived_pool_errors_are_one_line_naming_file_pool_and_field(repo, tmp_path, capsys, extra, message):
    path = _manifest(repo, tmp_path, extra)
    with pytest.raises(ValidationError, match=None) as err:
        load_pools(path)
    assert str(path) in str(err.value) and message in str(err.value), str(err.value)
    assert main(["validate", str(repo / "proxies" / "demo" / "runs.csv"), "--pools", str(path)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0]


def test_a_synthetic_pool_carries_its_own_law_given_or_fitted(repo, tmp_path):
    """[pools.NAME.law] with form = "synthetic" (or the path of a FIT.json from mixplan laws fit --law synthetic)
    is the pool's rectified law, which the budget-aware objective reads as PoolSet.synthetic."""
    import json

    import numpy as np

    path = _manifest(repo, tmp_path, '[pools.syn]\ntokens = 1e7\nkind = "synthetic"\n[pools.syn.law]\n'
                                     'form = "synthetic"\nD_l = 2e5\nbeta = 0.4\nE = 1.5\n')
    pools = load_pools(path)
    assert pools.by_name("syn").law == {"form": "synthetic", "D_l": 2e5, "beta": 0.4, "E": 1.5}
    table = pools.synthetic
    assert table.shape == (len(pools), 2) and np.isnan(table[:-1]).all() and table[-1].tolist() == [2e5, 0.4]
    assert load_pools(repo / BUCKETS).synthetic is None  # no pool with a law: nothing to price
    fit = tmp_path / "FIT.json"
    fit.write_text(json.dumps({"law": "synthetic", "params": {"B": 30.0, "E": 1.2, "D_l": 3e5, "beta": 0.7}}))
    path.write_text((repo / BUCKETS).read_text() + '\n[pools.syn]\ntokens = 1e7\nlaw = "FIT.json"\n')
    assert load_pools(path).by_name("syn").law == {"form": "synthetic", "D_l": 3e5, "beta": 0.7, "B": 30.0, "E": 1.2}
    fit.write_text(json.dumps({"law": "chinchilla", "params": {"A": 1.0, "B": 1.0, "E": 1.0, "alpha": 0.3,
                                                               "beta": 0.3}}))
    with pytest.raises(ValidationError, match="is a fitted 'chinchilla' law; a pool's own law is SynthLLM's"):
        load_pools(path)
    # a bucketed pool's law table is its buckets' QQT law; a per-pool law there is refused
    bucketed = (repo / BUCKETS).read_text().replace('objective = "effective_data"', 'form = "synthetic"')
    path.write_text(bucketed)
    with pytest.raises(ValidationError, match="pool 'wiki', field 'law': a bucketed pool's law is its buckets'"):
        load_pools(path)
