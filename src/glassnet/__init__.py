"""glassnet: a glass-box neural-network engine.

Every number of a backpropagation step — forward, loss, backward, update — is kept
in a :class:`Trace` you can read; the same layer code trains real networks.

>>> import glassnet as gn
>>> spec = gn.load_spec("seed")
>>> round(spec.trace().loss, 5)
2.67928

The names below are imported on first use (PEP 562 ``__getattr__``), so ``import
glassnet`` — and ``glassnet --help`` — does not load NumPy until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_LAZY: dict[str, str] = {
    "optim": "glassnet.optim",
    "ACTIVATIONS": "glassnet.activations",
    "Activation": "glassnet.activations",
    "get_activation": "glassnet.activations",
    "GlassnetError": "glassnet.errors",
    "load": "glassnet.model",
    "Model": "glassnet.model",
    "Dense": "glassnet.layers",
    "LOSSES": "glassnet.losses",
    "Loss": "glassnet.losses",
    "get_loss": "glassnet.losses",
    "Network": "glassnet.network",
    "mlp": "glassnet.model",
    "cnn": "glassnet.model",
    "Spec": "glassnet.spec",
    "load_spec": "glassnet.spec",
    "parse_spec": "glassnet.spec",
    "LayerTrace": "glassnet.trace",
    "Trace": "glassnet.trace",
    "trace_step": "glassnet.trace",
    "apply_step": "glassnet.trace",
    "preprocessing_from": "glassnet.tables",
    "expand_dates": "glassnet.tables",
}

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "Activation",
    "Dense",
    "GlassnetError",
    "LayerTrace",
    "Loss",
    "Model",
    "Network",
    "Spec",
    "Trace",
    "__version__",
    "apply_step",
    "cnn",
    "expand_dates",
    "get_activation",
    "get_loss",
    "load",
    "load_spec",
    "mlp",
    "optim",
    "parse_spec",
    "preprocessing_from",
    "trace_step",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'glassnet' has no attribute {name!r}")
    value = importlib.import_module(module)
    if name != "optim":
        value = getattr(value, name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # for type checkers and IDEs: the names as if imported eagerly
    from glassnet import optim
    from glassnet.activations import ACTIVATIONS, Activation, get_activation
    from glassnet.errors import GlassnetError
    from glassnet.layers import Dense
    from glassnet.losses import LOSSES, Loss, get_loss
    from glassnet.model import Model, cnn, load, mlp
    from glassnet.network import Network
    from glassnet.spec import Spec, load_spec, parse_spec
    from glassnet.tables import expand_dates, preprocessing_from
    from glassnet.trace import LayerTrace, Trace, apply_step, trace_step
