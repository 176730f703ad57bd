"""A small expression tree for the derivation's maths, written out as LaTeX or MathML.

Why a tree rather than LaTeX strings: the same equation goes to Markdown (LaTeX, which
GitHub and Jupyter render) and to standalone HTML (MathML, which browsers render with no
script and no network).  Building each equation once as a tree and printing it twice
keeps the two formats identical, and lets a rule written in symbols become "the rule
with the numbers put in" by substituting every symbol with its recorded value
(:func:`substitute`) — so the two lines cannot drift apart.

Every :class:`Sym` that stands for a recorded quantity carries that value (read from
the trace by :mod:`glassnet.explain.symbols`); a symbol naming a whole matrix or a general
rule's variable carries ``None``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from html import escape

# -- nodes -------------------------------------------------------------------------------


class Node:
    """Base class of every expression node."""


@dataclass(frozen=True)
class Sym(Node):
    """A named quantity: ``base`` with a subscript of (text, kind) parts.

    ``kind`` is ``"id"`` (an italic index letter), ``"txt"`` (upright text such as "in")
    or ``"num"`` (a unit number).  ``sample`` (1-based) adds the sample's number in
    brackets, h1_in2[s], when a batch has several samples (not a superscript: beside the
    unit's and the layer's numbers a third small 1 reads as a power); ``prime`` marks an
    updated parameter (W′).
    """

    base: str
    sub: tuple[tuple[str, str], ...] = ()
    #: (or an index written out, "0,1,2": a feature map's cell, in the same brackets)
    sample: int | str | None = None
    prime: bool = False
    value: float | None = field(default=None, compare=False)
    #: How the value is written where it is exact (a count such as B = 2), not ``fmt``'s.
    text: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Num(Node):
    """A number, already formatted (``text``) from ``value``."""

    value: float
    text: str


@dataclass(frozen=True)
class Const(Node):
    """A constant of a rule (the 1 in 1 − a); kept as is when numbers are put in.
    ``value`` is its number where the text alone does not say it (√2)."""

    text: str
    value: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Op(Node):
    """An operator or relation: LaTeX and MathML spellings."""

    tex: str
    mml: str


@dataclass(frozen=True)
class Text(Node):
    """Words inside an equation."""

    text: str


@dataclass(frozen=True)
class Row(Node):
    """A sequence of nodes written one after another."""

    items: tuple[Node, ...]


@dataclass(frozen=True)
class Paren(Node):
    """(inner)."""

    inner: Node


@dataclass(frozen=True)
class Frac(Node):
    """num / den, as a built-up fraction."""

    num: Node
    den: Node


@dataclass(frozen=True)
class Deriv(Node):
    """∂top / ∂bottom (a partial derivative of one symbol with respect to another)."""

    top: Sym
    bottom: Sym
    value: float | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Step(Node):
    """Δ of a valued symbol (the change of a parameter); substituted by its value."""

    of: Sym


@dataclass(frozen=True)
class Func(Node):
    """A named function applied to an argument: ln(x), max(0, x), tanh(x).  ``tex`` is
    its LaTeX command when it has one (``\\tanh``); else ``\\operatorname{name}``, or
    the command of the maths this module writes itself (ln, max)."""

    name: str
    arg: Node
    tex: str | None = None


@dataclass(frozen=True)
class Exp(Node):
    """e raised to ``power``."""

    power: Node


@dataclass(frozen=True)
class Pow(Node):
    """base raised to a constant power (written as a superscript).  ``given``: the
    power with its number put in, where the power is a symbol (β1ᵗ at t = 3 → 0.9³)."""

    base: Node
    power: str
    given: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class Script(Node):
    """``base`` with a subscript and/or a superscript of plain text (another book's
    notation: Nielsen's δ^l, w^l_jk); never substituted."""

    base: Node
    sub: str | None = None
    sup: str | None = None


@dataclass(frozen=True)
class SumOver(Node):
    """Σ over ``var`` of ``body`` (for general rules, never substituted)."""

    var: str
    body: Node


@dataclass(frozen=True)
class Matrix(Node):
    """A bracketed matrix (rows of cells); a row vector is one row."""

    rows: tuple[tuple[Node, ...], ...]


@dataclass(frozen=True)
class Dots(Node):
    """An elision mark: ``"h"`` (⋯), ``"v"`` (⋮) or ``"d"`` (⋱)."""

    kind: str = "h"


PLUS = Op("+", "+")
MINUS = Op("-", "\u2212")
TIMES = Op(r"\cdot", "\u22c5")
MATMUL = Op(r"\times", "\u00d7")
EQ = Op("=", "=")
GT = Op(">", "&gt;")


def row(*items: Node | str) -> Row:
    """A :class:`Row`; plain strings become :class:`Text`."""
    return Row(tuple(Text(i) if isinstance(i, str) else i for i in items))


def join(items: Sequence[Node], op: Op) -> Row:
    """items[0] op items[1] op ..."""
    out: list[Node] = []
    for k, item in enumerate(items):
        if k:
            out.append(op)
        out.append(item)
    return Row(tuple(out))


# -- substitution ------------------------------------------------------------------------


def substitute(node: Node, fmt: Callable[[float], str], *, top: bool = True) -> Node:
    """``node`` with every valued symbol (and derivative) replaced by its number.

    A negative number that is not the whole expression is put in parentheses, so
    ``a − b`` with b = −2 reads ``a − (−2)``.
    """

    def num(value: float) -> Node:
        n = Num(value, fmt(value))
        return Paren(n) if (not top and n.text.startswith("-")) else n

    if isinstance(node, Sym | Deriv):
        if node.value is None:
            return node
        if isinstance(node, Sym) and node.text is not None:
            n = Num(node.value, node.text)
            return Paren(n) if (not top and n.text.startswith("-")) else n
        return num(node.value)
    if isinstance(node, Step):
        return substitute(node.of, fmt, top=top)
    if isinstance(node, Row):
        return Row(tuple(substitute(i, fmt, top=False) for i in node.items))
    if isinstance(node, Paren):
        return Paren(substitute(node.inner, fmt, top=False))
    if isinstance(node, Frac):
        return Frac(substitute(node.num, fmt, top=False), substitute(node.den, fmt, top=False))
    if isinstance(node, Func):
        # The function's own parentheses enclose its argument: tanh(−0.3), not
        # tanh((−0.3)); so do the commas between arguments: max(0, −0.5).
        if isinstance(node.arg, Row) and any(
            isinstance(i, Text) and i.text == ", " for i in node.arg.items
        ):
            return Func(node.name, Row(tuple(substitute(i, fmt) for i in node.arg.items)), node.tex)
        return Func(node.name, substitute(node.arg, fmt), node.tex)
    if isinstance(node, Exp):
        return Exp(substitute(node.power, fmt))  # a superscript needs no parentheses
    if isinstance(node, Pow):
        power = node.power if node.given is None else node.given
        return Pow(substitute(node.base, fmt, top=False), power)
    if isinstance(node, Matrix):
        # Cells of a matrix stand alone: no parentheses needed around a negative entry.
        return Matrix(tuple(tuple(substitute(c, fmt, top=True) for c in r) for r in node.rows))
    return node


# -- LaTeX -------------------------------------------------------------------------------


def _tex_sub(parts: tuple[tuple[str, str], ...]) -> str:
    out = []
    for text, kind in parts:
        out.append(rf"\mathrm{{{text}}}" if kind == "txt" else text)
    return "".join(out)


def _tex_num(text: str) -> str:
    if "e" in text:
        mant, _, exp = text.partition("e")
        return rf"{mant}{{\times}}10^{{{int(exp)}}}"
    return text


def tex(node: Node) -> str:
    """LaTeX for ``node`` (as MathJax and KaTeX read it)."""
    if isinstance(node, Sym):
        s = node.base
        # δh1, δO: the Greek letter, then the layer's own name (not one italic word).
        greek = r"\delta " if s.startswith("δ") and len(s) > 1 else ""
        s = s[1:] if greek else s
        if len(s) > 1 and s.isalpha():
            s = rf"\mathit{{{s}}}"
        s = greek + s.replace("δ", r"\delta ")
        if node.prime:
            s += "'"
        if node.sub:
            s += f"_{{{_tex_sub(node.sub)}}}"
        if node.sample is not None:
            s += f"[{node.sample}]"
        return s
    if isinstance(node, Num):
        return _tex_num(node.text)
    if isinstance(node, Const):
        return node.text
    if isinstance(node, Op):
        return f" {node.tex} "
    if isinstance(node, Text):
        return rf"\text{{{node.text}}}"
    if isinstance(node, Row):
        return "".join(tex(i) for i in node.items)
    if isinstance(node, Paren):
        return rf"\left({tex(node.inner)}\right)"
    if isinstance(node, Frac):
        return rf"\frac{{{tex(node.num)}}}{{{tex(node.den)}}}"
    if isinstance(node, Deriv):
        return rf"\frac{{\partial {tex(node.top)}}}{{\partial {tex(node.bottom)}}}"
    if isinstance(node, Step):
        return rf"\Delta {tex(node.of)}"
    if isinstance(node, Func):
        # An activation names its own command (tanh); ln and max are the losses' and
        # ReLU's, which LaTeX has too.
        name = node.tex or {"ln": r"\ln", "max": r"\max"}.get(
            node.name, rf"\operatorname{{{node.name}}}"
        )
        return rf"{name}\left({tex(node.arg)}\right)"
    if isinstance(node, Exp):
        return rf"\mathrm{{e}}^{{{tex(node.power)}}}"
    if isinstance(node, Pow):
        return rf"{{{tex(node.base)}}}^{{{node.power}}}"
    if isinstance(node, Script):
        sub = f"_{{{node.sub}}}" if node.sub else ""
        sup = f"^{{{node.sup}}}" if node.sup else ""
        return f"{{{tex(node.base)}}}{sub}{sup}"
    if isinstance(node, SumOver):
        return rf"\sum_{{{node.var}}} {tex(node.body)}"
    if isinstance(node, Matrix):
        body = r" \\ ".join(" & ".join(tex(c) for c in r) for r in node.rows)
        return rf"\begin{{bmatrix}} {body} \end{{bmatrix}}"
    if isinstance(node, Dots):
        return {"h": r"\cdots", "v": r"\vdots", "d": r"\ddots"}[node.kind]
    raise TypeError(f"unknown node {node!r}")


def tex_equation(sides: Sequence[Node]) -> str:
    """``sides[0] = sides[1] = ...`` on one line."""
    return " = ".join(tex(s) for s in sides)


def tex_derivation(lhs: Node, lines: Sequence[Node]) -> str:
    """An aligned derivation: lhs = lines[0] \\\\ = lines[1] \\\\ ..."""
    body = [rf"{tex(lhs)} &= {tex(lines[0])}"] + [rf"&= {tex(x)}" for x in lines[1:]]
    return "\\begin{aligned}\n" + " \\\\\n".join(body) + "\n\\end{aligned}"


# -- MathML ------------------------------------------------------------------------------


def _mml_sub(parts: tuple[tuple[str, str], ...]) -> str:
    out = []
    for text, kind in parts:
        if kind == "num":
            out.append(f"<mn>{escape(text)}</mn>")
        elif kind == "txt":
            out.append(f'<mi mathvariant="normal">{escape(text)}</mi>')
        else:
            out.append("".join(f"<mi>{escape(c)}</mi>" for c in text))
    return f"<mrow>{''.join(out)}</mrow>"


def _mml_base(base: str) -> str:
    # "h1" is the letter h and the number 1; "lr" is one multi-letter name.
    letters = base.rstrip("0123456789")
    digits = base[len(letters) :]
    if len(letters) > 1:
        inner = f'<mi mathvariant="italic">{escape(letters)}</mi>'
    else:
        inner = f"<mi>{escape(letters)}</mi>"
    if digits:
        inner = f"<mrow>{inner}<mn>{digits}</mn></mrow>"
    return inner


def _mml_num(text: str) -> str:
    text = text.replace("-", "\u2212")
    if "e" in text:
        mant, _, exp = text.partition("e")
        exp = str(int(exp.replace("\u2212", "-"))).replace("-", "\u2212")
        return (
            f'<mrow class="sci"><mn>{mant}</mn><mo>\u00d7</mo>'
            f"<msup><mn>10</mn><mn>{exp}</mn></msup></mrow>"
        )
    return f"<mn>{text}</mn>"


def mml(node: Node) -> str:
    """Presentation MathML for ``node``."""
    if isinstance(node, Sym):
        base = _mml_base(node.base)
        sub = _mml_sub(node.sub) if node.sub else None
        # W′ with a subscript is one script element (msubsup): the prime above the
        # subscript, both against W — not a prime on W then a subscript pushed past it.
        prime = '<mo class="prime">\u2032</mo>'
        if node.prime and sub:
            out = f"<msubsup>{base}{sub}{prime}</msubsup>"
        elif node.prime:
            out = f"<msup>{base}{prime}</msup>"
        else:
            out = f"<msub>{base}{sub}</msub>" if sub else base
        if node.sample is not None:
            sample = f'<mo stretchy="false">[</mo><mn>{node.sample}</mn><mo stretchy="false">]</mo>'
            out = f"<mrow>{out}{sample}</mrow>"
        return out
    if isinstance(node, Num):
        return _mml_num(node.text)
    if isinstance(node, Const):
        return _mml_num(node.text)
    if isinstance(node, Op):
        return f"<mo>{node.mml}</mo>"
    if isinstance(node, Text):
        return f"<mtext>\u00a0{escape(node.text)}\u00a0</mtext>"
    if isinstance(node, Row):
        return f"<mrow>{''.join(mml(i) for i in node.items)}</mrow>"
    if isinstance(node, Paren):
        return f"<mrow><mo>(</mo>{mml(node.inner)}<mo>)</mo></mrow>"
    if isinstance(node, Frac):
        return f"<mfrac>{mml(node.num)}{mml(node.den)}</mfrac>"
    if isinstance(node, Deriv):
        return (
            f"<mfrac><mrow><mo>\u2202</mo>{mml(node.top)}</mrow>"
            f"<mrow><mo>\u2202</mo>{mml(node.bottom)}</mrow></mfrac>"
        )
    if isinstance(node, Step):
        return f'<mrow><mi mathvariant="normal">\u0394</mi>{mml(node.of)}</mrow>'
    if isinstance(node, Func):
        return (
            f'<mrow><mi mathvariant="normal">{escape(node.name)}</mi><mo>\u2061</mo>'
            f"<mrow><mo>(</mo>{mml(node.arg)}<mo>)</mo></mrow></mrow>"
        )
    if isinstance(node, Exp):
        return f'<msup><mi mathvariant="normal">e</mi>{mml(node.power)}</msup>'
    if isinstance(node, Pow):
        return f"<msup>{mml(node.base)}<mn>{escape(node.power)}</mn></msup>"
    if isinstance(node, Script):

        def script(text: str) -> str:
            return "".join(
                f"<mn>{escape(c)}</mn>"
                if c.isdigit()
                else (f"<mo>{escape(c)}</mo>" if c in "+−-" else f"<mi>{escape(c)}</mi>")
                for c in text
            )

        base, sub, sup = mml(node.base), node.sub, node.sup
        if sub and sup:
            return f"<msubsup>{base}<mrow>{script(sub)}</mrow><mrow>{script(sup)}</mrow></msubsup>"
        if sub:
            return f"<msub>{base}<mrow>{script(sub)}</mrow></msub>"
        return f"<msup>{base}<mrow>{script(sup or '')}</mrow></msup>"
    if isinstance(node, SumOver):
        return (
            f"<mrow><munder><mo>\u2211</mo><mi>{escape(node.var)}</mi></munder>"
            f"{mml(node.body)}</mrow>"
        )
    if isinstance(node, Matrix):
        body = "".join(
            "<mtr>" + "".join(f"<mtd>{mml(c)}</mtd>" for c in r) + "</mtr>" for r in node.rows
        )
        # The brackets are drawn by the page's stylesheet (mrow.matrix): stretching an
        # <mo>[</mo> needs a maths font the reader may not have.
        # (A matrix too wide for a phone scrolls by itself, at the body's size.)
        return f'<mrow class="matrix"><mtable>{body}</mtable></mrow>'
    if isinstance(node, Dots):
        return "<mo>" + {"h": "\u22ef", "v": "\u22ee", "d": "\u22f1"}[node.kind] + "</mo>"
    raise TypeError(f"unknown node {node!r}")


def _items(node: Node) -> list[str]:
    """A top-level row's items side by side, parentheses opened up: the places a
    stylesheet may wrap a long line.  Never inside a row vector or a number, and never
    between a sign and what it applies to: each operator is glued to the item after it
    (a line breaks before "+ b", as in print), "(" to the item after it and ")" to the
    item before it, so "(−0.5)" and "− lr" stay whole."""
    if isinstance(node, Row):
        parts = [_items(i) for i in node.items]
        out: list[str] = []
        pending = ""  # operators waiting for the item they belong to
        for item, part in zip(node.items, parts, strict=True):
            if isinstance(item, Op):
                pending += "".join(part)
                continue
            if pending and part:
                part = [_glue(pending + part[0]), *part[1:]]
                pending = ""
            out += part
        if pending:
            out.append(pending)
        return out
    if isinstance(node, Paren):
        inner = _items(node.inner) or [""]
        if len(inner) == 1:
            return [_glue(f'<mo fence="true">(</mo>{inner[0]}<mo fence="true">)</mo>')]
        first, *middle, last = inner
        return [
            _glue(f'<mo fence="true">(</mo>{first}'),
            *middle,
            _glue(f'{last}<mo fence="true">)</mo>'),
        ]
    if (
        isinstance(node, Func)
        and isinstance(node.arg, Row)
        and sum(isinstance(i, Text) and i.text == ", " for i in node.arg.items) > 2
    ):
        # max(a, b, c, …) of many arguments (a pooling window) may break after a comma:
        # "max(" glued to the first argument, each ", " to the one before it
        groups: list[str] = [
            f'<mi mathvariant="normal">{escape(node.name)}</mi><mo>\u2061</mo><mo>(</mo>'
        ]
        for item in node.arg.items:
            if isinstance(item, Text) and item.text == ", ":
                groups[-1] += mml(item)
                groups.append("")
            else:
                groups[-1] += mml(item)
        groups[-1] += "<mo>)</mo>"
        return [_glue(g) for g in groups]
    if isinstance(node, Matrix) and len(node.rows) == 1:
        # A row vector is one item: it never breaks inside (brackets as characters,
        # not borders; the stylesheet lets a vector too wide for the screen scroll).
        cells = "".join(f'<mrow class="cell">{mml(c)}</mrow>' for c in node.rows[0])
        return [f'<mrow class="vec"><mo>[</mo>{cells}<mo>]</mo></mrow>']
    return [mml(node)]


def _glue(inner: str) -> str:
    """Items that must stay on one line together."""
    return f'<mrow class="nb">{inner}</mrow>'


def _flat(node: Node, lead: str = "", *, alone: bool = False) -> str:
    """``lead`` (an "=") then ``node``'s items (see :func:`_items`), ``lead`` glued to
    the first — unless ``alone``: a derivation's line of one item (its result) holds
    nothing else to wrap."""
    items = _items(node) or [""]
    if lead and alone and len(items) == 1:
        items[0] = lead + items[0]
    elif lead:
        items[0] = _glue(lead + items[0])
    return "".join(items)


def mml_equation(sides: Sequence[Node], *, display: bool = True) -> str:
    """A <math> element: sides joined by =.  The top row has class "wrap": its items are
    the places a long line may break."""
    inner = "".join(_flat(s, "<mo>=</mo>" if k else "") for k, s in enumerate(sides))
    mode = ' display="block"' if display else ""
    return f'<math{mode}><mrow class="wrap">{inner}</mrow></math>'


def mml_derivation(lhs: Node, lines: Sequence[Node]) -> str:
    """An aligned derivation as a two-column table (lhs | = line); each line's top row
    has class "wrap" (see :func:`mml_equation`).  A matrix on the left makes the table
    "stack": a stylesheet puts the lines under it rather than beside it."""
    rows = []
    for k, line in enumerate(lines):
        left = f'<mrow class="lhs" displaystyle="true">{mml(lhs)}</mrow>' if k == 0 else ""
        right = (
            f'<mrow class="wrap" displaystyle="true">{_flat(line, "<mo>=</mo>", alone=True)}</mrow>'
        )
        rows.append(
            f'<mtr><mtd columnalign="right">{left}</mtd><mtd columnalign="left">{right}</mtd></mtr>'
        )
    cls = "derivation stack" if isinstance(lhs, Matrix) else "derivation"
    return (
        f'<math display="block"><mtable class="{cls}" columnspacing="0">'
        + "".join(rows)
        + "</mtable></math>"
    )
