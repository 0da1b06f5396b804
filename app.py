"""Whisper Inquiry: navigation, sidebar and caching. Pages do the drawing; the library does the work."""

from __future__ import annotations

import streamlit as st

from components.common import error, page_css
from components.lesson import CURRENT
from components.navigation import DEFAULT_PAGE, PAGES
from components.session import analysed
from components.sidebar import now_showing, sidebar_ui
from whisper_inquiry.errors import InquiryError


def navigation_pages() -> dict[str, list[st.Page]]:
    """The menu, one heading per section, built from the one table of pages (components.navigation)."""
    sections: dict[str, list[st.Page]] = {}
    for page in PAGES:
        default = page.url_path == DEFAULT_PAGE
        sections.setdefault(page.section, []).append(st.Page(
            page.script, title=page.label, icon=page.icon, default=default,
            url_path=None if default else page.url_path))
    return sections


def main() -> None:
    st.set_page_config(page_title="Whisper Inquiry", page_icon=":material/hearing:", layout="wide")
    navigation = st.navigation(navigation_pages(), expanded=True)  # every page in view: a class follows the list
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
