"""Hooks and global switches are always undone, and concurrent runs do not mix."""

import importlib
import threading
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import whisper
from whisper.audio import N_FRAMES, N_SAMPLES
from whisper.model import ModelDimensions, MultiHeadAttention, Whisper

from whisper_inquiry.analyze import analyze
from whisper_inquiry.audio.load import SAMPLE_RATE, load_audio
from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.instruments import points
from whisper_inquiry.instruments.capture import Hooks, model_lock
from whisper_inquiry.options import AnalysisOptions

analyze_module = importlib.import_module("whisper_inquiry.analyze")  # the package's `analyze` is the function
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


def test_array_input_is_taken_as_16_khz_mono_samples(tiny, weather):
    samples = weather.samples[: SAMPLE_RATE * 2]
    trace = analyze(tiny, samples, AnalysisOptions(fallback=False))
    assert trace.audio_name == "array" and trace.sample_rate_in == SAMPLE_RATE and trace.channels_in == 1
    assert trace.duration_s == 2.0 and np.array_equal(trace.audio, samples)
    window = trace.windows[0]
    assert window.content_s == 2.0
    mel = whisper.log_mel_spectrogram(samples, tiny.dims.n_mels, padding=N_SAMPLES)[:, :200]
    assert np.allclose(window.mel, whisper.pad_or_trim(mel, N_FRAMES).numpy(), atol=1e-6)


def test_every_core_capture_point_is_a_real_module_path(tiny):
    for stage in (points.RUN, points.TEACHER_FORCED):
        for point in points.points(stage):
            for name in point.names(tiny):
                assert isinstance(tiny.get_submodule(name), torch.nn.Module), name
    assert points.encoder_query(3) == "encoder.blocks.3.attn.query"
    assert len(points.CORE[3].names(tiny)) == tiny.dims.n_audio_layer


def test_a_capture_point_added_through_the_registry_lands_in_the_trace_on_a_random_tiny_model(tmp_path):
    from whisper_inquiry.trace.serialize import load_trace, save_trace

    torch.manual_seed(0)  # random weights: only the plumbing is under test, never the words
    dims = ModelDimensions(n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=2, n_audio_layer=2,
                           n_vocab=51864, n_text_ctx=448, n_text_state=64, n_text_head=2, n_text_layer=2)
    model = Whisper(dims).eval()
    point = points.CapturePoint("encoder.blocks.{layer}.mlp", points.RUN, "made up for this test: mean MLP output",
                                keep=lambda out: out[0].mean(0).float().cpu().numpy())  # (n_state,)
    audio = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32) * 0.1
    points.register(point)
    try:
        trace = analyze(model, audio, AnalysisOptions(fallback=False, timestamps=False))
    finally:
        points.unregister(point.path)
    window = trace.windows[0]
    assert sorted(window.captured) == ["encoder.blocks.0.mlp", "encoder.blocks.1.mlp"]
    seen = {}
    handle = model.encoder.blocks[1].mlp.register_forward_hook(lambda m, i, out: seen.setdefault("out", out))
    try:
        with torch.no_grad():
            model.encoder(torch.from_numpy(window.mel)[None])
    finally:
        handle.remove()
    assert np.allclose(window.captured["encoder.blocks.1.mlp"], seen["out"][0].mean(0).numpy(), atol=1e-5)
    save_trace(trace, tmp_path / "t.npz")
    assert np.array_equal(load_trace(tmp_path / "t.npz").windows[0].captured["encoder.blocks.1.mlp"],
                          window.captured["encoder.blocks.1.mlp"])
    _assert_nothing_left(model)
    assert not points.extras()


def test_the_registry_refuses_a_point_it_cannot_record():
    with pytest.raises(ValueError, match="needs `keep`"):
        points.register(points.CapturePoint("encoder.blocks.{layer}.mlp", points.RUN, "no keep"))
    with pytest.raises(ValueError, match="only encoder modules"):
        points.register(points.CapturePoint("decoder.blocks.{layer}.mlp", points.RUN, "x", keep=lambda o: o))
    assert not points.extras()


def test_each_model_has_its_own_lock_which_its_stand_in_shares(tiny):
    """The lock is the model's, not the process's: holding one model never blocks hooks on another, and a
    request's stand-in for the model (analyze._RequestModel) is the same model to the lock."""
    other = SimpleNamespace(decoder=torch.nn.Linear(1, 1))  # another loaded model, as far as the lock sees
    stand_in = analyze_module._RequestModel(tiny, SimpleNamespace(decode=None, detect_language=None))
    assert model_lock(stand_in) is model_lock(tiny) is not model_lock(other)
    holding, done = threading.Event(), threading.Event()

    def hold():
        with Hooks(tiny):
            holding.set()
            done.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert holding.wait(60)
        assert model_lock(other).acquire(blocking=False)  # free while tiny is held
        model_lock(other).release()
        assert not model_lock(stand_in).acquire(blocking=False)  # tiny's, held by the other thread
    finally:
        done.set()
        holder.join()
    assert model_lock(tiny).acquire(blocking=False)
    model_lock(tiny).release()
