"""Overview: what was said, how sure the model was, and what it took."""

import pandas as pd
import streamlit as st

from components.common import columns, page_end, page_start, plain
from components.corpus_figs import reference_box
from components.listen import words_chart
from components.session import require_trace
from components.transcript import fallback_note, language_section, transcript
from whisper_inquiry.audio.load import to_wav_bytes

page_start("What did Whisper hear?",
           "The transcript below is coloured by how sure the decoder was of each token: hover a token to see "
           "its probability and the runners-up it beat. The other pages open up each step, from the sound "
           "wave to the search over possible sentences.")
trace = require_trace()

if trace.words:
    words_chart(trace, "overview_word")

left, right = columns([3, 2])
with left:
    st.subheader("Listen")
    st.audio(to_wav_bytes(trace.audio), format="audio/wav")
    st.caption(f"{trace.duration_s:.1f} s from {trace.codec}, {trace.sample_rate_in} Hz, "
               f"{trace.channels_in} channel(s), resampled to 16 kHz mono for Whisper.")
    st.subheader("Transcript")
    if not trace.text.strip():
        st.warning("Whisper wrote nothing: it judged this audio to hold no speech "
                   "(see the no-speech probability in the segments below).")
    for note in filter(None, (fallback_note(w) for w in trace.windows)):
        (st.warning if "keeps the last" in note else st.info)(note)
    transcript(trace, st.toggle("Show timestamp tokens", False))
    st.caption("Hover a token for its probability, its word's estimated time and the runners-up it beat.")
    reference_box(trace)
with right:
    language_section(trace)
    st.subheader("Time spent")
    timings = {k: v for k, v in trace.timings_ms.items() if k != "total"}
    st.dataframe(pd.DataFrame({"stage": list(timings), "ms": [round(v) for v in timings.values()]}),
                 hide_index=True)
    st.caption(f"Total {trace.timings_ms['total'] / 1000:.2f} s on {trace.model.device} with {trace.model.name}.")

st.subheader("Segments")
st.caption("Whisper writes timestamps itself; each segment is the text between two of them. Log-probability, "
           "no-speech probability and temperature belong to the 30 s window a segment came from.")
if not trace.segments:
    st.caption("Whisper wrote no segment for this audio.")
else:
    st.table(pd.DataFrame([{  # a static table: each segment's text wraps in full
        "time (s)": f"{s.start_s:.2f}-{s.end_s:.2f}", "text": s.text.strip(),
        "avg log-prob": f"{s.avg_logprob:.3f}", "no-speech prob": f"{s.no_speech_prob:.3f}",
        "temperature": f"{s.temperature:g}",
    } for s in trace.segments]).set_index("time (s)"))

st.subheader("The prompt: what the decoder is told before it writes")
window = trace.windows[0]
st.table(pd.DataFrame([{"token": p.text, "id": p.id, "meaning": p.meaning}
                      for p in window.final.prompt]).set_index("token"))
st.caption("Then the decoder writes one token at a time, each chosen from a probability distribution over "
           f"{trace.model.dims['n_vocab']:,} tokens.")
plain(f"File: {trace.audio_name}")
page_end()
