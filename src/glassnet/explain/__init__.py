"""``glassnet explain``: the worked derivation of one training step, like the seed
tutorial but right, for any small network — as Markdown, HTML (MathML, inline SVG, no
network needed) or a Jupyter notebook that recomputes its own numbers.

>>> import glassnet as gn
>>> from glassnet.explain import explain
>>> md = explain(gn.load_spec("seed").trace(), format="md", digits=4)
>>> "h1_{\\\\mathrm{in}1}" in md
True

Everything is read from a :class:`~glassnet.trace.Trace`: :mod:`.model` builds the
document, the ``render_*`` modules print it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from glassnet.errors import GlassnetError

if TYPE_CHECKING:
    from glassnet.trace import Trace

FORMATS: tuple[str, ...] = ("md", "html", "ipynb")


def explain(
    trace: Trace,
    *,
    format: str = "md",
    digits: int = 4,
    title: str | None = None,
    max_units: int = 4,
    max_samples: int = 2,
) -> str:
    """The derivation of ``trace`` as a string in ``format`` ("md", "html", "ipynb").

    ``digits``: significant digits shown (ignored in hand mode: a trace made with
    ``round_to=K`` shows exactly its K-decimal values).  Layers wider than
    ``max_units`` are written out for their first units only; with a batch, the
    per-unit lines cover the first ``max_samples`` samples.
    """
    from glassnet.explain.model import build

    if format not in FORMATS:
        raise GlassnetError(
            f"expected a format among {', '.join(FORMATS)}", got=repr(format), field="format"
        )
    doc = build(trace, digits=digits, title=title, max_units=max_units, max_samples=max_samples)
    if format == "md":
        from glassnet.explain.render_markdown import render_markdown

        return render_markdown(doc)
    if format == "html":
        from glassnet.explain.render_html import render_html

        return render_html(doc)
    from glassnet.explain.render_notebook import render_notebook

    return render_notebook(doc)


def explain_document(trace: Trace, **options: Any):  # -> model.Document
    """The document model itself (for custom renderers)."""
    from glassnet.explain.model import build

    return build(trace, **options)


__all__ = ["FORMATS", "explain", "explain_document"]
