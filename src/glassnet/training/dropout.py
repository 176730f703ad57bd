"""Dropout during ``fit``: a training view of the network with a ``dropout`` layer
(:class:`glassnet.layers.dropout.Dropout`, the same layer the traced step, explain and
check use) after each hidden layer.

Nothing is swapped into the model's own layers: the view shares them (and so their
arrays, which the optimiser updates in place) and adds the dropout layers, each drawing
its mask per batch from the fit's random stream (:meth:`Dropout.draw`).  Prediction,
validation and the model file see the model itself, without dropout.
"""

from __future__ import annotations

from glassnet.errors import GlassnetError
from glassnet.layers import Layer
from glassnet.layers.dropout import Dropout
from glassnet.network import Network


def check_dropout(p: object) -> float:
    """A dropout rate in [0, 1)."""
    if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p < 1:
        raise GlassnetError("expected a rate in [0, 1)", got=repr(p), field="dropout")
    return float(p)


def with_dropout(net: Network, rate: float) -> Network:
    """``net`` itself when ``rate`` is 0; else a network of the same layer objects with a
    dropout layer of rate ``rate`` after each hidden layer (masks drawn per batch, in
    layer order: the order of the fit's random stream)."""
    rate = check_dropout(rate)
    if rate == 0:
        return net
    layers: list[Layer] = []
    for layer in net.layers[:-1]:
        layers += [layer, Dropout(layer.n_out, p=rate)]
    return Network([*layers, net.layers[-1]])
