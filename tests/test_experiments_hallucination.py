"""Hallucination check on the real bundled models: presets made here from bundled samples and numpy."""

from __future__ import annotations

import importlib

import pytest

from whisper_inquiry.audio.load import load_audio
from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.experiments.hallucination import (
    SPEECH_AFTER_S,
    check_hallucination,
    is_segment_anomaly,
    known_phrases,
    longest_repeat,
    preset_audio,
    word_anomaly_score,
)


@pytest.mark.parametrize("name", ["english_weather", "english_numbers"])
def test_clean_english_speech_is_not_flagged(tiny, name):
    result = check_hallucination(tiny, load_audio(sample_named(name).path).samples)
    assert result.segments and not result.likely_hallucinated, [s.verdict for s in result.segments]
    assert all(s.attention_entropy == s.attention_entropy for s in result.segments)  # attention was read (not NaN)
    assert all(len(s.token_peaks) > 0 for s in result.segments)


@pytest.mark.parametrize("name", ["pure noise", "long silence"])
@pytest.mark.slow
def test_non_speech_presets_are_flagged_with_the_no_speech_skip_off(tiny, name):
    samples, task = preset_audio(name)
    result = check_hallucination(tiny, samples, task, no_speech_gate=False)
    assert result.segments and result.likely_hallucinated, [s.verdict for s in result.segments]
    assert result.to_json()["likely_hallucinated"] is True


def test_silence_before_speech_is_flagged_in_the_silence_and_nowhere_else(tiny):
    samples, task = preset_audio("silence before speech")
    result = check_hallucination(tiny, samples, task, silence_threshold_s=2.0)  # whisper's defaults otherwise
    assert result.likely_hallucinated, [s.verdict for s in result.segments]
    flagged = [s for s in result.segments if s.likely_hallucinated]
    assert all(s.end_s <= SPEECH_AFTER_S for s in flagged), [(s.start_s, s.end_s, s.text) for s in flagged]
    speech = [s for s in result.segments if "weather" in s.text]
    assert speech and not any(s.likely_hallucinated for s in speech)
    assert result.rerun_text is not None


@pytest.mark.slow
def test_translating_spanish_after_silence_is_flagged_in_the_silence_only(base):
    samples, task = preset_audio("translating Spanish after silence (base)")
    result = check_hallucination(base, samples, task)
    flagged = [s for s in result.segments if s.likely_hallucinated]
    assert flagged and all(s.end_s <= SPEECH_AFTER_S for s in flagged), [(s.start_s, s.text) for s in flagged]
    spanish = [s for s in result.segments if s.start_s >= SPEECH_AFTER_S - 1]
    assert spanish and "morning" in " ".join(s.text.lower() for s in spanish)  # translated, into English
    assert not any(s.likely_hallucinated for s in spanish)


def test_word_anomaly_scoring_is_whispers_own_code():
    transcribe = importlib.import_module("whisper.transcribe").transcribe
    consts = [c for c in transcribe.__code__.co_consts if hasattr(c, "co_name")]
    assert word_anomaly_score.__code__ in consts and is_segment_anomaly.__code__ in consts
    short = {"word": " a", "start": 1.0, "end": 1.0, "probability": 0.1}
    assert word_anomaly_score(short) == pytest.approx(1 + 0.133 * 15)
    assert is_segment_anomaly({"words": [short] * 3})
    assert not is_segment_anomaly({"words": [{"word": " fine", "start": 0.0, "end": 0.4, "probability": 0.9}]})


def test_repeats_and_phrases():
    assert longest_repeat([5, 1, 2, 1, 2, 1, 2, 9]) == (2, 3, 1)
    assert "thank you for watching" in known_phrases()
