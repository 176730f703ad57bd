"""The gate base class and the registry of gates.

A gate is one operation of a circuit and owns everything about itself, as an activation
does: its forward rule, its local gradients (∂out/∂input, the part of the chain rule it
contributes), their symbols for explain, its words ("add distributes"), and what makes
its input invalid (division by zero).  The parser asks the registry which gate a Python
operator or a function name stands for; nothing outside a gate's file compares with a
gate's name.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.mathtree import Node

#: A local-gradient rule: (the gate's input values, its output, which input) -> ∂out/∂in
#: (numbers, or for a circuit of vectors and matrices arrays, element by element).
LocalRule = Callable[[Sequence[Any], Any, int], Any]

#: A rule for a path's part: (upstream, local gradient, the input's value, which input).
ChainRule = Callable[[np.ndarray, np.ndarray, np.ndarray, int], np.ndarray]

#: Every registered gate class by its name (what JSON and the function call call it).
_REGISTRY: dict[str, type[Gate]] = {}


class Gate:
    """One operation of a circuit: ``arity`` inputs (numbers), one output.

    A subclass sets ``name`` (its registry key, in JSON); ``operator`` (the ``ast``
    operator class it stands for, ``ast.Add``) or ``function`` (the name it is called by
    in an expression, ``exp``: a two-input max is the gate ``maximum`` called as
    ``max``, as in PyTorch); and ``constant_power``
    for a gate whose right operand must be a number written in the expression (``**``),
    which the gate keeps as ``power`` rather than as an input.
    """

    name: ClassVar[str] = ""
    arity: ClassVar[int] = 1
    operator: ClassVar[type[ast.AST] | None] = None
    function: ClassVar[str | None] = None
    constant_power: ClassVar[bool] = False
    #: The gate's mark in a circuit picture (+, ×); by default its function's name.
    glyph: ClassVar[str] = ""
    #: What the gate does to the gradient on the way back, in a sentence.
    words: ClassVar[str] = ""

    def __init__(self, power: float | None = None) -> None:
        self.power = power

    def mark(self) -> str:
        """The gate's mark in a picture."""
        return self.glyph or self.function or self.name

    #: Capability: the gate is a matrix product (its backward pass is not element by
    #: element: ∂f/∂A = ∂f/∂D · Bᵀ, ∂f/∂B = Aᵀ · ∂f/∂D), written out so by explain.
    matrix_product: ClassVar[bool] = False
    #: Capability: the gate is for vectors and matrices only (``@``, ``sum``): an
    #: exercise of numbers leaves it out of its mix.
    tensor_only: ClassVar[bool] = False

    def forward(self, ins: Sequence[Any]) -> Any:
        """The gate's output from its inputs (numbers, or NumPy arrays: element-wise
        gates broadcast as NumPy does)."""
        raise NotImplementedError

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        """∂out/∂ins[i], from the inputs and the output (some gates read the output:
        σ′ = σ(1 − σ), tanh′ = 1 − tanh²); element by element for arrays."""
        raise NotImplementedError

    def chain(self, upstream: np.ndarray, local: np.ndarray, x: np.ndarray, i: int) -> np.ndarray:
        """The part of ∂f/∂(input i) through this gate, from the gate's gradient
        (``upstream``, the output's shape), its local gradient for input i and the input
        ``x`` itself (for its shape): upstream · local element by element, summed over
        the axes along which x was broadcast (a number added to a vector gets the sum of
        the vector's gradient)."""
        return unbroadcast(np.asarray(upstream * local, dtype=np.float64), np.shape(x))

    def chain_alternatives(self) -> dict[str, tuple[str, ChainRule]]:
        """Named wrong rules for a part of an input's gradient (id -> (title, rule like
        :meth:`chain`)): mistakes in how upstream and local are combined, not in the
        local gradient (a matrix product's factors in the wrong order).  A rule may raise
        ValueError where the shapes do not allow the mistake."""
        return {}

    def problem(self, ins: Sequence[Any]) -> str | None:
        """Why these inputs are outside the gate's domain (None when they are not)."""
        return None

    def text(self, args: Sequence[str]) -> str:
        """The forward rule as plain text over the inputs' names: ``x + y``."""
        return f"{self.function or self.name}({', '.join(args)})"

    def expr(self, args: Sequence[Node]) -> Node:
        """The forward rule in symbols (a :mod:`glassnet.mathtree` tree)."""
        raise NotImplementedError

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        """∂out/∂input i in symbols (``ins``: the input values, for a gate whose rule
        depends on which input is larger)."""
        raise NotImplementedError

    def code(self, args: Sequence[str]) -> str:
        """The forward rule as a NumPy expression over the inputs' code (``v['x']``), for
        a notebook that checks the page: ``v['x'] + v['y']``."""
        raise NotImplementedError

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        """∂out/∂input i as a NumPy expression (``out``: the gate's output's code)."""
        raise NotImplementedError

    def alternatives(self) -> dict[str, tuple[str, LocalRule]]:
        """Named wrong local-gradient rules a checker can swap in for this gate (id ->
        (title, rule)): the mistakes people make with it, written by the gate itself."""
        return {}

    def local_words(self, names: Sequence[str], i: int, ins: Sequence[Any]) -> str:
        """The local gradient of input i in words; by default the gate's own words."""
        return self.words


def unbroadcast(g: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``g`` (a broadcast result's shape) summed back to ``shape``: over its leading
    extra axes and over every axis where ``shape`` has 1 (NumPy's broadcasting undone).

    >>> unbroadcast(np.ones((2, 3)), (3,)).tolist()
    [2.0, 2.0, 2.0]
    """
    g = np.asarray(g, dtype=np.float64)
    while g.ndim > len(shape):
        g = g.sum(axis=0)
    for axis, n in enumerate(shape):
        if n == 1 and g.shape[axis] != 1:
            g = g.sum(axis=axis, keepdims=True)
    return np.broadcast_to(g, shape).copy() if g.shape != shape else g


def reduced_axes(out_shape: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """The axes of ``out_shape`` that :func:`unbroadcast` sums to reach ``shape``."""
    pad = (1,) * (len(out_shape) - len(shape)) + tuple(shape)
    pairs = enumerate(zip(pad, out_shape, strict=True))
    return tuple(a for a, (n, m) in pairs if n == 1 and m != 1)


def register(cls: type[Gate]) -> type[Gate]:
    """Class decorator: add a gate to the registry under its ``name``."""
    if not cls.name or cls.name in _REGISTRY:
        raise ValueError(f"gate {cls.__name__} needs a new name, has {cls.name!r}")
    _REGISTRY[cls.name] = cls
    return cls


def registered_gates() -> dict[str, type[Gate]]:
    """Every registered gate class by name."""
    return dict(_REGISTRY)


def gate_for_operator(op: type[ast.AST]) -> type[Gate] | None:
    """The gate a Python operator (``ast.Add``, ``ast.USub``…) stands for, or None."""
    for cls in _REGISTRY.values():
        if cls.operator is op:
            return cls
    return None


def gate_for_function(name: str) -> type[Gate]:
    """The gate a function call names; an unknown function is an error listing the known."""
    for cls in _REGISTRY.values():
        if cls.function is not None and cls.function == name:
            return cls
    known = ", ".join(sorted(c.function for c in _REGISTRY.values() if c.function))
    raise GlassnetError(f"expected a function among {known}", got=repr(name))
