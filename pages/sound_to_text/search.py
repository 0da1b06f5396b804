"""Search tree: which sentences the decoder considered, which it dropped, and why it chose the one it did."""

import pandas as pd
import streamlit as st

from components.common import columns, page_end, page_start, show
from components.glossary import term
from components.session import require_trace, window_ui
from components.transcript import fallback_note
from components.tree_figs import by_probability, finalists_html, step_count, steps_that_fit, tree_figure

page_start("Which other sentences did the decoder consider?",
           "Greedy decoding takes the most probable token at every step: its tree is one path, with the "
           f"runners-up it passed over as side branches. {term('beam search', 'Beam search')} keeps several partial "
           "sentences alive, extends each, and prunes all but the best few; finished candidates are ranked at the "
           "end by "
           f"{term('log-probability')}, divided by a {term('length penalty')}.")
trace = require_trace()
index = window_ui(trace, "tree_window")
window = trace.windows[index]

note = fallback_note(window)
if note:
    (st.warning if window.final.failed_checks is not None else st.info)(note)
if len(window.attempts) > 1:
    st.subheader("Temperature fallback: every attempt at this window")
    last = len(window.attempts) - 1

    def verdict(i: int, failed: str | None) -> str:
        if failed is None:
            return "passed: whisper keeps this one"
        return f"failed: {failed}" + ("; whisper keeps it anyway (the last attempt)" if i == last else "; try again")

    st.table(pd.DataFrame([{"attempt": i + 1, "temperature": f"{a.temperature:g}", "text": a.text.strip(),
                            "avg log-prob": f"{a.avg_logprob:.2f}", "compression ratio": f"{a.compression_ratio:.2f}",
                            "no-speech prob": f"{a.no_speech_prob:.2f}", "verdict": verdict(i, a.failed_checks)}
                           for i, a in enumerate(window.attempts)]).set_index("attempt"))
    st.caption("Whisper retries at a higher temperature when a result looks wrong: too repetitive (its text "
               "compresses too well), or too unlikely (average log-probability below -1). Sampling is random: "
               "the analysis seed (sidebar) makes the same link give the same attempts.")
    attempt_index = st.selectbox("Show the tree of attempt", range(len(window.attempts)),
                                 index=last, format_func=lambda i: f"{i + 1}")
else:
    attempt_index = 0
attempt = window.attempts[attempt_index]
tree = attempt.tree
n_steps = step_count(tree)
if tree.strategy == "sampling":
    strategy = f"sampling at temperature {attempt.temperature:g}" + (
        "" if trace.options.strategy == "sampling" else
        " (a fallback attempt: whisper samples at any temperature above 0, whatever the decoding chosen)")
else:
    strategy = "beam search" if tree.strategy == "beam" else "greedy"
st.caption(f"Strategy: {strategy}. {len(tree):,} candidates over {n_steps} steps: "
           f"{tree.status.count('kept')} kept, {tree.status.count('pruned') + tree.status.count('alternative')} "
           f"dropped, {tree.status.count('finished')} finished.")
if n_steps:
    c1, c2 = columns([2, 1])
    fits = steps_that_fit()
    span = c1.slider("Steps shown (drag to move along the sentence)", 0, n_steps,
                     (0, min(n_steps, fits)), key="tree_steps")
    dropped = c2.toggle("Show dropped", tree.strategy != "beam", key="tree_dropped",
                        help="Beam search drops many candidates at every step; shown, they are grey and below.")
    show(tree_figure(tree, span[0], span[1], dropped))
    rows = ("rows are each token's probability rank at that step (1 = most likely; a sampled token sits "
            "where it stood, and one drawn from beyond the top few is drawn below them with its rank, #N)"
            if by_probability(tree) else "rows are ranks at that step (1 = best)")
    st.caption(f"Each column is one step; {rows}; the thick black line is the "
               "path to the final text. Filled circles: candidates kept for the next step, coloured by the "
               "probability of their last token (green: likely, red: unlikely). Open grey circles: dropped. "
               "Stars: finished (they wrote end-of-text). Labels are cut to fit their step: hover for the whole "
               f"token, or show fewer steps (about {fits} fit one screen).")
st.subheader("Final ranking")
if tree.finalists:
    st.html(finalists_html(tree))
    with st.expander("The same ranking as a table"):
        st.dataframe(pd.DataFrame([{"chosen": "✔" if f.selected else "", "text": f.text,
                                    "sum log-prob": round(f.sum_logprob, 3), "length": f.length,
                                    "score": round(f.score, 4)} for f in tree.finalists]).sort_values(
            "score", ascending=False), hide_index=True)
    st.caption("score = sum log-prob / length penalty; with no penalty set, whisper divides by the number of "
               "tokens. Highlighted words are where a finalist differs from the chosen text; ‸ marks words it lacks.")
page_end()
