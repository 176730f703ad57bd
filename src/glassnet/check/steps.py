"""Marking walks the engine's step graph (:mod:`glassnet.step`), with the person's values.

The checker never does the maths its own way, nor lists the step's quantities again:
every quantity is recomputed from the quantities it depends on by the step graph's own
rule (:meth:`glassnet.step.StepGraph.compute`).  An :class:`Evaluator` takes the person's
values where they wrote them and recomputes the rest, so a value "follows" when the right
rule applied to the person's own earlier numbers gives it.  A mistake (see
:mod:`glassnet.check.mistakes`) swaps one rule for an alternative.

``output`` is another name of a_L (:func:`glassnet.step.canonical`): a written ``output``
feeds the error and dE/da_L exactly as a written a_L does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from glassnet.check.mistakes import Mistake
from glassnet.check.quantities import Context, Key, inputs_of, order
from glassnet.step import LEAVES, canonical

Array = np.ndarray
Rule = Callable[[list[Array]], Array]

__all__ = [
    "LEAVES",
    "Context",
    "Evaluator",
    "correct_rule",
    "inputs_of",
    "order",
    "propagate",
    "upstream_given",
]


def correct_rule(ctx: Context, key: Key, ins: Sequence[Array]) -> Array:
    """The right way to compute ``key`` from its inputs: the step graph's rule."""
    if key[0] == "output":
        return np.array(ins[0], copy=True)
    return ctx.graph.compute(key, ins)


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
        # a_L and output are one node: whichever name the person wrote stands for both.
        if key not in self.given and key[0] in ("a", "output"):
            other = ("output", 0) if key[0] == "a" else ("a", self.ctx.n_layers)
            if canonical(key, self.ctx.n_layers) == canonical(other, self.ctx.n_layers):
                if other in self.given:
                    return self.value(other)
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
        if key[0] == "output" and ("a", self.ctx.n_layers) not in self.given:
            # Recomputing output is recomputing a_L (not reading the output written).
            return self.compute(("a", self.ctx.n_layers))
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
