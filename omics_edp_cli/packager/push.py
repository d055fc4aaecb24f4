"""Everything that talks to quilt3: its S3 clients, the idempotency check, and the push itself.

quilt3 builds its own boto3 clients. A build hook (quilt3's documented extension point) makes
them come from this project's `ClientFactory` — same profile, region, credentials and endpoint
(`--endpoint-url`, `AWS_ENDPOINT_URL`) as every other call — and adds server-side encryption to
every object quilt3 writes. quilt3's usage telemetry is turned off: a Lambda in a private subnet
would wait on it, and nobody asked for it.
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import omics_edp_cli.packager.lazy_quilt3  # noqa: F401  # isort: skip  (before quilt3: see the module)
import quilt3  # type: ignore[import-untyped]
import quilt3.hooks  # type: ignore[import-untyped]
import quilt3.telemetry  # type: ignore[import-untyped]
import quilt3.util  # type: ignore[import-untyped]
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from quilt3.data_transfer import S3ClientProvider, S3NoValidClientError  # type: ignore[import-untyped]
from quilt3.packages import PackageEntry  # type: ignore[import-untyped]
from quilt3.util import PhysicalKey  # type: ignore[import-untyped]
from quilt3.workflows import WorkflowValidationError  # type: ignore[import-untyped]

from omics_edp_cli.aws import ClientFactory
from omics_edp_cli.errors import OperationError
from omics_edp_cli.packager.plan import PackagePlan

# Written after a successful push: a redelivered event, even one that arrives after a newer
# batch of the same folder was packaged, finds its batch here and creates no revision.
MARKER_PREFIX = ".quilt-edp/batches/"
_WRITES = ("PutObject", "CopyObject", "CreateMultipartUpload")
_NOT_FOUND = {"NoSuchKey", "404", "NotFound"}


class WorkflowRefused(Exception):
    """The registry's workflow refused the package (quilt3's `WorkflowValidationError`)."""


@dataclass(frozen=True)
class Pushed:
    registry: str
    name: str
    top_hash: str
    already: bool = False  # this batch was packaged before: nothing was pushed


def configure(clients: ClientFactory, kms_key_id: str | None = None) -> None:
    """Point quilt3 at `clients` and encrypt what it writes. Idempotent."""
    quilt3.telemetry.ApiTelemetry.telemetry_disabled = True
    encryption = ({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id
                  else {"ServerSideEncryption": "AES256"})

    def add_encryption(params: dict[str, Any], **kwargs: Any) -> None:
        for key, value in encryption.items():
            params.setdefault(key, value)

    built: dict[tuple[Any, ...], Any] = {}

    def hook(build_client_base: Any, session: Any, client_kwargs: dict[str, Any], **kwargs: Any) -> Any:
        # quilt3's session is replaced by ours. quilt3 makes its "standard" client unsigned when
        # *its* session has no credentials (ours may: --profile, the demo's keys), so every
        # client is signed with ours; the pool size is kept.
        ours = clients.session()
        options = dict(client_kwargs)
        if ours.get_credentials() is not None:
            pool = getattr(options.get("config"), "max_pool_connections", None)
            options["config"] = Config(max_pool_connections=pool) if pool else Config()
        endpoint = clients.service_endpoints.get("s3") or clients.endpoint_url
        if endpoint:
            options["endpoint_url"] = endpoint
        # quilt3 asks for a new client per operation (32 in the demo's four packages, ~45 ms each):
        # clients are thread-safe, so one per distinct configuration is built and reused.
        config = options.get("config")
        key = (endpoint, getattr(config, "max_pool_connections", None),
               str(getattr(config, "signature_version", None)), repr(sorted(kwargs)))
        cached = built.get(key)
        if cached is not None:
            return cached
        client = build_client_base(ours, options, **kwargs)
        for operation in _WRITES:
            client.meta.events.register(f"before-parameter-build.s3.{operation}", add_encryption)
        built[key] = client
        return client

    quilt3.hooks.set_build_s3_client_hook(hook)
    _share_client_providers(clients)


def _share_client_providers(clients: ClientFactory) -> None:
    """Make quilt3's per-operation `S3ClientProvider`s cheap: one session, one verdict per bucket.

    quilt3 makes a provider for every operation, and each one built a fresh boto3 session (and
    resolved its credential chain, ~50 ms) before the build hook above replaced it, then checked
    again with an extra request whether each bucket needs an unsigned client. Here every provider
    starts from this project's session and shares one record of those verdicts (reset on each
    `configure`), so a bucket is checked once per process.
    """
    verdicts: dict[str, bool] = {}
    provider: Any = S3ClientProvider
    if not callable(getattr(provider, "get_boto_session", None)):
        return  # another quilt3 than the 8.x this was written for: left as it is
    original = getattr(provider.__init__, "_omics_edp_original", provider.__init__)

    def init(self: Any) -> None:
        original(self)
        if isinstance(getattr(self, "_use_unsigned_client", None), dict):  # quilt3 8.x's record
            self._use_unsigned_client = verdicts

    init._omics_edp_original = original  # type: ignore[attr-defined]
    provider.__init__ = init
    provider.get_boto_session = lambda self: clients.session()


def _aws(what: str, call: Any) -> Any:
    try:
        return call()
    except (ClientError, BotoCoreError, quilt3.util.QuiltException, S3NoValidClientError) as e:
        raise OperationError(f"{what} failed: {e}") from e


def marker_key(batch_id: str) -> str:
    return f"{MARKER_PREFIX}{batch_id}.json"


def find_packaged(s3: Any, registry: str, name: str, batch_id: str) -> Pushed | None:
    """The revision this batch already became in `registry`, if any (marker, then latest revision)."""
    try:
        body = s3.get_object(Bucket=registry, Key=marker_key(batch_id))["Body"].read()
        record = json.loads(body)
        return Pushed(registry, str(record["package"]), str(record["top_hash"]), already=True)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in _NOT_FOUND:
            raise OperationError(f"reading s3://{registry}/{marker_key(batch_id)} failed: {e}") from e
    except BotoCoreError as e:
        raise OperationError(f"reading s3://{registry}/{marker_key(batch_id)} failed: {e}") from e
    # A push whose marker was never written (the function stopped in between).
    try:
        latest = quilt3.Package.browse(name, registry=f"s3://{registry}")
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") in _NOT_FOUND:
            return None
        raise OperationError(f"reading the latest {name} in s3://{registry} failed: {e}") from e
    except (BotoCoreError, S3NoValidClientError) as e:
        raise OperationError(f"reading the latest {name} in s3://{registry} failed: {e}") from e
    edp = (latest.meta or {}).get("edp")
    if isinstance(edp, dict) and edp.get("batch_id") == batch_id:
        return Pushed(registry, name, str(latest.top_hash), already=True)
    return None


def write_marker(s3: Any, pushed: Pushed, batch_id: str, quarantined: bool, kms_key_id: str | None) -> None:
    record = {"package": pushed.name, "top_hash": pushed.top_hash, "batch_id": batch_id,
              "quarantined": quarantined, "pushed_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
    encryption = ({"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": kms_key_id} if kms_key_id
                  else {"ServerSideEncryption": "AES256"})
    _aws(f"writing s3://{pushed.registry}/{marker_key(batch_id)}", lambda: s3.put_object(
        Bucket=pushed.registry, Key=marker_key(batch_id), Body=json.dumps(record).encode(),
        ContentType="application/json", **encryption))


def build(plan: PackagePlan, scratch: Path, extra: dict[str, str] | None = None) -> quilt3.Package:
    """The quilt3 package of the plan; added files are written under `scratch` (uploaded on push)."""
    pkg = quilt3.Package()
    for entry in plan.entries:
        if entry.size is None:
            _aws(f"reading {entry.uri}", lambda e=entry: pkg.set(e.logical_key, e.uri))  # type: ignore[misc]
        else:
            pkg.set(entry.logical_key, PackageEntry(PhysicalKey(entry.bucket, entry.key, entry.version_id),
                                                    entry.size, None, None))
    for logical_key, text in sorted({**plan.added, **(extra or {})}.items()):
        path = scratch / logical_key.replace("/", "_")
        path.write_text(text, encoding="utf-8")
        pkg.set(logical_key, str(path))
    pkg.set_meta(plan.metadata)
    return pkg


def push(plan: PackagePlan, registry: str, *, workflow: str | Any | None = ...,
         extra: dict[str, str] | None = None) -> Pushed:
    """Push a new revision of `plan.name` to `registry`; `WorkflowRefused` when validation fails.

    `force=True`: each batch is a revision of its own, built from scratch, not an edit of the
    latest one (so there is no parent hash to agree with).
    """
    with tempfile.TemporaryDirectory(prefix="omics-edp-packager-") as scratch:
        pkg = build(plan, Path(scratch), extra)
        try:
            # quilt3 prints "Package … pushed" to stdout: keep stdout for data (`-o json`).
            with contextlib.redirect_stdout(sys.stderr):
                pushed = pkg.push(plan.name, registry=f"s3://{registry}", message=plan.message,
                                  workflow=workflow, force=True)
        except WorkflowValidationError as e:
            raise WorkflowRefused(str(e)) from e
        except (ClientError, BotoCoreError, quilt3.util.QuiltException, S3NoValidClientError) as e:
            raise OperationError(f"pushing {plan.name} to s3://{registry} failed: {e}") from e
    return Pushed(registry, plan.name, str(pushed.top_hash))


def browse(registry: str, name: str, top_hash: str | None = None) -> quilt3.Package:
    return _aws(f"reading {name} from s3://{registry}", lambda: quilt3.Package.browse(
        name, registry=f"s3://{registry}", top_hash=top_hash))
