"""Replay's lean archive GET (`ops/replay/s3get.py`) against a moto server over HTTP: the same
bytes and the same errors as botocore's `get_object`, signatures checked by moto's IAM auth."""

from __future__ import annotations

import http.client
import json
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

import boto3
import botocore.session
import pytest
import requests
from botocore.credentials import RefreshableCredentials
from conftest import API_TOKEN
from replay.helpers import T0, iso, minutes, payload, put_payload

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import ArchiveError
from omics_edp_cli.local.receiver import CallbackReceiver
from omics_edp_cli.omics.archive import ArchiveStore
from omics_edp_cli.ops.replay.execute import replay
from omics_edp_cli.ops.replay.plan import ReplayOptions, plan_replay
from omics_edp_cli.ops.replay.read import read_event
from omics_edp_cli.ops.replay.s3get import LeanArchiveStore, LeanGet, encode_key

# Keys whose URL encoding matters for the signature: space, non-ASCII, `+`, `~`, `=`, `&`, `%`.
ODD_KEYS = ["omics-run-events/a b.json", "omics-run-events/ünïcødé €.json",
            "omics-run-events/plus+sign.json", "omics-run-events/tilde~x=1&y%2F.json",
            "omics-run-events/nested/dir/(paren)'quote'!*.json"]


def new_bucket(s3: Any) -> str:
    bucket = f"lean-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    return bucket


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch, moto_server: str) -> Any:
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    return ClientFactory().client("s3")


@contextmanager
def moto_auth(server: str) -> Iterator[tuple[str, str]]:
    """moto checks every request's signature and IAM permissions while inside; yields an access
    key that may do anything with S3 (the server is shared: the previous setting comes back)."""
    iam = boto3.client("iam", endpoint_url=server)
    user = f"lean-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=user)
    iam.put_user_policy(UserName=user, PolicyName="s3", PolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": ["s3:*", "kms:*", "iam:*"], "Resource": "*"}]}))
    key = iam.create_access_key(UserName=user)["AccessKey"]
    previous = requests.post(f"{server}/moto-api/reset-auth", data=b"0", timeout=10).json()
    try:
        yield key["AccessKeyId"], key["SecretAccessKey"]
    finally:
        requests.post(f"{server}/moto-api/reset-auth", timeout=10,
                      data=str(previous["PREVIOUS_INITIAL_NO_AUTH_ACTION_COUNT"]).encode())


def learned(s3: Any, bucket: str, key: str) -> LeanGet:
    """A `LeanGet` once botocore has read `key` (the read it learns the bucket's URL from)."""
    lean = LeanGet(s3, bucket)
    assert lean.get(key) is None  # nothing learned yet: the caller goes to botocore
    s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    return lean


def test_the_same_bytes_as_botocore_for_keys_that_need_encoding_signed_as_moto_checks(
        moto_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    setup = boto3.client("s3")
    bucket = new_bucket(setup)
    bodies = {key: json.dumps({"key": key, "n": i}).encode() for i, key in enumerate(ODD_KEYS)}
    for key, body in bodies.items():
        setup.put_object(Bucket=bucket, Key=key, Body=body)
    with moto_auth(moto_server) as (key_id, secret):
        s3 = ClientFactory(credentials=(key_id, secret)).client("s3")
        lean = learned(s3, bucket, ODD_KEYS[0])
        store, plain = LeanArchiveStore(s3, bucket, ""), ArchiveStore(s3, bucket, "")
        for key, body in bodies.items():
            assert lean.get(key) == body == s3.get_object(Bucket=bucket, Key=key)["Body"].read()
            assert store.get_json(key) == plain.get_json(key) == json.loads(body)
        # A wrong secret: moto refuses the lean GET, which then answers None (botocore's turn).
        wrong = ClientFactory(credentials=(key_id, "not-the-secret")).client("s3")
        bad = LeanGet(wrong, bucket)
        bad._learner.targets[bucket] = lean._learner.targets[bucket]  # type: ignore[union-attr]
        assert bad.get(ODD_KEYS[0]) is None


def test_encode_key_is_botocores_path_encoding():
    from botocore.utils import percent_encode

    assert encode_key("a b/ü+x~y=1&z%.json") == "a%20b/%C3%BC%2Bx~y%3D1%26z%25.json"
    for key in ("a b/ü+x~y=1&z%.json", "!*'();:@&=+$,?#[]%.json", "/lead//x/./y/../z", "\t\n\x7f😀"):
        assert encode_key(key) == percent_encode(key, safe="/~")


def archive_errors(s3: Any, bucket: str, key: str) -> list[str]:
    """The `ArchiveError` text of reading `key` the lean way and through botocore only."""
    errors = []
    for store in (LeanArchiveStore(s3, bucket, ""), ArchiveStore(s3, bucket, "")):
        with pytest.raises(ArchiveError) as caught:
            store.get_json(key)
        errors.append(str(caught.value))
    return errors


def test_missing_key_gives_the_same_archive_error_as_botocore(s3):
    bucket = new_bucket(s3)
    put_payload(s3, bucket, {"ok": 1}, key="present.json")
    lean = learned(s3, bucket, "present.json")
    assert lean.get("absent.json") is None
    errors = archive_errors(s3, bucket, "absent.json")
    assert errors[0] == errors[1]
    assert "NoSuchKey" in errors[0] and f"s3://{bucket}/absent.json" in errors[0]
    assert read_event(LeanArchiveStore(s3, bucket, ""), "absent.json") == read_event(
        ArchiveStore(s3, bucket, ""), "absent.json")


def test_access_denied_gives_the_same_archive_error_as_botocore(moto_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    setup = boto3.client("s3")
    bucket = new_bucket(setup)
    setup.put_object(Bucket=bucket, Key="k.json", Body=b"{}")
    with moto_auth(moto_server) as (key_id, secret):
        s3 = ClientFactory(credentials=(key_id, secret)).client("s3")
        lean = learned(s3, bucket, "k.json")
        iam = boto3.client("iam", endpoint_url=moto_server, aws_access_key_id=key_id,
                           aws_secret_access_key=secret)
        user = iam.get_user()["User"]["UserName"]
        iam.put_user_policy(UserName=user, PolicyName="deny", PolicyDocument=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Deny", "Action": "s3:GetObject", "Resource": "*"}]}))
        assert lean.get("k.json") is None
        errors = archive_errors(s3, bucket, "k.json")
    assert errors[0] == errors[1] and "AccessDenied" in errors[0]
    assert secret not in errors[0] and "Signature" not in errors[0]


def test_bad_json_reads_the_same_as_botocore(s3):
    bucket = new_bucket(s3)
    objects = {"bad.json": b"{not json", "latin.json": b"\xff\xfe", "list.json": b"[1]"}
    for key, body in objects.items():
        put_payload(s3, bucket, body, key=key)
    lean = learned(s3, bucket, "bad.json")
    for key, body in objects.items():
        assert lean.get(key) == body
        lean_event = read_event(LeanArchiveStore(s3, bucket, ""), key)
        assert lean_event == read_event(ArchiveStore(s3, bucket, ""), key)
    with pytest.raises(ValueError):
        LeanArchiveStore(s3, bucket, "").get_json("bad.json")


def test_kms_encrypted_object(s3, moto_server):
    kms = boto3.client("kms", endpoint_url=moto_server)
    kms_key = kms.create_key()["KeyMetadata"]["KeyId"]
    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="kms.json", Body=b'{"secret": 1}',
                  ServerSideEncryption="aws:kms", SSEKMSKeyId=kms_key)
    lean = learned(s3, bucket, "kms.json")
    assert lean.get("kms.json") == b'{"secret": 1}'


def test_a_checksum_that_does_not_match_goes_to_botocore(s3):
    """moto sends the CRC32 it stored; a body changed after it (in moto's backend) fails the check."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="c.json", Body=b'{"a": 1}', ChecksumAlgorithm="CRC32")
    lean = learned(s3, bucket, "c.json")
    assert lean.get("c.json") == b'{"a": 1}'
    stored = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(bucket, "c.json")
    assert stored is not None and stored.checksum_value
    stored.value = b'{"a": 2}'  # the stored CRC32 stays the old body's
    assert lean.get("c.json") is None
    with pytest.raises(ArchiveError, match="checksum"):
        LeanArchiveStore(s3, bucket, "").get_json("c.json")


@pytest.mark.parametrize("algorithm", ["CRC32C", "CRC64NVME"])
def test_objects_with_the_crcs_s3_stores_by_default_are_read_lean_and_checked(s3, algorithm):
    """S3 stores CRC64NVME for an object uploaded without a checksum of its own (older SDKs, the
    Lambda runtime's boto3): such objects are read lean, their checksum checked as botocore
    checks it (awscrt computes both), and a mismatch still goes to botocore."""
    pytest.importorskip("awscrt")
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="c.json", Body=b'{"a": 1}', ChecksumAlgorithm=algorithm)
    lean = learned(s3, bucket, "c.json")
    assert lean.get("c.json") == b'{"a": 1}'
    stored = s3_backends[DEFAULT_ACCOUNT_ID]["aws"].get_object(bucket, "c.json")
    assert stored is not None and stored.checksum_algorithm == algorithm
    stored.value = b'{"a": 2}'  # the stored checksum stays the old body's
    assert lean.get("c.json") is None


def test_a_content_length_that_is_not_ascii_digits_goes_to_botocore(s3):
    """`"\u00b2".isdigit()` is true but int() refuses it: the answer is not used, nothing raised."""
    from botocore.awsrequest import AWSResponse

    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="a.json", Body=b"{}")
    lean = learned(s3, bucket, "a.json")

    class Raw:
        def stream(self, *_: Any, **__: Any) -> Iterator[bytes]:
            yield b"{}"

    def answer(request: Any, **_: Any) -> AWSResponse:
        return AWSResponse(request.url, 200, {"content-length": "\u00b2"}, Raw())

    s3.meta.events.register_first("before-send.s3.GetObject", answer, unique_id="odd-length")
    try:
        assert lean.get("a.json") is None
    finally:
        s3.meta.events.unregister("before-send.s3.GetObject", unique_id="odd-length")
    assert lean.get("a.json") == b"{}"


class FlakyProxy:
    """An HTTP proxy in front of the moto server that answers 500 to the first `failures` GETs of
    each object, then forwards; counts the GETs per key."""

    def __init__(self, upstream: str, failures: int):
        self.gets: dict[str, int] = {}
        self.scopes: list[str] = []  # each GET's credential scope: date/region/service/aws4_request
        target = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = unquote(self.path.partition("?")[0])
                if self.command == "GET" and "." in path:
                    credential = (self.headers.get("Authorization") or "").partition("Credential=")[2]
                    proxy.scopes.append(credential.split(",")[0].partition("/")[2])
                    seen = proxy.gets[path] = proxy.gets.get(path, 0) + 1
                    if seen <= failures:
                        data = b"<Error><Code>InternalError</Code><Message>try again</Message></Error>"
                        self.send_response(500)
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)
                        return
                conn = http.client.HTTPConnection(target.hostname, target.port, timeout=10)
                conn.request(self.command, self.path, body, dict(self.headers))
                answer = conn.getresponse()
                data = answer.read()
                self.send_response(answer.status)
                for name, value in answer.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)
                conn.close()

            do_GET = do_PUT = do_HEAD = do_POST = _forward

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_a_server_error_goes_to_botocore_which_retries(moto_server, monkeypatch):
    bucket = new_bucket(boto3.client("s3", endpoint_url=moto_server))
    proxy = FlakyProxy(moto_server, failures=2)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        s3 = ClientFactory().client("s3")
        for name in ("first.json", "second.json"):
            put_payload(s3, bucket, {"name": name}, key=name)
        lean = LeanGet(s3, bucket)
        assert s3.get_object(Bucket=bucket, Key="first.json")["Body"].read()  # retried by botocore
        assert lean._learner and bucket in lean._learner.targets
        # The lean GET gets the first 500, botocore's first attempt the second, its retry the object.
        assert LeanArchiveStore(s3, bucket, "").get_json("second.json") == {"name": "second.json"}
        assert proxy.gets[f"/{bucket}/second.json"] == 3
        assert lean.get("second.json") == b'{"name": "second.json"}'
    finally:
        proxy.close()


def test_refreshable_credentials_are_refreshed_for_lean_gets(moto_server):
    """Credentials that expire soon are refreshed when a lean GET is signed, as for botocore."""
    setup = boto3.client("s3", endpoint_url=moto_server)
    bucket = new_bucket(setup)
    setup.put_object(Bucket=bucket, Key="r.json", Body=b'{"r": 1}')
    with moto_auth(moto_server) as (key_id, secret):
        refreshes = []

        def refresh() -> dict[str, str]:
            refreshes.append(1)
            soon = datetime.now(UTC) + timedelta(minutes=5)  # inside botocore's refresh window
            return {"access_key": key_id, "secret_key": secret, "token": "",
                    "expiry_time": soon.isoformat()}

        core = botocore.session.get_session()
        core._credentials = RefreshableCredentials.create_from_metadata(
            refresh(), refresh, "test")
        s3 = boto3.session.Session(botocore_session=core, region_name="us-east-1").client(
            "s3", endpoint_url=moto_server)
        lean = learned(s3, bucket, "r.json")
        for _ in range(2):  # each signature asks for fresh credentials
            before = len(refreshes)
            assert lean.get("r.json") == b'{"r": 1}'
            assert len(refreshes) > before


def test_replay_reads_through_the_lean_path_and_delivers_the_same(moto_server, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    clients = ClientFactory()
    s3 = clients.client("s3")
    bucket = new_bucket(s3)
    for i in range(30):
        put_payload(s3, bucket, payload(f"run-{i % 6}", "RUNNING", T0 + minutes(i)))
    botocore_gets: list[int] = []
    s3.meta.events.register("before-call.s3.GetObject", lambda **_: botocore_gets.append(1))
    with CallbackReceiver(token=API_TOKEN) as receiver:
        plan = plan_replay(ReplayOptions(since=iso(T0), until=iso(T0 + minutes(60)), bucket=bucket,
                                         api_server=receiver.url), clients,
                           env={"OMICS_EDP_API_TOKEN": API_TOKEN})
        result = replay(plan, clients)
        assert result.ok and result.summary()["delivered"] == 30
        assert sorted(r.body["omics_run_id"] for r in receiver.requests) == sorted(
            f"run-{i % 6}" for i in range(30))
    # Only the reads before the bucket's URL was learned went through botocore.
    assert len(botocore_gets) < 30


def test_lean_gets_are_signed_for_the_region_botocore_signs_for(moto_server, monkeypatch):
    """moto checks a signature with the region its request names; real S3 refuses any region but
    the bucket's. The lean GET names the region botocore's own GET named."""
    bucket = new_bucket(boto3.client("s3", endpoint_url=moto_server))
    proxy = FlakyProxy(moto_server, failures=0)
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        s3 = ClientFactory(region="eu-west-1").client("s3")
        s3.put_object(Bucket=bucket, Key="e.json", Body=b"{}")
        lean = learned(s3, bucket, "e.json")
        assert lean.get("e.json") == b"{}"
        assert len(proxy.scopes) == 2
        assert proxy.scopes[0].split("/")[1:] == ["eu-west-1", "s3", "aws4_request"]
        assert proxy.scopes[1] == proxy.scopes[0]
    finally:
        proxy.close()


def test_before_send_handlers_answer_lean_gets_as_they_answer_botocore():
    """moto's in-process mock answers in botocore's `before-send` event: the lean GET emits it too,
    so nothing goes to the network (fake credentials would get None from AWS, or no answer)."""
    from moto import mock_aws

    with mock_aws():
        s3 = ClientFactory().client("s3")
        bucket = new_bucket(s3)
        s3.put_object(Bucket=bucket, Key="m b+ü.json", Body=b'{"m": 1}')
        sent: list[str] = []
        s3.meta.events.register("before-send.s3.GetObject", lambda request, **_: sent.append(request.url))
        lean = learned(s3, bucket, "m b+ü.json")
        assert lean.get("m b+ü.json") == b'{"m": 1}'
        assert sent == [f"https://{bucket}.s3.amazonaws.com/m%20b%2B%C3%BC.json"] * 2


def test_only_a_plain_get_of_the_whole_object_teaches_the_bucket_url(s3):
    bucket = new_bucket(s3)
    s3.put_object(Bucket=bucket, Key="v.json", Body=b'{"v": 1}')
    lean = LeanGet(s3, bucket)
    s3.get_object(Bucket=bucket, Key="v.json", ResponseContentType="text/plain")["Body"].read()
    s3.get_object(Bucket=bucket, Key="v.json", Range="bytes=0-1")["Body"].read()
    s3.get_object(Bucket=bucket, Key="v.json", ExpectedBucketOwner="123456789012")["Body"].read()
    assert lean.get("v.json") is None
    s3.get_object(Bucket=bucket, Key="v.json")["Body"].read()
    assert lean.get("v.json") == b'{"v": 1}'


def test_after_three_objects_in_a_row_botocore_read_where_lean_gets_failed_reads_stay_with_botocore(
        moto_server, monkeypatch):
    bucket = new_bucket(boto3.client("s3", endpoint_url=moto_server))
    proxy = FlakyProxy(moto_server, failures=1)  # each object's first GET: 500
    try:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        s3 = ClientFactory().client("s3")
        keys = [f"k{i}.json" for i in range(6)]
        for key in keys:
            put_payload(s3, bucket, {"key": key}, key=key)
        store = LeanArchiveStore(s3, bucket, "")
        assert store.get_json("k0.json") == {"key": "k0.json"}  # botocore (retried), learns
        assert not store.lean.misses
        for key in keys[1:4]:  # lean GET: 500; botocore: the object
            assert store.get_json(key) == {"key": key}
            assert proxy.gets[f"/{bucket}/{key}"] == 2
        assert store.lean.misses == 3 and not store.lean.ready
        assert store.lean.get("k4.json") is None and f"/{bucket}/k4.json" not in proxy.gets
        assert store.get_json("k4.json") == {"key": "k4.json"}  # botocore alone: 500, retry
        assert proxy.gets[f"/{bucket}/k4.json"] == 2
    finally:
        proxy.close()


def test_a_lean_answer_resets_the_breaker(s3):
    bucket = new_bucket(s3)
    put_payload(s3, bucket, {"a": 1}, key="a.json")
    store = LeanArchiveStore(s3, bucket, "")
    s3.get_object(Bucket=bucket, Key="a.json")["Body"].read()
    store.lean.misses = LeanGet.MAX_MISSES - 1
    assert store.get_json("a.json") == {"a": 1}
    assert store.lean.misses == 0
