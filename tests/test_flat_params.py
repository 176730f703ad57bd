"""The flat layout of ``fit``'s NumPy engine (glassnet.optimizers.flat): every parameter
a view of one buffer per dtype, the gradients likewise, the optimiser's state laid out
alike and updated in whole-buffer passes (``Optimizer.step_flat``).

The reference is the per-parameter step (``Optimizer.step``, one parameter at a time,
each its own array: ``NumpyEngine(flat=False)``), which tests/test_optimizers.py holds to
each rule written out again and to torch.optim in float64.  Every rule here is
element-wise, so the flat step runs the same operations on the same numbers: the tests
ask for equality bit for bit, not closeness."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

import glassnet as gn
from glassnet import GlassnetError, optim
from glassnet.layers import Dense
from glassnet.layers.batch_norm import BatchNorm
from glassnet.layers.layer_norm import LayerNorm
from glassnet.losses import get_loss
from glassnet.optimizers.flat import ALIGN, FlatParameters
from glassnet.parallel import TrainStep
from glassnet.training import Callback
from glassnet.training.engine import NumpyEngine

CASES: list[tuple[str, dict[str, Any]]] = [
    ("momentum", {"lr": 0.05, "momentum": 0.9}),
    ("momentum", {"lr": 0.05, "momentum": 0.8, "nesterov": True}),
    ("momentum", {"lr": 0.05, "momentum": 0.9, "weight_decay": 0.02}),
    ("momentum", {"lr": 0.05, "momentum": 0.8, "nesterov": True, "weight_decay": 0.02}),
    ("adam", {"lr": 0.01, "beta1": 0.8, "beta2": 0.99, "eps": 1e-6}),
    ("adam", {"lr": 0.01, "weight_decay": 0.03}),
    ("adamw", {"lr": 0.01, "weight_decay": 0.1}),
    ("rmsprop", {"lr": 0.01, "rho": 0.95, "eps": 1e-6}),
    ("rmsprop", {"lr": 0.01, "weight_decay": 0.01}),
    ("sgd", {"lr": 0.1, "weight_decay": 0.05}),
]
IDS = [f"{n}-{'-'.join(f'{k}={v}' for k, v in o.items())}" for n, o in CASES]


def _data(rows: int, n_in: int, n_out: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, n_in))
    y = rng.integers(0, n_out, rows)
    return X, y


def _dense(dtype: str) -> gn.Model:
    return gn.mlp([6, 9, 7, 4], hidden="tanh", seed=3, dtype=dtype)


def _normalised(dtype: str, shifts: str | None = None) -> gn.Model:
    """Dense, batch norm, layer norm, dense: the step-graph path of the engine.
    ``shifts``: the norm layers' β in that dtype instead (a network of mixed dtypes)."""
    rng = np.random.default_rng(12)

    def arr(a: np.ndarray, as_: str | None = None) -> np.ndarray:
        return a.astype(as_ or dtype)

    return gn.Model(
        [
            Dense(arr(rng.normal(0, 0.7, (6, 5))), arr(rng.normal(0, 0.1, 5)), "identity"),
            BatchNorm(
                5,
                activation="relu",
                gamma=arr(rng.uniform(0.5, 1.5, 5)),
                beta=arr(rng.normal(0, 0.1, 5), shifts),
            ),
            LayerNorm(
                5,
                gamma=arr(rng.uniform(0.5, 1.5, 5)),
                beta=arr(np.zeros(5), shifts),
                activation="tanh",
            ),
            Dense(arr(rng.normal(0, 0.7, (5, 4))), arr(np.zeros(4)), "softmax"),
        ]
    )


def _mixed(dtype: str) -> gn.Model:
    """The normalised network with float64 shifts: its float32 parameters get float64
    gradients from the step graph, which the flat step does not round twice."""
    return _normalised(dtype, "float64")


NETS = {"dense": _dense, "normalised": _normalised, "mixed": _mixed}


def _everything(net: gn.Model) -> list[np.ndarray]:
    """Every parameter and constant (batch norm's running statistics) of ``net``."""
    return [np.array(getattr(layer, k)) for layer in net.layers for k in layer.leaf_values()]


def _assert_identical(a: gn.Model, b: gn.Model, opt_a: optim.Optimizer, opt_b: optim.Optimizer):
    for x, y in zip(_everything(a), _everything(b), strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)
    sa, sb = opt_a.state_arrays(), opt_b.state_arrays()
    assert sorted(sa) == sorted(sb)
    for k in sa:
        np.testing.assert_array_equal(sa[k], sb[k])
    assert opt_a.t == opt_b.t
    assert a.train_state.history.to_dict() == b.train_state.history.to_dict()


@pytest.mark.parametrize("net_kind", ["dense", "normalised", "mixed"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_a_flat_fit_equals_a_per_parameter_fit_bit_for_bit(
    name, options, dtype, net_kind, monkeypatch
):
    # The plain step for every optimiser (SGD would otherwise fold its update into the
    # multiplies and never reach either update).
    monkeypatch.setenv("GLASSNET_STEP", "plain")
    X, y = _data(30, 6, 4)
    a, b = NETS[net_kind](dtype), NETS[net_kind](dtype)
    opt_a, opt_b = optim.get_optimizer(name, **options), optim.get_optimizer(name, **options)
    # Three epochs of four batches, the last one short (30 = 3·8 + 6), shuffled.
    fit = {"epochs": 3, "batch_size": 8, "seed": 5}
    a.fit(X, y, optimizer=opt_a, engine=NumpyEngine(flat=True), **fit)
    b.fit(X, y, optimizer=opt_b, engine=NumpyEngine(flat=False), **fit)
    _assert_identical(a, b, opt_a, opt_b)
    # The flat fit left every parameter a view of one buffer per dtype, shaped as before.
    buffers = {p.dtype: p.base for p in a.parameters()}
    assert all(p.base is buffers[p.dtype] is not None for p in a.parameters())
    assert [p.shape for p in a.parameters()] == [p.shape for p in b.parameters()]
    # ... and the optimiser's state views of its own buffers, named per parameter as ever.
    assert set(opt_a.state_arrays()) == {
        f"{s}.{i}" for s in opt_a.state_names for i in range(len(a.parameters()))
    }


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "options"), CASES, ids=IDS)
def test_the_two_thread_step_flat_equals_it_per_parameter(name, options, dtype):
    # The halves step (two threads, their gradients summed, then the update): forced
    # here on a small network, the flat update against the per-parameter one.
    X, y = _data(40, 6, 4)
    Y = np.eye(4, dtype=dtype)[y]
    a, b = _dense(dtype), _dense(dtype)
    loss = get_loss("cross_entropy")
    opt_a, opt_b = optim.get_optimizer(name, **options), optim.get_optimizer(name, **options)
    common = {"fused": True, "batch_size": 16, "mode": "halves", "fold": False}
    flat = TrainStep(a, X.astype(dtype), Y, loss, opt_a, flat=True, **common)
    per = TrainStep(b, X.astype(dtype), Y, loss, opt_b, flat=False, **common)
    assert flat.flat is not None and per.flat is None
    rng = np.random.default_rng(2)
    for m in (16, 16, 16, 7):
        idx = rng.permutation(40)[:m]
        p1, v1 = flat(idx)
        p2, v2 = per(idx)
        np.testing.assert_array_equal(p1, p2)
        assert v1 == v2
    for x, z in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(x, z)
    for k, s in opt_a.state_arrays().items():
        np.testing.assert_array_equal(s, opt_b.state_arrays()[k])


def test_the_layout_decayed_first_aligned_and_the_gradients_the_backwards_buffers():
    net = _dense("float32")
    X, y = _data(20, 6, 4)
    Y = np.eye(4, dtype=np.float32)[y]
    step = TrainStep(
        net,
        X.astype(np.float32),
        Y,
        get_loss("cross_entropy"),
        optim.Adam(),
        fused=True,
        batch_size=8,
        mode="plain",
        flat=True,
    )
    flat = step.flat
    assert flat is not None and len(flat.groups) == 1
    group = flat.groups[0]
    params = net.parameters()
    # Each layer's W and b is its view; dW and db (what backward writes) the gradients'.
    for p, view in zip(params, flat.params, strict=True):
        assert p is view and np.shares_memory(p, group.params)
        assert p.ctypes.data % ALIGN == 0  # each on a cache line of its own
    for i, b in enumerate(step.buffers):
        dW, db = flat.grads[2 * i], flat.grads[2 * i + 1]
        assert b.dW is dW and b.db is db and np.shares_memory(dW, group.grads)
    # The weights (each layer's ``decayed``) first: decay is one slice.
    start = group.params.ctypes.data
    n = group.n_decayed * group.dtype.itemsize
    for layer in net.layers:
        for name in layer.params:
            at = getattr(layer, name).ctypes.data - start
            assert (at < n) == (name in layer.decayed)
    # The padding is zero, and stays zero through steps.
    step(np.arange(8))
    step(np.arange(8, 16))
    used = np.zeros(group.params.shape, dtype=bool)
    for _, offset, size in group.places:
        used[offset : offset + size] = True
    assert (~used).any()
    for buffer in (group.params, *opt_state_buffers(step.opt, used.size)):
        assert not buffer[~used].any()


def opt_state_buffers(opt: optim.Optimizer, size: int) -> list[np.ndarray]:
    """The optimiser's flat state buffers of ``size`` numbers, found through the views
    it hands out (parameter 0, layer 1's W, is laid first)."""
    out = []
    for views in opt.state.values():
        base = views[0].base
        start = (views[0].ctypes.data - base.ctypes.data) // base.itemsize
        out.append(base[start : start + size])
    return out


@pytest.mark.parametrize("net_kind", ["dense", "normalised"])
@pytest.mark.parametrize(
    ("name", "options"),
    [("adam", {"lr": 0.01, "weight_decay": 0.01}), ("momentum", {"lr": 0.05, "nesterov": True})],
)
def test_the_state_round_trips_through_a_model_file_after_a_flat_fit(
    name, options, net_kind, tmp_path
):
    X, y = _data(30, 6, 4)
    fit = {"epochs": 2, "batch_size": 8, "seed": 7}
    a = NETS[net_kind]("float64")
    opt = optim.get_optimizer(name, **options)
    a.fit(X, y, optimizer=opt, **fit)
    path = tmp_path / "m.npz"
    a.save(str(path))
    b = gn.load(str(path))
    loaded = b.train_state.optimizer
    assert type(loaded) is type(opt) and loaded.t == opt.t
    saved = opt.state_arrays()
    assert set(loaded.state_arrays()) == set(saved)
    for k, arr in loaded.state_arrays().items():
        np.testing.assert_array_equal(arr, saved[k])
    # Both continue one more epoch, flat: the same weights, state and history.
    a.fit(X, y, epochs=1, batch_size=8)
    b.fit(X, y, epochs=1, batch_size=8)
    _assert_identical(a, b, a.train_state.optimizer, b.train_state.optimizer)
    # And three epochs straight, per parameter, give them too.
    c = NETS[net_kind]("float64")
    c.fit(
        X,
        y,
        optimizer=optim.get_optimizer(name, **options),
        engine=NumpyEngine(flat=False),
        **{**fit, "epochs": 3},
    )
    _assert_identical(a, c, a.train_state.optimizer, c.train_state.optimizer)


class Replace(Callback):
    """At the end of epoch ``at``, gives layer ``layer``'s ``name`` a new array (its
    values times ``factor``), as a user's callback might."""

    def __init__(self, at: int, layer: int, name: str, factor: float) -> None:
        self.at, self.layer, self.name, self.factor = at, layer, name, factor
        self.given: np.ndarray | None = None

    def on_epoch_end(self, net, epoch, logs):
        if epoch == self.at:
            self.given = getattr(net.layers[self.layer], self.name) * self.factor
            setattr(net.layers[self.layer], self.name, self.given)
        return None


@pytest.mark.parametrize(
    ("net_kind", "layer", "name"),
    [("dense", 0, "W"), ("dense", 2, "b"), ("normalised", 1, "gamma")],
)
def test_a_parameter_replaced_between_epochs_is_the_one_trained(net_kind, layer, name):
    X, y = _data(30, 6, 4)
    fit = {"batch_size": 8, "seed": 3}
    a = NETS[net_kind]("float64")
    swap = Replace(1, layer, name, 0.5)
    a.fit(X, y, optimizer=optim.Adam(lr=0.01), epochs=3, callbacks=[swap], **fit)
    # The reference: one epoch, the replacement by hand, two more — per parameter, each
    # fit starting from the arrays the layers hold.
    b = NETS[net_kind]("float64")
    per = NumpyEngine(flat=False)
    b.fit(X, y, optimizer=optim.Adam(lr=0.01), epochs=1, engine=per, **fit)
    setattr(b.layers[layer], name, getattr(b.layers[layer], name) * 0.5)
    b.fit(X, y, epochs=2, engine=NumpyEngine(flat=False), **{**fit, "seed": None})
    _assert_identical(a, b, a.train_state.optimizer, b.train_state.optimizer)
    # The layer holds the trained values (a view of the buffer), not the given array.
    got = getattr(a.layers[layer], name)
    assert got is not swap.given and got.shape == swap.given.shape
    assert not np.array_equal(got, swap.given)


def test_a_replacement_of_another_shape_is_one_line():
    class Holder:
        params = ("W", "b")
        decayed = frozenset({"W"})

        def __init__(self) -> None:
            self.W = np.ones((2, 3))
            self.b = np.zeros(3)

    h = Holder()
    flat = FlatParameters.of_layers([h])
    h.W = np.ones((3, 3))
    with pytest.raises(GlassnetError, match=r"expected W shaped \(2, 3\)"):
        flat.refresh()
    # Another dtype is cast into the buffer's (the network keeps its dtype).
    h.W = np.full((2, 3), 2, dtype=np.float32)
    flat.refresh()
    assert h.W.dtype == np.float64 and (h.W == 2).all() and h.W is flat.params[0]


def test_divergence_restores_the_weights_and_the_flat_state(monkeypatch):
    class Explode(Callback):
        def on_epoch_end(self, net, epoch, logs):
            net.train_state.optimizer.lr = 1e308  # epoch 2: x·W overflows
            return None

    X, y = _data(30, 6, 4)
    fit = {"batch_size": 8, "seed": 4}
    a = _dense("float64")
    with pytest.raises(GlassnetError, match="finite loss"):
        a.fit(X, y, optimizer=optim.Adam(lr=0.01), epochs=3, callbacks=[Explode()], **fit)
    b = _dense("float64")
    b.fit(X, y, optimizer=optim.Adam(lr=0.01), epochs=1, engine=NumpyEngine(flat=False), **fit)
    for x, z in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(x, z)
    opt_a, opt_b = a.train_state.optimizer, b.train_state.optimizer
    assert opt_a.t == opt_b.t
    for k, s in opt_b.state_arrays().items():
        np.testing.assert_array_equal(opt_a.state_arrays()[k], s)


def test_a_copied_optimiser_owns_its_state():
    # --check-first-step deep-copies the optimiser: the copy's state must not be views
    # of the original's buffers (its steps would move the original's state).
    X, y = _data(16, 6, 4)
    net = _dense("float64")
    opt = optim.Adam(lr=0.01)
    net.fit(X, y, optimizer=opt, epochs=1, batch_size=8)
    twin = copy.deepcopy(opt)
    for name in opt.state_names:
        for mine, theirs in zip(opt.state[name], twin.state[name], strict=True):
            assert not np.shares_memory(mine, theirs)
            np.testing.assert_array_equal(mine, theirs)
    before = {k: a.copy() for k, a in opt.state_arrays().items()}
    params = [p.copy() for p in net.parameters()]
    twin.step(params, [np.ones_like(p) for p in params])
    for k, a in opt.state_arrays().items():
        np.testing.assert_array_equal(a, before[k])


def test_an_optimiser_that_is_not_elementwise_is_stepped_per_parameter():
    shapes: list[tuple[int, ...]] = []

    class Whole(optim.Momentum):
        elementwise = False  # e.g. a rule reading a whole parameter's norm

        def _rule(self, p, g, state, tmp, lr, g_is_scratch):
            shapes.append(p.shape)
            super()._rule(p, g, state, tmp, lr, g_is_scratch)

    X, y = _data(16, 6, 4)
    a, b = _dense("float64"), _dense("float64")
    a.fit(X, y, optimizer=Whole(lr=0.05), epochs=1, batch_size=8)
    b.fit(X, y, optimizer=optim.Momentum(lr=0.05), epochs=1, batch_size=8)
    assert set(shapes) == {p.shape for p in a.parameters()}
    for x, z in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(x, z)


@pytest.mark.parametrize("net_kind", ["dense", "normalised"])
def test_a_continued_fit_reuses_the_layout_and_takes_a_replaced_array(net_kind):
    # partial_fit and a fit continued call fit again and again: the layout the
    # optimiser's state is laid out for is reused (nothing copied), unless the network
    # changed under it (a replaced array is copied in).
    X, y = _data(30, 6, 4)
    fit = {"epochs": 1, "batch_size": 8}
    a, b = NETS[net_kind]("float64"), NETS[net_kind]("float64")
    a.fit(X, y, optimizer=optim.Adam(lr=0.01), seed=2, **fit)
    b.fit(X, y, optimizer=optim.Adam(lr=0.01), seed=2, engine=NumpyEngine(flat=False), **fit)
    opt = a.train_state.optimizer
    W, m = a.layers[0].W, opt.state["m"][0]
    # fit's default engine lays out flat (so every fit test, the traced-step comparisons
    # of tests/test_optimizers.py among them, runs the flat step).
    assert W.base is not None and opt.flat_layout is not None
    a.fit(X, y, **fit)
    b.fit(X, y, engine=NumpyEngine(flat=False), **fit)
    assert a.layers[0].W is W and opt.state["m"][0] is m
    last = a.layers[-1]
    last.W = last.W * 0.5
    b.layers[-1].W = b.layers[-1].W * 0.5
    a.fit(X, y, **fit)
    b.fit(X, y, engine=NumpyEngine(flat=False), **fit)
    assert a.layers[0].W is W and opt.state["m"][0] is m
    _assert_identical(a, b, opt, b.train_state.optimizer)
