"""The studio's graph mode (the page ``/graph``): an expression's circuit with every value
and gradient a number to click, and each number's derivation — all from
:mod:`glassnet.graphs` and :mod:`glassnet.explain.circuit`, as ``glassnet graph`` and
``glassnet explain expr.toml`` write them; the page computes nothing.

Both endpoints take ``{"expression", "values", "output"?, "round"?, "digits"?}``:
``values`` as the command line writes them (``"x=-2,y=5,z=-4"``, ``x=[1,2]`` for a
vector) or an object (name -> a number or nested lists).  Bad input is one line with
status 413 (too large) or 422, as every studio endpoint.
"""

from __future__ import annotations

import math
import re
from html import escape
from typing import Any

from glassnet.check.worksheet import Written
from glassnet.graphs import CircuitTrace, parse_expression, parse_values
from glassnet.graphs.parse import as_value
from glassnet.limits import MAX_GRAPH_TEXT
from glassnet.studio.api import StudioError, _digits, _kind, _object, _round, _unknown

FIELDS = {"expression", "values", "output", "round", "digits"}


def _traced(body: dict[str, Any]) -> tuple[CircuitTrace, int]:
    trace, digits, _ = _read(body)
    return trace, digits


def _read(body: dict[str, Any]) -> tuple[CircuitTrace, int, dict[str, Any]]:
    """The request's circuit traced, the digits to show, and the variables' values."""
    expression, raw, output = body.get("expression"), body.get("values"), body.get("output")
    if not isinstance(expression, str):
        raise StudioError(
            "expected the expression as text", got=_kind(expression), field="expression"
        )
    if len(expression) > MAX_GRAPH_TEXT:
        raise StudioError(
            f"expected an expression of at most {MAX_GRAPH_TEXT} characters",
            got=str(len(expression)),
            field="expression",
            status=413,
        )
    if output is not None and not isinstance(output, str):
        raise StudioError("expected a node's name", got=_kind(output), field="output")
    if isinstance(raw, str):
        values = parse_values(raw) if raw.strip() else {}
    elif isinstance(raw, dict):
        values = {str(k): as_value(v, field=f"values.{k}") for k, v in raw.items()}
    elif raw is None:
        values = {}
    else:
        raise StudioError(
            'expected values as text like "x=-2,y=5" or an object', got=_kind(raw), field="values"
        )
    round_to, digits = _round(body.get("round")), _digits(body.get("digits"))
    circuit = parse_expression(expression, output=output or None)
    return circuit.trace(values, round_to=round_to), digits, values


def circuit(body: Any) -> dict[str, Any]:
    """The circuit traced: ``{"trace": CircuitTrace.to_dict(), "svg", "shown": {name:
    {"value", "grad"?}}}`` — ``shown`` each number as the page writes it (``digits``
    significant digits, or hand mode's decimals)."""
    from glassnet.explain.circuit import circuit_svg
    from glassnet.explain.symbols import number_format
    from glassnet.graphs.circuit import format_value

    body = _object(body, "a request")
    _unknown(body, FIELDS | {"practice"})
    practice = body.get("practice", False)
    if not isinstance(practice, bool):
        raise StudioError("expected true or false", got=_kind(practice), field="practice")
    trace, digits = _traced({k: v for k, v in body.items() if k != "practice"})
    fmt = number_format(digits, trace.round_to)
    c = trace.circuit
    if practice:
        # A worksheet: the nodes, their rules and the given values; no computed number.
        _numbers_only(trace)
        rules = {n["name"]: n.get("rule") for n in trace.to_dict()["nodes"]}
        nodes = [
            {
                "name": n,
                "kind": "gate" if c.nodes[n].gate else "input",
                "rule": rules[n],
                "given": None if c.nodes[n].gate else format_value(trace.array(n), fmt),
                "grad": c.has_gradient(n),
            }
            for n in c.order()
            if c.nodes[n].constant is None
        ]
        sheet = {"output": c.output, "nodes": nodes}
        return {"sheet": sheet, "svg": circuit_svg(trace, fmt, blank=True)}
    shown: dict[str, dict[str, str]] = {}
    for name in c.order():
        entry = {"value": format_value(trace.array(name), fmt)}
        if c.has_gradient(name):
            entry["grad"] = format_value(trace.grad_array(name), fmt)
        shown[name] = entry
    return {"trace": trace.to_dict(), "svg": circuit_svg(trace, fmt), "shown": shown}


def circuit_explain(body: Any) -> dict[str, Any]:
    """``{..., "node", "what": "value" | "grad"}`` -> ``{"html"}``: that number's
    derivation (:func:`glassnet.explain.circuit.node_blocks`) as an HTML fragment of
    MathML; without ``node``, the whole page's sections."""
    from glassnet.explain.circuit import circuit_sections, node_blocks
    from glassnet.explain.render_html import block_html

    body = _object(body, "a request")
    _unknown(body, FIELDS | {"node", "what"})
    node, what = body.get("node"), body.get("what", "value")
    trace, digits = _traced({k: v for k, v in body.items() if k in FIELDS})
    c = trace.circuit
    if node is None:
        parts = []
        for sec in circuit_sections(trace, digits=digits, title="The circuit")[1:]:
            level = min(sec.level + 2, 6)
            parts.append(f"<h{level}>{escape(sec.title)}</h{level}>")
            parts.extend(block_html(b) for b in sec.blocks)
        return {"html": "\n".join(parts)}
    if not isinstance(node, str) or node not in c.nodes or c.nodes[node].constant is not None:
        known = ", ".join(n for n in c.order() if c.nodes[n].constant is None)
        raise StudioError(f"expected a node among {known}", got=repr(node)[:40], field="node")
    if what not in ("value", "grad"):
        raise StudioError('expected "value" or "grad"', got=repr(what)[:40], field="what")
    blocks = node_blocks(trace, node, what, digits=digits)
    return {"html": "\n".join(block_html(b) for b in blocks)}


def _numbers_only(trace: CircuitTrace) -> None:
    if trace.is_tensor:
        raise StudioError(
            "expected numbers for the page's practice (a worksheet of vectors and "
            "matrices is marked by glassnet check)",
            got="a vector or matrix",
            field="values",
        )


def _written(text: Any) -> int | float | None:
    """A box's text as check reads a worksheet's number: "3" an integer (the sheet's
    usual precision), "3.00" a float that keeps its text (its last decimal sets the
    tolerance); None when it is no finite number."""
    if isinstance(text, bool) or not isinstance(text, str | int | float):
        return None
    s = str(text).strip().replace("\u2212", "-")
    if re.fullmatch(r"[+-]?\d{1,18}", s):
        return int(s)
    try:
        value = Written(s)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def circuit_check(body: Any) -> dict[str, Any]:
    """``{..., "answers": {name: text}}`` -> ``{"entries": [{name, verdict, mistake,
    title}], "bad": {name: message}}``: each typed number marked by ``glassnet check``'s
    circuit marking (:func:`glassnet.check.circuit.mark_circuit`) — a node's name for its
    value, ``d`` + the name for its gradient; empty boxes are not written.  No right
    value is sent: the verdict, the mistake's id and its title."""
    from glassnet.check.circuit import CircuitSheet, mark_circuit, written_answers
    from glassnet.graphs import ExpressionFile

    body = _object(body, "a request")
    _unknown(body, FIELDS | {"answers"})
    answers = body.get("answers")
    if not isinstance(answers, dict):
        raise StudioError(
            "expected answers as an object (name -> the number typed)",
            got=_kind(answers),
            field="answers",
        )
    trace, _, values = _read({k: v for k, v in body.items() if k != "answers"})
    _numbers_only(trace)
    raw: dict[str, Any] = {}
    bad: dict[str, str] = {}
    for name, text in answers.items():
        if text is None or (isinstance(text, str) and not text.strip()):
            continue
        v = _written(text)
        if v is None:
            bad[name] = "expected a number such as 3 or -0.25"
        else:
            raw[name] = v
    c = trace.circuit
    sheet = CircuitSheet(ExpressionFile(c, values, trace.round_to), written_answers(c, raw), "")
    entries = [
        {"name": e.name, "verdict": e.verdict, "mistake": e.mistake, "title": e.title}
        for e in mark_circuit(sheet)
    ]
    return {"entries": entries, "bad": bad}


ENDPOINTS = {"circuit": circuit, "circuit_explain": circuit_explain, "circuit_check": circuit_check}
