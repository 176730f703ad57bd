"""glassnet <-> PyTorch, exactly; PyTorch model files without pickle; ONNX export."""

from __future__ import annotations

import json

import numpy as np
import pytest

import glassnet as gn
from glassnet.activations import get_activation
from glassnet.interop import from_torch, load_torch_model, save_torch_model, to_torch
from glassnet.layers import Dense
from glassnet.network import Network
from glassnet.trace import trace_step

from helpers import HIDDEN, random_targets

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")


def every_activation_net(dtype: str, seed: int = 0) -> Network:
    rng = np.random.default_rng(seed)
    sizes = [4, 5, 6, 5, 4, 6, 3]
    acts = [
        "relu",
        get_activation("leaky_relu", slope=0.2),
        "sigmoid",
        "tanh",
        "identity",
        "softmax",
    ]
    return Network(
        [
            Dense(
                rng.normal(size=(sizes[i], sizes[i + 1])).astype(dtype),
                rng.normal(size=sizes[i + 1]).astype(dtype),
                acts[i],
            )
            for i in range(len(acts))
        ]
    )


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_round_trip_is_bit_identical(dtype):
    net = every_activation_net(dtype)
    back = from_torch(to_torch(net))
    assert len(back) == len(net)
    for a, b in zip(net.layers, back.layers, strict=True):
        assert a.W.dtype == b.W.dtype and a.W.tobytes() == b.W.tobytes()
        assert a.b.tobytes() == b.b.tobytes()
        assert a.activation.to_dict() == b.activation.to_dict()


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("loss", ["cross_entropy", "binary_cross_entropy", "mse", "half_sse"])
def test_step_agrees_with_torch_autograd(hidden, loss):
    rng = np.random.default_rng(7)
    output = "softmax" if loss != "half_sse" else "tanh"
    net = gn.mlp([4, 6, 5, 3], hidden=hidden, output=output, init="xavier", seed=2, dtype="float64")
    x = rng.normal(size=(5, 4))
    y = random_targets(rng, loss, 5, 3)
    trace = trace_step(net, x, y, loss=loss, lr=0.1)

    model = to_torch(net)
    p = model(torch.from_numpy(x))
    ty = torch.from_numpy(y)
    if loss == "cross_entropy":
        per = -(ty * torch.log(p)).sum(1)
    elif loss == "binary_cross_entropy":
        per = -(ty * torch.log(p) + (1 - ty) * torch.log(1 - p)).sum(1)
    elif loss == "mse":
        per = ((p - ty) ** 2).mean(1)
    else:
        per = 0.5 * ((ty - p) ** 2).sum(1)
    total = per.mean()
    total.backward()
    np.testing.assert_allclose(trace.output, p.detach().numpy(), rtol=1e-12, atol=1e-14)
    assert trace.loss == pytest.approx(total.item(), rel=1e-12)
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for lt, lin in zip(trace.layers, linears, strict=True):
        np.testing.assert_allclose(lt.dW, lin.weight.grad.numpy().T, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(lt.db, lin.bias.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_unsupported_module_is_named():
    # (Dropout, the module this test named before issue 13, is now skipped: the identity
    # at inference; see tests/test_train_fixes.py.  BatchNorm1d, the one it named before
    # issue 20, is now a layer: tests/test_layer_plugins.py.)
    model = torch.nn.Sequential(
        torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Conv1d(4, 4, 1), torch.nn.Linear(4, 2)
    )
    with pytest.raises(gn.GlassnetError, match=r"module 2 \(Conv1d\).*Conv1d"):
        from_torch(model)
    with pytest.raises(gn.GlassnetError, match="dim"):
        from_torch(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Softmax(dim=0)))
    with pytest.raises(gn.GlassnetError, match=r"\(such as Linear\) before"):
        from_torch(torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(3, 4)))


def test_nested_sequential_and_linear_without_bias():
    inner = torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.Tanh())
    model = torch.nn.Sequential(inner, torch.nn.Linear(4, 2), torch.nn.Sigmoid()).double()
    net = from_torch(model)
    x = np.random.default_rng(0).normal(size=(3, 3))
    np.testing.assert_allclose(
        net.forward(x), model(torch.from_numpy(x)).detach().numpy(), rtol=1e-14
    )
    np.testing.assert_array_equal(net.layers[0].b, np.zeros(4))


def test_torch_model_file_round_trip(tmp_path):
    pytest.importorskip("safetensors", reason="safetensors is not installed")
    from safetensors.torch import load_file

    net = every_activation_net("float32", seed=3)
    path = tmp_path / "model.safetensors"
    save_torch_model(net, path)
    back = load_torch_model(path)
    for a, b in zip(net.layers, back.layers, strict=True):
        assert a.W.tobytes() == b.W.tobytes() and a.b.tobytes() == b.b.tobytes()
        assert a.activation.to_dict() == b.activation.to_dict()
    # PyTorch reads the same file as the Sequential's state dict.
    model = to_torch(net)
    model.load_state_dict(load_file(str(path)))
    x = np.random.default_rng(1).normal(size=(4, 4)).astype(np.float32)
    # float32 kernels differ in the last bits between libraries
    np.testing.assert_allclose(
        model(torch.from_numpy(x)).detach().numpy(), back.forward(x), rtol=1e-5, atol=1e-6
    )


def test_bad_torch_model_files_are_refused(tmp_path):
    pytest.importorskip("safetensors", reason="safetensors is not installed")
    from safetensors.numpy import save_file

    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x80\x04 not a safetensors file")
    with pytest.raises(gn.GlassnetError, match=r"junk\.safetensors"):
        load_torch_model(junk)
    plain = tmp_path / "plain.safetensors"
    save_file({"0.weight": np.zeros((2, 3), np.float32)}, str(plain))
    with pytest.raises(gn.GlassnetError, match="metadata"):
        load_torch_model(plain)
    wrong = tmp_path / "wrong.safetensors"
    save_file(
        {"0.weight": np.zeros((2, 3), np.float32), "0.bias": np.zeros(2, np.float32)},
        str(wrong),
        metadata={
            "glassnet.torch_architecture": json.dumps(
                [{"type": "Linear", "in_features": 4, "out_features": 2}]
            )
        },
    )
    with pytest.raises(gn.GlassnetError, match="module 0"):
        load_torch_model(wrong)
    with pytest.raises(gn.GlassnetError, match="no such file"):
        load_torch_model(tmp_path / "missing.safetensors")


def test_onnx_export_matches_glassnet(tmp_path):
    onnx = pytest.importorskip("onnx", reason="onnx is not installed")
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    from glassnet.interop import export_onnx

    net = every_activation_net("float32", seed=5)
    path = tmp_path / "model.onnx"
    export_onnx(net, path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(9)
    for batch in (1, 7, 64):
        x = rng.normal(size=(batch, 4)).astype(np.float32)
        (y,) = sess.run(None, {"x": x})
        np.testing.assert_allclose(y, net.forward(x), rtol=1e-5, atol=1e-5)
