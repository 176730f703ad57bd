"""What stands between a raw row and the network's input, stored with the model.

A model trained by ``glassnet train`` reads raw rows — numbers, text, empty cells — and
turns each into the network's inputs in three steps, all fitted on the training data:

1. **impute**: a missing cell (empty, ``NA``, ``nan``, ...) gets its column's mean,
   median or most frequent value (``--impute``); without a strategy it is an error;
2. **encode**: a number column gives one input; a text column one input per category
   (one-hot; an unseen category is an error, or all zeros with
   ``handle_unknown="ignore"``);
3. **standardise**: every input ``x = (v − mean) / scale`` (one-hot inputs keep mean 0,
   scale 1).

That belongs to the model, not to the command that trained it, so :class:`Preprocessing`
is saved in the model file and applied by :meth:`glassnet.model.Model.predict` /
``predict_proba`` / ``fit``, by ``glassnet predict``, by the ONNX export (as Sub and Div
nodes; text columns are not exported) and the PyTorch export (as metadata), and by a
spec's ``model = "..."`` trace (as its own first step).

In a model file: ``info["feature_names"]`` (the raw columns, in order),
``info["preprocessing"]`` (columns, categories, fill values — absent for numbers only)
and the extras ``input_mean`` and ``input_scale`` (one number per network input).
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.rawtable import RawTable, TextCells
from glassnet.trace import Preprocessed

Array = np.ndarray


class RowLines(Protocol):
    """Each row's file line, looked up by row (:class:`glassnet.tables.FileLines`)."""

    def __getitem__(self, row: int) -> int: ...


#: Where rows are in their file, for messages: the file line of row 0 (rows follow one a
#: line), or each row's own line (a quoted cell may hold line breaks), or None (rows are
#: named by index).
Lines = int | Array | RowLines | None


def line_of(row: int, lines: Lines) -> int:
    """The file line of ``row`` (``lines`` not None)."""
    assert lines is not None
    return row + lines if isinstance(lines, int) else int(lines[row])


def at_row(row: int, lines: Lines) -> str:
    """``"line N"`` (its file line) or, with no file, ``"row i"``."""
    return f"line {line_of(row, lines)}" if lines is not None else f"row {row}"


#: Cells read as missing (compared case-insensitively, after stripping spaces).
MISSING: frozenset[str] = frozenset({"", "na", "n/a", "nan", "null", "none", "?"})
IMPUTE: tuple[str, ...] = ("mean", "median", "most_frequent")
#: A text column with a distinct value in every one of at least this many rows is an ID.
ID_MIN_ROWS = 20
#: A column whose present cells are at least this share numbers is a number column: its
#: other cells are mistakes (an error naming them, or missing with ``coerce``), not
#: categories.  Below it, the column is text.
NUMERIC_SHARE = 0.9
#: "5,123" and "-1,234,567.5": a comma between groups of three digits is a thousands
#: separator (a decimal comma never has exactly three digits after it *and* a group
#: before it of at most three, repeated).
_THOUSANDS = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d*)?(?:[eE][+-]?\d+)?")


def is_missing(cell: object) -> bool:
    if isinstance(cell, float | np.floating):
        return math.isnan(cell)
    if type(cell).__name__ == "NAType":  # pandas.NA, without importing pandas
        return True
    return cell is None or (isinstance(cell, str) and cell.strip().lower() in MISSING)


def to_number(cell: object) -> float | None:
    """A cell as a float, or None when it is not a number.  Text is read as Python's
    ``float`` reads it, plus thousands separators (``"5,123"`` → 5123.0).

    >>> to_number("5,123"), to_number(" -1.5e3 "), to_number("unknown"), to_number("5,12")
    (5123.0, -1500.0, None, None)
    """
    if isinstance(cell, int | float | np.integer | np.floating) and not isinstance(cell, bool):
        return float(cell)
    text = str(cell).strip()
    try:
        return float(text)
    except ValueError:
        pass
    if _THOUSANDS.fullmatch(text):
        return float(text.replace(",", ""))
    return None


@dataclass
class Column:
    """One raw column: a number (one input) or text (one input per category), and the
    value a missing cell gets (None: missing is an error)."""

    name: str
    kind: Literal["number", "text"] = "number"
    categories: list[str] = field(default_factory=list)
    fill: float | str | None = None

    @property
    def width(self) -> int:
        return len(self.categories) if self.kind == "text" else 1

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind == "text":
            d["categories"] = list(self.categories)
        if self.fill is not None:
            d["fill"] = self.fill
        return d

    @classmethod
    def from_dict(cls, d: object) -> Column:
        if isinstance(d, dict) and isinstance(d.get("name"), str):
            kind, cats, fill = d.get("kind"), d.get("categories", []), d.get("fill")
            text = kind == "text"
            ok = kind in ("number", "text") and isinstance(cats, list)
            ok = ok and all(isinstance(c, str) for c in cats) and (not text or len(cats) >= 1)
            number_fill = (
                isinstance(fill, int | float) and not isinstance(fill, bool) and math.isfinite(fill)
            )
            ok = ok and (fill is None or (isinstance(fill, str) if text else number_fill))
            if ok:
                return cls(d["name"], "text" if text else "number", list(cats), fill)
        raise GlassnetError(
            "expected a column {name, kind: number|text, categories, fill}",
            got=repr(d)[:60],
            field="preprocessing.columns",
        )


@dataclass
class Preprocessing:
    """Raw rows -> network inputs (see the module docstring).

    ``mean``/``scale`` have one number per network input; ``feature_names`` names the
    raw columns in order; ``columns`` describes them (None: every column a number with
    nothing missing — the standardisation alone)."""

    mean: Array
    scale: Array
    feature_names: list[str] | None = None
    columns: list[Column] | None = None
    handle_unknown: Literal["error", "ignore"] = "error"
    #: A cell that is not a number in a number column is missing (filled, or refused as
    #: missing) instead of an error (``--coerce``).
    coerce: bool = False
    #: What fitting did that a person should hear about (one line each; not saved).
    notes: list[str] = field(default_factory=list, compare=False)

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64)
        self.scale = np.asarray(self.scale, dtype=np.float64)
        n = self.mean.shape[0] if self.mean.ndim == 1 else -1
        if self.mean.ndim != 1 or self.scale.shape != (n,):
            raise GlassnetError(
                "expected one mean and one spread per input",
                got=f"shapes {self.mean.shape} and {self.scale.shape}",
                field="input_scale",
            )
        if not (np.isfinite(self.mean).all() and np.isfinite(self.scale).all()):
            raise GlassnetError("expected finite numbers", got="NaN or inf", field="input_mean")
        if not (self.scale > 0).all():
            raise GlassnetError(
                "expected positive spreads", got="zero or negative", field="input_scale"
            )
        if self.columns is not None:
            if self.feature_names is None:
                self.feature_names = [c.name for c in self.columns]
            width = sum(c.width for c in self.columns)
            if width != n or [c.name for c in self.columns] != self.feature_names:
                raise GlassnetError(
                    f"expected columns giving {n} inputs, named as feature_names",
                    got=f"{width} inputs",
                    field="preprocessing.columns",
                )
        names = self.feature_names
        if names is not None and (
            not isinstance(names, list)
            or len(names) != self.n_features
            or not all(isinstance(x, str) for x in names)
        ):
            raise GlassnetError(
                f"expected {self.n_features} feature names",
                got=repr(names)[:60],
                field="feature_names",
            )
        if self.handle_unknown not in ("error", "ignore"):
            raise GlassnetError(
                "expected error or ignore", got=repr(self.handle_unknown), field="handle_unknown"
            )

    @property
    def n_features(self) -> int:
        """Raw columns."""
        return len(self.columns) if self.columns is not None else int(self.mean.shape[0])

    @property
    def n_inputs(self) -> int:
        """Network inputs."""
        return int(self.mean.shape[0])

    @property
    def numbers_only(self) -> bool:
        """True when every column is a number (so rows may be a float array)."""
        return self.columns is None or all(c.kind == "number" for c in self.columns)

    # -- applying it ---------------------------------------------------------------------
    def check_scaled(self, X: object) -> str | None:
        """A warning when raw rows X (n, n_features) look already standardised: where
        the stored raw statistics are far from mean 0, spread 1 (|mean| > 4·scale), the
        values all lie in [−6, 6] yet sit a median 4 or more spreads from the stored
        mean — at least half such columns, at least one.  None when they look raw."""
        if isinstance(X, RawTable):
            if not X.numbers_only:
                return None
            X = X.to_numbers()
        values = np.asarray(X)
        if values.ndim != 2 or values.dtype.kind not in "biuf" or not self.numbers_only:
            return None
        values = values.astype(np.float64)
        if values.shape[1] != self.n_inputs:
            return None
        telling = np.flatnonzero(np.abs(self.mean) > 4 * self.scale)
        if telling.size == 0:
            return None
        v = values[:, telling]
        z = np.abs(v - self.mean[telling]) / self.scale[telling]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column
            looks = (np.nanmax(np.abs(v), axis=0) <= 6) & (np.nanmedian(z, axis=0) >= 4)
        if looks.sum() * 2 < telling.size:
            return None
        names = self.feature_names or [f"x{j}" for j in range(self.n_features)]
        j = int(telling[np.flatnonzero(looks)[0]])
        return (
            f"X looks already standardised ({int(looks.sum())} of {telling.size} columns; "
            f"'{names[j]}' was trained on values around {self.mean[j]:.4g} ± "
            f"{self.scale[j]:.3g}, got values within ±6): the model standardises raw rows "
            "itself — pass the raw features (e.g. ds.X_test_raw, not ds.X_test)"
        )

    def encode(self, X: object, *, first_line: Lines = None) -> Array:
        """Raw rows (n, n_features) -> imputed and one-hot encoded values (n, n_inputs),
        before standardisation.  ``first_line`` (the file line of row 0, or each row's
        line) makes errors name lines.  X may be a :class:`~glassnet.rawtable.RawTable`
        (its text columns encoded from their distinct cells)."""
        if isinstance(X, RawTable):
            if X.shape[1] != self.n_features:
                raise GlassnetError(
                    f"expected rows of {self.n_features} raw features (as the model was "
                    "trained on)",
                    got=f"shape {X.shape}",
                    field="X",
                )
            data: list[Any] = X.data
            n = X.shape[0]
        else:
            X = np.asarray(X)
            if X.ndim == 1:
                X = X[None, :]
            if X.ndim != 2 or X.shape[1] != self.n_features:
                raise GlassnetError(
                    f"expected rows of {self.n_features} raw features (as the model was "
                    "trained on)",
                    got=f"shape {X.shape}",
                    field="X",
                )
            if X.dtype.kind in "biuf":
                values = np.asarray(X, dtype=np.float64)
                if self.numbers_only and not np.isnan(values).any():
                    return values  # the common case: nothing to fill or encode
                X = values.astype(object)  # NaN cells are missing: filled, or refused
            elif X.dtype.kind not in "OU":
                raise GlassnetError("expected numbers or text", got=f"{X.dtype}", field="X")
            data = [X[:, j] for j in range(X.shape[1])]
            n = X.shape[0]
        columns = (
            self.columns
            or [Column(n) for n in (self.feature_names or [])]
            or [Column(f"x{j}") for j in range(self.n_features)]
        )
        out = np.zeros((n, self.n_inputs))
        at = 0
        for cells, col in zip(data, columns, strict=True):
            if isinstance(cells, TextCells):
                self._encode_text_cells(cells, col, out[:, at : at + col.width], first_line)
            else:
                self._encode_cells(cells, col, out[:, at : at + col.width], first_line)
            at += col.width
        return out

    def _encode_cells(self, cells: Array, col: Column, out: Array, first_line: Lines) -> None:
        """One column's cells (n,) (float64 or objects) into ``out`` (n, col.width)."""
        if col.kind == "number":  # the common case at C speed: every cell a number
            fast = _float_column(cells)
            if fast is not None:
                gone = np.isnan(fast)
                if np.isfinite(fast[~gone]).all() and (col.fill is not None or not gone.any()):
                    out[:, 0] = np.where(gone, col.fill if col.fill is not None else 0.0, fast)
                    return
        missing = np.array([is_missing(c) for c in cells], dtype=bool)
        if self.coerce and col.kind == "number":
            missing |= np.array([to_number(c) is None for c in cells], dtype=bool)
        _refuse_missing(missing, col, first_line)
        if col.kind == "number":
            out[:, 0] = _numbers(cells, missing, col, first_line)
            return
        index = {c: k for k, c in enumerate(col.categories)}
        for i, cell in enumerate(cells):
            text = str(col.fill) if missing[i] else str(cell).strip()
            k = index.get(text)
            if k is None:
                if self.handle_unknown == "ignore":
                    continue
                raise _unknown(col, text)
            out[i, k] = 1.0

    def _encode_text_cells(
        self, cells: TextCells, col: Column, out: Array, first_line: Lines
    ) -> None:
        """:meth:`_encode_cells` for a text column kept as codes: each distinct cell
        decided once, then every row by its code (the same numbers and messages)."""
        values, codes = cells.values, cells.codes
        gone = np.array([is_missing(v) for v in values], dtype=bool)
        if col.kind == "number":
            number = [to_number(v) for v in values]
            if self.coerce:
                gone |= np.array([x is None for x in number], dtype=bool)
            missing = gone[codes]
            _refuse_missing(missing, col, first_line)
            read = np.array([math.nan if x is None else x for x in number], dtype=np.float64)
            bad = np.flatnonzero(~missing & ~np.isfinite(read[codes]))
            if bad.size:
                i = int(bad[0])
                where = (
                    f" on line {line_of(i, first_line)}"
                    if first_line is not None
                    else f" in row {i}"
                )
                raise GlassnetError(
                    "expected a finite number", got=f"{values[codes[i]]!r}{where}", field=col.name
                )
            fill = float(col.fill) if col.fill is not None else 0.0  # type: ignore[arg-type]
            out[:, 0] = np.where(missing, fill, read[codes])
            return
        _refuse_missing(gone[codes], col, first_line)
        index = {c: k for k, c in enumerate(col.categories)}
        which = np.array(
            [index.get(str(col.fill) if g else v, -1) for v, g in zip(values, gone, strict=True)],
            dtype=np.int64,
        )
        k = which[codes]
        unknown = np.flatnonzero(k < 0)
        if unknown.size and self.handle_unknown != "ignore":
            code = int(codes[int(unknown[0])])
            raise _unknown(col, str(col.fill) if gone[code] else values[code])
        known = np.flatnonzero(k >= 0)
        out[known, k[known]] = 1.0

    def transform(self, X: object, *, first_line: Lines = None) -> Array:
        """Raw rows X (n, n_features) -> the network's inputs (n, n_inputs), float64.
        A single row (n_features,) is taken as one row."""
        return (self.encode(X, first_line=first_line) - self.mean) / self.scale

    def record(self, raw: object) -> Preprocessed:
        """Raw rows and what :meth:`transform` makes of them, for a trace (numbers only)."""
        raw_rows = np.atleast_2d(np.asarray(raw, dtype=np.float64))
        return Preprocessed(raw_rows, self.mean, self.scale, self.transform(raw_rows))

    def describe(self) -> str:
        """One line for people: what is done to a raw row."""
        text = sum(1 for c in self.columns or [] if c.kind == "text")
        filled = sum(1 for c in self.columns or [] if c.fill is not None)
        parts = [f"{self.n_features} raw columns -> {self.n_inputs} inputs"]
        if filled:
            parts.append(f"missing cells filled in {filled} column(s)")
        if text:
            parts.append(f"{text} text column(s) one-hot encoded")
        parts.append("standardised: x = (v − mean) / scale")
        return "; ".join(parts)

    # -- fitting it ----------------------------------------------------------------------
    @classmethod
    def fit(
        cls,
        table: Array | RawTable,
        names: list[str],
        train_rows: Array,
        *,
        impute: str | None = None,
        handle_unknown: Literal["error", "ignore"] = "error",
        first_line: Lines = 2,
        coerce: bool = False,
    ) -> Preprocessing:
        """Fitted on a raw table (n, d) of text cells (or a
        :class:`~glassnet.rawtable.RawTable`): kinds and categories from every row
        (no labels are involved), fill values, means and spreads from ``train_rows``.

        A column is a number column when at least :data:`NUMERIC_SHARE` of its present
        cells are numbers; its other cells are an error naming them and their lines, or,
        with ``coerce``, missing (counted in ``notes``)."""
        if impute is not None and impute not in IMPUTE:
            raise GlassnetError(
                f"expected one of {', '.join(IMPUTE)}", got=repr(impute), field="--impute"
            )
        columns: list[Column] = []
        notes: list[str] = []
        n = table.shape[0]
        for j, name in enumerate(names):
            column = table.data[j] if isinstance(table, RawTable) else table[:, j]
            if isinstance(column, TextCells):
                columns.append(
                    _fit_text_cells(name, column, train_rows, impute, first_line, coerce, notes)
                )
                continue
            cells: Array = column
            if cells.dtype.kind == "f" and np.isnan(cells).all():
                cells = cells.astype(object)  # every cell missing: refused below
            fast = _float_column(cells)
            if fast is not None:  # every cell a number or missing: decided at C speed
                gone = np.isnan(fast)
                if not gone.all() and np.isfinite(fast[~gone]).all():
                    columns.append(_number_column(name, fast, gone, train_rows, impute))
                    continue
            missing = np.array([is_missing(c) for c in cells], dtype=bool)
            present = [str(c).strip() for c, m in zip(cells, missing, strict=True) if not m]
            if not present:
                raise GlassnetError(
                    f"expected values in a feature column (drop it with --drop {name})",
                    got=f"every one of its {n} cells missing",
                    field=name,
                )
            numbers = _try_numbers(present)
            if numbers is None and present:
                stray = [i for i, c in enumerate(cells) if not missing[i] and to_number(c) is None]
                if len(stray) <= (1 - NUMERIC_SHARE) * len(present):
                    if not coerce:
                        shown = ", ".join(
                            f"{cells[i]!r} on {at_row(i, first_line)}" for i in stray[:3]
                        )
                        more = f" and {len(stray) - 3} more" if len(stray) > 3 else ""
                        raise GlassnetError(
                            "expected numbers: a number column with a few other cells (fix "
                            "them, or --coerce to read them as missing)",
                            got=f"{len(stray)} not numbers: {shown}{more}",
                            field=name,
                        )
                    notes.append(
                        f"{name}: {len(stray)} cell(s) that are not numbers read as missing "
                        "(--coerce)"
                    )
                    missing[stray] = True
                    present = [str(c).strip() for c, m in zip(cells, missing, strict=True) if not m]
                    numbers = _try_numbers(present)
            if numbers is None:
                distinct = sorted(set(present))
                if n >= ID_MIN_ROWS and len(distinct) == n:
                    raise GlassnetError(
                        f"expected features, not an ID (every row has its own text); drop it "
                        f"with --drop {name}",
                        got=f"{n} distinct values",
                        field=name,
                    )
                col = Column(name, "text", distinct or ["?"])
            else:
                bad = ~np.isfinite(numbers)
                if bad.any():
                    raise GlassnetError(
                        "expected finite numbers",
                        got=f"{present[int(np.flatnonzero(bad)[0])]!r}",
                        field=name,
                    )
                col = Column(name)
            # every column gets a fill when imputing: a cell missing only at predict time
            # (none in training) is filled too, not refused
            if impute is not None:
                train_present = [
                    str(cells[i]).strip() for i in train_rows if not missing[i]
                ] or present
                if col.kind == "text" or impute == "most_frequent":
                    value = Counter(train_present).most_common(1)[0][0] if train_present else ""
                    col.fill = value if col.kind == "text" else to_number(value)
                else:
                    v = np.array([to_number(c) for c in train_present], dtype=np.float64)
                    col.fill = float(v.mean() if impute == "mean" else np.median(v))
            columns.append(col)
        pre = cls(
            np.zeros(sum(c.width for c in columns)),
            np.ones(sum(c.width for c in columns)),
            list(names),
            columns,
            handle_unknown,
            coerce=coerce,
            notes=notes,
        )
        encoded = pre.encode(table, first_line=first_line)[train_rows]
        at = 0
        for col in columns:
            if col.kind == "number":
                v = encoded[:, at]
                pre.mean[at] = v.mean()
                spread = v.std()
                pre.scale[at] = spread if spread > 0 else 1.0  # a constant: centred only
            at += col.width
        return pre

    # -- the model file ------------------------------------------------------------------
    def to_file(self) -> tuple[dict[str, Any], dict[str, Array]]:
        """(``info`` entries, ``extras`` arrays) for a model file."""
        info: dict[str, Any] = {"feature_names": self.feature_names}
        if self.columns is not None:
            info["preprocessing"] = {
                "columns": [c.to_dict() for c in self.columns],
                "handle_unknown": self.handle_unknown,
            }
            if self.coerce:
                info["preprocessing"]["coerce"] = True
        return info, {"input_mean": self.mean, "input_scale": self.scale}

    @classmethod
    def from_file(
        cls, info: dict[str, Any], extras: dict[str, Array], n_in: int
    ) -> Preprocessing | None:
        """The preprocessing a model file stores (None when it stores none), checked
        against the network's ``n_in`` inputs."""
        if "input_mean" not in extras or "input_scale" not in extras:
            return None
        mean, scale = extras["input_mean"], extras["input_scale"]
        for key, a in (("input_mean", mean), ("input_scale", scale)):
            if a.shape != (n_in,):
                raise GlassnetError(
                    f"expected {n_in} numbers (one per input)", got=f"shape {a.shape}", field=key
                )
        spec = info.get("preprocessing")
        if spec is None:
            return cls(mean, scale, info.get("feature_names"))
        if not isinstance(spec, dict) or not isinstance(spec.get("columns"), list):
            raise GlassnetError(
                "expected {columns, handle_unknown}", got=repr(spec)[:60], field="preprocessing"
            )
        columns = [Column.from_dict(c) for c in spec["columns"]]
        coerce = spec.get("coerce", False)
        if not isinstance(coerce, bool):
            raise GlassnetError("expected true or false", got=repr(coerce)[:60], field="coerce")
        return cls(
            mean,
            scale,
            info.get("feature_names"),
            columns,
            spec.get("handle_unknown", "error"),
            coerce=coerce,
        )


def _fit_text_cells(
    name: str,
    cells: TextCells,
    train_rows: Array,
    impute: str | None,
    first_line: Lines,
    coerce: bool,
    notes: list[str],
) -> Column:
    """:meth:`Preprocessing.fit` for one text column kept as codes: the same rules on
    the distinct cells, weighted by how many rows hold each (the same column, messages
    and fill values as for the cells in an object array)."""
    values, codes = cells.values, cells.codes
    n = codes.shape[0]
    counts = cells.counts()
    gone = np.array([is_missing(v) for v in values], dtype=bool)
    number = [to_number(v) for v in values]
    not_number = np.array([x is None for x in number], dtype=bool)
    present = int(counts[~gone].sum())
    if present == 0:
        raise GlassnetError(
            f"expected values in a feature column (drop it with --drop {name})",
            got=f"every one of its {n} cells missing",
            field=name,
        )
    stray = ~gone & not_number & (counts > 0)
    is_number = not stray.any()
    if not is_number and counts[stray].sum() <= (1 - NUMERIC_SHARE) * present:
        rows = np.flatnonzero(stray[codes])
        if not coerce:
            shown = ", ".join(
                f"{values[codes[i]]!r} on {at_row(int(i), first_line)}" for i in rows[:3]
            )
            more = f" and {len(rows) - 3} more" if len(rows) > 3 else ""
            raise GlassnetError(
                "expected numbers: a number column with a few other cells (fix "
                "them, or --coerce to read them as missing)",
                got=f"{len(rows)} not numbers: {shown}{more}",
                field=name,
            )
        notes.append(f"{name}: {len(rows)} cell(s) that are not numbers read as missing (--coerce)")
        gone = gone | stray
        is_number = True
    missing = gone[codes]
    if is_number:
        read = np.array([math.nan if x is None else x for x in number], dtype=np.float64)
        bad = np.flatnonzero(~missing & ~np.isfinite(read[codes]))
        if bad.size:
            raise GlassnetError(
                "expected finite numbers", got=f"{values[codes[int(bad[0])]]!r}", field=name
            )
        col = Column(name)
    else:
        distinct = sorted(v for k, v in enumerate(values) if counts[k] and not gone[k])
        if n >= ID_MIN_ROWS and len(distinct) == n:
            raise GlassnetError(
                f"expected features, not an ID (every row has its own text); drop it "
                f"with --drop {name}",
                got=f"{n} distinct values",
                field=name,
            )
        col = Column(name, "text", distinct or ["?"])
    if impute is not None:
        # the present cells of the training rows, in row order (all rows' when none)
        seq = codes[train_rows]
        seq = seq[~gone[seq]]
        if seq.size == 0:
            seq = codes[~missing]
        if col.kind == "text" or impute == "most_frequent":
            col.fill = values[_most_frequent(seq, len(values))]
            if col.kind == "number":
                col.fill = to_number(col.fill)
        else:
            v = np.array([number[int(k)] for k in range(len(values))], dtype=np.float64)[seq]
            col.fill = float(v.mean() if impute == "mean" else np.median(v))
    return col


def _most_frequent(seq: Array, size: int) -> int:
    """The code met most often in ``seq``; among ties the one met first (as
    ``Counter(...).most_common(1)`` picks)."""
    counts = np.bincount(seq, minlength=size)
    tied = np.flatnonzero(counts == counts.max())
    if tied.size == 1:
        return int(tied[0])
    first = np.full(size, seq.size)
    np.minimum.at(first, seq, np.arange(seq.size))
    return int(tied[np.argmin(first[tied])])


def _float_column(cells: Array) -> Array | None:
    """An object column (n,) as float64 when every cell converts (Python's ``float``
    on each, in C: numbers, number text, ``"nan"``); None when one does not."""
    try:
        return cells.astype(np.float64)
    except (ValueError, TypeError):
        return None


def _number_column(
    name: str, values: Array, missing: Array, train_rows: Array, impute: str | None
) -> Column:
    """A number column fitted from its values (NaN where missing): with ``impute``, its
    fill from the training rows' present values (all rows' when those have none)."""
    col = Column(name)
    if impute is None:
        return col
    train = values[train_rows]
    train = train[~np.isnan(train)]
    if train.size == 0:
        train = values[~missing]
    if impute == "most_frequent":  # ties: the value met first, as Counter keeps them
        col.fill = float(Counter(train.tolist()).most_common(1)[0][0])
    else:
        col.fill = float(train.mean() if impute == "mean" else np.median(train))
    return col


def _try_numbers(cells: list[str]) -> Array | None:
    """The cells as float64, or None when one is not a number (see :func:`to_number`)."""
    values = [to_number(c) for c in cells]
    if any(v is None for v in values):
        return None
    return np.array(values, dtype=np.float64)


def _refuse_missing(missing: Array, col: Column, first_line: Lines) -> None:
    """A missing cell in a column the model does not fill is an error naming its lines."""
    if not missing.any() or col.fill is not None:
        return
    rows = np.flatnonzero(missing)
    s = "s" if len(rows) > 1 else ""
    where = (
        f"line{s} " + ", ".join(str(line_of(int(r), first_line)) for r in rows[:5])
        if first_line is not None
        else f"row{s} " + ", ".join(str(r) for r in rows[:5])
    )
    raise GlassnetError(
        "expected a value in every cell (the model fills missing cells only in "
        "columns it was trained to: train with --impute mean|median|most_frequent)",
        got=f"{len(rows)} missing, on {where}",
        field=col.name,
    )


def _unknown(col: Column, text: str) -> GlassnetError:
    known = ", ".join(col.categories[:6])
    more = ", ..." if len(col.categories) > 6 else ""
    return GlassnetError(
        f"expected one of the categories seen in training ({known}{more}; "
        "or --handle-unknown ignore)",
        got=repr(text)[:40],
        field=col.name,
    )


def _numbers(cells: Array, missing: Array, col: Column, first_line: Lines) -> Array:
    out = np.empty(cells.shape[0])
    for i, cell in enumerate(cells):
        if missing[i]:
            out[i] = float(col.fill)  # type: ignore[arg-type]
            continue
        number = to_number(cell)
        v = math.nan if number is None else number
        if not math.isfinite(v):
            where = (
                f" on line {line_of(i, first_line)}" if first_line is not None else f" in row {i}"
            )
            raise GlassnetError("expected a finite number", got=f"{cell!r}{where}", field=col.name)
        out[i] = v
    return out


def drop_constant(
    X: Array | RawTable, names: list[str]
) -> tuple[Array | RawTable, list[str], list[str]]:
    """X and names without the columns that cannot inform a model: every cell missing,
    or one value in every row (a column with one value and some missing cells stays:
    whether a cell is missing may be information).  Returns (X, names, dropped)."""
    gone = []
    for j in range(len(names)):
        col = X.data[j] if isinstance(X, RawTable) else X[:, j]
        if isinstance(col, TextCells):
            counts = col.counts()
            here = [k for k in range(len(col.values)) if counts[k]]
            lost = [is_missing(col.values[k]) for k in here]
            if all(lost) or (len(here) == 1 and not any(lost)):
                gone.append(j)
            continue
        if col.dtype.kind == "f":
            nan = np.isnan(col)
            if nan.all() or (not nan.any() and col.min() == col.max()):
                gone.append(j)
            continue
        missing = [is_missing(c) for c in col]
        present = {str(c) for c, m in zip(col, missing, strict=True) if not m}
        if all(missing) or (len(present) == 1 and not any(missing)):
            gone.append(j)
    if not gone:
        return X, names, []
    keep = [j for j in range(len(names)) if j not in gone]
    kept = [names[j] for j in keep]
    if not keep:
        return np.empty((X.shape[0], 0)), kept, [names[j] for j in gone]
    if isinstance(X, RawTable):
        table = X[:, keep]
        return (table.to_numbers() if table.numbers_only else table), kept, [names[j] for j in gone]
    X = X[:, keep]
    if X.dtype == object and all(_all_floats(X[:, j]) for j in range(X.shape[1])):
        X = X.astype(np.float64)  # the text column that made it a table is gone
    return X, kept, [names[j] for j in gone]


def _all_floats(col: Array) -> bool:
    return all(isinstance(c, float) for c in col)
