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
    a.scatter(x, y, s=12, color=OKABE_ITO[0], label=s.get("points", "proxy run (held out)"))
    a.set_xlim(*line)
    a.set_ylim(*line)
    a.set_xlabel(f"measured {s['label']}")
    a.set_ylabel(s.get("ylabel", f"predicted {s['label']} (out of fold)"))
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
    a.legend(frameon=False, fontsize=8, ncol=min(len(names), 4), loc="lower left", bbox_to_anchor=(0.0, 1.0))
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


def _lines(fig: Figure, plt: Any) -> Any:
    """Series over x with bands, one panel per ``panel`` value: columns panel, series, x, y, lower, upper
    (bands where given), ``point`` rows drawn as markers; spec: xlabel, ylabels {panel: label}, logx,
    vlines [{x, label}], spans [{lo, hi, label}], hlines [{panel, y, label}], bold (series drawn thicker)."""
    d, s = fig.data, fig.spec
    panels = list(dict.fromkeys(d["panel"]))
    f, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels) + 0.6, 3.8), squeeze=False)
    series = list(dict.fromkeys(d.loc[~d["point"], "series"]))
    for a, panel in zip(axes[0], panels):
        q = d[d["panel"] == panel]
        for i, name in enumerate(series):
            r = q[(q["series"] == name) & ~q["point"]].sort_values("x")
            if not len(r):
                continue
            if r["lower"].notna().any():
                a.fill_between(r["x"], r["lower"], r["upper"], color=_colour(i), alpha=0.2, lw=0)
            a.plot(r["x"], r["y"], color=_colour(i), lw=2.2 if name in s.get("bold", ()) else 1.2, label=name)
        pts = q[q["point"]]
        if len(pts):
            a.plot(pts["x"], pts["y"], "o", color=OKABE_ITO[-1], ms=4, label=str(pts["series"].iloc[0]))
        for v in s.get("vlines", []):
            a.axvline(v["x"], color=OKABE_ITO[-1], lw=0.8, ls="--")
            a.annotate(v["label"], (v["x"], 1.0), xycoords=("data", "axes fraction"), rotation=90, fontsize=7,
                       va="top", ha="right")
        for sp in s.get("spans", []):
            a.axvspan(sp["lo"], sp["hi"], color=OKABE_ITO[4], alpha=0.15, lw=0, label=sp["label"])
        for h in s.get("hlines", []):
            if h["panel"] == panel:
                a.axhline(h["y"], color=OKABE_ITO[5], lw=1.0, ls=":", label=h["label"])
        if s.get("logx"):
            a.set_xscale("log")
        a.set_xlabel(s["xlabel"])
        a.set_ylabel(s.get("ylabels", {}).get(panel, panel))
        a.legend(frameon=False, fontsize=7)
    f.tight_layout()
    return f


def _residuals(fig: Figure, plt: Any) -> Any:
    """Relative residuals (percent) against x, one colour per series, a zero line."""
    d, s = fig.data, fig.spec
    f, a = plt.subplots(figsize=(7.5, 3.6))
    for i, name in enumerate(dict.fromkeys(d["series"])):
        q = d[d["series"] == name]
        a.scatter(q["x"], (100 if s.get("percent", True) else 1) * q["y"], s=14, color=_colour(i), label=name)
    if s.get("percent", True):
        a.axhline(0.0, color=OKABE_ITO[-1], lw=0.8)
    if s.get("logx"):
        a.set_xscale("log")
    a.set_xlabel(s["xlabel"])
    a.set_ylabel(s.get("ylabel", "relative residual (%)"))
    if d["series"].nunique() > 1:
        a.legend(frameon=False, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return f


def _scatter_panels(fig: Figure, plt: Any) -> Any:
    """Measured against held-out predictions, one panel per model (columns model, measured,
    predicted_out_of_fold), shared axes and diagonal."""
    d = fig.data
    models = list(dict.fromkeys(d["model"]))
    cols = min(len(models), 4)
    rows = int(np.ceil(len(models) / cols))
    f, axes = plt.subplots(rows, cols, figsize=(2.6 * cols + 0.6, 2.6 * rows + 0.4), squeeze=False, sharex=True,
                           sharey=True)
    lo = float(min(d["measured"].min(), d["predicted_out_of_fold"].min()))
    hi = float(max(d["measured"].max(), d["predicted_out_of_fold"].max()))
    for k, m in enumerate(models):
        a = axes[k // cols][k % cols]
        q = d[d["model"] == m]
        a.plot([lo, hi], [lo, hi], color=OKABE_ITO[-1], lw=0.8)
        a.scatter(q["measured"], q["predicted_out_of_fold"], s=6, color=_colour(k))
        a.set_title(m, fontsize=8)
    for k in range(len(models), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    for a in axes[-1]:
        a.set_xlabel(f"measured {fig.spec['label']}", fontsize=8)
    for r in range(rows):
        axes[r][0].set_ylabel("held-out prediction", fontsize=8)
    f.tight_layout()
    return f


def _bars(fig: Figure, plt: Any) -> Any:
    """Horizontal bars of ``spec['x']`` by ``spec['y']``, the ``note`` column written beside each."""
    d, s = fig.data, fig.spec
    f, a = plt.subplots(figsize=(6.5, 0.35 * len(d) + 1.0))
    y = np.arange(len(d))[::-1]
    a.barh(y, d[s["x"]], color=OKABE_ITO[0], height=0.6)
    for yy, x, note in zip(y, d[s["x"]], d[s["note"]]):
        a.annotate(f"{s['note']} {note:.3g}", (x, yy), xytext=(4, -3), textcoords="offset points", fontsize=7)
    a.set_yticks(y, d[s["y"]])
    a.set_xlim(0, max(1.0, float(d[s["x"]].max()) * 1.3))
    a.set_xlabel(s["x"])
    return f


def _coverage(fig: Figure, plt: Any) -> Any:
    """Per pool (a row), the runs' weights as a box and jittered dots, its cap as a mark."""
    d, pools = fig.data, fig.spec["pools"]
    f, a = plt.subplots(figsize=(8, 0.45 * len(pools) + 1.2))
    rng = np.random.default_rng(0)  # the jitter is drawn, not data: fixed, so the page is the same bytes
    for k, p in enumerate(pools):
        w = d.loc[d["pool"] == p, "weight"].to_numpy(dtype=float)
        y = len(pools) - 1 - k
        a.boxplot([w], positions=[y], orientation="horizontal", widths=0.6, showfliers=False, manage_ticks=False)
        a.scatter(w, y + rng.uniform(-0.18, 0.18, len(w)), s=6, color=_colour(k), alpha=0.7)
        if p in fig.spec.get("upper", {}):
            a.plot([fig.spec["upper"][p]], [y], "|", color=OKABE_ITO[5], ms=14, mew=2)
    a.set_yticks(range(len(pools))[::-1], pools)
    a.set_xlim(0, 1)
    a.set_xlabel("weight in the run")
    return f


RENDERERS: dict[str, Callable[[Figure, Any], Any]] = {
    "mixtures": _mixtures, "scatter_band": _scatter_band, "response": _response, "optima": _optima,
    "stacked_area": _stacked_area, "lines": _lines, "residuals": _residuals, "scatter_panels": _scatter_panels,
    "bars": _bars, "coverage": _coverage,
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
