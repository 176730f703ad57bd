"""Batch normalisation (Ioffe & Szegedy, 2015), in training mode with the batch's
statistics, as PyTorch's ``nn.BatchNorm1d`` computes it.

Per feature j, over the batch's N samples::

    mean_j = (1/N) Σ_s x_sj            var_j = (1/N) Σ_s (x_sj − mean_j)²   (biased)
    x_hat  = (x − mean) / √(var + eps)
    z      = gamma · x_hat + beta        a = f(z)   (the activation, identity by default)

The running statistics move towards the batch's (``momentum`` 0.1 as PyTorch's):
``running_mean ← (1 − m)·running_mean + m·mean`` and the same for the variance, which
takes the *unbiased* batch variance var·N/(N − 1), again as PyTorch does.  Prediction
(eval mode) normalises with the running statistics instead.

The backward pass couples the samples, because every sample's x_hat depends on the
batch's mean and variance, which depend on every sample::

    dx_hat = delta · gamma                                  (delta = dL/dz)
    dL/dx  = (1 / (N·√(var + eps))) · (N·dx_hat − Σ_s dx_hat − x_hat · Σ_s dx_hat·x_hat)

Shapes: x, x_hat, z, a, delta, dx_hat (batch, n); mean, var, gamma, beta, dgamma, dbeta,
running_mean, running_var (n,).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.activations import Activation, from_dict
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


# -- the maths, as pure functions (the step graph's rules and the fast path call these) ---
def batch_mean(x: Array) -> Array:
    """mean_j = (1/N) Σ_s x_sj: (batch, n) -> (n,)."""
    return x.mean(axis=0)


def batch_var(x: Array, mean: Array) -> Array:
    """The biased variance (1/N) Σ_s (x_sj − mean_j)²: (batch, n), (n,) -> (n,)."""
    return ((x - mean) ** 2).mean(axis=0)


def normalise(x: Array, mean: Array, var: Array, eps: float) -> Array:
    """x_hat = (x − mean)/√(var + eps), (batch, n)."""
    return (x - mean) / np.sqrt(var + eps)


def scale_shift(x_hat: Array, gamma: Array, beta: Array) -> Array:
    """z = gamma·x_hat + beta, (batch, n)."""
    return gamma * x_hat + beta


def input_grad(dx_hat: Array, x_hat: Array, var: Array, eps: float) -> Array:
    """dL/dx through the batch's mean and variance (the module docstring), (batch, n)."""
    n = dx_hat.shape[0]
    inv = 1.0 / np.sqrt(var + eps)
    return (inv / n) * (n * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0))


def naive_input_grad(dx_hat: Array, var: Array, eps: float) -> Array:
    """The classic slip: dL/dx = dx_hat/√(var + eps), as if the mean and variance were
    constants rather than functions of x (check's alternative rule)."""
    return dx_hat / np.sqrt(var + eps)


def running(old: Array, batch_stat: Array, momentum: float) -> Array:
    """(1 − m)·old + m·batch_stat: the running statistic after this batch."""
    return (1 - momentum) * old + momentum * batch_stat


@register_layer
class BatchNorm(Layer):
    """Batch normalisation over the features of (batch, n) inputs, with a learned scale
    ``gamma`` and shift ``beta`` and an optional activation after them.

    >>> bn = BatchNorm(2)
    >>> bn.forward_train(np.array([[1.0, 2.0], [3.0, 6.0]])).round(4).tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    """

    type = "batch_norm"
    params = ("gamma", "beta")
    decayed = frozenset[str]()  # norm scales are not decayed (fit decays matrices only)
    biases = frozenset({"beta"})
    constants = ("running_mean", "running_var")
    unbatched = frozenset(
        {"mean", "var", "running_mean", "running_var", "running_mean_new", "running_var_new"}
    )
    couples_batch = True
    words = (
        "batch normalisation: each feature centred and scaled by the batch's mean and "
        "variance, then z = gamma·x_hat + beta"
    )
    spec_fields = frozenset(
        {"type", "gamma", "beta", "eps", "momentum", "running_mean", "running_var", "activation"}
    )

    def __init__(
        self,
        n: int,
        *,
        gamma: Array | None = None,
        beta: Array | None = None,
        running_mean: Array | None = None,
        running_var: Array | None = None,
        eps: float = 1e-5,
        momentum: float = 0.1,
        activation: str | Activation | None = None,
        dtype: Any = np.float64,
    ) -> None:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise GlassnetError("expected a whole number of features >= 1", got=repr(n))
        self.n = int(n)
        self.gamma = feature_vector(gamma, self.n, 1.0, "gamma", dtype)
        self.beta = feature_vector(beta, self.n, 0.0, "beta", dtype)
        self.running_mean = feature_vector(running_mean, self.n, 0.0, "running_mean", dtype)
        self.running_var = feature_vector(running_var, self.n, 1.0, "running_var", dtype)
        if not (isinstance(eps, int | float) and not isinstance(eps, bool) and eps > 0):
            raise GlassnetError("expected a positive number", got=repr(eps), field="eps")
        if not (isinstance(momentum, int | float) and not isinstance(momentum, bool)):
            raise GlassnetError("expected a number in [0, 1]", got=repr(momentum), field="momentum")
        if not 0 <= momentum <= 1:
            raise GlassnetError("expected a number in [0, 1]", got=repr(momentum), field="momentum")
        self.eps = float(eps)
        self.momentum = float(momentum)
        self.activation = identity() if activation is None else _activation(activation)

    # -- shape -------------------------------------------------------------------------
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
            "running_mean_new",
            "running_var_new",
            "da_dz",
            "dL_da",
            "delta",
            "dgamma",
            "dbeta",
            "dx_hat",
        )

    def nodes(self, layer: int, x: Key, *, first: bool) -> list[NodeDecl]:
        k, eps, m = layer, self.eps, self.momentum

        def unbiased(ins: Sequence[Array]) -> Array:
            # PyTorch's running variance takes the unbiased batch variance.
            n = ins[2].shape[0]
            return running(ins[0], ins[1] * n / max(n - 1, 1), m)

        decls = normalisation_nodes(
            k,
            x,
            first=first,
            act=self.activation,
            mean=batch_mean,
            var=batch_var,
            normalise=lambda xs, mu, s2: normalise(xs, mu, s2, eps),
            input_grad=lambda d, xh, s2: input_grad(d, xh, s2, eps),
        )
        # The running statistics move towards the batch's (a forward-pass side effect
        # the trace records; the next step starts from them).
        decls += [
            NodeDecl(
                "running_mean_new",
                k,
                (("running_mean", k), ("mean", k)),
                lambda v: running(v[0], v[1], m),
                "forward",
            ),
            NodeDecl(
                "running_var_new", k, (("running_var", k), ("var", k), x), unbiased, "forward"
            ),
        ]
        return decls

    def alternatives(self, layer: int) -> dict[str, dict[Key, Rule]]:
        """Named wrong rules check can swap in: the naive backward that treats the batch
        mean and variance as constants."""
        eps = self.eps
        if layer == 1:
            return {}
        return {
            "batch_norm_naive_backward": {
                ("dL_da", layer - 1): lambda v: naive_input_grad(v[0], v[2], eps)
            }
        }

    # -- the fast path -----------------------------------------------------------------
    def predict(self, x: Array) -> Array:
        """Eval mode: normalised with the running statistics."""
        x_hat = normalise(x, self.running_mean, self.running_var, self.eps)
        return self.activation.forward(scale_shift(x_hat, self.gamma, self.beta))

    def forward_train(self, x: Array) -> Array:
        mean = batch_mean(x)
        x_hat = normalise(x, mean, batch_var(x, mean), self.eps)
        return self.activation.forward(scale_shift(x_hat, self.gamma, self.beta))

    # -- copies, the spec, files --------------------------------------------------------
    def _options(self) -> dict[str, Any]:
        return {"eps": self.eps, "momentum": self.momentum, "activation": self.activation}

    def with_leaves(self, values: Mapping[str, Array]) -> BatchNorm:
        new = {
            name: values.get(name, getattr(self, name)) for name in (*self.params, *self.constants)
        }
        return BatchNorm(self.n, **new, **self._options())

    def copy(self, dtype: Any = None) -> BatchNorm:
        arrays = {
            name: getattr(self, name).astype(dtype or getattr(self, name).dtype, copy=True)
            for name in (*self.params, *self.constants)
        }
        return BatchNorm(self.n, **arrays, **self._options())

    @classmethod
    def from_spec(cls, ld: Mapping[str, Any], n_in: int, ctx: LayerContext) -> BatchNorm:
        """``gamma`` (ones), ``beta`` (zeros), ``eps`` (1e-5), ``momentum`` (0.1),
        ``running_mean`` (zeros), ``running_var`` (ones), ``activation`` (identity)."""
        activation = read_activation(ld)
        check_fields(ld, cls.spec_fields | set(type(activation).defaults), "batch_norm")
        arrays = {k: vector(ld[k], k) for k in (*cls.params, *cls.constants) if k in ld}
        for name, v in arrays.items():
            if v.shape != (n_in,):
                raise GlassnetError(
                    f"expected {n_in} numbers (one per feature of the layer's input)",
                    got=str(v.size),
                    field=name,
                )
        if "running_var" in arrays and (arrays["running_var"] < 0).any():
            raise GlassnetError(
                "expected variances >= 0", got="a negative number", field="running_var"
            )
        eps = number(ld.get("eps", 1e-5), "eps")
        momentum = number(ld.get("momentum", 0.1), "momentum")
        return BatchNorm(n_in, **arrays, eps=eps, momentum=momentum, activation=activation)

    def config(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "eps": self.eps,
            "momentum": self.momentum,
            "activation": self.activation.to_dict(),
        }

    @classmethod
    def from_file(
        cls,
        config: Mapping[str, Any],
        arrays: Mapping[str, Array],
        *,
        activation: Activation | None = None,
    ) -> BatchNorm:
        return BatchNorm(
            int(config["n"]),
            **{k: arrays[k] for k in (*cls.params, *cls.constants)},
            eps=float(config["eps"]),
            momentum=float(config["momentum"]),
            activation=activation or from_dict(dict(config["activation"])),
        )

    @classmethod
    def file_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        n = config_size(config, "n")
        config_activation(config)
        for key in ("eps", "momentum"):
            number(config.get(key), key)
        return {k: (n,) for k in (*cls.params, *cls.constants)}

    # -- PyTorch ------------------------------------------------------------------------
    torch_name = "BatchNorm1d"

    def torch_data(self) -> tuple[dict[str, Any], dict[str, Array]]:
        arch = {
            "type": "BatchNorm1d",
            "num_features": self.n,
            "eps": self.eps,
            "momentum": self.momentum,
        }
        tensors = {
            "weight": self.gamma,
            "bias": self.beta,
            "running_mean": self.running_mean,
            "running_var": self.running_var,
        }
        return arch, {k: np.ascontiguousarray(v) for k, v in tensors.items()}

    @classmethod
    def from_torch_data(cls, arch: Mapping[str, Any], tensors: Mapping[str, Array]) -> BatchNorm:
        n = arch.get("num_features")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise GlassnetError("expected a feature count >= 1", got=repr(n), field="num_features")
        names = ("weight", "bias", "running_mean", "running_var")
        t = checked_tensors(tensors, {k: (n,) for k in names})
        return BatchNorm(
            n,
            gamma=t["weight"],
            beta=t["bias"],
            running_mean=t["running_mean"],
            running_var=t["running_var"],
            eps=number(arch.get("eps", 1e-5), "eps"),
            momentum=number(arch.get("momentum", 0.1), "momentum"),
            dtype=t["weight"].dtype,
        )

    @classmethod
    def torch_data_of(cls, module: Any) -> tuple[dict[str, Any], dict[str, Array]]:
        if not module.affine or not module.track_running_stats or module.momentum is None:
            raise GlassnetError(
                "expected BatchNorm1d with affine, track_running_stats and a momentum",
                got="one of them off",
                field="module",
            )
        arch = {
            "type": "BatchNorm1d",
            "num_features": int(module.num_features),
            "eps": float(module.eps),
            "momentum": float(module.momentum),
        }
        names = ("weight", "bias", "running_mean", "running_var")
        return arch, {k: tensor_of(module, k) for k in names}

    # -- ONNX ---------------------------------------------------------------------------
    def onnx_nodes(
        self, helper: Any, numpy_helper: Any, x: str, z: str, prefix: str
    ) -> tuple[list[Any], list[Any]]:
        """BatchNormalization in inference mode: the running statistics."""
        names = [f"{k}{prefix}" for k in ("gamma", "beta", "running_mean", "running_var")]
        values = (self.gamma, self.beta, self.running_mean, self.running_var)
        inits = [
            numpy_helper.from_array(np.asarray(v, dtype=np.float32), n)
            for n, v in zip(names, values, strict=True)
        ]
        node = helper.make_node(
            "BatchNormalization", [x, *names], [z], name=f"batch_norm{prefix}", epsilon=self.eps
        )
        return [node], inits

    # -- words -------------------------------------------------------------------------
    # -- a notebook's recomputing code (see Layer.notebook_forward) ------------------------
    def notebook_forward(self, layer: int, x: str) -> list[str] | None:
        """Each feature normalised over the batch, then scaled and shifted; the running
        statistics moved towards the batch's."""
        k = layer
        return [
            *normalisation_code(
                k, x, per_sample=False, eps=self.eps, act=self.activation, first=None
            ),
            f"momentum{k} = {self.momentum!r}",
            f"running_mean{k}_new = r((1 - momentum{k}) * running_mean{k} + momentum{k} * mean{k})",
            "# (PyTorch's running variance takes the unbiased batch variance: N/(N − 1))",
            f"n{k} = {x}.shape[0]",
            f"running_var{k}_new = r((1 - momentum{k}) * running_var{k}"
            f" + momentum{k} * var{k} * n{k} / max(n{k} - 1, 1))",
        ]

    def notebook_backward(self, layer: int, x: str, *, first: bool) -> list[str] | None:
        """delta, dgamma, dbeta; the input's gradient through x_hat, the mean and σ."""
        return normalisation_code(
            layer, x, per_sample=False, eps=self.eps, act=self.activation, first=first
        )

    def describe(self) -> str:
        act = self.activation.describe()
        return f"batch_norm({self.n}, eps={self.eps:g}, momentum={self.momentum:g}, {act})"

    def symbols(self, kind: str, ins: Sequence[Node]) -> Node | None:
        return activation_symbols(self.activation, kind, ins) or normalisation_symbols(
            kind, ins, self.eps, over="s", count="N"
        )

    def why(self, kind: str) -> str:
        if kind == "dL_da":
            return (
                "Every sample's x_hat depends on the batch's mean and variance, and they "
                "depend on every sample, so the gradient reaching x has three paths: "
                "through x_hat directly, through the mean and through the variance. "
                "Adding them gives (1/(N·σ))·(N·dx_hat − Σ dx_hat − x_hat·Σ dx_hat·x_hat). "
                "Dividing dx_hat by σ alone (ignoring the mean and variance) is the classic "
                "mistake."
            )
        if kind == "var":
            return (
                "The batch's variance divides by N (biased), as the forward pass of batch "
                "normalisation does; only the running variance takes N/(N − 1)."
            )
        return ""


def _activation(a: str | Activation) -> Activation:
    from glassnet.activations import get_activation

    return get_activation(a)
