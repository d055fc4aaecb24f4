"""A lean S3 GET for `replay`'s bulk archive reads, built from botocore's own pieces.

botocore's `get_object` spends most of its CPU outside the network: parameter validation,
serialization, endpoint resolution, a chain of event hooks, retries bookkeeping and response
parsing, ~3-4 ms of one GIL per object on a slow machine (bench/bench_replay.py). Replay reads
thousands of small objects from one bucket, so `LeanGet` sends a plain GET instead:

* where to send it and how to sign it are learned from the client itself: the first successful
  plain `GetObject` of a bucket through botocore (`Bucket` and `Key` only; hooks registered
  once per client) gives the URL botocore sent (endpoint, `--endpoint-url` /
  `AWS_ENDPOINT_URL`, path or virtual style, the region a redirect settled on) and its signing
  context (SigV4, `s3`, region). Until then, and for a bucket signed any other way (SigV4a,
  S3 Express), every read goes through botocore;
* each key's URL is that prefix plus the key encoded as botocore encodes it, signed by the auth
  the client's own request signer hands out for `s3v4` (botocore's `S3SigV4Auth`, or its CRT
  twin when awscrt is installed) on credentials it freezes for each request (refreshable
  credentials refresh as they do for botocore), and sent on the client's own HTTP session (its
  connection pool, proxies, CA bundle and timeouts) unless a `before-send` handler answers it,
  as botocore lets one (moto's in-process mock does);
* only a complete 200 answer is used: its length must match `Content-Length` and a full-object
  checksum S3 sends must match, computed by botocore's own checksum classes (CRC32, SHA; CRC32C
  and CRC64NVME with awscrt), as botocore checks it. Anything else (an error status, a
  connection error, a mismatch) returns None and the caller reads the object through botocore's
  `get_object`, which retries and raises exactly as it always did. Nothing of the request
  (signature, credentials) goes into any error text. After three objects in a row that botocore
  read where the lean GET had failed, reads stay with botocore (an S3 that refuses these GETs
  costs three extra requests, not one per object).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit
from weakref import WeakKeyDictionary

from omics_edp_cli.omics.archive import ArchiveStore

_HOOK_ID = "omics-edp-lean-get"
_BEFORE_SEND = "before-send.s3.GetObject"  # the event botocore's endpoint emits before sending
_LEARNERS: WeakKeyDictionary[Any, _Learner] = WeakKeyDictionary()

def _botocore_checksums() -> dict[str, Callable[[bytes], bytes]] | None:
    """The response checksums botocore itself checks here: CRC32 and SHA always; CRC32C and
    CRC64NVME (which S3 stores for an object uploaded without a checksum of its own) and xxHash
    when awscrt is installed. None when this botocore has no such table (the name is private)."""
    try:
        from botocore.httpchecksum import _CHECKSUM_CLS  # type: ignore[attr-defined]
    except ImportError:
        return None

    def computer(cls: Any) -> Callable[[bytes], bytes]:
        def compute(body: bytes) -> bytes:
            checksum = cls()
            checksum.update(body)
            return bytes(checksum.digest())
        return compute

    return {name: computer(cls) for name, cls in dict(_CHECKSUM_CLS).items()}


# The full-object checksums S3 may send with `x-amz-checksum-mode: ENABLED`, computed by
# botocore's own classes; None: any checksum sends the read to botocore.
_CHECKSUMS = _botocore_checksums()
_NOT_CHECKSUMS = {"x-amz-checksum-mode", "x-amz-checksum-type"}
# The GetObject calls a bucket's target is learned from: the whole current object, nothing else.
_PLAIN = frozenset({"Bucket", "Key", "ChecksumMode"})
_PLAIN_QUERIES = ("", "x-id=GetObject")
_PLAIN_MARK = "omics_edp_plain_get"


def encode_key(key: str) -> str:
    """A key as botocore puts it in the URL path (`{Key+}`: `/` and `~` stay as they are)."""
    return quote(key, safe="/~")


@dataclass(frozen=True)
class Target:
    """Where a bucket's objects are: `url_prefix + encode_key(key) + query`, signed for `region`."""

    url_prefix: str
    query: str
    region: str


class _Learner:
    """The `after-call.s3.GetObject` hook of one client: each bucket's `Target`, from the
    successful GETs botocore made."""

    def __init__(self) -> None:
        self.targets: dict[str, Target] = {}

    @staticmethod
    def before_parameter_build(params: Any = None, context: Any = None, **_: Any) -> None:
        """Marks in the call's context whether the caller asked for the whole object and nothing
        else (`context["input_params"]` keeps only `Bucket` and `Key`)."""
        if isinstance(context, dict):
            context[_PLAIN_MARK] = isinstance(params, dict) and _PLAIN.issuperset(params)

    def after_call(self, http_response: Any = None, context: Any = None, **_: Any) -> None:
        try:
            if http_response is None or http_response.status_code != 200 or not context:
                return
            params, signing = context.get("input_params") or {}, context.get("signing") or {}
            bucket, key = params.get("Bucket"), params.get("Key")
            plain = context.get(_PLAIN_MARK) is True
            if not plain or not isinstance(bucket, str) or not isinstance(key, str):
                return  # a version, a range, SSE-C keys, response overrides...: not a plain GET
            target = _target(http_response.url, key, context.get("auth_type"), signing)
            if target is None:
                self.targets.pop(bucket, None)
            else:
                self.targets[bucket] = target
        except Exception:  # a hook must never break botocore's own call
            return


def _target(url: Any, key: str, auth_type: Any, signing: dict[str, Any]) -> Target | None:
    """The bucket's target from one request botocore sent for `key`, if it was plain SigV4."""
    region = signing.get("region")
    if (auth_type not in ("v4", "s3v4") or signing.get("signing_name", "s3") != "s3"
            or not isinstance(region, str) or not region or not isinstance(url, str)):
        return None
    if signing.get("request_credentials") or signing.get("identity_cache"):
        return None  # per-request identities (S3 Express): not plain SigV4 on the client's keys
    parts = urlsplit(url)
    encoded = encode_key(key)
    if not parts.path.endswith(encoded) or parts.fragment or parts.query not in _PLAIN_QUERIES:
        return None
    prefix = url[: len(url) - len(parts.query) - (1 if parts.query else 0) - len(encoded)]
    return Target(prefix, f"?{parts.query}" if parts.query else "", region)


class LeanGet:
    """Plain signed GETs of one bucket's objects on an S3 client's own connection pool.

    `get(key)` returns the object's bytes, or None when the caller must read it through botocore
    (nothing learned yet for the bucket, or anything but a complete, verified 200 answer).

    A breaker for what no local test can show (an S3 that refuses these GETs but not botocore's):
    after `MAX_MISSES` objects in a row that botocore read where a lean GET had failed
    (`botocore_served`), `get` answers None at once, and every read is botocore's again.
    """

    MAX_MISSES = 3

    def __init__(self, s3: Any, bucket: str):
        self.bucket = bucket
        self.misses = 0  # in a row; approximate under threads, which is all a breaker needs
        self._learner: _Learner | None = None
        self._signer: Any = None
        try:
            from botocore.awsrequest import AWSRequest

            self._request_class = AWSRequest
            self._signer = s3._request_signer
            self._session = s3._endpoint.http_session
            self._events = s3.meta.events
            learner = _LEARNERS.get(s3)
            if learner is None:
                learner = _LEARNERS[s3] = _Learner()
                s3.meta.events.register("before-parameter-build.s3.GetObject",
                                        learner.before_parameter_build, unique_id=_HOOK_ID + "-params")
                s3.meta.events.register("after-call.s3.GetObject", learner.after_call,
                                        unique_id=_HOOK_ID)
            self._learner = learner
        except Exception:  # not a botocore S3 client as expected: never lean
            self._learner = None

    @property
    def ready(self) -> bool:
        """Whether `get` will try a lean GET (a target is known and the breaker is closed)."""
        learner = self._learner
        return bool(learner and self.bucket in learner.targets and self.misses < self.MAX_MISSES)

    def botocore_served(self) -> None:
        """botocore read an object a lean GET could not: one more miss in a row."""
        self.misses += 1

    def get(self, key: str) -> bytes | None:
        learner = self._learner
        target = learner.targets.get(self.bucket) if learner else None
        if target is None or self.misses >= self.MAX_MISSES:
            return None
        try:
            request = self._request_class(
                method="GET", url=target.url_prefix + encode_key(key) + target.query,
                headers={"x-amz-checksum-mode": "ENABLED"})
            self._signer.get_auth_instance("s3", target.region, "s3v4").add_auth(request)
            prepared = request.prepare()
            # As botocore's endpoint does: a `before-send` handler may answer instead of the
            # network (moto's in-process mock, a test's or a user's hook).
            answered = [r for _, r in self._events.emit(_BEFORE_SEND, request=prepared) if r is not None]
            response = answered[0] if answered else self._session.send(prepared)
            if response.status_code != 200:
                return None
            body: bytes = response.content
            headers = response.headers
        except Exception:  # botocore's get_object retries it and says what failed
            return None
        length = headers.get("content-length")
        if length is not None and (not (length.isascii() and length.isdigit()) or int(length) != len(body)):
            return None
        if not _checksums_match(headers, body):
            return None
        self.misses = 0
        return body


def _checksums_match(headers: Any, body: bytes) -> bool:
    """Whether every full-object checksum in `headers` that botocore would check matches `body`.
    Composite ones (`…-N`, multipart) are not checked, as botocore does not check them; nor is
    one botocore cannot compute here (CRC64NVME without awscrt), as botocore skips it too."""
    for name, value in headers.items():
        name = name.lower()
        if not name.startswith("x-amz-checksum-") or name in _NOT_CHECKSUMS or "-" in value:
            continue
        if _CHECKSUMS is None:
            return False
        compute = _CHECKSUMS.get(name[len("x-amz-checksum-"):])
        if compute is None:
            continue  # botocore cannot compute it either, and skips it
        try:
            if compute(body) != base64.b64decode(value, validate=True):
                return False
        except ValueError:
            return False
    return True


class LeanArchiveStore(ArchiveStore):
    """`ArchiveStore` whose `get_json` reads through `LeanGet`, and through botocore's
    `get_object` (same errors, same retries) whenever `LeanGet` does not answer."""

    def __init__(self, s3: Any, bucket: str, prefix: str):
        super().__init__(s3, bucket, prefix)
        self.lean = LeanGet(s3, bucket)

    def get_json(self, key: str) -> Any:
        tried = self.lean.ready
        body = self.lean.get(key)
        if body is None:
            document = super().get_json(key)  # raises as it always did
            if tried:
                self.lean.botocore_served()
            return document
        return json.loads(body)
