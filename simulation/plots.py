"""What the three HTML reports (a run, a comparison, a sweep) share: interactive plotly figures in one
self-contained page. plotly.js is inlined once in the page's head, each figure is a div drawn by an
inline script, and nothing is fetched: the file opens offline (tests/test_report_browser.py opens
each report in headless Chromium with the network cut and checks every plot drew, with no script
error). Zoom, hover values and series toggled from the legend are plotly's own."""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs
from plotly.utils import PlotlyJSONEncoder

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222;
       max-width: 1150px; margin: 24px auto; padding: 0 16px; line-height: 1.4; }
h1 { font-size: 1.6em; margin-bottom: 4px; word-break: break-word; }
h2 { font-size: 1.2em; border-bottom: 1px solid #ddd; padding-bottom: 4px; margin-top: 32px; }
.meta { color: #555; margin-top: 0; }
table { border-collapse: collapse; margin: 8px 0 16px; font-size: 0.95em; }
.scroll { overflow-x: auto; max-width: 100%; }
th, td { border: 1px solid #ddd; padding: 4px 10px; text-align: left; }
th { background: #f4f4f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bad { color: #c62828; font-weight: bold; background: #fdecea; }
.ok { color: #2e7d32; }
figure { margin: 20px 0; }
.plot { width: 100%; height: 380px; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; margin-top: 4px; }
"""

CONFIG = {"displaylogo": False, "responsive": True, "scrollZoom": False}
WINDOW_COLOURS = {
    "crash": "#c62828",
    "oracle_outage": "#6a1b9a",
    "keeper_outage": "#ef6c00",
    "gas_spike": "#00838f",
}


@dataclass(frozen=True)
class Plot:
    """One figure of a report: its title, a one-line caption and the plotly figure."""

    title: str
    caption: str
    figure: go.Figure


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def styled(fig: go.Figure, title: str, xaxis: str, yaxis: str, height: int = 380) -> go.Figure:
    fig.update_layout(
        title={"text": esc(title), "x": 0.01},
        template="plotly_white",
        height=height,
        margin={"l": 70, "r": 30, "t": 50, "b": 50},
        hovermode="x unified",
        legend={"orientation": "h", "y": -0.2},
    )
    fig.update_xaxes(title_text=esc(xaxis))
    fig.update_yaxes(title_text=esc(yaxis))
    return fig


def no_data(fig: go.Figure, message: str = "no data") -> go.Figure:
    fig.add_annotation(
        text=esc(message),
        xref="paper",
        yref="paper",
        x=0.5,
        y=0.5,
        showarrow=False,
        font={"size": 16, "color": "#888"},
    )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(showticklabels=False)
    return fig


def shade(fig: go.Figure, windows: Iterable[tuple[str, str, float, float]], label: bool) -> None:
    """Shade each (kind, label, x0, x1) window; its label on the first figure only."""
    for kind, text, x0, x1 in windows:
        words: dict[str, Any] = (
            {
                "annotation_text": esc(text),
                "annotation_position": "top left",
                "annotation_font_size": 10,
            }
            if label
            else {}
        )
        fig.add_vrect(
            x0=x0,
            x1=x1,
            fillcolor=WINDOW_COLOURS.get(kind, "#888"),
            opacity=0.1,
            line_width=0,
            layer="below",
            **words,
        )


def figure_html(plot: Plot, div_id: str) -> str:
    """The plot's div, caption and the inline script that draws it. `</` is escaped in the JSON so
    no string in the data can close the script."""
    doc = json.dumps(plot.figure.to_plotly_json(), cls=PlotlyJSONEncoder).replace("</", "<\\/")
    config = json.dumps(CONFIG)
    return (
        f'<figure><div class="plot" id="{div_id}" data-title="{esc(plot.title)}"></div>'
        f"<figcaption>{esc(plot.caption)}</figcaption></figure>"
        f"<script>(function(){{var f={doc};"
        f'Plotly.newPlot("{div_id}",f.data,f.layout,{config});}})();</script>'
    )


def page(title: str, meta: str, sections: Sequence[str | Plot]) -> str:
    """A whole self-contained document: `sections` are HTML strings (already escaped) and plots."""
    body = []
    n = 0
    for part in sections:
        if isinstance(part, Plot):
            body.append(figure_html(part, f"plot-{n}"))
            n += 1
        else:
            body.append(part)
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n"
        f"<script>{get_plotlyjs()}</script>\n</head><body>\n"
        f'<h1>{esc(title)}</h1>\n<p class="meta">{meta}</p>\n'
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def table(head: Sequence[str], rows: Iterable[Sequence[Any]], numeric: Sequence[bool]) -> str:
    """An HTML table; every cell escaped; numeric columns right-aligned."""
    th = "".join(f"<th>{esc(h)}</th>" for h in head)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{esc(c)}</td>' if num else f"<td>{esc(c)}</td>"
            for c, num in zip(row, numeric, strict=True)
        )
        + "</tr>"
        for row in rows
    )
    return f'<div class="scroll"><table><tr>{th}</tr>{body}</table></div>'


def link_list(links: Mapping[str, str]) -> str:
    """label -> relative href, as escaped links."""
    return " ".join(f'<a href="{esc(href)}">{esc(label)}</a>' for label, href in links.items())
