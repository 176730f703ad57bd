"""The derivation as Markdown with LaTeX maths (``$...$`` and ``$$...$$``), as GitHub
and Jupyter render it.  Prints a :class:`~glassnet.explain.document.Document`; computes
nothing."""

from __future__ import annotations

import base64
import re

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
from glassnet.mathtree import tex, tex_derivation, tex_equation


def _para(p: Para) -> str:
    return "".join(part if isinstance(part, str) else f"${tex(part)}$" for part in p.parts)


#: ``picture=`` values: the SVG inline as a data: URI (Jupyter shows it; GitHub strips it).
INLINE = "inline"


def block_markdown(block: Block, picture: str | None = INLINE) -> str:
    """One block as Markdown.  ``picture``: how the network's picture is given — INLINE,
    a file name to link (the SVG written beside the Markdown), or None (a note)."""
    if isinstance(block, Para):
        return _para(block)
    if isinstance(block, Equation):
        return f"$$\n{tex_equation(block.sides)}\n$$"
    if isinstance(block, Calculation):
        return f"$$\n{tex_derivation(block.lhs, block.lines())}\n$$"
    if isinstance(block, Elided):
        return f"*{block.text}*"
    if isinstance(block, Erratum):
        named = f" (glassnet check: `{block.mistake}`)" if block.mistake else ""
        return f"> **{block.lead()}**: {block.title}.  {block.words()}{named}"
    if isinstance(block, Table):

        def cell(c: Cell) -> str:
            if isinstance(c, Link):  # GitHub's heading anchors
                slug = re.sub(r"[^\w\- ]", "", c.section.lower()).replace(" ", "-")
                return f"[{c.text}](#{slug})"
            return c if isinstance(c, str) else f"${tex(c)}$"

        lines = [f"*{block.caption}*", "", "| " + " | ".join(cell(h) for h in block.header) + " |"]
        lines.append("|" + "---|" * len(block.header))
        lines += ["| " + " | ".join(cell(c) for c in r) + " |" for r in block.rows]
        return "\n".join(lines)
    if isinstance(block, Collapsed):
        inner = "\n\n".join(block_markdown(b, picture) for b in block.blocks)
        return f"<details><summary>{block.summary}</summary>\n\n{inner}\n\n</details>"
    if isinstance(block, Picture):
        if picture is None:
            return (
                "*(A picture of the network goes here when the page is written to a file: "
                "`glassnet explain SPEC -o page.md` writes it as page.svg beside page.md.)*"
            )
        if picture == INLINE:
            data = base64.b64encode(block.svg.encode("utf-8")).decode("ascii")
            src = f"data:image/svg+xml;base64,{data}"
        else:
            src = picture
        img = f'<img alt="{block.caption}" src="{src}" style="max-width: 100%">'
        return f"{img}\n\n*{block.caption}*"
    if isinstance(block, Marks):
        return _marks(block)
    if isinstance(block, Grids):
        return _grids(block)
    raise TypeError(f"unknown block {block!r}")


#: How a marked cell of a feature map is written (the legend says it in words).
_CELL_MARK = {
    "read": ("**", "**"),
    "next": ("<ins>", "</ins>"),
    "both": ("**<ins>", "</ins>**"),
    "pad": ("*", "*"),
    "arg": ("**", " ▲**"),
}


def _grids(block: Grids) -> str:
    """Each feature map a pipe table (column numbers as its header)."""
    parts = [f"*{block.caption}*"]
    for g in block.grids:
        width = len(g.cells[0]) if g.cells else 0
        lines = [f"{g.label}:", "", "| " + " | ".join(str(c - g.pad) for c in range(width)) + " |"]
        lines.append("|" + "---:|" * width)
        for r, line in enumerate(g.cells):
            cells = []
            for c, text in enumerate(line):
                open_, close = _CELL_MARK.get(g.marks.get((r, c), ""), ("", ""))
                cells.append(f"{open_}{text}{close}")
            lines.append("| " + " | ".join(cells) + " |")
        parts.append("\n".join(lines))
    if block.legend:
        parts.append(f"*{block.legend}*")
    return "\n\n".join(parts)


def _marks(block: Marks) -> str:
    """A pipe table; the number as written in bold on a wrong row."""
    lines = ["| " + " | ".join(block.header) + " |", "|" + "---|" * len(block.header)]
    for row, verdict in zip(block.rows, block.verdicts, strict=True):
        cells = [c.replace("|", "\\|") for c in row]
        if verdict == "wrong":
            cells[block.stress] = f"**{cells[block.stress]}**"
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def render_sections_markdown(sections: list[Section]) -> str:
    """Sections that are not a derivation (``glassnet check``'s report) as Markdown."""
    return "\n".join(section_markdown(s, None) for s in sections)


def section_markdown(sec: Section, picture: str | None = INLINE) -> str:
    """A section: its heading, then its blocks separated by blank lines."""
    parts = [f"{'#' * sec.level} {sec.title}"]
    parts += [block_markdown(b, picture) for b in sec.blocks]
    return "\n\n".join(parts) + "\n"


def render_markdown(doc: Document, picture: str | None = None) -> str:
    """The whole document as one Markdown string (``picture``: see
    :func:`block_markdown`; by default a note, since a Markdown file cannot carry an image
    GitHub shows)."""
    return "\n".join(section_markdown(s, picture) for s in doc.sections)


def picture_svg(doc: Document) -> str | None:
    """The network's picture (an SVG document), to write beside the Markdown."""
    for sec in doc.sections:
        for b in sec.blocks:
            if isinstance(b, Picture):
                return b.svg
    return None
