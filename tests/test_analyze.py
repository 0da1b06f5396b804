"""The instrumented run is openai-whisper's run: same tokens, same text, nothing global left changed."""

import dataclasses

import numpy as np
import pytest
import torch
import whisper
from whisper.decoding import DecodingOptions, DecodingTask

from whisper_inquiry.analyze import analyze
from whisper_inquiry.audio.load import Audio
from whisper_inquiry.options import AnalysisOptions


def _plain_decode(model, window, **options):
    """whisper.decode on the exact mel the trace's window saw, with transcribe's settings for a first window."""
    mel = torch.from_numpy(window.mel)
    return whisper.decode(model, mel, DecodingOptions(language="en", fp16=False, prompt=[], **options))


def test_greedy_tokens_equal_whisper_decode_token_for_token(tiny, greedy_trace):
    window = greedy_trace.windows[0]
    assert window.final.tokens == _plain_decode(tiny, window).tokens


def test_beam_tokens_equal_whisper_decode_token_for_token(tiny, beam_trace):
    window = beam_trace.windows[0]
    assert window.final.tokens == _plain_decode(tiny, window, beam_size=4).tokens


def test_text_equals_whisper_transcribe(tiny, weather, greedy_trace):
    expected = whisper.transcribe(tiny, weather.samples, fp16=False)["text"]
    assert greedy_trace.text == expected
    assert "weather today is sunny" in expected


@pytest.mark.slow
def test_long_audio_goes_window_by_window_like_transcribe(tiny, weather):
    samples = np.concatenate([weather.samples] * 6)  # about 50 s: two windows at least
    audio = Audio(samples, "six.flac", 16000, 1, "flac", "flac")
    # without fallback: sampled attempts draw from a stream of their own per window (batching.py), not
    # from the global one whisper.transcribe uses, so only the temperature-0 runs can be compared
    trace = analyze(tiny, audio, AnalysisOptions(fallback=False))
    expected = whisper.transcribe(tiny, samples, fp16=False, temperature=0.0)
    assert trace.text == expected["text"]
    assert len(trace.windows) >= 2
    assert [w.start_s for w in trace.windows] == sorted(w.start_s for w in trace.windows)
    assert trace.windows[0].start_s == 0 and trace.windows[1].start_s > 10
    assert [s.start_s for s in trace.segments] == [s["start"] for s in expected["segments"]]
    # the repeated sentence is too repetitive at temperature 0: every fallback attempt is kept with its reason
    trace = analyze(tiny, audio, AnalysisOptions())
    first = trace.windows[0]
    assert len(first.attempts) > 1 and first.attempts[0].temperature == 0.0
    assert "too repetitive" in first.attempts[0].rejected and first.final.rejected is None


def test_first_step_probabilities_are_the_softmax_of_whispers_filtered_logits(tiny, greedy_trace):
    window = greedy_trace.windows[0]
    task = DecodingTask(tiny, DecodingOptions(language="en", fp16=False, prompt=[]))
    tokens = torch.tensor([task.initial_tokens])
    with torch.no_grad():
        logits = tiny.logits(tokens, tiny.embed_audio(torch.from_numpy(window.mel)[None]))[:, -1]
        for f in task.logit_filters:
            f.apply(logits, tokens)
        probs = logits.float().softmax(-1)[0]
    assert abs(float(probs.sum()) - 1) < 1e-5
    step = window.final.steps[0]
    expected = torch.topk(probs, len(step.alternatives))
    assert [a.id for a in step.alternatives] == expected.indices.tolist()
    assert np.allclose([a.prob for a in step.alternatives], expected.values.numpy(), atol=1e-4)


def test_every_step_has_sorted_alternatives_and_its_own_probability(greedy_trace):
    for step in greedy_trace.windows[0].final.steps:
        probs = [a.prob for a in step.alternatives]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-6
        assert len(step.alternatives) == 10
        if step.rank < len(step.alternatives):
            assert step.alternatives[step.rank].id == step.id
            assert abs(step.alternatives[step.rank].prob - step.prob) < 1e-9
        assert 0 <= step.entropy_bits <= np.log2(51864)
    assert greedy_trace.windows[0].final.steps[-1].is_eot


def test_english_only_model_says_language_detection_does_not_apply(greedy_trace):
    assert not greedy_trace.language.applies
    assert "English-only" in greedy_trace.language.note


@pytest.mark.slow
def test_multilingual_base_detects_spanish_and_translates(base, spanish):
    trace = analyze(base, spanish, AnalysisOptions())
    assert trace.language.detected == "es" and trace.language.probs["es"] > 0.8
    assert abs(sum(trace.language.probs.values()) - 1) < 1e-3
    assert "Buenos días" in trace.text
    assert [p.meaning for p in trace.windows[0].final.prompt][:3] == [
        "start of transcript", "language: spanish", "task: transcribe (write what is said, in its language)"]
    translated = analyze(base, spanish, AnalysisOptions(task="translate"))
    assert translated.text == whisper.transcribe(base, spanish.samples, fp16=False, task="translate")["text"]
    assert "Buenos" not in translated.text and "good" in translated.text.lower()


def test_silence_is_valid_and_marked_as_no_speech(tiny):
    trace = analyze(tiny, Audio(np.zeros(16000 * 3, np.float32), "silence", 16000, 1, "pcm", "wav"))
    window = trace.windows[0]
    assert window.final.no_speech_prob > 0.5
    assert trace.text.strip() == ""


def test_sampling_with_best_of_keeps_every_candidate(tiny, weather):
    options = AnalysisOptions(strategy="sampling", temperature=0.5, best_of=3, fallback=False)
    torch.manual_seed(0)
    trace = analyze(tiny, weather, options)
    final = trace.windows[0].final
    assert final.temperature == 0.5
    assert len(final.tree.finalists) == 3 and sum(f.selected for f in final.tree.finalists) == 1
    assert [final.tree.token[i] for i in final.tree.chosen_path][:-1] == final.tokens


def test_stage_timings_are_recorded(greedy_trace):
    timings = greedy_trace.timings_ms
    assert {"total", "decoding", "encoder attention", "cross-attention and words"} <= timings.keys()
    assert all(v >= 0 for v in timings.values())
    assert dataclasses.asdict(greedy_trace.model)["dims"]["n_audio_layer"] == 4


@pytest.fixture(scope="module")
def spanish_on_english_only(tiny, spanish):
    """tiny.en hears the Spanish sample as English nonsense: every temperature fails whisper's checks."""
    return analyze(tiny, spanish, AnalysisOptions())


def test_when_every_attempt_fails_whisper_keeps_the_last_and_the_trace_says_so(spanish_on_english_only):
    window = spanish_on_english_only.windows[0]
    assert [a.temperature for a in window.attempts] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]
    for attempt in window.attempts[:-1]:  # whisper tried again after each of these, for the reason recorded
        assert attempt.rejected == attempt.failed_checks and "low confidence" in attempt.failed_checks
    kept = window.final
    assert kept.rejected is None  # whisper kept it ...
    assert kept.failed_checks is not None and "average log-probability" in kept.failed_checks  # ... though it failed
    assert spanish_on_english_only.segments[0].temperature == kept.temperature == 1.0
    assert kept.steps and kept.words  # the kept attempt is the one drawn: its attention and words are there


def test_same_seed_same_attempts_even_through_the_random_fallback(tiny, spanish, spanish_on_english_only):
    rng_before = torch.get_rng_state()
    again = analyze(tiny, spanish, AnalysisOptions(seed=0))
    assert torch.equal(torch.get_rng_state(), rng_before)  # the seed never leaks into the caller's RNG
    assert again.text == spanish_on_english_only.text
    first = spanish_on_english_only.windows[0].attempts
    assert [a.tokens for a in again.windows[0].attempts] == [a.tokens for a in first]


def test_passing_attempts_have_no_failed_checks(greedy_trace):
    assert greedy_trace.windows[0].final.failed_checks is None


def test_sampling_follows_the_seed(tiny, weather):
    def tokens(seed: int) -> list[int]:
        options = AnalysisOptions(strategy="sampling", temperature=1.0, best_of=1, fallback=False, seed=seed)
        return analyze(tiny, weather, options).windows[0].final.tokens

    first = tokens(0)
    assert tokens(0) == first
    assert len({tuple(first), *(tuple(tokens(s)) for s in (1, 2, 3))}) > 1  # other seeds, other draws
