"""Raw rows kept by column: what glassnet's CSV reader gives for a file with text columns.

A table of Python objects costs about 32 bytes a cell (a pointer and a float object),
several times the CSV text it came from; a :class:`RawTable` keeps each number column
as float64 (8 bytes a cell) and each text column as :class:`TextCells` — int32 codes
into the column's distinct cells (4 bytes a cell, the distinct text once).  The
preprocessing (:mod:`glassnet.preprocess`) fits and encodes it column by column,
working on the distinct cells and indexing with the codes, and gives the same numbers
as for the same cells in an object array (tests/test_data_edges2.py).

It indexes like the 2-D array it stands for — ``t[rows]``, ``t[:, cols]``,
``t[rows, cols]``, ``t[:, j]`` (one column: float64, or its cells as an object array) —
and ``np.asarray(t)`` gives the object array itself (which costs the memory it saves).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

Array = np.ndarray


@dataclass
class TextCells:
    """A text column: row i's cell is ``values[codes[i]]`` (stripped, as written;
    missing cells such as ``""`` or ``NA`` are values too).  ``codes``: int32 (n,)."""

    codes: Array
    values: list[str]

    def __len__(self) -> int:
        return int(self.codes.shape[0])

    def take(self, rows: Any) -> TextCells:
        return TextCells(self.codes[rows], self.values)

    def cells(self) -> Array:
        """The cells as an object array (n,) (each distinct text one shared object)."""
        table = np.empty(len(self.values), dtype=object)
        table[:] = self.values
        return table[self.codes]

    def counts(self) -> Array:
        """How many rows hold each value (len(values),)."""
        return np.bincount(self.codes, minlength=len(self.values))


Cells = Array | TextCells


class RawTable:
    """Raw rows (n, d) by column: float64 (n,) arrays (NaN: missing) and
    :class:`TextCells`.  See the module docstring."""

    ndim = 2
    dtype = np.dtype(object)

    def __init__(self, columns: list[Cells]) -> None:
        if not columns:
            raise ValueError("a RawTable needs at least one column")
        n = {len(c) for c in columns}
        if len(n) != 1:
            raise ValueError(f"columns of different lengths: {sorted(n)}")
        self.data = list(columns)

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.data[0]), len(self.data)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def numbers_only(self) -> bool:
        return all(not isinstance(c, TextCells) for c in self.data)

    def _rows(self, rows: Any) -> RawTable:
        return RawTable([c.take(rows) if isinstance(c, TextCells) else c[rows] for c in self.data])

    def __getitem__(self, key: Any) -> Any:
        if not isinstance(key, tuple):
            return self._rows(key)
        rows, cols = key
        if isinstance(cols, int | np.integer):
            column = self.data[int(cols)]
            picked = column.cells() if isinstance(column, TextCells) else column
            return picked[rows]
        index = np.arange(len(self.data))[cols]
        table = RawTable([self.data[int(j)] for j in index])
        is_all = isinstance(rows, slice) and rows == slice(None)
        return table if is_all else table._rows(rows)

    def to_objects(self) -> Array:
        """The table as an object array (n, d): floats and strings."""
        out = np.empty(self.shape, dtype=object)
        for j, column in enumerate(self.data):
            out[:, j] = column.cells() if isinstance(column, TextCells) else column
        return out

    def to_numbers(self) -> Array:
        """The table as float64 (n, d), when every column is a number column."""
        out = np.empty(self.shape, dtype=np.float64, order="F")
        for j, column in enumerate(self.data):
            assert not isinstance(column, TextCells)
            out[:, j] = column
        return out

    def __array__(self, dtype: Any = None, copy: Any = None) -> Array:
        table = self.to_objects()
        return table if dtype is None else table.astype(dtype)
