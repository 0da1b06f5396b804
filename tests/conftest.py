"""Shared fixtures: the real bundled models, loaded once, and traces of the project's own samples."""

from __future__ import annotations

import pytest

from whisper_inquiry.analyze import analyze
from whisper_inquiry.audio import load_audio
from whisper_inquiry.models import load_model
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.samples import sample_named


@pytest.fixture(scope="session")
def tiny():
    return load_model("tiny.en", device="cpu")


@pytest.fixture(scope="session")
def base():
    return load_model("base", device="cpu")


@pytest.fixture(scope="session")
def weather():
    return load_audio(sample_named("english_weather").path)


@pytest.fixture(scope="session")
def spanish():
    return load_audio(sample_named("spanish").path)


@pytest.fixture(scope="session")
def greedy_trace(tiny, weather):
    return analyze(tiny, weather, AnalysisOptions())


@pytest.fixture(scope="session")
def beam_trace(tiny, weather):
    return analyze(tiny, weather, AnalysisOptions(strategy="beam", beam_size=4))
