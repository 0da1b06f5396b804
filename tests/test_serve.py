"""The Engine behind Ray Serve: a real local Ray (2 CPUs), the real tiny.en on a CPU replica, traces over HTTP.

Ray and the deployment are tests/serving.py's, started once for this module and shut down after it.
"""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

# (serving skips this module where the serving extra, Ray Serve, is not installed)
from serving import APP_NAME, client, deploy, free_port, hold_path, ray, serve

from whisper_inquiry.audio.load import load_audio
from whisper_inquiry.audio.samples import sample_named
from whisper_inquiry.engine.core import AnalysisRequest, Engine
from whisper_inquiry.engine.factory import ENGINE_VARIABLE, engine_for
from whisper_inquiry.errors import AudioError, InquiryError, ModelUnavailableError
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.serve.client import ServeEngine, ServeUnavailableError
from whisper_inquiry.trace.sameness import compare
from whisper_inquiry.trace.serialize import trace_to_bytes

CLIPS = ["english_weather", "english_numbers", "english_story", "spanish"]

pytestmark = pytest.mark.serve


@pytest.fixture(scope="module")
def url(serve_url) -> str:
    return serve_url


@pytest.fixture(scope="module")
def local(tiny) -> Engine:
    return Engine(tiny)


def _bytes(trace) -> bytes:
    """Everything a trace holds except its wall-clock timings."""
    return trace_to_bytes(dataclasses.replace(trace, timings_ms={}))


def test_four_different_clips_at_once_equal_the_in_process_engines_traces(url, local):
    clips = [load_audio(sample_named(name).path) for name in CLIPS]
    # The replica hands each to its engine as it comes, which decodes them together: equal to a solo run
    # as the batched engine defines it, tokens, texts and trees exactly, floats to a batched matmul's rounding.
    # The fallback ladder included: sampled attempts draw from seeded streams of their own.
    options = AnalysisOptions()
    remote = client(url)
    with ThreadPoolExecutor(4) as pool:  # four sessions pressing Analyse together
        traces = list(pool.map(lambda clip: remote.analyze(clip, options), clips))
    for clip, trace in zip(clips, traces, strict=True):
        alone = local.analyze(clip, options)
        assert trace.audio_name == clip.name
        assert trace.text == alone.text and trace.text.strip()
        same = compare(alone, trace)
        assert not same.differences, f"{clip.name}: {same.differences[:3]}"
        assert same.max_float_diff < 1e-4, f"{clip.name}: {same.max_float_diff} at {same.where}"
    assert len({t.text for t in traces}) == 4


def test_analyze_all_sends_variants_together_and_answers_in_order(url, local, weather):
    options = [AnalysisOptions(fallback=False), AnalysisOptions(strategy="beam", beam_size=3, fallback=False)]
    requests = [AnalysisRequest(weather, o) for o in options]
    traces = client(url).analyze_all(requests)
    assert [t.options for t in traces] == options
    for request, trace in zip(requests, traces, strict=True):
        # decoded in one engine's shared passes, beside each other: the same tokens, texts and trees as
        # alone, floats to the rounding of a batched matmul (test_batching's contract)
        same = compare(local.analyze(request.audio, request.options), trace)
        assert not same.differences and same.max_float_diff < 1e-4, (same.differences[:3], same.max_float_diff)


def test_bad_input_is_the_requests_own_one_line_error_of_the_librarys_kind(url):
    remote = client(url)
    with pytest.raises(AudioError, match="no such audio file"):
        remote.analyze("/nonexistent.wav")  # refused here, before it travels
    with pytest.raises(ModelUnavailableError) as missing:  # loaded on the replica, refused there
        client(url, "no-such-model").analyze(np.zeros(16000, np.float32))
    assert "no-such-model" in str(missing.value) and "\n" not in str(missing.value)
    with pytest.raises(InquiryError, match="^not an analysis request"):  # a stranger's bytes, not a 500
        remote._post(b"not an npz")
    assert remote.analyze(np.zeros(16000, np.float32), AnalysisOptions(fallback=False)).duration_s == 1.0


def test_engine_for_chooses_the_endpoint_only_when_the_variable_names_one(url, monkeypatch):
    monkeypatch.setenv(ENGINE_VARIABLE, url)
    engine = engine_for("tiny.en")
    assert isinstance(engine, ServeEngine) and engine.url == url and engine.name == "tiny.en"
    monkeypatch.delenv(ENGINE_VARIABLE)
    assert isinstance(engine_for("tiny.en", device="cpu"), Engine)


def test_nothing_listening_is_one_line_after_one_retry_without_hanging():
    remote = ServeEngine(f"http://127.0.0.1:{free_port()}/", connect_timeout_s=1)
    started = time.perf_counter()
    with pytest.raises(ServeUnavailableError) as down:
        remote.analyze(np.zeros(16000, np.float32))
    assert "not answering" in str(down.value) and "\n" not in str(down.value)
    assert time.perf_counter() - started < 5


def test_endpoint_down_says_so_in_one_line_and_the_next_call_works_once_it_is_back(url, weather):
    remote = client(url)
    serve.delete(APP_NAME)
    with pytest.raises(ServeUnavailableError) as down:
        remote.analyze(weather)
    message = str(down.value)
    assert "\n" not in message and url in message and "make serve" in message
    deploy()
    assert remote.analyze(weather, AnalysisOptions(fallback=False)).text.strip()


def test_a_replica_dying_mid_request_is_retried_or_one_line_and_the_next_call_works(url, weather):
    """Kill the replica while it holds a request (the test hook holds it there, so no machine is too fast
    for this): Serve starts another (model load and warm-up included); the client's one retry lands
    there, or the page gets one line. Either way the call returns, and the next click works."""
    remote = client(url)
    replicas = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                if a["name"].startswith(f"SERVE_REPLICA::{APP_NAME}#")]
    assert len(replicas) == 1, replicas
    hold = hold_path(url)
    arrived = hold.with_name(hold.name + ".arrived")
    arrived.unlink(missing_ok=True)
    hold.touch()
    try:
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(remote.analyze, weather, AnalysisOptions(fallback=False))
            while not arrived.exists():  # an event, not a clock: the request is inside the replica
                assert not answer.done(), answer.exception()
                time.sleep(0.05)
            assert not answer.done()
            ray.kill(ray.get_actor(replicas[0], namespace="serve"), no_restart=True)
            hold.unlink()  # the retry is not held
            try:
                trace = answer.result(timeout=600)
                assert "sunny" in trace.text.lower()  # the retry, answered by the new replica
            except ServeUnavailableError as down:
                assert "\n" not in str(down)
    finally:
        hold.unlink(missing_ok=True)
    assert remote.analyze(weather, AnalysisOptions(fallback=False)).text.strip()


def test_a_corpus_runs_through_the_serve_engine_as_through_the_app_s_own(url, local, tmp_path):
    """Issue 33: a corpus goes through whichever engine the app has; through Ray Serve each clip's hypothesis
    and trace on disk are the in-process engine's."""
    from whisper_inquiry.corpus.read import open_corpus
    from whisper_inquiry.corpus.run import ResultStore, run_corpus
    from whisper_inquiry.trace.serialize import load_trace

    for name in ("english_weather", "english_numbers"):
        (tmp_path / f"{name}.flac").write_bytes(sample_named(name).path.read_bytes())
    corpus = open_corpus(tmp_path)
    stores = [ResultStore(tmp_path / where, "tiny.en", AnalysisOptions()) for where in ("served", "here")]
    served, here = run_corpus(client(url), corpus, stores[0]), run_corpus(local, corpus, stores[1])
    assert [r.hypothesis for r in served] == [r.hypothesis for r in here] and all(r.hypothesis for r in served)
    for a, b in zip(served, here):
        same = compare(load_trace(stores[1].trace_path(b)), load_trace(stores[0].trace_path(a)))
        assert not same.differences and same.max_float_diff < 1e-4, (same.differences[:3], same.max_float_diff)
