"""Gradebooks written back to the LMS a roster came from (:mod:`glassnet.check.roster`
reads Canvas and Moodle exports and plain CSV rosters).

:func:`canvas_gradebook`, :func:`moodle_gradebook`: a file the LMS imports as it stands
— the LMS's own columns with each student's cells copied from the export they came
from, one score column, and the mistakes in words (Moodle: a feedback column; Canvas
has no comment column in its gradebook import — an unknown column becomes a new
assignment — so the comments go to a file of their own, :func:`comments_csv`).

Every score comes from :func:`grade_of`, the one place a marked sheet becomes a grade
(the rubric's, :mod:`glassnet.check.rubric`).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from glassnet.check.roster import (
    CANVAS_COLUMNS,
    CANVAS_POINTS,
    MOODLE_COLUMNS,
    MOODLE_GRADE,
    Roster,
    RosterStudent,
    folder_name,
)
from glassnet.errors import GlassnetError

if TYPE_CHECKING:
    from glassnet.check.marking import Report

#: What Moodle's export writes for no grade, and its import leaves alone.
MOODLE_NO_GRADE = "-"


# -- a grade --------------------------------------------------------------------------------
@dataclass
class Mistake:
    """One named mistake of a sheet, counted once: its catalogue ``id`` (``a+b`` for
    two), the ``quantity`` it was found at (``dW2``), its ``strength`` ("exact": the
    rule reproduces the numbers and random slips almost never fit it; "possible": it
    fits, but is only a guess — see docs/check.md) and its title in words."""

    id: str
    quantity: str
    strength: str
    words: str


@dataclass
class Grade:
    """What a marked sheet is worth: ``score`` of ``points``, the distinct named
    mistakes, the quantities holding wrong numbers no rule explains, and the required
    quantities not written.

    The one seam between marking and every gradebook/feedback view: :func:`grade_of`
    makes it from the rubric's grade (:mod:`glassnet.check.rubric`); nothing downstream
    reads the rubric or the marks' counts for a score."""

    score: float
    points: float
    mistakes: list[Mistake]
    unexplained: list[str]
    #: How the score is made, line by line (a rubric's stages, penalties, quantities
    #: missing), for the feedback page: (what, points) pairs.
    breakdown: list[tuple[str, str]] = field(default_factory=list)
    #: Quantities a complete answer holds that the sheet does not (they score 0).
    missing: list[str] = field(default_factory=list)

    def comments(self) -> str:
        """The mistakes in plain words, for a gradebook's comment column."""
        parts = []
        for m in self.mistakes:
            maybe = "" if m.strength == "exact" else "possibly "
            parts.append(f"{m.quantity}: {maybe}{m.words}")
        if self.unexplained:
            parts.append("wrong without a named cause: " + ", ".join(self.unexplained))
        if self.missing:
            parts.append("not written (no points): " + ", ".join(self.missing))
        head = f"{fmt_points(self.score)} of {fmt_points(self.points)}"
        return head + (". " + "; ".join(parts) + "." if parts else ": no mistakes found.")


def fmt_points(v: float) -> str:
    """A score as a gradebook writes it: ``82.5``, ``100`` (no trailing zeros)."""
    text = f"{v:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def strength(match: str | None) -> str:
    """A diagnosis's strength in the words of every output: ``exact`` or ``possible``
    (check's ``near`` matches, and any other, are only possible)."""
    return "exact" if match == "exact" else "possible"


def grade_of(report: Report) -> Grade:
    """The grade of a marked sheet: its rubric's score (:meth:`Report.grade`, the
    built-in rubric unless ``--rubric`` names one), each distinct diagnosis at its
    strength, the quantities with unexplained wrong numbers, and how the score is made
    (each stage's points, each penalty, each required quantity missing)."""
    g = report.grade()
    mistakes = [Mistake(f.id, f.quantity, strength(f.strength), f.title) for f in g.findings]
    breakdown = [
        (f"{s.stage}", f"{fmt_points(s.points)} of {fmt_points(s.possible)}") for s in g.stages
    ]
    breakdown += [(f"penalty: {i}", f"-{fmt_points(p)}") for i, p in g.penalties]
    breakdown += [(f"missing (scored 0): {q}", "0") for q in g.missing]
    return Grade(
        round(g.points, 2),
        float(g.total),
        mistakes,
        list(g.unexplained),
        breakdown,
        list(g.missing),
    )


# -- writing back -----------------------------------------------------------------------------
#: One marked sheet of a class: (file, report or None, error when it could not be read).
Marked = tuple[str, "Report | None", "str | None"]


def sheet_student(file: str, report: Report | None) -> str:
    """The student a sheet is for: its ``student``, else the file's name (``ann.toml``
    -> ann, ``ann/worksheet.toml`` -> ann)."""
    if report is not None and report.sheet.student:
        return report.sheet.student
    p = Path(file)
    return p.parent.name if p.stem == "worksheet" and p.parent.name else p.stem


def _by_student(
    marked: list[Marked], roster: Roster | None = None
) -> dict[str, tuple[str, Report | None]]:
    """Each student's first sheet.  A sheet that could not be read is known by its
    folder's name only: with a roster, the student whose folder that is
    (``exercise --roster`` names a folder after the id, ``ada@x.edu`` -> ``ada_x.edu``)."""
    folders = {folder_name(s.id): s.id for s in roster.students} if roster else {}
    out: dict[str, tuple[str, Report | None]] = {}
    for file, report, _ in marked:
        sid = sheet_student(file, report)
        if report is None:
            sid = folders.get(sid, sid)
        out.setdefault(sid, (file, report))
    return out


def _assignment(marked: list[Marked], assignment: str | None) -> str:
    """The assignment the LMS column is for: ``--assignment``, else the one the marked
    sheets name.  None or several is an error, never a made-up name: the LMS would
    import an unknown column as a new assignment."""
    if assignment:
        return assignment
    names = sorted({r.sheet.assignment for _, r, _ in marked if r and r.sheet.assignment})
    if len(names) == 1:
        return names[0]
    raise GlassnetError(
        "expected the assignment the LMS column is for (give --assignment NAME)",
        got=f"the sheets name several: {', '.join(names[:5])}" if names else "no sheet names one",
        field="--assignment",
    )


def _rows_of(
    marked: list[Marked], roster: Roster | None
) -> list[tuple[RosterStudent | None, str, Report | None]]:
    """(roster row or None, student id, report or None) in the roster's order, then the
    sheets of students the roster does not list."""
    sheets = _by_student(marked, roster)
    out: list[tuple[RosterStudent | None, str, Report | None]] = []
    listed = set()
    for st in roster.students if roster else []:
        listed.add(st.id)
        out.append((st, st.id, sheets.get(st.id, ("", None))[1]))
    for sid, (_, report) in sheets.items():
        if sid not in listed:
            out.append((None, sid, report))
    return out


def duplicates(marked: list[Marked]) -> dict[str, list[str]]:
    """Students with more than one sheet: id -> their files, in order (the gradebook
    takes the first; a warning says so)."""
    files: dict[str, list[str]] = {}
    for file, report, _ in marked:
        files.setdefault(sheet_student(file, report), []).append(file)
    return {sid: fs for sid, fs in files.items() if len(fs) > 1}


def unlisted(marked: list[Marked], roster: Roster | None) -> list[str]:
    """Students with a sheet whom the roster does not list (a warning: their rows have
    no LMS identity the import can match)."""
    if roster is None:
        return []
    ids = roster.by_id()
    return [sid for sid in _by_student(marked, roster) if sid not in ids]


def canvas_gradebook(
    marked: list[Marked], roster: Roster | None = None, assignment: str | None = None
) -> str:
    """The class's scores as Canvas's gradebook import reads them: ``Student, ID, SIS
    User ID, SIS Login ID, Section`` and one column, the assignment as the export names
    it (``hw1 (123)``; a name Canvas does not know makes a new assignment), a Points
    Possible row, then one row per student (the roster's order) with the cells of the
    Canvas export they came from and their score; a student without a sheet gets an
    empty cell (Canvas leaves the grade as it is).  The score is out of the grade's
    points, scaled to the Points Possible of the export's column when it has one."""
    name = _assignment(marked, assignment)
    column = roster.column_for(name) if roster and roster.kind == "canvas" else None
    column = column or name
    possible = (roster.points.get(column, "") if roster else "").strip()
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*CANVAS_COLUMNS, column])
    points_of = [grade_of(r).points for _, r, _ in marked if r is not None]
    out_of = _number(possible) or (points_of[0] if points_of else 100.0)
    w.writerow([CANVAS_POINTS, "", "", "", "", fmt_points(out_of)])
    for st, sid, report in _rows_of(marked, roster):
        if st is not None and roster is not None and roster.kind == "canvas":
            ident = [st.row.get(c, "") for c in CANVAS_COLUMNS]
        else:
            ident = [st.name if st and st.name else sid, "", sid, "", ""]
        score = ""
        if report is not None:
            g = grade_of(report)
            score = fmt_points(g.score * out_of / g.points if g.points else 0.0)
        w.writerow([*ident, score])
    return buf.getvalue()


def _number(text: str) -> float | None:
    """A Points Possible cell: ``10.00`` (or ``10,00`` from a semicolon export)."""
    if re.fullmatch(r"\d+,\d+", text):
        text = text.replace(",", ".")
    try:
        v = float(text)
    except ValueError:
        return None
    return v if v > 0 else None


def moodle_gradebook(
    marked: list[Marked], roster: Roster | None = None, assignment: str | None = None
) -> str:
    """The class's scores as Moodle's grade import (Grades > Import > CSV file) reads
    them: the identity columns of the Moodle export the roster came from (``First name,
    Last name, ID number, Institution, Department, Email address``), the grade column as
    the export names it (``Assignment: hw1 (Real)``) and its feedback column
    (``Assignment: hw1 (Feedback)``, the mistakes in words); a student without a
    sheet gets ``-``, Moodle's "no grade", which its import skips.  At import, map "Email
    address" (or "ID number") to the user, the grade column to the assignment and the
    feedback column to its feedback."""
    name = _assignment(marked, assignment)
    column = roster.column_for(name) if roster and roster.kind == "moodle" else None
    if column:
        m = MOODLE_GRADE.match(column)
        assert m is not None  # column_for only returns matching columns
        stem = column[: m.start("kind")].rstrip(" (")
        feedback = f"{stem} (Feedback)"
    else:
        column, feedback = f"{name} (Real)", f"{name} (Feedback)"
    if roster is not None and roster.kind == "moodle":
        ident_cols = [c for c in roster.header if c in MOODLE_COLUMNS or c == "Surname"]
    else:
        ident_cols = ["ID number", "First name", "Last name", "Email address"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*ident_cols, column, feedback])
    for st, sid, report in _rows_of(marked, roster):
        if st is not None and roster is not None and roster.kind == "moodle":
            ident = [st.row.get(c, "") for c in ident_cols]
        else:
            first, _, last = (st.name if st else "").partition(" ")
            cells = {"ID number": sid, "First name": first, "Last name": last}
            ident = [cells.get(c, "") for c in ident_cols]
        if report is None:
            # "-" is Moodle's own "no grade" (its export writes it, its import skips it)
            w.writerow([*ident, MOODLE_NO_GRADE, ""])
            continue
        g = grade_of(report)
        w.writerow([*ident, fmt_points(g.score), g.comments()])
    return buf.getvalue()


def comments_csv(marked: list[Marked], roster: Roster | None = None) -> str:
    """Each student's mistakes in words (``Student, SIS User ID, Score, Comments``):
    what Canvas's gradebook import has no column for, to paste into SpeedGrader."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["Student", "SIS User ID", "Score", "Comments"])
    for st, sid, report in _rows_of(marked, roster):
        if report is None:
            continue
        g = grade_of(report)
        w.writerow([st.name if st and st.name else sid, sid, fmt_points(g.score), g.comments()])
    return buf.getvalue()
