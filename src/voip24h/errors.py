"""Errors a client can see, and the one -1 envelope they are rendered in.

Every failure leaves the server as ``{"respCode": -1, "respMsg": ..., "errorCode": ...}``
with an HTTP status that fits. ``errorCode`` values are stable: partners branch on them.
"""

from __future__ import annotations

from typing import ClassVar

import orjson


class ApiError(Exception):
    """A failure answered with the -1 envelope."""

    status: ClassVar[int] = 400
    error_code: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = "The request is not valid."
    # Seconds a client should wait before trying again (sent as Retry-After), if any.
    retry_after: ClassVar[int | None] = None

    def __init__(self, message: str | None = None, *, headers: dict[str, str] | None = None):
        self.message = message or self.default_message
        self.headers = headers or {}
        if self.retry_after is not None:
            self.headers.setdefault("Retry-After", str(self.retry_after))
        super().__init__(self.message)

    def envelope(self) -> dict[str, object]:
        return envelope(self.message, self.error_code)


def envelope(message: str, error_code: str) -> dict[str, object]:
    """The failure envelope, the single place its shape is defined."""
    return {"respCode": -1, "respMsg": message, "errorCode": error_code}


def envelope_bytes(message: str, error_code: str) -> bytes:
    return orjson.dumps(envelope(message, error_code))


class InvalidJson(ApiError):
    error_code = "invalid_json"
    default_message = "The request body is not valid JSON."


class InvalidRequest(ApiError):
    error_code = "invalid_request"
    default_message = "The request body must be a JSON object."


class MissingRequestType(ApiError):
    error_code = "missing_request_type"
    default_message = "requestType is required."


class InvalidRequestType(ApiError):
    error_code = "invalid_request_type"
    default_message = "requestType must be a string."


class UnknownRequestType(ApiError):
    error_code = "unknown_request_type"


class MissingData(ApiError):
    error_code = "missing_data"
    default_message = "data is required and must be a JSON object."


class InvalidData(ApiError):
    error_code = "invalid_data"
    default_message = "data must be a JSON object."


class MissingField(ApiError):
    error_code = "missing_field"


class InvalidField(ApiError):
    error_code = "invalid_field"


class UnknownField(ApiError):
    error_code = "unknown_field"


class InvalidUser(ApiError):
    error_code = "invalid_user"


class InvalidDate(ApiError):
    error_code = "invalid_date"


class DateRangeReversed(ApiError):
    error_code = "date_range_reversed"
    default_message = "fromDate must not be after toDate."


class DateRangeTooLarge(ApiError):
    error_code = "date_range_too_large"


class ResultTooLarge(ApiError):
    error_code = "result_too_large"


class RequestTooComplex(ApiError):
    error_code = "request_too_complex"


class ValueTooLong(ApiError):
    error_code = "value_too_long"


class MissingSecret(ApiError):
    status = 401
    error_code = "missing_secret"
    default_message = "partnerSecret is required."


class InvalidSecret(ApiError):
    status = 401
    error_code = "invalid_secret"
    # One message for unknown, wrong, revoked and expired secrets: no hint which.
    default_message = "partnerSecret is not valid."


class OpsUnauthorized(ApiError):
    status = 401
    error_code = "ops_unauthorized"
    default_message = "This endpoint needs Authorization: Bearer <ops token>."


class UserNotPermitted(ApiError):
    status = 403
    error_code = "user_not_permitted"
    default_message = "This user is not in the partner's scope."


class NotFound(ApiError):
    status = 404
    error_code = "not_found"
    default_message = "No such endpoint. Send POST /api/v1/partner/voip24h."


class MethodNotAllowed(ApiError):
    status = 405
    error_code = "method_not_allowed"
    default_message = "Use POST for this endpoint."


class PayloadTooLarge(ApiError):
    status = 413
    error_code = "payload_too_large"


class UnsupportedMediaType(ApiError):
    status = 415
    error_code = "unsupported_media_type"
    default_message = "Send the request body as JSON with Content-Type: application/json."


class RateLimited(ApiError):
    status = 429
    error_code = "rate_limited"
    default_message = "Too many requests; retry after the time in Retry-After."


class DatabaseUnavailable(ApiError):
    status = 503
    error_code = "database_unavailable"
    default_message = "The call database is unavailable; retry shortly."
    retry_after = 2  # the server reconnects by itself within about a second


class DatabaseTimeout(ApiError):
    status = 503
    error_code = "database_timeout"
    default_message = "The query took too long and was cancelled; narrow the request."
    retry_after = 5


class DatabaseBusy(ApiError):
    status = 503
    error_code = "database_busy"
    default_message = "Too many requests are waiting for the database; retry shortly."
    retry_after = 1


class ServerBusy(ApiError):
    status = 503
    error_code = "server_busy"
    default_message = "The server has too many connections open; retry shortly."
    retry_after = 1


class RequestTimeout(ApiError):
    status = 408
    error_code = "request_timeout"
    default_message = "The request was not received in time."


class RequestHeadTooLarge(ApiError):
    status = 431
    error_code = "header_too_large"
    default_message = "The request line and headers are over 16 KiB."


class InternalError(ApiError):
    status = 500
    error_code = "internal_error"
    default_message = "Internal error; it has been logged."


# --- extended API (getCallData, paging, recordings) ---
class InvalidCursor(ApiError):
    error_code = "invalid_cursor"
    default_message = "data.cursor is not a value this server returned as nextCursor."


class CallNotFound(ApiError):
    status = 404
    error_code = "call_not_found"
    default_message = "No call with this callId is visible to this partner."


class RecordingNotFound(ApiError):
    status = 404
    error_code = "recording_not_found"
    default_message = "This call has no recording."


class RecordingPathRefused(ApiError):
    status = 403
    error_code = "recording_path_refused"
    default_message = "The recording's file is not inside the recordings directory."


class LinkInvalid(ApiError):
    status = 403
    error_code = "link_invalid"
    default_message = "This recording link is not valid (altered or not issued by this server)."


class LinkExpired(ApiError):
    status = 410
    error_code = "link_expired"
    default_message = "This recording link has expired; ask for a new one."


# --- push: webhook endpoints (issue 20) ---


class WebhookNotFound(ApiError):
    status = 404
    error_code = "webhook_not_found"
    default_message = "No webhook endpoint with this id belongs to this partner."


class WebhookUrlRefused(ApiError):
    error_code = "webhook_url_refused"
    default_message = "This webhook URL cannot be delivered to."


class TooManyWebhooks(ApiError):
    error_code = "too_many_webhooks"
    default_message = "This partner has as many webhook endpoints as it may have."


class EventNotFound(ApiError):
    status = 404
    error_code = "event_not_found"
    default_message = "No event with this id is visible to this partner (it may be past retention)."
# --- the PBX link: makeDial (issue 21) ---
class InvalidPhoneNumber(ApiError):
    error_code = "invalid_phone_number"
    default_message = "data.phoneNumber may hold only digits and a leading +, at most 20."


class IdempotencyKeyReused(ApiError):
    error_code = "idempotency_key_reused"
    default_message = "This idempotency key was used in the last 60 s for another makeDial."


class PbxUnavailable(ApiError):
    status = 503
    error_code = "pbx_unavailable"
    default_message = "There is no link to the PBX now; retry shortly."
    retry_after = 5


class DialOutcomeUnknown(ApiError):
    status = 504
    error_code = "dial_outcome_unknown"
    default_message = (
        "The PBX did not say how the call went; check the user's phone before dialling again."
    )
