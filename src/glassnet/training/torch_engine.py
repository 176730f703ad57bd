"""The PyTorch engine: ``fit(engine="torch", device="cpu"|"cuda"|"mps")``.

The same step as :class:`~glassnet.training.engine.NumpyEngine` — the same loop, rows,
random stream, losses, optimisers, schedules, dropout masks and row weights — run as
PyTorch tensors on a device, with PyTorch's autograd and ``torch.optim``.  Everything
is asked of the plugins, never of their names:

- each layer's module from :meth:`Layer.torch_data` (Linear, BatchNorm1d, LayerNorm, as
  ``to_torch`` writes it) and its activation's :meth:`Activation.torch_module`; a layer
  without a module (dropout, in the fit's training view) runs :meth:`Layer.torch_train`
  with the constants :meth:`Layer.draw` drew from the fit's NumPy stream — so a torch
  fit drops exactly the units a NumPy fit drops;
- the loss's :meth:`Loss.torch_value` (with row weights);
- the optimiser's :meth:`Optimizer.torch_spec` (the ``torch.optim`` class and its
  arguments; weight decay on 2-D parameters only, as :meth:`Optimizer.step` decays) and
  :attr:`Optimizer.torch_state` (its state's names there, to hand it over and back).

Why ``torch.optim`` and not glassnet's own update on tensors: the point of this engine
is the device (a GPU) and PyTorch's ecosystem (DistributedDataParallel), where the
update must run on the device as PyTorch runs it; glassnet's optimisers are tested equal
to ``torch.optim`` in float64 (tests/test_optimizers.py), so the two engines agree to
float64 rounding (tests/test_torch_engine.py), not bit for bit.

**Data parallel** (``torchrun --nproc-per-node N -m glassnet train ... --engine torch``):
under torchrun (``WORLD_SIZE`` > 1) the engine joins the process group (gloo on the
CPU, nccl on CUDA) and wraps the layers in ``DistributedDataParallel``.  Every process
runs the same loop with the same random stream, so each gets the same batch of row
indices; process r takes the r-th of N contiguous parts of it (and the same rows of the
batch's dropout masks), and its loss is scaled by N·(its rows)/(the batch's rows), so
that DDP's average of the gradients is the gradient of the whole batch's mean loss.
So ``batch_size`` is the batch of one step across all processes: N processes with B rows
each are one process with N·B rows, and a run is the same run on any number of
processes (a resumed one too).  Layers that couple a batch's samples (batch norm) are
refused with more than one process: their statistics would be each part's.  A sharded
streamed run (``--stream --shards``, each process reading its own shard) sets
:attr:`StepEngine.parts` before each step: the process holds only its part, of the
sizes given, and the same scaling makes the gradient the whole batch's.

torch is optional: it is imported when a :class:`TorchEngine` is made, not before.
"""

from __future__ import annotations

import atexit
import datetime
import gc
import math
import os
from typing import Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.layers import Layer
from glassnet.layers.base import torch_module
from glassnet.losses import Loss
from glassnet.network import Network
from glassnet.optim import Optimizer
from glassnet.training.batches import Rows
from glassnet.training.dropout import check_dropout, with_dropout
from glassnet.training.engine import StepEngine

Array = np.ndarray


def import_torch() -> Any:
    """The ``torch`` module, or a one-line :class:`GlassnetError` saying how to install it
    (the torch extra, into this installation: :func:`glassnet.extras.install_hint`)."""
    try:
        import torch
    except ImportError:
        from glassnet.extras import install_hint

        raise GlassnetError(
            f"expected PyTorch for the torch engine (the torch extra: {install_hint('torch')})",
            got="no module named torch",
            field="engine",
        ) from None
    return torch


def torch_device(torch: Any, device: object) -> Any:
    """``device`` ("cpu", "cuda", "cuda:1", "mps") as a ``torch.device``, checked to be
    there; otherwise a one-line :class:`GlassnetError` naming it."""
    if not isinstance(device, str):
        raise GlassnetError("expected cpu, cuda, cuda:N or mps", got=repr(device), field="device")
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise GlassnetError(
            "expected cpu, cuda, cuda:N or mps", got=repr(device), field="device"
        ) from None
    available = {
        "cpu": lambda: True,
        "cuda": lambda: (
            torch.cuda.is_available()
            and (dev.index is None or dev.index < torch.cuda.device_count())
        ),
        "mps": lambda: torch.backends.mps.is_available(),
    }.get(dev.type)
    if available is None:
        raise GlassnetError("expected cpu, cuda, cuda:N or mps", got=repr(device), field="device")
    if not available():
        raise GlassnetError(
            "expected a device this machine has (PyTorch sees none of this kind; "
            "--device cpu runs anywhere)",
            got=repr(device),
            field="device",
        )
    return dev


def process_group(torch: Any, device: Any) -> tuple[int, int]:
    """(rank, number of processes): (0, 1) unless started by torchrun with more than one
    process (``WORLD_SIZE``), then the default process group's, joined here if no one
    has yet — gloo for the CPU, nccl for CUDA — with torchrun's rendezvous (``env://``)."""
    try:
        size = int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError:
        size = 1
    if size <= 1:
        return 0, 1
    dist = torch.distributed
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(_leave, torch)
    return int(dist.get_rank()), int(dist.get_world_size())


def _leave(torch: Any) -> None:
    """At exit, while the interpreter is whole: every process meets at a barrier, then
    leaves the group.  Without the barrier, a process that writes nothing (rank > 0)
    tore its gloo group down while rank 0 was still writing, and about one run in
    eight died at exit with ``terminate called without an active exception`` (SIGABRT);
    the collection first frees a wrapper left in a reference cycle, whose reducer
    would otherwise hold the group into the interpreter's teardown."""
    dist = torch.distributed
    if not dist.is_initialized():
        return
    gc.collect()
    try:
        if dist.get_backend() == "gloo":
            # Bounded: a process leaving after an error, while another waits in a step's
            # collective, is not held here (torchrun stops the others anyway).
            dist.monitored_barrier(timeout=datetime.timedelta(minutes=5))
        else:
            dist.barrier()
    except RuntimeError:  # a peer gone: nothing to wait for, nothing to tear down with
        return
    dist.destroy_process_group()


def _stack(torch: Any, stages: list[_Stage]) -> Any:
    """The training view's forward pass as one ``nn.Module`` (what DDP wraps): each
    stage's module and activation module, or its layer's ``torch_train`` with the
    constants drawn for the batch (``forward(x, drawn)``, one dict per stage)."""

    class Stack(torch.nn.Module):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            own = [m for s in stages for m in (s.module, s.activation) if m is not None]
            self.own = torch.nn.ModuleList(own)  # registered: parameters and buffers

        def forward(self, h: Any, drawn: list[dict[str, Any]]) -> Any:
            for stage, constants in zip(stages, drawn, strict=True):
                if stage.module is None:
                    h = stage.layer.torch_train(torch, h, constants)
                    continue
                h = stage.module(h)
                if stage.activation is not None:
                    h = stage.activation(h)
            return h

    return Stack()


class _Stage:
    """One layer of the training view on the device: its module and its activation's
    module (None for an identity), or None for a layer that runs ``torch_train``."""

    def __init__(self, layer: Layer, module: Any, activation: Any) -> None:
        self.layer = layer
        self.module = module
        self.activation = activation


class TorchEngine(StepEngine):
    """One training step per batch in PyTorch on ``device`` (see the module docstring).

    The network's arrays stay the truth between epochs: :meth:`begin` copies them onto
    the device, :meth:`sync` copies the trained values back (parameters, constants a
    step moves such as batch normalisation's running statistics, the optimiser's state
    and step count), and the first step after a :meth:`sync` copies the network's
    values in again — so a callback or a restore that changes them between epochs is
    honoured, as with the NumPy engine.

    >>> import glassnet as gn                                  # doctest: +SKIP
    >>> gn.mlp([4, 8, 3]).fit(X, y, engine="torch", device="cuda")  # doctest: +SKIP
    """

    def __init__(self, device: str = "cpu") -> None:
        self.torch = import_torch()
        dev = torch_device(self.torch, device)
        local = os.environ.get("LOCAL_RANK")
        if dev.type == "cuda" and dev.index is None and local is not None and local.isdigit():
            dev = torch_device(self.torch, f"cuda:{local}")  # torchrun: one GPU a process
        self.device = dev
        self.rank, self.world = process_group(self.torch, dev)
        self._stages: list[_Stage] = []
        self._stale = False
        self._data: Rows | None = None

    # -- the seam ----------------------------------------------------------------------
    def begin(
        self,
        net: Network,
        loss: Loss,
        optimizer: Optimizer,
        data: Rows,
        *,
        batch_size: int,
        rng: np.random.Generator,
        dropout: float,
    ) -> None:
        torch = self.torch
        if self.device.type == "mps" and net.dtype == np.float64:
            raise GlassnetError(
                "expected float32 on mps (Apple's GPUs have no float64)",
                got="float64",
                field="dtype",
            )
        self.net, self.loss, self.optimizer, self.rng = net, loss, optimizer, rng
        view = with_dropout(net, check_dropout(dropout))
        self._stages = []
        for layer in view.layers:
            if layer.torch_name is None:  # runs layer.torch_train (dropout)
                self._stages.append(_Stage(layer, None, None))
                continue
            module = torch_module(torch, *layer.torch_data()).to(self.device)
            module.train()  # batch statistics, running statistics moved
            act = layer.activation.torch_module(torch.nn)
            self._stages.append(_Stage(layer, module, act))
        self._state_names()  # refused before any step, not at the first sync
        coupled = [s.layer.type for s in self._stages if s.layer.couples_batch]
        n_rows = data.rows.shape[0]
        if coupled and (min(batch_size, n_rows) == 1 or n_rows % batch_size == 1):
            # PyTorch's batch norm refuses one row in training mode (the NumPy engine
            # takes it: variance 0): said before the first step, not mid-epoch.
            raise GlassnetError(
                f"expected batches of at least 2 rows for {', '.join(coupled)} with the torch "
                f"engine ({n_rows} rows in batches of {batch_size} leave one row)",
                got=f"batch_size {batch_size}",
                field="batch_size",
            )
        if self.world > 1:
            if coupled:
                raise GlassnetError(
                    "expected layers that treat each sample alone with more than one "
                    "process (their batch statistics would be each process's part)",
                    got=", ".join(coupled),
                    field="engine",
                )
        self._net = _stack(torch, self._stages)
        if self.world > 1:
            # The wrapper averages the gradients over the processes in backward.
            self._net = torch.nn.parallel.DistributedDataParallel(self._net)
        self._dtype = getattr(torch, str(net.dtype))
        self._optimizer = self._torch_optimizer(optimizer)
        self._load_state()
        self._data = data
        self.reload()
        self._stale = False

    def reload(self) -> None:
        """The data on the device, in the network's dtype (as the NumPy engine gathers
        each batch into buffers of that dtype); each step indexes it.  At :meth:`begin`,
        and again for each window of a streamed file (the same arrays, refilled)."""
        torch, data = self.torch, self._data
        assert data is not None, "begin() first"
        dev, dtype = self.device, self._dtype
        # On the CPU in the network's dtype already, .to() shares the NumPy buffer (no
        # copy: a refilled window is seen as it is); on a GPU it copies the window over.
        self.X = torch.from_numpy(np.ascontiguousarray(data.X)).to(dev, dtype)
        self.Y = torch.from_numpy(np.ascontiguousarray(data.Y)).to(dev, dtype)
        self.w = None
        if data.weights is not None:
            self.w = torch.from_numpy(np.ascontiguousarray(data.weights)).to(dev, dtype)

    def step(self, idx: Array) -> tuple[Array, float]:
        torch = self.torch
        if self._stale:  # the network's arrays may have changed since sync()
            self._push()
            self._stale = False
        m = idx.shape[0]
        # This process's rows of the batch: all of it alone, else its contiguous part.
        # Sharded (``parts``), each process holds only its part: its rows are the ones
        # given, at its offset in the batch the processes' parts make together.
        sizes = self.parts if self.world > 1 else None
        part: Array | None
        if sizes is not None:
            if len(sizes) != self.world or sizes[self.rank] != m:
                raise GlassnetError(
                    f"expected {self.world} part sizes, this process's {m}",
                    got=str(sizes),
                    field="engine",
                )
            offset = sum(sizes[: self.rank])
            part = np.arange(offset, offset + m)
            rows, m = idx, sum(sizes)
        else:
            part = np.array_split(np.arange(m), self.world)[self.rank] if self.world > 1 else None
            rows = idx if part is None else idx[part]
            sizes = [len(p) for p in np.array_split(np.arange(m), self.world)]
        i = torch.from_numpy(rows).to(self.device)
        drawn: list[dict[str, Any]] = []
        for stage in self._stages:
            # In layer order, as the NumPy engine draws, for the whole batch (every
            # process draws the same): the fit's stream stays one.
            d = stage.layer.draw(self.rng, m)
            if d and stage.module is not None:
                raise GlassnetError(
                    "expected a layer with a module to draw nothing per batch",
                    got=f"{stage.layer.type} draws {', '.join(d)}",
                    field="engine",
                )
            drawn.append(
                {
                    k: torch.from_numpy(v if part is None else v[part]).to(self.device, self._dtype)
                    for k, v in d.items()
                }
            )
        h = self._net(self.X[i], drawn)
        w = None if self.w is None else self.w[i]
        value = self.loss.torch_value(torch, h, self.Y[i], w)
        if part is not None:
            value, h = self._whole_batch(value, h, sizes)
        loss = float(value.item())
        if math.isfinite(loss):
            opt = self._optimizer
            # The schedule's rate for this epoch (the loop set it: set_epoch).
            for group in opt.param_groups:
                group["lr"] = self.optimizer.current_lr
            opt.zero_grad(set_to_none=True)
            value.backward()
            opt.step()
            self.optimizer.t += 1
        return h.detach().cpu().numpy(), loss

    def _whole_batch(self, value: Any, h: Any, sizes: list[int]) -> tuple[Any, Any]:
        """With N processes whose parts of the batch have ``sizes`` rows (this one's k
        of the batch's m): this part's mean loss -> N·k/m times it, whose gradient DDP's
        average over the processes makes the whole batch's; the value reported is the
        whole batch's (summed over the processes), and the output p the whole batch's
        (gathered, in row order)."""
        torch, dist, n = self.torch, self.torch.distributed, self.world
        k, m = sizes[self.rank], sum(sizes)
        # An empty part (a batch smaller than N) still joins the backward, with zero.
        scaled = value * (n * k / m) if k else h.sum() * 0.0
        total = scaled.detach().clone()
        dist.all_reduce(total)
        width = max(sizes)  # the largest part: all_gather wants equal shapes
        padded = torch.zeros((width, h.shape[1]), dtype=h.dtype, device=h.device)
        padded[:k] = h.detach()
        parts = [torch.empty_like(padded) for _ in range(n)]
        dist.all_gather(parts, padded)
        whole = torch.cat([p[:s] for p, s in zip(parts, sizes, strict=True)])
        # The loss to differentiate (scaled) and to report (total/N), as one tensor
        # whose backward is the scaled one's.
        return scaled + (total / n - scaled).detach(), whole

    def sync(self) -> None:
        """The trained values into the network's arrays, in place, and the optimiser's
        state into the glassnet optimiser (so checkpoints and model files hold it)."""
        for stage in self._stages:
            if stage.module is None:
                continue
            layer, cls = stage.layer, type(stage.layer)
            # Read back through the layer's own PyTorch form (Linear's weight is Wᵀ).
            # (given the layer's input shape, which a module of feature maps does not store)
            trained = cls.from_torch_shaped(*cls.torch_data_of(stage.module), layer.in_shape)
            for name in (*layer.params, *layer.constants):
                getattr(layer, name)[...] = getattr(trained, name)
        self._save_state()
        self._stale = True

    def end(self) -> None:
        self._net = None
        self._stages = []
        self.X = self.Y = self.w = None
        self._data = None
        self._optimizer = None

    # -- weights and optimiser state across the boundary --------------------------------
    def _push(self) -> None:
        """The network's current arrays into the modules (parameters and buffers)."""
        torch = self.torch
        with torch.no_grad():
            for stage in self._stages:
                if stage.module is None:
                    continue
                for name, t in stage.layer.torch_data()[1].items():
                    getattr(stage.module, name).copy_(torch.from_numpy(t))

    def _torch_optimizer(self, optimizer: Optimizer) -> Any:
        """``torch.optim``'s optimiser from :meth:`Optimizer.torch_spec`, weight decay on
        the 2-D parameters only (glassnet decays weight matrices, never biases)."""
        try:
            name, kwargs = optimizer.torch_spec()
        except NotImplementedError:
            raise GlassnetError(
                "expected an optimiser with a PyTorch form (torch_spec) for the torch engine",
                got=type(optimizer).__name__,
                field="optimizer",
            ) from None
        cls = getattr(self.torch.optim, name, None)
        if cls is None:
            raise GlassnetError("expected a torch.optim class", got=repr(name), field="optimizer")
        params = [p for s in self._stages if s.module is not None for p in s.module.parameters()]
        # the layers' ``decayed`` (weights and kernels, not biases or norm scales)
        decayed = [p for p in params if p.ndim >= 2]
        rest = [p for p in params if p.ndim < 2]
        groups: list[dict[str, Any]] = []
        if decayed:
            groups.append({"params": decayed})
        if rest:
            groups.append({"params": rest, "weight_decay": 0.0})
        return cls(groups, **kwargs)

    def _offsets(self) -> list[tuple[_Stage, int]]:
        """Each module's stage and the index of its layer's first parameter in
        ``net.parameters()`` (the optimiser's state lists are in that order)."""
        out, offset = [], 0
        for stage in self._stages:
            if stage.module is not None:
                out.append((stage, offset))
            offset += len(stage.layer.params)
        return out

    def _load_state(self) -> None:
        """A glassnet optimiser's state (a resumed or continued fit) into torch.optim's,
        each array through its layer's own PyTorch form (the same transposes)."""
        opt, torch = self.optimizer, self.torch
        if opt.t == 0 or not opt.state:
            return
        names = self._state_names()
        for stage, offset in self._offsets():
            layer = stage.layer
            per_param: dict[Any, dict[str, Any]] = {}
            for ours, theirs in names.items():
                arrays = {p: opt.state[ours][offset + j] for j, p in enumerate(layer.params)}
                _, tensors = layer.with_leaves(arrays).torch_data()
                for pname, param in stage.module.named_parameters():
                    t = torch.from_numpy(np.ascontiguousarray(tensors[pname]))
                    per_param.setdefault(param, {})[theirs] = t.to(self.device).clone()
            for param, state in per_param.items():
                # torch.optim's step count (Adam's bias corrections read it).
                self._optimizer.state[param] = {"step": torch.tensor(float(opt.t)), **state}

    def _save_state(self) -> None:
        """torch.optim's state back into the glassnet optimiser (``load_state_arrays``)."""
        opt = self.optimizer
        names = self._state_names()
        if not names or opt.t == 0:
            return
        arrays: dict[str, Array] = {}
        for stage, offset in self._offsets():
            layer, cls = stage.layer, type(stage.layer)
            for ours, theirs in names.items():
                arch, tensors = cls.torch_data_of(stage.module)
                for pname, param in stage.module.named_parameters():
                    state = self._optimizer.state.get(param, {})
                    if theirs not in state:
                        return  # no step taken yet: nothing to hand back
                    tensors[pname] = state[theirs].detach().cpu().numpy()
                as_layer = cls.from_torch_shaped(arch, tensors, layer.in_shape)
                for j, p in enumerate(layer.params):
                    arrays[f"{ours}.{offset + j}"] = getattr(as_layer, p)
        opt.load_state_arrays(arrays, self.net.parameters())

    def _state_names(self) -> dict[str, str]:
        opt = self.optimizer
        names = dict(opt.torch_state)
        if set(names) != set(opt.state_names):
            raise GlassnetError(
                f"expected torch_state to name each of {', '.join(opt.state_names) or 'nothing'}",
                got=", ".join(names) or "nothing",
                field="optimizer",
            )
        return names
