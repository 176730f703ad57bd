"""Weight initialisers, all seeded.  Each returns W of shape (n_in, n_out).

- ``he``: normal, std sqrt(2 / n_in) (for ReLU layers).
- ``xavier`` / ``glorot``: uniform in ±sqrt(6 / (n_in + n_out)).
- ``uniform``: uniform in ±1/sqrt(n_in) (PyTorch's Linear default range).
- ``normal``: normal, std 0.1.
- ``zeros``: all zero.
Biases start at zero unless given.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from glassnet.errors import GlassnetError

if TYPE_CHECKING:  # numpy.typing is only needed by the type checker, not at startup
    from numpy.typing import DTypeLike

Array = np.ndarray

INITS: tuple[str, ...] = ("he", "xavier", "glorot", "uniform", "normal", "zeros")


def init_weights(
    name: str,
    n_in: int,
    n_out: int,
    rng: np.random.Generator,
    dtype: DTypeLike = "float64",
    *,
    fan_out: int | None = None,
) -> Array:
    """W (n_in, n_out) drawn by the named rule from ``rng``.  ``fan_out``: the fan-out
    xavier counts, when it is not ``n_out`` (a convolution kernel's: out·kh·kw, each
    weight used once per output position of its window)."""
    if name == "he":
        W = rng.normal(0.0, np.sqrt(2.0 / n_in), size=(n_in, n_out))
    elif name in ("xavier", "glorot"):
        limit = np.sqrt(6.0 / (n_in + (n_out if fan_out is None else fan_out)))
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


def explicit_weights(
    arrays: object, sizes: list[int], dtype: DTypeLike = "float64"
) -> list[tuple[Array, Array]]:
    """Given arrays as initial values: one entry per layer, each W (n_in, n_out) or a pair
    (W, b); biases not given start at zero.  Shapes are checked against ``sizes``."""
    if isinstance(arrays, str | bytes) or not hasattr(arrays, "__len__"):
        raise GlassnetError(
            "expected an initialiser name or one array (or (W, b) pair) per layer",
            got=repr(arrays)[:60],
            field="init",
        )
    entries = list(arrays)  # type: ignore[call-overload]
    if len(entries) != len(sizes) - 1:
        raise GlassnetError(
            f"expected {len(sizes) - 1} arrays (one per layer)", got=str(len(entries)), field="init"
        )
    out = []
    for index, entry in enumerate(entries, start=1):
        n_in, n_out = sizes[index - 1], sizes[index]
        if isinstance(entry, tuple | list) and len(entry) == 2:
            W, b = np.asarray(entry[0], dtype=dtype), np.asarray(entry[1], dtype=dtype)
        else:
            W, b = np.asarray(entry, dtype=dtype), np.zeros(n_out, dtype=dtype)
        if W.shape != (n_in, n_out) or b.shape != (n_out,):
            raise GlassnetError(
                f"expected W shaped ({n_in}, {n_out}) and b shaped ({n_out},)",
                got=f"W {W.shape}, b {b.shape}",
                layer=index,
                field="init",
            )
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise GlassnetError(
                "expected finite numbers", got="NaN or inf", layer=index, field="init"
            )
        out.append((W.copy(), b.copy()))
    return out
