"""``glassnet check FOLDER`` for circuit worksheets: a class of roster circuits (one per
student), marked together with a class report and ``--gradebook``; a folder mixing
circuit and network worksheets; bad sheets listed one line each while the others are
still marked.  The students' numbers below are worked by hand (arithmetic in the
comments), or the generated key (which marks itself ok, tests/test_graphs_check.py)."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

import pytest

from glassnet import cli
from glassnet.check.circuit import circuit_exercise

CS231N = 'expression = """\nq = x + y\nf = q * z\n"""\nvalues = { x = -2, y = 5, z = -4 }\n'


def _roster_class(tmp_path: Path) -> Path:
    """Three students' circuits, each their own: anna and ben write their keys (which
    mark themselves ok, tests/test_graphs_check.py), cleo hands in a number that is
    text."""
    roster = tmp_path / "students.csv"
    roster.write_text("id,name\nanna,Anna\nben,Ben\ncleo,Cleo\n", encoding="utf-8")
    out = tmp_path / "hw"
    argv = ["exercise", "--graph", "5", "--gates", "add,mul,sub"]
    assert cli.main([*argv, "--roster", str(roster), "--assignment", "hw3", "-o", str(out)]) == 0
    for sid in ("anna", "ben", "cleo"):
        ex = circuit_exercise(5, ["add", "mul", "sub"], roster=(sid, "hw3"))
        path = out / sid / "worksheet.toml"
        assert path.read_text(encoding="utf-8") == ex.worksheet_text
        lines = list(ex.key_lines)
        if sid == "cleo":
            lines[0] = lines[0].split(" = ")[0] + ' = "three"'
        path.write_text(ex.worksheet_text + "\n".join(lines) + "\n", encoding="utf-8")
    return out


def test_a_roster_class_is_marked_with_its_gradebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _roster_class(tmp_path)
    book = tmp_path / "marks.csv"
    assert cli.main(["check", str(out), "--gradebook", str(book)]) == 2  # cleo's sheet
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert any(line.startswith(f"{out / 'anna' / 'worksheet.toml'} (anna):") for line in lines)
    assert "marked 2 of 3 worksheets; 1 could not be read" in captured.out
    assert captured.err.count("\n") == 1 and "cleo" in captured.err
    rows = list(csv.DictReader(io.StringIO(book.read_text(encoding="utf-8"))))
    assert [r["student"] for r in rows] == ["anna", "ben", ""]
    assert rows[0]["wrong"] == "0" and rows[0]["ok"] == rows[0]["values"]
    assert "df" in rows[0] and "dx" in rows[0] and "q1" in rows[0]
    assert "answers." in rows[2]["unreadable parts"]
    canvas = tmp_path / "canvas.csv"
    argv = ["check", str(out), "--gradebook", str(canvas), "--gradebook-format", "canvas"]
    assert cli.main(argv) == 2
    table = list(csv.reader(io.StringIO(canvas.read_text(encoding="utf-8"))))
    assert table[0][5] == "hw3" and table[2][2] == "anna" and float(table[2][5]) == 100.0
    assert table[4][0] == "cleo" and table[4][5] == ""


def test_an_edited_roster_circuit_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = _roster_class(tmp_path)
    path = out / "anna" / "worksheet.toml"
    text = path.read_text(encoding="utf-8")
    start = text.index("values = {") + len("values = { ")
    name = text[start : text.index(" =", start)]
    # The first variable's value changed (its old value kept under another name).
    edited = text.replace(f"values = {{ {name} = ", f"values = {{ {name} = 9.9, _was = ", 1)
    path.write_text(edited, encoding="utf-8")
    assert cli.main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    # Either the edited value or the unknown name is what is named: never a mark.
    assert "edited" in err or "_was" in err, err
    path.write_text(text.replace('student = "anna"', 'student = "ben"'), encoding="utf-8")
    assert cli.main(["check", str(path)]) == 2
    assert "edited" in capsys.readouterr().err
    # A value made a vector: still an edited sheet, said in one line.
    old = re.search(rf"values = {{ {name} = ([-0-9.]+)", text)
    assert old is not None
    vector = text.replace(old.group(0), f"values = {{ {name} = [1, 2]", 1)
    path.write_text(vector, encoding="utf-8")
    assert cli.main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "edited" in err


def test_a_mixed_folder_marks_circuits_and_networks(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    # CS231n, by hand: q = 3, f = −12, df/dq = z = −4, df/dz = q = 3.  The student
    # writes df/dz = z = −4: the multiply gate's local gradient not swapped.
    (folder / "a_circuit.toml").write_text(
        CS231N + "[answers]\nq = 3\nf = -12\ndq = -4\ndz = -4\n", encoding="utf-8"
    )
    # The network exercise's own key marks ok (tests/test_check_class.py).
    assert cli.main(["exercise", "-o", str(tmp_path / "net")]) == 0
    net = tmp_path / "net" / "worksheet.toml"
    from glassnet.check.exercise import make_exercise

    key = make_exercise([3, 3, 3], None, None, seed=0).key_lines
    text = net.read_text(encoding="utf-8").replace(
        'spec = "exercise.toml"', f'spec = "{tmp_path / "net" / "exercise.toml"}"'
    )
    (folder / "b_network.toml").write_text(text + "\n".join(key) + "\n", encoding="utf-8")
    (folder / "c_bad.toml").write_text(
        'expression = "f = x +"\nvalues = { x = 1 }\n[answers]\nf = 1\n', encoding="utf-8"
    )
    capsys.readouterr()
    book = tmp_path / "book.csv"
    assert cli.main(["check", str(folder), "--gradebook", str(book)]) == 2
    captured = capsys.readouterr()
    assert "marked 2 of 3 worksheets; 1 could not be read" in captured.out
    assert "1 of 2: multiply_not_swapped at dz (exact)" in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and "c_bad.toml" in err[0] and "expression line 1" in err[0]
    rows = list(csv.DictReader(io.StringIO(book.read_text(encoding="utf-8"))))
    assert rows[0]["dz"] == "0/1" and rows[0]["q"] == "1/1"
    assert rows[0]["named mistakes"] == "multiply_not_swapped at dz (exact)"
    # Every number worth the same: 3 of 4 ok is 75 of 100 points.
    assert (rows[0]["score"], rows[0]["out of"]) == ("75", "100")
    assert rows[1]["wrong"] == "0" and rows[1]["z1"] and rows[1]["dz"] == ""
    assert cli.main(["check", str(folder), "--json"]) == 2
    data = json.loads(capsys.readouterr().out)
    first = data["worksheets"][0]["report"]
    assert first["summary"]["wrong"] == 1 and first["entries"][3]["mistake"] == (
        "multiply_not_swapped"
    )
    assert cli.main(["check", str(folder), "--rtol", "0.01"]) == 2
    assert "--rtol" in capsys.readouterr().err


def test_one_circuit_sheet_with_a_gradebook(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "ann.toml"
    path.write_text(CS231N + "[answers]\nq = 3\ndz = 3\n", encoding="utf-8")
    book = tmp_path / "book.csv"
    assert cli.main(["check", str(path), "--gradebook", str(book)]) == 0
    rows = list(csv.DictReader(io.StringIO(book.read_text(encoding="utf-8"))))
    assert rows[0]["ok"] == "2" and rows[0]["q"] == "1/1" and rows[0]["dz"] == "1/1"
    assert cli.main(["check", str(path), str(path), "--all"]) == 0
    assert capsys.readouterr().out.count("q = 3: ok") == 2


def test_the_lms_writers_take_circuit_sheets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Comments, a Moodle gradebook and the roster read a circuit's report as they read a
    network's (its grade, its student); the feedback pages are refused for circuits, in
    one line, before their folder is made."""
    out = _roster_class(tmp_path)
    (out / "cleo" / "worksheet.toml").unlink()  # only the readable sheets
    comments, book = tmp_path / "comments.csv", tmp_path / "moodle.csv"
    argv = ["check", str(out), "--comments", str(comments), "--gradebook", str(book)]
    assert cli.main([*argv, "--lms", "moodle"]) == 0
    rows = list(csv.reader(io.StringIO(comments.read_text(encoding="utf-8"))))
    assert rows[0][:3] == ["Student", "SIS User ID", "Score"]
    assert {r[1] for r in rows[1:]} == {"anna", "ben"} and all(r[2] == "100" for r in rows[1:])
    assert "anna" in book.read_text(encoding="utf-8")
    capsys.readouterr()
    argv = ["check", str(out), "--feedback", str(tmp_path / "pages")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--feedback" in err
    assert not (tmp_path / "pages").exists()
