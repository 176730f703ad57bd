"""Model files cannot run code, and damaged or hostile ones are refused with a
GlassnetError before anything large is allocated (extends tests/test_io.py's refusals).

- pickles, whether a whole file renamed .npz or an object array's payload inside a
  member, are never unpickled: a payload that would create a file does not;
- a zip bomb (a small file inflating to a huge member) is refused from the zip's
  directory, before a byte is inflated; so are members declaring shapes that would not
  fit in memory, whatever the file's own size;
- truncated and bit-flipped files, and crafted .npy headers, only ever give GlassnetError
  (hypothesis);
- the PyTorch model files of glassnet.interop likewise.
"""

from __future__ import annotations

import io as stdio
import json
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import glassnet as gn
from glassnet import GlassnetError
from glassnet import io as gio
from glassnet import model as gmodel


class _Touch:
    """Unpickling this creates ``path`` — the proof that code ran."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (self.path,))


def _checkpoint(path: Path) -> bytes:
    net = gn.mlp([3, 4, 2], seed=0, dtype="float64")
    rng = np.random.default_rng(0)
    net.fit(rng.normal(size=(12, 3)), np.arange(12) % 2, epochs=2, optimizer="adam")
    gmodel.save(net, path, info={"classes": ["a", "b"]}, extras={"input_mean": np.zeros(3)})
    return path.read_bytes()


@pytest.fixture
def ckpt(tmp_path) -> tuple[Path, bytes]:
    path = tmp_path / "ckpt.npz"
    return path, _checkpoint(path)


def _members(raw: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(stdio.BytesIO(raw)) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def _zip(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buf = stdio.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=compression) as zf:
        for name, raw in members.items():
            zf.writestr(name, raw)
    return buf.getvalue()


def _npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    """A version 1.0 .npy header, written out by hand (the format's spec, not numpy)."""
    text = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape!r}, }}"
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")


def _refused(path: Path, match: str | None = None) -> GlassnetError:
    with pytest.raises(GlassnetError, match=match) as info:
        gmodel.load_saved(path)
    message = str(info.value)
    assert str(path) in message and "\n" not in message
    return info.value


# -- never unpickled -----------------------------------------------------------------------
def test_a_pickle_renamed_npz_does_not_run(tmp_path):
    marker = tmp_path / "ran"
    bad = tmp_path / "model.npz"
    bad.write_bytes(pickle.dumps(_Touch(marker)))
    assert pickle.loads(bad.read_bytes()) is None and marker.exists()  # it would run
    marker.unlink()
    _refused(bad, "zip")
    assert not marker.exists()


@pytest.mark.parametrize("member", ["layer1.W.npy", "meta.npy", "optimizer.m.0.npy"])
def test_an_object_array_with_a_code_payload_does_not_run(tmp_path, ckpt, member):
    marker = tmp_path / "ran"
    _, raw = ckpt
    members = _members(raw)
    members[member] = _npy_header("|O", (1,)) + pickle.dumps(np.array([_Touch(marker)]))
    bad = tmp_path / "bad.npz"
    bad.write_bytes(_zip(members))
    _refused(bad, "never objects")
    assert not marker.exists()
    with pytest.raises(ValueError):  # numpy, told not to unpickle, refuses as well
        np.load(bad, allow_pickle=False)[member[:-4]]


@pytest.mark.parametrize("descr", ["[('a', '<f8'), ('b', '<f8')]", "('<f8', (2,))"])
def test_structured_and_subarray_dtypes_are_refused(tmp_path, ckpt, descr):
    _, raw = ckpt
    members = _members(raw)
    text = f"{{'descr': {descr}, 'fortran_order': False, 'shape': (4, 2), }}"
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"
    header = b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode()
    members["layer1.W.npy"] = header + bytes(128)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(_zip(members))
    _refused(bad, "plain numeric")


# -- sizes checked before allocating -----------------------------------------------------------
def test_a_zip_bomb_is_refused_before_inflating(tmp_path, ckpt, monkeypatch):
    """64 MiB of zeros deflated to ~64 KiB, with a header and a description that agree."""
    _, raw = ckpt
    members = _members(raw)
    meta = json.loads(np.load(stdio.BytesIO(members["meta.npy"])).tobytes())
    meta["training"] = None
    meta["layers"] = [{"n_in": 2048, "n_out": 4096, "activation": {"name": "softmax"}}]
    meta_buf = stdio.BytesIO()
    np.save(meta_buf, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    bomb = tmp_path / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("meta.npy", meta_buf.getvalue(), compress_type=zipfile.ZIP_STORED)
        with zf.open("layer1.W.npy", "w", force_zip64=True) as f:
            f.write(_npy_header("<f8", (2048, 4096)))
            zeros = bytes(1 << 20)
            for _ in range(64):
                f.write(zeros)
        zf.writestr("layer1.b.npy", _npy_header("<f8", (4096,)) + bytes(8 * 4096))
        zf.writestr("extra.input_mean.npy", _npy_header("<f8", (3,)) + bytes(24))
    assert bomb.stat().st_size < 1 << 20

    def never(*args, **kwargs):
        raise AssertionError("a member was inflated")

    monkeypatch.setattr(gio.NpzReader, "read", never)
    _refused(bomb, r"compressed at most 20:1")


def test_members_larger_than_memory_are_refused_before_reading(tmp_path, ckpt, monkeypatch):
    path, _ = ckpt
    monkeypatch.setattr("glassnet.limits.memory_budget", lambda: 1000)
    monkeypatch.setattr(gio.NpzReader, "read", lambda *a: pytest.fail("read"))
    _refused(path, "fit in memory")


@pytest.mark.parametrize("shape", [(2**40,), (2**24, 2**24), (2**62, 4)])
def test_a_small_member_declaring_a_huge_shape_is_refused(tmp_path, ckpt, shape):
    """The header says huge, the member is small: numpy's own reader would first allocate
    the declared shape (np.empty), so this is checked from the header and the zip's size."""
    _, raw = ckpt
    members = _members(raw)
    members["layer1.W.npy"] = _npy_header("<f8", shape) + bytes(96)
    bad = tmp_path / "bad.npz"
    bad.write_bytes(_zip(members))
    _refused(bad, "bytes for shape")


def test_huge_declared_layers_are_refused(tmp_path, ckpt):
    _, raw = ckpt
    members = _members(raw)
    meta = json.loads(np.load(stdio.BytesIO(members["meta.npy"])).tobytes())
    meta["layers"][0]["n_out"] = 2**30
    buf = stdio.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    members["meta.npy"] = buf.getvalue()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(_zip(members))
    _refused(bad, "sizes from 1 to 2\\^24")


def test_layers_that_do_not_chain_are_refused(tmp_path, ckpt):
    """Each array matches its own description, but layer 2 does not take layer 1's output."""
    net = gn.Network(
        [gn.Dense(np.zeros((3, 4)), np.zeros(4), "relu"), gn.Dense(np.zeros((4, 2)), np.zeros(2))]
    )
    path = tmp_path / "ok.npz"
    gmodel.save(net, path)
    members = _members(path.read_bytes())
    meta = json.loads(np.load(stdio.BytesIO(members["meta.npy"])).tobytes())
    meta["layers"][1]["n_in"] = 5
    buf = stdio.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    members["meta.npy"] = buf.getvalue()
    buf = stdio.BytesIO()
    np.save(buf, np.zeros((5, 2)))
    members["layer2.W.npy"] = buf.getvalue()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(_zip(members))
    err = _refused(bad, "rows")
    assert err.layer == 2


@pytest.mark.parametrize("key,value", [("seed", -1), ("epoch", -5), ("rng", {"state": 2**200})])
def test_training_state_that_makes_no_sense_is_refused(tmp_path, ckpt, key, value):
    _, raw = ckpt
    members = _members(raw)
    meta = json.loads(np.load(stdio.BytesIO(members["meta.npy"])).tobytes())
    meta["training"][key] = value
    buf = stdio.BytesIO()
    np.save(buf, np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
    members["meta.npy"] = buf.getvalue()
    bad = tmp_path / "bad.npz"
    bad.write_bytes(_zip(members))
    _refused(bad, f"meta.training.{key}")


# -- random damage (hypothesis) ----------------------------------------------------------------
_BASE: dict[str, bytes] = {}


def _base(tmp: Path) -> bytes:
    if "raw" not in _BASE:
        _BASE["raw"] = _checkpoint(tmp / "base.npz")
    return _BASE["raw"]


def _loads_or_refuses(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    try:
        saved = gmodel.load_saved(path)
    except GlassnetError as err:
        assert "\n" not in str(err) and str(path) in str(err)
        return
    saved.network.predict_proba(np.ones((2, saved.network.sizes[0])))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_truncated_or_bit_flipped_files_only_give_glassnet_errors(tmp_path, data):
    raw = bytearray(_base(tmp_path))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    else:
        for _ in range(data.draw(st.integers(1, 8))):
            pos = data.draw(st.integers(0, len(raw) - 1))
            raw[pos] ^= data.draw(st.integers(1, 255))
    _loads_or_refuses(tmp_path / "damaged.npz", bytes(raw))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    member=st.sampled_from(["meta.npy", "layer1.W.npy", "layer2.b.npy", "optimizer.v.1.npy"]),
    descr=st.sampled_from(["<f8", "<f4", ">f8", "<i8", "|u1", "<c16", "|b1", "<U3", "|O"]),
    shape=st.lists(st.integers(0, 2**31), max_size=3).map(tuple),
    body=st.binary(max_size=200),
)
def test_crafted_npy_members_only_give_glassnet_errors(tmp_path, member, descr, shape, body):
    members = _members(_base(tmp_path))
    members[member] = _npy_header(descr, shape) + body
    _loads_or_refuses(tmp_path / "crafted.npz", _zip(members))


# -- PyTorch model files -------------------------------------------------------------------------
def test_torch_model_files_with_nonsense_are_refused(tmp_path):
    pytest.importorskip("safetensors", reason="PyTorch model files are safetensors")
    from safetensors.numpy import save

    from glassnet import interop

    cases = {
        "no slope": (
            [
                {"type": "Linear", "in_features": 2, "out_features": 2, "bias": True},
                {"type": "LeakyReLU"},
            ],
            {},
        ),
        "int weights": (
            [{"type": "Linear", "in_features": 2, "out_features": 2}],
            {"0.weight": np.zeros((2, 2), np.int64)},
        ),
        "nan weights": (
            [{"type": "Linear", "in_features": 2, "out_features": 2}],
            {"0.weight": np.full((2, 2), np.nan)},
        ),
        "extra tensor": (
            [{"type": "Linear", "in_features": 2, "out_features": 2}],
            {"evil": np.zeros(3)},
        ),
        "not a dict": (["Linear"], {}),
    }
    for name, (arch, override) in cases.items():
        tensors = {"0.weight": np.ones((2, 2)), "0.bias": np.zeros(2), **override}
        path = tmp_path / f"{name.replace(' ', '_')}.safetensors"
        path.write_bytes(save(tensors, metadata={"glassnet.torch_architecture": json.dumps(arch)}))
        with pytest.raises(GlassnetError) as info:
            interop.load_torch_model(path)
        assert str(path) in str(info.value), name
