"""A circuit: an expression's nodes as a graph of quantities, evaluated by the one loop
every graph uses (:func:`glassnet.nodes.evaluate_nodes`), forward and backward.

Each quantity is a key ``(kind, layer)`` as in a training step; the "layer" says which
family it belongs to, so a person's names can never collide with the graph's own:

=========  ==================  ===========================================================
layer      kind                value
=========  ==================  ===========================================================
VALUE 0    node name           the node's value (inputs and numbers are leaves)
LOCAL 2    ``c/i``             ∂c/∂(input i of c): gate c's local gradient
PATH 3     ``c/i``             the part of ∂f/∂(input i) that flows through c:
                               ∂f/∂c · ∂c/∂(input i) (:meth:`Gate.chain`: summed
                               back over broadcast axes; for ``@`` ∂f/∂D · Bᵀ, Aᵀ · ∂f/∂D)
GRAD 1     node name           ∂f/∂node: the sum of the paths into it (1 at the output)
=========  ==================  ===========================================================

So the multivariable chain rule ("gradients add up at forks") is written in the graph
itself: a node used twice has two PATH nodes and its GRAD node sums them.  A checker can
put a person's numbers in for any of these and swap a mistaken rule in (a fork's
gradient overwritten instead of summed), exactly as it does for a network's step.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.graphs.base import Gate
from glassnet.nodes import Array, Key, NodeDecl, Rule, evaluate_nodes, leaf, zeros_like_first

VALUE, GRAD, LOCAL, PATH = 0, 1, 2, 3


@dataclass(frozen=True)
class CNode:
    """One node of a circuit: an input (``gate`` None, ``constant`` None), a number
    written in the expression (``constant``), or a gate applied to ``inputs`` (names).

    ``line``: the expression's line that defines it (0 for inputs); ``named``: the person
    named it (False for the q1, q2, … glassnet gives nested parts and for numbers)."""

    name: str
    gate: Gate | None = None
    inputs: tuple[str, ...] = ()
    line: int = 0
    constant: float | None = None
    named: bool = True

    @property
    def is_input(self) -> bool:
        return self.gate is None and self.constant is None

    @property
    def label(self) -> str:
        """How the node is written: its name, or a number's value."""
        return f"{self.constant:g}" if self.constant is not None else self.name


def _arr(x: Any) -> Array:
    return np.array(x, dtype=np.float64)


class ShapeError(ValueError):
    """Inputs of a gate whose shapes do not fit (raised while evaluating, reported by
    :meth:`Circuit.trace` as a one-line error naming the node)."""

    def __init__(self, name: str, shapes: list[tuple[int, ...]]) -> None:
        super().__init__(name)
        self.name, self.shapes = name, shapes


def _forward(name: str, gate: Gate) -> Rule:
    def rule(v: Sequence[Array]) -> Array:
        if gate.matrix_product and any(np.ndim(a) == 0 for a in v):
            raise ShapeError(name, [np.shape(a) for a in v])
        try:
            return _arr(gate.forward(list(v)))
        except ValueError:  # NumPy: shapes that do not broadcast or multiply
            raise ShapeError(name, [np.shape(a) for a in v]) from None

    return rule


def _local(gate: Gate, i: int) -> Rule:
    # Inputs: the gate's inputs, then its output (σ′ and tanh′ read the output).
    return lambda v: _arr(gate.local(list(v[:-1]), v[-1], i))


def local_rule(fn: Callable[[Sequence[Any], Any, int], Any], i: int) -> Rule:
    """A local-gradient node's rule from a gate-style function (for a gate's
    alternatives, swapped in by a checker)."""
    return lambda v: _arr(fn(list(v[:-1]), v[-1], i))


def chain_rule(fn: Callable[[Array, Array, Array, int], Array], i: int) -> Rule:
    """A path node's rule from a gate-style chain function (a gate's chain
    alternatives, swapped in by a checker)."""
    return lambda v: _arr(fn(v[0], v[1], v[2], i))


def _chain(gate: Gate, i: int) -> Rule:
    # Inputs: the gate's gradient, its local gradient for input i, input i's value.
    return lambda v: _arr(gate.chain(v[0], v[1], v[2], i))


def _total(v: Sequence[Array]) -> Array:
    total = v[0]
    for a in v[1:]:
        total = total + a
    return _arr(total)


class Circuit:
    """The nodes of an expression (inputs first, then each gate after its inputs) and
    the output f whose gradient is taken."""

    def __init__(self, nodes: Sequence[CNode], output: str, source: str = "") -> None:
        self.nodes: dict[str, CNode] = {n.name: n for n in nodes}
        self.output = output
        self.source = source
        self._order = [n.name for n in nodes]
        # Who feeds the output: only those get gradient through paths (others get 0).
        self._feeds: set[str] = {output}
        for name in reversed(self._order):
            if name in self._feeds:
                self._feeds.update(self.nodes[name].inputs)
        self._decls = self._compose()

    # -- structure ---------------------------------------------------------------------
    def order(self) -> list[str]:
        """Every node's name, inputs before what they feed."""
        return list(self._order)

    def inputs(self) -> list[str]:
        """The variables given values (in first-use order)."""
        return [n for n in self._order if self.nodes[n].is_input]

    def gates(self) -> list[str]:
        """The computed nodes, in forward order."""
        return [n for n in self._order if self.nodes[n].gate is not None]

    def feeds(self, name: str) -> bool:
        """Does the output depend on ``name`` (or is it the output)?"""
        return name in self._feeds

    def has_gradient(self, name: str) -> bool:
        """Numbers written in the expression are constants: they get no gradient."""
        return self.nodes[name].constant is None

    def paths(self, name: str) -> list[tuple[str, int]]:
        """Where the gradient of ``name`` comes from: (consumer, input position) for each
        use of it by a gate that feeds the output — two or more at a fork."""
        out: list[tuple[str, int]] = []
        for c in self._order:
            node = self.nodes[c]
            if node.gate is not None and c in self._feeds:
                out += [(c, i) for i, src in enumerate(node.inputs) if src == name]
        return out

    def forks(self) -> list[str]:
        """The nodes whose gradient is a sum of two or more paths."""
        return [n for n in self._order if self.has_gradient(n) and len(self.paths(n)) > 1]

    # -- the graph of quantities -------------------------------------------------------
    def _compose(self) -> list[NodeDecl]:
        decls: list[NodeDecl] = []
        for name in self._order:  # the forward pass
            node = self.nodes[name]
            if node.gate is None:
                decls.append(leaf(name, VALUE))
            else:
                ins = tuple((s, VALUE) for s in node.inputs)
                decls.append(NodeDecl(name, VALUE, ins, _forward(name, node.gate), "forward"))
        for name in self.gates():  # every gate's local gradients
            node = self.nodes[name]
            assert node.gate is not None
            ins = (*((s, VALUE) for s in node.inputs), (name, VALUE))
            for i, src in enumerate(node.inputs):
                if self.has_gradient(src):
                    decls.append(
                        NodeDecl(f"{name}/{i}", LOCAL, ins, _local(node.gate, i), "backward")
                    )
        for name in reversed(self._order):  # the backward pass, the output first
            if not self.has_gradient(name):
                continue
            if name == self.output:
                decls.append(NodeDecl(name, GRAD, (), lambda v: _arr(1.0), "backward"))
            else:
                ps = tuple((f"{c}/{i}", PATH) for c, i in self.paths(name))
                if ps:
                    decls.append(NodeDecl(name, GRAD, ps, _total, "backward"))
                else:  # it does not feed the output: 0, of its shape
                    decls.append(
                        NodeDecl(name, GRAD, ((name, VALUE),), zeros_like_first, "backward")
                    )
            node = self.nodes[name]
            if node.gate is not None and name in self._feeds:
                for i, src in enumerate(node.inputs):
                    if self.has_gradient(src):
                        ins2 = ((name, GRAD), (f"{name}/{i}", LOCAL), (src, VALUE))
                        rule = _chain(node.gate, i)
                        decls.append(NodeDecl(f"{name}/{i}", PATH, ins2, rule, "backward"))
        return decls

    def ancestors(self, key: Key) -> set[Key]:
        """Every quantity ``key`` is computed from, directly or not."""
        inputs = {d.key: d.inputs for d in self._decls}
        found: set[Key] = set()
        todo = list(inputs.get(key, ()))
        while todo:
            k = todo.pop()
            if k not in found:
                found.add(k)
                todo.extend(inputs.get(k, ()))
        return found

    def keys(self) -> list[Key]:
        """Every quantity, in evaluation order."""
        return [d.key for d in self._decls]

    def decls(self) -> list[NodeDecl]:
        """The graph's nodes in evaluation order (forward, local gradients, backward)."""
        return list(self._decls)

    def leaves(self, values: Mapping[str, Any]) -> dict[Key, Array]:
        """The leaves: each input's value and each number written in the expression."""
        out: dict[Key, Array] = {}
        for name in self._order:
            node = self.nodes[name]
            if node.constant is not None:
                out[(name, VALUE)] = _arr(node.constant)
            elif node.is_input:
                out[(name, VALUE)] = _arr(values[name])
        return out

    def evaluate(
        self,
        values: Mapping[str, Any],
        *,
        given: Mapping[Key, Array] | None = None,
        rules: Mapping[Key, Rule] | None = None,
        each: Callable[[Array], Array] | None = None,
        upto: Key | None = None,
    ) -> dict[Key, Array]:
        """Every quantity's value: the same contract as
        :meth:`glassnet.step.StepGraph.evaluate` (``given``: a person's numbers;
        ``rules``: mistaken rules; ``each``: hand rounding; ``upto``: stop there)."""
        with np.errstate(all="ignore"):  # a bad value is reported by name in trace()
            return evaluate_nodes(
                self._decls, self.leaves(values), given=given, rules=rules, each=each, upto=upto
            )

    def trace(self, values: Mapping[str, Any], *, round_to: int | None = None) -> CircuitTrace:
        """Evaluate forward and backward in float64 (``round_to``: hand mode, every value
        rounded to that many decimals before the next step uses it); a value that is not
        finite, shapes that do not fit, or an output that is not one number is an error
        naming its node and line.  A value may be a number, a vector or a matrix (a
        NumPy array or nested lists)."""
        missing = [n for n in self.inputs() if n not in values]
        if missing:
            raise GlassnetError(
                "expected a value for every variable of the expression",
                got=f"none for {', '.join(missing)} (undefined variable)",
                field="values",
            )
        extra = sorted(set(values) - set(self.inputs()))
        if extra:
            raise GlassnetError(
                "expected values only for the expression's variables",
                got=f"{', '.join(extra)}, which it does not use",
                field="values",
            )
        each = None if round_to is None else (lambda v: np.round(v, round_to))
        try:
            forward = self.evaluate(values, each=each, upto=(self.output, VALUE))
            shape = np.shape(forward[(self.output, VALUE)])
            if shape != ():
                raise GlassnetError(
                    f"expected the output {self.output} to be one number (the gradient is "
                    f"of a number: sum(...) of a vector or matrix is one)",
                    got=f"shape {shape}",
                    field=f"expression line {self.nodes[self.output].line}",
                )
            result = self.evaluate(values, each=each)
        except ShapeError as err:
            node = self.nodes[err.name]
            assert node.gate is not None
            shapes = " and ".join(str(s) for s in err.shapes)
            raise GlassnetError(
                f"expected shapes that fit at node {err.name} ({node.gate.mark()})",
                # Ones of those shapes: only a problem of shape is reported (not a zero).
                got=node.gate.problem([np.ones(s) for s in err.shapes]) or f"shapes {shapes}",
                field=f"expression line {node.line}",
            ) from None
        for d in self._decls:
            if not np.all(np.isfinite(result[d.key])):
                raise self._not_finite(d.key, result)
        return CircuitTrace(self, result, round_to)

    def _not_finite(self, key: Key, result: Mapping[Key, Array]) -> GlassnetError:
        kind, layer = key
        name = kind.split("/")[0]
        node = self.nodes[name]
        where = f"expression line {node.line}" if node.line else "values"
        problem = None
        if node.gate is not None:
            ins = [result[(s, VALUE)] for s in node.inputs]
            problem = node.gate.problem(ins)
        what = {
            VALUE: "its value",
            GRAD: "its gradient",
            LOCAL: "its local gradient",
            PATH: "a gradient path through it",
        }[layer]
        return GlassnetError(
            f"expected finite numbers at node {name}",
            got=f"{problem or 'a number too large for float64'} ({what})",
            field=where,
        )


def format_value(a: Any, fmt: Callable[[float], str]) -> str:
    """A number, vector or matrix as text: ``3``, ``[1, 2]``, ``[[1, 2], [3, 4]]``."""
    a = np.asarray(a)
    if a.ndim == 0:
        return fmt(float(a))
    return "[" + ", ".join(format_value(x, fmt) for x in a) + "]"


class CircuitTrace:
    """A circuit evaluated: every node's value and gradient, each gate's local gradients
    and each path's contribution (read from the evaluated quantities)."""

    def __init__(
        self, circuit: Circuit, quantities: Mapping[Key, Array], round_to: int | None = None
    ) -> None:
        self.circuit = circuit
        self.quantities = dict(quantities)
        self.round_to = round_to

    @property
    def is_tensor(self) -> bool:
        """Does any node hold a vector or a matrix (not only numbers)?"""
        return any(np.ndim(self.quantities[(n, VALUE)]) for n in self.circuit.order())

    def value(self, name: str) -> float:
        """A number's value (:meth:`array` for a vector or matrix)."""
        return float(self.quantities[(name, VALUE)])

    def array(self, name: str) -> Array:
        """A node's value as an array (0-d for a number)."""
        return self.quantities[(name, VALUE)]

    def grad_array(self, name: str) -> Array:
        """∂f/∂name, of name's shape."""
        return self.quantities[(name, GRAD)]

    def local_array(self, gate: str, i: int) -> Array:
        """Gate's local gradient for its input i (element by element; for ``@``, the
        other operand)."""
        return self.quantities[(f"{gate}/{i}", LOCAL)]

    def path_array(self, gate: str, i: int) -> Array:
        """The part of ∂f/∂(gate's input i) through gate, of the input's shape."""
        return self.quantities[(f"{gate}/{i}", PATH)]

    def grad(self, name: str) -> float:
        """∂f/∂name (0 for a node that does not feed the output)."""
        return float(self.quantities[(name, GRAD)])

    def local(self, gate: str, i: int) -> float:
        """∂gate/∂(its input i)."""
        return float(self.quantities[(f"{gate}/{i}", LOCAL)])

    def path(self, gate: str, i: int) -> float:
        """The part of the gradient of gate's input i that flows through gate."""
        return float(self.quantities[(f"{gate}/{i}", PATH)])

    def to_dict(self) -> dict[str, Any]:
        """The trace as plain data (docs/graphs.md describes it)."""
        c = self.circuit
        nodes = []
        for name in c.order():
            node = c.nodes[name]
            entry: dict[str, Any] = {
                "name": name,
                "kind": "gate"
                if node.gate
                else ("constant" if node.constant is not None else "input"),
                "line": node.line,
                "shape": list(np.shape(self.array(name))),
                "value": self.array(name).tolist(),
            }
            if node.gate is not None:
                labels = [c.nodes[s].label for s in node.inputs]
                entry["gate"] = node.gate.name
                entry["inputs"] = list(node.inputs)
                entry["rule"] = node.gate.text(labels)
                entry["named"] = node.named
                entry["local"] = [
                    self.local_array(name, i).tolist() if c.has_gradient(s) else None
                    for i, s in enumerate(node.inputs)
                ]
            if c.has_gradient(name):
                entry["grad"] = self.grad_array(name).tolist()
                entry["paths"] = [
                    {
                        "via": g,
                        "input": i,
                        "upstream": self.grad_array(g).tolist(),
                        "local": self.local_array(g, i).tolist(),
                        "contribution": self.path_array(g, i).tolist(),
                    }
                    for g, i in c.paths(name)
                ]
            nodes.append(entry)
        return {
            "expression": c.source,
            "output": c.output,
            "round": self.round_to,
            "inputs": {n: self.array(n).tolist() for n in c.inputs()},
            "nodes": nodes,
            "forks": c.forks(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)
