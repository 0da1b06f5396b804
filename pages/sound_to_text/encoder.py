"""Encoder: the convolutional stem, positions, and where every attention head looks."""

import pandas as pd
import streamlit as st

from components.common import column_room, columns, page_end, page_start, show
from components.encoder_figs import (
    activation_figure,
    head_summary_figure,
    head_view_figure,
    model_view_figure,
    positional_figure,
)
from components.glossary import term
from components.session import engine, require_trace, window_ui
from whisper_inquiry.trace.derived import head_summaries

page_start("What does the encoder do with the sound?",
           f"Two convolutions ({term('conv stem', 'the conv stem')}) turn the 3,000 log-mel columns into 1,500 "
           "vectors (one every 20 ms), a fixed positional pattern is added, and then each encoder layer lets every "
           f"moment look at every other moment through several {term('attention head', 'attention heads')}. "
           "Bright cells show where a head looks.")
trace = require_trace()
index = window_ui(trace, "encoder_window")
window = trace.windows[index]
enc = window.encoder

st.header("1. Convolutional stem")
c1, c2 = columns(2)
with c1:
    show(activation_figure(window.conv1, "conv1 + GELU: 3,000 frames (10 ms)", window.start_s, column_room(0.5)))
with c2:
    show(activation_figure(window.conv2, "conv2 + GELU, stride 2: 1,500 frames (20 ms)", window.start_s,
                           column_room(0.5)))
st.table(pd.DataFrame([{"tensor": a.name, "shape (channels x time)": " x ".join(map(str, a.stats.shape)),
                        "min": round(a.stats.minimum, 3), "max": round(a.stats.maximum, 3),
                        "mean": round(a.stats.mean, 3), "std": round(a.stats.std, 3)}
                       for a in (window.conv1, window.conv2, window.encoder_input)]), hide_index=True)
st.caption("Red is positive, blue negative; channels are averaged in groups so the picture fits a screen. "
           f"{term('GELU')} is the smooth switch after each convolution: it passes positive values and squashes "
           f"negative ones towards zero. {term('stride', 'Stride')} 2 means conv2 moves two frames at a time, so it "
           "writes one vector per 20 ms: 1,500 for the 30 s window.")

st.header("2. Positions")
c1, c2 = columns(2)
with c1:
    show(positional_figure(trace.model.positional, column_room(0.5)))
with c2:
    show(activation_figure(window.encoder_input, "Encoder input = conv2 + positions", window.start_s,
                           column_room(0.5)))
st.caption("Attention by itself has no sense of order; the sinusoids (fast-changing at the bottom of the left "
           "chart, slow at the top) give each of the 1,500 positions a unique signature.")

st.header("3. Self-attention: the model view")
summaries = head_summaries(trace, index)
show(model_view_figure(summaries, window.content_s))
st.caption("Each thumbnail is one head over the whole 30 s window (30 s by 30 s): rows are where the head is, "
           "columns where it looks. A bright diagonal "
           "means it attends to its neighbours; vertical stripes mean everyone looks at the same moments. "
           f"Only the first {window.content_s:.1f} s are audio: the rest of the 30 s window is padding (veiled in "
           "white), which the encoder attends to like any other input.")
show(head_summary_figure(summaries))
st.caption(f"{term('entropy', 'Entropy')} is low when a head focuses on few moments; distance is how far away "
           "(in ms) it looks on average. Both are computed over the audio's own frames, leaving the padding out, "
           "so a short clip's distances stay within its length.")

st.header("4. One head, full size")


@st.fragment  # choosing a layer, head or time range redraws this chart alone, not the whole page
def head_view() -> None:
    c1, c2, c3 = st.columns([1, 1, 3])
    layer = c1.selectbox("Layer", range(enc.n_layer), index=enc.n_layer - 1, key="enc_layer")
    head = c2.selectbox("Head", range(enc.n_head), key="enc_head")
    end_s = float(max(1, min(30, round(window.content_s + 0.5))))
    span = c3.slider("Time range (s)", 0.0, 30.0, (0.0, end_s), 0.5, key="enc_span")
    head_map = engine(trace.model.name).head(trace, index, layer, head)  # exact, from q and k or recomputed
    show(head_view_figure(window, head_map, layer, head, span[0], span[1]))
    st.caption("The log-mel on top shares the time axis: find a word in the spectrogram, then read down to see "
               "what that moment attends to. Narrow the range to 6 s or less to see every 20 ms cell.")


head_view()
page_end()
