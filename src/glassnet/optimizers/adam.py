"""Adam (Kingma & Ba, 2015), with bias correction; ``weight_decay`` is L2 (as PyTorch's
``Adam``; the decoupled form is :mod:`glassnet.optimizers.adamw`).

``m ← β1·m + (1−β1)·g``;  ``v ← β2·v + (1−β2)·g²``;  ``m̂ = m/(1−β1ᵗ)``,
``v̂ = v/(1−β2ᵗ)``;  ``p ← p − lr·m̂/(√v̂ + ε)``.

The traced step records m̂ and v̂ as nodes and calls :func:`adam_step` on them; ``fit``
calls the same :func:`adam_step` on m and v with the two corrections passed as scalars
(``bias1``, ``bias2``), folded into the passes it makes anyway — the same rule, two
passes fewer over each parameter.  The two agree to rounding (about 1e-16 relative).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from glassnet.nodes import Key, NodeDecl, Rule
from glassnet.optimizers.base import (
    Array,
    Field,
    Optimizer,
    copy_first,
    hyper,
    lr_field,
    register,
    weight_decay_field,
)
from glassnet.optimizers.schedules import Schedule

if TYPE_CHECKING:
    from glassnet.mathtree import Node


def moment(
    m_prev: Array,
    g: Array,
    beta: float,
    *,
    out: Array | None = None,
    scratch: Array | None = None,
) -> Array:
    """The running mean of the gradient, ``β·m_prev + (1−β)·g`` (any shape).  ``out``
    may be ``m_prev`` (in place); ``scratch`` holds (1−β)·g and may be ``g`` itself."""
    m = np.multiply(m_prev, beta, out=out)
    m += np.multiply(g, 1 - beta, out=scratch)
    return m


def second_moment(
    v_prev: Array,
    g: Array,
    beta: float,
    *,
    out: Array | None = None,
    scratch: Array | None = None,
) -> Array:
    """The running mean of the squared gradient, ``β·v_prev + (1−β)·g²`` (any shape);
    ``out`` and ``scratch`` as for :func:`moment`."""
    v = np.multiply(v_prev, beta, out=out)
    s = np.multiply(g, g, out=scratch)
    s *= 1 - beta
    v += s
    return v


def bias_factor(beta: float, t: int) -> float:
    """``1 − βᵗ``: the weight the running mean's t terms sum to (t from 1)."""
    return 1 - beta**t


def bias_correct(m: Array, beta: float, t: int, *, out: Array | None = None) -> Array:
    """``m / (1 − βᵗ)``: the running mean rescaled as if it had started from the data."""
    return np.divide(m, bias_factor(beta, t), out=out)


def adam_step(
    p: Array,
    m_hat: Array,
    v_hat: Array,
    lr: float,
    eps: float,
    *,
    bias1: float = 1.0,
    bias2: float = 1.0,
    out: Array | None = None,
    scratch: Array | None = None,
) -> Array:
    """``p − lr·(m̂/bias1)/(√(v̂/bias2) + ε)`` (any shape).  With the defaults m̂, v̂ are
    the corrected moments; ``fit`` passes the raw moments with ``bias1 = 1 − β1ᵗ`` and
    ``bias2 = 1 − β2ᵗ`` (scalars applied where a pass is made anyway).  ``out`` may be p;
    ``scratch`` (shaped like p) must not be m̂ or p."""
    d = np.sqrt(v_hat, out=scratch)
    if bias2 != 1.0:
        d /= math.sqrt(bias2)
    d += eps
    np.divide(m_hat, d, out=d)
    d *= lr / bias1
    return np.subtract(p, d, out=out)


@register
class Adam(Optimizer):
    """Adam: per-parameter steps from running means of g and g², bias-corrected."""

    name = "adam"
    title = "Adam (Kingma & Ba, 2015)"
    fields: ClassVar[tuple[Field, ...]] = (
        lr_field(1e-3),
        Field("beta1", float, 0.9, 0.0, 1.0, high_open=True, words="β1, the mean's decay"),
        Field("beta2", float, 0.999, 0.0, 1.0, high_open=True, words="β2, g²'s mean's decay"),
        Field("eps", float, 1e-8, 0.0, None, low_open=True, words="ε, keeps the division safe"),
        weight_decay_field(),
    )
    state_names = ("m", "v")
    torch_state: ClassVar[dict[str, str]] = {"m": "exp_avg", "v": "exp_avg_sq"}
    role_symbols: ClassVar[dict[str, str]] = {"m_hat": "m\u0302", "v_hat": "v\u0302"}
    role_words: ClassVar[dict[str, str]] = {
        "m_prev": "The running mean of the gradient from the previous step (zero at the first).",
        "v_prev": "The running mean of the squared gradient from the previous step (zero at "
        "the first).",
        "m": "The first moment: a running mean of the gradient, weighted by β1.",
        "v": "The second moment: a running mean of the squared gradient, weighted by β2.",
        "m_hat": "The first moment with its bias corrected: divided by 1 − β1ᵗ.",
        "v_hat": "The second moment with its bias corrected: divided by 1 − β2ᵗ.",
        "new": "The parameter moves against m̂, each entry scaled by 1/(√v̂ + ε): its own step size.",
    }
    role_why: ClassVar[dict[str, str]] = {
        "m_hat": "m starts at 0, so after t steps m = (1−β1)·Σ β1^(t−k)·g_k, whose weights "
        "sum to (1−β1)(1 + β1 + … + β1^(t−1)) = 1 − β1ᵗ, not 1.  Dividing by 1 − β1ᵗ makes "
        "them sum to 1: at t = 1, m̂ = g exactly.  Without it the first steps are about "
        "1 − β1 = 0.1 times too short.",
        "v_hat": "The same as for m̂: v's weights sum to 1 − β2ᵗ, which for β2 = 0.999 is "
        "0.001 at the first step — uncorrected, √v would be about 30 times too small and the "
        "first steps that much too long.",
        "new": "m̂/√v̂ is about ±1 where the gradient keeps its sign and smaller where it "
        "is noisy, so every parameter takes a step of at most about lr whatever its "
        "gradient's scale; ε only guards the division where v̂ is 0.",
        "m": "A running mean smooths the gradient over about 1/(1 − β1) = 10 steps, as "
        "momentum does.",
        "v": "The running mean of g² measures each parameter's gradient scale; the step "
        "divides by its root.",
    }

    beta1: float
    beta2: float
    eps: float

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
        super().__init__(
            lr=lr, beta1=beta1, beta2=beta2, eps=eps, weight_decay=weight_decay, schedule=schedule
        )

    def _rule(
        self,
        p: Array,
        g: Array,
        state: Mapping[str, Array],
        tmp: Array,
        lr: float,
        g_is_scratch: bool,
    ) -> None:
        m, v = state["m"], state["v"]
        moment(m, g, self.beta1, out=m, scratch=tmp)
        second_moment(v, g, self.beta2, out=v, scratch=tmp)
        t = self.t
        bias1, bias2 = bias_factor(self.beta1, t), bias_factor(self.beta2, t)
        adam_step(p, m, v, lr, self.eps, bias1=bias1, bias2=bias2, out=p, scratch=tmp)

    def _param_node(self, param: str, layer: int, decay: bool) -> tuple[list[NodeDecl], Key]:
        """The parameter the step starts from: the leaf itself (AdamW: its decayed form)."""
        return [], (param, layer)

    def _update_decls(self, param: str, layer: int, *, t: int, decay: bool) -> list[NodeDecl]:
        start, p = self._param_node(param, layer, decay)
        grad, g = self._grad_node(param, layer, decay)
        lr, b1, b2, eps = self.current_lr, self.beta1, self.beta2, self.eps
        k = {s: (f"{s}_{param}", layer) for s in ("m", "v", "m_hat", "v_hat")}
        rules: list[tuple[str, tuple[Key, ...], Rule]] = [
            ("m", ((f"m_{param}_prev", layer), g), lambda ins: moment(ins[0], ins[1], b1)),
            ("v", ((f"v_{param}_prev", layer), g), lambda ins: second_moment(ins[0], ins[1], b2)),
            ("m_hat", (k["m"],), lambda ins: bias_correct(ins[0], b1, t)),
            ("v_hat", (k["v"],), lambda ins: bias_correct(ins[0], b2, t)),
        ]
        decls = [*start, *grad]
        decls += [NodeDecl(k[s][0], layer, ins, rule, "update") for s, ins, rule in rules]
        step: Rule = lambda ins: adam_step(ins[0], ins[1], ins[2], lr, eps)  # noqa: E731
        inputs = (p, k["m_hat"], k["v_hat"])
        return [*decls, NodeDecl(f"{param}_new", layer, inputs, step, "update")]

    def _symbols(self, role: str, ins: list[Node], t: int | None) -> Node:
        from glassnet.mathtree import MINUS, PLUS, TIMES, Const, Frac, Func, Paren, Pow, row

        one = Const("1")
        first = role in ("m", "m_hat")
        beta = hyper("beta1", self.beta1) if first else hyper("beta2", self.beta2)
        if role in ("m", "v"):  # [previous, g]
            grad = ins[1] if first else Pow(ins[1], "2")
            return row(beta, TIMES, ins[0], PLUS, Paren(row(one, MINUS, beta)), TIMES, grad)
        if role in ("m_hat", "v_hat"):  # [m] or [v]
            power = Pow(beta, "t", given=None if t is None else str(t))
            return Frac(ins[0], row(one, MINUS, power))
        if role == "new":  # [p (AdamW: decayed), m̂, v̂]
            den = row(Func("\u221a", ins[2]), PLUS, hyper("eps", self.eps))
            return row(ins[0], MINUS, hyper("lr", self.current_lr), TIMES, Frac(ins[1], den))
        return super()._symbols(role, ins, t)

    def _alternatives(
        self, param: str, layer: int, *, t: int, decay: bool
    ) -> dict[str, dict[Key, Rule]]:
        lr, b2, eps = self.current_lr, self.beta2, self.eps
        k = {s: (f"{s}_{param}", layer) for s in ("v", "m_hat", "v_hat", "new")}
        k["new"] = (f"{param}_new", layer)
        return {
            "adam_no_bias_correction": {k["m_hat"]: copy_first, k["v_hat"]: copy_first},
            # The root forgotten: p − lr·m̂/(v̂ + ε).
            "adam_sqrt_forgotten": {k["new"]: lambda ins: ins[0] - lr * ins[1] / (ins[2] + eps)},
            # g not squared in the second moment: v ← β2·v + (1−β2)·g.
            "adam_v_not_squared": {k["v"]: lambda ins: moment(ins[0], ins[1], b2)},
        }

    def torch_spec(self) -> tuple[str, dict[str, Any]]:
        return "Adam", {
            "lr": self.lr,
            "betas": (self.beta1, self.beta2),
            "eps": self.eps,
            "weight_decay": self.weight_decay,
        }
