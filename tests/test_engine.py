"""The Engine: what the app asks of a loaded model, answered with plain data and cached by content."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from whisper.timing import dtw_cpu

from whisper_inquiry.analyze import analyze
from whisper_inquiry.audio.perturb import Perturbation, apply
from whisper_inquiry.engine.core import AnalysisRequest, Engine
from whisper_inquiry.errors import ModelMismatchError
from whisper_inquiry.instruments.attention import recompute_head
from whisper_inquiry.options import AnalysisOptions
from whisper_inquiry.trace.derived import full_head, trace_key


@pytest.fixture(scope="module")
def engine(tiny) -> Engine:
    return Engine(tiny)


def test_loading_warms_up_whispers_dtw_so_the_first_analysis_does_not_compile_it(engine):
    assert dtw_cpu.signatures  # numba compiled it (once per process) before any analysis asked
    assert engine.warm_up_s >= 0


def test_analyze_is_the_librarys_analysis(engine, tiny, weather, greedy_trace):
    trace = engine.analyze(weather, AnalysisOptions())
    assert trace.text == greedy_trace.text
    assert trace.windows[0].final.tokens == greedy_trace.windows[0].final.tokens
    assert trace_key(trace) == trace_key(greedy_trace)


def test_a_list_of_variants_is_one_request_answered_in_order(engine, tiny, weather):
    options = AnalysisOptions(fallback=False)
    trimmed = apply(weather.samples, Perturbation("trim", 4.0))
    traces = engine.analyze_all([AnalysisRequest(weather, options), AnalysisRequest(trimmed, options)])
    assert [t.text for t in traces] == [analyze(tiny, weather, options).text, analyze(tiny, trimmed, options).text]
    assert traces[0].text != traces[1].text and traces[1].duration_s < traces[0].duration_s


def test_head_comes_from_the_trace_when_it_kept_q_and_k_else_from_the_model(engine, tiny, weather, greedy_trace):
    assert np.array_equal(engine.head(greedy_trace, 0, 2, 3), full_head(greedy_trace, 0, 2, 3))
    lean = analyze(tiny, weather, AnalysisOptions(qk_budget_mb=0, fallback=False))
    head = engine.head(lean, 0, 2, 3)
    assert np.array_equal(head, recompute_head(tiny, lean.windows[0].mel, 2, 3))
    assert np.abs(head - full_head(greedy_trace, 0, 2, 3)).max() < 2e-3  # the same head, kept or recomputed
    other = dataclasses.replace(lean, model=dataclasses.replace(lean.model, name="base"))
    with pytest.raises(ModelMismatchError, match="made with base"):
        engine.head(other, 0, 2, 3)


def test_logit_lens_is_computed_once_per_trace_content(engine, greedy_trace):
    lens = engine.logit_lens(greedy_trace, 0)
    targets = [s.id for s in greedy_trace.windows[0].final.steps]
    assert lens.top_ids.shape == (4, len(targets))
    assert np.mean(lens.top_ids[-1] == np.array(targets)) > 0.8
    renamed = dataclasses.replace(greedy_trace, audio_name="the same sound under another name")
    assert engine.logit_lens(renamed, 0) is lens


def test_traces_of_other_decodings_have_other_keys(greedy_trace, beam_trace):
    assert trace_key(greedy_trace) != trace_key(beam_trace)


def test_embeddings_are_rows_of_the_token_table(engine, tiny):
    ids = [50257, 464, 6193]
    rows = engine.embeddings(ids)
    assert rows.shape == (3, tiny.dims.n_text_state) and rows.dtype == np.float32
    assert np.array_equal(rows, tiny.decoder.token_embedding.weight[ids].detach().numpy())


def test_listen_hears_the_newest_audio(engine, weather):
    heard = engine.listen(weather.samples)
    assert "weather today is sunny" in heard.text


def test_tokenizer_fits_the_model(engine):
    tokenizer = engine.tokenizer()
    assert tokenizer.decode(tokenizer.encode(" Hello there")) == " Hello there"
    assert tokenizer.eot == 50256  # tiny.en: the English-only (gpt2) vocabulary


def test_a_request_leaves_nothing_for_the_cycle_collector(engine, weather):
    """What a request held (its windows' rows and callbacks, the decoding task, the trace) is freed by
    reference counting once the result is handed over. Cycles (a window and its rows, a task and the
    lambdas it was given) once kept every analysis until Python's next full collection: 365 MB of
    tensors for a round of 8 in `make load`, and memory that climbed for rounds."""
    import gc

    import torch

    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        engine.analyze(weather, AnalysisOptions())  # greedy: a row of the continuous batch
        engine.analyze(weather, AnalysisOptions(beam_size=3))  # beam: three rows and a task's own lambdas
        engine.listen(weather.samples, draft=engine.listen(weather.samples).tokens)  # a drafted refresh, alone
        gc.collect()
        ours = [type(o).__qualname__ for o in gc.garbage
                if isinstance(o, torch.Tensor | np.ndarray) or type(o).__module__.startswith("whisper")]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert not ours, sorted(set(ours))


def test_an_engine_sets_nothing_process_wide(tiny):
    """The interpreter's switch interval belongs to the launchers (engine.threads), not to a constructor:
    an engine made in a process that keeps Python's default leaves it there."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        engine = Engine(tiny, warm_up=False)
        engine.close()
        assert sys.getswitchinterval() == 0.005
    finally:
        sys.setswitchinterval(before)


def test_a_launched_process_has_one_parallel_team_the_workers(tmp_path):
    """After `prepare_engine_process` (what launchers call) torch runs on one core in every thread but an
    engine's worker, which takes every core, and a thread holding a turn with the model, which has them
    while the worker waits (docs/performance.md, "The batched step"). In a process of its own: the
    setting is process-wide, and this test run keeps torch's defaults."""
    script = tmp_path / "teams.py"
    script.write_text(textwrap.dedent("""
        import os, threading, torch
        from whisper_inquiry.engine.threads import prepare_engine_process
        prepare_engine_process()
        import whisper_inquiry.engine.worker as worker_module
        from whisper_inquiry.engine.core import Engine
        from whisper_inquiry.instruments.capture import model_lock
        from whisper_inquiry.models.load import load_model
        seen = {"main": torch.get_num_threads()}
        set_up = worker_module.use_every_core
        def recorded():
            set_up()
            seen["worker"] = torch.get_num_threads()
        worker_module.use_every_core = recorded
        model = load_model("tiny.en")
        engine = Engine(model, warm_up=False)
        def other():
            seen["other"] = torch.get_num_threads()
            with model_lock(model):
                seen["turn"] = torch.get_num_threads()
            seen["after"] = torch.get_num_threads()
        t = threading.Thread(target=other)
        t.start()
        t.join()
        engine.close(30)
        cores = len(os.sched_getaffinity(0))
        print(cores, *(seen[k] for k in ("main", "worker", "other", "turn", "after")))
    """))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1], env={**os.environ, "PYTHONPATH": "."})
    assert out.returncode == 0, out.stderr[-2000:]
    cores, main, worker, other, turn, after = map(int, out.stdout.split())
    assert (main, other, after) == (1, 1, 1) and worker == turn == cores
