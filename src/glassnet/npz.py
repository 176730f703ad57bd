"""Reading ``.npz`` files without trusting them, and writing them atomically.

This is the safe container layer under every glassnet file made of arrays (model files,
checkpoints, ``.npz`` data sets): :class:`NpzReader` refuses anything that is not plain
numeric arrays before reading a byte of data, and never unpickles.  What the arrays
*mean* is the business of the format on top (:mod:`glassnet.io` for model files,
:mod:`glassnet.data` for data sets).
"""

from __future__ import annotations

import math
import struct
import tokenize
import zipfile
import zlib
from pathlib import Path
from typing import IO

import numpy as np

from glassnet.errors import GlassnetError
from glassnet.fileio import atomic_write
from glassnet.limits import check_fits

Array = np.ndarray


def _bad(expected: str, got: str, field: str | None = None) -> GlassnetError:
    return GlassnetError(expected, got=got, field=field)


def atomic_save_npz(path: str | Path, arrays: dict[str, Array]) -> None:
    """``np.savez`` through :func:`glassnet.fileio.atomic_write`."""
    atomic_write(path, lambda f: np.savez(f, **arrays))  # type: ignore[arg-type]


#: Errors the zip, zlib and npy layers raise for damaged input (never a bug of ours).
_DAMAGE = (
    zipfile.BadZipFile,
    OSError,
    EOFError,
    ValueError,
    KeyError,
    NotImplementedError,  # a compression method zipfile does not know
    RuntimeError,  # an encrypted member
    OverflowError,
    struct.error,
    zlib.error,
)


def _npy_header(f: IO[bytes]) -> tuple[tuple[int, ...], bool, np.dtype]:
    """(shape, fortran_order, dtype) from an .npy header; ``f`` is left at the data."""
    version = np.lib.format.read_magic(f)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(f)
    if version == (2, 0):
        return np.lib.format.read_array_header_2_0(f)
    raise ValueError(f"npy format version {version}")


#: What numpy's .npy header parser (a Python literal, read with tokenize and ast) raises
#: for a crafted header: found by fuzzing (a TokenError escaped np.load too).
_BAD_HEADER = (tokenize.TokenError, SyntaxError, RecursionError, TypeError)


class NpzReader:
    """An ``.npz`` opened for reading without trusting it.

    Opening reads only the zip's directory and each member's ``.npy`` header, and refuses
    (GlassnetError) anything that is not plain numeric arrays: names that repeat or are
    not ``NAME.npy``, object, structured or sub-array dtypes, a header that does not parse,
    a member whose size on disk is not exactly its header plus its shape's bytes (a
    truncated member, or a small one declaring a huge shape), and members that together
    would not fit in memory.  So :meth:`read` allocates only what was checked, and the
    declared shapes (``headers``) can be compared with what is expected *before* reading.
    Nothing is ever unpickled.
    """

    def __init__(self, path: str | Path, *, max_ratio: float | None = None) -> None:
        self.path = Path(path)
        self.max_ratio = max_ratio
        try:
            self._zip = zipfile.ZipFile(self.path)
        except _DAMAGE as err:
            raise _bad(
                "expected an .npz file (a zip of arrays)",
                f"a file that is not a whole zip archive ({err})",
            ) from None
        try:
            self.headers = self._headers()
        except BaseException:
            self._zip.close()
            raise

    def _headers(self) -> dict[str, tuple[tuple[int, ...], np.dtype, bool]]:
        infos = self._zip.infolist()
        names = [i.filename for i in infos]
        if len(set(names)) != len(names):
            raise _bad("expected each array once", "a name stored twice", "arrays")
        self._infos = {}
        headers = {}
        total = 0
        for info in infos:
            if not info.filename.endswith(".npy"):
                raise _bad("expected only .npy arrays", repr(info.filename)[:60], "arrays")
            key = info.filename[: -len(".npy")]
            ratio = info.file_size / max(info.compress_size, 1)
            if self.max_ratio is not None and ratio > self.max_ratio:
                # a zip bomb: refused from the directory, before a byte is inflated
                raise _bad(
                    f"expected a member compressed at most {self.max_ratio:g}:1",
                    f"{info.file_size} bytes from {info.compress_size} ({ratio:.0f}:1)",
                    key,
                )
            try:
                with self._zip.open(info) as f:
                    shape, fortran, dtype = _npy_header(f)
                    header_bytes = f.tell()
            except (*_DAMAGE, *_BAD_HEADER) as err:
                raise _bad(
                    "expected plain numeric arrays in a whole file",
                    f"{type(err).__name__}: {err}",
                    key,
                ) from None
            if dtype.hasobject or dtype.fields is not None or dtype.subdtype is not None:
                raise _bad("expected plain numeric arrays (never objects)", str(dtype), key)
            nbytes = math.prod(shape) * dtype.itemsize
            if header_bytes + nbytes != info.file_size:
                raise _bad(
                    f"expected {header_bytes + nbytes} bytes for shape {shape} {dtype}",
                    f"{info.file_size} bytes",
                    key,
                )
            total += nbytes
            self._infos[key] = info
            headers[key] = (tuple(shape), dtype, bool(fortran))
        check_fits(total, "the arrays")
        return headers

    def read(self, key: str) -> Array:
        """The array ``key`` (its size already checked against its header)."""
        shape, dtype, fortran = self.headers[key]
        buf = bytearray(math.prod(shape) * dtype.itemsize)
        try:
            with self._zip.open(self._infos[key]) as f:
                _npy_header(f)
                view = memoryview(buf)
                got = 0
                while got < len(buf):
                    chunk = f.read(min(len(buf) - got, 1 << 24))
                    if not chunk:
                        raise EOFError("the member ends early")
                    view[got : got + len(chunk)] = chunk
                    got += len(chunk)
                f.read()  # to the end: zipfile checks the CRC there
        except _DAMAGE as err:
            raise _bad(
                "expected plain numeric arrays in a whole file",
                f"{type(err).__name__}: {err}",
                key,
            ) from None
        a = np.frombuffer(buf, dtype=dtype)
        return a.reshape(shape, order="F" if fortran else "C")

    def close(self) -> None:
        self._zip.close()

    def __enter__(self) -> NpzReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
