"""An experiment as a job of the engine's worker (`Worker.experiment`): the greenlet it runs in, in the
worker's own thread, and its callbacks, relayed to the thread that asked for it.

The worker resumes the job in turns with the rows in flight; the job gives the thread back before each
chunk with the model (`capture.ModelLock` calls `JobLoop.between_chunks`) and whenever it calls back
its caller (a progress bar: Streamlit's elements belong to the page's thread).
"""

from __future__ import annotations

import functools
import threading
import types
from collections.abc import Callable
from concurrent.futures import Future
from enum import Enum
from typing import Any

import torch
from greenlet import greenlet


class JobState(Enum):
    """Where an experiment job is: READY to run (queued, or between two chunks), CALLING its caller back
    (a progress bar: Streamlit's elements belong to the caller's thread), or ENDED."""

    READY = "ready"
    CALLING = "calling"
    ENDED = "ended"


class JobLoop(greenlet):
    """The greenlet an experiment job runs in. `between_chunks` is what `capture.ModelLock` calls before
    the job takes the model: the worker gets its thread back, and resumes the job when its turn comes."""

    def __init__(self, job: ExperimentJob):
        super().__init__(job.main)
        self.job = job

    def between_chunks(self) -> None:
        self.job.state = JobState.READY
        self.parent.switch()


class ExperimentJob:
    """An experiment for the worker to run: `work()`, with its caller's callbacks (`relayed`) answered in
    the caller's thread while the job waits (and the rows step, unless the job holds the model)."""

    def __init__(self) -> None:
        self.work: Callable[[], Any] = lambda: None  # set once the callbacks among its arguments are relayed
        self.future: Future = Future()
        self.state = JobState.READY
        self.loop: JobLoop | None = None  # made by the worker, in its own thread
        self.call: tuple[Callable, tuple, dict] | None = None  # a callback waiting for the caller
        self.answer: tuple[bool, Any] | None = None  # (ok, its result or its exception)
        self.abandoned = False  # the caller stopped waiting: the job is ended at its next turn
        self.grad = torch.is_grad_enabled()

    @classmethod
    def of(cls, work: Callable[..., Any], args: tuple, kwargs: dict, cond: threading.Condition) -> ExperimentJob:
        """The job of `work(*args, **kwargs)`, the plain functions among its arguments relayed to the
        caller's thread (`relayed`)."""
        job = cls()
        job.work = functools.partial(
            work, *(job.relayed(a, cond) if _is_callback(a) else a for a in args),
            **{k: job.relayed(v, cond) if _is_callback(v) else v for k, v in kwargs.items()})
        return job

    def main(self) -> None:
        try:
            self.future.set_result(self.work())
        except BaseException as e:  # noqa: BLE001 - the experiment's own failure, for its caller
            self.future.set_exception(e)
        self.state = JobState.ENDED

    def relayed(self, callback: Callable, cond: threading.Condition) -> Callable:
        """`callback` as the job calls it: the caller runs it, in its own thread, and the job goes on
        with what it returned, or raises what it raised (a Streamlit rerun stops the job there)."""
        def call(*args, **kwargs):
            with cond:
                self.call, self.state = (callback, args, kwargs), JobState.CALLING
                cond.notify_all()
            self.loop.parent.switch()  # the worker resumes the job once the answer has come
            (ok, value), self.answer = self.answer, None
            if not ok:
                raise value
            return value
        return call


def _is_callback(value: object) -> bool:
    return isinstance(value, (types.FunctionType, types.MethodType, types.BuiltinMethodType, functools.partial))
