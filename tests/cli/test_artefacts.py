"""Every saved artefact mixplan reads back (a model directory, a law's, a D-CPT's and a filter's FIT.json, an OT
study, a plan's plan.json, a filter plan's filter.json, a saved featurizer), damaged in the ways files get damaged
(binary bytes, cut short, another JSON shape, a key removed, a string where a number belongs, a .npz that is not a
zip): the command reading it says so in one line naming the file, exit 2, no traceback (issue 23)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from artefacts import REPO, make_artefacts, quiet
from mixplan.cli import main
from mixplan.exceptions import ValidationError


@pytest.fixture(scope="module")
def made(tmp_path_factory) -> Path:
    """One of every artefact, written once for the module by the commands that write them."""
    return make_artefacts(tmp_path_factory.mktemp("artefacts"))


# -- the damage --------------------------------------------------------------------------------------------------

def binary(p: Path) -> None:
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe\xfa" * 64)


def truncated(p: Path) -> None:
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def edit(change):
    """Damage by editing the JSON document: ``change(doc)`` returns the new document (or edits it in place)."""
    def damage(p: Path) -> None:
        doc = json.loads(p.read_text())
        new = change(doc)
        p.write_text(json.dumps(doc if new is None else new))
    return damage


def drop_column(col: str):
    def damage(p: Path) -> None:
        pd.read_csv(p).drop(columns=[col]).to_csv(p, index=False)
    return damage


def npz_without(name: str):
    def damage(p: Path) -> None:
        with np.load(p) as z:
            arrays = {k: z[k] for k in z.files if k != name}
        with open(p, "wb") as fh:  # np.savez would add ".npz" to a name without it
            np.savez(fh, **arrays)
    return damage


def _set(doc, path: str, value):
    *keys, last = path.split(".")
    for k in keys:
        doc = doc[int(k) if isinstance(doc, list) else k]
    if value is KeyError:
        del doc[last]
    else:
        doc[int(last) if isinstance(doc, list) else last] = value


def key(path: str, value=KeyError):
    """Set (or, by default, remove) the key at a dotted path such as ``targets.0.cv_oof``."""
    return edit(lambda doc: _set(doc, path, value))


# -- the commands that read each artefact back -------------------------------------------------------------------

MODEL = ["predict", "{dir}/{folder}", str(REPO / "proxies" / "demo" / "runs.csv"), "--out", "{tmp}/pred.csv"]
LAW = ["budget", "--flops", "1e22", "--law", "{dir}/law.json"]
CPT = ["cpt", "plan", "{dir}/cpt.json", "--tokens", "2e6", "--max-general-rise", "0.03", "--relative"]
FILTER = ["filter", "--pools", str(REPO / "pools" / "demo_buckets.toml"), "--fit", "{dir}/filter/FIT.json",
          "--budget", "1e6,1e7"]
OT = ["ot", "predict", "{dir}/ot", "{dir}/ot_runs.csv", "--tokens", "4e6", "--out", "{tmp}/ot_pred.csv"]
REPORT = ["report", "{dir}/plan", "--out", "{tmp}/report.html"]
EXPORT = ["export", "{dir}/plan", "--format", "json", "--pools", str(REPO / "pools" / "demo.toml"), "--out",
          "{tmp}/mix.json"]
FILTER_REPORT = ["report", "{dir}/filter", "--out", "{tmp}/report.html"]

# (artefact folder in the module's fixture, damaged file in it, damage, command reading it)
CASES = {
    # a model directory (mixplan fit / plan --out): meta.json, train_runs.csv and the regressors' files
    "meta-binary": ("plan/model", "meta.json", binary, MODEL),
    "meta-truncated": ("plan/model", "meta.json", truncated, MODEL),
    "meta-list": ("plan/model", "meta.json", edit(lambda doc: [doc]), MODEL),
    "meta-no-pools": ("plan/model", "meta.json", key("pools"), MODEL),
    "meta-no-targets": ("plan/model", "meta.json", key("targets"), MODEL),
    "meta-targets-string": ("plan/model", "meta.json", key("targets", "ridge"), MODEL),
    "meta-oof-string": ("plan/model", "meta.json", key("targets.0.cv_oof", "x"), MODEL),
    "meta-radius-string": ("plan/model", "meta.json", key("coverage_radius", "wide"), MODEL),
    "meta-cv-missing": ("plan/model", "meta.json", key("targets.0.cv.n_splits"), MODEL),
    "train-runs-no-target": ("plan/model", "train_runs.csv", drop_column("bpb_reviews"), MODEL),
    "train-runs-no-weight": ("plan/model", "train_runs.csv", drop_column("w_wiki"), MODEL),
    "train-runs-binary": ("plan/model", "train_runs.csv", binary, MODEL),
    "ridge-truncated": ("plan/model", "target0/ridge.json", truncated, MODEL),
    "ridge-binary": ("plan/model", "target0/ridge.json", binary, MODEL),
    "ridge-coef-string": ("plan/model", "target0/ridge.json", key("coef", "x"), MODEL),
    "ridge-no-alpha": ("plan/model", "target0/ridge.json", key("alpha"), MODEL),
    "lightgbm-garbage": ("lightgbm", "target0/model.txt",
                         lambda p: p.write_text("tree\nversion=v4\nnum_class=one\nnot a model\n"), MODEL),
    "lightgbm-truncated": ("lightgbm", "target0/model.txt", truncated, MODEL),
    "gp-theta-string": ("gp", "target0/gp.json", key("theta", "x"), MODEL),
    "gp-no-F": ("gp", "target0/gp.json", key("F"), MODEL),
    # a fitted law (laws fit --out) read by budget --law
    "law-binary": (".", "law.json", binary, LAW),
    "law-truncated": (".", "law.json", truncated, LAW),
    "law-list": (".", "law.json", edit(lambda doc: [doc]), LAW),
    "law-params-string": (".", "law.json", key("params", "A=1"), LAW),
    "law-params-list": (".", "law.json", key("params", [1, 2, 3]), LAW),
    "law-no-B": (".", "law.json", key("params.B"), LAW),
    "law-B-string": (".", "law.json", key("params.B", "big"), LAW),
    "law-bootstrap-string": (".", "law.json", key("bootstrap", "x"), LAW),
    "law-bootstrap-ragged": (".", "law.json", key("bootstrap", [[1, 2], [3]]), LAW),
    "law-level-string": (".", "law.json", key("level", "high"), LAW),
    "law-alpha-zero": (".", "law.json", key("params.alpha", 0), LAW),  # decodes, then divides by zero
    # a D-CPT fit (cpt fit --out) read by cpt plan
    "cpt-binary": (".", "cpt.json", binary, CPT),
    "cpt-list": (".", "cpt.json", edit(lambda doc: [doc]), CPT),
    "cpt-no-general-E": (".", "cpt.json", key("general.params.E"), CPT),
    "cpt-general-E-string": (".", "cpt.json", key("general.params.E", "x"), CPT),
    "cpt-tokens-range-string": (".", "cpt.json", key("tokens_range", "x"), CPT),
    "cpt-no-domain": (".", "cpt.json", key("domain"), CPT),
    "cpt-epsilon-zero": (".", "cpt.json", key("domain.params.epsilon", 0), CPT),  # decodes, then divides by 0
    "cpt-runs-empty": (".", "cpt.json", edit(lambda doc: doc | {"runs": {k: [] for k in doc["runs"]}}), CPT),
    "cpt-runs-negative-size": (".", "cpt.json", key("runs.tokens.0", -1e308), CPT),
    "cpt-runs-nan": (".", "cpt.json", edit(lambda doc: doc | {"runs": doc["runs"] | {"ratio": [float("nan")] * len(
        doc["runs"]["ratio"])}}), CPT),
    "cpt-params-list": (".", "cpt.json", key("domain.params", [1, 2]), CPT),
    # a filter fit (filter --runs --out) read by filter --fit
    "filter-fit-binary": ("filter", "FIT.json", binary, FILTER),
    "filter-fit-list": ("filter", "FIT.json", edit(lambda doc: [doc]), FILTER),
    "filter-fit-buckets-string": ("filter", "FIT.json", key("buckets", "top10"), FILTER),
    "filter-fit-b-string": ("filter", "FIT.json", key("buckets.0.b", "x"), FILTER),
    "filter-fit-no-a": ("filter", "FIT.json", key("a"), FILTER),
    "filter-fit-intervals-string": ("filter", "FIT.json", key("buckets.0.intervals", "x"), FILTER),
    # an OT study (ot fit --out) read by ot predict
    "ot-model-binary": ("ot", "ot_model.json", binary, OT),
    "ot-model-list": ("ot", "ot_model.json", edit(lambda doc: [doc]), OT),
    "ot-model-no-stage1": ("ot", "ot_model.json", key("stage1"), OT),
    "ot-model-coef-string": ("ot", "ot_model.json", key("stage1.0.coef", "x"), OT),
    "ot-model-coef-short": ("ot", "ot_model.json", key("stage1.0.coef", [1.0]), OT),  # decodes, fails when used
    "ot-model-params-string": ("ot", "ot_model.json", key("params", "x"), OT),
    "ot-space-not-zip": ("ot", "ot_space.npz", binary, OT),
    "ot-space-truncated": ("ot", "ot_space.npz", truncated, OT),
    "ot-space-no-X": ("ot", "ot_space.npz", npz_without("X"), OT),
    # a plan's plan.json read by report and export
    "plan-binary-report": ("plan", "plan.json", binary, REPORT),
    "plan-list-report": ("plan", "plan.json", edit(lambda doc: []), REPORT),
    "plan-mixtures-string-report": ("plan", "plan.json", key("mixtures", "x"), REPORT),
    "plan-list-export": ("plan", "plan.json", edit(lambda doc: []), EXPORT),
    "plan-mixture-string-export": ("plan", "plan.json", edit(lambda doc: {"mixture": "x"}), EXPORT),
    "plan-mixtures-string-export": ("plan", "plan.json", key("mixtures", "x"), EXPORT),
    "plan-weights-string-export": ("plan", "plan.json", key("mixtures.recommended.weights", "x"), EXPORT),
    "plan-pools-number-export": ("plan", "plan.json", key("pools", 3), EXPORT),
    "plan-weight-missing-export": ("plan", "plan.json", key("mixtures.recommended.weights.wiki"), EXPORT),
    "plan-prediction-string-report": ("plan", "plan.json", key("mixtures.recommended.prediction", "x"), REPORT),
    "plan-ot-study-number-report": ("plan", "plan.json", key("ot_study", 7), REPORT),
    # a filter plan's filter.json read by report
    "filter-plan-list": ("filter", "filter.json", edit(lambda doc: []), FILTER_REPORT),
    "filter-plan-string": ("filter", "filter.json", edit(lambda doc: {"mixture": "x"}), FILTER_REPORT),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_damaged_artefact_is_one_line_naming_the_file(made, tmp_path, capsys, case):
    folder, name, damage, argv = CASES[case]
    d = tmp_path / "copy"
    shutil.copytree(made, d, ignore=shutil.ignore_patterns("*.html", "*_data"))
    src = d / folder
    damaged = src / name
    damage(damaged)
    capsys.readouterr()
    code = main([a.format(dir=d, folder=folder, tmp=tmp_path) for a in argv])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("mixplan: error: "), err
    assert "Traceback" not in err
    assert str(damaged) in lines[0] or (name == "plan.json" and str(src) in lines[0]), lines[0]


def test_undamaged_artefacts_are_read(made, tmp_path, capsys):
    """The cases' commands work on the artefacts as written: the damage is what fails them."""
    for argv, folder in [(MODEL, "plan/model"), (MODEL, "lightgbm"), (MODEL, "gp"), (LAW, "."), (CPT, "."),
                         (FILTER, "."), (OT, "."), (EXPORT, "."), (REPORT, "."), (FILTER_REPORT, ".")]:
        out = tmp_path / f"out{len(list(tmp_path.iterdir()))}"
        out.mkdir()
        code = quiet([a.format(dir=made, folder=folder, tmp=out) for a in argv])
        assert code == 0, (argv, capsys.readouterr().err)


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_lightgbm_rejecting_a_model_file_is_said_once(made, tmp_path, capfd, damage):
    """LightGBM prints "[LightGBM] [Fatal] ..." on file descriptor 2 itself (capsys cannot see it), and a model
    cut inside its trees made it abort the process; both are one line of mixplan's now."""
    shutil.copytree(made / "lightgbm", tmp_path / "m")
    model = tmp_path / "m" / "target0" / "model.txt"
    CASES[f"lightgbm-{damage}"][2](model)
    capfd.readouterr()
    code = main(MODEL[:1] + [str(tmp_path / "m")] + [a.format(tmp=tmp_path) for a in MODEL[2:]])
    err = capfd.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith(f"mixplan: error: {model}: not a mixplan lightgbm"), err


@pytest.mark.parametrize("change", [{"n_used": "many"}, {"idf_unseen": [1]}, {"params": {"n_components": "x"}}])
def test_a_damaged_saved_featurizer_names_its_file(made, tmp_path, change):
    from mixplan.transport.features import load_featurizer

    shutil.copytree(made / "ot", tmp_path / "ot")
    path = tmp_path / "ot" / "featurizer.json"
    path.write_text(json.dumps(json.loads(path.read_text()) | change))
    with pytest.raises(ValidationError) as info:
        load_featurizer(path)
    assert str(info.value).startswith(f"{path}: ") and "\n" not in str(info.value)


def test_a_vectors_file_that_is_no_array_is_said_so(tmp_path):
    """Not a saved artefact but read the same way: a .npz that is no zip is not called a pickle."""
    from mixplan.transport.features import load_vectors

    binary(tmp_path / "v.npz")
    with pytest.raises(ValidationError, match=r"v\.npz: not a valid \.npz file \(neither a NumPy array nor a zip"):
        load_vectors(tmp_path / "v.npz")


@pytest.mark.parametrize("argv", [["cpt", "fit"], ["cpt", "plan"], ["ot", "fit"], ["ot", "predict"], ["ot", "select"]])
def test_subcommands_describe_themselves(capsys, argv):
    with pytest.raises(SystemExit):
        main([*argv, "--help"])
    out = capsys.readouterr().out
    described = out.split("\n\n")[1]  # after the usage, before the arguments
    assert not described.startswith(("positional arguments", "options")) and len(described) > 60, out
    if argv[0] == "ot" and argv[1] != "fit":
        assert "a study written by 'mixplan ot fit --out DIR'" in out
