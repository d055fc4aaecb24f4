"""A local NGS360-style callback receiver on 127.0.0.1, for `demo` and the tests.

It answers like the WES service's `POST /internal/callbacks/omics-state-change`: checks the
`X-Internal-API-Key` header and the payload contract, is idempotent on `event_id`
(`already_processed: true` on a repeat), and serves the unauthenticated health probe.
Tests can script the next responses (status codes, `Retry-After`, delays) with `script()`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from omics_edp_cli.omics.config import CALLBACK_PATH, HEALTH_PATH
from omics_edp_cli.omics.delivery import AUTH_HEADER
from omics_edp_cli.omics.payload import contract_errors


@dataclass(frozen=True)
class Scripted:
    """One canned answer: status, extra headers, JSON body, and a delay before answering."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    delay: float = 0.0


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: Any
    at: float


class CallbackReceiver:
    """Start with `with CallbackReceiver(token="t") as r:`; POST to `r.url + CALLBACK_PATH`."""

    def __init__(self, token: str | None = None, host: str = "127.0.0.1", port: int = 0):
        self.token = token
        self.requests: list[Received] = []
        self.accepted: list[dict[str, Any]] = []  # payloads answered 200 and not repeats
        self.down = False  # when True, every callback gets 503 (the API "is down")
        self._seen: set[str] = set()
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def script(self, *responses: int | Scripted) -> None:
        """Queue the next answers (ints are bare status codes); then normal behaviour resumes."""
        with self._lock:
            for r in responses:
                self._script.append(r if isinstance(r, Scripted) else Scripted(r))

    def start(self) -> CallbackReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> CallbackReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def answer(self, headers: dict[str, str], body: Any) -> Scripted:
        """What the real service would answer to this request."""
        with self._lock:
            if self._script:
                return self._script.popleft()
        if self.down:
            return Scripted(503, body={"detail": "service unavailable"})
        if self.token is not None:
            given = headers.get(AUTH_HEADER.lower())
            if given is None:
                return Scripted(422, body={"detail": f"{AUTH_HEADER} header missing"})
            if given != self.token:
                return Scripted(403, body={"detail": "invalid internal API key"})
        errors = contract_errors(body)
        if errors:
            return Scripted(422, body={"detail": errors})
        with self._lock:
            repeat = body.get("event_id") in self._seen
            if body.get("event_id"):
                self._seen.add(body["event_id"])
            if not repeat:
                self.accepted.append(body)
        message = f"Event {body.get('event_id')} already processed" if repeat else "updated"
        return Scripted(200, body={
            "success": True, "wes_run_id": body["wes_run_id"], "message": message,
            "already_processed": repeat,
        })

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Without it every answer on a kept-alive connection stalls ~40 ms (Nagle + delayed ACK).
            disable_nagle_algorithm = True

            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                if self.path.endswith(HEALTH_PATH) and not receiver.down:
                    return self._send(Scripted(200, body={"status": "healthy", "endpoint": "callbacks"}))
                return self._send(Scripted(503 if receiver.down else 404, body={"detail": "no"}))

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw)
                except ValueError:
                    body = raw.decode(errors="replace")
                headers = {k.lower(): v for k, v in self.headers.items()}
                receiver.requests.append(Received(self.path, headers, body, time.monotonic()))
                if not self.path.endswith(CALLBACK_PATH):
                    return self._send(Scripted(404, body={"detail": "Not Found"}))
                self._send(receiver.answer(headers, body))

            def _send(self, answer: Scripted) -> None:
                if answer.delay:
                    time.sleep(answer.delay)
                data = json.dumps(answer.body if answer.body is not None else {}).encode()
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler
