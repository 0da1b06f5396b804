"""Figures of the issue-12 experiments: occlusion map, surgery span on the log-mel, neurons, pitch and onsets.

Each takes a frozen result (duck-typed, so this module imports no torch) and returns a plotly figure,
titled, with units on both axes, in the house style.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from whisper_inquiry.audio import signal

from .common import MEL_SCALE, font_px, legend_on_top, plot_room, safe, stagger, style, text_px

DROP_SCALE = "RdBu_r"  # red: the token lost probability; blue: it gained


@dataclass(frozen=True)
class WordMark:
    """A word written above the log-mel; red when surgery removed it."""

    text: str
    start_s: float
    end_s: float
    removed: bool = False


def token_label(text: str, index: int) -> str:
    shown = text.replace("\n", "\\n").strip() or repr(text)
    return f"{index}: {safe(shown)}"


def occlusion_figure(result) -> go.Figure:
    """Tokens x hidden window; plus an invisible marker per cell so a click selects (and plays) it."""
    starts = np.asarray(result.starts_s, dtype=np.float32)
    window_s = result.options.window_s
    centres = starts + window_s / 2
    labels = [token_label(t, i) for i, t in enumerate(result.tokens)]
    drop = result.drop
    limit = float(max(np.abs(drop).max(), 0.5))
    fig = go.Figure(go.Heatmap(z=drop, x=centres, y=labels, colorscale=DROP_SCALE, zmid=0, zmin=-limit, zmax=limit,
                               colorbar={"title": "nats lost"}, hoverinfo="skip"))
    xs, ys, data = [], [], []
    for i, label in enumerate(labels):
        for j, c in enumerate(centres):
            xs.append(float(c))
            ys.append(label)
            data.append([j, i, float(drop[i, j])])
    # a transparent marker on every cell: plotly fires clicks (and Streamlit selections) on points, not on heatmaps
    fig.add_trace(go.Scatter(x=xs, y=ys, mode="markers", customdata=data, showlegend=False,
                             marker={"size": 16, "color": "rgba(0,0,0,0)"},
                             hovertemplate="%{y}<br>hiding %{x:.2f} s (centre): log-prob drops "
                                           "%{customdata[2]:.2f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_layout(clickmode="event+select", dragmode=False, hoverdistance=60)
    return style(fig, f"Log-probability each token loses when {window_s:g} s is hidden ({result.options.fill})",
                 "centre of the hidden window (s)", "token (in writing order)", max(380, 140 + 26 * len(labels)))


def _mel_heatmap(mel: np.ndarray, duration_s: float, max_cols: int = 750) -> go.Heatmap:
    frames = max(1, min(mel.shape[1], int(np.ceil(duration_s / 0.01))))
    m = mel[:, :frames]
    step = max(1, int(np.ceil(frames / max_cols)))
    usable = max(step, frames // step * step)
    m = m[:, :usable].reshape(m.shape[0], -1, step).mean(-1)
    times = (np.arange(m.shape[1]) * step + step / 2) * 0.01
    return go.Heatmap(z=m.astype(np.float32), x=times, y=np.arange(m.shape[0]), colorscale=MEL_SCALE,
                      showscale=False, hovertemplate="%{x:.2f} s, mel band %{y}<extra></extra>")


def surgery_span_figure(mel: np.ndarray, duration_s: float, span_s: tuple[float, float],
                        words: list[WordMark] = (), room_px: float | None = None) -> go.Figure:
    """The log-mel to drag a span on (box select), the chosen span shaded and the words written under it."""
    room_px = room_px or plot_room()
    fig = go.Figure(_mel_heatmap(mel, duration_s))
    n_mels = mel.shape[0]
    xs = np.arange(0, duration_s, 0.02)
    fig.add_trace(go.Scatter(x=xs, y=np.full(len(xs), n_mels / 2), mode="markers", hoverinfo="skip",
                             marker={"size": 30, "color": "rgba(0,0,0,0)"}, showlegend=False))
    fig.add_vrect(x0=span_s[0], x1=span_s[1], fillcolor="#00bfff", opacity=0.35, line_width=2,
                  line_color="#00bfff")
    # each label in the first lane where it touches no other: words stay readable however fast the speech
    s_per_px = max(duration_s, 1e-3) / room_px
    spans = [((w.start_s + w.end_s) / 2 - text_px(w.text) * s_per_px / 2,
              (w.start_s + w.end_s) / 2 + text_px(w.text) * s_per_px / 2) for w in words]
    lanes = stagger(spans, gap=8 * s_per_px)
    n_lanes = max(lanes, default=0) + 1
    lane_mels = n_mels * 0.14  # one lane of text, in mel bands of height
    for w, lane in zip(words, lanes):
        fig.add_annotation(x=(w.start_s + w.end_s) / 2, y=n_mels + lane_mels * (lane + 0.6), text=safe(w.text),
                           showarrow=False, font={"size": font_px(), "color": "#d62728" if w.removed else "#222"})
    fig.update_yaxes(range=[-0.5, n_mels + lane_mels * (n_lanes + 0.3)],
                     tickvals=list(range(0, n_mels + 1, 20)))  # mel bands only: the words above have no band
    fig.update_layout(dragmode="select", selectdirection="h")
    return style(fig, "Log-mel input: drag across it to choose the span whose encoder states are replaced",
                 "time (s)", "mel band (low to high pitch)", 340 + 34 * n_lanes)


def neuron_figure(mel: np.ndarray, duration_s: float, found) -> go.Figure:
    """The log-mel above each chosen neuron's activation over time, on one time axis."""
    k = len(found.neurons)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.35, 0.65], vertical_spacing=0.06)
    fig.add_trace(_mel_heatmap(mel, duration_s), row=1, col=1)
    fig.add_trace(go.Heatmap(z=found.activations, x=found.times_s, y=[f"neuron {n}" for n in found.neurons],
                             colorscale="Viridis", colorbar={"title": "GELU out", "y": 0.33, "len": 0.65},
                             hovertemplate="%{y} at %{x:.2f} s: %{z:.2f}<extra></extra>"), row=2, col=1)
    for row in (1, 2):
        fig.add_vrect(x0=found.start_s, x1=found.end_s, line_width=2, line_color="#ff4b4b", row=row, col=1)
    fig.update_yaxes(title_text="mel band", row=1, col=1)
    fig.update_yaxes(title_text="neuron", autorange="reversed", row=2, col=1)
    fig.update_xaxes(title_text="time (s)", row=2, col=1)
    return style(fig, f"Encoder block {found.layer}: the {k} MLP neurons most active in the red span, over time",
                 height=320 + 45 * k)


def pitch_onset_figure(samples: np.ndarray, pitch, onset_times_s: np.ndarray, onset: np.ndarray) -> go.Figure:
    """Spectrogram (to 1 kHz, where the voice's fundamental lives) with the pYIN pitch drawn on it, and
    onset strength below on the same time axis."""
    freqs_hz, times_s, db = signal.stft_db(samples)
    keep = freqs_hz <= 1000
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.65, 0.35], vertical_spacing=0.08)
    fig.add_trace(go.Heatmap(z=db[keep], x=times_s, y=freqs_hz[keep], colorscale=MEL_SCALE, showscale=False,
                             zmin=float(db.max() - 80), zmax=float(db.max()),
                             hovertemplate="%{x:.2f} s, %{y:.0f} Hz: %{z:.0f} dB<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=pitch.times_s, y=pitch.f0_hz, mode="lines", name="pitch (pYIN)",
                             line={"color": "#00e5ff", "width": 3}, connectgaps=False,
                             hovertemplate="%{x:.2f} s: %{y:.0f} Hz<extra>pitch</extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=onset_times_s, y=onset, mode="lines", name="onset strength",
                             line={"color": "#ff7f0e", "width": 2}, fill="tozeroy",
                             hovertemplate="%{x:.2f} s: %{y:.2f}<extra>onset</extra>"), row=2, col=1)
    fig.update_yaxes(title_text="frequency (Hz)", row=1, col=1)
    fig.update_yaxes(title_text="onset strength", row=2, col=1)
    fig.update_xaxes(title_text="time (s)", row=2, col=1)
    return legend_on_top(style(fig, "Pitch of the voice (pYIN, cyan) on the spectrogram, and where sounds begin "
                               "(onsets)", height=560))
