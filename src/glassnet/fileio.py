"""Writing files so that a crash, a full disk or a kill never leaves half a file.

Every file glassnet writes (models, checkpoints, documents, reports, plots, exports)
goes through :func:`atomic_write`: a temporary file in the same folder, flushed and
fsynced, given the mode an ordinary ``open`` would give it, then renamed over the target
(``os.replace`` is atomic on POSIX: readers see the old file or the new one, whole).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from glassnet.errors import GlassnetError


def _default_mode(target: Path) -> int:
    """The mode a plain ``open(target, "w")`` would give: keep an existing file's, else
    0666 less the umask (mkstemp's 0600 would make models private by surprise)."""
    if target.exists():
        return target.stat().st_mode & 0o777
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def atomic_write(
    path: str | Path,
    write: Callable[[IO[Any]], object],
    *,
    text: bool = False,
    field: str | None = None,
) -> None:
    """Call ``write(f)`` on a temporary file beside ``path``, then rename it over ``path``.

    Any OSError (no folder, no permission, disk full) becomes a GlassnetError naming the
    file; the old file, if any, is left as it was and no temporary file remains.
    """
    target, folder = _target_and_folder(path, field)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        # one literal mode per branch, so each call matches one of os.fdopen's overloads
        f: IO[Any] = os.fdopen(fd, "w", encoding="utf-8") if text else os.fdopen(fd, "wb")
        with f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _default_mode(target))
        os.replace(tmp, target)
        tmp = None
        _fsync_folder(folder)  # make the rename itself durable
    except OSError as err:
        raise GlassnetError(
            "expected to write the file (the old one, if any, is unchanged)",
            got=f"{type(err).__name__}: {err.strerror or err}",
            file=str(target),
            field=field,
        ) from None
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def check_writable(path: str | Path, *, field: str | None = None) -> Path:
    """Fail early — before any work, with nothing left behind — if ``path`` could not be
    written by :func:`atomic_write`: a folder, no such folder, or a folder where no file
    can be created (probed by creating and removing a temporary file, which also holds
    for root, whom permission bits do not stop, and for read-only mounts)."""
    target, folder = _target_and_folder(path, field)
    try:
        fd, probe = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise GlassnetError(
            "expected a folder where files can be written",
            got=f"{type(err).__name__}: {err.strerror or err}",
            file=str(target),
            field=field,
        ) from None
    return target


def atomic_write_text(path: str | Path, content: str, *, field: str | None = None) -> None:
    """Write ``content`` (UTF-8) to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(content), text=True, field=field)


def atomic_write_bytes(path: str | Path, content: bytes, *, field: str | None = None) -> None:
    """Write ``content`` to ``path`` atomically."""
    atomic_write(path, lambda f: f.write(content), field=field)


def _target_and_folder(path: str | Path, field: str | None) -> tuple[Path, Path]:
    """``path`` and its folder, after checking it names a file in an existing folder."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if target.is_dir():
        raise GlassnetError(
            "expected a file to write", got="a folder", file=str(target), field=field
        )
    if not folder.is_dir():
        raise GlassnetError(
            "expected a file in an existing folder",
            got=f"no folder {str(folder)!r}",
            file=str(target),
            field=field,
        )
    return target, folder


def _fsync_folder(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot fsync a folder; the rename is still atomic
    finally:
        os.close(fd)
