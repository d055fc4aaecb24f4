"""A local stand-in for AWS and the NGS360 API: moto, a HealthOmics fake and a callback receiver.

Everything listens on 127.0.0.1: the fakes in this process, moto in a child process of its own
(`aws_process`), which ends with the sandbox. `clients` reaches all of it without touching the
process environment.
"""

from __future__ import annotations

import importlib.util
import os
import selectors
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ConfigError, OperationError
from omics_edp_cli.local.fake_omics import FakeOmics
from omics_edp_cli.local.receiver import CallbackReceiver

REGION = "us-east-1"
LOCAL_CREDENTIALS = ("omics-edp-local", "omics-edp-local")


def patch_moto_change_set_outputs() -> None:
    """Make moto compute a stack's Outputs when a change set is executed, as AWS does.

    moto 5.2 applies a change set's resources but never rebuilds the output map, so a stack
    created through a change set (the way `deploy` works) has no Outputs. Idempotent.
    """
    from moto.cloudformation import models

    change_set = models.ChangeSet
    if getattr(change_set.apply, "_omics_edp_fixed", False):
        return
    original = change_set.apply

    def apply(self: Any) -> None:
        original(self)
        stack = self.stack
        stack.output_map = type(stack.output_map)(stack.resource_map, self.template_dict, stack.stack_id)

    apply._omics_edp_fixed = True  # type: ignore[attr-defined]
    change_set.apply = apply  # type: ignore[method-assign]


def patch_moto_eventbridge_notification() -> None:
    """Make moto's GetBucketNotificationConfiguration report `EventBridgeConfiguration`.

    moto 5.2 stores the setting (and sends S3 events to EventBridge) but leaves it out of the
    answer, so `doctor` would always see notifications off. Idempotent.
    """
    from moto.s3 import responses

    method = responses.S3Response.get_bucket_notification
    if getattr(method, "_omics_edp_fixed", False):
        return

    def get_bucket_notification(self: Any) -> Any:
        answer = method(self)
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if getattr(config, "event_bridge", None) is None or not isinstance(answer, tuple):
            return answer
        status, headers, body = answer
        text = body.decode() if isinstance(body, bytes) else str(body)
        if "EventBridgeConfiguration" not in text:
            element = "<EventBridgeConfiguration/>"
            if text.rstrip().endswith("/>"):  # an empty <NotificationConfiguration .../>
                text = text.rstrip()[:-2] + f">{element}</NotificationConfiguration>"
            else:
                text = text.replace("</NotificationConfiguration>",
                                    f"{element}</NotificationConfiguration>")
        return status, headers, text

    get_bucket_notification._omics_edp_fixed = True  # type: ignore[attr-defined]
    responses.S3Response.get_bucket_notification = get_bucket_notification  # type: ignore[method-assign]


def patch_moto_scheduled_rules() -> None:
    """Keep moto's schedule-only rules (no event pattern) from matching every event, as in AWS.

    moto 5.2 treats a missing pattern as "match all", so the EDP flush schedule would take
    every S3 event, fail on its Lambda target, and (moto swallowing that error) stop the event
    before it reaches the ingest queue's rule. Idempotent.
    """
    from moto.events import models

    method = models.Rule.send_to_targets
    if getattr(method, "_omics_edp_fixed", False):
        return

    def send_to_targets(self: Any, original_event: Any, transform_input: bool = True) -> None:
        if self.scheduled_expression and not self.event_pattern._pattern:
            return None
        return method(self, original_event, transform_input)

    send_to_targets._omics_edp_fixed = True  # type: ignore[attr-defined]
    models.Rule.send_to_targets = send_to_targets  # type: ignore[method-assign]


def patch_moto_review_stacks() -> None:
    """Let a CREATE change set take over a stack left in REVIEW_IN_PROGRESS, as AWS does.

    moto 5.2 adds a second stack of the same name instead, and DescribeStacks keeps answering
    with the first one, stuck in review, so `deploy` after `deploy --no-execute` never sees
    its stack finish. Idempotent.
    """
    from moto.cloudformation import models

    method = models.CloudFormationBackend.create_change_set
    if getattr(method, "_omics_edp_fixed", False):
        return

    def create_change_set(self: Any, stack_name: str, *args: Any, **kwargs: Any) -> Any:
        change_set_type = kwargs.get("change_set_type", args[4] if len(args) > 4 else None)
        if change_set_type == "CREATE":
            for stack_id, stack in list(self.stacks.items()):
                if stack.name == stack_name and stack.status == "REVIEW_IN_PROGRESS":
                    del self.stacks[stack_id]
        return method(self, stack_name, *args, **kwargs)

    create_change_set._omics_edp_fixed = True  # type: ignore[attr-defined]
    models.CloudFormationBackend.create_change_set = create_change_set  # type: ignore[method-assign]


def patch_moto_dynamodb_atomic_writes() -> None:
    """Make moto's DynamoDB item writes atomic, as a conditional write is in AWS.

    moto 5.2 checks a `ConditionExpression` and then writes, with no lock between the two; a
    threaded moto server can let two conditional writes on one item both succeed, which the
    batcher's optimistic concurrency relies on never happening. One lock serialises the writes
    and reads of items (the local server only). Idempotent.
    """
    import threading

    from moto.dynamodb.models import DynamoDBBackend

    if getattr(DynamoDBBackend.put_item, "_omics_edp_fixed", False):
        return
    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "get_item"):
        original = getattr(DynamoDBBackend, name, None)
        if original is None:
            continue

        def locked(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> Any:
            with lock:
                return __original(self, *args, **kwargs)

        locked._omics_edp_fixed = True  # type: ignore[attr-defined]
        setattr(DynamoDBBackend, name, locked)


def patch_moto() -> None:
    """The local AWS's known gaps this project's commands meet (DESIGN §6)."""
    patch_moto_change_set_outputs()
    patch_moto_review_stacks()
    patch_moto_eventbridge_notification()
    patch_moto_scheduled_rules()
    patch_moto_dynamodb_atomic_writes()


class LocalAws:
    """moto's server on 127.0.0.1:`port`, in a child process (`aws_process`).

    `start` returns at once; `wait_ready` returns when it answers (it says so on its stdout), so
    the caller can do its own start-up work meanwhile, on the other core. `stop` closes the
    child's stdin, on which it exits at once.
    """

    READY_SECONDS = 120.0  # bound on the child's start-up (imports; slower on a loaded machine)

    def __init__(self, port: int):
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> LocalAws:
        # What the child says on stderr, read if it fails to start; closed by `stop`.
        self._log = tempfile.TemporaryFile()  # noqa: SIM115
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (package_root, env.get("PYTHONPATH"))))
        self._process = subprocess.Popen(
            [sys.executable, "-m", "omics_edp_cli.local.aws_process", str(self.port)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, env=env)
        return self

    def wait_ready(self) -> None:
        process = self._process
        assert process is not None and process.stdout is not None, "start() first"
        deadline = time.monotonic() + self.READY_SECONDS
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while (left := deadline - time.monotonic()) > 0 and selector.select(timeout=left):
                line = process.stdout.readline()
                if line.strip() == b"READY":
                    return
                if not line:  # it exited
                    break
        self._log.seek(0)
        said = self._log.read().decode(errors="replace").strip().splitlines()
        self.stop()
        why = said[-1] if said else f"no answer within {self.READY_SECONDS:g} s"
        raise OperationError(f"the local AWS (moto) did not start on 127.0.0.1:{self.port}: {why}")

    def stop(self) -> None:
        process = self._process
        if process is None:
            return
        self._process = None
        if process.stdin is not None:
            process.stdin.close()
        try:
            process.wait(timeout=10.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()
        self._log.close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class LocalSandbox:
    """Start with `with LocalSandbox(token) as box:`; `box.clients` talks to it.

    `while_starting(box)` runs while the local AWS starts in its process (its clients are ready
    to build, but answer only once `__enter__` returns): the caller's own start-up work, on the
    other core.
    """

    token: str
    port: int = 0
    while_starting: Callable[[LocalSandbox], None] | None = None
    omics: FakeOmics = field(init=False)
    receiver: CallbackReceiver = field(init=False)
    aws_url: str = field(init=False, default="")
    clients: ClientFactory = field(init=False)

    def __enter__(self) -> LocalSandbox:
        if importlib.util.find_spec("moto") is None:  # the `local` extra is not installed
            raise ConfigError("the local sandbox needs moto: pip install 'omics-edp-cli[local]'")
        port = self.port or _free_port()
        self._moto = LocalAws(port).start()
        try:
            self.aws_url = f"http://127.0.0.1:{port}"
            self.omics = FakeOmics().start()
            self.receiver = CallbackReceiver(token=self.token).start()
            self.clients = ClientFactory(
                region=REGION,
                endpoint_url=self.aws_url,
                service_endpoints={"omics": self.omics.url},
                credentials=LOCAL_CREDENTIALS,
            )
            if self.while_starting is not None:
                self.while_starting(self)
            self._moto.wait_ready()
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for server in (getattr(self, "receiver", None), getattr(self, "omics", None)):
            if server is not None:
                server.stop()
        self._moto.stop()
