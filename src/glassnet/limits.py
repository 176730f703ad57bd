"""Sizes glassnet checks *before* it allocates or reads, so a typo or a hostile file is
refused with a :class:`GlassnetError` instead of a MemoryError, a swap storm or a hang.

- :data:`MAX_TEXT_BYTES`: spec and worksheet files (TOML written by hand);
- :data:`MAX_NESTING`: brackets inside one TOML or JSON value (the parsers recurse);
- :func:`memory_budget`: what one network, its training state or a model file may take —
  half the machine's memory, and never more than :data:`MAX_MEMORY_BYTES`.
"""

from __future__ import annotations

import os
from functools import cache

from glassnet.errors import GlassnetError

#: A spec or worksheet larger than this is not something a person wrote by hand.
MAX_TEXT_BYTES = 16 * 1024 * 1024
#: Deepest bracket nesting accepted in TOML or JSON text (Python's parsers recurse and
#: would raise RecursionError near 1000).
MAX_NESTING = 64
#: The most memory any one object may ask for, whatever the machine has.
MAX_MEMORY_BYTES = 16 * 1024**3

# -- what each command takes on (every limit here, each with its own name) -----------------
#: Parameters a spec may declare: checked before allocating, so a typo cannot eat memory.
MAX_SPEC_PARAMETERS = 10_000_000
#: Samples in a spec's input.
MAX_SPEC_BATCH = 100_000
#: A derivation is for networks a person reads (and its notebook carries every weight).
MAX_EXPLAIN_LAYERS = 16
MAX_EXPLAIN_PARAMETERS = 20_000
MAX_EXPLAIN_BATCH = 256
#: Significant digits explain prints (float64 has 17).
MAX_DIGITS = 17
#: Finite differences take two forward passes per parameter.
MAX_GRADCHECK_PARAMETERS = 20_000
#: An expression's circuit (``glassnet graph``) is something a person draws and reads.
MAX_GRAPH_GATES = 200
MAX_GRAPH_TEXT = 20_000
#: Steps in a row a spec may ask for (``steps = N``).
MAX_STEPS = 100
#: Classes a classifier may have (more is almost always a regression target).
MAX_CLASSES = 100
#: A model-file member that inflates more than this ratio is a zip bomb (random floats
#: deflate by less than 2:1).
MAX_ZIP_RATIO = 20.0
#: A model file's JSON description.
MAX_META_BYTES = 16 * 1024 * 1024


@cache
def memory_budget() -> int:
    """Bytes one network (or model file) may take: half the physical memory, capped."""
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):  # not POSIX: fall back to the cap
        physical = 2 * MAX_MEMORY_BYTES
    return int(min(physical // 2, MAX_MEMORY_BYTES))


def human(nbytes: float) -> str:
    """1536 -> '1.5 KiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(nbytes) < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "bytes" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} PiB"  # pragma: no cover


def check_fits(
    nbytes: float,
    what: str,
    *,
    file: str | None = None,
    layer: int | None = None,
    field: str | None = None,
) -> None:
    """Refuse (GlassnetError) when ``nbytes`` exceed :func:`memory_budget`."""
    budget = memory_budget()
    if not nbytes <= budget:  # also catches NaN from a float product
        raise GlassnetError(
            f"expected {what} to fit in memory (at most {human(budget)})",
            got=f"{human(nbytes)} needed",
            file=file,
            layer=layer,
            field=field,
        )


def nesting_depth(text: str) -> int:
    """The deepest ``[``/``{`` nesting in ``text`` — exact when above :data:`MAX_NESTING`
    (below it, 0 or 1 is enough).  Brackets inside quoted strings count too: refusing
    such a text is harmless, and the count stays one quick array pass."""
    if text.count("[") + text.count("{") <= MAX_NESTING:
        return 0 if "[" not in text and "{" not in text else 1  # shallow: no need to count
    import numpy as np

    b = np.frombuffer(text.encode("utf-8", "replace"), dtype=np.uint8)
    step = np.isin(b, (0x5B, 0x7B)).astype(np.int64) - np.isin(b, (0x5D, 0x7D))
    level = np.cumsum(step)
    # A closing bracket too many cannot make the depth negative: measure from the lowest
    # level reached so far (the walk clamped at zero).
    floor = np.minimum.accumulate(np.minimum(level, 0))
    return int((level - floor).max(initial=0))


def check_nesting(text: str, *, file: str | None = None, field: str | None = None) -> None:
    """Refuse text nested deeper than :data:`MAX_NESTING` before a recursive parser sees it."""
    depth = nesting_depth(text)
    if depth > MAX_NESTING:
        raise GlassnetError(
            f"expected lists nested at most {MAX_NESTING} deep",
            got=f"{depth} levels",
            file=file,
            field=field,
        )
