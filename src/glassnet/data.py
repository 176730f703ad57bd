"""Data sets for training: scikit-learn's bundled ones, CSV files and NPZ files.

Every loader returns a :class:`Dataset` split into a training and a test part by a
stratified, seeded split (each class keeps its share in both parts), then
standardised with the mean and spread of the *training* part only (the test part
never leaks into it).  The same name, seed and test size always give the same split,
so ``glassnet evaluate`` scores exactly the samples ``glassnet train`` never saw.

Labels are encoded as class indices 0..K−1; ``classes[k]`` is the original label.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.limits import MAX_CLASSES
from glassnet.rawtable import RawTable, TextCells

if TYPE_CHECKING:
    from glassnet.preprocess import Preprocessing

Array = np.ndarray

BUNDLED: tuple[str, ...] = ("digits", "iris", "wine", "breast_cancer")
#: The bundled sets whose rows are images, read row by row: their (C, H, W).
BUNDLED_IMAGES: dict[str, tuple[int, int, int]] = {"digits": (1, 8, 8)}
TASKS: tuple[str, ...] = ("auto", "classification", "regression")
#: ``--task auto`` takes a numeric target with fractional values and more distinct
#: values than this for regression.
AUTO_REGRESSION_DISTINCT = 10
#: ... and a whole-number target with more distinct values than this (51 distinct
#: "days" are a quantity, not 51 classes) ...
AUTO_REGRESSION_WHOLE = 20
#: ... or with more than AUTO_REGRESSION_DISTINCT distinct values that are more than this
#: share of the rows (few rows per value: a count, not a class).
AUTO_REGRESSION_SHARE = 0.05


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
    X_train_raw: Array | RawTable | None = None
    X_test_raw: Array | RawTable | None = None
    task: Literal["classification", "regression"] = "classification"
    #: Raw rows -> network inputs (fitted on the training part); stored in the model.
    preprocessing: Preprocessing | None = None
    #: One line saying which task ``--task auto`` chose and why (None: the task was given).
    task_note: str | None = None
    #: What loading did that a person should hear about: rows dropped, cells coerced.
    notes: list[str] = field(default_factory=list)
    #: What the file held (see :func:`fingerprint`), so a run on it can tell it changed.
    fingerprint: dict[str, Any] | None = None
    #: Columns left out for having one value in every row, or none (predict ignores them).
    dropped: list[str] = field(default_factory=list)
    #: (channels, height, width) when each row is an image read row by row (the bundled
    #: digits: (1, 8, 8); an .npz whose X is (N, C, H, W) or (N, H, W)); None for a table.
    image_shape: tuple[int, int, int] | None = None

    @property
    def n_features(self) -> int:
        return int(self.X_train.shape[1])

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def n_outputs(self) -> int:
        """Output units: one per class, or one per regression target."""
        if self.task == "regression":
            return int(self.y_train.shape[1]) if self.y_train.ndim == 2 else 1
        return len(self.classes)


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


def check_classes(
    codes: Array, classes: list[Any], field: str = "label", *, said: bool = False
) -> None:
    """Refuse labels that cannot be a classification task: more than
    :data:`MAX_CLASSES` classes (unless ``said``: ``--task classification`` asked for
    it), or a class with fewer than 2 rows (it could not be in both the training and the
    test part)."""
    hint = "; for a numeric target use --task regression"
    if len(classes) > MAX_CLASSES and not said:
        raise GlassnetError(
            f"expected at most {MAX_CLASSES} classes (--task classification allows more){hint}",
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
    """The task for targets ``y`` and, for ``auto``, one line saying which and why.

    ``auto`` picks regression for a numeric target with more than
    :data:`AUTO_REGRESSION_DISTINCT` distinct values that are not all whole, or whole
    numbers with more than :data:`AUTO_REGRESSION_WHOLE` distinct values (or more than
    :data:`AUTO_REGRESSION_DISTINCT` that are over :data:`AUTO_REGRESSION_SHARE` of the
    rows); classification otherwise (text, or few distinct values).

    >>> resolve_task(np.arange(100) % 51, "auto")[1]
    'task: regression (label has 51 distinct whole numbers; --task classification to override)'
    """
    if task not in TASKS:
        raise GlassnetError(f"expected one of {', '.join(TASKS)}", got=repr(task), field="--task")
    if np.ndim(y) == 2:  # several target columns: regression, one output each
        if task == "classification":
            raise GlassnetError(
                "expected one label column for classification",
                got=f"{np.shape(y)[1]} ({field})",
                field="--task",
            )
        note = None if task == "regression" else f"task: regression ({np.shape(y)[1]} targets)"
        return "regression", note
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
        return "classification", None  # text: nothing else it could be
    distinct, counts = np.unique(values, return_counts=True)
    return task_from_values(distinct, counts, field)


def task_from_values(
    distinct: Array | None, counts: Array, field: str = "label"
) -> tuple[Literal["classification", "regression"], str | None]:
    """``--task auto``'s choice (see :func:`resolve_task`) from the label's distinct
    values (float64, None when some are text) and each one's count — all the rule
    reads, so a file read in batches (:mod:`glassnet.stream`) chooses as in memory."""
    if distinct is None or distinct.size == 0:
        return "classification", None
    n_distinct, rows = int(distinct.shape[0]), int(np.sum(counts))
    fractional = bool((distinct != np.round(distinct)).any())
    if fractional and n_distinct > AUTO_REGRESSION_DISTINCT:
        note = (
            f"task: regression ({field} has {n_distinct} distinct numeric values, not all "
            "whole; --task classification to override)"
        )
        return "regression", note
    many = n_distinct > AUTO_REGRESSION_WHOLE or (
        n_distinct > AUTO_REGRESSION_DISTINCT and n_distinct > AUTO_REGRESSION_SHARE * rows
    )
    if not fractional and many:
        note = (
            f"task: regression ({field} has {n_distinct} distinct whole numbers; "
            "--task classification to override)"
        )
        return "regression", note
    kind = "numbers" if fractional else "whole numbers"
    return "classification", (
        f"task: classification ({field} has {n_distinct} distinct {kind}; "
        "--task regression to override)"
    )


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
    X: Array | RawTable,
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
    first_line: Any = 2,
    coerce: bool = False,
) -> Dataset:
    from glassnet.preprocess import Preprocessing

    field = label or "label"
    # cells to fill or encode: text, or NaN (a missing cell in a number column)
    table = (
        isinstance(X, RawTable)
        or X.dtype == object
        or impute is not None
        or bool(np.isnan(X).any())
    )
    try:
        from glassnet.training import check_finite

        if table:  # cells checked (kinds, IDs, missing values) before the labels
            Preprocessing.fit(
                X,
                feature_names,
                np.arange(X.shape[0]),
                impute=impute,
                first_line=first_line,
                coerce=coerce,
            )
        else:
            assert not isinstance(X, RawTable)  # a RawTable is always a table
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
            check_classes(y, classes, field, said=task == "classification")
            train_idx, test_idx = stratified_split(y, test_size, seed)
        if table:
            pre = Preprocessing.fit(
                X,
                feature_names,
                train_idx,
                impute=impute,
                handle_unknown=handle_unknown,
                first_line=first_line,
                coerce=coerce,
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
        notes=list(pre.notes),
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
    coerce: bool = False,
    drop_missing_labels: bool = False,
    sep: str | None = None,
    decimal: str | None = None,
    dates: str = "error",
) -> Dataset:
    """A bundled data set by name (``digits``, ``iris``, ``wine``, ``breast_cancer``),
    or a ``.csv`` file (label column ``label``, default the last) or ``.npz`` (X, y).

    ``task``: ``classification``, ``regression``, or ``auto`` (regression for a numeric
    target with fractional values and many distinct values; see :func:`resolve_task`).
    ``features``/``drop`` choose columns; ``impute`` (mean, median, most_frequent) fills
    missing cells; text columns are one-hot encoded (see :mod:`glassnet.preprocess`);
    ``coerce`` reads the few non-numbers of a number column as missing;
    ``drop_missing_labels`` drops rows without a label (else they are an error);
    ``sep``/``decimal`` say the CSV dialect (default: sniffed), ``dates`` what a date
    column becomes (see :mod:`glassnet.tables`).  Columns with one value in every row,
    or none at all, are left out with a note (``Dataset.dropped``)."""
    if source in BUNDLED:
        return load_bundled(source, test_size=test_size, seed=seed, task=task)
    table = read_rows(
        source,
        label=label,
        features=features,
        drop=drop,
        header=header,
        drop_missing_labels=drop_missing_labels,
        sep=sep,
        decimal=decimal,
        dates=dates,
    )
    from glassnet.preprocess import drop_constant

    dropped: list[str] = []
    if table.image_shape is not None:  # an image keeps every pixel, constant or not
        X, names = table.X, table.names
    else:
        X, names, dropped = drop_constant(table.X, table.names)
    if not names:
        raise GlassnetError(
            "expected a feature column that varies",
            got=f"only constant columns ({', '.join(dropped[:5])})",
            file=source,
        )
    ds = _finish(
        Path(source).name,
        X,
        table.labels,
        names,
        label=table.label,
        test_size=test_size,
        seed=seed,
        file=source,
        task=task,
        impute=impute,
        handle_unknown=handle_unknown,
        first_line=table.where,
        coerce=coerce,
    )
    if dropped:
        table.notes.append(
            f"left out {len(dropped)} column(s) with one value in every row or none: "
            + ", ".join(dropped[:10])
            + (", ..." if len(dropped) > 10 else "")
        )
    ds.notes[:0] = table.notes
    ds.fingerprint = table.fingerprint
    ds.dropped = dropped
    ds.image_shape = table.image_shape
    return ds


def load_bundled(
    name: str, *, test_size: float = 0.25, seed: int = 0, task: str = "auto"
) -> Dataset:
    """One of scikit-learn's bundled data sets (needs scikit-learn: the ``train`` extra)."""
    if name not in BUNDLED:
        raise GlassnetError(f"expected one of {', '.join(BUNDLED)}", got=repr(name), field="data")
    try:
        from sklearn import datasets
    except ImportError:
        from glassnet.extras import install_hint

        raise GlassnetError(
            f"expected scikit-learn for the bundled data sets ({install_hint('train')})",
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
    ds.image_shape = BUNDLED_IMAGES.get(name)
    return ds


@dataclass
class Table:
    """The rows of a data file: features X (n, d), raw labels (n,) (empty if none), the
    feature names, the label's name, the ``id_column``'s cells exactly as written (None
    when not asked for), notes for people, and the file's :func:`fingerprint`."""

    X: Array | RawTable
    labels: Array
    names: list[str]
    label: str | None
    ids: list[str] | None = None
    notes: list[str] = field(default_factory=list)
    fingerprint: dict[str, Any] | None = None
    #: The file line of the first data row (for messages naming lines).
    first_line: int = 2
    #: Each row's file line (a quoted cell may hold line breaks), looked up when a
    #: message needs one (:class:`glassnet.tables.FileLines`); None: not from a file.
    lines: Any = None
    #: (C, H, W) when X's rows are images flattened row by row (an .npz's 3-/4-D X).
    image_shape: tuple[int, int, int] | None = None

    @property
    def where(self) -> Any:
        """What messages name rows by: each row's line, or the first row's."""
        return self.lines if self.lines is not None else self.first_line


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
    (an object array) for the model's preprocessing to impute and encode.  See
    :func:`read_rows` for everything a file gives."""
    t = read_rows(
        path, label=label, need_label=need_label, features=features, drop=drop, header=header
    )
    return np.asarray(t.X), t.labels, t.names, t.label


def read_rows(
    path: str,
    *,
    label: str | None = None,
    need_label: bool = True,
    features: list[str] | None = None,
    drop: list[str] | None = None,
    header: bool = True,
    id_column: str | None = None,
    drop_missing_labels: bool = False,
    sep: str | None = None,
    decimal: str | None = None,
    dates: str = "error",
) -> Table:
    """:func:`read_table`'s rows as a :class:`Table` (a CSV read as
    :mod:`glassnet.tables` says: dialect, number columns, dates).  Labels: an empty (missing) label
    cell is an error naming its lines, or with ``drop_missing_labels`` its row is dropped
    (counted in ``notes``); labels that are all numbers are one class per value
    (``1``/``1.0``, ``0.0``/``-0.0``).  Duplicate column names are refused."""
    p = Path(path)
    if not p.is_file():
        got = "a folder" if p.is_dir() else "no such file" if not p.exists() else "not a file"
        import difflib

        close = difflib.get_close_matches(path, BUNDLED, n=1)  # --data irsi: iris
        hint = f"; did you mean {close[0]}?" if close and not p.exists() else ""
        raise GlassnetError(
            f"expected a data file (.csv or .npz) or a bundled set{hint}", got=got, file=path
        )
    if p.suffix.lower() == ".npz":
        return _read_npz(p, need_label)
    if p.suffix.lower() == ".csv":
        return _read_csv(
            p,
            label,
            need_label,
            features=features,
            drop=drop,
            header=header,
            id_column=id_column,
            drop_missing_labels=drop_missing_labels,
            sep=sep,
            decimal=decimal,
            dates=dates,
        )
    raise GlassnetError(
        f"expected a bundled data set ({', '.join(BUNDLED)}), a .csv or a .npz file",
        got=repr(path),
        field="data",
    )


def _read_npz(p: Path, need_label: bool) -> Table:
    from glassnet.npz import NpzReader

    try:
        # Shapes and dtypes are checked from the headers, before any data is read.
        with NpzReader(p) as npz:
            keys = set(npz.headers)
            wanted = {"X", "y"} if need_label else {"X"}
            if not wanted <= keys:
                raise GlassnetError(f"expected arrays {sorted(wanted)}", got=f"{sorted(keys)}")
            shape, dtype, _ = npz.headers["X"]
            if dtype.kind not in "biuf" or not 2 <= len(shape) <= 4 or 0 in shape:
                raise GlassnetError(
                    "expected X as a non-empty numeric table (rows × features) or images "
                    "(N, C, H, W) or (N, H, W)",
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
    # Images (N, C, H, W) — or (N, H, W), one channel — become rows read row by row
    # (channel, then height, then width: C-order), with their shape kept beside them.
    image: tuple[int, int, int] | None = None
    if X.ndim > 2:
        image = (1, *X.shape[1:]) if X.ndim == 3 else X.shape[1:]  # type: ignore[assignment]
        X = X.reshape(X.shape[0], -1)
    names = [f"x{i}" for i in range(X.shape[1])]
    stamp = {"sha256": _file_sha256(p), "rows": int(X.shape[0])}
    return Table(X.astype(np.float64), y, names, "y", fingerprint=stamp, image_shape=image)


def _read_csv(
    p: Path,
    label: str | None,
    need_label: bool,
    *,
    features: list[str] | None = None,
    drop: list[str] | None = None,
    header: bool = True,
    id_column: str | None = None,
    drop_missing_labels: bool = False,
    sep: str | None = None,
    decimal: str | None = None,
    dates: str = "error",
) -> Table:
    from glassnet.preprocess import Lines, is_missing, line_of
    from glassnet.tables import header_of, read_columns, sniff

    dialect = sniff(p, sep=sep, decimal=decimal)
    head, skip = header_of(p, dialect, header)
    if label is None and need_label:
        label = head[-1]
    targets = label_columns(label, head) if label is not None else []
    if label is not None and not targets:
        if need_label:
            raise GlassnetError(
                "expected the label column(s) in the header",
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
    keep = [h for h in head if h not in targets and h not in (drop or [])]
    if features:
        keep = [c for c in features if c not in targets]
    if not keep:
        raise GlassnetError("expected at least one feature column", got="none", file=str(p))
    if id_column is not None and id_column not in head:
        raise GlassnetError(
            "expected the --id-column in the header",
            got=repr(id_column),
            file=str(p),
            field="--id-column",
        )
    verbatim = [*targets, *([id_column] if id_column is not None else [])]
    cols = read_columns(p, dialect, head, skip, wanted=keep, verbatim=verbatim, dates=dates)
    n, first_line, notes = cols.n_rows, cols.first_line, list(cols.notes)
    rows = np.arange(n)
    labels = np.empty(0)
    if label is not None:
        by_column = [[c.strip() for c in cols.raw[t]] for t in targets]
        cells = by_column[0]
        if need_label:
            empty = sorted({r for col in by_column for r, c in enumerate(col) if is_missing(c)})
            if empty and not drop_missing_labels:
                where: Lines = cols.lines if cols.lines is not None else first_line
                shown = ", ".join(str(line_of(r, where)) for r in empty[:5])
                more = f" and {len(empty) - 5} more" if len(empty) > 5 else ""
                raise GlassnetError(
                    "expected a label in every row (fill them, or --drop-missing-labels)",
                    got=f"{len(empty)} empty, on line{'s' if len(empty) > 1 else ''} {shown}{more}",
                    file=str(p),
                    field=label,
                )
            if empty:
                if len(empty) == n:
                    raise GlassnetError(
                        "expected at least one row with a label",
                        got="none",
                        file=str(p),
                        field=label,
                    )
                rows = np.setdiff1d(rows, empty)
                by_column = [[col[r] for r in rows] for col in by_column]
                cells = by_column[0]
                notes.append(f"dropped {len(empty)} row(s) with no {label} (--drop-missing-labels)")
        labels = (
            canonical_labels(cells) if len(targets) == 1 else _target_table(by_column, targets, p)
        )
    ids = [cols.raw[id_column][r] for r in rows] if id_column is not None else None
    numeric = all(not isinstance(cols.values[name], TextCells) for name in cols.names)
    X: Array | RawTable
    if numeric:
        # Column-major, filled one column at a time as each column's own array is let
        # go: a column's pages are touched only when it is copied in, so the table and
        # the columns are never both whole in memory (bench/csv_memory.py)
        X = np.empty((rows.size, len(cols.names)), dtype=np.float64, order="F")
        for j, name in enumerate(cols.names):
            column = cols.values.pop(name)
            assert not isinstance(column, TextCells)
            X[:, j] = column[rows] if rows.size < n else column
            del column
    else:
        # Text columns stay codes into their distinct cells (no Python object per cell)
        columns = [cols.values.pop(name) for name in cols.names]
        X = RawTable(columns if rows.size == n else [_take(c, rows) for c in columns])
    table = Table(X, labels, cols.names, label, ids, notes, cols.fingerprint)
    table.first_line = first_line
    if cols.lines is not None:
        table.lines = cols.lines.take(rows) if rows.size < n else cols.lines
    return table


def _take(column: Array | TextCells, rows: Array) -> Array | TextCells:
    return column.take(rows) if isinstance(column, TextCells) else column[rows]


def label_columns(label: str, head: list[str]) -> list[str]:
    """The label column(s) ``label`` names: itself when a column has that name, else
    its comma-separated names (``--label a,b``: multi-output regression) when every one
    is a column; [] when not.

    >>> label_columns("y", ["x", "y"]), label_columns("a, b", ["a", "b", "x"])
    (['y'], ['a', 'b'])
    """
    if label in head:
        return [label]
    parts = [c.strip() for c in label.split(",") if c.strip()]
    if len(parts) > 1 and all(c in head for c in parts) and len(set(parts)) == len(parts):
        return parts
    return []


def _target_table(columns: list[list[str]], names: list[str], p: Path) -> Array:
    """Several target columns as float64 (n, k): every cell a number."""
    from glassnet.preprocess import to_number

    out = np.empty((len(columns[0]), len(columns)))
    for j, (col, name) in enumerate(zip(columns, names, strict=True)):
        for i, cell in enumerate(col):
            v = to_number(cell)
            if v is None or not math.isfinite(v):
                raise GlassnetError(
                    "expected numbers in every target column (several labels: regression)",
                    got=repr(cell)[:40],
                    file=str(p),
                    field=name,
                )
            out[i, j] = v
    return out


def canonical_labels(values: list[str]) -> Array:
    """Labels as read: when every one is a number, whole numbers as int64 and others as
    the shortest text of their value, so ``1``/``1.0`` and ``0.0``/``-0.0`` are one
    class each; otherwise the text as written.

    >>> canonical_labels(["1", "1.0", "-0.0", "0"]).tolist()
    [1, 1, 0, 0]
    >>> canonical_labels(["0.50", "0.5", "-0.0"]).tolist()
    ['0.5', '0.5', '0.0']
    """
    from glassnet.preprocess import to_number

    numbers = [to_number(v) for v in values]
    if not values or any(x is None or not math.isfinite(x) for x in numbers):
        return np.asarray(values)
    v = np.array(numbers, dtype=np.float64)
    if (v == np.round(v)).all() and np.abs(v).max() < 2.0**53:
        return v.astype(np.int64)
    return np.array([repr(float(x) + 0.0) for x in v])  # + 0.0: -0.0 becomes 0.0


# -- what a file held ------------------------------------------------------------------------
def _file_sha256(p: Path) -> str:
    digest = hashlib.sha256()
    with p.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fingerprint(path: str) -> dict[str, Any] | None:
    """What the data file at ``path`` holds (see :func:`_fingerprint`); None for a
    bundled data set."""
    if path in BUNDLED:
        return None
    return read_rows(path, need_label=False).fingerprint


def describe_change(then: dict[str, Any], now: dict[str, Any]) -> str | None:
    """What changed between two fingerprints, in words (None: the same file content).

    >>> describe_change({"sha256": "a", "rows": 10}, {"sha256": "b", "rows": 12})
    '10 rows then, 12 now'
    """
    if then.get("sha256") == now.get("sha256"):
        return None
    old, new = then.get("columns"), now.get("columns")
    if old is not None and new is not None and old != new:
        added = [c for c in new if c not in old]
        removed = [c for c in old if c not in new]
        if not added and not removed:
            return "the same columns in another order"
        parts = [f"added {', '.join(added[:5])}" if added else ""]
        parts.append(f"removed {', '.join(removed[:5])}" if removed else "")
        return "columns " + "; ".join(x for x in parts if x)
    if then.get("rows") != now.get("rows"):
        return f"{then.get('rows')} rows then, {now.get('rows')} now"
    if then.get("row_set") is not None and then.get("row_set") == now.get("row_set"):
        return "the same rows in another order (the held-out rows would be other rows)"
    if then.get("row_set") is None:
        return "other contents"
    return f"cells changed in the same number of rows ({now.get('rows')})"
