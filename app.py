"""Whisper Inquiry: navigation, sidebar and caching. Pages do the drawing; the library does the work."""

from __future__ import annotations

import streamlit as st

from components.common import error, page_css
from components.lesson import CURRENT
from components.session import analysed
from components.sidebar import now_showing, sidebar_ui
from whisper_inquiry.errors import InquiryError

PAGES = {"From sound to text": [
    st.Page("pages/overview.py", title="Overview", icon=":material/home:", default=True),
    st.Page("pages/audio.py", title="Audio and spectrogram", icon=":material/graphic_eq:"),
    st.Page("pages/encoder.py", title="Encoder", icon=":material/layers:"),
    st.Page("pages/tokens.py", title="Tokens", icon=":material/format_list_numbered:"),
    st.Page("pages/alignment.py", title="Alignment", icon=":material/align_horizontal_left:"),
    st.Page("pages/search.py", title="Search tree", icon=":material/account_tree:"),
    st.Page("pages/tokenizer.py", title="Tokenizer", icon=":material/content_cut:"),
    st.Page("pages/architecture.py", title="Architecture", icon=":material/schema:"),
], "Go further": [
    st.Page("pages/lens.py", title="Logit lens", icon=":material/visibility:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("pages/live.py", title="Live microphone", icon=":material/mic:"),
    st.Page("pages/export.py", title="Export and share", icon=":material/download:"),
    st.Page("pages/glossary.py", title="Glossary", icon=":material/menu_book:"),
], "Experiments": [
    st.Page("pages/probe_occlusion.py", title="Occlusion: which sound made which word", icon=":material/blur_on:"),
    st.Page("pages/probe_surgery.py", title="Encoder-span surgery", icon=":material/content_cut:"),
    st.Page("pages/probe_neurons.py", title="Listen to a neuron", icon=":material/neurology:"),
    st.Page("pages/exp_hallucination.py", title="Hallucination check", icon=":material/report:"),
    st.Page("pages/exp_heads.py", title="Head lab", icon=":material/science:"),
    st.Page("pages/exp_mask.py", title="Encoder attention window", icon=":material/width:"),
    st.Page("pages/exp_finder.py", title="Alignment-head finder", icon=":material/manage_search:"),
    st.Page("pages/exp_encoder_lens.py", title="Encoder lens", icon=":material/stacks:"),
    st.Page("pages/exp_language.py", title="Language per window", icon=":material/translate:"),
]}


def main() -> None:
    st.set_page_config(page_title="Whisper Inquiry", page_icon=":material/hearing:", layout="wide")
    navigation = st.navigation(PAGES, expanded=True)  # every page in view: a class follows the list
    showing = st.sidebar.container(key="now_showing")  # first in the sidebar, filled once the trace is known
    request = sidebar_ui()
    page_css()  # after the sidebar: presenter mode as just switched
    st.session_state["trace"] = None
    if request is not None:
        try:
            st.session_state["trace"] = analysed(request.audio, request.audio_name, request.model_name,
                                                 request.options)
        except InquiryError as exc:
            error(str(exc))
    with showing:
        now_showing(st.session_state["trace"])
    st.session_state[CURRENT] = navigation.url_path  # for the lesson path's Previous / Next
    navigation.run()


main()
