"""Reports (mixplan.report, plan --report, mixplan report): the demo plan's report opened in headless
Chromium - no console error, nothing fetched, every figure drawn with alt text, a screenshot that is not
blank - and the same bytes for the same inputs."""

import json
import shutil
from pathlib import Path

import numpy as np
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


def test_headless_chromium_draws_the_report_offline(demo_report, tmp_path):
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
        page.goto((demo_report / "report.html").as_uri())
        page.wait_for_load_state("load")
        figures = page.eval_on_selector_all(
            "figure", "fs => fs.map(f => ({id: f.id, alt: f.querySelector('.plot').getAttribute('aria-label'), "
                      "shapes: f.querySelectorAll('svg path, svg rect, svg text').length, "
                      "width: f.querySelector('svg').getBoundingClientRect().width, "
                      "height: f.querySelector('svg').getBoundingClientRect().height}))")
        page.screenshot(path=str(tmp_path / "report.png"), full_page=True)
        browser.close()
    assert errors == []
    assert requests == [(demo_report / "report.html").as_uri()]
    assert {f["id"] for f in figures} == PLAN_FIGURES
    for f in figures:
        assert len(f["alt"]) > 40 and f["shapes"] > 20 and f["width"] > 200 and f["height"] > 150, f
    pixels = np.asarray(Image.open(tmp_path / "report.png").convert("L"), dtype=float)
    assert pixels.shape[0] > 2000 and pixels.std() > 20  # a blank page has std 0
    assert (pixels < 128).mean() > 0.01  # ink: text, axes, bars
