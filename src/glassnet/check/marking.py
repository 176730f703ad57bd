"""Marking: every number a person wrote gets ok, follows or wrong, and a named cause.

- ``ok``: within the tolerance of the right value.  The tolerance is half a unit in the
  last written decimal place plus what rounding the person's earlier written values (to
  their written places, themselves carrying their own earlier rounding) can move this
  step — see :func:`glassnet.check.steps.propagate`.  ``rtol`` replaces it by
  ``rtol·|value|``.
- ``follows``: not ok, but within half a unit (plus the rounding of the step's written
  inputs) of the value the right rule gives on the person's own earlier values, falling
  back to the right values where they wrote none: an error carried forward.
- ``wrong``: neither; then the catalogue (:mod:`glassnet.check.mistakes`) is run on the
  person's own earlier values, single mistakes first, then pairs, and a mistake that
  reproduces the number to its written digits names it.  When none does, the nearest
  rule within 0.5 % is named as a ``near`` match.

A vector written for a full Jacobian (softmax's da/dz) is read as its diagonal: it is
compared with the diagonal, and the right rule uses the person's diagonal with the
engine's off-diagonal terms (from the person's own z and a).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from glassnet.check import mistakes as cat
from glassnet.check.steps import LEAVES, Context, Evaluator, order, propagate
from glassnet.check.worksheet import STEP_KINDS, Given, Key, Worksheet, key_name
from glassnet.errors import GlassnetError
from glassnet.notation import seed_name

Array = np.ndarray
#: The most a ``near`` diagnosis may be off, relative to the written value.
NEAR = 0.005
VERDICTS: tuple[str, ...] = ("ok", "follows", "wrong")


@dataclass
class Entry:
    """One written number and its marking (``index`` leaves out a batch of one)."""

    name: str
    written: str
    index: tuple[int, ...]
    given: float
    expected: float
    follows_from_given: float
    verdict: str
    tolerance: float
    diagnosis: str | None = None
    match: str | None = None
    alternative: float | None = None
    explanation: str = ""
    diagonal: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "written": self.written,
            "index": list(self.index),
            "given": self.given,
            "expected": self.expected,
            "follows_from_given": self.follows_from_given,
            "verdict": self.verdict,
            "tolerance": self.tolerance,
            "diagnosis": self.diagnosis,
            "match": self.match,
            "alternative": self.alternative,
            "explanation": self.explanation,
            "diagonal": self.diagonal,
        }


@dataclass
class Report:
    """A marked worksheet."""

    sheet: Worksheet
    ctx: Context
    entries: list[Entry] = field(default_factory=list)
    rtol: float | None = None

    def summary(self) -> dict[str, Any]:
        counts = {v: sum(e.verdict == v for e in self.entries) for v in VERDICTS}
        diagnoses: dict[str, int] = {}
        for e in self.entries:
            if e.diagnosis:
                diagnoses[e.diagnosis] = diagnoses.get(e.diagnosis, 0) + 1
        return {
            "worksheet": self.sheet.label,
            "values": len(self.entries),
            **counts,
            "diagnosed": sum(
                e.verdict == "wrong" and e.diagnosis is not None for e in self.entries
            ),
            "unexplained": sum(e.verdict == "wrong" and e.diagnosis is None for e in self.entries),
            "diagnoses": diagnoses,
            "rtol": self.rtol,
        }

    def to_dict(self) -> dict[str, Any]:
        return {"entries": [e.to_dict() for e in self.entries], "summary": self.summary()}

    def wrong(self) -> list[Entry]:
        return [e for e in self.entries if e.verdict == "wrong"]

    def by_name(self, name: str) -> list[Entry]:
        return [e for e in self.entries if e.name == name or e.written == name]


def _g(v: float) -> str:
    return f"{v:.6g}"


def _diag(a: Array) -> Array:
    return np.diagonal(a, axis1=1, axis2=2)


def check_rtol(rtol: float) -> float:
    """A relative tolerance must be a positive finite number."""
    if not (np.isfinite(rtol) and rtol > 0):
        raise GlassnetError("expected a positive number", got=repr(rtol), field="--rtol")
    return rtol


def check(sheet: Worksheet, *, rtol: float | None = None) -> Report:
    """Mark every value of ``sheet``."""
    if rtol is not None:
        check_rtol(rtol)
    ctx = Context.from_worksheet(sheet)
    own = sheet.own()
    given = {k: g.value for k, g in own.items()}
    # Spread for carrying rounding forward: half a unit, except where nothing was rounded
    # (x, y, W, b are the spec's; a value written equal to the right one is exact).
    half = {}
    for k, g in own.items():
        r = _diag(ctx.right[k]) if g.diagonal else ctx.right[k]
        exact = np.abs(g.value - r) <= 1e-12 * np.maximum(1.0, np.abs(r))
        half[k] = np.where(exact | (k[0] in LEAVES), 0.0, g.half)
    diagonal = {k for k, g in own.items() if g.diagonal}
    # How far each written value may legitimately sit from the right one: half a unit,
    # plus how far the step moves when its written inputs are replaced by their nearest
    # legitimate values (clipped to their own bands) — the rounding carried forward.
    band: dict[Key, Array] = {}
    clipped: dict[Key, Array] = {}
    for k in order(ctx.n_layers):
        if k not in own:
            continue
        right = ctx.right[k]
        if own[k].diagonal:
            right = _diag(right)
        if k[0] in LEAVES:
            band[k] = 0 * half[k]
        else:
            legit = Evaluator(ctx, clipped, diagonal=diagonal).compute(k)
            if own[k].diagonal:
                legit = _diag(legit)
            band[k] = own[k].half + np.abs(legit - right)
        clipped[k] = np.clip(given[k], right - band[k], right + band[k])
    report = Report(sheet, ctx, rtol=rtol)
    for g in sheet.givens:
        report.entries.extend(_mark(ctx, sheet, g, given, half, diagonal, band, clipped, rtol))
    return report


def _right(ctx: Context, g: Given) -> Array:
    return _diag(ctx.right[g.key]) if g.diagonal else ctx.right[g.key]


def _shape_like(extra: Any, g: Given) -> Array:
    extra = np.asarray(extra, dtype=np.float64)
    if g.diagonal and extra.ndim == 3:
        return _diag(extra)
    return extra


def _mark(
    ctx: Context,
    sheet: Worksheet,
    g: Given,
    given: dict[Key, Array],
    half: dict[Key, Array],
    diagonal: set[Key],
    band: dict[Key, Array],
    clipped: dict[Key, Array],
    rtol: float | None,
) -> list[Entry]:
    K = g.key
    others = {q: v for q, v in given.items() if q != K}
    ev = Evaluator(ctx, others, diagonal=diagonal)
    follows = ev.value(K)
    right = ctx.right[K]
    if g.diagonal:
        follows, right = _diag(follows), _diag(right)
    if K[0] in LEAVES:
        t_ok = t_f = g.half
    else:
        t_f = g.half + _shape_like(propagate(ctx, others, diagonal, K, half), g)
        # A copy written twice (name@tag) is held to the band of the quantity's own value.
        t_ok = np.maximum(g.half, band[K] - sheet.own()[K].half + g.half)
    if rtol is not None:
        t_ok = rtol * np.abs(right) + 1e-12
        t_f = rtol * np.abs(follows) + 1e-12
    value = g.value
    ok = np.abs(value - right) <= t_ok
    # "Follows" needs an earlier error to follow from: this number must change when the
    # written inputs that are off their bands are moved back onto them.
    back = {k: v for k, v in clipped.items() if k != K}
    mended = Evaluator(ctx, back, diagonal=diagonal).value(K)
    if g.diagonal:
        mended = _diag(mended)
    earlier_error = np.abs(mended - follows) > 1e-12 * np.maximum(1.0, np.abs(follows))
    fol = ~ok & (np.abs(value - follows) <= t_f) & earlier_error
    wrong = ~ok & ~fol
    causes = _diagnose(ctx, sheet, g, others, diagonal, right, follows, t_f, wrong, half, rtol)
    batched = K[0] not in ("W", "b", "dW", "db", "W_new", "b_new", "loss")
    entries = []
    for idx in np.ndindex(value.shape):
        shown = idx[1:] if batched and ctx.batch == 1 else idx
        verdict = "ok" if ok[idx] else "follows" if fol[idx] else "wrong"
        e = Entry(
            name=key_name(K),
            written=g.written_name,
            index=tuple(int(i) for i in shown),
            given=float(value[idx]),
            expected=float(right[idx]),
            follows_from_given=float(follows[idx]),
            verdict=verdict,
            tolerance=float(np.broadcast_to(t_ok, value.shape)[idx]),
            diagonal=g.diagonal,
        )
        if verdict == "follows":
            e.explanation = (
                f"carried forward: the right rule on your earlier values gives "
                f"{_g(e.follows_from_given)} (right: {_g(e.expected)})"
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


Cause = tuple[str, str, float, str]


def _text(ids: list[tuple[cat.Mistake, Any]], alt: float, given: float, near: bool) -> str:
    parts = []
    for m, v in ids:
        d = m.describe(v)
        parts.append(m.title + (f" ({d})" if d else ""))
    text = " + ".join(parts) + f": that rule on your own earlier values gives {_g(alt)}"
    if near:
        rel = abs(alt - given) / max(abs(given), 1e-300)
        text += f", {rel:.2%} from what is written (the rest looks like an arithmetic slip)"
    return text


def _diagnose(
    ctx: Context,
    sheet: Worksheet,
    g: Given,
    others: dict[Key, Array],
    diagonal: set[Key],
    right: Array,
    follows: Array,
    tol: Array,
    wrong: Array,
    half: dict[Key, Array],
    rtol: float | None,
) -> dict[tuple[int, ...], Cause]:
    """Name the mistake behind every wrong number of ``g`` that the catalogue reproduces."""
    causes: dict[tuple[int, ...], Cause] = {}
    if not wrong.any():
        return causes
    K = g.key
    tol = np.broadcast_to(tol, g.value.shape)
    # Every rule: a mistake in a step the person did not write shows in the later ones.
    singles = [(m, v) for m in cat.CATALOGUE.values() for v in m.variants]

    def todo() -> list[tuple[int, ...]]:
        return [i for i in np.ndindex(wrong.shape) if wrong[i] and i not in causes]

    def run(combo: list[tuple[cat.Mistake, Any]]) -> Array | None:
        ev = Evaluator(ctx, others, diagonal=diagonal, mistakes=combo)
        alt = ev.compute(K)
        if any(m.id not in ev.used for m, _ in combo):
            return None
        return _diag(alt) if g.diagonal else alt

    def hits(combo: list[tuple[cat.Mistake, Any]], alt: Array) -> list[tuple[int, ...]]:
        """Places where ``alt`` reproduces the written number: within half a unit plus
        the rounding of the written inputs carried through the *mistaken* rules."""
        # Only where the mistake changes this very number, and comes close to it.
        close = [
            i
            for i in todo()
            if abs(alt[i] - follows[i]) > 1e-12 * max(1.0, abs(follows[i]))
            and abs(g.value[i] - alt[i]) <= max(tol[i], 0.05 * abs(g.value[i]))
        ]
        if not close:
            return []
        if rtol is not None:
            t = rtol * np.abs(alt) + 1e-12
        else:
            t = g.half + _shape_like(propagate(ctx, others, diagonal, K, half, combo), g)
        t = np.broadcast_to(t, g.value.shape)
        return [i for i in close if abs(g.value[i] - alt[i]) <= t[i]]

    computed = K[0] not in LEAVES
    alts: list[tuple[list[tuple[cat.Mistake, Any]], Array]] = []

    def try_singles(chosen: list[tuple[cat.Mistake, Any]]) -> None:
        for mv in chosen:
            alt = run([mv])
            if alt is None:
                continue
            alts.append(([mv], alt))
            for idx in hits([mv], alt):
                causes[idx] = (mv[0].id, "exact", float(alt[idx]), _text([mv], alt[idx], 0, False))

    if computed:
        try_singles([mv for mv in singles if mv[0].id != "rounding"])
    for idx in todo():
        hit = cat.truncation(float(g.value[idx]), float(g.half[idx]), [right[idx], follows[idx]])
        if hit is not None:
            causes[idx] = (
                "truncation",
                "exact",
                hit,
                f"{cat.CHECKS['truncation']}: {_g(hit)} cut off at the last written digit",
            )
    for idx in todo():
        hit2 = cat.wrong_source_value(
            float(g.value[idx]), float(g.half[idx]), _sources(ctx, sheet, g, idx)
        )
        if hit2 is not None:
            causes[idx] = (
                "wrong_source_value",
                "exact",
                hit2[1],
                f"{cat.CHECKS['wrong_source_value']}: it is {hit2[0]} at the same place "
                f"({_g(hit2[1])})",
            )
    # Rounding last: it is the least specific explanation (rounding to 0 explains much).
    if computed and todo():
        try_singles([mv for mv in singles if mv[0].id == "rounding"])
    if computed and todo():
        for a, b in itertools.combinations(singles, 2):
            if a[0].id == b[0].id or "rounding" in (a[0].id, b[0].id):
                continue
            if not (a[0].wraps or b[0].wraps) and a[0].kinds & b[0].kinds:
                continue
            alt = run([a, b])
            if alt is None:
                continue
            for idx in hits([a, b], alt):
                ids = f"{a[0].id}+{b[0].id}"
                causes[idx] = (ids, "exact", float(alt[idx]), _text([a, b], alt[idx], 0, False))
            if not todo():
                break
    for idx in todo():
        best: tuple[float, list[tuple[cat.Mistake, Any]], float] | None = None
        for combo, alt in alts:
            if not combo[0][0].near_ok:
                continue
            rel = abs(g.value[idx] - alt[idx]) / max(abs(g.value[idx]), 1e-300)
            if rel <= NEAR and (best is None or rel < best[0]):
                best = (rel, combo, float(alt[idx]))
        if best is not None:
            _, combo, alt_v = best
            causes[idx] = (
                combo[0][0].id,
                "near",
                alt_v,
                _text(combo, alt_v, float(g.value[idx]), True),
            )
    return causes


def _sources(
    ctx: Context, sheet: Worksheet, g: Given, idx: tuple[int, ...]
) -> list[tuple[str, float]]:
    """Other quantities of the same shape, the person's first, then the right ones."""
    out: list[tuple[str, float]] = []
    shape = g.value.shape
    for other in sheet.givens:
        if other is g or other.key == g.key or other.value.shape != shape:
            continue
        out.append((f"your {other.written_name}", float(other.value[idx])))
    for k in order(ctx.n_layers):
        if k == g.key:
            continue
        v = ctx.right[k]
        if g.diagonal and v.ndim == 3:
            continue
        if v.shape == shape:
            name = seed_name(key_name(k), ctx.n_layers) or key_name(k)
            if k[0] in STEP_KINDS:
                name = key_name(k)
            out.append((f"the right {name}", float(v[idx])))
    return out
