"""Who leaves, waits, is cancelled, is reordered and is fed at a step: the step's plan, as plain data.

`plan_step` reads only the windows' phases and flags (continuous.Phase, a row's `left`, a window's
`cancelled` event and beam `reorder`), never a tensor or the model, so the scheduling of the rows in
flight is tested with fake windows and a fake runner (tests/test_scheduler.py), without a model, a
clock or a thread. `continuous.Rows.step` is the runner: it carries the plan out over the key/value
slots and the decoder.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only named in annotations: continuous.py imports this module
    from whisper_inquiry.engine.continuous import Row, Window


class Phase(Enum):
    """Where a window's loop is. NEW -> ASKING_FIRST -> ANSWERED -> (ASKING -> ANSWERED)* -> ENDED: a step
    resumes the NEW and ANSWERED windows until each asks or ends, answers the ASKING_FIRST ones alone
    (their whole prompt) and the ASKING ones in one shared pass, and hands on the ENDED. An error (a
    failed pass, a cancel) is an answer too: the loop raises it and ends."""

    NEW = "new"  # admitted; its loop has not run yet
    ASKING_FIRST = "asking first"  # waits for its first logits: the whole prompt, its rows alone
    ASKING = "asking"  # waits for the logits of its new tokens, in the pass the rows in flight share
    ANSWERED = "answered"  # has its logits (or an error): the next step resumes its loop
    ENDED = "ended"  # its loop returned; its outcome waits to be handed on


@dataclass(frozen=True)
class StepPlan:
    """One step of the rows in flight, in the order the runner carries it out."""

    leaving: tuple[Window, ...] = ()  # their loops ended: out of the step, outcome handed on after the pass
    freed: tuple[Row, ...] = ()  # rows that give up their slot: the leaving windows', ended best-of samples
    cancelled: tuple[Window, ...] = ()  # their session closed: answered with an error instead of logits
    reordered: tuple[Window, ...] = ()  # beam windows whose slots take their kept rows' keys and values
    first: tuple[Window, ...] = ()  # each gets its whole prompt's pass, its rows alone
    shared: tuple[Row, ...] = ()  # fed their new tokens in the one pass all of them share
    decided: tuple[Window, ...] = ()  # the batched step's windows answered at this step (batched.decide)

    @property
    def passes(self) -> int:
        """Decoder passes this step runs: one per new window, and one shared by the rest."""
        return len(self.first) + (1 if self.shared else 0)


def plan_step(windows: Sequence[Window], rows: Sequence[Row]) -> StepPlan:
    """The plan for the windows in flight once each has asked or ended (`Rows._resume`), `rows` being the
    rows holding slots, in slot order."""
    leaving = tuple(w for w in windows if w.phase is Phase.ENDED)
    freed = tuple(r for r in rows if r.left or r.window.phase is Phase.ENDED)
    staying = [w for w in windows if w.phase is not Phase.ENDED]
    cancelled = tuple(w for w in staying if w.cancelled is not None and w.cancelled.is_set())
    going = [w for w in staying if w not in cancelled]
    reordered = tuple(w for w in going if w.reorder is not None)
    first = tuple(w for w in going if w.phase is Phase.ASKING_FIRST)
    asking = {w for w in going if w.phase is Phase.ASKING}  # windows and rows compare by identity
    shared = tuple(r for r in rows if r.request is not None and not r.left and r.window in asking)
    fed = set(first) | asking
    decided = tuple(w for w in staying if w.decider is not None and (w in fed or w in cancelled))
    return StepPlan(leaving, freed, cancelled, reordered, first, shared, decided)
