"""voip24h.client: a Python client of the voip24h partner API, sync and async.

    from voip24h.client import Client

    with Client("https://cdr.example.com", secret) as client:
        for record in client.get_user_date("137", "01/07/2018", "30/07/2018"):
            print(record.call_date, record.phone_number, record.call_status)

See docs/client.md for retries, paging, time zones and errors.
"""

from voip24h.client._core import DEFAULT_TIMEOUT, NO_RETRY, RetryPolicy
from voip24h.client.aio import AsyncClient
from voip24h.client.blocking import Client
from voip24h.client.errors import (
    ApiError,
    AuthenticationError,
    BadRequest,
    PermissionDenied,
    ProtocolError,
    RateLimited,
    ServerError,
    ServiceUnavailable,
    Timeout,
    TransportError,
    Voip24hError,
)
from voip24h.client.models import CallRecord, DialResult, Page, StatsEntry
from voip24h.client.webhooks import Event, EventPage, WebhookSignatureError, verify_webhook

__all__ = [
    "DEFAULT_TIMEOUT",
    "NO_RETRY",
    "ApiError",
    "AsyncClient",
    "AuthenticationError",
    "BadRequest",
    "CallRecord",
    "Client",
    "DialResult",
    "Event",
    "EventPage",
    "Page",
    "PermissionDenied",
    "ProtocolError",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailable",
    "StatsEntry",
    "Timeout",
    "TransportError",
    "Voip24hError",
    "WebhookSignatureError",
    "verify_webhook",
]
