"""The studio's ASGI application (Starlette): the page's files and the JSON API of
:mod:`glassnet.studio.api`.  The security model (docs/studio.md):

- it is meant to bind 127.0.0.1; then a request whose ``Host`` is not a loopback name is
  refused (403), so a web page elsewhere cannot reach it by DNS rebinding;
- with ``token`` set (``--host`` other than loopback) every request must carry it — as
  ``?token=`` on the page's address (which then sets an HttpOnly cookie), the cookie, or
  the ``X-Glassnet-Token`` header — else 403;
- request bodies larger than :data:`~glassnet.studio.api.STUDIO_MAX_BODY` get 413 before
  they are read whole; bad input gets 400/413/422 with one line, never 500;
- a Content-Security-Policy lets the page load nothing from anywhere but this server,
  and nothing on the server's disk is reachable except the page's own files.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from importlib import resources
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from glassnet.errors import GlassnetError
from glassnet.studio import api

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cache-Control": "no-store",
}
STATIC = {
    "studio.js": "text/javascript; charset=utf-8",
    "graph.js": "text/javascript; charset=utf-8",
    "studio.css": "text/css; charset=utf-8",
}
LOOPBACK_NAMES = {"127.0.0.1", "localhost", "[::1]", "::1"}
COOKIE = "glassnet_token"


def _asset(name: str) -> bytes:
    return (resources.files("glassnet.studio") / "static" / name).read_bytes()


def _explain_css() -> bytes:
    """explain's own maths stylesheet, so a derivation block looks as in its HTML page."""
    from glassnet.explain.render_html import MATH_CSS

    return MATH_CSS.replace("SCOPE ", ".deriv ").encode()


def _error(err: GlassnetError) -> JSONResponse:
    return JSONResponse({"error": str(err)}, status_code=api.status_of(err))


async def _body(request: Request) -> Any:
    """The request's JSON, refused with 413 as soon as it outgrows the limit."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > api.STUDIO_MAX_BODY):
        raise api.StudioError(
            f"expected a request of at most {api.STUDIO_MAX_BODY} bytes",
            got=length[:20],
            status=413,
        )
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > api.STUDIO_MAX_BODY:
            raise api.StudioError(
                f"expected a request of at most {api.STUDIO_MAX_BODY} bytes",
                got="more",
                status=413,
            )
        chunks.append(chunk)
    return api.decode(b"".join(chunks))


def _refused_post(request: Request) -> JSONResponse | None:
    """A POST the page could not have sent: a body that is not declared JSON (415), or
    one sent by a page of another origin (403).

    A cross-site ``<form method=post enctype=text/plain>`` can post JSON-looking text
    without a CORS preflight; it cannot set ``Content-Type: application/json`` and its
    browser names the other page in ``Origin``.  No ``Origin`` (curl, scripts, the
    tests) is allowed: such a client is not a browser tab carrying someone's cookie, and
    off loopback the token is still required."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        return JSONResponse(
            {"error": f"expected Content-Type: application/json, got {media[:60] or 'none'!r}"},
            status_code=415,
        )
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if (origin is not None and origin != own) or site not in (None, "same-origin", "none"):
        return JSONResponse(
            {"error": f"expected a request from this page ({own}), got {str(origin)[:80]!r}"},
            status_code=403,
        )
    return None


def _endpoint(fn: Callable[[Any], Any]) -> Callable[[Request], Awaitable[Response]]:
    async def handle(request: Request) -> Response:
        refused = _refused_post(request)
        if refused is not None:
            return refused
        try:
            body = await _body(request)
            # The engine's work is CPU-bound: off the event loop, so the server keeps
            # answering other requests meanwhile.
            result = await run_in_threadpool(fn, body)
        except GlassnetError as err:
            return _error(err)
        except RecursionError:
            return _error(api.StudioError("expected less deeply nested input", status=413))
        return JSONResponse(result)

    return handle


def create_app(
    *,
    token: str | None = None,
    loopback_only: bool = True,
    initial: dict[str, Any] | None = None,
) -> Starlette:
    """The application.  ``token``: required on every request when set.
    ``loopback_only``: refuse a Host header that is not a loopback name.  ``initial``:
    what the page opens with (``{"spec": ..., "values"?: ..., "mode"?: ...}``)."""
    start = initial or {"spec": api.example("seed"), "mode": "explore"}

    async def page(request: Request) -> Response:
        response = Response(_asset("index.html"), media_type="text/html; charset=utf-8")
        if token and request.query_params.get("token") == token:
            response.set_cookie(COOKIE, token, httponly=True, samesite="strict")
        return response

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name == "explain.css":
            return Response(_explain_css(), media_type="text/css; charset=utf-8")
        if name not in STATIC:  # only the page's own files: no path reaches the disk
            return JSONResponse({"error": f"no such file: {name[:40]}"}, status_code=404)
        return Response(_asset(name), media_type=STATIC[name])

    async def graph_page(request: Request) -> Response:
        # The graph mode: an expression's circuit (docs/studio.md, "Graph").
        return Response(_asset("graph.html"), media_type="text/html; charset=utf-8")

    async def initial_state(request: Request) -> Response:
        return JSONResponse(start)

    async def example(request: Request) -> Response:
        try:
            return JSONResponse({"spec": api.example(request.path_params["name"])})
        except GlassnetError as err:
            return _error(err)

    routes = [
        Route("/", page),
        Route("/graph", graph_page),
        Route("/static/{name}", static),
        Route("/api/initial", initial_state),
        Route("/api/example/{name}", example),
    ]
    from glassnet.studio import circuits, practice

    for name, fn in {**api.ENDPOINTS, **practice.ENDPOINTS, **circuits.ENDPOINTS}.items():
        routes.append(Route(f"/api/{name}", _endpoint(fn), methods=["POST"]))

    app = Starlette(routes=routes)
    return _Guard(app, token=token, loopback_only=loopback_only)  # type: ignore[return-value]


class _Guard:
    """ASGI middleware: Host and token checks first, security headers on every answer."""

    def __init__(self, app: Any, *, token: str | None, loopback_only: bool) -> None:
        self.app = app
        self.token = token
        self.loopback_only = loopback_only

    def _allowed(self, scope: dict[str, Any]) -> str | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.loopback_only:
            host = headers.get("host", "")
            name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
            if name not in LOOPBACK_NAMES:
                return "expected a loopback Host (127.0.0.1 or localhost)"
        if self.token:
            from http.cookies import SimpleCookie
            from urllib.parse import parse_qs

            query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
            cookie = SimpleCookie()
            try:
                cookie.load(headers.get("cookie", ""))
            except Exception:  # a malformed cookie header is simply no token
                cookie = SimpleCookie()
            offered = [
                *query.get("token", []),
                headers.get("x-glassnet-token", ""),
                cookie[COOKIE].value if COOKIE in cookie else "",
            ]
            if not any(o and secrets.compare_digest(o, self.token) for o in offered):
                return "expected the studio's token (the URL it printed)"
        return None

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":
            return
        refused = self._allowed(scope)

        async def send_with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                extra = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if refused:
            await JSONResponse({"error": refused}, status_code=403)(
                scope, receive, send_with_headers
            )
            return
        await self.app(scope, receive, send_with_headers)
