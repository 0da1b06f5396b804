"""Tokens: how probable each one was, how uncertain the decoder was, and what it could have written."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from whisper_inquiry.trace import TokenStep

from .common import CONFIDENCE_SCALE, GREY, safe, style


def label(step: TokenStep) -> str:
    return step.text.replace(" ", "␣") if step.text.strip() else repr(step.text)


def probability_figure(steps: list[TokenStep]) -> go.Figure:
    x = list(range(len(steps)))
    fig = go.Figure(go.Bar(
        x=x, y=[s.prob for s in steps], marker={"color": [s.prob for s in steps], "colorscale": CONFIDENCE_SCALE,
                                                "cmin": 0, "cmax": 1},
        customdata=[[safe(label(s)), s.rank + 1, s.entropy_bits] for s in steps],
        hovertemplate="step %{x}: %{customdata[0]}<br>p = %{y:.3f}, rank %{customdata[1]}, "
                      "entropy %{customdata[2]:.2f} bits<extra></extra>"))
    fig.update_xaxes(tickmode="array", tickvals=x, ticktext=[safe(label(s)) for s in steps], tickangle=-60)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%")
    return style(fig, "Probability of each token the decoder wrote (click a bar to inspect it)",
                 "token, in order", "probability", 420)


def entropy_figure(steps: list[TokenStep]) -> go.Figure:
    x = list(range(len(steps)))
    fig = go.Figure(go.Scatter(x=x, y=[s.entropy_bits for s in steps], mode="lines+markers",
                               customdata=[safe(label(s)) for s in steps],
                               hovertemplate="step %{x}: %{customdata}<br>%{y:.2f} bits<extra></extra>"))
    return style(fig, "Uncertainty at each step (entropy of the next-token distribution)", "step", "bits", 300)


def alternatives_figure(step: TokenStep) -> go.Figure:
    alts = step.alternatives[::-1]
    colours = ["#1a9850" if a.id == step.id else GREY for a in alts]
    fig = go.Figure(go.Bar(x=[a.prob for a in alts], y=[safe(repr(a.text)) for a in alts], orientation="h",
                           marker_color=colours, texttemplate="%{x:.1%}", textposition="outside",
                           hovertemplate="%{y}: %{x:.4f}<extra></extra>"))
    top = max(a.prob for a in step.alternatives) if step.alternatives else 1
    fig.update_xaxes(range=[0, min(1.0, top * 1.25) or 1], tickformat=".0%")
    return style(fig, f"Runners-up for {safe(repr(step.text))} (green: the one written)", "probability", None,
                 60 + 34 * len(alts))


def timestamp_rows(steps: list[TokenStep], start_s: float) -> list[dict]:
    return [{"step": i, "token": s.text, "time in window (s)": s.timestamp_s,
             "time in audio (s)": round(start_s + (s.timestamp_s or 0.0), 2), "probability": round(s.prob, 3)}
            for i, s in enumerate(steps) if s.is_timestamp]


def confidence_summary(steps: list[TokenStep]) -> dict:
    probs = np.array([s.prob for s in steps if not s.is_eot] or [np.nan])
    return {"tokens": int(np.isfinite(probs).sum()), "mean probability": float(np.nanmean(probs)),
            "lowest": float(np.nanmin(probs)), "under 50%": int((probs < 0.5).sum())}
