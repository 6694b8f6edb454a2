"""What the sync and async clients share: settings, request bodies, answers, retry decisions."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson

from voip24h.client.errors import ApiError, ProtocolError, Timeout, TransportError, error_class
from voip24h.client.models import DEFAULT_ZONE, CallRecord, DialResult, Page, StatsEntry, wire_date

PATH = "/api/v1/partner/voip24h"
DEFAULT_TIMEOUT = httpx.Timeout(30.0, connect=5.0)
AUTH_MODES = ("body", "bearer")
log = logging.getLogger("voip24h.client")


@dataclass(frozen=True)
class RetryPolicy:
    """When and how long to wait before sending a request again.

    A request is retried only when the server says "later": HTTP 429 (waiting what
    ``Retry-After`` says), 502, 503 and 504, and when the connection could not be
    made. Never on another 4xx: the same request would fail the same way; nor on a 503
    ``database_timeout``, a query too slow for the server's time limit. The wait
    is exponential (``backoff`` x 2^n, at most ``max_backoff``) with jitter, so many
    clients do not retry in step. A Retry-After longer than ``max_retry_after`` is
    not waited for: the error is raised at once.
    """

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 20.0
    max_retry_after: float = 120.0
    statuses: frozenset[int] = field(default=frozenset({429, 502, 503, 504}))
    # A 503 that says the query itself was too slow would be as slow again: not retried;
    # nor a makeDial whose call may have been placed (the phone may be ringing).
    never_codes: frozenset[str] = field(
        default=frozenset({"database_timeout", "dial_outcome_unknown"})
    )

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")

    def delay(self, attempt: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        if retry_after is not None:
            # Never earlier than the server asked; a little later, spread out.
            return retry_after + rng.uniform(0, min(1.0, self.backoff))
        cap = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return cap / 2 + rng.uniform(0, cap / 2)

    def should_retry(self, error: ApiError, attempt: int) -> bool:
        if attempt >= self.attempts or error.status not in self.statuses:
            return False
        if error.error_code in self.never_codes:
            return False
        return error.retry_after is None or error.retry_after <= self.max_retry_after


NO_RETRY = RetryPolicy(attempts=1)


def endpoint(url: str) -> str:
    """The endpoint URL from a server URL (``http://host:8024``) or the endpoint itself."""
    url = url.strip().rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise ValueError(f"the server URL must start with http:// or https://, got {url!r}")
    return url if url.endswith(PATH) else url + PATH


def zone_of(zone: str | ZoneInfo) -> ZoneInfo:
    return zone if isinstance(zone, ZoneInfo) else ZoneInfo(zone or DEFAULT_ZONE)


class Request:
    """One request ready to send: the JSON body and the headers (secret placed per ``auth``)."""

    __slots__ = ("content", "headers", "request_type")

    def __init__(self, request_type: str, data: Mapping[str, Any], secret: str, auth: str):
        body: dict[str, Any] = {"requestType": request_type}
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if auth == "bearer":
            headers["Authorization"] = f"Bearer {secret}"
        else:
            body["partnerSecret"] = secret
        body["data"] = dict(data)
        self.request_type = request_type
        self.content = orjson.dumps(body)
        self.headers = headers

    def __repr__(self) -> str:
        return f"Request({self.request_type!r})"


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Retry-After as seconds: a number of seconds or an HTTP date; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - (now or datetime.now(UTC))).total_seconds())


def interpret(response: httpx.Response) -> dict[str, Any]:
    """The success envelope of an answer; raise the fitting error otherwise."""
    status = response.status_code
    try:
        doc = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        doc = None
    retry_after = retry_after_seconds(response.headers.get("retry-after"))
    if not isinstance(doc, dict) or "respCode" not in doc:
        kind = response.headers.get("content-type", "no content type")
        if status in (429, 502, 503, 504):
            # A proxy or load balancer in front of the server says "later" in its own words.
            raise error_class(status)(
                f"HTTP {status} from {response.request.url} ({kind})",
                error_code=f"http_{status}",
                status=status,
                retry_after=retry_after,
            )
        raise ProtocolError(
            f"HTTP {status} from {response.request.url} is not a voip24h answer ({kind})",
            status=status,
        )
    if doc["respCode"] == 0 and status < 400:
        return doc
    raise error_class(status if status >= 400 else 400)(
        str(doc.get("respMsg") or "request failed"),
        error_code=str(doc.get("errorCode") or "unknown_error"),
        status=status,
        resp_code=doc["respCode"] if isinstance(doc["respCode"], int) else -1,
        retry_after=retry_after,
    )


def records_of(doc: Mapping[str, Any], zone: ZoneInfo) -> list[CallRecord]:
    data = doc.get("data")
    if not isinstance(data, list):
        raise ProtocolError("the answer's data is not a list of records", status=200)
    return [CallRecord.from_wire(item, zone) for item in data]


def page_of(doc: Mapping[str, Any], zone: ZoneInfo, previous: str | None) -> Page:
    cursor = doc.get("nextCursor") or None
    if cursor is not None and cursor == previous:
        raise ProtocolError("the server returned the same cursor twice", status=200)
    return Page(records_of(doc, zone), None if cursor is None else str(cursor))


def paged(data: Mapping[str, Any], page_size: int, cursor: str | None) -> dict[str, Any]:
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    out = {**data, "limit": page_size}
    if cursor is not None:
        out["cursor"] = cursor
    return out


def user_data(user: str | int, options: Mapping[str, Any]) -> dict[str, Any]:
    return {"user": str(user), **options}


def next_attempt(
    exc: Exception,
    request: Request,
    url: str,
    retry: RetryPolicy,
    attempt: int,
    rng: random.Random,
) -> tuple[float, str]:
    """(delay, reason) before trying ``request`` again after ``exc``; or raise what the
    caller should see. Shared by the sync and async retry loops."""
    if isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout):
        if attempt >= retry.attempts:
            raise TransportError(f"cannot connect to {url}: {exc}") from None
        return retry.delay(attempt, None, rng), f"cannot connect ({exc})"
    if isinstance(exc, httpx.TimeoutException):
        raise Timeout(f"{url} did not answer {request.request_type} in time") from None
    if isinstance(exc, httpx.TransportError):
        raise TransportError(f"{request.request_type} to {url} failed: {exc}") from None
    if isinstance(exc, ApiError) and retry.should_retry(exc, attempt):
        return retry.delay(attempt, exc.retry_after, rng), f"HTTP {exc.status} {exc.error_code}"
    raise exc


def log_retry(request: Request, reason: str, delay: float, attempt: int, attempts: int) -> None:
    log.warning(
        "%s: %s; retrying in %.1fs (attempt %d of %d)",
        request.request_type,
        reason,
        delay,
        attempt + 1,
        attempts,
    )


def check_auth(auth: str) -> str:
    if auth not in AUTH_MODES:
        raise ValueError(f"auth must be one of {AUTH_MODES}, not {auth!r}")
    return auth


def date_data(
    from_date: date | str, to_date: date | str, options: Mapping[str, Any]
) -> dict[str, Any]:
    return {"fromDate": wire_date(from_date), "toDate": wire_date(to_date), **options}


EXPORT_FORMATS = ("csv", "ndjson")


def stats_of(doc: Mapping[str, Any]) -> list[StatsEntry]:
    data = doc.get("data")
    if not isinstance(data, list):
        raise ProtocolError("the answer's data is not a list of stats entries", status=200)
    return [StatsEntry.from_wire(item) for item in data]


def link_of(doc: Mapping[str, Any]) -> str:
    data = doc.get("data")
    if not isinstance(data, Mapping) or not isinstance(data.get("link"), str):
        raise ProtocolError("the answer's data has no link", status=200)
    return str(data["link"])


def stats_data(
    from_date: date | str,
    to_date: date | str,
    user: str | int | None,
    group_by: str,
    options: Mapping[str, Any],
) -> dict[str, Any]:
    data = date_data(from_date, to_date, options)
    data["groupBy"] = group_by
    if user is not None:
        data["user"] = str(user)
    return data


def dial_data(user: str | int, phone_number: str, idempotency_key: str | None) -> dict[str, Any]:
    """makeDial's data; a fresh idempotency key when none is given, so that a retry of
    the same call (after a lost answer) never rings the phone twice."""
    key = idempotency_key or f"c2c-{random.getrandbits(96):024x}"
    return {"user": str(user), "phoneNumber": str(phone_number), "idempotencyKey": key}


def dial_of(doc: Mapping[str, Any]) -> DialResult:
    return DialResult.from_wire(doc.get("data"))


def export_data(data: Mapping[str, Any], format: str) -> dict[str, Any]:
    if format not in EXPORT_FORMATS:
        raise ValueError(f"format must be one of {EXPORT_FORMATS}, not {format!r}")
    return {**data, "format": format}


def is_stream(response: httpx.Response) -> bool:
    """True for a streamed export (CSV or NDJSON), False for a JSON envelope."""
    media = response.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return response.status_code == 200 and media in ("text/csv", "application/x-ndjson")


def ndjson_record(line: bytes, zone: ZoneInfo) -> CallRecord | None:
    line = line.strip()
    if not line:
        return None
    try:
        item = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise ProtocolError("an export line is not JSON", status=200) from None
    return CallRecord.from_wire(item, zone)


class ClientBase:
    """What both clients hold: the endpoint, the PBX zone, the retry policy, how the
    secret is sent (never shown), and how to wait between attempts."""

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        zone: str | ZoneInfo,
        retry: RetryPolicy | None,
        auth: str,
        sleep: Any,
        rng: random.Random | None,
    ):
        if not secret:
            raise ValueError("a partner secret is required")
        self.url = endpoint(url)
        self.zone = zone_of(zone)
        self.retry = retry or RetryPolicy()
        self.auth = check_auth(auth)
        self._secret = secret
        self._sleep = sleep
        self._rng = rng or random.Random()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(url={self.url!r}, secret='***', zone={self.zone.key!r})"


# The one declaration of what both clients offer: the blocking Client and the AsyncClient
# each implement every name here with the same parameters (tests/client/test_parity.py
# fails when one lacks what the other has). Request types map to their method.
REQUEST_METHODS: dict[str, str] = {
    "getUser": "get_user",
    "getDate": "get_date",
    "getUserDate": "get_user_date",
    "getCallData": "get_call_data",
    "recordingListen": "recording_listen",
    "recordingDownload": "recording_download",
    "getStats": "get_stats",
    "webhookAdd": "webhook_add",
    "webhookList": "webhook_list",
    "webhookRemove": "webhook_remove",
    "webhookTest": "webhook_test",
    "webhookRotate": "webhook_rotate",
    "getEvents": "get_events",
    "webhookRedeliver": "webhook_redeliver",
    "makeDial": "make_dial",
}
HELPER_METHODS: tuple[str, ...] = (
    "request", "records", "pages", "iter_records", "export_records", "export_to",
    "iter_events",
)  # fmt: skip


def add_data(
    url: str, event_types: list[str] | None, users: list[str | int] | None
) -> dict[str, Any]:
    data: dict[str, Any] = {"url": url}
    if event_types is not None:
        data["eventTypes"] = list(event_types)
    if users is not None:
        data["users"] = [str(user) for user in users]
    return data


def redeliver_data(
    endpoint_id: str, event_id: str | None, since: int | str | None
) -> dict[str, Any]:
    data: dict[str, Any] = {"endpointId": endpoint_id}
    if event_id is not None:
        data["eventId"] = event_id
    if since is not None:
        data["since"] = since
    return data


def data_of(doc: Mapping[str, Any]) -> Any:
    return doc.get("data")
