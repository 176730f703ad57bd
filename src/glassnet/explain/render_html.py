"""The derivation as one standalone HTML page: maths as MathML (browsers render it
natively: no script, no CDN, no network), the network as inline SVG, a small
stylesheet.  Prints a :class:`~glassnet.explain.document.Document`; computes nothing."""

from __future__ import annotations

import re
from html import escape

from glassnet.errors import GlassnetError
from glassnet.explain.document import (
    Block,
    Calculation,
    Cell,
    Collapsed,
    Document,
    Elided,
    Equation,
    Erratum,
    Grids,
    Link,
    Marks,
    Para,
    Picture,
    Section,
    Table,
)
from glassnet.mathtree import mml, mml_derivation, mml_equation

CSS = """
:root { --ink: #1e293b; --muted: #64748b; --accent: #2563eb; --card: #f8fafc;
        --line: #e2e8f0; --back: #c2410c; --upd: #15803d; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
       font: 17px/1.5 "Iowan Old Style", "Palatino Linotype", Georgia, serif; }
main { max-width: 62rem; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
header.top { background: linear-gradient(120deg, #1e3a8a, #2563eb); color: #fff; }
header.top div { max-width: 62rem; margin: 0 auto; padding: 1.6rem 2rem 1.2rem; }
header.top h1 { margin: 0 0 .3rem; font: 600 1.9rem/1.2 system-ui, sans-serif; }
header.top p { margin: 0; opacity: .9; font: 0.95rem/1.5 system-ui, sans-serif; }
nav { font: 0.9rem/1.6 system-ui, sans-serif; background: var(--card);
      border: 1px solid var(--line); border-radius: 8px; padding: .6rem 1rem; margin: 1rem 0; }
nav ol { margin: 0; padding-left: 1.2rem; columns: 3; }
nav a { color: var(--accent); text-decoration: none; }
h2, h3 { font-family: system-ui, sans-serif; line-height: 1.25; }
p { margin: .4rem 0; }
h2 { margin-top: 1.6rem; padding-bottom: .3rem; border-bottom: 2px solid var(--line); }
h3 { margin-top: 1.5rem; color: #1e3a8a; }
.pass { display: inline-block; font: 600 .7rem/1.4 system-ui, sans-serif; letter-spacing: .04em;
        text-transform: uppercase; padding: .1rem .45rem; border-radius: 999px;
        vertical-align: .25em; color: #fff; background: var(--accent); }
section.backward .pass { background: var(--back); }
section.update .pass { background: var(--upd); }
section.backward .step { border-left-color: var(--back); }
section.update .step { border-left-color: var(--upd); }
section.backward h3 { color: #9a3412; }
section.update h3 { color: #166534; }
.print-note { display: none; }
@media (max-width: 40rem) {
  main, header.top div { padding-left: .8rem; padding-right: .8rem; }
  nav ol { columns: 1; }
}
.legend { font: 0.9rem/1.5 system-ui, sans-serif; color: var(--muted); }
@media print {
  body { font-size: 9.5pt; line-height: 1.35; }
  main { padding: 0; max-width: none; }
  header.top { background: none; color: var(--ink); border-bottom: 2px solid var(--ink); }
  header.top div { padding: 0 0 .3rem; max-width: none; }
  header.top h1 { color: #1e3a8a; font-size: 1.4rem; }
  nav { display: none; }
  p { margin: .3rem 0; }
  h2 { margin: .9rem 0 .4rem; font-size: 1.25rem; }
  h3 { margin: .7rem 0 .3rem; font-size: 1.05rem; }
  .step, .eq, figure, .table, details.erratum, h2, h3, p.elided { break-inside: avoid; }
  h2, h3, p:has(+ .step), p:has(+ .eq) { break-after: avoid; }
  .step, .eq { overflow: visible; margin: .2rem 0; }
  .step { padding: 0 .7rem; }
  math[display="block"] { margin: .1rem 0; font-size: 1em; }
  details { margin: .1rem 0; padding: 0 .6rem; }
  details > summary { font-size: .78rem; }
  details.erratum { margin: .1rem 0 .25rem; padding: 0 .6rem; font-size: .78rem; }
  figure { margin: .5rem 0; }
  figure svg { max-width: min(100%, 20rem); }
  figcaption { font-size: .8rem; }
  .table { margin: .4rem 0; }
  .table table { font-size: .82em; }
  .table th, .table td { line-height: 1.25; padding: 0 .45rem; }
  .print-note { display: block; }
}
"""

#: Print what is open on screen (the default): folded parts stay folded, each saying
#: so; only the big parts (the passes) start a page.
PRINT_OPEN = """
@media print {
  main > section.nobreak { break-before: page; }
  details:not(.erratum):not([open]) > summary::after {
    content: " — folded; in the HTML page"; color: var(--muted); font-style: italic; }
}
"""

#: ``--print full``: every folded part printed open, every section on a page of its own.
PRINT_FULL = """
@media print {
  main > section > h2 { break-before: page; }
  details::details-content { content-visibility: visible; display: contents; }
  details > summary { list-style: none; }
}
"""

#: How a page can be printed: "open" (what is open on screen) or "full" (everything).
PRINT_MODES: tuple[str, ...] = ("open", "full")


def _css_string(text: str) -> str:
    """``text`` as a CSS string literal (quotes, backslashes and line ends escaped)."""
    out = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", " ")
    return f'"{out}"'


def page_css(title: str) -> str:
    """The printed page's footer: the title and "page n of N" in the page's margin
    boxes (CSS paged media, which Chromium prints since version 131) — carried by the
    page itself, so printing from the browser shows them too, not only a PDF made by
    a tool.  The margins come from here; the paper size from the printer."""
    footer = "font: 8pt/1.2 system-ui, sans-serif; color: #64748b;"
    return (
        "@page { margin: 13mm 13mm 15mm; "
        f"@bottom-left {{ content: {_css_string(title)}; {footer} }} "
        f'@bottom-right {{ content: "page " counter(page) " of " counter(pages); {footer} }} }}'
    )


#: The maths and picture rules; "SCOPE " is "" on the page and ".glassnet-explain "
#: inside a notebook, where the page's other rules must not restyle the notebook.
MATH_CSS = """
SCOPE .step { background: var(--card); border-left: 4px solid var(--accent); border-radius: 4px;
        margin: .3rem 0; padding: .1rem .9rem; overflow-x: auto; }
SCOPE .eq { margin: .3rem 0; padding: .1rem .9rem; overflow-x: auto; }
SCOPE math[display="block"] { font-size: 1.08em; margin: .2rem 0; }
SCOPE mtable.derivation > mtr > mtd { padding: .1rem 0; }
SCOPE mtable.derivation > mtr > mtd:first-child { text-align: right; padding-right: .3em; }
SCOPE mtable.derivation > mtr > mtd:last-child { text-align: left; }
SCOPE mtable.derivation > mtr:nth-child(2) { color: #475569; }
SCOPE mtable.derivation > mtr:last-child { font-weight: bold; color: #0f172a; }
SCOPE mrow.matrix { display: inline-block; margin: 0 .15em; padding: 0 .12em;
  border-left: 1.5px solid currentColor; border-right: 1.5px solid currentColor;
  background:
    linear-gradient(currentColor, currentColor) left top / .3em 1.5px no-repeat,
    linear-gradient(currentColor, currentColor) left bottom / .3em 1.5px no-repeat,
    linear-gradient(currentColor, currentColor) right top / .3em 1.5px no-repeat,
    linear-gradient(currentColor, currentColor) right bottom / .3em 1.5px no-repeat; }
SCOPE mrow.matrix mtd { padding: .1rem .4rem; }
/* A matrix too wide for the screen scrolls by itself (at the body's size), the rest of
   its line wraps around it. */
SCOPE mrow.matrix { max-width: 100%; overflow-x: auto; overflow-y: hidden; vertical-align: middle; }
SCOPE .elided { color: var(--muted); font-style: italic; }
SCOPE details.erratum { margin: .1rem 0 .5rem; padding: .15rem .8rem; border-radius: 4px;
  border: none; font: .85rem/1.45 system-ui, sans-serif; background: #fef2f2;
  border-left: 4px solid #b91c1c; overflow-wrap: anywhere; }
SCOPE details.erratum > summary { color: var(--ink); font: inherit; }
SCOPE details.erratum p { margin: .2rem 0; color: #475569; }
SCOPE .erratum strong { color: #991b1b; }
SCOPE .erratum code { font-size: .9em; color: #7f1d1d; }
SCOPE .erratum.follows { background: #fefce8; border-left-color: #a16207; }
SCOPE .erratum.follows strong { color: #854d0e; }
SCOPE .erratum.differs { background: #eff6ff; border-left-color: #1d4ed8; }
SCOPE .erratum.differs strong { color: #1e3a8a; }
SCOPE details { margin: .2rem 0; border: 1px dashed var(--line); border-radius: 6px;
  padding: .05rem .7rem; }
SCOPE details > summary { cursor: pointer; color: var(--accent);
  font: .9rem/1.5 system-ui, sans-serif; }
SCOPE .table { max-width: 100%; margin: .8rem 0; overflow-x: auto; }
SCOPE .table table { border-collapse: collapse; font-size: .9em; }
SCOPE .table.boxed { border: 2px solid var(--accent); border-radius: 6px; padding: .3rem .6rem;
  background: var(--card); }
SCOPE .table.boxed table { width: 100%; }
SCOPE .table.boxed td, SCOPE .table.boxed th { text-align: left; }
SCOPE .table caption { text-align: left; font: 600 .85rem/1.6 system-ui, sans-serif;
  color: var(--muted); }
SCOPE .table th, SCOPE .table td { padding: .05rem .6rem; line-height: 1.35;
  border-bottom: 1px solid var(--line); text-align: right; }
@media (max-width: 40rem) { SCOPE .table th, SCOPE .table td { padding: .1rem .15rem; }
  SCOPE .table table { font-size: .7em; } }
SCOPE .maps { margin: .5rem 0; }
SCOPE .maps-caption, SCOPE .maps .legend { font: .85rem/1.45 system-ui, sans-serif;
  color: var(--muted); margin: .2rem 0; }
SCOPE .maprow { display: flex; flex-wrap: wrap; gap: .4rem 1rem; align-items: flex-start; }
SCOPE .fmap { max-width: 100%; overflow-x: auto; }
SCOPE .fmap table { border-collapse: collapse; font: .8rem/1.3 system-ui, sans-serif;
  font-variant-numeric: tabular-nums; }
SCOPE .fmap caption { font-size: .75rem; color: var(--muted); text-align: left;
  white-space: nowrap; }
SCOPE .fmap td { border: 1px solid #cbd5e1; padding: .1rem .3rem; text-align: right;
  min-width: 2.4em; }
SCOPE .fmap td.read, SCOPE .fmap td.both { background: #dbeafe; }
SCOPE .fmap td.next, SCOPE .fmap td.both { box-shadow: inset 0 0 0 2px #c2410c; }
SCOPE .fmap td.pad { color: #64748b; background: #f1f5f9; border-style: dashed; }
SCOPE .fmap td.arg { background: #fef3c7; }
@media (max-width: 40rem) { SCOPE .fmap table { font-size: .64rem; }
  SCOPE .fmap td { padding: .05rem .1rem; min-width: 0; } }
SCOPE figure { margin: .6rem 0; text-align: center; overflow-x: auto; }
SCOPE figure svg { max-width: 100%; height: auto; }
SCOPE figcaption { color: var(--muted); font-size: .9rem; }
SCOPE mrow.wrap { display: flex; flex-wrap: wrap; align-items: center; row-gap: .3em; }
SCOPE mrow.wrap > mo { padding: 0 .2em; }
SCOPE mrow.wrap { max-width: 100%; }
/* What must stay together (a sign and its term, "(" and its number, "=" and what
   follows) is one flex item that never wraps inside; a vector or matrix in it may still
   shrink, and scroll. */
SCOPE mrow.nb { display: inline-flex; flex-wrap: nowrap; align-items: center;
  max-width: 100%; min-width: 0; }
SCOPE mrow.nb > mo:not([fence]) { padding: 0 .2em; }
SCOPE mrow.lhs { display: inline-flex; max-width: 100%; min-width: 0; vertical-align: middle; }
SCOPE mrow.nb > mo[fence] { padding: 0 .05em; }
SCOPE mrow.vec { display: inline-flex; flex-wrap: nowrap; align-items: center;
  max-width: 100%; overflow-x: auto; overflow-y: hidden; }
SCOPE mrow.vec > mrow.cell { padding: 0 .3em; }
SCOPE mo.prime { font-size: 1.4em; }
SCOPE mtable.stack, SCOPE mtable.stack > mtr, SCOPE mtable.stack > mtr > mtd { display: block;
  max-width: 100%; }
SCOPE mtable.stack > mtr > mtd, SCOPE mtable.stack > mtr > mtd:first-child { text-align: left; }
SCOPE mtable.stack > mtr > mtd:empty { display: none; }
@media (max-width: 40rem) {
  SCOPE .step, SCOPE .eq { padding: .3rem .5rem; }
  SCOPE math[display="block"] { font-size: 1em; }
  SCOPE mtable.derivation, SCOPE mtable.derivation > mtr,
  SCOPE mtable.derivation > mtr > mtd { display: block; max-width: 100%; }
  SCOPE mtable.derivation > mtr > mtd { text-align: left; }
  SCOPE mrow.matrix mtd { padding: .05rem .25rem; }
}
"""


def _para(p: Para) -> str:
    out = []
    for part in p.parts:
        if isinstance(part, str):
            out.append(escape(part))
        else:
            out.append(f"<math>{mml(part)}</math>")
    return f"<p>{''.join(out)}</p>"


def _cell(part: Cell, tag: str) -> str:
    if isinstance(part, str):
        inner = escape(part)
    elif isinstance(part, Link):
        inner = f'<a href="#{_anchor(part.section)}">{escape(part.text)}</a>'
    else:
        inner = f"<math>{mml(part)}</math>"
    return f"<{tag}>{inner}</{tag}>"


def _table(t: Table) -> str:
    head = "".join(_cell(h, "th") for h in t.header)
    body = "".join("<tr>" + "".join(_cell(c, "td") for c in r) + "</tr>" for r in t.rows)
    cls = "table boxed" if t.boxed else "table"
    return (
        f'<div class="{cls}"><table><caption>{escape(t.caption)}</caption>'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def block_html(block: Block) -> str:
    """One block as HTML."""
    if isinstance(block, Para):
        return _para(block)
    if isinstance(block, Equation):
        return f'<div class="eq">{mml_equation(block.sides)}</div>'
    if isinstance(block, Calculation):
        return f'<div class="step">{mml_derivation(block.lhs, block.lines())}</div>'
    if isinstance(block, Elided):
        return f'<p class="elided">{escape(block.text)}</p>'
    if isinstance(block, Erratum):
        # One line on screen and on paper; the numbers and check's id folded under it.
        return (
            f'<details class="erratum {escape(block.verdict)}"><summary>'
            f"<strong>{escape(block.lead())}</strong>: {escape(block.title)}</summary><p>"
            + escape(block.words())
            + (f" (glassnet check: <code>{escape(block.mistake)}</code>)" if block.mistake else "")
            + "</p></details>"
        )
    if isinstance(block, Picture):
        return f"<figure>{block.svg}<figcaption>{escape(block.caption)}</figcaption></figure>"
    if isinstance(block, Table):
        return _table(block)
    if isinstance(block, Collapsed):
        inner = "\n".join(block_html(b) for b in block.blocks)
        return f"<details><summary>{escape(block.summary)}</summary>\n{inner}\n</details>"
    if isinstance(block, Marks):
        return _marks(block)
    if isinstance(block, Grids):
        return _grids(block)
    raise TypeError(f"unknown block {block!r}")


#: How a marked cell of a feature map is written (the legend says it in words).
_CELL_MARK = {
    "read": ("<b>", "</b>"),
    "next": ("<u>", "</u>"),
    "both": ("<b><u>", "</u></b>"),
    "pad": ("<i>", "</i>"),
    "arg": ("<b>", " \u25b2</b>"),
}


def _grids(block: Grids) -> str:
    """Feature maps side by side, each a table of its numbers; a cell inside the map
    carries its quantity and index (``data-q``, ``data-i``) for the studio's links."""
    out = []
    for g in block.grids:
        rows = []
        for r, line in enumerate(g.cells):
            tds = []
            for c, text in enumerate(line):
                mark = g.marks.get((r, c), "")
                open_, close = _CELL_MARK.get(mark, ("", ""))
                # (a padding cell is outside the map whatever its mark: a window may
                # read it, and it is no number of the quantity)
                inside = g.pad <= r < len(g.cells) - g.pad and g.pad <= c < len(line) - g.pad
                data = ""
                if g.quantity and inside:
                    at = ",".join(str(e) for e in (*g.at, r - g.pad, c - g.pad))
                    data = f' data-q="{escape(g.quantity)}" data-i="{at}"'
                cls = f' class="{mark}"' if mark else ""
                tds.append(f"<td{cls}{data}>{open_}{escape(text)}{close}</td>")
            rows.append("<tr>" + "".join(tds) + "</tr>")
        out.append(
            f'<div class="fmap"><table><caption>{escape(g.label)}</caption>'
            f"<tbody>{''.join(rows)}</tbody></table></div>"
        )
    legend = f'<p class="legend">{escape(block.legend)}</p>' if block.legend else ""
    return (
        f'<div class="maps"><p class="maps-caption">{escape(block.caption)}</p>'
        f'<div class="maprow">{"".join(out)}</div>{legend}</div>'
    )


def _marks(block: Marks) -> str:
    """A table with each row's verdict as its class (coloured by :data:`MARKS_CSS`)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in block.header)
    rows = [
        f"<tr class='{escape(verdict)}'>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>"
        for row, verdict in zip(block.rows, block.verdicts, strict=True)
    ]
    return (
        '<div class="marks"><table>\n' + f"<tr>{head}</tr>\n" + "\n".join(rows) + "\n</table></div>"
    )


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


#: The label each pass's headings carry (in words, not only in colour).
PASS_LABEL = {"forward": "forward →", "backward": "← backward", "update": "update"}


def _section(sec: Section, after: Section | None = None) -> str:
    """A section; a pass's heading section ("part") also carries the class of the
    pass it opens (``after``'s kind: part-forward, part-backward, ...), for print."""
    tag = f"h{sec.level}"
    label = PASS_LABEL.get(sec.kind)
    badge = f'<span class="pass">{escape(label)}</span> ' if label else ""
    head = f'<{tag} id="{_anchor(sec.title)}">{badge}{escape(sec.title)}</{tag}>'
    body = "\n".join([head, *(block_html(b) for b in sec.blocks)])
    kind = escape(sec.kind)
    if sec.kind == "part" and after is not None:
        kind += f" part-{escape(after.kind)}"
    return f'<section class="sec {kind}">\n{body}\n</section>'


def _sections(sections: list[Section]) -> str:
    return "\n".join(
        _section(s, sections[k + 1] if k + 1 < len(sections) else None)
        for k, s in enumerate(sections)
    )


def check_print_mode(mode: object) -> str:
    if mode not in PRINT_MODES:
        raise GlassnetError(
            f"expected a print mode among {', '.join(PRINT_MODES)}", got=repr(mode), field="print"
        )
    return str(mode)


def render_html(doc: Document, print_mode: str = "open") -> str:
    """The whole document as a standalone HTML page (a string).

    ``print_mode``: what paper gets — "open", what is open on screen (folded parts
    stay folded, each saying so; the passes start a page), or "full", every folded
    part open and every section on a page of its own."""
    printing = PRINT_OPEN if check_print_mode(print_mode) == "open" else PRINT_FULL
    note = (
        "Printed as it was open on screen: each folded part says so, and the HTML page "
        "has everything in it."
        if print_mode == "open"
        else "Printed with every folded part open."
    )
    intro, *rest = doc.sections
    toc = "".join(f'<li><a href="#{_anchor(s.title)}">{escape(s.title)}</a></li>' for s in rest)
    body_intro = "\n".join(block_html(b) for b in intro.blocks)
    precision = (
        f"hand mode: every value rounded to {doc.round_to} decimals"
        if doc.round_to is not None
        else f"{doc.digits} significant digits"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="glassnet explain">
<title>{escape(doc.title)}</title>
<style>{CSS}{MATH_CSS.replace("SCOPE ", "")}{printing}{page_css(doc.title)}</style>
</head>
<body>
<header class="top"><div><h1>{escape(doc.title)}</h1>
<p>Written by glassnet from its engine's trace · {escape(precision)}</p>
<p class="print-note">{escape(note)}</p></div></header>
<main>
{body_intro}
<nav><ol>{toc}</ol></nav>
{_sections(rest)}
</main>
</body>
</html>
"""


def render_html_fragment(doc: Document) -> str:
    """The document as an HTML fragment (for a notebook's ``_repr_html_``)."""
    css = ".glassnet-explain { --card: #f8fafc; --accent: #2563eb; --muted: #64748b; }" + (
        MATH_CSS.replace("SCOPE ", ".glassnet-explain ")
    )
    body = _sections(doc.sections)
    return f'<div class="glassnet-explain"><style>{css}</style>{body}</div>'


#: How :class:`~glassnet.explain.document.Marks` rows look: the verdict in words is in a
#: column of its own; the colour repeats it (the wrong number also in bold).
MARKS_CSS = """
.marks { overflow-x: auto; margin: .8rem 0; }
.marks table { border-collapse: collapse; font: .85rem/1.4 system-ui, sans-serif; }
.marks th, .marks td { padding: .1rem .5rem; text-align: right;
  border-bottom: 1px solid var(--line); }
.marks td:first-child, .marks td:nth-child(n+5), .marks th:first-child,
.marks th:nth-child(n+5) { text-align: left; }
.marks .ok { color: #166534; } .marks .follows { color: #a16207; }
.marks .wrong { color: #b91c1c; } .marks .wrong td:nth-child(2) { font-weight: bold; }
"""


def render_sections_html(
    title: str, sections: list[Section], subtitle: str, *, extra_css: str = ""
) -> str:
    """Sections that are not a derivation (``glassnet check``'s report) as a standalone
    page with the derivation's look: ``title`` in the page's header, ``subtitle`` under
    it, then each section (the first section's own heading is the title, not repeated).
    ``extra_css``: the page's own rules after the shared ones (a feedback page's A4)."""
    first, *rest = sections
    intro = "\n".join(block_html(b) for b in first.blocks)
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="glassnet">
<title>{escape(title)}</title>
<style>{CSS}{MATH_CSS.replace("SCOPE ", "")}{MARKS_CSS}{extra_css}</style>
</head>
<body>
<header class="top"><div><h1>{escape(title)}</h1>
<p>{escape(subtitle)}</p></div></header>
<main>
{intro}
{chr(10).join(_section(s) for s in rest)}
</main>
</body>
</html>
"""
