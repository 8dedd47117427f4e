"""The HTTP layer both servers share (``prmkit serve`` and ``prmkit serve-policy``).

* :class:`Guard`: the outer ASGI layer: bearer token, body size checked before parsing, request
  metrics.
* :func:`error_response`: every error as ``{"error": {"message", "type", "param", "code"}}``.
* :func:`install_error_handlers`: the exception handlers that turn validation errors, unknown
  routes, prmkit errors and server faults into that shape (never a Python traceback).
* :func:`check_model_name`: a request's ``model`` must be the served one.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException

from prmkit.errors import PrmkitError
from prmkit.serve.config import API_KEY_ENV
from prmkit.serve.errors import ApiError, error_body
from prmkit.serve.metrics import Metrics

__all__ = [
    "OPEN_PATHS",
    "Guard",
    "check_model_name",
    "error_response",
    "install_error_handlers",
    "param_path",
]

log = logging.getLogger("prmkit.serve")

OPEN_PATHS = frozenset({"/health"})
"""Paths answered without the bearer token."""


def error_response(
    status: int, message: str, param: str | None = None, **headers: str
) -> JSONResponse:
    return JSONResponse(error_body(status, message, param=param), status, headers=headers or None)


class Guard:
    """Outer ASGI layer: bearer token, body size (before parsing), request metrics."""

    def __init__(
        self, app: Any, *, api_key: str | None, max_body_bytes: int, metrics: Metrics
    ) -> None:
        self.app = app
        self.api_key = api_key
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self._paths: set[str] | None = None

    def _label(self, scope: dict[str, Any]) -> str:
        """The route label of a request: its path when it names a route, else ``other``."""
        if self._paths is None:
            app = scope.get("app")
            routes = getattr(app, "routes", [])
            self._paths = {getattr(r, "path", "") for r in routes}
        path = scope.get("path", "")
        return path if path in self._paths else "other"

    def _unauthorized(self, scope: dict[str, Any]) -> JSONResponse | None:
        if self.api_key is None or scope.get("path") in OPEN_PATHS:
            return None
        header = Headers(scope=scope).get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and secrets.compare_digest(
            token.strip().encode(), self.api_key.encode()
        ):
            return None
        what = "wrong API key" if header else "no API key"
        return error_response(
            401,
            f"{what}: send the header 'Authorization: Bearer <key>' with the key the server was "
            f"started with (its api_key, or ${API_KEY_ENV})",
            **{"WWW-Authenticate": "Bearer"},
        )

    async def _body(
        self, scope: dict[str, Any], receive: Callable[[], Awaitable[dict[str, Any]]]
    ) -> bytes | JSONResponse | None:
        """The whole body, a 413/400 response, or ``None`` when the client left."""
        limit = self.max_body_bytes
        declared = Headers(scope=scope).get("content-length")
        if declared is not None:
            if not declared.isdigit():
                return error_response(400, f"malformed Content-Length header {declared!r}")
            if int(declared) > limit:
                return error_response(
                    413,
                    f"the body has {int(declared)} bytes; this server takes at most {limit} "
                    "(max_body_bytes); split the request",
                )
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return error_response(
                    413,
                    f"the body has more than {limit} bytes (max_body_bytes); split the request",
                )
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def send_status(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            refusal = self._unauthorized(scope)
            if refusal is not None:
                await refusal(scope, receive, send_status)
                return
            if scope["method"] in ("POST", "PUT", "PATCH"):
                body = await self._body(scope, receive)
                if body is None:
                    status = 499
                    return
                if isinstance(body, JSONResponse):
                    await body(scope, receive, send_status)
                    return
                receive = _replay(body, receive)
            await self.app(scope, receive, send_status)
        finally:
            label = self._label(scope)
            self.metrics.requests.labels(label, str(status)).inc()
            self.metrics.latency.labels(label).observe(time.perf_counter() - start)


def _replay(body: bytes, receive: Any) -> Callable[[], Awaitable[dict[str, Any]]]:
    """A ``receive`` that gives the already-read body once, then the client's own messages."""
    given = False

    async def replay() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


def param_path(loc: Sequence[Any]) -> str:
    """``("body", "traces", 0, "steps")`` -> ``traces[0].steps``."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def install_error_handlers(app: FastAPI, routes: str) -> None:
    """Answer every failure of ``app`` in the one error shape; ``routes`` lists the app's routes
    for the 404 message."""

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return error_response(exc.status, exc.message, exc.param, **exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = list(exc.errors())
        broken = next((e for e in errors if e.get("type") == "json_invalid"), None)
        if broken is not None:
            detail = (broken.get("ctx") or {}).get("error", broken.get("msg", ""))
            return error_response(400, f"malformed JSON in the request body ({detail})")
        first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
        param = param_path(first.get("loc", ()))
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        message = f"{param + ': ' if param else ''}{first.get('msg', 'invalid value')}{more}"
        return error_response(422, message, param or None)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"no route {request.method} {request.url.path}; this server has {routes}"
        elif exc.status_code == 405:
            message = f"{request.method} is not allowed on {request.url.path}"
        else:
            message = str(exc.detail)
        return error_response(exc.status_code, message, **(exc.headers or {}))

    @app.exception_handler(PrmkitError)
    async def _prmkit(_request: Request, exc: PrmkitError) -> JSONResponse:
        return error_response(400, str(exc))

    @app.exception_handler(Exception)
    async def _fault(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s", request.url.path, exc_info=exc)
        return error_response(
            500, f"internal server error ({type(exc).__name__}); see the server log"
        )


def check_model_name(given: str | None, served: str) -> None:
    """Raise a 404 :class:`ApiError` when a request names another model than ``served``."""
    if given is not None and given != served:
        raise ApiError(
            404,
            f"the model {given!r} is not served here; this server serves {served!r}",
            param="model",
        )
