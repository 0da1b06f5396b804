"""Ending a decode that has started repeating itself: Live's quick look, not whisper's transcribe.

A greedy decode can fall into a loop ("going to be going to be ...") and write until its sample length,
224 tokens: on this CPU beside three other listeners, one such refresh took 6.5 s where a sentence takes
2 (docs/performance.md, "Live listeners"). whisper.transcribe notices the loop only afterwards (the
compression ratio) and decodes the window again at a higher temperature; Live decodes once, so a
listener's window that loops is ended instead, once its last `SPAN` tokens are one phrase of at most
`LONGEST` tokens said over and over (at least four times). Speech that repeats a phrase of its own that
often, back to back, is cut there too, which is why this is Live's rule and not the analyses'.

The rule is a whisper logit filter (`StopRepeating`: the next token must be end-of-text) for windows in
whisper's own loop, and the same test on the tokens written (`repeating`) in the batched step, so a
window ends at the same token in either lane.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from whisper.decoding import LogitFilter

SPAN = 24  # tokens that must all be one phrase repeated
LONGEST = 6  # the longest phrase: SPAN // LONGEST = 4 repetitions at least


def repeating(written: Sequence[int], span: int = SPAN, longest: int = LONGEST) -> bool:
    """Whether the last `span` tokens written are one phrase of at most `longest` tokens, repeated."""
    n = len(written)
    if n < span:
        return False
    tail = list(written[n - span:])
    return any(tail[p:] == tail[:-p] for p in range(1, longest + 1))


class StopRepeating(LogitFilter):
    """whisper's loop: a row whose text has started `repeating` can write only end-of-text next."""

    def __init__(self, sample_begin: int, eot: int):
        self.sample_begin, self.eot = sample_begin, eot

    def apply(self, logits: torch.Tensor, tokens: torch.Tensor) -> None:
        for i, row in enumerate(tokens[:, self.sample_begin:].tolist()):
            if repeating(row):
                end(logits, i, self.eot)


def end(logits: torch.Tensor, row: int, eot: int) -> None:
    """Row `row` of `logits` (rows, n_vocab) allows end-of-text only, in place."""
    logits[row] = -float("inf")
    logits[row, eot] = 0.0
