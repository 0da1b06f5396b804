"""The engine's worker: the one thread that runs the model for analyses and listening.

Requests hand it their windows (`submit`) and wait. Windows whose language is known join the rows in
flight at their next decoder step (`continuous.Rows`); language detection (and everything, when
continuous batching is off) is collected for `max_wait_ms` (or until `max_batch`) and run in the
lockstep groups of `lockstep.py`, between two steps. An experiment is a job of the worker too
(`experiment`): it runs in a greenlet of the worker's thread and hands the thread back before each of
its chunks with the model (`capture.ModelLock`). Another thread that wants the model (a head
recomputed) is granted a turn between two steps. The lanes take turns by time: a lockstep group's, a
job's or a turn's seconds are owed to the rows in flight, which step until they are repaid.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from whisper_inquiry.engine.batched import Decider
from whisper_inquiry.engine.continuous import Rows, joins_rows, rows_of
from whisper_inquiry.engine.jobs import ExperimentJob, JobLoop, JobState
from whisper_inquiry.engine.lockstep import DecodeJob, WorkerStats, decode_group, decode_windows, detect, encode_window
from whisper_inquiry.engine.threads import use_every_core
from whisper_inquiry.errors import CancelledError, EngineClosedError
from whisper_inquiry.instruments.capture import mark_worker_thread, model_lock

__all__ = ["Worker", "CancelledError", "EngineClosedError"]

T = TypeVar("T")

# other windows decoding or waiting from which a drafted Live refresh drops its draft and joins them
# (measured against 1 with 4 and 8 listeners, in make live-load and the four-listener browser test:
# four listeners redraw more often keeping their drafts, eight alike either way; docs/performance.md)
BUSY_WINDOWS = 4


class Worker:
    """The engine's worker: one thread, the only one that runs the model for analyses and listening.

    With `continuous` (the default), a window whose language is known (`continuous.joins_rows`) joins
    the rows in flight at their next step and leaves with its result when it ends (`continuous.Rows`,
    up to `max_batch` rows in flight: a greedy window is one row, a beam or best-of window one per beam
    or sample). Language detection runs between two steps in the lockstep groups of `batching.py`; so
    does everything when `continuous` is off. So do drafted Live refreshes, alone, unless
    `drafted_rows`: then each feeds its draft's tokens in its own row (drafts.DraftRowInference).
    One lockstep group runs per turn, and the rows then step for as long as it took, so a stream of
    Live refreshes never starves an analysis or a first refresh in flight. Drafted refreshes are alone by
    default: as rows they redraw more often on a quiet CPU, but on a busy one every new window's encoder
    pass holds up the rows in flight and one listener waits far longer (docs/performance.md, "Live
    listeners")."""

    def __init__(self, model, max_batch: int = 8, max_wait_ms: float = 30.0, continuous: bool = True,
                 drafted_rows: bool = False, batched: bool = True, draft_when_busy: bool = False):
        self.model = model
        self.batched = batched  # greedy and sampled rows decided by the batched step, not whisper's loop
        self.max_batch = max_batch
        self.max_wait_s = max_wait_ms / 1000
        self.stats = WorkerStats()
        self.rows = Rows(model, max_batch) if continuous else None
        self.drafted_rows = drafted_rows
        self.draft_when_busy = draft_when_busy  # a drafted refresh stays drafted (and alone) beside others
        self._joining: list[DecodeJob] = []  # windows that will join the rows in flight when there is room
        self._queue: list[DecodeJob] = []
        # jobs decoded in lockstep groups, one group per turn; a turn's time is owed to the rows in flight,
        # which step until it is repaid, so neither lane starves the other (a stream of drafted Live
        # refreshes once held a first refresh's row for 40 s, one step per refresh)
        self._lockstep: list[list[DecodeJob]] = []
        self._owed_s = 0.0
        # other threads waiting for the model (an experiment's chunk, a head recomputed): each is granted a
        # turn between two steps, like a lockstep group, and its time is owed to the rows the same way
        self._turns: list[tuple[threading.Event, threading.Event]] = []
        self._jobs: list[ExperimentJob] = []  # experiments, each run in turns in a greenlet of this thread
        self._busy = False
        self._active = 0  # requests in flight (between `begin` and `end`), whose next window may come soon
        self._closing = False  # `close`: no new requests; the worker ends once those in flight have finished
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._loop, name="whisper-inquiry-worker", daemon=True)
        self._lock = model_lock(model)
        self._lock.turns = self._wait_turn
        self._thread.start()

    def _wait_turn(self):
        """Called by a thread that wants the model (`capture.ModelLock`): wait until the worker grants it a
        turn; returns what ends the turn. None (no turn: take the lock) once the worker has ended."""
        granted, ended = threading.Event(), threading.Event()
        with self._cond:
            if not self._thread.is_alive():
                return None
            self._turns.append((granted, ended))
            self._cond.notify_all()
        granted.wait()
        return ended.set

    def waiting(self) -> int:
        """Windows queued or being decoded right now (what a newcomer waits behind)."""
        with self._cond:
            rows = self.rows.windows_in_flight() if self.rows is not None else 0
            lockstep = sum(len(group) for group in self._lockstep)
            return len(self._queue) + lockstep + len(self._joining) + rows + (1 if self._busy else 0)

    def begin(self) -> None:
        """A request starts: the worker may wait (up to max_wait_ms) for its windows to join a batch."""
        with self._cond:
            if self._closing:
                raise EngineClosedError("this model was unloaded (the app keeps a few at a time); "
                                        "choose it again in the sidebar to reload it")
            self._active += 1

    def end(self) -> None:
        with self._cond:
            self._active -= 1
            self._cond.notify_all()

    def submit(self, job: DecodeJob, on_progress: Callable[[str], None] | None = None):
        """Queue a job and wait for its result (re-raising its own error)."""
        ahead = self.waiting()
        with self._cond:
            if not self._thread.is_alive():
                raise EngineClosedError("this model was unloaded; choose it again in the sidebar to reload it")
            self._queue.append(job)
            self._cond.notify_all()
        if ahead and on_progress is not None:
            on_progress(f"waiting for {ahead} other window{'s' if ahead > 1 else ''} to be decoded")
        return job.future.result()

    def experiment(self, work: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`work(*args, **kwargs)` as a job of the worker, which runs it in its own thread, in turns with
        the rows in flight (before each of its chunks with the model, the rows step for as long as its
        last chunk took). Plain functions among the arguments (a progress callback) are called back in
        this thread, which waits for the job meanwhile; what they raise, the job raises where it called
        them, and this call raises when the job has ended."""
        if threading.current_thread() is self._thread:
            raise RuntimeError("an experiment cannot start another from the engine's worker")
        with self._cond:
            if self._closing or not self._thread.is_alive():
                raise EngineClosedError("this model was unloaded (the app keeps a few at a time); "
                                        "choose it again in the sidebar to reload it")
        job = ExperimentJob.of(work, args, kwargs, self._cond)
        with self._cond:
            self._jobs.append(job)
            self._cond.notify_all()
        try:
            while True:
                with self._cond:
                    while job.call is None and job.state is not JobState.ENDED:
                        self._cond.wait()
                    if job.state is JobState.ENDED:
                        break
                    callback, a, k = job.call
                    job.call = None
                try:
                    answer = (True, callback(*a, **k))
                except BaseException as e:  # noqa: BLE001 - raised in the job, where it called back
                    answer = (False, e)
                with self._cond:
                    job.answer = answer
                    self._cond.notify_all()
        except BaseException:
            with self._cond:  # this thread stops waiting (interrupted): the job is ended at its next turn
                job.abandoned = True
                self._cond.notify_all()
            raise
        return job.future.result()

    def close(self, timeout_s: float | None = None) -> bool:
        """Refuse new requests, let those in flight finish, then end the worker thread and let go of the
        model (its rows' key/value caches with it). Waits up to `timeout_s` (None: not at all) for the
        thread to end; returns whether it has."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        if timeout_s is not None:
            self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def closed(self) -> bool:
        """Whether the worker thread has ended (after `close`, once its last request finished)."""
        return not self._thread.is_alive()

    def _done(self) -> bool:
        """Closing, and nothing left: no request in flight, nothing queued or decoding."""
        return (self._closing and not self._active and not self._queue and not self._jobs
                and not self._in_flight())

    def _rows_waiting(self) -> bool:
        """Rows in flight, or windows waiting to join them."""
        return self.rows is not None and (self.rows.windows_in_flight() > 0 or bool(self._joining))

    def _in_flight(self) -> bool:
        return bool(self._lockstep) or bool(self._turns) or self._job_ready() is not None or self._rows_waiting()

    def _job_ready(self) -> ExperimentJob | None:
        """The first job that can run now: not waiting for its caller's answer (or abandoned by it)."""
        for job in self._jobs:
            if job.state is JobState.READY or job.answer is not None or job.abandoned:
                return job
        return None

    def _take(self) -> list[DecodeJob]:
        """The jobs queued: while work is in flight, whatever has come (rows join at the next step);
        when idle, wait for one, then for the other requests in flight, but never past max_wait."""
        with self._cond:
            if not self._in_flight():
                while not self._queue and not self._turns and self._job_ready() is None:
                    if self._done():  # closed and idle: the loop ends
                        return []
                    self._cond.wait()
                if not self._queue:
                    return []  # a turn or a job is waiting
                deadline = self._queue[0].enqueued_s + self.max_wait_s
                while (len(self._queue) < min(self.max_batch, self._active)
                       and (left := deadline - time.perf_counter()) > 0):
                    self._cond.wait(left)
            jobs, self._queue = self._queue, []
        return jobs

    def _loop(self) -> None:
        mark_worker_thread()
        use_every_core()  # the process's one OpenMP team, where the launcher left other threads one core
        try:
            while not self._done():
                self._turn()
        finally:
            with self._cond:
                if self._lock.turns == self._wait_turn:
                    self._lock.turns = None  # others take the lock directly again
                for granted, _ in self._turns:  # none is left waiting on a worker that has gone
                    granted.set()
                self._turns.clear()
                for job in self._jobs:
                    if not job.future.done():
                        job.future.set_exception(EngineClosedError("the engine's worker has ended"))
                    job.state = JobState.ENDED
                self._jobs.clear()
                self._cond.notify_all()
            self.model = self.rows = None  # closed: the engine's last references to the model go with the thread

    def _turn(self) -> None:
        """One turn: take what has come, run one lockstep group when it is due, step the rows in flight."""
        self._sort(self._take())
        rows_waiting = self._rows_waiting()
        with self._cond:
            job = self._job_ready()
        if (self._turns or job is not None or self._lockstep) and (self._owed_s <= 0 or not rows_waiting):
            started = time.perf_counter()
            if self._turns:  # another thread's turn with the model first: it is waiting, blocked
                with self._cond:
                    granted, ended = self._turns.pop(0)
                granted.set()
                ended.wait()  # the other thread has the model; the worker waits, as for a lockstep group
            elif job is not None:
                self._run_job(job)
            else:
                self._run_lockstep(self._lockstep.pop(0))
            self._owed_s += time.perf_counter() - started
        if rows_waiting:
            started = time.perf_counter()
            try:
                self._admit()
                if self.rows.windows_in_flight():
                    stepped = time.perf_counter()
                    self.rows.step()
                    self.stats.busy_s["decode"] += time.perf_counter() - stepped
            except BaseException as e:  # noqa: BLE001 - the rows in flight hear it; the worker goes on
                self.rows.abort(e)
            self._owed_s -= time.perf_counter() - started
        if not rows_waiting:
            self._owed_s = 0.0  # no rows to repay
        elif not self._lockstep and not self._turns and job is None:
            self._owed_s = max(self._owed_s, 0.0)  # rows that stepped while nothing else waited earn no credit

    def _sort(self, jobs: list[DecodeJob]) -> None:
        """Windows that can join the rows go to `_joining`; the rest, grouped by what can share a
        lockstep pass (one job alone where nothing can), to `_lockstep`."""
        groups: dict[str, list[DecodeJob]] = {}
        # others decoding now or coming with this one: a drafted refresh would run alone between two steps,
        # so it joins the batched step without its draft instead (a draft only ever saves passes, never
        # changes a token); docs/performance.md ("Live listeners") has the measurements
        company = sum(job.kind == "decode" for job in jobs) - 1
        if self.rows is not None:
            company += self.rows.windows_in_flight() + len(self._joining)
        busy = company >= BUSY_WINDOWS
        for job in jobs:
            if job.cancelled is not None and job.cancelled.is_set():
                job.future.set_exception(CancelledError("analysis cancelled"))
                continue
            if job.draft and busy and not self.drafted_rows and not self.draft_when_busy:
                job.draft = None
            if (self.rows is not None and job.kind == "decode" and joins_rows(job.options)
                    and (self.drafted_rows or not job.draft)
                    and rows_of(job.options) <= self.rows.capacity):
                self._joining.append(job)
                continue
            key = job.share_key()
            if key is None:
                self._lockstep.append([job])
            else:
                groups.setdefault(key, []).append(job)
        for group in groups.values():
            self._lockstep.extend(group[i: i + self.max_batch] for i in range(0, len(group), self.max_batch))

    def _run_lockstep(self, group: list[DecodeJob]) -> None:
        for job in group:
            if job.cancelled is not None and job.cancelled.is_set():  # it closed while it waited its turn
                job.future.set_exception(CancelledError("analysis cancelled"))
        group = [job for job in group if not job.future.done()]
        self._busy = True
        try:
            if group:
                (detect if group[0].kind == "detect" else decode_group)(self.model, group, self.stats)
        except BaseException as e:  # noqa: BLE001 - never leave a request waiting on a dead worker
            for job in group:
                if not job.future.done():
                    job.future.set_exception(e)
        finally:
            self._busy = False

    def _run_job(self, job: ExperimentJob) -> None:
        """Run the job until it is about to take the model for its next chunk, calls its caller back, or
        ends. A callback made while it holds the model (its hooks are on it) is waited for here: the rows
        must not step through them. A job its caller abandoned ends where it is, with a CancelledError."""
        if job.loop is None and job.abandoned:  # never started: it never runs
            job.future.set_exception(CancelledError("experiment cancelled"))
            job.state = JobState.ENDED
        else:
            if job.loop is None:
                job.loop = JobLoop(job)
            grad = torch.is_grad_enabled()
            torch.set_grad_enabled(job.grad)  # grad mode is the thread's: the job's own, while it runs
            try:
                while True:
                    if job.abandoned and job.state is JobState.READY and job.loop:  # between two chunks
                        job.loop.throw(CancelledError("experiment cancelled"))
                    else:
                        if job.abandoned:  # calling back: the callback raises it
                            job.answer = (False, CancelledError("experiment cancelled"))
                        job.loop.switch()
                    if job.state is not JobState.CALLING or not self._lock.held_here():
                        break
                    with self._cond:
                        while job.answer is None and not job.abandoned:
                            self._cond.wait()
            finally:
                job.grad = torch.is_grad_enabled()
                torch.set_grad_enabled(grad)
        with self._cond:
            self._jobs.remove(job)
            if job.state is not JobState.ENDED:
                self._jobs.append(job)  # ready again, or waiting for its caller: the others' turn first
            self._cond.notify_all()

    def _admit(self) -> None:
        """Encode the waiting windows there is room for and start them as rows."""
        while self._joining and self.rows.takes(self._joining[0].mel.dtype, rows_of(self._joining[0].options)):
            job = self._joining.pop(0)
            if job.cancelled is not None and job.cancelled.is_set():
                job.future.set_exception(CancelledError("analysis cancelled"))
                continue
            started = time.perf_counter()
            try:
                with model_lock(self.model), torch.no_grad():
                    features = encode_window(self.model, job)
                # one row, whisper's own filters: the batched step decides it (batched.py)
                decider = None if job.draft or not self.batched else Decider.of(
                    self.model, job.options, job.top_k, job.seed, features, job.stop_repeating)
            except Exception as e:  # noqa: BLE001 - the job's own failure, handed to its request
                job.future.set_exception(e)
                continue
            finally:
                self.stats.busy_s["encode"] += time.perf_counter() - started
            self.stats.deciders["batched step" if decider is not None else "whisper's loop"] += 1
            self.rows.admit(lambda rows, job=job, f=features: decode_windows(self.model, [job], f, rows)[0],
                            lambda outcome, company, job=job: self._finish(job, outcome, company), features,
                            rows_of(job.options), job.cancelled, decider)

    def _finish(self, job: DecodeJob, outcome, company: int) -> None:
        """A row ended: count it by the most rows it shared a pass with, and hand its request the result."""
        if isinstance(outcome, BaseException):
            job.future.set_exception(outcome)
            return
        self.stats.passed(job.options, company)
        started = time.perf_counter()
        try:
            with model_lock(self.model), torch.no_grad():
                job.future.set_result(job.on_decoded(outcome) if job.on_decoded is not None else outcome)
        except Exception as e:  # noqa: BLE001
            job.future.set_exception(e)
        self.stats.busy_s["after decode"] += time.perf_counter() - started
