"""Rows as the epoch loop reads them, the validation split, and the buffers one batch
is gathered into.

Each batch is gathered by index into a buffer allocated once (``np.take(out=)``), so the
data is never copied or permuted as a whole — only an index array is shuffled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.network import Network

Array = np.ndarray


@dataclass
class Rows:
    """Training or validation data as the loop reads it: inputs X, targets Y (n, n_out),
    class labels (n,) for classification (else None), the rows of X/Y it uses and
    per-row weights (n,) (None: all 1)."""

    X: Array
    Y: Array
    labels: Array | None
    rows: Array
    weights: Array | None = None


def split_indices(n: int, fraction: float, seed: int) -> tuple[Array, Array]:
    """(train, validation) row indices, each sorted: the last ``fraction`` of a seeded
    permutation is held out.  Its own stream, so every ``fit`` on the same data splits alike."""
    if fraction <= 0:
        return np.arange(n), np.arange(0)
    n_val = max(1, round(n * fraction))
    if n_val >= n:
        raise GlassnetError(
            f"expected a validation split leaving training rows ({n} rows in all)",
            got=f"{fraction:g} (holds out {n_val})",
            field="validation_split",
        )
    perm = np.random.default_rng([seed, 1]).permutation(n)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


class Batches:
    """The buffers one batch is gathered into, allocated once for batches of up to
    ``batch_size`` rows of ``data``, with every layer's intermediates and gradients
    (:meth:`Network.buffers`)."""

    def __init__(self, net: Network, data: Rows, batch_size: int) -> None:
        X, Y = data.X, data.Y
        m_max = min(batch_size, data.rows.shape[0])
        self.x = np.empty((m_max, X.shape[1]), dtype=net.dtype)
        self.y = np.empty((m_max, Y.shape[1]), dtype=net.dtype)
        # Data in another dtype than the network's is gathered as is, then cast into x.
        self.x_raw = np.empty((m_max, X.shape[1]), dtype=X.dtype) if X.dtype != net.dtype else None
        self.layers = net.buffers(m_max)
        self.grads = [a for b in self.layers for a in (b.dW, b.db)]
