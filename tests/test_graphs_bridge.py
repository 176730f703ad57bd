"""The bridge (``glassnet graph --from-spec SPEC --unit L,J``): one unit of a network's
step unrolled as a circuit.  Every value and gradient of the circuit is checked against
the network's own trace (itself checked against PyTorch and finite differences in
tests/test_step*.py): z and a, delta = ∂f/∂z, dW[i][J] and db[J] (for a batch: the
samples' circuits summed), and ∂E/∂a of the layer before as the sum of its units'
circuits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import glassnet as gn
from glassnet import cli
from glassnet.errors import GlassnetError
from glassnet.graphs import load_expression
from glassnet.graphs.bridge import unit_circuit
from glassnet.layers import Dense


def _network(acts: list[str], batch: int, seed: int, loss: str):
    rng = np.random.default_rng(seed)
    sizes = [3, 4, 3, 2]
    net = gn.Network(
        [
            Dense(rng.normal(size=(sizes[k], sizes[k + 1])), rng.normal(size=sizes[k + 1]), a)
            for k, a in enumerate(acts)
        ]
    )
    x = rng.normal(size=(batch, sizes[0]))
    y = rng.uniform(0.1, 0.9, size=(batch, sizes[-1]))
    return gn.trace_step(net, x, y, loss=loss, lr=0.1)


CASES = [
    (["sigmoid", "tanh", "sigmoid"], 1, "binary_cross_entropy"),
    (["relu", "leaky_relu", "identity"], 1, "mse"),
    (["elu", "sigmoid", "identity"], 3, "half_sse"),
    (["tanh", "relu", "sigmoid"], 2, "mse"),
]


@pytest.mark.parametrize(("acts", "batch", "loss"), CASES)
def test_every_unit_of_every_layer_is_the_trace(acts: list[str], batch: int, loss: str) -> None:
    trace = _network(acts, batch, 5, loss)
    for L, lt in enumerate(trace.layers, start=1):
        n_in, n_out = lt.W.shape
        dW, db = np.zeros_like(lt.W), np.zeros_like(lt.b)
        dx = np.zeros((batch, n_in))
        for j in range(n_out):
            for s in range(batch):
                t = unit_circuit(trace, L, j + 1, s + 1)
                ct = t.circuit.trace(t.values)
                close = {"rtol": 1e-12, "atol": 1e-14}
                np.testing.assert_allclose(ct.value("z"), lt.z[s, j], **close)
                if "a" in t.circuit.nodes:
                    np.testing.assert_allclose(ct.value("a"), lt.a[s, j], **close)
                np.testing.assert_allclose(ct.grad("z"), lt.delta[s, j], **close)
                dW[:, j] += [ct.grad(f"w{i + 1}") for i in range(n_in)]
                db[j] += ct.grad("b")
                dx[s] += [ct.grad(f"x{i + 1}") for i in range(n_in)]
        np.testing.assert_allclose(dW, lt.dW, rtol=1e-11, atol=1e-14)
        np.testing.assert_allclose(db, lt.db, rtol=1e-11, atol=1e-14)
        if L > 1:  # the layer before's dE/da: the sum of this layer's units' parts
            np.testing.assert_allclose(dx, trace.layer(L - 1).dL_da, rtol=1e-11, atol=1e-14)


def test_the_seed_units_hidden_layer() -> None:
    trace = gn.load_spec("seed").trace()
    t = unit_circuit(trace, 2, 1)
    assert t.circuit.source.splitlines()[0] == "z = w1 * x1 + w2 * x2 + w3 * x3 + b"
    ct = t.circuit.trace(t.values)
    assert ct.value("z") == pytest.approx(trace.layer(2).z[0, 0], rel=1e-14)
    assert [ct.grad(f"w{i}") for i in (1, 2, 3)] == pytest.approx(
        trace.layer(2).dW[:, 0].tolist(), rel=1e-12
    )


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--unit", "3,1"], ["softmax", "--unit"]),  # the seed's output layer
        (["--unit", "4,1"], ["from 1 to 3"]),
        (["--unit", "1,9"], ["from 1 to 3"]),
        (["--unit", "1"], ["like 2,1"]),
        (["--unit", "1,1", "--sample", "2"], ["--sample"]),
        (["--unit", "1,1", "--round", "2"], ["--round"]),
        ([], ["--unit L,J"]),
    ],
)
def test_bad_bridge_requests_get_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], words: list[str]
) -> None:
    assert cli.main(["graph", "--from-spec", "seed", *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    for w in words:
        assert w in err, err


def test_a_layer_that_is_not_dense_is_refused() -> None:
    from glassnet.layers.batch_norm import BatchNorm

    rng = np.random.default_rng(0)
    net = gn.Network(
        [
            Dense(rng.normal(size=(2, 3)), np.zeros(3), "relu"),
            BatchNorm(3),
            Dense(rng.normal(size=(3, 1)), np.zeros(1), "sigmoid"),
        ]
    )
    x, y = rng.normal(size=(4, 2)), rng.uniform(0.1, 0.9, size=(4, 1))
    trace = gn.trace_step(net, x, y, loss="mse", lr=0.1)
    with pytest.raises(GlassnetError, match="expected a dense layer"):
        unit_circuit(trace, 2, 1)
    t = unit_circuit(trace, 3, 1, 4)  # the dense layer after it is: x is its output
    assert t.values["x1"] == trace.layer(3).x[3, 0]


def test_command_saves_an_expression_file_explain_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "unit.toml"
    argv = ["graph", "--from-spec", "seed", "--unit", "1,2", "--save", str(saved), "--json"]
    assert cli.main(argv) == 0
    data = json.loads(capsys.readouterr().out)
    trace = gn.load_spec("seed").trace()
    nodes = {n["name"]: n for n in data["nodes"]}
    assert nodes["z"]["grad"] == pytest.approx(trace.layer(1).delta[0, 1], rel=1e-12)
    again = load_expression(str(saved))  # the file holds the trace's float64 numbers
    t = unit_circuit(trace, 1, 2)
    assert again.values == t.values and again.circuit.source == t.circuit.source
    assert cli.main(["explain", str(saved), "-o", str(tmp_path / "unit.md")]) == 0
    assert "ReLU gate" in (tmp_path / "unit.md").read_text(encoding="utf-8")  # seed: relu


def test_a_softmax_unit_is_refused_by_name() -> None:
    trace = gn.load_spec("seed").trace()
    with pytest.raises(GlassnetError, match="softmax"):
        unit_circuit(trace, 3, 1)
