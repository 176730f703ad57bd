"""What every studio endpoint shares to read a request: the error with the HTTP status
the page gets, a JSON value's kind for messages, an index.

A module of its own so that every part of the studio (the API, the feature-map pages,
circuits) reads requests alike without importing the API module back."""

from __future__ import annotations

from typing import Any

from glassnet.errors import GlassnetError


class StudioError(GlassnetError):
    """A GlassnetError carrying the HTTP status the page should get (400/413/422)."""

    def __init__(self, expected: str, *, status: int = 422, **where: Any) -> None:
        super().__init__(expected, **where)
        self.status = status


#: An index is at most this many characters ("12,255,255" is 10).
MAX_INDEX_TEXT = 24


def kind_of(v: Any) -> str:
    """A JSON value's kind, as a message names what came."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return f"the boolean {str(v).lower()}"
    if isinstance(v, str):
        return "text"
    if isinstance(v, list):
        return "a list"
    if isinstance(v, dict):
        return "an object"
    return repr(v)


def parse_index(value: Any) -> tuple[int, ...] | None:
    """``"0,2"`` -> (0, 2); ``""`` -> () (a scalar); None stays None; else 422."""
    if value is None:
        return None
    if isinstance(value, str) and len(value) <= MAX_INDEX_TEXT:
        try:
            return tuple(int(p) for p in value.split(",") if p.strip() != "")
        except ValueError:
            pass
    raise StudioError(
        'expected an index like "0,2" (empty for a scalar)', got=repr(value)[:40], field="index"
    )
