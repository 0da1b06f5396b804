"""The tokenizer as a learner meets it: text to tokens and back, special tokens, the prompt format."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from whisper.tokenizer import LANGUAGES

from whisper_inquiry.instruments.tokens import meaning, tokenizer_for


@dataclass(frozen=True)
class Piece:
    id: int
    text: str
    bytes_hex: str


@dataclass(frozen=True)
class Tokenized:
    pieces: list[Piece]
    round_trip: str
    vocabulary: str  # "gpt2" (English-only models) or "multilingual"
    n_vocab: int


def tokenize(text: str, multilingual: bool) -> Tokenized:
    """How Whisper's byte-level BPE cuts `text`; pieces that end inside a UTF-8 character show as bytes."""
    tok = tokenizer_for(multilingual)
    ids = tok.encode(text)
    pieces = []
    for i in ids:
        raw = tok.encoding.decode_single_token_bytes(i)
        pieces.append(Piece(i, raw.decode("utf-8", errors="replace"), raw.hex(" ")))
    return Tokenized(pieces, tok.decode(ids), tok.encoding.name, tok.encoding.n_vocab)


def vocabulary_sizes() -> dict[str, int]:
    return {"English-only (gpt2)": tokenizer_for(False).encoding.n_vocab,
            "multilingual": tokenizer_for(True).encoding.n_vocab}


def special_tokens(multilingual: bool, num_languages: int = 99) -> list[tuple[int, str, str]]:
    """(id, text, meaning) of the control tokens a model of this kind knows, languages folded into one row."""
    tok = tokenizer_for(multilingual, num_languages)
    rows = []
    for token in (tok.eot, tok.sot, tok.sot_prev, tok.sot_lm, tok.no_speech, tok.no_timestamps):
        if token is not None:
            rows.append((token, tok.decode_with_timestamps([token]), _special_meaning(tok, token)))
    if multilingual:
        n_langs = len(tok.all_language_tokens)
        rows.append((tok.sot + 1, f"<|en|> ... ({n_langs} languages)", "language of the speech"))
        rows.append((tok.transcribe, "<|transcribe|>", meaning(tok, tok.transcribe, False)))
        rows.append((tok.translate, "<|translate|>", meaning(tok, tok.translate, False)))
    rows.append((tok.timestamp_begin, "<|0.00|> ... <|30.00|>", "timestamps, one every 20 ms (1501 tokens)"))
    return rows


def _special_meaning(tok, token: int) -> str:
    return {
        tok.eot: "end of text: the decoder stops",
        tok.sot_lm: "start of language-model text (unused in transcription)",
        tok.no_speech: "no speech: its probability at the first step is the no-speech probability",
    }.get(token) or meaning(tok, token, False)


def prompt_format(multilingual: bool, language: str = "en", task: str = "transcribe",
                  timestamps: bool = True, previous: str = "") -> list[tuple[int, str, str]]:
    """The tokens the decoder is given before it writes anything, with their meanings."""
    tok = tokenizer_for(multilingual, task=task, language=language)
    seq = list(tok.sot_sequence) if timestamps else list(tok.sot_sequence_including_notimestamps)
    if previous.strip():
        seq = [tok.sot_prev, *tok.encode(" " + previous.strip())] + seq
    sot_at = seq.index(tok.sot)
    return [(t, tok.decode_with_timestamps([t]), meaning(tok, t, 0 < i < sot_at)) for i, t in enumerate(seq)]


def embeddings(model, ids: list[int]) -> np.ndarray:
    """Rows of the decoder's token embedding table (n_ids, n_text_state) float32: the vector each token starts as."""
    weight = model.decoder.token_embedding.weight
    return weight[ids].detach().float().cpu().numpy()


def language_name(code: str) -> str:
    return LANGUAGES.get(code, code).title()
