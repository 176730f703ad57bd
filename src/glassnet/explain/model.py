"""The derivation as a document model, built from a :class:`~glassnet.trace.Trace`.

A :class:`Document` is a list of :class:`Section` s, each a list of blocks:
:class:`Para` (words, with inline maths), :class:`Equation` (``A = B = ...``),
:class:`Derivation` (the three lines of a careful hand calculation: the rule in
symbols, the rule with the numbers put in, the result), :class:`Elided` (a marker
saying what was left out) and :class:`Picture` (the network as SVG).  The renderers
(Markdown, HTML, notebook) only print this model.

Every number comes from the trace: a symbol is built with the value the engine
recorded for it, and "the numbers put in" is the rule with each symbol replaced by its
value (:func:`glassnet.mathtree.substitute`).  Nothing is recomputed here.

Order and notation follow the seed tutorial: the network, the forward pass layer by
layer (row vector times matrix, h1_in/h1_out, O_in/O_out, W_{i1j1}), the error with its
per-output terms, the derivatives of the error, the backward pass from the output layer
down (through the activation — softmax with its full Jacobian — then dW, db, and the
update with the learning rate), and the weights before and after.

Batches: with B > 1 samples the per-unit lines are written for the first
``max_samples`` samples (symbols carry a superscript (s)); matrix forms have one row
per sample; dW and db sum over every sample (each term already carries the 1/B of the
mean).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial

from glassnet.errors import GlassnetError
from glassnet.losses import get_loss
from glassnet.mathtree import (
    MATMUL,
    MINUS,
    PLUS,
    TIMES,
    Const,
    Deriv,
    Dots,
    Exp,
    Frac,
    Matrix,
    Node,
    Paren,
    SumOver,
    Sym,
    join,
    row,
    substitute,
)
from glassnet.notation import letter, unit_name
from glassnet.trace import Trace

#: Refuse to write a derivation for networks no one would read (and whose notebook,
#: which carries every weight, would be huge).
MAX_LAYERS = 16
MAX_PARAMETERS = 20_000
MAX_BATCH = 256
MAX_DIGITS = 17

# -- blocks ------------------------------------------------------------------------------


@dataclass
class Para:
    """A paragraph: strings and inline maths nodes."""

    parts: tuple[str | Node, ...]


@dataclass
class Equation:
    """``sides[0] = sides[1] = ...`` on one line."""

    sides: tuple[Node, ...]


@dataclass
class Derivation:
    """lhs = rule (symbols) = subst (numbers) = result (numbers)."""

    lhs: Node
    rule: Node
    subst: Node
    result: Node


@dataclass
class Elided:
    """A marker for what was left out, in words."""

    text: str


@dataclass
class Picture:
    """The network drawn as an SVG document (a string)."""

    svg: str
    caption: str


Block = Para | Equation | Derivation | Elided | Picture


@dataclass
class Section:
    """A titled list of blocks.  ``kind`` and ``layer`` tell the notebook which code
    cell belongs after it ("network", "forward", "error", "dloss", "backward", "summary")."""

    title: str
    level: int
    kind: str
    layer: int | None = None
    blocks: list[Block] = field(default_factory=list)


@dataclass
class Document:
    """The whole derivation."""

    title: str
    trace: Trace
    digits: int
    round_to: int | None
    fmt: Callable[[float], str]
    sections: list[Section]
    spec_name: str = ""


# -- numbers -----------------------------------------------------------------------------


def number_format(digits: int, round_to: int | None) -> Callable[[float], str]:
    """How numbers are printed: ``digits`` significant digits, or, in hand mode
    (``round_to=K``), exactly the K-decimal values the engine used."""

    def fmt(v: float) -> str:
        v = float(v)
        if round_to is not None:
            s = f"{v:.{round_to}f}"
            if "." in s:
                s = s.rstrip("0").rstrip(".")
        else:
            s = f"{v:.{digits}g}"
            if "e" in s:
                mant, _, exp = s.partition("e")
                s = f"{mant}e{int(exp)}"
        return "0" if s in ("-0", "") else s

    return fmt


def check_digits(digits: object) -> int:
    if isinstance(digits, bool) or not isinstance(digits, int) or not 1 <= digits <= MAX_DIGITS:
        raise GlassnetError(
            f"expected a whole number of significant digits from 1 to {MAX_DIGITS}",
            got=repr(digits),
            field="digits",
        )
    return digits


def check_size(trace: Trace) -> None:
    """Refuse networks too large for a derivation a person reads."""
    n_params = sum(lt.W.size + lt.b.size for lt in trace.layers)
    if len(trace.layers) > MAX_LAYERS:
        raise GlassnetError(
            f"expected at most {MAX_LAYERS} layers for a written derivation",
            got=f"{len(trace.layers)} layers",
            field="layers",
        )
    if n_params > MAX_PARAMETERS:
        raise GlassnetError(
            f"expected at most {MAX_PARAMETERS} parameters for a written derivation "
            "(use 'glassnet step' for big networks)",
            got=f"{n_params} parameters",
            field="layers",
        )
    if trace.x.shape[0] > MAX_BATCH:
        raise GlassnetError(
            f"expected at most {MAX_BATCH} samples for a written derivation",
            got=f"{trace.x.shape[0]} samples",
            field="input",
        )


def shown(n: int, limit: int) -> list[int | None]:
    """Indices to write out of ``n``: all when n ≤ limit, else the first limit−1,
    None (an elision mark) and the last."""
    if n <= limit:
        return list(range(n))
    return [*range(limit - 1), None, n - 1]


# -- the builder -------------------------------------------------------------------------


class _Builder:
    """Builds symbols that carry the trace's values, then the sections."""

    def __init__(
        self,
        trace: Trace,
        *,
        fmt: Callable[[float], str],
        digits: int,
        max_units: int,
        max_samples: int,
    ) -> None:
        self.t = trace
        self.loss = get_loss(trace.loss_name)
        self.digits = digits
        self.L = len(trace.layers)
        self.B = int(trace.x.shape[0])
        self.fmt = fmt
        self.max_units = max_units
        self.samples = list(range(min(self.B, max_samples)))

    # -- symbols -----------------------------------------------------------------------
    def _sample(self, s: int) -> int | None:
        return s + 1 if self.B > 1 else None

    def unit(self, layer: int, kind: str, u: int, s: int = 0, *, valued: bool = True) -> Sym:
        """Input I_u (layer 0), h{l}_in/out u, or O_in/out u, of sample s."""
        if layer == 0:
            value = float(self.t.x[s, u]) if valued else None
            return Sym("I", ((str(u + 1), "num"),), self._sample(s), value=value)
        base, _, side = unit_name(self.L, layer, kind).partition("_")
        lt = self.t.layer(layer)
        value = float((lt.z if kind == "in" else lt.a)[s, u]) if valued else None
        return Sym(base, ((side, "txt"), (str(u + 1), "num")), self._sample(s), value=value)

    def out(self, layer: int, u: int, s: int = 0) -> Sym:
        return self.unit(layer, "out", u, s)

    def zin(self, layer: int, u: int, s: int = 0) -> Sym:
        return self.unit(layer, "in", u, s)

    def general_unit(self, layer: int, kind: str) -> Sym:
        """h1_in j — a unit with its index letter, for general rules."""
        if layer == 0:
            return Sym("I", ((letter(0), "id"),))
        base, _, side = unit_name(self.L, layer, kind).partition("_")
        return Sym(base, ((side, "txt"), (letter(layer), "id")))

    def weight(self, layer: int, i: int, j: int, *, new: bool = False) -> Sym:
        lt = self.t.layer(layer)
        sub: tuple[tuple[str, str], ...] = (
            (letter(layer - 1), "id"),
            (str(i + 1), "num"),
            (letter(layer), "id"),
        )
        sub = (*sub, (str(j + 1), "num"))
        return Sym("W", sub, prime=new, value=float((lt.W_new if new else lt.W)[i, j]))

    def weight_matrix_name(self, layer: int, *, new: bool = False) -> Sym:
        return Sym("W", ((letter(layer - 1) + letter(layer), "id"),), prime=new)

    def bias(self, layer: int, j: int, *, new: bool = False) -> Sym:
        lt = self.t.layer(layer)
        value = float((lt.b_new if new else lt.b)[j])
        return Sym("b", ((letter(layer), "id"), (str(j + 1), "num")), prime=new, value=value)

    def target(self, u: int, s: int = 0) -> Sym:
        return Sym("y", ((str(u + 1), "num"),), self._sample(s), value=float(self.t.y[s, u]))

    def term(self, u: int, s: int = 0) -> Sym:
        return Sym(
            "E", ((str(u + 1), "num"),), self._sample(s), value=float(self.t.loss_terms[s, u])
        )

    @property
    def E(self) -> Sym:
        return Sym("E", value=float(self.t.loss))

    @property
    def E_name(self) -> Sym:
        return Sym("E")

    @property
    def lr(self) -> Sym:
        return Sym("lr", value=float(self.t.lr))

    @property
    def batch(self) -> Sym:
        return Sym("B", value=float(self.B))

    @property
    def m(self) -> Sym:
        return Sym("m", value=float(self.t.output.shape[1]))

    def dE_da(self, layer: int, u: int, s: int = 0) -> Deriv:
        v = float(self.t.layer(layer).dL_da[s, u])
        return Deriv(self.E_name, self.unit(layer, "out", u, s, valued=False), value=v)

    def dE_dz(self, layer: int, u: int, s: int = 0) -> Deriv:
        v = float(self.t.layer(layer).delta[s, u])
        return Deriv(self.E_name, self.unit(layer, "in", u, s, valued=False), value=v)

    def da_dz(self, layer: int, i: int, j: int, s: int = 0) -> Deriv:
        lt = self.t.layer(layer)
        v = float(lt.da_dz[s, i, j] if lt.jacobian else lt.da_dz[s, i])
        top = self.unit(layer, "out", i, s, valued=False)
        return Deriv(top, self.unit(layer, "in", j, s, valued=False), value=v)

    def dE_dW(self, layer: int, i: int, j: int) -> Deriv:
        w = self.weight(layer, i, j)
        return Deriv(self.E_name, Sym(w.base, w.sub), value=float(self.t.layer(layer).dW[i, j]))

    def dE_db(self, layer: int, j: int) -> Deriv:
        b = self.bias(layer, j)
        return Deriv(self.E_name, Sym(b.base, b.sub), value=float(self.t.layer(layer).db[j]))

    # -- helpers -----------------------------------------------------------------------
    def derivation(self, lhs: Node, rule: Node) -> Derivation:
        return Derivation(lhs, rule, substitute(rule, self.fmt), substitute(lhs, self.fmt))

    def values(self, lhs: Node) -> Equation:
        return Equation((lhs, substitute(lhs, self.fmt)))

    def vector(self, cells: Callable[[int], Node], n: int) -> Matrix:
        """A row vector of n cells, elided past max_units + 2."""
        return Matrix((tuple(Dots() if k is None else cells(k) for k in self._cols(n)),))

    def matrix(self, cell: Callable[[int, int], Node], n_rows: int, n_cols: int) -> Matrix:
        rows: list[tuple[Node, ...]] = []
        for i in self._cols(n_rows):
            if i is None:
                rows.append(
                    tuple(Dots("v") if j is not None else Dots("d") for j in self._cols(n_cols))
                )
            else:
                rows.append(tuple(Dots() if j is None else cell(i, j) for j in self._cols(n_cols)))
        return Matrix(tuple(rows))

    def _cols(self, n: int) -> list[int | None]:
        return shown(n, self.max_units + 2)

    def batch_rows(self, cells: Callable[[int, int], Node], n: int) -> Matrix:
        """One row per sample (elided past 6 samples), n columns."""
        return self.matrix(cells, self.B, n)

    def sum_terms(self, term: Callable[[int], Node], n: int) -> list[Node]:
        return [Dots() if k is None else term(k) for k in shown(n, self.max_units + 2)]

    def units(self, n: int) -> list[int | None]:
        return shown(n, self.max_units)

    def each_unit(self, sec: Section, n: int, what: str) -> Iterator[int]:
        """The units of a layer of ``n`` to write in full, in order; where the rest are
        skipped, the elision marker is appended to ``sec`` at that point of the loop."""
        for j in self.units(n):
            if j is None:
                sec.blocks.append(self.elided(n, what))
            else:
                yield j

    def elided(self, n: int, what: str) -> Elided:
        return Elided(
            f"⋯ {what} {self.max_units} to {n - 1} follow the same rule "
            "(their values are in the matrix form)."
        )

    def sample_note(self) -> Para | None:
        if self.B == 1:
            return None
        if len(self.samples) == self.B:
            return Para(("Written out for each of the B samples; (s) marks the sample.",))
        return Para(
            (
                f"Written out for the first {len(self.samples)} of the B = {self.B} samples "
                "((s) marks the sample); the matrix form has every sample.",
            )
        )


ONE = Const("1")

# -- rules of the activations and losses -------------------------------------------------
# Each activation and loss writes its own rule in symbols and words (glassnet.activations,
# glassnet.losses): nothing here dispatches on a name, so a new one needs nothing here.


# -- the document ------------------------------------------------------------------------


def build(
    trace: Trace,
    *,
    digits: int = 4,
    title: str | None = None,
    max_units: int = 4,
    max_samples: int = 2,
    picture: bool = True,
) -> Document:
    """The derivation of ``trace`` as a :class:`Document`.

    ``digits`` significant digits are shown (in hand mode, ``trace.round_to`` decimals,
    exactly the values the engine used); layers wider than ``max_units`` are written out
    for the first units only, with a marker; with a batch, the first ``max_samples``.
    """
    check_digits(digits)
    check_size(trace)
    fmt = number_format(digits, trace.round_to)
    b = _Builder(trace, fmt=fmt, digits=digits, max_units=max_units, max_samples=max_samples)
    sections = [
        _intro(b, title, picture),
        _network(b),
        *(_forward(b, layer) for layer in range(1, b.L + 1)),
        _error(b),
        _dloss(b),
        *(_backward(b, layer) for layer in range(b.L, 0, -1)),
        _summary(b),
    ]
    return Document(
        title=sections[0].title,
        trace=trace,
        digits=digits,
        round_to=trace.round_to,
        fmt=fmt,
        sections=sections,
        spec_name=title or "",
    )


def _intro(b: _Builder, title: str | None, picture: bool) -> Section:
    t = b.t
    sizes = [t.layers[0].W.shape[0]] + [lt.W.shape[1] for lt in t.layers]
    sec = Section(f"Backpropagation, step by step{': ' + title if title else ''}", 1, "intro")
    acts = ", ".join(
        f"layer {lt.index}: {lt.activation}"
        + (
            " (" + ", ".join(f"{k} {v:g}" for k, v in lt.activation_options.items()) + ")"
            if lt.activation_options
            else ""
        )
        for lt in t.layers
    )
    sec.blocks.append(
        Para(
            (
                f"One training step of a {'-'.join(map(str, sizes))} network ({acts}) on "
                f"{b.B} sample{'s' if b.B > 1 else ''}, with the {t.loss_name} loss and "
                "plain gradient descent.  "
                + (
                    "The biases stay fixed (only the weights are updated).  "
                    if not t.update_bias
                    else ""
                ),
            )
        )
    )
    sec.blocks.append(
        Para(
            (
                "Each step is written the way a careful hand calculation is: the rule in "
                "symbols, the same rule with the numbers put in, and the result; then the "
                "whole layer at once in matrix form (a row vector times a matrix).  Every "
                "number is the one glassnet's engine computed",
                (
                    f", rounded to {t.round_to} decimals at every step, as by hand."
                    if t.round_to is not None
                    else f", shown to {b.digits} significant digits."
                ),
            )
        )
    )
    if picture:
        from glassnet.explain.svg import network_svg

        sec.blocks.append(
            Picture(
                network_svg(t, fmt=b.fmt),
                "The network: each circle shows a unit's output (for the first sample); "
                "the grids give each weight W and, in purple, its gradient ∂E/∂W.",
            )
        )
    return sec


def _network(b: _Builder) -> Section:
    t = b.t
    sec = Section("The network at the start", 2, "network")
    n_in = t.x.shape[1]
    sec.blocks.append(
        Para(
            (
                "The input is a row vector I (one row per sample); ",
                b.weight_matrix_name(1),
                f" connects input {letter(0)} to unit {letter(1)} of layer 1, and so on: ",
                Sym("W", ((letter(0), "id"), ("1", "num"), (letter(1), "id"), ("2", "num"))),
                " is the weight from input 1 to unit 2 of layer 1.",
            )
        )
    )
    sec.blocks.append(
        Equation(
            (
                Sym("I"),
                b.batch_rows(lambda s, u: b.unit(0, "in", u, s), n_in),
                substitute(b.batch_rows(lambda s, u: b.unit(0, "in", u, s), n_in), b.fmt),
            )
        )
    )
    for layer in range(1, b.L + 1):
        lt = t.layer(layer)
        W = b.matrix(partial(b.weight, layer), *lt.W.shape)
        sec.blocks.append(Equation((b.weight_matrix_name(layer), W, substitute(W, b.fmt))))
        bv = b.vector(partial(b.bias, layer), lt.b.shape[0])
        sec.blocks.append(Equation((Sym("b", ((letter(layer), "id"),)), bv, substitute(bv, b.fmt))))
    n_out = t.y.shape[1]
    y = b.batch_rows(lambda s, u: b.target(u, s), n_out)
    sec.blocks.append(Para(("The target (the output we want):",)))
    sec.blocks.append(Equation((Sym("y"), y, substitute(y, b.fmt))))
    sec.blocks.append(Para(("The learning rate:",)))
    sec.blocks.append(Equation((b.lr, substitute(b.lr, b.fmt))))
    if b.B > 1:
        sec.blocks.append(Para(("The number of samples in the batch:",)))
        sec.blocks.append(Equation((b.batch, substitute(b.batch, b.fmt))))
    return sec


def _forward(b: _Builder, layer: int) -> Section:
    t = b.t
    lt = t.layer(layer)
    n_in, n_out = lt.W.shape
    prev = "the input" if layer == 1 else f"layer {layer - 1}"
    sec = Section(
        f"Forward, layer {layer}: {unit_name(b.L, layer, 'in').split('_')[0]} ({lt.activation})",
        2 if layer == 1 else 3,
        "forward",
        layer,
    )
    if layer == 1:
        sec.title = (
            f"Forward pass — layer 1: {unit_name(b.L, 1, 'in').split('_')[0]} ({lt.activation})"
        )
    sec.blocks.append(
        Para(
            (
                f"Matrix operation: the outputs of {prev} (a row vector) times ",
                b.weight_matrix_name(layer),
                ", plus the biases ",
                Sym("b", ((letter(layer), "id"),)),
                ", give the inputs of layer "
                f"{layer}" + (" (the biases are added to every sample's row)." if b.B > 1 else "."),
            )
        )
    )
    lhs = b.batch_rows(lambda s, j: b.zin(layer, j, s), n_out)
    rule: Node = row(
        b.batch_rows(lambda s, i: b.unit(layer - 1, "out", i, s), n_in),
        MATMUL,
        b.matrix(lambda i, j: b.weight(layer, i, j), n_in, n_out),
        PLUS,
        b.vector(lambda j: b.bias(layer, j), n_out),
    )
    sec.blocks.append(b.derivation(lhs, rule))
    sec.blocks.append(Para(("Unit by unit:",)))

    def weighted_input(j: int, s: int, i: int) -> Node:
        """Term i of unit j's input: previous output i times W_ij."""
        return row(b.unit(layer - 1, "out", i, s), TIMES, b.weight(layer, i, j))

    note = b.sample_note()
    if note:
        sec.blocks.append(note)
    for s in b.samples:
        for j in b.each_unit(sec, n_out, "units"):
            terms = b.sum_terms(partial(weighted_input, j, s), n_in)
            rule = join([*terms, b.bias(layer, j)], PLUS)
            sec.blocks.append(b.derivation(b.zin(layer, j, s), rule))

    # The activation.
    act = lt.act
    sec.blocks.append(Para((f"Activation: {act.words}.",)))
    gz, ga = b.general_unit(layer, "in"), b.general_unit(layer, "out")
    if not act.elementwise:
        every = Sym(gz.base, (gz.sub[0], ("u", "id")))
        sec.blocks.append(Equation((ga, Frac(Exp(gz), SumOver("u", Exp(every))))))
        sec.blocks.append(
            Para(
                (
                    "where the sum runs over every unit u of the layer: each output depends "
                    "on every input.",
                )
            )
        )
    else:
        sec.blocks.append(Equation((ga, act.rule(gz))))
    for s in b.samples:
        zs_s: list[Node] = [
            Dots() if k is None else b.zin(layer, k, s) for k in shown(n_out, b.max_units + 2)
        ]
        for j in b.each_unit(sec, n_out, "units"):
            rule = act.rule(b.zin(layer, j, s), zs_s)
            sec.blocks.append(b.derivation(b.out(layer, j, s), rule))
    sec.blocks.append(Para((f"Layer {layer}'s outputs:",)))
    sec.blocks.append(b.values(b.batch_rows(lambda s, j: b.out(layer, j, s), n_out)))
    return sec


def _scaled(b: _Builder, rule: Node) -> Node:
    """rule, times 1/B when the batch has several samples (the mean's factor)."""
    if b.B == 1:
        return rule
    return row(Frac(ONE, b.batch), TIMES, Paren(rule))


def _error(b: _Builder) -> Section:
    t = b.t
    n_out = t.y.shape[1]
    L = b.L
    sec = Section("The error", 2, "error")
    sec.blocks.append(
        Para(
            (
                "The network's outputs ",
                Sym("O" if L > 0 else "I", (("out", "txt"),)),
                " are not yet the target y.  The loss is "
                f"{b.loss.words}; the error E is the sum of the terms"
                + (", averaged over the B samples." if b.B > 1 else "."),
            )
        )
    )
    gp, gy = b.general_unit(L, "out"), Sym("y", ((letter(L), "id"),))
    gm = Sym("m")
    sec.blocks.append(
        Equation((Sym("E", ((letter(L), "id"),)), b.loss.term_rule(gp, gy, gm)))
    )
    sec.blocks.append(Para(("Output by output:",)))
    note = b.sample_note()
    if note:
        sec.blocks.append(note)
    for s in b.samples:
        for k in b.each_unit(sec, n_out, "outputs"):
            rule = b.loss.term_rule(b.out(L, k, s), b.target(k, s), b.m)
            sec.blocks.append(b.derivation(b.term(k, s), rule))
    sec.blocks.append(Para(("The total error:",)))
    terms: list[Node] = []
    for sample in shown(b.B, b.max_units + 2):
        if sample is None:
            terms.append(Dots())
            continue
        terms.extend(b.sum_terms(partial(b.term, s=sample), n_out))
    sec.blocks.append(b.derivation(b.E, _scaled(b, join(terms, PLUS))))
    return sec


def _dloss(b: _Builder) -> Section:
    t = b.t
    L = b.L
    n_out = t.y.shape[1]
    sec = Section("Derivatives of the error", 2, "dloss")
    sec.blocks.append(
        Para(
            (
                "Backpropagation starts from how the error changes with each output.  "
                "Only the term of output k depends on that output, so:",
            )
        )
    )
    gp, gy = b.general_unit(L, "out"), Sym("y", ((letter(L), "id"),))
    rule = b.loss.grad_rule(gp, gy, Sym("m"))
    sec.blocks.append(Equation((Deriv(b.E_name, gp), _scaled_general(b, rule))))
    if b.B > 1:
        sec.blocks.append(Para(("The 1/B of the mean rides along into every derivative below.",)))
    note = b.sample_note()
    if note:
        sec.blocks.append(note)
    for s in b.samples:
        for k in b.each_unit(sec, n_out, "outputs"):
            rule = b.loss.grad_rule(b.out(L, k, s), b.target(k, s), b.m)
            sec.blocks.append(b.derivation(b.dE_da(L, k, s), _scaled(b, rule)))
    sec.blocks.append(Para(("All together:",)))
    sec.blocks.append(b.values(b.batch_rows(lambda s, k: b.dE_da(L, k, s), n_out)))
    return sec


def _scaled_general(b: _Builder, rule: Node) -> Node:
    if b.B == 1:
        return rule
    return row(Frac(ONE, Sym("B")), TIMES, Paren(rule))


def _backward(b: _Builder, layer: int) -> Section:
    t = b.t
    lt = t.layer(layer)
    n_out = lt.W.shape[1]
    L = b.L
    name = unit_name(L, layer, "in").split("_")[0]
    title = f"Backward, layer {layer}: {name} ({lt.activation})"
    sec = Section(
        ("Backward pass — " + title[len("Backward, ") :]) if layer == L else title,
        2 if layer == L else 3,
        "backward",
        layer,
    )
    # 1. dE/da of this layer.
    if layer < L:
        nxt = t.layer(layer + 1)
        sec.blocks.append(
            Para(
                (
                    f"How the error changes with layer {layer}'s outputs.  Each output "
                    f"feeds every unit of layer {layer + 1} (through ",
                    b.weight_matrix_name(layer + 1),
                    "), so its derivative is a sum over all of them:",
                )
            )
        )
        n_next = nxt.W.shape[1]

        def via_next(j: int, s: int, k: int) -> Node:
            """Term k of output j's derivative: through unit k of the next layer."""
            return row(b.dE_dz(layer + 1, k, s), TIMES, b.weight(layer + 1, j, k))

        for s in b.samples:
            for j in b.each_unit(sec, n_out, "units"):
                terms = b.sum_terms(partial(via_next, j, s), n_next)
                sec.blocks.append(b.derivation(b.dE_da(layer, j, s), join(terms, PLUS)))
        sec.blocks.append(
            Para(
                (
                    "In matrix form: the row of ∂E/∂(inputs of layer "
                    f"{layer + 1}) times the transpose of ",
                    b.weight_matrix_name(layer + 1),
                    ":",
                )
            )
        )
        lhs = b.batch_rows(lambda s, j: b.dE_da(layer, j, s), n_out)
        rule: Node = row(
            b.batch_rows(lambda s, k: b.dE_dz(layer + 1, k, s), n_next),
            MATMUL,
            b.matrix(lambda k, j: b.weight(layer + 1, j, k), n_next, n_out),
        )
        sec.blocks.append(b.derivation(lhs, rule))
    else:
        sec.blocks.append(Para(("From the derivatives of the error above:",)))
        sec.blocks.append(b.values(b.batch_rows(lambda s, j: b.dE_da(layer, j, s), n_out)))

    # 2. Through the activation.
    if lt.jacobian:
        _softmax_backward(b, sec, layer)
    else:
        act = lt.act
        sec.blocks.append(Para((act.derivative_words,)))
        gz, ga = b.general_unit(layer, "in"), b.general_unit(layer, "out")
        sec.blocks.append(Equation((Deriv(ga, gz), act.derivative_rule(gz, ga))))
        for s in b.samples:
            for j in b.each_unit(sec, n_out, "units"):
                rule = act.derivative_rule(b.zin(layer, j, s), b.out(layer, j, s))
                sec.blocks.append(b.derivation(b.da_dz(layer, j, j, s), rule))
        sec.blocks.append(
            Para(
                (
                    "The chain rule gives the derivative with respect to each unit's "
                    "input (often called δ):",
                )
            )
        )
        for s in b.samples:
            for j in b.each_unit(sec, n_out, "units"):
                rule = row(b.dE_da(layer, j, s), TIMES, b.da_dz(layer, j, j, s))
                sec.blocks.append(b.derivation(b.dE_dz(layer, j, s), rule))
    sec.blocks.append(Para(("All together:",)))
    sec.blocks.append(b.values(b.batch_rows(lambda s, j: b.dE_dz(layer, j, s), n_out)))

    # 3. dW and db.
    _gradients(b, sec, layer)
    # 4. The update.
    _update(b, sec, layer)
    return sec


def _softmax_backward(b: _Builder, sec: Section, layer: int) -> None:
    t = b.t
    lt = t.layer(layer)
    n = lt.W.shape[1]
    gz = b.general_unit(layer, "in")
    other = Sym(gz.base, (gz.sub[0], ("u", "id")))
    ga = b.general_unit(layer, "out")
    sec.blocks.append(
        Para(
            (
                "Softmax mixes its inputs: every output depends on every input, so its "
                "derivative is a full matrix (the Jacobian).  On the diagonal, ",
                Deriv(ga, gz),
                " = ",
                row(ga, TIMES, Paren(row(ONE, MINUS, ga))),
                "; off it, for u ≠ ",
                gz.sub[1][0],
                ", ",
                Deriv(ga, other),
                " = ",
                row(MINUS, ga, TIMES, Sym(ga.base, (ga.sub[0], ("u", "id")))),
                ".",
            )
        )
    )

    def entry(i: int, j: int, s: int) -> Node:
        if i == j:
            return row(b.out(layer, i, s), TIMES, Paren(row(ONE, MINUS, b.out(layer, i, s))))
        return row(MINUS, b.out(layer, i, s), TIMES, b.out(layer, j, s))

    def through_output(j: int, s: int, i: int) -> Node:
        """Term i of input j's derivative: through output i of the softmax."""
        return row(b.dE_da(layer, i, s), TIMES, b.da_dz(layer, i, j, s))

    note = b.sample_note()
    if note:
        sec.blocks.append(note)
    for s in b.samples:
        lhs = b.matrix(partial(b.da_dz, layer, s=s), n, n)
        rule = b.matrix(partial(entry, s=s), n, n)
        sec.blocks.append(b.derivation(lhs, rule))
    sec.blocks.append(
        Para(
            (
                "The chain rule then sums over every output: each input of the softmax "
                "changes the error through all of its outputs.",
            )
        )
    )
    for s in b.samples:
        for j in b.each_unit(sec, n, "units"):
            terms = b.sum_terms(partial(through_output, j, s), n)
            sec.blocks.append(b.derivation(b.dE_dz(layer, j, s), join(terms, PLUS)))
    _shortcut(b, sec, layer)


def _shortcut(b: _Builder, sec: Section, layer: int) -> None:
    """Where cross-entropy meets softmax: the sum above simplifies to (p − y)/B."""
    t = b.t
    if layer != b.L:
        return
    n = t.y.shape[1]
    gz, ga = b.general_unit(layer, "in"), b.general_unit(layer, "out")
    gy = Sym("y", ((letter(layer), "id"),))
    if t.output_delta_shortcut is None:
        if t.loss_name == "binary_cross_entropy":
            sec.blocks.append(
                Para(
                    (
                        "(With categorical cross-entropy this sum would collapse to O_out − y. "
                        "With binary cross-entropy on a softmax, as here, it does not: every "
                        "term of the sum counts.)",
                    )
                )
            )
            return
        if t.loss_name != "cross_entropy":
            return
        # Softmax + cross-entropy whose targets do not sum to 1 (the one predicate,
        # glassnet.losses.fused_delta_ok, said no when the trace was made).
        sec.blocks.append(
            Para(
                (
                    "(The targets of a sample do not sum to 1 here, so the familiar "
                    "simplification to O_out − y does not hold; the sum above is the "
                    "derivative.)",
                )
            )
        )
        return
    sec.blocks.append(
        Para(
            (
                "A consequence worth seeing: put ",
                Deriv(b.E_name, ga),
                " = ",
                _scaled_general(b, row(MINUS, Frac(gy, ga))),
                " into the sum.  The ",
                ga,
                " cancels, and since the targets of a sample add up to 1, what is left is ",
                Deriv(b.E_name, gz),
                " = ",
                _scaled_general(b, row(ga, MINUS, gy)),
                ".  The same numbers, the short way"
                + (
                    " (in hand mode the last decimal may differ: the long way rounded "
                    "each product, the short way rounds once):"
                    if t.round_to is not None
                    else ":"
                ),
            )
        )
    )
    for s in b.samples:
        for j in b.each_unit(sec, n, "units"):
            value = float(t.output_delta_shortcut[s, j])
            lhs = Deriv(b.E_name, b.unit(layer, "in", j, s, valued=False), value=value)
            rule = _scaled(b, row(b.out(layer, j, s), MINUS, b.target(j, s)))
            sec.blocks.append(b.derivation(lhs, rule))


def _gradients(b: _Builder, sec: Section, layer: int) -> None:
    t = b.t
    lt = t.layer(layer)
    n_in, n_out = lt.W.shape
    gw = b.weight_matrix_name(layer)
    prev_gen = b.general_unit(layer - 1, "out")
    sec.blocks.append(
        Para(
            (
                "The gradient of the weights ",
                gw,
                ": the weight from unit ",
                letter(layer - 1),
                " to unit ",
                letter(layer),
                " multiplies ",
                prev_gen,
                ", so ∂(input)/∂W is that output and ",
                Deriv(b.E_name, Sym("W", ((letter(layer - 1) + letter(layer), "id"),))),
                " = ",
                row(prev_gen, TIMES, Deriv(b.E_name, b.general_unit(layer, "in"))),
                " (summed over the B samples)." if b.B > 1 else ".",
            )
        )
    )

    def sample_term(i: int, j: int, s: int) -> Node:
        """Sample s's share of dW_ij: its output i times its dE/d(input j)."""
        return row(b.unit(layer - 1, "out", i, s), TIMES, b.dE_dz(layer, j, s))

    for i in b.each_unit(sec, n_in, "rows"):
        for j in b.each_unit(sec, n_out, "columns"):
            terms = b.sum_terms(partial(sample_term, i, j), b.B)
            sec.blocks.append(b.derivation(b.dE_dW(layer, i, j), join(terms, PLUS)))
    sec.blocks.append(
        Para(
            (
                "In matrix form: the transpose of the layer's input"
                + (" (a column)" if b.B == 1 else "")
                + " times the row"
                + ("s" if b.B > 1 else "")
                + " of ∂E/∂(inputs):",
            )
        )
    )
    lhs = b.matrix(lambda i, j: b.dE_dW(layer, i, j), n_in, n_out)
    rule = row(
        b.matrix(lambda i, s: b.unit(layer - 1, "out", i, s), n_in, b.B),
        MATMUL,
        b.batch_rows(lambda s, j: b.dE_dz(layer, j, s), n_out),
    )
    sec.blocks.append(b.derivation(lhs, rule))
    sec.blocks.append(
        Para(
            (
                "The biases add 1 × their value, so their gradient is ∂E/∂(input) itself"
                + (", summed over the samples:" if b.B > 1 else ":"),
            )
        )
    )
    lhs = b.vector(lambda j: b.dE_db(layer, j), n_out)
    parts = [
        Dots() if s is None else b.vector(partial(b.dE_dz, layer, s=s), n_out)
        for s in shown(b.B, b.max_units + 2)
    ]
    sec.blocks.append(b.derivation(lhs, join(parts, PLUS)))


def _update(b: _Builder, sec: Section, layer: int) -> None:
    t = b.t
    lt = t.layer(layer)
    n_in, n_out = lt.W.shape
    sec.blocks.append(
        Para(
            (
                "The update: each weight takes a step of size lr against its gradient, ",
                Sym("W", ((letter(layer - 1) + letter(layer), "id"),), prime=True),
                " = ",
                row(
                    Sym("W", ((letter(layer - 1) + letter(layer), "id"),)),
                    MINUS,
                    Sym("lr"),
                    TIMES,
                    Deriv(b.E_name, Sym("W", ((letter(layer - 1) + letter(layer), "id"),))),
                ),
                ".",
            )
        )
    )
    for i in b.each_unit(sec, n_in, "rows"):
        for j in b.each_unit(sec, n_out, "columns"):
            rule = row(b.weight(layer, i, j), MINUS, b.lr, TIMES, b.dE_dW(layer, i, j))
            sec.blocks.append(b.derivation(b.weight(layer, i, j, new=True), rule))
    sec.blocks.append(Para(("In matrix form:",)))
    lhs = b.matrix(lambda i, j: b.weight(layer, i, j, new=True), n_in, n_out)
    rule = row(
        b.matrix(lambda i, j: b.weight(layer, i, j), n_in, n_out),
        MINUS,
        b.lr,
        TIMES,
        b.matrix(lambda i, j: b.dE_dW(layer, i, j), n_in, n_out),
    )
    sec.blocks.append(b.derivation(lhs, rule))
    if t.update_bias:
        lhs = b.vector(lambda j: b.bias(layer, j, new=True), n_out)
        rule = row(
            b.vector(lambda j: b.bias(layer, j), n_out),
            MINUS,
            b.lr,
            TIMES,
            b.vector(lambda j: b.dE_db(layer, j), n_out),
        )
        sec.blocks.append(Para(("The biases, the same way:",)))
        sec.blocks.append(b.derivation(lhs, rule))
    else:
        sec.blocks.append(
            Para(("The biases are fixed in this step (update_bias = false), so they stay:",))
        )
        sec.blocks.append(b.values(b.vector(lambda j: b.bias(layer, j, new=True), n_out)))


def _summary(b: _Builder) -> Section:
    sec = Section("The weights before and after the step", 2, "summary")
    for layer in range(1, b.L + 1):
        lt = b.t.layer(layer)
        W = b.matrix(partial(b.weight, layer), *lt.W.shape)
        Wn = b.matrix(partial(b.weight, layer, new=True), *lt.W.shape)
        sec.blocks.append(b.values(W))
        sec.blocks.append(b.values(Wn))
        if b.t.update_bias:
            bn = b.vector(partial(b.bias, layer, new=True), lt.b.shape[0])
            sec.blocks.append(b.values(bn))
    return sec
