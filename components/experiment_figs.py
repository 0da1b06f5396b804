"""Figures for the experiments: each takes a finished result (a frozen dataclass) and returns a styled figure."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from components.common import ATTENTION_SCALE, MEL_SCALE, safe, style

FLAG = "#d62728"
CLEAN = "#2ca02c"


def hallucination_fig(result) -> go.Figure:
    """Log-mel with each segment shaded by its verdict and the alignment heads' attention peak per token."""
    n_mels, n_cols = result.mel.shape
    x = np.arange(n_cols) * result.mel_column_s
    fig = go.Figure(go.Heatmap(z=result.mel.astype(np.float32), x=x, colorscale=MEL_SCALE, showscale=False,
                               hovertemplate="%{x:.2f} s, mel bin %{y}<extra></extra>"))
    for i, seg in enumerate(result.segments):
        colour = FLAG if seg.likely_hallucinated else CLEAN
        fig.add_vrect(x0=seg.start_s, x1=max(seg.end_s, seg.start_s + 0.05), fillcolor=colour, opacity=0.25,
                      line_width=2, line_color=colour, annotation_text=f"#{i + 1}", annotation_position="top left",
                      annotation_font_size=14)
        if seg.token_peaks:
            peaks = np.array(seg.token_peaks)
            y = np.linspace(8, n_mels - 8, len(peaks))
            fig.add_trace(go.Scatter(x=peaks[:, 0], y=y, mode="markers+lines", showlegend=i == 0,
                                     name="attention peak of each token", line={"color": "white", "width": 1},
                                     marker={"color": "white", "size": 7, "line": {"color": "black", "width": 1}},
                                     customdata=peaks[:, 1],
                                     hovertemplate="token looked at %{x:.2f} s (entropy %{customdata:.2f})"
                                                   "<extra></extra>"))
    fig.add_vline(x=result.duration_s, line_dash="dash", line_color="white")
    fig.update_layout(legend={"orientation": "h", "y": -0.25})
    return style(fig, "Log-mel with each segment's verdict (red: likely hallucinated, green: speech)",
                 "time (s)", "mel frequency bin", 420)


def token_change_fig(result) -> go.Figure:
    """Probability of each token before and after the ablation, in the original order."""
    changes = result.token_changes
    labels = [f"{i}: {safe(c.token.strip() or '·')}" for i, c in enumerate(changes)]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=labels, y=[c.original_prob if c.original_prob is not None else 0 for c in changes],
                         name="original", marker_color="#7f7f7f"))
    fig.add_trace(go.Bar(x=labels, y=[c.prob if c.prob is not None else 0 for c in changes], name="heads ablated",
                         marker_color=[FLAG if c.change != "same" else "#1f77b4" for c in changes]))
    fig.update_layout(barmode="group", legend={"orientation": "h", "y": 1.08})
    fig.update_xaxes(tickangle=-60)
    fig.update_yaxes(range=[0, 1])
    return style(fig, "Each token's probability before and after (red: token changed, added or removed)",
                 "token (position: text)", "probability", 460)


def word_timing_fig(rows: list[tuple[str, list]]) -> go.Figure:
    """Words as bars on a time axis, one row per labelled set of word timings."""
    fig = go.Figure()
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
    for r, (label, words) in enumerate(rows):
        fig.add_trace(go.Bar(
            y=[label] * len(words), x=[max(0.02, w.end_s - w.start_s) for w in words], base=[w.start_s for w in words],
            orientation="h", text=[safe(w.word.strip()) for w in words], textposition="inside",
            insidetextanchor="middle",
            marker={"color": palette[r % len(palette)], "line": {"color": "white", "width": 1}}, showlegend=False,
            hovertemplate="%{text}: %{base:.2f} s + %{x:.2f} s<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return style(fig, "Word timings from dynamic time warping on the chosen heads", "time (s)", None,
                 140 + 70 * len(rows))


def layer_head_fig(values: dict, n_layer: int, n_head: int, title: str, colour: str, marks: set | None = None,
                   zmin: float | None = None, zmax: float | None = None, scale: str = ATTENTION_SCALE) -> go.Figure:
    """One value per (layer, head) as a grid; `marks` are cells to star (official alignment heads)."""
    z = np.full((n_layer, n_head), np.nan)
    for (layer, head), v in values.items():
        z[layer, head] = v
    text = [[("★ " if marks and (layer, head) in marks else "") + (f"{z[layer, head]:.2f}" if z[layer, head] < 10
             else f"{z[layer, head]:.0f}") for head in range(n_head)] for layer in range(n_layer)]
    fig = go.Figure(go.Heatmap(z=z, x=[f"head {h}" for h in range(n_head)], y=[f"layer {layer}" for layer in
                                                                               range(n_layer)],
                               text=text, texttemplate="%{text}", textfont={"size": 14}, colorscale=scale,
                               zmin=zmin, zmax=zmax, colorbar={"title": colour},
                               hovertemplate="%{y}, %{x}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return style(fig, title, "attention head", "layer", 160 + 55 * n_layer)


def sweep_fig(result, dims: dict) -> go.Figure:
    """Token edit distance caused by ablating each head alone, one grid per attention kind."""
    kinds = [k for k in ("enc", "dec", "cross") if any(e.head.kind == k for e in result.effects)]
    names = {"enc": "encoder self-attention", "dec": "decoder self-attention", "cross": "cross-attention"}
    fig = make_subplots(rows=1, cols=len(kinds), subplot_titles=[names[k] for k in kinds], horizontal_spacing=0.08)
    top = max([e.token_edit_distance for e in result.effects] + [1])
    for c, kind in enumerate(kinds, 1):
        n_layer = dims["n_audio_layer"] if kind == "enc" else dims["n_text_layer"]
        n_head = dims["n_audio_head"] if kind == "enc" else dims["n_text_head"]
        z = np.zeros((n_layer, n_head))
        for e in result.effects:
            if e.head.kind == kind:
                z[e.head.layer, e.head.head] = e.token_edit_distance
        fig.add_trace(go.Heatmap(z=z, x=list(range(n_head)), y=list(range(n_layer)), zmin=0, zmax=top,
                                 colorscale="Reds", showscale=c == len(kinds), text=z.astype(int),
                                 texttemplate="%{text}", colorbar={"title": "tokens changed"},
                                 hovertemplate=f"{names[kind]} layer %{{y}} head %{{x}}: %{{z}} tokens changed"
                                               "<extra></extra>"), row=1, col=c)
        fig.update_xaxes(title_text="head", dtick=1, row=1, col=c)
        fig.update_yaxes(title_text="layer" if c == 1 else None, dtick=1, autorange="reversed", row=1, col=c)
    return style(fig, "Tokens changed when each head alone is zeroed (edit distance to the original)", None, None,
                 200 + 50 * max(dims["n_audio_layer"], dims["n_text_layer"]))


def mask_fig(result) -> go.Figure:
    rows = [r for r in result.rows if r.scope == "every head"]
    fig = go.Figure(go.Bar(x=[f"±{r.k}" for r in rows], y=[100 * r.word_error_rate for r in rows],
                           text=[f"{100 * r.word_error_rate:.0f}%" for r in rows], textposition="outside",
                           marker_color=[FLAG if r.word_error_rate > 0.3 else "#1f77b4" for r in rows],
                           customdata=[r.k * 20 for r in rows],
                           hovertemplate="±%{customdata} ms: %{y:.0f}% of words wrong<extra></extra>"))
    fig.update_yaxes(range=[0, max(110, 10 + max([100 * r.word_error_rate for r in rows] + [0]))])
    return style(fig, "Words wrong when every encoder head sees only ±k frames (1 frame = 20 ms)",
                 "attention window, frames each side", "word error rate (%)", 400)


def lens_fig(result) -> go.Figure:
    words = [safe(w) for w in result.original_words]
    z = result.word_found.astype(float)
    fig = go.Figure(go.Heatmap(z=z, x=[f"{i}:{w}" for i, w in enumerate(words)],
                               y=[f"layer {x.layer}" for x in result.layers], zmin=0, zmax=1,
                               colorscale=[[0, "#f0f0f0"], [1, CLEAN]], showscale=False, xgap=2, ygap=2,
                               hovertemplate="%{y}: %{x} %{z:.0f}<extra>1 = word present</extra>"))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(tickangle=-60)
    return style(fig, "Which words of the final transcript each encoder layer already gives (green: present)",
                 "word of the final transcript", "decoded from encoder layer", 200 + 50 * len(result.layers))


def language_fig(result) -> go.Figure:
    fig = go.Figure()
    labels = [f"{w.start_s:.0f}-{w.end_s:.0f} s" for w in result.windows]
    for j, code in enumerate(result.languages):
        fig.add_trace(go.Bar(x=labels, y=result.probs[:, j], name=code, text=[code if p > 0.1 else "" for p in
                                                                             result.probs[:, j]],
                             textposition="inside", hovertemplate=f"{code}: %{{y:.2f}}<extra></extra>"))
    fig.update_layout(barmode="stack", legend={"title": "language"})
    fig.update_yaxes(range=[0, 1])
    return style(fig, "Language probabilities in each 30 s window", "window (s of the clip)", "probability", 420)
