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

T = TypeVar("T")


class AsyncClient:
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
        if not secret:
            raise ValueError("a partner secret is required")
        self.url = _core.endpoint(url)
        self.zone = _core.zone_of(zone)
        self.retry = retry or _core.RetryPolicy()
        self.auth = _core.check_auth(auth)
        self._secret = secret
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._http = httpx.AsyncClient(timeout=timeout, transport=transport, follow_redirects=False)

    def __repr__(self) -> str:
        return f"AsyncClient(url={self.url!r}, secret='***', zone={self.zone.key!r})"

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
