"""All of a network's trainable parameters in one buffer, their gradients in another.

:class:`FlatParameters` lays the parameters of some layers end to end, one contiguous
1-D buffer per dtype, and gives each layer a **view** of its place in it: ``layer.W`` is
still an array shaped (n_in, n_out) — the same values, the same shape — only its memory
is a slice of the buffer.  A second buffer of the same layout holds the gradients
(``grads[i]`` shaped like ``params[i]``), which the backward pass writes into (the
training loop's ``dW``, ``db``).  An optimiser whose rule is element-wise
(:attr:`Optimizer.elementwise`) then lays its state out the same way and updates every
parameter in a handful of passes over whole buffers (:meth:`Optimizer.step_flat`)
instead of a loop of small passes per parameter: the same operations on the same
numbers, so the same results bit for bit.

Layout of one dtype's buffer: the parameters weight decay applies to (each layer's
``decayed`` set: weights and kernels) first, in the network's order, then the others
(biases, normalisation scales and shifts), so that weight decay is one slice,
``[:n_decayed]``.  Every parameter starts on a 64-byte boundary (a cache line); the few
numbers of padding between them are zeros in every buffer and stay zero under every
element-wise rule (a zero gradient moves nothing, its state stays zero).

A parameter replaced since it was laid out (a callback's ``layer.W = new``) is noticed
by :meth:`FlatParameters.refresh`, which copies the new values into its place and gives
the layer its view back, so that the array the network computes with is always the one
trained.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from glassnet.errors import GlassnetError

Array = np.ndarray

#: Every parameter's first number starts on a multiple of this many bytes.
ALIGN = 64


@dataclass
class FlatGroup:
    """The parameters of one dtype: ``params`` and ``grads`` (size,) buffers, the first
    ``n_decayed`` numbers those of decayed parameters (padding included)."""

    dtype: np.dtype
    params: Array
    grads: Array
    n_decayed: int
    #: (index in the parameters' order, offset, size) of each parameter laid here.
    places: list[tuple[int, int, int]] = field(default_factory=list)

    def zeros(self) -> Array:
        """A fresh (size,) buffer of this layout, zeros (padding included), aligned."""
        return _aligned_zeros(self.params.shape[0], self.dtype)


def _aligned_zeros(size: int, dtype: np.dtype) -> Array:
    """(size,) zeros whose first number is on an :data:`ALIGN`-byte boundary."""
    item = dtype.itemsize
    raw = np.zeros(size + ALIGN // item, dtype=dtype)
    skip = (-raw.ctypes.data % ALIGN) // item
    return raw[skip : skip + size]


def _padded(n: int, item: int) -> int:
    """n numbers rounded up to a whole number of :data:`ALIGN`-byte lines."""
    per = max(ALIGN // item, 1)
    return -(-n // per) * per


class FlatParameters:
    """Parameters laid end to end (see the module docstring).

    ``slots``: per parameter, in the order optimisers see them (``net.parameters()``),
    the object holding it, its attribute name and whether weight decay applies to it.
    Each holder's attribute is rebound to its view here.

    >>> class L:
    ...     params = ("W", "b"); decayed = frozenset({"W"})
    ...     W = np.ones((2, 3)); b = np.zeros(3)
    >>> layer = L(); flat = FlatParameters.of_layers([layer])
    >>> layer.W.shape, layer.W.base is not None, flat.groups[0].n_decayed
    ((2, 3), True, 8)
    """

    def __init__(self, slots: Sequence[tuple[Any, str, bool]]) -> None:
        arrays = [np.asarray(getattr(owner, name)) for owner, name, _ in slots]
        self.slots = list(slots)
        self.shapes = [a.shape for a in arrays]
        self.groups: list[FlatGroup] = []
        #: Per parameter: (group number, offset, size).
        self._where: list[tuple[int, int, int]] = [(0, 0, 0)] * len(arrays)
        dtypes: list[np.dtype] = []
        for a in arrays:
            if a.dtype not in dtypes:
                dtypes.append(a.dtype)
        for k, dtype in enumerate(dtypes):
            mine = [i for i, a in enumerate(arrays) if a.dtype == dtype]
            # Decayed parameters first: weight decay is then one slice of the buffer.
            order = [i for i in mine if slots[i][2]] + [i for i in mine if not slots[i][2]]
            offset, places, n_decayed = 0, [], 0
            for i in order:
                size = arrays[i].size
                places.append((i, offset, size))
                self._where[i] = (k, offset, size)
                offset += _padded(size, dtype.itemsize)
                if slots[i][2]:
                    n_decayed = offset
            group = FlatGroup(
                dtype,
                _aligned_zeros(offset, dtype),
                _aligned_zeros(offset, dtype),
                n_decayed,
                places,
            )
            self.groups.append(group)
        self.params: list[Array] = [self._view(i, "params") for i in range(len(arrays))]
        self.grads: list[Array] = [self._view(i, "grads") for i in range(len(arrays))]
        for (owner, name, _), a, view in zip(self.slots, arrays, self.params, strict=True):
            view[...] = a
            setattr(owner, name, view)

    @classmethod
    def of_layers(
        cls, layers: Sequence[Any], reuse: FlatParameters | None = None
    ) -> FlatParameters:
        """Every trainable parameter of ``layers`` (each layer's ``params``, decayed as
        its ``decayed`` says), in ``Network.parameters()`` order.  ``reuse``: a layout
        made before (the one the optimiser's state is laid out for: a fit continued,
        ``partial_fit``), returned as it is — after :meth:`refresh` — when it holds
        the same parameters of the same layers, shaped as they are now: nothing is
        copied or allocated again."""
        slots = [(layer, name, name in layer.decayed) for layer in layers for name in layer.params]
        if reuse is not None and reuse._holds(slots):
            reuse.refresh()
            return reuse
        return cls(slots)

    def _holds(self, slots: Sequence[tuple[Any, str, bool]]) -> bool:
        """Whether this layout is of ``slots`` (the same holders, names and decay), each
        parameter now shaped and typed as when laid out."""
        return len(slots) == len(self.slots) and all(
            a[0] is b[0]
            and a[1:] == b[1:]
            and np.shape(getattr(a[0], a[1])) == shape
            and np.asarray(getattr(a[0], a[1])).dtype == view.dtype
            for a, b, shape, view in zip(slots, self.slots, self.shapes, self.params, strict=True)
        )

    def _view(self, i: int, which: str) -> Array:
        k, offset, size = self._where[i]
        buffer = getattr(self.groups[k], which)
        return buffer[offset : offset + size].reshape(self.shapes[i])

    def views_of(self, buffers: Sequence[Array]) -> list[Array]:
        """Per parameter, its view of ``buffers`` (one (size,) buffer per group, in
        :attr:`groups` order): an optimiser's state laid out as the parameters."""
        out = []
        for i, shape in enumerate(self.shapes):
            k, offset, size = self._where[i]
            out.append(buffers[k][offset : offset + size].reshape(shape))
        return out

    def refresh(self) -> None:
        """Bring back into the buffer any parameter replaced since it was laid out (a
        callback's ``layer.W = new``): its values copied into its place (cast to the
        buffer's dtype) and the holder given its view back.  A replacement of another
        shape is a :class:`GlassnetError` (the optimiser's state is shaped as before)."""
        for (owner, name, _), view, shape in zip(self.slots, self.params, self.shapes, strict=True):
            now = getattr(owner, name)
            if now is view:
                continue
            now = np.asarray(now)
            if now.shape != shape:
                raise GlassnetError(
                    f"expected {name} shaped {shape} (its shape when training began)",
                    got=f"shape {now.shape}",
                    field=name,
                )
            np.copyto(view, now, casting="same_kind")
            setattr(owner, name, view)

    def load_grads(self, grads: Sequence[Array]) -> bool:
        """Gradients computed elsewhere (the step graph's, new arrays) copied into the
        gradient buffer, parameter by parameter; True when done.  False, copying
        nothing, when one comes in another dtype than its parameter (a network of mixed
        dtypes, whose float32 parameter gets a float64 gradient): rounded into the
        buffer first it would be rounded twice, so the caller steps parameter by
        parameter instead, as without the layout."""
        if any(g.dtype != view.dtype for view, g in zip(self.grads, grads, strict=True)):
            return False
        for view, g in zip(self.grads, grads, strict=True):
            np.copyto(view, g)
        return True
