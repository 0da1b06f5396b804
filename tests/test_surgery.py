"""Encoder-span surgery on the bundled tiny.en: replacing a span's encoder states deletes its words."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.errors import OptionsError
from whisper_inquiry.experiments.scoring import reference
from whisper_inquiry.experiments.surgery import align_words, changed_spans, operate, word_changes

ROOT = Path(__file__).resolve().parents[1]


def test_surgery_on_an_empty_span_changes_nothing(tiny, weather):
    result = operate(tiny, weather.samples, 3.0, 3.0)
    assert result.text == result.original_text and "weather today is sunny" in result.text
    assert result.removed_words == [] and result.added_words == []


def test_surgery_on_a_words_dtw_span_deletes_that_word(tiny, weather):
    ref = reference(tiny, weather.samples)[0]
    rain = next(w for w in ref.words if w.text.lower() == "rain")
    result = operate(tiny, weather.samples, rain.start_s, rain.end_s)
    assert "rain" in result.removed_words
    assert "expect" in result.text and "afternoon" in result.text  # its neighbours survive


def test_word_changes_ignore_case_and_punctuation():
    assert word_changes("Light breeze. Tomorrow", "light lights tomorrow") == (["breeze"], ["lights"], [1])


def test_a_word_said_twice_and_removed_once_is_told_apart_by_its_place():
    removed, added, at = word_changes("The cat saw the dog.", "The cat saw dog, and ran.")
    assert removed == ["the"] and at == [3] and added == ["and", "ran"]
    # the analysis' timed words (with timestamps) lined up with the surgery's own original text
    places = align_words([" The", " cat", " saw", " the", " dog."], "The cat saw the dog.")
    assert places == [0, 1, 2, 3, 4]
    assert [p in set(at) for p in places] == [False, False, False, True, False]  # only the second "the"
    assert align_words([" Hello", " there"], "Hi there") == [None, 1]  # where the two texts differ: no place
    # each change keeps its place: "breeze" replaced by "lights" in place, "and ran" inserted at the end
    assert changed_spans("Light breeze. Tomorrow", "light lights tomorrow") == [(1, 2, ["lights"])]
    assert changed_spans("The cat saw the dog.", "The cat saw dog, and ran.") == [(3, 4, []), (5, 5, ["and", "ran"])]


@pytest.mark.parametrize("span", [(3.0, 1.0), (-1.0, 2.0), (31.0, 32.0)])
def test_backwards_or_out_of_range_spans_are_refused(tiny, weather, span):
    with pytest.raises(OptionsError):
        operate(tiny, weather.samples, *span)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "whisper_inquiry", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_cli_surgery_prints_original_text_and_removed_words():
    result = _cli("surgery", str(sample_named("english_weather").path), "--span", "0", "0")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {"original_text", "text", "removed_words"} <= doc.keys()
    assert doc["removed_words"] == [] and doc["text"] == doc["original_text"]


@pytest.mark.parametrize("args", [["--span", "3", "1"], [], ["--span", "a", "b"]])
def test_cli_surgery_bad_input_is_one_error_line(args):
    result = _cli("surgery", str(sample_named("english_weather").path), *args)
    assert result.returncode == 2 and result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
