"""Inverted dropout, traced: a given mask switches units off and the survivors are scaled
by 1/(1 − p), so the expected output equals the input and prediction needs no change.

::

    a      = x · mask / (1 − p)              mask: 1 keeps a unit, 0 drops it
    dL/dx  = dL/da · mask / (1 − p)          the same mask and scale on the way back

The mask is a leaf of the step (batch, n), given in the spec (``mask = [[1, 0, 1]]``) or
drawn from ``seed`` with each unit dropped with probability ``p``; so a traced step, its
derivation and a marked worksheet all use one known mask.  Prediction passes x through.
The classic slips — forgetting the 1/(1 − p) scale, or masking with the wrong mask on the
way back — are alternatives check can name.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.activations import Activation
from glassnet.errors import GlassnetError
from glassnet.layers.base import Layer, check_fields, config_size, identity, register_layer
from glassnet.nodes import Key, NodeDecl, Rule
from glassnet.specvalues import LayerContext, matrix, number

if TYPE_CHECKING:
    from glassnet.mathtree import Node

Array = np.ndarray


def dropout_forward(x: Array, mask: Array, p: float) -> Array:
    """a = x·mask/(1 − p), (batch, n)."""
    return x * mask / (1 - p)


def dropout_backward(dL_da: Array, mask: Array, p: float) -> Array:
    """dL/dx = dL/da·mask/(1 − p), (batch, n)."""
    return dL_da * mask / (1 - p)


def draw_mask(rng: np.random.Generator, shape: tuple[int, int], p: float) -> Array:
    """Each entry 1 with probability 1 − p, else 0 (float64)."""
    return (rng.random(shape) >= p).astype(np.float64)


@register_layer
class Dropout(Layer):
    """Inverted dropout with rate ``p`` and a known ``mask`` (batch, n) of 0s and 1s.

    >>> d = Dropout(2, p=0.5, mask=np.array([[1.0, 0.0]]))
    >>> d.forward_train(np.array([[3.0, 4.0]])).tolist()
    [[6.0, 0.0]]
    """

    type = "dropout"
    constants = ("mask",)
    words = (
        "dropout: each unit kept (mask 1) or dropped (mask 0), the kept ones scaled by 1/(1 − p)"
    )
    spec_fields = frozenset({"type", "p", "mask", "seed"})

    def __init__(self, n: int, *, p: float, mask: Array | None = None) -> None:
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
            raise GlassnetError("expected a whole number of features >= 1", got=repr(n))
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 <= p < 1:
            raise GlassnetError("expected a rate p in [0, 1)", got=repr(p), field="p")
        self.n = int(n)
        self.p = float(p)
        if mask is None:
            mask = np.ones((1, self.n))
        mask = np.asarray(mask, dtype=np.float64)
        if mask.ndim != 2 or mask.shape[1] != self.n:
            raise GlassnetError(
                f"expected rows of {self.n} zeros and ones (one row per sample)",
                got=f"shape {mask.shape}",
                field="mask",
            )
        if not np.isin(mask, (0.0, 1.0)).all():
            raise GlassnetError("expected only 0s and 1s", got="another number", field="mask")
        self.mask = mask
        self.activation = identity()

    @property
    def n_in(self) -> int:
        return self.n

    @property
    def n_out(self) -> int:
        return self.n

    def kinds(self) -> tuple[str, ...]:
        return ("a", "dL_da")

    def nodes(self, layer: int, x: Key, *, first: bool) -> list[NodeDecl]:
        k, p = layer, self.p
        decls = [
            NodeDecl("a", k, (x, ("mask", k)), lambda v: dropout_forward(v[0], v[1], p), "forward")
        ]
        if not first:
            decls.append(
                NodeDecl(
                    "dL_da",
                    k - 1,
                    (("dL_da", k), ("mask", k)),
                    lambda v: dropout_backward(v[0], v[1], p),
                    "backward",
                )
            )
        return decls

    def alternatives(self, layer: int) -> dict[str, dict[Key, Rule]]:
        """Forgetting the 1/(1 − p) scale, forward or backward."""
        k = layer
        alts: dict[str, dict[Key, Rule]] = {
            "dropout_no_scale": {("a", k): lambda v: v[0] * v[1]},
        }
        if k > 1:
            alts["dropout_backward_no_scale"] = {("dL_da", k - 1): lambda v: v[0] * v[1]}
        return alts

    def predict(self, x: Array) -> Array:
        return x  # inverted dropout: nothing to undo at prediction

    def forward_train(self, x: Array) -> Array:
        if self.mask.shape != x.shape:
            raise GlassnetError(
                f"expected a mask of shape {x.shape} (one row per sample)",
                got=f"shape {self.mask.shape}",
                field="mask",
            )
        return dropout_forward(x, self.mask, self.p)

    def draw(self, rng: np.random.Generator | None, batch: int) -> dict[str, Array]:
        """A fresh mask for each training batch (every unit kept when ``rng`` is None)."""
        if rng is None:
            return {"mask": np.ones((batch, self.n))}
        return {"mask": draw_mask(rng, (batch, self.n), self.p)}

    def torch_train(self, torch: Any, x: Any, drawn: Mapping[str, Any]) -> Any:
        """x·mask/(1 − p) on tensors, with the mask :meth:`draw` drew (not
        ``nn.Dropout``, whose masks come from torch's own generator: with glassnet's
        stream a PyTorch fit drops the very units a NumPy fit drops)."""
        return dropout_forward(x, drawn["mask"], self.p)

    # -- a notebook's recomputing code (see Layer.notebook_forward) ------------------------
    def notebook_forward(self, layer: int, x: str) -> list[str] | None:
        """The kept units (mask 1) scaled by 1/(1 − p), the dropped ones 0."""
        k = layer
        return [f"p_drop{k} = {self.p!r}", f"a{k} = r({x} * mask{k} / (1 - p_drop{k}))"]

    def notebook_backward(self, layer: int, x: str, *, first: bool) -> list[str] | None:
        """The same mask and scale on the way back."""
        if first:
            return []
        k = layer
        return [f"dL_da{k - 1} = r(dL_da{k} * mask{k} / (1 - p_drop{k}))"]

    def with_leaves(self, values: Mapping[str, Array]) -> Dropout:
        return Dropout(self.n, p=self.p, mask=values.get("mask", self.mask))

    def copy(self, dtype: Any = None) -> Dropout:
        return Dropout(self.n, p=self.p, mask=self.mask.copy())

    @classmethod
    def from_spec(cls, ld: Mapping[str, Any], n_in: int, ctx: LayerContext) -> Dropout:
        """``p`` (the drop rate) and either ``mask`` (rows of 0/1, one per sample) or
        ``seed`` (a mask drawn with each unit dropped with probability p)."""
        check_fields(ld, cls.spec_fields, "dropout")
        if "p" not in ld:
            raise GlassnetError("expected this field", got="nothing (missing)", field="p")
        p = number(ld["p"], "p")
        if "mask" in ld and "seed" in ld:
            raise GlassnetError(
                "expected either 'mask' or 'seed', not both", got="both", field="seed"
            )
        if "mask" in ld:
            mask = matrix(ld["mask"], "mask", rows_ok=True)
            if mask.shape != (ctx.batch, n_in):
                raise GlassnetError(
                    f"expected {ctx.batch} row(s) of {n_in} zeros and ones (one per sample)",
                    got=f"{mask.shape[0]} row(s) of {mask.shape[1]}",
                    field="mask",
                )
        else:
            seed = ld.get("seed", ctx.seed)
            if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
                raise GlassnetError("expected a whole number >= 0", got=repr(seed), field="seed")
            if not 0 <= p < 1:
                raise GlassnetError("expected a rate p in [0, 1)", got=repr(p), field="p")
            mask = draw_mask(np.random.default_rng(seed), (ctx.batch, n_in), p)
        return Dropout(n_in, p=p, mask=mask)

    takes_activation = False

    def config(self) -> dict[str, Any]:
        return {"n": self.n, "p": self.p}

    def arrays(self) -> dict[str, Array]:
        return {}  # the mask belongs to one step, not to the model

    @classmethod
    def from_file(
        cls,
        config: Mapping[str, Any],
        arrays: Mapping[str, Array],
        *,
        activation: Activation | None = None,
    ) -> Dropout:
        return Dropout(int(config["n"]), p=float(config["p"]))

    @classmethod
    def file_shapes(cls, config: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
        config_size(config, "n")
        number(config.get("p"), "p")
        return {}

    def describe(self) -> str:
        return f"dropout({self.n}, p={self.p:g})"

    def symbols(self, kind: str, ins: Sequence[Node]) -> Node | None:
        from glassnet import mathtree as mt

        scale = mt.Frac(mt.Const("1"), mt.row(mt.Const("1"), mt.MINUS, mt.Const("p", self.p)))
        return mt.join([ins[0], ins[1], scale], mt.TIMES)

    def why(self, kind: str) -> str:
        if kind == "a":
            return (
                "Dividing the kept units by 1 − p keeps each unit's expected value what it "
                "was without dropout, so prediction can use the layer unchanged."
            )
        if kind == "dL_da":
            return (
                "a = x·mask/(1 − p) is linear in x, so its derivative is mask/(1 − p): the "
                "gradient flows back only through the kept units, with the same scale."
            )
        return ""
