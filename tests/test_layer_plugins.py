"""Batch normalisation, layer normalisation and dropout as traced layers, against
references that share none of glassnet's code: PyTorch autograd in float64
(``nn.BatchNorm1d``, ``nn.LayerNorm``, a dropout mask applied by hand) and central finite
differences of a forward pass written again here in NumPy.
"""

from __future__ import annotations

import numpy as np
import pytest

from glassnet.errors import GlassnetError
from glassnet.layers import Dense, layer_types
from glassnet.layers.base import layer_class
from glassnet.layers.batch_norm import BatchNorm
from glassnet.layers.dropout import Dropout
from glassnet.layers.layer_norm import LayerNorm
from glassnet.network import Network
from glassnet.spec import parse_spec
from glassnet.trace import trace_step, trace_steps

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")

RTOL = 1e-10


def close(ours, theirs, what):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else np.asarray(theirs)
    scale = max(1.0, float(np.abs(theirs).max(initial=0)))
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=RTOL * scale, err_msg=what)


def _case(rng, batch, n_in, width, n_out, hidden="relu", norm="batch_norm"):
    W1 = rng.normal(0, 0.8, (n_in, width))
    b1 = rng.normal(0, 0.3, width)
    gamma = rng.uniform(0.5, 1.5, width)
    beta = rng.normal(0, 0.3, width)
    rm = rng.normal(0, 0.2, width)
    rv = rng.uniform(0.5, 2.0, width)
    mask = (rng.random((batch, width)) > 0.4).astype(float)
    W2 = rng.normal(0, 0.8, (width, n_out))
    b2 = rng.normal(0, 0.3, n_out)
    x = rng.normal(0, 1, (batch, n_in))
    y = np.eye(n_out)[rng.integers(0, n_out, batch)]
    if norm == "batch_norm":
        normed = BatchNorm(
            width, gamma=gamma, beta=beta, running_mean=rm, running_var=rv, activation=hidden
        )
    else:
        normed = LayerNorm(width, gamma=gamma, beta=beta, activation=hidden)
    net = Network(
        [
            Dense(W1, b1, "identity"),
            normed,
            Dropout(width, p=0.25, mask=mask),
            Dense(W2, b2, "softmax"),
        ]
    )
    return (
        net,
        x,
        y,
        dict(W1=W1, b1=b1, gamma=gamma, beta=beta, rm=rm, rv=rv, mask=mask, W2=W2, b2=b2),
    )


def _torch_step(p, x, y, hidden, norm, lr):
    """The same network built from torch.nn modules, one SGD step; every tensor kept."""
    t = {k: torch.tensor(v, dtype=torch.float64) for k, v in p.items()}
    width = p["gamma"].shape[0]
    lin1 = torch.nn.Linear(x.shape[1], width, dtype=torch.float64)
    lin2 = torch.nn.Linear(width, p["W2"].shape[1], dtype=torch.float64)
    if norm == "batch_norm":
        nrm = torch.nn.BatchNorm1d(width, eps=1e-5, momentum=0.1, dtype=torch.float64)
    else:
        nrm = torch.nn.LayerNorm(width, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        lin1.weight.copy_(t["W1"].T)
        lin1.bias.copy_(t["b1"])
        lin2.weight.copy_(t["W2"].T)
        lin2.bias.copy_(t["b2"])
        nrm.weight.copy_(t["gamma"])
        nrm.bias.copy_(t["beta"])
        if norm == "batch_norm":
            nrm.running_mean.copy_(t["rm"])
            nrm.running_var.copy_(t["rv"])
    X = torch.tensor(x, dtype=torch.float64)
    z1 = lin1(X)
    z1.retain_grad()
    z2 = nrm(z1)
    z2.retain_grad()
    a2 = {"relu": torch.relu, "tanh": torch.tanh, "identity": lambda v: v}[hidden](z2)
    a2.retain_grad()
    a3 = a2 * t["mask"] / (1 - 0.25)
    a3.retain_grad()
    z4 = lin2(a3)
    p4 = torch.softmax(z4, dim=1)
    loss = (-torch.tensor(y) * torch.log(p4)).sum() / x.shape[0]
    loss.backward()
    params = {
        "W1": lin1.weight.grad.T,
        "b1": lin1.bias.grad,
        "gamma": nrm.weight.grad,
        "beta": nrm.bias.grad,
        "W2": lin2.weight.grad.T,
        "b2": lin2.bias.grad,
    }
    opt = torch.optim.SGD(
        [lin1.weight, lin1.bias, nrm.weight, nrm.bias, lin2.weight, lin2.bias], lr=lr
    )
    opt.step()
    new = {
        "W1": lin1.weight.T,
        "b1": lin1.bias,
        "gamma": nrm.weight,
        "beta": nrm.bias,
        "W2": lin2.weight.T,
        "b2": lin2.bias,
    }
    return dict(loss=loss, z1=z1, z2=z2, a2=a2, a3=a3, p4=p4, grads=params, new=new, nrm=nrm)


@pytest.mark.parametrize("norm", ["batch_norm", "layer_norm"])
@pytest.mark.parametrize("hidden", ["relu", "tanh", "identity"])
@pytest.mark.parametrize("seed", range(4))
def test_normalised_network_step_equals_pytorch_autograd(norm, hidden, seed):
    rng = np.random.default_rng(100 * seed + len(hidden))
    batch = int(rng.integers(2, 7))
    net, x, y, p = _case(
        rng, batch, int(rng.integers(1, 5)), int(rng.integers(1, 6)), 3, hidden, norm
    )
    tr = trace_step(net, x, y, loss="cross_entropy", lr=0.05)
    ref = _torch_step(p, x, y, hidden, norm, 0.05)
    close(tr.loss, ref["loss"], "loss")
    close(tr.layer(1).z, ref["z1"], "z1")
    close(tr.layer(2).z, ref["z2"], "z2 (gamma·x_hat + beta)")
    close(tr.layer(2).a, ref["a2"], "a2")
    close(tr.layer(3).a, ref["a3"], "dropout's a")
    close(tr.output, ref["p4"], "output")
    # gradients reaching each layer's output and input
    close(tr.layer(3).dL_da, ref["a3"].grad, "dL/da of dropout")
    close(tr.layer(2).dL_da, ref["a2"].grad, "dL/da of the normalisation")
    close(tr.layer(2).delta, ref["z2"].grad, "delta = dL/dz of the normalisation")
    close(tr.layer(1).dL_da, ref["z1"].grad, "dL/dx of the normalisation (its input gradient)")
    for lyr, pname, ref_name in (
        (1, "W", "W1"),
        (1, "b", "b1"),
        (2, "gamma", "gamma"),
        (2, "beta", "beta"),
        (4, "W", "W2"),
        (4, "b", "b2"),
    ):
        close(tr.layer(lyr).value("d" + pname), ref["grads"][ref_name], f"d{pname} of layer {lyr}")
        close(tr.layer(lyr).value(pname + "_new"), ref["new"][ref_name], f"{pname}_new of {lyr}")
    if norm == "batch_norm":
        close(tr.layer(2).running_mean_new, ref["nrm"].running_mean, "running mean")
        close(tr.layer(2).running_var_new, ref["nrm"].running_var, "running variance (unbiased)")


def _numpy_forward(params, x, y, norm, eps=1e-5):
    """The network's loss, written again from the formulas (no glassnet code)."""
    z1 = x @ params["W1"] + params["b1"]
    axis = 0 if norm == "batch_norm" else 1
    mu = z1.mean(axis=axis, keepdims=True)
    var = ((z1 - mu) ** 2).mean(axis=axis, keepdims=True)
    xh = (z1 - mu) / np.sqrt(var + eps)
    a2 = np.tanh(params["gamma"] * xh + params["beta"])
    a3 = a2 * params["mask"] / 0.75
    z4 = a3 @ params["W2"] + params["b2"]
    e = np.exp(z4 - z4.max(axis=1, keepdims=True))
    p = e / e.sum(axis=1, keepdims=True)
    return float(-(y * np.log(p)).sum() / x.shape[0])


@pytest.mark.parametrize("norm", ["batch_norm", "layer_norm"])
def test_gradients_equal_central_finite_differences(norm):
    rng = np.random.default_rng(5)
    net, x, y, p = _case(rng, 4, 3, 4, 3, "tanh", norm)
    tr = trace_step(net, x, y, loss="cross_entropy", lr=0.1)
    h = 1e-6
    for name, (lyr, kind) in {
        "W1": (1, "dW"),
        "b1": (1, "db"),
        "gamma": (2, "dgamma"),
        "beta": (2, "dbeta"),
        "W2": (4, "dW"),
    }.items():
        numeric = np.zeros_like(p[name])
        for pos in np.ndindex(p[name].shape):
            up, down = dict(p), dict(p)
            up[name] = p[name].copy()
            down[name] = p[name].copy()
            up[name][pos] += h
            down[name][pos] -= h
            numeric[pos] = (_numpy_forward(up, x, y, norm) - _numpy_forward(down, x, y, norm)) / (
                2 * h
            )
        np.testing.assert_allclose(tr.layer(lyr).value(kind), numeric, atol=1e-7, err_msg=name)


def test_batch_norm_eval_mode_predicts_as_pytorch_eval():
    rng = np.random.default_rng(3)
    net, x, _, p = _case(rng, 5, 3, 4, 2, "relu", "batch_norm")
    ref = torch.nn.BatchNorm1d(4, eps=1e-5, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(p["gamma"]))
        ref.bias.copy_(torch.tensor(p["beta"]))
        ref.running_mean.copy_(torch.tensor(p["rm"]))
        ref.running_var.copy_(torch.tensor(p["rv"]))
    ref.eval()
    h = x @ p["W1"] + p["b1"]
    close(net.layers[1].predict(h), torch.relu(ref(torch.tensor(h))), "eval-mode batch norm")


def test_running_statistics_carry_through_steps_as_in_pytorch():
    rng = np.random.default_rng(11)
    net, x, y, p = _case(rng, 3, 2, 3, 2, "identity", "batch_norm")
    tr = trace_steps(net, x, y, loss="cross_entropy", lr=0.0001, steps=3)
    ref = torch.nn.BatchNorm1d(3, eps=1e-5, momentum=0.1, dtype=torch.float64)
    with torch.no_grad():
        ref.running_mean.copy_(torch.tensor(p["rm"]))
        ref.running_var.copy_(torch.tensor(p["rv"]))
    for step in [tr, *tr.later]:
        # the normalisation's input changes each step (W1 moves); feed torch the same input
        ref(torch.tensor(step.layer(1).z))
        close(step.layer(2).running_mean_new, ref.running_mean, "running mean, step by step")
        close(step.layer(2).running_var_new, ref.running_var, "running variance, step by step")


def test_naive_batch_norm_backward_is_a_different_rule():
    # check's alternative for the classic slip must actually differ from the right rule
    rng = np.random.default_rng(2)
    net, x, y, _ = _case(rng, 4, 2, 3, 2, "tanh", "batch_norm")
    tr = trace_step(net, x, y, loss="cross_entropy", lr=0.1)
    graph = tr.graph
    alts = net.layers[1].alternatives(2)
    (rule,) = alts["batch_norm_naive_backward"].values()
    ins = [tr.layer(2).dx_hat, tr.layer(2).x_hat, tr.layer(2).var]
    naive = rule(ins)
    right = graph.compute(("dL_da", 1), ins)
    # the naive rule is dx_hat/σ: written out here from its definition
    np.testing.assert_allclose(naive, tr.layer(2).dx_hat / np.sqrt(tr.layer(2).var + 1e-5))
    assert np.abs(naive - right).max() > 1e-3


SPEC = """
loss = "cross_entropy"
lr = 0.1
input = [[0.1, 0.2], [0.5, -0.3]]
target = [[1, 0], [0, 1]]
[[layers]]
weights = [[0.1, 0.2], [0.4, -0.5]]
[[layers]]
{extra}
[[layers]]
weights = [[0.2, -0.1], [0.3, 0.5]]
activation = "softmax"
"""


@pytest.mark.parametrize(
    ("extra", "field", "words"),
    [
        ('type = "batch_norm"\ngama = [1, 1]', "gama", "unknown field"),
        ('type = "batch_norm"\ngamma = [1, 1, 1]', "gamma", "expected 2 numbers"),
        ('type = "layer_norm"\neps = -1', "eps", "positive"),
        ('type = "dropout"\np = 0.5\nmask = [[1, 0]]', "mask", "expected 2 row(s)"),
        ('type = "dropout"\np = 0.5\nmask = [[1, 2], [1, 1]]', "mask", "0s and 1s"),
        ('type = "dropout"\np = 1.5', "p", "[0, 1)"),
        ('type = "dropout"', "p", "expected this field"),
        ('type = "conv9d"', "type", "expected one of"),
    ],
)
def test_bad_layer_fields_are_one_line_errors_naming_the_field(extra, field, words):
    with pytest.raises(GlassnetError) as err:
        parse_spec(SPEC.format(extra=extra), "net.toml")
    msg = str(err.value)
    assert "\n" not in msg
    assert "net.toml" in msg and "layer 2" in msg and field in msg and words in msg


def test_a_spec_names_each_layer_type_and_dense_is_the_default():
    spec = parse_spec(SPEC.format(extra='type = "batch_norm"\nactivation = "relu"'), "n.toml")
    assert [layer.type for layer in spec.network.layers] == ["dense", "batch_norm", "dense"]
    assert {"dense", "batch_norm", "layer_norm", "dropout"} <= set(layer_types())
    d = spec.trace().to_dict()
    assert [lt["type"] for lt in d["layers"]] == ["dense", "batch_norm", "dense"]
    for kind in ("mean", "var", "x_hat", "a", "dgamma", "dbeta", "gamma_new", "beta_new"):
        assert kind in d["layers"][1]


def test_a_drawn_dropout_mask_is_recorded_and_reproducible():
    text = SPEC.format(extra='type = "dropout"\np = 0.5\nseed = 3')
    one = parse_spec(text, "d.toml").trace()
    two = parse_spec(text, "d.toml").trace()
    mask = one.layer(2).mask
    assert set(np.unique(mask)) <= {0.0, 1.0} and mask.shape == (2, 2)
    np.testing.assert_array_equal(mask, two.layer(2).mask)
    np.testing.assert_allclose(one.layer(2).a, one.layer(1).a * mask / 0.5)


def test_fit_trains_a_normalised_network_with_the_traced_steps_rules():
    # one full-batch SGD epoch of fit is the traced step (W_new, gamma_new, running
    # statistics): fit evaluates the same step graph, then the optimiser's own update
    import glassnet as gn

    rng = np.random.default_rng(12)
    X = rng.normal(0, 1, (6, 3))
    y = np.array([0, 1, 2, 0, 1, 2])
    layers = [
        Dense(rng.normal(0, 0.7, (3, 4)), np.zeros(4), "identity"),
        BatchNorm(4, activation="relu"),
        LayerNorm(4, gamma=rng.uniform(0.5, 1.5, 4)),
        Dense(rng.normal(0, 0.7, (4, 3)), np.zeros(3), "softmax"),
    ]
    model = gn.Model([layer.copy() for layer in layers])
    traced = trace_step(Network(layers), X, np.eye(3)[y], loss="cross_entropy", lr=0.1)
    model.fit(X, y, optimizer=gn.optim.SGD(lr=0.1), epochs=1, batch_size=6, shuffle=False)
    for lyr, layer in enumerate(model.layers, start=1):
        for p in layer.params:
            np.testing.assert_allclose(
                getattr(layer, p), traced.layer(lyr).value(p + "_new"), rtol=1e-12, atol=1e-14
            )
    np.testing.assert_allclose(model.layers[1].running_mean, traced.layer(2).running_mean_new)
    # and it learns: more epochs lower the loss; predict uses the running statistics
    history = model.fit(X, y, epochs=30, batch_size=3)
    assert history["loss"][-1] < history["loss"][0]
    assert model.predict(X).shape == (6,)


def test_dropout_in_fit_is_a_layer_of_a_training_view():
    import glassnet as gn
    from glassnet.training import with_dropout

    net = gn.mlp([3, 5, 4, 2], seed=0, dropout=0.5)
    view = with_dropout(net, 0.5)
    assert [layer.type for layer in view.layers] == [
        "dense",
        "dropout",
        "dense",
        "dropout",
        "dense",
    ]
    assert [p is q for p, q in zip(view.parameters(), net.parameters(), strict=True)] == [True] * 6
    assert [layer.type for layer in net.layers] == ["dense"] * 3


# -- PyTorch modules, safetensors files and ONNX graphs --------------------------------------
def _normalised_model(rng, dtype=np.float64):
    import glassnet as gn

    return gn.Model(
        [
            Dense(rng.normal(0, 0.8, (3, 4)), rng.normal(0, 0.2, 4), "identity"),
            BatchNorm(
                4,
                gamma=rng.uniform(0.5, 1.5, 4),
                beta=rng.normal(0, 0.3, 4),
                running_mean=rng.normal(0, 0.3, 4),
                running_var=rng.uniform(0.5, 2, 4),
                activation="relu",
            ),
            LayerNorm(
                4, gamma=rng.uniform(0.5, 1.5, 4), beta=rng.normal(0, 0.3, 4), activation="tanh"
            ),
            Dense(rng.normal(0, 0.8, (4, 3)), rng.normal(0, 0.2, 3), "softmax"),
        ]
    ).copy(dtype)


def test_to_torch_builds_batch_norm_and_layer_norm_modules_that_predict_the_same():
    from glassnet.interop import from_torch, to_torch

    rng = np.random.default_rng(21)
    net = _normalised_model(rng)
    x = rng.normal(0, 1, (6, 3))
    module = to_torch(net)
    kinds = [type(m).__name__ for m in module]
    assert kinds == ["Linear", "BatchNorm1d", "ReLU", "LayerNorm", "Tanh", "Linear", "Softmax"]
    module.eval()  # batch norm with its running statistics, as predict uses them
    with torch.no_grad():
        theirs = module(torch.tensor(x)).numpy()
    np.testing.assert_allclose(net.forward(x), theirs, rtol=1e-12, atol=1e-14)
    back = from_torch(module)
    assert [layer.type for layer in back.layers] == ["dense", "batch_norm", "layer_norm", "dense"]
    np.testing.assert_array_equal(back.forward(x), net.forward(x))


def test_from_torch_reads_a_model_trained_in_pytorch_and_traces_its_step():
    from glassnet.interop import from_torch

    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Linear(3, 4),
        torch.nn.BatchNorm1d(4),
        torch.nn.ReLU(),
        torch.nn.Linear(4, 2),
        torch.nn.Softmax(dim=1),
    ).double()
    x = torch.randn(8, 3, dtype=torch.float64)
    module.train()
    module(x)  # moves the running statistics away from 0 and 1
    module.eval()
    net = from_torch(module)
    with torch.no_grad():
        np.testing.assert_allclose(net.forward(x.numpy()), module(x).numpy(), rtol=1e-12)
    # a training-mode step traced from PyTorch's own parameters
    y = np.eye(2)[[0, 1, 0, 1, 1, 0, 0, 1]]
    tr = trace_step(net, x.numpy(), y, loss="cross_entropy", lr=0.1)
    module.train()
    p = module(x)
    (-(torch.tensor(y) * torch.log(p)).sum() / 8).backward()
    close(tr.layer(2).dgamma, module[1].weight.grad, "dgamma from a PyTorch model")
    close(tr.layer(1).dW, module[0].weight.grad.T, "dW below batch norm")


def test_safetensors_round_trip_keeps_batch_norm_buffers(tmp_path):
    from glassnet.interop import load_torch_model, save_torch_model

    rng = np.random.default_rng(4)
    net = _normalised_model(rng, np.float32)
    path = tmp_path / "bn.safetensors"
    save_torch_model(net, path)
    back = load_torch_model(path)
    x = rng.normal(0, 1, (5, 3)).astype(np.float32)
    np.testing.assert_array_equal(back.forward(x), net.forward(x))
    np.testing.assert_array_equal(back.layers[1].running_var, net.layers[1].running_var)


def test_onnx_graph_with_normalisation_runs_in_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from glassnet.interop import export_onnx

    rng = np.random.default_rng(9)
    net = _normalised_model(rng, np.float32)
    path = tmp_path / "bn.onnx"
    export_onnx(net, path)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = rng.normal(0, 1, (7, 3)).astype(np.float32)
    (theirs,) = sess.run(None, {"x": x})
    np.testing.assert_allclose(theirs, net.forward(x), rtol=1e-5, atol=1e-6)


def test_graph_gradients_are_the_traced_steps_gradients():
    # fit's path for any network evaluates the same graph as the trace: same numbers
    from glassnet.layers.dropout import draw_mask

    rng = np.random.default_rng(8)
    net, x, y, _ = _case(rng, 5, 3, 4, 3, "tanh", "batch_norm")
    drawn = draw_mask(np.random.default_rng(1), (5, 4), 0.25)
    fitted = net.copy()
    p, value, grads = fitted.graph_gradients(x, y, "cross_entropy", rng=np.random.default_rng(1))
    net.layers[2] = Dropout(4, p=0.25, mask=drawn)  # the trace with the mask fit drew
    tr = trace_step(net, x, y, loss="cross_entropy", lr=0.1)
    assert value == tr.loss
    np.testing.assert_array_equal(p, tr.output)
    want = [
        tr.layer(i).value("d" + n) for i, layer in enumerate(net.layers, 1) for n in layer.params
    ]
    assert len(grads) == len(want) == len(fitted.parameters())
    for g, w in zip(grads, want, strict=True):
        np.testing.assert_array_equal(g, w)
    # one training batch moved the running statistics as the traced step records
    np.testing.assert_array_equal(fitted.layers[1].running_mean, tr.layer(2).running_mean_new)


def test_every_command_shows_a_normalised_step(tmp_path, capsys):
    # step (tables and JSON), gradcheck and explain (each format) on a spec with every
    # new layer type: each view reads the same trace
    import json

    from glassnet import cli

    spec = tmp_path / "norm.toml"
    layers = (
        'type = "batch_norm"\nactivation = "relu"\n'
        '[[layers]]\ntype = "dropout"\np = 0.5\nmask = [[1, 0], [1, 1]]\n'
        '[[layers]]\ntype = "layer_norm"'
    )
    spec.write_text(SPEC.format(extra=layers))
    assert cli.main(["step", str(spec)]) == 0
    out = capsys.readouterr().out
    assert "layer 2: batch_norm" in out and "x_hat2" in out and "mask3" in out
    assert cli.main(["step", str(spec), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert [lt["type"] for lt in d["layers"]] == [
        "dense",
        "batch_norm",
        "dropout",
        "layer_norm",
        "dense",
    ]
    # (a bias just before a normalisation has a zero gradient: its finite difference is
    # rounding noise of ~1e-11, large beside zero, hence the tolerance)
    assert cli.main(["gradcheck", str(spec), "--tolerance", "1e-2"]) == 0
    out = capsys.readouterr().out
    assert "layer 2 dgamma" in out and "layer 4 dbeta" in out
    for suffix in ("md", "html", "ipynb"):
        target = tmp_path / f"norm.{suffix}"
        assert cli.main(["explain", str(spec), "-o", str(target)]) == 0
        text = target.read_text()
        assert "batch normalisation" in text and "dropout" in text
    md = (tmp_path / "norm.md").read_text()
    # each rule in symbols from its plugin: batch norm's x̂ and its scale and shift
    assert r"x̂_{2} = \frac{a_{1} - μ_{2}}" in md and r"z_{2} = γ_{2} \cdot x̂_{2} + β_{2}" in md


def test_model_file_round_trip_keeps_every_layer_type(tmp_path):
    import glassnet as gn

    rng = np.random.default_rng(6)
    net = _normalised_model(rng, np.float32)
    net.layers.insert(2, Dropout(4, p=0.3))
    model = gn.Model(net.layers)
    path = tmp_path / "norm.npz"
    model.save(path)
    back = gn.load(path)
    assert [layer.type for layer in back.layers] == [
        "dense",
        "batch_norm",
        "dropout",
        "layer_norm",
        "dense",
    ]
    x = rng.normal(0, 1, (5, 3)).astype(np.float32)
    np.testing.assert_array_equal(back.forward(x), model.forward(x))
    np.testing.assert_array_equal(back.layers[1].running_mean, model.layers[1].running_mean)
    assert back.layers[2].p == pytest.approx(0.3)


def test_a_model_file_with_an_unknown_layer_type_is_refused_by_name(tmp_path):
    import json

    import glassnet as gn

    rng = np.random.default_rng(6)
    path = tmp_path / "m.npz"
    gn.Model(_normalised_model(rng).layers).save(path)
    with np.load(path) as f:
        arrays = dict(f)
    meta = json.loads(arrays["meta"].tobytes())
    meta["layers"][1]["type"] = "conv9d"
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    np.savez(path, **arrays)
    with pytest.raises(GlassnetError) as err:
        gn.load(path)
    msg = str(err.value)
    assert "layer 2" in msg and "conv9d" in msg and "\n" not in msg


@pytest.mark.parametrize("kind", ["batch_norm", "layer_norm", "dropout"])
def test_a_first_layer_of_any_type_is_traced(kind):
    # a first layer passes no gradient down: it records none (found by the data-edges work)
    extra = {"dropout": "p = 0.5\nmask = [[1, 0], [1, 1]]"}.get(kind, "")
    text = SPEC.replace(
        "[[layers]]\nweights = [[0.1, 0.2], [0.4, -0.5]]",
        f'[[layers]]\ntype = "{kind}"\n{extra}\n[[layers]]\nweights = [[0.1, 0.2], [0.4, -0.5]]',
        1,
    ).format(extra='type = "layer_norm"')
    tr = parse_spec(text, "first.toml").trace()
    assert tr.layer(1).type == kind
    assert "dx_hat" not in tr.layer(1).kinds
    assert "dL_da" in tr.layer(1).kinds  # its own output's gradient, from the layer above


def test_every_layer_decays_its_weights_and_kernels_only():
    """fit's optimisers decay a parameter with 2 or more axes (weights, kernels), the step
    graph a parameter in its layer's ``decayed``: every layer type must say the same."""
    import glassnet as gn

    models = [
        gn.load_spec("conv").network,
        parse_spec(SPEC.format(extra='type = "layer_norm"'), "norms.toml").network,
        parse_spec(SPEC.format(extra='type = "batch_norm"'), "norms.toml").network,
    ]
    seen = set()
    for net in models:
        for layer in net.layers:
            seen.add(layer.type)
            for name in layer.params:
                assert (name in layer.decayed) == (getattr(layer, name).ndim >= 2), (
                    layer.type,
                    name,
                )
    with_params = {t for t in layer_types() if layer_class(t).params}
    assert with_params <= seen, with_params - seen
