"""One uvicorn HTTP server running as a task inside the caller's asyncio loop.

Several of these run side by side in one loop (one per webhook port). uvicorn's own process
machinery is not used:

* no signal handlers: the runtime owns SIGTERM/SIGINT and calls :meth:`HttpServer.stop`;
* no logging configuration (uvicorn's ``dictConfig`` would replace the process's logging) and no
  access log unless asked for;
* the listening socket is bound here, so that a port in use is reported as a
  :class:`~gateway.errors.ConfigError` naming the port, instead of uvicorn's ``sys.exit``;
* no lifespan, no websockets, no proxy-header rewriting.

``stop()`` is uvicorn's graceful shutdown: the listener closes at once (new connections are
refused), idle keep-alive connections close, requests in flight run to completion and get their
response, then the task ends. Requests still running after ``graceful_timeout`` seconds are
cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import Generator
from pathlib import Path
from typing import Any

import uvicorn

from gateway.errors import ConfigError

logger = logging.getLogger("triggergate.http")


class _EmbeddedServer(uvicorn.Server):
    """``uvicorn.Server`` that leaves signals alone and reports when it is listening."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.listening = asyncio.Event()

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        # The runtime installs SIGTERM/SIGINT handlers and calls HttpServer.stop().
        yield

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.listening.set()


class HttpServer:
    """Serves ``app`` (any ASGI app) on ``host:port`` until :meth:`stop`.

    ``port=0`` picks a free port; :attr:`port` is the bound one after :meth:`start`. TLS is on when
    ``ssl_certfile`` and ``ssl_keyfile`` are given (PEM files).
    """

    def __init__(
        self,
        app: Any,
        *,
        host: str,
        port: int,
        name: str = "http",
        ssl_certfile: Path | None = None,
        ssl_keyfile: Path | None = None,
        graceful_timeout: float | None = 30.0,
        access_log: bool = False,
        backlog: int = 2048,
    ) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.name = name
        self.ssl_certfile = ssl_certfile
        self.ssl_keyfile = ssl_keyfile
        self.graceful_timeout = graceful_timeout
        self.access_log = access_log
        self.backlog = backlog
        self._server: _EmbeddedServer | None = None
        self._task: asyncio.Task[None] | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        """The bound port (differs from the requested one only when that was 0)."""
        if self._port is None:
            raise RuntimeError(f"{self.name}: the server is not started")
        return self._port

    @property
    def running(self) -> bool:
        """The server task runs (it still may be finishing requests after ``stop`` began)."""
        return self._task is not None and not self._task.done()

    @property
    def accepting(self) -> bool:
        """New connections are accepted (False as soon as a graceful stop has closed the listener)."""
        server = self._server
        listeners = getattr(server, "servers", None) if server is not None else None
        return bool(listeners) and any(listener.is_serving() for listener in listeners or ())

    def _bind(self) -> socket.socket:
        # The socket is made with proto=IPPROTO_TCP as asyncio's own create_server does: asyncio
        # sets TCP_NODELAY on accepted connections only for such sockets, and without it Nagle's
        # algorithm meets delayed ACKs and every keep-alive response waits ~40 ms.
        sock: socket.socket | None = None
        try:
            family, kind, proto, _, address = socket.getaddrinfo(
                self.host, self.requested_port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP,
                flags=socket.AI_PASSIVE,
            )[0]
            sock = socket.socket(family, kind, proto)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(address)
            sock.listen(self.backlog)
        except OSError as exc:
            if sock is not None:
                sock.close()
            raise ConfigError(
                [f"{self.name}: cannot listen on {self.host}:{self.requested_port}: "
                 f"{exc.strerror or exc}; choose a free port (or stop the process that holds it)"]
            ) from exc
        sock.setblocking(False)
        return sock

    def _config(self) -> uvicorn.Config:
        timeout = None if self.graceful_timeout is None else max(1, round(self.graceful_timeout))
        return uvicorn.Config(
            self.app,
            log_config=None,
            access_log=self.access_log,
            lifespan="off",
            ws="none",
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=timeout,
            ssl_certfile=str(self.ssl_certfile) if self.ssl_certfile else None,
            ssl_keyfile=str(self.ssl_keyfile) if self.ssl_keyfile else None,
            backlog=self.backlog,
        )

    async def start(self) -> None:
        """Bind, start serving, return once connections are accepted. Raises ``ConfigError``."""
        if self._task is not None:
            raise RuntimeError(f"{self.name}: already started")
        try:
            config = self._config()
            config.load()  # builds the TLS context now, so that bad cert files fail start()
        except (OSError, ValueError) as exc:
            raise ConfigError([f"{self.name}: cannot set up the HTTP server: {exc}"]) from exc
        sock = self._bind()
        self._port = sock.getsockname()[1]
        server = _EmbeddedServer(config)
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name=f"{self.name} server")
        listening = asyncio.create_task(server.listening.wait())
        try:
            await asyncio.wait({self._task, listening}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            listening.cancel()
        if self._task.done():
            sock.close()
            failure = self._task.exception() if not self._task.cancelled() else None
            self._task = None
            message = f"{self.name}: the HTTP server stopped while starting: {failure}"
            raise ConfigError([message]) from failure
        self._task.add_done_callback(self._report_exit)
        scheme = "https" if self.ssl_certfile else "http"
        logger.info("%s listening on %s://%s:%d", self.name, scheme, self.host, self._port)

    def _report_exit(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            logger.error("%s: the HTTP server failed", self.name, exc_info=task.exception())

    async def stop(self) -> None:
        """Graceful shutdown: refuse new connections, finish requests in flight. Idempotent."""
        server, task = self._server, self._task
        if server is None or task is None:
            return
        server.should_exit = True
        try:
            await task
        except Exception:  # already logged by _report_exit
            pass
        finally:
            self._task = None
            self._server = None
        logger.info("%s stopped", self.name)
