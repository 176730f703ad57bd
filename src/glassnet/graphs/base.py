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
from typing import ClassVar

from glassnet.errors import GlassnetError
from glassnet.mathtree import Node

#: A local-gradient rule: (the gate's input values, its output, which input) -> ∂out/∂in.
LocalRule = Callable[[Sequence[float], float, int], float]

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

    def forward(self, ins: Sequence[float]) -> float:
        """The gate's output from its inputs."""
        raise NotImplementedError

    def local(self, ins: Sequence[float], out: float, i: int) -> float:
        """∂out/∂ins[i], from the inputs and the output (some gates read the output:
        σ′ = σ(1 − σ), tanh′ = 1 − tanh²)."""
        raise NotImplementedError

    def problem(self, ins: Sequence[float]) -> str | None:
        """Why these inputs are outside the gate's domain (None when they are not)."""
        return None

    def text(self, args: Sequence[str]) -> str:
        """The forward rule as plain text over the inputs' names: ``x + y``."""
        return f"{self.function or self.name}({', '.join(args)})"

    def expr(self, args: Sequence[Node]) -> Node:
        """The forward rule in symbols (a :mod:`glassnet.mathtree` tree)."""
        raise NotImplementedError

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[float]) -> Node:
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

    def local_words(self, names: Sequence[str], i: int, ins: Sequence[float]) -> str:
        """The local gradient of input i in words; by default the gate's own words."""
        return self.words


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
