"""Reports: one offline HTML file per result, the decision first, then its evidence as figures.

:mod:`~mixplan.report.figures` builds each figure's data table from a result (no drawing);
:mod:`~mixplan.report.render` draws a figure as SVG (matplotlib, extra ``report``);
:mod:`~mixplan.report.page` writes the page and the tables beside it. Public names are imported on
first use."""

from __future__ import annotations

from .._lazy import lazy_exports

_EXPORTS = {"Figure": ".figures", "plan_figures": ".figures", "render_svg": ".render", "write_report": ".page",
            "report_html": ".page", "plan_report": ".plan", "fit_report": ".results", "filter_report": ".results",
            "cpt_report": ".results", "law_report": ".results", "design_report": ".results"}

__all__ = list(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
