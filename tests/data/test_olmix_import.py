"""olmix's own study files (tests/fixtures/olmix, an excerpt of allenai/olmix: see its README) through
``mixplan runs import --olmix ... --olmix-config``, ``design`` and ``plan``, with their meaning kept."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from mixplan.cli import main
from mixplan.data.olmix import manifest_from_config, manifest_toml, pool_name
from mixplan.data.pools import load_pools
from mixplan.exceptions import ValidationError

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "olmix"


def _run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture()
def imported(tmp_path, capsys):
    code, _, err = _run(capsys, "runs", "import", "--olmix", FIX / "ratios.csv", "--metrics", FIX / "metrics.csv",
                        "--olmix-config", FIX / "fit.yaml", "--pools-out", tmp_path / "pools.toml",
                        "--out", tmp_path / "runs.csv")
    assert code == 0, err
    return tmp_path


def test_runs_keep_olmix_weights_and_metrics(imported):
    runs = pd.read_csv(imported / "runs.csv").set_index("run_id")
    ratios = pd.read_csv(FIX / "ratios.csv").set_index("name")
    metrics = pd.read_csv(FIX / "metrics.csv").set_index("name")
    domains = [c for c in ratios.columns if c not in {"Unnamed: 0", "run", "index"}]
    assert len(runs) == 20 and len(domains) == 64
    w = runs[["w_" + pool_name(d) for d in domains]]
    assert np.allclose(w.sum(axis=1), 1.0, atol=1e-9)
    assert np.allclose(w.loc[ratios.index].to_numpy(), ratios[domains].to_numpy(), rtol=1e-9, atol=0)
    assert np.allclose(runs.loc[metrics.index, "hellaswag:rc::olmes"], metrics["hellaswag:rc::olmes"], rtol=1e-9)


def test_manifest_hierarchy_and_priors_match_the_config(imported):
    config = yaml.safe_load((FIX / "fit.yaml").read_text())
    pools = load_pools(imported / "pools.toml")
    sizes, counts = config["priors"]["relative_sizes"], config["priors"]["token_counts"]
    assert sorted(pools.names) == sorted(pool_name(d) for d in counts)
    groups = {g.name: set(g.members) for g in pools.groups}
    # olmix's source:topic names spell the tree: dclm, s2pdf, stack-edu are groups; arxiv, wikipedia leaves
    assert set(groups) == {"dclm", "s2pdf", "stack-edu"}
    for g, members in groups.items():
        assert members == {pool_name(d) for d in counts if d.startswith(g + ":")}
    for d, t in counts.items():
        p = pools.by_name(pool_name(d))
        assert p.tokens == t and p.max_epochs == config["constraints"]["repetition_factor"]
        assert p.parent == (d.split(":")[0] if ":" in d else "")
    # the prior of every leaf is olmix's relative size (normalised): the hierarchy does not change it
    rel = np.array([sizes[d] for d in counts])
    prior = dict(zip(pools.names, pools.prior))
    assert np.allclose([prior[pool_name(d)] for d in counts], rel / rel.sum(), rtol=1e-9)


def test_design_and_plan_run_on_the_imported_study(imported, capsys):
    code, _, err = _run(capsys, "design", "--pools", imported / "pools.toml", "--n", 8, "--out", imported / "design")
    assert code == 0, err
    mix = pd.read_csv(imported / "design" / "mixtures.csv")
    assert len(mix) == 8 and np.allclose(mix.filter(like="w_").sum(axis=1), 1.0)
    code, out, err = _run(capsys, "plan", "--runs", imported / "runs.csv", "--pools", imported / "pools.toml",
                          "--target", "hellaswag:rc::olmes", "--model", "ridge", "--pin", "dclm=0.4",
                          "--out", imported / "plan", "--json")
    assert code == 0, err
    w = json.loads(out)["recommended"]
    assert sum(w.values()) == pytest.approx(1.0, abs=1e-9)
    assert sum(v for k, v in w.items() if k.startswith("dclm_")) == pytest.approx(0.4, abs=1e-6)


def test_generate_config_tree_becomes_parent_groups(tmp_path):
    config = yaml.safe_load((FIX / "generate.yaml").read_text())
    pools, info = manifest_from_config(config, "generate.yaml")
    assert info["domains"]["dclm:software_development"] == "dclm_software_development"
    assert [k for k, v in pools.items() if "tokens" not in v] == ["dclm"]
    assert {k for k, v in pools.items() if v.get("parent") == "dclm"} == {
        "dclm_science_math_and_technology", "dclm_software_development", "dclm_education_and_jobs"}
    (tmp_path / "pools.toml").write_text(manifest_toml(pools))
    loaded = load_pools(tmp_path / "pools.toml")
    sizes = config["priors"]["relative_sizes"]
    prior = dict(zip(loaded.names, loaded.prior))
    assert all(prior[pool_name(d)] == pytest.approx(s / sum(sizes.values()), rel=1e-9) for d, s in sizes.items())
    # olmix's generator takes every source's weight (example_2.yaml) as the source-level distribution
    for s, w in zip(config["data"]["sources"], (0.7, 0.01, 0.29)):
        s["weight"] = w
    pools, _ = manifest_from_config(config, "generate.yaml")
    (tmp_path / "w.toml").write_text(manifest_toml(pools))
    loaded = load_pools(tmp_path / "w.toml")
    prior = dict(zip(loaded.names, loaded.prior))
    assert prior["wikipedia"] == pytest.approx(0.01) and prior["arxiv"] == pytest.approx(0.29)
    assert sum(v for k, v in prior.items() if k.startswith("dclm_")) == pytest.approx(0.7)


@pytest.mark.parametrize("edit, message", [
    (lambda c: c["priors"]["token_counts"].pop("arxiv"), r"generate.yaml: 'priors.token_counts' has no entry for "
                                                          r"domain 'arxiv' \(1 missing\)"),
    (lambda c: c["priors"]["token_counts"].update(x=-1), r"'priors.token_counts', domain 'x': -1 is not a finite"),
    (lambda c: c["data"]["sources"].append({"name": "dclm_education_and_jobs", "paths": []}),
     r"'dclm:education_and_jobs' and 'dclm_education_and_jobs' both become pool 'dclm_education_and_jobs'"),
])
def test_errors_name_file_and_field(edit, message):
    config = yaml.safe_load((FIX / "generate.yaml").read_text())
    edit(config)
    with pytest.raises(ValidationError, match=message) as info:
        manifest_from_config(config, "generate.yaml")
    assert "\n" not in str(info.value)
