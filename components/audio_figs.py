"""The sound side: waveform, linear spectrogram, Whisper's exact log-mel and its filterbank."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from whisper_inquiry.audio import signal
from whisper_inquiry.audio.load import SAMPLE_RATE
from whisper_inquiry.trace.schema import FRAME_S, Trace, Window

from .common import MEL_SCALE, style


def waveform_figure(trace: Trace) -> go.Figure:
    t, lo, hi = signal.waveform_envelope(trace.audio)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=np.concatenate([t, t[::-1]]), y=np.concatenate([hi, lo[::-1]]), fill="toself",
                             line={"width": 0.5, "color": "#4c78a8"}, hoverinfo="skip", name="waveform"))
    for w in trace.windows[1:]:
        fig.add_vline(x=w.start_s, line_dash="dash", line_color="grey", annotation_text=f"window {w.index + 1}")
    fig.update_layout(showlegend=False)
    return style(fig, "Waveform: air pressure over time (16,000 samples a second)", "time (s)", "amplitude", 300)


def spectrogram_figure(samples: np.ndarray, start_s: float = 0.0) -> go.Figure:
    freqs, times, db = signal.stft_db(samples)
    times = times + start_s  # the audio's own clock, shared with every other chart
    fig = go.Figure(go.Heatmap(z=db.astype(np.float32), x=times, y=freqs, colorscale=MEL_SCALE,
                               zmin=float(db.max() - 80), zmax=float(db.max()), colorbar={"title": "dB"},
                               hovertemplate="%{x:.2f} s, %{y:.0f} Hz: %{z:.0f} dB<extra></extra>"))
    return style(fig, "Spectrogram: loudness of each frequency over time (25 ms windows, every 10 ms)",
                 "time (s)", "frequency (Hz)", 380)


def mel_figure(window: Window, full: bool = False) -> go.Figure:
    """The window's log-mel; by default pairs of frames are averaged (1,500 columns are still more than a
    screen has pixels), `full` sends all 3,000."""
    mel = window.mel
    step = 1 if full else 2
    mel = mel[:, : mel.shape[1] // step * step].reshape(mel.shape[0], -1, step).mean(-1)
    times = window.start_s + (np.arange(mel.shape[1]) * step + (step - 1) / 2) * FRAME_S
    fig = go.Figure(go.Heatmap(z=mel, x=times, colorscale=MEL_SCALE, colorbar={"title": "log-mel"},
                               hovertemplate="%{x:.2f} s, mel bin %{y}: %{z:.2f}<extra></extra>"))
    end = window.start_s + window.content_s
    if window.content_s < 30:
        fig.add_vrect(x0=end, x1=window.start_s + 30, fillcolor="white", opacity=0.25, line_width=0,
                      annotation_text="padding to 30 s", annotation_position="top left")
        fig.add_vline(x=end, line_color="white", line_dash="dash")
    return style(fig, f"The log-mel input the encoder saw ({window.mel.shape[0]} bins x {window.mel.shape[1]} frames)",
                 "time (s)", "mel bin (low to high pitch)", 380)




def filterbank_figure(n_mels: int) -> go.Figure:
    bank = signal.mel_filterbank(n_mels)
    freqs = np.fft.rfftfreq(signal.N_FFT, 1 / SAMPLE_RATE)
    fig = make_subplots(rows=1, cols=1)
    for i in range(0, n_mels, max(1, n_mels // 20)):
        fig.add_trace(go.Scatter(x=freqs, y=bank[i], mode="lines", name=f"bin {i}",
                                 hovertemplate=f"mel bin {i}: %{{x:.0f}} Hz<extra></extra>"))
    fig.update_layout(showlegend=False)
    every = max(1, n_mels // 20)
    return style(fig, f"Mel filterbank: each bin sums a band of frequencies (every {every}th of {n_mels} shown)",
                 "frequency (Hz)", "weight", 320)
