"""check on steps with other layers and optimisers: worksheets name their quantities
(x_hat2, gamma2_new, m_W1, m_hat_W1, ...), the generic rules apply (a value that follows
from the person's own earlier numbers follows), and the plugins' own mistakes are named
by re-running them on the person's numbers — each planted here by a rule written out
again in the test, not by glassnet's code.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from glassnet import cli
from glassnet.check.quantities import key_name, order, spec_graph
from glassnet.spec import parse_spec

BN_SPEC = """
loss = "cross_entropy"
lr = 0.1
input = [[0.1, 0.2], [0.5, -0.3], [0.9, 0.4]]
target = [[1, 0], [0, 1], [1, 0]]
[[layers]]
weights = [[0.1, 0.2, -0.3], [0.4, -0.5, 0.6]]
bias = [0.1, 0.0, -0.1]
[[layers]]
type = "batch_norm"
gamma = [1.2, 0.8, 1.0]
beta = [0.1, -0.1, 0.0]
activation = "tanh"
[[layers]]
weights = [[0.2, -0.1], [0.3, 0.5], [-0.4, 0.1]]
activation = "softmax"
"""

ADAM_SPEC = """
loss = "mse"
lr = 0.01
optimizer = "adam"
input = [[0.1, 0.2, 0.7]]
target = [[1.0, 0.0]]
[[layers]]
weights = [[0.1, 0.2], [0.3, -0.4], [0.5, 0.6]]
bias = [0.1, -0.1]
activation = "sigmoid"
"""


def _fmt(v) -> str:
    # ten significant digits: Adam's second moments are ~1e-7, which a fixed number of
    # decimals would write as 0 (and every later number would then "follow" from it)
    if np.ndim(v) == 0:
        return f"{float(v):.10g}"
    return "[" + ", ".join(_fmt(e) for e in v) + "]"


def _sheet(spec_text: str, values: dict[str, np.ndarray]) -> str:
    lines = [spec_text, "[values]"]
    lines += [f"{name} = {_fmt(v)}" for name, v in values.items()]
    return "\n".join(lines) + "\n"


def _worked(spec_text: str, upto: str):
    """Every computed quantity of the step up to and including ``upto`` (our names), as
    the engine has it — the person's page before they make their mistake."""
    spec = parse_spec(spec_text, "s.toml")
    tr = spec.trace()
    graph = spec_graph(spec)
    values = {}
    for key in order(graph):
        if key[0] == "output" or graph.is_leaf(key):
            continue
        v = np.asarray(tr.value(key))
        values[key_name(key)] = v
        if key_name(key) == upto:
            break
    return tr, values


def _marks(tmp_path, text: str, capsys) -> dict[str, list[dict]]:
    path = tmp_path / "sheet.toml"
    path.write_text(text)
    code = cli.main(["check", str(path), "--json"])
    assert code in (0, 1)
    out = json.loads(capsys.readouterr().out)
    by: dict[str, list[dict]] = {}
    for e in out["entries"]:
        by.setdefault(e["name"], []).append(e)
    return by


def test_a_right_batch_norm_worksheet_is_all_ok(tmp_path, capsys):
    _, values = _worked(BN_SPEC, "b3_new")
    assert {"mean2", "var2", "x_hat2", "dgamma2", "dx_hat2", "gamma2_new"} <= set(values)
    marks = _marks(tmp_path, _sheet(BN_SPEC, values), capsys)
    wrong = {n: es for n, es in marks.items() if any(e["verdict"] != "ok" for e in es)}
    assert not wrong, wrong


def test_the_naive_batch_norm_backward_is_named(tmp_path, capsys):
    tr, values = _worked(BN_SPEC, "dL_da1")
    bn = tr.layer(2)
    # the classic slip, written out again: dL/dx = dx_hat / sqrt(var + eps), as if the
    # batch mean and variance did not depend on x
    values["dL_da1"] = bn.dx_hat / np.sqrt(bn.var + 1e-5)
    marks = _marks(tmp_path, _sheet(BN_SPEC, values), capsys)
    assert all(e["verdict"] == "ok" for n, es in marks.items() if n != "dL_da1" for e in es)
    planted = marks["dL_da1"]
    assert any(e["verdict"] == "wrong" for e in planted)
    named = {(e["diagnosis"], e["match"]) for e in planted if e["verdict"] == "wrong"}
    assert named == {("batch_norm_naive_backward", "exact")}, planted


def test_a_value_that_follows_from_a_wrong_mean_follows(tmp_path, capsys):
    tr, values = _worked(BN_SPEC, "x_hat2")
    wrong_mean = values["mean2"] + np.array([0.05, 0.0, 0.0])  # an arithmetic slip
    values["mean2"] = wrong_mean
    bn, a1 = tr.layer(2), tr.layer(1).a
    values["var2"] = ((a1 - wrong_mean) ** 2).mean(axis=0)  # the right rule on their mean
    values["x_hat2"] = (a1 - wrong_mean) / np.sqrt(values["var2"] + 1e-5)
    marks = _marks(tmp_path, _sheet(BN_SPEC, values), capsys)
    assert next(e["verdict"] for e in marks["mean2"]) == "wrong"
    assert {e["verdict"] for e in marks["var2"]} >= {"follows"}
    assert {e["verdict"] for e in marks["x_hat2"]} >= {"follows"}
    assert bn.x_hat.shape == values["x_hat2"].shape


def test_adam_without_bias_correction_is_named(tmp_path, capsys):
    tr, values = _worked(ADAM_SPEC, "W1_new")
    lt = tr.layer(1)
    assert {"m_W1", "v_W1", "m_hat_W1", "v_hat_W1"} <= set(values)
    # written out again: the moments used as they are, without dividing by 1 − βᵗ
    values["m_hat_W1"] = lt.m_W
    values["v_hat_W1"] = lt.v_W
    values["W1_new"] = lt.W - 0.01 * lt.m_W / (np.sqrt(lt.v_W) + 1e-8)
    marks = _marks(tmp_path, _sheet(ADAM_SPEC, values), capsys)
    for name in ("m_hat_W1", "v_hat_W1"):
        named = {(e["diagnosis"], e["match"]) for e in marks[name] if e["verdict"] == "wrong"}
        # an update mistake over the whole matrix: exact (docs/check.md, "Strength")
        assert named == {("adam_no_bias_correction", "exact")}, marks[name]
    # W1_new is the right rule on their own m̂ and v̂: it follows
    assert {e["verdict"] for e in marks["W1_new"]} == {"follows"}


def test_an_unknown_quantity_name_suggests_the_layers_own(tmp_path, capsys):
    path = tmp_path / "sheet.toml"
    path.write_text(BN_SPEC + "[values]\nx_hats2 = [[0.1, 0.2, 0.3]]\n")
    code = cli.main(["check", str(path), "--json"])
    err = capsys.readouterr()
    assert code == 2 or "x_hat2" in (err.out + err.err)
    assert "x_hat2" in (err.out + err.err)


@pytest.mark.parametrize("text", [BN_SPEC, ADAM_SPEC])
def test_the_blank_worksheet_and_key_name_every_quantity(text):
    from glassnet.check.exercise import key_values

    spec = parse_spec(text, "s.toml")
    names = [n for n, _ in key_values(spec)]
    graph = spec_graph(spec)
    want = [key_name(k) for k in order(graph) if k[0] != "output" and not graph.is_leaf(k)]
    assert names == want
