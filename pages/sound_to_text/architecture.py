"""Architecture: the loaded model's sizes and the tensor shapes of this very run."""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from components.common import columns, font_px, page_end, page_start, show, style
from components.model_diagram import decoder_counts, model_figure
from components.session import require_trace

page_start("What is inside the model?",
           "Whisper is an encoder-decoder Transformer. The encoder reads 30 s of log-mel; the decoder writes "
           "tokens while attending to the encoder's output. Below: the numbers of the loaded model, and the shape "
           "of every tensor along the way for the audio you just analysed.")
trace = require_trace()
d = trace.model.dims
c1, c2 = columns([2, 3])
with c1:
    st.subheader(f"{trace.model.name}: {trace.model.n_params / 1e6:.1f} M parameters")
    names = {"n_mels": "mel bins", "n_audio_ctx": "encoder positions", "n_audio_state": "encoder width",
             "n_audio_head": "encoder heads", "n_audio_layer": "encoder layers", "n_vocab": "vocabulary",
             "n_text_ctx": "decoder positions", "n_text_state": "decoder width", "n_text_head": "decoder heads",
             "n_text_layer": "decoder layers"}
    st.dataframe(pd.DataFrame([{"dimension": names[k], "name": k, "value": v} for k, v in d.items()]),
                 hide_index=True)
    st.caption(f"Running on {trace.model.device} in {trace.model.dtype}.")
with c2:
    params = trace.model.params_by_module
    fig = go.Figure(go.Bar(x=list(params.values()), y=list(params), orientation="h", marker_color="#4c78a8",
                           texttemplate="%{x:.3s}", textposition="outside", cliponaxis=False,
                           textfont={"size": font_px()}))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(range=[0, 1.3 * max(params.values(), default=1)])  # room for the value beside the longest
    show(style(fig, "Parameters per part of the model", "parameters", None, 380))

show(model_figure(trace))
st.caption("Left: the encoder reads the whole 30 s window once. Right: the decoder writes one token at a time "
           "and appends it to its input (dashed); in every decoder block, cross-attention (red) lets each token read "
           f"all {trace.model.dims['n_audio_ctx']:,} of the encoder's output vectors. Shapes are rows x width; the "
           "decoder's are at its last step.")

st.subheader("The pipeline, with this run's numbers")
c = decoder_counts(trace)
rows = [
    ("audio", f"{len(trace.audio):,} samples", f"{trace.duration_s:.2f} s at 16 kHz, mono"),
    ("windows", f"{len(trace.windows)}", "30 s each; shorter audio is padded"),
    ("log-mel", f"{d['n_mels']} x 3,000", "mel bins x 10 ms frames"),
    ("conv1 + GELU", f"{d['n_audio_state']} x 3,000", "kernel 3, stride 1"),
    ("conv2 + GELU", f"{d['n_audio_state']} x 1,500", "kernel 3, stride 2: one vector per 20 ms"),
    ("positional embedding, added", f"1,500 x {d['n_audio_state']}", "fixed sinusoids"),
    (f"encoder blocks x {d['n_audio_layer']}", f"1,500 x {d['n_audio_state']}",
     f"self-attention ({d['n_audio_head']} heads) + MLP ({4 * d['n_audio_state']} wide)"),
    ("tokens written", f"{c['written']}", f"window 1: {c['text']} of text, {c['timestamps']} timestamps, "
                                          f"{c['end']} end-of-text (as the Tokens page counts them)"),
    ("decoder input", f"up to {c['longest_input']} tokens",
     f"{c['prompt']} prompt + the {c['written'] - c['end']} written before end-of-text (which is never read back)"),
    (f"decoder blocks x {d['n_text_layer']}", f"{c['longest_input']} x {d['n_text_state']}",
     f"masked self-attention + cross-attention to 1,500 audio vectors ({d['n_text_head']} heads) + MLP"),
    ("logits", f"{d['n_vocab']:,} per step", "scores for every token; softmax gives probabilities"),
]
st.table(pd.DataFrame(rows, columns=["stage", "shape", "what it is"]).set_index("stage"))
page_end()
