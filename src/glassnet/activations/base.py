"""The activation base class and the registry every activation is found through.

An activation owns everything about itself, in one class: the forward rule, the local
derivative (the full Jacobian for softmax), the vector-Jacobian product, the rule in
symbols and in words for ``explain``, the NumPy code a notebook checks it with, and its
PyTorch and ONNX spellings.  Nothing outside the class dispatches on its name, so a new
activation is one class in one file of this package (decorated with :func:`register`).

Shapes: ``z`` and ``a`` are (batch, n).  ``derivative`` returns da/dz: (batch, n) for
elementwise activations, the Jacobian (batch, n, n) with ``J[s, i, j] = da_i/dz_j``
otherwise.  ``backward`` is the vector-Jacobian product: given dL/da it returns
delta = dL/dz.  Every method that makes an array takes ``out=`` (the training loop's
buffers); without it a new array is returned — one code path either way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar

import numpy as np

from glassnet.errors import GlassnetError

if TYPE_CHECKING:
    from glassnet.mathtree import Node

Array = np.ndarray


class Activation:
    """Base class.  Subclasses set the class attributes and implement ``forward`` and
    ``derivative``; ``backward`` defaults to dL_da · da/dz (right for elementwise ones)."""

    #: The name specs, model files and the CLI use.
    name: ClassVar[str] = ""
    #: True when da_i/dz_j = 0 for i != j, so ``derivative`` is (batch, n).
    elementwise: ClassVar[bool] = True
    #: Options the constructor takes (spec keys of a layer), with their defaults.
    defaults: ClassVar[dict[str, float]] = {}
    #: For explain: what the activation is ("ReLU, max(0, x)").
    words: ClassVar[str] = ""
    #: For explain: how its derivative is found, one sentence ("" when explain writes the
    #: Jacobian out instead, as for softmax).
    derivative_words: ClassVar[str] = ""
    #: The ``torch.nn`` module class (None: no module, as for the identity).
    torch_name: ClassVar[str | None] = None
    #: The module's attributes :meth:`from_torch_options` reads.
    torch_fields: ClassVar[tuple[str, ...]] = ()
    #: The ONNX operator, for the default :meth:`onnx_nodes`.
    onnx_op: ClassVar[str] = ""

    # -- capabilities: what callers ask instead of comparing names ---------------------
    #: What an output layer with this activation gives: ``"values"`` (any real
    #: numbers: regression), ``"distribution"`` (each row a probability distribution over
    #: classes: softmax) or ``"probabilities"`` (each output its own probability in
    #: (0, 1): sigmoid).
    output_kind: ClassVar[str] = "values"
    #: True when a_k = e^{z_k} / Σ_j e^{z_j}, so da_k/dz_j = a_k(δ_kj − a_j): the
    #: Jacobian cross-entropy's gradient cancels against to give p − y.
    exp_normalised: ClassVar[bool] = False
    #: True when the derivative is a step in z (slope 1 above zero, a constant below,
    #: as ReLU's): a person may read it off the output a, or put it on the wrong side.
    piecewise_linear: ClassVar[bool] = False

    def __init__(self, **options: float) -> None:
        unknown = sorted(set(options) - set(self.defaults))
        if unknown:
            expected = ", ".join(self.defaults) or "no options"
            raise GlassnetError(
                f"expected {expected} for {self.name}", got=", ".join(unknown), field="activation"
            )
        self.options: dict[str, float] = {}
        for key, default in self.defaults.items():
            value = options.get(key, default)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise GlassnetError("expected a finite number", got=repr(value), field=key)
            if not np.isfinite(value):
                raise GlassnetError("expected a finite number", got=repr(value), field=key)
            self.options[key] = float(value)

    # -- the maths ---------------------------------------------------------------------
    def forward(self, z: Array, out: Array | None = None) -> Array:
        """a = f(z), (batch, n) -> (batch, n); written into ``out`` when given."""
        raise NotImplementedError

    def derivative(self, z: Array, a: Array) -> Array:
        """da/dz: (batch, n) if elementwise, else the Jacobian (batch, n, n)."""
        raise NotImplementedError

    def backward(self, z: Array, a: Array, dL_da: Array, out: Array | None = None) -> Array:
        """delta = dL/dz from dL/da (the chain rule through this activation).  ``out`` may
        be ``dL_da`` itself."""
        return np.multiply(dL_da, self.derivative(z, a), out=out)

    def fused_kernels(self) -> tuple[Any, Any] | None:
        """Compiled one-pass kernels for the fast step (:mod:`glassnet.kernels`, numba),
        or None (the default: the NumPy passes above run).  When given, a pair:

        - ``forward(z, b, a)``: z (m, n) holds x·W; adds b (n,) to it in place and
          writes a = f(z) into a (m, n) — :meth:`forward` after the bias add;
        - ``backward(z, dL_da, delta, db)``: delta = dL_da · f'(z) into delta (m, n)
          and db (n,) = Σ_samples delta — :meth:`backward` and the bias gradient.

        Same operations as the NumPy passes, so the same numbers (tests/test_kernels.py).
        Calling this compiles (or loads from the cache): only a fit that chose the
        kernels asks."""
        return None

    def vjp(self, da_dz: Array, dL_da: Array) -> Array:
        """delta from a recorded local derivative: dL_da·da_dz elementwise, or
        ``delta_j = Σ_i dL_da_i · J_ij`` with the full Jacobian.  The traced step uses
        this, so the delta it shows is literally the product of the numbers it shows."""
        if da_dz.ndim == 3:
            return np.einsum("si,sij->sj", dL_da, da_dz)
        return dL_da * da_dz

    @property
    def outputs_probabilities(self) -> bool:
        """True when an output layer with this activation gives probabilities (a
        distribution or independent ones): predictions are then class labels."""
        return self.output_kind != "values"

    def classes(self, p: Array) -> Array:
        """Predicted classes (batch,) from outputs p (batch, n_out): the most likely
        output (argmax); :class:`Sigmoid` thresholds each output at 0.5 instead."""
        return p.argmax(axis=1)

    def labels_from_targets(self, Y: Array) -> Array | None:
        """Class labels (batch,) that targets Y (batch, n_out) encode for this output,
        or None when they are not class labels (regression, soft targets)."""
        return None

    # -- in symbols and words (explain) ------------------------------------------------
    def rule(self, z: Node, zs: list[Node] | None = None) -> Node:
        """a = f(z) in symbols; ``zs`` are all the layer's inputs (softmax's denominator)."""
        raise NotImplementedError

    def derivative_rule(self, z: Node, a: Node) -> Node:
        """da/dz in symbols, from a where that is how :meth:`derivative` computes it."""
        raise NotImplementedError

    def why(self) -> str:
        """Why :meth:`derivative_rule` is the derivative of :meth:`rule`: a short
        derivation in words and inline maths, shown folded beside its first use.  The
        default only says where it comes from; each activation writes its own."""
        return (
            f"Differentiate {self.name}'s rule with respect to its input z, by the usual "
            "rules of calculus (chain, product and quotient rules)."
        )

    def by_hand(
        self, z: Array, written: Callable[[Array], Array] | None = None
    ) -> tuple[Array, Array] | None:
        """For an activation a person computes in parts (softmax: each e^z, then their
        sum): those parts of ``z`` (B, n) — (B, n) and (B,) — with each first part
        rounded by ``written`` as a person writes it down; None when the activation is
        one step (the default) or the parts do not fit a float."""
        return None

    def numpy_code(self, z: str) -> str:
        """``f(z)`` as a NumPy expression on the variable named ``z`` (for notebooks)."""
        raise NotImplementedError

    def circuit_text(self, z: str) -> str | None:
        """``f(z)`` as a circuit's expression over the node named ``z`` (its gates:
        docs/graphs.md), for ``glassnet graph --from-spec``; None when one unit's output
        is not a function of its own z alone (softmax) or the gates cannot write it."""
        return None

    def numpy_derivative_code(self, z: str, a: str) -> str:
        """``da/dz`` as a NumPy expression (the full Jacobian if not elementwise)."""
        raise NotImplementedError

    # -- PyTorch and ONNX --------------------------------------------------------------
    def torch_options(self) -> dict[str, Any]:
        """Keyword arguments of the ``torch.nn`` module (also written in model files)."""
        return {}

    @classmethod
    def from_torch_options(cls, options: dict[str, Any]) -> Activation:
        """The activation for a module's options (the inverse of :meth:`torch_options`).
        Raise :class:`GlassnetError` for options glassnet does not compute."""
        if options:
            raise GlassnetError(
                f"expected no options for {cls.torch_name}", got=", ".join(options), field="module"
            )
        return cls()

    def torch_module(self, nn: Any) -> Any:
        """The ``torch.nn`` module (``nn`` is ``torch.nn``), or None for no module."""
        if self.torch_name is None:
            return None
        return getattr(nn, self.torch_name)(**self.torch_options())

    def onnx_nodes(self, helper: Any, z: str, out: str, name: str) -> list[Any]:
        """ONNX nodes computing ``out`` = f(``z``) (``helper`` is ``onnx.helper``)."""
        return [helper.make_node(self.onnx_op, [z], [out], name=name, **self.onnx_attributes())]

    def onnx_attributes(self) -> dict[str, Any]:
        return {}

    # -- naming ------------------------------------------------------------------------
    def describe(self) -> str:
        if not self.options:
            return self.name
        inner = ", ".join(f"{k}={v:g}" for k, v in self.options.items())
        return f"{self.name}({inner})"

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, **self.options}

    def __repr__(self) -> str:
        inner = ", ".join(f"{k}={v!r}" for k, v in self.options.items())
        return f"{type(self).__name__}({inner})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.options == self.options  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((self.name, tuple(self.options.items())))


# -- the registry -------------------------------------------------------------------------
_REGISTRY: dict[str, type[Activation]] = {}
A = TypeVar("A", bound=type[Activation])


def register(cls: A) -> A:
    """Class decorator: make ``cls`` known by its ``name`` (specs, model files, the CLI).

    A second class under a name already taken is refused: two activations answering to
    one name would make a model file mean two things."""
    if not cls.name:
        raise GlassnetError("expected a class with a name", got=cls.__name__, field="activation")
    known = _REGISTRY.get(cls.name)
    if known is not None and known is not cls:
        if (known.__module__, known.__qualname__) != (cls.__module__, cls.__qualname__):
            raise GlassnetError(
                "expected a name no other activation has",
                got=f"{cls.name!r} (already {known.__qualname__})",
                field="activation",
            )
    _REGISTRY[cls.name] = cls
    return cls


def names() -> tuple[str, ...]:
    """Every registered activation name."""
    return tuple(_REGISTRY)


def activation_class(name: str) -> type[Activation]:
    """The class registered under ``name``; an unknown name is an error, never a default."""
    cls = _REGISTRY.get(name) if isinstance(name, str) else None
    if cls is None:
        raise GlassnetError(
            f"expected one of {', '.join(_REGISTRY)}", got=repr(name), field="activation"
        )
    return cls


def get_activation(spec: str | Activation, **options: float) -> Activation:
    """An activation from its name (``"relu"``) or an instance (returned as is)."""
    if isinstance(spec, Activation):
        return spec
    return activation_class(spec)(**options)


def from_dict(d: dict[str, object]) -> Activation:
    """Inverse of :meth:`Activation.to_dict`."""
    options = {k: v for k, v in d.items() if k != "name"}
    return get_activation(str(d.get("name")), **options)  # type: ignore[arg-type]


def by_torch_name(kind: str) -> type[Activation] | None:
    """The activation whose ``torch.nn`` module class is called ``kind``, if any."""
    for cls in _REGISTRY.values():
        if cls.torch_name == kind:
            return cls
    return None
