"""Quality buckets inside the mixture (mixplan.mixture.buckets) and the bucketed known-truth world
(mixplan.demo.synthetic.BucketedWorld): the threshold policy's weights, and that keeping every bucket
of a pool is exactly the whole pool."""

import numpy as np
import pytest

from mixplan import ValidationError
from mixplan.demo.synthetic import BucketedWorld, make_bucketed_world


@pytest.fixture(scope="module")
def world():
    return make_bucketed_world(5, n_bucketed=2, seed=0)


def test_the_layout_has_one_column_per_bucket(world):
    lay = world.layout()
    assert lay.names[:4] == ("pool0_top10", "pool0_top10_30", "pool0_top30_60", "pool0_top60_100")
    assert lay.names[8:] == ("pool2", "pool3", "pool4")
    assert lay.n_buckets.tolist() == [4, 4, 1, 1, 1]
    sizes = lay.sizes[:4] / world.tokens[0]
    assert sizes == pytest.approx([0.1, 0.2, 0.3, 0.4], rel=1e-6)
    pools = lay.bucket_pools()
    assert pools.names == list(lay.names) and pools.tokens == pytest.approx(lay.sizes)


def test_threshold_weights_are_proportional_to_bucket_sizes(world):
    lay = world.layout()
    V = np.random.default_rng(0).dirichlet(np.ones(5), 50)
    for keep in ([1, 1, 1, 1, 1], [2, 4, 1, 1, 1], [3, 1, 1, 1, 1]):
        W = lay.threshold(V, keep)
        assert W.sum(axis=1) == pytest.approx(1.0) and lay.pool_weights(W) == pytest.approx(V)
        for p in range(2):
            cols = np.flatnonzero(lay.parent == p)
            kept, dropped = cols[:keep[p]], cols[keep[p]:]
            assert np.all(W[:, dropped] == 0)
            # every kept bucket is read the same number of times: weights proportional to sizes
            epochs = W[:, kept] / lay.sizes[kept]
            assert np.ptp(epochs, axis=1) == pytest.approx(0.0, abs=1e-15)
        frac = lay.keep_fraction(W)
        assert frac[:, 0] == pytest.approx([0.1, 0.3, 0.6, 1.0][keep[0] - 1], rel=1e-6)
    assert lay.threshold(V[:1], {"pool1": 2})[0, 4:8].tolist()[2:] == [0.0, 0.0]  # a mapping; others kept whole
    with pytest.raises(ValidationError, match=r"keep-counts \[5, 1, 1, 1, 1\]: one per pool, from 1 to its number"):
        lay.threshold(V, [5, 1, 1, 1, 1])
    with pytest.raises(ValidationError, match="'web' is not a pool"):
        lay.threshold(V, {"web": 1})


@pytest.mark.parametrize("tokens", [1e8, 1e10])  # no repetition, and the small pools read many times
def test_keeping_every_bucket_of_equal_quality_is_the_whole_pool(world, tokens):
    """In the world: a pool's buckets read by the threshold policy at keep 100% with equal qualities is the
    whole (unbucketed) pool, at any budget, repeated or not."""
    flat = BucketedWorld(pools=world.pools, tokens=world.tokens, tops=((1.0,),) * 5, quality=((1.0,),) * 5,
                         value=world.value, exponent=world.exponent)
    equal = BucketedWorld(pools=world.pools, tokens=world.tokens, tops=world.tops,
                          quality=tuple((1.0,) * len(q) for q in world.quality), value=world.value,
                          exponent=world.exponent)
    V = np.random.default_rng(1).dirichlet(np.ones(5), 40)
    W = equal.layout().threshold(V, equal.layout().n_buckets)
    # equal up to rounding (measured 2e-11 relative where pools repeat: R* (1 - e^-x) in parts vs whole)
    assert equal.true_loss(W, tokens) == pytest.approx(flat.true_loss(V, tokens), rel=1e-9)
    # with the world's falling qualities, the top bucket alone beats the whole pool at a small budget ...
    lay = world.layout()
    v = np.array([[0.3, 0.2, 0.2, 0.15, 0.15]])
    top, whole = lay.threshold(v, [1, 1, 1, 1, 1]), lay.threshold(v, lay.n_buckets)
    if tokens == 1e8:
        assert world.true_loss(top, tokens)[0] < world.true_loss(whole, tokens)[0]


@pytest.mark.parametrize("tokens", [1e8, 1e10])
def test_the_keep_everything_plan_is_exactly_the_whole_pool_plan(world, tokens):
    """The joint plan's keep-fraction-100% column is the plan over whole pools, bit for bit: the same
    search over pool weights with the same seed gives the same pool weights and loss, every bucketed pool
    is kept at exactly 100%, and its buckets get weights proportional to their sizes."""
    from mixplan.mixture.buckets import plan_policies
    from mixplan.simplex import build_constraints, search

    flat = BucketedWorld(pools=world.pools, tokens=world.tokens, tops=((1.0,),) * 5, quality=((1.0,),) * 5,
                         value=world.value, exponent=world.exponent)
    equal = BucketedWorld(pools=world.pools, tokens=world.tokens, tops=world.tops,
                          quality=tuple((1.0,) * len(q) for q in world.quality), value=world.value,
                          exponent=world.exponent)
    lay = equal.layout()
    res = plan_policies(lambda W: equal.true_loss(W, tokens), lay, seed=3, n_candidates=1000)["whole pools"]
    whole = search(lambda V, fast: flat.true_loss(V, tokens), build_constraints(lay.pools), np.full(5, 0.2),
                   seed=3, n_candidates=1000)
    v = whole.weights if whole.score <= whole.best_candidate_score else whole.best_candidate
    assert res.keep_fraction.tolist() == [1.0] * 5 and res.keep.tolist() == lay.n_buckets.tolist()
    # the bucket world and the whole-pool world agree to 1e-9 (test above), so the searches agree to rounding
    assert res.pool_weights == pytest.approx(v, abs=1e-9)
    assert res.loss == pytest.approx(flat.true_loss(v[None, :], tokens)[0], rel=1e-9)
    assert res.weights == pytest.approx(lay.threshold(v, lay.n_buckets)[0], abs=1e-9)


def test_the_best_keep_fraction_grows_with_the_budget(world):
    """What issue 17 is about: at a small budget the best threshold keeps less of a pool than at a large
    one, where the top bucket alone would be repeated many times."""
    lay = world.layout()
    v = np.array([[0.4, 0.15, 0.15, 0.15, 0.15]])
    best = {}
    for tokens in (1e8, 1e11):
        losses = [world.true_loss(lay.threshold(v, [k, 4, 1, 1, 1]), tokens)[0] for k in range(1, 5)]
        best[tokens] = int(np.argmin(losses)) + 1
    assert best[1e8] < best[1e11], best


def test_policies_under_the_known_truth(world):
    """With the truth as the loss: at a small budget the threshold policy keeps the top of the bucketed
    pools; at a large one it keeps more; the quality-weighted policy is never worse than the threshold
    policy, which is never worse than whole pools."""
    from mixplan.mixture.buckets import plan_policies

    lay = world.layout()
    kept = {}
    for tokens in (1e8, 3e10):
        res = plan_policies(lambda W: world.true_loss(W, tokens), lay, seed=0, n_candidates=2000)
        loss = {p: r.loss for p, r in res.items()}
        assert loss["quality-weighted"] <= loss["threshold"] + 1e-12 <= loss["whole pools"] + 2e-12, loss
        assert res["whole pools"].keep_fraction[:2].tolist() == [1.0, 1.0]
        kept[tokens] = res["threshold"].keep_fraction[:2]
        W = res["threshold"].weights
        assert lay.threshold(res["threshold"].pool_weights, res["threshold"].keep)[0] == pytest.approx(W)
    assert np.all(kept[1e8] <= kept[3e10]) and np.any(kept[1e8] < kept[3e10]), kept


def test_equal_quality_without_repetition_the_policies_agree(world):
    """Buckets of equal quality read less than once: which of them are kept does not matter, and the
    joint plan's policies all find the whole-pool plan's loss and pool weights."""
    from mixplan.mixture.buckets import plan_policies

    equal = BucketedWorld(pools=world.pools, tokens=world.tokens, tops=world.tops,
                          quality=tuple((1.0,) * len(q) for q in world.quality), value=world.value,
                          exponent=world.exponent)
    res = plan_policies(lambda W: equal.true_loss(W, 1e6), equal.layout(), seed=0, n_candidates=2000)
    loss = {p: r.loss for p, r in res.items()}
    assert max(loss.values()) - min(loss.values()) < 1e-6, loss  # the search's precision (measured 7e-8)
    assert res["threshold"].pool_weights == pytest.approx(res["whole pools"].pool_weights, abs=0.02)


def test_the_joint_plan_with_a_fitted_at_scale_model(world):
    """Proxy runs with the buckets as pools (1e8 tokens, and 32 of them at 4e8), the at-scale model with the
    buckets grouped by pool: at 1e9 the joint plan's true regret is below the whole-pool plan's and the
    fitted law finds the buckets' qualities."""
    import warnings

    from mixplan import MixplanWarning, design_swarm, fit_model, parse_objective
    from mixplan.data.runs import validate_runs
    from mixplan.mixture.buckets import plan_policies
    from mixplan.mixture.scale import fit_at_scale

    lay = world.layout()
    pools = lay.bucket_pools()
    design = design_swarm(pools, 96, seed=0, tokens=1e8).frame
    W = design[[f"w_{p}" for p in lay.names]].to_numpy()
    y0, y1 = world.measure(W, 1e8, seed=0), world.measure(W[:32], 4e8, seed=1)
    runs = validate_runs(design.assign(tokens=1e8, loss=y0), pools, source="proxy")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixplanWarning)
        model = fit_model(runs, parse_objective("loss", runs), "ridge", seed=0)
        scale = fit_at_scale(model, np.vstack([W, W[:32]]), np.r_[np.full(96, 1e8), np.full(32, 4e8)], np.r_[y0, y1],
                             lay.sizes, seed=0, n_bootstrap=10, groups=lay.groups)
    assert scale.chosen == "effective-data law"
    q = [scale.fit.params[f"q_{n}"] for n in lay.names[1:4]]
    assert q == pytest.approx(world.quality[0][1:], abs=0.1), q
    res = plan_policies(lambda X: scale.predict_mean(X, 1e9), lay, seed=0, n_candidates=1000)
    truth = plan_policies(lambda X: world.true_loss(X, 1e9), lay, seed=0, n_candidates=1000)
    best = min(r.loss for r in truth.values())
    regret = {p: float(world.true_loss(r.weights[None, :], 1e9)[0]) - best for p, r in res.items()}
    assert regret["quality-weighted"] < 0.5 * regret["whole pools"], regret


def _manifest(world, path, buckets=True, qqt=None):
    """Write the world's pools as a manifest: bucketed by top fractions (or whole, ``buckets=False``);
    with ``qqt`` = (b values, tau values) per bucket, as [[pools.NAME.bucket]] tables carrying them."""
    toml = ""
    for name, U, tops in zip(world.pools, world.tokens, world.tops):
        toml += f"[pools.{name}]\ntokens = {float(U)!r}\n"
        if buckets and len(tops) > 1:
            toml += 'score = "quality"\n' + (f"buckets = {list(tops)}\n" if qqt is None else "".join(
                f"[[pools.{name}.bucket]]\ntop = {t}\nb = {b}\ntau = {tau}\n" for t, b, tau in zip(tops, *qqt)))
    path.write_text(toml)
    return path


def test_plan_cli_plans_bucketed_pools_with_the_policies_side_by_side(world, tmp_path, capsys):
    """A manifest whose first two pools are cut into buckets and runs whose weight columns are the
    buckets: `plan` searches the buckets, shows the threshold and whole-pool plans beside the
    recommended one, and prices repetition at the target budget per bucket."""
    import json
    import warnings

    from mixplan import MixplanWarning, design_swarm
    from mixplan.cli import main

    lay = world.layout()
    design = design_swarm(lay.bucket_pools(), 96, seed=0, tokens=1e8).frame
    W = design[[f"w_{p}" for p in lay.names]].to_numpy()
    design.assign(tokens=1e8, loss=world.measure(W, 1e8, seed=0)).to_csv(tmp_path / "runs.csv", index=False)
    design.iloc[:32].assign(tokens=4e8, loss=world.measure(W[:32], 4e8, seed=1),
                            run_id=design["run_id"].iloc[:32] + "-4x").to_csv(tmp_path / "big.csv", index=False)

    def plan(manifest):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", MixplanWarning)
            return main(["plan", "--runs", str(tmp_path / "runs.csv"), "--pools", str(manifest), "--target", "loss",
                         "--model", "ridge", "--tokens", "1e9", "--scale-runs", str(tmp_path / "big.csv"),
                         "--candidates", "1000", "--json"])

    code = plan(_manifest(world, tmp_path / "pools.toml"))
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert list(doc["recommended"]) == list(lay.names)
    assert {"threshold", "whole_pools"} <= set(doc["mixtures"])
    b = doc["buckets"]
    assert b["pools"] == world.pools and set(b["keep"]["threshold"]) == set(world.pools)
    assert b["mixtures"]["whole_pools"]["keep_fraction"]["pool0"] == pytest.approx(1.0)
    # the threshold plan keeps part of the small valuable pools at 10x the proxy budget (truth: top 30%)
    assert b["mixtures"]["threshold"]["keep_fraction"]["pool0"] < 1.0
    assert doc["scale"]["law"]["params"]["q_pool0_top10_30"] == pytest.approx(world.quality[0][1], abs=0.1)
    assert b["plan_then_filter"].startswith("not shown: pool 'pool0': its buckets need b and tau")
    # per bucket at the budget: tokens drawn, epochs and effective tokens (at the plan's R*), and the
    # last bucket each pool reads
    from mixplan.laws import effective_data

    rec = b["mixtures"]["recommended"]
    assert b["r_star"] == doc["scale"]["r_star"] and b["r_star"] > 0
    for c, name in enumerate(lay.names):
        entry, w = rec["buckets"][name], doc["recommended"][name]
        assert entry["tokens"] == pytest.approx(w * 1e9, rel=1e-12)
        assert entry["epochs"] == pytest.approx(w * 1e9 / lay.sizes[c], rel=1e-12)
        assert entry["effective_tokens"] == pytest.approx(
            float(effective_data(w * 1e9, min(w * 1e9, lay.sizes[c]), b["r_star"])), rel=1e-12)
        assert entry["effective_tokens"] <= entry["tokens"] * (1 + 1e-12)
    thr = b["mixtures"]["threshold"]
    k = b["keep"]["threshold"]["pool0"]
    assert thr["last_bucket"]["pool0"]["top"] == pytest.approx(world.tops[0][k - 1])
    assert "pool2" not in thr["last_bucket"]  # a whole pool has no bucket
    # with the buckets' QQT b and tau in the manifest, "plan, then filter each pool on its own" is shown too:
    # the whole-pool plan's weights, each pool's keep-count from mixplan filter's law at its share of the budget
    from mixplan.filtering.planner import plan_filter

    qqt = _manifest(world, tmp_path / "qqt.toml", qqt=((-0.16, -0.12, -0.08, -0.05), (3.0, 6.0, 12.0, 24.0)))
    assert plan(qqt) == 0
    doc = json.loads(capsys.readouterr().out)
    chained = doc["buckets"]["mixtures"]["plan_then_filter"]
    whole = doc["buckets"]["mixtures"]["whole_pools"]
    assert chained["pool_weights"] == pytest.approx(whole["pool_weights"], abs=1e-9)
    from mixplan.data.pools import load_pools

    spec = load_pools(qqt).by_name("pool0").buckets
    k = int(plan_filter(spec, [whole["pool_weights"]["pool0"] * 1e9]).result.best[0])
    assert chained["keep_fraction"]["pool0"] == pytest.approx(spec.keep_fraction(k), rel=1e-6)


def _is_threshold_shaped(lay, w, tol=2e-3):
    """Every bucketed pool read as its top buckets in proportion to their sizes (weights rounded)."""
    for p in np.flatnonzero(lay.n_buckets > 1):
        cols = np.flatnonzero(lay.parent == p)
        x = w[cols]
        k = int((x > 0).sum())
        if k == 0:
            continue
        if np.any(x[:k] <= 0) or np.any(x[k:] > 0):
            return False
        share = lay.sizes[cols[:k]] / lay.sizes[cols[:k]].sum()
        if np.max(np.abs(x[:k] / x[:k].sum() - share)) > tol / max(x[:k].sum(), 1e-9):
            return False
    return True


def test_design_over_buckets_mixes_threshold_shaped_and_free_runs(world, tmp_path, capsys):
    import pandas as pd

    from mixplan import design_swarm
    from mixplan.cli import main

    lay = world.layout()
    d = design_swarm(lay.bucket_pools(), 60, seed=0, tokens=1e8, buckets=lay)
    W = d.frame[[f"w_{n}" for n in lay.names]].to_numpy()
    shaped = np.mean([_is_threshold_shaped(lay, w) for w in W])
    assert 0.3 <= shaped <= 0.8, shaped  # half by construction (free draws are almost never shaped)
    assert d.settings["threshold_share"] == 0.5
    assert main(["design", "--pools", str(_manifest(world, tmp_path / "pools.toml")), "--n", "20", "--buckets",
                 "--tokens", "1e8",
                 "--out", str(tmp_path / "d")]) == 0
    frame = pd.read_csv(tmp_path / "d" / "mixtures.csv")
    assert [c for c in frame.columns if c.startswith("w_")] == [f"w_{n}" for n in lay.names]
    capsys.readouterr()
    assert main(["design", "--pools", str(_manifest(world, tmp_path / "whole.toml", buckets=False)), "--n", "5",
                 "--buckets", "--out",
                 str(tmp_path / "e")]) == 2
    assert "no pool of" in capsys.readouterr().err


def test_a_bound_on_a_bucketed_pool_is_refused_not_ignored(world):
    from dataclasses import replace

    from mixplan.mixture.buckets import BucketLayout, plan_policies

    pools = world.pool_set()
    bounded = replace(pools, pools=(replace(pools[0], max_weight=0.2),) + tuple(pools)[1:])
    with pytest.raises(ValidationError, match="pool 'pool0' is cut into buckets and has a min_weight/max_weight"):
        plan_policies(lambda W: world.true_loss(W, 1e8), BucketLayout.from_pools(bounded))


def test_many_keep_count_combinations_are_searched_by_coordinate_descent(world, monkeypatch):
    """Beyond MAX_KEEP_COMBINATIONS the threshold policy searches one pool's keep-count at a time; on this
    world (16 combinations, the limit lowered to 8) it finds the exhaustive search's keep-counts and loss."""
    from mixplan.mixture import buckets

    lay = world.layout()

    def loss(W):
        return world.true_loss(W, 1e9)

    full = buckets.plan_policies(loss, lay, seed=0, n_candidates=1000)["threshold"]
    monkeypatch.setattr(buckets, "MAX_KEEP_COMBINATIONS", 8)
    coord = buckets.plan_policies(loss, lay, seed=0, n_candidates=1000)
    assert "every combination of keep-counts (16)" == full.search
    assert coord["threshold"].search.startswith("coordinate descent over keep-counts (16 combinations > 8)")
    assert coord["threshold"].keep.tolist() == full.keep.tolist()
    assert coord["threshold"].loss == pytest.approx(full.loss, abs=1e-6)
    assert coord["quality-weighted"].loss <= coord["threshold"].loss + 1e-12 <= coord["whole pools"].loss + 2e-12


def test_plan_uses_each_buckets_r_star_from_the_manifest(tmp_path, capsys):
    """A manifest that gives each bucket its R* (the best bucket loses value sooner when repeated): the
    at-scale law keeps them (plan.json: scale.r_star_pools), and each bucket's effective tokens at the
    budget are computed with its own R*."""
    import json
    import warnings

    from mixplan import MixplanWarning, design_swarm
    from mixplan.cli import main
    from mixplan.laws import effective_data

    world = make_bucketed_world(4, n_bucketed=1, seed=3, rank_r_star=(4.0, 8.0, 16.0, 32.0))
    lay = world.layout()
    r = world.column_r_star
    toml = ""
    for name, U, tops in zip(world.pools, world.tokens, world.tops):
        toml += f"[pools.{name}]\ntokens = {float(U)!r}\n"
        if len(tops) > 1:
            toml += 'score = "quality"\n' + "".join(f"[[pools.{name}.bucket]]\ntop = {t}\nr_star = {rs}\n"
                                                    for t, rs in zip(tops, r[:4]))
    (tmp_path / "pools.toml").write_text(toml)
    design = design_swarm(lay.bucket_pools(), 64, seed=0, tokens=1e8).frame
    W = design[[f"w_{p}" for p in lay.names]].to_numpy()
    design.assign(tokens=1e8, loss=world.measure(W, 1e8, seed=0)).to_csv(tmp_path / "runs.csv", index=False)
    design.iloc[:24].assign(tokens=1e9, loss=world.measure(W[:24], 1e9, seed=1),
                            run_id=design["run_id"].iloc[:24] + "-10x").to_csv(tmp_path / "big.csv", index=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MixplanWarning)
        code = main(["plan", "--runs", str(tmp_path / "runs.csv"), "--pools", str(tmp_path / "pools.toml"),
                     "--target", "loss", "--model", "ridge", "--tokens", "1e10", "--scale-runs",
                     str(tmp_path / "big.csv"), "--candidates", "1000", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    doc = json.loads(out)
    assert doc["scale"]["r_star_pools"] == [4.0, 8.0, 16.0, 32.0, None, None, None]
    b = doc["buckets"]
    assert b["r_star_own"] == {n: v for n, v in zip(lay.names[:4], (4.0, 8.0, 16.0, 32.0))}
    for c, name in enumerate(lay.names):
        d = b["mixtures"]["recommended"]["buckets"][name]["tokens"]
        own = r[c] if c < 4 else b["r_star"]
        assert b["mixtures"]["recommended"]["buckets"][name]["effective_tokens"] == pytest.approx(
            float(effective_data(d, min(d, lay.sizes[c]), own)), rel=1e-12)
    # the text report lists the recommended mixture per bucket read, with the R* used
    from mixplan.mixture.plan import _bucket_detail

    text = _bucket_detail(b)
    assert f"R* = {b['r_star']:.4g} or a pool's own" in text
    read = [n for n in lay.names if b["mixtures"]["recommended"]["buckets"][n]["tokens"] > 0.5]
    assert [line.split()[0] for line in text.strip().splitlines()[2:]] == read


def test_without_refinement_each_policy_is_its_searchs_top_k_mean(world):
    """refine_rounds=0 (a loss mostly of trees, mixplan.mixture.plan.model_search_options): each policy keeps its
    search's top-k mean, not the single candidate with the lowest (noisiest) prediction."""
    from mixplan.mixture.buckets import plan_policies
    from mixplan.simplex import build_constraints, search

    lay = world.layout()

    def steps(W):  # a piecewise-constant loss, as a tree ensemble predicts
        return np.floor(world.true_loss(W, 1e8) * 200) / 200

    res = plan_policies(steps, lay, seed=0, n_candidates=1000, refine_rounds=0)
    starts = np.vstack([res["whole pools"].weights, res["threshold"].weights])
    mine = search(lambda W, fast: steps(W), build_constraints(lay.bucket_pools()), np.full(len(lay.names),
                  1.0 / len(lay.names)), seed=0, n_candidates=1000, extra=starts, refine_rounds=0)
    assert np.array_equal(res["quality-weighted"].weights, mine.topk_weights)
    assert mine.best_candidate_score < mine.score  # refined searches would keep the candidate instead
