"""Moving networks between glassnet, PyTorch and ONNX, exactly.

- :mod:`glassnet.interop.torch`: :func:`to_torch` / :func:`from_torch` and the
  safetensors model files (:func:`save_torch_model` / :func:`load_torch_model`);
- :mod:`glassnet.interop.onnx`: :func:`to_onnx` / :func:`export_onnx`;
- :func:`load_any_model`: a glassnet ``.npz`` or a PyTorch ``.safetensors`` model.

torch, onnx and safetensors are optional (``pip install glassnet[torch]``,
``glassnet[onnx]``); each is imported only by the function that needs it.
"""

from __future__ import annotations

from pathlib import Path

from glassnet.errors import GlassnetError
from glassnet.interop.onnx import export_onnx, to_onnx
from glassnet.interop.torch import (
    check_step,
    from_torch,
    load_torch_model,
    save_torch_model,
    to_torch,
    torch_architecture,
)
from glassnet.model import Model

__all__ = [
    "MODEL_SUFFIXES",
    "check_step",
    "export_onnx",
    "from_torch",
    "load_any_model",
    "load_torch_model",
    "save_torch_model",
    "to_onnx",
    "to_torch",
    "torch_architecture",
]

# -- any model file ----------------------------------------------------------------------
MODEL_SUFFIXES: tuple[str, ...] = (".npz", ".safetensors")


def load_any_model(path: str | Path) -> Model:
    """A model from a glassnet model (``.npz``) or a PyTorch model file
    (``.safetensors``), with the preprocessing, classes and task either records."""
    label = str(path)
    suffix = Path(label).suffix.lower()
    if suffix == ".safetensors":
        return load_torch_model(label)
    if suffix == ".npz":
        from glassnet.model import load

        return load(label)
    raise GlassnetError(
        f"expected a model file ({', '.join(MODEL_SUFFIXES)})",
        got=f"suffix {suffix or '(none)'!r}",
        file=label,
    )
