"""`omics-edp doctor`: check a deployed stack end to end, one ✓/✗ line and a fix per check."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from functools import partial
from typing import Any

import requests
from botocore.exceptions import BotoCoreError, ClientError

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ConfigError
from omics_edp_cli.omics.config import DEFAULT_S3_PREFIX, HEALTH_PATH
from omics_edp_cli.omics.reconcile_handler import last_result_key
from omics_edp_cli.ops.deploy.parameters import Template
from omics_edp_cli.ops.deployment import (
    DeployedStack,
    EdpStack,
    PackagerStack,
    ProcessorStack,
    StackInfo,
    load_stack,
)

HEALTHY_STATUSES = {"CREATE_COMPLETE", "UPDATE_COMPLETE", "IMPORT_COMPLETE"}
AWS_ERRORS = (BotoCoreError, ClientError)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""

    def row(self) -> dict[str, Any]:
        return {"check": self.name, "ok": self.ok, "detail": self.detail, "fix": self.fix}


HttpGet = Callable[..., Any]


class Doctor:
    """Runs the checks for one stack; each check turns AWS errors into a failed line."""

    def __init__(self, clients: ClientFactory, stack_name: str, *, errors_window: timedelta =
                 timedelta(hours=24), http_get: HttpGet = requests.get):
        self.clients = clients
        self.stack_name = stack_name
        self.window = errors_window
        self.http_get = http_get

    def run(self) -> list[Check]:
        """`ConfigError` for a stack that does not exist or was not deployed by this tool."""
        stack = load_stack(self.clients, self.stack_name)
        checks = [self._stack_status(stack)]
        if isinstance(stack, EdpStack):
            checks += self._edp(stack)
        elif isinstance(stack, PackagerStack):
            checks += packager_checks(self, stack.info)
        elif isinstance(stack, ProcessorStack):
            checks += self._processor(stack)
        return checks

    # -- the two stacks ---------------------------------------------------------------------

    def _processor(self, stack: ProcessorStack) -> list[Check]:
        expected = {
            "API_SERVER": stack.info.parameters.get("ApiServer"),
            "DATA_LAKE_BUCKET": stack.info.parameters.get("DataLakeBucket"),
            "S3_PREFIX": stack.info.parameters.get("BucketPrefix"),
        }
        return [
            self._guard("function configured", lambda: self._function(stack.function_name, expected)),
            self._guard("rule enabled and targeting the function",
                        lambda: self._rule_targets(stack.function_arn, "function")),
            self._guard("dead-letter queue empty",
                        lambda: self._queue_empty(stack.dead_letter_queue_url)),
            self._guard("no recent Lambda errors", lambda: self._lambda_errors([stack.function_name])),
            self._guard("callback endpoint reachable", lambda: self._health(stack.api_server)),
            self._guard("data-lake bucket encrypted",
                        lambda: self._bucket_encrypted(stack.data_lake_bucket)),
            self._guard("reconcile schedule enabled", lambda: self._reconcile_schedule(stack.info)),
            self._guard("last reconcile in sync", lambda: self._last_reconcile(stack.info)),
            *self._security(stack.info, {"AlarmTopicArn": ["cloudwatch.amazonaws.com"]},
                            queues=["DeadLetterQueueUrl"]),
            self._guard("outputs.json read scope", lambda: self._outputs_read_scope(stack.info)),
        ]

    def _edp(self, stack: EdpStack) -> list[Check]:
        def expected() -> dict[str, str | None]:
            return {"STATE_TABLE": stack.state_table_name, "EVENT_BUS_NAME": stack.event_bus_name}

        return [
            self._guard("ingest function configured",
                        lambda: self._function(stack.ingest_function_name, expected())),
            self._guard("flush function configured",
                        lambda: self._function(stack.flush_function_name, expected())),
            self._guard("bucket sends events to EventBridge",
                        lambda: self._buckets_eventbridge(stack.bucket_names)),
            self._guard("S3 rule enabled and targeting the ingest queue",
                        lambda: self._rule_targets(self._queue_arn(stack.ingest_queue_url), "ingest queue")),
            self._guard("ingest queue wired to the ingest function",
                        lambda: self._event_source(stack.ingest_function_name,
                                                   self._queue_arn(stack.ingest_queue_url))),
            self._guard("ingest dead-letter queue empty",
                        lambda: self._queue_empty(stack.ingest_dead_letter_queue_url)),
            self._guard("flush dead-letter queue empty",
                        lambda: self._queue_empty(stack.flush_dead_letter_queue_url)),
            self._guard("no recent Lambda errors",
                        lambda: self._lambda_errors([stack.ingest_function_name, stack.flush_function_name])),
            *self._security(stack.info, {"TopicArn": ["events.amazonaws.com"],
                                         "AlarmTopicArn": ["cloudwatch.amazonaws.com"]},
                            queues=["IngestQueueUrl", "IngestDeadLetterQueueUrl", "FlushDeadLetterQueueUrl"]),
            self._guard("state table encrypted", lambda: self._table_encrypted(stack.state_table_name)),
        ]

    # -- individual checks ------------------------------------------------------------------

    def _guard(self, name: str, check: Callable[[], tuple[bool, str, str]]) -> Check:
        try:
            ok, detail, fix = check()
        except AWS_ERRORS as e:
            return Check(name, False, f"could not check: {e}", "check permissions and --region")
        except ConfigError as e:  # an output the stack lacks: named, with where it comes from
            return Check(name, False, str(e), f"deploy {self.stack_name} with omics-edp deploy")
        return Check(name, ok, detail, "" if ok else fix)

    def _stack_status(self, stack: DeployedStack) -> Check:
        ok = stack.status in HEALTHY_STATUSES
        fix = "" if ok else (
            f"inspect the failed events (aws cloudformation describe-stack-events --stack-name "
            f"{stack.name}) and run omics-edp deploy again"
        )
        return Check("stack status", ok, f"{stack.status} ({stack.kind} stack)", fix)

    def _function(self, name: str, expected: dict[str, str | None]) -> tuple[bool, str, str]:
        config = self.clients.client("lambda").get_function_configuration(FunctionName=name)
        env = (config.get("Environment") or {}).get("Variables") or {}
        wrong = [k for k, v in expected.items() if v is not None and env.get(k) != v]
        if wrong:
            return False, f"{name}: {', '.join(wrong)} differ from the stack", "run omics-edp deploy again"
        return True, f"{name} ({config.get('Runtime')}, {config.get('State', 'Active')})", ""

    def _rule_targets(self, target_arn: str, what: str) -> tuple[bool, str, str]:
        events = self.clients.client("events")
        names = events.list_rule_names_by_target(TargetArn=target_arn).get("RuleNames", [])
        if not names:
            return False, f"no EventBridge rule targets the {what}", "run omics-edp deploy again"
        disabled = [n for n in names if events.describe_rule(Name=n).get("State") != "ENABLED"]
        if disabled:
            return (False, f"rule {disabled[0]} is disabled",
                    f"aws events enable-rule --name {disabled[0]}")
        return True, f"rule {names[0]} enabled", ""

    def _queue_arn(self, url: str) -> str:
        attrs = self.clients.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])
        return str(attrs["Attributes"]["QueueArn"])

    def _queue_empty(self, url: str) -> tuple[bool, str, str]:
        attrs = self.clients.client("sqs").get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        depth = int(attrs.get("ApproximateNumberOfMessages", 0)) + int(
            attrs.get("ApproximateNumberOfMessagesNotVisible", 0))
        name = url.rsplit("/", 1)[-1]
        if depth:
            return (False, f"{depth} message(s) in {name}",
                    f"omics-edp dlq list --stack {self.stack_name}, then dlq redrive after the fix")
        return True, f"{name} is empty", ""

    def _lambda_errors(self, functions: list[str]) -> tuple[bool, str, str]:
        cloudwatch = self.clients.client("cloudwatch")
        end = datetime.now(UTC)
        total = 0
        for name in functions:
            stats = cloudwatch.get_metric_statistics(
                Namespace="AWS/Lambda", MetricName="Errors",
                Dimensions=[{"Name": "FunctionName", "Value": name}],
                StartTime=end - self.window, EndTime=end, Period=3600, Statistics=["Sum"],
            )
            total += int(sum(p.get("Sum", 0) for p in stats.get("Datapoints", [])))
        hours = int(self.window.total_seconds() // 3600)
        if total:
            return (False, f"{total} error(s) in the last {hours} h",
                    f"read the function logs (aws logs tail /aws/lambda/{functions[0]})")
        return True, f"0 errors in the last {hours} h", ""

    def _health(self, api_server: str) -> tuple[bool, str, str]:
        url = api_server.rstrip("/") + HEALTH_PATH
        try:
            response = self.http_get(url, timeout=5)
        except requests.RequestException as e:
            reason = str(getattr(e.args[0], "reason", e) if e.args else e).splitlines()[-1][:120]
            return False, f"{url}: {reason}", "check ApiServer and network access from this machine"
        if response.status_code != 200:
            return (False, f"{url}: HTTP {response.status_code}",
                    "check the WES service (ENABLE_CALLBACK_ENDPOINT=true) and ApiServer")
        return True, f"{url}: HTTP 200", ""

    def _bucket_encrypted(self, bucket: str) -> tuple[bool, str, str]:
        try:
            rules = self.clients.client("s3").get_bucket_encryption(Bucket=bucket)[
                "ServerSideEncryptionConfiguration"]["Rules"]
        except ClientError as e:
            if "ServerSideEncryptionConfigurationNotFound" not in str(e):
                raise
            return (False, f"{bucket}: no default encryption",
                    f"aws s3api put-bucket-encryption --bucket {bucket} --server-side-encryption-"
                    "configuration '{\"Rules\":[{\"ApplyServerSideEncryptionByDefault\":"
                    "{\"SSEAlgorithm\":\"AES256\"}}]}'")
        algorithm = rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
        return True, f"{bucket}: {algorithm}", ""

    def _buckets_eventbridge(self, buckets: list[str]) -> tuple[bool, str, str]:
        """Every bucket of the stack (`BucketName` may list several); the first one off fails."""
        for bucket in buckets:
            result = self._bucket_eventbridge(bucket)
            if not result[0]:
                return result
        return True, f"{', '.join(buckets)}: EventBridge notifications on", ""

    # -- the scheduled reconcile (issue 11) ----------------------------------------------------

    def _reconcile_schedule(self, stack: StackInfo) -> tuple[bool, str, str]:
        schedule = stack.parameters.get("ReconcileSchedule")
        redeploy = f"omics-edp deploy processor --stack-name {stack.name} (ReconcileSchedule=rate(1 hour))"
        if schedule is None:
            return False, "stack deployed before the scheduled reconcile existed", redeploy
        if schedule == "disabled":
            return False, "ReconcileSchedule is disabled: lost events are only found by hand", redeploy
        rule = stack.outputs.get("ReconcileRuleName") or stack.resource("ReconcileRule")
        if not rule:
            return False, "no reconcile rule in the stack", redeploy
        state = self.clients.client("events").describe_rule(Name=rule).get("State")
        if state != "ENABLED":
            return False, f"rule {rule} is {state}", f"aws events enable-rule --name {rule}"
        return True, f"rule {rule} enabled, {schedule}", ""

    def _last_reconcile(self, stack: StackInfo) -> tuple[bool, str, str]:
        bucket = stack.parameters.get("DataLakeBucket", "")
        prefix = (stack.parameters.get("BucketPrefix") or DEFAULT_S3_PREFIX).strip("/")
        key = last_result_key(prefix)
        try:
            body = self.clients.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") not in {"NoSuchKey", "404"}:
                raise
            return True, f"no reconcile has run yet (s3://{bucket}/{key})", ""
        try:
            last = json.loads(body)
            summary = last["summary"]
        except (ValueError, KeyError, TypeError):
            return False, f"s3://{bucket}/{key} is not a reconcile result", "wait for the next run"
        detail = (f"{last.get('finished_at', '?')}: {summary.get('runs', 0)} run(s), "
                  f"{len(last.get('attention') or [])} need attention, {summary.get('fixed', 0)} fixed")
        fix = f"omics-edp reconcile --stack {stack.name} --since 24h (then --fix)"
        return bool(last.get("ok")), detail, fix

    def _bucket_eventbridge(self, bucket: str) -> tuple[bool, str, str]:
        config = self.clients.client("s3").get_bucket_notification_configuration(Bucket=bucket)
        if "EventBridgeConfiguration" not in config:
            return (False, f"{bucket}: EventBridge notifications off",
                    f"aws s3api put-bucket-notification-configuration --bucket {bucket} "
                    "--notification-configuration '{\"EventBridgeConfiguration\": {}}'")
        return True, f"{bucket}: EventBridge notifications on", ""

    def _event_source(self, function: str, queue_arn: str) -> tuple[bool, str, str]:
        mappings = self.clients.client("lambda").list_event_source_mappings(
            FunctionName=function, EventSourceArn=queue_arn).get("EventSourceMappings", [])
        if not mappings:
            return False, "no event source mapping from the ingest queue", "run omics-edp deploy again"
        state = mappings[0].get("State", "Enabled")
        if state not in {"Enabled", "Enabling", "Updating"}:
            return (False, f"event source mapping is {state}",
                    f"aws lambda update-event-source-mapping --uuid {mappings[0]['UUID']} --enabled")
        return True, f"event source mapping {state}", ""

    # -- security (issue 12): topic keys, encryption at rest, retention ---------------------------

    def _security(self, stack: StackInfo, topics: dict[str, list[str]], queues: list[str]) -> list[Check]:
        # Outputs, or the same values from the stack's resources (a stack without outputs).
        checks = [self._topic_check(stack.optional_output(output) or "", output, publishers)
                  for output, publishers in topics.items()]
        checks.append(self._guard("queues encrypted", lambda: self._queues_encrypted(
            [stack.optional_output(q) or "" for q in queues])))
        checks.append(self._guard("stateful resources retained", lambda: self._retention(stack.name)))
        return checks

    def _topic_check(self, topic_arn: str, output: str, publishers: list[str]) -> Check:
        who = ", ".join(p.split(".")[0] for p in publishers)
        return self._guard(f"{output} key lets {who} publish",
                           lambda: self._topic_key_grants(topic_arn, publishers))

    def _topic_key_grants(self, topic_arn: str, principals: list[str]) -> tuple[bool, str, str]:
        """The topic's key is customer managed and its policy lets each publisher use it."""
        attrs = self.clients.client("sns").get_topic_attributes(TopicArn=topic_arn)["Attributes"]
        key = attrs.get("KmsMasterKeyId", "")
        name = topic_arn.rsplit(":", 1)[-1]
        redeploy = "run omics-edp deploy again (the stack creates a customer managed key)"
        if not key:
            return False, f"{name} is not encrypted", redeploy
        if key.startswith("alias/aws/"):
            return (False, f"{name} uses the AWS managed key {key}: alarms and rules cannot publish",
                    redeploy)
        raw = self.clients.client("kms").get_key_policy(KeyId=key, PolicyName="default")["Policy"]
        policy = raw if isinstance(raw, dict) else json.loads(raw)  # a local AWS may answer a dict
        missing = [p for p in principals if not _key_grants(policy, p)]
        if missing:
            return (False, f"{name}: key policy of {key} does not let {', '.join(missing)} use "
                    "kms:Decrypt and kms:GenerateDataKey* (unconditioned for events)",
                    "add the grant to the key policy (README: Security) or leave NotificationKmsKeyArn empty")
        return True, f"{name}: {key.rsplit('/', 1)[-1]} grants {', '.join(principals)}", ""

    def _queues_encrypted(self, urls: list[str]) -> tuple[bool, str, str]:
        plain = []
        for url in urls:
            attrs = self.clients.client("sqs").get_queue_attributes(
                QueueUrl=url, AttributeNames=["SqsManagedSseEnabled", "KmsMasterKeyId"])["Attributes"]
            sse = str(attrs.get("SqsManagedSseEnabled", "")).lower() == "true"
            if not (sse or attrs.get("KmsMasterKeyId")):
                plain.append(url.rsplit("/", 1)[-1])
        if plain:
            return (False, f"not encrypted: {', '.join(plain)}",
                    f"aws sqs set-queue-attributes --queue-url <url> --attributes SqsManagedSseEnabled=true "
                    f"(or omics-edp deploy again); first: {plain[0]}")
        return True, f"{len(urls)} queue(s) encrypted (SSE-SQS or KMS)", ""

    def _table_encrypted(self, table: str) -> tuple[bool, str, str]:
        """DynamoDB always encrypts at rest; what can go wrong is a KMS key it can no longer use."""
        described = self.clients.client("dynamodb").describe_table(TableName=table)["Table"]
        sse = described.get("SSEDescription") or {}
        status = described.get("TableStatus", "")
        if status != "INACCESSIBLE_ENCRYPTION_CREDENTIALS" and sse.get("Status") in {"DISABLING", "DISABLED"}:
            status = str(sse["Status"])
        if status in {"INACCESSIBLE_ENCRYPTION_CREDENTIALS", "DISABLING", "DISABLED"}:
            return (False, f"{table}: its KMS key is unusable ({status})",
                    "re-enable the key or its grant (aws kms describe-key), then omics-edp deploy again")
        if not sse:
            return True, f"{table}: the DynamoDB owned key", ""
        return True, f"{table}: {sse.get('SSEType', 'KMS')} {sse.get('Status', '')}".strip(), ""

    def _retention(self, stack_name: str) -> tuple[bool, str, str]:
        """Dead letters, queues, tables, log groups and keys carry Retain in the deployed template."""
        body = self.clients.client("cloudformation").get_template(
            StackName=stack_name, TemplateStage="Original")["TemplateBody"]
        template = body if isinstance(body, dict) else Template("deployed", body, {}).document()
        loose = [
            name for name, resource in (template.get("Resources") or {}).items()
            if resource.get("Type") in STATEFUL_TYPES
            and {resource.get("DeletionPolicy"), resource.get("UpdateReplacePolicy")} != {"Retain"}
        ]
        if loose:
            return (False, f"deleting the stack would delete: {', '.join(sorted(loose))}",
                    "run omics-edp deploy again (the current templates retain them)")
        return True, "dead letters, queues, table, log groups and keys are retained", ""

    def _outputs_read_scope(self, stack: StackInfo) -> tuple[bool, str, str]:
        buckets = stack.parameters.get("RunOutputBuckets", "*")
        if buckets == "*":
            return (True, "warning: the function may read <run>/logs/outputs.json in any bucket; "
                    "set RunOutputBuckets to the HealthOmics output bucket", "")
        return True, f"only s3://{buckets}/*/logs/outputs.json", ""


STATEFUL_TYPES = frozenset({"AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::Logs::LogGroup",
                            "AWS::KMS::Key"})
_SOURCE_KEYS = frozenset({"aws:sourceaccount", "aws:sourcearn", "aws:sourceorgid"})


def _listed(value: Any) -> list[Any]:
    return [value] if isinstance(value, (str, dict)) else list(value or [])


def _key_grants(policy: dict[str, Any], principal: str) -> bool:
    """Whether the key policy allows `principal` kms:Decrypt and kms:GenerateDataKey;
    for events.amazonaws.com without source conditions, which its KMS requests do not carry."""
    granted: set[str] = set()
    for statement in _listed(policy.get("Statement")):
        who = statement.get("Principal")
        services = _listed(who.get("Service")) if isinstance(who, dict) else []
        if statement.get("Effect") != "Allow" or principal not in services:
            continue
        keys = {k.lower() for test in (statement.get("Condition") or {}).values() for k in test}
        if principal == "events.amazonaws.com" and keys & _SOURCE_KEYS:
            continue
        actions = [str(a).lower() for a in _listed(statement.get("Action"))]
        granted |= {w for w in ("kms:Decrypt", "kms:GenerateDataKey")
                    if any(fnmatchcase(w.lower(), a) for a in actions)}
    return granted == {"kms:Decrypt", "kms:GenerateDataKey"}



# -- the packager stack (its own checks, kept apart from the two pipelines') -----------------


def packager_checks(doctor: Doctor, stack: StackInfo) -> list[Check]:
    """Rule, registry and quarantine buckets (versioning, encryption), DLQ depth, errors, and the
    security checks: topic key grants, queue encryption, retention."""
    function = stack.outputs.get("PackagerFunctionName", "")
    expected = {"REGISTRY_BUCKET": stack.parameters.get("RegistryBucket"),
                "QUARANTINE_BUCKET": stack.parameters.get("QuarantineBucket")}
    checks = [
        doctor._guard("packager function configured", lambda: doctor._function(function, expected)),
        doctor._guard("rule on the EDP bus enabled and targeting the packager",
                      lambda: _packager_rule(doctor, stack)),
    ]
    for label, key in (("registry", "RegistryBucket"), ("quarantine", "QuarantineBucket")):
        bucket = stack.parameters.get(key, "")
        checks.append(doctor._guard(f"{label} bucket versioned", partial(_versioned, doctor, bucket)))
        checks.append(doctor._guard(f"{label} bucket encrypted", partial(doctor._bucket_encrypted, bucket)))
    checks += [
        doctor._guard("packager dead-letter queue empty",
                      lambda: doctor._queue_empty(stack.outputs.get("PackagerDeadLetterQueueUrl", ""))),
        doctor._guard("no recent Lambda errors", lambda: doctor._lambda_errors([function])),
        # The dead-letter alarm publishes to the topic: its key must be customer managed and let
        # CloudWatch use it (the function publishes through its role's PublishKey grant).
        *doctor._security(stack, {"PackagerTopicArn": ["cloudwatch.amazonaws.com"]},
                          queues=["PackagerDeadLetterQueueUrl"]),
    ]
    return checks


def _packager_rule(doctor: Doctor, stack: StackInfo) -> tuple[bool, str, str]:
    events = doctor.clients.client("events")
    bus = stack.parameters.get("EventBusName", "default")
    rule = stack.outputs.get("PackagerRuleName", "")
    described = events.describe_rule(Name=rule, EventBusName=bus)
    if described.get("State") != "ENABLED":
        return (False, f"rule {rule} is disabled",
                f"aws events enable-rule --name {rule} --event-bus-name {bus}")
    targets = events.list_targets_by_rule(Rule=rule, EventBusName=bus).get("Targets", [])
    function_arn = stack.outputs.get("PackagerFunctionArn", "")
    if not any(t.get("Arn") == function_arn for t in targets):
        return False, f"rule {rule} does not target the packager", "run omics-edp deploy packager again"
    return True, f"rule {rule} on {bus} enabled", ""


def _versioned(doctor: Doctor, bucket: str) -> tuple[bool, str, str]:
    status = doctor.clients.client("s3").get_bucket_versioning(Bucket=bucket).get("Status", "off")
    if status != "Enabled":
        return (False, f"{bucket}: versioning {status.lower()} (Quilt registries need it)",
                f"aws s3api put-bucket-versioning --bucket {bucket} "
                "--versioning-configuration Status=Enabled")
    return True, f"{bucket}: versioning on", ""
