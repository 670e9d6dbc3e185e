"""A story as one self-contained HTML file, a deck that needs no server: ``skipweb story KEY --html deck.html``
and the Present page's "Download as a deck" button write the same bytes.

One screen (a ``<section>``) per part: the claim and the experiment, then each finding with its verdict and
chart, then the story's other charts, then the recipe and the runs. The charts stay interactive Plotly with
plotly.js inlined once (the first chart carries it), so the file opens offline in any browser; the arrow
keys step from screen to screen. Every text is HTML-escaped; nothing is fetched.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import date
from typing import Any

import plotly.graph_objects as go

from skipweb import charts
from skipweb.stories.base import Story, StoryView

COLORS = {"agrees": "#1a7f37", "contradicts": "#cf222e", "inconclusive": "#57606a"}
CHART_HEIGHT = 440  # fits a 720-pixel-high screen under a finding's verdict and sentence
CHART_CONFIG = {"displaylogo": False, "responsive": True}
TEMPLATE = "plotly_white"

_CSS = """
body {font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0; color: #1f2328;}
section {box-sizing: border-box; min-height: 100vh; padding: 2rem 3rem; scroll-snap-align: start;
         border-bottom: 1px solid #d0d7de;}
html {scroll-snap-type: y proximity;}
h1 {font-size: 2.6rem; margin: 0 0 1rem;}
h2 {font-size: 2rem; margin: 0 0 1rem;}
p, li, td, th {font-size: 1.4rem; line-height: 1.4;}
.meta, .caption, .foot {color: #57606a; font-size: 1.1rem;}
.finding {display: flex; gap: 1.5rem; align-items: center; margin-bottom: 1rem;}
.finding p {margin: 0;}
.verdict {flex: none; min-width: 14rem; text-align: center; color: white; font-weight: 700; font-size: 2.4rem;
          padding: 0.5rem 1rem; border-radius: 0.6rem;}
table {border-collapse: collapse;} td, th {padding: 0.2rem 1rem; text-align: left; font-size: 1.1rem;}
"""

# the arrow keys (and PageUp/PageDown, which browsers already honour) step from one section to the next
_KEYS = """
document.addEventListener("keydown", function (e) {
  if (e.key !== "ArrowRight" && e.key !== "ArrowLeft") return;
  var all = Array.from(document.querySelectorAll("section"));
  var now = all.findIndex(function (s) { return s.getBoundingClientRect().top > 5; });
  now = now < 0 ? all.length : now;
  var next = e.key === "ArrowRight" ? now : Math.max(0, now - 2);
  if (next < all.length) { all[next].scrollIntoView(); e.preventDefault(); }
});
"""


def _e(text: Any) -> str:
    return html.escape(str(text))


def context(exp: Any | None, runs: Sequence[Any]) -> str:
    """One line: the experiment, dataset, recipe, seeds and the date of its runs (read from their specs)."""
    parts = [f"experiment #{exp.id} «{exp.title}»"] if exp is not None else ["no experiment yet"]
    specs = [r.spec for r in runs]
    if specs:
        parts.append(", ".join(sorted({str(s.get("dataset")) for s in specs})))
        epochs = sorted({s.get("epochs") for s in specs})
        parts.append(f"{'/'.join(map(str, epochs))} epoch{'' if epochs == [1] else 's'}")
        parts.append("seeds " + ", ".join(map(str, sorted({int(s.get("seed", 0)) for s in specs}))))
    when = [r.created_at for r in runs if getattr(r, "created_at", None)]
    if when:
        parts.append(f"run {min(when):%Y-%m-%d}")
    return " · ".join(parts)


def chart_of(view: StoryView, i: int) -> int | None:
    """The figure shown beside finding ``i``: the story's first (its summary chart), if it has one."""
    return 0 if view.figures else None


def _chart(fig: go.Figure, n: int) -> str:
    """A copy of the figure as the Present page styles it, as an HTML fragment; plotly.js inlined with the
    first one only. Fixed ids keep the bytes the same from one call to the next."""
    fig = charts.for_projector(go.Figure(fig), size=16, height=CHART_HEIGHT)
    # a template by name: the default is "streamlit" inside the dashboard and "plotly" in the CLI
    fig.update_layout(template=TEMPLATE)
    return fig.to_html(include_plotlyjs=n == 0, full_html=False, div_id=f"chart-{n}", config=CHART_CONFIG)


def deck_html(story: Story, view: StoryView, exp: Any | None, runs: Sequence[Any],
              today: date | None = None) -> str:  # fmt: skip
    """The whole deck as one HTML page (a str); ``today``: the date it says it was made."""
    made = (today or date.today()).isoformat()
    papers = "; ".join(f'<a href="{_e(url)}">{_e(cite)}</a>' for cite, url in story.papers)
    where = context(exp, runs)
    out = [
        f'<section><h1>{_e(story.title)}</h1><p><b>Claim.</b> {_e(story.claim)} ({papers})</p>'
        f'<p class="meta">Computed from {_e(where)}. Deck made {made} by skipweb.</p><ol>'
        + "".join(f'<li><b style="color:{COLORS.get(f.verdict, "#57606a")}">{_e(f.verdict)}</b>: {_e(f.text)}</li>'
                  for f in view.findings)
        + "</ol></section>"
    ]  # fmt: skip
    n = 0
    used: set[int] = set()
    for i, f in enumerate(view.findings, start=1):
        part = (f'<section><p class="meta">Finding {i} of {len(view.findings)} · {_e(story.title)}</p>'
                f'<div class="finding"><div class="verdict" style="background:{COLORS.get(f.verdict, "#57606a")}">'
                f'{_e(f.verdict)}</div><p>{_e(f.text)}</p></div>')  # fmt: skip
        k = chart_of(view, i - 1)
        if k is not None:
            caption, fig = view.figures[k]
            part += _chart(fig, n) + f'<p class="caption">{_e(caption)}</p>'
            used.add(k)
            n += 1
        out.append(part + "</section>")
    for k, (caption, fig) in enumerate(view.figures):
        if k not in used:
            out.append(f'<section><p class="meta">{_e(story.title)}</p>{_chart(fig, n)}'
                       f'<p class="caption">{_e(caption)}</p></section>')  # fmt: skip
            n += 1
    out.append(_recipe(story, view, runs, where, made))
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>{_e(story.title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(out) + f"\n<script>{_KEYS}</script></body></html>\n")  # fmt: skip


def _recipe(story: Story, view: StoryView, runs: Sequence[Any], where: str, made: str) -> str:
    notes = "".join(f"<p>{_e(n)}</p>" for n in view.notes)
    caveat = f"<p><b>Caveat.</b> {_e(story.caveat)}</p>" if story.caveat else ""
    rows = "".join(f"<tr><td>{r.id}</td><td>{_e(r.label)}</td><td>{r.seed}</td><td>{_e(r.status)}</td></tr>"
                   for r in runs)  # fmt: skip
    table = (f"<table><tr><th>run</th><th>net</th><th>seed</th><th>status</th></tr>{rows}</table>"
             if runs else "")  # fmt: skip
    return (f"<section><h2>How it was measured</h2><p>{_e(story.recipe_note)}</p>{notes}{caveat}{table}"
            f'<p class="foot">{_e(where)} · deck made {made} · /present?story={_e(story.key)}</p></section>')
