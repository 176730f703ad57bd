"""Worksheets: a spec plus a ``[values]`` table of the numbers a person computed.

A worksheet is a spec file (see docs/spec.md) with one more table::

    [values]
    z1 = [1.35, 1.27, 1.8]          # our names ...
    O_out = [0.2698, 0.3223, 0.4078]  # ... or the seed's (glassnet.notation.seed_aliases)
    loss = 0.985
    dW3 = [[-0.5531, -0.0576, -0.5836], [...], [...]]
    "W_ij@layer1_example" = [[...]]   # name@tag: the same quantity written a second time

or, instead of the network, ``spec = "seed"`` (or a path relative to the worksheet) naming
the spec the values belong to.  Values are written without the batch axis when the batch
is one sample.  Every number keeps the digits it was written with: the marking tolerance
is half a unit in its last written decimal place.  A number written as an integer (``0``)
is exact: its tolerance is the sheet's usual written precision (the most common number of
decimals among its other numbers), never ±0.5.

No sheet is refused for one bad value: an unknown name is a warning naming the closest
known name, a value that cannot be read (text, ragged rows, ``1/2``, a decimal comma) is
listed as unreadable, a matrix of the wrong shape is kept and marked wrong
(:attr:`Given.misshaped`), and the rest is marked.  ``output`` and the last layer's ``a``
(and every alias, e.g. the seed's ``O_out``) are one quantity; writing both with different
numbers is a warning.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.check.exercise import Known, exercise_from_sheet, verify_header
from glassnet.check.quantities import (
    LAYER_KINDS,
    STEP_KINDS,
    Key,
    expected_shape,
    key_name,
    layer_kinds,
    spec_graph,
)
from glassnet.errors import GlassnetError
from glassnet.limits import check_nesting
from glassnet.notation import seed_aliases, split_name
from glassnet.spec import EXAMPLES, Spec, example_path, load_spec, parse_spec, read_text

Array = np.ndarray
#: Top-level fields a worksheet may hold beside a spec's: who wrote it, for what.
SHEET_KEYS: set[str] = {"student", "assignment", "exercise", "checksum"}
#: Beside ``spec = ...``: how the sheet writes its weight matrices.
REF_KEYS: set[str] = {"layout", "bias"}
#: Names of the bundled worksheets (``glassnet check seed``).
WORKSHEETS: dict[str, str] = {"seed": "seed_worksheet"}


class Written(float):
    """A float that remembers the text it was written as (for its last decimal place)."""

    text: str

    def __new__(cls, text: str) -> Written:
        obj = super().__new__(cls, float(text))
        obj.text = text
        return obj


#: Marks a number written as an integer: its half unit is the sheet's precision, set once
#: the whole sheet is read (see :func:`sheet_half`).
INTEGER = -1.0


def decimals_of(v: Any) -> int | None:
    """Decimals a number was written with (``0.2698`` -> 4, ``1.5e-3`` -> 4), None for an
    integer or a float without its text."""
    text = getattr(v, "text", None)
    if text is None:
        return None
    try:
        exponent = Decimal(text.replace("_", "")).as_tuple().exponent
    except InvalidOperation:  # pragma: no cover - tomllib only hands over valid floats
        return None
    return -int(exponent) if isinstance(exponent, int) else None


def _half_at(exponent: int) -> float:
    """0.5·10^exponent; inf past float's range (1e5000 written: refused elsewhere as not
    finite, never an OverflowError here)."""
    try:
        return 0.5 * 10.0**exponent
    except OverflowError:
        return math.inf


def half_unit(v: Any) -> float:
    """Half a unit in the last written decimal place: 0.2698 -> 0.00005, 1.5e-3 ->
    0.00005.  An integer (``4``) is exact: :data:`INTEGER`, replaced by the sheet's
    precision.  A float without its text (from Python) counts as exact."""
    text = getattr(v, "text", None)
    if text is None:
        return INTEGER if isinstance(v, int) and not isinstance(v, bool) else 0.0
    try:
        exponent = Decimal(text.replace("_", "")).as_tuple().exponent
    except InvalidOperation:  # pragma: no cover - tomllib only hands over valid floats
        return 0.0
    return _half_at(int(exponent)) if isinstance(exponent, int) else 0.0


@dataclass
class Given:
    """One value a person wrote.  ``value`` and ``half`` have the quantity's full shape
    (with the batch axis); ``diagonal`` marks a vector written for a full Jacobian."""

    written_name: str
    key: Key
    tag: str
    value: Array
    half: Array
    diagonal: bool = False
    #: Written with a shape the quantity does not have: ``value`` keeps the written
    #: shape; it is marked wrong and never used by later steps.
    misshaped: bool = False
    #: The shape the quantity has (batch axis left out for one sample), when misshaped.
    want: tuple[int, ...] = ()
    #: Each number as written (``"0.8000"``), the shape of ``value``.
    texts: Array | None = None
    #: "" for the (first) step, "step2", "step3", ... or "after" (see :func:`split_tags`).
    phase: str = ""
    #: How the sheet wrote it, when not as the engine holds it: a W[to][from] matrix
    #: (``layout_T``); the W part of a matrix with the bias as row 0 (``row_shift``); the
    #: bias row itself of such a matrix (``bias_part``, then ``shown_name`` is the
    #: matrix's name).  Values are stored as the engine holds them.
    layout_T: bool = False
    row_shift: int = 0
    bias_part: bool = False
    shown_name: str = ""
    #: A misshaped weight-like matrix (W, dW, W_new) of a sheet whose layout says the
    #: bias is its row 0 (``want`` then counts that row; ``layout_T``: W[to][from]).
    row0: bool = False

    def written_index(self, idx: tuple[int, ...]) -> tuple[int, ...]:
        """The place of (engine-layout, batch-free) ``idx`` in the matrix as written."""
        if self.bias_part:
            idx = (0, *idx)
        elif self.row_shift and len(idx) == 2:
            idx = (idx[0] + self.row_shift, idx[1])
        if self.layout_T and len(idx) == 2:
            idx = (idx[1], idx[0])
        return idx

    def text(self, idx: tuple[int, ...]) -> str:
        """The number at ``idx`` as written."""
        if self.texts is None:
            return repr(float(self.value[idx]))
        return str(self.texts[idx])

    @property
    def name(self) -> str:
        return key_name(self.key)


@dataclass
class Note:
    """Something on the sheet that is not marked as it stands.  ``kind``: "unreadable"
    (the value is not marked) or "warning" (marked, but look at it)."""

    kind: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@dataclass
class Worksheet:
    """A spec and the person's values, in the order written."""

    spec: Spec
    label: str
    givens: list[Given] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    #: Who wrote it and for which assignment (``student = "..."``, ``assignment = "..."``).
    student: str = ""
    assignment: str = ""
    #: How the sheet writes weight matrices (see :data:`glassnet.spec.LAYOUTS`).
    layout: str = "from_to"
    bias_row0: bool = False

    @property
    def is_seed(self) -> bool:
        """The bundled seed worksheet (its wrong numbers are the tutorial's errata)."""
        return self.label in WORKSHEETS

    @property
    def n_layers(self) -> int:
        return len(self.spec.network.layers)

    @property
    def seed_layers(self) -> int:
        """The layers to name with the seed's names (h1_in, O_out, ...): a dense
        network's; 0 for a network of feature maps, which the seed's names do not fit."""
        return self.n_layers if self.spec.x.ndim <= 2 else 0

    def phases(self) -> list[str]:
        """The phases written, in the order they happen ("" first, "after" last)."""
        found = {g.phase for g in self.givens}
        steps = sorted((p for p in found if p.startswith("step")), key=lambda p: int(p[4:]))
        return (
            [p for p in ("",) if p in found or not found]
            + steps
            + (["after"] if "after" in found else [])
        )

    def own(self, phase: str = "") -> dict[Key, Given]:
        """The person's value of each quantity (of one phase): the untagged one, else the
        first written (a misshaped value is never the person's value)."""
        out: dict[Key, Given] = {}
        for g in self.givens:
            if g.misshaped or g.phase != phase:
                continue
            if g.key not in out or (out[g.key].tag and not g.tag):
                out[g.key] = g
        return out

    def unreadable(self) -> list[Note]:
        return [n for n in self.notes if n.kind == "unreadable"]

    def warnings(self) -> list[Note]:
        return [n for n in self.notes if n.kind == "warning"]


def known_names(n_layers: int, kinds: Sequence[Sequence[str]] | None = None) -> list[str]:
    """Every name a worksheet of an ``n_layers`` network may use (ours, then the seed's).
    ``kinds``: each layer's kinds (the step graph's, :func:`layer_kinds`); a dense
    network under plain gradient descent when None."""
    ours = ["x", "y", "loss_terms", "loss", "output"]
    for lyr in range(1, n_layers + 1):
        own = LAYER_KINDS if kinds is None else kinds[lyr - 1]
        ours += [key_name((kind, lyr)) for kind in own]
    return ours + list(seed_aliases(n_layers))


def closest_name(
    name: str, n_layers: int, kinds: Sequence[Sequence[str]] | None = None
) -> str | None:
    """The known name nearest to a misspelt one (``"dw2"`` -> ``"dW2"``), or None."""
    base = name.partition("@")[0]
    names = known_names(n_layers, kinds)
    lower = {n.lower(): n for n in names}
    if base.lower() in lower:
        return lower[base.lower()]
    found = difflib.get_close_matches(base, names, n=1, cutoff=0.6)
    return found[0] if found else None


#: A tag naming a later step (``z1@step2``) or the forward pass after the update
#: (``loss@after``), not a second copy.
_PHASE = re.compile(r"^(step[1-9][0-9]*|after)$")
#: What exists "after" the update: its forward pass and its loss (and its weights).
AFTER_KINDS: frozenset[str] = frozenset({"z", "a", "loss_terms", "loss", "W", "b", "x", "y"})


def split_tags(name: str) -> tuple[str, str, str]:
    """``"z1@step2"`` -> ("z1", "", "step2"); ``"W_ij@copy"`` -> ("W_ij", "copy", "");
    ``"z1@step1"`` is z1 itself (phase "")."""
    base, *tags = name.split("@")
    phases = [t for t in tags if _PHASE.match(t)]
    rest = [t for t in tags if not _PHASE.match(t)]
    phase = phases[0] if phases else ""
    return base, "@".join(rest), "" if phase == "step1" else phase


def resolve_name(
    name: str, n_layers: int, label: str, kinds: Sequence[Sequence[str]] | None = None
) -> tuple[Key, str]:
    """``"h2_out@copy"`` -> (("a", 2), "copy"); ``"output"`` -> (("a", L), "") — the
    network's output *is* the last layer's a.  Unknown names are a GlassnetError naming
    the closest known name.  (A phase tag, ``@step2``/``@after``: see :func:`split_tags`.)"""
    base, tag, _phase = split_tags(name)
    ours = seed_aliases(n_layers).get(base, base)
    if ours == "output":
        return ("a", n_layers), tag
    if ours in STEP_KINDS:
        return (ours, 0), tag
    kind, layer = split_name(ours)
    if layer is not None and 1 <= layer <= n_layers:
        if kind in (LAYER_KINDS if kinds is None else kinds[layer - 1]):
            return (kind, layer), tag
    near = closest_name(name, n_layers, kinds)
    raise GlassnetError(
        f"expected a quantity of this {n_layers}-layer network"
        + (f" (did you mean {near!r}?)" if near else "")
        + ": our names (z1, a1, da1_dz1, dL_da1, delta1, dW1, db1, W1_new, b1_new, ..., "
        "loss, loss_terms, output) or the seed's (h1_in, O_out, dE_dO_out, dW_kl, ...)",
        got=f"unknown name {name!r}",
        file=label,
        field=f"values.{name}",
    )


def _batch_free(shape: tuple[int, ...], batched: bool, batch: int) -> tuple[int, ...]:
    return shape[1:] if batched and batch == 1 else shape


def _cell(at: tuple[int, ...]) -> str:
    """Where in a nested list a problem is, as written: " at [0][1][2]" ("" for the top)."""
    return " at " + "".join(f"[{i}]" for i in at) if at else ""


def _numbers(
    v: Any, where: str, label: str, at: tuple[int, ...] = ()
) -> tuple[Array, Array, Array]:
    """Nested lists of numbers -> (values, half units, texts); text or tables are errors,
    naming the cell (``at``: the place within the value, as written)."""
    if isinstance(v, bool) or isinstance(v, str | dict) or v is None:
        kind = "text" if isinstance(v, str) else type(v).__name__
        hint = _text_hint(v) if isinstance(v, str) else ""
        raise GlassnetError(
            "expected a number or a list of numbers" + hint,
            got=f"{kind} {v!r}{_cell(at)}",
            file=label,
            field=where,
        )
    if isinstance(v, list):
        if not v:
            raise GlassnetError(
                "expected numbers", got=f"an empty list{_cell(at)}", file=label, field=where
            )
        parts = [_numbers(e, where, label, (*at, i)) for i, e in enumerate(v)]
        shapes = [p[0].shape for p in parts]
        if len(set(shapes)) != 1:
            odd = next(i for i, sh in enumerate(shapes) if sh != shapes[0])
            raise GlassnetError(
                "expected rows of equal length",
                got=f"rows of shapes {sorted(set(shapes))} (the first unlike the others"
                f"{_cell((*at, odd))}, shape {shapes[odd]} for {shapes[0]})",
                file=label,
                field=where,
            )
        return (
            np.stack([p[0] for p in parts]),
            np.stack([p[1] for p in parts]),
            np.stack([p[2] for p in parts]),
        )
    if not isinstance(v, int | float):
        raise GlassnetError("expected a number", got=f"{v!r}{_cell(at)}", file=label, field=where)
    if not math.isfinite(float(v)):
        raise GlassnetError(
            "expected a finite number", got=f"{v!r}{_cell(at)}", file=label, field=where
        )
    text = getattr(v, "text", None) or (str(v) if isinstance(v, int) else repr(float(v)))
    return np.asarray(float(v)), np.asarray(half_unit(v)), np.asarray(text, dtype=object)


_FRACTION = re.compile(r"(?<![\w.])\d+(\.\d+)?\s*/\s*\d+(\.\d+)?")
_DECIMAL_COMMA = re.compile(r"(?<![\w.])\d+,\d+")


def _text_hint(text: str) -> str:
    """Why a number written as text or a line TOML could not read is not a number."""
    if _FRACTION.search(text):
        return " (a fraction such as 1/2 is not read: write it as a decimal, 0.5)"
    if _DECIMAL_COMMA.search(text):
        return " (a decimal comma such as 0,5 is not read: write a decimal point, 0.5)"
    return ""


#: Weight-like kinds, written in the sheet's layout, and their bias twins.
BIAS_OF: dict[str, str] = {"W": "b", "dW": "db", "W_new": "b_new"}


def _phase_problem(spec: Spec, key: Key, phase: str) -> str | None:
    """Why a value of ``phase`` cannot be marked against this spec, or None."""
    if phase.startswith("step") and int(phase[4:]) > spec.steps:
        return (
            f"expected a step of this spec: it runs {spec.steps} step"
            f"{'s' if spec.steps != 1 else ''} (write steps = {phase[4:]} in the spec)"
        )
    if phase == "after":
        if not spec.after:
            return "expected after = true in the spec for values after the update"
        if key[0] not in AFTER_KINDS:
            return (
                f"expected a quantity of the forward pass after the update (z, a, output, "
                f"loss_terms, loss), got {key_name(key)}"
            )
    return None


def _givens(
    spec: Spec, written: str, raw: Any, label: str, layout: str, bias_row0: bool
) -> list[Given]:
    """The values of one written entry: one, or two for a weight matrix with its bias as
    row 0 (the weights and the bias)."""
    n_layers = len(spec.network.layers)
    key, tag = resolve_name(written, n_layers, label, layer_kinds(spec_graph(spec)))
    phase = split_tags(written)[2]
    problem = _phase_problem(spec, key, phase)
    if problem is not None:
        raise GlassnetError(problem, file=label, field=f"values.{written}")
    transposed = layout == "to_from" and key[0] in BIAS_OF
    folded = bias_row0 and key[0] in BIAS_OF
    if not (transposed or folded):
        g = _given(spec, written, raw, label)
        g.phase = phase
        return [g]
    value, half, texts = _numbers(raw, f"values.{written}", label)
    if value.ndim != 2:
        g = _given(spec, written, raw, label)
        g.phase = phase
        return [g]
    from glassnet.spec import weights_from_layout

    want = expected_shape(spec, key)
    parts = [weights_from_layout(a, layout, bias_row0) for a in (value, half, texts)]
    if folded and parts[0][0].shape != want:
        # Written without its bias row (e.g. dW alone): the weights only.
        folded = False
        parts = [weights_from_layout(a, layout, False) for a in (value, half, texts)]
    W, Wh, Wt = (p[0] for p in parts)
    if W.shape != want:
        # Not this matrix in the sheet's layout: marked wrong as written, never read
        # in another layout instead (a to_from sheet's dW written W[from][to] is the
        # other layout's habit, not a right answer) — see _Marker.misshaped.
        rows = want[0] + int(bias_row0)
        as_written = (want[1], rows) if transposed else (rows, want[1])
        return [
            Given(
                written,
                key,
                tag,
                value,
                half,
                misshaped=True,
                want=as_written,
                texts=texts,
                phase=phase,
                layout_T=transposed,
                row0=bias_row0,
            )
        ]
    out = [
        Given(
            written,
            key,
            tag,
            W,
            Wh,
            texts=Wt,
            phase=phase,
            layout_T=transposed,
            row_shift=int(folded),
        )
    ]
    if folded:
        b, bh, bt = (p[1] for p in parts)
        bkey = (BIAS_OF[key[0]], key[1])
        assert b is not None and bh is not None and bt is not None
        out.append(
            Given(
                written,
                bkey,
                tag,
                b,
                bh,
                texts=bt,
                phase=phase,
                layout_T=transposed,
                bias_part=True,
                shown_name=written.split("@")[0],
            )
        )
    return out


def _given(spec: Spec, written: str, raw: Any, label: str, line: str = "") -> Given:
    """One written value.  A wrong shape is kept (``misshaped``), not refused."""
    graph = spec_graph(spec)
    key, tag = resolve_name(written, len(spec.network.layers), label, layer_kinds(graph))
    where = f"values.{written}"
    value, half, texts = _numbers(raw, where, label)
    full = expected_shape(spec, key)
    batched = graph.batched(key)
    batch = spec.x.shape[0]
    diagonal = False
    candidates = [full, _batch_free(full, batched, batch)]
    if len(full) == 3:  # a Jacobian may be written as its diagonal
        candidates += [full[:2], _batch_free(full[:2], True, batch)]
    if value.shape not in candidates:
        want = _batch_free(full, batched, batch)
        return Given(written, key, tag, value, half, misshaped=True, want=want, texts=texts)
    if len(full) == 3 and value.shape in (full[:2], _batch_free(full[:2], True, batch)):
        diagonal = True
        full = full[:2]
    _check_indices(spec, key, value, where, label)
    value = value.reshape(full)
    half = half.reshape(full)
    return Given(written, key, tag, value, half, diagonal, texts=texts.reshape(full))


def _check_indices(spec: Spec, key: Key, value: Array, where: str, label: str) -> None:
    """A quantity of whole indices (max pooling's arg-max) must be written as whole
    numbers in its range — its layer says the range — or it cannot be used at all."""
    kind, layer = key
    if not 1 <= layer <= len(spec.network.layers):
        return
    bound = spec.network.layers[layer - 1].index_range(kind)
    if bound is None:
        return
    bad = (value != np.rint(value)) | (value < 0) | (value >= bound)
    if bad.any():
        at = tuple(int(i) for i in np.argwhere(bad)[0])  # as written
        v = float(value[at])
        raise GlassnetError(
            f"expected whole numbers from 0 to {bound - 1} (flat indices into the input map)",
            got=f"{v:g}{_cell(at)}",
            file=label,
            field=where,
        )


def misshape_message(g: Given) -> str:
    """What a misshaped value's note says."""
    extra = " (or its diagonal)" if g.key[0] == "da_dz" and len(g.want) >= 1 else ""
    if g.layout_T or g.row0:
        extra = (
            " (as the sheet writes it: "
            + ", ".join(
                w for w, on in (("W[to][from]", g.layout_T), ("the bias as row 0", g.row0)) if on
            )
            + ")"
        )
    return f"expected shape {g.want}{extra} for {key_name(g.key)}, got shape {g.value.shape}"


def sheet_half(values: dict[str, Any]) -> float:
    """Half a unit at the sheet's usual precision: the most common number of decimals
    among its written non-integer numbers (the coarser on a tie); 0 (exact) if it has
    none.  This is the tolerance of a number written as an integer."""
    counts: Counter[int] = Counter()

    def walk(v: Any) -> None:
        if isinstance(v, list):
            for e in v:
                walk(e)
        elif (d := decimals_of(v)) is not None and math.isfinite(float(v)):
            counts[d] += 1

    walk(list(values.values()))
    if not counts:
        return 0.0
    top = max(counts.values())
    d = min(k for k, c in counts.items() if c == top)
    return _half_at(-d)


def _statement_lines(lines: list[str], at: int) -> range:
    """The lines of the ``key = value`` statement around line index ``at`` (a value may
    span lines)."""
    start = at
    while start > 0 and not _STATEMENT.match(lines[start]):
        start -= 1
    end = at + 1
    while end < len(lines) and not (_STATEMENT.match(lines[end]) or _HEADER.match(lines[end])):
        end += 1
    return range(start, end)


_STATEMENT = re.compile(r"""^\s*("[^"]*"|'[^']*'|[A-Za-z0-9_@.-]+)\s*=""")
#: A table header (``[values]``, ``[[layers]]``), not a row of numbers.
_HEADER = re.compile(r"""^\s*\[\[?\s*[A-Za-z_"'][^\]]*\]\]?\s*(#.*)?$""")
_AT_LINE = re.compile(r"at line (\d+)")


def _loads(text: str, label: str) -> tuple[dict[str, Any], list[Note]]:
    """TOML with every statement TOML cannot read in the ``[values]`` table left out and
    listed (a fraction, a decimal comma, ...); an error anywhere else is a GlassnetError."""
    notes: list[Note] = []
    lines = text.split("\n")
    for _ in range(200):  # at most one retry per bad statement
        try:
            return tomllib.loads("\n".join(lines), parse_float=Written), notes
        except tomllib.TOMLDecodeError as err:
            m = _AT_LINE.search(str(err))
            at = int(m.group(1)) - 1 if m else -1
            headers = [i for i, t in enumerate(lines[: at + 1]) if _HEADER.match(t)]
            in_values = bool(headers) and lines[headers[-1]].split("#")[0].strip() == "[values]"
            if at < 0 or at >= len(lines) or not in_values:
                hint = _text_hint(lines[at]) if 0 <= at < len(lines) else ""
                raise GlassnetError(
                    "expected valid TOML" + hint, got=str(err), file=label
                ) from None
            span = _statement_lines(lines, at)
            stmt = " ".join(lines[i].strip() for i in span)
            m2 = _STATEMENT.match(lines[span.start])
            name = m2.group(1).strip("\"'") if m2 else f"line {at + 1}"
            hint = _text_hint(stmt.partition("=")[2]) or f" ({err})"
            notes.append(
                Note(
                    "unreadable",
                    f"values.{name}",
                    "expected a number or a list of numbers"
                    + hint
                    + f", got {stmt.partition('=')[2].strip()!r}",
                )
            )
            for i in span:
                lines[i] = ""
    raise GlassnetError("expected valid TOML", got="too many unreadable lines", file=label)


def parse_worksheet(
    text: str,
    label: str = "<worksheet>",
    *,
    base: Path | None = None,
    known: Known | None = None,
) -> Worksheet:
    """Parse worksheet text (a spec with ``[values]``, or ``spec = ...`` and ``[values]``).

    Problems with single values are listed in :attr:`Worksheet.notes` and the rest is
    read; an error is raised only when nothing can be marked.  A roster sheet's header
    is checked against its checksum (:func:`~glassnet.check.exercise.verify_header`,
    ``known``: who else it may be for): an edited field is a warning naming it."""
    check_nesting(text, file=label)
    data, notes = _loads(text, label)
    values = data.get("values")
    if not isinstance(values, dict) or (not values and not notes):
        raise GlassnetError(
            "expected a [values] table with what was computed",
            got="nothing" if values is None else repr(values),
            file=label,
            field="values",
        )
    if "spec" in data:
        ref = data["spec"]
        extra = sorted(
            set(data) - {"spec", "values", "name", "description"} - SHEET_KEYS - REF_KEYS
        )
        if not isinstance(ref, str) or extra:
            raise GlassnetError(
                'expected spec = "seed" or a spec file\'s path, with only [values] beside it',
                got=repr(ref) if not isinstance(ref, str) else f"also {extra[0]!r}",
                file=label,
                field="spec",
            )
        path = ref if ref in EXAMPLES or base is None else str(base / ref)
        try:
            spec = load_spec(path)
        except GlassnetError as err:  # name the worksheet first: it is what was given
            raise GlassnetError(
                "expected the spec it names to load", got=str(err), file=label, field="spec"
            ) from None
        for key in ("name", "description"):
            if isinstance(data.get(key), str):
                setattr(spec, key, data[key])
    elif "layers" not in data and "student" in data and "assignment" in data:
        # A roster sheet: its network is rebuilt from the student's id and the assignment
        # (those it was made for, when its checksum says the header was edited).
        data, edited = verify_header(data, known)
        notes += [Note("warning", name, message) for name, message in edited]
        spec = exercise_from_sheet(data, label)
    else:
        spec = parse_spec(_without_values(text), label, extra_keys=SHEET_KEYS)
    try:
        spec.network.require_explained("check")
    except GlassnetError as err:
        raise err.with_file(label) from None
    sheet = Worksheet(spec=spec, label=label, notes=notes)
    for who in ("student", "assignment"):
        if isinstance(data.get(who), str):
            setattr(sheet, who, data[who])
    integer_half = sheet_half(values)
    layout, bias_row0 = _sheet_layout(data, spec, label)
    sheet.layout, sheet.bias_row0 = layout, bias_row0
    for written, raw in values.items():
        try:
            gs = _givens(spec, written, raw, label, layout, bias_row0)
        except GlassnetError as err:
            kind = "warning" if "unknown name" in (err.got or "") else "unreadable"
            sheet.notes.append(Note(kind, f"values.{written}", _short(err)))
            continue
        for g in gs:
            g.half = np.where(g.half == INTEGER, integer_half, g.half)
            if g.misshaped:
                hint = _text_hint(_raw_line(text, written))
                sheet.notes.append(Note("warning", f"values.{written}", misshape_message(g) + hint))
            sheet.givens.append(g)
    _warn_twice(sheet)
    if not sheet.givens:
        first = sheet.notes[0] if sheet.notes else None
        raise GlassnetError(
            "expected at least one value that can be marked",
            got=str(first) if first else "none",
            file=label,
            field="values",
        )
    return sheet


def _sheet_layout(data: dict[str, Any], spec: Spec, label: str) -> tuple[str, bool]:
    """How the sheet writes weight matrices: its spec's layout, or (a sheet naming its
    spec with ``spec = ...``) its own ``layout``/``bias`` fields."""
    from glassnet.spec import LAYOUTS

    layout = data.get("layout", spec.layout) if "spec" in data else spec.layout
    bias = data.get("bias", "row0" if spec.bias_row0 else None) if "spec" in data else None
    if layout not in LAYOUTS:
        raise GlassnetError(
            f"expected one of {', '.join(LAYOUTS)}", got=repr(layout), file=label, field="layout"
        )
    if "spec" in data and bias not in (None, "row0"):
        raise GlassnetError('expected "row0"', got=repr(bias), file=label, field="bias")
    return str(layout), (bias == "row0") if "spec" in data else spec.bias_row0


def _short(err: GlassnetError) -> str:
    return err.expected if err.got is None else f"{err.expected}, got {err.got}"


def _raw_line(text: str, name: str) -> str:
    for line in text.split("\n"):
        m = _STATEMENT.match(line)
        if m and m.group(1).strip("\"'") == name:
            return line.partition("=")[2]
    return ""


def _without_values(text: str) -> str:
    """The spec part of a worksheet: everything but the ``[values]`` table (so a value
    the spec reader cannot parse never stops the spec)."""
    out: list[str] = []
    skipping = False
    for line in text.split("\n"):
        if _HEADER.match(line):
            skipping = line.split("#")[0].strip() == "[values]"
        if not skipping:
            out.append(line)
    return "\n".join(out)


def _warn_twice(sheet: Worksheet) -> None:
    """Two untagged names for one quantity (``output`` and ``a3``; ``O_out`` and ``a3``)
    with different numbers: the first written is the person's value; say so."""
    first: dict[tuple[Key, str], Given] = {}
    for g in sheet.givens:
        if g.tag or g.misshaped:
            continue
        if (g.key, g.phase) not in first:
            first[(g.key, g.phase)] = g
            continue
        f = first[(g.key, g.phase)]
        same = f.value.shape == g.value.shape and bool(
            np.all(np.abs(f.value - g.value) <= np.maximum(f.half, g.half) * (1 + 1e-9))
        )
        if not same:
            sheet.notes.append(
                Note(
                    "warning",
                    f"values.{g.written_name}",
                    f"{g.written_name} and {f.written_name} are the same quantity "
                    f"({key_name(g.key)}) written with different numbers; later steps use "
                    f"{f.written_name} (written first)",
                )
            )


def load_worksheet(source: str | Path, *, known: Known | None = None) -> Worksheet:
    """Load a worksheet file, or a bundled one by name (``"seed"``).  A roster sheet
    may be for the student its folder (``DIR/ID/worksheet.toml``) or file (``ID.toml``)
    is named after, besides those ``known`` lists."""
    name = str(source)
    if name in WORKSHEETS:
        path = example_path(WORKSHEETS[name])
        label = name
    else:
        path = Path(name)
        label = str(path)
    text = read_text(path, label, "a worksheet file (TOML) or 'seed'")
    if name not in WORKSHEETS:
        own = path.parent.name if path.stem == "worksheet" else path.stem
        known = Known(
            list(known.students) if known else [],
            list(known.assignments) if known else [],
            [*(known.hints if known else []), own],
        )
    return parse_worksheet(text, label, base=path.parent, known=known)
