"""The local AWS runs in a child process: it answers, stops with the sandbox, and says why it failed."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from omics_edp_cli.errors import OperationError
from omics_edp_cli.local.sandbox import LocalAws, LocalSandbox


def test_the_local_aws_answers_from_its_own_process_and_ends_with_the_sandbox():
    seen: list[int] = []

    def while_starting(box: LocalSandbox) -> None:
        seen.append(box._moto._process.pid)  # type: ignore[union-attr]

    with LocalSandbox("demo-00000000", while_starting=while_starting) as box:
        s3 = box.clients.client("s3")
        s3.create_bucket(Bucket="sandbox-answers")
        assert [b["Name"] for b in s3.list_buckets()["Buckets"]] == ["sandbox-answers"]
        [pid] = seen
        assert pid != os.getpid()
        os.kill(pid, 0)  # running
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_the_child_ignores_ctrl_c_and_leaves_when_its_parent_does():
    """Ctrl-C in a terminal reaches the whole group: the parent decides; a killed parent ends it too."""
    parent = subprocess.Popen([sys.executable, "-c", (
        "import sys\n"
        "from omics_edp_cli.local.sandbox import LocalAws, _free_port\n"
        "aws = LocalAws(_free_port()).start()\n"
        "aws.wait_ready()\n"
        "print(aws._process.pid, flush=True)\n"
        "sys.stdin.read()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())  # type: ignore[union-attr]
    os.kill(child, signal.SIGINT)
    os.kill(child, 0)  # still running
    parent.kill()
    parent.wait()
    # The child exits on its stdin's end; it is not ours to wait for: watch for it (bounded).
    for _ in range(3000):
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            break
        if _is_zombie(child):
            break
        time.sleep(0.01)
    else:
        raise AssertionError(f"the local AWS process {child} outlived its parent")


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1].startswith("Z")
    except FileNotFoundError:
        return True


def test_a_local_aws_that_cannot_start_says_why():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        aws = LocalAws(port).start()
        with pytest.raises(OperationError, match=rf"did not start on 127.0.0.1:{port}: .*in use"):
            aws.wait_ready()


def test_the_local_aws_reads_botocore_and_moto_data_files_to_the_same_values():
    """Its msgspec parsing of botocore's and moto's data files gives what json gave (a process
    of its own: the parsers are swapped for the whole process)."""
    script = """
import json
from collections import OrderedDict
import botocore.loaders
import moto.utilities.utils as utils
from omics_edp_cli.local import aws_process

names = [("endpoints",), ("sqs", "service-2"), ("cloudformation", "service-2")]
def botocore_files():
    loader = botocore.loaders.Loader()
    return [loader.load_data("endpoints"), loader.load_service_model("sqs", "service-2"),
            loader.load_service_model("cloudformation", "service-2")]
resources = ["ec2/resources/instance_types.json",
             "ec2/resources/instance_type_offerings/region/us-east-1.json"]
before = botocore_files(), [utils.load_resource(r) for r in resources]
aws_process.speed_up_botocore()
aws_process.parse_moto_resources_faster()
assert botocore.loaders.JSONFileLoader._load_file.__module__ == aws_process.__name__
after = botocore_files(), [utils.load_resource(r) for r in resources]
assert json.dumps(before) == json.dumps(after), "the data differ"
assert not isinstance(after[0][0], OrderedDict) and after[1][0], "not parsed by msgspec"
print("same")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "same"


def test_a_message_past_its_queue_retention_period_is_not_received(monkeypatch: pytest.MonkeyPatch):
    """The local AWS checks retention from the queue's field (moto walked every message for it)."""
    import boto3
    from moto import mock_aws
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sqs.models import SQSBackend, sqs_backends

    from omics_edp_cli.local.aws_process import read_retention_period_directly

    # Put back moto's own check when the test ends: the patch belongs to the local AWS process.
    name = "is_message_valid_based_on_retention_period"
    monkeypatch.setattr(SQSBackend, name, getattr(SQSBackend, name))
    read_retention_period_directly()
    assert getattr(getattr(SQSBackend, name), "_omics_edp_fixed", False)  # the patch is what runs
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="retained", Attributes={"MessageRetentionPeriod": "60"})["QueueUrl"]
        backend = sqs_backends[DEFAULT_ACCOUNT_ID]["us-east-1"]
        for body in ("old", "fresh"):
            sqs.send_message(QueueUrl=url, MessageBody=body)
        old, fresh = backend.get_queue("retained")._messages
        old.sent_timestamp -= 61_000  # sent 61 s ago: past the 60 s retention period
        assert backend.is_message_valid_based_on_retention_period("retained", fresh) is True
        assert backend.is_message_valid_based_on_retention_period("retained", old) is False
        received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        assert [m["Body"] for m in received] == []  # moto stops at the first expired message


def test_the_local_aws_clock_reads_the_same_time():
    """moto's `unix_time()` read from `time.time()` in the local AWS: the same seconds."""
    script = """
import datetime, time
import moto.core.utils as utils
from omics_edp_cli.local import aws_process

moto_now = utils.unix_time()
aws_process.read_the_clock_directly()
assert utils.unix_time.__module__ == aws_process.__name__, "not replaced"
ours, now = utils.unix_time(), time.time()
assert abs(ours - now) < 0.05 and abs(ours - moto_now) < 5, (ours, now, moto_now)
assert utils.unix_time(datetime.datetime(1970, 1, 2, 0, 0, 1)) == 86401.0
assert abs(utils.unix_time_millis() - now * 1000) < 50
print("same")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "same"


def test_url_rules_in_the_local_aws_still_build_urls():
    """Its werkzeug rules compile their URL builders on first use: routing and building still work."""
    script = """
from werkzeug.routing import Map, Rule
from werkzeug.routing.rules import Rule as RuleClass
from omics_edp_cli.local import aws_process

compiled = []
original = RuleClass._compile_builder
def counted(self, append_unknown=True):
    compiled.append(self.rule)
    return original(self, append_unknown)
RuleClass._compile_builder = counted
aws_process.build_urls_lazily()
urls = Map([Rule("/2015-03-31/functions/<name>/code", endpoint="code")]).bind("lambda.local")
assert urls.match("/2015-03-31/functions/f1/code") == ("code", {"name": "f1"})
assert compiled == [], "compiled when added"
assert urls.build("code", {"name": "f2"}) == "/2015-03-31/functions/f2/code"
assert urls.build("code", {"name": "f3", "q": "1"}) == "/2015-03-31/functions/f3/code?q=1"
assert compiled and set(compiled) == {"/2015-03-31/functions/<name>/code"}, compiled
print("same")
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "same"
