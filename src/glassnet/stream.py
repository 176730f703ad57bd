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

**Shards** (``--shards S``, :class:`Sharding`): the file is cut into S contiguous shards
(:meth:`Source.shard`: CSV byte ranges at line starts, Parquet row groups) and each
process reads only its own; the first pass's statistics are computed per shard and
merged in shard order (:func:`scan`), and each step's batch is every shard's part, in
shard order.  S shards on any number of processes (≤ S) are one run, the run one
process makes reading the S shards in lockstep (docs/scale.md).
"""

from __future__ import annotations

import json
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
    #: A shard (:meth:`shard`): CSV bytes [start, end), or Parquet row groups, and its
    #: name for messages ("shard 2 of 4").
    span: tuple[int, int] | None = None
    row_groups: list[int] | None = None
    shard_name: str = ""
    #: Rows the reader has given so far (what this process read: the sharding tests).
    rows_read: int = 0

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
        """Row ``row`` (from 0) of the data read (this shard's, in a shard), as a person
        finds it: a Parquet file's row counted from 1, or a CSV file's line, found by
        reading the file again from the data's (or the shard's) first line with Python's
        csv module, so that blank lines and quoted line breaks count as the file has them
        (:func:`glassnet.tables.row_lines`); for an error message, so only when one is
        written."""
        if self.parquet:
            return f"row {row + self.first_line}"
        if self.span is None:
            from glassnet.tables import _line_at

            assert self.csv is not None
            dialect, _, skip = self.csv
            return f"line {_line_at(self.path, dialect, skip, row)}"
        from glassnet.tables import shard_row_line

        assert self.csv is not None
        line = shard_row_line(self.path, self.csv[0], self.span[0], row)
        if line is None:  # the file cannot be read again as it was: where it is, in words
            return f"data row {row + 1} of {self.shard_name} (from byte {self.span[0]})"
        return f"line {line}"

    def shard(self, r: int, shards: int) -> Source:
        """Shard ``r`` (from 0) of ``shards``: the r-th of contiguous parts of the file,
        read alone.  Parquet: the r-th of ``shards`` near-equal runs of row groups.  CSV:
        the bytes after the header cut into ``shards`` near-equal ranges, each cut moved
        to the next line start (a line is wholly in one shard; a quoted cell holding a
        line break would be cut: the first pass refuses such a file, :func:`scan`)."""
        from dataclasses import replace

        name = f"shard {r + 1} of {shards}"
        if self.parquet:
            import pyarrow.parquet as pq

            meta = pq.ParquetFile(self.path).metadata
            groups = [int(g) for g in np.array_split(np.arange(meta.num_row_groups), shards)[r]]
            before = sum(meta.row_group(g).num_rows for g in range(groups[0] if groups else 0))
            return replace(self, row_groups=groups, shard_name=name, first_line=before + 1,
                           rows_read=0)  # fmt: skip
        assert self.csv is not None
        size = self.path.stat().st_size
        with open(self.path, "rb") as f:
            for _ in range(self.csv[2]):  # the header (and the lines before it)
                f.readline()
            data = f.tell()

            def line_start(at: int) -> int:
                if at <= data or at >= size:
                    return min(max(at, data), size)
                f.seek(at - 1)
                f.readline()  # to just after the line break at or after at - 1
                return f.tell()

            cuts = [line_start(data + (size - data) * k // shards) for k in (r, r + 1)]
        return replace(self, span=(cuts[0], cuts[1]), shard_name=name, rows_read=0)

    def ambiguous(self, name: str, at: int, row: int, cell: str) -> GlassnetError:
        """The in-memory reader's error for a number that reads two ways (``1.234`` with
        a decimal comma), in column ``name`` at data row ``at + row``."""
        from glassnet.tables import _ambiguous

        assert self.csv is not None  # only text cells are read with a decimal comma
        return _ambiguous(cell, name, self.path, self.where(at + row))

    def batches(self, columns: list[str] | None = None) -> Iterator[Any]:
        """Arrow record batches of ``columns`` (default: the features and the label), in
        file order, each of whatever size the reader gives."""
        cols = columns or [*self.features, self.label]
        if self.parquet:
            import pyarrow.parquet as pq

            if self.row_groups == []:
                return
            for batch in pq.ParquetFile(self.path).iter_batches(
                batch_size=PARQUET_BATCH, columns=cols, row_groups=self.row_groups
            ):
                self.rows_read += batch.num_rows
                yield batch
            return
        from glassnet.tables import _batches

        assert self.csv is not None
        dialect, head, skip = self.csv
        for batch in _batches(self.path, dialect, head, skip, cols, self.span):
            self.rows_read += batch.num_rows
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
    #: Sharded: each shard's rows, in shard order.
    shard_rows: list[int] = field(default_factory=list)


def scan(
    source: Source,
    *,
    impute: str | None = None,
    task: str = "auto",
    shards: Sequence[Source] = (),
    gather: Callable[[list[str]], list[str]] | None = None,
) -> Scan:
    """The first pass over ``source`` (see the module docstring): the preprocessing
    ``Preprocessing.fit`` would fit on every row of the file in memory, the task and
    classes ``load_dataset`` would choose, in memory bounded by a batch and the
    category sets.

    Sharded (``shards``: the shards this process reads, :meth:`Source.shard`): each
    shard's sufficient statistics — per column its count, mean and M2, low and high,
    missing cells, categories with their counts in the order met; the labels' counts;
    the rows — are computed alone, exchanged by ``gather`` (this process's shards' JSON
    -> every shard's, in shard order: ``torch.distributed.all_gather_object`` under
    torchrun; None: this process reads every shard) and merged in shard order (Chan's
    update, counts summed, categories united in the file's order met).  Every process
    merges the same list the same way, so every one ends with the same preprocessing:
    the whole file's, within float rounding (tests/test_stream.py)."""
    _check_scan_options(impute, task)
    if not shards:
        return _finish(_scan_part(source), source, impute, task)
    exchange = gather or _alone
    local = [_guarded(_part_json, src) for src in shards]
    parts = [_Part.from_json(_raise_any(text)) for text in exchange(local)]
    # A column read as text in one shard is text in all: the shards that read it as
    # numbers read it again as text (every process decides the same from the same list).
    texts = sorted({n for part in parts for n, c in part.cols.items() if not c.number})
    if any(part.cols[n].number for part in parts for n in texts):
        again = [_guarded(_text_json, src, texts) for src in shards]
        for part, text in zip(parts, exchange(again), strict=True):
            for name, (missing, counts) in json.loads(_raise_any(text)).items():
                col = part.cols[name]
                if col.number:
                    col.number, col.missing = False, missing
                    col.counts = Counter(dict(counts))
    found = _finish(_merge(parts), source, impute, task)
    found.shard_rows = [part.rows for part in parts]
    return found


def _check_scan_options(impute: str | None, task: str) -> None:
    from glassnet.data import TASKS

    if impute not in (None, "mean"):
        raise GlassnetError(
            "expected --impute mean (or none) with --stream (a median or a most frequent number "
            "needs every value in memory)",
            got=repr(impute),
            field="--impute",
        )
    if task not in TASKS:
        raise GlassnetError(f"expected one of {', '.join(TASKS)}", got=repr(task), field="--task")


def _part_json(source: Source) -> str:
    return _scan_part(source).to_json()


def _text_json(source: Source, names: list[str]) -> str:
    return json.dumps(_text_counts(source, names))


def _guarded(work: Callable[..., str], *args: Any) -> str:
    """``work(*args)``'s JSON, or a GlassnetError it raised as JSON (sent to every
    process, so all raise it rather than wait for a process that stopped)."""
    try:
        return work(*args)
    except GlassnetError as err:
        return json.dumps({"error": [err.expected, err.got, err.file, err.field]})


def _raise_any(text: str) -> str:
    got = json.loads(text)
    if isinstance(got, dict) and "error" in got:
        expected, what, file, name = got["error"]
        raise GlassnetError(expected, got=what, file=file, field=name)
    return text


@dataclass
class _Part:
    """One shard's first pass (or the whole file's): the sufficient statistics."""

    cols: dict[str, _ColumnScan]
    labels: Counter[str]
    #: Labels counted as regression targets (more distinct ones than classes can be).
    many: int | None
    target: Moments
    rows: int

    def to_json(self) -> str:
        cols = [[c.name, c.number, c.moments.n, c.moments.mean, c.moments.m2, c.low, c.high,
                 c.missing, list(c.counts.items())] for c in self.cols.values()]  # fmt: skip
        t = self.target
        return json.dumps({"cols": cols, "labels": list(self.labels.items()), "many": self.many,
                           "target": [t.n, t.mean, t.m2], "rows": self.rows})  # fmt: skip

    @classmethod
    def from_json(cls, text: str) -> _Part:
        d = json.loads(text)
        cols = {}
        for name, number, n, mean, m2, low, high, missing, counts in d["cols"]:
            cols[name] = _ColumnScan(name, number, Moments(n, mean, m2), low, high, missing,
                                     Counter(dict(counts)))  # fmt: skip
        return cls(cols, Counter(dict(d["labels"])), d["many"], Moments(*d["target"]), d["rows"])


def _merge(parts: list[_Part]) -> _Part:
    """The shards' statistics (in file order) merged into the whole file's."""
    from glassnet.limits import MAX_CLASSES

    first = parts[0]
    cols = {name: _ColumnScan(name, col.number) for name, col in first.cols.items()}
    labels: Counter[str] = Counter()
    target = Moments()
    for part in parts:
        for name, col in part.cols.items():
            into = cols[name]
            into.number = into.number and col.number
            into.moments.merge(col.moments.n, col.moments.mean, col.moments.m2)
            into.low, into.high = min(into.low, col.low), max(into.high, col.high)
            into.missing += col.missing
            into.counts.update(col.counts)  # keys met first stay first: the file's order
            if len(into.counts) > MAX_CATEGORIES:
                raise GlassnetError(
                    f"expected at most {MAX_CATEGORIES} categories in a text column with --stream "
                    f"(an ID, or a number column with stray text: --drop {name}, or fix the cells)",
                    got=f"more than {MAX_CATEGORIES} distinct values",
                    field=name,
                )
        labels.update(part.labels)
        target.merge(part.target.n, part.target.mean, part.target.m2)
    many = None
    if any(p.many is not None for p in parts) or len(labels) > MAX_CLASSES:
        bad = [c for c in labels if math.isnan(_label_number(c))]
        if bad:
            raise GlassnetError(
                f"expected at most {MAX_CLASSES} classes, or numbers (regression)",
                got=f"more distinct labels, such as {bad[0]!r}",
                field="label",
            )
        many = sum(p.many or 0 for p in parts) + sum(labels.values())
        labels = Counter()
    return _Part(cols, labels, many, target, sum(p.rows for p in parts))


def _text_counts(source: Source, names: list[str]) -> dict[str, Any]:
    """Columns ``names`` of ``source`` read as text: name -> [missing cells, [[category,
    count], ...] in the order met]."""
    out: dict[str, Any] = {}
    counts = {n: Counter[str]() for n in names}
    missing = dict.fromkeys(names, 0)
    for batch in source.batches(names):
        for name in names:
            _, trimmed, gone = _cells(_as_string(batch.column(name)), source.decimal)
            cells, gone_mask = trimmed.to_pylist(), gone.to_pylist()
            missing[name] += sum(gone_mask)
            counts[name].update(c for c, m in zip(cells, gone_mask, strict=True) if not m)
    for name in names:
        out[name] = [missing[name], list(counts[name].items())]
    return out


def _as_string(column: Any) -> Any:
    """A column as Arrow strings (a Parquet number column read as text cells)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
        return column
    return pc.cast(column, pa.string())


def _scan_part(source: Source) -> _Part:
    """The first pass over ``source`` (the file, or one shard), before the merge."""
    from glassnet.limits import MAX_CLASSES
    from glassnet.rawtable import TextCells
    from glassnet.tables import _date_parts

    cols = {name: _ColumnScan(name) for name in source.features}
    labels: Counter[str] = Counter()
    many: int | None = None  # more distinct labels than classes can be: counted, not kept
    target = Moments()
    rows = 0
    text_from: dict[str, int] = {}  # a column found to be text at this row: re-read before
    first = True
    for batch in source.batches():
        if source.span is not None:
            _no_line_breaks(batch, source)
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
                if rows:  # rows before this batch were read as numbers: read them again
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

    return _Part(cols, labels, many, target, rows)


def _no_line_breaks(batch: Any, source: Source) -> None:
    """A CSV shard's cells hold no line break: the shards are cut at line breaks, so a
    quoted cell holding one may be cut in two (a cut inside one leaves a cell ending in
    a line break in the shard before it).  Refused, naming the file."""
    import pyarrow.compute as pc

    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if pc.any(pc.match_substring_regex(column, "[\r\n]")).as_py():
            raise GlassnetError(
                "expected no line breaks inside quoted cells with --shards (the file is cut "
                "into byte ranges at line breaks; train it without --shards)",
                got=f"a line break in a cell in {source.shard_name}",
                file=str(source.path),
                field=name,
            )


def _finish(part: _Part, source: Source, impute: str | None, task: str) -> Scan:
    """The task, classes and preprocessing from the (merged) first pass."""
    from glassnet.data import canonical_labels, task_from_values
    from glassnet.limits import MAX_CLASSES

    cols, labels, many, rows = part.cols, part.labels, part.many, part.rows
    target = part.target
    if rows == 0:
        raise GlassnetError(
            "expected a header row and at least one data row",
            got="no data rows",
            file=str(source.path),
        )
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
    sharding: Sharding | None = None,
) -> Any:
    """Train ``net`` in place on ``source``, window by window (see the module
    docstring); return the history.  ``net.preprocessing`` is set to ``found``'s.
    ``sharding``: read the file as shards (:class:`Sharding`), this process its own.

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
    last_one = found.rows % batch_size == 1
    if sharding is not None:  # a step whose shards' parts make one row together
        last_one = 1 in sharding.batch_sizes(batch_size)
    if coupled and last_one:
        # The epoch's last batch would be one row: PyTorch's batch norm refuses it.
        raise GlassnetError(
            f"expected batches of at least 2 rows for {', '.join(coupled)} ({found.rows} rows "
            f"in batches of {batch_size}{f' from {sharding.count} shards' if sharding else ''} "
            "leave one row)",
            got=f"batch_size {batch_size}",
            field="batch_size",
        )
    net.preprocessing = pre
    loss_obj = resolve_loss(net, loss)
    if seed is not None:
        seed = positive_int(seed, "seed", minimum=0)
    state = resolve_state(net, loss_obj, optimizer, seed)
    opt, rng = state.optimizer, state.rng

    if sharding is None:
        rows = min(window, found.rows)
    else:
        rows = sharding.buffer_rows(window_batches, batch_size)
    X = np.zeros((rows, pre.n_inputs), dtype=net.dtype)
    Y = np.zeros((rows, net.sizes[-1]), dtype=net.dtype)
    labels = np.zeros(rows, dtype=np.int64) if classify else None
    order = np.arange(rows)
    data = Rows(X, Y, labels, order.copy())

    def fill(table: Any, at: int, into: int = 0) -> int:
        """The window ``table`` (from file row ``at``) into the buffers from row
        ``into``; its rows."""
        m = table.num_rows
        end = into + m
        X[into:end] = pre.transform(raw_table(table, pre, source.decimal), first_line=at)
        targets = label_values(table, found, source)
        if labels is not None:
            Y[into:end] = 0.0
            Y[np.arange(into, end), targets] = 1.0
            labels[into:end] = targets
        else:
            Y[into:end, 0] = targets
        return m

    first = None
    if sharding is None:
        windows = source.windows(window)
        first = next(windows, None)
        if first is None:
            raise GlassnetError("expected data rows", got="none", file=str(source.path))
        fill(first, source.first_line)

    def plain_steps(e: int) -> Iterator[tuple[Array, list[int] | None]]:
        """One epoch's batches, read window by window (every process the whole file)."""
        seen = 0
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
                yield idx_all[start : start + batch_size], None

    steps: Callable[[int], Iterator[tuple[Array, list[int] | None]]] = plain_steps
    if sharding is not None:
        steps = partial(sharding.steps, fill=fill, reload=step_engine.reload, rng=rng,
                        batch_size=batch_size, window_batches=window_batches,
                        shuffle=shuffle)  # fmt: skip
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
            for idx, parts in steps(e):
                batch += 1
                step_engine.parts = parts
                p, value = step_engine.step(idx)
                if not math.isfinite(value):
                    _restore(net, opt, snapshot)
                    _diverged(value, epoch, batch)
                m = idx.shape[0] if parts is None else sum(parts)
                loss_sum += value * m
                seen += m
                if labels is not None:
                    if parts is not None:  # the whole batch's output: this process's part
                        at = sum(parts[: sharding.rank if sharding else 0])
                        p = p[at : at + idx.shape[0]]
                    predicted = classes_from_output(net, p)
                    correct += int(np.count_nonzero(predicted == labels[idx]))
            step_engine.sync()
            if sharding is not None and sharding.processes > 1:
                correct = sum(int(c) for c in sharding.gather([str(correct)]))
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
        step_engine.parts = None
        step_engine.end()
        for cb in callbacks:
            cb.on_train_end(net, state.history)
    return state.history


@dataclass
class Sharding:
    """A sharded streamed run (``glassnet train --stream --shards S``): the file cut in
    ``count`` shards (:meth:`Source.shard`), process p of ``processes`` reading the p-th
    of near-equal contiguous runs of them (S processes: one shard each; one process:
    all S, in lockstep).

    Each step's batch is, in shard order, every shard's part: shard r gives
    ``b_r`` rows a step (the r-th of S near-equal parts of the batch size), from its
    windows of ``window_batches · b_r`` rows, shuffled within the window; a shard whose
    rows have run out gives none (an empty part), so every process takes the same
    number of steps (the longest shard's).  The permutations are drawn from the fit's
    one random stream for every shard in shard order by every process (each keeps its
    own shards'), so the stream, its dropout masks and the run do not depend on the
    number of processes: S shards on any number of processes (≤ S) are one run."""

    count: int
    rows: list[int]
    sources: list[Source]
    rank: int = 0
    processes: int = 1
    gather: Callable[[list[str]], list[str]] = field(default=lambda mine: mine)  # one process

    def mine(self, p: int | None = None) -> list[int]:
        """The shards process ``p`` (default: this one) reads."""
        blocks = np.array_split(np.arange(self.count), self.processes)
        return [int(r) for r in blocks[self.rank if p is None else p]]

    def share(self, batch_size: int) -> list[int]:
        """Rows a step from each shard: the batch size split in ``count`` near-equal parts."""
        return [len(b) for b in np.array_split(np.arange(batch_size), self.count)]

    def batch_sizes(self, batch_size: int) -> list[int]:
        """The rows of each step's batch (every shard's part together), in step order."""
        share = self.share(batch_size)
        steps = max(-(-n // b) for n, b in zip(self.rows, share, strict=True) if b)
        return [
            sum(max(0, min(b, n - s * b)) for n, b in zip(self.rows, share, strict=True))
            for s in range(steps)
        ]

    def buffer_rows(self, window_batches: int, batch_size: int) -> int:
        """Rows this process's buffers hold: one window of each of its shards."""
        share = self.share(batch_size)
        return sum(min(window_batches * share[r], self.rows[r]) for r in self.mine())

    def steps(
        self,
        e: int,
        *,
        fill: Callable[..., int],
        reload: Callable[[], None],
        rng: np.random.Generator,
        batch_size: int,
        window_batches: int,
        shuffle: bool,
    ) -> Iterator[tuple[Array, list[int] | None]]:
        """Epoch ``e``'s steps: (this process's rows of the buffer, every process's part
        sizes — None with one process)."""
        share = self.share(batch_size)
        mine = self.mine()
        sizes_w = [window_batches * b for b in share]
        # Each of this process's shards: its place in the buffer and its windows.
        at, places = 0, {}
        for r in mine:
            places[r] = at
            at += min(sizes_w[r], self.rows[r])
        readers = {r: self.sources[mine.index(r)].windows(sizes_w[r]) for r in mine if share[r]}
        orders: dict[int, Array] = {}
        steps = max(-(-n // b) for n, b in zip(self.rows, share, strict=True) if b)
        blocks = [self.mine(p) for p in range(self.processes)]
        for s in range(steps):
            j, within = divmod(s, window_batches)
            if within == 0:  # the next windows: every shard's permutation, in shard order
                for r in range(self.count):
                    length = min(sizes_w[r], self.rows[r] - j * sizes_w[r]) if share[r] else 0
                    if length <= 0:
                        continue
                    perm = np.arange(length)
                    if shuffle:
                        rng.shuffle(perm)
                    if r in readers:
                        table = next(readers[r], None)
                        if table is None or table.num_rows != length:
                            raise GlassnetError(
                                f"expected {length} rows in window {j + 1} of shard {r + 1} "
                                "(the first pass's count: the file changed while training?)",
                                got=str(0 if table is None else table.num_rows),
                                file=str(self.sources[0].path),
                            )
                        src = self.sources[mine.index(r)]
                        fill(table, src.first_line + j * sizes_w[r], places[r])
                        orders[r] = perm + places[r]
                if readers:
                    reload()
            took = [max(0, min(b, n - s * b)) for n, b in zip(self.rows, share, strict=True)]
            lo = within * np.array(share)
            idx = np.concatenate(
                [np.zeros(0, np.int64)]
                + [orders[r][lo[r] : lo[r] + took[r]] for r in mine if took[r]]
            )
            parts = [sum(took[r] for r in block) for block in blocks]
            yield idx, (parts if self.processes > 1 else None)


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
    #: Sharded (--shards): the shards, and the rows each process read (first pass,
    #: re-reads and epochs together).
    shards: int | None = None
    rows_read: list[int] | None = None

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
    shards: int | None = None,
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
        if shards is not None and shards != settings.get("shards"):
            raise GlassnetError(
                "expected the checkpoint's --shards (the shards make the run's batches)",
                got=str(shards),
                field="--shards",
            )
        shards = settings.get("shards")
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
    sharding = None
    if shards:
        sharding = _sharding(source, shards, options.batch_size, engine)
        found = scan(source, impute=options.impute, task=options.task,
                     shards=sharding.sources, gather=sharding.gather)  # fmt: skip
        sharding.rows = found.shard_rows
    else:
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
            "shards": shards,
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
            sharding=sharding,
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
    rows_read = None
    if sharding is not None:  # what each process read: its shards only
        read = str(sum(src.rows_read for src in sharding.sources))
        rows_read = [int(n) for n in sharding.gather([read])]
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
        shards=shards,
        rows_read=rows_read,
    )


def _sharding(source: Source, shards: int, batch_size: int, engine: Any) -> Sharding:
    """This process's part of a run read as ``shards`` shards (under torchrun, the
    process group's rank and size), checked."""
    from glassnet.training.first_step import FirstStepCheck

    rank, world = _processes()
    if shards < 1 or world > shards:
        raise GlassnetError(
            f"expected a whole number of shards ≥ 1 and ≥ the {world} processes",
            got=str(shards),
            field="--shards",
        )
    if batch_size < shards:
        raise GlassnetError(
            "expected --batch-size ≥ --shards (each shard gives its part of every batch)",
            got=f"batch size {batch_size} for {shards} shards",
            field="--shards",
        )
    if world > 1 and isinstance(engine, FirstStepCheck):
        raise GlassnetError(
            "expected no --check-first-step with --shards under torchrun (each process holds "
            "only its part of the batch; check with --shards in one process)",
            got="--check-first-step",
            field="--shards",
        )
    out = Sharding(shards, [], [], rank, world, _all_gather if world > 1 else _alone)
    out.sources = [source.shard(r, shards) for r in out.mine()]
    return out


def _alone(mine: list[str]) -> list[str]:
    return mine


def _all_gather(mine: list[str]) -> list[str]:
    """Every process's list, joined in rank order (torch.distributed)."""
    import torch.distributed as dist

    got: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(got, mine)
    return [text for part in got for text in part]


def _processes() -> tuple[int, int]:
    """(rank, number of processes) of the process group the torch engine joined, else
    (0, 1)."""
    import sys

    torch = sys.modules.get("torch")
    if torch is None:
        return 0, 1
    dist = torch.distributed
    if not dist.is_available() or not dist.is_initialized():
        return 0, 1
    return int(dist.get_rank()), int(dist.get_world_size())
