"""Audio in, 16 kHz mono float32 out, with what the input was; bad input refused with one clear line.

Decoding goes through PyAV (ffmpeg's libraries, shipped in the wheel) so no system ffmpeg is needed,
and resamples to signed 16-bit exactly as openai-whisper's `load_audio` asks the ffmpeg CLI to, so the
samples match what openai-whisper itself would hear. The length is checked from the container's
header before decoding and again while decoding, so an hour of compressed silence is refused without
ever holding its 1.4 GB of samples.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np

from whisper_inquiry.errors import AudioError
from whisper_inquiry.trace.schema import SAMPLE_RATE

__all__ = ["SAMPLE_RATE", "Audio", "AudioError", "load_audio", "to_wav_bytes"]
DEFAULT_MAX_DURATION_S = 600.0

_MAGIC = {
    b"\x89PNG": "a PNG image",
    b"\xff\xd8\xff": "a JPEG image",
    b"GIF8": "a GIF image",
    b"%PDF": "a PDF document",
    b"PK\x03\x04": "a ZIP archive",
    b"\x7fELF": "a program",
}


@dataclass(frozen=True)
class Audio:
    """Decoded audio, and what it was before decoding (shown to the user as the input's facts)."""

    samples: np.ndarray  # (n_samples,) float32 at 16 kHz, mono
    name: str
    sample_rate_in: int
    channels_in: int
    codec: str
    container: str

    @property
    def duration_s(self) -> float:
        return len(self.samples) / SAMPLE_RATE


def _what_it_looks_like(head: bytes) -> str | None:
    for magic, what in _MAGIC.items():
        if head.startswith(magic):
            return what
    try:
        head[:512].decode("utf-8")
        return "a text file"
    except UnicodeDecodeError:
        return None


def _not_audio(name: str, data: bytes) -> str:
    looks = _what_it_looks_like(data[:16])
    return f"not an audio file: {name} looks like {looks}" if looks else f"not an audio file: {name} could not be read"


def load_audio(source: str | Path | bytes, name: str | None = None,
               max_duration_s: float = DEFAULT_MAX_DURATION_S) -> Audio:
    """Decode a file path or raw bytes (any container ffmpeg reads) to 16 kHz mono float32."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        name = name or path.name
        if not path.is_file():
            raise AudioError(f"no such audio file: {path}")
        data = path.read_bytes()
    else:
        data = bytes(source)
        name = name or "audio"
    if not data:
        raise AudioError(f"{name} is empty (0 bytes)")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.error.FFmpegError, ValueError, OSError):
        raise AudioError(_not_audio(name, data)) from None
    with container:
        if not container.streams.audio:
            looks = _what_it_looks_like(data[:16])
            raise AudioError(f"not an audio file: {name} looks like {looks}" if looks else f"{name} has no audio track")
        stream = container.streams.audio[0]
        header_s = _header_duration_s(container, stream)
        if header_s is not None and header_s > max_duration_s + 0.5:
            raise AudioError(_too_long(name, header_s, max_duration_s))
        samples = _decode(container, stream, name, max_duration_s)
        info = dict(sample_rate_in=int(stream.rate or 0), channels_in=int(stream.channels or 0),
                    codec=stream.codec_context.name, container=container.format.name)
    if samples.size == 0:
        raise AudioError(f"{name} holds no audio samples")
    return Audio(samples=samples, name=name, **info)


def _too_long(name: str, duration_s: float, max_duration_s: float) -> str:
    return f"{name} is {duration_s / 60:.1f} min long; the limit is {max_duration_s / 60:.1f} min"


def _header_duration_s(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _decode(container, stream, name: str, max_duration_s: float) -> np.ndarray:
    """Decode and resample to s16 mono 16 kHz (as whisper's ffmpeg command does), stopping at the limit."""
    resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
    limit = int((max_duration_s + 0.5) * SAMPLE_RATE)
    chunks: list[np.ndarray] = []
    total = 0
    try:
        for frame in container.decode(stream):
            if frame.format.name.startswith(("flt", "dbl")) and not np.isfinite(frame.to_ndarray()).all():
                # checked before resampling: converting to 16-bit would silently turn NaN into numbers
                raise AudioError(f"{name} contains non-finite samples (NaN or infinity); "
                                 "Whisper's log-mel would be all NaN")
            frame.pts = None  # let the resampler number frames itself; some containers repeat pts
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                chunks.append(chunk)
                total += chunk.size
            if total > limit:
                raise AudioError(_too_long(name, total / SAMPLE_RATE, max_duration_s) + " (or more)")
        for out in resampler.resample(None):
            chunks.append(out.to_ndarray().reshape(-1))
    except av.error.FFmpegError as exc:
        raise AudioError(f"{name} could not be decoded: {exc.strerror or type(exc).__name__}") from None
    if not chunks:
        return np.zeros(0, dtype=np.float32)
    return (np.concatenate(chunks).astype(np.float32) / 32768.0)


def to_wav_bytes(samples: np.ndarray, sample_rate: int = SAMPLE_RATE) -> bytes:
    """16-bit PCM WAV of float samples, for players and downloads (silence stays silence)."""
    import wave

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sample_rate)
        w.writeframes(pcm.tobytes())
    return buffer.getvalue()
