"""`python -m whisper_inquiry ablate|mask|lens|hallucination|heads`: JSON out, one error line on bad input."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from whisper_inquiry.audio.samples import sample_named

ROOT = Path(__file__).resolve().parents[1]
WEATHER = str(sample_named("english_weather").path)


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "whisper_inquiry", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def _json(*args) -> dict:
    result = _cli(*args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.slow
def test_ablate_nothing_keeps_the_text_and_lists_every_token_unchanged():
    doc = _json("ablate", WEATHER, "--heads", "")
    assert doc["text"] == doc["original_text"] and "weather today" in doc["text"]
    assert doc["token_changes"] and {c["change"] for c in doc["token_changes"]} == {"same"}


@pytest.mark.slow
def test_mask_and_lens_print_their_shapes():
    doc = _json("mask", WEATHER, "--k", "1500")
    assert doc["k"] == 1500 and doc["text"] == doc["original_text"]
    doc = _json("lens", WEATHER)
    assert [x["layer"] for x in doc["layers"]] == [0, 1, 2, 3] and doc["layers"][-1]["text"] == doc["original_text"]


@pytest.mark.slow
def test_heads_and_hallucination_print_their_shapes():
    doc = _json("heads", WEATHER)
    assert len(doc["ranking"]) == 24 and sum(r["official"] for r in doc["ranking"]) == 8
    assert {"layer", "head", "score", "official"} == set(doc["ranking"][0])
    doc = _json("hallucination", WEATHER)
    assert doc["likely_hallucinated"] is False
    assert {"start_s", "end_s", "text", "likely_hallucinated", "evidence"} == set(doc["segments"][0])


@pytest.mark.parametrize("args", [
    ["ablate", WEATHER, "--heads", "cross:9.9"],
    ["ablate", WEATHER, "--heads", "attn:0.0"],
    ["mask", WEATHER, "--k", "-3"],
    ["lens", str(ROOT / "README.md")],
    ["hallucination", WEATHER, "--task", "translate"],
])
def test_bad_input_is_one_error_line_and_status_2(args):
    result = _cli(*args)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
