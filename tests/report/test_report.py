"""Reports (mixplan.report, plan --report, mixplan report): the demo plan's report opened in headless
Chromium - no console error, nothing fetched, every figure drawn with alt text, a screenshot that is not
blank - and the same bytes for the same inputs."""

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from mixplan.cli import main

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip("matplotlib", reason="reports need matplotlib: pip install -e '.[report]'")
PLAN_FIGURES = {"mixtures", "cv", "response", "optima", "budget_sweep"}


def _chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("headless Chromium not installed (Debian: apt-get install chromium; .ci/run installs it)")
    return path


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    """The demo plan at 16M bytes with repetition runs and a budget sweep, with its report."""
    out = tmp_path_factory.mktemp("report") / "plan"
    argv = ["plan", str(REPO / "examples" / "demo_plan.toml"), "--tokens", "16e6", "--repetition-runs",
            str(REPO / "proxies" / "demo" / "runs_4x.csv"), "--budget-range", "1e6:16e6", "--budget-steps", "4",
            "--model", "ridge", "--candidates", "3000", "--out", str(out), "--report"]
    assert main(argv) == 0
    return out


def test_the_plan_report_holds_every_plan_figure_and_its_data(demo_report, capsys):
    capsys.readouterr()
    page = (demo_report / "report.html").read_text()
    assert "<script" not in page  # nothing runs; nothing is fetched (the SVG namespaces are names, not links):
    assert not any(f'{attr}="http' in page or f"{attr}='http" in page for attr in ("src", "href")) and "url(http" not in page
    for fig in PLAN_FIGURES:
        assert f'<figure id="{fig}"' in page, fig
        data = (demo_report / "report_data" / f"{fig}.csv").read_text().splitlines()
        assert len(data) > 2, fig
    plan = json.loads((demo_report / "plan.json").read_text())
    rec = plan["mixtures"]["recommended"]["at_scale"]
    assert f"Predicted bpb_reviews {rec['prediction']:.4g}" in page  # the decision opens the page


def test_the_report_is_the_same_bytes_for_the_same_inputs(demo_report, tmp_path, capsys):
    assert main(["report", str(demo_report), "--out", str(tmp_path / "a.html")]) == 0
    assert main(["report", str(demo_report), "--out", str(tmp_path / "b.html")]) == 0
    a = (tmp_path / "a.html").read_text().replace("a_data/", "X/")
    b = (tmp_path / "b.html").read_text().replace("b_data/", "X/")
    assert a == b
    assert main(["report", str(demo_report), "--out", str(tmp_path / "a.html")]) == 2  # not replaced without --force
    assert "exists" in capsys.readouterr().err


def _open_in_chromium(page_path: Path, figure_ids: set, shot: Path) -> None:
    """Chromium (Debian's) opens the file: no console error or page error, no request but the file itself,
    every figure an SVG with content and alt text, and a screenshot with real contrast in it."""
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright not installed (test extra)")
    from PIL import Image

    errors, requests = [], []
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1100, "height": 900})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("request", lambda r: requests.append(r.url))
        page.goto(page_path.as_uri())
        page.wait_for_load_state("load")
        figures = page.eval_on_selector_all(
            "figure", "fs => fs.map(f => ({id: f.id, alt: f.querySelector('.plot').getAttribute('aria-label'), "
                      "shapes: f.querySelectorAll('svg path, svg rect, svg text').length, "
                      "width: f.querySelector('svg').getBoundingClientRect().width, "
                      "height: f.querySelector('svg').getBoundingClientRect().height}))")
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert errors == []
    assert requests == [page_path.as_uri()]
    assert {f["id"] for f in figures} == figure_ids
    for f in figures:
        assert len(f["alt"]) > 40 and f["shapes"] > 20 and f["width"] > 200 and f["height"] > 150, f
    pixels = np.asarray(Image.open(shot).convert("L"), dtype=float)
    assert pixels.std() > 20  # a blank page has std 0
    assert (pixels < 128).mean() > 0.01  # ink: text, axes, bars


def test_headless_chromium_draws_the_plan_report_offline(demo_report, tmp_path):
    _open_in_chromium(demo_report / "report.html", PLAN_FIGURES, tmp_path / "plan.png")


def test_filter_and_cpt_reports(tmp_path, capsys):
    """The filter plan's curves with their crossovers, and the continual-pretraining plan's two losses
    against the domain share, each opened in Chromium, each the same bytes when made twice."""
    buckets = REPO / "pools" / "demo_buckets.toml"  # the demo's wiki in four quality buckets, with QQT (b, tau)
    for name in ("a", "b"):
        assert main(["filter", "--pools", str(buckets), "--budget-range", "5e5:2e7", "--budget-steps", "30",
                     "--out", str(tmp_path / f"filter_{name}"), "--report"]) == 0
    page = (tmp_path / "filter_a" / "report.html").read_text()
    assert page == (tmp_path / "filter_b" / "report.html").read_text()
    assert "keep top_10 at 5e+05" in page and "the choice changes 1 time" in page
    _open_in_chromium(tmp_path / "filter_a" / "report.html", {"filter"}, tmp_path / "filter.png")
    runs = REPO / "proxies" / "demo_cpt" / "runs.csv"
    assert main(["cpt", "fit", str(runs), "--general", "general_loss", "--domain", "domain_loss", "--bootstrap", "20",
                 "--out", str(tmp_path / "cpt.json")]) == 0
    argv = ["cpt", "plan", str(tmp_path / "cpt.json"), "--tokens", "2e6", "--params", "262144", "--max-general-rise",
            "0.03", "--relative", "--json"]
    capsys.readouterr()
    assert main(argv + ["--report", str(tmp_path / "cpt.html")]) == 0
    share = json.loads(capsys.readouterr().out)["domain_ratio"]
    assert main(argv + ["--report", str(tmp_path / "cpt2.html")]) == 0
    a = (tmp_path / "cpt.html").read_text().replace("cpt_data/", "X/")
    assert f"domain share of {share:.3g}" in a
    assert a == (tmp_path / "cpt2.html").read_text().replace("cpt2_data/", "X/")
    data = (tmp_path / "cpt_data" / "cpt.csv").read_text()
    assert data.startswith("panel,series,x,y,lower,upper,point") and "nearest run" in data
    _open_in_chromium(tmp_path / "cpt.html", {"cpt"}, tmp_path / "cpt.png")


def test_law_fit_report_on_chinchillas_points(anchors, tmp_path):
    """The Chinchilla fit's report: the parameter table (E near the published 1.817), the law against its
    240 points and the residuals by model size, opened in Chromium."""
    import pandas as pd

    pts = pd.read_csv(anchors / "chinchilla" / "chinchilla_fig4_svg_points.csv")
    pts.rename(columns={"N_params": "params", "D_tokens": "tokens"}).to_csv(tmp_path / "runs.csv", index=False)
    assert main(["laws", "fit", str(tmp_path / "runs.csv"), "--law", "chinchilla", "--target", "loss", "--where",
                 "epoch_excluded_outlier=False", "--bootstrap", "20", "--report", str(tmp_path / "law.html")]) == 0
    page = (tmp_path / "law.html").read_text()
    assert "<caption>Parameters</caption>" in page and "<td>1.817" in page
    residuals = pd.read_csv(tmp_path / "law_data" / "residuals.csv")
    assert len(residuals) == 240 and residuals["series"].nunique() <= 6
    _open_in_chromium(tmp_path / "law.html", {"law_fit", "residuals"}, tmp_path / "law.png")


def test_fit_and_design_reports(tmp_path):
    """fit --report: every candidate's held-out predictions (kept in the model's files), the stacking
    weights, the errors against isolation; design --report: each pool's coverage. Both open in Chromium."""
    assert main(["fit", str(REPO / "proxies" / "demo" / "runs.csv"), "--target", "bpb_reviews", "--out",
                 str(tmp_path / "model"), "--report"]) == 0
    ids = {"candidates_0", "weights_1", "isolation"}
    candidates = (tmp_path / "model" / "report_data" / "candidates_0.csv").read_text().splitlines()
    assert len(candidates) == 1 + 6 * 128  # gp, gp-log, ridge, dml, lightgbm and the stack, 128 runs each
    _open_in_chromium(tmp_path / "model" / "report.html", ids, tmp_path / "fit.png")
    from mixplan.models.mixture_model import load_model

    reloaded = load_model(tmp_path / "model")  # the saved model keeps what the report drew
    assert all("oof_mean" in r for r in reloaded.targets[0].regressor.selection_ if r.get("status") != "skipped")
    assert main(["report", str(tmp_path / "model"), "--out", str(tmp_path / "again.html")]) == 0
    assert (tmp_path / "again.html").read_text().replace("again_data/", "X/") == \
        (tmp_path / "model" / "report.html").read_text().replace("report_data/", "X/")
    assert main(["report", str(tmp_path)]) == 2  # no result there: said in one line
    assert main(["design", "--pools", str(REPO / "pools" / "demo.toml"), "--n", "32", "--tokens", "1e6", "--out",
                 str(tmp_path / "swarm"), "--report"]) == 0
    coverage = (tmp_path / "swarm" / "report_data" / "coverage.csv").read_text().splitlines()
    assert len(coverage) == 1 + 32 * 5
    _open_in_chromium(tmp_path / "swarm" / "report.html", {"coverage"}, tmp_path / "design.png")


@pytest.mark.skipif(importlib.util.find_spec("gensim") is None, reason="the demo samples need gensim: '.[demo]'")
def test_ot_fit_report_and_the_plan_with_an_ot_study(tmp_path, capsys):
    demo = REPO / "proxies" / "demo"
    assert main(["ot", "fit", "--runs", str(demo / "runs_half.csv"), "--runs", str(demo / "runs.csv"), "--pools",
                 str(REPO / "pools" / "demo.toml"), "--target", "bpb_reviews", "--samples", "demo", "--validation",
                 "demo:reviews", "--out", str(tmp_path / "ot"), "--report"]) == 0
    stage1 = pd.read_csv(tmp_path / "ot" / "report_data" / "stage1.csv")
    assert len(stage1) == 2 * 128 and stage1["model"].nunique() == 2  # 128 runs at each of the two sizes
    assert "OT extrapolator: bpb_reviews" in (tmp_path / "ot" / "report.html").read_text()
    _open_in_chromium(tmp_path / "ot" / "report.html", {"stage1", "ot_distance"}, tmp_path / "ot.png")
    assert main(["plan", str(REPO / "examples" / "demo_plan.toml"), "--tokens", "4e6", "--ot", str(tmp_path / "ot"),
                 "--model", "ridge", "--candidates", "2000", "--out", str(tmp_path / "plan"), "--report"]) == 0
    ot = pd.read_csv(tmp_path / "plan" / "report_data" / "ot.csv")
    assert {"recommended", "ot_selected"} <= set(ot["series"]) and ot["x"].max() == pytest.approx(4e6)
    assert (ot["lower"] <= ot["y"]).all() and (ot["y"] <= ot["upper"]).all()
    assert main(["ot", "select", str(tmp_path / "ot"), "--tokens", "4e6", "--pools", str(REPO / "pools" / "demo.toml"),
                 "--report", str(tmp_path / "select.html")]) == 0
    mix = pd.read_csv(tmp_path / "select_data" / "mixtures.csv")
    assert mix["mixture"].tolist() == ["ot_selected", "uniform", "token_proportional"]
    assert mix["prediction"].iloc[0] <= mix["prediction"].min() + 1e-12  # the selection is the best of the three
    _open_in_chromium(tmp_path / "select.html", {"mixtures", "search"}, tmp_path / "select.png")
    # the plan records its OT study: mixplan report draws the same figure from the folder
    assert main(["report", str(tmp_path / "plan"), "--out", str(tmp_path / "again.html")]) == 0
    assert '<figure id="ot"' in (tmp_path / "again.html").read_text()
