"""Backprop on any expression (``glassnet.graphs``), checked against references that
share no code with it: PyTorch float64 autograd, central finite differences computed
with Python's own ``math`` on the same text, and CS231n's two published examples
("Backpropagation, Intuitions", https://cs231n.github.io/optimization-2/).

The random circuits are generated here as text; the test evaluates that text itself
(with ``torch`` and with ``math``) — glassnet only parses it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from glassnet import cli
from glassnet.errors import GlassnetError
from glassnet.graphs import parse_expression

# -- the references ----------------------------------------------------------------------

TORCH_FUNCTIONS: dict[str, Callable[..., torch.Tensor]] = {
    "exp": torch.exp,
    "log": torch.log,
    "max": torch.maximum,
    "min": torch.minimum,
    "abs": torch.abs,
    "sigmoid": torch.sigmoid,
    "tanh": torch.tanh,
    "relu": torch.relu,
}


def _statements(text: str) -> list[tuple[str, str]]:
    return [tuple(s.split("=", 1)) for s in text.strip().splitlines()]  # type: ignore[misc]


def torch_reference(
    text: str, values: dict[str, float]
) -> tuple[dict[str, float], dict[str, float], dict[str, torch.Tensor]]:
    """Every named node's value and ∂f/∂node, by PyTorch float64 autograd (the last
    statement is f); also the tensors, for local gradients."""
    ns: dict[str, object] = dict(TORCH_FUNCTIONS)
    tensors: dict[str, torch.Tensor] = {}
    for name, v in values.items():
        tensors[name] = torch.tensor(v, dtype=torch.float64, requires_grad=True)
    ns.update(tensors)
    last = ""
    for name, expr in _statements(text):
        name = name.strip()
        t = eval(expr, {"__builtins__": {}}, ns)  # our own generated text
        t.retain_grad()
        ns[name] = tensors[name] = t
        last = name
    tensors[last].backward(retain_graph=True)
    vals = {n: float(t.detach()) for n, t in tensors.items()}
    grads = {n: float(t.grad) if t.grad is not None else 0.0 for n, t in tensors.items()}
    return vals, grads, tensors


MATH_FUNCTIONS: dict[str, Callable[..., float]] = {
    "exp": math.exp,
    "log": math.log,
    "max": max,
    "min": min,
    "abs": abs,
    "sigmoid": lambda v: 1.0 / (1.0 + math.exp(-v)),
    "tanh": math.tanh,
    "relu": lambda v: max(v, 0.0),
}


def math_eval(text: str, values: dict[str, float], kinks: list[float] | None = None) -> float:
    """f by plain Python floats; ``kinks`` collects each non-smooth gate's distance from
    its kink (|a − b| for max/min, |a| for abs/relu)."""
    ns: dict[str, object] = dict(MATH_FUNCTIONS)
    if kinks is not None:
        ns["max"] = lambda a, b: (kinks.append(abs(a - b)), max(a, b))[1]
        ns["min"] = lambda a, b: (kinks.append(abs(a - b)), min(a, b))[1]
        ns["abs"] = lambda a: (kinks.append(abs(a)), abs(a))[1]
        ns["relu"] = lambda a: (kinks.append(abs(a)), max(a, 0.0))[1]
    ns.update(values)
    last = ""
    for name, expr in _statements(text):
        ns[name.strip()] = eval(expr, {"__builtins__": {}}, ns)
        last = name.strip()
    return float(ns[last])  # type: ignore[arg-type]


def finite_differences(text: str, values: dict[str, float], h: float = 1e-6) -> dict[str, float]:
    """∂f/∂input by central differences (f(x + h) − f(x − h)) / 2h."""
    out = {}
    for name in values:
        up, down = dict(values), dict(values)
        up[name] += h
        down[name] -= h
        out[name] = (math_eval(text, up) - math_eval(text, down)) / (2 * h)
    return out


# -- random circuits ---------------------------------------------------------------------

#: One template per gate (the domain-limited ones kept in their domain by a nested part).
TEMPLATES: dict[str, str] = {
    "add": "{a} + {b}",
    "sub": "{a} - {b}",
    "mul": "{a} * {b}",
    "div": "{a} / ({b} * {b} + 1)",
    "neg": "-{a}",
    "pow": "({a} * {a} + 0.5) ** 1.5",
    "square": "{a} ** 2",
    "exp": "exp(tanh({a}))",
    "log": "log({a} * {a} + 1)",
    "max": "max({a}, {b})",
    "min": "min({a}, {b})",
    "abs": "abs({a})",
    "sigmoid": "sigmoid({a})",
    "tanh": "tanh({a})",
    "relu": "relu({a})",
}


def random_circuit(seed: int) -> tuple[str, dict[str, float]]:
    """A circuit using every gate (and a few more at random), each line's inputs drawn
    from the nodes before it — often the same node twice or more, so gradients fork —
    and values at least 1e-3 from every kink (so finite differences hold)."""
    rng = np.random.default_rng(seed)
    inputs = ["x0", "x1", "x2"]
    # Some shapes sit on a kink whatever the values (abs of a relu that is 0): draw
    # another shape then.
    for _ in range(50):
        kinds = list(TEMPLATES) + [str(k) for k in rng.choice(list(TEMPLATES), 5)]
        rng.shuffle(kinds)
        names = list(inputs)
        lines = []
        for k, kind in enumerate(kinds):
            # Any earlier node: one feeding several gates is a fork.
            a, b = rng.choice(names, size=2, replace=False)
            if k < len(inputs):
                a = inputs[k]  # every input used
                b = b if b != a else names[(k + 1) % len(inputs)]
            lines.append(f"n{k} = {TEMPLATES[kind].format(a=a, b=b)}")
            names.append(f"n{k}")
        lines.append("f = " + " + ".join(names[-4:]) + f" * {names[len(inputs)]}")
        text = "\n".join(lines)
        for _ in range(50):
            values = {n: float(rng.uniform(0.2, 1.6) * rng.choice([-1.0, 1.0])) for n in inputs}
            kinks: list[float] = []
            math_eval(text, values, kinks)
            if min(kinks, default=1.0) > 1e-3:
                return text, values
    raise AssertionError("no values away from the kinks")  # pragma: no cover


SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
def test_random_circuits_match_pytorch(seed: int) -> None:
    text, values = random_circuit(seed)
    trace = parse_expression(text).trace(values)
    ref_values, ref_grads, _ = torch_reference(text, values)
    for name in ref_values:
        assert trace.value(name) == pytest.approx(ref_values[name], rel=1e-12, abs=1e-12), name
        assert trace.grad(name) == pytest.approx(ref_grads[name], rel=1e-10, abs=1e-12), name
    # Each gate's local gradients (the lines that are one gate over named inputs):
    # PyTorch's partial derivative, the line evaluated again on fresh leaves holding the
    # inputs' values, summed over the positions where an input appears (x * x).
    c = trace.circuit
    lines = {name.strip(): expr for name, expr in _statements(text)}
    checked = 0
    for name in c.gates():
        srcs = c.nodes[name].inputs
        if name not in lines or not all(s in ref_values for s in srcs):
            continue
        unique = sorted(set(srcs))
        fresh = {
            s: torch.tensor(ref_values[s], dtype=torch.float64, requires_grad=True) for s in unique
        }
        out = eval(lines[name], {"__builtins__": {}}, {**TORCH_FUNCTIONS, **fresh})
        got = torch.autograd.grad(out, [fresh[s] for s in unique])
        for s, g in zip(unique, got, strict=True):
            ours = sum(trace.local(name, i) for i, src in enumerate(srcs) if src == s)
            assert ours == pytest.approx(float(g), rel=1e-10, abs=1e-12), (name, s)
            checked += 1
    assert checked >= 5


@pytest.mark.parametrize("seed", SEEDS)
def test_random_circuits_match_finite_differences(seed: int) -> None:
    text, values = random_circuit(seed)
    trace = parse_expression(text).trace(values)
    assert trace.value("f") == pytest.approx(math_eval(text, values), rel=1e-12)
    for name, fd in finite_differences(text, values).items():
        assert trace.grad(name) == pytest.approx(fd, rel=1e-6, abs=1e-7), name


def test_random_circuits_fork_and_use_every_gate() -> None:
    """The generated circuits are what the tests above claim: every gate, and forks."""
    from glassnet.graphs import registered_gates

    seen: set[str] = set()
    forks = 0
    for seed in SEEDS:
        c = parse_expression(random_circuit(seed)[0])
        seen |= {type(c.nodes[n].gate).name for n in c.gates()}  # type: ignore[union-attr]
        forks += len(c.forks())
    assert seen == {n for n, c in registered_gates().items() if not c.tensor_only}
    assert forks >= len(SEEDS)


def test_ties_and_kinks_follow_pytorch() -> None:
    """At a kink the gradient is a choice; glassnet's is PyTorch's (max/min of equal
    inputs: half each; relu′(0) = abs′(0) = 0)."""
    text = "a = max(x, y)\nb = min(x, y)\nc = relu(z)\nd = abs(z)\nf = a * 3 + b * 5 + c + d"
    values = {"x": 1.5, "y": 1.5, "z": 0.0}
    trace = parse_expression(text).trace(values)
    _, ref, _ = torch_reference(text, values)
    for name in ("x", "y", "z", "a", "b", "c", "d"):
        assert trace.grad(name) == ref[name], name


def test_sigmoid_far_from_zero_matches_pytorch() -> None:
    text = "a = sigmoid(x)\nb = sigmoid(y)\nf = a + b"
    values = {"x": 400.0, "y": -400.0}
    trace = parse_expression(text).trace(values)
    ref_values, ref_grads, _ = torch_reference(text, values)
    assert trace.value("b") > 0  # σ(−400) ≈ 1.9e-174, not rounded to 0
    for n in ref_values:
        assert trace.value(n) == pytest.approx(ref_values[n], rel=1e-12, abs=0)
        assert trace.grad(n) == pytest.approx(ref_grads[n], rel=1e-12, abs=0)


# -- CS231n's published examples ---------------------------------------------------------


def test_cs231n_add_multiply_circuit() -> None:
    """CS231n, "Backpropagation, Intuitions": f(x, y, z) = (x + y)·z at x = −2, y = 5,
    z = −4: q = 3, f = −12, and df/dx = −4, df/dy = −4, df/dz = 3 (df/dq = z = −4)."""
    trace = parse_expression("q = x + y\nf = q * z").trace({"x": -2, "y": 5, "z": -4})
    assert (trace.value("q"), trace.value("f")) == (3.0, -12.0)
    assert (trace.grad("x"), trace.grad("y"), trace.grad("z"), trace.grad("q")) == (
        -4.0,
        -4.0,
        3.0,
        -4.0,
    )


def test_cs231n_nested_form_names_the_intermediate_q1() -> None:
    c = parse_expression("f = (x + y) * z")
    assert c.gates() == ["q1", "f"]
    trace = c.trace({"x": -2, "y": 5, "z": -4})
    assert (trace.grad("x"), trace.grad("y"), trace.grad("z")) == (-4.0, -4.0, 3.0)
    # A name the person uses is never taken for a generated one.
    c2 = parse_expression("q1 = x * 2\nf = (x + y) * q1")
    assert c2.gates() == ["q1", "q2", "f"]


@pytest.mark.parametrize(
    "text",
    [
        "f = 1 / (1 + exp(-(w0 * x0 + w1 * x1 + w2)))",  # the circuit as CS231n draws it
        "dot = w0 * x0 + w1 * x1 + w2\nf = sigmoid(dot)",  # with the sigmoid gate
    ],
)
def test_cs231n_sigmoid_neuron(text: str) -> None:
    """CS231n's 2-d neuron: w = [2, −3, −3], x = [−1, −2]; the notes print the gradients
    dx = [0.39, −0.59] and dw = [−0.20, −0.39, 0.20] (two decimals).  By hand:
    dot = 2·(−1) + (−3)·(−2) − 3 = 1, f = σ(1) = 0.7311, ddot = f(1 − f) = 0.19661;
    dx = w·ddot, dw = [x0, x1, 1]·ddot."""
    values = {"w0": 2, "w1": -3, "w2": -3, "x0": -1, "x1": -2}
    trace = parse_expression(text).trace(values)
    assert round(trace.value("f"), 2) == 0.73
    assert [round(trace.grad(n), 2) for n in ("x0", "x1")] == [0.39, -0.59]
    assert [round(trace.grad(n), 2) for n in ("w0", "w1", "w2")] == [-0.20, -0.39, 0.20]
    ddot = math.exp(-1) / (1 + math.exp(-1)) ** 2  # σ′(1), written out again
    assert trace.grad("w2") == pytest.approx(ddot, rel=1e-14)


def test_cs231n_staged_example_with_forks() -> None:
    """CS231n's "staged computation" example f = (x + σ(y)) / (σ(x) + (x + y)²), where x
    and y each feed several gates, against PyTorch."""
    text = "f = (x + sigmoid(y)) / (sigmoid(x) + (x + y) ** 2)"
    values = {"x": 3.0, "y": -4.0}
    trace = parse_expression(text).trace(values)
    _, ref, _ = torch_reference(text, values)
    assert trace.grad("x") == pytest.approx(ref["x"], rel=1e-12)
    assert trace.grad("y") == pytest.approx(ref["y"], rel=1e-12)
    assert set(trace.circuit.forks()) >= {"x", "y"}


def test_hand_mode_rounds_every_value_before_it_is_used() -> None:
    """round = 2, worked by hand: q = 1/3 → 0.33; f = 0.33·3 = 0.99 (not 1.00);
    df/dq = z = 3; df/dz = q = 0.33; ∂q/∂x = 1/y → 0.33, so df/dx = 3·0.33 = 0.99;
    ∂q/∂y = −x/y² = −0.111… → −0.11, so df/dy = 3·(−0.11) = −0.33."""
    trace = parse_expression("q = x / y\nf = q * z").trace({"x": 1, "y": 3, "z": 3}, round_to=2)
    assert trace.value("q") == 0.33
    assert trace.value("f") == pytest.approx(0.99, abs=1e-15)
    assert trace.grad("z") == 0.33
    assert trace.grad("x") == pytest.approx(0.99, abs=1e-15)
    assert trace.grad("y") == pytest.approx(-0.33, abs=1e-15)


def test_only_what_feeds_the_output_gets_gradient() -> None:
    trace = parse_expression("a = x * y\nb = a + y\nf = a * 2", output="a").trace({"x": 3, "y": 4})
    assert (trace.grad("x"), trace.grad("y"), trace.grad("b")) == (4.0, 3.0, 0.0)


# -- the command -------------------------------------------------------------------------


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_command_json_is_documented_and_consistent(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "graph", "f = x * x + x * y", "--values", "x=3,y=-2", "--json")
    assert code == 0
    data = json.loads(out)
    nodes = {n["name"]: n for n in data["nodes"]}
    # f = x² + xy: df/dx = 2x + y = 4, df/dy = x = 3 (by hand).
    assert (nodes["x"]["grad"], nodes["y"]["grad"], nodes["f"]["value"]) == (4.0, 3.0, 3.0)
    assert data["forks"] == ["x"]
    for n in data["nodes"]:
        if "paths" in n and n["name"] != data["output"]:
            assert sum(p["contribution"] for p in n["paths"]) == pytest.approx(n["grad"])
            for p in n["paths"]:
                assert p["contribution"] == pytest.approx(p["upstream"] * p["local"])
    assert len(nodes["x"]["paths"]) == 3  # x·x twice, x·y once
    doc = (Path(__file__).parents[1] / "docs" / "graphs.md").read_text(encoding="utf-8")
    for key in ("expression", "output", "round", "inputs", "nodes", "forks"):
        assert f'"{key}"' in doc, key
    for key in set().union(*(set(n) for n in data["nodes"])) | {"via", "upstream", "contribution"}:
        assert f'"{key}"' in doc, key


def test_command_reads_an_expression_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cs231n.toml"
    path.write_text(
        'expression = """\nq = x + y\nf = q * z\n"""\nvalues = { x = -2, y = 5, z = -4 }\n',
        encoding="utf-8",
    )
    code, out, _ = run(capsys, "graph", str(path), "--json")
    assert code == 0
    nodes = {n["name"]: n for n in json.loads(out)["nodes"]}
    assert [nodes[k]["grad"] for k in "xyz"] == [-4.0, -4.0, 3.0]
    # --values overrides the file's; the text form names each node and its gradient.
    code, out, _ = run(capsys, "graph", str(path), "--values", "z=2")
    assert code == 0
    assert "q" in out and "x + y" in out


BAD = [
    # (expression, values, words the one-line message must hold)
    ("f = foo(x)", "x=1", ["line 1", "'foo'", "exp"]),
    ("f = x + y", "x=1", ["y", "undefined variable"]),
    ("q = x - y\nf = z / q", "x=1,y=1,z=2", ["line 2", "node f", "division by zero"]),
    ("a = b + 1\nb = a * 2", "", ["line 2", "b", "cycles"]),
    ("a = a + 1", "a=1", ["line 1", "itself"]),
    ("f = x + 1\nf = x * 2", "x=1", ["line 2", "assigned once"]),
    ("f = " + "+".join(["x"] * 300), "x=1", ["200 gates"]),
    ("f = " + "(" * 300 + "x" + ")" * 300, "x=1", ["line 1"]),
    ("f = " + "-" * 5000 + "x", "x=1", ["expression"]),
    ("f = x ** y", "x=1,y=2", ["line 1", "number as the power"]),
    ("f = log(x - x)", "x=1", ["node", "log"]),
    ("f = exp(x * 1000)", "x=1", ["node f", "too large"]),
    ("import os", "", ["line 1"]),
    ("f = __import__('os').getcwd()", "", ["line 1"]),
    ("f = x.real + 1", "x=1", ["Attribute"]),
    ("f = max(x)", "x=1", ["2 arguments", "max"]),
    ("f = x + 1", "x=1,w=2", ["w", "does not use"]),
    ("f = x + 1", "x=abc", ["--values"]),
    ("f = x + 1", "", ["x"]),
]


@pytest.mark.parametrize(("expression", "values", "words"), BAD)
def test_bad_expressions_get_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str], expression: str, values: str, words: list[str]
) -> None:
    argv = ["graph", expression] + (["--values", values] if values else [])
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("glassnet: error: ")
    for w in words:
        assert w in err, (w, err)


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ('expression = "f = x + 1"\nvalues = { x = "a" }\n', ["values.x"]),
        ('expression = "f = x + 1"\nvalues = { x = 1 }\ncolour = 1\n', ["colour"]),
        ('expression = "f = x + 1"\nvalues = { x = 1 }\nround = -1\n', ["round"]),
        ('expression = "f = x + 1"\nvalues = { x = 1 }\noutput = "g"\n', ["output"]),
        ('expression = "f = x +"\nvalues = { x = 1 }\n', ["line 1"]),
    ],
)
def test_bad_expression_files(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], body: str, words: list[str]
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(body, encoding="utf-8")
    code, _, err = run(capsys, "graph", str(path))
    assert code == 2 and err.count("\n") == 1
    assert str(path) in err
    for w in words:
        assert w in err, (w, err)


def test_a_missing_expression_file_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "graph", "no-such-file.toml")
    assert code == 2 and "no-such-file.toml" in err


@pytest.mark.parametrize(
    "content",
    [b"\xf8\x00\xff junk", b"x = " + b"[" * 5000 + b"]" * 5000, b'expression = "f = x +\n'],
)
@pytest.mark.parametrize("command", ["graph", "explain"])
def test_unreadable_files_get_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, command: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(content)
    code, _, err = run(capsys, command, str(path))
    assert code == 2 and err.count("\n") == 1, err


# -- any text: a circuit or one GlassnetError --------------------------------------------

_PIECES = [
    "x", "y", "q1", "f", "=", "+", "-", "*", "/", "**", "(", ")", ",", "\n", ";", " ",
    "0", "1", "2.5", "1e308", "exp", "log", "max", "min", "abs", "sigmoid", "tanh", "relu",
    "foo", "[", "]", ".", "'", "lambda", ":", "import", "==", "@", "#", "\\", "\x00",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(_PIECES), max_size=30), st.floats(-3, 3), st.floats(-3, 3))
def test_any_text_is_a_circuit_or_one_glassnet_error(pieces: list[str], x: float, y: float) -> None:
    """Made of the language's own pieces and some that are not: the parser and the trace
    either give numbers or refuse with a GlassnetError — never another exception."""
    text = "".join(pieces)
    try:
        circuit = parse_expression(text)
        values = {"x": x, "y": y}
        trace = circuit.trace({n: values.get(n, 1.0) for n in circuit.inputs()})
    except GlassnetError as err:
        assert "\n" not in str(err)
        return
    for name in circuit.order():
        assert math.isfinite(trace.value(name))


_LEAVES = st.sampled_from(["x", "y", "0", "1", "2.5", "1e300", "-3"])


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(
        lambda t: f"({t[0]} {t[1]} {t[2]})"
    )
    power = st.tuples(children, st.sampled_from(["2", "0.5", "-1", "3"])).map(
        lambda t: f"({t[0]}) ** {t[1]}"
    )
    unary = st.tuples(
        st.sampled_from(["exp", "log", "abs", "sigmoid", "tanh", "relu", "-"]), children
    ).map(lambda t: f"{t[0]}({t[1]})")
    pair = st.tuples(st.sampled_from(["max", "min"]), children, children).map(
        lambda t: f"{t[0]}({t[1]}, {t[2]})"
    )
    return binary | power | unary | pair


@settings(max_examples=300, deadline=None)
@given(
    st.recursive(_LEAVES, _combine, max_leaves=12),
    st.floats(-50, 50, allow_nan=False),
    st.floats(-50, 50, allow_nan=False),
)
def test_any_well_formed_expression_is_traced_or_refused_by_name(
    expr: str, x: float, y: float
) -> None:
    """Well-formed expressions at any values (overflow, log of 0, division by 0 among
    them): finite numbers everywhere, or one GlassnetError naming the node."""
    try:
        circuit = parse_expression(f"f = {expr}")
    except GlassnetError as err:
        assert "bare" in str(err)  # f = x: a name alone is not an operation
        return
    values = {"x": x, "y": y}
    try:
        trace = circuit.trace({n: values[n] for n in circuit.inputs()})
    except GlassnetError as err:
        assert "node" in str(err) and "\n" not in str(err)
        return
    for name in circuit.order():
        assert math.isfinite(trace.value(name))
        if circuit.has_gradient(name):
            assert math.isfinite(trace.grad(name))
