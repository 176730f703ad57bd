"""Checks of what ``fit``, ``evaluate`` and prediction are given: inputs X and
targets y, turned into the arrays the loop reads (and class labels, when the output
activation says the targets encode them)."""

from __future__ import annotations

import weakref
from typing import Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.losses import Loss
from glassnet.network import Network

Array = np.ndarray

#: Rows per chunk when predicting or validating (bounds the memory of one forward pass).
CHUNK = 4096


def check_data(net: Network, X: object, field: str = "X") -> Array:
    """X as a numeric array (not copied when it already is one), checked: rows of the
    first layer's width, at least one row, every value finite.

    A network whose first layer takes feature maps (C, H, W) — a convolution — takes
    images (n, C, H, W), one-channel images (n, H, W), or rows of C·H·W numbers (each
    image read row by row, channel after channel: what a CSV or a flattened .npz
    holds); every form is returned as (n, C, H, W), a view of X."""
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise GlassnetError("expected numbers", got=f"values of type {X.dtype}", field=field)
    shape = tuple(net.layers[0].in_shape)
    if len(shape) == 3:
        return _check_images(X, shape, field)
    if X.ndim != 2:
        raise GlassnetError(
            "expected a table (rows × features)", got=f"shape {X.shape}", field=field
        )
    if X.shape[0] == 0:
        raise GlassnetError("expected at least one row", got="an empty data set", field=field)
    n_in = net.sizes[0]
    if X.shape[1] != n_in:
        raise GlassnetError(
            f"expected {n_in} features per row (the network's input size)",
            got=f"{X.shape[1]}",
            field=field,
        )
    check_finite_once(X, field)
    return X


#: Arrays already found finite, by id: (a weak reference, where and how they lie).
_FINITE: dict[int, tuple[Any, tuple[Any, ...]]] = {}


def check_finite_once(X: Array, field: str) -> None:
    """:func:`check_finite`, skipped for the very array object checked before (same
    memory, shape, strides and dtype): ``fit`` called again and again on one data set
    (epoch by epoch, in a search, in a benchmark) pays the pass over all of it once.
    Values written into the array since are not seen here; a NaN or inf among them
    makes the loss non-finite, and the epoch loop then checks the data again before it
    reports anything (:func:`glassnet.training.loop.run_epochs`)."""
    if X.dtype.kind != "f":
        return
    key = id(X)
    where = (X.__array_interface__["data"][0], X.shape, X.strides, X.dtype.str)
    seen = _FINITE.get(key)
    if seen is not None and seen[0]() is X and seen[1] == where:
        return
    check_finite(X, field)

    def forget(_: object) -> None:
        _FINITE.pop(key, None)

    try:
        ref = weakref.ref(X, forget)
    except TypeError:  # an array type without weak references: check every time
        return
    _FINITE[key] = (ref, where)


def _check_images(X: Array, shape: tuple[int, ...], field: str) -> Array:
    """X (n, C, H, W), (n, H, W) for C = 1, or (n, C·H·W) -> (n, C, H, W), checked."""
    c, h, w = shape
    forms = f"({c}, {h}, {w}) images" + (f", ({h}, {w}) images" if c == 1 else "")
    expected = f"expected {forms} or rows of {c * h * w} numbers (the first layer's input)"
    if X.ndim == 4 and X.shape[1:] == shape:
        pass
    elif X.ndim == 3 and c == 1 and X.shape[1:] == (h, w):
        X = X.reshape(X.shape[0], c, h, w)
    elif X.ndim == 2 and X.shape[1] == c * h * w:
        X = X.reshape(X.shape[0], c, h, w)
    else:
        got = f"shape {X.shape}" if X.ndim != 1 else f"one sample of {X.shape[0]} numbers"
        raise GlassnetError(expected, got=got, field=field)
    if X.shape[0] == 0:
        raise GlassnetError("expected at least one row", got="an empty data set", field=field)
    check_finite(X, field)
    return X


def check_finite(X: Array, field: str) -> None:
    """Refuse NaN or inf, checking in chunks so no full-size mask is ever allocated.

    Each chunk is first summed: a NaN or an inf anywhere makes the sum NaN or inf
    (IEEE arithmetic), so a finite sum proves the chunk finite in one read-only pass,
    ~1.5× faster than ``np.isfinite(...).all()`` over a large table (docs/performance.md);
    only a chunk whose sum is not finite (a non-finite value, or finite values whose
    sum overflows) is then checked value by value."""
    if X.dtype.kind != "f":
        return
    for start in range(0, X.shape[0], CHUNK):
        block = X[start : start + CHUNK].reshape(min(CHUNK, X.shape[0] - start), -1)
        # (float16 summed in float32: its own sum would overflow on ordinary data.)
        wide = np.float32 if block.dtype.itemsize < 4 else None
        with np.errstate(over="ignore", invalid="ignore"):  # (what the sum is for)
            total = np.add.reduce(block, axis=None, dtype=wide)
        if np.isfinite(total):
            continue
        if not np.isfinite(block).all():
            row = start + int(np.flatnonzero(~np.isfinite(block).all(axis=1))[0])
            raise GlassnetError(
                "expected finite numbers", got=f"NaN or inf in row {row}", field=field
            )


def prepare_targets(
    net: Network, y: object, loss: Loss, n: int, field: str = "y"
) -> tuple[Array, Array | None]:
    """Targets Y (n, n_out) in the network's dtype, and class labels (n,) when the task
    is classification (None otherwise).

    ``y`` may be class labels 0..n_out−1 (shape (n,)), or targets (n, n_out); for a
    single output unit, (n,) is that unit's target.
    """
    y = np.asarray(y)
    n_out = net.sizes[-1]
    if y.dtype.kind not in "biuf":
        raise GlassnetError(
            "expected numeric labels or targets (encode text labels first, e.g. with "
            "glassnet.sklearn.GlassnetClassifier)",
            got=f"values of type {y.dtype}",
            field=field,
        )
    if y.shape[:1] != (n,):
        raise GlassnetError(
            f"expected {n} targets (one per row of X)", got=f"shape {y.shape}", field=field
        )
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise GlassnetError("expected finite numbers", got="NaN or inf", field=field)
    dtype = net.dtype
    labels: Array | None = None
    if y.ndim == 1 and n_out > 1:
        if y.dtype.kind == "f" and not (y == np.round(y)).all():
            raise GlassnetError(
                f"expected class labels 0..{n_out - 1} (whole numbers) or targets shaped "
                f"({n}, {n_out})",
                got="fractional values",
                field=field,
            )
        labels = y.astype(np.int64)
        if labels.min() < 0 or labels.max() >= n_out:
            raise GlassnetError(
                f"expected class labels 0..{n_out - 1} (the output layer has {n_out} units)",
                got=f"labels from {labels.min()} to {labels.max()}",
                field=field,
            )
        Y = np.zeros((n, n_out), dtype=dtype)
        Y[np.arange(n), labels] = 1
        return Y, labels
    Y = np.asarray(y, dtype=dtype).reshape(n, -1) if y.ndim == 1 else np.asarray(y, dtype=dtype)
    if Y.ndim != 2 or Y.shape[1] != n_out:
        raise GlassnetError(
            f"expected targets shaped ({n}, {n_out}) or class labels shaped ({n},)",
            got=f"shape {y.shape}",
            field=field,
        )
    if loss.probabilities and ((Y < 0) | (Y > 1)).any():
        raise GlassnetError(
            f"expected targets in [0, 1] for {loss.name}",
            got=f"values from {Y.min():g} to {Y.max():g}",
            field=field,
        )
    return Y, net.output_activation.labels_from_targets(Y)
