"""Feedback a student reads: one page per marked sheet, and a page for the class.

A student's page says their score (:func:`glassnet.check.lms.grade_of`), then, for the
first wrong number of each mistake (each named mistake at each quantity, and each
quantity with wrong numbers no rule explains), what went wrong in plain words with the
student's own numbers — what they wrote, what the right rule gives on their own
earlier values, what the mistake gives and which of their values it was worked from —
followed by the rule and the right working from the derivation ``glassnet explain``
writes (its :class:`~glassnet.explain.document.Calculation` block for that very
number), and then their sheet with every number's mark.

Everything is explain's document model (sections of paragraphs, calculations and
``Marks`` tables) printed by explain's own renderers, with a print stylesheet for A4.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.check.lms import Grade, Marked, fmt_points, grade_of, sheet_student
from glassnet.check.marking import Entry, Report, batch_free, engine_place
from glassnet.check.report import as_written, fmt, notes_lines
from glassnet.errors import GlassnetError
from glassnet.explain.document import (
    Block,
    Calculation,
    Collapsed,
    Erratum,
    ErratumKey,
    Marks,
    Para,
    Section,
    Table,
)
from glassnet.explain.render_html import render_sections_html
from glassnet.explain.render_markdown import render_sections_markdown

#: A4 paper for the feedback pages: small margins, the marks table kept compact, the
#: working never split across pages.
PRINT_A4 = """
@page { size: A4; margin: 12mm 12mm 14mm; }
.feedback-score { font: 600 1.3rem/1.4 system-ui, sans-serif; }
.marks .wrong td:last-child { white-space: normal; }
@media print {
  body { font-size: 9pt; }
  .marks table { font-size: 7.5pt; }
  .marks td, .marks th { padding: 0 .3rem; }
  section.check { break-inside: auto; }
  .step { break-inside: avoid; }
  header.top p { font-size: .8rem; }
}
"""


@dataclass
class Finding:
    """The first wrong number of one mistake (``key``: the diagnosis, or None for "no
    rule explains it", at a quantity), and how many numbers share it."""

    entry: Entry
    diagnosis: str | None
    strength: str
    count: int


def findings(report: Report) -> list[Finding]:
    """The first wrong number of each (mistake, quantity), in the order written."""
    from glassnet.check.lms import strength

    out: dict[tuple[str | None, str], Finding] = {}
    for e in report.entries:
        if e.verdict != "wrong":
            continue
        key = (e.diagnosis, e.name)
        if key in out:
            out[key].count += 1
        else:
            out[key] = Finding(e, e.diagnosis, strength(e.match) if e.diagnosis else "", 1)
    return list(out.values())


def _workings(report: Report, entries: list[Entry]) -> dict[int, Calculation]:
    """The derivation's calculation of each of ``entries`` (by ``id`` of the entry): the
    explain page of the sheet's own network is built with a marker beside each of those
    values — explain places a value's markers right after its calculation, so the
    calculation before a marker is that value's.  {} where explain cannot write the page
    (a batch, or layers it writes a matrix at a time); values of a later step, ``@after``
    or a tagged copy have none."""
    from glassnet.check.worksheet import split_tags
    from glassnet.explain.sections import build

    ctx = report.ctx
    if ctx.batch != 1:
        return {}
    markers: dict[ErratumKey, Erratum] = {}
    wanted: dict[int, int] = {}  # id(entry) -> id(its marker)
    for e in entries:
        _, tag, phase = split_tags(e.written)
        if tag or phase or e.expected is None:
            continue
        found = engine_place(report, e)
        if found is None:
            continue
        g, idx = found
        (kind, layer), index = g.key, batch_free(report, g, idx)
        if e.diagonal:  # a Jacobian written as its diagonal: row i
            index = (index[0],)
        marker = markers.setdefault(
            (kind, layer, index), Erratum("you", e.text, e.verdict, e.diagnosis, "", "")
        )
        wanted[id(e)] = id(marker)
    if not markers:
        return {}
    try:
        doc = build(ctx.trace, errata=markers, fold=False, picture=False)
    except GlassnetError:  # a page explain does not write (too large): no working
        return {}
    before: dict[int, Calculation] = {}
    last: Calculation | None = None

    def walk(blocks: list[Block]) -> None:
        nonlocal last
        for b in blocks:
            if isinstance(b, Calculation):
                last = b
            elif isinstance(b, Erratum) and last is not None:
                before[id(b)] = last
            elif isinstance(b, Collapsed):
                walk(b.blocks)

    for sec in doc.sections:
        last = None
        walk(sec.blocks)
    return {e: before[m] for e, m in wanted.items() if m in before}


def _inputs_used(report: Report, e: Entry) -> list[str]:
    """``["your W2_new[0, 0] = 0.75", ...]``: the student's own written values that the
    named mistake worked ``e`` from (each changes it when moved), at most four."""
    from glassnet.check import mistakes as cat
    from glassnet.check.steps import Working
    from glassnet.check.worksheet import split_tags

    if not e.diagnosis or e.diagonal or split_tags(e.written)[1:] != ("", ""):
        return []
    ctx = report.ctx
    own = report.sheet.own()
    found = engine_place(report, e)
    if found is None:
        return []
    g, idx = found
    K = g.key
    others = {k: x.value for k, x in own.items() if k != K}
    # a Jacobian written as its diagonal is read so, as marking reads it
    diag = {k for k, x in own.items() if x.diagonal}

    def work(given: dict[Any, Any], combo: list[Any] | tuple[()] = ()) -> Any:
        return Working(ctx, given, diagonal=diag, mistakes=combo).compute(K)

    catalogue = {m.id: m for m in [*cat.CATALOGUE.values(), *cat.plugin_mistakes(ctx)]}
    ms = [catalogue.get(i) for i in e.diagnosis.split("+")]
    if any(m is None for m in ms):
        return []
    best: tuple[float, list[Any]] | None = None
    for variants in itertools.product(*(m.variants for m in ms if m is not None)):
        combo = [(m, v) for m, v in zip(ms, variants, strict=True) if m is not None]
        try:
            alt = work(others, combo)
        except (GlassnetError, ValueError):  # a variant that does not apply here
            continue
        if alt.shape != g.value.shape or e.alternative is None:
            continue
        gap = abs(float(alt[idx]) - e.alternative)
        if best is None or gap < best[0]:
            best = (gap, combo)
    if best is None:
        return []
    combo = best[1]
    base = float(work(others, combo)[idx])
    right = float(work(others)[idx])
    # The values the mistake reads that the right rule does not come first: they are
    # what the mistake is ("your W2_new" where W2 belongs).
    own_first: list[str] = []
    shared: list[str] = []
    for k, x in own.items():
        if k == K or ctx.is_leaf(k):
            continue  # the givens x, y, W, b are the exercise's, not the student's work
        for j in np.ndindex(x.value.shape):
            moved = dict(others)
            v = np.array(x.value, dtype=np.float64, copy=True)
            v[j] += 1.0
            moved[k] = v
            try:
                moved_alt = float(work(moved, combo)[idx])
                plain = float(work(moved)[idx])
            except (GlassnetError, ValueError):
                continue
            if abs(moved_alt - base) <= 1e-9 * max(1.0, abs(base)):
                continue
            jj = j[1:] if ctx.batched(k) and ctx.batch == 1 else j
            text = f"your {x.written_name}{g_place(x.written_index(tuple(jj)))} = {x.text(j)}"
            changes_right = abs(plain - right) > 1e-9 * max(1.0, abs(right))
            (shared if changes_right else own_first).append(text)
    return (own_first + shared)[:4]


def g_place(idx: tuple[int, ...]) -> str:
    return f"[{', '.join(map(str, idx))}]" if idx else ""


def finding_words(report: Report, f: Finding) -> str:
    """What went wrong at ``f``'s number, in plain words with the student's numbers."""
    from glassnet.check.errata import title

    e = f.entry
    where = e.written + g_place(e.index) + (" (its diagonal)" if e.diagonal else "")
    if e.expected is None:  # written with a shape the quantity does not have
        text = (
            f"You wrote {e.written} with a shape it does not have, so no number of it "
            f"can be compared ({where} = {as_written(e)})."
        )
        return text + (f" {f.count - 1} more number(s) of it." if f.count > 1 else "")
    text = f"You wrote {where} = {as_written(e)}; the right value is {fmt(e.expected)}."
    if e.follows_from_given is not None and e.expected is not None:
        if abs(e.follows_from_given - e.expected) > e.tolerance:
            text += f" On your own earlier values the right rule gives {fmt(e.follows_from_given)}."
    if f.diagnosis:
        how = "The mistake" if f.strength == "exact" else "Possibly (not certain)"
        said, detail = _mistake_words(e, title("wrong", f.diagnosis))
        text += f" {how}: {said}."
        if detail:  # a check on the written number says what it found
            text += f" {detail[:1].upper()}{detail[1:]}."
        elif e.alternative is not None:
            text += f" That, done on your own values, gives {fmt(e.alternative)}"
            used = _inputs_used(report, e)
            text += ": worked with " + ", ".join(used) + "." if used else "."
        if f.strength != "exact":
            text += " This is a guess, not a finding: check your arithmetic too."
    else:
        text += " No mistake glassnet knows reproduces it: check this step's arithmetic."
    if f.count > 1:
        text += f" {f.count - 1} more number(s) of {e.name} have the same mark."
    return text


def _mistake_words(e: Entry, titled: str) -> tuple[str, str]:
    """(the mistake in words, what a check on the written number found) from check's own
    explanation: a catalogue rule's title with its variant ("the learning rate off by a
    power of ten (learning rate × 0.1)"), or a check's title and its finding ("it is
    your W_kl (W3) at the same place (0.4)")."""
    from glassnet.check.mistakes import CHECKS

    text = e.explanation
    rule = ": that rule on your own earlier values"
    if e.diagnosis in CHECKS and text.startswith(CHECKS[e.diagnosis] + ": "):
        return CHECKS[e.diagnosis], text[len(CHECKS[e.diagnosis]) + 2 :].split("; the right")[0]
    if rule in text and "+" not in (e.diagnosis or ""):
        return text.split(rule)[0], ""
    return titled, ""


def student_sections(report: Report, grade: Grade | None = None, name: str = "") -> list[Section]:
    """A student's feedback page in explain's document model."""
    g = grade or grade_of(report)
    sheet = report.sheet
    who = sheet.student or sheet.label
    if name:  # the roster's name for the id
        who = f"{name} ({who})"
    what = sheet.assignment or sheet.spec.name or sheet.label
    top = Section(f"Feedback: {what} · {who}", 1, "check")
    top.blocks.append(Para((f"Score: {fmt_points(g.score)} of {fmt_points(g.points)}.",)))
    if g.breakdown:
        top.blocks.append(Table("How the score is made", ("part", "points"), g.breakdown))
    s = report.summary()
    top.blocks.append(
        Para(
            (
                f"You wrote {s['values']} numbers: {s['ok']} right, {s['follows']} right for "
                f"your own earlier numbers (an earlier mistake carried forward), "
                f"{s['wrong']} wrong.",
            )
        )
    )
    top.blocks += [Para((line,)) for line in notes_lines(report)]
    out = [top]
    found = findings(report)
    wrong = Section("What went wrong", 2, "check")
    if not found:
        wrong.blocks.append(Para(("Nothing: every number is right or follows.",)))
    out.append(wrong)
    workings = _workings(report, [f.entry for f in found])
    for f in found:
        head = (
            f.entry.name
            + ": "
            + ((f.diagnosis and _short_title(f.diagnosis)) or "wrong, no named cause")
        )
        if f.diagnosis and f.strength != "exact":
            head += " (possible)"
        sec = Section(head, 3, "check")
        sec.blocks.append(Para((finding_words(report, f),)))
        calc = workings.get(id(f.entry))
        if calc is not None:
            sec.blocks.append(Para(("The rule, and the right working:",)))
            sec.blocks.append(calc)
        out.append(sec)
    out.append(sheet_section(report))
    return out


#: Each number's mark on the student's sheet (in words too: the legend says them).
TICKS = {"ok": "✓", "follows": "→", "wrong": "✗"}


def sheet_section(report: Report) -> Section:
    """The student's sheet, one row per value written, each number with its mark —
    compact enough for a page (the number-by-number table is ``glassnet check``'s
    report)."""
    groups: dict[str, list[Entry]] = {}
    for e in report.entries:
        groups.setdefault(e.written, []).append(e)
    rows: list[tuple[str, ...]] = []
    verdicts: list[str] = []
    for written, es in groups.items():
        worst = max(es, key=lambda e: ("ok", "follows", "wrong").index(e.verdict)).verdict
        numbers = ""
        for k, e in enumerate(es):
            if k:  # a matrix's rows apart: "|" where a new row starts
                new_row = len(e.index) == 2 and e.index[0] != es[k - 1].index[0]
                numbers += "  |  " if new_row else "  "
            numbers += f"{TICKS[e.verdict]} {as_written(e)}"
        counts = ", ".join(
            f"{n} {v}" for v in ("ok", "follows", "wrong") if (n := sum(e.verdict == v for e in es))
        )
        rows.append((written, numbers, counts))
        verdicts.append(worst)
    sec = Section("Your sheet", 2, "check")
    sec.blocks.append(
        Para(
            (
                "Each number you wrote, in the order written (a matrix row by row, rows "
                "apart by |): ✓ right, → right for your own earlier numbers (a mistake "
                "carried forward), ✗ wrong.",
            )
        )
    )
    sec.blocks.append(Marks(("quantity", "your numbers", "marks"), rows, verdicts, stress=1))
    return sec


def _short_title(diagnosis: str) -> str:
    from glassnet.check.errata import title

    return title("wrong", diagnosis)


def student_html(report: Report, grade: Grade | None = None, name: str = "") -> str:
    """A student's feedback as a standalone, printable HTML page."""
    secs = student_sections(report, grade, name)
    return render_sections_html(
        secs[0].title,
        secs,
        "Marked by glassnet check against its engine's trace",
        extra_css=PRINT_A4,
    )


def student_markdown(report: Report, grade: Grade | None = None, name: str = "") -> str:
    """A student's feedback as Markdown."""
    return render_sections_markdown(student_sections(report, grade, name))


def class_sections(marked: list[Marked]) -> list[Section]:
    """The class page: each student's score and mistakes (a link to their page), then
    how many made each mistake."""
    from glassnet.check.report import class_report

    reports = [(f, r) for f, r, _ in marked if r is not None]
    top = Section("Feedback: the class", 1, "check")
    top.blocks.append(
        Para(
            (
                f"{len(reports)} of {len(marked)} sheets marked; each student's page is "
                "STUDENT.html (and .md) beside this one.",
            )
        )
    )
    rows = []
    for file, r in reports:
        g = grade_of(r)
        named = "; ".join(
            f"{m.quantity}: {m.id}" + ("" if m.strength == "exact" else " (possible)")
            for m in g.mistakes
        )
        if g.unexplained:
            named += ("; " if named else "") + "unexplained: " + ", ".join(g.unexplained)
        rows.append(
            (
                sheet_student(file, r),
                f"{fmt_points(g.score)} / {fmt_points(g.points)}",
                named or "—",
            )
        )
    for file, unread, err in marked:
        if unread is None:
            rows.append((sheet_student(file, None), "not marked", err or ""))
    top.blocks.append(Table("Scores", ("student", "score", "mistakes"), rows))
    counts = Section("Mistakes across the class", 2, "check")
    lines = class_report(marked)
    counts.blocks += [Para((line,)) for line in lines] or [Para(("None named.",))]
    return [top, counts]


def write_feedback(
    marked: list[Marked], folder: str | Path, names: dict[str, str] | None = None
) -> list[Path]:
    """``folder/STUDENT.html`` and ``.md`` per marked sheet, ``folder/index.html`` and
    ``index.md`` for the class; the paths written.  ``names``: id -> name (a roster's),
    shown beside the id."""
    from glassnet.check.roster import folder_name
    from glassnet.fileio import atomic_write_text

    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    stems: dict[str, str] = {}
    for file, r, _ in marked:
        if r is None:
            continue
        stem = folder_name(sheet_student(file, r))
        if stem in stems or stem == "index":
            stem = folder_name(str(Path(file).with_suffix("")))
        stems[stem] = file
        name = (names or {}).get(sheet_student(file, r), "")
        pages = ((".html", student_html(r, name=name)), (".md", student_markdown(r, name=name)))
        for suffix, text in pages:
            path = out / f"{stem}{suffix}"
            atomic_write_text(path, text, field="--feedback")
            written.append(path)
    secs = class_sections(marked)
    page = render_sections_html(secs[0].title, secs, "Marked by glassnet check", extra_css=PRINT_A4)
    for suffix, text in ((".html", page), (".md", render_sections_markdown(secs))):
        path = out / f"index{suffix}"
        atomic_write_text(path, text, field="--feedback")
        written.append(path)
    return written
