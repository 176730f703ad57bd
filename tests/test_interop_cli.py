"""The PyTorch bridge from the command line: `glassnet export`, and specs/worksheets that
name a model file (`model = "net.safetensors"`), so explain and check work on a PyTorch
model's step."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import glassnet as gn
from glassnet.interop import load_torch_model, save_torch_model

pytest.importorskip("safetensors", reason="safetensors is not installed (glassnet[torch])")

SEED_STEP = """
loss = "binary_cross_entropy"
lr = 0.01
update_bias = false
input = [0.1, 0.2, 0.7]
target = [1.0, 0.0, 0.0]
"""


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "glassnet", *args], capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def seed_model_spec(tmp_path):
    save_torch_model(gn.load_spec("seed").network, tmp_path / "seed.safetensors")
    spec = tmp_path / "from_torch.toml"
    spec.write_text('model = "seed.safetensors"\n' + SEED_STEP)
    return spec


def test_model_spec_traces_the_same_step(seed_model_spec):
    ours = gn.load_spec("seed").trace()
    theirs = gn.load_spec(seed_model_spec).trace()
    assert theirs.loss == ours.loss
    for a, b in zip(ours.layers, theirs.layers, strict=True):
        for name in ("z", "a", "da_dz", "dL_da", "delta", "dW", "db", "W_new", "b_new"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))


def test_explain_is_the_same_from_either_side(seed_model_spec):
    from glassnet.explain import explain

    ours = explain(gn.load_spec("seed").trace(), format="md", title="t")
    theirs = explain(gn.load_spec(seed_model_spec).trace(), format="md", title="t")
    assert ours == theirs
    r = run("explain", str(seed_model_spec), "--format", "md")
    assert r.returncode == 0, r.stderr
    assert "O_{out" in r.stdout or "O_out" in r.stdout


def test_check_a_worksheet_on_a_torch_model(tmp_path, seed_model_spec):
    sheet = tmp_path / "sheet.toml"
    # Values worked by hand from the seed's definitions (tests/test_seed.py has the
    # independent computation): h1_in = x @ W_ij + 1 = [1.35, 1.27, 1.8];
    # O_out = softmax(O_in) = [0.19845, 0.28536, 0.51620].
    values = "[values]\nh1_in = [1.35, 1.27, 1.8]\nO_out = [0.19845, 0.28536, 0.51620]\n"
    sheet.write_text(seed_model_spec.read_text() + "\n" + values)
    r = run("check", str(sheet), "--json")
    assert r.returncode == 0, r.stderr
    import json

    entries = json.loads(r.stdout)["entries"]
    assert entries and all(e["verdict"] == "ok" for e in entries)


def test_model_spec_errors(tmp_path):
    spec = tmp_path / "bad.toml"
    spec.write_text('model = "missing.safetensors"\n' + SEED_STEP)
    with pytest.raises(gn.GlassnetError, match=r"missing\.safetensors"):
        gn.load_spec(spec)
    save_torch_model(gn.mlp([2, 3], seed=0, dtype="float64"), tmp_path / "two.safetensors")
    spec.write_text('model = "two.safetensors"\n' + SEED_STEP)
    with pytest.raises(gn.GlassnetError, match="input"):
        gn.load_spec(spec)
    spec.write_text(
        'model = "two.safetensors"\n'
        + SEED_STEP
        + '[[layers]]\nunits = 3\nactivation = "softmax"\n'
    )
    with pytest.raises(gn.GlassnetError, match="not both"):
        gn.load_spec(spec)


def test_export_round_trips_through_torch_and_npz(tmp_path):
    net = gn.mlp([4, 6, 3], hidden="tanh", output="softmax", seed=4, dtype="float32")
    net.save(tmp_path / "m.npz")
    r = run(
        "export",
        str(tmp_path / "m.npz"),
        "--format",
        "torch",
        "-o",
        str(tmp_path / "m.safetensors"),
    )
    assert r.returncode == 0, r.stderr
    r = run(
        "export",
        str(tmp_path / "m.safetensors"),
        "--format",
        "npz",
        "-o",
        str(tmp_path / "back.npz"),
    )
    assert r.returncode == 0, r.stderr
    back = gn.load(tmp_path / "back.npz")
    for a, b in zip(net.layers, back.layers, strict=True):
        assert a.W.tobytes() == b.W.tobytes() and a.b.tobytes() == b.b.tobytes()
    assert (
        load_torch_model(tmp_path / "m.safetensors").layers[0].W.tobytes()
        == net.layers[0].W.tobytes()
    )


def test_export_onnx_of_a_trained_model_takes_raw_features(tmp_path):
    ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
    pytest.importorskip("sklearn", reason="scikit-learn is not installed")
    model = tmp_path / "iris.npz"
    r = run("train", "--data", "iris", "--layers", "8", "--epochs", "3", "--out", str(model))
    assert r.returncode == 0, r.stderr
    r = run("export", str(model), "--format", "onnx", "-o", str(tmp_path / "iris.onnx"))
    assert r.returncode == 0, r.stderr
    from glassnet.model import load_saved

    saved = load_saved(model)
    raw = np.random.default_rng(0).normal(5, 2, size=(10, 4))  # raw rows go in as double
    standardised = (raw - saved.extras["input_mean"]) / saved.extras["input_scale"]
    expected = saved.network.forward(standardised.astype(saved.network.dtype))
    sess = ort.InferenceSession(str(tmp_path / "iris.onnx"), providers=["CPUExecutionProvider"])
    (got,) = sess.run(None, {"x": raw})
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "args",
    [
        ["export", "seed", "--format", "onnx", "-o", "/no/such/folder/m.onnx"],
        ["export", "nothing.npz", "--format", "torch", "-o", "x.safetensors"],
        ["export", "seed", "--format", "pdf", "-o", "x"],
        ["export", "model.bin", "--format", "onnx", "-o", "x.onnx"],
    ],
)
def test_export_bad_input_is_one_line_exit_2(args, tmp_path):
    r = subprocess.run(
        [sys.executable, "-m", "glassnet", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=120,
    )
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []
