"""The fast training step for convolutional networks: conv2d, max/average pooling,
flatten and dense layers, in buffers allocated once.

The traced step (:meth:`Network.graph_gradients`, the step graph) evaluates each
layer's rules as new arrays, one node at a time, recording da/dz on the way.  This step
runs the same maths without recording and into buffers made for the largest batch:

- **convolution** as im2col on NumPy's BLAS: the input's windows are copied, kh·kw
  strided slices, into a (batch, C_in·kh·kw, positions) buffer (the padding border is
  written once and stays 0); z = W·cols is one batched product into z's buffer, then
  the bias and the activation in place.  dW = Σ_s delta_s·cols_sᵀ (a batched product,
  then the sum over the batch), db = Σ delta, and dL/dx = Wᵀ·delta scattered back onto
  the windows (col2im) in a zeroed buffer — :mod:`glassnet.layers.conv2d`'s rules with
  the order of two sums changed (equal to the traced step within float rounding: a test
  holds it to 1e-12 in float64);
- **max pooling** with windows apart (stride ≥ size): the max of the window's cell
  planes into a buffer, and δ written back to the first maximal cell of each window —
  the layer's own arg-max rule, so the same numbers bit for bit; overlapping windows,
  **average pooling** and **flatten** through the layers' own functions (``argmax``,
  ``gather``, ``route``; ``mean``, ``spread``; a reshape) — the traced step's own code;
- **dense** layers through :mod:`glassnet.layers.dense`'s ``linear``, ``weight_grad``,
  ``bias_grad`` and ``input_grad`` with ``out=`` buffers, as the dense fast path;
- softmax + cross-entropy takes the fused output delta (p − y)/batch where
  :func:`~glassnet.losses.fused_delta_ok` proves it equal, never with row weights.

Which layer runs how is asked of its class here (a runner per layer class, this file
only); :func:`conv_step_for` returns None for a network with any other layer (batch
norm, dropout, a layer of your own), which then trains through the step graph.
"""

from __future__ import annotations

import numpy as np

from glassnet.layers import Layer
from glassnet.layers.avg_pool2d import AvgPool2d
from glassnet.layers.base import window_count
from glassnet.layers.conv2d import Conv2d
from glassnet.layers.dense import Dense, bias_grad, input_grad, linear, weight_grad
from glassnet.layers.flatten import Flatten
from glassnet.layers.max_pool2d import MaxPool2d
from glassnet.losses import Loss
from glassnet.network import Network
from glassnet.optim import Optimizer

Array = np.ndarray


class _Runner:
    """One layer's forward and backward for batches of up to ``m`` rows."""

    grads: tuple[Array, ...] = ()

    def forward(self, x: Array, m: int) -> Array:
        raise NotImplementedError

    def backward(self, g: Array, m: int, *, need_dx: bool, is_delta: bool) -> Array | None:
        """dL/dx from dL/da (or from delta, when ``is_delta``: the fused output delta)."""
        raise NotImplementedError


class _Conv(_Runner):
    def __init__(self, layer: Conv2d, m: int, dtype: np.dtype, need_dx: bool) -> None:
        self.layer = layer
        o, c, kh, kw = layer.W.shape
        h, w = layer.in_hw
        s, p = layer.stride, layer.padding
        self.oh, self.ow = window_count(h, kh, s, p), window_count(w, kw, s, p)
        positions, k = self.oh * self.ow, c * kh * kw
        self.padded = np.zeros((m, c, h + 2 * p, w + 2 * p), dtype=dtype) if p else None
        self.cols = np.empty((m, c, kh, kw, self.oh, self.ow), dtype=dtype)
        self.z = np.empty((m, o, positions), dtype=dtype)
        self.a = np.empty((m, o, positions), dtype=dtype)
        self.delta = np.empty((m, o, positions), dtype=dtype)
        self.per_sample = np.empty((m, o, k), dtype=dtype)
        self.dW = np.empty((o, c, kh, kw), dtype=dtype)
        self.db = np.empty(o, dtype=dtype)
        self.grads = (self.dW, self.db)
        if need_dx:
            self.dcols = np.empty((m, c, kh, kw, self.oh, self.ow), dtype=dtype)
            self.dx = np.zeros((m, c, h + 2 * p, w + 2 * p), dtype=dtype)

    def _windows(self, target: Array, source: Array, m: int, *, add: bool) -> None:
        """Copy (or, with ``add``, scatter-add) between the padded maps ``target``
        (m, C, H+2p, W+2p) and the window cells ``source`` (m, C, kh, kw, oh, ow)."""
        s = self.layer.stride
        kh, kw = self.layer.kernel
        oh, ow = self.oh, self.ow
        for p in range(kh):
            for q in range(kw):
                cell = target[:m, :, p : p + s * oh : s, q : q + s * ow : s]
                if add:
                    cell += source[:m, :, p, q]
                else:
                    source[:m, :, p, q] = cell

    def forward(self, x: Array, m: int) -> Array:
        layer, p = self.layer, self.layer.padding
        if self.padded is not None:
            h, w = layer.in_hw
            self.padded[:m, :, p : p + h, p : p + w] = x  # the border stays 0
            x = self.padded
        self._windows(x, self.cols, m, add=False)  # im2col
        o = layer.W.shape[0]
        cols = self.cols[:m].reshape(m, -1, self.oh * self.ow)
        z = np.matmul(layer.W.reshape(o, -1), cols, out=self.z[:m])
        z += layer.b[:, None]
        a = layer.activation.forward(z, out=self.a[:m])
        return a.reshape(m, o, self.oh, self.ow)

    def backward(self, g: Array, m: int, *, need_dx: bool, is_delta: bool) -> Array | None:
        layer = self.layer
        o = layer.W.shape[0]
        g = g.reshape(m, o, -1)
        if is_delta:
            delta = g
        else:
            delta = layer.activation.backward(self.z[:m], self.a[:m], g, out=self.delta[:m])
        cols = self.cols[:m].reshape(m, -1, self.oh * self.ow)
        # dW = Σ_s delta_s · cols_sᵀ: one product per sample (batched), then their sum
        per_sample = np.matmul(delta, cols.transpose(0, 2, 1), out=self.per_sample[:m])
        np.add.reduce(per_sample, axis=0, out=self.dW.reshape(o, -1))
        np.add.reduce(delta, axis=(0, 2), out=self.db)
        if not need_dx:
            return None
        wmat = layer.W.reshape(o, -1)
        dcols = self.dcols[:m]
        np.matmul(wmat.T, delta, out=dcols.reshape(m, -1, self.oh * self.ow))
        self.dx[:m] = 0
        self._windows(self.dx, self.dcols, m, add=True)  # col2im
        h, w = layer.in_hw
        pad = layer.padding
        return self.dx[:m, :, pad : pad + h, pad : pad + w]


class _MaxPool(_Runner):
    def __init__(self, layer: MaxPool2d) -> None:
        self.layer = layer
        self.argmax: Array | None = None

    def forward(self, x: Array, m: int) -> Array:
        self.argmax = self.layer.argmax(x)
        return self.layer.gather(x, self.argmax)

    def backward(self, g: Array, m: int, *, need_dx: bool, is_delta: bool) -> Array | None:
        assert self.argmax is not None
        return self.layer.route(g, self.argmax) if need_dx else None


class _MaxPoolApart(_Runner):
    """Max pooling whose windows do not overlap (stride ≥ size), in buffers: the max
    of the size² strided cell planes, and on the way back each window's δ written to
    the first cell (row by row) that holds the maximum — the layer's own arg-max rule
    (``MaxPool2d.argmax``: the first maximum), so the routed numbers are the traced
    step's, bit for bit, without building the index array."""

    def __init__(self, layer: MaxPool2d, m: int, dtype: np.dtype, need_dx: bool) -> None:
        self.layer = layer
        c, self.oh, self.ow = layer.out_shape
        self.a = np.empty((m, c, self.oh, self.ow), dtype=dtype)
        self.hit = np.empty((m, c, self.oh, self.ow), dtype=bool)
        self.free = np.empty((m, c, self.oh, self.ow), dtype=bool)
        self.dx = np.zeros((m, *layer.in_shape), dtype=dtype) if need_dx else None
        self.x: Array | None = None

    def _plane(self, x: Array, p: int, q: int) -> Array:
        s, oh, ow = self.layer.stride, self.oh, self.ow
        return x[:, :, p : p + s * oh : s, q : q + s * ow : s]

    def forward(self, x: Array, m: int) -> Array:
        self.x = x
        k = self.layer.size
        a = self.a[:m]
        np.copyto(a, self._plane(x, 0, 0))
        for p in range(k):
            for q in range(k):
                if p or q:
                    np.maximum(a, self._plane(x, p, q), out=a)
        return a

    def backward(self, g: Array, m: int, *, need_dx: bool, is_delta: bool) -> Array | None:
        if not need_dx or self.dx is None:
            return None
        assert self.x is not None
        k, a = self.layer.size, self.a[:m]
        dx, hit, free = self.dx[:m], self.hit[:m], self.free[:m]
        dx[...] = 0  # cells no window reads, and every non-maximum, get 0
        free[...] = True  # windows whose maximum is still to be found
        for p in range(k):
            for q in range(k):
                np.equal(self._plane(self.x, p, q), a, out=hit)
                hit &= free
                np.copyto(self._plane(dx, p, q), g, where=hit)
                free &= ~hit
        return dx


class _AvgPool(_Runner):
    def __init__(self, layer: AvgPool2d) -> None:
        self.layer = layer

    def forward(self, x: Array, m: int) -> Array:
        return self.layer.mean(x)

    def backward(self, g: Array, m: int, *, need_dx: bool, is_delta: bool) -> Array | None:
        return self.layer.spread(g) if need_dx else None


class _Flatten(_Runner):
    def __init__(self, layer: Flatten) -> None:
        self.shape = layer.in_shape

    def forward(self, x: Array, m: int) -> Array:
        return x.reshape(m, -1)

    def backward(self, g: Array, m: int, *, need_dx: bool, is_delta: bool) -> Array | None:
        return g.reshape(m, *self.shape) if need_dx else None


class _Dense(_Runner):
    def __init__(self, layer: Dense, m: int, dtype: np.dtype, need_dx: bool) -> None:
        self.layer = layer
        n_in, n_out = layer.W.shape
        self.z = np.empty((m, n_out), dtype=dtype)
        self.a = np.empty((m, n_out), dtype=dtype)
        self.delta = np.empty((m, n_out), dtype=dtype)
        self.dW = np.empty((n_in, n_out), dtype=dtype)
        self.db = np.empty(n_out, dtype=dtype)
        self.dx = np.empty((m, n_in), dtype=dtype) if need_dx else None
        self.grads = (self.dW, self.db)
        self.x: Array | None = None

    def forward(self, x: Array, m: int) -> Array:
        self.x = x
        z = linear(x, self.layer.W, self.layer.b, out=self.z[:m])
        return self.layer.activation.forward(z, out=self.a[:m])

    def backward(self, g: Array, m: int, *, need_dx: bool, is_delta: bool) -> Array | None:
        assert self.x is not None
        if is_delta:
            delta = g
        else:
            delta = self.layer.activation.backward(self.z[:m], self.a[:m], g, out=self.delta[:m])
        weight_grad(self.x, delta, out=self.dW)
        bias_grad(delta, out=self.db)
        if not need_dx or self.dx is None:
            return None
        return input_grad(delta, self.layer.W, out=self.dx[:m])


def _runner(layer: Layer, m: int, dtype: np.dtype, need_dx: bool) -> _Runner | None:
    """The runner of one layer, or None when this step does not take its class (exact
    classes: a subclass may change the maths)."""
    kind = type(layer)
    if kind is Conv2d:
        return _Conv(layer, m, dtype, need_dx)  # type: ignore[arg-type]
    if kind is Dense and layer.dense_like:
        return _Dense(layer, m, dtype, need_dx)  # type: ignore[arg-type]
    if kind is MaxPool2d:
        pool: MaxPool2d = layer  # type: ignore[assignment]
        if pool.stride >= pool.size:
            return _MaxPoolApart(pool, m, dtype, need_dx)
        return _MaxPool(pool)
    if kind is AvgPool2d:
        return _AvgPool(layer)  # type: ignore[arg-type]
    if kind is Flatten:
        return _Flatten(layer)  # type: ignore[arg-type]
    return None


class ConvStep:
    """Gather, forward, loss, backward and update of one batch of a convolutional
    network (see the module docstring); ``step(idx)`` returns the output p (a view of a
    buffer, valid until the next call) and the batch's (weighted) mean loss, and updates
    the weights in place only when that loss is finite."""

    def __init__(
        self,
        net: Network,
        runners: list[_Runner],
        X: Array,
        Y: Array,
        loss: Loss,
        optimizer: Optimizer,
        *,
        fused: bool,
        batch_size: int,
        weights: Array | None,
    ) -> None:
        m = min(batch_size, X.shape[0])
        dtype = net.dtype
        self.runners = runners
        self.X, self.Y, self.loss, self.opt = X, Y, loss, optimizer
        self.fused, self.weights = fused, weights
        self.xbuf = np.empty((m, *X.shape[1:]), dtype=dtype)
        self.ybuf = np.empty((m, *Y.shape[1:]), dtype=dtype)
        self.params = net.parameters()
        self.grads = [g for r in runners for g in r.grads]

    def __call__(self, idx: Array) -> tuple[Array, float]:
        m = idx.shape[0]
        x = self.xbuf[:m]
        y = self.ybuf[:m]
        # gathered by index into the buffers (cast to the network's dtype on the way)
        for data, buf in ((self.X, x), (self.Y, y)):
            if data.dtype == buf.dtype:
                np.take(data, idx, axis=0, out=buf)
            else:
                buf[...] = data[idx]
        w = self.weights[idx] if self.weights is not None else None
        a = x
        for r in self.runners:
            a = r.forward(a, m)
        p = a
        value = float(self.loss.value(p, y, w))
        if self.fused:
            g = np.subtract(p, y)
            g /= m
        else:
            g = self.loss.grad(p, y, w)
        last = len(self.runners) - 1
        for i in range(last, -1, -1):
            out = self.runners[i].backward(g, m, need_dx=i > 0, is_delta=self.fused and i == last)
            if out is not None:
                g = out
        if value == value and abs(value) != float("inf"):
            self.opt.step(self.params, self.grads, scratch_grads=True)  # refilled next step
        return p, value


def conv_step_for(
    net: Network,
    X: Array,
    Y: Array,
    loss: Loss,
    optimizer: Optimizer,
    *,
    fused: bool,
    batch_size: int,
    weights: Array | None,
) -> ConvStep | None:
    """The fast step for ``net`` when every layer is one it runs (and at least one is a
    convolution or pooling layer: dense networks keep their own fast path); else None."""
    if all(type(layer) in (Dense, Flatten) for layer in net.layers):
        return None
    m = min(batch_size, X.shape[0])
    runners = []
    for i, layer in enumerate(net.layers):
        r = _runner(layer, m, net.dtype, need_dx=i > 0)
        if r is None:
            return None
        runners.append(r)
    return ConvStep(
        net,
        runners,
        X,
        Y,
        loss,
        optimizer,
        fused=fused,
        batch_size=batch_size,
        weights=weights,
    )
