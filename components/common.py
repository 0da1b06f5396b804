"""House style for every chart: readable from the back of a room, titled, with units, and light to send."""

from __future__ import annotations

import html

import plotly.colors as pc
import plotly.graph_objects as go
import streamlit as st

ROOM_PX = 480  # plot width to plan labels for: a full-width chart on a 1024 px screen, sidebar open
FONT_SIZE = 16  # chart text at a desk
PRESENTER_FONT_SIZE = 22  # chart text on a projector, read from the back of a room
ATTENTION_SCALE = "Viridis"  # one colour scale for every attention map, so heads compare at a glance
# plotly's Magma, its first stop written as rgb(): Streamlit's frontend rewrites the literal "#000004"
# (it takes it for a placeholder) and silence would show violet instead of black
MEL_SCALE = ["rgb(0,0,4)", *pc.sequential.Magma[1:]]
CONFIDENCE_SCALE = "RdYlGn"
GREY = "#b0b0b0"


def presenting() -> bool:
    """Presenter mode (the sidebar's switch): larger type, fewer labels, thicker lines on every chart."""
    try:
        return bool(st.session_state.get("presenter", False))
    except Exception:  # outside a Streamlit run (a notebook, a unit test): a desk, not a projector
        return False


def font_px() -> int:
    return PRESENTER_FONT_SIZE if presenting() else FONT_SIZE


def label_step(n_labels: int, room_px: float, label_px: float) -> int:
    """Show every n-th of `n_labels` labels so that those shown, each `label_px` wide along the axis,
    fit in `room_px` without touching (presenter mode's larger type needs more room per label)."""
    if n_labels <= 0:
        return 1
    fits = max(1, int(room_px // max(1.0, label_px)))
    return max(1, -(-n_labels // fits))


def ordinal(n: int) -> str:
    """2 -> 2nd, 3 -> 3rd, 11 -> 11th: for "every 3rd label shown"."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def text_px(text: str, size: int | None = None) -> float:
    """Rough width of a label in pixels (0.6 em per character, a little more than most fonts need)."""
    return 0.6 * (size or font_px()) * max(1, len(text))


def stagger(spans: list[tuple[float, float]], gap: float = 0.0) -> list[int]:
    """A lane per label so that no two labels in one lane overlap: spans are (start, end) along the axis
    in any unit, lanes are numbered from 0. Greedy in order of start: the first lane with room."""
    lane_ends: list[float] = []
    lanes = [0] * len(spans)
    for i in sorted(range(len(spans)), key=lambda k: spans[k][0]):
        start, end = spans[i]
        lane = next((k for k, e in enumerate(lane_ends) if e + gap <= start), len(lane_ends))
        if lane == len(lane_ends):
            lane_ends.append(end)
        else:
            lane_ends[lane] = end
        lanes[i] = lane
    return lanes


def columns(spec: list[float] | int) -> list:
    """st.columns at a desk; in presenter mode the parts stack, full width, so charts keep their size."""
    if presenting():
        return [st.container() for _ in range(spec if isinstance(spec, int) else len(spec))]
    return st.columns(spec)


def wrap_title(title: str, size: int, room_px: float = ROOM_PX + 100) -> str:
    """A title broken into lines (<br>) that fit the chart's width, instead of running off both edges."""
    if "<br>" in title:
        return "<br>".join(wrap_title(part, size, room_px) for part in title.split("<br>"))
    limit = max(16, int(room_px // (0.55 * size)))
    lines, line = [], ""
    for word in title.split(" "):
        if line and len(line) + 1 + len(word) > limit:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "<br>".join([*lines, line])


def style(fig: go.Figure, title: str, x: str | None = None, y: str | None = None, height: int = 420) -> go.Figure:
    size = font_px()
    big = presenting()
    title = wrap_title(title, size + 4)
    extra_lines = title.count("<br>")
    fig.update_layout(
        title={"text": title, "font": {"size": size + 4}},
        font={"size": size},
        height=(int(height * 1.2) if big else height) + extra_lines * (size + 8),
        margin={"l": 70, "r": 30, "t": 60 + extra_lines * (size + 8), "b": 60},
        hoverlabel={"font_size": size},
    )
    if big:  # thicker lines: every drawn line 1.6 times as wide, at least 2 px
        for trace in fig.data:
            line = getattr(trace, "line", None)
            if line is not None and trace.type == "scatter" and "lines" in (trace.mode or "lines"):
                trace.line.width = max(2.0, 1.6 * (line.width or 2))
    fig.update_xaxes(automargin=True, title_standoff=14)  # long rotated tick labels push the title down
    fig.update_yaxes(automargin=True)
    if x is not None:
        fig.update_xaxes(title_text=x)
    if y is not None:
        fig.update_yaxes(title_text=y)
    return fig


def show(fig: go.Figure, key: str | None = None, on_select: bool = False):
    """Draw a figure, offer it as a standalone HTML file, and count what it costs to send (reported at the
    foot of each page). The camera in the chart's toolbar saves a PNG, made by the browser itself.
    With `on_select` a click on a point reruns the page and the selection is returned."""
    st.session_state["_page_bytes"] = st.session_state.get("_page_bytes", 0) + len(fig.to_json())
    extra = {"on_select": "rerun", "selection_mode": "points"} if on_select else {}
    event = st.plotly_chart(fig, key=key, theme=None, **extra,
                            config={"displaylogo": False, "toImageButtonOptions": {"scale": 2}})
    number = st.session_state["_chart_no"] = st.session_state.get("_chart_no", 0) + 1
    title = (fig.layout.title.text or "chart").split(":")[0]
    slug = "".join(c if c.isalnum() else "-" for c in title.lower()).strip("-")[:40] or "chart"
    st.download_button("Chart as HTML", data=lambda: fig.to_html(include_plotlyjs=True), file_name=f"{slug}.html",
                       mime="text/html", key=f"html_{key or number}", type="tertiary",
                       icon=":material/download:", help="An interactive copy that works offline (4 MB with plotly.js)")
    return event


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
