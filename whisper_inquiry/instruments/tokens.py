"""Tokens as a person reads them: the prompt's special tokens explained, each step with its runners-up."""

from __future__ import annotations

import math

from whisper.tokenizer import LANGUAGES, Tokenizer, get_tokenizer

from whisper_inquiry.instruments.search import RecordingDecoder
from whisper_inquiry.trace.schema import AUDIO_CTX_S, Alternative, PromptToken, TokenStep

TIME_PER_TIMESTAMP_S = AUDIO_CTX_S  # one timestamp token per encoder position


def tokenizer_for(multilingual: bool, num_languages: int = 99, task: str = "transcribe",
                  language: str | None = None) -> Tokenizer:
    """The one tokenizer factory: whisper's own (cached there). English-only models have no language or
    task tokens, so those arguments only shape a multilingual tokenizer's start-of-transcript sequence."""
    if not multilingual:
        return get_tokenizer(False)
    return get_tokenizer(True, num_languages=num_languages, language=language, task=task)


def token_text(tokenizer: Tokenizer, token: int) -> str:
    """The token as text; special and timestamp tokens keep their <|...|> names."""
    return tokenizer.decode_with_timestamps([token])


def meaning(tokenizer: Tokenizer, token: int, in_previous_text: bool) -> str:
    """What a prompt token tells the decoder, in a learner's words."""
    if token == tokenizer.sot_prev:
        return "previous text follows: the transcript so far, to keep style and names consistent"
    if in_previous_text:
        return "previous text"
    if token == tokenizer.sot:
        return "start of transcript"
    if token in tokenizer.all_language_tokens:
        code = tokenizer.decode_with_timestamps([token]).strip("<|>")
        return f"language: {LANGUAGES.get(code, code)}"
    if token == tokenizer.transcribe:
        return "task: transcribe (write what is said, in its language)"
    if token == tokenizer.translate:
        return "task: translate (write it in English)"
    if token == tokenizer.no_timestamps:
        return "no timestamps: text only"
    if token >= tokenizer.timestamp_begin:
        return "timestamp"
    return "forced prefix"


def describe_prompt(prompt: list[int], tokenizer: Tokenizer) -> list[PromptToken]:
    sot_at = prompt.index(tokenizer.sot) if tokenizer.sot in prompt else 0
    return [PromptToken(t, token_text(tokenizer, t), meaning(tokenizer, t, 0 < i < sot_at))
            for i, t in enumerate(prompt)]


def token_steps(decoder: RecordingDecoder, chosen: list[int], tokenizer: Tokenizer, top_k: int) -> list[TokenStep]:
    """Each generated token (and the closing end-of-text) with the distribution it was drawn from."""
    keys = [tuple(chosen[: i + 1]) for i in range(len(chosen))]
    eot_key = tuple(chosen) + (tokenizer.eot,)
    if eot_key in decoder.nodes:
        keys.append(eot_key)
    steps = []
    for key in keys:
        node, parent = decoder.nodes[key], decoder.nodes[key[:-1]]
        token = key[-1]
        alternatives = [Alternative(t, token_text(tokenizer, t), math.exp(lp), lp)
                        for t, lp in zip(parent.top_ids[:top_k], parent.top_logprobs[:top_k])]
        is_ts = token >= tokenizer.timestamp_begin
        steps.append(TokenStep(
            id=token, text=token_text(tokenizer, token), logprob=node.logprob, prob=math.exp(node.logprob),
            rank=node.rank, entropy_bits=parent.entropy_bits, alternatives=alternatives, is_timestamp=is_ts,
            timestamp_s=(token - tokenizer.timestamp_begin) * TIME_PER_TIMESTAMP_S if is_ts else None,
            is_eot=token == tokenizer.eot,
        ))
    return steps
