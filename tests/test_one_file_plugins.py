"""A new layer is one class, and a new optimiser is one class: each is written here, in
this test file alone, registered, and every view takes it with nothing else edited —
`step`, `gradcheck` (against central finite differences), `explain`, `check`, `fit`,
model files.  (Removed from the registries afterwards, so other tests never see them.)
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import numpy as np
import pytest

import glassnet as gn
from glassnet import cli
from glassnet.activations import Activation
from glassnet.layers import base as layer_base
from glassnet.layers.base import Layer, config_size, identity, register_layer
from glassnet.nodes import Key, NodeDecl
from glassnet.optimizers import base as optimizer_base
from glassnet.optimizers.base import Field, Optimizer, lr_field, register
from glassnet.specvalues import LayerContext, vector

LAYER = "test_scale"
OPTIMIZER = "test_sign_descent"


class Scale(Layer):
    """a = s ⊙ x, a learned scale per feature: the smallest layer with a parameter."""

    type = LAYER
    params = ("s",)
    words = "a learned scale per feature, a = s·x"

    def __init__(self, s: np.ndarray) -> None:
        self.s = np.asarray(s)
        self.activation = identity()

    n_in = property(lambda self: int(self.s.shape[0]))  # type: ignore[assignment]
    n_out = property(lambda self: int(self.s.shape[0]))  # type: ignore[assignment]

    def kinds(self) -> tuple[str, ...]:
        return ("a", "dL_da", "ds")

    def nodes(self, layer: int, x: Key, *, first: bool) -> list[NodeDecl]:
        k = layer
        decls = [
            NodeDecl("a", k, (x, ("s", k)), lambda v: v[0] * v[1], "forward"),
            NodeDecl("ds", k, (("dL_da", k), x), lambda v: (v[0] * v[1]).sum(axis=0), "backward"),
        ]
        if not first:
            decls.append(
                NodeDecl(
                    "dL_da", k - 1, (("dL_da", k), ("s", k)), lambda v: v[0] * v[1], "backward"
                )
            )
        return decls

    def predict(self, x: np.ndarray) -> np.ndarray:
        return x * self.s

    def with_leaves(self, values: Mapping[str, np.ndarray]) -> Scale:
        return Scale(values.get("s", self.s))

    def copy(self, dtype: Any = None) -> Scale:
        return Scale(self.s.astype(dtype or self.s.dtype, copy=True))

    @classmethod
    def from_spec(cls, table: Mapping[str, Any], n_in: int, ctx: LayerContext) -> Scale:
        return Scale(vector(table["s"], "s") if "s" in table else np.ones(n_in))

    def config(self) -> dict[str, Any]:
        return {"n": self.n_in}

    @classmethod
    def from_file(
        cls,
        config: Mapping[str, Any],
        arrays: Mapping[str, np.ndarray],
        *,
        activation: Activation | None = None,
    ) -> Scale:
        return Scale(arrays["s"])

    @classmethod
    def file_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        return {"s": (config_size(config, "n"),)}


def sign_step(p: np.ndarray, g: np.ndarray, lr: float, out: np.ndarray | None = None):
    """p − lr·sign(g)."""
    return np.subtract(p, lr * np.sign(g), out=out)


class SignDescent(Optimizer):
    """Sign descent, p ← p − lr·sign(g): the smallest optimiser that is not SGD."""

    name = OPTIMIZER
    title = "sign descent"
    fields: tuple[Field, ...] = (lr_field(0.01),)  # type: ignore[misc]

    def _update(self, i: int, p: np.ndarray, g: np.ndarray, lr: float, g_is_scratch: bool) -> None:
        sign_step(p, g, lr, out=p)

    def _update_decls(self, param: str, layer: int, *, t: int, decay: bool) -> list[NodeDecl]:
        lr = self.current_lr
        ins = ((param, layer), ("d" + param, layer))
        return [NodeDecl(f"{param}_new", layer, ins, lambda v: sign_step(v[0], v[1], lr), "update")]


@pytest.fixture(autouse=True)
def registered():
    register_layer(Scale)
    register(SignDescent)
    yield
    layer_base._REGISTRY.pop(LAYER, None)
    optimizer_base._REGISTRY.pop(OPTIMIZER, None)


SPEC = f"""
loss = "mse"
lr = 0.1
optimizer = "{OPTIMIZER}"
input = [[0.5, -1.0], [0.2, 0.3]]
target = [[1.0], [0.0]]
[[layers]]
weights = [[0.2, -0.4, 0.1], [0.7, 0.3, -0.5]]
activation = "tanh"
[[layers]]
type = "{LAYER}"
s = [1.5, -0.5, 2.0]
[[layers]]
weights = [[0.3], [-0.2], [0.6]]
"""


def _forward(params: dict[str, np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    """The network's loss, written again (mse: mean over the batch of the mean over outputs)."""
    h = np.tanh(x @ params["W1"])
    out = (h * params["s"]) @ params["W3"]
    return float(((out - y) ** 2).mean(axis=1).mean())


def test_a_layer_and_an_optimiser_in_one_file_each_are_traced_and_checked(tmp_path, capsys):
    path = tmp_path / "scale.toml"
    path.write_text(SPEC)
    assert cli.main(["step", str(path), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    layer = d["layers"][1]
    assert layer["type"] == LAYER and {"a", "dL_da", "ds", "s_new"} <= set(layer)
    assert d["optimizer"]["name"] == OPTIMIZER
    # ds against a central finite difference of the loss written again above
    x, y = np.array(d["input"]), np.array(d["target"])
    params = {
        "W1": np.array(d["layers"][0]["W"]),
        "s": np.array(layer["s"]),
        "W3": np.array(d["layers"][2]["W"]),
    }
    h, numeric = 1e-6, np.zeros(3)
    for j in range(3):
        up = {**params, "s": params["s"] + h * np.eye(3)[j]}
        down = {**params, "s": params["s"] - h * np.eye(3)[j]}
        numeric[j] = (_forward(up, x, y) - _forward(down, x, y)) / (2 * h)
    np.testing.assert_allclose(layer["ds"], numeric, atol=1e-8)
    # the optimiser's rule, written again
    np.testing.assert_allclose(layer["s_new"], params["s"] - 0.1 * np.sign(numeric))
    assert cli.main(["gradcheck", str(path)]) == 0
    capsys.readouterr()
    out = tmp_path / "scale.md"
    assert cli.main(["explain", str(path), "-o", str(out)]) == 0
    assert "a learned scale per feature" in out.read_text()
    # a worksheet of the right numbers marks all ok; a wrong ds is wrong
    sheet = tmp_path / "sheet.toml"
    right = json.dumps(layer["ds"])
    sheet.write_text(SPEC + f"[values]\nds2 = {right}\n")
    assert cli.main(["check", str(sheet), "--json"]) == 0
    marks = json.loads(capsys.readouterr().out)["entries"]
    assert {e["verdict"] for e in marks if e["name"] == "ds2"} == {"ok"}


def test_fit_and_model_files_take_the_new_layer(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 2))
    y = (X[:, 0] > 0).astype(int)
    model = gn.Model(
        [
            gn.layers.Dense(rng.normal(0, 0.5, (2, 4)), np.zeros(4), "tanh"),
            Scale(np.ones(4)),
            gn.layers.Dense(rng.normal(0, 0.5, (4, 2)), np.zeros(2), "softmax"),
        ]
    )
    history = model.fit(X, y, optimizer=SignDescent(lr=0.01), epochs=20, batch_size=8)
    assert history["loss"][-1] < history["loss"][0]
    model.save(tmp_path / "m.npz")
    back = gn.load(tmp_path / "m.npz")
    assert back.layers[1].type == LAYER
    np.testing.assert_array_equal(back.forward(X), model.forward(X))
