"""glassnet check for a class: roster exercises (one reproducible variant per student),
the gradebook, the class report, and the terminal view of one sheet."""

from __future__ import annotations

import csv
import io

import numpy as np
import pytest

from glassnet.check import check, check_worksheet, parse_worksheet
from glassnet.check.exercise import (
    make_exercise,
    roster_exercise,
    roster_worksheet,
    variant_seed,
)
from glassnet.check.report import print_report, to_markdown
from glassnet.cli import main

from check_reference import reference_step

OPTIONS = [
    {"layers": [3, 3, 3], "activations": ["sigmoid", "softmax"]},
    {"layers": [2, 3, 2], "activations": ["relu", "softmax"], "decimals": 2},
    {"layers": [3, 2, 1], "activations": ["tanh", "sigmoid"], "lr": 0.5},
    {"layers": [2, 2, 2], "activations": ["sigmoid", "identity"], "loss": "half_sse"},
    {"layers": [3, 3, 2], "activations": ["leaky_relu", "identity"], "loss": "mse"},
]


@pytest.mark.parametrize("options", OPTIONS)
def test_every_generated_key_marks_itself_all_ok(options):
    for n in range(12):
        student = f"s{n:03d}"
        ex = roster_exercise(student, "hw1", options)
        text = roster_worksheet(ex, student, "hw1") + "\n".join(ex.key_lines) + "\n"
        report = check(parse_worksheet(text, f"{student}.toml"))
        assert report.sheet.student == student
        assert len(report.entries) > 10
        assert all(e.verdict == "ok" for e in report.entries), report.wrong()[:2]
        assert "-0.0000" not in ex.answer_markdown


def test_variant_is_reproducible_and_per_student():
    assert variant_seed("s001", "hw1") == variant_seed("s001", "hw1")
    seeds = {variant_seed(f"s{n}", "hw1") for n in range(50)}
    assert len(seeds) == 50
    assert variant_seed("s001", "hw1") != variant_seed("s001", "hw2")
    a = roster_exercise("s001", "hw1").spec_text
    assert a == roster_exercise("s001", "hw1").spec_text
    assert a != roster_exercise("s002", "hw1").spec_text


def test_roster_sheet_is_marked_against_its_own_variant(tmp_path):
    """The sheet names only student and assignment: check rebuilds that network."""
    ex = roster_exercise("ann", "quiz")
    spec = ex.spec
    Ws = [layer.W for layer in spec.network.layers]
    bs = [layer.b for layer in spec.network.layers]
    ref = reference_step(Ws, bs, ["sigmoid", "softmax"], spec.x, spec.y, spec.loss, spec.lr)
    z1 = np.round(ref["z1"][0], 4)
    text = (
        'student = "ann"\nassignment = "quiz"\n[values]\nz1 = ['
        + ", ".join(f"{v:.4f}" for v in z1)
        + "]\n"
    )
    report = check(parse_worksheet(text, "ann.toml"))
    assert [e.verdict for e in report.entries] == ["ok"] * 3
    # the same numbers under another student's id are another network's
    other = check(parse_worksheet(text.replace('"ann"', '"bob"'), "bob.toml"))
    assert any(e.verdict == "wrong" for e in other.entries)


def test_exercise_writes_softmax_derivative_as_a_matrix():
    ex = make_exercise([3, 3, 3], ["sigmoid", "softmax"], seed=2)
    assert "# da2_dz2 = [[_, _, _], [_, _, _], [_, _, _]]" in ex.worksheet_text
    assert "# da1_dz1 = [_, _, _]" in ex.worksheet_text


def _class_folder(tmp_path):
    """Three students' filled sheets: one right, one who left out the activation's
    derivative in delta1 (planted by hand below), one unreadable value."""
    out = tmp_path / "hw"
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\ns1,Ann\ns2,Bob\ns3,Cy\n")
    assert main(["exercise", "--roster", str(roster), "--assignment", "hw", "-o", str(out)]) == 0
    for sid in ("s1", "s2", "s3"):
        ex = roster_exercise(sid, "hw")
        sheet = out / sid / "worksheet.toml"
        lines = list(ex.key_lines)
        if sid == "s2":
            # delta1 = dL_da1 (no da/dz): the key's own dL_da1 numbers copied into delta1
            dL = next(v for v in lines if v.startswith("dL_da1 = ")).split(" = ")[1]
            lines = [f"delta1 = {dL}" if v.startswith("delta1 = ") else v for v in lines]
            lines = [v for v in lines if not v.startswith(("dW1", "db1", "W1_new", "b1_new"))]
        if sid == "s3":
            lines = ["z1 = [1/2, 0,3, 0.1]", *lines[1:]]
        sheet.write_text(sheet.read_text() + "\n".join(lines) + "\n")
    return out


def test_gradebook_and_class_report(tmp_path, capsys):
    out = _class_folder(tmp_path)
    book = tmp_path / "marks.csv"
    assert main(["check", str(out), "--gradebook", str(book)]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert sum(line.startswith(str(out)) for line in lines) == 3  # one line per student
    assert "1 of 3: missing_activation_derivative at delta1" in text
    rows = list(csv.DictReader(io.StringIO(book.read_text())))
    assert [r["student"] for r in rows] == ["s1", "s2", "s3"]
    for col in ("file", "values", "ok", "follows", "wrong", "named mistakes", "unreadable parts"):
        assert col in rows[0]
    assert "z1" in rows[0] and "delta1" in rows[0] and "W2_new" in rows[0]
    assert rows[0]["wrong"] == "0" and rows[0]["ok"] == rows[0]["values"]
    assert "missing_activation_derivative at delta1" in rows[1]["named mistakes"]
    assert rows[1]["delta1"].startswith("0/")
    assert "values.z1" in rows[2]["unreadable parts"] and "1/2" in rows[2]["unreadable parts"]
    assert rows[2]["z1"] == ""  # nothing marked there, everything else is
    assert int(rows[2]["values"]) > 10
    canvas = tmp_path / "canvas.csv"
    assert (
        main(["check", str(out), "--gradebook", str(canvas), "--gradebook-format", "canvas"]) == 0
    )
    rows = list(csv.reader(io.StringIO(canvas.read_text())))
    assert rows[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "hw"]
    assert rows[1][0].strip() == "Points Possible" and rows[1][5] == "100"
    assert rows[2][2] == "s1" and float(rows[2][5]) == 100.0
    assert float(rows[3][5]) < 100.0


def test_follows_names_the_earlier_value_it_used(tmp_path):
    out = _class_folder(tmp_path)
    report = check_worksheet(out / "s2" / "worksheet.toml")
    # with dW1 etc. removed, nothing follows; put a follower back: db1 = sum of delta1
    ex = roster_exercise("s2", "hw")
    delta1 = next(e for e in report.by_name("delta1"))
    assert delta1.verdict == "wrong"
    text = (out / "s2" / "worksheet.toml").read_text()
    dL = next(v for v in ex.key_lines if v.startswith("dL_da1 = ")).split(" = ")[1]
    text += f"db1 = {dL}\n"
    report = check(parse_worksheet(text, "s2.toml"))
    db1 = report.by_name("db1")
    assert all(e.verdict == "follows" for e in db1)
    assert "marked using your delta1[0] = " in db1[0].explanation


@pytest.mark.parametrize(
    ("line", "words"),
    [("loss = 1/2", "fraction"), ("loss = 0,5", "decimal comma"), ("z1 = [0,5, 0,25]", "")],
)
def test_fractions_and_decimal_commas_say_so(line, words):
    ex = make_exercise([2, 2, 2], ["sigmoid", "softmax"], seed=1)
    sheet = parse_worksheet(ex.worksheet_text + line + "\na1 = [0.5, 0.5]\n", "w.toml")
    name = line.split(" = ")[0]
    notes = [n for n in sheet.notes if n.field == f"values.{name}"]
    assert len(notes) == 1, sheet.notes
    assert "decimal comma" in notes[0].message or words in notes[0].message
    if words:
        assert words in notes[0].message and "Unclosed" not in notes[0].message
    assert check(sheet).by_name("a1")  # the rest is marked


def test_unknown_name_names_the_closest(tmp_path):
    ex = make_exercise([2, 2, 2], ["sigmoid", "softmax"], seed=1)
    sheet = parse_worksheet(
        ex.worksheet_text + "dw2 = [[0.1, 0.2], [0.3, 0.4]]\na1 = [0.5, 0.5]\n", "w.toml"
    )
    assert "did you mean 'dW2'" in sheet.notes[0].message


def test_output_and_a_L_are_one_quantity():
    ex = make_exercise([2, 2, 2], ["sigmoid", "softmax"], seed=1)
    a2 = next(v for v in ex.key_lines if v.startswith("a2 = ")).split(" = ")[1]
    same_out = check(parse_worksheet(ex.worksheet_text + f"output = {a2}\n", "o.toml"))
    same_a = check(parse_worksheet(ex.worksheet_text + f"a2 = {a2}\n", "a.toml"))
    assert [e.name for e in same_out.entries] == [e.name for e in same_a.entries] == ["a2"] * 2
    assert [e.tolerance for e in same_out.entries] == [e.tolerance for e in same_a.entries]
    both = parse_worksheet(ex.worksheet_text + f"output = {a2}\na2 = [0.5, 0.5]\n", "b.toml")
    assert any("same quantity" in n.message for n in both.warnings())


def test_terminal_table(capsys, tmp_path):
    from rich.console import Console

    ex = make_exercise([2, 2, 2], ["sigmoid", "softmax"], seed=1)
    right = check(parse_worksheet(ex.worksheet_text + "\n".join(ex.key_lines) + "\n", "r"))
    con = Console(width=140, file=io.StringIO())
    print_report(right, console=con)
    shown = con.file.getvalue()
    assert shown.count("\n") == 1 and "ok" in shown  # all ok: one line, no empty table
    a1 = next(v for v in ex.key_lines if v.startswith("a1 = "))
    sheet = ex.worksheet_text + a1 + "\nz2 = [0.8000, -0.0000]\n"
    con = Console(width=140, file=io.StringIO())
    print_report(check(parse_worksheet(sheet, "r")), everything=True, console=con)
    shown = con.file.getvalue()
    assert "0.8000" in shown and "-0.0000" not in shown and "-0 " not in shown
    assert "z2 (O_in)[0]" in shown  # our name and the seed's on one line
    assert "Errata" not in to_markdown(right)
    assert "Errata" in to_markdown(check_worksheet("seed"))


def test_bad_rosters_are_one_line_errors_and_write_nothing(tmp_path, capsys):
    out = tmp_path / "out"
    dup = tmp_path / "dup.csv"
    dup.write_text("id,name\ns1,A\ns1,B\n")
    empty = tmp_path / "empty.csv"
    empty.write_text("id\n\n")
    for args in (
        ["--roster", str(dup), "--assignment", "a"],
        ["--roster", str(empty), "--assignment", "a"],
        ["--roster", str(tmp_path / "missing.csv"), "--assignment", "a"],
        ["--roster", str(dup)],
    ):
        assert main(["exercise", *args, "-o", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("glassnet: error: ")
    assert not out.exists()
