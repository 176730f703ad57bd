"""RMSprop (Hinton's lecture 6e): divide the step by a running root mean square of g.

``s ← ρ·s + (1−ρ)·g²``;  ``p ← p − lr·g/(√s + ε)`` (PyTorch's ``RMSprop`` with
``alpha = ρ``, no momentum, not centred).  ``s`` is Adam's second moment without the
bias correction, so it is computed by the same function.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from glassnet.nodes import Key, NodeDecl, Rule
from glassnet.optimizers.adam import second_moment
from glassnet.optimizers.base import (
    Array,
    Field,
    Optimizer,
    hyper,
    lr_field,
    register,
    weight_decay_field,
)
from glassnet.optimizers.schedules import Schedule

if TYPE_CHECKING:
    from glassnet.mathtree import Node


def rms_step(
    p: Array,
    g: Array,
    s: Array,
    lr: float,
    eps: float,
    *,
    out: Array | None = None,
    scratch: Array | None = None,
) -> Array:
    """``p − lr·g/(√s + ε)`` (any shape; ``out`` may be p; ``scratch`` not g or p)."""
    d = np.sqrt(s, out=scratch)
    d += eps
    np.divide(g, d, out=d)
    d *= lr
    return np.subtract(p, d, out=out)


@register
class RMSprop(Optimizer):
    """RMSprop: each parameter's step divided by the root of its running mean of g²."""

    name = "rmsprop"
    title = "RMSprop (Hinton, lecture 6e)"
    fields: ClassVar[tuple[Field, ...]] = (
        lr_field(1e-3),
        Field("rho", float, 0.9, 0.0, 1.0, high_open=True, words="ρ, g²'s mean's decay"),
        Field("eps", float, 1e-8, 0.0, None, low_open=True, words="ε, keeps the division safe"),
        weight_decay_field(),
    )
    state_names = ("square_avg",)
    torch_state: ClassVar[dict[str, str]] = {"square_avg": "square_avg"}
    role_symbols: ClassVar[dict[str, str]] = {"square_avg": "s"}
    role_words: ClassVar[dict[str, str]] = {
        "square_avg_prev": "The running mean of g² from the previous step (zero at the first).",
        "square_avg": "The running mean of the squared gradient, weighted by ρ.",
        "new": "The parameter moves against its gradient divided by the root of that mean.",
    }
    role_why: ClassVar[dict[str, str]] = {
        "new": "Dividing by √s, the gradient's recent root mean square, gives every "
        "parameter a step of about lr whatever the scale of its gradient.",
    }

    rho: float
    eps: float

    def __init__(
        self,
        lr: float = 1e-3,
        *,
        rho: float = 0.9,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay, schedule=schedule)

    def _rule(
        self,
        p: Array,
        g: Array,
        state: Mapping[str, Array],
        tmp: Array,
        lr: float,
        g_is_scratch: bool,
    ) -> None:
        s = state["square_avg"]
        second_moment(s, g, self.rho, out=s, scratch=tmp)
        rms_step(p, g, s, lr, self.eps, out=p, scratch=tmp)

    def _update_decls(self, param: str, layer: int, *, t: int, decay: bool) -> list[NodeDecl]:
        decls, g = self._grad_node(param, layer, decay)
        lr, rho, eps = self.current_lr, self.rho, self.eps
        s: Key = (f"square_avg_{param}", layer)
        s_rule: Rule = lambda ins: second_moment(ins[0], ins[1], rho)  # noqa: E731
        step: Rule = lambda ins: rms_step(ins[0], ins[1], ins[2], lr, eps)  # noqa: E731
        return [
            *decls,
            NodeDecl(s[0], layer, ((f"square_avg_{param}_prev", layer), g), s_rule, "update"),
            NodeDecl(f"{param}_new", layer, ((param, layer), g, s), step, "update"),
        ]

    def _symbols(self, role: str, ins: list[Node], t: int | None) -> Node:
        from glassnet.mathtree import MINUS, PLUS, TIMES, Const, Frac, Func, Paren, Pow, row

        rho = hyper("rho", self.rho)
        if role == "square_avg":  # [s_prev, g]
            one_minus = Paren(row(Const("1"), MINUS, rho))
            return row(rho, TIMES, ins[0], PLUS, one_minus, TIMES, Pow(ins[1], "2"))
        if role == "new":  # [p, g, s]
            den = row(Func("\u221a", ins[2]), PLUS, hyper("eps", self.eps))
            return row(ins[0], MINUS, hyper("lr", self.current_lr), TIMES, Frac(ins[1], den))
        return super()._symbols(role, ins, t)

    def _alternatives(
        self, param: str, layer: int, *, t: int, decay: bool
    ) -> dict[str, dict[Key, Rule]]:
        lr, eps, new = self.current_lr, self.eps, (f"{param}_new", layer)
        return {
            "rmsprop_sqrt_forgotten": {new: lambda ins: ins[0] - lr * ins[1] / (ins[2] + eps)},
        }

    def torch_spec(self) -> tuple[str, dict[str, Any]]:
        return "RMSprop", {
            "lr": self.lr,
            "alpha": self.rho,
            "eps": self.eps,
            "weight_decay": self.weight_decay,
        }
