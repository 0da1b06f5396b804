"""Export and share: the trace, the transcript in common formats, any chart, and a link to this view."""

from urllib.parse import urlencode

import streamlit as st

from components.alignment_figs import cross_attention_figure, cross_matrix
from components.audio_figs import mel_figure, waveform_figure
from components.common import page_end, page_start
from components.encoder_figs import model_view_figure
from components.session import require_trace
from components.token_figs import probability_figure
from components.tree_figs import step_count, tree_figure
from whisper_inquiry.trace.export import to_json_text, to_srt, to_txt, to_vtt
from whisper_inquiry.trace.serialize import trace_to_bytes

page_start("Take it with you",
           "Download the whole trace (reload it later with whisper_inquiry.trace.serialize.load_trace, no model "
           "needed), the transcript as text or subtitles with word timings, or any chart as an interactive "
           "HTML file. Every chart's camera button also saves a PNG. The link below reopens this exact view.")


def share_link(page_url: str | None, params: dict[str, str]) -> str:
    """The whole address: this page's own URL with the setup as its query string (just the query string
    where the browser's address is not known, as in a test without a browser)."""
    return f"{page_url or ''}?{urlencode(params)}"


trace = require_trace()
stem = trace.audio_name.rsplit(".", 1)[0] or "audio"

st.subheader("Transcript")
c1, c2 = st.columns(2)  # two a row: four were cut off ("JSON (tokens, ...") at 1024 px
c3, c4 = st.columns(2)
c1.download_button("TXT", to_txt(trace), f"{stem}.txt", "text/plain")
c2.download_button("JSON (tokens, words, tree)", to_json_text(trace), f"{stem}.json", "application/json")
c3.download_button("SRT subtitles", to_srt(trace), f"{stem}.srt", "application/x-subrip")
c4.download_button("WebVTT with word timings", to_vtt(trace), f"{stem}.vtt", "text/vtt")

st.subheader("The whole trace")
if st.toggle("Prepare the trace file", False, help="Packing the arrays takes a moment for long audio."):
    data = trace_to_bytes(trace)
    st.download_button(f"Trace (.npz, {len(data) / 1e6:.1f} MB)", data, f"{stem}.trace.npz",
                       "application/octet-stream")

st.subheader("A chart as HTML")
window, attempt = trace.windows[0], trace.windows[0].final
charts = {
    "waveform": lambda: waveform_figure(trace),
    "log-mel": lambda: mel_figure(window),
    "encoder model view": lambda: model_view_figure(window.encoder),
    "token probabilities": lambda: probability_figure(attempt.steps),
    "search tree": lambda: tree_figure(attempt.tree, 0, min(step_count(attempt.tree), 16)),
}
if attempt.cross is not None and attempt.steps:
    charts["cross-attention"] = lambda: cross_attention_figure(
        attempt, window, cross_matrix(attempt, window, None, None), "Cross-attention, alignment heads", True)
name = st.selectbox("Chart", list(charts))
html = charts[name]().to_html(include_plotlyjs=True, full_html=True)
st.download_button(f"{name}.html ({len(html) / 1e6:.1f} MB, works offline)", html, f"{stem}-{name}.html",
                   "text/html")

st.subheader("Share this view")
params = st.session_state.get("share_params", {})
st.code(share_link(st.context.url, params), language=None, wrap_lines=True)
if params.get("source", "Bundled sample") == "Bundled sample":
    st.caption("This link opens the same bundled sample, model, decoding options and seed, so the same result, "
               "on the page it names (replace the page's name at the end of the address to open another page).")
else:
    st.warning("Your uploaded or recorded audio is **not** in this link: it stays on this server, in your session "
               "only. Whoever opens the link gets your model and options, and is asked to choose audio. To share "
               "the audio too, send the file, or the trace file above.")
page_end()
