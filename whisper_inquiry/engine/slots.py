"""The rows' key/value slots: every decoder layer's keys and values for each row in flight, one slot a row.

whisper keeps a cache per decode (its kv-cache hooks concatenate each new position onto the last), so
rows of different decodes cannot share a pass. Here every row in flight has a slot in one set of
caches, kept packed (slot i holds row i), and a pass over the slots feeds each row its new tokens at its
own position: `SlotPass.block` is the attention half of one decoder block for such a pass, and
`decoder.decoder_states(..., slots=)` runs it in the decoder's one forward.

Slots are made lazily and grow by doubling up to the capacity, so memory follows the most rows ever in
flight at once (8 rows of tiny.en in float32: about 190 MB).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn.functional import scaled_dot_product_attention


class KVSlots:
    """Per decoder layer: self-attention keys and values (slots, n_text_ctx, d) and the audio's
    cross-attention keys and values (slots, n_audio_ctx, d)."""

    def __init__(self, model, capacity: int):
        self.model, self.capacity = model, capacity
        self.self_k: list[torch.Tensor] = []
        self.self_v: list[torch.Tensor] = []
        self.cross_k: list[torch.Tensor] = []
        self.cross_v: list[torch.Tensor] = []

    @property
    def dtype(self) -> torch.dtype | None:
        """The caches' one dtype; None before the first row."""
        return self.self_k[0].dtype if self.self_k else None

    def make_room(self, n: int, used: int, dtype: torch.dtype, device: torch.device) -> None:
        """Slots for at least n rows, keeping the first `used`."""
        have = self.self_k[0].shape[0] if self.self_k else 0
        if have >= n and self.self_k[0].dtype == dtype and self.self_k[0].device == device:
            return
        size = min(self.capacity, max(n, 2 * have, 2))
        d = self.model.dims

        def grown(old: list[torch.Tensor], length: int) -> list[torch.Tensor]:
            new = [torch.zeros((size, length, d.n_text_state), dtype=dtype, device=device)
                   for _ in range(d.n_text_layer)]
            for a, b in zip(new, old):
                if b.dtype == dtype and b.device == device:
                    a[:used] = b[:used]
            return new

        self.self_k, self.self_v = grown(self.self_k, d.n_text_ctx), grown(self.self_v, d.n_text_ctx)
        self.cross_k, self.cross_v = grown(self.cross_k, d.n_audio_ctx), grown(self.cross_v, d.n_audio_ctx)

    def write(self, slot: int, kv_cache: dict, i: int, n: int) -> None:
        """Row i of a whisper kv_cache (its first `n` positions, and its audio's) into `slot`."""
        for layer, block in enumerate(self.model.decoder.blocks):
            self.self_k[layer][slot, :n] = kv_cache[block.attn.key][i]
            self.self_v[layer][slot, :n] = kv_cache[block.attn.value][i]
            self.cross_k[layer][slot] = kv_cache[block.cross_attn.key][i]
            self.cross_v[layer][slot] = kv_cache[block.cross_attn.value][i]

    def move(self, to: int, source: int, n: int) -> None:
        """Slot `source` (its first n positions, and its audio's) into slot `to`."""
        for caches, length in ((self.self_k, n), (self.self_v, n), (self.cross_k, None), (self.cross_v, None)):
            for c in caches:
                c[to, :length] = c[source, :length]

    def reorder(self, slots: Sequence[int], sources: Sequence[int], n: int) -> None:
        """Beam search kept other rows: each of `slots` takes the first n keys and values of its source."""
        for cache in self.self_k + self.self_v:
            cache[list(slots), :n] = cache[list(sources), :n]

    def cross_kv(self, slot: int) -> dict:
        """The slot's cross-attention keys and values, by module, as whisper's kv_cache holds them for
        one row: (1, n_audio_ctx, n_text_state), copied (the slot will serve another row)."""
        out = {}
        for layer, block in enumerate(self.model.decoder.blocks):
            out[block.cross_attn.key] = self.cross_k[layer][slot: slot + 1].clone()
            out[block.cross_attn.value] = self.cross_v[layer][slot: slot + 1].clone()
        return out

    def pass_over(self, slots: Sequence[int], positions: Sequence[int], counts: Sequence[int]) -> SlotPass:
        """A pass feeding the row in slots[i] counts[i] new tokens from positions[i] on."""
        return SlotPass(self, slots, positions, counts)


class SlotPass:
    """One decoder pass over some slots, each row at its own position with its own number of new tokens
    (a Live refresh's draft feeds several). Rows with fewer are padded to the widest; the padding is
    neither cached nor attended to, and its positions may run past the context (they are never read)."""

    def __init__(self, kv: KVSlots, slots: Sequence[int], positions: Sequence[int], counts: Sequence[int]):
        assert min(counts) >= 1, "every row asks for at least one new token"
        device = kv.self_k[0].device
        self.kv, self.dtype = kv, kv.self_k[0].dtype
        self.width = max(counts)
        slot_ids = torch.tensor(slots, device=device)
        # the rows' slots: a view of the first n when they are all the rows in order (no copy of the caches)
        self.index = slice(0, len(slots)) if list(slots) == list(range(len(slots))) else slot_ids
        at = torch.tensor(positions, device=device)[:, None] + torch.arange(self.width, device=device)
        last = kv.model.decoder.positional_embedding.shape[0] - 1
        self.positions = at.clamp(max=last)  # (n, width), for the positional embedding
        if self.width == 1:  # one new token a row, the usual step: nothing padded
            self.real = slice(None), 0
            self.at_slot, self.at_position = slot_ids, at[:, 0]
        else:
            self.real = torch.arange(self.width, device=device)[None] < torch.tensor(counts, device=device)[:, None]
            self.at_slot = slot_ids[:, None].expand(-1, self.width)[self.real]
            self.at_position = at[self.real]
        self.n_kv = max(p + c for p, c in zip(positions, counts))
        self.sees = (torch.arange(self.n_kv, device=device) <= at[..., None])[:, None]  # (n, 1, width, n_kv)

    def block(self, layer: int, block, x: torch.Tensor) -> torch.Tensor:
        """whisper's `ResidualAttentionBlock.forward` for these rows: the new keys and values go into the
        slots, and each row attends to its own cached keys and its own audio."""
        kv, attn = self.kv, block.attn
        h = block.attn_ln(x)
        q, k, v = attn.query(h), attn.key(h), attn.value(h)
        kv.self_k[layer][self.at_slot, self.at_position] = k[self.real]
        kv.self_v[layer][self.at_slot, self.at_position] = v[self.real]
        keys, values = kv.self_k[layer][self.index, :self.n_kv], kv.self_v[layer][self.index, :self.n_kv]
        x = x + attn.out(_attend(q, keys, values, attn.n_head, self.sees))
        cross = block.cross_attn
        h = block.cross_attn_ln(x)
        x = x + cross.out(_attend(cross.query(h), kv.cross_k[layer][self.index], kv.cross_v[layer][self.index],
                                  cross.n_head))
        return x + block.mlp(block.mlp_ln(x))


def _attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, n_head: int,
            mask: torch.Tensor | None = None) -> torch.Tensor:
    """whisper's scaled-dot-product attention (MultiHeadAttention.qkv_attention, SDPA branch), with a
    mask for keys past a row's own position."""
    q = q.view(*q.shape[:2], n_head, -1).permute(0, 2, 1, 3)  # (n, n_head, width, d_head)
    k = k.view(*k.shape[:2], n_head, -1).permute(0, 2, 1, 3)  # (n, n_head, n_kv, d_head)
    v = v.view(*v.shape[:2], n_head, -1).permute(0, 2, 1, 3)
    a = scaled_dot_product_attention(q, k, v, attn_mask=mask)
    return a.permute(0, 2, 1, 3).flatten(start_dim=2)  # (n, width, d)
