"""Rosters: a plain CSV, a Canvas gradebook export or a Moodle grades export, read as
the list of a class's students (and, for an LMS export, the cells to write back).

The separator is sniffed (``,`` ``;`` or tab, from the header row; a one-column file is
one column only when no other separator splits its rows), a byte-order mark is
accepted, and the file's kind is told from its header:

* **Canvas** (a gradebook export): ``Student, ID, SIS User ID, SIS Login ID, Section``,
  one column per assignment written ``Name (assignment id)``, a ``Points Possible`` row
  under the header (Canvas writes it with four leading spaces) and read-only columns
  ("(read only)" in that row).  A student's id is their SIS User ID (else SIS Login ID,
  else Canvas's own ID); the Student column (``Last, First``) is their name.
* **Moodle** (Grades > Export > Plain text file): ``First name, Last name`` (older:
  ``Surname``), ``ID number, Institution, Department, Email address``, the grade
  columns (``Assignment: hw1 (Real)``) and ``Last downloaded from this course``.  A
  student's id is their ID number, else their email address.
* **CSV**: an id column (``id``, ``student_id``, ``student``, ``SIS User ID``,
  ``login`` or ``email``; else the first) and optionally ``name``.

Writing back is :mod:`glassnet.check.lms`.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

from glassnet.errors import GlassnetError

#: The separators a roster may use (European spreadsheets write ``;``).
SEPARATORS: tuple[str, ...] = (",", ";", "\t")
#: Canvas's identity columns, in the order its export writes them.
CANVAS_COLUMNS: tuple[str, ...] = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
#: The first cell of Canvas's points row (as its export writes it: four spaces first).
CANVAS_POINTS = "    Points Possible"
#: Moodle's identity columns (the default user fields of its grade export).
MOODLE_COLUMNS: tuple[str, ...] = (
    "First name",
    "Last name",
    "ID number",
    "Institution",
    "Department",
    "Email address",
)
#: The last column of a Moodle export (read-only; left out of what is written back).
MOODLE_DOWNLOADED = "Last downloaded from this course"
#: A plain roster's id column, in order of preference.
ID_COLUMNS: tuple[str, ...] = (
    "id",
    "student_id",
    "student",
    "sis_user_id",
    "sis user id",
    "login",
    "email",
)
#: A Canvas assignment column: ``hw1 (48213)`` (the name, Canvas's assignment id).
CANVAS_ASSIGNMENT = re.compile(r"^(?P<name>.*\S)\s*\((?P<id>\d+)\)$")
#: A Moodle grade column: ``Assignment: hw1 (Real)`` (module, item, what is shown).
MOODLE_GRADE = re.compile(r"^(?:(?P<module>[^:]+):\s*)?(?P<name>.*\S)\s*\((?P<kind>[^()]+)\)$")


@dataclass
class RosterStudent:
    """One student of a roster: ``id`` (what their variant is seeded from), ``name``,
    and the row as read (column -> cell), for writing back to the LMS it came from."""

    id: str
    name: str = ""
    row: dict[str, str] = field(default_factory=dict)


@dataclass
class Roster:
    """A roster file as read.  ``kind``: "csv", "canvas" or "moodle"; ``header`` its
    columns; ``points``: Canvas's Points Possible per assignment column."""

    path: str
    kind: str
    header: list[str]
    students: list[RosterStudent]
    separator: str = ","
    points: dict[str, str] = field(default_factory=dict)

    def by_id(self) -> dict[str, RosterStudent]:
        return {s.id: s for s in self.students}

    def assignment_columns(self) -> list[str]:
        """The gradebook's assignment columns (Canvas ``hw1 (123)``, Moodle
        ``Assignment: hw1 (Real)``); [] for a plain roster."""
        if self.kind == "canvas":
            return [h for h in self.header if CANVAS_ASSIGNMENT.match(h)]
        if self.kind == "moodle":
            return [
                h
                for h in self.header
                if h not in MOODLE_COLUMNS and h != MOODLE_DOWNLOADED and MOODLE_GRADE.match(h)
            ]
        return []

    def column_for(self, assignment: str) -> str | None:
        """The export's column of ``assignment`` (by its name, exactly, else ignoring
        case), or None."""
        names = {}
        for h in self.assignment_columns():
            m = CANVAS_ASSIGNMENT.match(h) if self.kind == "canvas" else MOODLE_GRADE.match(h)
            if m and (self.kind == "canvas" or m.group("kind") != "Feedback"):
                names[h] = m.group("name")
        for h, name in names.items():
            if name == assignment or h == assignment:
                return h
        for h, name in names.items():
            if name.lower() == assignment.lower():
                return h
        return None


def sniff_separator(text: str, label: str) -> str:
    """The separator of a CSV text: of ``,`` ``;`` tab, the one that splits the header
    row into the most columns (quotes respected); the rows must then not hold more
    cells than the header — else the file is refused, never read as one column."""
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise GlassnetError("expected a header row", got="an empty file", file=label)
    counts = {sep: len(next(csv.reader([lines[0]], delimiter=sep))) for sep in SEPARATORS}
    best = max(SEPARATORS, key=lambda sep: (counts[sep], -SEPARATORS.index(sep)))
    if counts[best] == 1:
        # One column: fine, unless the rows are split by a separator the header lacks.
        for sep in SEPARATORS:
            wide = [n for n, line in enumerate(lines[1:], start=2) if sep in line]
            if sep != "," and wide:
                raise GlassnetError(
                    "expected the header row to name every column",
                    got=f"row {wide[0]} has {sep!r}-separated cells and the header has one",
                    file=label,
                )
    return best


def _read_rows(path: str | Path) -> tuple[list[list[str]], str]:
    label = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as err:
        raise GlassnetError(
            "expected a readable CSV roster", got=err.strerror or str(err), file=label
        ) from None
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark (Excel's "CSV UTF-8") is fine
    except UnicodeDecodeError as err:
        raise GlassnetError(
            "expected a UTF-8 CSV file (save it as 'CSV UTF-8')",
            got=f"a byte that is not UTF-8 at position {err.start}",
            file=label,
        ) from None
    sep = sniff_separator(text, label)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep)
    rows = [r for r in reader if any(c.strip() for c in r)]
    return rows, sep


def _kind(header: list[str]) -> str:
    low = {h.strip().lower() for h in header}
    if {"student", "sis user id"} <= low:
        return "canvas"
    if {"first name", "email address"} <= low and ({"last name", "surname"} & low):
        return "moodle"
    return "csv"


def read_roster_file(path: str | Path) -> Roster:
    """A roster: a plain CSV, a Canvas gradebook export or a Moodle grades export (see
    the module's docstring).  Bad files are one-line errors naming the row."""
    label = str(path)
    rows, sep = _read_rows(path)
    if len(rows) < 2:
        raise GlassnetError(
            "expected a header row and one row per student", got=f"{len(rows)} rows", file=label
        )
    header = [h.strip() for h in rows[0]]
    kind = _kind(header)
    roster = Roster(label, kind, header, [], sep)
    body = list(enumerate(rows[1:], start=2))
    if kind == "canvas":
        keep = []
        for n, row in body:
            first = row[0].strip() if row else ""
            if first == "Points Possible":
                roster.points = {h: row[i].strip() for i, h in enumerate(header) if i < len(row)}
            elif first or any(c.strip() for c in row[1:5]):
                keep.append((n, row))
            # else: a row of Canvas's own marks (e.g. "Manual Posting") under the header
        body = keep
    seen: set[str] = set()
    for n, row in body:
        cells = {h: (row[i].strip() if i < len(row) else "") for i, h in enumerate(header)}
        sid, name = _identity(kind, header, cells)
        if not sid:
            raise GlassnetError(
                "expected a student id", got="an empty cell", file=label, field=f"row {n}"
            )
        if sid in seen:
            raise GlassnetError(
                "expected each student once", got=f"{sid!r} again", file=label, field=f"row {n}"
            )
        seen.add(sid)
        roster.students.append(RosterStudent(sid, name, cells))
    if not roster.students:
        raise GlassnetError("expected one row per student", got="none", file=label)
    return roster


def _cell(cells: dict[str, str], *names: str) -> str:
    low = {k.lower(): v for k, v in cells.items()}
    for name in names:
        if low.get(name.lower()):
            return low[name.lower()]
    return ""


def _identity(kind: str, header: list[str], cells: dict[str, str]) -> tuple[str, str]:
    """(id, name) of one row."""
    if kind == "canvas":
        return _cell(cells, "SIS User ID", "SIS Login ID", "ID"), _cell(cells, "Student")
    if kind == "moodle":
        first = _cell(cells, "First name")
        last = _cell(cells, "Last name", "Surname")
        return _cell(cells, "ID number", "Email address"), " ".join(p for p in (first, last) if p)
    low = [h.lower() for h in header]
    col = next((header[low.index(c)] for c in ID_COLUMNS if c in low), header[0])
    return cells.get(col, ""), _cell(cells, "name")


_SAFE = re.compile(r"[^A-Za-z0-9_.-]+")


def folder_name(student_id: str) -> str:
    """A file-system-safe folder name for a student id (``ada@x.edu`` -> ``ada_x.edu``)."""
    return _SAFE.sub("_", student_id).strip("._") or "student"
