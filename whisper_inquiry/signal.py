"""The audio side of the pipeline, for display: a plain STFT spectrogram and Whisper's mel filterbank.

Whisper's own log-mel is what the Trace stores; these let a learner compare it with the linear-
frequency spectrogram it is built from and see the triangular filters that fold one into the other.
"""

from __future__ import annotations

import os

import numpy as np
import whisper

N_FFT = 400  # 25 ms windows at 16 kHz, as whisper.audio uses
HOP = 160  # 10 ms


def stft_db(samples: np.ndarray, max_frames: int = 1500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(freqs_hz, times_s, power in dB) of a Hann-window STFT, averaged in time to at most `max_frames`."""
    x = np.asarray(samples, dtype=np.float32)
    if len(x) < N_FFT:
        x = np.pad(x, (0, N_FFT - len(x)))
    n_frames = 1 + (len(x) - N_FFT) // HOP
    frames = np.lib.stride_tricks.as_strided(x, (n_frames, N_FFT), (x.strides[0] * HOP, x.strides[0]))
    power = np.abs(np.fft.rfft(frames * np.hanning(N_FFT).astype(np.float32), axis=1)) ** 2  # (n_frames, 201)
    step = max(1, int(np.ceil(n_frames / max_frames)))
    usable = (n_frames // step) * step or n_frames
    power = power[:usable].reshape(-1, min(step, usable), power.shape[1]).mean(1)
    db = 10 * np.log10(np.maximum(power, 1e-10)).T.astype(np.float32)  # (201, frames)
    times = (np.arange(db.shape[1]) * step * HOP + N_FFT / 2) / 16_000
    freqs = np.fft.rfftfreq(N_FFT, 1 / 16_000)
    return freqs, times, db


def mel_filterbank(n_mels: int) -> np.ndarray:
    """(n_mels, 201) triangular filters, the same file openai-whisper loads (librosa's Slaney mels)."""
    path = os.path.join(os.path.dirname(whisper.__file__), "assets", "mel_filters.npz")
    with np.load(path, allow_pickle=False) as f:
        return f[f"mel_{n_mels}"]


def waveform_envelope(samples: np.ndarray, points: int = 2000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(times_s, min, max) per bucket: a waveform drawn with 2,000 points looks like one with millions."""
    n = len(samples)
    step = max(1, n // points)
    usable = (n // step) * step
    blocks = samples[:usable].reshape(-1, step)
    times = (np.arange(blocks.shape[0]) * step + step / 2) / 16_000
    return times, blocks.min(1), blocks.max(1)
