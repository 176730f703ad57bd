"""Property-based tests (hypothesis) of the engine at the edges, and of the spec parser.

- For logits up to ±1e4, probabilities at 0 and 1 and inputs of any sign, losses and
  gradients are finite; softmax rows sum to 1.
- Gradients match central finite differences of an independent reference where the
  function is smooth.
- Any text given as a spec yields a spec or a GlassnetError — never another exception.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import glassnet as gn
from glassnet.activations import ACTIVATIONS, get_activation
from glassnet.losses import LOSSES, get_loss
from glassnet.spec import example_path
from glassnet.trace import trace_step

import reference

finite = st.floats(min_value=-1e4, max_value=1e4, allow_nan=False, allow_infinity=False)


def matrices():
    shapes = st.tuples(st.integers(1, 5), st.integers(1, 6))
    return shapes.flatmap(lambda s: arrays(np.float64, s, elements=finite))


@settings(max_examples=300, deadline=None)
@given(z=matrices(), name=st.sampled_from(ACTIVATIONS))
def test_activations_finite_for_any_logits(z, name):
    act = get_activation(name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = act.forward(z)
        d = act.derivative(z, a)
        delta = act.backward(z, a, np.ones_like(z))
    assert np.isfinite(a).all() and np.isfinite(d).all() and np.isfinite(delta).all()
    if name == "softmax":
        np.testing.assert_allclose(a.sum(axis=1), 1.0, rtol=1e-12)
        assert (a >= 0).all()
    if name in ("sigmoid",):
        assert ((a >= 0) & (a <= 1)).all()


probabilities = st.one_of(st.sampled_from([0.0, 1.0]), st.floats(0.0, 1.0))


@settings(max_examples=300, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 4), st.integers(1, 5)),
    data=st.data(),
    loss=st.sampled_from(LOSSES),
)
def test_losses_finite_for_probabilities_at_the_edges(shape, data, loss):
    p = data.draw(arrays(np.float64, shape, elements=probabilities))
    y = data.draw(arrays(np.float64, shape, elements=probabilities))
    obj = get_loss(loss)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        terms = obj.terms(p, y)
        grad = obj.grad(p, y)
    assert np.isfinite(terms).all() and np.isfinite(grad).all()
    assert (terms >= -1e-12).all()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**31),
    hidden=st.sampled_from(["tanh", "sigmoid", "identity", "softmax"]),
    loss_output=st.sampled_from(
        [
            ("mse", "tanh"),
            ("half_sse", "identity"),
            ("cross_entropy", "softmax"),
            ("binary_cross_entropy", "sigmoid"),
        ]
    ),
    batch=st.integers(1, 4),
    x_scale=st.sampled_from([1e-3, 1.0, 30.0]),
)
def test_smooth_networks_match_finite_differences(seed, hidden, loss_output, batch, x_scale):
    """Smooth activations only (ReLU's kink makes differences meaningless near 0)."""
    loss, output = loss_output
    rng = np.random.default_rng(seed)
    net = gn.mlp([3, 4, 2], hidden=hidden, output=output, init="xavier", seed=seed, dtype="float64")
    x = rng.normal(size=(batch, 3)) * x_scale
    y = rng.random((batch, 2))
    if loss == "cross_entropy":
        y = y / y.sum(axis=1, keepdims=True)
    p = net.forward(x)
    if loss.endswith("cross_entropy") and not (1e-6 < p.min() and p.max() < 1 - 1e-6):
        return  # saturated outputs: the loss clips p there, so it is not smooth
    trace = trace_step(net, x, y, loss=loss, lr=0.1)
    Ws = [layer.W.copy() for layer in net.layers]
    bs = [layer.b.copy() for layer in net.layers]
    acts = [layer.activation.name for layer in net.layers]
    dWs, dbs = reference.finite_difference_grads(Ws, bs, acts, x, y, loss)
    for lt, dW, db in zip(trace.layers, dWs, dbs, strict=True):
        scale = max(1.0, float(np.abs(dW).max()))
        np.testing.assert_allclose(lt.dW, dW, rtol=1e-4, atol=1e-6 * scale)
        np.testing.assert_allclose(lt.db, db, rtol=1e-4, atol=1e-6 * scale)


VALID = example_path("seed").read_text()
toml_values = st.recursive(
    st.one_of(st.integers(-(10**30), 10**30), st.floats(), st.text(max_size=5), st.booleans()),
    lambda inner: st.lists(inner, max_size=4),
    max_leaves=12,
)


def _toml(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        if v != v:
            return "nan"
        if v in (float("inf"), float("-inf")):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml(e) for e in v) + "]"
    return str(v)


def _parses_or_glassnet_error(text: str) -> None:
    try:
        spec = gn.parse_spec(text, "fuzz.toml")
    except gn.GlassnetError as err:
        assert "\n" not in str(err)
        assert str(err).startswith("fuzz.toml")
        return
    spec.trace()  # whatever parses must also run (or raise GlassnetError)


@settings(max_examples=400, deadline=None)
@given(
    field=st.sampled_from(
        [
            "loss",
            "lr",
            "input",
            "target",
            "update_bias",
            "seed",
            "init",
            "weights",
            "bias",
            "activation",
            "units",
            "slope",
            "name",
        ]
    ),
    value=toml_values,
)
def test_spec_with_one_field_replaced(field, value):
    lines = VALID.splitlines()
    out, replaced = [], False
    for line in lines:
        key = line.split("=")[0].strip()
        if key == field and not replaced:
            out.append(f"{field} = {_toml(value)}")
            replaced = True
        else:
            out.append(line)
    if not replaced:
        out.insert(0, f"{field} = {_toml(value)}")
    try:
        _parses_or_glassnet_error("\n".join(out))
    except gn.GlassnetError:
        pass  # raised by trace(): fine


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_mutated_spec_text(data):
    text = VALID
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text)))
        op = data.draw(st.sampled_from(["delete", "insert", "replace"]))
        chunk = data.draw(st.text(max_size=4))
        if op == "delete":
            text = text[:pos] + text[pos + len(chunk) + 1 :]
        elif op == "insert":
            text = text[:pos] + chunk + text[pos:]
        else:
            text = text[:pos] + chunk + text[pos + len(chunk) :]
    try:
        _parses_or_glassnet_error(text)
    except gn.GlassnetError:
        pass


@pytest.mark.parametrize("units", [10**7, 10**9, 2**62])
def test_huge_declared_sizes_are_refused_before_allocating(units):
    text = (
        'loss = "mse"\nlr = 0.1\ninput = [1.0, 2.0]\ntarget = [0.0]\n'
        f"[[layers]]\nunits = {units}\n[[layers]]\nunits = 1\n"
    )
    with pytest.raises(gn.GlassnetError, match="parameters"):
        gn.parse_spec(text, "big.toml")


# -- worksheets (the parser and the marker) ------------------------------------------------
def _sheet_text() -> str:
    from glassnet.check.exercise import make_exercise

    ex = make_exercise([2, 2, 2], ["tanh", "softmax"], None, seed=3)
    return ex.spec_text + "\n[values]\nloss = 0.7\nz1 = [0.1, -0.2]\ndelta2 = [0.3, -0.3]\n"


SHEET = _sheet_text()


def _marks_or_glassnet_error(text: str) -> None:
    from glassnet.check import check, parse_worksheet

    try:
        sheet = parse_worksheet(text, "fuzz-sheet.toml")
        check(sheet)
    except gn.GlassnetError as err:
        assert "\n" not in str(err) and str(err).startswith("fuzz-sheet.toml"), str(err)


@settings(max_examples=200, deadline=None)
@given(data=st.data())
def test_mutated_worksheet_text(data):
    text = SHEET
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(text)))
        chunk = data.draw(st.sampled_from(["[", "]", ",", "=", "\n", '"', "@", "-1e999", "nan"]))
        text = text[:pos] + chunk + text[pos + data.draw(st.integers(0, 3)) :]
    _marks_or_glassnet_error(text)


@settings(max_examples=200, deadline=None)
@given(
    name=st.sampled_from(
        [
            "z1",
            "a2",
            "dW1",
            "db2",
            "da1_dz1",
            "delta2",
            "loss",
            "loss_terms",
            "output",
            "W2_new",
            "h1_in",
            "O_out",
            "dW_jk",
            "z9",
            "x",
            "y",
            "dW0",
            "nope",
        ]
    ),
    tag=st.sampled_from(["", "@copy", "@", "@@"]),
    value=toml_values,
)
def test_worksheet_with_any_value_under_any_name(name, tag, value):
    _marks_or_glassnet_error(f'{SHEET}"{name}{tag}" = {_toml(value)}\n')
