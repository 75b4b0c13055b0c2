"""HTTP plumbing: a threaded HTTP/1.1 keep-alive server around ``SimulatorApp``.

One thread per connection (``ThreadingHTTPServer``), so the artificial latency of one request
never blocks another connection. Responses carry an exact Content-Length and are written with
TCP_NODELAY, so keep-alive clients are not slowed down by Nagle/delayed-ACK stalls.
No Host-header check: the same API answers as "production" or "sandbox" under any host name.
"""

from __future__ import annotations

import contextlib
import io
import os
import socket
import struct
import sys
import threading
from collections.abc import Iterable, Mapping
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from .app import SimulatorApp
from .faults import FaultPlan
from .metrics import DEFAULT_METRICS
from .report import served_rows
from .world import World

SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; Python does not export it
_TIMESPEC = struct.Struct("qq")


class _StampedSocket(io.RawIOBase):
    """Reads a socket with ``recvmsg`` and keeps the kernel's receive time of the last bytes.

    TikTok stamps a request when it reaches its gateway; a Python server stamping it once a
    thread got the GIL to parse it would add tens of ms of jitter under load (another
    thread rendering a 1,000-row page), and its rate window would see bursts that never
    reached it. The kernel's SO_TIMESTAMPNS is when the bytes arrived.
    """

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self.stamp: float | None = None  # wall-clock seconds

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:  # type: ignore[override]
        size, ancillary, _, _ = self._sock.recvmsg_into([buffer], 64)
        for level, kind, data in ancillary:
            if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                seconds, nanoseconds = _TIMESPEC.unpack(data[:16])
                self.stamp = seconds + nanoseconds / 1e9
        return size


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "TikTokSimulator/1.3"
    timeout = 300  # idle keep-alive connections are dropped after this many seconds
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._stamped: _StampedSocket | None = None
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        except OSError:  # not Linux: arrivals are stamped when a thread handles them
            return
        self._stamped = _StampedSocket(self.connection)
        self.rfile = io.BufferedReader(self._stamped)

    def version_string(self) -> str:
        return self.server_version

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the stats endpoint is the log."""

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        path, _, query = self.path.partition("?")
        arrived = self._stamped.stamp if self._stamped else None
        reply = self.server.app.handle(
            self.command, path, query, self.headers, body, arrived=arrived
        )
        if reply.action == "reset":
            self._abort()
            return
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if reply.action == "truncate":
            self.wfile.write(reply.body[: len(reply.body) // 2])
            self.close_connection = True  # the server closes the socket: the body stays short
            return
        self.wfile.write(reply.body)

    def _abort(self) -> None:
        """Close with a TCP reset and no response at all.

        SO_LINGER 0 makes close() send RST; closing the descriptor right here (``detach``)
        skips the orderly FIN that the server's own ``shutdown_request`` would send first.
        """
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        os.close(self.connection.detach())
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False
    request_queue_size = 256  # benchmark opens dozens of connections at once

    def __init__(self, address: tuple[str, int], app: SimulatorApp) -> None:
        self.app = app
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request) -> None:  # type: ignore[override]
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request, client_address) -> None:  # type: ignore[override]
        """A client that hung up before its answer (a timeout, an abandoned run) is normal
        traffic, not a server fault: no traceback on stderr for it."""
        if isinstance(sys.exc_info()[1], ConnectionError):  # BrokenPipe, ConnectionReset...
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        """Drop idle keep-alive connections so a stopped server really stops answering."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class SimulatorServer:
    """The TikTok Marketing API v1.3 simulator on a background thread.

    Usage::

        with SimulatorServer(World(seed=1)) as sim:
            requests.get(sim.base_url + "report/integrated/get/", params=...,
                         headers={"Access-Token": "sim-token"})

    ``tokens`` maps token -> advertiser ids it may read (or ``"*"`` for all); ``None`` means the
    single token ``"sim-token"`` granted every advertiser. Further keyword settings:
    ``rate_limit``, ``count_rejected``, ``latency_per_row``, ``advertiser_qps``,
    ``throttle_threshold``, ``app_id`` (see ``app.Settings``).
    """

    def __init__(
        self,
        world: World,
        tokens: Mapping[str, Iterable[str] | str] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        qps: int = 10,
        qpm: int = 600,
        latency: float = 0.0,
        **settings: Any,
    ) -> None:
        self.world = world
        self.host = host
        self.app = SimulatorApp(world, tokens, qps=qps, qpm=qpm, latency=latency, **settings)
        self._requested_port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Self:
        """Bind and serve on a daemon thread; returns self (idempotent)."""
        if self._server is None:
            self._server = _Server((self.host, self._requested_port), self.app)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name=f"tiktok-simulator-{self.port}",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._server = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator is not started")
        return self._server.server_address[1]

    @property
    def url(self) -> str:
        """Root URL (control endpoints live under ``/_sim/``)."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What a client uses instead of ``https://business-api.tiktok.com/open_api/v1.3/``."""
        return f"{self.url}/open_api/v1.3/"

    # ------------------------------------------------------------------ control
    def stats(self, include_log: bool = True) -> dict[str, Any]:
        return self.app.stats.snapshot(include_log)

    def reset(self) -> None:
        """Initial configuration again; no faults, empty rate windows, fresh stats."""
        self.app.reset()

    def set_faults(self, plan: dict[str, Any] | FaultPlan | None) -> dict[str, Any]:
        return self.app.set_faults(plan)

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self.app.configure(**changes)

    def hold(self, match: dict[str, str], count: int = 1) -> dict[str, Any]:
        """Make the first ``count`` report requests matching ``match`` wait (``holds.py``)."""
        return self.app.holds.set_plan({"match": match, "count": count})

    def release(self) -> dict[str, Any]:
        return self.app.holds.release()

    def holds(self) -> dict[str, Any]:
        return self.app.holds.state()

    def revoke_token(self, token: str) -> None:
        self.configure(revoke_token=token)

    def expire_token(self, token: str) -> None:
        self.configure(expire_token=token)

    def remove_permission(self, advertiser_id: str, token: str | None = None) -> None:
        self.configure(remove_permission={"advertiser_id": advertiser_id, "token": token})

    def grant_permission(self, advertiser_id: str, token: str | None = None) -> None:
        self.configure(grant_permission={"advertiser_id": advertiser_id, "token": token})

    def truth(
        self,
        advertiser_id: str,
        data_level: str,
        start_date: date | str,
        end_date: date | str,
        metrics: Iterable[str] = DEFAULT_METRICS,
        include_deleted: bool = True,
        **kwargs: Any,
    ) -> list[dict[str, dict[str, str]]]:
        """``report.served_rows``, capped by this server's ``throttle_threshold`` at ad level."""
        kwargs.setdefault("max_ads", self.app.settings.throttle_threshold)
        return served_rows(
            self.world,
            advertiser_id,
            data_level,
            start_date,
            end_date,
            metrics,
            include_deleted,
            **kwargs,
        )
