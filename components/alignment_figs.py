"""Alignment: which moment of audio each written token attended to, and the word timings DTW draws from it."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from whisper_inquiry.trace import AUDIO_CTX_S, FRAME_S, Attempt, Window

from .common import ATTENTION_SCALE, MEL_SCALE, safe, style
from .token_figs import label


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
    fig.update_yaxes(tickmode="array", tickvals=list(range(len(labels))), ticktext=labels, autorange="reversed",
                     automargin=True, title_standoff=12)
    return style(fig, title, "audio time (s)", "token being written", max(420, 18 * len(labels) + 140))


def dtw_figure(attempt: Attempt, window: Window) -> go.Figure:
    """The log-mel with the DTW path (token row against time) and each word's span drawn over it."""
    content = int(window.content_s / FRAME_S)
    mel = window.mel[:, : max(2, content)]
    mel = mel[:, : mel.shape[1] // 2 * 2].reshape(mel.shape[0], -1, 2).mean(-1)  # 20 ms columns
    times = window.start_s + (np.arange(mel.shape[1]) + 0.5) * AUDIO_CTX_S
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.45, 0.55], vertical_spacing=0.04)
    fig.add_trace(go.Heatmap(z=mel, x=times, colorscale=MEL_SCALE, showscale=False,
                             hovertemplate="%{x:.2f} s<extra></extra>"), row=1, col=1)
    for i, word in enumerate(attempt.words):
        fig.add_vline(x=word.start_s, line_width=1.5, line_color="white", row=1, col=1)
        fig.add_annotation(x=(word.start_s + word.end_s) / 2, y=mel.shape[0] * (0.88 if i % 2 else 0.72),
                           text=safe(word.word.strip()), showarrow=False, font={"size": 13, "color": "black"},
                           bgcolor="rgba(255,255,255,0.85)", row=1, col=1)
    if attempt.alignment_path is not None:
        path = attempt.alignment_path
        labels = [safe(label(attempt.steps[r])) for r in path[:, 0]]
        fig.add_trace(go.Scatter(x=window.start_s + path[:, 1] * AUDIO_CTX_S, y=path[:, 0], mode="lines",
                                 line={"color": "#d62728", "width": 3}, customdata=labels,
                                 hovertemplate="%{customdata} at %{x:.2f} s<extra></extra>", name="DTW path"),
                      row=2, col=1)
        rows = sorted(set(path[:, 0].tolist()))
        fig.update_yaxes(tickmode="array", tickvals=rows, ticktext=[safe(label(attempt.steps[r])) for r in rows],
                         autorange="reversed", automargin=True, tickfont={"size": 11}, row=2, col=1)
    fig.update_layout(showlegend=False)
    fig.update_xaxes(title_text="time (s)", row=2, col=1)
    fig.update_yaxes(showticklabels=False, row=1, col=1)
    return style(fig, "Word timings: dynamic time warping through the alignment heads' attention",
                 height=max(560, 16 * len(attempt.steps) + 360))
