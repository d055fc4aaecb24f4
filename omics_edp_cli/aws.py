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
import sys
from dataclasses import dataclass, field
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
                self._clients[service] = session.client(service, **kwargs)
            except NoRegionError as e:
                raise ConfigError(
                    "No AWS region configured: pass --region or set AWS_REGION"
                ) from e
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
