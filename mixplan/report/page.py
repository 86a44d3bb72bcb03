"""One self-contained HTML file per result: the decision first, then the evidence, each figure inline
(SVG, no script, nothing fetched), its alt text below it and its data written beside the page as CSV
(``<report>_data/<figure>.csv``). The same inputs give the same bytes."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .._io import check_writable, table_csv, write_text_atomic
from .._version import __version__
from .figures import Figure
from .render import render_svg

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["report_html", "write_report"]

_STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1a1a1a; background: #fff; margin: 0; }
main { max-width: 980px; margin: 0 auto; padding: 1.5rem 1rem 3rem; }
h1 { font-size: 1.35rem; margin: 0 0 .5rem; }
h2 { font-size: 1.05rem; margin: 2rem 0 .5rem; }
.decision { font-size: 1.15rem; background: #eef5fb; border-left: 4px solid #0072B2; padding: .6rem .9rem; }
.facts li { margin: .15rem 0; }
figure { margin: 0; }
figure .plot svg { max-width: 100%; height: auto; }
figcaption { color: #444; font-size: .9rem; }
footer { color: #666; font-size: .8rem; margin-top: 2rem; }
table.params { border-collapse: collapse; margin: 1rem 0; font-size: .9rem; }
table.params caption { text-align: left; font-weight: 600; }
table.params th, table.params td { padding: .2rem .7rem; border-bottom: 1px solid #ddd; text-align: left; }
"""


def report_html(title: str, decision: str, facts: Sequence[str], figures: Sequence[Figure],
                data_folder: str, tables: Sequence[tuple[str, "pd.DataFrame"]] = ()) -> str:
    """The page (text): ``title``, the ``decision`` sentence, ``facts`` as a list, ``tables`` (caption,
    frame), then every figure."""
    e = html.escape
    parts = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
             '<meta name="viewport" content="width=device-width, initial-scale=1">', f"<title>{e(title)}</title>",
             f"<style>{_STYLE}</style>", "</head>", "<body>", "<main>", f"<h1>{e(title)}</h1>",
             f'<p class="decision">{e(decision)}</p>', '<ul class="facts">',
             *(f"<li>{e(f)}</li>" for f in facts), "</ul>"]
    for caption, frame in tables:
        parts.append(frame.to_html(index=False, border=0, classes="params", escape=True)
                     .replace("<table ", f"<table aria-label=\"{e(caption)}\" ", 1)
                     .replace("<thead>", f"<caption>{e(caption)}</caption>\n<thead>", 1))
    for fig in figures:
        parts += [f'<figure id="{e(fig.id)}" data-kind="{e(fig.kind)}">', f"<h2>{e(fig.title)}</h2>",
                  f'<div class="plot" role="img" aria-label="{e(fig.alt)}">{render_svg(fig)}</div>',
                  f'<figcaption>{e(fig.alt)} Data: <a href="{e(data_folder)}/{e(fig.id)}.csv">{e(fig.id)}.csv</a>'
                  "</figcaption>", "</figure>"]
    parts += [f"<footer>mixplan {e(__version__)}</footer>", "</main>", "</body>", "</html>", ""]
    return "\n".join(parts)


def write_report(path: str | os.PathLike[str], title: str, decision: str, facts: Sequence[str],
                 figures: Sequence[Figure], force: bool = False,
                 tables: Sequence[tuple[str, "pd.DataFrame"]] = ()) -> list[Path]:
    """Write the page and its figures' tables (``<stem>_data/<id>.csv``); nothing is written unless
    everything can be (existing files need ``force``)."""
    path = Path(path)
    folder = path.parent / f"{path.stem}_data"
    texts = {path: report_html(title, decision, facts, figures, folder.name, tables)}
    texts |= {folder / f"{f.id}.csv": table_csv(f.data) for f in figures}
    check_writable(list(texts), force)
    for target, text in texts.items():
        target.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomic(target, text, force=force)
    return list(texts)
