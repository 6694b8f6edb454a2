"""The asynchronous partner client (asyncio)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from datetime import date
from typing import IO, Any, TypeVar
from zoneinfo import ZoneInfo

import httpx

from voip24h.client import _core
from voip24h.client.errors import ApiError, ProtocolError, TransportError
from voip24h.client.models import DEFAULT_ZONE, CallRecord, DialResult, Page, StatsEntry
from voip24h.client.webhooks import Event, EventPage, events_of

T = TypeVar("T")


class AsyncClient(_core.ClientBase):
    """An asyncio client of one voip24h server for one partner; see :class:`Client`.

    ``url`` is the server (``https://cdr.example.com``) or the endpoint itself. The
    secret goes in the body (``auth="body"``, what every server accepts) or in an
    ``Authorization: Bearer`` header (``auth="bearer"``, on servers that accept it).
    It never appears in ``repr``, in exceptions or in log messages.

    Use it as an async context manager, or await :meth:`aclose`.
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
        transport: httpx.AsyncBaseTransport | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ):
        super().__init__(url, secret, zone=zone, retry=retry, auth=auth, sleep=sleep, rng=rng)
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=False)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    # -- one method per request type ------------------------------------------------------

    async def get_user(self, user: str | int, **options: Any) -> list[CallRecord]:
        """``getUser``: every call of extension ``user``.

        ``options`` are further fields of ``data`` (filters, ``fields``) on servers
        that offer them.
        """
        return await self.records("getUser", _core.user_data(user, options))

    async def get_date(
        self, from_date: date | str, to_date: date | str, **options: Any
    ) -> list[CallRecord]:
        """``getDate``: every call in scope from ``from_date`` to ``to_date`` (whole days)."""
        return await self.records("getDate", _core.date_data(from_date, to_date, options))

    async def get_user_date(
        self, user: str | int, from_date: date | str, to_date: date | str, **options: Any
    ) -> list[CallRecord]:
        """``getUserDate``: extension ``user``'s calls from ``from_date`` to ``to_date``."""
        data = _core.user_data(user, _core.date_data(from_date, to_date, options))
        return await self.records("getUserDate", data)

    async def get_call_data(self, call_id: str, **options: Any) -> list[CallRecord]:
        """``getCallData``: the records of one call (servers with the extended API)."""
        return await self.records("getCallData", {"callId": call_id, **options})

    async def get_stats(
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
        return _core.stats_of(await self.request("getStats", data))

    async def recording_listen(self, call_id: str) -> str:
        """``recordingListen``: a signed, expiring link that plays the call's recording."""
        return _core.link_of(await self.request("recordingListen", {"callId": call_id}))

    async def recording_download(self, call_id: str) -> str:
        """``recordingDownload``: a signed, expiring link that downloads the recording."""
        return _core.link_of(await self.request("recordingDownload", {"callId": call_id}))

    # -- webhooks and the event feed (servers with push) ----------------------------------

    async def webhook_add(
        self,
        url: str,
        *,
        event_types: list[str] | None = None,
        users: list[str | int] | None = None,
    ) -> dict[str, Any]:
        """``webhookAdd``: a new endpoint; its ``secret`` is in the answer, only this once."""
        return _core.data_of(
            await self.request("webhookAdd", _core.add_data(url, event_types, users))
        )

    async def webhook_list(self) -> list[dict[str, Any]]:
        """``webhookList``: this partner's endpoints (without secrets)."""
        return list(_core.data_of(await self.request("webhookList", {})))

    async def webhook_remove(self, endpoint_id: str) -> dict[str, Any]:
        """``webhookRemove``: delete an endpoint."""
        return _core.data_of(await self.request("webhookRemove", {"endpointId": endpoint_id}))

    async def webhook_test(self, endpoint_id: str) -> dict[str, Any]:
        """``webhookTest``: send a signed ``webhook.test`` event; how the receiver answered."""
        return _core.data_of(await self.request("webhookTest", {"endpointId": endpoint_id}))

    async def webhook_rotate(self, endpoint_id: str, *, overlap_hours: int = 24) -> dict[str, Any]:
        """``webhookRotate``: a new secret; the old one also signs for ``overlap_hours``."""
        data = {"endpointId": endpoint_id, "overlapHours": overlap_hours}
        return _core.data_of(await self.request("webhookRotate", data))

    async def get_events(self, cursor: int = 0, limit: int = 100) -> EventPage:
        """``getEvents``: the events after ``cursor`` (a previous ``next_cursor``)."""
        return events_of(await self.request("getEvents", {"cursor": cursor, "limit": limit}))

    async def webhook_redeliver(
        self, endpoint_id: str, *, event_id: str | None = None, since: int | str | None = None
    ) -> dict[str, Any]:
        """``webhookRedeliver``: send one event (``event_id``) or every event after a
        sequence or since an ISO time (``since``) to the endpoint again."""
        data = _core.redeliver_data(endpoint_id, event_id, since)
        return _core.data_of(await self.request("webhookRedeliver", data))

    async def iter_events(self, cursor: int = 0, *, page_size: int = 100) -> AsyncIterator[Event]:
        """Every event after ``cursor``, oldest first, page by page, until the newest
        (keep the last event's ``sequence`` to resume from it later)."""
        while True:
            page = await self.get_events(cursor, page_size)
            for event in page.events:
                yield event
            if not page.events:
                return
            cursor = page.next_cursor
    async def make_dial(
        self, user: str | int, phone_number: str, *, idempotency_key: str | None = None
    ) -> DialResult:
        """``makeDial``: ring ``user``'s phone, then dial ``phone_number`` (click-to-call).

        The answer comes once the PBX knows how the call went (up to the server's
        dial_timeout_seconds, 25 s by default): keep the client's timeout above it.
        A retry after a lost answer sends the same idempotency key, so it never rings twice.
        """
        data = _core.dial_data(user, phone_number, idempotency_key)
        return _core.dial_of(await self.request("makeDial", data))

    # -- generic ------------------------------------------------------------------------

    async def records(self, request_type: str, data: Mapping[str, Any]) -> list[CallRecord]:
        """Send any request type that answers records; the records, typed."""
        return _core.records_of(await self.request(request_type, data), self.zone)

    async def pages(
        self, request_type: str, data: Mapping[str, Any], *, page_size: int = 500
    ) -> AsyncIterator[Page]:
        """Walk a paged request (``limit``/``cursor`` → ``nextCursor``) page by page."""
        cursor: str | None = None
        while True:
            doc = await self.request(request_type, _core.paged(data, page_size, cursor))
            page = _core.page_of(doc, self.zone, cursor)
            yield page
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def iter_records(
        self, request_type: str, data: Mapping[str, Any], *, page_size: int = 500
    ) -> AsyncIterator[CallRecord]:
        """Every record of a paged request, fetching pages as they are needed."""
        async for page in self.pages(request_type, data, page_size=page_size):
            for record in page.records:
                yield record

    async def export_records(
        self, request_type: str, data: Mapping[str, Any]
    ) -> AsyncIterator[CallRecord]:
        """Every record of a request, streamed as NDJSON: constant memory, one request."""
        request = _core.Request(
            request_type, _core.export_data(data, "ndjson"), self._secret, self.auth
        )
        response = await self._retrying(request, lambda: self._open_stream(request))
        try:
            async for line in response.aiter_lines():
                record = _core.ndjson_record(line.encode(), self.zone)
                if record is not None:
                    yield record
        except httpx.TransportError as exc:
            raise TransportError(f"the export stream broke: {exc}") from None
        finally:
            await response.aclose()

    async def export_to(
        self, target: IO[bytes], request_type: str, data: Mapping[str, Any], *, format: str = "csv"
    ) -> int:
        """Stream a request's records as CSV or NDJSON into ``target``; bytes written."""
        request = _core.Request(
            request_type, _core.export_data(data, format), self._secret, self.auth
        )
        response = await self._retrying(request, lambda: self._open_stream(request))
        written = 0
        try:
            async for chunk in response.aiter_bytes():
                target.write(chunk)
                written += len(chunk)
        except httpx.TransportError as exc:
            raise TransportError(f"the export stream broke: {exc}") from None
        finally:
            await response.aclose()
        return written

    async def request(self, request_type: str, data: Mapping[str, Any]) -> dict[str, Any]:
        """Send one request (with retries) and return the success envelope as a dict."""
        request = _core.Request(request_type, data, self._secret, self.auth)
        return await self._retrying(request, lambda: self._send(request))

    # -- transport ------------------------------------------------------------------------

    async def _send(self, request: _core.Request) -> dict[str, Any]:
        response = await self._http.post(self.url, content=request.content, headers=request.headers)
        return _core.interpret(response)

    async def _open_stream(self, request: _core.Request) -> httpx.Response:
        built = self._http.build_request(
            "POST", self.url, content=request.content, headers=request.headers
        )
        response = await self._http.send(built, stream=True)
        if _core.is_stream(response):
            return response
        try:
            await response.aread()
        finally:
            await response.aclose()
        _core.interpret(response)  # raises the -1 answer's error
        raise ProtocolError("the server answered JSON, not the export stream", status=200)

    async def _retrying(self, request: _core.Request, send: Callable[[], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            attempt += 1
            try:
                return await send()
            except (httpx.TransportError, ApiError) as exc:
                delay, reason = _core.next_attempt(
                    exc, request, self.url, self.retry, attempt, self._rng
                )
            _core.log_retry(request, reason, delay, attempt, self.retry.attempts)
            await self._sleep(delay)
