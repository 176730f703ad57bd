"""Heavy-ball momentum, optionally Nesterov's — PyTorch's convention.

``v ← μ·v + g``; ``p ← p − lr·v``; Nesterov: ``p ← p − lr·(g + μ·v)`` (with the new v).
Other texts keep ``v ← μ·v − lr·g; p ← p + v``: the same parameters with a velocity
scaled by −lr, which is why mixing the two conventions is a slip check knows
(``momentum_sign_slip``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from glassnet.nodes import Key, NodeDecl, Rule
from glassnet.optimizers.base import (
    Array,
    Field,
    hyper,
    lr_field,
    register,
    weight_decay_field,
)
from glassnet.optimizers.schedules import Schedule
from glassnet.optimizers.sgd import SGD, sgd_update

if TYPE_CHECKING:
    from glassnet.mathtree import Node


def velocity(v_prev: Array, g: Array, momentum: float, *, out: Array | None = None) -> Array:
    """``μ·v_prev + g`` (any shape; ``out`` may be ``v_prev``, updating it in place)."""
    v = np.multiply(v_prev, momentum, out=out)
    v += g
    return v


def nesterov_direction(g: Array, v: Array, momentum: float, *, out: Array | None = None) -> Array:
    """Nesterov's step direction ``g + μ·v`` (``out`` must not be ``g``)."""
    d = np.multiply(v, momentum, out=out)
    d += g
    return d


@register
class Momentum(SGD):
    """SGD with heavy-ball momentum μ, or Nesterov's (``nesterov=True``)."""

    name = "momentum"
    title = "SGD with momentum"
    fields: ClassVar[tuple[Field, ...]] = (
        lr_field(0.01),
        Field("momentum", float, 0.9, 0.0, 1.0, low_open=True, high_open=True, words="μ"),
        Field("nesterov", bool, False, words="Nesterov's look-ahead step"),
        weight_decay_field(),
    )
    state_names = ("velocity",)
    torch_state: ClassVar[dict[str, str]] = {"velocity": "momentum_buffer"}
    role_symbols: ClassVar[dict[str, str]] = {"velocity": "v"}
    role_words: ClassVar[dict[str, str]] = {
        **SGD.role_words,
        "velocity_prev": "The velocity carried from the previous step (zero at the first).",
        "velocity": "The velocity: μ times the previous velocity plus the gradient.",
        "new": "The parameter moves against its velocity (Nesterov: against the gradient "
        "plus μ times the new velocity), by the learning rate.",
    }
    role_why: ClassVar[dict[str, str]] = {
        **SGD.role_why,
        "velocity": "Unrolled, v = g_t + μ·g_(t−1) + μ²·g_(t−2) + …: a running sum of past "
        "gradients that fades by μ per step.  Directions the gradients agree on build up "
        "(up to 1/(1 − μ) times one gradient); directions they flip in cancel.",
        "new": "With Nesterov the step is g + μ·v: the part of the next step that momentum "
        "will take anyway is taken now, so the gradient is, in effect, read where the "
        "parameter is about to be (Sutskever et al., 2013, in PyTorch's form).",
    }

    momentum: float
    nesterov: bool

    def __init__(
        self,
        lr: float = 0.01,
        *,
        momentum: float = 0.9,
        nesterov: bool = False,
        weight_decay: float = 0.0,
        schedule: Schedule | None = None,
    ) -> None:
        # Straight to Optimizer.__init__: SGD's own takes no momentum field.
        super(SGD, self).__init__(
            lr=lr,
            momentum=momentum,
            nesterov=nesterov,
            weight_decay=weight_decay,
            schedule=schedule,
        )

    def linear_update(self) -> tuple[float, float] | None:
        return None  # the velocity needs g itself (SGD's linear form is not this rule)

    def _rule(
        self,
        p: Array,
        g: Array,
        state: Mapping[str, Array],
        tmp: Array,
        lr: float,
        g_is_scratch: bool,
    ) -> None:
        # lr·step may go into g itself once g is no longer read (not with Nesterov, which
        # reads g after tmp is written): the same two passes, one array less in the cache.
        tmp = g if g_is_scratch and not self.nesterov else tmp
        v = state["velocity"]
        velocity(v, g, self.momentum, out=v)
        step = nesterov_direction(g, v, self.momentum, out=tmp) if self.nesterov else v
        sgd_update(p, step, lr, out=p, scratch=tmp)

    def _update_decls(self, param: str, layer: int, *, t: int, decay: bool) -> list[NodeDecl]:
        decls, g = self._grad_node(param, layer, decay)
        lr, mu = self.current_lr, self.momentum
        v: Key = (f"velocity_{param}", layer)
        v_rule: Rule = lambda ins: velocity(ins[0], ins[1], mu)  # noqa: E731
        decls.append(
            NodeDecl(v[0], layer, ((f"velocity_{param}_prev", layer), g), v_rule, "update")
        )
        new = f"{param}_new"
        if self.nesterov:
            rule: Rule = lambda ins: sgd_update(  # noqa: E731
                ins[0], nesterov_direction(ins[1], ins[2], mu), lr
            )
            decls.append(NodeDecl(new, layer, ((param, layer), g, v), rule, "update"))
        else:
            plain: Rule = lambda ins: sgd_update(ins[0], ins[1], lr)  # noqa: E731
            decls.append(NodeDecl(new, layer, ((param, layer), v), plain, "update"))
        return decls

    def _symbols(self, role: str, ins: list[Node], t: int | None) -> Node:
        from glassnet.mathtree import MINUS, PLUS, TIMES, Paren, row

        mu = hyper("momentum", self.momentum)
        if role == "velocity":  # [v_prev, g]
            return row(mu, TIMES, ins[0], PLUS, ins[1])
        if role == "new":  # [p, v], Nesterov [p, g, v]
            step = Paren(row(ins[1], PLUS, mu, TIMES, ins[2])) if self.nesterov else ins[1]
            return row(ins[0], MINUS, hyper("lr", self.current_lr), TIMES, step)
        return super()._symbols(role, ins, t)

    def _alternatives(
        self, param: str, layer: int, *, t: int, decay: bool
    ) -> dict[str, dict[Key, Rule]]:
        lr, mu = self.current_lr, self.momentum
        v, new = (f"velocity_{param}", layer), (f"{param}_new", layer)
        out: dict[str, dict[Key, Rule]] = {
            # The other sign convention (v ← μv − g, p ← p + lr·v; Nesterov p + lr·(μv − g)),
            # fed the previous step's velocity of PyTorch's: right at the first step only.
            "momentum_sign_slip": {
                v: lambda ins: velocity(ins[0], -ins[1], mu),
                new: (
                    (lambda ins: sgd_update(ins[0], nesterov_direction(-ins[1], ins[2], mu), -lr))
                    if self.nesterov
                    else (lambda ins: sgd_update(ins[0], ins[1], -lr))
                ),
            },
            # The previous velocity left out: v = g, as if every step were the first.
            "velocity_not_carried": {v: lambda ins: np.array(ins[1], copy=True)},
        }
        if self.nesterov:
            out["nesterov_as_plain_momentum"] = {new: lambda ins: sgd_update(ins[0], ins[2], lr)}
        return out

    def torch_spec(self) -> tuple[str, dict[str, Any]]:
        return "SGD", {
            "lr": self.lr,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
            "weight_decay": self.weight_decay,
        }


SGD.with_momentum = Momentum  # SGD(momentum=μ) builds one (see SGD.__new__)
