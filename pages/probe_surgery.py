"""Encoder-span surgery: overwrite the encoder's states of one span and see which words vanish."""

import streamlit as st

from components import probe_figs, probes
from components.common import error, page_end, page_start, plain
from components.session import require_trace
from whisper_inquiry.audio import SAMPLE_RATE, to_wav_bytes
from whisper_inquiry.errors import InquiryError

page_start("What if the encoder never heard this span?",
           "The decoder reads the sound only through the encoder's 1,500 states, one every 20 ms. Here we replace "
           "the states of one span with those the encoder writes for silence, then let the decoder write freely. "
           "On tiny, doing this to 3.0-3.5 s deletes exactly the words spoken there (er537, 2023): the words are "
           "read from their own span and from nowhere else.")
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
removed = set(found.removed_words) if found else set()
words = [probe_figs.WordMark(w.word.strip(), w.start_s, w.end_s, w.word.strip().lower().strip(".,!?") in removed)
         for w in trace.words if w.end_s <= duration_s]
fig = probe_figs.surgery_span_figure(trace.windows[0].mel, duration_s, (start_s, end_s), words)
st.session_state["_page_bytes"] = st.session_state.get("_page_bytes", 0) + len(fig.to_json())
st.plotly_chart(fig, key="surgery_mel", on_select="rerun", selection_mode="box", theme=None,
                config={"displaylogo": False})
st.caption("Drag across the log-mel to choose a span (or use the slider). Words above are where DTW placed them "
           "in the analysis; after the surgery, those that vanished turn red.")
c1, c2 = st.columns([1, 3])
run = c1.button("Operate", type="primary", icon=":material/content_cut:")
span = trace.audio[int(start_s * SAMPLE_RATE):int(end_s * SAMPLE_RATE)] if end_s > start_s else trace.audio[:1]
c2.audio(to_wav_bytes(span), format="audio/wav")
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
    st.metric("Words removed", len(result.removed_words),
              help="words of the original missing from the new transcript (case and punctuation ignored)")
    st.markdown("**Original** (greedy, no timestamps)")
    plain(result.original_text)
    st.markdown(f"**With {start_s:.2f}-{end_s:.2f} s replaced by padding states**")
    plain(result.text)
    if result.removed_words or result.added_words:
        plain("removed: " + " ".join(result.removed_words) + ("   added: " + " ".join(result.added_words)
                                                              if result.added_words else ""))
    st.caption("If only the words inside the span vanish, the decoder found them there and nowhere else. Words "
               "that change rather than vanish were partly heard at the edges of the span.")
page_end()
