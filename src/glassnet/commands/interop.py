"""``glassnet export``: a model to ONNX, to a PyTorch model file, or to glassnet's .npz."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from glassnet.model import Model


def register(sub: Any) -> None:
    p = sub.add_parser(
        "export",
        help="write a model as ONNX, a PyTorch model file, or a glassnet model",
        description="Convert MODEL (a glassnet .npz model, a PyTorch .safetensors model file, "
        "or a spec file / 'seed') to another format. ONNX graphs take raw features: a model "
        "saved by 'glassnet train' has its input standardisation built in.",
    )
    p.add_argument("model", metavar="MODEL", help=".npz model, .safetensors model, spec or 'seed'")
    p.add_argument(
        "--format",
        required=True,
        choices=["onnx", "torch", "npz"],
        help="onnx (.onnx), torch (.safetensors: state dict + architecture), npz",
    )
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="file to write")
    p.set_defaults(func=_run_export)


def _load(source: str) -> Model:
    from pathlib import Path

    from glassnet.interop import MODEL_SUFFIXES, load_any_model
    from glassnet.model import Model

    if Path(source).suffix.lower() in MODEL_SUFFIXES:
        return load_any_model(source)
    from glassnet.spec import load_spec

    return Model.from_network(load_spec(source).network)


def _run_export(args: argparse.Namespace) -> int:
    from glassnet.errors import GlassnetError

    net = _load(args.model)
    if args.format == "onnx":
        from glassnet.extras import install_hint
        from glassnet.interop import export_onnx

        try:
            import onnx  # noqa: F401
        except ImportError:
            raise GlassnetError(
                f"expected the onnx package ({install_hint('onnx')})",
                got="not installed",
                field="--format",
            ) from None
        export_onnx(net, args.output)  # a model's preprocessing becomes graph nodes
    elif args.format == "torch":
        from glassnet.interop import save_torch_model

        save_torch_model(net, args.output)
    else:
        net.save(args.output, training=False)
    print(f"wrote {args.output}")
    return 0
