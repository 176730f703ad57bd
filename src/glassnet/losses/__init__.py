"""Loss functions, one class per module of this package, found through a registry.

Every module here (except ``base``) defines one loss and registers it with
:func:`register`; importing the package imports them all, so adding a loss is adding
one file.  ``get_loss("mse")`` builds one by name; an unknown name is an error, never a
silent default.  :func:`default_loss_for` picks the default for an output activation by
asking each loss (:meth:`Loss.default_for`), never by comparing names.
"""

from __future__ import annotations

import importlib
import pkgutil

from glassnet.losses.base import (
    Loss,
    batch_mean,
    default_loss_for,
    fused_delta_ok,
    get_loss,
    loss_class,
    names,
    register,
)

# Registration order is the order LOSSES lists them in (specs' error messages): the
# four glassnet has always had first, then any other module of the package.
for _name in ("cross_entropy", "binary_cross_entropy", "mse", "half_sse"):
    importlib.import_module(f"{__name__}.{_name}")
for _module in pkgutil.iter_modules(__path__):
    if _module.name != "base" and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

from glassnet.losses.binary_cross_entropy import BinaryCrossEntropy  # noqa: E402
from glassnet.losses.cross_entropy import CrossEntropy  # noqa: E402
from glassnet.losses.half_sse import HalfSSE  # noqa: E402
from glassnet.losses.mse import MSE  # noqa: E402

#: The names of every registered loss (a snapshot at import; :func:`names` is live).
LOSSES: tuple[str, ...] = names()

__all__ = [
    "LOSSES",
    "MSE",
    "BinaryCrossEntropy",
    "CrossEntropy",
    "HalfSSE",
    "Loss",
    "batch_mean",
    "default_loss_for",
    "fused_delta_ok",
    "get_loss",
    "loss_class",
    "names",
    "register",
]
