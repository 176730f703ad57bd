"""Layer types, one class per module of this package, found through a registry.

Every module here (except ``base``) defines one layer type and registers it with
:func:`register_layer`; importing the package imports them all, so adding a layer type is
adding one file.  ``type = "dense"`` is the default of a spec's ``[[layers]]`` table.
"""

from __future__ import annotations

import importlib
import pkgutil

from glassnet.layers.base import Layer, layer_class, layer_types, register_layer

for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

from glassnet.layers.dense import (  # noqa: E402
    Buffers,
    Cache,
    Dense,
    Grads,
    bias_grad,
    input_grad,
    linear,
    weight_grad,
)

__all__ = [
    "Buffers",
    "Cache",
    "Dense",
    "Grads",
    "Layer",
    "bias_grad",
    "input_grad",
    "layer_class",
    "layer_types",
    "linear",
    "register_layer",
    "weight_grad",
]
