"""A thin CloudFormation wrapper for `deploy`: boto3 waiters and paginators, this project's errors.

Every failure leaves here as a `ConfigError` or `OperationError` with one line, the NoEcho
parameter values masked by `redact`. Stack events are the one thing still polled by hand
(`ops/deploy/execute._follow`): a waiter cannot report the events it sees on the way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, WaiterError
from botocore.parsers import ResponseParserError

from omics_edp_cli.errors import OperationError
from omics_edp_cli.ops.deployment import describe_stack

NO_CHANGES = ("No updates are to be performed", "didn't contain changes", "does not contain changes")
CHANGE_SET_WAIT_SECONDS = 600
DELETE_WAIT_SECONDS = 1800
# ResponseParserError: a local AWS answering an API it lacks with an HTML 500 page.
AWS_ERRORS = (BotoCoreError, ClientError, ResponseParserError)


def _first_line(error: BaseException) -> str:
    if isinstance(error, ResponseParserError):
        return "the endpoint's answer is not an AWS response (does this AWS support the API?)"
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


class CloudFormation:
    """One stack's change sets and lifecycle, through the client it is given."""

    def __init__(self, client: Any, stack: str, *, redact: Callable[[str], str] = lambda s: s,
                 poll_seconds: float = 2.0):
        self.client = client
        self.stack = stack
        self.redact = redact
        self.poll_seconds = poll_seconds

    def _failed(self, action: str, error: BaseException) -> OperationError:
        return OperationError(f"{action} failed: {self.redact(_first_line(error))}")

    def _waiter_config(self, total_seconds: int) -> dict[str, float]:
        delay = max(self.poll_seconds, 0)
        return {"Delay": delay, "MaxAttempts": max(int(total_seconds / delay) if delay else 600, 1)}

    def describe(self) -> dict[str, Any] | None:
        """The stack as `DescribeStacks` gives it; None when it does not exist."""
        try:
            return dict(self.client.describe_stacks(StackName=self.stack)["Stacks"][0])
        except ClientError as e:
            if "does not exist" in str(e):
                return None
            raise self._failed(f"reading stack {self.stack}", e) from None
        except BotoCoreError as e:
            raise OperationError(f"reading stack {self.stack} failed: {_first_line(e)}") from None

    def outputs(self) -> dict[str, str]:
        return describe_stack(self.client, self.stack).outputs

    def create_change_set(self, name: str, **arguments: Any) -> bool:
        """Create it; False when CloudFormation says there is nothing to change."""
        try:
            self.client.create_change_set(StackName=self.stack, ChangeSetName=name, **arguments)
        except AWS_ERRORS as e:
            if any(marker in str(e) for marker in NO_CHANGES):
                return False
            raise self._failed("creating the change set", e) from None
        return True

    def wait_for_change_set(self, name: str) -> dict[str, Any]:
        """Wait (`change_set_create_complete`) until it is ready or failed; then read all its
        changes (`describe_change_set` pages). The description has `Status` and `Changes`."""
        waiter = self.client.get_waiter("change_set_create_complete")
        try:
            waiter.wait(StackName=self.stack, ChangeSetName=name,
                        WaiterConfig=self._waiter_config(CHANGE_SET_WAIT_SECONDS))
        except WaiterError as e:
            last: dict[str, Any] = dict(e.last_response or {})
            if last.get("Status") != "FAILED":  # timed out, or the call itself failed
                reason = last.get("Error", {}).get("Message") or _first_line(e)
                raise OperationError(f"change set {name} not ready: {self.redact(reason)}") from None
        described: dict[str, Any] = {}
        changes: list[dict[str, Any]] = []
        try:
            for page in self.client.get_paginator("describe_change_set").paginate(
                    StackName=self.stack, ChangeSetName=name):
                if not described:
                    described = dict(page)
                changes.extend(page.get("Changes", []))
        except AWS_ERRORS as e:
            raise self._failed(f"reading change set {name}", e) from None
        described["Changes"] = changes
        return described

    def no_changes(self, described: dict[str, Any]) -> bool:
        return any(marker in str(described.get("StatusReason", "")) for marker in NO_CHANGES)

    def delete_change_set(self, name: str) -> None:
        try:
            self.client.delete_change_set(StackName=self.stack, ChangeSetName=name)
        except AWS_ERRORS as e:
            raise self._failed(f"deleting change set {name}", e) from None

    def execute_change_set(self, name: str) -> None:
        try:
            self.client.execute_change_set(StackName=self.stack, ChangeSetName=name)
        except AWS_ERRORS as e:
            raise self._failed(f"executing change set {name}", e) from None

    def delete_and_wait(self) -> None:
        """Delete the stack and wait (`stack_delete_complete`) until it is gone."""
        try:
            self.client.delete_stack(StackName=self.stack)
            self.client.get_waiter("stack_delete_complete").wait(
                StackName=self.stack, WaiterConfig=self._waiter_config(DELETE_WAIT_SECONDS))
        except WaiterError as e:
            last: dict[str, Any] = dict(e.last_response or {})
            stacks: list[dict[str, Any]] = last.get("Stacks") or [{}]
            reason = str(stacks[0].get("StackStatusReason") or _first_line(e))
            raise OperationError(f"deleting stack {self.stack} failed: {self.redact(reason)}") from None
        except AWS_ERRORS as e:
            raise self._failed(f"deleting stack {self.stack}", e) from None

    def events_since(self, since: Any) -> list[dict[str, Any]]:
        """The stack's events at or after `since`, newest first; stops paging at older ones."""
        found: list[dict[str, Any]] = []
        try:
            for page in self.client.get_paginator("describe_stack_events").paginate(StackName=self.stack):
                recent = [e for e in page["StackEvents"] if e["Timestamp"] >= since]
                found.extend(recent)
                if len(recent) < len(page["StackEvents"]):
                    break  # older than this deploy: stop paging
        except AWS_ERRORS as e:
            raise OperationError(f"reading the events of {self.stack} failed: "
                                 f"{self.redact(_first_line(e))}") from None
        return found

    def protect(self) -> None:
        """Turn termination protection on; one line when the API refuses or lacks it."""
        try:
            self.client.update_termination_protection(StackName=self.stack, EnableTerminationProtection=True)
        except AWS_ERRORS as e:
            raise OperationError(f"turning termination protection on for {self.stack} failed: "
                                 f"{self.redact(_first_line(e))}") from None
