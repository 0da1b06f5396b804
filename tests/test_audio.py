import io
import tracemalloc

import av
import numpy as np
import pytest
import soundfile as sf

from whisper_inquiry.audio.load import SAMPLE_RATE, load_audio
from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.errors import AudioError


def _encode(samples: np.ndarray, rate: int, fmt: str, codec: str) -> bytes:
    """Encode mono float samples as stereo in a container with PyAV, as a browser or phone would hand them over."""
    buffer = io.BytesIO()
    with av.open(buffer, mode="w", format=fmt) as container:
        stream = container.add_stream(codec, rate=rate, layout="stereo")
        convert = av.AudioResampler(format=stream.codec_context.format.name, layout="stereo", rate=rate)
        data = np.tile(samples.astype(np.float32), (2, 1))
        step = stream.codec_context.frame_size or 1024
        for start in range(0, data.shape[1], step):
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, start:start + step]), format="fltp",
                                               layout="stereo")
            frame.sample_rate = rate
            for converted in convert.resample(frame):
                for packet in stream.encode(converted):
                    container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tone_48k() -> np.ndarray:
    t = np.arange(48_000 * 2) / 48_000
    return 0.3 * np.sin(2 * np.pi * 440 * t)


@pytest.mark.parametrize("fmt,codec", [("wav", "pcm_s16le"), ("flac", "flac"), ("mp3", "libmp3lame"),
                                       ("ogg", "libopus"), ("ipod", "aac"), ("webm", "libopus")])
def test_every_common_container_decodes_to_16k_mono(tone_48k, fmt, codec):
    data = _encode(tone_48k, 48_000, fmt, codec)
    audio = load_audio(data, name=f"tone.{fmt}")
    assert audio.samples.dtype == np.float32 and audio.samples.ndim == 1
    assert audio.channels_in == 2 and audio.sample_rate_in == 48_000
    assert abs(audio.duration_s - 2.0) < 0.15
    # a 440 Hz tone stays a 440 Hz tone after resampling
    spectrum = np.abs(np.fft.rfft(audio.samples[4000:20000]))
    assert abs(np.argmax(spectrum) * SAMPLE_RATE / 16000 - 440) < 5


def test_bundled_flac_reports_what_it_was():
    audio = load_audio(sample_named("english_weather").path)
    assert (audio.codec, audio.sample_rate_in, audio.channels_in) == ("flac", 16000, 1)
    assert 5 < audio.duration_s < 10


@pytest.mark.parametrize("data,message", [
    (b"", "is empty"),
    (b"\x89PNG\r\n\x1a\n" + bytes(64), "looks like a PNG image"),
    (b"just some text, not a sound\n" * 10, "looks like a text file"),
])
def test_bad_input_is_one_clear_line(data, message):
    with pytest.raises(AudioError, match=message) as info:
        load_audio(data, name="upload.wav")
    assert "\n" not in str(info.value)


def test_missing_file():
    with pytest.raises(AudioError, match="no such audio file"):
        load_audio("/nonexistent/clip.wav")


def test_an_hour_of_silence_is_refused_from_the_header_without_decoding_it(tmp_path):
    path = tmp_path / "hour.flac"
    with sf.SoundFile(path, "w", samplerate=8000, channels=1, format="FLAC") as f:
        block = np.zeros(8000 * 60, dtype=np.int16)
        for _ in range(60):
            f.write(block)
    assert path.stat().st_size < 2_000_000
    tracemalloc.start()
    with pytest.raises(AudioError, match="60.0 min long; the limit is 10.0 min"):
        load_audio(path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 50e6  # decoded, it would be 230 MB as float32 at 16 kHz


def test_length_limit_also_holds_while_decoding_a_stream_without_duration(tone_48k):
    # raw ADTS AAC carries no duration in its header: the limit is enforced while decoding
    data = _encode(np.tile(tone_48k, 5), 48_000, "adts", "aac")  # 10 s
    with pytest.raises(AudioError, match="limit is 0.1 min"):
        load_audio(data, name="stream.aac", max_duration_s=6)


def test_non_finite_samples_are_refused(tmp_path):
    samples = np.zeros(16000, dtype=np.float32)
    samples[100] = np.nan
    path = tmp_path / "nan.wav"
    sf.write(path, samples, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="non-finite"):
        load_audio(path)


def test_silence_and_noise_are_valid_input():
    assert not load_audio(sample_named("silence").path).samples.any()
    assert load_audio(sample_named("white_noise").path).samples.std() > 0.01
