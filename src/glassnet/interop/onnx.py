"""glassnet networks as ONNX graphs: each layer's own nodes (``onnx_nodes`` of the layer
class: MatMul and Add, BatchNormalization, LayerNormalization) and each activation's
(``onnx_nodes`` of the activation class), with a model's preprocessing in front, built
with the ``onnx`` package alone (``pip install glassnet[onnx]``, imported only when used).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.fileio import atomic_write_bytes
from glassnet.model import Model
from glassnet.network import Network
from glassnet.preprocess import Preprocessing

Array = np.ndarray


# -- ONNX --------------------------------------------------------------------------------
def to_onnx(
    net: Network,
    *,
    opset: int = 17,
    input_mean: Array | None = None,
    input_scale: Array | None = None,
) -> Any:
    """An ``onnx.ModelProto``: input ``x`` (batch, n_in), output ``y`` (batch, n_out);
    per layer MatMul with W (n_in, n_out), Add b, then Relu / LeakyRelu / Sigmoid / Tanh /
    Softmax(axis=-1).  Weights are stored as float32 (ONNX's common type).

    With ``input_mean`` and ``input_scale`` — by default a :class:`~glassnet.model.Model`'s
    own preprocessing (the standardisation ``glassnet train`` saves) — the graph starts
    with (x − mean) / scale, so it takes raw features as ``glassnet predict`` does.  Then
    ``x`` is **double** and the preprocessing runs in float64 before a Cast to float:
    float32 cannot hold a raw 1e9 (or a Unix timestamp) to the units that centring keeps,
    and rounding there flipped classes.

    A model whose preprocessing fills missing cells or encodes text columns takes its raw
    columns as two inputs: ``x`` (batch, number columns), double, NaN for a missing cell,
    and ``x_text`` (batch, text columns), strings — each group in the training column
    order.  Missing cells get the stored fill (IsNaN + Where; for text, the missing
    markers ``""``, ``NA``, ``nan``, ... map to the fill); text becomes one-hot through
    an ``ai.onnx.ml`` LabelEncoder and Equal.  An unseen category gives all zeros with
    ``handle_unknown="ignore"``, else NaN inputs (so NaN outputs, never a silent answer);
    cells are not stripped of spaces as glassnet does."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: list[Any] = []
    inits: list[Any] = []
    current = "x"
    # one sample's shape: (n_in,), or (channels, height, width) for feature maps
    in_shape = list(net.layers[0].in_shape)
    graph_inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", *in_shape])]
    opsets = [helper.make_opsetid("", opset)]
    if input_mean is None and input_scale is None and isinstance(net, Model):
        pre = net.preprocessing
        if pre is not None:
            input_mean, input_scale = pre.mean, pre.scale
            if pre.columns is not None and any(
                c.kind == "text" or c.fill is not None for c in pre.columns
            ):
                graph_inputs = _onnx_encode(pre, nodes, inits)
                current = "x_encoded"
                opsets.append(helper.make_opsetid("ai.onnx.ml", 2))
    if (input_mean is None) != (input_scale is None):
        raise GlassnetError(
            "expected both input_mean and input_scale, or neither",
            got="only one",
            field="standardisation",
        )
    if input_mean is not None and input_scale is not None:
        if len(in_shape) > 1 and current != "x":
            raise GlassnetError(
                "expected numbers only (no filled or encoded columns) for a network of "
                "feature maps",
                got=f"input shape {tuple(in_shape)}",
                field="standardisation",
            )
        for name, v in (("input_mean", input_mean), ("input_scale", input_scale)):
            if np.shape(v) != (net.sizes[0],):
                raise GlassnetError(
                    f"expected {net.sizes[0]} numbers (one per input)",
                    got=f"shape {np.shape(v)}",
                    field=name,
                )
            # feature maps: one number per pixel, as the maps are shaped (C, H, W), the
            # flat row read row by row as the model's preprocessing reads it
            arr = np.asarray(v, dtype=np.float64).reshape(in_shape)
            inits.append(numpy_helper.from_array(arr, name))
        if current == "x":  # raw numbers only: x is double (see the docstring)
            graph_inputs = [
                helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["batch", *in_shape])
            ]
        nodes.append(helper.make_node("Sub", [current, "input_mean"], ["x_centred"], name="centre"))
        nodes.append(
            helper.make_node("Div", ["x_centred", "input_scale"], ["x_std64"], name="scale")
        )
        nodes.append(
            helper.make_node("Cast", ["x_std64"], ["x_std"], to=TensorProto.FLOAT, name="to_float")
        )
        current = "x_std"
    for lyr, layer in enumerate(net.layers, start=1):
        # The layer's own nodes up to z, then its activation's (each plugin's own).
        z = f"z{lyr}"
        own, own_inits = layer.onnx_nodes(helper, numpy_helper, current, z, str(lyr))
        nodes.extend(own)
        inits.extend(own_inits)
        out = "y" if lyr == len(net.layers) else f"a{lyr}"
        nodes.extend(layer.activation.onnx_nodes(helper, z, out, f"act{lyr}"))
        current = out
    graph = helper.make_graph(
        nodes,
        "glassnet",
        graph_inputs,
        [
            helper.make_tensor_value_info(
                "y", TensorProto.FLOAT, ["batch", *net.layers[-1].out_shape]
            )
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, producer_name="glassnet", opset_imports=opsets)
    model.ir_version = min(model.ir_version, 10)  # readable by current onnxruntime releases
    onnx.checker.check_model(model, full_check=True)
    return model


#: Text cells glassnet reads as missing, as the exported LabelEncoder spells them.
_ONNX_MISSING = (
    "",
    "NA",
    "na",
    "N/A",
    "n/a",
    "nan",
    "NaN",
    "NAN",
    "null",
    "NULL",
    "None",
    "none",
    "?",
)


def _onnx_encode(pre: Preprocessing, nodes: list[Any], inits: list[Any]) -> list[Any]:
    """Nodes turning the raw inputs ``x`` (number columns) and ``x_text`` (text columns)
    into the encoded values ``x_encoded`` (batch, n_inputs) that standardisation takes:
    the same imputation and one-hot encoding as :meth:`Preprocessing.encode`."""
    from onnx import TensorProto, helper, numpy_helper

    assert pre.columns is not None
    numbers = [c for c in pre.columns if c.kind == "number"]
    texts = [c for c in pre.columns if c.kind == "text"]
    inputs = []
    pieces: dict[str, str] = {}  # column name -> the tensor of its encoded inputs
    if numbers:
        inputs.append(
            helper.make_tensor_value_info("x", TensorProto.DOUBLE, ["batch", len(numbers)])
        )
        fill = np.array([c.fill if c.fill is not None else np.nan for c in numbers], np.float64)
        inits.append(numpy_helper.from_array(fill, "fill"))
        nodes.append(helper.make_node("IsNaN", ["x"], ["x_missing"], name="missing"))
        nodes.append(
            helper.make_node("Where", ["x_missing", "fill", "x"], ["x_filled"], name="impute")
        )
        for j, col in enumerate(numbers):
            idx = f"num_index{j}"
            inits.append(numpy_helper.from_array(np.array([j], np.int64), idx))
            out = f"num{j}"
            nodes.append(
                helper.make_node("Gather", ["x_filled", idx], [out], axis=1, name=f"take_{out}")
            )
            pieces[col.name] = out
    if texts:
        inputs.append(
            helper.make_tensor_value_info("x_text", TensorProto.STRING, ["batch", len(texts)])
        )
        for j, col in enumerate(texts):
            cats = list(col.categories)
            keys, values = list(cats), list(range(len(cats)))
            if col.fill is not None:  # the missing markers mean the fill value
                for marker in _ONNX_MISSING:
                    if marker not in cats:
                        keys.append(marker)
                        values.append(cats.index(str(col.fill)))
            idx, cell, code = f"text_index{j}", f"text{j}", f"code{j}"
            inits.append(numpy_helper.from_array(np.array([j], np.int64), idx))
            nodes.append(
                helper.make_node("Gather", ["x_text", idx], [cell], axis=1, name=f"take_{cell}")
            )
            nodes.append(
                helper.make_node(
                    "LabelEncoder",
                    [cell],
                    [code],
                    domain="ai.onnx.ml",
                    keys_strings=keys,
                    values_int64s=values,
                    default_int64=-1,
                    name=f"categories{j}",
                )
            )
            arange = f"arange{j}"
            inits.append(
                numpy_helper.from_array(np.arange(len(cats), dtype=np.int64)[None, :], arange)
            )
            hit, onehot = f"hit{j}", f"onehot{j}"
            nodes.append(helper.make_node("Equal", [code, arange], [hit], name=f"equal{j}"))
            nodes.append(
                helper.make_node("Cast", [hit], [onehot], to=TensorProto.DOUBLE, name=f"cast{j}")
            )
            out = onehot
            if pre.handle_unknown == "error":  # unseen: NaN inputs, never a silent zero
                neg, nan = f"negative{j}", f"nan{j}"
                zero = f"zero{j}"
                inits.append(numpy_helper.from_array(np.array(0, np.int64), zero))
                inits.append(numpy_helper.from_array(np.array(np.nan, np.float64), nan))
                nodes.append(helper.make_node("Less", [code, zero], [neg], name=f"less{j}"))
                out = f"onehot_checked{j}"
                nodes.append(
                    helper.make_node("Where", [neg, nan, onehot], [out], name=f"unknown{j}")
                )
            pieces[col.name] = out
    nodes.append(
        helper.make_node(
            "Concat", [pieces[c.name] for c in pre.columns], ["x_encoded"], axis=1, name="encode"
        )
    )
    return inputs


def export_onnx(
    net: Network,
    path: str | Path,
    *,
    opset: int = 17,
    input_mean: Array | None = None,
    input_scale: Array | None = None,
) -> None:
    """Write :func:`to_onnx`'s model to ``path`` atomically."""
    model = to_onnx(net, opset=opset, input_mean=input_mean, input_scale=input_scale)
    data = model.SerializeToString()
    atomic_write_bytes(path, data)
