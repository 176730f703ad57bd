"""The training step ``fit`` runs, on one core or on two.

:class:`TrainStep` is what the epoch loop calls once per batch: gather the batch's rows,
forward, loss, backward and the optimiser's update.  It has three ways to do it:

- **plain** — the readable reference: :meth:`Network.forward_backward` on the whole
  batch, then ``optimizer.step`` (in ``fit``, ``optimizer.step_flat`` on the
  parameters and gradients laid end to end: ``flat``).  NumPy runs each element-wise
  pass (bias add, ReLU and its mask, softmax, the loss gradient, the bias sums, the
  update) on one core; only the matrix multiplies use BLAS's threads.
- **halves** — data parallel: the batch's rows are split in two and each half is
  gathered, run forward and backward by its own thread (the caller's and one
  persistent worker), with BLAS single-threaded for the step so that its threads and
  ours do not fight over the cores (NumPy releases the GIL in its multiplies and
  ufuncs, so the two halves really run at once).  Every row's z, a and delta are
  computed exactly as on the plain path (delta still carries the whole batch's
  1/batch); the halves' weight and bias gradients are then added,
  ``dW = x_1ᵀ·delta_1 + x_2ᵀ·delta_2``, which is the plain path's sum over samples
  in another order — equal within float rounding (``tests/test_parallel.py``).
- **folded** — the plain step for an optimiser whose update is ``p ← β·p + α·g``
  (:meth:`Optimizer.linear_update`: plain SGD, α = −lr, β = 1 − lr·λ): the update is
  done inside the weight-gradient multiply, ``W ← β·W + α·xᵀ·delta`` in one BLAS gemm
  (NumPy's own OpenBLAS through ctypes, :mod:`glassnet.blas`), layer by layer as the
  backward pass goes, after ``delta·Wᵀ`` has used the old W
  (:meth:`Network.backward_step`); no dW is formed and there is no update pass.  Without
  a gemm NumPy can lend us (or for a short fit of a small network, :data:`MIN_BLAS_WORK`)
  the same fold runs in NumPy.  The halves fold too: each half forms only its deltas,
  then W moves once from the whole batch, its columns split between the two threads.
  Equal to the plain step within float rounding (``tests/test_fast_step.py``).

Which one runs is chosen per ``fit`` from the batch size and the layer widths
(:func:`choose`): two threads pay off only when a step has enough element-wise work to
outweigh handing half of it to another thread (measured: docs/performance.md).  The
halves path needs ``threadpoolctl`` (installed with scikit-learn; optional) to make
BLAS single-threaded; without it, with one core, or when BLAS runs on one thread (the
caller asked for one core) or on more than two (BLAS alone would use more cores than
two halves; not measured), the plain path runs — folded when the optimiser allows.
``GLASSNET_STEP=plain`` (the reference, unfolded), ``=folded`` or ``=halves`` in the
environment forces one (for measuring); ``GLASSNET_BLAS=numpy`` keeps the fold in NumPy.

Nothing here is imported on the CLI's start-up path: ``glassnet.training`` imports
this module, and threadpoolctl is imported only when a fit might use two threads.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.layers import Buffers, Cache
from glassnet.layers.dense import linear_step

if TYPE_CHECKING:
    from glassnet.losses import Loss
    from glassnet.network import Network
    from glassnet.optim import Optimizer
    from glassnet.optimizers.flat import FlatParameters

Array = np.ndarray

#: The halves path runs when a batch has at least this many rows ...
MIN_ROWS = 1024
#: ... and this many multiply-adds per step (rows × Σ n_in·n_out), so that each half's
#: element-wise work is worth a thread hand-off.  Measured on 784-256-128-10, 2 cores,
#: OpenBLAS Haswell kernels (docs/performance.md): 11–41% slower at batch 128–512; at
#: 1024 from 0.9× to 1.1× of the plain step when the machine is quiet, 1.5–3× as fast
#: when other processes share the cores.
MIN_WORK = 1024 * 100_000


# -- BLAS threads ------------------------------------------------------------------------------
class _Blas:
    """NumPy's BLAS thread count, read and set through threadpoolctl (None: not possible)."""

    def __init__(self) -> None:
        self.lib: Any = None
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # optional: without it, the plain path
            return
        blas_libs = [
            lib for lib in ThreadpoolController().lib_controllers if lib.user_api == "blas"
        ]
        # NumPy's own (a wheel's, under numpy.libs), or the only BLAS loaded (a system
        # NumPy's); when unsure which one NumPy calls, leave them all alone.
        libs = [lib for lib in blas_libs if "numpy" in str(lib.filepath)]
        if not libs and len(blas_libs) == 1:
            libs = blas_libs
        if libs:
            self.lib = libs[0]

    @property
    def threads(self) -> int:
        """BLAS's thread count now (read each time: a caller may have limited it, e.g. in
        a ``threadpool_limits`` block, and a step puts back what it found)."""
        return int(self.lib.get_num_threads()) if self.lib is not None else 1


_BLAS: _Blas | None = None


def blas() -> _Blas:
    """The process's BLAS controller, made on first use (threadpoolctl scans the loaded
    libraries, a few ms)."""
    global _BLAS
    if _BLAS is None:
        _BLAS = _Blas()
    return _BLAS


# -- one persistent worker thread ---------------------------------------------------------------
class _Worker:
    """A daemon thread that runs one function at a time for the caller: :meth:`start`
    hands it over, :meth:`join` waits for its result (or re-raises its exception).
    Two locks, no queue: the lightest hand-off CPython has."""

    def __init__(self) -> None:
        self._go = threading.Lock()
        self._done = threading.Lock()
        self._go.acquire()
        self._done.acquire()
        self._job: Callable[[], Any] | None = None
        self._result: Any = None
        self._error: BaseException | None = None
        self._err: Any = {}
        #: Set when a wait for the result was interrupted (Ctrl-C): the thread may still
        #: be running that job, so this worker is never handed another (see worker()).
        self.broken = False
        thread = threading.Thread(target=self._loop, name="glassnet-step", daemon=True)
        thread.start()

    def _loop(self) -> None:
        while True:
            self._go.acquire()
            job, self._job = self._job, None
            try:
                # NumPy's error state is per thread: use the caller's (fit ignores
                # overflow on the way to a NaN loss, which it reports itself).
                np.seterr(**self._err)
                self._result = job() if job is not None else None
            except BaseException as err:  # handed to the caller by join()
                self._error = err
            self._done.release()

    def start(self, job: Callable[[], Any]) -> None:
        self._job, self._result, self._error = job, None, None
        self._err = np.geterr()
        self._go.release()

    def join(self) -> Any:
        try:
            self._done.acquire()
        except BaseException:
            self.broken = True
            raise
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return self._result


_WORKER: _Worker | None = None
_WORKER_PID = 0
_WORKER_LOCK = threading.Lock()


def worker() -> _Worker:
    """The process's worker thread, started on first use (and again in a forked child,
    which inherits the object but not the thread, or after an interrupted wait)."""
    global _WORKER, _WORKER_PID
    with _WORKER_LOCK:
        if _WORKER is None or _WORKER_PID != os.getpid() or _WORKER.broken:
            _WORKER, _WORKER_PID = _Worker(), os.getpid()
        return _WORKER


# -- choosing -----------------------------------------------------------------------------------
def step_work(net: Network, rows: int) -> int:
    """Multiply-adds of one forward pass of ``rows`` rows: rows × Σ n_in·n_out."""
    return rows * sum(layer.n_in * layer.n_out for layer in net.layers)


def choose(net: Network, batch_size: int, *, plain_only: bool = False) -> str:
    """``"halves"`` or ``"plain"`` for batches of ``batch_size`` rows (see the module's
    docstring); ``plain_only`` when the caller's step needs the plain path (dropout
    masks, row weights)."""
    forced = _forced()
    if plain_only or forced in ("plain", "folded"):
        return "plain"
    if forced != "halves":
        if batch_size < MIN_ROWS or step_work(net, batch_size) < MIN_WORK:
            return "plain"
        if _cores() < 2:
            return "plain"
    if batch_size < 2:
        return "plain"
    b = blas()
    # Without threadpoolctl we cannot make BLAS single-threaded for the step.  With BLAS
    # limited to one thread the caller asked for one core; with more than two, BLAS
    # alone would use more cores than the two halves (not measured: plain).
    if b.lib is None or (b.threads != 2 and forced != "halves"):
        return "plain"
    return "halves"


#: The folded step calls NumPy's BLAS gemm directly (glassnet.blas) when an epoch's
#: steps × weights reach this: finding the library and checking it costs ~1–3 ms once
#: per process, and the fold saves ~0.3–0.7 ns per weight per step (the update pass it
#: removes).  Below it (a short fit of a small network, the digits example) the NumPy
#: form of the same fold runs, which finds nothing.
MIN_BLAS_WORK = 10_000_000


def _blas_pays(net: Network, batch: int, epoch_rows: int | None) -> bool:
    """Whether one epoch is long enough to repay finding NumPy's gemm (None: assume so)."""
    if epoch_rows is None:
        return True
    steps = -(-epoch_rows // max(batch, 1))
    return steps * sum(layer.n_in * layer.n_out for layer in net.layers) >= MIN_BLAS_WORK


def _forced() -> str:
    """``GLASSNET_STEP``: "" (choose), or the way forced (see the module docstring)."""
    forced = os.environ.get("GLASSNET_STEP", "")
    if forced not in ("", "auto", "plain", "folded", "halves"):
        raise GlassnetError(
            "expected plain, folded, halves or auto (or nothing)",
            got=repr(forced),
            field="GLASSNET_STEP",
        )
    return forced


def _cores() -> int:
    """Cores this process may run on."""
    affinity = getattr(os, "sched_getaffinity", None)  # Linux; elsewhere the CPU count
    return len(affinity(0)) if affinity is not None else (os.cpu_count() or 1)


# -- the step -----------------------------------------------------------------------------------
def gather(src: Array, idx: Array, out: Array, raw: Array | None) -> Array:
    """Rows ``idx`` of ``src`` written into the reused buffer ``out`` (no new array)."""
    if raw is None:
        # mode="clip" lets take write straight into out= (the indices are in range); the
        # method, not np.take, skips a Python wrapper.
        return src.take(idx, axis=0, out=out, mode="clip")
    rows = src.take(idx, axis=0, out=raw[: idx.shape[0]], mode="clip")
    np.copyto(out, rows, casting="unsafe")
    return out


class TrainStep:
    """One training step on the rows ``idx`` of (X, Y): ``p, value = step(idx)``.

    Gathers the rows into buffers allocated once, computes the output p (batch, n_out)
    and the batch's mean loss, and — only when that loss is finite — applies the
    optimiser's update to the network's parameters in place.  ``p`` is a view of a
    buffer, valid until the next call.

    Parameters
    ----------
    X : (n, n_in) data, any real dtype (cast to the network's per batch).
    Y : (n, n_out) targets in the network's dtype.
    fused : delta_L = (p − y)/batch (see :func:`glassnet.losses.fused_delta_ok`).
    batch_size : the largest batch that will be passed.
    mode : ``"plain"``, ``"halves"`` or None to :func:`choose`.
    batches : buffers to use instead of allocating them (``x``, ``y``, ``x_raw``,
        ``layers``, ``grads``, as :class:`glassnet.training.Batches` has them).
    epoch_rows : rows per epoch: in halves, BLAS stays on one thread until an epoch's
        rows are done (None: it is put back after every step).
    weights : (n,) row weights (None: all 1): batch rows ``idx`` get ``weights[idx]``,
        passed into the loss (:meth:`Loss.value`, :meth:`Loss.grad`); plain path only.
    fold : in halves, fold an update of the linear form (plain SGD) into the weight
        multiplies after both halves (False: the halves' gradients are summed, then
        ``optimizer.step``, as before).
    flat : when the step updates through the optimiser (not folded), lay the network's
        parameters and their gradients end to end
        (:class:`~glassnet.optimizers.flat.FlatParameters`: each layer's W and b, and
        each buffer's dW and db, views) and update with ``optimizer.step_flat``: a few
        whole-buffer passes instead of a loop per parameter, the same numbers.
    kernels : the folded step (one thread or halves) does its element-wise passes with
        the plugins' compiled kernels (:mod:`glassnet.kernels`, numba) where they offer
        them: bias + activation after x·W (:meth:`Activation.fused_kernels`), the
        activation's derivative × delta with the bias sums, and the output layer's
        activation + loss + fused delta (:meth:`Loss.fused_output_kernel`).  The plain
        step (the reference) never uses them.
    """

    def __init__(
        self,
        net: Network,
        X: Array,
        Y: Array,
        loss: Loss,
        optimizer: Optimizer,
        *,
        fused: bool,
        batch_size: int,
        mode: str | None = None,
        batches: Any = None,
        epoch_rows: int | None = None,
        weights: Array | None = None,
        fold: bool = True,
        flat: bool = False,
        kernels: bool = False,
    ) -> None:
        self.net, self.X, self.Y, self.loss, self.opt = net, X, Y, loss, optimizer
        self.weights = weights
        self.epoch_rows = epoch_rows
        self._rows_done = 0
        self._blas_was: int | None = None
        self.fused = fused
        m_max = min(batch_size, X.shape[0])
        self.mode = mode if mode is not None else choose(net, m_max)
        if self.mode not in ("plain", "folded", "halves"):
            raise ValueError(f"mode {self.mode!r}")
        if weights is not None and self.mode == "halves":
            raise ValueError("row weights take the plain step")
        if batches is not None:
            # The caller's buffers (training.Batches: x, y, x_raw, layers, grads).
            self.xbuf, self.ybuf, self.xraw = batches.x, batches.y, batches.x_raw
            self.buffers, self.grads = batches.layers, batches.grads
        else:
            dtype = net.dtype
            self.xbuf = np.empty((m_max, X.shape[1]), dtype=dtype)
            self.ybuf = np.empty((m_max, Y.shape[1]), dtype=dtype)
            # Data in another dtype than the network's is gathered as is, then cast.
            self.xraw = np.empty((m_max, X.shape[1]), dtype=X.dtype) if X.dtype != dtype else None
            # Every layer's z, a, delta and gradients go into arrays allocated here, once.
            self.buffers = net.buffers(m_max)
            self.grads = [a for b in self.buffers for a in (b.dW, b.db)]
        self.params = net.parameters()
        self.dense = net.dense_layers("the training fast path")
        # The folded step's BLAS (NumPy's own; None: the NumPy fallback) and steppers.
        self.gemm: Any = None
        self._stepper_Ws: list[Array] | None = None
        self._stepper_list: list[Any] = []
        self._column_list: tuple[list[Any], list[Any]] = ([], [])
        #: The optimiser's update done inside the weight-gradient multiply (plain SGD):
        #: always in "folded"; in "halves" when the optimiser allows it.
        self.fold = self.mode == "folded" or (
            self.mode == "halves" and fold and optimizer.linear_update() is not None
        )
        if self.fold and _blas_pays(net, m_max, epoch_rows):
            from glassnet.blas import gemm

            self.gemm = gemm(net.dtype)
        #: The parameters and gradients laid end to end (None: parameter by parameter).
        self.flat: FlatParameters | None = None
        if flat and self.mode != "folded" and not self.fold:
            from glassnet.optimizers.flat import FlatParameters

            self.flat = FlatParameters.of_layers(self.dense, optimizer.flat_layout)
            grads = iter(self.flat.grads)  # [dW1, db1, dW2, ...]: parameters() order
            self.buffers = [b._replace(dW=next(grads), db=next(grads)) for b in self.buffers]
            self.params, self.grads = self.flat.params, self.flat.grads
        # The compiled element-wise kernels per layer (None: NumPy's passes).
        n_layers = len(self.dense)
        self._fwd: list[Any] = [None] * n_layers
        self._bwd: list[Any] = [None] * n_layers
        self._out: Any = None
        self.kernels = kernels and self.fold
        if self.kernels:
            self._load_kernels()
        #: Per layer: Σ delta comes from the backward kernel (the output layer's, with
        #: the fused delta, never does: it is given delta, not dL/da).
        self._db_summed = [
            k is not None and not (i == n_layers - 1 and fused) for i, k in enumerate(self._bwd)
        ]
        # The second half's own Σ delta where a kernel forms it (the halves would
        # otherwise write the same shared buffer).
        self._db2: list[Array | None] = [
            np.empty_like(b.db) if summed and self.mode == "halves" else None
            for b, summed in zip(self.buffers, self._db_summed, strict=True)
        ]
        # The second half's own weight and bias gradients (the first half's are the
        # buffers', into which the second's are then added).
        self._grads2: list[tuple[Array, Array]] = []
        if self.mode == "halves":
            if not self.fold:
                self._grads2 = [(np.empty_like(b.dW), np.empty_like(b.db)) for b in self.buffers]
            self._blas = blas()
            self._worker = worker()

    def _load_kernels(self) -> None:
        """Ask each layer's activation (and the loss, for the output layer) for its
        compiled kernels (numba: compiled here, or loaded from its cache)."""
        last = len(self.dense) - 1
        for index, layer in enumerate(self.dense):
            pair = layer.activation.fused_kernels()
            if pair is not None:
                self._fwd[index], self._bwd[index] = pair
        if self.fused:  # (p − y)/batch holds for these targets (fused_delta_ok)
            self._out = self.loss.fused_output_kernel(self.dense[last].activation)

    def _forward(
        self, xb: Array, buffers: list[Buffers], yb: Array, batch: int
    ) -> tuple[list[Cache], float | None]:
        """:meth:`Network.forward_caches` with the compiled kernels: per layer x·W, then
        the bias add and activation in one pass; the output layer's kernel (if any)
        writes the fused delta (p − y)/batch too and returns the sum of its rows' loss
        terms (None without it)."""
        caches: list[Cache] = []
        a = xb
        total: float | None = None
        last = len(self.dense) - 1
        for index, layer in enumerate(self.dense):
            out = buffers[index]
            if index == last and self._out is not None:
                m = a.shape[0]
                z = np.matmul(a, layer.W, out=out.z[:m])
                p = out.a[:m]
                total = float(self._out(z, layer.b, yb, p, out.delta[:m], batch))
                caches.append(Cache(a, z, p))
                continue
            kernel = self._fwd[index]
            if kernel is not None:
                a, cache = layer.forward_kernel(a, out, kernel)
            else:
                a, cache = layer.forward(a, out)
            caches.append(cache)
        return caches, total

    def __call__(self, idx: Array) -> tuple[Array, float]:
        if self.mode != "halves":
            return self._folded(idx) if self.mode == "folded" else self._plain(idx)
        out = self._halves(idx) if idx.shape[0] >= 2 else self._plain(idx)
        # BLAS stays on one thread from step to step (switching it back and forth every
        # step measured ~5% slower); its threads come back at each epoch's end, before
        # validation and callbacks (or after every step, without epoch_rows).
        self._rows_done += idx.shape[0]
        if self.epoch_rows is None or self._rows_done >= self.epoch_rows:
            self._rows_done = 0
            self._unlimit_blas()
        return out

    # -- plain: the reference -------------------------------------------------------------------
    def _plain(self, idx: Array) -> tuple[Array, float]:
        m = idx.shape[0]
        xb = gather(self.X, idx, self.xbuf[:m], self.xraw)
        yb = gather(self.Y, idx, self.ybuf[:m], None)
        wb = self.weights[idx] if self.weights is not None else None
        p, value, _ = self.net.forward_backward(
            xb, yb, self.loss, fused=self.fused, buffers=self.buffers, weights=wb
        )
        if value == value and abs(value) != float("inf"):
            self._update()
        return p, value

    def _update(self) -> None:
        """The optimiser's update from the gradients in the buffers (refilled next step,
        so it may overwrite them): on the flat buffers when laid out (a W a callback
        replaced copied in first), else parameter by parameter."""
        if self.flat is not None:
            self.flat.refresh()
            self.opt.step_flat(self.flat)
        else:
            self.opt.step(self.params, self.grads, scratch_grads=True)

    # -- folded: plain SGD's update inside the weight-gradient multiply -------------------------
    def _steppers(self) -> list[Any]:
        """Each layer's :meth:`Dense.weight_stepper` on this step's buffers (rebuilt if
        a layer's W was replaced since: the addresses are W's)."""
        Ws = [layer.W for layer in self.dense]
        if self._stepper_Ws is None or any(
            a is not b for a, b in zip(Ws, self._stepper_Ws, strict=True)
        ):
            xs = [self.xbuf] + [b.a for b in self.buffers[:-1]]
            self._stepper_list = [
                layer.weight_stepper(x, b.delta, b.dW, self.gemm)
                for layer, x, b in zip(self.dense, xs, self.buffers, strict=True)
            ]
            self._stepper_Ws = Ws
        return self._stepper_list

    def _folded(self, idx: Array) -> tuple[Array, float]:
        """The plain step with an optimiser whose update is p ← β·p + α·g (plain SGD):
        forward and loss as :meth:`_plain`, then :meth:`Network.backward_step`, which
        updates each layer as its gradient is formed (W through one BLAS gemm with that
        α and β, after dL/dx has used the old W).  Same numbers as the plain step to
        float rounding (``tests/test_fast_step.py``)."""
        m = idx.shape[0]
        net, buffers = self.net, self.buffers
        xb = gather(self.X, idx, self.xbuf[:m], self.xraw)
        yb = gather(self.Y, idx, self.ybuf[:m], None)
        wb = self.weights[idx] if self.weights is not None else None
        total: float | None = None
        if self.kernels:
            caches, total = self._forward(xb, buffers, yb, m)
        else:
            caches = net.forward_caches(xb, buffers)
        p = caches[-1].a
        # The kernel's sum; NumPy's where it is NaN or 0 (whose sign mean_value keeps).
        value = total / m if total else self.loss.value(p, yb, wb)
        if not (value == value and abs(value) != float("inf")):
            return p, value  # no update (the caller stops training)
        coefficients = self.opt.linear_update()
        if coefficients is None:  # the optimiser changed its mind: the reference step
            return self._plain(idx)
        alpha, beta = coefficients
        steppers = self._steppers()
        kernels = self._bwd if self.kernels else None
        if self.fused:
            if self._out is not None:
                delta = buffers[-1].delta[:m]  # written by the output kernel
            else:
                delta = np.subtract(p, yb, out=buffers[-1].delta[:m])
                delta /= m
            net.backward_step(
                caches,
                delta=delta,
                buffers=buffers,
                steppers=steppers,
                alpha=alpha,
                beta=beta,
                kernels=kernels,
            )
        else:
            dL_dp = self.loss.grad(p, yb, wb)
            net.backward_step(
                caches,
                dL_dp,
                buffers=buffers,
                steppers=steppers,
                alpha=alpha,
                beta=beta,
                kernels=kernels,
            )
        self.opt.count_step()
        return p, value

    # -- halves: two threads, one BLAS thread each ----------------------------------------------
    def _half_buffers(self, r0: int, second: bool) -> list[Buffers]:
        """Per layer: rows r0.. of the shared z, a, delta, dx buffers; the first half's
        own dW/db are the shared ones, the second's its own."""
        out = []
        for index, b in enumerate(self.buffers):
            # (Folded, the halves form no dW or db: the shared ones are never written.)
            dW, db = self._grads2[index] if second and self._grads2 else (b.dW, b.db)
            db2 = self._db2[index]
            if second and db2 is not None:
                db = db2  # Σ delta of this half, from the kernel
            dx = b.dx[r0:] if b.dx is not None else None
            out.append(Buffers(b.z[r0:], b.a[r0:], b.delta[r0:], dx, dW, db))
        return out

    def _half(self, idx: Array, r0: int, r1: int, m: int, second: bool) -> float:
        """Forward and backward of rows r0:r1 of the batch (m rows in all); returns the
        sum of its rows' loss terms.  Writes z, a, delta, dx into rows r0:r1 of the shared
        buffers, and its dW, db into its own."""
        rows = idx[r0:r1]
        mh = r1 - r0
        xraw = self.xraw[r0:r1] if self.xraw is not None else None
        xb = gather(self.X, rows, self.xbuf[r0:r1], xraw)
        yb = gather(self.Y, rows, self.ybuf[r0:r1], None)
        bufs = self._half_buffers(r0, second)
        net = self.net
        kernels = self._bwd if self.kernels else None
        kernel_total: float | None = None
        if self.kernels:
            caches, kernel_total = self._forward(xb, bufs, yb, m)
        else:
            caches = net.forward_caches(xb, bufs)
        p = caches[-1].a
        total = kernel_total if kernel_total else self.loss.value(p, yb) * mh
        # With the update folded (plain SGD) the halves form only the deltas (and dL/dx);
        # W and b move after both are done (_folded_update), from the whole batch's.
        fold = self.fold
        if self.fused:
            # (p − y)/batch with the whole batch's size: each row's delta is exactly the
            # plain path's.
            if self._out is not None:
                delta = bufs[-1].delta[:mh]  # written by the output kernel
            else:
                delta = np.subtract(p, yb, out=bufs[-1].delta[:mh])
                delta /= m
            if fold:
                net.backward_step(
                    caches,
                    delta=delta,
                    buffers=bufs,
                    steppers=None,
                    alpha=0.0,
                    beta=1.0,
                    kernels=kernels,
                )
            else:
                net.backward(caches, delta=delta, buffers=bufs)
        else:
            # The loss's own gradient carries 1/(rows of this half); rescaled to 1/batch.
            dL_dp = self.loss.grad(p, yb)
            dL_dp *= mh / m
            if fold:
                net.backward_step(
                    caches,
                    dL_dp,
                    buffers=bufs,
                    steppers=None,
                    alpha=0.0,
                    beta=1.0,
                    kernels=kernels,
                )
            else:
                net.backward(caches, dL_dp, buffers=bufs)
        return total

    def _column_steppers(self) -> tuple[list[Any], list[Any]]:
        """Per layer, two :meth:`Dense.weight_stepper` s over the whole batch's rows of
        the shared buffers: W's first half of columns (the caller's) and the rest (the
        worker's); rebuilt when a layer's W was replaced."""
        Ws = [layer.W for layer in self.dense]
        if self._stepper_Ws is None or any(
            a is not b for a, b in zip(Ws, self._stepper_Ws, strict=True)
        ):
            xs = [self.xbuf] + [b.a for b in self.buffers[:-1]]
            halves: tuple[list[Any], list[Any]] = ([], [])
            for layer, x, b in zip(self.dense, xs, self.buffers, strict=True):
                h = layer.n_out // 2
                for part, cols in zip(halves, ((0, h), (h, layer.n_out)), strict=True):
                    part.append(layer.weight_stepper(x, b.delta, b.dW, self.gemm, cols))
            self._column_list = halves
            self._stepper_Ws = Ws
        return self._column_list

    def _folded_update(self, m: int) -> None:
        """W ← β·W + α·xᵀ·delta for every layer over the batch's m rows, W's columns split
        between the two threads (one BLAS thread each, no two writing the same numbers),
        and b ← b + α·Σ delta; then the optimiser counts the step."""
        coefficients = self.opt.linear_update()
        assert coefficients is not None, "fold is chosen for a linear update only"
        alpha, beta = coefficients
        mine, theirs = self._column_steppers()

        def other() -> None:
            for step in theirs:
                step(m, alpha, beta)

        self._worker.start(other)
        try:
            for step in mine:
                step(m, alpha, beta)
            for layer, b, db2 in zip(self.dense, self.buffers, self._db2, strict=True):
                if db2 is not None:  # each half's Σ delta, from the kernels
                    np.add(b.db, db2, out=b.db)
                    linear_step(layer.b, b.db, alpha, 1.0)
                else:
                    layer.bias_step(b.delta[:m], b.db, alpha)
        finally:
            self._worker.join()
        self.opt.count_step()

    def _limit_blas(self) -> None:
        """BLAS on one thread from now on (what it was is put back by _unlimit_blas)."""
        lib = self._blas.lib
        if self._blas_was is None and lib is not None:  # None: forced without threadpoolctl
            self._blas_was = self._blas.threads
            lib.set_num_threads(1)

    def _unlimit_blas(self) -> None:
        if self._blas_was is not None:
            self._blas.lib.set_num_threads(self._blas_was)
            self._blas_was = None

    def __del__(self) -> None:
        # A fit interrupted between two steps of an epoch: BLAS's threads come back
        # when its step is dropped.
        if getattr(self, "_blas_was", None) is not None:
            self._unlimit_blas()

    def _halves(self, idx: Array) -> tuple[Array, float]:
        m = idx.shape[0]
        half = m // 2
        self._limit_blas()
        ok = False
        try:
            self._worker.start(lambda: self._half(idx, half, m, m, True))
            try:
                total = self._half(idx, 0, half, m, False)
            finally:
                # Wait for the other half even when this one failed: it writes into
                # buffers this object owns.
                total2 = self._worker.join()
            total += total2
            ok = True
        finally:
            if not ok:
                self._unlimit_blas()
        value = float(total / m)
        if value == value and abs(value) != float("inf") and self.fold:
            self._folded_update(m)
        elif value == value and abs(value) != float("inf"):
            for b, (dW2, db2) in zip(self.buffers, self._grads2, strict=True):
                np.add(b.dW, dW2, out=b.dW)
                np.add(b.db, db2, out=b.db)
            self._update()
        else:
            self._unlimit_blas()  # the caller stops training
        return self.buffers[-1].a[:m], value


def train_step(
    net: Network,
    X: Array,
    Y: Array,
    loss: Loss,
    optimizer: Optimizer,
    *,
    fused: bool,
    batch_size: int,
    plain_only: bool = False,
    batches: Any = None,
    epoch_rows: int | None = None,
    weights: Array | None = None,
    flat: bool = False,
    kernels: bool = False,
) -> TrainStep:
    """The step ``fit`` calls per batch (see :class:`TrainStep`), plain or in halves
    (always plain with row ``weights``); ``flat`` (the parameters laid end to end) and
    ``kernels`` (the folded step's element-wise passes compiled) as for
    :class:`TrainStep`."""
    m_max = min(batch_size, X.shape[0])
    mode = choose(net, m_max, plain_only=plain_only or weights is not None)
    if mode == "plain" and optimizer.linear_update() is not None and _forced() != "plain":
        mode = "folded"
    return TrainStep(
        net,
        X,
        Y,
        loss,
        optimizer,
        fused=fused,
        batch_size=batch_size,
        mode=mode,
        batches=batches,
        epoch_rows=epoch_rows,
        weights=weights,
        flat=flat,
        kernels=kernels,
    )


__all__ = ["MIN_ROWS", "MIN_WORK", "TrainStep", "choose", "train_step"]
