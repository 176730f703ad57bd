"""The one error type glassnet raises for input a person got wrong.

Every message has the same shape: *where* (file, layer, field), *what was
expected*, *what came*.  The CLI prints it on one line and exits with status 2.
"""

from __future__ import annotations


class GlassnetError(ValueError):
    """Bad input: names where, what was expected and what came.

    >>> str(GlassnetError("expected a positive number", got="-1", file="net.toml", field="lr"))
    "net.toml, field 'lr': expected a positive number, got -1"
    """

    def __init__(
        self,
        expected: str,
        *,
        got: str | None = None,
        file: str | None = None,
        layer: int | None = None,
        field: str | None = None,
    ) -> None:
        self.expected = expected
        self.got = got
        self.file = file
        self.layer = layer
        self.field = field
        super().__init__(self._message())

    def _message(self) -> str:
        where = []
        if self.file:
            where.append(str(self.file))
        if self.layer is not None:
            where.append(f"layer {self.layer}")
        if self.field:
            where.append(f"field '{self.field}'")
        text = self.expected if self.got is None else f"{self.expected}, got {self.got}"
        message = ": ".join([", ".join(where), text]) if where else text
        # Keep it to one line whatever the parts hold (a file name may hold a newline).
        return " ".join(message.split())

    def with_file(self, file: str) -> GlassnetError:
        """Return the same error, naming ``file`` (used when a loader knows the path)."""
        if self.file is None:
            self.file = file
            self.args = (self._message(),)
        return self
