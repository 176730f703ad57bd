"""Convolution and pooling layers (issue 21, phase 1): every quantity of a conv → pool →
dense step against PyTorch float64 autograd (``torch.nn.functional``, which shares no
code with glassnet) and against central finite differences of the loss; the bundled
example; the trace's JSON; model files; bad specs as one-line errors.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from glassnet import cli, io
from glassnet.errors import GlassnetError
from glassnet.layers import layer_types
from glassnet.layers.avg_pool2d import AvgPool2d
from glassnet.layers.conv2d import Conv2d
from glassnet.layers.dense import Dense
from glassnet.layers.flatten import Flatten
from glassnet.layers.max_pool2d import MaxPool2d
from glassnet.network import Network
from glassnet.spec import example_path, load_spec, parse_spec
from glassnet.trace import trace_step

torch = pytest.importorskip("torch", reason="the reference step is PyTorch autograd")
F = torch.nn.functional

LR = 0.1


def _net(
    rng: np.random.Generator,
    *,
    c_in: int,
    c_mid: int,
    c_out: int,
    stride: int,
    padding: int,
    pool: str,
    pool_stride: int | None = None,
    hw: int = 9,
    classes: int = 3,
) -> Network:
    """conv(3×3, stride, padding, relu) → conv(2×2, stride 1, padding, tanh) → pool(2)
    → flatten → dense softmax: two convolutions, so the input gradient of one is checked."""
    conv1 = Conv2d(
        rng.normal(size=(c_mid, c_in, 3, 3)) * 0.5,
        rng.normal(size=c_mid) * 0.1,
        (c_in, hw, hw),
        stride=stride,
        padding=padding,
        activation="relu",
    )
    conv2 = Conv2d(
        rng.normal(size=(c_out, c_mid, 2, 2)) * 0.5,
        rng.normal(size=c_out) * 0.1,
        conv1.out_shape,
        padding=padding,
        activation="tanh",
    )
    pool_cls = MaxPool2d if pool == "max" else AvgPool2d
    pooled = pool_cls(conv2.out_shape, size=2, stride=pool_stride)
    flat = Flatten(pooled.out_shape)
    dense = Dense(rng.normal(size=(flat.n_out, classes)) * 0.5, rng.normal(size=classes), "softmax")
    return Network([conv1, conv2, pooled, flat, dense])


def _torch_step(net: Network, x: np.ndarray, y: np.ndarray, pool: str) -> dict[str, np.ndarray]:
    """The same step in PyTorch float64: forward with torch.nn.functional, the loss as
    −Σ y·log softmax / batch, autograd for every gradient, SGD for the update."""
    conv1, conv2, pooled, _, dense = net.layers
    t = {}
    params = {}
    for name, layer in (("1", conv1), ("2", conv2), ("5", dense)):
        params["W" + name] = torch.tensor(layer.W, requires_grad=True)
        params["b" + name] = torch.tensor(layer.b, requires_grad=True)
    xt = torch.tensor(x)
    z1 = F.conv2d(xt, params["W1"], params["b1"], stride=conv1.stride, padding=conv1.padding)
    a1 = torch.relu(z1)
    z2 = F.conv2d(a1, params["W2"], params["b2"], stride=1, padding=conv2.padding)
    a2 = torch.tanh(z2)
    if pool == "max":
        a3, idx = F.max_pool2d(a2, 2, stride=pooled.stride, return_indices=True)
        t["argmax3"] = idx.numpy()
    else:
        a3 = F.avg_pool2d(a2, 2, stride=pooled.stride)
    a4 = a3.flatten(1)
    z5 = a4 @ params["W5"] + params["b5"]
    a5 = torch.softmax(z5, dim=1)
    loss = -(torch.tensor(y) * torch.log(a5)).sum() / x.shape[0]
    for v in (z1, a1, z2, a2, a3, a4, z5, a5):
        v.retain_grad()
    loss.backward()
    t.update(
        loss=loss.detach().numpy(),
        z1=z1.detach().numpy(), a1=a1.detach().numpy(), delta1=z1.grad.numpy(),
        dL_da1=a1.grad.numpy(),
        z2=z2.detach().numpy(), a2=a2.detach().numpy(), delta2=z2.grad.numpy(),
        dL_da2=a2.grad.numpy(),
        a3=a3.detach().numpy(), dL_da3=a3.grad.numpy(),
        a4=a4.detach().numpy(), dL_da4=a4.grad.numpy(),
        z5=z5.detach().numpy(), a5=a5.detach().numpy(), delta5=z5.grad.numpy(),
    )  # fmt: skip
    for name, p in params.items():
        t["d" + name] = p.grad.numpy()
        t[name + "_new"] = (p - LR * p.grad).detach().numpy()
    return t


def _one_hot(rng: np.random.Generator, batch: int, classes: int) -> np.ndarray:
    return np.eye(classes)[rng.integers(0, classes, size=batch)]


CASES = [
    (stride, padding, channels, batch, pool)
    for stride in (1, 2)
    for padding in (0, 1)
    for channels in ((1, 1, 1), (2, 3, 1), (3, 2, 3))
    for batch in (1, 3)
    for pool in ("max", "avg")
]


@pytest.mark.parametrize(("stride", "padding", "channels", "batch", "pool"), CASES)
def test_every_quantity_equals_pytorch_float64_autograd(stride, padding, channels, batch, pool):
    rng = np.random.default_rng(stride * 100 + padding * 10 + sum(channels) + batch)
    c_in, c_mid, c_out = channels
    net = _net(rng, c_in=c_in, c_mid=c_mid, c_out=c_out, stride=stride, padding=padding,
               pool=pool)  # fmt: skip
    x = rng.normal(size=(batch, c_in, 9, 9))
    y = _one_hot(rng, batch, 3)
    tr = trace_step(net, x, y, loss="cross_entropy", lr=LR)
    ref = _torch_step(net, x, y, pool)
    assert tr.loss == pytest.approx(float(ref["loss"]), rel=1e-12)
    compared = 0
    for key, want in ref.items():
        if key == "loss":
            continue
        # "W1_new" -> ("W_new", 1), "argmax3" -> ("argmax", 3): one digit, the layer
        i = next(i for i, ch in enumerate(key) if ch.isdigit())
        kind, layer = key[:i] + key[i + 1 :], int(key[i])
        got = tr.layers[layer - 1].value(kind)
        compared += 1
        assert got.shape == want.shape, key
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12, err_msg=key)
    assert compared == len(ref) - 1 >= 27  # every quantity PyTorch gave, loss apart


def test_overlapping_max_pool_routes_to_each_windows_max_as_pytorch():
    # stride 1 < size 2: a cell can be the maximum of several windows; its gradient is
    # the sum of theirs (np.add.at), as autograd's
    rng = np.random.default_rng(7)
    net = _net(rng, c_in=2, c_mid=2, c_out=2, stride=1, padding=0, pool="max", pool_stride=1)
    x = rng.normal(size=(3, 2, 9, 9))
    y = _one_hot(rng, 3, 3)
    tr = trace_step(net, x, y, loss="cross_entropy", lr=LR)
    ref = _torch_step(net, x, y, "max")
    np.testing.assert_array_equal(tr.layers[2].value("argmax"), ref["argmax3"])
    np.testing.assert_allclose(tr.layers[1].value("dL_da"), ref["dL_da2"], rtol=1e-10,
                               atol=1e-12)  # fmt: skip
    np.testing.assert_allclose(tr.layers[0].value("dW"), ref["dW1"], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("pool", ["max", "avg"])
@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (2, 1)])
def test_gradients_equal_central_finite_differences(pool, stride, padding):
    """Each parameter's gradient against (L(p + h) − L(p − h)) / 2h of the loss, entry by
    entry, the loss computed from the network's output by hand here."""
    rng = np.random.default_rng(11 + stride + padding)
    net = _net(rng, c_in=2, c_mid=2, c_out=2, stride=stride, padding=padding, pool=pool, hw=7)
    x = rng.normal(size=(2, 2, 7, 7))
    y = _one_hot(rng, 2, 3)
    tr = trace_step(net, x, y, loss="cross_entropy", lr=LR)

    def loss() -> float:
        p = net.forward(x)
        return float(-(y * np.log(p)).sum() / x.shape[0])

    h = 1e-6
    for index, layer in enumerate(net.layers, start=1):
        for name in layer.params:
            p = getattr(layer, name)
            numeric = np.zeros_like(p)
            for i in np.ndindex(*p.shape):
                keep = p[i]
                p[i] = keep + h
                up = loss()
                p[i] = keep - h
                down = loss()
                p[i] = keep
                numeric[i] = (up - down) / (2 * h)
            got = tr.layers[index - 1].value("d" + name)
            np.testing.assert_allclose(got, numeric, rtol=1e-5, atol=1e-8,
                                       err_msg=f"d{name}{index}")  # fmt: skip


def test_the_bundled_example_is_the_issues_step_worked_by_hand():
    spec = load_spec("conv")
    tr = spec.trace()
    conv = tr.layers[0]
    # z at the first position, by hand: 0.1·0.1 − 0.2·0.2 + 0.3·0.5 + 0.4·0.6 = 0.36; the
    # kernel's row sums move it by +0.06 a column and +0.24 a row (the input grows by 0.1
    # a column and 0.4 a row): 0.1 − 0.2 + 0.3 + 0.4 = 0.6, so 0.06; ×4 = 0.24
    want = 0.36 + 0.06 * np.arange(3)[None, :] + 0.24 * np.arange(3)[:, None]
    np.testing.assert_allclose(conv.value("z")[0, 0], want, atol=1e-12)
    # max pooling over the top-left 2×2 of the 3×3 map (stride 2 leaves the rest):
    # its largest is 0.66 at row 1, column 1 — flat index 1·3 + 1 = 4
    assert tr.layers[1].value("argmax").tolist() == [[[[4]]]]
    assert tr.layers[1].value("a").tolist() == [[[[pytest.approx(0.66)]]]]
    # δ reaches the arg-max cell only; dW is that δ times the window it saw
    d = conv.value("delta")[0, 0]
    assert np.count_nonzero(d) == 1 and d[1, 1] != 0
    np.testing.assert_allclose(
        conv.value("dW")[0, 0], d[1, 1] * np.array([[0.6, 0.7], [1.0, 1.1]]), atol=1e-12
    )
    ref_net = spec.network
    ref = _torch_issue(ref_net, spec.x, spec.y)
    assert tr.loss == pytest.approx(ref, rel=1e-12)


def _torch_issue(net: Network, x: np.ndarray, y: np.ndarray) -> float:
    conv, _, _, dense = net.layers
    a = torch.relu(F.conv2d(torch.tensor(x), torch.tensor(conv.W), torch.tensor(conv.b)))
    a = F.max_pool2d(a, 2).flatten(1)
    p = torch.softmax(a @ torch.tensor(dense.W) + torch.tensor(dense.b), dim=1)
    return float(-(torch.tensor(y) * torch.log(p)).sum() / x.shape[0])


def test_step_json_and_gradcheck_commands(capsys):
    assert cli.main(["step", "conv", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    tr = load_spec("conv").trace()
    assert np.array(data["input"]).shape == (1, 1, 4, 4)
    for lt, d in zip(tr.layers, data["layers"], strict=True):
        assert d["type"] == lt.layer.type
        for kind in lt.kinds:
            np.testing.assert_array_equal(np.array(d[kind]), lt.value(kind), err_msg=kind)
    assert cli.main(["step", "conv"]) == 0
    assert "argmax2" in capsys.readouterr().out
    assert cli.main(["gradcheck", "conv"]) == 0


def test_model_file_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    net = _net(rng, c_in=2, c_mid=3, c_out=2, stride=2, padding=1, pool="max")
    path = tmp_path / "cnn.npz"
    io.write(path, net)
    back = io.read(path).network
    assert [type(layer) for layer in back.layers] == [type(layer) for layer in net.layers]
    for a, b in zip(net.layers, back.layers, strict=True):
        assert a.config() == b.config()
        for name, v in a.arrays().items():
            np.testing.assert_array_equal(b.arrays()[name], v)
    x = rng.normal(size=(2, 2, 9, 9))
    np.testing.assert_array_equal(back.forward(x), net.forward(x))


def test_spec_round_trip_through_to_spec():
    """Each layer's to_spec, written as TOML and read back, is the same step."""
    from glassnet.toml_writer import to_toml

    spec = load_spec("conv")
    data = {
        "loss": spec.loss,
        "lr": spec.lr,
        "input": spec.x.tolist(),
        "target": spec.y.tolist(),
        "layers": [{"type": layer.type, **layer.to_spec()} for layer in spec.network.layers],
    }
    back = parse_spec(to_toml(data), "written.toml")
    a, b = spec.trace(), back.trace()
    for la, lb in zip(a.layers, b.layers, strict=True):
        assert la.kinds == lb.kinds
        for kind in la.kinds:
            np.testing.assert_array_equal(la.value(kind), lb.value(kind), err_msg=kind)


CONV_SPEC = """
loss = "cross_entropy"
lr = 0.1
input = [[[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]]]]
target = [[1.0, 0.0]]
[[layers]]
type = "conv2d"
{conv}
[[layers]]
type = "flatten"
[[layers]]
units = 2
activation = "softmax"
"""


@pytest.mark.parametrize(
    ("conv", "field", "words"),
    [
        ("weights = [[[[1.0, 1.0, 1.0, 1.0]]]]", "weights", "at most 3×3"),
        ("weights = [[[1.0, 1.0], [1.0, 1.0]]]", "weights", "4 levels"),
        ("weights = [[[[1.0]]]]\nstride = 1.5", "stride", "whole number"),
        ("weights = [[[[1.0]]]]\npadding = -1", "padding", "whole number"),
        ("weights = [[[[1.0]], [[1.0]]]]", "weights", "1 input channel"),
        ("weights = [[[[1.0]]]]\nbias = [0.0, 1.0]", "bias", "one per output channel"),
        ("weights = [[[[1.0]]]]\nsize = 2", "size", "expected only the fields"),
        ("weights = [[[[1.0, 2.0], [3.0]]]]", "weights", "rectangular"),
        ("channels = 2", "kernel_size", "with 'channels'"),
        ("channels = 2\nkernel_size = 2\nweights = [[[[1.0]]]]", "channels", "not both"),
        ("bias = [0.0]", "weights", "'channels' and 'kernel_size'"),
    ],
)
def test_bad_conv_specs_are_one_line_errors_naming_the_field(conv, field, words):
    with pytest.raises(GlassnetError) as err:
        parse_spec(CONV_SPEC.format(conv=conv), "bad.toml")
    assert err.value.field == field
    assert err.value.layer == 1
    assert words in str(err.value)
    assert "\n" not in str(err.value)


def test_a_dense_layer_on_feature_maps_asks_for_a_flatten():
    text = CONV_SPEC.replace('type = "flatten"', "units = 3").format(conv="weights = [[[[1.0]]]]")
    with pytest.raises(GlassnetError, match="flatten") as err:
        parse_spec(text, "bad.toml")
    assert (err.value.layer, err.value.field) == (2, "type")


def test_a_conv_on_rows_of_numbers_asks_for_feature_maps():
    text = CONV_SPEC.replace("[[[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]]]]", "[0.1]")
    with pytest.raises(GlassnetError, match="channels, height, width") as err:
        parse_spec(text.format(conv="weights = [[[[1.0]]]]"), "bad.toml")
    assert (err.value.layer, err.value.field) == (1, "type")


def test_an_input_of_three_levels_is_refused_naming_the_input():
    text = CONV_SPEC.replace("input = [[[[", "input = [[[").replace("]]]]\ntarget", "]]]\ntarget")
    with pytest.raises(GlassnetError, match="3 levels") as err:
        parse_spec(text.format(conv="weights = [[[[1.0]]]]"), "bad.toml")
    assert err.value.field == "input"


def test_a_pool_window_larger_than_the_map_is_refused():
    text = CONV_SPEC.replace('type = "flatten"', 'type = "max_pool2d"\nsize = 4\n[[layers]]\n'
                             'type = "flatten"')  # fmt: skip
    with pytest.raises(GlassnetError, match="window at most 3") as err:
        parse_spec(text.format(conv="weights = [[[[1.0]]]]"), "bad.toml")
    assert (err.value.layer, err.value.field) == (2, "size")


def test_random_kernels_from_channels_and_kernel_size():
    text = CONV_SPEC.format(conv='channels = 4\nkernel_size = 2\nactivation = "relu"')
    spec = parse_spec(text, "rand.toml")
    conv = spec.network.layers[0]
    assert conv.W.shape == (4, 1, 2, 2) and conv.out_shape == (4, 2, 2)
    assert spec.network.layers[2].n_in == 16
    # xavier's range with a kernel's fans as torch.nn.init counts them (fan-in
    # in·kh·kw = 4, fan-out out·kh·kw = 16): ±√(6 / 20)
    limit = np.sqrt(6 / (1 * 2 * 2 + 4 * 2 * 2))
    assert np.abs(conv.W).max() <= limit
    assert np.abs(conv.W).max() > 0.5 * limit


def test_a_view_that_cannot_show_a_conv_layer_says_so_in_one_line():
    """Explain, check and the studio show conv steps (test_conv_explain.py,
    test_conv_check.py, test_studio_conv_api.py); any other view refuses the network in
    one line naming the layer."""
    spec = parse_spec(example_path("conv").read_text(encoding="utf-8"), "conv.toml")
    for view in ("explain", "check", "the studio"):
        spec.network.require_explained(view)
    with pytest.raises(GlassnetError) as info:
        spec.network.require_explained("a view without feature maps")
    err = str(info.value)
    assert "conv2d" in err and "layer 1" in err and "\n" not in err


def test_every_new_layer_type_is_registered():
    assert {"conv2d", "max_pool2d", "avg_pool2d", "flatten"} <= set(layer_types())


# -- interop ------------------------------------------------------------------------------


def _torch_cnn():
    """A small CNN built in PyTorch itself (float64), every new module in it."""
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(2, 3, 3, stride=2, padding=1),
        torch.nn.ReLU(),
        torch.nn.Conv2d(3, 4, 2),
        torch.nn.Tanh(),
        torch.nn.MaxPool2d(2),
        torch.nn.AvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(4, 3),
        torch.nn.Softmax(dim=-1),
    ).double()


def test_from_torch_reads_a_pytorch_cnn_and_predicts_as_pytorch():
    from glassnet.interop.torch import from_torch

    module = _torch_cnn()
    net = from_torch(module, input_shape=(2, 7, 7))
    assert [layer.type for layer in net.layers] == [
        "conv2d", "conv2d", "max_pool2d", "avg_pool2d", "flatten", "dense",
    ]  # fmt: skip
    np.testing.assert_array_equal(net.layers[0].W, module[0].weight.detach().numpy())
    np.testing.assert_array_equal(net.layers[1].b, module[2].bias.detach().numpy())
    x = np.random.default_rng(1).normal(size=(5, 2, 7, 7))
    want = module(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(net.forward(x), want, rtol=1e-12, atol=1e-15)


def test_to_torch_and_back_keep_every_number_exactly(tmp_path):
    from glassnet.interop.torch import from_torch, load_torch_model, save_torch_model, to_torch

    net = from_torch(_torch_cnn(), input_shape=(2, 7, 7))
    module = to_torch(net)
    assert [type(m).__name__ for m in module] == [
        "Conv2d", "ReLU", "Conv2d", "Tanh", "MaxPool2d", "AvgPool2d", "Flatten", "Linear",
        "Softmax",
    ]  # fmt: skip
    x = np.random.default_rng(2).normal(size=(3, 2, 7, 7))
    np.testing.assert_allclose(
        module(torch.tensor(x)).detach().numpy(), net.forward(x), rtol=1e-12, atol=1e-15
    )
    save_torch_model(net, tmp_path / "cnn.safetensors")
    from_file = load_torch_model(tmp_path / "cnn.safetensors")
    for back in (from_torch(module, input_shape=(2, 7, 7)), from_file):
        for a, b in zip(net.layers, back.layers, strict=True):
            assert a.config() == b.config()
            for name, v in a.arrays().items():
                np.testing.assert_array_equal(b.arrays()[name], v)


def test_from_torch_without_the_input_shape_names_the_module():
    from glassnet.interop.torch import from_torch

    with pytest.raises(GlassnetError, match="channels, height, width") as err:
        from_torch(_torch_cnn())
    assert "Conv2d" in str(err.value.field)


def test_onnx_graph_runs_in_onnxruntime_as_glassnet_predicts():
    ort = pytest.importorskip("onnxruntime", reason="the ONNX check runs the graph")
    from glassnet.interop.onnx import to_onnx
    from glassnet.interop.torch import from_torch

    net = from_torch(_torch_cnn(), input_shape=(2, 7, 7))
    proto = to_onnx(net)
    ops = [n.op_type for n in proto.graph.node]
    for op in ("Conv", "MaxPool", "AveragePool", "Flatten"):
        assert op in ops
    sess = ort.InferenceSession(proto.SerializeToString())
    x = np.random.default_rng(4).normal(size=(4, 2, 7, 7))
    got = sess.run(None, {"x": x.astype(np.float32)})[0]
    np.testing.assert_allclose(got, net.forward(x), rtol=1e-4, atol=1e-6)


def test_step_takes_feature_maps_from_the_input_option(capsys):
    eye = json.dumps([[np.eye(4).tolist()]])
    assert cli.main(["step", "conv", "--json", "--input", eye]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["input"] == [[np.eye(4).tolist()]]
    # rows where the first layer takes feature maps: one line naming the option
    assert cli.main(["step", "conv", "--input", "1,2,3"]) == 2
    err = capsys.readouterr().err
    assert "--input" in err and "1×4×4" in err and len(err.strip().splitlines()) == 1


def test_the_studio_opens_the_conv_example_and_refuses_its_practice():
    # Explore shows a CNN (tests/test_studio_conv_api.py); a worksheet is for dense layers
    pytest.importorskip("starlette", reason="starlette is not installed (the studio extra)")
    pytest.importorskip("httpx", reason="httpx is not installed (Starlette's TestClient needs it)")
    from starlette.testclient import TestClient

    from glassnet.studio.app import create_app

    client = TestClient(create_app(), base_url="http://127.0.0.1")
    reply = client.get("/api/example/conv")
    assert reply.status_code == 200
    sheet = client.post("/api/sheet", json={"spec": reply.json()["spec"]})
    assert 400 <= sheet.status_code < 500
    assert "conv2d" in sheet.text


@pytest.mark.parametrize("first", ["max_pool2d", "avg_pool2d", "flatten"])
def test_a_first_layer_without_parameters_is_traced(first):
    # a first layer passes no gradient down: it records its own output's gradient only
    pool = f'[[layers]]\ntype = "{first}"\nsize = 2\n' if first != "flatten" else ""
    text = f"""
loss = "mse"
lr = 0.1
input = [[[[1.0, 2.0], [3.0, 4.0]]], [[[0.5, -1.0], [2.0, 0.0]]]]
target = [[1.0], [0.0]]
{pool}[[layers]]
type = "flatten"
[[layers]]
units = 1
"""
    tr = parse_spec(text, "first.toml").trace()
    assert tr.layer(1).type == first
    assert tr.layer(1).kinds[-1] == "dL_da"
    want = {"max_pool2d": [[4.0], [2.0]], "avg_pool2d": [[2.5], [0.375]]}
    if first in want:
        np.testing.assert_allclose(tr.layer(1).value("a").reshape(2, 1), want[first])


def test_a_loaded_cnn_summarises_its_shapes(tmp_path):
    import glassnet as gn

    io.write(tmp_path / "cnn.npz", load_spec("conv").network)
    lines = gn.load(tmp_path / "cnn.npz").summary().splitlines()
    assert lines[0] == "inputs: 1×4×4"
    # conv: output 1×3×3, kernel (1, 1, 2, 2) and 4 + 1 parameters; pooling: none
    assert lines[2].split() == ["1", "1×3×3", "relu", "1×1×2×2", "5"]
    assert lines[3].split() == ["2", "1×1×1", "identity", "—", "0"]


def test_a_convolution_too_large_for_memory_is_refused_before_allocating():
    conv = "channels = 1\nkernel_size = 100\npadding = 5000"
    with pytest.raises(GlassnetError, match="fit in memory") as err:
        parse_spec(CONV_SPEC.format(conv=conv), "huge.toml")
    assert (err.value.layer, err.value.field) == (1, "weights")
