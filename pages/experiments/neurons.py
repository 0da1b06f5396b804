"""Listen to a neuron: encoder MLP neurons that fire in a chosen span, and where else they fire."""

import numpy as np
import pandas as pd
import streamlit as st

from components import probe_figs, probes
from components.common import columns, error, page_end, page_start, presenting, show
from components.listen import play
from components.session import require_trace
from whisper_inquiry.errors import InquiryError

page_start("What does one neuron listen for?",
           "Every encoder block widens each 20 ms state into thousands of MLP neurons (1,536 on tiny). Pick a word: "
           "the neurons that fire much more there than anywhere else in the clip are listed, with their activity "
           "over time under the log-mel, and you can hear where each fires most. On tiny, block-2 neurons are "
           "reported to follow speech sounds (phonemes): listen for the sound they share across clips.")
trace = require_trace()
duration_s = min(trace.duration_s, 30.0)
words = [w for w in trace.words if w.end_s <= duration_s and w.end_s > w.start_s]
if not words:
    st.warning("No words were written for this audio: choose speech in the sidebar.")
    page_end()
    st.stop()


def default_word() -> int:
    """The longest word by letters, away from the clip's edges: DTW stretches the first word back to 0 s
    (mostly silence) and the last one into the trailing pause, so neurons found there fire on the edges."""
    inner = range(1, len(words) - 1) if len(words) >= 3 else range(len(words))
    return max(inner, key=lambda i: (sum(c.isalpha() for c in words[i].word), words[i].end_s - words[i].start_s))


def controls_ui() -> tuple[int, float, float, int]:
    c1, c2, c3 = columns([1, 2, 1])
    n_layer = int(trace.model.dims["n_audio_layer"])
    layer = c1.selectbox("Encoder block", range(n_layer), index=min(2, n_layer - 1))
    labels = [f"{w.word.strip()} ({w.start_s:.2f}-{w.end_s:.2f} s)" for w in words]
    chosen = c2.selectbox("Span: a word", range(len(words)), index=default_word(), format_func=lambda i: labels[i])
    top_k = c3.slider("Neurons", 1, 12, 6)
    return layer, words[chosen].start_s, words[chosen].end_s, top_k


layer, start_s, end_s, top_k = controls_ui()
try:
    found = probes.neurons(trace, layer, start_s, end_s, top_k)
except InquiryError as exc:
    error(str(exc))
    st.stop()
show(probe_figs.neuron_figure(trace.windows[0].mel, duration_s, found))
st.caption("Top: the log-mel. Bottom: each neuron's output (after its GELU) every 20 ms; the red box is the chosen "
           "word. A neuron bright only inside the box is selective for something heard there.")
st.subheader("Where each neuron fires most in this clip")
cells = st.columns(3) if not presenting() else None  # one above the other in presenter mode, in order
for n, (neuron, peak, sel) in enumerate(zip(found.neurons, found.peak_s, found.selectivity)):
    with cells[n % 3] if cells else st.container():
        st.markdown(f"**neuron {neuron}**: {sel:+.2f} more active in the span; peaks at {peak:.2f} s")
        play(trace.audio, max(0.0, peak - 0.3), peak + 0.3)

st.subheader("Across the bundled English samples")
chosen = tuple(int(n) for n in found.neurons[:3])
run = st.button(f"Find the strongest moments of neurons {', '.join(map(str, chosen))}", icon=":material/search:")
try:
    moments = probes.moments(trace, layer, chosen, run)
except InquiryError as exc:
    error(str(exc))
    st.stop()
if moments is None:
    st.caption("Transcribes each bundled English sample once (for its word timings) and lists where each of the "
               "three most selective neurons fires hardest.")
else:
    table = pd.DataFrame([{"neuron": m.neuron, "sample": m.clip, "time (s)": round(m.time_s, 2),
                           "activation": round(m.activation, 2), "word there": m.word} for m in moments])
    st.table(table, hide_index=True)  # static: its headers wrap on a projector
    pick = st.selectbox("Play a moment", range(len(moments)),
                        format_func=lambda i: f"neuron {moments[i].neuron}: {moments[i].word or '?'} in "
                                              f"{moments[i].clip} at {moments[i].time_s:.2f} s")
    m = moments[pick]
    audio = probes.sample_audio(m.clip)
    play(audio, max(0.0, m.time_s - 0.3), m.time_s + 0.3)
    st.caption(f"{np.mean([x.activation for x in moments]):.2f} is the mean activation of these moments. If a "
               "neuron's moments share a sound (an 's', a vowel) more than a word, it is listening to phonemes.")
page_end()
