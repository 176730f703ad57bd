"""``glassnet train``, ``glassnet evaluate``, ``glassnet predict``: training on real data.

The command parses and prints; the run itself — split, standardisation stored in the
model, checkpoints, resume, scores, plots — is :mod:`glassnet.runs` (with
:mod:`glassnet.metrics` and :mod:`glassnet.plots`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from glassnet.errors import GlassnetError
from glassnet.fileio import atomic_write_text, check_writable

if TYPE_CHECKING:
    import numpy as np

    from glassnet.metrics import ClassificationScores, RegressionScores
    from glassnet.runs import RunSummary

OPTIMIZERS = ("adam", "adamw", "sgd", "momentum", "rmsprop")
SCHEDULES = ("none", "step", "cosine", "plateau")
#: ``glassnet.training.ENGINES``, spelt out so --help imports no training code.
ENGINES = ("numpy", "torch", "auto")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a network on a data set, with progress, plots and checkpoints",
        description="Train a multilayer perceptron on a bundled data set (digits, iris, wine, "
        "breast_cancer) or your own CSV/NPZ file.  Input and output sizes come from the data; "
        "--layers gives the hidden sizes.  A checkpoint is written after every epoch; "
        "--resume CKPT continues an interrupted run and ends with the same weights, bit for "
        "bit, as a run never interrupted (settings and data come from the checkpoint; it runs to "
        "the checkpoint's total epochs unless --epochs raises it; other options are refused).",
    )
    p.add_argument(
        "--data", help="digits | iris | wine | breast_cancer | FILE.csv | FILE.npz (X, y)"
    )
    p.add_argument("--label", help="label column of a CSV file (default: the last column)")
    p.add_argument(
        "--task",
        choices=("auto", "classification", "regression"),
        help="auto (default): regression for a numeric target with many distinct values "
        "(>10 not all whole, or >20 whole); the choice and its reason are printed",
    )
    p.add_argument("--features", help="CSV: use only these columns, e.g. age,income")
    p.add_argument("--drop", help="CSV: leave out these columns (an ID, a leak), e.g. id")
    p.add_argument(
        "--impute",
        choices=("mean", "median", "most_frequent"),
        help="CSV: fill missing cells (stored in the model; default: missing is an error)",
    )
    p.add_argument(
        "--handle-unknown",
        choices=("error", "ignore"),
        help="a text value not seen in training: error (default) or all-zero one-hot",
    )
    p.add_argument(
        "--coerce",
        action="store_true",
        default=None,
        help="CSV: in a number column, read the few cells that are not numbers as missing "
        "(default: they are an error naming them)",
    )
    p.add_argument(
        "--drop-missing-labels",
        action="store_true",
        default=None,
        help="CSV: drop rows with an empty label cell (default: an error naming them)",
    )
    _dialect_options(p)
    p.add_argument(
        "--dates",
        choices=("error", "expand", "drop"),
        help="CSV: a date column is an error (default), expanded into year, month, day, "
        "weekday (expand), or left out (drop); never one-hot",
    )
    p.add_argument(
        "--model",
        metavar="mlp|cnn|FILE.toml",
        help="mlp (default: dense layers); cnn (image data — digits, or an .npz whose X "
        "is (N, C, H, W) or (N, H, W): 3×3 convolutions, each followed by 2×2 max pooling, "
        "then a dense output; pixels divided by the training part's largest |value|); or "
        "a spec file whose [[layers]] are the network (conv2d, pooling, flatten, dense: "
        "weights given, or channels/kernel_size/units drawn with --init and --seed)",
    )
    p.add_argument(
        "--layers",
        help="hidden sizes, e.g. 64,32 (default 100); with --model cnn the convolutions' "
        "channels (default 16,32)",
    )
    p.add_argument("--activation", help="hidden activation (default relu)")
    p.add_argument(
        "--dropout", type=float, help="dropout rate on hidden layers while training (default 0)"
    )
    p.add_argument("--init", help="weight initialiser (default he)")
    p.add_argument(
        "--epochs",
        type=int,
        help="epochs in all (default 200; with --resume, the checkpoint's total)",
    )
    p.add_argument("--optimizer", choices=OPTIMIZERS, help="default adam")
    p.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    p.add_argument(
        "--momentum", type=float, help="momentum μ (sgd: default 0; momentum: default 0.9)"
    )
    p.add_argument("--nesterov", action="store_true", default=None, help="Nesterov (sgd, momentum)")
    p.add_argument("--weight-decay", type=float, help="L2 weight decay (default 1e-4)")
    p.add_argument(
        "--schedule",
        choices=SCHEDULES,
        help="learning-rate schedule; plateau: times --gamma after --step-size epochs "
        "without a lower val_loss (needs a validation split; 0.1 by default with it)",
    )
    p.add_argument("--step-size", type=int, help="step/plateau schedule: epochs (10)")
    p.add_argument("--gamma", type=float, help="step/plateau schedule: factor (0.1)")
    p.add_argument("--batch-size", type=int, help="default 64")
    p.add_argument(
        "--validation-split",
        type=float,
        help="share of training rows held out for validation (default 0; 0.1 with --patience)",
    )
    p.add_argument("--test-size", type=float, help="held-out test share (0.25)")
    p.add_argument(
        "--patience", type=int, help="stop after this many epochs without progress on val_loss"
    )
    p.add_argument(
        "--save-best",
        action="store_true",
        default=None,
        help="save the weights of the epoch with the best val_loss, not the last epoch's "
        "(needs a validation split; 0.1 by default with it)",
    )
    p.add_argument(
        "--class-weight",
        choices=("balanced",),
        help="balanced: each class weighs n / (k · n_c) in the loss, as scikit-learn's",
    )
    p.add_argument("--seed", type=int, help="seed for weights, split, shuffling (0)")
    p.add_argument("--dtype", choices=("float32", "float64"), help="default float32")
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default="numpy",
        help="numpy (default), torch (PyTorch: needs torch), auto (numpy on the CPU)",
    )
    p.add_argument(
        "--device", help="where the torch engine trains: cpu (default), cuda, cuda:N, mps"
    )
    p.add_argument(
        "--kernels",
        choices=("auto", "numpy", "numba"),
        default="auto",
        help="the numpy engine's element-wise passes: auto (default: numba's compiled "
        "kernels when installed and the run is long enough), numpy, or numba "
        "(the fast extra)",
    )
    p.add_argument(
        "--stream",
        action="store_true",
        help="read the CSV/Parquet file in batches, never whole: a first pass fits the "
        "preprocessing, then each epoch streams windows (docs/scale.md); every row trains",
    )
    p.add_argument(
        "--window",
        type=int,
        help="--stream: batches per window (64): rows are shuffled within a window, and "
        "memory holds one",
    )
    p.add_argument(
        "--shards",
        type=int,
        metavar="S",
        help="--stream: read the file as S shards (CSV byte ranges, Parquet row groups); under "
        "torchrun each process reads its own; in one process, all S in lockstep: the same "
        "run (docs/scale.md)",
    )
    p.add_argument(
        "--check-first-step",
        action="store_true",
        help="compare the first step with the step graph's (glassnet step); stop if they differ",
    )
    p.add_argument(
        "--out",
        help="model file to write (default model.npz; with --resume, the run's own --out, "
        "stored in the checkpoint)",
    )
    p.add_argument("--checkpoint", help="checkpoint file (default: OUT with .ckpt.npz)")
    p.add_argument("--resume", metavar="CKPT", help="continue from this checkpoint")
    p.add_argument("--plot", metavar="PNG", help="write loss and accuracy curves here")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    p.set_defaults(func=run_train)

    p = sub.add_parser(
        "evaluate",
        help="score a model: loss, accuracy, per-class precision/recall, confusion matrix",
        description="Evaluate MODEL.  Without --data, or with the data it was trained on, "
        "it scores the held-out test part of the same seeded split (never a training "
        "sample); with another CSV/NPZ file, every row of that file.",
    )
    p.add_argument("model", metavar="MODEL", help="model file from glassnet train")
    p.add_argument("--data", help="data set name or file (default: the model's own)")
    p.add_argument("--label", help="label column of a CSV file")
    _dialect_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_evaluate)

    p = sub.add_parser(
        "predict",
        help="predict the classes of new rows",
        description="Predict every row of FILE (CSV with the model's feature columns, matched "
        "by header name in any order, or NPZ with X) and write CSV: the predicted class and "
        "each class's probability (or the predicted value, for regression).  The model "
        "applies its own preprocessing: scaling, imputation, text encoding.",
    )
    p.add_argument("model", metavar="MODEL", help="model file from glassnet train")
    p.add_argument("file", metavar="FILE", help="rows to predict (.csv or .npz)")
    p.add_argument("-o", "--output", metavar="OUT", help="write the CSV here (default: stdout)")
    p.add_argument("--id-column", metavar="COL", help="copy this column to the output")
    p.add_argument(
        "--no-header", action="store_true", help="the CSV has no header (columns in training order)"
    )
    _dialect_options(p)
    p.set_defaults(func=run_predict)


def _dialect_options(p: Any) -> None:
    p.add_argument("--sep", help="CSV separator: , ; tab | (default: sniffed from the first lines)")
    p.add_argument(
        "--decimal",
        choices=(".", ","),
        help="CSV decimal mark (default: sniffed; a comma only with another separator)",
    )


# -- helpers -------------------------------------------------------------------------------
def _parse_layers(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.replace(" ", "").split(",") if s]
    except ValueError:
        sizes = []
    if not sizes or any(n < 1 for n in sizes):
        raise GlassnetError(
            "expected hidden sizes like 64,32 (positive whole numbers)",
            got=repr(text),
            field="--layers",
        )
    return sizes


def _check_writable(path: str | None, flag: str) -> None:
    if path is not None:
        check_writable(path, field=flag)


def _default_checkpoint(out: str) -> str:
    p = Path(out)
    stem = p.name[: -len(".npz")] if p.name.endswith(".npz") else p.name
    return str(p.with_name(f"{stem}.ckpt.npz"))


def _given_options(args: argparse.Namespace) -> dict[str, Any]:
    """The run options given on the command line (the rest take their defaults)."""
    from glassnet.runs import TrainOptions

    given = {
        name: getattr(args, name)
        for name in TrainOptions.names()
        if getattr(args, name, None) is not None
    }
    if "layers" in given:
        given["layers"] = _parse_layers(given["layers"])
    for flag in ("features", "drop"):
        if flag in given:
            given[flag] = [c.strip() for c in given[flag].split(",") if c.strip()]
    for flag in ("epochs", "batch_size"):
        if flag in given and given[flag] < 1:
            raise GlassnetError(
                "expected a whole number ≥ 1",
                got=str(given[flag]),
                field="--" + flag.replace("_", "-"),
            )
    if given.get("seed", 0) < 0:
        raise GlassnetError("expected a whole number ≥ 0", got=str(given["seed"]), field="--seed")
    if given.get("patience", 1) < 1:
        raise GlassnetError(
            "expected a whole number ≥ 1", got=str(given["patience"]), field="--patience"
        )
    return given


# -- train ---------------------------------------------------------------------------------
def _resolve_out(args: argparse.Namespace, stored: str | None) -> str:
    """The model file to write: ``--out``; with ``--resume`` and no ``--out``, the run's
    own (stored in the checkpoint) — refused if another run's model now sits there (never
    written over a file the person did not name); else ``model.npz``."""
    if args.out:
        return str(args.out)
    if not args.resume:
        return "model.npz"
    if stored is None:  # a checkpoint from before --out was stored: say it, don't guess
        raise GlassnetError(
            "expected --out (this checkpoint does not record its run's model file)",
            got="nothing",
            field="--out",
        )
    _check_writable(stored, "--out")
    if os.path.exists(stored) and not _same_run(stored, args.resume):
        raise GlassnetError(
            "expected the run's own model file or none there (name another with --out)",
            got="a file of another run",
            file=stored,
            field="--out",
        )
    return stored


def _same_run(path: str, checkpoint: str) -> bool:
    """True when the model file at ``path`` was written by the run of ``checkpoint``
    (the same data and options)."""
    from glassnet.runs import load_trained

    try:
        _, mine = load_trained(checkpoint)
        _, theirs = load_trained(path)
    except GlassnetError:
        return False
    if mine is None or theirs is None:
        return False
    return (mine.data, mine.options, mine.seed) == (theirs.data, theirs.options, theirs.seed)


def _sigterm_as_interrupt() -> Any:
    """Until the returned function is called, SIGTERM (what ``timeout``, ``kill`` and job
    schedulers send) stops training as Ctrl-C does: the last epoch's checkpoint stays,
    the file being written is cleaned up (its ``finally``), and the exit says how to
    resume — instead of dying where it stands with a temporary file left behind."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return lambda: None  # signals go to the main thread only

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    return lambda: signal.signal(signal.SIGTERM, previous)


def run_train(args: argparse.Namespace) -> int:
    from glassnet.runs import prepare_run, train_run
    from glassnet.training import FirstStepCheck, resolve_engine

    for flag in ("out", "checkpoint", "plot"):
        _check_writable(getattr(args, flag), f"--{flag}")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise GlassnetError("expected a .png file name", got=repr(args.plot), field="--plot")
    # How the run trains, not what it trains (so not a run option --resume compares):
    # checked first, so a missing torch or device fails before anything is read.
    try:
        engine = resolve_engine(args.engine, args.device, args.kernels)
    except GlassnetError as err:
        raise GlassnetError(err.expected, got=err.got, field=f"--{err.field}") from None
    checked = FirstStepCheck(engine) if args.check_first_step else None
    if checked is not None:
        engine = checked
    if args.plot:  # said now, not after the training it would follow
        from glassnet.extras import require

        require(("matplotlib",), "train", field="--plot", what="matplotlib for --plot")
    if args.window is not None and (args.window < 1 or not args.stream):
        raise GlassnetError(
            "expected a whole number ≥ 1, with --stream", got=str(args.window), field="--window"
        )
    streamed = args.stream or bool(args.resume and _streamed(args.resume))
    if args.shards is not None and (args.shards < 1 or not streamed):
        raise GlassnetError(
            "expected a whole number ≥ 1, with --stream", got=str(args.shards), field="--shards"
        )
    if streamed:
        return _run_stream(args, engine, checked)
    run = prepare_run(args.data, args.resume, _given_options(args))
    out = _resolve_out(args, run.settings.out)
    ckpt_path = args.checkpoint or _default_checkpoint(out)
    run.settings.out = os.path.abspath(out)  # --resume writes here, not to a default
    run.info["train"] = run.settings.to_info()
    quiet = args.json or engine.rank != 0  # data parallel: rank 0 speaks for the run
    if not quiet:
        for note in [*run.ds.notes, *([run.ds.task_note] if run.ds.task_note else [])]:
            print(note)  # stdout, with the summary: stderr is for the one error line
    if not quiet:
        print(run.model.summary())
    stop_on_sigterm = _sigterm_as_interrupt()
    try:
        summary = train_run(
            run,
            out=out,
            checkpoint=ckpt_path,
            keep_checkpoint=bool(args.checkpoint),
            plot=args.plot,
            progress=not args.no_progress and not args.json,
            engine=engine,
        )
    except KeyboardInterrupt:
        state = run.model.train_state
        print(
            f"glassnet: interrupted; continue with --resume {ckpt_path} "
            f"(epoch {state.epoch if state else 0} saved there)",
            file=sys.stderr,
        )
        return 130
    finally:
        stop_on_sigterm()
    if engine.rank != 0:
        return 0
    if checked is not None and checked.difference is not None and not args.json:
        print(
            f"first step: equal to the step graph's within {checked.tolerance:.1e} "
            f"(largest relative difference {checked.difference:.1e})"
        )  # stdout, with the summary: stderr is for the one error line
    if args.json:
        print(json.dumps(summary.to_dict()))
    else:
        _print_summary(summary)
    return 0


def _streamed(checkpoint: str) -> bool:
    """True when ``checkpoint`` is a streamed run's (``--resume`` then streams too)."""
    from glassnet.model import load_saved

    try:
        return "stream" in load_saved(checkpoint).info
    except GlassnetError:
        return False  # said by the in-memory path's own checks


def _stream_ignored(info: dict[str, Any]) -> list[str] | None:
    """The columns a streamed run left out (--drop, constant ones): a file scored or
    predicted may hold them."""
    settings = info.get("stream")
    if not isinstance(settings, dict):
        return None
    options = settings.get("options") or {}
    return [*(options.get("drop") or []), *(settings.get("dropped") or [])]


def _run_stream(args: argparse.Namespace, engine: Any, checked: Any) -> int:
    """``glassnet train --stream`` (and ``--resume`` of a streamed run)."""
    from glassnet.stream import train_stream

    if args.plot:
        raise GlassnetError(
            "expected no --plot with --stream (no test part to draw)",
            got=args.plot,
            field="--plot",
        )
    given = _given_options(args)
    out = args.out or "model.npz"
    if args.resume and not args.out:  # the run's own model file, stored in the checkpoint
        from glassnet.model import load_saved

        out = str(load_saved(args.resume).info["stream"].get("out") or out)
    ckpt_path = args.checkpoint or _default_checkpoint(out)
    quiet = args.json or engine.rank != 0

    def ready(model: Any, notes: list[str]) -> None:
        if not quiet:
            for note in notes:
                print(note)
            print(model.summary())

    stop_on_sigterm = _sigterm_as_interrupt()
    try:
        summary = train_stream(
            args.data,
            args.resume,
            given,
            out=out,
            checkpoint=ckpt_path,
            keep_checkpoint=bool(args.checkpoint),
            window_batches=args.window,
            engine=engine,
            progress=not args.no_progress and not args.json,
            on_ready=ready,
            shards=args.shards,
        )
    except KeyboardInterrupt:
        print(f"glassnet: interrupted; continue with --resume {ckpt_path}", file=sys.stderr)
        return 130
    finally:
        stop_on_sigterm()
    if engine.rank != 0:
        return 0
    if checked is not None and checked.difference is not None and not args.json:
        print(
            f"first step: equal to the step graph's within {checked.tolerance:.1e} "
            f"(largest relative difference {checked.difference:.1e})"
        )
    if args.json:
        print(json.dumps(summary.to_dict()))
        return 0
    last = summary.last_epoch
    shown = ", ".join(f"{k} {v:.4g}" for k, v in last.items() if k != "lr")
    print(
        f"streamed {summary.data}: {summary.rows} rows in windows of {summary.window_rows}, "
        f"{summary.epochs} epochs ({shown}), {summary.seconds:.2f} s; model saved to "
        f"{summary.model} (score a held-out file: glassnet evaluate {summary.model} --data FILE)"
    )
    return 0


def _print_summary(s: RunSummary) -> None:
    from rich.console import Console
    from rich.table import Table

    from glassnet.metrics import ClassificationScores

    console = Console()
    last = s.last_epoch
    test = s.test
    train_row = f"train (epoch {s.kept_epoch})" if s.kept_epoch else "train (last epoch)"
    title = f"trained {s.data} ({'-'.join('×'.join(map(str, x)) for x in s.shapes)})"
    if isinstance(test, ClassificationScores):
        table = Table(title=title)
        table.add_column("")
        table.add_column("loss", justify="right")
        table.add_column("accuracy", justify="right")
        table.add_row(train_row, f"{last['loss']:.4f}", f"{last.get('accuracy', float('nan')):.4f}")
        if "val_loss" in last:
            table.add_row("validation", f"{last['val_loss']:.4f}", f"{last['val_accuracy']:.4f}")
        table.add_row(f"test ({s.test_rows} rows)", f"{test.loss:.4f}", f"{test.accuracy:.4f}")
    else:
        table = Table(title=title + ", regression")
        for col in ("", "mse", "R²", "MAE", "RMSE"):
            table.add_column(col, justify="right" if col else "left")
        table.add_row(train_row, f"{last['loss']:.4g}", "", "", "")
        if "val_loss" in last:
            table.add_row("validation", f"{last['val_loss']:.4g}", "", "", "")
        table.add_row(
            f"test ({s.test_rows} rows)",
            f"{test.loss:.4g}",
            f"{test.r2:.4f}",
            f"{test.mae:.4g}",
            f"{test.rmse:.4g}",
        )
    console.print(table)
    if s.kept_epoch:
        why = f"early stopping at epoch {s.stopped_epoch}" if s.stopped_epoch else "--save-best"
        console.print(
            f"{why}: the weights of epoch {s.kept_epoch} "
            f"(the best val_loss, {last.get('val_loss', float('nan')):.4g}) are kept; the "
            "rows above are that epoch's"
        )
    console.print(
        f"{s.epochs} epochs, {s.optimizer['name']} lr {s.optimizer['lr']:g}, "
        f"{s.seconds:.2f} s in all; model saved to {s.model}"
        + (f"; curves in {s.plot}" if s.plot else "")
    )


# -- evaluate and predict ------------------------------------------------------------------------
def _encode(raw: np.ndarray, classes: list[str | int], file: str) -> np.ndarray:
    import numpy as np

    index = {str(c): k for k, c in enumerate(classes)}
    try:
        return np.array([index[str(v)] for v in raw.tolist()], dtype=np.int64)
    except KeyError as err:
        raise GlassnetError(
            f"expected labels the model knows ({', '.join(map(str, classes))})",
            got=repr(err.args[0]),
            file=file,
            field="label",
        ) from None


def run_evaluate(args: argparse.Namespace) -> int:
    from glassnet.data import numeric_targets
    from glassnet.runs import dataset_of, load_trained, rows_for_model, same_source, score

    saved, settings = load_trained(args.model)
    model, info = saved.network, saved.info
    task = model.task or "classification"
    source = args.data or (settings.data if settings else None)
    if not source:
        raise GlassnetError("expected --data", got="nothing", field="--data")
    if settings is not None and same_source(source, settings.data):
        ds = dataset_of(settings)
        assert ds.X_test_raw is not None
        X, y, part = ds.X_test_raw, ds.y_test, "test part"
    else:
        rows = rows_for_model(
            model,
            source,
            label=args.label or info.get("label"),
            need_label=True,
            ignore=_stream_ignored(info),
            sep=args.sep,
            decimal=args.decimal,
            dates=settings.dates if settings else "error",
        )
        X, raw, part = rows.X, rows.labels, "all rows"
        if task == "regression":
            targets = numeric_targets(raw)
            if targets is None:
                raise GlassnetError(
                    "expected numeric targets", got="text", file=source, field="label"
                )
            y = targets
        else:
            y = _encode(raw, model.classes or [], source)
    scores = score(model, X, y, task)
    result = {**scores.to_dict(), "data": source, "part": part, "task": task}
    if args.json:
        print(json.dumps(result))
        return 0
    _print_scores(scores, source, part)
    return 0


def _print_scores(scores: ClassificationScores | RegressionScores, source: str, part: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from glassnet.metrics import RegressionScores

    console = Console()
    if isinstance(scores, RegressionScores):
        console.print(
            f"{source} ({part}, {scores.n} rows): R² {scores.r2:.4f}, MAE {scores.mae:.4g}, "
            f"RMSE {scores.rmse:.4g}, mse {scores.loss:.4g}"
        )
        return
    extra = ""
    if scores.f1_macro is not None and scores.balanced_accuracy is not None:
        auc = "undefined" if scores.roc_auc is None else f"{scores.roc_auc:.4f}"
        extra = (
            f", F1 (macro) {scores.f1_macro:.4f}, balanced accuracy "
            f"{scores.balanced_accuracy:.4f}, ROC AUC {auc}"
        )
    console.print(
        f"{source} ({part}, {scores.n} rows): accuracy {scores.accuracy:.4f}, "
        f"loss {scores.loss:.4f}{extra}"
    )
    classes, cm = scores.classes, scores.confusion_matrix
    per_class = Table(title="per class")
    for col in ("class", "precision", "recall", "support"):
        per_class.add_column(col, justify="right" if col != "class" else "left")
    for c, pr, rc, row in zip(classes, scores.precision, scores.recall, cm, strict=True):
        per_class.add_row(
            str(c),
            "nan" if pr is None else f"{pr:.3f}",
            "nan" if rc is None else f"{rc:.3f}",
            str(sum(row)),
        )
    console.print(per_class)
    matrix = Table(title="confusion matrix (rows: true class, columns: predicted)")
    matrix.add_column("")
    for c in classes:
        matrix.add_column(str(c), justify="right")
    for c, row in zip(classes, cm, strict=True):
        matrix.add_row(str(c), *(str(int(v)) for v in row))
    console.print(matrix)


def run_predict(args: argparse.Namespace) -> int:
    import csv
    import io as stdio

    from glassnet.runs import load_trained, rows_for_model

    saved, settings = load_trained(args.model)
    model, info = saved.network, saved.info
    if args.output:
        _check_writable(args.output, "--output")
    rows = rows_for_model(
        model,
        args.file,
        label=info.get("label"),
        id_column=args.id_column,
        header=not args.no_header,
        ignore=(
            [*(settings.drop or []), *(settings.dropped or [])]
            if settings
            else _stream_ignored(info)
        ),
        sep=args.sep,
        decimal=args.decimal,
        dates=settings.dates if settings else "error",
    )
    try:
        X = (
            model.preprocessing.transform(rows.X, first_line=rows.lines)
            if model.preprocessing
            else rows.X
        )
    except GlassnetError as err:
        raise err.with_file(args.file) from None
    proba = model.forward_inputs(X)
    ids = [[i] for i in rows.ids] if rows.ids is not None else [[] for _ in range(len(proba))]
    head = [args.id_column] if rows.ids is not None else []
    buf = stdio.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if model.task == "regression":
        targets = model.sizes[-1]
        names = str(info.get("label") or "").split(",")
        if targets == 1:
            writer.writerow([*head, "prediction"])
        else:  # --label a,b: one column per target, named after it
            if len(names) != targets:
                names = [str(j + 1) for j in range(targets)]
            writer.writerow([*head, *(f"prediction_{n.strip()}" for n in names)])
        for i, row in zip(ids, proba, strict=True):
            # repr: the shortest text that reads back as the same number (a target
            # near 1e9 keeps its units; 6 significant digits would not)
            writer.writerow([*i, *(repr(float(v)) for v in row)])
    else:
        classes = model.classes or []
        writer.writerow([*head, "prediction", *(f"p_{c}" for c in classes)])
        for i, row in zip(ids, proba, strict=True):
            writer.writerow([*i, classes[int(row.argmax())], *(f"{v:.6g}" for v in row)])
    if args.output:
        atomic_write_text(args.output, buf.getvalue(), field="-o")
    else:
        sys.stdout.write(buf.getvalue())
    return 0
