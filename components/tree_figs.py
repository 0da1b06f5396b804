"""The search tree: every candidate the decoder weighed, the path it took, and how the finalists ranked.

Drawn for a class to follow: the beams that were kept are labelled, the candidates that were dropped
appear only on demand, rows are ranks (1 = best) and every label is cut to the room its step has."""

from __future__ import annotations

import difflib
import re
from collections import defaultdict

import numpy as np
import plotly.graph_objects as go

from whisper_inquiry.trace.schema import SearchTree

from .common import GREY, font_px, plot_room, safe, style

DROPPED = ("pruned", "alternative")
BEAM_ORDER = {"kept": 0, "finished": 1}  # rows of a beam step: a beam of 5 keeps rows 1-5, whatever else ended
STATUS_STYLE = {  # marker symbol, legend name
    "root": ("square", "prompt"),
    "kept": ("circle", "kept for the next step"),
    "finished": ("star", "finished (wrote end-of-text)"),
    "pruned": ("circle-open", "dropped"),
    "alternative": ("circle-open", "runner-up not taken"),
}


def short(text: str) -> str:
    """Compact labels for crowded rows: <|3.92|> -> 3.92s, <|endoftext|> -> END."""
    if text.startswith("<|") and text.endswith("|>"):
        inner = text[2:-2]
        return "END" if inner == "endoftext" else f"{inner}s" if inner.replace(".", "").isdigit() else inner
    return text


def fit(text: str, max_chars: int) -> str:
    """A label cut to `max_chars` characters (an ellipsis marks the cut); the hover shows it whole."""
    text = text.strip() or repr(text)
    return text if len(text) <= max_chars else text[: max(1, max_chars - 1)] + "…"


def by_probability(tree: SearchTree) -> bool:
    """A greedy or single-sample tree holds one distribution's top-k per step: its rows are probability ranks,
    so a sampled token is drawn where it stood. Beam search and best-of sampling expand several prefixes per
    step: their rows order the candidates, the chosen one on top."""
    if tree.strategy == "beam" or len(tree.rank) != len(tree):
        return False
    on_path = {0, *tree.chosen_path}
    return all(tree.parent[i] in on_path for i in range(1, len(tree)))


def layout(tree: SearchTree, first: int, last: int, show_dropped: bool = True) -> dict[int, tuple[int, int]]:
    """(x, y) per node in steps [first, last]: x is the step, y the row (0 = top). Greedy and sampling: by
    probability rank at that step (a token drawn from beyond the top-k goes one row below them). Beam search:
    the chosen path first, then the other kept or finished candidates by cumulative log-probability, then (if
    shown) the dropped."""
    ranked = by_probability(tree)
    by_step: dict[int, list[int]] = defaultdict(list)
    for i, step in enumerate(tree.step):
        if first <= step <= last and (show_dropped or tree.status[i] not in DROPPED or i in tree.chosen_path):
            by_step[step].append(i)
    chosen = set(tree.chosen_path)
    pos = {}
    for step, nodes in by_step.items():
        if ranked:
            nodes.sort(key=lambda i: (tree.rank[i] < 0, tree.rank[i]))
        else:  # the beams carried on take the first rows, then the finished, then the dropped
            nodes.sort(key=lambda i: (BEAM_ORDER.get(tree.status[i], 2), i not in chosen, -tree.cum_logprob[i]))
        for row, i in enumerate(nodes):
            pos[i] = (step, row)
    return pos


def node_label(tree: SearchTree, i: int, row: int, max_chars: int, ranked: bool) -> str:
    """The token cut to its room; in a tree drawn by rank (`ranked`), a token drawn from beyond the top-k
    says its real rank (#11,331), since its row is only the one below them."""
    text = fit(short(tree.text[i]), max_chars)
    if ranked and tree.rank[i] >= 0 and tree.rank[i] != row:
        text += f" #{tree.rank[i] + 1:,}"
    return text


def label_chars(first: int, last: int, room_px: float | None = None) -> int:
    """How many characters a label may have so that it ends before the next step's marker."""
    room_px = room_px or plot_room()
    step_px = room_px / max(1, last - first + 1)
    return max(2, int((step_px - 14) // (0.6 * font_px())))


def steps_that_fit(room_px: float | None = None, min_chars: int = 8) -> int:
    """How many steps one screen can show with labels of at least `min_chars` characters."""
    room_px = room_px or plot_room()
    return max(4, int(room_px // (min_chars * 0.6 * font_px() + 14)))


def tree_figure(tree: SearchTree, first: int, last: int, show_dropped: bool | None = None,
                room_px: float | None = None) -> go.Figure:
    """Steps across, ranks down. Kept and finished candidates are labelled in black (the chosen path in
    bold); dropped ones, when shown, are grey with grey labels. Hover any node for its whole text."""
    room_px = room_px or plot_room()
    if show_dropped is None:
        show_dropped = tree.strategy != "beam"  # greedy's runners-up are the whole point of its tree
    pos = layout(tree, first, last, show_dropped)
    ranked = by_probability(tree)
    chosen = set(tree.chosen_path)
    size = font_px()
    max_chars = label_chars(first, last, room_px)
    edge_x, edge_y, path_x, path_y = [], [], [], []
    for i, (x, y) in pos.items():
        parent = tree.parent[i]
        if parent in pos:
            px, py = pos[parent]
            xs, ys = (path_x, path_y) if (i in chosen and (parent in chosen or parent == 0)) else (edge_x, edge_y)
            xs += [px, x, None]
            ys += [py, y, None]
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=edge_x, y=edge_y, mode="lines", line={"color": "#bbbbbb", "width": 1.5},
                             hoverinfo="skip", name="extends"))
    fig.add_trace(go.Scatter(x=path_x, y=path_y, mode="lines", line={"color": "#111111", "width": 4},
                             hoverinfo="skip", name="the chosen path"))
    for status, (symbol, name) in STATUS_STYLE.items():
        nodes = [i for i in pos if tree.status[i] == status]
        if not nodes:
            continue
        faded = status in DROPPED
        texts = [node_label(tree, i, pos[i][1], max_chars, ranked) for i in nodes]
        fig.add_trace(go.Scatter(
            x=[pos[i][0] for i in nodes], y=[pos[i][1] for i in nodes], mode="markers+text",
            text=[f"<b>{safe(t)}</b>" if i in chosen else safe(t) for i, t in zip(nodes, texts)],
            textposition=["top center" if i in chosen or status == "root" else "middle right" for i in nodes],
            cliponaxis=False,
            textfont={"size": size - 2 if faded else size, "color": "#888" if faded else "#000"},
            marker={"symbol": symbol, "size": [18 if i in chosen else 12 for i in nodes],
                    "color": GREY if faded else [tree.logprob[i] for i in nodes],
                    "colorscale": "RdYlGn", "cmin": -5, "cmax": 0,
                    "showscale": False,  # the colours are named in the page's caption; hover gives the number
                    "line": {"width": 1, "color": "#333"}},
            customdata=[[safe(tree.text[i]), tree.logprob[i], tree.cum_logprob[i], status] for i in nodes],
            hovertemplate="%{customdata[0]}<br>log p = %{customdata[1]:.2f}, total %{customdata[2]:.2f}"
                          "<br>%{customdata[3]}<extra></extra>",
            name=name))
    n_rows = 1 + max((y for _, y in pos.values()), default=0)
    fig.update_layout(showlegend=False, plot_bgcolor="white")  # the page's caption names every mark
    rank_title = ("probability rank (1 = most likely)" if ranked else
                  "beams kept, best first; then finished, dropped" if tree.strategy == "beam" else "rank (1 = best)")
    fig.update_yaxes(range=[n_rows - 0.5, -0.6], tickmode="array", tickvals=list(range(n_rows)),
                     ticktext=[str(r + 1) for r in range(n_rows)], title_text=rank_title,
                     showgrid=False, zeroline=False)
    # half a step before the first: its label, centred over the node, stays clear of the rank numbers
    fig.update_xaxes(title_text="step (tokens written so far)", dtick=1, range=[first - 0.5, last + 0.9],
                     showgrid=True, gridcolor="#eeeeee", zeroline=False)
    return style(fig, "Search tree (bold, on top: the final choice)",
                 height=min(1400, max(400, int(2.4 * size) * n_rows + 200)))


def step_count(tree: SearchTree) -> int:
    return int(np.max(tree.step)) if len(tree) else 0


TIMESTAMP = re.compile(r"<\|(\d+\.\d+)\|>")


def _words(text: str) -> list[str]:
    """Words, with each timestamp token a word of its own written as 8.00s (it may be all that differs)."""
    return TIMESTAMP.sub(r" \1s ", text).split()


def differing_words(chosen: str, other: str) -> list[tuple[str, bool]]:
    """`other` as words, each marked True where it differs from `chosen` (inserted or replaced)."""
    a, b = _words(chosen), _words(other)
    out: list[tuple[str, bool]] = []
    for op, _i1, _i2, j1, j2 in difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes():
        out += [(w, op != "equal") for w in b[j1:j2]]
    return out


def _word_html(word: str, differs: bool) -> str:
    stamp = re.fullmatch(r"\d+\.\d+s", word) is not None
    html = f'<span style="color:#555;font-size:.8em">{safe(word)}</span>' if stamp else safe(word)
    return f'<mark style="background:#ffd54f">{html}</mark>' if differs else html


def finalists_html(tree: SearchTree) -> str:
    """The final ranking, best score first: each finalist's whole text, with the words where it differs
    from the chosen one highlighted (a word the chosen text has and it lacks is shown as a gap: ‸)."""
    finalists = sorted(tree.finalists, key=lambda f: -f.score)
    chosen = next((f.text for f in finalists if f.selected), finalists[0].text if finalists else "")
    rows = []
    for rank, f in enumerate(finalists, 1):
        words = differing_words(chosen, f.text)
        missing = len(_words(chosen)) - sum(not d for _, d in words)
        text = " ".join(_word_html(w, d) for w, d in words)
        if missing > 0 and not f.selected:
            text += ' <span style="color:#b00" title="words of the chosen text this one lacks">‸</span>'
        badge = "✔ chosen" if f.selected else f"#{rank}"
        rows.append(f'<tr><td style="padding:4px 10px;white-space:nowrap"><b>{badge}</b></td>'
                    f'<td style="padding:4px 10px">{text or "(nothing)"}</td>'
                    f'<td style="padding:4px 10px;white-space:nowrap">{f.score:.3f}</td>'
                    f'<td style="padding:4px 10px;white-space:nowrap">{f.sum_logprob:.2f} / {f.length}</td></tr>')
    head = ('<tr><th style="text-align:left;padding:4px 10px">rank</th><th style="text-align:left;padding:4px 10px">'
            'text (highlighted: where it differs from the chosen one)</th><th style="text-align:left;padding:4px 10px">'
            'score</th><th style="text-align:left;padding:4px 10px">sum log-p / tokens</th></tr>')
    return f'<table style="font-size:1.15em;border-collapse:collapse">{head}{"".join(rows)}</table>'
