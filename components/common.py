"""House style for every chart: readable from the back of a room, titled, with units, and light to send."""

from __future__ import annotations

import html

import plotly.colors as pc
import plotly.graph_objects as go
import streamlit as st

from .lesson import lesson_bar

# plot widths to plan labels for: a full-width chart on a 1024 px screen, sidebar open, measured in Chromium
# (figure 564 px, plot 461 px at a desk; in presenter mode the page's padding grows: figure 494, plot 370-394)
ROOM_PX = 460
PRESENTER_ROOM_PX = 370
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
    in any unit, lanes are numbered from 0. Greedy in order of the labels' centres (the words' reading order;
    by their starts a long second word took the top lane from a short first one): the first lane with room."""
    lane_ends: list[float] = []
    lanes = [0] * len(spans)
    for i in sorted(range(len(spans)), key=lambda k: spans[k][0] + spans[k][1]):
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


def plot_room() -> float:
    """The plot width labels are planned for: presenter mode's larger padding leaves a full-width chart less."""
    return PRESENTER_ROOM_PX if presenting() else ROOM_PX


def column_room(share: float) -> float:
    """The room to plan a chart's labels for in a column of `columns()` that takes `share` of the width (they
    stack in presenter mode)."""
    return plot_room() if presenting() else ROOM_PX * share - 30


def wrap_title(title: str, size: int, room_px: float | None = None) -> str:
    """A title broken into lines (<br>) that fit the chart's width (the plot's room and its margins), instead of
    running off both edges."""
    room_px = room_px or plot_room() + 100
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


def style(fig: go.Figure, title: str, x: str | None = None, y: str | None = None, height: int = 420,
          room_px: float | None = None) -> go.Figure:
    size = font_px()
    big = presenting()
    title = wrap_title(title, size + 4, (room_px or plot_room()) + 100)
    lines = title.count("<br>") + 1
    # The title hangs from the top of the figure and the top margin holds all its lines (1.3 em each) and a gap
    # for the plot's top tick label. Plotly lifts a wrapped title's first line by about 0.7 em (measured in
    # Chromium: a 2-line title ran 16 px off the top), so a wrapped title is pushed down by as much; placed
    # "auto", wrapped lines ran down into the plot instead.
    lift = round(0.7 * (size + 4)) if lines > 1 else 0
    top = 8 + round(1.3 * (size + 4) * lines) + 18
    if any(a.yanchor == "bottom" and (a.y or 0) >= 0.95 for a in fig.layout.annotations):
        top += size + 10  # make_subplots' titles over the top row stand in the margin too
    fig.update_layout(
        title={"text": title, "font": {"size": size + 4}, "yref": "container", "y": 1.0, "yanchor": "top",
               "pad": {"t": 8 + lift}},
        font={"size": size},
        height=(int(height * 1.2) if big else height) + top - 60,
        margin={"l": 70, "r": 30, "t": top, "b": 60},
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


def legend_on_top(fig: go.Figure, room_px: float | None = None) -> go.Figure:
    """A horizontal legend standing on the plot area, under the title: the top margin grows by as many legend
    rows as its entries need in the plot's width (`room_px`, the chart's planned room by default), so the
    legend neither covers the title nor the plot (a legend at a fixed y above the plot ran into wrapped
    titles; five entries on a 1024 px projector wrapped into rows that ran up into the title)."""
    names = [t.name for t in fig.data if t.name and t.showlegend is not False]
    entry_px = [text_px(n) + 2.4 * font_px() for n in names]  # the symbol and the gap before the next entry
    room = (room_px or plot_room()) + 40
    rows, used = 1, 0.0
    for w in entry_px:
        if used and used + w > room:
            rows, used = rows + 1, 0.0
        used += w
    row_px = round(1.6 * font_px()) + 6
    fig.update_layout(legend={"orientation": "h", "y": 1.0, "yanchor": "bottom", "x": 0, "xanchor": "left"},
                      margin={"t": (fig.layout.margin.t or 60) + rows * row_px})
    if rows > 1 and fig.layout.height:  # the rows past the first come on top of the plot's height
        fig.update_layout(height=fig.layout.height + (rows - 1) * row_px)
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
    # The file is made on click (a callable), under an id that lives for one script run; a click that also
    # reran the page could retire that id before the browser fetched it (CI once waited 120 s for nothing).
    st.download_button("Chart as HTML", data=lambda: fig.to_html(include_plotlyjs=True), file_name=f"{slug}.html",
                       mime="text/html", key=f"html_{key or number}", type="tertiary", on_click="ignore",
                       icon=":material/download:", help="An interactive copy that works offline (4 MB with plotly.js)")
    return event


# Streamlit's captions and muted text are grey at 60 % opacity (about 3.7:1 on white): under WCAG AA's 4.5:1
# for small text. One darker grey for every caption, at a desk and on a projector (6.7:1 on white, 6:1 on
# an st.info's blue).
_CONTRAST_CSS = """
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] *,
[data-testid="stWidgetLabel"] small, [data-testid="stMetricLabel"], [data-testid="stMetricLabel"] *,
[data-testid="stFileUploaderDropzoneInstructions"] small, [data-testid="stFileChipName"] + small
{ color: rgb(90, 92, 105) !important; }
"""

# Presenter mode, the whole page: Streamlit sizes nearly everything in rem (body 1 rem, captions, widget
# labels and table cells 0.875 rem) and its data grid converts rem to px by the root's size, so one root
# size of 23 px makes body text 23 px and every caption, label, table cell and metric label 20 px.
# What Streamlit draws smaller than 0.875 rem (slider ends, tooltips, file chips) is lifted to 20 px;
# headings, 1.44 times larger too, are brought back to sizes a projected screen still has room for.
PRESENTER_ROOT_PX = 23
_PRESENTER_CSS = f"""
html {{ font-size: {PRESENTER_ROOT_PX}px; }}
h1 {{ font-size: 2.2rem !important; }}
h2 {{ font-size: 1.6rem !important; }}
h3 {{ font-size: 1.3rem !important; }}
[data-testid="stVerticalBlock"] {{ gap: 16px; }}  /* the desk's spacing: larger type, not larger gaps */
[data-testid="stSliderTickBarMin"], [data-testid="stSliderTickBarMax"], [data-testid="stSliderThumbValue"],
[data-testid="stTooltipContent"], [data-testid="stTooltipContent"] *, [data-testid="stFileChip"] *,
[data-testid="stMetricDelta"], [data-testid="stMetricDelta"] *, [data-testid="stMarkdownContainer"] small,
[data-testid="stCaptionContainer"] small, [data-testid="stHtml"] small {{ font-size: max(20px, 0.875rem) !important; }}
"""


def page_css() -> None:
    """The house CSS, once per run (app.py, before the page): captions dark enough for WCAG AA, and in
    presenter mode everything on the page, not only the charts, large enough for the back of a room."""
    st.html(f"<style>{_CONTRAST_CSS}{_PRESENTER_CSS if presenting() else ''}</style>")


def page_start(title: str, what: str) -> None:
    """Title and the short 'what am I looking at' note every page opens with."""
    st.session_state["_page_bytes"] = 0
    st.session_state["_chart_no"] = 0
    st.title(title)
    st.info(what)


def page_end() -> None:
    """The lesson path's Previous / Next (on its pages), then what the page cost to send."""
    lesson_bar()
    sent = st.session_state.get("_page_bytes", 0)
    st.caption(f"Chart data sent to the browser for this page: {sent / 1e6:.2f} MB.")


def safe(text: str) -> str:
    """User-derived text (file names, transcripts) for HTML and plotly labels: shown, never interpreted.
    The double quote as &#34;, not &quot;: plotly decodes numeric entities but showed "&quot;" as written."""
    return html.escape(text, quote=True).replace("&quot;", "&#34;")


def plain(text: str) -> None:
    """Show user-derived text exactly as characters: no Markdown, no LaTeX (a `$` stays a dollar)."""
    st.text(text)


_MARKDOWN_SPECIALS = "\\`*_{}[]()#+-.!$<>|~"


def md_escape(text: str) -> str:
    """Text for Markdown elements (st.error, st.caption): every special character taken literally."""
    return "".join("\\" + c if c in _MARKDOWN_SPECIALS else c for c in text)


def error(message: str) -> None:
    st.error(md_escape(message))
