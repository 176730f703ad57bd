"""Reading CSV files with pyarrow's CSV reader, and deciding what each column means.

The reading is pyarrow's (quoting, encodings, blocks of the file parsed in C++); what a
column *means* is decided here, by rules a person can read:

1. **Dialect** (:func:`sniff`): the separator is whichever of ``,`` ``;`` tab ``|``
   splits the first lines into the same number (> 1) of fields; with a separator other
   than ``,``, numbers like ``3,14`` mean a decimal comma.  ``--sep`` and ``--decimal``
   say it instead.  A UTF-8 byte-order mark is skipped; a file that is not UTF-8 is
   read as Windows-1252 (or Latin-1), with a note.
2. **Cells**: every cell is read as text, stripped of spaces; ``""``, ``NA``, ``N/A``,
   ``nan``, ``null``, ``None``, ``?`` are missing (:data:`glassnet.preprocess.MISSING`).
3. **Number columns**: a column whose present cells all read as numbers (``5,123``
   with a thousands separator included) becomes float64, NaN for a missing cell.  Other
   columns stay text cells; :meth:`glassnet.preprocess.Preprocessing.fit` then tells a
   text column from a number column with a few stray cells.
4. **Dates**: a text column whose present cells are ISO dates (``2024-03-01``,
   ``2024-03-01T12:30``) is refused with a hint, or with ``dates="expand"`` becomes
   number columns ``NAME_year``, ``NAME_month``, ``NAME_day``, ``NAME_weekday``,
   ``NAME_hour``, ``NAME_minute`` (the parts that never change, such as the hour of
   dates without times, are then left out as any constant column), or with
   ``dates="drop"`` is left out.  Never one-hot encoded.  :func:`expand_dates` does
   the same to a DataFrame.
5. **Decimal comma**: ``1.234,5`` and ``1.234.567`` have thousands dots; ``1.234``
   alone is ambiguous (1234 or 1.234) and an error naming the cell.

pyarrow is an extra (``pip install -e '.[train]'``), imported when a CSV is read.
Memory: the file's text once in Arrow's buffers, then float64 columns and, for a text
column, int32 codes into its distinct cells (:class:`~glassnet.rawtable.TextCells`:
no Python object per cell); ``bench/csv_memory.py`` measures it.  Line numbers in
messages are the file's own (a quoted cell may hold line breaks): the file is read
again with Python's ``csv`` module when a message needs one (:class:`FileLines`).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.preprocess import (
    MISSING,
    Lines,
    Preprocessing,
    drop_constant,
    is_missing,
    line_of,
    to_number,
)
from glassnet.rawtable import TextCells

Array = np.ndarray

SEPARATORS: tuple[str, ...] = (",", ";", "\t", "|")
DATES: tuple[str, ...] = ("error", "expand", "drop")
#: Bytes read to sniff the dialect.
SAMPLE_BYTES = 1 << 16
#: Bytes of the file parsed at a time (a batch of rows): small blocks keep the reader's
#: own memory small (bench/csv_memory.py), large ones cost fewer Python steps.
BLOCK_BYTES = 1 << 20
#: A text column is a date column when at least this share of its present cells are dates.
DATE_SHARE = 0.9
_ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)
_OTHER_DATE = re.compile(r"\d{1,2}[/.]\d{1,2}[/.]\d{2,4}(?: \d{1,2}:\d{2}(?::\d{2})?)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d{1,3}(?:\.\d{3})+,\d*|[+-]?\d+,\d+")
#: With a decimal comma: dots between groups of three digits are thousands marks
#: (``1.234,5``, ``1.234.567``) ...
_DOT_GROUPS = re.compile(r"^[+-]?[1-9]\d{0,2}(?:\.\d{3})+(?:,\d*)?$")
#: ... but one such dot and no comma (``1.234``) could be either mark: ambiguous.
_DOT_AMBIGUOUS = re.compile(r"^[+-]?[1-9]\d{0,2}\.\d{3}$")  # (0.125 is not ambiguous)
_DECIMAL_POINT = re.compile(r"[+-]?\d*\.\d+")
#: A missing cell, lower-cased (MISSING as one pattern: no Python set crosses into Arrow,
#: which would import pandas — 1.5 s — where it is installed).
_MISSING_PATTERN = "^(" + "|".join(re.escape(m) for m in sorted(MISSING)) + ")$"


@dataclass
class Dialect:
    """How a CSV file is written: separator, decimal mark, text encoding."""

    sep: str = ","
    decimal: str = "."
    encoding: str = "utf-8"
    notes: list[str] = field(default_factory=list)


@dataclass
class Columns:
    """A CSV file's columns, read: names (the header, or x1, x2, ... without one), each
    column's values (float64 (n,) for a number column, else its stripped text cells as
    :class:`~glassnet.rawtable.TextCells`) and ``raw`` text of the columns asked for
    verbatim (IDs), the file line of the first data row, notes and the file's
    fingerprint."""

    names: list[str]
    values: dict[str, Array | TextCells]
    raw: dict[str, list[str]]
    n_rows: int
    first_line: int
    notes: list[str]
    fingerprint: dict[str, Any]
    #: Each data row's file line (a quoted cell may hold a line break; blank lines are
    #: skipped), found only when a message needs one.
    lines: FileLines | None = None


def _need_pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.csv
    except ImportError:
        from glassnet.extras import install_hint

        raise GlassnetError(
            f"expected pyarrow to read CSV files ({install_hint('train')})",
            got="no pyarrow",
            field="data",
        ) from None
    return pyarrow


# -- the dialect -----------------------------------------------------------------------------
def sniff(path: Path, *, sep: str | None = None, decimal: str | None = None) -> Dialect:
    """The file's :class:`Dialect`, from its first :data:`SAMPLE_BYTES` bytes; ``sep`` and
    ``decimal`` given are taken as they are (checked)."""
    if sep is not None:
        sep = {"tab": "\t", "\\t": "\t"}.get(sep, sep)
        if len(sep) != 1 or sep in '"\r\n':
            raise GlassnetError("expected one character (, ; tab |)", got=repr(sep), field="--sep")
    if decimal is not None and decimal not in (".", ","):
        raise GlassnetError("expected . or ,", got=repr(decimal), field="--decimal")
    with path.open("rb") as f:
        raw = f.read(SAMPLE_BYTES)
    if b"\x00" in raw:
        raise GlassnetError(
            "expected a text CSV file", got="binary data (NUL bytes)", file=str(path)
        )
    notes: list[str] = []
    if len(raw) == SAMPLE_BYTES:
        raw = raw[: raw.rfind(b"\n") + 1] or raw  # whole lines only (no cut character)
    encoding = "utf-8"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        try:
            text, encoding = raw.decode("cp1252"), "cp1252"
        except UnicodeDecodeError:
            text, encoding = raw.decode("latin-1"), "latin-1"
        notes.append(f"{path.name}: not UTF-8; read as {encoding}")
    text = text.removeprefix("\ufeff")
    lines = [line for line in text.splitlines() if line.strip()][:50]
    if sep is None:
        sep = _sniff_separator(lines)
    if decimal is None:
        decimal = "." if sep == "," else _sniff_decimal(lines[1:], sep)
    if decimal == "," and sep == ",":
        raise GlassnetError(
            "expected a separator other than , with a decimal comma (--sep ';')",
            got="--decimal , with --sep ,",
            field="--decimal",
        )
    return Dialect(sep, decimal, encoding, notes)


def _sniff_separator(lines: list[str]) -> str:
    """The candidate that splits every sample line into the same number (> 1) of fields,
    the most fields winning; ``,`` when none does."""
    best, best_width = ",", 1
    for cand in SEPARATORS:
        widths = {len(row) for row in csv.reader(lines, delimiter=cand)}
        if len(widths) == 1 and (width := widths.pop()) > best_width:
            best, best_width = cand, width
    return best


def _sniff_decimal(lines: list[str], sep: str) -> str:
    cells = [c.strip() for row in csv.reader(lines, delimiter=sep) for c in row]
    commas = sum(1 for c in cells if _DECIMAL_COMMA.fullmatch(c))
    points = sum(1 for c in cells if _DECIMAL_POINT.fullmatch(c))
    return "," if commas > points else "."


# -- reading --------------------------------------------------------------------------------
def header_of(path: Path, dialect: Dialect, header: bool = True) -> tuple[list[str], int]:
    """The column names and how many lines come before the data (names x1, x2, ...
    without a header): the first non-blank line, split with the dialect's separator.
    Two columns with one name are refused."""
    with path.open(newline="", encoding=dialect.encoding, errors="replace") as f:
        text = f.read(SAMPLE_BYTES)
    lines = text.removeprefix("\ufeff").splitlines(keepends=True)
    at = next((i for i, line in enumerate(lines) if line.strip()), None)
    if at is None:
        raise GlassnetError(
            "expected a header row and at least one data row", got="0 row(s)", file=str(path)
        )
    row = next(csv.reader([lines[at]], delimiter=dialect.sep))
    if not header:
        return [f"x{j + 1}" for j in range(len(row))], at
    head = [h.strip() for h in row]
    twice = sorted({h for h in head if head.count(h) > 1})
    if twice:
        where = "; ".join(
            f"{h!r} in columns {', '.join(str(j + 1) for j, x in enumerate(head) if x == h)}"
            for h in twice[:3]
        )
        raise GlassnetError(
            "expected distinct column names (rename one of each pair)", got=where, file=str(path)
        )
    return head, at + 1


def read_columns(
    path: Path,
    dialect: Dialect,
    head: list[str],
    skip: int,
    *,
    wanted: list[str],
    verbatim: list[str] | None = None,
    dates: str = "error",
) -> Columns:
    """The ``wanted`` columns of the CSV at ``path`` converted (see the module
    docstring; a date column may become several), and the ``verbatim`` ones' cells
    exactly as written (IDs, labels).  ``head`` and ``skip`` are :func:`header_of`'s.

    Read in batches (Arrow's streaming reader): each batch's cells become float64
    chunks and its text is let go, so memory stays near the float table's size.  A
    column that turns out not to be all numbers is read again, alone, as text."""
    pa = _need_pyarrow()
    import pyarrow.compute as pc

    if dates not in DATES:
        raise GlassnetError(f"expected one of {', '.join(DATES)}", got=repr(dates), field="--dates")
    verbatim = verbatim or []
    first_line = skip + 1
    # Each number column is written straight into one array as long as the file has
    # lines (rows can only be fewer): no chunks to join at the end, whose copies would
    # double the table for a moment; the pages past the last row are never touched, so
    # they take no memory.
    upper = max(_line_count(path) - skip + 1, 1)  # (_room grows it if ever short)
    chunks: dict[str, Array] = {c: np.empty(upper) for c in head if c in wanted}
    raw: dict[str, list[str]] = {c: [] for c in head if c in verbatim}
    n = 0
    both = [c for c in head if c in chunks or c in raw]  # a column may be both (an ID)
    for batch in _batches(path, dialect, head, skip, both):
        for name in list(chunks):
            column = batch.column(name)
            trimmed = pc.utf8_trim_whitespace(column)
            missing = pc.match_substring_regex(pc.utf8_lower(trimmed), pattern=_MISSING_PATTERN)
            numbers, unsure = _as_numbers(pa, pc, trimmed, missing, dialect.decimal)
            if numbers is not None and unsure is not None:
                cell = trimmed.slice(unsure, 1).to_pylist()[0]
                raise _ambiguous(cell, name, path, _line_at(path, dialect, skip, n + unsure))
            if numbers is None:
                del chunks[name]  # text: read again below, whole
                continue
            bad = np.flatnonzero(np.isinf(numbers))
            if bad.size:
                raise GlassnetError(
                    "expected a finite number",
                    got=f"{trimmed.slice(int(bad[0]), 1).to_pylist()[0]!r} on line "
                    f"{_line_at(path, dialect, skip, n + int(bad[0]))}",
                    file=str(path),
                    field=name,
                )
            chunks[name] = _room(chunks[name], n + numbers.shape[0])
            chunks[name][n : n + numbers.shape[0]] = numbers
        for name in raw:
            raw[name].extend(batch.column(name).to_pylist())
        n += batch.num_rows
    if n == 0:
        raise GlassnetError(
            "expected a header row and at least one data row", got="no data rows", file=str(path)
        )
    text = [c for c in head if c in wanted and c not in chunks]
    cells_of: dict[str, TextCells] = {}
    if text:
        cells_of = _text_columns(pa, pc, path, dialect, head, skip, text)
    values: dict[str, Array | TextCells] = {}
    notes = list(dialect.notes)
    names: list[str] = []
    lines = FileLines(path, dialect, skip)
    for name in head:
        if name in chunks:
            values[name] = chunks.pop(name)[:n]
            names.append(name)
        elif name in cells_of:
            parts = _date_parts(name, cells_of[name], dates, path, lines)
            if parts is None:
                values[name] = cells_of.pop(name)
                names.append(name)
            elif parts:
                values.update(parts)
                names.extend(parts)
                notes.append(f"{name}: dates expanded into {', '.join(parts)} (--dates expand)")
            else:
                notes.append(f"{name}: a date column, left out (--dates drop)")
    stamp = {"columns": list(head), **fingerprint_file(path, skip)}
    return Columns(names, values, raw, n, first_line, notes, stamp, lines)


def _batches(
    path: Path,
    dialect: Dialect,
    head: list[str],
    skip: int,
    columns: list[str],
    span: tuple[int, int] | None = None,
) -> Any:
    """Arrow record batches of the named columns, every cell as text; a malformed row
    is a :class:`GlassnetError` (one line, naming the file).  ``span``: only the bytes
    [start, end) of the file, data lines whole (a shard: ``glassnet.stream``)."""
    pa = _need_pyarrow()
    import pyarrow.csv as pacsv

    if span is not None and span[0] >= span[1]:
        return
    try:
        reader = pacsv.open_csv(
            path if span is None else io.BufferedReader(_ByteRange(path, *span)),
            read_options=pacsv.ReadOptions(
                encoding=dialect.encoding,
                column_names=list(head),
                skip_rows=skip if span is None else 0,
                block_size=BLOCK_BYTES,
                use_threads=False,
            ),
            parse_options=pacsv.ParseOptions(delimiter=dialect.sep, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(head, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                include_columns=columns,
            ),
        )
        pool = pa.default_memory_pool()
        for batch in reader:
            yield batch
            # Arrow's allocator keeps what a batch freed for later; given back at once,
            # the reader's peak stays near a few blocks instead of growing with the file
            pool.release_unused()
    except (pa.ArrowInvalid, OSError, UnicodeDecodeError) as err:
        detail = " ".join(str(err).split())
        m = re.search(r"Expected (\d+) columns, got (\d+)", detail)
        if m:
            raise GlassnetError(
                f"expected {m.group(1)} values (as in the header)",
                got=f"{m.group(2)} in a row: {detail.split(': ', 2)[-1][:60]}",
                file=str(path),
            ) from None
        raise GlassnetError("expected a CSV file", got=detail[:120], file=str(path)) from None


class _ByteRange(io.RawIOBase):
    """The bytes [start, end) of a file, as a readable stream."""

    def __init__(self, path: Path, start: int, end: int) -> None:
        super().__init__()
        self._file = open(path, "rb")  # closed with the stream
        self._file.seek(start)
        self._left = end - start

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._left)
        if n <= 0:
            return 0
        got = self._file.readinto(memoryview(buffer)[:n])
        self._left -= got
        return got

    def close(self) -> None:
        self._file.close()
        super().close()


def _line_count(path: Path) -> int:
    """Line breaks in the file, ``\\n`` and ``\\r`` both counted (an upper bound on its
    rows whatever its line ends; read in blocks)."""
    count = 0
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            count += block.count(b"\n") + block.count(b"\r")
    return count


def _room(array: Array, size: int) -> Array:
    """``array``, or a copy grown to ``size`` when it is shorter (never, when the line
    count bounds the rows — kept so a miscount cannot write past the end)."""
    if array.shape[0] >= size:
        return array
    grown = np.empty(max(size, 2 * array.shape[0]), dtype=array.dtype)
    grown[: array.shape[0]] = array
    return grown


def _as_numbers(
    pa: Any, pc: Any, trimmed: Any, missing: Any, decimal: str
) -> tuple[Array | None, int | None]:
    """(the column as float64, NaN where missing — or None when a present cell is not a
    number; the index of the first ambiguous cell or None).  Arrow casts the plain
    cells; cells it cannot cast (thousands separators, ``1_000``) are read one by one
    with :func:`to_number`.  With a decimal comma, ``1.234,5`` and ``1.234.567`` have
    thousands dots (1234.5, 1234567); ``1.234`` alone could be either (1.234 or 1234),
    so it is *ambiguous*: reported, never read as a guess."""
    ambiguous: int | None = None
    if decimal == ",":
        grouped = pc.match_substring_regex(trimmed, pattern=_DOT_GROUPS.pattern)
        text = pc.if_else(grouped, pc.replace_substring(trimmed, ".", ""), trimmed)
        text = pc.replace_substring(text, ",", ".")
        unsure = pc.and_(
            pc.match_substring_regex(trimmed, pattern=_DOT_AMBIGUOUS.pattern), pc.invert(missing)
        )
        if pc.any(unsure).as_py():
            ambiguous = int(pc.index(unsure, True).as_py())
    else:
        text = trimmed
    nulled = pc.if_else(missing, pa.nulls(1, pa.string())[0], text)
    try:
        cast = pc.cast(nulled, pa.float64())
        return _float_values(
            cast.combine_chunks() if hasattr(cast, "combine_chunks") else cast
        ), ambiguous
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    out = np.empty(len(trimmed))
    for i, (cell, gone) in enumerate(zip(text.to_pylist(), missing.to_pylist(), strict=True)):
        if gone:
            out[i] = np.nan
            continue
        v = to_number(cell) if decimal == "." else _float_or_none(cell)
        if v is None:
            return None, ambiguous
        out[i] = v
    return out, ambiguous


def _float_or_none(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def comma_number_text(cell: str) -> str | None:
    """A decimal-comma number's cell written with a decimal point (``1.234,5`` →
    ``1234.5``, ``3,14`` → ``3.14``); ``"?"`` for an ambiguous one (``1.234``); None
    when the cell is not such a number.

    >>> comma_number_text("1.234,5"), comma_number_text("-3,14"), comma_number_text("1.234")
    ('1234.5', '-3.14', '?')
    """
    if _DOT_AMBIGUOUS.fullmatch(cell):
        return "?"
    text = cell.replace(".", "") if _DOT_GROUPS.fullmatch(cell) else cell
    text = text.replace(",", ".")
    return text if _float_or_none(text) is not None else None


def _text_columns(
    pa: Any, pc: Any, path: Path, dialect: Dialect, head: list[str], skip: int, text: list[str]
) -> dict[str, TextCells]:
    """The ``text`` columns read again, each as :class:`TextCells`: Arrow
    dictionary-encodes each batch's (trimmed) cells in C++, and only the distinct cells
    of a batch become Python strings (mapped to codes for the whole column), so no
    Python object is made per cell.  With a decimal comma, a cell that is a number
    (``3,5``) is kept as its decimal-point text (``3.5``), so the preprocessing reads it
    as the number it is."""
    index_of: dict[str, dict[str, int]] = {c: {} for c in text}
    upper = max(_line_count(path) - skip + 1, 1)  # as for number columns: one array
    codes_of: dict[str, Array] = {c: np.empty(upper, dtype=np.int32) for c in text}
    n = 0
    for batch in _batches(path, dialect, head, skip, text):
        size = batch.num_rows
        for name in text:
            encoded = pc.dictionary_encode(pc.utf8_trim_whitespace(batch.column(name)))
            index = index_of[name]
            local = np.array(
                [index.setdefault(v.strip(), len(index)) for v in encoded.dictionary.to_pylist()],
                dtype=np.int32,
            )
            codes = encoded.indices
            raw = np.frombuffer(codes.buffers()[1], dtype=np.int32, count=codes.offset + len(codes))
            if local.size:
                codes_of[name] = _room(codes_of[name], n + size)
                codes_of[name][n : n + size] = local[raw[codes.offset :]]
        n += size
    out: dict[str, TextCells] = {}
    for name in text:
        values = list(index_of.pop(name))
        codes = codes_of.pop(name)[:n]
        if dialect.decimal == ",":
            values = _comma_values(values, codes, name, path, dialect, skip)
        out[name] = TextCells(codes, values)
    return out


def _comma_values(
    values: list[str], codes: Array, name: str, path: Path, dialect: Dialect, skip: int
) -> list[str]:
    """A text column's distinct cells with decimal-comma numbers written with a point.
    An ambiguous cell (``1.234``) in a column that is mostly numbers is an error naming
    it (the preprocessing would take the column as numbers and guess)."""
    from glassnet.preprocess import NUMERIC_SHARE

    read = [None if is_missing(v) else comma_number_text(v) for v in values]
    counts = np.bincount(codes, minlength=len(values))
    present = sum(int(counts[k]) for k, v in enumerate(values) if not is_missing(v))
    numbers = sum(int(counts[k]) for k, r in enumerate(read) if r is not None)
    unsure = [k for k, r in enumerate(read) if r == "?" and counts[k]]
    if unsure and numbers >= NUMERIC_SHARE * present:
        row = int(np.flatnonzero(codes == unsure[0])[0])
        raise _ambiguous(values[unsure[0]], name, path, _line_at(path, dialect, skip, row))
    return [v if r is None or r == "?" else r for v, r in zip(values, read, strict=True)]


def _ambiguous(cell: str, name: str, path: Path, line: int | str) -> GlassnetError:
    """The error for a number that reads two ways; ``line``: its file line, or where it
    is in words."""
    where = f"line {line}" if isinstance(line, int) else line
    return GlassnetError(
        "expected a number that reads one way with a decimal comma (1.234 could be 1234 or "
        "1.234: write 1234 or 1,234; or --decimal . if the file's decimal mark is a point)",
        got=f"{cell!r} on {where}",
        file=str(path),
        field=name,
    )


# -- where rows are in the file -----------------------------------------------------------------
class FileLines:
    """Each data row's file line, for messages: found when first asked for (an error is
    being written), by reading the file again with Python's ``csv`` module
    (:func:`row_lines`); ``rows`` maps this table's rows to the file's data rows (when
    some were dropped)."""

    def __init__(self, path: Path, dialect: Dialect, skip: int, rows: Array | None = None) -> None:
        self.path, self.dialect, self.skip, self.rows = path, dialect, skip, rows
        self._lines: Array | None = None
        self._read = False

    def take(self, rows: Array) -> FileLines:
        inner = rows if self.rows is None else self.rows[rows]
        out = FileLines(self.path, self.dialect, self.skip, np.asarray(inner))
        out._lines, out._read = self._lines, self._read
        return out

    def __getitem__(self, row: int) -> int:
        at = int(row if self.rows is None else self.rows[row])
        if not self._read:
            self._lines, self._read = row_lines(self.path, self.dialect, self.skip), True
        if self._lines is not None and at < self._lines.shape[0]:
            return int(self._lines[at])
        return self.skip + 1 + at  # the file could not be read again: rows one a line


def row_lines(path: Path, dialect: Dialect, skip: int) -> Array | None:
    """Each data row's first file line (int64 (n,)), found with Python's ``csv`` module
    (which, as Arrow, reads a quoted line break as part of the cell and skips blank
    lines); None when that reading fails."""
    import sys

    lines: list[int] = []
    old = csv.field_size_limit()
    try:
        csv.field_size_limit(sys.maxsize)
        with path.open(newline="", encoding=dialect.encoding, errors="replace") as f:
            for _ in range(skip):
                f.readline()
            lines.extend(_data_row_lines(f, dialect, skip))
    except (csv.Error, OSError):
        return None
    finally:
        csv.field_size_limit(old)
    return np.array(lines, dtype=np.int64)


def _data_row_lines(f: Any, dialect: Dialect, before: int) -> Iterator[int]:
    """The first file line of each data row read from ``f`` (a text file at the start of
    a line, opened with ``newline=""``), ``before`` lines of the file being above it."""
    reader = csv.reader(f, delimiter=dialect.sep)
    end = 0
    for row in reader:
        start, end = end + 1, reader.line_num
        if row:  # a blank line is not a row (Arrow skips it too)
            yield before + start


def shard_row_line(path: Path, dialect: Dialect, start: int, row: int) -> int | None:
    """The file line of data row ``row`` (from 0) of the CSV bytes from ``start`` on (a
    line start: a shard's first byte), read as :func:`row_lines` reads; None when the
    file cannot be read so or holds fewer rows (for a message: read when one is written)."""
    import sys

    old = csv.field_size_limit()
    try:
        csv.field_size_limit(sys.maxsize)
        with path.open("rb") as raw:
            before = 0
            while raw.tell() < start:  # the lines above the shard
                block = raw.read(min(BLOCK_BYTES, start - raw.tell()))
                if not block:
                    return None
                before += block.count(b"\n")
            text = io.TextIOWrapper(raw, encoding=dialect.encoding, errors="replace", newline="")
            for n, line in enumerate(_data_row_lines(text, dialect, before)):
                if n == row:
                    return line
    except (csv.Error, OSError):
        return None
    finally:
        csv.field_size_limit(old)
    return None


def _line_at(path: Path, dialect: Dialect, skip: int, row: int) -> int:
    """The file line of data row ``row`` (for a message: the file is read again)."""
    return FileLines(path, dialect, skip)[row]


def _float_values(arr: Any) -> Array:
    """A float64 Arrow array as NumPy, NaN where null — read from its buffers (Arrow's
    ``to_numpy`` imports pandas where it is installed)."""
    n, at = len(arr), arr.offset
    validity, data = arr.buffers()[0], arr.buffers()[1]
    values = np.frombuffer(data, dtype=np.float64, count=at + n)[at:].copy()
    if arr.null_count:
        bits = np.unpackbits(np.frombuffer(validity, dtype=np.uint8), bitorder="little")
        values[bits[at : at + n] == 0] = np.nan
    return values


def _date_parts(
    name: str, cells: TextCells, dates: str, path: Path | None, first_line: Lines
) -> dict[str, Array] | None:
    """None when ``cells`` are not dates; else the parts ``dates="expand"`` makes of
    them ({} for ``"drop"``); ``"error"`` refuses them with a hint.  Each distinct cell
    is looked at once.  ``path`` None: a DataFrame's column (rows named by index)."""
    values, codes = cells.values, cells.codes
    counts = cells.counts()
    gone = np.array([is_missing(v) for v in values], dtype=bool)
    here = [k for k in range(len(values)) if counts[k] and not gone[k]]
    if not here:
        return None
    total = int(sum(int(counts[k]) for k in here))
    iso = sum(int(counts[k]) for k in here if _ISO_DATE.fullmatch(values[k]))
    other = sum(int(counts[k]) for k in here if _OTHER_DATE.fullmatch(values[k]))
    if max(iso, other) < DATE_SHARE * total:
        return None
    first = values[int(codes[int(np.flatnonzero(~gone[codes])[0])])]
    where = str(path) if path is not None else None

    def flag(how: str) -> str:
        return f"--dates {how}" if path is not None else f'dates="{how}"'

    if dates == "error":
        raise GlassnetError(
            f"expected no date column (a date is not a category): {flag('expand')} (year, month, "
            f"day, weekday as numbers) or {flag('drop')}"
            + (f" (or --drop {name})" if path is not None else ""),
            got=f"dates such as {first!r}",
            field=name,
            file=where,
        )
    if dates == "drop":
        return {}
    if iso < other:
        raise GlassnetError(
            f"expected ISO dates (2024-03-31) for {flag('expand')} (day/month order is ambiguous)",
            got=repr(first),
            field=name,
            file=where,
        )
    parsed: list[dt.datetime | None] = []
    for k, v in enumerate(values):
        if gone[k] or not counts[k]:
            parsed.append(None)
            continue
        try:
            parsed.append(dt.datetime.fromisoformat(v.replace("Z", "+00:00")))
        except ValueError:
            row = int(np.flatnonzero(codes == k)[0])
            at = f"line {line_of(row, first_line)}" if first_line is not None else f"row {row}"
            raise GlassnetError(
                "expected a date (YYYY-MM-DD[THH:MM[:SS]])",
                got=f"{v!r} on {at}",
                field=name,
                file=where,
            ) from None
    # all six parts always, so a file (or frame) with times and one without give the same
    # columns; parts with one value in every row are then left out as any constant column
    keys = ["year", "month", "day", "weekday", "hour", "minute"]
    parts: dict[str, Array] = {}
    for key in keys:
        of_value = np.array(
            [
                np.nan if d is None else float(d.weekday() if key == "weekday" else getattr(d, key))
                for d in parsed
            ]
        )
        parts[f"{name}_{key}"] = of_value[codes]
    return parts


def expand_dates(frame: Any, dates: str = "expand") -> Any:
    """A DataFrame with its date columns made into number columns as ``glassnet train
    --dates expand`` makes a CSV's (``NAME_year``, ``NAME_month``, ``NAME_day``,
    ``NAME_weekday``, ``NAME_hour``, ``NAME_minute``; 0:00 for a date alone), or left
    out (``dates="drop"``), or refused with a hint (``"error"``); other columns as they
    are.  A date column is a ``datetime64`` column, or a text column whose cells are
    dates by :mod:`glassnet.tables`' rule (written as ISO text, then read as a CSV's).

    >>> import pandas as pd
    >>> expand_dates(pd.DataFrame({"when": ["2024-03-31", "2024-04-01T12:30"]})).iloc[1]
    when_year       2024.0
    when_month         4.0
    when_day           1.0
    when_weekday       0.0
    when_hour         12.0
    when_minute       30.0
    Name: 1, dtype: float64
    """
    if dates not in DATES:
        raise GlassnetError(f"expected one of {', '.join(DATES)}", got=repr(dates), field="dates")
    import pandas as pd

    out: dict[str, Any] = {}
    for label in frame.columns:
        column = frame[label]
        name = str(label)
        kind = getattr(column.dtype, "kind", "O")
        if kind == "M":  # datetime64: its ISO text, as a CSV would hold it
            text = column.dt.strftime("%Y-%m-%dT%H:%M:%S").where(column.notna(), "")
            cells = _frame_cells(text)
        elif kind in "OSUT" or str(column.dtype) in ("string", "category"):
            cells = _frame_cells(column)
        else:
            out[name] = column
            continue
        parts = _date_parts(name, cells, dates, None, None)
        if parts is None:
            out[name] = column
        else:
            out.update(parts)
    return pd.DataFrame(out, index=frame.index)


def _frame_cells(column: Any) -> TextCells:
    """A DataFrame column's cells as :class:`TextCells` (stripped text; missing as "")."""
    index: dict[str, int] = {}
    codes = np.fromiter(
        (
            index.setdefault("" if is_missing(v) else str(v).strip(), len(index))
            for v in column.tolist()
        ),
        dtype=np.int32,
        count=len(column),
    )
    return TextCells(codes, list(index))


# -- what a file held ------------------------------------------------------------------------
def fingerprint_file(path: Path, header_lines: int = 1) -> dict[str, Any]:
    """The file's SHA-256, its data rows' count and a hash of those rows *as a set* (the
    sum of each line's hash, so an order-free multiset hash), read in one streaming pass:
    a change can then be named — rows added or removed, the same rows in another order,
    or cells edited.  (Lines, not CSV records: a quoted cell with a line break counts as
    two; it is a fingerprint, not a parse.)"""
    whole = hashlib.sha256()
    total, rows = 0, 0
    with path.open("rb") as f:
        for number, line in enumerate(f, start=1):
            whole.update(line)
            if number <= header_lines or not line.strip():
                continue
            rows += 1
            # CRC-32 and Adler-32 side by side: 64 bits a line, fast in C; the exact
            # check is the SHA-256 — this only tells what kind of change it was
            body = line.rstrip(b"\r\n")
            total = (total + (zlib.crc32(body) << 32 | zlib.adler32(body))) % (1 << 64)
    return {"sha256": whole.hexdigest(), "rows": rows, "row_set": f"{total:016x}"}


def preprocessing_from(
    frame: Any,
    *,
    impute: str | None = None,
    handle_unknown: Literal["error", "ignore"] = "error",
    coerce: bool = False,
    dates: str = "error",
) -> Preprocessing:
    """The preprocessing ``glassnet train`` would store, fitted on every row of
    ``frame`` (a pandas DataFrame, or any table with ``columns`` and ``to_numpy``), so
    the Python path gets what the CLI gets:

    >>> import pandas as pd
    >>> import glassnet as gn
    >>> frame = pd.DataFrame({"age": [30.0, 50.0], "city": ["oslo", "rome"]})
    >>> pre = gn.preprocessing_from(frame)
    >>> pre.feature_names, pre.n_inputs
    (['age', 'city'], 3)
    >>> net = gn.mlp([pre.n_inputs, 4, 2], seed=0)
    >>> net.preprocessing = pre            # then fit and predict take raw frames, by name

    ``dates`` is ``--dates``: a date column (``datetime64``, or text of dates) is
    refused with a hint (``"error"``), made into ``NAME_year``, ``NAME_month``, ...
    number columns (``"expand"``; a model then expands a frame's date column itself
    when given one), or left out (``"drop"``) — see :func:`glassnet.tables.expand_dates`.
    As the CLI, columns with one value in every row, or none, are left out (a note in
    ``notes``).  Fit it on the training rows only (``frame.iloc[train]``) to keep the
    test rows out of the means, as the CLI does."""
    if not (hasattr(frame, "columns") and hasattr(frame, "to_numpy")):
        raise GlassnetError(
            "expected a DataFrame (columns and rows)", got=type(frame).__name__, field="frame"
        )
    names = [str(c) for c in frame.columns]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise GlassnetError(
            "expected distinct column names", got=", ".join(map(repr, twice[:5])), field="frame"
        )
    if type(frame).__module__.startswith("pandas"):
        frame = expand_dates(frame, dates)
        names = [str(c) for c in frame.columns]
    table = np.asarray(frame.to_numpy(dtype=object))
    if table.shape[0] == 0:
        raise GlassnetError("expected at least one row", got="none", field="frame")
    kept, kept_names, dropped = drop_constant(table, names)
    if not kept_names:
        raise GlassnetError(
            "expected a column that varies",
            got=f"only constant columns ({', '.join(dropped[:5])})",
            field="frame",
        )
    pre = Preprocessing.fit(
        np.asarray(kept, dtype=object),
        kept_names,
        np.arange(table.shape[0]),
        impute=impute,
        handle_unknown=handle_unknown,
        first_line=None,
        coerce=coerce,
    )
    if dropped:
        pre.notes.insert(
            0,
            f"left out {len(dropped)} column(s) with one value in every row or none: "
            + ", ".join(dropped[:10]),
        )
    return pre
