"""Two runs side by side: a word diff of the transcripts and token probabilities lined up."""

from __future__ import annotations

import difflib

import numpy as np
import plotly.graph_objects as go

from whisper_inquiry.trace.schema import Trace

from .common import font_px, legend_on_top, ordinal, safe, style
from .token_figs import PROBABILITY_TICKS, every_nth, label


def word_diff_html(a: str, b: str) -> str:
    """Words only in A struck through in red, words only in B underlined in green; all text escaped."""
    wa, wb = a.split(), b.split()
    out = []
    for op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=wa, b=wb, autojunk=False).get_opcodes():
        if op == "equal":
            out.append(safe(" ".join(wa[i1:i2])))
            continue
        if i2 > i1:
            out.append(f'<del style="background:#f8d0d0">{safe(" ".join(wa[i1:i2]))}</del>')
        if j2 > j1:
            out.append(f'<ins style="background:#cdeccd">{safe(" ".join(wb[j1:j2]))}</ins>')
    return f'<div style="font-size:1.3em;line-height:1.8">{" ".join(out)}</div>'


def word_error_rate(reference: str, hypothesis: str) -> float:
    """Word-level edit distance over the reference length (A taken as the reference)."""
    r, h = reference.lower().split(), hypothesis.lower().split()
    d = list(range(len(h) + 1))
    for i, rw in enumerate(r, 1):
        prev, d[0] = d[0], i
        for j, hw in enumerate(h, 1):
            prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (rw != hw))
    return d[len(h)] / max(1, len(r))


def aligned_probabilities_figure(a: Trace, b: Trace, name_a: str, name_b: str) -> go.Figure:
    """Token probabilities of both runs, matched token by token where the two texts agree."""
    sa = [s for s in a.steps if not s.is_timestamp]
    sb = [s for s in b.steps if not s.is_timestamp]
    rows = []
    for _op, i1, i2, j1, j2 in difflib.SequenceMatcher(a=[s.text for s in sa], b=[s.text for s in sb],
                                                      autojunk=False).get_opcodes():
        for k in range(max(i2 - i1, j2 - j1)):
            ta = sa[i1 + k] if i1 + k < i2 else None
            tb = sb[j1 + k] if j1 + k < j2 else None
            rows.append((ta, tb))
    x = list(range(len(rows)))
    names = [safe(label(ta or tb)) + ("" if ta and tb and ta.text == tb.text else " *") for ta, tb in rows]
    fig = go.Figure()
    for name, pick, colour in ((name_a, 0, "#4c78a8"), (name_b, 1, "#f58518")):
        steps = [r[pick] for r in rows]
        fig.add_trace(go.Bar(x=x, y=[s.prob if s else None for s in steps], name=safe(name), marker_color=colour,
                             customdata=[safe(label(s)) if s else "-" for s in steps],
                             hovertemplate="%{customdata}: %{y:.3f}<extra>" + safe(name) + "</extra>"))
    n = every_nth(len(x))
    fig.update_xaxes(tickmode="array", tickvals=x[::n], ticktext=names[::n], tickangle=-60)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", tickvals=PROBABILITY_TICKS)
    fig.update_layout(barmode="group")
    thinned = "" if n == 1 else f"<br>every {ordinal(n)} token labelled; hover for the others"
    fig = style(fig, "Token probabilities side by side (* where the two runs wrote different tokens)" + thinned,
                None, "probability", 440)
    return legend_on_top(fig)


def head_shift_figure(shift: np.ndarray, name_a: str, name_b: str) -> go.Figure:
    """Layers down, heads across: how far each encoder head's attention moved from run A to run B, the number
    written in each cell so the ranking reads without the colour bar."""
    n_layer, n_head = shift.shape
    fig = go.Figure(go.Heatmap(
        z=shift, x=[f"head {h}" for h in range(n_head)], y=[f"layer {i}" for i in range(n_layer)],
        zmin=0, zmax=max(0.05, float(shift.max())), colorscale="Oranges", text=np.round(shift, 2),
        texttemplate="%{text:.2f}", textfont={"size": font_px()}, colorbar={"thickness": 18},
        hovertemplate="%{y}, %{x}: Jensen-Shannon distance %{z:.3f}<extra></extra>"))
    fig.update_yaxes(autorange="reversed")
    fig = style(fig, f"How far each encoder head's attention moved, {safe(name_a)} to {safe(name_b)}",
                None, None, max(300, 60 * n_layer + 160))
    fig.update_traces(colorbar_title_text="moved<br>0 = same<br>1 = unlike")
    return fig


def alignment_heads_note(trace: Trace) -> str:
    """Where a run's alignment heads came from, in a sentence; empty for openai-whisper's published ones."""
    source = trace.model.alignment_heads_source
    if source == "official":
        return ""
    if source == "generation_config.json":
        return f"{trace.model.name}: alignment heads from its generation_config.json."
    return (f"{trace.model.name} names no alignment heads, so they are {source.removeprefix('unknown: ')}: "
            "word timings from them are a best guess.")
