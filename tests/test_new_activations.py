"""ELU and GELU, each one class in one file of glassnet/activations, work everywhere.

The step graph issue's proof: nothing outside ``activations/elu.py`` and
``activations/gelu.py`` knows them, yet step, gradcheck, explain, check, train, PyTorch
and ONNX all handle them.  References: PyTorch float64 autograd (``F.elu``, ``F.gelu``
with its default exact erf form) and central finite differences of the plain NumPy
definitions in tests/reference.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.activations import get_activation
from glassnet.check import check_worksheet
from glassnet.check.worksheet import parse_worksheet
from glassnet.explain import explain
from glassnet.gradcheck import gradcheck
from glassnet.trace import trace_step

NEW = ("elu", "gelu")

SPEC = """
name = "new activations"
input = [[0.3, -1.2, 0.8], [-0.5, 0.4, 1.5]]
target = [[0.2, 0.9], [0.7, -0.1]]
loss = "half_sse"
lr = 0.1
[[layers]]
activation = "{act}"
weights = [[0.5, -0.3, 0.8], [0.2, 0.7, -0.6], [-0.4, 0.1, 0.9]]
bias = [0.1, -0.2, 0.05]
[[layers]]
activation = "identity"
weights = [[0.3, -0.5], [0.6, 0.2], [-0.7, 0.4]]
bias = [0.0, 0.1]
"""


def _spec(tmp_path: Path, act: str) -> Path:
    path = tmp_path / f"{act}.toml"
    path.write_text(SPEC.format(act=act))
    return path


def _torch():
    return pytest.importorskip(
        "torch", reason="PyTorch is not installed (pip install torch==2.13.0)"
    )


@pytest.mark.parametrize("name", NEW)
def test_forward_and_derivative_match_torch_float64(name):
    torch = _torch()
    fn = {"elu": torch.nn.functional.elu, "gelu": torch.nn.functional.gelu}[name]
    z = np.linspace(-6, 6, 97).reshape(1, -1)
    z = np.concatenate([z, [[0.0] * 97]])  # the kink of ELU at exactly 0
    t = torch.tensor(z, requires_grad=True)
    a_t = fn(t)
    a_t.sum().backward()
    act = get_activation(name)
    a = act.forward(z)
    np.testing.assert_allclose(a, a_t.detach().numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(act.derivative(z, a), t.grad.numpy(), rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("name", NEW)
def test_extreme_inputs_stay_finite_without_warnings(name):
    act = get_activation(name)
    z = np.array([[-1e4, -800.0, 0.0, 800.0, 1e4, 1e200, -1e200]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is benign
        a = act.forward(z)
        d = act.derivative(z, a)
    assert np.isfinite(a).all() and np.isfinite(d).all()


def test_elu_alpha_is_an_option_of_the_spec(tmp_path):
    text = SPEC.format(act="elu").replace('activation = "elu"', 'activation = "elu"\nalpha = 0.5')
    spec = gn.parse_spec(text, label="elu.toml")
    assert spec.network.layers[0].activation.to_dict() == {"name": "elu", "alpha": 0.5}
    z = spec.trace().layer(1).z
    # ELU with α = 0.5, from its definition
    want = np.where(z > 0, z, 0.5 * (np.exp(z) - 1))
    np.testing.assert_allclose(spec.trace().layer(1).a, want, rtol=1e-14)
    bad = SPEC.format(act="relu").replace('activation = "relu"', 'activation = "relu"\nalpha = 1')
    with pytest.raises(gn.GlassnetError, match="'alpha' only with elu"):
        gn.parse_spec(bad, label="bad.toml")


@pytest.mark.parametrize("name", NEW)
def test_step_cli_and_gradcheck(tmp_path, name):
    path = _spec(tmp_path, name)
    out = subprocess.run(
        [sys.executable, "-m", "glassnet", "step", str(path), "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    data = json.loads(out.stdout)
    assert data["layers"][0]["activation"] == name
    spec = gn.load_spec(str(path))
    rows = gradcheck(spec.network, spec.x, spec.y, spec.loss)
    assert max(r.max_rel_error for r in rows) < 1e-6


@pytest.mark.parametrize("name", NEW)
def test_trace_matches_finite_differences_of_the_plain_definition(name):
    from reference import activation

    rng = np.random.default_rng(3)
    W1, b1 = rng.normal(size=(3, 4)), rng.normal(size=4)
    W2, b2 = rng.normal(size=(4, 2)), rng.normal(size=2)
    x, y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    net = gn.Network([gn.Dense(W1, b1, name), gn.Dense(W2, b2, "identity")])
    trace = trace_step(net, x, y, loss="half_sse", lr=0.1)

    def loss_of(W: np.ndarray) -> float:
        p = activation(name, x @ W + b1) @ W2 + b2
        return float((0.5 * (y - p) ** 2).sum() / x.shape[0])

    numeric = np.zeros_like(W1)
    h = 1e-6
    for idx in np.ndindex(W1.shape):
        up, down = W1.copy(), W1.copy()
        up[idx] += h
        down[idx] -= h
        numeric[idx] = (loss_of(up) - loss_of(down)) / (2 * h)
    np.testing.assert_allclose(trace.layer(1).dW, numeric, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", NEW)
def test_explain_writes_their_rules_words_and_numbers(tmp_path, name):
    trace = gn.load_spec(str(_spec(tmp_path, name))).trace()
    md = explain(trace, format="md")
    words = get_activation(name).words
    # The page writes the activation's own words up to its formula, then the formula as
    # maths (issue 26: no formula as plain text): "ELU" / "GELU", then the rule.
    assert words.partition(",")[0] in md
    assert ("erf" in md) if name == "gelu" else ("otherwise" in md)
    # The first unit's output, as the document prints it (4 significant digits).
    a = float(trace.layer(1).a[0, 0])
    assert f"{a:.4g}" in md
    html = explain(trace, format="html")
    assert "<math" in html and words.split(",")[0] in html


@pytest.mark.parametrize("name", NEW)
def test_check_names_a_generic_mistake_on_them(tmp_path, name):
    path = _spec(tmp_path, name)
    trace = gn.load_spec(str(path)).trace()
    lt = trace.layer(1)
    # The activation's derivative left out: delta1 written as dL/da1 (computed here,
    # independently, from the trace's own dL_da — the slip a student makes).
    slip = lt.dL_da
    rows = "[" + ", ".join("[" + ", ".join(f"{v:.6f}" for v in r) + "]" for r in slip) + "]"
    dL = "[" + ", ".join("[" + ", ".join(f"{v:.6f}" for v in r) + "]" for r in lt.dL_da) + "]"
    text = path.read_text() + f"\n[values]\ndL_da1 = {dL}\ndelta1 = {rows}\n"
    sheet = parse_worksheet(text, label="sheet.toml")
    entries = check_worksheet(sheet).by_name("delta1")
    assert len(entries) == slip.size
    # Where da/dz is 1 (ELU for z > 0) the slip changes nothing and the value is right.
    slipped = [e for e in entries if abs(lt.da_dz[e.index] - 1) > 1e-3]
    assert slipped, "the network has no unit where the slip shows"
    for e in entries:
        if e in slipped:
            assert (e.verdict, e.diagnosis) == ("wrong", "missing_activation_derivative")
        else:
            assert e.verdict == "ok"


@pytest.mark.parametrize("name", NEW)
def test_fit_trains_with_them_and_a_step_equals_the_trace(name):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    net = gn.mlp([3, 8, 2], hidden=name, output="softmax", seed=0, dtype="float64")
    before = net.copy()
    trace = trace_step(before, X[:16], np.eye(2)[y[:16]], loss="cross_entropy", lr=0.1)
    net.fit(X[:16], y[:16], optimizer=gn.optim.SGD(lr=0.1), epochs=1, batch_size=16, shuffle=False)
    for layer, lt in zip(net.layers, trace.layers, strict=True):
        np.testing.assert_allclose(layer.W, lt.W_new, rtol=1e-12, atol=1e-14)
    history = net.fit(X, y, optimizer=gn.optim.Adam(lr=0.05), epochs=20, batch_size=16)
    assert history["loss"][-1] < history["loss"][0]


@pytest.mark.parametrize("name", NEW)
def test_torch_round_trip_and_onnx(tmp_path, name):
    torch = _torch()
    onnxruntime = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from glassnet.interop import (
        export_onnx,
        from_torch,
        load_torch_model,
        save_torch_model,
        to_torch,
    )

    net = gn.mlp([3, 5, 2], hidden=name, output="softmax", seed=1, dtype="float64")
    x = np.random.default_rng(2).normal(size=(7, 3))
    model = to_torch(net)
    assert type(model[1]).__name__ == {"elu": "ELU", "gelu": "GELU"}[name]
    with torch.no_grad():
        p = model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(p, net.forward(x), rtol=1e-13)
    back = from_torch(model)
    assert back.layers[0].activation.name == name
    save_torch_model(net, tmp_path / "m.safetensors")
    again = load_torch_model(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(again.forward(x), net.forward(x))

    export_onnx(net, tmp_path / "m.onnx")
    sess = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    (out,) = sess.run(None, {"x": x.astype(np.float32)})
    np.testing.assert_allclose(out, net.forward(x), rtol=1e-5, atol=1e-6)


def test_torch_gelu_tanh_approximation_is_refused():
    torch = _torch()
    from glassnet.interop import from_torch

    model = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.GELU(approximate="tanh"))
    with pytest.raises(gn.GlassnetError, match="exact erf form"):
        from_torch(model)


def test_gelu_rule_constants_carry_their_values():
    # √2 in the symbolic rule is a constant whose number the arithmetic check can use.
    from glassnet.mathtree import Const, Sym

    rule = get_activation("gelu").rule(Sym("z", value=0.5))
    consts = []

    def walk(node):
        if isinstance(node, Const) and node.value is not None:
            consts.append(node.value)
        for v in getattr(node, "__dict__", {}).values():
            for item in v if isinstance(v, tuple) else (v,):
                if hasattr(item, "__dict__"):
                    walk(item)

    walk(rule)
    assert math.sqrt(2.0) in consts
