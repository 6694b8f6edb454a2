"""Exceptions of the partner client: every failure is a Voip24hError.

An answer of the server with ``respCode`` -1 becomes an :class:`ApiError` (or one of its
subclasses, chosen by HTTP status) carrying ``resp_code``, ``resp_msg``, ``error_code`` and
``status``. Failing to reach the server at all is a :class:`TransportError`. Messages
never contain the partner secret.
"""

from __future__ import annotations


class Voip24hError(Exception):
    """Base of every error the client raises."""


class TransportError(Voip24hError):
    """The server could not be reached, or did not answer in time (after any retries)."""


class Timeout(TransportError):
    """The server did not answer within the configured timeout."""


class ProtocolError(Voip24hError):
    """The answer is not the voip24h envelope (e.g. an HTML error page from a proxy)."""

    def __init__(self, message: str, *, status: int):
        super().__init__(message)
        self.status = status


class ApiError(Voip24hError):
    """The server answered ``respCode`` -1.

    Attributes mirror the wire: ``resp_code`` (respCode), ``resp_msg`` (respMsg),
    ``error_code`` (errorCode, a stable snake_case id to branch on), and the HTTP
    ``status``. ``retry_after`` is the server's Retry-After in seconds, if it sent one.
    """

    def __init__(
        self,
        resp_msg: str,
        *,
        error_code: str,
        status: int,
        resp_code: int = -1,
        retry_after: float | None = None,
    ):
        super().__init__(f"{resp_msg} [{error_code}, HTTP {status}]")
        self.resp_code = resp_code
        self.resp_msg = resp_msg
        self.error_code = error_code
        self.status = status
        self.retry_after = retry_after

    # The wire's names, for code ported from other voip24h clients.
    @property
    def respCode(self) -> int:
        return self.resp_code

    @property
    def respMsg(self) -> str:
        return self.resp_msg

    @property
    def errorCode(self) -> str:
        return self.error_code

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, error_code={self.error_code!r}, "
            f"resp_msg={self.resp_msg!r})"
        )


class BadRequest(ApiError):
    """The request was refused as invalid (HTTP 400, 404, 405, 413, 415): fix it, don't retry."""


class AuthenticationError(ApiError):
    """The secret is missing, wrong, revoked or expired (HTTP 401)."""


class PermissionDenied(ApiError):
    """The secret is valid but the request is outside the partner's scope (HTTP 403)."""


class RateLimited(ApiError):
    """Too many requests (HTTP 429), still refused after the retries allowed."""


class ServiceUnavailable(ApiError):
    """The server or its database is unavailable (HTTP 502/503/504), after the retries allowed."""


class ServerError(ApiError):
    """An internal error on the server (HTTP 500)."""


def error_class(status: int) -> type[ApiError]:
    """The ApiError subclass for an HTTP status."""
    if status == 401:
        return AuthenticationError
    if status == 403:
        return PermissionDenied
    if status == 429:
        return RateLimited
    if status in (502, 503, 504):
        return ServiceUnavailable
    if status >= 500:
        return ServerError
    return BadRequest
