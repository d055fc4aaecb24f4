"""What the templates promise about security, read from the templates themselves: topics the
alarms and rules publish to can use their key, no IAM wildcard goes unexplained, stateful
resources survive the stack, no role can write the Lambda code, the token pattern is the policy."""

from __future__ import annotations

import re
import subprocess
import sys
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import pytest
import yaml

from omics_edp_cli.omics.secrets import MIN_TOKEN_LENGTH, TOKEN_PATTERN
from omics_edp_cli.ops.deploy import packaging
from omics_edp_cli.ops.deploy.execute import DEFAULT_CODE_PREFIX

ROOT = Path(__file__).resolve().parents[1]
TEMPLATES = {p.name: p for p in sorted((ROOT / "cloudformation").glob("*.yaml"))}
BIN = Path(sys.executable).parent
PSEUDO = {"AWS::StackName": "stk", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
          "AWS::Partition": "aws"}
SAMPLE = {"DataLakeBucket": "lake-bucket", "BucketName": "instrument-bucket"}
STATEFUL = {"AWS::SQS::Queue", "AWS::DynamoDB::Table", "AWS::Logs::LogGroup", "AWS::KMS::Key"}

# Every `*` in a policy resource, with the reason it is there. A new wildcard fails the test
# until it is explained here; an explanation whose wildcard is gone fails it too.
EXPLAINED = {
    ("omics-run-event-processor.yaml", "NotificationKey", "AccountAdministers"):
        "in a key policy, Resource * means this key",
    ("omics-run-event-processor.yaml", "NotificationKey", "CloudWatchAlarmsPublish"):
        "in a key policy, Resource * means this key",
    ("edp.yaml", "NotificationKey", "AccountAdministers"): "in a key policy, Resource * means this key",
    ("edp.yaml", "NotificationKey", "CloudWatchAlarmsPublish"): "in a key policy, Resource * means this key",
    ("edp.yaml", "NotificationKey", "EventBridgeRulesPublish"): "in a key policy, Resource * means this key",
    ("edp.yaml", "IngestRole", "Manifests"): "manifests and their segments under the manifest prefix",
    ("edp.yaml", "FlushRole", "Manifests"): "manifests and their segments under the manifest prefix",
    ("edp.yaml", "ManifestBucketPolicy", "TlsOnly"): "a Deny: the manifest bucket's objects, without TLS",
    ("omics-run-event-processor.yaml", "FunctionRole", "ArchiveWrite"):
        "objects under the archive prefix of one bucket (event_<time>_<id>.json keys)",
    ("omics-run-event-processor.yaml", "FunctionRole", "ReadRunOutputsManifest"):
        "<run>/logs/outputs.json in RunOutputBuckets; its default * (any bucket) keeps the original "
        "Lambda's behaviour and doctor warns about it",
    ("omics-run-event-processor.yaml", "FunctionRole", "HealthOmicsRead"):
        "run ids are not known in advance: any run of this account and region, read only",
    ("omics-run-event-processor.yaml", "ReconcileRole", "Archive"):
        "objects under the archive prefix of one bucket (archived events, refusal records, last result)",
    ("omics-run-event-processor.yaml", "ReconcileRole", "ReadRunOutputsManifest"):
        "<run>/logs/outputs.json in RunOutputBuckets, as for the processor's FunctionRole",
    ("omics-run-event-processor.yaml", "ReconcileRole", "HealthOmicsListRuns"):
        "omics:ListRuns has no resource type (Service Authorization Reference): only * matches it",
    ("omics-run-event-processor.yaml", "ReconcileRole", "HealthOmicsReadRun"):
        "the runs ListRuns returns: any run of this account and region, read only",
    ("packager.yaml", "NotificationKey", "AccountAdministers"): "in a key policy, Resource * means this key",
    ("packager.yaml", "NotificationKey", "CloudWatchAlarmsPublish"):
        "in a key policy, Resource * means this key",
    ("packager.yaml", "FunctionRole", "ReadBatches"):
        "objects of the watched bucket (and ManifestBucketName when set): a batch may name any key there",
    ("packager.yaml", "FunctionRole", "WritePackages"):
        "objects of the registry and quarantine buckets: Quilt writes package files and .quilt/ there",
}


class _Loader(yaml.SafeLoader):
    """Short tags kept as their long form: `!Sub x` → {"Fn::Sub": x}, `!Ref x` → {"Ref": x}."""


def _construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_Loader.add_multi_constructor("!", _construct)


def load(name: str) -> dict[str, Any]:
    return yaml.load(TEMPLATES[name].read_text(), Loader=_Loader)


class Evaluator:
    """Just enough of CloudFormation to turn policy values into strings, with the defaults,
    `SAMPLE` values and the stack's own key (CreateNotificationKey true)."""

    def __init__(self, template: dict[str, Any], overrides: dict[str, str] | None = None):
        self.template = template
        params = {k: str(v.get("Default", "")) for k, v in template["Parameters"].items()}
        self.values = {**params, **SAMPLE, **PSEUDO, **(overrides or {})}

    def __call__(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self(v) for v in value]
        if not isinstance(value, dict) or len(value) != 1:
            return {k: self(v) for k, v in value.items()} if isinstance(value, dict) else value
        [(fn, arg)] = value.items()
        if fn == "Ref":
            return self.values.get(arg, f"ref:{arg}")
        if fn == "Fn::GetAtt":
            return f"getatt:{arg[0]}.{arg[1]}"
        if fn == "Fn::Sub":
            text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self(arg[1]))
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(
                extra.get(m[1]) or self.values.get(m[1]) or f"getatt:{m[1]}"), text)
        if fn == "Fn::If":
            condition, yes, no = arg
            return self(yes if self.condition(condition) else no)
        if fn == "Fn::Join":
            return arg[0].join(self(arg[1]))
        return {fn: self(arg)}

    def condition(self, name: str) -> bool:
        # Optional parts present (the widest policies); a new condition fails here until it is named.
        return {"CreateNotificationKey": True, "UseKms": False, "UseVpc": False,
                "HasAlarmEmail": True, "ReconcileEnabled": True, "HasEmail": True,
                "HasManifestBucket": True, "UseGateway": True, "CreateManifestBucket": True}[name]


def statements(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(resource, Sid, statement) for every policy statement in the template."""
    found = []
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        documents = [p["PolicyDocument"] for p in props.get("Policies", [])]
        documents += [props[k] for k in ("PolicyDocument", "KeyPolicy") if k in props]
        for document in documents:
            for statement in document["Statement"]:
                if isinstance(statement, dict) and "Fn::If" in statement:
                    statement = statement["Fn::If"][1]  # the optional statement, when present
                found.append((name, statement.get("Sid", "?"), statement))
    return found


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# -- notifications that work ---------------------------------------------------------------

def publishers(template: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """(publisher resource, service principal, its ARN, topic logical id) for alarms and rules."""
    ev = Evaluator(template)
    sns = {n for n, r in template["Resources"].items() if r["Type"] == "AWS::SNS::Topic"}
    found = []
    for name, resource in template["Resources"].items():
        props = resource.get("Properties", {})
        if resource["Type"] == "AWS::CloudWatch::Alarm":
            arn = (f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:"
                   f"{ev(props['AlarmName'])}")
            for action in props.get("AlarmActions", []):
                found.append((name, "cloudwatch.amazonaws.com", arn, action["Ref"]))
        if resource["Type"] == "AWS::Events::Rule":
            for target in props.get("Targets", []):
                if isinstance(target["Arn"], dict) and target["Arn"].get("Ref") in sns:
                    found.append((name, "events.amazonaws.com", f"getatt:{name}.Arn", target["Arn"]["Ref"]))
    return found


def allows(statement: dict[str, Any], principal: str, action: str, ev: Evaluator) -> bool:
    return (statement["Effect"] == "Allow"
            and principal in as_list(statement.get("Principal", {}).get("Service", []))
            and any(fnmatchcase(action, a) for a in as_list(statement["Action"])))


def conditions_admit(statement: dict[str, Any], source_arn: str, ev: Evaluator) -> bool:
    """Whether the statement's aws:SourceAccount / aws:SourceArn conditions let `source_arn` in."""
    for operator, tests in ev(statement.get("Condition", {})).items():
        for key, expected in tests.items():
            values = as_list(expected)
            if key == "aws:SourceAccount" and "123456789012" not in values:
                return False
            if key == "aws:SourceArn":
                match = fnmatchcase if operator == "ArnLike" else str.__eq__
                if not any(match(source_arn, v) for v in values):
                    return False
    return True


@pytest.mark.parametrize("name", TEMPLATES)
def test_every_alarm_and_rule_can_use_the_key_of_the_topic_it_publishes_to(name: str):
    template = load(name)
    ev = Evaluator(template)
    found = publishers(template)
    assert found, "no alarm or rule publishes to a topic"
    for publisher, principal, source_arn, topic in found:
        key_ref = template["Resources"][topic]["Properties"]["KmsMasterKeyId"]
        key = ev(key_ref)
        assert key.startswith("getatt:") and key.endswith(".Arn"), f"{topic}: not the stack's own key"
        key_resource = template["Resources"][key[len("getatt:"):-len(".Arn")]]
        assert key_resource["Type"] == "AWS::KMS::Key"
        assert key_resource["Properties"]["EnableKeyRotation"] is True
        key_statements = key_resource["Properties"]["KeyPolicy"]["Statement"]
        for action in ("kms:Decrypt", "kms:GenerateDataKey"):
            granting = [s for s in key_statements if allows(s, principal, action, ev)]
            assert granting, f"{publisher} → {topic}: the key does not grant {principal} {action}"
            assert any(conditions_admit(s, source_arn, ev) for s in granting), (
                f"{publisher} → {topic}: the key policy's conditions shut {source_arn} out")
            if principal == "events.amazonaws.com":
                # SNS documents that EventBridge's KMS request carries no source keys.
                for s in granting:
                    keys = {k for test in s.get("Condition", {}).values() for k in test}
                    assert not keys & {"aws:SourceAccount", "aws:SourceArn", "aws:SourceOrgID"}, (
                        f"{publisher}: a source condition on the EventBridge key grant drops every message")
        # The topic policy (if any) lets this publisher publish, scoped to its source.
        policies = [r for r in template["Resources"].values() if r["Type"] == "AWS::SNS::TopicPolicy"
                    and {"Ref": topic} in r["Properties"]["Topics"]]
        assert policies, f"{topic} has no topic policy scoping its publishers"
        topic_statements = [s for p in policies for s in p["Properties"]["PolicyDocument"]["Statement"]
                            if allows(s, principal, "sns:Publish", ev)]
        assert topic_statements and all(
            {"aws:SourceArn", "aws:SourceAccount"} <= {k for t in s["Condition"].values() for k in t}
            for s in topic_statements), f"{topic}: publish by {principal} not scoped by account and source"
        assert any(conditions_admit(s, source_arn, ev) for s in topic_statements), (
            f"{publisher} → {topic}: the topic policy shuts {source_arn} out")


@pytest.mark.parametrize("name", TEMPLATES)
def test_no_service_gets_more_of_the_key_than_decrypt_and_generate_data_key(name: str):
    for resource, sid, statement in statements(load(name)):
        if "Service" in statement.get("Principal", {}) and resource == "NotificationKey":
            assert sorted(as_list(statement["Action"])) == ["kms:Decrypt", "kms:GenerateDataKey*"], sid


# -- least privilege ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", TEMPLATES)
def test_no_wildcard_action_and_every_wildcard_resource_is_explained(name: str):
    template = load(name)
    ev = Evaluator(template)
    seen = set()
    for resource, sid, statement in statements(template):
        for action in as_list(statement["Action"]):
            if statement.get("Effect") == "Deny":
                continue  # a Deny takes away (e.g. every s3:* without TLS): its width is the point
            assert action != "*" and not action.endswith(":*"), f"{resource}/{sid}: action {action}"
        for arn in as_list(ev(statement.get("Resource", []))):
            if "*" in str(arn):
                assert (name, resource, sid) in EXPLAINED, f"{resource}/{sid}: unexplained {arn}"
                seen.add((name, resource, sid))
    stale = {k for k in EXPLAINED if k[0] == name} - seen
    assert not stale, f"explanations for wildcards that are gone: {stale}"


@pytest.mark.parametrize("bucket_prefix", ["omics-run-events", "runs/archive", "omics-edp-archive"])
@pytest.mark.parametrize("name", TEMPLATES)
def test_no_role_can_write_the_default_code_location(name: str, bucket_prefix: str):
    template = load(name)
    ev = Evaluator(template, {"BucketPrefix": bucket_prefix, "RunOutputBuckets": "*"})
    keys = [packaging.build(kind).s3_key(DEFAULT_CODE_PREFIX) for kind in packaging.KINDS]
    code = [f"arn:aws:s3:::{bucket}/{key}" for bucket in SAMPLE.values() for key in keys]
    for resource, sid, statement in statements(template):
        if template["Resources"][resource]["Type"] != "AWS::IAM::Role":
            continue
        writes = [a for a in as_list(statement["Action"])
                  if a.startswith("s3:") and not a.startswith(("s3:Get", "s3:List"))]
        for arn in as_list(ev(statement["Resource"])) if writes else []:
            assert not any(fnmatchcase(c, arn) for c in code), f"{resource}/{sid} may write {arn}"


def test_the_outputs_manifest_read_follows_run_output_buckets():
    """Both roles that read the manifest: the processor's and (issue 11) the reconcile Lambda's."""
    template = load("omics-run-event-processor.yaml")
    found = {r: s for r, sid, s in statements(template) if sid == "ReadRunOutputsManifest"}
    assert set(found) == {"FunctionRole", "ReconcileRole"}
    for statement in found.values():
        narrowed = Evaluator(template, {"RunOutputBuckets": "my-omics-outputs"})(statement["Resource"])
        assert narrowed == "arn:aws:s3:::my-omics-outputs/*/logs/outputs.json"
        assert Evaluator(template)(statement["Resource"]) == "arn:aws:s3:::*/*/logs/outputs.json"


# -- data survives the stack -------------------------------------------------------------------

@pytest.mark.parametrize("name", TEMPLATES)
def test_stateful_resources_are_retained(name: str):
    resources = load(name)["Resources"]
    stateful = {n: r for n, r in resources.items() if r["Type"] in STATEFUL}
    assert stateful
    for resource_name, resource in stateful.items():
        assert resource.get("DeletionPolicy") == "Retain", resource_name
        assert resource.get("UpdateReplacePolicy") == "Retain", resource_name


def test_cfn_lint_informational_checks_report_nothing():
    """I3011 (explicit DeletionPolicy/UpdateReplacePolicy on stateful resources) included."""
    result = subprocess.run([str(BIN / "cfn-lint"), "--include-checks", "I", "--",
                             *map(str, TEMPLATES.values())], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0 and result.stdout.strip() == "", result.stdout + result.stderr


# -- the secret always parses ------------------------------------------------------------------

def test_the_token_parameter_carries_the_token_policy():
    spec = load("omics-run-event-processor.yaml")["Parameters"]["ApiServerAuthToken"]
    assert spec["AllowedPattern"] == TOKEN_PATTERN
    assert spec["MinLength"] == MIN_TOKEN_LENGTH
    assert spec["NoEcho"] is True
