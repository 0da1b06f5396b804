"""Encoder self-attention: per-head summaries and thumbnails now, any full head on demand.

The run itself keeps PyTorch's fused attention (SDPA), which never materialises the weights; hooks
record each layer's queries and keys instead, and the weights are rebuilt here as
softmax(q_h k_h^T) exactly as openai-whisper's non-fused path computes them. One layer is expanded
at a time, so memory peaks at one (n_head, n_ctx, n_ctx) block.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from whisper_inquiry.instruments import points
from whisper_inquiry.instruments.capture import Hooks
from whisper_inquiry.trace.arrays import block_mean
from whisper_inquiry.trace.schema import AUDIO_CTX_S, Activation, EncoderAttention, HeadSummaries, Stats

POOLED_SIZE = 100  # thumbnail cells per side: 1500 positions -> 15 per cell (0.3 s)


def split_heads(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """(n_ctx, n_state) -> (n_head, n_ctx, d_head), as MultiHeadAttention.qkv_attention splits them."""
    n_ctx, n_state = x.shape
    return x.view(n_ctx, n_head, n_state // n_head).permute(1, 0, 2)


def scaled(x: torch.Tensor, n_head: int) -> torch.Tensor:
    """Whisper scales q and k each by d_head**-0.25 before their product."""
    return x * (x.shape[-1] // n_head) ** -0.25


def head_from_qk(qk: np.ndarray, n_head: int, head: int) -> np.ndarray:
    """One head's (n_ctx, n_ctx) float32 attention from a layer's stored, scaled (2, n_ctx, n_state) q and k."""
    q = split_heads(torch.from_numpy(np.asarray(qk[0], dtype=np.float32)), n_head)[head]
    k = split_heads(torch.from_numpy(np.asarray(qk[1], dtype=np.float32)), n_head)[head]
    return torch.softmax(q @ k.T, dim=-1).numpy()


def recompute_head(model, mel: np.ndarray, layer: int, head: int) -> np.ndarray:
    """One head's full attention by re-running the encoder, for traces too big to keep q and k."""
    query, key = points.encoder_query(layer), points.encoder_key(layer)
    with Hooks(model) as hooks, torch.no_grad():
        hooks.output(query, model.get_submodule(query))
        hooks.output(key, model.get_submodule(key))
        model.encoder(torch.from_numpy(mel)[None].to(model.device))
        q, k = hooks[query][0].float(), hooks[key][0].float()
    n_head = model.dims.n_audio_head
    qk = torch.stack([scaled(q, n_head), scaled(k, n_head)]).cpu().numpy()
    return head_from_qk(qk, n_head, head)


@functools.lru_cache(maxsize=2)  # one per context length in use; 9 MB each for 1500 positions
def _distance(n_ctx: int) -> torch.Tensor:
    idx = torch.arange(n_ctx, dtype=torch.float32)
    return (idx[:, None] - idx[None, :]).abs()  # (n_ctx, n_ctx)


def content_positions(content_s: float, n_ctx: int = 1500) -> int:
    """Encoder positions that hold a window's own audio (at least one), the rest being the 30 s padding."""
    return min(n_ctx, max(1, math.ceil(round(content_s / AUDIO_CTX_S, 6))))


def head_summaries(qs: list[torch.Tensor], ks: list[torch.Tensor], n_head: int, n_content: int | None = None,
                   chunk: int = 150) -> HeadSummaries:
    """Thumbnails, entropy and mean distance of every head, from per-layer (n_ctx, n_state) q and k
    that are already scaled by d_head**-0.25. Entropy and distance average over the first `n_content`
    query positions (the audio's own frames; all of them when None), the thumbnails cover the window.

    Query rows go `chunk` at a time so the working set stays in cache (3x faster than whole heads
    here), and every statistic is one multiply-and-sum over the weights."""
    n_ctx = qs[0].shape[0]
    n_content = n_ctx if n_content is None else n_content
    cell = n_ctx // POOLED_SIZE
    assert n_ctx % chunk == 0 and chunk % cell == 0
    device = qs[0].device
    distance = _distance(n_ctx).to(device)
    # three working buffers reused for every chunk: fresh multi-megabyte tensors would each be a new
    # mapping from the OS, and their page faults cost more than the arithmetic here
    x, p, tmp = (torch.empty(n_head, chunk, n_ctx, device=device) for _ in range(3))
    pooled, entropy, dist = [], [], []
    with torch.no_grad():
        for q, k in zip(qs, ks):
            qh = split_heads(q.float(), n_head)
            kt = split_heads(k.float(), n_head).transpose(-1, -2).contiguous()
            ent = torch.empty(n_head, n_ctx, device=device)
            far = torch.empty(n_head, n_ctx, device=device)
            thumb = torch.empty(n_head, POOLED_SIZE, POOLED_SIZE, device=device)
            for s in range(0, n_ctx, chunk):
                rows = slice(s, s + chunk)
                torch.matmul(qh[:, rows], kt, out=x)  # (n_head, chunk, n_ctx) scores
                x.sub_(x.amax(-1, keepdim=True))
                torch.exp(x, out=p)
                total = p.sum(-1)
                # H = -sum p log p with log p = x - log(total): a multiply-sum, no logarithm pass
                ent[:, rows] = total.log() - torch.mul(p, x, out=tmp).sum(-1) / total
                p.div_(total[..., None])
                far[:, rows] = torch.mul(p, distance[rows], out=tmp).sum(-1)
                # block-mean over query rows, block-sum over key columns: each thumbnail row sums to one
                blocks = p.view(n_head, chunk // cell, cell, n_ctx).mean(2)
                thumb[:, s // cell:(s + chunk) // cell] = blocks.view(n_head, chunk // cell, POOLED_SIZE, cell).sum(-1)
            entropy.append(ent[:, :n_content].mean(-1) / math.log(2))
            dist.append(far[:, :n_content].mean(-1) * AUDIO_CTX_S * 1000)
            pooled.append(thumb.half())
    return HeadSummaries(
        pooled=torch.stack(pooled).cpu().numpy(),
        entropy_bits=torch.stack(entropy).float().cpu().numpy(),
        distance_ms=torch.stack(dist).float().cpu().numpy(),
    )


def summaries_from_qk(qk: np.ndarray, n_head: int, n_content: int | None = None) -> HeadSummaries:
    """The summaries from a trace's stored (n_layer, 2, n_ctx, n_state) queries and keys."""
    t = torch.from_numpy(np.asarray(qk))
    return head_summaries([layer[0] for layer in t], [layer[1] for layer in t], n_head, n_content)


def encoder_attention(qs: list[torch.Tensor], ks: list[torch.Tensor], n_head: int,
                      qk_budget_mb: float, n_content: int | None = None) -> EncoderAttention:
    """What a window keeps of its encoder attention: the scaled q and k while they fit the budget
    (summaries then follow on first view, in `derived.py`), else the summaries alone, computed now."""
    scaled_qs = [scaled(q, n_head) for q in qs]
    scaled_ks = [scaled(k, n_head) for k in ks]
    if len(qs) * 2 * qs[0].numel() * 2 <= qk_budget_mb * 1e6:
        qk = torch.stack([torch.stack([q, k]) for q, k in zip(scaled_qs, scaled_ks)]).half().cpu().numpy()
        return EncoderAttention(qk=qk, n_head=n_head, n_layer=len(qs))
    return EncoderAttention(qk=None, n_head=n_head, n_layer=len(qs),
                            summaries=head_summaries(scaled_qs, scaled_ks, n_head, n_content))


def tensor_stats(t: torch.Tensor) -> Stats:
    """Statistics of a torch tensor, computed where it lives (population std, as numpy's)."""
    t = t.double()
    return Stats(list(t.shape), float(t.min()), float(t.max()), float(t.mean()), float(t.std(unbiased=False)))


def activation(name: str, x: torch.Tensor, seconds_per_frame: float) -> Activation:
    """A (channels, time) activation: its statistics and a picture of at most 64 x 300 cells."""
    x = x.detach().float()
    display = block_mean(x, 64, 300)  # (<= 64, <= 300)
    return Activation(
        name=name,
        stats=tensor_stats(x),
        display=display.half().cpu().numpy(),
        seconds_per_column=seconds_per_frame * max(1, x.shape[1] // 300),
    )
