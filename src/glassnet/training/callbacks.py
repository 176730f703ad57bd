"""Hooks into :func:`~glassnet.training.fit`: the callback protocol, early stopping,
checkpoints and the progress bar.

Callbacks receive the network being trained as a
:class:`~glassnet.training.trainable.TrainableNetwork` (what :class:`glassnet.model.Model`
is), so this module never imports the model.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

from glassnet.errors import GlassnetError
from glassnet.training.state import History

if TYPE_CHECKING:
    import numpy as np
    from rich.console import Console
    from rich.progress import Progress, TaskID

    from glassnet.training.trainable import TrainableNetwork

    Array = np.ndarray


class Callback:
    """Hooks into :func:`fit`.  ``on_epoch_end`` returns True to stop training."""

    def on_train_begin(self, net: TrainableNetwork, epochs: int) -> None:
        """Called once, before the first epoch of this ``fit`` call."""

    def on_epoch_end(
        self, net: TrainableNetwork, epoch: int, logs: dict[str, float]
    ) -> bool | None:
        """Called after each epoch (numbered from 1, counting earlier fits) with its logs."""
        return None

    def on_train_end(self, net: TrainableNetwork, history: History) -> None:
        """Called once at the end (also after early stopping)."""


#: Metrics that are better when larger; every other metric (losses, errors) is minimised.
_MAXIMISED = ("accuracy", "r2")


class EarlyStopping(Callback):
    """Stop when ``monitor`` (default ``val_loss``) has not improved by more than
    ``min_delta`` for ``patience`` epochs; then restore the best epoch's weights (unless
    ``restore_best=False``).

    ``mode`` says which way is better: ``"min"``, ``"max"``, or ``"auto"`` (the default):
    ``max`` for accuracy and R² (``accuracy``, ``val_accuracy``, ``val_r2``), ``min``
    for every loss and error."""

    def __init__(
        self,
        patience: int = 5,
        *,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        mode: Literal["auto", "min", "max"] = "auto",
        restore_best: bool = True,
    ) -> None:
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 1:
            raise GlassnetError(
                "expected a whole number of epochs ≥ 1", got=repr(patience), field="patience"
            )
        if mode not in ("auto", "min", "max"):
            raise GlassnetError("expected auto, min or max", got=repr(mode), field="mode")
        if not isinstance(min_delta, int | float) or not min_delta >= 0:
            raise GlassnetError("expected a number ≥ 0", got=repr(min_delta), field="min_delta")
        self.patience = patience
        self.monitor = monitor
        self.min_delta = float(min_delta)
        if mode == "auto":
            mode = "max" if monitor.removeprefix("val_") in _MAXIMISED else "min"
        self.mode: Literal["min", "max"] = mode
        self.restore_best = restore_best
        self.best = math.inf
        self.best_epoch = 0
        self.stopped_epoch: int | None = None
        self._best_params: list[Array] | None = None
        self._wait = 0

    def on_train_begin(self, net: TrainableNetwork, epochs: int) -> None:
        self.best, self.best_epoch, self._wait, self.stopped_epoch = math.inf, 0, 0, None
        self._best_params = None

    def improved(self, value: float) -> bool:
        """True when ``value`` beats the best so far by more than ``min_delta``."""
        # The best is kept as a value to minimise: a maximised metric is stored negated.
        signed = -value if self.mode == "max" else value
        return signed < self.best - self.min_delta

    def on_epoch_end(
        self, net: TrainableNetwork, epoch: int, logs: dict[str, float]
    ) -> bool | None:
        if self.monitor not in logs:
            raise GlassnetError(
                f"expected '{self.monitor}' in the epoch's logs (give validation data "
                "for val_loss)",
                got=", ".join(logs),
                field="monitor",
            )
        value = logs[self.monitor]
        if self.improved(value):
            self.best = -value if self.mode == "max" else value
            self.best_epoch, self._wait = epoch, 0
            if self.restore_best:
                self._best_params = [p.copy() for p in net.parameters()]
            return None
        self._wait += 1
        if self._wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return None

    @property
    def best_value(self) -> float:
        """The best value of ``monitor`` seen (in its own sign)."""
        return -self.best if self.mode == "max" else self.best

    def on_train_end(self, net: TrainableNetwork, history: History | None) -> None:
        # Only when it stopped training (as Keras does): an EarlyStopping that never
        # fires changes nothing.
        if self.restore_best and self._best_params is not None and self.stopped_epoch:
            for p, best in zip(net.parameters(), self._best_params, strict=True):
                p[...] = best


class Checkpoint(Callback):
    """Save the network with its training state to ``path`` (atomically) every
    ``every`` epochs, so ``--resume`` can continue from it.  ``info`` and ``extras`` are
    read at each save (other callbacks may update them: a run's best weights)."""

    def __init__(
        self,
        path: str,
        *,
        every: int = 1,
        info: dict[str, Any] | None = None,
        extras: dict[str, Any] | None = None,
    ) -> None:
        self.path, self.every, self.info, self.extras = path, every, info, extras

    def on_epoch_end(
        self, net: TrainableNetwork, epoch: int, logs: dict[str, float]
    ) -> bool | None:
        if epoch % self.every == 0:
            if self.extras:
                net.save(self.path, info=self.info, extras=self.extras)
            else:  # a network whose save takes no extras still checkpoints
                net.save(self.path, info=self.info)
        return None


class ProgressBar(Callback):
    """Progress over epochs with the latest loss and accuracy, on stderr: a rich progress
    bar in a terminal, one plain line per epoch otherwise (logs, pipes, CI), where a bar
    would only be drawn once, at the end."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._epochs = 0

    def on_train_begin(self, net: TrainableNetwork, epochs: int) -> None:
        from rich.console import Console

        console = self.console = self.console or Console(stderr=True)
        # epochs numbered across fits (a resumed run): count from those already done
        state = getattr(net, "train_state", None)
        done = state.epoch if state is not None else 0
        self._epochs = done + epochs
        if not console.is_terminal:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.table import Column

        def fixed() -> Column:
            return Column(no_wrap=True)

        # In a narrow terminal the metrics wrap onto a second line; the counter, bar and
        # clock keep their width (rich would otherwise squeeze them to "…").
        self._progress = Progress(
            TextColumn("epoch", table_column=fixed()),
            MofNCompleteColumn(table_column=fixed()),
            BarColumn(bar_width=20, table_column=fixed()),
            TimeElapsedColumn(table_column=fixed()),
            TextColumn("{task.fields[metrics]}", table_column=Column(overflow="fold")),
            console=console,
        )
        self._progress.start()
        self._task = self._progress.add_task(
            "train", total=self._epochs, completed=done, metrics=""
        )

    def on_epoch_end(
        self, net: TrainableNetwork, epoch: int, logs: dict[str, float]
    ) -> bool | None:
        shown = "  ".join(f"{k} {v:.4f}" for k, v in logs.items() if k != "lr")
        if self._progress is not None and self._task is not None:
            self._progress.update(self._task, advance=1, metrics=shown)
        elif self.console is not None:
            width = len(str(self._epochs))
            self.console.print(
                f"epoch {epoch:>{width}}/{self._epochs}  {shown}", highlight=False, soft_wrap=True
            )
        return None

    def on_train_end(self, net: TrainableNetwork, history: History) -> None:
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
