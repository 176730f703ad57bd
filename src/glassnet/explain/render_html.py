"""The derivation as one standalone HTML page: maths as MathML (browsers render it
natively: no script, no CDN, no network), the network as inline SVG, a small
stylesheet.  Prints a :class:`~glassnet.explain.model.Document`; computes nothing."""

from __future__ import annotations

import re
from html import escape

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
from glassnet.mathtree import mml, mml_derivation, mml_equation

CSS = """
:root { --ink: #1e293b; --muted: #64748b; --accent: #2563eb; --card: #f8fafc;
        --line: #e2e8f0; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
       font: 17px/1.6 "Iowan Old Style", "Palatino Linotype", Georgia, serif; }
main { max-width: 62rem; margin: 0 auto; padding: 1.5rem 2rem 4rem; }
header.top { background: linear-gradient(120deg, #1e3a8a, #2563eb); color: #fff; }
header.top div { max-width: 62rem; margin: 0 auto; padding: 1.6rem 2rem 1.2rem; }
header.top h1 { margin: 0 0 .3rem; font: 600 1.9rem/1.2 system-ui, sans-serif; }
header.top p { margin: 0; opacity: .9; font: 0.95rem/1.5 system-ui, sans-serif; }
nav { font: 0.9rem/1.6 system-ui, sans-serif; background: var(--card);
      border: 1px solid var(--line); border-radius: 8px; padding: .6rem 1rem; margin: 1rem 0; }
nav ol { margin: 0; padding-left: 1.2rem; columns: 2; }
nav a { color: var(--accent); text-decoration: none; }
h2, h3 { font-family: system-ui, sans-serif; line-height: 1.25; }
h2 { margin-top: 2.6rem; padding-bottom: .3rem; border-bottom: 2px solid var(--line); }
h3 { margin-top: 2rem; color: #1e3a8a; }
.legend { font: 0.9rem/1.5 system-ui, sans-serif; color: var(--muted); }
"""


#: The maths and picture rules; "SCOPE " is "" on the page and ".glassnet-explain "
#: inside a notebook, where the page's other rules must not restyle the notebook.
MATH_CSS = """
SCOPE .step { background: var(--card); border-left: 4px solid var(--accent); border-radius: 4px;
        margin: .7rem 0; padding: .35rem .9rem; overflow-x: auto; }
SCOPE .eq { margin: .7rem 0; padding: .2rem .9rem; overflow-x: auto; }
SCOPE math[display="block"] { font-size: 1.08em; margin: .2rem 0; }
SCOPE mtable.derivation > mtr > mtd { padding: .28rem 0; }
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
SCOPE .elided { color: var(--muted); font-style: italic; }
SCOPE figure { margin: 1.2rem 0; text-align: center; overflow-x: auto; }
SCOPE figcaption { color: var(--muted); font-size: .9rem; }
"""


def _para(p: Para) -> str:
    out = []
    for part in p.parts:
        if isinstance(part, str):
            out.append(escape(part))
        else:
            out.append(f"<math>{mml(part)}</math>")
    return f"<p>{''.join(out)}</p>"


def block_html(block: Block) -> str:
    """One block as HTML."""
    if isinstance(block, Para):
        return _para(block)
    if isinstance(block, Equation):
        return f'<div class="eq">{mml_equation(block.sides)}</div>'
    if isinstance(block, Derivation):
        lines = [block.rule, block.subst, block.result]
        return f'<div class="step">{mml_derivation(block.lhs, lines)}</div>'
    if isinstance(block, Elided):
        return f'<p class="elided">{escape(block.text)}</p>'
    if isinstance(block, Picture):
        return f"<figure>{block.svg}<figcaption>{escape(block.caption)}</figcaption></figure>"
    raise TypeError(f"unknown block {block!r}")


def _anchor(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _section(sec: Section) -> str:
    tag = f"h{sec.level}"
    head = f'<{tag} id="{_anchor(sec.title)}">{escape(sec.title)}</{tag}>'
    return "\n".join([head, *(block_html(b) for b in sec.blocks)])


def render_html(doc: Document) -> str:
    """The whole document as a standalone HTML page (a string)."""
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
<style>{CSS}{MATH_CSS.replace("SCOPE ", "")}</style>
</head>
<body>
<header class="top"><div><h1>{escape(doc.title)}</h1>
<p>Written by glassnet from its engine's trace · {escape(precision)}</p></div></header>
<main>
{body_intro}
<p class="legend">In each grey box: the rule in symbols, then the same rule with the
numbers put in, then the result (in bold).</p>
<nav><ol>{toc}</ol></nav>
{chr(10).join(_section(s) for s in rest)}
</main>
</body>
</html>
"""


def render_html_fragment(doc: Document) -> str:
    """The document as an HTML fragment (for a notebook's ``_repr_html_``)."""
    css = ".glassnet-explain { --card: #f8fafc; --accent: #2563eb; --muted: #64748b; }" + (
        MATH_CSS.replace("SCOPE ", ".glassnet-explain ")
    )
    body = "\n".join(_section(s) for s in doc.sections)
    return f'<div class="glassnet-explain"><style>{css}</style>{body}</div>'
