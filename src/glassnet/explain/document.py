"""The derivation as a document: block types and :class:`Document`.

A :class:`Document` is a list of :class:`Section` s, each a list of blocks:
:class:`Para` (words, with inline maths), :class:`Equation` (``A = B = ...``),
:class:`Calculation` (the three lines of a careful hand calculation: the rule in
symbols, the rule with the numbers put in, the result), :class:`Elided` (a marker
saying what was left out), :class:`Picture` (the network as SVG) and :class:`Marks`
(marked numbers, for ``glassnet check``'s report, which is a list of sections too) and
:class:`Grids` (feature maps drawn as grids of their numbers).  The renderers
(Markdown, HTML, notebook) only print this model; :mod:`.sections` builds it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from glassnet.mathtree import Node

if TYPE_CHECKING:
    from glassnet.trace import Trace


@dataclass
class Para:
    """A paragraph: strings and inline maths nodes."""

    parts: tuple[str | Node, ...]


@dataclass
class Equation:
    """``sides[0] = sides[1] = ...`` on one line."""

    sides: tuple[Node, ...]


@dataclass
class Calculation:
    """lhs = rule (symbols) = subst (numbers) [= each of ``steps``] = result (numbers).

    ``steps``: intermediate lines between the numbers and the result (the update's
    W + ΔW, with the step to more digits)."""

    lhs: Node
    rule: Node
    subst: Node
    result: Node
    steps: tuple[Node, ...] = ()

    def lines(self) -> list[Node]:
        """The lines after ``lhs =``, in order."""
        return [self.rule, self.subst, *self.steps, self.result]


@dataclass
class Elided:
    """A marker for what was left out, in words."""

    text: str


@dataclass
class Erratum:
    """Beside a value: what a worked solution (the seed tutorial) wrote for it instead,
    and what ``glassnet check`` made of that — the mistake its catalogue names
    (``mistake``: the ids, or None), or that it follows from earlier mistakes.
    Made by :func:`glassnet.check.errata`, never by the explain code itself.

    Said in the page's language, in one voice: ``who`` ("the tutorial", "the
    worksheet"); ``name`` the value's name on the page, 1-based ("O_out1");
    ``printed`` the number as it wrote it; ``verdict`` "wrong" or "follows" (or, for a
    tutorial's published numbers, "differs": beyond its printed rounding); ``title``
    the mistake in a few words (the catalogue's title, in the page's names); ``detail``
    the numbers behind the verdict (folded on the page; the only place the catalogue's
    id is given); ``explanation`` check's own sentence (in its engine's names, for
    the record: the page does not print it)."""

    who: str
    printed: str
    verdict: str
    mistake: str | None
    title: str
    explanation: str
    name: str = ""
    detail: str = ""

    def lead(self) -> str:
        """ "✗ The tutorial wrote O_out1 = 0.2698 here" — the words before the title."""
        mark = {"follows": "→", "differs": "≠"}.get(self.verdict, "✗")
        what = f"{self.name} = {self.printed}" if self.name else self.printed
        return f"{mark} {self.who[:1].upper()}{self.who[1:]} wrote {what} here"

    def words(self) -> str:
        """The numbers behind the verdict, in the page's words (without the id)."""
        return self.detail or f"glassnet check: {self.explanation}"


#: Where an erratum belongs: (kind, layer, index) of the step graph's quantity, the
#: index without the batch axis (a batch of one).
ErratumKey = tuple[str, int, tuple[int, ...]]


@dataclass
class Picture:
    """The network drawn as an SVG document (a string)."""

    svg: str
    caption: str


@dataclass(frozen=True)
class Link:
    """Words that point to a section of the page (by its title), in a table cell."""

    text: str
    section: str


Cell = str | Node | Link


@dataclass
class Table:
    """A summary table: a header row and rows of cells (words, inline maths, links).
    ``boxed``: set apart as a box (the algorithm's summary)."""

    caption: str
    header: tuple[Cell, ...]
    rows: Sequence[tuple[Cell, ...]]
    boxed: bool = False


@dataclass
class Collapsed:
    """Blocks written out in full but folded away (``<details>`` in HTML) under a
    one-line summary: the same rule again for the other units or samples."""

    summary: str
    blocks: list[Block]


@dataclass
class Marks:
    """Numbers with a verdict each, one row per number (``glassnet check``'s report):
    a header row and rows of words, and per row its verdict ("ok", "follows" or
    "wrong").  The renderers show the verdict — a class on the HTML row, and in Markdown
    the ``stress`` column (the number as written) in bold on a wrong row — so a page says
    which numbers are wrong without colour alone."""

    header: tuple[str, ...]
    rows: list[tuple[str, ...]]
    verdicts: list[str]
    stress: int = 1


@dataclass
class Grid:
    """One feature map (or kernel) drawn as a grid of its numbers as printed.

    ``cells``: rows of printed numbers.  ``marks``: (row, column) -> what the cell is
    on this drawing — "read" (the window the written-out number reads), "next" (the
    window of the position after it: the stride), "both", "pad" (a padding 0 outside
    the input) or "arg" (a cell a max-pooling window routes its δ to).  ``quantity``
    and ``at``: the quantity's name (z1, dL_da2) and the index of the map (sample,
    channel), so a cell's own index is ``at`` + (row − ``pad``, column − ``pad``) —
    the studio makes each cell a link to that number."""

    label: str
    cells: tuple[tuple[str, ...], ...]
    marks: dict[tuple[int, int], str] = field(default_factory=dict)
    quantity: str = ""
    at: tuple[int, ...] = ()
    pad: int = 0


@dataclass
class Grids:
    """Feature maps side by side under one caption; ``legend`` says in words what the
    marks mean (the page never says it by colour alone)."""

    caption: str
    grids: list[Grid]
    legend: str = ""


Block = (
    Para | Equation | Calculation | Elided | Erratum | Picture | Table | Collapsed | Marks | Grids
)


@dataclass
class Section:
    """A titled list of blocks.  ``kind`` and ``layer`` tell the notebook which code
    cell belongs after it ("network", "forward", "error", "dloss", "backward", "summary")."""

    title: str
    level: int
    kind: str
    layer: int | None = None
    blocks: list[Block] = field(default_factory=list)
    #: The circuit node a section of a circuit's page is about (its notebook cell).
    node: str | None = None


@dataclass
class Document:
    """The whole derivation."""

    title: str
    trace: Trace
    digits: int
    round_to: int | None
    fmt: Callable[[float], str]
    sections: list[Section]
    spec_name: str = ""
    #: "rows" (x·W + b) or "columns" (W·a + b): how the page writes a layer.
    notation: str = "rows"

    def blocks(self) -> list[Block]:
        """Every block, folded ones included, in document order."""
        out: list[Block] = []

        def walk(blocks: list[Block]) -> None:
            for b in blocks:
                out.append(b)
                if isinstance(b, Collapsed):
                    walk(b.blocks)

        for sec in self.sections:
            walk(sec.blocks)
        return out

    def calculations(self) -> list[Calculation]:
        """Every :class:`Calculation` block (folded ones included), in document order."""
        return [b for b in self.blocks() if isinstance(b, Calculation)]
