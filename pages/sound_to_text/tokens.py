"""Tokens: each token's probability, its runners-up and the decoder's uncertainty."""

import pandas as pd
import streamlit as st

from components.common import column_room, columns, page_end, page_start, show
from components.glossary import term
from components.listen import DTW_NOTE, clicked_index, pad_span, play, sync_click, word_of_token, words_on_mel_figure
from components.session import require_trace, window_ui
from components.token_figs import (
    alternatives_figure,
    confidence_summary,
    entropy_figure,
    label,
    least_certain,
    probability_figure,
    timestamp_rows,
)
from components.transcript import attempt_note, language_section

page_start("How sure was the decoder of each token?",
           "The decoder writes one token at a time. At each step it scores every token in its vocabulary; "
           f"after whisper's rules (no timestamps going backwards, no special tokens mid-sentence) a {term('softmax')} "
           "turns the scores into probabilities. Tall green bars are confident choices; short red ones are guesses. "
           f"{term('␣ (leading space)', '␣')} marks a token that begins with a space: Whisper's tokens carry the "
           "space before a word.")
trace = require_trace()
index = window_ui(trace, "tokens_window")
window = trace.windows[index]
steps = window.final.steps
if not steps:
    st.warning("No tokens were generated for this window.")
    st.stop()
if window.final.temperature > 0:  # a sampled attempt: its tokens were drawn at random, not the most likely
    st.info(attempt_note(window))

choices = list(range(len(steps)))
if "tokens_pick" not in st.session_state or st.session_state["tokens_pick"] not in choices:
    st.session_state["tokens_pick"] = least_certain(steps)  # the most instructive token to open on
fresh = sync_click("tokens_pick", clicked_index(st.session_state.get("prob_chart")))
show(probability_figure(steps, st.session_state["tokens_pick"]), key="prob_chart", on_select=True)
chosen = st.selectbox("Inspect token (or click a bar)", choices, key="tokens_pick",
                      format_func=lambda i: f"{i}: {label(steps[i])}  (p = {steps[i].prob:.2f})")
c1, c2 = columns([3, 2])
with c1:
    show(alternatives_figure(steps[chosen], column_room(0.6)))
with c2:
    s = steps[chosen]
    st.metric("Probability", f"{s.prob:.1%}")
    st.metric("Rank among all tokens", s.rank + 1)
    st.metric("Entropy of this step", f"{s.entropy_bits:.2f} bits")
    st.caption(f"{term('entropy', 'Entropy')} is 0 bits when the decoder is certain and grows as probability "
               "spreads over more tokens.")
    word_index = word_of_token(steps, window.final.words)[chosen]
    if word_index is not None:
        word = window.final.words[word_index]
        st.write(f"Hear the word it belongs to, **{word.word.strip()}** ({word.start_s:.2f}-{word.end_s:.2f} s):")
        play(trace.audio, *pad_span(word.start_s, word.end_s, trace.duration_s), autoplay=fresh)
if word_index is not None:
    show(words_on_mel_figure(trace, (word.start_s, word.end_s),
                             f"Where {label(s)} was said: the word {word.word.strip()} on the log-mel"))
    st.caption(DTW_NOTE)

show(entropy_figure(steps))
st.table(pd.DataFrame([confidence_summary(steps)]), hide_index=True)

st.subheader("Timestamp tokens")
rows = timestamp_rows(steps, window.start_s)
if rows:
    st.table(pd.DataFrame(rows), hide_index=True)
    st.caption("Whisper writes time as tokens too: <|1.00|> means one second into the window, in 20 ms steps.")
else:
    st.write("This run decoded without timestamps.")

language_section(trace)
page_end()
