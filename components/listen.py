"""Hear it: the words placed on the log-mel, a chosen span played back and marked where it was drawn.

Word times are whisper's own estimates (dynamic time warping over a few attention heads), so every place
that draws them says so and lets a person check them by ear.
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from whisper_inquiry.audio.load import to_wav_bytes
from whisper_inquiry.trace.schema import FRAME_S, TokenStep, Trace, Word

from .common import MEL_SCALE, font_px, plot_room, presenting, safe, stagger, style, text_px

SAMPLE_RATE = 16_000
MAX_COLUMNS = 1200  # mel columns sent for the overview picture (a screen has no more pixels across)
HIGHLIGHT = "rgba(255,215,0,0.22)"

DTW_NOTE = ("Word times are whisper's estimates, found by dynamic time warping through a few cross-attention "
            "heads, not measured: the first word is often pulled back to 0 s, and a short word can get zero "
            "length. Pick a word to hear its span and judge by ear.")


def full_mel(trace: Trace, max_columns: int = MAX_COLUMNS) -> tuple[np.ndarray, np.ndarray]:
    """The log-mel of the audio's own frames across every window (padding left out), averaged in blocks of
    columns to at most `max_columns`: (n_mels, columns) and the time of each column's centre in s."""
    parts, times = [], []
    for w in trace.windows:
        n = max(1, int(round(w.content_s / FRAME_S)))
        parts.append(w.mel[:, :n])
        times.append(w.start_s + (np.arange(n) + 0.5) * FRAME_S)
    mel, t = np.concatenate(parts, axis=1), np.concatenate(times)
    f = max(1, int(np.ceil(mel.shape[1] / max_columns)))
    n = mel.shape[1] // f
    if n == 0:
        return mel.astype(np.float32), t
    return mel[:, : n * f].reshape(mel.shape[0], n, f).mean(-1).astype(np.float32), t[: n * f].reshape(n, f).mean(-1)


def word_lanes(words: list[Word], duration_s: float, room_px: float | None = None) -> list[int]:
    """A lane for each word's label so that labels never overlap, whatever the words' estimated spans."""
    room_px = room_px or plot_room()
    s_per_px = max(duration_s, 1e-3) / room_px
    spans = []
    for w in words:
        centre, half = (w.start_s + w.end_s) / 2, text_px(w.word.strip()) * s_per_px / 2
        spans.append((centre - half, centre + half))
    return stagger(spans, gap=6 * s_per_px)


MAX_LANES_PER_LINE = 2  # more lanes of labels and a reader loses the words' order
MAX_LINES = 6


def line_count(words: list[Word], duration_s: float, room_px: float | None = None) -> int:
    """How many lines, each an equal stretch of time the full width, the words need so that no line holds
    more than MAX_LANES_PER_LINE lanes of labels: long speech is set like a page of text, read line by line."""
    room_px = room_px or plot_room()
    for n in range(1, MAX_LINES + 1):
        span = max(duration_s, 1e-3) / n
        lines = [[w for w in words if min(n - 1, int(((w.start_s + w.end_s) / 2) // span)) == k] for k in range(n)]
        if all(max(word_lanes(ws, span, room_px), default=0) < MAX_LANES_PER_LINE for ws in lines):
            return n
    return MAX_LINES


def words_on_mel_figure(trace: Trace, highlight: tuple[float, float] | None = None,
                        title: str = "Sound becoming text: the log-mel with each word where whisper placed it",
                        room_px: float | None = None) -> go.Figure:
    """The words above the log-mel (click one to hear it), each word's span a bar. Long speech is broken into
    lines, each a stretch of time across the full width, so its words keep their reading order in at most
    two lanes per line instead of a dozen staggered rows."""
    room_px = room_px or plot_room()
    mel, times = full_mel(trace)
    words = trace.words
    duration_s = max(trace.duration_s, 0.1)
    n_lines = line_count(words, duration_s, room_px)
    span = duration_s / n_lines
    line_of = [min(n_lines - 1, int(((w.start_s + w.end_s) / 2) // span)) for w in words]
    lanes_of: dict[int, int] = {}
    n_lanes = []
    for k in range(n_lines):
        members = [i for i, line in enumerate(line_of) if line == k]
        lanes = word_lanes([words[i] for i in members], span, room_px)
        lanes_of.update(zip(members, lanes))
        n_lanes.append(max(lanes, default=0) + 1)
    words_px, mel_px = [int(1.9 * font_px()) * n + 24 for n in n_lanes], 150 if n_lines > 1 else 220
    heights = [h for k in range(n_lines) for h in (words_px[k], mel_px)]
    fig = make_subplots(rows=2 * n_lines, cols=1, row_heights=[h / sum(heights) for h in heights],
                        vertical_spacing=min(0.03, 0.3 / (2 * n_lines)))
    for k in range(n_lines):
        t0, t1 = k * span, min(duration_s, (k + 1) * span)
        top, bottom = 2 * k + 1, 2 * k + 2
        members = [i for i, line in enumerate(line_of) if line == k]
        fig.add_trace(go.Scatter(
            x=[(words[i].start_s + words[i].end_s) / 2 for i in members], y=[lanes_of[i] - 0.4 for i in members],
            mode="markers+text", text=[safe(words[i].word.strip()) for i in members], textposition="middle center",
            textfont={"size": font_px(), "color": "#111"}, marker={"size": 26, "color": "rgba(0,0,0,0)"},
            customdata=[[safe(words[i].word.strip()), words[i].start_s, words[i].end_s, words[i].prob, i]
                        for i in members],
            hovertemplate="%{customdata[0]}: %{customdata[1]:.2f}-%{customdata[2]:.2f} s, p = %{customdata[3]:.2f}"
                          "<extra>click to hear it</extra>", showlegend=False, name="words", cliponaxis=False),
            row=top, col=1)
        for i in members:  # the span each word was given, as a bar in its lane
            w = words[i]
            fig.add_trace(go.Scatter(x=[w.start_s, max(w.end_s, w.start_s + 0.02)], y=[lanes_of[i]] * 2,
                                     mode="lines", line={"color": "#4c78a8", "width": 4}, hoverinfo="skip",
                                     showlegend=False), row=top, col=1)
        short = [i for i in members if words[i].end_s - words[i].start_s < 0.06]
        if short:  # DTW gave these (almost) no time: a bar would be invisible, so a tick marks where they sit
            fig.add_trace(go.Scatter(x=[words[i].start_s for i in short], y=[lanes_of[i] for i in short],
                                     mode="markers", showlegend=False,
                                     marker={"symbol": "line-ns", "size": 14, "line": {"width": 3, "color": "#d62728"}},
                                     customdata=[words[i].end_s - words[i].start_s for i in short],
                                     hovertemplate="given %{customdata:.2f} s by DTW<extra></extra>"), row=top, col=1)
        cols = (times >= t0 - 0.01) & (times <= t1 + 0.01)
        fig.add_trace(go.Heatmap(z=mel[:, cols], x=times[cols], colorscale=MEL_SCALE, showscale=False,
                                 hovertemplate="%{x:.2f} s, mel bin %{y}<extra></extra>"), row=bottom, col=1)
        for i in members:
            fig.add_vline(x=words[i].start_s, line_width=1, line_color="rgba(255,255,255,0.6)", row=bottom, col=1)
        if highlight is not None and highlight[1] >= t0 and highlight[0] <= t1:
            for row in (top, bottom):
                fig.add_vrect(x0=max(highlight[0], t0), x1=min(max(highlight[1], highlight[0] + 0.02), t1),
                              fillcolor=HIGHLIGHT, line={"color": "#e6a800", "width": 2}, row=row, col=1)
        fig.update_yaxes(visible=False, range=[n_lanes[k] - 0.7, -1.0], row=top, col=1)
        fig.update_xaxes(showgrid=False, showticklabels=False, range=[t0, t1], row=top, col=1)
        fig.update_yaxes(title_text="pitch (mel)" if n_lines == 1 else "", showticklabels=False, row=bottom, col=1)
        fig.update_xaxes(range=[t0, t1], row=bottom, col=1,
                         title_text="time (s)" if k == n_lines - 1 else None)
    fig.update_layout(plot_bgcolor="white", clickmode="event+select")
    if n_lines > 1:
        title += f", in {n_lines} lines read like a page"
    fig = style(fig, title, height=sum(heights) + 60 * n_lines + 40)
    return fig.update_layout(margin={"t": fig.layout.margin.t + 12})  # the first lane's labels rise above it


def mark_span(fig: go.Figure, t0: float, t1: float, label: str = "") -> go.Figure:
    """Shade [t0, t1] s over every subplot of a figure that has time on x, and name it."""
    where = {"row": "all", "col": "all"} if fig._grid_ref is not None else {}  # a figure of subplots, or one plot
    fig.add_vrect(x0=t0, x1=max(t1, t0 + 0.02), fillcolor=HIGHLIGHT, line={"color": "#e6a800", "width": 2},
                  **where, **({"annotation_text": label, "annotation_position": "top left",
                               "annotation_font_size": font_px() - 2} if label else {}))
    return fig


def word_of_token(steps: list[TokenStep], words: list[Word]) -> list[int | None]:
    """For each step, the index of the word its text belongs to (None for timestamp and end-of-text
    tokens). Words are cut from the same token text, so character offsets line the two up."""
    bounds, end = [], 0
    for w in words:
        end += len(w.word)
        bounds.append(end)
    out: list[int | None] = []
    offset, k = 0, 0
    for s in steps:
        if s.is_timestamp or s.is_eot or not words:
            out.append(None)
            continue
        while k < len(bounds) - 1 and offset >= bounds[k]:
            k += 1
        out.append(k)
        offset += len(s.text)
    return out


def pad_span(t0: float, t1: float, duration_s: float, pad_s: float = 0.08) -> tuple[float, float]:
    """A word's span widened a little (DTW's edges are rough) and kept inside the audio."""
    return max(0.0, t0 - pad_s), min(duration_s, max(t1, t0 + 0.05) + pad_s)


def play(audio: np.ndarray, t0: float, t1: float, autoplay: bool = False) -> None:
    """Play [t0, t1] s of the 16 kHz audio: the slice itself is sent, so the player holds only that span."""
    a, b = int(t0 * SAMPLE_RATE), max(int(t1 * SAMPLE_RATE), int(t0 * SAMPLE_RATE) + 160)
    span = audio[a:b]
    # the browser's player counts whole seconds: a word shorter than one read "0:00 / 0:00", as if there were
    # no sound. Silence after it makes the player's second, and the caption says so.
    short = len(span) < SAMPLE_RATE
    sent = np.concatenate([span, np.zeros(SAMPLE_RATE - len(span), dtype=span.dtype)]) if short else span
    st.audio(to_wav_bytes(sent), format="audio/wav", autoplay=autoplay)
    st.caption(f"{len(span) / SAMPLE_RATE:.2f} s of audio, {t0:.2f}-{t0 + len(span) / SAMPLE_RATE:.2f} s of the clip"
               + ("; then silence up to 1 s, so the player can count it" if short else ""))


def clicked_index(event, curve: int = 0) -> int | None:
    """The point a reader clicked on trace number `curve` of a chart drawn with on_select (the event as
    st.plotly_chart returns it or as session state keeps it); None when nothing is selected."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for p in points:
        if p.get("curve_number", curve) == curve and p.get("point_index") is not None:
            return int(p["point_index"])
    return None


def word_picker(trace: Trace, key: str, autoplay: bool = False) -> int | None:
    """Choose a word from a list (a click on a chart lands here through `sync_click`) and play its span.
    Returns the word's index."""
    words = trace.words
    if not words:
        return None
    options = [None, *range(len(words))]
    choice = st.selectbox("Hear a word", options, key=key,
                          format_func=lambda i: "choose a word (or click one in the chart)" if i is None else
                          f"{words[i].word.strip()}  ({words[i].start_s:.2f}-{words[i].end_s:.2f} s)")
    if choice is not None:
        play(trace.audio, *pad_span(words[choice].start_s, words[choice].end_s, trace.duration_s),
             autoplay=autoplay)
    return choice


def clicked_word(event) -> int | None:
    """The word a reader clicked on the words-on-mel picture (its index rides in each point's customdata,
    since a long clip's words are spread over one trace per line); None when nothing is selected."""
    try:
        points = event["selection"]["points"]
    except (KeyError, TypeError):
        return None
    for p in points:
        data = p.get("customdata")
        if isinstance(data, (list, tuple)) and len(data) == 5:
            return int(data[4])
    return None


def sync_click(key: str, clicked: int | None) -> bool:
    """Make a new click on a chart the picker's choice (once: the picker stays free to choose another).
    Call before the picker is drawn. True on the run where the click is new, so the player starts by itself."""
    if clicked is None or st.session_state.get(f"{key}_last_click") == clicked:
        return False
    st.session_state[f"{key}_last_click"] = clicked
    st.session_state[key] = clicked
    return True


def words_chart(trace: Trace, key: str, title: str | None = None) -> int | None:
    """The clickable words-on-mel picture with its word picker and player; the chosen word is shaded."""
    from .common import show

    words = trace.words
    clicked = clicked_word(st.session_state.get(f"{key}_chart"))  # the click that started this rerun
    fresh = sync_click(key, clicked)
    chosen = st.session_state.get(key)
    highlight = (words[chosen].start_s, words[chosen].end_s) if chosen is not None and chosen < len(words) else None
    fig = words_on_mel_figure(trace, highlight, **({"title": title} if title else {}))
    show(fig, key=f"{key}_chart", on_select=True)
    picked = word_picker(trace, key, autoplay=fresh)
    if presenting():
        return picked
    st.caption(DTW_NOTE)
    return picked
