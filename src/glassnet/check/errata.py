"""A marked worksheet as errata beside a derivation: for each value the worksheet wrote
wrongly, what it wrote and what ``check`` made of it.

``glassnet explain seed`` writes the seed tutorial's own mistakes where they happen:
the tutorial's printed numbers are the seed worksheet, marked by :func:`check`; the
verdicts and the mistakes' titles are the check's own (its catalogue's), never a second
list kept here — said in the page's language: the seed's names, 1-based, one voice.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from glassnet.check.marking import Entry, Report, batch_free, check, engine_place
from glassnet.check.mistakes import title_of
from glassnet.check.worksheet import parse_worksheet, resolve_name, split_tags
from glassnet.errors import GlassnetError
from glassnet.explain.document import Erratum, ErratumKey
from glassnet.notation import page_name, page_quantity, page_words


def _relaid(report: Report) -> bool:
    """The sheet writes some matrices elsewhere than the engine holds them."""
    return report.sheet.layout != "from_to" or report.sheet.bias_row0


def errata(
    report: Report, who: str = "the tutorial", *, published: bool = False
) -> dict[ErratumKey, Erratum]:
    """One :class:`Erratum` per value marked wrong or "follows", keyed by the step
    graph's (kind, layer) and the value's index.  Values written under a tag (a copy
    such as ``h2_out@dO_in1_dW``) or of a later step (``z1@step2``, ``loss@after``)
    are left out: the page has one place per value of the step it derives.

    The words are the page's (the seed's names, 1-based, ``who`` throughout); the
    verdict, the mistake and every number are check's.  ``published``: the numbers a
    tutorial printed (see :func:`published_notes`): each note says where one differs
    from the engine's beyond its printed rounding (verdict "differs"), and values after
    the update are kept, keyed ``"<kind>@after"``."""
    n_layers = len(report.ctx.activations)
    placed: list[tuple[ErratumKey, Entry]] = []
    for e in report.entries:
        _, tag, phase = split_tags(e.written)
        after = published and phase == "after"
        if e.verdict == "ok" or tag or (phase and not after):  # a copy, a later step
            continue
        # An entry's index is its place as written; the page's is the engine's (a
        # W[to][from] matrix or a bias row 0 is written elsewhere than it is held).
        found = engine_place(report, e) if not after and _relaid(report) else None
        if found is not None:
            g, idx = found
            (kind, layer), index = g.key, batch_free(report, g, idx)
        else:
            (kind, layer), _ = resolve_name(e.name, n_layers, e.written)
            index = tuple(int(i) for i in e.index)
            if e.diagonal:  # the diagonal of a Jacobian, written as a vector: row i
                index = (index[0],)
        if after:
            kind += "@after"
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
        base_kind, _, when = kind.partition("@")
        name = page_name(base_kind, layer, index, n_layers)
        if when:
            name = f"{name}′" if base_kind == "loss" else f"{name} after the step"
        if published:
            out[(kind, layer, index)] = _published(e, who, name, n_layers, layer)
            continue
        out[(kind, layer, index)] = Erratum(
            who=who,
            printed=e.text or repr(e.given),
            verdict=e.verdict,
            mistake=e.diagnosis,
            title=page_words(title(e.verdict, e.diagnosis, e.match), n_layers, layer),
            explanation=e.explanation,
            name=name,
            detail=_detail(e, who) + share,
        )
    return out


def _published(e: Entry, who: str, name: str, n_layers: int, layer: int) -> Erratum:
    """A printed number that differs from the engine's beyond its printed rounding: the
    engine's value to as many decimals as were printed (and one more), and what check
    makes of the difference, folded."""
    printed = e.text or repr(e.given)
    decimals = len(printed.partition(".")[2]) if "." in printed and "e" not in printed else 6
    engine = f"{e.expected:.{decimals}f}" if e.expected is not None else "?"
    said = (
        "it follows from its own earlier printed numbers"
        if e.verdict == "follows"
        else page_words(title(e.verdict, e.diagnosis, e.match), n_layers, layer)
    )
    return Erratum(
        who=who,
        printed=printed,
        verdict="differs",
        mistake=e.diagnosis,
        title=f"the engine's value is {engine}, beyond the printed rounding",
        explanation=e.explanation,
        name=name,
        detail=f"glassnet check: {said}"
        + (
            f"; on {who}'s own earlier printed numbers the right rule gives "
            f"{e.follows_from_given:.{decimals}f}."
            if e.follows_from_given is not None
            else "."
        ),
    )


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


def title(verdict: str, diagnosis: str | None, match: str | None = "exact") -> str:
    """The mistake in a few words: the catalogue's title of each id of ``diagnosis``
    ("a+b" names two), or what the verdict says when no rule is named.  A ``possible``
    diagnosis says so ("possibly: ..."): a guess is never shown as certain."""
    if verdict == "follows":
        return "right for its own earlier numbers: the mistake is carried forward"
    if not diagnosis:
        return "no mistake in check's catalogue reproduces it"
    text = ", and ".join(title_of(mistake_id) for mistake_id in diagnosis.split("+"))
    return text if match == "exact" else "possibly: " + text


# -- a tutorial's published numbers ---------------------------------------------------------

#: The table of a spec that holds a tutorial's printed numbers, and its optional
#: ``source`` (whose numbers they are: "Mazur's post").
PUBLISHED = "published"


def published_notes(text: str, label: str, base: Path | None = None) -> dict[ErratumKey, Erratum]:
    """Where a tutorial's printed numbers (a spec's ``[published]`` table, named as in a
    worksheet's ``[values]``: ``a2``, ``loss``, ``loss@after``, ``W2_new`` …) differ from
    the engine's beyond their printed rounding: one note per such value, keyed like
    :func:`errata`, values after the update (``@after``) under ``"<kind>@after"``.

    The table is marked by :func:`check` as a worksheet (so "beyond the printed
    rounding" is check's own rule: half a unit of the last digit written); a value
    within its rounding gets no note.  {} when the spec has no such table."""
    data = tomllib.loads(text)
    table = data.get(PUBLISHED)
    if table is None:
        return {}
    if not isinstance(table, dict) or "values" in data:
        raise GlassnetError(
            "expected a [published] table of printed numbers (and no [values] beside it)",
            got=type(table).__name__ if not isinstance(table, dict) else "also [values]",
            file=label,
            field=PUBLISHED,
        )
    source = table.get("source", "the published example")
    if not isinstance(source, str):
        raise GlassnetError("expected a string", got=repr(source), file=label, field="source")
    # The same text with the table read as a worksheet's [values] (its numbers keep the
    # digits they were printed with) and its source line left out.
    lines, inside = [], False
    for line in text.split("\n"):
        head = re.match(r"\s*\[([^\]]+)\]\s*(#.*)?$", line)
        if head:
            inside = head.group(1).strip() == PUBLISHED
            lines.append("[values]" if inside else line)
        elif inside and re.match(r"\s*source\s*=", line):
            lines.append("")
        else:
            lines.append(line)
    if "after" not in data and any(str(k).endswith("@after") for k in table):
        lines.insert(0, "after = true")  # its values after the update are marked too
    report = check(parse_worksheet("\n".join(lines), label, base=base))
    return errata(report, who=source, published=True)
