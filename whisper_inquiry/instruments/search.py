"""Record whisper's search as a tree, through its own decoding roles, without copying its loop.

`DecodingTask` hands every step's filtered logits to a `TokenDecoder` and the final candidates to a
`SequenceRanker`. `RecordingDecoder` wraps whichever decoder the task built: before each update it
notes the candidates that decoder will weigh (the same top-k of the same log-softmax), calls the
real `update`, and reads back what it kept and what it finished. Nodes are keyed by their token
sequence, as whisper's beam search keys its candidates, so identical prefixes merge as they do there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from whisper.decoding import BeamSearchDecoder, MaximumLikelihoodRanker, TokenDecoder

from whisper_inquiry.trace.schema import Finalist, SearchTree

Key = tuple[int, ...]


@dataclass
class Node:
    parent: Key | None
    token: int
    logprob: float
    cum_logprob: float
    status: str
    rank: int = -1
    # the distribution this node's prefix produced, when it was expanded
    top_ids: list[int] = field(default_factory=list)
    top_logprobs: list[float] = field(default_factory=list)
    entropy_bits: float = float("nan")


def distribution(logprobs: torch.Tensor, top_k: int):
    """The top-k and the entropy (bits) of each row's next-token distribution, left on the device."""
    p = logprobs.exp()
    # -sum p log p; suppressed tokens have log p = -inf and p = 0, so clamp to keep 0 * -inf out
    return logprobs.topk(top_k), -(p * logprobs.clamp_min(-1e30)).sum(-1) / np.log(2)


@dataclass
class _Step:
    """One decoding step of one decoder's rows, as device tensors: read back once the window is done,
    so recording never makes the GPU wait at a step (whisper's loop already waits once, for its end check)."""

    tokens: torch.Tensor  # (rows, length) the prefixes the decoder weighed
    top_values: torch.Tensor
    top_indices: torch.Tensor
    entropy: torch.Tensor
    before: torch.Tensor | None = None  # beam: each row's score before the step
    chosen: torch.Tensor | None = None  # greedy: the token each row took; beam: the rows kept (whole)
    after: torch.Tensor | None = None  # greedy: each row's score after the step
    tail: torch.Tensor | None = None  # sampling: (rows, 2) log-probability and rank of the token drawn
    finished: set = field(default_factory=set)  # beam: sequences this step finished (whisper's own lists)


class RecordingDecoder(TokenDecoder):
    """Delegates every decision to whisper's own decoder and writes down what it saw and chose.

    Each step's record stays on the model's device; `finalize` (whisper calls it once, after its loop)
    moves all of them to the CPU in one transfer and builds the nodes, so the nodes exist once the
    window's `DecodingTask.run` has returned."""

    def __init__(self, inner: TokenDecoder, sample_begin: int, eot: int, top_k: int, group: int = 0):
        self.inner = inner
        self.group = group  # which window of whisper's batch these rows are (its finished list)
        self.sample_begin = sample_begin
        self.eot = eot
        self.beam = isinstance(inner, BeamSearchDecoder)
        self.sampling = not self.beam and getattr(inner, "temperature", 0) > 0
        self.top_k = max(top_k, inner.beam_size + 1) if self.beam else top_k
        self.nodes: dict[Key, Node] = {(): Node(None, -1, 0.0, 0.0, "root")}
        self.prompt: list[int] = []
        self._steps: list[_Step] = []

    def reset(self) -> None:
        self.inner.reset()

    def update(self, tokens: torch.Tensor, logits: torch.Tensor, sum_logprobs: torch.Tensor):
        logprobs = F.log_softmax(logits.float(), dim=-1)  # what whisper's decoders compute first
        top, entropy = distribution(logprobs, self.top_k)
        step = self.before(tokens, logprobs, top.values, top.indices, entropy, sum_logprobs)
        new_tokens, completed = self.inner.update(tokens, logits, sum_logprobs)
        self.after(step, new_tokens, sum_logprobs)
        return new_tokens, completed

    def before(self, tokens: torch.Tensor, logprobs: torch.Tensor, top_values: torch.Tensor,
               top_indices: torch.Tensor, entropy: torch.Tensor, sum_logprobs: torch.Tensor) -> tuple:
        """Note this decoder's rows (of a step that may hold other requests' rows too) before whisper's
        decoder weighs them (on the device; nothing is read back); returns what `after` needs."""
        step = _Step(tokens, top_values, top_indices, entropy)
        if self.beam:
            step.before = sum_logprobs.clone()  # whisper adds to it in place
            step.finished = self._finished()
        return step, logprobs

    def after(self, seen: tuple, new_tokens: torch.Tensor, sum_logprobs: torch.Tensor) -> None:
        """Note what whisper's decoder kept and finished, for this decoder's rows."""
        step, logprobs = seen
        if self.beam:
            step.chosen, step.finished = new_tokens, self._finished() - step.finished
        else:
            step.chosen, step.after = new_tokens[:, -1], sum_logprobs.clone()
            if self.sampling:  # a drawn token may lie outside the top-k: keep its own log-probability and rank
                lp = logprobs.gather(1, step.chosen[:, None])
                step.tail = torch.cat([lp, (logprobs > lp).sum(-1, keepdim=True).to(lp.dtype)], 1)
        self._steps.append(step)

    def flush(self) -> None:
        """Move every step's record to the CPU in one transfer and build the nodes from them."""
        steps, self._steps = self._steps, []
        if not steps:
            return
        parts = [t for s in steps for t in _tensors(s)]
        flat = torch.cat([t.reshape(-1).to(torch.float64) for t in parts]).cpu().numpy()
        host, at = [], 0
        for t in parts:
            host.append(flat[at: at + t.numel()].reshape(t.shape))
            at += t.numel()
        at = 0
        for s in steps:
            n = len(_tensors(s))
            self._record(s, *host[at: at + n])
            at += n

    def _record(self, step: _Step, tokens, top_values, top_indices, entropy, *rest) -> None:
        tokens = tokens.astype(np.int64)
        prefixes = [tuple(row) for row in tokens[:, self.sample_begin:].tolist()]
        if not self.prompt:
            self.prompt = tokens[0, : self.sample_begin].tolist()
        top_ids, top_logprobs = top_indices.astype(np.int64).tolist(), top_values.tolist()
        entropies = entropy.tolist()
        for r, key in enumerate(prefixes):
            if key and key[-1] == self.eot:
                continue  # a finished greedy row only repeats end-of-text, at no cost
            node = self.nodes[key]
            node.top_ids, node.top_logprobs, node.entropy_bits = top_ids[r], top_logprobs[r], entropies[r]
        if self.beam:
            before, kept_rows = rest
            kept = {tuple(row) for row in kept_rows.astype(np.int64)[:, self.sample_begin:].tolist()}
            self._record_beam(prefixes, before.tolist(), kept, step.finished)
        else:
            chosen, after = rest[0].astype(np.int64).tolist(), rest[1].tolist()
            tail = rest[2].tolist() if len(rest) > 2 else None
            self._record_greedy(prefixes, chosen, after, tail)

    def record_row(self, tokens: list[int], steps: list[tuple[list[float], int, int]]) -> None:
        """One greedy row's steps as the batched step read them back (batched.decide), recorded at once
        when its window ends. `tokens`: the prompt and every token written. Each step is a flat list
        (the token chosen, the score after it, the entropy in bits, and, where the two offsets that come
        with it say, the top-k log-probabilities followed by their ids, and the drawn token's
        log-probability and rank, if any: -1), which is what `_record` reads from a step's tensors."""
        k = self.top_k
        if not self.prompt:
            self.prompt = tokens[: self.sample_begin]
        sampled = tuple(tokens[self.sample_begin:])
        for i, (step, top_at, tail_at) in enumerate(steps):
            key = sampled[:i]
            node = self.nodes[key]
            node.top_logprobs = step[top_at: top_at + k]
            node.top_ids = [int(t) for t in step[top_at + k: top_at + 2 * k]]
            node.entropy_bits = step[2]
            tail = [step[tail_at: tail_at + 2]] if tail_at >= 0 else None
            self._record_greedy([key], [int(step[0])], [step[1]], tail)

    def _add(self, key: Key, logprob: float, cum: float, status: str, rank: int) -> None:
        old = self.nodes.get(key)
        if old is None or old.status in ("pruned", "alternative"):
            self.nodes[key] = Node(key[:-1], key[-1], logprob, cum, status, rank)

    def _record_greedy(self, prefixes, chosen_tokens, sum_logprobs, tail) -> None:
        for r, key in enumerate(prefixes):
            if key and key[-1] == self.eot:
                continue
            node = self.nodes[key]
            chosen = chosen_tokens[r]
            if chosen in node.top_ids:  # the usual case: its rank is its place among the top-k
                rank = node.top_ids.index(chosen)
                lp = node.top_logprobs[rank]
            elif tail is not None:  # sampled from the tail
                lp, rank = tail[r][0], int(tail[r][1])
            else:  # greedy outside its own top-k: only NaN logits (an overflow) do that
                lp, rank = float("nan"), -1
            cum = sum_logprobs[r]
            for i, (t, alt_lp) in enumerate(zip(node.top_ids, node.top_logprobs)):
                if t != chosen:
                    self._add(key + (t,), alt_lp, cum - lp + alt_lp, "alternative", i)
            self._add(key + (chosen,), lp, cum, "finished" if chosen == self.eot else "kept", rank)

    def _finished(self) -> set[Key]:
        seqs = getattr(self.inner, "finished_sequences", None) or []
        mine = seqs[self.group] if self.group < len(seqs) else {}
        return {tuple(s[self.sample_begin:]) for s in mine}

    def _record_beam(self, prefixes, before, kept, finished) -> None:
        # whisper's BeamSearchDecoder.update keeps its candidate scores in local variables, so the same
        # candidates (top beam_size + 1 of each beam) are listed here and their fate read from its output
        n = self.inner.beam_size + 1
        for r, key in enumerate(prefixes):
            node = self.nodes[key]
            for i, (t, lp) in enumerate(zip(node.top_ids[:n], node.top_logprobs[:n])):
                child = key + (t,)
                status = "kept" if child in kept else "finished" if child in finished else "pruned"
                self._add(child, lp, before[r] + lp, status, i)

    def finalize(self, tokens: torch.Tensor, sum_logprobs: torch.Tensor):
        out = self.inner.finalize(tokens, sum_logprobs)
        self.flush()
        return out


def _tensors(step: _Step) -> list[torch.Tensor]:
    """A step's tensors in the order `RecordingDecoder._record` takes them."""
    rest = [step.before, step.chosen] if step.before is not None else [step.chosen, step.after, step.tail]
    return [step.tokens, step.top_values, step.top_indices, step.entropy, *(t for t in rest if t is not None)]


class BatchDecoder(TokenDecoder):
    """One whisper decoder deciding a batch of windows; each request's rows recorded by its own
    RecordingDecoder, so two requests never share a node (the tree keys nodes by token prefix)."""

    def __init__(self, inner: TokenDecoder, recorders: list[tuple[slice, RecordingDecoder]]):
        self.inner = inner
        self.recorders = recorders

    def reset(self) -> None:
        self.inner.reset()

    def update(self, tokens: torch.Tensor, logits: torch.Tensor, sum_logprobs: torch.Tensor):
        logprobs = F.log_softmax(logits.float(), dim=-1)
        by_k = {k: distribution(logprobs, k) for k in {r.top_k for _, r in self.recorders}}
        seen = []
        for rows, r in self.recorders:
            top, entropy = by_k[r.top_k]
            seen.append(r.before(tokens[rows], logprobs[rows], top.values[rows], top.indices[rows],
                                 entropy[rows], sum_logprobs[rows]))
        new_tokens, completed = self.inner.update(tokens, logits, sum_logprobs)
        for (rows, r), s in zip(self.recorders, seen):
            r.after(s, new_tokens[rows], sum_logprobs[rows])
        return new_tokens, completed

    def finalize(self, tokens: torch.Tensor, sum_logprobs: torch.Tensor):
        out = self.inner.finalize(tokens, sum_logprobs)
        for _, r in self.recorders:
            r.flush()
        return out


class RecordingRanker(MaximumLikelihoodRanker):
    """whisper's ranker, also keeping each finalist's score (the ranker computes them in a local);
    one list per window of the batch (`group`)."""

    def __init__(self, length_penalty: float | None, group: int = 0):
        super().__init__(length_penalty)
        self.group = group
        self.finalists: list[tuple[list[int], float, int, float]] = []
        self.selected = -1
        self.groups: list[tuple[list, int]] = []

    def rank(self, tokens, sum_logprobs):
        selected = super().rank(tokens, sum_logprobs)
        for group, (seqs, lps) in enumerate(zip(tokens, sum_logprobs)):
            finalists = []
            for seq, lp in zip(seqs, lps):
                length = len(seq)
                penalty = length if self.length_penalty is None else ((5 + length) / 6) ** self.length_penalty
                finalists.append((seq.tolist(), float(lp), length, float(lp) / penalty))
            self.groups.append((finalists, int(selected[group])))
        self.finalists, self.selected = self.groups[self.group]
        return selected

    def of_group(self, group: int) -> RecordingRanker:
        """The finalists of one window of the batch, as a ranker of its own (for build_tree)."""
        view = RecordingRanker(self.length_penalty, group)
        view.groups = self.groups
        view.finalists, view.selected = self.groups[group]
        return view


def build_tree(decoder: RecordingDecoder, ranker: RecordingRanker, chosen: list[int], strategy: str,
               text_of) -> SearchTree:
    """Flatten the recorded nodes (creation order: parents first) into the Trace's SearchTree."""
    keys = list(decoder.nodes)
    index = {k: i for i, k in enumerate(keys)}
    nodes = [decoder.nodes[k] for k in keys]
    path: list[int] = []
    for i in range(1, len(chosen) + 2):
        key = tuple(chosen[:i]) if i <= len(chosen) else tuple(chosen) + (decoder.eot,)
        if key in index:
            path.append(index[key])
    finalists = []
    for i, (seq, lp, length, score) in enumerate(ranker.finalists):
        key = tuple(seq) + (decoder.eot,)
        node = index.get(key, index.get(tuple(seq), 0))
        finalists.append(Finalist(node, text_of(seq), lp, length, score, i == ranker.selected))
    return SearchTree(
        strategy=strategy,
        parent=[index[n.parent] if n.parent is not None else -1 for n in nodes],
        token=[n.token for n in nodes],
        text=[text_of([n.token]) if n.token >= 0 else "start" for n in nodes],
        step=[len(k) for k in keys],
        logprob=[n.logprob for n in nodes],
        cum_logprob=[n.cum_logprob for n in nodes],
        status=[n.status for n in nodes],
        chosen_path=path,
        finalists=finalists,
        rank=[-1 if strategy == "beam" else n.rank for n in nodes],
    )
