"""A marked worksheet as errata beside a derivation: for each value the worksheet wrote
wrongly, what it wrote and what ``check`` made of it.

``glassnet explain seed`` writes the seed tutorial's own mistakes where they happen:
the tutorial's printed numbers are the seed worksheet, marked by :func:`check`; the
words are the check's own (its catalogue's title for the named mistake), never a
second list kept here.
"""

from __future__ import annotations

from glassnet.check.marking import Report
from glassnet.check.mistakes import CATALOGUE, CHECKS
from glassnet.check.worksheet import resolve_name, split_tags
from glassnet.explain.document import Erratum, ErratumKey


def errata(report: Report, who: str = "the tutorial") -> dict[ErratumKey, Erratum]:
    """One :class:`Erratum` per value marked wrong or "follows", keyed by the step
    graph's (kind, layer) and the value's index.  Values written under a tag (a copy
    such as ``h2_out@dO_in1_dW``) or of a later step (``z1@step2``, ``loss@after``)
    are left out: the page has one place per value of the step it derives."""
    n_layers = len(report.ctx.activations)
    out: dict[ErratumKey, Erratum] = {}
    for e in report.entries:
        _, tag, phase = split_tags(e.written)
        if e.verdict == "ok" or tag or phase:  # a copy, or a later step / "after"
            continue
        (kind, layer), _ = resolve_name(e.name, n_layers, e.written)
        index = tuple(int(i) for i in e.index)
        if e.diagonal:  # the diagonal of a Jacobian, written as a vector: row i
            index = (index[0],)
        out[(kind, layer, index)] = Erratum(
            who=who,
            printed=e.text or repr(e.given),
            verdict=e.verdict,
            mistake=e.diagnosis,
            title=title(e.verdict, e.diagnosis),
            explanation=e.explanation,
        )
    return out


def title(verdict: str, diagnosis: str | None) -> str:
    """The mistake in a few words: the catalogue's title of each id of ``diagnosis``
    ("a+b" names two), or what the verdict says when no rule is named."""
    if verdict == "follows":
        return "right for its own earlier numbers: the mistake is carried forward"
    if not diagnosis:
        return "no mistake in check's catalogue reproduces it"
    titles = []
    for mistake_id in diagnosis.split("+"):
        titles.append(
            CATALOGUE[mistake_id].title if mistake_id in CATALOGUE else CHECKS[mistake_id]
        )
    return ", and ".join(titles)
