"""The webhook deliverer beside the server: started with the app, stopped with it.

Every server process runs the loop; only the one holding the lease delivers
(service/webhooks/deliverer.py), so several workers on one database deliver each
event once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from voip24h.server.state import State
from voip24h.service.webhooks.deliverer import Deliverer

log = logging.getLogger("voip24h.webhooks")
STOP_SECONDS = 20.0  # a round in progress may wait for a receiver's 15 s timeout


@asynccontextmanager
async def delivering(state: State) -> AsyncIterator[Deliverer | None]:
    """Run the deliverer while the app serves (unless deliver_in_serve is off)."""
    if not state.settings.deliver_in_serve:
        yield None
        return
    deliverer = Deliverer(state.settings, metrics=state.delivery)
    stop = asyncio.Event()
    task = asyncio.create_task(deliverer.run(stop), name="webhook-deliverer")
    try:
        yield deliverer
    finally:
        stop.set()
        try:
            await asyncio.wait_for(task, STOP_SECONDS)
        except TimeoutError:
            log.warning("the webhook deliverer did not stop in %.0f s", STOP_SECONDS)
        await asyncio.to_thread(deliverer.engine.dispose)
