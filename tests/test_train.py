"""fit: the same layer code as the trace, batched; history, callbacks, early stopping,
determinism, continuation, divergence and bad input."""

from __future__ import annotations

import re

import numpy as np
import pytest

import glassnet as gn
from glassnet import GlassnetError
from glassnet.training import Callback, EarlyStopping


def blobs(n=240, d=5, k=3, seed=0):
    """k well-separated Gaussian clusters (labels 0..k-1)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    y = np.arange(n) % k
    X = centres[y] + rng.normal(size=(n, d))
    return X, y


def onehot(y, k):
    Y = np.zeros((y.shape[0], k))
    Y[np.arange(y.shape[0]), y] = 1
    return Y


# -- the fit step is the traced step ---------------------------------------------------------
@pytest.mark.parametrize(
    "hidden,output,loss",
    [
        ("relu", "softmax", "cross_entropy"),
        ("tanh", "sigmoid", "binary_cross_entropy"),
        ("sigmoid", "identity", "mse"),
        ("leaky_relu", "softmax", "half_sse"),
    ],
)
def test_fit_steps_equal_traced_steps_float64(hidden, output, loss):
    X, y = blobs(n=12, d=4, k=3)
    Y = onehot(y, 3)
    a = gn.mlp([4, 5, 3], hidden=hidden, output=output, seed=1, dtype="float64")
    b = a.copy()
    # Three batches of 4 rows, in order; SGD without momentum is exactly W − lr·dW.
    a.fit(X, Y, loss=loss, optimizer=gn.optim.SGD(lr=0.1), epochs=1, batch_size=4, shuffle=False)
    for start in (0, 4, 8):
        gn.apply_step(b, X[start : start + 4], Y[start : start + 4], loss=loss, lr=0.1)
    for la, lb in zip(a.layers, b.layers, strict=True):
        np.testing.assert_allclose(la.W, lb.W, rtol=0, atol=1e-12)
        np.testing.assert_allclose(la.b, lb.b, rtol=0, atol=1e-12)


def test_fused_delta_equals_general_path_float64():
    rng = np.random.default_rng(2)
    net = gn.mlp([4, 6, 5], hidden="tanh", output="softmax", seed=3, dtype="float64")
    x = rng.normal(size=(7, 4))
    y = rng.random(size=(7, 5))
    y /= y.sum(axis=1, keepdims=True)  # soft targets: rows sum to 1, the fused condition
    _p1, v1, fused = net.forward_backward(x, y, "cross_entropy", fused=True)
    p2, v2, general = net.forward_backward(x, y, "cross_entropy", fused=False)
    # The general path: dL/dp then the full softmax Jacobian, built here independently.
    p = p2
    dL_dp = -y / p / 7
    J = p[:, :, None] * (np.eye(5)[None] - p[:, None, :])
    delta = np.einsum("si,sij->sj", dL_dp, J)
    np.testing.assert_allclose(general[-1].delta, delta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(fused[-1].delta, delta, rtol=0, atol=1e-12)
    assert v1 == v2
    for gf, gg in zip(fused, general, strict=True):
        np.testing.assert_allclose(gf.dW, gg.dW, rtol=0, atol=1e-12)
        np.testing.assert_allclose(gf.db, gg.db, rtol=0, atol=1e-12)


def test_fit_epoch_matches_a_plain_torch_loop_float64():
    torch = pytest.importorskip("torch", reason="PyTorch autograd is the independent reference")
    X, y = blobs(n=30, d=4, k=3)
    rng = np.random.default_rng(0)
    W1, b1 = rng.normal(size=(4, 6)) * 0.5, rng.normal(size=6) * 0.1
    W2, b2 = rng.normal(size=(6, 3)) * 0.5, rng.normal(size=3) * 0.1
    net = gn.mlp([4, 6, 3], init=[(W1, b1), (W2, b2)], dtype="float64")
    opt = gn.optim.SGD(lr=0.05, momentum=0.9, nesterov=True)
    net.fit(X, y, optimizer=opt, epochs=2, batch_size=8, shuffle=False)

    l1, l2 = torch.nn.Linear(4, 6).double(), torch.nn.Linear(6, 3).double()
    with torch.no_grad():
        l1.weight.copy_(torch.tensor(W1.T)), l1.bias.copy_(torch.tensor(b1))
        l2.weight.copy_(torch.tensor(W2.T)), l2.bias.copy_(torch.tensor(b2))
    model = torch.nn.Sequential(l1, torch.nn.ReLU(), l2)
    topt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    Xt, yt = torch.tensor(X), torch.tensor(y)
    for _ in range(2):
        for start in range(0, 30, 8):
            topt.zero_grad()
            loss = torch.nn.functional.cross_entropy(
                model(Xt[start : start + 8]), yt[start : start + 8]
            )
            loss.backward()
            topt.step()
    np.testing.assert_allclose(net.layers[0].W, l1.weight.detach().numpy().T, atol=1e-10)
    np.testing.assert_allclose(net.layers[1].b, l2.bias.detach().numpy(), atol=1e-10)


# -- learning, history, prediction ----------------------------------------------------------
def test_fit_learns_and_reports_history():
    X, y = blobs()
    net = gn.mlp([5, 16, 3], seed=0)
    assert net.dtype == np.float32
    hist = net.fit(
        X,
        y,
        optimizer=gn.optim.Adam(lr=0.01),
        epochs=15,
        batch_size=16,
        validation_split=0.2,
        seed=0,
    )
    assert len(hist) == 15 and hist.epoch == list(range(1, 16))
    assert set(hist.history) == {"loss", "accuracy", "val_loss", "val_accuracy", "lr"}
    assert hist["loss"][-1] < hist["loss"][0]
    assert hist["val_accuracy"][-1] >= 0.95
    assert all(layer.W.dtype == np.float32 for layer in net.layers)
    proba = net.predict_proba(X)
    assert proba.shape == (240, 3) and np.allclose(proba.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(net.predict(X), proba.argmax(axis=1))
    assert gn.training.evaluate(net, X, y)["accuracy"] >= 0.95


def test_epoch_loss_is_the_mean_of_the_batch_losses():
    X, y = blobs(n=20)
    net = gn.mlp([5, 4, 3], seed=0, dtype="float64")
    seen = []

    class Spy(Callback):
        def on_epoch_end(self, net, epoch, logs):
            seen.append(logs["loss"])

    # lr tiny: the weights barely move, so the epoch loss ≈ the loss at the start.
    before = gn.training.evaluate(net, X, y)["loss"]
    net.fit(X, y, optimizer=gn.optim.SGD(lr=1e-12), epochs=1, batch_size=7, callbacks=[Spy()])
    assert seen[0] == pytest.approx(before, rel=1e-9)


def test_labels_and_one_hot_targets_train_identically():
    X, y = blobs(n=60)
    a, b = gn.mlp([5, 8, 3], seed=0), gn.mlp([5, 8, 3], seed=0)
    a.fit(X, y, epochs=3, seed=1)
    b.fit(X, onehot(y, 3), epochs=3, seed=1)
    for la, lb in zip(a.layers, b.layers, strict=True):
        np.testing.assert_array_equal(la.W, lb.W)


def test_binary_sigmoid_output_with_0_1_labels():
    X, y = blobs(n=80, k=2)
    net = gn.mlp([5, 8, 1], output="sigmoid", seed=0)
    hist = net.fit(X, y, optimizer=gn.optim.Adam(lr=0.02), epochs=10)
    assert "accuracy" in hist.history and hist["accuracy"][-1] > 0.9
    assert net.predict(X).shape == (80,) and set(np.unique(net.predict(X))) <= {0, 1}


def test_regression_has_no_accuracy():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(50, 3))
    t = X @ np.array([[1.0], [-2.0], [0.5]])
    net = gn.mlp([3, 8, 1], output="identity", seed=0)
    hist = net.fit(X, t, optimizer=gn.optim.Adam(lr=0.02), epochs=30)
    assert "accuracy" not in hist.history and hist["loss"][-1] < hist["loss"][0] / 4
    assert net.predict(X).shape == (50, 1)


# -- continuation and determinism -------------------------------------------------------------
def _weights(net):
    return [p.copy() for p in net.parameters()]


def test_fit_twice_equals_fit_once_bit_for_bit():
    X, y = blobs()
    a, b = gn.mlp([5, 8, 3], seed=0), gn.mlp([5, 8, 3], seed=0)
    a.fit(
        X,
        y,
        optimizer=gn.optim.Adam(lr=0.01, schedule=gn.optim.StepLR(2, 0.5)),
        epochs=5,
        validation_split=0.25,
        seed=3,
    )
    b.fit(
        X,
        y,
        optimizer=gn.optim.Adam(lr=0.01, schedule=gn.optim.StepLR(2, 0.5)),
        epochs=2,
        validation_split=0.25,
        seed=3,
    )
    hb = b.fit(X, y, epochs=3, validation_split=0.25)
    for wa, wb in zip(_weights(a), _weights(b), strict=True):
        np.testing.assert_array_equal(wa, wb)
    assert hb.to_dict() == a.train_state.history.to_dict()
    assert hb.epoch == [1, 2, 3, 4, 5]


def test_same_seed_same_weights_with_or_without_progress_and_callbacks(capsys):
    X, y = blobs()
    runs = []
    for extra in ({}, {"progress": True, "callbacks": [Callback()]}):
        net = gn.mlp([5, 8, 3], seed=0)
        net.fit(X, y, epochs=3, seed=7, **extra)
        runs.append(_weights(net))
    for wa, wb in zip(*runs, strict=True):
        np.testing.assert_array_equal(wa, wb)
    other = gn.mlp([5, 8, 3], seed=0)
    other.fit(X, y, epochs=3, seed=8)
    assert not np.array_equal(other.layers[0].W, runs[0][0])


# -- callbacks and early stopping -----------------------------------------------------------------
def test_callback_sees_each_epoch_and_can_stop():
    X, y = blobs(n=30)
    calls = []

    class StopAtTwo(Callback):
        def on_train_begin(self, net, epochs):
            calls.append(("begin", epochs))

        def on_epoch_end(self, net, epoch, logs):
            calls.append(("epoch", epoch))
            return epoch == 2

        def on_train_end(self, net, history):
            calls.append(("end", len(history)))

    gn.mlp([5, 4, 3]).fit(X, y, epochs=9, callbacks=[StopAtTwo()])
    assert calls == [("begin", 9), ("epoch", 1), ("epoch", 2), ("end", 2)]


def test_early_stopping_rule_and_restore_best():
    net = gn.mlp([2, 2], output="identity", dtype="float64")
    es = EarlyStopping(patience=2)
    es.on_train_begin(net, 10)
    losses = [1.0, 0.5, 0.6, 0.4, 0.45, 0.41]
    stops = []
    for epoch, v in enumerate(losses, start=1):
        net.layers[0].W[...] = epoch  # weights tagged with the epoch
        stops.append(bool(es.on_epoch_end(net, epoch, {"val_loss": v})))
    # best 0.4 at epoch 4; epochs 5 and 6 do not improve -> stop at 6 (patience 2)
    assert stops == [False] * 5 + [True]
    es.on_train_end(net, None)
    assert es.best_epoch == 4 and (net.layers[0].W == 4).all()


def test_patience_stops_training_early():
    X, y = blobs(n=60)
    X_noise = np.random.default_rng(0).normal(size=X.shape)  # nothing to learn: val loss rises
    net = gn.mlp([5, 64, 3], seed=0)
    hist = net.fit(
        X_noise, y, optimizer=gn.optim.Adam(lr=0.05), epochs=200, validation_split=0.3, patience=3
    )
    assert len(hist) < 200


def test_early_stopping_without_validation_data_is_an_error():
    X, y = blobs(n=30)
    with pytest.raises(GlassnetError, match="val_loss"):
        gn.mlp([5, 4, 3]).fit(X, y, epochs=2, patience=2)


# -- divergence and bad input ------------------------------------------------------------
def test_nan_loss_stops_naming_epoch_and_batch_and_keeps_last_good_weights():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 3))
    t = rng.normal(size=(64, 1))
    net = gn.mlp([3, 16, 1], output="identity", seed=0)
    kept = [_weights(net)]

    class Keep(Callback):
        def on_epoch_end(self, net, epoch, logs):
            kept.append(_weights(net))

    # The rate grows tenfold each epoch, so training diverges after a few good epochs.
    opt = gn.optim.SGD(lr=1e-3, schedule=gn.optim.StepLR(1, 10.0))
    with pytest.raises(GlassnetError) as info:
        net.fit(X, t, optimizer=opt, epochs=50, batch_size=8, callbacks=[Keep()])
    message = str(info.value)
    assert re.search(r"at epoch \d+, batch \d+", message), message
    epoch = int(re.search(r"at epoch (\d+)", message).group(1))
    assert epoch > 1 and f"end of epoch {epoch - 1}" in message
    for w, k in zip(_weights(net), kept[epoch - 1], strict=True):
        np.testing.assert_array_equal(w, k)
    assert len(net.train_state.history) == epoch - 1


@pytest.mark.parametrize(
    "X,y,match",
    [
        (np.full((4, 5), np.nan), np.zeros(4, int), "finite"),
        (np.r_[np.zeros((3, 5)), [[0, 0, np.inf, 0, 0]]], np.zeros(4, int), "row 3"),
        (np.zeros((0, 5)), np.zeros(0, int), "at least one row"),
        (np.zeros((4, 6)), np.zeros(4, int), "5 features"),
        (np.zeros((4, 5)), np.array([0, 1, 2, 3]), "labels 0..2"),
        (np.zeros((4, 5)), np.array([0, 1, -1, 2]), "labels 0..2"),
        (np.zeros((4, 5)), np.array([0.5, 1, 1, 2]), "fractional"),
        (np.zeros((4, 5)), np.zeros(3, int), "4 targets"),
        (np.zeros((4, 5)), np.array(["a", "b", "a", "b"]), "numeric labels"),
        (np.zeros((4, 5)), np.full((4, 3), 2.0), r"\[0, 1\]"),
        (np.array([["a"] * 5] * 4), np.zeros(4, int), "numbers"),
    ],
)
def test_bad_data_is_refused(X, y, match):
    net = gn.mlp([5, 4, 3], seed=0)
    before = _weights(net)
    with pytest.raises(GlassnetError, match=match):
        net.fit(X, y, epochs=1)
    for w, b in zip(_weights(net), before, strict=True):
        np.testing.assert_array_equal(w, b)


@pytest.mark.parametrize(
    "options",
    [
        {"epochs": -1},
        {"batch_size": 0},
        {"validation_split": 1.0},
        {"seed": -3},
        {"optimizer": "adamax"},  # unknown (adamw is registered now)
        {"loss": "mse_typo"},
        {"loss": "binary_cross_entropy"},
    ],
)
def test_bad_options_are_refused(options):
    X, y = blobs(n=20)
    net = gn.mlp([5, 4, 3], seed=0)
    if options.get("loss") == "binary_cross_entropy":
        net = gn.mlp([5, 4, 3], output="identity", seed=0)
    with pytest.raises(GlassnetError):
        net.fit(X, y, **options)


def test_predict_refuses_wrong_width():
    with pytest.raises(GlassnetError, match="5 features"):
        gn.mlp([5, 4, 3]).predict(np.zeros((2, 4)))


def test_explicit_initial_arrays():
    W1 = np.arange(6.0).reshape(2, 3)
    net = gn.mlp([2, 3, 1], init=[W1, (np.ones((3, 1)), np.array([0.5]))], dtype="float64")
    np.testing.assert_array_equal(net.layers[0].W, W1)
    assert net.layers[0].b.tolist() == [0, 0, 0] and net.layers[1].b.tolist() == [0.5]
    with pytest.raises(GlassnetError, match="layer 1"):
        gn.mlp([2, 3, 1], init=[np.ones((3, 3)), np.ones((3, 1))])
    with pytest.raises(GlassnetError):
        gn.mlp([2, 3, 1], init=[W1])


def test_validation_data_is_scored_each_epoch():
    X, y = blobs(n=90)
    Xv, yv = blobs(n=30, seed=1)
    net = gn.mlp([5, 8, 3], seed=0)
    hist = net.fit(X, y, epochs=2, validation_data=(Xv, yv))
    last = net.train_state.history.last()
    assert len(hist["val_loss"]) == 2
    assert last["val_loss"] == pytest.approx(gn.training.evaluate(net, Xv, yv)["loss"], rel=1e-6)
    with pytest.raises(GlassnetError, match="validation X"):
        net.fit(X, y, epochs=1, validation_data=(Xv[:, :4], yv))


def test_fit_never_copies_the_data():
    import tracemalloc

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40_000, 100)).astype(np.float32)  # 16 MB
    y = rng.integers(0, 3, size=40_000)
    net = gn.mlp([100, 16, 3], seed=0)
    tracemalloc.start()
    net.fit(X, y, epochs=2, batch_size=256, validation_split=0.1)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # Targets (one-hot), index arrays, batch buffers and validation chunks — a few bytes
    # per row, not per value: well below one copy of X.
    assert peak < X.nbytes / 3, f"peak {peak / 1e6:.2f} MB for {X.nbytes / 1e6:.1f} MB of data"
