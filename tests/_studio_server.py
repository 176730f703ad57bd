"""The studio served on a free local port for browser tests (Playwright): one helper,
so every browser test file starts its studio the way `glassnet studio` does."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def serve_studio() -> Iterator[str]:
    """A studio of its own on 127.0.0.1 (a free port, TCP_NODELAY as `glassnet studio`
    sets it), yielding its URL; stopped on exit."""
    import uvicorn

    from glassnet.studio.app import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    port = sock.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=srv.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    for _ in range(200):  # up to 10 s for the server to start
        if srv.started:
            break
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/"
    finally:
        srv.should_exit = True
        thread.join(timeout=10)
