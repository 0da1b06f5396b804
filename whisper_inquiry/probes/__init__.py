"""Experiments that change the input or the encoder's states and measure what each token loses.

Attention shows where the model looks, not what it needed. Each probe here is a UI-free function
returning a frozen result: `occlusion.occlude` (slide a window over the audio), `surgery.operate`
(replace an encoder span with padding states) and `neurons.listen` (encoder MLP neurons that fire in
a span). Their variants of one clip run as one batch through `common.teacher_forced_logprobs` and
`common.decode_batch`, the two seams a batched engine can later take over.
"""
