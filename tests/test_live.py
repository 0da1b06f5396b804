"""The live page's library side: browser-like frames resampled into a bounded buffer, then heard."""

import av
import numpy as np

from whisper_inquiry.audio.microphone import AudioBuffer
from whisper_inquiry.instruments.live import listen


def _frames_48k_stereo(samples_16k: np.ndarray):
    """What a browser sends over WebRTC: 48 kHz stereo s16 in 20 ms frames (960 samples)."""
    x = np.interp(np.arange(len(samples_16k) * 3) / 3, np.arange(len(samples_16k)), samples_16k)
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    for start in range(0, len(pcm) - 960, 960):
        chunk = pcm[start:start + 960]
        frame = av.AudioFrame.from_ndarray(np.repeat(chunk, 2)[None, :], format="s16", layout="stereo")
        frame.sample_rate = 48_000
        frame.pts = start
        yield frame


def test_buffer_resamples_webrtc_frames_to_16k_mono_and_keeps_only_30_s(weather):
    buffer = AudioBuffer(seconds=30)
    for frame in _frames_48k_stereo(weather.samples):
        buffer.push(frame)
    got = buffer.snapshot()
    assert abs(len(got) / 16000 - weather.duration_s) < 0.1
    n = min(len(got), len(weather.samples)) - 400
    corr = np.corrcoef(got[200:n], weather.samples[200:n])[0, 1]
    assert corr > 0.95  # the same sound, not just the same length
    for _ in range(5):  # 45 s more: the buffer stays at its 30 s
        buffer.extend(weather.samples)
    assert len(buffer.snapshot()) == 30 * 16000
    buffer.clear()
    assert buffer.seconds == 0 and len(buffer.snapshot()) == 0


def test_an_ended_stream_is_remembered_until_the_next_frame(weather):
    """The live page stops on an ended track even when the rerun after STOP never reaches it."""
    buffer = AudioBuffer(seconds=30)
    frames = _frames_48k_stereo(weather.samples)
    buffer.push(next(frames))
    assert not buffer.ended and buffer.frames_in == 1
    buffer.end()
    assert buffer.ended and buffer.seconds == 0 and buffer.frames_in == 0
    buffer.push(next(frames))  # START again: a new stream's first frame
    assert not buffer.ended and buffer.seconds > 0


def test_listen_hears_the_words_with_their_probabilities(tiny, weather):
    heard = listen(tiny, weather.samples)
    assert "weather today is sunny" in heard.text
    assert heard.steps and all(0 < s.prob <= 1 for s in heard.steps)
    assert heard.mel.shape[0] == 80 and heard.mel.shape[1] == len(weather.samples) // 160
    assert not listen(tiny, np.zeros(16000, np.float32)).text.strip()
    silence = listen(tiny, np.zeros(32000, np.float32))
    assert silence.no_speech_prob > 0.5 and not silence.steps
