"""The Engine behind Ray Serve: a real local Ray (2 CPUs), the real tiny.en on a CPU replica, traces over HTTP.

Starting Ray and deploying costs about 7 s here, so one module-scoped deployment serves every test and
is shut down after the last one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from whisper_inquiry.audio import load_audio
from whisper_inquiry.engine import AnalysisRequest, Engine
from whisper_inquiry.engines import ENGINE_VARIABLE, engine_for
from whisper_inquiry.errors import AudioError, InquiryError, ModelUnavailableError
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.sameness import compare
from whisper_inquiry.samples import sample_named
from whisper_inquiry.serialize import trace_to_bytes
from whisper_inquiry.serve_client import ServeEngine, ServeUnavailableError

ray = pytest.importorskip("ray", reason="the serving extra: pip install -r requirements-serve.txt")
from ray import serve  # noqa: E402

from whisper_inquiry.serve import build_app  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
APP_NAME = "whisper-inquiry-test"
CLIPS = ["english_weather", "english_numbers", "english_story", "spanish"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _deploy() -> None:
    serve.run(build_app({"models": "tiny.en", "num_gpus": 0, "num_cpus": 2, "device": "cpu"}),
              name=APP_NAME, route_prefix="/")


def _patient(get_node, timeout_s: float):
    def get(*args, **kwargs):
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                return get_node(*args, **kwargs)
            except RuntimeError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
    return get


def _end_rays_children() -> None:
    """A failed ray.init leaves the processes it started (GCS, agents) running: end them, ours only, by id."""
    ray.shutdown()
    parents, ours = {os.getpid()}, []
    for _ in range(3):  # children, grandchildren, ...
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                pid, ppid = int(stat.parent.name), int(stat.read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            if ppid in parents and pid not in parents:
                parents.add(pid)
                ours.append(pid)
    for pid in ours:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


AGENT_PORTS = ("metrics_agent_port", "metrics_export_port", "dashboard_agent_listen_port", "runtime_env_agent_port")


def _with_fixed_agent_ports(init):
    def start(self, ray_params, *args, **kwargs):
        for name in AGENT_PORTS:
            if not getattr(ray_params, name, None):
                setattr(ray_params, name, _free_port())
        return init(self, ray_params, *args, **kwargs)
    return start


@pytest.fixture(scope="module")
def url():
    port = _free_port()
    # The replica analyses with as many threads as this process does, so both sum in the same order.
    threads = str(__import__("torch").get_num_threads())
    # On a busy shared 2-core machine Ray 2.60 can fail to start: its raylet aborts when the agents'
    # port files (written once those Python processes are up) take over 15 s to appear, and the driver
    # gives the node 30 s to register (both hard-coded). Fixed agent ports skip the files; the driver
    # is given three minutes.
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setenv("RAY_agent_register_timeout_ms", "180000")
    monkeypatch.setattr(ray._private.services, "get_node", _patient(ray._private.services.get_node, 180))
    monkeypatch.setattr(ray._private.node.Node, "__init__", _with_fixed_agent_ports(ray._private.node.Node.__init__))
    for attempt in range(3):  # the dashboard agent's own port file still has a fixed 15 s: try again
        try:
            ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                     runtime_env={"env_vars": {"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": threads}})
            break
        except Exception:
            _end_rays_children()
            if attempt == 2:
                raise
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": port})
        _deploy()
        yield f"http://127.0.0.1:{port}/"
    finally:
        serve.shutdown()
        ray.shutdown()
        monkeypatch.undo()


@pytest.fixture(scope="module")
def local(tiny) -> Engine:
    return Engine(tiny)


def _client(url: str, model: str = "tiny.en") -> ServeEngine:
    """A client that waits as long as a loaded shared 2-core machine may need (four analyses took 270 s)."""
    return ServeEngine(url, model, answer_timeout_s=900)


def _bytes(trace) -> bytes:
    """Everything a trace holds except its wall-clock timings."""
    return trace_to_bytes(dataclasses.replace(trace, timings_ms={}))


def test_four_different_clips_at_once_equal_the_in_process_engines_traces(url, local):
    clips = [load_audio(sample_named(name).path) for name in CLIPS]
    # The replica decodes the four together (Serve's batch, then the engine's): equal to a solo run as
    # the batched engine defines it, tokens, texts and trees exactly, floats to a batched matmul's rounding.
    # The fallback ladder included: sampled attempts draw from seeded streams of their own.
    options = AnalysisOptions()
    remote = _client(url)
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
    traces = _client(url).analyze_all(requests)
    assert [t.options for t in traces] == options
    for request, trace in zip(requests, traces, strict=True):
        # decoded in one engine's shared passes, beside each other: the same tokens, texts and trees as
        # alone, floats to the rounding of a batched matmul (test_batching's contract)
        same = compare(local.analyze(request.audio, request.options), trace)
        assert not same.differences and same.max_float_diff < 1e-4, (same.differences[:3], same.max_float_diff)


def test_bad_input_is_the_requests_own_one_line_error_of_the_librarys_kind(url):
    remote = _client(url)
    with pytest.raises(AudioError, match="no such audio file"):
        remote.analyze("/nonexistent.wav")  # refused here, before it travels
    with pytest.raises(ModelUnavailableError) as missing:  # loaded on the replica, refused there
        _client(url, "no-such-model").analyze(np.zeros(16000, np.float32))
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
    remote = ServeEngine(f"http://127.0.0.1:{_free_port()}/", connect_timeout_s=1)
    started = time.perf_counter()
    with pytest.raises(ServeUnavailableError) as down:
        remote.analyze(np.zeros(16000, np.float32))
    assert "not answering" in str(down.value) and "\n" not in str(down.value)
    assert time.perf_counter() - started < 5


def test_endpoint_down_says_so_in_one_line_and_the_next_call_works_once_it_is_back(url, weather):
    remote = _client(url)
    serve.delete(APP_NAME)
    with pytest.raises(ServeUnavailableError) as down:
        remote.analyze(weather)
    message = str(down.value)
    assert "\n" not in message and url in message and "make serve" in message
    _deploy()
    assert remote.analyze(weather, AnalysisOptions(fallback=False)).text.strip()


def test_a_replica_dying_mid_request_is_retried_or_one_line_and_the_next_call_works(url, weather):
    """Kill the replica while it analyses: Serve starts another (model load and warm-up included); the
    client's one retry lands there, or the page gets one line. Either way the call returns, and the next
    click works."""
    story = load_audio(sample_named("english_story").path)
    remote = _client(url)
    replicas = [a["name"] for a in ray.util.list_named_actors(all_namespaces=True)
                if a["name"].startswith(f"SERVE_REPLICA::{APP_NAME}#")]
    assert len(replicas) == 1, replicas
    with ThreadPoolExecutor(1) as pool:
        answer = pool.submit(remote.analyze, story, AnalysisOptions(fallback=False))
        time.sleep(2.0)  # a 24 s clip takes longer than that to analyse here: the request is in the replica
        assert not answer.done()
        ray.kill(ray.get_actor(replicas[0], namespace="serve"), no_restart=True)
        try:
            trace = answer.result(timeout=600)
            assert "morning" in trace.text.lower()  # the retry, answered by the new replica
        except ServeUnavailableError as down:
            assert "\n" not in str(down)
    assert remote.analyze(weather, AnalysisOptions(fallback=False)).text.strip()
