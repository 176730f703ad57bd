"""The data check behind ``fit``/``predict``: ``check_finite`` refuses NaN and inf and
names the first bad row.  Its fast path sums each chunk first; the reference here is
a plain Python walk over the rows with ``math.isfinite`` (no NumPy reductions)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glassnet.errors import GlassnetError
from glassnet.training.inputs import CHUNK, check_finite


def first_bad_row(X: np.ndarray) -> int | None:
    """The first row holding a value that is not finite, by a walk over every value."""
    for i, row in enumerate(X.reshape(X.shape[0], -1).tolist()):
        if not all(math.isfinite(v) for v in row):
            return i
    return None


def outcome(X: np.ndarray) -> str:
    try:
        check_finite(X, "X")
    except GlassnetError as err:
        return str(err)
    return "ok"


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
@pytest.mark.parametrize("seed", range(6))
def test_planted_non_finite_values_are_found_at_their_row(dtype: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 2 * CHUNK + 50))
    X = rng.random((n, 7)).astype(dtype)
    # Values near the dtype's largest: a chunk's sum overflows though every value is
    # finite, which must still pass.
    big = float(np.finfo(dtype).max) / 2
    X[rng.integers(0, n, 5), rng.integers(0, 7, 5)] = big
    assert first_bad_row(X) is None
    assert outcome(X) == "ok"
    for bad in (np.nan, np.inf, -np.inf):
        Y = X.copy()
        rows = rng.integers(0, n, int(rng.integers(1, 4)))
        Y[rows, rng.integers(0, 7, rows.size)] = bad
        expected = first_bad_row(Y)
        assert expected == int(rows.min())
        message = outcome(Y)
        assert f"NaN or inf in row {expected}" in message, message
        assert "X" in message


def test_inf_and_minus_inf_in_one_chunk_are_refused() -> None:
    # inf + (−inf) sums to NaN: still not finite, still refused.
    X = np.zeros((10, 3), np.float32)
    X[4, 0], X[6, 2] = np.inf, -np.inf
    assert "row 4" in outcome(X)


def test_a_strided_view_is_checked_as_its_values() -> None:
    rng = np.random.default_rng(9)
    base = rng.random((300, 12))
    base[150, 1] = np.nan  # in a column the view leaves out
    view = base[:, ::2]
    assert first_bad_row(view) is None
    assert outcome(view) == "ok"
    base[151, 2] = np.inf  # in a column the view keeps
    assert "row 151" in outcome(view)
