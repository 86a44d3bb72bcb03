"""Quality-bucketed pools in the manifest (mixplan.data.buckets via mixplan.data.pools): forms, defaults, labels."""

import numpy as np
import pytest

from mixplan import ValidationError
from mixplan.data.buckets import LAW_DEFAULTS
from mixplan.data.pools import load_pools


def load(tmp_path, text):
    path = tmp_path / "pools.toml"
    path.write_text(text)
    return load_pools(path)


def test_short_form_sizes_names_and_defaults(tmp_path):
    pools = load(tmp_path, '[pools.web]\ntokens = 1000000\nsamples = 5000\nscore = "q"\nbuckets = [0.1, 0.2, 0.3]\n'
                           '[pools.code]\ntokens = 10\n')
    assert [p.name for p in pools.bucketed] == ["web"] and pools.by_name("code").buckets is None
    spec = pools.by_name("web").buckets
    assert spec.names == ["top10", "top10_20", "top20_30"]
    assert [b.tokens for b in spec.buckets] == [100000.0] * 3  # whole units: 0.3 - 0.2 is not 0.1 in floats
    assert [b.samples for b in spec.buckets] == [500.0] * 3
    assert (spec.objective, spec.a, spec.d, spec.unit) == ("effective_utility", 0.025, 0.1, "tokens")
    assert spec.units().tolist() == [1, 1, 1] and [spec.union_label(k) for k in (1, 2, 3)] == ["top_10", "top_20",
                                                                                               "top_30"]
    d = pools.by_name("web").to_dict()
    assert d["samples"] == 5000 and d["buckets"]["buckets"][2]["top"] == 0.3
    assert "buckets" not in pools.by_name("code").to_dict()  # ordinary pools are unchanged


def test_long_form_with_parameters_law_table_and_samples_unit(tmp_path):
    spec = load(tmp_path, '[pools.dc]\ntokens = 4e7\nscore = "tmars"\nscores = ["tmars", "clip"]\n'
                          '[pools.dc.law]\nobjective = "effective_data"\nunit = "samples"\n'
                          '[[pools.dc.bucket]]\nname = "best"\ntop = 0.5\nsamples = 1e6\nb = -0.18\ntau = 4.0\n'
                          '[[pools.dc.bucket]]\nname = "rest"\ntop = 1.0\nsamples = 1e6\nb = -0.1\ntau = 1.5\n'
                ).bucketed[0].buckets
    assert spec.names == ["best", "rest"] and spec.scores == ("tmars", "clip")
    assert (spec.a, spec.d) == (LAW_DEFAULTS["effective_data"]["a"], 0.1)  # the authors' values for that fit
    assert spec.sizes().tolist() == [1e6, 1e6]  # law unit: samples
    assert [b.tokens for b in spec.buckets] == [2e7, 2e7]
    assert spec.resolve("best") == (0,) and spec.resolve("top_100") == (0, 1) and spec.resolve("top50") == (0,)
    assert spec.resolve("rest+best") == (0, 1)
    with pytest.raises(ValidationError, match=r"bucket 'worst' is not a bucket of pool 'dc': write a bucket name"):
        spec.resolve("worst")


def test_cutoff_form_and_lower_is_better(tmp_path):
    spec = load(tmp_path, '[pools.w]\ntokens = 3e6\nscore = "ppl"\nhigher_is_better = false\n'
                          '[[pools.w.bucket]]\ncutoff = 10.0\ntokens = 1e6\n'
                          '[[pools.w.bucket]]\ncutoff = 20.0\ntokens = 2e6\n').bucketed[0].buckets
    assert spec.names == ["bucket1", "bucket2"] and spec.units().tolist() == [1, 2]
    assert spec.union_label(2) == "ppl<=20" and spec.keep_fraction(1) is None
    with pytest.raises(ValidationError, match=r"cut-off 10; cut-offs go from the best bucket down and must be "
                                              r"strictly increasing .* higher_is_better = false"):
        load(tmp_path, '[pools.w]\ntokens = 3e6\nscore = "ppl"\nhigher_is_better = false\n'
                       '[[pools.w.bucket]]\ncutoff = 10.0\ntokens = 1e6\n[[pools.w.bucket]]\ncutoff = 5.0\n'
                       'tokens = 1e6\n')


def test_size_tolerance_is_a_pool_setting(tmp_path):
    text = ('[pools.w]\ntokens = 1e6\nscore = "q"\n{tol}[[pools.w.bucket]]\ntop = 0.1\ntokens = 1.04e5\n'
            '[[pools.w.bucket]]\ntop = 0.2\ntokens = 0.97e5\n')
    with pytest.raises(ValidationError, match=r"bucket 'top10', field 'tokens': 104000 is not the 0.1 share"):
        load(tmp_path, text.format(tol=""))
    spec = load(tmp_path, text.format(tol="size_tolerance = 0.05\n")).bucketed[0].buckets
    assert spec.tolerance == 0.05 and spec.units().tolist() == [1, 1]
    assert np.allclose(spec.sizes(), [1.04e5, 0.97e5])


def test_a_bucket_may_carry_its_own_r_star_which_its_bucket_pool_keeps(tmp_path):
    from mixplan.mixture.buckets import BucketLayout

    text = ('[pools.web]\ntokens = 2e6\nscore = "q"\nr_star = 20.0\n'
            '[[pools.web.bucket]]\ntop = 0.5\nr_star = 5.0\n[[pools.web.bucket]]\ntop = 1.0\n'
            '[pools.code]\ntokens = 1e6\n')
    pools = load(tmp_path, text)
    assert [b.r_star for b in pools.by_name("web").buckets.buckets] == [5.0, None]
    cols = BucketLayout.from_pools(pools).bucket_pools()
    assert [p.r_star for p in cols] == [5.0, 20.0, None]  # its own, else its pool's
    with pytest.raises(ValidationError, match=r"bucket 'top50', field 'r_star'.*e\.g\. 15\.4"):
        load(tmp_path, text.replace("r_star = 5.0", "r_star = -2"))


def test_a_composite_of_the_pools_scores_may_cut_its_buckets(tmp_path):
    text = '[pools.web]\ntokens = 1e6\nscore = "{score}"\n{scores}buckets = [0.5, 1.0]\n'
    listed = 'scores = ["dclm", "fasttext"]\n'
    spec = load(tmp_path, text.format(score="0.7*dclm+0.3*fasttext", scores=listed)).by_name("web").buckets
    assert spec.score == "0.7*dclm + 0.3*fasttext" and spec.scores == ("dclm", "fasttext")  # canonical text
    assert spec.union_label(1) == "top_50"
    # without 'scores' the composite's columns are the pool's scores (what scan reads)
    spec = load(tmp_path, text.format(score="0.7*dclm - 0.3*fasttext", scores="")).by_name("web").buckets
    assert spec.score == "0.7*dclm - 0.3*fasttext" and spec.scores == ("dclm", "fasttext")
    # the canonical text keeps every digit of a weight (it is the score scan re-reads), and simple ones simple
    spec = load(tmp_path, text.format(score="0.1234567*dclm + 0.6*fasttext", scores="")).by_name("web").buckets
    assert spec.score == "0.1234567*dclm + 0.6*fasttext"
    # a plain score without 'scores' stays as it was: any field name, no scores implied
    spec = load(tmp_path, text.format(score="quality score", scores="")).by_name("web").buckets
    assert spec.score == "quality score" and spec.scores == ()


@pytest.mark.parametrize("score, scores, message", [
    ("0.7*dclm + 0.3*nope", 'scores = ["dclm", "fasttext"]\n',
     "pools.toml: pool 'web', field 'score': the composite '0.7*dclm + 0.3*nope' names 'nope', which is not one of "
     "the pool's scores ['dclm', 'fasttext']; add it to 'scores'"),
    ("0.7*dclm +", 'scores = ["dclm"]\n',
     "pools.toml: pool 'web', field 'score': '0.7*dclm +' is not one of the pool's scores ['dclm'] nor a weighted "
     "sum of them"),
    ("0.7*dclm +", "", "pools.toml: pool 'web', field 'score': score spec '0.7*dclm +': cannot read an empty term"),
])
def test_a_composite_naming_no_score_of_the_pool_is_one_line_naming_the_pool_and_field(tmp_path, score, scores,
                                                                                         message):
    with pytest.raises(ValidationError) as err:
        load(tmp_path, f'[pools.web]\ntokens = 1e6\nscore = "{score}"\n{scores}buckets = [0.5, 1.0]\n')
    assert len(str(err.value).splitlines()) == 1 and message in str(err.value)
    assert str(err.value).startswith(str(tmp_path / "pools.toml"))
