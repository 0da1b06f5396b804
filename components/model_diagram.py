"""A diagram of the model with this run's shapes: conv stem, encoder blocks, decoder blocks, and the
cross-attention that joins them. Drawn with plotly shapes and annotations, so its text follows the
house type size (and presenter mode) like every other chart."""

from __future__ import annotations

import plotly.graph_objects as go

from whisper_inquiry.trace.schema import Trace

from .common import font_px, plot_room, style

ENCODER, DECODER, CROSS = "#dbe9f6", "#fde3c8", "#d62728"


def decoder_counts(trace: Trace) -> dict[str, int]:
    """What the decoder read and wrote in the first window, counted the way the Tokens page counts:
    `written` is every step it took (text, timestamps, end-of-text); the end-of-text it writes last is
    never fed back, so its longest input is prompt + written - 1."""
    attempt = trace.windows[0].final
    steps = attempt.steps
    written = len(steps)
    return {"prompt": len(attempt.prompt), "written": written,
            "text": sum(not (s.is_timestamp or s.is_eot) for s in steps),
            "timestamps": sum(s.is_timestamp for s in steps), "end": sum(s.is_eot for s in steps),
            "longest_input": len(attempt.prompt) + written - (1 if steps and steps[-1].is_eot else 0)}


def model_boxes(trace: Trace) -> list[tuple[str, str, str, str]]:
    """(column, name, shape, colour) of each box, top to bottom in its column: what the diagram says."""
    d = trace.model.dims
    c = decoder_counts(trace)
    enc, dec, n_ctx = d["n_audio_state"], d["n_text_state"], d["n_audio_ctx"]
    return [
        ("encoder", "log-mel", f"{d['n_mels']} x 3,000", ENCODER),
        ("encoder", "2 convolutions", f"{enc} x 1,500", ENCODER),
        ("encoder", "+ positions", f"{n_ctx:,} x {enc}", ENCODER),
        ("encoder", f"{d['n_audio_layer']} encoder blocks", f"{n_ctx:,} x {enc}", ENCODER),
        ("decoder", "tokens so far", f"{c['prompt']} prompt + {c['written'] - c['end']}", DECODER),
        ("decoder", "embedding", f"{c['longest_input']} x {dec}", DECODER),
        ("decoder", f"{d['n_text_layer']} decoder blocks", f"{c['longest_input']} x {dec}", DECODER),
        ("decoder", "logits", f"{d['n_vocab']:,} scores", DECODER),
    ]


def model_figure(trace: Trace) -> go.Figure:
    """Two columns of boxes joined by arrows; the red arrow is cross-attention, the dashed one the loop
    that appends each chosen token to the decoder's input."""
    boxes = model_boxes(trace)
    longest = max(len(part) for b in boxes for part in b[1:3])
    box_px = 0.84 * plot_room() / 2.35  # a box's width when the chart is as narrow as we plan for
    size = int(min(font_px(), box_px / (0.62 * longest)))  # large type, but never wider than its box
    fig = go.Figure()
    centres: dict[str, tuple[float, float]] = {}
    for column, x in (("encoder", 0.0), ("decoder", 1.0)):
        rows = [b for b in boxes if b[0] == column]
        for k, (_, name, shape, colour) in enumerate(rows):
            y = -k
            centres[name] = (x, y)
            fig.add_shape(type="rect", x0=x - 0.42, x1=x + 0.42, y0=y - 0.36, y1=y + 0.36, fillcolor=colour,
                          line={"color": "#555", "width": 1.5}, layer="below")
            fig.add_annotation(x=x, y=y, text=f"<b>{name}</b><br>{shape}", showarrow=False,
                               font={"size": size})
        for (_, a, _, _), (_, b, _, _) in zip(rows, rows[1:]):
            (xa, ya), (xb, yb) = centres[a], centres[b]
            fig.add_annotation(x=xb, y=yb + 0.36, ax=xa, ay=ya - 0.36, xref="x", yref="y", axref="x", ayref="y",
                               text="", showarrow=True, arrowhead=2, arrowwidth=2, arrowcolor="#333", standoff=0)
    enc_blocks = next(b[1] for b in boxes if b[1].endswith("encoder blocks"))
    dec_blocks = next(b[1] for b in boxes if b[1].endswith("decoder blocks"))
    (xe, ye), (xd, yd) = centres[enc_blocks], centres[dec_blocks]
    fig.add_annotation(x=xd - 0.42, y=yd, ax=xe + 0.42, ay=ye, xref="x", yref="y", axref="x", ayref="y",
                       text="", showarrow=True, arrowhead=2, arrowwidth=4, arrowcolor=CROSS)
    fig.add_annotation(x=0.5, y=ye - 0.42, showarrow=False,
                       text="<b>cross-attention</b>: each decoder<br>block reads the encoder's output",
                       yanchor="top", font={"size": size - 2, "color": CROSS})
    (xt, yt), (xl, yl) = centres["tokens so far"], centres["logits"]
    fig.add_trace(go.Scatter(x=[xl + 0.42, xl + 0.6, xt + 0.6, xt + 0.42], y=[yl, yl, yt, yt], mode="lines",
                             line={"color": "#333", "width": 2, "dash": "dash"}, hoverinfo="skip"))
    fig.add_annotation(x=xt + 0.64, y=(yt + yl) / 2, text="append", showarrow=False, textangle=-90,
                       font={"size": size - 2})
    fig.add_annotation(x=0, y=0.45, text="<b>encoder</b><br>once per 30 s", showarrow=False, font={"size": size},
                       yanchor="bottom")
    fig.add_annotation(x=1, y=0.45, text="<b>decoder</b><br>once per token", showarrow=False, font={"size": size},
                       yanchor="bottom")
    fig.update_xaxes(visible=False, range=[-0.5, 1.85])
    fig.update_yaxes(visible=False, range=[-4.25, 1.25])
    fig.update_layout(showlegend=False, plot_bgcolor="white", margin={"l": 10, "r": 10})
    return style(fig, "The model, with this run's shapes", height=160 + 6 * int(5 * size))
