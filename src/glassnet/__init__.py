"""glassnet: a glass-box neural-network engine.

Every number of a backpropagation step — forward, loss, backward, update — is kept
in a :class:`Trace` you can read; the same layer code trains real networks.

>>> import glassnet as gn
>>> spec = gn.load_spec("seed")
>>> round(spec.trace().loss, 5)
2.67928
"""

from glassnet import optim
from glassnet.activations import ACTIVATIONS, Activation, get_activation
from glassnet.errors import GlassnetError
from glassnet.io import load
from glassnet.layers import Dense
from glassnet.losses import LOSSES, Loss, get_loss
from glassnet.network import Network, mlp
from glassnet.spec import Spec, load_spec, parse_spec
from glassnet.trace import LayerTrace, Trace, trace_step

__version__ = "0.1.0"

__all__ = [
    "ACTIVATIONS",
    "LOSSES",
    "Activation",
    "Dense",
    "GlassnetError",
    "LayerTrace",
    "Loss",
    "Network",
    "Spec",
    "Trace",
    "__version__",
    "get_activation",
    "get_loss",
    "load",
    "load_spec",
    "mlp",
    "optim",
    "parse_spec",
    "trace_step",
]
