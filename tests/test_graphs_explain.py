"""``glassnet explain`` of an expression's circuit: the page's arithmetic holds from the
numbers as printed (tests/_explain_arith.py, which shares no arithmetic with glassnet),
its numbers are PyTorch's, each fork is written as the sum of its paths, and the
command writes Markdown (with the SVG beside it) and HTML."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from _explain_arith import Precision, Unevaluable, holds
from test_graphs import SEEDS, random_circuit, torch_reference

from glassnet import cli
from glassnet.explain.circuit import circuit_sections, circuit_svg
from glassnet.explain.document import Calculation, Section, Table
from glassnet.explain.symbols import number_format
from glassnet.graphs import parse_expression
from glassnet.mathtree import Deriv, Op, Row, Sym, tex

CS231N = "q = x + y\nf = q * z"
NEURON = "f = 1 / (1 + exp(-(w0 * x0 + w1 * x1 + w2)))"
NEURON_VALUES = {"w0": 2.0, "w1": -3.0, "w2": -3.0, "x0": -1.0, "x1": -2.0}


def _calculations(sections: list[Section]) -> list[Calculation]:
    return [b for s in sections for b in s.blocks if isinstance(b, Calculation)]


def _arithmetic(sections: list[Section], digits: int, round_to: int | None) -> int:
    """Assert every numbers line reaches its printed result; the number of lines."""
    prec = Precision(digits, round_to)
    checked, bad = 0, []
    for calc in _calculations(sections):
        try:
            ok, why = holds(calc.subst, calc.result, prec)
        except Unevaluable:
            continue
        checked += 1
        if not ok:
            bad.append(f"{tex(calc.lhs)} = {tex(calc.subst)} = {tex(calc.result)}: {why}")
    assert not bad, "\n".join(bad[:5])
    return checked


@pytest.mark.parametrize("digits", [3, 4, 6])
def test_cs231n_pages_arithmetic_holds(digits: int) -> None:
    for text, values in ((CS231N, {"x": -2.0, "y": 5.0, "z": -4.0}), (NEURON, NEURON_VALUES)):
        trace = parse_expression(text).trace(values)
        assert _arithmetic(circuit_sections(trace, digits=digits), digits, None) >= 8


@pytest.mark.parametrize("seed", SEEDS)
def test_random_circuit_pages_arithmetic_holds(seed: int) -> None:
    text, values = random_circuit(seed)
    trace = parse_expression(text).trace(values)
    assert _arithmetic(circuit_sections(trace, digits=4), 4, None) >= 20


@pytest.mark.parametrize("seed", SEEDS[:4])
def test_random_circuit_pages_arithmetic_holds_in_hand_mode(seed: int) -> None:
    text, values = random_circuit(seed)
    trace = parse_expression(text).trace(values, round_to=3)
    assert _arithmetic(circuit_sections(trace, digits=4), 4, 3) >= 20


@pytest.mark.parametrize("seed", SEEDS[:4])
def test_page_numbers_are_pytorchs(seed: int) -> None:
    """The summary table's value and gradient of every named node, read back as printed,
    are PyTorch's to within half a unit of the last digit shown."""
    text, values = random_circuit(seed)
    trace = parse_expression(text).trace(values)
    ref_values, ref_grads, _ = torch_reference(text, values)
    sections = circuit_sections(trace, digits=6)
    table = next(b for s in sections for b in s.blocks if isinstance(b, Table))
    prec = Precision(6)
    seen = 0
    for node, _rule, value, grad in table.rows:
        assert isinstance(node, Sym)
        name = node.base + "".join(text for text, _ in node.sub)  # q₁ → q1
        if name not in ref_values:
            continue  # a node glassnet named (q1…) in a nested line: not in PyTorch's
        for shown, ref in ((value, ref_values[name]), (grad, ref_grads[name])):
            assert isinstance(shown, str)
            assert abs(float(shown) - ref) <= prec.half_unit(shown) * (1 + 1e-9), (name, shown)
        seen += 1
    assert seen == len(ref_values)


def test_each_fork_is_the_sum_of_its_paths() -> None:
    """x feeds both gates of f = (x + y)·x: the page writes ∂f/∂x as two products added,
    3 + (−1) = 2 at x = 3, y = −4 (by hand: f = x² + xy, df/dx = 2x + y = 2)."""
    trace = parse_expression("q = x + y\nf = q * x").trace({"x": 3.0, "y": -4.0})
    sums = [
        c
        for c in _calculations(circuit_sections(trace))
        if isinstance(c.lhs, Deriv)
        and tex(c.lhs.bottom) == "x"
        and isinstance(c.rule, Row)
        and any(isinstance(i, Op) and i.tex == "+" for i in c.rule.items)
    ]
    assert len(sums) == 1
    assert tex(sums[0].subst) == r"3.000 + \left(-1.000\right)"
    assert float(tex(sums[0].result)) == 2.0


def test_the_picture_shows_each_value_and_gradient() -> None:
    trace = parse_expression(CS231N).trace({"x": -2.0, "y": 5.0, "z": -4.0})
    svg = circuit_svg(trace, number_format(4, None))
    root = ET.fromstring(svg)
    texts = ["".join(t.itertext()) for t in root.iter("{http://www.w3.org/2000/svg}text")]
    # CS231n's figure: x −2 / −4, y 5 / −4, z −4 / 3, q 3 / −4, f −12 / 1.
    for shown in ("-2.000", "5.000", "-4.000", "3.000", "-12.00", "1.000"):
        assert shown in texts, shown
    assert texts.count("-4.000") >= 4  # z's value; the gradients of x, y and q


def test_explain_command_writes_markdown_svg_and_html(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "neuron.toml"
    path.write_text(
        f'expression = "{NEURON}"\nvalues = {{ w0 = 2, w1 = -3, w2 = -3, x0 = -1, x1 = -2 }}\n',
        encoding="utf-8",
    )
    assert cli.main(["explain", str(path), "-o", str(tmp_path / "n.md")]) == 0
    md = (tmp_path / "n.md").read_text(encoding="utf-8")
    assert "n.svg" in md and (tmp_path / "n.svg").is_file()
    assert "swaps" in md and "distributes" in md and r"\frac{\partial f}{\partial w_{0}}" in md
    assert cli.main(["explain", str(path), "-o", str(tmp_path / "n.html")]) == 0
    html = (tmp_path / "n.html").read_text(encoding="utf-8")
    assert "<math" in html and "<svg" in html
    capsys.readouterr()
    for bad in (["--errata", str(path)], ["--round", "99"], ["-o", str(tmp_path / "n.pdf")]):
        assert cli.main(["explain", str(path), *bad]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1, err


# -- the notebook ------------------------------------------------------------------------


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return make_kernel(tmp_path, monkeypatch)


def make_kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A kernelspec running this very interpreter (which imports glassnet)."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "glassnet-test"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "glassnet test",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "glassnet-test"


def _run_notebook(text: str, kernel: str, cwd: Path) -> tuple[str, str]:
    """Validate and run a notebook; (its Markdown, its printed output)."""
    nbformat = pytest.importorskip("nbformat", reason="the explain extra (nbformat) is needed")
    nbclient = pytest.importorskip("nbclient", reason="the explain extra (nbclient) is needed")
    pytest.importorskip("ipykernel", reason="the explain extra (ipykernel) is needed")
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    client = nbclient.NotebookClient(
        nb, kernel_name=kernel, timeout=120, resources={"metadata": {"path": str(cwd)}}
    )
    client.execute()
    out = []
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            assert o.get("output_type") != "error", o
            out.append(o.get("text", ""))
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    return markdown, "".join(out)


@pytest.mark.parametrize(
    ("text", "values", "round_to"),
    [
        (NEURON, NEURON_VALUES, None),
        (*random_circuit(SEEDS[0]), None),
        (*random_circuit(SEEDS[1]), 3),
    ],
)
def test_circuit_notebook_validates_and_runs(
    kernel: str, tmp_path: Path, text: str, values: dict[str, float], round_to: int | None
) -> None:
    """The notebook's cells work every value, local gradient, path and gradient again
    with NumPy (each gate's own code) and find glassnet's trace; its Markdown is the
    page's."""
    from glassnet.explain.circuit import circuit_notebook
    from glassnet.explain.render_markdown import section_markdown

    trace = parse_expression(text).trace(values, round_to=round_to)
    sections = circuit_sections(trace, digits=4)
    markdown, out = _run_notebook(circuit_notebook(trace, sections), kernel, tmp_path)
    assert markdown == "\n".join(section_markdown(s) for s in sections)
    c = trace.circuit
    for name in c.gates():
        assert f"{name}: recomputed, equal to the trace" in out
    for name in c.order():
        if c.has_gradient(name):
            assert f"d{name}: recomputed, equal to the trace" in out
    for g in c.gates():
        for src in c.nodes[g].inputs:
            if c.has_gradient(src) and c.feeds(g):
                assert f"{g} -> {src}: recomputed" in out
    assert "every value and gradient of the circuit reproduced" in out


def test_explain_command_writes_a_notebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    nbformat = pytest.importorskip("nbformat", reason="the explain extra (nbformat) is needed")
    path = tmp_path / "cs231n.toml"
    path.write_text(
        f'expression = "{NEURON}"\nvalues = {{ w0 = 2, w1 = -3, w2 = -3, x0 = -1, x1 = -2 }}\n',
        encoding="utf-8",
    )
    assert cli.main(["explain", str(path), "-o", str(tmp_path / "n.ipynb")]) == 0
    nb = nbformat.read(tmp_path / "n.ipynb", as_version=4)
    nbformat.validate(nb)
    kinds = [c.cell_type for c in nb.cells]
    assert kinds[:2] == ["markdown", "code"] and "same(" in nb.cells[3].source


def test_errata_are_written_below_the_numbers_a_worksheet_got_wrong(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A student of CS231n's circuit, by hand: q = 4 (wrong: −2 + 5 = 3), f = −16
    (follows: 4·(−4)), dz = −4 (wrong: z, not q — the multiply gate not swapped)."""
    head = 'expression = "q = x + y\\nf = q * z"\nvalues = { x = -2, y = 5, z = -4 }\n'
    expr, sheet = tmp_path / "cs.toml", tmp_path / "sheet.toml"
    expr.write_text(head, encoding="utf-8")
    sheet.write_text(head + "[answers]\nq = 4\nf = -16\ndz = -4\n", encoding="utf-8")
    for argv in (
        ["explain", str(expr), "--errata", str(sheet), "-o", str(tmp_path / "p.md")],
        ["explain", "--errata", str(sheet), "-o", str(tmp_path / "p.md")],
    ):
        assert cli.main(argv) == 0
        md = (tmp_path / "p.md").read_text(encoding="utf-8")
        q = md.index("The worksheet wrote q = 4: wrong")
        dz = md.index("The worksheet wrote dz = -4: wrong — the multiply gate")
        assert "[multiply_not_swapped]" in md and "wrote f =" not in md  # f follows
        assert q < md.index("## Backward pass") < dz
        # Right after the line that computes df/dz (the page's own line for it).
        assert md.rindex(r"\frac{\partial f}{\partial z}", 0, dz) > md.index("### f = q * z")
    capsys.readouterr()
    other = tmp_path / "other.toml"
    other.write_text(head.replace("z = -4", "z = 4") + "[answers]\nq = 3\n", encoding="utf-8")
    assert cli.main(["explain", str(expr), "--errata", str(other)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "another" in err
