"""Encoder-span surgery: overwrite the encoder's states of one span and see which words vanish."""

import streamlit as st

from components import probe_figs, probes
from components.common import columns, error, page_end, page_start, plain
from components.session import require_trace
from whisper_inquiry.audio.load import SAMPLE_RATE, to_wav_bytes
from whisper_inquiry.errors import InquiryError
from whisper_inquiry.experiments.surgery import align_words

page_start("What if the encoder never heard this span?",
           "The decoder reads the sound only through the encoder's 1,500 states, one every 20 ms. Here we replace "
           "the states of one span with those the encoder writes for silence, then let the decoder write freely. "
           "On tiny, doing this to a word's span often deletes exactly that word (first shown by the "
           "interpretability researcher 'er537' in 2023): the words are read from their own span and from "
           "nowhere else.")
trace = require_trace()
duration_s = round(int(min(trace.duration_s, 30.0) / 0.02) * 0.02, 2)  # on the slider's 20 ms steps


def span_ui() -> tuple[float, float]:
    """A span from a drag on the log-mel (box select) or from the slider; a new drag moves the slider."""
    state = st.session_state.get("surgery_mel")
    box = state.selection.get("box") if state is not None and state.selection else None
    if box and box[0].get("x") and box[0]["x"] != st.session_state.get("_surgery_box"):
        st.session_state["_surgery_box"] = box[0]["x"]
        x0, x1 = sorted(float(v) for v in box[0]["x"][:2])
        st.session_state["surgery_span"] = (max(0.0, round(x0, 2)), min(duration_s, round(x1, 2)))
    default = (3.0, 3.5) if duration_s >= 3.5 else (round(duration_s / 4, 2), round(duration_s / 2, 2))
    if "surgery_span" not in st.session_state:
        st.session_state["surgery_span"] = default
    return st.slider("Span whose encoder states are replaced (s)", 0.0, duration_s, step=0.02, key="surgery_span")


start_s, end_s = span_ui()
found = probes.cached(trace, "surgery", round(start_s, 2), round(end_s, 2))
timed = [w for w in trace.words if w.end_s <= duration_s]
# by place, not spelling: of a word said twice, only the occurrence that vanished turns red
places = align_words([w.word for w in timed], found.original_text) if found else [None] * len(timed)
gone = set(found.removed_at) if found else set()
words = [probe_figs.WordMark(w.word.strip(), w.start_s, w.end_s, place is not None and place in gone)
         for w, place in zip(timed, places)]
fig = probe_figs.surgery_span_figure(trace.windows[0].mel, duration_s, (start_s, end_s), words)
st.session_state["_page_bytes"] = st.session_state.get("_page_bytes", 0) + len(fig.to_json())
st.plotly_chart(fig, key="surgery_mel", on_select="rerun", selection_mode="box", theme=None,
                config={"displaylogo": False})
st.caption("Drag across the log-mel to choose a span (or use the slider). Words above are where DTW placed them "
           "in the analysis; after the surgery, those that vanished turn red.")
c1, c2 = columns([1, 3])
run = c1.button("Operate", type="primary", icon=":material/content_cut:")
span = trace.audio[int(start_s * SAMPLE_RATE):int(end_s * SAMPLE_RATE)] if end_s > start_s else trace.audio[:1]
c2.audio(to_wav_bytes(span), format="audio/wav")
c2.caption(f"The span alone: {max(end_s - start_s, 0.0):.2f} s of audio.")  # the player shows whole seconds
try:
    result = probes.surgery(trace, start_s, end_s, run)
except InquiryError as exc:
    error(str(exc))
    st.stop()
if result is None:
    if probes.was_cancelled("surgery"):
        st.warning("Cancelled: nothing was kept.")
    else:
        st.info("Press Operate to decode without it.")
else:
    if run and not found:
        st.rerun()  # draw the vanished words in red on the log-mel above
    in_span = {place for w, place in zip(timed, places) if place is not None and w.end_s > start_s and
               w.start_s < end_s}
    inside = sum(1 for i in result.removed_at if i in in_span)
    # a change is the span's own when every word it removed lies in the span, or, for words only inserted,
    # when a neighbour does; any other change happened elsewhere in the sentence
    elsewhere = [c for c in result.changes if not ((c[0] < c[1] and all(i in in_span for i in range(c[0], c[1])))
                                                   or (c[0] == c[1] and {c[0] - 1, c[0]} & in_span))]
    m1, m2, m3 = columns(3)
    m1.metric("Words removed", len(result.removed_words),
              help="words of the original missing from the new transcript, matched by place (case and "
                   "punctuation ignored)")
    m2.metric("of them inside the span", inside,
              help="removed words whose estimated time (DTW) overlaps the span; the rest vanished elsewhere")
    m3.metric("Words added", len(result.added_words), help="words the new transcript has that the original lacks")
    st.markdown("**Original** (greedy, no timestamps)")
    plain(result.original_text)
    st.markdown(f"**With {start_s:.2f}-{end_s:.2f} s replaced by padding states**")
    plain(result.text)
    if result.removed_words or result.added_words:
        plain("removed: " + " ".join(result.removed_words) + ("   added: " + " ".join(result.added_words)
                                                              if result.added_words else ""))
    if not result.changes:
        verdict = "Nothing changed: the decoder did not need this span's states to write its words."
    elif elsewhere:
        verdict = (f"Words outside the span changed too ({len(elsewhere)} place(s)): the decoder's reading of "
                   "the rest of the sentence leaned on this span as well.")
    elif result.added_words:
        verdict = ("Only the span's words changed: the decoder wrote other words in their place, guessing "
                   "from the sound at the span's edges and from the sentence around it.")
    else:
        verdict = "Only the span's words vanished: the decoder read them there and nowhere else."
    st.caption(verdict + " Word times are whisper's DTW estimates from the analysis.")
page_end()
