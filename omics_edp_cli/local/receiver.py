"""A local NGS360-style callback receiver on 127.0.0.1, for `demo` and the tests.

It answers like the WES service's `POST /internal/callbacks/omics-state-change`: checks the
`X-Internal-API-Key` header (403 on a wrong key) and the payload contract (422), is idempotent
on `event_id` (`already_processed: true` on a repeat), serves the unauthenticated health probe,
and enforces the WES run state machine:

- a run it has not seen starts `QUEUED`;
- `QUEUED → COMPLETE` / `QUEUED → EXECUTOR_ERROR` are refused with 400 (the run never ran);
- the same state again is answered 200 "no state change";
- a run already terminal ignores later events (200).

Tests can script the next responses (status codes, `Retry-After`, delays) with `script()`.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

from omics_edp_cli.local.httpserver import JsonHandler, LocalHTTPServer
from omics_edp_cli.omics.config import CALLBACK_PATH, HEALTH_PATH
from omics_edp_cli.omics.delivery import AUTH_HEADER
from omics_edp_cli.omics.payload import contract_errors

# HealthOmics status → the WES state the receiver keeps.
WES_STATE = {
    "PENDING": "QUEUED", "QUEUED": "QUEUED", "STARTING": "INITIALIZING", "RUNNING": "RUNNING",
    "STOPPING": "RUNNING", "TERMINATING": "CANCELING", "COMPLETED": "COMPLETE",
    "FAILED": "EXECUTOR_ERROR", "CANCELLED": "CANCELED", "CANCELLED_RUNNING": "CANCELED",
    "CANCELLED_STARTING": "CANCELED",
}
TERMINAL = frozenset({"COMPLETE", "EXECUTOR_ERROR", "SYSTEM_ERROR", "CANCELED"})
# A run that never started cannot have finished.
NOT_STARTED = frozenset({"QUEUED", "INITIALIZING"})
RAN_TO_END = frozenset({"COMPLETE", "EXECUTOR_ERROR"})


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


class CallbackReceiver(LocalHTTPServer):
    """Start with `with CallbackReceiver(token="t") as r:`; POST to `r.url + CALLBACK_PATH`.

    `states` maps WES run id → WES state (set one to start a run elsewhere than QUEUED);
    `outputs` keeps the last `output_mapping` each run was given.
    """

    def __init__(self, token: str | None = None, host: str = "127.0.0.1", port: int = 0):
        self.token = token
        self.requests: list[Received] = []
        self.accepted: list[dict[str, Any]] = []  # payloads answered 200 and not repeats
        self.down = False  # when True, every callback gets 503 (the API "is down")
        self.states: dict[str, str] = {}
        self.outputs: dict[str, Any] = {}
        self._seen: set[str] = set()
        self._script: deque[Scripted] = deque()
        self._lock = threading.Lock()
        super().__init__(host, port)

    def script(self, *responses: int | Scripted) -> None:
        """Queue the next answers (ints are bare status codes); then normal behaviour resumes."""
        with self._lock:
            for r in responses:
                self._script.append(r if isinstance(r, Scripted) else Scripted(r))

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
            return self._transition(body)

    def _transition(self, body: dict[str, Any]) -> Scripted:
        wes_run_id, event_id = str(body["wes_run_id"]), str(body.get("event_id"))
        ok = {"success": True, "wes_run_id": wes_run_id}
        if event_id in self._seen:
            return Scripted(200, body={**ok, "message": f"Event {event_id} already processed",
                                       "already_processed": True})
        current = self.states.setdefault(wes_run_id, "QUEUED")
        new = WES_STATE.get(body["status"], current)
        if current in TERMINAL:
            message = f"Run is already {current}: event ignored"
        elif new == current:
            message = "no state change"
        elif current in NOT_STARTED and new in RAN_TO_END:
            return Scripted(400, body={"detail": f"Invalid state transition: {current} -> {new}"})
        else:
            self.states[wes_run_id] = new
            if body.get("output_mapping") is not None:
                self.outputs[wes_run_id] = body["output_mapping"]
            message = f"updated {current} -> {new}"
        self._seen.add(event_id)
        self.accepted.append(body)
        return Scripted(200, body={**ok, "message": message, "already_processed": False})

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(JsonHandler):
            def do_GET(self) -> None:
                if self.path.endswith(HEALTH_PATH) and not receiver.down:
                    return self._send(Scripted(200, body={"status": "healthy", "endpoint": "callbacks"}))
                return self._send(Scripted(503 if receiver.down else 404, body={"detail": "no"}))

            def do_POST(self) -> None:
                raw = self.read_body()
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
                self.send_json(answer.status, answer.body, headers=answer.headers)

        return Handler
