"""Expression graphs ("circuits"): backpropagation on any small expression, evaluated by
the same loop as a training step (:func:`glassnet.nodes.evaluate_nodes`).

>>> from glassnet.graphs import parse_expression
>>> t = parse_expression("q = x + y\\nf = q * z").trace({"x": -2, "y": 5, "z": -4})
>>> t.value("f"), t.grad("x"), t.grad("y"), t.grad("z")
(-12.0, -4.0, -4.0, 3.0)

:mod:`.base` holds the :class:`Gate` base class and the registry of gates (one small
class each in :mod:`.gates`: its forward, its local gradient, its symbols and words);
:mod:`.parse` reads an expression with Python's ``ast`` (nothing is evaluated as
Python); :mod:`.circuit` is the graph of quantities and its trace.  Values are numbers,
vectors or matrices (element-wise gates broadcast as NumPy; ``@`` and ``sum``);
:mod:`.bridge` unrolls one unit of a network's traced step as a circuit.

>>> t = parse_expression("D = x @ W; f = sum(D)").trace({"x": [1, 2], "W": [[1, 2], [3, 4]]})
>>> t.grad_array("W").tolist()
[[1.0, 1.0], [2.0, 2.0]]
"""

from __future__ import annotations

from glassnet.graphs import gates as _gates  # noqa: F401  (registers every gate)
from glassnet.graphs.base import Gate, gate_for_function, gate_for_operator, registered_gates
from glassnet.graphs.circuit import Circuit, CircuitTrace, CNode
from glassnet.graphs.parse import (
    ExpressionFile,
    is_expression_file,
    load_expression,
    parse_expression,
    parse_values,
)

__all__ = [
    "CNode",
    "Circuit",
    "CircuitTrace",
    "ExpressionFile",
    "Gate",
    "gate_for_function",
    "gate_for_operator",
    "is_expression_file",
    "load_expression",
    "parse_expression",
    "parse_values",
    "registered_gates",
]
