"""Experiments that change one thing inside Whisper and watch the output move.

Each experiment is a UI-free function returning a frozen dataclass: the hallucination check, the head
lab (ablate, mask, sweep, rank), the alignment-head finder, the encoder lens and language per window.
Every variant of one clip goes through `interventions.decode_variants`, which batches them into one
`DecodingTask` run; it is the single seam a batched engine can take over later.
"""
