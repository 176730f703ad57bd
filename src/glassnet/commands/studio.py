"""``glassnet studio``: the interactive page (the ``studio`` extra: Starlette, uvicorn)."""

from __future__ import annotations

import argparse
import ipaddress
from typing import Any

from glassnet.errors import GlassnetError
from glassnet.extras import install_hint

INSTALL_HINT = f"expected the studio extra ({install_hint('studio')})"


def register(sub: Any) -> None:
    p = sub.add_parser(
        "studio",
        help="open the interactive page: change any number, follow it, work it by hand",
        description="Start a local web page where every number of one training step can be "
        "changed, traced to where it came from and worked by hand with live marks, and a "
        "small network can be trained.  SPEC: a spec or worksheet file (TOML) or 'seed'.",
    )
    p.add_argument(
        "spec",
        metavar="SPEC",
        help="spec, worksheet or exercise file (TOML), model file (.npz, .safetensors), or 'seed'",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to bind (default 127.0.0.1; any other needs the printed token)",
    )
    p.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    p.add_argument("--no-browser", action="store_true", help="only print the address")
    p.set_defaults(func=_run)


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def initial_state(source: str) -> dict[str, Any]:
    """What the page opens with: a spec or model (Explore), a worksheet or an exercise's
    blank worksheet (Practice)."""
    from pathlib import Path

    from glassnet.spec import EXAMPLES, read_text
    from glassnet.studio import api

    if source in EXAMPLES:
        return {"spec": api.example(source), "mode": "explore"}
    if Path(source).suffix in (".npz", ".safetensors"):
        return {"spec": api.from_model(source), "mode": "explore"}
    text = read_text(Path(source), source, "a spec or worksheet file (TOML) or 'seed'")
    return api.load({"name": source, "text": text})


def _run(args: argparse.Namespace) -> int:
    import importlib.util

    if importlib.util.find_spec("starlette") is None or importlib.util.find_spec("uvicorn") is None:
        raise GlassnetError(INSTALL_HINT, got="starlette or uvicorn missing")
    if not 0 <= args.port <= 65535:
        raise GlassnetError("expected a port from 0 to 65535", got=str(args.port), field="--port")
    import secrets
    import socket
    import webbrowser

    import uvicorn

    from glassnet.studio.app import create_app

    state = initial_state(args.spec)
    loopback = _loopback(args.host)
    token = None if loopback else secrets.token_urlsafe(24)
    family = socket.AF_INET6 if ":" in args.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Answers go out as headers then body: without TCP_NODELAY (inherited by accepted
    # sockets) Nagle + the browser's delayed ACK add ~40 ms to every edit on a kept-alive
    # connection (measured with bench/studio_load.py).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as err:
        raise GlassnetError(
            "expected an address and port free to bind",
            got=f"{args.host}:{args.port}: {err.strerror}",
            field="--host",
        ) from None
    sock.listen(128)  # listening now: the browser may connect before uvicorn has started
    port = sock.getsockname()[1]
    shown = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    print(f"glassnet studio: {url}  (Ctrl-C to stop)", flush=True)
    if token:
        print(
            "glassnet studio: not loopback — anyone who can reach this address needs that "
            "token; share it only with who should use the page",
            flush=True,
        )
    app = create_app(token=token, loopback_only=loopback, initial=state)
    if not args.no_browser:
        webbrowser.open(url)
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
    return 0
