"""Continuous batching: windows join the decoder's batch at any step and leave it as soon as they end.

whisper's `DecodingTask.run` steps all rows of its batch together and returns when the last one ends,
so a short transcript waits for the longest one beside it, and a window that arrives a moment later
waits for the whole batch. Here every greedy window runs whisper's own `DecodingTask.run`, unchanged
(its logit filters, its decoder, its result), in a thread of its own; only its `Inference` role is
ours (`StepInference`): it posts the step's tokens and waits. The engine's worker (`Rows.step`) waits
until every window in flight has posted, then answers all of them with one decoder pass in which each
row sits at its own position. A window that ends leaves at once, with its result; a new one is encoded
and joins at the next step. Windows of other prompts, languages or tasks share the pass, since only the
tokens fed differ.

Exact per window: a row's first pass (its whole prompt at once) is whisper's own decoder on that row
alone, writing the keys and values it computes into the row's slot; every later pass feeds one token per
row, attends to the row's own cached keys (the longer rows' padding masked out) and its own audio, and
differs from the row decoded alone only by the rounding of a batched matmul.

Greedy and sampled windows of one row each go this way (n_group 1); beam search and best-of sampling,
whose rows reorder or come in groups, keep the lockstep batches of `batching.py`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch.nn.functional import scaled_dot_product_attention
from whisper.decoding import DecodingOptions, Inference

from .capture import RUN_LOCK
from .errors import CancelledError


def joins_rows(options: DecodingOptions | None) -> bool:
    """Whether a window of these options can be a row that joins and leaves on its own: one row per
    window (no beam, no best-of) and a language given (whisper would detect it in the task's thread)."""
    return (options is not None and options.task != "lang_id" and options.language is not None
            and (options.beam_size or options.best_of or 1) == 1)


@dataclass(eq=False)
class Row:
    """One window in flight: its thread runs whisper's loop; `request` is what it waits on."""

    start: Callable[[StepInference], object]  # runs the window's DecodingTask with the given inference
    finish: Callable[[object, int], None]  # hands the outcome (or the error) on, in the worker
    features: torch.Tensor  # (1, n_audio_ctx, n_audio_state)
    position: int = 0  # tokens whose keys and values the row's slot holds
    request: torch.Tensor | None = None  # the tokens it asks logits for
    reply: torch.Tensor | BaseException | None = None
    running: bool = True  # its thread is between requests
    outcome: object = None
    done: bool = False
    company: int = 0  # the most rows it shared a pass with, itself included
    cancelled: threading.Event | None = None
    thread: threading.Thread | None = field(default=None, repr=False)


class StepInference(Inference):
    """whisper's `Inference` role for one row: each call posts the tokens and waits for the worker's
    answer. `cross_kv` hands the row's cross-attention keys and values back (the analysis reuses them)."""

    def __init__(self, rows: Rows, row: Row):
        self.rows, self.row = rows, row

    def logits(self, tokens: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        return self.rows.ask(self.row, tokens)

    def cleanup_caching(self) -> None:
        pass  # the slot is freed by the worker when the row's thread ends

    def rearrange_kv_cache(self, source_indices) -> None:
        if list(source_indices) != list(range(len(source_indices))):
            raise NotImplementedError("a row of its own is never reordered")

    def cross_kv(self) -> dict:
        return self.rows.cross_kv(self.row)


class Rows:
    """The rows in flight and their key/value caches: slot i of every cache holds row i (kept packed).
    Only the engine's worker calls `admit` and `step`; the rows' threads call `ask`."""

    def __init__(self, model, capacity: int):
        self.model, self.capacity = model, capacity
        self.rows: list[Row] = []
        self.cond = threading.Condition()
        self.self_k: list[torch.Tensor] = []  # per layer (capacity, n_text_ctx, n_text_state)
        self.self_v: list[torch.Tensor] = []
        self.cross_k: list[torch.Tensor] = []  # per layer (capacity, n_audio_ctx, n_text_state)
        self.cross_v: list[torch.Tensor] = []
        self.steps: dict[int, int] = {}  # decoder passes by the number of rows they served

    def __len__(self) -> int:
        return len(self.rows)

    def room(self) -> int:
        return self.capacity - len(self.rows)

    def takes(self, dtype: torch.dtype) -> bool:
        """Whether a window of this dtype can join now: the caches hold one dtype (float16 on a GPU
        unless a request asked for float32, which waits until the rows in flight have ended)."""
        return not self.rows or self.self_k[0].dtype == dtype

    # --- the rows' side ---------------------------------------------------------------------------

    def ask(self, row: Row, tokens: torch.Tensor) -> torch.Tensor:
        with self.cond:
            row.request, row.running = tokens, False
            self.cond.notify_all()
            while row.reply is None:
                self.cond.wait()
            reply, row.reply = row.reply, None
        if isinstance(reply, BaseException):
            raise reply
        return reply

    def cross_kv(self, row: Row) -> dict:
        """The row's cross-attention keys and values, by module, as whisper's kv_cache holds them:
        (1, n_audio_ctx, n_text_state), copied (the slot will serve another row)."""
        i = self.rows.index(row)
        out = {}
        for layer, block in enumerate(self.model.decoder.blocks):
            out[block.cross_attn.key] = self.cross_k[layer][i: i + 1].clone()
            out[block.cross_attn.value] = self.cross_v[layer][i: i + 1].clone()
        return out

    def _run(self, row: Row, inference: StepInference) -> None:
        try:
            outcome = row.start(inference)
        except BaseException as e:  # noqa: BLE001 - the window's own failure, handed to its request
            outcome = e
        with self.cond:
            row.outcome, row.done, row.running = outcome, True, False
            self.cond.notify_all()

    # --- the worker's side ------------------------------------------------------------------------

    def admit(self, start: Callable[[StepInference], object], finish: Callable[[object, int], None],
              features: torch.Tensor, cancelled: threading.Event | None = None) -> None:
        """A new window: its thread starts whisper's loop, which asks for its first logits. When
        `cancelled` is set (its session closed), the row is answered with a CancelledError and leaves."""
        assert self.room() > 0
        self._make_room(len(self.rows) + 1, features.dtype, features.device)
        row = Row(start, finish, features, cancelled=cancelled)
        with self.cond:
            self.rows.append(row)
        row.thread = threading.Thread(target=self._run, args=(row, StepInference(self, row)),
                                      name="whisper-inquiry-row", daemon=True)
        row.thread.start()

    def step(self) -> None:
        """Wait until every row has asked or ended; answer them all in one decoder pass (a new row's
        first pass alone); then hand on the outcomes of the rows that ended."""
        with self.cond:
            while any(r.running for r in self.rows):
                self.cond.wait()
            ended = [r for r in self.rows if r.done]
            for r in ended:
                self._remove(r)
            for r in self.rows:
                if r.request is not None and r.cancelled is not None and r.cancelled.is_set():
                    r.request, r.reply, r.running = None, CancelledError("analysis cancelled"), True
            self.cond.notify_all()
            first = [r for r in self.rows if r.position == 0 and r.request is not None]
            later = [r for r in self.rows if r.position > 0 and r.request is not None]
        with RUN_LOCK, torch.no_grad():
            for r in first:
                self._answer([r], self._first_pass)
            if later:
                self._answer(later, self._next_pass)
        for r in ended:
            r.finish(r.outcome, r.company)

    def _answer(self, rows: list[Row], run: Callable[[list[Row]], torch.Tensor]) -> None:
        for r in rows:
            r.company = max(r.company, len(rows))
        try:
            logits = run(rows)
        except Exception as e:  # noqa: BLE001
            if len(rows) > 1:  # one bad row never fails the others: each alone
                for r in rows:
                    self._answer([r], run)
                return
            logits = [e]
        self.steps[len(rows)] = self.steps.get(len(rows), 0) + 1
        with self.cond:
            for r, out in zip(rows, logits):
                r.request, r.reply, r.running = None, out, True  # running from now: the next step waits for it
            self.cond.notify_all()  # they run their filters while the next pass computes

    def abort(self, error: BaseException) -> None:
        """The worker itself failed mid-step: every row in flight is answered with the error, its thread
        ends, and its request hears it; the worker goes on with none in flight."""
        with self.cond:
            for r in self.rows:
                r.request, r.reply = None, error
            self.cond.notify_all()
        for r in self.rows:
            r.thread.join()
        ended, self.rows = self.rows, []
        for r in ended:
            r.finish(r.outcome if isinstance(r.outcome, BaseException) else error, r.company)

    def _make_room(self, n: int, dtype: torch.dtype, device: torch.device) -> None:
        """Caches for at least n rows: grown by doubling up to `capacity`, so memory follows the most
        rows ever in flight at once (8 rows of tiny.en in float32: about 190 MB)."""
        have = self.self_k[0].shape[0] if self.self_k else 0
        if have >= n and self.self_k[0].dtype == dtype and self.self_k[0].device == device:
            return
        size = min(self.capacity, max(n, 2 * have, 2))
        d = self.model.dims

        def grown(old: list[torch.Tensor], length: int) -> list[torch.Tensor]:
            new = [torch.zeros((size, length, d.n_text_state), dtype=dtype, device=device)
                   for _ in range(d.n_text_layer)]
            for a, b in zip(new, old):
                if b.dtype == dtype and b.device == device:
                    a[: len(self.rows)] = b[: len(self.rows)]
            return new

        self.self_k, self.self_v = grown(self.self_k, d.n_text_ctx), grown(self.self_v, d.n_text_ctx)
        self.cross_k, self.cross_v = grown(self.cross_k, d.n_audio_ctx), grown(self.cross_v, d.n_audio_ctx)

    def _remove(self, row: Row) -> None:
        """Free the row's slot: the last row moves into it, so rows 0..n-1 stay packed."""
        i, last = self.rows.index(row), len(self.rows) - 1
        if i != last:
            n = self.rows[last].position
            for caches, length in ((self.self_k, n), (self.self_v, n),
                                   (self.cross_k, None), (self.cross_v, None)):
                for c in caches:
                    c[i, :length] = c[last, :length]
            self.rows[i] = self.rows[last]
        self.rows.pop()

    def _first_pass(self, rows: list[Row]) -> list[torch.Tensor]:
        """whisper's own decoder on the row's whole prompt, alone, as `PyTorchInference` runs it; the keys
        and values it caches go into the row's slot."""
        [row] = rows
        i = self.rows.index(row)
        kv_cache, hooks = self.model.install_kv_cache_hooks()
        try:
            logits = self.model.decoder(row.request, row.features, kv_cache=kv_cache)
        finally:
            for h in hooks:
                h.remove()
        n = row.request.shape[-1]
        for layer, block in enumerate(self.model.decoder.blocks):
            self.self_k[layer][i, :n] = kv_cache[block.attn.key][0]
            self.self_v[layer][i, :n] = kv_cache[block.attn.value][0]
            self.cross_k[layer][i] = kv_cache[block.cross_attn.key][0]
            self.cross_v[layer][i] = kv_cache[block.cross_attn.value][0]
        row.position = n
        return [logits]

    def _next_pass(self, rows: list[Row]) -> list[torch.Tensor]:
        """One new token per row, each at its own position, in one pass over the packed slots."""
        decoder = self.model.decoder
        assert all(r.request.shape[-1] == r.position + 1 for r in rows), "one new token per row and pass"
        slots = [self.rows.index(r) for r in rows]
        device = rows[0].features.device
        # the rows' slots: a view of the first n when they are all the rows (no copy of the caches)
        rows_at = torch.tensor(slots, device=device)
        index = slice(0, len(slots)) if slots == list(range(len(slots))) else rows_at
        positions = torch.tensor([r.position for r in rows], device=device)  # (n,)
        tokens = torch.stack([r.request[0, -1] for r in rows])[:, None]  # (n, 1)
        n_kv = max(r.position for r in rows) + 1
        sees = (torch.arange(n_kv, device=device)[None] <= positions[:, None])[:, None, None]  # (n, 1, 1, n_kv)
        dtype = self.self_k[0].dtype
        x = (decoder.token_embedding(tokens) + decoder.positional_embedding[positions][:, None]).to(dtype)  # (n, 1, d)
        for layer, block in enumerate(decoder.blocks):
            attn = block.attn
            h = block.attn_ln(x)
            q, k, v = attn.query(h), attn.key(h), attn.value(h)
            self.self_k[layer][rows_at, positions] = k[:, 0]
            self.self_v[layer][rows_at, positions] = v[:, 0]
            keys, values = self.self_k[layer][index, :n_kv], self.self_v[layer][index, :n_kv]
            x = x + attn.out(_attend(q, keys, values, attn.n_head, sees))
            cross = block.cross_attn
            h = block.cross_attn_ln(x)
            x = x + cross.out(_attend(cross.query(h), self.cross_k[layer][index], self.cross_v[layer][index],
                                      cross.n_head))
            x = x + block.mlp(block.mlp_ln(x))
        x = decoder.ln(x)
        logits = (x @ torch.transpose(decoder.token_embedding.weight.to(x.dtype), 0, 1)).float()  # (n, 1, n_vocab)
        for r in rows:
            r.position += 1
        return list(logits[:, None])  # each (1, 1, n_vocab), as whisper's loop expects of one row


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_head: int,
            mask: torch.Tensor | None = None) -> torch.Tensor:
    """whisper's scaled-dot-product attention (MultiHeadAttention.qkv_attention, SDPA branch), with a
    mask for keys past a row's own position."""
    q = q.view(*q.shape[:2], n_head, -1).permute(0, 2, 1, 3)  # (n, n_head, 1, d_head)
    k = k.view(*k.shape[:2], n_head, -1).permute(0, 2, 1, 3)  # (n, n_head, n_kv, d_head)
    v = v.view(*v.shape[:2], n_head, -1).permute(0, 2, 1, 3)
    a = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return a.permute(0, 2, 1, 3).flatten(start_dim=2)  # (n, 1, d)
