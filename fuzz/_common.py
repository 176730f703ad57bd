"""(Imports no glassnet module: the targets import those under atheris's instrumentation.)

What every fuzz target checks: only GlassnetError may come out, on one line, naming
the input; anything else (another exception, a MemoryError, a hang) is a finding that
atheris reports with the input that caused it."""

from __future__ import annotations

import atexit
import contextlib
import os
import tempfile


def check_error(err: Exception, label: str) -> None:
    """A GlassnetError must be one line and name the input."""
    message = str(err)
    if "\n" in message or label not in message:
        raise AssertionError(f"malformed error message: {message!r}") from None


def scratch_file(suffix: str) -> str:
    """One file per fuzzing process, rewritten for every input (in RAM when possible)."""
    # run.py gives a folder it removes afterwards (libFuzzer may exit without atexit)
    folder = os.environ.get("GLASSNET_FUZZ_TMP")
    if folder is None and os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK):
        folder = "/dev/shm"
    fd, path = tempfile.mkstemp(prefix="glassnet-fuzz-", suffix=suffix, dir=folder)
    os.close(fd)
    atexit.register(_remove, path)
    return path


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
