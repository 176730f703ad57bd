"""The step graph number by number: which numbers one number of a step is computed
from and which are computed from it (:class:`EntryGraph`), for the studio's per-number
highlights and hints, and for bounding what one number's derivation costs.  Structure
only: sizes in, names and indexes out; no value is computed here."""

from __future__ import annotations

from dataclasses import dataclass

Index = tuple[int, ...]
Entry = tuple[str, Index]

#: Quantities that carry a batch axis (the page leaves it out for one sample).
BATCHED = frozenset({"x", "y", "z", "a", "da_dz", "dL_da", "delta", "loss_terms"})


def kind_of(name: str) -> tuple[str, int]:
    """Our name's (kind, layer): ``"dW2"`` -> ``("dW", 2)``, ``"loss"`` -> ``("loss", 0)``."""
    from glassnet.check.worksheet import resolve_name

    key, _ = resolve_name(name, 99, "<studio>")
    return key


@dataclass(frozen=True)
class EntryGraph:
    """The step graph of :func:`glassnet.step.step_inputs`, number by number: which
    numbers one number is computed from, and which are computed from it.  Written as
    rules per entry, so a request costs what that number touches (a network of 20,000
    parameters and 256 samples has millions of edges; none is built).  Indexes are
    full (with the batch axis).  ``jacobian``: the layers whose da/dz is a full matrix."""

    sizes: tuple[int, ...]
    batch: int
    jacobian: frozenset[int]

    @property
    def L(self) -> int:
        return len(self.sizes) - 1

    def shape(self, name: str) -> Index:
        """A quantity's full shape (batch axis first where it has one)."""
        kind, lyr = kind_of(name)
        B, L = self.batch, self.L
        n = self.sizes[lyr] if lyr else 0
        n_in = self.sizes[lyr - 1] if lyr else 0
        return {
            "x": (B, self.sizes[0]),
            "y": (B, self.sizes[L]),
            "loss_terms": (B, self.sizes[L]),
            "loss": (),
            "W": (n_in, n),
            "dW": (n_in, n),
            "W_new": (n_in, n),
            "b": (n,),
            "db": (n,),
            "b_new": (n,),
            "da_dz": (B, n, n) if lyr in self.jacobian else (B, n),
        }.get(kind, (B, n))

    def has(self, entry: Entry) -> bool:
        """True when ``entry``'s index lies inside its quantity."""
        shape = self.shape(entry[0])
        return len(entry[1]) == len(shape) and all(
            0 <= i < n for i, n in zip(entry[1], shape, strict=True)
        )

    def inputs(self, entry: Entry) -> list[Entry]:
        """The numbers ``entry`` is computed from (none for x, y, W, b)."""
        name, idx = entry
        kind, lyr = kind_of(name)
        B, L = range(self.batch), self.L
        if kind == "loss":
            return [("loss_terms", (s, k)) for s in B for k in range(self.sizes[L])]
        if kind == "loss_terms":
            return [(f"a{L}", idx), ("y", idx)]
        if kind in ("x", "y", "W", "b"):
            return []
        n_in, n = self.sizes[lyr - 1], self.sizes[lyr]
        prev = "x" if lyr == 1 else f"a{lyr - 1}"
        jac = lyr in self.jacobian
        dadz = f"da{lyr}_dz{lyr}"
        if kind in ("dW", "W_new", "db", "b_new"):
            if kind == "W_new":
                return [(f"W{lyr}", idx), (f"dW{lyr}", idx)]
            if kind == "b_new":
                return [(f"b{lyr}", idx), (f"db{lyr}", idx)]
            k = idx[-1]
            deltas: list[Entry] = [(f"delta{lyr}", (s, k)) for s in B]
            return [*((prev, (s, idx[0])) for s in B), *deltas] if kind == "dW" else deltas
        s, k = idx[0], idx[-1]
        if kind == "z":
            return [
                *((prev, (s, j)) for j in range(n_in)),
                *((f"W{lyr}", (j, k)) for j in range(n_in)),
                (f"b{lyr}", (k,)),
            ]
        if kind == "a":
            return [(f"z{lyr}", (s, m)) for m in range(n)] if jac else [(f"z{lyr}", (s, k))]
        if kind == "dL_da":
            if lyr == L:
                return [(f"a{L}", (s, k)), ("y", (s, k))]
            nxt = self.sizes[lyr + 1]
            return [
                *((f"delta{lyr + 1}", (s, m)) for m in range(nxt)),
                *((f"W{lyr + 1}", (k, m)) for m in range(nxt)),
            ]
        if kind == "da_dz":
            if jac:  # a_i(δ_ik − a_k): the two outputs alone (one on the diagonal)
                i = idx[1]
                pair: list[Entry] = [(f"a{lyr}", (s, i))]
                return pair if i == k else [*pair, (f"a{lyr}", (s, k))]
            return [(f"z{lyr}", (s, k)), (f"a{lyr}", (s, k))]
        # delta
        if jac:
            return [
                *((f"dL_da{lyr}", (s, i)) for i in range(n)),
                *((dadz, (s, i, k)) for i in range(n)),
            ]
        return [(f"dL_da{lyr}", (s, k)), (dadz, (s, k))]

    def consumers(self, entry: Entry) -> list[Entry]:
        """The numbers computed from ``entry``: :meth:`inputs` inverted, by candidates —
        only the quantities the step graph feeds from this one, and in them only the
        entries that can hold it — each confirmed against :meth:`inputs`."""
        from glassnet.check.steps import inputs_of, order
        from glassnet.check.worksheet import key_name

        name, idx = entry
        key = kind_of(name)
        out: list[Entry] = []
        for other in order(self.L):
            if other[0] == "output" or key not in inputs_of(other, self.L):
                continue
            q = key_name(other)
            for cand in self._candidates(q, name, idx):
                if entry in self.inputs(cand):
                    out.append(cand)
        return out

    def _candidates(self, q: str, name: str, idx: Index) -> list[Entry]:
        """Entries of ``q`` that may use the number ``name`` at ``idx``: in a batched
        quantity, from a batched number those of its sample, from a parameter those whose
        unit is one of its row and column; in a matrix (dW, W′) those whose row or column
        is one of the number's own indexes; in a vector or the loss, all (few)."""
        import itertools

        shape = self.shape(q)
        if not shape:
            return [(q, ())]
        units = set(idx)  # (a superset: each candidate is confirmed by its inputs)
        if kind_of(q)[0] in BATCHED:
            if kind_of(name)[0] in BATCHED:
                s = idx[0] if idx and idx[0] < shape[0] else 0
                rest = [range(n) for n in shape[1:]]
                return [(q, (s, *i)) for i in itertools.product(*rest)]
            return [(q, (s, u)) for s in range(shape[0]) for u in sorted(units) if u < shape[-1]]
        if len(shape) == 2:
            rows, cols = shape
            out = {(q, (r, c)) for r in units if r < rows for c in range(cols)}
            out |= {(q, (r, c)) for c in units if c < cols for r in range(rows)}
            return sorted(out)
        return [(q, (k,)) for k in range(shape[0])]
