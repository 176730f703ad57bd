"""A dense layer's serialised form, in one place: its arrays by name and a description.

Every file that stores a layer goes through :func:`dense_to_form` and
:func:`dense_from_form` — the model file (:mod:`glassnet.io`: arrays ``layer{i}.W``,
``layer{i}.b`` and the description in its ``meta``), the PyTorch safetensors file
(:mod:`glassnet.interop.torch`, which renames the arrays to ``Linear``'s ``weight`` =
Wᵀ and ``bias``), and a spec's ``[[layers]]`` table (:func:`dense_spec_fields`, which the
studio and the exercises write).  So what a layer is on disk is said once; when layers
become plugins this is the Dense plugin's serialiser.

=============  ===============================================================
arrays         ``{"W": (n_in, n_out), "b": (n_out,)}``
description    ``{"n_in": int, "n_out": int, "activation": {"name": ..., options}}``
=============  ===============================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from glassnet.activations import Activation
from glassnet.activations import from_dict as activation_from_dict
from glassnet.layers import Dense

Array = np.ndarray

#: The arrays of a dense layer, in the order its parameters are listed ([W, b]).
DENSE_ARRAYS: tuple[str, ...] = ("W", "b")


def dense_to_form(layer: Dense) -> tuple[dict[str, Array], dict[str, Any]]:
    """``layer`` -> (arrays, description) (see the module docstring).  The arrays are
    the layer's own (not copies): a writer stores them as they are."""
    arrays = {"W": layer.W, "b": layer.b}
    description = {
        "n_in": layer.n_in,
        "n_out": layer.n_out,
        "activation": layer.activation.to_dict(),
    }
    return arrays, description


def dense_form_shapes(description: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shape of each array a description implies — for a reader that checks a
    file's arrays before it reads them."""
    n_in, n_out = int(description["n_in"]), int(description["n_out"])
    return {"W": (n_in, n_out), "b": (n_out,)}


def dense_from_form(
    arrays: Mapping[str, Array],
    description: Mapping[str, Any],
    activation: Activation | None = None,
) -> Dense:
    """(arrays, description) -> the layer.  ``activation``: one the caller has already
    resolved (a model file's custom objects, a PyTorch module); otherwise the
    description's.  The arrays' shapes must be those :func:`dense_form_shapes` says."""
    act = activation if activation is not None else activation_from_dict(description["activation"])
    return Dense(arrays["W"], arrays["b"], act)


def dense_spec_fields(layer: Dense) -> dict[str, Any]:
    """The layer as a spec's ``[[layers]]`` table (plain lists and numbers): ``weights``
    (n_in, n_out), ``bias``, ``activation`` by name and the activation's options
    (leaky_relu's ``slope``, elu's ``alpha``) as fields of the layer, as the spec reader
    takes them."""
    arrays, description = dense_to_form(layer)
    act = dict(description["activation"])
    fields: dict[str, Any] = {
        "weights": arrays["W"].tolist(),
        "bias": arrays["b"].tolist(),
        "activation": act.pop("name"),
    }
    fields.update({k: float(v) for k, v in act.items()})
    return fields
