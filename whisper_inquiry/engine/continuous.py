"""Continuous batching: windows join the decoder's batch at any step and leave it as soon as they end.

whisper's `DecodingTask.run` steps all rows of its batch together and returns when the last one ends,
so a short transcript waits for the longest one beside it, and a window that arrives a moment later
waits for the whole batch. Here a window of one row (greedy, or sampled without best-of) is decided by
the batched step (`batched.py`: every such row's filters, update and record at once, after the pass);
a window of several rows (beam search, best-of) runs whisper's own `DecodingTask.run`, unchanged (its
logit filters, its decoder, its result), in a greenlet of its own; only its `Inference` role is ours
(`StepInference`): it posts the step's tokens and switches back to the worker. The engine's worker
(`Rows.step`) runs every window in flight until it has posted, then answers all of them with one
decoder pass in which each row sits at its own position. A window that
ends leaves at once, with its result; a new one is encoded and joins at the next step. Windows of
other prompts, languages, tasks, temperatures or beam sizes share the pass, since only the tokens fed
differ.

Why greenlets and not threads: whisper's loop holds the GIL between steps, so the windows' threads
never ran side by side, and every step waited on lock hand-overs and wake-ups; greenlets hand over
without either (docs/performance.md, "Continuous batching", has the step times both ways).

A window has one row (greedy, or sampled without best-of) or several (a beam, or best-of samples):
each row has a slot in the key/value caches (`slots.KVSlots`). Beam search reorders its rows: whisper asks its
`Inference` to, and the worker permutes the window's slots before the next pass. A best-of sample that
has ended leaves its slot; whisper's loop carries it on with end-of-text, and it gets finite placeholder
logits (zeros) that nothing records, as `batching.ShrinkingInference` gives it in a lockstep batch.

A drafted Live refresh (`drafts.DraftRowInference`) feeds its row several tokens in one pass, and
after a rejected draft token asks from an earlier position again: its slot's later keys are simply
overwritten, and masked until they are.

Every pass runs the decoder's one forward (`decoder.decoder_states`). Exact per window: a window's
first pass (its whole prompt, all its rows) is whisper's decoder on that window alone, bit for bit,
writing the keys and values it computes into the window's slots; every later pass feeds each row its
new token (or draft tokens), attends to the row's own cached keys (the longer rows' padding masked out)
and its own audio, and differs from the window decoded alone only by the rounding of a batched matmul.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from greenlet import greenlet
from whisper.decoding import DecodingOptions, Inference
from whisper.tokenizer import get_tokenizer

from whisper_inquiry.engine.batched import Decider, decide
from whisper_inquiry.engine.decoder import decoder_states
from whisper_inquiry.engine.scheduler import Phase, plan_step
from whisper_inquiry.engine.slots import KVSlots
from whisper_inquiry.engine.unembed import decoder_logits, unembed
from whisper_inquiry.errors import CancelledError
from whisper_inquiry.instruments.capture import model_lock


def joins_rows(options: DecodingOptions | None) -> bool:
    """Whether a window of these options can join the rows in flight: anything but language
    detection, once the language is known (whisper would detect it in the window's own thread)."""
    return options is not None and options.task != "lang_id" and options.language is not None


def rows_of(options: DecodingOptions) -> int:
    """The rows a window of these options decodes at once, as `DecodingTask` counts them."""
    return options.beam_size or options.best_of or 1


@dataclass(eq=False)
class Row:
    """One slot of the caches: one of a window's rows."""

    window: Window
    position: int = 0  # tokens whose keys and values the slot holds
    request: torch.Tensor | None = None  # (1, t) the tokens it asks logits for
    reply: torch.Tensor | None = None
    left: bool = False  # an ended best-of sample: it gives up its slot at the next step


@dataclass(eq=False)
class Window:
    """One window in flight: its greenlet runs whisper's loop over its rows, switching back to the worker
    whenever it asks for logits."""

    start: Callable[[StepInference], object] | None  # runs the window's DecodingTask with the given inference
    finish: Callable[[object, int], None] | None  # hands the outcome (or the error) on, in the worker
    features: torch.Tensor | None  # (1, n_audio_ctx, n_audio_state)
    cancelled: threading.Event | None = None
    rows: list[Row] = field(default_factory=list)
    phase: Phase = Phase.NEW
    error: BaseException | None = None
    reorder: list[int] | None = None  # beam search's new order of its rows, applied before the next pass
    outcome: object = None
    company: int = 0  # the most windows it shared a pass with, itself included
    loop: greenlet | None = field(default=None, repr=False)  # whisper's loop; None for a decided window
    decider: Decider | None = field(default=None, repr=False)  # a window the batched step decides

    def hand_on(self) -> None:
        """Hand the outcome to the request, then let go of everything: its rows point back at it and
        its callbacks hold the request's job, result and tensors, a cycle that would keep all of them
        until Python's next full garbage collection (hundreds of MB for a round of analyses)."""
        finish, outcome = self.finish, self.outcome
        self.rows, self.start, self.finish, self.features, self.outcome, self.loop = [], None, None, None, None, None
        self.decider = None
        finish(outcome, self.company)


class StepInference(Inference):
    """whisper's `Inference` role for one window: each call posts the tokens and waits for the worker's
    answer. `cross_kv` hands the window's cross-attention keys and values back (the analysis reuses them)."""

    def __init__(self, rows: Rows, window: Window):
        self.rows, self.window = rows, window

    def logits(self, tokens: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        return self.rows.ask(self.window, tokens)

    def cleanup_caching(self) -> None:
        pass  # the slots are freed by the worker when the window's loop ends

    def rearrange_kv_cache(self, source_indices) -> None:
        if list(source_indices) != list(range(len(source_indices))):
            self.window.reorder = list(source_indices)

    def cross_kv(self) -> dict:
        return self.rows.cross_kv(self.window)


class Rows:
    """The windows in flight and their rows' key/value caches: slot i of every cache holds row i (kept
    packed). Only the engine's worker thread touches them: it calls `admit` and `step`, and the windows'
    loops, greenlets of that thread, call `ask`, so nothing here needs a lock."""

    def __init__(self, model, capacity: int):
        self.model, self.capacity = model, capacity
        self.eot = get_tokenizer(model.is_multilingual, num_languages=model.num_languages).eot
        self.rows: list[Row] = []
        self.windows: list[Window] = []
        self.kv = KVSlots(model, capacity)
        # the last shared pass's logits (n, width, n_vocab) and each row's place in it, for the batched step
        self._shared: tuple[torch.Tensor, dict[Row, int]] = (torch.empty(0), {})

    def windows_in_flight(self) -> int:
        """Windows decoding now (a beam or best-of window holds several rows)."""
        return len(self.windows)

    def room(self) -> int:
        """Free slots: a window needs one per row."""
        return self.capacity - len(self.rows)

    def takes(self, dtype: torch.dtype, n_rows: int) -> bool:
        """Whether a window of this dtype and rows can join now. The caches hold one dtype (float16 on a
        GPU unless a request asked for float32, which waits until the rows in flight have ended)."""
        return n_rows <= self.room() and (not self.rows or self.kv.dtype == dtype)

    # --- the windows' side ------------------------------------------------------------------------

    def ask(self, window: Window, tokens: torch.Tensor, keep: int | None = None) -> torch.Tensor:
        """Logits for each row of `tokens` (n_rows, t): the first time for every position, as whisper's
        first pass gives them, later for the positions past those cached: the newest one, or, where a
        draft's rejected tokens were cached, every one from `keep` on (those cached past it are dropped)."""
        k = tokens.shape[0]
        started = window.phase is not Phase.NEW  # its first pass is done: its slots hold its prompt
        ended = (tokens[:, -1] == self.eot).tolist() if started and k > 1 else [False] * k
        asking = []
        for row, t, gone in zip(window.rows, tokens, ended):
            if row.left or gone:
                row.left = True  # a best-of sample that has ended: whisper only appends end-of-text to it
            else:
                row.request = t[None]
                if keep is not None and started:
                    row.position = min(row.position, keep)  # the worker is waiting: its state is ours
                asking.append(row)
        window.phase = Phase.ASKING if started else Phase.ASKING_FIRST
        window.loop.parent.switch()  # the worker resumes this loop once it has the answer (or an error)
        error, window.error = window.error, None
        replies = [r.reply for r in window.rows]
        for r in window.rows:
            r.reply = None
        if error is not None:
            raise error
        if len(asking) == k:
            return torch.cat(replies)
        shape = next(r for r in replies if r is not None).shape[1:]
        zeros = torch.zeros(shape, device=tokens.device)
        return torch.stack([zeros if r is None else r[0] for r in replies])

    def cross_kv(self, window: Window) -> dict:
        """The window's cross-attention keys and values, by module, as whisper's kv_cache holds them for
        one row (copied: the slot will serve another row)."""
        # any of its rows still holding a slot (all hold the same audio's)
        return self.kv.cross_kv(self.rows.index(next(r for r in window.rows if not r.left)))

    def _run(self, window: Window, inference: StepInference) -> None:
        try:
            outcome = window.start(inference)
        except BaseException as e:  # noqa: BLE001 - the window's own failure, handed to its request
            outcome = e
        window.outcome, window.phase = outcome, Phase.ENDED

    # --- the worker's side ------------------------------------------------------------------------

    def admit(self, start: Callable[[StepInference], object] | None, finish: Callable[[object, int], None],
              features: torch.Tensor, n_rows: int = 1, cancelled: threading.Event | None = None,
              decider: Decider | None = None) -> None:
        """A new window of `n_rows` rows: its loop starts at the next step and asks for its first logits.
        With a `decider` (one row), the batched step decides it instead of a loop (`batched.py`). When
        `cancelled` is set (its session closed), it is answered with a CancelledError."""
        assert self.takes(features.dtype, n_rows)
        assert decider is None or n_rows == 1, "the batched step decides windows of one row"
        self._make_room(len(self.rows) + n_rows, features.dtype, features.device)
        window = Window(start, finish, features, cancelled, decider=decider)
        window.rows = [Row(window) for _ in range(n_rows)]
        self.windows.append(window)
        self.rows.extend(window.rows)
        if decider is None:
            inference = StepInference(self, window)
            window.loop = greenlet(lambda: self._run(window, inference))

    def step(self) -> None:
        """Run every window's loop until it has asked or ended, then carry out the step's plan
        (`scheduler.plan_step`): free the slots of what ended, answer the cancelled, reorder beams, run a
        new window's first pass alone and one pass shared by the rest, decide the batched step's windows,
        and hand on the outcomes of the windows that ended."""
        torch.set_grad_enabled(False)  # the worker thread's mode, which the loops' no_grad restore on leaving
        self._resume()
        plan = plan_step(self.windows, self.rows)
        for w in plan.leaving:
            self.windows.remove(w)
        for r in plan.freed:
            self._remove(r)
        for w in plan.cancelled:
            self._reply(w, error=CancelledError("analysis cancelled"))
        for w in plan.reordered:
            self._reorder(w)
        shared = set(plan.shared)
        later = [r for r in self.rows if r in shared]  # in slot order: the caches' rows as they lie
        with model_lock(self.model), torch.no_grad():
            for w in plan.first:
                self._answer(w.rows, self._first_pass)
            if later:
                self._answer(later, self._next_pass)
            if plan.decided:
                self._decide(list(plan.decided))
        for w in plan.leaving:
            w.hand_on()

    def _decide(self, windows: list[Window]) -> None:
        """The batched step's windows, answered: all decided at once (`batched.decide`). Each asks for its
        new token at the next step, or ends with its result (or its error)."""
        going = []
        for w in windows:
            if w.error is not None:
                w.outcome, w.error, w.phase = w.error, None, Phase.ENDED
            else:
                going.append(w)
        if not going:
            return
        # the shared pass's logits as they lie, when its rows are all of these windows' in order (the usual
        # case: no copy of rows x vocabulary); otherwise gathered
        later = [w for w in going if w.decider.written]
        first = [w for w in going if not w.decider.written]
        parts = []
        logits, at = self._shared
        self._shared = (torch.empty(0), {})
        if later and all(w.rows[0] in at for w in later):
            index = [at[w.rows[0]] for w in later]
            parts.append(logits[:, 0] if index == list(range(len(logits))) else logits[index, 0])
        elif later:  # the shared pass failed and was retried window by window
            parts.append(torch.stack([w.rows[0].reply[0, -1] for w in later]))
        parts += [w.decider.first_logits(w.rows[0].reply)[None] for w in first]
        for w in going:
            w.rows[0].reply = None
        going = later + first
        logits = parts[0] if len(parts) == 1 else torch.cat(parts)  # (windows, n_vocab)
        for w, ended in zip(going, decide([w.decider for w in going], logits)):
            if ended:
                try:
                    w.outcome = w.decider.outcome(w.features, self.cross_kv(w))
                except Exception as e:  # noqa: BLE001 - the window's own failure, handed to its request
                    w.outcome = e
                w.phase = Phase.ENDED
            else:
                w.rows[0].request, w.phase = w.decider.prompt(), Phase.ASKING

    def _resume(self) -> None:
        """Run each window that has its answer (or has not started) until it asks again or ends; a window
        the batched step decides asks for its whole prompt first."""
        for w in list(self.windows):
            if w.decider is not None:
                if w.phase is Phase.NEW:
                    w.rows[0].request, w.phase = w.decider.prompt(), Phase.ASKING_FIRST
                continue
            if w.phase in (Phase.NEW, Phase.ANSWERED):
                w.loop.switch()
                assert w.phase in (Phase.ASKING_FIRST, Phase.ASKING, Phase.ENDED), \
                    "a window's loop came back without asking or ending"

    def _reply(self, window: Window, error: BaseException | None = None) -> None:
        """The window has its answer: the next step resumes its loop."""
        for r in window.rows:
            r.request = None
        window.error, window.phase = error, Phase.ANSWERED

    def _answer(self, rows: list[Row], run: Callable[[list[Row]], list[torch.Tensor]]) -> None:
        windows = list(dict.fromkeys(r.window for r in rows))
        for w in windows:
            w.company = max(w.company, len(windows))
        try:
            logits = run(rows)
        except Exception as e:  # noqa: BLE001
            if len(windows) > 1:  # one bad window never fails the others: each alone
                for w in windows:
                    self._answer([r for r in rows if r.window is w], run)
                return
            self._reply(windows[0], error=e)
            return
        for r, out in zip(rows, logits):
            r.reply = out
        for w in windows:
            self._reply(w)

    def abort(self, error: BaseException) -> None:
        """The worker itself failed mid-step: every window in flight is answered with the error, its
        loop ends, and its request hears it; the worker goes on with none in flight."""
        for w in self.windows:
            if w.phase is not Phase.ENDED:
                self._reply(w, error=error)
        for w in self.windows:
            if w.loop:  # started and not ended: its pending `ask` raises the error, and whisper's loop ends
                w.loop.switch()
        ended, self.windows, self.rows = self.windows, [], []
        for w in ended:
            if not isinstance(w.outcome, BaseException):
                w.outcome = error
            w.hand_on()

    def _reorder(self, window: Window) -> None:
        """Beam search kept other rows than it had: each slot takes the keys and values of the row it
        continues (every row of a window sits at the same position)."""
        slots = [self.rows.index(r) for r in window.rows]
        self.kv.reorder(slots, [slots[j] for j in window.reorder], window.rows[0].position)
        window.reorder = None

    def _make_room(self, n: int, dtype: torch.dtype, device: torch.device) -> None:
        self.kv.make_room(n, len(self.rows), dtype, device)

    def _remove(self, row: Row) -> None:
        """Free the row's slot: the last row moves into it, so rows 0..n-1 stay packed."""
        i, last = self.rows.index(row), len(self.rows) - 1
        if i != last:
            self.kv.move(i, last, self.rows[last].position)
            self.rows[i] = self.rows[last]
        self.rows.pop()

    def _first_pass(self, rows: list[Row]) -> list[torch.Tensor]:
        """The decoder on the window's whole prompt, its rows alone, as whisper's `PyTorchInference` runs
        it (the audio repeated per row, as `batching.decode_windows` hands it), bit for bit; the keys and
        values it caches go into the rows' slots."""
        window = rows[0].window
        tokens = torch.cat([r.request for r in rows])  # (n_rows, n_prompt)
        features = window.features.repeat_interleave(len(rows), dim=0)
        kv_cache, hooks = self.model.install_kv_cache_hooks()
        try:
            logits = decoder_logits(self.model, tokens, features, kv_cache)  # (n_rows, n_prompt, n_vocab)
        finally:
            for h in hooks:
                h.remove()
        n = tokens.shape[-1]
        for i, row in enumerate(rows):
            self.kv.write(self.rows.index(row), kv_cache, i, n)
            row.position = n
        return list(logits[:, None])  # each (1, n_prompt, n_vocab)

    def _next_pass(self, rows: list[Row]) -> list[torch.Tensor]:
        """Each row's new tokens (one, or a Live refresh's draft: several) at its own positions, in one
        pass over the packed slots (`slots.SlotPass`); rows with fewer new tokens are padded, and the
        padding is neither cached nor answered."""
        decoder = self.model.decoder
        new = [r.request[0, r.position:] for r in rows]
        counts = [len(t) for t in new]
        slot_of = {r: i for i, r in enumerate(self.rows)}
        at = self.kv.pass_over([slot_of[r] for r in rows], [r.position for r in rows], counts)
        if at.width == 1:
            tokens = torch.cat(new)[:, None]
        else:
            tokens = torch.full((len(rows), at.width), self.eot, dtype=new[0].dtype, device=new[0].device)
            for i, t in enumerate(new):
                tokens[i, : len(t)] = t
        x = decoder_states(self.model, tokens, slots=at)
        logits = unembed(decoder.ln(x), decoder.token_embedding.weight)  # (n, width, n_vocab)
        for r, c in zip(rows, counts):
            r.position += c
        self._shared = (logits, {r: i for i, r in enumerate(rows)})
        return [logits[i: i + 1, :c] for i, c in enumerate(counts)]  # each (1, new tokens, n_vocab)
