"""Issue 16, the rest of the handout: the column-vector notation beside the seed's rows,
the seed tutorial's own errata written where they happen (from check's catalogue), the
softmax computed the way a person does it by hand, δ as a symbol, and batch samples in
brackets.

References: the arithmetic of every "numbers put in" line is checked by plain interval
arithmetic (tests/_explain_arith.py, sharing no code with glassnet); the column layout by
the spec's own ``layout = "to_from"`` reader; e^z by ``math.exp``; the errata by
``glassnet check``'s report and catalogue.
"""

from __future__ import annotations

import dataclasses
import math
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from _explain_arith import Precision, Unevaluable, holds

import glassnet as gn
from glassnet.check import CATALOGUE, check_worksheet, errata
from glassnet.check.worksheet import split_tags
from glassnet.cli import main
from glassnet.explain import derive, explain
from glassnet.explain.document import Calculation, Equation, Erratum
from glassnet.layers import Dense
from glassnet.mathtree import Deriv, Matrix, Node, Num, Sym, tex
from glassnet.spec import weights_from_layout

from helpers import COMBOS, HIDDEN, random_trace


def _random_trace(hidden: str, out: str, loss: str, batch: int, seed: int, round_to=None):
    """A 3-4-2 network's step (two outputs: the columns form differs from the rows)."""
    return random_trace(hidden, out, loss, batch, seed, round_to, sizes=(3, 4, 2))


def _children(node: Node) -> Iterator[Node]:
    for f in dataclasses.fields(node):  # type: ignore[arg-type]
        v = getattr(node, f.name)
        items = v if isinstance(v, tuple) else (v,)
        for item in items:
            if isinstance(item, Node):
                yield item
            elif isinstance(item, tuple):  # a matrix's rows
                yield from (c for c in item if isinstance(c, Node))


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for c in _children(node):
        yield from _walk(c)


def _matrices(calc: Calculation) -> list[tuple[tuple[str, ...], ...]]:
    """Every matrix of numbers in the calculation's numbers lines, as texts."""
    out = []
    for line in (calc.subst, *calc.steps, calc.result):
        for n in _walk(line):
            if isinstance(n, Matrix):
                out.append(tuple(tuple(tex(c) for c in r) for r in n.rows))
    return out


def _transpose(m: tuple[tuple[str, ...], ...]) -> tuple[tuple[str, ...], ...]:
    return tuple(zip(*m, strict=True))


def _numbers(doc) -> Counter[str]:
    out: Counter[str] = Counter()
    for block in doc.blocks():
        lines: list[Node] = []
        if isinstance(block, Calculation):
            lines = [block.subst, *block.steps, block.result]
        elif isinstance(block, Equation):
            lines = list(block.sides)
        for line in lines:
            out.update(n.text for n in _walk(line) if isinstance(n, Num))
    return out


# -- --notation columns ----------------------------------------------------------------------


@pytest.mark.parametrize(("loss", "out"), COMBOS[::2])
@pytest.mark.parametrize("batch", [1, 3])
def test_columns_are_the_rows_form_transposed_with_the_same_numbers(
    loss: str, out: str, batch: int
) -> None:
    for k, hidden in enumerate(HIDDEN[::2]):
        trace = _random_trace(hidden, out, loss, batch, seed=7 * k + batch)
        options = {"max_units": 6, "max_samples": batch}
        rows = derive(trace, notation="rows", **options).document
        cols = derive(trace, notation="columns", **options).document
        # The same numbers, every one of them, in the same number of calculations.
        assert _numbers(rows) == _numbers(cols)
        r_calcs, c_calcs = rows.calculations(), cols.calculations()
        assert len(r_calcs) == len(c_calcs)
        transposed = 0
        for r, c in zip(r_calcs, c_calcs, strict=True):
            mr, mc = _matrices(r), _matrices(c)
            if sorted(map(_transpose, mr)) == sorted(mc):
                transposed += bool(mr) and any(len(m) > 1 or len(m[0]) > 1 for m in mr)
            else:
                # Only a row of softmax's Jacobian stays a row in both notations.
                assert sorted(mr) == sorted(mc), (tex(r.lhs), tex(c.lhs))
                assert all(len(m) == 1 for m in mr)
        assert transposed >= 6  # z, the outputs' derivatives, δ·W, dW, W′, biases...


@pytest.mark.parametrize(("loss", "out"), COMBOS[::3])
@pytest.mark.parametrize("round_to", [None, 4])
def test_every_columns_line_holds_by_interval_arithmetic(loss, out, round_to) -> None:
    """W·a + b, Wᵀ·δ and δ·aᵀ with the printed numbers give the printed results."""
    checked = 0
    for k, hidden in enumerate(HIDDEN):
        trace = _random_trace(hidden, out, loss, 2, seed=k, round_to=round_to)
        doc = derive(trace, notation="columns", max_units=6, max_samples=2).document
        prec = Precision(4, doc.round_to)
        for calc in doc.calculations():
            for line in (calc.subst, *calc.steps):
                try:
                    ok, why = holds(line, calc.result, prec)
                except Unevaluable:
                    continue
                checked += 1
                assert ok, f"{tex(calc.lhs)} = {tex(line)} = {tex(calc.result)}: {why}"
    assert checked > 100


def test_columns_weights_are_the_to_from_layout_the_spec_reads() -> None:
    trace = gn.load_spec("seed").trace()
    doc = derive(trace, notation="columns", digits=6).document
    eqs = [b for b in doc.blocks() if isinstance(b, Equation) and tex(b.sides[0]).startswith("W_")]
    assert len(eqs) == 3  # W_ji, W_kj, W_lk as given
    for eq, lt in zip(eqs, trace.layers, strict=True):
        printed = eq.sides[-1]
        assert isinstance(printed, Matrix)
        M = np.array([[float(tex(c)) for c in r] for r in printed.rows])
        W, _ = weights_from_layout(M, "to_from", False)
        np.testing.assert_allclose(W, lt.W, rtol=1e-6)
    first = next(c for c in doc.calculations() if tex(c.lhs).startswith(r"\begin{bmatrix} h1"))
    assert tex(first.rule).index("W_{j1i1}") < tex(first.rule).index("I_{1}")  # W · I


def test_cli_notation_columns_and_the_spec_layout_default(tmp_path, capsys) -> None:
    assert main(["explain", "seed", "--notation", "columns"]) == 0
    assert "W_{ji}" in capsys.readouterr().out
    spec = tmp_path / "net.toml"
    spec.write_text(
        'input = [0.5, -0.2]\ntarget = [1.0, 0.0]\nloss = "cross_entropy"\nlr = 0.1\n'
        'layout = "to_from"\n'
        "[[layers]]\n"
        'weights = [[0.1, 0.2], [0.3, -0.4]]\nbias = [0.0, 0.1]\nactivation = "softmax"\n'
    )
    assert main(["explain", str(spec)]) == 0
    assert "W_{ji}" in capsys.readouterr().out  # columns, as the spec is written
    assert main(["explain", str(spec), "--notation", "rows"]) == 0
    assert "W_{ij}" in capsys.readouterr().out
    bad = subprocess.run(
        [sys.executable, "-m", "glassnet", "explain", "seed", "--notation", "diagonal"],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(Path(gn.__file__).parents[1])},
    )
    assert bad.returncode == 2 and bad.stdout == ""
    assert "--notation" in bad.stderr and "Traceback" not in bad.stderr


# -- the seed's own errata -------------------------------------------------------------------


def _seed_errata_document(**options):
    report = check_worksheet("seed")
    table = errata(report)
    return report, table, derive(gn.load_spec("seed").trace(), errata=table, **options).document


def test_each_value_the_tutorial_got_wrong_carries_what_check_said_beside_it() -> None:
    report, table, doc = _seed_errata_document()
    trace = doc.trace
    marked = [e for e in report.entries if e.verdict != "ok" and not split_tags(e.written)[1]]
    assert len(table) == len(marked) > 20
    blocks = doc.blocks()
    shown = [b for b in blocks if isinstance(b, Erratum)]
    assert len(shown) == len(marked)  # every one on the page, none twice
    beside = 0
    for (kind, layer, index), erratum in table.items():
        entry = next(
            e for e in marked if e.text == erratum.printed and e.explanation == erratum.explanation
        )
        # The words are check's: its verdict, its diagnosis and its sentence.
        assert erratum.verdict == entry.verdict and erratum.mistake == entry.diagnosis
        k = next(i for i, b in enumerate(blocks) if b is erratum)
        before = blocks[k - 1]
        if isinstance(before, Calculation) and isinstance(before.result, Num):
            # Right after the calculation of that very value (the trace's number).
            value = trace.value((kind, layer))
            right = value[(0, *index)] if np.ndim(value) > len(index) else value[index]
            if kind == "da_dz" and np.ndim(value) == 3:  # softmax: row i, written at (i, i)
                right = value[0, index[0], index[0]]
            assert before.result.value == pytest.approx(float(right))
            beside += 1
    assert beside >= 20


def test_the_errata_words_come_from_the_catalogue(monkeypatch) -> None:
    """Renaming a mistake in check's catalogue renames it on the explain page: the page
    keeps no table of its own."""
    old = CATALOGUE["normalize_not_softmax"]
    monkeypatch.setitem(
        CATALOGUE,
        "normalize_not_softmax",
        dataclasses.replace(old, title="SUMMED NOT EXPONENTIATED"),
    )
    _, table, doc = _seed_errata_document()
    md = derive(doc.trace, errata=table).markdown()
    # O_out1, O_out2, O_out3: each with the title, said once
    assert md.count("SUMMED NOT EXPONENTIATED") == 3
    assert old.title not in md


def test_explain_seed_shows_the_errata_and_no_errata_leaves_them_out(capsys) -> None:
    assert main(["explain", "seed"]) == 0
    page = capsys.readouterr().out
    assert "The tutorial wrote O_out1 = 0.2698 here" in page  # the seed's name, 1-based
    assert "normalize_not_softmax" in page and "log10" in page
    assert main(["explain", "seed", "--no-errata"]) == 0
    assert "The tutorial wrote" not in capsys.readouterr().out
    # Only the seed has its tutorial's numbers: another spec gets no errata.
    trace = _random_trace("relu", "softmax", "cross_entropy", 1, seed=1)
    assert "wrote" not in explain(trace, format="md")


def test_errata_speak_the_page_s_language(tmp_path) -> None:
    """Issue 26: what the page says of each mistake, outside the folded detail, uses the
    seed's names, 1-based, in one voice ("the tutorial"), each mistake said once — no
    engine name, no 0-based index, no catalogue id; the id only in the detail."""
    import re
    from html.parser import HTMLParser

    from glassnet.check.mistakes import CHECKS

    path = tmp_path / "seed.html"
    assert main(["explain", "seed", "-o", str(path)]) == 0
    html = path.read_text(encoding="utf-8")

    class Errata(HTMLParser):
        """The text of each erratum's summary and of its detail."""

        def __init__(self) -> None:
            super().__init__()
            self.summaries: list[str] = []
            self.details: list[str] = []
            self.where: str | None = None
            self.inside = False

        def handle_starttag(self, tag, attrs):
            if tag == "details" and "erratum" in (dict(attrs).get("class") or ""):
                self.inside = True
            elif self.inside and tag == "summary":
                self.where = "summary"
                self.summaries.append("")
            elif self.inside and tag == "p":
                self.where = "detail"
                self.details.append("")

        def handle_endtag(self, tag):
            if tag in ("summary", "p"):
                self.where = None
            if tag == "details":
                self.inside = False

        def handle_data(self, data):
            if self.where == "summary":
                self.summaries[-1] += data
            elif self.where == "detail":
                self.details[-1] += data

    parsed = Errata()
    parsed.feed(html)
    summaries = parsed.summaries
    marked = [
        e
        for e in check_worksheet("seed").entries
        if e.verdict != "ok" and not any(split_tags(e.written)[1:])
    ]
    assert len(summaries) == len(parsed.details) == len(marked) > 20
    ids = set(CATALOGUE) | set(CHECKS)
    engine = re.compile(r"\[\d|\b(dW\d|db\d|z\d|a\d|delta\d?|dL/|loss_terms|W\d_new)\b")
    for text in summaries:
        assert text.startswith(("✗ The tutorial wrote ", "→ The tutorial wrote ")), text
        assert not ids & set(re.findall(r"[a-z0-9_]+", text)), text
        assert not engine.search(text), text
        assert "your" not in text.lower() and "worksheet" not in text
        # Named with the seed's 1-based numbers: no unit 0, nothing past 3 units.
        name = text.split(" wrote ")[1].split(" = ")[0]
        assert not re.search(r"(?<![\d.])0(?![\d.])|[4-9]", name), name
    # The tutorial's softmax output, as it printed it (the seed tutorial's O_out1).
    assert any(
        t.startswith("✗ The tutorial wrote O_out1 = 0.2698 here: divided by the sum")
        for t in summaries
    )
    # The mistake once: its title in the summary, never again in the detail.
    for summary, detail in zip(summaries, parsed.details, strict=True):
        title = summary.split(" here: ")[1]
        assert title not in detail
        assert "your" not in detail.lower() and not re.search(r"\[\d", detail), detail
    assert sum("glassnet check: " in d for d in parsed.details) == sum(
        1 for e in marked if e.diagnosis
    )


def test_softmax_delta_takes_a_column_and_the_page_says_the_jacobian_is_symmetric() -> None:
    """Issue 26: the δ of softmax input j sums ∂E/∂O_out,u · ∂O_out,u/∂O_in,j over u —
    column j of the Jacobian, whose box shows row j; the page says why the numbers are
    the same (softmax's Jacobian is symmetric, which the trace's own Jacobian shows)."""
    trace = gn.load_spec("seed").trace()
    jac = trace.layers[-1].da_dz[0]
    np.testing.assert_allclose(jac, jac.T, rtol=1e-12)  # the recorded Jacobian
    doc = derive(trace).document
    md = derive(trace).markdown()
    assert "takes column l of the Jacobian" in md and "This Jacobian is symmetric" in md
    # Each δ box: term u is ∂E/∂O_out,u times the Jacobian's entry (u, j), column j.
    deltas = [c for c in doc.calculations() if tex(c.lhs).startswith(r"\delta O_{")]
    assert len(deltas) == 3
    for j, calc in enumerate(deltas):
        derivs = [n for n in _walk(calc.rule) if isinstance(n, Deriv) and n.top.base == "O"]
        assert [tex(d.bottom) for d in derivs] == [rf"O_{{\mathrm{{in}}{j + 1}}}"] * 3
        assert [tex(d.top) for d in derivs] == [rf"O_{{\mathrm{{out}}{u + 1}}}" for u in range(3)]
        assert [d.value for d in derivs] == [pytest.approx(jac[u, j]) for u in range(3)]
    # Not said where the Jacobian is not softmax's (an elementwise output layer).
    sigmoid = _random_trace("relu", "sigmoid", "mse", 1, seed=2)
    assert "symmetric" not in explain(sigmoid, format="md")


# -- softmax by hand -------------------------------------------------------------------------


@pytest.mark.parametrize("round_to", [None, 4])
def test_softmax_is_written_out_as_each_exponential_their_sum_and_each_quotient(
    round_to,
) -> None:
    trace = gn.load_spec("seed").trace(round_to=round_to)
    doc = derive(trace, digits=4).document
    z = trace.layers[-1].z[0]
    (sum_calc,) = [c for c in doc.calculations() if tex(c.lhs) == "S"]
    # S = e^{z1} + e^{z2} + e^{z3} = (each e^z in numbers, added) = S
    (written,) = sum_calc.steps
    exps = [n for n in _walk(written) if isinstance(n, Num)]
    assert len(exps) == 3
    for e, zj in zip(exps, z, strict=True):
        assert float(e.text) == pytest.approx(
            math.exp(float(zj)), rel=1e-3 if round_to is None else 1e-5
        )
    total = sum(math.exp(float(v)) for v in z)
    assert float(tex(sum_calc.result)) == pytest.approx(total, rel=1e-3)
    if round_to is not None:  # by hand, S is the sum of the exponentials as written
        assert float(tex(sum_calc.result)) == pytest.approx(
            sum(float(e.text) for e in exps), abs=1e-9
        )
    quotients = [c for c in doc.calculations() if c.steps and tex(c.lhs).startswith("O_")]
    assert len(quotients) == 3
    for e, calc in zip(exps, quotients, strict=True):
        # e^{z_j} / S with the numbers above, then the output the engine computed.
        assert tex(calc.steps[0]) == rf"\frac{{{e.text}}}{{{tex(sum_calc.result)}}}"
        j = quotients.index(calc)
        assert calc.result.value == pytest.approx(float(trace.layers[-1].a[0, j]))


def test_softmax_that_overflows_is_not_written_out() -> None:
    layers = [Dense(np.array([[400.0, 0.0], [400.0, 1.0]]), np.zeros(2), "softmax")]
    x, y = np.array([[1.0, 1.0]]), np.array([[1.0, 0.0]])
    trace = gn.trace_step(gn.Network(layers), x, y, loss="cross_entropy", lr=0.1)
    md = explain(trace, format="md")
    assert "too large for a float" in md and "By hand" not in md
    assert "inf" not in md and "nan" not in md


# -- δ as a symbol, samples in brackets -----------------------------------------------------


@pytest.mark.parametrize("batch", [1, 2])
def test_delta_is_a_symbol_defined_once(batch: int) -> None:
    for k, hidden in enumerate(HIDDEN):
        trace = _random_trace(hidden, "softmax", "cross_entropy", batch, seed=k)
        doc = derive(trace, max_samples=batch).document
        md = doc_md = derive(trace, max_samples=batch).markdown()
        assert doc_md.count("error signal") == 2  # the definition, and the glossary
        for calc in doc.calculations():
            for line in (calc.lhs, calc.rule):
                for n in _walk(line):
                    # No ∂E/∂(a unit's input) left in a box: δ stands for it.
                    if isinstance(n, Deriv) and n.top == Sym("E"):
                        assert "in" not in [p for p, _ in n.bottom.sub], tex(calc.lhs)
        deltas = [
            c for c in doc.calculations() if isinstance(c.lhs, Sym) and c.lhs.base.startswith("δ")
        ]
        assert deltas
        for calc in deltas:  # δO_1 = ..., with the trace's value
            layer = 2 if calc.lhs.base == "δO" else 1
            unit = int(calc.lhs.sub[0][0]) - 1
            sample = (calc.lhs.sample or 1) - 1
            value = trace.layers[layer - 1].delta[sample, unit]
            if trace.output_delta_shortcut is not None and layer == 2:
                value = trace.output_delta_shortcut[sample, unit]
            assert calc.result.value == pytest.approx(float(value))
        assert r"\delta O" in md


def test_batch_samples_are_numbered_in_brackets() -> None:
    trace = _random_trace("tanh", "sigmoid", "mse", 2, seed=3)
    md = explain(trace, format="md", max_samples=2)
    assert r"h1_{\mathrm{in}1}[2]" in md and r"h1_{\mathrm{in}1}[1]" in md
    assert "^{(" not in md  # no superscript sample numbers
    html = explain(trace, format="html", max_samples=2)
    assert '<mo stretchy="false">[</mo><mn>2</mn>' in html


# -- --errata WORKSHEET: any marked solution, beside the right derivation -------------------

NET = """input = [0.5, -0.2]
target = [1.0, 0.0]
loss = "cross_entropy"
lr = 0.1
[[layers]]
weights = [[0.1, 0.2], [0.3, -0.4]]
bias = [0.0, 0.1]
activation = "softmax"
"""

# A student's sheet: the loss with log base 10, a softmax output cut off (not rounded).
SHEET = """spec = "net.toml"
[values]
z1 = [-0.01, 0.28]
a1 = [0.4280, 0.5719]
loss = 0.3686
delta1 = [-0.5720, 0.5720]
"""


def test_errata_of_any_worksheet_are_check_s_marks(tmp_path, capsys) -> None:
    (tmp_path / "net.toml").write_text(NET)
    sheet = tmp_path / "anna.toml"
    sheet.write_text(SHEET)
    report = check_worksheet(sheet)
    wrong = [e for e in report.entries if e.verdict != "ok"]
    assert {e.diagnosis for e in wrong} == {"log10", "truncation"}
    for argv in (["--errata", str(sheet)], [str(tmp_path / "net.toml"), "--errata", str(sheet)]):
        assert main(["explain", *argv]) == 0
        page = capsys.readouterr().out
        assert page.count("> **✗ The worksheet wrote") == len(wrong) == 2
        # Its own voice, the page's names: loss is E, a1 the output O_out (one layer).
        assert "The worksheet wrote E = 0.3686 here" in page
        assert "The worksheet wrote O_out2 = 0.5719 here" in page
        assert "the worksheet's own earlier numbers" in page
        assert "your" not in page.lower() and "the tutorial" not in page
        for e in wrong:
            assert CATALOGUE.get(e.diagnosis) is None or CATALOGUE[e.diagnosis].title in page
    assert main(["explain", "--errata", str(sheet), "--no-errata"]) == 0
    assert "worksheet wrote" not in capsys.readouterr().out


def test_errata_refused_where_they_could_not_be_placed(tmp_path, capsys) -> None:
    (tmp_path / "net.toml").write_text(NET)
    batch = NET.replace("[0.5, -0.2]", "[[0.5, -0.2], [0.1, 0.1]]").replace(
        "target = [1.0, 0.0]", "target = [[1.0, 0.0], [0.0, 1.0]]"
    )
    (tmp_path / "batch.toml").write_text(batch)
    out = tmp_path / "page.html"
    cases = {  # name: (the sheet, SPEC arguments, what the one-line error says)
        "another": (SHEET, ["seed"], "is for another network"),
        "batch": (SHEET.replace("net.toml", "batch.toml"), [], "one sample"),
        "layout": (
            SHEET.replace('"net.toml"\n', '"net.toml"\nlayout = "to_from"\n'),
            [],
            "from_to layout",
        ),
    }
    for name, (text, spec, says) in cases.items():
        sheet = tmp_path / f"sheet-{name}.toml"
        sheet.write_text(text)
        assert main(["explain", *spec, "--errata", str(sheet), "-o", str(out)]) == 2, name
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err, (name, err)
        assert not out.exists()  # nothing written
    assert main(["explain"]) == 2
    assert "expected a SPEC" in capsys.readouterr().err
