"""Issue 24, item 1 (ratings): which score (or composite) to filter by, from runs that filtered by different ones."""

import json
import re

import numpy as np
import pandas as pd
import pytest

from mixplan import ValidationError
from mixplan.cli import main
from mixplan.data.pools import load_pools
from mixplan.filtering import composite_scores, fit_ratings, normal_scores, parse_composite

SCORES = ("informative", "partial", "noise")


def rated_corpus(seed, *, n_docs=4000, keeps=(0.1, 0.2, 0.4, 0.7, 1.0), noise=0.01, effect=0.04, repetition=0.02):
    """Documents with a latent quality q and three scores of known usefulness -- informative = q + small noise,
    partial = 0.5 q + noise, noise = pure noise -- and proxy runs filtered by each at several keep fractions:
    target = 3 - effect * (kept set's mean q) + repetition * log(1 / keep) (a fixed budget repeats a smaller
    kept set more) + run noise. The best filter is the informative score at a keep near 0.2."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=n_docs)
    docs = pd.DataFrame({"informative": q + 0.3 * rng.normal(size=n_docs),
                         "partial": 0.5 * q + rng.normal(size=n_docs), "noise": rng.normal(size=n_docs)})
    rows = []
    for score in SCORES:
        order = np.argsort(-docs[score].to_numpy(), kind="stable")
        for k in keeps:
            kept = order[: round(k * n_docs)]
            rows.append({"score": score, "keep": k, "tokens": 1e8,
                         "loss": 3.0 - effect * q[kept].mean() + repetition * np.log(1 / k) + noise * rng.normal()})
    return pd.DataFrame(rows), docs


# ---------------------------------------------------------------------------------------------------------------
# Acceptance: the fitted choice picks the informative score in >= 9 of 10 seeds
# ---------------------------------------------------------------------------------------------------------------

def test_the_informative_score_is_chosen_in_at_least_9_of_10_seeds():
    curves = documents = 0
    for seed in range(10):
        runs, docs = rated_corpus(seed)
        curves += fit_ratings(runs, "loss", seed=seed).chosen == "informative"
        fit = fit_ratings(runs, "loss", docs, seed=seed)
        documents += fit.chosen == "informative"
    print(f"informative chosen: curves per score {curves}/10, document model {documents}/10")
    assert curves >= 9 and documents >= 9, (curves, documents)


def test_fit_reports_cv_evidence_and_the_best_keep():
    runs, docs = rated_corpus(3)
    fit = fit_ratings(runs, "loss", docs, seed=3)
    by = {(c.level, c.name): c for c in fit.candidates}
    inf, part, noise = (by[("documents", s)] for s in SCORES)
    keep_only = by[("documents", "(keep only)")]
    # the informative score's kept-set mean explains the runs; the noise score's no better than the keep alone
    assert inf.cv_rmse < 0.6 * min(part.cv_rmse, noise.cv_rmse, keep_only.cv_rmse)
    assert noise.cv_rmse == pytest.approx(keep_only.cv_rmse, rel=0.01)  # its coefficient comes out > 0: held at 0
    assert inf.folds == 50 and inf.cv_rmse_sd > 0 and inf.p_best > 0.9
    assert 0.1 < fit.best_keep < 0.7 and fit.budget == 1e8  # the true optimum of the synthetic law is near 0.2
    assert fit.margin["paired_se"] > 2 and fit.runner_up is not None
    curves = {c.name: c for c in fit.candidates if c.level == "curves"}
    assert set(curves) == set(SCORES) and all(c.runs == 7 for c in curves.values())  # 4 own + 3 unfiltered runs
    assert curves["informative"].predicted_best < curves["partial"].predicted_best < curves["noise"].predicted_best
    text = fit.report()
    assert "chosen: 'informative' (score; document model over 4000 documents" in text
    assert "CV RMSE" in text and "curves per spec" in text
    doc = json.loads(json.dumps(fit.to_dict()))
    assert doc["chosen"] == "informative" and doc["level"] == "documents" and len(doc["candidates"]) == 8
    table = fit.candidates_table()
    assert table["chosen"].sum() == 1 and table.loc[table["chosen"], "name"].item() == "informative"


def test_fit_is_deterministic_given_the_seed():
    runs, docs = rated_corpus(5)
    a, b = (fit_ratings(runs, "loss", docs, seed=7, n_bootstrap=50).to_dict() for _ in range(2))
    assert a == b
    c = fit_ratings(runs, "loss", docs, seed=8, n_bootstrap=50).to_dict()
    assert c["candidates"] != a["candidates"]  # other CV splits


def test_composite_runs_and_a_learned_composite():
    # two scores each carrying half of the quality (q1 + q2): filtering by both beats either
    rng = np.random.default_rng(0)
    n = 4000
    q1, q2 = rng.normal(size=(2, n))
    docs = pd.DataFrame({"a": q1 + 0.3 * rng.normal(size=n), "b": q2 + 0.3 * rng.normal(size=n),
                         "c": rng.normal(size=n)})

    def runs_for(specs):
        rows = []
        for spec in specs:
            order = np.argsort(-composite_scores(docs, spec), kind="stable")
            for k in (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0):
                kept = order[: round(k * n)]
                rows.append({"score": spec, "keep": k, "loss": 3 - 0.04 * (q1[kept].mean() + q2[kept].mean())
                             + 0.02 * np.log(1 / k) + 0.01 * rng.normal()})
        return pd.DataFrame(rows)

    given = fit_ratings(runs_for(["a", "b", "c", "0.5*a+0.5*b"]), "loss", docs)
    assert (given.chosen, given.chosen_kind) == ("0.5*a + 0.5*b", "composite")
    learned = fit_ratings(runs_for(["a", "b", "c"]), "loss", docs)
    assert learned.chosen_kind == "learned composite", learned.report()
    w = next(c for c in learned.candidates if c.name == learned.chosen).weights
    assert set(w) <= {"a", "b", "c"} and 0.3 < w["a"] < 0.7 and 0.3 < w["b"] < 0.7 and w.get("c", 0) < 0.15
    assert any("learned composite" in n and "chosen" in n for n in learned.notes)


def test_a_lower_is_better_score_is_named_negated():
    runs, docs = rated_corpus(2)
    docs["perplexity"] = -docs.pop("informative")  # lower is better
    runs["score"] = runs["score"].replace({"informative": "-1*perplexity"})
    fit = fit_ratings(runs, "loss", docs, seed=2)
    assert fit.chosen == "-perplexity" and fit_ratings(runs, "loss", seed=2).chosen == "-perplexity"


def test_unfiltered_runs_belong_to_every_curve_and_budgets_are_a_term():
    runs, _ = rated_corpus(1)
    runs.loc[runs["keep"] == 1.0, "score"] = ""  # an unfiltered run need not name a score
    runs = pd.concat([runs, runs.assign(tokens=4e8, loss=runs["loss"] - 0.05)], ignore_index=True)
    fit = fit_ratings(runs, "loss", seed=1)
    assert fit.chosen == "informative" and fit.budget == 4e8
    assert all(c.runs == 14 for c in fit.candidates)  # (4 own + 3 unfiltered) x 2 budgets
    assert any("2 budgets: predictions are at the largest" in n for n in fit.notes)


def test_few_runs_are_warned_about():
    runs, _ = rated_corpus(0, keeps=(0.2, 1.0))
    fit = fit_ratings(runs, "loss")
    assert any("runs at 2 keep fractions" in w and "its curve is a line" in w for w in fit.warnings)


def test_the_few_runs_warning_names_the_curve_it_fits():
    # one spec, 3 runs at 3 keeps: a quadratic through 3 points (nothing left to check it), not a constant
    runs = pd.DataFrame({"score": ["a", "a", "a"], "keep": [0.2, 0.5, 1.0], "loss": [3.1, 3.0, 3.2]})
    (warning,) = [w for w in fit_ratings(runs, "loss", n_bootstrap=0).warnings if "keep fractions" in w]
    assert "3 runs at 3 keep fractions" in warning and "its curve is a quadratic in log keep" in warning, warning
    assert "3 runs for its 3 coefficients leave 0 to check it" in warning and "constant" not in warning, warning
    assert "give it >= 4 runs" in warning and "keep fractions below 1" not in warning, warning
    # all runs at one keep: a constant, which cannot show a best keep
    runs = pd.DataFrame({"score": ["a"] * 4, "keep": [0.2] * 4, "loss": [3.1, 3.0, 3.2, 3.1]})
    (warning,) = [w for w in fit_ratings(runs, "loss", n_bootstrap=0).warnings if "keep fraction" in w]
    assert "4 runs at 1 keep fraction " in warning and "its curve is a constant" in warning, warning
    assert "give it runs at >= 3 keep fractions" in warning, warning


def test_a_positive_multiple_of_a_score_is_the_same_filter_at_both_levels():
    # '0.5*informative' orders the documents as 'informative': the levels agree although the names differ
    runs, docs = rated_corpus(3)
    runs["score"] = runs["score"].replace({"informative": "0.5*informative"})
    fit = fit_ratings(runs, "loss", docs, seed=3)
    curves = {c.name: c for c in fit.candidates if c.level == "curves"}
    assert fit.chosen == "informative" and min(curves.values(), key=lambda c: c.predicted_best).name == \
        "0.5*informative"
    assert curves["0.5*informative"].kind == "score"  # one column: a score at both levels, not a composite
    assert not any("the curves per spec favour" in w for w in fit.warnings), fit.warnings
    # a filter is its columns and their weights up to a positive scale
    from mixplan.filtering.ratings import _same_filter
    assert _same_filter({"a": 0.6, "b": 0.4}, {"b": 2.0, "a": 3.0}) and _same_filter({"a": -1.0}, {"a": -0.25})
    assert not _same_filter({"a": 1.0}, {"a": -1.0}) and not _same_filter({"a": 1.0}, {"a": 1.0, "b": 0.1})
    assert not _same_filter({"a": 0.6, "b": 0.4}, {"a": 0.4, "b": 0.6})


# ---------------------------------------------------------------------------------------------------------------
# Specs, normal scores, errors
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, canonical, terms", [
    ("dclm", "dclm", {"dclm": 1.0}),
    ("0.6*dclm+0.4*fasttext", "0.6*dclm + 0.4*fasttext", {"dclm": 0.6, "fasttext": 0.4}),
    (" 0.5 * a - 0.5*ppl ", "0.5*a - 0.5*ppl", {"a": 0.5, "ppl": -0.5}),
    ("-1*ppl", "-ppl", {"ppl": -1.0}),
    ("acc_arc-easy + 2e-1*x", "acc_arc-easy + 0.2*x", {"acc_arc-easy": 1.0, "x": 0.2}),
    ("a + a", "2*a", {"a": 2.0}),
    ("1e+1*a", "10*a", {"a": 10.0}),
    ("0.1234567*a + 0.6*b", "0.1234567*a + 0.6*b", {"a": 0.1234567, "b": 0.6}),  # every digit: it is re-read
    (f"{1 / 3!r}*a - 2.5*b", "0.3333333333333333*a - 2.5*b", {"a": 1 / 3, "b": -2.5}),
])
def test_parse_composite(spec, canonical, terms):
    comp = parse_composite(spec)
    assert comp.spec == canonical and comp.weights == terms
    assert parse_composite(comp.spec).spec == canonical  # canonical text reads back the same


@pytest.mark.parametrize("spec, message", [
    ("", r"score spec '' is empty"),
    ("0.7*a+", r"score spec '0.7\*a\+': cannot read an empty term; write a column or 'w1\*col1 \+ w2\*col2'"),
    ("0.7*a+0.3**b", r"cannot read the term '0.3\*\*b'"),
    ("a - a", r"every weight is 0"),
    ("1e400*a", r"the weight 1e400 is not a finite number"),
    ("mean(a)", r"cannot read the term 'mean\(a\)'"),
])
def test_parse_composite_errors(spec, message):
    with pytest.raises(ValidationError, match=message):
        parse_composite(spec)


def test_composite_scores_use_each_columns_order_only():
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=500), "b": rng.normal(size=500)})
    z = normal_scores(frame["a"])
    assert np.all(np.diff(z[np.argsort(frame["a"])]) > 0) and abs(z.mean()) < 1e-9 and 0.95 < z.std() < 1.0
    assert normal_scores([1.0, 2.0, 2.0, 3.0])[1] == normal_scores([1.0, 2.0, 2.0, 3.0])[2]  # ties: one value
    skewed = frame.assign(a=np.exp(5 * frame["a"]))  # a monotone transform: same ranks, same composite
    assert np.allclose(composite_scores(frame, "0.7*a + 0.3*b"), composite_scores(skewed, "0.7*a + 0.3*b"))
    with pytest.raises(ValidationError, match=r"docs.csv: no column 'c' \(score spec '0.5\*a \+ 0.5\*c'\); the "
                                              r"columns are \['a', 'b'\]"):
        composite_scores(frame, "0.5*a + 0.5*c", "docs.csv: ")
    with pytest.raises(ValidationError, match=r"docs.csv: row 2, column 'b': 'x' is not a finite number"):
        composite_scores(frame.astype({"b": object}).assign(b=["1", "x"] + ["1"] * 498), "a+b", "docs.csv: ")


def test_runs_errors():
    runs, docs = rated_corpus(0)
    cases = [
        (runs.drop(columns="keep"), r"r.csv: no 'keep' column; a ratings run names the score spec"),
        (runs.assign(keep=[0.0] + [0.5] * 14), r"r.csv: row 1, column 'keep': 0.0 must be in \(0, 1\]"),
        (runs.assign(score=[""] + ["a"] * 14), r"r.csv: row 1, column 'score': empty, but the run kept 0.1"),
        (runs.assign(score=["a+"] * 15), r"r.csv: row 1, column 'score': score spec 'a\+': cannot read an empty term"),
        (runs.assign(loss=1.0), r"r.csv: the target 'loss' is 1 in every run"),
        (runs.assign(loss=["x"] + [1.0] * 14), r"r.csv: row 1, column 'loss': 'x' is not a finite number"),
        (runs.head(2), r"r.csv: 2 runs; comparing scores needs"),
        (runs.assign(keep=1.0), r"no run filtered anything \(every keep is 1\)"),
    ]
    for frame, message in cases:
        with pytest.raises(ValidationError, match=message):
            fit_ratings(frame, "loss", where="r.csv")
    with pytest.raises(ValidationError, match=r"d.csv: no column 'partial' \(score spec 'partial'\); the columns are "
                                              r"\['informative', 'noise'\]"):
        fit_ratings(runs, "loss", docs.drop(columns="partial"), documents_where="d.csv")
    with pytest.raises(ValidationError, match=r"5 runs: the document model's CV needs at least 6"):
        fit_ratings(runs.head(5), "loss", docs)


# ---------------------------------------------------------------------------------------------------------------
# The command line
# ---------------------------------------------------------------------------------------------------------------

def test_cli_ratings_end_to_end(tmp_path, capsys):
    runs, docs = rated_corpus(4)
    runs.to_csv(tmp_path / "runs.csv", index=False)
    docs.to_parquet(tmp_path / "docs.parquet")
    out = tmp_path / "out"
    argv = ["filter", "--runs", tmp_path / "runs.csv", "--target", "loss", "--documents", tmp_path / "docs.parquet",
            "--bootstrap", "50", "--out", out]
    assert main([str(a) for a in argv]) == 0
    text = capsys.readouterr().out
    assert "chosen: 'informative'" in text and f"written: {out / 'ratings.json'}" in text
    doc = json.loads((out / "ratings.json").read_text())
    assert doc["kind"] == "mixplan.ratings_fit" and doc["chosen"] == "informative" and doc["bootstrap"] == 50
    assert set(pd.read_csv(out / "ratings.csv")["level"]) == {"documents", "curves"}
    assert main([str(a) for a in argv]) == 2  # no overwrite without --force
    assert "exists" in capsys.readouterr().err
    assert main([str(a) for a in argv] + ["--force", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["chosen"] == "informative"


@pytest.mark.parametrize("extra, message", [
    (["--target", "loss", "--pools", "p.toml"], "has 'score' and 'keep' columns: a ratings fit (which score to "
                                                "filter by), which needs no --pools"),
    (["--target", "loss", "--budget", "1e8"], "--budget does not go with a ratings fit"),
    (["--target", "loss", "--score", "partial"], "--score does not go with a ratings fit"),
])
def test_cli_ratings_errors(tmp_path, capsys, extra, message):
    runs, _ = rated_corpus(0)
    runs.to_csv(tmp_path / "runs.csv", index=False)
    assert main(["filter", "--runs", str(tmp_path / "runs.csv"), *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_cli_bucket_scores_by_a_composite(tmp_path, capsys):
    _, docs = rated_corpus(0, n_docs=1000)
    docs.assign(tokens=50).to_csv(tmp_path / "docs.csv", index=False)
    argv = ["filter", "--bucket-scores", str(tmp_path / "docs.csv"), "--fractions", "0.1,0.3", "--pool-name", "web",
            "--tokens-column", "tokens", "--out", str(tmp_path / "b"), "--score"]
    assert main(argv + ["0.7*informative+0.3*partial"]) == 0
    capsys.readouterr()
    snippet = (tmp_path / "b" / "pool_snippet.toml").read_text()
    assert 'score = "0.7*informative + 0.3*partial"' in snippet and "rank-based normal scores" in snippet
    manifest = tmp_path / "pools.toml"
    manifest.write_text(snippet)
    spec = load_pools(manifest).bucketed[0].buckets  # the manifest loader takes the spec as the score's label
    assert spec.score == "0.7*informative + 0.3*partial" and [b.top for b in spec.buckets] == [0.1, 0.3]
    buckets = pd.read_csv(tmp_path / "b" / "buckets.csv")
    top = np.argsort(-composite_scores(docs, "0.7*informative + 0.3*partial"), kind="stable")[:100]
    assert buckets["documents"].tolist() == [100, 200]
    assert buckets["cutoff"].iloc[0] == pytest.approx(composite_scores(docs, "0.7*informative+0.3*partial")[top].min())
    for bad, message in (("0.7*informative+", "cannot read an empty term"),
                         ("0.7*informative+0.3*nope", "no column 'nope' (score spec '0.7*informative+0.3*nope')")):
        assert main(argv[:-3] + ["--score", bad]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_read_scores_names_a_missing_column_whatever_its_name(tmp_path):
    from mixplan.filtering.scores import read_scores

    path = tmp_path / "docs.csv"
    pd.DataFrame({"quality score": [1.0, 2.0, 3.0], "dclm": [0.1, "x", 0.3]}).to_csv(path, index=False)
    assert read_scores(path, "quality score")[0].tolist() == [1.0, 2.0, 3.0]  # a column, though no spec reads it
    for score in ("quality  score", "mean(dclm)", "fasttext"):  # no column, and (but the last) no spec either
        with pytest.raises(ValidationError, match=rf"docs.csv: no column '{re.escape(score)}' \(--score\); columns "
                                                  r"are \['quality score', 'dclm'\]"):
            read_scores(path, score)
    with pytest.raises(ValidationError, match=r"docs.csv, --score: score spec '0.5\*dclm \+\* x': cannot read the "
                                              r"term"):
        read_scores(path, "0.5*dclm +* x")  # meant as a composite: what cannot be read is said
    good = tmp_path / "good.csv"
    pd.DataFrame({"q": [3.0, 1.0, 2.0]}).to_csv(good, index=False)
    assert read_scores(good, "1*q")[0].tolist() == [3.0, 1.0, 2.0]  # one column at weight 1 is that column
    with pytest.raises(ValidationError, match=r"docs.csv: row 2, column 'dclm': 'x' is not a finite number; every "
                                              r"document needs a numeric score"):
        read_scores(path, "dclm")


def test_cli_documents_need_ratings_runs(tmp_path, capsys):
    assert main(["filter", "--pools", "p.toml", "--documents", "d.csv", "--budget", "1e8"]) == 2
    assert "--documents goes with ratings runs" in capsys.readouterr().err
    runs, _ = rated_corpus(0)
    runs.to_csv(tmp_path / "runs.csv", index=False)
    assert main(["filter", "--runs", str(tmp_path / "runs.csv")]) == 2
    assert "--runs needs --target COL" in capsys.readouterr().err
