"""The Live page's streaming widgets: choose a policy, replay a clip as a stream, read what it committed.

The stream itself is the library's (whisper_inquiry.streaming); every decode goes through the engine
(`Engine.listen`, timed), with every other listener's and user's rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import streamlit as st

from components.common import columns, md_escape, presenting, show
from components.listen import full_mel
from components.stream_figs import (
    attention_edge_figure,
    lag_figure,
    stream_mel_figure,
    stream_text_html,
    summary_rows,
    timeline_figure,
    updates_html,
)
from whisper_inquiry.corpus.score import score
from whisper_inquiry.engine.protocol import EngineProtocol
from whisper_inquiry.streaming.policy import AlignAtt, LocalAgreement
from whisper_inquiry.streaming.stream import Streamer, StreamOptions, StreamResult, Update, engine_listen, replay
from whisper_inquiry.trace.derived import trace_key
from whisper_inquiry.trace.schema import FRAME_S, SAMPLE_RATE, Trace

SPEEDS = {"real time": 1.0, "2x": 2.0, "4x": 4.0, "as fast as it decodes": None}
CHUNKS_S = [0.5, 1.0, 1.5, 2.0, 3.0]
KEPT_RESULTS = 4  # replays remembered per session (every update's hypothesis: about 1 MB for 10 minutes)
NEW_STREAM_S = 5  # a stream begun while the microphone is on starts from its last 5 s
KEPT = dict(persist_state="session")  # kept across page switches, so a finished replay is still there


def text_em() -> float:
    return 2.0 if presenting() else 1.45


def options_ui(key: str) -> StreamOptions:
    """The policy and chunk size, as whisper_streaming and SimulStreaming name them."""
    left, mid, right = columns([1.3, 1.2, 1])
    policy = left.radio("Policy", ["LocalAgreement", "AlignAtt"], horizontal=True, key=f"{key}_policy", **KEPT,
                        help="LocalAgreement (whisper_streaming): commit what n updates in a row agree on. AlignAtt "
                             "(SimulStreaming): commit a word unless the decoder reads the very end of the audio.")
    if policy == "LocalAgreement":
        chosen = LocalAgreement(int(mid.number_input("n: updates that must agree", 1, 5, 2, key=f"{key}_n", **KEPT)))
    else:
        chosen = AlignAtt(int(mid.number_input("Threshold: encoder frames of 20 ms", 0, 150, 25, 5,
                                               key=f"{key}_frames", **KEPT)))
    chunk = right.select_slider("Chunk: seconds between updates", CHUNKS_S, 1.0, key=f"{key}_chunk", **KEPT)
    return StreamOptions(chosen, float(chunk))


# -- a clip replayed ------------------------------------------------------------------------------------

def replay_ui(trace: Trace, engine: EngineProtocol, options: StreamOptions) -> StreamResult | None:
    """A button that feeds the clip to a stream chunk by chunk, drawing each update as it comes; returns
    the finished replay of this clip with these options (kept for the session), if there is one."""
    results: dict = st.session_state.setdefault("stream_results", {})
    key = (trace_key(trace), engine.name, options)
    speed = st.select_slider("Replay speed", list(SPEEDS), "as fast as it decodes", key="stream_speed", **KEPT)
    if st.button(f"Replay {trace.audio_name} ({trace.duration_s:.1f} s) as a stream", type="primary",
                 key="stream_replay"):
        live = st.empty()
        started = time.perf_counter()

        def draw(u: Update, streamer: Streamer) -> None:
            with live.container():
                st.caption(f"Heard {u.time_s:.1f} s of {trace.duration_s:.1f} s: update {len(streamer.updates)}, "
                           f"decoded in {u.decode_s:.2f} s")
                st.html(stream_text_html(streamer.agreement.committed, u.tentative, text_em()))
            if SPEEDS[speed]:  # wait for the audio a listener would have heard by now
                wait = started + u.time_s / SPEEDS[speed] - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)

        result = replay(engine_listen(engine), trace.audio, options, on_update=draw)
        live.empty()
        results[key] = result
        while len(results) > KEPT_RESULTS:
            results.pop(next(iter(results)))
    return results.get(key)


def result_view(result: StreamResult, trace: Trace) -> None:
    """A finished replay: its figures, the committed text against the offline analysis, each update."""
    offline = score(trace.text, result.text, trace.language.detected) if trace.text.strip() else None
    wer = None if offline is None else offline.wer
    # a static table: it wraps to the page in presenter mode, where a data grid's columns scroll out of sight
    st.table(pd.DataFrame(summary_rows(result, wer)).set_index("policy"))
    if not result.committed:
        st.info("Nothing was committed: Whisper heard no words in this audio.")
    st.html(stream_text_html(result.committed, (), text_em()))
    st.markdown(f"**The offline analysis of the same audio** reads: {md_escape(trace.text.strip()) or '(nothing)'}")
    times = [u.time_s for u in result.updates]
    at = st.select_slider("Look at the update made when this much audio was heard (s)", times,
                          times[min(len(times) - 1, len(times) // 2)], format_func=lambda t: f"{t:.1f}",
                          key="stream_update")
    u = result.updates[times.index(at)]
    so_far = [c for c in result.committed if c.committed_s <= u.time_s]
    st.html(stream_text_html(so_far, u.tentative, text_em()))
    mel, centres = full_mel(trace, 600)
    trims = [v.trimmed_to_s for v in result.updates if v.trimmed_to_s is not None and v.time_s < u.time_s]
    margin = result.options.margin_s
    show(stream_mel_figure(mel, centres, u, trims, margin, max((c.heard_s for c in so_far), default=None)),
         key="stream_mel")
    st.caption("Bright: the buffer this update decoded. Dashed blue: where the buffer was trimmed (the audio before "
               "it is never decoded again; its committed text becomes the prompt). Green: the end of the last "
               "committed word." + (" Orange band: AlignAtt's threshold, the last "
                                    f"{margin:.2f} s, where a word's tokens may not look." if margin else ""))
    if margin is not None:
        show(attention_edge_figure(u, margin), key="stream_attention")
        st.caption("Each bar is where a word's tokens attend most in the audio (the alignment heads' "
                   "cross-attention, at its highest point). The first word reading past the dashed line is still "
                   "being heard: AlignAtt holds it, and every word after it, until the next update.")
    st.html(updates_html(result.updates, size_em=1.3 if presenting() else 1.05))
    show(timeline_figure(result.updates), key="stream_timeline")
    st.caption("Each row is one update: what Whisper heard in the buffer at that moment. Green words were committed "
               "by that update, black ones earlier; grey ones are tentative, and orange ones were gone at the "
               "next update (the transcript changed its mind). The dotted line is the end of the audio heard.")
    show(lag_figure(result.committed), key="stream_lag")
    st.caption("Each dot is a committed word: when it ended in the audio against when the stream committed it. "
               "The higher above the grey line, the longer a caption reader waited for it. The decode's own time "
               "is left out (it depends on the machine); add it for a live microphone.")


# -- the microphone ---------------------------------------------------------------------------------------

@dataclass
class MicStream:
    """A listener's stream across the page's refreshes: which model and options, and what it has read."""

    model: str
    options: StreamOptions
    streamer: Streamer
    seen: int = 0  # samples of the microphone buffer already fed


def mic_stream(engine: EngineProtocol, options: StreamOptions, samples_in: int) -> MicStream:
    """This session's stream, new when the model or the options change; a new one starts from the last
    few seconds the microphone heard (`samples_in` so far), not from its whole 30 s."""
    state: MicStream | None = st.session_state.get("live_stream")
    if state is None or state.model != engine.name or state.options != options:
        state = MicStream(engine.name, options, Streamer(engine_listen(engine), options, keep_updates=40),
                          seen=max(0, samples_in - NEW_STREAM_S * SAMPLE_RATE))
        st.session_state["live_stream"] = state
    return state


def mic_view(state: MicStream) -> None:
    """The stream's caption, its buffer's log-mel and the lag so far, redrawn every refresh."""
    streamer = state.streamer
    st.html(stream_text_html(streamer.agreement.committed, streamer.agreement.tentative, text_em()))
    heard = streamer.last_heard
    last = streamer.updates[-1] if streamer.updates else None
    if heard is not None and last is not None:
        start = last.buffer_start_s + heard.start_s
        centres = start + (np.arange(heard.mel.shape[1]) + 0.5) * FRAME_S
        margin = state.options.margin_s
        committed_to = streamer.agreement.last_end_s or None
        show(stream_mel_figure(heard.mel, centres, last, [], margin, committed_to), key="live_mel")
        trims = [u.trimmed_to_s for u in streamer.updates if u.trimmed_to_s is not None]
        st.caption(f"The buffer holds {last.buffer_start_s:.1f}-{last.time_s:.1f} s of the stream"
                   + (f"; its latest trims (of the last {len(streamer.updates)} updates) at "
                      f"{', '.join(f'{t:.1f}' for t in trims[-5:])} s" if trims else "")
                   + ". It is trimmed once past 15 s where a committed sentence ends (past 20 s with none, after "
                     "the last committed word; at 30 s, whatever is oldest). The green line: the end of the last "
                     "committed word. On the microphone the page looks every 1.5 s at most, so a shorter chunk "
                     "behaves as 1.5 s here.")
        if margin is not None:
            show(attention_edge_figure(last, margin), key="live_attention")
    if streamer.agreement.committed:
        show(lag_figure(streamer.agreement.committed[-200:]), key="live_lag")


def finish_mic_stream() -> None:
    """The microphone stopped: the stream's last look commits its tentative words, and what it committed
    is kept to read (its audio and buffer are freed)."""
    state: MicStream | None = st.session_state.pop("live_stream", None)
    if state is not None and state.streamer.updates:
        state.streamer.finish()
        st.session_state["live_last"] = state.streamer.result()


def last_mic_view() -> None:
    """What the last microphone stream committed, and how late."""
    result: StreamResult | None = st.session_state.get("live_last")
    if result is None or not result.committed:
        return
    st.markdown(f"**The last stream** ({result.duration_s:.0f} s, {result.options.describe()}) committed:")
    st.html(stream_text_html(result.committed, (), text_em()))
    show(lag_figure(result.committed[-200:]), key="live_last_lag")
