"""The lesson path: "From sound to text" in the order a lesson tells it, with a Previous / Next bar at the
foot of each of its pages and one sentence that bridges to the next step, so a teacher can present with
the sidebar closed.

The order follows the seed notebook: waveform, log-mel, tokenizer, conv stem and positions, encoder, task
tokens, decoding, search. Steps that share a page are that page's: waveform and log-mel are both on Audio
and spectrogram; the conv stem and positional embedding open the Encoder page (Architecture, just before it,
shows where they sit in the model); the task tokens are the first rows of Tokens, whose probabilities are
the decoding. Overview opens the path (what was heard) and Alignment closes it (where each word came from).
"""

from __future__ import annotations

from dataclasses import dataclass

import streamlit as st

from components.navigation import script_of

CURRENT = "_lesson_page"  # session state: the url_path of the page running now (set by app.py)


@dataclass(frozen=True)
class Step:
    url_path: str  # as st.navigation names it ("" for the default page)
    label: str  # what the bar's buttons say
    shows: str  # which of the notebook's steps this page is
    bridge: str  # one sentence from this step to the next

    @property
    def script(self) -> str:
        """The page's file, as st.page_link names it."""
        return script_of(self.url_path)


PATH = [
    Step("", "Overview", "what Whisper heard",
         "Whisper never sees the sound wave itself: next, how the waveform becomes the log-mel picture it reads."),
    Step("audio", "Audio and spectrogram", "waveform and log-mel",
         "That picture is the input; the output is text in pieces: next, how text is cut into tokens."),
    Step("tokenizer", "Tokenizer", "tokens",
         "With the input and the output known: next, the model in between, from the conv stem to the decoder."),
    Step("architecture", "Architecture", "the model's parts",
         "Next, inside the encoder: the conv stem and positions first, then every attention head over this clip."),
    Step("encoder", "Encoder", "conv stem, positions and encoder",
         "The decoder reads the encoder's output after its task tokens: next, every token it wrote and how "
         "sure it was."),
    Step("tokens", "Tokens", "task tokens and decoding",
         "Each token was one choice among many: next, the other sentences the search weighed and why this one won."),
    Step("search", "Search tree", "search",
         "The words are chosen: last, where in the audio each word came from."),
    Step("alignment", "Alignment", "where each word was said",
         "The end of the path. Go further with the Logit lens and Compare, or change the model in Experiments."),
]


def step_of(url_path: str | None) -> int | None:
    return next((k for k, step in enumerate(PATH) if step.url_path == url_path), None)


def lesson_bar() -> None:
    """Previous / Next and the bridging sentence, on the path's pages only. st.page_link switches pages in
    the same session, so the clip, the model and presenter mode stay as they are."""
    k = step_of(st.session_state.get(CURRENT))
    if k is None:
        return
    step = PATH[k]
    with st.container(border=True, key="lesson_path"):
        st.markdown(f"**Lesson path, step {k + 1} of {len(PATH)}: {step.shows}.** {step.bridge}")
        back, _, forward = st.columns([2, 1, 2])
        if k > 0:
            with back:
                st.page_link(PATH[k - 1].script, label=f"Previous: {PATH[k - 1].label}",
                             icon=":material/arrow_back:")
        if k + 1 < len(PATH):
            with forward:
                st.page_link(PATH[k + 1].script, label=f"Next: {PATH[k + 1].label}",
                             icon=":material/arrow_forward:")
