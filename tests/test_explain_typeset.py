"""Issue 26, typesetting: an updated parameter's prime is one script element with its
subscript (MathML ``msubsup``/``msup``), a line wraps only between terms (never inside a
row vector, never between a sign or a parenthesis and its number), and on a phone the
matrix forms keep the body text's size and nothing overflows, even at ``--digits 9``.
The layout checks run in Chromium."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.explain import derive, explain
from glassnet.layers import Dense
from glassnet.mathtree import Sym, mml

CHROMIUM = "/usr/bin/chromium"


def _wide_trace():
    """A 4-6-3 tanh/softmax network on a batch of 2."""
    rng = np.random.default_rng(7)
    layers = [
        Dense(rng.normal(size=(4, 6)), rng.normal(size=6) - 0.5, "tanh"),
        Dense(rng.normal(size=(6, 3)), rng.normal(size=3) - 0.5, "softmax"),
    ]
    x = rng.normal(size=(2, 4))
    return gn.trace_step(gn.Network(layers), x, np.eye(3)[[0, 2]], loss="cross_entropy", lr=0.1)


def _maths(html: str) -> list[ET.Element]:
    return [
        ET.fromstring(m.replace("&nbsp;", "\u00a0"))
        for m in re.findall(r"<math[ >].*?</math>", html, flags=re.S)
    ]


def test_a_prime_is_one_script_element_with_its_subscript() -> None:
    trace = gn.load_spec("seed").trace()
    html = explain(trace, format="html")
    primed_subscripted = 0
    for math in _maths(html):
        for el in math.iter():
            kids = list(el)
            if el.tag == "msub":
                # Never a prime first and the subscript pushed past it.
                assert kids[0].tag != "msup", ET.tostring(el, encoding="unicode")
            if el.tag == "msubsup" and "".join(kids[2].itertext()) == "\u2032":
                assert "".join(kids[0].itertext()) in ("W", "b")
                primed_subscripted += 1
    n_weights = sum(lt.W.size for lt in trace.layers)
    assert primed_subscripted >= n_weights  # every W′ of the update boxes at least
    # Without a subscript (E′, the error after the step): an msup of E and the prime.
    e_new = ET.fromstring(mml(Sym("E", prime=True)))
    assert e_new.tag == "msup" and [k.tag for k in e_new] == ["mi", "mo"]
    assert "".join(e_new.itertext()) == "E\u2032"


def test_lines_wrap_only_between_terms() -> None:
    """A wrapping line's items (``mrow.wrap``'s children) are whole terms: no operator,
    no parenthesis stands alone (each is glued to its term), a row vector is one item.
    (A line that is only "= result" keeps its "=" apart: it has nowhere to wrap.)"""
    pages = [
        explain(gn.load_spec("seed").trace(), format="html"),
        explain(_wide_trace(), format="html", digits=9),
        explain(_wide_trace(), format="html", notation="columns"),
    ]
    seen_vectors = 0
    for html in pages:
        for math in _maths(html):
            for row in math.iter("mrow"):
                if row.get("class") != "wrap":
                    continue
                items = list(row)
                if len(items) == 2 and "".join(items[0].itertext()) == "=":
                    items = items[1:]  # "= result": nothing else on the line
                for item in items:
                    assert item.tag != "mo", ET.tostring(row, encoding="unicode")[:300]
                    if item.get("class") == "cell":
                        raise AssertionError("a vector's cell is a wrapping item")
            seen_vectors += sum(1 for r in math.iter("mrow") if r.get("class") == "vec")
    assert seen_vectors > 50
    # "(−0.5)" is one glued item: the parenthesis and the negative number together.
    assert re.search(r'<mrow class="nb"><mo fence="true">\(</mo><mn>−[\d.]+</mn>', pages[0])


# -- in Chromium -------------------------------------------------------------------------

#: Every shown row vector: is its last cell on the line of its first?  (Centres within
#: half a cell's height: cells of different heights are centred on one line.)  And the
#: size of the numbers in every matrix and vector against the body text's.
LAYOUT_JS = """() => {
  const vecs = [...document.querySelectorAll('mrow.vec')].filter(v => v.checkVisibility());
  const split = vecs.filter(v => {
    const c = v.querySelectorAll(':scope > mrow.cell');
    if (c.length < 2) return false;
    const a = c[0].getBoundingClientRect(), b = c[c.length - 1].getBoundingClientRect();
    return Math.abs((a.top + a.bottom) - (b.top + b.bottom)) / 2 > Math.min(a.height, b.height) / 2;
  }).map(v => v.textContent.slice(0, 60));
  const nums = [...document.querySelectorAll('mrow.matrix mtd > mn, mrow.vec > mrow.cell > mn')]
    .filter(m => m.checkVisibility()).map(m => parseFloat(getComputedStyle(m).fontSize));
  const body = parseFloat(getComputedStyle(document.querySelector('main p')).fontSize);
  const boxes = [...document.querySelectorAll('.step, .eq, figure, details, table, p')];
  const root = document.documentElement;
  return {vectors: vecs.length, split, smallest: Math.min(...nums), body,
          page: root.scrollWidth - root.clientWidth,
          over: boxes.filter(b => b.scrollWidth > b.clientWidth + 1)
                     .map(b => b.textContent.replace(/\\s+/g, ' ').slice(0, 60))};
}"""


def test_vectors_whole_matrices_legible_nothing_overflows(tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}")
    pages = {
        "seed": explain(gn.load_spec("seed").trace(), format="html"),
        "wide": explain(_wide_trace(), format="html"),
        "wide-9": explain(_wide_trace(), format="html", digits=9),
        "seed-9-columns": explain(
            gn.load_spec("seed").trace(), format="html", digits=9, notation="columns"
        ),
    }
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for name, html in pages.items():
                path = tmp_path / f"{name}.html"
                path.write_text(html, encoding="utf-8")
                for width in (360, 390, 1280):
                    page = browser.new_page(viewport={"width": width, "height": 800})
                    page.goto(path.as_uri())
                    # Every folded part opened: what a reader may open must fit too.
                    page.evaluate(
                        "document.querySelectorAll('details').forEach(d => d.open = true)"
                    )
                    r = page.evaluate(LAYOUT_JS)
                    page.close()
                    # Columns notation writes vectors as columns: only the Jacobian's rows.
                    assert r["vectors"] > (0 if "columns" in name else 20), name
                    assert r["split"] == [], (name, width, r["split"][:3])
                    assert r["smallest"] >= r["body"], (name, width, r["smallest"], r["body"])
                    assert r["page"] <= 0 and r["over"] == [], (name, width, r["over"][:3])
        finally:
            browser.close()


# -- every formula as maths ----------------------------------------------------------------

#: What marks a formula written as plain text: a power, a fraction bar before a
#: bracket, a square, a partial derivative, a product dot, an elementwise product.
PLAIN_FORMULA = re.compile(r"\^|/\(|²|∂|·|⊙")


def _open_words(blocks) -> list[str]:
    """The words of every paragraph shown open (folded "why" texts excepted)."""
    from glassnet.explain.document import Collapsed, Para

    out: list[str] = []
    for block in blocks:
        if isinstance(block, Para):
            out += [p for p in block.parts if isinstance(p, str)]
        elif isinstance(block, Collapsed) and not block.summary.startswith("Why"):
            out += _open_words(block.blocks)
    return out


def test_every_formula_is_maths_not_plain_text() -> None:
    """No paragraph writes a formula as text ("the sigmoid 1/(1 + e^−x)", "½(y − O_out)²",
    "∂(input)/∂W"): each is maths beside the words.  Every activation and loss; ELU's
    derivative sentence ("α·e^x otherwise", its plugin's words) is the one left."""
    from helpers import COMBOS, HIDDEN, MAZUR, random_trace

    traces = [gn.load_spec("seed").trace(), gn.parse_spec(MAZUR, "m").trace(), _wide_trace()]
    traces += [
        random_trace(hidden, out, loss, 1, seed=3)
        for hidden in HIDDEN
        for loss, out in COMBOS
        if "elu" not in (hidden, out)
    ]
    for trace in traces:
        doc = derive(trace).document
        for sec in doc.sections:
            for words in _open_words(sec.blocks):
                assert not PLAIN_FORMULA.search(words), (sec.title, words)
