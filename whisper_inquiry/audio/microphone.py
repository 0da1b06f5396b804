"""A bounded buffer for microphone frames: the newest 30 s of a WebRTC stream as 16 kHz mono.

Browser audio arrives as WebRTC frames (typically 48 kHz stereo, 20 ms each) on a worker thread.
`AudioBuffer` resamples them with PyAV to 16 kHz mono and keeps only the newest 30 s, under a lock;
the page reads a snapshot on its own thread. No torch here: a page may hold one.
"""

from __future__ import annotations

import threading

import av
import numpy as np

from whisper_inquiry.trace.schema import SAMPLE_RATE


class AudioBuffer:
    """The newest `seconds` of audio as 16 kHz mono float32; thread-safe, fixed memory."""

    def __init__(self, seconds: float = 30.0):
        self._data = np.zeros(int(seconds * SAMPLE_RATE), dtype=np.float32)
        self._filled = 0
        self._end = 0  # ring position just after the newest sample
        self._lock = threading.Lock()
        self._resampler: av.AudioResampler | None = None
        self.frames_in = 0
        self.samples_in = 0  # every sample written since the last clear: what a stream has not yet seen
        self.ended = False  # the last stream's track ended and no frame has come since

    def push(self, frame: av.AudioFrame) -> None:
        """Called on the WebRTC worker thread for every incoming frame; never touches Streamlit."""
        if self._resampler is None:
            self._resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        frame.pts = None
        chunks = [f.to_ndarray().reshape(-1) for f in self._resampler.resample(frame)]
        if chunks:
            self.extend(np.concatenate(chunks).astype(np.float32) / 32768.0)
        self.frames_in += 1
        self.ended = False

    def extend(self, samples: np.ndarray) -> None:
        """Write into a ring: 50 frames a second must not each copy the whole 30 s."""
        n = len(self._data)
        written = len(samples)
        samples = samples[-n:]
        with self._lock:
            first = min(len(samples), n - self._end)
            self._data[self._end:self._end + first] = samples[:first]
            self._data[:len(samples) - first] = samples[first:]
            self._end = (self._end + len(samples)) % n
            self._filled = min(n, self._filled + len(samples))
            self.samples_in += written

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
            self.samples_in = 0

    def end(self) -> None:
        """The stream's track ended: free its audio and remember it, so a page whose rerun after STOP was
        lost (Streamlit may merge or drop it while a fragment runs) still knows nobody is speaking."""
        self.clear()
        self.ended = True

    def since(self, seen: int) -> tuple[np.ndarray, int]:
        """The samples written after the first `seen` (at most the buffer's 30 s), and how many have been
        written in all: a stream's new audio, read in one go with the count that follows it."""
        with self._lock:
            new = max(0, min(self.samples_in - seen, self._filled))
            ordered = np.concatenate([self._data[self._end:], self._data[:self._end]])
            return ordered[len(ordered) - new:].copy() if new else np.zeros(0, np.float32), self.samples_in

    @property
    def seconds(self) -> float:
        return self._filled / SAMPLE_RATE
