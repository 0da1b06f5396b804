"""Continuous batching: a window joins the rows in flight at their next step and leaves when it ends,
and each window's result equals its solo run."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable

import pytest
import torch
import whisper
from together import in_flight_together
from whisper.decoding import DecodingOptions
from windows import FLOAT_TOLERANCE
from windows import assert_same_decode as _same
from windows import mel_of as _mel

from whisper_inquiry.engine.continuous import joins_rows, rows_of
from whisper_inquiry.engine.lockstep import DecodeJob, run_alone
from whisper_inquiry.engine.unembed import decoder_logits, unembed
from whisper_inquiry.engine.worker import Worker
from whisper_inquiry.errors import CancelledError, EngineClosedError
from whisper_inquiry.instruments.capture import model_lock

GREEDY = DecodingOptions(language="en", fp16=False)  # with timestamps, as whisper.transcribe decodes


@pytest.fixture(scope="module")
def worker(tiny) -> Worker:
    return Worker(tiny, max_batch=4)


@contextlib.contextmanager
def paused_past(worker: Worker, position: int):
    """Hold the worker after the step at which the first row in flight passes `position`, until the
    block ends: the test acts while that row is certainly mid-decode, however fast the machine. Yields
    the event set when the worker is held."""
    reached, release = threading.Event(), threading.Event()
    rows = worker.rows
    step = rows.step

    def held_step():
        step()
        if not reached.is_set() and rows.rows and rows.rows[0].position > position:
            reached.set()
            release.wait(300)

    rows.step = held_step
    try:
        yield reached
    finally:
        release.set()
        del rows.step  # the class's own method again


def _queued(worker: Worker, job: DecodeJob) -> None:
    """Wait until `job` is in the worker's queue (an event, not a clock; the deadline only ends a hang)."""
    deadline = time.monotonic() + 120
    while not any(queued is job for queued in worker._queue):
        assert time.monotonic() < deadline, "the job never reached the queue"
        time.sleep(0.005)


def test_which_windows_join_the_rows_in_flight():
    assert joins_rows(GREEDY)
    assert joins_rows(DecodingOptions(language="en", temperature=0.6))
    assert joins_rows(DecodingOptions(language="en", beam_size=3)) and rows_of(DecodingOptions(beam_size=3)) == 3
    assert rows_of(DecodingOptions(temperature=0.6, best_of=5)) == 5
    assert not joins_rows(DecodingOptions(language=None))  # whisper would detect it mid-loop
    assert not joins_rows(None)


def test_the_last_matmul_is_whispers_product(tiny):
    """`unembed` is whisper's `x @ W.T`, bit for bit, at every number of rows (the form once swapped
    for a faster one on this CPU rounds differently, docs/performance.md), and within float32 rounding
    of the float64 product."""
    weight = tiny.decoder.token_embedding.weight
    torch.manual_seed(0)
    x = tiny.decoder.ln(torch.randn(1, 70, tiny.dims.n_text_state))
    exact = x.double() @ weight.double().T
    for n in (1, 2, 3, 8, 70):
        ours = unembed(x[:, :n], weight)
        assert ours.shape == (1, n, tiny.dims.n_vocab) and ours.dtype == torch.float32
        assert torch.equal(ours, (x[:, :n] @ weight.T).float())
        assert (ours.double() - exact[:, :n]).abs().max().item() < 5e-5


def test_the_decoder_with_our_last_matmul_is_whispers_decoder(tiny):
    """`decoder_logits` (drafted Live refreshes) is whisper's TextDecoder.forward but for the last
    matmul: the same logits within rounding, the same greedy choice at every position."""
    mel = _mel("english_weather", tiny)[None]
    with torch.no_grad():
        features = tiny.encoder(mel)
        tok = whisper.tokenizer.get_tokenizer(tiny.is_multilingual)
        tokens = torch.tensor([[*tok.sot_sequence_including_notimestamps, *tok.encode(" The weather today is sunny")]])
        ours = decoder_logits(tiny, tokens, features, {})
        whispers = tiny.decoder(tokens, features)
    assert ours.shape == whispers.shape
    assert (ours - whispers).abs().max() < FLOAT_TOLERANCE
    assert torch.equal(ours.argmax(-1), whispers.argmax(-1))


def test_a_short_window_leaves_with_its_result_while_a_long_one_goes_on(tiny, worker):
    """The story writes several times the weather's tokens: the weather's request hears its result
    while the story's row is still in flight, and both equal their solo runs."""
    story, weather = DecodeJob(_mel("english_story", tiny), GREEDY), DecodeJob(_mel("english_weather", tiny), GREEDY)
    in_flight_when_done = {}
    for name, job in (("story", story), ("weather", weather)):
        job.future.add_done_callback(
            lambda _, name=name: in_flight_when_done.setdefault(name, worker.rows.windows_in_flight()))
    in_flight_together(worker, [lambda job=job: worker.submit(job) for job in (story, weather)])
    assert in_flight_when_done == {"weather": 1, "story": 0}
    _same(run_alone(tiny, DecodeJob(story.mel, GREEDY)), story.future.result())
    _same(run_alone(tiny, DecodeJob(weather.mel, GREEDY)), weather.future.result())
    assert "sunny" in weather.future.result().result.text


def test_a_window_that_arrives_late_joins_the_rows_in_flight(tiny, worker):
    story, numbers = DecodeJob(_mel("english_story", tiny), GREEDY), DecodeJob(_mel("english_numbers", tiny), GREEDY)
    first = threading.Thread(target=worker.submit, args=(story,))
    second = threading.Thread(target=worker.submit, args=(numbers,))
    with paused_past(worker, 10) as held:  # the story is well under way, and held there
        first.start()
        assert held.wait(300)
        before = dict(worker.stats.batch_sizes)
        second.start()
        _queued(worker, numbers)
    second.join()
    first.join()
    assert worker.stats.batch_sizes.get(2, 0) >= before.get(2, 0) + 1  # it shared passes with the story
    _same(run_alone(tiny, DecodeJob(story.mel, GREEDY)), story.future.result())
    _same(run_alone(tiny, DecodeJob(numbers.mel, GREEDY)), numbers.future.result())


@pytest.mark.slow
def test_sampled_beam_and_greedy_windows_in_flight_together_equal_their_solo_runs(tiny):
    """At a temperature above 0 each window draws from its own seeded stream, beside others or not (best
    of five: its ended samples leave their slots); a beam's rows are reordered in their slots."""
    worker = Worker(tiny, max_batch=16)
    warm = DecodingOptions(language="en", fp16=False, temperature=0.8)
    best_of = DecodingOptions(language="en", fp16=False, temperature=0.6, best_of=5)
    beam = DecodingOptions(language="en", fp16=False, beam_size=5, patience=1.0)
    jobs = [DecodeJob(_mel("english_weather", tiny), warm, seed=7), DecodeJob(_mel("english_numbers", tiny), GREEDY),
            DecodeJob(_mel("english_numbers", tiny), best_of, seed=11), DecodeJob(_mel("english_weather", tiny), beam)]
    in_flight_together(worker, [lambda job=job: worker.submit(job) for job in jobs])
    assert worker.stats.batch_sizes.get(4, 0) == 4, worker.stats.batch_sizes  # all four shared passes
    for job in jobs:
        _same(run_alone(tiny, DecodeJob(job.mel, job.options, seed=job.seed)), job.future.result())
    beam_tree = jobs[3].future.result().decoder
    assert beam_tree.beam and len(beam_tree.nodes) > len(jobs[3].future.result().result.tokens)


def test_a_row_whose_request_fails_after_decoding_fails_alone(tiny, worker):
    def boom(decoded):
        raise RuntimeError("this request's own failure")

    jobs = [DecodeJob(_mel("english_weather", tiny), GREEDY, on_decoded=boom),
            DecodeJob(_mel("english_weather", tiny), GREEDY)]
    outcomes: list = [None, None]

    def submit(i):
        try:
            outcomes[i] = worker.submit(jobs[i])
        except RuntimeError as e:
            outcomes[i] = e

    in_flight_together(worker, [lambda i=i: submit(i) for i in range(2)])
    assert isinstance(outcomes[0], RuntimeError)
    assert "sunny" in outcomes[1].result.text
    assert worker.rows.windows_in_flight() == 0 and worker.waiting() == 0


def test_a_session_that_closes_mid_decode_frees_its_row(tiny, worker):
    cancelled = threading.Event()
    story = DecodeJob(_mel("english_story", tiny), GREEDY, cancelled=cancelled)
    outcome = {}

    def submit():
        try:
            outcome["result"] = worker.submit(story)
        except CancelledError as e:
            outcome["error"] = e

    thread = threading.Thread(target=submit)
    with paused_past(worker, 5) as held:  # mid-decode, and held there while its session closes
        thread.start()
        assert held.wait(300)
        cancelled.set()
    thread.join()
    assert "error" in outcome
    assert worker.rows.windows_in_flight() == 0 and worker.waiting() == 0


def test_a_window_whose_decoder_pass_fails_fails_alone(tiny, worker, monkeypatch):
    """A pass that raises is retried one window at a time; only the window that fails alone hears it."""
    poisoned = DecodeJob(_mel("english_numbers", tiny), GREEDY)
    healthy = DecodeJob(_mel("english_weather", tiny), GREEDY)
    with torch.no_grad():
        poison = tiny.encoder(poisoned.mel[None])
    real = worker.rows._next_pass

    def next_pass(rows):
        if any(r.position > 4 and torch.equal(r.window.features, poison) for r in rows):
            raise RuntimeError("this row's pass failed")
        return real(rows)

    monkeypatch.setattr(worker.rows, "_next_pass", next_pass)
    outcomes: list = [None, None]

    def submit(i, job):
        try:
            outcomes[i] = worker.submit(job)
        except RuntimeError as e:
            outcomes[i] = e

    in_flight_together(worker, [lambda i=i, job=job: submit(i, job) for i, job in enumerate((poisoned, healthy))])
    assert isinstance(outcomes[0], RuntimeError)
    _same(run_alone(tiny, DecodeJob(healthy.mel, GREEDY)), outcomes[1])
    assert worker.rows.windows_in_flight() == 0 and worker.waiting() == 0


@contextlib.contextmanager
def beside_a_long_window(tiny, label: Callable[[], str] = lambda: "step"):
    """A worker whose rows hold one window that never ends early (60 steps); each step is logged as
    `label()`. Yields (worker, log, the window's job) once the rows step; the window ends on leaving."""
    worker = Worker(tiny, max_batch=4)
    log: list[str] = []
    stepping = threading.Event()
    step = worker.rows.step

    def logged_step():
        step()
        log.append(label())
        stepping.set()

    worker.rows.step = logged_step
    job = DecodeJob(_mel("english_story", tiny), DecodingOptions(language="en", fp16=False, sample_len=60,
                                                                 suppress_tokens=[-1, 50256]))  # never ends early
    decoding = threading.Thread(target=worker.submit, args=(job,))
    decoding.start()
    assert stepping.wait(120)
    try:
        yield worker, log, job
    finally:
        decoding.join()


def test_another_threads_use_of_the_model_takes_turns_with_the_rows_in_flight(tiny):
    """An experiment's chunks (any thread but the worker taking the model's lock) are granted between two
    steps, and the rows in flight step at least once between two chunks, instead of the worker racing
    for the lock that the experiment takes again as soon as it lets go."""
    in_flight = []
    with beside_a_long_window(tiny) as (worker, log, job):
        for _ in range(4):
            with model_lock(tiny), torch.no_grad():
                in_flight.append(worker.rows.windows_in_flight())
                log.append("chunk")
                tiny.embed_audio(job.mel[None])  # an experiment's chunk: an encoder pass of its own
    worker.close(60)
    chunks = [i for i, entry in enumerate(log) if entry == "chunk"]
    for (a, b), busy in zip(zip(chunks, chunks[1:]), in_flight):
        if busy:  # the rows were in flight when the chunk ran: they stepped before the next chunk
            assert "step" in log[a:b], log
    assert in_flight[0] == 1 and job.future.result().result.tokens


class _Stop(BaseException):
    """What Streamlit raises in a page's thread when a click reruns the page (a BaseException too)."""


def test_an_experiment_is_a_job_of_the_worker_in_turns_with_the_rows_and_calls_back_in_its_callers_thread(tiny):
    """`Worker.experiment` runs the experiment in the worker's own thread; before each of its chunks with
    the model the rows in flight step; its progress callback runs in the caller's thread; and what the
    callback raises stops the experiment where it called it (its hooks removed), while the rows go on."""
    hooked = tiny.encoder.blocks[0].attn.query
    caller = threading.current_thread()
    seen: dict[str, object] = {}
    in_flight: list[int] = []
    calls: list[tuple[int, bool]] = []
    stopped: list[str] = []
    label = lambda: "step through an experiment's hook" if hooked._forward_hooks else "step"  # noqa: E731
    with beside_a_long_window(tiny, label) as (worker, log, job):

        def sweep(model, chunks: int, on_progress) -> int:
            seen["thread"] = threading.current_thread().name
            for _ in range(chunks):
                with model_lock(model), torch.no_grad():
                    in_flight.append(worker.rows.windows_in_flight())
                    log.append("chunk")
                    model.embed_audio(job.mel[None])
            on_progress(chunks, chunks)  # no callback between chunks: the turns come from the model's lock alone
            return chunks

        def hooked_sweep(model, on_progress) -> None:
            with model_lock(model), torch.no_grad():  # as capture.Hooks does: the lock first, then the hooks
                handle = hooked.register_forward_hook(lambda *_: None)
                try:
                    model.embed_audio(job.mel[None])
                    on_progress(1, 2)  # the caller raises here: the rows must not step through the hook
                    stopped.append("not stopped")
                finally:
                    handle.remove()
                    stopped.append("cleaned up")

        def rerun(*_):
            raise _Stop()

        assert worker.experiment(sweep, tiny, 4, lambda done, total: calls.append(
            (done, threading.current_thread() is caller))) == 4
        with pytest.raises(_Stop):
            worker.experiment(hooked_sweep, tiny, rerun)
    assert seen["thread"] == "whisper-inquiry-worker"
    assert calls == [(4, True)]
    chunks = [i for i, entry in enumerate(log) if entry == "chunk"]
    for (a, b), busy in zip(zip(chunks, chunks[1:]), in_flight):
        if busy:  # the rows were in flight when the chunk ran: they stepped before the next chunk
            assert "step" in log[a:b], log
    assert in_flight[0] == 1
    assert stopped == ["cleaned up"] and not hooked._forward_hooks
    assert "step through an experiment's hook" not in log
    assert job.future.result().result.tokens
    with model_lock(tiny):  # the worker's lock is free again for anyone
        pass
    worker.close(60)
    with pytest.raises(EngineClosedError):
        worker.experiment(sweep, tiny, 1, lambda *_: None)
