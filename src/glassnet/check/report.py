"""Views of a marked worksheet: a rich terminal table, JSON, Markdown and HTML.

They read the :class:`~glassnet.check.marking.Report` only.  The Markdown/HTML report is a
list of blocks (a heading, a paragraph, a table) rendered by two small writers, so that
explain's renderers can later replace the writers without changing what is said.
"""

from __future__ import annotations

import html
import json
from typing import Any

from glassnet.check.marking import Entry, Report
from glassnet.notation import seed_name

COLOURS = {"ok": "green", "follows": "yellow", "wrong": "bold red"}
MARKS = {"ok": "✓ ok", "follows": "→ follows", "wrong": "✗ wrong"}


def fmt(v: float | None, digits: int = 6) -> str:
    """A number to ``digits`` significant digits (no exponent for everyday sizes)."""
    if v is None:
        return ""
    if v == 0:
        return "0"
    if 1e-5 <= abs(v) < 1e7:
        return f"{v:.{digits}g}" if abs(v) >= 1 else f"{v:.{digits}g}".rstrip("0").rstrip(".")
    return f"{v:.{digits - 1}e}"


def label(e: Entry, n_layers: int) -> str:
    """``dW3 (dW_kl)[0, 1]``: our name, the seed's, the place."""
    seed = seed_name(e.name, n_layers)
    tag = e.written.partition("@")[2]
    head = e.name + (f" ({seed})" if seed and seed != e.name else "")
    if tag:
        head += f" @{tag}"
    place = f"[{', '.join(map(str, e.index))}]" if e.index else ""
    return head + place + (" diag" if e.diagonal else "")


def rows(report: Report, *, everything: bool = False) -> list[Entry]:
    return [e for e in report.entries if everything or e.verdict != "ok"]


def summary_line(report: Report) -> str:
    s = report.summary()
    line = (
        f"{s['values']} numbers: {s['ok']} ok, {s['follows']} follow from an earlier error, "
        f"{s['wrong']} wrong ({s['diagnosed']} with a named cause, {s['unexplained']} unexplained)"
    )
    return line


def print_report(report: Report, *, everything: bool = False, console: Any = None) -> None:
    """The terminal table (given, right, from yours, verdict, diagnosis), coloured."""
    import sys

    from rich.console import Console
    from rich.table import Table

    # Piped output gets a fixed width wide enough for the diagnosis column.
    con = console or Console(width=None if sys.stdout.isatty() else 130)
    L = report.sheet.n_layers
    title = report.sheet.spec.name or report.sheet.label
    t = Table(title=f"{title}: {'every number' if everything else 'numbers not ok'}")
    t.add_column("quantity (seed name)", no_wrap=True)
    for col in ("given", "right", "from yours"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("verdict", no_wrap=True)
    t.add_column("diagnosis", overflow="fold")
    for e in rows(report, everything=everything):
        colour = COLOURS[e.verdict]
        diag = e.diagnosis or ("—" if e.verdict != "wrong" else "unexplained")
        if e.match == "near":
            diag += " (near)"
        place = f"[{', '.join(map(str, e.index))}]" if e.index else ""
        seed = seed_name(e.name, L) or ""
        tag = e.written.partition("@")[2]
        seed += f" @{tag}" if tag else ""
        t.add_row(
            e.name
            + place
            + (" diag" if e.diagonal else "")
            + (f"\n[dim]{seed}[/dim]" if seed else ""),
            fmt(e.given),
            fmt(e.expected),
            fmt(e.follows_from_given),
            f"[{colour}]{MARKS[e.verdict]}[/{colour}]",
            diag,
        )
    con.print(t)
    con.print(summary_line(report))


def to_json(report: Report, indent: int | None = 2) -> str:
    """The schema of docs/check.md."""
    return json.dumps(report.to_dict(), indent=indent)


# -- documents --------------------------------------------------------------------------

Block = tuple[str, Any]


def blocks(report: Report) -> list[Block]:
    """What the document says, as (kind, content) blocks: h1/h2/p/table."""
    L = report.sheet.n_layers
    out: list[Block] = [("h1", f"Marked worksheet: {report.sheet.spec.name or report.sheet.label}")]
    if report.sheet.spec.description:
        out.append(("p", report.sheet.spec.description))
    out.append(("p", summary_line(report) + "."))
    head = ["quantity", "given", "right", "from yours", "verdict", "diagnosis", "explanation"]

    def table(entries: list[Entry]) -> Block:
        body = [
            [
                label(e, L),
                fmt(e.given),
                fmt(e.expected),
                fmt(e.follows_from_given),
                e.verdict,
                (e.diagnosis or "") + (" (near)" if e.match == "near" else ""),
                e.explanation,
            ]
            for e in entries
        ]
        return ("table", (head, body, [e.verdict for e in entries]))

    wrong = report.wrong()
    out.append(("h2", "Errata (wrong numbers)"))
    out.append(table(wrong) if wrong else ("p", "None: every number is ok or follows."))
    out.append(("h2", "Every number"))
    out.append(table(report.entries))
    return out


def to_markdown(report: Report) -> str:
    lines: list[str] = []
    for kind, content in blocks(report):
        if kind == "h1":
            lines += [f"# {content}", ""]
        elif kind == "h2":
            lines += [f"## {content}", ""]
        elif kind == "p":
            lines += [content, ""]
        else:
            head, body, verdicts = content
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "---|" * len(head))
            for row, verdict in zip(body, verdicts, strict=True):
                cells = [c.replace("|", "\\|") for c in row]
                if verdict == "wrong":
                    cells[1] = f"**{cells[1]}**"
                lines.append("| " + " | ".join(cells) + " |")
            lines.append("")
    return "\n".join(lines)


def to_html(report: Report) -> str:
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'><title>glassnet check</title>",
        "<style>body{font-family:sans-serif} td,th{padding:2px 8px;text-align:right}"
        " td:first-child,td:nth-child(n+5){text-align:left}"
        " .ok{color:#060} .follows{color:#a60} .wrong{color:#b00;font-weight:bold}</style>",
        "</head><body>",
    ]
    for kind, content in blocks(report):
        if kind in ("h1", "h2", "p"):
            parts.append(f"<{kind}>{html.escape(content)}</{kind}>")
        else:
            head, body, verdicts = content
            parts.append("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head))
            for row, verdict in zip(body, verdicts, strict=True):
                cells = "".join(f"<td>{html.escape(c)}</td>" for c in row)
                parts.append(f"<tr class='{verdict}'>{cells}</tr>")
            parts.append("</table>")
    parts.append("</body></html>")
    return "\n".join(parts)
