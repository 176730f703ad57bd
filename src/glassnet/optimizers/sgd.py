"""Plain stochastic gradient descent, ``p ← p − lr·g`` (optionally with L2 decay).

``SGD(momentum=0.9)`` is kept as a convenience: it builds the momentum optimiser
(:class:`glassnet.optimizers.momentum.Momentum`), whose registry name is ``"momentum"``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.nodes import Key, NodeDecl, Rule
from glassnet.optimizers.base import (
    Array,
    Field,
    Optimizer,
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
    :class:`~glassnet.optimizers.momentum.Momentum` (a subclass), as PyTorch's
    ``SGD(momentum=...)`` does the same; ``momentum=0`` is plain SGD.

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
        "g": "The gradient the update uses: with L2 weight decay, the loss's gradient plus λ "
        "times the weight (biases are not decayed).",
        "new": "Gradient descent: the parameter moves against its gradient, by the learning "
        "rate times it.",
    }
    role_why: ClassVar[dict[str, str]] = {
        "g": "L2 weight decay adds (λ/2)·‖W‖² to the loss; its derivative with respect to W "
        "is λ·W, so the gradient becomes ∂L/∂W + λ·W.  Biases are not decayed (as in "
        "scikit-learn): shrinking them does not make the function smoother.",
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

    def _update(self, i: int, p: Array, g: Array, lr: float, g_is_scratch: bool) -> None:
        # lr·g may go into g itself when g is the caller's scratch: one array less in cache.
        sgd_update(p, g, lr, out=p, scratch=g if g_is_scratch else self._tmp[i])

    def _update_decls(self, param: str, layer: int, *, t: int, decay: bool) -> list[NodeDecl]:
        decls, g = self._grad_node(param, layer, decay)
        lr = self.current_lr
        rule: Rule = lambda ins: sgd_update(ins[0], ins[1], lr)  # noqa: E731
        return [*decls, NodeDecl(f"{param}_new", layer, ((param, layer), g), rule, "update")]

    def _symbols(
        self,
        role: str,
        param: str,
        layer: int,
        sym: Callable[[Key], Node],
        t: int | None,
        decay: bool,
    ) -> Node:
        from glassnet.mathtree import MINUS, TIMES, row

        if role == "new":
            g = self._grad_key(param, layer)
            return row(sym((param, layer)), MINUS, self._lr(), TIMES, sym(g))
        return super()._symbols(role, param, layer, sym, t, decay)

    def _lr(self) -> Node:
        from glassnet.optimizers.base import hyper

        return hyper("lr", self.current_lr)

    def _alternatives(
        self, param: str, layer: int, *, t: int, decay: bool
    ) -> dict[str, dict[Key, Rule]]:
        lr, new = self.current_lr, (f"{param}_new", layer)
        return {"update_sign": {new: lambda ins: sgd_update(ins[0], ins[1], -lr)}}

    def torch_spec(self) -> tuple[str, dict[str, Any]]:
        return "SGD", {"lr": self.lr, "weight_decay": self.weight_decay}
