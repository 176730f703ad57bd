"""An expression's circuit written out (``glassnet explain expr.toml``): the picture,
the forward pass gate by gate, then the backward pass — at each gate its local gradient
rule, the upstream gradient, their product; at each fork the sum of the paths — as
blocks of the one document model, printed by the same renderers as a network's page.

Every number is read from a :class:`~glassnet.graphs.CircuitTrace`; every rule in
symbols comes from its gate (:mod:`glassnet.graphs.gates`).
"""

from __future__ import annotations

from collections.abc import Callable
from html import escape
from typing import Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.explain.document import Block, Calculation, Para, Picture, Section, Table
from glassnet.explain.render_html import render_sections_html
from glassnet.explain.render_markdown import INLINE, section_markdown
from glassnet.explain.symbols import number_format
from glassnet.graphs import CircuitTrace
from glassnet.graphs.base import reduced_axes
from glassnet.graphs.circuit import format_value
from glassnet.graphs.gates import as_matrix
from glassnet.mathtree import (
    MATMUL,
    PLUS,
    TIMES,
    Deriv,
    Exp,
    Frac,
    Func,
    Matrix,
    Node,
    Num,
    Paren,
    Pow,
    Row,
    Script,
    Sym,
    Text,
    join,
    substitute,
)

Fmt = Callable[[float], str]


def _symbol(name: str, value: float | None) -> Sym:
    """w0 → w₀, q12 → q₁₂: a name's trailing digits as its subscript."""
    letters = name.rstrip("0123456789")
    digits = name[len(letters) :]
    if letters and digits:
        return Sym(letters, ((digits, "num"),), value=value)
    return Sym(name, value=value)


#: The names of the reductions a page writes where a path is summed back over the axes
#: a node was broadcast along (of a matrix): every element, each column (axis 0, to a
#: row), each row (axis 1, to a column).
EVERY = ("sum", "sum of every element")
REDUCTIONS = {
    (0, 1): EVERY,
    (0,): ("colsum", "sum of each column"),
    (1,): ("rowsum", "sum of each row"),
}


class _Page:
    """What the sections share: the trace, its symbols and the number format.

    A symbol standing for a vector or matrix carries no number (``Sym.value`` is a
    number); the page keeps its array by the symbol's identity instead, and puts it in
    as a bracketed matrix (a vector as one row) where the numbers go in (:meth:`put`)."""

    def __init__(self, trace: CircuitTrace, fmt: Fmt) -> None:
        self.t = trace
        self.c = trace.circuit
        self.fmt = fmt
        self.tensor = trace.is_tensor
        self.arrays: dict[int, tuple[Node, np.ndarray]] = {}
        #: A marked worksheet's wrong numbers by the name it wrote (q, dq): ``--errata``.
        self.errata: dict[str, Any] = {}

    def erratum(self, written: str) -> list[Block]:
        """Below the line that computes a number, what the worksheet wrote for it and
        the mistake check names (nothing when it was not written wrong)."""
        e = self.errata.get(written)
        if e is None:
            return []
        what = (
            f" — {e.title} [{e.mistake}]"
            if e.mistake
            else " (no rule in the catalogue reproduces it)"
        )
        shown = format_value(e.written, lambda v: f"{v:g}")
        return [Para((f"The worksheet wrote {written} = {shown}: wrong{what}.",))]

    def _valued(self, make: Callable[[float | None], Any], a: np.ndarray) -> Any:
        if np.ndim(a) == 0:
            return make(float(a))
        node = make(None)
        self.arrays[id(node)] = (node, np.asarray(a))  # the node kept alive with its id
        return node

    def sym(self, name: str) -> Node:
        node = self.c.nodes[name]
        if node.constant is not None:
            return Num(node.constant, self.fmt(node.constant))
        return self._valued(lambda v: _symbol(name, v), self.t.array(name))  # type: ignore[no-any-return]

    def plain(self, name: str) -> Sym:
        return _symbol(name, None)

    def grad(self, name: str) -> Deriv:
        """∂f/∂name, valued."""
        top, bottom = self.plain(self.c.output), self.plain(name)
        return self._valued(lambda v: Deriv(top, bottom, v), self.t.grad_array(name))  # type: ignore[no-any-return]

    def local(self, gate: str, i: int) -> Deriv:
        top, bottom = self.plain(gate), self.plain(self.c.nodes[gate].inputs[i])
        return self._valued(lambda v: Deriv(top, bottom, v), self.t.local_array(gate, i))  # type: ignore[no-any-return]

    def num(self, v: float) -> Num:
        return Num(v, self.fmt(v))

    def show(self, a: Any, shape: tuple[int, ...] | None = None) -> Node:
        """A number, or an array as a bracketed matrix (``shape``: as which matrix; a
        vector is a row by default)."""
        a = np.asarray(a, dtype=np.float64)
        if a.ndim == 0 and shape is None:
            return self.num(float(a))
        m = a.reshape(shape if shape is not None else ((1, -1) if a.ndim < 2 else a.shape))
        return Matrix(tuple(tuple(self.num(float(c)) for c in r) for r in m))

    def text(self, a: Any) -> str:
        return format_value(a, self.fmt)

    def put(self, node: Node, *, top: bool = True) -> Node:
        """``node`` with its numbers put in (:func:`~glassnet.mathtree.substitute`, and
        each array as a matrix)."""
        if id(node) in self.arrays:
            return self.show(self.arrays[id(node)][1])
        if not self.tensor:
            return substitute(node, self.fmt, top=top)
        if isinstance(node, Row):
            return Row(tuple(self.put(i, top=False) for i in node.items))
        if isinstance(node, Paren):
            return Paren(self.put(node.inner, top=False))
        if isinstance(node, Frac):
            return Frac(self.put(node.num, top=False), self.put(node.den, top=False))
        if isinstance(node, Func):
            if isinstance(node.arg, Row) and any(
                isinstance(i, Text) and i.text == ", " for i in node.arg.items
            ):
                return Func(node.name, Row(tuple(self.put(i) for i in node.arg.items)), node.tex)
            return Func(node.name, self.put(node.arg), node.tex)
        if isinstance(node, Exp):
            return Exp(self.put(node.power))
        if isinstance(node, Pow):
            return Pow(self.put(node.base, top=False), node.power)
        if isinstance(node, Matrix):
            return Matrix(tuple(tuple(self.put(c) for c in r) for r in node.rows))
        return substitute(node, self.fmt, top=top)

    def rule(self, name: str) -> Node:
        node = self.c.nodes[name]
        assert node.gate is not None
        return node.gate.expr([self.sym(s) for s in node.inputs])

    def operands(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """A matrix product's operands as the matrices it multiplies (a vector on the
        left a row, on the right a column)."""
        a, b = (self.t.array(s) for s in self.c.nodes[name].inputs)
        return as_matrix(a, left=True), as_matrix(b, left=False)


def _forward(p: _Page) -> Section:
    blocks: list[Block] = [
        Para(("Each gate computes its output from its inputs, in order.",)),
    ]
    for name in p.c.gates():
        blocks.append(_forward_calc(p, name))
        blocks += p.erratum(name)
    return Section("Forward pass", 2, "forward", blocks=blocks)


def _forward_calc(p: _Page, name: str) -> Calculation:
    """Gate ``name``'s value: its rule, the numbers put in, the result."""
    gate = p.c.nodes[name].gate
    assert gate is not None
    rule = p.rule(name)
    if gate.matrix_product:
        # Rows times columns: a vector on the left is a row, on the right a column.
        A, B = p.operands(name)
        nums: Node = Row((p.show(A), MATMUL, p.show(B)))
        result = p.show(p.t.array(name), (A.shape[0], B.shape[1]))
    else:
        # A valued symbol prints as its name until substituted: one tree, two lines.
        nums, result = p.put(rule), p.show(p.t.array(name))
    return Calculation(p.plain(name), rule, nums, result)


def _upstream(p: _Page, name: str) -> Para:
    gate = p.c.nodes[name].gate
    assert gate is not None
    return Para(
        (
            "Upstream gradient ",
            Deriv(p.plain(p.c.output), p.plain(name)),
            f" = {p.text(p.t.grad_array(name))}.  ",
            gate.words[:1].upper() + gate.words[1:] + ".",
        )
    )


def _gate_blocks(p: _Page, name: str) -> list[Block]:
    """Gate ``name`` on the way back: for each input, the local gradient rule, then
    upstream × local."""
    node = p.c.nodes[name]
    blocks: list[Block] = [_upstream(p, name)]
    for i, src in enumerate(node.inputs):
        if p.c.has_gradient(src):
            blocks += _input_blocks(p, name, i)
    return blocks


def _input_blocks(p: _Page, name: str, i: int) -> list[Block]:
    """Gate ``name``'s input i on the way back: its local gradient, then its part of the
    input's gradient, upstream × local (summed back where it was broadcast)."""
    node = p.c.nodes[name]
    assert node.gate is not None
    gate = node.gate
    src = node.inputs[i]
    labels = [p.c.nodes[s].label for s in node.inputs]
    args = [p.sym(s) for s in node.inputs]
    out = p.sym(name)
    ins = [p.t.array(s) if p.tensor else p.t.value(s) for s in node.inputs]
    blocks: list[Block] = []
    lhs: Node = Deriv(p.plain(p.c.output), p.plain(src))
    if len(p.c.paths(src)) > 1:
        # At a fork this is one path's part; the sum comes where the node is reached.
        lhs = Row((lhs, Text(f"through {name}")))
        blocks.append(
            Para(
                (
                    f"{src} feeds more than one gate: this is the part of its gradient "
                    f"that flows through {name}.",
                )
            )
        )
    if gate.matrix_product:
        whole = p.erratum(f"d{src}") if len(p.c.paths(src)) == 1 else []
        return blocks + _matmul_blocks(p, name, i, lhs) + whole
    words = gate.local_words(labels, i, ins)
    if words != gate.words:
        blocks.append(Para((words[:1].upper() + words[1:] + ".",)))
    rule = gate.local_rule(args, out, i, ins)
    local: Node = p.local(name, i)
    if name == p.c.output:
        # The output gate's local ∂f/∂x is not yet the whole ∂f/∂x: say which it is.
        local = Row((local, Text(" (local)")))
    blocks.append(Calculation(local, rule, p.put(rule), p.show(p.t.local_array(name, i))))
    product: Node = Row((p.grad(name), TIMES, p.local(name, i)))
    nums = p.put(product)
    full = np.broadcast_shapes(np.shape(p.t.grad_array(name)), np.shape(p.t.local_array(name, i)))
    axes = reduced_axes(full, np.shape(p.t.array(src)))
    if axes:
        # src was broadcast along these axes: its part is the sum over them.
        two_d = len(full) == 2 and np.size(p.t.array(src)) > 1
        kind, what = REDUCTIONS.get(axes, EVERY) if two_d else EVERY
        blocks.append(
            Para(
                (
                    f"{src} was broadcast (repeated) in {name}: its part is the {what} "
                    "of upstream · local.",
                )
            )
        )
        product, nums = Func(kind, product), Func(kind, nums)
    blocks.append(Calculation(lhs, product, nums, p.show(p.t.path_array(name, i))))
    if len(p.c.paths(src)) == 1:  # this part is the whole gradient
        blocks += p.erratum(f"d{src}")
    return blocks


def _matmul_blocks(p: _Page, name: str, i: int, lhs: Node) -> list[Block]:
    """A matrix product D = A @ B on the way back: ∂f/∂A = ∂f/∂D · Bᵀ (i = 0), ∂f/∂B =
    Aᵀ · ∂f/∂D (i = 1) — the multiply gate's swap, transposed so the shapes fit; with
    the matrices written out (a vector as NumPy reads it: a row on the left of @, a
    column on the right)."""
    a, b = p.c.nodes[name].inputs
    A, B = p.operands(name)
    # The other operand as the engine used it: its local gradient (in hand mode rounded).
    if i == 0:
        B = as_matrix(p.t.local_array(name, 0), left=False)
    else:
        A = as_matrix(p.t.local_array(name, 1), left=True)
    G = np.reshape(p.t.grad_array(name), (A.shape[0], B.shape[1]))
    upstream = Deriv(p.plain(p.c.output), p.plain(name))
    if i == 0:
        rule: Node = Row((upstream, MATMUL, Script(p.plain(b), sup="T")))
        nums: Node = Row((p.show(G), MATMUL, p.show(B.T)))
        shape = A.shape
    else:
        rule = Row((Script(p.plain(a), sup="T"), MATMUL, upstream))
        nums = Row((p.show(A.T), MATMUL, p.show(G)))
        shape = B.shape
    return [Calculation(lhs, rule, nums, p.show(p.t.path_array(name, i), shape))]


def _fork_blocks(p: _Page, name: str) -> list[Block]:
    """At a fork: the gradient is the sum of its paths (the multivariable chain rule)."""
    paths = p.c.paths(name)
    if p.tensor:  # each part as its own line wrote it: upstream · local, or a product's
        here = Deriv(p.plain(p.c.output), p.plain(name))
        terms: list[Node] = [Row((here, Text(f"through {g}"))) for g, _ in paths]
        nums: list[Node] = [p.show(p.t.path_array(g, i)) for g, i in paths]
    else:
        terms = [Row((p.grad(g), TIMES, p.local(g, i))) for g, i in paths]
        # A negative part after the first is written in parentheses: 3 + (−1).
        parts = [p.num(p.t.path(g, i)) for g, i in paths]
        nums = [parts[0], *(Paren(n) if n.text.startswith("-") else n for n in parts[1:])]
    via = ", ".join(g for g, _ in paths)
    return [
        Para(
            (
                f"{name} feeds {len(paths)} paths (through {via}): its gradient is the "
                "sum of their parts, not the last one alone.",
            )
        ),
        Calculation(
            Deriv(p.plain(p.c.output), p.plain(name)),
            join(terms, PLUS),
            join(nums, PLUS),
            p.show(p.t.grad_array(name)),
        ),
        *p.erratum(f"d{name}"),
    ]


def _backward(p: _Page) -> list[Section]:
    c = p.c
    out = [
        Section(
            "Backward pass",
            2,
            "backward",
            blocks=[
                Para(
                    (
                        "Start at the output: ",
                        Deriv(p.plain(c.output), p.plain(c.output)),
                        " = 1.  Then, from the last gate back, each gate multiplies the "
                        "gradient arriving at its output (upstream) by its local gradient "
                        "for each input, and where a node feeds several gates the parts add.",
                    )
                ),
                *p.erratum(f"d{c.output}"),
            ],
        )
    ]
    for name in reversed(c.order()):
        if not c.has_gradient(name) or not c.feeds(name):
            continue
        node = c.nodes[name]
        blocks: list[Block] = []
        if len(c.paths(name)) > 1:
            blocks += _fork_blocks(p, name)
        if node.gate is not None:
            blocks += _gate_blocks(p, name)
        if not blocks:
            continue
        title = (
            f"{name} = {node.gate.text([c.nodes[s].label for s in node.inputs])}"
            if node.gate is not None
            else f"{name} (a fork)"
        )
        out.append(Section(title, 3, "backward", blocks=blocks, node=name))
    return out


def _summary(p: _Page) -> Section:
    rows: list[tuple[str | Node, ...]] = []
    for name in p.c.order():
        node = p.c.nodes[name]
        if node.constant is not None:
            continue
        rule = node.gate.text([p.c.nodes[s].label for s in node.inputs]) if node.gate else "given"
        rows.append((p.plain(name), rule, p.text(p.t.array(name)), p.text(p.t.grad_array(name))))
    return Section(
        "Every value and gradient",
        2,
        "summary",
        blocks=[
            Table(
                "Each node, its rule, its value and the output's gradient with respect to it",
                ("node", "rule", "value", f"∂{p.c.output}/∂node"),
                rows,
            )
        ],
    )


def circuit_sections(
    trace: CircuitTrace,
    *,
    digits: int = 4,
    title: str = "A circuit",
    errata: list[Any] | None = None,
) -> list[Section]:
    """The page of a traced circuit as document sections (the first is the title's).
    ``errata``: a worksheet's marked entries (:func:`glassnet.check.circuit.mark_circuit`)
    — below the line computing each number it got wrong, what it wrote and the mistake."""
    fmt = number_format(digits, trace.round_to)
    p = _Page(trace, fmt)
    p.errata = {e.name: e for e in errata or [] if e.verdict == "wrong"}
    c = trace.circuit
    values = ", ".join(f"{n} = {format_value(trace.array(n), fmt)}" for n in c.inputs())
    intro: list[Block] = [
        Para(
            (
                f"Backpropagation through {c.source.replace(chr(10), '; ')}, at {values}: "
                f"every value (forward) and the gradient of {c.output} with respect to "
                "every node (backward).  ",
                "Hand mode: every value rounded to "
                f"{trace.round_to} decimals before the next step uses it."
                if trace.round_to is not None
                else "",
            )
        ),
        Picture(
            circuit_svg(trace, fmt),
            "The circuit: values above each wire (green), gradients below (red).",
        ),
    ]
    return [
        Section(title, 1, "network", blocks=intro),
        _forward(p),
        *_backward(p),
        _summary(p),
    ]


def node_blocks(trace: CircuitTrace, name: str, what: str, *, digits: int = 4) -> list[Block]:
    """The derivation of one number of the circuit, as the page writes it: a node's
    value (``what`` "value": its gate's rule with the numbers put in, or that it is
    given) or its gradient (``what`` "grad": through each gate that reads it, the local
    gradient and upstream × local; at a fork, the sum of the parts) — for the studio's
    graph mode, where each number is clicked."""
    p = _Page(trace, number_format(digits, trace.round_to))
    c = p.c
    node = c.nodes[name]
    shown = p.text(trace.array(name))
    if what == "value":
        if node.gate is not None:
            return [_forward_calc(p, name)]
        if node.constant is not None:
            return [Para((f"{node.label} is a number written in the expression.",))]
        return [Para((f"{name} = {shown} is given: a variable of the expression.",))]
    if name == c.output:
        return [
            Para(
                (
                    Deriv(p.plain(name), p.plain(name)),
                    " = 1: the output's gradient with respect to itself, where the "
                    "backward pass starts.",
                )
            )
        ]
    if not c.feeds(name):
        return [Para((f"{c.output} does not depend on {name}: its gradient is 0.",))]
    blocks: list[Block] = []
    for g, i in c.paths(name):
        gate = c.nodes[g].gate
        assert gate is not None
        rule = gate.text([c.nodes[s].label for s in c.nodes[g].inputs])
        blocks.append(Para((f"Through {g} = {rule}:",)))
        blocks += [_upstream(p, g), *_input_blocks(p, g, i)]
    if len(c.paths(name)) > 1:
        blocks += _fork_blocks(p, name)
    return blocks


# -- the picture -------------------------------------------------------------------------

COL_W, ROW_H, R = 150, 84, 20


def _short(a: Any, fmt: Fmt) -> str:
    """A value beside a wire: a number, else the array's shape (a wire has no room for
    more; the whole of it is the node's tooltip, in the table and in the derivation)."""
    a = np.asarray(a)
    if a.ndim == 0:
        return fmt(float(a))
    if a.ndim == 1:
        return f"vector ({a.shape[0]})"
    return "matrix " + "×".join(str(n) for n in a.shape)


VALUE_INK, GRAD_INK = "#15803d", "#b91c1c"


def circuit_svg(trace: CircuitTrace, fmt: Fmt, *, blank: bool = False) -> str:
    """The circuit as CS231n draws it: inputs on the left, a circle per gate, each node's
    value above the wire leaving it and its gradient below (``blank``: "?" for every
    number to work out — each gate's value and every gradient — as on a worksheet)."""
    c = trace.circuit
    depth: dict[str, int] = {}
    for name in c.order():
        node = c.nodes[name]
        depth[name] = 1 + max((depth[s] for s in node.inputs), default=-1)
    # A number sits just before the gate that reads it (not in the inputs' column).
    for name in c.gates():
        for s in c.nodes[name].inputs:
            if c.nodes[s].constant is not None:
                depth[s] = depth[name] - 1
    columns: dict[int, list[str]] = {}
    for name in c.order():
        columns.setdefault(depth[name], []).append(name)
    pos: dict[str, tuple[float, float]] = {}
    for d, names in columns.items():
        for k, name in enumerate(names):
            pos[name] = (60 + d * COL_W, 50 + k * ROW_H)
    width = 60 + (max(columns) + 1) * COL_W + 40
    height = 50 + max(len(v) for v in columns.values()) * ROW_H
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" font-family="system-ui, sans-serif" font-size="13">'
    ]
    for name in c.gates():  # wires first, under the gates
        x2, y2 = pos[name]
        for s in c.nodes[name].inputs:
            x1, y1 = pos[s]
            parts.append(
                f'<line x1="{x1 + R}" y1="{y1}" x2="{x2 - R}" y2="{y2}" stroke="#64748b" '
                'stroke-width="1.5"/>'
            )
    for name in c.order():
        x, y = pos[name]
        node = c.nodes[name]
        value = _short(trace.array(name), fmt)
        title = f"{name} = {format_value(trace.array(name), fmt)}"
        if blank and node.gate is not None:
            value, title = "?", f"{name} = ?"
        if node.gate is not None:
            parts.append(
                f'<g><title>{escape(title)}</title><circle cx="{x}" cy="{y}" r="{R}" '
                'fill="#eff6ff" stroke="#1e3a8a" stroke-width="1.5"/>'
                f'<text x="{x}" y="{y + 5}" text-anchor="middle">{escape(node.gate.mark())}'
                f'</text></g><text x="{x}" y="{y + R + 14}" text-anchor="middle" '
                f'fill="#475569">{escape(name)}</text>'
            )
        else:
            parts.append(
                f'<g><title>{escape(title)}</title><text x="{x + R}" y="{y + 5}" '
                f'text-anchor="end" font-weight="600">{escape(node.label)}</text></g>'
            )
        # The wire leaving the node: its value above, its gradient below.
        # (data-node/data-what: the studio's graph mode opens that number's derivation.)
        pick = f'class="pick" data-node="{escape(name)}"'
        parts.append(
            f'<text x="{x + R + 6}" y="{y - 7}" fill="{VALUE_INK}" {pick} data-what="value">'
            f"{escape(value)}</text>"
        )
        if c.has_gradient(name):
            grad = "?" if blank else _short(trace.grad_array(name), fmt)
            parts.append(
                f'<text x="{x + R + 6}" y="{y + 17}" fill="{GRAD_INK}" {pick} data-what="grad">'
                f"{escape(grad)}</text>"
            )
    xo, yo = pos[c.output]
    parts.append(
        f'<line x1="{xo + R}" y1="{yo}" x2="{xo + R + 60}" y2="{yo}" stroke="#64748b" '
        'stroke-width="1.5"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


#: The formats a circuit's page is written in.
CIRCUIT_FORMATS: tuple[str, ...] = ("md", "html", "ipynb")


# -- the notebook ------------------------------------------------------------------------


def _v(trace: CircuitTrace, name: str) -> str:
    """A node's value in a notebook cell: ``v['x']``, or a number written in the
    expression as itself (in parentheses: (-2.0) ** 2 is not -(2.0 ** 2))."""
    node = trace.circuit.nodes[name]
    return f"({node.constant!r})" if node.constant is not None else f"v[{name!r}]"


def _setup_code(trace: CircuitTrace) -> str:
    c = trace.circuit
    K = trace.round_to
    tol = "rtol=1e-9, atol=1e-12" if K is None else f"rtol=0, atol={1.01 * 10.0**-K!r}"
    values = {n: trace.array(n).tolist() for n in c.inputs()}
    return "\n".join(
        [
            "import numpy as np",
            "",
            "from glassnet.graphs import parse_expression",
            "",
            "# The circuit, traced by glassnet; the cells below work every number again",
            "# with NumPy, rule by rule, and compare with glassnet's trace.",
            f"expression = {c.source!r}",
            f"values = {values!r}",
            f"K = {K!r}",
            f"trace = parse_expression(expression, output={c.output!r}).trace(values, round_to=K)",
            "v = {n: np.array(x) for n, x in values.items()}  # every node's value",
            "g = {}  # every node's gradient, df/dnode",
            "local, path = {}, {}  # (gate, input) -> its local gradient, its path's part",
            "",
            "",
            "def r(x):",
            '    """Round to K decimals in hand mode (as the page does), else keep."""',
            "    return x if K is None else np.round(x, K)",
            "",
            "",
            "def same(name, ours, recorded):",
            '    """Check a value recomputed here against the one glassnet recorded."""',
            "    assert np.shape(ours) == np.shape(recorded), name",
            f"    assert np.allclose(ours, recorded, {tol}), name",
            '    print(f"{name}: recomputed, equal to the trace")',
            *(_TENSOR_HELPERS if trace.is_tensor else []),
        ]
    )


#: A circuit of vectors and matrices: the two rules that are not element by element,
#: written again in the notebook (they share no code with glassnet's gates).
_TENSOR_HELPERS = [
    "",
    "",
    "def unbroadcast(part, shape):",
    '    """Sum a part over the axes its input was broadcast (repeated) along."""',
    "    while np.ndim(part) > len(shape):",
    "        part = np.sum(part, axis=0)",
    "    for axis, n in enumerate(shape):",
    "        if n == 1:",
    "            part = np.sum(part, axis=axis, keepdims=True)",
    "    return part",
    "",
    "",
    "def matmul_part(G, A, B, i):",
    '    """D = A @ B: dA = G·Bᵀ (i = 0), dB = Aᵀ·G (i = 1); a vector is a row on the',
    '    left of @ and a column on the right, as NumPy reads it."""',
    "    A2 = A.reshape(1, -1) if np.ndim(A) == 1 else A",
    "    B2 = B.reshape(-1, 1) if np.ndim(B) == 1 else B",
    "    G2 = np.reshape(G, (A2.shape[0], B2.shape[1]))",
    "    return (G2 @ B2.T).reshape(np.shape(A)) if i == 0 else (A2.T @ G2).reshape(np.shape(B))",
]


def _forward_code(trace: CircuitTrace) -> str:
    c = trace.circuit
    lines = []
    for name in c.gates():
        node = c.nodes[name]
        assert node.gate is not None
        code = node.gate.code([_v(trace, s) for s in node.inputs])
        lines += [f"v[{name!r}] = r({code})", f"same({name!r}, v[{name!r}], trace.array({name!r}))"]
    return "\n".join(lines)


def _grad_code(trace: CircuitTrace, name: str) -> list[str]:
    """The gradient of ``name``: 1 at the output, else the sum of its paths' parts."""
    c = trace.circuit
    if name == c.output:
        total = "1.0"
    else:
        total = " + ".join(f"path[({g!r}, {i})]" for g, i in c.paths(name)) or "0.0"
    if total == "0.0" and trace.is_tensor:
        total = f"np.zeros_like(v[{name!r}])"
    return [
        f"g[{name!r}] = r({total})",
        f"same('d{name}', g[{name!r}], trace.grad_array({name!r}))",
    ]


def _node_code(trace: CircuitTrace, name: str) -> str:
    """A node on the way back: its gradient, then (a gate) each input's local gradient
    and its part, upstream × local."""
    c = trace.circuit
    lines = _grad_code(trace, name)
    node = c.nodes[name]
    if node.gate is not None:
        args = [_v(trace, s) for s in node.inputs]
        for i, src in enumerate(node.inputs):
            if not c.has_gradient(src):
                continue
            key = f"({name!r}, {i})"
            part = f"g[{name!r}] * local[{key}]"
            if node.gate.matrix_product:
                # The other operand as its local gradient (rounded in hand mode, as used).
                ab = (args[0], f"local[{key}]") if i == 0 else (f"local[{key}]", args[1])
                part = f"matmul_part(g[{name!r}], {ab[0]}, {ab[1]}, {i})"
            elif trace.is_tensor:
                part = f"unbroadcast({part}, np.shape({args[i]}))"
            lines += [
                f"local[{key}] = r({node.gate.local_code(args, f'v[{name!r}]', i)})",
                f"path[{key}] = r({part})",
                f"same('{name} -> {src}', path[{key}], trace.path_array({name!r}, {i}))",
            ]
    return "\n".join(lines)


def _summary_code(trace: CircuitTrace, written: set[str]) -> str:
    c = trace.circuit
    lines = ["# The nodes whose gradient is one path's part (no section of their own)."]
    for name in c.order():
        if c.has_gradient(name) and name not in written:
            lines += _grad_code(trace, name)
    lines += [
        "for name in v:",
        "    same(name, v[name], trace.array(name))",
        "for name in g:",
        "    same('d' + name, g[name], trace.grad_array(name))",
        'print("every value and gradient of the circuit reproduced")',
    ]
    return "\n".join(lines)


def circuit_notebook(trace: CircuitTrace, sections: list[Section]) -> str:
    """The page as a Jupyter notebook: each section a Markdown cell, followed by a code
    cell working its numbers again with NumPy and comparing them with glassnet's trace,
    so the notebook runs top to bottom and proves its own numbers."""
    from glassnet.explain.render_notebook import notebook_of, notebook_text

    written: set[str] = set()
    cells: list[tuple[Section, str | None]] = []
    for sec in sections:
        code: str | None = None
        if sec.kind == "network":
            code = _setup_code(trace)
        elif sec.kind == "forward":
            code = _forward_code(trace)
        elif sec.kind == "backward" and sec.node is not None:
            code = _node_code(trace, sec.node)
            written.add(sec.node)
        elif sec.kind == "summary":
            code = _summary_code(trace, written)
        cells.append((sec, code))
    return notebook_text(notebook_of(cells))


def render_circuit(
    sections: list[Section], format: str, *, title: str, picture: str | None = INLINE
) -> str:
    """The page in ``format`` ("md" or "html") through the document renderers;
    ``picture`` as for :func:`~glassnet.explain.render_markdown.block_markdown`."""
    if format == "md":
        return "\n".join(section_markdown(s, picture) for s in sections)
    if format == "html":
        return render_sections_html(title, sections, "Written by glassnet from its circuit's trace")
    raise GlassnetError(
        "expected md or html (a notebook: circuit_notebook)",
        got=repr(format),
        field="--format",
    )


def picture_of(sections: list[Section]) -> str | None:
    """The circuit's SVG (to write beside a Markdown file)."""
    for sec in sections:
        for b in sec.blocks:
            if isinstance(b, Picture):
                return b.svg
    return None
