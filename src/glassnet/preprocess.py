"""What stands between a raw row and the network's input, stored with the model.

A model trained by ``glassnet train`` standardises its inputs with the training part's
mean and spread; that belongs to the model, not to the command that trained it, so
:class:`Preprocessing` is saved in the model file and applied by
:meth:`glassnet.model.Model.predict` / ``predict_proba`` / ``fit``, by ``glassnet
predict``, by the ONNX export (as Sub and Div nodes), the PyTorch export (as metadata)
and by a spec's ``model = "..."`` trace (as its own first step).

In a model file: ``info["feature_names"]`` (the raw columns, in order) and the extras
``input_mean`` and ``input_scale`` (one number per network input).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from glassnet.errors import GlassnetError

Array = np.ndarray


@dataclass
class Preprocessed:
    """A step's first part, when it starts from raw rows: ``x = (raw − mean) / scale``
    (recorded in a :class:`~glassnet.trace.Trace` so every view shows it)."""

    raw: Array
    mean: Array
    scale: Array
    x: Array

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": "x = (raw - mean) / scale",
            "raw_input": self.raw.tolist(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "input": self.x.tolist(),
        }


@dataclass
class Preprocessing:
    """Standardisation ``x_std = (x − mean) / scale`` of rows of ``len(mean)`` features.

    ``feature_names`` names the raw columns in the order the network takes them (None
    when the data had no names)."""

    mean: Array
    scale: Array
    feature_names: list[str] | None = None

    def __post_init__(self) -> None:
        self.mean = np.asarray(self.mean, dtype=np.float64)
        self.scale = np.asarray(self.scale, dtype=np.float64)
        n = self.mean.shape[0] if self.mean.ndim == 1 else -1
        if self.mean.ndim != 1 or self.scale.shape != (n,):
            raise GlassnetError(
                "expected one mean and one spread per feature",
                got=f"shapes {self.mean.shape} and {self.scale.shape}",
                field="input_scale",
            )
        if not (np.isfinite(self.mean).all() and np.isfinite(self.scale).all()):
            raise GlassnetError("expected finite numbers", got="NaN or inf", field="input_mean")
        if not (self.scale > 0).all():
            raise GlassnetError(
                "expected positive spreads", got="zero or negative", field="input_scale"
            )
        names = self.feature_names
        if names is not None and (
            not isinstance(names, list)
            or len(names) != n
            or not all(isinstance(x, str) for x in names)
        ):
            raise GlassnetError(
                f"expected {n} feature names", got=repr(names)[:60], field="feature_names"
            )

    @property
    def n_features(self) -> int:
        return int(self.mean.shape[0])

    def transform(self, X: object) -> Array:
        """Raw rows X (n, n_features) -> the network's inputs (n, n_features), float64.

        A single row (n_features,) is taken as one row."""
        X = np.asarray(X)
        if X.ndim == 1:
            X = X[None, :]
        if X.dtype.kind not in "biuf":
            raise GlassnetError("expected numbers", got=f"values of type {X.dtype}", field="X")
        if X.ndim != 2 or X.shape[1] != self.n_features:
            raise GlassnetError(
                f"expected rows of {self.n_features} raw features (as the model was trained on)",
                got=f"shape {X.shape}",
                field="X",
            )
        return (np.asarray(X, dtype=np.float64) - self.mean) / self.scale

    def record(self, raw: object) -> Preprocessed:
        """Raw rows and what :meth:`transform` makes of them, for a trace."""
        raw_rows = np.atleast_2d(np.asarray(raw, dtype=np.float64))
        return Preprocessed(raw_rows, self.mean, self.scale, self.transform(raw_rows))

    def describe(self) -> str:
        """One line for people: what is done to a raw row."""
        return (
            f"each of the {self.n_features} raw features standardised: "
            "x = (raw − mean) / scale, with the training data's mean and spread"
        )

    # -- the model file ------------------------------------------------------------------
    def to_file(self) -> tuple[dict[str, Any], dict[str, Array]]:
        """(``info`` entries, ``extras`` arrays) for a model file."""
        return {"feature_names": self.feature_names}, {
            "input_mean": self.mean,
            "input_scale": self.scale,
        }

    @classmethod
    def from_file(
        cls, info: dict[str, Any], extras: dict[str, Array], n_in: int
    ) -> Preprocessing | None:
        """The preprocessing a model file stores (None when it stores none), checked
        against the network's ``n_in`` inputs."""
        if "input_mean" not in extras or "input_scale" not in extras:
            return None
        mean, scale = extras["input_mean"], extras["input_scale"]
        for key, a in (("input_mean", mean), ("input_scale", scale)):
            if a.shape != (n_in,):
                raise GlassnetError(
                    f"expected {n_in} numbers (one per input)", got=f"shape {a.shape}", field=key
                )
        return cls(mean, scale, info.get("feature_names"))
