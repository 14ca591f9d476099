"""A real webhook receiver for tests: an HTTP server on 127.0.0.1 that checks signatures.

It answers with the next status of `statuses` (then `default`), records every request, and
verifies each one with `standardwebhooks.Webhook(secret).verify(body, headers)` when it arrives.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from standardwebhooks import Webhook


@dataclass
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    verified: Any  # the verified payload, or None when verification failed
    error: str | None

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """Collects webhook requests; `secret` must be set before deliveries arrive to verify them."""

    def __init__(self, statuses: list[int] | None = None, default: int = 200) -> None:
        self.statuses = list(statuses or [])
        self.default = default
        self.secret: str | None = None
        self.requests: list[Received] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hooks"

    def events(self) -> list[str]:
        """The `type` of every request that verified, in arrival order."""
        return [r.verified["type"] for r in self.requests if r.verified is not None]

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> int:
        verified, error = None, None
        try:
            assert self.secret is not None, "set receiver.secret first"
            verified = Webhook(self.secret).verify(body, headers)
        except Exception as exc:
            error = f"{type(exc).__name__}: {exc}"
        with self._lock:
            self.requests.append(Received(path, headers, body, verified, error))
            return self.statuses.pop(0) if self.statuses else self.default

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                status = receiver._record(self.path, dict(self.headers.items()), body)
                self.send_response(status)
                if 300 <= status < 400:
                    self.send_header("location", "/followed")
                self.send_header("content-length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    @contextmanager
    def running(self) -> Iterator[Receiver]:
        """Serve until the block ends."""
        self._thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
