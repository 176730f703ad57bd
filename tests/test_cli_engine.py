"""The engine's CLI: seed, step --json (its schema), gradcheck, and bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import glassnet as gn


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "glassnet", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def test_seed_prints_every_layer_with_seed_names():
    r = run("seed")
    assert r.returncode == 0, r.stderr
    for name in (
        "h1_in",
        "h2_out",
        "O_out",
        "dE_dO_out",
        "dW_kl",
        "W_ij_new",
        "2.67928",
        "0.110257",
    ):
        assert name in r.stdout


def test_step_json_schema_and_values():
    r = run("step", "seed", "--json")
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    tr = gn.load_spec("seed").trace()
    assert d["loss"] == tr.loss
    assert np.array(d["loss_terms"]).shape == (1, 3)
    np.testing.assert_array_equal(d["output"], tr.output)
    assert [layer["index"] for layer in d["layers"]] == [1, 2, 3]
    assert [layer["activation"] for layer in d["layers"]] == ["relu", "sigmoid", "softmax"]
    for layer, lt in zip(d["layers"], tr.layers, strict=True):
        for key in ("z", "a", "da_dz", "dL_da", "delta", "dW", "db", "W_new", "b_new"):
            np.testing.assert_array_equal(np.array(layer[key]), getattr(lt, key))
    # batch axis kept; softmax's da_dz is the (batch, n, n) Jacobian
    assert np.array(d["layers"][0]["z"]).shape == (1, 3)
    assert np.array(d["layers"][2]["da_dz"]).shape == (1, 3, 3)
    # the stated values
    assert d["layers"][2]["W_new"][0][0] == pytest.approx(0.110257, abs=5e-7)


def test_step_input_and_target_overrides():
    r = run(
        "step", "seed", "--json", "--input", "0.5,0.5,0.5;1,0,0", "--target", "[[0,1,0],[0,0,1]]"
    )
    assert r.returncode == 0, r.stderr
    d = json.loads(r.stdout)
    assert np.array(d["output"]).shape == (2, 3)
    net = gn.load_spec("seed").network
    np.testing.assert_allclose(
        d["output"], net.forward(np.array([[0.5] * 3, [1, 0, 0]])), rtol=1e-15
    )


def test_gradcheck_passes_on_seed():
    r = run("gradcheck", "seed")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "worst relative error" in r.stdout


GOOD_LAYER = """
[[layers]]
weights = [[0.2, -0.4], [0.7, 0.3]]
bias = [0.1, 0.1]
activation = "{act}"
"""


def spec_text(
    loss="mse", act="sigmoid", lr="0.1", inp="[[0.5, -1.0]]", tgt="[[1.0, 0.0]]", layer=None
):
    head = f'loss = "{loss}"\nlr = {lr}\ninput = {inp}\ntarget = {tgt}\n'
    return head + (layer if layer is not None else GOOD_LAYER.format(act=act))


BAD_SPECS = {
    "wrong_shape": (
        spec_text(
            layer="[[layers]]\nweights = [[0.2, 0.1, 0.3]]\nbias = [0.1, "
            '0.1, 0.1]\nactivation = "relu"\n'
        ),
        ["layer 1", "weights", "rows"],
    ),
    "unknown_activation": (spec_text(act="swish"), ["layer 1", "activation", "swish"]),
    "unknown_loss": (spec_text(loss="hinge"), ["loss", "hinge"]),
    "non_number": (spec_text(inp='[["a", 1.0]]'), ["input", "number", "'a'"]),
    "nan": (spec_text(inp="[[nan, 1.0]]"), ["input", "finite", "nan"]),
    "inf_lr": (spec_text(lr="inf"), ["lr", "finite"]),
    "missing_target": (
        'loss = "mse"\nlr = 0.1\ninput = [[1.0, 2.0]]\n' + GOOD_LAYER.format(act="relu"),
        ["target", "missing"],
    ),
    "ce_without_softmax": (
        spec_text(loss="cross_entropy"),
        ["layer 1", "activation", "softmax", "sigmoid"],
    ),
    "bad_bias": (
        spec_text(layer="[[layers]]\nweights = [[0.2, 0.1], [0.1, 0.1]]\nbias = [0.1]\n"),
        ["layer 1", "bias", "2"],
    ),
    "not_toml": ("loss = = 3", ["TOML"]),
    "unknown_field": (spec_text() + "\nlearning_rate = 3\n", ["learning_rate"]),
    "target_width": (spec_text(tgt="[[1.0, 0.0, 1.0]]"), ["target", "2"]),
    "huge_units": (spec_text(layer="[[layers]]\nunits = 1000000000\n"), ["layer 1", "units"]),
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
@pytest.mark.parametrize("command", ["step", "gradcheck"])
def test_bad_spec_gives_one_line_exit_2(case, command, tmp_path):
    text, words = BAD_SPECS[case]
    path = tmp_path / f"{case}.toml"
    path.write_text(text)
    before = sorted(p.name for p in tmp_path.iterdir())
    r = run(command, str(path), cwd=tmp_path)
    assert r.returncode == 2, (r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1, r.stderr
    assert "Traceback" not in r.stderr
    assert str(path) in lines[0]
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert r.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == before


@pytest.mark.parametrize(
    "args",
    [
        ["step", "/no/such/file.toml"],
        ["step"],
        ["frobnicate"],
        ["step", "seed", "--input", "1,2"],
        ["step", "seed", "--digits", "0"],
    ],
)
def test_bad_arguments_give_one_line_exit_2(args):
    r = run(*args)
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "Traceback" not in r.stderr
