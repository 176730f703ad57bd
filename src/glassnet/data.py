"""Data sets for training: scikit-learn's bundled ones, CSV files and NPZ files.

Every loader returns a :class:`Dataset` split into a training and a test part by a
stratified, seeded split (each class keeps its share in both parts), then
standardised with the mean and spread of the *training* part only (the test part
never leaks into it).  The same name, seed and test size always give the same split,
so ``glassnet evaluate`` scores exactly the samples ``glassnet train`` never saw.

Labels are encoded as class indices 0..K−1; ``classes[k]`` is the original label.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.limits import MAX_CLASSES

if TYPE_CHECKING:
    from glassnet.preprocess import Preprocessing

Array = np.ndarray

BUNDLED: tuple[str, ...] = ("digits", "iris", "wine", "breast_cancer")
TASKS: tuple[str, ...] = ("auto", "classification", "regression")
#: ``--task auto`` takes a numeric target with fractional values and more distinct
#: values than this for regression.
AUTO_REGRESSION_DISTINCT = 10


@dataclass
class Dataset:
    """A labelled data set, split and standardised.  X are (n, n_features) float64.

    For classification y are class indices and ``classes`` their labels; for regression
    y are float64 targets and ``classes`` is empty."""

    name: str
    X_train: Array
    y_train: Array
    X_test: Array
    y_test: Array
    classes: list[Any]
    feature_names: list[str]
    #: Standardisation fitted on the training part: x_std = (x − mean) / scale.
    mean: Array
    scale: Array
    label: str | None = None
    #: The same rows before standardisation (what a model with its preprocessing takes).
    X_train_raw: Array | None = None
    X_test_raw: Array | None = None
    task: Literal["classification", "regression"] = "classification"
    #: Raw rows -> network inputs (fitted on the training part); stored in the model.
    preprocessing: Preprocessing | None = None
    #: One line saying why ``task`` was chosen, when ``--task auto`` chose regression.
    task_note: str | None = None

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_outputs(self) -> int:
        """Output units: one per class, or one for a regression target."""
        return 1 if self.task == "regression" else len(self.classes)


# -- splitting and scaling -----------------------------------------------------------------
def stratified_split(labels: Array, test_size: float, seed: int) -> tuple[Array, Array]:
    """(train, test) row indices, sorted.  Each class gives round(n_c · test_size) rows
    (at least one when it has two or more) to the test part, chosen by a seeded shuffle."""
    if not 0 < test_size < 1:
        raise GlassnetError("expected a fraction in (0, 1)", got=repr(test_size), field="test_size")
    rng = np.random.default_rng(seed)
    test = []
    for c in np.unique(labels):
        rows = np.flatnonzero(labels == c)
        rows = rows[rng.permutation(rows.shape[0])]
        k = round(rows.shape[0] * test_size)
        if rows.shape[0] >= 2:
            k = min(max(k, 1), rows.shape[0] - 1)
        test.append(rows[:k])
    test_idx = np.sort(np.concatenate(test))
    train_idx = np.setdiff1d(np.arange(labels.shape[0]), test_idx)
    return train_idx, test_idx


def fit_standardize(X: Array) -> tuple[Array, Array]:
    """Mean and spread per feature; a constant feature gets spread 1 (centred, not blown up)."""
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale == 0] = 1.0
    return mean, scale


def encode_labels(y: Array, field: str = "label") -> tuple[Array, list[Any]]:
    """Class indices 0..K−1 and the sorted distinct labels they stand for."""
    if y.shape[0] == 0:
        raise GlassnetError("expected at least one row", got="an empty data set", field=field)
    classes, codes = np.unique(y, return_inverse=True)
    if classes.shape[0] < 2:
        raise GlassnetError(
            "expected at least two classes", got=f"only {classes.tolist()!r}", field=field
        )
    return codes.astype(np.int64), classes.tolist()


def check_classes(codes: Array, classes: list[Any], field: str = "label") -> None:
    """Refuse labels that cannot be a classification task: more than
    :data:`MAX_CLASSES` classes, or a class with fewer than 2 rows (it could not be in
    both the training and the test part)."""
    hint = "; for a numeric target use --task regression"
    if len(classes) > MAX_CLASSES:
        raise GlassnetError(
            f"expected at most {MAX_CLASSES} classes{hint}",
            got=f"{len(classes)} distinct labels",
            field=field,
        )
    counts = np.bincount(codes, minlength=len(classes))
    rare = [str(classes[k]) for k in np.flatnonzero(counts < 2)]
    if rare:
        raise GlassnetError(
            f"expected at least 2 rows of each class (merge or drop rare classes{hint})",
            got=f"{len(rare)} class(es) with one row: {', '.join(rare[:5])}",
            field=field,
        )


def numeric_targets(y: Array, field: str = "label") -> Array | None:
    """y as float64 when every value is a number (None when some are text)."""
    if y.dtype.kind in "biuf":
        return y.astype(np.float64)
    try:
        return np.asarray(y, dtype=np.float64)
    except ValueError:
        return None


def resolve_task(
    y: Array, task: str, field: str = "label"
) -> tuple[Literal["classification", "regression"], str | None]:
    """The task for targets ``y`` and a one-line note when ``auto`` picked regression:
    a numeric target with fractional values and more than
    :data:`AUTO_REGRESSION_DISTINCT` distinct values."""
    if task not in TASKS:
        raise GlassnetError(f"expected one of {', '.join(TASKS)}", got=repr(task), field="--task")
    if task == "classification":
        return "classification", None
    values = numeric_targets(y, field)
    if task == "regression":
        if values is None:
            raise GlassnetError(
                "expected numbers in the target column for regression",
                got="text values",
                field=field,
            )
        return "regression", None
    if values is None or values.size == 0:
        return "classification", None
    distinct = np.unique(values).shape[0]
    fractional = bool((values != np.round(values)).any())
    if fractional and distinct > AUTO_REGRESSION_DISTINCT:
        note = (
            f"task: regression ({field} has {distinct} distinct numeric values, not all "
            "whole; --task classification to override)"
        )
        return "regression", note
    return "classification", None


def random_split(n: int, test_size: float, seed: int) -> tuple[Array, Array]:
    """(train, test) row indices, sorted: a seeded shuffle, round(n · test_size) rows
    (at least one, leaving at least one) for the test part (regression's split)."""
    if not 0 < test_size < 1:
        raise GlassnetError("expected a fraction in (0, 1)", got=repr(test_size), field="test_size")
    if n < 2:
        raise GlassnetError("expected at least 2 rows", got=f"{n}", field="data")
    k = min(max(round(n * test_size), 1), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[k:]), np.sort(perm[:k])


def _finish(
    name: str,
    X: Array,
    y_raw: Array,
    feature_names: list[str],
    *,
    label: str | None,
    test_size: float,
    seed: int,
    file: str | None = None,
    task: str = "auto",
    impute: str | None = None,
    handle_unknown: Literal["error", "ignore"] = "error",
    first_line: int = 2,
) -> Dataset:
    from glassnet.preprocess import Preprocessing

    field = label or "label"
    table = X.dtype == object or impute is not None
    try:
        from glassnet.training import check_finite

        if table:  # cells checked (kinds, IDs, missing values) before the labels
            Preprocessing.fit(
                X, feature_names, np.arange(X.shape[0]), impute=impute, first_line=first_line
            )
        else:
            check_finite(X, "features")
        kind, note = resolve_task(y_raw, task, field)
        if kind == "regression":
            targets = numeric_targets(y_raw, field)
            assert targets is not None  # resolve_task checked
            check_finite(targets, field)
            train_idx, test_idx = random_split(X.shape[0], test_size, seed)
            y: Array = targets
            classes: list[Any] = []
        else:
            y, classes = encode_labels(y_raw, field)
            check_classes(y, classes, field)
            train_idx, test_idx = stratified_split(y, test_size, seed)
        if table:
            pre = Preprocessing.fit(
                X,
                feature_names,
                train_idx,
                impute=impute,
                handle_unknown=handle_unknown,
                first_line=first_line,
            )
        else:
            mean, scale = fit_standardize(X[train_idx])
            pre = Preprocessing(mean, scale, feature_names)
        X_train, X_test = pre.transform(X[train_idx]), pre.transform(X[test_idx])
    except GlassnetError as err:
        raise err.with_file(file) if file else err from None
    return Dataset(
        name=name,
        X_train=X_train,
        y_train=y[train_idx],
        X_test=X_test,
        y_test=y[test_idx],
        preprocessing=pre,
        task=kind,
        task_note=note,
        classes=classes,
        feature_names=feature_names,
        mean=pre.mean,
        scale=pre.scale,
        label=label,
        X_train_raw=X[train_idx],
        X_test_raw=X[test_idx],
    )


# -- loaders -----------------------------------------------------------------------------------
def load_dataset(
    source: str,
    *,
    label: str | None = None,
    test_size: float = 0.25,
    seed: int = 0,
    task: str = "auto",
    features: list[str] | None = None,
    drop: list[str] | None = None,
    impute: str | None = None,
    handle_unknown: Literal["error", "ignore"] = "error",
    header: bool = True,
) -> Dataset:
    """A bundled data set by name (``digits``, ``iris``, ``wine``, ``breast_cancer``),
    or a ``.csv`` file (label column ``label``, default the last) or ``.npz`` (X, y).

    ``task``: ``classification``, ``regression``, or ``auto`` (regression for a numeric
    target with fractional values and many distinct values; see :func:`resolve_task`).
    ``features``/``drop`` choose columns; ``impute`` (mean, median, most_frequent) fills
    missing cells; text columns are one-hot encoded (see :mod:`glassnet.preprocess`)."""
    if source in BUNDLED:
        return load_bundled(source, test_size=test_size, seed=seed, task=task)
    X, y, names, label = read_table(
        source, label=label, features=features, drop=drop, header=header
    )
    return _finish(
        Path(source).name,
        X,
        y,
        names,
        label=label,
        test_size=test_size,
        seed=seed,
        file=source,
        task=task,
        impute=impute,
        handle_unknown=handle_unknown,
        first_line=2 if header else 1,
    )


def load_bundled(
    name: str, *, test_size: float = 0.25, seed: int = 0, task: str = "auto"
) -> Dataset:
    """One of scikit-learn's bundled data sets (needs scikit-learn: the ``train`` extra)."""
    if name not in BUNDLED:
        raise GlassnetError(f"expected one of {', '.join(BUNDLED)}", got=repr(name), field="data")
    try:
        from sklearn import datasets
    except ImportError:
        raise GlassnetError(
            "expected scikit-learn for the bundled data sets (pip install 'glassnet[train]')",
            got="no scikit-learn",
            field="data",
        ) from None
    bunch = getattr(datasets, f"load_{name}")()
    names = [str(n) for n in bunch.feature_names]
    target_names = [str(t) for t in bunch.target_names]
    ds = _finish(
        name,
        np.asarray(bunch.data, dtype=np.float64),
        bunch.target,
        names,
        label="target",
        test_size=test_size,
        seed=seed,
        task=task,
    )
    if ds.task == "classification":
        ds.classes = [target_names[int(c)] for c in ds.classes]
    return ds


def read_table(
    path: str,
    *,
    label: str | None = None,
    need_label: bool = True,
    features: list[str] | None = None,
    drop: list[str] | None = None,
    header: bool = True,
) -> tuple[Array, Array, list[str], str | None]:
    """Features X (n, d), raw labels (n,) (empty if none), feature names and the label's
    name, from a CSV (header row, or ``header=False``: columns x1, x2, ...; label column
    by name; ``features`` keeps only these columns, ``drop`` leaves these out) or NPZ
    (X, y) file.  X is float64 when every cell is a number, else the cells as text
    (an object array) for the model's preprocessing to impute and encode."""
    p = Path(path)
    if not p.is_file():
        got = "a folder" if p.is_dir() else "no such file" if not p.exists() else "not a file"
        raise GlassnetError("expected a data file (.csv or .npz)", got=got, file=path)
    if p.suffix.lower() == ".npz":
        return _read_npz(p, need_label)
    if p.suffix.lower() == ".csv":
        return _read_csv(p, label, need_label, features=features, drop=drop, header=header)
    raise GlassnetError(
        f"expected a bundled data set ({', '.join(BUNDLED)}), a .csv or a .npz file",
        got=repr(path),
        field="data",
    )


def _read_npz(p: Path, need_label: bool) -> tuple[Array, Array, list[str], str | None]:
    from glassnet.npz import NpzReader

    try:
        # Shapes and dtypes are checked from the headers, before any data is read.
        with NpzReader(p) as npz:
            keys = set(npz.headers)
            wanted = {"X", "y"} if need_label else {"X"}
            if not wanted <= keys:
                raise GlassnetError(f"expected arrays {sorted(wanted)}", got=f"{sorted(keys)}")
            shape, dtype, _ = npz.headers["X"]
            if dtype.kind not in "biuf" or len(shape) != 2 or shape[0] == 0:
                raise GlassnetError(
                    "expected X as a non-empty numeric table (rows × features)",
                    got=f"{dtype} shaped {shape}",
                    field="X",
                )
            if need_label:
                yshape, ydtype, _ = npz.headers["y"]
                if len(yshape) != 1 or yshape[0] != shape[0] or ydtype.kind not in "biufU":
                    raise GlassnetError(
                        f"expected y as {shape[0]} labels or numeric targets",
                        got=f"{ydtype} shaped {yshape}",
                        field="y",
                    )
            X = npz.read("X")
            y = npz.read("y") if "y" in keys else np.empty(0)
    except GlassnetError as err:
        raise err.with_file(str(p)) from None
    names = [f"x{i}" for i in range(X.shape[1])]
    return X.astype(np.float64), y, names, "y"


def _read_csv(
    p: Path,
    label: str | None,
    need_label: bool,
    *,
    features: list[str] | None = None,
    drop: list[str] | None = None,
    header: bool = True,
) -> tuple[Array, Array, list[str], str | None]:
    try:
        with p.open(newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise GlassnetError("expected a UTF-8 CSV file", got=str(err), file=str(p)) from None
    lines = [i for i, r in enumerate(rows, start=1) if r and any(cell.strip() for cell in r)]
    rows = [rows[i - 1] for i in lines]
    if not header:
        width = len(rows[0]) if rows else 0
        rows.insert(0, [f"x{j + 1}" for j in range(width)])
        lines.insert(0, 0)
    if len(rows) < 2:
        raise GlassnetError(
            "expected a header row and at least one data row",
            got=f"{len(rows)} row(s)",
            file=str(p),
        )
    head = [h.strip() for h in rows[0]]
    if label is None and need_label:
        label = head[-1]
    if label is not None and label not in head:
        if need_label:
            raise GlassnetError(
                "expected the label column in the header",
                got=repr(label),
                file=str(p),
                field="--label",
            )
        label = None
    for flag, wanted in (("--features", features), ("--drop", drop)):
        unknown = [c for c in wanted or [] if c not in head]
        if unknown:
            raise GlassnetError(
                f"expected columns of the header ({', '.join(head[:8])}"
                f"{', ...' if len(head) > 8 else ''})",
                got=", ".join(unknown),
                file=str(p),
                field=flag,
            )
    li = head.index(label) if label is not None else None
    keep = [i for i, h in enumerate(head) if i != li and h not in (drop or [])]
    if features:
        keep = [head.index(c) for c in features if head.index(c) != li]
    names = [head[i] for i in keep]
    if not names:
        raise GlassnetError("expected at least one feature column", got="none", file=str(p))
    cells = np.empty((len(rows) - 1, len(keep)), dtype=object)
    y = []
    for r, row in enumerate(rows[1:]):
        if len(row) != len(head):
            raise GlassnetError(
                f"expected {len(head)} values (as in the header)",
                got=f"{len(row)} on line {lines[r + 1]}",
                file=str(p),
            )
        for c, i in enumerate(keep):
            cells[r, c] = row[i].strip()
        if li is not None:
            y.append(row[li].strip())
    labels = np.asarray(y)
    if labels.size and all(_is_int(v) for v in y):
        labels = labels.astype(np.int64)
    return _numbers_if_all(cells, names, lines[1:], p), labels, names, label


def _numbers_if_all(cells: Array, names: list[str], lines: list[int], p: Path) -> Array:
    """The cells as float64 when every one is a number; a cell that is a number but not
    finite is refused (naming its line); otherwise the text cells as they are (for the
    model's preprocessing: missing values, text columns)."""
    X = np.empty(cells.shape)
    numeric = True
    for (r, c), cell in np.ndenumerate(cells):
        try:
            v = float(cell)
        except ValueError:
            numeric = False
            continue
        if math.isnan(v) and cell.strip().lower() == "nan":
            numeric = False  # written "nan": a missing value
            continue
        if not math.isfinite(v):
            raise GlassnetError(
                "expected a finite number",
                got=f"{cell!r} on line {lines[r]}",
                file=str(p),
                field=names[c],
            )
        X[r, c] = v
    return X if numeric else cells


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True
