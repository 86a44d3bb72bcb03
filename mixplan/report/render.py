"""Draw a :class:`~mixplan.report.figures.Figure` as SVG text, with matplotlib.

Why matplotlib's SVG: the report must open offline with nothing but the file, so a figure is vector
markup inside the page (no script, no CDN: a JavaScript library such as Plotly would add megabytes of
script to every report and console errors to watch for); it is deterministic (fixed hash salt, no date
in the metadata, text kept as text); and it is the most widely installed plotting library. Colours
are the Okabe-Ito palette, distinguishable with the common colour-vision deficiencies.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ..exceptions import ValidationError
from .figures import Figure

__all__ = ["OKABE_ITO", "render_svg"]

#: Okabe & Ito (2008), "Color Universal Design": eight colours told apart with common colour-vision
#: deficiencies (black last, used for references).
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise ValidationError("reports need matplotlib: pip install 'mixplan[report]'") from None
    matplotlib.use("svg", force=True)
    import matplotlib.pyplot as plt

    plt.rcParams.update({"svg.hashsalt": "mixplan", "svg.fonttype": "none", "font.size": 10,
                         "axes.titlesize": 10, "axes.spines.top": False, "axes.spines.right": False,
                         "axes.prop_cycle": matplotlib.cycler(color=OKABE_ITO)})
    return plt


def _colour(i: int) -> str:
    return OKABE_ITO[i % (len(OKABE_ITO) - 1)]  # black is kept for reference lines


def _mixtures(fig: Figure, plt: Any) -> Any:
    d, pools = fig.data, fig.spec["pools"]
    f, (a, b) = plt.subplots(1, 2, figsize=(9.5, 0.45 * len(d) + 1.6), gridspec_kw={"width_ratios": [1.3, 1]},
                             sharey=True)
    y = np.arange(len(d))[::-1]
    left = np.zeros(len(d))
    for i, p in enumerate(pools):
        w = d[f"w_{p}"].to_numpy(dtype=float)
        a.barh(y, w, left=left, color=_colour(i), label=p, height=0.7)
        left += w
    a.set_yticks(y, d["mixture"])
    a.set_xlim(0, 1)
    a.set_xlabel("weight (share of the training tokens)")
    a.legend(ncol=min(len(pools), 6), fontsize=8, loc="lower left", bbox_to_anchor=(0.0, 1.0), frameon=False)
    pred = d["prediction"].to_numpy(dtype=float)
    lo = d["lower"].to_numpy(dtype=float)
    hi = d["upper"].to_numpy(dtype=float)
    known = np.isfinite(lo) & np.isfinite(hi)
    b.errorbar(pred[known], y[known], xerr=[pred[known] - lo[known], hi[known] - pred[known]], fmt="o",
               color=OKABE_ITO[0], capsize=3)
    b.plot(pred[~known], y[~known], "o", color=OKABE_ITO[0])
    b.axvline(pred[0], color=OKABE_ITO[-1], lw=0.8, ls=":")
    for yy, p, x in zip(y, d["p_recommended_better"], np.where(known, hi, pred)):
        if p is not None and np.isfinite(p):
            b.annotate(f"P={p:.2f}", (x, yy), xytext=(4, -3), textcoords="offset points", fontsize=8)
    b.set_xlabel(fig.spec["metric"])
    return f


def _scatter_band(fig: Figure, plt: Any) -> Any:
    d, s = fig.data, fig.spec
    f, a = plt.subplots(figsize=(5.5, 5))
    x, y = d[s["x"]].to_numpy(dtype=float), d[s["y"]].to_numpy(dtype=float)
    lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
    pad = 0.04 * (hi - lo or 1.0)
    line = np.array([lo - pad, hi + pad])
    a.fill_between(line, line - s["half"], line + s["half"], color=OKABE_ITO[4], alpha=0.3, lw=0,
                   label=f"±{s['half']:.3g}")
    a.plot(line, line, color=OKABE_ITO[-1], lw=0.8)
    a.scatter(x, y, s=12, color=OKABE_ITO[0], label="proxy run (held out)")
    a.set_xlim(*line)
    a.set_ylim(*line)
    a.set_xlabel(f"measured {s['label']}")
    a.set_ylabel(f"predicted {s['label']} (out of fold)")
    a.legend(frameon=False, fontsize=8)
    return f


def _response(fig: Figure, plt: Any) -> Any:
    d, pools = fig.data, fig.spec["pools"]
    n = len(pools)
    cols = min(n, 4)
    rows = int(np.ceil(n / cols))
    f, axes = plt.subplots(rows, cols, figsize=(2.5 * cols + 0.8, 2.2 * rows + 0.4), sharey=True, squeeze=False)
    for k, p in enumerate(pools):
        a = axes[k // cols][k % cols]
        q = d[d["pool"] == p]
        a.fill_between(q["weight"], q["lower"], q["upper"], color=_colour(k), alpha=0.25, lw=0)
        a.plot(q["weight"], q["prediction"], color=_colour(k))
        r = q[q["recommended"]]
        a.plot(r["weight"], r["prediction"], "o", color=OKABE_ITO[-1], ms=4)
        a.set_title(p)
        a.set_xlabel(f"weight of {p}")
    for k in range(n, rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    for r in range(rows):
        axes[r][0].set_ylabel(fig.spec["metric"], fontsize=8)
    f.tight_layout()
    return f


def _optima(fig: Figure, plt: Any) -> Any:
    d, names, pools = fig.data, fig.spec["mixtures"], fig.spec["pools"]
    f, (a, b) = plt.subplots(2, 1, figsize=(9, 5.2), sharex=True)
    x = np.arange(len(pools))
    width = 0.8 / max(len(names), 1)
    for i, n in enumerate(names):
        q = d[d["mixture"] == n].set_index("pool").loc[pools]
        a.bar(x + (i - (len(names) - 1) / 2) * width, q["weight"], width, color=_colour(i), label=n)
        b.bar(x + (i - (len(names) - 1) / 2) * width, q["epochs"], width, color=_colour(i))
    b.axhline(1.0, color=OKABE_ITO[-1], lw=0.8, ls=":")
    a.set_ylabel("weight")
    b.set_ylabel("epochs at the target budget")
    b.set_xticks(x, pools)
    a.legend(frameon=False, fontsize=8, ncol=min(len(names), 4))
    return f


def _stacked_area(fig: Figure, plt: Any) -> Any:
    d, pools = fig.data, fig.spec["pools"]
    f, a = plt.subplots(figsize=(9, 4))
    a.stackplot(d["tokens"], *[d[f"w_{p}"] for p in pools], labels=pools, colors=[_colour(i) for i in range(len(pools))])
    a.set_xscale("log")
    a.set_xlim(d["tokens"].min(), d["tokens"].max())
    a.set_ylim(0, 1)
    a.set_xlabel(f"target budget ({fig.spec['unit']}, log scale)")
    a.set_ylabel("recommended weight")
    a.legend(frameon=False, fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return f


RENDERERS: dict[str, Callable[[Figure, Any], Any]] = {
    "mixtures": _mixtures, "scatter_band": _scatter_band, "response": _response, "optima": _optima,
    "stacked_area": _stacked_area,
}


def render_svg(fig: Figure) -> str:
    """The figure as an SVG document (text), deterministic for the same data."""
    plt = _pyplot()
    if fig.kind not in RENDERERS:
        raise ValidationError(f"no renderer for figure kind {fig.kind!r}")
    f = RENDERERS[fig.kind](fig, plt)
    buf = io.StringIO()
    try:
        f.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": "mixplan"})
    finally:
        plt.close(f)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]  # inline in HTML: no XML prolog or doctype
    return re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)  # RDF boilerplate a page does not need
