"""Marking a circuit worksheet: the node values and gradients a person wrote
(``q = 3``, ``dq = -4``, ``dx = -4``), each ok, follows (an error carried forward) or
wrong with the mistake that reproduces it — all on the circuit's own graph of
quantities, through the one evaluator (:meth:`glassnet.graphs.Circuit.evaluate`): the
person's numbers go in as ``given``, a mistake as alternative ``rules``.

A worksheet is an expression file with an ``[answers]`` table: a node's name for its
value, ``d`` + the name for the output's gradient with respect to it.

The mistakes are the gates' own (:meth:`glassnet.graphs.Gate.alternatives`: a multiply
gate's local gradient not swapped, a max gate routing to both inputs, σ′ at the wrong
value, …) and one of the graph's: a fork's gradient overwritten by one path instead of
the sum of all.  A mistake names a number only when, run on the person's own earlier
numbers, it changes the result and reproduces the number to its written digits.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.check.worksheet import INTEGER, Written, half_unit, sheet_half

if TYPE_CHECKING:
    from glassnet.check.rubric import Grade
from glassnet.errors import GlassnetError
from glassnet.explain.document import Marks, Para, Section
from glassnet.graphs import Circuit, CircuitTrace
from glassnet.graphs.circuit import GRAD, LOCAL, PATH, VALUE, chain_rule, local_rule
from glassnet.graphs.parse import ExpressionFile, as_value, expression_from_data, read_toml
from glassnet.nodes import Array, Key, Rule

#: A circuit worksheet's table of written numbers.
ANSWERS = "answers"
#: Who wrote a roster sheet, for which assignment, and how its circuit was drawn.
SHEET_KEYS = frozenset({ANSWERS, "student", "assignment", "exercise"})
#: Relative slack for float noise when a number sits exactly half a unit away.
TIE = 1e-9


@dataclass
class CircuitSheet:
    """A circuit worksheet read: the expression file and the numbers written."""

    expression: ExpressionFile
    #: key -> (name as written, the number or array, half a unit: a number or an array)
    answers: dict[Key, tuple[str, Any, Any]]
    path: str
    #: Who wrote it and for which assignment (a roster sheet's ``student``/``assignment``).
    student: str = ""
    assignment: str = ""


@dataclass
class CircuitEntry:
    """One written number marked."""

    name: str
    written: Any  # a number, or nested lists for a vector or matrix
    right: Any
    verdict: str  # "ok", "follows" or "wrong"
    tolerance: Any
    from_own: Any = None  # the right rule on the person's earlier numbers
    mistake: str | None = None
    title: str | None = None

    @property
    def diagnosis(self) -> str | None:
        """The named mistake (what a network's entry calls its diagnosis)."""
        return self.mistake

    @property
    def match(self) -> str | None:
        """A circuit's mistake is named only when it reproduces the number to its
        written digits: "exact" (a network's entry may also be "possible")."""
        return "exact" if self.mistake else None


@dataclass
class CircuitReport:
    """A marked circuit worksheet: what a class view (student line, class report,
    gradebook) reads, as it reads a network's :class:`~glassnet.check.marking.Report`."""

    sheet: CircuitSheet
    entries: list[CircuitEntry]

    @property
    def notes(self) -> list[Any]:
        """Parts of the sheet not marked as written: none (a bad number is an error)."""
        return []

    def names(self) -> list[str]:
        """Every number a sheet can hold, in the order the circuit computes them."""
        c = self.sheet.expression.circuit
        out = []
        for name, family in c.keys():
            if family == VALUE and c.has_gradient(name) and not c.nodes[name].is_input:
                out.append(name)
            elif family == GRAD:
                out.append(f"d{name}")
        return out

    def summary(self) -> dict[str, Any]:
        counts = {v: sum(e.verdict == v for e in self.entries) for v in ("ok", "follows", "wrong")}
        wrong = [e for e in self.entries if e.verdict == "wrong"]
        return {
            "worksheet": self.sheet.path,
            "values": len(self.entries),
            **counts,
            "diagnosed": sum(e.mistake is not None for e in wrong),
            "possible": 0,  # a circuit's mistakes are named exactly or not at all
            "unexplained": sum(e.mistake is None for e in wrong),
        }

    def grade(self) -> Grade:
        """The sheet's score: every written number worth the same share of 100 points,
        earned when it is ok or follows from an earlier error (a network's rubric
        weighs stages; a circuit has none)."""
        from glassnet.check.rubric import Finding, Grade

        n = len(self.entries)
        worth = 100.0 / n if n else 0.0
        quantities = {e.name: (worth if e.verdict != "wrong" else 0.0, worth) for e in self.entries}
        findings = [
            Finding(e.mistake, e.name, "exact", 1, e.title or "")
            for e in self.entries
            if e.verdict == "wrong" and e.mistake
        ]
        unexplained = {
            e.name: 1 for e in self.entries if e.verdict == "wrong" and e.mistake is None
        }
        return Grade(
            points=sum(got for got, _ in quantities.values()),
            total=100.0,
            stages=[],
            penalties=[],
            quantities=quantities,
            missing=[],
            findings=findings,
            unexplained=unexplained,
            rubric="equal points per number",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "entries": [asdict(e) for e in self.entries],
            "summary": self.summary(),
            "grade": self.grade().to_dict(),
        }


def _key_of(circuit: Circuit, name: str, path: str) -> Key:
    """``q`` -> q's value; ``dq`` -> ∂f/∂q (a name both ways is refused as ambiguous)."""
    as_value = name in circuit.nodes and circuit.has_gradient(name)
    as_grad = name[:1] == "d" and name[1:] in circuit.nodes and circuit.has_gradient(name[1:])
    if as_value and as_grad:
        raise GlassnetError(
            f"expected a name that is either a node or d + a node, not both ({name})",
            got="an ambiguous name",
            file=path,
            field=f"{ANSWERS}.{name}",
        )
    if as_value:
        return (name, VALUE)
    if as_grad:
        return (name[1:], GRAD)
    known = ", ".join(n for n in circuit.order() if circuit.has_gradient(n))
    raise GlassnetError(
        f"expected a node ({known}) or d + a node for its gradient",
        got=repr(name),
        file=path,
        field=f"{ANSWERS}.{name}",
    )


def load_circuit_sheet(path: str) -> CircuitSheet:
    """Read a circuit worksheet (an expression file with ``[answers]``)."""
    data = read_toml(path, parse_float=Written)
    expression = expression_from_data(data, path, extra=SHEET_KEYS)
    student, assignment = _roster_check(data, expression, path)
    raw = data.get(ANSWERS, {})
    if not isinstance(raw, dict) or not raw:
        raise GlassnetError(
            "expected an [answers] table of numbers (q = 3, dq = -4, …)",
            got="none",
            file=path,
            field=ANSWERS,
        )
    return CircuitSheet(
        expression, written_answers(expression.circuit, raw, path), path, student, assignment
    )


def written_answers(
    circuit: Circuit, raw: Mapping[str, Any], path: str = ""
) -> dict[Key, tuple[str, Any, Any]]:
    """A sheet's written numbers by quantity: (the name written, the number, half a unit
    of its last written decimal — for a number written as an integer, the sheet's usual
    one).  ``raw``: name -> an int, a :class:`~glassnet.check.worksheet.Written` float
    that keeps its text, or (a vector or matrix) nested lists of them: then the number
    and its half units are arrays."""
    usual = sheet_half(dict(raw))

    def half_of(v: Any) -> float:
        half = half_unit(v)
        return usual if half == INTEGER else half

    answers: dict[Key, tuple[str, Any, Any]] = {}
    for name, v in raw.items():
        field = f"{ANSWERS}.{name}"
        if isinstance(v, list):
            value = as_value(v, field=field, file=path or None)  # rectangular, finite
            halves = np.array([half_of(e) for e in _flat(v)]).reshape(np.shape(value))
            answers[_key_of(circuit, name, path)] = (name, value, halves)
            continue
        if isinstance(v, bool) or not isinstance(v, int | float) or not np.isfinite(float(v)):
            raise GlassnetError(
                "expected a number", got=repr(v)[:40], file=path or None, field=field
            )
        answers[_key_of(circuit, name, path)] = (name, float(v), half_of(v))
    return answers


def _flat(v: Any) -> list[Any]:
    return [e for x in v for e in _flat(x)] if isinstance(v, list) else [v]


def _plain(a: Any) -> Any:
    """A number as a float, an array as nested lists (for JSON and the report)."""
    return np.asarray(a, dtype=np.float64).tolist()


def _text(v: Any, spec: str = "g") -> str:
    from glassnet.graphs.circuit import format_value

    return format_value(v, lambda x: format(x, spec))


def _roster_check(data: dict[str, Any], ex: ExpressionFile, path: str) -> tuple[str, str]:
    """A roster sheet's student and assignment; its circuit drawn again from them (as
    ``glassnet exercise --graph --roster`` drew it) must be the one on the sheet, so an
    edited expression or value is refused, not marked against the wrong circuit."""
    student, assignment, options = (data.get(k) for k in ("student", "assignment", "exercise"))
    if student is None and assignment is None and options is None:
        return "", ""
    if not isinstance(student, str) or not isinstance(assignment, str):
        raise GlassnetError(
            "expected student and assignment as text on a roster sheet",
            got=f"student = {student!r}, assignment = {assignment!r}",
            file=path,
            field="student",
        )
    if options is None:  # a sheet naming its writer only: nothing to draw again
        return student, assignment
    gates, mix, decimals = _exercise_options(options, path)
    from glassnet.check.exercise import variant_seed
    from glassnet.graphs.generate import gate_mix, random_circuit

    text, values = random_circuit(
        gates,
        gate_mix(mix),
        np.random.default_rng(variant_seed(student, assignment)),
        decimals=decimals,
    )
    drawn = {n: float(f"{v:g}") for n, v in values.items()}
    same_values = set(drawn) == set(ex.values) and all(
        np.array_equal(drawn[n], ex.values[n]) for n in drawn
    )
    if text.strip() != ex.circuit.source or not same_values:
        raise GlassnetError(
            f"expected the circuit glassnet exercise drew for {student!r} ({assignment!r})",
            got="an expression or values edited since",
            file=path,
            field="expression",
        )
    return student, assignment


def _exercise_options(options: Any, path: str) -> tuple[int, list[str] | None, int]:
    """A roster sheet's ``[exercise]``: gates (a number), mix (names or absent), decimals."""
    ok = isinstance(options, dict) and set(options) <= {"gates", "mix", "decimals"}
    gates, mix, decimals = (
        (options.get(k) for k in ("gates", "mix", "decimals")) if ok else (None, None, None)
    )
    if (
        not ok
        or not isinstance(gates, int)
        or not isinstance(decimals, int)
        or not (mix is None or (isinstance(mix, list) and all(isinstance(m, str) for m in mix)))
    ):
        raise GlassnetError(
            "expected [exercise] gates = N, decimals = 1 or 2 and optionally mix = [names]",
            got=repr(options)[:60],
            file=path,
            field="exercise",
        )
    return gates, mix, decimals


def circuit_mistakes(circuit: Circuit) -> list[tuple[str, str, dict[Key, Rule]]]:
    """Every mistake that can happen in this circuit: (id, title, the rules it swaps in)
    — each gate kind's own alternatives, applied to every gate of that kind, and a
    fork's gradient taken from one path (the first or the last the backward pass meets)
    instead of their sum."""
    found: dict[str, tuple[str, dict[Key, Rule]]] = {}
    for name in circuit.gates():
        node = circuit.nodes[name]
        assert node.gate is not None
        for mid, (title, fn) in node.gate.alternatives().items():
            rules = found.setdefault(mid, (title, {}))[1]
            for i, src in enumerate(node.inputs):
                if circuit.has_gradient(src):
                    rules[(f"{name}/{i}", LOCAL)] = local_rule(fn, i)
        for mid, (title, chain) in node.gate.chain_alternatives().items():
            rules = found.setdefault(mid, (title, {}))[1]
            for i, src in enumerate(node.inputs):
                if circuit.has_gradient(src):
                    rules[(f"{name}/{i}", PATH)] = chain_rule(chain, i)
    out = [(mid, title, rules) for mid, (title, rules) in found.items() if rules]
    forks = circuit.forks()
    if forks:
        for which, pick in (("last", 0), ("first", -1)):
            # The paths are listed in forward order: the backward pass meets the one
            # through the earliest gate last — what an overwriting "=" leaves behind.
            rules = {(n, GRAD): _one_path(pick) for n in forks}
            out.append(
                (
                    f"fork_overwritten_{which}",
                    "the gradient at a fork overwritten by the "
                    f"{which} path the backward pass meets instead of the sum of all paths",
                    rules,
                )
            )
    return out


def _one_path(k: int) -> Rule:
    """A fork's gradient taken from its k-th path alone."""
    return lambda v: v[k]


def mark_circuit(sheet: CircuitSheet) -> list[CircuitEntry]:
    """Every written number marked, in the order the circuit computes them."""
    ex = sheet.expression
    circuit = ex.circuit
    trace: CircuitTrace = circuit.trace(ex.values, round_to=ex.round_to)
    written: dict[Key, Array] = {
        k: np.asarray(v, dtype=np.float64) for k, (_, v, _) in sheet.answers.items()
    }
    for key, w in written.items():  # a vector or matrix written in the node's shape
        shape = np.shape(trace.quantities[key])
        if np.shape(w) != shape:
            raise GlassnetError(
                f"expected the shape of {sheet.answers[key][0]}, {shape}",
                got=f"shape {np.shape(w)}",
                file=sheet.path or None,
                field=f"{ANSWERS}.{sheet.answers[key][0]}",
            )
    mistakes = circuit_mistakes(circuit)
    verdicts: dict[Key, str] = {}
    entries: list[CircuitEntry] = []
    for key in circuit.keys():
        if key not in sheet.answers:
            continue
        name, _, half = sheet.answers[key]
        w = written[key]
        # Element by element for a vector or matrix: every element within its tolerance.
        tol = np.asarray(half) * (1 + TIE) + 1e-12 * np.maximum(1.0, np.abs(w))

        right = trace.quantities[key]
        others = {k: v for k, v in written.items() if k != key}
        own = _value(circuit, ex.values, others, {}, key, ex.round_to)
        entry = CircuitEntry(name, _plain(w), _plain(right), "wrong", _plain(half), _plain(own))
        if _near(w, right, tol):
            entry.verdict = "ok"
        elif _near(w, own, tol):
            used = circuit.ancestors(key) & set(others)
            # The person's own correctly rounded numbers carried: still ok.
            entry.verdict = "follows" if any(verdicts[k] != "ok" for k in used) else "ok"
        else:
            for mid, title, rules in mistakes:
                try:
                    alt = _value(circuit, ex.values, others, rules, key, ex.round_to)
                except ValueError:  # a mistake the shapes do not allow (matrix products)
                    continue
                if np.shape(alt) == np.shape(w) and not _near(alt, own, tol) and _near(w, alt, tol):
                    entry.mistake, entry.title = mid, title
                    break
        verdicts[key] = entry.verdict
        entries.append(entry)
    return entries


def mark_circuit_report(path: str) -> CircuitReport:
    """Read and mark the circuit worksheet at ``path``."""
    sheet = load_circuit_sheet(path)
    return CircuitReport(sheet, mark_circuit(sheet))


def _near(a: Any, b: Any, tol: Array) -> bool:
    """Within tolerance, every element (a number is one element)."""
    return bool(np.all(np.abs(np.asarray(a) - b) <= tol))


def _value(
    circuit: Circuit,
    values: Mapping[str, Any],
    given: Mapping[Key, Array],
    rules: Mapping[Key, Rule],
    key: Key,
    round_to: int | None,
) -> Array:
    """``key`` computed from the person's numbers (in hand mode, rounded as the sheet's
    right values are)."""
    each = None if round_to is None else (lambda v: np.round(v, round_to))
    return np.asarray(circuit.evaluate(values, given=given, rules=rules, each=each, upto=key)[key])


def entries_json(entries: list[CircuitEntry]) -> str:
    """The marks as JSON (docs/graphs.md)."""
    return json.dumps({"entries": [asdict(e) for e in entries]}, indent=2)


def entries_lines(entries: list[CircuitEntry]) -> list[str]:
    """The marks as lines of text, one a number."""
    out = []
    for e in entries:
        line = f"{e.name} = {_text(e.written)}: {e.verdict}"
        if e.verdict != "ok":
            line += f" (right: {_text(e.right, '.6g')}"
            if e.from_own is not None and e.verdict == "follows":
                line += f"; from your earlier numbers: {_text(e.from_own, '.6g')}"
            line += ")"
        if e.mistake:
            line += f" — {e.title} [{e.mistake}]"
        out.append(line)
    ok = sum(e.verdict == "ok" for e in entries)
    out.append(f"{ok} of {len(entries)} ok")
    return out


@dataclass
class CircuitExercise:
    """A random circuit to work by hand: the blank worksheet, the answer key as a page
    (the circuit explained) and as worksheet lines (which mark all ok)."""

    worksheet_text: str
    answer_markdown: str
    key_lines: list[str]


def _fmt(v: float, digits: int) -> str:
    text = f"{v:.{digits}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.") else text  # no "-0.0"


def circuit_exercise(
    n_gates: int,
    gates: list[str] | None = None,
    *,
    seed: int = 0,
    decimals: int = 1,
    roster: tuple[str, str] | None = None,
) -> CircuitExercise:
    """A random circuit of ``n_gates`` gates from the mix ``gates`` (all by default).
    ``roster``: (student, assignment) — the circuit is seeded from them, and the sheet
    names them and how it was drawn, so check can draw it again and refuse an edited one."""
    from glassnet.explain.circuit import circuit_sections, render_circuit
    from glassnet.graphs import parse_expression
    from glassnet.graphs.generate import gate_mix, random_circuit

    if decimals not in (1, 2):
        raise GlassnetError("expected 1 or 2 decimals", got=str(decimals), field="--decimals")
    if roster is not None:
        from glassnet.check.exercise import variant_seed

        seed = variant_seed(*roster)
    text, values = random_circuit(
        n_gates, gate_mix(gates), np.random.default_rng(seed), decimals=decimals
    )
    circuit = parse_expression(text)
    trace = circuit.trace(values)
    worked = [n for n in circuit.order() if circuit.nodes[n].gate is not None]
    graded = [n for n in circuit.order() if circuit.has_gradient(n)]
    head = [
        "# A circuit to work by hand (glassnet exercise --graph): fill in every value and",
        "# the gradient of f with respect to every node (dq1 = df/dq1), then run",
        "#   glassnet check worksheet.toml",
        f'expression = """\n{text}\n"""',
        "values = { " + ", ".join(f"{n} = {values[n]:g}" for n in circuit.inputs()) + " }",
    ]
    if roster is not None:
        from glassnet.toml_writer import toml_value

        mix = "" if gates is None else f", mix = {toml_value(list(gates))}"
        head += [
            f"student = {toml_value(roster[0])}",
            f"assignment = {toml_value(roster[1])}",
            f"exercise = {{ gates = {n_gates}, decimals = {decimals}{mix} }}",
        ]
    head += ["", f"[{ANSWERS}]"]
    blank = [f"# {n} = _" for n in worked] + [f"# d{n} = _" for n in reversed(graded)]
    key = [f"{n} = {_fmt(trace.value(n), 4)}" for n in worked]
    key += [f"d{n} = {_fmt(trace.grad(n), 4)}" for n in reversed(graded)]
    page = render_circuit(
        circuit_sections(trace, digits=4, title="Answer key"), "md", title="Answer key"
    )
    return CircuitExercise("\n".join(head + blank) + "\n", page, key)


def report_sections(entries: list[CircuitEntry], title: str) -> list[Section]:
    """The marks in explain's document model (as a network's report): a summary, then
    every number with its verdict (:class:`~glassnet.explain.document.Marks`)."""
    ok = sum(e.verdict == "ok" for e in entries)
    rows: list[tuple[str, ...]] = [
        (
            e.name,
            _text(e.written),
            _text(e.right, ".6g"),
            "" if e.from_own is None else _text(e.from_own, ".6g"),
            e.verdict,
            e.mistake or "",
            e.title or "",
        )
        for e in entries
    ]
    head = ("number", "given", "right", "from yours", "verdict", "mistake", "what it is")
    return [
        Section(title, 1, "check", blocks=[Para((f"{ok} of {len(entries)} ok.",))]),
        Section(
            "Every number",
            2,
            "check",
            blocks=[Marks(head, rows, [e.verdict for e in entries], stress=1)],
        ),
    ]


def report_document(entries: list[CircuitEntry], title: str, format: str) -> str:
    """The marks as Markdown or a standalone HTML page, through explain's renderers."""
    from glassnet.explain.render_html import render_sections_html
    from glassnet.explain.render_markdown import render_sections_markdown

    sections = report_sections(entries, title)
    if format == "md":
        return render_sections_markdown(sections)
    return render_sections_html(title, sections, "Marked by glassnet check against its trace")
