"""Weight initialisers, all seeded.  Each returns W of shape (n_in, n_out).

- ``he``: normal, std sqrt(2 / n_in) (for ReLU layers).
- ``xavier`` / ``glorot``: uniform in ±sqrt(6 / (n_in + n_out)).
- ``uniform``: uniform in ±1/sqrt(n_in) (PyTorch's Linear default range).
- ``normal``: normal, std 0.1.
- ``zeros``: all zero.
Biases start at zero unless given.
"""

from __future__ import annotations

import numpy as np

from glassnet.errors import GlassnetError

Array = np.ndarray

INITS: tuple[str, ...] = ("he", "xavier", "glorot", "uniform", "normal", "zeros")


def init_weights(
    name: str, n_in: int, n_out: int, rng: np.random.Generator, dtype: np.dtype | str = "float64"
) -> Array:
    """W (n_in, n_out) drawn by the named rule from ``rng``."""
    if name == "he":
        W = rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out))
    elif name in ("xavier", "glorot"):
        limit = np.sqrt(6.0 / (n_in + n_out))
        W = rng.uniform(-limit, limit, size=(n_in, n_out))
    elif name == "uniform":
        limit = 1.0 / np.sqrt(n_in)
        W = rng.uniform(-limit, limit, size=(n_in, n_out))
    elif name == "normal":
        W = rng.normal(0.0, 0.1, size=(n_in, n_out))
    elif name == "zeros":
        W = np.zeros((n_in, n_out))
    else:
        raise GlassnetError(f"expected one of {', '.join(INITS)}", got=repr(name), field="init")
    return W.astype(dtype)
