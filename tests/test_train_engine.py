"""The engine seam: ``fit`` runs each batch through a :class:`StepEngine`.

The NumPy engine is the default; a spy shows the loop's calls; and a PyTorch engine
written here against the seam alone — the loss's own ``torch_value``, the activations'
own ``torch_module``, the optimiser's ``config()``; no name of a loss or activation —
trains to the NumPy engine's weights in float64, row weights included.
"""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet.losses import Loss
from glassnet.network import Network
from glassnet.optim import SGD, Optimizer
from glassnet.training import Callback, NumpyEngine, Rows, StepEngine

Array = np.ndarray


def _data(n: int = 50, seed: int = 0) -> tuple[Array, Array]:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 4)), rng.integers(0, 3, size=n)


class Spy(NumpyEngine):
    """The NumPy engine, counting the loop's calls."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []
        self.rows: list[int] = []

    def begin(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        self.calls.append("begin")
        super().begin(*args, **kwargs)

    def step(self, idx: Array) -> tuple[Array, float]:
        self.rows.append(idx.shape[0])
        return super().step(idx)

    def sync(self) -> None:
        self.calls.append("sync")

    def end(self) -> None:
        self.calls.append("end")
        super().end()


def test_fit_calls_the_engine_once_per_batch_and_defaults_to_numpy() -> None:
    X, y = _data()
    spy = Spy()
    a = gn.mlp([4, 5, 3], seed=1, dtype="float64")
    b = gn.mlp([4, 5, 3], seed=1, dtype="float64")
    a.fit(X, y, epochs=3, batch_size=16, optimizer=SGD(lr=0.1), engine=spy)
    b.fit(X, y, epochs=3, batch_size=16, optimizer=SGD(lr=0.1))
    # 50 rows in batches of 16: 16, 16, 16, 2 per epoch; sync at each epoch's end.
    assert spy.rows == [16, 16, 16, 2] * 3
    assert spy.calls == ["begin", "sync", "sync", "sync", "end"]
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        np.testing.assert_array_equal(p, q)


def test_the_engine_ends_and_dropout_swaps_nothing_into_the_model() -> None:
    # (Until issue 20 dropout wrapped the hidden activations during a fit and this test
    # checked they were put back after an error; now dropout is a layer of a training
    # view, and the model's own layers are never touched — during the fit included.)
    X, y = _data()
    model = gn.mlp([4, 5, 3], seed=1, dtype="float64", dropout=0.5)
    before = [layer.activation for layer in model.layers]
    layers = list(model.layers)

    class Boom(Callback):
        def on_epoch_end(self, net, epoch, logs):  # type: ignore[no-untyped-def]
            assert net.layers == layers
            assert all(lyr.activation is a for lyr, a in zip(net.layers, before, strict=True))
            raise RuntimeError("boom")

    spy = Spy()
    with pytest.raises(RuntimeError, match="boom"):
        model.fit(X, y, epochs=2, callbacks=[Boom()], engine=spy)
    assert spy.calls[-1] == "end"
    # The very objects that were there (no Dropped wrapper left behind).
    assert all(layer.activation is act for layer, act in zip(model.layers, before, strict=True))


class TorchEngine(StepEngine):
    """A PyTorch step written against the seam only (plain SGD with momentum)."""

    def __init__(self) -> None:
        self.torch = pytest.importorskip("torch")

    def begin(
        self,
        net: Network,
        loss: Loss,
        optimizer: Optimizer,
        data: Rows,
        *,
        batch_size: int,
        rng: np.random.Generator,
        dropout: float,
    ) -> None:
        torch = self.torch
        assert dropout == 0
        self.net, self.loss = net, loss
        modules = []
        for layer in net.layers:
            linear = torch.nn.Linear(layer.n_in, layer.n_out, dtype=torch.float64)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(layer.W.T.copy()))
                linear.bias.copy_(torch.from_numpy(layer.b.copy()))
            modules.append(linear)
            module = layer.activation.torch_module(torch.nn)
            if module is not None:
                modules.append(module)
        self.model = torch.nn.Sequential(*modules)
        self.linears = [m for m in modules if isinstance(m, torch.nn.Linear)]
        config = optimizer.config()
        self.opt = torch.optim.SGD(
            self.model.parameters(), lr=config["lr"], momentum=config["momentum"]
        )
        self.X, self.Y = torch.from_numpy(data.X), torch.from_numpy(data.Y)
        self.w = torch.from_numpy(data.weights) if data.weights is not None else None

    def step(self, idx: Array) -> tuple[Array, float]:
        torch = self.torch
        i = torch.from_numpy(idx)
        p = self.model(self.X[i])
        w = self.w[i] if self.w is not None else None
        value = self.loss.torch_value(torch, p, self.Y[i], w)
        if math.isfinite(value.item()):
            self.opt.zero_grad()
            value.backward()
            self.opt.step()
        return p.detach().numpy(), value.item()

    def sync(self) -> None:
        for layer, linear in zip(self.net.layers, self.linears, strict=True):
            layer.W[...] = linear.weight.detach().numpy().T
            layer.b[...] = linear.bias.detach().numpy()


@pytest.mark.parametrize(
    ("output", "loss", "weighted"),
    [("softmax", "cross_entropy", False), ("softmax", "cross_entropy", True),
     ("sigmoid", "binary_cross_entropy", True), ("identity", "mse", False)],
)  # fmt: skip
def test_a_torch_engine_plugs_into_the_seam(output: str, loss: str, weighted: bool) -> None:
    X, labels = _data(40, seed=2)
    n_out = 1 if output == "sigmoid" else 3
    y = (labels > 0).astype(float) if output == "sigmoid" else labels
    if output == "identity":
        y = np.random.default_rng(3).normal(size=(40, 3))
    options = {"sample_weight": np.random.default_rng(4).uniform(0.2, 2, 40)} if weighted else {}
    models = [
        gn.mlp([4, 6, n_out], hidden="tanh", output=output, seed=5, dtype="float64")
        for _ in range(2)
    ]
    for model, engine in zip(models, (NumpyEngine(), TorchEngine()), strict=True):
        model.fit(
            X, y, loss=loss, epochs=3, batch_size=8, optimizer=SGD(lr=0.1, momentum=0.9),
            engine=engine, **options,
        )  # fmt: skip
    for p, q in zip(*(m.parameters() for m in models), strict=True):
        np.testing.assert_allclose(q, p, rtol=1e-10, atol=1e-12)
    h1, h2 = (m.train_state.history for m in models)  # type: ignore[union-attr]
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=1e-10)


def _glassnet_imports(path: Path) -> set[str]:
    """Every glassnet module ``path`` imports: at the top, inside functions and under
    ``TYPE_CHECKING`` alike."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {m for m in found if m.startswith("glassnet")}


def test_training_never_imports_the_model_and_its_modules_form_no_cycle() -> None:
    package = Path(gn.__file__).parent / "training"
    modules = {f"glassnet.training.{p.stem}": p for p in package.glob("*.py")}
    graph = {}
    for name, path in modules.items():
        imports = _glassnet_imports(path)
        assert not any(m == "glassnet.model" or m.startswith("glassnet.model.") for m in imports)
        graph[name] = {m for m in imports if m in modules and m != name}
    graph.pop("glassnet.training.__init__")  # the re-exports, imported by nothing here
    # Depth-first: a module met again while still on the path closes a cycle.
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        assert name not in path, " -> ".join((*path, name))
        if name in done:
            return
        for nxt in graph.get(name, ()):
            visit(nxt, (*path, name))
        done.add(name)

    assert len(graph) >= 10  # the package's modules were read
    for name in graph:
        visit(name, ())
