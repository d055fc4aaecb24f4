"""`omics-edp tail`: follow an event bus live through a temporary SQS queue and rule.

`EventTail` creates an encrypted queue, a queue policy letting only its rule send, and a rule
on the bus targeting the queue; `events()` long-polls the queue and yields each event as it
arrives; leaving the `with` block removes the rule's target, the rule and the queue, whatever
ended it (the last event, the time limit, an error, Ctrl-C).
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ConfigError, OperationError
from omics_edp_cli.ops.deployment import EdpStack, ProcessorStack, load_stack

log = logging.getLogger(__name__)
NAME_PREFIX = "omics-edp-tail-"
# Longest single receive: short enough that the time limit is kept to about a second.
POLL_SECONDS = 1


@dataclass
class TailTarget:
    bus: str
    pattern: dict[str, Any]
    description: str
    # Also subscribe the queue to this topic (the processor's alarm topic: refusals, dead letters).
    topic_arn: str | None = None


# What the processor stack's rule receives: HealthOmics run status changes on the default bus.
RUN_STATUS_PATTERN = {"source": ["aws.omics"], "detail-type": ["Run Status Change"]}


def resolve_target(clients: ClientFactory, *, stack: str | None, bus: str | None) -> TailTarget:
    """What to follow: an EDP stack's bus (its package-objects-ready events), a processor stack's
    input (HealthOmics run status events) and its refusal / dead-letter side (the alarm topic the
    refusal and DLQ alarms publish to), or any bus."""
    if bool(stack) == bool(bus):
        raise ConfigError("give one of --stack NAME (an EDP or processor stack) or --bus NAME")
    if stack:
        deployed = load_stack(clients, stack)
        if isinstance(deployed, ProcessorStack):
            topic = deployed.alarm_topic_arn
            side = f" and the refusal / dead-letter alarms ({topic.rsplit(':', 1)[-1]})" if topic else ""
            return TailTarget("default", RUN_STATUS_PATTERN,
                              f"HealthOmics run status events{side} (stack {stack})", topic)
        if not isinstance(deployed, EdpStack):
            raise ConfigError(f"stack {stack} is an omics-edp {deployed.kind} stack: tail follows an "
                              "EDP or a processor stack (or --bus NAME)")
        source = deployed.parameters.get("EventSource") or "com.quiltdata.edp"
        return TailTarget(deployed.event_bus_name, {"source": [source]},
                          f"{source} events on bus {deployed.event_bus_name} (stack {stack})")
    assert bus is not None
    # A rule needs a pattern; every event has an account, and this one matches them all.
    account = clients.client("sts").get_caller_identity()["Account"]
    return TailTarget(bus, {"account": [account]}, f"every event on bus {bus}")


@dataclass
class EventTail:
    """`with EventTail(clients, target) as tail: for event in tail.events(...): ...`"""

    clients: ClientFactory
    target: TailTarget
    name: str = field(default_factory=lambda: f"{NAME_PREFIX}{uuid.uuid4().hex[:12]}")
    queue_url: str | None = None
    rule_arn: str | None = None
    subscription_arn: str | None = None
    clock: Callable[[], float] = time.monotonic

    def __enter__(self) -> EventTail:
        try:
            self._create()
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self._remove()

    def _create(self) -> None:
        sqs, events = self.clients.client("sqs"), self.clients.client("events")
        try:
            events.describe_event_bus(Name=self.target.bus)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                raise ConfigError(f"event bus {self.target.bus} not found in this account/region") from None
            raise
        self.queue_url = sqs.create_queue(QueueName=self.name, Attributes={
            "SqsManagedSseEnabled": "true", "MessageRetentionPeriod": "3600"})["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.rule_arn = events.put_rule(
            Name=self.name, EventBusName=self.target.bus, EventPattern=json.dumps(self.target.pattern),
            State="ENABLED", Description="omics-edp tail (removed when the command ends)")["RuleArn"]
        senders = [("events.amazonaws.com", self.rule_arn)]
        if self.target.topic_arn:
            senders.append(("sns.amazonaws.com", self.target.topic_arn))
        sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Principal": {"Service": service},
                           "Action": "sqs:SendMessage", "Resource": queue_arn,
                           "Condition": {"ArnEquals": {"aws:SourceArn": source}}}
                          for service, source in senders],
        })})
        events.put_targets(Rule=self.name, EventBusName=self.target.bus,
                           Targets=[{"Id": "tail", "Arn": queue_arn}])
        if self.target.topic_arn:
            self.subscription_arn = self.clients.client("sns").subscribe(
                TopicArn=self.target.topic_arn, Protocol="sqs", Endpoint=queue_arn,
                ReturnSubscriptionArn=True)["SubscriptionArn"]

    def _remove(self) -> None:
        """Best effort, each step on its own: one failure must not leave the others behind."""
        events, sqs = self.clients.client("events"), self.clients.client("sqs")
        problems = []
        if self.subscription_arn is not None:
            try:
                self.clients.client("sns").unsubscribe(SubscriptionArn=self.subscription_arn)
            except (ClientError, BotoCoreError) as e:
                problems.append(str(e))
            self.subscription_arn = None
        if self.rule_arn is not None:
            for step in (lambda: events.remove_targets(Rule=self.name, EventBusName=self.target.bus,
                                                       Ids=["tail"]),
                         lambda: events.delete_rule(Name=self.name, EventBusName=self.target.bus)):
                try:
                    step()
                except (ClientError, BotoCoreError) as e:
                    problems.append(str(e))
            self.rule_arn = None
        if self.queue_url is not None:
            try:
                sqs.delete_queue(QueueUrl=self.queue_url)
            except (ClientError, BotoCoreError) as e:
                problems.append(str(e))
            self.queue_url = None
        if problems:
            raise OperationError(f"could not remove the temporary rule/queue/subscription {self.name}: "
                                 f"{problems[0]}")

    def events(
        self, *, max_events: int | None = None, timeout: float | None = None
    ) -> Iterator[dict[str, Any]]:
        """Events as they arrive, until `max_events` were seen or `timeout` seconds passed
        (checked between receives, which wait at most `POLL_SECONDS`)."""
        if self.queue_url is None:
            raise OperationError("the tail is not started")
        sqs = self.clients.client("sqs")
        deadline = None if timeout is None else self.clock() + timeout
        seen = 0
        while max_events is None or seen < max_events:
            if deadline is not None and self.clock() >= deadline:
                return
            response = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10,
                                           WaitTimeSeconds=POLL_SECONDS)
            for message in response.get("Messages", []):
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
                try:
                    event = json.loads(message["Body"])
                except ValueError:
                    event = {"body": message["Body"]}
                yield event
                seen += 1
                if max_events is not None and seen >= max_events:
                    return
