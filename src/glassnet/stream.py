"""Training on a CSV or Parquet file larger than memory: ``glassnet train --stream``.

The file is read in Arrow record batches (pyarrow's streaming CSV reader, or a Parquet
file's ``iter_batches``), never whole:

1. **A first pass fits the stored preprocessing** (:func:`scan`): per number column a
   running count, mean and sum of squared deviations, merged batch by batch with Chan,
   Golub and LeVeque's pairwise update (numerically stable: no sum of squares is ever
   subtracted from another), the present cells' count and the missing cells' count; per
   text column its set of categories and their counts (bounded:
   :data:`MAX_CATEGORIES`); the label's distinct values and counts.  From these come the
   same :class:`~glassnet.preprocess.Preprocessing` ``Preprocessing.fit`` computes on
   the whole table in memory (every row a training row): kinds, sorted categories, fill
   values (``impute="mean"``: the mean of the present cells; a text column's most
   frequent category, ties to the one met first), means and spreads of the filled
   columns (filling n_m cells with the value f merges a group of n_m copies of f: mean
   and spread follow exactly), constant columns dropped as ``load_dataset`` drops them.
2. **Each epoch streams windows** (:meth:`Source.windows`) of ``window`` rows — a
   whole number of batches — transformed by the preprocessing into buffers allocated
   once and trained batch by batch (:func:`fit_stream`).  Peak memory is bounded by
   the window (and one Arrow block of the file), not by the file.

**Shuffling**: the rows are shuffled within each window (the fit's seeded random
stream), not across the file, so a streamed fit differs from an in-memory one by the
order of the rows only; with shuffling off the batches are the file's consecutive rows,
as in memory, and the weights are the in-memory fit's (tests/test_stream.py, 1e-9).

Under torchrun every process reads the stream and takes its own contiguous part of
each batch (the torch engine's rule), so N processes equal one with the same global
batch; rank 0 writes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.preprocess import Column, Preprocessing

Array = np.ndarray

#: A text column with more distinct values than this is refused under --stream (its
#: category set would grow with the file; an ID, or a number column with stray text).
MAX_CATEGORIES = 10_000
#: Rows per Arrow batch read from a Parquet file.
PARQUET_BATCH = 65_536
# A CSV file is read in blocks of glassnet.tables.BLOCK_BYTES (1 MB).  Arrow's streaming
# CSV reader reads some 40 blocks ahead of its consumer (measured: 154 MB live with 4 MB
# blocks on a 190 MB file, 39 MB with 1 MB blocks), so the block, not the file, sets
# that part of the memory.


# -- reading the file in batches ---------------------------------------------------------
@dataclass
class Source:
    """A CSV or Parquet file read in Arrow record batches: its feature columns and label.

    For CSV, the dialect is sniffed as ``glassnet train`` sniffs it
    (:func:`glassnet.tables.sniff`) and every cell is read as text; for Parquet the
    columns keep their types (numbers stay numbers)."""

    path: Path
    label: str
    features: list[str]
    parquet: bool
    decimal: str = "."
    #: CSV only: (dialect, header, lines before the data).
    csv: tuple[Any, list[str], int] | None = None
    first_line: int = 2

    @classmethod
    def open(
        cls,
        path: str | Path,
        *,
        label: str | None = None,
        features: Sequence[str] | None = None,
        drop: Sequence[str] = (),
        sep: str | None = None,
        decimal: str | None = None,
    ) -> Source:
        from glassnet.tables import _need_pyarrow, header_of, sniff

        _need_pyarrow()
        p = Path(path)
        if not p.is_file():
            raise GlassnetError("expected a CSV or Parquet file", got="no such file", file=str(p))
        parquet = p.suffix.lower() in (".parquet", ".pq")
        csv = None
        dec = "."
        if parquet:
            import pyarrow.parquet as pq

            try:
                head = list(pq.ParquetFile(p).schema_arrow.names)
            except Exception as err:  # pyarrow raises several kinds for a damaged file
                raise GlassnetError(
                    "expected a Parquet file", got=" ".join(str(err).split())[:80], file=str(p)
                ) from None
            first = 1  # a Parquet row counted from 1 (the transform says "line")
        else:
            dialect = sniff(p, sep=sep, decimal=decimal)
            head, skip = header_of(p, dialect)
            csv, dec, first = (dialect, head, skip), dialect.decimal, skip + 1
        label = head[-1] if label is None else label
        if label not in head:
            raise GlassnetError(
                "expected the label column in the header (one column with --stream)",
                got=repr(label),
                file=str(p),
                field="--label",
            )
        for flag, wanted in (("--features", features), ("--drop", drop)):
            unknown = [c for c in wanted or [] if c not in head]
            if unknown:
                raise GlassnetError(
                    "expected columns of the header",
                    got=", ".join(unknown),
                    file=str(p),
                    field=flag,
                )
        keep = [c for c in (features or head) if c != label and c not in drop]
        if not keep:
            raise GlassnetError("expected at least one feature column", got="none", file=str(p))
        return cls(p, label, keep, parquet, dec, csv, first)

    def where(self, row: int) -> str:
        """Row ``row`` (from 0) of the data, as a person finds it: a CSV file's line, a
        Parquet file's row counted from 1."""
        return f"row {row + 1}" if self.parquet else f"line {row + self.first_line}"

    def ambiguous(self, name: str, at: int, row: int, cell: str) -> GlassnetError:
        """The in-memory reader's error for a number that reads two ways (``1.234`` with
        a decimal comma), in column ``name`` at data row ``at + row``."""
        from glassnet.tables import _ambiguous, _line_at

        assert self.csv is not None  # only text cells are read with a decimal comma
        dialect, _, skip = self.csv
        return _ambiguous(cell, name, self.path, _line_at(self.path, dialect, skip, at + row))

    def batches(self, columns: list[str] | None = None) -> Iterator[Any]:
        """Arrow record batches of ``columns`` (default: the features and the label), in
        file order, each of whatever size the reader gives."""
        cols = columns or [*self.features, self.label]
        if self.parquet:
            import pyarrow.parquet as pq

            yield from pq.ParquetFile(self.path).iter_batches(
                batch_size=PARQUET_BATCH, columns=cols
            )
            return
        from glassnet.tables import _batches

        assert self.csv is not None
        dialect, head, skip = self.csv
        for batch in _batches(self.path, dialect, head, skip, cols):
            yield batch.select(cols)  # the header's order -> the asked order

    def windows(self, rows: int, columns: list[str] | None = None) -> Iterator[Any]:
        """Arrow tables of exactly ``rows`` rows (the last one shorter), in file order:
        the reader's batches cut and joined, holding at most one window and one batch."""
        import pyarrow as pa

        pending: list[Any] = []
        have = 0
        for batch in self.batches(columns):
            while batch.num_rows:
                take = min(rows - have, batch.num_rows)
                pending.append(batch.slice(0, take))
                have += take
                batch = batch.slice(take)
                if have == rows:
                    yield pa.Table.from_batches(pending)
                    pending, have = [], 0
        if have:
            yield pa.Table.from_batches(pending)


def _cells(
    column: Any, decimal: str, ambiguous: Callable[[int, str], Exception] | None = None
) -> tuple[Array | None, Any, Any]:
    """One Arrow column (a batch's) as (float64 values with NaN where missing, or None
    when some present cell is not a number; the trimmed text cells; the missing mask),
    as ``glassnet.tables`` reads a CSV column.  Numeric Parquet columns are cast.  A
    number that reads two ways with a decimal comma (``1.234``) raises
    ``ambiguous(its index, its text)`` when given (the first pass gives it: it is the
    in-memory reader's error)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from glassnet.tables import _MISSING_PATTERN, _as_numbers, _float_values

    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        values = _float_values(pc.cast(column, pa.float64()))
        return values, None, None
    if not pa.types.is_string(column.type) and not pa.types.is_large_string(column.type):
        column = pc.cast(column, pa.string())
    trimmed = pc.utf8_trim_whitespace(pc.fill_null(column, ""))
    missing = pc.match_substring_regex(pc.utf8_lower(trimmed), pattern=_MISSING_PATTERN)
    numbers, unsure = _as_numbers(pa, pc, trimmed, missing, decimal)
    if numbers is not None and unsure is not None and ambiguous is not None:
        raise ambiguous(unsure, str(trimmed.slice(unsure, 1).to_pylist()[0]))
    return numbers, trimmed, missing


# -- the first pass: running statistics ----------------------------------------------------
@dataclass
class Moments:
    """Running count, mean and sum of squared deviations (M2) of a column's present
    values, merged batch by batch (Chan, Golub & LeVeque 1979, "Updating formulae and a
    pairwise algorithm for computing sample variances"): for parts a and b,
    n = nₐ + n_b, δ = mean_b − meanₐ, mean = meanₐ + δ·n_b/n,
    M2 = M2ₐ + M2_b + δ²·nₐ·n_b/n."""

    n: int = 0
    mean: float = 0.0
    m2: float = 0.0

    def merge(self, n: int, mean: float, m2: float) -> None:
        if n == 0:
            return
        if self.n == 0:
            self.n, self.mean, self.m2 = n, mean, m2
            return
        total = self.n + n
        delta = mean - self.mean
        self.mean += delta * n / total
        self.m2 += m2 + delta * delta * self.n * n / total
        self.n = total

    def add(self, values: Array) -> None:
        """Merge a batch's values (finite, float64)."""
        if values.size:
            mean = float(values.mean())
            self.merge(values.size, mean, float(np.square(values - mean).sum()))


@dataclass
class _ColumnScan:
    name: str
    number: bool = True
    moments: Moments = field(default_factory=Moments)
    low: float = math.inf
    high: float = -math.inf
    missing: int = 0
    #: Text columns: each category's count, in the order first met.
    counts: Counter[str] = field(default_factory=Counter)


@dataclass
class Scan:
    """What the first pass found: the fitted preprocessing, the label's classes (None
    for regression), the task, the rows, and the constant columns left out."""

    preprocessing: Preprocessing
    task: str
    classes: list[Any] | None
    rows: int
    dropped: list[str]
    #: The label cell's stripped text -> class index (classification).
    label_index: dict[str, int] | None = None
    notes: list[str] = field(default_factory=list)
    #: The mean target (regression; NaN when the labels are not numbers).
    target_mean: float = math.nan


def scan(source: Source, *, impute: str | None = None, task: str = "auto") -> Scan:
    """The first pass over ``source`` (see the module docstring): the preprocessing
    ``Preprocessing.fit`` would fit on every row of the file in memory, the task and
    classes ``load_dataset`` would choose, in memory bounded by a batch and the
    category sets."""
    from glassnet.data import TASKS, canonical_labels, task_from_values
    from glassnet.limits import MAX_CLASSES
    from glassnet.rawtable import TextCells
    from glassnet.tables import _date_parts

    if impute not in (None, "mean"):
        raise GlassnetError(
            "expected --impute mean (or none) with --stream (a median or a most frequent number "
            "needs every value in memory)",
            got=repr(impute),
            field="--impute",
        )
    if task not in TASKS:
        raise GlassnetError(f"expected one of {', '.join(TASKS)}", got=repr(task), field="--task")
    cols = {name: _ColumnScan(name) for name in source.features}
    labels: Counter[str] = Counter()
    many: int | None = None  # more distinct labels than classes can be: counted, not kept
    target = Moments()
    rows = 0
    text_from: dict[str, int] = {}  # a column found to be text at this row: re-read before
    first = True
    for batch in source.batches():
        for name, col in cols.items():
            values, trimmed, missing = _cells(
                batch.column(name), source.decimal, partial(source.ambiguous, name, rows)
            )
            if col.number and values is not None:
                gone = np.isnan(values)
                present = values[~gone]
                bad = np.flatnonzero(np.isinf(values))
                if bad.size:
                    raise GlassnetError(
                        "expected a finite number",
                        got=f"{values[bad[0]]} on {source.where(rows + int(bad[0]))}",
                        file=str(source.path),
                        field=name,
                    )
                col.missing += int(gone.sum())
                col.moments.add(present)
                if present.size:
                    col.low = min(col.low, float(present.min()))
                    col.high = max(col.high, float(present.max()))
                continue
            if col.number:
                col.number = False
                text_from[name] = rows
                col.missing = 0  # the rows before are counted again when re-read as text
            cells = trimmed.to_pylist()
            gone_mask = missing.to_pylist()
            if first:  # a date column is refused, as in memory (never one-hot)
                index: dict[str, int] = {}
                at = np.fromiter(
                    (index.setdefault(c, len(index)) for c in cells), np.int32, len(cells)
                )
                _date_parts(name, TextCells(at, list(index)), "error", source.path, 0)
            col.missing += sum(gone_mask)
            col.counts.update(c for c, m in zip(cells, gone_mask, strict=True) if not m)
            if len(col.counts) > MAX_CATEGORIES:
                raise GlassnetError(
                    f"expected at most {MAX_CATEGORIES} categories in a text column with --stream "
                    f"(an ID, or a number column with stray text: --drop {name}, or fix the cells)",
                    got=f"more than {MAX_CATEGORIES} distinct values",
                    file=str(source.path),
                    field=name,
                )
        lab = batch.column(source.label)
        numbers, trimmed, missing = _cells(lab, source.decimal)
        if numbers is not None:
            target.add(numbers[~np.isnan(numbers)])  # a regression output starts at the mean
        if _numeric(lab):
            cells = [str(v) for v in lab.to_pylist()]
            gone = np.isnan(numbers).tolist() if numbers is not None else []
        else:
            cells, gone = trimmed.to_pylist(), missing.to_pylist()
        if any(gone):
            raise GlassnetError(
                "expected a label in every row (--drop-missing-labels is not available "
                "with --stream)",
                got=f"an empty label on {source.where(rows + gone.index(True))}",
                file=str(source.path),
                field=source.label,
            )
        if many is None:
            labels.update(cells)
            if len(labels) > MAX_CLASSES:  # too many for classes: only numbers can be targets
                many, cells = 0, list(labels)
                labels = Counter()
        if many is not None:
            values = np.array([_label_number(c) for c in cells])
            if np.isnan(values).any():
                raise GlassnetError(
                    f"expected at most {MAX_CLASSES} classes, or numbers (regression)",
                    got=f"more distinct labels, such as {cells[int(np.isnan(values).argmax())]!r}",
                    file=str(source.path),
                    field=source.label,
                )
            many += values.size
        rows += batch.num_rows
        first = False
    if rows == 0:
        raise GlassnetError(
            "expected a header row and at least one data row",
            got="no data rows",
            file=str(source.path),
        )
    if text_from:  # a column that was numbers at first: its earlier cells as categories too
        names = list(text_from)
        seen = 0
        for batch in source.batches(names):
            if seen >= max(text_from.values()):
                break
            for name in names:
                if seen >= text_from[name]:
                    continue
                end = min(batch.num_rows, text_from[name] - seen)
                _, trimmed, missing = _cells(batch.column(name).slice(0, end), source.decimal)
                cells, gone_mask = trimmed.to_pylist(), missing.to_pylist()
                earlier = Counter(c for c, m in zip(cells, gone_mask, strict=True) if not m)
                cols[name].counts = earlier + cols[name].counts  # first-met order kept
                cols[name].missing += sum(gone_mask)
            seen += batch.num_rows

    # The task and the classes, as load_dataset chooses them.
    notes: list[str] = []
    classes: list[Any] | None = None
    label_index: dict[str, int] | None = None
    if many is not None:
        if task == "classification":
            raise GlassnetError(
                f"expected at most {MAX_CLASSES} classes with --stream",
                got="more distinct labels",
                file=str(source.path),
                field=source.label,
            )
        if task == "auto":
            notes.append(
                f"task: regression ({source.label} has more than {MAX_CLASSES} distinct "
                "numeric values; --task classification to override)"
            )
        task = "regression"
    distinct = list(labels)
    if task != "regression":
        canon = canonical_labels(distinct)
        as_float = np.array([_label_number(c) for c in distinct])
        if task == "auto":
            counts = np.array([labels[c] for c in distinct])
            numbers = None if np.isnan(as_float).any() else as_float
            task, note = task_from_values(numbers, counts, source.label)
            if note:
                notes.append(note)
    if task == "classification":
        classes_arr, codes = np.unique(canon, return_inverse=True)
        if classes_arr.shape[0] < 2:
            raise GlassnetError(
                "expected at least two classes",
                got=f"only {classes_arr.tolist()!r}",
                field=source.label,
            )
        classes = classes_arr.tolist()
        label_index = {c: int(k) for c, k in zip(distinct, codes, strict=True)}
    elif any(math.isnan(_label_number(c)) for c in distinct):
        raise GlassnetError(
            "expected numbers in the target column for regression",
            got="text values",
            file=str(source.path),
            field=source.label,
        )
    return Scan(
        _preprocessing(cols, rows, impute, source), task, classes, rows,
        [c.name for c in cols.values() if _constant(c, rows)], label_index, notes,
        target.mean if target.n else math.nan,
    )  # fmt: skip


def _numeric(column: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_integer(column.type) or pa.types.is_floating(column.type))


def _label_number(cell: str) -> float:
    from glassnet.preprocess import to_number

    v = to_number(cell)
    return math.nan if v is None or not math.isfinite(v) else v


def _constant(col: _ColumnScan, rows: int) -> bool:
    """Left out as ``load_dataset`` leaves it out: every cell missing, or one value in
    every row."""
    if col.missing == rows:
        return True
    if col.missing:
        return False
    if col.number:
        return col.low == col.high
    return len(col.counts) == 1


def _preprocessing(
    cols: dict[str, _ColumnScan], rows: int, impute: str | None, source: Source
) -> Preprocessing:
    """The :class:`Preprocessing` of the scanned columns (constant ones left out)."""
    from glassnet.preprocess import ID_MIN_ROWS

    columns: list[Column] = []
    means: list[float] = []
    scales: list[float] = []
    for col in cols.values():
        if _constant(col, rows):
            continue
        if col.missing and impute is None:
            raise GlassnetError(
                "expected a value in every cell (train with --impute mean)",
                got=f"{col.missing} missing",
                file=str(source.path),
                field=col.name,
            )
        if col.number:
            m = Moments(col.moments.n, col.moments.mean, col.moments.m2)
            fill = m.mean if impute is not None else None
            if fill is not None:
                m.merge(col.missing, fill, 0.0)  # the filled cells: n_m copies of the fill
            columns.append(Column(col.name, "number", [], fill))
            spread = math.sqrt(m.m2 / m.n) if m.n else 0.0
            means.append(m.mean)
            scales.append(spread if spread > 0 else 1.0)
            continue
        distinct = sorted(col.counts)
        if rows >= ID_MIN_ROWS and len(distinct) == rows:
            raise GlassnetError(
                f"expected features, not an ID (every row has its own text); drop it with "
                f"--drop {col.name}",
                got=f"{rows} distinct values",
                field=col.name,
            )
        fill_text = col.counts.most_common(1)[0][0] if impute is not None else None
        columns.append(Column(col.name, "text", distinct, fill_text))
        means.extend([0.0] * len(distinct))
        scales.extend([1.0] * len(distinct))
    if not columns:
        raise GlassnetError(
            "expected a feature column that varies",
            got="every column constant",
            file=str(source.path),
        )
    return Preprocessing(np.array(means), np.array(scales), [c.name for c in columns], columns)


# -- the windows, transformed ---------------------------------------------------------------
def raw_table(window: Any, pre: Preprocessing, decimal: str) -> Array:
    """A window's feature columns as the raw table :meth:`Preprocessing.transform` takes
    (float64 with NaN where missing when every column is a number, else text cells)."""
    assert pre.columns is not None
    n = window.num_rows
    numbers_only = pre.numbers_only
    out = np.empty((n, len(pre.columns)), dtype=np.float64 if numbers_only else object)
    for j, col in enumerate(pre.columns):
        values, trimmed, missing = _cells(window.column(col.name), decimal)
        if values is not None and col.kind == "number":
            out[:, j] = values
            continue
        if numbers_only:  # pass 1 read numbers here: say which cell is not
            cells = trimmed.to_pylist()
            out[:, j] = [_label_number(c) if not m else np.nan
                         for c, m in zip(cells, missing.to_pylist(), strict=True)]  # fmt: skip
            continue
        gone = missing.to_pylist()
        out[:, j] = [None if m else c for c, m in zip(trimmed.to_pylist(), gone, strict=True)]
    return out


def label_values(window: Any, scan_: Scan, source: Source) -> Array:
    """The window's labels: class indices (m,) for classification, else targets (m,)."""
    column = window.column(source.label)
    if _numeric(column):
        cells = [str(v) for v in column.to_pylist()]
    else:
        _, trimmed, _ = _cells(column, source.decimal)
        cells = trimmed.to_pylist()
    if scan_.label_index is not None:
        index = scan_.label_index
        try:
            return np.array([index[c] for c in cells], dtype=np.int64)
        except KeyError as err:  # the file changed between the passes
            raise GlassnetError(
                "expected the labels the first pass read (the file changed while training?)",
                got=repr(err.args[0]),
                file=str(source.path),
                field=source.label,
            ) from None
    return np.array([_label_number(c) for c in cells], dtype=np.float64)


# -- training on the stream -----------------------------------------------------------------
#: Batches per window by default: the rows are shuffled within a window, and memory holds one.
WINDOW_BATCHES = 64


def fit_stream(
    net: Any,
    source: Source,
    found: Scan,
    *,
    loss: Any = None,
    optimizer: Any = None,
    epochs: int = 10,
    batch_size: int = 32,
    window_batches: int = WINDOW_BATCHES,
    shuffle: bool = True,
    seed: int | None = None,
    callbacks: Sequence[Any] = (),
    engine: Any = None,
    device: str | None = None,
) -> Any:
    """Train ``net`` in place on ``source``, window by window (see the module
    docstring); return the history.  ``net.preprocessing`` is set to ``found``'s.

    Each epoch reads the file again in windows of ``window_batches · batch_size`` rows;
    a window's rows go through the stored preprocessing into buffers allocated once
    (inputs (w, n_in) and targets (w, n_out) in the network's dtype), are shuffled
    within the window when ``shuffle`` (the fit's seeded stream), and trained batch by
    batch by the step engine (``"numpy"``, ``"torch"``, ``"auto"`` or an instance, as
    :func:`glassnet.training.fit` takes).  Everything else is ``fit``'s: the losses,
    optimisers and their state, schedules, dropout, divergence and its restore,
    callbacks, history, the model file.  No validation split (a held-out file is
    scored with ``glassnet evaluate MODEL --data FILE``)."""
    from glassnet.training.batches import Rows
    from glassnet.training.loop import _diverged, _restore, _snapshot, resolve_engine
    from glassnet.training.metrics import classes_from_output
    from glassnet.training.state import positive_int
    from glassnet.training.trainable import resolve_loss, resolve_state

    step_engine = resolve_engine(engine, device)
    epochs = positive_int(epochs, "epochs", minimum=0)
    batch_size = positive_int(batch_size, "batch_size")
    window = positive_int(window_batches, "window_batches") * batch_size
    pre = found.preprocessing
    if net.sizes[0] != pre.n_inputs:
        raise GlassnetError(
            f"expected a network with {pre.n_inputs} inputs (the file's, encoded)",
            got=str(net.sizes[0]),
            field="network",
        )
    classify = found.classes is not None
    if classify and net.sizes[-1] != len(found.classes or []):
        raise GlassnetError(
            f"expected {len(found.classes or [])} outputs (one per class)",
            got=str(net.sizes[-1]),
            field="network",
        )
    coupled = [layer.type for layer in net.layers if layer.couples_batch]
    if coupled and found.rows % batch_size == 1:
        # The epoch's last batch would be one row: PyTorch's batch norm refuses it.
        raise GlassnetError(
            f"expected batches of at least 2 rows for {', '.join(coupled)} ({found.rows} rows "
            f"in batches of {batch_size} leave one row)",
            got=f"batch_size {batch_size}",
            field="batch_size",
        )
    net.preprocessing = pre
    loss_obj = resolve_loss(net, loss)
    if seed is not None:
        seed = positive_int(seed, "seed", minimum=0)
    state = resolve_state(net, loss_obj, optimizer, seed)
    opt, rng = state.optimizer, state.rng

    rows = min(window, found.rows)
    X = np.zeros((rows, pre.n_inputs), dtype=net.dtype)
    Y = np.zeros((rows, net.sizes[-1]), dtype=net.dtype)
    labels = np.zeros(rows, dtype=np.int64) if classify else None
    order = np.arange(rows)
    data = Rows(X, Y, labels, order.copy())

    def fill(table: Any, at: int) -> int:
        """The window ``table`` (from file row ``at``) into the buffers; its rows."""
        m = table.num_rows
        X[:m] = pre.transform(raw_table(table, pre, source.decimal), first_line=at)
        targets = label_values(table, found, source)
        if labels is not None:
            Y[:m] = 0.0
            Y[np.arange(m), targets] = 1.0
            labels[:m] = targets
        else:
            Y[:m, 0] = targets
        return m

    windows = source.windows(window)
    first = next(windows, None)
    if first is None:
        raise GlassnetError("expected data rows", got="none", file=str(source.path))
    fill(first, source.first_line)
    step_engine.begin(net, loss_obj, opt, data, batch_size=batch_size, rng=rng, dropout=net.dropout)
    errstate = np.errstate(over="ignore", invalid="ignore")
    errstate.__enter__()
    try:
        for cb in callbacks:
            cb.on_train_begin(net, epochs)
        for e in range(epochs):
            epoch = state.epoch + 1
            opt.set_epoch(state.epoch)
            snapshot = _snapshot(net, opt)
            loss_sum, correct, batch, seen = 0.0, 0, 0, 0
            tables = windows if e == 0 else source.windows(window)
            for j, table in enumerate(tables if e > 0 else _chain(first, tables)):
                if e == 0 and j == 0:
                    m = table.num_rows  # filled before begin()
                else:
                    m = fill(table, source.first_line + seen)
                    step_engine.reload()
                seen += m
                idx_all = order[:m].copy()
                if shuffle:
                    rng.shuffle(idx_all)
                for start in range(0, m, batch_size):
                    idx = idx_all[start : start + batch_size]
                    batch += 1
                    p, value = step_engine.step(idx)
                    if not math.isfinite(value):
                        _restore(net, opt, snapshot)
                        _diverged(value, epoch, batch)
                    loss_sum += value * idx.shape[0]
                    if labels is not None:
                        predicted = classes_from_output(net, p)
                        correct += int(np.count_nonzero(predicted == labels[idx]))
            step_engine.sync()
            # The network's arrays now (the engine may have laid them out, a callback
            # replaced one): the ones validation and the next epoch use.
            if not all(np.isfinite(w).all() for w in net.parameters()):
                _restore(net, opt, snapshot)
                _diverged(math.nan, epoch, batch)
            logs = {"loss": loss_sum / seen}
            if labels is not None:
                logs["accuracy"] = correct / seen
            logs["lr"] = opt.current_lr
            state.epoch = epoch
            state.history.append(epoch, logs)
            stop = False
            for cb in callbacks:
                stop = bool(cb.on_epoch_end(net, epoch, logs)) or stop
            if stop:
                break
    finally:
        errstate.__exit__(None, None, None)
        step_engine.end()
        for cb in callbacks:
            cb.on_train_end(net, state.history)
    return state.history


def _chain(first: Any, rest: Iterator[Any]) -> Iterator[Any]:
    yield first
    yield from rest


# -- glassnet train --stream ------------------------------------------------------------------
#: Options a streamed run takes (``glassnet train`` flags); the others need the whole
#: data in memory (a test or validation split, class weights, per-cell fixes, dates).
STREAM_OPTIONS = frozenset(
    {
        "label", "task", "features", "drop", "impute", "handle_unknown", "sep", "decimal",
        "layers", "activation", "init", "dropout", "epochs", "optimizer", "lr", "momentum",
        "nesterov", "weight_decay", "schedule", "step_size", "gamma", "batch_size", "seed",
        "dtype",
    }
)  # fmt: skip


def check_stream_options(given: dict[str, Any]) -> None:
    """Refuse, in one line, the options a streamed run cannot honour."""
    other = sorted(set(given) - STREAM_OPTIONS)
    if given.get("schedule") == "plateau":
        other.append("schedule plateau")
    if other:
        flags = ", ".join("--" + o.replace("_", "-") for o in other)
        raise GlassnetError(
            "expected no options that need the whole data in memory with --stream (no test or "
            "validation split, class weights, --coerce, --drop-missing-labels, --dates, "
            "plateau; score a held-out file with glassnet evaluate MODEL --data FILE)",
            got=flags,
            field="--stream",
        )


@dataclass
class StreamSummary:
    """What a streamed run did (``glassnet train --stream --json`` prints it)."""

    data: str
    task: str
    sizes: list[int]
    rows: int
    window_rows: int
    epochs: int
    seconds: float
    last_epoch: dict[str, float]
    model: str
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return {"stream": True, **asdict(self)}


def train_stream(
    data: str | None,
    resume: str | None,
    given: dict[str, Any],
    *,
    out: str,
    checkpoint: str,
    keep_checkpoint: bool,
    window_batches: int | None,
    engine: Any,
    progress: bool,
    on_ready: Any = None,
) -> StreamSummary:
    """``glassnet train --stream``: a first pass over the file, then the epochs, window
    by window; a checkpoint after every epoch (rank 0), the model file at the end.
    ``--resume CKPT`` of a streamed run continues it (only ``--epochs`` may change): the
    first pass runs again and must give the stored preprocessing (the file unchanged)."""
    import os
    import time
    from dataclasses import asdict

    from glassnet import training
    from glassnet.model import load_saved, mlp
    from glassnet.runs import TrainOptions, check_training_fits, make_optimizer

    started = time.perf_counter()
    settings: dict[str, Any]
    info: dict[str, Any]
    if resume:
        saved = load_saved(resume)
        model, info = saved.network, dict(saved.info)
        stored_settings = info.get("stream")
        if not isinstance(stored_settings, dict) or model.train_state is None:
            raise GlassnetError(
                "expected a checkpoint of glassnet train --stream", got="another file", file=resume
            )
        settings = stored_settings
        changed = sorted(
            k for k in set(given) - {"epochs"} if given[k] != settings["options"].get(k)
        )
        if changed:
            raise GlassnetError(
                "expected no options that change the checkpoint's run (only --epochs may raise "
                "its total)",
                got=", ".join("--" + c.replace("_", "-") for c in changed),
                field="--resume",
            )
        options = TrainOptions(**settings["options"])
        total = int(given["epochs"] if "epochs" in given else settings["epochs"])
        done = model.train_state.epoch
        if total <= done:
            raise GlassnetError(
                f"expected --epochs above the {done} epochs the checkpoint has done",
                got=str(total),
                field="--epochs",
            )
        data = str(settings["data"])
        window_batches = int(settings["window_batches"])
    else:
        check_stream_options(given)
        if not data:
            raise GlassnetError(
                "expected --data FILE.csv or FILE.parquet", got="nothing", field="--data"
            )
        options = TrainOptions(**given)
        total, done = options.epochs, 0
        window_batches = window_batches or WINDOW_BATCHES
    source = Source.open(
        data,
        label=options.label,
        features=options.features,
        drop=options.drop or (),
        sep=options.sep,
        decimal=options.decimal,
    )
    found = scan(source, impute=options.impute, task=options.task)
    found.preprocessing.handle_unknown = "ignore" if options.handle_unknown == "ignore" else "error"
    notes = [*found.notes]
    if found.dropped:
        notes.append(f"left out (one value in every row, or none): {', '.join(found.dropped)}")
    if resume:
        stored = model.preprocessing
        same = (
            stored is not None
            and stored.columns == found.preprocessing.columns
            and np.array_equal(stored.mean, found.preprocessing.mean)
            and np.array_equal(stored.scale, found.preprocessing.scale)
        )
        if not same:
            raise GlassnetError(
                "expected the file as it was when the run began (its preprocessing differs now)",
                got="another file",
                file=data,
            )
    else:
        regression = found.task == "regression"
        sizes = [
            found.preprocessing.n_inputs,
            *options.layers,
            1 if regression else len(found.classes or []),
        ]
        check_training_fits(sizes, options)
        model = mlp(
            sizes,
            hidden=options.activation,
            output="identity" if regression else "softmax",
            init=options.init,
            seed=options.seed,
            dtype=options.dtype,
            dropout=options.dropout,
        )
        if regression and math.isfinite(found.target_mean):
            model.dense_layers("a training run")[-1].b[:] = found.target_mean
        model.classes = None if regression else list(found.classes or [])
        model.task = "regression" if regression else "classification"
        model.train_state = training.TrainState(
            optimizer=make_optimizer(options, options.epochs),
            loss="mse" if regression else "cross_entropy",
            seed=options.seed,
            rng=training.shuffle_rng(options.seed),
        )
        settings = {
            "data": os.path.abspath(data),
            "options": asdict(options),
            "epochs": total,
            "window_batches": window_batches,
            "rows": found.rows,
            "dropped": found.dropped,
        }
        info = {"label": source.label, "data_name": source.path.name, "stream": settings}
    settings["epochs"] = total
    settings["out"] = os.path.abspath(out)
    info["stream"] = settings
    if on_ready is not None:
        on_ready(model, notes)
    writes = engine.rank == 0
    callbacks: list[Any] = []
    if writes:
        callbacks.append(training.Checkpoint(checkpoint, info=info))
        if progress:
            callbacks.append(training.ProgressBar())
    existed = os.path.exists(checkpoint)
    try:
        fit_stream(
            model,
            source,
            found,
            epochs=total - done,
            batch_size=options.batch_size,
            window_batches=window_batches,
            callbacks=callbacks,
            engine=engine,
        )
    except GlassnetError as err:
        # A divergence keeps the last whole epoch's checkpoint (what --resume continues).
        if err.field != "loss" and writes and not existed and os.path.exists(checkpoint):
            os.unlink(checkpoint)
        raise
    if writes:
        model.save(out, info=info)
        if not keep_checkpoint and os.path.exists(checkpoint):
            if os.path.abspath(checkpoint) != os.path.abspath(out):
                os.unlink(checkpoint)
    assert model.train_state is not None
    return StreamSummary(
        data=source.path.name,
        task=found.task,
        sizes=list(model.sizes),
        rows=found.rows,
        window_rows=window_batches * options.batch_size,
        epochs=model.train_state.epoch,
        seconds=time.perf_counter() - started,
        last_epoch=model.train_state.history.last(),
        model=out,
        notes=notes,
    )
