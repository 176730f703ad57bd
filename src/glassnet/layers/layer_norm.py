"""Layer normalisation (Ba, Kiros & Hinton, 2016), as PyTorch's ``nn.LayerNorm`` over the
last dimension computes it.

Per sample s, over its D features::

    mean_s = (1/D) Σ_j x_sj            var_s = (1/D) Σ_j (x_sj − mean_s)²   (biased)
    x_hat  = (x − mean) / √(var + eps)
    z      = gamma · x_hat + beta        a = f(z)   (the activation, identity by default)

Unlike batch normalisation, each sample is normalised on its own: training and
prediction compute the same, and there are no running statistics.  The backward pass
couples a sample's features (each x_hat depends on the sample's mean and variance)::

    dx_hat = delta · gamma                                  (delta = dL/dz)
    dL/dx  = (1 / (D·√(var + eps))) · (D·dx_hat − Σ_j dx_hat − x_hat · Σ_j dx_hat·x_hat)

Shapes: x, x_hat, z, a, delta, dx_hat (batch, n); mean, var (batch,); gamma, beta,
dgamma, dbeta (n,).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.activations import Activation, from_dict, get_activation
from glassnet.errors import GlassnetError
from glassnet.layers.base import (
    Layer,
    activation_symbols,
    check_fields,
    checked_tensors,
    config_activation,
    config_size,
    feature_vector,
    identity,
    normalisation_code,
    normalisation_nodes,
    normalisation_symbols,
    read_activation,
    register_layer,
    tensor_of,
)
from glassnet.nodes import Key, NodeDecl, Rule
from glassnet.specvalues import LayerContext, number, vector

if TYPE_CHECKING:
    from glassnet.mathtree import Node

Array = np.ndarray


def sample_mean(x: Array) -> Array:
    """mean_s = (1/D) Σ_j x_sj: (batch, n) -> (batch,)."""
    return x.mean(axis=1)


def sample_var(x: Array, mean: Array) -> Array:
    """(1/D) Σ_j (x_sj − mean_s)²: (batch, n), (batch,) -> (batch,)."""
    return ((x - mean[:, None]) ** 2).mean(axis=1)


def normalise(x: Array, mean: Array, var: Array, eps: float) -> Array:
    """x_hat = (x − mean_s)/√(var_s + eps), (batch, n)."""
    return (x - mean[:, None]) / np.sqrt(var[:, None] + eps)


def input_grad(dx_hat: Array, x_hat: Array, var: Array, eps: float) -> Array:
    """dL/dx through each sample's mean and variance (the module docstring), (batch, n)."""
    d = dx_hat.shape[1]
    inv = 1.0 / np.sqrt(var[:, None] + eps)
    return (inv / d) * (
        d * dx_hat
        - dx_hat.sum(axis=1, keepdims=True)
        - x_hat * (dx_hat * x_hat).sum(axis=1, keepdims=True)
    )


def naive_input_grad(dx_hat: Array, var: Array, eps: float) -> Array:
    """The slip: dx_hat/√(var + eps), the mean and variance taken as constants."""
    return dx_hat / np.sqrt(var[:, None] + eps)


@register_layer
class LayerNorm(Layer):
    """Layer normalisation over the features of each sample, with a learned scale
    ``gamma`` and shift ``beta`` and an optional activation after them.

    >>> ln = LayerNorm(2)
    >>> ln.predict(np.array([[1.0, 3.0]])).round(4).tolist()
    [[-1.0, 1.0]]
    """

    type = "layer_norm"
    params = ("gamma", "beta")
    decayed = frozenset[str]()  # norm scales are not decayed (fit decays matrices only)
    biases = frozenset({"beta"})
    words = (
        "layer normalisation: each sample's features centred and scaled by that sample's "
        "mean and variance, then z = gamma·x_hat + beta"
    )
    spec_fields = frozenset({"type", "gamma", "beta", "eps", "activation"})

    def __init__(
        self,
        n: int,
        *,
        gamma: Array | None = None,
        beta: Array | None = None,
        eps: float = 1e-5,
        activation: str | Activation | None = None,
        dtype: Any = np.float64,
    ) -> None:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise GlassnetError("expected a whole number of features >= 1", got=repr(n))
        self.n = int(n)
        self.gamma = feature_vector(gamma, self.n, 1.0, "gamma", dtype)
        self.beta = feature_vector(beta, self.n, 0.0, "beta", dtype)
        if not (isinstance(eps, int | float) and not isinstance(eps, bool) and eps > 0):
            raise GlassnetError("expected a positive number", got=repr(eps), field="eps")
        self.eps = float(eps)
        self.activation = identity() if activation is None else get_activation(activation)

    @property
    def n_in(self) -> int:
        return self.n

    @property
    def n_out(self) -> int:
        return self.n

    # -- the step graph ----------------------------------------------------------------
    def kinds(self) -> tuple[str, ...]:
        return (
            "mean",
            "var",
            "x_hat",
            "z",
            "a",
            "da_dz",
            "dL_da",
            "delta",
            "dgamma",
            "dbeta",
            "dx_hat",
        )

    def nodes(self, layer: int, x: Key, *, first: bool) -> list[NodeDecl]:
        eps = self.eps
        return normalisation_nodes(
            layer,
            x,
            first=first,
            act=self.activation,
            mean=sample_mean,
            var=sample_var,
            normalise=lambda xs, mu, s2: normalise(xs, mu, s2, eps),
            input_grad=lambda d, xh, s2: input_grad(d, xh, s2, eps),
        )

    def alternatives(self, layer: int) -> dict[str, dict[Key, Rule]]:
        """The naive backward that treats each sample's mean and variance as constants."""
        eps = self.eps
        if layer == 1:
            return {}
        return {
            "layer_norm_naive_backward": {
                ("dL_da", layer - 1): lambda v: naive_input_grad(v[0], v[2], eps)
            }
        }

    # -- the fast path -----------------------------------------------------------------
    def predict(self, x: Array) -> Array:
        mean = sample_mean(x)
        x_hat = normalise(x, mean, sample_var(x, mean), self.eps)
        return self.activation.forward(self.gamma * x_hat + self.beta)

    # -- copies, the spec, files --------------------------------------------------------
    def with_leaves(self, values: Mapping[str, Array]) -> LayerNorm:
        return LayerNorm(
            self.n,
            gamma=values.get("gamma", self.gamma),
            beta=values.get("beta", self.beta),
            eps=self.eps,
            activation=self.activation,
        )

    def copy(self, dtype: Any = None) -> LayerNorm:
        return LayerNorm(
            self.n,
            gamma=self.gamma.astype(dtype or self.gamma.dtype, copy=True),
            beta=self.beta.astype(dtype or self.beta.dtype, copy=True),
            eps=self.eps,
            activation=self.activation,
        )

    @classmethod
    def from_spec(cls, ld: Mapping[str, Any], n_in: int, ctx: LayerContext) -> LayerNorm:
        """``gamma`` (ones), ``beta`` (zeros), ``eps`` (1e-5), ``activation`` (identity)."""
        activation = read_activation(ld)
        check_fields(ld, cls.spec_fields | set(type(activation).defaults), "layer_norm")
        arrays = {k: vector(ld[k], k) for k in cls.params if k in ld}
        for name, v in arrays.items():
            if v.shape != (n_in,):
                raise GlassnetError(
                    f"expected {n_in} numbers (one per feature of the layer's input)",
                    got=str(v.size),
                    field=name,
                )
        eps = number(ld.get("eps", 1e-5), "eps")
        return LayerNorm(n_in, **arrays, eps=eps, activation=activation)

    def config(self) -> dict[str, Any]:
        return {"n": self.n, "eps": self.eps, "activation": self.activation.to_dict()}

    @classmethod
    def from_file(
        cls,
        config: Mapping[str, Any],
        arrays: Mapping[str, Array],
        *,
        activation: Activation | None = None,
    ) -> LayerNorm:
        return LayerNorm(
            int(config["n"]),
            gamma=arrays["gamma"],
            beta=arrays["beta"],
            eps=float(config["eps"]),
            activation=activation or from_dict(dict(config["activation"])),
        )

    @classmethod
    def file_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        n = config_size(config, "n")
        config_activation(config)
        number(config.get("eps"), "eps")
        return {"gamma": (n,), "beta": (n,)}

    # -- PyTorch ------------------------------------------------------------------------
    torch_name = "LayerNorm"

    def torch_data(self) -> tuple[dict[str, Any], dict[str, Array]]:
        arch = {"type": "LayerNorm", "normalized_shape": [self.n], "eps": self.eps}
        return arch, {
            "weight": np.ascontiguousarray(self.gamma),
            "bias": np.ascontiguousarray(self.beta),
        }

    @classmethod
    def from_torch_data(cls, arch: Mapping[str, Any], tensors: Mapping[str, Array]) -> LayerNorm:
        shape = arch.get("normalized_shape")
        n = shape[0] if isinstance(shape, list) and len(shape) == 1 else None
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise GlassnetError(
                "expected one normalised dimension >= 1 (the features)",
                got=repr(shape),
                field="normalized_shape",
            )
        t = checked_tensors(tensors, {"weight": (n,), "bias": (n,)})
        return LayerNorm(
            n,
            gamma=t["weight"],
            beta=t["bias"],
            eps=number(arch.get("eps", 1e-5), "eps"),
            dtype=t["weight"].dtype,
        )

    @classmethod
    def torch_data_of(cls, module: Any) -> tuple[dict[str, Any], dict[str, Array]]:
        if not module.elementwise_affine or module.bias is None:
            raise GlassnetError(
                "expected LayerNorm with elementwise_affine and a bias",
                got="without",
                field="module",
            )
        shape = [int(n) for n in module.normalized_shape]
        arch = {"type": "LayerNorm", "normalized_shape": shape, "eps": float(module.eps)}
        return arch, {"weight": tensor_of(module, "weight"), "bias": tensor_of(module, "bias")}

    # -- ONNX ---------------------------------------------------------------------------
    def onnx_nodes(
        self, helper: Any, numpy_helper: Any, x: str, z: str, prefix: str
    ) -> tuple[list[Any], list[Any]]:
        """LayerNormalization over the last axis (opset 17)."""
        g, b = f"gamma{prefix}", f"beta{prefix}"
        inits = [
            numpy_helper.from_array(self.gamma.astype(np.float32), g),
            numpy_helper.from_array(self.beta.astype(np.float32), b),
        ]
        node = helper.make_node(
            "LayerNormalization",
            [x, g, b],
            [z],
            name=f"layer_norm{prefix}",
            axis=-1,
            epsilon=self.eps,
        )
        return [node], inits

    # -- words -------------------------------------------------------------------------
    # -- a notebook's recomputing code (see Layer.notebook_forward) ------------------------
    def notebook_forward(self, layer: int, x: str) -> list[str] | None:
        """Each sample normalised over its features, then scaled and shifted."""
        return normalisation_code(
            layer, x, per_sample=True, eps=self.eps, act=self.activation, first=None
        )

    def notebook_backward(self, layer: int, x: str, *, first: bool) -> list[str] | None:
        """delta, dgamma, dbeta; the input's gradient through x_hat, the mean and σ."""
        return normalisation_code(
            layer, x, per_sample=True, eps=self.eps, act=self.activation, first=first
        )

    def describe(self) -> str:
        return f"layer_norm({self.n}, eps={self.eps:g}, {self.activation.describe()})"

    def symbols(self, kind: str, ins: Sequence[Node]) -> Node | None:
        return activation_symbols(self.activation, kind, ins) or normalisation_symbols(
            kind, ins, self.eps, over="j", count="D"
        )

    def why(self, kind: str) -> str:
        if kind == "dL_da":
            return (
                "Each x_hat depends on its own sample's mean and variance, which depend on "
                "every feature of that sample: the gradient reaching x adds the direct path "
                "and the paths through the mean and the variance, "
                "(1/(D·σ))·(D·dx_hat − Σ_j dx_hat − x_hat·Σ_j dx_hat·x_hat)."
            )
        return ""
