"""A real HTTP origin for tests: a threaded server on 127.0.0.1 that answers each path with its
route (404 otherwise) and records every request, for URL inputs and playlist refusals."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Route = Callable[[BaseHTTPRequestHandler], None]


class Origin:
    """An HTTP/1.0 server on 127.0.0.1 answering each path with its route, recording requests."""

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        origin = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                origin.requests.append((self.path, self.headers.get("host", "")))
                route = origin.routes.get(self.path)
                if route is None:
                    self.send_error(404)
                    return
                # The client may stop reading, as it should past a cap.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    route(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def paths(self) -> list[str]:
        return [path for path, _host in self.requests]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
