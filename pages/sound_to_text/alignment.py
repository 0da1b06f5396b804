"""Alignment: where in the audio each token was found, and how word timings follow from it."""

import pandas as pd
import streamlit as st

from components.alignment_figs import cross_attention_figure, cross_matrix, dtw_figure
from components.common import page_end, page_start, show
from components.compare_view import alignment_heads_note
from components.glossary import term
from components.listen import DTW_NOTE, pad_span, play
from components.session import require_trace, window_ui

page_start("Where in the audio did each word come from?",
           f"While writing each token, the decoder's {term('cross-attention')} looks back at the encoder's 1,500 "
           "moments. "
           f"A few heads (the {term('alignment head', 'alignment heads')}) look where the word is being spoken; "
           f"whisper follows their bright path with {term('DTW', 'dynamic time warping')} to time every word.")
trace = require_trace()
index = window_ui(trace, "align_window")
window = trace.windows[index]
attempt = window.final
if attempt.cross is None or not attempt.steps:
    st.warning("No tokens were written for this window, so there is nothing to align.")
    st.stop()

cross = attempt.cross
choices = ["alignment heads (average)"] + [f"layer {lyr}, head {hd}" for lyr in range(cross.weights.shape[0])
                                           for hd in range(cross.weights.shape[1])]
c1, c2 = st.columns([2, 1])
choice = c1.selectbox("Attention from", choices, key="align_head")
normalise = c2.toggle("Rows to their max", True, key="align_norm",
                      help="Scale each row (token) to its own maximum, so faint rows show their peak too.")
if choice.startswith("alignment"):
    layer = head = None
    title = f"Cross-attention, mean of the {len(cross.alignment_heads)} alignment heads"
else:
    layer, head = (int(part.split()[-1]) for part in choice.split(","))
    title = f"Cross-attention, layer {layer} head {head}"
show(cross_attention_figure(attempt, window, cross_matrix(attempt, window, layer, head), title, normalise))
st.caption(f"Each row is one token being written; each column is {cross.seconds_per_column * 1000:.0f} ms of "
           f"audio. Alignment heads here: {', '.join(f'L{a}H{b}' for a, b in cross.alignment_heads)}.")
if note := alignment_heads_note(trace):
    st.info(note)

st.subheader("Word timings, to check by ear")
st.warning(DTW_NOTE)
words = attempt.words
picked = None
if words:
    picked = st.selectbox("Hear a word and mark it below", [None, *range(len(words))], key="align_word",
                          format_func=lambda i: "choose a word" if i is None else
                          f"{words[i].word.strip()}  ({words[i].start_s:.2f}-{words[i].end_s:.2f} s)")
    if picked is not None:  # starts by itself only right after a new choice, not on every rerun
        fresh, st.session_state["_align_played"] = st.session_state.get("_align_played") != picked, picked
        play(trace.audio, *pad_span(words[picked].start_s, words[picked].end_s, trace.duration_s), autoplay=fresh)
show(dtw_figure(attempt, window, (words[picked].start_s, words[picked].end_s) if picked is not None else None))
st.caption("Top: each word where whisper placed it, over the log-mel (white lines: where words start). Bottom: "
           "the warping path, which must move forward in time as the tokens advance; a word starts where its "
           "first token's row begins.")
if attempt.words:
    st.dataframe(pd.DataFrame([{"word": w.word.strip(), "start (s)": round(w.start_s, 2),
                                "end (s)": round(w.end_s, 2), "probability": round(w.prob, 3)}
                               for w in attempt.words]), hide_index=True)
page_end()
