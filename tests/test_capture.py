"""Hooks and global switches are always undone, and concurrent runs do not mix."""

import importlib
import threading

import numpy as np
import pytest
from whisper.model import MultiHeadAttention

from whisper_inquiry import analyze as analyze_module
from whisper_inquiry.analyze import analyze
from whisper_inquiry.audio import Audio, load_audio
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.samples import sample_named

transcribe_module = importlib.import_module("whisper.transcribe")
ORIGINAL_PAD_OR_TRIM = transcribe_module.pad_or_trim


def _assert_nothing_left(model):
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    assert "decode" not in model.__dict__ and "detect_language" not in model.__dict__
    assert transcribe_module.pad_or_trim is ORIGINAL_PAD_OR_TRIM
    assert MultiHeadAttention.use_sdpa is True


def test_no_hook_or_switch_is_left_after_a_run(tiny, greedy_trace):
    _assert_nothing_left(tiny)


def test_no_hook_or_switch_is_left_after_a_failing_run(tiny, weather, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom in the middle of a run")

    monkeypatch.setattr(analyze_module, "token_steps", broken)
    with pytest.raises(RuntimeError, match="boom"):
        analyze(tiny, weather, AnalysisOptions())
    _assert_nothing_left(tiny)


def test_two_threads_get_the_same_traces_as_one_at_a_time(tiny):
    clips = [load_audio(sample_named("english_weather").path), load_audio(sample_named("english_numbers").path)]
    options = AnalysisOptions(strategy="beam", beam_size=3, fallback=False)
    alone = [analyze(tiny, clip, options) for clip in clips]
    together: list = [None, None]
    errors: list = []

    def work(i):
        try:
            together[i] = analyze(tiny, clips[i], options)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for a, b in zip(alone, together):
        assert a.text == b.text
        assert a.windows[0].final.tokens == b.windows[0].final.tokens
        assert a.windows[0].final.tree.token == b.windows[0].final.tree.token
        assert np.array_equal(a.windows[0].encoder.qk, b.windows[0].encoder.qk)
    assert alone[0].text != alone[1].text
    _assert_nothing_left(tiny)


def test_array_input_is_accepted(tiny, weather):
    trace = analyze(tiny, weather.samples[: 16000 * 2], AnalysisOptions(fallback=False))
    assert trace.audio_name == "array" and isinstance(trace.windows[0].mel, np.ndarray)
    assert Audio  # the typed input is the usual one; arrays are a convenience for notebooks
