"""The web page of ``fastmf web``: one static page (``static/``: plain HTML, CSS and JavaScript, no
build step, nothing fetched from elsewhere) and a JSON API over :class:`fastmf.app.service.Catalog`.

=========================================  ===========================================================
``GET  /``                                 the page
``GET  /static/<name>``                    its script and style sheet (only the files of ``static/``)
``GET  /api/info``                         the model: class, sizes, rating scale, capabilities, limits
``GET  /api/onboarding?n=&offset=&exclude=``  items to rate first (popularity x entropy), comma-separated ids excluded
``GET  /api/search?q=&n=``                 titles matching ``q``, best first (``"Matrix, The"`` style handled)
``GET  /api/items/<id>``                   an item's title, year, genres, number of ratings
``GET  /api/items/<id>/similar?n=``        the items closest to it in the factor space
``POST /api/recommend``                    ``{"ratings": [[id, rating], ...], "n": 10}``: top-n with
                                           "because you liked X", and the server time in ms
=========================================  ===========================================================

Every answer is JSON; a mistake is ``{"error": message, "kind": ...}`` with status 400 (bad value),
404 (unknown id or path), 405, 413 (body over :data:`MAX_BODY` bytes) or 415 (a POST that is not
``application/json``); an unexpected failure is 500 ``{"error": "internal error"}``, never a
traceback. The route handlers only translate HTTP to service calls: all logic is in the service.

Safe by default: the command line binds 127.0.0.1; the Host header must name the address served
(the page cannot be reached through DNS rebinding); a POST must be JSON (a form on another site
cannot send one without the browser asking first, and this server never allows it); responses
forbid framing and carry a strict Content-Security-Policy (the page's own script and style only).
"""

from __future__ import annotations

import json
import logging
import time
from importlib import resources
from typing import Any, Dict, Optional, Sequence

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from fastmf.app import service
from fastmf.errors import CapabilityError, UnknownIdError, UserError

__all__ = ["create_app", "MAX_BODY", "STATIC_FILES", "LOOPBACK_HOSTS"]

#: the largest request body accepted, in bytes (1000 ratings as JSON take about 20 kB)
MAX_BODY = 64 * 1024
#: the files of the page, name -> media type; nothing else is served
STATIC_FILES = {"index.html": "text/html; charset=utf-8", "app.js": "text/javascript; charset=utf-8",
                "style.css": "text/css; charset=utf-8"}
#: host names that mean this computer only
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")

_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
}

log = logging.getLogger("fastmf.web")


class _Limit(Exception):
    """A request body over the limit."""


def _host_name(host: str) -> str:
    """The name of a Host header without its port: ``"127.0.0.1:8000"`` -> ``"127.0.0.1"``,
    ``"[::1]:8000"`` -> ``"::1"``."""
    if host.startswith("[") and "]" in host:
        return host[1:host.index("]")]
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


class _HostCheck:
    """ASGI middleware: a request whose Host header (the name without the port) is not one of
    ``allowed`` gets a JSON 400; ``"*"`` in ``allowed`` accepts any. This is what stops a page on
    another site from reaching a server on 127.0.0.1 through a DNS name it controls."""

    def __init__(self, app: Any, allowed: Sequence[str]) -> None:
        self.app = app
        self.allowed = {h.lower() for h in allowed}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and "*" not in self.allowed:
            host = dict(scope.get("headers") or ()).get(b"host", b"").decode("latin-1").lower()
            if _host_name(host) not in self.allowed:
                await _error(400, f"this server answers for {', '.join(sorted(self.allowed))}, "
                                  f"not host {host[:60]!r}", "bad_host")(scope, receive, send)
                return
        await self.app(scope, receive, send)


def _json(obj: Any, status: int = 200) -> Response:
    body = json.dumps(service.jsonable(obj), allow_nan=False, ensure_ascii=False, separators=(",", ":"))
    return Response(body.encode("utf-8"), status_code=status, media_type="application/json",
                    headers=_HEADERS)


def _error(status: int, message: str, kind: str) -> Response:
    return _json({"error": message, "kind": kind}, status)


def _static_files() -> Dict[str, bytes]:
    folder = resources.files("fastmf.app.web") / "static"
    return {name: (folder / name).read_bytes() for name in STATIC_FILES}


def _ids(text: Optional[str]) -> Sequence[str]:
    return [t for t in (text or "").split(",") if t.strip()]


async def _read_json(request: Request, limit: int) -> Any:
    """The JSON body of ``request``, read at most ``limit`` bytes: :class:`_Limit` beyond that (by the
    Content-Length header before anything is read, or while reading a chunked body)."""
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > limit):
        raise _Limit()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Limit()
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        raise UserError("the request body is not valid JSON") from None


def create_app(catalog: service.Catalog, *, allowed_hosts: Sequence[str] = LOOPBACK_HOSTS,
               max_body: int = MAX_BODY) -> Starlette:
    """The ASGI application serving ``catalog`` (a :class:`fastmf.app.service.Catalog`).

    ``allowed_hosts``: the Host header values accepted (``"*"``: any; the command line passes the
    loopback names when it binds 127.0.0.1); ``max_body``: the largest request body in bytes.
    Requests are answered in Starlette's thread pool; the catalog is only read, so concurrent
    requests get the answers serial ones would."""
    files = _static_files()

    async def page(request: Request) -> Response:
        return Response(files["index.html"], media_type=STATIC_FILES["index.html"], headers=_HEADERS)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in files:  # a fixed list: no path is ever joined to a folder
            return _error(404, f"no such file: {name[:60]}", "not_found")
        return Response(files[name], media_type=STATIC_FILES[name], headers=_HEADERS)

    def info(request: Request) -> Response:
        return _json(catalog.info())

    def onboarding(request: Request) -> Response:
        q = request.query_params
        return _json(catalog.onboarding(n=q.get("n", "12"), offset=q.get("offset", "0"),
                                        exclude=_ids(q.get("exclude"))))

    def search(request: Request) -> Response:
        q = request.query_params
        return _json(catalog.search(q.get("q", ""), n=q.get("n", "10")))

    def item(request: Request) -> Response:
        return _json(catalog.item(request.path_params["item"]))

    def similar(request: Request) -> Response:
        return _json(catalog.similar(request.path_params["item"], n=request.query_params.get("n", "10")))

    async def recommend(request: Request) -> Response:
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind != "application/json":
            return _error(415, "send the request body as application/json", "media_type")
        body = await _read_json(request, max_body)
        if not isinstance(body, dict) or set(body) - {"ratings", "n"}:
            raise UserError('the body must be a JSON object {"ratings": [[item, rating], ...], "n": 10}')

        def work() -> Dict[str, Any]:
            t0 = time.perf_counter()
            out = catalog.recommend(body.get("ratings", []), n=body.get("n", 10))
            out["server_ms"] = (time.perf_counter() - t0) * 1e3
            return out

        return _json(await run_in_threadpool(work))

    async def user_error(request: Request, exc: Exception) -> Response:
        if isinstance(exc, UnknownIdError):
            return _error(404, str(exc.args[0]) if exc.args else "unknown id", "unknown_id")
        if isinstance(exc, CapabilityError):
            return _error(400, str(exc), "capability")
        return _error(400, str(exc), "bad_request")

    async def too_large(request: Request, exc: Exception) -> Response:
        return _error(413, f"the request body is over {max_body:,} bytes", "too_large")

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        kinds = {404: "not_found", 405: "method_not_allowed"}
        text = {404: f"no such page: {request.url.path[:80]}", 405: f"{request.method} is not allowed here"}
        return _error(status, text.get(status, str(getattr(exc, "detail", "error"))), kinds.get(status, "http"))

    async def internal(request: Request, exc: Exception) -> Response:
        log.error("fastmf web: internal error on %s %s", request.method, request.url.path, exc_info=exc)
        return _error(500, "internal error", "internal")

    routes = [
        Route("/", page, methods=["GET"]),
        Route("/static/{name}", static, methods=["GET"]),
        Route("/api/info", info, methods=["GET"]),
        Route("/api/onboarding", onboarding, methods=["GET"]),
        Route("/api/search", search, methods=["GET"]),
        Route("/api/items/{item}", item, methods=["GET"]),
        Route("/api/items/{item}/similar", similar, methods=["GET"]),
        Route("/api/recommend", recommend, methods=["POST"]),
    ]
    hosts = list(allowed_hosts)
    return Starlette(routes=routes,
                     middleware=[Middleware(_HostCheck, allowed=hosts)],
                     exception_handlers={UserError: user_error, _Limit: too_large, HTTPException: http_error,
                                         Exception: internal})
