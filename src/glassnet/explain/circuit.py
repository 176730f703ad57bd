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

from glassnet.errors import GlassnetError
from glassnet.explain.document import Block, Calculation, Para, Picture, Section, Table
from glassnet.explain.render_html import render_sections_html
from glassnet.explain.render_markdown import INLINE, section_markdown
from glassnet.explain.symbols import number_format
from glassnet.graphs import CircuitTrace
from glassnet.mathtree import (
    PLUS,
    TIMES,
    Deriv,
    Node,
    Num,
    Paren,
    Row,
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


class _Page:
    """What the sections share: the trace, its symbols and the number format."""

    def __init__(self, trace: CircuitTrace, fmt: Fmt) -> None:
        self.t = trace
        self.c = trace.circuit
        self.fmt = fmt

    def sym(self, name: str) -> Node:
        node = self.c.nodes[name]
        if node.constant is not None:
            return Num(node.constant, self.fmt(node.constant))
        return _symbol(name, self.t.value(name))

    def plain(self, name: str) -> Sym:
        return _symbol(name, None)

    def grad(self, name: str) -> Deriv:
        """∂f/∂name, valued."""
        return Deriv(self.plain(self.c.output), self.plain(name), self.t.grad(name))

    def local(self, gate: str, i: int) -> Deriv:
        src = self.c.nodes[gate].inputs[i]
        return Deriv(self.plain(gate), self.plain(src), self.t.local(gate, i))

    def num(self, v: float) -> Num:
        return Num(v, self.fmt(v))

    def rule(self, name: str) -> Node:
        node = self.c.nodes[name]
        assert node.gate is not None
        return node.gate.expr([self.sym(s) for s in node.inputs])


def _forward(p: _Page) -> Section:
    blocks: list[Block] = [
        Para(("Each gate computes its output from its inputs, in order.",)),
    ]
    for name in p.c.gates():
        blocks.append(
            # A valued symbol prints as its name until substituted: one tree, two lines.
            Calculation(
                p.plain(name), p.rule(name), substitute(p.rule(name), p.fmt), p.num(p.t.value(name))
            )
        )
    return Section("Forward pass", 2, "forward", blocks=blocks)


def _gate_blocks(p: _Page, name: str) -> list[Block]:
    """Gate ``name`` on the way back: for each input, the local gradient rule, then
    upstream × local."""
    node = p.c.nodes[name]
    assert node.gate is not None
    gate = node.gate
    labels = [p.c.nodes[s].label for s in node.inputs]
    args = [p.sym(s) for s in node.inputs]
    out = p.sym(name)
    ins = [p.t.value(s) for s in node.inputs]
    blocks: list[Block] = [
        Para(
            (
                "Upstream gradient ",
                p.grad(name),
                f" = {p.fmt(p.t.grad(name))}.  ",
                gate.words[:1].upper() + gate.words[1:] + ".",
            )
        )
    ]
    for i, src in enumerate(node.inputs):
        if not p.c.has_gradient(src):
            continue
        words = gate.local_words(labels, i, ins)
        if words != gate.words:
            blocks.append(Para((words[:1].upper() + words[1:] + ".",)))
        rule = gate.local_rule(args, out, i, ins)
        local: Node = p.local(name, i)
        if name == p.c.output:
            # The output gate's local ∂f/∂x is not yet the whole ∂f/∂x: say which it is.
            local = Row((local, Text(" (local)")))
        blocks.append(Calculation(local, rule, substitute(rule, p.fmt), p.num(p.t.local(name, i))))
        product = Row((p.grad(name), TIMES, p.local(name, i)))
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
        blocks.append(
            Calculation(lhs, product, substitute(product, p.fmt), p.num(p.t.path(name, i)))
        )
    return blocks


def _fork_blocks(p: _Page, name: str) -> list[Block]:
    """At a fork: the gradient is the sum of its paths (the multivariable chain rule)."""
    paths = p.c.paths(name)
    terms = [Row((p.grad(g), TIMES, p.local(g, i))) for g, i in paths]
    # A negative part after the first is written in parentheses: 3 + (−1).
    parts = [p.num(p.t.path(g, i)) for g, i in paths]
    nums: list[Node] = [parts[0], *(Paren(n) if n.text.startswith("-") else n for n in parts[1:])]
    via = ", ".join(g for g, _ in paths)
    return [
        Para(
            (
                f"{name} feeds {len(paths)} paths (through {via}): its gradient is the "
                "sum of their parts, not the last one alone.",
            )
        ),
        Calculation(p.grad(name), join(terms, PLUS), join(nums, PLUS), p.num(p.t.grad(name))),
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
                )
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
        rows.append((p.plain(name), rule, p.fmt(p.t.value(name)), p.fmt(p.t.grad(name))))
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
    trace: CircuitTrace, *, digits: int = 4, title: str = "A circuit"
) -> list[Section]:
    """The page of a traced circuit as document sections (the first is the title's)."""
    fmt = number_format(digits, trace.round_to)
    p = _Page(trace, fmt)
    c = trace.circuit
    values = ", ".join(f"{n} = {fmt(trace.value(n))}" for n in c.inputs())
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


# -- the picture -------------------------------------------------------------------------

COL_W, ROW_H, R = 150, 84, 20
VALUE_INK, GRAD_INK = "#15803d", "#b91c1c"


def circuit_svg(trace: CircuitTrace, fmt: Fmt) -> str:
    """The circuit as CS231n draws it: inputs on the left, a circle per gate, each node's
    value above the wire leaving it and its gradient below."""
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
        value = fmt(trace.value(name))
        title = f"{name} = {value}"
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
        parts.append(f'<text x="{x + R + 6}" y="{y - 7}" fill="{VALUE_INK}">{escape(value)}</text>')
        if c.has_gradient(name):
            grad = fmt(trace.grad(name))
            parts.append(
                f'<text x="{x + R + 6}" y="{y + 17}" fill="{GRAD_INK}">{escape(grad)}</text>'
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
    values = {n: trace.value(n) for n in c.inputs()}
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
            "v = dict(values)  # every node's value",
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
            f"    assert np.allclose(ours, recorded, {tol}), name",
            '    print(f"{name}: recomputed, equal to the trace")',
        ]
    )


def _forward_code(trace: CircuitTrace) -> str:
    c = trace.circuit
    lines = []
    for name in c.gates():
        node = c.nodes[name]
        assert node.gate is not None
        code = node.gate.code([_v(trace, s) for s in node.inputs])
        lines += [f"v[{name!r}] = r({code})", f"same({name!r}, v[{name!r}], trace.value({name!r}))"]
    return "\n".join(lines)


def _grad_code(trace: CircuitTrace, name: str) -> list[str]:
    """The gradient of ``name``: 1 at the output, else the sum of its paths' parts."""
    c = trace.circuit
    if name == c.output:
        total = "1.0"
    else:
        total = " + ".join(f"path[({g!r}, {i})]" for g, i in c.paths(name)) or "0.0"
    return [f"g[{name!r}] = r({total})", f"same('d{name}', g[{name!r}], trace.grad({name!r}))"]


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
            lines += [
                f"local[{key}] = r({node.gate.local_code(args, f'v[{name!r}]', i)})",
                f"path[{key}] = r(g[{name!r}] * local[{key}])",
                f"same('{name} -> {src}', path[{key}], trace.path({name!r}, {i}))",
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
        "    same(name, v[name], trace.value(name))",
        "for name in g:",
        "    same('d' + name, g[name], trace.grad(name))",
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
