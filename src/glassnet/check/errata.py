"""A marked worksheet as errata beside a derivation: for each value the worksheet wrote
wrongly, what it wrote and what ``check`` made of it.

``glassnet explain seed`` writes the seed tutorial's own mistakes where they happen:
the tutorial's printed numbers are the seed worksheet, marked by :func:`check`; the
verdicts and the mistakes' titles are the check's own (its catalogue's), never a second
list kept here — said in the page's language: the seed's names, 1-based, one voice.
"""

from __future__ import annotations

from glassnet.check.marking import Entry, Report
from glassnet.check.mistakes import CATALOGUE, CHECKS
from glassnet.check.worksheet import resolve_name, split_tags
from glassnet.explain.document import Erratum, ErratumKey
from glassnet.notation import page_name, page_quantity, page_words


def errata(report: Report, who: str = "the tutorial") -> dict[ErratumKey, Erratum]:
    """One :class:`Erratum` per value marked wrong or "follows", keyed by the step
    graph's (kind, layer) and the value's index.  Values written under a tag (a copy
    such as ``h2_out@dO_in1_dW``) or of a later step (``z1@step2``, ``loss@after``)
    are left out: the page has one place per value of the step it derives.

    The words are the page's (the seed's names, 1-based, ``who`` throughout); the
    verdict, the mistake and every number are check's."""
    n_layers = len(report.ctx.activations)
    placed: list[tuple[ErratumKey, Entry]] = []
    for e in report.entries:
        _, tag, phase = split_tags(e.written)
        if e.verdict == "ok" or tag or phase:  # a copy, or a later step / "after"
            continue
        (kind, layer), _ = resolve_name(e.name, n_layers, e.written)
        index = tuple(int(i) for i in e.index)
        if e.diagonal:  # the diagonal of a Jacobian, written as a vector: row i
            index = (index[0],)
        placed.append(((kind, layer, index), e))
    out: dict[ErratumKey, Erratum] = {}
    for (kind, layer, index), e in placed:
        # How many of the numbers written for this quantity the same mistake explains.
        written = [x for (k, lyr, _), x in placed if (k, lyr) == (kind, layer)]
        n_written = sum(
            1
            for x in report.entries
            if resolve_name(x.name, n_layers, x.written)[0] == (kind, layer)
            and not any(split_tags(x.written)[1:])
        )
        same = sum(1 for x in written if e.diagnosis and x.diagnosis == e.diagnosis)
        share = (
            f"  The same mistake gives {same} of the {n_written} numbers {who} wrote for "
            f"{page_quantity(kind, layer, n_layers)}."
            if e.diagnosis and same > 1
            else ""
        )
        out[(kind, layer, index)] = Erratum(
            who=who,
            printed=e.text or repr(e.given),
            verdict=e.verdict,
            mistake=e.diagnosis,
            title=page_words(title(e.verdict, e.diagnosis), n_layers, layer),
            explanation=e.explanation,
            name=page_name(kind, layer, index, n_layers),
            detail=_detail(e, who) + share,
        )
    return out


def _num(v: float) -> str:
    return f"{float(v):.6g}"


def _detail(e: Entry, who: str) -> str:
    """The numbers behind an entry's verdict, in the page's words: what the named
    mistake gives on ``who``'s own earlier numbers, the right value, and what the right
    rule gives on those earlier numbers."""
    own = f"{who}'s own earlier numbers"
    right = f"the right value is {_num(e.expected)}" if e.expected is not None else ""
    if e.verdict == "follows":
        parts = []
        if e.follows_from_given is not None:
            parts.append(f"on {own} the right rule gives {_num(e.follows_from_given)}")
        if right:
            parts.append(right)
        return _sentence("; ".join(parts) + ".")
    if e.diagnosis and e.alternative is not None:
        said = f"that mistake, made on {own}, gives {_num(e.alternative)}"
        gap = abs(e.alternative - e.given)
        if gap > e.tolerance and e.given != 0:
            said += (
                f", {100 * gap / abs(e.given):.2g}% from what {who} wrote (the rest looks "
                "like an arithmetic slip)"
            )
        return _sentence(said + (f"; {right}." if right else "."))
    parts = []
    if right:
        parts.append(right)
    if e.follows_from_given is not None:
        parts.append(f"on {own} the right rule gives {_num(e.follows_from_given)}")
    return _sentence("; ".join(parts) + ".") if parts else ""


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


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
