"""The audio side of the pipeline, for display, on librosa: STFT, pitch (pYIN), onsets, resampling.

Whisper's own log-mel is what the Trace stores; these let a learner compare it with the linear-
frequency spectrogram it is built from, see the triangular filters that fold one into the other, and
relate what the encoder attends to with the voice's pitch and the onsets of sounds. librosa is
imported on first use: it takes a second and brings numba with it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import whisper

from whisper_inquiry.trace.schema import SAMPLE_RATE

N_FFT = 400  # 25 ms windows at 16 kHz, as whisper.audio uses
HOP = 160  # 10 ms
FEATURE_HOP = 320  # 20 ms: one encoder position, so pitch and onsets line up with the encoder's states


def stft_db(samples: np.ndarray, max_frames: int = 1500) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(freqs_hz, times_s, power in dB) of a Hann-window STFT, averaged in time to at most `max_frames`."""
    import librosa

    x = np.asarray(samples, dtype=np.float32)
    power = np.abs(librosa.stft(x, n_fft=N_FFT, hop_length=HOP, window="hann", center=True)) ** 2  # (201, frames)
    n_frames = power.shape[1]
    step = max(1, int(np.ceil(n_frames / max_frames)))
    usable = (n_frames // step) * step or n_frames
    power = power[:, :usable].reshape(power.shape[0], -1, min(step, usable)).mean(2)
    db = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None).astype(np.float32)  # (201, frames)
    times = (np.arange(db.shape[1]) * step + (step - 1) / 2) * HOP / SAMPLE_RATE
    freqs = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=N_FFT)
    return freqs, times, db


@dataclass(frozen=True)
class PitchTrack:
    """pYIN's fundamental frequency every 20 ms; NaN where it hears no voice."""

    times_s: np.ndarray  # (n_frames,) float32
    f0_hz: np.ndarray  # (n_frames,) float32, NaN when unvoiced
    voiced_prob: np.ndarray  # (n_frames,) float32

    @property
    def median_f0_hz(self) -> float:
        voiced = self.f0_hz[np.isfinite(self.f0_hz)]
        return float(np.median(voiced)) if voiced.size else float("nan")


def pitch_track(samples: np.ndarray, fmin_hz: float = 60.0, fmax_hz: float = 500.0) -> PitchTrack:
    """The voice's pitch over time (probabilistic YIN, Mauch & Dixon 2014), speech range by default."""
    import librosa

    x = np.asarray(samples, dtype=np.float32)
    f0, _, prob = librosa.pyin(x, fmin=fmin_hz, fmax=fmax_hz, sr=SAMPLE_RATE, frame_length=1024,
                               hop_length=FEATURE_HOP)
    times = librosa.times_like(f0, sr=SAMPLE_RATE, hop_length=FEATURE_HOP)
    return PitchTrack(times.astype(np.float32), f0.astype(np.float32), prob.astype(np.float32))


def onset_strength(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(times_s, strength) every 20 ms: how sharply the mel spectrum rises, peaking where a sound begins."""
    import librosa

    x = np.asarray(samples, dtype=np.float32)
    env = librosa.onset.onset_strength(y=x, sr=SAMPLE_RATE, hop_length=FEATURE_HOP)
    return librosa.times_like(env, sr=SAMPLE_RATE, hop_length=FEATURE_HOP).astype(np.float32), env.astype(np.float32)


def resample(samples: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling (soxr), float32."""
    import librosa

    return librosa.resample(np.asarray(samples, dtype=np.float32), orig_sr=rate_in, target_sr=rate_out,
                            res_type="soxr_hq").astype(np.float32)


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
    times = (np.arange(blocks.shape[0]) * step + step / 2) / SAMPLE_RATE
    return times, blocks.min(1), blocks.max(1)
