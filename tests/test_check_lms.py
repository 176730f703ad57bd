"""glassnet check for a course: rosters from Canvas and Moodle exports (and plain CSV
with any separator), the gradebook written back for each LMS's import, the header
checksum of a roster sheet, and the feedback pages a student reads.

The example exports in tests/data/lms are written the way each LMS writes them (see
the README there for the documentation they follow).  The students' sheets are worked
by the plain-NumPy reference step (tests/check_reference.py), with their mistakes
planted by hand."""

from __future__ import annotations

import csv
import io
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from glassnet.check import check_worksheet
from glassnet.check.exercise import read_roster, roster_exercise
from glassnet.check.roster import CANVAS_COLUMNS, read_roster_file, sniff_separator
from glassnet.cli import main
from glassnet.errors import GlassnetError

from check_reference import reference_step, toml_array

DATA = Path(__file__).parent / "data" / "lms"


def _reference(student: str, assignment: str) -> dict[str, np.ndarray]:
    spec = roster_exercise(student, assignment).spec
    Ws = [layer.W for layer in spec.network.layers]
    bs = [layer.b for layer in spec.network.layers]
    return reference_step(Ws, bs, ["sigmoid", "softmax"], spec.x, spec.y, spec.loss, spec.lr)


def _student(student: str, assignment: str, mistake: str | None = None) -> dict[str, np.ndarray]:
    """What a student writes: the whole step (the forward pass from the reference, the
    backward pass and update worked here from the student's own earlier numbers), right
    or with ``mistake`` planted by hand: ``missing_activation_derivative`` (delta2 taken
    as dL/da2) or ``updated_weights`` (dL/da1 = delta2 · W2_newᵀ, with W2_new as the
    student wrote it)."""
    r = _reference(student, assignment)
    spec = roster_exercise(student, assignment).spec
    (W1, b1), (W2, b2) = [(layer.W, layer.b) for layer in spec.network.layers]
    lr, x = spec.lr, spec.x
    out = {k: r[k] for k in ("z1", "a1", "z2", "a2", "loss_terms", "loss", "dL_da2", "da2_dz2")}
    delta2 = np.einsum("si,sij->sj", r["dL_da2"], r["da2_dz2"])
    if mistake == "missing_activation_derivative":
        delta2 = r["dL_da2"]
    out["delta2"] = delta2
    out["dW2"] = r["a1"].T @ delta2
    out["db2"] = delta2.sum(axis=0)
    out["W2_new"] = W2 - lr * out["dW2"]
    out["b2_new"] = b2 - lr * out["db2"]
    W2_used = np.round(out["W2_new"], 4) if mistake == "updated_weights" else W2
    out["dL_da1"] = delta2 @ W2_used.T
    out["da1_dz1"] = r["a1"] * (1 - r["a1"])
    out["delta1"] = out["dL_da1"] * out["da1_dz1"]
    out["dW1"] = x.T @ out["delta1"]
    out["db1"] = out["delta1"].sum(axis=0)
    out["W1_new"] = W1 - lr * out["dW1"]
    out["b1_new"] = b1 - lr * out["db1"]
    return out


def _values(v: dict[str, np.ndarray]) -> list[str]:
    out = []
    for k, x in v.items():
        x = x[0] if k.startswith(("z", "a", "dL_da", "delta", "da", "loss_terms")) else x
        out.append(f"{k} = {toml_array(x, 4)}")
    return out


def _class(tmp_path: Path, roster: Path, assignment: str, plan: dict[str, str | None]) -> Path:
    """``glassnet exercise --roster``, then each planned student's sheet filled in
    (``plan``: folder -> mistake; a student not in it hands nothing in)."""
    out = tmp_path / "hw"
    argv = ["exercise", "--roster", str(roster), "--assignment", assignment, "-o", str(out)]
    assert main(argv) == 0
    for folder in out.iterdir():
        if folder.name not in plan:  # handed nothing in
            shutil.rmtree(folder)
    for folder, mistake in plan.items():
        sheet = out / folder / "worksheet.toml"
        text = sheet.read_text()
        sid = re.search(r'^student = "(.*)"$', text, re.M).group(1)  # the folder's student
        sheet.write_text(text + "\n".join(_values(_student(sid, assignment, mistake))) + "\n")
    return out


def _csv(path: Path) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))


# -- reading rosters -------------------------------------------------------------------------
def test_canvas_export_is_a_roster():
    r = read_roster_file(DATA / "canvas_export.csv")
    assert r.kind == "canvas"
    # the Points Possible row is not a student; the SIS User ID is the id, not Canvas's
    assert [s.id for s in r.students] == ["s1001", "s1002", "s1003", "102999"]
    assert r.students[0].name == "Lovelace, Ada"
    assert r.students[0].row["ID"] == "102931"
    assert r.points["hw1 (48213)"] == "10.00"
    assert r.column_for("hw1") == "hw1 (48213)" and r.column_for("HW1") == "hw1 (48213)"
    assert r.column_for("hw2") is None


def test_moodle_export_is_a_roster_with_either_separator():
    for name in ("moodle_export.csv", "moodle_export_semicolon.csv"):
        r = read_roster_file(DATA / name)
        assert r.kind == "moodle", name
        assert [s.id for s in r.students] == ["m2001", "m2002", "m2003"]
        assert [s.name for s in r.students] == ["Ada Lovelace", "Alan Turing", "Grace Hopper"]
        assert r.column_for("hw1") == "Assignment: hw1 (Real)"
    assert read_roster_file(DATA / "moodle_export_semicolon.csv").separator == ";"


def test_separators_are_sniffed_and_a_bom_accepted():
    semi = read_roster(DATA / "roster_semicolon.csv")  # with a byte-order mark
    assert [(s.id, s.name) for s in semi] == [("s1", "Ann Smith"), ("s2", "Bob Jones")]
    tab = read_roster(DATA / "roster_tab.csv")
    assert [(s.id, s.name) for s in tab] == [("s1", "Ann Smith"), ("s2", "Bob Jones")]
    assert sniff_separator("id,name\ns1,A\n", "x") == ","
    assert sniff_separator("id\ns1\ns2\n", "x") == ","  # one column is one column


def test_a_roster_split_by_a_separator_its_header_lacks_is_refused(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("id\ns1;Ann\ns2;Bob\n", encoding="utf-8")
    with pytest.raises(GlassnetError, match="row 2 has ';'-separated cells"):
        read_roster(bad)


# -- writing back -----------------------------------------------------------------------------
def test_canvas_round_trip(tmp_path, capsys):
    export = DATA / "canvas_export.csv"
    plan = {"s1001": None, "s1002": "missing_activation_derivative"}
    out = _class(tmp_path, export, "hw1", plan)
    book = tmp_path / "canvas_import.csv"
    comments = tmp_path / "comments.csv"
    argv = ["check", str(out), "--roster", str(export), "--gradebook", str(book)]
    assert main([*argv, "--comments", str(comments)]) == 0  # canvas: from the roster
    rows = _csv(book)
    # Canvas's own columns, then the assignment as its export names it (with its id)
    assert rows[0] == [*CANVAS_COLUMNS, "hw1 (48213)"]
    assert rows[1] == ["    Points Possible", "", "", "", "", "10"]
    exported = {r[2]: r for r in _csv(export)[2:]}
    for row in rows[2:]:
        # every identity cell is the export's own: the import matches each student
        assert row[:5] == exported[row[2]][:5]
    by_sis = {r[2]: r[5] for r in rows[2:]}
    assert by_sis["s1001"] == "10"  # all right: full points of the column
    assert 0 < float(by_sis["s1002"]) < 10
    assert by_sis["s1003"] == "" and by_sis[""] == ""  # nothing handed in: left as it is
    # what glassnet wrote reads back as the same roster (the same ids and names)
    again = read_roster_file(book)
    assert again.kind == "canvas"
    assert [(s.id, s.name) for s in again.students] == [
        (s.id, s.name) for s in read_roster_file(export).students
    ]
    said = {r[1]: r[3] for r in _csv(comments)[1:]}
    assert "the activation's derivative left out" in said["s1002"]
    assert "no mistakes found" in said["s1001"]


def test_moodle_round_trip(tmp_path):
    export = DATA / "moodle_export_semicolon.csv"
    out = _class(tmp_path, export, "hw1", {"m2001": "missing_activation_derivative"})
    book = tmp_path / "moodle_import.csv"
    argv = ["check", str(out), "--roster", str(export), "--gradebook", str(book)]
    assert main([*argv, "--lms", "moodle"]) == 0
    rows = _csv(book)
    assert rows[0] == [
        "First name",
        "Last name",
        "ID number",
        "Institution",
        "Department",
        "Email address",
        "Assignment: hw1 (Real)",
        "Assignment: hw1 (Feedback)",
    ]
    exported = {r[2]: r for r in _csv_sep(export, ";")[1:]}
    for row in rows[1:]:
        assert row[:6] == exported[row[2]][:6]
    ada = next(r for r in rows if r[2] == "m2001")
    assert 0 < float(ada[6]) < 100
    assert "delta2: the activation's derivative left out" in ada[7]
    grace = next(r for r in rows if r[2] == "m2003")
    assert grace[6:] == ["-", ""]  # Moodle's "no grade": its import skips it
    assert read_roster_file(book).kind == "moodle"
    assert [s.id for s in read_roster_file(book).students] == ["m2001", "m2002", "m2003"]


def _csv_sep(path: Path, sep: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding="utf-8")), delimiter=sep))


def test_a_sheet_not_on_the_roster_is_a_warning(tmp_path, capsys):
    export = DATA / "roster_semicolon.csv"
    out = _class(tmp_path, export, "hw", {"s1": None})
    other = tmp_path / "other.csv"  # a sheet made for someone the roster does not list
    other.write_text("id\ns9\n")
    _class(tmp_path / "o", other, "hw", {"s9": None})
    shutil.copytree(tmp_path / "o" / "hw" / "s9", out / "s9")
    book = tmp_path / "b.csv"
    argv = ["check", str(out), "--roster", str(export), "--gradebook", str(book)]
    assert main([*argv, "--lms", "canvas"]) == 0
    err = capsys.readouterr().err
    assert "'s9' handed in a sheet but is not on" in err
    rows = _csv(book)
    assert [r[2] for r in rows[2:]] == ["s1", "s2", "s9"]


# -- an edited header ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ('student = "s1"', 'student = "S1"', "student"),
        ('assignment = "hw"', 'assignment = "Hw"', "assignment"),
    ],
)
def test_an_edited_header_is_a_warning_and_the_roster_variant_is_marked(
    tmp_path, capsys, old, new, field
):
    roster = DATA / "roster_semicolon.csv"
    out = _class(tmp_path, roster, "hw", {"s1": None, "s2": None})
    sheet = out / "s1" / "worksheet.toml"
    sheet.write_text(sheet.read_text().replace(old, new))
    assert main(["check", str(out), "--roster", str(roster)]) == 0
    captured = capsys.readouterr()
    assert f"field '{field}': warning: edited: " in captured.err
    # marked against the variant it was made for: every number right
    line = next(x for x in captured.out.splitlines() if "s1/worksheet.toml" in x)
    assert " 0 wrong" in line, line


def test_an_edited_header_with_no_candidate_says_it_may_be_another_network(tmp_path):
    out = _class(tmp_path, DATA / "roster_semicolon.csv", "hw", {"s1": None})
    sheet = out / "s1" / "worksheet.toml"
    sheet.write_text(sheet.read_text().replace('assignment = "hw"', 'assignment = "hw2"'))
    report = check_worksheet(sheet)  # no roster, no other sheet: nothing to recover from
    notes = [n for n in report.notes if n.field == "assignment"]
    assert len(notes) == 1 and "may be another network" in notes[0].message


def test_generated_sheets_regenerate_byte_for_byte(tmp_path):
    roster = DATA / "roster_semicolon.csv"
    a, b = tmp_path / "a", tmp_path / "b"
    for out in (a, b):
        assert (
            main(["exercise", "--roster", str(roster), "--assignment", "hw", "-o", str(out)]) == 0
        )
    for sid in ("s1", "s2"):
        assert (a / sid / "worksheet.toml").read_bytes() == (
            b / sid / "worksheet.toml"
        ).read_bytes()
        assert "checksum = " in (a / sid / "worksheet.toml").read_text()


# -- feedback pages ------------------------------------------------------------------------------
class _Text(HTMLParser):
    """The visible text of a page, and its stylesheet."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self.style = ""
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False

    def handle_data(self, data):
        if self._in_style:
            self.style += data
        else:
            self.parts.append(data)


def test_feedback_pages_use_the_students_own_numbers(tmp_path):
    roster = DATA / "roster_semicolon.csv"
    out = _class(tmp_path, roster, "hw", {"s1": "updated_weights", "s2": None})
    pages = tmp_path / "feedback"
    assert main(["check", str(out), "--feedback", str(pages)]) == 0
    assert {p.name for p in pages.iterdir()} == {
        "s1.html",
        "s1.md",
        "s2.html",
        "s2.md",
        "index.html",
        "index.md",
    }
    page = _Text()
    page.feed((pages / "s1.html").read_text())
    text = " ".join(" ".join(page.parts).split())
    assert "@page { size: A4" in page.style
    assert "Score: " in text
    # the mistake in words, with the student's own W2_new (as they wrote it)
    written = _student("s1", "hw", "updated_weights")
    assert "dL_da1: dL/da sent back through the already-updated weights W_new" in text
    w2_new = [f"{v:.4f}" for v in np.asarray(written["W2_new"]).ravel()]
    assert "worked with your W2_new[" in text
    quoted = text.split("worked with your W2_new[", 1)[1].split("=", 1)[1].split(",")[0].strip()
    assert quoted in w2_new
    assert f"You wrote dL_da1[0] = {written['dL_da1'][0, 0]:.4f}" in text
    # 1-based layer names only: no layer 0 anywhere
    for zero in ("W0", "z0", "a0", "delta0", "dL_da0"):
        assert zero not in text.replace("W2_new[0", "")
    # the right working from explain's derivation is on the page
    assert "The rule, and the right working:" in text
    assert (pages / "s2.html").read_text().count("Nothing: every number is right") == 1
    # with the roster, the student's name beside the id
    assert main(["check", str(out), "--roster", str(roster), "--feedback", str(pages)]) == 0
    assert "<h1>Feedback: hw · Ann Smith (s1)</h1>" in (pages / "s1.html").read_text()
    index = _Text()
    index.feed((pages / "index.html").read_text())
    assert "s1" in " ".join(index.parts) and "updated_weights_in_backprop" in " ".join(index.parts)
    md = (pages / "s1.md").read_text()
    assert "## What went wrong" in md and "worked with your W2_new[" in md


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_a_feedback_page_prints_on_one_or_two_a4_pages(tmp_path):
    """Printed by Chromium on A4 (read back with pypdf): the score on page 1, at most two
    pages for a 3-3-3 network's whole step with a mistake carried through."""
    pypdf = pytest.importorskip("pypdf", reason="pypdf reads the printed PDF")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright prints the page")
    out = _class(
        tmp_path, DATA / "roster_semicolon.csv", "hw", {"s1": "missing_activation_derivative"}
    )
    assert main(["check", str(out), "--feedback", str(tmp_path / "fb")]) == 0
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page()
            page.goto((tmp_path / "fb" / "s1.html").as_uri())
            pdf = page.pdf(format="A4")
        finally:
            browser.close()
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert 1 <= len(reader.pages) <= 2
    assert "Score:" in reader.pages[0].extract_text()


def test_comments_say_a_possible_diagnosis_is_only_possible():
    from glassnet.check.lms import Grade, Mistake

    g = Grade(
        82.5,
        100.0,
        [
            Mistake("lr_slip", "W2_new", "possible", "the learning rate off by a power of ten"),
            Mistake("update_sign", "W1_new", "exact", "the gradient added instead of subtracted"),
        ],
        ["dW2"],
        missing=["db1", "b1_new"],
    )
    assert g.comments() == (
        "82.5 of 100. W2_new: possibly the learning rate off by a power of ten; "
        "W1_new: the gradient added instead of subtracted; wrong without a named cause: dW2; "
        "not written (no points): db1, b1_new."
    )


def test_json_carries_each_sheets_rubric_grade_and_lms_needs_a_gradebook(tmp_path, capsys):
    import json

    out = _class(tmp_path, DATA / "roster_semicolon.csv", "hw", {"s1": "updated_weights"})
    capsys.readouterr()  # what the exercise wrote
    assert main(["check", str(out), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    grade = data["worksheets"][0]["report"]["grade"]
    assert 0 < grade["points"] < grade["total"]
    assert grade["findings"][0]["id"] == "updated_weights_in_backprop"
    assert grade["findings"][0]["strength"] == "exact"
    assert main(["check", str(out), "--lms", "canvas"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "expected --gradebook FILE with --lms" in err


def test_a_sheet_without_a_checksum_is_checked_against_the_roster(tmp_path, capsys):
    """Sheets made before the checksum: only --roster can say the student is not on it
    (the same id but for capitals is taken as that student)."""
    out = _class(tmp_path, DATA / "roster_semicolon.csv", "hw", {"s1": None, "s2": None})
    for sid, new in (("s1", "S1"), ("s2", "s7")):
        sheet = out / sid / "worksheet.toml"
        text = "\n".join(x for x in sheet.read_text().splitlines() if "checksum" not in x)
        sheet.write_text(text.replace(f'student = "{sid}"', f'student = "{new}"') + "\n")
    assert main(["check", str(out)]) == 0
    assert "warning" not in capsys.readouterr().err  # no roster: nothing to check against
    assert main(["check", str(out), "--roster", str(DATA / "roster_semicolon.csv")]) == 0
    err = capsys.readouterr().err
    assert "'S1' is not on the roster; marked as 's1''s variant" in err
    assert "'s7' is not on the roster; marked against the header as written" in err


def test_an_edited_checksum_line_is_said_once(tmp_path):
    out = _class(tmp_path, DATA / "roster_semicolon.csv", "hw", {"s1": None})
    sheet = out / "s1" / "worksheet.toml"
    text = sheet.read_text()
    start = text.index('checksum = "') + len('checksum = "')
    sheet.write_text(
        text[:start] + "student:00000000 assignment:0 exercise:0" + text[text.index('"', start) :]
    )
    notes = check_worksheet(sheet).notes
    assert [n.field for n in notes] == ["checksum"] and "matches none" in notes[0].message


AXE = Path(__file__).parent / "_axe" / "node_modules" / "axe-core" / "axe.min.js"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
@pytest.mark.skipif(
    not AXE.exists(), reason="axe-core is not installed (scripts/test.sh: npm install axe-core)"
)
def test_axe_finds_no_serious_violation_on_the_feedback_pages(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright opens the page")
    out = _class(tmp_path, DATA / "roster_semicolon.csv", "hw", {"s1": "updated_weights"})
    assert main(["check", str(out), "--feedback", str(tmp_path / "fb")]) == 0
    bad = {}
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            for name in ("s1.html", "index.html"):
                page = browser.new_page()
                page.goto((tmp_path / "fb" / name).as_uri())
                page.add_script_tag(content=AXE.read_text())
                result = page.evaluate(
                    "async () => await axe.run(document, {resultTypes: ['violations']})"
                )
                bad[name] = [
                    (v["id"], v["impact"])
                    for v in result["violations"]
                    if v["impact"] in ("serious", "critical")
                ]
        finally:
            browser.close()
    assert bad == {"s1.html": [], "index.html": []}


def test_a_grades_breakdown_is_on_the_feedback_page(tmp_path):
    """Whatever makes the score (a rubric's stages and penalties) reaches the page
    through the Grade alone."""
    from glassnet.check.feedback import student_markdown
    from glassnet.check.lms import Grade

    out = _class(tmp_path, DATA / "roster_semicolon.csv", "hw", {"s1": None})
    report = check_worksheet(out / "s1" / "worksheet.toml")
    g = Grade(7.5, 10.0, [], [], [("forward", "5 of 5"), ("penalty: lr_slip", "-2.5")])
    md = student_markdown(report, g)
    assert "Score: 7.5 of 10." in md
    assert "How the score is made" in md and "penalty: lr_slip" in md and "-2.5" in md


def test_two_sheets_of_one_student_are_a_warning(tmp_path, capsys):
    out = _class(tmp_path, DATA / "roster_semicolon.csv", "hw", {"s1": None, "s2": None})
    shutil.copytree(out / "s1", out / "s1_resubmitted")  # the same sheet handed in twice
    assert main(["check", str(out), "--gradebook", str(tmp_path / "b.csv")]) == 0
    err = capsys.readouterr().err
    assert "'s1' has 2 sheets" in err and "the gradebook takes the first" in err


def test_older_exports_read_too(tmp_path):
    """Moodle before 4.x wrote "Surname" (and offers tab as the separator); Canvas adds a
    row of its own under the header for manually posted assignments."""
    moodle = tmp_path / "moodle.txt"
    moodle.write_text(
        "First name\tSurname\tID number\tEmail address\tAssignment: hw1 (Real)\n"
        "Ada\tLovelace\t\tada@example.edu\t-\n",
        encoding="utf-8",
    )
    r = read_roster_file(moodle)
    assert r.kind == "moodle" and r.separator == "\t"
    assert [(s.id, s.name) for s in r.students] == [("ada@example.edu", "Ada Lovelace")]
    canvas = tmp_path / "canvas.csv"
    canvas.write_text(
        "Student,ID,SIS User ID,SIS Login ID,Section,hw1 (7)\n"
        ",,,,,Manual Posting\n"
        "    Points Possible,,,,,4.00\n"
        '"Lovelace, Ada",1,s1,ada,A,\n',
        encoding="utf-8",
    )
    r = read_roster_file(canvas)
    assert [(s.id, s.name) for s in r.students] == [("s1", "Lovelace, Ada")]
    assert r.points["hw1 (7)"] == "4.00"


def test_an_unreadable_sheet_is_its_rosters_student(tmp_path, capsys):
    """A sheet that cannot be read names no student: its folder (made from the id, an
    email's "@" made "_") says whose it is; that student's cell stays empty."""
    export = DATA / "moodle_export.csv"
    roster = tmp_path / "r.csv"  # Moodle without ID numbers: the email is the id
    roster.write_text(
        (export.read_text(encoding="utf-8")).replace("m2001", "").replace("m2002", ""),
        encoding="utf-8",
    )
    out = _class(tmp_path, roster, "hw1", {"ada_example.edu": None, "alan_example.edu": None})
    (out / "alan_example.edu" / "worksheet.toml").write_text("[values\n")  # broken TOML
    book = tmp_path / "m.csv"
    assert main(["check", str(out), "--roster", str(roster), "--gradebook", str(book)]) == 2
    err = capsys.readouterr().err
    assert "not on" not in err
    rows = _csv(book)
    assert [r[5] for r in rows[1:]] == ["ada@example.edu", "alan@example.edu", "grace@example.edu"]
    assert float(rows[1][6]) == 100  # Ada's sheet, her own variant, all right
    assert [r[6] for r in rows[2:]] == ["-", "-"]


def test_the_working_is_for_the_number_as_written_in_its_layout():
    """On a W[to][from] sheet the place written [0, 1] is the weight from unit 2 to unit
    1 (the seed's W_k2l1): the working shown is that weight's, not W_k1l2's."""
    from glassnet.check import check, parse_worksheet
    from glassnet.check.feedback import student_markdown

    right = check_worksheet("seed").ctx.right[("dW", 3)]  # engine layout: [from][to]
    written = np.round(right.T, 4)  # the sheet's layout: [to][from]
    written[0, 1] += 0.5  # a slip at the weight from k2 to l1
    rows = ", ".join("[" + ", ".join(f"{v:.4f}" for v in r) + "]" for r in written)
    text = f'spec = "seed"\nlayout = "to_from"\n[values]\ndW3 = [{rows}]\n'
    md = student_markdown(check(parse_worksheet(text, "t.toml")))
    working = md[md.index("The rule, and the right working:") :].split("## Your sheet")[0]
    assert "W_{k2l1}" in working and "W_{k1l2}" not in working


def test_a_possible_diagnosis_is_never_shown_as_certain_on_a_feedback_page():
    """Every finding of the seed tutorial's page: "The mistake" only when exact,
    "Possibly (not certain)" and "a guess" when possible."""
    from glassnet.check.feedback import finding_words, findings

    report = check_worksheet("seed")
    found = [f for f in findings(report) if f.diagnosis]
    assert {f.strength for f in found} == {"exact", "possible"}  # both kinds are met
    for f in found:
        words = finding_words(report, f)
        if f.strength == "exact":
            assert "The mistake: " in words and "Possibly" not in words, words
        else:
            assert "Possibly (not certain): " in words and "a guess" in words, words
            assert "The mistake" not in words, words


def test_an_lms_column_needs_an_assignment_never_a_made_up_one(tmp_path, capsys):
    """Sheets that name no assignment (the seed's worksheet, twice): without --assignment
    the Canvas file is refused in one line (Canvas would import an unknown column as a
    new assignment) and not written; with it, the column is that assignment."""
    folder = tmp_path / "sheets"
    folder.mkdir()
    import glassnet

    sheet = (Path(glassnet.__file__).parent / "examples" / "seed_worksheet.toml").read_text()
    for name in ("a.toml", "b.toml"):
        (folder / name).write_text(sheet, encoding="utf-8")
    book = tmp_path / "canvas_import.csv"
    argv = ["check", str(folder), "--gradebook", str(book), "--lms", "canvas"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--assignment" in err and "no sheet names one" in err
    assert not book.exists()
    assert main([*argv, "--assignment", "hw9"]) == 0
    assert _csv(book)[0][5] == "hw9"
