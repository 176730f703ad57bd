"""Optimisers: how a gradient becomes an update.  Each update rule is written once.

Every optimiser updates its parameters **in place** (the arrays the layers hold), so a
training step allocates nothing for the update.  Parameters are a flat list
``[W1, b1, W2, b2, ...]``; per-parameter state (velocity, moments) lives in
``state[name][i]``, arrays shaped like parameter i.

=========  ===========================================================================
SGD        ``v ← μ v + g``;  ``p ← p − lr·v`` (Nesterov: ``p ← p − lr·(g + μ v)``);
           with μ = 0 simply ``p ← p − lr·g``.  (PyTorch's convention.)
Adam       ``m ← β1 m + (1−β1) g``;  ``v ← β2 v + (1−β2) g²``;
           ``p ← p − lr · m̂ / (√v̂ + ε)`` with ``m̂ = m/(1−β1ᵗ)``, ``v̂ = v/(1−β2ᵗ)``.
RMSprop    ``s ← ρ s + (1−ρ) g²``;  ``p ← p − lr · g / (√s + ε)``.
=========  ===========================================================================

L2 weight decay adds ``λ·W`` to the gradient of every weight matrix before the rule
(biases are not decayed, as in scikit-learn's ``alpha``).  A schedule scales the
learning rate per epoch: ``lr_epoch = lr · schedule.factor(epoch)``, epochs from 0.

>>> import numpy as np
>>> W = np.array([[1.0]]); opt = SGD(lr=0.5)
>>> opt.step([W], [np.array([[2.0]])]); W.tolist()
[[0.0]]
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from glassnet.errors import GlassnetError

Array = np.ndarray


def _positive(value: Any, field: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise GlassnetError("expected a positive finite number", got=repr(value), field=field)
    if value <= 0:
        raise GlassnetError("expected a positive finite number", got=repr(value), field=field)
    return float(value)


def _fraction(value: Any, field: str, *, open_low: bool = False) -> float:
    """A number in [0, 1) (or (0, 1) with ``open_low``)."""
    ok = isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value < 1
    if not ok or (open_low and value == 0):
        low = "(0" if open_low else "[0"
        raise GlassnetError(f"expected a number in {low}, 1)", got=repr(value), field=field)
    return float(value)


def sgd_update(
    param: Array, grad: Array, lr: float, *, out: Array | None = None, scratch: Array | None = None
) -> Array:
    """Plain gradient descent, ``param − lr·grad`` (any shape): the one update rule the
    traced step records, the checker re-runs and :class:`SGD` applies in place (``out`` =
    param, ``scratch`` a buffer for lr·grad, which may be ``grad`` itself)."""
    step = np.multiply(grad, lr, out=scratch)
    return np.subtract(param, step, out=out)


# -- learning-rate schedules -----------------------------------------------------------
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


# -- optimisers ------------------------------------------------------------------------
class Optimizer:
    """Base class: subclasses name their state and write ``_update`` (in place, once)."""

    name: ClassVar[str] = ""
    #: Names of the per-parameter state arrays (each shaped like its parameter).
    state_names: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self, lr: float, *, weight_decay: float = 0.0, schedule: Schedule | None = None
    ) -> None:
        self.lr = _positive(lr, "lr")
        if (
            isinstance(weight_decay, bool)
            or not isinstance(weight_decay, int | float)
            or not math.isfinite(weight_decay)
            or weight_decay < 0
        ):
            raise GlassnetError(
                "expected a finite number ≥ 0", got=repr(weight_decay), field="weight_decay"
            )
        self.weight_decay = float(weight_decay)
        if schedule is not None and not isinstance(schedule, Schedule):
            raise GlassnetError(
                "expected a schedule (StepLR, CosineLR) or None",
                got=repr(schedule),
                field="schedule",
            )
        self.schedule = schedule
        #: Steps taken so far (Adam's t).
        self.t = 0
        #: The rate in use this epoch (``lr`` times the schedule's factor).
        self.current_lr = self.lr
        self.state: dict[str, list[Array]] = {}
        # Scratch buffers, one per parameter, so the update allocates nothing.
        self._tmp: list[Array] = []
        self._decayed: list[Array] = []

    # -- the public step ---------------------------------------------------------------
    def set_epoch(self, epoch: int) -> None:
        """Apply the schedule for ``epoch`` (from 0)."""
        factor = self.schedule.factor(epoch) if self.schedule is not None else 1.0
        self.current_lr = self.lr * factor

    def step(self, params: list[Array], grads: list[Array], *, scratch_grads: bool = False) -> None:
        """Update every parameter in place from its gradient.  The grads are left unchanged
        unless ``scratch_grads``: then an optimiser may overwrite them (the training loop's
        buffers, refilled every step), which spares streaming one more array through the
        cache.  The updated parameters are the same either way."""
        if not self._tmp:
            self._allocate(params)
        self.t += 1
        lr = self.current_lr
        decay = self.weight_decay
        for i, (p, g) in enumerate(zip(params, grads, strict=True)):
            scratch = scratch_grads
            if decay and p.ndim == 2:
                # L2: g + λW, built in a scratch buffer so the caller's gradient stays as it was.
                g = np.multiply(p, decay, out=self._decayed[i])
                g += grads[i]
                scratch = True
            self._update(i, p, g, lr, scratch)

    def _update(self, i: int, p: Array, g: Array, lr: float, g_is_scratch: bool) -> None:
        """Update p in place; ``g_is_scratch``: g may be overwritten."""
        raise NotImplementedError

    def _allocate(self, params: list[Array]) -> None:
        if not self.state:
            self.state = {name: [np.zeros_like(p) for p in params] for name in self.state_names}
        self._tmp = [np.empty_like(p) for p in params]
        self._decayed = [np.empty_like(p) for p in params] if self.weight_decay else []

    # -- saving and restoring ----------------------------------------------------------
    def hyperparameters(self) -> dict[str, Any]:
        return {}

    def config(self) -> dict[str, Any]:
        """Everything but the arrays, JSON-ready."""
        return {
            "name": self.name,
            "lr": self.lr,
            "weight_decay": self.weight_decay,
            "schedule": self.schedule.config() if self.schedule is not None else None,
            "t": self.t,
            **self.hyperparameters(),
        }

    def state_arrays(self) -> dict[str, Array]:
        """The state as ``{"<name>.<i>": array}`` (empty before the first step)."""
        return {
            f"{name}.{i}": a for name, arrays in self.state.items() for i, a in enumerate(arrays)
        }

    def load_state_arrays(self, arrays: dict[str, Array], params: list[Array]) -> None:
        """Restore state saved by :meth:`state_arrays`, checked against ``params``."""
        if not arrays:
            self.state = {}
            self._tmp = []
            return
        state: dict[str, list[Array]] = {}
        for name in self.state_names:
            state[name] = []
            for i, p in enumerate(params):
                key = f"{name}.{i}"
                a = arrays.get(key)
                if a is None or a.shape != p.shape:
                    raise GlassnetError(
                        f"expected optimiser state '{key}' shaped {p.shape}",
                        got="nothing" if a is None else f"shape {a.shape}",
                        field="optimizer",
                    )
                state[name].append(np.array(a, dtype=p.dtype))
        self.state = state
        self._allocate(params)

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self.hyperparameters().items())
        return f"{type(self).__name__}(lr={self.lr!r}{', ' + options if options else ''})"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum."""

    name = "sgd"

    def __init__(
        self,
        lr: float = 0.01,
        *,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay, schedule=schedule)
        self.momentum = _fraction(momentum, "momentum")
        if nesterov and not self.momentum:
            raise GlassnetError(
                "expected a momentum > 0 with nesterov", got="momentum 0", field="nesterov"
            )
        self.nesterov = bool(nesterov)
        self.state_names = ("velocity",) if self.momentum else ()  # type: ignore[misc]

    def hyperparameters(self) -> dict[str, Any]:
        return {"momentum": self.momentum, "nesterov": self.nesterov}

    def _update(self, i: int, p: Array, g: Array, lr: float, g_is_scratch: bool) -> None:
        # lr·step may go into g itself once g is no longer read (not with Nesterov, which
        # reads g after tmp is written): the same two passes, one array less in the cache.
        tmp = g if g_is_scratch and not self.nesterov else self._tmp[i]
        if self.momentum:
            v = self.state["velocity"][i]
            v *= self.momentum  # v ← μv + g
            v += g
            if self.nesterov:
                np.multiply(v, self.momentum, out=tmp)  # step = g + μv
                tmp += g
                step = tmp
            else:
                step = v
        else:
            step = g
        sgd_update(p, step, lr, out=p, scratch=tmp)  # p ← p − lr·step


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015) with bias correction."""

    name = "adam"
    state_names = ("m", "v")

    def __init__(
        self,
        lr: float = 1e-3,
        *,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay, schedule=schedule)
        self.beta1 = _fraction(beta1, "beta1")
        self.beta2 = _fraction(beta2, "beta2")
        self.eps = _positive(eps, "eps")

    def hyperparameters(self) -> dict[str, Any]:
        return {"beta1": self.beta1, "beta2": self.beta2, "eps": self.eps}

    def _update(self, i: int, p: Array, g: Array, lr: float, g_is_scratch: bool) -> None:
        m, v, tmp = self.state["m"][i], self.state["v"][i], self._tmp[i]
        b1, b2 = self.beta1, self.beta2
        m *= b1  # m ← β1 m + (1−β1) g
        np.multiply(g, 1 - b1, out=tmp)
        m += tmp
        v *= b2  # v ← β2 v + (1−β2) g²
        np.multiply(g, g, out=tmp)
        tmp *= 1 - b2
        v += tmp
        # p ← p − lr·m̂/(√v̂ + ε), m̂ = m/(1−β1ᵗ), v̂ = v/(1−β2ᵗ); the corrections are
        # scalars, folded in so the arrays are touched as few times as possible.
        np.sqrt(v, out=tmp)
        tmp /= math.sqrt(1 - b2**self.t)
        tmp += self.eps
        np.divide(m, tmp, out=tmp)
        tmp *= lr / (1 - b1**self.t)
        p -= tmp


class RMSprop(Optimizer):
    """RMSprop (Hinton's lecture 6e): divide by a running root mean square of g."""

    name = "rmsprop"
    state_names = ("square_avg",)

    def __init__(
        self,
        lr: float = 1e-3,
        *,
        rho: float = 0.9,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, weight_decay=weight_decay, schedule=schedule)
        self.rho = _fraction(rho, "rho")
        self.eps = _positive(eps, "eps")

    def hyperparameters(self) -> dict[str, Any]:
        return {"rho": self.rho, "eps": self.eps}

    def _update(self, i: int, p: Array, g: Array, lr: float, g_is_scratch: bool) -> None:
        s, tmp = self.state["square_avg"][i], self._tmp[i]
        s *= self.rho  # s ← ρ s + (1−ρ) g²
        np.multiply(g, g, out=tmp)
        tmp *= 1 - self.rho
        s += tmp
        np.sqrt(s, out=tmp)  # p ← p − lr·g/(√s + ε)
        tmp += self.eps
        np.divide(g, tmp, out=tmp)
        tmp *= lr
        p -= tmp


OPTIMIZERS: dict[str, type[Optimizer]] = {"sgd": SGD, "adam": Adam, "rmsprop": RMSprop}


def get_optimizer(spec: str | Optimizer, **options: Any) -> Optimizer:
    """An optimiser from its name (``"adam"``, with keyword options) or an instance."""
    if isinstance(spec, Optimizer):
        return spec
    cls = OPTIMIZERS.get(spec.lower()) if isinstance(spec, str) else None
    if cls is None:
        raise GlassnetError(
            f"expected one of {', '.join(OPTIMIZERS)}", got=repr(spec), field="optimizer"
        )
    try:
        return cls(**options)
    except TypeError as err:
        raise GlassnetError(
            f"expected options of {cls.__name__}", got=str(err), field="optimizer"
        ) from None


def optimizer_from_config(config: dict[str, Any]) -> Optimizer:
    """Inverse of :meth:`Optimizer.config` (the arrays are restored separately)."""
    options = dict(config)
    name = options.pop("name", None)
    t = options.pop("t", 0)
    options["schedule"] = schedule_from_config(options.pop("schedule", None))
    opt = get_optimizer(str(name), **options)
    if isinstance(t, bool) or not isinstance(t, int) or t < 0:
        raise GlassnetError("expected a step count ≥ 0", got=repr(t), field="optimizer.t")
    opt.t = t
    return opt
