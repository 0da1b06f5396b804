"""Alignment: which moment of audio each written token attended to, and the word timings DTW draws from it."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from whisper_inquiry.trace.schema import AUDIO_CTX_S, FRAME_S, Attempt, Window

from .common import (
    ATTENTION_SCALE,
    MEL_SCALE,
    font_px,
    label_step,
    ordinal,
    plot_room,
    safe,
    stagger,
    style,
    text_px,
)
from .token_figs import label
from .tree_figs import short

MAX_ROWS_PX = 760  # the tallest a chart of one row per token grows; past it, labels are thinned


def short_label(step) -> str:
    """A token for a crowded axis: ␣ for a leading space, <|8.00|> as 8.00s, end-of-text as END."""
    return label(step) if not step.text.startswith("<|") else short(step.text)


def cross_matrix(attempt: Attempt, window: Window, layer: int | None, head: int | None) -> np.ndarray:
    """(n_tokens, columns over the audio content): one head, or the mean of whisper's alignment heads."""
    cross = attempt.cross
    w = cross.weights.astype(np.float32)
    if layer is None:
        z = np.mean([w[lyr, hd] for lyr, hd in cross.alignment_heads], axis=0)
    else:
        z = w[layer, head]
    columns = int(np.ceil(window.content_s / cross.seconds_per_column))
    return z[:, : max(1, columns)]


def cross_attention_figure(attempt: Attempt, window: Window, z: np.ndarray, title: str,
                           normalise_rows: bool) -> go.Figure:
    if normalise_rows:
        z = z / np.maximum(z.max(axis=1, keepdims=True), 1e-9)
    times = window.start_s + (np.arange(z.shape[1]) + 0.5) * attempt.cross.seconds_per_column
    labels = [safe(label(s)) for s in attempt.steps]
    fig = go.Figure(go.Heatmap(z=z, x=times, y=list(range(len(labels))), colorscale=ATTENTION_SCALE,
                               customdata=np.array(labels)[:, None].repeat(z.shape[1], 1),
                               hovertemplate="%{customdata} looks at %{x:.2f} s: %{z:.3f}<extra></extra>"))
    row_px = int(1.45 * font_px())
    plot_px = min(MAX_ROWS_PX, max(260, row_px * len(labels)))  # long clips: every n-th token named, hover for all
    every = label_step(len(labels), plot_px, row_px)
    shown = list(range(0, len(labels), every))
    fig.update_yaxes(tickmode="array", tickvals=shown, ticktext=[labels[i] for i in shown], autorange="reversed",
                     automargin=True, title_standoff=12)
    return style(fig, title, "audio time (s)", "token being written" + (f" (every {ordinal(every)})" if every > 1
                                                                        else ""), plot_px + 160)


MAX_LANES = 3  # word-label lanes over the log-mel


def dtw_figure(attempt: Attempt, window: Window, highlight: tuple[float, float] | None = None,
               room_px: float | None = None) -> go.Figure:
    """The log-mel with each word's span drawn over it (labels in lanes, never on top of each other) and,
    below, the DTW path (token row against time), its token labels thinned to what the height holds."""
    room_px = room_px or plot_room()
    content = int(window.content_s / FRAME_S)
    mel = window.mel[:, : max(2, content)]
    mel = mel[:, : mel.shape[1] // 2 * 2].reshape(mel.shape[0], -1, 2).mean(-1)  # 20 ms columns
    times = window.start_s + (np.arange(mel.shape[1]) + 0.5) * AUDIO_CTX_S
    size = font_px()
    words = attempt.words
    path_labels = [short_label(s) for s in attempt.steps]
    longest = max((text_px(t) for t in path_labels), default=0)
    room_px = max(200.0, room_px - max(0.0, longest + 30 - 70))  # the path's tick labels widen the left margin
    s_per_px = max(window.content_s, 1e-3) / room_px
    spans = [((w.start_s + w.end_s) / 2 - text_px(w.word.strip()) * s_per_px / 2,
              (w.start_s + w.end_s) / 2 + text_px(w.word.strip()) * s_per_px / 2) for w in words]
    lanes = stagger(spans, gap=6 * s_per_px)
    # at most three lanes, so the words still read left to right: a long clip on a narrow screen needed 15
    # and scrambled the order; the words past them keep their line on the log-mel and their hover
    labelled = [k for k, lane in enumerate(lanes) if lane < MAX_LANES]
    unlabelled = len(words) - len(labelled)
    n_lanes = max([lanes[k] for k in labelled], default=0) + 1
    n_rows = len(attempt.steps)
    row_px = int(1.5 * size)  # each token row of the path gets room for one label
    path_px = min(MAX_ROWS_PX, max(260, row_px * n_rows))  # long clips: labels thinned, not a page 9,000 px tall
    lanes_px = int(1.8 * size) * n_lanes
    mel_px = 260
    total = lanes_px + mel_px + path_px
    fig = make_subplots(rows=3, cols=1, shared_xaxes=True, vertical_spacing=0.02,
                        row_heights=[lanes_px / total, mel_px / total, path_px / total])
    fig.add_trace(go.Scatter(
        x=[(words[k].start_s + words[k].end_s) / 2 for k in labelled], y=[lanes[k] for k in labelled], mode="text",
        text=[safe(words[k].word.strip()) for k in labelled], textfont={"size": size}, cliponaxis=False,
        customdata=[[words[k].start_s, words[k].end_s] for k in labelled],
        hovertemplate="%{text}: %{customdata[0]:.2f}-%{customdata[1]:.2f} s<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Heatmap(z=mel, x=times, colorscale=MEL_SCALE, showscale=False,
                             hovertemplate="%{x:.2f} s<extra></extra>"), row=2, col=1)
    for w in words:
        fig.add_vline(x=w.start_s, line_width=1.5, line_color="white", row=2, col=1)
    if attempt.alignment_path is not None:
        path = attempt.alignment_path
        labels = [safe(path_labels[r]) for r in path[:, 0]]
        fig.add_trace(go.Scatter(x=window.start_s + path[:, 1] * AUDIO_CTX_S, y=path[:, 0], mode="lines",
                                 line={"color": "#d62728", "width": 3}, customdata=labels,
                                 hovertemplate="%{customdata} at %{x:.2f} s<extra></extra>", name="DTW path"),
                      row=3, col=1)
        rows = sorted(set(path[:, 0].tolist()))
        every = label_step(len(rows), path_px - 40, row_px)
        shown = rows[::every]
        fig.update_yaxes(tickmode="array", tickvals=shown, ticktext=[safe(path_labels[r]) for r in shown],
                         autorange="reversed", automargin=True, title_text="token" + (
                             f" (every {ordinal(every)})" if every > 1 else ""), row=3, col=1)
    if highlight is not None:
        fig.add_vrect(x0=highlight[0], x1=max(highlight[1], highlight[0] + 0.02), fillcolor="rgba(255,215,0,0.35)",
                      line={"color": "#e6a800", "width": 2}, row="all", col=1)
    fig.update_layout(showlegend=False, plot_bgcolor="white")
    fig.update_xaxes(title_text="time (s)", row=3, col=1)
    fig.update_xaxes(showgrid=False, row=1, col=1)
    fig.update_yaxes(visible=False, range=[n_lanes - 0.5, -0.5], row=1, col=1)
    fig.update_yaxes(showticklabels=False, title_text="log-mel", row=2, col=1)
    title = "Word timings: dynamic time warping through the alignment heads' attention"
    if unlabelled:
        title += f" ({unlabelled} words left unlabelled for room: pick one below, or zoom)"
    return style(fig, title, height=total + 160)
