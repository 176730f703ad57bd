"""Pictures of a training run, written as PNG (needs matplotlib: the ``train`` extra):
loss and accuracy per epoch, and for regression the predicted against the true values.
Every number drawn comes from the run's :class:`~glassnet.training.History` or the
model's own predictions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from glassnet.fileio import atomic_write

if TYPE_CHECKING:
    from glassnet.training import History

Array = np.ndarray


def plot_history(
    history: History,
    path: str,
    *,
    title: str = "",
    truth: tuple[Array, Array] | None = None,
) -> None:
    """Loss and accuracy per epoch (train and validation) as a PNG, written atomically.
    With ``truth`` = (true, predicted) values of a regression, the second panel shows
    predicted against true (the diagonal is a perfect fit) instead of accuracy."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = history.history
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    keys = ("loss",) if truth is not None else ("loss", "accuracy")
    for ax, key in zip(axes, keys, strict=False):
        for name, style in ((key, "-"), (f"val_{key}", "--")):
            if name in h:
                label = name.replace("val_", "validation ") if name != key else f"train {key}"
                ax.plot(history.epoch, h[name], style, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    if truth is not None:
        y, p = (np.asarray(v, dtype=np.float64).reshape(-1) for v in truth)
        ax = axes[1]
        ax.scatter(y, p, s=10, alpha=0.6)
        low, high = float(min(y.min(), p.min())), float(max(y.max(), p.max()))
        ax.plot([low, high], [low, high], "k--", linewidth=1, label="predicted = true")
        ax.set_xlabel("true value (test part)")
        ax.set_ylabel("predicted value")
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)
