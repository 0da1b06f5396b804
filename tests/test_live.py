"""The live page's library side: browser-like frames resampled into a bounded buffer, then heard."""

import av
import numpy as np
import pytest
import whisper
from whisper.decoding import DecodingOptions

from whisper_inquiry.audio.load import SAMPLE_RATE, load_audio
from whisper_inquiry.audio.microphone import AudioBuffer
from whisper_inquiry.audio.perturb import Perturbation, apply
from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.engine.lockstep import DecodeJob, run_alone
from whisper_inquiry.engine.repeats import LONGEST, SPAN, repeating
from whisper_inquiry.engine.worker import Worker
from whisper_inquiry.instruments.live import LEAD_S, between_words, listen


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
    assert not heard.repeating
    assert heard.mel.shape[0] == 80 and heard.mel.shape[1] == len(weather.samples) // 160
    assert not listen(tiny, np.zeros(16000, np.float32)).text.strip()
    silence = listen(tiny, np.zeros(32000, np.float32))
    assert silence.no_speech_prob > 0.5 and not silence.steps


def test_repeating_is_one_short_phrase_over_the_last_span_of_tokens():
    assert SPAN == 24 and LONGEST == 6
    assert repeating([5] * 24) and not repeating([5] * 23)
    assert repeating([7, 8] + [1, 2, 3] * 8)  # the last 24 tokens: " going to be" eight times
    assert repeating([1, 2, 3, 4, 5, 6] * 4)  # the longest phrase, four times
    assert not repeating([1, 2, 3, 4, 5, 6, 7] * 4)  # a longer phrase is left alone
    assert not repeating(list(range(40)))
    assert not repeating([1, 2, 3] * 7 + [1, 2, 4])


@pytest.fixture(scope="module")
def looping_window() -> np.ndarray:
    """30 s of the bundled clips, sped up, that tiny.en hears as "I'm going to be going to be ..." to its
    sample length (found by bench/live.py's listeners, whose refresh it held up for 6.5 s)."""
    clips = [load_audio(sample_named(n).path).samples for n in ("english_weather", "english_numbers", "english_story")]
    sped = apply(np.concatenate(clips * 2), Perturbation("speed", 1.1))
    return sped[29 * SAMPLE_RATE + 160: 59 * SAMPLE_RATE]  # a buffer not yet full: listen takes it whole


def test_a_live_window_that_falls_into_a_loop_is_stopped_alike_in_every_lane(tiny, looping_window):
    """Without the rule whisper's greedy decode writes 224 tokens of the loop; with it Live ends once the
    last 24 tokens repeat one phrase, at the same token alone (whisper's loop with the rule as a logit
    filter), as a row of the batched step, and drafted; the tokens before are whisper's own."""
    heard = listen(tiny, looping_window)
    assert heard.repeating and heard.text.startswith("I'm going to be going to be going to be")
    assert SPAN <= len(heard.tokens) <= SPAN + LONGEST + 4
    assert len(looping_window) < whisper.audio.N_SAMPLES
    mel = whisper.pad_or_trim(whisper.log_mel_spectrogram(looping_window, tiny.dims.n_mels), 3000)
    unruled = run_alone(tiny, DecodeJob(mel, DecodingOptions(language="en", without_timestamps=True, fp16=False)))
    assert len(unruled.result.tokens) == 224 and unruled.result.tokens[: len(heard.tokens)] == list(heard.tokens)
    worker = Worker(tiny, max_batch=4)
    try:
        batched = listen(tiny, looping_window, submit=worker.submit)
        drafted = listen(tiny, looping_window, submit=worker.submit, draft=heard.tokens)
        assert worker.stats.deciders["batched step"] >= 1
    finally:
        worker.close(60)
    assert batched.tokens == heard.tokens and batched.repeating
    assert drafted.tokens == heard.tokens and drafted.passes is not None


def test_a_full_buffer_is_heard_from_its_quietest_moment_of_the_first_seconds(tiny, looping_window):
    """The window starts between two words, not at the cut: the same clip, full, starts later (at most
    LEAD_S in) at a quiet frame, and is heard without the loop."""
    full = np.concatenate([np.zeros(160, np.float32), looping_window])
    window = between_words(full)
    cut = len(full) - len(window)
    assert 0 < cut <= LEAD_S * SAMPLE_RATE
    loudness = lambda at: float(np.sqrt(np.mean(full[at: at + 400] ** 2)))  # noqa: E731
    assert loudness(cut) <= min(loudness(at) for at in range(0, int(LEAD_S * SAMPLE_RATE) - 400, 160))
    heard = listen(tiny, full)
    assert not heard.repeating and heard.mel.shape[1] == len(window) // 160


def test_a_stream_reads_only_the_samples_it_has_not_seen_from_the_microphone_buffer():
    buffer = AudioBuffer(seconds=2)
    buffer.extend(np.arange(8000, dtype=np.float32))
    new, seen = buffer.since(0)
    assert seen == 8000 and np.array_equal(new, np.arange(8000))
    buffer.extend(np.arange(8000, 9000, dtype=np.float32))
    new, seen = buffer.since(seen)
    assert seen == 9000 and np.array_equal(new, np.arange(8000, 9000))
    buffer.extend(np.zeros(50_000, np.float32))  # more than the ring holds since the last read: its 2 s
    new, seen = buffer.since(seen)
    assert seen == 59_000 and len(new) == 32_000
    assert len(buffer.since(seen)[0]) == 0
