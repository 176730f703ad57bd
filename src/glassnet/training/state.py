"""What a ``fit`` continues from: the training state, its history, and how a call
resolves them (the loss, the optimiser, the seed and the random stream).

Random numbers come from one seeded stream kept in the network's ``train_state``, so
``fit(5)`` then ``fit(5)`` equals ``fit(10)``, and a checkpoint (which saves the stream)
resumes bit for bit.  The state's file form is :meth:`TrainState.to_meta` /
:meth:`TrainState.from_meta`: the model-file format (:mod:`glassnet.io`) stores it
without knowing what it means.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.losses import default_loss_for
from glassnet.network import Network
from glassnet.optim import Optimizer, optimizer_from_config

Array = np.ndarray


@dataclass
class History:
    """Per-epoch logs: ``history["loss"][k]`` is the loss of epoch ``epoch[k]`` (from 1).

    Keys: ``loss``, ``lr`` and, for classification, ``accuracy``; with validation data
    also ``val_loss`` (and ``val_accuracy``).
    """

    epoch: list[int] = field(default_factory=list)
    history: dict[str, list[float]] = field(default_factory=dict)

    def __getitem__(self, key: str) -> list[float]:
        return self.history[key]

    def __len__(self) -> int:
        return len(self.epoch)

    def append(self, epoch: int, logs: dict[str, float]) -> None:
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))

    def last(self) -> dict[str, float]:
        """The most recent epoch's logs."""
        return {key: values[-1] for key, values in self.history.items() if values}

    def to_dict(self) -> dict[str, Any]:
        return {"epoch": list(self.epoch), "history": {k: list(v) for k, v in self.history.items()}}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> History:
        try:
            epochs = [int(e) for e in d["epoch"]]
            hist = {str(k): [float(x) for x in v] for k, v in d["history"].items()}
        except (KeyError, TypeError, ValueError, AttributeError):
            raise GlassnetError(
                "expected a history {epoch: [...], history: {...}}",
                got=repr(d)[:80],
                field="history",
            ) from None
        return cls(epochs, hist)


@dataclass
class TrainState:
    """What a second ``fit`` (or a resumed run) needs to continue exactly."""

    optimizer: Optimizer
    loss: str
    seed: int
    rng: np.random.Generator
    epoch: int = 0
    history: History = field(default_factory=History)

    def to_meta(self) -> tuple[dict[str, Any], dict[str, Array]]:
        """(JSON-able description, optimiser state arrays) for a model file's ``training``
        section (:func:`glassnet.io.write`)."""
        meta = {
            "optimizer": self.optimizer.config(),
            "loss": self.loss,
            "seed": self.seed,
            "epoch": self.epoch,
            # PCG64's state is a dict of (big) ints: JSON keeps them exactly.
            "rng": self.rng.bit_generator.state,
            "history": self.history.to_dict(),
        }
        return meta, self.optimizer.state_arrays()

    @classmethod
    def from_meta(cls, meta: dict[str, Any], arrays: dict[str, Array], net: Network) -> TrainState:
        """Inverse of :meth:`to_meta`, checked against ``net`` (the file's network): every
        field's type, the random state, the loss, and exactly the optimiser's arrays."""
        opt = optimizer_from_config(_get(meta, "optimizer", dict))
        params = net.parameters()
        expected = {
            f"{name}.{i}" for name in opt.state_names for i in range(len(params)) if opt.t > 0
        }
        if set(arrays) != expected:  # state arrays exist from the first step on
            missing, extra = sorted(expected - set(arrays)), sorted(set(arrays) - expected)
            raise GlassnetError(
                "expected exactly the arrays the architecture describes",
                got=f"missing {[f'optimizer.{k}' for k in missing] or 'none'}, "
                f"unexpected {[f'optimizer.{k}' for k in extra] or 'none'}",
                field="arrays",
            )
        opt.load_state_arrays(arrays, params)
        rng = np.random.default_rng()
        try:
            rng.bit_generator.state = _get(meta, "rng", dict)
        except (TypeError, ValueError, KeyError, OverflowError) as err:
            raise GlassnetError(
                "expected a PCG64 random state", got=str(err)[:60], field="meta.training.rng"
            ) from None
        loss = _get(meta, "loss", str)
        net.check_loss(loss)
        seed, epoch = _get(meta, "seed", int), _get(meta, "epoch", int)
        for name, value in (("seed", seed), ("epoch", epoch)):
            if value < 0:  # a negative seed would reach numpy's seeding as a ValueError
                raise GlassnetError(
                    "expected a whole number ≥ 0", got=repr(value), field=f"meta.training.{name}"
                )
        return cls(
            optimizer=opt,
            loss=loss,
            seed=seed,
            rng=rng,
            epoch=epoch,
            history=History.from_dict(_get(meta, "history", dict)),
        )


def _get(d: dict[str, Any], key: str, kind: type) -> Any:
    value = d.get(key)
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise GlassnetError(
            f"expected a {kind.__name__}", got=repr(value)[:60], field=f"meta.training.{key}"
        )
    return value


def shuffle_rng(seed: int) -> np.random.Generator:
    """The stream that shuffles batches."""
    return np.random.default_rng(seed)


def default_loss(net: Network) -> str:
    """The output activation's default loss (:func:`glassnet.losses.default_loss_for`):
    cross_entropy for softmax, binary_cross_entropy for sigmoid, mse otherwise."""
    return default_loss_for(net.output_activation).name


def positive_int(value: object, field: str, minimum: int = 1) -> int:
    """``value`` as an int ≥ ``minimum`` (a bool is not a number here)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise GlassnetError(f"expected a whole number ≥ {minimum}", got=repr(value), field=field)
    return int(value)
