"""Optimisers, one class per module of this package, found through a registry.

Every module here (except ``base``, ``schedules`` and ``flat``, the parameters laid out
end to end for a whole-buffer step) defines one optimiser and
registers it with :func:`register`; importing the package imports them all, so adding
an optimiser is adding one file.  ``get_optimizer("adam", lr=1e-3)`` builds one by name;
an unknown name is an error, never a silent default.  See :mod:`glassnet.optimizers.base`
for what a class owns.
"""

from __future__ import annotations

import importlib
import pkgutil

from glassnet.optimizers.base import (
    Field,
    Optimizer,
    get_optimizer,
    names,
    optimizer_class,
    optimizer_from_config,
    optimizer_from_spec,
    register,
    spec_keys,
)
from glassnet.optimizers.schedules import CosineLR, Schedule, StepLR, schedule_from_config

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "schedules", "flat") and not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

from glassnet.optimizers.adam import Adam  # noqa: E402
from glassnet.optimizers.adamw import AdamW  # noqa: E402
from glassnet.optimizers.momentum import Momentum  # noqa: E402
from glassnet.optimizers.rmsprop import RMSprop  # noqa: E402
from glassnet.optimizers.sgd import SGD, sgd_update  # noqa: E402

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "CosineLR",
    "Field",
    "Momentum",
    "Optimizer",
    "RMSprop",
    "Schedule",
    "StepLR",
    "get_optimizer",
    "names",
    "optimizer_class",
    "optimizer_from_config",
    "optimizer_from_spec",
    "register",
    "schedule_from_config",
    "sgd_update",
    "spec_keys",
]
