"""What training needs of a network beyond its maths: a place for the training state,
the dropout rate, how raw rows become inputs, and how it saves itself; and how a
``fit`` call resolves the loss and state it continues with.

:class:`glassnet.model.Model` is a :class:`TrainableNetwork`; training is written
against this class, so dependencies point one way — ``network`` ← ``training`` ←
``model`` — with no import of the model here, not even for types.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.losses import Loss
from glassnet.network import Network
from glassnet.optim import Optimizer, get_optimizer
from glassnet.training.state import TrainState, default_loss, positive_int, shuffle_rng

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

    def save(
        self,
        path: str | Path,
        *,
        info: dict[str, Any] | None = None,
        extras: dict[str, Any] | None = None,
    ) -> None:
        """Write the network with its training state (and free ``info`` entries and
        ``extras`` arrays) to ``path`` (checkpoints call it)."""
        raise NotImplementedError(f"{type(self).__name__} cannot save itself")


def resolve_loss(net: TrainableNetwork, loss: str | Loss | None) -> Loss:
    """The loss a ``fit`` uses: the one given, else the last fit's, else the default."""
    state = net.train_state
    return net.check_loss(loss or (state.loss if state is not None else default_loss(net)))


def resolve_state(
    net: TrainableNetwork, loss_obj: Loss, optimizer: str | Optimizer | None, seed: int | None
) -> TrainState:
    """The state this ``fit`` continues with, made or updated on ``net``: a first fit
    makes one (default Adam, seed 0); a later fit keeps the optimiser (and its state),
    seed and random stream unless given new ones."""
    state = net.train_state
    if seed is not None:
        seed = positive_int(seed, "seed", minimum=0)
    if state is None:
        state = TrainState(
            optimizer=get_optimizer(optimizer if optimizer is not None else "adam"),
            loss=loss_obj.name,
            seed=seed if seed is not None else 0,
            rng=shuffle_rng(seed if seed is not None else 0),
        )
        net.train_state = state
    else:
        if optimizer is not None:
            state.optimizer = get_optimizer(optimizer)
        if seed is not None and seed != state.seed:
            state.seed, state.rng = seed, shuffle_rng(seed)
        state.loss = loss_obj.name
    params = net.parameters()
    for i, p in enumerate(params):
        for arrays in state.optimizer.state.values():
            if arrays[i].shape != p.shape:
                raise GlassnetError(
                    "expected an optimiser used with this network (or a fresh one)",
                    got=f"state shaped {arrays[i].shape} for a parameter shaped {p.shape}",
                    field="optimizer",
                )
    return state
