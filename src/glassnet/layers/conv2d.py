"""The 2-D convolution layer: ``z = W ⋆ x + b``, ``a = f(z)``, and its chain rule.

Like every framework, the layer computes a cross-correlation (the kernel slides over the
input unflipped) and calls it convolution; a true convolution would flip the kernel.
Shapes, one sample being a batch of one::

    x      (batch, C_in, H, W)            the input feature maps
    W      (C_out, C_in, kh, kw)          the kernel, as PyTorch's nn.Conv2d stores it
    b      (C_out,)                        one bias per output channel
    z, a   (batch, C_out, oh, ow)         oh = ⌊(H + 2·padding − kh)/stride⌋ + 1

    z[s,o,i,j]  = b[o] + Σ_c Σ_p Σ_q W[o,c,p,q] · x_pad[s, c, i·stride + p, j·stride + q]
    dW[o,c,p,q] = Σ_s Σ_i Σ_j delta[s,o,i,j] · x_pad[s, c, i·stride + p, j·stride + q]
    db[o]       = Σ_s Σ_i Σ_j delta[s,o,i,j]
    dL/dx       = each delta[s,o,i,j]·W[o] added back onto the window it came from
                  (for stride 1: the full convolution of delta with the flipped kernel)

The maths runs as im2col on NumPy's BLAS: the windows are copied once into a
(batch, C_in·kh·kw, positions) array (:func:`columns`), and each rule is one matrix
product with the kernel as a (C_out, C_in·kh·kw) matrix.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.activations import Activation, activation_class, get_activation
from glassnet.activations import from_dict as activation_from_dict
from glassnet.activations import names as activation_names
from glassnet.errors import GlassnetError
from glassnet.init import init_weights
from glassnet.layers.base import (
    At,
    Layer,
    Written,
    activation_backward_code,
    activation_forward_code,
    activation_nodes,
    activation_symbols,
    checked_tensors,
    config_activation,
    image_shape,
    register_layer,
    spec_init,
    square,
    tensor_of,
    whole,
    window_count,
)
from glassnet.limits import MAX_SPEC_PARAMETERS, check_fits
from glassnet.nodes import Alternative, Key, NodeDecl, Rule
from glassnet.specvalues import LayerContext, array, number, vector

if TYPE_CHECKING:
    from glassnet.mathtree import Node

Array = np.ndarray


# -- the layer's maths, as pure functions ----------------------------------------------------


def columns(
    x: Array,
    kh: int,
    kw: int,
    stride: int,
    padding: int,
    grid: tuple[int, int] | None = None,
) -> Array:
    """im2col: x (batch, C, H, W) -> (batch, C·kh·kw, oh·ow); entry [s, (c, p, q), (i, j)]
    is x_pad[s, c, i·stride + p, j·stride + q], the cell at (p, q) of the window of
    output position (i, j).  Built as kh·kw strided slice copies (not one 6-D gather,
    which is several times slower), in the order that makes the product with the kernel
    (C_out, C·kh·kw) land in (batch, C_out, oh·ow): NCHW, with no transpose after.
    ``grid`` (oh, ow): the output positions to read (every window that fits unless
    given; a given grid must fit)."""
    n, c, h, w = x.shape
    oh, ow = grid or (window_count(h, kh, stride, padding), window_count(w, kw, stride, padding))
    if padding:
        x = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    cols = np.empty((n, c, kh, kw, oh, ow), dtype=x.dtype)
    for p in range(kh):
        for q in range(kw):
            cols[:, :, p, q] = x[:, :, p : p + stride * oh : stride, q : q + stride * ow : stride]
    return cols.reshape(n, c * kh * kw, oh * ow)


def conv_forward(x: Array, W: Array, b: Array, stride: int, padding: int) -> Array:
    """z = W ⋆ x + b: (batch, C_in, H, W) -> (batch, C_out, oh, ow)."""
    o, _, kh, kw = W.shape
    oh = window_count(x.shape[2], kh, stride, padding)
    ow = window_count(x.shape[3], kw, stride, padding)
    z = np.matmul(W.reshape(o, -1), columns(x, kh, kw, stride, padding))  # (n, o, oh·ow)
    z += b[:, None]
    return z.reshape(x.shape[0], o, oh, ow)


def conv_weight_grad(
    x: Array, delta: Array, kernel: tuple[int, int], stride: int, padding: int
) -> Array:
    """dW = the correlation of the input with delta, summed over samples and positions:
    (batch, C_in, H, W), (batch, C_out, oh, ow) -> (C_out, C_in, kh, kw)."""
    kh, kw = kernel
    n, o = delta.shape[:2]
    cols = columns(x, kh, kw, stride, padding, grid=delta.shape[2:])  # (n, K, P)
    d = delta.reshape(n, o, -1)  # (n, o, P)
    # Σ over samples and positions: one product over the (n, P) axes
    dW = np.tensordot(d, cols, axes=([0, 2], [0, 2]))  # (o, K)
    return dW.reshape(o, x.shape[1], kh, kw)


def conv_bias_grad(delta: Array) -> Array:
    """db = Σ over samples and positions of delta: (batch, C_out, oh, ow) -> (C_out,)."""
    return delta.sum(axis=(0, 2, 3))


def conv_input_grad(
    delta: Array, W: Array, in_hw: tuple[int, int], stride: int, padding: int
) -> Array:
    """dL/dx: each position's delta times the kernel, added back onto the window it
    read (col2im): (batch, C_out, oh, ow), (C_out, C_in, kh, kw) -> (batch, C_in, H, W)."""
    n, o, oh, ow = delta.shape
    _, c, kh, kw = W.shape
    dcols = np.matmul(W.reshape(o, -1).T, delta.reshape(n, o, -1))  # (n, K, P)
    cells = dcols.reshape(n, c, kh, kw, oh, ow)
    h, w = in_hw
    out = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=dcols.dtype)
    for p in range(kh):
        for q in range(kw):
            out[:, :, p : p + stride * oh : stride, q : q + stride * ow : stride] += cells[
                :, :, p, q
            ]
    return out[:, :, padding : padding + h, padding : padding + w]


@register_layer
class Conv2d(Layer):
    """A 2-D convolution (cross-correlation) with its activation, over inputs of
    ``in_shape`` (C_in, H, W).

    >>> layer = Conv2d(np.ones((1, 1, 2, 2)), np.zeros(1), (1, 3, 3))
    >>> layer.predict(np.arange(9.0).reshape(1, 1, 3, 3)).tolist()
    [[[[8.0, 12.0], [20.0, 24.0]]]]
    """

    type = "conv2d"
    params = ("W", "b")
    decayed = frozenset({"W"})
    biases = frozenset({"b"})
    input_rank = 3
    explained = False
    shown_by = frozenset({"explain", "check", "the studio"})
    words = (
        "a 2-D convolution: each output channel's kernel slides over the input maps, "
        "z = W ⋆ x + b (a cross-correlation, as every framework computes it), then a = f(z)"
    )
    spec_fields: frozenset[str] = frozenset(
        {
            "type",
            "weights",
            "bias",
            "stride",
            "padding",
            "activation",
            "channels",
            "kernel_size",
            "init",
        }
    )

    def __init__(
        self,
        W: Array,
        b: Array,
        in_shape: Sequence[int],
        *,
        stride: int = 1,
        padding: int = 0,
        activation: str | Activation = "identity",
    ) -> None:
        W = np.asarray(W)
        b = np.asarray(b)
        if W.ndim != 4:
            raise GlassnetError(
                "expected a kernel [out_channels][in_channels][height][width] (4 levels)",
                got=f"{W.ndim} level(s), shape {W.shape}",
                field="weights",
            )
        self.stride = whole(stride, "stride", 1, 1 << 16)
        self.padding = whole(padding, "padding", 0, 1 << 16)
        c, h, w = image_shape(list(in_shape))
        o, c_w, kh, kw = W.shape
        if c_w != c:
            raise GlassnetError(
                f"expected {c} input channel(s) in the kernel (the input has {c})",
                got=f"{c_w} (shape {W.shape})",
                field="weights",
            )
        if kh > h + 2 * self.padding or kw > w + 2 * self.padding:
            raise GlassnetError(
                f"expected a kernel at most {h + 2 * self.padding}×{w + 2 * self.padding} "
                f"(the input's {h}×{w} with padding {self.padding})",
                got=f"{kh}×{kw}",
                field="weights",
            )
        if b.shape != (o,):
            raise GlassnetError(
                f"expected {o} biases (one per output channel)",
                got=f"shape {b.shape}",
                field="bias",
            )
        self.W = W
        self.b = b
        self.in_hw = (h, w)
        self.activation = get_activation(activation)

    # -- shape -------------------------------------------------------------------------
    @property
    def kernel(self) -> tuple[int, int]:
        return int(self.W.shape[2]), int(self.W.shape[3])

    @property
    def in_shape(self) -> tuple[int, ...]:
        return (int(self.W.shape[1]), *self.in_hw)

    @property
    def out_shape(self) -> tuple[int, ...]:
        kh, kw = self.kernel
        h, w = self.in_hw
        return (
            int(self.W.shape[0]),
            window_count(h, kh, self.stride, self.padding),
            window_count(w, kw, self.stride, self.padding),
        )

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    # -- the maths ---------------------------------------------------------------------
    def predict(self, x: Array) -> Array:
        return self.activation.forward(conv_forward(x, self.W, self.b, self.stride, self.padding))

    def kinds(self) -> tuple[str, ...]:
        return ("z", "a", "da_dz", "dL_da", "delta", "dW", "db")

    def nodes(self, layer: int, x: Key, *, first: bool) -> list[NodeDecl]:
        """z = W ⋆ x + b, a = f(z); da/dz and delta as a dense layer's; dW the
        correlation of x with delta, db = Σ delta over samples and positions, and the
        input's gradient (delta's windows times the kernel, added back)."""
        k, s, p, kernel, hw = layer, self.stride, self.padding, self.kernel, self.in_hw
        decls = [
            NodeDecl(
                "z",
                k,
                (x, ("W", k), ("b", k)),
                lambda v: conv_forward(v[0], v[1], v[2], s, p),
                "forward",
            ),
            *activation_nodes(self.activation, k),
            NodeDecl(
                "dW",
                k,
                (x, ("delta", k)),
                lambda v: conv_weight_grad(v[0], v[1], kernel, s, p),
                "backward",
            ),
            NodeDecl("db", k, (("delta", k),), lambda v: conv_bias_grad(v[0]), "backward"),
        ]
        if not first:
            decls.append(
                NodeDecl(
                    "dL_da",
                    k - 1,
                    (("delta", k), ("W", k)),
                    lambda v: conv_input_grad(v[0], v[1], hw, s, p),
                    "backward",
                )
            )
        return decls

    # -- mistakes check can name ----------------------------------------------------------
    def alternatives(self, layer: int) -> dict[str, dict[Key, Alternative]]:
        """Named wrong rules check can swap in, each run on the person's own numbers
        (docs/check.md): the kernel flipped (a true convolution), the stride or the
        padding off by one, dW or db not summed over the positions or the batch, the
        sum over channels forgotten, and the input's gradient through the unflipped
        kernel.  Shapes as in :meth:`nodes`; a variant that cannot happen here (stride
        − 1 at stride 1, a window that no longer fits) is None: not in force."""
        k, s, p, (kh, kw), (h, w) = layer, self.stride, self.padding, self.kernel, self.in_hw
        c_in, c_out = int(self.W.shape[1]), int(self.W.shape[0])
        z, dW, db, dx = ("z", k), ("dW", k), ("db", k), ("dL_da", k - 1)

        def flip(W: Array) -> Array:
            return W[:, :, ::-1, ::-1]

        def fits(st: int, pad: int, grid: tuple[int, ...]) -> bool:
            """Whether the delta's grid of windows, moved by ``st`` over the input padded
            by ``pad``, stays inside it."""
            return (
                st >= 1
                and pad >= 0
                and (grid[0] - 1) * st + kh <= h + 2 * pad
                and (grid[1] - 1) * st + kw <= w + 2 * pad
            )

        def moved(st: int, pad: int) -> dict[Key, Rule]:
            """z, dW and dL/dx worked with stride ``st`` and padding ``pad``: z then has
            another shape (its windows are other windows); dW and dL/dx read the delta's
            own grid of windows placed as that stride and padding place them."""

            def forward(v: Sequence[Array]) -> Array | None:
                if st < 1 or pad < 0 or kh > h + 2 * pad or kw > w + 2 * pad:
                    return None
                return conv_forward(v[0], v[1], v[2], st, pad)

            def weight(v: Sequence[Array]) -> Array | None:
                if not fits(st, pad, v[1].shape[2:]):
                    return None
                return conv_weight_grad(v[0], v[1], (kh, kw), st, pad)

            def back(v: Sequence[Array]) -> Array | None:
                if not fits(st, pad, v[0].shape[2:]):
                    return None
                return conv_input_grad(v[0], v[1], (h, w), st, pad)

            rules: dict[Key, Any] = {z: forward, dW: weight}
            if layer > 1:
                rules[dx] = back
            return rules

        def variants(named: Mapping[str, dict[Key, Rule]]) -> dict[Key, Alternative]:
            """{variant: {node: rule}} -> {node: {variant: rule}}."""
            out: dict[Key, dict[str, Rule]] = {}
            for label, rules in named.items():
                for key, rule in rules.items():
                    out.setdefault(key, {})[label] = rule
            return dict(out)

        def first_position(d: Array) -> Array:
            only = np.zeros_like(d)
            only[:, :, 0, 0] = d[:, :, 0, 0]
            return only

        def some_batch(rule: Rule) -> Rule:
            # one sample's sum or the batch's mean: the same as the right rule for a
            # batch of one, where the mistake cannot show (not in force)
            return lambda v: None if v[-1].shape[0] == 1 else rule(v)  # type: ignore[return-value]

        def some_positions(rule: Rule) -> Rule:
            return lambda v: None if np.prod(v[-1].shape[2:]) == 1 else rule(v)  # type: ignore[return-value]

        grad = conv_weight_grad
        alts: dict[str, dict[Key, Alternative]] = {
            "conv_kernel_flipped": {
                z: lambda v: conv_forward(v[0], flip(v[1]), v[2], s, p),
                dW: lambda v: flip(grad(v[0], v[1], (kh, kw), s, p)),
            },
            "conv_stride_off_by_one": variants(
                {"stride + 1": moved(s + 1, p), "stride − 1": moved(s - 1, p)}
            ),
            "conv_padding_off_by_one": variants(
                {"padding + 1": moved(s, p + 1), "padding − 1": moved(s, p - 1)}
            ),
            "conv_dW_not_summed_over_positions": {
                dW: {
                    "the mean over positions": some_positions(
                        lambda v: grad(v[0], v[1], (kh, kw), s, p) / np.prod(v[1].shape[2:])
                    ),
                    "the first position only": some_positions(
                        lambda v: grad(v[0], first_position(v[1]), (kh, kw), s, p)
                    ),
                }
            },
            "conv_dW_not_summed_over_batch": {
                dW: {
                    "the first sample only": some_batch(
                        lambda v: grad(v[0][:1], v[1][:1], (kh, kw), s, p)
                    ),
                    "the mean over the batch": some_batch(
                        lambda v: grad(v[0], v[1], (kh, kw), s, p) / v[1].shape[0]
                    ),
                }
            },
            "conv_db_not_summed_over_positions": {
                db: {
                    "the mean over positions": some_positions(
                        lambda v: conv_bias_grad(v[0]) / np.prod(v[0].shape[2:])
                    ),
                    "the first position only": some_positions(
                        lambda v: v[0][:, :, 0, 0].sum(axis=0)
                    ),
                }
            },
        }

        # the sum over channels forgotten: z from one input channel's correlation alone,
        # dL/dx from one output channel's delta alone
        def only_input(c: int) -> Rule:
            return lambda v: conv_forward(v[0][:, c : c + 1], v[1][:, c : c + 1], v[2], s, p)

        def only_output(o: int) -> Rule:
            return lambda v: conv_input_grad(v[0][:, o : o + 1], v[1][o : o + 1], (h, w), s, p)

        channels: dict[Key, Alternative] = {}
        if c_in > 1:
            channels[z] = {f"input channel {c} only": only_input(c) for c in range(c_in)}
        if c_out > 1 and layer > 1:
            channels[dx] = {f"output channel {o} only": only_output(o) for o in range(c_out)}
        if channels:
            alts["conv_channel_sum_forgotten"] = channels
        if layer > 1:
            alts["conv_backward_unflipped_kernel"] = {
                dx: lambda v: conv_input_grad(v[0], flip(v[1]), (h, w), s, p)
            }
        return alts

    def _like(self, W: Array, b: Array) -> Conv2d:
        return Conv2d(
            W,
            b,
            self.in_shape,
            stride=self.stride,
            padding=self.padding,
            activation=self.activation,
        )

    def with_leaves(self, values: Mapping[str, Array]) -> Conv2d:
        return self._like(values.get("W", self.W), values.get("b", self.b))

    def copy(self, dtype: Any = None) -> Conv2d:
        return self._like(
            self.W.astype(dtype or self.W.dtype, copy=True),
            self.b.astype(dtype or self.b.dtype, copy=True),
        )

    # -- the spec ----------------------------------------------------------------------
    @classmethod
    def from_spec(cls, ld: Mapping[str, Any], n_in: int, ctx: LayerContext) -> Conv2d:
        """``weights`` (out, in, kh, kw) — or ``channels`` and ``kernel_size`` (random
        weights from ``init``) —, ``bias`` (zeros unless given), ``stride`` (1),
        ``padding`` (0), ``activation`` and its options; the input is ``ctx.in_shape``."""
        act_name = ld.get("activation", "identity")
        if not isinstance(act_name, str) or act_name not in activation_names():
            raise GlassnetError(
                f"expected one of {', '.join(activation_names())}",
                got=repr(act_name),
                field="activation",
            )
        act_cls = activation_class(act_name)
        unknown = sorted(set(ld) - cls.spec_fields - set(act_cls.defaults))
        if unknown:
            fields = sorted((cls.spec_fields - {"type"}) | set(act_cls.defaults))
            raise GlassnetError(
                f"expected only the fields {', '.join(fields)} for conv2d",
                got=f"unknown field {unknown[0]!r}",
                field=unknown[0],
            )
        activation = get_activation(
            act_name, **{k: number(ld[k], k) for k in act_cls.defaults if k in ld}
        )
        if not activation.elementwise:
            # (its step applies da/dz number by number; a Jacobian over a feature map's
            # cells — softmax — would need a rule of its own, and crashed the step)
            raise GlassnetError(
                "expected an activation that acts on each number alone for conv2d "
                "(softmax belongs to a dense output layer)",
                got=act_name,
                field="activation",
            )
        c, h, w = ctx.in_shape  # the spec reader gives a conv layer feature maps only
        stride = whole(ld.get("stride", 1), "stride", 1, 1 << 16)
        padding = whole(ld.get("padding", 0), "padding", 0, 1 << 16)
        if "weights" in ld:
            if "channels" in ld or "kernel_size" in ld or "init" in ld:
                extra = next(f for f in ("channels", "kernel_size", "init") if f in ld)
                raise GlassnetError(
                    "expected either 'weights' or 'channels' and 'kernel_size', not both",
                    got="both",
                    field=extra,
                )
            W = array(ld["weights"], "weights")
            if W.ndim != 4:
                raise GlassnetError(
                    "expected a kernel [out_channels][in_channels][height][width] (4 levels)",
                    got=f"{W.ndim} level(s), shape {W.shape}",
                    field="weights",
                )
        elif "channels" in ld:
            o = whole(ld["channels"], "channels", 1)
            size = ld.get("kernel_size")
            if size is None:
                raise GlassnetError(
                    "expected this field with 'channels'",
                    got="nothing (missing)",
                    field="kernel_size",
                )
            kh = kw = whole(size, "kernel_size", 1)
            fan_in = c * kh * kw
            if ctx.params_before + o * fan_in + o > MAX_SPEC_PARAMETERS:
                raise GlassnetError(
                    f"expected at most {MAX_SPEC_PARAMETERS:,} parameters in all",
                    got=f"{o}×{c}×{kh}×{kw} here",
                    field="channels",
                )
            init = spec_init(ld, ctx)
            # fan-in C·kh·kw and fan-out C_out·kh·kw as PyTorch counts them for a kernel
            W = init_weights(init, fan_in, o, ctx.rng(), np.float64, fan_out=o * kh * kw)
            W = np.ascontiguousarray(W.T.reshape(o, c, kh, kw))
        else:
            raise GlassnetError(
                "expected 'weights' (out, in, kh, kw) or 'channels' and 'kernel_size'",
                got="neither",
                field="weights",
            )
        o = W.shape[0]
        kh, kw = W.shape[2:]
        # im2col holds every window of the batch at once (C·kh·kw numbers a position):
        # refuse what cannot fit before allocating it
        positions = window_count(h, kh, stride, padding) * window_count(w, kw, stride, padding)
        check_fits(8.0 * ctx.batch * c * kh * kw * positions, "the convolution's windows",
                   field="weights")  # fmt: skip
        b = vector(ld["bias"], "bias") if "bias" in ld else np.zeros(o)
        if b.shape != (o,):
            raise GlassnetError(
                f"expected {o} numbers (one per output channel)", got=str(b.size), field="bias"
            )
        return Conv2d(W, b, (c, h, w), stride=stride, padding=padding, activation=activation)

    def to_spec(self) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "weights": self.W.tolist(),
            "bias": self.b.tolist(),
            "stride": self.stride,
            "padding": self.padding,
            "activation": self.activation.name,
        }
        fields.update({k: float(v) for k, v in self.activation.options.items()})
        return fields

    # -- files -------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        return {
            "in_shape": list(self.in_shape),
            "out_channels": int(self.W.shape[0]),
            "kernel": list(self.kernel),
            "stride": self.stride,
            "padding": self.padding,
            "activation": self.activation.to_dict(),
        }

    @classmethod
    def from_file(
        cls,
        config: Mapping[str, Any],
        arrays: Mapping[str, Array],
        *,
        activation: Activation | None = None,
    ) -> Conv2d:
        act = activation or activation_from_dict(dict(config["activation"]))
        return Conv2d(
            arrays["W"],
            arrays["b"],
            config["in_shape"],
            stride=config["stride"],
            padding=config["padding"],
            activation=act,
        )

    @classmethod
    def file_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        c, h, w = image_shape(config.get("in_shape"))
        o = whole(config.get("out_channels"), "out_channels", 1)
        kernel = config.get("kernel")
        if not isinstance(kernel, list) or len(kernel) != 2:
            raise GlassnetError("expected [kh, kw]", got=repr(kernel)[:40], field="kernel")
        kh, kw = (whole(e, "kernel", 1) for e in kernel)
        whole(config.get("stride"), "stride", 1, 1 << 16)
        p = whole(config.get("padding"), "padding", 0, 1 << 16)
        if kh > h + 2 * p or kw > w + 2 * p:
            raise GlassnetError(
                f"expected a kernel at most {h + 2 * p}×{w + 2 * p}",
                got=f"{kh}×{kw}",
                field="kernel",
            )
        config_activation(config)
        return {"W": (o, c, kh, kw), "b": (o,)}

    # -- PyTorch ------------------------------------------------------------------------
    torch_name = "Conv2d"

    def torch_data(self) -> tuple[dict[str, Any], dict[str, Array]]:
        """``nn.Conv2d`` stores the kernel as W is stored: (out, in, kh, kw)."""
        arch = {
            "type": "Conv2d",
            "in_channels": int(self.W.shape[1]),
            "out_channels": int(self.W.shape[0]),
            "kernel_size": list(self.kernel),
            "stride": self.stride,
            "padding": self.padding,
            "bias": True,
        }
        return arch, {"weight": np.ascontiguousarray(self.W), "bias": np.ascontiguousarray(self.b)}

    @classmethod
    def from_torch_data(cls, arch: Mapping[str, Any], tensors: Mapping[str, Array]) -> Conv2d:
        return cls.from_torch_shaped(arch, tensors, None)

    @classmethod
    def torch_data_of(cls, module: Any) -> tuple[dict[str, Any], dict[str, Array]]:
        tensors = {"weight": tensor_of(module, "weight")}
        if module.bias is not None:
            tensors["bias"] = tensor_of(module, "bias")
        arch = {
            "type": "Conv2d",
            "in_channels": int(module.in_channels),
            "out_channels": int(module.out_channels),
            "kernel_size": list(module.kernel_size),
            "stride": list(module.stride),
            "padding": module.padding if isinstance(module.padding, str) else list(module.padding),
            "bias": module.bias is not None,
        }
        for name, plain in (("dilation", (1, 1)), ("groups", 1), ("padding_mode", "zeros")):
            if getattr(module, name) != plain:
                arch[name] = (
                    list(getattr(module, name)) if name == "dilation" else getattr(module, name)
                )
        return arch, tensors

    @classmethod
    def from_torch_shaped(
        cls,
        arch: Mapping[str, Any],
        tensors: Mapping[str, Array],
        in_shape: tuple[int, ...] | None,
    ) -> Conv2d:
        """The layer from :meth:`torch_data`'s form, given its input's (C, H, W) —
        which ``nn.Conv2d`` does not store; equal stride and padding along both axes,
        no dilation, groups or padding modes (glassnet's convolution has none)."""
        if in_shape is None or len(in_shape) != 3:
            raise GlassnetError(
                "expected the input's (channels, height, width) before a Conv2d "
                "(input_shape=... for a first Conv2d)",
                got="none" if in_shape is None else f"shape {in_shape}",
                field="Conv2d",
            )
        for name in ("dilation", "groups", "padding_mode"):
            if name in arch:
                raise GlassnetError(
                    f"expected a Conv2d without {name}", got=repr(arch[name])[:40], field=name
                )
        stride = square(arch.get("stride", 1), "stride", 1)
        padding = square(arch.get("padding", 0), "padding", 0)
        o = whole(arch.get("out_channels"), "out_channels", 1)
        c = whole(arch.get("in_channels"), "in_channels", 1)
        size = arch.get("kernel_size")
        size = [size, size] if isinstance(size, int) else size
        if not isinstance(size, list | tuple) or len(size) != 2:
            raise GlassnetError("expected [kh, kw]", got=repr(size)[:40], field="kernel_size")
        kh, kw = (whole(e, "kernel_size", 1) for e in size)
        have = dict(tensors)
        if "bias" not in have and "weight" in have and arch.get("bias") is False:
            have["bias"] = np.zeros(o, dtype=have["weight"].dtype)
        t = checked_tensors(have, {"weight": (o, c, kh, kw), "bias": (o,)})
        return Conv2d(t["weight"], t["bias"], in_shape, stride=stride, padding=padding)

    # -- ONNX ---------------------------------------------------------------------------
    def onnx_nodes(
        self, helper: Any, numpy_helper: Any, x: str, z: str, prefix: str
    ) -> tuple[list[Any], list[Any]]:
        """Conv with W (out, in, kh, kw) and B, its strides and pads."""
        w, b = f"W{prefix}", f"b{prefix}"
        inits = [
            numpy_helper.from_array(self.W.astype(np.float32), w),
            numpy_helper.from_array(self.b.astype(np.float32), b),
        ]
        p = self.padding
        node = helper.make_node(
            "Conv",
            [x, w, b],
            [z],
            name=f"conv{prefix}",
            kernel_shape=list(self.kernel),
            strides=[self.stride, self.stride],
            pads=[p, p, p, p],
        )
        return [node], inits

    # -- one number written out ------------------------------------------------------------
    def written(
        self,
        kind: str,
        layer: int,
        index: tuple[int, ...],
        *,
        x: Key,
        value: Any,
    ) -> Written | None:
        """z[s,o,i,j], dW[o,c,p,q], db[o] and the input's gradient dL_da[s,c,h,w] as the
        sums the module docstring writes; a window cell in the padding reads 0."""
        k, st, pad = layer, self.stride, self.padding
        n_o, n_c, kh, kw = (int(e) for e in self.W.shape)
        h_in, w_in = self.in_hw
        _, oh, ow = self.out_shape
        W, b, delta = ("W", k), ("b", k), ("delta", k)

        def cell(s: int, c: int, r: int, q: int) -> At:
            # (r, q) on the padded input: the input's own cell, or a padding 0
            r, q = r - pad, q - pad
            inside = 0 <= r < h_in and 0 <= q < w_in
            return At(x if inside else None, (s, c, r, q))

        if kind == "z" and len(index) == 4:
            s, o, i, j = index
            terms = tuple(
                (At(W, (o, c, p, q)), cell(s, c, i * st + p, j * st + q))
                for c in range(n_c)
                for p in range(kh)
                for q in range(kw)
            )
            return Written((*terms, (At(b, (o,)),)))
        n = int(value(x).shape[0])
        if kind == "dW" and len(index) == 4:
            o, c, p, q = index
            return Written(
                tuple(
                    (At(delta, (s, o, i, j)), cell(s, c, i * st + p, j * st + q))
                    for s in range(n)
                    for i in range(oh)
                    for j in range(ow)
                )
            )
        if kind == "db" and len(index) == 1:
            (o,) = index
            return Written(
                tuple(
                    (At(delta, (s, o, i, j)),)
                    for s in range(n)
                    for i in range(oh)
                    for j in range(ow)
                )
            )
        if kind == "dL_da" and layer > 1 and len(index) == 4:
            # every (position, kernel cell) whose window puts that cell on (h, w); read
            # with the kernel flipped (p from kh − 1 down), δ's positions come in order:
            # the full convolution of δ with the flipped kernel
            s, c, h, w = index
            flipped: list[tuple[At, ...]] = []
            for o in range(n_o):
                for p in reversed(range(kh)):
                    i, r = divmod(h + pad - p, st)
                    if r or not 0 <= i < oh:
                        continue
                    for q in reversed(range(kw)):
                        j, r = divmod(w + pad - q, st)
                        if r or not 0 <= j < ow:
                            continue
                        flipped.append((At(delta, (s, o, i, j)), At(W, (o, c, p, q))))
            return Written(tuple(flipped))
        return None

    # -- a notebook's recomputing code (see Layer.notebook_forward) ------------------------
    def notebook_forward(self, layer: int, x: str) -> list[str] | None:
        """The definition as naive loops: at each output position (i, j), the window of
        the padded input times each kernel, summed over channels and window cells."""
        if not self.activation.elementwise:
            return None  # an activation across channels: not written here
        k = layer
        return [
            f"# z{k}[s,o,i,j] = b{k}[o] + Σ_c Σ_p Σ_q W{k}[o,c,p,q] · "
            f"x_pad[s, c, i·stride + p, j·stride + q]",
            f"stride{k}, pad{k} = {self.stride}, {self.padding}",
            f"x_pad{k} = np.pad({x}, ((0, 0), (0, 0), (pad{k}, pad{k}), (pad{k}, pad{k})))",
            f"_, _, kh{k}, kw{k} = W{k}.shape",
            f"oh{k} = (x_pad{k}.shape[2] - kh{k}) // stride{k} + 1  # windows that fit down",
            f"ow{k} = (x_pad{k}.shape[3] - kw{k}) // stride{k} + 1  # and across",
            f"z{k} = np.zeros(({x}.shape[0], W{k}.shape[0], oh{k}, ow{k}))",
            f"for i in range(oh{k}):",
            f"    for j in range(ow{k}):",
            f"        top, left = i * stride{k}, j * stride{k}",
            f"        window = x_pad{k}[:, :, top : top + kh{k}, left : left + kw{k}]  "
            "# (batch, C_in, kh, kw)",
            f'        z{k}[:, :, i, j] = np.einsum("scpq,ocpq->so", window, W{k}) + b{k}',
            f"z{k} = r(z{k})",
            *activation_forward_code(self.activation, k),
        ]

    def notebook_backward(self, layer: int, x: str, *, first: bool) -> list[str] | None:
        """delta as a dense layer's; then, position by position, dW gathers delta times
        the window it met, and the input's gradient gets delta times the kernel added
        back onto that window (the padding's border cut off at the end)."""
        if not self.activation.elementwise:
            return None
        k = layer
        lines = [
            *activation_backward_code(self.activation, k),
            f"# dW{k}[o,c,p,q] = Σ_s Σ_i Σ_j delta{k}[s,o,i,j] · "
            f"x_pad[s, c, i·stride + p, j·stride + q]",
            f"dW{k} = np.zeros_like(W{k})",
        ]
        if not first:
            lines += [
                f"# each delta{k}[s,o,i,j] · W{k}[o] added back onto the window it came from",
                f"dx_pad{k} = np.zeros_like(x_pad{k})",
            ]
        lines += [
            f"for i in range(oh{k}):",
            f"    for j in range(ow{k}):",
            f"        top, left = i * stride{k}, j * stride{k}",
            f"        window = x_pad{k}[:, :, top : top + kh{k}, left : left + kw{k}]",
            f'        dW{k} += np.einsum("so,scpq->ocpq", delta{k}[:, :, i, j], window)',
        ]
        if not first:
            lines.append(
                f"        dx_pad{k}[:, :, top : top + kh{k}, left : left + kw{k}] += "
                f'np.einsum("so,ocpq->scpq", delta{k}[:, :, i, j], W{k})'
            )
        lines += [
            f"dW{k} = r(dW{k})",
            f"db{k} = r(delta{k}.sum(axis=(0, 2, 3)))  # over samples and positions",
        ]
        if not first:
            lines.append(
                f"dL_da{k - 1} = r(dx_pad{k}[:, :, pad{k} : pad{k} + {x}.shape[2], "
                f"pad{k} : pad{k} + {x}.shape[3]])  # the padding's border cut off"
            )
        return lines

    # -- words and symbols -------------------------------------------------------------
    def describe(self) -> str:
        o, c = int(self.W.shape[0]), int(self.W.shape[1])
        kh, kw = self.kernel
        return (
            f"conv2d({c}×{self.in_hw[0]}×{self.in_hw[1]} -> "
            f"{'×'.join(map(str, self.out_shape))}, {o} kernel(s) {kh}×{kw}, "
            f"stride {self.stride}, padding {self.padding}, {self.activation.describe()})"
        )

    def symbols(self, kind: str, ins: Sequence[Node]) -> Node | None:
        from glassnet import mathtree as mt

        if kind == "z":
            return mt.join([mt.join([ins[1], ins[0]], mt.Op(r"\star", "\u22c6")), ins[2]], mt.PLUS)
        if kind == "db":
            return mt.SumOver("s,i,j", ins[0])
        if kind == "dW":  # the correlation of the input with δ
            return mt.join([ins[0], ins[1]], mt.Op(r"\star", "\u22c6"))
        if kind == "dL_da" and self.stride == 1:
            # δ's full correlation with the flipped kernel (a true convolution with W)
            full = mt.Func("full", ins[0], r"\operatorname{full}")
            rot = mt.Func("rot180", ins[1], r"\operatorname{rot180}")
            return mt.join([full, rot], mt.Op(r"\star", "\u22c6"))
        return activation_symbols(self.activation, kind, ins)

    def why(self, kind: str) -> str:
        if kind == "z":
            return (
                "Every framework slides the kernel over the input unflipped — a "
                "cross-correlation — and calls it convolution; a true convolution flips "
                "the kernel first, which a learned kernel makes no difference to."
            )
        if kind == "dW":
            return (
                "Each weight is used at every output position of every sample, so its "
                "gradient sums delta times the input it met there: the correlation of "
                "the input with delta."
            )
        if kind == "dL_da":
            return (
                "Each input cell feeds every output position whose window covers it, "
                "through the kernel weight at its place in that window. For stride 1 "
                "this is the full convolution of δ with the flipped kernel rot180(W): δ "
                "bordered by kernel − 1 zeros, cross-correlated with W turned half round "
                "(less the padding's border); for a larger stride, δ with stride − 1 "
                "zeros between its cells, the same way."
            )
        return ""

    def __repr__(self) -> str:
        return f"Conv2d({self.describe()})"
