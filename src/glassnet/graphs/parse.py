"""Reading an expression: a small parser over Python's ``ast`` that accepts only the
constructs a circuit has (names, numbers, + − * / **, unary minus and the registered
functions) — nothing is evaluated or executed as Python.

Statements are ``name = expression``, one a line (or separated by ``;``); the last one
may be a bare expression, named ``f``.  A nested part of an expression becomes a node of
its own, named ``q1``, ``q2``, … (names the expression does not use), in the order it is
computed.  Names used but never assigned are the variables, given in ``values``.
"""

from __future__ import annotations

import ast
import json
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.graphs.base import gate_for_function, gate_for_operator
from glassnet.graphs.circuit import Circuit, CNode
from glassnet.limits import MAX_GRAPH_GATES, MAX_GRAPH_TEXT, MAX_TEXT_BYTES, check_nesting

#: The keys an expression file may hold.
FILE_KEYS = frozenset({"expression", "values", "output", "round"})


def _where(line: int) -> str:
    return f"expression line {line}"


class _Builder:
    """Turns the statements into :class:`CNode` s, inputs first, each gate after its inputs."""

    def __init__(self, used: set[str]) -> None:
        self.used = used  # every name the text mentions, so q1, q2… never collide
        self.assigned: dict[str, int] = {}  # name -> the line assigning it
        self.inputs: list[CNode] = []
        self.gates: list[CNode] = []
        self.n_auto = 0
        self.n_const = 0

    def _fresh(self) -> str:
        while True:
            self.n_auto += 1
            name = f"q{self.n_auto}"
            if name not in self.used:
                return name

    def statement(self, target: str, value: ast.expr, line: int) -> None:
        if target in self.assigned:
            raise GlassnetError(
                f"expected each name assigned once ({target} is assigned on line "
                f"{self.assigned[target]})",
                got="a reassignment",
                field=_where(line),
            )
        if any(n.name == target for n in self.inputs):
            raise GlassnetError(
                f"expected {target} assigned before it is used (an expression is a circuit: "
                "no cycles)",
                got=f"{target} used before this line",
                field=_where(line),
            )
        while isinstance(value, ast.UnaryOp) and isinstance(value.op, ast.UAdd):
            value = value.operand  # +x is x: still a bare name
        if isinstance(value, ast.Name | ast.Constant):
            raise GlassnetError(
                "expected an operation on the right of '='",
                got=f"a bare {'name' if isinstance(value, ast.Name) else 'number'}",
                field=_where(line),
            )
        if self.node(value, line, target) != target:  # -3: a number, not an operation
            raise GlassnetError(
                "expected an operation on the right of '='",
                got="a bare number",
                field=_where(line),
            )
        if any(n.name == target for n in self.inputs):
            raise GlassnetError(
                f"expected {target} computed from other names (an expression is a circuit: "
                "no cycles)",
                got=f"{target} computed from itself",
                field=_where(line),
            )
        self.assigned[target] = line

    def node(self, e: ast.expr, line: int, name: str | None = None) -> str:
        """The name of the node ``e`` computes (adding it and its parts)."""
        if isinstance(e, ast.Name):
            if e.id not in self.assigned and not any(n.name == e.id for n in self.inputs):
                self.inputs.append(CNode(e.id, line=0))
            return e.id
        if isinstance(e, ast.Constant) or (
            isinstance(e, ast.UnaryOp)
            and isinstance(e.op, ast.USub)
            and isinstance(e.operand, ast.Constant)
        ):
            value = _number(e, line)
            self.n_const += 1
            # "#k" cannot be a Python name, so it never meets a person's.
            self.inputs.append(CNode(f"#{self.n_const}", constant=value, line=line, named=False))
            return f"#{self.n_const}"
        if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.UAdd):
            return self.node(e.operand, line, name)
        if isinstance(e, ast.BinOp) or isinstance(e, ast.UnaryOp):
            cls = gate_for_operator(type(e.op))
            if cls is None:
                raise GlassnetError(
                    "expected an operator among + - * / **",
                    got=type(e.op).__name__,
                    field=_where(line),
                )
            if isinstance(e, ast.UnaryOp):
                gate, args = cls(), [e.operand]
            elif cls.constant_power:
                gate, args = (
                    cls(power=_number(e.right, line, what="a number as the power")),
                    [e.left],
                )
            else:
                gate, args = cls(), [e.left, e.right]
        elif isinstance(e, ast.Call):
            if not isinstance(e.func, ast.Name) or e.keywords:
                raise GlassnetError(
                    "expected a function called by name with plain arguments",
                    got=ast.unparse(e)[:40],
                    field=_where(line),
                )
            try:
                cls = gate_for_function(e.func.id)
            except GlassnetError as err:
                err.field = _where(line)
                err.args = (err._message(),)
                raise
            if len(e.args) != cls.arity:
                raise GlassnetError(
                    f"expected {cls.arity} argument{'s' if cls.arity > 1 else ''} to {e.func.id}",
                    got=str(len(e.args)),
                    field=_where(line),
                )
            gate, args = cls(), list(e.args)
        else:
            raise GlassnetError(
                "expected names, numbers, + - * / **, unary minus and function calls",
                got=type(e).__name__,
                field=_where(line),
            )
        ins = tuple(self.node(a, line) for a in args)
        if name is None:
            out = self._fresh()
            named = False
        else:
            out, named = name, True
        self.gates.append(CNode(out, gate, ins, line=line, named=named))
        if len(self.gates) > MAX_GRAPH_GATES:
            raise GlassnetError(
                f"expected at most {MAX_GRAPH_GATES} gates (a circuit a person reads)",
                got="more",
                field=_where(line),
            )
        return out


def _number(e: ast.expr, line: int, *, what: str = "a number") -> float:
    sign = 1.0
    if isinstance(e, ast.UnaryOp) and isinstance(e.op, ast.USub | ast.UAdd):
        sign = -1.0 if isinstance(e.op, ast.USub) else 1.0
        e = e.operand
    if (
        isinstance(e, ast.Constant)
        and isinstance(e.value, int | float)
        and not isinstance(e.value, bool)
        and math.isfinite(float(e.value))
    ):
        return sign * float(e.value)
    raise GlassnetError(f"expected {what}", got=ast.unparse(e)[:40], field=_where(line))


def parse_expression(text: str, *, output: str | None = None) -> Circuit:
    """The circuit of ``text`` (statements ``name = expression``); ``output``: the node
    whose gradient is taken (default: the last one assigned)."""
    if len(text) > MAX_GRAPH_TEXT:
        raise GlassnetError(
            f"expected an expression of at most {MAX_GRAPH_TEXT} characters",
            got=str(len(text)),
            field="expression",
        )
    try:
        tree = ast.parse(text.strip(), mode="exec")
    except SyntaxError as err:
        raise GlassnetError(
            "expected statements like 'q = x + y'",
            got=f"{err.msg}",
            field=_where(err.lineno or 0),
        ) from None
    except (RecursionError, MemoryError, ValueError):
        raise GlassnetError(
            "expected an expression nested less deeply", got="too deep", field="expression"
        ) from None
    # Before walking it recursively: a huge tree is refused by its size.
    if sum(1 for _ in ast.walk(tree)) > 6 * MAX_GRAPH_GATES:
        raise GlassnetError(
            f"expected at most {MAX_GRAPH_GATES} gates (a circuit a person reads)",
            got="more",
            field="expression",
        )
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    builder = _Builder(used)
    if not tree.body:
        raise GlassnetError("expected at least one statement", got="none", field="expression")
    last = len(tree.body) - 1
    for k, stmt in enumerate(tree.body):
        if (
            isinstance(stmt, ast.Assign)
            and len(stmt.targets) == 1
            and isinstance(stmt.targets[0], ast.Name)
        ):
            builder.statement(stmt.targets[0].id, stmt.value, stmt.lineno)
        elif isinstance(stmt, ast.Expr) and k == last:
            name = "f" if "f" not in used else builder._fresh()
            builder.statement(name, stmt.value, stmt.lineno)
        else:
            raise GlassnetError(
                "expected statements 'name = expression'",
                got=ast.unparse(stmt)[:40],
                field=_where(stmt.lineno),
            )
    nodes = builder.inputs + builder.gates
    if output is None:
        output = list(builder.assigned)[-1]
    elif output not in builder.assigned:
        raise GlassnetError(
            "expected the output to be a name the expression assigns",
            got=repr(output),
            field="output",
        )
    return Circuit(nodes, output, text.strip())


def _split_top(text: str) -> list[str]:
    """``text`` split at the commas outside brackets: "x=[1,2],y=3" -> two parts."""
    parts, depth, start = [], 0, 0
    for k, ch in enumerate(text):
        depth += (ch == "[") - (ch == "]")
        if ch == "," and depth == 0:
            parts.append(text[start:k])
            start = k + 1
    return [*parts, text[start:]]


def parse_values(text: str) -> dict[str, Any]:
    """``"x=-2,y=5,z=-4"`` -> {"x": -2.0, "y": 5.0, "z": -4.0}; a vector or matrix in
    brackets: ``"x=[1,2],W=[[1,0],[0,1]]"``."""
    out: dict[str, Any] = {}
    for part in _split_top(text):
        name, eq, number = part.partition("=")
        name = name.strip()
        if eq and name.isidentifier() and number.strip().startswith("["):
            try:
                raw = json.loads(number)
            except ValueError:
                raw = None
            out[name] = as_value(raw, field=f"--values {name}")
            continue
        try:
            value = float(number)
        except ValueError:
            value = math.nan
        if not eq or not name.isidentifier() or not math.isfinite(value):
            raise GlassnetError(
                "expected values like x=-2,y=5 (or x=[1,2] for a vector)",
                got=repr(part.strip()),
                field="--values",
            )
        out[name] = value
    return out


#: The largest vector or matrix a circuit's value may be (a circuit a person reads).
MAX_VALUE_SIZE = 400


def as_value(raw: Any, *, field: str, file: str | None = None) -> Any:
    """A variable's value: a finite number (a float), or a vector or matrix written as
    nested lists of finite numbers (a float64 array; rows of equal length, at most two
    levels, not empty)."""
    if not isinstance(raw, bool) and isinstance(raw, int | float) and math.isfinite(raw):
        return float(raw)

    def bad(got: str) -> GlassnetError:
        return GlassnetError(
            "expected a finite number, a vector [1, 2] or a matrix [[1, 2], [3, 4]] "
            "(rows of equal length)",
            got=got,
            file=file,
            field=field,
        )

    if not isinstance(raw, list) or not raw:
        raise bad(repr(raw)[:40])
    rows = raw if isinstance(raw[0], list) else [raw]
    width = len(rows[0])
    for r in rows:
        if not isinstance(r, list) or len(r) != width or not r:
            raise bad("rows of different lengths, or a mix of numbers and lists")
        for v in r:
            if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                raise bad(repr(v)[:40])
    if len(rows) * width > MAX_VALUE_SIZE:
        raise bad(f"{len(rows) * width} numbers (at most {MAX_VALUE_SIZE})")
    return np.array(raw, dtype=np.float64)


@dataclass
class ExpressionFile:
    """An expression file read: its circuit, the variables' values, hand-mode rounding."""

    circuit: Circuit
    #: Each variable's value: a float, or a float64 array (a vector or matrix).
    values: dict[str, Any] = field(default_factory=dict)
    round_to: int | None = None
    path: str = ""


def is_expression_file(path: str) -> bool:
    """Is ``path`` a TOML file holding an ``expression`` (not a network's spec)?"""
    p = Path(path)
    try:
        if p.suffix.lower() != ".toml" or not p.is_file() or p.stat().st_size > MAX_TEXT_BYTES:
            return False
        text = p.read_text(encoding="utf-8")
        check_nesting(text)  # tomllib recurses: refuse what would overflow the stack
        return "expression" in tomllib.loads(text)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, GlassnetError):
        return False  # not an expression file: the spec reader says what is wrong


def load_expression(path: str) -> ExpressionFile:
    """Read an expression file: ``expression``, ``values``, optional ``output`` and
    ``round``."""
    return expression_from_data(read_toml(path), path)


def read_toml(path: str, parse_float: Callable[[str], Any] = float) -> dict[str, Any]:
    """A hand-written TOML file's tables (size, encoding and nesting checked first)."""
    p = Path(path)
    try:
        if p.stat().st_size > MAX_TEXT_BYTES:
            raise GlassnetError(
                f"expected a file of at most {MAX_TEXT_BYTES} bytes", got="larger", file=path
            )
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise GlassnetError("expected a readable UTF-8 file", got=str(err), file=path) from None
    check_nesting(text, file=path)
    try:
        return tomllib.loads(text, parse_float=parse_float)
    except tomllib.TOMLDecodeError as err:
        raise GlassnetError("expected TOML", got=str(err), file=path) from None


def expression_from_data(
    data: dict[str, Any], path: str, *, extra: frozenset[str] = frozenset()
) -> ExpressionFile:
    """An expression file's tables read (``extra``: other keys the caller reads, a
    worksheet's ``answers``)."""
    unknown = sorted(set(data) - FILE_KEYS - extra)
    if unknown:
        raise GlassnetError(
            f"expected only the keys {', '.join(sorted(FILE_KEYS | extra))}",
            got=", ".join(unknown),
            file=path,
        )
    expression = data.get("expression")
    if not isinstance(expression, str):
        raise GlassnetError(
            "expected a string", got=type(expression).__name__, file=path, field="expression"
        )
    output = data.get("output")
    if output is not None and not isinstance(output, str):
        raise GlassnetError("expected a node's name", got=repr(output), file=path, field="output")
    round_to = data.get("round")
    if round_to is not None and (
        isinstance(round_to, bool) or not isinstance(round_to, int) or not 0 <= round_to <= 15
    ):
        raise GlassnetError(
            "expected a number of decimals from 0 to 15",
            got=repr(round_to),
            file=path,
            field="round",
        )
    raw = data.get("values", {})
    if not isinstance(raw, dict):
        raise GlassnetError(
            "expected a table like { x = -2 }", got=repr(raw)[:40], file=path, field="values"
        )
    values: dict[str, Any] = {}
    for name, v in raw.items():
        values[name] = as_value(v, field=f"values.{name}", file=path)
    try:
        circuit = parse_expression(expression, output=output)
    except GlassnetError as err:
        raise err.with_file(path) from None
    return ExpressionFile(circuit, values, round_to, path)
