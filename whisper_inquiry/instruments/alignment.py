"""Cross-attention, word timings and the logit lens, from one teacher-forced decoder pass.

After decoding, the chosen tokens are fed back through the decoder in one pass (as
`whisper.timing.find_alignment` does) with the exact context the decoder had: previous-text prompt,
start-of-transcript sequence and every generated token. Hooks read each layer's cross-attention
queries and keys and each block's residual stream; fused attention stays on, so nothing global
changes. Word timings then follow whisper's recipe on its alignment heads: normalise, median filter,
dynamic time warping, merge punctuation.
"""

from __future__ import annotations

import numpy as np
import torch
from whisper.timing import WordTiming, dtw, median_filter, merge_punctuations
from whisper.tokenizer import Tokenizer

from whisper_inquiry.engine.decoder import decoder_states
from whisper_inquiry.instruments import points
from whisper_inquiry.instruments.attention import scaled, split_heads
from whisper_inquiry.instruments.capture import Hooks
from whisper_inquiry.trace.schema import AUDIO_CTX_S, CrossAttention, LogitLens, Word

PREPEND = "\"'“¿([{-"
APPEND = "\"'.。,，!！?？:：”)]}、"


def _pool_factor(n_layer: int, n_head: int, n_tokens: int, n_ctx: int, budget_mb: float) -> int:
    full = n_layer * n_head * n_tokens * n_ctx * 2  # bytes in float16
    for f in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 25, 30, 50, 60, 75):
        if n_ctx % f == 0 and full / f <= budget_mb * 1e6:
            return f
    return 75


def teacher_forced(model, audio_features: torch.Tensor, cross_kv: dict, context: list[int], sample_begin: int,
                   budget_mb: float) -> tuple[CrossAttention, torch.Tensor, np.ndarray]:
    """Cross-attention of each generated token (rows predict context[sample_begin:]), its raw scores,
    and the residual stream after every block (n_layer, n_tokens, n_state) for the logit lens.

    `cross_kv` maps each cross-attention key/value module to the output it gave while decoding, so
    those projections of 1500 audio positions are not computed twice."""
    decoder = model.decoder
    n_head = model.dims.n_text_head
    inputs = torch.tensor([context[:-1]], device=audio_features.device)
    targets = context[sample_begin:]
    rows = slice(sample_begin - 1, len(context) - 1)
    with Hooks(model) as hooks, torch.no_grad():
        points.install(hooks, model, points.TEACHER_FORCED)
        # the decoder without its final projection to the vocabulary, which nothing here needs, and with
        # the decode's own cross-attention keys and values as the blocks' cache
        residuals, scores = [], []

        def keep(i: int, x: torch.Tensor) -> None:
            residuals.append(x[0, rows])
            q = scaled(hooks[points.cross_query(i)][0, rows].float(), n_head)
            k = scaled(cross_kv[decoder.blocks[i].cross_attn.key][0].float(), n_head)
            scores.append(split_heads(q, n_head) @ split_heads(k, n_head).transpose(-1, -2))

        decoder_states(model, inputs, audio_features, cross_kv, offset=0, on_block=keep)
        scores_t = torch.stack(scores)  # (n_layer, n_head, n_tokens, n_ctx)
        weights = scores_t.softmax(-1)
        n_layer, _, n_tokens, n_ctx = weights.shape
        pool = _pool_factor(n_layer, n_head, n_tokens, n_ctx, budget_mb)
        pooled = weights.reshape(n_layer, n_head, n_tokens, n_ctx // pool, pool).sum(-1)
    heads = model.alignment_heads.to_dense().nonzero().tolist()
    cross = CrossAttention(pooled.half().cpu().numpy(), pool, targets, heads)
    return cross, scores_t, torch.stack(residuals).half().cpu().numpy()


@torch.no_grad()
def logit_lens(model, residuals: np.ndarray, targets: list[int], tokenizer: Tokenizer) -> LogitLens:
    """Each layer's residual stream through the final layer norm and the (tied) token embedding.

    Computed when a view asks: it costs n_layer times the decoder's own output projection."""
    emb = model.decoder.token_embedding.weight
    top_ids, top_probs, target_probs = [], [], []
    idx = torch.arange(len(targets))
    for x in torch.from_numpy(residuals).to(emb.device):
        probs = (model.decoder.ln(x.float()).float() @ emb.float().T).softmax(-1)  # (n_tokens, n_vocab)
        p, i = probs.max(-1)
        top_ids.append(i)
        top_probs.append(p)
        target_probs.append(probs[idx, torch.tensor(targets)])
    ids = torch.stack(top_ids).cpu().numpy().astype(np.int32)
    return LogitLens(
        top_ids=ids,
        top_texts=[[tokenizer.decode_with_timestamps([int(t)]) for t in row] for row in ids],
        top_probs=torch.stack(top_probs).cpu().numpy().astype(np.float32),
        target_probs=torch.stack(target_probs).cpu().numpy().astype(np.float32),
    )


def word_timings(scores: torch.Tensor, heads: list[list[int]], targets: list[int], token_probs: list[float],
                 tokenizer: Tokenizer, content_frames: int, start_s: float,
                 medfilt_width: int = 7) -> tuple[list[Word], np.ndarray | None]:
    """DTW over the alignment heads, on the rows that predict text tokens (and the final end-of-text).

    Returns the words and the warping path as (n_points, 2) int32 pairs of
    (index into `targets`, audio position)."""
    text_rows = [i for i, t in enumerate(targets) if t < tokenizer.eot]
    text_tokens = [targets[i] for i in text_rows]
    if not text_tokens or targets[-1] != tokenizer.eot:
        return [], None
    keep = text_rows + [len(targets) - 1]
    weights = torch.stack([scores[layer, head] for layer, head in heads])[:, keep, : content_frames // 2]
    weights = weights.softmax(-1)
    std, mean = torch.std_mean(weights, dim=-2, keepdim=True, unbiased=False)
    weights = median_filter((weights - mean) / std, medfilt_width)
    matrix = weights.mean(0)
    text_indices, time_indices = dtw(-matrix)
    keep_rows = np.array(keep)
    path = np.stack([keep_rows[text_indices], time_indices], axis=1).astype(np.int32)
    words, word_tokens = tokenizer.split_to_word_tokens(text_tokens + [tokenizer.eot])
    if len(word_tokens) <= 1:
        return [], path
    boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
    jumps = np.pad(np.diff(text_indices), (1, 0), constant_values=1).astype(bool)
    jump_times = time_indices[jumps] * AUDIO_CTX_S
    probs = [token_probs[i] for i in text_rows]
    timings = [
        WordTiming(w, toks, float(s), float(e), float(np.mean(probs[i:j])))
        for w, toks, s, e, i, j in zip(words, word_tokens, jump_times[boundaries[:-1]],
                                       jump_times[boundaries[1:]], boundaries[:-1], boundaries[1:])
    ]
    merge_punctuations(timings, PREPEND, APPEND)
    words = [Word(t.word, start_s + t.start, start_s + t.end, t.probability) for t in timings if t.word]
    return words, path
