"""Errors of the server and its clients, and the one error shape every response uses.

A failed request always answers ``{"error": {"message", "type", "param", "code"}}`` (the shape
of OpenAI's and vLLM's servers; ``code`` is the HTTP status), never a traceback and never a
made-up score. :class:`ApiError` is how a route says which; :class:`ServeError` is what the
clients raise when a server answers with an error or cannot be reached.

Example:
    >>> error_body(413, "too many traces", param="traces")["error"]["type"]
    'request_too_large'
"""

from __future__ import annotations

from typing import Any

from prmkit.errors import PrmkitError

__all__ = ["ERROR_TYPES", "ApiError", "ServeError", "error_body"]

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "method_not_allowed",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    499: "client_closed_request",
    500: "server_error",
    503: "server_unavailable",
    504: "timeout_error",
}
"""The ``type`` of an error response by HTTP status."""


def error_body(status: int, message: str, *, param: str | None = None) -> dict[str, Any]:
    """The JSON body of an error response."""
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": status}}


class ApiError(Exception):
    """A request the server answers with an error response (raised inside a route).

    Args:
        status: The HTTP status.
        message: What went wrong and how to fix it (shown to the client).
        param: The request field at fault (``traces[2].steps``), if any.
        headers: Extra response headers (``Retry-After`` on 429).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.headers = headers or {}


class ServeError(PrmkitError, RuntimeError):
    """A prmkit server (or a vLLM one) answered with an error, or could not be reached.

    Attributes:
        status: The HTTP status of the last answer; ``None`` when no answer came (connection
            refused, timeout).
        server_message: The ``error.message`` the server sent (or the body's start).
        attempts: How many requests were made (1 + retries used).
    """

    def __init__(
        self,
        what: str,
        *,
        status: int | None = None,
        server_message: str | None = None,
        attempts: int = 1,
        url: str | None = None,
        fix: str | None = None,
    ) -> None:
        self.status = status
        self.server_message = server_message
        self.attempts = attempts
        said = f": {server_message}" if server_message else ""
        super().__init__(what + said, fix=fix, where=url)
