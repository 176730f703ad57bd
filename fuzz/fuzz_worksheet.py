"""Coverage-guided fuzzing (atheris) of the worksheet parser and the marker.

Every input is worksheet text: parsed (``parse_worksheet``) and, if it parses, marked
(``check``).  Only GlassnetError may come out.  Seeds: fuzz/seeds_worksheet.  Run::

    python fuzz/fuzz_worksheet.py -runs=50000 CORPUS_DIR fuzz/seeds_worksheet

or all targets with ``python fuzz/run.py``.
"""

from __future__ import annotations

import sys

import atheris
from _common import check_error

with atheris.instrument_imports():
    import glassnet as gn
    from glassnet.check import check, parse_worksheet

LABEL = "fuzz-sheet.toml"


def one_input(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # load_worksheet refuses undecodable bytes before parsing (tested)
    try:
        sheet = parse_worksheet(text, LABEL)  # no base folder: `spec = "seed"` only
        check(sheet)
    except gn.GlassnetError as err:
        check_error(err, LABEL)


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
