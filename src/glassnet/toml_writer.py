"""TOML text from plain data: glassnet's one TOML writer.

Specs and worksheets are TOML; the studio writes the page's spec (and a worksheet of
what was typed) for the spec parser to read, and ``glassnet exercise`` writes the
exercise, the blank worksheet and the answer key.  All of them write through
:func:`to_toml` and :func:`toml_value`, so a spec is written one way.  Python's
``tomllib`` only reads.

It is not a validator: :mod:`glassnet.spec` reads the text back and does every check.
A number a person typed (a worksheet value, an answer key to a set number of decimals)
is written as the text it was typed in (:func:`written_number`), because its digits set
the marking tolerance.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from glassnet.errors import GlassnetError

_BARE_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")


def toml_key(key: Any) -> str:
    """A key: bare when it can be, else quoted."""
    if not isinstance(key, str):
        raise GlassnetError("expected text keys", got=repr(key))
    if re.fullmatch(r"[A-Za-z0-9_-]+", key):
        return key
    return json.dumps(key, ensure_ascii=False)


def toml_value(v: Any, field: str = "", *, written: bool = False) -> str:
    """One value (bool, int, float, text, list, table) as a TOML value.  ``written``: a
    worksheet value, where a string holds a number exactly as the person typed it (its
    digits set the tolerance)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"  # the spec parser then says which field is not finite
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        if written:
            return written_number(v, field)
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(e, field, written=written) for e in v) + "]"
    if isinstance(v, dict):
        inner = ", ".join(
            f"{toml_key(k)} = {toml_value(e, f'{field}.{k}', written=written)}"
            for k, e in v.items()
        )
        return "{" + inner + "}"
    got = "null" if v is None else type(v).__name__
    raise GlassnetError("expected a number, text, list or table", got=got, field=field)


def written_number(text: str, field: str) -> str:
    """A number typed by a person, as a TOML literal that keeps its digits."""
    t = text.strip().replace("−", "-")
    if not _BARE_NUMBER.fullmatch(t):
        raise GlassnetError(
            "expected a number such as 0.27 or -1.5e-3", got=repr(text[:40]), field=field
        )
    if not math.isfinite(float(t)):  # (check's tolerance of "1e5000" overflows: refuse here)
        raise GlassnetError("expected a finite number", got=repr(text[:40]), field=field)
    sign = ""
    if t[0] in "+-":
        sign, t = ("-" if t[0] == "-" else ""), t[1:]
    mantissa, e, exponent = t.partition("e") if "e" in t else t.partition("E")
    if mantissa.startswith("."):
        mantissa = "0" + mantissa
    if mantissa.endswith("."):
        mantissa = mantissa[:-1]
    mantissa = mantissa.lstrip("0") or "0"
    if mantissa.startswith("."):
        mantissa = "0" + mantissa
    if e:
        return f"{sign}{mantissa}e{exponent}"
    return sign + mantissa


def to_toml(data: Mapping[str, Any]) -> str:
    """A spec (or worksheet) given as plain fields, written as TOML text: scalars first,
    then ``[values]`` (numbers as written, see :func:`written_number`), then one
    ``[[layers]]`` table per layer."""
    head: list[str] = []
    tail: list[str] = []
    for key, v in data.items():
        if key == "layers" and isinstance(v, list) and v and all(isinstance(t, dict) for t in v):
            for table in v:
                tail += ["", "[[layers]]"]
                tail += [f"{toml_key(k)} = {toml_value(e, k)}" for k, e in table.items()]
        elif key == "values" and isinstance(v, dict):
            head += ["", "[values]"]
            head += [
                f"{toml_key(k)} = {toml_value(e, f'values.{k}', written=True)}"
                for k, e in v.items()
            ]
        elif v is None:
            raise GlassnetError("expected a value", got="null", field=key)
        else:
            line = f"{toml_key(key)} = {toml_value(v, key)}"
            # [values] opens a table: plain keys must come before it.
            head.insert(head.index("[values]") - 1 if "[values]" in head else len(head), line)
    return "\n".join([*head, *tail]) + "\n"
