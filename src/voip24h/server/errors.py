"""The one error path: any failure becomes the -1 envelope, its code kept on the request.

Used by Starlette's exception handlers and by the partner fast path in server/app.py.
The error code goes on the request's state (the RequestInfo the ops middleware put in
``scope["state"]``), where the access log, the metrics and the audit read it: nothing
parses a response body back.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from voip24h import errors
from voip24h.server.observability import INFO_KEY

log = logging.getLogger("voip24h")


def _note_code(request: Request, code: str) -> None:
    info = request.scope.get("state", {}).get(INFO_KEY)
    if info is not None:
        info.error_code = code


def error_response(request: Request, error: errors.ApiError) -> Response:
    """The -1 envelope for ``error``; its code is noted on the request's state."""
    _note_code(request, error.error_code)
    return Response(
        errors.envelope_bytes(error.message, error.error_code),
        status_code=error.status,
        media_type="application/json",
        headers=error.headers,
    )


def from_http(exc: HTTPException) -> errors.ApiError:
    """The catalogue error for one of Starlette's HTTP errors (404, 405, ...)."""
    if exc.status_code == 404:
        return errors.NotFound()
    if exc.status_code == 405:
        # Keep Starlette's Allow header (RFC 9110 requires it on a 405).
        headers = dict(exc.headers or {})
        allowed = headers.get("Allow") or headers.get("allow")
        message = f"Use {allowed} for this endpoint." if allowed else None
        return errors.MethodNotAllowed(message, headers=headers)
    mapped = errors.InvalidRequest(str(exc.detail))
    mapped.status = exc.status_code  # type: ignore[misc]
    return mapped


def to_api_error(exc: BaseException) -> errors.ApiError:
    """Any exception as the catalogue error it is answered with (logging the 5xx ones)."""
    if isinstance(exc, errors.ApiError):
        # An outage or a full waiting line fails every request alike: server/dbgate.py
        # logs the outage once at each end and /metrics counts both, not a line each.
        quiet = isinstance(exc, errors.DatabaseUnavailable | errors.DatabaseBusy)
        if exc.status >= 500 and not quiet:
            log.warning("%s: %s", exc.error_code, exc.__cause__ or exc)
        return exc
    if isinstance(exc, HTTPException):
        return from_http(exc)
    log.exception("unexpected error", exc_info=exc)
    return errors.InternalError()


async def handle(request: Request, exc: Exception) -> Response:
    """Starlette exception handler for every kind of error."""
    return error_response(request, to_api_error(exc))
