"""Experiments that change one thing inside Whisper, or in its input, and watch the output move.

Each is a UI-free function returning a frozen dataclass. Inside the model: the hallucination check, the
head lab (ablate, mask, sweep, rank), the alignment-head finder, the encoder lens and language per
window. On the input and the encoder's states (attention shows where the model looks, not what it
needed): `occlusion.occlude` slides a window over the audio, `surgery.operate` replaces an encoder span
with padding states, `neurons.listen` finds encoder MLP neurons that fire in a span. Every variant of one
clip runs as one batch: `interventions.decode_variants` for the first group, `scoring.decode_batch` and
`scoring.teacher_forced_logprobs` for the second. They hold the model's lock (`capture.model_lock`)
while they use it; the app runs them as jobs of the engine's worker (the engine's `run`), whose rows in
flight step between their chunks.
"""
