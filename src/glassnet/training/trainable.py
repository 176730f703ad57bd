"""What training needs of a network beyond its maths: a place for the training state,
the dropout rate, how raw rows become inputs, and how it saves itself.

:class:`glassnet.model.Model` is a :class:`TrainableNetwork`; training is written
against this class, so dependencies point one way — ``network`` ← ``training`` ←
``model`` — with no import of the model here, not even for types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from glassnet.network import Network
from glassnet.training.state import TrainState

Array = np.ndarray


class TrainableNetwork(Network):
    """A :class:`~glassnet.network.Network` that :func:`~glassnet.training.fit` can
    train.  Subclasses (the model) set ``dropout`` and may override the two methods."""

    #: The state a second ``fit`` continues from (None until trained).
    train_state: TrainState | None = None
    #: Inverted dropout on the hidden layers' outputs while training (0: none).
    dropout: float = 0.0

    def prepare_input(self, X: object) -> Array:
        """Raw rows -> the network's inputs (n, n_in); here the rows themselves."""
        return np.asarray(X)

    def save(self, path: str | Path, *, info: dict[str, Any] | None = None) -> None:
        """Write the network with its training state to ``path`` (checkpoints call it)."""
        raise NotImplementedError(f"{type(self).__name__} cannot save itself")
