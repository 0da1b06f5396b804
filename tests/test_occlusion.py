"""Occlusion saliency on the bundled tiny.en: what each token loses when one span is hidden."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.errors import OptionsError
from whisper_inquiry.experiments.occlusion import OcclusionOptions, occlude, window_starts
from whisper_inquiry.experiments.scoring import reference

ROOT = Path(__file__).resolve().parents[1]
SILENCE_S = 2.0
PROB_TOLERANCE = 0.02  # absolute change in each token's probability allowed when only silence is hidden


@pytest.fixture(scope="module")
def silence_then_weather(weather):
    return np.concatenate([np.zeros(int(SILENCE_S * 16000), np.float32), weather.samples])


@pytest.fixture(scope="module")
def weather_reference(tiny, weather):
    return reference(tiny, weather.samples)[0]


def test_window_starts_cover_the_clip_to_its_end():
    starts = window_starts(9.3, 1.0, 0.5)
    assert starts[0] == 0 and np.allclose(np.diff(starts[:-1]), 0.5)
    assert starts[-1] + 1.0 >= 9.3 - 1e-6 and starts[-1] <= 8.3 + 1e-6
    assert list(window_starts(0.4, 1.0, 0.5)) == [0.0]


@pytest.mark.parametrize("fill", ["silence", "padding"])
def test_occluding_silence_only_keeps_every_token_probability(tiny, silence_then_weather, fill):
    result = occlude(tiny, silence_then_weather, OcclusionOptions(window_s=1.0, fill=fill), starts_s=[0.5])
    before = np.exp(result.reference.logprobs)
    assert "weather today" in result.reference.text
    assert np.abs(result.prob_after[:, 0] - before).max() < PROB_TOLERANCE


@pytest.mark.parametrize("word", ["breeze", "rain"])
@pytest.mark.parametrize("fill", ["silence", "padding"])
def test_occluding_a_words_dtw_span_drops_that_words_tokens_most(tiny, weather, weather_reference, word, fill):
    span = next(w for w in weather_reference.words if w.text.lower() == word)
    result = occlude(tiny, weather.samples, OcclusionOptions(window_s=span.end_s - span.start_s, fill=fill),
                     starts_s=[span.start_s])
    drop = result.drop[:, 0]  # (n_tokens,)
    assert int(np.argmax(drop)) in span.token_indices
    assert drop[list(span.token_indices)].max() > 0.5  # nats: the word's token lost at least 40% of its probability


def test_default_occlusion_map_has_a_diagonal(tiny, weather):
    result = occlude(tiny, weather.samples)
    assert result.drop.shape == (len(result.tokens), len(result.starts_s))
    text_rows = [i for i, t in enumerate(result.tokens) if t.strip() and not t.startswith("<|")]
    peaks = [int(np.argmax(result.drop[i])) for i in text_rows]
    assert np.all(np.diff(peaks) >= -1)  # later words need later audio (one window of slack)
    assert peaks[-1] - peaks[0] >= len(result.starts_s) // 2


def test_bad_options_are_refused():
    with pytest.raises(OptionsError):
        OcclusionOptions(fill="mud")
    with pytest.raises(OptionsError):
        OcclusionOptions(window_s=0)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "whisper_inquiry", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_cli_occlude_prints_the_json_of_the_issue():
    result = _cli("occlude", str(sample_named("english_weather").path), "--window-s", "3", "--stride-s", "3")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {"tokens", "times_s", "drop", "seconds"} <= doc.keys()
    assert doc["times_s"][:2] == [0.0, 3.0] and doc["times_s"][-1] + 3 >= 8.6  # the last window ends the clip
    assert len(doc["drop"]) == len(doc["tokens"])
    assert all(len(row) == len(doc["times_s"]) for row in doc["drop"]) and doc["tokens"][1] == " weather"


@pytest.mark.parametrize("args", [["--fill", "mud"], ["--window-s", "abc"], ["--stride-s", "0"]])
def test_cli_occlude_bad_input_is_one_error_line(args):
    result = _cli("occlude", str(sample_named("english_weather").path), *args)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
