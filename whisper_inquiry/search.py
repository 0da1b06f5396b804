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

from .trace import Finalist, SearchTree

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


class RecordingDecoder(TokenDecoder):
    """Delegates every decision to whisper's own decoder and writes down what it saw and chose."""

    def __init__(self, inner: TokenDecoder, sample_begin: int, eot: int, top_k: int):
        self.inner = inner
        self.sample_begin = sample_begin
        self.eot = eot
        self.beam = isinstance(inner, BeamSearchDecoder)
        self.top_k = max(top_k, inner.beam_size + 1) if self.beam else top_k
        self.nodes: dict[Key, Node] = {(): Node(None, -1, 0.0, 0.0, "root")}
        self.prompt: list[int] = []

    def reset(self) -> None:
        self.inner.reset()

    def _key(self, row: torch.Tensor) -> Key:
        return tuple(row[self.sample_begin:].tolist())

    def update(self, tokens: torch.Tensor, logits: torch.Tensor, sum_logprobs: torch.Tensor):
        if not self.prompt:
            self.prompt = tokens[0, : self.sample_begin].tolist()
        logprobs = F.log_softmax(logits.float(), dim=-1)  # what whisper's decoders compute first
        top = logprobs.topk(self.top_k)
        p = logprobs.exp()
        # -sum p log p; suppressed tokens have log p = -inf and p = 0, so clamp to keep 0 * -inf out
        entropy = -(p * logprobs.clamp_min(-1e30)).sum(-1) / np.log(2)
        prefixes = [tuple(row) for row in tokens[:, self.sample_begin:].tolist()]
        before = sum_logprobs.clone() if self.beam else None
        finished_before = self._finished() if self.beam else set()
        for r, key in enumerate(prefixes):
            if key and key[-1] == self.eot:
                continue  # a finished greedy row only repeats end-of-text, at no cost
            node = self.nodes[key]
            node.top_ids, node.top_logprobs = top.indices[r].tolist(), top.values[r].tolist()
            node.entropy_bits = float(entropy[r])

        new_tokens, completed = self.inner.update(tokens, logits, sum_logprobs)

        if self.beam:
            self._record_beam(prefixes, before, top, new_tokens, finished_before)
        else:
            self._record_greedy(prefixes, logprobs, new_tokens, sum_logprobs)
        return new_tokens, completed

    def _add(self, key: Key, logprob: float, cum: float, status: str, rank: int) -> None:
        old = self.nodes.get(key)
        if old is None or old.status in ("pruned", "alternative"):
            self.nodes[key] = Node(key[:-1], key[-1], logprob, cum, status, rank)

    def _record_greedy(self, prefixes, logprobs, new_tokens, sum_logprobs) -> None:
        chosen_tokens = new_tokens[:, -1].tolist()
        for r, key in enumerate(prefixes):
            if key and key[-1] == self.eot:
                continue
            node = self.nodes[key]
            chosen = chosen_tokens[r]
            if chosen in node.top_ids:  # the usual case: its rank is its place among the top-k
                rank = node.top_ids.index(chosen)
                lp = node.top_logprobs[rank]
            else:  # sampled from the tail
                lp = float(logprobs[r, chosen])
                rank = int((logprobs[r] > lp).sum())
            cum = float(sum_logprobs[r])
            for i, (t, alt_lp) in enumerate(zip(node.top_ids, node.top_logprobs)):
                if t != chosen:
                    self._add(key + (t,), alt_lp, cum - lp + alt_lp, "alternative", i)
            self._add(key + (chosen,), lp, cum, "finished" if chosen == self.eot else "kept", rank)

    def _finished(self) -> set[Key]:
        seqs = getattr(self.inner, "finished_sequences", None) or []
        return {tuple(s[self.sample_begin:]) for group in seqs for s in group}

    def _record_beam(self, prefixes, before, top, new_tokens, finished_before) -> None:
        # whisper's BeamSearchDecoder.update keeps its candidate scores in local variables, so the same
        # candidates (top beam_size + 1 of each beam) are listed here and their fate read from its output
        n = self.inner.beam_size + 1
        kept = {self._key(row) for row in new_tokens}
        finished = self._finished() - finished_before
        for r, key in enumerate(prefixes):
            for i, (t, lp) in enumerate(zip(top.indices[r, :n].tolist(), top.values[r, :n].tolist())):
                child = key + (t,)
                status = "kept" if child in kept else "finished" if child in finished else "pruned"
                self._add(child, lp, float(before[r]) + lp, status, i)

    def finalize(self, tokens: torch.Tensor, sum_logprobs: torch.Tensor):
        return self.inner.finalize(tokens, sum_logprobs)


class RecordingRanker(MaximumLikelihoodRanker):
    """whisper's ranker, also keeping each finalist's score (the ranker computes them in a local)."""

    def __init__(self, length_penalty: float | None):
        super().__init__(length_penalty)
        self.finalists: list[tuple[list[int], float, int, float]] = []
        self.selected = -1

    def rank(self, tokens, sum_logprobs):
        selected = super().rank(tokens, sum_logprobs)
        for seq, lp in zip(tokens[0], sum_logprobs[0]):
            length = len(seq)
            penalty = length if self.length_penalty is None else ((5 + length) / 6) ** self.length_penalty
            self.finalists.append((seq.tolist(), float(lp), length, float(lp) / penalty))
        self.selected = int(selected[0])
        return selected


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
    )
