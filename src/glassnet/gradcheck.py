"""Central finite differences against the analytic gradients of a traced step."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.limits import MAX_GRADCHECK_PARAMETERS
from glassnet.losses import Loss, get_loss
from glassnet.network import Network
from glassnet.trace import trace_step

Array = np.ndarray


@dataclass
class GradCheckRow:
    """One parameter array's comparison: the worst relative error over its entries."""

    layer: int
    param: str  # the parameter's name: "W", "b", "gamma", ...
    max_abs_error: float
    max_rel_error: float


def relative_error(analytic: Array, numeric: Array) -> Array:
    """|a − n| / max(|a| + |n|, 1e-8): 0 for equal, ~1 for unrelated (the usual gradcheck form)."""
    return np.abs(analytic - numeric) / np.maximum(np.abs(analytic) + np.abs(numeric), 1e-8)


def gradcheck(
    net: Network, x: Array, y: Array, loss: str | Loss, *, eps: float = 1e-6
) -> list[GradCheckRow]:
    """Compare every parameter's gradient (dW, db, dgamma, …) of a float64 step with
    (L(θ+ε) − L(θ−ε)) / 2ε, the loss taken from the training-mode forward pass (batch
    normalisation with the batch's statistics, dropout with its mask).

    Two forward passes per parameter: networks above :data:`MAX_GRADCHECK_PARAMETERS` are refused
    (the check would run for hours), as is an ``eps`` that is not positive and finite.
    """
    if isinstance(eps, bool) or not isinstance(eps, int | float) or not 0 < eps < math.inf:
        raise GlassnetError("expected a positive finite number", got=repr(eps), field="eps")
    n_params = sum(p.size for p in net.parameters())
    if n_params > MAX_GRADCHECK_PARAMETERS:
        raise GlassnetError(
            f"expected at most {MAX_GRADCHECK_PARAMETERS:,} parameters for finite differences "
            "(two forward passes each)",
            got=f"{n_params:,}",
            field="layers",
        )
    loss_obj = get_loss(loss)
    net64 = net.copy(np.float64)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    trace = trace_step(net64, x, y, loss=loss_obj, lr=1.0)

    def value() -> float:
        return loss_obj.value(net64.forward_train(x), y)

    rows = []
    for index, (layer, lt) in enumerate(zip(net64.layers, trace.layers, strict=True), start=1):
        for pname in layer.params:
            param, analytic = getattr(layer, pname), lt.value("d" + pname)
            numeric = np.zeros_like(param)
            for pos in np.ndindex(param.shape):
                old = param[pos]
                param[pos] = old + eps
                up = value()
                param[pos] = old - eps
                down = value()
                param[pos] = old
                numeric[pos] = (up - down) / (2 * eps)
            rows.append(
                GradCheckRow(
                    index,
                    pname,
                    float(np.abs(analytic - numeric).max()),
                    float(relative_error(analytic, numeric).max()),
                )
            )
    return rows
