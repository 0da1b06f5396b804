"""Glossary: every term the pages use, in a sentence or two, each with an anchor other pages link to."""

import streamlit as st

from components.common import md_escape, page_end, page_start
from components.glossary import SECTIONS, anchor

page_start("What do these words mean?",
           "The words the pages use, in the order a lesson meets them. A linked word on any page opens its "
           "entry here.")
for section, entries in SECTIONS.items():
    st.header(section, anchor=False, divider="gray")
    for name, text in entries.items():
        st.subheader(name, anchor=anchor(name))
        st.markdown(md_escape(text))  # <|en|> and the like, as written
page_end()
