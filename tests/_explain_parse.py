"""Reading an explain document back, for the tests: our own small LaTeX scanner and
MathML walker (sharing no code with glassnet.explain), and a resolver that maps the
seed's notation (h1_in1, W_i1j1, ∂E/∂O_out2, ...) to a value source laid out like a
Trace (the trace itself, or the tests' own hand computation).

A document line "rule = numbers" is checked leaf by leaf: the numbers must be the
values of the symbols at the same places, at the precision shown.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

LETTERS = "ijklmnpqrstuvwxyz"  # the seed's index letters: input i, then j, k, l, ...


@dataclass(frozen=True)
class Leaf:
    kind: str  # "num", "sym" or "dots"
    text: str


# -- LaTeX -------------------------------------------------------------------------------


def _group(s: str, i: int) -> tuple[str, int]:
    """The brace group starting at s[i] == '{' -> (content, index after it)."""
    assert s[i] == "{", (s[i:], i)
    depth = 0
    for k in range(i, len(s)):
        if s[k] == "{":
            depth += 1
        elif s[k] == "}":
            depth -= 1
            if depth == 0:
                return s[i + 1 : k], k + 1
    raise ValueError(f"unbalanced braces in {s!r}")


def _canon_sub(text: str) -> str:
    return re.sub(r"\\mathrm\{([^{}]*)\}", r"\1", text).replace("{", "").replace("}", "")


_NUM = re.compile(r"-?\d+(?:\.\d+)?")
_SCI = re.compile(r"\{\\times\}10\^\{(-?\d+)\}")


def tex_leaves(s: str) -> list[Leaf]:
    """Numbers, symbols and elision marks of a LaTeX expression, in reading order."""
    out: list[Leaf] = []
    i = 0
    while i < len(s):
        c = s[i]
        if c == "\\":
            m = re.match(r"\\([A-Za-z]+|.)", s[i:])
            assert m
            cmd = m.group(1)
            i += len(m.group(0))
            if cmd == "frac":
                a, i = _group(s, i)
                b, i = _group(s, i)
                if a.startswith(r"\partial") and b.startswith(r"\partial"):
                    top, bottom = _sym_text(a[len(r"\partial") :]), _sym_text(b[len(r"\partial") :])
                    out.append(Leaf("sym", f"d({top})/d({bottom})"))
                else:
                    out += tex_leaves(a) + tex_leaves(b)
            elif cmd in ("text", "begin", "end", "mathrm"):
                _, i = _group(s, i)
            elif cmd == "delta":  # δh1_{2}: the δ of unit 2 of layer h1
                m = re.match(r"\s*([A-Za-z]+\d*)", s[i:])
                assert m, s[i:]
                i += len(m.group(0))
                sym, i = _sym_rest(s, i, "δ" + m.group(1))
                out.append(Leaf("sym", sym))
            elif cmd == "mathit":
                name, i = _group(s, i)
                sym, i = _sym_rest(s, i, name)
                out.append(Leaf("sym", sym))
            elif cmd in ("left", "right"):
                i += 1  # the delimiter
            elif cmd in ("cdots", "vdots", "ddots"):
                out.append(Leaf("dots", cmd))
            elif cmd == "sum" and s.startswith("_{", i):
                _, i = _group(s, i + 1)  # the summation index
            # \cdot, \times, \ln, \max, \tanh, \\ ...: operators, no leaf
        elif c.isdigit() or (c == "-" and i + 1 < len(s) and s[i + 1].isdigit()):
            m = _NUM.match(s, i)
            assert m
            text = m.group(0)
            i = m.end()
            sci = _SCI.match(s, i)
            if sci:
                text += "e" + sci.group(1)
                i = sci.end()
            out.append(Leaf("num", text))
        elif c.isalpha():
            m = re.match(r"[A-Za-z]+\d*", s[i:])
            assert m
            i += len(m.group(0))
            sym, i = _sym_rest(s, i, m.group(0))
            out.append(Leaf("sym", sym))
        else:
            i += 1
    return out


def _sym_rest(s: str, i: int, name: str) -> tuple[str, int]:
    """Read an identifier's prime, subscript and [sample] after it."""
    if i < len(s) and s[i] == "'":
        name += "'"
        i += 1
    if s.startswith("_{", i):
        sub, i = _group(s, i + 1)
        name += "_" + _canon_sub(sub)
    m = re.match(r"\[(\d+)\]", s[i:])
    if m:
        name += f"^({m.group(1)})"
        i += len(m.group(0))
    return name, i


def _sym_text(s: str) -> str:
    s = s.strip()
    leaves = tex_leaves(s)
    assert len(leaves) == 1 and leaves[0].kind == "sym", s
    return leaves[0].text


def markdown_blocks(md: str) -> list[list[list[Leaf]]]:
    """Every display equation of a Markdown document as a list of sides (leaf lists).

    A derivation (aligned) gives [lhs, rule, numbers, (steps,) result]; an equation its sides.
    """
    blocks = []
    for body in re.findall(r"^\$\$\n(.*?)\n\$\$$", md, flags=re.S | re.M):
        if body.startswith(r"\begin{aligned}"):
            lines = body.split("\n")[1:-1]
            lines = [ln.rstrip().removesuffix("\\\\").strip() for ln in lines]
            lhs, rule = lines[0].split("&=", 1)
            sides = [lhs, rule] + [ln.removeprefix("&=") for ln in lines[1:]]
            blocks.append([tex_leaves(x) for x in sides] + [[Leaf("kind", "derivation")]])
        else:
            blocks.append([tex_leaves(x) for x in body.split(" = ")])
    return blocks


# -- MathML ------------------------------------------------------------------------------

_FUNCS = {"ln", "max", "tanh", "e"}


def _text(el: ET.Element) -> str:
    return "".join(el.itertext()).replace("\u2212", "-").strip()


def _mml_sym(el: ET.Element) -> str:
    tag = el.tag
    kids = list(el)
    if tag == "msub":
        return _mml_sym(kids[0]) + "_" + _text(kids[1])
    if tag == "msubsup" and _text(kids[2]) == "\u2032":  # W′ with its subscript
        return _mml_sym(kids[0]) + "'_" + _text(kids[1])
    if tag == "msubsup":
        return _mml_sym(kids[0]) + "_" + _text(kids[1]) + "^" + _text(kids[2])
    if tag == "msup" and _text(kids[1]) == "\u2032":
        return _mml_sym(kids[0]) + "'"
    if tag == "msup":
        return _mml_sym(kids[0]) + "^" + _text(kids[1])
    return _text(el)


def _is_symbol(el: ET.Element) -> bool:
    if el.tag == "mi":
        return _text(el) not in _FUNCS
    if el.tag in ("msub", "msubsup"):
        return True
    if el.tag == "msup":
        kids = list(el)
        if kids[0].tag == "mi" and _text(kids[0]) == "e":
            return False  # e to a power
        return _text(kids[1]) == "\u2032" or _text(kids[1]).startswith("(")
    if el.tag == "mrow" and [k.tag for k in el] == ["mi", "mn"]:
        return True  # h1, h2: a letter and a layer number
    return False


def mml_leaves(el: ET.Element) -> list[Leaf]:
    tag = el.tag
    if tag == "mn":
        return [Leaf("num", _text(el))]
    if tag == "mrow" and el.get("class") == "sci":
        mant, _, power = list(el)
        return [Leaf("num", f"{_text(mant)}e{_text(list(power)[1])}")]
    kids = list(el)
    if (
        tag == "mrow"
        and len(kids) == 4
        and kids[1].tag == "mo"
        and _text(kids[1]) == "["
        and _is_symbol(kids[0])
    ):  # h1_in2[1]: the symbol of sample 1
        return [Leaf("sym", f"{_mml_sym(kids[0])}^({_text(kids[2])})")]
    if _is_symbol(el):
        return [Leaf("sym", _mml_sym(el))]
    if tag == "mfrac":
        a, b = list(el)
        ka, kb = list(a), list(b)
        if ka and kb and _text(ka[0]) == "\u2202" and _text(kb[0]) == "\u2202":
            (top,), (bottom,) = mml_leaves(ka[1]), mml_leaves(kb[1])
            return [Leaf("sym", f"d({top.text})/d({bottom.text})")]
        return mml_leaves(a) + mml_leaves(b)
    if tag == "mo":
        t = _text(el)
        return [Leaf("dots", t)] if t in ("\u22ef", "\u22ee", "\u22f1") else []
    if tag in ("mtext", "mi", "munder"):
        return []
    out: list[Leaf] = []
    for k in el:
        out += mml_leaves(k)
    return out


def html_blocks(html: str) -> list[list[list[Leaf]]]:
    """Every display <math> of an HTML page as sides, like :func:`markdown_blocks`."""
    blocks = []
    for src in re.findall(r'<math display="block">.*?</math>', html, flags=re.S):
        root = ET.fromstring(src.replace("&nbsp;", "\u00a0"))
        table = root.find("mtable")
        if table is not None and "derivation" in (table.get("class") or "").split():
            sides: list[list[Leaf]] = []
            for k, tr in enumerate(table.findall("mtr")):
                left, right = tr.findall("mtd")
                if k == 0:
                    sides.append(mml_leaves(left))
                line = next(iter(right))
                sides.append(mml_leaves(ET.Element("mrow")) + _after_eq(line))
            blocks.append([*sides, [Leaf("kind", "derivation")]])
        else:
            (top,) = list(root)
            parts: list[list[Leaf]] = [[]]
            for k in _top_items(top):
                if k.tag == "mo" and _text(k) == "=":
                    parts.append([])
                else:
                    parts[-1] += mml_leaves(k)
            blocks.append(parts)
    return blocks


def _top_items(row: ET.Element) -> list[ET.Element]:
    """A line's items, an "=" glued to the item after it (``<mrow class="nb">``, kept
    on one line with it) taken out as an item of its own."""
    out: list[ET.Element] = []
    for k in row:
        kids = list(k)
        if k.get("class") == "nb" and kids and kids[0].tag == "mo" and _text(kids[0]) == "=":
            out += kids
        else:
            out.append(k)
    return out


def _after_eq(line: ET.Element) -> list[Leaf]:
    kids = _top_items(line)
    assert kids[0].tag == "mo" and _text(kids[0]) == "="
    out: list[Leaf] = []
    for k in kids[1:]:
        out += mml_leaves(k)
    return out


# -- resolving symbols -------------------------------------------------------------------


class Resolver:
    """Values of seed-notation symbols, from anything shaped like a Trace."""

    def __init__(self, trace) -> None:  # a Trace or a look-alike
        self.t = trace
        self.L = len(trace.layers)

    def _layer_of(self, base: str) -> int:
        return self.L if base == "O" else int(base[1:])

    def _delta(self, text: str) -> float | None:
        """δh1_2^(s): ∂E/∂(input 2 of layer h1) of sample s."""
        m = re.fullmatch(r"δ(O|h\d+)_(\d+)(?:\^\((\d+)\))?", text)
        if not m:
            return None
        s = int(m.group(3)) - 1 if m.group(3) else 0
        return self.t.layers[self._layer_of(m.group(1)) - 1].delta[s][int(m.group(2)) - 1]

    def _exp_sum(self, text: str) -> float | None:
        """S^(s): the sum of e^z over the (softmax) output layer's inputs, by math.exp."""
        m = re.fullmatch(r"S(?:\^\((\d+)\))?", text)
        if not m:
            return None
        s = int(m.group(1)) - 1 if m.group(1) else 0
        return sum(math.exp(float(v)) for v in self.t.layers[-1].z[s])

    def _unit(self, text: str):  # -> (layer, kind, unit, sample)
        m = re.fullmatch(r"(I|O|h\d+)(?:_(in|out)?(\d+))(?:\^\((\d+)\))?", text)
        if not m:
            return None
        base, kind, u, s = m.groups()
        s = int(s) - 1 if s else 0
        layer = 0 if base == "I" else self._layer_of(base)
        return layer, kind or "out", int(u) - 1, s

    def value(self, text: str) -> float:
        t = self.t
        for special in (self._delta(text), self._exp_sum(text)):
            if special is not None:
                return special
        unit = self._unit(text)
        if unit:
            layer, kind, u, s = unit
            if layer == 0:
                return t.x[s][u]
            lt = t.layers[layer - 1]
            return (lt.z if kind == "in" else lt.a)[s][u]
        m = re.fullmatch(r"W('?)_([a-z])(\d+)([a-z])(\d+)", text)
        if m:
            lt = t.layers[LETTERS.index(m.group(4)) - 1]
            assert LETTERS.index(m.group(2)) == LETTERS.index(m.group(4)) - 1
            return (lt.W_new if m.group(1) else lt.W)[int(m.group(3)) - 1][int(m.group(5)) - 1]
        m = re.fullmatch(r"b('?)_([a-z])(\d+)", text)
        if m:
            lt = t.layers[LETTERS.index(m.group(2)) - 1]
            return (lt.b_new if m.group(1) else lt.b)[int(m.group(3)) - 1]
        m = re.fullmatch(r"(y|E)_(\d+)(?:\^\((\d+)\))?", text)
        if m:
            s = int(m.group(3)) - 1 if m.group(3) else 0
            src = t.y if m.group(1) == "y" else t.loss_terms
            return src[s][int(m.group(2)) - 1]
        if text == "E":
            return t.loss
        if text == "lr":
            return t.lr
        if text == "B":
            return len(t.x)
        if text == "m":
            return len(t.y[0])
        m = re.fullmatch(r"d\((.*)\)/d\((.*)\)", text)
        if m:
            return self._derivative(m.group(1), m.group(2))
        raise AssertionError(f"unknown symbol {text!r}")

    def _derivative(self, top: str, bottom: str) -> float:
        t = self.t
        if top == "E":
            unit = self._unit(bottom)
            if unit:
                layer, kind, u, s = unit
                lt = t.layers[layer - 1]
                return (lt.dL_da if kind == "out" else lt.delta)[s][u]
            m = re.fullmatch(r"W_([a-z])(\d+)([a-z])(\d+)", bottom)
            if m:
                lt = t.layers[LETTERS.index(m.group(3)) - 1]
                return lt.dW[int(m.group(2)) - 1][int(m.group(4)) - 1]
            m = re.fullmatch(r"b_([a-z])(\d+)", bottom)
            assert m, bottom
            return t.layers[LETTERS.index(m.group(1)) - 1].db[int(m.group(2)) - 1]
        m = re.fullmatch(r"W_([a-z])(\d+)([a-z])(\d+)", bottom)
        if m:  # ∂(a unit's input)/∂(a weight into it): the output that weight multiplies
            z_unit = self._unit(top)
            assert z_unit and z_unit[1] == "in" and z_unit[2] == int(m.group(4)) - 1, top
            source = LETTERS.index(m.group(1))
            values = t.x if source == 0 else t.layers[source - 1].a
            return values[z_unit[3]][int(m.group(2)) - 1]
        a, z = self._unit(top), self._unit(bottom)
        assert a and z and a[0] == z[0] and a[1] == "out" and z[1] == "in", (top, bottom)
        lt = t.layers[a[0] - 1]
        d = lt.da_dz[a[3]]
        if len(getattr(d, "shape", ())) == 2 or isinstance(d[0], list | tuple):
            return d[a[2]][z[2]]
        assert a[2] == z[2], "an elementwise derivative off the diagonal"
        return d[a[2]]


# -- checking ----------------------------------------------------------------------------


def shown_equal(text: str, value: float, *, digits: int | None, decimals: int | None) -> bool:
    """True when ``text`` is ``value`` at the shown precision."""
    got = float(text)
    value = float(value)
    if decimals is not None:
        return abs(got - value) <= 0.5 * 10.0**-decimals * (1 + 1e-9) + 1e-12
    if value == 0:
        return got == 0
    assert digits is not None
    unit = 10.0 ** (math.floor(math.log10(abs(value))) - digits + 1)
    return abs(got - value) <= 0.5 * unit * (1 + 1e-9)


@dataclass
class Report:
    checked: int = 0
    symbols: set[str] | None = None


def _specific(leaf: Leaf) -> bool:
    """A symbol naming one recorded value (h1_in1), not a general rule's (h1_inj)."""
    if leaf.kind != "sym":
        return False
    m = re.fullmatch(r"d\((.*)\)/d\((.*)\)", leaf.text)
    if m:
        return _specific(Leaf("sym", m.group(2)))
    head, _, sub = leaf.text.partition("_")
    return bool(re.search(r"\d", sub)) if sub else head in ("lr", "B", "m")


def check_blocks(
    blocks: list[list[list[Leaf]]],
    resolver: Resolver,
    *,
    digits: int | None,
    decimals: int | None,
    special: dict[str, float] | None = None,
) -> Report:
    """Check every number of every block against the symbol at its place.

    ``special``: a value for a derivation whose rule is written in other symbols
    (the p − y line), keyed by its left-hand side.
    """
    report = Report(symbols=set())

    def pair(sym_side: list[Leaf], num_side: list[Leaf], where: str) -> None:
        assert len(sym_side) == len(num_side), f"{where}: {sym_side} vs {num_side}"
        for s, n in zip(sym_side, num_side, strict=True):
            if s.kind == "dots":
                assert n.kind == "dots", where
                continue
            assert n.kind == "num", f"{where}: {n} where a number belongs"
            if s.kind == "num":  # a constant of the rule
                assert float(s.text) == float(n.text), where
                continue
            v = resolver.value(s.text)
            assert shown_equal(n.text, v, digits=digits, decimals=decimals), (
                f"{where}: {s.text} shown as {n.text}, value {v!r}"
            )
            report.checked += 1
            report.symbols.add(re.sub(r"\d+", "#", s.text))  # type: ignore[union-attr]

    def numeric(side: list[Leaf]) -> bool:
        return bool(side) and all(x.kind in ("num", "dots") for x in side)

    for block in blocks:
        where = repr(block)[:300]
        if block[-1] == [Leaf("kind", "derivation")]:
            lhs, rule, subst, *_, result = block[:-1]  # lines between: worked steps
            if any(x.kind == "sym" for x in rule):
                pair(rule, subst, where)
            else:
                assert rule == subst, where
            if special and len(lhs) == 1 and lhs[0].text in special and "y_" in str(rule):
                assert shown_equal(
                    result[0].text, special[lhs[0].text], digits=digits, decimals=decimals
                ), where
                report.checked += 1
            else:
                pair(lhs, result, where)
            continue
        for k, side in enumerate(block):
            if not numeric(side):
                continue
            partners = [s for s in block[:k] if len(s) == len(side) and any(map(_specific, s))]
            if not partners and not any(map(_specific, block[0])):
                # A general rule with a constant value (the identity's derivative is 1).
                assert all(x.kind == "num" and float(x.text) in (0, 1) for x in side), where
                continue
            assert partners, f"numbers with no symbols to stand for: {where}"
            pair(partners[-1], side, where)
    return report


def shortcut_values(trace) -> dict[str, float]:  # a Trace
    """The p − y line's values, keyed by its left-hand side: that line's result is
    trace.output_delta_shortcut, which equals delta up to rounding in hand mode."""
    out: dict[str, float] = {}
    if trace.output_delta_shortcut is None:
        return out
    batch, n_out = trace.y.shape
    for s in range(batch):
        for j in range(n_out):
            mark = f"^({s + 1})" if batch > 1 else ""
            out[f"δO_{j + 1}{mark}"] = trace.output_delta_shortcut[s, j]
    return out
