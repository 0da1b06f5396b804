"""Tokens: how probable each one was, how uncertain the decoder was, and what it could have written."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from whisper_inquiry.trace.schema import TokenStep

from .common import CONFIDENCE_SCALE, GREY, font_px, label_step, ordinal, plot_room, safe, style


def label(step) -> str:
    """A token as a reader should see it: a leading space is drawn as ␣ (" the" and "the" are different
    tokens), and a token of spaces only is written out."""
    return visible(step.text)


def visible(text: str) -> str:
    return text.replace(" ", "␣") if text.strip() else repr(text)


def least_certain(steps: list[TokenStep]) -> int:
    """The step to open on: the least probable token of a word (timestamps, end-of-text and, where there
    are words, punctuation left out)."""
    text = [i for i, s in enumerate(steps) if not (s.is_timestamp or s.is_eot)] or list(range(len(steps)))
    text = [i for i in text if any(c.isalnum() for c in steps[i].text)] or text
    return min(text, key=lambda i: steps[i].prob)


# no "0%" label: the first token's turned label reaches under the y axis, right where "0%" would be
PROBABILITY_TICKS = [0.25, 0.5, 0.75, 1.0]


def every_nth(n: int, room_px: float | None = None) -> int:
    """Tick labels turned -60 degrees need about 1.3 em each along the axis, planned at 1.45 (the y axis's
    labels take some of the room): show every n-th that fits."""
    room_px = room_px or plot_room()
    return label_step(n, room_px, 1.45 * font_px())


def probability_figure(steps: list[TokenStep], chosen: int | None = None, room_px: float | None = None) -> go.Figure:
    """One bar per token, in order. Tick labels are thinned so they never overlap (every n-th; hover or
    zoom to read the rest); the chosen token is outlined and always labelled."""
    room_px = room_px or plot_room()
    x = list(range(len(steps)))
    n = every_nth(len(steps), room_px)
    ticks = sorted(set(x[::n]) | ({chosen} if chosen is not None else set()))
    if chosen is not None:  # a neighbour of the chosen one would collide with it
        ticks = [t for t in ticks if t == chosen or abs(t - chosen) >= n]
    fig = go.Figure(go.Bar(
        x=x, y=[s.prob for s in steps], marker={"color": [s.prob for s in steps], "colorscale": CONFIDENCE_SCALE,
                                                "cmin": 0, "cmax": 1},
        customdata=[[safe(label(s)), s.rank + 1, s.entropy_bits] for s in steps],
        hovertemplate="step %{x}: %{customdata[0]}<br>p = %{y:.3f}, rank %{customdata[1]}, "
                      "entropy %{customdata[2]:.2f} bits<extra></extra>"))
    if chosen is not None:
        fig.data[0].marker.line = {"width": [4 if i == chosen else 0 for i in x], "color": "#111"}
    fig.update_xaxes(tickmode="array", tickvals=ticks, ticktext=[safe(label(steps[t])) for t in ticks],
                     tickangle=-60, range=[-0.6, len(steps) - 0.4])
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", tickvals=PROBABILITY_TICKS)
    shown = "" if n == 1 else f"; every {ordinal(n)} labelled"
    return style(fig, f"Probability of each token the decoder wrote (click a bar{shown})",
                 "token, in order", "probability", 440)


def entropy_figure(steps: list[TokenStep]) -> go.Figure:
    x = list(range(len(steps)))
    fig = go.Figure(go.Scatter(x=x, y=[s.entropy_bits for s in steps], mode="lines+markers",
                               customdata=[safe(label(s)) for s in steps],
                               hovertemplate="step %{x}: %{customdata}<br>%{y:.2f} bits<extra></extra>"))
    return style(fig, "Uncertainty at each step (entropy of the next-token distribution)", "step", "bits", 300)


def alternatives_figure(step: TokenStep, room_px: float | None = None) -> go.Figure:
    room_px = room_px or plot_room()
    alts = step.alternatives[::-1]
    colours = ["#1a9850" if a.id == step.id else GREY for a in alts]
    names = [f"{k}. {safe(visible(a.text))}" for k, a in zip(range(len(alts), 0, -1), alts)]  # unique: ranks
    fig = go.Figure(go.Bar(x=[a.prob for a in alts], y=names, orientation="h",
                           marker_color=colours, texttemplate="%{x:.1%}", textposition="outside", cliponaxis=False,
                           hovertemplate="%{y}: %{x:.4f}<extra></extra>"))
    top = max(a.prob for a in step.alternatives) if step.alternatives else 1
    fig.update_xaxes(range=[0, min(1.0, top * 1.3) or 1], tickformat=".0%")
    # a sampled token can be far down the list: then none is green, and the title says where it ranked
    written = ("green: written" if any(a.id == step.id for a in alts)
               else f"written, at rank {step.rank + 1:,}, is not among them")
    return style(fig, f"Runners-up for “{safe(visible(step.text))}” ({written})", "probability", None,
                 110 + int(2.1 * font_px()) * len(alts), room_px=room_px)


def timestamp_rows(steps: list[TokenStep], start_s: float) -> list[dict]:
    return [{"step": i, "token": label(s), "time in window (s)": s.timestamp_s,
             "time in audio (s)": round(start_s + (s.timestamp_s or 0.0), 2), "probability": round(s.prob, 3)}
            for i, s in enumerate(steps) if s.is_timestamp]


def confidence_summary(steps: list[TokenStep]) -> dict:
    probs = np.array([s.prob for s in steps if not s.is_eot] or [np.nan])
    if not np.isfinite(probs).any():  # no token written: a dash, never "nan"
        return {"tokens": 0, "mean probability": "-", "lowest": "-", "under 50%": 0}
    return {"tokens": int(np.isfinite(probs).sum()), "mean probability": round(float(np.nanmean(probs)), 3),
            "lowest": round(float(np.nanmin(probs)), 4), "under 50%": int((probs < 0.5).sum())}
