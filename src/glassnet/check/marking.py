"""Marking: every number a person wrote gets ok, follows or wrong, and a named cause.

- ``ok``: within the tolerance of the right value.  The tolerance is half a unit in the
  last written decimal place plus what rounding the person's earlier written values (to
  their written places, themselves carrying their own earlier rounding) can move this
  step — see :func:`glassnet.check.steps.propagate`.  ``rtol`` replaces it by
  ``rtol·|value|``.  A number written as an integer is exact (its half unit is the
  sheet's usual precision, see :func:`glassnet.check.worksheet.sheet_half`), and a
  difference of exactly half a unit counts as inside (a tie rounded either way).
- ``follows``: not ok, but within half a unit (plus the rounding of the step's written
  inputs) of the value the right rule gives on the person's own earlier values, falling
  back to the right values where they wrote none: an error carried forward.  The
  explanation names the person's earlier values it used.
- ``wrong``: neither; then the catalogue (:mod:`glassnet.check.mistakes`) is run on the
  person's own earlier values.  A rule names a number only when, on those values, it
  (a) changes the number, (b) lands closer to what is written than the right rule does,
  and (c) reproduces it to its written digits; a rule that reproduces every number
  written for the quantity is preferred, and one that explains only some says which.
  Order: single rules, the checks on the written number (truncation, copied from an
  earlier value, digits swapped), rounding, pairs of rules; then the nearest rule within
  0.5 % as a ``near`` match.
- A matrix written with the wrong shape is marked wrong, entry by entry (diagnosed when
  it is the transpose of the value); it is never used by later steps.

A vector written for a full Jacobian (softmax's da/dz) is read as its diagonal: it is
compared with the diagonal, and the right rule uses the person's diagonal with the
engine's off-diagonal terms (from the person's own z and a).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.check import mistakes as cat
from glassnet.check.quantities import Key, key_name
from glassnet.check.steps import (
    Context,
    Working,
    inputs_of,
    order,
    propagate,
    upstream_given,
)
from glassnet.check.worksheet import BIAS_OF, Given, Note, Worksheet, misshape_message
from glassnet.errors import GlassnetError
from glassnet.notation import seed_name

if TYPE_CHECKING:
    from glassnet.check.rubric import Grade, Rubric

Array = np.ndarray
#: The most a ``near`` diagnosis may be off, relative to the written value.
NEAR = 0.005
#: A difference of exactly half a unit is a tie: inside (relative slack for float noise).
TIE = 1e-9
VERDICTS: tuple[str, ...] = ("ok", "follows", "wrong")
#: A diagnosis's strength: ``exact`` — the rule reproduces the number and is specific
#: enough that random arithmetic slips almost never fit it (tests/test_check_course.py);
#: ``possible`` — it fits, but so would a slip often enough that it is only a guess.
EXACT, POSSIBLE = "exact", "possible"
STRENGTHS: tuple[str, ...] = (EXACT, POSSIBLE)


def within(diff: Any, tol: Any, ref: Any = 1.0) -> Any:
    """``diff <= tol``, counting a tie at exactly ``tol`` (up to float noise) as inside."""
    return np.asarray(diff) <= np.asarray(tol) * (1 + TIE) + 1e-12 * np.maximum(1.0, np.abs(ref))


@dataclass
class Entry:
    """One written number and its marking (``index`` leaves out a batch of one).
    ``expected``/``follows_from_given`` are None where a misshaped value has no place
    that corresponds."""

    name: str
    written: str
    index: tuple[int, ...]
    given: float
    expected: float | None
    follows_from_given: float | None
    verdict: str
    tolerance: float
    diagnosis: str | None = None
    match: str | None = None
    alternative: float | None = None
    explanation: str = ""
    diagonal: bool = False
    #: The number as written ("0.8000").
    text: str = ""
    #: The quantity it belongs to, with its phase ("b2_new" for the bias row of a
    #: W2_new written with its bias as row 0, "z1@after"): what a rubric scores.
    quantity: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "written": self.written,
            "index": list(self.index),
            "given": self.given,
            "text": self.text,
            "expected": self.expected,
            "follows_from_given": self.follows_from_given,
            "verdict": self.verdict,
            "tolerance": self.tolerance,
            "diagnosis": self.diagnosis,
            "match": self.match,
            "alternative": self.alternative,
            "explanation": self.explanation,
            "diagonal": self.diagonal,
            "quantity": self.quantity or self.name,
        }


@dataclass
class Report:
    """A marked worksheet."""

    sheet: Worksheet
    ctx: Context
    entries: list[Entry] = field(default_factory=list)
    rtol: float | None = None
    #: The rubric its score is by (:mod:`glassnet.check.rubric`; None: the built-in one).
    rubric: Rubric | None = None

    @property
    def notes(self) -> list[Note]:
        return self.sheet.notes

    def grade(self) -> Grade:
        """The score by the report's rubric: points out of the rubric's total, per stage,
        the penalties, and every diagnosis at its strength (see
        :func:`glassnet.check.rubric.grade`)."""
        from glassnet.check.rubric import grade

        return grade(self, self.rubric)

    def summary(self) -> dict[str, Any]:
        counts = {v: sum(e.verdict == v for e in self.entries) for v in VERDICTS}
        # Per id, how many numbers it names at each strength.
        diagnoses: dict[str, dict[str, int]] = {}
        for e in self.entries:
            if e.diagnosis:
                d = diagnoses.setdefault(e.diagnosis, {s: 0 for s in STRENGTHS})
                d[e.match or POSSIBLE] += 1
        g = self.grade()
        wrong = [e for e in self.entries if e.verdict == "wrong"]
        return {
            "worksheet": self.sheet.label,
            "values": len(self.entries),
            **counts,
            "diagnosed": sum(e.diagnosis is not None and e.match == EXACT for e in wrong),
            "possible": sum(e.diagnosis is not None and e.match != EXACT for e in wrong),
            "unexplained": sum(e.diagnosis is None for e in wrong),
            "diagnoses": diagnoses,
            "score": round(g.points, 2),
            "out_of": g.total,
            "rtol": self.rtol,
            "unreadable": len(self.sheet.unreadable()),
            "warnings": len(self.sheet.warnings()),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "entries": [e.to_dict() for e in self.entries],
            "summary": self.summary(),
            "grade": self.grade().to_dict(),
            "notes": [{"kind": n.kind, "field": n.field, "message": n.message} for n in self.notes],
        }

    def wrong(self) -> list[Entry]:
        return [e for e in self.entries if e.verdict == "wrong"]

    def by_name(self, name: str) -> list[Entry]:
        return [e for e in self.entries if e.name == name or e.written == name]


def _g(v: float | None) -> str:
    if v is None:
        return "—"
    return f"{v:.6g}".replace("-0", "0") if v == 0 else f"{v:.6g}"


def _diag(a: Array) -> Array:
    return np.diagonal(a, axis1=1, axis2=2)


def check_rtol(rtol: float) -> float:
    """A relative tolerance must be a positive finite number."""
    if not (np.isfinite(rtol) and rtol > 0):
        raise GlassnetError("expected a positive number", got=repr(rtol), field="--rtol")
    return rtol


def phase_contexts(sheet: Worksheet) -> dict[str, Context]:
    """The right values of each phase of the spec: "" (the step), "step2", ... (a spec's
    ``steps = N``) and "after" (``after = true``), each from the engine's trace."""
    base = Context.from_worksheet(sheet)
    out = {"": base}
    for i, tr in enumerate(base.trace.later, start=2):
        out[f"step{i}"] = _context_of(base, tr)
    if base.trace.after is not None:
        out["after"] = _context_of(base, base.trace.after)
    return out


def _context_of(base: Context, trace: Any) -> Context:
    # The later step's own graph: its rules carry that step's number t (Adam's bias
    # correction 1 − βᵗ) and learning rate (a schedule's); step 1's would mark step 2's
    # m̂ against m/(1 − β1) and widen its band by the difference.
    graph = trace.graph if trace.graph is not None else base.graph
    right = {key: trace.value(key) for key in order(graph)}
    return Context(graph=graph, batch=base.batch, right=right, trace=trace)


#: What a step hands to the next: the person's W_new (b_new) of a layer becomes the W
#: (b) the next step starts from — (their written value, its band, clipped to the band).
Carry = dict[Key, tuple[Given, Array, Array]]


def batch_free(report: Report, g: Given, idx: tuple[int, ...]) -> tuple[int, ...]:
    """``idx`` of ``g.value`` without the batch axis of a one-sample batch."""
    ctx = report.ctx
    return idx[1:] if ctx.batched(g.key) and ctx.batch == 1 else idx


def engine_place(report: Report, e: Entry) -> tuple[Given, tuple[int, ...]] | None:
    """The person's value ``e`` is a number of (of the step itself, not a copy or a
    later step), and its place in that value as the engine holds it (batch axis
    included): an entry's index is the place *as written* (a W[to][from] matrix, or
    one with its bias as row 0), which is not the engine's."""
    for g in report.sheet.own().values():
        if g.written_name != e.written or g.misshaped:
            continue
        for idx in np.ndindex(g.value.shape):
            if tuple(g.written_index(batch_free(report, g, idx))) == tuple(e.index):
                return g, idx
    return None


def check(sheet: Worksheet, *, rtol: float | None = None, rubric: Rubric | None = None) -> Report:
    """Mark every value of ``sheet`` (misshaped ones too), phase by phase: the step, the
    later steps (``z1@step2``) each starting from the person's own updated weights of the
    step before, and the forward pass after the update (``loss@after``)."""
    if rtol is not None:
        check_rtol(rtol)
    contexts = phase_contexts(sheet)
    report = Report(sheet, contexts[""], rtol=rtol, rubric=rubric)
    marks: dict[int, list[Entry]] = {}
    carry: Carry = {}
    for phase, ctx in contexts.items():
        givens = [g for g in sheet.givens if g.phase == phase]
        marker = _phase_marker(ctx, sheet, phase, givens, carry, rtol)
        for g in givens:
            marks[id(g)] = marker.misshaped(g) if g.misshaped else marker.mark(g)
        carry = {}
        # What the person computed this step becomes the next step's given: updated
        # parameters, moved constants, the optimiser's state (the graph says which).
        for new, leaf in ctx.graph.carries():
            up = marker.own.get(new)
            if up is not None:
                carry[leaf] = (up, marker.band[new], marker.clipped[new])
            elif new in marker.readable:
                # Written the other way round: marked wrong as written, but its numbers
                # are still the person's, and their next step starts from them.
                read = marker.readable[new]
                band = np.asarray(read.half, dtype=np.float64)
                right = ctx.right[new]
                carry[leaf] = (read, band, np.clip(read.value, right - band, right + band))
    # Each written entry's numbers in the order written (a W[to][from] matrix, or one
    # with its bias as row 0, is marked as the engine holds it, reported as written).
    groups: dict[tuple[str, str], list[Entry]] = {}
    for g in sheet.givens:
        groups.setdefault((g.written_name, g.phase), []).extend(marks.get(id(g), []))
    for g in sheet.givens:
        if g.layout_T or g.row_shift or g.bias_part:
            groups[(g.written_name, g.phase)].sort(key=lambda e: e.index)
    report.entries = [e for es in groups.values() for e in es]
    return report


def _phase_marker(
    ctx: Context,
    sheet: Worksheet,
    phase: str,
    givens: list[Given],
    carry: Carry,
    rtol: float | None,
) -> _Marker:
    """Bands of one phase's written values, ready to mark them."""
    own = sheet.own(phase)
    given = {k: g.value for k, g in own.items()}
    for k, (g, _band, _clip) in carry.items():
        given.setdefault(k, g.value)

    def exact_leaf(k: Key) -> bool:
        # x, y and the spec's own W, b are exact; a later step's weights are the
        # person's own numbers (their W_new), rounded as written.
        return k[0] in ("x", "y") or (ctx.is_leaf(k) and phase == "")

    # Spread for carrying rounding forward: half a unit, except where nothing was rounded
    # (exact leaves; a value written equal to the right one is exact).
    half: dict[Key, Array] = {}
    for k, g in own.items():
        r = _diag(ctx.right[k]) if g.diagonal else ctx.right[k]
        exact = np.abs(g.value - r) <= 1e-12 * np.maximum(1.0, np.abs(r))
        half[k] = np.where(exact | exact_leaf(k), 0.0, g.half)
    for k, (g, _band, _clip) in carry.items():
        if k not in own:
            half[k] = g.half
    diagonal = {k for k, g in own.items() if g.diagonal}
    # How far each written value may legitimately sit from the right one: half a unit,
    # plus how far the step moves when its written inputs are replaced by their nearest
    # legitimate values (clipped to their own bands) — the rounding carried forward.
    band: dict[Key, Array] = {}
    clipped: dict[Key, Array] = {}
    for k in order(ctx.graph):
        if k not in own:
            if k in carry:
                band[k], clipped[k] = carry[k][1], carry[k][2]
            continue
        right = ctx.right[k]
        if own[k].diagonal:
            right = _diag(right)
        if exact_leaf(k):
            band[k] = 0 * half[k]
        elif ctx.is_leaf(k):
            band[k] = np.asarray(own[k].half, dtype=np.float64)
        else:
            legit = Working(ctx, clipped, diagonal=diagonal).compute(k)
            if own[k].diagonal:
                legit = _diag(legit)
            band[k] = own[k].half + np.abs(legit - right)
        clipped[k] = np.clip(given[k], right - band[k], right + band[k])
    marker = _Marker(ctx, sheet, given, half, diagonal, band, clipped, rtol)
    marker.own, marker.givens, marker.phase = own, givens, phase
    marker.carried = {k: g for k, (g, _b, _c) in carry.items() if k not in own}
    return marker


def _shape_like(extra: Any, g: Given) -> Array:
    extra = np.asarray(extra, dtype=np.float64)
    if g.diagonal and extra.ndim == 3:
        return _diag(extra)
    return extra


Combo = list[tuple[cat.Mistake, Any]]
#: (id, match, alternative, explanation)
Cause = tuple[str, str, float, str]


def _text(ids: Combo, alt: float, given: float, near: bool) -> str:
    parts = []
    for m, v in ids:
        d = m.describe(v)
        parts.append(m.title + (f" ({d})" if d else ""))
    text = " + ".join(parts) + f": that rule on your own earlier values gives {_g(alt)}"
    if near:
        rel = abs(alt - given) / max(abs(given), 1e-300)
        text += f", {rel:.2%} from what is written (the rest looks like an arithmetic slip)"
    return text


@dataclass
class _Candidate:
    combo: Combo
    alt: Array
    hit: set[tuple[int, ...]]
    full: bool
    rank: int


class _Marker:
    """Marks one worksheet's givens (shared state of :func:`check`)."""

    def __init__(
        self,
        ctx: Context,
        sheet: Worksheet,
        given: dict[Key, Array],
        half: dict[Key, Array],
        diagonal: set[Key],
        band: dict[Key, Array],
        clipped: dict[Key, Array],
        rtol: float | None,
    ) -> None:
        self.ctx, self.sheet, self.given, self.half = ctx, sheet, given, half
        self.diagonal, self.band, self.clipped, self.rtol = diagonal, band, clipped, rtol
        self.own = sheet.own()
        self.givens: list[Given] = list(sheet.givens)
        self.phase = ""
        #: The previous step's values this one starts from (W, b keys).
        self.carried: dict[Key, Given] = {}
        #: Weight matrices written the other way round, read the right way round: what
        #: the next step starts from (see :meth:`keep_readable`).
        self.readable: dict[Key, Given] = {}

    def shown(self, key: Key, idx: tuple[int, ...]) -> tuple[int, ...]:
        """``idx`` without the batch axis of a one-sample batch."""
        batched = self.ctx.batched(key)
        return idx[1:] if batched and self.ctx.batch == 1 else idx

    def place(self, key: Key, idx: tuple[int, ...], g: Given | None = None) -> str:
        """``[0, 1]``: the place as written (the sheet's layout when ``g`` says it)."""
        s = self.shown(key, idx)
        if g is not None:
            s = g.written_index(s)
        return f"[{', '.join(map(str, s))}]" if s else ""

    def entry_name(self, g: Given) -> str:
        """The name an entry is reported under: the quantity (or, for the bias row of a
        matrix written with its bias as row 0, that matrix), with its phase."""
        name = g.shown_name or key_name(g.key)
        return f"{name}@{g.phase}" if g.phase else name

    def quantity(self, g: Given) -> str:
        """The quantity ``g`` holds numbers of, with its phase (``b2_new``, ``z1@after``)."""
        return key_name(g.key) + (f"@{g.phase}" if g.phase else "")

    # -- one quantity -----------------------------------------------------------------
    def mark(self, g: Given) -> list[Entry]:
        ctx, K = self.ctx, g.key
        others = {q: v for q, v in self.given.items() if q != K}
        ev = Working(ctx, others, diagonal=self.diagonal)
        follows = ev.value(K)
        right = ctx.right[K]
        if g.diagonal:
            follows, right = _diag(follows), _diag(right)
        if self.ctx.is_leaf(K):
            t_ok = t_f = g.half
        else:
            t_f = g.half + _shape_like(propagate(ctx, others, self.diagonal, K, self.half), g)
            # A copy written twice (name@tag) is held to the band of the quantity's value.
            t_ok = np.maximum(g.half, self.band[K] - self.own[K].half + g.half)
        if self.rtol is not None:
            t_ok = self.rtol * np.abs(right) + 1e-12
            t_f = self.rtol * np.abs(follows) + 1e-12
        value = g.value
        ok = within(np.abs(value - right), t_ok, right)
        # "Follows" needs an earlier error to follow from: this number must change when
        # the written inputs that are off their bands are moved back onto them.
        back = {k: v for k, v in self.clipped.items() if k != K}
        mended = Working(ctx, back, diagonal=self.diagonal).value(K)
        if g.diagonal:
            mended = _diag(mended)
        earlier_error = np.abs(mended - follows) > 1e-12 * np.maximum(1.0, np.abs(follows))
        fol = ~ok & within(np.abs(value - follows), t_f, follows) & earlier_error
        wrong = ~ok & ~fol
        causes = self.diagnose(g, others, right, follows, t_f, wrong)
        used = self.used(g, others, follows, fol) if fol.any() else {}
        entries = []
        for idx in np.ndindex(value.shape):
            verdict = "ok" if ok[idx] else "follows" if fol[idx] else "wrong"
            e = Entry(
                name=self.entry_name(g),
                written=g.written_name,
                index=tuple(int(i) for i in g.written_index(self.shown(K, idx))),
                given=float(value[idx]),
                expected=float(right[idx]),
                follows_from_given=float(follows[idx]),
                verdict=verdict,
                tolerance=float(np.broadcast_to(t_ok, value.shape)[idx]),
                diagonal=g.diagonal,
                text=g.text(idx),
                quantity=self.quantity(g),
            )
            if verdict == "follows":
                e.explanation = (
                    f"carried forward: the right rule on your earlier values gives "
                    f"{_g(e.follows_from_given)} (right: {_g(e.expected)})" + used.get(idx, "")
                )
            elif verdict == "wrong":
                cause = causes.get(idx)
                if cause is None:
                    e.explanation = (
                        f"no rule in the catalogue reproduces it (right: {_g(e.expected)}, "
                        f"from your earlier values: {_g(e.follows_from_given)})"
                    )
                else:
                    e.diagnosis, e.match, e.alternative, e.explanation = cause
            entries.append(e)
        return entries

    def used(
        self, g: Given, others: dict[Key, Array], follows: Array, fol: Array
    ) -> dict[tuple[int, ...], str]:
        """Per number that follows: '; marked using your dL_da2 = −0.71' — the person's
        earlier values off their bands that this very number was computed from (each
        moved back onto its band, alone, changes it)."""
        K = g.key
        parts: dict[tuple[int, ...], list[str]] = {}
        for k in sorted(upstream_given(self.ctx, others, K), key=order(self.ctx.graph).index):
            up = self.own.get(k) or self.carried.get(k)
            if up is None or k not in self.clipped:
                continue
            off = np.abs(up.value - self.clipped[k]) > 1e-12 * np.maximum(1.0, np.abs(up.value))
            for j in np.ndindex(off.shape):
                if not off[j]:
                    continue
                moved = dict(others)
                v = np.array(others[k], dtype=np.float64, copy=True)
                v[j] = self.clipped[k][j]
                moved[k] = v
                alt = Working(self.ctx, moved, diagonal=self.diagonal).value(K)
                if g.diagonal:
                    alt = _diag(alt)
                hit = np.abs(alt - follows) > 1e-12 * np.maximum(1.0, np.abs(follows))
                text = f"your {up.written_name}{self.place(k, j, up)} = {up.text(j)}"
                for i in np.ndindex(hit.shape):
                    if hit[i] and fol[i]:
                        parts.setdefault(i, []).append(text)
        out = {}
        for i, texts in parts.items():
            more = f" and {len(texts) - 4} more" if len(texts) > 4 else ""
            out[i] = "; marked using " + ", ".join(texts[:4]) + more
        return out

    def misshaped(self, g: Given) -> list[Entry]:
        """Every number of a value written with the wrong shape: wrong, marked as
        written; named ``transposed_gradient`` (dW) or ``written_transposed`` (exact)
        when every number is the transpose of what the right rule gives on the person's
        values, as the sheet's layout writes it (W[to][from], the bias as row 0)."""
        K = g.key
        value = g.value
        right = follows = None
        reproduces = False
        layout = self.written_layout(g)
        if layout is not None:
            want, with_bias = layout
            W_right, W_fol, W_t = self.right_rule(K)
            b_right = b_fol = b_t = None
            if with_bias:
                b_right, b_fol, b_t = self.right_rule((BIAS_OF[K[0]], K[1]))

            def written(W: Array, b: Array | None) -> Array:
                """An engine-layout value as the sheet writes it, then transposed."""
                M = np.asarray(W).reshape(want if not (g.layout_T or g.row0) else W.shape)
                if b is not None:
                    M = np.vstack([np.asarray(b).reshape(1, -1), M])
                return (M.T if g.layout_T else M).T

            right = written(W_right, b_right)
            follows = written(W_fol, b_fol)
            t = g.half + np.abs(written(W_t, b_t))
            if self.rtol is not None:
                t = self.rtol * np.abs(follows) + 1e-12
            reproduces = bool(np.all(within(np.abs(value - follows), t, follows)))
            self.keep_readable(g, with_bias)
        cid = "transposed_gradient" if K[0] == "dW" else "written_transposed"
        title = cat.title_of(cid)
        other_shape = None if reproduces else self.shaped_by_mistake(g)
        entries = []
        for idx in np.ndindex(value.shape):
            e = Entry(
                name=self.entry_name(g),
                written=g.written_name,
                index=tuple(int(i) for i in idx),
                given=float(value[idx]),
                expected=None if right is None else float(right[idx]),
                follows_from_given=None if follows is None else float(follows[idx]),
                verdict="wrong",
                tolerance=float(np.broadcast_to(g.half, value.shape)[idx]),
                text=g.text(idx),
                quantity=self.quantity(g),
            )
            shape_words = f"written with shape {value.shape}; {misshape_message(g)}"
            if other_shape is not None:
                (mid, alt, text) = other_shape
                e.diagnosis, e.match, e.alternative = mid, EXACT, float(alt[idx])
                e.explanation = f"{text}; written with shape {value.shape}, as that rule gives it"
            elif reproduces and follows is not None:
                e.diagnosis, e.match, e.alternative = cid, EXACT, float(follows[idx])
                e.explanation = (
                    f"{title}: {shape_words}, and its transpose is right on your own "
                    f"earlier values (place [{idx[1]}, {idx[0]}] as the sheet writes "
                    f"{g.written_name.split('@')[0]})"
                )
            elif right is not None:
                e.explanation = (
                    shape_words + "; marked against the transpose of the right matrix, "
                    "which it does not match everywhere"
                )
            else:
                e.explanation = shape_words + " (not marked place by place)"
            entries.append(e)
        return entries

    def shaped_by_mistake(self, g: Given) -> tuple[str, Array, str] | None:
        """A plugin's mistake that gives another shape (a convolution's stride or
        padding off by one makes another grid of windows) and, on the person's own
        earlier values, reproduces every number of the misshaped value as written:
        (its id, its value in the written shape, the explanation); None if none does."""
        ctx, K, value = self.ctx, g.key, g.value
        if ctx.is_leaf(K):
            return None
        others = {q: v for q, v in self.given.items() if q != K}
        want = np.shape(ctx.right[K])
        for m in cat.plugin_mistakes(ctx):
            if K[0] not in m.kinds:
                continue
            for v in m.variants:
                combo = [(m, v)]
                ev = Working(ctx, others, diagonal=self.diagonal, mistakes=combo)
                try:
                    alt = ev.compute(K)
                except (ValueError, IndexError):  # a shape later rules cannot read
                    continue
                if m.id not in ev.used or alt.shape == want:
                    continue
                if alt.shape != value.shape:
                    if not (ctx.batched(K) and alt.shape[0] == 1 and alt.shape[1:] == value.shape):
                        continue
                    alt = alt.reshape(value.shape)
                if self.rtol is not None:
                    t = self.rtol * np.abs(alt) + 1e-12
                else:
                    spread = propagate(ctx, others, self.diagonal, K, self.half, combo)
                    t = g.half + np.reshape(spread, value.shape)
                if bool(np.all(within(np.abs(value - alt), t, alt))):
                    text = _text(combo, float(alt.flat[0]), 0, False).split(":")[0]
                    return (
                        m.id,
                        alt,
                        f"{text}: that rule on your own earlier values gives every number written",
                    )
        return None

    def written_layout(self, g: Given) -> tuple[tuple[int, ...], bool] | None:
        """When ``g`` is a matrix written with rows for columns: (the shape the sheet
        should have written it in, whether that holds the bias row); else None."""
        value = g.value
        if value.ndim != 2 or int(np.prod(g.want)) == 0:
            return None
        if value.T.shape == g.want:
            return g.want, g.row0
        if g.row0:  # written without its bias row: the weights alone
            rows, cols = g.want
            alone = (rows, cols - 1) if g.layout_T else (rows - 1, cols)
            if value.T.shape == alone:
                return alone, False
        return None

    def right_rule(self, key: Key) -> tuple[Array, Array, Array]:
        """(The right value, the right rule on the person's other values, the rounding
        it carries) of ``key``, batch axis as the engine holds it."""
        others = {q: v for q, v in self.given.items() if q != key}
        follows = Working(self.ctx, others, diagonal=self.diagonal).value(key)
        spread = propagate(self.ctx, others, self.diagonal, key, self.half)
        return self.ctx.right[key], follows, np.broadcast_to(spread, np.shape(follows))

    def keep_readable(self, g: Given, with_bias: bool) -> None:
        """A weight matrix written the other way round, read the right way round (in
        the engine's layout) for the next step: it is still the person's numbers."""
        if g.tag:  # a second copy is never the person's value
            return
        M = g.value.T  # as the sheet should have written it
        H = np.broadcast_to(g.half, g.value.shape).T
        engine = [M.T, H.T] if g.layout_T else [M, H]
        if with_bias:
            self.readable[(BIAS_OF[g.key[0]], g.key[1])] = Given(
                g.written_name, (BIAS_OF[g.key[0]], g.key[1]), "", engine[0][0], engine[1][0]
            )
            engine = [a[1:] for a in engine]
        if engine[0].shape == np.shape(self.ctx.right[g.key]):
            self.readable[g.key] = Given(g.written_name, g.key, "", engine[0], engine[1])

    # -- diagnosis --------------------------------------------------------------------
    def diagnose(
        self,
        g: Given,
        others: dict[Key, Array],
        right: Array,
        follows: Array,
        tol: Array,
        wrong: Array,
    ) -> dict[tuple[int, ...], Cause]:
        """Name the mistake behind every wrong number of ``g`` that a rule reproduces."""
        causes: dict[tuple[int, ...], Cause] = {}
        if not wrong.any():
            return causes
        ctx, K, value = self.ctx, g.key, g.value
        tol = np.broadcast_to(tol, value.shape)
        places = list(np.ndindex(value.shape))
        catalogue = [*cat.CATALOGUE.values(), *cat.plugin_mistakes(ctx)]
        singles = [(m, v) for m in catalogue for v in m.variants]
        computed = not ctx.is_leaf(K)
        # Whole indices (max pooling's arg-max) take few values: any rule upstream lands
        # on a written index by chance too often.  Only the layer's own rules for this
        # very node may name one, and only when they give every index written.
        owner = ctx.graph.layers[K[1] - 1] if 1 <= K[1] <= ctx.n_layers else None
        indices = owner is not None and owner.index_range(K[0]) is not None
        if indices:
            singles = [(m, v) for m, v in singles if m.plugin and K[0] in m.kinds]
        # A parameter update (W_new, b_new, an optimiser's state): see ``assign``.
        update = computed and ctx.graph.has(K) and ctx.graph.decl(K).phase == "update"

        def todo() -> list[tuple[int, ...]]:
            return [i for i in places if wrong[i] and i not in causes]

        def run(combo: Combo) -> Array | None:
            ev = Working(ctx, others, diagonal=self.diagonal, mistakes=combo)
            alt = ev.compute(K)
            if any(m.id not in ev.used for m, _ in combo):
                return None
            alt = _diag(alt) if g.diagonal else alt
            return alt if alt.shape == value.shape else None

        def changed(alt: Array, i: tuple[int, ...]) -> bool:
            return bool(abs(alt[i] - follows[i]) > 1e-12 * max(1.0, abs(follows[i])))

        def closer(alt: Array, i: tuple[int, ...]) -> bool:
            return bool(abs(value[i] - alt[i]) < abs(value[i] - follows[i]))

        def assess(combo: Combo, alt: Array, rank: int, strict: bool = False) -> _Candidate:
            cand = [
                i
                for i in todo()
                if changed(alt, i)
                and closer(alt, i)
                and abs(value[i] - alt[i]) <= max(tol[i], 0.05 * abs(value[i]))
            ]
            if not cand:
                return _Candidate(combo, alt, set(), False, rank)
            if self.rtol is not None:
                t = self.rtol * np.abs(alt) + 1e-12
            elif strict:
                t = g.half
            else:
                t = g.half + _shape_like(
                    propagate(ctx, others, self.diagonal, K, self.half, combo), g
                )
            t = np.broadcast_to(t, value.shape)
            ok = within(np.abs(value - alt), t, alt)
            hit = {i for i in cand if ok[i]}
            return _Candidate(combo, alt, hit, bool(np.all(ok)), rank)

        def assign(cands: list[_Candidate], exact_text: bool = True) -> None:
            for i in todo():
                best = [c for c in cands if i in c.hit]
                if not best:
                    continue
                c = max(best, key=lambda c: (c.full, len(c.hit), -c.rank))
                ids = "+".join(m.id for m, _ in c.combo)
                text = _text(c.combo, float(c.alt[i]), 0, False)
                strength = EXACT
                if not c.full:
                    text += self.partial(g, c.hit, len(places))
                    if update:
                        # An update rule acts on the whole matrix at once: one that
                        # reproduces only some of its numbers is a guess, not a finding.
                        strength = POSSIBLE
                        text += "; an update mistake changes every number, so only possibly"
                causes[i] = (ids, strength, float(c.alt[i]), text)

        alts: list[tuple[Combo, Array]] = []
        if computed:
            cands = []
            for rank, mv in enumerate(singles):
                if mv[0].id == "rounding":
                    continue
                alt = run([mv])
                if alt is None:
                    continue
                alts.append(([mv], alt))
                c = assess([mv], alt, rank)
                if c.hit and (c.full or not indices):
                    cands.append(c)
            assign(cands)
        if indices:
            return causes
        if computed and todo():
            self.transposed(g, follows, tol, todo(), causes)
        for i in todo():
            cause = self.checks(g, i, right, follows, tol)
            if cause is not None:
                causes[i] = cause
        if computed and todo():
            self.swapped_inputs(g, others, follows, tol, todo(), causes)
        # Rounding after the specific rules: rounding to few decimals explains much.  It
        # is held to half a unit (no carried rounding: rounding the inputs is the point),
        # and names the decimals whose result is nearest what is written.
        if computed and todo():
            rounds = []
            for mv in cat.CATALOGUE["rounding"].variants:
                alt = run([(cat.CATALOGUE["rounding"], mv)])
                if alt is not None:
                    rounds.append(assess([(cat.CATALOGUE["rounding"], mv)], alt, 0, strict=True))
            for i in todo():
                hits = [c for c in rounds if i in c.hit]
                if hits:
                    c = min(hits, key=lambda c: (abs(value[i] - c.alt[i]), c.combo[0][1]))
                    text = _text(c.combo, float(c.alt[i]), 0, False)
                    # Inputs rounded early change every number they feed: rounding that
                    # reproduces only some of them fits a random slip about as often.
                    strength = EXACT if c.full else POSSIBLE
                    if not c.full:
                        text += self.partial(g, c.hit, len(places)) + ", so only possibly"
                    causes[i] = ("rounding", strength, float(c.alt[i]), text)
        if computed and todo():
            changers = [combo[0] for combo, alt in alts if any(changed(alt, i) for i in todo())]
            pair_cands = []
            for rank, (a, b) in enumerate(itertools.combinations(changers, 2)):
                if a[0].id == b[0].id:
                    continue
                if not (a[0].wraps or b[0].wraps) and a[0].kinds & b[0].kinds:
                    continue
                alt = run([a, b])
                if alt is None:
                    continue
                c = assess([a, b], alt, rank)
                if c.hit:
                    pair_cands.append(c)
            assign(pair_cands)
        for i in todo():
            best: tuple[float, Combo, float] | None = None
            for combo, alt in alts:
                if not combo[0][0].near_ok or not changed(alt, i) or not closer(alt, i):
                    continue
                rel = abs(value[i] - alt[i]) / max(abs(value[i]), 1e-300)
                if rel <= NEAR and (best is None or rel < best[0]):
                    best = (rel, combo, float(alt[i]))
            if best is not None:
                _, combo, alt_v = best
                causes[i] = (
                    "+".join(m.id for m, _ in combo),
                    POSSIBLE,
                    alt_v,
                    _text(combo, alt_v, float(value[i]), True),
                )
        return causes

    def transposed(
        self,
        g: Given,
        follows: Array,
        tol: Array,
        todo: list[tuple[int, ...]],
        causes: dict[tuple[int, ...], Cause],
    ) -> None:
        """``written_transposed`` for a square parameter-shaped matrix (W, dW, W_new):
        every number is the transpose of the right rule on the person's values (the
        non-square case has the wrong shape: :meth:`misshaped`)."""
        value = g.value
        if value.ndim != 2 or value.shape[0] != value.shape[1] or self.ctx.batched(g.key):
            return
        alt = follows.T
        if not bool(np.all(within(np.abs(value - alt), tol, alt))):
            return
        for i in todo:
            if abs(alt[i] - follows[i]) > 1e-12 * max(1.0, abs(follows[i])):
                causes[i] = (
                    "written_transposed",
                    EXACT,
                    float(alt[i]),
                    f"{cat.title_of('written_transposed')}: every number is the transpose "
                    f"of the right rule on your own earlier values (this place holds "
                    f"{_g(float(alt[i]))}, the one across the diagonal)",
                )

    def partial(self, g: Given, hit: set[tuple[int, ...]], total: int) -> str:
        where = ", ".join(self.place(g.key, i, g) or "[]" for i in sorted(hit))
        return (
            f" (it reproduces {len(hit)} of the {total} numbers written for "
            f"{self.entry_name(g)}: {where})"
        )

    def checks(
        self,
        g: Given,
        i: tuple[int, ...],
        right: Array,
        follows: Array,
        tol: Array,
    ) -> Cause | None:
        """The checks on the written number itself, on the person's own values."""
        v, h = float(g.value[i]), float(g.half[i])
        own_value = float(follows[i])
        d = cat.decimals(h)
        hit = cat.truncation(v, h, [own_value])
        if hit is not None:
            return (
                "truncation",
                "exact",
                hit,
                f"{cat.CHECKS['truncation']}: {_g(hit)} (the right rule on your own values) "
                f"cut off at {d} decimals; rounded it is {cat.plain_text(round(hit, d or 0), d)}",
            )
        src = cat.wrong_source_value(v, h, self.sources(g, i))
        if src is not None:
            return (
                "wrong_source_value",
                "exact",
                src[1],
                f"{cat.CHECKS['wrong_source_value']}: it is {src[0]} at the same place "
                f"({_g(src[1])})",
            )
        hit = cat.digit_swap(v, h, [own_value])
        if hit is not None:
            return (
                "digit_swap",
                "exact",
                hit,
                f"{cat.CHECKS['digit_swap']}: {g.text(i)} for "
                f"{cat.plain_text(hit, d)} (the right rule on your own values)",
            )
        return None

    def swapped_inputs(
        self,
        g: Given,
        others: dict[Key, Array],
        follows: Array,
        tol: Array,
        todo: list[tuple[int, ...]],
        causes: dict[tuple[int, ...], Cause],
    ) -> None:
        """``digit_swap`` in an input: one number of this step's inputs (a given x, W, b
        or the person's own earlier value) copied with two adjacent digits exchanged,
        and the step then worked right."""
        ctx, K, value = self.ctx, g.key, g.value
        for k in inputs_of(K, ctx.graph):
            if k[0] == "y":
                continue
            mine = self.own.get(k) if k in others else None
            if mine is None and not ctx.is_leaf(k):
                continue
            src = others[k] if mine is not None else ctx.right[k]
            if src.ndim != len(mine.value.shape if mine is not None else src.shape):
                continue
            for j in np.ndindex(src.shape):
                if mine is not None:
                    d = cat.decimals(float(mine.half[j]))
                    text = cat.plain_text(float(src[j]), d)
                else:
                    text = cat.plain_text(float(src[j]))
                for s in cat.digit_swaps(text):
                    moved = dict(others)
                    arr = np.array(src, dtype=np.float64, copy=True)
                    arr[j] = s
                    moved[k] = arr
                    alt = Working(ctx, moved, diagonal=self.diagonal).compute(K)
                    if g.diagonal:
                        alt = _diag(alt)
                    if alt.shape != value.shape:
                        continue
                    moves = np.abs(alt - follows) > 1e-12 * np.maximum(1.0, np.abs(follows))
                    fits = within(np.abs(value - alt), tol, alt)
                    # Every digit pair of every input is a candidate, so one of them
                    # lands on a random slip of a single number too often to be sure:
                    # exact only when the swap moves several written numbers and
                    # reproduces every one of them.
                    strength = EXACT if moves.sum() >= 2 and bool(np.all(fits[moves])) else POSSIBLE
                    for i in todo:
                        if i in causes:
                            continue
                        if moves[i] and fits[i]:
                            who = (
                                f"your {mine.written_name}" if mine else f"the given {key_name(k)}"
                            )
                            causes[i] = (
                                "digit_swap",
                                strength,
                                float(alt[i]),
                                f"{cat.CHECKS['digit_swap']}: {who}{self.place(k, j)} = "
                                f"{text} used as {cat.plain_text(s)}; the right rule then "
                                f"gives {_g(float(alt[i]))}"
                                + (
                                    ""
                                    if strength == EXACT
                                    else " (only possibly: it moves this one number, "
                                    "and some pair of the inputs' digits fits many slips)"
                                ),
                            )
                    if all(i in causes for i in todo):
                        return

    def sources(self, g: Given, idx: tuple[int, ...]) -> list[tuple[str, float, float]]:
        """What a number may have been copied from: the person's values of quantities
        that come before this one in the step (or are given: x, y, W, b), then the
        given x, y, W, b of the spec — each (name, value at the same place, half unit)."""
        ctx = self.ctx
        L = ctx.n_layers
        seq = order(ctx.graph)
        mine = seq.index(g.key)
        out: list[tuple[str, float, float]] = []
        shape = g.value.shape
        written: set[Key] = set()
        for other in self.givens:
            if other is g or other.misshaped or other.value.shape != shape:
                continue
            k = other.key
            if k == g.key or not (ctx.is_leaf(k) or seq.index(k) < mine):
                continue
            written.add(k)
            seed = seed_name(key_name(k), L) if ctx.trace.x.ndim <= 2 else None
            label = other.written_name
            if label != key_name(k):
                label += f" ({key_name(k)})"
            elif seed:
                label += f" ({seed})"
            out.append((f"your {label}", float(other.value[idx]), float(other.half[idx])))
        for k in seq:
            if not ctx.is_leaf(k) or k == g.key or k in written:
                continue
            v = self.ctx.right[k]
            if v.shape == shape:
                out.append((f"the given {key_name(k)}", float(v[idx]), float(g.half[idx])))
        return out
