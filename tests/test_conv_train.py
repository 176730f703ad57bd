"""Training convolutional networks (issue 21, phase 2): the fast conv step equals the
traced step (the step graph, ``gn.apply_step``); images from digits and from an .npz;
``glassnet train --model cnn``; one set of raw images predicted alike by the model
file, the CLI, ONNX (onnxruntime) and PyTorch (``to_torch``); the torch engine.
"""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stdout

import numpy as np
import pytest

import glassnet as gn
from glassnet import cli
from glassnet.errors import GlassnetError
from glassnet.layers.avg_pool2d import AvgPool2d
from glassnet.layers.conv2d import Conv2d
from glassnet.layers.dense import Dense
from glassnet.layers.flatten import Flatten
from glassnet.layers.max_pool2d import MaxPool2d
from glassnet.model import Model
from glassnet.training.conv_step import conv_step_for


def _cnn(
    rng: np.random.Generator,
    *,
    c_in: int,
    stride: int,
    padding: int,
    pool: type,
    output: str,
    dtype: str = "float64",
    hw: int = 7,
    n_out: int = 3,
) -> Model:
    """conv(3×3, stride, padding, relu) → conv(2×2, tanh) → pool 2 → flatten → dense."""
    conv1 = Conv2d(
        rng.normal(size=(3, c_in, 3, 3)) * 0.5,
        rng.normal(size=3) * 0.1,
        (c_in, hw, hw),
        stride=stride,
        padding=padding,
        activation="relu",
    )
    conv2 = Conv2d(
        rng.normal(size=(2, 3, 2, 2)) * 0.5,
        rng.normal(size=2) * 0.1,
        conv1.out_shape,
        padding=padding,
        activation="tanh",
    )
    pooled = pool(conv2.out_shape, size=2)
    flat = Flatten(pooled.out_shape)
    dense = Dense(rng.normal(size=(flat.n_out, n_out)) * 0.5, rng.normal(size=n_out) * 0.1, output)
    return Model([conv1, conv2, pooled, flat, dense]).copy(dtype)


CASES = [
    (1, 1, 0, MaxPool2d, "softmax", "cross_entropy"),
    (2, 2, 1, MaxPool2d, "softmax", "cross_entropy"),
    (3, 1, 1, AvgPool2d, "sigmoid", "binary_cross_entropy"),
    (2, 2, 0, AvgPool2d, "identity", "mse"),
]


@pytest.mark.parametrize("c_in,stride,padding,pool,output,loss", CASES)
def test_fast_conv_step_equals_traced_step_float64(c_in, stride, padding, pool, output, loss):
    rng = np.random.default_rng(c_in * 10 + stride + padding)
    a = _cnn(rng, c_in=c_in, stride=stride, padding=padding, pool=pool, output=output)
    b = a.copy()
    X = rng.normal(size=(9, c_in, 7, 7))
    y = rng.integers(0, 3, size=9)
    Y = np.eye(3)[y] if output != "identity" else rng.normal(size=(9, 3))
    # the fit takes the conv fast path (not the step graph)
    assert conv_step_for(a, X, Y, gn.get_loss(loss), gn.optim.SGD(lr=0.1), fused=False,
                         batch_size=3, weights=None) is not None  # fmt: skip
    # three batches of 3 rows in order; SGD without momentum is exactly p − lr·dp
    a.fit(X, Y, loss=loss, optimizer=gn.optim.SGD(lr=0.1), epochs=1, batch_size=3, shuffle=False)
    for start in (0, 3, 6):
        gn.apply_step(b, X[start : start + 3], Y[start : start + 3], loss=loss, lr=0.1)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(pa, pb, rtol=0, atol=1e-12)


@pytest.mark.parametrize("pool_stride", [2, 3, 1])
def test_fast_max_pool_routes_ties_as_the_traced_step(pool_stride):
    """ReLU zeros make whole windows tie: δ goes to the first cell, row by row, in the
    fast step as in the traced one; windows apart (stride 2, 3) and overlapping (1)."""
    rng = np.random.default_rng(pool_stride)
    conv = Conv2d(rng.normal(size=(2, 1, 2, 2)), np.array([-1.5, 0.2]), (1, 7, 7),
                  activation="relu")  # fmt: skip
    pool = MaxPool2d(conv.out_shape, size=2, stride=pool_stride)
    flat = Flatten(pool.out_shape)
    # small output weights: a saturated softmax (p ~ 1e-30) would put the traced step's
    # full Jacobian, not the fused delta, at the mercy of float rounding
    dense = Dense(rng.normal(size=(flat.n_out, 3)) * 0.1, np.zeros(3), "softmax")
    conv2 = Conv2d(rng.normal(size=(1, 1, 1, 1)), np.zeros(1), (1, 7, 7))
    a = Model([conv2, conv, pool, flat, dense])  # a layer below the pool: its dx matters
    b = a.copy()
    X = rng.normal(size=(6, 1, 7, 7))
    y = rng.integers(0, 3, size=6)
    assert (conv.predict(conv2.predict(X)) == 0).mean() > 0.3  # many ties at 0
    a.fit(X, y, optimizer=gn.optim.SGD(lr=0.1), epochs=1, batch_size=3, shuffle=False)
    for start in (0, 3):
        gn.apply_step(b, X[start : start + 3], np.eye(3)[y[start : start + 3]],
                      loss="cross_entropy", lr=0.1)  # fmt: skip
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(pa, pb, rtol=0, atol=1e-12)


def test_fast_conv_step_with_row_weights_equals_graph_step():
    """Row weights (no fused delta): the fast step's gradients are the step graph's."""
    rng = np.random.default_rng(5)
    a = _cnn(rng, c_in=2, stride=1, padding=1, pool=MaxPool2d, output="softmax")
    b = a.copy()
    X = rng.normal(size=(6, 2, 7, 7))
    y = rng.integers(0, 3, size=6)
    w = rng.uniform(0.5, 2.0, size=6)
    a.fit(X, y, optimizer=gn.optim.SGD(lr=0.1), epochs=1, batch_size=6, shuffle=False,
          sample_weight=w)  # fmt: skip
    w = w / w.mean()  # fit scales the weights to mean 1 over the training rows
    _, _, grads = b.graph_gradients(X, np.eye(3)[y], gn.get_loss("cross_entropy"), weights=w)
    for pa, pb, g in zip(a.parameters(), b.parameters(), grads, strict=True):
        np.testing.assert_allclose(pa, pb - 0.1 * g, rtol=0, atol=1e-12)


def test_fast_conv_step_float32_equals_float64_to_rounding():
    rng = np.random.default_rng(7)
    a64 = _cnn(rng, c_in=1, stride=1, padding=1, pool=MaxPool2d, output="softmax")
    a32 = a64.copy("float32")
    X = rng.normal(size=(8, 1, 7, 7))
    y = rng.integers(0, 3, size=8)
    for net in (a64, a32):
        net.fit(X, y, optimizer=gn.optim.SGD(lr=0.05), epochs=2, batch_size=4, shuffle=False)
    for p64, p32 in zip(a64.parameters(), a32.parameters(), strict=True):
        assert p32.dtype == np.float32
        np.testing.assert_allclose(p32, p64, rtol=0, atol=1e-5)


def test_fast_conv_step_against_torch_autograd():
    """One SGD step of the fast path against PyTorch float64 autograd (shares no code)."""
    torch = pytest.importorskip("torch", reason="the reference is PyTorch autograd")
    rng = np.random.default_rng(11)
    net = _cnn(rng, c_in=2, stride=2, padding=1, pool=MaxPool2d, output="softmax")
    X = rng.normal(size=(5, 2, 7, 7))
    y = rng.integers(0, 3, size=5)
    params = [torch.tensor(p, requires_grad=True) for p in net.parameters()]
    W1, b1, W2, b2, Wd, bd = params
    F = torch.nn.functional
    h = F.relu(F.conv2d(torch.tensor(X), W1, b1, stride=2, padding=1))
    h = torch.tanh(F.conv2d(h, W2, b2, padding=1))
    h = F.max_pool2d(h, 2).flatten(1)
    loss = F.cross_entropy(h @ Wd + bd, torch.tensor(y))
    loss.backward()
    net.fit(X, y, optimizer=gn.optim.SGD(lr=0.1), epochs=1, batch_size=5, shuffle=False)
    for p, t in zip(net.parameters(), params, strict=True):
        np.testing.assert_allclose(p, (t - 0.1 * t.grad).detach().numpy(), rtol=0, atol=1e-12)


def test_cnn_builder_and_image_shapes():
    m = gn.cnn((1, 8, 8), 10, channels=(4, 6), seed=0)
    assert [type(layer) for layer in m.layers] == [Conv2d, MaxPool2d, Conv2d, MaxPool2d,
                                                   Flatten, Dense]  # fmt: skip
    rng = np.random.default_rng(0)
    X = rng.random((5, 1, 8, 8))
    p = m.predict_proba(X)
    # one-channel images (n, H, W) and flat rows (n, 64), read row by row, are the same
    np.testing.assert_array_equal(m.predict_proba(X[:, 0]), p)
    np.testing.assert_array_equal(m.predict_proba(X.reshape(5, 64)), p)
    with pytest.raises(GlassnetError, match=r"\(1, 8, 8\) images.*got shape \(5, 1, 8, 9\)"):
        m.predict_proba(rng.random((5, 1, 8, 9)))
    with pytest.raises(GlassnetError, match="expected an image shape"):
        gn.cnn((8, 8), 10)


# -- data, CLI and the same predictions everywhere -------------------------------------------
def _run(*argv: str) -> tuple[int, str]:
    buf = io.StringIO()
    with redirect_stdout(buf):
        code = cli.main(list(argv))
    return code, buf.getvalue()


def _npz_images(path, n=60, shape=(2, 6, 6), seed=0):
    """Two classes of images told apart by which half is brighter (values 0..255)."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    X = rng.integers(0, 120, size=(n, *shape)).astype(np.float64)
    half = shape[-1] // 2
    X[y == 0, ..., :half] += 120
    X[y == 1, ..., half:] += 120
    np.savez(path, X=X, y=y)
    return X, y


def test_train_cnn_on_npz_images_and_same_predictions_everywhere(tmp_path, capsys):
    onnxruntime = pytest.importorskip("onnxruntime", reason="the ONNX check runs onnxruntime")
    torch = pytest.importorskip("torch", reason="to_torch needs torch")
    from glassnet.interop import to_onnx, to_torch

    data = tmp_path / "images.npz"
    X, _ = _npz_images(data)
    out = tmp_path / "m.npz"
    code, _ = _run("train", "--data", str(data), "--model", "cnn", "--layers", "4",
                   "--epochs", "3", "--no-progress", "--json", "--out", str(out))  # fmt: skip
    assert code == 0
    model = gn.load(out)
    # the model file carries the input shape and the pixel scale (the largest raw value
    # of the training part, a constant; no centring)
    assert model.layers[0].in_shape == (2, 6, 6)
    pre = model.preprocessing
    assert pre is not None and (pre.mean == 0).all() and len(set(pre.scale)) == 1
    assert 200 < pre.scale[0] <= X.max()  # the training part's largest value

    raw = X[:12]  # raw images (12, 2, 6, 6), values 0..255
    p_model = model.predict_proba(raw)
    # the CLI's predict on the same images (an .npz holding X)
    rows = tmp_path / "rows.npz"
    np.savez(rows, X=raw)
    code, text = _run("predict", str(out), str(rows))
    assert code == 0
    got = list(csv.reader(io.StringIO(text)))
    assert got[0][0] == "prediction"
    cli_p = np.array([[float(v) for v in r[1:]] for r in got[1:]])
    np.testing.assert_allclose(cli_p, p_model, rtol=0, atol=5e-6)  # written with 6 digits
    classes = [str(c) for c in model.classes or []]
    assert [r[0] for r in got[1:]] == [classes[i] for i in p_model.argmax(axis=1)]
    # ONNX: raw images in (double), the scaling inside the graph
    session = onnxruntime.InferenceSession(to_onnx(model).SerializeToString())
    (p_onnx,) = session.run(None, {"x": raw})
    np.testing.assert_allclose(p_onnx, p_model, rtol=0, atol=1e-5)
    # PyTorch: the module on the images scaled by the model file's own constant
    scaled = pre.transform(raw.reshape(12, -1)).reshape(raw.shape).astype(np.float32)
    with torch.no_grad():
        p_torch = to_torch(model)(torch.tensor(scaled)).numpy()
    np.testing.assert_allclose(p_torch, p_model, rtol=0, atol=1e-5)
    assert (p_torch.argmax(1) == p_model.argmax(1)).all()
    assert (p_onnx.argmax(1) == p_model.argmax(1)).all()


def test_the_cli_summary_names_a_cnn_by_its_feature_maps(tmp_path, capsys):
    """The title and the JSON give each layer's output as channels×height×width, not the
    flattened sizes; expected shapes from the definitions (a 3×3 convolution with
    padding 1 keeps 6×6; 2×2 pooling with stride 2 halves it; flatten multiplies)."""
    data = tmp_path / "images.npz"
    _npz_images(data)
    out = tmp_path / "m.npz"
    argv = ["train", "--data", str(data), "--model", "cnn", "--layers", "4", "--epochs", "1",
            "--no-progress", "--out", str(out)]  # fmt: skip
    conv = (6 + 2 * 1 - 3) // 1 + 1
    pooled = (conv - 2) // 2 + 1
    expected = [[2, 6, 6], [4, conv, conv], [4, pooled, pooled], [4 * pooled * pooled], [2]]
    code, text = _run(*argv, "--json")
    assert code == 0 and json.loads(text)["shapes"] == expected
    code, text = _run(*argv)
    title = "-".join("×".join(map(str, shape)) for shape in expected)
    assert code == 0 and f"({title})" in " ".join(text.split())


def test_npz_of_one_channel_images_and_digits_read_as_images(tmp_path):
    from glassnet.data import load_dataset

    path = tmp_path / "gray.npz"
    _npz_images(path, shape=(5, 7))
    ds = load_dataset(str(path))
    assert ds.image_shape == (1, 5, 7) and ds.n_features == 35
    digits = load_dataset("digits")
    assert digits.image_shape == (1, 8, 8)


@pytest.mark.parametrize(
    "arrays,message",
    [
        ({"X": np.zeros((4, 2, 3, 3, 1)), "y": np.zeros(4)}, "X.*shaped \\(4, 2, 3, 3, 1\\)"),
        ({"X": np.zeros((4, 3, 3)), "y": np.zeros(5)}, "y.*shaped \\(5,\\)"),
        ({"images": np.zeros((4, 3, 3)), "y": np.zeros(4)}, "expected arrays \\['X', 'y'\\]"),
    ],
)
def test_bad_image_npz_is_one_line(tmp_path, capsys, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    code = cli.main(["train", "--data", str(path), "--model", "cnn", "--epochs", "1",
                     "--no-progress", "--out", str(tmp_path / "m.npz")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "m.npz").exists()


def test_cnn_on_a_table_is_refused(tmp_path, capsys):
    code = cli.main(["train", "--data", "iris", "--model", "cnn", "--epochs", "1",
                     "--no-progress", "--out", str(tmp_path / "m.npz")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and "--model" in err and "image data" in err


def test_train_cnn_on_digits_cli_resume_equals_uninterrupted(tmp_path):
    """A CNN run on digits resumes bit for bit (the fast conv step is deterministic)."""
    whole, part = tmp_path / "whole.npz", tmp_path / "part.npz"
    common = ["--data", "digits", "--model", "cnn", "--layers", "4", "--no-progress", "--json"]
    assert _run("train", *common, "--epochs", "2", "--out", str(whole))[0] == 0
    ckpt = tmp_path / "part.ckpt.npz"
    assert _run("train", *common, "--epochs", "1", "--out", str(part),
                "--checkpoint", str(ckpt))[0] == 0  # fmt: skip
    assert _run("train", "--resume", str(ckpt), "--epochs", "2", "--out", str(part),
                "--no-progress", "--json")[0] == 0  # fmt: skip
    for pa, pb in zip(gn.load(whole).parameters(), gn.load(part).parameters(), strict=True):
        np.testing.assert_array_equal(pa, pb)


# -- the torch engine --------------------------------------------------------------------------
def test_torch_engine_trains_a_cnn_as_the_numpy_engine():
    pytest.importorskip("torch", reason="the torch engine needs torch")
    rng = np.random.default_rng(3)
    a = _cnn(rng, c_in=1, stride=1, padding=1, pool=MaxPool2d, output="softmax")
    b = a.copy()
    X = rng.normal(size=(12, 1, 7, 7))
    y = rng.integers(0, 3, size=12)
    opts = {"epochs": 2, "batch_size": 4, "seed": 0}
    a.fit(X, y, optimizer=gn.optim.SGD(lr=0.1, momentum=0.9), **opts)
    b.fit(X, y, optimizer=gn.optim.SGD(lr=0.1, momentum=0.9), engine="torch", **opts)
    for pa, pb in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_allclose(pa, pb, rtol=0, atol=1e-10)


# -- the scikit-learn estimator ------------------------------------------------------------------
def test_estimator_takes_image_rows_as_a_cnn():
    pytest.importorskip("sklearn", reason="the estimator is scikit-learn's kind")
    from sklearn.datasets import load_digits

    from glassnet.sklearn import GlassnetClassifier

    digits = load_digits()
    X, y = digits.data[:300] / 16, digits.target[:300]
    clf = GlassnetClassifier((4,), image_shape=(1, 8, 8), epochs=3, random_state=0)
    clf.fit(X, y)
    assert type(clf.network_.layers[0]) is Conv2d
    # its predictions are its network's on the same rows as (n, 1, 8, 8) images
    proba = clf.predict_proba(X[:20])
    images = X[:20].reshape(20, 1, 8, 8)
    np.testing.assert_allclose(proba, clf.network_.predict_proba(images), rtol=0, atol=1e-12)
    assert (clf.predict(X[:20]) == proba.argmax(1)).all()
    with pytest.raises(GlassnetError, match="image_shape"):
        GlassnetClassifier((4,), image_shape=(1, 8, 9), epochs=1).fit(X, y)


def test_train_a_spec_files_layers_on_digits(tmp_path):
    """--model FILE.toml: its [[layers]] are the network (drawn kernels), for the images."""
    spec = tmp_path / "lenet.toml"
    spec.write_text(
        'lr = 0.1\n[[layers]]\ntype = "conv2d"\nchannels = 3\nkernel_size = 3\n'
        'activation = "relu"\n[[layers]]\ntype = "avg_pool2d"\nsize = 2\n'
        '[[layers]]\ntype = "flatten"\n[[layers]]\nunits = 10\nactivation = "softmax"\n'
    )
    out = tmp_path / "m.npz"
    code, text = _run("train", "--data", "digits", "--model", str(spec), "--epochs", "1",
                      "--no-progress", "--out", str(out))  # fmt: skip
    assert code == 0
    assert "lenet.toml: its [[layers]] are trained; lr are not used" in text
    model = gn.load(out)
    assert [type(layer) for layer in model.layers] == [Conv2d, AvgPool2d, Flatten, Dense]
    assert model.layers[0].in_shape == (1, 8, 8) and model.layers[0].out_shape == (3, 6, 6)


def test_a_spec_file_with_the_wrong_output_is_one_line(tmp_path, capsys):
    spec = tmp_path / "small.toml"
    spec.write_text('[[layers]]\ntype = "conv2d"\nchannels = 2\nkernel_size = 3\n'
                    '[[layers]]\ntype = "flatten"\n[[layers]]\nunits = 4\n')  # fmt: skip
    code = cli.main(["train", "--data", "digits", "--model", str(spec), "--epochs", "1",
                     "--no-progress", "--out", str(tmp_path / "m.npz")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "small.toml" in err and "expected a last layer of 10 units" in err and "got 4" in err


def test_weight_decay_reaches_kernels_in_fit_as_in_the_step_graph():
    """L2 decay is the layers' own choice (``Layer.decayed``: dense and conv weights, not
    biases): one full-batch SGD step of fit is p − lr·(dp + λ·p) for W and kernels and
    p − lr·dp for biases, with dp from the step graph."""
    rng = np.random.default_rng(11)
    a = _cnn(rng, c_in=2, stride=1, padding=1, pool=MaxPool2d, output="softmax")
    b = a.copy()
    X = rng.normal(size=(6, 2, 7, 7))
    y = rng.integers(0, 3, size=6)
    lr, lam = 0.1, 0.05
    a.fit(X, y, optimizer=gn.optim.SGD(lr=lr, weight_decay=lam), epochs=1, batch_size=6,
          shuffle=False)  # fmt: skip
    _, _, grads = b.graph_gradients(X, np.eye(3)[y], gn.get_loss("cross_entropy"))
    decayed = [name in layer.decayed for layer in b.layers for name in layer.params]
    assert sum(decayed) == 3  # two kernels and the dense weights
    names = [f"{name}{k}" for k, layer in enumerate(b.layers, 1) for name in layer.params]
    for name, d, pa, pb, g in zip(names, decayed, a.parameters(), b.parameters(), grads,
                                  strict=True):  # fmt: skip
        want = pb - lr * (g + lam * pb) if d else pb - lr * g
        np.testing.assert_allclose(pa, want, rtol=0, atol=1e-12, err_msg=name)
