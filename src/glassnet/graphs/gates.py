"""The gates of a circuit, one small class each: forward, local gradient, symbols, words.

NOTE on kinks (where the derivative does not exist, the value PyTorch uses): relu′(0) = 0,
abs′(0) = 0, and max/min of two equal inputs send half the gradient to each.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from glassnet.graphs.base import ChainRule, Gate, LocalRule, register
from glassnet.mathtree import (
    MATMUL,
    MINUS,
    PLUS,
    TIMES,
    Const,
    Exp,
    Frac,
    Func,
    Matrix,
    Node,
    Op,
    Paren,
    Pow,
    Row,
    Text,
    join,
)

NEG = Op("-", "\u2212")


def _num(value: float) -> str:
    """A constant of a rule as written (2, not 2.0)."""
    return f"{value:g}"


def _wrap(node: Node) -> Node:
    """Parentheses around a compound operand (x + y)·z."""
    return Paren(node) if isinstance(node, Row | Frac) else node


def _route(ins: Sequence[Any], i: int, *, larger: bool) -> Any:
    """Max (min) routes the gradient to the larger (smaller) input; a tie splits it
    (element by element for arrays)."""
    a, b = np.asarray(ins[i], dtype=np.float64), np.asarray(ins[1 - i], dtype=np.float64)
    wins = a > b if larger else a < b
    return np.where(a == b, 0.5, np.where(wins, 1.0, 0.0))


def _consts(values: Any) -> Node:
    """A rule's constant, or for arrays the matrix of them (a vector as one row): the
    local gradient of a gate that routes, element by element."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim == 0:
        return Const(_num(float(v)))
    rows = v.reshape(1, -1) if v.ndim == 1 else v
    return Matrix(tuple(tuple(Const(_num(float(c))) for c in r) for r in rows))


@register
class Add(Gate):
    name = "add"
    arity = 2
    operator = ast.Add
    glyph = "+"
    words = (
        "an add gate distributes: each input gets the upstream gradient unchanged "
        "(local gradient 1)"
    )

    def forward(self, ins: Sequence[Any]) -> Any:
        return ins[0] + ins[1]

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        return 1.0

    def alternatives(self) -> dict[str, tuple[str, LocalRule]]:
        return {
            "add_gradient_split": (
                "the add gate's gradient split between its inputs instead of copied to each",
                lambda ins, out, i: 0.5,
            )
        }

    def text(self, args: Sequence[str]) -> str:
        return f"{args[0]} + {args[1]}"

    def code(self, args: Sequence[str]) -> str:
        return f"{args[0]} + {args[1]}"

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        return "1.0"

    def expr(self, args: Sequence[Node]) -> Node:
        return join(args, PLUS)

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        return Const("1")


@register
class Sub(Gate):
    name = "sub"
    arity = 2
    operator = ast.Sub
    glyph = "\u2212"
    words = (
        "a subtract gate passes the upstream gradient to its first input and its negative "
        "to the second (local gradients 1 and −1)"
    )

    def forward(self, ins: Sequence[Any]) -> Any:
        return ins[0] - ins[1]

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        return 1.0 if i == 0 else -1.0

    def alternatives(self) -> dict[str, tuple[str, LocalRule]]:
        return {
            "subtract_sign_lost": (
                "the subtract gate's second input given +1 as its local gradient, not −1",
                lambda ins, out, i: 1.0,
            )
        }

    def text(self, args: Sequence[str]) -> str:
        return f"{args[0]} - {args[1]}"

    def code(self, args: Sequence[str]) -> str:
        return f"{args[0]} - {args[1]}"

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        return "1.0" if i == 0 else "-1.0"

    def expr(self, args: Sequence[Node]) -> Node:
        return Row((args[0], MINUS, _wrap(args[1])))

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        return Const("1" if i == 0 else "-1")


@register
class Mul(Gate):
    name = "mul"
    arity = 2
    operator = ast.Mult
    glyph = "\u00d7"
    words = "a multiply gate swaps: each input's local gradient is the other input's value"

    def forward(self, ins: Sequence[Any]) -> Any:
        return ins[0] * ins[1]

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        return ins[1 - i]

    def alternatives(self) -> dict[str, tuple[str, LocalRule]]:
        return {
            "multiply_not_swapped": (
                "the multiply gate's local gradient not swapped: ∂(xy)/∂x written as x",
                lambda ins, out, i: ins[i],
            )
        }

    def text(self, args: Sequence[str]) -> str:
        return f"{args[0]} * {args[1]}"

    def code(self, args: Sequence[str]) -> str:
        return f"{args[0]} * {args[1]}"

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        return args[1 - i]

    def expr(self, args: Sequence[Node]) -> Node:
        return join([_wrap(a) for a in args], TIMES)

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        return args[1 - i]


@register
class Div(Gate):
    name = "div"
    arity = 2
    operator = ast.Div
    glyph = "\u00f7"
    words = "a divide gate: ∂(a/b)/∂a = 1/b and ∂(a/b)/∂b = −a/b²"

    def forward(self, ins: Sequence[Any]) -> Any:
        return np.divide(ins[0], ins[1])

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        a, b = ins
        return np.divide(1.0, b) if i == 0 else np.divide(-a, b * b)

    def problem(self, ins: Sequence[Any]) -> str | None:
        return "division by zero" if np.any(np.asarray(ins[1]) == 0) else None

    def text(self, args: Sequence[str]) -> str:
        return f"{args[0]} / {args[1]}"

    def code(self, args: Sequence[str]) -> str:
        return f"{args[0]} / {args[1]}"

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        return f"1 / {args[1]}" if i == 0 else f"-{args[0]} / {args[1]} ** 2"

    def expr(self, args: Sequence[Node]) -> Node:
        return Frac(args[0], args[1])

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        if i == 0:
            return Frac(Const("1"), args[1])
        return Row((NEG, Frac(args[0], Pow(_wrap(args[1]), "2"))))


@register
class Neg(Gate):
    name = "neg"
    arity = 1
    operator = ast.USub
    glyph = "\u2212x"
    words = "a negation gate flips the sign of the upstream gradient (local gradient −1)"

    def forward(self, ins: Sequence[Any]) -> Any:
        return -ins[0]

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        return -1.0

    def text(self, args: Sequence[str]) -> str:
        return f"-{args[0]}"

    def code(self, args: Sequence[str]) -> str:
        return f"-{args[0]}"

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        return "-1.0"

    def expr(self, args: Sequence[Node]) -> Node:
        return Row((NEG, _wrap(args[0])))

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        return Const("-1")


@register
class Power(Gate):
    """x ** p for a constant p (written in the expression; not an input)."""

    name = "pow"
    arity = 1
    operator = ast.Pow
    constant_power = True
    words = "a power gate: ∂(xᵖ)/∂x = p·xᵖ⁻¹"

    @property
    def p(self) -> float:
        assert self.power is not None
        return self.power

    def forward(self, ins: Sequence[Any]) -> Any:
        return np.power(ins[0], self.p)

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        return self.p * np.power(ins[0], self.p - 1)

    def problem(self, ins: Sequence[Any]) -> str | None:
        x = np.asarray(ins[0])
        if np.any(x < 0) and self.p != int(self.p):
            return f"a negative number to the power {_num(self.p)}"
        if np.any(x == 0) and self.p < 1:
            return f"0 to the power {_num(self.p)} (no finite gradient)"
        return None

    def mark(self) -> str:
        return f"x^{_num(self.p)}"

    def text(self, args: Sequence[str]) -> str:
        return f"{args[0]} ** {_num(self.p)}"

    def code(self, args: Sequence[str]) -> str:
        return f"{args[0]} ** {self.p!r}"

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        return f"{self.p!r} * {args[0]} ** {self.p - 1!r}"

    def expr(self, args: Sequence[Node]) -> Node:
        return Pow(_wrap(args[0]), _num(self.p))

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        return Row((Const(_num(self.p)), TIMES, Pow(_wrap(args[0]), _num(self.p - 1))))


@register
class ExpGate(Gate):
    name = "exp"
    function = "exp"
    words = "an exp gate: the local gradient is its own output, e to the input"

    def forward(self, ins: Sequence[Any]) -> Any:
        return np.exp(ins[0])

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        return out

    def code(self, args: Sequence[str]) -> str:
        return f"np.exp({args[0]})"

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        return out

    def expr(self, args: Sequence[Node]) -> Node:
        return Exp(args[0])

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        return Exp(args[0])


@register
class Log(Gate):
    name = "log"
    function = "log"
    words = "a log gate (natural logarithm): the local gradient is 1 over the input"

    def forward(self, ins: Sequence[Any]) -> Any:
        return np.log(ins[0])

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        return np.divide(1.0, ins[0])

    def problem(self, ins: Sequence[Any]) -> str | None:
        return (
            "the log of a number that is not positive" if np.any(np.asarray(ins[0]) <= 0) else None
        )

    def code(self, args: Sequence[str]) -> str:
        return f"np.log({args[0]})"

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        return f"1 / {args[0]}"

    def expr(self, args: Sequence[Node]) -> Node:
        return Func("ln", args[0])

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        return Frac(Const("1"), args[0])


class _Route(Gate):
    """max or min of two inputs: the gradient goes to the winning input only."""

    arity = 2
    larger: bool = True

    def forward(self, ins: Sequence[Any]) -> Any:
        return np.maximum(ins[0], ins[1]) if self.larger else np.minimum(ins[0], ins[1])

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        return _route(ins, i, larger=self.larger)

    def alternatives(self) -> dict[str, tuple[str, LocalRule]]:
        larger = self.larger
        return {
            f"{self.function}_routes_to_both": (
                f"the {self.function} gate's gradient sent to both inputs",
                lambda ins, out, i: 1.0,
            ),
            f"{self.function}_routes_to_the_other": (
                f"the {self.function} gate's gradient sent to the input that did not win",
                lambda ins, out, i: 1.0 - _route(ins, i, larger=larger),
            ),
        }

    def code(self, args: Sequence[str]) -> str:
        return f"np.{'maximum' if self.larger else 'minimum'}({args[0]}, {args[1]})"

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        # All of it to the winner, half each at a tie (as local() and PyTorch).
        a, b = args[i], args[1 - i]
        wins = ">" if self.larger else "<"
        return f"np.where({a} {wins} {b}, 1.0, np.where({a} == {b}, 0.5, 0.0))"

    def expr(self, args: Sequence[Node]) -> Node:
        return Func(self.function or self.name, Row((args[0], Text(", "), args[1])))

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        return _consts(_route(ins, i, larger=self.larger))

    def local_words(self, names: Sequence[str], i: int, ins: Sequence[Any]) -> str:
        share = _route(ins, i, larger=self.larger)
        which = "larger" if self.larger else "smaller"
        if np.ndim(share):
            return (
                f"a {self.function} gate routes element by element: each element of "
                f"{names[i]} gets the gradient where it is the {which} (half at a tie)"
            )
        if share == 0.5:
            return f"a {self.function} gate with equal inputs: each gets half the gradient"
        if share:
            return (
                f"a {self.function} gate routes: {names[i]} is the {which} input, so it gets all "
                "the gradient"
            )
        return (
            f"a {self.function} gate routes: {names[i]} is not the {which} input, so it gets none"
        )


@register
class Max(_Route):
    name = "maximum"  # PyTorch's name for the two-input max
    function = "max"
    larger = True
    words = "a max gate routes: the larger input gets the whole upstream gradient, the other none"


@register
class Min(_Route):
    name = "minimum"
    function = "min"
    larger = False
    words = "a min gate routes: the smaller input gets the whole upstream gradient, the other none"


@register
class Abs(Gate):
    name = "abs"
    function = "abs"
    words = "an abs gate: the local gradient is the input's sign (0 at 0)"

    def forward(self, ins: Sequence[Any]) -> Any:
        return np.abs(ins[0])

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        return np.sign(ins[0])

    def code(self, args: Sequence[str]) -> str:
        return f"np.abs({args[0]})"

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        return f"np.sign({args[0]})"

    def expr(self, args: Sequence[Node]) -> Node:
        return Func("abs", args[0])

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        return Func("sign", args[0])


@register
class SigmoidGate(Gate):
    name = "sigmoid"
    function = "sigmoid"
    glyph = "\u03c3"  # σ: "sigmoid" is wider than its circle
    words = "a sigmoid gate: the local gradient is σ(1 − σ), read from the gate's own output"

    def forward(self, ins: Sequence[Any]) -> Any:
        # exp of a non-positive number only: no overflow, and σ(−400) keeps its tiny
        # value (1/(1 + e⁴⁰⁰) would overflow; 0.5·(1 + tanh) would round it to 0).
        x = np.asarray(ins[0], dtype=np.float64)
        e = np.exp(-np.abs(x))
        return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        return out * (1.0 - out)

    def alternatives(self) -> dict[str, tuple[str, LocalRule]]:
        return {
            "sigmoid_derivative_at_input": (
                "σ′ evaluated at the gate's input: x(1 − x) instead of σ(x)(1 − σ(x))",
                lambda ins, out, i: ins[0] * (1.0 - ins[0]),
            ),
            "sigmoid_derivative_as_output": (
                "σ′ written as σ itself, not σ(1 − σ)",
                lambda ins, out, i: out,
            ),
        }

    def code(self, args: Sequence[str]) -> str:
        return f"1 / (1 + np.exp(-{args[0]}))"

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        return f"{out} * (1 - {out})"

    def expr(self, args: Sequence[Node]) -> Node:
        # Written out (1/(1 + e^−x)), so the page says what σ is.
        return Frac(Const("1"), Row((Const("1"), PLUS, Exp(Row((NEG, _wrap(args[0])))))))

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        return Row((out, TIMES, Paren(Row((Const("1"), MINUS, out)))))


@register
class TanhGate(Gate):
    name = "tanh"
    function = "tanh"
    words = "a tanh gate: the local gradient is 1 − tanh², read from the gate's own output"

    def forward(self, ins: Sequence[Any]) -> Any:
        return np.tanh(ins[0])

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        return 1.0 - out * out

    def code(self, args: Sequence[str]) -> str:
        return f"np.tanh({args[0]})"

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        return f"1 - {out} ** 2"

    def expr(self, args: Sequence[Node]) -> Node:
        return Func("tanh", args[0], tex=r"\tanh")

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        return Row((Const("1"), MINUS, Pow(out, "2")))


@register
class ReluGate(Gate):
    name = "relu"
    function = "relu"
    words = "a ReLU gate passes the gradient where its input is positive and blocks it elsewhere"

    def forward(self, ins: Sequence[Any]) -> Any:
        return np.maximum(ins[0], 0.0)

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        return np.where(np.asarray(ins[0]) > 0, 1.0, 0.0)

    def code(self, args: Sequence[str]) -> str:
        return f"np.maximum({args[0]}, 0.0)"

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        return f"np.where({args[0]} > 0, 1.0, 0.0)"

    def expr(self, args: Sequence[Node]) -> Node:
        return Func("max", Row((Const("0"), Text(", "), args[0])))

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        return _consts(np.where(np.asarray(ins[0]) > 0, 1.0, 0.0))


def as_matrix(a: Any, *, left: bool) -> np.ndarray:
    """An operand of ``@`` as a matrix, as NumPy's matmul reads it: a vector on the left
    is a row (1, k), on the right a column (k, 1)."""
    a = np.asarray(a, dtype=np.float64)
    if a.ndim == 1:
        return a.reshape(1, -1) if left else a.reshape(-1, 1)
    return a


Product = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def _product_part(
    upstream: Any, local: Any, x: Any, i: int, first: Product, second: Product
) -> np.ndarray:
    """A part of a matrix product's input gradient: ``first(G, A, B)`` for input 0,
    ``second(G, A, B)`` for input 1, with the operands as the matrices NumPy multiplies
    (``local`` is the other operand); a result not of the input's shape is a
    ValueError (a mistaken rule whose shapes do not fit)."""
    a, b = (x, local) if i == 0 else (local, x)
    A, B = as_matrix(a, left=True), as_matrix(b, left=False)
    G = np.reshape(upstream, (A.shape[0], B.shape[1]))
    d = first(G, A, B) if i == 0 else second(G, A, B)
    want = A.shape if i == 0 else B.shape
    if d.shape != want:
        raise ValueError(f"shape {d.shape}, not {want}")
    return d.reshape(np.shape(x))


@register
class MatMul(Gate):
    """A @ B for vectors and matrices (NumPy's matmul of 1-D and 2-D operands)."""

    name = "matmul"
    arity = 2
    operator = ast.MatMult
    glyph = "@"
    matrix_product = True
    tensor_only = True
    words = (
        "a matrix-multiply gate swaps, as multiply does, with transposes so the shapes fit: "
        "for D = A @ B, ∂f/∂A = ∂f/∂D · Bᵀ and ∂f/∂B = Aᵀ · ∂f/∂D"
    )

    def forward(self, ins: Sequence[Any]) -> Any:
        return np.matmul(ins[0], ins[1])

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        # The other operand: what the upstream gradient is multiplied by (transposed).
        return np.asarray(ins[1 - i], dtype=np.float64)

    def chain(self, upstream: np.ndarray, local: np.ndarray, x: np.ndarray, i: int) -> np.ndarray:
        return _product_part(
            upstream, local, x, i, lambda G, A, B: G @ B.T, lambda G, A, B: A.T @ G
        )

    def chain_alternatives(self) -> dict[str, tuple[str, ChainRule]]:
        # Where the shapes allow them (square matrices), the two ways the product rule
        # is misremembered: the factors swapped, or the other operand not transposed.
        def swapped(G: np.ndarray, local: np.ndarray, x: np.ndarray, i: int) -> np.ndarray:
            return _product_part(G, local, x, i, lambda G, A, B: B.T @ G, lambda G, A, B: G @ A.T)

        def untransposed(G: np.ndarray, local: np.ndarray, x: np.ndarray, i: int) -> np.ndarray:
            return _product_part(G, local, x, i, lambda G, A, B: G @ B, lambda G, A, B: A @ G)

        return {
            "matmul_wrong_order": (
                "the matrix product's gradient multiplied in the wrong order: Bᵀ·∂f/∂D "
                "for ∂f/∂A (∂f/∂D·Aᵀ for ∂f/∂B) instead of ∂f/∂D·Bᵀ (Aᵀ·∂f/∂D)",
                swapped,
            ),
            "matmul_not_transposed": (
                "the other operand not transposed in the matrix product's gradient: "
                "∂f/∂D·B for ∂f/∂A (A·∂f/∂D for ∂f/∂B)",
                untransposed,
            ),
        }

    def problem(self, ins: Sequence[Any]) -> str | None:
        a, b = (np.shape(v) for v in ins)
        if not a or not b:
            return "a number on one side of @ (use * to scale)"
        if a[-1] != b[0]:
            return f"shapes {a} @ {b}, whose inner sizes differ"
        return None

    def text(self, args: Sequence[str]) -> str:
        return f"{args[0]} @ {args[1]}"

    def expr(self, args: Sequence[Node]) -> Node:
        return Row((_wrap(args[0]), MATMUL, _wrap(args[1])))

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        return args[1 - i]

    def code(self, args: Sequence[str]) -> str:
        return f"{args[0]} @ {args[1]}"

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        return args[1 - i]


@register
class Sum(Gate):
    """The sum of every element of a vector or matrix: one number."""

    name = "sum"
    function = "sum"
    tensor_only = True
    glyph = "\u03a3"
    words = (
        "a sum gate distributes, as add does: every element gets the upstream gradient "
        "(local gradient 1)"
    )

    def forward(self, ins: Sequence[Any]) -> Any:
        return np.sum(ins[0])

    def local(self, ins: Sequence[Any], out: Any, i: int) -> Any:
        return np.ones_like(np.asarray(ins[0], dtype=np.float64))

    def expr(self, args: Sequence[Node]) -> Node:
        return Func("sum", args[0])

    def local_rule(self, args: Sequence[Node], out: Node, i: int, ins: Sequence[Any]) -> Node:
        return Const("1")

    def code(self, args: Sequence[str]) -> str:
        return f"np.sum({args[0]})"

    def local_code(self, args: Sequence[str], out: str, i: int) -> str:
        return f"np.ones_like({args[0]})"
