"""Plain stochastic gradient descent, ``p ← p − lr·g`` (optionally with L2 decay).

``SGD(momentum=0.9)`` is kept as a convenience: it builds the momentum optimiser
(:class:`glassnet.optimizers.momentum.Momentum`), whose registry name is ``"momentum"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.nodes import Key, NodeDecl, Rule
from glassnet.optimizers.base import (
    Array,
    Field,
    Optimizer,
    hyper,
    l2_grad,
    lr_field,
    register,
    weight_decay_field,
)
from glassnet.optimizers.schedules import Schedule

if TYPE_CHECKING:
    from glassnet.mathtree import Node


def sgd_update(
    param: Array, grad: Array, lr: float, *, out: Array | None = None, scratch: Array | None = None
) -> Array:
    """Plain gradient descent, ``param − lr·grad`` (any shape): the one update rule the
    traced step records, the checker re-runs and the optimisers apply in place (``out`` =
    param, ``scratch`` a buffer for lr·grad, which may be ``grad`` itself)."""
    step = np.multiply(grad, lr, out=scratch)
    return np.subtract(param, step, out=out)


@register
class SGD(Optimizer):
    """Stochastic gradient descent: ``p ← p − lr·g``.

    ``SGD(lr, momentum=μ, nesterov=...)`` with μ > 0 returns a
    :class:`~glassnet.optimizers.momentum.Momentum` (a subclass; PyTorch spells both
    ``SGD``), so code and model files written before the plugins keep working;
    ``momentum=0`` is plain SGD.

    >>> W = np.array([[1.0]]); opt = SGD(lr=0.5)
    >>> opt.step([W], [np.array([[2.0]])]); W.tolist()
    [[0.0]]
    """

    #: The subclass ``SGD(momentum=μ)`` builds (momentum.py sets it to itself).
    with_momentum: ClassVar[type[SGD] | None] = None

    name = "sgd"
    title = "stochastic gradient descent"
    fields: ClassVar[tuple[Field, ...]] = (lr_field(0.01), weight_decay_field())
    role_words: ClassVar[dict[str, str]] = {
        "new": "Gradient descent: the parameter moves against its gradient, by the learning "
        "rate times it.",
    }
    role_why: ClassVar[dict[str, str]] = {
        "new": "The gradient points where the loss grows fastest, so a small step against "
        "it lowers the loss: to first order by lr·‖g‖².  The learning rate sets how small.",
    }

    def __new__(
        cls,
        lr: float = 0.01,
        *,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        schedule: Schedule | None = None,
    ) -> SGD:
        if cls is SGD and (momentum or nesterov):
            if not momentum:
                raise GlassnetError(
                    "expected a momentum > 0 with nesterov", got="momentum 0", field="nesterov"
                )
            # Built by the subclass that adds a velocity, which names itself in
            # SGD.with_momentum when its module is imported (importing the package
            # imports it): this module needs nothing from the one built on it.
            if SGD.with_momentum is None:  # pragma: no cover - the package imports it
                raise GlassnetError("expected glassnet.optimizers imported", got="sgd alone")
            cls = SGD.with_momentum  # its __init__ runs next, with the same arguments
        return super().__new__(cls)

    def __init__(
        self,
        lr: float = 0.01,
        *,
        momentum: float = 0.0,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        schedule: Schedule | None = None,
    ) -> None:
        # momentum and nesterov are 0/False here (otherwise __new__ built a Momentum).
        super().__init__(lr=lr, weight_decay=weight_decay, schedule=schedule)

    def _rule(
        self,
        p: Array,
        g: Array,
        state: Mapping[str, Array],
        tmp: Array,
        lr: float,
        g_is_scratch: bool,
    ) -> None:
        # lr·g may go into g itself when g is the caller's scratch: one array less in cache.
        sgd_update(p, g, lr, out=p, scratch=g if g_is_scratch else tmp)

    def linear_update(self) -> tuple[float, float] | None:
        # p − lr·(g + λ·p) = (1 − lr·λ)·p + (−lr)·g: the linear form, decay in β.
        lr = self.current_lr
        return -lr, 1.0 - lr * self.weight_decay

    def _update_decls(self, param: str, layer: int, *, t: int, decay: bool) -> list[NodeDecl]:
        decls, g = self._grad_node(param, layer, decay)
        lr = self.current_lr
        rule: Rule = lambda ins: sgd_update(ins[0], ins[1], lr)  # noqa: E731
        return [*decls, NodeDecl(f"{param}_new", layer, ((param, layer), g), rule, "update")]

    def _symbols(self, role: str, ins: list[Node], t: int | None) -> Node:
        from glassnet.mathtree import MINUS, TIMES, row

        if role == "new":  # [p, g]
            return row(ins[0], MINUS, hyper("lr", self.current_lr), TIMES, ins[1])
        return super()._symbols(role, ins, t)

    def _alternatives(
        self, param: str, layer: int, *, t: int, decay: bool
    ) -> dict[str, dict[Key, Rule]]:
        lr, wd, new = self.current_lr, self.weight_decay, (f"{param}_new", layer)
        out: dict[str, dict[Key, Rule]] = {
            "update_sign": {new: lambda ins: sgd_update(ins[0], ins[1], -lr)}
        }
        if wd and not decay:  # [b, db]: b − lr·(db + λ·b)
            out["weight_decay_on_bias"] = {
                new: lambda ins: sgd_update(ins[0], l2_grad(ins[1], ins[0], wd), lr)
            }
        return out

    def torch_spec(self) -> tuple[str, dict[str, Any]]:
        return "SGD", {"lr": self.lr, "weight_decay": self.weight_decay}
