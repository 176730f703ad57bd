"""Random circuits to work by hand (``glassnet exercise --graph``): a chosen number of
gates from a chosen mix, with forks, at one-decimal values — drawn again until every
number is finite, moderate and away from a kink (a max's tie, relu at 0), so the
exercise has one clear answer."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.graphs.base import Gate, registered_gates
from glassnet.graphs.circuit import Circuit
from glassnet.graphs.parse import parse_expression

#: Variables of a generated circuit.
INPUTS: tuple[str, ...] = ("x", "y", "z")
#: The most gates a generated exercise has (a person works it by hand).
MAX_EXERCISE_GATES = 30


def gate_mix(names: Sequence[str] | None) -> list[type[Gate]]:
    """The gate classes of a mix (registered names, or the functions' names); every gate
    of numbers by default (an exercise's values are numbers: ``@`` and ``sum`` are for
    vectors and matrices)."""
    known = {k: c for k, c in registered_gates().items() if not c.tensor_only}
    if not names:
        return list(known.values())
    by_call = {c.function: c for c in known.values() if c.function}
    out = []
    for n in names:
        cls = known.get(n) or by_call.get(n)
        if cls is None:
            raise GlassnetError(
                f"expected gates among {', '.join(sorted(known))} (gates of numbers)",
                got=repr(n),
                field="--gates",
            )
        out.append(cls)
    return out


def _kinks(circuit: Circuit, values: dict[str, float]) -> bool:
    """Is any gate at a point where its local gradient jumps (or nearly)?"""
    trace = circuit.trace(values)
    for name in circuit.gates():
        node = circuit.nodes[name]
        assert node.gate is not None
        ins = [trace.value(s) for s in node.inputs]
        # A gate whose local gradient changes between nearby inputs is at a kink:
        # compared a little either side of its input values.
        for i in range(len(ins)):
            for h in (1e-6, -1e-6):
                moved = list(ins)
                moved[i] += h
                out = node.gate.forward(moved)
                if abs(node.gate.local(moved, out, i) - trace.local(name, i)) > 1e-3:
                    return True
    return False


def random_circuit(
    n_gates: int, mix: Sequence[type[Gate]], rng: np.random.Generator, *, decimals: int = 1
) -> tuple[str, dict[str, float]]:
    """An expression of ``n_gates`` gates (one a line, q1, q2, …, f last) and its
    variables' values, every variable used and at least one fork where the mix allows."""
    if not 1 <= n_gates <= MAX_EXERCISE_GATES:
        raise GlassnetError(
            f"expected 1 to {MAX_EXERCISE_GATES} gates", got=str(n_gates), field="--graph"
        )
    for _ in range(500):
        names = list(INPUTS)
        unused = list(INPUTS)
        lines = []
        for k in range(n_gates):
            cls = mix[int(rng.integers(len(mix)))]
            gate = cls(power=float(rng.choice([2, 3]))) if cls.constant_power else cls()
            # The first operand: a node nothing reads yet (so all feed f); the others:
            # any node, often one already read (a fork).
            args = [unused.pop(0) if unused else names[-1]]
            while len(args) < cls.arity:
                pick = str(rng.choice(names))
                if pick not in args:
                    args.append(pick)
            for a in args:
                if a in unused:
                    unused.remove(a)
            out = "f" if k == n_gates - 1 else f"q{k + 1}"
            lines.append(f"{out} = {gate.text(args)}")
            names.append(out)
            unused.append(out)
        if len(unused) != 1:
            continue  # a variable or gate feeds nothing: draw again
        text = "\n".join(lines)
        circuit = parse_expression(text)
        if not circuit.forks() and any(c.arity > 1 for c in mix) and n_gates > 2:
            continue
        values = {
            n: float(np.round(rng.uniform(0.2, 3.0) * rng.choice([-1, 1]), decimals))
            for n in INPUTS
        }
        try:
            trace = circuit.trace(values)
        except GlassnetError:
            continue
        big = max(abs(v) for v in trace.quantities.values())
        if big > 1e3 or _kinks(circuit, values):
            continue
        return text, values
    raise GlassnetError(
        "expected a mix of gates that can make a circuit to work by hand",
        got="none found",
        field="--gates",
    )
