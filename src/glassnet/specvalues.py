"""Reading a spec's values: numbers, vectors and matrices from parsed TOML, each problem a
one-line :class:`GlassnetError` naming the field, what was expected and what came.

The spec reader and every layer plugin's ``from_spec`` read their fields with these, so
a field reads the same wherever it is declared.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from glassnet.errors import GlassnetError

Array = np.ndarray

#: How a spec (and its worksheets) write weight matrices: W[from][to] (x·W, the seed's) or
#: W[to][from] (W·x, as many textbooks and PyTorch's ``weight``).
LAYOUTS: tuple[str, ...] = ("from_to", "to_from")


@dataclass
class LayerContext:
    """What a layer's ``from_spec`` needs from the whole spec: how weights are written,
    the default initialiser, a random generator made on first use, and how many
    parameters the layers before it hold (for the size limit)."""

    layout: str = "from_to"
    bias_row0: bool = False
    default_init: str = "xavier"
    seed: int = 0
    params_before: int = 0
    #: The spec's batch size (rows of ``input``): a dropout mask has one row per sample.
    batch: int = 1
    #: One sample's input shape for this layer: (n_in,) for vectors, (channels, height,
    #: width) for feature maps (the output shape of the layer before, or the input's).
    in_shape: tuple[int, ...] = ()
    _rng: np.random.Generator | None = None

    def rng(self) -> np.random.Generator:
        # Made on first use: numpy.random costs ~10 ms to import, and a spec that gives
        # every weight (like the seed's) never draws.
        if self._rng is None:
            self._rng = np.random.default_rng(self.seed)
        return self._rng


def weights_from_layout(M: Array, layout: str, bias_row0: bool) -> tuple[Array, Array | None]:
    """A weight matrix as written -> (W[from][to], the bias folded into it or None).
    ``to_from`` is transposed; with ``bias_row0`` row 0 of the W[from][to] matrix (column 0
    of a W[to][from] one: the weights of a constant input 1) is the bias."""
    W = M.T if layout == "to_from" else M
    if bias_row0:
        return W[1:], W[0]
    return W, None


def require(data: dict[str, Any], key: str) -> Any:
    if key not in data:
        raise GlassnetError("expected this field", got="nothing (missing)", field=key)
    return data[key]


def kind(v: Any) -> str:
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, str):
        return f"the text {v!r}"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "a table"
    return repr(v)


def number(v: Any, field_name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise GlassnetError("expected a number", got=kind(v), field=field_name)
    if not math.isfinite(v):
        raise GlassnetError("expected a finite number", got=repr(v), field=field_name)
    return float(v)


def vector(v: Any, field_name: str) -> Array:
    if not isinstance(v, list) or not v:
        raise GlassnetError("expected a list of numbers", got=kind(v), field=field_name)
    return np.array([number(e, field_name) for e in v], dtype=np.float64)


def matrix(v: Any, field_name: str, *, rows_ok: bool) -> Array:
    """A matrix from a list of rows; with ``rows_ok`` a flat list is one row (one sample)."""
    if not isinstance(v, list) or not v:
        raise GlassnetError("expected a list of rows of numbers", got=kind(v), field=field_name)
    if rows_ok and not isinstance(v[0], list):
        return vector(v, field_name)[None, :]
    rows = []
    for r, row in enumerate(v):
        if not isinstance(row, list) or not row:
            raise GlassnetError(
                "expected a list of rows of numbers",
                got=f"row {r + 1} is {kind(row)}",
                field=field_name,
            )
        rows.append(vector(row, field_name))
    widths = {len(row) for row in rows}
    if len(widths) != 1:
        raise GlassnetError(
            "expected rows of equal length", got=f"lengths {sorted(widths)}", field=field_name
        )
    return np.array(rows)


def array(v: Any, field_name: str) -> Array:
    """A rectangular array of numbers of any depth from nested lists (a 4-D input
    [batch][channels][height][width], a conv kernel [out][in][kh][kw])."""
    if not isinstance(v, list) or not v:
        raise GlassnetError("expected a list of numbers", got=kind(v), field=field_name)
    if not isinstance(v[0], list):
        return vector(v, field_name)
    parts = [array(e, field_name) if isinstance(e, list) else None for e in v]
    if any(p is None for p in parts):
        raise GlassnetError(
            "expected nested lists of equal depth",
            got="numbers mixed with lists",
            field=field_name,
        )
    shapes = {p.shape for p in parts if p is not None}
    if len(shapes) != 1:
        raise GlassnetError(
            "expected a rectangular array (lists of equal length at each depth)",
            got=f"shapes {sorted(shapes)}",
            field=field_name,
        )
    return np.stack(parts)  # type: ignore[arg-type]
