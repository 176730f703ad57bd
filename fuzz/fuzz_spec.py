"""Coverage-guided fuzzing (atheris) of the spec/worksheet parser and the traced step.

Only GlassnetError may come out: any other exception is a finding (atheris stops and
prints the input).  Seeds: the bundled examples.  Run::

    python fuzz/fuzz_spec.py -runs=50000 CORPUS_DIR fuzz/seeds_spec

(`-runs=N` tries N inputs; without it atheris runs until stopped.)
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    import glassnet as gn


def one_input(data: bytes) -> None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return  # load_spec refuses undecodable bytes before parsing; tested elsewhere
    try:
        spec = gn.parse_spec(text, "fuzz.toml")
        spec.trace()
        spec.trace(round_to=3)
    except gn.GlassnetError as err:
        message = str(err)
        if "\n" in message or not message.startswith("fuzz.toml"):
            raise AssertionError(f"malformed error message: {message!r}") from None


def main() -> None:
    atheris.Setup(sys.argv, one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
