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
from glassnet.check.worksheet import Worksheet, load_worksheet, parse_worksheet


def check_worksheet(
    source: str | Path | Worksheet, *, rtol: float | None = None, known: Known | None = None
) -> Report:
    """Load (a path, ``"seed"``, or a parsed :class:`Worksheet`) and mark it.  ``known``:
    who a roster sheet may be for (its header is checked against them)."""
    sheet = source if isinstance(source, Worksheet) else load_worksheet(source, known=known)
    return check(sheet, rtol=rtol)


__all__ = [
    "CATALOGUE",
    "CHECKS",
    "Entry",
    "Report",
    "Worksheet",
    "all_ids",
    "check",
    "check_worksheet",
    "errata",
    "load_worksheet",
    "parse_worksheet",
    "published_notes",
]
