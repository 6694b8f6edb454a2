"""The synchronous partner client."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from typing import IO, Any, TypeVar
from zoneinfo import ZoneInfo

import httpx

from voip24h.client import _core
from voip24h.client.errors import ApiError, ProtocolError, TransportError
from voip24h.client.models import DEFAULT_ZONE, CallRecord, DialResult, Page, StatsEntry
from voip24h.client.webhooks import Event, EventPage, events_of

T = TypeVar("T")


class Client(_core.ClientBase):
    """A client of one voip24h server for one partner.

    ``url`` is the server (``https://cdr.example.com``) or the endpoint itself. The
    secret goes in the body (``auth="body"``, what every server accepts) or in an
    ``Authorization: Bearer`` header (``auth="bearer"``, on servers that accept it).
    It never appears in ``repr``, in exceptions or in log messages.

    Use it as a context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        url: str,
        secret: str,
        *,
        zone: str | ZoneInfo = DEFAULT_ZONE,
        timeout: float | httpx.Timeout = _core.DEFAULT_TIMEOUT,
        retry: _core.RetryPolicy | None = None,
        auth: str = "body",
        transport: httpx.BaseTransport | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ):
        super().__init__(url, secret, zone=zone, retry=retry, auth=auth, sleep=sleep, rng=rng)
        self._http = httpx.Client(timeout=timeout, transport=transport, follow_redirects=False)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    # -- one method per request type ------------------------------------------------------

    def get_user(self, user: str | int, **options: Any) -> list[CallRecord]:
        """``getUser``: every call of extension ``user``.

        ``options`` are further fields of ``data`` (filters, ``fields``) on servers
        that offer them.
        """
        return self.records("getUser", _core.user_data(user, options))

    def get_date(
        self, from_date: date | str, to_date: date | str, **options: Any
    ) -> list[CallRecord]:
        """``getDate``: every call in scope from ``from_date`` to ``to_date`` (whole days)."""
        return self.records("getDate", _core.date_data(from_date, to_date, options))

    def get_user_date(
        self, user: str | int, from_date: date | str, to_date: date | str, **options: Any
    ) -> list[CallRecord]:
        """``getUserDate``: extension ``user``'s calls from ``from_date`` to ``to_date``."""
        data = _core.user_data(user, _core.date_data(from_date, to_date, options))
        return self.records("getUserDate", data)

    def get_call_data(self, call_id: str, **options: Any) -> list[CallRecord]:
        """``getCallData``: the records of one call (servers with the extended API)."""
        return self.records("getCallData", {"callId": call_id, **options})

    def get_stats(
        self,
        from_date: date | str,
        to_date: date | str,
        *,
        user: str | int | None = None,
        group_by: str = "day",
        **options: Any,
    ) -> list[StatsEntry]:
        """``getStats``: per user and day (or hour) counts and talk time."""
        data = _core.stats_data(from_date, to_date, user, group_by, options)
        return _core.stats_of(self.request("getStats", data))

    def recording_listen(self, call_id: str) -> str:
        """``recordingListen``: a signed, expiring link that plays the call's recording."""
        return _core.link_of(self.request("recordingListen", {"callId": call_id}))

    def recording_download(self, call_id: str) -> str:
        """``recordingDownload``: a signed, expiring link that downloads the recording."""
        return _core.link_of(self.request("recordingDownload", {"callId": call_id}))

    # -- webhooks and the event feed (servers with push) ----------------------------------

    def webhook_add(
        self,
        url: str,
        *,
        event_types: list[str] | None = None,
        users: list[str | int] | None = None,
    ) -> dict[str, Any]:
        """``webhookAdd``: a new endpoint; its ``secret`` is in the answer, only this once."""
        data = _core.add_data(url, event_types, users)
        return _core.data_of(self.request("webhookAdd", data))

    def webhook_list(self) -> list[dict[str, Any]]:
        """``webhookList``: this partner's endpoints (without secrets)."""
        return list(_core.data_of(self.request("webhookList", {})))

    def webhook_remove(self, endpoint_id: str) -> dict[str, Any]:
        """``webhookRemove``: delete an endpoint."""
        return _core.data_of(self.request("webhookRemove", {"endpointId": endpoint_id}))

    def webhook_test(self, endpoint_id: str) -> dict[str, Any]:
        """``webhookTest``: send a signed ``webhook.test`` event; how the receiver answered."""
        return _core.data_of(self.request("webhookTest", {"endpointId": endpoint_id}))

    def webhook_rotate(self, endpoint_id: str, *, overlap_hours: int = 24) -> dict[str, Any]:
        """``webhookRotate``: a new secret; the old one also signs for ``overlap_hours``."""
        data = {"endpointId": endpoint_id, "overlapHours": overlap_hours}
        return _core.data_of(self.request("webhookRotate", data))

    def get_events(self, cursor: int = 0, limit: int = 100) -> EventPage:
        """``getEvents``: the events after ``cursor`` (a previous ``next_cursor``)."""
        return events_of(self.request("getEvents", {"cursor": cursor, "limit": limit}))

    def webhook_redeliver(
        self, endpoint_id: str, *, event_id: str | None = None, since: int | str | None = None
    ) -> dict[str, Any]:
        """``webhookRedeliver``: send one event (``event_id``) or every event after a
        sequence or since an ISO time (``since``) to the endpoint again."""
        data = _core.redeliver_data(endpoint_id, event_id, since)
        return _core.data_of(self.request("webhookRedeliver", data))

    def iter_events(self, cursor: int = 0, *, page_size: int = 100) -> Iterator[Event]:
        """Every event after ``cursor``, oldest first, page by page, until the newest
        (keep the last event's ``sequence`` to resume from it later)."""
        while True:
            page = self.get_events(cursor, page_size)
            yield from page.events
            if not page.events:
                return
            cursor = page.next_cursor
    def make_dial(
        self, user: str | int, phone_number: str, *, idempotency_key: str | None = None
    ) -> DialResult:
        """``makeDial``: ring ``user``'s phone, then dial ``phone_number`` (click-to-call).

        The answer comes once the PBX knows how the call went (up to the server's
        dial_timeout_seconds, 25 s by default): keep the client's timeout above it.
        A retry after a lost answer sends the same idempotency key, so it never rings twice.
        """
        data = _core.dial_data(user, phone_number, idempotency_key)
        return _core.dial_of(self.request("makeDial", data))

    # -- generic ------------------------------------------------------------------------

    def records(self, request_type: str, data: Mapping[str, Any]) -> list[CallRecord]:
        """Send any request type that answers records; the records, typed."""
        return _core.records_of(self.request(request_type, data), self.zone)

    def pages(
        self, request_type: str, data: Mapping[str, Any], *, page_size: int = 500
    ) -> Iterator[Page]:
        """Walk a paged request (``limit``/``cursor`` → ``nextCursor``) page by page."""
        cursor: str | None = None
        while True:
            doc = self.request(request_type, _core.paged(data, page_size, cursor))
            page = _core.page_of(doc, self.zone, cursor)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    def iter_records(
        self, request_type: str, data: Mapping[str, Any], *, page_size: int = 500
    ) -> Iterator[CallRecord]:
        """Every record of a paged request, fetching pages as they are needed."""
        for page in self.pages(request_type, data, page_size=page_size):
            yield from page.records

    def export_records(self, request_type: str, data: Mapping[str, Any]) -> Iterator[CallRecord]:
        """Every record of a request, streamed as NDJSON: constant memory, one request."""
        request = _core.Request(
            request_type, _core.export_data(data, "ndjson"), self._secret, self.auth
        )
        response = self._retrying(request, lambda: self._open_stream(request))
        try:
            for line in response.iter_lines():
                record = _core.ndjson_record(line.encode(), self.zone)
                if record is not None:
                    yield record
        except httpx.TransportError as exc:
            raise TransportError(f"the export stream broke: {exc}") from None
        finally:
            response.close()

    def export_to(
        self, target: IO[bytes], request_type: str, data: Mapping[str, Any], *, format: str = "csv"
    ) -> int:
        """Stream a request's records as CSV or NDJSON into ``target``; bytes written."""
        request = _core.Request(
            request_type, _core.export_data(data, format), self._secret, self.auth
        )
        response = self._retrying(request, lambda: self._open_stream(request))
        written = 0
        try:
            for chunk in response.iter_bytes():
                target.write(chunk)
                written += len(chunk)
        except httpx.TransportError as exc:
            raise TransportError(f"the export stream broke: {exc}") from None
        finally:
            response.close()
        return written

    def request(self, request_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Send one request (with retries) and return the success envelope as a dict."""
        request = _core.Request(request_type, data, self._secret, self.auth)
        return self._retrying(request, lambda: self._send(request))

    # -- transport ------------------------------------------------------------------------

    def _send(self, request: _core.Request) -> dict[str, Any]:
        response = self._http.post(self.url, content=request.content, headers=request.headers)
        return _core.interpret(response)

    def _open_stream(self, request: _core.Request) -> httpx.Response:
        built = self._http.build_request(
            "POST", self.url, content=request.content, headers=request.headers
        )
        response = self._http.send(built, stream=True)
        if _core.is_stream(response):
            return response
        try:
            response.read()
        finally:
            response.close()
        _core.interpret(response)  # raises the -1 answer's error
        raise ProtocolError("the server answered JSON, not the export stream", status=200)

    def _retrying(self, request: _core.Request, send: Callable[[], T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return send()
            except (httpx.TransportError, ApiError) as exc:
                delay, reason = _core.next_attempt(
                    exc, request, self.url, self.retry, attempt, self._rng
                )
            _core.log_retry(request, reason, delay, attempt, self.retry.attempts)
            self._sleep(delay)
