"""Whisper Inquiry: navigation, sidebar and caching. Pages do the drawing; the library does the work."""

from __future__ import annotations

import streamlit as st

from components.common import error
from components.session import model, trace_store
from components.sidebar import Request, sidebar_ui
from whisper_inquiry.analyze import analyze
from whisper_inquiry.audio import load_audio
from whisper_inquiry.errors import InquiryError

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("pages/audio.py", title="Audio and spectrogram", icon=":material/graphic_eq:"),
    st.Page("pages/encoder.py", title="Encoder", icon=":material/layers:"),
    st.Page("pages/tokens.py", title="Tokens", icon=":material/format_list_numbered:"),
    st.Page("pages/alignment.py", title="Alignment", icon=":material/align_horizontal_left:"),
    st.Page("pages/search.py", title="Search tree", icon=":material/account_tree:"),
    st.Page("pages/tokenizer.py", title="Tokenizer", icon=":material/content_cut:"),
    st.Page("pages/architecture.py", title="Architecture", icon=":material/schema:"),
]


def obtain_trace(request: Request):
    """The trace for this audio, model and options: from the store, or analysed now with progress shown."""
    store = trace_store()
    trace = store.get(request.key)
    if trace is not None:
        return trace
    audio = load_audio(request.audio, name=request.audio_name)
    whisper_model = model(request.model_name)
    with st.status(f"Analysing {audio.duration_s:.1f} s of audio with {request.model_name} ...") as status:
        trace = analyze(whisper_model, audio, request.options, on_progress=status.write)
        status.update(label=f"Analysed in {trace.timings_ms['total'] / 1000:.1f} s", state="complete", expanded=False)
    store.put(request.key, trace)
    return trace


def main() -> None:
    st.set_page_config(page_title="Whisper Inquiry", page_icon=":material/hearing:", layout="wide")
    navigation = st.navigation(PAGES)
    request = sidebar_ui()
    st.session_state["trace"] = None
    if request is not None:
        try:
            st.session_state["trace"] = obtain_trace(request)
            st.session_state["model_name"] = request.model_name
        except InquiryError as exc:
            error(str(exc))
    navigation.run()


main()
