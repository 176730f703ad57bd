"""A dense layer's file and spec forms (its plugin's config/arrays/file_shapes/from_file
and to_spec, which the model file, the studio and exercises call) and the one TOML writer
(glassnet.toml_writer).

References: Python's own TOML reader (``tomllib``) reading back what the writer wrote,
the spec parser reading back a layer's spec fields, and the shapes written out by hand.
"""

from __future__ import annotations

import tomllib

import numpy as np
import pytest

from glassnet.activations import get_activation
from glassnet.errors import GlassnetError
from glassnet.io import read, write
from glassnet.layers import Dense
from glassnet.network import Network
from glassnet.spec import parse_spec
from glassnet.toml_writer import to_toml, toml_value, written_number


def _layer() -> Dense:
    rng = np.random.default_rng(3)
    return Dense(
        rng.normal(size=(3, 2)), rng.normal(size=2), get_activation("leaky_relu", slope=0.2)
    )


def test_file_form_round_trip():
    layer = _layer()
    arrays, description = layer.arrays(), layer.config()
    assert set(arrays) == {"W", "b"}
    assert description == {
        "n_in": 3,
        "n_out": 2,
        "activation": {"name": "leaky_relu", "slope": 0.2},
    }
    assert Dense.file_shapes(description) == {"W": (3, 2), "b": (2,)}
    back = Dense.from_file(description, arrays)
    np.testing.assert_array_equal(back.W, layer.W)
    np.testing.assert_array_equal(back.b, layer.b)
    assert back.activation == layer.activation


def test_the_model_file_stores_the_form(tmp_path):
    layer = _layer()
    write(tmp_path / "m.npz", Network([layer]))
    with np.load(tmp_path / "m.npz") as z:
        assert sorted(z.files) == ["layer1.W", "layer1.b", "meta"]
        np.testing.assert_array_equal(z["layer1.W"], layer.W)
    back = read(tmp_path / "m.npz").network.layers[0]
    np.testing.assert_array_equal(back.W, layer.W)
    assert back.activation == layer.activation


def test_spec_fields_read_back_as_the_same_layer():
    layer = _layer()
    text = to_toml(
        {
            "loss": "mse",
            "lr": 0.1,
            "input": [1.0, 2.0, 3.0],
            "target": [0.0, 1.0],
            "layers": [layer.to_spec()],
        }
    )
    spec = parse_spec(text, "t")
    (back,) = spec.network.layers
    np.testing.assert_array_equal(back.W, layer.W)  # repr of a float reads back exactly
    np.testing.assert_array_equal(back.b, layer.b)
    assert back.activation == layer.activation


def test_toml_writer_reads_back_with_tomllib():
    data = {
        "name": 'a "quoted" name\\with backslash',
        "flag": True,
        "n": 3,
        "x": [[0.1, -2.5e-8], [1.0, 3.0]],
        "odd key": {"inner": 1.5},
        "values": {"z1": ["0.10", "-1.5e-3"], "W_ij@t": [[".5"]]},
        "layers": [{"weights": [[1.0]], "bias": [0.0], "activation": "relu"}],
    }
    back = tomllib.loads(to_toml(data))
    assert back["name"] == data["name"] and back["flag"] is True and back["n"] == 3
    assert back["x"] == data["x"]
    assert back["odd key"] == {"inner": 1.5}
    assert back["layers"] == data["layers"]
    assert back["values"] == {"z1": [0.1, -0.0015], "W_ij@t": [[0.5]]}
    # a written number keeps its digits (they set the marking tolerance)
    assert "z1 = [0.10, -1.5e-3]" in to_toml(data)


def test_written_numbers():
    assert written_number(" −0.50 ", "f") == "-0.50"
    assert written_number("+.5", "f") == "0.5"
    assert written_number("007.", "f") == "7"
    for bad in ("1/2", "0,5", "1e5000", "nan"):
        with pytest.raises(GlassnetError):
            written_number(bad, "f")
    assert toml_value(float("inf")) == "inf"
    with pytest.raises(GlassnetError, match="expected a number, text, list or table"):
        toml_value(None, "f")
