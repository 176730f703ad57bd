"""The layer base class and the registry every layer type is found through.

A layer owns everything about itself, in one class and one file of this package, as an
activation does: its parameters and their names; the quantities its forward and backward
produce, declared as step-graph nodes with their inputs and rules (:meth:`Layer.nodes`);
its fast forward for prediction; its spec fields; its model-file form; its symbols and
words for ``explain``.  Nothing outside a layer's file branches on its ``type``: the step
graph, the trace, the spec reader and the views ask the layer.

Every layer takes its input ``x`` (batch, n_in) — the sample for layer 1, ``a`` of layer
l−1 otherwise — and produces ``a`` (batch, n_out).  Its backward starts from
``dL_da`` (batch, n_out), given by the loss for the last layer or by layer l+1, and
declares the gradient of each parameter as ``d`` + its name (``dW``, ``dgamma``) and,
for l > 1, the gradient of its input as the node ``("dL_da", l − 1)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from glassnet.activations import Activation, get_activation
from glassnet.errors import GlassnetError
from glassnet.nodes import Key, NodeDecl
from glassnet.specvalues import LayerContext

if TYPE_CHECKING:
    from glassnet.mathtree import Node

Array = np.ndarray


@dataclass(frozen=True)
class At:
    """One recorded number a written-out value reads: the quantity ``key`` at ``index``
    (the batch axis first where the quantity has one) — or, ``key`` None, a padding
    cell outside the input, which is 0."""

    key: Key | None
    index: tuple[int, ...]


@dataclass(frozen=True)
class Written:
    """One number of a quantity as the arithmetic it is (:meth:`Layer.written`):
    the sum of ``terms``, each the product of its factors, divided by ``divide`` — or,
    ``largest``, the largest of ``terms`` (one factor each).  No terms: 0."""

    terms: tuple[tuple[At, ...], ...]
    divide: int = 1
    largest: bool = False


class Layer:
    """Base class of every layer type (see the module docstring)."""

    #: The name specs (``type = "..."``) and model files use.
    type: ClassVar[str] = ""
    #: The trainable parameters, in the order optimisers see them (``("W", "b")``).
    params: ClassVar[tuple[str, ...]] = ()
    #: The parameters weight decay applies to (weights, not biases or shifts).
    decayed: ClassVar[frozenset[str]] = frozenset()
    #: The parameters a spec's ``update_bias = false`` holds fixed (the biases).
    biases: ClassVar[frozenset[str]] = frozenset()
    #: Quantities without a batch axis besides the parameters, their gradients and
    #: updates (which never have one): batch normalisation's mean and variance.
    unbatched: ClassVar[frozenset[str]] = frozenset()
    #: Given per-layer quantities that are not trained (dropout's ``mask``).
    constants: ClassVar[tuple[str, ...]] = ()
    #: For explain and ``describe``: what the layer does, in words.
    words: ClassVar[str] = ""
    #: True when one sample's output depends on the other samples of the batch
    #: (batch normalisation): its backward couples the samples.
    couples_batch: ClassVar[bool] = False
    #: True for layers a network's reverse loop treats as a dense layer with an
    #: activation (the fused softmax/cross-entropy shortcut, the studio's picture).
    dense_like: ClassVar[bool] = False
    #: How many axes one sample's input has: 1 for a vector (dense, normalisation),
    #: 3 for (channels, height, width) feature maps (conv2d, pooling); None for any
    #: (flatten).  The spec reader refuses a layer whose input has another rank.
    input_rank: ClassVar[int | None] = 1
    #: False for layers the dense-only views cannot show yet (:attr:`shown_by` names
    #: those that do): they refuse such a network in one line instead of guessing.
    explained: ClassVar[bool] = True
    #: The views (by the name :meth:`Network.require_explained` is given: "explain",
    #: "check", "the studio") that show this layer although :attr:`explained` is False.
    shown_by: ClassVar[frozenset[str]] = frozenset()

    activation: Activation

    def written(
        self,
        kind: str,
        layer: int,
        index: tuple[int, ...],
        *,
        x: Key,
        value: Callable[[Key], Array],
    ) -> Written | None:
        """Capability for the views (explain writes a feature map's numbers one by one):
        the number of ``kind`` at ``index`` that this layer (number ``layer``, input node
        ``x``) computes, as the sum or maximum of recorded numbers it is — for the kinds
        it declares, its input's ``dL_da`` (``kind`` "dL_da", layer − 1) included.
        ``value`` gives a recorded quantity (the batch size, a routing such as the
        arg-max): the terms are read from the step, never recomputed.  None for what
        it does not write out (the views then show the quantity whole)."""
        return None

    # -- shape -------------------------------------------------------------------------
    @property
    def n_in(self) -> int:
        raise NotImplementedError

    @property
    def n_out(self) -> int:
        raise NotImplementedError

    @property
    def in_shape(self) -> tuple[int, ...]:
        """One sample's input shape: (n_in,) for a vector, (channels, height, width) for
        feature maps; ``n_in`` is its size."""
        return (self.n_in,)

    @property
    def out_shape(self) -> tuple[int, ...]:
        """One sample's output shape (see :attr:`in_shape`); ``n_out`` is its size."""
        return (self.n_out,)

    @property
    def dtype(self) -> np.dtype:
        ps = self.parameters()
        return ps[0].dtype if ps else np.dtype(np.float64)

    def parameters(self) -> list[Array]:
        """The trainable arrays, in :attr:`params` order (optimisers update them in place)."""
        return [getattr(self, name) for name in self.params]

    def leaf_values(self) -> dict[str, Array]:
        """Every per-layer leaf of the step graph: parameters and constants, by kind."""
        return {name: getattr(self, name) for name in (*self.params, *self.constants)}

    def with_leaves(self, values: Mapping[str, Array]) -> Layer:
        """A copy of this layer with some leaves replaced (the next step's parameters)."""
        raise NotImplementedError

    # -- the step graph ----------------------------------------------------------------
    def kinds(self) -> tuple[str, ...]:
        """The quantities this layer computes in a step, in the order a derivation meets
        them (forward, then backward); the trace records them under these names."""
        raise NotImplementedError

    def nodes(self, layer: int, x: Key, *, first: bool) -> list[NodeDecl]:
        """The step-graph nodes of this layer as layer number ``layer``, whose input is
        the node ``x``: forward nodes ending with ``("a", layer)``, then backward nodes
        from ``("dL_da", layer)`` to each ``("d" + param, layer)`` and, unless
        ``first``, the input's gradient ``("dL_da", layer − 1)``."""
        raise NotImplementedError

    # -- the spec ----------------------------------------------------------------------
    @classmethod
    def from_spec(cls, table: Mapping[str, Any], n_in: int, ctx: LayerContext) -> Layer:
        """The layer a spec's ``[[layers]]`` table describes, its input ``n_in`` wide;
        every problem a :class:`GlassnetError` naming the field."""
        raise NotImplementedError

    def copy(self, dtype: Any = None) -> Layer:
        """A deep copy, optionally cast to ``dtype``."""
        raise NotImplementedError

    # -- the fast path -----------------------------------------------------------------
    def predict(self, x: Array) -> Array:
        """The output a (batch, n_out) for inputs x (batch, n_in), as a trained network
        predicts (batch normalisation with its running statistics, dropout off)."""
        raise NotImplementedError

    def forward_train(self, x: Array) -> Array:
        """The output a of the training-mode forward pass, as the traced step computes
        it (batch statistics, the dropout mask); the same as :meth:`predict` unless the
        layer behaves differently in training."""
        return self.predict(x)

    def draw(self, rng: np.random.Generator | None, batch: int) -> dict[str, Array]:
        """The constants a training batch of ``batch`` rows draws anew (dropout's mask),
        by name; none for most layers."""
        return {}

    # -- files -------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """The layer's description for a model file (JSON-able; arrays apart)."""
        raise NotImplementedError

    def arrays(self) -> dict[str, Array]:
        """The layer's arrays for a model file, by name."""
        return self.leaf_values()

    @classmethod
    def from_file(
        cls,
        config: Mapping[str, Any],
        arrays: Mapping[str, Array],
        *,
        activation: Activation | None = None,
    ) -> Layer:
        """The layer from :meth:`config` and :meth:`arrays`; ``activation``: one the
        reader has already resolved (a model file's custom objects), else the config's."""
        raise NotImplementedError

    @classmethod
    def file_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        """The shape of each of :meth:`arrays` that a :meth:`config` implies — for a
        reader that checks a file's arrays before it reads them.  A config that is not
        this layer's (sizes missing or out of range) is a :class:`GlassnetError`."""
        raise NotImplementedError

    def to_spec(self) -> dict[str, Any]:
        """The layer as a spec's ``[[layers]]`` table, plain lists and numbers (what
        :meth:`from_spec` reads back): the studio and ``glassnet exercise`` write it."""
        raise GlassnetError(
            f"expected a layer with a spec form ({self.type} has none yet)", got=self.type
        )

    # -- PyTorch ------------------------------------------------------------------------
    #: The ``torch.nn`` module class this layer is written as and read from (its
    #: activation, if any, is a module of its own after it).
    torch_name: ClassVar[str | None] = None
    #: True when an activation module after this layer's module is the layer's own
    #: activation (dense, normalisation layers); False for layers without one.
    takes_activation: ClassVar[bool] = True

    def torch_data(self) -> tuple[dict[str, Any], dict[str, Array]]:
        """The module as plain data: its architecture (``{"type": torch_name, **the
        constructor's keyword arguments}``) and its tensors by attribute name (weight,
        bias, running_mean, …) — what a safetensors file and ``to_torch`` write."""
        raise GlassnetError(
            f"expected a layer with a PyTorch module ({self.type} has none yet)", got=self.type
        )

    @classmethod
    def from_torch_data(cls, arch: Mapping[str, Any], tensors: Mapping[str, Array]) -> Layer:
        """The layer from :meth:`torch_data`'s form (a file's or a live module's); its
        activation identity until an activation module follows.  Bad shapes, dtypes or
        values are a :class:`GlassnetError`."""
        raise NotImplementedError

    @classmethod
    def torch_data_of(cls, module: Any) -> tuple[dict[str, Any], dict[str, Array]]:
        """:meth:`torch_data`'s form read from a live ``torch.nn`` module."""
        raise NotImplementedError

    @classmethod
    def from_torch_shaped(
        cls,
        arch: Mapping[str, Any],
        tensors: Mapping[str, Array],
        in_shape: tuple[int, ...] | None,
    ) -> Layer:
        """:meth:`from_torch_data` given one sample's input shape, when known (the
        output shape of the module before, or the input shape the caller names): the
        modules of feature maps (``nn.Conv2d``, pooling) do not store their input's
        height and width, which glassnet's layers need."""
        return cls.from_torch_data(arch, tensors)

    def torch_train(self, torch: Any, x: Any, drawn: Mapping[str, Any]) -> Any:
        """The training-mode forward pass on tensors, for a layer without a module of
        its own (:attr:`torch_name` None) — what a PyTorch training engine runs in its
        place: x (batch, n_in) -> a (batch, n_out), with ``drawn`` the constants
        :meth:`draw` drew for this batch, as tensors (dropout's mask)."""
        raise GlassnetError(
            f"expected a layer with a PyTorch form ({self.type} has none yet)", got=self.type
        )

    # -- ONNX ---------------------------------------------------------------------------
    def onnx_nodes(
        self, helper: Any, numpy_helper: Any, x: str, z: str, prefix: str
    ) -> tuple[list[Any], list[Any]]:
        """ONNX nodes (and their initialisers, stored as float32) computing the layer's
        value before its activation, ``z``, from ``x`` (``helper`` and ``numpy_helper``
        are ``onnx.helper`` and ``onnx.numpy_helper``; ``prefix`` keeps names unique)."""
        raise GlassnetError(
            f"expected a layer with an ONNX form ({self.type} has none yet)", got=self.type
        )

    def index_range(self, kind: str) -> int | None:
        """For a quantity of whole indices (max pooling's ``argmax``), how many places
        it indexes (its values run from 0 to that − 1), so a worksheet's written indices
        are checked before they are used; None for a quantity of numbers."""
        return None

    # -- a notebook's recomputing code ------------------------------------------------
    # A notebook (explain --format ipynb) recomputes every quantity once more in plain
    # NumPy, the way a student checks a hand calculation, and compares each with the
    # trace.  The layer writes that code from its definition (never calling its own
    # rules): lines of Python that put each of its quantities ``kind`` of layer ``l``
    # into the variable ``f"{kind}{l}"`` (a ``…_new`` kind into ``running_mean2_new``:
    # the layer's number before the suffix), each wrapped in ``r(...)`` (the notebook's
    # rounding to K decimals in hand mode, where the step rounds every node).  Its
    # parameters are already in ``f"{param}{l}"``, the loss's gradient with respect
    # to its output in ``f"dL_da{l}"``.  None: the layer writes no such code, and its
    # notebook has the Markdown only.

    def notebook_forward(self, layer: int, x: str) -> list[str] | None:
        """Code that computes this layer's forward quantities (z, a, …) from its input,
        the variable named ``x`` (see above)."""
        return None

    def notebook_backward(self, layer: int, x: str, *, first: bool) -> list[str] | None:
        """Code that computes this layer's backward quantities (da_dz, delta, dW, db, …)
        from ``dL_da{layer}`` and the forward variables, and — unless ``first`` — the
        gradient with respect to its input, ``dL_da{layer - 1}`` (see above)."""
        return None

    # -- words and symbols -------------------------------------------------------------
    def describe(self) -> str:
        return f"{self.type}({self.n_in} -> {self.n_out})"

    def symbols(self, kind: str, ins: Sequence[Node]) -> Node | None:
        """``kind``'s rule in symbols, given symbols for its inputs (in the node's
        input order); None when explain writes it some other way."""
        return None

    def why(self, kind: str) -> str:
        """Why ``kind``'s rule is what it is, a few sentences ("" for nothing to say)."""
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.n_in} -> {self.n_out})"


# -- the registry -------------------------------------------------------------------------
_REGISTRY: dict[str, type[Layer]] = {}
L = TypeVar("L", bound=type[Layer])


def register_layer(cls: L) -> L:
    """Class decorator: make ``cls`` known by its ``type`` (specs, model files)."""
    if not cls.type:
        raise GlassnetError("expected a layer class with a type", got=cls.__name__, field="type")
    known = _REGISTRY.get(cls.type)
    if known is not None and (known.__module__, known.__qualname__) != (
        cls.__module__,
        cls.__qualname__,
    ):
        raise GlassnetError(
            "expected a type no other layer has",
            got=f"{cls.type!r} (already {known.__qualname__})",
            field="type",
        )
    _REGISTRY[cls.type] = cls
    return cls


def layer_types() -> tuple[str, ...]:
    """Every registered layer type."""
    return tuple(_REGISTRY)


def layer_class(name: str) -> type[Layer]:
    """The class registered under ``name``; an unknown type is an error, never a default."""
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise GlassnetError(f"expected one of {', '.join(_REGISTRY)}", got=repr(name), field="type")
    return cls


def activation_nodes(act: Activation, k: int) -> list[NodeDecl]:
    """The nodes every layer with an activation shares, for layer ``k``: a = f(z) in the
    forward pass; da/dz and delta = dL/da · da/dz (a vector-Jacobian product, so the
    delta shown is the product of the numbers shown) in the backward pass."""

    def a_rule(ins: Sequence[Array]) -> Array:
        return act.forward(ins[0])

    def da_dz_rule(ins: Sequence[Array]) -> Array:
        return act.derivative(ins[0], ins[1])

    def delta_rule(ins: Sequence[Array]) -> Array:
        return act.vjp(ins[1], ins[0])

    return [
        NodeDecl("a", k, (("z", k),), a_rule, "forward"),
        NodeDecl("da_dz", k, (("z", k), ("a", k)), da_dz_rule, "backward"),
        NodeDecl("delta", k, (("dL_da", k), ("da_dz", k)), delta_rule, "backward"),
    ]


def activation_forward_code(act: Activation, k: int) -> list[str]:
    """A notebook's line for a = f(z) of layer ``k`` (see :meth:`Layer.notebook_forward`),
    from the activation's own NumPy text."""
    return [f"a{k} = r({act.numpy_code(f'z{k}')})"]


def activation_backward_code(act: Activation, k: int) -> list[str]:
    """A notebook's lines for da/dz and delta = dL/da · da/dz of layer ``k`` (a product
    with the Jacobian, one per sample, when the activation is not elementwise)."""
    lines = [f"da_dz{k} = r({act.numpy_derivative_code(f'z{k}', f'a{k}')})"]
    if act.elementwise:
        lines.append(f"delta{k} = r(dL_da{k} * da_dz{k})")
    else:
        lines.append(f'delta{k} = r(np.einsum("si,sij->sj", dL_da{k}, da_dz{k}))')
    return lines


def read_activation(table: Mapping[str, Any], default: str = "identity") -> Activation:
    """A layer's ``activation`` field and that activation's options (its other fields)."""
    from glassnet.activations import activation_class
    from glassnet.activations import names as activation_names
    from glassnet.specvalues import number

    name = table.get("activation", default)
    if not isinstance(name, str) or name not in activation_names():
        raise GlassnetError(
            f"expected one of {', '.join(activation_names())}", got=repr(name), field="activation"
        )
    cls = activation_class(name)
    return get_activation(name, **{k: number(table[k], k) for k in cls.defaults if k in table})


def check_fields(table: Mapping[str, Any], allowed: set[str] | frozenset[str], what: str) -> None:
    """Refuse a field the layer does not have, naming it and listing the ones it has."""
    unknown = sorted(set(table) - set(allowed))
    if unknown:
        raise GlassnetError(
            f"expected only the fields {', '.join(sorted(set(allowed) - {'type'}))} for {what}",
            got=f"unknown field {unknown[0]!r}",
            field=unknown[0],
        )


def activation_symbols(act: Activation, kind: str, ins: Sequence[Node]) -> Node | None:
    """The shared nodes' rules in symbols (see :func:`activation_nodes`): a = f(z),
    da/dz, and delta = dL/da ⊙ da/dz (a product with the Jacobian for softmax)."""
    from glassnet import mathtree as mt

    try:
        if kind == "a":
            return act.rule(ins[0], list(ins))
        if kind == "da_dz":
            return act.derivative_rule(ins[0], ins[1])
    except (NotImplementedError, GlassnetError):
        return None  # an activation written another way (softmax's full Jacobian)
    if kind == "delta":
        return mt.join([ins[0], ins[1]], mt.TIMES)
    return None


def feature_vector(v: Array | None, n: int, fill: float, name: str, dtype: Any) -> Array:
    """A per-feature parameter or statistic: ``v`` as given (shape (n,)), or ``fill``."""
    if v is None:
        return np.full(n, fill, dtype=dtype)
    v = np.asarray(v)
    if v.shape != (n,):
        raise GlassnetError(
            f"expected {n} numbers (one per feature)", got=f"shape {v.shape}", field=name
        )
    return v


def normalisation_nodes(
    k: int,
    x: Key,
    *,
    first: bool,
    act: Activation,
    mean: Callable[[Array], Array],
    var: Callable[[Array, Array], Array],
    normalise: Callable[[Array, Array, Array], Array],
    input_grad: Callable[[Array, Array, Array], Array],
) -> list[NodeDecl]:
    """The nodes batch and layer normalisation share, for layer ``k`` with input ``x``;
    they differ only in what the statistics run over (the rules given): mean, var,
    x_hat, z = gamma·x_hat + beta, the activation's nodes, dgamma = Σ delta·x_hat,
    dbeta = Σ delta and, unless ``first``, dx_hat = delta·gamma and the input's
    gradient from dx_hat, x_hat and var."""
    decls = [
        NodeDecl("mean", k, (x,), lambda v: mean(v[0]), "forward"),
        NodeDecl("var", k, (x, ("mean", k)), lambda v: var(v[0], v[1]), "forward"),
        NodeDecl(
            "x_hat",
            k,
            (x, ("mean", k), ("var", k)),
            lambda v: normalise(v[0], v[1], v[2]),
            "forward",
        ),
        NodeDecl(
            "z",
            k,
            (("x_hat", k), ("gamma", k), ("beta", k)),
            lambda v: v[1] * v[0] + v[2],
            "forward",
        ),
        *activation_nodes(act, k),
        NodeDecl(
            "dgamma",
            k,
            (("delta", k), ("x_hat", k)),
            lambda v: (v[0] * v[1]).sum(axis=0),
            "backward",
        ),
        NodeDecl("dbeta", k, (("delta", k),), lambda v: v[0].sum(axis=0), "backward"),
    ]
    if not first:
        decls += [
            NodeDecl("dx_hat", k, (("delta", k), ("gamma", k)), lambda v: v[0] * v[1], "backward"),
            NodeDecl(
                "dL_da",
                k - 1,
                (("dx_hat", k), ("x_hat", k), ("var", k)),
                lambda v: input_grad(v[0], v[1], v[2]),
                "backward",
            ),
        ]
    return decls


def normalisation_code(
    k: int, x: str, *, per_sample: bool, eps: float, act: Activation, first: bool | None
) -> list[str]:
    """A notebook's lines for the quantities batch and layer normalisation share (see
    :func:`normalisation_nodes` and :meth:`Layer.notebook_forward`), over the batch per
    feature or (``per_sample``) over the features per sample: the forward pass's when
    ``first`` is None, else the backward pass's (with the input's gradient unless
    ``first``)."""
    axis, over = (1, "the features of each sample") if per_sample else (0, "the batch")
    col = "[:, None]" if per_sample else ""  # a statistic per sample, as a column
    if first is None:
        return [
            f"eps{k} = {eps!r}",
            f"mean{k} = r({x}.mean(axis={axis}))  # over {over}",
            f"var{k} = r((({x} - mean{k}{col}) ** 2).mean(axis={axis}))  # biased: / N",
            f"x_hat{k} = r(({x} - mean{k}{col}) / np.sqrt(var{k}{col} + eps{k}))",
            f"z{k} = r(gamma{k} * x_hat{k} + beta{k})",
            *activation_forward_code(act, k),
        ]
    lines = [
        *activation_backward_code(act, k),
        f"dgamma{k} = r((delta{k} * x_hat{k}).sum(axis=0))",
        f"dbeta{k} = r(delta{k}.sum(axis=0))",
    ]
    if not first:
        lines += [
            f"dx_hat{k} = r(delta{k} * gamma{k})",
            "# x_hat = (x − mean)/σ, σ = √(var + eps): x moves x_hat directly (1/σ), through",
            f"# the mean (−1/σ, averaged over {over}) and through σ (−x_hat/σ · x_hat, averaged)",
            f"sigma{k} = np.sqrt(var{k}{col} + eps{k})",
            f"dL_da{k - 1} = r(dx_hat{k} / sigma{k}"
            f" - dx_hat{k}.mean(axis={axis}, keepdims=True) / sigma{k}"
            f" - x_hat{k} * (dx_hat{k} * x_hat{k}).mean(axis={axis}, keepdims=True) / sigma{k})",
        ]
    return lines


def normalisation_symbols(
    kind: str, ins: Sequence[Node], eps: float, *, over: str, count: str
) -> Node | None:
    """The rules batch and layer normalisation share, in symbols, given symbols for the
    node's inputs (in its declared order); ``over`` is the index summed over (s, the
    samples; j, the features) and ``count`` how many there are (N, D)."""
    from glassnet import mathtree as mt

    if kind in ("a", "da_dz", "delta"):
        return None  # the activation's, see activation_symbols
    eps_c = mt.Const("ε", eps)
    if kind == "mean":
        return mt.row(mt.Frac(mt.Const("1"), mt.Const(count)), mt.SumOver(over, ins[0]))
    if kind == "var":
        sq = mt.Pow(mt.Paren(mt.join([ins[0], ins[1]], mt.MINUS)), "2")
        return mt.row(mt.Frac(mt.Const("1"), mt.Const(count)), mt.SumOver(over, sq))
    if kind == "x_hat":
        root = mt.Func("√", mt.join([ins[2], eps_c], mt.PLUS))
        return mt.Frac(mt.join([ins[0], ins[1]], mt.MINUS), root)
    if kind == "z":
        return mt.join([mt.join([ins[1], ins[0]], mt.TIMES), ins[2]], mt.PLUS)
    if kind == "dgamma":
        return mt.SumOver(over, mt.join([ins[0], ins[1]], mt.TIMES))
    if kind == "dbeta":
        return mt.SumOver(over, ins[0])
    if kind == "dx_hat":
        return mt.join([ins[0], ins[1]], mt.TIMES)
    return None


def layer_by_torch_name(kind: str) -> type[Layer] | None:
    """The layer type written as the ``torch.nn`` module class ``kind``, if any."""
    for cls in _REGISTRY.values():
        if cls.torch_name is not None and cls.torch_name == kind:
            return cls
    return None


def torch_module(torch: Any, arch: Mapping[str, Any], tensors: Mapping[str, Array]) -> Any:
    """A live ``torch.nn`` module from a layer's plain form (:meth:`Layer.torch_data`):
    built from its class and keyword arguments in the tensors' dtype, its tensors
    copied in exactly (``torch`` is the module, passed in: torch stays optional)."""
    kwargs = {k: v for k, v in arch.items() if k != "type"}
    dtypes = {t.dtype for t in tensors.values()}
    if dtypes:
        kwargs["dtype"] = getattr(torch, str(dtypes.pop()))
    mod = getattr(torch.nn, arch["type"])(**kwargs)
    with torch.no_grad():
        for name, t in tensors.items():
            getattr(mod, name).copy_(torch.from_numpy(np.ascontiguousarray(t)))
    return mod


def tensor_of(module: Any, name: str) -> Array:
    """A live module's parameter or buffer as a NumPy array (a copy)."""
    return getattr(module, name).detach().cpu().numpy().copy()  # type: ignore[no-any-return]


def checked_tensors(
    tensors: Mapping[str, Array], shapes: Mapping[str, tuple[int, ...]]
) -> dict[str, Array]:
    """``tensors`` with exactly the given shapes, float32 or float64 of one dtype, finite —
    or a :class:`GlassnetError` naming the first that is not."""
    out: dict[str, Array] = {}
    dtypes = set()
    for name, shape in shapes.items():
        t = tensors.get(name)
        if t is None or tuple(t.shape) != tuple(shape):
            raise GlassnetError(
                f"expected a tensor {name} of shape {tuple(shape)}",
                got="none" if t is None else f"shape {tuple(t.shape)}",
                field=name,
            )
        if t.dtype not in (np.float32, np.float64):
            raise GlassnetError("expected float32 or float64", got=str(t.dtype), field=name)
        if t.size and not np.isfinite(t).all():
            raise GlassnetError("expected finite numbers", got="NaN or inf", field=name)
        dtypes.add(str(t.dtype))
        out[name] = np.array(t)
    if len(dtypes) > 1:
        raise GlassnetError(
            "expected tensors of one dtype", got=", ".join(sorted(dtypes)), field="dtype"
        )
    return out


def config_size(config: Mapping[str, Any], key: str) -> int:
    """A size from a model file's layer description: a whole number from 1 to 2^24."""
    n = config.get(key)
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= 1 << 24:
        raise GlassnetError("expected sizes from 1 to 2^24", got=repr(n)[:40], field=key)
    return n


def spec_init(table: Mapping[str, Any], ctx: LayerContext) -> str:
    """A layer table's ``init`` (else the spec's default) for weights drawn at random;
    an unknown one is an error naming the field."""
    from glassnet.init import INITS

    init = table.get("init", ctx.default_init)
    if init not in INITS:
        raise GlassnetError(f"expected one of {', '.join(INITS)}", got=repr(init), field="init")
    return str(init)


def config_activation(config: Mapping[str, Any]) -> None:
    """A model file's layer description must describe its activation (a table)."""
    if not isinstance(config.get("activation"), dict):
        raise GlassnetError(
            "expected an activation", got=repr(config.get("activation"))[:60], field="activation"
        )


def identity() -> Activation:
    """The activation of a layer that has none (its a is its z)."""
    return get_activation("identity")


# -- images: sliding windows shared by convolution and pooling ------------------------------


def window_count(size: int, kernel: int, stride: int, padding: int = 0) -> int:
    """How many positions a window of ``kernel`` takes along an axis of ``size`` with
    ``stride`` and ``padding`` on each side: ⌊(size + 2·padding − kernel)/stride⌋ + 1 (0
    when the window does not fit)."""
    room = size + 2 * padding - kernel
    return room // stride + 1 if room >= 0 else 0


def scatter_windows(cells: Array, shape: tuple[int, ...], stride: int, padding: int = 0) -> Array:
    """Cells (batch, C, oh, ow, kh, kw) — cell (p, q) of the window at output position
    (i, j) — added back into a map of ``shape`` (batch, C, H, W) at the cells they were
    read from, (i·stride + p, j·stride + q) of the padded map (overlapping windows add
    up; padding is dropped): the adjoint of reading the windows."""
    n, c, h, w = shape
    oh, ow, kh, kw = cells.shape[2:]
    out = np.zeros((n, c, h + 2 * padding, w + 2 * padding), dtype=cells.dtype)
    for i in range(kh):  # kh·kw strided adds: the kernel is small, the maps are not
        for j in range(kw):
            out[:, :, i : i + stride * oh : stride, j : j + stride * ow : stride] += cells[
                :, :, :, :, i, j
            ]
    return out[:, :, padding : padding + h, padding : padding + w]


def whole(v: Any, name: str, low: int, high: int = 1 << 24) -> int:
    """A spec's or file's whole-number field from ``low`` to ``high``."""
    if isinstance(v, bool) or not isinstance(v, int) or not low <= v <= high:
        raise GlassnetError(
            f"expected a whole number from {low} to {high}", got=repr(v)[:40], field=name
        )
    return int(v)


def image_shape(v: Any, name: str = "in_shape") -> tuple[int, int, int]:
    """(channels, height, width), each a whole number >= 1 — a model file's or
    layer's input shape for feature maps."""
    if not isinstance(v, list | tuple) or len(v) != 3:
        raise GlassnetError("expected [channels, height, width]", got=repr(v)[:40], field=name)
    c, h, w = (whole(e, name, 1) for e in v)
    return c, h, w


class Pool2d(Layer):
    """What max and average pooling share: a ``size``×``size`` window moved by
    ``stride`` (``size`` unless given) over each channel of inputs ``in_shape``
    (C, H, W), no padding, no parameters and no activation; outputs (C, oh, ow)."""

    input_rank = 3
    explained = False
    shown_by: ClassVar[frozenset[str]] = frozenset({"explain", "check", "the studio"})
    takes_activation = False
    spec_fields: ClassVar[frozenset[str]] = frozenset({"type", "size", "stride"})

    def __init__(self, in_shape: Sequence[int], *, size: int, stride: int | None = None) -> None:
        self.size = whole(size, "size", 1, 1 << 16)
        self.stride = whole(self.size if stride is None else stride, "stride", 1, 1 << 16)
        c, h, w = image_shape(list(in_shape))
        if self.size > h or self.size > w:
            raise GlassnetError(
                f"expected a window at most {min(h, w)} wide (the input is {h}×{w})",
                got=str(self.size),
                field="size",
            )
        self.chw = (c, h, w)
        self.activation = identity()

    @property
    def in_shape(self) -> tuple[int, ...]:
        return self.chw

    @property
    def out_shape(self) -> tuple[int, ...]:
        c, h, w = self.chw
        return (c, window_count(h, self.size, self.stride), window_count(w, self.size, self.stride))

    @property
    def n_in(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_out(self) -> int:
        return int(np.prod(self.out_shape))

    def cells(self, x: Array) -> Array:
        """x's windows cell by cell: (size·size, batch, C, oh, ow), entry [p·size + q] the
        cell at (p, q) of every window (row by row) — size² strided slices stacked, so a
        max or mean over the windows runs over whole planes."""
        k, s = self.size, self.stride
        _, oh, ow = self.out_shape
        return np.stack(
            [x[:, :, p : p + s * oh : s, q : q + s * ow : s] for p in range(k) for q in range(k)]
        )

    def window(self, i: int, j: int) -> list[tuple[int, int]]:
        """The input cells (row, column) of output position (i, j)'s window, row by row."""
        k, st = self.size, self.stride
        return [(i * st + p, j * st + q) for p in range(k) for q in range(k)]

    def covering(self, h: int, w: int) -> list[tuple[int, int]]:
        """The output positions (i, j) whose window holds input cell (h, w), in order."""
        _, oh, ow = self.out_shape
        k, st = self.size, self.stride
        return [
            (i, j)
            for i in range(oh)
            for j in range(ow)
            if 0 <= h - i * st < k and 0 <= w - j * st < k
        ]

    def with_leaves(self, values: Mapping[str, Array]) -> Layer:
        return self.copy()

    def copy(self, dtype: Any = None) -> Layer:
        return type(self)(self.chw, size=self.size, stride=self.stride)

    @classmethod
    def from_spec(cls, table: Mapping[str, Any], n_in: int, ctx: LayerContext) -> Layer:
        """``size`` (the window's side) and ``stride`` (``size`` unless given)."""
        check_fields(table, cls.spec_fields, cls.type)
        if "size" not in table:
            raise GlassnetError("expected this field", got="nothing (missing)", field="size")
        return cls(ctx.in_shape, size=table["size"], stride=table.get("stride"))

    def to_spec(self) -> dict[str, Any]:
        return {"size": self.size, "stride": self.stride}

    def config(self) -> dict[str, Any]:
        return {"in_shape": list(self.chw), "size": self.size, "stride": self.stride}

    def arrays(self) -> dict[str, Array]:
        return {}

    @classmethod
    def from_file(
        cls,
        config: Mapping[str, Any],
        arrays: Mapping[str, Array],
        *,
        activation: Activation | None = None,
    ) -> Layer:
        return cls(config["in_shape"], size=config["size"], stride=config["stride"])

    @classmethod
    def file_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        image_shape(config.get("in_shape"))
        whole(config.get("size"), "size", 1, 1 << 16)
        whole(config.get("stride"), "stride", 1, 1 << 16)
        return {}

    def torch_data(self) -> tuple[dict[str, Any], dict[str, Array]]:
        return {"type": self.torch_name, "kernel_size": self.size, "stride": self.stride}, {}

    @classmethod
    def torch_data_of(cls, module: Any) -> tuple[dict[str, Any], dict[str, Array]]:
        arch = {
            "type": cls.torch_name,
            "kernel_size": _plain(module.kernel_size),
            "stride": _plain(module.stride),
            "padding": _plain(module.padding),
            "ceil_mode": bool(module.ceil_mode),
        }
        if getattr(module, "dilation", 1) not in (1, (1, 1)):
            arch["dilation"] = _plain(module.dilation)
        if getattr(module, "divisor_override", None) is not None:
            arch["divisor_override"] = module.divisor_override
        return arch, {}

    @classmethod
    def from_torch_data(cls, arch: Mapping[str, Any], tensors: Mapping[str, Array]) -> Layer:
        return cls.from_torch_shaped(arch, tensors, None)

    @classmethod
    def from_torch_shaped(
        cls,
        arch: Mapping[str, Any],
        tensors: Mapping[str, Array],
        in_shape: tuple[int, ...] | None,
    ) -> Layer:
        """Square windows, no padding, no dilation, ``ceil_mode`` off (glassnet's
        pooling has none of those); the input's (C, H, W) must be known."""
        if in_shape is None or len(in_shape) != 3:
            raise GlassnetError(
                "expected the input's (channels, height, width) before this module "
                "(input_shape=..., or a Conv2d before it)",
                got="none" if in_shape is None else f"shape {in_shape}",
                field=cls.torch_name,
            )
        size = square(arch.get("kernel_size"), "kernel_size", 1)
        stride = arch.get("stride")
        stride = size if stride in (None, [], ()) else square(stride, "stride", 1)
        for name, plain in (("padding", 0), ("ceil_mode", False), ("dilation", 1)):
            v = arch.get(name, plain)
            if v not in (plain, [plain, plain], (plain, plain)):
                raise GlassnetError(f"expected {name} {plain}", got=repr(v)[:40], field=name)
        if arch.get("divisor_override") is not None:
            raise GlassnetError(
                "expected no divisor_override",
                got=repr(arch["divisor_override"]),
                field="divisor_override",
            )
        return cls(in_shape, size=size, stride=stride)

    def notebook_grid(self, layer: int, x: str) -> list[str]:
        """A notebook's lines naming the window (``size{l}``, ``stride{l}``) and the
        output grid (``oh{l}``, ``ow{l}``: how many windows fit down and across) of layer
        ``layer`` over its input, the variable ``x``."""
        k = layer
        return [
            f"size{k}, stride{k} = {self.size}, {self.stride}",
            f"height{k}, width{k} = {x}.shape[2:]",
            f"oh{k} = (height{k} - size{k}) // stride{k} + 1  # windows that fit down",
            f"ow{k} = (width{k} - size{k}) // stride{k} + 1  # and across",
        ]

    def describe(self) -> str:
        c, h, w = self.chw
        _, oh, ow = self.out_shape
        return f"{self.type}({c}×{h}×{w} -> {c}×{oh}×{ow}, size {self.size}, stride {self.stride})"

    def __repr__(self) -> str:
        return self.describe()


def _plain(v: Any) -> Any:
    """A torch module's int or tuple option as JSON-able data (a tuple as a list)."""
    return list(v) if isinstance(v, tuple) else v


def square(v: Any, name: str, low: int) -> int:
    """A torch size, stride or padding given as one number or a pair of equal ones."""
    if isinstance(v, list | tuple) and len(v) == 2 and v[0] == v[1]:
        v = v[0]
    if isinstance(v, bool) or not isinstance(v, int):
        raise GlassnetError("expected one number, or two equal ones", got=repr(v)[:40], field=name)
    return whole(v, name, low, 1 << 16)
