"""Take the rate limiter's slot at the moment a request leaves, not when its thread starts.

TikTok counts arrivals. Between "this thread may start" and "these bytes are on the wire"
``requests`` prepares the request, takes a pooled connection (or opens one: TCP and TLS
handshakes), and the thread may lose the GIL to a decoding thread or the CPU to another
process; on a loaded machine that adds tens of ms, enough to put 11 requests in TikTok's
0.95-s window although their starts were spaced. So the connection classes here ask the
gate of the calling thread for a slot right before writing the request line and headers
(after any connect), and re-stamp the slot with the time the write returned.

``gated_adapter`` gives a ``requests`` adapter whose pools use these connections; a thread
sets its gate with ``gate(...)`` around the call. Without a gate, a connection sends as
usual.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from controller.tiktok.rate_limiter import Slot


class NoSlotError(Exception):
    """No rate-limit slot before the deadline (not an OSError: urllib3 must not retry it)."""


_local = threading.local()


@contextmanager
def gate(acquire: Callable[[], Slot]) -> Iterator[None]:
    """Requests this thread sends inside the block first take a slot from ``acquire``."""
    previous = getattr(_local, "acquire", None)
    _local.acquire = acquire
    try:
        yield
    finally:
        _local.acquire = previous


class _GatedMixin:
    sock: Any
    connect: Callable[[], None]  # the urllib3 connection class's

    def endheaders(self, message_body: Any = None, *, encode_chunked: bool = False) -> None:
        acquire = getattr(_local, "acquire", None)
        if acquire is None:
            super().endheaders(message_body, encode_chunked=encode_chunked)  # type: ignore[misc]
            return
        if self.sock is None:
            self.connect()  # a handshake is not the request: connect before taking the slot
        try:
            slot = acquire()
        except TimeoutError as exc:
            raise NoSlotError(str(exc)) from None
        super().endheaders(message_body, encode_chunked=encode_chunked)  # type: ignore[misc]
        slot.sent()


class GatedHTTPConnection(_GatedMixin, HTTPConnection):
    pass


class GatedHTTPSConnection(_GatedMixin, HTTPSConnection):
    pass


class _GatedHTTPPool(HTTPConnectionPool):
    ConnectionCls = GatedHTTPConnection


class _GatedHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = GatedHTTPSConnection


def gated_adapter(pool_maxsize: int) -> HTTPAdapter:
    """A ``requests`` adapter (no retries of its own) whose connections honour ``gate``."""
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_maxsize, max_retries=0)
    adapter.poolmanager.pool_classes_by_scheme = {"http": _GatedHTTPPool, "https": _GatedHTTPSPool}
    return adapter
