"""glassnet check: mark a hand-worked step, carry errors forward, name each mistake.

>>> from glassnet.check import check_worksheet
>>> report = check_worksheet("seed")
>>> report.summary()["unexplained"] <= report.summary()["wrong"]
True
"""

from __future__ import annotations

from pathlib import Path

from glassnet.check.errata import errata, published_notes
from glassnet.check.exercise import Known
from glassnet.check.marking import Entry, Report, check
from glassnet.check.mistakes import CATALOGUE, CHECKS, all_ids
from glassnet.check.rubric import DEFAULT, Finding, Grade, Rubric, grade, load_rubric, parse_rubric
from glassnet.check.worksheet import Worksheet, load_worksheet, parse_worksheet


def check_worksheet(
    source: str | Path | Worksheet,
    *,
    rtol: float | None = None,
    rubric: Rubric | None = None,
    known: Known | None = None,
) -> Report:
    """Load (a path, ``"seed"``, or a parsed :class:`Worksheet`) and mark it; its score
    (``report.grade()``) is by ``rubric`` (the built-in one when None).  ``known``: who
    a roster sheet may be for (its header is checked against them)."""
    sheet = source if isinstance(source, Worksheet) else load_worksheet(source, known=known)
    return check(sheet, rtol=rtol, rubric=rubric)


__all__ = [
    "CATALOGUE",
    "CHECKS",
    "DEFAULT",
    "Entry",
    "Finding",
    "Grade",
    "Report",
    "Rubric",
    "Worksheet",
    "all_ids",
    "check",
    "check_worksheet",
    "errata",
    "grade",
    "load_rubric",
    "load_worksheet",
    "parse_rubric",
    "parse_worksheet",
    "published_notes",
]
