"""Learning-rate schedules: the base rate times ``factor(epoch)``, epochs from 0.

A schedule belongs to the training loop, not to an optimiser's rule: ``fit`` calls
:meth:`glassnet.optimizers.Optimizer.set_epoch` once per epoch and every update of that
epoch uses ``lr · factor(epoch)``.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from glassnet.errors import GlassnetError


def _positive(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GlassnetError("expected a positive finite number", got=repr(value), field=field)
    if value <= 0:
        raise GlassnetError("expected a positive finite number", got=repr(value), field=field)
    return float(value)


def _fraction(value: Any, field: str) -> float:
    """A number in [0, 1)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1
    if not ok:
        raise GlassnetError("expected a number in [0, 1)", got=repr(value), field=field)
    return float(value)


class Schedule:
    """Scales the base learning rate by ``factor(epoch)`` (epoch counted from 0)."""

    name: ClassVar[str] = ""

    def factor(self, epoch: int) -> float:
        raise NotImplementedError

    def config(self) -> dict[str, Any]:
        raise NotImplementedError


class StepLR(Schedule):
    """``gamma ** (epoch // step_size)``: divide the rate every ``step_size`` epochs."""

    name = "step"

    def __init__(self, step_size: int, gamma: float = 0.1) -> None:
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise GlassnetError(
                "expected a whole number of epochs ≥ 1", got=repr(step_size), field="step_size"
            )
        self.step_size = step_size
        self.gamma = _positive(gamma, "gamma")

    def factor(self, epoch: int) -> float:
        return self.gamma ** (epoch // self.step_size)

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "step_size": self.step_size, "gamma": self.gamma}


class CosineLR(Schedule):
    """Cosine annealing over ``total_epochs``: ``f + (1 − f)·(1 + cos(π·e/T))/2``, then ``f``."""

    name = "cosine"

    def __init__(self, total_epochs: int, min_factor: float = 0.0) -> None:
        if isinstance(total_epochs, bool) or not isinstance(total_epochs, int) or total_epochs < 1:
            raise GlassnetError(
                "expected a whole number of epochs ≥ 1",
                got=repr(total_epochs),
                field="total_epochs",
            )
        self.total_epochs = total_epochs
        self.min_factor = _fraction(min_factor, "min_factor")

    def factor(self, epoch: int) -> float:
        e = min(epoch, self.total_epochs)
        cos = (1 + math.cos(math.pi * e / self.total_epochs)) / 2
        return self.min_factor + (1 - self.min_factor) * cos

    def config(self) -> dict[str, Any]:
        return {"name": self.name, "total_epochs": self.total_epochs, "min_factor": self.min_factor}


_SCHEDULES: dict[str, type[Schedule]] = {"step": StepLR, "cosine": CosineLR}


def schedule_from_config(config: dict[str, Any] | None) -> Schedule | None:
    if config is None:
        return None
    options = dict(config)
    cls = _SCHEDULES.get(options.pop("name", None))
    if cls is None:
        raise GlassnetError(
            f"expected a schedule named {' or '.join(_SCHEDULES)}",
            got=repr(config),
            field="schedule",
        )
    return cls(**options)


__all__ = ["CosineLR", "Schedule", "StepLR", "schedule_from_config"]
