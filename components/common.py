"""House style for every chart: readable from the back of a room, titled, with units, and light to send."""

from __future__ import annotations

import html

import plotly.colors as pc
import plotly.graph_objects as go
import streamlit as st

FONT_SIZE = 16
ATTENTION_SCALE = "Viridis"  # one colour scale for every attention map, so heads compare at a glance
# plotly's Magma, its first stop written as rgb(): Streamlit's frontend rewrites the literal "#000004"
# (it takes it for a placeholder) and silence would show violet instead of black
MEL_SCALE = ["rgb(0,0,4)", *pc.sequential.Magma[1:]]
CONFIDENCE_SCALE = "RdYlGn"
GREY = "#b0b0b0"


def style(fig: go.Figure, title: str, x: str | None = None, y: str | None = None, height: int = 420) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": FONT_SIZE + 4}},
        font={"size": FONT_SIZE},
        height=height,
        margin={"l": 70, "r": 30, "t": 60, "b": 60},
        hoverlabel={"font_size": FONT_SIZE},
    )
    fig.update_xaxes(automargin=True, title_standoff=14)  # long rotated tick labels push the title down
    fig.update_yaxes(automargin=True)
    if x is not None:
        fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    return fig


def show(fig: go.Figure, key: str | None = None) -> None:
    """Draw a figure, offer it as a standalone HTML file, and count what it costs to send (reported at the
    foot of each page). The camera in the chart's toolbar saves a PNG, made by the browser itself."""
    st.session_state["_page_bytes"] = st.session_state.get("_page_bytes", 0) + len(fig.to_json())
    st.plotly_chart(fig, key=key, theme=None, config={"displaylogo": False, "toImageButtonOptions": {"scale": 2}})
    number = st.session_state["_chart_no"] = st.session_state.get("_chart_no", 0) + 1
    title = (fig.layout.title.text or "chart").split(":")[0]
    slug = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")[:40] or "chart"
    st.download_button("Chart as HTML", data=lambda: fig.to_html(include_plotlyjs=True), file_name=f"{slug}.html",
                       mime="text/html", key=f"html_{key or number}", type="tertiary",
                       icon=":material/download:", help="An interactive copy that works offline (4 MB with plotly.js)")


def page_start(title: str, what: str) -> None:
    """Title and the short 'what am I looking at' note every page opens with."""
    st.session_state["_page_bytes"] = 0
    st.session_state["_chart_no"] = 0
    st.title(title)
    st.info(what)


def page_end() -> None:
    sent = st.session_state.get("_page_bytes", 0)
    st.caption(f"Chart data sent to the browser for this page: {sent / 1e6:.2f} MB.")


def safe(text: str) -> str:
    """User-derived text (file names, transcripts) for HTML and plotly labels: shown, never interpreted."""
    return html.escape(text, quote=True)


def plain(text: str) -> None:
    """Show user-derived text exactly as characters: no Markdown, no LaTeX (a `$` stays a dollar)."""
    st.text(text)


_MARKDOWN_SPECIALS = "\\`*_{}[]()#+-.!$<>|~"


def md_escape(text: str) -> str:
    """Text for Markdown elements (st.error, st.caption): every special character taken literally."""
    return "".join("\\" + c if c in _MARKDOWN_SPECIALS else c for c in text)


def error(message: str) -> None:
    st.error(md_escape(message))
