"""A small local HTTP fake of the HealthOmics read APIs the processor and `reconcile` call.

moto has no HealthOmics. Point boto3 at this with `AWS_ENDPOINT_URL_OMICS`: it answers
`ListRuns` (`GET /run`, paginated by `maxResults` / `startingToken`, filtered by `status`),
`GetRun` (`GET /run/{id}`) and `ListRunTasks` (`GET /run/{id}/task`, paginated) from runs you
register. `fail()` makes the next calls of an operation fail (a status code and an AWS error
code, or an HTML page as a misconfigured proxy would send). Used by the tests, bench and `demo`.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qs, urlparse

from omics_edp_cli.local.httpserver import JsonHandler, LocalHTTPServer

_RUNS = re.compile(r"^/run/?$")
_RUN = re.compile(r"^/run/([^/]+)$")
_TASKS = re.compile(r"^/run/([^/]+)/task$")
# Fields of a run that ListRuns returns (GetRun returns them all).
LIST_FIELDS = ("arn", "id", "status", "workflowId", "name", "priority", "storageCapacity",
               "creationTime", "startTime", "stopTime", "storageType")
HTML_PAGE = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body>proxy</body></html>"


@dataclass
class Failure:
    """How the next `times` calls of one operation fail (`times=None`: until `heal()`)."""

    status: int = 500
    code: str = "InternalServerException"
    html: bool = False
    times: int | None = 1


class FakeOmics(LocalHTTPServer):
    """Register runs with `add_run`; `calls` records (operation, run id) per request."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0):
        self.runs: dict[str, dict[str, Any]] = {}
        self.tasks: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[tuple[str, str]] = []
        self.failures: dict[str, Failure] = {}
        self._lock = threading.Lock()
        super().__init__(host, port)

    def add_run(self, run: dict[str, Any], tasks: list[dict[str, Any]] | None = None) -> None:
        self.runs[str(run["id"])] = run
        self.tasks[str(run["id"])] = list(tasks or [])

    def fail(self, operation: str, status: int = 500, *, code: str = "InternalServerException",
             html: bool = False, times: int | None = 1) -> None:
        """Make the next `times` calls of `operation` ("GetRun", "ListRuns", "ListRunTasks") fail."""
        with self._lock:
            self.failures[operation] = Failure(status, code, html, times)

    def heal(self) -> None:
        with self._lock:
            self.failures.clear()

    def count(self, operation: str) -> int:
        return Counter(op for op, _ in self.calls)[operation]

    def _take_failure(self, operation: str, run_id: str) -> Failure | None:
        with self._lock:
            self.calls.append((operation, run_id))
            failure = self.failures.get(operation)
            if failure is None:
                return None
            if failure.times is not None:
                failure.times -= 1
                if failure.times <= 0:
                    del self.failures[operation]
            return failure

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                if _RUNS.match(url.path):
                    if failure := fake._take_failure("ListRuns", ""):
                        return self._fail(failure)
                    runs = [r for r in fake.runs.values()
                            if not query.get("status") or r.get("status") == query["status"][0]]
                    items = [{k: r[k] for k in LIST_FIELDS if k in r} for r in runs]
                    return self._page(items, query)
                if match := _RUN.match(url.path):
                    if failure := fake._take_failure("GetRun", match.group(1)):
                        return self._fail(failure)
                    run = fake.runs.get(match.group(1))
                    if run is None:
                        return self._error(404, "ResourceNotFoundException", "run not found")
                    return self.send_json(200, run)
                if match := _TASKS.match(url.path):
                    run_id = match.group(1)
                    if failure := fake._take_failure("ListRunTasks", run_id):
                        return self._fail(failure)
                    if run_id not in fake.runs:
                        return self._error(404, "ResourceNotFoundException", "run not found")
                    return self._page(fake.tasks[run_id], query)
                return self._error(404, "UnknownOperationException", self.path)

            def _page(self, items: list[dict[str, Any]], query: dict[str, list[str]]) -> None:
                size = int(query.get("maxResults", ["100"])[0])
                start = int(query.get("startingToken", ["0"])[0])
                page: dict[str, Any] = {"items": items[start : start + size]}
                if start + size < len(items):
                    page["nextToken"] = str(start + size)
                self.send_json(200, page)

            def _fail(self, failure: Failure) -> None:
                if failure.html:
                    return self.send_body(failure.status, HTML_PAGE.encode(), "text/html")
                return self._error(failure.status, failure.code, f"injected {failure.code}")

            def _error(self, status: int, code: str, message: str) -> None:
                self.send_body(status, json.dumps({"message": message}).encode(),
                               headers={"x-amzn-ErrorType": code})

        return Handler
