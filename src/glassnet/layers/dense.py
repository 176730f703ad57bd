"""The dense layer: ``z = x @ W + b``, ``a = f(z)``, and its chain rule.

``W`` has shape (n_in, n_out), so ``W[i, j]`` connects input i to unit j — the
seed's W_ij with i the "from" index and j the "to" index.  Rows of ``x`` are
samples; one sample is a batch of one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from glassnet.activations import Activation, activation_class, get_activation
from glassnet.activations import from_dict as activation_from_dict
from glassnet.activations import names as activation_names
from glassnet.errors import GlassnetError
from glassnet.init import init_weights
from glassnet.layers.base import (
    Layer,
    activation_backward_code,
    activation_forward_code,
    activation_nodes,
    activation_symbols,
    checked_tensors,
    config_activation,
    config_size,
    register_layer,
    spec_init,
    tensor_of,
)
from glassnet.limits import MAX_SPEC_PARAMETERS
from glassnet.nodes import Key, NodeDecl
from glassnet.specvalues import LayerContext, matrix, number, vector, weights_from_layout

if TYPE_CHECKING:
    from glassnet.mathtree import Node

Array = np.ndarray


# -- the dense layer's maths, as pure functions ---------------------------------------------
# Dense, the step graph (glassnet.step) and the training loop all call these, so each
# rule of the layer is written once.  ``out=`` writes into a given array (the training
# loop's buffers) with the same operations, so the same numbers.


def linear(x: Array, W: Array, b: Array, out: Array | None = None) -> Array:
    """z = x @ W + b: (batch, n_in) @ (n_in, n_out) + (n_out,) -> (batch, n_out)."""
    z = np.matmul(x, W, out=out)
    z += b
    return z


def weight_grad(x: Array, delta: Array, out: Array | None = None) -> Array:
    """dW = xᵀ·delta: (batch, n_in)ᵀ @ (batch, n_out) -> (n_in, n_out), summed over samples."""
    return np.matmul(x.T, delta, out=out)


def bias_grad(delta: Array, out: Array | None = None) -> Array:
    """db = Σ_samples delta: (batch, n_out) -> (n_out,)."""
    return np.add.reduce(delta, axis=0, out=out)  # np.sum's reduce, without its wrapper


def input_grad(delta: Array, W: Array, out: Array | None = None) -> Array:
    """dL/dx = delta·Wᵀ: (batch, n_out) @ (n_out, n_in) -> (batch, n_in); each input
    gathers the deltas of every unit it feeds."""
    return np.matmul(delta, W.T, out=out)


def linear_step(param: Array, grad: Array, alpha: float, beta: float) -> Array:
    """param ← β·param + α·grad in place (any shape); ``grad`` is overwritten (α·grad).
    Plain SGD is α = −lr, β = 1: ``param + (−lr·g)``, bit for bit ``param − lr·g``."""
    grad *= alpha
    if beta != 1.0:
        param *= beta
    param += grad
    return param


def weight_step(
    x: Array,
    delta: Array,
    W: Array,
    alpha: float,
    beta: float,
    *,
    gemm: Any = None,
    scratch: Array | None = None,
) -> Array:
    """W ← β·W + α·xᵀ·delta in place: the weight gradient's product and an update of
    the linear form p ← β·p + α·g (plain SGD: α = −lr, β = 1 − lr·λ) in one.

    With ``gemm`` (:func:`glassnet.blas.gemm`: NumPy's own BLAS) it is one BLAS call
    with that α and β — no dW array, no update pass.  Without, NumPy: ``scratch`` =
    xᵀ·delta (:func:`weight_grad`), then :func:`linear_step` — the same numbers to float
    rounding (BLAS fuses the multiply and the add)."""
    if gemm is not None:
        gemm.at_b_arrays(x, delta, W, alpha, beta)
        return W
    return linear_step(W, weight_grad(x, delta, out=scratch), alpha, beta)


class Cache(NamedTuple):
    """What forward keeps for backward: input x (batch, n_in), z and a (batch, n_out)."""

    x: Array
    z: Array
    a: Array


class Grads(NamedTuple):
    """What backward returns: dL/dx (batch, n_in) or None, dW (n_in, n_out), db (n_out,),
    and delta = dL/dz (batch, n_out)."""

    dx: Array | None
    dW: Array
    db: Array
    delta: Array


class Buffers(NamedTuple):
    """Arrays one layer writes into on the training fast path, allocated once per
    ``fit`` for the largest batch (a smaller last batch uses the first rows): z, a and
    delta (batch, n_out), dx (batch, n_in) or None for the first layer, dW and db."""

    z: Array
    a: Array
    delta: Array
    dx: Array | None
    dW: Array
    db: Array


@register_layer
class Dense(Layer):
    """A fully connected layer with its activation: ``z = x @ W + b``, ``a = f(z)``.

    >>> layer = Dense(np.array([[1.0, -1.0]]), np.zeros(2), "relu")
    >>> a, cache = layer.forward(np.array([[2.0]]))
    >>> a.tolist()
    [[2.0, 0.0]]
    """

    def __init__(self, W: Array, b: Array, activation: str | Activation = "identity") -> None:
        W = np.asarray(W)
        b = np.asarray(b)
        if W.ndim != 2:
            raise GlassnetError(
                "expected a matrix (n_in, n_out)", got=f"shape {W.shape}", field="weights"
            )
        if b.shape != (W.shape[1],):
            raise GlassnetError(
                f"expected {W.shape[1]} biases (one per unit)", got=f"shape {b.shape}", field="bias"
            )
        self.W = W
        self.b = b
        self.activation = get_activation(activation)

    type = "dense"
    params = ("W", "b")
    decayed = frozenset({"W"})
    biases = frozenset({"b"})
    words = "a fully connected layer, z = x·W + b, then its activation a = f(z)"
    dense_like = True
    #: A dense layer's own spec fields (an activation's options are fields too).
    spec_fields: frozenset[str] = frozenset(
        {"type", "weights", "bias", "activation", "units", "init"}
    )

    @property
    def n_in(self) -> int:
        return int(self.W.shape[0])

    @property
    def n_out(self) -> int:
        return int(self.W.shape[1])

    def forward(self, x: Array, out: Buffers | None = None) -> tuple[Array, Cache]:
        """a = f(x @ W + b); returns a (batch, n_out) and the cache backward needs.

        With ``out`` (the training loop's buffers) z and a are written into them
        instead of new arrays — the same operations, so the same numbers."""
        m = x.shape[0]
        z = linear(x, self.W, self.b, out=None if out is None else out.z[:m])
        a = self.activation.forward(z, out=None if out is None else out.a[:m])
        return a, Cache(x, z, a)

    def forward_kernel(self, x: Array, out: Buffers, kernel: Any) -> tuple[Array, Cache]:
        """:meth:`forward` into ``out`` with the bias add and the activation done by one
        compiled ``kernel(z, b, a)`` (:meth:`Activation.fused_kernels`) after x·W."""
        m = x.shape[0]
        z = np.matmul(x, self.W, out=out.z[:m])
        a = out.a[:m]
        kernel(z, self.b, a)
        return a, Cache(x, z, a)

    def backward(
        self, cache: Cache, dL_da: Array, *, need_dx: bool = True, out: Buffers | None = None
    ) -> Grads:
        """Chain rule through the activation, then through x @ W + b."""
        m = dL_da.shape[0]
        delta = self.activation.backward(
            cache.z, cache.a, dL_da, out=None if out is None else out.delta[:m]
        )
        return self.backward_from_delta(cache, delta, need_dx=need_dx, out=out)

    def backward_from_delta(
        self, cache: Cache, delta: Array, *, need_dx: bool = True, out: Buffers | None = None
    ) -> Grads:
        """Given delta = dL/dz: dW = xᵀ·delta, db = Σ_samples delta, dL/dx = delta·Wᵀ.
        With ``out``, the results are written into the layer's buffers."""
        if out is None:
            dx = input_grad(delta, self.W) if need_dx else None
            return Grads(dx, weight_grad(cache.x, delta), bias_grad(delta), delta)
        dx = None
        if need_dx and out.dx is not None:
            dx = input_grad(delta, self.W, out=out.dx[: delta.shape[0]])
        return Grads(dx, weight_grad(cache.x, delta, out=out.dW), bias_grad(delta, out.db), delta)

    def backward_step(
        self,
        cache: Cache,
        delta: Array,
        out: Buffers,
        alpha: float,
        beta: float,
        *,
        need_dx: bool,
        weight_step: Any,
        db_ready: bool = False,
    ) -> Array | None:
        """The backward pass through ``x @ W + b`` with an update of the linear form
        p ← β·p + α·g (plain SGD; β = 1 for the bias, which is never decayed) done as
        the gradients are formed: dL/dx = delta·Wᵀ first, with the old W, then
        W ← β·W + α·xᵀ·delta (``weight_step(m, alpha, beta)``: :meth:`weight_stepper`'s,
        one BLAS call), b ← b + α·Σ delta.  Returns dL/dx (in ``out.dx``) or None.
        The same maths as :meth:`backward_from_delta` then the optimiser's update.
        ``weight_step`` None: dL/dx and delta only; the caller updates W and b once the
        whole batch's deltas are there (the two-thread step: :meth:`bias_step` and
        :meth:`weight_stepper` by columns).  ``db_ready``: ``out.db`` already holds
        Σ delta (a fused kernel summed it with delta's pass)."""
        m = delta.shape[0]
        dx = input_grad(delta, self.W, out=out.dx[:m]) if need_dx and out.dx is not None else None
        if weight_step is not None:
            weight_step(m, alpha, beta)
            if db_ready:
                linear_step(self.b, out.db, alpha, 1.0)
            else:
                self.bias_step(delta, out.db, alpha)
        return dx

    def bias_step(self, delta: Array, scratch: Array, alpha: float) -> None:
        """b ← b + α·Σ_samples delta (the bias is never decayed); ``scratch`` (n_out,)."""
        linear_step(self.b, bias_grad(delta, scratch), alpha, 1.0)

    def weight_stepper(
        self,
        x: Array,
        delta: Array,
        scratch: Array,
        gemm: Any,
        cols: tuple[int, int] | None = None,
    ) -> Any:
        """``step(m, alpha, beta)``: :func:`weight_step` on the first m rows of the
        reused buffers ``x`` (batch, n_in) and ``delta`` (batch, n_out), their addresses
        read once (a ctypes call per step, nothing else) when ``gemm`` is given and every
        array is row-major; else NumPy into ``scratch`` (n_in, n_out).  ``cols``
        (c0, c1): only W's columns c0:c1 (from delta's columns c0:c1), so that two
        threads can update one W at once, each its own columns."""
        W = self.W
        arrays = (x, delta, W)
        item = W.itemsize
        n_in, n_out = W.shape
        c0, c1 = cols if cols is not None else (0, n_out)
        if gemm is None or any(
            a.dtype != W.dtype or a.strides[-1] != item or not a.flags.c_contiguous for a in arrays
        ):
            Wc, dc, sc = W[:, c0:c1], delta[:, c0:c1], scratch[:, c0:c1]

            def numpy_step(m: int, alpha: float, beta: float) -> None:
                weight_step(x[:m], dc[:m], Wc, alpha, beta, scratch=sc)

            return numpy_step
        n = c1 - c0
        call = gemm.at_b_bound(
            n_in,
            n,
            x.ctypes.data,
            x.shape[1],
            delta.ctypes.data + c0 * item,
            delta.shape[1],
            W.ctypes.data + c0 * item,
            n_out,
        )

        def blas_step(m: int, alpha: float, beta: float) -> None:
            if m and n:
                call(m, alpha, beta)
            elif beta != 1.0:
                W[:, c0:c1] *= beta

        # Kept alive with the closure: the addresses are those arrays'.
        blas_step.arrays = arrays  # type: ignore[attr-defined]
        return blas_step

    def predict(self, x: Array) -> Array:
        return self.forward(x)[0]

    # -- the step graph ----------------------------------------------------------------
    def kinds(self) -> tuple[str, ...]:
        return ("z", "a", "da_dz", "dL_da", "delta", "dW", "db")

    def nodes(self, layer: int, x: Key, *, first: bool) -> list[NodeDecl]:
        """z = x·W + b, a = f(z); da/dz, delta = dL/da · da/dz (a vector-Jacobian
        product, so the delta shown is the product of the numbers shown), dW = xᵀ·delta,
        db = Σ delta, and the input's gradient delta·Wᵀ."""
        k = layer

        def z_rule(ins: Sequence[Array]) -> Array:
            return linear(ins[0], ins[1], ins[2])

        decls = [
            NodeDecl("z", k, (x, ("W", k), ("b", k)), z_rule, "forward"),
            *activation_nodes(self.activation, k),
            NodeDecl(
                "dW", k, (x, ("delta", k)), lambda ins: weight_grad(ins[0], ins[1]), "backward"
            ),
            NodeDecl("db", k, (("delta", k),), lambda ins: bias_grad(ins[0]), "backward"),
        ]
        if not first:
            decls.append(
                NodeDecl(
                    "dL_da",
                    k - 1,
                    (("delta", k), ("W", k)),
                    lambda ins: input_grad(ins[0], ins[1]),
                    "backward",
                )
            )
        return decls

    def with_leaves(self, values: Mapping[str, Array]) -> Dense:
        return Dense(values.get("W", self.W), values.get("b", self.b), self.activation)

    def copy(self, dtype: Any = None) -> Dense:
        return Dense(
            self.W.astype(dtype or self.W.dtype, copy=True),
            self.b.astype(dtype or self.b.dtype, copy=True),
            self.activation,
        )

    # -- the spec ----------------------------------------------------------------------
    @classmethod
    def from_spec(cls, ld: Mapping[str, Any], n_in: int, ctx: LayerContext) -> Dense:
        """A dense layer from its ``[[layers]]`` table: ``weights`` (a matrix written
        as ``ctx.layout`` says) or ``units`` (random weights from ``init``), ``bias``
        (zeros unless given), ``activation`` and that activation's options."""
        act_name = ld.get("activation", "identity")
        if not isinstance(act_name, str) or act_name not in activation_names():
            raise GlassnetError(
                f"expected one of {', '.join(activation_names())}",
                got=repr(act_name),
                field="activation",
            )
        act_cls = activation_class(act_name)
        # Any activation's options are fields of its layer; an option of another
        # activation is named as such (a typo'd activation would otherwise hide behind
        # "unknown field").
        all_options = {o for n in activation_names() for o in activation_class(n).defaults}
        unknown = sorted(set(ld) - cls.spec_fields - set(act_cls.defaults))
        if unknown:
            if unknown[0] in all_options:
                owners = [
                    n for n in activation_names() if unknown[0] in activation_class(n).defaults
                ]
                raise GlassnetError(
                    f"expected {unknown[0]!r} only with {' or '.join(owners)}",
                    got=act_name,
                    field=unknown[0],
                )
            fields = sorted((cls.spec_fields - {"type"}) | set(act_cls.defaults))
            raise GlassnetError(
                f"expected only the fields {', '.join(fields)}",
                got=f"unknown field {unknown[0]!r}",
                field=unknown[0],
            )
        options = {k: number(ld[k], k) for k in act_cls.defaults if k in ld}
        activation = get_activation(act_name, **options)
        layout, bias_row0 = ctx.layout, ctx.bias_row0
        if "weights" in ld:
            if "units" in ld or "init" in ld:
                raise GlassnetError(
                    "expected either 'weights' or 'units' (with 'init'), not both",
                    got="both",
                    field="units" if "units" in ld else "init",
                )
            M = matrix(ld["weights"], "weights", rows_ok=False)
            want = n_in + int(bias_row0)
            across = M.shape[0] if layout == "from_to" else M.shape[1]
            if across != want:
                extra = " (row 0 the bias)" if bias_row0 else ""
                raise GlassnetError(
                    f"expected {want} rows ([from][to]: one per input of this layer{extra}), "
                    "each of the layer's units"
                    if layout == "from_to"
                    else f"expected {want} columns ([to][from]: one per input of this "
                    f"layer{extra.replace('row', 'column')}), in a row per unit",
                    got=f"{M.shape[0]} rows of {M.shape[1]}",
                    field="weights",
                )
            W, folded = weights_from_layout(M, layout, bias_row0)
            if folded is not None and "bias" in ld:
                raise GlassnetError(
                    "expected no 'bias' with bias = \"row0\" (it is row 0 of the weights)",
                    got="both",
                    field="bias",
                )
            n_out = W.shape[1]
        elif "units" in ld:
            n_out = ld["units"]
            if isinstance(n_out, bool) or not isinstance(n_out, int) or n_out < 1:
                raise GlassnetError("expected a whole number >= 1", got=repr(n_out), field="units")
            if ctx.params_before + n_in * n_out + n_out > MAX_SPEC_PARAMETERS:
                raise GlassnetError(
                    f"expected at most {MAX_SPEC_PARAMETERS:,} parameters in all",
                    got=f"{n_in} x {n_out} here",
                    field="units",
                )
            init = spec_init(ld, ctx)
            W = init_weights(init, n_in, n_out, ctx.rng(), np.float64)
            folded = None
        else:
            raise GlassnetError(
                "expected 'weights' (a matrix) or 'units' (a count)", got="neither", field="weights"
            )
        if "weights" in ld and folded is not None:
            b = np.array(folded, dtype=np.float64)
        elif "bias" in ld:
            b = vector(ld["bias"], "bias")
            if b.shape != (n_out,):
                raise GlassnetError(
                    f"expected {n_out} numbers (one per unit)", got=str(b.size), field="bias"
                )
        else:
            b = np.zeros(n_out)
        return Dense(W, b, activation)

    # -- files -------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {"n_in": self.n_in, "n_out": self.n_out, "activation": self.activation.to_dict()}

    @classmethod
    def from_file(
        cls,
        config: Mapping[str, Any],
        arrays: Mapping[str, Array],
        *,
        activation: Activation | None = None,
    ) -> Dense:
        """The layer from :meth:`config` and :meth:`arrays` (``W``, ``b``).
        ``activation``: one the reader has already resolved (a model file's custom
        objects); otherwise the config's, from the registry."""
        act = activation or activation_from_dict(dict(config["activation"]))
        return Dense(arrays["W"], arrays["b"], act)

    @classmethod
    def file_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        n_in, n_out = config_size(config, "n_in"), config_size(config, "n_out")
        config_activation(config)
        return {"W": (n_in, n_out), "b": (n_out,)}

    def to_spec(self) -> dict[str, Any]:
        """``weights`` (n_in, n_out), ``bias``, ``activation`` by name, and the
        activation's options (leaky_relu's ``slope``, elu's ``alpha``) as fields of the
        layer, as :meth:`from_spec` takes them."""
        fields: dict[str, Any] = {
            "weights": self.W.tolist(),
            "bias": self.b.tolist(),
            "activation": self.activation.name,
        }
        fields.update({k: float(v) for k, v in self.activation.options.items()})
        return fields

    # -- a notebook's recomputing code (see Layer.notebook_forward) ------------------------
    # (the seed's kind of page writes its own cells, in the page's notation: see
    # explain/render_notebook.py; these serve a page of several layer types)
    def notebook_forward(self, layer: int, x: str) -> list[str] | None:
        """z = x·W + b, one row per sample; a = f(z)."""
        k = layer
        return [f"z{k} = r({x} @ W{k} + b{k})", *activation_forward_code(self.activation, k)]

    def notebook_backward(self, layer: int, x: str, *, first: bool) -> list[str] | None:
        """delta = dL/da · da/dz; dW = xᵀ·delta, db = Σ delta over the samples, and the
        input's gradient delta·Wᵀ."""
        k = layer
        lines = [
            *activation_backward_code(self.activation, k),
            f"dW{k} = r({x}.T @ delta{k})",
            f"db{k} = r(delta{k}.sum(axis=0))",
        ]
        if not first:
            lines.append(f"dL_da{k - 1} = r(delta{k} @ W{k}.T)")
        return lines

    def describe(self) -> str:
        return f"dense({self.n_in} -> {self.n_out}, {self.activation.describe()})"

    def symbols(self, kind: str, ins: Sequence[Node]) -> Node | None:
        """A quantity's rule as a matrix product (the seed's page writes a dense layer
        unit by unit itself, in explain/sections.py; this is for other pages)."""
        from glassnet import mathtree as mt

        if kind == "z":
            return mt.join([mt.join([ins[0], ins[1]], mt.TIMES), ins[2]], mt.PLUS)
        if kind == "dW":
            return mt.join([mt.Pow(ins[0], "T"), ins[1]], mt.TIMES)
        if kind == "db":
            return mt.SumOver("s", ins[0])
        if kind == "dL_da":
            return mt.join([ins[0], mt.Pow(ins[1], "T")], mt.TIMES)
        return activation_symbols(self.activation, kind, ins)

    # -- PyTorch ------------------------------------------------------------------------
    torch_name = "Linear"

    def torch_data(self) -> tuple[dict[str, Any], dict[str, Array]]:
        """``nn.Linear`` stores its weight as (out, in): W transposed."""
        arch = {
            "type": "Linear",
            "in_features": self.n_in,
            "out_features": self.n_out,
            "bias": True,
        }
        weight = np.ascontiguousarray(self.W.T)
        return arch, {"weight": weight, "bias": np.ascontiguousarray(self.b)}

    @classmethod
    def from_torch_data(cls, arch: Mapping[str, Any], tensors: Mapping[str, Array]) -> Dense:
        n_in, n_out = arch.get("in_features"), arch.get("out_features")
        for name, n in (("in_features", n_in), ("out_features", n_out)):
            if isinstance(n, bool) or not isinstance(n, int) or n < 1:
                raise GlassnetError("expected a whole number >= 1", got=repr(n), field=name)
        have = dict(tensors)
        if "bias" not in have and "weight" in have and arch.get("bias") is False:
            have["bias"] = np.zeros(n_out, dtype=have["weight"].dtype)  # type: ignore[arg-type]
        shapes = {"weight": (int(n_out), int(n_in)), "bias": (int(n_out),)}  # type: ignore[arg-type]
        t = checked_tensors(have, shapes)
        return Dense(t["weight"].T.copy(), t["bias"], "identity")

    @classmethod
    def torch_data_of(cls, module: Any) -> tuple[dict[str, Any], dict[str, Array]]:
        tensors = {"weight": tensor_of(module, "weight")}
        if module.bias is not None:
            tensors["bias"] = tensor_of(module, "bias")
        arch = {
            "type": "Linear",
            "in_features": int(module.in_features),
            "out_features": int(module.out_features),
            "bias": module.bias is not None,
        }
        return arch, tensors

    # -- ONNX ---------------------------------------------------------------------------
    def onnx_nodes(
        self, helper: Any, numpy_helper: Any, x: str, z: str, prefix: str
    ) -> tuple[list[Any], list[Any]]:
        """MatMul with W (n_in, n_out), then Add b."""
        w, b = f"W{prefix}", f"b{prefix}"
        inits = [
            numpy_helper.from_array(self.W.astype(np.float32), w),
            numpy_helper.from_array(self.b.astype(np.float32), b),
        ]
        nodes = [
            helper.make_node("MatMul", [x, w], [f"xW{prefix}"], name=f"matmul{prefix}"),
            helper.make_node("Add", [f"xW{prefix}", b], [z], name=f"add{prefix}"),
        ]
        return nodes, inits

    def buffers(self, batch: int, *, need_dx: bool = True) -> Buffers:
        """Fresh :class:`Buffers` for batches of up to ``batch`` rows."""
        rows = (batch, self.n_out)
        dtype = self.W.dtype
        return Buffers(
            z=np.empty(rows, dtype),
            a=np.empty(rows, dtype),
            delta=np.empty(rows, dtype),
            dx=np.empty((batch, self.n_in), dtype) if need_dx else None,
            dW=np.empty_like(self.W),
            db=np.empty_like(self.b),
        )

    def __repr__(self) -> str:
        return f"Dense({self.n_in} -> {self.n_out}, {self.activation.describe()})"
