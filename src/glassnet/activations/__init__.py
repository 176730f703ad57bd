"""Activation functions, one class per module of this package, found through a registry.

Every module here (except ``base``) defines one activation and registers it with
:func:`register`; importing the package imports them all, so adding an activation is
adding one file.  ``get_activation("relu")`` builds one by name; an unknown name is an
error, never a silent default.
"""

from __future__ import annotations

import importlib
import pkgutil

from glassnet.activations.base import (
    Activation,
    activation_class,
    by_torch_name,
    from_dict,
    get_activation,
    names,
    register,
)

# The activations glassnet has always exported by name; any other is found by its name
# through the registry (get_activation("elu")), so adding one edits nothing here.
for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

from glassnet.activations.identity import Identity  # noqa: E402
from glassnet.activations.leaky_relu import LeakyReLU  # noqa: E402
from glassnet.activations.relu import ReLU  # noqa: E402
from glassnet.activations.sigmoid import Sigmoid  # noqa: E402
from glassnet.activations.softmax import Softmax  # noqa: E402
from glassnet.activations.tanh import Tanh  # noqa: E402

#: The names of every registered activation (a snapshot at import; :func:`names` is live).
ACTIVATIONS: tuple[str, ...] = names()

__all__ = [
    "ACTIVATIONS",
    "Activation",
    "Identity",
    "LeakyReLU",
    "ReLU",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "activation_class",
    "by_torch_name",
    "from_dict",
    "get_activation",
    "names",
    "register",
]
