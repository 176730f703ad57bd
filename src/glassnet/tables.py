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
   number columns ``NAME_year``, ``NAME_month``, ``NAME_day``, ``NAME_weekday`` (and
   ``NAME_hour``, ``NAME_minute`` when times are given), or with ``dates="drop"`` is
   left out.  Never one-hot encoded.

pyarrow is an extra (``pip install -e '.[train]'``), imported when a CSV is read.
Memory: the file's text once in Arrow's buffers, then float64 columns (the text of each
column is let go once converted); ``bench/csv_memory.py`` measures it.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.preprocess import MISSING, to_number

Array = np.ndarray

SEPARATORS: tuple[str, ...] = (",", ";", "\t", "|")
DATES: tuple[str, ...] = ("error", "expand", "drop")
#: Bytes read to sniff the dialect.
SAMPLE_BYTES = 1 << 16
#: A text column is a date column when at least this share of its present cells are dates.
DATE_SHARE = 0.9
_ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[ T]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?(?:Z|[+-]\d{2}:?\d{2})?"
)
_OTHER_DATE = re.compile(r"\d{1,2}[/.]\d{1,2}[/.]\d{2,4}(?: \d{1,2}:\d{2}(?::\d{2})?)?")
_DECIMAL_COMMA = re.compile(r"[+-]?\d+,\d+")
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
    column's values (float64 (n,) for a number column, else an object array of stripped
    text cells) and ``raw`` text of the columns asked for verbatim (IDs), the file line
    of the first data row, notes and the file's fingerprint."""

    names: list[str]
    values: dict[str, Array]
    raw: dict[str, list[str]]
    n_rows: int
    first_line: int
    notes: list[str]
    fingerprint: dict[str, Any]


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
    chunks: dict[str, list[Array]] = {c: [] for c in head if c in wanted}
    raw: dict[str, list[str]] = {c: [] for c in head if c in verbatim}
    n = 0
    both = [c for c in head if c in chunks or c in raw]  # a column may be both (an ID)
    for batch in _batches(path, dialect, head, skip, both):
        for name in list(chunks):
            column = batch.column(name)
            trimmed = pc.utf8_trim_whitespace(column)
            missing = pc.match_substring_regex(pc.utf8_lower(trimmed), pattern=_MISSING_PATTERN)
            numbers = _as_numbers(pa, pc, trimmed, missing, dialect.decimal)
            if numbers is None:
                del chunks[name]  # text: read again below, whole
                continue
            bad = np.flatnonzero(np.isinf(numbers))
            if bad.size:
                raise GlassnetError(
                    "expected a finite number",
                    got=f"{trimmed.slice(int(bad[0]), 1).to_pylist()[0]!r} on line "
                    f"{n + int(bad[0]) + first_line}",
                    file=str(path),
                    field=name,
                )
            chunks[name].append(numbers)
        for name in raw:
            raw[name].extend(batch.column(name).to_pylist())
        n += batch.num_rows
    if n == 0:
        raise GlassnetError(
            "expected a header row and at least one data row", got="no data rows", file=str(path)
        )
    text = [c for c in head if c in wanted and c not in chunks]
    cells_of: dict[str, Array] = {}
    if text:
        parts_of: dict[str, list[str]] = {c: [] for c in text}
        for batch in _batches(path, dialect, head, skip, text):
            for name in text:
                parts_of[name].extend(pc.utf8_trim_whitespace(batch.column(name)).to_pylist())
        for name in text:
            cells = np.empty(n, dtype=object)
            cells[:] = parts_of.pop(name)
            cells_of[name] = cells
    values: dict[str, Array] = {}
    notes = list(dialect.notes)
    names: list[str] = []
    for name in head:
        if name in chunks:
            values[name] = np.concatenate(chunks.pop(name))
            names.append(name)
        elif name in cells_of:
            parts = _date_parts(name, cells_of[name], dates, path, first_line)
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
    return Columns(names, values, raw, n, first_line, notes, stamp)


def _batches(
    path: Path,
    dialect: Dialect,
    head: list[str],
    skip: int,
    columns: list[str],
    block_size: int = 1 << 22,
) -> Any:
    """Arrow record batches of the named columns, every cell as text; a malformed row
    is a :class:`GlassnetError` (one line, naming the file).  Arrow's reader reads some
    dozens of ``block_size`` blocks ahead of the consumer (about 40 measured with
    pyarrow 26: 154 MB of 4 MB blocks), so a reader that must stay small
    (:mod:`glassnet.stream`) asks for smaller blocks; a row must fit in one block."""
    pa = _need_pyarrow()
    import pyarrow.csv as pacsv

    try:
        reader = pacsv.open_csv(
            path,
            read_options=pacsv.ReadOptions(
                encoding=dialect.encoding,
                column_names=list(head),
                skip_rows=skip,
                block_size=block_size,
            ),
            parse_options=pacsv.ParseOptions(delimiter=dialect.sep, newlines_in_values=True),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(head, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
                include_columns=columns,
            ),
        )
        yield from reader
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


def _as_numbers(pa: Any, pc: Any, trimmed: Any, missing: Any, decimal: str) -> Array | None:
    """The column as float64 (NaN where missing) when every present cell is a number;
    None otherwise.  Arrow casts the plain cells; cells it cannot cast (thousands
    separators, ``1_000``) are read one by one with :func:`to_number`."""
    text = pc.replace_substring(trimmed, ",", ".") if decimal == "," else trimmed
    nulled = pc.if_else(missing, pa.nulls(1, pa.string())[0], text)
    try:
        cast = pc.cast(nulled, pa.float64())
        return _float_values(cast.combine_chunks() if hasattr(cast, "combine_chunks") else cast)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        pass
    if decimal == ",":
        return None  # "1.234,5": thousands with a decimal comma are not read as numbers
    out = np.empty(len(trimmed))
    for i, (cell, gone) in enumerate(zip(trimmed.to_pylist(), missing.to_pylist(), strict=True)):
        if gone:
            out[i] = np.nan
            continue
        v = to_number(cell)
        if v is None:
            return None
        out[i] = v
    return out


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
    name: str, cells: Array, dates: str, path: Path, first_line: int
) -> dict[str, Array] | None:
    """None when ``cells`` are not dates; else the parts ``dates="expand"`` makes of
    them ({} for ``"drop"``); ``"error"`` refuses them with a hint."""
    from glassnet.preprocess import is_missing

    present = [c for c in cells if not is_missing(c)]
    if not present:
        return None
    iso = sum(1 for c in present if _ISO_DATE.fullmatch(c))
    other = sum(1 for c in present if _OTHER_DATE.fullmatch(c))
    if max(iso, other) < DATE_SHARE * len(present):
        return None
    if dates == "error":
        raise GlassnetError(
            "expected no date column (a date is not a category): --dates expand (year, month, "
            f"day, weekday as numbers) or --dates drop (or --drop {name})",
            got=f"dates such as {present[0]!r}",
            file=str(path),
            field=name,
        )
    if dates == "drop":
        return {}
    if iso < other:
        raise GlassnetError(
            "expected ISO dates (2024-03-31) for --dates expand (day/month order is ambiguous)",
            got=repr(present[0]),
            file=str(path),
            field=name,
        )
    parsed: list[dt.datetime | None] = []
    for i, c in enumerate(cells):
        if is_missing(c):
            parsed.append(None)
            continue
        try:
            parsed.append(dt.datetime.fromisoformat(str(c).replace("Z", "+00:00")))
        except ValueError:
            raise GlassnetError(
                "expected a date (YYYY-MM-DD[THH:MM[:SS]])",
                got=f"{c!r} on line {i + first_line}",
                file=str(path),
                field=name,
            ) from None
    keys = ["year", "month", "day", "weekday"]
    if any(d is not None and (d.hour or d.minute) for d in parsed):
        keys += ["hour", "minute"]
    parts: dict[str, Array] = {}
    for key in keys:
        parts[f"{name}_{key}"] = np.array(
            [
                np.nan if d is None else float(d.weekday() if key == "weekday" else getattr(d, key))
                for d in parsed
            ]
        )
    return parts


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
