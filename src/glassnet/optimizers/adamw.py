"""AdamW (Loshchilov & Hutter, 2019): Adam with decoupled weight decay, PyTorch's form.

``p ← p − lr·λ·p`` (that is, ``p·(1 − lr·λ)``), then the Adam step on the loss's own
gradient.  L2 decay (Adam's ``weight_decay``) adds λ·p to g, so Adam's 1/√v̂ rescales
it and heavily-updated weights are decayed less; decoupled, every weight shrinks by the
same factor.  As everywhere in glassnet, only weight matrices are decayed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from glassnet.nodes import Key, NodeDecl, Rule
from glassnet.optimizers.adam import Adam, adam_step
from glassnet.optimizers.base import (
    Array,
    Field,
    copy_first,
    hyper,
    register,
    weight_decay_field,
)
from glassnet.optimizers.schedules import Schedule

if TYPE_CHECKING:
    from glassnet.mathtree import Node


def decoupled_decay(p: Array, lr: float, weight_decay: float, *, out: Array | None = None) -> Array:
    """``p·(1 − lr·λ)`` = p − lr·λ·p (any shape; ``out`` may be p)."""
    return np.multiply(p, 1 - lr * weight_decay, out=out)


@register
class AdamW(Adam):
    """Adam with decoupled weight decay (default λ = 0.01, as PyTorch's)."""

    name = "adamw"
    title = "AdamW (Loshchilov & Hutter, 2019)"
    fields: ClassVar[tuple[Field, ...]] = (
        *(f for f in Adam.fields if f.name != "weight_decay"),
        weight_decay_field(0.01, "decoupled weight decay λ"),
    )
    l2_decay = False
    role_symbols: ClassVar[dict[str, str]] = {**Adam.role_symbols, "decayed": "{param}\u0303"}
    role_words: ClassVar[dict[str, str]] = {
        **Adam.role_words,
        "decayed": "The parameter shrunk by weight decay before the step: times 1 − lr·λ.",
    }
    role_why: ClassVar[dict[str, str]] = {
        **Adam.role_why,
        "decayed": "Decoupled decay shrinks the weight itself, by lr·λ of it, instead of "
        "adding λ·W to the gradient: Adam would divide that by √v̂, so weights with large "
        "gradients would hardly be decayed.  This way every weight decays at the same rate.",
    }

    def __init__(
        self,
        lr: float = 1e-3,
        *,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.01,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(
            lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, schedule=schedule
        )

    def _decay(self, i: int, p: Array, g: Array, lr: float, scratch: bool) -> tuple[Array, bool]:
        decoupled_decay(p, lr, self.weight_decay, out=p)  # in place, before the Adam step
        return g, scratch

    def _decay_flat(self, p: Array, g: Array, tmp: Array, lr: float) -> None:
        decoupled_decay(p, lr, self.weight_decay, out=p)  # the decayed slice, in place

    def _param_node(self, param: str, layer: int, decay: bool) -> tuple[list[NodeDecl], Key]:
        """With λ > 0 a decayed parameter's step starts from ``decayed_{param}`` =
        {param}·(1 − lr·λ)."""
        if not (decay and self.weight_decay):
            return [], (param, layer)
        lr, wd = self.current_lr, self.weight_decay
        rule: Rule = lambda ins: decoupled_decay(ins[0], lr, wd)  # noqa: E731
        node = NodeDecl(f"decayed_{param}", layer, ((param, layer),), rule, "update")
        return [node], node.key

    def _symbols(self, role: str, ins: list[Node], t: int | None) -> Node:
        from glassnet.mathtree import MINUS, TIMES, Const, Paren, row

        if role == "decayed":  # [p]
            lr, wd = hyper("lr", self.current_lr), hyper("weight_decay", self.weight_decay)
            return row(ins[0], TIMES, Paren(row(Const("1"), MINUS, lr, TIMES, wd)))
        return super()._symbols(role, ins, t)

    def _alternatives(
        self, param: str, layer: int, *, t: int, decay: bool
    ) -> dict[str, dict[Key, Rule]]:
        out = super()._alternatives(param, layer, t=t, decay=decay)
        if not self.weight_decay:
            return out
        lr, wd, eps = self.current_lr, self.weight_decay, self.eps
        d, new = (f"decayed_{param}", layer), (f"{param}_new", layer)
        if decay:
            out["weight_decay_forgotten"] = {d: copy_first}
            # The decay without the learning rate: p − λ·p.
            out["adamw_decay_without_lr"] = {d: lambda ins: decoupled_decay(ins[0], 1.0, wd)}
        else:  # [b, m̂, v̂]: the step taken from b·(1 − lr·λ)
            out["weight_decay_on_bias"] = {
                new: lambda ins: adam_step(decoupled_decay(ins[0], lr, wd), ins[1], ins[2], lr, eps)
            }
        return out

    def torch_spec(self) -> tuple[str, dict[str, Any]]:
        _, kwargs = super().torch_spec()
        return "AdamW", kwargs
