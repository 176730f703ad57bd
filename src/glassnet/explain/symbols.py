"""Symbols that carry the trace's values, and how their numbers are printed.

:class:`Builder` makes each symbol of the seed's notation (h1_in1, W_i1j1, ∂E/∂O_out2,
...) with the value the engine recorded for it, so "the numbers put in" is the rule with
each symbol replaced by its value (:func:`glassnet.mathtree.substitute`): nothing is
recomputed here.  :func:`number_format` prints those values; :func:`check_size` refuses
networks no one would read.

Batches: with B > 1 samples the per-unit lines are written for the first
``max_samples`` samples (symbols carry the sample's number in brackets); matrix forms have
one row per sample (one column in column notation).

Notation: ``"rows"`` (the seed's) writes a layer as a row vector times W[from][to],
x·W + b; ``"columns"`` (Nielsen's, Goodfellow's) as W[to][from] times a column vector,
W·a + b — the spec's ``layout = "to_from"``.  Only how matrices are laid out and how a
weight is named change; every number is the same.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from decimal import Decimal

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.explain.document import (
    Calculation,
    Elided,
    Equation,
    Erratum,
    ErratumKey,
    Para,
    Section,
)
from glassnet.limits import (
    MAX_DIGITS,
    MAX_EXPLAIN_BATCH,
    MAX_EXPLAIN_LAYERS,
    MAX_EXPLAIN_PARAMETERS,
)
from glassnet.losses import get_loss
from glassnet.mathtree import (
    Const,
    Deriv,
    Dots,
    Matrix,
    Node,
    Step,
    Sym,
    substitute,
)
from glassnet.notation import letter, unit_name
from glassnet.optim import sgd_update
from glassnet.trace import Trace

# The sizes it refuses (limits.MAX_EXPLAIN_*): networks no one would read, and whose
# notebook, which carries every weight, would be huge.

# -- numbers -----------------------------------------------------------------------------


def number_format(digits: int, round_to: int | None) -> Callable[[float], str]:
    """How numbers are printed: ``digits`` significant digits, or, in hand mode
    (``round_to=K``), exactly the K-decimal values the engine used.  Trailing zeros are
    kept: they are the precision (0.2500 is not 0.25 at four digits, it is 0.24996...)."""

    def fmt(v: float) -> str:
        v = float(v)
        if round_to is not None and float(np.round(v, round_to)) != v:
            # A value hand mode did not round (the target is taken as written): shown
            # in full, so the arithmetic on the page holds with the number printed.
            s = repr(v)
        elif round_to is not None:
            s = f"{v:.{round_to}f}"
        else:
            s = f"{v:#.{digits}g}".rstrip(".")
            if "e" in s:
                mant, _, exp = s.partition("e")
                s = f"{mant.rstrip('.')}e{int(exp)}"
        return s[1:] if s.startswith("-") and float(s) == 0 else s

    return fmt


def step_format(digits: int, round_to: int | None, lr: float) -> Callable[[float], str]:
    """How a step −lr·g is printed so that it is visible even when it is below the
    rounding: ``digits`` significant digits; in hand mode, exactly (lr·g of a K-decimal g
    has at most K + lr's decimals)."""
    if round_to is None:
        return number_format(digits, None)
    lr_decimals = max(0, -Decimal(repr(float(lr))).as_tuple().exponent)  # type: ignore[operator]
    places = round_to + lr_decimals

    def fmt(v: float) -> str:
        s = f"{float(v):.{places}f}"
        s = s.rstrip("0").rstrip(".") if "." in s else s
        return "0" if s in ("-0", "") else s

    return fmt


#: How the page writes a layer: ``x·W + b`` (rows) or ``W·a + b`` (columns).
NOTATIONS: tuple[str, ...] = ("rows", "columns")


def check_notation(notation: object) -> str:
    if notation not in NOTATIONS:
        raise GlassnetError(
            f"expected a notation among {', '.join(NOTATIONS)}",
            got=repr(notation),
            field="notation",
        )
    return str(notation)


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
    n_params = sum(lt.value(p).size for lt in trace.layers for p in lt.layer.params)
    if len(trace.layers) > MAX_EXPLAIN_LAYERS:
        raise GlassnetError(
            f"expected at most {MAX_EXPLAIN_LAYERS} layers for a written derivation",
            got=f"{len(trace.layers)} layers",
            field="layers",
        )
    if n_params > MAX_EXPLAIN_PARAMETERS:
        raise GlassnetError(
            f"expected at most {MAX_EXPLAIN_PARAMETERS} parameters for a written derivation "
            "(use 'glassnet step' for big networks)",
            got=f"{n_params} parameters",
            field="layers",
        )
    if trace.x.shape[0] > MAX_EXPLAIN_BATCH:
        raise GlassnetError(
            f"expected at most {MAX_EXPLAIN_BATCH} samples for a written derivation",
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


class Builder:
    """Builds symbols that carry the trace's values, then the sections."""

    def __init__(
        self,
        trace: Trace,
        *,
        fmt: Callable[[float], str],
        digits: int,
        max_units: int,
        max_samples: int,
        errata: dict[ErratumKey, Erratum] | None = None,
        notation: str = "rows",
    ) -> None:
        self.t = trace
        #: Column vectors and W[to][from] (W·a + b) instead of rows and W[from][to].
        self.columns = check_notation(notation) == "columns"
        #: What a worked solution wrote instead, beside the values it got wrong.
        self.errata = errata or {}
        self.loss = get_loss(trace.loss_name)
        self.digits = digits
        self.L = len(trace.layers)
        self.B = int(trace.x.shape[0])
        self.fmt = fmt
        self.step_fmt = step_format(digits, trace.round_to, trace.lr)
        #: Fold repeated and matrix-form calculations into <details> (see sections).
        self.fold = True
        #: Whether the page's picture shows every weight in its grids (small networks).
        self.picture_grids = False
        #: The rules whose "why" the page has already shown (once per rule).
        self.explained: set[str] = set()
        self.max_units = max_units
        self.samples = list(range(min(self.B, max_samples)))

    # -- symbols -----------------------------------------------------------------------
    def sample_mark(self, s: int) -> int | None:
        """The number a symbol of sample s carries in brackets (1-based); None for a
        batch of one, where no mark is needed."""
        return s + 1 if self.B > 1 else None

    def unit(self, layer: int, kind: str, u: int, s: int = 0, *, valued: bool = True) -> Sym:
        """Input I_u (layer 0), h{l}_in/out u, or O_in/out u, of sample s."""
        if layer == 0:
            value = float(self.t.x[s, u]) if valued else None
            return Sym("I", ((str(u + 1), "num"),), self.sample_mark(s), value=value)
        base, _, side = unit_name(self.L, layer, kind).partition("_")
        lt = self.t.layer(layer)
        value = float((lt.z if kind == "in" else lt.a)[s, u]) if valued else None
        return Sym(base, ((side, "txt"), (str(u + 1), "num")), self.sample_mark(s), value=value)

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
        """The weight from unit i of layer−1 to unit j of layer: W_{i1 j2} in rows
        notation, W_{j2 i1} (to, from) in columns notation."""
        lt = self.t.layer(layer)
        src = ((letter(layer - 1), "id"), (str(i + 1), "num"))
        dst = ((letter(layer), "id"), (str(j + 1), "num"))
        sub = (*dst, *src) if self.columns else (*src, *dst)
        return Sym("W", sub, prime=new, value=float((lt.W_new if new else lt.W)[i, j]))

    def weight_matrix_name(self, layer: int, *, new: bool = False) -> Sym:
        """W_ij (rows: from i to j) or W_ji (columns: to j from i)."""
        pair = letter(layer - 1) + letter(layer)
        return Sym("W", ((pair[::-1] if self.columns else pair, "id"),), prime=new)

    def bias(self, layer: int, j: int, *, new: bool = False) -> Sym:
        lt = self.t.layer(layer)
        value = float((lt.b_new if new else lt.b)[j])
        return Sym("b", ((letter(layer), "id"), (str(j + 1), "num")), prime=new, value=value)

    def target(self, u: int, s: int = 0) -> Sym:
        return Sym("y", ((str(u + 1), "num"),), self.sample_mark(s), value=float(self.t.y[s, u]))

    def term(self, u: int, s: int = 0) -> Sym:
        return Sym(
            "E", ((str(u + 1), "num"),), self.sample_mark(s), value=float(self.t.loss_terms[s, u])
        )

    @property
    def E(self) -> Sym:
        return Sym("E", value=float(self.t.loss))

    @property
    def E_name(self) -> Sym:
        return Sym("E")

    @property
    def lr(self) -> Sym:
        lr = float(self.t.lr)
        written = f"{lr:g}" if float(f"{lr:g}") == lr else repr(lr)  # a setting, exact
        return Sym("lr", value=lr, text=written)

    @property
    def batch(self) -> Sym:
        return Sym("B", value=float(self.B), text=str(self.B))

    @property
    def m(self) -> Sym:
        n = int(self.t.output.shape[1])
        return Sym("m", value=float(n), text=str(n))

    def dE_da(self, layer: int, u: int, s: int = 0) -> Deriv:
        v = float(self.t.layer(layer).dL_da[s, u])
        return Deriv(self.E_name, self.unit(layer, "out", u, s, valued=False), value=v)

    def delta_base(self, layer: int) -> str:
        """δh1, δh2, δO: δ and the layer's name (h1_in1's δ is δh1 with subscript 1)."""
        return "δ" + unit_name(self.L, layer, "in").split("_")[0]

    def dE_dz(self, layer: int, u: int, s: int = 0) -> Sym:
        """δ of unit u, ∂E/∂(its input) — written as the symbol δ (defined once, where
        the backward pass first needs it)."""
        v = float(self.t.layer(layer).delta[s, u])
        return Sym(self.delta_base(layer), ((str(u + 1), "num"),), self.sample_mark(s), value=v)

    def general_delta(self, layer: int) -> Sym:
        """δh1_j — the δ of a layer's unit with its index letter."""
        return Sym(self.delta_base(layer), ((letter(layer), "id"),))

    def da_dz(self, layer: int, i: int, j: int, s: int = 0) -> Deriv:
        lt = self.t.layer(layer)
        v = float(lt.da_dz[s, i, j] if lt.jacobian else lt.da_dz[s, i])
        top = self.unit(layer, "out", i, s, valued=False)
        return Deriv(top, self.unit(layer, "in", j, s, valued=False), value=v)

    def dE_dW(self, layer: int, i: int, j: int) -> Deriv:
        w = self.weight(layer, i, j)
        return Deriv(self.E_name, Sym(w.base, w.sub), value=float(self.t.layer(layer).dW[i, j]))

    def step(self, layer: int, i: int, j: int) -> Step:
        """ΔW_ij = −lr·∂E/∂W_ij (the optimiser's own rule), printed at ``digits``
        significant digits even in hand mode so that a change below the rounding shows."""
        g = self.t.layer(layer).dW[i, j]
        value = float(sgd_update(np.zeros(()), np.asarray(g), float(self.t.lr)))
        w = self.weight(layer, i, j)
        return Step(Sym(w.base, w.sub, value=value, text=self.step_fmt(value)))

    def dE_db(self, layer: int, j: int) -> Deriv:
        b = self.bias(layer, j)
        return Deriv(self.E_name, Sym(b.base, b.sub), value=float(self.t.layer(layer).db[j]))

    # -- helpers -----------------------------------------------------------------------
    def erratum(self, sec: Section, kind: str, layer: int, *indices: tuple[int, ...]) -> None:
        """After the value just written: what the worked solution wrote for it instead
        (its errata hold only a batch of one)."""
        if self.B != 1:
            return
        for index in indices:
            e = self.errata.get((kind, layer, index))
            if e is not None:
                sec.blocks.append(e)

    def calculation(self, lhs: Node, rule: Node) -> Calculation:
        return Calculation(lhs, rule, substitute(rule, self.fmt), substitute(lhs, self.fmt))

    def values(self, lhs: Node) -> Equation:
        return Equation((lhs, substitute(lhs, self.fmt)))

    def vector(self, cells: Callable[[int], Node], n: int) -> Matrix:
        """A layer's vector of n cells (a bias, its gradient): a row, or a column in
        column notation; elided past max_units + 2."""
        if self.columns:
            return self.matrix(lambda i, _: cells(i), n, 1)
        return self.row_vector(cells, n)

    def row_vector(self, cells: Callable[[int], Node], n: int) -> Matrix:
        """A row of n cells in either notation (a row of a Jacobian)."""
        return Matrix((tuple(Dots() if k is None else cells(k) for k in self._cols(n)),))

    def weights(self, layer: int, cell: Callable[[int, int], Node]) -> Matrix:
        """A layer's weight-shaped matrix, cell(i, j) for the weight from i to j:
        W[from][to] (n_in × n_out), or W[to][from] (n_out × n_in) in column notation."""
        n_in, n_out = self.t.layer(layer).W.shape
        if self.columns:
            return self.matrix(lambda j, i: cell(i, j), n_out, n_in)
        return self.matrix(cell, n_in, n_out)

    def weights_transposed(self, layer: int, cell: Callable[[int, int], Node]) -> Matrix:
        """The transpose of :meth:`weights` (the backward pass's Wᵀ)."""
        n_in, n_out = self.t.layer(layer).W.shape
        if self.columns:
            return self.matrix(cell, n_in, n_out)
        return self.matrix(lambda j, i: cell(i, j), n_out, n_in)

    def batch_matrix_transposed(self, cells: Callable[[int, int], Node], n: int) -> Matrix:
        """The transpose of :meth:`batch_matrix` (a layer's inputs, as they multiply
        into its weight gradient)."""
        if self.columns:
            return self.matrix(cells, self.B, n)
        return self.matrix(lambda i, s: cells(s, i), n, self.B)

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

    def batch_matrix(self, cells: Callable[[int, int], Node], n: int) -> Matrix:
        """cells(s, u) for every sample s and unit u of n: one row per sample (B × n),
        or one column per sample (n × B) in column notation; elided past 6."""
        if self.columns:
            return self.matrix(lambda u, s: cells(s, u), n, self.B)
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
            return Para(
                ("Written out for each of the B samples; [s] after a name marks sample s.",)
            )
        return Para(
            (
                f"Written out for the first {len(self.samples)} of the B = {self.B} samples "
                "([s] after a name marks sample s); the matrix form has every sample.",
            )
        )


ONE = Const("1")
