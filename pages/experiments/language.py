"""Language per 30 s window: code-switching that the single up-front guess hides."""

import streamlit as st

from components import experiments as exp
from components.common import page_end, page_start, show
from components.experiment_figs import language_fig
from components.session import require_trace
from whisper_inquiry.models.vocab import language_name

page_start("Which language is spoken in each window?",
           "whisper.transcribe guesses the language once, from the first 30 s, and keeps it for the whole file. "
           "Here the same language detector runs on every 30 s window.")
exp.explain("If a speaker switches language half-way, only this view shows it: the transcript would carry on "
            "in the first language, or translate without being asked.")
trace = require_trace()
if not trace.model.multilingual:
    st.warning(f"{trace.model.name} is English-only: it has no language tokens. Choose the multilingual base model "
               "in the sidebar.")
    page_end()
    st.stop()
result = exp.languages(trace.audio, trace.model.name)
if result is not None:
    show(language_fig(result))
    # names, not codes ("nn" is Norwegian Nynorsk), as a static table that wraps on a projector
    st.table([{"window": f"{w.start_s:.0f}-{w.end_s:.0f} s", "language": language_name(w.name),
               "top guesses": ", ".join(f"{language_name(c)} {p:.0%}" for c, p in w.top)} for w in result.windows])
page_end()
