"""The search tree: every candidate the decoder weighed, the path it took, and how the finalists ranked."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import plotly.graph_objects as go

from whisper_inquiry.trace import SearchTree

from .common import GREY, safe, style

STATUS_STYLE = {  # marker symbol, and whether the node's label is printed
    "kept": ("circle", True),
    "finished": ("star", True),
    "pruned": ("circle-open", False),
    "alternative": ("circle-open", False),
    "root": ("square", True),
}


def short(text: str) -> str:
    """Compact labels for crowded rows: <|3.92|> -> 3.92s, <|endoftext|> -> END."""
    if text.startswith("<|") and text.endswith("|>"):
        inner = text[2:-2]
        return "END" if inner == "endoftext" else f"{inner}s" if inner.replace(".", "").isdigit() else inner
    return text


def layout(tree: SearchTree, first: int, last: int) -> dict[int, tuple[int, int]]:
    """(x, y) per node in steps [first, last]: x is the step, y the rank by cumulative log-probability."""
    by_step: dict[int, list[int]] = defaultdict(list)
    for i, step in enumerate(tree.step):
        if first <= step <= last:
            by_step[step].append(i)
    chosen = set(tree.chosen_path)
    pos = {}
    for step, nodes in by_step.items():
        nodes.sort(key=lambda i: (i not in chosen, tree.status[i] in ("pruned", "alternative"), -tree.cum_logprob[i]))
        for rank, i in enumerate(nodes):
            pos[i] = (step, rank)
    return pos


def tree_figure(tree: SearchTree, first: int, last: int) -> go.Figure:
    pos = layout(tree, first, last)
    chosen = set(tree.chosen_path)
    edge_x, edge_y, path_x, path_y = [], [], [], []
    for i, (x, y) in pos.items():
        parent = tree.parent[i]
        if parent in pos:
            px, py = pos[parent]
            xs, ys = (path_x, path_y) if (i in chosen and (parent in chosen or parent == 0)) else (edge_x, edge_y)
            xs += [px, x, None]
            ys += [py, y, None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=edge_x, y=edge_y, mode="lines", line={"color": "#cccccc", "width": 1},
                             hoverinfo="skip", name="considered"))
    fig.add_trace(go.Scatter(x=path_x, y=path_y, mode="lines", line={"color": "#111111", "width": 4},
                             hoverinfo="skip", name="chosen path"))
    few_steps = last - first <= 16
    for status, (symbol, labelled) in STATUS_STYLE.items():
        nodes = [i for i in pos if tree.status[i] == status]
        if not nodes:
            continue
        faded = status in ("pruned", "alternative")
        labelled = labelled or few_steps  # the runners-up are worth reading when there is room
        fig.add_trace(go.Scatter(
            x=[pos[i][0] for i in nodes], y=[pos[i][1] for i in nodes],
            mode="markers+text" if labelled else "markers",
            text=[safe(short(tree.text[i])) for i in nodes] if labelled else None,
            textposition="middle right" if faded else "top center",
            textfont={"size": 11 if faded else 13, "color": "#777" if faded else "#000"},
            marker={"symbol": symbol, "size": [16 if i in chosen else 10 for i in nodes],
                    "color": GREY if faded else [tree.logprob[i] for i in nodes],
                    "colorscale": "RdYlGn", "cmin": -5, "cmax": 0,
                    "showscale": status == "kept", "colorbar": {"title": "log p"},
                    "line": {"width": 1, "color": "#333"}},
            customdata=[[safe(tree.text[i]), tree.logprob[i], tree.cum_logprob[i], status] for i in nodes],
            hovertemplate="%{customdata[0]}<br>log p = %{customdata[1]:.2f}, total %{customdata[2]:.2f}"
                          "<br>%{customdata[3]}<extra></extra>",
            name=status))
    fig.update_layout(legend={"orientation": "h", "y": -0.18, "x": 0})
    fig.update_yaxes(autorange="reversed", title_text="rank at that step (best on top)", dtick=1)
    fig.update_xaxes(title_text="step (tokens written so far)", dtick=1)
    n_rows = 1 + max((y for _, y in pos.values()), default=0)
    return style(fig, "Search tree (bold: the final choice)", height=min(900, max(460, 44 * n_rows + 200)))


def step_count(tree: SearchTree) -> int:
    return int(np.max(tree.step)) if len(tree) else 0
