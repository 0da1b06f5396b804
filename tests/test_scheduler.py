"""The rows' scheduling, with no model: the step's plan from fake windows, and the runner (`Rows.step`)
carrying plans out over fake decoder passes. Deterministic: no clock, no thread, no real weights."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import torch

from whisper_inquiry.engine.continuous import Phase, Row, Rows, Window
from whisper_inquiry.engine.scheduler import StepPlan, plan_step
from whisper_inquiry.errors import CancelledError

VOCAB = 8


def _window(phase: Phase, n_rows: int = 1, **flags) -> Window:
    window = Window(None, None, None, phase=phase, **flags)
    window.rows = [Row(window) for _ in range(n_rows)]
    return window


def test_the_plan_follows_each_windows_phase():
    ended = _window(Phase.ENDED)
    new = _window(Phase.ASKING_FIRST, n_rows=2)
    asking = _window(Phase.ASKING)
    beam = _window(Phase.ASKING, n_rows=3, reorder=[0, 0, 1])
    gone = threading.Event()
    gone.set()
    closed = _window(Phase.ASKING, cancelled=gone)
    best_of = _window(Phase.ASKING, n_rows=2)
    best_of.rows[1].left = True  # an ended sample: whisper only appends end-of-text to it
    windows = [ended, new, asking, beam, closed, best_of]
    rows = [r for w in windows for r in w.rows]
    for w in (asking, beam, closed, best_of):
        for r in w.rows:
            r.request = torch.zeros(1, 3, dtype=torch.long)
    plan = plan_step(windows, rows)
    assert plan.leaving == (ended,)
    assert plan.freed == (ended.rows[0], best_of.rows[1])
    assert plan.cancelled == (closed,)
    assert plan.reordered == (beam,)
    assert plan.first == (new,)
    assert plan.shared == (asking.rows[0], *beam.rows, best_of.rows[0])  # not the closed one's, nor the left
    assert plan.passes == 2 and plan.decided == ()


def test_an_idle_step_plans_nothing():
    assert plan_step([], []) == StepPlan() and StepPlan().passes == 0


def test_decided_windows_are_those_fed_or_cancelled():
    fed, new, idle = _window(Phase.ASKING), _window(Phase.ASKING_FIRST), _window(Phase.ENDED)
    gone = threading.Event()
    gone.set()
    closed = _window(Phase.ASKING_FIRST, cancelled=gone)
    for w in (fed, new, idle, closed):
        w.decider = SimpleNamespace()  # a window the batched step decides
    fed.rows[0].request = torch.zeros(1, 2, dtype=torch.long)
    plan = plan_step([fed, new, idle, closed], [r for w in (fed, new, idle, closed) for r in w.rows])
    assert plan.decided == (fed, new, closed) and plan.first == (new,) and plan.shared == (fed.rows[0],)


class FakeRows(Rows):
    """The runner over fake passes: logits are the row's position, one-hot; every pass is logged."""

    def __init__(self, capacity: int):
        model = SimpleNamespace(is_multilingual=False, num_languages=99, decoder=torch.nn.Module())
        super().__init__(model, capacity)
        self.passes: list[tuple[str, int]] = []

    def _make_room(self, n, dtype, device) -> None:
        self.kv.self_k = [torch.zeros(0, dtype=dtype)]  # no caches: only their dtype is asked

    def _remove(self, row) -> None:
        self.rows.remove(row)

    def _first_pass(self, rows):
        self.passes.append(("first", len(rows)))
        n = rows[0].request.shape[-1]
        for r in rows:
            r.position = n
        return [torch.eye(VOCAB)[n - 1].expand(1, n, VOCAB) for _ in rows]

    def _next_pass(self, rows):
        self.passes.append(("shared", len(rows)))
        out = []
        for r in rows:
            r.position += 1
            out.append(torch.eye(VOCAB)[r.position - 1][None, None])
        return out


def _asks(times: int):
    """A window's loop that asks for logits `times` times, each time with one token more, and returns the
    tokens it wrote (the argmax of each answer: its position)."""
    def loop(inference):
        tokens = torch.zeros(1, 2, dtype=torch.long)
        for _ in range(times):
            logits = inference.logits(tokens, None)
            tokens = torch.cat([tokens, logits[:, -1].argmax(-1, keepdim=True)], 1)
        return tokens[0, 2:].tolist()
    return loop


def test_the_runner_joins_steps_and_lets_leave_by_the_plan():
    rows = FakeRows(capacity=4)
    finished: dict[str, object] = {}
    features = torch.zeros(1, 1, 1)

    def admit(name: str, times: int, cancelled=None) -> None:
        rows.admit(_asks(times), lambda outcome, company, name=name: finished.__setitem__(name, (outcome, company)),
                   features, 1, cancelled)

    admit("short", 2)
    admit("long", 4)
    rows.step()  # both ask for their prompt: a first pass each, alone
    assert rows.passes == [("first", 1), ("first", 1)]
    gone = threading.Event()
    admit("late", 3, cancelled=gone)
    rows.step()  # the two share a pass; the late one's first pass is its own
    assert rows.passes[2:] == [("first", 1), ("shared", 2)]
    rows.step()  # the short one has its two answers and ends at the next resume
    gone.set()  # the late one's session closes mid-decode
    rows.step()
    assert finished["short"] == ([1, 2], 2)  # its tokens, and the most windows it shared a pass with
    assert "late" not in finished  # answered with the error; its loop raises it at the next resume
    rows.step()
    assert isinstance(finished["late"][0], CancelledError)
    while rows.windows_in_flight():
        rows.step()
    assert finished["long"][0] == [1, 2, 3, 4] and rows.rows == []
    assert all(kind == "first" or n <= 3 for kind, n in rows.passes)
