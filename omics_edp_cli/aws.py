"""The one way this project reaches AWS: a session factory honouring profile, region and endpoint.

Standard library and boto3 only, so the Lambda code uses it too. boto3 already reads
`AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` from the environment; an explicit
`endpoint_url` (the CLI's `--endpoint-url`) wins over both.

boto3 is imported when the first session is built, not when this module is: `omics-edp --help`
and the commands that never reach AWS start without its ~60 ms (bench/bench_import_time.py).
"""

from __future__ import annotations

import functools
import os
import re
import sys
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from omics_edp_cli.errors import ConfigError

if TYPE_CHECKING:
    import boto3.session
    from botocore.config import Config

@functools.cache
def _config(custom_endpoint: bool) -> Config:
    from botocore.config import Config

    # A pool large enough for the concurrent readers of replay and the dlq commands.
    config = Config(retries={"mode": "standard", "max_attempts": 5}, max_pool_connections=32)
    # Some APIs (HealthOmics: "workflows-") put a prefix on the host name. Against a custom
    # endpoint (a local fake or moto on 127.0.0.1) that would make the host unreachable.
    return config.merge(Config(inject_host_prefix=False)) if custom_endpoint else config


# S3's endpoint rules take `Key`, `Prefix` and `CopySource` as parameters but no rule reads them.
# botocore caches a resolved endpoint by all the parameters, so every call on another key
# misses the cache and evaluates the whole rule tree again: about a third of the CPU of a
# GetObject (boto/botocore#3528; newer botocore drops the three itself).
UNUSED_S3_ENDPOINT_PARAMS = ("Key", "Prefix", "CopySource")


def referenced_endpoint_params(ruleset: Any) -> set[str]:
    """Every parameter an endpoint rule set reads: `{"ref": name}` and `{name}` in templates."""
    found: set[str] = set()
    stack = [ruleset]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            ref = node.get("ref")
            if isinstance(ref, str):
                found.add(ref)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str) and "{" in node:
            found.update(_TEMPLATE_REF.findall(node))
    return found


_TEMPLATE_REF = re.compile(r"\{([A-Za-z][A-Za-z0-9_]*)")


def cache_s3_endpoints(client: Any, session: Any) -> bool:
    """Leave out of `client`'s endpoint resolution the S3 parameters no rule reads, so the
    endpoint is resolved once per bucket, not once per key. Only when this botocore's rule set
    indeed reads none of them; returns whether it did."""
    resolver = getattr(client, "_ruleset_resolver", None)
    params = getattr(resolver, "_param_definitions", None)
    if not isinstance(params, dict) or not any(n in params for n in UNUSED_S3_ENDPOINT_PARAMS):
        return False
    model = client.meta.service_model
    ruleset = session.get_component("data_loader").load_service_model(
        model.service_name, "endpoint-rule-set-1", model.api_version)
    if referenced_endpoint_params(ruleset) & set(UNUSED_S3_ENDPOINT_PARAMS):
        return False
    resolver._param_definitions = {  # type: ignore[union-attr]
        name: spec for name, spec in params.items() if name not in UNUSED_S3_ENDPOINT_PARAMS}
    return True


# `Last-Modified: Wed, 02 Dec 2026 01:51:13 GMT`: the form of every timestamp in S3's headers.
_HTTP_DATE = re.compile(
    r"(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d\d) (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) "
    r"(\d{4}) (\d\d):(\d\d):(\d\d) GMT")
_MONTHS = {m: i for i, m in enumerate(
    ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}


def parse_timestamp(value: Any) -> Any:
    """botocore's timestamp parser with a fast path for HTTP dates (the same datetime, in
    `tzutc()`): botocore hands every one to `dateutil`, two per GetObject, a tenth of its CPU.
    Anything else (ISO 8601 in XML bodies, epoch seconds) goes to botocore's own parser."""
    from botocore.utils import parse_timestamp as botocore_parse

    match = _HTTP_DATE.fullmatch(value) if isinstance(value, str) else None
    if match:
        from dateutil.tz import tzutc  # type: ignore[import-untyped,unused-ignore]

        day, month, year, hour, minute, second = match.groups()
        try:
            return datetime(int(year), _MONTHS[month], int(day), int(hour), int(minute),
                            int(second), tzinfo=tzutc())
        except ValueError:
            pass  # botocore's parser says what is wrong with it
    return botocore_parse(value)


def has_custom_endpoint(service: str, endpoint_url: str | None = None) -> bool:
    """Whether calls to `service` go to an endpoint other than AWS's own."""
    env_name = "AWS_ENDPOINT_URL_" + service.upper().replace("-", "_")
    return bool(endpoint_url or os.environ.get(env_name) or os.environ.get("AWS_ENDPOINT_URL"))


def client_config(service: str, endpoint_url: str | None = None) -> Config:
    return _config(has_custom_endpoint(service, endpoint_url))


@dataclass
class ClientFactory:
    """Builds (and caches) boto3 clients from one session.

    `overrides` lets tests hand in a prepared client (e.g. a HealthOmics client wired to a
    botocore `Stubber`) without patching this project's code. `service_endpoints` and
    `credentials` let the local demo point each service at its fake without touching the
    process environment.
    """

    profile: str | None = None
    region: str | None = None
    endpoint_url: str | None = None
    overrides: dict[str, Any] = field(default_factory=dict)
    service_endpoints: dict[str, str] = field(default_factory=dict)
    credentials: tuple[str, str] | None = field(default=None, repr=False)
    _session: boto3.session.Session | None = field(default=None, init=False, repr=False)
    _clients: dict[str, Any] = field(default_factory=dict, init=False, repr=False)

    def session(self) -> boto3.session.Session:
        if self._session is None:
            import boto3.session
            from botocore.exceptions import ProfileNotFound

            try:
                keys = self.credentials or (None, None)
                # boto3 reads AWS_DEFAULT_REGION and the profile but not AWS_REGION, which the
                # AWS CLI v2 and the Lambda runtime use and which wins over both there.
                region = self.region or os.environ.get("AWS_REGION") or None
                self._session = boto3.session.Session(
                    profile_name=self.profile, region_name=region,
                    aws_access_key_id=keys[0], aws_secret_access_key=keys[1],
                )
                # Every client of this session parses HTTP-date headers without dateutil.
                self._session._session.get_component("response_parser_factory").set_parser_defaults(
                    timestamp_parser=parse_timestamp)
            except ProfileNotFound as e:
                raise ConfigError(
                    f"AWS profile {self.profile!r} not found: check --profile or AWS_PROFILE"
                ) from e
        return self._session

    @property
    def region_name(self) -> str | None:
        return self.session().region_name

    def client(self, service: str) -> Any:
        """Return a cached client for `service`, or the override a caller installed."""
        if service in self.overrides:
            return self.overrides[service]
        if service not in self._clients:
            endpoint = self.service_endpoints.get(service) or self.endpoint_url
            kwargs: dict[str, Any] = {"config": client_config(service, endpoint)}
            if endpoint:
                kwargs["endpoint_url"] = endpoint
            from botocore.exceptions import NoRegionError

            try:
                session: Any = self.session()  # any service name: the stubs overload per literal
                client = session.client(service, **kwargs)
            except NoRegionError as e:
                raise ConfigError(
                    "No AWS region configured: pass --region or set AWS_REGION"
                ) from e
            if service == "s3":
                cache_s3_endpoints(client, session._session)
            self._clients[service] = client
        return self._clients[service]


def credential_hint(exc: Exception) -> str | None:
    """A one-line fix for the credential/region errors botocore raises at call time."""
    if "botocore" not in sys.modules:  # nothing botocore raised can exist yet
        return None
    from botocore.exceptions import NoCredentialsError, NoRegionError

    if isinstance(exc, NoCredentialsError):
        return "No AWS credentials found: pass --profile, set AWS_PROFILE, or configure credentials"
    if isinstance(exc, NoRegionError):
        return "No AWS region configured: pass --region or set AWS_REGION"
    return None
