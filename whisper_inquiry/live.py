"""Live listening: a bounded buffer for microphone frames, and a quick look at the last 30 s.

Browser audio arrives as WebRTC frames (typically 48 kHz stereo, 20 ms each) on a worker thread.
`AudioBuffer` resamples them with PyAV to 16 kHz mono and keeps only the newest 30 s, under a lock;
the page reads a snapshot on its own thread. `listen` decodes that snapshot greedily, recording each
token's probability, without the heavier instrumentation of `analyze`.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import av
import numpy as np
import torch
import whisper
from whisper.audio import N_SAMPLES
from whisper.decoding import DecodingOptions, DecodingTask

from .audio import SAMPLE_RATE
from .capture import RUN_LOCK
from .search import RecordingDecoder
from .tokens import token_steps
from .trace import TokenStep

NO_SPEECH_THRESHOLD = 0.6  # whisper.transcribe's defaults
LOGPROB_THRESHOLD = -1.0


class AudioBuffer:
    """The newest `seconds` of audio as 16 kHz mono float32; thread-safe, fixed memory."""

    def __init__(self, seconds: float = 30.0):
        self._data = np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)
        self._filled = 0
        self._end = 0  # ring position just after the newest sample
        self._lock = threading.Lock()
        self._resampler: av.AudioResampler | None = None
        self.frames_in = 0

    def push(self, frame: av.AudioFrame) -> None:
        """Called on the WebRTC worker thread for every incoming frame; never touches Streamlit."""
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        frame.pts = None
        chunks = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        if chunks:
            self.extend(np.concatenate(chunks).astype(np.float32) / 32768.0)
        self.frames_in += 1

    def extend(self, samples: np.ndarray) -> None:
        """Write into a ring: 50 frames a second must not each copy the whole 30 s."""
        n = len(self._data)
        samples = samples[-n:]
        with self._lock:
            first = min(len(samples), n - self._end)
            self._data[self._end:self._end + first] = samples[:first]
            self._data[:len(samples) - first] = samples[first:]
            self._end = (self._end + len(samples)) % n
            self._filled = min(n, self._filled + len(samples))

    def snapshot(self) -> np.ndarray:
        """The buffered audio, oldest first."""
        with self._lock:
            ordered = np.concatenate([self._data[self._end:], self._data[:self._end]])
            return ordered[len(ordered) - self._filled:]

    def clear(self) -> None:
        with self._lock:
            self._data[:] = 0
            self._filled = self._end = 0
            self._resampler = None
            self.frames_in = 0

    @property
    def seconds(self) -> float:
        return self._filled / SAMPLE_RATE


@dataclass(frozen=True)
class Heard:
    text: str
    steps: list[TokenStep]
    mel: np.ndarray  # (n_mels, frames) float32, only the frames that hold audio
    no_speech_prob: float


@torch.no_grad()
def listen(model, samples: np.ndarray, top_k: int = 5) -> Heard:
    """Greedy decode of the newest 30 s, with every token's probability (whisper's own DecodingTask)."""
    audio = samples[-N_SAMPLES:]
    mel = whisper.log_mel_spectrogram(torch.from_numpy(audio), model.dims.n_mels).to(model.device)
    frames = mel.shape[-1]
    mel = whisper.pad_or_trim(mel, 3000)
    options = DecodingOptions(language="en" if not model.is_multilingual else None, without_timestamps=True,
                              fp16=model.device.type == "cuda")
    with RUN_LOCK:
        task = DecodingTask(model, options)
        decoder = RecordingDecoder(task.decoder, task.sample_begin, task.tokenizer.eot, top_k)
        task.decoder = decoder
        result = task.run((mel.half() if options.fp16 else mel)[None])[0]
    steps = [s for s in token_steps(decoder, result.tokens, task.tokenizer, top_k) if not s.is_eot]
    mel_np = mel[:, :frames].float().cpu().numpy()
    if result.no_speech_prob > NO_SPEECH_THRESHOLD and result.avg_logprob < LOGPROB_THRESHOLD:
        return Heard("", [], mel_np, float(result.no_speech_prob))  # whisper.transcribe's silence rule
    return Heard(result.text, steps, mel_np, float(result.no_speech_prob))
