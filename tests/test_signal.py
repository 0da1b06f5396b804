"""librosa's measures of the signal helpers and of the tempo and pitch perturbations."""

from __future__ import annotations

import librosa
import numpy as np
import pytest

from whisper_inquiry.audio import signal
from whisper_inquiry.audio.perturb import Perturbation, apply

SR = 16000


@pytest.fixture(scope="module")
def voice(weather):
    return weather.samples[: 4 * SR]  # the first sentence: a steady synthetic voice near 100 Hz


def _semitones(a_hz: float, b_hz: float) -> float:
    return 12 * np.log2(b_hz / a_hz)


def test_time_stretch_keeps_the_pitch_track_and_changes_the_duration(voice):
    stretched = apply(voice, Perturbation("time stretch", 1.5))
    assert abs(librosa.get_duration(y=stretched, sr=SR) - librosa.get_duration(y=voice, sr=SR) / 1.5) < 0.05
    before, after = signal.pitch_track(voice).median_f0_hz, signal.pitch_track(stretched).median_f0_hz
    assert 70 < before < 200 and abs(_semitones(before, after)) < 0.5


def test_pitch_shift_keeps_the_duration_and_moves_the_pitch(voice):
    shifted = apply(voice, Perturbation("pitch shift", 4.0))
    assert librosa.get_duration(y=shifted, sr=SR) == librosa.get_duration(y=voice, sr=SR)
    moved = _semitones(signal.pitch_track(voice).median_f0_hz, signal.pitch_track(shifted).median_f0_hz)
    assert abs(moved - 4.0) < 0.75


def test_stft_of_a_tone_peaks_at_its_frequency():
    t = np.arange(SR) / SR
    freqs, times, db = signal.stft_db(np.sin(2 * np.pi * 1000 * t).astype(np.float32))
    assert db.shape == (len(freqs), len(times)) == (201, 101)
    assert abs(freqs[int(np.argmax(db[:, 50]))] - 1000) <= 40


def test_onset_strength_peaks_where_a_sound_starts():
    x = np.zeros(2 * SR, np.float32)
    x[SR:] = 0.5 * np.sin(2 * np.pi * 440 * np.arange(SR) / SR)
    times, strength = signal.onset_strength(x)
    assert abs(times[int(np.argmax(strength))] - 1.0) < 0.1


def test_resample_changes_the_rate_not_the_duration(voice):
    assert len(signal.resample(voice, SR, 8000)) == len(voice) // 2
