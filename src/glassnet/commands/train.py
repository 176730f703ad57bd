"""``glassnet train``, ``glassnet evaluate``, ``glassnet predict``: training on real data.

``train`` splits the data (stratified, seeded), standardises it with the training
part's statistics, trains with a progress bar, writes a checkpoint after every epoch
and the model at the end; the model file records the data source, split and
standardisation, so ``evaluate`` scores exactly the held-out samples and ``predict``
standardises new rows the same way.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any

from glassnet.errors import GlassnetError
from glassnet.fileio import atomic_write, atomic_write_text, check_writable

OPTIMIZERS = ("adam", "sgd", "rmsprop")
SCHEDULES = ("none", "step", "cosine")


def register(sub: Any) -> None:
    p = sub.add_parser(
        "train",
        help="train a network on a data set, with progress, plots and checkpoints",
        description="Train a multilayer perceptron on a bundled data set (digits, iris, wine, "
        "breast_cancer) or your own CSV/NPZ file.  Input and output sizes come from the data; "
        "--layers gives the hidden sizes.  A checkpoint is written after every epoch; "
        "--resume CKPT continues an interrupted run and ends with the same weights, bit for "
        "bit, as a run never interrupted (settings and data come from the checkpoint).",
    )
    p.add_argument(
        "--data", help="digits | iris | wine | breast_cancer | FILE.csv | FILE.npz (X, y)"
    )
    p.add_argument("--label", help="label column of a CSV file (default: the last column)")
    p.add_argument("--layers", default="64", help="hidden sizes, e.g. 64,32 (default 64)")
    p.add_argument("--activation", default="relu", help="hidden activation (default relu)")
    p.add_argument("--init", default="he", help="weight initialiser (default he)")
    p.add_argument("--epochs", type=int, default=30, help="epochs in all (default 30)")
    p.add_argument("--optimizer", default="adam", choices=OPTIMIZERS, help="default adam")
    p.add_argument("--lr", type=float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default 0)")
    p.add_argument("--nesterov", action="store_true", help="Nesterov momentum (SGD)")
    p.add_argument("--weight-decay", type=float, default=0.0, help="L2 weight decay (default 0)")
    p.add_argument("--schedule", default="none", choices=SCHEDULES, help="learning-rate schedule")
    p.add_argument("--step-size", type=int, default=10, help="step schedule: epochs per step")
    p.add_argument("--gamma", type=float, default=0.1, help="step schedule: factor per step")
    p.add_argument("--batch-size", type=int, default=64, help="default 64")
    p.add_argument(
        "--validation-split", type=float, default=0.1, help="share of training rows (0.1)"
    )
    p.add_argument("--test-size", type=float, default=0.25, help="held-out test share (0.25)")
    p.add_argument("--patience", type=int, help="stop after this many epochs without progress")
    p.add_argument("--seed", type=int, default=0, help="seed for weights, split, shuffling")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--out", default="model.npz", help="model file to write (model.npz)")
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
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run_evaluate)

    p = sub.add_parser(
        "predict",
        help="predict the classes of new rows",
        description="Predict every row of FILE (CSV with the model's feature columns, or "
        "NPZ with X) and write CSV: the predicted class and each class's probability.",
    )
    p.add_argument("model", metavar="MODEL", help="model file from glassnet train")
    p.add_argument("file", metavar="FILE", help="rows to predict (.csv or .npz)")
    p.add_argument("-o", "--output", metavar="OUT", help="write the CSV here (default: stdout)")
    p.set_defaults(func=run_predict)


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


def _check_training_fits(sizes: list[int], args: argparse.Namespace) -> None:
    """Refuse, before allocating, a network whose training would not fit in memory:
    weights, gradients, optimiser state and scratch (about 6 copies of the parameters)
    and a batch's activations forward and backward (about 4 per unit)."""
    from itertools import pairwise

    from glassnet.limits import check_fits

    params = sum(a * b + b for a, b in pairwise(sizes))
    itemsize = 4 if args.dtype == "float32" else 8
    batch = max(1, min(args.batch_size, 1 << 20))
    check_fits(itemsize * (6 * params + 4 * batch * sum(sizes)), "training", field="--layers")


def _default_checkpoint(out: str) -> str:
    p = Path(out)
    stem = p.name[: -len(".npz")] if p.name.endswith(".npz") else p.name
    return str(p.with_name(f"{stem}.ckpt.npz"))


def _make_optimizer(args: argparse.Namespace, epochs: int):  # -> Optimizer
    from glassnet import optim

    schedule: optim.Schedule | None = None
    if args.schedule == "step":
        schedule = optim.StepLR(args.step_size, args.gamma)
    elif args.schedule == "cosine":
        schedule = optim.CosineLR(epochs)
    options: dict[str, Any] = {"lr": args.lr, "weight_decay": args.weight_decay}
    if args.optimizer == "sgd":
        options.update(momentum=args.momentum, nesterov=args.nesterov)
    elif args.momentum or args.nesterov:
        raise GlassnetError(
            "expected --momentum/--nesterov only with --optimizer sgd",
            got=args.optimizer,
            field="--momentum",
        )
    return optim.get_optimizer(args.optimizer, schedule=schedule, **options)


def _same_source(a: str, b: str) -> bool:
    if a == b:
        return True
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


# -- train ---------------------------------------------------------------------------------
def run_train(args: argparse.Namespace) -> int:
    from glassnet import io
    from glassnet.data import load_dataset
    from glassnet.network import mlp
    from glassnet.training import Checkpoint, ProgressBar, evaluate

    for flag in ("out", "checkpoint", "plot"):
        _check_writable(getattr(args, flag), f"--{flag}")
    if args.plot and not args.plot.lower().endswith(".png"):
        raise GlassnetError("expected a .png file name", got=repr(args.plot), field="--plot")
    ckpt_path = args.checkpoint or _default_checkpoint(args.out)
    if isinstance(args.epochs, int) and args.epochs < 1:
        raise GlassnetError("expected a whole number ≥ 1", got=str(args.epochs), field="--epochs")

    if args.seed < 0:
        raise GlassnetError("expected a whole number ≥ 0", got=str(args.seed), field="--seed")
    if args.resume:
        saved, _ = _load_model(args.resume)
        net, settings = saved.network, saved.info.get("train")
        if net.train_state is None or not isinstance(settings, dict):
            raise GlassnetError(
                "expected a checkpoint written by glassnet train",
                got="a model without training state",
                file=args.resume,
            )
        source = settings["data"]
        if args.data and not _same_source(args.data, source):
            raise GlassnetError(
                f"expected the checkpoint's data ({source})", got=repr(args.data), field="--data"
            )
        done = net.train_state.epoch
        if args.epochs <= done:
            raise GlassnetError(
                f"expected --epochs above the {done} epochs the checkpoint has done",
                got=str(args.epochs),
                field="--epochs",
            )
        ds = load_dataset(
            source, label=settings["label"], test_size=settings["test_size"], seed=settings["seed"]
        )
        info, remaining = saved.info, args.epochs - done
    else:
        if not args.data:
            raise GlassnetError("expected --data (or --resume CKPT)", got="nothing", field="--data")
        hidden = _parse_layers(args.layers)
        ds = load_dataset(args.data, label=args.label, test_size=args.test_size, seed=args.seed)
        _check_training_fits([ds.n_features, *hidden, ds.n_classes], args)
        net = mlp(
            [ds.n_features, *hidden, ds.n_classes],
            hidden=args.activation,
            output="softmax",
            init=args.init,
            seed=args.seed,
            dtype=args.dtype,
        )
        from glassnet.training import TrainState, shuffle_rng

        net.train_state = TrainState(
            optimizer=_make_optimizer(args, args.epochs),
            loss="cross_entropy",
            seed=args.seed,
            rng=shuffle_rng(args.seed),
        )
        settings = {
            "data": args.data,
            "label": ds.label if ds.label != "target" else None,
            "test_size": args.test_size,
            "seed": args.seed,
            "batch_size": args.batch_size,
            "validation_split": args.validation_split,
            "patience": args.patience,
        }
        info = {
            "train": settings,
            "classes": ds.classes,
            "feature_names": ds.feature_names,
            "label": ds.label,
            "data_name": ds.name,
        }
        remaining = args.epochs
    extras = {"input_mean": ds.mean, "input_scale": ds.scale}

    callbacks: list[Any] = [Checkpoint(ckpt_path, info=info, extras=extras)]
    if not args.no_progress and not args.json:
        callbacks.append(ProgressBar())
    start = time.perf_counter()
    try:
        net.fit(
            ds.X_train,
            ds.y_train,
            epochs=remaining,
            batch_size=settings["batch_size"],
            validation_split=settings["validation_split"],
            patience=settings["patience"],
            callbacks=callbacks,
        )
    except GlassnetError as err:
        if err.field == "loss" and os.path.exists(ckpt_path):  # diverged: say what is kept
            raise GlassnetError(
                f"{err.expected}; {ckpt_path} holds epoch {net.train_state.epoch}",
                got=err.got,
                field="loss",
            ) from None
        raise
    except KeyboardInterrupt:
        print(
            f"glassnet: interrupted; continue with --resume {ckpt_path} "
            f"(epoch {net.train_state.epoch} saved there)",
            file=sys.stderr,
        )
        return 130
    seconds = time.perf_counter() - start
    test = evaluate(net, ds.X_test, ds.y_test)
    io.save(net, args.out, info=info, extras=extras)
    if not args.checkpoint and os.path.exists(ckpt_path) and not _same_source(ckpt_path, args.out):
        os.unlink(ckpt_path)  # the model file holds the same state; a default checkpoint goes
    history = net.train_state.history
    if args.plot:
        plot_history(history, args.plot, title=f"{ds.name}: {'-'.join(map(str, net.sizes))}")
    summary = {
        "data": ds.name,
        "sizes": net.sizes,
        "optimizer": net.train_state.optimizer.config(),
        "epochs": net.train_state.epoch,
        "train_rows": int(ds.X_train.shape[0]),
        "test_rows": int(ds.X_test.shape[0]),
        "seconds": seconds,
        "last_epoch": history.last(),
        "test_loss": test["loss"],
        "test_accuracy": test["accuracy"],
        "model": args.out,
        "plot": args.plot,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        _print_summary(summary)
    return 0


def _print_summary(s: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"trained {s['data']} ({'-'.join(map(str, s['sizes']))})")
    table.add_column("")
    table.add_column("loss", justify="right")
    table.add_column("accuracy", justify="right")
    last = s["last_epoch"]
    table.add_row(
        "train (last epoch)", f"{last['loss']:.4f}", f"{last.get('accuracy', math.nan):.4f}"
    )
    if "val_loss" in last:
        table.add_row("validation", f"{last['val_loss']:.4f}", f"{last['val_accuracy']:.4f}")
    table.add_row(
        f"test ({s['test_rows']} rows)", f"{s['test_loss']:.4f}", f"{s['test_accuracy']:.4f}"
    )
    console = Console()
    console.print(table)
    console.print(
        f"{s['epochs']} epochs, {s['optimizer']['name']} lr {s['optimizer']['lr']:g}, "
        f"{s['seconds']:.2f} s; model saved to {s['model']}"
        + (f"; curves in {s['plot']}" if s["plot"] else "")
    )


def plot_history(history: Any, path: str, *, title: str = "") -> None:
    """Loss and accuracy per epoch (train and validation) as a PNG, written atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h = history.history
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key in zip(axes, ("loss", "accuracy"), strict=True):
        for name, style in ((key, "-"), (f"val_{key}", "--")):
            if name in h:
                label = name.replace("val_", "validation ") if name != key else f"train {key}"
                ax.plot(history.epoch, h[name], style, label=label)
        ax.set_xlabel("epoch")
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


# -- evaluate and predict ------------------------------------------------------------------------
def _load_model(path: str):  # -> (Saved, info)
    from glassnet import io

    saved = io.load_saved(path)
    info = saved.info
    if not {"input_mean", "input_scale"} <= set(saved.extras) or "classes" not in info:
        raise GlassnetError(
            "expected a model written by glassnet train (with its classes and scaling)",
            got="a model without them",
            file=path,
        )
    _check_info(saved, path)
    return saved, info


def _check_info(saved: Any, path: str) -> None:
    """The model file's description of its data is free JSON: check every part the
    commands use, so a damaged or hand-made file is refused, not half-used."""
    import numpy as np

    net, info = saved.network, saved.info

    def bad(expected: str, got: Any, field: str) -> GlassnetError:
        return GlassnetError(expected, got=repr(got)[:60], file=path, field=field)

    classes = info.get("classes")
    if (
        not isinstance(classes, list)
        or len(classes) != net.sizes[-1]
        or not all(isinstance(c, str | int) and not isinstance(c, bool) for c in classes)
    ):
        raise bad(f"expected {net.sizes[-1]} class names (one per output)", classes, "classes")
    n_in = net.sizes[0]
    names = info.get("feature_names")
    if names is not None and (
        not isinstance(names, list)
        or len(names) != n_in
        or not all(isinstance(n, str) for n in names)
    ):
        raise bad(f"expected {n_in} feature names", names, "feature_names")
    if not isinstance(info.get("label"), str | None):
        raise bad("expected a column name or null", info.get("label"), "label")
    for key in ("input_mean", "input_scale"):
        a = saved.extras[key]
        if a.shape != (n_in,):
            raise bad(f"expected {n_in} numbers (one per input)", f"shape {a.shape}", key)
    if not (saved.extras["input_scale"] > 0).all():
        raise bad("expected positive spreads", "zero or negative", "input_scale")
    settings = info.get("train")
    if settings is None:
        return
    ok = (
        isinstance(settings, dict)
        and isinstance(settings.get("data"), str)
        and isinstance(settings.get("label"), str | None)
        and isinstance(settings.get("test_size"), float)
        and 0 < settings["test_size"] < 1
        and isinstance(settings.get("seed"), int)
        and not isinstance(settings["seed"], bool)
        and settings["seed"] >= 0
        and isinstance(settings.get("batch_size"), int)
        and settings["batch_size"] >= 1
        and isinstance(settings.get("validation_split"), int | float)
        and 0 <= settings["validation_split"] < 1
        and isinstance(settings.get("patience"), int | None)
        and (settings["patience"] is None or settings["patience"] >= 1)
        and np.isfinite(settings["validation_split"])
    )
    if not ok:
        raise bad(
            "expected the training settings {data, label, test_size, seed, batch_size, "
            "validation_split, patience}",
            settings,
            "train",
        )


def _encode(raw: Any, classes: list[Any], file: str) -> Any:
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


def _scaled(saved: Any, X: Any, file: str) -> Any:
    from glassnet.data import standardize

    mean = saved.extras["input_mean"]
    if X.shape[1] != mean.shape[0]:
        raise GlassnetError(
            f"expected {mean.shape[0]} feature columns (as the model was trained on)",
            got=str(X.shape[1]),
            file=file,
        )
    return standardize(X, mean, saved.extras["input_scale"])


def run_evaluate(args: argparse.Namespace) -> int:
    import numpy as np

    from glassnet.data import load_dataset, read_table
    from glassnet.training import confusion_matrix, evaluate, predict

    saved, info = _load_model(args.model)
    net, classes = saved.network, info["classes"]
    settings = info.get("train", {})
    source = args.data or settings.get("data")
    if not source:
        raise GlassnetError("expected --data", got="nothing", field="--data")
    if settings and _same_source(source, settings["data"]):
        ds = load_dataset(
            settings["data"],
            label=settings.get("label"),
            test_size=settings["test_size"],
            seed=settings["seed"],
        )
        X, y, part = ds.X_test, ds.y_test, "test part"
    else:
        X_raw, raw, _, _ = read_table(source, label=args.label or info.get("label"))
        X, y, part = _scaled(saved, X_raw, source), _encode(raw, classes, source), "all rows"
    scores = evaluate(net, X, y)
    pred = predict(net, X)
    k = len(classes)
    cm = confusion_matrix(y, pred, k)
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.diag(cm) / cm.sum(axis=0)
        recall = np.diag(cm) / cm.sum(axis=1)
    result = {
        "accuracy": scores["accuracy"],
        "loss": scores["loss"],
        "n": int(X.shape[0]),
        "data": source,
        "part": part,
        "classes": classes,
        "precision": [None if math.isnan(v) else float(v) for v in precision],
        "recall": [None if math.isnan(v) else float(v) for v in recall],
        "confusion_matrix": cm.tolist(),
    }
    if args.json:
        print(json.dumps(result))
        return 0
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"{source} ({part}, {result['n']} rows): accuracy {result['accuracy']:.4f}, "
        f"loss {result['loss']:.4f}"
    )
    per_class = Table(title="per class")
    for col in ("class", "precision", "recall", "support"):
        per_class.add_column(col, justify="right" if col != "class" else "left")
    for c, pr, rc, sup in zip(classes, precision, recall, cm.sum(axis=1), strict=True):
        per_class.add_row(str(c), f"{pr:.3f}", f"{rc:.3f}", str(int(sup)))
    console.print(per_class)
    matrix = Table(title="confusion matrix (rows: true class, columns: predicted)")
    matrix.add_column("")
    for c in classes:
        matrix.add_column(str(c), justify="right")
    for c, row in zip(classes, cm, strict=True):
        matrix.add_row(str(c), *(str(int(v)) for v in row))
    console.print(matrix)
    return 0


def run_predict(args: argparse.Namespace) -> int:
    import csv
    import io as stdio

    from glassnet.data import read_table

    saved, info = _load_model(args.model)
    if args.output:
        _check_writable(args.output, "--output")
    X_raw, _, names, _ = read_table(args.file, label=info.get("label"), need_label=False)
    expected = info.get("feature_names")
    if args.file.lower().endswith(".csv") and expected and names != expected:
        raise GlassnetError(
            f"expected the columns the model was trained on ({', '.join(expected[:5])}, ...)",
            got=", ".join(names[:5]) + (", ..." if len(names) > 5 else ""),
            file=args.file,
        )
    X = _scaled(saved, X_raw, args.file)
    proba = saved.network.predict_proba(X)
    classes = info["classes"]
    buf = stdio.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["prediction", *(f"p_{c}" for c in classes)])
    for row in proba:
        writer.writerow([classes[int(row.argmax())], *(f"{v:.6g}" for v in row)])
    if args.output:
        atomic_write_text(args.output, buf.getvalue(), field="-o")
    else:
        sys.stdout.write(buf.getvalue())
    return 0
