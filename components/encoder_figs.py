"""The encoder: convolutional stem, positional embeddings, and every self-attention head."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from whisper_inquiry.trace.schema import AUDIO_CTX_S, Activation, HeadSummaries, Window

from .common import ATTENTION_SCALE, MEL_SCALE, font_px, plot_room, style, text_px

THUMB = 50  # thumbnail cells per side in the model view (0.6 s each)


def activation_figure(act: Activation, title: str, start_s: float = 0.0, room_px: float | None = None) -> go.Figure:
    room_px = room_px or plot_room()
    z = act.display.astype(np.float32)
    x = start_s + (np.arange(z.shape[1]) + 0.5) * act.seconds_per_column
    bound = float(np.percentile(np.abs(z), 99)) or 1.0
    fig = go.Figure(go.Heatmap(z=z, x=x, colorscale="RdBu_r", zmid=0, zmin=-bound, zmax=bound,
                               hovertemplate="%{x:.2f} s, channel group %{y}: %{z:.2f}<extra></extra>"))
    return style(fig, title, "time (s)", "channel (grouped)", 330, room_px=room_px)


def positional_figure(positional: np.ndarray, room_px: float | None = None) -> go.Figure:
    room_px = room_px or plot_room()
    z = positional.astype(np.float32)  # (positions, dims), block-averaged over positions
    seconds = (np.arange(z.shape[0]) + 0.5) * 30 / z.shape[0]
    fig = go.Figure(go.Heatmap(z=z.T, x=seconds, colorscale="RdBu_r", zmid=0,
                               hovertemplate="%{x:.2f} s, dimension %{y}: %{z:.2f}<extra></extra>"))
    return style(fig, "Positional embedding (fixed sinusoids)",
                 "position (s)", "dimension (grouped)", 330, room_px=room_px)


def _shrink(pooled: np.ndarray, size: int) -> np.ndarray:
    """(P, P) thumbnail with rows summing to one -> (size, size), still row-stochastic."""
    f = pooled.shape[-1] // size
    return pooled.reshape(size, f, size, f).mean(1).sum(-1)


def model_view_figure(enc: HeadSummaries, content_s: float = 30.0, title: str | None = None,
                      room_px: float | None = None) -> go.Figure:
    """Every layer (rows) by every head (columns), one thumbnail each, on one shared colour scale. The
    padding after `content_s` (rows and columns past the audio) is veiled in white (the caption names where).

    The thumbnails are tiled into one heatmap rather than one subplot per head: a browser draws one
    trace far faster than 24 (or 48 for base), which keeps the page quick to open."""
    room_px = room_px or plot_room()
    L, H = enc.n_layer, enc.n_head
    gap = 4
    step = THUMB + gap
    tiles = np.full((L * step - gap, H * step - gap), np.nan, dtype=np.float32)
    for i in range(L):
        for j in range(H):
            tiles[i * step:i * step + THUMB, j * step:j * step + THUMB] = _shrink(
                enc.pooled[i, j].astype(np.float32), THUMB)
    zmax = float(np.nanpercentile(tiles, 99.5))
    fig = go.Figure(go.Heatmap(z=tiles, colorscale=ATTENTION_SCALE, zmin=0, zmax=zmax, hoverongaps=False,
                               # the title beside the bar: above it, a top tick (0.5 on a short clip) ran into it
                               colorbar={"title": {"text": "weight", "side": "right"}, "len": 0.8, "thickness": 18},
                               hovertemplate="weight %{z:.3f}<extra></extra>"))
    centres = [k * step + THUMB / 2 for k in range(max(L, H))]
    narrow = room_px / H < text_px("head 0") + 10  # "h3" and "L2" where "head 3" would collide
    fig.update_xaxes(tickmode="array", tickvals=centres[:H], ticktext=[f"h{j}" if narrow else f"head {j}"
                                                                        for j in range(H)],
                     side="top", showgrid=False, zeroline=False)
    fig.update_yaxes(tickmode="array", tickvals=centres[:L], ticktext=[f"L{i}" if narrow else f"layer {i}"
                                                                        for i in range(L)],
                     autorange="reversed", showgrid=False, zeroline=False, scaleanchor="x")
    fig.update_layout(plot_bgcolor="white")
    cut = THUMB * min(1.0, max(0.0, content_s / 30.0))
    if cut < THUMB - 0.5:  # veil the padding: keys past the audio (right) and queries past it (bottom)
        veil = {"type": "rect", "fillcolor": "rgba(255,255,255,0.55)", "line": {"width": 0}, "layer": "above"}
        for i in range(L):
            for j in range(H):
                x0, y0 = j * step - 0.5, i * step - 0.5
                fig.add_shape(**veil, x0=x0 + cut, x1=x0 + THUMB, y0=y0, y1=y0 + THUMB)
                fig.add_shape(**veil, x0=x0, x1=x0 + cut, y0=y0 + cut, y1=y0 + THUMB)
    # the caption gives the thumbnails' scale and where the padding starts
    title = title or "Where each encoder head looks"
    fig = style(fig, title, height=int(max(260, room_px * L / H) + 160))  # square thumbnails fill the width
    # the head labels sit above the tiles, between them and the title (which hangs from the figure's top)
    fig.update_layout(margin={"t": fig.layout.margin.t + font_px() + 24})
    return fig


def head_view_figure(window: Window, head_map: np.ndarray, layer: int, head: int,
                     t0: float, t1: float, max_cells: int = 200) -> go.Figure:
    """One head over [t0, t1) s, with the log-mel above it on the same time axis."""
    a, b = int(t0 / AUDIO_CTX_S), int(np.ceil(t1 / AUDIO_CTX_S))
    z = head_map[a:b, a:b]
    f = max(1, int(np.ceil(z.shape[0] / max_cells)))
    n = z.shape[0] // f
    z = z[: n * f, : n * f].reshape(n, f, n, f).mean(1).sum(-1)  # rows keep summing to one
    times = window.start_s + (a + (np.arange(n) + 0.5) * f) * AUDIO_CTX_S
    mel = window.mel[:, 2 * a: 2 * (a + n * f)]
    mel = mel.reshape(mel.shape[0], n, -1).mean(-1)
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.22, 0.78], vertical_spacing=0.03)
    fig.add_trace(go.Heatmap(z=mel, x=times, colorscale=MEL_SCALE, showscale=False,
                             hovertemplate="%{x:.2f} s, mel bin %{y}<extra></extra>"), row=1, col=1)
    fig.add_trace(go.Heatmap(z=z, x=times, y=times, colorscale=ATTENTION_SCALE, zmin=0,
                             zmax=float(np.percentile(z, 99.5)) or None, colorbar={"title": "weight", "y": 0.4,
                                                                                    "len": 0.75},
                             hovertemplate="query %{y:.2f} s looks at %{x:.2f} s: %{z:.4f}<extra></extra>"),
                  row=2, col=1)
    fig.update_yaxes(title_text="mel", showticklabels=False, row=1, col=1)
    fig.update_yaxes(title_text="query: where the head is (s)", autorange="reversed", row=2, col=1)
    fig.update_xaxes(title_text="key: what it looks at (s)", row=2, col=1)
    res = f * AUDIO_CTX_S * 1000
    return style(fig, f"Head view: layer {layer}, head {head} ({res:.0f} ms per cell)", height=760)


def head_summary_figure(enc: HeadSummaries, side_by_side: bool = False) -> go.Figure:
    """Entropy and mean distance of every head, as two grids of numbers, one above the other: side by side,
    a four-digit distance ran into its neighbour and the first colour bar into the second grid's layer names
    on a 1024 px screen."""
    L, H = enc.n_layer, enc.n_head
    grid = {"rows": 1, "cols": 2, "horizontal_spacing": 0.14} if side_by_side else {"rows": 2, "cols": 1,
                                                                                     "vertical_spacing": 0.16}
    fig = make_subplots(**grid, subplot_titles=("entropy (bits)", "mean distance (ms)"))
    second = {"row": 1, "col": 2} if side_by_side else {"row": 2, "col": 1}
    bars = ({"x": 0.43, "len": 1.0}, {"x": 1.0, "len": 1.0}) if side_by_side else (
        {"y": 0.79, "len": 0.42}, {"y": 0.21, "len": 0.42})
    labels = {"x": [f"h{j}" for j in range(H)], "y": [f"L{i}" for i in range(L)]}
    fig.add_trace(go.Heatmap(z=enc.entropy_bits, **labels, colorscale="Blues", texttemplate="%{z:.1f}",
                             colorbar=bars[0], hovertemplate="%{y} %{x}: %{z:.2f} bits<extra></extra>"),
                  row=1, col=1)
    fig.add_trace(go.Heatmap(z=enc.distance_ms, **labels, colorscale="Oranges", texttemplate="%{z:.0f}",
                             colorbar=bars[1], hovertemplate="%{y} %{x}: %{z:.0f} ms<extra></extra>"), **second)
    fig.update_yaxes(autorange="reversed")
    per_grid = max(240, 46 * L + 90)
    return style(fig, "Per-head summaries, over the audio's own frames",
                 height=per_grid + 80 if side_by_side else 2 * per_grid + 60)
