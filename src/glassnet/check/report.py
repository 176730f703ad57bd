"""Views of a marked worksheet: a rich terminal table, JSON, Markdown and HTML.

They read the :class:`~glassnet.check.marking.Report` only.  The Markdown/HTML report is
built in explain's document model (:mod:`glassnet.explain.document`: sections of
paragraphs and :class:`~glassnet.explain.document.Marks` tables) and printed by explain's
renderers, so a marked worksheet and a derivation are one kind of page.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Union, cast

from glassnet.check.marking import Entry, Report
from glassnet.check.mistakes import title_of
from glassnet.check.quantities import key_name, order
from glassnet.check.worksheet import split_tags
from glassnet.explain.document import Marks, Para, Section
from glassnet.explain.render_html import render_sections_html
from glassnet.explain.render_markdown import render_sections_markdown
from glassnet.notation import seed_name

if TYPE_CHECKING:
    from glassnet.check.circuit import CircuitReport

COLOURS = {"ok": "green", "follows": "yellow", "wrong": "bold red"}
MARKS = {"ok": "✓ ok", "follows": "→ follows", "wrong": "✗ wrong"}


def fmt(v: float | None, digits: int = 6) -> str:
    """A number to ``digits`` significant digits (no exponent for everyday sizes; never
    "-0")."""
    if v is None:
        return ""
    if v == 0:
        return "0"
    if 1e-5 <= abs(v) < 1e7:
        text = f"{v:.{digits}g}" if abs(v) >= 1 else f"{v:.{digits}g}".rstrip("0").rstrip(".")
    else:
        text = f"{v:.{digits - 1}e}"
    return no_negative_zero(text)


def no_negative_zero(text: str) -> str:
    """``"-0.0000"`` -> ``"0.0000"``: a zero has no sign on a page."""
    if text.startswith("-") and not any(c in "123456789" for c in text.partition("e")[0]):
        return text[1:]
    return text


def as_written(e: Entry) -> str:
    """The number as the person wrote it (``0.8000``), else to 6 significant digits."""
    return no_negative_zero(e.text) if e.text else fmt(e.given)


def label(e: Entry, n_layers: int) -> str:
    """``dW3 (dW_kl)[0, 1]``: our name, the seed's (none for ``n_layers`` 0), the place."""
    seed = seed_name(e.name, n_layers) if n_layers else None
    tag = split_tags(e.written)[1]
    head = e.name + (f" ({seed})" if seed and seed != e.name else "")
    if tag:
        head += f" @{tag}"
    place = f"[{', '.join(map(str, e.index))}]" if e.index else ""
    return head + place + (" diag" if e.diagonal else "")


def rows(report: Report, *, everything: bool = False) -> list[Entry]:
    return [e for e in report.entries if everything or e.verdict != "ok"]


def summary_line(report: Report | CircuitReport) -> str:
    s = report.summary()
    line = (
        f"{score_text(report)}; {s['values']} numbers: {s['ok']} ok, {s['follows']} follow, "
        f"{s['wrong']} wrong ({s['diagnosed']} exact, {s['possible']} possible, "
        f"{s['unexplained']} unexplained)"
    )
    return line


def score_text(report: Report | CircuitReport) -> str:
    """``score 81.5 of 100`` (``... by rubric.toml`` for a rubric file) — the rubric's
    score, never a share of what was written."""
    g = report.grade()
    by = "" if g.rubric == "default" else f" by {g.rubric}"
    return f"score {fmt(round(g.points, 2))} of {fmt(g.total)}{by}"


def diagnosis_text(e: Entry, *, title: bool = True) -> str:
    """``lr_slip (possible): the learning rate off by a power of ten`` — the id, its
    strength, and (``title``) the catalogue's one-line title; "" when there is none."""
    if not e.diagnosis:
        return ""
    text = f"{e.diagnosis} ({e.match or 'possible'})"
    return text + (f": {title_of(e.diagnosis)}" if title else "")


def notes_lines(report: Report | CircuitReport) -> list[str]:
    """One line per part of the sheet that was not marked as written (a circuit
    worksheet has none: each bad number is an error)."""
    out: list[str] = []
    if not isinstance(report, Report):
        return out
    for n in report.notes:
        what = "could not read" if n.kind == "unreadable" else "warning"
        out.append(f"{report.sheet.label}, field '{n.field}': {what}: {n.message}")
    return out


def print_report(report: Report, *, everything: bool = False, console: Any = None) -> None:
    """The terminal table (given as written, right, from yours, verdict, diagnosis),
    coloured; an all-ok sheet is one summary line."""
    import sys

    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    # Piped output gets a fixed width wide enough for the diagnosis column.
    con = console or Console(width=None if sys.stdout.isatty() else 130)
    L = report.sheet.seed_layers
    title = report.sheet.spec.name or report.sheet.label
    for line in notes_lines(report):
        con.print(escape(line), style="yellow", highlight=False)
    shown = rows(report, everything=everything)
    if not shown:
        con.print(f"{title}: " + summary_line(report), highlight=False)
        return
    t = Table(title=f"{title}: {'every number' if everything else 'numbers not ok'}")
    t.add_column("quantity (seed name)", no_wrap=True)
    for col in ("given", "right", "from yours"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("verdict", no_wrap=True)
    t.add_column("diagnosis", overflow="fold")
    for e in shown:
        colour = COLOURS[e.verdict]
        diag = diagnosis_text(e) or ("—" if e.verdict != "wrong" else "unexplained")
        t.add_row(
            escape(label(e, L)),
            as_written(e),
            fmt(e.expected),
            fmt(e.follows_from_given),
            f"[{colour}]{MARKS[e.verdict]}[/{colour}]",
            escape(diag),
        )
    con.print(t)
    con.print(summary_line(report), highlight=False)


def to_json(report: Report, indent: int | None = 2) -> str:
    """The schema of docs/check.md."""
    return json.dumps(report.to_dict(), indent=indent)


# -- documents --------------------------------------------------------------------------


def sections(report: Report) -> list[Section]:
    """What the report document says, in explain's document model: the title section
    (description, summary, notes), the wrong numbers, every number (:class:`Marks`)."""
    L = report.sheet.seed_layers
    head = ("quantity", "given", "right", "from yours", "verdict", "diagnosis", "explanation")

    def marks(entries: list[Entry]) -> Marks:
        rows: list[tuple[str, ...]] = [
            (
                label(e, L),
                as_written(e),
                fmt(e.expected),
                fmt(e.follows_from_given),
                e.verdict,
                diagnosis_text(e, title=False),  # the explanation starts with it
                e.explanation,
            )
            for e in entries
        ]
        return Marks(head, rows, [e.verdict for e in entries], stress=1)

    top = Section(title(report), 1, "check")
    if report.sheet.spec.description:
        top.blocks.append(Para((report.sheet.spec.description,)))
    top.blocks.append(Para((summary_line(report) + ".",)))
    top.blocks += [Para((line,)) for line in notes_lines(report)]
    wrong = report.wrong()
    errata = Section(
        "Errata (wrong numbers)" if report.sheet.is_seed else "Wrong numbers", 2, "check"
    )
    errata.blocks.append(marks(wrong) if wrong else Para(("None: every number is ok or follows.",)))
    every = Section("Every number", 2, "check", blocks=[marks(report.entries)])
    return [top, errata, every]


def title(report: Report) -> str:
    return f"Marked worksheet: {report.sheet.spec.name or report.sheet.label}"


def to_markdown(report: Report) -> str:
    """The report as Markdown, printed by explain's Markdown renderer."""
    return render_sections_markdown(sections(report))


def to_html(report: Report) -> str:
    """The report as a standalone HTML page, printed by explain's HTML renderer."""
    return render_sections_html(
        title(report), sections(report), "Marked by glassnet check against its engine's trace"
    )


# -- a class ------------------------------------------------------------------------------
#: One marked sheet of a class: (file, report or None, error when it could not be read)
#: — a network's worksheet or a circuit's, in one class.
Marked = tuple[str, Union[Report, "CircuitReport", None], "str | None"]


def mistakes_of(report: Report | CircuitReport, strength: str | None = None) -> list[str]:
    """``["missing_activation_derivative at delta1 (exact)", ...]``: each named mistake
    once per quantity and strength, in the order met (``strength``: only those)."""
    out: list[str] = []
    for e in report.entries:
        if e.verdict == "wrong" and e.diagnosis:
            match = e.match or "possible"
            if strength is not None and match != strength:
                continue
            item = f"{e.diagnosis} at {e.name} ({match})"
            if item not in out:
                out.append(item)
    return out


def unexplained_of(report: Report | CircuitReport) -> list[str]:
    """``["dW2 wrong, unexplained", ...]``: each quantity with a wrong number no rule
    explains, once, in the order met."""
    out: list[str] = []
    for e in report.entries:
        if e.verdict == "wrong" and not e.diagnosis:
            item = f"{e.name} wrong, unexplained"
            if item not in out:
                out.append(item)
    return out


def student_line(file: str, report: Report | CircuitReport | None, error: str | None) -> str:
    """One line per student for the class view."""
    if report is None:
        return f"{file}: could not be read: {error}"
    s = report.summary()
    who = f" ({report.sheet.student})" if report.sheet.student else ""
    line = (
        f"{file}{who}: {score_text(report)}; {s['values']} numbers: {s['ok']} ok, "
        f"{s['follows']} follow, {s['wrong']} wrong"
    )
    named = mistakes_of(report)
    if named:
        line += "; " + ", ".join(named)
    if s["unexplained"]:
        line += f"; {s['unexplained']} unexplained"
    bad = [n.field for n in report.notes]
    if bad:
        line += "; not marked as written: " + ", ".join(bad)
    return line


def class_report(marked: Sequence[Marked]) -> list[str]:
    """How many students made each named mistake at each quantity, exact and possible
    counted apart, then how many have wrong numbers no rule explains, per quantity; each
    part most common first: ``"12 of 30: missing_activation_derivative at delta1
    (exact)"``, ``"3 of 30: lr_slip at W2_new (possible)"``, ``"7 of 30: dW2 wrong,
    unexplained"``."""
    reports = [r for _, r, _ in marked if r is not None]
    n = len(reports)
    out: list[str] = []
    for items in (
        lambda r: mistakes_of(r, "exact"),
        lambda r: mistakes_of(r, "possible"),
        unexplained_of,
    ):
        counts: dict[str, int] = {}
        for r in reports:
            for item in items(r):
                counts[item] = counts.get(item, 0) + 1
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        out += [f"{c} of {n}: {item}" for item, c in ranked]
    return out


def _quantities(reports: list[Report | CircuitReport]) -> list[str]:
    """Every quantity written on any sheet, in the derivation's (circuit's) order."""

    seen: dict[str, tuple[int, int]] = {}
    for r in reports:
        if isinstance(r, Report):
            seq = [key_name(k) for k in order(r.sheet.n_layers)]
        else:
            seq = r.names()
        for e in r.entries:
            if e.name not in seen:
                pos = seq.index(e.name) if e.name in seq else len(seq)
                seen[e.name] = (pos, len(seen))
    return sorted(seen, key=lambda q: seen[q])


def gradebook(marked: Sequence[Marked], form: str = "csv") -> str:
    """The class's marks as CSV.  ``csv``: one row per worksheet (file, student, values,
    ok, follows, wrong, score, out of, named mistakes "id at quantity (exact|possible)",
    unexplained "quantity: count", unreadable parts) and one column per quantity
    ("ok+follows/written").  ``canvas``/``moodle``: the file that LMS's gradebook import
    reads, without a roster (:mod:`glassnet.check.lms`, which also writes them with the
    LMS's own export as the roster): the rubric's points, out of its total."""
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    reports = [r for _, r, _ in marked if r is not None]
    if form in ("canvas", "moodle"):
        from glassnet.check.lms import Marked as LmsMarked
        from glassnet.check.lms import canvas_gradebook, moodle_gradebook

        # A circuit's report has what these read (grade(), sheet.student/assignment).
        lms_marked = cast("list[LmsMarked]", list(marked))
        return (canvas_gradebook if form == "canvas" else moodle_gradebook)(lms_marked)
    quantities = _quantities(reports)
    w.writerow(
        [
            "file",
            "student",
            "values",
            "ok",
            "follows",
            "wrong",
            "score",
            "out of",
            "named mistakes",
            "unexplained",
            "unreadable parts",
            *quantities,
        ]
    )
    for file, r, error in marked:
        if r is None:
            w.writerow(
                [file, "", "", "", "", "", "", "", "", "", error or ""] + [""] * len(quantities)
            )
            continue
        s = r.summary()
        g = r.grade()
        cells = []
        for q in quantities:
            es = [e for e in r.entries if e.name == q]
            good = sum(e.verdict != "wrong" for e in es)
            cells.append(f"{good}/{len(es)}" if es else "")
        w.writerow(
            [
                file,
                r.sheet.student,
                s["values"],
                s["ok"],
                s["follows"],
                s["wrong"],
                fmt(round(g.points, 2)),
                fmt(g.total),
                "; ".join(mistakes_of(r)),
                "; ".join(f"{q}: {n}" for q, n in g.unexplained.items()),
                "; ".join(str(n) for n in r.notes),
                *cells,
            ]
        )
    return buf.getvalue()
