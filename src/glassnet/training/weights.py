"""Row weights: ``sample_weight`` and ``class_weight`` made into one weight per row,
which the step passes into the loss (:meth:`~glassnet.losses.Loss.value` and
:meth:`~glassnet.losses.Loss.grad` take ``weights=``)."""

from __future__ import annotations

import numpy as np

from glassnet.errors import GlassnetError

Array = np.ndarray


def row_weights(
    n: int,
    labels: Array | None,
    n_classes: int,
    sample_weight: object,
    class_weight: object,
) -> Array | None:
    """Per-row weights from ``sample_weight`` (n,) and ``class_weight`` (``"balanced"``:
    n / (k · n_c), as scikit-learn; or {class index: weight}), multiplied; None when
    neither is given."""
    if sample_weight is None and class_weight is None:
        return None
    w = np.ones(n)
    if sample_weight is not None:
        sw = np.asarray(sample_weight, dtype=np.float64)
        if sw.shape != (n,) or not np.isfinite(sw).all() or (sw < 0).any() or sw.sum() <= 0:
            raise GlassnetError(
                f"expected {n} finite weights ≥ 0, not all 0 (one per row)",
                got=f"shape {sw.shape}" if sw.shape != (n,) else "negative, NaN or all 0",
                field="sample_weight",
            )
        w *= sw
    if class_weight is not None:
        if labels is None:
            raise GlassnetError(
                "expected class labels for class_weight (a classification task)",
                got="targets",
                field="class_weight",
            )
        counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
        if isinstance(class_weight, str) and class_weight == "balanced":
            per_class = np.where(
                counts > 0, n / (np.count_nonzero(counts) * np.maximum(counts, 1)), 0.0
            )
        elif isinstance(class_weight, dict):
            per_class = np.ones(n_classes)
            for k, v in class_weight.items():
                ok = isinstance(k, int | np.integer) and 0 <= k < n_classes
                if not ok or not isinstance(v, int | float) or not v >= 0:
                    raise GlassnetError(
                        f"expected {{class index 0..{n_classes - 1}: weight ≥ 0}}",
                        got=f"{k!r}: {v!r}",
                        field="class_weight",
                    )
                per_class[int(k)] = float(v)
        else:
            raise GlassnetError(
                "expected 'balanced' or a dict {class index: weight}",
                got=repr(class_weight)[:60],
                field="class_weight",
            )
        w *= per_class[labels]
    return w


def training_weights(weights: Array | None, train_rows: Array) -> Array | None:
    """``weights`` (n,) scaled to mean 1 over the training rows, so the learning rate
    means the same with weights as without; None stays None."""
    if weights is None:
        return None
    mean = weights[train_rows].mean()
    if not mean > 0:
        raise GlassnetError(
            "expected some weight on the training rows", got="all 0", field="sample_weight"
        )
    return weights / mean
