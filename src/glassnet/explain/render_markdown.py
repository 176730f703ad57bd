"""The derivation as Markdown with LaTeX maths (``$...$`` and ``$$...$$``), as GitHub
and Jupyter render it.  Prints a :class:`~glassnet.explain.model.Document`; computes
nothing."""

from __future__ import annotations

import base64

from glassnet.explain.model import (
    Block,
    Derivation,
    Document,
    Elided,
    Equation,
    Para,
    Picture,
    Section,
)
from glassnet.mathtree import Node, tex, tex_derivation, tex_equation


def _para(p: Para) -> str:
    return "".join(part if isinstance(part, str) else f"${tex(part)}$" for part in p.parts)


def block_markdown(block: Block) -> str:
    """One block as Markdown."""
    if isinstance(block, Para):
        return _para(block)
    if isinstance(block, Equation):
        return f"$$\n{tex_equation(block.sides)}\n$$"
    if isinstance(block, Derivation):
        lines: list[Node] = [block.rule, block.subst, block.result]
        return f"$$\n{tex_derivation(block.lhs, lines)}\n$$"
    if isinstance(block, Elided):
        return f"*{block.text}*"
    if isinstance(block, Picture):
        data = base64.b64encode(block.svg.encode("utf-8")).decode("ascii")
        img = f'<img alt="{block.caption}" src="data:image/svg+xml;base64,{data}">'
        return f"{img}\n\n*{block.caption}*"
    raise TypeError(f"unknown block {block!r}")


def section_markdown(sec: Section) -> str:
    """A section: its heading, then its blocks separated by blank lines."""
    parts = [f"{'#' * sec.level} {sec.title}"]
    parts += [block_markdown(b) for b in sec.blocks]
    return "\n\n".join(parts) + "\n"


def render_markdown(doc: Document) -> str:
    """The whole document as one Markdown string."""
    return "\n".join(section_markdown(s) for s in doc.sections)
