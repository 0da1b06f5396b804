"""Block-mean downsampling, written once: the library shrinks activations and positions with it, and
components may shrink pictures with it, since it needs nothing but the array's own `reshape` and `mean`.
"""

from __future__ import annotations

from typing import TypeVar

A = TypeVar("A")  # a numpy array or a torch tensor: both reshape and mean alike


def block_mean(x: A, rows: int, cols: int) -> A:
    """Shrink a 2-D array to at most (rows, cols) by averaging blocks; shapes that do not divide are cropped."""
    r = max(1, x.shape[0] // rows)
    c = max(1, x.shape[1] // cols)
    h, w = x.shape[0] // r, x.shape[1] // c
    return x[: h * r, : w * c].reshape(h, r, w, c).mean(3).mean(1)
