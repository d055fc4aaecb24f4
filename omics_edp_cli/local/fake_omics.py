"""A small local HTTP fake of the two HealthOmics read APIs the processor calls.

moto has no HealthOmics. Point boto3 at this with `AWS_ENDPOINT_URL_OMICS`: it answers
`GetRun` (`GET /run/{id}`) and `ListRunTasks` (`GET /run/{id}/task`, paginated by
`maxResults` / `startingToken`) from runs you register. Used by the tests and by `demo`.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

_RUN = re.compile(r"^/run/([^/]+)$")
_TASKS = re.compile(r"^/run/([^/]+)/task$")


class FakeOmics:
    """Register runs with `add_run`; `calls` records (operation, run id) per request."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.runs: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[tuple[str, str]] = []
        self._server = ThreadingHTTPServer((host, port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def add_run(self, run: dict[str, Any], tasks: list[dict[str, Any]] | None = None) -> None:
        self.runs[str(run["id"])] = run
        self.tasks[str(run["id"])] = list(tasks or [])

    def start(self) -> FakeOmics:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> FakeOmics:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:  # quiet
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                if match := _RUN.match(url.path):
                    fake.calls.append(("GetRun", match.group(1)))
                    run = fake.runs.get(match.group(1))
                    if run is None:
                        return self._error(404, "ResourceNotFoundException", "run not found")
                    return self._json(200, run)
                if match := _TASKS.match(url.path):
                    run_id = match.group(1)
                    fake.calls.append(("ListRunTasks", run_id))
                    if run_id not in fake.runs:
                        return self._error(404, "ResourceNotFoundException", "run not found")
                    query = parse_qs(url.query)
                    size = int(query.get("maxResults", ["100"])[0])
                    start = int(query.get("startingToken", ["0"])[0])
                    items = fake.tasks[run_id][start : start + size]
                    page: dict[str, Any] = {"items": items}
                    if start + size < len(fake.tasks[run_id]):
                        page["nextToken"] = str(start + size)
                    return self._json(200, page)
                return self._error(404, "UnknownOperationException", self.path)

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _error(self, status: int, code: str, message: str) -> None:
                self.send_response(status)
                data = json.dumps({"message": message}).encode()
                self.send_header("Content-Type", "application/json")
                self.send_header("x-amzn-ErrorType", code)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler
