"""Optimisers and learning-rate schedules: ``gn.optim.Adam(lr=1e-3)``.

The optimisers are plugins, one class per file of :mod:`glassnet.optimizers`; this
module keeps the names glassnet has always exported there.

=========  ===========================================================================
SGD        ``p ← p − lr·g``
Momentum   ``v ← μ v + g``;  ``p ← p − lr·v`` (Nesterov: ``p ← p − lr·(g + μ v)``);
           PyTorch's convention.  ``SGD(momentum=μ)`` builds one.
Adam       ``m ← β1 m + (1−β1) g``;  ``v ← β2 v + (1−β2) g²``;
           ``p ← p − lr · m̂ / (√v̂ + ε)`` with ``m̂ = m/(1−β1ᵗ)``, ``v̂ = v/(1−β2ᵗ)``.
AdamW      ``p ← p − lr·λ·p``, then Adam's step (decoupled weight decay).
RMSprop    ``s ← ρ s + (1−ρ) g²``;  ``p ← p − lr · g / (√s + ε)``.
=========  ===========================================================================

L2 weight decay (every optimiser but AdamW) adds ``λ·W`` to the gradient of every
weight matrix and convolution kernel before the rule (biases are not decayed, as in
scikit-learn's ``alpha``).
A schedule scales the learning rate per epoch: ``lr_epoch = lr · schedule.factor(epoch)``,
epochs from 0.

>>> import numpy as np
>>> W = np.array([[1.0]]); opt = SGD(lr=0.5)
>>> opt.step([W], [np.array([[2.0]])]); W.tolist()
[[0.0]]
"""

from __future__ import annotations

from glassnet.optimizers import (
    SGD,
    Adam,
    AdamW,
    CosineLR,
    Momentum,
    Optimizer,
    RMSprop,
    Schedule,
    StepLR,
    get_optimizer,
    optimizer_from_config,
    optimizer_from_spec,
    schedule_from_config,
    sgd_update,
)
from glassnet.optimizers.base import _REGISTRY

#: Every registered optimiser class by name (the live registry).
OPTIMIZERS = _REGISTRY

__all__ = [
    "OPTIMIZERS",
    "SGD",
    "Adam",
    "AdamW",
    "CosineLR",
    "Momentum",
    "Optimizer",
    "RMSprop",
    "Schedule",
    "StepLR",
    "get_optimizer",
    "optimizer_from_config",
    "optimizer_from_spec",
    "schedule_from_config",
    "sgd_update",
]
