"""The logit lens as a heatmap: one column per written token, in the order it was written.

Columns are indexed by position and only labelled with the token's text. Text as a categorical axis
merges repeated tokens ("a", "the", " population"): 30 tokens drew as 22 columns and the labels
stopped matching their cells.
"""

from __future__ import annotations

import plotly.graph_objects as go

from whisper_inquiry.trace.schema import LogitLens, TokenStep

from .common import font_px, label_step, plot_room, presenting, safe, style, text_px
from .token_figs import label


def _fit(text: str, cell_px: float, font: int) -> str:
    """Cut a guess to what its cell holds, so no cell's text runs over its neighbour's."""
    room = max(1, int(cell_px / (0.65 * font)))
    return text if len(text) <= room else text[: max(1, room - 1)] + "…"


def lens_figure(lens: LogitLens, steps: list[TokenStep], n: int) -> go.Figure:
    """The first `n` tokens: each layer's top guess (cell text) and its probability of the token finally
    written (colour). Cell text is left out where the cells are too narrow to hold it legibly."""
    n = min(n, len(steps), lens.target_probs.shape[1])
    z = lens.target_probs[:, :n]  # (n_layer + 1, n)
    positions = list(range(n))
    labels = [safe(label(s)) for s in steps[:n]]
    size = font_px()
    # the room the columns get on a 1024 px screen, the narrowest we plan for, after the layer names and the
    # colour bar (planned for 1500 px, the guesses ran into each other at 1024)
    plot_px = plot_room() - (90 if presenting() else 60)
    cell_px = plot_px / max(1, n)
    cell_font = max(11, min(size - 2, int(cell_px / 4)))
    fig = go.Figure(go.Heatmap(
        z=z, x=positions, y=[f"layer {i}" for i in range(len(z))],
        text=[[safe(_fit(t, cell_px, cell_font)) for t in row[:n]] for row in lens.top_texts],
        texttemplate="%{text}" if cell_px >= 36 else None, textfont={"size": cell_font},
        colorscale="Blues", zmin=0, zmax=1, colorbar={"title": {"text": "p(final token)", "side": "right"}},
        customdata=[[[labels[j], float(lens.top_probs[i, j]), safe(lens.top_texts[i][j])] for j in range(n)]
                    for i in range(len(z))],
        hovertemplate="%{y}, token %{x} (%{customdata[0]})<br>top guess %{customdata[2]} "
                      "(p = %{customdata[1]:.2f})<br>p(final token) = %{z:.2f}<extra></extra>",
    ))
    every = label_step(n, plot_px, 1.2 * size)  # rotated labels: one line height each
    shown = positions[::every]
    fig.update_xaxes(tickmode="array", tickvals=shown, ticktext=[labels[i] for i in shown], tickangle=-60,
                     range=[-0.5, n - 0.5])
    longest = max((text_px(lab, size) for lab in labels), default=0)
    fig = style(fig, "Each layer's guess (text) and its probability for the token finally written (colour)",
                "token finally written" + (f" (every {every}th labelled)" if every > 1 else ""),
                "decoder layer", 240 + 70 * len(z))
    fig.update_layout(margin={"b": int(min(220, 60 + 0.87 * longest))})
    return fig
