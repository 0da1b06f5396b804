"""Figures for the experiments: each takes a finished result (a frozen dataclass) and returns a styled figure."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from components.common import (
    ATTENTION_SCALE,
    MEL_SCALE,
    font_px,
    legend_on_top,
    ordinal,
    plot_room,
    safe,
    stagger,
    style,
    text_px,
)
from components.token_figs import PROBABILITY_TICKS, every_nth
from whisper_inquiry.models.vocab import language_name

FLAG = "#d62728"
CLEAN = "#2ca02c"


def hallucination_fig(result) -> go.Figure:
    """Above: the log-mel with each segment shaded by its verdict. Below, on the same time axis: where the
    alignment heads looked while each token was written (token order down), so a path that walks with the
    speech reads as a diagonal and one that collapses onto a point or the padding stands out."""
    n_mels, n_cols = result.mel.shape
    x = np.arange(n_cols) * result.mel_column_s
    peaks = [(i, seg_no, t, e) for seg_no, seg in enumerate(result.segments) for i, (t, e) in
             enumerate(seg.token_peaks)]
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.55, 0.45], vertical_spacing=0.08)
    fig.add_trace(go.Heatmap(z=result.mel.astype(np.float32), x=x, colorscale=MEL_SCALE, showscale=False,
                             hovertemplate="%{x:.2f} s<extra></extra>"), row=1, col=1)
    end_s = max(result.duration_s, 0.1)
    for i, seg in enumerate(result.segments):
        colour = FLAG if seg.likely_hallucinated else CLEAN
        fig.add_vrect(x0=seg.start_s, x1=max(seg.end_s, seg.start_s + 0.05), fillcolor=colour, opacity=0.25,
                      line_width=2, line_color=colour, row=1, col=1, annotation_text=f"#{i + 1}",
                      annotation_position="top left", annotation_font_size=font_px() - 2)
    if peaks:
        order = list(range(1, len(peaks) + 1))
        inside = [p[2] <= end_s for p in peaks]
        for keep, name, symbol in ((True, "where the alignment heads looked", "circle"),
                                   (False, "looked past the audio's end", "x")):
            pick = [k for k, ok in enumerate(inside) if ok == keep]
            if not pick:
                continue
            fig.add_trace(go.Scatter(
                x=[min(peaks[k][2], end_s) for k in pick], y=[order[k] for k in pick], mode="markers", name=name,
                cliponaxis=False,  # a dot at 0 s or at the audio's end is drawn whole, not halved by the edge
                marker={"color": CLEAN if keep else FLAG, "size": 8, "symbol": symbol,
                        "line": {"color": "black", "width": 1}},
                customdata=[[f"#{peaks[k][1] + 1}", peaks[k][2], peaks[k][3]] for k in pick],
                hovertemplate="segment %{customdata[0]}, token %{y}: looked at %{customdata[1]:.2f} s "
                              "(spread %{customdata[2]:.2f})<extra></extra>"), row=2, col=1)
        # whole tokens only ("1.5" is no token), and at most about four ticks: the panel is short
        fig.update_yaxes(autorange="reversed", title_text="token, in writing order", tickformat="d", tick0=0,
                         dtick=max(1, -(-len(peaks) // 4)), row=2, col=1)
    fig.update_yaxes(title_text="pitch (mel)", showticklabels=False, row=1, col=1)
    fig.update_xaxes(range=[0, end_s], row=1, col=1)
    fig.update_xaxes(range=[0, end_s], title_text="time (s)", row=2, col=1)
    fig.update_layout(legend={"orientation": "h", "y": -0.16, "x": 0})
    return style(fig, "Segments (red: likely made up, green: speech) and where each token looked",
                 None, None, 560)


def token_change_fig(result) -> go.Figure:
    """Probability of each token before and after the ablation, in the original order. Tick labels are
    thinned to what the axis holds (hover for the rest): all of them ran into each other on a 1024 px screen."""
    changes = result.token_changes
    labels = [f"{i}: {safe(c.token.strip() or '·')}" for i, c in enumerate(changes)]
    x = list(range(len(changes)))
    fig = go.Figure()
    fig.add_trace(go.Bar(x=x, y=[c.original_prob if c.original_prob is not None else 0 for c in changes],
                         name="original", marker_color="#7f7f7f", customdata=labels,
                         hovertemplate="%{customdata}: %{y:.3f}<extra>original</extra>"))
    fig.add_trace(go.Bar(x=x, y=[c.prob if c.prob is not None else 0 for c in changes], name="heads ablated",
                         marker_color=[FLAG if c.change != "same" else "#1f77b4" for c in changes],
                         customdata=labels, hovertemplate="%{customdata}: %{y:.3f}<extra>heads ablated</extra>"))
    fig.update_layout(barmode="group")
    n = every_nth(len(x))
    fig.update_xaxes(tickmode="array", tickvals=x[::n], ticktext=labels[::n], tickangle=-60,
                     range=[-0.6, len(x) - 0.4])
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", tickvals=PROBABILITY_TICKS)
    thinned = "" if n == 1 else f"; every {ordinal(n)} labelled"
    return legend_on_top(style(fig, f"Each token's probability before and after (red: token changed, added or "
                                    f"removed{thinned})", "token (position: text)", "probability", 460))


MAX_WORD_LANES = 4


def word_timing_fig(rows: list[tuple[str, list]], room_px: float | None = None) -> go.Figure:
    """Words as bars on a time axis, one row per labelled set of word timings; each word written level above
    its bar, in as many lanes as keep the labels apart (a bar is often too narrow for its word)."""
    room_px = room_px or plot_room()
    longest = max((text_px(safe(label)) for label, _ in rows), default=0)
    room_px = max(160.0, room_px - max(0.0, longest + 20 - 70))  # the row names widen the left margin
    end_s = max((w.end_s for _, words in rows for w in words), default=1.0)
    s_per_px = max(end_s, 0.1) / room_px
    palette = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd"]
    lane_h, fig, y, ticks, height = 0.5, go.Figure(), 0.0, [], 120
    left, right = 0.0, end_s * 1.02  # grown to hold a first or last word's label, which runs past its bar
    for r, (label, words) in enumerate(rows):
        centres = [(w.start_s + w.end_s) / 2 for w in words]
        half = [text_px(w.word.strip()) * s_per_px / 2 for w in words]
        lanes = stagger([(c - h, c + h) for c, h in zip(centres, half)], gap=8 * s_per_px)
        # a degenerate run (one phrase written 50 times at one moment) would need a lane per word: past
        # MAX_WORD_LANES a word keeps its bar and its hover, not a label
        labelled = [k for k, lane in enumerate(lanes) if lane < MAX_WORD_LANES]
        left = min([left] + [centres[k] - half[k] for k in labelled])
        right = max([right] + [centres[k] + half[k] for k in labelled])
        n_lanes = max((lanes[k] for k in labelled), default=0) + 1
        bar_y = y + lane_h * n_lanes + 0.4
        colour = palette[r % len(palette)]
        fig.add_trace(go.Bar(
            y=[bar_y] * len(words), x=[max(0.03, w.end_s - w.start_s) for w in words], base=[w.start_s for w in words],
            orientation="h", width=0.3, textposition="none", showlegend=False,
            marker={"color": colour, "line": {"color": "white", "width": 1}},
            customdata=[safe(w.word.strip()) for w in words],
            hovertemplate="%{customdata}: %{base:.2f} s + %{x:.2f} s<extra></extra>"))
        fig.add_trace(go.Scatter(
            x=[centres[k] for k in labelled], y=[y + lane_h * (lanes[k] + 0.5) for k in labelled], mode="text",
            showlegend=False, text=[safe(words[k].word.strip()) for k in labelled],
            textfont={"size": font_px(), "color": "#111"}, hoverinfo="skip"))
        ticks.append((bar_y, safe(label)))
        y = bar_y + 0.45
        height += int(n_lanes * 1.5 * font_px()) + 40
    fig.update_yaxes(autorange="reversed", tickmode="array", tickvals=[t for t, _ in ticks],
                     ticktext=[t for _, t in ticks], showgrid=False, zeroline=False)
    fig.update_xaxes(range=[left, right])
    fig.update_layout(plot_bgcolor="white")
    return style(fig, "Word timings from dynamic time warping on the chosen heads", "time (s)", None, height)


def layer_head_fig(values: dict, n_layer: int, n_head: int, title: str, colour: str, marks: set | None = None,
                   zmin: float | None = None, zmax: float | None = None, scale: str = ATTENTION_SCALE) -> go.Figure:
    """One value per (layer, head) as a grid; `marks` are cells to star (official alignment heads)."""
    z = np.full((n_layer, n_head), np.nan)
    for (layer, head), v in values.items():
        z[layer, head] = v
    text = [[("★ " if marks and (layer, head) in marks else "") + (f"{z[layer, head]:.2f}" if z[layer, head] < 10
             else f"{z[layer, head]:.0f}") for head in range(n_head)] for layer in range(n_layer)]
    # the cells' numbers in the largest type their cells hold (the layer names and colour bar take ~130 px)
    cell_px = (plot_room() - 130) / max(1, n_head)
    longest = max((len(t) for row in text for t in row), default=1)
    cell_font = int(max(11, min(font_px() - 2, cell_px / (0.62 * longest))))
    # short tick labels (the axis titles say "head" and "layer"): the room goes to the numbers in the cells
    fig = go.Figure(go.Heatmap(z=z, x=[f"h{h}" for h in range(n_head)], y=[f"L{layer}" for layer in range(n_layer)],
                               text=text, texttemplate="%{text}", textfont={"size": cell_font}, colorscale=scale,
                               zmin=zmin, zmax=zmax,
                               colorbar={"title": {"text": colour, "side": "right"}, "thickness": 16},
                               hovertemplate="%{y} %{x}: %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    return style(fig, title, "attention head", "layer", 160 + 55 * n_layer)


def sweep_fig(result, dims: dict) -> go.Figure:
    """Token edit distance caused by ablating each head alone, one grid per attention kind."""
    kinds = [k for k in ("enc", "dec", "cross") if any(e.head.kind == k for e in result.effects)]
    names = {"enc": "encoder self-attention", "dec": "decoder self-attention", "cross": "cross-attention"}
    # one grid above the other: side by side, three grids' titles, head numbers and cells ran together on a
    # 1024 px screen
    fig = make_subplots(rows=len(kinds), cols=1, subplot_titles=[names[k] for k in kinds], vertical_spacing=0.12)
    top = max([e.token_edit_distance for e in result.effects] + [1])
    for c, kind in enumerate(kinds, 1):
        n_layer = dims["n_audio_layer"] if kind == "enc" else dims["n_text_layer"]
        n_head = dims["n_audio_head"] if kind == "enc" else dims["n_text_head"]
        z = np.zeros((n_layer, n_head))
        for e in result.effects:
            if e.head.kind == kind:
                z[e.head.layer, e.head.head] = e.token_edit_distance
        fig.add_trace(go.Heatmap(z=z, x=list(range(n_head)), y=list(range(n_layer)), zmin=0, zmax=top,
                                 colorscale="Reds", showscale=c == 1, text=z.astype(int),
                                 texttemplate="%{text}", colorbar={"title": {"text": "tokens changed", "side": "right"},
                                                                   "len": 1.0 / len(kinds), "y": 1.0,
                                                                   "yanchor": "top"},
                                 hovertemplate=f"{names[kind]} layer %{{y}} head %{{x}}: %{{z}} tokens changed"
                                               "<extra></extra>"), row=c, col=1)
        fig.update_xaxes(title_text="head", dtick=1, row=c, col=1)
        fig.update_yaxes(title_text="layer", dtick=1, autorange="reversed", row=c, col=1)
    per_grid = 120 + 40 * max(dims["n_audio_layer"], dims["n_text_layer"])
    return style(fig, "Tokens changed when each head alone is zeroed (edit distance to the original)", None, None,
                 80 + per_grid * len(kinds))


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
        name = safe(language_name(code))  # a class reads "Norwegian Nynorsk", not "nn"
        fig.add_trace(go.Bar(x=labels, y=result.probs[:, j], name=name, text=[name if p > 0.1 else "" for p in
                                                                             result.probs[:, j]],
                             textposition="inside", hovertemplate=f"{name}: %{{y:.2f}}<extra></extra>"))
    fig.update_layout(barmode="stack", legend={"title": "language"})
    fig.update_yaxes(range=[0, 1])
    return style(fig, "Language probabilities in each 30 s window", "window (s of the clip)", "probability", 420)
