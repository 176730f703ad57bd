"""Rubrics: a marked worksheet's score as a grade, and its findings at their strength.

A rubric (``rubric.toml``, docs/check.md) gives points to the stages of the step and,
optionally, to single quantities; says how much a number that follows from an earlier
error earns; takes points off once for each distinct mistake named *exactly*; and says
which quantities a complete answer holds (a missing one earns nothing)::

    total = 100                 # optional: the score is scaled to this many points
    follows = "full"            # "full", "none", or a fraction such as 0.5
    required = ["forward", "error", "backward", "update", "after"]  # or quantity names
    [points]
    forward = 30
    error = 10
    backward = 35
    update = 25
    after = 10
    dW2 = 5                     # a quantity's own points (out of its stage's share)
    [penalty]
    each = 5                    # points off per distinct mistake named exactly
    truncation = 1              # ... or per mistake id

The arithmetic (:func:`grade`), which a lecturer can do by hand:

1. The sheet's quantities are those of the spec's step (and of its later steps and the
   forward pass after, when the spec has them), each in one stage: ``forward`` (z, a, and
   every other forward node), ``error`` (loss_terms, loss), ``backward`` (every gradient),
   ``update`` (W_new, b_new, an optimiser's state), ``after`` (values ``@after``).  A
   stage the spec does not have (``after`` without ``after = true``) is left out.
2. A quantity with its own points gets them.  A stage's points are shared evenly by its
   other quantities that are required or written; a quantity's points evenly by the
   numbers written for it (all copies).  A number earns its share if ok, ``follows`` times
   its share if it follows, nothing if wrong; a required quantity not written earns 0.
3. Raw points over the points available (the present stages' and the quantities' own) are
   scaled to ``total`` when it is given.  Then each distinct mistake id named with
   strength ``exact`` anywhere on the sheet costs its penalty once (a pair ``a+b`` is the
   two mistakes); ``possible`` diagnoses and unexplained wrong numbers cost nothing beyond
   their numbers' own points.  The score is never below 0.

The score is never "the share of what was written": a sheet with only z1 written earns
only z1's share.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from glassnet.check import mistakes as cat
from glassnet.check.quantities import Context, key_name, layer_kinds, order
from glassnet.errors import GlassnetError


class Marked(Protocol):
    """What a rubric reads of a marked sheet (a :class:`glassnet.check.marking.Report`).

    A protocol rather than an import: marking asks the rubric for its score, so the
    rubric must not import marking back (tests/test_layers.py forbids import cycles)."""

    @property
    def entries(self) -> Sequence[Any]: ...

    @property
    def ctx(self) -> Context: ...

    @property
    def sheet(self) -> Any: ...


#: The stages of a step, in the order a derivation meets them.
STAGES: tuple[str, ...] = ("forward", "error", "backward", "update", "after")
#: The step graph's phase of a node -> the rubric's stage.
_STAGE_OF_PHASE = {
    "forward": "forward",
    "loss": "error",
    "backward": "backward",
    "update": "update",
}
#: The kinds marked after the update (worksheet.AFTER_KINDS less the given ones).
_AFTER_KINDS = frozenset({"z", "a", "loss_terms", "loss"})
_FOLLOWS_WORDS = {"full": 1.0, "none": 0.0}
_TOP_KEYS = {"total", "follows", "required", "points", "penalty"}


@dataclass(frozen=True)
class Rubric:
    """How a marked sheet is scored (see the module's docstring for the arithmetic)."""

    #: Points of each stage (a stage not named has none).
    stages: dict[str, float] = field(default_factory=dict)
    #: Points of single quantities, by the name written in the rubric ("dW2", "loss@after").
    quantities: dict[str, float] = field(default_factory=dict)
    #: The credit of a number that follows from an earlier error (1 full, 0 none).
    follows: float = 1.0
    #: Points off per distinct exactly-named mistake, and per id where it differs.
    penalty: float = 0.0
    penalties: dict[str, float] = field(default_factory=dict)
    #: Stages or quantities a complete answer holds (missing ones earn 0).
    required: tuple[str, ...] = STAGES
    #: Scale the score to this many points (None: the raw points).
    total: float | None = None
    #: Where it came from ("default" or the file), for messages.
    source: str = "default"

    def penalty_of(self, mistake_id: str) -> float:
        return self.penalties.get(mistake_id, self.penalty)


#: The built-in rubric: the stages weighted by the work they take, every stage required,
#: an error carried forward not charged twice (follows earns full credit: its cause is
#: charged where it happens, by its own numbers and its penalty), 5 points per distinct
#: mistake named exactly and 1 for the slips of writing (truncation, rounding early,
#: digits swapped), scaled to 100.
DEFAULT = Rubric(
    stages={"forward": 30, "error": 10, "backward": 35, "update": 25, "after": 10},
    follows=1.0,
    penalty=5.0,
    penalties={"truncation": 1.0, "rounding": 1.0, "digit_swap": 1.0},
    total=100.0,
)


def _number(v: Any, where: str, label: str, *, upper: float | None = None) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise GlassnetError(
            "expected a number ≥ 0" + (f" and ≤ {upper:g}" if upper is not None else ""),
            got=repr(v),
            file=label,
            field=where,
        )
    if upper is not None and v > upper:
        raise GlassnetError(
            f"expected a number ≥ 0 and ≤ {upper:g}", got=repr(v), file=label, field=where
        )
    return float(v)


def _known_id(name: str) -> bool:
    """A catalogue id, a check's, or what may be a plugin mistake's name (lower case and
    underscores: a plugin's own ids are known once a step is built, and checked then)."""
    return name in cat.CATALOGUE or name in cat.CHECKS or name.replace("_", "").isalpha()


def _check_ids(rubric: Rubric, report: Marked) -> None:
    """Every id of ``[penalty]`` is one this step can name: the catalogue's, a check's,
    or one of the step's plugins' own (a typo is an error, never a silent 0)."""
    plugin: set[str] | None = None
    for name in rubric.penalties:
        if name in cat.CATALOGUE or name in cat.CHECKS:
            continue
        if plugin is None:
            plugin = set(report.ctx.plugin_alternatives())
        if name not in plugin:
            raise GlassnetError(
                "expected a mistake id this step can name (the catalogue in docs/check.md, "
                "or one of its layers' or optimiser's own)",
                got=repr(name),
                file=rubric.source,
                field=f"penalty.{name}",
            )


def parse_rubric(text: str, label: str = "<rubric>") -> Rubric:
    """Read a rubric.  Every problem is one :class:`GlassnetError` naming the field."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise GlassnetError("expected valid TOML", got=str(err), file=label) from None
    extra = sorted(set(data) - _TOP_KEYS)
    if extra:
        raise GlassnetError(
            "expected only total, follows, required, [points] and [penalty]",
            got=repr(extra[0]),
            file=label,
            field=extra[0],
        )
    points = data.get("points", {})
    if not isinstance(points, dict) or not points:
        raise GlassnetError(
            "expected a [points] table (forward = 30, ... or dW2 = 5)",
            got=repr(points),
            file=label,
            field="points",
        )
    stages: dict[str, float] = {}
    quantities: dict[str, float] = {}
    for name, v in points.items():
        pts = _number(v, f"points.{name}", label)
        if name in STAGES:
            stages[name] = pts
        elif name.split("@")[0].replace("_", "").isalnum() and name[0].isalpha():
            quantities[name] = pts  # checked against each sheet's step when graded
        else:
            raise GlassnetError(
                f"expected a stage ({', '.join(STAGES)}) or a quantity name",
                got=repr(name),
                file=label,
                field=f"points.{name}",
            )
    raw_follows = data.get("follows", "full")
    if isinstance(raw_follows, str):
        if raw_follows not in _FOLLOWS_WORDS:
            raise GlassnetError(
                'expected "full", "none" or a fraction between 0 and 1',
                got=repr(raw_follows),
                file=label,
                field="follows",
            )
        follows = _FOLLOWS_WORDS[raw_follows]
    else:
        follows = _number(raw_follows, "follows", label, upper=1.0)
    penalty_table = data.get("penalty", {})
    if not isinstance(penalty_table, dict):
        raise GlassnetError(
            "expected a [penalty] table (each = 5, or a mistake id = points)",
            got=repr(penalty_table),
            file=label,
            field="penalty",
        )
    each = 0.0
    penalties: dict[str, float] = {}
    for name, v in penalty_table.items():
        pts = _number(v, f"penalty.{name}", label)
        if name == "each":
            each = pts
        elif _known_id(name):
            penalties[name] = pts
        else:
            raise GlassnetError(
                "expected each or a mistake id (docs/check.md, the catalogue)",
                got=repr(name),
                file=label,
                field=f"penalty.{name}",
            )
    required_raw = data.get("required", list(STAGES))
    if not isinstance(required_raw, list) or not all(isinstance(r, str) for r in required_raw):
        raise GlassnetError(
            "expected a list of stages or quantity names",
            got=repr(required_raw),
            file=label,
            field="required",
        )
    total = data.get("total")
    if total is not None:
        total = _number(total, "total", label)
        if total == 0:
            raise GlassnetError("expected a number > 0", got="0", file=label, field="total")
    return Rubric(
        stages=stages,
        quantities=quantities,
        follows=follows,
        penalty=each,
        penalties=penalties,
        required=tuple(required_raw),
        total=total,
        source=label,
    )


def load_rubric(path: str | Path) -> Rubric:
    """Read ``rubric.toml`` (a GlassnetError naming the file when it cannot be read)."""
    from glassnet.spec import read_text

    label = str(path)
    return parse_rubric(read_text(Path(path), label, "a rubric file (TOML)"), label)


# -- what a marked sheet holds -------------------------------------------------------------


@dataclass(frozen=True)
class Finding:
    """A diagnosis on a sheet: one mistake (``id``, a pair ``a+b``) at one quantity, at
    one strength, over ``numbers`` of its written numbers."""

    id: str
    quantity: str
    strength: str
    numbers: int
    title: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "quantity": self.quantity,
            "strength": self.strength,
            "numbers": self.numbers,
            "title": self.title,
        }


def findings(report: Marked) -> list[Finding]:
    """Every diagnosis of the sheet's wrong numbers, grouped by (id, quantity, strength),
    in the order met; ``exact`` before ``possible`` where both name one quantity."""
    counts: dict[tuple[str, str, str], int] = {}
    for e in report.entries:
        if e.verdict == "wrong" and e.diagnosis:
            key = (e.diagnosis, e.name, e.match or "possible")
            counts[key] = counts.get(key, 0) + 1
    return [
        Finding(i, q, s, n, cat.title_of(i))
        for (i, q, s), n in sorted(counts.items(), key=lambda kv: kv[0][2] != "exact")
    ]


def unexplained(report: Marked) -> dict[str, int]:
    """Per quantity (as reported), how many wrong numbers no rule explains."""
    out: dict[str, int] = {}
    for e in report.entries:
        if e.verdict == "wrong" and not e.diagnosis:
            out[e.name] = out.get(e.name, 0) + 1
    return out


# -- the score ---------------------------------------------------------------------------


@dataclass
class StageScore:
    """A stage's points earned and possible (scaled like the total)."""

    stage: str
    points: float
    possible: float


@dataclass
class Grade:
    """A marked sheet's score by a rubric.  ``points`` out of ``total``; ``stages``
    (before penalties); ``penalties`` (id, points off) once per distinct exact mistake;
    ``quantities``: per quantity (points earned, possible), ``missing`` the required
    ones not written; ``findings`` every diagnosis at its strength."""

    points: float
    total: float
    stages: list[StageScore]
    penalties: list[tuple[str, float]]
    quantities: dict[str, tuple[float, float]]
    missing: list[str]
    findings: list[Finding]
    unexplained: dict[str, int]
    rubric: str

    @property
    def percent(self) -> float:
        return 100.0 * self.points / self.total if self.total else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "points": round(self.points, 4),
            "total": self.total,
            "rubric": self.rubric,
            "stages": {
                s.stage: {"points": round(s.points, 4), "possible": round(s.possible, 4)}
                for s in self.stages
            },
            "penalties": [{"id": i, "points": p} for i, p in self.penalties],
            "quantities": {
                q: {"points": round(got, 4), "possible": round(possible, 4)}
                for q, (got, possible) in self.quantities.items()
            },
            "missing": self.missing,
            "findings": [f.to_dict() for f in self.findings],
            "unexplained": self.unexplained,
        }


def _slots(report: Marked) -> list[tuple[str, str]]:
    """(quantity with its phase, stage) of everything the sheet's step computes."""
    graph = report.ctx.graph
    spec = report.sheet.spec
    computed = [k for k in order(graph) if k[0] != "output" and not graph.is_leaf(k)]
    out: list[tuple[str, str]] = []
    phases = ["", *(f"step{i}" for i in range(2, spec.steps + 1))]
    for phase in phases:
        for k in computed:
            name = key_name(k) + (f"@{phase}" if phase else "")
            out.append((name, _STAGE_OF_PHASE.get(graph.decl(k).phase, "forward")))
    if spec.after:
        for k in computed:
            if k[0] in _AFTER_KINDS and graph.decl(k).phase in ("forward", "loss"):
                out.append((key_name(k) + "@after", "after"))
    return out


def _resolve(rubric: Rubric, name: str, where: str, report: Marked, slots: set[str]) -> str:
    """A quantity named in the rubric (ours or the seed's, with ``@after``/``@stepN``) as
    the sheet's slot name; an error naming the rubric's field when the step has none."""
    from glassnet.check.worksheet import resolve_name, split_tags

    graph = report.ctx.graph
    try:
        key, _tag = resolve_name(name, graph.n_layers, rubric.source, layer_kinds(graph))
    except GlassnetError:
        key = None
    phase = split_tags(name)[2]
    slot = key_name(key) + (f"@{phase}" if phase else "") if key is not None else ""
    if slot not in slots:
        raise GlassnetError(
            "expected a quantity this step computes (z1, delta2, W1_new, loss@after, ...)",
            got=repr(name),
            file=rubric.source,
            field=where,
        )
    return slot


def grade(report: Marked, rubric: Rubric | None = None) -> Grade:
    """``report`` scored by ``rubric`` (the built-in :data:`DEFAULT` when None)."""
    rubric = rubric or DEFAULT
    _check_ids(rubric, report)
    slots = _slots(report)
    stage_of = dict(slots)
    present = [s for s in STAGES if any(st == s for _, st in slots)]
    own = {
        _resolve(rubric, n, f"points.{n}", report, set(stage_of)): p
        for n, p in rubric.quantities.items()
    }
    required: set[str] = set()
    for r in rubric.required:
        if r in STAGES:
            required |= {q for q, st in slots if st == r}
        else:
            required.add(_resolve(rubric, r, "required", report, set(stage_of)))
    entries: dict[str, list[Any]] = {}
    for e in report.entries:
        entries.setdefault(e.quantity or e.name, []).append(e)
    worth: dict[str, float] = dict(own)
    for stage in present:
        members = [
            q for q, st in slots if st == stage and q not in own and (q in required or q in entries)
        ]
        for q in members:
            worth[q] = rubric.stages.get(stage, 0.0) / len(members)
    available = sum(rubric.stages.get(s, 0.0) for s in present) + sum(own.values())
    scale = rubric.total / available if rubric.total is not None and available else 1.0
    quantities: dict[str, tuple[float, float]] = {}
    for q, pts in worth.items():
        es = entries.get(q, [])
        credit = sum(
            1.0 if e.verdict == "ok" else rubric.follows if e.verdict == "follows" else 0.0
            for e in es
        )
        quantities[q] = (pts * scale * credit / len(es) if es else 0.0, pts * scale)
    stages = []
    for stage in present:
        got = [v for q, v in quantities.items() if stage_of[q] == stage]
        own_possible = sum(p for q, p in own.items() if stage_of[q] == stage)
        stages.append(
            StageScore(
                stage,
                sum(v[0] for v in got),
                (rubric.stages.get(stage, 0.0) + own_possible) * scale,
            )
        )
    ids: list[str] = []
    for e in report.entries:
        if e.verdict == "wrong" and e.diagnosis and e.match == "exact":
            ids += [i for i in e.diagnosis.split("+") if i not in ids]
    penalties = [(i, rubric.penalty_of(i)) for i in ids if rubric.penalty_of(i)]
    raw = sum(v[0] for v in quantities.values())
    total = rubric.total if rubric.total is not None else available
    points = max(0.0, raw - sum(p for _, p in penalties))
    missing = [q for q, _ in slots if q in required and q not in entries]
    return Grade(
        points=points,
        total=total,
        stages=stages,
        penalties=penalties,
        quantities=quantities,
        missing=missing,
        findings=findings(report),
        unexplained=unexplained(report),
        rubric=rubric.source,
    )
