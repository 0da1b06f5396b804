"""Occlusion saliency: hide one span of sound at a time and see which tokens lose confidence."""

import numpy as np
import streamlit as st

from components import probe_figs, probes
from components.common import columns, error, md_escape, page_end, page_start, plain
from components.glossary import term
from components.listen import play
from components.session import require_trace
from whisper_inquiry.errors import InquiryError

page_start("Which sound made which word?",
           "Attention shows where the decoder looks, not what it needed. Here we hide one window of the sound at a "
           "time and ask the decoder how sure it still is of each word it wrote (it is fed the same words, so only "
           "its confidence can change). A red cell means: without this bit of sound, this token became much less "
           "likely. Click a cell to hear the window it hides.")
trace = require_trace()


def controls_ui() -> tuple[float, float, str, bool]:
    with st.form("occlusion_form", border=False):
        c1, c2, c3 = columns(3)
        window_s = c1.slider("Window hidden (s)", 0.1, 3.0, probes.DEFAULT_WINDOW_S, 0.1)
        stride_s = c2.slider("Step between windows (s)", 0.1, 3.0, probes.DEFAULT_STRIDE_S, 0.1)
        fill = c3.selectbox("Hide it with", probes.FILLS, index=probes.FILLS.index(probes.DEFAULT_FILL),
                            help="silence: zeros in the waveform; noise: white noise as loud as the clip; "
                                 "padding: the encoder's own states for silence, put in place of the window's "
                                 "(cheapest: no encoder pass per window)")
        run = st.form_submit_button("Run occlusion", type="primary", icon=":material/play_arrow:")
    duration_s = min(trace.duration_s, 30.0)
    n = int(np.ceil(max(duration_s - window_s, 0) / stride_s)) + 1
    st.caption(f"{n} variants of {duration_s:.1f} s" + (" (the first 30 s)" if trace.duration_s > 30 else "")
               + ("; each needs its own encoder pass" if fill != "padding" else "; one decoder pass each, batched"))
    return window_s, stride_s, fill, run


def clicked_cell(key: str, result) -> tuple[int, int] | None:
    """(window, token) of the clicked cell, from the marker's customdata or else from its x and y."""
    state = st.session_state.get(key)
    points = state.selection.points if state is not None and state.selection else []
    if not points:
        return None
    point = points[0]
    data = point.get("customdata")
    if data is not None and len(data) >= 2:
        return int(data[0]), int(data[1])
    labels = [probe_figs.token_label(t, i) for i, t in enumerate(result.tokens)]
    if point.get("y") not in labels or point.get("x") is None:
        return None
    centres = result.starts_s + result.options.window_s / 2
    return int(np.argmin(np.abs(centres - float(point["x"])))), labels.index(point["y"])


def play_ui(result) -> None:
    starts = result.starts_s
    cell = clicked_cell("occlusion_map", result)
    if cell is None:
        strongest = np.unravel_index(int(np.argmax(result.drop)), result.drop.shape)
        cell = (int(strongest[1]), int(strongest[0]))
        st.caption("Click a cell to hear its window; playing the strongest cell for now.")
    j, i = cell
    begin, end = float(starts[j]), float(starts[j]) + result.options.window_s
    change = "loses" if result.drop[i, j] >= 0 else "gains"
    st.markdown(f"**Window {begin:.2f}-{end:.2f} s** hidden: token {i} ({md_escape(result.tokens[i].strip())}) "
                f"{change} {abs(result.drop[i, j]):.2f} {term('nats')} (log-probability, natural log: 0.69 nats halve "
                f"it), its probability going from "
                f"{np.exp(result.reference.logprobs[i]):.2f} to {result.prob_after[i, j]:.2f}")
    play(trace.audio, begin, end)


window_s, stride_s, fill, run = controls_ui()
try:
    result = probes.occlusion(trace, window_s, stride_s, fill, run)
except InquiryError as exc:
    error(str(exc))
    st.stop()
if result is None:
    if probes.was_cancelled("occlusion"):
        st.warning("Cancelled: nothing was kept. Run again when ready.")
    else:
        st.info("Choose a window and press Run occlusion.")
else:
    st.caption(f"Reference transcript (decoded once, greedily, without timestamps), in {result.seconds:.1f} s:")
    plain(result.reference.text)
    fig = probe_figs.occlusion_figure(result)
    st.session_state["_page_bytes"] = st.session_state.get("_page_bytes", 0) + len(fig.to_json())
    st.plotly_chart(fig, key="occlusion_map", on_select="rerun", selection_mode="points", theme=None,
                    config={"displaylogo": False})
    st.caption("Each row is one token the decoder wrote; each column hides one window (centre on the axis). Speech "
               "read left to right makes a red diagonal: every word needs the sound spoken when it was said, and "
               "often a little of the next. Blue means the token became more likely without that window.")
    play_ui(result)
page_end()
