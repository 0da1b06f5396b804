"""Live: a microphone or a replayed clip as a stream, and the policy that decides which words are final."""

import json
import os

import plotly.graph_objects as go
import streamlit as st
from streamlit_webrtc import WebRtcMode, create_audio_sink_track, webrtc_streamer

from components.common import page_end, page_start, show, style
from components.session import current_trace, engine
from components.streaming import (
    finish_mic_stream,
    last_mic_view,
    mic_stream,
    mic_view,
    options_ui,
    replay_ui,
    result_view,
)
from whisper_inquiry.audio.microphone import AudioBuffer
from whisper_inquiry.engine.factory import DEFAULT_MODEL

# On localhost no ICE server is needed, and offline a default public STUN server would stall the
# connection for about 40 s; to serve other machines, set the variable to a JSON list of servers.
ICE_SERVERS = json.loads(os.environ.get("WHISPER_INQUIRY_ICE_SERVERS", "[]"))
REFRESH_S = 1.5

page_start("Talk to Whisper",
           "Whisper reads up to 30 s at once, so how do live captions work? A stream re-reads a growing buffer "
           "each time more audio arrives, and a policy decides which words are final (black) and which may still "
           "change (grey). Speak into the microphone, or replay a clip as if it were being heard.")
model_name = st.session_state.get("model_name", DEFAULT_MODEL)
st.caption(f"Model: {model_name} (change it in the sidebar).")
options = options_ui("stream")
source = st.radio("Stream from", ["Microphone", "Replay a clip"], horizontal=True, key="live_source",
                  persist_state="session")
if source == "Replay a clip":
    st.session_state.pop("live_stream", None)  # a microphone's stream is not resumed after a replay
    trace = current_trace()
    if trace is None:
        st.info("Choose a clip in the sidebar (bundled, uploaded or recorded) and let it be analysed: the replay "
                "feeds its audio to the stream and compares the result with that analysis.")
    else:
        result = replay_ui(trace, engine(trace.model.name), options)
        if result is not None:
            result_view(result, trace)
    page_end()
    st.stop()
if "live_buffer" not in st.session_state:
    st.session_state["live_buffer"] = AudioBuffer(30.0)
buffer: AudioBuffer = st.session_state["live_buffer"]


def _browser_session() -> bool:
    """streamlit-webrtc needs a real server runtime; Streamlit's AppTest runs pages without one."""
    from streamlit.runtime import Runtime

    # the attribute streamlit-webrtc reads; AppTest's stand-in runtime lacks it
    return Runtime.exists() and getattr(Runtime.instance(), "_session_mgr", None) is not None


if _browser_session():
    # The sink's callback runs on aiortc's event-loop thread for every frame: it only resamples into the
    # bounded buffer and never touches Streamlit. When the stream ends the buffer is freed.
    sink = create_audio_sink_track(callback=buffer.push, key="live-sink", on_ended=buffer.end)
    ctx = webrtc_streamer(key="live", mode=WebRtcMode.SENDONLY, rtc_configuration={"iceServers": ICE_SERVERS},
                          media_stream_constraints={"video": False, "audio": True}, sink_audio_track=sink)
else:
    st.info("The microphone stream needs a browser session.")
    ctx = None


@st.fragment(run_every=REFRESH_S)
def live_view() -> None:
    # Asked on every refresh, not taken from the page's last full run: the component's STOP updates the
    # context even when only this fragment reruns, and an ended track means stopped whatever the page saw.
    playing = ctx is not None and ctx.state.playing and not buffer.ended
    if not playing:
        if buffer.seconds:
            buffer.clear()  # the stream stopped: free its audio
        finish_mic_stream()  # its last look commits what was tentative; the rest of the stream is freed
        st.write("Not listening.")
        last_mic_view()
        return
    model_engine = engine(model_name)
    ahead = model_engine.waiting()  # other listeners' and users' windows: why a busy class waits longer
    queue = f"; {ahead} other window{'' if ahead == 1 else 's'} ahead in the engine" if ahead else ""
    st.caption(f"Listening: {buffer.samples_in / 16000:.1f} s heard, {buffer.frames_in} frames received{queue}.")
    state = mic_stream(model_engine, options, buffer.samples_in)
    new, state.seen = buffer.since(state.seen)
    state.streamer.feed(new)
    if state.streamer.due() and state.streamer.received_s >= 0.5:
        state.streamer.update()
    mic_view(state)
    heard = state.streamer.last_heard
    if heard is None:
        return
    if heard.repeating:
        st.caption("The decoder fell into repeating one phrase, a known failure of greedy decoding, and was "
                   "stopped there. An analysis of this audio would decode the window again at a higher "
                   "temperature (whisper's fallback).")
    if heard.passes is not None:
        st.caption(f"Re-read {len(heard.tokens)} tokens in {heard.passes} decoder "
                   f"pass{'' if heard.passes == 1 else 'es'} instead of one pass per token: the last transcript "
                   "served as a draft, and the decoder kept it only where its own choice agreed.")
    if heard.steps:
        probs = go.Figure(go.Bar(x=[s.text for s in heard.steps], y=[s.prob for s in heard.steps],
                                 marker_color="#4c78a8"))
        probs.update_yaxes(range=[0, 1], tickformat=".0%")
        show(style(probs, "The buffer's tokens and how sure the decoder was of each", None, "probability", 280),
             key="live_probs")


live_view()
page_end()
