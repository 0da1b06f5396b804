"""The transcript as coloured tokens: colour is the decoder's confidence, hover shows the runners-up."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from whisper_inquiry.trace import TokenStep, Trace

from .common import safe, show, style

LEGEND = [(0.9, "#1a9850", "sure (90% or more)"), (0.6, "#91cf60", "likely"), (0.3, "#fee08b", "unsure"),
          (0.0, "#f46d43", "a guess (under 30%)")]


def _colour(prob: float) -> str:
    return next(c for threshold, c, _ in LEGEND if prob >= threshold)


def _tooltip(step: TokenStep, top: int = 5) -> str:
    lines = [f"{step.text!r}: p = {step.prob:.3f}, rank {step.rank + 1}, entropy {step.entropy_bits:.2f} bits"]
    lines += [f"  {a.text!r}  {a.prob:.3f}" for a in step.alternatives[:top]]
    return safe("\n".join(lines))


def transcript_html(steps: list[TokenStep], show_timestamps: bool = False) -> str:
    """HTML spans, one per token; every piece of text is escaped (a transcript is user data)."""
    spans = []
    for step in steps:
        if step.is_eot or (step.is_timestamp and not show_timestamps):
            continue
        style_ = f"background:{_colour(step.prob)};padding:2px 1px;border-radius:3px;line-height:2.1"
        if step.is_timestamp:
            style_ = "color:#666;font-size:0.8em;padding:0 2px"
        spans.append(f'<span title="{_tooltip(step)}" style="{style_}">{safe(step.text)}</span>')
    legend = " ".join(f'<span style="background:{c};padding:2px 6px;border-radius:3px">{label}</span>'
                      for _, c, label in LEGEND)
    return (f'<div style="font-size:1.45em;white-space:pre-wrap">{"".join(spans)}</div>'
            f'<div style="margin-top:.6em;font-size:.9em">{legend}</div>')


def transcript(trace: Trace, show_timestamps: bool = False) -> None:
    st.html(transcript_html(trace.steps, show_timestamps))


def language_figure(trace: Trace, top: int = 10) -> go.Figure:
    probs = list(trace.language.probs.items())[:top]
    fig = go.Figure(go.Bar(x=[p for _, p in probs][::-1], y=[c for c, _ in probs][::-1], orientation="h",
                           marker_color="#4c78a8", texttemplate="%{x:.1%}", textposition="outside"))
    fig.update_xaxes(range=[0, 1.15], tickformat=".0%")
    return style(fig, "Which language is it? (top 10 of the first 30 s)", "probability", "language", 380)


def language_section(trace: Trace) -> None:
    """The language guess as a chart, or why there is none (English-only models)."""
    st.subheader("Language")
    if trace.language.applies:
        show(language_figure(trace))
        st.caption(trace.language.note)
    else:
        st.write(trace.language.note)
