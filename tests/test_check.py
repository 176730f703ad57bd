"""glassnet check: error carried forward, the seed's errata, malformed worksheets, the CLI,
reports and exercises."""

from __future__ import annotations

import json

import numpy as np
import pytest

from glassnet.check import check, check_worksheet, load_worksheet, parse_worksheet
from glassnet.check.exercise import make_exercise
from glassnet.check.report import to_html, to_json, to_markdown
from glassnet.cli import main
from glassnet.errors import GlassnetError

from check_reference import (
    random_network,
    reference_step,
    sigmoid,
    softmax,
    worksheet_text,
)

ACTS, LOSS = ["sigmoid", "sigmoid"], "binary_cross_entropy"


def test_early_slip_is_carried_forward():
    Ws, bs, x, y = random_network(5)
    ref = reference_step(Ws, bs, ACTS, x, y, LOSS, 0.1)
    slipped = ref["a1"] + np.array([[0.1, 0.0, 0.0]])  # an arithmetic slip in a1[0]
    z2 = slipped @ Ws[1] + bs[1]  # then the right method on the slipped value
    a2 = sigmoid(z2)
    values = {"z1": ref["z1"], "a1": slipped, "z2": z2, "a2": a2}
    report = check(parse_worksheet(worksheet_text(Ws, bs, ACTS, x, y, LOSS, 0.1, values), "t"))
    verdicts = {(e.name, e.index): e.verdict for e in report.entries}
    assert verdicts[("a1", (0,))] == "wrong"
    assert verdicts[("a1", (1,))] == verdicts[("a1", (2,))] == "ok"
    for u in range(3):
        assert verdicts[("z2", (u,))] == "follows"
        assert verdicts[("a2", (u,))] == "follows"
    assert all(verdicts[("z1", (u,))] == "ok" for u in range(3))


def test_carried_forward_through_unwritten_steps():
    """dW2 written from a wrong a2 (through delta2 the person never wrote) still follows."""
    Ws, bs, x, y = random_network(6)
    ref = reference_step(Ws, bs, ACTS, x, y, LOSS, 0.1)
    a2 = ref["a2"] + 0.05
    dL = -y / a2 + (1 - y) / (1 - a2)
    delta = dL * a2 * (1 - a2)
    dW2 = ref["a1"].T @ delta
    values = {"a2": a2, "dW2": dW2}
    report = check(parse_worksheet(worksheet_text(Ws, bs, ACTS, x, y, LOSS, 0.1, values), "t"))
    assert all(e.verdict == "follows" for e in report.by_name("dW2"))
    assert all(e.verdict == "wrong" for e in report.by_name("a2"))


# -- the seed ------------------------------------------------------------------------------
# The seed's printed numbers and what they are, worked by hand from the seed's own text
# (shared/seed/000_77f373048d5bd3e8.txt):
#   O_out = O_in / sum(O_in): 1.8658 / 6.9154 = 0.2698   (normalised, not softmax)
#   E terms = -log10(0.5922) = 0.22753                     (log base 10)
#   dE/dO_out2 = -(1/(1 - 0.3223)) = -1.4755               (sign slip, y2 = 0)
#   dW_kl[0,0] = -3.70644 * 0.15911 * 0.938 = -0.5532      (diagonal of the softmax Jacobian)
#   dW_kl[0,1] = (-1.4755 * 0.204) * 0.204 * 0.938 = -0.0576 (and da/dz applied twice)
#   W_kl_new[1,0] = 0.3 + 0.001 * 0.554347 = 0.30055       (lr 0.001 for 0.01)
#   W_jk_new[2,2] = 0.8 + 0.1 * 0.03813 = 0.803813         (lr 0.1 for 0.01)
#   dE/dh1_out1 = -0.8903 * 0.058156 * 0.2 (W_j1k1 only) = -0.01035
#   h2_out1 = 0.938 for sigmoid(2.731) = 0.93883            (cut off, not rounded)
#   the layer-1 example's matrix has W_kl's 0.4, 0.7, 0.5, 0.2 in W_ij's places.
SEED_CAUSES = {
    ("a3", (0,)): "normalize_not_softmax",
    ("a3", (1,)): "normalize_not_softmax",
    ("a3", (2,)): "normalize_not_softmax",
    ("loss_terms", (0,)): "log10",
    ("loss_terms", (1,)): "log10",
    ("loss_terms", (2,)): "log10",
    ("dL_da3", (1,)): "bce_derivative_sign",
    ("dL_da3", (2,)): "bce_derivative_sign",
    ("a2", (0,)): "truncation",
    ("dL_da1", (0,)): "diagonal_weight_backprop",
    ("dL_da1", (1,)): "diagonal_weight_backprop",
    ("dL_da1", (2,)): "diagonal_weight_backprop",
    ("W3_new", (1, 0)): "lr_slip",
    ("W3_new", (1, 2)): "lr_slip",
    ("W3_new", (2, 0)): "lr_slip",
    ("W3_new", (2, 2)): "lr_slip",
    ("W2_new", (2, 2)): "lr_slip",
}
for _r in range(3):
    SEED_CAUSES[("dW3", (_r, 0))] = "softmax_diagonal_jacobian"
    SEED_CAUSES[("dW3", (_r, 2))] = "softmax_diagonal_jacobian"
    SEED_CAUSES[("dW3", (_r, 1))] = "softmax_diagonal_jacobian+activation_derivative_twice"
#: Printed numbers no catalogue rule reproduces (see docs/check.md): arithmetic slips.
SEED_UNEXPLAINED = {
    ("z2", (2,)),  # 4.001 for 1.35*0.5 + 1.27*0.7 + 1.8*0.8 + 1 = 4.004
    ("loss", ()),  # 0.985 for 0.569858 + 0.16886 + 0.22753 = 0.966248
    ("da3_dz3", (2,)),  # 0.3685: a(1 - a) is at most 0.25
    ("dL_da2", (0,)),  # its partial products (-0.2383, -0.5931, ...) match no rule
    ("dL_da2", (1,)),
    ("dL_da2", (2,)),
}


@pytest.fixture(scope="module")
def seed_report():
    return check_worksheet("seed")


def test_seed_worksheet_parses_with_every_printed_quantity():
    sheet = load_worksheet("seed")
    names = {g.name for g in sheet.givens}
    for n in ("z1", "a1", "z2", "a2", "z3", "a3", "loss_terms", "loss", "dL_da3", "da3_dz3"):
        assert n in names
    for n in ("dW3", "W3_new", "da2_dz2", "dL_da2", "dW2", "W2_new", "dL_da1", "dW1", "W1_new"):
        assert n in names
    assert next(g for g in sheet.givens if g.name == "da3_dz3").diagonal


def test_seed_right_values_are_independent_of_glassnet(seed_report):
    # The seed network worked right with plain NumPy.
    x = np.array([[0.1, 0.2, 0.7]])
    W1 = np.array([[0.1, 0.2, 0.3], [0.3, 0.2, 0.7], [0.4, 0.3, 0.9]])
    W2 = np.array([[0.2, 0.3, 0.5], [0.3, 0.5, 0.7], [0.6, 0.4, 0.8]])
    W3 = np.array([[0.1, 0.4, 0.8], [0.3, 0.7, 0.2], [0.5, 0.2, 0.9]])
    a3 = softmax(sigmoid(np.maximum(x @ W1 + 1, 0) @ W2 + 1) @ W3 + 1)
    got = [e.expected for e in seed_report.by_name("a3")]
    np.testing.assert_allclose(got, a3[0], rtol=1e-12)


def test_seed_errata_causes(seed_report):
    marks = {}
    for e in seed_report.entries:
        if "@" not in e.written:
            marks[(e.name, e.index)] = e
    for place, cause in SEED_CAUSES.items():
        e = marks[place]
        assert e.verdict == "wrong", e
        assert e.diagnosis == cause, (place, e.diagnosis, e.explanation)
    # -log10(0.2698) = 0.56896 and -log10(0.6777) = 0.16896 are only near what is printed.
    assert marks[("loss_terms", (0,))].match == "possible"  # "near" is now called "possible"
    assert marks[("loss_terms", (2,))].match == "exact"
    # Carried forward: dE/dO_out1 = -1/0.2698 from the wrong O_out; the whole dW_jk, dW_ij.
    assert marks[("dL_da3", (0,))].verdict == "follows"
    for r in range(3):
        for c in range(3):
            assert marks[("dW2", (r, c))].verdict == "follows"
            assert marks[("dW1", (r, c))].verdict == "follows"
            assert marks[("W1_new", (r, c))].verdict == "follows"
    assert all(marks[("z1", (u,))].verdict == "ok" for u in range(3))


def test_seed_every_wrong_number_is_named_or_listed(seed_report):
    unexplained = {
        (e.name, e.index)
        for e in seed_report.wrong()
        if e.diagnosis is None and "@" not in e.written
    }
    assert unexplained == SEED_UNEXPLAINED
    for e in seed_report.wrong():
        if "@" in e.written and e.diagnosis is None:
            assert (e.name, e.index) in SEED_UNEXPLAINED
    layer1 = [e for e in seed_report.wrong() if e.written == "W_ij@layer1_example"]
    assert {e.index for e in layer1} == {(0, 1), (1, 1), (2, 0), (2, 1)}
    assert all(e.diagnosis == "wrong_source_value" for e in layer1)


# -- malformed worksheets ------------------------------------------------------------------
def _sheet(values: str) -> str:
    Ws, bs, x, y = random_network(0)
    return worksheet_text(Ws, bs, ACTS, x, y, LOSS, 0.1, {}) + values


@pytest.mark.parametrize(
    ("values", "field", "words"),
    [
        ("h9_out = [1.0, 2.0, 3.0]\n", "values.h9_out", "unknown name"),
        ("z7 = [1.0, 2.0, 3.0]\n", "values.z7", "unknown name"),
        ("z1 = [1.0, 2.0]\n", "values.z1", "shape (2,)"),
        ("dW1 = [1.0, 2.0, 3.0]\n", "values.dW1", "expected shape (3, 3)"),
        ('a1 = [1.0, "two", 3.0]\n', "values.a1", "text 'two'"),
        ('loss = "small"\n', "values.loss", "text"),
        ("dW1 = [[1.0, 2.0], [1.0]]\n", "values.dW1", "equal length"),
    ],
)
def test_malformed_worksheet_is_a_clear_error(values, field, words):
    """A bad value is listed (file, field, what was expected and what came) and the rest
    of the sheet is still marked; a sheet with nothing markable is one clear error."""
    sheet = parse_worksheet(_sheet(values + "loss_terms = [0.5, 0.5, 0.5]\n"), "bad.toml")
    notes = [n for n in sheet.notes if n.field == field]
    assert len(notes) == 1 and words in notes[0].message, sheet.notes
    report = check(sheet)
    assert len(report.by_name("loss_terms")) == 3
    if "shape" in words:  # a wrong shape is marked wrong, not refused
        assert report.by_name(field.split(".")[1])
        assert all(e.verdict == "wrong" for e in report.by_name(field.split(".")[1]))
        return
    with pytest.raises(GlassnetError) as info:
        parse_worksheet(_sheet(values), "bad.toml")
    msg = str(info.value)
    assert "bad.toml" in msg and field in msg and words in msg, msg


def test_empty_values_is_an_error():
    with pytest.raises(GlassnetError, match="values"):
        parse_worksheet(_sheet(""), "empty.toml")


def test_cli_bad_worksheet_exits_2_one_line(tmp_path, capsys):
    path = tmp_path / "bad.toml"
    path.write_text(_sheet('z1 = "one"\n'))
    assert main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bad.toml" in err and "values.z1" in err
    assert main(["check", str(tmp_path / "missing.toml")]) == 2


# -- output --------------------------------------------------------------------------------
def test_cli_json_schema(capsys):
    assert main(["check", "seed", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    e = data["entries"][0]
    for k in ("name", "index", "given", "expected", "follows_from_given", "verdict"):
        assert k in e
    assert {"diagnosis", "explanation"} <= set(e)
    s = data["summary"]
    assert s["ok"] + s["follows"] + s["wrong"] == s["values"] == len(data["entries"])
    assert all(x["verdict"] in ("ok", "follows", "wrong") for x in data["entries"])


def test_cli_table_and_documents(tmp_path, capsys):
    assert main(["check", "seed"]) == 0
    out = capsys.readouterr().out
    assert "normalize_not_softmax" in out and "wrong" in out
    md, html = tmp_path / "r.md", tmp_path / "r.html"
    assert main(["check", "seed", "--format", "md", "-o", str(md)]) == 0
    assert main(["check", "seed", "--format", "html", "-o", str(html)]) == 0
    assert "| a3 (O_out)[0]" in md.read_text() and "log10" in md.read_text()
    assert "<table>" in html.read_text() and "class='wrong'" in html.read_text()
    report = check_worksheet("seed")
    assert json.loads(to_json(report))["summary"]["wrong"] == len(report.wrong())
    assert to_markdown(report).count("\n| ") >= len(report.entries)
    assert "<tr class='ok'>" in to_html(report)


def test_rtol_overrides_the_digits():
    loose = check_worksheet("seed", rtol=0.5)
    strict = check_worksheet("seed")
    assert sum(e.verdict == "ok" for e in loose.entries) > sum(
        e.verdict == "ok" for e in strict.entries
    )
    with pytest.raises(GlassnetError):
        check_worksheet("seed", rtol=-1.0)


# -- exercises -----------------------------------------------------------------------------
def test_exercise_filled_right_is_all_ok(tmp_path):
    ex = make_exercise([3, 2, 2], ["relu", "softmax"], seed=4)
    spec = ex.spec
    Ws = [layer.W for layer in spec.network.layers]
    bs = [layer.b for layer in spec.network.layers]
    ref = reference_step(Ws, bs, ["relu", "softmax"], spec.x, spec.y, spec.loss, spec.lr)
    # Weights and inputs have one decimal.
    assert all(np.allclose(W, np.round(W, 1)) for W in Ws)
    lines = ex.worksheet_text.splitlines()
    assert "[values]" in lines and any(line.startswith("# dW1 = ") for line in lines)
    filled = ex.worksheet_text
    for name in ("z1", "a1", "z2", "a2", "delta2", "dW1", "W2_new"):
        v = ref[name][0] if ref[name].ndim == 2 and not name.startswith(("dW", "W")) else ref[name]
        filled += (
            f"{name} = {np.array2string(v, precision=10, separator=', ', floatmode='fixed')}\n"
        )
    report = check(parse_worksheet(filled.replace("\n ", " "), "ex.toml"))
    assert len(report.entries) > 10
    assert all(e.verdict == "ok" for e in report.entries), report.wrong()


def test_exercise_cli_writes_three_files(tmp_path):
    assert main(["exercise", "--layers", "2,2,2", "--seed", "1", "-o", str(tmp_path)]) == 0
    for name in ("exercise.toml", "worksheet.toml", "answers.md"):
        assert (tmp_path / name).read_text()
    assert main(["exercise", "--layers", "2,2,2", "-o", str(tmp_path)]) == 2  # no overwrite


def test_a_number_past_floats_range_is_a_clear_error_not_a_crash(tmp_path):
    # 1e5000 reads as inf: the sheet's precision and the tolerance must not overflow
    # (found by the studio's hostile-input battery).
    import subprocess
    import sys

    sheet = tmp_path / "big.toml"
    sheet.write_text('spec = "seed"\n[values]\nloss = 1e5000\n')
    out = subprocess.run(
        [sys.executable, "-m", "glassnet", "check", str(sheet)], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "expected a finite number" in out.stderr and "Traceback" not in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1
