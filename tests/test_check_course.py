"""check for a course: rubric scores, diagnoses at their strength, layouts marked as
written.

The sheets are worked by an independent student model (tests/check_reference.py: plain
NumPy from the textbook formulas, no glassnet code): every quantity from the student's
own earlier rounded numbers, with mistakes planted by hand.  The expected scores are
worked out below from the rubric's arithmetic (docs/check.md, "Rubrics"), not taken from
glassnet's output.
"""

from __future__ import annotations

import collections
import io

import numpy as np
import pytest

from glassnet.check import check, parse_rubric, parse_worksheet
from glassnet.check.report import class_report, gradebook, print_report
from glassnet.check.rubric import DEFAULT, findings, grade
from glassnet.cli import main
from glassnet.errors import GlassnetError

from check_reference import (
    FORWARD,
    LR,
    loss_terms,
    random_network,
    sheet_text,
    student_step,
    toml_array,
)

CONFIGS = [
    (("sigmoid", "sigmoid"), "binary_cross_entropy"),
    (("tanh", "identity"), "half_sse"),
    (("relu", "softmax"), "cross_entropy"),
    (("sigmoid", "identity"), "mse"),
    (("tanh", "softmax"), "cross_entropy"),
    (("leaky_relu", "sigmoid"), "half_sse"),
]


def _sheet(values, acts=("sigmoid", "sigmoid"), loss="binary_cross_entropy", seed=5):
    Ws, bs, x, y = random_network(seed)
    return check(parse_worksheet(sheet_text(Ws, bs, acts, x, y, loss, values, 4), "s.toml"))


# -- the 2 % bar: random arithmetic slips are rarely named exactly ---------------------------


def test_random_arithmetic_slips_rarely_get_an_exact_name():
    """600 sheets on random networks, each with arithmetic slips in 4 random quantities
    (a random place, ±(1 to 10)·10⁻ᵖ for p = 1, 2, 3: a slip, not any catalogue rule).
    In every quantity at most 2 % of the slips marked wrong may be named with strength
    "exact".  (A slip is at least 20 units of the 4th decimal: marked wrong but where
    the band is wide for a reason, at a ReLU's kink.)"""
    rng = np.random.default_rng(2025)
    slips: collections.Counter[str] = collections.Counter()
    named: collections.Counter[str] = collections.Counter()
    examples: dict[str, list[str]] = collections.defaultdict(list)
    inside = 0
    for t in range(600):
        acts, loss = CONFIGS[t % len(CONFIGS)]
        Ws, bs, x, y = random_network(5000 + t, positive_last=acts[1] == "softmax")
        clean = student_step(Ws, bs, acts, x, y, loss, LR)
        names = sorted(clean)
        chosen = rng.choice(len(names), size=4, replace=False)
        offsets = {}
        for c in chosen:
            name = names[int(c)]
            idx = tuple(int(rng.integers(s)) for s in np.shape(clean[name]))
            amount = rng.uniform(1, 10) * 10.0 ** -int(rng.integers(1, 4)) * rng.choice([-1, 1])
            offsets[name] = (idx, float(amount))
        with np.errstate(invalid="ignore", divide="ignore"):  # a slip may leave (0, 1)
            values = student_step(Ws, bs, acts, x, y, loss, LR, offsets=offsets)
        if not all(np.all(np.isfinite(v)) for v in values.values()):
            continue  # a slip that takes a log of a negative number: no sheet
        report = check(parse_worksheet(sheet_text(Ws, bs, acts, x, y, loss, values, 4), "s"))
        for name in offsets:
            es = [e for e in report.entries if e.name == name and e.verdict == "wrong"]
            if not es:
                # Inside its band: a ReLU's derivative at a z written as 0.0000 may be
                # anything from 0 to 1 (z's rounding may cross the kink).
                inside += 1
                continue
            slips[name] += 1
            exact = [e for e in es if e.diagnosis and e.match == "exact"]
            if exact:
                named[name] += 1
                examples[name].append(exact[0].diagnosis or "")
    assert inside <= 0.01 * sum(slips.values()), inside
    assert len(slips) >= 18 and min(slips.values()) >= 90, slips
    for name, n in slips.items():
        assert named[name] <= 0.02 * n, (name, named[name], n, examples[name])


def test_lr_slip_on_the_whole_matrix_is_exact_on_one_number_only_possible():
    """W − lr²·dW (the learning rate ×0.1) over all of W2_new is named exactly; the same
    on one number only — what a +0.002-type slip also looks like — is "possible"."""
    Ws, bs, x, y = random_network(5)
    acts, loss = ("sigmoid", "sigmoid"), "binary_cross_entropy"
    whole = student_step(
        Ws, bs, acts, x, y, loss, LR, slips={"W2_new": lambda v: Ws[1] - LR * LR * v["dW2"]}
    )
    report = _sheet(whole)
    w2 = report.by_name("W2_new")
    assert all(e.verdict == "wrong" and e.diagnosis == "lr_slip" for e in w2)
    assert all(e.match == "exact" for e in w2)

    def one(v):
        W = Ws[1] - LR * v["dW2"]
        W[0, 0] = Ws[1][0, 0] - LR * LR * v["dW2"][0, 0]
        return W

    report = _sheet(student_step(Ws, bs, acts, x, y, loss, LR, slips={"W2_new": one}))
    (e,) = report.wrong()
    assert (e.name, e.index, e.diagnosis, e.match) == ("W2_new", (0, 0), "lr_slip", "possible")
    assert "only possibly" in e.explanation


# -- rubric scores, by hand -------------------------------------------------------------------


def test_default_rubric_scores_by_hand():
    """The default rubric on a 3-3-3 network (two layers): forward 30 over z1, a1, z2, a2
    (7.5 each), error 10 over loss_terms, loss, backward 35 over its 10 quantities (3.5
    each), update 25 over W1_new, b1_new, W2_new, b2_new (6.25 each); no after stage, so
    100 points are available and the total is 100.  5 points per distinct exact mistake."""
    Ws, bs, x, y = random_network(5)
    acts, loss = ("sigmoid", "sigmoid"), "binary_cross_entropy"
    full = student_step(Ws, bs, acts, x, y, loss, LR)
    # everything right: 100
    g = grade(_sheet(full))
    assert (g.points, g.total, g.penalties, g.missing) == (100.0, 100.0, [], [])
    # only z1, right: 7.5 of 100 (never "100 % of what was written")
    g = grade(_sheet({"z1": full["z1"]}))
    assert g.points == pytest.approx(7.5) and g.total == 100.0
    assert len(g.missing) == 19  # the 20 quantities of the step but z1
    # the forward pass alone: 30
    g = grade(_sheet({k: full[k] for k in ("z1", "a1", "z2", "a2")}))
    assert g.points == pytest.approx(30.0)
    # the learning rate ×10 in all of W2_new: W2_new's 6.25 lost, lr_slip's 5: 88.75
    slipped = student_step(
        Ws, bs, acts, x, y, loss, LR, slips={"W2_new": lambda v: Ws[1] - 10 * LR * v["dW2"]}
    )
    report = _sheet(slipped)
    assert [e.name for e in report.wrong()] == ["W2_new"] * 9
    assert {(e.diagnosis, e.match) for e in report.wrong()} == {("lr_slip", "exact")}
    g = grade(report)
    assert g.points == pytest.approx(100 - 6.25 - 5)
    assert g.penalties == [("lr_slip", 5.0)]
    # the activation's derivative left out at delta2 and at delta1: one mistake, charged
    # once (5), plus delta2's and delta1's 3.5 each; everything after them follows: 88
    forgot = student_step(
        Ws,
        bs,
        acts,
        x,
        y,
        loss,
        LR,
        slips={"delta2": lambda v: v["dL_da2"].copy(), "delta1": lambda v: v["dL_da1"].copy()},
    )
    report = _sheet(forgot)
    assert {e.name for e in report.wrong()} == {"delta1", "delta2"}
    assert {e.diagnosis for e in report.wrong()} == {"missing_activation_derivative"}
    assert any(e.verdict == "follows" for e in report.entries)
    g = grade(report)
    assert g.points == pytest.approx(100 - 2 * 3.5 - 5)
    stages = {s.stage: (s.points, s.possible) for s in g.stages}
    assert stages["backward"] == pytest.approx((35 - 7, 35))
    assert stages["update"] == pytest.approx((25, 25))  # follows earns full credit
    assert report.summary()["score"] == pytest.approx(88.0)


def test_a_rubric_file_scores_by_hand():
    """follows = 0.5, forward 10 and backward 10 (error, update: none), z1, a1 and dW1
    required, 2 points per exact mistake.  The sheet: z1 with one arithmetic slip, a1
    worked from it.  Forward: z1 and a1 share 10 (5 each): z1 earns 5·2/3 (two ok, one
    wrong), a1 5·(2 + 0.5)/3 (two ok, one follows).  Backward: dW1 is required and
    missing, so it holds all 10 and earns 0.  7.5 of 20; with total = 100, 37.5."""
    text = """
follows = 0.5
required = ["z1", "a1", "dW1"]
[points]
forward = 10
backward = 10
[penalty]
each = 2
"""
    rubric = parse_rubric(text, "r.toml")
    Ws, bs, x, y = random_network(5)
    acts, loss = ("sigmoid", "sigmoid"), "binary_cross_entropy"
    v = student_step(Ws, bs, acts, x, y, loss, LR, offsets={"z1": ((0, 1), 0.3137)})
    report = _sheet({"z1": v["z1"], "a1": v["a1"]})
    marks = {(e.name, e.index): e for e in report.entries}
    assert [marks[("z1", (i,))].verdict for i in range(3)] == ["ok", "wrong", "ok"]
    assert [marks[("a1", (i,))].verdict for i in range(3)] == ["ok", "follows", "ok"]
    assert marks[("z1", (1,))].match != "exact"  # no penalty: nothing named exactly
    g = grade(report, rubric)
    assert g.points == pytest.approx(5 * 2 / 3 + 5 * 2.5 / 3)
    assert g.points == pytest.approx(7.5) and g.total == 20.0
    assert g.missing == ["dW1"]
    g = grade(report, parse_rubric(text.replace("[points]", "total = 100\n[points]"), "r"))
    assert g.points == pytest.approx(37.5) and g.total == 100.0


def test_after_stage_is_scaled_to_the_total():
    """With after = true the default's stages add up to 110; scaled to 100: a sheet with
    only loss@after right earns the after stage's 10 of 110, shared by z1, a1, z2, a2,
    loss_terms, loss after (6 quantities): (10/6)·(100/110)."""
    Ws, bs, x, y = random_network(5)
    acts, loss = ("sigmoid", "sigmoid"), "binary_cross_entropy"
    v = student_step(Ws, bs, acts, x, y, loss, LR)
    a = x
    for W, b, act in zip([v["W1_new"], v["W2_new"]], [v["b1_new"], v["b2_new"]], acts, strict=True):
        a = FORWARD[act](a @ W + b)
    text = "after = true\n" + sheet_text(Ws, bs, acts, x, y, loss, {}, 4)
    text += f'"loss@after" = {loss_terms(loss, a, y).sum():.4f}\n'
    report = check(parse_worksheet(text, "after.toml"))
    assert [e.verdict for e in report.entries] == ["ok"]
    g = grade(report)
    assert g.points == pytest.approx(10 / 6 * 100 / 110) and g.total == 100.0


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("[points]\nforward = -1\n", "points.forward"),
        ("[points]\nforwrd = 'x'\n", "points.forwrd"),
        ("follows = 'half'\n[points]\nforward = 1\n", "follows"),
        ("follows = 2\n[points]\nforward = 1\n", "follows"),
        ("required = 'z1'\n[points]\nforward = 1\n", "required"),
        ("[penalty]\neach = 1\n", "points"),
        ('[points]\nforward = 1\n[penalty]\n"no such" = 1\n', "penalty.no such"),
        ("total = 0\n[points]\nforward = 1\n", "total"),
        ("bonus = 1\n[points]\nforward = 1\n", "bonus"),
    ],
)
def test_bad_rubric_is_one_line_naming_the_field(text, field):
    with pytest.raises(GlassnetError) as err:
        parse_rubric(text, "r.toml")
    assert err.value.field == field and "\n" not in str(err.value)


def test_rubric_naming_a_quantity_the_step_lacks(tmp_path, capsys):
    rubric = tmp_path / "r.toml"
    rubric.write_text("[points]\nforward = 10\ndW9 = 3\n")
    assert main(["check", "seed", "--rubric", str(rubric)]) == 2
    err = capsys.readouterr().err
    assert "points.dW9" in err and str(rubric) in err and err.count("\n") == 1
    # a mistake id with a typo is an error too, never a silent 0 (in a folder: once)
    rubric.write_text("[points]\nforward = 10\n[penalty]\nlr_slp = 3\n")
    folder = tmp_path / "class"
    folder.mkdir()
    for name in ("a", "b"):
        (folder / f"{name}.toml").write_text('spec = "seed"\n[values]\nloss = 0.985\n')
    assert main(["check", str(folder), "--rubric", str(rubric)]) == 2
    err = capsys.readouterr().err
    assert "penalty.lr_slp" in err and err.count("\n") == 1


def test_cli_rubric_scores_in_terminal_json_and_gradebook(tmp_path, capsys):
    Ws, bs, x, y = random_network(5)
    acts, loss = ("sigmoid", "sigmoid"), "binary_cross_entropy"
    v = student_step(Ws, bs, acts, x, y, loss, LR)
    sheet = tmp_path / "ann.toml"
    sheet.write_text(sheet_text(Ws, bs, acts, x, y, loss, {"z1": v["z1"]}, 4))
    rubric = tmp_path / "r.toml"
    rubric.write_text("[points]\nforward = 8\n")  # z1 is one of 4 forward quantities: 2
    assert main(["check", str(sheet), "--rubric", str(rubric)]) == 0
    assert f"score 2 of 8 by {rubric}" in " ".join(capsys.readouterr().out.split())
    assert main(["check", str(sheet), "--json"]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert data["summary"]["score"] == 7.5 and data["grade"]["total"] == 100.0
    book = tmp_path / "marks.csv"
    args = ["check", str(tmp_path), "--gradebook", str(book), "--rubric", str(rubric)]
    (tmp_path / "r.toml").rename(tmp_path / "r.rubric")  # not a worksheet of the folder
    args[-1] = str(tmp_path / "r.rubric")
    assert main(args) == 0
    import csv

    (row,) = list(csv.DictReader(io.StringIO(book.read_text())))
    assert (row["score"], row["out of"]) == ("2", "8")


# -- diagnoses at their strength, in every output ----------------------------------------------


def _class():
    """Three sheets: lr_slip over all of W2_new (exact), lr_slip at one number of W2_new
    (possible), an unexplained slip in dW2."""
    Ws, bs, x, y = random_network(5)
    acts, loss = ("sigmoid", "sigmoid"), "binary_cross_entropy"

    def one(v):
        W = Ws[1] - LR * v["dW2"]
        W[0, 0] = Ws[1][0, 0] - LR * LR * v["dW2"][0, 0]
        return W

    plans = [
        {"slips": {"W2_new": lambda v: Ws[1] - 10 * LR * v["dW2"]}},
        {"slips": {"W2_new": one}},
        {"offsets": {"dW2": ((1, 1), 0.3137)}},
    ]
    out = []
    for i, plan in enumerate(plans):
        v = student_step(Ws, bs, acts, x, y, loss, LR, **plan)
        text = f'student = "s{i}"\n' + sheet_text(Ws, bs, acts, x, y, loss, v, 4)
        out.append((f"s{i}.toml", check(parse_worksheet(text, f"s{i}.toml")), None))
    return out


def test_class_report_counts_exact_possible_and_unexplained_apart():
    marked = _class()
    dw2 = [e for e in marked[2][1].wrong()]
    assert [(e.name, e.diagnosis) for e in dw2] == [("dW2", None)]
    lines = class_report(marked)
    assert lines == [
        "1 of 3: lr_slip at W2_new (exact)",
        "1 of 3: lr_slip at W2_new (possible)",
        "1 of 3: dW2 wrong, unexplained",
    ]
    import csv

    rows = list(csv.DictReader(io.StringIO(gradebook(marked))))
    assert rows[0]["named mistakes"] == "lr_slip at W2_new (exact)"
    assert rows[1]["named mistakes"] == "lr_slip at W2_new (possible)"
    assert rows[2]["unexplained"] == "dW2: 1" and rows[2]["named mistakes"] == ""
    # a possible diagnosis costs no penalty; an exact one does
    g0, g1 = marked[0][1].grade(), marked[1][1].grade()
    assert g0.penalties == [("lr_slip", 5.0)] and g1.penalties == []
    assert [(f.id, f.strength, f.numbers) for f in findings(marked[1][1])] == [
        ("lr_slip", "possible", 1)
    ]
    # JSON: every entry's strength
    d = marked[1][1].to_dict()
    (wrong,) = [e for e in d["entries"] if e["verdict"] == "wrong"]
    assert wrong["match"] == "possible"
    assert d["summary"]["possible"] == 1 and d["summary"]["diagnosed"] == 0


def test_terminal_table_shows_strength_and_title():
    from rich.console import Console

    marked = _class()
    con = Console(width=200, file=io.StringIO())
    print_report(marked[1][1], console=con)
    shown = con.file.getvalue()
    assert "lr_slip (possible): the learning rate off by a power of ten" in shown


# -- layouts marked as written ----------------------------------------------------------------


def _layout_spec(Ws, bs, acts, x, y, loss, layout, row0, after=False) -> str:
    lines = [f'loss = "{loss}"', f"lr = {LR}", f"input = {toml_array(x, 2)}"]
    lines += [f"target = {toml_array(y, 1)}", f'layout = "{layout}"']
    if row0:
        lines.append('bias = "row0"')
    if after:
        lines.append("after = true")
    for W, b, act in zip(Ws, bs, acts, strict=True):
        M = np.vstack([b, W]) if row0 else W
        M = M.T if layout == "to_from" else M
        lines += ["[[layers]]", f"weights = {toml_array(M, 2)}"]
        if not row0:
            lines.append(f"bias = {toml_array(b, 2)}")
        lines.append(f'activation = "{act}"')
    return "\n".join(lines) + "\n[values]\n"


def _mat(name: str, M) -> str:
    return f'"{name}" = {toml_array(np.round(M, 4), 4)}\n'


def test_to_from_sheet_with_a_non_square_matrix_in_the_other_layout():
    """A W[to][from] sheet; dW1 and W1_new (3×2, from 3 inputs to 2 units) written
    W[from][to], as the engine holds them: marked as written, wrong, and named exactly
    (the transpose of each is right); it was silently ok before."""
    acts, loss = ("sigmoid", "sigmoid"), "binary_cross_entropy"
    Ws, bs, x, y = random_network(3, sizes=(3, 2, 2))
    v = student_step(Ws, bs, acts, x, y, loss, LR)
    text = _layout_spec(Ws, bs, acts, x, y, loss, "to_from", False)
    for name in ("z1", "a1", "z2", "a2", "dL_da2", "da2_dz2", "delta2", "dL_da1"):
        text += _mat(name, v[name][0])
    text += _mat("da1_dz1", v["da1_dz1"][0]) + _mat("delta1", v["delta1"][0])
    text += _mat("dW1", v["dW1"]) + _mat("W1_new", v["W1_new"])
    report = check(parse_worksheet(text, "t.toml"))
    for name, cid in (("dW1", "transposed_gradient"), ("W1_new", "written_transposed")):
        es = report.by_name(name)
        assert len(es) == 6
        assert all(e.verdict == "wrong" and e.diagnosis == cid and e.match == "exact" for e in es)
        # reported at the places as written (3 rows of 2), right values transposed
        assert {e.index for e in es} == {(i, j) for i in range(3) for j in range(2)}
        assert all(e.expected is not None for e in es)
    assert all(e.verdict == "ok" for e in report.entries if e.name not in ("dW1", "W1_new"))
    assert any("W[to][from]" in n.message for n in report.notes)


@pytest.mark.parametrize("layout", ["to_from", "from_to"])
def test_square_matrix_written_transposed_is_named(layout):
    acts, loss = ("sigmoid", "sigmoid"), "binary_cross_entropy"
    Ws, bs, x, y = random_network(5)
    v = student_step(Ws, bs, acts, x, y, loss, LR)
    text = _layout_spec(Ws, bs, acts, x, y, loss, layout, False)
    as_written = v["W1_new"].T if layout == "to_from" else v["W1_new"]
    text += _mat("W1_new", as_written.T)  # the other way round
    report = check(parse_worksheet(text, "t.toml"))
    es = report.by_name("W1_new")
    off = [e for e in es if e.index[0] != e.index[1]]
    assert len(off) == 6 and all(e.verdict == "wrong" for e in off)
    assert all(e.diagnosis == "written_transposed" and e.match == "exact" for e in off)


def test_values_after_a_misshaped_matrix_are_not_marked_wrong():
    """A W[to][from] sheet with the bias as row 0 (column 0 of W[to][from]); W1_new
    written W[from][to] with its bias row (4×2 where 2×4 belongs): wrong, written
    transposed; the forward pass after the update, worked right from the student's own
    W1_new, is ok (it was 2 wrong and 3 follows before)."""
    acts, loss = ("sigmoid", "sigmoid"), "binary_cross_entropy"
    Ws, bs, x, y = random_network(3, sizes=(3, 2, 2))
    v = student_step(Ws, bs, acts, x, y, loss, LR)
    a = x
    z1 = None
    for W, b, act in zip([v["W1_new"], v["W2_new"]], [v["b1_new"], v["b2_new"]], acts, strict=True):
        z = a @ W + b
        z1 = z if z1 is None else z1
        a = FORWARD[act](z)
    text = _layout_spec(Ws, bs, acts, x, y, loss, "to_from", True, after=True)
    text += _mat("W1_new", np.vstack([v["b1_new"], v["W1_new"]]))  # the other layout
    text += _mat("W2_new", np.vstack([v["b2_new"], v["W2_new"]]).T)  # as the sheet says
    text += _mat("z1@after", z1[0]) + _mat("output@after", a[0])
    text += f'"loss@after" = {loss_terms(loss, a, y).sum():.4f}\n'
    report = check(parse_worksheet(text, "t.toml"))
    w1 = report.by_name("W1_new")
    assert len(w1) == 8
    assert all(e.verdict == "wrong" and e.diagnosis == "written_transposed" for e in w1)
    after = [e for e in report.entries if e.name.endswith("@after")]
    assert len(after) == 5 and all(e.verdict == "ok" for e in after), after
    assert all(e.verdict == "ok" for e in report.by_name("W2_new"))


def test_default_rubric_is_sane():
    assert sum(DEFAULT.stages.values()) == 110 and DEFAULT.total == 100
    assert DEFAULT.follows == 1.0 and DEFAULT.penalty == 5
