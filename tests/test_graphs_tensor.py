"""Circuits of vectors and matrices: ``@``, ``sum``, element-wise gates with NumPy's
broadcasting.  Checked against references that share no code with glassnet: PyTorch
float64 autograd and central finite differences (NumPy evaluating the same text here),
a matrix-multiply gradient worked by hand, and the explain page's arithmetic
(tests/_explain_arith.py) from the numbers as printed.

The random circuits are generated here as text with random shapes; the test evaluates
that text itself — glassnet only parses it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from test_graphs import TORCH_FUNCTIONS, _statements
from test_graphs_explain import _arithmetic, _run_notebook, make_kernel

from glassnet import cli
from glassnet.errors import GlassnetError
from glassnet.explain.circuit import circuit_sections
from glassnet.graphs import parse_expression

# -- the references ----------------------------------------------------------------------


def torch_tensors(text: str, values: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """Every named node's tensor after PyTorch float64 autograd of the last statement
    (each tensor's ``.grad`` is ∂f/∂node)."""
    ns: dict[str, object] = {**TORCH_FUNCTIONS, "sum": torch.sum}
    tensors = {
        n: torch.tensor(v, dtype=torch.float64, requires_grad=True) for n, v in values.items()
    }
    ns.update(tensors)
    last = ""
    for name, expr in _statements(text):
        t = eval(expr, {"__builtins__": {}}, ns)  # our own generated text
        t.retain_grad()
        ns[name.strip()] = tensors[name.strip()] = t
        last = name.strip()
    tensors[last].backward()
    return tensors


NUMPY_FUNCTIONS: dict[str, Callable[..., np.ndarray]] = {
    "exp": np.exp,
    "log": np.log,
    "max": np.maximum,
    "min": np.minimum,
    "abs": np.abs,
    "sigmoid": lambda v: 1.0 / (1.0 + np.exp(-v)),
    "tanh": np.tanh,
    "relu": lambda v: np.maximum(v, 0.0),
    "sum": np.sum,
}


def numpy_f(text: str, values: dict[str, np.ndarray]) -> float:
    ns: dict[str, object] = {**NUMPY_FUNCTIONS, **values}
    last = ""
    for name, expr in _statements(text):
        ns[name.strip()] = eval(expr, {"__builtins__": {}}, ns)
        last = name.strip()
    return float(ns[last])  # type: ignore[arg-type]


def finite_differences(
    text: str, values: dict[str, np.ndarray], h: float = 1e-6
) -> dict[str, np.ndarray]:
    """∂f/∂input, element by element, by central differences (f(x + h) − f(x − h)) / 2h."""
    out = {}
    for name, v in values.items():
        g = np.zeros_like(v)
        for idx in np.ndindex(v.shape):
            up, down = dict(values), dict(values)
            up[name], down[name] = v.copy(), v.copy()
            up[name][idx] += h
            down[name][idx] -= h
            g[idx] = (numpy_f(text, up) - numpy_f(text, down)) / (2 * h)
        out[name] = g
    return out


# -- random circuits ---------------------------------------------------------------------

#: Element-wise templates over a matrix operand {a} and a broadcast one {b} (the
#: domain-limited gates kept in their domain by a nested part).
ELEMENTWISE = [
    "{a} + {b}",
    "{a} - {b}",
    "{a} * {b}",
    "{a} / ({b} * {b} + 1)",
    "-{a}",
    "({a} * {a} + 0.5) ** 1.5",
    "exp(tanh({a}))",
    "log({a} * {a} + 1)",
    "max({a}, {b})",
    "min({a}, {b})",
    "abs({a})",
    "sigmoid({a})",
    "tanh({a})",
    "relu({a})",
]


def random_tensor_circuit(seed: int) -> tuple[str, dict[str, np.ndarray]]:
    """A circuit over X (m, k), W (k, n), x (k,), b (n,), c (m, 1) and s (): the four
    kinds of @ (matrix·matrix, matrix·vector, vector·matrix, vector·vector), then
    element-wise gates on (m, n) matrices with operands broadcast from (n,), (m, 1),
    (1, 1)-like numbers and other matrices — nodes used more than once (forks) — summed
    into f."""
    rng = np.random.default_rng(seed)
    m, k, n = (int(v) for v in rng.integers(1, 5, size=3))
    values = {
        "X": rng.normal(size=(m, k)),
        "W": rng.normal(size=(k, n)),
        "x": rng.normal(size=k),
        "b": rng.normal(size=n),
        "c": rng.normal(size=(m, 1)),
        "s": np.array(rng.normal()),
    }
    lines = ["H = X @ W + b", "u = X @ x", "v = x @ W", "w = x @ x"]
    mats, broad = ["H"], ["b", "c", "s", "v", "w", "H"]
    for j, t in enumerate(rng.permutation(len(ELEMENTWISE))):
        a = str(rng.choice(mats))
        bb = str(rng.choice(broad))
        lines.append(f"M{j} = " + ELEMENTWISE[int(t)].format(a=a, b=bb))
        mats.append(f"M{j}")
        broad.append(f"M{j}")
    tail = " + sum(u * u) + w * s + sum(c * H)"
    lines.append("f = " + " + ".join(f"sum({a})" for a in mats[-4:]) + tail)
    return "\n".join(lines), values


SEEDS = list(range(8))


@pytest.mark.parametrize("seed", SEEDS)
def test_random_tensor_circuits_match_pytorch(seed: int) -> None:
    text, values = random_tensor_circuit(seed)
    trace = parse_expression(text).trace(values)
    ref = torch_tensors(text, values)
    c = trace.circuit
    for name, t in ref.items():
        np.testing.assert_allclose(trace.array(name), t.detach().numpy(), rtol=1e-12, atol=1e-12)
        grad = t.grad.numpy() if t.grad is not None else np.zeros(t.shape)
        assert trace.grad_array(name).shape == grad.shape, name
        np.testing.assert_allclose(trace.grad_array(name), grad, rtol=1e-10, atol=1e-12)
    assert {"X", "x"} <= set(c.forks())  # each read by two products
    from glassnet.graphs import registered_gates

    assert {type(c.nodes[g].gate).name for g in c.gates()} == set(registered_gates())


@pytest.mark.parametrize("seed", SEEDS[:4])
def test_random_tensor_circuits_match_finite_differences(seed: int) -> None:
    text, values = random_tensor_circuit(seed)
    trace = parse_expression(text).trace(values)
    for name, g in finite_differences(text, values).items():
        np.testing.assert_allclose(trace.grad_array(name), g, rtol=1e-5, atol=1e-6)


def test_matrix_multiply_gradient_by_hand() -> None:
    """x = [1, 2], W = [[1, 2, 3], [4, 5, 6]], f = sum(D), D = x @ W.  By hand:
    D = [1 + 8, 2 + 10, 3 + 12] = [9, 12, 15], f = 36; df/dD = [1, 1, 1];
    dW = xᵀ·dD = [[1, 1, 1], [2, 2, 2]] (x as a column times dD as a row);
    dx = dD·Wᵀ = [1 + 2 + 3, 4 + 5 + 6] = [6, 15]."""
    trace = parse_expression("D = x @ W\nf = sum(D)").trace(
        {"x": [1.0, 2.0], "W": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]}
    )
    assert trace.array("D").tolist() == [9.0, 12.0, 15.0] and trace.value("f") == 36.0
    assert trace.grad_array("W").tolist() == [[1.0, 1.0, 1.0], [2.0, 2.0, 2.0]]
    assert trace.grad_array("x").tolist() == [6.0, 15.0]


def test_broadcast_gradient_is_summed_by_hand() -> None:
    """f = sum(X * b + c) with X (2, 3), b (3,), c a number.  By hand: df/dX = b on every
    row; df/db = the sum of each column of X; df/dc = 6 (it is added to six elements)."""
    X = [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]
    trace = parse_expression("f = sum(X * b + c)").trace({"X": X, "b": [1.0, -1.0, 2.0], "c": 0.5})
    assert trace.grad_array("X").tolist() == [[1.0, -1.0, 2.0], [1.0, -1.0, 2.0]]
    assert trace.grad_array("b").tolist() == [5.0, 7.0, 9.0]
    assert trace.value("c") == 0.5 and float(trace.grad_array("c")) == 6.0


@pytest.mark.parametrize("seed", SEEDS[:4])
@pytest.mark.parametrize("round_to", [None, 3])
def test_tensor_pages_arithmetic_holds(seed: int, round_to: int | None) -> None:
    """Every numbers line of the page — matrices multiplied, broadcast parts summed back,
    forks added — reaches its printed result."""
    text, values = random_tensor_circuit(seed)
    trace = parse_expression(text).trace(values, round_to=round_to)
    assert _arithmetic(circuit_sections(trace, digits=4), 4, round_to) >= 40


def test_the_page_writes_dw_as_x_transposed_times_dd() -> None:
    from glassnet.explain.document import Calculation
    from glassnet.mathtree import tex

    trace = parse_expression("D = x @ W\nf = sum(D * D)").trace(
        {"x": [1.0, 2.0], "W": [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]]}
    )
    calcs = [b for s in circuit_sections(trace) for b in s.blocks if isinstance(b, Calculation)]
    dW = next(c for c in calcs if tex(c.lhs) == r"\frac{\partial f}{\partial W}")
    assert tex(dW.rule) == r"{x}^{T} \times \frac{\partial f}{\partial D}"
    # xᵀ is a column, df/dD = 2D = [2, 4, 6] a row: their product is dW.
    assert tex(dW.subst).startswith(r"\begin{bmatrix} 1.000 \\ 2.000 \end{bmatrix} \times")


def test_command_json_and_values_on_the_command_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    argv = ["graph", "D = x @ W; f = sum(D)", "--values", "x=[1,2],W=[[1,2,3],[4,5,6]]"]
    assert cli.main([*argv, "--json"]) == 0
    nodes = {n["name"]: n for n in json.loads(capsys.readouterr().out)["nodes"]}
    assert nodes["W"]["shape"] == [2, 3] and nodes["W"]["grad"] == [[1, 1, 1], [2, 2, 2]]
    assert nodes["f"]["shape"] == [] and nodes["f"]["value"] == 36
    path = tmp_path / "mm.toml"
    head = 'expression = "D = x @ W\\nf = sum(D)"\n'
    path.write_text(
        head + "values = { x = [1, 2], W = [[1, 2, 3], [4, 5, 6]] }\n", encoding="utf-8"
    )
    assert cli.main(["graph", str(path)]) == 0
    assert "[[1, 1, 1], [2, 2, 2]]" in capsys.readouterr().out
    assert cli.main(["explain", str(path), "-o", str(tmp_path / "mm.html")]) == 0
    assert "<svg" in (tmp_path / "mm.html").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "values", "words"),
    [
        ("f = sum(x @ W)", "x=[1,2],W=[[1,2,3]]", ["line 1", "inner sizes differ"]),
        ("f = x @ W", "x=[1,2],W=[[1,2],[3,4]]", ["one number", "sum("]),
        ("f = sum(x + W)", "x=[1,2],W=[[1,2,3],[4,5,6]]", ["shapes (2,) and (2, 3)"]),
        ("f = sum(x @ 2)", "x=[1,2]", ["a number on one side of @"]),
        ("f = sum(x)", "x=[[1,2],[3]]", ["--values x", "equal length"]),
        ("f = sum(x)", "x=[[[1]]]", ["--values x"]),
        ("f = sum(x)", "x=[]", ["--values x"]),
        ("f = sum(log(x))", "x=[1,0]", ["node q1", "not positive"]),
        ("f = sum(x / y)", "x=[1,2],y=[1,0]", ["division by zero"]),
        ("f = sum(x / y)", "x=[1,2],y=[1,2,3]", ["shapes (2,) and (3,)"]),
        ("f = sum(log(x + y))", "x=[1,2],y=[1,2,3]", ["node q1 (+)", "shapes (2,) and (3,)"]),
    ],
)
def test_bad_tensor_input_gets_one_line(
    capsys: pytest.CaptureFixture[str], text: str, values: str, words: list[str]
) -> None:
    assert cli.main(["graph", text, "--values", values]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for w in words:
        assert w in err, err


#: D = A @ B, f = sum(D * C) with A = [[1, 2], [3, 4]], B = [[0, 1], [2, 0]],
#: C = [[1, 0], [0, 2]], worked by hand:
#:   D = A·B = [[1·0 + 2·2, 1·1 + 2·0], [3·0 + 4·2, 3·1 + 4·0]] = [[4, 1], [8, 3]];
#:   f = 4·1 + 1·0 + 8·0 + 3·2 = 10;  df/dD = C = [[1, 0], [0, 2]];
#:   dA = dD·Bᵀ = [[1, 0], [0, 2]]·[[0, 2], [1, 0]] = [[0, 2], [2, 0]];
#:   dB = Aᵀ·dD = [[1, 3], [2, 4]]·[[1, 0], [0, 2]] = [[1, 6], [2, 8]].
#: The mistakes, worked the same way:
#:   dA in the wrong order, Bᵀ·dD = [[0, 2], [1, 0]]·[[1, 0], [0, 2]] = [[0, 4], [1, 0]];
#:   dA not transposed, dD·B = [[1, 0], [0, 2]]·[[0, 1], [2, 0]] = [[0, 1], [4, 0]];
#:   dB in the wrong order, dD·Aᵀ = [[1, 0], [0, 2]]·[[1, 3], [2, 4]] = [[1, 3], [4, 8]];
#:   dB not transposed, A·dD = [[1, 2], [3, 4]]·[[1, 0], [0, 2]] = [[1, 4], [3, 8]].
MATRIX_SHEET = (
    'expression = """\nD = A @ B\nf = sum(D * C)\n"""\n'
    "values = { A = [[1, 2], [3, 4]], B = [[0, 1], [2, 0]], C = [[1, 0], [0, 2]] }\n"
    "[answers]\n"
)


def _marks(tmp_path: Path, answers: str) -> dict[str, tuple[str, str | None]]:
    from glassnet.check.circuit import load_circuit_sheet, mark_circuit

    path = tmp_path / "sheet.toml"
    path.write_text(MATRIX_SHEET + answers, encoding="utf-8")
    return {e.name: (e.verdict, e.mistake) for e in mark_circuit(load_circuit_sheet(str(path)))}


def test_a_matrix_worksheet_is_marked(tmp_path: Path) -> None:
    right = "D = [[4, 1], [8, 3]]\nf = 10\ndD = [[1, 0], [0, 2]]\n"
    m = _marks(tmp_path, right + "dA = [[0, 2], [2, 0]]\ndB = [[1, 6], [2, 8]]\n")
    assert set(m.values()) == {("ok", None)} and len(m) == 5
    # D with one wrong element, then f = 4 + 0 + 0 + 2·4 = 12 from it: follows.
    m = _marks(tmp_path, "D = [[4, 1], [8, 4]]\nf = 12\n")
    assert m == {"D": ("wrong", None), "f": ("follows", None)}


@pytest.mark.parametrize(
    ("answer", "mistake"),
    [
        ("dA = [[0, 4], [1, 0]]", "matmul_wrong_order"),
        ("dA = [[0, 1], [4, 0]]", "matmul_not_transposed"),
        ("dB = [[1, 3], [4, 8]]", "matmul_wrong_order"),
        ("dB = [[1, 4], [3, 8]]", "matmul_not_transposed"),
    ],
)
def test_matrix_product_mistakes_are_named(tmp_path: Path, answer: str, mistake: str) -> None:
    m = _marks(tmp_path, "dD = [[1, 0], [0, 2]]\n" + answer + "\n")
    assert m[answer[:2]] == ("wrong", mistake)


def test_the_product_mistakes_need_shapes_that_allow_them(tmp_path: Path) -> None:
    """x (2) @ W (2×3): Wᵀ·dD or dD·W do not fit, so a wrong dx is named by neither."""
    from glassnet.check.circuit import load_circuit_sheet, mark_circuit

    path = tmp_path / "v.toml"
    head = 'expression = "D = x @ W\\nf = sum(D)"\n'
    values = "values = { x = [1, 2], W = [[1, 2, 3], [4, 5, 6]] }\n"
    answers = "[answers]\ndx = [6, 16]\ndW = [[1, 1, 1], [2, 2, 2]]\n"
    path.write_text(head + values + answers, encoding="utf-8")
    m = {e.name: (e.verdict, e.mistake) for e in mark_circuit(load_circuit_sheet(str(path)))}
    assert m == {"dW": ("ok", None), "dx": ("wrong", None)}


def test_a_matrix_answer_of_the_wrong_shape_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "sheet.toml"
    path.write_text(MATRIX_SHEET + "dA = [0, 2, 2, 0]\n", encoding="utf-8")
    assert cli.main(["check", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "answers.dA" in err and "(2, 2)" in err
    path.write_text(MATRIX_SHEET + "dA = [[0, 4], [1, 0]]\n", encoding="utf-8")
    assert cli.main(["check", str(path)]) == 0
    out = capsys.readouterr().out
    assert "dA = [[0, 4], [1, 0]]: wrong (right: [[0, 2], [2, 0]])" in out
    assert "matmul_wrong_order" in out


def test_exercises_keep_to_gates_of_numbers() -> None:
    from glassnet.graphs.generate import gate_mix

    assert all(not g.tensor_only for g in gate_mix(None))
    with pytest.raises(GlassnetError, match="gates of numbers"):
        gate_mix(["matmul"])


@pytest.fixture
def kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    return make_kernel(tmp_path, monkeypatch)


@pytest.mark.parametrize("round_to", [None, 3])
def test_tensor_notebook_runs(kernel: str, tmp_path: Path, round_to: int | None) -> None:
    """The notebook works every matrix again with NumPy (broadcast parts summed back,
    dA = G·Bᵀ and dB = Aᵀ·G written out in it) and finds glassnet's trace."""
    from glassnet.explain.circuit import circuit_notebook

    text, values = random_tensor_circuit(1)
    trace = parse_expression(text).trace(values, round_to=round_to)
    _, out = _run_notebook(circuit_notebook(trace, circuit_sections(trace)), kernel, tmp_path)
    assert "H -> X: recomputed" not in out  # H = q + b: X reaches H through q1 = X @ W
    assert "q1 -> X: recomputed, equal to the trace" in out
    assert "q1 -> W: recomputed, equal to the trace" in out
    assert "every value and gradient of the circuit reproduced" in out
