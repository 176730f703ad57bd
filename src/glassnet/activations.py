"""Activation functions, each owning its forward rule and its chain rule.

Shapes: ``z`` and ``a`` are (batch, n).  ``derivative`` returns the local
derivative da/dz: (batch, n) for elementwise activations, the full Jacobian
(batch, n, n) with ``J[s, i, j] = da_i/dz_j`` for softmax.  ``backward`` is the
vector-Jacobian product: given dL/da it returns delta = dL/dz.

All are numerically safe for |z| up to 1e4 and beyond: no overflow warning, no NaN.
Derivatives come from the cached output where that is cheaper (sigmoid, tanh,
softmax), from z where the output cannot tell (ReLU at 0).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from glassnet.errors import GlassnetError

Array = np.ndarray


#: Read-only zero arrays by (shape, dtype), for :meth:`ReLU.forward_into`.
_ZEROS: dict[tuple[tuple[int, ...], str], Array] = {}


def _zeros_like(z: Array) -> Array:
    """A cached read-only array of zeros shaped like z (the training loop's shapes repeat)."""
    key = (z.shape, z.dtype.str)
    zeros = _ZEROS.get(key)
    if zeros is None:
        if len(_ZEROS) >= 32:  # bound the cache: a few shapes per fit
            _ZEROS.clear()
        zeros = _ZEROS[key] = np.zeros(z.shape, z.dtype)
        zeros.flags.writeable = False
    return zeros


class Activation:
    """Base class.  Subclasses set ``name`` and implement ``forward``/``derivative``."""

    name: ClassVar[str] = ""
    #: True when da_i/dz_j = 0 for i != j, so ``derivative`` is (batch, n).
    elementwise: ClassVar[bool] = True

    def forward(self, z: Array) -> Array:
        """a = f(z), (batch, n) -> (batch, n)."""
        raise NotImplementedError

    def derivative(self, z: Array, a: Array) -> Array:
        """da/dz: (batch, n) if elementwise, else the Jacobian (batch, n, n)."""
        raise NotImplementedError

    def backward(self, z: Array, a: Array, dL_da: Array) -> Array:
        """delta = dL/dz from dL/da (the chain rule through this activation)."""
        return dL_da * self.derivative(z, a)

    def forward_into(self, z: Array, out: Array) -> Array:
        """:meth:`forward` written into ``out`` (the training loop's buffer).  Subclasses
        override it to skip the temporary; the numbers are the same either way."""
        out[...] = self.forward(z)
        return out

    def backward_into(self, z: Array, a: Array, dL_da: Array, out: Array) -> Array:
        """:meth:`backward` written into ``out`` (which may be ``dL_da`` itself)."""
        out[...] = self.backward(z, a, dL_da)
        return out

    def vjp(self, da_dz: Array, dL_da: Array) -> Array:
        """delta from a recorded local derivative: dL_da·da_dz elementwise, or
        ``delta_j = Σ_i dL_da_i · J_ij`` with the full Jacobian.  The traced step uses
        this, so the delta it shows is literally the product of the numbers it shows."""
        if da_dz.ndim == 3:
            return np.einsum("si,sij->sj", dL_da, da_dz)
        return dL_da * da_dz

    def describe(self) -> str:
        return self.name

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Identity(Activation):
    name = "identity"

    def forward(self, z: Array) -> Array:
        return z.copy()

    def derivative(self, z: Array, a: Array) -> Array:
        return np.ones_like(z)

    def backward(self, z: Array, a: Array, dL_da: Array) -> Array:
        return dL_da.copy()


class ReLU(Activation):
    """max(0, z).  NOTE: the derivative at z = 0 is taken as 0, as the seed says ("otherwise 0")."""

    name = "relu"

    def forward(self, z: Array) -> Array:
        return np.maximum(z, 0)

    def derivative(self, z: Array, a: Array) -> Array:
        return (z > 0).astype(z.dtype)

    def backward(self, z: Array, a: Array, dL_da: Array) -> Array:
        # dL_da · 1[z > 0]: the product the traced step forms with the recorded derivative.
        return dL_da * (z > 0)

    def forward_into(self, z: Array, out: Array) -> Array:
        # max(z, 0) against an array of zeros: NumPy's SIMD loop, ~3× faster than the
        # scalar 0 (the same 0.0 in the same dtype, so the same numbers).
        return np.maximum(z, _zeros_like(z), out=out)

    def backward_into(self, z: Array, a: Array, dL_da: Array, out: Array) -> Array:
        if np.may_share_memory(out, dL_da):
            return np.multiply(dL_da, z > 0, out=out)
        # The mask 1[z > 0] as 1.0/0.0 in out, then a same-dtype product: what × bool
        # computes (bool is cast to 1.0/0.0), without NumPy's slower mixed-type loop.
        np.greater(z, 0, out=out)
        return np.multiply(dL_da, out, out=out)


class LeakyReLU(Activation):
    """z for z > 0, slope·z otherwise (slope 0.01 unless set).  Derivative at 0 is the slope."""

    name = "leaky_relu"

    def __init__(self, slope: float = 0.01) -> None:
        if not (isinstance(slope, int | float) and np.isfinite(slope)):
            raise GlassnetError("expected a finite number", got=repr(slope), field="slope")
        self.slope = float(slope)

    def forward(self, z: Array) -> Array:
        return np.where(z > 0, z, self.slope * z)

    def derivative(self, z: Array, a: Array) -> Array:
        return np.where(z > 0, 1.0, self.slope).astype(z.dtype)

    def describe(self) -> str:
        return f"leaky_relu(slope={self.slope:g})"

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "slope": self.slope}

    def __repr__(self) -> str:
        return f"LeakyReLU(slope={self.slope!r})"


class Sigmoid(Activation):
    """1 / (1 + e^-z), derivative a(1 - a) from the output."""

    name = "sigmoid"

    def forward(self, z: Array) -> Array:
        # exp of -|z| never overflows; pick the algebraically equal form per sign.
        e = np.exp(-np.abs(z))
        return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)

    def derivative(self, z: Array, a: Array) -> Array:
        return a * (1 - a)


class Tanh(Activation):
    """tanh(z), derivative 1 - a² from the output."""

    name = "tanh"

    def forward(self, z: Array) -> Array:
        return np.tanh(z)

    def forward_into(self, z: Array, out: Array) -> Array:
        return np.tanh(z, out=out)

    def derivative(self, z: Array, a: Array) -> Array:
        return 1 - a * a


class Softmax(Activation):
    """e^{z_i} / Σ_j e^{z_j} per row, with the row maximum subtracted first (no overflow).

    The derivative is the full Jacobian ``J[s, i, j] = a_i (δ_ij − a_j)``; ``backward``
    applies it as a vector-Jacobian product, ``delta_j = Σ_i dL_da_i J_ij
    = a_j (dL_da_j − Σ_i dL_da_i a_i)`` — every off-diagonal term included.
    """

    name = "softmax"
    elementwise = False

    def forward(self, z: Array) -> Array:
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def forward_into(self, z: Array, out: Array) -> Array:
        # The same three steps as forward, each in place in out.  The ufuncs' own reduce
        # is what z.max / sum call, minus their Python wrapper (a few µs a step).
        np.subtract(z, np.maximum.reduce(z, axis=1, keepdims=True), out=out)
        np.exp(out, out=out)
        out /= np.add.reduce(out, axis=1, keepdims=True)
        return out

    def derivative(self, z: Array, a: Array) -> Array:
        n = a.shape[1]
        return a[:, :, None] * (np.eye(n, dtype=a.dtype)[None] - a[:, None, :])

    def backward(self, z: Array, a: Array, dL_da: Array) -> Array:
        # J is symmetric, so Jᵀ·g = J·g; this is that product without building J.
        return a * (dL_da - (dL_da * a).sum(axis=1, keepdims=True))


_BY_NAME: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Identity, ReLU, LeakyReLU, Sigmoid, Tanh, Softmax)
}
ACTIVATIONS: tuple[str, ...] = tuple(_BY_NAME)


def get_activation(spec: str | Activation, **options: float) -> Activation:
    """An activation from its name (``"relu"``) or an instance (returned as is)."""
    if isinstance(spec, Activation):
        return spec
    cls = _BY_NAME.get(spec) if isinstance(spec, str) else None
    if cls is None:
        raise GlassnetError(
            f"expected one of {', '.join(ACTIVATIONS)}", got=repr(spec), field="activation"
        )
    if options and cls is not LeakyReLU:
        raise GlassnetError(
            f"expected no options for {spec}", got=", ".join(options), field="activation"
        )
    return cls(**options)


def from_dict(d: dict[str, object]) -> Activation:
    """Inverse of :meth:`Activation.to_dict`."""
    options = {k: v for k, v in d.items() if k != "name"}
    return get_activation(str(d.get("name")), **options)  # type: ignore[arg-type]
