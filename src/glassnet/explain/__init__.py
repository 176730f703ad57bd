"""``glassnet explain``: the worked derivation of one training step, like the seed
tutorial but right, for any small network — as Markdown, HTML (MathML, inline SVG, no
network needed) or a Jupyter notebook that recomputes its own numbers.

>>> import glassnet as gn
>>> from glassnet.explain import derive, explain
>>> md = explain(gn.load_spec("seed").trace(), format="md", digits=4)
>>> "h1_{\\\\mathrm{in}1}" in md
True
>>> derive(gn.load_spec("seed").trace()).markdown() == md
True

Everything is read from a :class:`~glassnet.trace.Trace`: :mod:`.sections` builds the
:class:`~.document.Document` (walking the step graph's order, with the symbols of
:mod:`.symbols`), the ``render_*`` modules print it.  In a notebook, a
:class:`Derivation` displays itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glassnet.errors import GlassnetError

if TYPE_CHECKING:
    from glassnet.explain.document import Document, Erratum, ErratumKey
    from glassnet.trace import Trace

FORMATS: tuple[str, ...] = ("md", "html", "ipynb")


class Derivation:
    """The worked derivation of one step, ready to print in any format.

    Made by :func:`derive`; shows itself in Jupyter (``_repr_html_``,
    ``_repr_markdown_``).  ``document`` is the model the renderers print.
    """

    def __init__(self, document: Document) -> None:
        self.document = document

    def markdown(self, picture: str | None = None) -> str:
        """Markdown with LaTeX maths (GitHub, Jupyter).  ``picture``: the file name the
        network's picture is linked as (write :meth:`svg` there), "inline" for a data:
        URI (Jupyter), or None for a note in its place."""
        from glassnet.explain.render_markdown import render_markdown

        return render_markdown(self.document, picture)

    def svg(self) -> str | None:
        """The picture of the network (an SVG document), or None."""
        from glassnet.explain.render_markdown import picture_svg

        return picture_svg(self.document)

    def html(self, print_mode: str = "open") -> str:
        """One standalone HTML page (MathML, inline SVG, no script).  ``print_mode``:
        "open" prints what is open on screen, "full" every folded part open."""
        from glassnet.explain.render_html import render_html

        return render_html(self.document, print_mode)

    def html_fragment(self) -> str:
        """An HTML fragment with its own scoped styles (for a notebook cell)."""
        from glassnet.explain.render_html import render_html_fragment

        return render_html_fragment(self.document)

    def notebook(self) -> str:
        """A Jupyter notebook (nbformat 4 JSON) whose code recomputes every number."""
        from glassnet.explain.render_notebook import render_notebook

        return render_notebook(self.document)

    def render(self, format: str = "md", *, print_mode: str = "open") -> str:
        """The derivation in ``format`` ("md", "html", "ipynb"); ``print_mode`` is the
        HTML page's (see :meth:`html`)."""
        if format not in FORMATS:
            raise GlassnetError(
                f"expected a format among {', '.join(FORMATS)}", got=repr(format), field="format"
            )
        if format == "html":
            return self.html(print_mode)
        return {"md": self.markdown, "ipynb": self.notebook}[format]()

    # In a notebook a derivation displays itself.
    def _repr_markdown_(self) -> str:
        return self.markdown(picture="inline")

    def _repr_html_(self) -> str:
        return self.html_fragment()


def derive(
    trace: Trace,
    *,
    digits: int = 4,
    title: str | None = None,
    max_units: int = 4,
    max_samples: int = 2,
    errata: dict[ErratumKey, Erratum] | None = None,
    notation: str = "rows",
) -> Derivation:
    """The derivation of ``trace``.

    ``digits``: significant digits shown (ignored in hand mode: a trace made with
    ``round_to=K`` shows exactly its K-decimal values).  Layers wider than
    ``max_units`` are written out for their first units only; with a batch, the
    per-unit lines cover the first ``max_samples`` samples.  ``errata``: what a worked
    solution wrote instead, written beside each value it got wrong (made by
    :func:`glassnet.check.errata` from a marked worksheet).  ``notation``: "rows"
    (x·W + b with W[from][to], the seed's) or "columns" (W·a + b with W[to][from],
    Nielsen's and Goodfellow's); the numbers are the same.
    """
    from glassnet.explain.sections import build
    from glassnet.network import Network

    if trace.graph is not None:
        Network(list(trace.graph.layers)).require_explained("explain")
    return Derivation(
        build(
            trace,
            digits=digits,
            title=title,
            max_units=max_units,
            max_samples=max_samples,
            errata=errata,
            notation=notation,
        )
    )


def explain(
    trace: Trace,
    *,
    format: str = "md",
    digits: int = 4,
    title: str | None = None,
    max_units: int = 4,
    max_samples: int = 2,
    notation: str = "rows",
) -> str:
    """The derivation of ``trace`` as a string in ``format`` ("md", "html", "ipynb");
    the same as ``derive(trace, ...).render(format)``."""
    if format not in FORMATS:
        raise GlassnetError(
            f"expected a format among {', '.join(FORMATS)}", got=repr(format), field="format"
        )
    d = derive(
        trace,
        digits=digits,
        title=title,
        max_units=max_units,
        max_samples=max_samples,
        notation=notation,
    )
    return d.render(format)


def explain_document(trace: Trace, **options: Any) -> Document:
    """The document model itself (for custom renderers)."""
    from glassnet.explain.sections import build

    return build(trace, **options)


__all__ = ["FORMATS", "Derivation", "derive", "explain", "explain_document"]
