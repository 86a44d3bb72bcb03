"""Hierarchical pools (issue 25, item 1): the manifest's groups, their constraints, hierarchical design, plan."""

import json

import numpy as np
import pandas as pd
import pytest

from mixplan import InfeasibleError, ValidationError, load_pools
from mixplan.cli import main
from mixplan.mixture.design import design_swarm
from mixplan.simplex import build_constraints, sample_mixtures, search

PARENT_FORM = """
[pools.web]
max_weight = 0.7
prior = 0.6
[pools.web_science]
tokens = 4e9
parent = "web"
[pools.web_news]
tokens = 2e9
parent = "web"
[pools.code]
tokens = 3e9
[pools.lit]
min_weight = 0.1
tokens = 1e9
[pools.lit_books]
tokens = 1e9
parent = "lit"
"""

NESTED_FORM = """
[pools.web]
max_weight = 0.7
prior = 0.6
[pools.web.topics.science]
tokens = 4e9
[pools.web.topics.news]
tokens = 2e9
[pools.code]
tokens = 3e9
[pools.lit]
min_weight = 0.1
tokens = 1e9
[pools.lit.sources.books]
tokens = 1e9
"""


def write(tmp_path, text, name="pools.toml"):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_both_forms_mean_the_same(tmp_path):
    a = load_pools(write(tmp_path, PARENT_FORM, "a.toml"))
    b = load_pools(write(tmp_path, NESTED_FORM, "b.toml"))
    assert a.names == ["web_science", "web_news", "code", "lit_books"]  # the leaves are the columns
    assert sorted(a.names) == sorted(b.names)
    assert {g.name: g.members for g in a.groups} == {g.name: g.members for g in b.groups}
    web = a.group_by_name("web")
    assert web.tokens == 6e9 and web.max_weight == 0.7 and a.by_name("web_news").parent == "web"
    # web's share is its prior 0.6 (code 0.3, lit 0.1 by tokens), split 2:1 by tokens inside
    assert np.allclose(a.prior, [0.4, 0.2, 0.3, 0.1])
    assert np.allclose(a.prior[[a.names.index(n) for n in b.names]], b.prior)
    assert np.allclose(a.group_matrix() @ np.ones(4), [2, 1])


def test_flat_manifest_prior_unchanged(tmp_path):
    p = load_pools(write(tmp_path, "[pools.a]\ntokens = 3\nprior = 0.5\n[pools.b]\ntokens = 1\n"))
    assert p.groups == () and np.allclose(p.prior, [0.5 / 0.75, 0.25 / 0.75])
    # wrapping pools in a group without a prior of its own does not change their priors
    grouped = load_pools(write(tmp_path, "[pools.g]\n[pools.a]\ntokens = 1\nprior = 0.4\nparent = 'g'\n"
                                         "[pools.b]\ntokens = 1\nprior = 0.4\nparent = 'g'\n"
                                         "[pools.c]\ntokens = 2\nprior = 0.2\n", name="g.toml"))
    assert np.allclose(grouped.prior, [0.4, 0.4, 0.2])


@pytest.mark.parametrize("text, match", [
    ('[pools.a]\ntokens = 1\nparent = "nowhere"\n', r"pool 'a', field 'parent': 'nowhere' is not a pool"),
    ('[pools.g]\nparent = "h"\n[pools.h]\nparent = "g"\n[pools.a]\ntokens = 1\nparent = "g"\n',
     r"field 'parent': the parents form a cycle"),
    ('[pools.g]\ntokens = 5\n[pools.a]\ntokens = 1\nparent = "g"\n[pools.b]\ntokens = 2\nparent = "g"\n',
     r"pool 'g', field 'tokens': 5 disagrees with the sum of its 2 leaves' tokens 3"),
    ('[pools.g]\nmin_weight = 0.5\nmax_weight = 0.2\n[pools.a]\ntokens = 1\nparent = "g"\n',
     r"pool 'g', field 'min_weight': the group's floor 0.5 is above its cap max_weight 0.2"),
    ('[pools.g]\nmax_epochs = 2\n[pools.a]\ntokens = 1\nparent = "g"\n',
     r"pool 'g' is a group .*\['max_epochs'\] belong to its leaves"),
    ('[pools.g]\nmin_weight = 0.6\n[pools.a]\ntokens = 1\nparent = "g"\nmax_weight = 0.3\n[pools.b]\ntokens = 1\n',
     r"group 'g', field 'min_weight': the floor 0.6 is above the sum of its leaves' caps 0.3"),
    ('[pools.g]\n[pools.g.children.a]\ntokens = 1\nparent = "other"\n',
     r"pool 'g_a', field 'parent': 'other', but it is nested under 'g'"),
    # a mistyped field holding tables is the unknown field it is, not a pool of its own
    ('[pools.web]\ntokens = 1\n[pools.web.sorce.files]\npaths = ["a.jsonl"]\n', r"pool 'web'.*sorce"),
])
def test_manifest_errors_name_file_pool_field(tmp_path, text, match):
    path = write(tmp_path, text)
    with pytest.raises(ValidationError, match=match) as err:
        load_pools(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_group_constraints_pin_and_projection(tmp_path):
    pools = load_pools(write(tmp_path, PARENT_FORM))
    c = build_constraints(pools, pins={"web": 0.6})
    assert c.groups_dict()["web"]["lower"] == c.groups_dict()["web"]["upper"] == 0.6
    assert c.groups_dict()["lit"]["lower"] == 0.1
    rng = np.random.default_rng(0)
    W = sample_mixtures(300, pools.prior, c, rng)
    assert c.check(W).all()
    assert np.allclose(c.group_totals(W)[:, 0], 0.6)
    # a feasible row is its own image; an infeasible one becomes feasible
    assert np.allclose(c.project(W[:5]), W[:5])
    V = rng.random((50, 4))
    assert c.check(c.project(V)).all()
    # the best mixture under a pinned group total: web 0.6 split as the score wants inside it
    target = np.array([0.1, 0.1, 0.4, 0.4])
    r = search(lambda X, fast: ((X - target) ** 2).sum(axis=1), c, pools.prior, n_candidates=2000)
    assert np.allclose(r.weights, [0.3, 0.3, 0.2, 0.2], atol=2e-3)
    with pytest.raises(InfeasibleError, match="group 'web' is pinned at 0.8 outside its bounds"):
        build_constraints(pools, pins={"web": 0.8})
    with pytest.raises(ValidationError, match="pinned pool 'nope'"):
        build_constraints(pools, pins={"nope": 0.1})


def test_nested_groups_bounds_hold(tmp_path):
    text = """
[pools.src]
max_weight = 0.5
[pools.topic]
parent = "src"
min_weight = 0.2
[pools.a]
tokens = 1
parent = "topic"
[pools.b]
tokens = 1
parent = "topic"
[pools.c]
tokens = 1
parent = "src"
[pools.d]
tokens = 5
"""
    pools = load_pools(write(tmp_path, text))
    c = build_constraints(pools)
    W = c.project(np.random.default_rng(1).random((200, 4)) * np.array([1, 1, 1, 0.01]))
    S = c.group_totals(W)
    assert c.check(W).all() and (S[:, 0] <= 0.5 + 1e-9).all() and (S[:, 1] >= 0.2 - 1e-9).all()


def test_hierarchical_design(tmp_path):
    pools = load_pools(write(tmp_path, PARENT_FORM))
    d = design_swarm(pools, 40, seed=3, required=["code", "lit"], group_strengths=(0.2, 0.5), strengths=(0.1, 0.3))
    W = d.frame[[f"w_{n}" for n in pools.names]].to_numpy()
    c = build_constraints(pools)
    assert np.allclose(W.sum(axis=1), 1) and c.check(W, group_tol=1e-3).all()
    assert (W[:, pools.names.index("code")] > 0).all() and (W[:, pools.names.index("lit_books")] > 0).all()
    assert ((W > 0) & (W < 2e-4)).sum() == 0  # zeroing below the minimum
    tv = 0.5 * np.abs(W[:, None, :] - W[None, :, :]).sum(axis=2)
    assert tv[np.triu_indices(40, 1)].min() >= 0.01
    # existing runs are kept at a distance too
    d2 = design_swarm(pools, 10, seed=4, existing=W)
    W2 = d2.frame[[f"w_{n}" for n in pools.names]].to_numpy()
    assert (0.5 * np.abs(W2[:, None, :] - W[None, :, :]).sum(axis=2)).min() >= 0.01
    assert d.settings["groups"] == ["web", "lit"] and d.settings["required"] == ["code", "lit"]
    with pytest.raises(ValidationError, match="required pool 'nope'"):
        design_swarm(pools, 5, required=["nope"])


def test_cli_design_and_plan_pin_a_group(tmp_path, capsys):
    manifest = write(tmp_path, PARENT_FORM)
    assert main(["design", "--pools", str(manifest), "--n", "30", "--out", str(tmp_path / "d"),
                 "--group-strengths", "0.3:2", "--require", "lit"]) == 0
    capsys.readouterr()
    frame = pd.read_csv(tmp_path / "d" / "mixtures.csv")
    W = frame.filter(like="w_").to_numpy()
    frame["loss"] = 3 + 5 * ((W - np.array([0.3, 0.1, 0.4, 0.2])) ** 2).sum(axis=1)
    frame.to_csv(tmp_path / "runs.csv", index=False)
    assert main(["plan", "--pools", str(manifest), "--runs", str(tmp_path / "runs.csv"), "--target", "loss",
                 "--pin", "web=0.6", "--candidates", "1000", "--model", "gp", "--out", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    assert "group totals (sums of their leaves):" in out and "pinned 0.6" in out
    plan = json.loads((tmp_path / "p" / "plan.json").read_text())
    h = plan["hierarchy"]
    assert h["totals"]["recommended"]["web"] == pytest.approx(0.6, abs=1e-6)
    assert h["totals"]["recommended"]["lit"] >= 0.1 - 1e-6 and h["active"]["web"] == "pinned"
    assert sum(plan["recommended"].values()) == pytest.approx(1.0)


def test_scan_measures_a_nested_manifest(tmp_path, capsys):
    for name in ("a", "b"):
        (tmp_path / f"{name}.jsonl").write_text("".join(json.dumps({"text": f"doc {i} of {name} " * (i + 1)}) + "\n"
                                                        for i in range(5)))
    manifest = write(tmp_path, f"""
[study]
token_unit = "bytes"
[pools.web]
max_weight = 0.8
[pools.web.topics.a.source]
type = "files"
paths = ["{tmp_path / 'a.jsonl'}"]
[pools.web.topics.b.source]
type = "files"
paths = ["{tmp_path / 'b.jsonl'}"]
[pools.c]
tokens = 10
""")
    assert main(["scan", str(manifest), "--out", str(tmp_path / "scanned.toml"), "--workers", "1"]) == 0
    capsys.readouterr()
    pools = load_pools(tmp_path / "scanned.toml")
    assert pools.names == ["web_a", "web_b", "c"] and pools.group_by_name("web").members == ("web_a", "web_b")
    assert pools.group_by_name("web").max_weight == 0.8 and pools.by_name("web_a").tokens > 0
