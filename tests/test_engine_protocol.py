"""EngineProtocol: the same checks against every engine the app can be given (in process, and the Ray
Serve client against a real local Ray Serve, tests/serving.py), including the Live page's calls.

Every call a page or component makes of `components.session.engine(name)` is asked here of both, so
an engine that lacks one (the Serve client once had no `waiting()`, and Live crashed) fails here first.
"""

from __future__ import annotations

import gc
import inspect
import re
import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from whisper_inquiry.analyze import analyze
from whisper_inquiry.engine.core import AnalysisRequest, Engine
from whisper_inquiry.engine.protocol import EngineProtocol
from whisper_inquiry.errors import AudioError, CancelledError, EngineClosedError
from whisper_inquiry.instruments.live import Heard, listen, next_draft
from whisper_inquiry.models.load import load_model
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.serve.client import ServeEngine
from whisper_inquiry.trace.derived import head_summaries

try:  # the Serve half needs the serving extra; the in-process half never does
    from serving import client
except pytest.skip.Exception:
    client = None

ROOT = Path(__file__).resolve().parent.parent
FAST = AnalysisOptions(fallback=False)
ENGINES = ["inprocess", pytest.param("serve", marks=pytest.mark.serve)]


def _calls_of_the_app() -> set[str]:
    """Every method the pages and components call on an engine: `engine(...).name(` and `model_engine.name(`."""
    calls = set()
    for path in [*ROOT.glob("pages/**/*.py"), *ROOT.glob("components/*.py"), ROOT / "app.py"]:
        text = path.read_text()
        calls |= set(re.findall(r"\bengine\([^()]*(?:\([^()]*\))?[^()]*\)\.(\w+)", text))
        calls |= set(re.findall(r"\bmodel_engine\.(\w+)", text))
        if "engine_listen(" in text:  # a stream's looks: streaming.stream.engine_listen calls engine.listen
            calls.add("listen")
    return calls


@pytest.fixture(scope="module")
def clip(weather):
    return weather


@pytest.fixture(scope="module", params=ENGINES)
def engine(request, tiny):
    """Each engine the app can be handed, for model tiny.en."""
    if request.param == "inprocess":
        engine = Engine(tiny)
    else:
        if client is None:
            pytest.skip("the serving extra (Ray Serve) is not installed")
        engine = client(request.getfixturevalue("serve_url"))
    yield engine
    engine.close(timeout_s=60)


def test_the_protocol_names_every_call_a_page_or_component_makes():
    calls = _calls_of_the_app()
    assert {"analyze", "listen", "waiting", "head", "logit_lens", "embeddings", "run", "info"} <= calls, calls
    members = {name for name in dir(EngineProtocol) if not name.startswith("_")} | {"name"}
    assert calls <= members, calls - members


@pytest.mark.parametrize("kind", [Engine, ServeEngine])
def test_each_engine_has_every_member_of_the_protocol_with_its_parameters(kind):
    for name, member in inspect.getmembers(EngineProtocol):
        if name.startswith("_"):
            continue
        assert hasattr(kind, name), f"{kind.__name__} lacks {name}"
        if callable(member):
            wanted = list(inspect.signature(member).parameters)
            got = list(inspect.signature(getattr(kind, name)).parameters)
            assert got[: len(wanted)] == wanted, (kind.__name__, name, got, wanted)


def test_the_engine_is_an_engine_protocol(engine):
    assert isinstance(engine, EngineProtocol)
    assert engine.name == "tiny.en" and engine.info.dims["n_audio_layer"] == 4


def test_analyze_and_analyze_all_answer_the_librarys_analysis_in_order(engine, tiny, clip):
    progress: list[str] = []
    trace = engine.analyze(clip, FAST, on_progress=progress.append)
    assert trace.text == analyze(tiny, clip, FAST).text and "sunny" in trace.text.lower()
    assert trace.model.name == "tiny.en"
    beam = AnalysisOptions(strategy="beam", beam_size=3, fallback=False)
    traces = engine.analyze_all([AnalysisRequest(clip, FAST), AnalysisRequest(clip, beam)])
    assert [t.options for t in traces] == [FAST, beam]
    assert traces[0].text == trace.text


def test_a_cancelled_request_is_refused_in_one_line(engine, clip):
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(CancelledError):
        engine.analyze(clip, FAST, cancelled=cancelled)


def test_bad_audio_is_the_librarys_one_line_error(engine):
    with pytest.raises(AudioError) as bad:
        engine.analyze("/nonexistent.wav")
    assert "\n" not in str(bad.value)


def test_the_trace_questions_heads_lens_embeddings_and_tokenizer(engine, greedy_trace):
    summaries = engine.head_summaries(greedy_trace, 0)
    assert np.array_equal(summaries.entropy_bits, head_summaries(greedy_trace, 0).entropy_bits)
    assert engine.head(greedy_trace, 0, 1, 2).shape == (1500, 1500)
    lens = engine.logit_lens(greedy_trace, 0)
    assert lens.top_ids.shape[0] == 4
    ids = engine.tokenizer().encode(" sunny")
    vectors = engine.embeddings(ids)
    assert vectors.shape == (len(ids), 384) and vectors.dtype == np.float32
    assert engine.run(lambda model, k: model.dims.n_text_state * k, 2) == 768


def test_the_live_pages_refreshes_queue_depth_listen_and_draft(engine, clip, tiny):
    """What the Live page does every 1.5 s: ask the queue depth, listen with the last draft, keep the next."""
    assert isinstance(engine.waiting(), int) and engine.waiting() >= 0
    draft: tuple[int, ...] = ()
    for seconds in (4.0, clip.duration_s):
        samples = clip.samples[: int(seconds * 16000)]
        ahead = engine.waiting()
        assert isinstance(ahead, int) and ahead >= 0
        heard = engine.listen(samples, draft=draft)
        assert isinstance(heard, Heard)
        assert heard.text == listen(tiny, samples).text  # a draft changes the passes, never the words
        draft = next_draft(draft, heard)
    assert "sunny" in heard.text.lower() and heard.passes is not None
    assert engine.waiting() == 0  # nothing of this refresh is left behind


@pytest.mark.parametrize("kind", ENGINES)
def test_close_refuses_new_requests_stops_the_worker_and_lets_go_of_the_model(kind, request, clip):
    model = load_model("tiny.en", device="cpu")
    released = weakref.ref(model)
    if kind == "inprocess":
        engine = Engine(model)
        worker = engine.worker
    else:
        if client is None:
            pytest.skip("the serving extra (Ray Serve) is not installed")
        engine = client(request.getfixturevalue("serve_url"))
        engine._local = Engine(model)  # the copy a Live refresh would have loaded
        worker = engine._local.worker
    del model
    assert engine.listen(clip.samples[:64000]).text.strip()
    thread = worker._thread
    assert thread.is_alive()
    engine.close(timeout_s=30)
    assert not thread.is_alive() and worker.closed
    with pytest.raises(EngineClosedError):
        engine.analyze(clip, FAST)
    with pytest.raises(EngineClosedError):
        engine.listen(clip.samples[:64000])
    engine.close()  # twice is harmless
    del engine, worker
    gc.collect()
    assert released() is None, "the closed engine still holds its model"


def test_close_lets_a_request_in_flight_finish_first(tiny, clip):
    engine = Engine(tiny)
    with ThreadPoolExecutor(1) as pool:
        engine.worker.begin()  # a request in flight (as analyze does before its first window)
        answer = pool.submit(engine._analyze_begun, clip, FAST, None, None)
        engine.close()
        assert answer.result(timeout=300).text.strip()  # it finished on the closing engine
    engine.worker._thread.join(30)
    assert engine.worker.closed
