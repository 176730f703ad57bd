"""Issue 26, the bridge to the textbooks: a reader coming from Mazur's post or Nielsen's
book finds their own names on the page.

References: Matt Mazur, "A Step by Step Backpropagation Example" (2015),
https://mattmazur.com/2015/03/17/a-step-by-step-backpropagation-example/ — his names
and printed numbers for the 2-2-2 network of tests/test_published_example.py (quoted
below from the post); Michael Nielsen, "Neural Networks and Deep Learning", ch. 2 (the
four equations BP1–BP4, w^l_jk to unit j from unit k); PyTorch's nn.Linear (its weight
is (out_features, in_features)), checked against torch itself where it is installed.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import glassnet as gn
from glassnet.explain import derive, explain
from glassnet.explain.document import Calculation, Collapsed, Link, Table
from glassnet.mathtree import Deriv, Node, Num, Script, Sym, tex
from glassnet.notation import mazur_name, weight_conventions

from helpers import MAZUR

# Mazur's post, his names and the numbers he prints for them.
MAZUR_PUBLISHED = {
    "i1": 0.05, "i2": 0.10,
    "w1": 0.15, "w2": 0.20, "w3": 0.25, "w4": 0.30,
    "w5": 0.40, "w6": 0.45, "w7": 0.50, "w8": 0.55,
    "b1": 0.35, "b2": 0.60,
    "net_h1": 0.3775, "out_h1": 0.593269992, "out_h2": 0.596884378,
    "out_o1": 0.75136507, "out_o2": 0.772928465,
    "target_o1": 0.01, "target_o2": 0.99,
    "E_o1": 0.274811083, "E_o2": 0.023560026, "E_total": 0.298371109,
    "w5⁺": 0.35891648, "w6⁺": 0.408666186, "w7⁺": 0.511301270, "w8⁺": 0.561370121,
    "w1⁺": 0.149780716, "w2⁺": 0.19956143, "w3⁺": 0.24975114, "w4⁺": 0.29950229,
}  # fmt: skip


# Nielsen's BP1–BP4 (ch. 2), the scripted symbols of each as his book sets them:
# (symbol, subscript, superscript).
NIELSEN_SCRIPTS = {
    "BP1": {("δ", None, "L"), ("∇", "a", None), ("z", None, "L")},
    "BP2": {("δ", None, "l"), ("w", None, "l+1"), ("δ", None, "l+1"), ("z", None, "l")},
    "BP3": {("b", "j", "l"), ("δ", "j", "l")},
    "BP4": {("w", "jk", "l"), ("a", "k", "l−1"), ("δ", "j", "l")},
}


def _scripts(node: Node) -> set[tuple[str, str | None, str | None]]:
    """The scripted symbols of a maths node: (base, subscript, superscript)."""
    out = set()

    def walk(n) -> None:
        if isinstance(n, Script):
            if n.sup != "T":  # (w^(l+1))^T: the transpose, the w is inside
                out.add((tex(n.base).strip("{} ").replace(r"\delta", "δ"), n.sub, n.sup))
        for value in getattr(n, "__dict__", {}).values():
            for child in value if isinstance(value, tuple) else (value,):
                if isinstance(child, Node):
                    walk(child)

    walk(node)
    return out


def _mazur_trace():
    return gn.parse_spec(MAZUR, "mazur.toml").trace()


def _tables(doc) -> list[Table]:
    return [b for b in doc.blocks() if isinstance(b, Table)]


def test_the_notation_map_names_mazur_s_w1_to_w8_as_his_post_does() -> None:
    doc = derive(_mazur_trace(), digits=9).document
    (table,) = [t for t in _tables(doc) if t.caption.startswith("Mazur's names")]
    named = {name: cells for cells in table.rows for name in [cells[1]]}
    # Every one of his printed numbers is on the page under his name, at 9 digits.
    for name, published in MAZUR_PUBLISHED.items():
        assert name in named, name
        value = named[name][2]
        assert isinstance(value, Num)
        assert value.value == pytest.approx(published, abs=1e-8), name
    # His equations: net_h1 = w1·i1 + w2·i2 + b1, net_o1 = w5·out_h1 + w6·out_h2 + b2:
    # the weight named w2 goes from input 2 to hidden unit 1, w6 from hidden 2 to output 1.
    by_name = {cells[1]: cells[0] for cells in table.rows}
    assert by_name["w2"] == Sym("W", (("i", "id"), ("2", "num"), ("j", "id"), ("1", "num")))
    assert by_name["w6"] == Sym("W", (("j", "id"), ("2", "num"), ("k", "id"), ("1", "num")))
    assert mazur_name("W", 1, (0, 1)) == "w3"  # net_h2 = w3·i1 + w4·i2 + b1
    # Only for his shape: another network gets no such table.
    seed = derive(gn.load_spec("seed").trace()).document
    assert not [t for t in _tables(seed) if t.caption.startswith("Mazur's names")]


def test_one_weight_s_chain_rule_is_written_out_as_mazur_does() -> None:
    """∂E_total/∂w5 = ∂E_total/∂out_o1 · ∂out_o1/∂net_o1 · ∂net_o1/∂w5
    = 0.74136507 · 0.186815602 · 0.593269992 = 0.082167041 (Mazur's numbers)."""
    doc = derive(_mazur_trace(), digits=9).document
    part = next(s for s in doc.sections if s.title == "The backward pass")
    (calc,) = [b for b in part.blocks if isinstance(b, Calculation)]
    factors = [n for n in calc.rule.items if isinstance(n, Deriv)]  # type: ignore[attr-defined]
    assert [f.value for f in factors] == [
        pytest.approx(0.74136507, abs=1e-8),
        pytest.approx(0.186815602, abs=1e-9),
        pytest.approx(0.593269992, abs=1e-9),
    ]
    assert calc.lhs.value == pytest.approx(0.082167041, abs=1e-9)  # type: ignore[attr-defined]
    md = derive(_mazur_trace()).markdown()
    assert r"(his $\frac{\partial E_{\mathrm{total}}}{\partial w_{5}}$)" in md
    # Before the matrix forms: the first thing of the backward pass.
    assert md.index("One weight first") < md.index("### Backward, layer 2")


def test_the_algorithm_in_a_box_with_nielsen_s_four_equations_linked() -> None:
    for trace, n_rows in ((gn.load_spec("seed").trace(), 4), (_mazur_trace(), 4)):
        doc = derive(trace).document
        (box,) = [t for t in _tables(doc) if t.boxed]
        assert [r[0] for r in box.rows] == ["BP1", "BP2", "BP3", "BP4"][:n_rows]
        for r in box.rows:
            assert _scripts(r[2]) == NIELSEN_SCRIPTS[str(r[0])], r[0]
        html = explain(trace, format="html")
        ids = set(re.findall(r' id="([^"]+)"', html))
        links = re.findall(r'<a href="#([^"]+)">', html[html.index('class="table boxed"') :])
        assert len(links) >= n_rows and set(links[:n_rows]) <= ids, links
        titles = {s.title for s in doc.sections}
        assert all(r[3].section in titles for r in box.rows if isinstance(r[3], Link))
    # One layer: no hidden layer, no BP2.
    net = gn.Network([gn.layers.Dense(np.eye(2), np.zeros(2), "sigmoid")])
    one = derive(gn.trace_step(net, [1.0, 0.0], [0.0, 1.0], loss="mse", lr=0.1)).document
    (box,) = [t for t in _tables(one) if t.boxed]
    assert [r[0] for r in box.rows] == ["BP1", "BP3", "BP4"]


@pytest.mark.parametrize("notation", ["rows", "columns"])
def test_which_index_runs_where(notation: str) -> None:
    columns = notation == "columns"
    conventions = {who: (how, matrix) for who, how, matrix in weight_conventions(columns)}
    assert "to unit j of layer l from unit k" in conventions["Nielsen"][0]
    assert ("the same matrix" if columns else "the transpose") in conventions["Nielsen"][1]
    assert conventions["PyTorch nn.Linear"][1] == ("weight = W" if columns else "weight = Wᵀ")
    doc = derive(gn.load_spec("seed").trace(), notation=notation).document
    glossary = next(
        b for b in doc.sections[0].blocks if isinstance(b, Collapsed) and "Notation" in b.summary
    )
    (index_table,) = [t for t in glossary.blocks if isinstance(t, Table) and "index" in t.caption]
    assert {r[0] for r in index_table.rows} >= {"Nielsen", "Goodfellow et al.", "PyTorch nn.Linear"}


def test_pytorch_s_weight_is_to_from() -> None:
    """What the page says of PyTorch, checked against PyTorch: nn.Linear's weight is
    (out_features, in_features), and y = x @ weight.T + bias."""
    torch = pytest.importorskip("torch")
    layer = torch.nn.Linear(3, 2).double()
    assert tuple(layer.weight.shape) == (2, 3)
    x = torch.randn(4, 3, dtype=torch.float64)
    assert torch.allclose(layer(x), x @ layer.weight.T + layer.bias)
    assert "weight[j, i]: shape (out_features, in_features)" in weight_conventions(False)[-1][1]
