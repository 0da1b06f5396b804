"""The batched engine: many requests at once, each Trace its own and equal to its solo run.

Float values may differ in the last digits when rows share a batched matmul; tokens, texts, trees,
statuses and shapes may not. Each test prints the largest float difference and where it is, so a
near-tie that a batched kernel ever flips is reported with its size.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
import whisper
from together import in_flight_together

from whisper_inquiry.analyze import analyze
from whisper_inquiry.audio.load import load_audio
from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.engine.core import AnalysisRequest, Engine
from whisper_inquiry.engine.lockstep import DecodeJob
from whisper_inquiry.engine.worker import CancelledError
from whisper_inquiry.errors import InquiryError
from whisper_inquiry.instruments.live import listen
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.trace.sameness import compare, divergences

FLOAT_TOLERANCE = 1e-4  # measured here: at most about 1e-5, in summed log-probabilities


def _clip(name: str) -> np.ndarray:
    return load_audio(sample_named(name).path).samples


def _assert_same(solo, batched, label: str) -> None:
    s = compare(solo, batched)
    print(f"{label}: {len(s.differences)} differences, largest float difference {s.max_float_diff:.2g} at {s.where}")
    assert not s.differences, f"{label}: {s.differences[:5]}"
    assert s.max_float_diff < FLOAT_TOLERANCE, f"{label}: {s.max_float_diff} at {s.where}"


@pytest.fixture(scope="module")
def engine(tiny) -> Engine:
    return Engine(tiny, max_wait_ms=3000)  # long enough for a loaded machine: the requests surely meet


@pytest.fixture(scope="module")
def tiny_requests() -> list[AnalysisRequest]:
    long = np.concatenate([_clip("english_story"), _clip("english_weather")])  # 33 s: two windows
    return [
        AnalysisRequest(_clip("english_weather"), AnalysisOptions()),
        AnalysisRequest(_clip("english_numbers"), AnalysisOptions(top_k=5)),
        AnalysisRequest(long, AnalysisOptions()),
        AnalysisRequest(_clip("english_weather"), AnalysisOptions(strategy="beam", beam_size=3)),
        # every attempt fails this threshold: the whole temperature ladder, its first attempt batched
        AnalysisRequest(_clip("english_numbers"), AnalysisOptions(logprob_threshold=0.0)),
        AnalysisRequest(_clip("english_weather"), AnalysisOptions(logprob_threshold=0.0)),  # a second ladder
        AnalysisRequest(_clip("english_numbers"), AnalysisOptions(strategy="beam", beam_size=3)),  # a second beam
    ]


@pytest.fixture(scope="module")
def tiny_batched(engine, tiny_requests):
    messages: list[str] = []
    traces = engine.analyze_all(tiny_requests, on_progress=messages.append)
    by_kind = {k: dict(v) for k, v in engine.worker.stats.batch_sizes_by_kind.items()}
    return traces, messages, dict(engine.batch_sizes), by_kind


@pytest.mark.slow
def test_concurrent_clips_on_tiny_equal_their_solo_runs(tiny, tiny_requests, tiny_batched):
    traces, _, _, _ = tiny_batched
    for i, (request, batched) in enumerate(zip(tiny_requests, traces)):
        solo = analyze(tiny, request.audio, request.options)
        _assert_same(solo, batched, f"request {i} ({request.options.strategy})")
    ladder = traces[4].windows[0].attempts  # sampled attempts draw from their own seeded stream
    assert [a.temperature for a in ladder] == [0.0, 0.2, 0.4, 0.6, 0.8, 1.0]


def test_concurrent_clips_equal_whisper_transcribe(tiny, tiny_requests, tiny_batched):
    traces, _, _, _ = tiny_batched
    for request, trace in list(zip(tiny_requests, traces))[:3]:
        expected = whisper.transcribe(tiny, request.audio, fp16=False, language="en")
        assert trace.text == expected["text"]
        assert [s.tokens for s in trace.segments] == [s["tokens"] for s in expected["segments"]]
    assert len(traces[2].windows) == 2 and traces[2].windows[1].start_s > 20


def test_a_flipped_near_tie_is_reported_with_its_size(tiny_batched):
    """What the load test prints when a batched kernel ever changes a chosen token: which one, and the
    solo run's margin between the two candidates (here a runner-up swapped in by hand)."""
    import dataclasses

    trace = tiny_batched[0][0]
    attempt = trace.windows[0].final
    step = attempt.steps[2]
    runner_up = step.alternatives[1] if step.alternatives[0].id == step.id else step.alternatives[0]
    steps = [*attempt.steps[:2], dataclasses.replace(step, id=runner_up.id, text=runner_up.text), *attempt.steps[3:]]
    attempts = [*trace.windows[0].attempts[:-1], dataclasses.replace(attempt, steps=steps)]
    window = dataclasses.replace(trace.windows[0], attempts=attempts)
    flipped = dataclasses.replace(trace, windows=[window, *trace.windows[1:]])
    assert divergences(trace, trace) == []
    [line] = divergences(trace, flipped)
    assert "token 2" in line and repr(runner_up.text) in line
    assert f"{step.logprob - runner_up.logprob:.3g}" in line


def test_windows_of_different_users_are_decoded_in_one_pass(tiny_batched):
    _, _, sizes, by_kind = tiny_batched
    assert max(sizes) >= 2, sizes
    # the two fallback ladders' sampled attempts and the two beam searches shared passes too (each
    # sampled window drawing from its own stream); their equality with solo runs is checked above
    assert max(by_kind.get("sampled", {0: 0})) >= 2, by_kind
    assert max(by_kind.get("beam", {0: 0})) >= 2, by_kind


def test_waiting_requests_hear_how_many_are_ahead(tiny_batched):
    _, messages, _, _ = tiny_batched
    assert any(m.startswith("waiting for ") for m in messages)


def test_each_request_keeps_its_own_tree(tiny_batched):
    traces, _, _, _ = tiny_batched
    weather, numbers = traces[0].windows[0].final, traces[1].windows[0].final
    assert {weather.tree.token[i] for i in weather.tree.chosen_path} == set(weather.tokens) | {50256}
    assert not set(numbers.tree.text) >= {" weather", " sunny"}


@pytest.mark.slow
def test_base_english_and_spanish_at_once_equal_their_solo_runs(base):
    engine = Engine(base, warm_up=False, max_wait_ms=3000)
    requests = [AnalysisRequest(_clip("english_weather"), AnalysisOptions(language="en")),
                AnalysisRequest(_clip("english_numbers"), AnalysisOptions(language="en")),
                AnalysisRequest(_clip("spanish"), AnalysisOptions(language="es"))]
    traces = engine.analyze_all(requests)
    # rows join whatever is in flight, so the Spanish window (another language token) shares passes too
    assert max(engine.batch_sizes) == 3
    for request, trace in zip(requests, traces):
        _assert_same(analyze(base, request.audio, request.options), trace, request.options.language)


def test_a_failing_request_never_fails_its_batch_mates(engine, tmp_path):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    results: dict[str, object] = {}

    def run(name, audio):
        try:
            results[name] = engine.analyze(audio, AnalysisOptions(fallback=False))
        except InquiryError as e:
            results[name] = e

    threads = [threading.Thread(target=run, args=a) for a in (("good", _clip("english_weather")), ("bad", bad))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert isinstance(results["bad"], InquiryError)
    assert "sunny" in results["good"].text


def test_a_job_failing_inside_the_worker_fails_alone(engine, tiny):
    options = whisper.DecodingOptions(language="en", fp16=False, without_timestamps=True)
    mel = whisper.pad_or_trim(whisper.log_mel_spectrogram(_clip("english_weather"), tiny.dims.n_mels), 3000)

    def boom(decoded):
        raise InquiryError("this request's own failure")

    jobs = [DecodeJob(mel, options, on_decoded=boom), DecodeJob(mel, options)]
    outcomes = [None, None]

    def submit(i):
        try:
            outcomes[i] = engine.worker.submit(jobs[i])
        except InquiryError as e:
            outcomes[i] = e

    before = dict(engine.batch_sizes)
    in_flight_together(engine.worker, [lambda: submit(0), lambda: submit(1)])
    assert engine.batch_sizes.get(2, 0) == before.get(2, 0) + 2  # both windows, in one pass
    assert isinstance(outcomes[0], InquiryError)
    assert "sunny" in outcomes[1].result.text


def test_a_cancelled_request_frees_its_place(engine):
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(CancelledError):
        engine.analyze(_clip("english_weather"), AnalysisOptions(), cancelled=cancelled)
    assert engine.waiting() == 0
    assert "sunny" in engine.analyze(_clip("english_weather"), AnalysisOptions(fallback=False)).text


def test_live_listeners_are_decoded_together_and_each_hears_its_own(engine, tiny):
    clips = [_clip("english_weather"), _clip("english_numbers")]
    before = dict(engine.batch_sizes)
    heard: list = [None, None]
    # in the app, refreshes that come while the worker is busy queue up and meet in its next pass
    in_flight_together(engine.worker, [lambda i=i: heard.__setitem__(i, engine.listen(clips[i])) for i in range(2)])
    assert engine.batch_sizes.get(2, 0) > before.get(2, 0)
    for clip, h in zip(clips, heard):
        solo = listen(tiny, clip)
        assert h.text == solo.text and [s.id for s in h.steps] == [s.id for s in solo.steps]
        assert max(abs(a.logprob - b.logprob) for a, b in zip(h.steps, solo.steps)) < FLOAT_TOLERANCE


def test_nothing_global_is_swapped_while_a_request_runs(engine, tiny):
    import importlib

    import whisper.audio

    transcribe_module = importlib.import_module("whisper.transcribe")
    seen = []

    def look(_message: str) -> None:  # called in the middle of the run, between windows and attempts
        seen.append(("decode" in tiny.__dict__, "detect_language" in tiny.__dict__,
                     transcribe_module.pad_or_trim is whisper.audio.pad_or_trim))

    engine.analyze(_clip("english_weather"), AnalysisOptions(fallback=False), on_progress=look)
    assert seen and all(s == (False, False, True) for s in seen)
