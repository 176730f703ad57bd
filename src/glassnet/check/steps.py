"""One training step as a graph of quantities, each computed by the engine's own code.

The checker never does the maths its own way: every quantity is recomputed from the
quantities it depends on with the layer's ``pre_activation``, the activation's
``forward``/``derivative``/``vjp``, the loss's ``terms``/``grad``, ``backward_from_delta``
and :func:`glassnet.trace.sgd_update`.  An :class:`Evaluator` takes the person's values
where they wrote them and recomputes the rest, so a value "follows" when the right rule
applied to the person's own earlier numbers gives it.  A mistake (see
:mod:`glassnet.check.mistakes`) swaps one rule for an alternative.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.activations import Activation
from glassnet.check.worksheet import Key, Worksheet
from glassnet.layers import Cache, Dense
from glassnet.losses import Loss, get_loss
from glassnet.trace import Trace, sgd_update

if TYPE_CHECKING:
    from glassnet.check.mistakes import Mistake

Array = np.ndarray
Rule = Callable[[list[Array]], Array]
LEAVES: frozenset[str] = frozenset({"x", "y", "W", "b"})


def inputs_of(key: Key, n_layers: int) -> list[Key]:
    """The quantities ``key`` is computed from (empty for x, y, W, b)."""
    kind, lyr = key
    prev: Key = ("x", 0) if lyr == 1 else ("a", lyr - 1)
    L = n_layers
    table: dict[str, list[Key]] = {
        "z": [prev, ("W", lyr), ("b", lyr)],
        "a": [("z", lyr)],
        "output": [("a", L)],
        "loss_terms": [("a", L), ("y", 0)],
        "loss": [("loss_terms", 0)],
        "da_dz": [("z", lyr), ("a", lyr)],
        "delta": [("dL_da", lyr), ("da_dz", lyr)],
        "dW": [prev, ("delta", lyr)],
        "db": [("delta", lyr)],
        "W_new": [("W", lyr), ("dW", lyr)],
        "b_new": [("b", lyr), ("db", lyr)],
    }
    if kind == "dL_da":
        return [("a", L), ("y", 0)] if lyr == L else [("delta", lyr + 1), ("W", lyr + 1)]
    return table.get(kind, [])


def order(n_layers: int) -> list[Key]:
    """Every quantity in an order where inputs come first (the derivation's order)."""
    keys: list[Key] = [("x", 0), ("y", 0)]
    for lyr in range(1, n_layers + 1):
        keys += [("W", lyr), ("b", lyr)]
    for lyr in range(1, n_layers + 1):
        keys += [("z", lyr), ("a", lyr)]
    keys += [("output", 0), ("loss_terms", 0), ("loss", 0)]
    for lyr in range(n_layers, 0, -1):
        keys += [("dL_da", lyr), ("da_dz", lyr), ("delta", lyr), ("dW", lyr), ("db", lyr)]
    for lyr in range(1, n_layers + 1):
        keys += [("W_new", lyr), ("b_new", lyr)]
    return keys


@dataclass
class Context:
    """What every evaluation of one worksheet shares: the network's rules and the
    right values (from the engine's trace, float64, unrounded)."""

    activations: list[Activation]
    loss: Loss
    lr: float
    update_bias: bool
    batch: int
    right: dict[Key, Array]
    trace: Trace

    @property
    def n_layers(self) -> int:
        return len(self.activations)

    def act(self, lyr: int) -> Activation:
        return self.activations[lyr - 1]

    @classmethod
    def from_worksheet(cls, sheet: Worksheet) -> Context:
        spec = sheet.spec
        trace = spec.trace()
        right: dict[Key, Array] = {("x", 0): trace.x, ("y", 0): trace.y}
        right[("loss_terms", 0)] = trace.loss_terms
        right[("loss", 0)] = np.asarray(trace.loss)
        right[("output", 0)] = trace.output
        for lt in trace.layers:
            for kind in ("W", "b", "z", "a", "da_dz", "dL_da", "delta", "dW", "db"):
                right[(kind, lt.index)] = getattr(lt, kind)
            right[("W_new", lt.index)] = lt.W_new
            right[("b_new", lt.index)] = lt.b_new
        return cls(
            activations=[layer.activation for layer in spec.network.layers],
            loss=get_loss(spec.loss),
            lr=spec.lr,
            update_bias=spec.update_bias,
            batch=int(trace.x.shape[0]),
            right=right,
            trace=trace,
        )


def correct_rule(ctx: Context, key: Key, ins: Sequence[Array]) -> Array:
    """The right way to compute ``key`` from its inputs, with the engine's code."""
    kind, lyr = key
    if kind == "z":
        x, W, b = ins
        return Dense(W, b, ctx.act(lyr)).pre_activation(x)
    if kind == "a":
        return ctx.act(lyr).forward(ins[0])
    if kind == "output":
        return ins[0].copy()
    if kind == "loss_terms":
        return ctx.loss.terms(ins[0], ins[1])
    if kind == "loss":
        return np.asarray(ins[0].sum() / ins[0].shape[0])
    if kind == "dL_da":
        if lyr == ctx.n_layers:
            return ctx.loss.grad(ins[0], ins[1])
        delta, W = ins
        return _backprop(W, delta, np.zeros((delta.shape[0], W.shape[0]))).dx
    if kind == "da_dz":
        return ctx.act(lyr).derivative(ins[0], ins[1])
    if kind == "delta":
        return ctx.act(lyr).vjp(ins[1], ins[0])
    if kind == "dW":
        return _backprop(None, ins[1], ins[0]).dW
    if kind == "db":
        return _backprop(None, ins[0], np.zeros((ins[0].shape[0], 1))).db
    if kind == "W_new":
        return sgd_update(ins[0], ins[1], ctx.lr)
    if kind == "b_new":
        return sgd_update(ins[0], ins[1], ctx.lr) if ctx.update_bias else ins[0].copy()
    raise KeyError(key)  # pragma: no cover - leaves are never computed


def _backprop(W: Array | None, delta: Array, x: Array):  # -> Grads
    """The layer's own ``backward_from_delta`` (W only matters for dx)."""
    if W is None:
        W = np.zeros((x.shape[1], delta.shape[1]))
    layer = Dense(W, np.zeros(W.shape[1]), "identity")
    return layer.backward_from_delta(Cache(x, delta, delta), delta, need_dx=True)


class Evaluator:
    """Values of one step: the person's where ``given`` has them, otherwise recomputed
    from the inputs with the right rule, or with ``mistakes`` swapped in.

    ``diagonal`` lists softmax Jacobians the person wrote as their diagonal: the full
    Jacobian then takes the person's diagonal and the engine's off-diagonal terms (from
    the person's own z and a).
    """

    def __init__(
        self,
        ctx: Context,
        given: Mapping[Key, Array],
        *,
        diagonal: Iterable[Key] = (),
        mistakes: Sequence[tuple[Mistake, Any]] = (),
    ) -> None:
        self.ctx = ctx
        self.given = given
        self.diagonal = frozenset(diagonal)
        # Rules that replace a step first, then those that wrap whatever rule is in force.
        self.mistakes = sorted(mistakes, key=lambda mv: mv[0].wraps)
        self.memo: dict[Key, Array] = {}
        self.used: set[str] = set()

    def value(self, key: Key) -> Array:
        if key not in self.memo:
            self.memo[key] = self._value(key)
        return self.memo[key]

    def _value(self, key: Key) -> Array:
        if key in self.given:
            v = np.asarray(self.given[key], dtype=np.float64)
            if key in self.diagonal:
                ins = [self.value(k) for k in inputs_of(key, self.ctx.n_layers)]
                J = correct_rule(self.ctx, key, ins).copy()
                idx = np.arange(J.shape[1])
                J[:, idx, idx] = v
                return J
            return v
        if key[0] in LEAVES:
            return self.ctx.right[key]
        return self.compute(key)

    def compute(self, key: Key) -> Array:
        """``key`` from its inputs (ignoring any given value of ``key`` itself)."""
        ins = [self.value(k) for k in inputs_of(key, self.ctx.n_layers)]

        def correct(i: list[Array]) -> Array:
            return correct_rule(self.ctx, key, i)

        rule: Rule = correct
        for mistake, variant in self.mistakes:
            if key[0] in mistake.kinds:
                rule = self._bind(mistake, variant, key, rule)
        return rule(ins)

    def _bind(self, mistake: Mistake, variant: Any, key: Key, base: Rule) -> Rule:
        def rule(ins: list[Array]) -> Array:
            alt = mistake.rule(self, key, ins, variant, base)  # type: ignore[misc]
            if alt is None:
                return base(ins)
            alt = np.asarray(alt, dtype=np.float64)
            ref = base(ins)
            if alt.shape != ref.shape or not np.array_equal(alt, ref):
                self.used.add(mistake.id)
            return alt

        return rule


def upstream_given(ctx: Context, given: Mapping[Key, Array], target: Key) -> list[Key]:
    """The given quantities ``target`` is computed from, through unwritten steps only."""
    found: list[Key] = []
    seen: set[Key] = set()
    stack = list(inputs_of(target, ctx.n_layers))
    while stack:
        k = stack.pop()
        if k in seen:
            continue
        seen.add(k)
        if k in given:
            found.append(k)
        elif k[0] not in LEAVES:
            stack.extend(inputs_of(k, ctx.n_layers))
    return found


def propagate(
    ctx: Context,
    given: Mapping[Key, Array],
    diagonal: Iterable[Key],
    target: Key,
    spread: Mapping[Key, Array],
    mistakes: Sequence[tuple[Mistake, Any]] = (),
) -> Array:
    """How far ``target`` (recomputed from ``given``) can move when each upstream given
    number moves by its ``spread`` (e.g. half a unit in its last written place): the sum
    over those numbers of |change|, each moved alone — a first-order bound on the
    rounding carried into this step.  With ``mistakes``, through the mistaken rules."""
    diagonal = frozenset(diagonal)

    def run(g: Mapping[Key, Array]) -> Array:
        ev = Evaluator(ctx, g, diagonal=diagonal, mistakes=mistakes)
        return ev.compute(target) if target[0] not in LEAVES else ev.value(target)

    given = {k: v for k, v in given.items() if k != target}
    base = run(given)
    total = np.zeros_like(base)
    for k in upstream_given(ctx, given, target):
        s = spread.get(k)
        if s is None:
            continue
        s = np.broadcast_to(s, np.shape(given[k]))
        for idx in np.ndindex(s.shape):
            if s[idx] == 0:
                continue
            moved = dict(given)
            v = np.array(given[k], dtype=np.float64, copy=True)
            v[idx] += s[idx]
            moved[k] = v
            total += np.abs(run(moved) - base)
    return total
