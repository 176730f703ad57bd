"""The arithmetic check: is each "rule with the numbers put in" line of an explain
document true arithmetic?

A :class:`~glassnet.explain.document.Calculation` block reads ``lhs = rule = numbers =
result``.  This module evaluates the "numbers" line from the numbers *as printed* (each
one standing for every value that rounds to it: an interval of ± half a unit in its last
shown digit) and tests that the printed result is within that reach.  It walks the
expression tree but shares no arithmetic with glassnet: the evaluation is plain interval
arithmetic written here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from glassnet.mathtree import (
    Const,
    Deriv,
    Dots,
    Exp,
    Frac,
    Func,
    Matrix,
    Node,
    Num,
    Op,
    Paren,
    Pow,
    Row,
    SumOver,
    Sym,
    Text,
)


class Unevaluable(Exception):
    """A line with an elision mark (⋯): not every term is on the page."""


@dataclass
class Iv:
    """An interval [lo, hi] (arrays of the same shape: a scalar, a row, a matrix)."""

    lo: np.ndarray
    hi: np.ndarray

    @staticmethod
    def exact(v: float | np.ndarray) -> Iv:
        a = np.asarray(v, dtype=float)
        return Iv(a, a.copy())

    def __add__(self, o: Iv) -> Iv:
        return Iv(self.lo + o.lo, self.hi + o.hi)

    def __sub__(self, o: Iv) -> Iv:
        return Iv(self.lo - o.hi, self.hi - o.lo)

    def __neg__(self) -> Iv:
        return Iv(-self.hi, -self.lo)

    def __mul__(self, o: Iv) -> Iv:
        c = np.stack(
            np.broadcast_arrays(self.lo * o.lo, self.lo * o.hi, self.hi * o.lo, self.hi * o.hi)
        )
        return Iv(c.min(axis=0), c.max(axis=0))

    def matmul(self, o: Iv) -> Iv:
        a, b = Iv(self.lo[:, :, None], self.hi[:, :, None]), Iv(o.lo[None], o.hi[None])
        p = a * b
        return Iv(p.lo.sum(axis=1), p.hi.sum(axis=1))

    def recip(self) -> Iv:
        if np.any((self.lo <= 0) & (self.hi >= 0)):
            raise AssertionError("division by an interval holding 0")
        return Iv(1 / self.hi, 1 / self.lo)

    def mono(self, f) -> Iv:
        """f applied to an increasing function's argument."""
        return Iv(f(self.lo), f(self.hi))

    def hull(self, o: Iv) -> Iv:
        return Iv(np.minimum(self.lo, o.lo), np.maximum(self.hi, o.hi))


@dataclass(frozen=True)
class Precision:
    """How numbers are printed: ``digits`` significant digits, or ``decimals`` decimals
    (hand mode: then the printed numbers are exactly the values the engine used)."""

    digits: int
    decimals: int | None = None

    def half_unit(self, text: str) -> float:
        """Half a unit in the last digit the mode keeps (not only the last digit printed:
        a mode may drop trailing zeros)."""
        d = Decimal(text)
        if self.decimals is not None:
            return 0.5 * 10.0**-self.decimals
        if d == 0:
            return 0.0
        last_printed = Decimal(1).scaleb(d.as_tuple().exponent)
        last_kept = Decimal(1).scaleb(d.adjusted() - self.digits + 1)
        return float(min(last_printed, last_kept)) / 2

    def printed(self, text: str) -> Iv:
        """Every value that prints as ``text``."""
        v, h = float(text), self.half_unit(text)
        return Iv(np.asarray(v - h), np.asarray(v + h))


_FUNCS = {
    "ln": np.log,
    "tanh": np.tanh,
    "exp": np.exp,
    "erf": np.vectorize(math.erf),
    "sign": np.sign,  # non-decreasing
    # A circuit's sums (of every element, of each column, of each row): increasing in
    # every element, so the bounds' sums bound the sum.
    "sum": np.sum,
    "colsum": lambda a: np.sum(a, axis=0, keepdims=True),
    "rowsum": lambda a: np.sum(a, axis=1, keepdims=True),
}


def evaluate(node: Node, prec: Precision, *, exact: bool = False) -> Iv:
    """The value of a numbers line; ``exact``: printed numbers are the values used
    (hand mode, where the engine itself computed with the printed values)."""

    def ev(n: Node) -> Iv:
        return evaluate(n, prec, exact=exact)

    if isinstance(node, Num):
        return Iv.exact(float(node.text)) if exact else prec.printed(node.text)
    if isinstance(node, Const):
        return Iv.exact(node.value if node.value is not None else float(node.text))
    if isinstance(node, Paren):
        return ev(node.inner)
    if isinstance(node, Frac):
        return ev(node.num) * ev(node.den).recip()
    if isinstance(node, Exp):
        return ev(node.power).mono(np.exp)
    if isinstance(node, Pow) and float(node.power) != int(float(node.power)):
        # A fractional power (a circuit's x ** 1.5): increasing on x ≥ 0, its domain.
        p = float(node.power)
        base = ev(node.base)
        if np.any(base.lo < 0):
            raise AssertionError(f"a fractional power of an interval below 0: {node!r}")
        return base.mono(lambda v: v**p) if p > 0 else Iv(base.hi**p, base.lo**p)
    if isinstance(node, Pow):
        base, k = ev(node.base), int(float(node.power))
        lo, hi = base.lo**k, base.hi**k
        c = np.stack([lo, hi])
        low = c.min(axis=0)
        if k % 2 == 0:
            low = np.where((base.lo <= 0) & (base.hi >= 0), 0.0, low)
        return Iv(low, c.max(axis=0))
    if isinstance(node, Func):
        if node.name in ("max", "min"):
            # any number of arguments (a max-pooling window's cells)
            args = [ev(a) for a in _split(node.arg, ", ")]
            pick = np.maximum if node.name == "max" else np.minimum
            out = args[0]
            for b in args[1:]:
                out = Iv(pick(out.lo, b.lo), pick(out.hi, b.hi))
            return out
        if node.name == "abs":  # not monotone: fold the interval at 0
            a = ev(node.arg)
            lo = np.where(a.lo >= 0, a.lo, np.where(a.hi <= 0, -a.hi, 0.0))
            return Iv(lo, np.maximum(np.abs(a.lo), np.abs(a.hi)))
        return ev(node.arg).mono(_FUNCS[node.name])
    if isinstance(node, Matrix):
        if any(isinstance(c, Dots) for r in node.rows for c in r):
            raise Unevaluable
        cells = [[ev(c) for c in r] for r in node.rows]
        return Iv(
            np.array([[float(c.lo) for c in r] for r in cells]),
            np.array([[float(c.hi) for c in r] for r in cells]),
        )
    if isinstance(node, Row):
        return _row(list(node.items), ev)
    if isinstance(node, Dots):
        raise Unevaluable
    if isinstance(node, Sym | Deriv | SumOver):
        raise AssertionError(f"a symbol left in a numbers line: {node!r}")
    raise AssertionError(f"cannot evaluate {node!r}")


def _split(node: Node, sep: str) -> list[Node]:
    assert isinstance(node, Row), node
    parts: list[list[Node]] = [[]]
    for item in node.items:
        if isinstance(item, Text) and item.text == sep:
            parts.append([])
        else:
            parts[-1].append(item)
    return [p[0] if len(p) == 1 else Row(tuple(p)) for p in parts]


def _row(items: list[Node], ev) -> Iv:
    """A row: "A if c > d, otherwise B", or terms joined by + − · ×."""
    texts = [k for k, i in enumerate(items) if isinstance(i, Text)]
    if texts:
        k_if = next(k for k in texts if items[k].text.strip() == "if")  # type: ignore[attr-defined]
        k_else = next(k for k in texts if items[k].text == ", otherwise ")  # type: ignore[attr-defined]
        then, cond, other = items[:k_if], items[k_if + 1 : k_else], items[k_else + 1 :]
        k_gt = next(k for k, i in enumerate(cond) if isinstance(i, Op) and i.tex == ">")
        left, right = _row(cond[:k_gt], ev), _row(cond[k_gt + 1 :], ev)
        a, b = _row(then, ev), _row(other, ev)
        if np.all(left.lo > right.hi):
            return a
        if np.all(left.hi <= right.lo):
            return b
        return a.hull(b)  # the printed numbers cannot tell which branch: either holds
    # Precedence: · and × before + and −; a leading − negates the first factor.
    terms: list[tuple[int, Iv]] = []
    sign, product = 1, None
    k = 0
    pending_mul = None
    while k < len(items):
        it = items[k]
        if isinstance(it, Op) and it.tex in ("+", "-"):
            if product is not None:
                terms.append((sign, product))
                product = None
            sign = 1 if it.tex == "+" else -1
        elif isinstance(it, Op) and it.tex in (r"\cdot", r"\times"):
            pending_mul = it.tex
        else:
            v = ev(it)
            if product is None:
                product = v
            elif pending_mul == r"\times":
                product = product.matmul(v)
            else:
                product = product * v
            pending_mul = None
        k += 1
    assert product is not None, items
    terms.append((sign, product))
    total = None
    for s, v in terms:
        v = v if s > 0 else -v
        total = v if total is None else total + v
    return total


def holds(subst: Node, result: Node, prec: Precision) -> tuple[bool, str]:
    """Does the numbers line reach the printed result?  (ok, a description)."""
    got = evaluate(subst, prec, exact=prec.decimals is not None)
    shown = evaluate(result, prec)  # the result stands for every value that prints so
    ok = bool(np.all(got.lo <= shown.hi + 1e-12) and np.all(shown.lo - 1e-12 <= got.hi))
    return ok, f"numbers give [{got.lo}, {got.hi}], shown [{shown.lo}, {shown.hi}]"
