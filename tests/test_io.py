"""Model files: round trip, refusal of anything but plain arrays, atomic saves, and
resuming from a checkpoint bit for bit."""

from __future__ import annotations

import io as stdio
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import glassnet as gn
from glassnet import GlassnetError
from glassnet import io as gio
from glassnet import model as gmodel
from glassnet.training import Callback, Checkpoint


def blobs(n=90, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=3.0, size=(k, d))
    y = np.arange(n) % k
    return centres[y] + rng.normal(size=(n, d)), y


def trained(tmp_path=None):
    X, y = blobs()
    net = gn.mlp([4, 6, 3], hidden="leaky_relu", seed=0)
    net.layers[0].activation = gn.get_activation("leaky_relu", slope=0.2)
    net.fit(
        X,
        y,
        optimizer=gn.optim.Adam(lr=0.01, schedule=gn.optim.CosineLR(10)),
        epochs=3,
        validation_split=0.2,
        seed=4,
    )
    return net, X, y


def test_round_trip_keeps_weights_architecture_and_training_state(tmp_path):
    net, X, _y = trained()
    path = tmp_path / "model.npz"
    net.save(path)
    again = gn.load(path)
    assert again.dtype == np.float32 and again.sizes == [4, 6, 3]
    assert again.layers[0].activation.slope == 0.2
    for a, b in zip(net.parameters(), again.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(net.predict_proba(X), again.predict_proba(X))
    s, t = net.train_state, again.train_state
    assert (t.epoch, t.seed, t.loss) == (3, 4, "cross_entropy")
    assert t.optimizer.config() == s.optimizer.config()
    assert t.history.to_dict() == s.history.to_dict()
    assert t.rng.bit_generator.state == s.rng.bit_generator.state
    for k, a in s.optimizer.state_arrays().items():
        np.testing.assert_array_equal(a, t.optimizer.state_arrays()[k])


def test_file_holds_only_plain_numeric_arrays(tmp_path):
    net, *_ = trained()
    path = tmp_path / "m.npz"
    gmodel.save(net, path, extras={"input_mean": np.zeros(4)}, info={"classes": ["a", "b", "c"]})
    with np.load(path, allow_pickle=False) as npz:
        for key in npz.files:
            assert npz[key].dtype.kind in "fu", key
        meta = json.loads(npz["meta"].tobytes())
    assert meta["info"]["classes"] == ["a", "b", "c"]
    saved = gmodel.load_saved(path)
    np.testing.assert_array_equal(saved.extras["input_mean"], np.zeros(4))


def test_untrained_model_round_trip(tmp_path):
    net = gn.mlp([3, 2], output="sigmoid", dtype="float64")
    net.save(tmp_path / "m.npz")
    again = gn.load(tmp_path / "m.npz")
    assert again.train_state is None and again.dtype == np.float64


# -- refusals ---------------------------------------------------------------------------------
def _arrays(path):
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def _meta(arrays):
    return json.loads(arrays["meta"].tobytes())


def _with_meta(arrays, meta):
    arrays = dict(arrays)
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    return arrays


@pytest.fixture
def good(tmp_path):
    net, *_ = trained()
    path = tmp_path / "good.npz"
    net.save(path)
    return path


def _refused(tmp_path, arrays=None, raw=None, match=None):
    bad = tmp_path / "bad.npz"
    if raw is not None:
        bad.write_bytes(raw)
    else:
        np.savez(bad, **arrays)
    with pytest.raises(GlassnetError, match=match) as info:
        gn.load(bad)
    assert "bad.npz" in str(info.value)


def test_object_array_is_refused(tmp_path, good):
    arrays = _arrays(good)
    arrays["layer1.b"] = np.array([{"x": 1}] * 6, dtype=object)
    _refused(tmp_path, arrays, match="plain numeric")


def test_unknown_and_missing_keys_are_refused(tmp_path, good):
    arrays = _arrays(good)
    _refused(tmp_path, {**arrays, "evil": np.zeros(1)}, match="unexpected")
    del arrays["layer2.W"]
    _refused(tmp_path, arrays, match="missing")


def test_wrong_shape_dtype_and_nan_are_refused(tmp_path, good):
    arrays = _arrays(good)
    _refused(tmp_path, {**arrays, "layer1.W": np.zeros((5, 6), np.float32)}, match="shaped")
    _refused(tmp_path, {**arrays, "layer1.W": np.zeros((4, 6), np.int32)}, match="float32")
    nan = arrays["layer1.W"].copy()
    nan[0, 0] = np.nan
    _refused(tmp_path, {**arrays, "layer1.W": nan}, match="finite")


def test_architecture_not_matching_arrays_is_refused(tmp_path, good):
    arrays = _arrays(good)
    meta = _meta(arrays)
    meta["layers"][0]["n_out"] = 7
    _refused(tmp_path, _with_meta(arrays, meta), match="shaped")
    meta = _meta(arrays)
    meta["layers"][0]["activation"] = {"name": "rm -rf"}
    _refused(tmp_path, _with_meta(arrays, meta), match="activation")
    meta = _meta(arrays)
    meta["format"] = "other"
    _refused(tmp_path, _with_meta(arrays, meta), match="format")


def test_member_larger_than_its_declared_shape_is_refused(tmp_path, good):
    arrays = _arrays(good)
    meta = _meta(arrays)
    meta["extras"] = {"big": {"shape": [2], "dtype": "float64"}}
    arrays = _with_meta(arrays, meta)
    arrays["extra.big"] = np.zeros(100_000)
    # refused from the member's .npy header, before its data is read
    _refused(tmp_path, arrays, match=r"shaped \(2,\), got float64 shaped \(100000,\)")


def test_truncated_not_zip_and_pickle_files_are_refused(tmp_path, good):
    data = good.read_bytes()
    for cut in (10, len(data) // 3, len(data) - 30):
        _refused(tmp_path, raw=data[:cut])
    _refused(tmp_path, raw=b"hello, not a model\n")
    _refused(tmp_path, raw=pickle.dumps({"W": np.zeros(3)}))
    buf = stdio.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("other.txt", "x")
    _refused(tmp_path, raw=buf.getvalue(), match=r"only \.npy arrays")
    with pytest.raises(GlassnetError, match="no such file"):
        gn.load(tmp_path / "absent.npz")


# -- atomic saving -------------------------------------------------------------------------------
def test_failed_save_leaves_the_old_file_whole_and_no_temp(tmp_path, monkeypatch):
    net, _X, _ = trained()
    path = tmp_path / "model.npz"
    net.save(path)
    before = path.read_bytes()

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 partial")  # half a zip, then the disk "fills up"
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gio.np, "savez", broken_savez)
    net.layers[0].W += 1
    with pytest.raises(GlassnetError, match="No space left"):
        net.save(path)
    assert path.read_bytes() == before
    assert os.listdir(tmp_path) == ["model.npz"]


def test_save_into_missing_folder_is_an_error(tmp_path):
    with pytest.raises(GlassnetError, match="existing folder"):
        gn.mlp([2, 2]).save(tmp_path / "nope" / "m.npz")


# -- resume ---------------------------------------------------------------------------------
class Interrupt(Callback):
    def __init__(self, at):
        self.at = at

    def on_epoch_end(self, net, epoch, logs):
        if epoch == self.at:
            raise KeyboardInterrupt


@pytest.mark.parametrize(
    "make_opt",
    [
        lambda: gn.optim.Adam(lr=0.01, schedule=gn.optim.CosineLR(6)),
        lambda: gn.optim.SGD(lr=0.05, momentum=0.9, nesterov=True, weight_decay=1e-3),
        lambda: gn.optim.RMSprop(lr=0.005),
    ],
)
def test_resume_from_checkpoint_is_bit_identical(tmp_path, make_opt):
    X, y = blobs(n=100)
    options = {"epochs": 6, "batch_size": 16, "validation_split": 0.2, "seed": 11}
    whole = gn.mlp([4, 8, 3], seed=2)
    whole.fit(X, y, optimizer=make_opt(), **options)

    ckpt = str(tmp_path / "ckpt.npz")
    first = gn.mlp([4, 8, 3], seed=2)
    with pytest.raises(KeyboardInterrupt):
        # Checkpoint runs before Interrupt, so the file holds epoch 4.
        first.fit(X, y, optimizer=make_opt(), callbacks=[Checkpoint(ckpt), Interrupt(4)], **options)
    resumed = gn.load(ckpt)
    assert resumed.train_state.epoch == 4
    resumed.fit(X, y, **{**options, "epochs": 2, "seed": None})
    for a, b in zip(whole.parameters(), resumed.parameters(), strict=True):
        np.testing.assert_array_equal(a, b)
    assert whole.train_state.history.to_dict() == resumed.train_state.history.to_dict()
