"""The section writers: the derivation of a :class:`~glassnet.trace.Trace`, built by
walking the step graph's order (:func:`glassnet.step.step_order`).

Each quantity of the step is placed in a section (:func:`place`) and written there by
its writer (:data:`WRITERS`), in the order the step graph meets it; nothing here keeps a
second list of the quantities.  Order and notation follow the seed tutorial: the network,
the forward pass layer by layer (row vector times matrix, h1_in/h1_out, O_in/O_out,
W_{i1j1}), the error with its per-output terms, the derivatives of the error, the
backward pass from the output layer down (through the activation — softmax with its full
Jacobian — then dW, db, and the update with the learning rate), and the weights before
and after.

Batches: dW and db sum over every sample (each term already carries the 1/B of the
mean).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np

from glassnet.explain.document import (
    Block,
    Calculation,
    Cell,
    Collapsed,
    Document,
    Elided,
    Equation,
    Erratum,
    ErratumKey,
    Link,
    Para,
    Picture,
    Section,
    Table,
)
from glassnet.explain.generic import build_generic, needs_generic
from glassnet.explain.symbols import ONE, Builder, check_digits, check_size, number_format, shown
from glassnet.mathtree import (
    EQ,
    MATMUL,
    MINUS,
    PLUS,
    TIMES,
    Deriv,
    Dots,
    Exp,
    Frac,
    Node,
    Num,
    Paren,
    Step,
    SumOver,
    Sym,
    join,
    row,
    substitute,
)
from glassnet.notation import (
    letter,
    mazur_name,
    mazur_shaped,
    nielsen_bp,
    unit_name,
    weight_conventions,
)
from glassnet.step import Key, step_order
from glassnet.trace import Trace

#: Where a section is: (kind, layer); layer 0 for the whole step's sections.
Place = tuple[str, int]


def before_formula(words: str, *, colon: bool = False) -> str:
    """A plugin's words up to the formula they end with ("the sigmoid 1/(1 + e^−x)" ->
    "the sigmoid"; "half the sum of squared errors: each output adds ½(y − O_out)²" ->
    "half the sum of squared errors"): the page writes the formula itself as maths right
    after.  ``colon``: a sentence, cut only at its colon ("The sigmoid's derivative is
    best written with its own output: σ′(x) = …"), which it keeps."""
    cut = re.search(r":\s" if colon else r":\s|,\s|\s(?=[0-9(])", words)
    if cut is None:
        return words
    return words[: cut.start()] + (":" if colon else "")


def _why(b: Builder, sec: Section, key: str, summary: str, text: str) -> None:
    """The derivation of a rule, folded, beside the first place the page uses it."""
    if key not in b.explained:
        b.explained.add(key)
        sec.blocks.append(Collapsed(summary, [Para((text,))]))


def _fold_last(b: Builder, sec: Section, n: int, summary: str) -> None:
    """Fold the last ``n`` blocks of ``sec`` away under ``summary`` (when folding)."""
    if b.fold:
        folded, sec.blocks[-n:] = sec.blocks[-n:], []
        sec.blocks.append(Collapsed(summary, folded))


def _marked_inside(blocks: list[Block]) -> str:
    """What a fold's summary adds when errata are folded inside it ("" when none)."""
    wrong = [x for x in blocks if isinstance(x, Erratum)]
    return f" — {len(wrong)} of {wrong[0].who}'s numbers marked inside" if wrong else ""


def _fold(sec: Section, batch: bool) -> None:
    """Each run of two or more calculations (one rule, unit by unit) keeps its first
    calculation (and the notes right after it) open and folds the rest away."""
    out: list[Block] = []
    run: list[Block] = []

    def flush() -> None:
        n_calc = sum(isinstance(x, Calculation) for x in run)
        if n_calc < 2:
            out.extend(run)
        else:
            k = 1
            while k < len(run) and not isinstance(run[k], Calculation):
                k += 1
            rest = run[k:]
            n = sum(isinstance(x, Calculation) for x in rest)
            others = "units and samples" if batch else "units"
            out.extend(run[:k])
            summary = f"{n} more like it: the other {others}, the same rule"
            out.append(Collapsed(summary + _marked_inside(rest), rest))
        run.clear()

    for block in sec.blocks:
        if isinstance(block, Calculation | Elided | Erratum):
            run.append(block)
        else:
            flush()
            out.append(block)
    flush()
    sec.blocks = out


def place(key: Key, n_layers: int) -> Place:
    """The section quantity ``key`` is written in."""
    kind, layer = key
    if kind in ("x", "y", "W", "b"):
        return ("network", 0)
    if kind in ("z", "a"):
        return ("forward", layer)
    if kind in ("loss_terms", "loss"):
        return ("error", 0)
    if kind == "dL_da" and layer == n_layers:
        return ("dloss", 0)
    if kind in ("W_new", "b_new"):
        # After the whole backward pass: every gradient uses the weights before the update.
        return ("update", layer)
    # dL_da below the output, da_dz, delta, dW, db of that layer.
    return ("backward", layer)


def build(
    trace: Trace,
    *,
    digits: int = 4,
    title: str | None = None,
    max_units: int = 4,
    max_samples: int = 2,
    picture: bool = True,
    fold: bool = True,
    errata: dict[ErratumKey, Erratum] | None = None,
    notation: str = "rows",
) -> Document:
    """The derivation of ``trace`` as a :class:`Document`.

    ``digits`` significant digits are shown (in hand mode, ``trace.round_to`` decimals,
    exactly the values the engine used); layers wider than ``max_units`` are written out
    for the first units only, with a marker; with a batch, the first ``max_samples``.
    ``fold``: of each run of calculations with one rule (unit by unit), show the first
    and fold the rest away (still on the page, in ``<details>``).  ``errata``: what a
    worked solution wrote instead, written beside each value it got wrong
    (:func:`glassnet.check.errata`).
    """
    check_digits(digits)
    check_size(trace)
    fmt = number_format(digits, trace.round_to)
    if needs_generic(trace):
        # Another layer type or optimiser: every quantity a matrix at a time, with the
        # rule its plugin writes (explain/generic.py).
        return build_generic(
            trace,
            fmt=fmt,
            digits=digits,
            title=title,
            max_units=max_units,
            max_samples=max_samples,
        )
    b = Builder(
        trace,
        fmt=fmt,
        digits=digits,
        max_units=max_units,
        max_samples=max_samples,
        errata=errata,
        notation=notation,
    )
    b.fold = fold
    if picture:
        from glassnet.explain.svg import draws_grids

        # The picture shows every weight in its grids: the matrices can fold.
        b.picture_grids = draws_grids(trace)
    plan: dict[Place, list[Key]] = {}
    for key in step_order(b.L):
        plan.setdefault(place(key, b.L), []).append(key)
    sections = [_intro(b, title, picture)]
    for (kind, layer), keys in plan.items():
        if kind in PARTS and sections[-1].kind != kind:
            # The layers of a pass are sub-sections of one section named for the pass.
            sections.append(Section(PARTS[kind], 2, "part"))
            if kind == "backward":
                _one_weight(b, sections[-1])
                sections[-1].blocks.append(_algorithm(b))
        sec = OPENERS[kind](b, layer)
        if kind == "network":
            # The given values: the input, the parameters, then what we want (the target).
            keys = sorted(keys, key=lambda k: k[0] == "y")
        for key in keys:
            WRITERS[key[0]](b, sec, key[1])
        if kind == "network":
            _rates(b, sec)
        sections.append(sec)
    summary = _summary(b)
    if trace.after is not None and not trace.later:
        after = _after(b, trace.after)
        # The weight matrices before and after close the payoff section, folded.
        after.blocks += [x for x in summary.blocks if isinstance(x, Collapsed)]
        sections.append(after)
    else:
        sections.append(summary)
    if fold:
        for sec in sections:
            _fold(sec, b.B > 1)
    return Document(
        title=sections[0].title,
        trace=trace,
        digits=digits,
        round_to=trace.round_to,
        fmt=fmt,
        sections=sections,
        spec_name=title or "",
        notation=notation,
    )


def _intro(b: Builder, title: str | None, picture: bool) -> Section:
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
                "Each step is written the way a careful hand calculation is (in each box): "
                "the rule in symbols, the same rule with the numbers put in, and the result "
                "(in bold); then the "
                "whole layer at once in matrix form ("
                + (
                    "a matrix times a column vector, as in Nielsen and Goodfellow, "
                    if b.columns
                    else "a row vector times a matrix, "
                ),
                (
                    row(Sym("W"), TIMES, Sym("a"), PLUS, Sym("b"))
                    if b.columns
                    else row(Sym("x"), TIMES, Sym("W"), PLUS, Sym("b"))
                ),
                ").  Every number is the one glassnet's engine computed",
                (
                    f", rounded to {t.round_to} decimals at every step, as by hand."
                    if t.round_to is not None
                    else f", shown to {b.digits} significant digits."
                ),
            )
        )
    )
    published = {e.who for e in b.errata.values() if e.verdict == "differs"}
    marked = {e.who for e in b.errata.values() if e.verdict != "differs"}
    for who in sorted(marked):
        sec.blocks.append(
            Para(
                (
                    f"Where {who} wrote a different number, a note below the right one "
                    "says what it wrote and what glassnet check makes of it: ✗ a "
                    "mistake, named where the check's catalogue reproduces it; → a number "
                    "right for its own earlier (wrong) numbers, the error carried forward.",
                )
            )
        )
    for who in sorted(published):
        sec.blocks.append(
            Para(
                (
                    f"Where {who} printed a number that differs from the engine's by more "
                    "than its printed rounding, a note (≠) below the engine's value says so.",
                )
            )
        )
    sec.blocks.append(_glossary(b))
    if t.preprocessing is not None:  # a model's stored preprocessing comes first
        pp = t.preprocessing

        def as_row(v: Iterable[float]) -> str:
            return "[" + ", ".join(f"{float(x):.{b.digits}g}" for x in v) + "]"

        sec.blocks.append(
            Para(
                (
                    "First the raw row is scaled, as the model does to every row it is "
                    "given (its stored preprocessing): x = (raw − mean) / scale, feature by "
                    f"feature, with mean {as_row(pp.mean)} and scale {as_row(pp.scale)}.  "
                    + " ".join(
                        f"Raw {as_row(pp.raw[s])} becomes x = {as_row(pp.x[s])}." for s in b.samples
                    ),
                )
            )
        )
    if picture:
        from glassnet.explain.svg import draws_grids, network_svg

        caption = "The network: each circle shows a unit's output (for the first sample)"
        if draws_grids(t):
            caption += "; the grids give each weight W and, in purple, its gradient ∂E/∂W"
        sec.blocks.append(Picture(network_svg(t, fmt=b.fmt), caption + "."))
    return sec


# -- the network ---------------------------------------------------------------------------


def _glossary(b: Builder) -> Collapsed:
    """This page's names beside the textbooks' and PyTorch's (the names themselves are
    kept in :mod:`glassnet.notation`): the general table, which index runs where in
    each book's weight, and for a network of Mazur's shape his name for every value."""
    L = b.L
    z, a = b.general_unit(L, "in"), b.general_unit(L, "out")
    header: tuple[str | Node, ...] = ("", "this page", "Mazur", "Nielsen, Bishop", "PyTorch")
    # The general weight "from unit i to unit j" (the letters of the row's words).
    w = Sym("W", (("j", "id"), ("i", "id")) if b.columns else (("i", "id"), ("j", "id")))
    rows: list[tuple[str | Node, ...]] = [
        (
            "a layer",
            "h1, h2, …: the hidden layers; O the output layer",
            "h1, h2 are hidden units, o1, o2 output units",
            "layer l",
            "model[l]",
        ),
        ("a unit's input", z, "net_o1 (net_h1)", "z (column vectors)", "x @ weight.T + bias"),
        ("its output", a, "out_o1 (out_h1)", "a = σ(z)", "the activation's output"),
        (
            "weight from unit i to unit j",
            w,
            "w1…w8, numbered",
            "w[j][i], to j from i: " + ("the same" if b.columns else "W transposed"),
            "layer.weight[j, i]: " + ("W" if b.columns else "Wᵀ"),
        ),
        (
            "δ, the error signal",
            row(b.general_delta(L), EQ, Deriv(Sym("E"), z)),
            "∂E_total/∂net",
            "δ",
            "z.grad",
        ),
        (
            "one layer, in matrices",
            "W · column + b" if b.columns else "row · W + b",
            "per unit",
            "W · a + b (columns)",
            "x @ Wᵀ + b",
        ),
        (
            "sample s of a batch",
            "[s] after the name, column s" if b.columns else "[s] after the name, row s",
            "one sample",
            "x^(s) or x_s",
            "row s",
        ),
    ]
    blocks: list[Block] = [Table("Notation", header, rows)]
    blocks.append(
        Table(
            "Which index runs where: the weight into unit j from unit i below it",
            ("", "written", "its matrix"),
            [tuple(c) for c in weight_conventions(b.columns)],
        )
    )
    mazur = _mazur_table(b)
    if mazur is not None:
        blocks.append(mazur)
    summary = "Notation: this page's names beside Mazur's, Nielsen's and PyTorch's"
    return Collapsed(summary, blocks)


def _mazur_table(b: Builder) -> Table | None:
    """Matt Mazur's name for every value of a network of his example's shape (2-2-2),
    with the value, so a reader of his post finds each of his numbers here."""
    t = b.t
    if b.B != 1 or not mazur_shaped([t.x.shape[1], *(lt.W.shape[1] for lt in t.layers)]):
        return None
    entries: list[tuple[Node, str | None]] = []
    entries += [(b.unit(0, "in", u), mazur_name("x", 0, (u,))) for u in range(2)]
    for layer in (1, 2):
        for jj in range(2):
            for ii in range(2):
                entries.append((b.weight(layer, ii, jj), mazur_name("W", layer, (ii, jj))))
        entries += [(b.bias(layer, jj), mazur_name("b", layer, (jj,))) for jj in range(2)]
    for layer in (1, 2):
        for u in range(2):
            entries.append((b.zin(layer, u), mazur_name("z", layer, (u,))))
            entries.append((b.out(layer, u), mazur_name("a", layer, (u,))))
    entries += [(b.target(u), mazur_name("y", 0, (u,))) for u in range(2)]
    entries += [(b.term(u), mazur_name("loss_terms", 0, (u,))) for u in range(2)]
    entries.append((b.E, mazur_name("loss", 0, ())))
    for layer in (2, 1):  # he updates the output layer's weights first
        for jj in range(2):
            for ii in range(2):
                w_new = b.weight(layer, ii, jj, new=True)
                entries.append((w_new, mazur_name("W_new", layer, (ii, jj))))
    rows: list[tuple[str | Node, ...]] = [
        (
            Sym(n.base, n.sub, n.sample, n.prime) if isinstance(n, Sym) else n,
            name,
            substitute(n, b.fmt),
        )
        for n, name in entries
        if name is not None
    ]
    note = (
        "Mazur's names for this network (his example's shape, 2-2-2; his h1 is a hidden "
        "unit, this page's h1 the hidden layer; he gives each layer one bias, b1 and b2)"
    )
    return Table(note, ("this page", "Mazur", "value"), rows)


def _open_network(b: Builder, layer: int) -> Section:
    sec = Section("The network at the start", 2, "network")
    example = ((letter(0), "id"), ("1", "num")), ((letter(1), "id"), ("2", "num"))
    sec.blocks.append(
        Para(
            (
                "The input is a "
                + ("column vector I (one column" if b.columns else "row vector I (one row")
                + " per sample); ",
                b.weight_matrix_name(1),
                f" connects input {letter(0)} to unit {letter(1)} of layer 1, and so on: ",
                Sym(
                    "W",
                    (*example[::-1][0], *example[::-1][1])
                    if b.columns
                    else (*example[0], *example[1]),
                ),
                " is the weight from input 1 to unit 2 of layer 1"
                + (
                    " (rows are the units a weight goes to, columns those it comes from: "
                    "the transpose of the seed's W)."
                    if b.columns
                    else "."
                ),
            )
        )
    )
    return sec


def _input(b: Builder, sec: Section, layer: int) -> None:
    n_in = b.t.x.shape[1]
    rows = b.batch_matrix(lambda s, u: b.unit(0, "in", u, s), n_in)
    sec.blocks.append(Equation((Sym("I"), rows, substitute(rows, b.fmt))))


OTHER_PARAMETERS = "The other layers' weights and biases"


ALL_PARAMETERS = "The weights and biases as matrices (the picture shows every weight)"


def _parameter(b: Builder, sec: Section, layer: int, block: Block) -> None:
    """Layer 1's parameters open; the other layers' folded together (the picture and
    the update tables show them too).  Where the picture already shows every weight
    legibly (its grids, on small networks), layer 1's are folded with them."""
    grids = b.picture_grids
    if (layer == 1 and not grids) or not b.fold:
        sec.blocks.append(block)
        return
    summary = ALL_PARAMETERS if grids else OTHER_PARAMETERS
    last = sec.blocks[-1] if sec.blocks else None
    if isinstance(last, Collapsed) and last.summary == summary:
        last.blocks.append(block)
    else:
        sec.blocks.append(Collapsed(summary, [block]))


def _weights(b: Builder, sec: Section, layer: int) -> None:
    W = b.weights(layer, partial(b.weight, layer))
    _parameter(b, sec, layer, Equation((b.weight_matrix_name(layer), W, substitute(W, b.fmt))))


def _biases(b: Builder, sec: Section, layer: int) -> None:
    bv = b.vector(partial(b.bias, layer), b.t.layer(layer).b.shape[0])
    bias = Equation((Sym("b", ((letter(layer), "id"),)), bv, substitute(bv, b.fmt)))
    _parameter(b, sec, layer, bias)


def _target(b: Builder, sec: Section, layer: int) -> None:
    y = b.batch_matrix(lambda s, u: b.target(u, s), b.t.y.shape[1])
    sec.blocks.append(Para(("The target (the output we want):",)))
    sec.blocks.append(Equation((Sym("y"), y, substitute(y, b.fmt))))


def _rates(b: Builder, sec: Section) -> None:
    """The step's settings: the learning rate and the batch size."""
    sec.blocks.append(Para(("The learning rate:",)))
    sec.blocks.append(Equation((b.lr, substitute(b.lr, b.fmt))))
    if b.B > 1:
        sec.blocks.append(Para(("The number of samples in the batch:",)))
        sec.blocks.append(Equation((b.batch, substitute(b.batch, b.fmt))))


# -- the forward pass ----------------------------------------------------------------------


#: The sections that group the layers of a pass.
PARTS: dict[str, str] = {
    "forward": "The forward pass",
    "backward": "The backward pass",
    "update": "The update, after the whole backward pass",
}


def _open_forward(b: Builder, layer: int) -> Section:
    lt = b.t.layer(layer)
    name = unit_name(b.L, layer, "in").split("_")[0]
    return Section(f"Forward, layer {layer}: {name} ({lt.activation})", 3, "forward", layer)


def _inputs(b: Builder, sec: Section, layer: int) -> None:
    """z: the previous outputs times W, plus b — as a matrix, then unit by unit."""
    lt = b.t.layer(layer)
    n_in, n_out = lt.W.shape
    prev = "the input I" if layer == 1 else f"the outputs of layer {layer - 1}"
    words: tuple[str | Node, ...] = (
        (
            "Matrix operation: ",
            b.weight_matrix_name(layer),
            f" times {prev} (a column vector)",
        )
        if b.columns
        else (
            f"Matrix operation: {prev} (a row vector) times ",
            b.weight_matrix_name(layer),
        )
    )
    sec.blocks.append(
        Para(
            (
                *words,
                ", plus the biases ",
                Sym("b", ((letter(layer), "id"),)),
                ", give the inputs of layer "
                f"{layer}"
                + (
                    f" (the biases are added to every sample's {'column' if b.columns else 'row'})."
                    if b.B > 1
                    else "."
                ),
            )
        )
    )
    lhs = b.batch_matrix(lambda s, j: b.zin(layer, j, s), n_out)
    inputs = b.batch_matrix(lambda s, i: b.unit(layer - 1, "out", i, s), n_in)
    W = b.weights(layer, partial(b.weight, layer))
    product = (W, MATMUL, inputs) if b.columns else (inputs, MATMUL, W)
    rule: Node = row(*product, PLUS, b.vector(lambda j: b.bias(layer, j), n_out))
    sec.blocks.append(b.calculation(lhs, rule))
    _fold_last(b, sec, 2, "The whole layer at once, in matrix form")
    sec.blocks.append(Para(("Unit by unit:",)))

    def weighted_input(j: int, s: int, i: int) -> Node:
        """Term i of unit j's input: previous output i times W_ij (W_ji times it)."""
        a, w = b.unit(layer - 1, "out", i, s), b.weight(layer, i, j)
        return row(w, TIMES, a) if b.columns else row(a, TIMES, w)

    note = b.sample_note()
    if note:
        sec.blocks.append(note)
    for s in b.samples:
        for j in b.each_unit(sec, n_out, "units"):
            terms = b.sum_terms(partial(weighted_input, j, s), n_in)
            rule = join([*terms, b.bias(layer, j)], PLUS)
            sec.blocks.append(b.calculation(b.zin(layer, j, s), rule))
            b.erratum(sec, "z", layer, (j,))


def _outputs(b: Builder, sec: Section, layer: int) -> None:
    """a: the activation, in general and unit by unit."""
    lt = b.t.layer(layer)
    n_out = lt.W.shape[1]
    act = lt.act
    sec.blocks.append(Para((f"Activation: {before_formula(act.words)}.",)))
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
    parts = _written_parts(b, layer)
    if parts is not None:
        _by_hand(b, sec, layer, parts)
    elif not act.elementwise:
        sec.blocks.append(
            Para(
                (
                    "(Some e^z here is too large for a float, so the exponentials are not "
                    "written out; the engine subtracts the largest input of the row first, "
                    "which changes no quotient.)",
                )
            )
        )
    for s in b.samples:
        zs_s: list[Node] = [
            Dots() if k is None else b.zin(layer, k, s) for k in shown(n_out, b.max_units + 2)
        ]
        for j in b.each_unit(sec, n_out, "units"):
            rule = act.rule(b.zin(layer, j, s), zs_s)
            calc = b.calculation(b.out(layer, j, s), rule)
            if parts is not None:
                # The quotient of the numbers just written out: e^z over their sum.
                ej, tot = float(parts.e[s, j]), float(parts.total[s])
                calc.steps = (Frac(Num(ej, parts.part(ej)), Num(tot, parts.sum(tot))),)
            sec.blocks.append(calc)
            b.erratum(sec, "a", layer, (j,))
    sec.blocks.append(Para((f"Layer {layer}'s outputs:",)))
    sec.blocks.append(b.values(b.batch_matrix(lambda s, j: b.out(layer, j, s), n_out)))
    _fold_last(b, sec, 2, f"Layer {layer}'s outputs as a row")


@dataclass
class Parts:
    """An activation's parts by hand (softmax: each e^z, (B, n), and their sum, (B,)),
    and how they are written: ``part`` each e^z (to ``digits`` significant digits),
    ``sum`` their sum."""

    e: Any
    total: Any
    part: Callable[[float], str]
    sum: Callable[[float], str]
    digits: int


def _decimals(text: str) -> int:
    return len(text.partition(".")[2]) if "e" not in text else 0


def _written_parts(b: Builder, layer: int) -> Parts | None:
    """The activation's parts by hand (softmax: each e^z and their sum S) and how they
    are written.  At the page's digits; in hand mode each e^z is written to the fewest
    significant digits from 6 up with which every quotient e/S, S the sum of the written
    e^z, still rounds to the output the engine rounded (near a rounding boundary 6
    digits can tip the last decimal), and S exactly as that sum."""
    lt = b.t.layer(layer)
    K = b.t.round_to
    if K is None:
        parts = lt.act.by_hand(lt.z)
        return None if parts is None else Parts(*parts, b.fmt, b.fmt, b.digits)
    found = None
    for digits in range(max(b.digits, 6), 16):
        fmt = number_format(digits, None)
        parts = lt.act.by_hand(lt.z, written=np.vectorize(lambda v, f=fmt: float(f(v))))
        if parts is None:
            return None
        e, total = parts
        found = (e, total, fmt, digits)
        quotients = e[b.samples] / total[b.samples, None]
        if np.all(np.abs(np.round(quotients, K) - lt.a[b.samples]) < 1e-12):
            break
    assert found is not None
    e, total, fmt, digits = found
    places = max(_decimals(fmt(float(v))) for v in e[b.samples].ravel())
    return Parts(e, total, fmt, lambda v: f"{float(v):.{places}f}", digits)


def _exp_of_input(b: Builder, layer: int, k: int, s: int) -> Node:
    """e^{z_k} of sample s."""
    return Exp(b.zin(layer, k, s))


def _by_hand(b: Builder, sec: Section, layer: int, parts: Parts) -> None:
    """The parts a person computes first (softmax: each e^z, then their sum S), from the
    activation's own :meth:`~glassnet.activations.base.Activation.by_hand`."""
    e, total, part_fmt, sum_fmt = parts.e, parts.total, parts.part, parts.sum
    n = e.shape[1]
    gz = b.general_unit(layer, "in")
    S = Sym("S")
    sec.blocks.append(
        Para(
            (
                "By hand: first each ",
                Exp(gz),
                ", then their sum ",
                S,
                ", then each quotient"
                + (
                    f" (each exponential written to {parts.digits} "
                    "significant digits and added up as written; the outputs rounded to "
                    f"{b.t.round_to} decimals):"
                    if b.t.round_to is not None
                    else ":"
                ),
            )
        )
    )
    for s in b.samples:
        terms = b.sum_terms(partial(_exp_of_input, b, layer, s=s), n)
        numbers = [
            t if isinstance(t, Dots) else Num(float(e[s, k]), part_fmt(float(e[s, k])))
            for t, k in zip(terms, shown(n, b.max_units + 2), strict=True)
        ]
        tot = float(total[s])
        rule = join(terms, PLUS)
        calc = b.calculation(Sym("S", sample=b.sample_mark(s)), rule)
        calc.steps = (join(numbers, PLUS),)
        calc.result = Num(tot, sum_fmt(tot))
        sec.blocks.append(calc)
    sec.blocks.append(Para(("Then each output is its exponential over the sum:",)))


# -- the error -----------------------------------------------------------------------------


def _scaled(b: Builder, rule: Node) -> Node:
    """rule, times 1/B when the batch has several samples (the mean's factor)."""
    if b.B == 1:
        return rule
    return row(Frac(ONE, b.batch), TIMES, Paren(rule))


def _scaled_general(b: Builder, rule: Node) -> Node:
    if b.B == 1:
        return rule
    return row(Frac(ONE, Sym("B")), TIMES, Paren(rule))


def _open_error(b: Builder, layer: int) -> Section:
    return Section("The error", 2, "error")


def _loss_terms(b: Builder, sec: Section, layer: int) -> None:
    t = b.t
    n_out = t.y.shape[1]
    L = b.L
    sec.blocks.append(
        Para(
            (
                "The network's outputs ",
                Sym("O" if L > 0 else "I", (("out", "txt"),)),
                " are not yet the target y.  The loss is "
                f"{before_formula(b.loss.words)}; the error E is the sum of the terms"
                + (", averaged over the B samples" if b.B > 1 else "")
                + ", each output's term:",
            )
        )
    )
    gp, gy = b.general_unit(L, "out"), Sym("y", ((letter(L), "id"),))
    gm = Sym("m")
    sec.blocks.append(Equation((Sym("E", ((letter(L), "id"),)), b.loss.term_rule(gp, gy, gm))))
    sec.blocks.append(Para(("Output by output:",)))
    note = b.sample_note()
    if note:
        sec.blocks.append(note)
    for s in b.samples:
        for k in b.each_unit(sec, n_out, "outputs"):
            rule = b.loss.term_rule(b.out(L, k, s), b.target(k, s), b.m)
            sec.blocks.append(b.calculation(b.term(k, s), rule))
            b.erratum(sec, "loss_terms", layer, (k,))


def _loss(b: Builder, sec: Section, layer: int) -> None:
    n_out = b.t.y.shape[1]
    sec.blocks.append(Para(("The total error:",)))
    terms: list[Node] = []
    for sample in shown(b.B, b.max_units + 2):
        if sample is None:
            terms.append(Dots())
            continue
        terms.extend(b.sum_terms(partial(b.term, s=sample), n_out))
    sec.blocks.append(b.calculation(b.E, _scaled(b, join(terms, PLUS))))
    b.erratum(sec, "loss", layer, ())


def _open_dloss(b: Builder, layer: int) -> Section:
    return Section("Derivatives of the error", 2, "dloss")


def _dloss(b: Builder, sec: Section) -> None:
    """dE/da of the output layer: the loss's own derivative."""
    L = b.L
    n_out = b.t.y.shape[1]
    sec.blocks.append(
        Para(
            (
                "Backpropagation starts from how the error changes with each output.  "
                f"Only the term of output {letter(L)} depends on that output, so:",
            )
        )
    )
    gp, gy = b.general_unit(L, "out"), Sym("y", ((letter(L), "id"),))
    rule = b.loss.grad_rule(gp, gy, Sym("m"))
    sec.blocks.append(Equation((Deriv(b.E_name, gp), _scaled_general(b, rule))))
    _why(b, sec, "loss", "Why is this the loss's derivative?", b.loss.why())
    if b.B > 1:
        sec.blocks.append(Para(("The 1/B of the mean rides along into every derivative below.",)))
    note = b.sample_note()
    if note:
        sec.blocks.append(note)
    for s in b.samples:
        for k in b.each_unit(sec, n_out, "outputs"):
            rule = b.loss.grad_rule(b.out(L, k, s), b.target(k, s), b.m)
            sec.blocks.append(b.calculation(b.dE_da(L, k, s), _scaled(b, rule)))
            b.erratum(sec, "dL_da", L, (k,))
    sec.blocks.append(Para(("All together:",)))
    sec.blocks.append(b.values(b.batch_matrix(lambda s, k: b.dE_da(L, k, s), n_out)))
    _fold_last(b, sec, 2, "All together, as a row")


# -- the backward pass ---------------------------------------------------------------------


def _backward_title(b: Builder, layer: int) -> str:
    name = unit_name(b.L, layer, "in").split("_")[0]
    return f"Backward, layer {layer}: {name} ({b.t.layer(layer).activation})"


def _one_weight(b: Builder, sec: Section) -> None:
    """The chain rule for one weight, written out once the way Mazur's example does
    (∂E/∂w5 = ∂E/∂out_o1 · ∂out_o1/∂net_o1 · ∂net_o1/∂w5), before the layer-wide
    forms: the first weight of the output layer.  With its numbers where the product
    is that weight's gradient as recorded (one sample, an elementwise activation, not
    hand mode, which rounds δ before the product); otherwise in symbols."""
    L, t = b.L, b.t
    lt = t.layer(L)
    w = b.weight(L, 0, 0)
    wname = Sym(w.base, w.sub)
    z1, a1 = b.unit(L, "in", 0, valued=False), b.unit(L, "out", 0, valued=False)
    prev = b.out(L - 1, 0) if L > 1 else b.unit(0, "in", 0)
    dz_dw = Deriv(z1, wname, value=prev.value)
    sizes = [t.x.shape[1], *(x.W.shape[1] for x in t.layers)]
    # Mazur's own name for this gradient, as maths: ∂E_total/∂w5.
    mazur_w = mazur_name("W", L, (0, 0)) if mazur_shaped(sizes) else None
    mazur = (
        Deriv(Sym("E", (("total", "txt"),)), Sym("w", ((mazur_w[1:], "num"),))) if mazur_w else None
    )
    through: tuple[str | Node, ...] = (
        ("every output of the softmax; the sum in brackets is its δ",)
        if lt.jacobian
        else (a1, "; the first two factors make its δ")
    )
    sec.blocks.append(
        Para(
            (
                "One weight first, the way Mazur's example writes it" + (" (his " if mazur else ""),
                *((mazur, ")") if mazur else ()),
                ": ",
                wname,
                " feeds only ",
                z1,
                ", which changes E through ",
                *through,
                ", the last factor is the output the weight multiplies:",
            )
        )
    )
    if lt.jacobian:
        other_a = Sym(a1.base, (a1.sub[0], ("u", "id")))
        summed = SumOver("u", row(Deriv(b.E_name, other_a), TIMES, Deriv(other_a, z1)))
        delta1 = Sym(b.delta_base(L), (("1", "num"),))
        sides = (
            row(Paren(summed), TIMES, Deriv(z1, wname)),
            row(delta1, TIMES, Sym(prev.base, prev.sub)),
        )
        sec.blocks.append(Equation((Deriv(b.E_name, wname), *sides)))
        return
    rule = row(b.dE_da(L, 0), TIMES, b.da_dz(L, 0, 0), TIMES, dz_dw)
    if b.B == 1 and t.round_to is None:
        sec.blocks.append(b.calculation(b.dE_dW(L, 0, 0), rule))
    else:
        sec.blocks.append(Equation((Deriv(b.E_name, wname), rule)))


def _algorithm(b: Builder) -> Table:
    """The whole backward pass as this page's four equations (Nielsen's BP1–BP4, in
    this page's names and notation), each linked to the section that first uses it."""
    L = b.L
    last = L - 1 if L > 1 else L
    gz, ga, gd = b.general_unit(L, "in"), b.general_unit(L, "out"), b.general_delta(L)
    lt = b.t.layer(L)
    if lt.jacobian:
        other = Sym(ga.base, (ga.sub[0], ("u", "id")))
        bp1: Node = row(gd, EQ, SumOver("u", row(Deriv(b.E_name, other), TIMES, Deriv(other, gz))))
    else:
        bp1 = row(gd, EQ, Deriv(b.E_name, ga), TIMES, Deriv(ga, gz))
    nielsen = nielsen_bp()
    rows: list[tuple[Cell, ...]] = [
        ("BP1", bp1, nielsen["BP1"], Link(f"layer {L}", _backward_title(b, L)))
    ]
    if L > 1:
        hz, ha, hd = (
            b.general_unit(last, "in"),
            b.general_unit(last, "out"),
            b.general_delta(last),
        )
        wsym = Sym(
            "W",
            ((letter(L), "id"), (letter(last), "id"))
            if b.columns
            else ((letter(last), "id"), (letter(L), "id")),
        )
        inner = row(wsym, TIMES, gd) if b.columns else row(gd, TIMES, wsym)
        bp2 = row(hd, EQ, Paren(SumOver(letter(L), inner)), TIMES, Deriv(ha, hz))
        rows.append(
            (
                "BP2",
                bp2,
                nielsen["BP2"],
                Link(f"layer {last}", _backward_title(b, last)),
            )
        )
    gb = Sym("b", ((letter(L), "id"),))
    rows.append(
        (
            "BP3",
            row(Deriv(b.E_name, gb), EQ, gd),
            nielsen["BP3"],
            Link(f"layer {L}", _backward_title(b, L)),
        )
    )
    prev = b.general_unit(L - 1, "out")
    gw = Sym(
        "W",
        ((letter(L), "id"), (letter(L - 1), "id"))
        if b.columns
        else ((letter(L - 1), "id"), (letter(L), "id")),
    )
    rows.append(
        (
            "BP4",
            row(Deriv(b.E_name, gw), EQ, prev, TIMES, gd),
            nielsen["BP4"],
            Link(f"layer {L}", _backward_title(b, L)),
        )
    )
    notes = ["one unit at a time"]
    if b.B > 1:
        notes.append("BP3 and BP4 summed over the samples")
    if lt.jacobian:
        notes.append("Nielsen's ⊙ σ′ is for an elementwise σ: a softmax brings its Jacobian")
    return Table(
        "The backward pass in four equations, for every weight at once: Nielsen's "
        f"BP1–BP4 in this page's names ({'; '.join(notes)})",
        ("", "this page", "Nielsen", "first used in"),
        rows,
        boxed=True,
    )


def _open_backward(b: Builder, layer: int) -> Section:
    lt = b.t.layer(layer)
    L = b.L
    sec = Section(_backward_title(b, layer), 3, "backward", layer)
    if layer == L:
        n_out = lt.W.shape[1]
        sec.blocks.append(Para(("From the derivatives of the error above:",)))
        sec.blocks.append(b.values(b.batch_matrix(lambda s, j: b.dE_da(layer, j, s), n_out)))
        _fold_last(b, sec, 2, "∂E/∂(outputs), from the derivatives of the error above")
    return sec


def _output_grads(b: Builder, sec: Section, layer: int) -> None:
    """dE/da: the loss's derivative at the output layer; below it, a sum over the next
    layer's units."""
    if layer == b.L:
        _dloss(b, sec)
        return
    t = b.t
    n_out = t.layer(layer).W.shape[1]
    nxt = t.layer(layer + 1)
    sec.blocks.append(
        Para(
            (
                f"How the error changes with layer {layer}'s outputs.  Each output "
                f"feeds every unit of layer {layer + 1} (through ",
                b.weight_matrix_name(layer + 1),
                "), so its derivative is a sum over all of them.  The weights are the ones "
                "before the update (the update comes after the whole backward pass):",
            )
        )
    )
    n_next = nxt.W.shape[1]

    def via_next(j: int, s: int, k: int) -> Node:
        """Term k of output j's derivative: through unit k of the next layer."""
        d, w = b.dE_dz(layer + 1, k, s), b.weight(layer + 1, j, k)
        return row(w, TIMES, d) if b.columns else row(d, TIMES, w)

    for s in b.samples:
        for j in b.each_unit(sec, n_out, "units"):
            terms = b.sum_terms(partial(via_next, j, s), n_next)
            sec.blocks.append(b.calculation(b.dE_da(layer, j, s), join(terms, PLUS)))
            b.erratum(sec, "dL_da", layer, (j,))
    words: tuple[str | Node, ...] = (
        (
            "In matrix form: the transpose of ",
            b.weight_matrix_name(layer + 1),
            f" times the column of layer {layer + 1}'s δ:",
        )
        if b.columns
        else (
            f"In matrix form: the row of layer {layer + 1}'s δ times the transpose of ",
            b.weight_matrix_name(layer + 1),
            ":",
        )
    )
    sec.blocks.append(Para(words))
    lhs = b.batch_matrix(lambda s, j: b.dE_da(layer, j, s), n_out)
    deltas = b.batch_matrix(lambda s, k: b.dE_dz(layer + 1, k, s), n_next)
    WT = b.weights_transposed(layer + 1, partial(b.weight, layer + 1))
    rule: Node = row(WT, MATMUL, deltas) if b.columns else row(deltas, MATMUL, WT)
    sec.blocks.append(b.calculation(lhs, rule))
    _fold_last(b, sec, 2, "The same in matrix form")


def _activation_grads(b: Builder, sec: Section, layer: int) -> None:
    """da/dz: the activation's derivative (softmax: its full Jacobian)."""
    lt = b.t.layer(layer)
    n_out = lt.W.shape[1]
    if lt.jacobian:
        _softmax_jacobian(b, sec, layer)
        return
    act = lt.act
    sec.blocks.append(Para((before_formula(act.derivative_words, colon=True),)))
    gz, ga = b.general_unit(layer, "in"), b.general_unit(layer, "out")
    sec.blocks.append(Equation((Deriv(ga, gz), act.derivative_rule(gz, ga))))
    _why(b, sec, f"activation:{act.name}", f"Why is this {act.name}'s derivative?", act.why())
    for s in b.samples:
        for j in b.each_unit(sec, n_out, "units"):
            rule = act.derivative_rule(b.zin(layer, j, s), b.out(layer, j, s))
            sec.blocks.append(b.calculation(b.da_dz(layer, j, j, s), rule))
            b.erratum(sec, "da_dz", layer, (j,))


def _deltas(b: Builder, sec: Section, layer: int) -> None:
    """delta = dE/dz: the chain rule through the activation."""
    lt = b.t.layer(layer)
    n_out = lt.W.shape[1]
    if lt.jacobian:
        _softmax_deltas(b, sec, layer)
    else:
        _delta_definition(b, sec, layer)
        sec.blocks.append(Para(("The chain rule through the activation gives each unit's δ:",)))
        for s in b.samples:
            for j in b.each_unit(sec, n_out, "units"):
                rule = row(b.dE_da(layer, j, s), TIMES, b.da_dz(layer, j, j, s))
                sec.blocks.append(b.calculation(b.dE_dz(layer, j, s), rule))
                b.erratum(sec, "delta", layer, (j,))
    sec.blocks.append(Para(("All together:",)))
    sec.blocks.append(b.values(b.batch_matrix(lambda s, j: b.dE_dz(layer, j, s), n_out)))
    _fold_last(b, sec, 2, "δ of the layer as a row")
    sec.blocks.append(_layer_table(b, layer))


def _delta_definition(b: Builder, sec: Section, layer: int) -> None:
    """δ: what it stands for — said once, where the backward pass first meets it."""
    gz, gd = b.general_unit(layer, "in"), b.general_delta(layer)
    if "delta" in b.explained:
        sec.blocks.append(
            Para(("As before, ", gd, " = ", Deriv(b.E_name, gz), ", the δ of each unit:"))
        )
        return
    b.explained.add("delta")
    sec.blocks.append(
        Para(
            (
                "The derivative of the error with respect to a unit's input has a name of "
                "its own, δ (delta, the unit's error signal): ",
                gd,
                " = ",
                Deriv(b.E_name, gz),
                ".  Every gradient below is built from the δ of its layer, so from here on "
                "the boxes write δ for it.",
            )
        )
    )


def _layer_table(b: Builder, layer: int) -> Table:
    """Every unit of the layer at a glance: z, a, ∂E/∂a, ∂a/∂z, δ."""
    lt = b.t.layer(layer)
    n = lt.W.shape[1]
    gz, ga = b.general_unit(layer, "in"), b.general_unit(layer, "out")
    header: list[str | Node] = ["sample", "unit"] if b.B > 1 else ["unit"]
    header += [gz, ga, Deriv(b.E_name, ga)]
    if not lt.jacobian:
        header.append(Deriv(ga, gz))
    header.append(b.general_delta(layer))
    rows: list[tuple[str | Node, ...]] = []
    for s in range(b.B) if b.B <= b.max_units + 2 else b.samples:
        for j in range(n):
            cells: list[Node] = [b.zin(layer, j, s), b.out(layer, j, s), b.dE_da(layer, j, s)]
            if not lt.jacobian:
                cells.append(b.da_dz(layer, j, j, s))
            cells.append(b.dE_dz(layer, j, s))
            lead: list[str | Node] = [str(s + 1), str(j + 1)] if b.B > 1 else [str(j + 1)]
            rows.append((*lead, *(substitute(c, b.fmt) for c in cells)))
    return Table(f"Layer {layer} at a glance", tuple(header), rows)


def _softmax_jacobian(b: Builder, sec: Section, layer: int) -> None:
    lt = b.t.layer(layer)
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
    _why(b, sec, "activation:softmax", "Why is this softmax's Jacobian?", lt.act.why())

    def entry(i: int, j: int, s: int) -> Node:
        if i == j:
            return row(b.out(layer, i, s), TIMES, Paren(row(ONE, MINUS, b.out(layer, i, s))))
        return row(MINUS, b.out(layer, i, s), TIMES, b.out(layer, j, s))

    note = b.sample_note()
    if note:
        sec.blocks.append(note)
    sec.blocks.append(Para(("Row by row (row i holds output i's derivatives):",)))
    for s in b.samples:
        for i in b.each_unit(sec, n, "rows"):
            lhs = b.row_vector(partial(b.da_dz, layer, i, s=s), n)
            rule = b.row_vector(partial(entry, i, s=s), n)
            sec.blocks.append(b.calculation(lhs, rule))
            b.erratum(sec, "da_dz", layer, (i,), *((i, j) for j in range(n)))


def _softmax_deltas(b: Builder, sec: Section, layer: int) -> None:
    n = b.t.layer(layer).W.shape[1]

    def through_output(j: int, s: int, i: int) -> Node:
        """Term i of input j's derivative: through output i of the softmax."""
        return row(b.dE_da(layer, i, s), TIMES, b.da_dz(layer, i, j, s))

    _delta_definition(b, sec, layer)
    gz, ga, gd = b.general_unit(layer, "in"), b.general_unit(layer, "out"), b.general_delta(layer)
    other_a = Sym(ga.base, (ga.sub[0], ("u", "id")))
    letter_j = gz.sub[1][0]
    column = row(gd, EQ, SumOver("u", row(Deriv(b.E_name, other_a), TIMES, Deriv(other_a, gz))))
    words: list[str | Node] = [
        "The chain rule then sums over every output: each input of the softmax changes the "
        f"error through all of its outputs, so input {letter_j}'s δ takes column {letter_j} "
        "of the Jacobian (every output's derivative with respect to that input), not a row: ",
        column,
        ".",
    ]
    jac = np.asarray(b.t.layer(layer).da_dz)
    if np.allclose(jac, np.swapaxes(jac, -1, -2), rtol=1e-12, atol=0.0):
        # Said only where the recorded Jacobian is symmetric (softmax's always is).
        words += [
            "  This Jacobian is symmetric (",
            Deriv(ga, Sym(gz.base, (gz.sub[0], ("u", "id")))),
            " = ",
            Deriv(other_a, gz),
            f"), so column {letter_j} holds the same numbers as row {letter_j} above.",
        ]
    sec.blocks.append(Para(tuple(words)))
    for s in b.samples:
        for j in b.each_unit(sec, n, "units"):
            terms = b.sum_terms(partial(through_output, j, s), n)
            sec.blocks.append(b.calculation(b.dE_dz(layer, j, s), join(terms, PLUS)))
            b.erratum(sec, "delta", layer, (j,))
    _shortcut(b, sec, layer)


def _shortcut(b: Builder, sec: Section, layer: int) -> None:
    """Where cross-entropy meets softmax: the sum above simplifies to (p − y)/B."""
    t = b.t
    if layer != b.L:
        return
    n = t.y.shape[1]
    ga = b.general_unit(layer, "out")
    gy = Sym("y", ((letter(layer), "id"),))
    if t.output_delta_shortcut is None:
        # Why p − y does not apply here: the loss says, for this output (cross-entropy
        # with targets not summing to 1; binary cross-entropy on a softmax).
        note = b.loss.shortcut_note(t.layer(layer).act)
        if note:
            sec.blocks.append(Para((note,)))
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
                b.general_delta(layer),
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
            d = b.dE_dz(layer, j, s)
            lhs = Sym(d.base, d.sub, d.sample, value=value)
            rule = _scaled(b, row(b.out(layer, j, s), MINUS, b.target(j, s)))
            sec.blocks.append(b.calculation(lhs, rule))


def _weight_grads(b: Builder, sec: Section, layer: int) -> None:
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
                ", so ",
                Deriv(
                    b.general_unit(layer, "in"),
                    Sym("W", ((letter(layer - 1) + letter(layer), "id"),)),
                ),
                " is that output and ",
                Deriv(b.E_name, b.weight_matrix_name(layer)),
                " = ",
                row(prev_gen, TIMES, b.general_delta(layer)),
                " (summed over the B samples)." if b.B > 1 else ".",
            )
        )
    )

    _why(
        b,
        sec,
        "dense",
        "Why is ∂(input)/∂W the previous layer's output?",
        f"Unit {letter(layer)}'s input is Σ_{letter(layer - 1)} (output "
        f"{letter(layer - 1)} · W_{letter(layer - 1)}{letter(layer)}) + "
        f"b_{letter(layer)}: only one term of the sum contains a given weight, and its "
        "derivative with respect to that weight is the output it multiplies.  The bias "
        "is added as it is: its derivative is 1.",
    )

    def sample_term(i: int, j: int, s: int) -> Node:
        """Sample s's share of dW_ij: its output i times its dE/d(input j)."""
        return row(b.unit(layer - 1, "out", i, s), TIMES, b.dE_dz(layer, j, s))

    for i in b.each_unit(sec, n_in, "rows"):
        for j in b.each_unit(sec, n_out, "columns"):
            terms = b.sum_terms(partial(sample_term, i, j), b.B)
            sec.blocks.append(b.calculation(b.dE_dW(layer, i, j), join(terms, PLUS)))
            b.erratum(sec, "dW", layer, (i, j))
    many = "s" if b.B > 1 else ""
    sec.blocks.append(
        Para(
            (
                (
                    f"In matrix form: the column{many} of δ times the transpose "
                    "of the layer's input" + (" (a row):" if b.B == 1 else ":")
                )
                if b.columns
                else (
                    "In matrix form: the transpose of the layer's input"
                    + (" (a column)" if b.B == 1 else "")
                    + f" times the row{many} of δ:"
                ),
            )
        )
    )
    lhs = b.weights(layer, partial(b.dE_dW, layer))
    inputs_T = b.batch_matrix_transposed(lambda s, i: b.unit(layer - 1, "out", i, s), n_in)
    deltas = b.batch_matrix(lambda s, j: b.dE_dz(layer, j, s), n_out)
    rule = row(deltas, MATMUL, inputs_T) if b.columns else row(inputs_T, MATMUL, deltas)
    sec.blocks.append(b.calculation(lhs, rule))
    _fold_last(b, sec, 2, "The same in matrix form")


def _bias_grads(b: Builder, sec: Section, layer: int) -> None:
    n_out = b.t.layer(layer).W.shape[1]
    sec.blocks.append(
        Para(
            (
                "The biases add 1 × their value, so their gradient is δ itself"
                + (", summed over the samples:" if b.B > 1 else ":"),
            )
        )
    )
    lhs = b.vector(lambda j: b.dE_db(layer, j), n_out)
    parts = [
        Dots() if s is None else b.vector(partial(b.dE_dz, layer, s=s), n_out)
        for s in shown(b.B, b.max_units + 2)
    ]
    sec.blocks.append(b.calculation(lhs, join(parts, PLUS)))
    _fold_last(b, sec, 2, "The gradient of the biases")
    b.erratum(sec, "db", layer, *((j,) for j in range(n_out)))


def _open_update(b: Builder, layer: int) -> Section:
    sec = Section(f"Update, layer {layer}", 3, "update", layer)
    if layer == 1:
        sec.blocks.append(
            Para(
                (
                    "Only now, with every gradient known, do the weights change.  Every "
                    "derivative of the backward pass used the weights before this update "
                    "(using updated weights there is a classic mistake).",
                )
            )
        )
    return sec


def _weight_update(b: Builder, sec: Section, layer: int) -> None:
    t = b.t
    lt = t.layer(layer)
    n_in, n_out = lt.W.shape
    first = len(sec.blocks)
    if layer > 1:
        sec.blocks.append(Para(("The same rule as for layer 1:",)))
    else:
        sec.blocks.append(
            Para(
                (
                    "The update: each weight takes a step of size lr against its gradient, ",
                    b.weight_matrix_name(layer, new=True),
                    " = ",
                    row(
                        b.weight_matrix_name(layer),
                        MINUS,
                        Sym("lr"),
                        TIMES,
                        Deriv(b.E_name, b.weight_matrix_name(layer)),
                    ),
                    ".  The third line shows the step itself, ",
                    row(
                        Step(Sym("W")),
                        EQ,
                        MINUS,
                        Sym("lr"),
                        TIMES,
                        Deriv(b.E_name, Sym("W")),
                    ),
                    ", to "
                    f"{b.digits} significant digits, so that even a change too small to show in "
                    "the weight is visible.",
                )
            )
        )
    for i in b.each_unit(sec, n_in, "rows"):
        for j in b.each_unit(sec, n_out, "columns"):
            step = b.step(layer, i, j)
            rule = row(b.weight(layer, i, j), MINUS, b.lr, TIMES, b.dE_dW(layer, i, j))
            calc = b.calculation(b.weight(layer, i, j, new=True), rule)
            calc.steps = (substitute(row(b.weight(layer, i, j), PLUS, step), b.fmt),)
            sec.blocks.append(calc)
            b.erratum(sec, "W_new", layer, (i, j))
            if t.round_to is not None and abs(step.of.value or 0.0) < 0.5 * 10.0**-t.round_to:
                sec.blocks.append(
                    Elided(
                        f"The step is below the rounding: this weight does not change at "
                        f"{t.round_to} decimals."
                    )
                )
    if layer > 1 and b.fold:
        # Layer 1 showed the rule at work; here the table below has every number.
        boxes = sec.blocks[first:]
        del sec.blocks[first:]
        n_boxes = sum(isinstance(x, Calculation) for x in boxes)
        summary = f"Weight by weight, as for layer 1 ({n_boxes} boxes)"
        sec.blocks.append(Collapsed(summary + _marked_inside(boxes), boxes))
    sec.blocks.append(Para(("In matrix form:",)))
    lhs = b.weights(layer, partial(b.weight, layer, new=True))
    rule = row(
        b.weights(layer, partial(b.weight, layer)),
        MINUS,
        b.lr,
        TIMES,
        b.weights(layer, partial(b.dE_dW, layer)),
    )
    sec.blocks.append(b.calculation(lhs, rule))
    _fold_last(b, sec, 2, "The same in matrix form")
    sec.blocks.append(_weight_table(b, layer))


def _weight_table(b: Builder, layer: int) -> Table:
    """Every weight of the layer at a glance: W, ∂E/∂W, ΔW = −lr·∂E/∂W, W′."""
    n_in, n_out = b.t.layer(layer).W.shape
    gw = b.weight_matrix_name(layer)
    header: tuple[str | Node, ...] = (
        "weight",
        gw,
        Deriv(b.E_name, gw),
        Step(gw),
        Sym(gw.base, gw.sub, prime=True),
    )
    rows: list[tuple[str | Node, ...]] = []
    for i in range(n_in):
        for j in range(n_out):
            w = b.weight(layer, i, j)
            rows.append(
                (
                    Sym(w.base, w.sub),
                    substitute(w, b.fmt),
                    substitute(b.dE_dW(layer, i, j), b.fmt),
                    substitute(b.step(layer, i, j), b.fmt),
                    substitute(b.weight(layer, i, j, new=True), b.fmt),
                )
            )
    return Table(f"The weights of layer {layer} at a glance", header, rows)


def _bias_update(b: Builder, sec: Section, layer: int) -> None:
    t = b.t
    n_out = t.layer(layer).W.shape[1]
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
        sec.blocks.append(b.calculation(lhs, rule))
        _fold_last(b, sec, 2, "The biases, updated the same way")
        b.erratum(sec, "b_new", layer, *((j,) for j in range(n_out)))
    else:
        sec.blocks.append(
            Para(("The biases are fixed in this step (update_bias = false), so they stay:",))
        )
        sec.blocks.append(b.values(b.vector(lambda j: b.bias(layer, j, new=True), n_out)))


# -- the summary ---------------------------------------------------------------------------


def _summary(b: Builder) -> Section:
    sec = Section("The weights before and after the step", 2, "summary")
    blocks: list[Block] = []
    for layer in range(1, b.L + 1):
        lt = b.t.layer(layer)
        W = b.weights(layer, partial(b.weight, layer))
        Wn = b.weights(layer, partial(b.weight, layer, new=True))
        blocks.append(b.values(W))
        blocks.append(b.values(Wn))
        if b.t.update_bias:
            bn = b.vector(partial(b.bias, layer, new=True), lt.b.shape[0])
            blocks.append(b.values(bn))
    if b.fold:
        sec.blocks.append(Para(("Each layer's table above lists its weights before and after.",)))
        sec.blocks.append(Collapsed("The weight matrices before and after, side by side", blocks))
    else:
        sec.blocks += blocks
    return sec


def _after(b: Builder, after: Trace) -> Section:
    """The payoff: the same input through the updated network, and the error before and
    after (the engine's next forward pass, ``trace.after``)."""
    sec = Section("After the step: the error before and after", 2, "after")
    sec.blocks.append(
        Para(
            (
                "The same input through the network with the updated weights W′ (and "
                "biases): the engine's forward pass of the next step.",
            )
        )
    )
    for layer in range(1, b.L + 1):
        lt = after.layer(layer)
        n = lt.z.shape[1]
        gz, ga = b.general_unit(layer, "in"), b.general_unit(layer, "out")
        header: list[str | Node] = ["sample", "unit"] if b.B > 1 else ["unit"]
        header += [gz, ga, "output before"]
        rows: list[tuple[str | Node, ...]] = []
        for s in range(b.B) if b.B <= b.max_units + 2 else b.samples:
            for j in range(n):
                lead: list[str | Node] = [str(s + 1), str(j + 1)] if b.B > 1 else [str(j + 1)]
                cells = [float(lt.z[s, j]), float(lt.a[s, j]), float(b.t.layer(layer).a[s, j])]
                rows.append((*lead, *(Num(v, b.fmt(v)) for v in cells)))
        table = Table(f"Layer {layer} with the new weights", tuple(header), rows)
        if layer < b.L and b.fold:
            sec.blocks.append(Collapsed(f"Layer {layer} with the new weights", [table]))
        else:
            sec.blocks.append(table)
    before, now = float(b.t.loss), float(after.loss)
    change = b.t.loss_change
    assert change is not None  # the section exists only with an after pass
    e_old, e_new = Sym("E", value=before), Sym("E", prime=True, value=now)
    sec.blocks.append(
        Para((("The step lowered the error." if now < before else "The error did not fall."),))
    )
    errors: list[tuple[str | Node, ...]] = [
        ("before the step", Sym("E"), substitute(e_old, b.fmt)),
        ("after the step", Sym("E", prime=True), substitute(e_new, b.fmt)),
        (
            "the change",
            row(Sym("E", prime=True), MINUS, Sym("E")),
            Num(change, b.step_fmt(change)),
        ),
    ]
    sec.blocks.append(Table("The error before and after", ("", "", "value"), errors))
    # What a tutorial printed for the values after the update, where it differs.
    for kind, layer, index in sorted(k for k in b.errata if k[0].endswith("@after")):
        b.erratum(sec, kind, layer, index)
    return sec


#: Opens the section of each place (its title and any words before its quantities).
OPENERS: dict[str, Callable[[Builder, int], Section]] = {
    "network": _open_network,
    "forward": _open_forward,
    "error": _open_error,
    "dloss": _open_dloss,
    "backward": _open_backward,
    "update": _open_update,
}

#: Writes each kind of quantity of the step graph into its section.
WRITERS: dict[str, Callable[[Builder, Section, int], None]] = {
    "x": _input,
    "y": _target,
    "W": _weights,
    "b": _biases,
    "z": _inputs,
    "a": _outputs,
    "loss_terms": _loss_terms,
    "loss": _loss,
    "dL_da": _output_grads,
    "da_dz": _activation_grads,
    "delta": _deltas,
    "dW": _weight_grads,
    "db": _bias_grads,
    "W_new": _weight_update,
    "b_new": _bias_update,
}
