"""One delivery attempt: POST a signed event to a checked target, no redirects followed.

The request goes to the address the SSRF guard checked; the URL's host stays in the
Host header and, for https, in TLS's server name, so certificates are checked as usual.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from voip24h.service.webhooks.schedule import parse_retry_after
from voip24h.service.webhooks.targets import Target

TIMEOUT = httpx.Timeout(15.0, connect=5.0)


@dataclass(frozen=True)
class Outcome:
    """What one attempt gave: delivered, gone (410: disable the endpoint) or retry."""

    status: int | None
    delivered: bool
    gone: bool = False
    retry_after: float | None = None
    error: str = ""


def new_client() -> httpx.AsyncClient:
    """The deliverer's client: 5 s to connect, 15 s in all, redirects not followed."""
    return httpx.AsyncClient(timeout=TIMEOUT, follow_redirects=False, trust_env=False)


def _pinned_url(target: Target) -> httpx.URL:
    url = httpx.URL(target.url)
    return url.copy_with(host=target.address)


async def send(
    client: httpx.AsyncClient, target: Target, headers: dict[str, str], body: bytes
) -> Outcome:
    """POST ``body`` with ``headers`` (the signature headers) to ``target``."""
    request_headers = {
        **headers,
        "content-type": "application/json",
        "host": httpx.URL(target.url).netloc.decode("ascii"),
        "user-agent": "voip24h-webhooks/1",
    }
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    try:
        response = await client.post(
            _pinned_url(target), content=body, headers=request_headers, extensions=extensions
        )
    except httpx.TimeoutException:
        return Outcome(None, False, error="timed out")
    except httpx.HTTPError as exc:
        return Outcome(None, False, error=f"{type(exc).__name__}: {exc}"[:255])
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(status, True)
    if status == 410:
        return Outcome(status, False, gone=True, error="410 Gone: the receiver retired it")
    retry_after = None
    if status in (429, 503):
        retry_after = parse_retry_after(response.headers.get("retry-after"))
    return Outcome(status, False, retry_after=retry_after, error=f"HTTP {status}")
